//! Sending: attachments streamed whole, the From policy (S7), preconditions refused before
//! connecting, Exchange's refusals and their retries, size limits.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mfp_fakes::{Case, Scenario, SendAsReply, SmtpCase, SmtpSession};

use super::rig::{
    RECIPIENT, Rig, T0, WORK_ALIAS, WORK_UPN, assert_code, attachment_content, bearer_of, message,
    noise,
};
use crate::diagnose::{self, Severity};
use crate::mailer;
use crate::panel;
use crate::settings::Origin;
use crate::storage::{self, Storage};

#[test]
fn a_scan_with_two_attachments_arrives_whole_streamed_in_bounded_chunks() {
    let big = noise(300 * 1024 + 17, 42);
    let small = noise(1_000, 7);
    let rig = Rig::for_case(Case::Happy)
        .with_file(1, "scan-0001.pdf", big.clone())
        .with_file(2, "page 2.jpg", small.clone());
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.to.push("bob@fabrikam.com".into());
    msg.attachments = vec![1, 2];

    let report = rig.send(&msg, signed_in + 30).expect("sent");
    assert_eq!(report.accepted, [RECIPIENT, "bob@fabrikam.com"]);
    assert!(
        report.server_reply.starts_with("250 2.0.0 OK"),
        "{}",
        report.server_reply
    );
    assert!(
        report.message_id.starts_with('<') && report.message_id.ends_with("@contoso.com>"),
        "{}",
        report.message_id
    );

    let messages = rig.world.messages();
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.account, WORK_UPN);
    assert_eq!(received.mail_from, WORK_UPN);
    assert_eq!(received.rcpt_to, [RECIPIENT, "bob@fabrikam.com"]);
    assert_eq!(
        received.header("From").as_deref(),
        Some(WORK_UPN),
        "From is the Device Email Address"
    );
    assert_eq!(
        received.header("Subject").as_deref(),
        Some("Scan from the second floor")
    );
    assert_eq!(received.message_id, report.message_id);
    let raw = received.raw.as_ref().expect("kept whole");
    assert_eq!(attachment_content(raw, "scan-0001.pdf"), big);
    assert_eq!(attachment_content(raw, "page 2.jpg"), small);

    // Streamed: never more than one chunk of a file at a time.
    assert!(rig.files.largest_request.get() <= mailer::ATTACHMENT_CHUNK);
    let chunk = mailer::ATTACHMENT_CHUNK as usize;
    let expected_reads = big.len().div_ceil(chunk) + 1 + small.len().div_ceil(chunk) + 1;
    assert_eq!(
        rig.files.reads.get() as usize,
        expected_reads,
        "each file read once, plus the empty read at its end"
    );

    // SIZE was announced, and it is the message's size.
    let transcript = rig.last_transcript();
    let mail_from = transcript
        .split("\r\n")
        .find(|l| l.starts_with("MAIL FROM:"))
        .unwrap();
    assert_eq!(
        mail_from,
        format!("MAIL FROM:<{WORK_UPN}> SIZE={}", report.size)
    );
    assert_eq!(report.size, received.size, "the announced size is exact");
    // The session ran STARTTLS before AUTH, and said goodbye.
    let starttls = transcript.find("STARTTLS\r\n").unwrap();
    assert!(starttls < transcript.find("AUTH XOAUTH2").unwrap());
    assert!(transcript.ends_with("QUIT\r\n"));
}

#[test]
fn a_walk_up_user_may_send_from_an_alias_when_the_policy_allows_edits() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let outcome = rig.web(&[("from.edit-without-auth", "yes")]);
    assert!(
        outcome
            .settings
            .iter()
            .any(|e| e.key == "from.edit-without-auth" && e.value == "yes")
    );
    let mut msg = message();
    msg.from = Some(WORK_ALIAS.into());
    rig.send(&msg, signed_in + 10)
        .expect("an alias of the mailbox may be the sender");
    let received = &rig.world.messages()[0];
    assert_eq!(received.header("From").as_deref(), Some(WORK_ALIAS));
    assert_eq!(received.mail_from, WORK_ALIAS);
    assert!(
        bearer_of(&rig.last_transcript()).len() > 2_500,
        "Microsoft's tokens exceed 2,500 bytes"
    );
    // The two-step form: the response is the line after `AUTH XOAUTH2`.
    let transcript = rig.last_transcript();
    let mut lines = transcript.split("\r\n");
    lines.find(|l| *l == "AUTH XOAUTH2").unwrap();
    let response = lines.next().unwrap();
    let decoded = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(
        decoded.starts_with(&format!("user={WORK_UPN}\x01auth=Bearer ")),
        "XOAUTH2 signs in as the Device Email Address"
    );
}

