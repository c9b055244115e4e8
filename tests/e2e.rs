//! End to end through wasmtime and real TLS: the component signs in against the fake
//! Microsoft identity platform (HTTPS, test CA, `--resolve` to loopback) and sends through
//! the fake Exchange Online (STARTTLS, AUTH XOAUTH2 checked against the tokens it issued).
//! Time is driven by hand: the test passes `now` to the component and moves the fakes'
//! clock, so intervals are checked exactly without sleeping.
//!
//! The stand-ins' scenario catalogue ([`mfp_fakes::catalogue`]) is one table-driven test:
//! every named case, run against a fresh device, must end as the catalogue says, and all
//! cases that do not are reported together. The tests after it check what a table entry
//! cannot: exact polling times, a streamed scan's bytes, token storage, overrides.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod microsoft;
use microsoft::{Microsoft, message, send_failure};

use mfp_component_tests::{Origin, owned, value_of};
use mfp_fakes::{
    Aadsts, Approval, Case, Run, Scenario, ScenarioCase, SendAsReply, SlowDown, SmtpCase, World,
};
use mfp_host::bindings::mailer::{SendError, SendReport};
use mfp_host::bindings::signin::{AuthState, PollStatus, SignedInState};
use mfp_host::bindings::types::Diagnostic;
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::capabilities::net::SigninOverrides;
use mfp_host::device::{Device, DeviceError};
use mfp_smtp_oauth::remedy::{command_line_words, web_panel_words};
use sha2::{Digest, Sha256};

// --- The scenario catalogue -----------------------------------------------------------

