//! The SMTP client session, driven line by line against scripted Exchange replies.

use super::*;
use crate::smtp::EnhancedStatus;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const TOKEN: &str = "EwBIA8l6BAAUSECRETxyz.eyJ0eXAiOiJKV1Qi-_";
const GREETING: &str = "220 SN4PR0501CA0030.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024 00:00:00 +0000\r\n";
const EHLO_PLAIN: &str = "250-SN4PR0501CA0030.outlook.office365.com Hello [203.0.113.5]\r\n\
    250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
    250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
const EHLO_TLS: &str = "250-SN4PR0501CA0030.outlook.office365.com Hello [203.0.113.5]\r\n\
    250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
    250-AUTH LOGIN XOAUTH2\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

fn credentials() -> Credentials {
    Credentials::new("scanner@contoso.com", TOKEN).unwrap()
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        from: "scanner@contoso.com".into(),
        to: to.iter().map(|t| (*t).to_owned()).collect(),
        size: Some(1234),
    }
}

fn session_with(config: SessionConfig, envelope: Envelope) -> Session {
    Session::new(config, credentials(), envelope).unwrap()
}

fn session(to: &[&str]) -> Session {
    session_with(SessionConfig::new("mfp-0042.contoso.local"), envelope(to))
}

/// Takes every pending write, as text.
fn written(s: &mut Session) -> String {
    let mut out = Vec::new();
    while let Ok(Event::Write(bytes)) = s.next_event() {
        out.extend_from_slice(&bytes);
    }
    String::from_utf8(out).unwrap()
}

/// The server answers; the session must have been waiting for it.
fn reply(s: &mut Session, text: &str) {
    assert_eq!(s.next_event(), Ok(Event::Read), "session not reading");
    s.feed(text.as_bytes());
}

fn auth_line() -> String {
    let response = STANDARD.encode(format!(
        "user=scanner@contoso.com\x01auth=Bearer {TOKEN}\x01\x01"
    ));
    format!("AUTH XOAUTH2 {response}\r\n")
}

/// Greeting, EHLO, STARTTLS, TLS and the second EHLO: the session has sent AUTH.
fn up_to_auth(s: &mut Session, ehlo_tls: &str) -> String {
    reply(s, GREETING);
    assert_eq!(written(s), "EHLO mfp-0042.contoso.local\r\n");
    reply(s, EHLO_PLAIN);
    assert_eq!(written(s), "STARTTLS\r\n");
    reply(s, "220 2.0.0 SMTP server ready\r\n");
    assert_eq!(s.next_event(), Ok(Event::StartTls));
    s.tls_established().unwrap();
    assert_eq!(written(s), "EHLO mfp-0042.contoso.local\r\n");
    reply(s, ehlo_tls);
    written(s)
}

/// From EHLO on (the greeting answered), up to the AUTH line written.
fn up_to_auth_after_greeting(s: &mut Session) {
    assert_eq!(written(s), "");
    reply(s, EHLO_PLAIN);
    written(s);
    reply(s, "220 2.0.0 SMTP server ready\r\n");
    s.tls_established().unwrap();
    written(s);
    reply(s, EHLO_TLS);
    written(s);
}

fn up_to_mail(s: &mut Session) -> String {
    assert_eq!(up_to_auth(s, EHLO_TLS), auth_line());
    reply(s, "235 2.7.0 Authentication successful\r\n");
    written(s)
}

/// The failure, once any last bytes (a QUIT) are out.
fn failure(s: &mut Session) -> SmtpError {
    written(s);
    s.next_event().unwrap_err()
}