#[test]
fn the_device_email_itself_is_not_an_edit_of_from() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.from = Some(WORK_UPN.to_ascii_uppercase());
    rig.send(&msg, signed_in + 10)
        .expect("the Device Email Address, in any case, is always allowed");
}

#[test]
fn every_precondition_is_refused_before_any_connection() {
    // Not Exchange Online.
    let rig = Rig::for_case(Case::Happy);
    let f = rig.send_err(&message(), T0);
    assert_code(&f.diagnosis, "provider-not-exchange-online");
    assert!(f.diagnosis.remedy.contains("Exchange Online/Outlook.com"));
    assert_eq!((rig.connects(), rig.http_count()), (0, 0));

    // Exchange Online selected, nobody signed in, no Device Email Address yet: what is
    // missing is the sign-in (which also fills the address), and that is what is said.
    let rig = Rig::for_case(Case::Happy);
    rig.exchange_online();
    let f = rig.send_err(&message(), T0);
    assert_code(&f.diagnosis, "sign-in-required");
    assert_eq!(f.kind, mailer::SendFailureKind::SignInRequired);
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    // With an address but no grant.
    rig.web(&[("device-email", WORK_UPN)]);
    let f = rig.send_err(&message(), T0);
    assert_code(&f.diagnosis, "sign-in-required");
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!((rig.connects(), rig.http_count()), (0, 0));

    // Signed in, but the Device Email Address cleared since: the message has no sender.
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    rig.web(&[("device-email", "")]);
    let http_before = rig.http_count();
    let f = rig.send_err(&message(), signed_in + 10);
    assert_code(&f.diagnosis, "device-email-missing");
    assert_eq!(f.kind, mailer::SendFailureKind::NotSent);
    assert_eq!((rig.connects(), rig.http_count()), (0, http_before));

    let rig = Rig::for_case(Case::Happy).with_file(1, "scan.pdf", noise(100, 1));
    let signed_in = rig.sign_in();
    let http_before = rig.http_count();
    let now = signed_in + 10;

    // No recipient.
    let mut msg = message();
    msg.to.clear();
    assert_code(&rig.send_err(&msg, now).diagnosis, "no-recipients");

    // S7: a walk-up user's From edit while the policy says No.
    let mut msg = message();
    msg.from = Some("ceo@contoso.com".into());
    let f = rig.send_err(&msg, now);
    assert_code(&f.diagnosis, "from-edit-not-allowed");
    assert!(f.diagnosis.message.contains(WORK_UPN));
    assert!(f.diagnosis.remedy.contains("SendAsDenied"));

    // A missing attachment.
    let mut msg = message();
    msg.attachments = vec![1, 9];
    assert_code(&rig.send_err(&msg, now).diagnosis, "attachment-unreadable");

    // A recipient that would inject a command is refused while writing the message.
    let mut msg = message();
    msg.to = vec!["alice@fabrikam.com>\r\nRCPT TO:<eve@evil.test".into()];
    assert_code(&rig.send_err(&msg, now).diagnosis, "mime-invalid-address");

    // S6: the control panel sets Remotely Authenticated User back.
    let outcome = rig.apply(
        Origin::ControlPanel,
        &[("login-credentials", "remotely-authenticated-user")],
    );
    assert!(
        outcome
            .notices
            .iter()
            .any(|n| n.code == "login-credentials-not-system")
    );
    let f = rig.send_err(&message(), now);
    assert_code(&f.diagnosis, "login-credentials-not-system");
    assert!(f.diagnosis.message.contains("Authentication error"));
    assert!(f.diagnosis.remedy.contains("[System]"));

    assert_eq!(rig.connects(), 0, "nothing was refused by connecting first");
    assert_eq!(rig.http_count(), http_before, "nor by fetching a token");
    assert_eq!(rig.files.reads.get(), 0);
    assert!(rig.world.messages().is_empty());

    // Back to System: sending works again.
    rig.web(&[("login-credentials", "system")]);
    rig.send(&message(), now).expect("sent");
}