#[test]
fn every_catalogue_case_ends_as_the_catalogue_says() {
    let entries = mfp_fakes::catalogue();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    // Each entry has its own fakes and state dir, so they run side by side.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(entry) = entries.get(i) else { break };
                    let problems = catch_unwind(AssertUnwindSafe(|| check_entry(entry)))
                        .unwrap_or_else(|panic| vec![format!("panicked: {}", panic_text(&panic))]);
                    if !problems.is_empty() {
                        failures.lock().unwrap_or_else(|p| p.into_inner()).push((
                            i,
                            entry.name(),
                            problems,
                        ));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort();
    let report: String = failures
        .iter()
        .map(|(_, name, problems)| format!("\n- {name}:\n    {}", problems.join("\n    ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} catalogue cases did not end as mfp_fakes::catalogue() says:{report}",
        failures.len(),
        entries.len()
    );
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

/// How a run ended: signed in, sent, or a diagnosis (with the server's reply, if one
/// answered, and whether the device would retry).
enum Ending {
    SignedIn,
    Sent(SendReport),
    Failed(Failure),
}

struct Failure {
    code: String,
    message: String,
    /// The remedy in the web panel's words and in the command line's.
    remedy: String,
    command_line_remedy: String,
    server_reply: Option<String>,
    retried: bool,
    /// The device asks for a sign-in (the send's `sign-in-required` case).
    sign_in_required: bool,
}

impl Failure {
    fn of_diagnosis(d: &Diagnostic) -> Self {
        Self {
            code: d.code.clone(),
            message: d.message.clone(),
            remedy: d.remedy.web_panel.clone(),
            command_line_remedy: d.remedy.command_line.clone(),
            server_reply: None,
            retried: false,
            sign_in_required: false,
        }
    }

    fn of_send(err: &SendError) -> Self {
        Self {
            server_reply: err.server_reply().map(str::to_owned),
            retried: matches!(err, SendError::RetryLater(_)),
            sign_in_required: matches!(err, SendError::SignInRequired(_)),
            ..Self::of_diagnosis(err.diagnosis())
        }
    }

    /// A device error as a failure; errors no run should meet (a trap, storage) keep
    /// their own code, marked, so the report names them.
    fn of_device(err: DeviceError) -> Self {
        match &err {
            DeviceError::SigninFailed(e) => Self::of_diagnosis(e.diagnosis()),
            DeviceError::SendFailed(e) => Self::of_send(e),
            other => {
                let (code, message, remedy) = other.diagnosis();
                Self {
                    code: format!("(device error) {code}"),
                    message,
                    remedy: remedy.web_panel,
                    command_line_remedy: remedy.command_line,
                    server_reply: None,
                    retried: false,
                    sign_in_required: false,
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} — {} [remedy: {}] [server: {}]",
            self.code,
            self.message,
            self.remedy,
            self.server_reply.as_deref().unwrap_or("none")
        )
    }
}

/// Runs `entry` against a fresh device and fresh fakes; what did not go as the catalogue
/// says, one line each (empty: as expected).
fn check_entry(entry: &ScenarioCase) -> Vec<String> {
    let ms = Microsoft::with_world(World::for_case(entry.case));
    let dir = tempfile::tempdir().expect("temp dir");
    let device = exchange_device(&ms, dir.path());
    let mut problems = Vec::new();

    let signed_in = sign_in_to_the_end(&ms, &device);
    if let Ok(state) = &signed_in {
        let mut warnings: Vec<&str> = state.warnings.iter().map(|w| w.code.as_str()).collect();
        warnings.sort_unstable();
        let mut expected = entry.warnings.to_vec();
        expected.sort_unstable();
        if warnings != expected {
            problems.push(format!(
                "warnings after sign-in: expected {expected:?}, got {warnings:?}"
            ));
        }
    }
    let ending = match (entry.run, signed_in) {
        (Run::SignIn, Ok(_)) => Ending::SignedIn,
        (Run::SignIn, Err(failure)) => Ending::Failed(failure),
        (_, Err(failure)) => {
            problems.push(format!(
                "the sign-in before the send failed: {}",
                failure.describe()
            ));
            return problems;
        }
        (Run::Send, Ok(_)) => send_as(&device, None, ms.now()),
        (Run::SendFrom(from), Ok(_)) => {
            // S7: let a walk-up user edit From, so the message reaches Exchange's check.
            device
                .apply(
                    Origin::WebPanel,
                    &owned(&[("from.edit-without-auth", "yes")]),
                )
                .expect("From editing allowed");
            send_as(&device, Some(from), ms.now())
        }
        (Run::RefreshThenSend, Ok(state)) => {
            let at = state.access_token_expires_at - 300;
            ms.clock.store(at, Ordering::SeqCst);
            send_as(&device, None, at)
        }
    };

    match (entry.code, ending) {
        (None, Ending::SignedIn) => {}
        (None, Ending::Sent(report)) => check_delivery(&ms, &report, &mut problems),
        (None, Ending::Failed(failure)) => {
            problems.push(format!("expected success, got {}", failure.describe()))
        }
        (Some(code), Ending::SignedIn | Ending::Sent(_)) => {
            problems.push(format!("expected the diagnosis {code}, but it succeeded"))
        }
        (Some(code), Ending::Failed(failure)) => {
            check_failure(entry, code, &failure, &mut problems);
            check_aftermath(entry, &ms, &device, &mut problems);
        }
    }
    problems
}

/// A device with Exchange Online selected (not signed in) against `ms`.
fn exchange_device(ms: &Microsoft, dir: &std::path::Path) -> Device {
    let device = ms.device(dir);
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();
    device
}

/// Starts a sign-in and polls at the pace the device asks for (moving the fakes' clock
/// there) until it ends; a code that waits for the approval page is approved at once.
fn sign_in_to_the_end(ms: &Microsoft, device: &Device) -> Result<SignedInState, Failure> {
    let code = device.signin_start(ms.now()).map_err(Failure::of_device)?;
    if ms.world.scenario().approval == Approval::Manual {
        ms.world
            .approve(&code.user_code, Duration::from_secs(ms.now()))
            .expect("the code the device shows is the fake's");
    }
    let mut at = ms.advance(u64::from(code.interval));
    // Enough for a code that can only expire: 900 s at intervals growing by 5 s.
    for _ in 0..100 {
        match device.signin_poll(at).map_err(Failure::of_device)? {
            PollStatus::Pending(next) => {
                at = next.max(at + 1);
                ms.clock.store(at, Ordering::SeqCst);
            }
            PollStatus::PendingUnreachable(poll) => {
                return Err(Failure::of_diagnosis(&poll.diagnosis));
            }
            PollStatus::Failed(diagnosis) => return Err(Failure::of_diagnosis(&diagnosis)),
            PollStatus::SignedIn(_) => {
                return match device.signin_status(at).map_err(Failure::of_device)? {
                    AuthState::SignedIn(state) => Ok(state),
                    other => panic!("signed in, but the status says {other:?}"),
                };
            }
        }
    }
    panic!("the sign-in never ended")
}

/// Sends the test message to the catalogue's recipient, from `from` if given, at `now`.
fn send_as(device: &Device, from: Option<&str>, now: u64) -> Ending {
    let mut msg = message(mfp_fakes::scenario::RECIPIENT, vec![]);
    msg.from = from.map(str::to_owned);
    match device.send(&msg, AttachmentSet::default(), now) {
        Ok(report) => Ending::Sent(report),
        Err(err) => Ending::Failed(Failure::of_device(err)),
    }
}

/// A successful send: accepted, in the mailbox once, authenticated as the account and
/// readable there as sent.
fn check_delivery(ms: &Microsoft, report: &SendReport, problems: &mut Vec<String>) {
    let sent = message(mfp_fakes::scenario::RECIPIENT, vec![]);
    if report.accepted != sent.to || !report.server_reply.starts_with("250") {
        problems.push(format!(
            "accepted {:?} with {:?}",
            report.accepted, report.server_reply
        ));
    }
    let received = ms.world.messages();
    let [m] = received.as_slice() else {
        problems.push(format!("{} messages in the mailbox, not 1", received.len()));
        return;
    };
    let upn = &ms.world.accounts()[0].upn;
    if &m.account != upn {
        problems.push(format!(
            "authenticated as {}, not the account {upn}",
            m.account
        ));
    }
    let decoded = m.decoded();
    if decoded.subject != sent.subject || decoded.to != sent.to || decoded.from != m.mail_from {
        problems.push(format!(
            "received as {:?} to {:?} from {:?} (envelope {})",
            decoded.subject, decoded.to, decoded.from, m.mail_from
        ));
    }
}

/// A failure: its code, Microsoft's words quoted, the message and remedy, the retry.
fn check_failure(entry: &ScenarioCase, code: &str, failure: &Failure, problems: &mut Vec<String>) {
    if failure.code != code {
        problems.push(format!("expected {code}, got {}", failure.describe()));
        return;
    }
    let smtp = matches!(entry.run, Run::Send | Run::SendFrom(_));
    if !smtp && failure.server_reply.is_some() {
        problems.push("a sign-in failure carries an SMTP reply: no server was reached".into());
    }
    if let Some(quote) = entry.quotes {
        match (&failure.server_reply, smtp) {
            (Some(reply), true) => {
                if !reply.starts_with(quote) {
                    problems.push(format!("server reply {reply:?} does not start {quote:?}"));
                }
                if !failure.message.contains(reply.trim()) {
                    problems.push(format!(
                        "the message does not quote {reply:?}: {}",
                        failure.message
                    ));
                }
            }
            (None, true) => problems.push(format!("no server reply carried (wanted {quote:?})")),
            (_, false) => {
                if !failure.message.contains(quote) {
                    problems.push(format!(
                        "the message does not quote {quote:?}: {}",
                        failure.message
                    ));
                }
            }
        }
    }
    for words in entry.says {
        if !failure.message.contains(words) {
            problems.push(format!(
                "the message does not say {words:?}: {}",
                failure.message
            ));
        }
    }
    if failure.remedy.is_empty() || failure.command_line_remedy.is_empty() {
        problems.push("no remedy".into());
    }
    // Each surface gets the remedy in its own words: no button or page at the terminal,
    // no command or setting key on the web panel.
    if let Some(words) = web_panel_words(&failure.command_line_remedy) {
        problems.push(format!(
            "the command line's remedy says {words:?}: {}",
            failure.command_line_remedy
        ));
    }
    if let Some(words) = command_line_words(&failure.remedy) {
        problems.push(format!(
            "the web panel's remedy says {words:?}: {}",
            failure.remedy
        ));
    }
    for words in entry.remedy {
        if !failure.remedy.contains(words) {
            problems.push(format!(
                "the remedy does not say {words:?}: {}",
                failure.remedy
            ));
        }
    }
    if failure.retried != entry.retried {
        problems.push(format!(
            "retried: expected {}, got {}",
            entry.retried, failure.retried
        ));
    }
}

/// What a failure leaves: nothing delivered; after a refused sign-in or refresh, no
/// account, no Device Email Address from it, and the next send asks for a sign-in.
fn check_aftermath(
    entry: &ScenarioCase,
    ms: &Microsoft,
    device: &Device,
    problems: &mut Vec<String>,
) {
    if !ms.world.messages().is_empty() {
        problems.push("a message was delivered".into());
    }
    let has_account = |device: &Device| match device.signin_status(ms.now()) {
        Ok(AuthState::SignedIn(_)) => true,
        Ok(AuthState::InProgress(p)) => p.still_signed_in.is_some(),
        Ok(AuthState::SignInFailed(f)) => f.still_signed_in.is_some(),
        Ok(AuthState::SignedOut) | Err(_) => false,
    };
    match entry.run {
        Run::SignIn => {
            if has_account(device) {
                problems.push("an account is signed in after the refusal".into());
            }
            let email = value_of(device, "device-email");
            if !email.is_empty() {
                problems.push(format!("the Device Email Address became {email:?}"));
            }
        }
        Run::RefreshThenSend => {
            if has_account(device) {
                problems.push("the refused grant was kept".into());
            }
            match send_as(device, None, ms.now()) {
                Ending::Failed(again) if again.sign_in_required => {}
                Ending::Failed(again) => problems.push(format!(
                    "the next send does not ask for a sign-in: {}",
                    again.describe()
                )),
                _ => problems.push("the next send went out without a grant".into()),
            }
        }
        Run::Send | Run::SendFrom(_) => {}
    }
}

// --- Sign-in ---------------------------------------------------------------------------

#[test]
fn sign_in_polls_exactly_at_the_interval_and_sets_the_device_email_address() {
    let ms = Microsoft::start(Scenario {
        approval: Approval::Manual,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path());

    let code = device.signin_start(ms.now()).unwrap();
    assert_eq!(
        code.verification_uri,
        ms.world.settings().verification_uri,
        "the server's URI, never a hard-coded one"
    );
    assert_eq!(code.interval, 5);
    // Too early: no request, told to come back at exactly start + interval.
    assert_eq!(
        device.signin_poll(ms.now()).unwrap(),
        PollStatus::Pending(ms.now() + 5)
    );
    let at = ms.advance(5);
    assert_eq!(device.signin_poll(at).unwrap(), PollStatus::Pending(at + 5));
    assert!(matches!(
        device.signin_status(at).unwrap(),
        AuthState::InProgress(_)
    ));

    ms.world
        .approve(&code.user_code, Duration::from_secs(at))
        .unwrap();
    let at = ms.advance(5);
    let PollStatus::SignedIn(account) = device.signin_poll(at).unwrap() else {
        panic!("not signed in")
    };
    assert_eq!(account.upn, "mfp@contoso.com");
    assert!(!account.personal);
    assert_eq!(
        value_of(&device, "device-email"),
        "mfp@contoso.com",
        "S9: the account's address becomes the Device Email Address"
    );
    assert!(matches!(
        device.signin_status(at).unwrap(),
        AuthState::SignedIn(_)
    ));
}

#[test]
fn slow_down_adds_exactly_five_seconds_for_good() {
    let ms = Microsoft::start(Scenario {
        slow_down: SlowDown::Once,
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path());
    let code = device.signin_start(ms.now()).unwrap();
    assert_eq!(code.interval, 5);
    let at = ms.advance(5);
    assert_eq!(
        device.signin_poll(at).unwrap(),
        PollStatus::Pending(at + 10),
        "slow_down: 5 s + 5 s"
    );
    let AuthState::InProgress(shown) = device.signin_status(at).unwrap() else {
        panic!("in progress")
    };
    assert_eq!(shown.device_code.interval, 10);
    // One second early: no request (the fake would answer slow_down again and grow the
    // interval to 15, so the poll at +10 below would not sign in).
    let early = ms.advance(9);
    assert_eq!(
        device.signin_poll(early).unwrap(),
        PollStatus::Pending(at + 10)
    );
    let at = ms.advance(1);
    assert!(
        matches!(device.signin_poll(at).unwrap(), PollStatus::SignedIn(_)),
        "signed in at exactly the grown interval"
    );
}

#[test]
fn consent_required_names_the_admin_consent_url_the_device_offers() {
    let ms = Microsoft::with_world(World::for_case(Case::Refused(Aadsts::ConsentRequired65001)));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path());
    let Err(failure) = sign_in_to_the_end(&ms, &device) else {
        panic!("signed in without consent")
    };
    assert_eq!(failure.code, "sign-in-consent-required");
    let consent = device.admin_consent().unwrap();
    assert!(consent.needed, "{consent:?}");
    assert!(
        consent
            .url
            .starts_with("https://login.microsoftonline.com/common/adminconsent?client_id="),
        "{}",
        consent.url
    );
    assert!(
        failure.remedy.contains(&consent.url),
        "{}",
        failure.describe()
    );
}

#[test]
fn a_personal_account_needs_no_admin_consent_and_is_named_personal() {
    let ms = Microsoft::with_world(World::for_case(Case::PersonalAccount));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("signed in")
    };
    assert!(state.account.personal, "{:?}", state.account);
    assert_eq!(state.account.tenant_id, mfp_fakes::PERSONAL_TENANT);
    let consent = device.admin_consent().unwrap();
    assert!(!consent.needed, "{consent:?}");
    assert!(consent.explanation.contains("personal"), "{consent:?}");
}

#[test]
fn the_upn_as_device_email_address_fixes_a_primary_address_refusal() {
    let ms = Microsoft::with_world(World::for_case(Case::PrimaryDiffersFromUpn));
    let account = ms.world.accounts()[0].clone();
    assert_ne!(account.upn, account.primary);
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());

    // S9: the warning names the UPN (the catalogue checks the refused send itself).
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("signed in")
    };
    assert_eq!(state.account.upn, account.upn);
    let warning = state
        .warnings
        .iter()
        .find(|w| w.code == "device-email-not-upn")
        .unwrap_or_else(|| panic!("S9 warning: {:?}", state.warnings));
    assert!(
        warning.remedy.web_panel.contains(&account.upn),
        "{warning:?}"
    );

    // The fix the remedy names.
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("device-email", account.upn.as_str())]),
        )
        .unwrap();
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("signed in")
    };
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    let report = device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    assert_eq!(report.accepted, ["alice@contoso.com"]);
    let received = ms.world.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].account, account.upn);
}

