//! A whole SMTP submission (`smtp::Session`) driven by a hostile server: the fuzzer
//! writes the server's side, read by read, and may also choose the EHLO name and the
//! envelope; the message body goes through the dot-stuffing (`smtp::DotStuffer`).
//!
//! Input: fields separated by `0xFF`: flags, EHLO name, sender, recipients (comma
//! separated), message body, body chunk size, then one field per read from the server.
//! Flags: bit 0 uses the fuzzed EHLO name and envelope (else fixed valid ones), bit 1
//! the two-step AUTH, bit 2 delivery to accepted recipients only, bits 3–4 the number of
//! fixed recipients, bit 5 a declared size.
//!
//! Invariants:
//! - no CR or LF reaches a command: every write is whole CRLF-terminated lines, each a
//!   known command (or the XOAUTH2 response, or the empty answer to an error challenge),
//!   at most 512 octets except the XOAUTH2 response;
//! - nothing about the credentials goes out before TLS; MAIL only after AUTH; the
//!   token never appears raw in a write, an error, a remedy or a `Debug`;
//! - the body arrives as sent: CRLF lines, dot-stuffed, ended by `.` alone;
//! - the session ends (a report or an error) once the server's reads run out, the
//!   error is returned again on every later call, and a report accounts for every
//!   recipient as the policy says.

use mfp_smtp_oauth::smtp::{
    DotStuffer, Envelope, Event, RecipientPolicy, Session, SessionConfig, check_ehlo_name,
    ehlo_name_or_fallback,
};
use mfp_smtp_oauth::xoauth2::{AuthMode, Credentials};

use super::support::{Fields, assert_crlf_only, crlf_lines};

