//! SMTP as the RFCs and Exchange want it (issue #8), through the real component, the
//! host's network and the Exchange fake over loopback TLS: the AUTH line length (RFC
//! 4954 §4), the stage timeouts (RFC 5321 §4.5.3.2), `421` at any point, `4xx` to RCPT,
//! QUIT, the EHLO name, folded headers, and dot-stuffing of a whole message.
//!
//! Mutation proofs (each turned a test here red, then was reverted):
//! - XOAUTH2 without the trailing `^A^A` (`src/xoauth2.rs`):
//!   `the_auth_response_goes_after_334_because_the_line_would_exceed_512_octets`
//!   (the strict fake answers `535 5.7.3`);
//! - dot-stuffing off (`src/smtp/data.rs`):
//!   `lines_starting_with_a_dot_arrive_as_written`.

mod microsoft;

use std::time::{Duration, Instant};

use mfp_fakes::exchange::SLOW_FINAL_REPLY_MS;
use mfp_fakes::{Scenario, SmtpCase};
use mfp_host::bindings::mailer::SendError;
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::capabilities::net::NetConfig;
use mfp_host::device::Device;
use microsoft::{Microsoft, message, send_failure};

/// Every RFC 5321 stage timeout divided by this in the tests that wait: the reply to the
/// final dot gets 4 s, MAIL, RCPT and the others 2 s, DATA's 354 0.8 s.
const DIVISOR: u32 = 150;
const FINAL_DOT_TIMEOUT: Duration = Duration::from_secs(4);

fn fast(ms: &Microsoft) -> NetConfig {
    NetConfig {
        smtp_timeout_divisor: DIVISOR,
        ..ms.net_config()
    }
}

fn scenario(smtp: SmtpCase) -> Scenario {
    Scenario {
        smtp,
        ..Scenario::default()
    }
}

/// Sends a one-line message to alice@contoso.com that must fail, and returns why.
fn refused_plain_send(ms: &Microsoft, device: &Device) -> SendError {
    send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                ms.now(),
            )
            .unwrap_err(),
    )
}

#[test]
fn the_auth_response_goes_after_334_because_the_line_would_exceed_512_octets() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let report = device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    assert!(
        report.server_reply.starts_with("250 2.0.0 OK"),
        "{report:?}"
    );

    let seen = ms.world.smtp_commands();
    let auth = seen.iter().position(|l| l.starts_with("AUTH")).unwrap();
    assert_eq!(seen[auth], "AUTH XOAUTH2", "{seen:#?}");
    let response = &seen[auth + 1];
    let octets: usize = response
        .strip_prefix("<XOAUTH2 response, ")
        .and_then(|r| r.strip_suffix(" octets>"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{response}"));
    assert!(octets > 2500, "a Microsoft-sized token: {octets}");
    assert!(
        seen.iter().all(|l| !l.contains("line too long")),
        "{seen:#?}"
    );
    assert_eq!(ms.world.messages()[0].account, "mfp@contoso.com");
}

#[test]
fn a_slow_final_reply_within_the_final_dot_timeout_is_delivered() {
    // 3 s: longer than any other stage's timeout (2 s), within the final dot's (4 s).
    let ms = Microsoft::start(scenario(SmtpCase::SlowFinalReply {
        millis: SLOW_FINAL_REPLY_MS,
    }));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let started = Instant::now();
    let report = device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(u64::from(SLOW_FINAL_REPLY_MS)));
    assert!(
        report.server_reply.starts_with("250 2.0.0 OK"),
        "{report:?}"
    );
}

