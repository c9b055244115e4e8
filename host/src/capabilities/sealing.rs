//! Encryption at rest for the secrets the component stores (tokens, device codes, the
//! account): values under [`SECRET_PREFIX`] are sealed with XChaCha20-Poly1305 before they
//! reach the database, under a random 256-bit key kept in `secret.key` in the state dir
//! (mode 0600). The key name is the associated data, so a sealed value cannot be moved to
//! another key. Grepping the database for a token finds nothing.
//!
//! The component never sees this: it stores and reads plaintext through `store`; which
//! keys are secret is the host's policy, in this one place.

use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::state_dir::{self, StateDirProblem};

/// Keys whose values are sealed: the OAuth grant, the account and a sign-in in progress.
pub const SECRET_PREFIX: &str = "oauth/";
/// The key file inside the state dir.
pub const KEY_FILE: &str = "secret.key";
/// Marks a sealed value (and its format version).
const MAGIC: &[u8; 8] = b"MFPSEAL1";
const NONCE_LEN: usize = 24;
/// What the compile cache's key is derived for (HMAC-SHA256 of this label under the key).
const COMPILE_CACHE_LABEL: &[u8] = b"mfp-host compile cache authentication v1";

/// Seals and opens secret values with the state dir's key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// See [`Sealer::compile_cache_key`].
    compile_cache_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<key redacted>)")
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file is missing its trust (owner, mode, size) or cannot be written.
    #[error(transparent)]
    KeyFile(#[from] StateDirProblem),
    #[error("no randomness is available: {0}")]
    Random(String),
    #[error(
        "a sealed value of {0} does not open with this device's key (the key file was replaced, or the data is damaged)"
    )]
    Open(String),
}

impl Sealer {
    /// Loads `secret.key` from `state_dir`, creating it (0600) on first use. An existing
    /// key is used only when it is this user's and no one else may read or write it: a
    /// key others could read seals nothing, so it is refused rather than used.
    pub fn open(state_dir: &Path) -> Result<Self, SealError> {
        let path = state_dir.join(KEY_FILE);
        let key = match read_key(&path)? {
            Some(key) => key,
            None => create_key(state_dir, &path)?,
        };
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
            compile_cache_key: derive(&key, COMPILE_CACHE_LABEL),
        })
    }

    /// The key that authenticates compiled code in the compile cache: derived from this
    /// device's key, so a file planted by anyone without the key is never loaded.
    pub fn compile_cache_key(&self) -> [u8; 32] {
        self.compile_cache_key
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

/// The key in `path`, if there is one that may be trusted (see [`state_dir::open_private_file`]).
fn read_key(path: &Path) -> Result<Option<[u8; 32]>, SealError> {
    let Some(file) = state_dir::open_private_file(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(33);
    file.take(33)
        .read_to_end(&mut bytes)
        .map_err(|error| StateDirProblem::Io {
            action: "read",
            path: path.to_path_buf(),
            error,
        })?;
    let len = bytes.len();
    let key: [u8; 32] = bytes.try_into().map_err(|_| StateDirProblem::KeyDamaged {
        path: path.to_path_buf(),
        len,
    })?;
    Ok(Some(key))
}

/// Makes a new key and puts it in place whole: written and synced under a temporary name
/// (0600), then hard-linked to `path`, which never replaces an existing key. When two
/// first starts race, the one that links second reads and uses the winner's key, so no
/// sealed value is lost; a crash leaves at most a stray temporary file, never a partial key.
fn create_key(state_dir: &Path, path: &Path) -> Result<[u8; 32], SealError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| SealError::Random(e.to_string()))?;
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |error| StateDirProblem::Io {
            action,
            path: p,
            error,
        }
    };
    let tmp = state_dir::temp_path_beside(path);
    let written = state_dir::create_private_file(&tmp)
        .and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", &tmp)(error).into());
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            state_dir::sync_dir(state_dir).map_err(io("sync", state_dir))?;
            Ok(key)
        }
        // Another process put its key in place first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key(path)?.ok_or_else(|| {
                StateDirProblem::Unusable(format!(
                    "the key file {} vanished while it was being created",
                    path.display()
                ))
                .into()
            })
        }
        Err(error) => Err(io("create", path)(error).into()),
    }
}

/// HMAC-SHA256(`key`, `label`): a key for one purpose, independent of the others.
fn derive(key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), label);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
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
    fn first_starts_racing_agree_on_one_key_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let sealers: Vec<Sealer> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Sealer::open(dir.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Whatever one sealed, every other opens: no start lost to another's key.
        for (i, a) in sealers.iter().enumerate() {
            let sealed = a.seal("oauth/grant", &[i as u8]).unwrap();
            for b in &sealers {
                assert_eq!(b.unseal("oauth/grant", &sealed).unwrap(), [i as u8]);
            }
        }
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [KEY_FILE], "only the key is left");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_may_read_or_an_empty_key_is_refused_never_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, [0x42; 32]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Sealer::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, SealError::KeyFile(StateDirProblem::KeyExposed { .. })),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Sealer::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                &err,
                SealError::KeyFile(StateDirProblem::KeyDamaged { len: 0, .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn the_compile_cache_key_is_the_devices_own_and_not_the_sealing_key() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let key_a = Sealer::open(a.path()).unwrap().compile_cache_key();
        assert_eq!(Sealer::open(a.path()).unwrap().compile_cache_key(), key_a);
        assert_ne!(Sealer::open(b.path()).unwrap().compile_cache_key(), key_a);
        let raw = std::fs::read(a.path().join(KEY_FILE)).unwrap();
        assert_ne!(raw, key_a);
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
