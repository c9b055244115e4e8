//! The relay's SMTP server, driven with byte strings as a device would send them.

use super::*;
use base64::engine::general_purpose::STANDARD;

fn config() -> ServerConfig {
    ServerConfig {
        hostname: "relay.contoso.local".into(),
        max_message_size: 1000,
        max_recipients: 3,
        tls_offered: true,
        auth_required: false,
        timeouts: ServerTimeouts::default(),
    }
}

fn auth_config() -> ServerConfig {
    ServerConfig {
        auth_required: true,
        ..config()
    }
}

/// What the server did until it waits for something: the bytes written, the message
/// bytes handed out, and the event it stopped at (a question is asked again on the next
/// call, so looking at it takes nothing away).
struct Out {
    written: String,
    body: Vec<u8>,
    event: ServerEvent,
}

fn drain(s: &mut Server) -> Out {
    let mut written = Vec::new();
    let mut body = Vec::new();
    loop {
        match s.next_event() {
            ServerEvent::Write(bytes) => written.extend_from_slice(&bytes),
            ServerEvent::Body(bytes) => body.extend_from_slice(&bytes),
            event => {
                return Out {
                    written: String::from_utf8(written).expect("replies are ASCII"),
                    body,
                    event,
                };
            }
        }
    }
}

/// Feeds `input` and returns what was written until the server waits.
fn say(s: &mut Server, input: &str) -> String {
    s.feed(input.as_bytes());
    drain(s).written
}

/// A server past its greeting.
fn server(config: ServerConfig) -> Server {
    let mut s = Server::new(config);
    assert_eq!(
        drain(&mut s).written,
        "220 relay.contoso.local ESMTP ready\r\n"
    );
    s
}

/// A server past EHLO.
fn greeted(config: ServerConfig) -> Server {
    let mut s = server(config);
    assert!(say(&mut s, "EHLO printer.local\r\n").starts_with("250-"));
    s
}

/// A server past STARTTLS, the handshake and the second EHLO.
fn over_tls(config: ServerConfig) -> Server {
    let mut s = greeted(config);
    assert_eq!(
        say(&mut s, "STARTTLS\r\n"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    assert_eq!(s.next_event(), ServerEvent::StartTls);
    s.tls_established();
    assert!(say(&mut s, "EHLO printer.local\r\n").starts_with("250-"));
    s
}

/// A server past the sender and one recipient, both accepted.
fn in_envelope(config: ServerConfig) -> Server {
    let mut s = greeted(config);
    say(&mut s, "MAIL FROM:<scan@contoso.com>\r\n");
    s.sender_verdict(Ok(()));
    say(&mut s, "RCPT TO:<alice@contoso.com>\r\n");
    s.recipient_verdict(Ok(()));
    assert_eq!(drain(&mut s).event, ServerEvent::Read);
    s
}

/// A server after `354`.
fn in_body() -> Server {
    let mut s = in_envelope(config());
    assert_eq!(
        say(&mut s, "DATA\r\n"),
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    s
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[test]
fn a_whole_conversation_without_tls() {
    let mut s = server(ServerConfig {
        tls_offered: false,
        ..config()
    });
    assert_eq!(
        say(&mut s, "EHLO printer.local\r\n"),
        "250-relay.contoso.local Hello printer.local\r\n250-SIZE 1000\r\n250-8BITMIME\r\n\
         250 ENHANCEDSTATUSCODES\r\n"
    );
    assert_eq!(s.client_name(), Some("printer.local"));
    assert_eq!(say(&mut s, "MAIL FROM:<scan@contoso.com> SIZE=120\r\n"), "");
    assert_eq!(
        s.next_event(),
        ServerEvent::Sender {
            address: "scan@contoso.com".into(),
            size: Some(120)
        }
    );
    s.sender_verdict(Ok(()));
    assert_eq!(drain(&mut s).written, "250 2.1.0 Sender OK\r\n");
    say(&mut s, "RCPT TO:<alice@contoso.com>\r\n");
    assert_eq!(
        s.next_event(),
        ServerEvent::Recipient("alice@contoso.com".into())
    );
    s.recipient_verdict(Ok(()));
    assert_eq!(drain(&mut s).written, "250 2.1.5 Recipient OK\r\n");
    assert_eq!(
        say(&mut s, "DATA\r\n"),
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    assert_eq!(s.timeout(), ServerTimeouts::default().data_block);
    s.feed(b"Subject: scan\r\n\r\nhello\r\n.\r\n");
    let out = drain(&mut s);
    assert_eq!(out.body, b"Subject: scan\r\n\r\nhello\r\n");
    assert_eq!(out.event, ServerEvent::MessageEnd);
    s.message_verdict(Answer::new(250, "2.0.0", "OK queued as <x@y>"));
    assert_eq!(drain(&mut s).written, "250 2.0.0 OK queued as <x@y>\r\n");
    assert_eq!(say(&mut s, "QUIT\r\n"), "221 2.0.0 Bye\r\n");
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: false });
    // Closed for good: more input changes nothing.
    s.feed(b"NOOP\r\n");
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: false });
}

#[test]
fn ehlo_offers_starttls_before_tls_and_auth_only_after_it() {
    let mut s = server(auth_config());
    let before = say(&mut s, "EHLO p\r\n");
    assert!(before.contains("250-STARTTLS\r\n") || before.ends_with("250 STARTTLS\r\n"));
    assert!(!before.contains("AUTH"), "{before}");
    assert!(!before.contains("PIPELINING"));
    say(&mut s, "STARTTLS\r\n");
    s.tls_established();
    let after = say(&mut s, "EHLO p\r\n");
    assert!(after.ends_with("250 AUTH PLAIN LOGIN\r\n"), "{after}");
    assert!(!after.contains("STARTTLS"), "{after}");
    assert!(!after.contains("PIPELINING"));
    // Without a relay password, AUTH is never offered.
    let mut s = server(config());
    say(&mut s, "STARTTLS\r\n");
    s.tls_established();
    assert!(!say(&mut s, "EHLO p\r\n").contains("AUTH"));
}

#[test]
fn helo_replies_one_line_and_a_missing_name_is_refused() {
    let mut s = server(config());
    assert_eq!(say(&mut s, "EHLO\r\n"), "501 5.5.4 Syntax: EHLO\r\n");
    assert_eq!(say(&mut s, "HELO \r\n"), "501 5.5.4 Syntax: HELO\r\n");
    assert_eq!(s.client_name(), None);
    assert_eq!(
        say(&mut s, "helo [192.0.2.7]\r\n"),
        "250 relay.contoso.local Hello [192.0.2.7]\r\n"
    );
    assert_eq!(s.client_name(), Some("[192.0.2.7]"));
}

#[test]
fn commands_are_case_insensitive() {
    let mut s = server(config());
    assert!(say(&mut s, "ehlo p\r\n").starts_with("250-"));
    say(&mut s, "mail from:<a@contoso.com>\r\n");
    assert!(matches!(s.next_event(), ServerEvent::Sender { .. }));
    s.sender_verdict(Ok(()));
    say(&mut s, "Rcpt To:<b@contoso.com>\r\n");
    assert!(matches!(s.next_event(), ServerEvent::Recipient(_)));
    s.recipient_verdict(Ok(()));
    assert_eq!(drain(&mut s).written, "250 2.1.5 Recipient OK\r\n");
    assert!(say(&mut s, "data\r\n").starts_with("354 "));
}

#[test]
fn mail_needs_ehlo() {
    let mut s = server(config());
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@contoso.com>\r\n"),
        "503 5.5.1 Send EHLO first\r\n"
    );
}

