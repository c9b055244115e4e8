//! The header fields: the checks that refuse header injection, the Date, To and Subject
//! lines (RFC 5322, RFC 2047 encoded words) and RFC 2231 file name parameters.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{MAX_LINE_LEN, MimeError};

/// Bytes of text per RFC 2047 encoded word: 39 bytes → 52 base64 characters, so that
/// `Subject: =?UTF-8?B?…?=` stays within 76 columns.
const ENCODED_WORD_INPUT: usize = 39;
/// Characters of a percent-encoded file name per RFC 2231 continuation line.
const PARAMETER_SEGMENT_LEN: usize = 56;

/// Describes the first control character (CR, LF, tab, NUL, DEL, C1…), if any.
pub(super) fn control_char(text: &str) -> Option<&'static str> {
    text.chars().find_map(|c| match c {
        '\r' => Some("contains a carriage return (CR)"),
        '\n' => Some("contains a line feed (LF)"),
        c if c.is_control() => Some("contains a control character"),
        _ => None,
    })
}

/// A header address must be one bare mailbox: nothing that would change the header's
/// structure (a comma adds a recipient, brackets and quotes a display name or route).
pub(super) fn check_address(field: &str, address: &str) -> Result<(), MimeError> {
    let refuse = |what: &'static str| {
        Err(MimeError::InvalidAddress {
            field: field.to_owned(),
            what,
        })
    };
    if let Some(what) = control_char(address) {
        return refuse(what);
    }
    if address.chars().any(char::is_whitespace) {
        return refuse("contains a space");
    }
    if address.contains(['<', '>', ',', ';', '"', '(', ')']) {
        return refuse("contains one of < > , ; \" ( )");
    }
    // One `@` only: `a@evil.example@contoso.com` reads as a source route to some relays.
    if address.matches('@').count() > 1 {
        return refuse("contains more than one @");
    }
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => refuse("is not of the form name@domain"),
    }
}

/// The message's headers as the caller gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// The sender: the Device Email Address. Its domain names the Message-ID.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject, any Unicode text on one line.
    pub subject: String,
    /// When the message was written, in seconds since the Unix epoch (UTC).
    pub date: u64,
}

/// `Thu, 01 Jan 1970 00:00:00 +0000` (RFC 5322 §3.3), in UTC.
pub fn rfc5322_date(unix_seconds: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): (year, month 1–12, day 1–31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `To: a@x, b@y`, folded before an address that would pass 76 columns.
pub(super) fn address_list(name: &str, addresses: &[String]) -> String {
    let mut out = format!("{name}:");
    let mut column = out.len();
    for (i, address) in addresses.iter().enumerate() {
        let separator = if i + 1 < addresses.len() { "," } else { "" };
        let width = 1 + address.len() + separator.len();
        if i > 0 && column + width > MAX_LINE_LEN {
            out.push_str("\r\n");
            column = 0;
        }
        out.push(' ');
        out.push_str(address);
        out.push_str(separator);
        column += width;
    }
    out.push_str("\r\n");
    out
}

/// The Subject header: plain (folded at spaces) when it is printable ASCII, else RFC 2047
/// encoded words of whole characters, one per line. A subject with a leading, trailing or
/// doubled space is encoded too: folded plainly, it could leave a line of whitespace only,
/// which RFC 5322 §4 forbids (and the spaces would not read back as typed).
pub(super) fn subject_header(subject: &str) -> String {
    let plain = subject.bytes().all(|b| (b' '..=b'~').contains(&b))
        && !subject.contains("=?")
        && !subject.starts_with(' ')
        && !subject.ends_with(' ')
        && !subject.contains("  ")
        && subject
            .split(' ')
            .all(|w| w.len() <= MAX_LINE_LEN - "Subject: ".len());
    if subject.is_empty() {
        return "Subject:\r\n".into();
    }
    if plain {
        let mut out = String::from("Subject:");
        let mut column = out.len();
        for (i, word) in subject.split(' ').enumerate() {
            if i > 0 && column + 1 + word.len() > MAX_LINE_LEN {
                out.push_str("\r\n");
                column = 0;
            }
            out.push(' ');
            out.push_str(word);
            column += 1 + word.len();
        }
        out.push_str("\r\n");
        return out;
    }
    let words: Vec<String> = utf8_pieces(subject, ENCODED_WORD_INPUT)
        .map(encoded_word)
        .collect();
    format!("Subject: {}\r\n", words.join("\r\n "))
}

/// An RFC 2047 encoded word, `=?UTF-8?B?…?=`.
pub fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", STANDARD.encode(text))
}

