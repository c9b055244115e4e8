//! `POST /api/v1/send` of `mfp-host serve`: a large send does not block the panel,
//! concurrent Applies from both panels end whole, and the walk-up user reaches the From
//! Address policy (S7).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::client::Client;
use support::http::parse_reply;
use support::server::Server;

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
fn smtp_screen(server: &Client, cookie: &str) -> ([String; 4], [String; 4]) {
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
    server.demo_sign_in(&cookie);

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

/// The send route takes who stands at the panel (`user`, `ldap-search`) as `mfp-host send
/// --user/--ldap-search` does, and the From Address policy (S7) decides with them.
#[test]
fn the_send_route_passes_the_walk_up_user_to_the_from_policy() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    server.demo_sign_in(&cookie);
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
    // The web panel names the field by its label, never by its setting key.
    assert!(
        reply
            .body
            .contains("[Allow Guest Users to Edit [From:] Field]")
            && !reply.body.contains("from.guest-edit"),
        "{}",
        reply.body
    );
    let reply = send(json!({ "user": "authenticated" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(messages(), 1);
}

/// The events of a `text/event-stream` answer, as (name, data as JSON).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data = serde_json::from_str(d.trim()).ok();
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[test]
fn a_streamed_send_reports_each_attempt_and_ends_with_the_result_the_plain_route_gives() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    server.demo_sign_in(&cookie);
    let streamed = |body: Value| {
        server.request(
            "POST",
            "/api/v1/send",
            &[
                ("Cookie", &cookie),
                ("Origin", &server.origin()),
                ("Accept", "text/event-stream"),
            ],
            Some(&body.to_string()),
        )
    };

    let reply = streamed(json!({ "to": ["alice@contoso.com"], "subject": "streamed" }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        reply.headers
    );
    let seen = events(&reply.body);
    assert_eq!(
        seen.first().map(|(n, _)| n.as_str()),
        Some("attempt"),
        "{seen:?}"
    );
    let (last, result) = seen.last().expect("a result");
    assert_eq!(last, "result", "{seen:?}");
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["attempts"], 1, "{result}");
    assert!(result["body"]["message-id"].is_string(), "{result}");
    assert!(result["elapsed-ms"].is_u64(), "{result}");

    // A refusal ends the stream with the status and body of the plain route.
    let reply = streamed(json!({ "to": [], "subject": "nobody" }));
    let seen = events(&reply.body);
    let (last, result) = seen.last().expect("a result");
    assert_eq!(last, "result", "{seen:?}");
    assert_eq!(result["status"], 422, "{result}");
    assert_eq!(result["body"]["error"]["code"], "no-recipients", "{result}");
}
