//! The device's event history, in the spirit of CentreWare's job and error history: how
//! sign-ins ended, how each send attempt went (with the server's reply, never the
//! message's content), which provider changes discarded the sign-in and from which panel,
//! and which token refreshes failed. The current warnings stay with
//! [`crate::panel::diagnostics`]; the history keeps what the current state no longer shows
//! (a refused send, a consent failure, a reset typed on the control panel).
//!
//! The component keeps it in the store, so every front end shows the same one: one record
//! under [`HISTORY_KEY`], oldest first, bounded to [`MAX_EVENTS`] (the oldest dropped).
//! An entry goes into the very commit of what it records where there is one
//! ([`commit_recorded`], [`Recorded`]: a failed sign-in and the deletion of its flow, a
//! reset and the deletion of the grant), else it is appended when the outcome is known
//! ([`append`]: a send). Both are compare-and-swaps on the history record, retried a few
//! times; an entry that keeps losing that race is dropped, and never the operation it
//! records.
//!
//! Each service words its own entries (`oauth`, `mailer`, `panel`); this module only
//! keeps them.

use std::borrow::Cow;
use std::cell::RefCell;

use miniserde::de::Visitor;
use miniserde::ser::Fragment;

use crate::diagnose::{Diagnostic, Severity};
use crate::remedy::Remedy;
use crate::settings::Origin;
use crate::storage::{self, Guard, Storage, StoreError, Write};

/// The store key of the history record. Not under `oauth/`: it holds no secret, so it is
/// not sealed, and a provider reset or a sign-out (which delete the grant) keep it.
pub const HISTORY_KEY: &str = "history/v1";

/// How many entries are kept; the oldest are dropped. At most [`MAX_TEXT`] characters a
/// text, so the record stays far below the host's value limit (1 MiB).
pub const MAX_EVENTS: usize = 200;

/// The longest text kept in an entry (a server's multi-line reply may be longer).
pub const MAX_TEXT: usize = 1024;

/// How often an entry is tried again after another instance changed the history between
/// reading and committing it.
const ATTEMPTS: usize = 4;

/// What an entry is about; mirrors `event-kind` in `wit/panel.wit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub enum EventKind {
    /// A sign-in ended (signed in, or failed), or could not start.
    #[serde(rename = "sign-in")]
    SignIn,
    /// One send attempt.
    #[serde(rename = "send")]
    Send,
    /// Leaving Exchange Online discarded the sign-in (rule S4).
    #[serde(rename = "provider-reset")]
    ProviderReset,
    /// The sign-in could not be renewed during a send or the keep-alive.
    #[serde(rename = "refresh-failed")]
    RefreshFailed,
    /// One message a nearby device submitted through the relay.
    #[serde(rename = "relayed")]
    Relayed,
}

/// A diagnosis as the history keeps it (codes are stable strings).
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct Diagnosis {
    pub code: String,
    /// Its WIT case name (`info`, `warning`, `error`).
    pub severity: Severity,
    pub message: String,
    pub remedy: Remedy,
    pub field: Option<String>,
}

impl From<&Diagnostic> for Diagnosis {
    fn from(d: &Diagnostic) -> Self {
        Self {
            code: d.code.to_owned(),
            severity: d.severity,
            message: bounded(&d.message),
            remedy: d.remedy.map(bounded),
            field: d.field.map(str::to_owned),
        }
    }
}

/// One entry; mirrors `event` in `wit/panel.wit`.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct Event {
    pub kind: EventKind,
    /// When it happened (Unix seconds, as the caller passed it: the component has no clock).
    pub at: u64,
    pub succeeded: bool,
    /// One line in the administrator's words.
    pub summary: String,
    pub diagnosis: Option<Diagnosis>,
    /// The SMTP server's last reply, when one answered.
    pub server_reply: Option<String>,
    /// The panel an Apply came from, for a provider reset (its WIT case name).
    pub origin: Option<Origin>,
}

impl Event {
    pub fn new(kind: EventKind, at: u64, succeeded: bool, summary: impl Into<String>) -> Self {
        Self {
            kind,
            at,
            succeeded,
            summary: bounded(&summary.into()),
            diagnosis: None,
            server_reply: None,
            origin: None,
        }
    }

