//! The device API of `mfp-host serve` (web/API.md), logged in: each page's data, an Apply
//! from the web panel and one the rules refuse, the control panel's view and its refusal,
//! diagnostics, admin consent, malformed input, and the history.

use serde_json::json;

mod support;
use support::server::Server;

/// Each page answers its data; an Apply goes through the component's rules.
#[test]
fn each_page_answers_its_data_and_applies_follow_the_rules() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();

    // Each page's data.
    let smtp = server.api(&cookie, "GET", "/api/v1/smtp", None).json();
    let settings = smtp["settings"].as_array().unwrap();
    for key in [
        "service-provider",
        "smtp-server",
        "send-port",
        "receive-port",
        "login-credentials",
        "device-email",
    ] {
        let entry = settings
            .iter()
            .find(|e| e["key"] == key)
            .unwrap_or_else(|| panic!("{key}"));
        assert!(
            entry["value"].is_string() && entry.get("locked").is_some(),
            "{entry}"
        );
    }
    assert!(smtp["diagnostics"].is_array());
    let panel = server.api(&cookie, "GET", "/api/v1/control-panel", None);
    assert_eq!(panel.status, 200);
    let panel = panel.json();
    for key in [
        "service-provider",
        "smtp-server",
        "send-port",
        "receive-port",
        "login-credentials",
        "smtp-edits-enabled",
        "notice",
    ] {
        assert!(panel.get(key).is_some(), "{key} in {panel}");
    }
    let diagnostics = server.api(&cookie, "GET", "/api/v1/diagnostics", None);
    assert_eq!(diagnostics.status, 200);
    for d in diagnostics.json().as_array().unwrap() {
        for key in ["code", "severity", "message", "remedy"] {
            assert!(d[key].is_string(), "{d}");
        }
    }
    let consent = server.api(&cookie, "GET", "/api/v1/admin-consent", None);
    assert_eq!(consent.status, 200);
    let consent = consent.json();
    assert!(
        consent["url"]
            .as_str()
            .unwrap()
            .contains("/adminconsent?client_id="),
        "{consent}"
    );
    assert!(consent["needed"].is_boolean() && consent["explanation"].is_string());
    let signin = server.api(&cookie, "GET", "/api/v1/signin", None);
    assert_eq!(signin.json()["code"], "signed-out");

    // One Apply with two invalid fields: 409, `error` as before and `errors` with both.
    let refused = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "receive-port": "abc", "send-port": "0" } })),
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    let refused = refused.json();
    let errors = refused["errors"].as_array().expect("errors");
    let mut fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["receive-port", "send-port"], "{refused}");
    assert_eq!(errors[0], refused["error"], "{refused}");
    assert!(errors.iter().all(|e| e["remedy"].is_string()), "{refused}");

    // One Apply from the web panel (S2), then one the rules refuse (S3), naming the field.
    let applied = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "service-provider": "exchange-online" } })),
    );
    assert_eq!(applied.status, 200, "{}", applied.body);
    let applied = applied.json();
    assert!(applied["notices"].is_array());
    let server_entry = applied["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "smtp-server")
        .unwrap()
        .clone();
    assert_eq!(server_entry["value"], "smtp.office365.com");
    assert!(server_entry["locked"].is_string(), "{server_entry}");
    let refused = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "smtp-server": "mail.example.com" } })),
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    let error = &refused.json()["error"];
    assert_eq!(error["field"], "smtp-server", "{error}");
    assert!(!error["remedy"].as_str().unwrap().is_empty());
    // The control panel shows the server blank (S5) and refuses SMTP edits there.
    let panel = server
        .api(&cookie, "GET", "/api/v1/control-panel", None)
        .json();
    assert_eq!(panel["smtp-server"], "");
    assert_eq!(panel["service-provider"], "exchange-online");
    let refused = server.api(
        &cookie,
        "POST",
        "/api/v1/control-panel",
        Some(json!({ "changes": { "send-port": "25" } })),
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    // Malformed input: 400, nothing changed.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "receive-port": "2525" })),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(server.setting(&cookie, "receive-port"), "25");

    // A server name typed on the control panel resets the provider (S4): the history says
    // so, from which panel, with its diagnosis.
    let history = server.api(&cookie, "GET", "/api/v1/history", None);
    assert_eq!((history.status, history.json()), (200, json!([])));
    let reset = server.api(
        &cookie,
        "POST",
        "/api/v1/control-panel",
        Some(json!({ "changes": { "smtp-server": "mail.example.com" } })),
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    let history = server.api(&cookie, "GET", "/api/v1/history", None).json();
    let entries = history.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    let e = &entries[0];
    assert_eq!(
        (&e["kind"], &e["succeeded"], &e["origin"]),
        (
            &json!("provider-reset"),
            &json!(true),
            &json!("control-panel")
        ),
        "{e}"
    );
    assert!(e["at"].as_u64().unwrap() > 1_700_000_000, "{e}");
    assert!(
        e["summary"].as_str().unwrap().contains("mail.example.com"),
        "{e}"
    );
    assert_eq!(
        e["diagnosis"]["code"], "provider-reset-by-control-panel",
        "{e}"
    );
    assert_eq!(e["server-reply"], serde_json::Value::Null);
}
