//! The layout versions of the records the component stores, and how a record written by
//! another build is read. A device keeps its state across firmware updates, so every
//! build must read what an older one wrote, and must refuse (not misread, not drop) what
//! a newer one wrote.
//!
//! Every stored JSON record has a `version` field ([`RecordVersion`]): written as this
//! build's version of that record, read as 1 when absent (records written before versions
//! were stored). [`decode`] reads every record: an older version is migrated, a newer one
//! is refused with [`StoreError::WrittenByNewer`].
//!
//! # How to add a migration
//!
//! When a record's layout changes in a way serde's defaults cannot absorb (a field
//! renamed, moved or given a new meaning; a new field with a `#[serde(default)]` needs no
//! migration and no new version):
//!
//! 1. bump its constant below (e.g. [`SETTINGS`] to 2);
//! 2. in its [`Record`] impl, override [`Record::migrate`] to rewrite the JSON of each
//!    older version into the new layout, one step at a time (`if from < 2 { … }`);
//! 3. keep the store key as it is (`settings/v1` names the key, not the layout), and add a
//!    unit test that decodes the old JSON; `host/tests/upgrade.rs` runs the current binary
//!    on a state folder written by the first layout.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::StoreError;

/// The version of a record written before versions were stored (no `version` field).
pub const UNVERSIONED: u32 = 1;

/// `settings/v1`: [`crate::settings::Settings`].
pub const SETTINGS: u32 = 1;
/// `consent/v1`: [`crate::signin::consent::ConsentRecord`].
pub const CONSENT: u32 = 1;
/// `oauth/grant`: [`crate::signin::TokenSet`].
pub const GRANT: u32 = 1;
/// `oauth/account`: [`crate::signin::Account`].
pub const ACCOUNT: u32 = 1;
/// `oauth/device-flow`: [`crate::signin::DeviceFlow`].
pub const DEVICE_FLOW: u32 = 1;
/// `oauth/refresh-lease`: the refresh lease of [`crate::oauth`].
pub const REFRESH_LEASE: u32 = 1;
/// `oauth/failed-sign-in`: [`crate::oauth::FailedSignIn`].
pub const FAILED_SIGN_IN: u32 = 1;
/// `history/v1`: [`crate::history::History`].
pub const HISTORY: u32 = 1;
/// `mailer/in-flight/v1`: [`crate::mailer::journal::Journal`].
pub const SEND_JOURNAL: u32 = 1;
/// `relay/recent/v1`: [`crate::relay::policy::RecentSubmissions`].
pub const RELAY_RATE: u32 = 1;

/// The `version` field of a record whose current layout is `CURRENT`. It is always
/// written as `CURRENT`, so a record built in memory (from claims, a token reply, the
/// defaults) cannot be stored under another version; declare it with
/// `#[serde(default = "RecordVersion::unversioned")]` so a record without it reads as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordVersion<const CURRENT: u32>(u32);

impl<const CURRENT: u32> RecordVersion<CURRENT> {
    /// What a record without a `version` field was written at.
    pub const fn unversioned() -> Self {
        Self(UNVERSIONED)
    }

    /// The version the record was read at (`CURRENT` for one built in memory, or one
    /// read by [`decode`], which migrates it first).
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<const CURRENT: u32> Default for RecordVersion<CURRENT> {
    fn default() -> Self {
        Self(CURRENT)
    }
}

impl<const CURRENT: u32> Serialize for RecordVersion<CURRENT> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(CURRENT)
    }
}

impl<'de, const CURRENT: u32> Deserialize<'de> for RecordVersion<CURRENT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u32::deserialize(deserializer).map(Self)
    }
}

/// A stored JSON record of the component.
pub trait Record: Serialize + DeserializeOwned {
    /// The layout this build writes, and the newest it can read.
    const VERSION: u32;

    /// Rewrites `json`, a record written at version `from` (older than [`Self::VERSION`]),
    /// into the current layout. Nothing to do until a layout changes (see the module doc).
    fn migrate(json: &mut Value, from: u32) -> Result<(), String> {
        let _ = (json, from);
        Ok(())
    }
}

