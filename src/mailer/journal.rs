//! The send journal: what the device knows of a send whose message went out in full but
//! whose outcome it has not recorded yet. Once the server holds the whole message, only
//! its reply to the final dot says whether it was delivered; if the device dies while
//! waiting for that reply (a power cut, SIGKILL), sending again blindly could deliver the
//! message twice (RFC 5321 §4.5.3.2), and saying nothing would hide a send that may have
//! arrived.
//!
//! So, before the final dot, the send commits a small record of itself under
//! [`JOURNAL_KEY`] (Message-ID, how many recipients, size, attempt, start time; never the
//! content nor the addresses), and deletes it in the very commit of the history entry of
//! its outcome ([`settle`]). An entry still there was never settled: the history shows it
//! as "may have been delivered" ([`unsettled_events`], diagnosis
//! [`OUTCOME_UNKNOWN`]) until a later send turns it into a history entry of its own and
//! deletes it ([`settle_abandoned`]).
//!
//! Several instances may send at once, so the record holds a list, changed by
//! compare-and-swap. The component cannot tell a send that died from one still waiting
//! in another instance (it has no clock and no view of other instances): an entry is
//! taken for abandoned only once [`ABANDONED_AFTER`] has passed since its send started,
//! or when more than [`MAX_LIVE`] are held. Until then it is shown, not settled, and its
//! words hold either way: the message went out, its outcome is not recorded.

use crate::diagnose::{Diagnostic, Severity};
use crate::history;
use crate::storage::{self, Storage, StoreError};

/// The store key of the journal. Not under `oauth/`: it holds no secret.
pub const JOURNAL_KEY: &str = "mailer/in-flight/v1";

/// The diagnosis code of a send whose outcome was never recorded.
pub const OUTCOME_UNKNOWN: &str = "send-outcome-unknown";

/// Seconds after a send started from which its unsettled entry counts as abandoned: far
/// longer than any send the host lets run (a network call's deadline, 600 s by default,
/// plus the SMTP stage waits it used, the reply to the final dot at most 10 minutes of
/// them). Taking a live send for abandoned costs little: the history then holds both
/// "may have been delivered" and the outcome that followed.
pub const ABANDONED_AFTER: u64 = 3600;

/// Entries kept at most before the oldest count as abandoned whatever their age: the
/// host opens at most 3 SMTP connections per destination at once, so more than this
/// many sends cannot be waiting for a verdict.
pub const MAX_LIVE: usize = 8;

/// Entries the record ever holds: a send that finds it full keeps no entry rather than
/// grow it (only a host that runs more than this many sends at once gets there).
pub const MAX_ENTRIES: usize = 32;

/// How often a change of the journal is tried again after another instance changed it
/// between reading and committing.
const ATTEMPTS: usize = 16;

/// One send whose message went out in full, awaiting its outcome.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct InFlight {
    pub message_id: String,
    pub recipients: usize,
    /// The message's size in bytes.
    pub size: u64,
    /// Which try of the send this was, from 1.
    pub attempt: u32,
    /// When the send started (Unix seconds, the caller's clock).
    pub started_at: u64,
    /// The SMTP server and port it went to (`host:port`).
    pub server: String,
}

/// The stored record: every unsettled send, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct Journal {
    /// The record's layout (see [`storage::records`]).
    pub version: storage::RecordVersion<{ storage::records::SEND_JOURNAL }>,
    /// Empty when a stored record lacks it ([`storage::Record::defaults`]).
    pub sends: Vec<InFlight>,
}

/// The journal as stored in `raw`: `None` when it must be left alone (written by a newer
/// firmware, whose entries this build could drop by writing it back). An unreadable
/// record holds nothing to keep and reads as empty.
fn read(raw: Option<&[u8]>) -> Option<Journal> {
    match raw.map(|bytes| storage::decode::<Journal>(JOURNAL_KEY, bytes)) {
        None | Some(Err(StoreError::Corrupt(_))) => Some(Journal::default()),
        Some(Ok(journal)) => Some(journal),
        Some(Err(_)) => None,
    }
}

/// The write that stores `journal` (deleting the key when it is empty).
fn write(journal: &Journal) -> storage::Write {
    let value = (!journal.sends.is_empty()).then(|| storage::encode(journal));
    (JOURNAL_KEY.to_owned(), value)
}

