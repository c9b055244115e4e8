//! The streaming writer: the headers and the text part first, then each attachment's
//! base64 as its chunks come, then the closing boundary.

use std::fmt::Write as _;

use super::MimeError;
use super::headers::{
    Headers, address_list, check_address, control_char, parameter, rfc5322_date, subject_header,
};
use super::text::{Base64Lines, TextEncoding, crlf_lines, quoted_printable};

/// Randomness the caller draws (the component has no entropy of its own: it uses the
/// host's). Hex-encoded into the Message-ID and the boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Random {
    pub message_id: [u8; 16],
    pub boundary: [u8; 16],
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

    /// The same as [`AttachmentWriter::write`], appending the lines to `out`: a sender
    /// reuses one buffer for every chunk of a large scan.
    pub fn write_into(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.body.write_into(chunk, out);
    }

    /// Ends the attachment: returns the message writer and the last line.
    pub fn finish(self) -> (MessageWriter, Vec<u8>) {
        (self.message, self.body.finish())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use crate::mime::{MAX_LINE_LEN, sample};

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
