//! End to end through wasmtime and real TLS: the component signs in against the fake
//! Microsoft identity platform (HTTPS, test CA, `--resolve` to loopback) and sends through
//! the fake Exchange Online (STARTTLS, AUTH XOAUTH2 checked against the tokens it issued).
//! Time is driven by hand: the test passes `now` to the component and moves the fakes'
//! clock, so intervals are checked exactly without sleeping.

use std::sync::atomic::Ordering;
use std::time::Duration;

mod microsoft;
use microsoft::{Microsoft, message, send_failure};

use base64::Engine;
use mfp_component_tests::{Origin, owned};
use mfp_fakes::{Aadsts, Approval, Case, Scenario, SendAsReply, SlowDown, SmtpCase, World};
use mfp_host::attachments::AttachmentSet;
use mfp_host::bindings::mailer::SendError;
use mfp_host::bindings::signin::{AuthState, PollStatus};
use mfp_host::bindings::types::Diagnostic;
use mfp_host::device::{Device, DeviceError};
use mfp_host::net::SigninOverrides;

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

// --- Exchange Online failures -------------------------------------------------------

/// Signs in on the happy path, switches Exchange to `smtp` (and `send_as_reply`), sends
/// `message` at attempt `attempt` and returns the explained failure. Nothing is delivered.
fn exchange_refusal(
    smtp: SmtpCase,
    send_as_reply: SendAsReply,
    from: Option<&str>,
    attempt: u32,
) -> SendError {
    let ms = Microsoft::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    if from.is_some() {
        // S7: let a walk-up user edit From, so the message reaches Exchange's SendAs check.
        device
            .apply(
                Origin::WebPanel,
                &owned(&[("from.edit-without-auth", "yes")]),
            )
            .unwrap();
    }
    ms.world.set_scenario(Scenario {
        smtp,
        send_as_reply,
        ..Scenario::default()
    });
    let mut msg = message("alice@contoso.com", vec![]);
    msg.from = from.map(str::to_owned);
    msg.attempt = attempt;
    let err = send_failure(
        device
            .send(&msg, AttachmentSet::default(), ms.now())
            .unwrap_err(),
    );
    assert!(
        ms.world.messages().is_empty(),
        "{smtp:?}: nothing may be delivered"
    );
    err
}

/// Asserts the diagnosis `code`, that Exchange's reply (containing `said`) is carried both
/// as `server_reply` and in the message, and the retry advice.
fn assert_refusal(err: &SendError, code: &str, said: &str, retry_after: Option<u32>) {
    assert_eq!(err.diagnosis.code, code, "{err:?}");
    let reply = err
        .server_reply
        .as_deref()
        .unwrap_or_else(|| panic!("no server reply carried: {err:?}"));
    assert!(reply.contains(said), "{code}: {reply}");
    assert!(
        err.diagnosis.message.contains(reply.trim()),
        "{code}: the message quotes the server: {}",
        err.diagnosis.message
    );
    assert!(!err.diagnosis.remedy.is_empty(), "{code}: a remedy");
    assert_eq!(err.retry_after, retry_after, "{code}");
}

fn assert_exchange_case(smtp: SmtpCase, code: &str, said: &str, remedy: &str) {
    let err = exchange_refusal(smtp, SendAsReply::Current, None, 1);
    assert_refusal(&err, code, said, None);
    assert!(err.diagnosis.remedy.contains(remedy), "{err:?}");
}

#[test]
fn smtp_case_auth_disabled_for_tenant() {
    assert_exchange_case(
        SmtpCase::AuthDisabledForTenant,
        "smtp-auth-disabled-for-tenant",
        "535 5.7.139",
        "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
    );
}

#[test]
fn smtp_case_auth_disabled_for_mailbox() {
    assert_exchange_case(
        SmtpCase::AuthDisabledForMailbox,
        "smtp-auth-disabled-for-mailbox",
        "535 5.7.139",
        "Authenticated SMTP",
    );
}

#[test]
fn smtp_case_security_defaults() {
    assert_exchange_case(
        SmtpCase::SecurityDefaults,
        "smtp-auth-blocked-by-security-defaults",
        "security defaults policy",
        "security defaults",
    );
}