    pub fn with_diagnosis(mut self, diagnosis: &Diagnostic) -> Self {
        self.diagnosis = Some(diagnosis.into());
        self
    }

    pub fn with_server_reply(mut self, reply: Option<&str>) -> Self {
        self.server_reply = reply.map(bounded);
        self
    }

    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Whether `self` says what `newest` already says (only the time differs).
    fn repeats(&self, newest: &Event) -> bool {
        Self {
            at: newest.at,
            ..self.clone()
        } == *newest
    }
}

/// The stored record: every kept entry, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct History {
    /// The record's layout (see [`storage::records`]).
    pub version: storage::RecordVersion<{ storage::records::HISTORY }>,
    /// Empty when a stored record lacks it ([`storage::Record::defaults`]).
    pub events: Vec<Event>,
}

impl History {
    /// Adds `event` as the newest entry, dropping the oldest beyond [`MAX_EVENTS`]. A
    /// failed refresh that repeats the newest entry is not added again: a keep-alive that
    /// cannot reach Microsoft for a week would otherwise push out everything else.
    fn push(&mut self, event: Event) {
        if event.kind == EventKind::RefreshFailed
            && self
                .events
                .last()
                .is_some_and(|newest| event.repeats(newest))
        {
            return;
        }
        self.events.push(event);
        let excess = self.events.len().saturating_sub(MAX_EVENTS);
        self.events.drain(..excess);
    }
}

/// Every kept entry, newest first (in the order they were recorded, whatever the clocks
/// of the callers said), with the sends whose outcome was never recorded
/// ([`crate::mailer::journal`]: "may have been delivered") placed by their time: those
/// are not kept here yet, but the administrator must see them from the first look after
/// a restart.
pub fn events(storage: &impl Storage) -> Result<Vec<Event>, StoreError> {
    let mut events = match storage.get(HISTORY_KEY)? {
        None => Vec::new(),
        Some(bytes) => {
            let history: History = storage::decode(HISTORY_KEY, &bytes)?;
            history.events.into_iter().rev().collect()
        }
    };
    for unsettled in crate::mailer::journal::unsettled_events(storage)?
        .into_iter()
        .rev()
    {
        let at = events
            .iter()
            .position(|e| e.at <= unsettled.at)
            .unwrap_or(events.len());
        events.insert(at, unsettled);
    }
    Ok(events)
}

/// Appends `event` on its own, after the outcome it records is known. Never fails: a
/// history that cannot be written (store full, another instance winning every race, a
/// record of a newer firmware) loses this entry, and nothing else.
pub fn append(storage: &impl Storage, event: &Event) {
    let _ = try_commit(storage, &[], &[], event);
}

/// Commits `writes` if every guard holds (as [`Storage::commit_if`]) with `event` added to
/// the history in the same transaction. A conflict on the history alone (another
/// instance recorded something meanwhile) is retried; a conflict on `guards` is the
/// caller's, as without the entry. When the entry cannot be added, the writes are
/// committed without it: recording never fails the operation it records.
pub fn commit_recorded(
    storage: &impl Storage,
    guards: Vec<Guard>,
    writes: Vec<Write>,
    event: &Event,
) -> Result<(), StoreError> {
    match try_commit(storage, &guards, &writes, event) {
        Some(result) => result,
        None => storage.commit_if(guards, writes),
    }
}

/// Commits `writes` and `event` if `guards` and the history as read hold: `Some` with
/// the outcome when that decided it, `None` when the entry could not be added.
fn try_commit(
    storage: &impl Storage,
    guards: &[Guard],
    writes: &[Write],
    event: &Event,
) -> Option<Result<(), StoreError>> {
    for _ in 0..ATTEMPTS {
        let raw = storage.get(HISTORY_KEY).ok()?;
        let history = with_event(raw.as_deref(), event)?;
        let mut all_guards = guards.to_vec();
        all_guards.push(storage::guard(HISTORY_KEY, raw.as_deref()));
        let mut all_writes = writes.to_vec();
        all_writes.push((HISTORY_KEY.to_owned(), Some(history)));
        match storage.commit_if(all_guards, all_writes) {
            Ok(()) => return Some(Ok(())),
            // Whose conflict? The caller's guards decide the operation, not the history.
            Err(StoreError::Conflict) if still_hold(storage, guards)? => continue,
            Err(StoreError::Conflict) => return Some(Err(StoreError::Conflict)),
            // The store may refuse the larger commit (full): try without the entry.
            Err(_) => return None,
        }
    }
    None
}

