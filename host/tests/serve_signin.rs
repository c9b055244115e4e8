//! The whole `--demo` flow of `mfp-host serve` in real time: Open Authentication Page, the
//! demo's device-login page, the server's own sign-in timer finishing (or failing) the
//! sign-in, a test email reaching the fake Exchange Online, scenarios, signing out; and
//! the demo's own state dir, apart from the device's.

use serde_json::{Value, json};

mod support;
use support::server::{Launch, Server, password_dir};

#[test]
fn the_demo_signs_in_sends_and_explains_failures() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    server.select_exchange_online(&cookie);

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

    // A new sign-in can be cancelled: the account signed in before stays.
    let before = server.api(&cookie, "GET", "/api/v1/signin", None).json();
    assert_eq!(before["code"], "signed-in", "{before}");
    let reply = server.api(&cookie, "POST", "/api/v1/signin", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let waiting = server.api(&cookie, "GET", "/api/v1/signin", None).json();
    assert_eq!(waiting["code"], "sign-in-in-progress", "{waiting}");
    assert_eq!(waiting["account"], before["account"], "{waiting}");
    let reply = server.api(&cookie, "POST", "/api/v1/signin/cancel", None);
    assert_eq!(reply.status, 204, "{}", reply.body);
    let after = server.api(&cookie, "GET", "/api/v1/signin", None).json();
    assert_eq!(after["code"], "signed-in", "{after}");
    assert_eq!(after["account"], before["account"], "{after}");

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
    // The same diagnosis, its remedy in each surface's own words.
    for key in ["code", "severity", "message"] {
        assert_eq!(
            status["diagnosis"][key], failed["diagnosis"][key],
            "{status}"
        );
    }
    let web = failed["diagnosis"]["remedy"].as_str().unwrap();
    let cli = status["diagnosis"]["remedy"].as_str().unwrap();
    assert!(web.contains("[Open Authentication Page]"), "{web}");
    assert!(
        cli.contains("`mfp-host auth login`") && !cli.contains('['),
        "{cli}"
    );
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

/// The demo's approval page tells the end the panel will show: a scenario whose sign-in is
/// blocked, declined, expired or refused by the device never reads "Signed in as" there,
/// and the sign-in then fails with that diagnosis; only a sign-in that succeeds does.
#[test]
fn the_demo_approval_page_tells_the_outcome_the_panel_shows() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    server.select_exchange_online(&cookie);

    // (scenario, outcome kind, words on the page, the panel's diagnosis; none: signed in)
    let cases = [
        (
            "aadsts-53003",
            "refused",
            "Blocked by Conditional Access",
            Some("sign-in-blocked-by-conditional-access"),
        ),
        ("declined", "declined", "Declined", Some("sign-in-declined")),
        ("expired", "expired", "Expired", Some("sign-in-expired")),
        (
            "id-token-wrong-audience",
            "id-token-rejected",
            "Refused by the printer",
            Some("sign-in-id-token-audience"),
        ),
        ("manual-approval", "signed-in", "Signed in as", None),
    ];
    for (scenario, kind, words, diagnosis) in cases {
        let reply = server.api(
            &cookie,
            "POST",
            "/demo/api/scenario",
            Some(json!({ "name": scenario })),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let page = server.api(&cookie, "GET", "/demo/devicelogin", None);
        assert!(
            page.body.contains(scenario),
            "{scenario}: the page names the scenario"
        );

        let started = server.api(&cookie, "POST", "/api/v1/signin", None);
        assert_eq!(started.status, 200, "{scenario}: {}", started.body);
        let user_code = started.json()["user-code"].as_str().unwrap().to_owned();
        let approved = server.api(
            &cookie,
            "POST",
            "/demo/api/approve",
            Some(json!({ "user-code": user_code })),
        );
        assert_eq!(approved.status, 200, "{scenario}: {}", approved.body);
        let approved = approved.json();
        assert_eq!(approved["outcome"]["kind"], kind, "{scenario}: {approved}");
        let result = approved["result"].as_str().unwrap();
        assert!(result.starts_with(words), "{scenario}: {result}");

        match diagnosis {
            Some(code) => {
                assert!(!result.contains("Signed in as"), "{scenario}: {result}");
                assert!(
                    result.contains("Nobody is signed in"),
                    "{scenario}: {result}"
                );
                let failed = server.wait_for_signin(&cookie, "sign-in-failed");
                assert_eq!(failed["diagnosis"]["code"], code, "{scenario}: {failed}");
            }
            None => {
                let signed_in = server.wait_for_signin(&cookie, "signed-in");
                assert!(
                    result.contains(signed_in["account"]["upn"].as_str().unwrap()),
                    "{result} / {signed_in}"
                );
            }
        }
    }

    // Declining says so, and the panel says the same.
    let started = server.api(&cookie, "POST", "/api/v1/signin", None);
    let user_code = started.json()["user-code"].as_str().unwrap().to_owned();
    let declined = server
        .api(
            &cookie,
            "POST",
            "/demo/api/approve",
            Some(json!({ "user-code": user_code, "decline": true })),
        )
        .json();
    assert_eq!(declined["outcome"]["kind"], "declined", "{declined}");
    assert!(
        declined["result"]
            .as_str()
            .unwrap()
            .starts_with("You declined"),
        "{declined}"
    );
    let failed = server.wait_for_signin(&cookie, "sign-in-failed");
    assert_eq!(failed["diagnosis"]["code"], "sign-in-declined", "{failed}");
}

/// `legacy-send-as-reply` gives what its name promises through the demo: the older
/// `554 5.2.0 …SendAsDeniedException` wording after DATA, diagnosed as SendAsDenied, for a
/// sender the account may not send as (a walk-up user's From, as the panel's From field
/// sends it).
#[test]
fn the_legacy_send_as_scenario_replies_554_5_2_0_through_the_demo() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    server.demo_sign_in(&cookie);
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "from.edit-without-auth": "yes" } })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (scenario, wording) in [
        (
            "legacy-send-as-reply",
            "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException",
        ),
        ("smtp-send-as-denied", "554 5.2.252 SendAsDenied"),
    ] {
        let reply = server.api(
            &cookie,
            "POST",
            "/demo/api/scenario",
            Some(json!({ "name": scenario })),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let failed = server.api(
            &cookie,
            "POST",
            "/api/v1/send",
            Some(json!({ "to": ["alice@contoso.com"], "from": "ceo@contoso.com", "subject": scenario, "body": "" })),
        );
        assert_eq!(failed.status, 422, "{scenario}: {}", failed.body);
        let failed = failed.json();
        assert_eq!(
            failed["error"]["code"], "smtp-send-as-denied",
            "{scenario}: {failed}"
        );
        assert!(
            failed["server-reply"]
                .as_str()
                .unwrap()
                .starts_with(wording),
            "{scenario}: {failed}"
        );
    }
}