#[test]
fn the_hosts_tenant_override_applies_to_one_invocation_only() {
    // A single-tenant application refuses /common (AADSTS50194); --tenant fixes it.
    let ms = Microsoft::start(Scenario {
        failure: Some(Aadsts::SingleTenantOnCommon50194),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let plain = exchange_device(&ms, dir.path());
    let err = plain.signin_start(ms.now()).unwrap_err();
    assert!(err.to_string().contains("50194"), "{err}");
    drop(plain);

    let overridden = SigninOverrides {
        tenant: Some("contoso.onmicrosoft.com".into()),
        client_id: None,
    };
    let device = ms.device_with(dir.path(), overridden);
    let code = device.signin_start(ms.now()).unwrap();
    assert!(!code.user_code.is_empty());
    assert_eq!(
        value_of(&device, "tenant"),
        "common",
        "the stored setting is untouched"
    );

    let bad = SigninOverrides {
        tenant: None,
        client_id: Some("not-a-guid".into()),
    };
    let err = ms
        .device_with(dir.path(), bad)
        .signin_start(ms.now())
        .unwrap_err();
    assert_eq!(err.diagnosis().0, "client-id-invalid");
}

// --- Sending ---------------------------------------------------------------------------

#[test]
fn a_signed_in_device_sends_a_scan_through_starttls_and_xoauth2() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let scan: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.path().join("scan-0001.pdf");
    std::fs::write(&path, &scan).unwrap();
    let files = AttachmentSet::from_paths(&[path]).unwrap();

    let report = device
        .send(&message("alice@contoso.com", files.ids()), files, ms.now())
        .unwrap();
    assert_eq!(report.accepted, ["alice@contoso.com"]);
    assert!(
        report.server_reply.starts_with("250"),
        "{}",
        report.server_reply
    );

    let received = ms.world.messages();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(
        m.account, "mfp@contoso.com",
        "the server checked the XOAUTH2 token and its UPN"
    );
    assert_eq!(m.mail_from, "mfp@contoso.com");
    let decoded = m.decoded();
    assert_eq!(decoded.from, "mfp@contoso.com");
    assert_eq!(decoded.subject, "Scan from MFP-0042 — Übersicht");
    assert_eq!(decoded.text.trim_end(), "Scanned document attached.");
    let [attachment] = decoded.attachments.as_slice() else {
        panic!("one attachment: {decoded:?}")
    };
    assert_eq!(attachment.name, "scan-0001.pdf");
    assert_eq!(attachment.size, scan.len() as u64);
    let sha256: String = Sha256::digest(&scan)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(attachment.sha256, sha256, "the scan arrived byte for byte");
}

#[test]
fn sending_without_an_account_is_refused_before_any_connection() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.device(dir.path());
    device
        .apply(
            Origin::WebPanel,
            &owned(&[
                ("service-provider", "exchange-online"),
                ("device-email", "mfp@contoso.com"),
            ]),
        )
        .unwrap();
    let err = send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                ms.now(),
            )
            .unwrap_err(),
    );
    assert!(matches!(err, SendError::SignInRequired(_)), "{err:?}");
    assert_eq!(err.diagnosis().code, "sign-in-required");
    assert!(ms.world.messages().is_empty());
    assert_eq!(ms.world.requests("smtp"), 0, "no connection");
}

