//! The relay against the Exchange stand-in, natively: a scripted device sends its whole
//! side of the conversation at once (the server answers pipelined commands in turn), the
//! relay passes the message through, and the device's transcript shows every reply.

use std::collections::VecDeque;
use std::time::Duration;

use mfp_fakes::{Scenario, SmtpCase};

use super::rig::{RECIPIENT, Rig, T0, WORK_UPN};
use crate::capabilities::NetFailure;
use crate::history::EventKind;
use crate::relay::{self, RelayClient, RelayConfig, SessionSummary};
use crate::storage::Storage;

/// A device that sends `script` (in pieces) and records what the relay answers.
struct Device {
    script: VecDeque<Vec<u8>>,
    answers: Vec<u8>,
    now: std::cell::Cell<u64>,
    /// Seconds the clock moves on at each piece sent.
    pace: u64,
}

impl Device {
    fn new(pieces: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Self {
            script: pieces.into_iter().collect(),
            answers: Vec::new(),
            now: std::cell::Cell::new(T0 + 100),
            pace: 0,
        }
    }

    /// The same device, taking `pace` seconds for each piece.
    fn taking(self, pace: u64) -> Self {
        Self { pace, ..self }
    }

    fn answers(&self) -> String {
        String::from_utf8_lossy(&self.answers).into_owned()
    }
}

impl RelayClient for Device {
    fn read(&mut self, _max: u32, _timeout: Duration) -> Result<Vec<u8>, NetFailure> {
        self.now.set(self.now.get() + self.pace);
        self.script.pop_front().ok_or(NetFailure::Closed)
    }
    fn write(&mut self, data: &[u8], _timeout: Duration) -> Result<(), NetFailure> {
        self.answers.extend_from_slice(data);
        Ok(())
    }
    fn start_tls(&mut self, _timeout: Duration) -> Result<(), NetFailure> {
        Err(NetFailure::Tls("not in this test".into()))
    }
    fn now(&self) -> u64 {
        self.now.get()
    }
}

fn loopback() -> RelayConfig {
    RelayConfig {
        listen: "127.0.0.1:2525".into(),
        ..RelayConfig::default()
    }
}

const ENVELOPE: &str =
    "EHLO scanner.local\r\nMAIL FROM:<mfp@contoso.com>\r\nRCPT TO:<alice@fabrikam.com>\r\nDATA\r\n";

fn message(from: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {RECIPIENT}\r\nSubject: Scan\r\nMessage-ID: <m1@scanner>\r\n\r\n{body}"
    )
}

fn serve(rig: &Rig, device: &mut Device, peer: &str, open: u32) -> SessionSummary {
    relay::serve_client(
        &rig.store,
        &rig.http,
        &rig.smtp,
        device,
        peer,
        &loopback(),
        open,
    )
}

#[test]
fn a_message_passes_through_and_is_answered_with_exchanges_verdict() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let body = message(WORK_UPN, "..dot-stuffed line\r\nend\r\n");
    let mut device = Device::new([
        ENVELOPE.as_bytes().to_vec(),
        body.as_bytes().to_vec(),
        b".\r\nQUIT\r\n".to_vec(),
    ]);
    let summary = serve(&rig, &mut device, "127.0.0.1:40000", 1);
    assert_eq!(summary.relayed, 1, "{}", device.answers());
    let answers = device.answers();
    assert!(
        answers.contains("\r\n250 2.0.0 Relayed to Exchange Online: "),
        "{answers}"
    );
    assert!(answers.ends_with("221 2.0.0 Bye\r\n"), "{answers}");
    let messages = rig.world.messages();
    assert_eq!(messages.len(), 1);
    let raw = messages[0].raw.clone().unwrap();
    let expected_tail = message(WORK_UPN, ".dot-stuffed line\r\nend\r\n");
    assert!(raw.starts_with(b"Received: from scanner.local ([127.0.0.1])\r\n\tby "));
    assert!(
        raw.ends_with(expected_tail.as_bytes()),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(messages[0].mail_from, WORK_UPN);
    let newest = &rig.history()[0];
    assert_eq!(newest.kind, EventKind::Relayed);
    assert!(newest.succeeded);
    assert!(
        newest
            .summary
            .starts_with("Relayed for 127.0.0.1 as mfp@contoso.com to 1 recipient"),
        "{}",
        newest.summary
    );
    assert!(!newest.summary.contains("Scan") && !newest.summary.contains("dot-stuffed"));
}

