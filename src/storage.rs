//! Durable state through the host's `store` capability. The component keeps nothing
//! between calls, so several instances may run at once (DESIGN.md, "Stateless instances").
//!
//! The settings live under one key and are committed whole: two Applies racing from the
//! web panel and the control panel end in one of them, never a mix (rule S1).

pub mod records;

pub use records::{Record, RecordVersion, decode, encode};

use crate::settings::Settings;

/// The key holding the whole settings record, versioned so a later layout can migrate.
pub const SETTINGS_KEY: &str = "settings/v1";

/// Keys of the OAuth grant (tokens, account, a sign-in in progress), written by sign-in. Listed here because
/// a provider reset must delete them (rule S4: no unused mailbox credential is kept).
pub const GRANT_KEYS: &[&str] = &[
    GRANT_KEY,
    ACCOUNT_KEY,
    crate::signin::FLOW_KEY,
    REFRESH_LEASE_KEY,
    crate::oauth::FAILED_SIGN_IN_KEY,
];
/// The stored [`crate::signin::TokenSet`] (JSON).
pub const GRANT_KEY: &str = "oauth/grant";
/// The stored [`crate::signin::Account`] (JSON).
pub const ACCOUNT_KEY: &str = "oauth/account";
/// Which instance may spend the refresh token right now, and until when (JSON): taken
/// with a compare-and-swap, so one instance refreshes while the others keep sending with
/// the access token that is still valid (see `oauth::tokens_for_send`).
pub const REFRESH_LEASE_KEY: &str = "oauth/refresh-lease";

/// Why the store failed; mirrors `store-error` in `wit/store.wit`, plus `Corrupt` for a
/// value that exists but cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable ({0})")]
    Unavailable(String),
    #[error("storage full")]
    Full,
    #[error("invalid storage key ({0})")]
    InvalidKey(String),
    #[error("stored data unreadable ({0})")]
    Corrupt(String),
    /// A record of a layout this build does not know (see [`records`]): read anyway, its
    /// fields could be misread, and writing it back would drop what it holds.
    #[error(
        "{key} was written by a newer firmware (record version {found}; this firmware reads up to version {known})"
    )]
    WrittenByNewer { key: String, found: u32, known: u32 },
    #[error("the stored value changed while it was being updated")]
    Conflict,
    #[error("{0}")]
    Other(String),
}

/// One write of a commit: `None` deletes the key.
pub type Write = (String, Option<Vec<u8>>);

/// One condition of a guarded commit: the key must still hold this value (`None`: absent).
pub type Guard = (String, Option<Vec<u8>>);

/// The guard "`key` still holds `value`", for [`Storage::commit_if`].
pub fn guard(key: &str, value: Option<&[u8]>) -> Guard {
    (key.to_owned(), value.map(<[u8]>::to_vec))
}

/// The `store` capability as the core sees it. The component implements it over the WIT
/// import; native tests and benchmarks implement it over memory or the host's database.
pub trait Storage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies every write atomically.
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// Applies every write atomically if every guard still holds (each key still has its
    /// value, `None`: absent), checked and written in one transaction; else fails with
    /// [`StoreError::Conflict`] and writes nothing.
    fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError>;
}

/// How often a read-modify-write of the settings is retried after a conflict.
pub const MAX_UPDATE_ATTEMPTS: usize = 16;

/// Reads the settings, lets `change` derive the writes from them, and commits them only if
/// the settings were not changed meanwhile by another instance; on a conflict it reads and
/// decides again. So concurrent Applies of the web panel and the control panel each land
/// whole, one after the other, and neither is lost (rule S1). `change` returns the result
/// and the writes (none: nothing to commit).
pub fn update_settings<T, E: From<StoreError>>(
    storage: &impl Storage,
    change: impl FnMut(&Settings) -> Result<(T, Vec<Write>), E>,
) -> Result<T, E> {
    update_settings_guarded(storage, Vec::new(), change)
}

