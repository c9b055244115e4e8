//! The device's TLS certificate (rustls, ring), for the panel's HTTPS and the relay's
//! STARTTLS: the administrator's certificate
//! (`--tls-cert`/`--tls-key`), or, as printers do, a self-signed one made at the first
//! start and kept in the state dir, so that its fingerprint stays the same from one start
//! to the next. `serve` prints the SHA-256 fingerprint at every start: the browser shows
//! the same one for the certificate it got, which is how the administrator checks that
//! no one is in between before accepting it.
//!
//! The self-signed key and certificate live in one file, [`SELF_SIGNED_FILE`], mode 0600,
//! written whole to a temporary file and linked into place without replacing an existing
//! one: two first starts racing both end up with the one that was linked first, and a crash
//! leaves either no file or a whole one. A file that others may read is refused (its key
//! may be known), with the remedy of removing it.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::frontend::Failure;
use crate::state_dir::{self, StateDirProblem};

/// The self-signed certificate and its key, in the state dir.
pub(crate) const SELF_SIGNED_FILE: &str = "panel-tls.pem";

/// Where the certificate came from, for what `serve` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `--tls-cert` and `--tls-key`.
    Given,
    /// Made at this start and kept at this path.
    SelfSignedNew(PathBuf),
    /// Made at an earlier start, kept at this path.
    SelfSignedKept(PathBuf),
}

/// The panel's TLS configuration.
pub(crate) struct PanelTls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate (DER), as browsers show it: `AB:CD:…`.
    pub fingerprint: String,
    pub origin: Origin,
}

fn tls_error(code: &str, message: String, remedy: &str) -> Failure {
    Failure::device_fault(code, message, remedy)
}

/// `AB:CD:…`: the SHA-256 of `der`, upper-case hex bytes joined by colons.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A rustls server configuration for HTTP/1.1 with this chain and key.
fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The chain and key in `pem` (certificates first to last, one private key).
fn parse_pem(pem: &[u8]) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate (-----BEGIN CERTIFICATE-----) found".into());
    }
    let key = PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"))?;
    Ok((chain, key))
}

/// The administrator's certificate chain (`--tls-cert`, PEM, leaf first) and key
/// (`--tls-key`, PEM).
pub(crate) fn from_files(cert: &Path, key: &Path) -> Result<PanelTls, Failure> {
    let remedy = "Give --tls-cert a PEM file with the certificate (then any intermediates) and --tls-key a PEM file with its private key, or leave both out for a self-signed certificate kept in the state dir.";
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| {
            tls_error(
                "tls-config-invalid",
                format!("Cannot read {}: {e}", path.display()),
                remedy,
            )
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|chain| !chain.is_empty())
        .ok_or_else(|| {
            tls_error(
                "tls-config-invalid",
                format!("{} holds no PEM certificate", cert.display()),
                remedy,
            )
        })?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_error(
            "tls-config-invalid",
            format!("{} holds no usable private key: {e}", key.display()),
            remedy,
        )
    })?;
    let fingerprint = fingerprint(&chain[0]);
    let config = server_config(chain, private).map_err(|e| {
        tls_error(
            "tls-config-invalid",
            format!("The certificate and key cannot be used together: {e}"),
            remedy,
        )
    })?;
    Ok(PanelTls {
        config,
        fingerprint,
        origin: Origin::Given,
    })
}

/// The self-signed certificate kept in `state_dir`, made now (for `names`: host names and
/// IP addresses browsers may use) if there is none yet.
pub(crate) fn self_signed(state_dir: &Path, names: &[String]) -> Result<PanelTls, Failure> {
    let path = state_dir.join(SELF_SIGNED_FILE);
    let (pem, origin) = match read_private(&path)? {
        Some(pem) => (pem, Origin::SelfSignedKept(path.clone())),
        None => {
            let made = generate(names)?;
            match link_new(&path, made.as_bytes()) {
                Ok(()) => (made.into_bytes(), Origin::SelfSignedNew(path.clone())),
                // Another first start linked its own a moment ago: use that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match read_private(&path)? {
                        Some(pem) => (pem, Origin::SelfSignedKept(path.clone())),
                        None => return Err(write_error(&path, e)),
                    }
                }
                Err(e) => return Err(write_error(&path, e)),
            }
        }
    };
    let damaged = |why: String| {
        tls_error(
            "tls-certificate-damaged",
            format!(
                "The panel's certificate file {} is unusable: {why}",
                path.display()
            ),
            &format!(
                "Remove it (rm {}): a new self-signed certificate is made at the next start, and browsers show its new fingerprint.",
                path.display()
            ),
        )
    };
    let (chain, key) = parse_pem(&pem).map_err(damaged)?;
    let fingerprint = fingerprint(&chain[0]);
    let config = server_config(chain, key).map_err(|e| damaged(e.to_string()))?;
    Ok(PanelTls {
        config,
        fingerprint,
        origin,
    })
}