#[test]
fn a_device_that_leaves_mid_message_gets_nothing_delivered() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let body = message(WORK_UPN, "first half of the scan\r\n");
    let mut device = Device::new([ENVELOPE.as_bytes().to_vec(), body.into_bytes()]);
    let summary = serve(&rig, &mut device, "127.0.0.1:40000", 1);
    assert_eq!((summary.relayed, summary.refused), (0, 1));
    assert!(
        rig.world.messages().is_empty(),
        "no final dot reached Exchange"
    );
    assert!(
        !device.answers().contains("\r\n250 2.0.0 Relayed"),
        "{}",
        device.answers()
    );
    let newest = &rig.history()[0];
    assert!(
        !newest.succeeded && newest.summary.contains("closed the connection"),
        "{newest:?}"
    );
    assert!(
        rig.store
            .get(crate::mailer::journal::JOURNAL_KEY)
            .unwrap()
            .is_none(),
        "no journal entry: the final dot never went out"
    );
}

#[test]
fn a_from_the_account_may_not_send_as_never_reaches_exchange() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let body = message("ceo@contoso.com", "x\r\n");
    let mut device = Device::new([
        ENVELOPE.as_bytes().to_vec(),
        body.into_bytes(),
        b".\r\n".to_vec(),
    ]);
    serve(&rig, &mut device, "127.0.0.1:40000", 1);
    let answers = device.answers();
    assert!(
        answers.contains("\r\n550 5.7.1 The relay sends only as "),
        "{answers}"
    );
    assert!(answers.contains("SendAsDenied"), "{answers}");
    assert_eq!(rig.connects(), 0, "refused before connecting to Exchange");
    // An envelope sender it may not send as is refused at MAIL FROM.
    let mut device = Device::new([b"EHLO x\r\nMAIL FROM:<ceo@contoso.com>\r\n".to_vec()]);
    serve(&rig, &mut device, "127.0.0.1:40000", 1);
    assert!(
        device.answers().contains("\r\n550 5.7.1 "),
        "{}",
        device.answers()
    );
}

#[test]
fn without_a_sign_in_the_device_is_told_to_come_back() {
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    let mut device = Device::new([ENVELOPE.as_bytes().to_vec()]);
    serve(&rig, &mut device, "127.0.0.1:40000", 1);
    let answers = device.answers();
    assert!(
        answers.contains("\r\n451 4.7.0 No Exchange Online"),
        "{answers}"
    );
    assert!(
        answers.contains("mfp-host auth login"),
        "the remedy is in the relay admin's words: {answers}"
    );
}

#[test]
fn exchanges_refusal_reaches_the_device_with_the_diagnosis() {
    let rig = Rig::new(Scenario {
        smtp: SmtpCase::AuthDisabledForMailbox,
        ..Scenario::default()
    });
    rig.sign_in();
    let body = message(WORK_UPN, "x\r\n");
    let mut device = Device::new([
        ENVELOPE.as_bytes().to_vec(),
        body.into_bytes(),
        b".\r\n".to_vec(),
    ]);
    let summary = serve(&rig, &mut device, "127.0.0.1:40000", 1);
    assert_eq!(summary.refused, 1);
    let answers = device.answers();
    let reply = answers
        .lines()
        .find(|l| l.starts_with("554"))
        .unwrap_or_else(|| panic!("{answers}"));
    assert!(
        reply.starts_with("554 5.7.139 "),
        "Exchange's enhanced code is kept: {reply}"
    );
    assert!(
        answers.contains("SMTP AUTH") || answers.contains("Authenticated SMTP"),
        "{answers}"
    );
    let newest = &rig.history()[0];
    assert!(!newest.succeeded);
    assert!(
        newest
            .server_reply
            .as_deref()
            .unwrap_or("")
            .starts_with("535 5.7.139"),
        "{newest:?}"
    );
}