#[test]
fn starttls_drops_what_was_sent_after_it_in_clear() {
    let mut s = greeted(auth_config());
    // The attacker's line rides in the same packet as STARTTLS (RFC 3207 §5)...
    s.feed(b"STARTTLS\r\nAUTH PLAIN AGEAYg==\r\n");
    let out = drain(&mut s);
    assert_eq!(out.written, "220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(out.event, ServerEvent::StartTls);
    // ...or arrives before the handshake.
    s.feed(b"MAIL FROM:<evil@example.com>\r\n");
    assert_eq!(s.next_event(), ServerEvent::StartTls);
    s.tls_established();
    assert!(s.is_tls());
    assert_eq!(s.client_name(), None, "EHLO is forgotten");
    // Nothing injected ran: no reply, no question.
    assert_eq!(drain(&mut s).written, "");
    assert_eq!(s.next_event(), ServerEvent::Read);
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@contoso.com>\r\n"),
        "503 5.5.1 Send EHLO first\r\n"
    );
}

#[test]
fn tls_forgets_the_envelope() {
    let mut s = in_envelope(config());
    say(&mut s, "STARTTLS\r\n");
    s.tls_established();
    say(&mut s, "EHLO p\r\n");
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
}

#[test]
fn starttls_refusals() {
    let mut s = greeted(ServerConfig {
        tls_offered: false,
        ..config()
    });
    assert_eq!(
        say(&mut s, "STARTTLS\r\n"),
        "454 4.7.0 TLS not available\r\n"
    );
    let mut s = greeted(config());
    assert_eq!(
        say(&mut s, "STARTTLS now\r\n"),
        "501 5.5.4 Syntax: STARTTLS\r\n"
    );
    let mut s = over_tls(config());
    assert_eq!(
        say(&mut s, "STARTTLS\r\n"),
        "503 5.5.1 TLS already active\r\n"
    );
    // tls_established out of turn changes nothing.
    let mut s = greeted(config());
    s.tls_established();
    assert!(!s.is_tls());
}

