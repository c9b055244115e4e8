//! The Exchange stand-in's MIME decoder (`ReceivedMessage::decoded`, `decode_words`):
//! what the demo's mailbox and the tests read received messages with, on any message a
//! client may send.
//!
//! Input: the raw message.
//!
//! Invariants: no panic; at most `MAX_PARTS` attachments, none larger than the message,
//! each with a SHA-256 of 64 lower-case hex digits and a lower-case media type; the
//! component's RFC 2047 encoded words decode back to their text.

use mfp_fakes::ReceivedMessage;
use mfp_fakes::exchange::mime::{MAX_PARTS, decode_words};
use mfp_smtp_oauth::mime::encoded_word;

pub fn run(data: &[u8]) {
    let head_end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(data.len(), |at| at + 2);
    let message = ReceivedMessage {
        account: "mfp@contoso.com".into(),
        mail_from: "mfp@contoso.com".into(),
        rcpt_to: vec!["alice@contoso.com".into()],
        headers: String::from_utf8_lossy(&data[..head_end.min(64 * 1024)]).into_owned(),
        size: data.len() as u64,
        sha256: String::new(),
        raw: Some(data.to_vec()),
        message_id: String::new(),
        received_at: std::time::Duration::ZERO,
    };
    let decoded = message.decoded();
    assert!(decoded.complete);
    assert!(decoded.attachments.len() <= MAX_PARTS);
    for attachment in &decoded.attachments {
        assert!(
            attachment.size <= data.len() as u64,
            "an attachment larger than the message"
        );
        assert_eq!(attachment.sha256.len(), 64);
        assert!(
            attachment
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(
            attachment.content_type,
            attachment.content_type.to_ascii_lowercase()
        );
    }

    let text = String::from_utf8_lossy(data);
    let _ = decode_words(&text);
    assert_eq!(decode_words(&encoded_word(&text)), text);
}