#[test]
fn devices_outside_the_ranges_and_beyond_three_connections_are_refused_at_connect() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let mut device = Device::new([]);
    let lan = RelayConfig {
        listen: "0.0.0.0:2525".into(),
        allow: vec!["192.168.1.0/24".into()],
        ..RelayConfig::default()
    };
    let summary = relay::serve_client(
        &rig.store,
        &rig.http,
        &rig.smtp,
        &mut device,
        "192.168.2.7:5000",
        &lan,
        1,
    );
    assert!(summary.refused_at_connect);
    assert!(
        device.answers().starts_with("554 5.7.1 "),
        "{}",
        device.answers()
    );
    let mut inside = Device::new([b"QUIT\r\n".to_vec()]);
    let summary = relay::serve_client(
        &rig.store,
        &rig.http,
        &rig.smtp,
        &mut inside,
        "[::ffff:192.168.1.7]:5000",
        &lan,
        1,
    );
    assert!(!summary.refused_at_connect, "{}", inside.answers());
    let mut fourth = Device::new([]);
    let summary = serve(
        &rig,
        &mut fourth,
        "127.0.0.1:40000",
        relay::MAX_CONNECTIONS + 1,
    );
    assert!(summary.refused_at_connect);
    assert!(
        fourth.answers().starts_with("421 4.3.2 "),
        "{}",
        fourth.answers()
    );
}

#[test]
fn a_message_over_the_limit_is_cut_off_before_its_final_dot() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let chunk = vec![b'A'; 1 << 20];
    let mut pieces = vec![
        ENVELOPE.as_bytes().to_vec(),
        message(WORK_UPN, "").into_bytes(),
    ];
    let chunks = (relay::MAX_MESSAGE_SIZE >> 20) as usize + 1;
    pieces.extend(std::iter::repeat_n(chunk, chunks));
    pieces.push(b"\r\n.\r\n".to_vec());
    let mut device = Device::new(pieces);
    serve(&rig, &mut device, "127.0.0.1:40000", 1);
    assert!(
        device.answers().contains("\r\n552 5.3.4 "),
        "{}",
        device.answers()
    );
    assert!(rig.world.messages().is_empty());
}

#[test]
fn a_connection_kept_open_past_its_limit_is_closed_between_messages_not_during_one() {
    let rig = Rig::new(Scenario::default());
    rig.sign_in();
    let minutes = |m: u64| m * 60;
    assert_eq!(relay::MAX_CONNECTION_SECS, minutes(10));
    // Four minutes per piece: the limit passes while the message streams (at 12 minutes),
    // and the message is still relayed; the next command waits for nothing but the 421.
    let body = message(WORK_UPN, "page\r\n");
    let mut device = Device::new([
        ENVELOPE.as_bytes().to_vec(),
        body.as_bytes().to_vec(),
        b"more of page 1\r\n".to_vec(),
        b".\r\n".to_vec(),
        b"NOOP\r\n".to_vec(),
    ])
    .taking(minutes(4));
    let summary = serve(&rig, &mut device, "127.0.0.1:40000", 1);
    let answers = device.answers();
    assert_eq!(summary.relayed, 1, "{answers}");
    assert!(
        answers.contains("250 2.0.0 Relayed to Exchange Online: "),
        "{answers}"
    );
    assert!(
        answers.ends_with(
            "421 4.4.2 This connection has been open 10 minutes, the relay's limit; connect again to send more.\r\n"
        ),
        "{answers}"
    );
    assert!(
        !answers.contains("250 2.0.0 OK"),
        "the NOOP was never read: {answers}"
    );
    assert_eq!(rig.world.messages().len(), 1);

    // A device that only keeps talking (NOOP) is closed once the limit has passed.
    let mut idle = Device::new(
        std::iter::once(b"EHLO scanner.local\r\n".to_vec())
            .chain(std::iter::repeat_n(b"NOOP\r\n".to_vec(), 20)),
    )
    .taking(minutes(1));
    serve(&rig, &mut idle, "127.0.0.1:40001", 1);
    let answers = idle.answers();
    assert!(
        answers.ends_with("the relay's limit; connect again to send more.\r\n"),
        "{answers}"
    );
    assert_eq!(answers.matches("250 2.0.0").count(), 9, "{answers}");
}
