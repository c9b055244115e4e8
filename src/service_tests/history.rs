//! The event history (issue 13, "A history of what happened"): each kind recorded with
//! its outcome and diagnosis, in the commit of what it records where there is one,
//! newest first, and never a token or the message's content.

use std::time::Duration;

use mfp_fakes::{Aadsts, Approval, Case, Scenario, SmtpCase};

use super::rig::{RECIPIENT, Rig, T0, WORK_UPN, message};
use crate::capabilities::NetFailure;
use crate::history::{EventKind, HISTORY_KEY};
use crate::oauth::{self, PollView};
use crate::settings::Origin;
use crate::signin::token;
use crate::storage::{GRANT_KEY, Storage};

#[test]
fn a_sign_in_is_recorded_in_the_commit_that_stores_its_account() {
    let rig = Rig::for_case(Case::Happy);
    let at = rig.sign_in();
    let history = rig.history();
    assert_eq!(history.len(), 1, "{history:?}");
    let e = &history[0];
    assert_eq!((e.kind, e.succeeded, e.at), (EventKind::SignIn, true, at));
    assert_eq!(e.summary, format!("Signed in as {WORK_UPN}."));
    assert_eq!(e.diagnosis, None);
    let together = rig.written_with_last_event();
    assert!(
        together.iter().any(|k| k == GRANT_KEY),
        "the entry is written with the grant: {together:?}"
    );
}

#[test]
fn a_failed_sign_in_is_recorded_with_its_diagnosis_in_the_commit_that_ends_the_flow() {
    let rig = Rig::new(Scenario {
        approval: Approval::Decline,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    assert!(matches!(rig.poll(T0 + 5), PollView::Failed(_)));
    let history = rig.history();
    let e = &history[0];
    assert_eq!(
        (e.kind, e.succeeded, e.at),
        (EventKind::SignIn, false, T0 + 5)
    );
    let d = e.diagnosis.as_ref().expect("a diagnosis");
    assert_eq!(d.code, "sign-in-declined");
    assert!(d.remedy.contains("Open Authentication Page"), "{d:?}");
    assert!(
        rig.written_with_last_event()
            .iter()
            .any(|k| k == oauth::FAILED_SIGN_IN_KEY),
        "written with the kept failure"
    );
    // Polled again, the ended flow adds nothing.
    let _ = oauth::poll(&rig.store, &rig.http, T0 + 10);
    assert_eq!(rig.history().len(), 1);
}

#[test]
fn a_sign_in_refused_at_its_start_is_recorded() {
    let rig = Rig::new(Scenario {
        failure: Some(Aadsts::SingleTenantOnCommon50194),
        ..Scenario::default()
    });
    rig.exchange_online();
    let refused = rig.start(T0).unwrap_err();
    let e = &rig.history()[0];
    assert_eq!((e.kind, e.succeeded), (EventKind::SignIn, false));
    assert_eq!(e.diagnosis.as_ref().unwrap().code, refused.code);

    // A setting in the way is the caller's to show: not a sign-in that happened.
    let rig = Rig::for_case(Case::Happy);
    rig.start(T0).unwrap_err();
    assert!(rig.history().is_empty());
}

#[test]
fn a_send_is_recorded_with_size_message_id_and_reply_never_its_content() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.to.push("bob@fabrikam.com".into());
    let report = rig.send(&msg, signed_in + 30).expect("sent");
    let e = &rig.history()[0];
    assert_eq!(
        (e.kind, e.succeeded, e.at),
        (EventKind::Send, true, signed_in + 30)
    );
    assert!(
        e.summary.starts_with("Sent to 2 recipients ("),
        "{}",
        e.summary
    );
    assert!(e.summary.contains(&report.message_id), "{}", e.summary);
    assert_eq!(
        e.server_reply.as_deref(),
        Some(report.server_reply.as_str())
    );
    let raw = String::from_utf8(rig.store.get(HISTORY_KEY).unwrap().unwrap()).unwrap();
    for content in [
        msg.subject.as_str(),
        msg.body.as_str(),
        RECIPIENT,
        "bob@fabrikam.com",
    ] {
        assert!(
            !raw.contains(content),
            "{content:?} is in the history: {raw}"
        );
    }
}

#[test]
fn a_refused_send_is_recorded_with_the_servers_reply_and_its_diagnosis() {
    let rig = Rig::for_case(Case::Smtp(SmtpCase::AuthDisabledForTenant));
    let signed_in = rig.sign_in();
    let f = rig.send_err(&message(), signed_in + 10);
    let e = &rig.history()[0];
    assert_eq!((e.kind, e.succeeded), (EventKind::Send, false));
    assert!(
        e.summary.starts_with("Not sent to 1 recipient"),
        "{}",
        e.summary
    );
    assert_eq!(e.diagnosis.as_ref().unwrap().code, f.diagnosis.code);
    assert_eq!(e.diagnosis.as_ref().unwrap().remedy, f.diagnosis.remedy);
    assert_eq!(e.server_reply, f.server_reply);
    assert!(
        e.server_reply.as_deref().unwrap().starts_with("535"),
        "{e:?}"
    );
}

#[test]
fn each_attempt_of_a_retried_send_is_an_entry_that_says_what_follows() {
    let rig = Rig::for_case(Case::Smtp(SmtpCase::ConcurrentLimit));
    let signed_in = rig.sign_in();
    for attempt in 1..=2 {
        let mut msg = message();
        msg.attempt = attempt;
        rig.send_err(&msg, signed_in + 10 * u64::from(attempt));
    }
    let history = rig.history();
    assert!(
        history[0].summary.contains("attempt 2,") || history[0].summary.contains("attempt 2)"),
        "{}",
        history[0].summary
    );
    assert!(
        history[1]
            .summary
            .contains("tried again in 30 s (attempt 2 of 3)"),
        "{}",
        history[1].summary
    );
}

#[test]
fn a_send_refused_before_connecting_is_recorded() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let mut msg = message();
    msg.to.clear();
    rig.send_err(&msg, T0 + 100);
    let e = &rig.history()[0];
    assert_eq!(
        e.summary,
        "Not sent to 0 recipients: refused before connecting."
    );
    assert_eq!(e.diagnosis.as_ref().unwrap().code, "no-recipients");
    assert_eq!(e.server_reply, None);
}