/// Whether every guard still holds; `None` when the store cannot say.
fn still_hold(storage: &impl Storage, guards: &[Guard]) -> Option<bool> {
    for (key, expected) in guards {
        if storage.get(key).ok()? != *expected {
            return Some(false);
        }
    }
    Some(true)
}

/// The history record `raw` with `event` added. An unreadable record is started afresh
/// (it held nothing readable to keep); one written by a newer firmware is left alone
/// (`None`), since writing it back would drop what this build cannot read.
fn with_event(raw: Option<&[u8]>, event: &Event) -> Option<Vec<u8>> {
    let mut history = match raw.map(|bytes| storage::decode::<History>(HISTORY_KEY, bytes)) {
        None | Some(Err(StoreError::Corrupt(_))) => History::default(),
        Some(Ok(history)) => history,
        Some(Err(_)) => return None,
    };
    history.push(event.clone());
    Some(storage::encode(&history))
}

/// A store whose commits carry a history entry, for a read-modify-write helper that
/// commits through [`Storage`] (e.g. [`storage::update_settings`]): each commit made
/// while an entry is set goes through [`commit_recorded`]. Reads pass through.
pub struct Recorded<'a, S: Storage> {
    inner: &'a S,
    event: RefCell<Option<Event>>,
}

impl<'a, S: Storage> Recorded<'a, S> {
    pub fn new(inner: &'a S, event: Option<Event>) -> Self {
        Self {
            inner,
            event: RefCell::new(event),
        }
    }

    /// The entry the next commit carries (`None`: none), for a caller that decides it
    /// again on every attempt of its read-modify-write.
    pub fn set(&self, event: Option<Event>) {
        *self.event.borrow_mut() = event;
    }
}

impl<S: Storage> Storage for Recorded<'_, S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        match self.event.borrow().clone() {
            Some(event) => commit_recorded(self.inner, Vec::new(), writes, &event),
            None => self.inner.commit(writes),
        }
    }

    fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        match self.event.borrow().clone() {
            Some(event) => commit_recorded(self.inner, guards, writes, &event),
            None => self.inner.commit_if(guards, writes),
        }
    }
}

/// `text`, cut to at most [`MAX_TEXT`] characters (with `…` when cut).
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

/// "1 recipient", "3 recipients".
pub fn recipients(n: usize) -> String {
    if n == 1 {
        "1 recipient".to_owned()
    } else {
        format!("{n} recipients")
    }
}

/// A message size as people read it: `812 bytes`, `12.3 kB`, `24.8 MB` (powers of 1000),
/// to the nearest tenth, a half rounding up. In integers: the component is built without
/// floating-point formatting (issue #11).
pub fn size_text(bytes: u64) -> String {
    let tenths = |unit: u64| {
        let tenth = unit / 10;
        bytes / tenth + u64::from(bytes % tenth >= tenth / 2)
    };
    let (tenths, unit) = match bytes {
        0..1_000 => return format!("{bytes} bytes"),
        // 999,950 bytes and more round to 1000.0 kB, as the floating-point text did.
        1_000..1_000_000 => (tenths(1_000), "kB"),
        _ => (tenths(1_000_000), "MB"),
    };
    format!("{}.{} {unit}", tenths / 10, tenths % 10)
}

