//! Evidence for the egress allowlist (issue #12): a call granted the identity platform
//! (`https://login.microsoftonline.com`) and one SMTP server (`smtp.office365.com:587`),
//! both mapped to loopback with `--resolve` as the tests and the demo do, asks for every
//! other destination an attacker could think of. Each is refused with the typed `denied`
//! error naming it, and no connection is made: listeners on every loopback port involved
//! (the granted servers' own ports included, reached by address instead of name) count
//! their accepts, and must count none.
//!
//! This goes through `NetGrant`, the one place the `net` import checks destinations: the
//! component's `http-request`, `connection.connect` and `start-tls` are served by it 1:1
//! (`wit_adapter.rs` maps `NetError::Denied` to WIT `net-error::denied`).

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mfp_host::capabilities::net::{HttpRequest, Net, NetConfig, NetError, NetGrant, ResolveRule};

/// A loopback listener that counts the connections it accepts (and what they sent).
struct Trap {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
}

impl Trap {
    fn bind(addr: &str) -> Option<Self> {
        let listener = TcpListener::bind(addr).ok()?;
        let addr = listener.local_addr().ok()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let (a, r) = (accepted.clone(), received.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { break };
                a.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = sock.read(&mut buf) {
                        r.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        Some(Self {
            addr,
            accepted,
            received,
        })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

fn request(url: &str) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("Accept".into(), "application/json".into())],
        body: b"client_id=x&device_code=secret".to_vec(),
    }
}

/// What a send call is granted: the authority and the SMTP server, both on loopback.
struct Rig {
    grant: NetGrant,
    /// No SMTP server: what every panel and sign-in call gets.
    identity_only: NetGrant,
    identity: Trap,
    smtp: Trap,
    other: Trap,
    other_v6: Option<Trap>,
}

impl Rig {
    fn new() -> Self {
        let identity = Trap::bind("127.0.0.1:0").unwrap();
        let smtp = Trap::bind("127.0.0.1:0").unwrap();
        let other = Trap::bind("127.0.0.1:0").unwrap();
        let other_v6 = Trap::bind("[::1]:0");
        let config = NetConfig {
            resolve: vec![
                ResolveRule::parse(&format!(
                    "login.microsoftonline.com:443=127.0.0.1:{}",
                    identity.port()
                ))
                .unwrap(),
                ResolveRule::parse(&format!("smtp.office365.com:587=127.0.0.1:{}", smtp.port()))
                    .unwrap(),
            ],
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
            ..NetConfig::default()
        };
        let net = Net::new(config).unwrap();
        Self {
            grant: net.grant(Some(("smtp.office365.com".into(), 587))),
            identity_only: net.grant(None),
            identity,
            smtp,
            other,
            other_v6,
        }
    }

    fn traps(&self) -> Vec<&Trap> {
        let mut traps = vec![&self.identity, &self.smtp, &self.other];
        traps.extend(self.other_v6.as_ref());
        traps
    }

    fn accepted(&self) -> Vec<usize> {
        self.traps().iter().map(|t| t.accepted()).collect()
    }
}

/// Lets a connection that was (wrongly) made reach the trap's accept loop before counting.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn every_destination_outside_the_grant_is_denied_by_name_without_a_connection() {
    let rig = Rig::new();
    let other = rig.other.port();
    let identity = rig.identity.port();
    let smtp = rig.smtp.port();
    let v6 = rig.other_v6.as_ref().map_or(other, Trap::port);

