//! `mfp-host serve` over real HTTP on 127.0.0.1: the real binary, started with
//! `--listen 127.0.0.1:0` (the bound address is read from its `listening on` line), the
//! administrator's login, the Origin (CSRF) check, the rate limit, every route of
//! web/API.md, the whole `--demo` flow in real time, and the sandbox's limits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::http::{Reply, parse_reply};

const PASSWORD: &str = "correct horse battery staple";

/// A running `mfp-host serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-host"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-password-file"])
            .arg(&password_file)
            .args(extra)
            .env_remove("MFP_ADMIN_PASSWORD")
            .env_remove("MFP_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("mfp-host starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        break addr.trim().to_owned();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(dir.path().join("stderr.log"));
                    panic!("no `listening on` line; stderr: {log:?}");
                }
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Self { child, addr, dir }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// One request on a fresh connection.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        if let Some(body) = body {
            stream.write_all(body.as_bytes()).unwrap();
        }
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        parse_reply(&raw)
    }

    /// Logs in; returns the `Cookie` header value.
    fn login(&self) -> String {
        let reply = self.request(
            "POST",
            "/api/v1/login",
            &[("Origin", &self.origin())],
            Some(&json!({ "password": PASSWORD }).to_string()),
        );
        assert_eq!(reply.status, 204, "{}", reply.body);
        let cookie = reply
            .header("set-cookie")
            .expect("a session cookie")
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let pair = cookie.split(';').next().unwrap().trim().to_owned();
        assert!(pair.starts_with("mfp_session=") && pair.len() == "mfp_session=".len() + 64);
        pair
    }

    /// A logged-in request from the panel's own origin.
    fn api(&self, cookie: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        self.request(
            method,
            path,
            &[("Cookie", cookie), ("Origin", &self.origin())],
            body.as_deref(),
        )
    }

    fn setting(&self, cookie: &str, key: &str) -> String {
        let smtp = self.api(cookie, "GET", "/api/v1/smtp", None);
        assert_eq!(smtp.status, 200, "{}", smtp.body);
        smtp.json()["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no setting {key}"))
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_signin(server: &Server, cookie: &str, until: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.api(cookie, "GET", "/api/v1/signin", None);
        assert_eq!(reply.status, 200, "{}", reply.body);
        let value = reply.json();
        if value["code"] == until {
            return value;
        }
        assert!(Instant::now() < deadline, "still {value}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_panel_needs_the_administrator_and_refuses_cross_site_requests() {
    let server = Server::start(&["--demo"]);
    let origin = server.origin();

    // Not logged in: the API answers 401, pages send the browser to the login page.
    let reply = server.request("GET", "/api/v1/smtp", &[], None);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "not-logged-in");
    assert!(!reply.json()["error"]["remedy"].as_str().unwrap().is_empty());
    for page in ["/", "/index.html", "/demo/mailbox", "/demo/devicelogin"] {
        let reply = server.request("GET", page, &[], None);
        assert_eq!(reply.status, 303, "{page}");
        assert_eq!(reply.header("location"), Some("/login"), "{page}");
    }
    let reply = server.request("GET", "/demo/api/messages", &[], None);
    assert_eq!(reply.status, 401);
    // The login page itself needs no session (404 until the web UI provides it).
    let reply = server.request("GET", "/login", &[], None);
    assert!(matches!(reply.status, 200 | 404), "{}", reply.status);
    // A forged or unknown session is no session.
    let forged = format!("mfp_session={}", "ab".repeat(32));
    assert_eq!(server.api(&forged, "GET", "/api/v1/smtp", None).status, 401);

    // Wrong password: 401, no cookie. No Origin or a foreign one: 403.
    let wrong = json!({ "password": "guess" }).to_string();
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&wrong),
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.error_code(), "wrong-password");
    assert!(reply.header("set-cookie").is_none());
    let right = json!({ "password": PASSWORD }).to_string();
    let reply = server.request("POST", "/api/v1/login", &[], Some(&right));
    assert_eq!(reply.status, 403);
    assert!(reply.header("set-cookie").is_none());
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", "http://evil.example")],
        Some(&right),
    );
    assert_eq!(reply.status, 403);
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some("{not json"),
    );
    assert_eq!(reply.status, 400);

    let cookie = server.login();

    // CSRF: a logged-in mutating request without our Origin is refused and changes nothing.
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();
    let reply = server.request(
        "POST",
        "/api/v1/smtp",
        &[("Cookie", &cookie)],
        Some(&change),
    );
    assert_eq!(reply.status, 403);
    assert_eq!(reply.error_code(), "origin-refused");
    let reply = server.request(
        "POST",
        "/api/v1/smtp",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        Some(&change),
    );
    assert_eq!(reply.status, 403);
    let reply = server.request(
        "DELETE",
        "/api/v1/signin",
        &[
            ("Cookie", &cookie),
            ("Origin", &format!("https://{}", server.addr)),
        ],
        None,
    );
    assert_eq!(reply.status, 403);
    assert_eq!(server.setting(&cookie, "service-provider"), "not-selected");

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

    // Logging out ends the session.
    let reply = server.api(&cookie, "POST", "/api/v1/logout", None);
    assert_eq!(reply.status, 204);
    assert!(reply.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(server.api(&cookie, "GET", "/api/v1/smtp", None).status, 401);

    // The access log names requests, never passwords or session ids.
    let log = server.log();
    assert!(
        log.contains("/api/v1/login") && log.contains("status=401"),
        "{log}"
    );
    let session = cookie.trim_start_matches("mfp_session=");
    assert!(!log.contains(PASSWORD) && !log.contains(session), "{log}");
}

