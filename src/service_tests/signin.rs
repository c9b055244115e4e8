//! Sign-in (S8, S9): the device code flow, polling and slow_down, declines, expiry and
//! refusals, admin consent, personal accounts, sign-out, and a primary address ≠ UPN.

use std::time::Duration;

use mfp_fakes::scenario::Stage;
use mfp_fakes::{Aadsts, Approval, Case, Scenario, SlowDown, World};

use super::rig::{
    AUTHORITY, ODD_PRIMARY, ODD_UPN, RECIPIENT, Rig, T0, WORK_UPN, assert_code, failed, message,
};
use crate::capabilities::{HttpReply, NetFailure};
use crate::diagnose::Severity;
use crate::oauth::{self, AuthState, DeviceCodeView, PollView};
use crate::settings::{DEFAULT_CLIENT_ID, Origin};
use crate::signin::{self, FLOW_KEY};
use crate::storage::Storage;

#[test]
fn sign_in_shows_the_servers_code_polls_on_the_interval_and_makes_the_account_the_device_email() {
    let rig = Rig::new(Scenario::default());
    rig.world
        .update_settings(|s| s.verification_uri = "https://login.example.test/device".into());
    let applied = rig.web(&[("service-provider", "exchange-online")]);
    assert!(
        applied
            .notices
            .iter()
            .any(|n| n.code == "exchange-online-selected")
    );

    let code = rig.start(T0).unwrap();
    assert_eq!(
        code.verification_uri, "https://login.example.test/device",
        "the server's URI, never a hard-coded one"
    );
    assert_eq!(code.user_code.len(), 9);
    assert!(code.message.contains(&code.user_code));
    assert_eq!((code.interval, code.expires_at), (5, T0 + 900));
    let requests = rig.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/common/oauth2/v2.0/devicecode");
    assert_eq!(requests[0].form["client_id"], DEFAULT_CLIENT_ID);
    assert_eq!(requests[0].form["scope"], signin::SCOPE);
    assert_eq!(
        rig.status(T0),
        AuthState::InProgress {
            code: code.clone(),
            still_signed_in: None
        }
    );

    // Before the interval: nothing is sent, the host is told when to call again.
    assert_eq!(rig.poll(T0 + 1), PollView::Pending(T0 + 5));
    assert_eq!(rig.poll(T0 + 4), PollView::Pending(T0 + 5));
    assert_eq!(rig.http_count(), 1);
    // At exactly +interval: one request, authorization_pending.
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 10));
    assert_eq!(rig.token_requests(), 1);
    assert_eq!(
        rig.requests()[1].form["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(
        rig.requests()[1].error.as_deref(),
        Some("authorization_pending")
    );

    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 7))
        .unwrap();
    assert_eq!(rig.poll(T0 + 9), PollView::Pending(T0 + 10));
    assert_eq!(rig.token_requests(), 1);
    let PollView::SignedIn(account) = rig.poll(T0 + 10) else {
        panic!("not signed in")
    };
    assert_eq!(rig.token_requests(), 2);
    assert_eq!(account.upn(), Some(WORK_UPN));

    // S9: the account's address is now the Device Email Address.
    assert_eq!(rig.settings().device_email, WORK_UPN);
    let grant = rig.grant().expect("the grant is stored");
    assert!(grant.can_send_mail());
    assert!(
        (T0 + 10 + 3600..=T0 + 10 + 5400).contains(&grant.expires_at),
        "{}",
        grant.expires_at
    );
    assert_eq!(rig.account(), Some(account.clone()));
    assert_eq!(
        rig.store.get(FLOW_KEY).unwrap(),
        None,
        "the flow is over and forgotten"
    );
    // Tokens, account, Device Email Address and the flow's deletion in one commit.
    let log = rig.log.borrow().clone();
    let grant_at = log.iter().position(|e| e == "commit oauth/grant").unwrap();
    assert_eq!(
        log[grant_at..grant_at + 4],
        [
            "commit oauth/grant",
            "commit oauth/account",
            "commit settings/v1",
            "delete oauth/device-flow"
        ]
    );

    match rig.status(T0 + 11) {
        AuthState::SignedIn(oauth::SignedIn {
            account: a,
            access_token_expires_at,
            warnings,
        }) => {
            assert_eq!(a, account);
            assert_eq!(access_token_expires_at, grant.expires_at);
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        other => panic!("{other:?}"),
    }
    // Polling again after sign-in answers from the store.
    assert_eq!(rig.poll(T0 + 20), PollView::SignedIn(account));
    assert_eq!(rig.token_requests(), 2);
}

