//! The per-byte work of sending a scan: every byte of an attachment goes through
//! [`base64_lines`] once and through [`verbatim_prefix`] once, so these two decide how much
//! CPU a send costs. They live in a crate of their own because the component is built for
//! size (`opt-level = "z"`) and this crate for speed (`opt-level = 3`, set per package in
//! the root `Cargo.toml`): a function only gets its crate's optimisation level if it is
//! compiled here, which is why nothing here is generic or `#[inline]` across the crate
//! boundary, and why the callers pass a `Vec<u8>` to append to rather than a writer.
//!
//! Every stored record the component reads is scanned once too, by [`json_openers`].
//!
//! Both write or scan in place in large runs: in wasm a `memory.copy` per 76-byte line is
//! a call into the runtime, so per-line copies are what made a send slow.

/// Characters of a MIME base64 line (RFC 2045 §6.8).
pub const LINE_CHARS: usize = 76;
/// Bytes of input that fill one line: 57 bytes make 76 characters.
pub const LINE_INPUT: usize = LINE_CHARS / 4 * 3;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the base64 of `input` to `out` in lines of 76 characters (57 bytes of input
/// each), the last one shorter and padded with `=` when `input` does not fill it. Lines
/// are separated by CRLF, and a CRLF also goes before the first line unless `first` says
/// it is the first line of the body (the caller streams a body in pieces: only the very
/// first line has no CRLF before it, and none follows the last).
pub fn base64_lines(input: &[u8], first: bool, out: &mut Vec<u8>) {
    let full = input.len() / LINE_INPUT;
    let rest = input.len() % LINE_INPUT;
    let lines = full + usize::from(rest > 0);
    if lines == 0 {
        return;
    }
    let separators = lines - usize::from(first);
    let total = full * LINE_CHARS + rest.div_ceil(3) * 4 + separators * 2;
    let start = out.len();
    out.resize(start + total, 0);
    let mut dst = &mut out[start..];
    let mut needs_separator = !first;
    for line in input.chunks_exact(LINE_INPUT) {
        if needs_separator {
            dst[..2].copy_from_slice(b"\r\n");
            dst = &mut dst[2..];
        }
        needs_separator = true;
        let (encoded, next) = dst.split_at_mut(LINE_CHARS);
        encode_triplets(line, encoded);
        dst = next;
    }
    if rest > 0 {
        if needs_separator {
            dst[..2].copy_from_slice(b"\r\n");
            dst = &mut dst[2..];
        }
        let tail = &input[full * LINE_INPUT..];
        let whole = rest / 3 * 3;
        let (encoded, padded) = dst.split_at_mut(whole / 3 * 4);
        encode_triplets(&tail[..whole], encoded);
        let last = &tail[whole..];
        if !last.is_empty() {
            let a = last[0];
            let b = last.get(1).copied().unwrap_or(0);
            padded[0] = ALPHABET[usize::from(a >> 2)];
            padded[1] = ALPHABET[usize::from((a & 0x03) << 4 | b >> 4)];
            padded[2] = match last.len() {
                2 => ALPHABET[usize::from((b & 0x0f) << 2)],
                _ => b'=',
            };
            padded[3] = b'=';
        }
    }
}

/// Base64 of `input` (a multiple of 3 bytes) into `out` (4/3 of its length).
#[inline(always)]
fn encode_triplets(input: &[u8], out: &mut [u8]) {
    for (three, four) in input.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
        let n = u32::from(three[0]) << 16 | u32::from(three[1]) << 8 | u32::from(three[2]);
        four[0] = ALPHABET[(n >> 18) as usize & 63];
        four[1] = ALPHABET[(n >> 12) as usize & 63];
        four[2] = ALPHABET[(n >> 6) as usize & 63];
        four[3] = ALPHABET[n as usize & 63];
    }
}

/// How many leading bytes of `chunk` go out unchanged under SMTP dot-stuffing (RFC 5321
/// §4.5.2): the prefix ends before the first byte that needs work — a `.` at the start of
/// a line (`at_line_start` says whether `chunk` begins one), a CR not followed by LF
/// within the chunk (a CR as its last byte too: the next chunk decides what it was), or a
/// LF not preceded by CR within the chunk. A prefix that ends after a LF ends a line.
/// Well-formed text with no line beginning with `.` (such as base64 lines) is one prefix.
pub fn verbatim_prefix(chunk: &[u8], at_line_start: bool) -> usize {
    if at_line_start && chunk.first() == Some(&b'.') {
        return 0;
    }
    let mut i = 0;
    while i + 16 <= chunk.len() {
        if has_line_break(&chunk[i..i + 16])
            && let Some(stop) = first_stop(chunk, i, i + 16)
        {
            return stop;
        }
        i += 16;
    }
    first_stop(chunk, i, chunk.len()).unwrap_or(chunk.len())
}

