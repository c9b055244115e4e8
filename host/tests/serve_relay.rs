//! `GET /api/v1/relay` of `mfp-host serve` (web/API.md): with `--relay-listen` it names the
//! bound address, the allowed ranges, whether devices must authenticate and the last
//! messages relayed (newest first, at most 10); a separate `mfp-host relay` on the same
//! state dir is shown while it runs; without either, `{"listening": false}`. Like every
//! API route, it needs the administrator's login.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

mod support;
use support::server::Server;

/// The relay's address from serve's `relay listening on smtp://ADDR` line.
fn relay_addr(server: &Server) -> String {
    server
        .printed
        .iter()
        .find_map(|line| line.strip_prefix("relay listening on smtp://"))
        .unwrap_or_else(|| panic!("no relay line in {:?}", server.printed))
        .trim()
        .to_owned()
}

/// `GET /api/v1/relay`, logged in: 200 and its JSON.
fn relay_status(server: &Server, cookie: &str) -> Value {
    let reply = server.api(cookie, "GET", "/api/v1/relay", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// One SMTP reply (its lines joined), read up to the line without a continuation dash.
fn read_reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "closed after {reply:?}"
        );
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

/// A device's plain SMTP submission to the relay, as a printer without OAuth makes it: the
/// reply to the final dot, or the first refusal before it.
fn submit(relay: &str, from: &str, to: &[&str]) -> String {
    let stream = TcpStream::connect(relay).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut say = |command: &str, reader: &mut BufReader<TcpStream>| {
        writer.write_all(command.as_bytes()).unwrap();
        read_reply(reader)
    };
    assert!(read_reply(&mut reader).starts_with("220"));
    assert!(say("EHLO scanner.lan\r\n", &mut reader).starts_with("250"));
    let mut commands = vec![format!("MAIL FROM:<{from}>\r\n")];
    commands.extend(to.iter().map(|r| format!("RCPT TO:<{r}>\r\n")));
    for command in commands {
        let reply = say(&command, &mut reader);
        if !reply.starts_with("250") {
            return reply;
        }
    }
    let reply = say("DATA\r\n", &mut reader);
    assert!(reply.starts_with("354"), "{reply}");
    let message = format!(
        "From: {from}\r\nTo: {}\r\nSubject: Scan from the lobby\r\n\r\nThe scan is attached.\r\n.\r\n",
        to.join(", ")
    );
    let reply = say(&message, &mut reader);
    say("QUIT\r\n", &mut reader);
    reply
}

/// The relay inside serve: its address as bound, loopback only, no authentication; then
/// what it relayed, newest first, only relayed messages and at most 10 of them.
#[test]
fn the_relay_route_names_the_bound_address_and_the_last_messages_relayed() {
    let server = Server::start(&["--demo", "--relay-listen", "127.0.0.1:0"]);
    let relay = relay_addr(&server);
    assert!(
        relay.starts_with("127.0.0.1:") && !relay.ends_with(":0"),
        "{relay}"
    );

    // Not logged in: refused like every other API route.
    let reply = server.request("GET", "/api/v1/relay", &[], None);
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.error_code(), "not-logged-in");

    let cookie = server.login();
    assert_eq!(
        relay_status(&server, &cookie),
        json!({
            "listening": true,
            "process": "serve",
            "listen": relay,
            "allow": [],
            "authentication": false,
            "recent": [],
        })
    );

    // Signed in, the demo relays to its stand-in Exchange Online: 11 messages go through,
    // then one From the account may not send as is refused with the component's diagnosis.
    server.demo_sign_in(&cookie);
    for _ in 0..11 {
        let reply = submit(
            &relay,
            "mfp@contoso.com",
            &["a@example.com", "b@example.com"],
        );
        assert!(reply.starts_with("250"), "{reply}");
    }
    let reply = submit(&relay, "someone@example.net", &["a@example.com"]);
    assert!(reply.starts_with("550"), "{reply}");

    let status = relay_status(&server, &cookie);
    assert_eq!(status["listening"], true);
    let recent = status["recent"].as_array().unwrap();
    // The sign-in is in the history too, but the relay lists only what it relayed.
    assert_eq!(recent.len(), 10, "{status}");
    assert!(recent.iter().all(|e| e["kind"] == "relayed"), "{status}");
    let refused = &recent[0];
    assert_eq!(refused["succeeded"], false, "newest first: {status}");
    assert_eq!(
        refused["diagnosis"]["code"], "relay-sender-refused",
        "{refused}"
    );
    assert!(
        !refused["diagnosis"]["remedy"].as_str().unwrap().is_empty(),
        "{refused}"
    );
    for sent in &recent[1..] {
        assert_eq!(sent["succeeded"], true, "{sent}");
        let summary = sent["summary"].as_str().unwrap();
        assert!(summary.contains("2 recipients"), "{summary}");
        // Sender, count and size: never the message's content.
        assert!(!summary.contains("Scan from the lobby"), "{summary}");
        assert!(
            sent["server-reply"].as_str().unwrap().starts_with("250"),
            "{sent}"
        );
    }
    // The history keeps all of them (the route shows the last 10).
    let history = server.api(&cookie, "GET", "/api/v1/history", None).json();
    let relayed = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "relayed")
        .count();
    assert_eq!(relayed, 12, "{history}");
}