const TOKEN: &str = "SeCrEt-AcCeSs-ToKeN-0123456789.abcdef_XYZ";
const FIXED_TO: [&str; 3] = [
    "alice@contoso.com",
    "bob@fabrikam.example",
    "zoë@contoso.com",
];
/// Events after which a session that still has not ended is a bug (a loop).
const MAX_EVENTS: usize = 100_000;

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let flags = f.byte(0);
    let fuzzed_envelope = flags & 1 != 0;

    // The host's name goes through the fallback before it reaches EHLO.
    let supplied = f.text(1);
    let fallback = ehlo_name_or_fallback(&supplied);
    assert!(
        check_ehlo_name(&fallback).is_ok(),
        "fallback EHLO name {fallback:?}"
    );

    let (ehlo_name, from, to) = if fuzzed_envelope {
        let to: Vec<String> = f.text(3).split(',').map(str::to_owned).collect();
        (supplied, f.text(2), to)
    } else {
        let count = usize::from(flags >> 3 & 3).clamp(1, 3);
        (
            "mfp-0042.contoso.local".to_owned(),
            "scanner@contoso.com".to_owned(),
            FIXED_TO[..count].iter().map(|s| (*s).to_owned()).collect(),
        )
    };
    let body = f.bytes(4);
    let chunk = usize::from(f.byte(5)).max(1);
    let chunks: Vec<&[u8]> = body.chunks(chunk).collect();
    check_dot_stuffing(&chunks);

    let Ok(credentials) = Credentials::new(from.clone(), TOKEN) else {
        return;
    };
    let blob = credentials.initial_response();
    let mut config = SessionConfig::new(ehlo_name.clone());
    if flags & 2 != 0 {
        config.auth_mode = AuthMode::Challenge;
    }
    if flags & 4 != 0 {
        config.recipient_policy = RecipientPolicy::DeliverToAccepted;
    }
    let policy = config.recipient_policy;
    let envelope = Envelope {
        from: from.clone(),
        to: to.clone(),
        size: (flags & 32 != 0).then_some(body.len() as u64),
    };
    // The server may echo what it likes, and the host may name the device or an
    // address after it: the token counts as leaked only when no input held it first.
    let inputs = [
        f.rest(6).concat(),
        ehlo_name.clone().into_bytes(),
        from.clone().into_bytes(),
        to.concat().into_bytes(),
    ];
    let planted = inputs
        .iter()
        .any(|input| contains(input, TOKEN.as_bytes()) || contains(input, blob.as_bytes()));
    let mut session = match Session::new(config, credentials, envelope.clone()) {
        Ok(session) => session,
        Err(err) => {
            if !planted {
                assert_no_secret(&format!("{err} {} {err:?}", err.remedy()), &blob);
            }
            return;
        }
    };
    // Everything the session refused to start with is checked; what it accepted goes
    // into commands, which are checked below.
    let mut reads = f.rest(6).into_iter();
    let assert_no_secret = |shown: &str, blob: &str| {
        if !planted {
            assert_no_secret(shown, blob);
        }
    };
    let mut state = Dialogue {
        planted,
        ..Dialogue::default()
    };
    let mut body_out: Option<Vec<u8>> = None;
    let mut ended = false;
    for _ in 0..MAX_EVENTS {
        let event = session.next_event();
        assert_no_secret(&format!("{event:?} {session:?}"), &blob);
        match event {
            Ok(Event::Write(bytes)) => match body_out.as_mut() {
                Some(out) if !state.body_done => out.extend_from_slice(&bytes),
                _ => state.commands(&bytes, &blob, &ehlo_name, &envelope),
            },
            Ok(Event::Read) => {
                if let Some(out) = body_out.as_mut()
                    && !state.body_done
                {
                    state.body_done = true;
                    check_stuffed(&chunks, out);
                }
                match reads.next() {
                    Some(read) => session.feed(read),
                    None => session.connection_closed(),
                }
            }
            Ok(Event::StartTls) => {
                state.tls = true;
                assert!(session.tls_established().is_ok());
            }
            Ok(Event::SendBody) => {
                assert!(state.data_sent, "the body before DATA");
                assert!(body_out.is_none(), "a second body");
                body_out = Some(Vec::new());
                for piece in &chunks {
                    assert!(session.write_body(piece).is_ok());
                }
                assert!(session.finish_body().is_ok());
            }
            Ok(Event::Sent(report)) => {
                assert!(state.quit_sent, "QUIT is handed out before the report");
                assert!(!report.accepted.is_empty(), "a message sent to nobody");
                let mut all: Vec<&String> = report
                    .accepted
                    .iter()
                    .chain(report.refused.iter().map(|r| &r.recipient))
                    .collect();
                all.sort();
                let mut wanted: Vec<&String> = envelope.to.iter().collect();
                wanted.sort();
                assert_eq!(all, wanted, "recipients lost or invented");
                if policy == RecipientPolicy::RequireAll {
                    assert!(report.refused.is_empty());
                }
                ended = true;
                break;
            }
            Err(err) => {
                let shown = format!("{err} {} {err:?}", err.remedy());
                assert_no_secret(&shown, &blob);
                // Spent for good: the same error, and nothing more to write.
                session.feed(b"250 OK\r\n");
                assert_eq!(session.next_event().err(), Some(err));
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the session did not end after {MAX_EVENTS} events");
}

/// What the client has said so far.
#[derive(Default)]
struct Dialogue {
    /// An input held the token or the response, so a command may too.
    planted: bool,
    tls: bool,
    auth_sent: bool,
    response_sent: bool,
    mail_sent: bool,
    rcpt_sent: bool,
    data_sent: bool,
    body_done: bool,
    quit_sent: bool,
}

impl Dialogue {
    /// Checks bytes the session wrote outside the message body: command lines only.
    fn commands(&mut self, bytes: &[u8], blob: &str, ehlo_name: &str, envelope: &Envelope) {
        assert_crlf_only("a command", bytes);
        assert!(bytes.ends_with(b"\r\n"), "a write that does not end a line");
        assert!(
            self.planted || !contains(bytes, TOKEN.as_bytes()),
            "the raw token was written"
        );
        for line in crlf_lines(bytes) {
            let text = std::str::from_utf8(line).expect("commands are UTF-8");
            assert!(!self.quit_sent, "{text:?} after QUIT");
            if text == blob {
                assert!(self.tls && self.auth_sent && !self.response_sent);
                self.response_sent = true;
                continue;
            }
            assert!(line.len() + 2 <= 512, "a command line over 512 octets");
            if !self.planted && !text.starts_with("AUTH XOAUTH2 ") {
                assert!(!text.contains(blob), "the XOAUTH2 response inside {text:?}");
            }
            if text.is_empty() {
                // The answer to an error challenge.
                assert!(self.response_sent);
            } else if let Some(name) = text.strip_prefix("EHLO ") {
                assert_eq!(name, ehlo_name);
            } else if text == "STARTTLS" {
                assert!(!self.tls);
            } else if text == "AUTH XOAUTH2" || text.starts_with("AUTH XOAUTH2 ") {
                assert!(self.tls, "AUTH before TLS");
                assert!(!self.auth_sent, "a second AUTH");
                self.auth_sent = true;
                if let Some(response) = text.strip_prefix("AUTH XOAUTH2 ") {
                    assert_eq!(response, blob);
                    self.response_sent = true;
                }
            } else if let Some(rest) = text.strip_prefix("MAIL FROM:<") {
                // After AUTH and its `235` (a server may say 235 before the response
                // was asked for: nothing is lost by believing it).
                assert!(self.auth_sent, "MAIL before the sign-in");
                assert!(rest.starts_with(&format!("{}>", envelope.from)));
                self.mail_sent = true;
            } else if let Some(rest) = text.strip_prefix("RCPT TO:<") {
                assert!(self.mail_sent, "RCPT before MAIL");
                let to = rest.strip_suffix('>').expect("RCPT TO:<…>");
                assert!(envelope.to.iter().any(|t| t == to), "RCPT to {to:?}");
                self.rcpt_sent = true;
            } else if text == "DATA" {
                assert!(self.rcpt_sent, "DATA before RCPT");
                self.data_sent = true;
            } else if text == "QUIT" {
                self.quit_sent = true;
            } else {
                panic!("an unknown command {text:?}");
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_no_secret(shown: &str, blob: &str) {
    assert!(!shown.contains(TOKEN), "the token in {shown:?}");
    assert!(!shown.contains(blob), "the XOAUTH2 response in {shown:?}");
}

/// The body through a `DotStuffer` alone, in the same chunks.
fn check_dot_stuffing(chunks: &[&[u8]]) {
    let mut stuffer = DotStuffer::default();
    let mut out = Vec::new();
    for piece in chunks {
        stuffer.write(piece, &mut out);
    }
    stuffer.finish(&mut out);
    check_stuffed(chunks, &out);
}

/// `out` is the message in `chunks` as it must travel after DATA: CRLF lines, a line
/// starting with `.` stuffed with another, and `.` CRLF alone at the end.
fn check_stuffed(chunks: &[&[u8]], out: &[u8]) {
    assert_crlf_only("the message", out);
    assert!(
        out == b".\r\n" || out.ends_with(b"\r\n.\r\n"),
        "the message does not end with CRLF.CRLF"
    );
    let lines = crlf_lines(&out[..out.len() - 3]);
    let mut unstuffed = Vec::new();
    for line in lines {
        let line = match line.first() {
            Some(b'.') => {
                assert!(line.len() > 1, "a lone `.` line before the end");
                &line[1..]
            }
            _ => line,
        };
        unstuffed.extend_from_slice(line);
        unstuffed.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        unstuffed,
        normalized(&chunks.concat()),
        "the message changed"
    );
}

/// The message with CRLF, CR and LF as CRLF, its last line ended.
fn normalized(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