#[test]
fn failed_logins_are_rate_limited_and_nothing_fake_runs_without_demo() {
    let server = Server::start(&[]);
    let origin = server.origin();
    let cookie = server.login();
    // Without --demo there is no /demo/* at all, logged in or not.
    for path in [
        "/demo/devicelogin",
        "/demo/mailbox",
        "/demo/api/messages",
        "/demo/api/scenarios",
    ] {
        assert_eq!(server.api(&cookie, "GET", path, None).status, 404, "{path}");
        assert_eq!(server.request("GET", path, &[], None).status, 404, "{path}");
    }
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/approve",
        Some(json!({ "user-code": "ABC" })),
    );
    assert_eq!(reply.status, 404);

    let wrong = json!({ "password": "guess" }).to_string();
    for _ in 0..5 {
        let reply = server.request(
            "POST",
            "/api/v1/login",
            &[("Origin", &origin)],
            Some(&wrong),
        );
        assert_eq!(reply.status, 401);
    }
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&wrong),
    );
    assert_eq!(reply.status, 429);
    assert_eq!(reply.error_code(), "too-many-login-attempts");
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Even the right password waits now.
    let right = json!({ "password": PASSWORD }).to_string();
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&right),
    );
    assert_eq!(reply.status, 429);
    // An existing session is not affected.
    assert_eq!(
        server
            .api(&cookie, "GET", "/api/v1/control-panel", None)
            .status,
        200
    );
}

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
    let signed_in = wait_for_signin(&server, &cookie, "signed-in");
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
    let failed = wait_for_signin(&server, &cookie, "sign-in-failed");
    for key in ["code", "severity", "message", "remedy"] {
        assert!(failed["diagnosis"][key].is_string(), "{failed}");
    }

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