impl Record for crate::settings::Settings {
    const VERSION: u32 = SETTINGS;
}
impl Record for crate::signin::consent::ConsentRecord {
    const VERSION: u32 = CONSENT;
}
impl Record for crate::signin::TokenSet {
    const VERSION: u32 = GRANT;
}
impl Record for crate::signin::Account {
    const VERSION: u32 = ACCOUNT;
}
impl Record for crate::signin::DeviceFlow {
    const VERSION: u32 = DEVICE_FLOW;
}
impl Record for crate::oauth::FailedSignIn {
    const VERSION: u32 = FAILED_SIGN_IN;
}
impl Record for crate::oauth::RefreshLease {
    const VERSION: u32 = REFRESH_LEASE;
}
impl Record for crate::history::History {
    const VERSION: u32 = HISTORY;
}
impl Record for crate::mailer::journal::Journal {
    const VERSION: u32 = SEND_JOURNAL;
}
impl Record for crate::relay::policy::RecentSubmissions {
    const VERSION: u32 = RELAY_RATE;
}

/// Reads the record stored under `key`: migrated to the current layout when an older
/// build wrote it; refused with [`StoreError::WrittenByNewer`] when a newer one did (its
/// fields may mean something this build does not know, and writing it back would lose
/// them); [`StoreError::Corrupt`] when it is not a record at all.
pub fn decode<T: Record>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt(format!("{key}: {}", shown_reason(&why)));
    let mut json: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    // Every record is written as an object. serde would also read a struct from an array,
    // field by field, where no `version` is seen: `[2]` read as settings of version 2.
    if !json.is_object() {
        return Err(corrupt("not a JSON object".to_owned()));
    }
    let found = match json.get("version") {
        None => UNVERSIONED,
        Some(v) => v
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt(format!("`version` is {v}, not a version number")))?,
    };
    if found > T::VERSION {
        return Err(StoreError::WrittenByNewer {
            key: key.to_owned(),
            found,
            known: T::VERSION,
        });
    }
    if found < T::VERSION {
        T::migrate(&mut json, found).map_err(corrupt)?;
    }
    if let Some(fields) = json.as_object_mut() {
        fields.insert("version".to_owned(), T::VERSION.into());
    }
    serde_json::from_value(json).map_err(|e| corrupt(e.to_string()))
}

/// Longest parser reason a [`StoreError::Corrupt`] keeps, in characters read.
const MAX_REASON: usize = 200;

