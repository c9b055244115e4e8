//! The stand-ins over real TCP and TLS, driven by hand the way the device does: a rustls
//! client trusting only the run-time test CA, HTTPS to the identity fake, and an SMTP
//! dialogue with STARTTLS and AUTH XOAUTH2 using a token the identity fake issued.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mfp_fakes::net::{
    Clock, LoopbackMicrosoft, TestCa, spawn_exchange, spawn_exchange_on, spawn_identity,
    spawn_identity_on,
};
use mfp_fakes::{Approval, Scenario, World};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::Value;

const SCOPE: &str = "https://outlook.office.com/SMTP.Send offline_access openid profile email";
const CLIENT: &str = "9e5f94bc-e8a4-4e73-b8be-63364c29d753";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A clock the test moves by hand, starting at the real time.
fn manual_clock() -> (Clock, Arc<AtomicU64>) {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let millis = Arc::new(AtomicU64::new(start.as_millis() as u64));
    let read = millis.clone();
    (
        Arc::new(move || Duration::from_millis(read.load(Ordering::SeqCst))),
        millis,
    )
}

fn tls_to(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    name: &'static str,
    tcp: Option<TcpStream>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let tcp = tcp.unwrap_or_else(|| TcpStream::connect(addr).expect("connect"));
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let conn =
        ClientConnection::new(config, ServerName::try_from(name).expect("name")).expect("client");
    StreamOwned::new(conn, tcp)
}

/// POSTs a form over HTTPS as `login.microsoftonline.com`; returns status and JSON body.
fn post(addr: SocketAddr, ca: &TestCa, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut tls = tls_to(
        addr,
        ca.client_config().expect("client config"),
        "login.microsoftonline.com",
        None,
    );
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: login.microsoftonline.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).expect("write");
    let mut response = Vec::new();
    tls.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn device_code_flow_over_https_approves_after_two_polls() {
    let ca = TestCa::generate().expect("CA");
    let world = World::new(Scenario {
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    let (clock, millis) = manual_clock();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = spawn_identity_on(listener, world, &ca, clock).expect("identity");

    let (status, code) = post(
        server.addr(),
        &ca,
        "/common/oauth2/v2.0/devicecode",
        &[("client_id", CLIENT), ("scope", SCOPE)],
    );
    assert_eq!(status, 200);
    assert_eq!(code["interval"], 5);
    let device_code = code["device_code"].as_str().unwrap_or_default().to_string();
    let poll = || {
        post(
            server.addr(),
            &ca,
            "/common/oauth2/v2.0/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", CLIENT),
                ("device_code", &device_code),
            ],
        )
    };
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        millis.fetch_add(5_000, Ordering::SeqCst);
        let (status, body) = poll();
        outcomes.push((
            status,
            body["error"].as_str().unwrap_or("tokens").to_string(),
        ));
        if status == 200 {
            assert!(body["access_token"].as_str().unwrap_or_default().len() > 2500);
            assert!(
                body["id_token"]
                    .as_str()
                    .unwrap_or_default()
                    .split('.')
                    .count()
                    == 3
            );
        }
    }
    assert_eq!(
        outcomes,
        [
            (400, "authorization_pending".into()),
            (400, "authorization_pending".into()),
            (200, "tokens".into())
        ]
    );
    server.stop();
}