#[test]
fn smtp_case_submission_quota() {
    assert_exchange_case(
        SmtpCase::SubmissionQuota,
        "smtp-sending-quota-exceeded",
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException",
        "30 messages a minute",
    );
}

#[test]
fn smtp_case_error_challenge_is_answered_and_explained() {
    assert_exchange_case(
        SmtpCase::ErrorChallenge,
        "smtp-auth-unsuccessful",
        "535 5.7.3",
        "Open Authentication Page",
    );
}

#[test]
fn smtp_case_concurrent_limit_is_retried_with_backoff_then_given_up() {
    for (attempt, retry) in [(1, Some(30)), (2, Some(60)), (3, None)] {
        let err = exchange_refusal(
            SmtpCase::ConcurrentLimit,
            SendAsReply::Current,
            None,
            attempt,
        );
        assert_refusal(
            &err,
            "smtp-concurrent-connections",
            "432 4.3.2 Concurrent connections limit exceeded",
            retry,
        );
    }
}

/// A walk-up user's From edit to an address the account does not own. The component puts
/// the same address in MAIL FROM and in the From header, so Exchange refuses it at MAIL
/// FROM (550 5.7.60) and its after-DATA SendAs refusal (5.2.252, or the legacy 5.2.0
/// wording) cannot be reached: whichever wording the fake is set to, the outcome is the same.
#[test]
fn send_as_denied_is_explained_whatever_the_send_as_wording() {
    for wording in [SendAsReply::Current, SendAsReply::Legacy] {
        let err = exchange_refusal(SmtpCase::Normal, wording, Some("ceo@contoso.com"), 1);
        assert_refusal(
            &err,
            "smtp-send-as-denied",
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            None,
        );
        assert!(
            err.diagnosis.remedy.contains("Send As permission")
                && err.diagnosis.remedy.contains("From Address"),
            "{wording:?}: {err:?}"
        );
    }
}

// --- Identity platform refusals -------------------------------------------------------

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

