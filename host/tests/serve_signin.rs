//! The whole `--demo` flow of `mfp-host serve` in real time: Open Authentication Page, the
//! demo's device-login page, the server's own sign-in timer finishing (or failing) the
//! sign-in, a test email reaching the fake Exchange Online, scenarios, signing out.

use serde_json::{Value, json};

mod support;
use support::server::Server;

#[test]
fn the_demo_signs_in_sends_and_explains_failures() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();

    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "service-provider": "exchange-online" } })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    // Open Authentication Page: the code and the demo's own device-login page.
    let started = server.api(&cookie, "POST", "/api/v1/signin", None);
    assert_eq!(started.status, 200, "{}", started.body);
    let started = started.json();
    let user_code = started["user-code"].as_str().unwrap().to_owned();
    assert_eq!(
        started["verification-uri"],
        format!("http://{}/demo/devicelogin", server.addr)
    );
    assert_eq!(started["interval"], 2);
    assert!(started["expires-at"].as_u64().unwrap() > 0);
    assert!(!started.to_string().contains("device_code"));
    let page = server.api(&cookie, "GET", "/demo/devicelogin", None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Enter code"));
    let progress = server.api(&cookie, "GET", "/api/v1/signin", None).json();
    assert_eq!(progress["code"], "sign-in-in-progress", "{progress}");
    assert_eq!(progress["user-code"], user_code.as_str());

    // A wrong code is refused; the right one approves.
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/approve",
        Some(json!({ "user-code": "NOPE1234" })),
    );
    assert_eq!(reply.status, 409);
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/approve",
        Some(json!({ "user-code": user_code })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let account = reply.json()["account"].as_str().unwrap().to_owned();

    // The server's own timer polls at the interval and finishes the sign-in.
    let signed_in = server.wait_for_signin(&cookie, "signed-in");
    assert_eq!(signed_in["account"]["upn"], account.as_str(), "{signed_in}");
    assert!(signed_in["warnings"].is_array());
    let text = signed_in.to_string();
    assert!(
        !text.contains("access_token") && !text.contains("refresh"),
        "{text}"
    );
    assert_eq!(server.setting(&cookie, "device-email"), account);

    // A test email with a small attachment reaches the fake Exchange Online.
    let sent = server.api(
        &cookie,
        "POST",
        "/api/v1/send",
        Some(json!({
            "to": ["alice@contoso.com"],
            "subject": "Scan from the demo",
            "body": "Scanned document attached.",
            "attachments": [{ "name": "scan.txt", "data-base64": "aGVsbG8gc2Nhbg==" }],
        })),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    let sent = sent.json();
    assert!(sent["message-id"].is_string());
    assert_eq!(sent["accepted"], json!(["alice@contoso.com"]));
    assert!(
        sent["server-reply"].as_str().unwrap().starts_with("250"),
        "{sent}"
    );
    assert!(sent["size"].as_u64().unwrap() > 0);
    let messages = server.api(&cookie, "GET", "/demo/api/messages", None);
    assert_eq!(messages.status, 200);
    let messages = messages.json();
    let list = messages.as_array().unwrap();
    assert_eq!(list.len(), 1, "{messages}");
    assert_eq!(list[0]["to"], json!(["alice@contoso.com"]));
    assert_eq!(list[0]["subject"], "Scan from the demo");
    assert_eq!(list[0]["attachments"], json!(["scan.txt"]));
    assert!(list[0]["from"].as_str().unwrap().contains(&account));
    assert!(list[0]["size"].as_u64().unwrap() > 0 && list[0]["received-at"].as_u64().unwrap() > 0);
    let mailbox = server.api(&cookie, "GET", "/demo/mailbox", None);
    assert_eq!(mailbox.status, 200);
    assert!(mailbox.body.contains("Scan from the demo"));

    // Malformed attachments are refused before anything is sent.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/send",
        Some(json!({ "to": ["a@b.c"], "attachments": [{ "name": "x", "data-base64": "***" }] })),
    );
    assert_eq!(reply.status, 400);

    // Scenarios: listed, switched; a send then fails with its diagnosis and remedy.
    let scenarios = server
        .api(&cookie, "GET", "/demo/api/scenarios", None)
        .json();
    let names: Vec<&str> = scenarios
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"happy") && names.contains(&"smtp-auth-disabled-tenant"),
        "{names:?}"
    );
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/scenario",
        Some(json!({ "name": "no-such-case" })),
    );
    assert_eq!(reply.status, 400);
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/scenario",
        Some(json!({ "name": "smtp-auth-disabled-tenant" })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let scenarios = server
        .api(&cookie, "GET", "/demo/api/scenarios", None)
        .json();
    let current: Vec<&Value> = scenarios
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["name"], "smtp-auth-disabled-tenant");
    let failed = server.api(
        &cookie,
        "POST",
        "/api/v1/send",
        Some(json!({ "to": ["alice@contoso.com"], "subject": "again", "body": "" })),
    );
    assert_eq!(failed.status, 422, "{}", failed.body);
    let failed = failed.json();
    assert!(!failed["error"]["code"].as_str().unwrap().is_empty());
    assert!(
        !failed["error"]["remedy"].as_str().unwrap().is_empty(),
        "{failed}"
    );
    assert!(
        failed["server-reply"].as_str().unwrap().contains("5.7.139"),
        "{failed}"
    );
    assert_eq!(
        server
            .api(&cookie, "GET", "/demo/api/messages", None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A declined sign-in ends in sign-in-failed with its diagnosis.
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/scenario",
        Some(json!({ "name": "declined" })),
    );
    assert_eq!(reply.status, 200);
    let reply = server.api(&cookie, "POST", "/api/v1/signin", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let failed = server.wait_for_signin(&cookie, "sign-in-failed");
    for key in ["code", "severity", "message", "remedy"] {
        assert!(failed["diagnosis"][key].is_string(), "{failed}");
    }
    assert_eq!(failed["diagnosis"]["code"], "sign-in-declined", "{failed}");
    // The account signed in before is still signed in, and says so.
    assert!(failed["account"]["username"].is_string(), "{failed}");
    // The component keeps the failure: the command line sees it too, not only this server.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(&server.state_dir)
        .args(["auth", "status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["code"], "sign-in-failed", "{status}");
    assert_eq!(status["diagnosis"], failed["diagnosis"], "{status}");
    assert_eq!(status["account"], failed["account"], "{status}");

    // Signing out.
    assert_eq!(
        server.api(&cookie, "DELETE", "/api/v1/signin", None).status,
        204
    );
    assert_eq!(
        server.api(&cookie, "GET", "/api/v1/signin", None).json()["code"],
        "signed-out"
    );
}
