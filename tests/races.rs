//! Races that must not lose state, through wasmtime against the Microsoft stand-ins on
//! loopback: several instances (each its own `Device` on one state dir, as several host
//! processes would be) refreshing at once, a sign-in approved after it was cancelled,
//! polls that keep failing, and an idle device kept signed in.
//!
//! Mutations these tests catch (each tried, then reverted):
//! - S4 forgetting the flow record (`FLOW_KEY` left out of `GRANT_KEYS`):
//!   `an_s4_reset_forgets_the_sign_in_in_progress`;
//! - a refresh keeping the old refresh token (`parse_refresh_reply`):
//!   `parallel_sends_with_an_expiring_token_refresh_once_and_stay_signed_in` and
//!   `keep_alive_refreshes_a_week_after_the_last_refresh_and_keeps_an_idle_device_signed_in`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Duration;

mod microsoft;
use microsoft::{Microsoft, message};

use mfp_component_tests::{Origin, options, owned, value_of};
use mfp_fakes::{Approval, Scenario};
use mfp_host::bindings::signin::{AuthState, PollStatus};
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::capabilities::net::{NetConfig, ResolveRule};
use mfp_host::device::{Device, DeviceError};

/// A week, the keep-alive period.
const WEEK: u64 = 7 * 86_400;

fn access_expiry(device: &Device, now: u64) -> u64 {
    match device.signin_status(now).unwrap() {
        AuthState::SignedIn(state) => state.access_token_expires_at,
        other => panic!("not signed in: {other:?}"),
    }
}

fn send(device: &Device, to: &str, now: u64) -> Result<(), DeviceError> {
    device
        .send(&message(to, vec![]), AttachmentSet::default(), now)
        .map(|_| ())
}

