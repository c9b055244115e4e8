//! Encryption at rest for the secrets the component stores (tokens, device codes, the
//! account): values under [`SECRET_PREFIX`] are sealed with XChaCha20-Poly1305 before they
//! reach the database, under a random 256-bit key kept in `secret.key` in the state dir
//! (mode 0600). The key name is the associated data, so a sealed value cannot be moved to
//! another key. Grepping the database for a token finds nothing.
//!
//! The component never sees this: it stores and reads plaintext through `store`; which
//! keys are secret is the host's policy, in this one place.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

/// Keys whose values are sealed: the OAuth grant, the account and a sign-in in progress.
pub const SECRET_PREFIX: &str = "oauth/";
/// The key file inside the state dir.
pub const KEY_FILE: &str = "secret.key";
/// Marks a sealed value (and its format version).
const MAGIC: &[u8; 8] = b"MFPSEAL1";
const NONCE_LEN: usize = 24;

/// Seals and opens secret values with the state dir's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the key file {0} cannot be used: {1}")]
    KeyFile(String, String),
    #[error("no randomness is available: {0}")]
    Random(String),
    #[error(
        "a sealed value of {0} does not open with this device's key (the key file was replaced, or the data is damaged)"
    )]
    Open(String),
}

impl Sealer {
    /// Loads `secret.key` from `state_dir`, creating it (0600) on first use.
    pub fn open(state_dir: &Path) -> Result<Self, SealError> {
        let path = state_dir.join(KEY_FILE);
        let key_error =
            |e: std::io::Error| SealError::KeyFile(path.display().to_string(), e.to_string());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| SealError::Random(e.to_string()))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&path) {
                    Ok(mut file) => {
                        file.write_all(&key)
                            .and_then(|()| file.sync_all())
                            .map_err(key_error)?;
                        key.to_vec()
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&path).map_err(key_error)?
                    }
                    Err(e) => return Err(key_error(e)),
                }
            }
            Err(e) => return Err(key_error(e)),
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            SealError::KeyFile(
                path.display().to_string(),
                "it must hold exactly 32 bytes".into(),
            )
        })?;
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        })
    }

    /// Whether values of `key` are sealed.
    pub fn is_secret(key: &str) -> bool {
        key.starts_with(SECRET_PREFIX)
    }

    /// `MAGIC || nonce || ciphertext`, bound to `key`.
    pub fn seal(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open(key.to_owned()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value written by [`Sealer::seal`] for the same `key`.
    pub fn unseal(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, SealError> {
        let body = stored
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| SealError::Open(key.to_owned()))?;
        if body.len() < NONCE_LEN {
            return Err(SealError::Open(key.to_owned()));
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| SealError::Open(key.to_owned()))?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_own_key_name() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Sealer::open(dir.path()).unwrap();
        let sealed = sealer.seal("oauth/grant", b"access-token-secret").unwrap();
        assert!(!sealed.windows(19).any(|w| w == b"access-token-secret"));
        assert_eq!(
            sealer.unseal("oauth/grant", &sealed).unwrap(),
            b"access-token-secret"
        );
        assert!(
            sealer.unseal("oauth/account", &sealed).is_err(),
            "bound to its key name"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.unseal("oauth/grant", &tampered).is_err());
    }

    #[test]
    fn the_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sealer::open(dir.path()).unwrap();
        let sealed = first.seal("oauth/grant", b"x").unwrap();
        let second = Sealer::open(dir.path()).unwrap();
        assert_eq!(second.unseal("oauth/grant", &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn another_devices_key_cannot_open_the_values() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sealed = Sealer::open(a.path())
            .unwrap()
            .seal("oauth/grant", b"x")
            .unwrap();
        assert!(matches!(
            Sealer::open(b.path())
                .unwrap()
                .unseal("oauth/grant", &sealed),
            Err(SealError::Open(_))
        ));
    }
}
