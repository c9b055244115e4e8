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
//! The JSON is read and written with miniserde ([`crate::json`]). A field a record may
//! lack (written before it existed) has its value in [`Record::defaults`], filled in
//! when the record does not read without it, as serde's `#[serde(default)]` did; an
//! `Option` field may be missing without that.
//!
//! # How to add a migration
//!
//! When a record's layout changes in a way defaults cannot absorb (a field renamed, moved
//! or given a new meaning; a new field with a default needs no migration and no new
//! version):
//!
//! 1. bump its constant below (e.g. [`SETTINGS`] to 2);
//! 2. in its [`Record`] impl, override [`Record::migrate`] to rewrite the JSON of each
//!    older version into the new layout, one step at a time (`if from < 2 { … }`);
//! 3. keep the store key as it is (`settings/v1` names the key, not the layout), and add a
//!    unit test that decodes the old JSON; `host/tests/upgrade.rs` runs the current binary
//!    on a state folder written by the first layout.

use miniserde::de::Visitor;
use miniserde::ser::Fragment;

use super::StoreError;
use crate::json::{self, Number, Object, Value};

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
/// defaults) cannot be stored under another version. A record read without it (by
/// [`json::from_slice`], not [`decode`]) reads as 1.
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

impl<const CURRENT: u32> json::Serialize for RecordVersion<CURRENT> {
    fn begin(&self) -> Fragment<'_> {
        Fragment::U64(CURRENT.into())
    }
}

impl<const CURRENT: u32> json::Deserialize for RecordVersion<CURRENT> {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        miniserde::make_place!(Place);

        impl<const CURRENT: u32> Visitor for Place<RecordVersion<CURRENT>> {
            fn nonnegative(&mut self, n: u64) -> miniserde::Result<()> {
                let n = u32::try_from(n).map_err(|_| miniserde::Error)?;
                self.out = Some(RecordVersion(n));
                Ok(())
            }
        }

        Place::new(out)
    }

    /// A record without a `version` was written before versions were stored.
    fn default() -> Option<Self> {
        Some(Self::unversioned())
    }
}

/// A stored JSON record of the component.
pub trait Record: json::Serialize + json::Deserialize {
    /// The layout this build writes, and the newest it can read.
    const VERSION: u32;

    /// The layout the record was read at: its `version` field.
    fn version(&self) -> u32;

    /// The values of the fields a stored record may lack (an older build did not write
    /// them), filled in when it does not read without them; objects nested in it are
    /// completed field by field ([`json::fill_missing`]). A missing `Option` field reads
    /// as `None` and must not be named here; any other missing field makes the record
    /// corrupt.
    fn defaults() -> Object {
        Object::new()
    }

    /// Rewrites `json`, a record written at version `from` (older than [`Self::VERSION`]),
    /// into the current layout. Nothing to do until a layout changes (see the module doc).
    fn migrate(json: &mut Value, from: u32) -> Result<(), String> {
        let _ = (json, from);
        Ok(())
    }
}

/// `{"name": []}`: the default of a list field.
fn empty_list(name: &str) -> Object {
    Object::from_iter([(name.to_owned(), Value::Array(json::Array::new()))])
}