/// `serve --demo` prints the command line's flags for the demo and writes them, with the
/// test CA, to its state dir: the printed command reaches the same device and the same
/// stand-ins (its `--resolve` rules and `--ca-file`), so the README's session runs
/// against the demo.
#[test]
fn serve_demo_prints_the_command_line_that_runs_against_it() {
    let server = Server::start(&["--demo"]);
    let prefix = "demo: for the command line: mfp-host ";
    let line = server
        .printed
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}…` line in {:?}", server.printed))
        .to_owned();
    let state_dir = std::fs::canonicalize(&server.state_dir).unwrap();
    assert!(
        line.contains(&format!("--state-dir {}", state_dir.display())),
        "{line}"
    );
    assert!(
        line.contains("--resolve login.microsoftonline.com:443=127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains("--resolve smtp.office365.com:587=127.0.0.1:"),
        "{line}"
    );
    let ca = state_dir.join("demo-ca.pem");
    assert!(
        line.contains(&format!("--ca-file {}", ca.display())),
        "{line}"
    );
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(
        std::fs::read_to_string(state_dir.join("demo-cli-flags"))
            .unwrap()
            .trim(),
        line
    );

    let cookie = server.login();
    server.demo_sign_in(&cookie);
    // The printed flags, read by a shell as an administrator would paste them.
    let run = |args: &str| {
        let command = format!("'{}' {line} {args}", env!("CARGO_BIN_EXE_mfp-host"));
        std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
            .unwrap()
    };
    let status = run("auth status --json");
    assert!(status.status.success(), "{status:?}");
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["code"], "signed-in", "{status}");
    let upn = status["account"]["upn"].as_str().unwrap().to_owned();
    assert_eq!(upn, server.setting(&cookie, "device-email"));

    // The send goes to the demo's Exchange Online, through the resolve rule and the CA.
    let sent = run("send --to alice@contoso.com --subject 'Sent from the command line'");
    assert!(sent.status.success(), "{sent:?}");
    let messages = server
        .api(&cookie, "GET", "/demo/api/messages", None)
        .json();
    assert!(
        messages
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["subject"] == "Sent from the command line"),
        "{messages}"
    );
}

/// `serve --demo` without `--state-dir` keeps its state in a dir of its own (`demo/` in
/// the default state dir): signing the demo in writes its fake tokens and fake Device
/// Email Address there, never into the real device's state. (Issue #12: before, it wrote
/// them into the device's.)
#[test]
fn serve_demo_keeps_its_own_state_apart_from_the_devices() {
    let (dir, password_file) = password_dir();
    let home = dir.path().join("home");
    let xdg = dir.path().join("xdg-state");
    let device_state = xdg.join("mfp-smtp-oauth");
    let (home_s, xdg_s) = (home.display().to_string(), xdg.display().to_string());
    let env = [
        ("HOME", home_s.as_str()),
        ("XDG_STATE_HOME", xdg_s.as_str()),
    ];
    let server = Server::launch(&Launch {
        password_file: &password_file,
        serve: &["--demo"],
        env: &env,
        ..Launch::default()
    })
    .unwrap();
    let demo_state = std::fs::canonicalize(device_state.join("demo")).unwrap();
    let line = server
        .printed
        .iter()
        .find(|l| l.starts_with("demo: for the command line:"))
        .unwrap();
    assert!(
        line.contains(&format!("--state-dir {}", demo_state.display())),
        "{line}"
    );
    let cookie = server.login();
    server.demo_sign_in(&cookie);
    assert!(!server.setting(&cookie, "device-email").is_empty());
    assert!(demo_state.join("state.sqlite3").exists());
    // The device's own state dir holds the demo's dir and nothing else.
    let entries: Vec<String> = std::fs::read_dir(&device_state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["demo"], "{entries:?}");
    drop(server);
    // The device (the same default state dir, without --demo) is not signed in and has
    // no Device Email Address.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .args(["auth", "status", "--json"])
        .envs(env)
        .env_remove("MFP_LOG")
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["code"], "signed-out", "{status}");
}
