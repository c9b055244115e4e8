//! `mfp-host serve`'s door: the administrator's login (wrong password, sessions, logout),
//! the Origin (CSRF) check, look-alike origins, failed logins slowed down without ever
//! locking the administrator out, no `/demo/*` without `--demo`, and an access log that
//! never names a password or a session.

use serde_json::json;

mod support;
use support::client::PASSWORD;
use support::server::Server;

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

/// The growing delay's bound (`login_throttle::MAX_DELAY`): the longest any client waits.
const MAX_DELAY_SECS: u64 = 30;

#[test]
fn failed_logins_slow_down_without_locking_the_administrator_out_and_nothing_fake_runs_without_demo()
 {
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
    let right = json!({ "password": PASSWORD }).to_string();
    let attempt =
        |body: &str| server.request("POST", "/api/v1/login", &[("Origin", &origin)], Some(body));
    // A few typos cost nothing; then each failure asks for a wait before the next try.
    for _ in 0..3 {
        assert_eq!(attempt(&wrong).status, 401);
    }
    let reply = attempt(&wrong);
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert_eq!(reply.error_code(), "too-many-login-attempts");
    // The wait is for everyone at this address, the administrator too; hammering it
    // does not lengthen it.
    let mut longest = 0;
    for _ in 0..20 {
        let reply = attempt(&right);
        assert_eq!(reply.status, 429, "{}", reply.body);
        let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=MAX_DELAY_SECS).contains(&wait), "{wait}");
        longest = longest.max(wait);
    }
    // Waiting as told, the guesser fails again and waits longer each time, never past the
    // bound...
    let wait_then = |body: &str| {
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(2 * MAX_DELAY_SECS);
        loop {
            let reply = attempt(body);
            if reply.status != 429 {
                return reply;
            }
            let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=MAX_DELAY_SECS).contains(&wait), "{wait}");
            assert!(std::time::Instant::now() < deadline, "still waiting");
            std::thread::sleep(std::time::Duration::from_secs(wait));
        }
    };
    assert_eq!(wait_then(&wrong).status, 401);
    let reply = attempt(&right);
    assert_eq!(reply.status, 429);
    let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!(
        wait > longest.saturating_sub(1) && wait <= MAX_DELAY_SECS,
        "{wait} after {longest}"
    );
    // ...and the administrator at the same address, waiting as told, logs in.
    let reply = wait_then(&right);
    assert_eq!(reply.status, 204, "{}", reply.body);
    // A success clears the record: the next typo costs nothing.
    assert_eq!(attempt(&wrong).status, 401);
    // An existing session is not affected.
    assert_eq!(
        server
            .api(&cookie, "GET", "/api/v1/control-panel", None)
            .status,
        200
    );
}

/// The Origin check compares the whole origin: a look-alike that merely starts (or ends)
/// with this server's address is another site. (Issue #8, mutation 4: a prefix match in
/// `host/src/serve/admin_login.rs` turns this red.)
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
