//! Trust in the state dir. The host keeps there what it later believes without question:
//! the key that seals tokens (`secret.key`), the database, and compiled code it maps as
//! executable (`cache/`). Anyone who can write the dir could plant any of them, and anyone
//! who can read it could learn the key, so the host accepts only a dir owned by its own
//! user with no access for group or others:
//!
//! - a dir the host creates is created 0700;
//! - an existing dir of this user that others may access is closed (0700) with a warning,
//!   since nothing in it can have been trusted by the host yet that it cannot check again;
//! - a dir of another user, or a shared one (sticky bit, like `/tmp`), is refused with a
//!   remedy;
//! - files inside are checked by their own rules: the key is refused when others may read
//!   it ([`open_private_file`]), the database files are closed to 0600 ([`close_file`]).
//!
//! Unix only: elsewhere these checks pass and the platform's own ACLs decide.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Why the state dir (or a file in it) is not trusted; each case carries its remedy.
#[derive(Debug, thiserror::Error)]
pub enum StateDirProblem {
    /// The file system refused an operation (missing parent, read-only, disk full, …).
    #[error("cannot {action} {path}: {error}")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// A file the host needs is a directory, a symbolic link or a device.
    #[error("{path} is not a regular file")]
    NotAFile { path: PathBuf },
    /// The path of the state dir exists but is not a directory.
    #[error("{path} is not a directory")]
    NotADirectory { path: PathBuf },
    /// The dir or a file in it belongs to another user, who could replace what it holds.
    #[error("{path} is owned by user {owner}, not by this user ({us})")]
    OwnedByOther { path: PathBuf, owner: u32, us: u32 },
    /// A dir that others may write and that carries the sticky bit: a shared dir such as
    /// `/tmp`, which the host will not close on its owner's behalf.
    #[error("{path} is a shared directory (mode {mode:04o}) that other users may write to")]
    Shared { path: PathBuf, mode: u32 },
    /// The key file may be (or have been) read by others: sealed tokens are not secret.
    #[error(
        "the key file {path} is readable or writable by other users (mode {mode:04o}): its contents may be known"
    )]
    KeyExposed { path: PathBuf, mode: u32 },
    /// The key file does not hold a key (e.g. cut short by a crash of an earlier build).
    #[error("the key file {path} holds {len} bytes instead of a 32-byte key")]
    KeyDamaged { path: PathBuf, len: usize },
    /// Anything else that keeps the database from opening.
    #[error("{0}")]
    Unusable(String),
}

impl StateDirProblem {
    /// The stable code a front end shows (`error[CODE]`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::OwnedByOther { .. } | Self::Shared { .. } => "state-dir-not-private",
            Self::KeyExposed { .. } | Self::KeyDamaged { .. } => "secret-key-untrusted",
            Self::Io { .. }
            | Self::NotAFile { .. }
            | Self::NotADirectory { .. }
            | Self::Unusable(_) => "state-dir-unavailable",
        }
    }

    /// What the administrator does about it.
    pub fn remedy(&self) -> String {
        match self {
            Self::OwnedByOther { path, owner, .. } => format!(
                "Run mfp-host as the user who owns {} (uid {owner}), or give --state-dir a directory of this user's own (it is created private, mode 0700).",
                path.display()
            ),
            Self::Shared { .. } => "Give --state-dir a directory of the device's own (e.g. a new subfolder); it is created private (mode 0700).".into(),
            Self::KeyExposed { path, .. } | Self::KeyDamaged { path, .. } => format!(
                "Remove it (rm {}): a new key is made at the next start, the tokens sealed with the old one are discarded, and the device must sign in again.",
                path.display()
            ),
            Self::NotAFile { path } => format!(
                "Remove {} or move it away; the host creates the file itself.",
                path.display()
            ),
            Self::Io { .. } | Self::NotADirectory { .. } | Self::Unusable(_) => {
                "Check that --state-dir exists, is writable by this user and has free space.".into()
            }
        }
    }
}

