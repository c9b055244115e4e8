//! Component tests of rules S1–S7: the real component, through wasmtime and the host's
//! SQLite store, as the device runs it.

use std::sync::{Arc, Mutex};

use mfp_component_tests::{PanelErrorKind, ServiceProvider, TestDevice, refusal, value_of};
use mfp_host::bindings::types::{LoginCredentials, Severity};
use mfp_host::device::Device;

fn codes(notices: &[mfp_host::bindings::types::Diagnostic]) -> Vec<&str> {
    notices.iter().map(|n| n.code.as_str()).collect()
}

#[test]
fn selecting_exchange_online_sets_office365_587_and_keeps_the_receive_port() {
    let t = TestDevice::new();
    t.web(&[
        ("smtp-server", "mail.example.com"),
        ("send-port", "2525"),
        ("receive-port", "110"),
    ])
    .unwrap();
    let outcome = t.web(&[("service-provider", "exchange-online")]).unwrap();
    assert_eq!(t.value("service-provider"), "exchange-online");
    assert_eq!(t.value("smtp-server"), "smtp.office365.com");
    assert_eq!(t.value("send-port"), "587");
    assert_eq!(t.value("receive-port"), "110");
    assert!(codes(&outcome.notices).contains(&"exchange-online-selected"));
    let server = outcome
        .settings
        .iter()
        .find(|e| e.key == "smtp-server")
        .unwrap();
    assert!(
        server
            .locked
            .as_deref()
            .unwrap()
            .contains("Exchange Online/Outlook.com")
    );
}

#[test]
fn server_and_send_port_are_refused_under_exchange_naming_the_field_but_receive_port_is_editable() {
    let t = TestDevice::new();
    t.web(&[("service-provider", "exchange-online")]).unwrap();

    let err = refusal(t.web(&[("smtp-server", "mail.example.com")]).unwrap_err());
    assert_eq!(err.kind, PanelErrorKind::FixedByProvider);
    assert_eq!(err.field.as_deref(), Some("smtp-server"));
    assert_eq!(err.code, "smtp-server-fixed");
    assert!(
        err.message.contains("SMTP Server") && err.message.contains("Exchange Online/Outlook.com")
    );
    assert!(!err.remedy.web_panel.is_empty());

    let err = refusal(t.web(&[("send-port", "25")]).unwrap_err());
    assert_eq!(
        (err.field.as_deref(), err.code.as_str()),
        (Some("send-port"), "send-port-fixed")
    );

    t.web(&[("receive-port", "2525")]).unwrap();
    assert_eq!(t.value("receive-port"), "2525");
    assert_eq!(t.value("smtp-server"), "smtp.office365.com");
    assert_eq!(t.value("send-port"), "587");
}

#[test]
fn typing_a_server_on_the_control_panel_resets_the_provider_and_signs_out() {
    let t = TestDevice::new();
    t.web(&[("service-provider", "exchange-online")]).unwrap();
    // Stand in for a signed-in account until sign-in lands (issue 4).
    t.device
        .store()
        .commit(&[
            ("oauth/grant".into(), Some(b"grant".to_vec())),
            ("oauth/account".into(), Some(b"acct".to_vec())),
        ])
        .unwrap();

    let outcome = t.control(&[("smtp-server", "mail.example.com")]).unwrap();
    assert_eq!(codes(&outcome.notices), ["provider-reset-by-control-panel"]);
    assert_eq!(t.value("service-provider"), "not-selected");
    assert_eq!(t.value("smtp-server"), "mail.example.com");
    assert_eq!(t.device.store().get("oauth/grant").unwrap(), None);
    assert_eq!(t.device.store().get("oauth/account").unwrap(), None);
}