/// Runs a sign-in that `failure` refuses (approved at the first poll) and returns the
/// diagnosis; the device is left signed out.
fn refused_sign_in(failure: Aadsts) -> (Microsoft, Device, tempfile::TempDir, Diagnostic) {
    let ms = Microsoft::start(Scenario {
        failure: Some(failure),
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = exchange_device(&ms, dir.path());
    let diagnosis = match device.signin_start(ms.now()) {
        Err(DeviceError::Diagnosed(d)) => d,
        Err(other) => panic!("{failure:?}: unexpected {other:?}"),
        Ok(code) => {
            let at = ms.advance(u64::from(code.interval));
            match device.signin_poll(at).unwrap() {
                PollStatus::Failed(d) => d,
                other => panic!("{failure:?}: sign-in should fail, got {other:?}"),
            }
        }
    };
    assert!(
        matches!(
            device.signin_status(ms.now()).unwrap(),
            AuthState::SignedOut
        ),
        "{failure:?}"
    );
    (ms, device, dir, diagnosis)
}

fn assert_sign_in_refused(failure: Aadsts, code: &str, remedy: &str) -> Diagnostic {
    let (_ms, _device, _dir, d) = refused_sign_in(failure);
    assert_eq!(d.code, code, "{failure:?}: {d:?}");
    assert!(
        d.message.contains(&format!("AADSTS{}", failure.code())),
        "{failure:?}: Microsoft's words are quoted: {d:?}"
    );
    assert!(d.remedy.contains(remedy), "{failure:?}: {d:?}");
    d
}

#[test]
fn aadsts_53003_conditional_access() {
    let d = assert_sign_in_refused(
        Aadsts::ConditionalAccess53003,
        "sign-in-blocked-by-conditional-access",
        "Conditional Access",
    );
    assert!(d.message.contains("Block Device Code Flow"), "{d:?}");
}

#[test]
fn aadsts_530033_device_code_flow_blocked() {
    let d = assert_sign_in_refused(
        Aadsts::DeviceCodeFlowBlocked530033,
        "sign-in-blocked-by-conditional-access",
        "Conditional Access",
    );
    assert!(d.message.contains("Block Device Code Flow"), "{d:?}");
}

#[test]
fn aadsts_65001_consent_required_names_the_admin_consent_url() {
    let (ms, device, _dir, d) = refused_sign_in(Aadsts::ConsentRequired65001);
    assert_eq!(d.code, "sign-in-consent-required", "{d:?}");
    let consent = device.admin_consent().unwrap();
    assert!(consent.needed, "{consent:?}");
    assert!(
        consent
            .url
            .starts_with("https://login.microsoftonline.com/common/adminconsent?client_id="),
        "{}",
        consent.url
    );
    assert!(d.remedy.contains(&consent.url), "{d:?}");
    drop(ms);
}

#[test]
fn aadsts_50076_mfa_required() {
    assert_sign_in_refused(
        Aadsts::MfaRequired50076,
        "sign-in-mfa-required",
        "multi-factor authentication",
    );
}

#[test]
fn aadsts_50079_mfa_enrollment() {
    assert_sign_in_refused(
        Aadsts::MfaEnrollment50079,
        "sign-in-mfa-registration-required",
        "https://aka.ms/mfasetup",
    );
}

#[test]
fn aadsts_50194_single_tenant_app_on_common() {
    assert_sign_in_refused(
        Aadsts::SingleTenantOnCommon50194,
        "sign-in-tenant-required",
        "[Tenant]",
    );
}

#[test]
fn aadsts_7000218_not_a_public_client() {
    assert_sign_in_refused(
        Aadsts::NotPublicClient7000218,
        "sign-in-not-public-client",
        "Allow public client flows",
    );
}

/// Signs in, moves the clock to 5 minutes before the access token expires (inside the
/// 10-minute refresh margin) and sends; the refresh is refused with `failure`.
fn assert_refresh_refused(failure: Aadsts, code: &str) {
    let ms = Microsoft::start(Scenario {
        failure: Some(failure),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("{failure:?}: signed in")
    };
    let at = state.access_token_expires_at - 300;
    ms.clock.store(at, Ordering::SeqCst);
    let err = send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                at,
            )
            .unwrap_err(),
    );
    assert_eq!(err.diagnosis.code, code, "{failure:?}: {err:?}");
    assert!(
        err.diagnosis
            .message
            .contains(&format!("AADSTS{}", failure.code())),
        "{err:?}"
    );
    assert!(
        err.diagnosis.remedy.contains("Open Authentication Page"),
        "{err:?}"
    );
    assert_eq!(
        err.server_reply, None,
        "{failure:?}: no SMTP server was reached"
    );
    assert_eq!(
        err.retry_after, None,
        "{failure:?}: signing in again is the fix"
    );
    assert!(
        matches!(device.signin_status(at).unwrap(), AuthState::SignedOut),
        "{failure:?}: the dead grant is forgotten"
    );
    assert!(ms.world.messages().is_empty());
    // The next send asks for a sign-in instead of retrying the refused grant.
    let again = send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                at,
            )
            .unwrap_err(),
    );
    assert_eq!(again.diagnosis.code, "sign-in-required");
}

#[test]
fn aadsts_700082_on_refresh_signs_the_device_out() {
    assert_refresh_refused(
        Aadsts::RefreshTokenInactive700082,
        "sign-in-refresh-token-expired",
    );
}

#[test]
fn aadsts_50173_on_refresh_signs_the_device_out() {
    assert_refresh_refused(Aadsts::GrantRevoked50173, "sign-in-grant-revoked");
}