#[test]
fn the_send_calls_deadline_grows_by_the_smtp_stage_timeouts() {
    // The call's own deadline (1 s) is shorter than the final reply (3 s); the stage
    // timeouts the send waits through extend it, so a slow server is not cut off.
    let ms = Microsoft::start(scenario(SmtpCase::SlowFinalReply {
        millis: SLOW_FINAL_REPLY_MS,
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = mfp_component_tests::options(dir.path());
    opts.net = Some(fast(&ms));
    opts.runtime.network_call_timeout = Duration::from_secs(1);
    let device = ms.sign_in(mfp_host::device::Device::open(opts).unwrap());
    let report = device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    assert!(
        report.server_reply.starts_with("250 2.0.0 OK"),
        "{report:?}"
    );
}

#[test]
fn no_final_reply_within_its_timeout_is_reported_as_maybe_delivered() {
    let ms = Microsoft::start(scenario(SmtpCase::SlowFinalReply { millis: 7_000 }));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let started = Instant::now();
    let failure = refused_plain_send(&ms, &device);
    let waited = started.elapsed();
    assert!(
        waited >= FINAL_DOT_TIMEOUT && waited < Duration::from_secs(7),
        "waited {waited:?}"
    );
    let d = &failure.diagnosis();
    assert_eq!(d.code, "smtp-final-reply-missing", "{d:#?}");
    assert!(d.message.contains("may have been delivered"), "{d:#?}");
    assert!(d.remedy.web_panel.contains("before you send it again"), "{d:#?}");
    assert!(!d.remedy.web_panel.to_lowercase().contains("try again"), "{d:#?}");
    assert_eq!(failure.retry_after(), None, "no automatic resend");
    // And indeed: the server had taken it.
    assert_eq!(ms.world.messages().len(), 1);
}

#[test]
fn a_421_after_mail_is_temporary_and_nothing_follows_it() {
    let ms = Microsoft::start(scenario(SmtpCase::ServiceUnavailableAfterMail));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let failure = refused_plain_send(&ms, &device);
    assert_eq!(
        failure.diagnosis().code,
        "smtp-service-unavailable",
        "{failure:#?}"
    );
    assert!(failure.retry_after().is_some(), "{failure:#?}");
    assert!(
        failure
            .server_reply()
            .is_some_and(|r| r.starts_with("421 4.3.2 Service not available")),
        "{failure:#?}"
    );
    // The fake keeps reading after its 421 until the device hangs up.
    std::thread::sleep(Duration::from_millis(300));
    let seen = ms.world.smtp_commands();
    assert!(seen.last().unwrap().starts_with("MAIL FROM:"), "{seen:#?}");
    assert!(
        seen.iter().all(|l| !l.starts_with("after close")),
        "{seen:#?}"
    );
}

#[test]
fn a_421_to_the_final_dot_is_temporary_not_maybe_delivered() {
    let ms = Microsoft::start(scenario(SmtpCase::ServiceUnavailableAtFinalDot));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let failure = refused_plain_send(&ms, &device);
    assert_eq!(
        failure.diagnosis().code,
        "smtp-service-unavailable",
        "{failure:#?}"
    );
    assert!(failure.retry_after().is_some());
    assert!(ms.world.messages().is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let seen = ms.world.smtp_commands();
    assert!(
        seen.iter().all(|l| !l.starts_with("after close")),
        "{seen:#?}"
    );
}

#[test]
fn a_4xx_to_rcpt_is_temporary_and_carries_the_servers_reply() {
    // Exchange takes 500 recipients per message; the 501st gets `452 4.5.3`.
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let mut many = message("alice@contoso.com", vec![]);
    many.to = (0..501).map(|i| format!("r{i}@fabrikam.com")).collect();
    let failure = send_failure(
        device
            .send(&many, AttachmentSet::default(), ms.now())
            .unwrap_err(),
    );
    assert_eq!(
        failure.server_reply(),
        Some("452 4.5.3 Too many recipients"),
        "{failure:#?}"
    );
    assert!(failure.retry_after().is_some(), "{failure:#?}");
    assert_ne!(
        failure.diagnosis().code,
        "smtp-recipients-refused",
        "{failure:#?}"
    );
    assert!(ms.world.messages().is_empty());
}

#[test]
fn a_failed_quit_after_the_250_leaves_the_message_delivered() {
    let ms = Microsoft::start(scenario(SmtpCase::QuitUnanswered));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let report = device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    assert!(report.server_reply.starts_with("250"), "{report:?}");
    assert_eq!(ms.world.messages().len(), 1);
    assert_eq!(
        ms.world.smtp_commands().last().map(String::as_str),
        Some("QUIT")
    );
}

#[test]
fn a_refusal_stands_when_the_server_hangs_up_before_quit() {
    // Exchange refuses the message after DATA and drops the connection at once: the
    // device's QUIT then meets a closed connection, and the refusal is still what it reports.
    let ms = Microsoft::start(scenario(SmtpCase::MailboxFull));
    ms.world.update_settings(|s| s.hang_up_after_refusal = true);
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device_on(dir.path(), fast(&ms));
    let failure = refused_plain_send(&ms, &device);
    assert_eq!(
        failure.diagnosis().code,
        "smtp-mailbox-full",
        "{failure:#?}"
    );
    assert!(
        failure
            .server_reply()
            .is_some_and(|r| r.starts_with("554 5.2.2")),
        "{failure:#?}"
    );
    assert_eq!(failure.retry_after(), None, "{failure:#?}");
}

#[test]
fn the_ehlo_name_is_the_hosts() {
    let ms = Microsoft::start(Scenario::default());
    let cases = [
        (
            Some("mfp-0042.printers.contoso.com"),
            "mfp-0042.printers.contoso.com",
        ),
        // Not a domain: the address literal of the device's end of the connection.
        (Some("Drucker im Flur"), "[127.0.0.1]"),
    ];
    for (configured, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let net = NetConfig {
            ehlo_name: configured.map(str::to_owned),
            ..ms.net_config()
        };
        let device = ms.signed_in_device_on(dir.path(), net);
        let before = ms.world.smtp_commands().len();
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                ms.now(),
            )
            .unwrap();
        let seen = ms.world.smtp_commands();
        let ehlo: Vec<&String> = seen[before..]
            .iter()
            .filter(|l| l.starts_with("EHLO"))
            .collect();
        assert_eq!(
            ehlo,
            [&format!("EHLO {expected}"), &format!("EHLO {expected}")]
        );
    }
    // Unconfigured: the system's host name, when it is a domain.
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let before = ms.world.smtp_commands().len();
    device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    let system = mfp_host::capabilities::net::system_host_name().unwrap_or_default();
    let seen = ms.world.smtp_commands();
    let ehlo = seen[before..]
        .iter()
        .find(|l| l.starts_with("EHLO"))
        .unwrap();
    assert!(
        ehlo == &format!("EHLO {system}") || ehlo == "EHLO [127.0.0.1]",
        "{ehlo} (system host name {system:?})"
    );
    assert_ne!(ehlo, "EHLO mfp-smtp-oauth.local");
}

#[test]
fn a_subject_ending_in_spaces_folds_without_whitespace_only_lines() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let subjects = [
        "Scan ".to_owned(),
        format!("{}{}", "Quarterly report ".repeat(4), " ".repeat(30)),
    ];
    for subject in subjects {
        let mut m = message("alice@contoso.com", vec![]);
        m.subject = subject.clone();
        device.send(&m, AttachmentSet::default(), ms.now()).unwrap();
        let received = ms.world.messages().pop().unwrap();
        let raw = String::from_utf8(received.raw.unwrap()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(!line.trim().is_empty(), "{subject:?}: {line:?} in\n{head}");
        }
        assert!(head.contains("Subject: =?UTF-8?B?"), "{head}");
    }
}

#[test]
fn lines_starting_with_a_dot_arrive_as_written() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let mut m = message("alice@contoso.com", vec![]);
    m.body = "first\n.\n..two dots\n.hidden\nlast".into();
    let report = device.send(&m, AttachmentSet::default(), ms.now()).unwrap();
    assert!(report.server_reply.starts_with("250"), "{report:?}");
    let received = ms.world.messages().pop().unwrap();
    let raw = String::from_utf8(received.raw.unwrap()).unwrap();
    assert!(
        raw.contains("first\r\n.\r\n..two dots\r\n.hidden\r\nlast"),
        "{raw}"
    );
    let seen = ms.world.smtp_commands();
    assert!(
        seen.iter()
            .all(|l| !l.starts_with("..") && !l.starts_with(".hidden")),
        "no line of the message was taken for a command: {seen:#?}"
    );
}