#[test]
fn exchange_online_submission_happy_path() {
    let mut s = session(&["alice@contoso.com", "bob@contoso.com"]);
    assert_eq!(
        up_to_mail(&mut s),
        "MAIL FROM:<scanner@contoso.com> SIZE=1234\r\n"
    );
    reply(&mut s, "250 2.1.0 Sender OK\r\n");
    assert_eq!(written(&mut s), "RCPT TO:<alice@contoso.com>\r\n");
    reply(&mut s, "250 2.1.5 Recipient OK\r\n");
    assert_eq!(written(&mut s), "RCPT TO:<bob@contoso.com>\r\n");
    reply(&mut s, "250 2.1.5 Recipient OK\r\n");
    assert_eq!(written(&mut s), "DATA\r\n");
    reply(&mut s, "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
    assert_eq!(s.next_event(), Ok(Event::SendBody));
    s.write_body(b"Subject: scan\r\n\r\n.first\nsecond")
        .unwrap();
    assert_eq!(written(&mut s), "Subject: scan\r\n\r\n..first\r\nsecond");
    assert_eq!(s.next_event(), Ok(Event::SendBody));
    s.finish_body().unwrap();
    assert_eq!(written(&mut s), "\r\n.\r\n");
    reply(
        &mut s,
        "250 2.0.0 OK <0a1b@SN4PR0501MB.namprd05.prod.outlook.com> [Hostname=SN4PR0501MB]\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let Ok(Event::Sent(report)) = s.next_event() else {
        panic!("not sent")
    };
    assert_eq!(report.accepted, ["alice@contoso.com", "bob@contoso.com"]);
    assert!(report.refused.is_empty());
    assert_eq!(report.reply.code, 250);
    // The 221 to QUIT, or nothing at all, is fine.
    s.feed(b"221 2.0.0 Service closing transmission channel\r\n");
    s.connection_closed();
    assert!(matches!(s.next_event(), Ok(Event::Sent(_))));
}

#[test]
fn the_first_event_is_a_read_because_the_server_speaks_first() {
    let mut s = session(&["a@x.com"]);
    assert_eq!(s.next_event(), Ok(Event::Read));
    assert_eq!(s.stage(), Stage::Greeting);
}

#[test]
fn replies_fed_one_byte_at_a_time_work() {
    let mut s = session(&["a@x.com"]);
    assert_eq!(s.next_event(), Ok(Event::Read));
    for b in GREETING.bytes() {
        s.feed(&[b]);
    }
    assert_eq!(written(&mut s), "EHLO mfp-0042.contoso.local\r\n");
    for b in EHLO_PLAIN.bytes() {
        s.feed(&[b]);
    }
    assert_eq!(written(&mut s), "STARTTLS\r\n");
}

#[test]
fn no_starttls_offered_fails_without_ever_sending_auth() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    reply(
        &mut s,
        "250-mx Hello\r\n250-AUTH LOGIN XOAUTH2\r\n250 SIZE 100\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    assert_eq!(err, SmtpError::StartTlsNotOffered);
    assert_eq!(err.code(), "smtp-starttls-not-offered");
    assert_eq!(err.stage(), Some(Stage::Ehlo));
    assert_eq!(failure(&mut s), err, "failure is sticky");
}

#[test]
fn refused_starttls_fails_typed_and_never_falls_back() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    reply(&mut s, EHLO_PLAIN);
    written(&mut s);
    reply(
        &mut s,
        "454 4.7.0 TLS not available due to local problem\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    assert_eq!(err.code(), "smtp-starttls-refused");
    assert_eq!(err.stage(), Some(Stage::StartTls));
    assert_eq!(err.reply().unwrap().code, 454);
}

#[test]
fn bytes_injected_after_the_starttls_go_ahead_are_refused() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    reply(&mut s, EHLO_PLAIN);
    written(&mut s);
    reply(
        &mut s,
        "220 2.0.0 SMTP server ready\r\n250-evil\r\n250 AUTH PLAIN\r\n",
    );
    assert_eq!(written(&mut s), "", "nothing more is sent in plaintext");
    let err = failure(&mut s);
    assert!(
        matches!(
            err,
            SmtpError::Protocol {
                stage: Stage::StartTls,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.tls_established(), Err(err));
}

#[test]
fn capabilities_from_before_tls_are_forgotten() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    // Before TLS the (spoofable) EHLO claims XOAUTH2; after TLS the server does not.
    reply(&mut s, "250-mx\r\n250-STARTTLS\r\n250 AUTH XOAUTH2\r\n");
    written(&mut s);
    reply(&mut s, "220 go ahead\r\n");
    s.tls_established().unwrap();
    written(&mut s);
    reply(&mut s, "250-mx\r\n250 AUTH LOGIN PLAIN\r\n");
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    assert_eq!(
        err,
        SmtpError::Xoauth2NotOffered {
            offered: vec!["LOGIN".into(), "PLAIN".into()]
        }
    );
    assert!(err.to_string().contains("LOGIN, PLAIN"));
}

#[test]
fn tls_established_when_not_asked_is_a_driver_error() {
    let mut s = session(&["a@x.com"]);
    assert_eq!(
        s.tls_established(),
        Err(SmtpError::OutOfOrder {
            call: "tls_established",
            stage: Stage::Greeting
        })
    );
    assert_eq!(s.next_event(), Ok(Event::Read), "the session goes on");
    assert!(matches!(
        s.write_body(b"x"),
        Err(SmtpError::OutOfOrder {
            call: "write_body",
            ..
        })
    ));
    assert!(matches!(
        s.finish_body(),
        Err(SmtpError::OutOfOrder {
            call: "finish_body",
            ..
        })
    ));
    assert_eq!(s.next_event(), Ok(Event::Read));
}

#[test]
fn auth_failure_is_reported_with_code_enhanced_code_and_text() {
    let mut s = session(&["a@x.com"]);
    assert_eq!(up_to_auth(&mut s, EHLO_TLS), auth_line());
    reply(
        &mut s,
        "535 5.7.3 Authentication unsuccessful [SN4PR0501CA0030.namprd05.prod.outlook.com]\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    let SmtpError::Rejected {
        stage,
        reply,
        auth_challenge,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*stage, Stage::Auth);
    assert_eq!(reply.code, 535);
    assert_eq!(reply.enhanced, EnhancedStatus::parse("5.7.3"));
    assert!(reply.text().starts_with("Authentication unsuccessful"));
    assert_eq!(*auth_challenge, None);
    assert_eq!(err.code(), "smtp-auth-failed");
    assert!(!format!("{err} {err:?} {}", err.remedy()).contains("SECRET"));
}

#[test]
fn smtp_auth_disabled_for_the_tenant_keeps_its_enhanced_code() {
    let mut s = session(&["a@x.com"]);
    up_to_auth(&mut s, EHLO_TLS);
    reply(
        &mut s,
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.\r\n",
    );
    let err = failure(&mut s);
    assert_eq!(
        err.reply().unwrap().enhanced.unwrap().to_string(),
        "5.7.139"
    );
    assert!(
        err.to_string()
            .contains("SmtpClientAuthentication is disabled")
    );
}

#[test]
fn an_error_challenge_is_answered_with_an_empty_line_then_the_failure_is_read() {
    let mut s = session(&["a@x.com"]);
    up_to_auth(&mut s, EHLO_TLS);
    let json = STANDARD.encode(
        r#"{"status":"401","schemes":"Bearer","scope":"https://outlook.office.com/SMTP.Send"}"#,
    );
    reply(&mut s, &format!("334 {json}\r\n"));
    assert_eq!(written(&mut s), "\r\n");
    reply(&mut s, "535 5.7.8 Username and Password not accepted\r\n");
    let err = failure(&mut s);
    let SmtpError::Rejected {
        auth_challenge: Some(challenge),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(challenge.status.as_deref(), Some("401"));
    assert_eq!(
        challenge.scope.as_deref(),
        Some("https://outlook.office.com/SMTP.Send")
    );
}

#[test]
fn a_server_that_keeps_challenging_is_refused() {
    let mut s = session(&["a@x.com"]);
    up_to_auth(&mut s, EHLO_TLS);
    reply(&mut s, "334 e30=\r\n");
    assert_eq!(written(&mut s), "\r\n");
    reply(&mut s, "334 e30=\r\n");
    assert_eq!(written(&mut s), "");
    let err = failure(&mut s);
    assert_eq!(
        err,
        SmtpError::Credentials(xoauth2::Xoauth2Error::UnexpectedChallenge)
    );
    assert_eq!(err.stage(), Some(Stage::Auth));
}

#[test]
fn challenge_mode_sends_the_response_after_the_334_prompt() {
    let mut config = SessionConfig::new("mfp-0042.contoso.local");
    config.auth_mode = AuthMode::Challenge;
    let mut s = session_with(config, envelope(&["a@x.com"]));
    assert_eq!(up_to_auth(&mut s, EHLO_TLS), "AUTH XOAUTH2\r\n");
    reply(&mut s, "334 \r\n");
    let response = written(&mut s);
    assert_eq!(format!("AUTH XOAUTH2 {response}"), auth_line());
    reply(&mut s, "235 2.7.0 Authentication successful\r\n");
    assert!(written(&mut s).starts_with("MAIL FROM:"));
}

#[test]
fn size_is_announced_only_when_advertised_and_known() {
    let mut s = session(&["a@x.com"]);
    up_to_auth(&mut s, "250-mx\r\n250 AUTH XOAUTH2\r\n");
    reply(&mut s, "235 2.7.0 ok\r\n");
    assert_eq!(written(&mut s), "MAIL FROM:<scanner@contoso.com>\r\n");

    let mut unknown = envelope(&["a@x.com"]);
    unknown.size = None;
    let mut s = session_with(SessionConfig::new("mfp-0042.contoso.local"), unknown);
    assert_eq!(up_to_mail(&mut s), "MAIL FROM:<scanner@contoso.com>\r\n");
}

#[test]
fn a_message_over_the_size_limit_fails_before_the_token_is_sent() {
    let mut big = envelope(&["a@x.com"]);
    big.size = Some(200_000_000);
    let mut s = session_with(SessionConfig::new("mfp-0042.contoso.local"), big);
    assert_eq!(up_to_auth(&mut s, EHLO_TLS), "QUIT\r\n");
    assert_eq!(
        failure(&mut s),
        SmtpError::MessageTooLarge {
            size: 200_000_000,
            limit: 157_286_400
        }
    );
}

#[test]
fn international_addresses_need_smtputf8() {
    // EHLO_TLS offers SMTPUTF8, so MAIL FROM asks for it.
    let mut s = session(&["jörg@bücher.example"]);
    assert_eq!(
        up_to_mail(&mut s),
        "MAIL FROM:<scanner@contoso.com> SIZE=1234 SMTPUTF8\r\n"
    );

    let mut s = session(&["a@x.com", "jörg@bücher.example"]);
    assert_eq!(
        up_to_auth(&mut s, "250-mx\r\n250 AUTH XOAUTH2\r\n"),
        "QUIT\r\n"
    );
    assert_eq!(
        failure(&mut s),
        SmtpError::SmtpUtf8NotOffered {
            field: "to[1]".into()
        }
    );
}

#[test]
fn every_refused_recipient_is_reported_and_nothing_is_sent() {
    let mut s = session(&[
        "a@contoso.com",
        "typo@contoso.com",
        "b@contoso.com",
        "x@elsewhere.example",
    ]);
    up_to_mail(&mut s);
    reply(&mut s, "250 2.1.0 Sender OK\r\n");
    written(&mut s);
    reply(&mut s, "250 2.1.5 Recipient OK\r\n");
    assert_eq!(written(&mut s), "RCPT TO:<typo@contoso.com>\r\n");
    reply(
        &mut s,
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup\r\n",
    );
    assert_eq!(
        written(&mut s),
        "RCPT TO:<b@contoso.com>\r\n",
        "goes on after a refusal"
    );
    reply(&mut s, "251 2.1.5 User not local; will forward\r\n");
    written(&mut s);
    reply(
        &mut s,
        "550 5.4.1 Recipient address rejected: Access denied\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n", "no DATA under RequireAll");
    let err = failure(&mut s);
    let SmtpError::RecipientsRefused { refused } = &err else {
        panic!("{err:?}")
    };
    let who: Vec<&str> = refused.iter().map(|r| r.recipient.as_str()).collect();
    assert_eq!(who, ["typo@contoso.com", "x@elsewhere.example"]);
    assert_eq!(refused[0].reply.enhanced.unwrap().to_string(), "5.1.10");
    assert_eq!(refused[1].reply.code, 550);
    assert_eq!(err.code(), "smtp-recipients-refused");
    let shown = err.to_string();
    assert!(
        shown.contains("typo@contoso.com (550 5.1.10")
            && shown.contains("x@elsewhere.example (550 5.4.1"),
        "{shown}"
    );
}

#[test]
fn a_line_too_long_at_auth_is_a_command_refusal_not_sign_in_advice() {
    let mut s = session(&["a@x.com"]);
    up_to_auth(&mut s, EHLO_TLS);
    reply(&mut s, "500 5.5.2 Line too long\r\n");
    let err = failure(&mut s);
    assert_eq!(err.stage(), Some(Stage::Auth));
    assert_eq!(err.code(), "smtp-command-refused");
    assert!(!err.remedy().contains("Sign in"), "{}", err.remedy());
}

#[test]
fn a_4xx_to_rcpt_is_a_temporary_failure_not_a_refused_recipient() {
    for policy in [
        RecipientPolicy::RequireAll,
        RecipientPolicy::DeliverToAccepted,
    ] {
        let mut config = SessionConfig::new("mfp-0042.contoso.local");
        config.recipient_policy = policy;
        let mut s = session_with(config, envelope(&["a@contoso.com", "b@contoso.com"]));
        up_to_mail(&mut s);
        reply(&mut s, "250 2.1.0 Sender OK\r\n");
        written(&mut s);
        reply(&mut s, "250 2.1.5 Recipient OK\r\n");
        assert_eq!(written(&mut s), "RCPT TO:<b@contoso.com>\r\n");
        reply(&mut s, "452 4.5.3 Too many recipients\r\n");
        assert_eq!(written(&mut s), "QUIT\r\n", "{policy:?}: no DATA");
        let err = failure(&mut s);
        assert_eq!(err.stage(), Some(Stage::RcptTo));
        assert_eq!(err.code(), "smtp-recipient-deferred");
        assert_eq!(err.reply().map(|r| r.code), Some(452));
        assert!(err.remedy().contains("try again"), "{}", err.remedy());
    }
}

#[test]
fn a_421_ends_the_session_at_any_stage_without_another_command() {
    let mut at_greeting = session(&["a@x.com"]);
    let mut at_mail = session(&["a@x.com"]);
    up_to_mail(&mut at_mail);
    let mut at_final_dot = session(&["a@x.com"]);
    up_to_mail(&mut at_final_dot);
    reply(&mut at_final_dot, "250 2.1.0 Sender OK\r\n");
    written(&mut at_final_dot);
    reply(&mut at_final_dot, "250 2.1.5 Recipient OK\r\n");
    written(&mut at_final_dot);
    reply(&mut at_final_dot, "354 go\r\n");
    at_final_dot.finish_body().unwrap();
    written(&mut at_final_dot);
    assert!(at_final_dot.awaits_final_reply());
    for (mut s, stage) in [
        (at_greeting, Stage::Greeting),
        (at_mail, Stage::MailFrom),
        (at_final_dot, Stage::Message),
    ] {
        reply(
            &mut s,
            "421 4.3.2 Service not available, closing transmission channel\r\n",
        );
        assert_eq!(written(&mut s), "", "{stage:?}: not even QUIT");
        let err = s.next_event().unwrap_err();
        assert_eq!(err.stage(), Some(stage));
        assert_eq!(err.code(), "smtp-service-unavailable");
        assert!(err.reply().is_some_and(Reply::is_transient));
        assert!(s.outcome_known());
    }
    at_greeting = session(&["a@x.com"]);
    reply(&mut at_greeting, "421 4.7.0 Try again later\r\n");
    assert_eq!(written(&mut at_greeting), "");
}

#[test]
fn each_stage_waits_its_rfc_5321_timeout() {
    use std::time::Duration;
    let min = |m: u64| Duration::from_secs(m * 60);
    let mut s = session(&["a@x.com"]);
    assert_eq!(s.timeout(), min(5), "greeting");
    reply(&mut s, GREETING);
    written(&mut s);
    assert_eq!(s.timeout(), min(5), "EHLO");
    up_to_auth_after_greeting(&mut s);
    reply(&mut s, "235 2.7.0 ok\r\n");
    written(&mut s);
    assert_eq!(s.timeout(), min(5), "MAIL");
    reply(&mut s, "250 ok\r\n");
    written(&mut s);
    assert_eq!(s.timeout(), min(5), "RCPT");
    reply(&mut s, "250 ok\r\n");
    written(&mut s);
    assert_eq!(s.timeout(), min(2), "DATA initiation");
    reply(&mut s, "354 go\r\n");
    assert_eq!(s.timeout(), min(3), "data block");
    s.finish_body().unwrap();
    assert!(!s.awaits_final_reply(), "the dot is not out yet");
    written(&mut s);
    assert!(s.awaits_final_reply());
    assert_eq!(s.timeout(), min(10), "final dot");
    reply(&mut s, "250 2.0.0 OK\r\n");
    assert!(s.outcome_known() && !s.awaits_final_reply());
    assert_eq!(
        s.timeout(),
        Duration::from_secs(5),
        "the 221 to QUIT, briefly"
    );

    let mut config = SessionConfig::new("mfp");
    config.timeouts = Timeouts::divided_by(300);
    let s = session_with(config, envelope(&["a@x.com"]));
    assert_eq!(s.timeout(), Duration::from_secs(1));
}

#[test]
fn deliver_to_accepted_sends_and_reports_the_refusals() {
    let mut config = SessionConfig::new("mfp-0042.contoso.local");
    config.recipient_policy = RecipientPolicy::DeliverToAccepted;
    let mut s = session_with(config, envelope(&["a@contoso.com", "typo@contoso.com"]));
    up_to_mail(&mut s);
    reply(&mut s, "250 2.1.0 Sender OK\r\n");
    written(&mut s);
    reply(&mut s, "250 2.1.5 Recipient OK\r\n");
    written(&mut s);
    reply(&mut s, "550 5.1.10 Recipient not found\r\n");
    assert_eq!(written(&mut s), "DATA\r\n");
    reply(&mut s, "354 go\r\n");
    s.finish_body().unwrap();
    written(&mut s);
    reply(&mut s, "250 2.0.0 OK\r\n");
    written(&mut s);
    let Ok(Event::Sent(report)) = s.next_event() else {
        panic!()
    };
    assert_eq!(report.accepted, ["a@contoso.com"]);
    assert_eq!(report.refused.len(), 1);
    assert_eq!(report.refused[0].recipient, "typo@contoso.com");
}

#[test]
fn all_recipients_refused_fails_whatever_the_policy() {
    let mut config = SessionConfig::new("mfp-0042.contoso.local");
    config.recipient_policy = RecipientPolicy::DeliverToAccepted;
    let mut s = session_with(config, envelope(&["typo@contoso.com"]));
    up_to_mail(&mut s);
    reply(&mut s, "250 2.1.0 Sender OK\r\n");
    written(&mut s);
    reply(&mut s, "550 5.1.10 Recipient not found\r\n");
    assert_eq!(written(&mut s), "QUIT\r\n");
    assert!(
        matches!(failure(&mut s), SmtpError::RecipientsRefused { refused } if refused.len() == 1)
    );
}

#[test]
fn send_as_denied_after_the_data_is_a_message_stage_failure() {
    let mut s = session(&["a@contoso.com"]);
    up_to_mail(&mut s);
    reply(&mut s, "250 2.1.0 Sender OK\r\n");
    written(&mut s);
    reply(&mut s, "250 2.1.5 Recipient OK\r\n");
    written(&mut s);
    reply(&mut s, "354 go\r\n");
    s.write_body(b"hello\r\n").unwrap();
    s.finish_body().unwrap();
    assert_eq!(written(&mut s), "hello\r\n.\r\n");
    reply(
        &mut s,
        "554 5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as boss@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    assert_eq!(err.stage(), Some(Stage::Message));
    assert_eq!(err.code(), "smtp-message-refused");
    assert_eq!(
        err.reply().unwrap().enhanced.unwrap().to_string(),
        "5.2.252"
    );
    assert!(err.to_string().contains("SendAsDenied"));
}

#[test]
fn refusals_at_each_command_name_their_stage() {
    let cases: [(&str, Stage, &str); 3] = [
        (
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender\r\n",
            Stage::MailFrom,
            "smtp-sender-refused",
        ),
        (
            "530 5.7.57 Client not authenticated to send mail\r\n",
            Stage::MailFrom,
            "smtp-sender-refused",
        ),
        (
            "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException\r\n",
            Stage::MailFrom,
            "smtp-sender-refused",
        ),
    ];
    for (text, stage, code) in cases {
        let mut s = session(&["a@x.com"]);
        up_to_mail(&mut s);
        reply(&mut s, text);
        assert_eq!(written(&mut s), "QUIT\r\n");
        let err = failure(&mut s);
        assert_eq!((err.stage(), err.code()), (Some(stage), code), "{text}");
    }

    let mut s = session(&["a@x.com"]);
    up_to_mail(&mut s);
    reply(&mut s, "250 ok\r\n");
    written(&mut s);
    reply(&mut s, "250 ok\r\n");
    written(&mut s);
    reply(&mut s, "451 4.3.0 try later\r\n");
    let err = failure(&mut s);
    assert_eq!(
        (err.stage(), err.code()),
        (Some(Stage::Data), "smtp-data-refused")
    );
    assert!(err.remedy().contains("try again"));
}

#[test]
fn a_refusing_greeting_is_a_transient_connection_failure() {
    let mut s = session(&["a@x.com"]);
    reply(
        &mut s,
        "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.\r\n",
    );
    assert_eq!(written(&mut s), "QUIT\r\n");
    let err = failure(&mut s);
    assert_eq!(err.code(), "smtp-connection-refused");
    assert_eq!(err.reply().unwrap().enhanced.unwrap().to_string(), "4.3.2");
    assert!(err.remedy().contains("try again"));
}

#[test]
fn a_closed_connection_fails_with_its_stage() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    s.connection_closed();
    assert_eq!(written(&mut s), "", "no QUIT to a closed connection");
    assert_eq!(
        failure(&mut s),
        SmtpError::ConnectionClosed { stage: Stage::Ehlo }
    );
}

#[test]
fn a_hostile_server_cannot_exhaust_memory() {
    let mut s = session(&["a@x.com"]);
    assert_eq!(s.next_event(), Ok(Event::Read));
    let junk = vec![b'2'; 1024];
    for _ in 0..10 {
        s.feed(&junk);
    }
    assert!(
        matches!(failure(&mut s), SmtpError::Protocol { stage: Stage::Greeting, what } if what.contains("longer than"))
    );

    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    s.feed(&b"250-AUTH XOAUTH2\r\n".repeat(200));
    assert!(
        matches!(failure(&mut s), SmtpError::Protocol { stage: Stage::Ehlo, what } if what.contains("more than 100 lines"))
    );
}

#[test]
fn garbage_instead_of_a_reply_is_a_protocol_error() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, "HTTP/1.1 400 Bad Request\r\n");
    assert_eq!(written(&mut s), "");
    assert_eq!(failure(&mut s).code(), "smtp-protocol-error");
}