/// Writes and reads a unit enum as its WIT case names, for types that are not the
/// history's own (serde's `with` modules before).
macro_rules! case_names {
    ($ty:ty { $($case:path => $name:literal),+ $(,)? }) => {
        impl miniserde::Serialize for $ty {
            fn begin(&self) -> Fragment<'_> {
                Fragment::Str(Cow::Borrowed(match self {
                    $($case => $name),+
                }))
            }
        }

        impl miniserde::Deserialize for $ty {
            fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
                miniserde::make_place!(Place);

                impl Visitor for Place<$ty> {
                    fn string(&mut self, s: &str) -> miniserde::Result<()> {
                        self.out = Some(match s {
                            $($name => $case,)+
                            _ => return Err(miniserde::Error),
                        });
                        Ok(())
                    }
                }

                Place::new(out)
            }
        }
    };
}

case_names!(Severity {
    Severity::Info => "info",
    Severity::Warning => "warning",
    Severity::Error => "error",
});

case_names!(Origin {
    Origin::WebPanel => "web-panel",
    Origin::ControlPanel => "control-panel",
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn event(n: u64) -> Event {
        Event::new(EventKind::Send, n, true, format!("send {n}"))
    }

    #[test]
    fn the_history_is_bounded_and_newest_first() {
        let s = MemoryStorage::default();
        for n in 0..(MAX_EVENTS as u64 + 5) {
            append(&s, &event(n));
        }
        let kept = events(&s).unwrap();
        assert_eq!(kept.len(), MAX_EVENTS);
        assert_eq!(kept[0].at, MAX_EVENTS as u64 + 4, "newest first");
        assert_eq!(kept[MAX_EVENTS - 1].at, 5, "the five oldest were dropped");
    }

    #[test]
    fn newest_first_is_the_order_of_recording_not_of_the_callers_clocks() {
        let s = MemoryStorage::default();
        append(&s, &event(2_000));
        append(&s, &event(1_000)); // a caller whose clock is behind
        let at: Vec<u64> = events(&s).unwrap().iter().map(|e| e.at).collect();
        assert_eq!(at, [1_000, 2_000]);
    }

    /// A store whose history another instance changes before each of the first `n`
    /// commits that write it.
    struct Contended {
        inner: MemoryStorage,
        left: std::cell::Cell<usize>,
    }

    impl Storage for Contended {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key)
        }
        fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
            self.commit_if(Vec::new(), writes)
        }
        fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
            if self.left.get() > 0 && writes.iter().any(|(k, _)| k == HISTORY_KEY) {
                self.left.set(self.left.get() - 1);
                append(&self.inner, &Event::new(EventKind::Send, 0, false, "other"));
            }
            self.inner.commit_if(guards, writes)
        }
    }

    #[test]
    fn a_recorded_commit_retries_a_history_conflict_and_keeps_both_entries() {
        let s = Contended {
            inner: MemoryStorage::default(),
            left: 1.into(),
        };
        commit_recorded(
            &s,
            Vec::new(),
            vec![("k".into(), Some(b"v".to_vec()))],
            &event(1),
        )
        .unwrap();
        assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
        let summaries: Vec<String> = events(&s).unwrap().into_iter().map(|e| e.summary).collect();
        assert_eq!(summaries, ["send 1", "other"]);
    }

    #[test]
    fn an_entry_that_keeps_losing_the_race_never_fails_what_it_records() {
        let s = Contended {
            inner: MemoryStorage::default(),
            left: (ATTEMPTS + 10).into(),
        };
        commit_recorded(
            &s,
            Vec::new(),
            vec![("k".into(), Some(b"v".to_vec()))],
            &event(1),
        )
        .expect("the writes land without the entry");
        assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
        assert!(events(&s).unwrap().iter().all(|e| e.summary != "send 1"));
    }

    #[test]
    fn a_conflict_on_the_callers_guard_is_the_callers() {
        let s = MemoryStorage::default();
        s.commit(vec![("flow".into(), Some(b"new".to_vec()))])
            .unwrap();
        let stale = vec![storage::guard("flow", Some(b"old"))];
        let result = commit_recorded(&s, stale, vec![("flow".into(), None)], &event(1));
        assert_eq!(result, Err(StoreError::Conflict));
        assert_eq!(s.get("flow").unwrap(), Some(b"new".to_vec()));
        assert!(
            events(&s).unwrap().is_empty(),
            "nothing recorded for what did not happen"
        );
    }

    #[test]
    fn a_history_of_a_newer_firmware_is_left_alone_and_an_unreadable_one_restarted() {
        let s = MemoryStorage::default();
        let newer = format!(
            r#"{{"version":{},"events":[]}}"#,
            storage::records::HISTORY + 1
        );
        s.commit(vec![(HISTORY_KEY.into(), Some(newer.clone().into_bytes()))])
            .unwrap();
        commit_recorded(
            &s,
            Vec::new(),
            vec![("k".into(), Some(b"v".to_vec()))],
            &event(1),
        )
        .unwrap();
        assert_eq!(s.get("k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(s.get(HISTORY_KEY).unwrap(), Some(newer.into_bytes()));

        s.commit(vec![(HISTORY_KEY.into(), Some(b"{not json".to_vec()))])
            .unwrap();
        assert!(matches!(events(&s), Err(StoreError::Corrupt(_))));
        append(&s, &event(2));
        assert_eq!(events(&s).unwrap().len(), 1);
    }

    #[test]
    fn a_repeated_refresh_failure_is_kept_once_other_repeats_every_time() {
        let s = MemoryStorage::default();
        let failed = |at| Event::new(EventKind::RefreshFailed, at, false, "unreachable");
        append(&s, &failed(1));
        append(&s, &failed(2));
        append(&s, &event(3));
        append(&s, &event(3));
        append(&s, &failed(4));
        let at: Vec<u64> = events(&s).unwrap().iter().map(|e| e.at).collect();
        assert_eq!(at, [4, 3, 3, 1]);
    }

    #[test]
    fn long_texts_are_cut_and_the_record_reads_back() {
        let long = "5".repeat(MAX_TEXT + 100);
        let e = Event::new(EventKind::Send, 1, false, long.clone())
            .with_server_reply(Some(&long))
            .with_origin(Origin::ControlPanel);
        assert_eq!(e.summary.chars().count(), MAX_TEXT + 1);
        let s = MemoryStorage::default();
        append(&s, &e);
        assert_eq!(events(&s).unwrap(), [e]);
        let json: serde_json::Value =
            serde_json::from_slice(&s.get(HISTORY_KEY).unwrap().unwrap()).unwrap();
        assert_eq!(json["version"], storage::records::HISTORY);
        assert_eq!(json["events"][0]["origin"], "control-panel");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(812), "812 bytes");
        assert_eq!(size_text(12_345), "12.3 kB");
        assert_eq!(size_text(24_800_000), "24.8 MB");
        for (bytes, text) in [
            (0, "0 bytes"),
            (999, "999 bytes"),
            (1_000, "1.0 kB"),
            (1_049, "1.0 kB"),
            (1_050, "1.1 kB"),
            (99_949, "99.9 kB"),
            (99_950, "100.0 kB"),
            (999_949, "999.9 kB"),
            (999_950, "1000.0 kB"),
            (999_999, "1000.0 kB"),
            (1_000_000, "1.0 MB"),
            (1_234_567, "1.2 MB"),
            (1_249_999, "1.2 MB"),
            (1_250_000, "1.3 MB"),
            (35_000_000, "35.0 MB"),
            (u64::MAX, "18446744073709.6 MB"),
        ] {
            assert_eq!(size_text(bytes), text, "{bytes}");
        }
    }

    /// The integer text is the one the floating-point formatting gave, except at an exact
    /// half (1,250 bytes), where `{:.1}` went by the binary fraction nearest the quotient.
    #[test]
    fn sizes_read_as_the_floating_point_text_did_except_at_halves() {
        let float = |bytes: u64| match bytes {
            0..1_000 => format!("{bytes} bytes"),
            1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
            _ => format!("{:.1} MB", bytes as f64 / 1e6),
        };
        let samples = (0..1_000_000u64).chain((1..100_000u64).map(|n| n * 7_919 + 1_000_000));
        for bytes in samples {
            let half = if bytes < 1_000_000 { 50 } else { 50_000 };
            if bytes >= 1_000 && bytes % (2 * half) == half {
                continue;
            }
            assert_eq!(size_text(bytes), float(bytes), "{bytes}");
        }
        assert_eq!(recipients(1), "1 recipient");
        assert_eq!(recipients(2), "2 recipients");
    }
}
