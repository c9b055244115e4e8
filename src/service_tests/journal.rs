//! The send journal (issue 12, "Crash safety"): a send commits a record of itself before
//! the final dot and deletes it with the history entry of its outcome, so a device that
//! dies while the server decides still reports the message as "may have been delivered",
//! and a later send turns that into a history entry of its own.

use std::cell::{Cell, RefCell};

use mfp_fakes::{Scenario, SmtpCase};

use super::rig::{FakeStream, RECIPIENT, Rig, T0, message};
use crate::capabilities::{NetFailure, SmtpConnector, SmtpStream};
use crate::history::{self, EventKind, HISTORY_KEY};
use crate::mailer::journal::{
    self, ABANDONED_AFTER, InFlight, JOURNAL_KEY, MAX_ENTRIES, MAX_LIVE, OUTCOME_UNKNOWN,
};
use crate::mailer::{self, OutgoingMessage, SendFailure, SendReport};
use crate::storage::{Guard, MemoryStorage, Storage, StoreError, Write};

/// The rig's store, watched: `at_journal` keeps what the client had written to the SMTP
/// server when the journal entry was committed; once `stop_after_journal` is set, every
/// operation after that commit fails, as if the device had died right there: what the
/// rig's store then holds is what a restarted device finds.
struct Watched<'a> {
    rig: &'a Rig,
    at_journal: RefCell<Option<String>>,
    stop_after_journal: bool,
    stopped: Cell<bool>,
}

impl<'a> Watched<'a> {
    fn new(rig: &'a Rig, stop_after_journal: bool) -> Self {
        Self {
            rig,
            at_journal: RefCell::default(),
            stop_after_journal,
            stopped: Cell::new(false),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        match self.stopped.get() {
            true => Err(StoreError::Unavailable("the device died".into())),
            false => Ok(()),
        }
    }

    fn watch(&self, writes: &[Write]) {
        if writes.iter().any(|(k, v)| k == JOURNAL_KEY && v.is_some()) {
            *self.at_journal.borrow_mut() = Some(self.rig.last_transcript());
            self.stopped.set(self.stop_after_journal);
        }
    }
}

impl Storage for Watched<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.rig.store.get(key)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.commit_if(Vec::new(), writes)
    }

    fn commit_if(&self, guards: Vec<Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        self.check()?;
        let watched = writes.clone();
        self.rig.store.commit_if(guards, writes)?;
        self.watch(&watched);
        Ok(())
    }
}

/// The rig's Exchange, except that the reply to the final dot never comes.
struct Unanswered<'a>(&'a Rig);

struct UnansweredStream {
    inner: FakeStream,
    dot_sent: bool,
}

impl SmtpConnector for Unanswered<'_> {
    type Stream = UnansweredStream;

    fn connect(&self, host: &str, port: u16) -> Result<UnansweredStream, NetFailure> {
        Ok(UnansweredStream {
            inner: self.0.smtp.connect(host, port)?,
            dot_sent: false,
        })
    }
}

