//! The `store` capability: durable key-value storage in an embedded SQLite database
//! (`state.sqlite3` in the state dir), in WAL mode with full fsync on commit. SQLite was
//! chosen over single-process stores because integrators script `mfp-host settings set`
//! while `mfp-host serve` runs: several processes share the file safely.
//!
//! A commit is one SQLite transaction, so a multi-key commit is atomic and concurrent
//! commits are serialized: the later one wins whole.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::bindings::store::{Host, StoreError};
use crate::capabilities::sealing::{SealError, Sealer};
use crate::state_dir::{self, StateDirProblem};

/// Longest key accepted from the component.
pub const MAX_KEY_LEN: usize = 256;
/// Largest value accepted from the component; settings and tokens are far smaller.
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// How long a commit waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The store's three statements, prepared once per connection (rusqlite's statement cache).
const SELECT_VALUE: &str = "SELECT value FROM kv WHERE key = ?1";
const UPSERT_VALUE: &str = "INSERT INTO kv (key, value) VALUES (?1, ?2) \
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";
const DELETE_VALUE: &str = "DELETE FROM kv WHERE key = ?1";

/// A handle on the device's database; cheap to clone, shared by every instance.
#[derive(Clone)]
pub struct DurableStore {
    conn: Arc<Mutex<Connection>>,
    /// Seals the values of secret keys (tokens) before they reach the database.
    sealer: Sealer,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the database cannot be opened: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Key(#[from] SealError),
    /// A database file is another user's, or not a file.
    #[error(transparent)]
    Untrusted(#[from] StateDirProblem),
}

impl OpenError {
    /// What is wrong with the state dir, with its remedy.
    pub fn into_problem(self) -> StateDirProblem {
        match self {
            Self::Key(SealError::KeyFile(problem)) | Self::Untrusted(problem) => problem,
            other => StateDirProblem::Unusable(other.to_string()),
        }
    }
}

impl std::fmt::Debug for DurableStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableStore").finish_non_exhaustive()
    }
}

/// The database file inside a state dir.
pub const DATABASE_FILE: &str = "state.sqlite3";
/// The files SQLite keeps beside the database in WAL mode.
const JOURNAL_SUFFIXES: [&str; 2] = ["-wal", "-shm"];

