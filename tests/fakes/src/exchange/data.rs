//! The message body of DATA and BDAT: dot-unstuffing (RFC 5321 4.5.2), end detection
//! (`CRLF.CRLF`) and a bounded sink that counts, hashes and keeps what the mailbox shows.

use sha2::{Digest, Sha256};

/// Most header bytes kept per message.
pub const MAX_HEADERS: usize = 64 * 1024;

/// Where the DATA reader stands relative to line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// At the start of a line.
    LineStart,
    /// After a `.` at the start of a line.
    Dot,
    /// After `.` `CR` at the start of a line.
    DotCr,
    /// Inside a line.
    Inside,
    /// After a `CR` inside a line.
    Cr,
}

/// Reads DATA's dot-stuffed body from arbitrary chunks.
#[derive(Debug)]
pub struct DotReader {
    at: At,
}

impl DotReader {
    pub fn new() -> Self {
        Self { at: At::LineStart }
    }

    /// Unstuffs `input` into `sink` until the end marker. Returns how many bytes of
    /// `input` were consumed and whether the end marker was among them.
    pub fn push(&mut self, input: &[u8], sink: &mut Sink) -> (usize, bool) {
        let mut out = Vec::with_capacity(input.len().min(64 * 1024));
        for (i, &b) in input.iter().enumerate() {
            self.at = match (self.at, b) {
                (At::LineStart, b'.') => At::Dot,
                (At::Dot, b'\r') => At::DotCr,
                (At::DotCr, b'\n') => {
                    sink.write(&out);
                    return (i + 1, true);
                }
                (At::DotCr, other) => {
                    // `.` CR without LF: the dot was stuffing; keep the CR and go on.
                    out.push(b'\r');
                    out.push(other);
                    after(other)
                }
                // A stuffed dot: `..` is `.`, `.x` (not RFC-conformant) is `x`.
                (At::Dot, other) => {
                    out.push(other);
                    after(other)
                }
                (At::Cr, b'\n') => {
                    out.push(b'\n');
                    At::LineStart
                }
                (_, other) => {
                    out.push(other);
                    after(other)
                }
            };
        }
        sink.write(&out);
        (input.len(), false)
    }
}

fn after(b: u8) -> At {
    if b == b'\r' { At::Cr } else { At::Inside }
}

/// What DATA's raw (still dot-stuffed) lines broke, checked as they stream by: a bare LF
/// (RFC 5321 §2.3.8), a line over 998 octets before stuffing (RFC 5322 §2.1.1), 8-bit
/// bytes (allowed only after `BODY=8BITMIME` or `SMTPUTF8`).
#[derive(Clone, Debug, Default)]
pub struct LineCheck {
    /// Octets of the current line so far, CR and LF and a stuffing dot not counted.
    line_len: usize,
    /// The current line began with a (stuffing) dot.
    stuffed: bool,
    /// The previous byte was CR.
    after_cr: bool,
    bare_lf: bool,
    long_line: bool,
    eight_bit: bool,
}

impl LineCheck {
    pub fn push(&mut self, raw: &[u8]) {
        for &b in raw {
            match b {
                b'\n' => {
                    self.bare_lf |= !self.after_cr;
                    self.line_len = 0;
                    self.stuffed = false;
                }
                b'\r' => {}
                b'.' if self.line_len == 0 && !self.stuffed && !self.after_cr => {
                    self.stuffed = true;
                }
                _ => {
                    self.eight_bit |= b >= 0x80;
                    // A bare CR before this byte was data too.
                    self.line_len += 1 + usize::from(self.after_cr);
                    self.long_line |= self.line_len > MAX_LINE_OCTETS;
                }
            }
            self.after_cr = b == b'\r';
        }
    }

