//! HTTPS requests to `mfp-host serve` in tests: a rustls client that trusts either the one
//! certificate whose SHA-256 fingerprint the server printed (as an administrator checks a
//! self-signed certificate in the browser), or a test CA.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::client::raw_request;
use super::http::{Reply, parse_reply};

/// `AB:CD:…`, as `serve` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts exactly the certificate with this fingerprint (and checks the handshake's
/// signatures against it).
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate {got} is not the pinned {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// An HTTPS client of the server at `addr` (`127.0.0.1:PORT`).
pub struct TlsClient {
    pub addr: String,
    config: Arc<ClientConfig>,
    /// The name the TLS handshake asks for (SNI and, with a CA, the name checked).
    name: ServerName<'static>,
}

impl TlsClient {
    /// Trusts only the certificate with `fingerprint`.
    pub fn pinned(addr: &str, fingerprint: &str) -> Self {
        let provider = provider();
        let verifier = Pinned {
            fingerprint: fingerprint.to_owned(),
            algorithms: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Self::new(addr, config, "localhost")
    }

    /// Trusts the CA `ca` and checks the certificate is valid for `name`.
    pub fn trusting(addr: &str, ca: CertificateDer<'static>, name: &str) -> Self {
        let mut roots = RootCertStore::empty();
        roots.add(ca).unwrap();
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self::new(addr, config, name)
    }

    fn new(addr: &str, config: ClientConfig, name: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            config: Arc::new(config),
            name: ServerName::try_from(name.to_owned()).unwrap(),
        }
    }

    /// `https://ADDR`.
    pub fn origin(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// One request on a fresh connection (`Host` is the address); the TLS handshake's
    /// failure is `Err`.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, String> {
        let tcp = TcpStream::connect(&self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let connection =
            rustls::ClientConnection::new(self.config.clone(), self.name.clone()).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        stream
            .write_all(&raw_request(&self.addr, method, path, headers, body))
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 << 10];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A peer that closes without close_notify, after a whole answer.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {
                    break;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(parse_reply(&raw))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("HTTPS request failed: {e}"))
    }
}
