//! Test fixtures shared by the `net` tests: a throw-away CA with leaf certificates (rcgen),
//! rustls and plain servers on 127.0.0.1, and a `NetConfig` that trusts the CA and points
//! the real names at those servers with `--resolve` rules, as the host's tests will.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{NetConfig, ResolveRule};

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.issuer.pem().into_bytes()
    }

    /// A rustls server configuration with a leaf certificate for `names`, issued by this CA.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server certificate");
        Arc::new(config)
    }
}

/// Defaults for tests: the CA trusted, short timeouts, and each `(HOST:PORT, local port)`
/// resolved to 127.0.0.1.
pub fn net_config(ca: &TestCa, resolve: &[(&str, u16)]) -> NetConfig {
    NetConfig {
        extra_roots_pem: vec![ca.pem()],
        resolve: resolve
            .iter()
            .map(|(from, port)| {
                ResolveRule::parse(&format!("{from}=127.0.0.1:{port}")).expect("rule")
            })
            .collect(),
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        ..NetConfig::default()
    }
}

pub fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("local address").port();
    (listener, port)
}

/// A port on 127.0.0.1 with nothing listening.
pub fn closed_port() -> u16 {
    listener().1
}

/// Server side of a TLS connection over an accepted socket, handshake included.
pub fn accept_tls(
    config: &Arc<ServerConfig>,
    mut sock: TcpStream,
) -> Option<StreamOwned<ServerConnection, TcpStream>> {
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut conn = ServerConnection::new(config.clone()).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).ok()?;
    }
    Some(StreamOwned::new(conn, sock))
}

/// Reads one HTTP request (head plus `Content-Length` body) as raw bytes.
pub fn read_request(stream: &mut impl Read) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return raw,
        }
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if stream.read_exact(&mut body).is_ok() {
        raw.extend(body);
    }
    raw
}

/// An HTTPS server on 127.0.0.1 that answers `connections` connections, one request each,
/// with `respond(request)`, and returns the raw requests it received when joined.
pub fn https_server(
    config: Arc<ServerConfig>,
    connections: usize,
    respond: impl Fn(&[u8]) -> Vec<u8> + Send + 'static,
) -> (u16, JoinHandle<Vec<Vec<u8>>>) {
    let (listener, port) = listener();
    let handle = thread::spawn(move || {
        let mut requests = Vec::new();
        for _ in 0..connections {
            let Ok((sock, _)) = listener.accept() else {
                break;
            };
            let Some(mut stream) = accept_tls(&config, sock) else {
                continue;
            };
            let request = read_request(&mut stream);
            let _ = stream.write_all(&respond(&request));
            stream.conn.send_close_notify();
            let _ = stream.flush();
            requests.push(request);
        }
        requests
    });
    (port, handle)
}