impl SmtpStream for UnansweredStream {
    fn read(&mut self, max: u32) -> Result<Vec<u8>, NetFailure> {
        match self.dot_sent {
            true => Err(NetFailure::Timeout),
            false => self.inner.read(max),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), NetFailure> {
        self.dot_sent |= data == b".\r\n" || data.ends_with(b"\r\n.\r\n");
        self.inner.write(data)
    }

    fn start_tls(&mut self, server_name: &str) -> Result<(), NetFailure> {
        self.inner.start_tls(server_name)
    }
}

fn send_through(
    rig: &Rig,
    store: &impl Storage,
    message: &OutgoingMessage,
    now: u64,
) -> Result<SendReport, SendFailure> {
    mailer::send(
        store, &rig.http, &rig.smtp, &rig.files, message, [7; 32], now,
    )
}

fn journal_entries(s: &impl Storage) -> Vec<InFlight> {
    match s.get(JOURNAL_KEY).unwrap() {
        None => Vec::new(),
        Some(bytes) => {
            crate::storage::decode::<journal::Journal>(JOURNAL_KEY, &bytes)
                .unwrap()
                .sends
        }
    }
}

fn entry(n: u64) -> InFlight {
    InFlight {
        message_id: format!("<{n}@device>"),
        recipients: 1,
        size: 1_000 + n,
        attempt: 1,
        started_at: T0 + n,
        server: "smtp.office365.com:587".into(),
    }
}

fn codes(events: &[history::Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.diagnosis.as_ref().map_or("-".into(), |d| d.code.clone()))
        .collect()
}

#[test]
fn the_journal_is_committed_before_the_final_dot_and_deleted_with_the_outcome() {
    let rig = Rig::new(Scenario::default());
    let at = rig.sign_in() + 1;
    let store = Watched::new(&rig, false);
    let report = send_through(&rig, &store, &message(), at).expect("sent");

    let at_journal = store.at_journal.borrow().clone().expect("a journal entry");
    assert!(
        at_journal.contains("Scanned pages attached."),
        "the message data went out first: {at_journal}"
    );
    assert!(
        !at_journal.ends_with("\r\n.\r\n"),
        "the final dot was not written yet"
    );
    assert!(rig.last_transcript().contains("\r\n.\r\n"));
    assert_eq!(journal_entries(&rig.store), [], "deleted once settled");
    let together = rig.written_with_last_event();
    assert!(
        together.iter().any(|k| k == JOURNAL_KEY),
        "deleted in the commit of the history entry: {together:?}"
    );
    let history = rig.history();
    assert_eq!(history.len(), 2, "sign-in and send: {history:?}");
    assert!(history[0].succeeded && history[0].summary.contains(&report.message_id));
}

#[test]
fn a_refusal_after_data_settles_the_journal_and_one_before_data_writes_none() {
    let rig = Rig::new(Scenario {
        smtp: SmtpCase::SubmissionQuota,
        ..Scenario::default()
    });
    let at = rig.sign_in() + 1;
    let failure = rig.send_err(&message(), at);
    assert_eq!(failure.diagnosis.code, "smtp-sending-quota-exceeded");
    assert!(rig.position("commit mailer/in-flight/v1").is_some());
    assert!(
        rig.written_with_last_event()
            .iter()
            .any(|k| k == JOURNAL_KEY)
    );
    assert_eq!(journal_entries(&rig.store), []);
    assert_eq!(codes(&rig.history())[0], "smtp-sending-quota-exceeded");

    let rig = Rig::new(Scenario {
        smtp: SmtpCase::AuthDisabledForTenant,
        ..Scenario::default()
    });
    let at = rig.sign_in() + 1;
    rig.send_err(&message(), at);
    assert_eq!(
        rig.position("commit mailer/in-flight/v1"),
        None,
        "refused at AUTH: the data never went out"
    );
}

#[test]
fn a_device_that_dies_before_the_verdict_reports_a_send_that_may_have_been_delivered() {
    let rig = Rig::new(Scenario::default());
    let at = rig.sign_in() + 1;
    let dying = Watched::new(&rig, true);
    // The server accepts it, but the device is gone before it can record that.
    let _ = send_through(&rig, &dying, &message(), at);
    assert!(dying.stopped.get(), "the store stopped after the journal");
    let delivered = rig.world.messages();
    assert_eq!(delivered.len(), 1);

    // After the restart: the first look at the history shows it.
    let history = rig.history();
    let newest = &history[0];
    assert_eq!(
        (newest.kind, newest.succeeded, newest.at),
        (EventKind::Send, false, at)
    );
    assert!(
        newest.summary.contains("may have been delivered")
            && newest.summary.contains(&delivered[0].message_id)
            && newest.summary.contains("1 recipient"),
        "{newest:?}"
    );
    let diagnosis = newest.diagnosis.as_ref().unwrap();
    assert_eq!(diagnosis.code, OUTCOME_UNKNOWN);
    assert!(diagnosis.message.contains("smtp.office365.com:587"));
    assert!(diagnosis.remedy.contains("before you send it again"));
    let stored = rig.store.get(JOURNAL_KEY).unwrap().unwrap();
    let stored = String::from_utf8_lossy(&stored);
    for content in [RECIPIENT, "Scan from the second floor", "Scanned pages"] {
        assert!(
            !stored.contains(content),
            "the journal holds no content: {stored}"
        );
        assert!(!newest.summary.contains(content));
    }

    // A send soon after cannot tell it from one still waiting in another instance: it
    // stays shown, by its time, and unsettled.
    rig.send(&message(), at + 60).expect("sent");
    assert_eq!(codes(&rig.history())[..2], ["-", OUTCOME_UNKNOWN]);
    assert_eq!(journal_entries(&rig.store).len(), 1);

    // Past any send's run, the next send records it for good and clears the journal.
    rig.send(&message(), at + ABANDONED_AFTER).expect("sent");
    assert_eq!(journal_entries(&rig.store), []);
    let raw = rig.store.get(HISTORY_KEY).unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&raw)
            .matches(OUTCOME_UNKNOWN)
            .count(),
        1,
        "kept in the history record itself"
    );
    let unknown: Vec<_> = rig
        .history()
        .into_iter()
        .filter(|e| {
            e.diagnosis
                .as_ref()
                .is_some_and(|d| d.code == OUTCOME_UNKNOWN)
        })
        .collect();
    assert_eq!(unknown.len(), 1, "shown once, not also from the journal");
    assert_eq!(unknown[0].at, at);
}

