//! The body encodings, all 7-bit: quoted-printable for text, and base64 in lines of 76
//! characters, streamed chunk by chunk so an attachment is never held whole.

use std::fmt::Write as _;

use super::MAX_LINE_LEN;

/// Bytes of input per base64 line: 57 bytes make 76 characters.
const BASE64_LINE_INPUT: usize = MAX_LINE_LEN / 4 * 3;

/// How the text part is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextEncoding {
    /// Readable in the raw message; best for mostly-ASCII text.
    #[default]
    QuotedPrintable,
    /// Smaller for text in non-Latin scripts.
    Base64,
}

/// Streaming base64 in lines of 76 characters. Up to 56 bytes that do not fill a line
/// are carried to the next chunk. Lines are separated by CRLF; the last has none, since
/// the CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1). The encoding
/// itself is `mfp_wire::base64_lines`, built for speed.
#[derive(Clone, Debug, Default)]
pub(super) struct Base64Lines {
    carry: Vec<u8>,
    lines_written: u64,
}

impl Base64Lines {
    pub(super) fn write(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_into(chunk, &mut out);
        out
    }

    /// Appends the complete lines so far to `out`.
    pub(super) fn write_into(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        if !self.carry.is_empty() {
            let take = (BASE64_LINE_INPUT - self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.carry.len() < BASE64_LINE_INPUT {
                return;
            }
            mfp_wire::base64_lines(&self.carry, self.lines_written == 0, out);
            self.lines_written += 1;
            self.carry.clear();
        }
        let whole = chunk.len() / BASE64_LINE_INPUT * BASE64_LINE_INPUT;
        mfp_wire::base64_lines(&chunk[..whole], self.lines_written == 0, out);
        self.lines_written += (whole / BASE64_LINE_INPUT) as u64;
        self.carry.extend_from_slice(&chunk[whole..]);
    }

    pub(super) fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        mfp_wire::base64_lines(&self.carry, self.lines_written == 0, &mut out);
        out
    }
}

/// The size in bytes of `len` bytes of attachment as written (base64 lines and their
/// CRLFs), so a caller can announce the message size to the server (SMTP `SIZE=`).
pub fn base64_encoded_len(len: u64) -> u64 {
    let line_input = BASE64_LINE_INPUT as u64;
    let lines = len.div_ceil(line_input);
    len.div_ceil(3) * 4 + lines.saturating_sub(1) * 2
}

/// The text with every line break (CRLF, LF or CR) as CRLF.
pub(super) fn crlf_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// Quoted-printable (RFC 2045 §6.7): lines of at most 76 characters, soft breaks `=`
/// where a line is longer, trailing spaces and tabs encoded, line breaks as CRLF.
pub fn quoted_printable(text: &str) -> String {
    let normalized = crlf_lines(text);
    let mut out = String::with_capacity(normalized.len() + normalized.len() / 8);
    for (n, line) in normalized.split("\r\n").enumerate() {
        if n > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut column = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !last,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Room for a soft break `=` after every token but the line's last.
            let limit = if last { MAX_LINE_LEN } else { MAX_LINE_LEN - 1 };
            if column + width > limit {
                out.push_str("=\r\n");
                column = 0;
            }
            if literal {
                out.push(b as char);
            } else {
                let _ = write!(out, "={b:02X}");
            }
            column += width;
        }
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use crate::mime::sample;

    /// The base64 body of a streamed attachment, as lines.
    fn encode_in_chunks(data: &[u8], chunk: usize) -> String {
        let mut lines = Base64Lines::default();
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            out.extend(lines.write(piece));
        }
        out.extend(lines.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn streamed_base64_decodes_back_across_awkward_chunk_sizes() {
        for len in [0, 1, 2, 3, 56, 57, 58, 114, 1000, 5000] {
            let data = sample(len);
            for chunk in [1, 2, 3, 57, 76, 1000] {
                let encoded = encode_in_chunks(&data, chunk);
                for line in encoded.split("\r\n") {
                    assert!(line.len() <= MAX_LINE_LEN, "{len}/{chunk}: {}", line.len());
                }
                let lines: Vec<&str> = encoded.split("\r\n").collect();
                if len > 0 {
                    assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
                }
                let decoded = STANDARD.decode(encoded.replace("\r\n", "")).unwrap();
                assert_eq!(decoded, data, "len {len}, chunk {chunk}");
                assert_eq!(base64_encoded_len(len as u64), encoded.len() as u64);
                assert_eq!(
                    encoded,
                    encode_in_chunks(&data, len.max(1)),
                    "same as whole"
                );
            }
        }
    }

    #[test]
    fn the_carry_never_holds_a_whole_line() {
        let mut lines = Base64Lines::default();
        for size in [1, 56, 2, 100, 57, 3] {
            lines.write(&sample(size));
            assert!(lines.carry.len() < BASE64_LINE_INPUT);
        }
    }

    #[test]
    fn quoted_printable_matches_hand_encoded_text() {
        // Python: quopri.encodestring("Grüße a=b\nline2 \n".encode()), with CRLF.
        assert_eq!(
            quoted_printable("Grüße a=b\nline2 \n"),
            "Gr=C3=BC=C3=9Fe a=3Db\r\nline2=20\r\n"
        );
        assert_eq!(quoted_printable("tab\t\r\nx"), "tab=09\r\nx");
        assert_eq!(quoted_printable("a\rb"), "a\r\nb");
    }

    #[test]
    fn quoted_printable_lines_stay_within_76_columns() {
        let text = format!(
            "{}\n{}\n{}",
            "x".repeat(200),
            "é".repeat(100),
            "=".repeat(80)
        );
        let encoded = quoted_printable(&text);
        let mut decoded = Vec::new();
        for line in encoded.split("\r\n") {
            assert!(line.len() <= MAX_LINE_LEN, "{}: {line}", line.len());
        }
        // Decode: soft breaks vanish, =XX become bytes.
        let joined = encoded.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            text.replace('\n', "\r\n")
        );
    }
}