/// Every field has the default of [`crate::settings::Settings::default`] (also each of
/// `from`'s).
impl Record for crate::settings::Settings {
    const VERSION: u32 = SETTINGS;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        json::object_of(&<Self as Default>::default())
    }
}
impl Record for crate::signin::consent::ConsentRecord {
    const VERSION: u32 = CONSENT;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        empty_list("tenants")
    }
}
impl Record for crate::signin::TokenSet {
    const VERSION: u32 = GRANT;
    fn version(&self) -> u32 {
        self.version.get()
    }
}
impl Record for crate::signin::Account {
    const VERSION: u32 = ACCOUNT;
    fn version(&self) -> u32 {
        self.version.get()
    }
}
/// Flows stored before failed polls were counted had none.
impl Record for crate::signin::DeviceFlow {
    const VERSION: u32 = DEVICE_FLOW;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        Object::from_iter([("failed_polls".to_owned(), Value::Number(Number::U64(0)))])
    }
}
impl Record for crate::oauth::FailedSignIn {
    const VERSION: u32 = FAILED_SIGN_IN;
    fn version(&self) -> u32 {
        self.version.get()
    }
}
impl Record for crate::oauth::RefreshLease {
    const VERSION: u32 = REFRESH_LEASE;
    fn version(&self) -> u32 {
        self.version.get()
    }
}
impl Record for crate::history::History {
    const VERSION: u32 = HISTORY;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        empty_list("events")
    }
}
impl Record for crate::mailer::journal::Journal {
    const VERSION: u32 = SEND_JOURNAL;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        empty_list("sends")
    }
}
impl Record for crate::relay::policy::RecentSubmissions {
    const VERSION: u32 = RELAY_RATE;
    fn version(&self) -> u32 {
        self.version.get()
    }
    fn defaults() -> Object {
        empty_list("at")
    }
}

/// Reads the record stored under `key`: migrated to the current layout when an older
/// build wrote it; refused with [`StoreError::WrittenByNewer`] when a newer one did (its
/// fields may mean something this build does not know, and writing it back would lose
/// them); [`StoreError::Corrupt`] when it is not a record at all.
pub fn decode<T: Record>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    // A record this build wrote reads straight into its type, at the current version:
    // what `decode_tree` makes of it too (a test holds them to that), without building
    // the JSON tree in between, which was most of a panel read.
    match json::from_slice::<T>(bytes) {
        Some(record) if record.version() == T::VERSION => Ok(record),
        _ => decode_tree(key, bytes),
    }
}

/// [`decode`] step by step, through the JSON tree: the version read, the record migrated,
/// then the missing fields filled in.
fn decode_tree<T: Record>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let mut json = current_layout(key, bytes, T::VERSION, T::migrate)?;
    // A record this build wrote has every field and reads as it is. One an older build
    // wrote may lack fields: with their defaults filled in, it is read again. (Defaults
    // name no `Option` field, so a record that reads without them reads the same.)
    if let Some(record) = json::read(&json) {
        return Ok(record);
    }
    if let Value::Object(fields) = &mut json {
        json::fill_missing(fields, T::defaults());
    }
    // miniserde says no more than that the record does not fit; it quotes nothing stored.
    json::read(&json).ok_or_else(|| {
        corrupt(
            key,
            "a field is missing, of another type, or not one of its values",
        )
    })
}

/// The JSON of the record stored under `key` in the layout `version` (its defaults not
/// filled in yet): [`decode`] without its type, so that this code is in the component once, not once for
/// every record type.
fn current_layout(
    key: &str,
    bytes: &[u8],
    version: u32,
    migrate: fn(&mut Value, u32) -> Result<(), String>,
) -> Result<Value, StoreError> {
    let mut json = json::parse(bytes).ok_or_else(|| corrupt(key, "not JSON"))?;
    // Every record is written as an object; an array (`[2]`) or a number is not a record.
    let Value::Object(fields) = &json else {
        return Err(corrupt(key, "not a JSON object"));
    };
    let found = match fields.get("version") {
        None => UNVERSIONED,
        Some(v) => json::as_u64(v)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                let shown = json::to_string(v);
                corrupt(key, &format!("`version` is {shown}, not a version number"))
            })?,
    };
    if found > version {
        return Err(StoreError::WrittenByNewer {
            key: key.to_owned(),
            found,
            known: version,
        });
    }
    if found < version {
        migrate(&mut json, found).map_err(|why| corrupt(key, &why))?;
    }
    if let Value::Object(fields) = &mut json {
        fields.insert(
            "version".to_owned(),
            Value::Number(Number::U64(version.into())),
        );
    }
    Ok(json)
}

/// [`StoreError::Corrupt`] for the record under `key`, for the reason `why`.
fn corrupt(key: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("{key}: {}", shown_reason(why)))
}

/// Longest parser reason a [`StoreError::Corrupt`] keeps, in characters read.
const MAX_REASON: usize = 200;