impl DurableStore {
    /// Opens (or creates) the database in `state_dir`. The database and its journal are
    /// this user's only (0600): a database created here is created so, and SQLite gives its
    /// `-wal` and `-shm` files the database's mode; older files open to others are closed.
    pub fn open(state_dir: &Path) -> Result<Self, OpenError> {
        let sealer = Sealer::open(state_dir)?;
        let database = state_dir.join(DATABASE_FILE);
        state_dir::close_file(&database)?;
        for suffix in JOURNAL_SUFFIXES {
            let mut name = database.clone().into_os_string();
            name.push(suffix);
            state_dir::close_file(Path::new(&name))?;
        }
        match state_dir::create_private_file(&database) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => {
                return Err(StateDirProblem::Io {
                    action: "create",
                    path: database,
                    error,
                }
                .into());
            }
        }
        let conn = Connection::open(&database)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT;")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            sealer,
        })
    }

    /// The key that authenticates the compile cache's files (see
    /// [`Sealer::compile_cache_key`]).
    pub fn compile_cache_key(&self) -> [u8; 32] {
        self.sealer.compile_cache_key()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| {
            StoreError::Unavailable("the database handle was poisoned by a crash".into())
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let stored: Option<Vec<u8>> = {
            let conn = self.lock()?;
            // Cached statements: parsing the SQL again was a fifth of a panel read.
            conn.prepare_cached(SELECT_VALUE)
                .and_then(|mut select| select.query_row(params![key], |row| row.get(0)))
                .optional()
                .map_err(sql_error)?
        };
        match stored {
            Some(value) if Sealer::is_secret(key) => match self.sealer.unseal(key, &value) {
                Ok(plain) => Ok(Some(plain)),
                // A secret this device cannot open is as good as none: the administrator
                // signs in again, which overwrites it.
                Err(err) => {
                    tracing::warn!("{err}; treating it as absent");
                    Ok(None)
                }
            },
            other => Ok(other),
        }
    }

    /// Applies every write in one transaction; `None` deletes the key.
    pub fn commit(&self, writes: &[(String, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        self.commit_guarded(&[], writes)
    }

    /// Applies every write in one transaction if every guard still holds (its key holds
    /// its value, `None`: absent), else writes nothing and answers `conflict`. The checks
    /// and the writes share one IMMEDIATE transaction, so this holds across processes too.
    /// Values of secret keys are compared in plaintext, as `get` returned them.
    pub fn commit_if(
        &self,
        guards: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        for (key, _) in guards {
            check_key(key)?;
        }
        self.commit_guarded(guards, writes)
    }

    fn commit_guarded(
        &self,
        guards: &[(String, Option<Vec<u8>>)],
        writes: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), StoreError> {
        let mut sealed = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            check_key(key)?;
            if value.as_ref().is_some_and(|v| v.len() > MAX_VALUE_LEN) {
                return Err(StoreError::Full);
            }
            let value = match value {
                Some(v) if Sealer::is_secret(key) => Some(
                    self.sealer
                        .seal(key, v)
                        .map_err(|e| StoreError::Other(e.to_string()))?,
                ),
                other => other.clone(),
            };
            sealed.push((key, value));
        }
        let writes = sealed;
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        for (guard_key, expected) in guards {
            let stored: Option<Vec<u8>> = tx
                .prepare_cached(SELECT_VALUE)
                .and_then(|mut select| select.query_row(params![guard_key], |row| row.get(0)))
                .optional()
                .map_err(sql_error)?;
            // Sealed values differ at every write (random nonce): compare what `get` gives,
            // the plaintext, with a value this device cannot open counting as absent.
            let current = match stored {
                Some(v) if Sealer::is_secret(guard_key) => self.sealer.unseal(guard_key, &v).ok(),
                other => other,
            };
            if current != *expected {
                return Err(StoreError::Conflict);
            }
        }
        for (key, value) in writes {
            match value {
                Some(value) => tx
                    .prepare_cached(UPSERT_VALUE)
                    .and_then(|mut upsert| upsert.execute(params![key, value])),
                None => tx
                    .prepare_cached(DELETE_VALUE)
                    .and_then(|mut delete| delete.execute(params![key])),
            }
            .map_err(sql_error)?;
        }
        tx.commit().map_err(sql_error)
    }
}

/// Keys are short printable ASCII paths; anything else is refused with `invalid-key`.
fn check_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::InvalidKey(format!(
            "keys are 1 to {MAX_KEY_LEN} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

fn sql_error(err: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match err.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => StoreError::Full,
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly,
        ) => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Other(err.to_string()),
    }
}

/// The component's `store` import, served from the instance's state. Failures of the
/// medium are the component's to explain (`store-error`); none of them traps.
impl Host for DurableStore {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, StoreError>> {
        Ok(DurableStore::get(self, &key))
    }

    fn commit(
        &mut self,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> wasmtime::Result<Result<(), StoreError>> {
        Ok(DurableStore::commit(self, &writes))
    }

    fn commit_if(
        &mut self,
        guards: Vec<(String, Option<Vec<u8>>)>,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> wasmtime::Result<Result<(), StoreError>> {
        Ok(DurableStore::commit_if(self, &guards, &writes))
    }
}

impl crate::bindings::types::Host for DurableStore {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_writes_and_deletes_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        store
            .commit(&[
                ("a".into(), Some(b"1".to_vec())),
                ("b".into(), Some(b"2".to_vec())),
            ])
            .unwrap();
        store
            .commit(&[("a".into(), None), ("b".into(), Some(b"3".to_vec()))])
            .unwrap();
        assert_eq!(store.get("a").unwrap(), None);
        assert_eq!(store.get("b").unwrap(), Some(b"3".to_vec()));
    }

    #[test]
    fn a_commit_with_a_bad_key_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        let err = store.commit(&[
            ("good".into(), Some(b"1".to_vec())),
            ("bad key".into(), Some(b"2".to_vec())),
        ]);
        assert!(matches!(err, Err(StoreError::InvalidKey(_))));
        assert_eq!(store.get("good").unwrap(), None);
    }

    #[test]
    fn oversized_values_are_refused_as_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        let err = store.commit(&[("big".into(), Some(vec![0; MAX_VALUE_LEN + 1]))]);
        assert!(matches!(err, Err(StoreError::Full)));
    }

    #[test]
    fn secrets_are_sealed_at_rest_and_read_back_in_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        let token = b"eyJ0eXAiOiJKV1QiLCJub25jZSI6InNlY3JldC1hY2Nlc3MtdG9rZW4ifQ";
        store
            .commit(&[
                ("oauth/grant".into(), Some(token.to_vec())),
                ("settings/v1".into(), Some(b"{}".to_vec())),
            ])
            .unwrap();
        assert_eq!(
            store.get("oauth/grant").unwrap().as_deref(),
            Some(&token[..])
        );
        for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token),
                "token found in {}",
                entry.path().display()
            );
        }
        // Another device's key cannot read it: the grant is then simply absent.
        std::fs::remove_file(dir.path().join(crate::capabilities::sealing::KEY_FILE)).unwrap();
        drop(store);
        assert_eq!(
            DurableStore::open(dir.path())
                .unwrap()
                .get("oauth/grant")
                .unwrap(),
            None
        );
    }

    fn guard(key: &str, value: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
        (key.to_owned(), value.map(<[u8]>::to_vec))
    }

    #[test]
    fn commit_if_writes_only_when_the_guard_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        store
            .commit_if(&[guard("s", None)], &[("s".into(), Some(b"1".to_vec()))])
            .unwrap();
        let stale = store.commit_if(
            &[guard("s", None)],
            &[
                ("s".into(), Some(b"2".to_vec())),
                ("t".into(), Some(b"x".to_vec())),
            ],
        );
        assert!(matches!(stale, Err(StoreError::Conflict)));
        assert_eq!(
            (store.get("s").unwrap(), store.get("t").unwrap()),
            (Some(b"1".to_vec()), None)
        );
        store
            .commit_if(
                &[guard("s", Some(b"1"))],
                &[("s".into(), Some(b"2".to_vec()))],
            )
            .unwrap();
        assert_eq!(store.get("s").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn one_failing_guard_of_several_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        store
            .commit(&[
                ("settings/v1".into(), Some(b"{}".to_vec())),
                ("oauth/device-flow".into(), Some(b"flow-1".to_vec())),
            ])
            .unwrap();
        let writes = [
            ("oauth/grant".to_owned(), Some(b"tokens".to_vec())),
            ("settings/v1".to_owned(), Some(b"{\"x\":1}".to_vec())),
            ("oauth/device-flow".to_owned(), None),
        ];
        // The settings still hold, but the (sealed) flow was replaced: nothing lands.
        let stale = store.commit_if(
            &[
                guard("settings/v1", Some(b"{}")),
                guard("oauth/device-flow", Some(b"flow-0")),
            ],
            &writes,
        );
        assert!(matches!(stale, Err(StoreError::Conflict)));
        assert_eq!(store.get("oauth/grant").unwrap(), None);
        assert_eq!(store.get("settings/v1").unwrap(), Some(b"{}".to_vec()));
        assert_eq!(
            store.get("oauth/device-flow").unwrap(),
            Some(b"flow-1".to_vec())
        );
        // A guard on a key that must be absent fails once it exists.
        let stale = store.commit_if(
            &[
                guard("settings/v1", Some(b"{}")),
                guard("oauth/grant", None),
                guard("oauth/account", Some(b"a")),
            ],
            &writes,
        );
        assert!(matches!(stale, Err(StoreError::Conflict)));
        assert_eq!(store.get("oauth/grant").unwrap(), None);
        // Every guard holds, comparing the sealed flow's plaintext: all writes land.
        store
            .commit_if(
                &[
                    guard("settings/v1", Some(b"{}")),
                    guard("oauth/device-flow", Some(b"flow-1")),
                    guard("oauth/grant", None),
                ],
                &writes,
            )
            .unwrap();
        assert_eq!(store.get("oauth/grant").unwrap(), Some(b"tokens".to_vec()));
        assert_eq!(store.get("oauth/device-flow").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_journal_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        store.commit(&[("k".into(), Some(b"v".to_vec()))]).unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        for name in [DATABASE_FILE, "state.sqlite3-wal", "state.sqlite3-shm"] {
            assert_eq!(mode(name), 0o600, "{name}");
        }
        drop(store);
        // A database an earlier build left readable by others is closed at the next open.
        let db = dir.path().join(DATABASE_FILE);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = DurableStore::open(dir.path()).unwrap();
        assert_eq!(mode(DATABASE_FILE), 0o600);
        assert_eq!(store.get("k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        DurableStore::open(dir.path())
            .unwrap()
            .commit(&[("k".into(), Some(b"v".to_vec()))])
            .unwrap();
        assert_eq!(
            DurableStore::open(dir.path()).unwrap().get("k").unwrap(),
            Some(b"v".to_vec())
        );
    }
}