/// Records `entry` before the final dot is written. Best effort, as the history is:
/// returns whether it landed; a store that refuses it fails no send.
pub fn begin(s: &impl Storage, entry: &InFlight) -> bool {
    for _ in 0..ATTEMPTS {
        let Ok(raw) = s.get(JOURNAL_KEY) else {
            return false;
        };
        let Some(mut journal) = read(raw.as_deref()) else {
            return false;
        };
        if journal.sends.len() >= MAX_ENTRIES {
            return false;
        }
        journal.sends.push(entry.clone());
        match s.commit_if(
            vec![storage::guard(JOURNAL_KEY, raw.as_deref())],
            vec![write(&journal)],
        ) {
            Ok(()) => return true,
            Err(StoreError::Conflict) => continue,
            Err(_) => return false,
        }
    }
    false
}

/// Records `event`, the outcome of a send, and deletes its journal entry `entry` (if it
/// wrote one) in the same commit. If the entry is gone already (a later send took it for
/// abandoned), the event is recorded on its own.
pub fn settle(s: &impl Storage, entry: Option<&InFlight>, event: &history::Event) {
    if let Some(entry) = entry {
        for _ in 0..ATTEMPTS {
            let Ok(raw) = s.get(JOURNAL_KEY) else { break };
            let Some(mut journal) = read(raw.as_deref()) else {
                break;
            };
            let Some(at) = journal.sends.iter().position(|e| e == entry) else {
                break;
            };
            journal.sends.remove(at);
            match history::commit_recorded(
                s,
                vec![storage::guard(JOURNAL_KEY, raw.as_deref())],
                vec![write(&journal)],
                event,
            ) {
                Ok(()) => return,
                Err(StoreError::Conflict) => continue,
                Err(_) => break,
            }
        }
    }
    history::append(s, event);
}

/// Turns the entries of sends that cannot still be running (see the module doc) into
/// history entries, each in the commit that deletes it. `now` is the caller's clock.
/// Never fails: an entry that cannot be settled now stays for the next call.
pub fn settle_abandoned(s: &impl Storage, now: u64) {
    for _ in 0..ATTEMPTS {
        let Ok(raw) = s.get(JOURNAL_KEY) else { return };
        let Some(mut journal) = read(raw.as_deref()) else {
            return;
        };
        let excess = journal.sends.len().saturating_sub(MAX_LIVE);
        let Some(at) =
            journal.sends.iter().enumerate().position(|(i, e)| {
                i < excess || now >= e.started_at.saturating_add(ABANDONED_AFTER)
            })
        else {
            // Nothing abandoned; an unreadable record (read as empty) is deleted.
            if raw.is_some() && journal.sends.is_empty() {
                let _ = s.commit_if(
                    vec![storage::guard(JOURNAL_KEY, raw.as_deref())],
                    vec![write(&journal)],
                );
            }
            return;
        };
        let abandoned = journal.sends.remove(at);
        let settled = history::commit_recorded(
            s,
            vec![storage::guard(JOURNAL_KEY, raw.as_deref())],
            vec![write(&journal)],
            &unsettled_event(&abandoned),
        );
        match settled {
            // One settled, or another instance changed the journal: look again.
            Ok(()) | Err(StoreError::Conflict) => continue,
            Err(_) => return,
        }
    }
}

/// The history entries of the sends whose outcome is not recorded, newest first. A
/// journal this build cannot read shows none.
pub fn unsettled_events(s: &impl Storage) -> Result<Vec<history::Event>, StoreError> {
    let raw = s.get(JOURNAL_KEY)?;
    let journal = read(raw.as_deref()).unwrap_or_default();
    Ok(journal.sends.iter().rev().map(unsettled_event).collect())
}

/// What the history says of a send whose outcome was not recorded.
pub fn unsettled_event(entry: &InFlight) -> history::Event {
    let mut facts = vec![
        history::size_text(entry.size),
        format!("Message-ID {}", entry.message_id),
    ];
    if entry.attempt > 1 {
        facts.push(format!("attempt {}", entry.attempt));
    }
    history::Event::new(
        history::EventKind::Send,
        entry.started_at,
        false,
        format!(
            "Sent in full to {} ({}), but the outcome was not recorded: it may have been delivered.",
            history::recipients(entry.recipients),
            facts.join(", ")
        ),
    )
    .with_diagnosis(&outcome_unknown(&entry.server))
}

/// The diagnosis of a send whose outcome was not recorded.
fn outcome_unknown(server: &str) -> Diagnostic {
    Diagnostic::new(
        OUTCOME_UNKNOWN,
        Severity::Warning,
        format!(
            "The message was sent in full to {server}, but the server's verdict on it was never recorded: the device stopped (a restart or a power cut) while waiting for it, or the send is waiting still. The message may have been delivered."
        ),
        "Check with a recipient, or in the mailbox's Sent Items, whether the message arrived before you send it again; sending it again may deliver it twice.",
    )
}