#[test]
fn a_verdict_that_never_comes_is_recorded_once_with_its_own_diagnosis() {
    let rig = Rig::new(Scenario::default());
    let at = rig.sign_in() + 1;
    let failure = mailer::send(
        &rig.store,
        &rig.http,
        &Unanswered(&rig),
        &rig.files,
        &message(),
        [7; 32],
        at,
    )
    .unwrap_err();
    assert_eq!(failure.diagnosis.code, "smtp-final-reply-missing");
    assert_eq!(journal_entries(&rig.store), [], "the outcome is recorded");
    assert_eq!(
        codes(&rig.history())[..2],
        ["smtp-final-reply-missing", "-"],
        "one entry for the send, none from the journal"
    );
}

#[test]
fn concurrent_sends_settle_only_their_own_entry() {
    let s = MemoryStorage::default();
    assert!(journal::begin(&s, &entry(1)));
    assert!(journal::begin(&s, &entry(2)));
    let done = history::Event::new(EventKind::Send, T0 + 2, true, "sent 2");
    journal::settle(&s, Some(&entry(2)), &done);
    assert_eq!(journal_entries(&s), [entry(1)]);
    let events = history::events(&s).unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].summary, "sent 2");
    assert_eq!(codes(&events)[1], OUTCOME_UNKNOWN);

    // An entry a later send already took for abandoned: the outcome is recorded alone.
    let late = history::Event::new(EventKind::Send, T0 + 3, true, "sent 3");
    journal::settle(&s, Some(&entry(3)), &late);
    assert_eq!(journal_entries(&s), [entry(1)]);
    assert_eq!(history::events(&s).unwrap()[0].summary, "sent 3");
}

#[test]
fn more_entries_than_sends_can_run_at_once_settle_the_oldest() {
    let s = MemoryStorage::default();
    for n in 0..(MAX_LIVE as u64 + 2) {
        assert!(journal::begin(&s, &entry(n)));
    }
    journal::settle_abandoned(&s, T0);
    let kept = journal_entries(&s);
    assert_eq!(kept.len(), MAX_LIVE);
    assert_eq!(kept[0], entry(2), "the two oldest were settled");
    let raw = s.get(HISTORY_KEY).unwrap().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&raw)
            .matches(OUTCOME_UNKNOWN)
            .count(),
        2
    );
    assert_eq!(history::events(&s).unwrap().len(), MAX_LIVE + 2);

    // The record never grows past its bound.
    for n in 100..(100 + MAX_ENTRIES as u64) {
        journal::begin(&s, &entry(n));
    }
    assert_eq!(journal_entries(&s).len(), MAX_ENTRIES);
    assert!(!journal::begin(&s, &entry(999)));
}

#[test]
fn a_journal_of_a_newer_firmware_is_left_alone_and_an_unreadable_one_cleared() {
    let rig = Rig::new(Scenario::default());
    let at = rig.sign_in() + 1;
    let newer = format!(
        r#"{{"version":{},"sends":[]}}"#,
        crate::storage::records::SEND_JOURNAL + 1
    );
    rig.store
        .commit(vec![(JOURNAL_KEY.into(), Some(newer.clone().into_bytes()))])
        .unwrap();
    rig.send(&message(), at)
        .expect("the send does not depend on its journal");
    assert_eq!(
        rig.store.get(JOURNAL_KEY).unwrap(),
        Some(newer.into_bytes())
    );
    assert!(rig.history()[0].succeeded);

    rig.store
        .commit(vec![(JOURNAL_KEY.into(), Some(b"{not json".to_vec()))])
        .unwrap();
    assert!(rig.history()[0].succeeded, "the history still reads");
    rig.send(&message(), at + 1).expect("sent");
    assert_eq!(rig.store.get(JOURNAL_KEY).unwrap(), None);
}