#[test]
fn every_aadsts_case_of_the_fake_is_diagnosed_by_its_own_code() {
    // The match is exhaustive: a refusal added to the fake's table does not compile here
    // until it has an expected diagnosis, and then it runs through the component.
    for failure in Aadsts::ALL {
        let expected = match failure {
            Aadsts::ConditionalAccess53003 | Aadsts::DeviceCodeFlowBlocked530033 => {
                "sign-in-blocked-by-conditional-access"
            }
            Aadsts::ConsentRequired65001 => "sign-in-consent-required",
            Aadsts::MfaRequired50076 => "sign-in-mfa-required",
            Aadsts::MfaEnrollment50079 => "sign-in-mfa-registration-required",
            Aadsts::SingleTenantOnCommon50194 => "sign-in-tenant-required",
            Aadsts::NotPublicClient7000218 => "sign-in-not-public-client",
            // Refresh-only refusals: a sign-in under them succeeds, the refresh fails.
            Aadsts::RefreshTokenInactive700082 => {
                assert_refresh_refused(failure, "sign-in-refresh-token-expired");
                continue;
            }
            Aadsts::GrantRevoked50173 => {
                assert_refresh_refused(failure, "sign-in-grant-revoked");
                continue;
            }
        };
        let (_ms, _device, _dir, d) = refused_sign_in(failure);
        assert_eq!(d.code, expected, "{failure:?}: {d:?}");
    }
}

// --- Polling, accounts, refresh ---------------------------------------------------------

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
    assert_eq!(shown.interval, 10);
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
fn primary_address_other_than_the_upn_is_warned_refused_and_fixed() {
    let ms = Microsoft::with_world(World::for_case(Case::PrimaryDiffersFromUpn));
    let account = ms.world.accounts()[0].clone();
    assert_ne!(account.upn, account.primary);
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());

    // S9: the warning names the UPN.
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("signed in")
    };
    assert_eq!(state.account.upn, account.upn);
    let warning = state
        .warnings
        .iter()
        .find(|w| w.code == "device-email-not-upn")
        .unwrap_or_else(|| panic!("S9 warning: {:?}", state.warnings));
    assert!(warning.remedy.contains(&account.upn), "{warning:?}");

    // Sending as the primary address: Exchange refuses XOAUTH2, explained with the UPN.
    let err = send_failure(
        device
            .send(
                &message("alice@contoso.com", vec![]),
                AttachmentSet::default(),
                ms.now(),
            )
            .unwrap_err(),
    );
    assert_eq!(
        err.diagnosis.code, "smtp-auth-device-email-not-upn",
        "{err:?}"
    );
    assert!(err.diagnosis.remedy.contains(&account.upn), "{err:?}");
    assert!(
        err.server_reply
            .as_deref()
            .unwrap_or_default()
            .contains("535 5.7.3"),
        "{err:?}"
    );
    assert!(ms.world.messages().is_empty());

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
fn a_personal_account_needs_no_admin_consent_and_sends() {
    let ms = Microsoft::with_world(World::for_case(Case::PersonalAccount));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let AuthState::SignedIn(state) = device.signin_status(ms.now()).unwrap() else {
        panic!("signed in")
    };
    assert!(state.account.personal, "{:?}", state.account);
    assert_eq!(state.account.tenant_id, mfp_fakes::PERSONAL_TENANT);
    assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    let consent = device.admin_consent().unwrap();
    assert!(!consent.needed, "{consent:?}");
    assert!(consent.explanation.contains("personal"), "{consent:?}");
    device
        .send(
            &message("alice@contoso.com", vec![]),
            AttachmentSet::default(),
            ms.now(),
        )
        .unwrap();
    let received = ms.world.messages();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].account, "mfp.scanner@outlook.com");
}

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
    // old refresh token are both dead by now (the fake, switched to single-use refresh tokens, refuses a rotated one),
    // so this send works only if the rotated one was persisted.
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
    let oid = ms
        .world
        .accounts()
        .first()
        .map(|a| a.oid.clone())
        .unwrap_or_else(|| "5b1f6d1e-8c3a-4d2b-9f47-0c6e2a8d9b31".into());
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

#[test]
fn the_hosts_tenant_override_applies_to_one_invocation_only() {
    // A single-tenant application refuses /common (AADSTS50194); --tenant fixes it.
    let ms = Microsoft::start(Scenario {
        failure: Some(Aadsts::SingleTenantOnCommon50194),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let plain = ms.device(dir.path());
    plain
        .apply(
            Origin::WebPanel,
            &owned(&[("service-provider", "exchange-online")]),
        )
        .unwrap();
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
    let tenant = device
        .settings()
        .unwrap()
        .into_iter()
        .find(|e| e.key == "tenant")
        .unwrap()
        .value;
    assert_eq!(tenant, "common", "the stored setting is untouched");

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
