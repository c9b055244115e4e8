//! Sign-in checks end to end, through wasmtime and real TLS against the strict identity
//! stand-in (issue #8, "S10 and id_token", "Clocks"): admin consent once per tenant, the
//! id_token's `aud`/`iss`/`tid`/`exp` checks, the verification URI's scheme, and a wrong
//! device clock told by the token endpoint's `Date` header. Each failure must leave nobody
//! signed in and say exactly why.

use std::time::Duration;

mod microsoft;
use microsoft::Microsoft;

use mfp_component_tests::{Origin, owned, value_of};
use mfp_fakes::scenario::OTHER_TENANT;
use mfp_fakes::world::WORK_TENANT as WORK_TENANT_ID;
use mfp_fakes::{Case, IdTokenFlaw, Scenario, World};
use mfp_host::bindings::signin::{AuthState, PollStatus, RefusalReason, SigninError};
use mfp_host::bindings::types::{Diagnostic, Severity};
use mfp_host::device::{Device, DeviceError};

/// A device on `dir` with Exchange Online selected and `settings` applied.
fn exchange_device(ms: &Microsoft, dir: &std::path::Path, settings: &[(&str, &str)]) -> Device {
    let device = ms.device(dir);
    let mut all = vec![("service-provider", "exchange-online")];
    all.extend_from_slice(settings);
    device.apply(Origin::WebPanel, &owned(&all)).unwrap();
    device
}

/// Runs a sign-in to its end: starts it, approves the code on the fake's page and polls
/// at the pace the component asks for. `device_ahead` is how far (seconds) the device's
/// clock is ahead of the true time the fakes keep.
fn sign_in(ms: &Microsoft, device: &Device, device_ahead: u64) -> PollStatus {
    let code = device.signin_start(ms.now() + device_ahead).unwrap();
    ms.world
        .approve(&code.user_code, Duration::from_secs(ms.now()))
        .unwrap();
    let mut at = ms.advance(u64::from(code.interval)) + device_ahead;
    for _ in 0..20 {
        match device.signin_poll(at).unwrap() {
            PollStatus::Pending(next) => {
                ms.advance(next.saturating_sub(at));
                at = next;
            }
            done => return done,
        }
    }
    panic!("the sign-in never ended")
}