/// The first position in `from..to` where the verbatim prefix of `chunk` stops.
#[inline(always)]
fn first_stop(chunk: &[u8], from: usize, to: usize) -> Option<usize> {
    for j in from..to {
        match chunk[j] {
            b'\r' if chunk.get(j + 1) != Some(&b'\n') => return Some(j),
            b'\n' if j == 0 || chunk[j - 1] != b'\r' => return Some(j),
            // A CRLF: the next line is stuffed if it begins with a dot.
            b'\n' if chunk.get(j + 1) == Some(&b'.') => return Some(j + 1),
            _ => {}
        }
    }
    None
}

/// Whether the 16 bytes of `block` hold a CR or a LF.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn has_line_break(block: &[u8]) -> bool {
    use core::arch::wasm32::{u8x16_eq, u8x16_splat, v128, v128_any_true, v128_load, v128_or};
    assert!(block.len() >= 16);
    // SAFETY: `block` holds at least 16 readable bytes; v128.load needs no alignment.
    let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
    v128_any_true(v128_or(
        u8x16_eq(v, u8x16_splat(b'\r')),
        u8x16_eq(v, u8x16_splat(b'\n')),
    ))
}

/// Whether the 16 bytes of `block` hold a CR or a LF (two 64-bit words at a time).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn has_line_break(block: &[u8]) -> bool {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&block[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    has_byte(word(0), b'\r')
        | has_byte(word(0), b'\n')
        | has_byte(word(8), b'\r')
        | has_byte(word(8), b'\n')
}

/// Whether any byte of `word` is `byte` (the exact "has zero byte" test on `word ^ byte…`).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn has_byte(word: u64, byte: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS != 0
}

/// How many `[` and `{` bytes `text` holds, inside strings or not: JSON with no more of
/// them than a nesting limit cannot nest past it, which spares the exact (and slower)
/// depth scan for every record read.
pub fn json_openers(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'[' || b == b'{').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 13) as u8).collect()
    }

    #[test]
    fn lines_are_the_base64_of_the_input_in_76_characters() {
        for len in [0, 1, 2, 3, 4, 56, 57, 58, 113, 114, 115, 1000, 57 * 100] {
            let data = sample(len);
            for first in [true, false] {
                let mut out = b"head".to_vec();
                base64_lines(&data, first, &mut out);
                let text = std::str::from_utf8(&out[4..]).unwrap();
                let body = if first || text.is_empty() {
                    text
                } else {
                    text.strip_prefix("\r\n")
                        .expect("a CRLF before the first line")
                };
                let lines: Vec<&str> = body.split("\r\n").collect();
                if len > 0 {
                    assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
                    assert!(lines.last().unwrap().len() <= 76);
                }
                assert_eq!(
                    body.replace("\r\n", ""),
                    STANDARD.encode(&data),
                    "len {len}"
                );
            }
        }
    }

    /// The prefix by definition, byte by byte.
    fn slow_prefix(chunk: &[u8], at_line_start: bool) -> usize {
        let mut line_start = at_line_start;
        for (j, &b) in chunk.iter().enumerate() {
            let bad = match b {
                b'.' => line_start,
                b'\r' => chunk.get(j + 1) != Some(&b'\n'),
                b'\n' => j == 0 || chunk[j - 1] != b'\r',
                _ => false,
            };
            if bad {
                return j;
            }
            line_start = b == b'\n';
        }
        chunk.len()
    }

    #[test]
    fn the_verbatim_prefix_stops_where_stuffing_has_work() {
        assert_eq!(verbatim_prefix(b".x", true), 0);
        assert_eq!(verbatim_prefix(b".x", false), 2);
        assert_eq!(verbatim_prefix(b"ab\r\n.x", false), 4);
        assert_eq!(verbatim_prefix(b"ab\r\ncd", false), 6);
        assert_eq!(verbatim_prefix(b"ab\rcd", false), 2);
        assert_eq!(verbatim_prefix(b"ab\ncd", false), 2);
        assert_eq!(verbatim_prefix(b"\ncd", false), 0);
        assert_eq!(verbatim_prefix(b"abc\r", false), 3);
        // Every position of each special byte, inside and across 16-byte blocks.
        let mut base = Vec::new();
        base64_lines(&sample(57 * 3), true, &mut base);
        for special in [&b"."[..], b"\r", b"\n", b"\r\n.", b"\n.", b"\r\r\n"] {
            for at in 0..base.len() {
                let mut chunk = base.clone();
                chunk.splice(at..at, special.iter().copied());
                for start in [true, false] {
                    assert_eq!(
                        verbatim_prefix(&chunk, start),
                        slow_prefix(&chunk, start),
                        "{special:?} at {at}"
                    );
                }
            }
        }
        assert_eq!(verbatim_prefix(&base, true), base.len());
    }

    #[test]
    fn json_openers_counts_brackets_and_braces_anywhere() {
        assert_eq!(json_openers(b""), 0);
        assert_eq!(json_openers(br#"{"a":[1,{"b":"[{"}]}"#), 5);
        assert_eq!(json_openers(&[b'['; 1000]), 1000);
        assert_eq!(json_openers(b"]}]}"), 0);
    }
}