#[test]
fn sign_in_needs_exchange_online_selected_first() {
    let rig = Rig::new(Scenario::default());
    let err = rig.start(T0).unwrap_err();
    assert_code(&err, "provider-not-exchange-online");
    assert!(err.remedy.contains("Open Authentication Page"));
    assert_eq!(rig.http_count(), 0);
    let err = oauth::poll(&rig.store, &rig.http, T0 + 5).unwrap_err();
    assert!(
        matches!(err, oauth::SigninFailure::SignInRequired(_)),
        "{err:?}"
    );
    assert_code(err.diagnosis(), "sign-in-not-started");
}

#[test]
fn slow_down_adds_five_seconds_to_the_interval_for_good() {
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Once,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    assert_eq!(
        rig.poll(T0 + 5),
        PollView::Pending(T0 + 15),
        "slow_down: 5 + 5 s"
    );
    assert_eq!(rig.requests()[1].error.as_deref(), Some("slow_down"));
    let AuthState::InProgress { code: view, .. } = rig.status(T0 + 6) else {
        panic!()
    };
    assert_eq!(view.interval, 10);
    assert_eq!(rig.poll(T0 + 14), PollView::Pending(T0 + 15));
    assert_eq!(rig.token_requests(), 1);
    // Later pendings keep the longer interval.
    assert_eq!(rig.poll(T0 + 15), PollView::Pending(T0 + 25));
    assert_eq!(rig.poll(T0 + 25), PollView::Pending(T0 + 35));
    assert_eq!(rig.token_requests(), 3);
    let errors: Vec<_> = rig
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.error.clone().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "slow_down",
            "authorization_pending",
            "authorization_pending"
        ]
    );
}

#[test]
fn a_host_polling_every_second_makes_only_the_rfc_8628_minimum_of_requests() {
    // slow_down once, two authorization_pending, then tokens: RFC 8628 allows no fewer
    // than 4 token requests, and the client must not provoke another slow_down.
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Once,
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 120);
    assert!(matches!(outcome, PollView::SignedIn(_)), "{outcome:?}");
    assert_eq!(rig.token_requests(), 4);
    let slow_downs = rig
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some("slow_down"))
        .count();
    assert_eq!(
        slow_downs, 1,
        "only the scripted slow_down; never polled too fast"
    );
    assert_eq!(at, T0 + 5 + 10 + 10 + 10, "polls at +5, +15, +25, +35");

    // Without slow_down: 2 pendings and the tokens.
    let rig = Rig::new(Scenario {
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 120);
    assert!(matches!(outcome, PollView::SignedIn(_)));
    assert_eq!((rig.token_requests(), at), (3, T0 + 15));
}

#[test]
fn slow_down_always_polls_less_and_less_until_the_code_expires() {
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Always,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 1000);
    assert_code(&failed(outcome), "sign-in-expired");
    assert!(
        at <= T0 + 900,
        "stops at expires_in by the device's clock ({})",
        at - T0
    );
    // Intervals 10, 15, 20, …: polls at +5, +15, +30, +50, …, the last before +900.
    let n = rig.token_requests();
    assert!((15..=20).contains(&n), "{n} token requests");
    assert!(
        rig.requests()
            .iter()
            .skip(1)
            .all(|r| r.error.as_deref() == Some("slow_down"))
    );
}

