//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034), parsed
//! incrementally from whatever bytes the connection delivered.
//!
//! A hostile or broken server must not exhaust the device's memory: a reply line is
//! capped at [`MAX_LINE_LEN`] bytes and a reply at [`MAX_REPLY_LINES`] lines. The parser
//! keeps at most one reply; bytes after a complete reply are left to the caller.

use std::fmt;

/// Longest reply line accepted, without its line ending. RFC 5321 allows 512 octets;
/// this leaves room for servers that write long texts and still bounds memory.
pub const MAX_LINE_LEN: usize = 4096;
/// Most lines accepted in one multi-line reply. An EHLO reply has about a dozen.
pub const MAX_REPLY_LINES: usize = 100;

/// An enhanced status code such as `5.7.3` (RFC 3463): class, subject, detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnhancedStatus {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses `class.subject.detail` (class 2, 4 or 5; subject and detail 1–3 digits).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let number = |part: &str, max_len: usize| {
            (!part.is_empty() && part.len() <= max_len && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u16>().ok())
                .flatten()
        };
        let class = match number(class, 1)? {
            c @ (2 | 4 | 5) => c as u8,
            _ => return None,
        };
        Some(Self {
            class,
            subject: number(subject, 3)?,
            detail: number(detail, 3)?,
        })
    }
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete server reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, e.g. 250 or 535.
    pub code: u16,
    /// The enhanced status code of the first line, when the server sent one.
    pub enhanced: Option<EnhancedStatus>,
    /// The text of each line after the code and its separator, enhanced code included,
    /// with control characters replaced (the text may be shown to an administrator).
    pub lines: Vec<String>,
}

impl Reply {
    /// The human text: the lines joined by spaces, each without its enhanced code.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|line| match line.split_once(' ') {
                Some((first, rest)) if self.enhanced_prefix(first) => rest,
                None if self.enhanced_prefix(line) => "",
                _ => line.as_str(),
            })
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn enhanced_prefix(&self, word: &str) -> bool {
        EnhancedStatus::parse(word).is_some_and(|e| u16::from(e.class) == self.code / 100)
    }

    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (a `334` challenge, a `354` for the data).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: a transient failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    /// `535 5.7.3 Authentication unsuccessful`: the code, the enhanced code, the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        let text = self.text();
        if !text.is_empty() {
            write!(f, " {text}")?;
        }
        Ok(())
    }
}

/// Why bytes from the server are not a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("a reply line is longer than {MAX_LINE_LEN} bytes")]
    LineTooLong,
    #[error("a reply has more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    #[error("a reply line does not start with a three-digit reply code")]
    Malformed,
    #[error("the lines of a multi-line reply carry different reply codes")]
    InconsistentCodes,
}

/// Assembles replies from bytes as they arrive. After an error the parser is spent:
/// the connection is no longer in step with the server.
#[derive(Clone, Debug, Default)]
pub struct ReplyParser {
    /// The start of a line whose end has not arrived yet (at most `MAX_LINE_LEN` + CR).
    partial: Vec<u8>,
    /// The code and lines of a multi-line reply seen so far.
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Consumes bytes from `input` up to the end of the first complete reply. Returns how
    /// many bytes were consumed and the reply, if one completed; unconsumed bytes belong
    /// to the next reply.
    pub fn parse(&mut self, input: &[u8]) -> (usize, Result<Option<Reply>, ReplyError>) {
        let mut consumed = 0;
        while consumed < input.len() {
            let rest = &input[consumed..];
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                // +1: the line's CR may be the last byte that arrived.
                if self.partial.len() + rest.len() > MAX_LINE_LEN + 1 {
                    return (input.len(), Err(ReplyError::LineTooLong));
                }
                self.partial.extend_from_slice(rest);
                return (input.len(), Ok(None));
            };
            consumed += lf + 1;
            if self.partial.len() + lf > MAX_LINE_LEN + 1 {
                return (consumed, Err(ReplyError::LineTooLong));
            }
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(&rest[..lf]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > MAX_LINE_LEN {
                return (consumed, Err(ReplyError::LineTooLong));
            }
            match self.line(&line) {
                Ok(None) => {}
                other => return (consumed, other),
            }
        }
        (consumed, Ok(None))
    }