#[test]
fn a_misbehaving_component_gets_500_and_the_server_stays_up() {
    let runaway = PathBuf::from(mfp_host::component::FIXTURE_RUNAWAY_PATH);
    let runaway = runaway.to_str().unwrap();
    let server = Server::start(&[
        "--component",
        runaway,
        "--call-timeout-ms",
        "300",
        "--memory-limit-mib",
        "16",
    ]);
    let cookie = server.login();
    // settings() loops: stopped at its deadline.
    let reply = server.api(&cookie, "GET", "/api/v1/smtp", None);
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-deadline");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
    // apply() traps.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "receive-port": "2525" } })),
    );
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-trap");
    // diagnostics() hoards memory.
    let reply = server.api(&cookie, "GET", "/api/v1/diagnostics", None);
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-memory-limit");
    // The next call gets a fresh instance.
    let reply = server.api(&cookie, "GET", "/api/v1/control-panel", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Signs the demo in: Exchange Online selected, the code approved, the timer finishing.
fn demo_sign_in(server: &Server, cookie: &str) {
    let reply = server.api(
        cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "service-provider": "exchange-online" } })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let started = server.api(cookie, "POST", "/api/v1/signin", None);
    assert_eq!(started.status, 200, "{}", started.body);
    let user_code = started.json()["user-code"].as_str().unwrap().to_owned();
    let reply = server.api(
        cookie,
        "POST",
        "/demo/api/approve",
        Some(json!({ "user-code": user_code })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for_signin(server, cookie, "signed-in");
}

/// A test email with one attachment of `size` pseudo-random bytes, as a JSON body.
fn large_send_body(size: usize) -> String {
    use base64::Engine;
    let mut data = Vec::with_capacity(size);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < size {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = (size - data.len()).min(8);
        data.extend_from_slice(&v[..n]);
    }
    json!({
        "to": ["alice@contoso.com"],
        "subject": "Large scan",
        "body": "Scanned document attached.",
        "attachments": [{
            "name": "scan.pdf",
            "data-base64": base64::engine::general_purpose::STANDARD.encode(&data),
        }],
    })
    .to_string()
}

/// The SMTP server screen as both panels show it: (server, send port, receive port,
/// login credentials) from `GET /api/v1/smtp`, and the same from `GET /api/v1/control-panel`.
fn smtp_screen(server: &Server, cookie: &str) -> ([String; 4], [String; 4]) {
    let web = server.api(cookie, "GET", "/api/v1/smtp", None);
    assert_eq!(web.status, 200, "{}", web.body);
    let web = web.json();
    let value = |key: &str| {
        web["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no setting {key} in {web}"))
            .to_owned()
    };
    let keys = [
        "smtp-server",
        "send-port",
        "receive-port",
        "login-credentials",
    ];
    let from_web = keys.map(value);
    let panel = server.api(cookie, "GET", "/api/v1/control-panel", None);
    assert_eq!(panel.status, 200, "{}", panel.body);
    let panel = panel.json();
    let from_panel = keys.map(|key| match &panel[key] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    (from_web, from_panel)
}

#[test]
fn a_send_in_progress_does_not_block_the_panel_and_concurrent_applies_end_whole() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Barrier, Mutex};

    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    demo_sign_in(&server, &cookie);

    // An 8 MB scan, sent on its own connection; the sender marks when the whole request
    // is written (the server has it) and when the answer arrived.
    let body = large_send_body(8_000_000);
    let uploaded: Mutex<Option<Instant>> = Mutex::new(None);
    let send_done = AtomicBool::new(false);
    let (sent, answered_during_send, panel_answers) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut stream = TcpStream::connect(&server.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(120)))
                .unwrap();
            let head = format!(
                "POST /api/v1/send HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nCookie: {cookie}\r\nOrigin: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                server.addr,
                server.origin(),
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
            *uploaded.lock().unwrap() = Some(Instant::now());
            let mut raw = Vec::new();
            let read = stream.read_to_end(&mut raw);
            send_done.store(true, Ordering::SeqCst);
            read.unwrap();
            parse_reply(&raw)
        });
        // The panel while the send runs: both views, again and again, until the send
        // answers (bounded). A pair counts when it was asked after the whole send request
        // was written and both answered 200 before the send's answer arrived.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut during = 0;
        let mut answers = 0;
        while !send_done.load(Ordering::SeqCst) && Instant::now() < deadline {
            let asked = Instant::now();
            let web = server.api(&cookie, "GET", "/api/v1/smtp", None);
            let panel = server.api(&cookie, "GET", "/api/v1/control-panel", None);
            assert_eq!(web.status, 200, "{}", web.body);
            assert_eq!(panel.status, 200, "{}", panel.body);
            answers += 1;
            let after_upload = uploaded.lock().unwrap().is_some_and(|at| at <= asked);
            if after_upload && !send_done.load(Ordering::SeqCst) {
                during += 1;
            }
        }
        (sender.join().unwrap(), during, answers)
    });
    assert_eq!(sent.status, 200, "{}", sent.body);
    eprintln!(
        "panel GET pairs answered while the send was in flight: {answered_during_send} (of {panel_answers})"
    );
    let sent = sent.json();
    assert!(sent["size"].as_u64().unwrap() > 8_000_000, "{sent}");
    assert!(
        answered_during_send >= 1,
        "no panel request answered while the send was in flight ({panel_answers} pairs answered in all)"
    );
    let messages = server
        .api(&cookie, "GET", "/demo/api/messages", None)
        .json();
    assert_eq!(messages.as_array().unwrap().len(), 1, "{messages}");

    // Concurrent Applies from the web panel and the control panel, both changing the same
    // four settings (from Not Selected, where the control panel may edit them): whatever
    // the interleaving, the settings end as one of the two Applies whole, never a mix.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "service-provider": "not-selected" } })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    for round in 0..8 {
        let web = [
            format!("web-{round}.example.com"),
            "2525".to_owned(),
            "2110".to_owned(),
            "system".to_owned(),
        ];
        let panel = [
            format!("panel-{round}.example.com"),
            "465".to_owned(),
            "995".to_owned(),
            "remotely-authenticated-user".to_owned(),
        ];
        let changes = |v: &[String; 4]| {
            json!({ "changes": {
                "smtp-server": v[0], "send-port": v[1], "receive-port": v[2], "login-credentials": v[3],
            } })
        };
        let barrier = Barrier::new(2);
        let (web_reply, panel_reply) = std::thread::scope(|scope| {
            let from_web = scope.spawn(|| {
                barrier.wait();
                server.api(&cookie, "POST", "/api/v1/smtp", Some(changes(&web)))
            });
            let from_panel = scope.spawn(|| {
                barrier.wait();
                server.api(
                    &cookie,
                    "POST",
                    "/api/v1/control-panel",
                    Some(changes(&panel)),
                )
            });
            (from_web.join().unwrap(), from_panel.join().unwrap())
        });
        assert_eq!(web_reply.status, 200, "{}", web_reply.body);
        assert_eq!(panel_reply.status, 200, "{}", panel_reply.body);
        let (seen_web, seen_panel) = smtp_screen(&server, &cookie);
        assert_eq!(
            seen_web, seen_panel,
            "the two panels disagree (round {round})"
        );
        assert!(
            seen_web == web || seen_web == panel,
            "round {round}: {seen_web:?} is neither the web panel's Apply {web:?} nor the control panel's {panel:?}"
        );
    }
}