#[test]
fn auth_refusals_before_any_credentials_are_asked_for() {
    let plain = format!("AUTH PLAIN {}\r\n", b64(b"\0user\0pw"));
    let mut s = over_tls(config());
    assert_eq!(say(&mut s, &plain), "503 5.5.1 AUTH not available\r\n");
    let mut s = greeted(auth_config());
    assert_eq!(
        say(&mut s, &plain),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@contoso.com>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
    let mut s = over_tls(auth_config());
    assert_eq!(
        say(&mut s, "AUTH CRAM-MD5\r\n"),
        "504 5.5.4 Unrecognized authentication type\r\n"
    );
    assert_eq!(
        say(&mut s, "AUTH\r\n"),
        "501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n"
    );
    assert_eq!(
        say(&mut s, "AUTH PLAIN not*base64\r\n"),
        "501 5.5.2 Invalid base64\r\n"
    );
    // An authorization identity for someone else, an empty password, a CR in the name:
    // refused without asking the caller.
    for message in [
        &b"other\0user\0pw"[..],
        b"\0user\0",
        b"\0us\rer\0pw",
        b"user\0pw",
    ] {
        assert_eq!(
            say(&mut s, &format!("AUTH PLAIN {}\r\n", b64(message))),
            "535 5.7.8 Authentication credentials invalid\r\n",
            "{message:?}"
        );
        assert_eq!(s.next_event(), ServerEvent::Read);
    }
    assert!(!s.is_authenticated());
}

#[test]
fn auth_plain_with_an_initial_response() {
    let mut s = over_tls(auth_config());
    say(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64(b"scanner\0scanner\0p\xc3\xa4ss")),
    );
    let ServerEvent::CheckAuth(attempt) = s.next_event() else {
        panic!("no CheckAuth");
    };
    assert_eq!(attempt.mechanism, AuthMechanism::Plain);
    assert_eq!(attempt.username, "scanner");
    assert_eq!(attempt.password(), "päss");
    // Asked again until answered.
    assert_eq!(s.next_event(), ServerEvent::CheckAuth(attempt));
    s.auth_verdict(true);
    assert_eq!(
        drain(&mut s).written,
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(s.is_authenticated());
    assert_eq!(
        say(&mut s, "AUTH PLAIN AHVAcA==\r\n"),
        "503 5.5.1 Already authenticated\r\n"
    );
    say(&mut s, "MAIL FROM:<scanner@contoso.com>\r\n");
    assert!(matches!(s.next_event(), ServerEvent::Sender { .. }));
}

#[test]
fn auth_plain_after_a_challenge_and_a_refused_password() {
    let mut s = over_tls(auth_config());
    assert_eq!(say(&mut s, "AUTH plain\r\n"), "334 \r\n");
    say(&mut s, &format!("{}\r\n", b64(b"\0scanner\0wrong")));
    let ServerEvent::CheckAuth(attempt) = s.next_event() else {
        panic!("no CheckAuth");
    };
    assert_eq!(attempt.password(), "wrong");
    s.auth_verdict(false);
    assert_eq!(
        drain(&mut s).written,
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert!(!s.is_authenticated());
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@contoso.com>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
}

#[test]
fn auth_login_in_two_steps_and_with_an_initial_response() {
    let mut s = over_tls(auth_config());
    assert_eq!(say(&mut s, "AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        say(&mut s, &format!("{}\r\n", b64(b"scanner"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    say(&mut s, &format!("{}\r\n", b64(b"secret")));
    let ServerEvent::CheckAuth(attempt) = s.next_event() else {
        panic!("no CheckAuth");
    };
    assert_eq!(
        (
            attempt.mechanism,
            attempt.username.as_str(),
            attempt.password()
        ),
        (AuthMechanism::Login, "scanner", "secret")
    );
    s.auth_verdict(true);
    assert!(s.is_authenticated());

    let mut s = over_tls(auth_config());
    assert_eq!(
        say(&mut s, &format!("AUTH LOGIN {}\r\n", b64(b"scanner"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    say(&mut s, &format!("{}\r\n", b64(b"secret")));
    assert!(matches!(s.next_event(), ServerEvent::CheckAuth(_)));
}

#[test]
fn auth_login_refusals() {
    let mut s = over_tls(auth_config());
    say(&mut s, "AUTH LOGIN\r\n");
    assert_eq!(
        say(&mut s, "*\r\n"),
        "501 5.7.0 Authentication cancelled\r\n"
    );
    // Back to commands.
    assert_eq!(say(&mut s, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    say(&mut s, "AUTH LOGIN\r\n");
    assert_eq!(say(&mut s, "%%%\r\n"), "501 5.5.2 Invalid base64\r\n");
    // A NUL in the password, a username that is not UTF-8: refused without asking.
    for (user, password) in [(&b"scanner"[..], &b"se\0cret"[..]), (b"\xff", b"secret")] {
        say(&mut s, "AUTH LOGIN\r\n");
        say(&mut s, &format!("{}\r\n", b64(user)));
        assert_eq!(
            say(&mut s, &format!("{}\r\n", b64(password))),
            "535 5.7.8 Authentication credentials invalid\r\n"
        );
        assert_eq!(s.next_event(), ServerEvent::Read);
    }
}

#[test]
fn auth_attempt_debug_hides_the_password() {
    let attempt = AuthAttempt::new(AuthMechanism::Plain, "scanner".into(), "hunter2".into());
    let shown = format!("{attempt:?} {:?}", ServerEvent::CheckAuth(attempt.clone()));
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("<hidden>") && shown.contains("scanner"),
        "{shown}"
    );
}

#[test]
fn mail_from_parsing() {
    let mut s = greeted(config());
    for (line, address, size) in [
        ("MAIL FROM: <a@contoso.com>", "a@contoso.com", None),
        ("MAIL FROM:<> BODY=8BITMIME", "", None),
        (
            "MAIL FROM:<a@contoso.com> body=7bit SIZE=1000 AUTH=<>",
            "a@contoso.com",
            Some(1000),
        ),
    ] {
        assert_eq!(say(&mut s, &format!("{line}\r\n")), "", "{line}");
        assert_eq!(
            s.next_event(),
            ServerEvent::Sender {
                address: address.into(),
                size
            },
            "{line}"
        );
        s.sender_verdict(Ok(()));
        say(&mut s, "RSET\r\n");
    }
}

#[test]
fn mail_from_refusals() {
    let mut s = greeted(config());
    for (line, reply) in [
        (
            "MAIL FROM:a@contoso.com",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            "MAIL TO:<a@contoso.com>",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            "MAIL FROM:<a@contoso.com",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        (
            "MAIL FROM:<a@contoso.com>x",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
        ),
        ("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>"),
        (
            "MAIL FROM:<a@b@contoso.com>",
            "501 5.1.7 Bad sender address syntax",
        ),
        ("MAIL FROM:<nobody>", "501 5.1.7 Bad sender address syntax"),
        (
            "MAIL FROM:<a@contoso.com> SMTPUTF8",
            "555 5.5.4 Unsupported parameter",
        ),
        (
            "MAIL FROM:<a@contoso.com> RET=FULL",
            "555 5.5.4 Unsupported parameter",
        ),
        (
            "MAIL FROM:<a@contoso.com> SIZE=12x",
            "501 5.5.4 Syntax: SIZE=<number>",
        ),
        (
            "MAIL FROM:<a@contoso.com> BODY=BINARYMIME",
            "501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME",
        ),
        (
            "MAIL FROM:<a@contoso.com> SIZE=1001",
            "552 5.3.4 Message size exceeds fixed maximum message size",
        ),
    ] {
        assert_eq!(
            say(&mut s, &format!("{line}\r\n")),
            format!("{reply}\r\n"),
            "{line}"
        );
        assert_eq!(s.next_event(), ServerEvent::Read, "{line}");
        // Fresh, so the error limit is never reached.
        s = greeted(config());
    }
}

#[test]
fn a_refused_sender_carries_the_callers_answer_and_leaves_no_envelope() {
    let mut s = greeted(config());
    say(&mut s, "MAIL FROM:<boss@contoso.com>\r\n");
    s.sender_verdict(Err(Answer::new(
        550,
        "5.7.1",
        "Sending as boss@contoso.com is not allowed\nDeclare it as an alias in the panel",
    )));
    assert_eq!(
        drain(&mut s).written,
        "550-5.7.1 Sending as boss@contoso.com is not allowed\r\n\
         550 5.7.1 Declare it as an alias in the panel\r\n"
    );
    assert_eq!(
        say(&mut s, "RCPT TO:<a@contoso.com>\r\n"),
        "503 5.5.1 Need MAIL command\r\n"
    );
}

#[test]
fn nested_mail_is_refused() {
    let mut s = in_envelope(config());
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@contoso.com>\r\n"),
        "503 5.5.1 Sender already specified\r\n"
    );
}

#[test]
fn rcpt_refusals() {
    let mut s = greeted(config());
    assert_eq!(
        say(&mut s, "RCPT TO:<a@contoso.com>\r\n"),
        "503 5.5.1 Need MAIL command\r\n"
    );
    let mut s = in_envelope(config());
    for (line, reply) in [
        ("RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"),
        (
            "RCPT TO:<a b@contoso.com>",
            "501 5.1.3 Bad recipient address syntax",
        ),
        (
            "RCPT TO:b@contoso.com",
            "501 5.5.4 Syntax: RCPT TO:<address>",
        ),
        (
            "RCPT TO:<b@contoso.com> NOTIFY=NEVER",
            "555 5.5.4 Unsupported parameter",
        ),
    ] {
        assert_eq!(
            say(&mut s, &format!("{line}\r\n")),
            format!("{reply}\r\n"),
            "{line}"
        );
        assert_eq!(s.next_event(), ServerEvent::Read, "{line}");
    }
    say(&mut s, "RCPT TO:<nobody@contoso.com>\r\n");
    s.recipient_verdict(Err(Answer::new(550, "5.1.1", "No such user")));
    assert_eq!(drain(&mut s).written, "550 5.1.1 No such user\r\n");
}

#[test]
fn recipients_beyond_the_limit_get_452() {
    let mut s = in_envelope(config()); // one recipient
    for to in ["b", "c"] {
        say(&mut s, &format!("RCPT TO:<{to}@contoso.com>\r\n"));
        s.recipient_verdict(Ok(()));
        assert_eq!(drain(&mut s).written, "250 2.1.5 Recipient OK\r\n");
    }
    assert_eq!(
        say(&mut s, "RCPT TO:<d@contoso.com>\r\n"),
        "452 4.5.3 Too many recipients\r\n"
    );
    assert_eq!(s.next_event(), ServerEvent::Read);
    // Not an error that counts toward the limit of refused commands.
    for _ in 0..MAX_ERRORS {
        assert_eq!(
            say(&mut s, "RCPT TO:<d@contoso.com>\r\n"),
            "452 4.5.3 Too many recipients\r\n"
        );
    }
    assert!(say(&mut s, "DATA\r\n").starts_with("354 "));
}

#[test]
fn data_refusals() {
    let mut s = greeted(config());
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
    say(&mut s, "MAIL FROM:<a@contoso.com>\r\n");
    s.sender_verdict(Ok(()));
    say(&mut s, "RCPT TO:<x@contoso.com>\r\n");
    s.recipient_verdict(Err(Answer::new(550, "5.1.1", "No such user")));
    drain(&mut s);
    assert_eq!(say(&mut s, "DATA\r\n"), "554 5.5.1 No valid recipients\r\n");
    let mut s = in_envelope(config());
    assert_eq!(say(&mut s, "DATA now\r\n"), "501 5.5.4 Syntax: DATA\r\n");
}

#[test]
fn other_commands() {
    let mut s = in_envelope(config());
    assert_eq!(say(&mut s, "NOOP\r\n"), "250 2.0.0 OK\r\n");
    assert_eq!(say(&mut s, "NOOP anything\r\n"), "250 2.0.0 OK\r\n");
    assert_eq!(
        say(&mut s, "VRFY alice\r\n"),
        "252 2.5.0 Cannot VRFY user\r\n"
    );
    assert!(say(&mut s, "EXPN staff\r\n").starts_with("502 5.5.1 "));
    assert!(say(&mut s, "HELP\r\n").starts_with("214 2.0.0 "));
    assert_eq!(
        say(&mut s, "BDAT 10 LAST\r\n"),
        "500 5.5.1 Command unrecognized\r\n"
    );
    assert_eq!(say(&mut s, "\r\n"), "500 5.5.1 Command unrecognized\r\n");
    assert_eq!(say(&mut s, "RSET\r\n"), "250 2.0.0 Reset\r\n");
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
}

#[test]
fn ehlo_resets_the_envelope() {
    let mut s = in_envelope(config());
    say(&mut s, "EHLO again\r\n");
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
    assert_eq!(s.client_name(), Some("again"));
}

#[test]
fn control_and_non_ascii_characters_in_a_command_are_refused() {
    let refusal = "501 5.5.2 Syntax error: control or non-ASCII characters\r\n";
    for line in [
        &b"NOOP\rQUIT\r\n"[..],
        b"NO\0OP\r\n",
        b"MAIL FROM:<j\xc3\xb6rg@contoso.com>\r\n",
        b"NOOP\x1b[31m\r\n",
        b"NOOP\r\r\n",
    ] {
        let mut s = greeted(config());
        s.feed(line);
        let out = drain(&mut s);
        assert_eq!(out.written, refusal, "{line:?}");
        assert_eq!(out.event, ServerEvent::Read, "{line:?}: nothing else ran");
    }
}

#[test]
fn a_bare_lf_ends_a_command_line_too() {
    let mut s = server(config());
    assert!(say(&mut s, "EHLO p\nNOOP\n").ends_with("250 2.0.0 OK\r\n"));
}

#[test]
fn a_line_at_the_limit_is_taken_and_one_over_is_refused() {
    let mut s = greeted(config());
    // 510 octets + CRLF = 512: the limit.
    let at_limit = format!("NOOP {}\r\n", "x".repeat(505));
    assert_eq!(at_limit.len(), MAX_COMMAND_LINE);
    assert_eq!(say(&mut s, &at_limit), "250 2.0.0 OK\r\n");
    let over = format!("NOOP {}\r\n", "x".repeat(506));
    assert_eq!(say(&mut s, &over), "500 5.5.2 Line too long\r\n");
    // The same, split so that the line never completes in one feed.
    for byte in over.as_bytes() {
        s.feed(&[*byte]);
        assert!(s.input.len() <= MAX_COMMAND_LINE);
    }
    assert_eq!(drain(&mut s).written, "500 5.5.2 Line too long\r\n");
    assert_eq!(say(&mut s, "NOOP\r\n"), "250 2.0.0 OK\r\n");
}

#[test]
fn an_endless_line_is_dropped_as_it_arrives() {
    let mut s = greeted(config());
    let chunk = vec![b'A'; 4096];
    for _ in 0..100 {
        s.feed(&chunk);
        assert!(s.input.len() <= MAX_COMMAND_LINE, "{}", s.input.len());
        assert_eq!(s.next_event(), ServerEvent::Read);
    }
    // The line ends; the next one is a command again.
    assert_eq!(
        say(&mut s, "AAA\r\nNOOP\r\n"),
        "500 5.5.2 Line too long\r\n250 2.0.0 OK\r\n"
    );
}

#[test]
fn too_many_errors_close_the_connection() {
    let mut s = greeted(config());
    for _ in 0..MAX_ERRORS - 1 {
        assert_eq!(say(&mut s, "FOO\r\n"), "500 5.5.1 Command unrecognized\r\n");
    }
    s.feed(b"FOO\r\nNOOP\r\n");
    let out = drain(&mut s);
    assert_eq!(
        out.written,
        "421 4.7.0 Too many errors, closing connection\r\n"
    );
    assert_eq!(out.event, ServerEvent::Closed { mid_message: false });
}

#[test]
fn refused_passwords_count_as_errors() {
    let mut s = over_tls(auth_config());
    for _ in 0..MAX_ERRORS - 1 {
        say(&mut s, &format!("AUTH PLAIN {}\r\n", b64(b"\0u\0guess")));
        s.auth_verdict(false);
        assert!(drain(&mut s).written.starts_with("535 "));
    }
    say(&mut s, &format!("AUTH PLAIN {}\r\n", b64(b"\0u\0guess")));
    s.auth_verdict(false);
    let out = drain(&mut s);
    assert!(out.written.starts_with("421 4.7.0 "), "{}", out.written);
    assert_eq!(out.event, ServerEvent::Closed { mid_message: false });
}

#[test]
fn pipelined_commands_are_answered_one_after_another() {
    let mut s = greeted(config());
    s.feed(b"MAIL FROM:<a@contoso.com>\r\nRCPT TO:<b@contoso.com>\r\nRCPT TO:<c@contoso.com>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n");
    assert_eq!(
        s.next_event(),
        ServerEvent::Sender {
            address: "a@contoso.com".into(),
            size: None
        }
    );
    s.sender_verdict(Ok(()));
    let out = drain(&mut s);
    assert_eq!(out.written, "250 2.1.0 Sender OK\r\n");
    assert_eq!(out.event, ServerEvent::Recipient("b@contoso.com".into()));
    s.recipient_verdict(Err(Answer::new(550, "5.1.1", "No such user")));
    let out = drain(&mut s);
    assert_eq!(out.written, "550 5.1.1 No such user\r\n");
    assert_eq!(out.event, ServerEvent::Recipient("c@contoso.com".into()));
    s.recipient_verdict(Ok(()));
    let out = drain(&mut s);
    assert_eq!(
        out.written,
        "250 2.1.5 Recipient OK\r\n354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    assert_eq!(out.body, b"body\r\n");
    assert_eq!(out.event, ServerEvent::MessageEnd);
    s.message_verdict(Answer::new(250, "2.0.0", "OK"));
    let out = drain(&mut s);
    assert_eq!(out.written, "250 2.0.0 OK\r\n221 2.0.0 Bye\r\n");
    assert_eq!(out.event, ServerEvent::Closed { mid_message: false });
}

#[test]
fn a_refused_sender_makes_the_pipelined_rest_fail_in_order() {
    let mut s = greeted(config());
    s.feed(b"MAIL FROM:<a@contoso.com>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n");
    s.sender_verdict(Err(Answer::new(550, "5.7.1", "No")));
    let out = drain(&mut s);
    assert_eq!(
        out.written,
        "550 5.7.1 No\r\n503 5.5.1 Need MAIL command\r\n503 5.5.1 Need MAIL command\r\n"
    );
    assert_eq!(out.event, ServerEvent::Read);
}

/// The message part of a session fed in the given pieces: the body handed out, where
/// the server stands after the last piece, and what it wrote after the verdict on the
/// message (bytes after the final dot are kept while the verdict is awaited).
fn body_of(pieces: &[&[u8]]) -> (Vec<u8>, ServerEvent, Vec<u8>) {
    let mut s = in_body();
    let mut body = Vec::new();
    for piece in pieces {
        s.feed(piece);
        let out = drain(&mut s);
        assert_eq!(out.written, "");
        body.extend_from_slice(&out.body);
    }
    let event = s.next_event();
    let after = if event == ServerEvent::MessageEnd {
        s.message_verdict(Answer::new(250, "2.0.0", "OK"));
        drain(&mut s).written.into_bytes()
    } else {
        Vec::new()
    };
    (body, event, after)
}

const STUFFED: &[u8] =
    b"..first line\r\nFrom: a@x\r\n\r\n..\r\n...two\r\na.b\r\n.\rx\r\n\r\n.end\r\n.\r\nNOOP\r\n";
const UNSTUFFED: &[u8] = b".first line\r\nFrom: a@x\r\n\r\n.\r\n..two\r\na.b\r\n\rx\r\n\r\nend\r\n";

#[test]
fn dots_are_unstuffed_and_the_final_dot_ends_the_message() {
    let (body, event, after) = body_of(&[STUFFED]);
    assert_eq!(body, UNSTUFFED);
    assert_eq!(event, ServerEvent::MessageEnd);
    assert_eq!(
        after, b"250 2.0.0 OK\r\n250 2.0.0 OK\r\n",
        "the NOOP after the dot ran"
    );
}

#[test]
fn any_split_of_the_message_gives_the_same_result() {
    let whole = body_of(&[STUFFED]);
    let bytes: Vec<&[u8]> = STUFFED.chunks(1).collect();
    assert_eq!(body_of(&bytes), whole, "one byte at a time");
    for split in 1..STUFFED.len() {
        let (a, b) = STUFFED.split_at(split);
        assert_eq!(body_of(&[a, b]), whole, "split at {split}");
    }
}

#[test]
fn the_final_dot_split_across_feeds_is_still_found() {
    for pieces in [
        &[&b"x\r\n"[..], b".", b"\r", b"\n"][..],
        &[b"x\r", b"\n.\r", b"\n"],
        &[b"x", b"\r\n.", b"\r\n"],
    ] {
        let (body, event, _) = body_of(pieces);
        assert_eq!(body, b"x\r\n", "{pieces:?}");
        assert_eq!(event, ServerEvent::MessageEnd, "{pieces:?}");
    }
}

#[test]
fn an_empty_message_and_a_first_line_dot() {
    assert_eq!(body_of(&[b".\r\n"]).0, b"");
    assert_eq!(body_of(&[b".\r\n"]).1, ServerEvent::MessageEnd);
    assert_eq!(body_of(&[b"..x\r\n.\r\n"]).0, b".x\r\n");
}

#[test]
fn bare_lf_dot_lf_ends_the_message_but_mixed_endings_do_not() {
    let (body, event, _) = body_of(&[b"a\nb\n.\n"]);
    assert_eq!(
        (body.as_slice(), event),
        (&b"a\nb\n"[..], ServerEvent::MessageEnd)
    );
    // CRLF . LF and LF . CRLF are content (SMTP smuggling): the message goes on.
    let (body, event, _) = body_of(&[b"a\r\n.\nMAIL FROM:<x@y>\n\n.\r\nb\r\n"]);
    assert_eq!(body, b"a\r\n\nMAIL FROM:<x@y>\n\n\r\nb\r\n");
    assert_eq!(event, ServerEvent::Read);
}

#[test]
fn the_message_streams_without_being_held() {
    let mut s = in_body();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=\r\n".repeat(100);
    let mut total = 0;
    for _ in 0..100 {
        s.feed(&line);
        let ServerEvent::Body(piece) = s.next_event() else {
            panic!("no body piece");
        };
        total += piece.len();
        assert_eq!(s.next_event(), ServerEvent::Read);
        assert!(s.input.is_empty() && s.body.is_empty());
    }
    assert_eq!(total, line.len() * 100);
    // A withheld dot at the end of a feed is at most what is kept back.
    s.feed(b"x\r\n.");
    assert_eq!(s.next_event(), ServerEvent::Body(b"x\r\n".to_vec()));
    assert_eq!(s.next_event(), ServerEvent::Read);
}

#[test]
fn two_messages_in_one_session() {
    let mut s = in_body();
    s.feed(b"one\r\n.\r\n");
    assert_eq!(drain(&mut s).body, b"one\r\n");
    s.message_verdict(Answer::new(250, "2.0.0", "first"));
    assert_eq!(drain(&mut s).written, "250 2.0.0 first\r\n");
    // The envelope was reset.
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
    say(&mut s, "MAIL FROM:<b@contoso.com>\r\n");
    s.sender_verdict(Ok(()));
    say(&mut s, "RCPT TO:<c@contoso.com>\r\n");
    s.recipient_verdict(Ok(()));
    drain(&mut s);
    say(&mut s, "DATA\r\n");
    s.feed(b"two\r\n.\r\n");
    assert_eq!(drain(&mut s).body, b"two\r\n");
    s.message_verdict(Answer::new(554, "5.2.252", "SendAsDenied"));
    assert_eq!(drain(&mut s).written, "554 5.2.252 SendAsDenied\r\n");
}

#[test]
fn a_client_leaving_mid_message_is_reported() {
    let mut s = in_body();
    s.feed(b"partial");
    s.connection_closed();
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: true });
    // After the dot, before the verdict: still never answered.
    let mut s = in_body();
    s.feed(b"all\r\n.\r\n");
    s.connection_closed();
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: true });
    s.message_verdict(Answer::new(250, "2.0.0", "OK"));
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: true });
    // Between messages: nothing lost.
    let mut s = in_envelope(config());
    s.connection_closed();
    assert_eq!(s.next_event(), ServerEvent::Closed { mid_message: false });
}

#[test]
fn verdicts_nobody_asked_for_are_ignored() {
    let mut s = greeted(config());
    s.auth_verdict(true);
    s.sender_verdict(Ok(()));
    s.recipient_verdict(Ok(()));
    s.message_verdict(Answer::new(250, "2.0.0", "OK"));
    assert_eq!(drain(&mut s).written, "");
    assert!(!s.is_authenticated());
    assert_eq!(say(&mut s, "DATA\r\n"), "503 5.5.1 Need MAIL command\r\n");
    // The wrong verdict for the question asked.
    say(&mut s, "MAIL FROM:<a@contoso.com>\r\n");
    s.recipient_verdict(Ok(()));
    assert!(matches!(s.next_event(), ServerEvent::Sender { .. }));
}

#[test]
fn a_421_verdict_closes_the_conversation() {
    let mut s = greeted(config());
    s.feed(b"MAIL FROM:<a@contoso.com>\r\nNOOP\r\n");
    s.sender_verdict(Err(Answer::new(
        421,
        "4.7.0",
        "Too many messages, try again later",
    )));
    let out = drain(&mut s);
    assert_eq!(
        out.written,
        "421 4.7.0 Too many messages, try again later\r\n"
    );
    assert_eq!(out.event, ServerEvent::Closed { mid_message: false });
}

#[test]
fn refusing_at_connect() {
    let mut s = Server::refusing(
        "relay.contoso.local",
        Answer::new(554, "5.7.1", "Your address is not allowed to relay"),
    );
    let out = drain(&mut s);
    assert_eq!(
        out.written,
        "554 5.7.1 relay.contoso.local Your address is not allowed to relay\r\n"
    );
    assert_eq!(out.event, ServerEvent::Closed { mid_message: false });
    s.feed(b"EHLO p\r\n");
    assert_eq!(drain(&mut s).written, "");
}

#[test]
fn answers_are_rendered_safely() {
    let render = |a: Answer| String::from_utf8(a.render()).unwrap();
    assert_eq!(
        render(Answer::new(550, "5.7.1", "one\ntwo\r\nthree\n")),
        "550-5.7.1 one\r\n550-5.7.1 two\r\n550 5.7.1 three\r\n"
    );
    // A CR (or any control) inside a line cannot start a line of its own.
    assert_eq!(
        render(Answer::new(550, "5.7.1", "a\rb\x00c\td\u{e9}")),
        "550 5.7.1 a?b?c d?\r\n"
    );
    assert_eq!(render(Answer::plain(334, "")), "334 \r\n");
    assert_eq!(render(Answer::new(250, "2.0.0", "")), "250 2.0.0\r\n");
    // An enhanced code of another class, or none that parses, is left out.
    assert_eq!(render(Answer::new(250, "5.7.1", "x")), "250 x\r\n");
    assert_eq!(render(Answer::new(550, "nonsense", "x")), "550 x\r\n");
    // A code that is no reply code becomes a local error.
    assert_eq!(render(Answer::new(99, "4.3.0", "x")), "451 4.3.0 x\r\n");
    assert_eq!(render(Answer::new(1234, "", "x")), "451 x\r\n");
    // Each line within 512 octets, CRLF included.
    let long = render(Answer::new(
        554,
        "5.2.252",
        format!("{}\n{}", "é".repeat(600), "x".repeat(600)),
    ));
    let lines: Vec<&str> = long.split_inclusive("\r\n").collect();
    assert_eq!(lines.len(), 2);
    for line in lines {
        assert_eq!(line.len(), MAX_REPLY_LINE);
        assert!(line.ends_with("\r\n") && !line[..line.len() - 2].contains(['\r', '\n']));
    }
    // Endless text is bounded.
    let many = render(Answer::new(550, "5.0.0", "x\n".repeat(1000)));
    assert_eq!(many.matches("\r\n").count(), MAX_ANSWER_LINES);
    assert!(many.ends_with("550 5.0.0 x\r\n"));
}

#[test]
fn a_client_line_is_never_echoed_raw() {
    let mut s = server(config());
    // The EHLO name is echoed; nothing unprintable can reach it.
    assert_eq!(
        say(&mut s, "HELO a\u{1b}]0;x\r\n"),
        "501 5.5.2 Syntax error: control or non-ASCII characters\r\n"
    );
    assert_eq!(s.client_name(), None);
}

#[test]
fn timeouts() {
    let t = ServerTimeouts::divided_by(60);
    assert_eq!(t.command, Duration::from_secs(5));
    assert_eq!(t.data_block, Duration::from_secs(5));
    assert_eq!(ServerTimeouts::divided_by(0), ServerTimeouts::default());
    assert_eq!(
        ServerTimeouts::divided_by(u32::MAX).command,
        Duration::from_millis(1)
    );
    let mut s = in_envelope(ServerConfig {
        timeouts: ServerTimeouts {
            command: Duration::from_secs(7),
            data_block: Duration::from_secs(9),
        },
        ..config()
    });
    assert_eq!(s.timeout(), Duration::from_secs(7));
    say(&mut s, "DATA\r\n");
    assert_eq!(s.timeout(), Duration::from_secs(9));
}

#[test]
fn what_the_client_side_stuffs_comes_out_as_it_went_in() {
    // Messages already in CRLF form, so the client's stuffing changes only the dots.
    for message in [
        &b""[..],
        b".\r\n",
        b"..\r\n.\r\n.x\r\n",
        b"Subject: a\r\n\r\n.\r\n\r\n.\r\nQUIT\r\n",
        b"no final line break",
        b"\r\n\r\n..\r\n",
    ] {
        let mut stuffed = Vec::new();
        let mut stuffer = crate::smtp::DotStuffer::default();
        stuffer.write(message, &mut stuffed);
        stuffer.finish(&mut stuffed);
        let mut expected = message.to_vec();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        for size in [1, 2, 3, 7, stuffed.len()] {
            let pieces: Vec<&[u8]> = stuffed.chunks(size).collect();
            let (body, event, _) = body_of(&pieces);
            assert_eq!(body, expected, "{message:?} in pieces of {size}");
            assert_eq!(event, ServerEvent::MessageEnd, "{message:?}");
        }
    }
}
