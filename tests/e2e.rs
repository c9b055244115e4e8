//! End to end through wasmtime and real TLS: the component signs in against the fake
//! Microsoft identity platform (HTTPS, test CA, `--resolve` to loopback) and sends through
//! the fake Exchange Online (STARTTLS, AUTH XOAUTH2 checked against the tokens it issued).
//! Time is driven by hand: the test passes `now` to the component and moves the fakes'
//! clock, so intervals are checked exactly without sleeping.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use mfp_component_tests::{Origin, options, owned};
use mfp_fakes::net::{ServerHandle, TestCa, spawn_exchange_on, spawn_identity_on};
use mfp_fakes::{Aadsts, Approval, Scenario, SmtpCase, World};
use mfp_host::attachments::AttachmentSet;
use mfp_host::bindings::mailer::OutgoingMessage;
use mfp_host::bindings::signin::{AuthState, PollStatus};
use mfp_host::device::{Device, DeviceError};
use mfp_host::net::{NetConfig, ResolveRule};

/// The two fakes on loopback, sharing one world and one hand-driven clock.
struct Microsoft {
    world: World,
    clock: Arc<AtomicU64>,
    ca: TestCa,
    identity: ServerHandle,
    exchange: ServerHandle,
}

impl Microsoft {
    fn start(scenario: Scenario) -> Self {
        let world = World::new(scenario);
        let clock = Arc::new(AtomicU64::new(1_900_000_000));
        let read = clock.clone();
        let fake_clock: mfp_fakes::net::Clock =
            Arc::new(move || Duration::from_secs(read.load(Ordering::SeqCst)));
        let ca = TestCa::generate().unwrap();
        let identity = spawn_identity_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            world.clone(),
            &ca,
            fake_clock.clone(),
        )
        .unwrap();
        let exchange = spawn_exchange_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            world.clone(),
            &ca,
            fake_clock,
        )
        .unwrap();
        Self {
            world,
            clock,
            ca,
            identity,
            exchange,
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn advance(&self, seconds: u64) -> u64 {
        self.clock.fetch_add(seconds, Ordering::SeqCst) + seconds
    }

    /// A device on `dir` whose network reaches these fakes under Microsoft's names.
    fn device(&self, dir: &std::path::Path) -> Device {
        let mut opts = options(dir);
        opts.net = Some(NetConfig {
            authority: "https://login.microsoftonline.com".into(),
            resolve: vec![
                ResolveRule::parse(&format!(
                    "login.microsoftonline.com:443={}",
                    self.identity.addr()
                ))
                .unwrap(),
                ResolveRule::parse(&format!("smtp.office365.com:587={}", self.exchange.addr()))
                    .unwrap(),
            ],
            extra_roots_pem: vec![self.ca.ca_pem().as_bytes().to_vec()],
            ..NetConfig::default()
        });
        Device::open(opts).unwrap()
    }

    /// Selects Exchange Online, signs in (approved on the fake's page) and returns the device.
    fn signed_in_device(&self, dir: &std::path::Path) -> Device {
        let device = self.device(dir);
        device
            .apply(
                Origin::WebPanel,
                &owned(&[("service-provider", "exchange-online")]),
            )
            .unwrap();
        let code = device.signin_start(self.now()).unwrap();
        self.world
            .approve(&code.user_code, Duration::from_secs(self.now()))
            .unwrap();
        let at = self.advance(u64::from(code.interval));
        match device.signin_poll(at).unwrap() {
            PollStatus::SignedIn(_) => device,
            other => panic!("not signed in: {other:?}"),
        }
    }
}

fn message(to: &str, attachments: Vec<u32>) -> OutgoingMessage {
    OutgoingMessage {
        to: vec![to.into()],
        from: None,
        subject: "Scan from MFP-0042 — Übersicht".into(),
        body: "Scanned document attached.".into(),
        attachments,
        attempt: 1,
    }
}

fn send_failure(err: DeviceError) -> mfp_host::bindings::mailer::SendError {
    match err {
        DeviceError::SendFailed(e) => e,
        other => panic!("expected a send failure, got {other:?}"),
    }
}

#[test]
fn sign_in_polls_exactly_at_the_interval_and_sets_the_device_email_address() {
    let ms = Microsoft::start(Scenario {
        approval: Approval::Manual,
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = ms.device(dir.path());
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();

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
    let email = device
        .settings()
        .unwrap()
        .into_iter()
        .find(|e| e.key == "device-email")
        .unwrap()
        .value;
    assert_eq!(
        email, "mfp@contoso.com",
        "S9: the account's address becomes the Device Email Address"
    );
    assert!(matches!(
        device.signin_status(at).unwrap(),
        AuthState::SignedIn(_)
    ));
}

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
    assert_eq!(m.header("From").as_deref(), Some("mfp@contoso.com"));
    let raw = String::from_utf8(m.raw.clone().unwrap()).unwrap();
    assert!(
        raw.contains("filename=\"scan-0001.pdf\"") || raw.contains("filename=scan-0001.pdf"),
        "{}",
        &raw[..raw.len().min(2000)]
    );
    let base64_part: String = raw
        .split("Content-Transfer-Encoding: base64\r\n")
        .last()
        .unwrap()
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split("\r\n--")
        .next()
        .unwrap()
        .replace("\r\n", "");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(base64_part)
            .unwrap(),
        scan
    );
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
    assert_eq!(err.diagnosis.code, "sign-in-required");
    assert!(ms.world.messages().is_empty());
}

#[test]
fn smtp_auth_disabled_for_the_tenant_is_explained_with_its_fix() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    ms.world.set_scenario(Scenario {
        smtp: SmtpCase::AuthDisabledForTenant,
        ..Scenario::default()
    });
    let err = send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                ms.now(),
            )
            .unwrap_err(),
    );
    assert_eq!(err.diagnosis.code, "smtp-auth-disabled-for-tenant");
    assert!(err.server_reply.unwrap().contains("5.7.139"));
    assert!(err.diagnosis.remedy.contains("SMTP AUTH"));
    assert_eq!(err.retry_after, None, "5xx replies are not retried");
}

#[test]
fn conditional_access_blocking_the_device_code_flow_is_named() {
    let ms = Microsoft::start(Scenario {
        failure: Some(Aadsts::ConditionalAccess53003),
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = ms.device(dir.path());
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();
    let code = device.signin_start(ms.now()).unwrap();
    let at = ms.advance(u64::from(code.interval));
    let PollStatus::Failed(diagnosis) = device.signin_poll(at).unwrap() else {
        panic!("sign-in should fail")
    };
    assert!(
        diagnosis.message.contains("53003") || diagnosis.code.contains("conditional-access"),
        "{diagnosis:?}"
    );
    assert!(
        diagnosis.remedy.contains("Block Device Code Flow")
            || diagnosis.message.contains("Block Device Code Flow"),
        "{diagnosis:?}"
    );
    assert!(matches!(
        device.signin_status(at).unwrap(),
        AuthState::SignedOut
    ));
}
