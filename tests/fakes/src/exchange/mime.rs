//! A received message read as a person would read it in Outlook: subject, sender and
//! recipients with RFC 2047 encoded words decoded, the plain text, and the attachments
//! with their file names (RFC 2231 included) and decoded sizes. The demo's mailbox page
//! and tests show what Exchange received through this, instead of each parsing MIME.
//!
//! The input is whatever a client sent, so nothing here panics or grows without bound:
//! nesting is limited to [`MAX_DEPTH`] multiparts and [`MAX_PARTS`] parts, and anything
//! unreadable (bad base64, an unknown charset) is shown as best it can be, never refused.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::header_value;
use crate::world::ReceivedMessage;

/// Multiparts nested deeper than this are not opened (their content is ignored).
pub const MAX_DEPTH: usize = 8;
/// Parts read at most per message; later ones are ignored.
pub const MAX_PARTS: usize = 1_000;

/// Base64 as mail clients write it: padding optional, whitespace removed beforehand.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A received message, decoded for display.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodedMessage {
    /// The Subject header, decoded (empty when absent).
    pub subject: String,
    /// The From header, decoded; the envelope sender when there is no From header.
    pub from: String,
    /// The To header's entries, decoded; the envelope recipients when there is no To
    /// header.
    pub to: Vec<String>,
    /// The first `text/plain` part that is not an attachment, decoded to text.
    pub text: String,
    /// Every attachment, in message order.
    pub attachments: Vec<DecodedAttachment>,
    /// Whether the whole message was kept: a message over
    /// [`Settings::keep_raw_up_to`](crate::Settings) keeps its headers only, so `text` and
    /// `attachments` are empty.
    pub complete: bool,
}

/// One attachment of a [`DecodedMessage`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecodedAttachment {
    /// The file name (`filename` of Content-Disposition, else `name` of Content-Type),
    /// `(unnamed)` when there is none.
    pub name: String,
    /// The media type, lower-case, e.g. `application/pdf`.
    pub content_type: String,
    /// Size after the transfer encoding is undone, in bytes.
    pub size: u64,
    /// SHA-256 of the decoded content, lower-case hex, so a test can compare it with the
    /// file that was sent.
    pub sha256: String,
}

impl ReceivedMessage {
    /// The message as a reader sees it: decoded headers, text and attachments.
    pub fn decoded(&self) -> DecodedMessage {
        let subject = header_value(self.headers.as_bytes(), "Subject")
            .map(|s| decode_words(&s))
            .unwrap_or_default();
        let from = header_value(self.headers.as_bytes(), "From")
            .map(|f| decode_words(&f))
            .unwrap_or_else(|| self.mail_from.clone());
        let to = header_value(self.headers.as_bytes(), "To")
            .map(|t| address_list(&decode_words(&t)))
            .unwrap_or_else(|| self.rcpt_to.clone());
        let mut decoded = DecodedMessage {
            subject,
            from,
            to,
            complete: self.raw.is_some(),
            ..DecodedMessage::default()
        };
        if let Some(raw) = &self.raw {
            let (head, body) = split_entity(raw);
            let mut parts = 0;
            walk(&parse_headers(head), body, 0, &mut parts, &mut decoded);
        }
        decoded
    }
}