#[test]
fn a_declined_sign_in_ends_the_flow() {
    for manual in [false, true] {
        let scenario = if manual {
            Scenario::default()
        } else {
            Scenario {
                approval: Approval::Decline,
                ..Scenario::default()
            }
        };
        let rig = Rig::new(scenario);
        rig.exchange_online();
        let code = rig.start(T0).unwrap();
        if manual {
            rig.world
                .decline(&code.user_code, Duration::from_secs(T0 + 2))
                .unwrap();
        }
        let d = failed(rig.poll(T0 + 5));
        assert_code(&d, "sign-in-declined");
        assert!(d.remedy.contains("Open Authentication Page"));
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
        assert_failure_kept(&rig, T0 + 6, "sign-in-declined");
        assert_eq!(rig.grant(), None);
        assert_eq!(
            rig.settings().device_email,
            "",
            "no Device Email Address from a declined sign-in"
        );
        let err = oauth::poll(&rig.store, &rig.http, T0 + 10).unwrap_err();
        assert_code(err.diagnosis(), "sign-in-not-started");
        assert_eq!(rig.token_requests(), 1);
    }
}

#[test]
fn an_expired_code_ends_the_flow_whoever_notices() {
    // The server says expired_token.
    let rig = Rig::new(Scenario {
        approval: Approval::Expire,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let d = failed(rig.poll(T0 + 5));
    assert_code(&d, "sign-in-expired");
    assert!(d.message.contains("AADSTS70020"), "{d:?}");
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);

    // Nobody signs in: the device stops at expires_in without asking.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.start(T0).unwrap();
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 10));
    let before = rig.http_count();
    assert_eq!(
        rig.status(T0 + 899),
        AuthState::InProgress {
            code: rig_view(&rig, T0 + 899),
            still_signed_in: None
        }
    );
    let d = failed(rig.poll(T0 + 900));
    assert_code(&d, "sign-in-expired");
    assert_eq!(rig.http_count(), before, "no request for an expired code");
    // The failure is kept for every panel until the next sign-in starts.
    match rig.status(T0 + 900) {
        AuthState::SignInFailed {
            failure,
            still_signed_in: None,
        } => {
            assert_eq!(failure.code, "sign-in-expired");
            assert_eq!(failure.failed_at, T0 + 900);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
}

/// The failed sign-in is what `status` reports, with nobody signed in, until the next
/// sign-in starts.
fn assert_failure_kept(rig: &Rig, now: u64, code: &str) {
    match rig.status(now) {
        AuthState::SignInFailed {
            failure,
            still_signed_in: None,
        } => assert_eq!(failure.code, code),
        other => panic!("{other:?}"),
    }
}

fn rig_view(rig: &Rig, now: u64) -> DeviceCodeView {
    match oauth::status(&rig.store, now).unwrap() {
        AuthState::InProgress { code, .. } => code,
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_refusal_at_the_poll_after_sign_in_ends_the_flow_with_its_diagnosis() {
    let cases: [(Aadsts, &str); 6] = [
        (
            Aadsts::ConditionalAccess53003,
            "sign-in-blocked-by-conditional-access",
        ),
        (
            Aadsts::DeviceCodeFlowBlocked530033,
            "sign-in-blocked-by-conditional-access",
        ),
        (Aadsts::ConsentRequired65001, "sign-in-consent-required"),
        (Aadsts::MfaRequired50076, "sign-in-mfa-required"),
        (
            Aadsts::MfaEnrollment50079,
            "sign-in-mfa-registration-required",
        ),
        (Aadsts::NotPublicClient7000218, "sign-in-not-public-client"),
    ];
    for (failure, code) in cases {
        assert_eq!(failure.stage(), Stage::Poll);
        let rig = Rig::new(Scenario {
            approval: Approval::AfterPolls(0),
            failure: Some(failure),
            ..Scenario::default()
        });
        rig.exchange_online();
        rig.start(T0).unwrap();
        let d = failed(rig.poll(T0 + 5));
        assert_code(&d, code);
        let expected_status = if failure == Aadsts::NotPublicClient7000218 {
            401
        } else {
            400
        };
        assert_eq!(
            rig.requests().last().unwrap().status,
            expected_status,
            "{failure:?}"
        );
        assert_eq!(d.severity, Severity::Error);
        assert!(
            d.message.contains(&format!("AADSTS{}", failure.code())),
            "{failure:?}: {d:?}"
        );
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None, "{failure:?}");
        assert_eq!((rig.grant(), rig.account()), (None, None), "{failure:?}");
        assert_eq!(rig.settings().device_email, "");
        assert_failure_kept(&rig, T0 + 6, d.code);
        match failure {
            Aadsts::ConditionalAccess53003 | Aadsts::DeviceCodeFlowBlocked530033 => {
                // S8: say it is Conditional Access, name "Block Device Code Flow", and what to do.
                assert!(d.message.contains("Conditional Access"), "{d:?}");
                assert!(d.message.contains("Block Device Code Flow"), "{d:?}");
                assert!(
                    d.remedy.contains("excluded") && d.remedy.contains(DEFAULT_CLIENT_ID),
                    "{d:?}"
                );
            }
            Aadsts::ConsentRequired65001 => {
                let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
                assert!(consent.needed);
                assert!(d.remedy.contains(&consent.url), "{d:?}");
                assert!(d.remedy.contains("Global Administrator"));
            }
            Aadsts::MfaRequired50076 => assert!(d.remedy.contains("multi-factor"), "{d:?}"),
            Aadsts::MfaEnrollment50079 => assert!(d.remedy.contains("aka.ms/mfasetup"), "{d:?}"),
            Aadsts::NotPublicClient7000218 => {
                assert!(d.remedy.contains("Allow public client flows"), "{d:?}")
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn a_single_tenant_application_on_common_is_refused_at_start_and_a_tenant_fixes_it() {
    let rig = Rig::new(Scenario {
        failure: Some(Aadsts::SingleTenantOnCommon50194),
        ..Scenario::default()
    });
    rig.exchange_online();
    let d = rig.start(T0).unwrap_err();
    assert_code(&d, "sign-in-tenant-required");
    assert!(
        d.message.contains("AADSTS50194") && d.message.contains("\"common\""),
        "{d:?}"
    );
    assert!(d.remedy.contains("[Tenant]"));
    assert_eq!(
        rig.store.get(FLOW_KEY).unwrap(),
        None,
        "no flow from a refused start"
    );
    assert_eq!(rig.status(T0), AuthState::SignedOut);

    rig.web(&[("tenant", "contoso.onmicrosoft.com")]);
    let code = rig.start(T0 + 10).unwrap();
    assert_eq!(
        rig.requests()[1].path,
        "/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
    );
    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 11))
        .unwrap();
    assert!(matches!(rig.poll(T0 + 15), PollView::SignedIn(_)));
    assert_eq!(
        rig.requests()[2].path,
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "polls the tenant it started at"
    );
}

#[test]
fn a_network_failure_during_start_is_diagnosed_and_starts_nothing() {
    let cases = [
        (
            NetFailure::Dns("login.microsoftonline.com".into()),
            "network-dns",
        ),
        (
            NetFailure::Denied("login.microsoftonline.com:443".into()),
            "network-denied",
        ),
        (NetFailure::Timeout, "network-timeout"),
        (
            NetFailure::Tls("certificate not trusted".into()),
            "network-tls",
        ),
        (
            NetFailure::Proxy("407 Proxy Authentication Required".into()),
            "network-proxy",
        ),
    ];
    for (failure, code) in cases {
        let rig = Rig::new(Scenario::default());
        rig.exchange_online();
        rig.http.canned.borrow_mut().push_back(Err(failure.clone()));
        let d = rig.start(T0).unwrap_err();
        assert_code(&d, code);
        assert!(d.message.contains(AUTHORITY), "{d:?}");
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
        // The next try works.
        assert!(rig.start(T0 + 1).is_ok());
    }
}

#[test]
fn a_platform_that_cannot_issue_a_code_is_diagnosed_at_start() {
    // Unavailable (HTTP 5xx): try again later.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 503,
        headers: Vec::new(),
        body: b"<html>busy</html>".to_vec(),
    }));
    assert_code(&rig.start(T0).unwrap_err(), "sign-in-service-unavailable");
    // A client id the tenant does not know (AADSTS700016).
    let world = World::new(Scenario::default());
    world.update_settings(|s| s.client_id = Some(DEFAULT_CLIENT_ID.into()));
    let rig = Rig::with_world(world);
    rig.exchange_online();
    rig.web(&[("client-id", "11111111-2222-3333-4444-555555555555")]);
    let d = rig.start(T0).unwrap_err();
    assert_code(&d, "sign-in-application-not-found");
    assert!(d.remedy.contains("adminconsent"), "{d:?}");
    assert_eq!(rig.requests()[0].status, 400);
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
    // Something else answering at the authority.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 200,
        headers: Vec::new(),
        body: b"<html>captive portal</html>".to_vec(),
    }));
    assert_code(&rig.start(T0).unwrap_err(), "sign-in-malformed-reply");
}