#[test]
fn parallel_sends_with_an_expiring_token_refresh_once_and_stay_signed_in() {
    const N: usize = 6;
    let ms = Microsoft::start(Scenario::default());
    ms.world.update_settings(|s| {
        // A refresh token spent twice is refused: a second instance refreshing with the
        // token the first has just rotated would get `invalid_grant`.
        s.single_use_refresh_tokens = true;
        // The race is about tokens, not Exchange's 3-session limit.
        s.max_connections_per_account = N as u32;
    });
    let dir = tempfile::tempdir().unwrap();
    let first = ms.signed_in_device(dir.path());
    // Inside the 10-minute refresh window, not yet expired.
    let at = access_expiry(&first, ms.now()) - 300;
    ms.clock.store(at, Ordering::SeqCst);
    let token_requests = ms.world.requests("token");

    let devices: Vec<Device> = (0..N).map(|_| ms.device(dir.path())).collect();
    let start = Arc::new(Barrier::new(N));
    let sent: Vec<Result<(), DeviceError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let start = start.clone();
                scope.spawn(move || {
                    start.wait();
                    send(device, &format!("user{i}@fabrikam.com"), at)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (i, result) in sent.iter().enumerate() {
        assert!(result.is_ok(), "send {i}: {result:?}");
    }
    assert_eq!(ms.world.messages().len(), N, "all delivered");
    assert_eq!(
        ms.world.requests("token"),
        token_requests + 1,
        "one instance refreshed; the others sent with the still-valid token"
    );
    let refreshed = access_expiry(&first, at);
    assert!(refreshed > at + 3000, "the rotated grant is stored");

    // The stored refresh token still works: the next refresh succeeds and sends.
    let later = refreshed - 300;
    ms.clock.store(later, Ordering::SeqCst);
    send(&first, "after@fabrikam.com", later).expect("sent with the next refresh");
    assert_eq!(ms.world.requests("token"), token_requests + 2);
    assert!(access_expiry(&first, later) > refreshed);
}

#[test]
fn parallel_sends_after_the_token_expired_wait_for_one_refresh_and_all_go_out() {
    const N: usize = 4;
    let ms = Microsoft::start(Scenario::default());
    ms.world.update_settings(|s| {
        s.single_use_refresh_tokens = true;
        s.max_connections_per_account = N as u32;
    });
    let dir = tempfile::tempdir().unwrap();
    let first = ms.signed_in_device(dir.path());
    // Idle past expiry: no instance can send before one of them has refreshed.
    let at = access_expiry(&first, ms.now()) + 60;
    ms.clock.store(at, Ordering::SeqCst);
    let token_requests = ms.world.requests("token");

    let devices: Vec<Device> = (0..N).map(|_| ms.device(dir.path())).collect();
    let start = Arc::new(Barrier::new(N));
    std::thread::scope(|scope| {
        for (i, device) in devices.iter().enumerate() {
            let start = start.clone();
            scope.spawn(move || {
                start.wait();
                // As a host does: retry after the delay the component asks for.
                let mut outgoing = message(&format!("user{i}@fabrikam.com"), vec![]);
                loop {
                    match device.send(&outgoing, AttachmentSet::default(), at) {
                        Ok(_) => return,
                        Err(DeviceError::SendFailed(e)) if e.retry_after().is_some() => {
                            assert_eq!(e.diagnosis().code, "sign-in-refresh-in-progress");
                            assert!(outgoing.attempt < 50, "send {i} never got a token");
                            outgoing.attempt += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(other) => panic!("send {i}: {other:?}"),
                    }
                }
            });
        }
    });
    assert_eq!(ms.world.messages().len(), N, "all delivered");
    assert_eq!(
        ms.world.requests("token"),
        token_requests + 1,
        "one refresh; the others waited for it instead of spending the same token"
    );
    assert!(
        access_expiry(&first, at) > at,
        "signed in with the new token"
    );
}

/// Signs `device` in up to the approval, runs `meanwhile` on another instance while the
/// poll that collects the approval is in flight, and returns that poll's answer.
fn approved_after(
    ms: &Microsoft,
    dir: &std::path::Path,
    meanwhile: impl FnOnce(&Device) + Send + 'static,
) -> (Device, PollStatus) {
    let device = ms.device(dir);
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();
    let code = device.signin_start(ms.now()).unwrap();
    ms.world
        .approve(&code.user_code, Duration::from_secs(ms.now()))
        .unwrap();
    let other = ms.device(dir);
    ms.world.before_next_token_reply(move || meanwhile(&other));
    let at = ms.advance(u64::from(code.interval));
    let answer = device.signin_poll(at).unwrap();
    (device, answer)
}

#[test]
fn a_sign_in_approved_after_a_reset_a_provider_change_or_a_sign_out_stores_nothing() {
    type Meanwhile = Box<dyn FnOnce(&Device) + Send>;
    let cases: [(&str, Meanwhile, &str); 3] = [
        (
            "S4: a server typed on the control panel",
            Box::new(|other: &Device| {
                other
                    .apply(
                        Origin::ControlPanel,
                        &owned(&[("smtp-server", "mail.example.com")]),
                    )
                    .unwrap();
            }),
            "Service Provider",
        ),
        (
            "provider set to Not Selected on the web panel",
            Box::new(|other: &Device| {
                other
                    .apply(
                        Origin::WebPanel,
                        &owned(&[("service-provider", "not-selected")]),
                    )
                    .unwrap();
            }),
            "Service Provider",
        ),
        (
            "signed out",
            Box::new(|other: &Device| other.sign_out().unwrap()),
            "signed out",
        ),
    ];
    for (case, meanwhile, named) in cases {
        let ms = Microsoft::start(Scenario {
            approval: Approval::Manual,
            ..Scenario::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let (device, answer) = approved_after(&ms, dir.path(), meanwhile);
        let PollStatus::Failed(diagnosis) = answer else {
            panic!("{case}: the late approval was taken: {answer:?}")
        };
        assert_eq!(diagnosis.code, "sign-in-cancelled", "{case}");
        assert!(
            diagnosis.message.contains(named),
            "{case}: {}",
            diagnosis.message
        );
        assert!(
            diagnosis.remedy.web_panel.contains("[Open Authentication Page]"),
            "{case}"
        );
        assert_eq!(
            device.signin_status(ms.now()).unwrap(),
            AuthState::SignedOut,
            "{case}"
        );
        for key in ["oauth/grant", "oauth/account", "oauth/device-flow"] {
            assert_eq!(device.store().get(key).unwrap(), None, "{case}: {key}");
        }
        assert_eq!(
            value_of(&device, "device-email"),
            "",
            "{case}: S9 not applied"
        );
        assert!(
            matches!(
                send(&device, "alice@fabrikam.com", ms.now()),
                Err(DeviceError::SendFailed(_))
            ),
            "{case}: nothing to send with"
        );
    }
}

#[test]
fn an_s4_reset_forgets_the_sign_in_in_progress() {
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
    assert!(matches!(
        device.signin_status(ms.now()).unwrap(),
        AuthState::InProgress(_)
    ));
    device
        .apply(
            Origin::ControlPanel,
            &owned(&[("smtp-server", "mail.example.com")]),
        )
        .unwrap();
    assert_eq!(
        device.signin_status(ms.now()).unwrap(),
        AuthState::SignedOut,
        "S4 discards the sign-in in progress with the grant"
    );
    // Approved afterwards: no poll goes out and nothing is stored.
    ms.world
        .approve(&code.user_code, Duration::from_secs(ms.now()))
        .unwrap();
    let polls = ms.world.requests("token");
    let at = ms.advance(u64::from(code.interval));
    assert!(device.signin_poll(at).is_err());
    assert_eq!(ms.world.requests("token"), polls);
    assert_eq!(device.signin_status(at).unwrap(), AuthState::SignedOut);
}

/// A device on `dir` whose network to the identity platform is changed by `breakage`.
fn device_with_net(
    ms: &Microsoft,
    dir: &std::path::Path,
    breakage: impl FnOnce(&mut NetConfig),
) -> Device {
    let mut net = NetConfig {
        authority: "https://login.microsoftonline.com".into(),
        resolve: vec![ResolveRule::parse(&ms.fakes.identity_rule()).unwrap()],
        extra_roots_pem: vec![ms.fakes.ca_pem().to_vec()],
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        ..NetConfig::default()
    };
    breakage(&mut net);
    let mut opts = options(dir);
    opts.net = Some(net);
    Device::open(opts).unwrap()
}

#[test]
fn three_failed_polls_in_a_row_show_the_network_diagnosis_until_a_poll_succeeds() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    type Breakage = Box<dyn FnOnce(&mut NetConfig)>;
    let cases: [(&str, Breakage); 3] = [
        (
            "network-denied",
            // The host grants another authority than the one the sign-in started at.
            Box::new(|net: &mut NetConfig| net.authority = "https://login.example.test".into()),
        ),
        (
            "network-tls",
            // A certificate the device does not trust (an intercepting proxy, say).
            Box::new(|net: &mut NetConfig| net.extra_roots_pem.clear()),
        ),
        (
            "network-unreachable",
            Box::new(move |net: &mut NetConfig| {
                net.resolve = vec![
                    ResolveRule::parse(&format!("login.microsoftonline.com:443={closed_addr}"))
                        .unwrap(),
                ];
            }),
        ),
    ];
    for (expected, breakage) in cases {
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
        let broken = device_with_net(&ms, dir.path(), breakage);
        let mut at = ms.advance(u64::from(code.interval));
        for failed in 1..=2 {
            let PollStatus::Pending(next) = broken.signin_poll(at).unwrap() else {
                panic!("{expected}: poll {failed} should still be plainly pending")
            };
            let AuthState::InProgress(shown) = broken.signin_status(at).unwrap() else {
                panic!("{expected}: not in progress")
            };
            assert_eq!(
                shown.device_code.problem, None,
                "{expected}: shown after {failed}"
            );
            at = next;
            ms.clock.store(at, Ordering::SeqCst);
        }
        let PollStatus::PendingUnreachable(trouble) = broken.signin_poll(at).unwrap() else {
            panic!("{expected}: the third failed poll must carry the diagnosis")
        };
        assert_eq!(trouble.diagnosis.code, expected);
        assert!(trouble.diagnosis.message.contains("last 3 polls"));
        let AuthState::InProgress(shown) = device.signin_status(at).unwrap() else {
            panic!("{expected}: not in progress")
        };
        assert_eq!(
            shown.device_code.problem.as_ref().map(|d| d.code.as_str()),
            Some(expected),
            "the status carries it"
        );
        // The network is back: the next poll gets an answer and the diagnosis goes.
        at = trouble.next_poll_at;
        ms.clock.store(at, Ordering::SeqCst);
        assert!(matches!(
            device.signin_poll(at).unwrap(),
            PollStatus::Pending(_)
        ));
        let AuthState::InProgress(shown) = device.signin_status(at).unwrap() else {
            panic!("{expected}: not in progress")
        };
        assert_eq!(
            shown.device_code.problem, None,
            "{expected}: cleared by an answer"
        );
    }
}

#[test]
fn keep_alive_refreshes_a_week_after_the_last_refresh_and_keeps_an_idle_device_signed_in() {
    let ms = Microsoft::start(Scenario::default());
    ms.world
        .update_settings(|s| s.single_use_refresh_tokens = true);
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let signed_in_at = ms.now();
    let requests = ms.world.requests("token");

    // Not before a week: nothing is sent, and it says when.
    let next = device.signin_keep_alive(signed_in_at + 60).unwrap();
    assert_eq!(next, signed_in_at + WEEK);
    ms.clock.store(next - 1, Ordering::SeqCst);
    assert_eq!(device.signin_keep_alive(next - 1).unwrap(), next);
    assert_eq!(
        ms.world.requests("token"),
        requests,
        "no refresh before a week"
    );

    // A week on: refreshed, and the next one is a week after that.
    ms.clock.store(next, Ordering::SeqCst);
    assert_eq!(device.signin_keep_alive(next).unwrap(), next + WEEK);
    assert_eq!(ms.world.requests("token"), requests + 1);

    // An idle printer whose host calls it when asked stays signed in well past the 90
    // idle days after which a refresh token expires (AADSTS700082).
    let mut at = next + WEEK;
    for _ in 0..14 {
        ms.clock.store(at, Ordering::SeqCst);
        at = device.signin_keep_alive(at).unwrap();
    }
    assert!(at - signed_in_at > 100 * 86_400);
    ms.clock.store(at, Ordering::SeqCst);
    send(&device, "alice@fabrikam.com", at).expect("still signed in after 100 idle days");
}

#[test]
fn without_keep_alive_a_device_idle_for_90_days_is_signed_out() {
    // The contrast that makes the keep-alive test meaningful: the stand-in does expire
    // an idle refresh token.
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let at = ms.now() + 91 * 86_400;
    ms.clock.store(at, Ordering::SeqCst);
    let Err(DeviceError::SendFailed(failure)) = send(&device, "alice@fabrikam.com", at) else {
        panic!("sent after 91 idle days")
    };
    assert_eq!(failure.diagnosis().code, "sign-in-refresh-token-expired");
    assert_eq!(device.signin_status(at).unwrap(), AuthState::SignedOut);
}