#[test]
fn the_concurrent_connections_limit_is_retried_with_backoff_then_given_up() {
    let ms = Microsoft::with_world(World::for_case(Case::Smtp(SmtpCase::ConcurrentLimit)));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    for (attempt, retry) in [(1, Some((30, 2))), (2, Some((60, 3))), (3, None)] {
        let mut msg = message("alice@contoso.com", vec![]);
        msg.attempt = attempt;
        let err = send_failure(
            device
                .send(&msg, AttachmentSet::default(), ms.now())
                .unwrap_err(),
        );
        assert_eq!(
            err.diagnosis().code,
            "smtp-concurrent-connections",
            "{err:?}"
        );
        let got = match &err {
            SendError::RetryLater(r) => Some((r.after_seconds, r.next_attempt)),
            _ => None,
        };
        assert_eq!(got, retry, "attempt {attempt}: {err:?}");
    }
    assert!(ms.world.messages().is_empty());
}

/// Exchange refuses another sender at MAIL FROM before its after-DATA SendAs check can
/// answer, so the wording that check would use (the catalogue's `legacy-send-as-reply`)
/// changes nothing here.
#[test]
fn send_as_at_mail_from_is_refused_whatever_the_after_data_wording() {
    let ms = Microsoft::start(Scenario {
        send_as_reply: SendAsReply::Legacy,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("from.edit-without-auth", "yes")]),
        )
        .unwrap();
    let Ending::Failed(failure) = send_as(&device, Some(mfp_fakes::scenario::NOT_OWNED), ms.now())
    else {
        panic!("sent as an address the account does not own")
    };
    assert_eq!(
        failure.code,
        "smtp-send-as-denied",
        "{}",
        failure.describe()
    );
    assert!(
        failure
            .server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("550 5.7.60 ")),
        "{}",
        failure.describe()
    );
    assert!(ms.world.messages().is_empty());
}

