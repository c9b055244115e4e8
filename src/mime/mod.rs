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
//!
//! By subject: `writer` puts the message together, `headers` checks and encodes the header
//! fields, `text` holds the 7-bit body encodings.

mod headers;
mod text;
mod writer;

pub use headers::{Headers, encoded_word, rfc5322_date};
pub use text::{TextEncoding, base64_encoded_len, quoted_printable};
pub use writer::{Attachment, AttachmentWriter, MessageWriter, Random, content_type_for};

/// Longest line written, without CRLF (RFC 2045 for base64 and quoted-printable, and the
/// RFC 5322 "SHOULD" of 78 for headers is kept too).
pub const MAX_LINE_LEN: usize = 76;

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

/// Deterministic bytes for the tests of the writer and of the base64 lines.
#[cfg(test)]
fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 13) as u8).collect()
}
