//! The mailbox decoder reads what mail clients write, and never fails on what they send.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::*;

/// A received message whose bytes are `raw` (kept whole), as the Exchange fake stores it.
fn received(raw: &str) -> ReceivedMessage {
    received_bytes(raw.as_bytes())
}

fn received_bytes(raw: &[u8]) -> ReceivedMessage {
    let (head, _) = split_entity(raw);
    ReceivedMessage {
        account: "mfp@contoso.com".into(),
        mail_from: "mfp@contoso.com".into(),
        rcpt_to: vec!["alice@contoso.com".into()],
        headers: String::from_utf8_lossy(head).into_owned(),
        size: raw.len() as u64,
        sha256: String::new(),
        raw: Some(raw.to_vec()),
        message_id: "<1@contoso.com>".into(),
        received_at: Duration::from_secs(1_718_006_400),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Base64 in 76-column lines, as the component writes attachments.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn a_message_as_the_component_writes_it_reads_back_whole() {
    let scan: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let raw = format!(
        "From: mfp@contoso.com\r\n\
         To: alice@contoso.com,\r\n bob@contoso.com\r\n\
         Subject: =?UTF-8?B?U2NhbiBmcm9tIE1GUC0wMDQyIOKAlCDDnGJlcnNpY2h0?=\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed;\r\n boundary=\"=_mfp_abab\"\r\n\
         \r\n\
         --=_mfp_abab\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {text}\r\n\
         --=_mfp_abab\r\n\
         Content-Type: application/pdf;\r\n name=\"scan-0001.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment;\r\n filename=\"scan-0001.pdf\"\r\n\
         \r\n\
         {pdf}\r\n\
         --=_mfp_abab--\r\n",
        text = STANDARD.encode("Scanned document attached.\r\nGrüße"),
        pdf = base64_lines(&scan),
    );
    let decoded = received(&raw).decoded();
    assert_eq!(decoded.subject, "Scan from MFP-0042 — Übersicht");
    assert_eq!(decoded.from, "mfp@contoso.com");
    assert_eq!(decoded.to, ["alice@contoso.com", "bob@contoso.com"]);
    assert_eq!(decoded.text, "Scanned document attached.\r\nGrüße");
    assert!(decoded.complete);
    assert_eq!(
        decoded.attachments,
        [DecodedAttachment {
            name: "scan-0001.pdf".into(),
            content_type: "application/pdf".into(),
            size: scan.len() as u64,
            sha256: sha256_hex(&scan),
        }]
    );
}

#[test]
fn rfc_2231_file_names_are_decoded_even_when_a_character_spans_two_pieces() {
    // "Größe.pdf": `ö` is %C3%B6, split between the pieces *0* and *1*.
    let raw = "Subject: x\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\
         \r\n\
         --b\r\n\
         Content-Type: application/pdf\r\n\
         Content-Disposition: attachment;\r\n filename*=utf-8''Gr%C3%B6%C3%9Fe.pdf\r\n\
         \r\n\
         one\r\n\
         --b\r\n\
         Content-Type: application/pdf\r\n\
         Content-Disposition: attachment;\r\n filename*0*=utf-8''Gr%C3;\r\n filename*1*=%B6%C3%9Fe;\r\n filename*2=.pdf\r\n\
         \r\n\
         two!\r\n\
         --b\r\n\
         Content-Type: application/octet-stream;\r\n name=\"=?UTF-8?Q?Scan_B=C3=BCro?=.bin\"\r\n\
         \r\n\
         three\r\n\
         --b\r\n\
         Content-Type: image/png\r\n\
         Content-Disposition: inline\r\n\
         \r\n\
         4\r\n\
         --b--\r\n";
    let names: Vec<(String, u64)> = received(raw)
        .decoded()
        .attachments
        .into_iter()
        .map(|a| (a.name, a.size))
        .collect();
    assert_eq!(
        names,
        [
            ("Größe.pdf".to_string(), 3),
            ("Größe.pdf".to_string(), 4),
            ("Scan Büro.bin".to_string(), 5),
            ("(unnamed)".to_string(), 1),
        ]
    );
}

#[test]
fn quoted_printable_and_latin_1_text_and_nested_alternatives_are_read() {
    let raw = "From: =?iso-8859-1?Q?J=F6rg?= <jorg@contoso.com>\r\n\
         To: \"Doe, Jane\" <jane@contoso.com>, bob@contoso.com\r\n\
         Subject: =?utf-8?q?a_b=C3=BC?= =?utf-8?q?_c?= tail\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
         \r\n\
         preamble\r\n\
         --outer\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
         \r\n\
         --inner\r\n\
         Content-Type: text/plain; charset=iso-8859-1\r\n\
         Content-Transfer-Encoding: quoted-printable\r\n\
         \r\n\
         Gr=FC=DFe, a long line that =\r\n\
         continues\r\n\
         --inner\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <p>Grüße</p>\r\n\
         --inner--\r\n\
         --outer--\r\n\
         epilogue\r\n";
    let decoded = received(raw).decoded();
    assert_eq!(decoded.from, "Jörg <jorg@contoso.com>");
    assert_eq!(
        decoded.to,
        ["\"Doe, Jane\" <jane@contoso.com>", "bob@contoso.com"]
    );
    assert_eq!(
        decoded.subject, "a bü c tail",
        "adjacent encoded words join"
    );
    assert_eq!(decoded.text, "Grüße, a long line that continues");
    assert!(decoded.attachments.is_empty(), "{decoded:?}");
}

#[test]
fn a_message_kept_as_headers_only_shows_its_headers_and_no_body() {
    let mut message = received("Subject: =?UTF-8?B?U2NhbiDDvA==?=\r\n\r\nbody\r\n");
    message.raw = None;
    let decoded = message.decoded();
    assert_eq!(decoded.subject, "Scan ü");
    assert_eq!(decoded.from, "mfp@contoso.com", "the envelope sender");
    assert_eq!(decoded.to, ["alice@contoso.com"], "the envelope recipients");
    assert!(!decoded.complete);
    assert_eq!(decoded.text, "");
    assert!(decoded.attachments.is_empty());
}

#[test]
fn a_single_part_message_is_its_text() {
    let decoded = received("Subject: hi\r\n\r\nplain body\r\n").decoded();
    assert_eq!(decoded.text, "plain body\r\n");
    assert!(decoded.attachments.is_empty());
}

#[test]
fn encoded_words_decode_and_what_only_looks_like_one_stays() {
    assert_eq!(decode_words("=?UTF-8?B?U2NhbiDDvA==?="), "Scan ü");
    assert_eq!(
        decode_words("=?UTF-8?B?U2NhbiDDvA?="),
        "Scan ü",
        "no padding"
    );
    assert_eq!(decode_words("plain subject"), "plain subject");
    assert_eq!(decode_words("=?utf-8?q?a_b=C3=BC?= tail"), "a bü tail");
    assert_eq!(decode_words("x =?y z"), "x =?y z");
    assert_eq!(decode_words("=?utf-8?x?abc?= =?"), "=?utf-8?x?abc?= =?");
    assert_eq!(decode_words("=?utf-8*en?q?hi?="), "hi", "RFC 2231 language");
}

#[test]
fn broken_or_hostile_input_is_shown_as_far_as_it_reads_without_panicking() {
    // Bad base64 keeps the bytes; no closing delimiter keeps the last part.
    let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\n\
         Content-Disposition: attachment; filename=a.bin\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n\
         **not base64**\r\n\
         --b\r\n\
         Content-Disposition: attachment; filename=\"b.bin\r\n\r\n\
         tail without end";
    let decoded = received(raw).decoded();
    let names: Vec<&str> = decoded
        .attachments
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a.bin", "b.bin"],
        "an unclosed quote ends with its line"
    );
    assert_eq!(decoded.attachments[0].size, "**not base64**".len() as u64);
    assert_eq!(decoded.attachments[1].size, "tail without end".len() as u64);

    // Nesting beyond MAX_DEPTH is not opened.
    let mut nested = String::new();
    for depth in 0..MAX_DEPTH + 4 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{depth}\r\n\r\n--b{depth}\r\n"
        ));
    }
    nested.push_str("Content-Disposition: attachment; filename=deep.bin\r\n\r\nx\r\n");
    let decoded = received(&format!("Subject: deep\r\n{nested}")).decoded();
    assert!(decoded.attachments.is_empty(), "{decoded:?}");

    // Arbitrary bytes, cut anywhere, never panic.
    let sample = "Content-Type: multipart/mixed; boundary=\"q\"\r\n\r\n--q\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=F\r\n=\r\n--q\r\nContent-Disposition: attachment; filename*0*=x''%C;filename*1*=%\r\n\r\n=?a?b?c?=\r\n--q--";
    for cut in 0..=sample.len() {
        let _ = received_bytes(&sample.as_bytes()[..cut]).decoded();
    }
    let _ = received_bytes(&[0xff, 0xfe, b'\r', b'\n', b'\r', b'\n', 0x80]).decoded();
}
