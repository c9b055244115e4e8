//! Settings input (`panel::apply` over `settings::rules` and `settings::values`): any keys
//! and values from either panel, applied to the factory settings or to any stored
//! settings record, as an administrator, a control-panel user or a hand-edited (or
//! corrupted) state folder can give them.
//!
//! Input: fields separated by `0xFF`: flags (bit 0: from the control panel, else the web
//! panel; bit 1: field 1 is stored as the settings record first; bit 2: a grant is
//! stored, so leaving Exchange Online signs out and writes history), the stored settings
//! record, then key, value, key, value… (a last key without a value gets an empty one).
//!
//! Invariants: no panic. A refusal changes nothing in the store, and every refusal of it
//! (the first and the `more` ones) has a code, a message and a remedy in both wordings,
//! none with a line break or other control character, and names the key it refuses (one
//! the Apply gave), except a storage refusal. An accepted Apply stores what it answers:
//! each value it was given reads back as given (see [`expected`] for the two forms the
//! rules normalise), the stored record decodes to the same settings, the SMTP destination
//! record is `server:port`, and applying the same changes again is accepted and changes
//! nothing. A stored record that decodes encodes back to the same settings.

use std::cell::RefCell;
use std::collections::BTreeMap;

use mfp_smtp_oauth::diagnose::Diagnostic;
use mfp_smtp_oauth::error::{PanelError, PanelErrorKind};
use mfp_smtp_oauth::panel::{self, ApplyOutcome};
use mfp_smtp_oauth::remedy::Remedy;
use mfp_smtp_oauth::settings::{EXCHANGE_SERVER, Origin, SettingKey, Settings};
use mfp_smtp_oauth::storage::{
    self, GRANT_KEY, Guard, SETTINGS_KEY, SMTP_DESTINATION_KEY, Storage, StoreError, Write,
};

use super::support::{Fields, has_control};

/// Unix seconds of every Apply.
const NOW: u64 = 1_718_006_400;

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let flags = f.byte(0);
    let origin = if flags & 1 != 0 {
        Origin::ControlPanel
    } else {
        Origin::WebPanel
    };
    let record = f.bytes(1);
    let fields = f.rest(2);
    let changes: Vec<(String, String)> = fields
        .chunks(2)
        .map(|pair| {
            let text = |i: usize| {
                String::from_utf8_lossy(pair.get(i).copied().unwrap_or_default()).into_owned()
            };
            (text(0), text(1))
        })
        .collect();

    let store = MapStorage::default();
    if flags & 2 != 0 {
        store.put(SETTINGS_KEY, record);
        check_record(record);
    }
    if flags & 4 != 0 {
        store.put(GRANT_KEY, b"{}");
    }
    let before = store.snapshot();
    let current = storage::load_settings(&store);

    match panel::apply(&store, origin, &changes, NOW) {
        Err(refusal) => {
            assert_eq!(
                store.snapshot(),
                before,
                "a refused Apply changed the store"
            );
            check_refusal(&refusal, &changes);
        }
        Ok(outcome) => {
            let current = current.expect("an Apply accepted over settings that do not load");
            check_accepted(&store, origin, &changes, &current, &outcome);
        }
    }
}

/// A stored record that decodes encodes back to the same settings.
fn check_record(record: &[u8]) {
    if let Ok(settings) = storage::decode::<Settings>(SETTINGS_KEY, record) {
        let again = storage::decode::<Settings>(SETTINGS_KEY, &storage::encode(&settings));
        assert_eq!(
            again.as_ref(),
            Ok(&settings),
            "the record does not round-trip"
        );
    }
}

fn check_refusal(refusal: &PanelError, changes: &[(String, String)]) {
    assert!(
        refusal.more.iter().all(|r| r.more.is_empty()),
        "nested refusals"
    );
    for r in refusal.each() {
        assert!(
            !r.code.is_empty()
                && r.code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "refusal code {:?}",
            r.code
        );
        check_words("refusal message", &r.message);
        check_remedy(&r.remedy);
        match (r.kind, &r.field) {
            (PanelErrorKind::Storage, _) => {}
            (_, Some(field)) => assert!(
                changes.iter().any(|(key, _)| key == field),
                "{} refuses {field:?}, which the Apply did not give",
                r.code
            ),
            (_, None) => panic!("{} names no field", r.code),
        }
    }
}

