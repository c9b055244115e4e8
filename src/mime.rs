//! The email a scan becomes (RFC 5322, MIME RFC 2045–2049), written as a stream: a
//! `multipart/mixed` message with a UTF-8 text part and the scanned files as base64
//! attachments. Sans-IO: every call returns the bytes to send next, and attachments come
//! in chunks of any size, so a 30 MB scan is never held in memory whole.
//!
//! ```
//! use mfp_smtp_oauth::mime::{Attachment, Headers, MessageWriter, Random, TextEncoding};
//!
//! let headers = Headers {
//!     from: "scanner@contoso.com".into(),
//!     to: vec!["alice@contoso.com".into()],
//!     subject: "Scan from MFP".into(),
//!     date: 1_700_000_000,
//! };
//! let random = Random { message_id: [7; 16], boundary: [9; 16] };
//! let scan = Attachment::new("scan.pdf")?; // checked before anything is written
//! let (message, mut out) =
//!     MessageWriter::start(&headers, random, "Scanned pages attached.", TextEncoding::QuotedPrintable)?;
//! let (mut part, head) = message.attachment(&scan);
//! out.extend(head);
//! for chunk in [&b"%PDF-1.7 ..."[..], b"more pages"] {
//!     out.extend(part.write(chunk));
//! }
//! let (message, tail) = part.finish();
//! out.extend(tail);
//! out.extend(message.finish());
//! assert!(out.ends_with(b"--\r\n"));
//! # Ok::<(), mfp_smtp_oauth::mime::MimeError>(())
//! ```
//!
//! Only 7-bit output is produced (quoted-printable or base64 bodies, RFC 2047 and RFC 2231
//! for non-ASCII header text), so any server takes it without `8BITMIME`. Header inputs
//! holding CR, LF or another control character are refused, typed: a line break in a
//! subject would let a walk-up user add headers of their own (header injection).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Longest line written, without CRLF (RFC 2045 for base64 and quoted-printable, and the
/// RFC 5322 "SHOULD" of 78 for headers is kept too).
pub const MAX_LINE_LEN: usize = 76;
/// Bytes of input per base64 line: 57 bytes make 76 characters.
const BASE64_LINE_INPUT: usize = MAX_LINE_LEN / 4 * 3;
/// Bytes of text per RFC 2047 encoded word: 39 bytes → 52 base64 characters, so that
/// `Subject: =?UTF-8?B?…?=` stays within 76 columns.
const ENCODED_WORD_INPUT: usize = 39;
/// Characters of a percent-encoded file name per RFC 2231 continuation line.
const PARAMETER_SEGMENT_LEN: usize = 56;

/// Why a message cannot be written. Refused before any byte of it is produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// A header value (the subject) holds a line break or another control character.
    #[error("the {field} {what}")]
    InvalidHeader { field: String, what: &'static str },
    /// An address is not a single plain mailbox.
    #[error("the address in {field} {what}")]
    InvalidAddress { field: String, what: &'static str },
    /// An attachment's file name is empty, a path, or holds a control character.
    #[error("the attachment file name {what}")]
    InvalidFileName { what: &'static str },
    /// The message has no recipient.
    #[error("the message has no recipient")]
    NoRecipients,
}

impl MimeError {
    /// The stable machine code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            MimeError::InvalidHeader { .. } => "mime-invalid-header",
            MimeError::InvalidAddress { .. } => "mime-invalid-address",
            MimeError::InvalidFileName { .. } => "mime-invalid-file-name",
            MimeError::NoRecipients => "mime-no-recipients",
        }
    }

    /// What the user can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            MimeError::InvalidHeader { .. } => {
                "Type the subject on one line, without control characters."
            }
            MimeError::InvalidAddress { .. } => {
                "Enter each address as one mailbox such as name@example.com, without spaces, brackets, commas or control characters."
            }
            MimeError::InvalidFileName { .. } => {
                "Name the file without slashes or control characters, for example scan.pdf."
            }
            MimeError::NoRecipients => "Enter at least one recipient address.",
        }
    }
}

/// Describes the first control character (CR, LF, tab, NUL, DEL, C1…), if any.
fn control_char(text: &str) -> Option<&'static str> {
    text.chars().find_map(|c| match c {
        '\r' => Some("contains a carriage return (CR)"),
        '\n' => Some("contains a line feed (LF)"),
        c if c.is_control() => Some("contains a control character"),
        _ => None,
    })
}