#[test]
fn a_lost_poll_reply_backs_off_and_polling_goes_on() {
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    let code = rig.start(T0).unwrap();
    rig.http
        .canned
        .borrow_mut()
        .push_back(Err(NetFailure::Timeout));
    assert_eq!(
        rig.poll(T0 + 5),
        PollView::Pending(T0 + 15),
        "the interval doubles to 10 s"
    );
    assert_eq!(rig.poll(T0 + 14), PollView::Pending(T0 + 15));
    assert_eq!(rig.http_count(), 2);
    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 14))
        .unwrap();
    assert!(matches!(rig.poll(T0 + 15), PollView::SignedIn(_)));
}

#[test]
fn an_unavailable_identity_platform_while_polling_backs_off_too() {
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.start(T0).unwrap();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 503,
        headers: Vec::new(),
        body: b"Service Unavailable".to_vec(),
    }));
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 15));
    assert!(rig.store.get(FLOW_KEY).unwrap().is_some());
}

#[test]
fn a_personal_account_signs_in_without_admin_consent_and_without_a_upn_warning() {
    let rig = Rig::for_case(Case::PersonalAccount);
    rig.sign_in();
    assert_eq!(rig.settings().device_email, "mfp.scanner@outlook.com");
    let AuthState::SignedIn(oauth::SignedIn {
        warnings, account, ..
    }) = rig.status(T0 + 100)
    else {
        panic!()
    };
    assert!(account.is_personal());
    assert!(warnings.is_empty(), "{warnings:?}");
    let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(!consent.needed);
    assert!(consent.explanation.contains("Outlook.com"));
    rig.send(&message(), T0 + 100).expect("Outlook.com sends");
}

