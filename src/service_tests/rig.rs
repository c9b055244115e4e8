//! The rig: a world of fakes, the store and the host-capability adapters over them, sharing
//! a clock and an event log; and the helpers every subject file uses (message(), noise()…).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mfp_fakes::{Approval, Case, Scenario, SmtpSession, World};

use crate::capabilities::{Attachments, Http, HttpReply, NetFailure, SmtpConnector, SmtpStream};
use crate::diagnose::Diagnostic;
use crate::mailer::{self, OutgoingMessage, SendFailure, SendReport};
use crate::oauth::{self, AuthState, DeviceCodeView, PollView};
use crate::panel;
use crate::settings::{Origin, Settings};
use crate::signin::{Account, HttpRequest, TokenSet};
use crate::storage::{self, ACCOUNT_KEY, GRANT_KEY, MemoryStorage, Storage, StoreError, Write};

/// The test clock's start, in Unix seconds.
pub(super) const T0: u64 = 1_750_000_000;
pub(super) const AUTHORITY: &str = "https://login.microsoftonline.com";
const SMTP_HOST: &str = "smtp.office365.com";
const SMTP_PORT: u16 = 587;
/// The work account of the fakes (`Account::for_kind(AccountKind::Work)`).
pub(super) const WORK_UPN: &str = "mfp@contoso.com";
pub(super) const WORK_ALIAS: &str = "scans@contoso.com";
/// The account of `Case::PrimaryDiffersFromUpn`.
pub(super) const ODD_UPN: &str = "mfp@contoso.onmicrosoft.com";
pub(super) const ODD_PRIMARY: &str = "scanner@contoso.com";
pub(super) const RECIPIENT: &str = "alice@fabrikam.com";

/// What happened, in order, across the store and the adapters (e.g. `commit oauth/grant`,
/// `http token refresh_token`, `smtp connect`).
pub(super) type Log = Rc<RefCell<Vec<String>>>;
/// Secrets the identity fake handed out: no diagnosis may contain any of them.
pub(super) type Secrets = Rc<RefCell<Vec<String>>>;

/// The store, recording which keys each commit touched.
pub(super) struct RecordingStorage {
    inner: MemoryStorage,
    log: Log,
    /// The keys of each commit that landed, in order: what was written together.
    pub(super) landed: RefCell<Vec<Vec<String>>>,
}

impl Storage for RecordingStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.record(&writes);
        let keys = keys(&writes);
        self.inner.commit(writes)?;
        self.landed.borrow_mut().push(keys);
        Ok(())
    }

    fn commit_if(&self, guards: Vec<storage::Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        self.record(&writes);
        let keys = keys(&writes);
        self.inner.commit_if(guards, writes)?;
        self.landed.borrow_mut().push(keys);
        Ok(())
    }
}

fn keys(writes: &[Write]) -> Vec<String> {
    writes.iter().map(|(key, _)| key.clone()).collect()
}

impl RecordingStorage {
    fn record(&self, writes: &[Write]) {
        for (key, value) in writes {
            let what = if value.is_some() { "commit" } else { "delete" };
            self.log.borrow_mut().push(format!("{what} {key}"));
        }
    }
}

/// One request the identity fake answered.
#[derive(Clone, Debug)]
pub(super) struct Exchanged {
    pub(super) path: String,
    pub(super) form: BTreeMap<String, String>,
    pub(super) status: u16,
    /// The OAuth `error` of the reply, if it was one.
    pub(super) error: Option<String>,
}

/// `capabilities::Http` over `identity::handle_http`. Only the configured authority is
/// reachable, as the host's allowlist would have it.
pub(super) struct FakeHttp {
    world: World,
    clock: Rc<Cell<u64>>,
    log: Log,
    secrets: Secrets,
    exchanged: RefCell<Vec<Exchanged>>,
    /// Canned outcomes for the next requests, instead of asking the fake.
    pub(super) canned: RefCell<VecDeque<Result<HttpReply, NetFailure>>>,
}

