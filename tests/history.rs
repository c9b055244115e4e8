//! The event history through wasmtime and the stand-ins on loopback: a sign-in, a send, a
//! send Exchange refuses and a server name typed on the control panel are each recorded by
//! the component, and `panel.history` lists them newest first with their diagnoses.

mod microsoft;
use microsoft::{Microsoft, message, send_failure};

use mfp_component_tests::{Origin, owned};
use mfp_fakes::{Case, Scenario, SmtpCase, World};
use mfp_host::bindings::panel::EventKind;
use mfp_host::capabilities::attachments::AttachmentSet;

#[test]
fn a_sign_in_a_send_a_refused_send_and_a_reset_are_listed_newest_first() {
    let ms = Microsoft::with_world(World::for_case(Case::Happy));
    let dir = tempfile::tempdir().unwrap();
    let device = ms.signed_in_device(dir.path());
    let signed_in_at = ms.now();

    let sent_at = ms.advance(10);
    let report = device
        .send(
            &message("alice@fabrikam.com", Vec::new()),
            AttachmentSet::default(),
            sent_at,
        )
        .expect("sent");

    ms.world.set_scenario(Scenario {
        smtp: SmtpCase::AuthDisabledForTenant,
        ..ms.world.scenario()
    });
    let refused_at = ms.advance(10);
    let refused = send_failure(
        device
            .send(
                &message("alice@fabrikam.com", Vec::new()),
                AttachmentSet::default(),
                refused_at,
            )
            .unwrap_err(),
    );

    let reset_at = ms.advance(10);
    device
        .apply_at(
            Origin::ControlPanel,
            &owned(&[("smtp-server", "mail.example.com")]),
            reset_at,
        )
        .unwrap();

    let history = device.history().unwrap();
    let seen: Vec<(EventKind, bool, u64)> = history
        .iter()
        .map(|e| (e.kind, e.succeeded, e.at))
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::ProviderReset, true, reset_at),
            (EventKind::Send, false, refused_at),
            (EventKind::Send, true, sent_at),
            (EventKind::SignIn, true, signed_in_at),
        ],
        "{history:#?}"
    );

    let reset = &history[0];
    assert_eq!(reset.origin, Some(Origin::ControlPanel));
    assert!(reset.summary.contains("mail.example.com"), "{reset:?}");
    assert_eq!(
        reset.diagnosis.as_ref().map(|d| d.code.as_str()),
        Some("provider-reset-by-control-panel")
    );

    let failed = &history[1];
    assert_eq!(failed.diagnosis.as_ref(), Some(refused.diagnosis()));
    assert_eq!(failed.server_reply.as_deref(), refused.server_reply());
    assert!(failed.server_reply.as_deref().unwrap().starts_with("535"));

    let sent = &history[2];
    assert!(sent.summary.contains(&report.message_id), "{sent:?}");
    assert_eq!(
        sent.server_reply.as_deref(),
        Some(report.server_reply.as_str())
    );
    assert!(
        history[3].summary.starts_with("Signed in as "),
        "{:?}",
        history[3]
    );

    // Kept by the store: a restarted host reads the same history, and the content of the
    // messages is not in it.
    let again = ms.device(dir.path()).history().unwrap();
    assert_eq!(again, history);
    let shown = format!("{history:?}");
    assert!(!shown.contains("alice@fabrikam.com") && !shown.contains("Übersicht"));
}