    // HTTPS: anything but https://login.microsoftonline.com(:443).
    let https: Vec<(String, String)> = vec![
        // other ports on loopback, and the granted servers' ports by address
        (
            format!("https://127.0.0.1:{other}/"),
            format!("127.0.0.1:{other}"),
        ),
        (
            format!("https://127.0.0.1:{identity}/common/oauth2/v2.0/token"),
            format!("127.0.0.1:{identity}"),
        ),
        (
            format!("https://localhost:{other}/"),
            format!("localhost:{other}"),
        ),
        ("https://127.0.0.1/".into(), "127.0.0.1:443".into()),
        // ::1 and IPv4-mapped IPv6
        (format!("https://[::1]:{v6}/"), format!("[::1]:{v6}")),
        ("https://[::1]/".into(), "[::1]:443".into()),
        (
            format!("https://[::ffff:127.0.0.1]:{identity}/"),
            format!("[::ffff:127.0.0.1]:{identity}"),
        ),
        // decimal, octal and hex spellings of 127.0.0.1
        (
            format!("https://2130706433:{other}/"),
            format!("2130706433:{other}"),
        ),
        (
            format!("https://0177.0.0.1:{other}/"),
            format!("0177.0.0.1:{other}"),
        ),
        (
            format!("https://0x7f.0.0.1:{other}/"),
            format!("0x7f.0.0.1:{other}"),
        ),
        (format!("https://127.1:{other}/"), format!("127.1:{other}")),
        // link-local and private literals (the cloud metadata address among them)
        (
            "https://169.254.169.254/latest/meta-data/".into(),
            "169.254.169.254:443".into(),
        ),
        ("https://[fe80::1]/".into(), "[fe80::1]:443".into()),
        ("https://10.0.0.1/".into(), "10.0.0.1:443".into()),
        ("https://192.168.1.1/".into(), "192.168.1.1:443".into()),
        ("https://172.16.0.1/".into(), "172.16.0.1:443".into()),
        ("https://[fd00::1]/".into(), "[fd00::1]:443".into()),
        ("https://0.0.0.0/".into(), "0.0.0.0:443".into()),
        // the granted name on another port, another scheme, and look-alike names
        (
            "https://login.microsoftonline.com:8443/".into(),
            "login.microsoftonline.com:8443".into(),
        ),
        (
            "http://login.microsoftonline.com/common".into(),
            "http://login.microsoftonline.com".into(),
        ),
        (
            "https://login.microsoftonline.com.evil.example/".into(),
            "login.microsoftonline.com.evil.example:443".into(),
        ),
        (
            "https://login.microsoftonline.com./".into(),
            "login.microsoftonline.com.:443".into(),
        ),
        (
            "https://evil-login.microsoftonline.com/".into(),
            "evil-login.microsoftonline.com:443".into(),
        ),
        ("https://evil.example/".into(), "evil.example:443".into()),
        // a name the --resolve rules do not map, and the SMTP server over HTTPS
        (
            "https://login.windows.net/common/oauth2/v2.0/token".into(),
            "login.windows.net:443".into(),
        ),
        (
            "https://smtp.office365.com:587/".into(),
            "smtp.office365.com:587".into(),
        ),
        (
            format!("https://smtp.office365.com:{smtp}/"),
            format!("smtp.office365.com:{smtp}"),
        ),
    ];
    for (url, named) in &https {
        let err = rig.grant.http_request(request(url)).unwrap_err();
        assert_eq!(err, NetError::Denied(named.clone()), "{url}");
    }

    // SMTP: anything but smtp.office365.com:587.
    let smtp_denied: Vec<(String, u16, String)> = vec![
        ("127.0.0.1".into(), other, format!("127.0.0.1:{other}")),
        ("127.0.0.1".into(), smtp, format!("127.0.0.1:{smtp}")),
        ("localhost".into(), 587, "localhost:587".into()),
        ("::1".into(), v6, format!("[::1]:{v6}")),
        ("[::1]".into(), 587, "[::1]:587".into()),
        (
            "::ffff:127.0.0.1".into(),
            smtp,
            format!("[::ffff:127.0.0.1]:{smtp}"),
        ),
        ("2130706433".into(), 587, "2130706433:587".into()),
        ("169.254.169.254".into(), 80, "169.254.169.254:80".into()),
        ("fe80::1".into(), 587, "[fe80::1]:587".into()),
        ("10.1.2.3".into(), 25, "10.1.2.3:25".into()),
        (
            "smtp.office365.com".into(),
            25,
            "smtp.office365.com:25".into(),
        ),
        (
            "smtp.office365.com".into(),
            465,
            "smtp.office365.com:465".into(),
        ),
        (
            "smtp.office365.com".into(),
            smtp,
            format!("smtp.office365.com:{smtp}"),
        ),
        (
            "smtp.office365.com.".into(),
            587,
            "smtp.office365.com.:587".into(),
        ),
        (
            "smtp-mail.outlook.com".into(),
            587,
            "smtp-mail.outlook.com:587".into(),
        ),
        (
            "login.microsoftonline.com".into(),
            443,
            "login.microsoftonline.com:443".into(),
        ),
        (
            "smtp.office365.com.evil.example".into(),
            587,
            "smtp.office365.com.evil.example:587".into(),
        ),
    ];
    for (host, port, named) in &smtp_denied {
        let err = match rig.grant.connect(host, *port) {
            Err(err) => err,
            Ok(_) => panic!("{host}:{port} was connected"),
        };
        assert_eq!(err, NetError::Denied(named.clone()), "{host}:{port}");
    }
    // A call granted no SMTP server (panel and sign-in calls) reaches none, not even the
    // configured one.
    let err = match rig.identity_only.connect("smtp.office365.com", 587) {
        Err(err) => err,
        Ok(_) => panic!("connected without an SMTP grant"),
    };
    assert_eq!(err, NetError::Denied("smtp.office365.com:587".into()));