#[test]
fn each_exchange_refusal_maps_to_its_diagnosis() {
    let cases: [(SmtpCase, &str, &str, &str); 6] = [
        (
            SmtpCase::AuthDisabledForTenant,
            "smtp-auth-disabled-for-tenant",
            "535 5.7.139",
            "Set-TransportConfig",
        ),
        (
            SmtpCase::AuthDisabledForMailbox,
            "smtp-auth-disabled-for-mailbox",
            "535 5.7.139",
            "Authenticated SMTP",
        ),
        (
            SmtpCase::SecurityDefaults,
            "smtp-auth-blocked-by-security-defaults",
            "535 5.7.139",
            "security defaults",
        ),
        (
            SmtpCase::ConcurrentLimit,
            "smtp-concurrent-connections",
            "432 4.3.2",
            "Wait and try again",
        ),
        (
            SmtpCase::SubmissionQuota,
            "smtp-sending-quota-exceeded",
            "554 5.2.0",
            "30 messages a minute",
        ),
        (
            SmtpCase::ErrorChallenge,
            "smtp-auth-unsuccessful",
            "535 5.7.3",
            "Sign in again",
        ),
    ];
    for (case, code, reply, remedy) in cases {
        let rig = Rig::for_case(Case::Smtp(case)).with_file(1, "scan.pdf", noise(5_000, 3));
        let signed_in = rig.sign_in();
        let mut msg = message();
        msg.attachments = vec![1];
        let f = rig.send_err(&msg, signed_in + 10);
        assert_code(&f.diagnosis, code);
        assert!(
            f.server_reply
                .as_deref()
                .is_some_and(|r| r.starts_with(reply)),
            "{case:?}: {f:?}"
        );
        assert!(
            f.diagnosis.message.contains(reply),
            "{case:?}: the server's words are quoted: {f:?}"
        );
        assert!(f.diagnosis.remedy.contains(remedy), "{case:?}: {f:?}");
        assert!(rig.world.messages().is_empty(), "{case:?}");
        assert_eq!(rig.world.open_sessions(WORK_UPN), 0, "{case:?}");
        let transcript = rig.last_transcript();
        assert!(
            transcript.ends_with("QUIT\r\n"),
            "{case:?}: a polite QUIT: {:?}",
            &transcript[transcript.len().saturating_sub(40)..]
        );
        let at_auth = !matches!(case, SmtpCase::SubmissionQuota);
        assert_eq!(
            rig.files.reads.get() == 0,
            at_auth,
            "{case:?}: the scan is read only once the server wants it"
        );
        match case {
            SmtpCase::ConcurrentLimit => assert_eq!(f.retry_after, Some(30)),
            _ => assert_eq!(f.retry_after, None, "{case:?}"),
        }
        if case == SmtpCase::ErrorChallenge {
            // The 334 error challenge is answered with an empty line, then 535 follows.
            // `AUTH XOAUTH2`, the response after the 334 prompt, then the empty line.
            let auth = transcript.find("AUTH XOAUTH2\r\n").unwrap();
            let after = &transcript[auth + "AUTH XOAUTH2\r\n".len()..];
            let first_end = after.find("\r\n").unwrap();
            assert!(
                after[first_end + 2..].starts_with("\r\n"),
                "an empty line answers the challenge"
            );
        }
    }
}

#[test]
fn concurrent_connection_limits_are_retried_with_backoff_until_attempts_run_out() {
    let rig = Rig::for_case(Case::Smtp(SmtpCase::ConcurrentLimit));
    let signed_in = rig.sign_in();
    let mut retries = Vec::new();
    for attempt in 1..=diagnose::MAX_SEND_ATTEMPTS {
        let mut msg = message();
        msg.attempt = attempt;
        let f = rig.send_err(&msg, signed_in + 10 * u64::from(attempt));
        assert_code(&f.diagnosis, "smtp-concurrent-connections");
        retries.push(f.retry_after);
    }
    assert_eq!(
        retries,
        [Some(30), Some(60), None],
        "the last attempt is not retried"
    );
}