/// Splits text into pieces of at most `max` bytes, never inside a character.
fn utf8_pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // A single character longer than `max` (impossible for max ≥ 4).
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// A Content-Type or Content-Disposition parameter on its own folded line(s):
/// `name="scan.pdf"` for plain ASCII names, RFC 2231 `name*=utf-8''…` (with
/// `name*0*=`, `name*1*=` continuations when long) otherwise.
pub(super) fn parameter(attribute: &str, value: &str) -> String {
    // Measured once quoted: each `"` or `\` takes two characters on the line.
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    let plain = value.bytes().all(|b| (b' '..=b'~').contains(&b))
        && quoted.len() + attribute.len() + 4 <= MAX_LINE_LEN;
    if plain {
        return format!("\r\n {attribute}=\"{quoted}\"");
    }
    let encoded = percent_encode(value);
    let first_room = PARAMETER_SEGMENT_LEN - "utf-8''".len();
    if encoded.len() <= first_room {
        return format!("\r\n {attribute}*=utf-8''{encoded}");
    }
    let mut out = String::new();
    let mut rest = encoded.as_str();
    let mut index = 0;
    while !rest.is_empty() {
        let room = if index == 0 {
            first_room
        } else {
            PARAMETER_SEGMENT_LEN
        };
        let mut end = rest.len().min(room);
        // Never split a %XX escape.
        if let Some(percent) = rest[..end].rfind('%')
            && percent + 3 > end
        {
            end = percent;
        }
        let (segment, tail) = rest.split_at(end);
        let charset = if index == 0 { "utf-8''" } else { "" };
        let separator = if tail.is_empty() { "" } else { ";" };
        out.push_str(&format!(
            "\r\n {attribute}*{index}*={charset}{segment}{separator}"
        ));
        rest = tail;
        index += 1;
    }
    out
}