/// The allowed ranges and the relay password are what the panel shows.
#[test]
fn the_relay_route_names_the_allowed_ranges_and_that_devices_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("relay-password");
    std::fs::write(&password_file, "printer-secret\n").unwrap();
    let password_file = password_file.display().to_string();
    let server = Server::start(&[
        "--relay-listen",
        "127.0.0.1:0",
        "--relay-allow",
        "127.0.0.0/8",
        "--relay-allow",
        "192.168.10.0/24",
        "--relay-password-file",
        &password_file,
    ]);
    let cookie = server.login();
    let status = relay_status(&server, &cookie);
    assert_eq!(status["listen"], relay_addr(&server), "{status}");
    assert_eq!(status["allow"], json!(["127.0.0.0/8", "192.168.10.0/24"]));
    assert_eq!(status["authentication"], true, "{status}");
    // The password itself never leaves the device.
    assert!(
        !server
            .api(&cookie, "GET", "/api/v1/relay", None)
            .body
            .contains("printer-secret")
    );
}

/// Without `--relay-listen` there is no relay, and the route says only that.
#[test]
fn without_relay_listen_the_route_says_the_relay_is_not_listening() {
    let server = Server::start(&[]);
    assert!(
        !server.printed.iter().any(|l| l.starts_with("relay ")),
        "{:?}",
        server.printed
    );
    assert_eq!(
        server.request("GET", "/api/v1/relay", &[], None).status,
        401
    );
    let cookie = server.login();
    assert_eq!(
        relay_status(&server, &cookie),
        json!({ "listening": false })
    );
}

/// A separate `mfp-host relay` on serve's state dir is shown while it runs, with its pid,
/// address and certificate fingerprint as it printed them; once it is killed (no chance
/// to clean up), the route says no relay runs.
#[test]
fn a_separate_relay_process_is_shown_while_it_runs_and_not_after_it_is_killed() {
    let server = Server::start(&[]);
    let cookie = server.login();
    assert_eq!(
        relay_status(&server, &cookie),
        json!({ "listening": false })
    );

    let mut relay = Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(&server.state_dir)
        .args(["relay", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = BufReader::new(relay.stdout.take().unwrap());
    let (mut listen, mut fingerprint) = (String::new(), String::new());
    while fingerprint.is_empty() {
        let mut line = String::new();
        assert_ne!(printed.read_line(&mut line).unwrap(), 0, "the relay ended");
        if let Some(addr) = line.strip_prefix("relay listening on smtp://") {
            listen = addr.trim().to_owned();
        }
        if let Some(sha) = line.strip_prefix("relay STARTTLS certificate SHA-256 fingerprint: ") {
            fingerprint = sha.trim().to_owned();
        }
    }
    // It announces itself right after printing: wait for it, briefly.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = relay_status(&server, &cookie);
        if status["listening"] == true || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status,
        json!({
            "listening": true,
            "process": "separate",
            "pid": relay.id(),
            "listen": listen,
            "allow": [],
            "authentication": false,
            "fingerprint": fingerprint,
            "recent": [],
        })
    );

    relay.kill().unwrap();
    relay.wait().unwrap();
    assert!(
        server.state_dir.join("relay.json").exists(),
        "left behind by the kill"
    );
    assert_eq!(
        relay_status(&server, &cookie),
        json!({ "listening": false })
    );
}