#[test]
fn three_sessions_of_the_account_elsewhere_make_the_device_wait() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let token = rig.grant().unwrap().access_token.expose().to_owned();
    let now = Duration::from_secs(signed_in + 5);
    // Three other clients of the same mailbox hold its three connections.
    let blob = STANDARD.encode(format!("user={WORK_UPN}\x01auth=Bearer {token}\x01\x01"));
    let mut others: Vec<SmtpSession> = (0..3)
        .map(|_| {
            let mut s = SmtpSession::new(rig.world.clone(), "192.0.2.20", now);
            s.feed(b"EHLO other\r\n", now);
            assert!(s.feed(b"STARTTLS\r\n", now).start_tls);
            s.feed(b"EHLO other\r\n", now);
            assert!(s.feed(b"AUTH XOAUTH2\r\n", now).reply.starts_with(b"334"));
            let out = s.feed(format!("{blob}\r\n").as_bytes(), now);
            assert!(
                out.reply.starts_with(b"235"),
                "{}",
                String::from_utf8_lossy(&out.reply)
            );
            s
        })
        .collect();
    let f = rig.send_err(&message(), signed_in + 10);
    assert_code(&f.diagnosis, "smtp-concurrent-connections");
    assert_eq!(f.retry_after, Some(30));
    others.pop();
    rig.send(&message(), signed_in + 40)
        .expect("a slot is free again");
}

#[test]
fn more_than_the_per_minute_limit_is_a_quota_refusal_until_the_minute_passes() {
    let rig = Rig::for_case(Case::Happy);
    rig.world.update_settings(|s| s.messages_per_minute = 2);
    let signed_in = rig.sign_in();
    rig.send(&message(), signed_in + 1).unwrap();
    rig.send(&message(), signed_in + 2).unwrap();
    let f = rig.send_err(&message(), signed_in + 3);
    assert_code(&f.diagnosis, "smtp-sending-quota-exceeded");
    rig.send(&message(), signed_in + 62)
        .expect("a minute later");
    assert_eq!(rig.world.messages().len(), 3);
}

#[test]
fn send_as_denied_after_data_in_either_wording_points_at_the_from_address_policy() {
    for wording in [SendAsReply::Current, SendAsReply::Legacy] {
        let rig = Rig::new(Scenario {
            send_as_reply: wording,
            ..Case::Happy.scenario()
        });
        let signed_in = rig.sign_in();
        rig.web(&[("from.edit-without-auth", "yes")]);
        // The envelope sender reaches Exchange as the account's, so only the From header
        // is left to refuse, after DATA (as Exchange does when the two differ).
        *rig.smtp.rewrite_mail_from.borrow_mut() =
            Some(("ceo@contoso.com".into(), WORK_UPN.into()));
        let mut msg = message();
        msg.from = Some("ceo@contoso.com".into());
        let f = rig.send_err(&msg, signed_in + 10);
        assert_code(&f.diagnosis, "smtp-send-as-denied");
        let reply = f.server_reply.clone().unwrap();
        match wording {
            SendAsReply::Current => {
                assert!(reply.starts_with("554 5.2.252 SendAsDenied"), "{reply}")
            }
            SendAsReply::Legacy => assert!(
                reply.starts_with("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException"),
                "{reply}"
            ),
        }
        assert!(
            f.diagnosis.remedy.contains(diagnose::FROM_ADDRESS_PAGE),
            "{:?}",
            f.diagnosis
        );
        assert!(
            f.diagnosis
                .remedy
                .contains("[Edit [From:] Field when Authorization is not Required] to [No]")
        );
        assert!(
            f.diagnosis
                .remedy
                .contains("[Sender is an alias or proxy address of the signed-in account]")
        );
        assert!(
            f.diagnosis
                .remedy
                .command_line()
                .contains("`from.alias-sender` to `yes`"),
            "{}",
            f.diagnosis.remedy.command_line()
        );
        assert_eq!(f.retry_after, None);
        assert!(rig.world.messages().is_empty());
    }
}

#[test]
fn a_from_the_account_may_not_send_as_is_refused_at_mail_from() {
    let rig = Rig::for_case(Case::Happy).with_file(1, "scan.pdf", noise(2_000, 5));
    let signed_in = rig.sign_in();
    let outcome = rig.web(&[("from.edit-without-auth", "yes")]);
    assert!(
        outcome.notices.is_empty()
            || outcome
                .notices
                .iter()
                .all(|n| n.severity != Severity::Error)
    );
    assert!(
        panel::diagnostics(&rig.store)
            .unwrap()
            .iter()
            .any(|d| d.code == "send-as-denied-risk"),
        "S7 warns ahead"
    );
    let mut msg = message();
    msg.from = Some("ceo@contoso.com".into());
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-send-as-denied");
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("550 5.7.60")),
        "{f:?}"
    );
    assert!(f.diagnosis.remedy.contains(diagnose::FROM_ADDRESS_PAGE));
    assert!(
        f.diagnosis.remedy.contains(WORK_UPN),
        "names the Device Email Address to send as"
    );
    assert_eq!(rig.files.reads.get(), 0);
    assert!(rig.world.messages().is_empty());
}

