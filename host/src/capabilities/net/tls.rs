//! TLS client side: one rustls configuration for the process (ring provider, webpki roots
//! plus the `--ca-file` roots) and the handshake used both for HTTPS and for SMTP STARTTLS
//! (its loop, [`complete_handshake`], also serves the relay's server side).
//!
//! The handshake is driven to completion before any application data is written, so a
//! certificate problem surfaces as `Tls` with rustls's reason (for example
//! `invalid peer certificate: UnknownIssuer`) rather than as a failed write.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::starttls::TlsSide;
use super::{ConfigError, NetError, tcp};

/// Builds the client configuration: webpki roots always, plus every certificate in each
/// extra PEM file. A file with no certificate, or one rustls cannot use, is refused.
pub(super) fn client_config(extra_roots_pem: &[Vec<u8>]) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (index, pem) in extra_roots_pem.iter().enumerate() {
        let error = |reason: String| ConfigError::CaFile {
            file: index + 1,
            reason,
        };
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|err| error(format!("not a readable PEM file: {err}")))?;
            roots.add(cert).map_err(|err| {
                error(format!(
                    "certificate {} is not a usable trust root: {err}",
                    found + 1
                ))
            })?;
            found += 1;
        }
        if found == 0 {
            return Err(error(
                "no certificate found; give a PEM file with -----BEGIN CERTIFICATE----- blocks"
                    .into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ConfigError::Limits(format!("TLS configuration: {err}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Performs the TLS handshake over `sock`, verifying the certificate for `server_name`.
pub(super) fn handshake<S: Read + Write>(
    config: &Arc<ClientConfig>,
    server_name: &str,
    sock: S,
) -> Result<StreamOwned<ClientConnection, S>, NetError> {
    let bare = server_name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(server_name);
    let name = ServerName::try_from(bare.to_owned())
        .map_err(|_| NetError::Tls(format!("{server_name:?} is not a valid TLS server name")))?;
    let conn = ClientConnection::new(config.clone(), name)
        .map_err(|err| NetError::Tls(err.to_string()))?;
    complete_handshake(conn, sock)
}

/// Runs the handshake of `conn` (either side) over `sock` to its end.
pub fn complete_handshake<C: TlsSide, S: Read + Write>(
    mut conn: C,
    mut sock: S,
) -> Result<StreamOwned<C, S>, NetError> {
    while conn.is_handshaking() {
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(NetError::Tls(
                    "the connection closed during the TLS handshake".into(),
                ));
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(NetError::Tls(
                    "the connection closed during the TLS handshake".into(),
                ));
            }
            Err(err) => return Err(tcp::io_error(err)),
        }
    }
    Ok(StreamOwned::new(conn, sock))
}
