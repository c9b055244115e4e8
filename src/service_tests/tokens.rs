//! Tokens for sending: refresh ahead of expiry, rotation, reuse, and the refusals that
//! sign the device out (Protocol facts).

use std::time::Duration;

use mfp_fakes::{Aadsts, Case, Scenario};

use super::rig::{AUTHORITY, Rig, WORK_UPN, assert_code, bearer_of, message};
use crate::capabilities::{Http, HttpReply, NetFailure};
use crate::oauth::{AuthState, PollView};
use crate::panel;
use crate::signin::{self, SigninConfig};

#[test]
fn the_access_token_is_refreshed_within_ten_minutes_of_expiry_and_the_new_refresh_token_is_stored_first()
 {
    let rig = Rig::for_case(Case::Happy);
    // A platform that honours each refresh token once: only the rotated one works after.
    rig.world
        .update_settings(|s| s.single_use_refresh_tokens = true);
    rig.sign_in();
    let old = rig.grant().unwrap();
    let expires = old.expires_at;
    let token_requests = rig.token_requests();

    // 10 min 1 s before expiry: the stored token is used as it is.
    rig.send(&message(), expires - 601).expect("sent");
    assert_eq!(rig.token_requests(), token_requests);
    assert_eq!(bearer_of(&rig.last_transcript()), old.access_token.expose());

    // 10 min before: refreshed first.
    rig.log.borrow_mut().clear();
    rig.send(&message(), expires - 600).expect("sent");
    assert_eq!(rig.token_requests(), token_requests + 1);
    let refresh = rig.requests().last().unwrap().clone();
    assert_eq!(refresh.form["grant_type"], "refresh_token");
    assert_eq!(refresh.form["refresh_token"], old.refresh_token.expose());
    assert_eq!(refresh.path, "/common/oauth2/v2.0/token");

    let fresh = rig.grant().unwrap();
    assert_ne!(
        fresh.refresh_token, old.refresh_token,
        "the rotated refresh token is stored"
    );
    assert_ne!(fresh.access_token, old.access_token);
    assert!(fresh.expires_at >= expires - 600 + 3600);
    let account = rig.account().unwrap();
    assert_eq!(
        fresh.account().unwrap().unwrap().upn(),
        account.upn(),
        "the refreshed grant is the same account's"
    );
    assert_eq!(
        bearer_of(&rig.last_transcript()),
        fresh.access_token.expose(),
        "the new access token is used"
    );
    let committed = rig.position("commit oauth/grant").expect("grant committed");
    let connected = rig.position("smtp connect").expect("connected");
    assert!(rig.position("http refresh_token").unwrap() < committed);
    assert!(
        committed < connected,
        "the new grant is committed before the new token is used: {:?}",
        rig.log.borrow()
    );

    // The old refresh token no longer works at the platform.
    let config = SigninConfig::from_settings(&rig.settings(), AUTHORITY);
    let replay = signin::token::refresh_request(&config, &old);
    let reply = rig.http.send(&replay).unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(rig.requests().last().unwrap().status, 400);
    assert_eq!(
        rig.requests().last().unwrap().error.as_deref(),
        Some("invalid_grant")
    );
    // The new one does.
    let reply = rig
        .http
        .send(&signin::token::refresh_request(&config, &fresh))
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn consecutive_sends_reuse_the_token_and_give_back_the_connection() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let token_requests = rig.token_requests();
    for i in 0..3 {
        rig.send(&message(), signed_in + 10 + i).expect("sent");
        assert_eq!(
            rig.world.open_sessions(WORK_UPN),
            0,
            "the session slot is given back after each send"
        );
    }
    assert_eq!(rig.token_requests(), token_requests);
    assert_eq!(rig.world.messages().len(), 3);
    assert_eq!(rig.connects(), 3);
}

#[test]
fn a_refresh_token_idle_for_90_days_signs_the_device_out() {
    // Scripted at the platform.
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.world.set_scenario(Scenario {
        failure: Some(Aadsts::RefreshTokenInactive700082),
        ..rig.world.scenario()
    });
    let f = rig.send_err(&message(), expires - 60);
    assert_code(&f.diagnosis, "sign-in-refresh-token-expired");
    assert!(f.diagnosis.message.contains("AADSTS700082"));
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!(rig.connects(), 0);
    assert_eq!((rig.grant(), rig.account()), (None, None), "signed out");
    assert_eq!(rig.status(expires), AuthState::SignedOut);
    assert!(
        panel::diagnostics(&rig.store)
            .unwrap()
            .iter()
            .any(|d| d.code == "sign-in-required")
    );

    // And for real: 91 days without a send.
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let f = rig.send_err(&message(), signed_in + 91 * 86_400);
    assert_code(&f.diagnosis, "sign-in-refresh-token-expired");
    assert_eq!(rig.grant(), None);
    assert_eq!(rig.connects(), 0);
}

#[test]
fn a_revoked_grant_signs_the_device_out() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.world.set_scenario(Scenario {
        failure: Some(Aadsts::GrantRevoked50173),
        ..rig.world.scenario()
    });
    let f = rig.send_err(&message(), expires + 1);
    assert_code(&f.diagnosis, "sign-in-grant-revoked");
    assert!(
        f.diagnosis.message.contains("password"),
        "{:?}",
        f.diagnosis
    );
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!((rig.grant(), rig.account()), (None, None));
    assert_eq!(rig.connects(), 0);
    // Signing in again restores sending.
    let code = rig.start(expires + 10).unwrap();
    rig.world
        .approve(&code.user_code, Duration::from_secs(expires + 11))
        .unwrap();
    assert!(matches!(rig.poll(expires + 15), PollView::SignedIn(_)));
    rig.send(&message(), expires + 20)
        .expect("sent after signing in again");
}

#[test]
fn a_failed_refresh_sends_with_the_current_token_while_it_lasts() {
    for trouble in [
        Err(NetFailure::Timeout),
        Ok(HttpReply {
            status: 503,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }),
    ] {
        let rig = Rig::for_case(Case::Happy);
        rig.sign_in();
        let old = rig.grant().unwrap();
        rig.http.canned.borrow_mut().push_back(trouble.clone());
        rig.send(&message(), old.expires_at - 300)
            .unwrap_or_else(|f| panic!("{trouble:?}: {f:?}"));
        assert_eq!(
            rig.grant().unwrap(),
            old,
            "nothing changed; refresh next time"
        );
        assert_eq!(bearer_of(&rig.last_transcript()), old.access_token.expose());

        // Once expired, the failure is the send's.
        rig.http.canned.borrow_mut().push_back(trouble.clone());
        let f = rig.send_err(&message(), old.expires_at + 1);
        let expected = if trouble.is_err() {
            "network-timeout"
        } else {
            "sign-in-service-unavailable"
        };
        assert_code(&f.diagnosis, expected);
        assert_eq!(rig.connects(), 1);
        assert_eq!(
            rig.grant().unwrap(),
            old,
            "a transient failure does not sign out"
        );
    }
}