/// The reason fit for a panel's one-line message: it may quote the offending stored value
/// (a `version`), which may hold line breaks or be huge (found by the `settings` fuzz
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
    json::to_vec(record)
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
        // Read directly, without `decode`, the missing version says 1 too.
        let direct: Settings = json::from_slice(SETTINGS_V1.as_bytes()).unwrap();
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
        // A value that does not fit is not quoted at all.
        let value = format!("x\r\nRCPT TO:<a@b>{}", "y".repeat(5000));
        let bad = format!(r#"{{"service_provider":"{value}"}}"#).replace("\r\n", "\\r\\n");
        let Err(StoreError::Corrupt(why)) = decode::<Settings>("settings/v1", bad.as_bytes())
        else {
            panic!("a corrupt record read");
        };
        assert!(why.starts_with("settings/v1: "), "{why}");
        assert!(!why.contains("RCPT"), "{why}");
        // A `version` that is not a number is quoted, escaped and cut short.
        let bad = format!(r#"{{"version":"{value}"}}"#).replace("\r\n", "\\r\\n");
        let Err(StoreError::Corrupt(why)) = decode::<Settings>("settings/v1", bad.as_bytes())
        else {
            panic!("a corrupt record read");
        };
        assert!(why.contains(r"x\r\nRCPT TO"), "{why}");
        assert!(!why.contains(char::is_control), "{why:?}");
        assert!(why.chars().count() < 300, "{why}");
        assert!(why.ends_with('…'), "{why}");
        // Text that is not JSON, or a field of the wrong type, is corrupt, never a panic.
        for bad in [
            &b"{\"send_port\":70000}"[..],
            b"{\"send_port\":null}",
            b"{\"from\":[]}",
            b"{\"smtp_server\":1}",
            b"{\"login_credentials\":\"System\"}",
            b"{\"tenant\":\"a\"",
            b"\xff",
            b"",
        ] {
            assert!(
                matches!(
                    decode::<Settings>("settings/v1", bad),
                    Err(StoreError::Corrupt(_))
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_field_a_record_lacks_reads_as_its_default() {
        // `from` with one field: the others are the defaults of the settings screen.
        let settings: Settings = decode(
            "settings/v1",
            br#"{"smtp_server":"smtp.example.com","from":{"guest_edit":true},"extra":[1]}"#,
        )
        .unwrap();
        let defaults = Settings::default();
        assert_eq!(settings.smtp_server, "smtp.example.com");
        assert!(settings.from.guest_edit);
        assert_eq!(
            settings.from.auth_edit_on_ldap_failure,
            defaults.from.auth_edit_on_ldap_failure
        );
        assert_eq!(settings.tenant, defaults.tenant);
        assert_eq!(settings.send_port, 25);
        let consent: ConsentRecord = decode("consent/v1", b"{}").unwrap();
        assert!(consent.tenants.is_empty());
        let history: crate::history::History = decode("history/v1", b"{}").unwrap();
        assert!(history.events.is_empty());
    }

    #[test]
    fn a_record_is_written_with_its_current_version_and_reads_back_equal() {
        let mut settings = Settings::default();
        settings.receive_port = 2525;
        let bytes = encode(&settings);
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["version"], SETTINGS);
        assert_eq!(decode::<Settings>("settings/v1", &bytes).unwrap(), settings);

        // Built from claims or read without `decode`, it is still written as current.
        let account: Account = json::from_slice(br#"{"tid":"t"}"#).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&encode(&account)).unwrap();
        assert_eq!(json["version"], ACCOUNT);
        let record = ConsentRecord::default();
        let json: serde_json::Value = serde_json::from_slice(&encode(&record)).unwrap();
        assert_eq!(json["version"], CONSENT);
    }

    /// The straight read of [`decode`] answers what the step-by-step one does, on records
    /// it takes and on those it must leave to the steps (newer, duplicated or odd
    /// versions, missing and unknown fields, deep nesting).
    #[test]
    fn the_straight_read_answers_as_the_step_by_step_one() {
        let written = String::from_utf8(encode(&Settings::default())).unwrap();
        let body = written.strip_prefix(r#"{"version":1,"#).unwrap();
        let deep = format!("{}{}", "[".repeat(130), "]".repeat(130));
        let cases = [
            written.clone(),
            format!(r#"{{"version":2,{body}"#),
            format!(r#"{{"version":1,{body}"#).replace('}', r#","version":2}"#),
            format!(r#"{{"version":2,{body}"#).replace("\"tenant\"", r#""version":1,"tenant""#),
            format!(r#"{{"version":"1",{body}"#),
            format!(r#"{{"version":1.0,{body}"#),
            format!(r#"{{"version":-1,{body}"#),
            format!(r#"{{{body}"#),
            format!(r#"{{"version":1,"unknown":{{"a":[1,2]}},{body}"#),
            format!(r#"{{"version":1,"unknown":{deep},{body}"#),
            written.replace(r#""tenant":"common","#, ""),
            written.replace(r#""guest_edit":false,"#, ""),
            written.replace(r#""send_port":25"#, r#""send_port":"25""#),
            format!("[{written}]"),
        ];
        for case in &cases {
            let straight = decode::<Settings>("settings/v1", case.as_bytes());
            let steps = decode_tree::<Settings>("settings/v1", case.as_bytes());
            assert_eq!(format!("{straight:?}"), format!("{steps:?}"), "{case}");
        }
        // The cases reach both answers: records read, and records refused.
        assert!(
            cases
                .iter()
                .any(|c| decode::<Settings>("k", c.as_bytes()).is_err())
        );
        assert!(json::from_slice::<Settings>(written.as_bytes()).is_some());
    }

    /// Each record type reads a stored record and writes it back byte for byte as the
    /// serde_json build did (outputs taken from that build): old layouts gain `version` and
    /// their defaults, strings are escaped the same way, absent `clock_skew` stays absent.
    #[test]
    fn records_are_written_byte_for_byte_as_the_serde_build_wrote_them() {
        use crate::history::History;
        use crate::mailer::journal::Journal;
        use crate::oauth::{FailedSignIn, RefreshLease};
        use crate::relay::policy::RecentSubmissions;
        use crate::signin::{DeviceFlow, TokenSet};
        fn again<T: Record>(key: &str, stored: &str) -> String {
            let record: T = decode(key, stored.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            String::from_utf8(encode(&record)).unwrap()
        }
        let cases: &[(&str, &str, &str)] = &[
            (
                "settings",
                r#"{"version":1,"service_provider":"exchange-online","smtp_server":"smtp.office365.com","send_port":587,"receive_port":2525,"login_credentials":"remotely-authenticated-user","device_email":"mfp@contoso.com","from":{"auth_edit_on_ldap_success":true,"auth_edit_on_ldap_failure":false,"guest_edit":true,"auth_send_despite_ldap_failure":false,"edit_without_auth":true,"alias_sender":true},"tenant":"contoso.onmicrosoft.com","client_id":"c88859d7-e6a2-48cb-acee-669df3387654","consent_redirect_uri":"https://example.com/a?b=c&d=\"e\""}"#,
                r#"{"version":1,"service_provider":"exchange-online","smtp_server":"smtp.office365.com","send_port":587,"receive_port":2525,"login_credentials":"remotely-authenticated-user","device_email":"mfp@contoso.com","from":{"auth_edit_on_ldap_success":true,"auth_edit_on_ldap_failure":false,"guest_edit":true,"auth_send_despite_ldap_failure":false,"edit_without_auth":true,"alias_sender":true},"tenant":"contoso.onmicrosoft.com","client_id":"c88859d7-e6a2-48cb-acee-669df3387654","consent_redirect_uri":"https://example.com/a?b=c&d=\"e\""}"#,
            ),
            (
                "settings-old",
                r#"{"service_provider":"not-selected","smtp_server":"","send_port":25,"receive_port":25,"login_credentials":"system","device_email":"","from":{}}"#,
                r#"{"version":1,"service_provider":"not-selected","smtp_server":"","send_port":25,"receive_port":25,"login_credentials":"system","device_email":"","from":{"auth_edit_on_ldap_success":false,"auth_edit_on_ldap_failure":true,"guest_edit":false,"auth_send_despite_ldap_failure":true,"edit_without_auth":false,"alias_sender":false},"tenant":"common","client_id":"c88859d7-e6a2-48cb-acee-669df3387654","consent_redirect_uri":"https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html"}"#,
            ),
            (
                "consent",
                r#"{"version":1,"tenants":[{"client_id":"a","tenant_id":"b","tenant_setting":"common"},{"client_id":"é\u0001\u001f\u007f/\\\"\u2028","tenant_id":"x","tenant_setting":"y"}]}"#,
                r#"{"version":1,"tenants":[{"client_id":"a","tenant_id":"b","tenant_setting":"common"},{"client_id":"é\u0001\u001f/\\\" ","tenant_id":"x","tenant_setting":"y"}]}"#,
            ),
            (
                "grant",
                r#"{"version":1,"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send offline_access","access_token":"at","refresh_token":"rt","id_token":"eyJ.x.y","expires_at":1700003600,"ext_expires_at":null,"obtained_at":1700000000}"#,
                r#"{"version":1,"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send offline_access","access_token":"at","refresh_token":"rt","id_token":"eyJ.x.y","expires_at":1700003600,"ext_expires_at":null,"obtained_at":1700000000}"#,
            ),
            (
                "grant-old",
                r#"{"token_type":"Bearer","scope":"s","access_token":"at","refresh_token":"rt","id_token":null,"expires_at":18446744073709551615,"ext_expires_at":5}"#,
                r#"{"version":1,"token_type":"Bearer","scope":"s","access_token":"at","refresh_token":"rt","id_token":null,"expires_at":18446744073709551615,"ext_expires_at":5,"obtained_at":null}"#,
            ),
            (
                "account",
                r#"{"version":1,"preferred_username":"a@b","email":null,"upn":"u","oid":"o","tid":"t"}"#,
                r#"{"version":1,"preferred_username":"a@b","email":null,"upn":"u","oid":"o","tid":"t"}"#,
            ),
            (
                "account-skew",
                r#"{"version":1,"preferred_username":null,"email":"e","upn":null,"oid":null,"tid":null,"clock_skew":{"device_now":10,"server_now":4000}}"#,
                r#"{"version":1,"preferred_username":null,"email":"e","upn":null,"oid":null,"tid":null,"clock_skew":{"device_now":10,"server_now":4000}}"#,
            ),
            (
                "flow",
                r#"{"version":1,"config":{"authority":"https://login.microsoftonline.com","tenant":"common","client_id":"c","consent_redirect_uri":"https://r"},"code":{"device_code":"DC","user_code":"FJ8QK5XLM","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser\n"},"expires_at":1700000900,"interval":10,"next_poll_at":1700000010,"ended":false,"failed_polls":3,"last_problem":{"code":"network-tls","message":"m","remedy":{"web-panel":"a","command-line":"b"}}}"#,
                r#"{"version":1,"config":{"authority":"https://login.microsoftonline.com","tenant":"common","client_id":"c","consent_redirect_uri":"https://r"},"code":{"device_code":"DC","user_code":"FJ8QK5XLM","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser\n"},"expires_at":1700000900,"interval":10,"next_poll_at":1700000010,"ended":false,"failed_polls":3,"last_problem":{"code":"network-tls","message":"m","remedy":{"web-panel":"a","command-line":"b"}}}"#,
            ),
            (
                "flow-old",
                r#"{"config":{"authority":"a","tenant":"t","client_id":"c","consent_redirect_uri":"r"},"code":{"device_code":"DC","user_code":"U","verification_uri":"https://v","expires_in":1,"interval":1,"message":null},"expires_at":1,"interval":1,"next_poll_at":1,"ended":true}"#,
                r#"{"version":1,"config":{"authority":"a","tenant":"t","client_id":"c","consent_redirect_uri":"r"},"code":{"device_code":"DC","user_code":"U","verification_uri":"https://v","expires_in":1,"interval":1,"message":null},"expires_at":1,"interval":1,"next_poll_at":1,"ended":true,"failed_polls":0,"last_problem":null}"#,
            ),
            (
                "failed",
                r#"{"version":1,"code":"sign-in-refused","message":"The sign-in was refused.","remedy":"Click [Open Authentication Page].","failed_at":1700000000}"#,
                r#"{"version":1,"code":"sign-in-refused","message":"The sign-in was refused.","remedy":"Click [Open Authentication Page].","failed_at":1700000000}"#,
            ),
            (
                "lease",
                r#"{"version":1,"until":1700000120}"#,
                r#"{"version":1,"until":1700000120}"#,
            ),
            (
                "history",
                r#"{"version":1,"events":[{"kind":"sign-in","at":1,"succeeded":false,"summary":"s","diagnosis":{"code":"c","severity":"warning","message":"m","remedy":"Click [Apply].","field":"smtp-server"},"server_reply":null,"origin":null},{"kind":"provider-reset","at":2,"succeeded":true,"summary":"r","diagnosis":null,"server_reply":"250 2.0.0 OK <x@y>\r\n","origin":"control-panel"},{"kind":"relayed","at":3,"succeeded":true,"summary":"q","diagnosis":{"code":"c","severity":"error","message":"m","remedy":{"web-panel":"w","command-line":"c"},"field":null},"server_reply":null,"origin":"web-panel"},{"kind":"send","at":4,"succeeded":true,"summary":"x"},{"kind":"refresh-failed","at":5,"succeeded":false,"summary":"y","diagnosis":{"code":"c","severity":"info","message":"m","remedy":"r"}}]}"#,
                r#"{"version":1,"events":[{"kind":"sign-in","at":1,"succeeded":false,"summary":"s","diagnosis":{"code":"c","severity":"warning","message":"m","remedy":"Click [Apply].","field":"smtp-server"},"server_reply":null,"origin":null},{"kind":"provider-reset","at":2,"succeeded":true,"summary":"r","diagnosis":null,"server_reply":"250 2.0.0 OK <x@y>\r\n","origin":"control-panel"},{"kind":"relayed","at":3,"succeeded":true,"summary":"q","diagnosis":{"code":"c","severity":"error","message":"m","remedy":{"web-panel":"w","command-line":"c"},"field":null},"server_reply":null,"origin":"web-panel"},{"kind":"send","at":4,"succeeded":true,"summary":"x","diagnosis":null,"server_reply":null,"origin":null},{"kind":"refresh-failed","at":5,"succeeded":false,"summary":"y","diagnosis":{"code":"c","severity":"info","message":"m","remedy":"r","field":null},"server_reply":null,"origin":null}]}"#,
            ),
            (
                "history-old",
                r#"{"events":[]}"#,
                r#"{"version":1,"events":[]}"#,
            ),
            (
                "journal",
                r#"{"version":1,"sends":[{"message_id":"<a@b>","recipients":3,"size":1234567,"attempt":2,"started_at":1700000000,"server":"smtp.office365.com:587"}]}"#,
                r#"{"version":1,"sends":[{"message_id":"<a@b>","recipients":3,"size":1234567,"attempt":2,"started_at":1700000000,"server":"smtp.office365.com:587"}]}"#,
            ),
            (
                "relay",
                r#"{"version":1,"at":[1,2,18446744073709551615]}"#,
                r#"{"version":1,"at":[1,2,18446744073709551615]}"#,
            ),
            ("relay-old", r#"{}"#, r#"{"version":1,"at":[]}"#),
        ];
        for (name, stored, written) in cases {
            let again = match name.split('-').next() {
                Some("settings") => again::<Settings>,
                Some("consent") => again::<ConsentRecord>,
                Some("grant") => again::<TokenSet>,
                Some("account") => again::<Account>,
                Some("flow") => again::<DeviceFlow>,
                Some("failed") => again::<FailedSignIn>,
                Some("lease") => again::<RefreshLease>,
                Some("history") => again::<History>,
                Some("journal") => again::<Journal>,
                _ => again::<RecentSubmissions>,
            };
            assert_eq!(again(name, stored), *written, "{name}");
        }
    }
}