#[test]
fn a_server_name_typed_on_the_control_panel_records_the_reset_with_the_sign_out() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    rig.apply(Origin::ControlPanel, &[("smtp-server", "mail.example.com")]);
    let e = &rig.history()[0];
    assert_eq!(
        (e.kind, e.origin),
        (EventKind::ProviderReset, Some(Origin::ControlPanel))
    );
    assert!(e.summary.contains("mail.example.com"), "{}", e.summary);
    assert!(
        e.summary.contains(&format!("{WORK_UPN} was signed out")),
        "{}",
        e.summary
    );
    assert_eq!(
        e.diagnosis.as_ref().unwrap().code,
        "provider-reset-by-control-panel"
    );
    let together = rig.written_with_last_event();
    assert!(
        together.iter().any(|k| k == GRANT_KEY),
        "written with the grant's deletion: {together:?}"
    );
    assert_eq!(rig.grant(), None);

    // On the web panel, without anybody signed in; other Applies add nothing.
    rig.exchange_online();
    rig.web(&[("receive-port", "2525")]);
    rig.web(&[("service-provider", "not-selected")]);
    let history = rig.history();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0].origin, Some(Origin::WebPanel));
    assert!(
        history[0].summary.contains("nobody was signed in"),
        "{}",
        history[0].summary
    );
    assert_eq!(history[0].diagnosis, None);
}

#[test]
fn a_refresh_refused_for_good_is_recorded_with_the_sign_out() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.world.set_scenario(Scenario {
        failure: Some(Aadsts::GrantRevoked50173),
        ..rig.world.scenario()
    });
    rig.send_err(&message(), expires + 1);
    let history = rig.history();
    let kinds: Vec<EventKind> = history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Send, EventKind::RefreshFailed, EventKind::SignIn],
        "newest first"
    );
    let refresh = &history[1];
    assert!(
        refresh.summary.contains("signed out"),
        "{}",
        refresh.summary
    );
    assert_eq!(
        refresh.diagnosis.as_ref().unwrap().code,
        "sign-in-grant-revoked"
    );
    assert!(
        rig.written_with_last_event()
            .iter()
            .all(|k| k == HISTORY_KEY),
        "the send's entry is appended on its own"
    );
}

#[test]
fn an_unreachable_refresh_is_recorded_once_however_often_the_keep_alive_retries() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let due = rig.grant().unwrap().obtained_at.unwrap() + token::KEEP_ALIVE_AFTER;
    for hour in 0..3 {
        rig.http
            .canned
            .borrow_mut()
            .push_back(Err(NetFailure::Timeout));
        let _ = oauth::keep_alive(&rig.store, &rig.http, due + hour * 3600);
    }
    let history = rig.history();
    assert_eq!(history.len(), 2, "{history:?}");
    let e = &history[0];
    assert_eq!(
        (e.kind, e.succeeded, e.at),
        (EventKind::RefreshFailed, false, due)
    );
    assert!(e.summary.contains("keep-alive"), "{}", e.summary);
    assert_eq!(e.diagnosis.as_ref().unwrap().code, "network-timeout");

    // Unreachable during a send while the token still works: the send goes on.
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.http
        .canned
        .borrow_mut()
        .push_back(Err(NetFailure::Timeout));
    rig.send(&message(), expires - 300).expect("sent");
    let history = rig.history();
    assert_eq!(history[0].kind, EventKind::Send);
    assert!(
        history[1].summary.contains("current access token is used"),
        "{}",
        history[1].summary
    );
}

#[test]
fn the_history_survives_a_reset_and_lists_every_kind_newest_first() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    rig.send(&message(), signed_in + 10).expect("sent");
    rig.world.set_scenario(Scenario {
        smtp: SmtpCase::AuthDisabledForMailbox,
        ..rig.world.scenario()
    });
    rig.send_err(&message(), signed_in + 20);
    rig.apply(Origin::ControlPanel, &[("smtp-server", "mail.example.com")]);
    // A new sign-in after the reset: the history is not part of the grant.
    let code = {
        rig.exchange_online();
        rig.start(signed_in + 40).unwrap()
    };
    rig.world
        .approve(&code.user_code, Duration::from_secs(signed_in + 41))
        .unwrap();
    let (outcome, _) = rig.poll_until_done(signed_in + 41, 60);
    assert!(matches!(outcome, PollView::SignedIn(_)), "{outcome:?}");

    let history = rig.history();
    let seen: Vec<(EventKind, bool)> = history.iter().map(|e| (e.kind, e.succeeded)).collect();
    assert_eq!(
        seen,
        [
            (EventKind::SignIn, true),
            (EventKind::ProviderReset, true),
            (EventKind::Send, false),
            (EventKind::Send, true),
            (EventKind::SignIn, true),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].at >= w[1].at));
}
