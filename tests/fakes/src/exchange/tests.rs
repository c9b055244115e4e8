//! The Exchange fake answers as Exchange Online does; each test states one rule.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::identity::{DEVICE_CODE_GRANT, handle_http};
use crate::scenario::{Case, Scenario};

const T0: Duration = Duration::from_secs(1_718_006_400);
const UPN: &str = "mfp@contoso.com";

/// Signs the world's first account in through the identity fake; returns the access token.
fn token_for(world: &World, scope: &str) -> String {
    let form = |pairs: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    };
    // A form, as the identity fake requires; any scope, so tokens of other resources exist.
    let no_headers = [("content-type", "application/x-www-form-urlencoded")];
    world.update_settings(|s| s.scope = None);
    let body = form(&[("client_id", "c"), ("scope", scope)]);
    let code = handle_http(
        world,
        "POST",
        "/common/oauth2/v2.0/devicecode",
        &no_headers,
        body.as_bytes(),
        T0,
    )
    .json_body()
    .unwrap_or_default();
    let _ = world.approve(code["user_code"].as_str().unwrap_or_default(), T0);
    let body = form(&[
        ("grant_type", DEVICE_CODE_GRANT),
        ("client_id", "c"),
        (
            "device_code",
            code["device_code"].as_str().unwrap_or_default(),
        ),
    ]);
    let tokens = handle_http(
        world,
        "POST",
        "/common/oauth2/v2.0/token",
        &no_headers,
        body.as_bytes(),
        T0,
    )
    .json_body()
    .unwrap_or_default();
    tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn token(world: &World) -> String {
    token_for(
        world,
        "https://outlook.office.com/SMTP.Send offline_access openid profile email",
    )
}

