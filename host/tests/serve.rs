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

const PASSWORD: &str = "correct horse battery staple";

/// A running `mfp-host serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    dir: tempfile::TempDir,
}

/// An HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
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

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..line_end])
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
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