#[test]
fn control_panel_shows_the_server_blank_under_exchange_and_refuses_other_smtp_edits() {
    let t = TestDevice::new();
    t.web(&[("smtp-server", "mail.example.com")]).unwrap();
    let view = t.device.control_panel_view().unwrap();
    assert_eq!(view.smtp_server, "mail.example.com");
    assert!(view.smtp_edits_enabled);

    t.web(&[("service-provider", "exchange-online")]).unwrap();
    let view = t.device.control_panel_view().unwrap();
    assert_eq!(view.service_provider, ServiceProvider::ExchangeOnline);
    assert_eq!(view.smtp_server, "");
    assert_eq!(view.send_port, 587);
    assert!(!view.smtp_edits_enabled);
    assert!(view.notice.unwrap().contains("Not Selected"));

    let err = refusal(t.control(&[("send-port", "25")]).unwrap_err());
    assert_eq!(
        (err.kind, err.code.as_str()),
        (
            PanelErrorKind::NotEnabledOnControlPanel,
            "control-panel-locked"
        )
    );
    let err = refusal(
        t.control(&[("service-provider", "not-selected")])
            .unwrap_err(),
    );
    assert_eq!(err.code, "web-panel-only");
    assert_eq!(t.value("service-provider"), "exchange-online");
}

#[test]
fn remotely_authenticated_user_is_switched_to_system_with_a_notice() {
    let t = TestDevice::new();
    t.web(&[("login-credentials", "remotely-authenticated-user")])
        .unwrap();
    let outcome = t.web(&[("service-provider", "exchange-online")]).unwrap();
    assert_eq!(t.value("login-credentials"), "system");
    let notice = outcome
        .notices
        .iter()
        .find(|n| n.code == "login-credentials-switched-to-system")
        .unwrap();
    assert_eq!(notice.severity, Severity::Warning);
    assert!(notice.remedy.web_panel.contains("control panel"));
}

#[test]
fn remote_user_set_back_on_the_control_panel_is_diagnosed_as_an_error_naming_system() {
    let t = TestDevice::new();
    t.web(&[("service-provider", "exchange-online")]).unwrap();
    t.control(&[("login-credentials", "remotely-authenticated-user")])
        .unwrap();
    assert_eq!(
        t.device.control_panel_view().unwrap().login_credentials,
        LoginCredentials::RemotelyAuthenticatedUser
    );
    let found = t.device.diagnostics().unwrap();
    assert_eq!(found[0].code, "login-credentials-not-system");
    assert_eq!(found[0].severity, Severity::Error);
    assert!(found[0].remedy.web_panel.contains("[System]"));
}

#[test]
fn from_policy_warnings_appear_and_disappear() {
    let t = TestDevice::new();
    let has_warning = |t: &TestDevice| {
        t.device
            .diagnostics()
            .unwrap()
            .iter()
            .any(|d| d.code == "send-as-denied-risk")
    };

    t.web(&[("from.guest-edit", "yes")]).unwrap();
    assert!(
        !has_warning(&t),
        "no SendAsDenied risk without Exchange Online"
    );
    t.web(&[("service-provider", "exchange-online")]).unwrap();
    assert!(has_warning(&t));
    t.web(&[("from.guest-edit", "no")]).unwrap();
    assert!(!has_warning(&t));
    t.web(&[("from.edit-without-auth", "yes")]).unwrap();
    assert!(has_warning(&t));
    t.web(&[("from.alias-sender", "yes")]).unwrap();
    assert!(
        !has_warning(&t),
        "an alias or proxy sender address is not a risk"
    );
}

#[test]
fn settings_survive_a_restart_with_the_same_state_dir() {
    let t = TestDevice::new();
    t.web(&[
        ("service-provider", "exchange-online"),
        ("receive-port", "2525"),
        ("tenant", "contoso.onmicrosoft.com"),
    ])
    .unwrap();
    drop(t.device.settings());
    let restarted = t.reopen();
    assert_eq!(value_of(&restarted, "service-provider"), "exchange-online");
    assert_eq!(value_of(&restarted, "receive-port"), "2525");
    assert_eq!(value_of(&restarted, "tenant"), "contoso.onmicrosoft.com");
}