/// The diagnosis of a failed sign-in, after checking that nobody is signed in: no
/// account, no Device Email Address taken from the refused token.
fn refused(ms: &Microsoft, device: &Device, outcome: PollStatus) -> Diagnostic {
    let PollStatus::Failed(diagnosis) = outcome else {
        panic!("signed in although the id_token does not fit: {outcome:?}")
    };
    assert_eq!(diagnosis.severity, Severity::Error);
    // Nobody is signed in, and the failure is kept for every panel to show.
    match device.signin_status(ms.now()).unwrap() {
        AuthState::SignInFailed(failed) => {
            assert_eq!(failed.diagnosis, diagnosis);
            assert_eq!(failed.still_signed_in, None, "{diagnosis:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(value_of(device, "device-email"), "", "{diagnosis:?}");
    assert!(
        !diagnosis.remedy.web_panel.is_empty() && diagnosis.message.contains("nobody was signed in"),
        "{diagnosis:?}"
    );
    diagnosis
}

#[test]
fn consent_is_not_needed_again_for_a_tenant_signed_in_before_but_is_for_another() {
    let ms = Microsoft::with_world(World::for_case(Case::PrimaryDiffersFromUpn));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[("tenant", WORK_TENANT_ID)]);
    let before = device.admin_consent().unwrap();
    assert!(before.needed, "a tenant never signed in to: {before:?}");
    assert!(
        before
            .url
            .contains(&format!("/{WORK_TENANT_ID}/adminconsent?")),
        "{}",
        before.url
    );

    assert!(matches!(sign_in(&ms, &device, 0), PollStatus::SignedIn(_)));
    assert_eq!(
        value_of(&device, "device-email"),
        ms.world.accounts()[0].primary,
        "S9: the Device Email Address is still the primary address"
    );
    assert!(!device.admin_consent().unwrap().needed);

    // Signed out: Entra keeps the consent, and so does the device.
    device.sign_out().unwrap();
    let after = device.admin_consent().unwrap();
    assert!(!after.needed, "{after:?}");
    assert!(after.explanation.contains(WORK_TENANT_ID), "{after:?}");

    // An S4 reset (a server typed on the control panel) discards the grant, not the consent.
    device
        .apply(
            Origin::ControlPanel,
            &owned(&[("smtp-server", "mail.example.com")]),
        )
        .unwrap();
    assert_eq!(value_of(&device, "service-provider"), "not-selected");
    device
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();
    assert!(!device.admin_consent().unwrap().needed);

    // Another tenant needs its own consent; back to the known one, none again.
    device
        .apply(Origin::WebPanel, &owned(&[("tenant", OTHER_TENANT)]))
        .unwrap();
    assert!(device.admin_consent().unwrap().needed);
    device
        .apply(Origin::WebPanel, &owned(&[("tenant", WORK_TENANT_ID)]))
        .unwrap();
    assert!(!device.admin_consent().unwrap().needed);

    // A device that never signed in to it still needs it.
    let fresh = tempfile::tempdir().unwrap();
    let other_device = exchange_device(&ms, fresh.path(), &[("tenant", WORK_TENANT_ID)]);
    assert!(other_device.admin_consent().unwrap().needed);
}

#[test]
fn an_id_token_for_another_application_signs_nobody_in() {
    let ms = Microsoft::with_world(World::for_case(Case::IdToken(IdTokenFlaw::WrongAudience)));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "sign-in-id-token-audience");
    assert!(
        d.message.contains("00000003-0000-0000-c000-000000000000")
            && d.message.contains("c88859d7-e6a2-48cb-acee-669df3387654"),
        "names both applications: {d:?}"
    );
    // Nothing of the refused sign-in stays: no consent is remembered either.
    assert!(device.admin_consent().unwrap().needed);
}

#[test]
fn an_id_token_of_another_tenant_signs_nobody_in_whatever_the_tenant_setting() {
    let ms = Microsoft::with_world(World::for_case(Case::IdToken(IdTokenFlaw::WrongTenant)));
    // On `common`, any tenant fits, but the token's issuer is not its own tenant's.
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "sign-in-id-token-issuer");
    assert!(d.message.contains(OTHER_TENANT), "{d:?}");
    // Set to the work tenant's id, the token's tenant does not fit the setting.
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[("tenant", WORK_TENANT_ID)]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "sign-in-id-token-tenant");
    assert!(
        d.message.contains(OTHER_TENANT) && d.message.contains(WORK_TENANT_ID),
        "{d:?}"
    );
    // A work account's sound token does not fit `consumers` (personal accounts only).
    ms.world.set_case(Case::Happy);
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[("tenant", "consumers")]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "sign-in-id-token-tenant");
    assert!(d.message.contains("personal Microsoft accounts"), "{d:?}");
}

#[test]
fn an_expired_id_token_signs_nobody_in() {
    let ms = Microsoft::with_world(World::for_case(Case::IdToken(IdTokenFlaw::Expired)));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(
        d.code, "sign-in-id-token-expired",
        "the platform's clock agrees with the device's: the token is old, not the clock wrong"
    );
    assert!(d.message.contains("expired at"), "{d:?}");
}

#[test]
fn a_sound_sign_in_passes_every_check_on_each_kind_of_tenant_setting() {
    let ms = Microsoft::start(Scenario::default());
    for tenant in ["common", "organizations", WORK_TENANT_ID, "contoso.com"] {
        let dir = tempfile::tempdir().unwrap();
        let device = exchange_device(&ms, dir.path(), &[("tenant", tenant)]);
        let outcome = sign_in(&ms, &device, 0);
        assert!(
            matches!(outcome, PollStatus::SignedIn(_)),
            "{tenant}: {outcome:?}"
        );
        let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
            panic!("{tenant}: not signed in")
        };
        assert_eq!(state.warnings, [], "{tenant}: the clocks agree");
    }
}