/// The Origin check compares the whole origin: a look-alike that merely starts (or ends)
/// with this server's address is another site. (Issue #8, mutation 4: a prefix match in
/// `host/src/serve/auth.rs` turns this red.)
#[test]
fn look_alike_origins_are_refused_like_any_other_site() {
    let server = Server::start(&[]);
    let addr = server.addr.clone();
    let look_alikes = [
        format!("http://{addr}.evil.example"),
        format!("http://{addr}0"),
        format!("http://{addr}@evil.example"),
        format!("http://evil.example/{addr}"),
        format!("http://{addr}/"),
    ];
    let login = json!({ "password": PASSWORD }).to_string();
    for origin in &look_alikes {
        let reply = server.request("POST", "/api/v1/login", &[("Origin", origin)], Some(&login));
        assert_eq!(reply.status, 403, "{origin}: {}", reply.body);
        assert_eq!(reply.error_code(), "origin-refused", "{origin}");
        assert!(reply.header("set-cookie").is_none(), "{origin}");
    }
    let cookie = server.login();
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();
    for origin in &look_alikes {
        let reply = server.request(
            "POST",
            "/api/v1/smtp",
            &[("Cookie", &cookie), ("Origin", origin)],
            Some(&change),
        );
        assert_eq!(reply.status, 403, "{origin}: {}", reply.body);
        assert_eq!(reply.error_code(), "origin-refused", "{origin}");
    }
    assert_eq!(server.setting(&cookie, "service-provider"), "not-selected");
    // The server's own origin is this server.
    let reply = server.request(
        "POST",
        "/api/v1/smtp",
        &[("Cookie", &cookie), ("Origin", &server.origin())],
        Some(&change),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        server.setting(&cookie, "service-provider"),
        "exchange-online"
    );
}

/// The send route takes who stands at the panel (`user`, `ldap-search`) as `mfp-host send
/// --user/--ldap-search` does, and the From Address policy (S7) decides with them.
#[test]
fn the_send_route_passes_the_walk_up_user_to_the_from_policy() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    demo_sign_in(&server, &cookie);
    let send = |extra: Value| {
        let mut body = json!({ "to": ["alice@contoso.com"], "subject": "S7", "body": "" });
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        server.api(&cookie, "POST", "/api/v1/send", Some(body))
    };
    let messages = || {
        server
            .api(&cookie, "GET", "/demo/api/messages", None)
            .json()
            .as_array()
            .unwrap()
            .len()
    };

    // Bad names, and an LDAP outcome for someone not authenticated, are bad requests.
    let reply = send(json!({ "user": "admin" }));
    assert_eq!(
        (reply.status, reply.error_code()),
        (400, "invalid-request".into()),
        "{}",
        reply.body
    );
    assert_eq!(reply.json()["error"]["field"], "user", "{}", reply.body);
    let reply = send(json!({ "user": "guest", "ldap-search": "failed" }));
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.json()["error"]["field"],
        "ldap-search",
        "{}",
        reply.body
    );

    // "Send despite LDAP failure" = No refuses that user's send; the others still send.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "from.auth-send-despite-ldap-failure": "no" } })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = send(json!({ "user": "authenticated", "ldap-search": "failed" }));
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.error_code(), "send-refused-ldap-search-failed");
    assert_eq!(
        reply.json()["server-reply"],
        Value::Null,
        "refused before connecting"
    );
    assert_eq!(messages(), 0);
    // A guest's edit of From is decided by "guests may edit" (No by default).
    let reply = send(json!({ "user": "guest", "from": "someone.else@contoso.com" }));
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.error_code(), "from-edit-not-allowed");
    assert!(reply.body.contains("from.guest-edit"), "{}", reply.body);
    let reply = send(json!({ "user": "authenticated" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(messages(), 1);
}