#[test]
fn a_message_over_the_servers_limit_is_refused_without_reading_the_scan() {
    // Over the limit Exchange enforces (35 MB by default; 100 KB here): SIZE= is refused.
    let rig = Rig::for_case(Case::Happy).with_file(1, "big.pdf", noise(300 * 1024, 9));
    rig.world
        .update_settings(|s| s.max_message_size = 100 * 1024);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-message-too-large");
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("552 5.3.4")),
        "{f:?}"
    );
    assert!(f.diagnosis.remedy.contains("35 MB"));
    assert_eq!(rig.files.reads.get(), 0);

    // Over the SIZE the server advertises (150 MB): refused before the sign-in.
    let rig = Rig::for_case(Case::Happy).with_virtual_file(1, "huge.tif", 200 * 1024 * 1024);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-message-too-large");
    assert_eq!(f.server_reply, None);
    assert!(
        !rig.last_transcript().contains("AUTH"),
        "no sign-in for a message that cannot be sent"
    );
}

#[test]
fn smtp_goes_only_to_the_exchange_server() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    // The stored settings name another server (as a corrupted or migrated record might).
    let mut settings = rig.settings();
    settings.smtp_server = "mail.example.com".into();
    rig.store
        .commit(vec![storage::settings_write(&settings)])
        .unwrap();
    let f = rig.send_err(&message(), signed_in + 10);
    assert_code(&f.diagnosis, "network-denied");
    assert!(f.diagnosis.message.contains("mail.example.com:587"));
}

#[test]
fn each_failure_says_what_the_caller_does_about_it() {
    use crate::mailer::SendFailureKind;
    // A precondition (no recipient): change the message, nothing was sent; the panel
    // shows it at the To field.
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let mut no_recipient = message();
    no_recipient.to.clear();
    let err = rig.send_err(&no_recipient, signed_in + 1);
    assert_eq!(
        (err.kind, err.retry_after),
        (SendFailureKind::NotSent, None)
    );
    assert_eq!(err.diagnosis.field, Some("to"));
    assert_eq!(rig.connects(), 0);

    // Signed out since: sign in again, nothing was sent anywhere.
    crate::oauth::sign_out(&rig.store).unwrap();
    let err = rig.send_err(&message(), signed_in + 2);
    assert_eq!(
        (err.kind, err.retry_after),
        (SendFailureKind::SignInRequired, None)
    );
    assert_eq!(rig.connects(), 0);

    // A server's permanent refusal: failed, with its reply, never retried.
    let rig = Rig::for_case(Case::Smtp(SmtpCase::AuthDisabledForMailbox));
    let signed_in = rig.sign_in();
    let err = rig.send_err(&message(), signed_in + 1);
    assert_eq!((err.kind, err.retry_after), (SendFailureKind::Failed, None));
    assert!(err.server_reply.is_some(), "{err:?}");
}

#[test]
fn the_host_destination_record_follows_the_settings_and_is_restored_before_connecting() {
    let rig = Rig::for_case(Case::Happy);
    rig.exchange_online();
    assert_eq!(
        rig.store
            .get(storage::SMTP_DESTINATION_KEY)
            .unwrap()
            .as_deref(),
        Some(&b"smtp.office365.com:587"[..]),
        "written in the Apply's commit"
    );
    // A state written before the record existed: the send writes it before connecting.
    let signed_in = rig.sign_in();
    rig.store
        .commit(vec![(storage::SMTP_DESTINATION_KEY.to_owned(), None)])
        .unwrap();
    rig.send(&message(), signed_in + 1).expect("sent");
    assert_eq!(
        rig.store
            .get(storage::SMTP_DESTINATION_KEY)
            .unwrap()
            .as_deref(),
        Some(&b"smtp.office365.com:587"[..])
    );
}