/// A header address must be one bare mailbox: nothing that would change the header's
/// structure (a comma adds a recipient, brackets and quotes a display name or route).
fn check_address(field: &str, address: &str) -> Result<(), MimeError> {
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
    match address.rsplit_once('@') {
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

/// Randomness the caller draws (the component has no entropy of its own: it uses the
/// host's). Hex-encoded into the Message-ID and the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Random {
    pub message_id: [u8; 16],
    pub boundary: [u8; 16],
}

/// How the text part is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextEncoding {
    /// Readable in the raw message; best for mostly-ASCII text.
    #[default]
    QuotedPrintable,
    /// Smaller for text in non-Latin scripts.
    Base64,
}

/// A file to attach: its name, checked, and its content type from the extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    file_name: String,
    content_type: &'static str,
}

impl Attachment {
    /// Checks the name: not empty, no path separator, no control character.
    pub fn new(file_name: &str) -> Result<Self, MimeError> {
        let refuse = |what: &'static str| Err(MimeError::InvalidFileName { what });
        if file_name.is_empty() {
            return refuse("is empty");
        }
        if let Some(what) = control_char(file_name) {
            return refuse(what);
        }
        if file_name.contains(['/', '\\']) {
            return refuse("contains a path separator (/ or \\)");
        }
        Ok(Self {
            file_name: file_name.to_owned(),
            content_type: content_type_for(file_name),
        })
    }

    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }
}