/// Adds the text and attachments of one entity (`headers` and `body`) to `out`.
fn walk(
    headers: &[(String, String)],
    body: &[u8],
    depth: usize,
    parts: &mut usize,
    out: &mut DecodedMessage,
) {
    *parts += 1;
    if *parts > MAX_PARTS {
        return;
    }
    let (media, type_params) = header(headers, "content-type")
        .map(parse_parameters)
        .unwrap_or_else(|| ("text/plain".into(), Vec::new()));
    if media.starts_with("multipart/") {
        let boundary = type_params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.as_str());
        if let Some(boundary) = boundary.filter(|b| !b.is_empty())
            && depth < MAX_DEPTH
        {
            for part in split_multipart(body, boundary) {
                let (part_headers, part_body) = split_entity(part);
                let part_headers = parse_headers(part_headers);
                walk(&part_headers, part_body, depth + 1, parts, out);
            }
        }
        return;
    }
    let (disposition, disposition_params) = header(headers, "content-disposition")
        .map(parse_parameters)
        .unwrap_or_default();
    let name =
        file_name(&disposition_params, "filename").or_else(|| file_name(&type_params, "name"));
    let content = undo_transfer_encoding(header(headers, "content-transfer-encoding"), body);
    let is_text = media == "text/plain" && disposition != "attachment" && name.is_none();
    if is_text {
        if out.text.is_empty() {
            let charset = type_params
                .iter()
                .find(|(k, _)| k == "charset")
                .map(|(_, v)| v.as_str())
                .unwrap_or("us-ascii");
            out.text = to_text(&content, charset);
        }
        return;
    }
    if disposition == "attachment" || name.is_some() || media != "text/html" {
        out.attachments.push(DecodedAttachment {
            name: name.unwrap_or_else(|| "(unnamed)".into()),
            content_type: media,
            size: content.len() as u64,
            sha256: hex(&Sha256::digest(&content)),
        });
    }
}

/// The header section and the body of an entity: they part at the first empty line.
fn split_entity(bytes: &[u8]) -> (&[u8], &[u8]) {
    if bytes.starts_with(b"\r\n") {
        return (&[], &bytes[2..]);
    }
    if bytes.starts_with(b"\n") {
        return (&[], &bytes[1..]);
    }
    if let Some(at) = find(bytes, b"\r\n\r\n") {
        return (&bytes[..at + 2], &bytes[at + 4..]);
    }
    if let Some(at) = find(bytes, b"\n\n") {
        return (&bytes[..at + 1], &bytes[at + 2..]);
    }
    (bytes, &[])
}

/// Header fields as (lower-case name, unfolded value), in order.
fn parse_headers(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    fields
}

/// The first value of header `name` (lower-case).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `type/subtype; key=value; key="quoted; value"` as the lower-case main value and the
/// parameters (lower-case keys, values unquoted).
fn parse_parameters(value: &str) -> (String, Vec<(String, String)>) {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            pieces.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    pieces.push(current);
    let mut pieces = pieces.into_iter();
    let main = pieces
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let params = pieces
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    (main, params)
}

/// Parameter `key` as a file name: RFC 2231 `key*=charset''%XX…`, its continuations
/// `key*0*=…`, `key*1=…`, or plain `key=…` (which clients often fill with RFC 2047 words).
fn file_name(params: &[(String, String)], key: &str) -> Option<String> {
    let extended = format!("{key}*");
    if let Some((_, value)) = params.iter().find(|(k, _)| *k == extended) {
        let (charset, encoded) = split_charset(value);
        return Some(to_text(&percent_decode(encoded), charset));
    }
    let mut pieces: Vec<(u32, bool, &str)> = params
        .iter()
        .filter_map(|(k, v)| {
            let index = k.strip_prefix(&extended)?;
            let (index, encoded) = match index.strip_suffix('*') {
                Some(i) => (i, true),
                None => (index, false),
            };
            Some((index.parse().ok()?, encoded, v.as_str()))
        })
        .collect();
    if !pieces.is_empty() {
        pieces.sort_by_key(|(i, _, _)| *i);
        // Percent-escapes are joined as bytes first: a UTF-8 character may span pieces.
        let mut bytes = Vec::new();
        let mut charset = "us-ascii";
        for (n, (_, encoded, value)) in pieces.into_iter().enumerate() {
            if encoded {
                let value = if n == 0 {
                    let (c, rest) = split_charset(value);
                    charset = c;
                    rest
                } else {
                    value
                };
                bytes.extend(percent_decode(value));
            } else {
                bytes.extend_from_slice(value.as_bytes());
            }
        }
        return Some(to_text(&bytes, charset));
    }
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| decode_words(v))
}

/// `charset'language'rest` of an RFC 2231 value; `us-ascii` when not in that form.
fn split_charset(value: &str) -> (&str, &str) {
    let mut parts = value.splitn(3, '\'');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(charset), Some(_language), Some(rest)) => (charset, rest),
        _ => ("us-ascii", value),
    }
}