#[test]
fn without_an_email_claim_the_sign_in_name_becomes_the_device_email() {
    let rig = Rig::for_case(Case::NoEmailClaim);
    rig.sign_in();
    assert_eq!(rig.account().unwrap().email, None);
    assert_eq!(rig.settings().device_email, WORK_UPN);
    rig.send(&message(), T0 + 100).expect("sends as the UPN");
}

#[test]
fn admin_consent_is_offered_once_per_tenant_and_never_for_outlook_com() {
    let rig = Rig::for_case(Case::Happy);
    rig.exchange_online();
    let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(consent.needed);
    assert!(
        consent.url.starts_with(&format!("{AUTHORITY}/common/adminconsent?client_id={DEFAULT_CLIENT_ID}&redirect_uri=https%3A%2F%2F")),
        "{}",
        consent.url
    );
    assert_eq!(rig.http_count(), 0, "the URL is built, not fetched");

    // A configured client id, redirect URI and tenant are what the URL carries (S10).
    rig.web(&[
        ("tenant", "contoso.onmicrosoft.com"),
        ("client-id", "11111111-2222-3333-4444-555555555555"),
        (
            "consent-redirect-uri",
            "https://printers.contoso.com/consent",
        ),
    ]);
    let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
    assert_eq!(
        consent.url,
        format!(
            "{AUTHORITY}/contoso.onmicrosoft.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555&redirect_uri=https%3A%2F%2Fprinters.contoso.com%2Fconsent"
        )
    );
    rig.web(&[("tenant", "consumers")]);
    assert!(!oauth::admin_consent(&rig.store, &rig.http).unwrap().needed);
    rig.web(&[("tenant", "common"), ("client-id", DEFAULT_CLIENT_ID)]);

    rig.sign_in();
    let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(
        !consent.needed,
        "a work account signed in: consent was given"
    );
    // S10: once per tenant. After a sign-out the tenant signed in to needs no consent
    // again (Entra keeps it); another tenant still does.
    oauth::sign_out(&rig.store).unwrap();
    let consent = oauth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(!consent.needed, "{consent:?}");
    assert!(
        consent.explanation.contains(mfp_fakes::world::WORK_TENANT),
        "{consent:?}"
    );
    rig.web(&[("tenant", mfp_fakes::world::WORK_TENANT)]);
    assert!(!oauth::admin_consent(&rig.store, &rig.http).unwrap().needed);
    rig.web(&[("tenant", "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b")]);
    assert!(oauth::admin_consent(&rig.store, &rig.http).unwrap().needed);
}