/// [`update_settings`] whose commit also needs `guards` to hold (e.g. a sign-in stores
/// its account only if the flow it polled is still the stored one). After a conflict,
/// `change` runs again on fresh settings: it checks the guarded records itself and gives
/// up (an error, or no writes) once one of them changed for good.
pub fn update_settings_guarded<T, E: From<StoreError>>(
    storage: &impl Storage,
    guards: Vec<Guard>,
    mut change: impl FnMut(&Settings) -> Result<(T, Vec<Write>), E>,
) -> Result<T, E> {
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let raw = storage.get(SETTINGS_KEY)?;
        let current = parse_settings(raw.as_deref())?;
        let (result, writes) = change(&current)?;
        if writes.is_empty() {
            return Ok(result);
        }
        let mut all = guards.clone();
        all.push(guard(SETTINGS_KEY, raw.as_deref()));
        match storage.commit_if(all, writes) {
            Ok(()) => return Ok(result),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}

fn parse_settings(raw: Option<&[u8]>) -> Result<Settings, StoreError> {
    match raw {
        None => Ok(Settings::default()),
        Some(bytes) => decode(SETTINGS_KEY, bytes),
    }
}

/// Reads the settings, or the factory defaults when none were ever applied.
pub fn load_settings(storage: &impl Storage) -> Result<Settings, StoreError> {
    parse_settings(storage.get(SETTINGS_KEY)?.as_deref())
}

/// The write that stores `settings` whole.
pub fn settings_write(settings: &Settings) -> Write {
    (SETTINGS_KEY.to_owned(), Some(encode(settings)))
}

/// Where the host reads the SMTP server and port it lets the component connect to, as
/// `host:port` text (DESIGN.md, "Host contract"). The component writes it with every
/// settings change that moves it; the host never reads the settings record itself, whose
/// format may change. Not sealed: it is no secret.
pub const SMTP_DESTINATION_KEY: &str = "host/smtp-destination/v1";

/// The SMTP destination record of `settings`: `host:port`.
pub fn smtp_destination(settings: &Settings) -> Vec<u8> {
    format!("{}:{}", settings.smtp_server, settings.send_port).into_bytes()
}

/// The write that tells the host where `settings` send to.
pub fn smtp_destination_write(settings: &Settings) -> Write {
    (
        SMTP_DESTINATION_KEY.to_owned(),
        Some(smtp_destination(settings)),
    )
}

/// Makes the host's SMTP destination record match `settings` before a connection, for a
/// state written before the record existed (or by hand): written only if the settings
/// are still the ones read, so a concurrent Apply, which writes its own, always wins.
pub fn ensure_smtp_destination(
    storage: &impl Storage,
    settings: &Settings,
) -> Result<(), StoreError> {
    let wanted = smtp_destination(settings);
    if storage.get(SMTP_DESTINATION_KEY)?.as_deref() == Some(&wanted[..]) {
        return Ok(());
    }
    let raw = storage.get(SETTINGS_KEY)?;
    if raw.is_some() && parse_settings(raw.as_deref())? != *settings {
        return Ok(());
    }
    match storage.commit_if(
        vec![guard(SETTINGS_KEY, raw.as_deref())],
        vec![(SMTP_DESTINATION_KEY.to_owned(), Some(wanted))],
    ) {
        Ok(()) | Err(StoreError::Conflict) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The writes that delete the OAuth grant.
pub fn grant_deletions() -> impl Iterator<Item = Write> {
    GRANT_KEYS.iter().map(|key| ((*key).to_owned(), None))
}

/// Whether an OAuth grant (a signed-in account) is stored.
pub fn has_grant(storage: &impl Storage) -> Result<bool, StoreError> {
    Ok(storage.get(GRANT_KEY)?.is_some())
}

fn apply_writes(map: &mut std::collections::BTreeMap<String, Vec<u8>>, writes: Vec<Write>) {
    for (key, value) in writes {
        match value {
            Some(v) => map.insert(key, v),
            None => map.remove(&key),
        };
    }
}

/// An in-memory store, for native tests and the benchmark's baseline.
#[derive(Default, Debug)]
pub struct MemoryStorage {
    map: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl Storage for MemoryStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let map = self
            .map
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        Ok(map.get(key).cloned())
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        apply_writes(&mut map, writes);
        Ok(())
    }

    fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| StoreError::Other("poisoned".into()))?;
        if guards
            .iter()
            .any(|(key, expected)| map.get(key) != expected.as_ref())
        {
            return Err(StoreError::Conflict);
        }
        apply_writes(&mut map, writes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_settings_load_as_factory_defaults() {
        let storage = MemoryStorage::default();
        assert_eq!(load_settings(&storage).unwrap(), Settings::default());
    }

    #[test]
    fn unreadable_settings_are_reported_as_corrupt() {
        let storage = MemoryStorage::default();
        storage
            .commit(vec![(SETTINGS_KEY.into(), Some(b"{not json".to_vec()))])
            .unwrap();
        assert!(matches!(
            load_settings(&storage),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn commit_if_writes_nothing_unless_every_guard_holds() {
        let storage = MemoryStorage::default();
        storage
            .commit(vec![("a".into(), Some(b"1".to_vec()))])
            .unwrap();
        let writes = || vec![("c".to_owned(), Some(b"x".to_vec()))];
        // `a` holds 1, but `b` is absent, not 2: nothing is written.
        let stale = storage.commit_if(
            vec![guard("a", Some(b"1")), guard("b", Some(b"2"))],
            writes(),
        );
        assert_eq!(stale, Err(StoreError::Conflict));
        assert_eq!(storage.get("c").unwrap(), None);
        storage
            .commit_if(vec![guard("a", Some(b"1")), guard("b", None)], writes())
            .unwrap();
        assert_eq!(storage.get("c").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn settings_round_trip_through_the_store() {
        let storage = MemoryStorage::default();
        let mut settings = Settings::default();
        settings.receive_port = 2525;
        storage.commit(vec![settings_write(&settings)]).unwrap();
        assert_eq!(load_settings(&storage).unwrap(), settings);
    }
}