impl Http for FakeHttp {
    fn send(&self, request: &HttpRequest) -> Result<HttpReply, NetFailure> {
        let form: BTreeMap<String, String> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let kind = form.get("grant_type").map_or("devicecode", |g| {
            if g == "refresh_token" {
                "refresh_token"
            } else {
                "device_code"
            }
        });
        self.log.borrow_mut().push(format!("http {kind}"));
        if let Some(canned) = self.canned.borrow_mut().pop_front() {
            return canned;
        }
        let Some(path) = request.url.strip_prefix(AUTHORITY) else {
            return Err(NetFailure::Denied(request.url.clone()));
        };
        let now = Duration::from_secs(self.clock.get());
        let response = mfp_fakes::handle_http(
            &self.world,
            request.method.as_str(),
            path,
            &request.headers,
            &request.body,
            now,
        );
        let json = response.json_body().unwrap_or_default();
        for key in ["access_token", "refresh_token", "id_token", "device_code"] {
            if let Some(secret) = json.get(key).and_then(|v| v.as_str()) {
                self.secrets.borrow_mut().push(secret.to_owned());
            }
        }
        self.exchanged.borrow_mut().push(Exchanged {
            path: path.to_owned(),
            form,
            status: response.status,
            error: json
                .get("error")
                .and_then(|e| e.as_str())
                .map(str::to_owned),
        });
        Ok(HttpReply {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    fn authority(&self) -> String {
        AUTHORITY.to_owned()
    }
}

/// Everything the client wrote on one SMTP connection.
type Transcript = Rc<RefCell<Vec<u8>>>;

/// `capabilities::SmtpConnector` over `exchange::SmtpSession`, in memory.
pub(super) struct FakeSmtp {
    world: World,
    clock: Rc<Cell<u64>>,
    log: Log,
    connects: Cell<u32>,
    transcripts: RefCell<Vec<Transcript>>,
    /// Rewrites the envelope sender in transit (`MAIL FROM:<a>` → `MAIL FROM:<b>`), so the
    /// fake's SendAs check after DATA (From header vs. account) can be reached: the
    /// device itself always sends the same address in both.
    pub(super) rewrite_mail_from: RefCell<Option<(String, String)>>,
}

impl SmtpConnector for FakeSmtp {
    type Stream = FakeStream;

    fn connect(&self, host: &str, port: u16) -> Result<FakeStream, NetFailure> {
        self.log.borrow_mut().push("smtp connect".into());
        if !host.eq_ignore_ascii_case(SMTP_HOST) || port != SMTP_PORT {
            return Err(NetFailure::Denied(format!("{host}:{port}")));
        }
        self.connects.set(self.connects.get() + 1);
        let session = SmtpSession::new(
            self.world.clone(),
            "192.0.2.10",
            Duration::from_secs(self.clock.get()),
        );
        let transcript = Transcript::default();
        self.transcripts.borrow_mut().push(transcript.clone());
        Ok(FakeStream {
            inbox: session.greeting().into(),
            session,
            clock: self.clock.clone(),
            tls_pending: false,
            tls: false,
            closed: false,
            transcript,
            rewrite_mail_from: self.rewrite_mail_from.borrow().clone(),
        })
    }
}

/// One connection to the Exchange fake.
pub(super) struct FakeStream {
    session: SmtpSession,
    clock: Rc<Cell<u64>>,
    /// Reply bytes not read yet.
    inbox: VecDeque<u8>,
    /// The fake said `start_tls`: the next thing the client does must be the handshake.
    tls_pending: bool,
    tls: bool,
    closed: bool,
    transcript: Transcript,
    rewrite_mail_from: Option<(String, String)>,
}

impl SmtpStream for FakeStream {
    fn read(&mut self, max: u32) -> Result<Vec<u8>, NetFailure> {
        if self.inbox.is_empty() {
            // Nothing to read and the server waits: a real client would hang here.
            return Err(if self.closed {
                NetFailure::Closed
            } else {
                NetFailure::Timeout
            });
        }
        let n = self.inbox.len().min(max as usize);
        Ok(self.inbox.drain(..n).collect())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), NetFailure> {
        assert!(
            !self.tls_pending,
            "the client wrote after the server's 220 to STARTTLS, before the TLS handshake"
        );
        if self.closed {
            return Err(NetFailure::Closed);
        }
        if data.starts_with(b"AUTH") {
            assert!(self.tls, "the client sent AUTH without TLS");
        }
        self.transcript.borrow_mut().extend_from_slice(data);
        let mut data = data.to_vec();
        if let Some((from, to)) = &self.rewrite_mail_from {
            let wanted = format!("MAIL FROM:<{from}>");
            if data.starts_with(wanted.as_bytes()) {
                let rest = data[wanted.len()..].to_vec();
                data = format!("MAIL FROM:<{to}>").into_bytes();
                data.extend_from_slice(&rest);
            }
        }
        let out = self
            .session
            .feed(&data, Duration::from_secs(self.clock.get()));
        self.inbox.extend(out.reply);
        self.tls_pending |= out.start_tls;
        self.closed |= out.close;
        Ok(())
    }

    fn start_tls(&mut self, server_name: &str) -> Result<(), NetFailure> {
        assert!(
            self.tls_pending,
            "start_tls was called although the server did not agree to STARTTLS"
        );
        assert!(
            self.inbox.is_empty(),
            "the client started TLS with plain-text replies unread"
        );
        assert_eq!(
            server_name, SMTP_HOST,
            "TLS must verify the configured server name"
        );
        self.tls_pending = false;
        self.tls = true;
        Ok(())
    }
}

/// One in-memory attachment: real bytes, or a size with no content behind it (the file
/// must never be read).
enum File {
    Bytes(String, Vec<u8>),
    Virtual(String, u64),
}

/// `capabilities::Attachments` over in-memory files, recording how they are read.
#[derive(Default)]
pub(super) struct Files {
    files: BTreeMap<u32, File>,
    pub(super) largest_request: Cell<u32>,
    pub(super) reads: Cell<u32>,
}

impl Attachments for Files {
    fn info(&self, id: u32) -> Result<(String, u64), String> {
        match self.files.get(&id) {
            Some(File::Bytes(name, bytes)) => Ok((name.clone(), bytes.len() as u64)),
            Some(File::Virtual(name, size)) => Ok((name.clone(), *size)),
            None => Err(format!("attachment {id} does not exist")),
        }
    }

    fn read(&self, id: u32, offset: u64, max: u32) -> Result<Vec<u8>, String> {
        self.reads.set(self.reads.get() + 1);
        self.largest_request
            .set(self.largest_request.get().max(max));
        match self.files.get(&id) {
            Some(File::Bytes(_, bytes)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = start.saturating_add(max as usize).min(bytes.len());
                Ok(bytes[start..end].to_vec())
            }
            Some(File::Virtual(..)) => {
                panic!("attachment {id} has no content and must not be read")
            }
            None => Err(format!("attachment {id} does not exist")),
        }
    }
}

pub(super) struct Rig {
    pub(super) world: World,
    pub(super) store: RecordingStorage,
    pub(super) http: FakeHttp,
    pub(super) smtp: FakeSmtp,
    pub(super) files: Files,
    clock: Rc<Cell<u64>>,
    pub(super) log: Log,
    pub(super) secrets: Secrets,
}

impl Rig {
    pub(super) fn new(scenario: Scenario) -> Self {
        Self::with_world(World::new(scenario))
    }

    pub(super) fn for_case(case: Case) -> Self {
        Self::with_world(World::for_case(case))
    }

    pub(super) fn with_world(world: World) -> Self {
        let clock = Rc::new(Cell::new(T0));
        let log = Log::default();
        let secrets = Secrets::default();
        Self {
            store: RecordingStorage {
                inner: MemoryStorage::default(),
                log: log.clone(),
                landed: RefCell::default(),
            },
            http: FakeHttp {
                world: world.clone(),
                clock: clock.clone(),
                log: log.clone(),
                secrets: secrets.clone(),
                exchanged: RefCell::default(),
                canned: RefCell::default(),
            },
            smtp: FakeSmtp {
                world: world.clone(),
                clock: clock.clone(),
                log: log.clone(),
                connects: Cell::new(0),
                transcripts: RefCell::default(),
                rewrite_mail_from: RefCell::default(),
            },
            files: Files::default(),
            world,
            clock,
            log,
            secrets,
        }
    }

    pub(super) fn with_file(mut self, id: u32, name: &str, bytes: Vec<u8>) -> Self {
        self.files.files.insert(id, File::Bytes(name.into(), bytes));
        self
    }

    pub(super) fn with_virtual_file(mut self, id: u32, name: &str, size: u64) -> Self {
        self.files
            .files
            .insert(id, File::Virtual(name.into(), size));
        self
    }

    // --- panels ---

    pub(super) fn apply(&self, origin: Origin, changes: &[(&str, &str)]) -> panel::ApplyOutcome {
        let changes: Vec<(String, String)> = changes
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        panel::apply(&self.store, origin, &changes, self.clock.get())
            .unwrap_or_else(|e| panic!("apply {changes:?}: {e:?}"))
    }

    pub(super) fn web(&self, changes: &[(&str, &str)]) -> panel::ApplyOutcome {
        self.apply(Origin::WebPanel, changes)
    }

    pub(super) fn exchange_online(&self) {
        self.web(&[("service-provider", "exchange-online")]);
    }

    pub(super) fn settings(&self) -> Settings {
        storage::load_settings(&self.store).unwrap()
    }

    // --- sign-in, at an explicit time ---

    fn at(&self, now: u64) {
        self.clock.set(now);
    }

    pub(super) fn start(&self, now: u64) -> Result<DeviceCodeView, Diagnostic> {
        self.at(now);
        let result = oauth::start(&self.store, &self.http, now);
        self.assert_no_secret_in(&format!("{result:?}"));
        result.map_err(oauth::SigninFailure::into_diagnosis)
    }

    pub(super) fn poll(&self, now: u64) -> PollView {
        self.at(now);
        let result = oauth::poll(&self.store, &self.http, now);
        self.assert_no_secret_in(&format!("{result:?}"));
        result.unwrap_or_else(|d| panic!("poll at T0+{}: {d:?}", now - T0))
    }

    pub(super) fn status(&self, now: u64) -> AuthState {
        let state = oauth::status(&self.store, now).unwrap();
        self.assert_no_secret_in(&format!("{state:?}"));
        state
    }

    /// Polls once a second from `from` until the flow ends; returns the outcome and when.
    pub(super) fn poll_until_done(&self, from: u64, limit: u64) -> (PollView, u64) {
        for now in from..from + limit {
            match self.poll(now) {
                PollView::Pending(_) => continue,
                done => return (done, now),
            }
        }
        panic!("the flow did not end within {limit} s");
    }

    /// Selects Exchange Online and signs in the world's first account, approving on the
    /// approval page before the first poll. Returns the time sign-in completed.
    pub(super) fn sign_in(&self) -> u64 {
        self.exchange_online();
        let code = self.start(T0).expect("device code");
        if self.world.scenario().approval == Approval::Manual {
            self.world
                .approve(&code.user_code, Duration::from_secs(T0 + 1))
                .unwrap();
        }
        let (outcome, at) = self.poll_until_done(T0 + 1, 600);
        assert!(matches!(outcome, PollView::SignedIn(_)), "{outcome:?}");
        at
    }

    pub(super) fn grant(&self) -> Option<TokenSet> {
        self.store
            .get(GRANT_KEY)
            .unwrap()
            .map(|b| crate::storage::decode(GRANT_KEY, &b).unwrap())
    }

    pub(super) fn account(&self) -> Option<Account> {
        self.store
            .get(ACCOUNT_KEY)
            .unwrap()
            .map(|b| crate::storage::decode(ACCOUNT_KEY, &b).unwrap())
    }

    // --- sending ---

    pub(super) fn send(
        &self,
        message: &OutgoingMessage,
        now: u64,
    ) -> Result<SendReport, SendFailure> {
        self.at(now);
        let result = mailer::send(
            &self.store,
            &self.http,
            &self.smtp,
            &self.files,
            message,
            [7; 32],
            now,
        );
        self.assert_no_secret_in(&format!("{result:?}"));
        if let Err(failure) = &result {
            self.assert_no_secret_in(&failure.diagnosis.message);
            self.assert_no_secret_in(&failure.diagnosis.remedy);
        }
        result
    }

    pub(super) fn send_err(&self, message: &OutgoingMessage, now: u64) -> SendFailure {
        match self.send(message, now) {
            Ok(report) => panic!("the send should have failed, but: {report:?}"),
            Err(failure) => failure,
        }
    }

    // --- observations ---

    pub(super) fn requests(&self) -> Vec<Exchanged> {
        self.http.exchanged.borrow().clone()
    }

    /// Requests that reached the identity fake or a canned answer.
    pub(super) fn http_count(&self) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|e| e.starts_with("http "))
            .count()
    }

    pub(super) fn token_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    }