/// The content type of a scanned file, from its extension (any case).
pub fn content_type_for(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "tif" | "tiff" => "image/tiff",
        "png" => "image/png",
        "xps" => "application/vnd.ms-xpsdocument",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// A message whose headers and text part are written; attachments come next.
#[derive(Clone, Debug)]
pub struct MessageWriter {
    boundary: String,
}

impl MessageWriter {
    /// Checks every header input, then returns the writer and the first bytes: the
    /// headers and the text part.
    pub fn start(
        headers: &Headers,
        random: Random,
        text: &str,
        encoding: TextEncoding,
    ) -> Result<(Self, Vec<u8>), MimeError> {
        check_address("From", &headers.from)?;
        if headers.to.is_empty() {
            return Err(MimeError::NoRecipients);
        }
        for (i, to) in headers.to.iter().enumerate() {
            check_address(&format!("To (recipient {})", i + 1), to)?;
        }
        if let Some(what) = control_char(&headers.subject) {
            return Err(MimeError::InvalidHeader {
                field: "Subject".into(),
                what,
            });
        }

        let boundary = format!("=_mfp_{}", hex(&random.boundary));
        let domain = headers.from.rsplit_once('@').map_or("", |(_, d)| d);
        let mut out = String::new();
        out.push_str(&format!("Date: {}\r\n", rfc5322_date(headers.date)));
        out.push_str(&format!("From: {}\r\n", headers.from));
        out.push_str(&address_list("To", &headers.to));
        out.push_str(&subject_header(&headers.subject));
        out.push_str(&format!(
            "Message-ID: <{}@{domain}>\r\n",
            hex(&random.message_id)
        ));
        out.push_str("MIME-Version: 1.0\r\n");
        out.push_str(&format!(
            "Content-Type: multipart/mixed;\r\n boundary=\"{boundary}\"\r\n"
        ));
        out.push_str("\r\n");
        out.push_str(&format!("--{boundary}\r\n"));
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        match encoding {
            TextEncoding::QuotedPrintable => {
                out.push_str("Content-Transfer-Encoding: quoted-printable\r\n\r\n");
                out.push_str(&quoted_printable(text));
            }
            TextEncoding::Base64 => {
                out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
                let mut body = Base64Lines::default();
                let mut bytes = body.write(crlf_lines(text).as_bytes());
                bytes.extend(body.finish());
                // Base64 output and CRLF are ASCII.
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        Ok((Self { boundary }, out.into_bytes()))
    }

    /// Begins an attachment: returns its writer and the part's headers.
    pub fn attachment(self, attachment: &Attachment) -> (AttachmentWriter, Vec<u8>) {
        let mut head = format!("\r\n--{}\r\n", self.boundary);
        let name = &attachment.file_name;
        head.push_str(&format!(
            "Content-Type: {};{}\r\n",
            attachment.content_type,
            parameter("name", name)
        ));
        head.push_str("Content-Transfer-Encoding: base64\r\n");
        head.push_str(&format!(
            "Content-Disposition: attachment;{}\r\n\r\n",
            parameter("filename", name)
        ));
        let writer = AttachmentWriter {
            message: self,
            body: Base64Lines::default(),
        };
        (writer, head.into_bytes())
    }

    /// Ends the message (the closing boundary).
    pub fn finish(self) -> Vec<u8> {
        format!("\r\n--{}--\r\n", self.boundary).into_bytes()
    }

    /// The boundary between parts; made of `=_` and hex digits, so it can never occur in
    /// base64 or quoted-printable content.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }
}

/// An attachment being written; takes the file's bytes in chunks.
#[derive(Clone, Debug)]
pub struct AttachmentWriter {
    message: MessageWriter,
    body: Base64Lines,
}

impl AttachmentWriter {
    /// Encodes the next chunk of the file; returns the complete base64 lines so far.
    pub fn write(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.body.write(chunk)
    }

    /// Ends the attachment: returns the message writer and the last line.
    pub fn finish(self) -> (MessageWriter, Vec<u8>) {
        (self.message, self.body.finish())
    }
}

/// Streaming base64 in lines of 76 characters. Up to 56 bytes that do not fill a line
/// are carried to the next chunk. Lines are separated by CRLF; the last has none, since
/// the CRLF before a boundary belongs to the boundary (RFC 2046 §5.1.1).
#[derive(Clone, Debug, Default)]
struct Base64Lines {
    carry: Vec<u8>,
    lines_written: u64,
}

impl Base64Lines {
    fn write(&mut self, mut chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity((self.carry.len() + chunk.len()) / 57 * 78 + 78);
        if !self.carry.is_empty() {
            let take = (BASE64_LINE_INPUT - self.carry.len()).min(chunk.len());
            self.carry.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.carry.len() < BASE64_LINE_INPUT {
                return out;
            }
            let line = std::mem::take(&mut self.carry);
            self.line(&line, &mut out);
        }
        let mut lines = chunk.chunks_exact(BASE64_LINE_INPUT);
        for line in &mut lines {
            self.line(line, &mut out);
        }
        self.carry.extend_from_slice(lines.remainder());
        out
    }

    fn finish(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, &mut out);
        }
        out
    }

    fn line(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.lines_written > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let mut encoded = String::with_capacity(MAX_LINE_LEN);
        STANDARD.encode_string(input, &mut encoded);
        out.extend_from_slice(encoded.as_bytes());
        self.lines_written += 1;
    }
}

/// The size in bytes of `len` bytes of attachment as written (base64 lines and their
/// CRLFs), so a caller can announce the message size to the server (SMTP `SIZE=`).
pub fn base64_encoded_len(len: u64) -> u64 {
    let line_input = BASE64_LINE_INPUT as u64;
    let lines = len.div_ceil(line_input);
    len.div_ceil(3) * 4 + lines.saturating_sub(1) * 2
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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
fn address_list(name: &str, addresses: &[String]) -> String {
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
fn subject_header(subject: &str) -> String {
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
fn parameter(attribute: &str, value: &str) -> String {
    let plain = value.bytes().all(|b| (b' '..=b'~').contains(&b))
        && value.len() + attribute.len() + 4 <= MAX_LINE_LEN;
    if plain {
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
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

/// The text with every line break (CRLF, LF or CR) as CRLF.
fn crlf_lines(text: &str) -> String {
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

    fn headers() -> Headers {
        Headers {
            from: "scanner@contoso.com".into(),
            to: vec!["alice@contoso.com".into()],
            subject: "Scan from MFP".into(),
            date: 1_700_000_000,
        }
    }

    const RANDOM: Random = Random {
        message_id: [
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
            0x0e, 0x0f,
        ],
        boundary: [0xab; 16],
    };

    fn start(headers: &Headers, text: &str, encoding: TextEncoding) -> (MessageWriter, String) {
        let (writer, bytes) = MessageWriter::start(headers, RANDOM, text, encoding).unwrap();
        (writer, String::from_utf8(bytes).unwrap())
    }

    /// Writes a whole message with one attachment fed in `chunk`-byte pieces.
    fn message_with(data: &[u8], chunk: usize, name: &str) -> String {
        let (writer, mut out) = start(&headers(), "Hello", TextEncoding::QuotedPrintable);
        let (mut part, head) = writer.attachment(&Attachment::new(name).unwrap());
        out.push_str(std::str::from_utf8(&head).unwrap());
        let mut body = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            body.extend(part.write(piece));
        }
        let (writer, tail) = part.finish();
        body.extend(tail);
        out.push_str(std::str::from_utf8(&body).unwrap());
        out.push_str(std::str::from_utf8(&writer.finish()).unwrap());
        out
    }

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

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 13) as u8).collect()
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
    fn a_whole_message_has_the_expected_shape() {
        let data = sample(200);
        let message = message_with(&data, 50, "scan.pdf");
        let expected_head = "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
            From: scanner@contoso.com\r\n\
            To: alice@contoso.com\r\n\
            Subject: Scan from MFP\r\n\
            Message-ID: <000102030405060708090a0b0c0d0e0f@contoso.com>\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed;\r\n boundary=\"=_mfp_abababababababababababababababab\"\r\n\
            \r\n\
            --=_mfp_abababababababababababababababab\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\
            \r\n\
            Hello\r\n\
            --=_mfp_abababababababababababababababab\r\n\
            Content-Type: application/pdf;\r\n name=\"scan.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\
            Content-Disposition: attachment;\r\n filename=\"scan.pdf\"\r\n\
            \r\n";
        assert!(message.starts_with(expected_head), "{message}");
        let body = &message[expected_head.len()..];
        let (b64, tail) = body.split_once("\r\n--=_mfp_").unwrap();
        assert_eq!(tail, "abababababababababababababababab--\r\n");
        assert_eq!(STANDARD.decode(b64.replace("\r\n", "")).unwrap(), data);
        for line in message.split("\r\n") {
            assert!(line.len() <= MAX_LINE_LEN, "{line}");
        }
    }

    #[test]
    fn several_attachments_follow_each_other() {
        let (writer, _) = start(&headers(), "", TextEncoding::QuotedPrintable);
        let (mut a, head_a) = writer.attachment(&Attachment::new("page1.jpg").unwrap());
        a.write(b"jpeg");
        let (writer, _) = a.finish();
        let (_, head_b) = writer.attachment(&Attachment::new("page2.TIF").unwrap());
        let head_a = String::from_utf8(head_a).unwrap();
        let head_b = String::from_utf8(head_b).unwrap();
        assert!(head_a.starts_with("\r\n--=_mfp_") && head_a.contains("image/jpeg"));
        assert!(head_b.starts_with("\r\n--=_mfp_") && head_b.contains("image/tiff"));
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type_for("Scan.PDF"), "application/pdf");
        assert_eq!(content_type_for("a.jpeg"), "image/jpeg");
        assert_eq!(content_type_for("a.JPG"), "image/jpeg");
        assert_eq!(content_type_for("a.tif"), "image/tiff");
        assert_eq!(content_type_for("a.tiff"), "image/tiff");
        assert_eq!(content_type_for("a.xps"), "application/vnd.ms-xpsdocument");
        assert_eq!(content_type_for("noextension"), "application/octet-stream");
        assert_eq!(content_type_for("a.exe"), "application/octet-stream");
    }

    #[test]
    fn non_ascii_subject_is_rfc2047_encoded() {
        let mut h = headers();
        h.subject = "Scan ü".into();
        let (_, head) = start(&h, "", TextEncoding::QuotedPrintable);
        // base64("Scan ü") = U2NhbiDDvA== (checked with Python's base64 module).
        assert!(
            head.contains("\r\nSubject: =?UTF-8?B?U2NhbiDDvA==?=\r\n"),
            "{head}"
        );
    }

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

    #[test]
    fn message_id_is_hex_random_at_the_senders_domain() {
        let (_, head) = start(&headers(), "", TextEncoding::QuotedPrintable);
        assert!(
            head.contains("\r\nMessage-ID: <000102030405060708090a0b0c0d0e0f@contoso.com>\r\n")
        );
    }

    #[test]
    fn many_recipients_are_folded() {
        let mut h = headers();
        h.to = (0..10)
            .map(|i| format!("recipient{i}@contoso.com"))
            .collect();
        let (_, head) = start(&h, "", TextEncoding::QuotedPrintable);
        let to: String = head
            .split("\r\nTo:")
            .nth(1)
            .unwrap()
            .split("\r\nSubject:")
            .next()
            .unwrap()
            .into();
        assert!(to.contains(",\r\n "));
        assert!(to.split("\r\n").all(|l| l.len() + 3 <= 78));
        let listed: Vec<String> = to
            .replace("\r\n", "")
            .split(',')
            .map(|a| a.trim().to_owned())
            .collect();
        assert_eq!(listed, h.to);
    }

    #[test]
    fn header_injection_is_refused() {
        let mut h = headers();
        h.subject = "Scan\r\nBcc: everyone@example.com".into();
        let err = MessageWriter::start(&h, RANDOM, "", TextEncoding::QuotedPrintable).unwrap_err();
        assert_eq!(
            err,
            MimeError::InvalidHeader {
                field: "Subject".into(),
                what: "contains a carriage return (CR)"
            }
        );
        assert_eq!(err.code(), "mime-invalid-header");

        h.subject = "Scan\nBcc: x@y".into();
        assert!(matches!(
            MessageWriter::start(&h, RANDOM, "", TextEncoding::QuotedPrintable),
            Err(MimeError::InvalidHeader {
                what: "contains a line feed (LF)",
                ..
            })
        ));

        let mut h = headers();
        h.from = "scanner@contoso.com\r\nBcc: x@y".into();
        assert!(matches!(
            MessageWriter::start(&h, RANDOM, "", TextEncoding::QuotedPrintable),
            Err(MimeError::InvalidAddress { field, .. }) if field == "From"
        ));

        let mut h = headers();
        h.to.push("b@x.com, c@y.com".into());
        assert!(matches!(
            MessageWriter::start(&h, RANDOM, "", TextEncoding::QuotedPrintable),
            Err(MimeError::InvalidAddress { field, .. }) if field == "To (recipient 2)"
        ));

        let mut h = headers();
        h.to.clear();
        assert_eq!(
            MessageWriter::start(&h, RANDOM, "", TextEncoding::QuotedPrintable).unwrap_err(),
            MimeError::NoRecipients
        );

        for (name, what) in [
            ("scan\r\n.pdf", "contains a carriage return (CR)"),
            ("scan\n.pdf", "contains a line feed (LF)"),
            ("scan\u{0}.pdf", "contains a control character"),
            ("../etc/passwd", "contains a path separator (/ or \\)"),
            ("", "is empty"),
        ] {
            assert_eq!(
                Attachment::new(name),
                Err(MimeError::InvalidFileName { what }),
                "{name:?}"
            );
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

    #[test]
    fn base64_text_part_decodes_to_the_text_with_crlf() {
        let (_, head) = start(&headers(), "Привет\nмир", TextEncoding::Base64);
        let body = head
            .split("Content-Transfer-Encoding: base64\r\n\r\n")
            .nth(1)
            .unwrap();
        let decoded = STANDARD.decode(body.replace("\r\n", "")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "Привет\r\nмир");
    }

    #[test]
    fn output_is_seven_bit_even_for_non_ascii_input() {
        let mut h = headers();
        h.subject = "Überweisung".into();
        let (writer, head) = start(&h, "Grüße", TextEncoding::QuotedPrintable);
        let (part, att) = writer.attachment(&Attachment::new("Größe.pdf").unwrap());
        let (_, tail) = part.finish();
        assert!(head.is_ascii() && att.is_ascii() && tail.is_ascii());
    }

    #[test]
    fn the_boundary_cannot_occur_in_encoded_content() {
        let (writer, _) = start(&headers(), "", TextEncoding::QuotedPrintable);
        assert_eq!(writer.boundary(), "=_mfp_abababababababababababababababab");
        // "=_" is neither base64 nor a quoted-printable escape.
        assert!(!quoted_printable("=_mfp_ab").contains("=_"));
    }
}