/// The parts of a multipart body between its `--boundary` lines, up to `--boundary--`.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos <= body.len() {
        let line_end = find(&body[pos..], b"\n").map(|i| pos + i);
        let line = &body[pos..line_end.unwrap_or(body.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delimiter.as_slice()) {
            let closing = rest.starts_with(b"--");
            let rest = if closing { &rest[2..] } else { rest };
            if rest.iter().all(|b| *b == b' ' || *b == b'\t') {
                if let Some(s) = start {
                    // The line break before a delimiter belongs to the delimiter.
                    let mut end = pos;
                    if end > s && body[end - 1] == b'\n' {
                        end -= 1;
                        if end > s && body[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(&body[s..end]);
                }
                if closing {
                    return parts;
                }
                start = line_end.map(|e| e + 1);
            }
        }
        match line_end {
            Some(e) => pos = e + 1,
            None => break,
        }
    }
    // No closing delimiter: the last part runs to the end.
    if let Some(s) = start.filter(|s| *s <= body.len()) {
        parts.push(&body[s..]);
    }
    parts
}

/// The content of a leaf part, its Content-Transfer-Encoding undone.
fn undo_transfer_encoding(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("base64") => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            LENIENT_BASE64
                .decode(&clean)
                .unwrap_or_else(|_| body.to_vec())
        }
        Some("quoted-printable") => decode_quoted_printable(body),
        _ => body.to_vec(),
    }
}

/// Quoted-printable (RFC 2045 6.7): `=XX` escapes, `=` at a line end joins lines.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(byte) = body.get(i + 1..i + 3).and_then(hex_byte) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// A header value with its RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?…?Q?…?=`)
/// decoded; whitespace between two adjacent encoded words is dropped, as the RFC says.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let Some((text, consumed)) = encoded_word(word) else {
            // Not an encoded word: keep the `=?` and look further.
            out.push_str(before);
            out.push_str("=?");
            rest = &word[2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&text);
        last_was_word = true;
        rest = &word[consumed..];
    }
    out.push_str(rest);
    out
}

/// The text of the encoded word `=?charset?enc?data?=` at the start of `word`, and its
/// length in bytes.
fn encoded_word(word: &str) -> Option<(String, usize)> {
    let inner = word.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (encoding, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let data = &after[..end];
    if charset.is_empty() || data.contains(char::is_whitespace) {
        return None;
    }
    // `charset*language` (RFC 2231 5).
    let charset = charset.split('*').next().unwrap_or(charset);
    let bytes = if encoding.eq_ignore_ascii_case("b") {
        LENIENT_BASE64.decode(data).ok()?
    } else if encoding.eq_ignore_ascii_case("q") {
        decode_q(data)
    } else {
        return None;
    };
    let consumed = 2 + charset_len(inner) + 1 + encoding.len() + 1 + end + 2;
    Some((to_text(&bytes, charset), consumed))
}

/// The length of the charset field (up to the first `?`) of an encoded word's inside.
fn charset_len(inner: &str) -> usize {
    inner.find('?').unwrap_or(inner.len())
}

/// The Q encoding of RFC 2047 4.2: `_` is a space, `=XX` a byte.
fn decode_q(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => {
                if let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_byte) {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'=');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// RFC 2231 / RFC 3986 percent-decoding to bytes; a stray `%` stays.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex_byte)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    std::str::from_utf8(pair)
        .ok()
        .and_then(|h| u8::from_str_radix(h, 16).ok())
}

/// Bytes in `charset` as text: UTF-8 (and ASCII) and ISO-8859-1 exactly, anything else as
/// lossy UTF-8.
fn to_text(bytes: &[u8], charset: &str) -> String {
    let charset = charset.trim().to_ascii_lowercase();
    if matches!(
        charset.as_str(),
        "iso-8859-1" | "latin1" | "l1" | "iso_8859-1"
    ) {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The entries of an address list (`a@x, "Doe, Jane" <b@y>`), split at commas outside
/// quotes and angle brackets.
fn address_list(value: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle) = (false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                entries.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    entries.push(current);
    entries
        .into_iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