    /// The reply refusing the message, if it broke a rule. `eight_bit_allowed`: the
    /// client gave `BODY=8BITMIME` or `SMTPUTF8`.
    pub fn refusal(&self, eight_bit_allowed: bool) -> Option<&'static str> {
        if self.bare_lf {
            Some(
                "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal; message contains bare linefeeds, which cannot be sent via DATA",
            )
        } else if self.long_line {
            Some(
                "554 5.6.0 Message line too long: a line has more than 998 octets (RFC 5322 section 2.1.1)",
            )
        } else if self.eight_bit && !eight_bit_allowed {
            Some("554 5.6.1 Message contains 8-bit data, but MAIL FROM did not give BODY=8BITMIME")
        } else {
            None
        }
    }
}

/// Longest line of a message, CRLF excluded (RFC 5322 §2.1.1).
const MAX_LINE_OCTETS: usize = 998;

/// Counts, hashes and keeps a message's bytes within limits.
pub struct Sink {
    size: u64,
    hasher: Sha256,
    /// The whole message while it is not larger than `keep_raw_up_to`.
    raw: Option<Vec<u8>>,
    keep_raw_up_to: usize,
    headers: Vec<u8>,
    headers_done: bool,
}

impl Sink {
    pub fn new(keep_raw_up_to: usize) -> Self {
        Self {
            size: 0,
            hasher: Sha256::new(),
            raw: Some(Vec::new()),
            keep_raw_up_to,
            headers: Vec::new(),
            headers_done: false,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.size = self.size.saturating_add(bytes.len() as u64);
        self.hasher.update(bytes);
        if let Some(raw) = &mut self.raw {
            if raw.len() + bytes.len() <= self.keep_raw_up_to {
                raw.extend_from_slice(bytes);
            } else {
                self.raw = None;
            }
        }
        if !self.headers_done {
            let room = MAX_HEADERS - self.headers.len();
            let start = self.headers.len().saturating_sub(3);
            self.headers
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
            if let Some(end) = find(&self.headers[start..], b"\r\n\r\n") {
                self.headers.truncate(start + end + 2);
                self.headers_done = true;
            } else if self.headers.len() >= MAX_HEADERS {
                self.headers_done = true;
            }
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn headers(&self) -> &[u8] {
        &self.headers
    }

    /// The size, the SHA-256 (hex) and the raw bytes if kept.
    pub fn finish(self) -> (u64, String, Option<Vec<u8>>) {
        let digest = self.hasher.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.size, hex, self.raw)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff_in_chunks(input: &[u8], chunk: usize) -> (Vec<u8>, usize) {
        let mut reader = DotReader::new();
        let mut sink = Sink::new(1 << 20);
        let mut consumed = 0;
        for piece in input.chunks(chunk) {
            let (n, done) = reader.push(piece, &mut sink);
            consumed += n;
            if done {
                break;
            }
        }
        (sink.finish().2.unwrap_or_default(), consumed)
    }

    #[test]
    fn dot_stuffed_lines_are_unstuffed_and_the_end_marker_is_not_kept() {
        let wire = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        for chunk in [1, 2, 3, 7, wire.len()] {
            let (body, consumed) = unstuff_in_chunks(wire, chunk);
            assert_eq!(body, b"Subject: x\r\n\r\n.leading dot\r\n", "chunk {chunk}");
            assert_eq!(consumed, wire.len() - b"QUIT\r\n".len(), "chunk {chunk}");
        }
    }

    #[test]
    fn an_empty_message_ends_at_once() {
        assert_eq!(unstuff_in_chunks(b".\r\n", 1), (Vec::new(), 3));
    }

    #[test]
    fn a_dot_inside_a_line_is_data() {
        let (body, _) = unstuff_in_chunks(b"a.\r\nb .\r\n.\r\n", 1);
        assert_eq!(body, b"a.\r\nb .\r\n");
    }

    #[test]
    fn large_messages_keep_headers_size_and_hash_but_not_the_bytes() {
        let mut sink = Sink::new(10);
        sink.write(b"From: a@b\r\nTo: c@d\r\n\r\nbody body body");
        assert_eq!(sink.headers(), b"From: a@b\r\nTo: c@d\r\n");
        let (size, hash, raw) = sink.finish();
        assert_eq!(size, 36);
        assert_eq!(hash.len(), 64);
        assert!(raw.is_none());
    }
}