#[test]
fn s10_defaults_are_the_seeds_and_configurable() {
    let t = TestDevice::new();
    assert_eq!(t.value("client-id"), "c88859d7-e6a2-48cb-acee-669df3387654");
    assert_eq!(
        t.value("consent-redirect-uri"),
        "https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html"
    );
    assert_eq!(t.value("tenant"), "common");
    t.web(&[
        ("client-id", "11111111-2222-3333-4444-555555555555"),
        (
            "consent-redirect-uri",
            "https://printer.contoso.com/consent",
        ),
    ])
    .unwrap();
    assert_eq!(t.value("client-id"), "11111111-2222-3333-4444-555555555555");
}

/// Every Apply writes a server name and two ports that carry the same number, so a
/// mixed state (parts of two Applies) is visible as a mismatch.
/// One read of the settings, so the three values come from the same state.
fn consistent(device: &Device) -> (String, String, String) {
    let entries = device.settings().unwrap();
    let value = |key: &str| entries.iter().find(|e| e.key == key).unwrap().value.clone();
    let (server, send, receive) = (
        value("smtp-server"),
        value("send-port"),
        value("receive-port"),
    );
    let number = server
        .split('.')
        .next()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        (send.as_str(), receive.as_str()),
        (number.as_str(), number.as_str()),
        "mixed state: {server} {send} {receive}"
    );
    (server, send, receive)
}

#[test]
fn interleaved_web_and_control_panel_applies_end_in_the_latest_one_whole() {
    let t = TestDevice::new();
    t.web(&[
        ("smtp-server", "start-100.example.com"),
        ("send-port", "100"),
        ("receive-port", "100"),
    ])
    .unwrap();
    let last = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for (origin, base) in [("web", 1000u32), ("cp", 2000u32)] {
            let device = t.reopen();
            let last = last.clone();
            scope.spawn(move || {
                for i in 0..40 {
                    let n = (base + i).to_string();
                    let server = format!("{origin}-{n}.example.com");
                    let pairs = [
                        ("smtp-server", server.as_str()),
                        ("send-port", n.as_str()),
                        ("receive-port", n.as_str()),
                    ];
                    let changes = mfp_component_tests::owned(&pairs);
                    let o = if origin == "web" {
                        mfp_component_tests::Origin::WebPanel
                    } else {
                        mfp_component_tests::Origin::ControlPanel
                    };
                    device.apply(o, &changes).unwrap();
                    consistent(&device);
                }
                last.lock()
                    .unwrap()
                    .push(format!("{origin}-{}.example.com", base + 39));
            });
        }
    });
    let (server, _, _) = consistent(&t.device);
    assert!(
        last.lock().unwrap().contains(&server),
        "final state {server} is not the last Apply of either panel"
    );
}

#[test]
fn concurrent_applies_of_different_settings_both_land() {
    // Each Apply reads, decides and commits only if nothing landed meanwhile (S1): an
    // Apply from the control panel never silently undoes one from the web panel.
    let t = TestDevice::new();
    std::thread::scope(|scope| {
        let (web, control) = (t.reopen(), t.reopen());
        scope.spawn(move || {
            for i in 0..50 {
                let port = (3000 + i).to_string();
                web.apply(
                    mfp_component_tests::Origin::WebPanel,
                    &mfp_component_tests::owned(&[("receive-port", &port)]),
                )
                .unwrap();
            }
        });
        scope.spawn(move || {
            for i in 0..50 {
                let port = (4000 + i).to_string();
                control
                    .apply(
                        mfp_component_tests::Origin::ControlPanel,
                        &mfp_component_tests::owned(&[("send-port", &port)]),
                    )
                    .unwrap();
            }
        });
    });
    assert_eq!(
        (t.value("receive-port"), t.value("send-port")),
        ("3049".to_owned(), "4049".to_owned())
    );
}