/// RFC 2231 percent-encoding of UTF-8: letters, digits and `-._~` stay, the rest is %XX.
fn percent_encode(value: &str) -> String {
    value.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn long_non_ascii_subject_splits_into_words_of_whole_characters() {
        let subject = "スキャンしたドキュメント — 営業部の複合機から送信されました (2024年)";
        let header = subject_header(subject);
        let mut decoded = String::new();
        for (i, line) in header.trim_end_matches("\r\n").split("\r\n").enumerate() {
            assert!(line.len() <= MAX_LINE_LEN, "{line}");
            let word = if i == 0 {
                line.strip_prefix("Subject: ").unwrap()
            } else {
                line.strip_prefix(' ').unwrap()
            };
            let b64 = word
                .strip_prefix("=?UTF-8?B?")
                .unwrap()
                .strip_suffix("?=")
                .unwrap();
            // Each word decodes on its own to valid UTF-8 (RFC 2047 §5).
            decoded.push_str(&String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap());
        }
        assert_eq!(decoded, subject);
        assert!(header.matches("=?UTF-8?B?").count() > 1);
    }

    /// The unfolded value of a Subject header, encoded words decoded (RFC 2047 §6.2:
    /// the folding whitespace between two encoded words is not part of the text).
    fn subject_text(header: &str) -> String {
        let value = header
            .strip_prefix("Subject:")
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap();
        if !value.contains("=?UTF-8?B?") {
            return value
                .replace("\r\n", "")
                .strip_prefix(' ')
                .unwrap_or("")
                .to_owned();
        }
        let mut text = Vec::new();
        for word in value.split("\r\n ") {
            let b64 = word
                .trim()
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            text.extend(STANDARD.decode(b64).unwrap());
        }
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn no_folded_line_is_whitespace_only_whatever_the_spaces() {
        let long = "word ".repeat(15);
        let cases = [
            "Scan ".to_owned(),
            " Scan".to_owned(),
            "a  b".to_owned(),
            "   ".to_owned(),
            long.clone(),
            format!("{}{}", "x".repeat(66), " ".repeat(20)),
            format!("{long}  {long}"),
        ];
        for subject in cases {
            let header = subject_header(&subject);
            let lines: Vec<&str> = header.trim_end_matches("\r\n").split("\r\n").collect();
            for line in &lines {
                assert!(
                    !line.trim().is_empty() && line.len() <= MAX_LINE_LEN,
                    "{subject:?} gave the line {line:?} in {header:?}"
                );
            }
            assert_eq!(subject_text(&header), subject, "{header:?}");
        }
    }

    #[test]
    fn ascii_subjects_stay_plain_and_fold_at_spaces() {
        assert_eq!(subject_header("Scan 1"), "Subject: Scan 1\r\n");
        assert_eq!(subject_header(""), "Subject:\r\n");
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let header = subject_header(long);
        assert!(header.contains("\r\n "));
        assert!(header.split("\r\n").all(|l| l.len() <= MAX_LINE_LEN));
        assert_eq!(
            header.replace("\r\n", "").trim_end(),
            format!("Subject: {long}")
        );
        // Something that looks like an encoded word is encoded, so it reads back as typed.
        assert_eq!(
            subject_header("=?x?="),
            format!("Subject: {}\r\n", encoded_word("=?x?="))
        );
    }

    #[test]
    fn non_ascii_file_names_use_rfc2231() {
        let part = parameter("filename", "Größe.pdf");
        // Python: urllib.parse.quote("Größe.pdf", safe="") == "Gr%C3%B6%C3%9Fe.pdf"
        assert_eq!(part, "\r\n filename*=utf-8''Gr%C3%B6%C3%9Fe.pdf");
        assert_eq!(
            parameter("filename", "Scan 2024 – Büro.pdf"),
            "\r\n filename*=utf-8''Scan%202024%20%E2%80%93%20B%C3%BCro.pdf"
        );
        assert_eq!(
            parameter("name", "scan \"1\".pdf"),
            "\r\n name=\"scan \\\"1\\\".pdf\""
        );
    }

    #[test]
    fn long_file_names_use_rfc2231_continuations_without_splitting_escapes() {
        let name = format!("{}.pdf", "Überweisungsbestätigung ".repeat(4));
        let part = parameter("filename", &name);
        let mut joined = String::new();
        let lines: Vec<&str> = part.split("\r\n").skip(1).collect();
        assert!(lines.len() > 1);
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= MAX_LINE_LEN, "{line}");
            let prefix = format!(" filename*{i}*=");
            let mut value = line.strip_prefix(&prefix).unwrap();
            if i == 0 {
                value = value.strip_prefix("utf-8''").unwrap();
            }
            let value = value.strip_suffix(';').unwrap_or(value);
            assert!(
                !value.ends_with('%') && !value[value.len().saturating_sub(2)..].starts_with('%')
            );
            joined.push_str(value);
        }
        assert_eq!(joined, percent_encode(&name));
    }

    #[test]
    fn dates_are_rfc5322_in_utc() {
        // Checked with Python's email.utils.formatdate.
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_251_199),
            "Thu, 29 Feb 2024 23:59:59 +0000"
        );
        assert_eq!(
            rfc5322_date(4_102_444_800),
            "Fri, 01 Jan 2100 00:00:00 +0000"
        );
    }
}