// --- Tokens ----------------------------------------------------------------------------

#[test]
fn tokens_are_refreshed_and_the_rotated_refresh_token_survives_a_restart() {
    let ms = Microsoft::start(Scenario::default());
    ms.world
        .update_settings(|s| s.single_use_refresh_tokens = true);
    let dir = tempfile::tempdir().unwrap();
    let expires = |device: &Device, now: u64| match device.signin_status(now).unwrap() {
        AuthState::SignedIn(state) => state.access_token_expires_at,
        other => panic!("not signed in: {other:?}"),
    };
    let first_expiry = {
        let device = ms.signed_in_device(dir.path());
        let first = expires(&device, ms.now());
        // Inside the 10-minute margin: the send refreshes first.
        let at = first - 300;
        ms.clock.store(at, Ordering::SeqCst);
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                at,
            )
            .unwrap();
        let second = expires(&device, at);
        assert!(second > first, "refreshed: {second} > {first}");
        second
    };

    // A restarted host: a new Device on the same state dir. The old access token and the
    // old refresh token are both dead by now (the fake, switched to single-use refresh
    // tokens, refuses a rotated one), so this send works only if the rotated one was
    // persisted.
    let device = ms.device(dir.path());
    let at = first_expiry - 60;
    ms.clock.store(at, Ordering::SeqCst);
    device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            at,
        )
        .unwrap();
    assert!(expires(&device, at) > first_expiry);
    let received = ms.world.messages();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|m| m.account == "mfp@contoso.com"));
}

#[test]
fn tokens_are_not_stored_in_plaintext() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    // The grant is stored (sending works) ...
    device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    drop(device);
    // ... but no file of the state dir holds it readably: the token set's JSON field names,
    // the id_token (a JWT: `eyJ…`) and the account's object id would all show if it did.
    let oid = ms.world.accounts()[0].oid.clone();
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for needle in [
            &b"access_token"[..],
            b"refresh_token",
            b"\"eyJ",
            oid.as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds {:?} in plaintext",
                entry.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    let key = dir.path().join("secret.key");
    assert_eq!(std::fs::read(&key).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}