#[test]
fn outside_input_that_could_inject_commands_is_refused_before_anything_is_sent() {
    let bad_from = Envelope {
        from: "a@x.com>\r\nRCPT TO:<victim@y.com".into(),
        ..envelope(&["a@x.com"])
    };
    let err = Session::new(SessionConfig::new("mfp"), credentials(), bad_from).unwrap_err();
    assert!(matches!(&err, SmtpError::InvalidAddress { field, .. } if field == "from"));
    assert_eq!(err.code(), "smtp-invalid-address");

    let err = Session::new(
        SessionConfig::new("mfp"),
        credentials(),
        envelope(&["ok@x.com", "b@y.com\nDATA"]),
    )
    .unwrap_err();
    assert!(matches!(&err, SmtpError::InvalidAddress { field, .. } if field == "to[1]"));

    let err = Session::new(
        SessionConfig::new("mfp\r\nQUIT"),
        credentials(),
        envelope(&["a@x.com"]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "smtp-invalid-ehlo-name");

    let err = Session::new(SessionConfig::new("mfp"), credentials(), envelope(&[])).unwrap_err();
    assert_eq!(err, SmtpError::NoRecipients);
}

#[test]
fn debug_never_shows_the_pending_auth_line() {
    let mut s = session(&["a@x.com"]);
    reply(&mut s, GREETING);
    written(&mut s);
    reply(&mut s, EHLO_PLAIN);
    written(&mut s);
    reply(&mut s, "220 go\r\n");
    s.tls_established().unwrap();
    written(&mut s);
    reply(&mut s, EHLO_TLS);
    let shown = format!("{s:?}");
    let encoded = STANDARD.encode(format!(
        "user=scanner@contoso.com\x01auth=Bearer {TOKEN}\x01\x01"
    ));
    // Neither as text nor as a `Vec<u8>` byte list ("AUTH" = 65, 85, 84, 72).
    let leaks = |shown: &str| {
        shown.contains("SECRET")
            || shown.contains(&encoded[..20])
            || shown.contains("65, 85, 84, 72")
    };
    assert!(!leaks(&shown), "{shown}");
    assert!(shown.contains("Auth"), "{shown}");
    let event = s.next_event().unwrap();
    let shown = format!("{event:?}");
    assert!(shown.starts_with("Write(<") && !leaks(&shown), "{shown}");
}

#[test]
fn the_documented_driver_loop_sends_a_message() {
    // The loop of the module docs, against a scripted server.
    let script = [
        GREETING.to_owned(),
        EHLO_PLAIN.to_owned(),
        "220 2.0.0 SMTP server ready\r\n".to_owned(),
        EHLO_TLS.to_owned(),
        "235 2.7.0 Authentication successful\r\n".to_owned(),
        "250 2.1.0 Sender OK\r\n".to_owned(),
        "250 2.1.5 Recipient OK\r\n".to_owned(),
        "354 Start mail input\r\n".to_owned(),
        "250 2.0.0 OK queued\r\n".to_owned(),
    ];
    let mut replies = script.iter();
    let mut message = [b"Subject: x\r\n\r\n".to_vec(), b".\r\n".to_vec()].into_iter();
    let mut wire = Vec::new();
    let mut tls = false;
    let mut session = session(&["alice@contoso.com"]);
    let report = loop {
        match session.next_event().unwrap() {
            Event::Write(bytes) => wire.extend_from_slice(&bytes),
            Event::Read => match replies.next() {
                Some(bytes) => session.feed(bytes.as_bytes()),
                None => session.connection_closed(),
            },
            Event::StartTls => {
                tls = true;
                session.tls_established().unwrap();
            }
            Event::SendBody => match message.next() {
                Some(chunk) => session.write_body(&chunk).unwrap(),
                None => session.finish_body().unwrap(),
            },
            Event::Sent(report) => break report,
        }
    };
    assert!(tls);
    assert_eq!(report.accepted, ["alice@contoso.com"]);
    let wire = String::from_utf8(wire).unwrap();
    assert!(
        wire.ends_with("DATA\r\nSubject: x\r\n\r\n..\r\n.\r\nQUIT\r\n"),
        "{wire}"
    );
    let auth_at = wire.find("AUTH").unwrap();
    assert!(
        auth_at > wire.find("STARTTLS").unwrap(),
        "AUTH only after STARTTLS"
    );
}