#[test]
fn sign_out_forgets_the_account_and_sending_asks_for_sign_in() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    oauth::sign_out(&rig.store).unwrap();
    assert_eq!((rig.grant(), rig.account()), (None, None));
    assert_eq!(rig.status(T0 + 100), AuthState::SignedOut);
    let f = rig.send_err(&message(), T0 + 100);
    assert_code(&f.diagnosis, "sign-in-required");
    assert_eq!(rig.connects(), 0);
    // The Device Email Address stays (the administrator may sign in again as it).
    assert_eq!(rig.settings().device_email, WORK_UPN);
}

#[test]
fn typing_a_server_on_the_control_panel_signs_out_and_sending_is_refused() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let outcome = rig.apply(Origin::ControlPanel, &[("smtp-server", "mail.example.com")]);
    assert!(
        outcome
            .notices
            .iter()
            .any(|n| n.code == "provider-reset-by-control-panel")
    );
    assert_eq!(
        rig.grant(),
        None,
        "S4: no unused mailbox credential is kept"
    );
    let f = rig.send_err(&message(), T0 + 100);
    assert_code(&f.diagnosis, "provider-not-exchange-online");
    assert_eq!(rig.connects(), 0);
}

// ---------------------------------------------------------------------------------------
// Primary address ≠ UPN (S9)
// ---------------------------------------------------------------------------------------

#[test]
fn a_primary_address_other_than_the_upn_is_warned_about_fails_to_send_and_the_upn_fixes_it() {
    let rig = Rig::for_case(Case::PrimaryDiffersFromUpn);
    let signed_in = rig.sign_in();
    assert_eq!(
        rig.settings().device_email,
        ODD_PRIMARY,
        "S9: the account's address becomes the Device Email Address"
    );

    let AuthState::SignedIn(oauth::SignedIn { warnings, .. }) = rig.status(signed_in) else {
        panic!()
    };
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_code(&warnings[0], "device-email-not-upn");
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(
        warnings[0]
            .remedy
            .contains(&format!("Set the Device Email Address to {ODD_UPN}")),
        "{warnings:?}"
    );

    let f = rig.send_err(&message(), signed_in + 60);
    assert_code(&f.diagnosis, "smtp-auth-device-email-not-upn");
    assert!(f.diagnosis.remedy.contains(ODD_UPN), "{:?}", f.diagnosis);
    assert!(f.diagnosis.message.contains(ODD_PRIMARY));
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("535 5.7.3")),
        "{f:?}"
    );
    assert_eq!(f.retry_after, None, "a permanent refusal is not retried");
    assert!(rig.world.messages().is_empty());

    // The administrator takes the offer.
    rig.web(&[("device-email", ODD_UPN)]);
    let AuthState::SignedIn(oauth::SignedIn { warnings, .. }) = rig.status(signed_in + 120) else {
        panic!()
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    let report = rig
        .send(&message(), signed_in + 120)
        .expect("sends as the UPN");
    let received = &rig.world.messages()[0];
    assert_eq!(received.account, ODD_UPN);
    assert_eq!(received.mail_from, ODD_UPN);
    assert_eq!(received.header("From").as_deref(), Some(ODD_UPN));
    assert_eq!(report.accepted, [RECIPIENT]);
}