    pub(super) fn connects(&self) -> u32 {
        self.smtp.connects.get()
    }

    pub(super) fn transcript(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.smtp.transcripts.borrow()[i].borrow()).into_owned()
    }

    pub(super) fn last_transcript(&self) -> String {
        let n = self.smtp.transcripts.borrow().len();
        self.transcript(n - 1)
    }

    pub(super) fn position(&self, event: &str) -> Option<usize> {
        self.log.borrow().iter().position(|e| e == event)
    }

    /// The history, newest first; its stored record holds no token nor device code.
    pub(super) fn history(&self) -> Vec<crate::history::Event> {
        let raw = self.store.get(crate::history::HISTORY_KEY).unwrap();
        self.assert_no_secret_in(&String::from_utf8_lossy(&raw.unwrap_or_default()));
        crate::history::events(&self.store).unwrap()
    }

    /// The keys written together with the history's newest entry.
    pub(super) fn written_with_last_event(&self) -> Vec<String> {
        let landed = self.store.landed.borrow();
        let history = crate::history::HISTORY_KEY;
        landed
            .iter()
            .rev()
            .find(|keys| keys.iter().any(|k| k == history))
            .cloned()
            .unwrap_or_default()
    }

    fn assert_no_secret_in(&self, text: &str) {
        for secret in self.secrets.borrow().iter() {
            // Every part of a JWT, not only the whole, is secret enough.
            for part in secret.split('.').filter(|p| p.len() >= 16) {
                assert!(
                    !text.contains(part),
                    "a token or device code leaked into: {text}"
                );
            }
        }
    }
}

