//! The message a scan becomes (`mime::MessageWriter`): header encoding (Subject as plain
//! folded text or RFC 2047 words, To folded, RFC 2231 file names), the text part and a
//! streamed attachment, read back by the Exchange stand-in's MIME decoder.
//!
//! Input: fields separated by `0xFF`: flags (bit 0: base64 text part; the next 8 bytes:
//! the date), subject, sender, recipients (comma separated), text, file name,
//! attachment bytes, attachment chunk size.
//!
//! Invariants: the message is 7-bit but for internationalized addresses, every line
//! break is CRLF, no header line is
//! whitespace only, a line that is not an unbreakable address stays within 76
//! characters (998 for those), and every line after a header's first starts with a space
//! (folding), so no input can start a header of its own; read back, the subject, sender,
//! recipients, text, file name, type and attachment bytes are what was given.

use mfp_fakes::ReceivedMessage;
use mfp_smtp_oauth::mime::{
    Attachment, Headers, MAX_LINE_LEN, MessageWriter, Random, TextEncoding, encoded_word,
    rfc5322_date,
};
use sha2::{Digest, Sha256};

use super::support::{Fields, assert_crlf_only, crlf_lines};

/// RFC 5322 §2.1.1: no line longer than 998 characters, ever.
const HARD_LINE_LIMIT: usize = 998;

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let flags = f.bytes(0);
    let encoding = if flags.first().is_some_and(|b| b & 1 != 0) {
        TextEncoding::Base64
    } else {
        TextEncoding::QuotedPrintable
    };
    let date = flags.get(1..9).map_or(1_750_000_000, |b| {
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    });
    let headers = Headers {
        subject: f.text(1),
        from: f.text(2),
        to: f.text(3).split(',').map(str::to_owned).collect(),
        date,
    };
    let text = f.text(4);
    let file_name = f.text(5);
    let content = f.bytes(6);
    let chunk = usize::from(f.byte(7)).max(1);

    // The pieces on their own.
    let shown_date = rfc5322_date(date);
    assert!(shown_date.is_ascii() && shown_date.ends_with(" +0000"));
    assert_eq!(
        mfp_fakes::exchange::mime::decode_words(&encoded_word(&headers.subject)),
        headers.subject
    );

    let random = Random {
        message_id: [0x5a; 16],
        boundary: [0xc3; 16],
    };
    let Ok((message, mut out)) = MessageWriter::start(&headers, random, &text, encoding) else {
        return;
    };
    let attachment = Attachment::new(&file_name).ok();
    let message = match &attachment {
        Some(attachment) => {
            let (mut part, head) = message.attachment(attachment);
            out.extend(head);
            for piece in content.chunks(chunk) {
                part.write_into(piece, &mut out);
            }
            let (message, tail) = part.finish();
            out.extend(tail);
            message
        }
        None => message,
    };
    out.extend(message.finish());

    assert!(!out.contains(&0), "a NUL in the message");
    assert_crlf_only("the message", &out);
    let header_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of the header section")
        + 2;
    check_lines(&out, header_end);
    read_back(
        &out,
        header_end,
        &headers,
        &text,
        attachment.as_ref(),
        content,
    );
}

fn check_lines(message: &[u8], header_end: usize) {
    // Header fields whose value is one address (or a Message-ID holding its domain) that
    // cannot be folded: they may pass 76 characters, not 998.
    let unbreakable = |name: &str| matches!(name, "From" | "To" | "Message-ID");
    let mut field = String::new();
    for line in crlf_lines(&message[..header_end]) {
        let text = String::from_utf8_lossy(line);
        assert!(!text.trim().is_empty(), "a header line of whitespace only");
        if text.starts_with([' ', '\t']) {
            assert!(!field.is_empty(), "a continuation before any field");
        } else {
            let (name, _) = text.split_once(':').expect("a header line without a name");
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
                "a header named {name:?}"
            );
            field = name.to_owned();
        }
        let limit = if unbreakable(&field) {
            HARD_LINE_LIMIT
        } else {
            MAX_LINE_LEN
        };
        assert!(
            line.len() <= limit,
            "a {field} line of {} characters",
            line.len()
        );
        // Non-ASCII text is encoded (RFC 2047, RFC 2231); only an internationalized
        // address goes as UTF-8 (RFC 6532), which the session sends with SMTPUTF8 only.
        if !unbreakable(&field) {
            assert!(
                line.is_ascii(),
                "a {field} line that is not 7-bit: {text:?}"
            );
        }
    }
    // Body, part headers (file name parameters fold too) and base64 lines.
    for line in crlf_lines(&message[header_end..]) {
        assert!(
            line.len() <= MAX_LINE_LEN,
            "a body line of {} characters",
            line.len()
        );
        assert!(line.is_ascii(), "a body line that is not 7-bit");
    }
}

fn read_back(
    message: &[u8],
    header_end: usize,
    headers: &Headers,
    text: &str,
    attachment: Option<&Attachment>,
    content: &[u8],
) {
    let received = ReceivedMessage {
        account: headers.from.clone(),
        mail_from: headers.from.clone(),
        rcpt_to: headers.to.clone(),
        headers: String::from_utf8_lossy(&message[..header_end]).into_owned(),
        size: message.len() as u64,
        sha256: String::new(),
        raw: Some(message.to_vec()),
        message_id: String::new(),
        received_at: std::time::Duration::ZERO,
    };
    let decoded = received.decoded();
    assert_eq!(decoded.subject, headers.subject, "the subject changed");
    // The stand-in decodes RFC 2047 words anywhere in an address header; an address
    // that looks like one reads back decoded.
    if !headers.from.contains("=?") {
        assert_eq!(decoded.from, headers.from, "the sender changed");
    }
    if !headers.to.iter().any(|t| t.contains("=?")) {
        assert_eq!(decoded.to, headers.to, "the recipients changed");
    }
    assert_eq!(decoded.text, normalized(text), "the text changed");
    let Some(attachment) = attachment else {
        assert!(decoded.attachments.is_empty());
        return;
    };
    let [got] = decoded.attachments.as_slice() else {
        panic!("{} attachments read back", decoded.attachments.len());
    };
    // A plain (quoted) file name is read as the stand-in reads one: RFC 2047 words
    // decoded and the value trimmed, as mail clients do.
    if !attachment.file_name().contains("=?") {
        assert_eq!(
            got.name.trim(),
            attachment.file_name().trim(),
            "the file name changed"
        );
    }
    assert_eq!(got.content_type, attachment.content_type());
    assert_eq!(
        got.size,
        content.len() as u64,
        "the attachment's size changed"
    );
    let digest: String = Sha256::digest(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got.sha256, digest, "the attachment's bytes changed");
}

/// The text with every line break as CRLF, as the text part carries it.
fn normalized(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}