#[test]
fn a_verification_uri_that_is_not_https_is_refused_unless_on_loopback() {
    let ms = Microsoft::with_world(World::for_case(Case::InsecureVerificationUri));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let refused_start = |device: &Device| match device.signin_start(ms.now()) {
        // Refused by the identity platform's answer, typed as such.
        Err(DeviceError::SigninFailed(SigninError::Refused(refusal))) => {
            assert_eq!(refusal.reason, RefusalReason::UnsafeVerificationUri);
            refusal.diagnosis
        }
        other => panic!("the code was shown: {other:?}"),
    };
    let d = refused_start(&device);
    assert_eq!(d.code, "sign-in-verification-uri-unsafe");
    assert!(d.message.contains("http://microsoft.com"), "{d:?}");
    assert_eq!(
        device.signin_status(ms.now()).unwrap(),
        AuthState::SignedOut,
        "no sign-in is left in progress"
    );
    ms.world.set_case(Case::Happy);
    for bad in [
        "javascript:alert(document.cookie)",
        "http://192.0.2.7/devicelogin",
    ] {
        ms.world
            .update_settings(|s| s.verification_uri = bad.to_owned());
        let d = refused_start(&device);
        assert_eq!(d.code, "sign-in-verification-uri-unsafe", "{bad}");
        assert!(!d.message.contains("document.cookie"), "{d:?}");
    }
    // The demo's own page on loopback is fine.
    let demo = "http://127.0.0.1:8080/demo/devicelogin";
    ms.world
        .update_settings(|s| s.verification_uri = demo.to_owned());
    assert_eq!(
        device.signin_start(ms.now()).unwrap().verification_uri,
        demo
    );
}

#[test]
fn a_device_clock_two_hours_ahead_is_diagnosed_not_blamed_on_the_token() {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let outcome = sign_in(&ms, &device, 2 * 3600);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "device-clock-wrong");
    assert!(d.message.contains("date and time are wrong"), "{d:?}");
    assert!(d.message.contains("about 2 hours ahead of"), "{d:?}");
    assert!(d.message.contains("looks expired"), "{d:?}");
    assert!(d.remedy.web_panel.contains("NTP"), "{d:?}");
}

#[test]
fn a_platform_clock_far_ahead_of_the_device_is_diagnosed_as_the_devices_clock() {
    let ms = Microsoft::with_world(World::for_case(Case::ServerClockAhead));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    let outcome = sign_in(&ms, &device, 0);
    let d = refused(&ms, &device, outcome);
    assert_eq!(d.code, "device-clock-wrong");
    assert!(d.message.contains("about 2 hours behind"), "{d:?}");
    assert!(d.message.contains("looks not yet valid"), "{d:?}");
}

#[test]
fn a_clock_off_by_half_an_hour_signs_in_with_a_warning() {
    let ms = Microsoft::with_world(World::for_case(Case::ServerClockBehind));
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path(), &[]);
    assert!(matches!(sign_in(&ms, &device, 0), PollStatus::SignedIn(_)));
    assert_eq!(value_of(&device, "device-email"), "mfp@contoso.com");
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("not signed in")
    };
    let warning = state
        .warnings
        .iter()
        .find(|w| w.code == "device-clock-wrong")
        .unwrap_or_else(|| panic!("no clock warning: {:?}", state.warnings));
    assert_eq!(warning.severity, Severity::Warning);
    assert!(
        warning.message.contains("about 30 minutes ahead of"),
        "{warning:?}"
    );
    assert!(warning.remedy.web_panel.contains("date and time"), "{warning:?}");
}