fn blob(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// Sends `line` + CRLF; returns the reply text.
fn say(session: &mut SmtpSession, line: &str) -> String {
    String::from_utf8_lossy(&session.feed(format!("{line}\r\n").as_bytes(), T0).reply).into_owned()
}

/// `AUTH XOAUTH2` in the two-step form (RFC 4954 §4: the response is too long for one
/// command line); returns the reply to the response.
fn auth(session: &mut SmtpSession, response: &str) -> String {
    assert_eq!(say(session, "AUTH XOAUTH2"), "334 \r\n");
    say(session, response)
}

/// A session that has done EHLO, STARTTLS and EHLO again.
fn after_tls(world: &World) -> SmtpSession {
    let mut s = SmtpSession::new(world.clone(), "127.0.0.1", T0);
    say(&mut s, "EHLO printer");
    let out = s.feed(b"STARTTLS\r\n", T0);
    assert!(out.start_tls);
    say(&mut s, "EHLO printer");
    s
}

/// A session authenticated as the first account.
fn authenticated(world: &World) -> SmtpSession {
    let token = token(world);
    let mut s = after_tls(world);
    assert!(auth(&mut s, &blob(UPN, &token)).starts_with("235 "));
    s
}

#[test]
fn greeting_names_the_host_and_the_date() {
    let s = SmtpSession::new(World::new(Scenario::default()), "127.0.0.1", T0);
    assert_eq!(
        String::from_utf8_lossy(&s.greeting()),
        "220 PH7P220CA0011.outlook.office365.com Microsoft ESMTP MAIL Service ready at Mon, 10 Jun 2024 08:00:00 +0000\r\n"
    );
}

#[test]
fn ehlo_offers_starttls_but_no_auth_before_tls() {
    let mut s = SmtpSession::new(World::new(Scenario::default()), "192.0.2.7", T0);
    assert_eq!(
        say(&mut s, "EHLO printer"),
        "250-PH7P220CA0011.outlook.office365.com Hello [192.0.2.7]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
    );
}

#[test]
fn ehlo_after_starttls_offers_auth_login_xoauth2_and_no_starttls() {
    let world = World::new(Scenario::default());
    let mut s = SmtpSession::new(world, "127.0.0.1", T0);
    say(&mut s, "EHLO printer");
    assert_eq!(say(&mut s, "STARTTLS"), "220 2.0.0 SMTP server ready\r\n");
    let ehlo = say(&mut s, "EHLO printer");
    assert!(ehlo.contains("250-AUTH LOGIN XOAUTH2\r\n"));
    assert!(!ehlo.contains("STARTTLS"));
    assert!(ehlo.contains("250-SIZE 157286400\r\n") && ehlo.ends_with("250 SMTPUTF8\r\n"));
}

#[test]
fn bytes_pipelined_after_starttls_are_discarded() {
    let mut s = SmtpSession::new(World::new(Scenario::default()), "127.0.0.1", T0);
    say(&mut s, "EHLO printer");
    let out = s.feed(b"STARTTLS\r\nAUTH XOAUTH2 abc\r\n", T0);
    assert_eq!(out.reply, b"220 2.0.0 SMTP server ready\r\n");
    assert!(out.start_tls && s.is_tls());
}

#[test]
fn auth_and_mail_before_starttls_must_issue_starttls_first() {
    let mut s = SmtpSession::new(World::new(Scenario::default()), "127.0.0.1", T0);
    say(&mut s, "EHLO printer");
    assert_eq!(
        say(&mut s, "AUTH XOAUTH2"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<mfp@contoso.com>"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
}

#[test]
fn mail_before_auth_is_client_not_authenticated() {
    let world = World::new(Scenario::default());
    let mut s = after_tls(&world);
    assert!(
        say(&mut s, "MAIL FROM:<mfp@contoso.com>")
            .starts_with("530 5.7.57 Client not authenticated to send mail [")
    );
}

#[test]
fn a_valid_token_for_the_upn_authenticates_in_one_line_or_after_334() {
    let world = World::new(Scenario::default());
    let token = token(&world);
    let mut s = after_tls(&world);
    // The one-line form with a Microsoft-sized token is longer than 512 octets.
    let one_line = format!("AUTH XOAUTH2 {}", blob(UPN, &token));
    assert!(one_line.len() > 2500);
    assert_eq!(say(&mut s, &one_line), "500 5.5.2 Line too long\r\n");
    assert!(s.account().is_none());
    assert_eq!(
        world.smtp_commands().last().map(String::as_str),
        Some(
            format!(
                "AUTH XOAUTH2 <initial response, {} octets> (refused: line too long)",
                one_line.len() - 13
            )
            .as_str()
        )
    );
    // A short (non-Microsoft) response still fits on the line: the rule is the length.
    let short = format!("AUTH XOAUTH2 {}", blob(UPN, "short-token"));
    assert!(say(&mut s, &short).starts_with("535 5.7.3"));
    assert_eq!(
        auth(&mut s, &blob(UPN, &token)),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(s.account().map(|a| a.upn.as_str()), Some(UPN));
    assert!(
        !world.smtp_commands().concat().contains(&token[..40]),
        "no token in the log"
    );

    let mut s = after_tls(&world);
    assert_eq!(say(&mut s, "AUTH XOAUTH2"), "334 \r\n");
    assert_eq!(
        say(&mut s, &blob("MFP@Contoso.com", &token)),
        "235 2.7.0 Authentication successful\r\n"
    );
}

/// The command log never shows a token nor a piece of its XOAUTH2 response, however the
/// client sends it: on the AUTH line, after `334`, with a tab for a space, after a refused
/// AUTH, or after the session closed.
#[test]
fn the_command_log_redacts_xoauth2_tokens_however_they_are_sent() {
    let world = World::new(Scenario::default());
    let token = token(&world);
    let response = blob(UPN, &token);
    let short = blob(UPN, "short-token-0123456789");
    let sent: Vec<(bool, Vec<String>)> = vec![
        // (after STARTTLS, lines)
        (true, vec![format!("AUTH XOAUTH2 {short}")]),
        (true, vec![format!("AUTH XOAUTH2 {response}")]),
        (true, vec!["AUTH XOAUTH2".into(), response.clone()]),
        (true, vec![format!("auth\txoauth2 {short}")]),
        (true, vec![format!("AUTH {short}")]),
        (false, vec!["AUTH XOAUTH2".into(), short.clone()]),
        (true, vec![format!("{token}:x")]),
        (
            true,
            vec![
                "QUIT".into(),
                format!("AUTH XOAUTH2 {short}"),
                short.clone(),
            ],
        ),
    ];
    for (tls, lines) in &sent {
        let mut s = if *tls {
            after_tls(&world)
        } else {
            SmtpSession::new(world.clone(), "127.0.0.1", T0)
        };
        for line in lines {
            s.feed(format!("{line}\r\n").as_bytes(), T0);
        }
    }
    let log = world.smtp_commands();
    let all = log.join("\n");
    for secret in [&token, &response, &short] {
        for window in secret.as_bytes().windows(16).step_by(4) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!all.contains(window), "{window:?} shows in {log:#?}");
        }
    }
    for expected in [
        format!("AUTH XOAUTH2 <initial response, {} octets>", short.len()),
        format!("<XOAUTH2 response, {} octets>", response.len()),
        format!("auth xoauth2 <initial response, {} octets>", short.len()),
        format!("AUTH <mechanism, {} octets>", short.len()),
        format!("<base64 line, {} octets>", short.len()),
        format!(
            "<base64 line, {} octets> (refused: line too long)",
            token.len() + 2
        ),
        format!(
            "after close: AUTH XOAUTH2 <initial response, {} octets>",
            short.len()
        ),
        format!("after close: <base64 line, {} octets>", short.len()),
    ] {
        assert!(log.contains(&expected), "{expected:?} not in {log:#?}");
    }
}

#[test]
fn wrong_user_unknown_token_or_a_response_not_exactly_xoauth2_is_535_5_7_3() {
    let world = World::new(Scenario::default());
    let token = token(&world);
    let raw = |text: String| STANDARD.encode(text);
    for attempt in [
        blob("scanner@contoso.com", &token),
        blob(UPN, "not-a-token"),
        STANDARD.encode("user=x"),
        // Exactly `user=…^Aauth=Bearer …^A^A`: no missing ^A^A, no other order, no extra
        // field, no trimming, no other scheme spelling.
        raw(format!("user={UPN}\x01auth=Bearer {token}")),
        raw(format!("user={UPN}\x01auth=Bearer {token}\x01")),
        raw(format!("auth=Bearer {token}\x01user={UPN}\x01\x01")),
        raw(format!(
            "user={UPN}\x01host=smtp.office365.com\x01auth=Bearer {token}\x01\x01"
        )),
        raw(format!("user={UPN}\x01auth=Bearer {token}\x01x=1\x01\x01")),
        raw(format!("user={UPN}\x01auth=Bearer  {token}\x01\x01")),
        raw(format!("user={UPN}\x01auth=Bearer {token} \x01\x01")),
        raw(format!("user= {UPN}\x01auth=Bearer {token}\x01\x01")),
        raw(format!("user={UPN}\x01auth=bearer {token}\x01\x01")),
    ] {
        let mut s = after_tls(&world);
        let reply = auth(&mut s, &attempt);
        assert!(
            reply.starts_with("535 5.7.3 Authentication unsuccessful ["),
            "{reply}"
        );
        assert!(s.account().is_none());
    }
    let mut s = after_tls(&world);
    assert_eq!(
        auth(&mut s, "!!!"),
        "501 5.5.2 Cannot Base64-decode Client responses\r\n"
    );
    let mut s = after_tls(&world);
    let padded = format!(" {}", blob(UPN, &token));
    assert!(
        auth(&mut s, &padded).starts_with("501 5.5.2"),
        "no trimming of the line"
    );
}

#[test]
fn the_upn_not_the_primary_address_must_be_the_xoauth2_user() {
    let world = World::for_case(Case::PrimaryDiffersFromUpn);
    let token = token(&world);
    let mut s = after_tls(&world);
    assert!(auth(&mut s, &blob("scanner@contoso.com", &token)).starts_with("535 5.7.3"));
    assert!(auth(&mut s, &blob("mfp@contoso.onmicrosoft.com", &token)).starts_with("235"));
}

#[test]
fn a_token_without_smtp_send_or_past_expiry_is_refused() {
    let world = World::new(Scenario::default());
    let graph = token_for(&world, "https://graph.microsoft.com/User.Read openid");
    let mut s = after_tls(&world);
    assert!(auth(&mut s, &blob(UPN, &graph)).starts_with("535 5.7.3"));
    let token = token(&world);
    let mut s = after_tls(&world);
    let late = T0 + Duration::from_secs(5401);
    assert_eq!(s.feed(b"AUTH XOAUTH2\r\n", late).reply, b"334 \r\n");
    let reply = s.feed(format!("{}\r\n", blob(UPN, &token)).as_bytes(), late);
    assert!(reply.reply.starts_with(b"535 5.7.3"));
}

#[test]
fn smtp_auth_disabled_and_security_defaults_are_535_5_7_139() {
    let cases = [
        (
            SmtpCase::AuthDisabledForTenant,
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [",
        ),
        (
            SmtpCase::AuthDisabledForMailbox,
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. [",
        ),
        (
            SmtpCase::SecurityDefaults,
            "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator. [",
        ),
    ];
    for (case, expected) in cases {
        let world = World::for_case(Case::Smtp(case));
        let token = token(&world);
        let mut s = after_tls(&world);
        let reply = auth(&mut s, &blob(UPN, &token));
        assert!(reply.starts_with(expected), "{reply}");
    }
}

#[test]
fn error_challenge_is_334_json_then_535_after_the_empty_line() {
    let world = World::for_case(Case::Smtp(SmtpCase::ErrorChallenge));
    let token = token(&world);
    let mut s = after_tls(&world);
    let reply = auth(&mut s, &blob(UPN, &token));
    let challenge = reply.trim_end().strip_prefix("334 ").unwrap_or_default();
    let json: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(challenge).unwrap_or_default()).unwrap_or_default();
    assert_eq!(json["status"], "400");
    assert_eq!(json["schemes"], "Bearer");
    assert!(say(&mut s, "").starts_with("535 5.7.3 Authentication unsuccessful"));

    // Anything but an empty line is refused: it is no answer to the challenge.
    let mut s = after_tls(&world);
    assert!(auth(&mut s, &blob(UPN, &token)).starts_with("334 "));
    assert_eq!(
        say(&mut s, "*"),
        "501 5.5.2 Syntax error: answer the error challenge with an empty line\r\n"
    );
}

#[test]
fn a_fourth_concurrent_session_of_one_account_gets_432_until_one_closes() {
    let world = World::new(Scenario::default());
    let sessions: Vec<SmtpSession> = (0..3).map(|_| authenticated(&world)).collect();
    assert_eq!(world.open_sessions(UPN), 3);
    let token = token(&world);
    let mut fourth = after_tls(&world);
    let reply = auth(&mut fourth, &blob(UPN, &token));
    assert!(reply.starts_with("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. ["));
    drop(sessions);
    assert_eq!(world.open_sessions(UPN), 0);
    assert!(auth(&mut fourth, &blob(UPN, &token)).starts_with("235"));
}

#[test]
fn concurrent_limit_scenario_refuses_the_first_session_too() {
    let world = World::for_case(Case::Smtp(SmtpCase::ConcurrentLimit));
    let token = token(&world);
    let mut s = after_tls(&world);
    assert!(auth(&mut s, &blob(UPN, &token)).starts_with("432 4.3.2"));
}

#[test]
fn mail_from_an_address_the_mailbox_cannot_send_as_is_550_5_7_60() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    assert!(
        say(&mut s, "MAIL FROM:<boss@contoso.com>").starts_with(
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender ["
        )
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<scans@contoso.com>"),
        "250 2.1.0 Sender OK\r\n"
    );
}

/// Sends one whole message; returns the reply to the end of DATA.
fn send(s: &mut SmtpSession, from_header: &str, body: &str) -> String {
    assert_eq!(
        say(s, "MAIL FROM:<mfp@contoso.com> SIZE=10 BODY=8BITMIME"),
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(
        say(s, "RCPT TO:<someone@fabrikam.com>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert_eq!(
        say(s, "DATA"),
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n"
    );
    let message = format!(
        "From: {from_header}\r\nSubject: Scan\r\nMessage-ID: <scan-1@printer>\r\n\r\n{body}\r\n.\r\n"
    );
    say(s, message.trim_end_matches("\r\n"))
}

#[test]
fn data_is_unstuffed_stored_and_acknowledged_with_the_message_id() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    let reply = send(
        &mut s,
        "\"Scanner\" <mfp@contoso.com>",
        "line one\r\n..dot line",
    );
    assert_eq!(
        reply,
        "250 2.0.0 OK <scan-1@printer> [Hostname=PH7PR11MB5987.namprd11.prod.outlook.com]\r\n"
    );
    let messages = world.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!((m.account.as_str(), m.mail_from.as_str()), (UPN, UPN));
    assert_eq!(m.rcpt_to, vec!["someone@fabrikam.com".to_string()]);
    assert_eq!(m.header("subject").as_deref(), Some("Scan"));
    assert!(
        m.raw
            .as_deref()
            .unwrap_or_default()
            .ends_with(b"\r\n\r\nline one\r\n.dot line\r\n")
    );
    assert_eq!(m.size, m.raw.as_ref().map_or(0, |r| r.len() as u64));
    // The session stays authenticated for the next message.
    assert!(send(&mut s, "mfp@contoso.com", "again").starts_with("250 2.0.0 OK"));
}

#[test]
fn a_from_header_the_mailbox_cannot_send_as_is_send_as_denied_after_data() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    let reply = send(&mut s, "Boss <boss@contoso.com>", "x");
    assert!(reply.starts_with("554 5.2.252 SendAsDenied; mfp@contoso.com not allowed to send as boss@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message "), "{reply}");
    assert!(world.messages().is_empty());

    world.set_scenario(Case::LegacySendAsReply.scenario());
    let reply = send(&mut s, "boss@contoso.com", "x");
    assert!(reply.starts_with("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied;"), "{reply}");
}

#[test]
fn submission_quota_is_554_5_2_0_both_scripted_and_past_30_per_minute() {
    let world = World::for_case(Case::Smtp(SmtpCase::SubmissionQuota));
    let mut s = authenticated(&world);
    assert!(
        send(&mut s, "mfp@contoso.com", "x").starts_with(
            "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;"
        )
    );

    let world = World::new(Scenario::default());
    world.update_settings(|st| st.messages_per_minute = 2);
    let mut s = authenticated(&world);
    assert!(send(&mut s, "mfp@contoso.com", "1").starts_with("250"));
    assert!(send(&mut s, "mfp@contoso.com", "2").starts_with("250"));
    assert!(send(&mut s, "mfp@contoso.com", "3").starts_with("554 5.2.0"));
}

#[test]
fn oversized_messages_get_552_5_3_4_at_mail_or_after_data() {
    let world = World::new(Scenario::default());
    world.update_settings(|st| st.max_message_size = 50);
    let mut s = authenticated(&world);
    assert_eq!(
        say(&mut s, "MAIL FROM:<mfp@contoso.com> SIZE=51"),
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    let reply = send(&mut s, "mfp@contoso.com", &"x".repeat(60));
    assert_eq!(
        reply,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
}

#[test]
fn commands_out_of_order_get_503() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    assert_eq!(
        say(&mut s, "RCPT TO:<a@b.c>"),
        "503 5.5.2 Need mail command\r\n"
    );
    assert_eq!(say(&mut s, "DATA"), "503 5.5.2 Need mail command\r\n");
    say(&mut s, "MAIL FROM:<mfp@contoso.com>");
    assert_eq!(say(&mut s, "DATA"), "503 5.5.2 Need rcpt command\r\n");
    assert_eq!(say(&mut s, "RSET"), "250 2.0.0 Resetting\r\n");
    assert_eq!(say(&mut s, "FOO"), "500 5.3.3 Unrecognized command\r\n");
}

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    let out = s.feed(b"MAIL FROM:<mfp@contoso.com>\r\nRCPT TO:<a@b.c>\r\nDATA\r\nFrom: mfp@contoso.com\r\nSubject: p\r\n\r\nhi\r\n.\r\nQUIT\r\n", T0);
    let text = String::from_utf8_lossy(&out.reply);
    let codes: Vec<&str> = text.lines().map(|l| &l[..3]).collect();
    assert_eq!(codes, ["250", "250", "354", "250", "221"]);
    assert!(out.close && s.is_closed());
}

#[test]
fn data_split_into_single_bytes_arrives_whole() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    let mut replies = Vec::new();
    for b in
        b"MAIL FROM:<mfp@contoso.com>\r\nRCPT TO:<a@b.c>\r\nDATA\r\nFrom: mfp@contoso.com\r\n\r\n..x\r\n.\r\n"
    {
        replies.extend(s.feed(&[*b], T0).reply);
    }
    assert!(
        String::from_utf8_lossy(&replies)
            .ends_with("[Hostname=PH7PR11MB5987.namprd11.prod.outlook.com]\r\n")
    );
    assert_eq!(
        world.messages()[0].raw.as_deref(),
        Some(&b"From: mfp@contoso.com\r\n\r\n.x\r\n"[..])
    );
}

#[test]
fn bdat_chunks_are_read_by_size() {
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    say(&mut s, "MAIL FROM:<mfp@contoso.com>");
    say(&mut s, "RCPT TO:<a@b.c>");
    let out = s.feed(
        b"BDAT 25\r\nFrom: mfp@contoso.com\r\n\r\nBDAT 2 LAST\r\nhi",
        T0,
    );
    let text = String::from_utf8_lossy(&out.reply);
    assert!(
        text.starts_with("250 2.0.0 25 bytes received\r\n250 2.0.0 OK <"),
        "{text}"
    );
    assert_eq!(
        world.messages()[0].raw.as_deref(),
        Some(&b"From: mfp@contoso.com\r\n\r\nhi"[..])
    );
}

#[test]
fn an_overlong_line_is_refused_without_being_kept() {
    let world = World::new(Scenario::default());
    let mut s = SmtpSession::new(world, "127.0.0.1", T0);
    let long = vec![b'A'; MAX_LINE + 10];
    assert_eq!(s.feed(&long, T0).reply, b"500 5.5.2 Line too long\r\n");
    assert!(s.feed(&long, T0).reply.is_empty());
    assert_eq!(s.feed(b"\r\nNOOP\r\n", T0).reply, b"250 2.0.0 OK\r\n");
}

#[test]
fn a_client_that_keeps_erring_is_disconnected() {
    let mut s = SmtpSession::new(World::new(Scenario::default()), "127.0.0.1", T0);
    let out = s.feed("FOO\r\n".repeat(25).as_bytes(), T0);
    assert!(out.close);
    assert!(String::from_utf8_lossy(&out.reply).ends_with(
        "421 4.7.0 Too many errors on this connection, closing transmission channel\r\n"
    ));
}

#[test]
fn auth_login_is_refused_as_basic_authentication() {
    let world = World::new(Scenario::default());
    let mut s = after_tls(&world);
    assert_eq!(say(&mut s, "AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(say(&mut s, "bWZw"), "334 UGFzc3dvcmQ6\r\n");
    assert!(
        say(&mut s, "cGFzcw==").starts_with(
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
        )
    );
}

#[test]
fn quit_closes_with_221() {
    let mut s = SmtpSession::new(World::new(Scenario::default()), "127.0.0.1", T0);
    let out = s.feed(b"QUIT\r\n", T0);
    assert_eq!(
        out.reply,
        b"221 2.0.0 Service closing transmission channel\r\n"
    );
    assert!(out.close);
}

/// MAIL (with `mail_params`), RCPT and DATA, then `message` as sent on the wire (ending
/// in CRLF, the final dot added here); returns the reply to the final dot.
fn submit(s: &mut SmtpSession, mail_params: &str, message: &[u8]) -> String {
    assert!(say(s, &format!("MAIL FROM:<mfp@contoso.com>{mail_params}")).starts_with("250"));
    assert!(say(s, "RCPT TO:<someone@fabrikam.com>").starts_with("250"));
    assert!(say(s, "DATA").starts_with("354"));
    let mut wire = message.to_vec();
    wire.extend_from_slice(b".\r\n");
    String::from_utf8_lossy(&s.feed(&wire, T0).reply).into_owned()
}

#[test]
fn messages_breaking_smtp_or_rfc_5322_are_refused_as_a_strict_server_does() {
    const OK: &[u8] = b"From: mfp@contoso.com\r\nSubject: s\r\n\r\nbody\r\n";
    let world = World::new(Scenario::default());
    let mut s = authenticated(&world);
    assert!(submit(&mut s, "", OK).starts_with("250 2.0.0 OK"));

    let long_line = format!("From: mfp@contoso.com\r\n\r\n{}\r\n", "x".repeat(999));
    let at_limit = format!("From: mfp@contoso.com\r\n\r\n.{}\r\n", "x".repeat(998));
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "",
            b"From: mfp@contoso.com\r\n\r\nbare\nLF\r\n",
            "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal",
        ),
        ("", long_line.as_bytes(), "554 5.6.0 Message line too long"),
        (
            "",
            "From: mfp@contoso.com\r\n\r\nGrüße\r\n".as_bytes(),
            "554 5.6.1 Message contains 8-bit data",
        ),
        (
            "",
            b"Subject: no sender\r\n\r\nbody\r\n",
            "550 5.6.0 Invalid message content: the message has no From header",
        ),
        (
            " BODY=8BITMIME",
            "From: mfp@contoso.com\r\n\r\nGrüße\r\n".as_bytes(),
            "250 2.0.0 OK",
        ),
        // 998 octets after unstuffing the leading dot: within the limit.
        ("", at_limit.as_bytes(), "250 2.0.0 OK"),
    ];
    for (params, message, expected) in cases {
        let mut s = authenticated(&world);
        let reply = submit(&mut s, params, message);
        assert!(reply.starts_with(expected), "{expected}: {reply}");
    }
    assert_eq!(world.messages().len(), 3);
}

#[test]
fn a_421_closes_the_session_and_what_follows_is_recorded() {
    let world = World::for_case(Case::Smtp(SmtpCase::ServiceUnavailableAfterMail));
    let mut s = authenticated(&world);
    let out = s.feed(b"MAIL FROM:<mfp@contoso.com>\r\n", T0);
    assert_eq!(
        out.reply,
        b"421 4.3.2 Service not available, closing transmission channel\r\n"
    );
    assert!(out.close);
    assert!(s.feed(b"QUIT\r\n", T0).reply.is_empty());
    assert_eq!(
        world.smtp_commands().last().map(String::as_str),
        Some("after close: QUIT")
    );

    let world = World::for_case(Case::Smtp(SmtpCase::ServiceUnavailableAtFinalDot));
    let mut s = authenticated(&world);
    let reply = submit(&mut s, "", b"From: mfp@contoso.com\r\n\r\nx\r\n");
    assert!(
        reply.starts_with("421 4.3.2 Service not available"),
        "{reply}"
    );
    assert!(s.is_closed() && world.messages().is_empty());
}

#[test]
fn a_slow_final_reply_is_delayed_by_the_wrapper_not_refused() {
    let world = World::new(Scenario {
        smtp: SmtpCase::SlowFinalReply { millis: 1234 },
        ..Scenario::default()
    });
    let mut s = authenticated(&world);
    assert!(say(&mut s, "MAIL FROM:<mfp@contoso.com>").starts_with("250"));
    assert!(say(&mut s, "RCPT TO:<a@b.c>").starts_with("250"));
    let out = s.feed(b"DATA\r\n", T0);
    assert!(out.delay.is_zero(), "only the final reply is slow");
    let out = s.feed(b"From: mfp@contoso.com\r\n\r\nx\r\n.\r\n", T0);
    assert_eq!(out.delay, Duration::from_millis(1234));
    assert!(out.reply.starts_with(b"250 2.0.0 OK"));
    assert_eq!(
        Case::from_name("smtp-slow-final-reply"),
        Some(Case::Smtp(SmtpCase::SlowFinalReply {
            millis: SLOW_FINAL_REPLY_MS
        }))
    );
}
