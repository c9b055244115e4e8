//! Helpers shared by the targets: splitting an input into fields, base64 (the stable test
//! crate that includes these files has no base64 dependency), and the CRLF checks.

/// The field separator of structured inputs.
pub const SEP: u8 = 0xFF;

/// The fields of a structured input. Missing fields read as empty.
pub struct Fields<'a> {
    parts: Vec<&'a [u8]>,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            parts: data.split(|&b| b == SEP).collect(),
        }
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        self.parts.get(i).copied().unwrap_or_default()
    }

    pub fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(self.bytes(i)).into_owned()
    }

    /// The first byte of field `i` (0 when empty): a selector or flags.
    pub fn byte(&self, i: usize) -> u8 {
        self.bytes(i).first().copied().unwrap_or(0)
    }

    /// Everything from field `i` on, separators included.
    pub fn rest(&self, i: usize) -> Vec<&'a [u8]> {
        self.parts.iter().skip(i).copied().collect()
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Base64 with padding (RFC 4648 §4), as XOAUTH2 and MIME use it.
pub fn base64(bytes: &[u8]) -> String {
    encode(bytes, STANDARD, true)
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use it.
pub fn base64url(bytes: &[u8]) -> String {
    encode(bytes, URL_SAFE, false)
}

/// Decodes base64 (either alphabet, padding optional); `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Panics unless every CR in `bytes` starts a CRLF and every LF ends one: no bare line
/// break that a peer could read as the end of a line where the writer meant none.
pub fn assert_crlf_only(what: &str, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "{what}: bare CR at {i}"),
            b'\n' => assert!(i > 0 && bytes[i - 1] == b'\r', "{what}: bare LF at {i}"),
            _ => {}
        }
    }
}

/// The lines of CRLF-terminated `bytes`, without their CRLF (a last unterminated piece
/// is returned too).
pub fn crlf_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
        lines.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// Whether `text` holds a control character (CR, LF, NUL, DEL, C1…).
pub fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64(&bytes)).as_deref(), Some(&bytes[..]));
            assert_eq!(
                base64_decode(&base64url(&bytes)).as_deref(),
                Some(&bytes[..])
            );
        }
        assert_eq!(base64(b"user"), "dXNlcg==");
    }
}