    /// Whether part of a reply has arrived and the rest is awaited.
    pub fn is_mid_reply(&self) -> bool {
        !self.partial.is_empty() || self.code.is_some()
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let digits = line.get(..3).ok_or(ReplyError::Malformed)?;
        let valid = matches!(digits[0], b'2'..=b'5')
            && matches!(digits[1], b'0'..=b'5')
            && digits[2].is_ascii_digit();
        if !valid {
            return Err(ReplyError::Malformed);
        }
        let code = digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        let (last, text) = match line.get(3) {
            None => (true, &line[3..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(ReplyError::Malformed),
        };
        if self.code.is_some_and(|c| c != code) {
            return Err(ReplyError::InconsistentCodes);
        }
        if self.lines.len() >= MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        self.code = Some(code);
        self.lines.push(printable(text));
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        let enhanced = lines
            .first()
            .and_then(|l| l.split(' ').next())
            .and_then(EnhancedStatus::parse)
            .filter(|e| u16::from(e.class) == code / 100);
        Ok(Some(Reply {
            code,
            enhanced,
            lines,
        }))
    }
}

/// Server text as something safe to show: UTF-8 (lossy), tabs as spaces, other control
/// characters replaced.
fn printable(text: &[u8]) -> String {
    String::from_utf8_lossy(text)
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => char::REPLACEMENT_CHARACTER,
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut parser = ReplyParser::default();
        let mut replies = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (n, reply) = parser.parse(rest);
            rest = &rest[n..];
            if let Some(reply) = reply? {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    fn one(input: &[u8]) -> Reply {
        let mut replies = parse_all(input).unwrap();
        assert_eq!(replies.len(), 1);
        replies.remove(0)
    }

    #[test]
    fn single_line_reply_with_enhanced_code() {
        let reply = one(b"535 5.7.3 Authentication unsuccessful\r\n");
        assert_eq!(reply.code, 535);
        assert_eq!(reply.enhanced.unwrap().to_string(), "5.7.3");
        assert_eq!(reply.text(), "Authentication unsuccessful");
        assert_eq!(reply.to_string(), "535 5.7.3 Authentication unsuccessful");
    }

    #[test]
    fn three_digit_enhanced_detail_is_kept() {
        let reply = one(b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\r\n");
        assert_eq!(
            reply.enhanced,
            Some(EnhancedStatus {
                class: 5,
                subject: 7,
                detail: 139
            })
        );
        let reply = one(b"554 5.2.252 SendAsDenied; a@x not allowed to send as b@x\r\n");
        assert_eq!(reply.enhanced.unwrap().to_string(), "5.2.252");
        assert!(reply.text().starts_with("SendAsDenied;"));
    }

    #[test]
    fn multi_line_reply_is_one_reply() {
        let reply = one(b"250-smtp.office365.com Hello\r\n250-SIZE 157286400\r\n250 STARTTLS\r\n");
        assert_eq!(reply.code, 250);
        assert_eq!(
            reply.lines,
            ["smtp.office365.com Hello", "SIZE 157286400", "STARTTLS"]
        );
        assert_eq!(reply.enhanced, None);
    }

    #[test]
    fn a_reply_split_across_reads_is_assembled() {
        let bytes = b"250-first line\r\n250 2.0.0 OK\r\n";
        for split in 1..bytes.len() {
            let mut parser = ReplyParser::default();
            let (n, r) = parser.parse(&bytes[..split]);
            assert_eq!(n, split);
            assert_eq!(r, Ok(None));
            assert!(parser.is_mid_reply());
            let (n, r) = parser.parse(&bytes[split..]);
            assert_eq!(n, bytes.len() - split);
            let reply = r.unwrap().unwrap();
            assert_eq!(reply.lines, ["first line", "2.0.0 OK"]);
            assert!(!parser.is_mid_reply());
        }
    }

    #[test]
    fn bytes_after_a_reply_are_left_for_the_next() {
        let mut parser = ReplyParser::default();
        let input = b"220 ready\r\n250 ok\r\n";
        let (n, r) = parser.parse(input);
        assert_eq!(n, 11);
        assert_eq!(r.unwrap().unwrap().code, 220);
        let (_, r) = parser.parse(&input[n..]);
        assert_eq!(r.unwrap().unwrap().code, 250);
    }

    #[test]
    fn bare_lf_and_code_only_lines_are_accepted() {
        let reply = one(b"250-a\n250\n");
        assert_eq!(reply.lines, ["a", ""]);
        assert_eq!(one(b"354\r\n").code, 354);
    }

    #[test]
    fn enhanced_code_of_another_class_is_not_taken_for_one() {
        assert_eq!(one(b"250 5.7.3 odd\r\n").enhanced, None);
        assert_eq!(one(b"334 2.0.0\r\n").enhanced, None);
        assert_eq!(one(b"250 1.2.3.4 ready\r\n").enhanced, None);
    }

    #[test]
    fn control_characters_in_text_are_replaced() {
        let reply = one(b"550 bad\x1b[31m\ttext\x00\r\n");
        assert_eq!(reply.lines[0], "bad\u{fffd}[31m text\u{fffd}");
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            &b"hello\r\n"[..],
            b"25\r\n",
            b"650 x\r\n",
            b"250x\r\n",
            b"2a0 x\r\n",
        ] {
            assert_eq!(parse_all(bad), Err(ReplyError::Malformed), "{bad:?}");
        }
        assert_eq!(
            parse_all(b"250-a\r\n550 b\r\n"),
            Err(ReplyError::InconsistentCodes)
        );
    }

    #[test]
    fn an_endless_line_is_cut_off_at_the_cap() {
        let mut parser = ReplyParser::default();
        let chunk = vec![b'a'; 1000];
        let mut result = Ok(None);
        let mut fed = 0;
        while result == Ok(None) {
            result = parser.parse(&chunk).1;
            fed += chunk.len();
            assert!(fed < 10 * MAX_LINE_LEN, "never stopped");
        }
        assert_eq!(result, Err(ReplyError::LineTooLong));
        assert!(parser.partial.len() <= MAX_LINE_LEN + 1);
    }

    #[test]
    fn a_line_at_the_cap_is_accepted_and_one_over_is_not() {
        let mut line = b"250 ".to_vec();
        line.resize(MAX_LINE_LEN, b'x');
        let mut ok = line.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(one(&ok).code, 250);
        let mut over = line;
        over.extend_from_slice(b"y\r\n");
        assert_eq!(parse_all(&over), Err(ReplyError::LineTooLong));
    }

    #[test]
    fn an_endless_reply_is_cut_off_at_the_line_cap() {
        let input = b"250-x\r\n".repeat(MAX_REPLY_LINES + 1);
        assert_eq!(parse_all(&input), Err(ReplyError::TooManyLines));
        let mut at_cap = b"250-x\r\n".repeat(MAX_REPLY_LINES - 1);
        at_cap.extend_from_slice(b"250 x\r\n");
        assert_eq!(one(&at_cap).lines.len(), MAX_REPLY_LINES);
    }

    #[test]
    fn enhanced_status_parsing() {
        assert_eq!(EnhancedStatus::parse("4.3.2").unwrap().to_string(), "4.3.2");
        for bad in ["3.0.0", "5.7", "5.7.1234", "5..3", "x.7.3", "5.7.3.", ""] {
            assert_eq!(EnhancedStatus::parse(bad), None, "{bad}");
        }
    }
}