/// The parser's reason fit for a panel's one-line message: serde quotes the offending
/// stored value, which may hold line breaks or be huge (found by the `settings` fuzz
/// target), so control characters are escaped and the reason is cut short.
fn shown_reason(why: &str) -> String {
    let mut shown = String::new();
    for (i, c) in why.chars().enumerate() {
        if i == MAX_REASON {
            shown.push('…');
            break;
        }
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

/// The bytes that store `record` (with its `version`).
pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    // The records are plain structs of strings, numbers and enums: serializing cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ServiceProvider, Settings};
    use crate::signin::Account;
    use crate::signin::consent::ConsentRecord;

    /// `settings/v1` exactly as the first release wrote it (no `version`).
    const SETTINGS_V1: &str = r#"{"service_provider":"exchange-online","smtp_server":"smtp.office365.com","send_port":587,"receive_port":2525,"login_credentials":"system","device_email":"mfp@contoso.com","from":{"auth_edit_on_ldap_success":true,"auth_edit_on_ldap_failure":true,"guest_edit":true,"auth_send_despite_ldap_failure":true,"edit_without_auth":true,"alias_sender":false},"tenant":"common","client_id":"c88859d7-e6a2-48cb-acee-669df3387654","consent_redirect_uri":"https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html"}"#;

    #[test]
    fn a_record_without_a_version_reads_as_version_1_with_its_values() {
        let settings: Settings = decode("settings/v1", SETTINGS_V1.as_bytes()).unwrap();
        assert_eq!(settings.service_provider, ServiceProvider::ExchangeOnline);
        assert_eq!(settings.receive_port, 2525);
        assert_eq!(settings.device_email, "mfp@contoso.com");
        assert!(settings.from.guest_edit);
        assert_eq!(settings.version.get(), SETTINGS);
        // Read directly, without `decode`, the serde default says 1 too.
        let direct: Settings = serde_json::from_str(SETTINGS_V1).unwrap();
        assert_eq!(direct.version.get(), UNVERSIONED);

        let account: Account = decode(
            "oauth/account",
            br#"{"preferred_username":"mfp@contoso.com","tid":"t"}"#,
        )
        .unwrap();
        assert_eq!(
            account.preferred_username.as_deref(),
            Some("mfp@contoso.com")
        );
    }

    #[test]
    fn a_record_of_a_newer_layout_is_refused_with_a_typed_error() {
        let newer = SETTINGS_V1.replacen('{', &format!("{{\"version\":{},", SETTINGS + 1), 1);
        let err = decode::<Settings>("settings/v1", newer.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            StoreError::WrittenByNewer {
                key: "settings/v1".into(),
                found: SETTINGS + 1,
                known: SETTINGS,
            }
        );
        assert!(err.to_string().contains("newer firmware"), "{err}");
        // Refused even when every field is one this build knows: the layout may differ.
        let consent = format!(r#"{{"version":{},"tenants":[]}}"#, CONSENT + 7);
        assert!(matches!(
            decode::<ConsentRecord>("consent/v1", consent.as_bytes()),
            Err(StoreError::WrittenByNewer { found, .. }) if found == CONSENT + 7
        ));
    }

    #[test]
    fn a_version_that_is_not_a_number_is_corrupt() {
        for bad in [
            r#"{"version":"2"}"#,
            r#"{"version":-1}"#,
            r#"{"version":4294967296}"#,
        ] {
            assert!(
                matches!(
                    decode::<ConsentRecord>("consent/v1", bad.as_bytes()),
                    Err(StoreError::Corrupt(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_record_that_is_not_an_object_is_corrupt() {
        // Found by the `settings` fuzz target: `[2]` was read as settings of version 2.
        for bad in [
            "[2]",
            r#"[1,"exchange-online","smtp.example.com"]"#,
            "2",
            "null",
        ] {
            assert_eq!(
                decode::<Settings>("settings/v1", bad.as_bytes()),
                Err(StoreError::Corrupt("settings/v1: not a JSON object".into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_corrupt_record_is_reported_on_one_bounded_line() {
        let value = format!("x\r\nRCPT TO:<a@b>{}", "y".repeat(5000));
        let bad = format!(r#"{{"service_provider":"{value}"}}"#).replace("\r\n", "\\r\\n");
        let Err(StoreError::Corrupt(why)) = decode::<Settings>("settings/v1", bad.as_bytes())
        else {
            panic!("a corrupt record read");
        };
        assert!(why.contains(r"x\r\nRCPT TO"), "{why}");
        assert!(!why.contains(char::is_control), "{why:?}");
        assert!(why.chars().count() < 300, "{why}");
    }

    #[test]
    fn a_record_is_written_with_its_current_version_and_reads_back_equal() {
        let mut settings = Settings::default();
        settings.receive_port = 2525;
        let bytes = encode(&settings);
        let json: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["version"], SETTINGS);
        assert_eq!(decode::<Settings>("settings/v1", &bytes).unwrap(), settings);

        // Built from claims or read without `decode`, it is still written as current.
        let account: Account = serde_json::from_str(r#"{"tid":"t"}"#).unwrap();
        let json: Value = serde_json::from_slice(&encode(&account)).unwrap();
        assert_eq!(json["version"], ACCOUNT);
        let record = ConsentRecord::default();
        let json: Value = serde_json::from_slice(&encode(&record)).unwrap();
        assert_eq!(json["version"], CONSENT);
    }
}