fn write_error(path: &Path, e: std::io::Error) -> Failure {
    tls_error(
        "tls-certificate-unwritable",
        format!(
            "Cannot write the panel's certificate {}: {e}",
            path.display()
        ),
        "Check that the state dir is writable by this user, or give --tls-cert and --tls-key.",
    )
}

/// The file's contents, checked private (this user's, mode 0600 or stricter); `None` when
/// it does not exist.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    let file = state_dir::open_private_file(path).map_err(|problem| match problem {
        StateDirProblem::KeyExposed { mode, .. } => tls_error(
            "tls-key-exposed",
            format!(
                "The panel's certificate file {} is readable or writable by other users (mode {mode:04o}): its private key may be known",
                path.display()
            ),
            &format!(
                "Remove it (rm {}): a new self-signed certificate is made at the next start, and browsers show its new fingerprint.",
                path.display()
            ),
        ),
        other => tls_error(
            other.code(),
            format!("Cannot use the panel's certificate file: {other}"),
            &other.remedy(),
        ),
    })?;
    let Some(mut file) = file else {
        return Ok(None);
    };
    let mut pem = Vec::new();
    file.read_to_end(&mut pem).map_err(|e| {
        tls_error(
            "tls-certificate-damaged",
            format!("Cannot read {}: {e}", path.display()),
            "Check the state dir's permissions.",
        )
    })?;
    Ok(Some(pem))
}

/// Writes `data` to a new private temporary file, then links it as `path` if there is
/// no `path` yet (`AlreadyExists` otherwise); the temporary name is removed either way.
fn link_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = state_dir::temp_path_beside(path);
    let written = (|| {
        let mut file = state_dir::create_private_file(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Some(dir) = path.parent() {
        state_dir::sync_dir(dir)?;
    }
    Ok(())
}

/// A new key (ECDSA P-256) and a certificate for `names`, valid for 20 years from the
/// start of this year, in one PEM text (key first).
fn generate(names: &[String]) -> Result<String, Failure> {
    let failed = |e: rcgen::Error| {
        tls_error(
            "tls-certificate-failed",
            format!("Cannot make the panel's self-signed certificate: {e}"),
            "Try again, or give --tls-cert and --tls-key.",
        )
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "mfp-smtp-oauth device panel (self-signed)",
    );
    let year = this_year();
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 20, 1, 1);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok(format!("{}{}", key.serialize_pem(), cert.pem()))
}

/// The current year (UTC), near enough for a validity period that starts on 1 January.
fn this_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    1970 + i32::try_from(secs / 31_556_952).unwrap_or(0)
}

/// The names the self-signed certificate is made for: `localhost`, loopback, the listen
/// address (for a wildcard listen, the machine's interface addresses) and the public
/// origin's host. Browsers still warn (nobody signed it); the names keep the warning to
/// that one reason.
pub(crate) fn certificate_names(listen: IpAddr, public_host: Option<&str>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut add = |name: String| {
        if !names.contains(&name) {
            names.push(name);
        }
    };
    if listen.is_unspecified() {
        for interface in if_addrs::get_if_addrs().unwrap_or_default() {
            if !interface.is_loopback() && !interface.is_link_local() {
                add(interface.ip().to_string());
            }
        }
    } else {
        add(listen.to_canonical().to_string());
    }
    if let Some(host) = public_host {
        add(host.to_owned());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let names = certificate_names("0.0.0.0".parse().unwrap(), Some("panel.example"));
        assert!(
            names.contains(&"localhost".to_owned()) && names.contains(&"panel.example".to_owned())
        );
        let first = self_signed(dir.path(), &names).unwrap();
        assert!(matches!(first.origin, Origin::SelfSignedNew(_)));
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let again = self_signed(dir.path(), &names).unwrap();
        assert!(matches!(again.origin, Origin::SelfSignedKept(_)));
        assert_eq!(first.fingerprint, again.fingerprint);
        // Only the one file, no temporary left behind.
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(SELF_SIGNED_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            // Readable by others: its key may be known, so it is refused with a remedy.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let refused = self_signed(dir.path(), &names).err().unwrap();
            assert_eq!(refused.code, "tls-key-exposed");
        }
    }

    #[test]
    fn a_file_already_in_place_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        link_new(&path, b"first").unwrap();
        let e = link_new(&path, b"second").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_file_is_refused_with_a_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SELF_SIGNED_FILE);
        link_new(&path, b"not a certificate").unwrap();
        let refused = self_signed(dir.path(), &[]).err().unwrap();
        assert_eq!(refused.code, "tls-certificate-damaged");
    }
}