fn check_accepted(
    store: &MapStorage,
    origin: Origin,
    changes: &[(String, String)],
    current: &Settings,
    outcome: &ApplyOutcome,
) {
    let stored = storage::load_settings(store).expect("the applied settings load");
    assert_eq!(
        outcome.settings,
        panel::entries(&stored),
        "answered is not stored"
    );
    for notice in outcome.notices.iter().chain(&outcome.diagnostics) {
        check_diagnostic(notice);
    }
    for (key_text, value) in changes {
        let key = SettingKey::parse(key_text).expect("an unknown key accepted");
        let shown = stored.value_text(key);
        assert!(
            expected(key, value, &stored).matches(&shown),
            "{key_text} = {value:?} reads back as {shown:?}"
        );
    }
    if stored != *current {
        let destination = format!("{}:{}", stored.smtp_server, stored.send_port);
        assert_eq!(
            store.get(SMTP_DESTINATION_KEY).unwrap().as_deref(),
            Some(destination.as_bytes()),
            "the SMTP destination record lags the settings"
        );
    }
    // The same Apply again: accepted, and nothing left to change.
    let before = store.snapshot();
    let again = panel::apply(store, origin, changes, NOW)
        .unwrap_or_else(|r| panic!("the same Apply refused the second time: {}", r.code));
    assert_eq!(
        again.settings, outcome.settings,
        "the same Apply changed the settings again"
    );
    assert_eq!(store.snapshot(), before, "the same Apply wrote again");
}

/// What an accepted `value` of `key` reads back as.
enum Expected {
    Exactly(String),
    Number(u64),
}

impl Expected {
    fn matches(&self, shown: &str) -> bool {
        match self {
            Self::Exactly(text) => shown == text,
            Self::Number(n) => shown.parse::<u64>().ok() == Some(*n),
        }
    }
}

/// The application id is kept in lower case (a GUID's case means nothing); a port is a
/// number, whatever zeros lead it; the server restated while Exchange Online is selected,
/// in any case, is kept as `smtp.office365.com`; everything else is kept as given.
fn expected(key: SettingKey, value: &str, stored: &Settings) -> Expected {
    match key {
        SettingKey::ClientId => Expected::Exactly(value.to_ascii_lowercase()),
        SettingKey::SendPort | SettingKey::ReceivePort => {
            Expected::Number(value.parse().expect("an accepted port is a number"))
        }
        SettingKey::SmtpServer if stored.is_exchange_online() => {
            assert!(value.eq_ignore_ascii_case(EXCHANGE_SERVER));
            Expected::Exactly(EXCHANGE_SERVER.to_owned())
        }
        _ => Expected::Exactly(value.to_owned()),
    }
}

fn check_diagnostic(d: &Diagnostic) {
    assert!(!d.code.is_empty(), "a diagnostic without a code");
    check_words("diagnostic message", &d.message);
    check_remedy(&d.remedy);
}

fn check_remedy(remedy: &Remedy) {
    check_words("remedy (web panel)", remedy.web_panel());
    check_words("remedy (command line)", remedy.command_line());
}

/// Words a panel shows: some, on one line, with no control character (a value quoted in
/// them is escaped).
fn check_words(what: &str, text: &str) {
    assert!(!text.trim().is_empty(), "an empty {what}");
    assert!(
        !has_control(text),
        "a control character in the {what}: {text:?}"
    );
}

/// The store as a map, so a test can see every write (and that a refusal made none).
#[derive(Default)]
struct MapStorage {
    map: RefCell<BTreeMap<String, Vec<u8>>>,
}

impl MapStorage {
    fn put(&self, key: &str, value: &[u8]) {
        self.map.borrow_mut().insert(key.to_owned(), value.to_vec());
    }

    fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.map.borrow().clone()
    }

    fn write(&self, writes: Vec<Write>) {
        let mut map = self.map.borrow_mut();
        for (key, value) in writes {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
    }
}

impl Storage for MapStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.write(writes);
        Ok(())
    }

    fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        let held = guards
            .iter()
            .all(|(key, value)| self.map.borrow().get(key) == value.as_ref());
        if !held {
            return Err(StoreError::Conflict);
        }
        self.write(writes);
        Ok(())
    }
}