#[test]
fn a_failed_sign_in_is_kept_beside_the_account_still_signed_in_until_the_next_one_starts() {
    let rig = Rig::new(Scenario::default());
    let signed_in = rig.sign_in();
    let account = rig.account().expect("signed in");

    // A second sign-in: while it waits, the first account is still reported.
    let code = rig.start(signed_in + 10).unwrap();
    match rig.status(signed_in + 11) {
        AuthState::InProgress {
            code: shown,
            still_signed_in: Some(still),
        } => {
            assert_eq!(shown.user_code, code.user_code);
            assert_eq!(still.account, account);
        }
        other => panic!("{other:?}"),
    }

    // Declined: the failure is kept, with the account that still sends.
    rig.world
        .decline(&code.user_code, Duration::from_secs(signed_in + 12))
        .unwrap();
    let (outcome, at) = rig.poll_until_done(signed_in + 15, 60);
    assert_code(&failed(outcome), "sign-in-declined");
    match rig.status(at + 1) {
        AuthState::SignInFailed {
            failure,
            still_signed_in: Some(still),
        } => {
            assert_eq!(failure.code, "sign-in-declined");
            assert!(failure.remedy.contains("Open Authentication Page"));
            assert_eq!(still.account, account);
        }
        other => panic!("{other:?}"),
    }

    // The next sign-in replaces the failure; its success leaves no trace of it.
    let code = rig.start(at + 10).unwrap();
    assert!(matches!(rig.status(at + 11), AuthState::InProgress { .. }));
    rig.world
        .approve(&code.user_code, Duration::from_secs(at + 12))
        .unwrap();
    let (outcome, done) = rig.poll_until_done(at + 15, 60);
    assert!(matches!(outcome, PollView::SignedIn(_)), "{outcome:?}");
    assert!(
        matches!(rig.status(done + 1), AuthState::SignedIn(_)),
        "{:?}",
        rig.status(done + 1)
    );
}

#[test]
fn signing_out_forgets_a_failed_sign_in_too() {
    let rig = Rig::new(Scenario {
        approval: Approval::Decline,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    failed(rig.poll(T0 + 5));
    assert!(matches!(rig.status(T0 + 6), AuthState::SignInFailed { .. }));
    oauth::sign_out(&rig.store).unwrap();
    assert_eq!(rig.status(T0 + 7), AuthState::SignedOut);
}

#[test]
fn cancelling_a_new_sign_in_keeps_the_account_and_a_late_approval_stores_nothing() {
    let rig = Rig::new(Scenario::default());
    let signed_in = rig.sign_in();
    let account = rig.account().expect("signed in");
    let grant = rig.grant();

    let code = rig.start(signed_in + 10).unwrap();
    oauth::cancel(&rig.store).unwrap();
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
    match rig.status(signed_in + 11) {
        AuthState::SignedIn(s) => assert_eq!(s.account, account),
        other => panic!("{other:?}"),
    }
    // Approved after the cancel: polling finds nothing to finish, nothing changes.
    rig.world
        .approve(&code.user_code, Duration::from_secs(signed_in + 12))
        .unwrap();
    let requests = rig.token_requests();
    assert_eq!(
        oauth::poll(&rig.store, &rig.http, signed_in + 15).unwrap(),
        PollView::SignedIn(account),
        "the account signed in before"
    );
    assert_eq!(
        rig.token_requests(),
        requests,
        "the cancelled code is not polled"
    );
    assert_eq!(rig.grant(), grant, "the earlier grant stays");
    // Nothing in progress is no error either.
    oauth::cancel(&rig.store).unwrap();
}