pub(super) fn message() -> OutgoingMessage {
    OutgoingMessage {
        to: vec![RECIPIENT.into()],
        from: None,
        user: crate::from_policy::WalkUpUser::Unauthenticated,
        subject: "Scan from the second floor".into(),
        body: "Scanned pages attached.".into(),
        attachments: Vec::new(),
        attempt: 1,
    }
}

/// Deterministic bytes that do not compress into a pattern (xorshift).
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The decoded content of the attachment named `name` in a raw MIME message.
pub(super) fn attachment_content(raw: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(raw);
    let marker = format!("filename=\"{name}\"");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no attachment {name}"));
    let rest = &text[at..];
    let body_start = rest.find("\r\n\r\n").expect("part headers end") + 4;
    let body = &rest[body_start..];
    let body_end = body.find("\r\n--").expect("part ends with a boundary");
    let b64: String = body[..body_end].split("\r\n").collect();
    for line in body[..body_end].split("\r\n") {
        assert!(line.len() <= 76, "base64 lines are at most 76 characters");
    }
    STANDARD.decode(b64).expect("attachment is base64")
}

pub(super) fn assert_code(d: &Diagnostic, code: &str) {
    assert_eq!(d.code, code, "{d:#?}");
    assert!(!d.message.is_empty() && !d.remedy.is_empty(), "{d:#?}");
}

pub(super) fn failed(view: PollView) -> Diagnostic {
    match view {
        PollView::Failed(d) => d,
        other => panic!("the flow should have failed, but: {other:?}"),
    }
}

/// The bearer token of the AUTH XOAUTH2 line in a transcript.
pub(super) fn bearer_of(transcript: &str) -> String {
    // The two-step form (RFC 4954 §4: the one-line form would exceed 512 octets): the
    // response is the line after `AUTH XOAUTH2`.
    let mut lines = transcript.split("\r\n");
    let line = match lines.find(|l| l.starts_with("AUTH XOAUTH2")) {
        Some("AUTH XOAUTH2") => lines.next(),
        other => other.map(|l| l.trim_start_matches("AUTH XOAUTH2 ")),
    }
    .expect("an AUTH XOAUTH2 command and its response");
    let decoded = STANDARD.decode(line).unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let auth = decoded
        .split('\x01')
        .find_map(|f| f.strip_prefix("auth=Bearer "))
        .unwrap();
    auth.to_owned()
}
