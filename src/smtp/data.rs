//! The message as it travels after `DATA` (RFC 5321 §4.5.2): every line ends in CRLF, a
//! line beginning with `.` gets another `.`, and `CRLF.CRLF` ends the message. Done here,
//! chunk by chunk, so no caller can end a message early with a stray `.` line.

/// Transparency encoding of a message streamed in chunks of any size. Bare CR and bare LF
/// become CRLF; a CRLF split across two chunks stays one line break.
#[derive(Clone, Debug)]
pub struct DotStuffer {
    /// The last byte written ended a line (or nothing was written yet).
    at_line_start: bool,
    /// The last chunk ended in CR: whether a LF follows decides what it was.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self {
            at_line_start: true,
            pending_cr: false,
        }
    }
}

impl DotStuffer {
    /// Encodes one chunk of the message, appending the bytes to send to `out`.
    pub fn write(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 2);
        // Copies what needs no change in one run (a base64 body is one such run, however
        // many lines it has) and handles the byte where the run stops, one at a time.
        while let Some(&first) = chunk.first() {
            if self.pending_cr {
                self.pending_cr = false;
                self.line_break(out);
                if first == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            let run = mfp_wire::verbatim_prefix(chunk, self.at_line_start);
            if run > 0 {
                out.extend_from_slice(&chunk[..run]);
                self.at_line_start = chunk[run - 1] == b'\n';
                chunk = &chunk[run..];
            }
            match chunk.first() {
                None => {}
                // A line beginning with a dot.
                Some(b'.') => {
                    out.extend_from_slice(b"..");
                    self.at_line_start = false;
                    chunk = &chunk[1..];
                }
                // A CR at the end of the chunk: the next chunk says whether LF follows.
                Some(b'\r') if chunk.len() == 1 => {
                    self.pending_cr = true;
                    chunk = &[];
                }
                // A bare CR or a bare LF.
                Some(_) => {
                    self.line_break(out);
                    chunk = &chunk[1..];
                }
            }
        }
    }

    /// Ends the message: completes the last line if it is open, then `.` CRLF.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        if self.pending_cr {
            self.line_break(out);
        }
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    fn line_break(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\n");
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(chunks: &[&[u8]]) -> Vec<u8> {
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::new();
        for chunk in chunks {
            stuffer.write(chunk, &mut out);
        }
        stuffer.finish(&mut out);
        out
    }

    /// What a receiving server does: undo the stuffing, stop at the lone `.` line.
    fn unstuff(data: &[u8]) -> Vec<u8> {
        let text = data.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            assert!(line.ends_with(b"\r\n"), "every line ends in CRLF");
            assert_ne!(line, b".\r\n", "no early terminator");
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn a_line_beginning_with_a_dot_gets_another() {
        assert_eq!(
            stuff(&[b"Hi\r\n.\r\n..x\r\n.end"]),
            b"Hi\r\n..\r\n...x\r\n..end\r\n.\r\n"
        );
    }

    #[test]
    fn the_first_line_is_stuffed_too() {
        assert_eq!(stuff(&[b".hidden\r\n"]), b"..hidden\r\n.\r\n");
    }

    #[test]
    fn a_dot_inside_a_line_is_left_alone() {
        assert_eq!(stuff(&[b"a.b\r\n"]), b"a.b\r\n.\r\n");
    }

    #[test]
    fn bare_lf_and_bare_cr_become_crlf() {
        assert_eq!(stuff(&[b"a\nb\rc\r\n"]), b"a\r\nb\r\nc\r\n.\r\n");
        assert_eq!(stuff(&[b"a\r\r\nb"]), b"a\r\n\r\nb\r\n.\r\n");
        assert_eq!(stuff(&[b"x\r"]), b"x\r\n.\r\n");
    }

    #[test]
    fn an_open_last_line_is_completed_before_the_terminator() {
        assert_eq!(stuff(&[b"no newline"]), b"no newline\r\n.\r\n");
        assert_eq!(stuff(&[b"newline\r\n"]), b"newline\r\n.\r\n");
    }

    #[test]
    fn an_empty_message_is_just_the_terminator() {
        assert_eq!(stuff(&[]), b".\r\n");
    }

    #[test]
    fn chunk_boundaries_change_nothing() {
        let message: &[u8] = b"From: a@x\r\n\r\n.\r\nline\r\n.\n\r\n..two\r.three\nend.";
        let whole = stuff(&[message]);
        for size in 1..message.len() {
            let chunks: Vec<&[u8]> = message.chunks(size).collect();
            assert_eq!(stuff(&chunks), whole, "chunk size {size}");
        }
        assert_eq!(
            unstuff(&whole),
            b"From: a@x\r\n\r\n.\r\nline\r\n.\r\n\r\n..two\r\n.three\r\nend.\r\n"
        );
    }

    #[test]
    fn a_crlf_dot_crlf_in_the_content_never_ends_the_message() {
        let data = stuff(&[b"a\r\n.\r\n", b"MAIL FROM:<evil@x>\r\n"]);
        assert_eq!(unstuff(&data), b"a\r\n.\r\nMAIL FROM:<evil@x>\r\n");
    }
}