    settle();
    assert_eq!(
        rig.accepted(),
        vec![0; rig.traps().len()],
        "no connection was made"
    );
    let total = https.len() + smtp_denied.len() + 1;
    assert!(total >= 20, "{total} destinations");
    println!(
        "egress: {total} destinations denied ({} HTTPS, {} SMTP, 1 without an SMTP grant), 0 connections",
        https.len(),
        smtp_denied.len()
    );
}

#[test]
fn start_tls_for_another_name_than_the_granted_server_is_denied_before_any_handshake() {
    let rig = Rig::new();
    let mut conn = rig.grant.connect("smtp.office365.com", 587).unwrap();
    settle();
    assert_eq!(rig.smtp.accepted(), 1, "the granted server is reachable");
    for name in [
        "login.microsoftonline.com",
        "evil.example",
        "127.0.0.1",
        "smtp.office365.com.evil.example",
        "outlook.office365.com",
    ] {
        let err = conn.start_tls(name, Duration::from_secs(2)).unwrap_err();
        assert_eq!(
            err,
            NetError::Denied(format!("{name}:587")),
            "start-tls {name}"
        );
    }
    settle();
    assert_eq!(rig.smtp.received(), 0, "no TLS ClientHello was sent");
    // The granted name itself is allowed (in any case): the handshake is attempted, and
    // fails here only because the trap speaks no TLS.
    let err = conn
        .start_tls("SMTP.Office365.com", Duration::from_secs(1))
        .unwrap_err();
    assert!(!matches!(err, NetError::Denied(_)), "{err:?}");
    settle();
    assert!(rig.smtp.received() > 0, "the ClientHello went out");
}

#[test]
fn urls_that_hide_a_destination_are_refused_before_connecting() {
    // Not `denied`: the URL cannot be read as one destination, so it names none.
    let rig = Rig::new();
    let other = rig.other.port();
    for url in [
        format!("https://login.microsoftonline.com@127.0.0.1:{other}/"),
        format!("https://login.microsoftonline.com:443@127.0.0.1:{other}/"),
        "https://user:pw@login.microsoftonline.com/".into(),
        format!("https://127.0.0.1:{other}\\@login.microsoftonline.com/"),
        format!("https://login.microsoftonline.com%2f@127.0.0.1:{other}/"),
        "https://login.microsoftonline.com\r\nHost: evil.example/".into(),
        "https://login.microsoftonline.com\0.evil.example/".into(),
        "https://lоgin.microsoftonline.com/".into(),
        "//login.microsoftonline.com/".into(),
    ] {
        let err = rig.grant.http_request(request(&url)).unwrap_err();
        assert!(
            matches!(&err, NetError::Other(m) if m.starts_with("invalid request URL")),
            "{url:?}: {err:?}"
        );
    }
    settle();
    assert_eq!(rig.accepted(), vec![0; rig.traps().len()]);
}

#[test]
fn the_granted_destinations_do_connect_so_the_traps_count() {
    // Without this, a trap that never counts would make the tests above pass vacuously.
    let rig = Rig::new();
    let err = rig
        .grant
        .http_request(request(
            "https://LOGIN.microsoftonline.com:443/common/discovery",
        ))
        .unwrap_err();
    assert!(!matches!(err, NetError::Denied(_)), "{err:?}");
    drop(rig.grant.connect("smtp.office365.com", 587).unwrap());
    let _ = TcpStream::connect(rig.other.addr).unwrap();
    settle();
    assert_eq!(
        (
            rig.identity.accepted(),
            rig.smtp.accepted(),
            rig.other.accepted()
        ),
        (1, 1, 1)
    );
}