fn io_problem(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StateDirProblem {
    let path = path.to_path_buf();
    move |error| StateDirProblem::Io {
        action,
        path,
        error,
    }
}

/// Creates `dir` (and missing parents) mode 0700, or checks an existing one: it must be
/// this user's; group and other access is removed with a warning; a shared (sticky) dir
/// or another user's is refused.
pub fn ensure_private_dir(dir: &Path) -> Result<(), StateDirProblem> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(io_problem("create the directory", dir))?;
    let meta = std::fs::metadata(dir).map_err(io_problem("inspect", dir))?;
    if !meta.is_dir() {
        return Err(StateDirProblem::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        check_owner(dir, meta.uid())?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            if mode & 0o1000 != 0 {
                return Err(StateDirProblem::Shared {
                    path: dir.to_path_buf(),
                    mode,
                });
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_problem("restrict the permissions of", dir))?;
            tracing::warn!(
                "{} was open to other users (mode {mode:04o}); it is now private to this user (0700)",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Opens an existing file that must be trusted whole (the key): a regular file of this
/// user that no one else may read or write. Symbolic links are not followed. `Ok(None)`:
/// the file does not exist.
pub fn open_private_file(path: &Path) -> Result<Option<File>, StateDirProblem> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(StateDirProblem::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_problem("open", path)(e)),
    };
    // The checks look at the file opened, not at the name, which could change meanwhile.
    let meta = file.metadata().map_err(io_problem("inspect", path))?;
    if !meta.is_file() {
        return Err(StateDirProblem::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        check_owner(path, meta.uid())?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StateDirProblem::KeyExposed {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(Some(file))
}

/// Checks a file the host keeps private but may close itself (the database and its
/// journal): a regular file of this user; group and other access is removed with a
/// warning. A missing file passes.
pub fn close_file(path: &Path) -> Result<(), StateDirProblem> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_problem("inspect", path)(e)),
    };
    if !meta.is_file() {
        return Err(StateDirProblem::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        check_owner(path, meta.uid())?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(io_problem("restrict the permissions of", path))?;
            tracing::warn!(
                "{} was open to other users (mode {mode:04o}); it is now private to this user (0600)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates `path` new, mode 0600 (fails if it exists).
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes the entries of `dir` (a rename, a link) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A unique name for a temporary file beside `path`: `.NAME.PID.RANDOM.tmp`.
pub fn temp_path_beside(path: &Path) -> PathBuf {
    let mut random = [0u8; 8];
    // Uniqueness only (the file is created new, 0600): the process id is enough without.
    let _ = getrandom::fill(&mut random);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        hex::encode(random)
    ))
}

#[cfg(unix)]
fn check_owner(path: &Path, owner: u32) -> Result<(), StateDirProblem> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let us = unsafe { libc::geteuid() };
    if owner != us {
        return Err(StateDirProblem::OwnedByOther {
            path: path.to_path_buf(),
            owner,
            us,
        });
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_dir_is_private_and_an_open_one_is_closed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_shared_sticky_dir_is_refused_and_left_as_it_is() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = ensure_private_dir(root.path()).unwrap_err();
        assert!(matches!(err, StateDirProblem::Shared { .. }), "{err}");
        assert_eq!(err.code(), "state-dir-not-private");
        assert_eq!(mode(root.path()), 0o1777);
    }

    #[test]
    fn a_file_where_the_dir_should_be_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(ensure_private_dir(&file).is_err());
    }

    #[test]
    fn an_exposed_key_is_refused_and_a_symlink_is_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("k");
        assert!(open_private_file(&key).unwrap().is_none());
        std::fs::write(&key, [7; 32]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = open_private_file(&key).unwrap_err();
        assert!(
            matches!(err, StateDirProblem::KeyExposed { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.remedy().contains("sign in again"), "{}", err.remedy());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(open_private_file(&key).unwrap().is_some());
        let link = root.path().join("l");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(matches!(
            open_private_file(&link),
            Err(StateDirProblem::NotAFile { .. })
        ));
    }

    #[test]
    fn an_open_database_file_is_closed() {
        let root = tempfile::tempdir().unwrap();
        let db = root.path().join("db");
        close_file(&db).unwrap();
        std::fs::write(&db, b"x").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
        close_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
