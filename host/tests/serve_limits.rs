//! Slow clients (slowloris, issue #12): a client that never finishes its headers, or
//! trickles a body, is cut off; connections past the cap are refused at once and served
//! again when one closes; and answers that take long (a send waiting for the server's
//! slow reply to the final dot, a stream of send events) are never cut. The figures are
//! shortened here with hidden test flags (headers and body 1 s, 4 connections); the
//! defaults are 10 s, 30 s and 64.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::http::parse_reply;
use support::server::Server;

/// Short read timeouts, so that a test waits seconds, not the defaults.
const SHORT: [&str; 4] = [
    "--header-read-timeout-secs",
    "1",
    "--body-read-timeout-secs",
    "1",
];

/// Reads until the server closes the connection, for at most `bound` (far above the
/// figure under test, so only a missing limit reaches it): what arrived, or `None` when
/// the connection was still open at the bound.
fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(raw),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            // A reset closes it too.
            Err(_) => return Some(raw),
        }
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let server = Server::start(&SHORT);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(format!("GET /login HTTP/1.1\r\nHost: {}\r\nX-Slow: ", server.addr).as_bytes())
        .unwrap();
    let cut = read_until_closed(&mut slow, Duration::from_secs(30));
    assert!(cut.is_some(), "the connection was still open after 30 s");
    // A connection that says nothing at all is closed too.
    let mut silent = TcpStream::connect(&server.addr).unwrap();
    assert!(read_until_closed(&mut silent, Duration::from_secs(30)).is_some());
    // The server goes on serving.
    assert_eq!(server.request("GET", "/login", &[], None).status, 200);
}

#[test]
fn a_body_that_trickles_in_gets_408_and_the_connection_closes() {
    let server = Server::start(&SHORT);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    // A login that declares 60 KB and sends one byte.
    slow.write_all(
        format!(
            "POST /api/v1/login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{",
            addr = server.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let raw = read_until_closed(&mut slow, Duration::from_secs(30))
        .expect("the connection was still open after 30 s");
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert_eq!(reply.error_code(), "request-body-timeout");
    assert!(reply.header("set-cookie").is_none());
    assert_eq!(server.request("GET", "/login", &[], None).status, 200);
}

#[test]
fn connections_past_the_cap_are_refused_at_once_and_served_again_when_one_closes() {
    let server = Server::start(&["--max-connections", "4"]);
    // Four connections that send nothing hold every slot (the header timeout, 10 s here,
    // would free them later).
    let mut idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let mut fifth = TcpStream::connect(&server.addr).unwrap();
    fifth
        .write_all(
            format!(
                "GET /login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .as_bytes(),
        )
        .unwrap();
    let raw = read_until_closed(&mut fifth, Duration::from_secs(30)).expect("answered");
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.error_code(), "too-many-connections");

    // One idle connection closes: its slot serves the next client.
    drop(idle.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.request("GET", "/login", &[], None);
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(Instant::now() < deadline, "no slot came free");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The events of a Server-Sent Events body: (name, data).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).ok()?))
        })
        .collect()
}

#[test]
fn answers_that_take_long_are_never_cut() {
    let mut args = SHORT.to_vec();
    args.push("--demo");
    let server = Server::start(&args);
    let cookie = server.login();
    server.demo_sign_in(&cookie);
    // The fake Exchange Online answers the final dot after 3 s: longer than both timeouts.
    let reply = server.api(
        &cookie,
        "POST",
        "/demo/api/scenario",
        Some(json!({ "name": "smtp-slow-final-reply" })),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let email = json!({ "to": ["alice@contoso.com"], "subject": "slow server" });
    let reply = server.api(&cookie, "POST", "/api/v1/send", Some(email.clone()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["message-id"].is_string(), "{}", reply.body);
    let reply = server.request(
        "POST",
        "/api/v1/send",
        &[
            ("Cookie", &cookie),
            ("Origin", &server.origin()),
            ("Accept", "text/event-stream"),
        ],
        Some(&email.to_string()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let seen = events(&reply.body);
    let (last, result) = seen.last().expect("a result event");
    assert_eq!(last, "result", "{seen:?}");
    assert_eq!(result["status"], 200, "{result}");
}