/// Reads one complete SMTP reply (all its lines) from `stream`.
fn reply(stream: &mut impl Read) -> String {
    let mut text = Vec::new();
    let mut line_start = 0;
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).expect("read reply") == 0 {
            break;
        }
        text.push(byte[0]);
        if byte[0] == b'\n' {
            let line = &text[line_start..];
            if line.len() >= 4 && line[3] == b' ' {
                break;
            }
            line_start = text.len();
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn say(stream: &mut (impl Read + Write), line: &str) -> String {
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .expect("write");
    stream.flush().expect("flush");
    reply(stream)
}

#[test]
fn smtp_dialogue_with_starttls_and_xoauth2_delivers_the_message() {
    let ca = TestCa::generate().expect("CA");
    let world = World::new(Scenario::default());
    let (identity_addr, identity) = spawn_identity(world.clone(), &ca).expect("identity");
    let (smtp_addr, exchange) = spawn_exchange(world.clone(), &ca).expect("exchange");

    // Sign in: device code, approval page, one poll.
    let (_, code) = post(
        identity_addr,
        &ca,
        "/organizations/oauth2/v2.0/devicecode",
        &[("client_id", CLIENT), ("scope", SCOPE)],
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let account = world
        .approve(code["user_code"].as_str().unwrap_or_default(), now)
        .expect("approve");
    let (status, tokens) = post(
        identity_addr,
        &ca,
        "/organizations/oauth2/v2.0/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", CLIENT),
            (
                "device_code",
                code["device_code"].as_str().unwrap_or_default(),
            ),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap_or_default();

    // SMTP in plain text up to STARTTLS.
    let mut tcp = TcpStream::connect(smtp_addr).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    assert!(reply(&mut tcp).starts_with("220 "));
    let ehlo = say(&mut tcp, "EHLO printer.local");
    assert!(ehlo.contains("250-STARTTLS\r\n") && !ehlo.contains("AUTH"));
    assert!(
        say(&mut tcp, "AUTH XOAUTH2").starts_with("530 5.7.0 Must issue a STARTTLS command first")
    );
    assert_eq!(say(&mut tcp, "STARTTLS"), "220 2.0.0 SMTP server ready\r\n");

    // TLS on the same socket, verified against the test CA as smtp.office365.com.
    let mut tls = tls_to(
        smtp_addr,
        ca.client_config().expect("client config"),
        "smtp.office365.com",
        Some(tcp),
    );
    let ehlo = say(&mut tls, "EHLO printer.local");
    assert!(ehlo.contains("250-AUTH LOGIN XOAUTH2\r\n") && !ehlo.contains("STARTTLS"));
    let blob = STANDARD.encode(format!(
        "user={}\x01auth=Bearer {token}\x01\x01",
        account.upn
    ));
    assert_eq!(say(&mut tls, "AUTH XOAUTH2"), "334 \r\n");
    assert_eq!(
        say(&mut tls, &blob),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(world.open_sessions(&account.upn), 1);
    assert_eq!(
        say(&mut tls, &format!("MAIL FROM:<{}>", account.upn)),
        "250 2.1.0 Sender OK\r\n"
    );
    assert_eq!(
        say(&mut tls, "RCPT TO:<someone@fabrikam.com>"),
        "250 2.1.5 Recipient OK\r\n"
    );
    assert!(say(&mut tls, "DATA").starts_with("354 "));
    let sent = say(
        &mut tls,
        &format!(
            "From: <{}>\r\nSubject: Scan\r\n\r\n..a stuffed dot\r\n.",
            account.upn
        ),
    );
    assert!(
        sent.starts_with("250 2.0.0 OK <") && sent.contains("[Hostname="),
        "{sent}"
    );
    assert_eq!(
        say(&mut tls, "QUIT"),
        "221 2.0.0 Service closing transmission channel\r\n"
    );
    drop(tls);

    let messages = world.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]
            .raw
            .as_deref()
            .unwrap_or_default()
            .ends_with(b"\r\n\r\n.a stuffed dot\r\n")
    );
    exchange.stop();
    identity.stop();
    // The concurrent-session slot is given back when the connection thread ends, just
    // after it sent 221.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while world.open_sessions(&account.upn) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(world.open_sessions(&account.upn), 0);
}

#[test]
fn the_ca_pem_is_a_certificate_and_stopped_servers_refuse_connections() {
    let ca = TestCa::generate().expect("CA");
    assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let (clock, _) = manual_clock();
    let server =
        spawn_exchange_on(listener, World::new(Scenario::default()), &ca, clock).expect("exchange");
    let addr = server.addr();
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    assert!(reply(&mut tcp).contains("Microsoft ESMTP MAIL Service ready at"));
    server.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

/// The address a `HOST:PORT=ADDR:PORT` rule sends `host:port` to.
fn resolved(rules: &[String], host: &str, port: u16) -> SocketAddr {
    let from = format!("{host}:{port}=");
    let rule = rules
        .iter()
        .find(|r| r.starts_with(&from))
        .unwrap_or_else(|| panic!("no rule for {host}:{port} in {rules:?}"));
    rule[from.len()..].parse().expect("ADDR:PORT")
}

#[test]
fn loopback_microsoft_is_reached_by_its_rules_and_pem_under_microsofts_names() {
    let (clock, seconds) = mfp_fakes::net::manual_clock(1_900_000_000);
    let ms = LoopbackMicrosoft::start_with_clock(
        World::new(Scenario {
            approval: Approval::AfterPolls(0),
            ..Scenario::default()
        }),
        clock,
    )
    .expect("loopback Microsoft");
    assert_eq!(ms.authority(), "https://login.microsoftonline.com");
    assert_eq!(ms.now(), Duration::from_secs(1_900_000_000));
    seconds.fetch_add(5, Ordering::SeqCst);
    assert_eq!(
        ms.now(),
        Duration::from_secs(1_900_000_005),
        "the hand clock"
    );

    let rules = ms.resolve_rules();
    let identity = resolved(&rules, "login.microsoftonline.com", 443);
    let smtp = resolved(&rules, "smtp.office365.com", 587);
    assert!(identity.ip().is_loopback() && smtp.ip().is_loopback());
    assert_eq!((identity, smtp), (ms.identity_addr(), ms.exchange_addr()));

    // A client that trusts only the PEM it was given verifies both under Microsoft's names.
    let mut roots = rustls::RootCertStore::empty();
    let pem = String::from_utf8(ms.ca_pem().to_vec()).expect("PEM is text");
    let der = STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("PEM body");
    roots.add(der.into()).expect("root");
    let config = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let (status, code) = post(
        identity,
        ms.ca(),
        "/common/oauth2/v2.0/devicecode",
        &[("client_id", CLIENT), ("scope", SCOPE)],
    );
    assert_eq!(status, 200, "{code}");
    let mut tls = tls_to(identity, config.clone(), "login.microsoftonline.com", None);
    tls.write_all(b"GET / HTTP/1.1\r\nHost: login.microsoftonline.com\r\n\r\n")
        .expect("TLS to the identity platform");
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).expect("an answer");
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
    let mut tcp = TcpStream::connect(smtp).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    assert!(reply(&mut tcp).starts_with("220 "));
    assert!(say(&mut tcp, "STARTTLS").starts_with("220 "));
    let mut tls = tls_to(smtp, config, "smtp.office365.com", Some(tcp));
    assert!(say(&mut tls, "EHLO printer.local").contains("XOAUTH2"));

    // Switching the case switches the world, live.
    assert_eq!(ms.case(), None);
    ms.set_case(mfp_fakes::Case::PersonalAccount);
    assert_eq!(ms.case(), Some(mfp_fakes::Case::PersonalAccount));
    assert_eq!(ms.world().accounts()[0].upn, "mfp.scanner@outlook.com");
}
