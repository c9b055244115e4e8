//! The services (`auth`, `mailer`) against the Microsoft stand-ins of `mfp-fakes`, natively:
//! no network, no wasmtime. The adapters below implement the host capabilities over the
//! fakes' sans-IO cores, the clock is a number the tests set, and every diagnosis a test
//! sees is checked for leaked secrets (tokens, device codes).
//!
//! Each test reads as a specification of one behaviour (DESIGN.md S6–S10, "Protocol facts").

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mfp_fakes::scenario::Stage;
use mfp_fakes::{
    Aadsts, Approval, Case, Scenario, SendAsReply, SlowDown, SmtpCase, SmtpSession, World,
};

use crate::auth::{self, AuthState, DeviceCodeView, PollView};
use crate::capabilities::{Attachments, Http, HttpReply, NetFailure, SmtpConnector, SmtpStream};
use crate::diagnose::{self, Diagnostic, Severity};
use crate::mailer::{self, OutgoingMessage, SendFailure, SendReport};
use crate::panel;
use crate::settings::{DEFAULT_CLIENT_ID, Origin, Settings};
use crate::signin::{self, Account, FLOW_KEY, HttpRequest, SigninConfig, TokenSet};
use crate::storage::{self, ACCOUNT_KEY, GRANT_KEY, MemoryStorage, Storage, StoreError, Write};

/// The test clock's start, in Unix seconds.
const T0: u64 = 1_750_000_000;
const AUTHORITY: &str = "https://login.microsoftonline.com";
const SMTP_HOST: &str = "smtp.office365.com";
const SMTP_PORT: u16 = 587;
/// The work account of the fakes (`Account::for_kind(AccountKind::Work)`).
const WORK_UPN: &str = "mfp@contoso.com";
const WORK_ALIAS: &str = "scans@contoso.com";
/// The account of `Case::PrimaryDiffersFromUpn`.
const ODD_UPN: &str = "mfp@contoso.onmicrosoft.com";
const ODD_PRIMARY: &str = "scanner@contoso.com";
const RECIPIENT: &str = "alice@fabrikam.com";

// ---------------------------------------------------------------------------------------
// The rig: a world of fakes, the store and the adapters, sharing a clock and an event log.
// ---------------------------------------------------------------------------------------

/// What happened, in order, across the store and the adapters (e.g. `commit oauth/grant`,
/// `http token refresh_token`, `smtp connect`).
type Log = Rc<RefCell<Vec<String>>>;
/// Secrets the identity fake handed out: no diagnosis may contain any of them.
type Secrets = Rc<RefCell<Vec<String>>>;

/// The store, recording which keys each commit touched.
struct RecordingStorage {
    inner: MemoryStorage,
    log: Log,
}

impl Storage for RecordingStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.record(&writes);
        self.inner.commit(writes)
    }

    fn commit_if(&self, guards: Vec<storage::Guard>, writes: Vec<Write>) -> Result<(), StoreError> {
        self.record(&writes);
        self.inner.commit_if(guards, writes)
    }
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
struct Exchanged {
    path: String,
    form: BTreeMap<String, String>,
    status: u16,
    /// The OAuth `error` of the reply, if it was one.
    error: Option<String>,
}

/// `capabilities::Http` over `identity::handle_http`. Only the configured authority is
/// reachable, as the host's allowlist would have it.
struct FakeHttp {
    world: World,
    clock: Rc<Cell<u64>>,
    log: Log,
    secrets: Secrets,
    exchanged: RefCell<Vec<Exchanged>>,
    /// Canned outcomes for the next requests, instead of asking the fake.
    canned: RefCell<VecDeque<Result<HttpReply, NetFailure>>>,
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
            request.method,
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
struct FakeSmtp {
    world: World,
    clock: Rc<Cell<u64>>,
    log: Log,
    connects: Cell<u32>,
    transcripts: RefCell<Vec<Transcript>>,
    /// Rewrites the envelope sender in transit (`MAIL FROM:<a>` → `MAIL FROM:<b>`), so the
    /// fake's SendAs check after DATA (From header vs. account) can be reached: the
    /// device itself always sends the same address in both.
    rewrite_mail_from: RefCell<Option<(String, String)>>,
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
struct FakeStream {
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
struct Files {
    files: BTreeMap<u32, File>,
    largest_request: Cell<u32>,
    reads: Cell<u32>,
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

struct Rig {
    world: World,
    store: RecordingStorage,
    http: FakeHttp,
    smtp: FakeSmtp,
    files: Files,
    clock: Rc<Cell<u64>>,
    log: Log,
    secrets: Secrets,
}

impl Rig {
    fn new(scenario: Scenario) -> Self {
        Self::with_world(World::new(scenario))
    }

    fn for_case(case: Case) -> Self {
        Self::with_world(World::for_case(case))
    }

    fn with_world(world: World) -> Self {
        let clock = Rc::new(Cell::new(T0));
        let log = Log::default();
        let secrets = Secrets::default();
        Self {
            store: RecordingStorage {
                inner: MemoryStorage::default(),
                log: log.clone(),
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

    fn with_file(mut self, id: u32, name: &str, bytes: Vec<u8>) -> Self {
        self.files.files.insert(id, File::Bytes(name.into(), bytes));
        self
    }

    fn with_virtual_file(mut self, id: u32, name: &str, size: u64) -> Self {
        self.files
            .files
            .insert(id, File::Virtual(name.into(), size));
        self
    }

    // --- panels ---

    fn apply(&self, origin: Origin, changes: &[(&str, &str)]) -> panel::ApplyOutcome {
        let changes: Vec<(String, String)> = changes
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        panel::apply(&self.store, origin, &changes)
            .unwrap_or_else(|e| panic!("apply {changes:?}: {e:?}"))
    }

    fn web(&self, changes: &[(&str, &str)]) -> panel::ApplyOutcome {
        self.apply(Origin::WebPanel, changes)
    }

    fn exchange_online(&self) {
        self.web(&[("service-provider", "exchange-online")]);
    }

    fn settings(&self) -> Settings {
        storage::load_settings(&self.store).unwrap()
    }

    // --- sign-in, at an explicit time ---

    fn at(&self, now: u64) {
        self.clock.set(now);
    }

    fn start(&self, now: u64) -> Result<DeviceCodeView, Diagnostic> {
        self.at(now);
        let result = auth::start(&self.store, &self.http, now);
        self.assert_no_secret_in(&format!("{result:?}"));
        result
    }

    fn poll(&self, now: u64) -> PollView {
        self.at(now);
        let result = auth::poll(&self.store, &self.http, now);
        self.assert_no_secret_in(&format!("{result:?}"));
        result.unwrap_or_else(|d| panic!("poll at T0+{}: {d:?}", now - T0))
    }

    fn status(&self, now: u64) -> AuthState {
        let state = auth::status(&self.store, now).unwrap();
        self.assert_no_secret_in(&format!("{state:?}"));
        state
    }

    /// Polls once a second from `from` until the flow ends; returns the outcome and when.
    fn poll_until_done(&self, from: u64, limit: u64) -> (PollView, u64) {
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
    fn sign_in(&self) -> u64 {
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

    fn grant(&self) -> Option<TokenSet> {
        self.store
            .get(GRANT_KEY)
            .unwrap()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    fn account(&self) -> Option<Account> {
        self.store
            .get(ACCOUNT_KEY)
            .unwrap()
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    // --- sending ---

    fn send(&self, message: &OutgoingMessage, now: u64) -> Result<SendReport, SendFailure> {
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

    fn send_err(&self, message: &OutgoingMessage, now: u64) -> SendFailure {
        match self.send(message, now) {
            Ok(report) => panic!("the send should have failed, but: {report:?}"),
            Err(failure) => failure,
        }
    }

    // --- observations ---

    fn requests(&self) -> Vec<Exchanged> {
        self.http.exchanged.borrow().clone()
    }

    /// Requests that reached the identity fake or a canned answer.
    fn http_count(&self) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|e| e.starts_with("http "))
            .count()
    }

    fn token_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    }

    fn connects(&self) -> u32 {
        self.smtp.connects.get()
    }

    fn transcript(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.smtp.transcripts.borrow()[i].borrow()).into_owned()
    }

    fn last_transcript(&self) -> String {
        let n = self.smtp.transcripts.borrow().len();
        self.transcript(n - 1)
    }

    fn position(&self, event: &str) -> Option<usize> {
        self.log.borrow().iter().position(|e| e == event)
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

fn message() -> OutgoingMessage {
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
fn noise(len: usize, seed: u64) -> Vec<u8> {
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
fn attachment_content(raw: &[u8], name: &str) -> Vec<u8> {
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

fn assert_code(d: &Diagnostic, code: &str) {
    assert_eq!(d.code, code, "{d:#?}");
    assert!(!d.message.is_empty() && !d.remedy.is_empty(), "{d:#?}");
}

fn failed(view: PollView) -> Diagnostic {
    match view {
        PollView::Failed(d) => d,
        other => panic!("the flow should have failed, but: {other:?}"),
    }
}

/// The bearer token of the AUTH XOAUTH2 line in a transcript.
fn bearer_of(transcript: &str) -> String {
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

// ---------------------------------------------------------------------------------------
// Sign-in (S8, S9)
// ---------------------------------------------------------------------------------------

#[test]
fn sign_in_shows_the_servers_code_polls_on_the_interval_and_makes_the_account_the_device_email() {
    let rig = Rig::new(Scenario::default());
    rig.world
        .update_settings(|s| s.verification_uri = "https://login.example.test/device".into());
    let applied = rig.web(&[("service-provider", "exchange-online")]);
    assert!(
        applied
            .notices
            .iter()
            .any(|n| n.code == "exchange-online-selected")
    );

    let code = rig.start(T0).unwrap();
    assert_eq!(
        code.verification_uri, "https://login.example.test/device",
        "the server's URI, never a hard-coded one"
    );
    assert_eq!(code.user_code.len(), 9);
    assert!(code.message.contains(&code.user_code));
    assert_eq!((code.interval, code.expires_at), (5, T0 + 900));
    let requests = rig.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/common/oauth2/v2.0/devicecode");
    assert_eq!(requests[0].form["client_id"], DEFAULT_CLIENT_ID);
    assert_eq!(requests[0].form["scope"], signin::SCOPE);
    assert_eq!(rig.status(T0), AuthState::InProgress(code.clone()));

    // Before the interval: nothing is sent, the host is told when to call again.
    assert_eq!(rig.poll(T0 + 1), PollView::Pending(T0 + 5));
    assert_eq!(rig.poll(T0 + 4), PollView::Pending(T0 + 5));
    assert_eq!(rig.http_count(), 1);
    // At exactly +interval: one request, authorization_pending.
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 10));
    assert_eq!(rig.token_requests(), 1);
    assert_eq!(
        rig.requests()[1].form["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(
        rig.requests()[1].error.as_deref(),
        Some("authorization_pending")
    );

    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 7))
        .unwrap();
    assert_eq!(rig.poll(T0 + 9), PollView::Pending(T0 + 10));
    assert_eq!(rig.token_requests(), 1);
    let PollView::SignedIn(account) = rig.poll(T0 + 10) else {
        panic!("not signed in")
    };
    assert_eq!(rig.token_requests(), 2);
    assert_eq!(account.upn(), Some(WORK_UPN));

    // S9: the account's address is now the Device Email Address.
    assert_eq!(rig.settings().device_email, WORK_UPN);
    let grant = rig.grant().expect("the grant is stored");
    assert!(grant.can_send_mail());
    assert!(
        (T0 + 10 + 3600..=T0 + 10 + 5400).contains(&grant.expires_at),
        "{}",
        grant.expires_at
    );
    assert_eq!(rig.account(), Some(account.clone()));
    assert_eq!(
        rig.store.get(FLOW_KEY).unwrap(),
        None,
        "the flow is over and forgotten"
    );
    // Tokens, account, Device Email Address and the flow's deletion in one commit.
    let log = rig.log.borrow().clone();
    let grant_at = log.iter().position(|e| e == "commit oauth/grant").unwrap();
    assert_eq!(
        log[grant_at..grant_at + 4],
        [
            "commit oauth/grant",
            "commit oauth/account",
            "commit settings/v1",
            "delete oauth/device-flow"
        ]
    );

    match rig.status(T0 + 11) {
        AuthState::SignedIn {
            account: a,
            access_token_expires_at,
            warnings,
        } => {
            assert_eq!(a, account);
            assert_eq!(access_token_expires_at, grant.expires_at);
            assert!(warnings.is_empty(), "{warnings:?}");
        }
        other => panic!("{other:?}"),
    }
    // Polling again after sign-in answers from the store.
    assert_eq!(rig.poll(T0 + 20), PollView::SignedIn(account));
    assert_eq!(rig.token_requests(), 2);
}

#[test]
fn sign_in_needs_exchange_online_selected_first() {
    let rig = Rig::new(Scenario::default());
    let err = rig.start(T0).unwrap_err();
    assert_code(&err, "provider-not-exchange-online");
    assert!(err.remedy.contains("Open Authentication Page"));
    assert_eq!(rig.http_count(), 0);
    let err = auth::poll(&rig.store, &rig.http, T0 + 5).unwrap_err();
    assert_code(&err, "sign-in-not-started");
}

#[test]
fn slow_down_adds_five_seconds_to_the_interval_for_good() {
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Once,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    assert_eq!(
        rig.poll(T0 + 5),
        PollView::Pending(T0 + 15),
        "slow_down: 5 + 5 s"
    );
    assert_eq!(rig.requests()[1].error.as_deref(), Some("slow_down"));
    let AuthState::InProgress(view) = rig.status(T0 + 6) else {
        panic!()
    };
    assert_eq!(view.interval, 10);
    assert_eq!(rig.poll(T0 + 14), PollView::Pending(T0 + 15));
    assert_eq!(rig.token_requests(), 1);
    // Later pendings keep the longer interval.
    assert_eq!(rig.poll(T0 + 15), PollView::Pending(T0 + 25));
    assert_eq!(rig.poll(T0 + 25), PollView::Pending(T0 + 35));
    assert_eq!(rig.token_requests(), 3);
    let errors: Vec<_> = rig
        .requests()
        .iter()
        .skip(1)
        .map(|r| r.error.clone().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "slow_down",
            "authorization_pending",
            "authorization_pending"
        ]
    );
}

#[test]
fn a_host_polling_every_second_makes_only_the_rfc_8628_minimum_of_requests() {
    // slow_down once, two authorization_pending, then tokens: RFC 8628 allows no fewer
    // than 4 token requests, and the client must not provoke another slow_down.
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Once,
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 120);
    assert!(matches!(outcome, PollView::SignedIn(_)), "{outcome:?}");
    assert_eq!(rig.token_requests(), 4);
    let slow_downs = rig
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some("slow_down"))
        .count();
    assert_eq!(
        slow_downs, 1,
        "only the scripted slow_down; never polled too fast"
    );
    assert_eq!(at, T0 + 5 + 10 + 10 + 10, "polls at +5, +15, +25, +35");

    // Without slow_down: 2 pendings and the tokens.
    let rig = Rig::new(Scenario {
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 120);
    assert!(matches!(outcome, PollView::SignedIn(_)));
    assert_eq!((rig.token_requests(), at), (3, T0 + 15));
}

#[test]
fn slow_down_always_polls_less_and_less_until_the_code_expires() {
    let rig = Rig::new(Scenario {
        slow_down: SlowDown::Always,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let (outcome, at) = rig.poll_until_done(T0, 1000);
    assert_code(&failed(outcome), "sign-in-expired");
    assert!(
        at <= T0 + 900,
        "stops at expires_in by the device's clock ({})",
        at - T0
    );
    // Intervals 10, 15, 20, …: polls at +5, +15, +30, +50, …, the last before +900.
    let n = rig.token_requests();
    assert!((15..=20).contains(&n), "{n} token requests");
    assert!(
        rig.requests()
            .iter()
            .skip(1)
            .all(|r| r.error.as_deref() == Some("slow_down"))
    );
}

#[test]
fn a_declined_sign_in_ends_the_flow() {
    for manual in [false, true] {
        let scenario = if manual {
            Scenario::default()
        } else {
            Scenario {
                approval: Approval::Decline,
                ..Scenario::default()
            }
        };
        let rig = Rig::new(scenario);
        rig.exchange_online();
        let code = rig.start(T0).unwrap();
        if manual {
            rig.world
                .decline(&code.user_code, Duration::from_secs(T0 + 2))
                .unwrap();
        }
        let d = failed(rig.poll(T0 + 5));
        assert_code(&d, "sign-in-declined");
        assert!(d.remedy.contains("Open Authentication Page"));
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
        assert_eq!(rig.status(T0 + 6), AuthState::SignedOut);
        assert_eq!(rig.grant(), None);
        assert_eq!(
            rig.settings().device_email,
            "",
            "no Device Email Address from a declined sign-in"
        );
        let err = auth::poll(&rig.store, &rig.http, T0 + 10).unwrap_err();
        assert_code(&err, "sign-in-not-started");
        assert_eq!(rig.token_requests(), 1);
    }
}

#[test]
fn an_expired_code_ends_the_flow_whoever_notices() {
    // The server says expired_token.
    let rig = Rig::new(Scenario {
        approval: Approval::Expire,
        ..Scenario::default()
    });
    rig.exchange_online();
    rig.start(T0).unwrap();
    let d = failed(rig.poll(T0 + 5));
    assert_code(&d, "sign-in-expired");
    assert!(d.message.contains("AADSTS70020"), "{d:?}");
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);

    // Nobody signs in: the device stops at expires_in without asking.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.start(T0).unwrap();
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 10));
    let before = rig.http_count();
    assert_eq!(
        rig.status(T0 + 899),
        AuthState::InProgress(rig_view(&rig, T0 + 899))
    );
    let d = failed(rig.poll(T0 + 900));
    assert_code(&d, "sign-in-expired");
    assert_eq!(rig.http_count(), before, "no request for an expired code");
    assert_eq!(rig.status(T0 + 900), AuthState::SignedOut);
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
}

fn rig_view(rig: &Rig, now: u64) -> DeviceCodeView {
    match auth::status(&rig.store, now).unwrap() {
        AuthState::InProgress(v) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_refusal_at_the_poll_after_sign_in_ends_the_flow_with_its_diagnosis() {
    let cases: [(Aadsts, &str); 6] = [
        (
            Aadsts::ConditionalAccess53003,
            "sign-in-blocked-by-conditional-access",
        ),
        (
            Aadsts::DeviceCodeFlowBlocked530033,
            "sign-in-blocked-by-conditional-access",
        ),
        (Aadsts::ConsentRequired65001, "sign-in-consent-required"),
        (Aadsts::MfaRequired50076, "sign-in-mfa-required"),
        (
            Aadsts::MfaEnrollment50079,
            "sign-in-mfa-registration-required",
        ),
        (Aadsts::NotPublicClient7000218, "sign-in-not-public-client"),
    ];
    for (failure, code) in cases {
        assert_eq!(failure.stage(), Stage::Poll);
        let rig = Rig::new(Scenario {
            approval: Approval::AfterPolls(0),
            failure: Some(failure),
            ..Scenario::default()
        });
        rig.exchange_online();
        rig.start(T0).unwrap();
        let d = failed(rig.poll(T0 + 5));
        assert_code(&d, code);
        let expected_status = if failure == Aadsts::NotPublicClient7000218 {
            401
        } else {
            400
        };
        assert_eq!(
            rig.requests().last().unwrap().status,
            expected_status,
            "{failure:?}"
        );
        assert_eq!(d.severity, Severity::Error);
        assert!(
            d.message.contains(&format!("AADSTS{}", failure.code())),
            "{failure:?}: {d:?}"
        );
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None, "{failure:?}");
        assert_eq!((rig.grant(), rig.account()), (None, None), "{failure:?}");
        assert_eq!(rig.settings().device_email, "");
        assert_eq!(rig.status(T0 + 6), AuthState::SignedOut);
        match failure {
            Aadsts::ConditionalAccess53003 | Aadsts::DeviceCodeFlowBlocked530033 => {
                // S8: say it is Conditional Access, name "Block Device Code Flow", and what to do.
                assert!(d.message.contains("Conditional Access"), "{d:?}");
                assert!(d.message.contains("Block Device Code Flow"), "{d:?}");
                assert!(
                    d.remedy.contains("excluded") && d.remedy.contains(DEFAULT_CLIENT_ID),
                    "{d:?}"
                );
            }
            Aadsts::ConsentRequired65001 => {
                let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
                assert!(consent.needed);
                assert!(d.remedy.contains(&consent.url), "{d:?}");
                assert!(d.remedy.contains("Global Administrator"));
            }
            Aadsts::MfaRequired50076 => assert!(d.remedy.contains("multi-factor"), "{d:?}"),
            Aadsts::MfaEnrollment50079 => assert!(d.remedy.contains("aka.ms/mfasetup"), "{d:?}"),
            Aadsts::NotPublicClient7000218 => {
                assert!(d.remedy.contains("Allow public client flows"), "{d:?}")
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn a_single_tenant_application_on_common_is_refused_at_start_and_a_tenant_fixes_it() {
    let rig = Rig::new(Scenario {
        failure: Some(Aadsts::SingleTenantOnCommon50194),
        ..Scenario::default()
    });
    rig.exchange_online();
    let d = rig.start(T0).unwrap_err();
    assert_code(&d, "sign-in-tenant-required");
    assert!(
        d.message.contains("AADSTS50194") && d.message.contains("\"common\""),
        "{d:?}"
    );
    assert!(d.remedy.contains("[Tenant]"));
    assert_eq!(
        rig.store.get(FLOW_KEY).unwrap(),
        None,
        "no flow from a refused start"
    );
    assert_eq!(rig.status(T0), AuthState::SignedOut);

    rig.web(&[("tenant", "contoso.onmicrosoft.com")]);
    let code = rig.start(T0 + 10).unwrap();
    assert_eq!(
        rig.requests()[1].path,
        "/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
    );
    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 11))
        .unwrap();
    assert!(matches!(rig.poll(T0 + 15), PollView::SignedIn(_)));
    assert_eq!(
        rig.requests()[2].path,
        "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "polls the tenant it started at"
    );
}

#[test]
fn a_network_failure_during_start_is_diagnosed_and_starts_nothing() {
    let cases = [
        (
            NetFailure::Dns("login.microsoftonline.com".into()),
            "network-dns",
        ),
        (
            NetFailure::Denied("login.microsoftonline.com:443".into()),
            "network-denied",
        ),
        (NetFailure::Timeout, "network-timeout"),
        (
            NetFailure::Tls("certificate not trusted".into()),
            "network-tls",
        ),
        (
            NetFailure::Proxy("407 Proxy Authentication Required".into()),
            "network-proxy",
        ),
    ];
    for (failure, code) in cases {
        let rig = Rig::new(Scenario::default());
        rig.exchange_online();
        rig.http.canned.borrow_mut().push_back(Err(failure.clone()));
        let d = rig.start(T0).unwrap_err();
        assert_code(&d, code);
        assert!(d.message.contains(AUTHORITY), "{d:?}");
        assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
        // The next try works.
        assert!(rig.start(T0 + 1).is_ok());
    }
}

#[test]
fn a_platform_that_cannot_issue_a_code_is_diagnosed_at_start() {
    // Unavailable (HTTP 5xx): try again later.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 503,
        headers: Vec::new(),
        body: b"<html>busy</html>".to_vec(),
    }));
    assert_code(&rig.start(T0).unwrap_err(), "sign-in-service-unavailable");
    // A client id the tenant does not know (AADSTS700016).
    let world = World::new(Scenario::default());
    world.update_settings(|s| s.client_id = Some(DEFAULT_CLIENT_ID.into()));
    let rig = Rig::with_world(world);
    rig.exchange_online();
    rig.web(&[("client-id", "11111111-2222-3333-4444-555555555555")]);
    let d = rig.start(T0).unwrap_err();
    assert_code(&d, "sign-in-application-not-found");
    assert!(d.remedy.contains("adminconsent"), "{d:?}");
    assert_eq!(rig.requests()[0].status, 400);
    assert_eq!(rig.store.get(FLOW_KEY).unwrap(), None);
    // Something else answering at the authority.
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 200,
        headers: Vec::new(),
        body: b"<html>captive portal</html>".to_vec(),
    }));
    assert_code(&rig.start(T0).unwrap_err(), "sign-in-malformed-reply");
}

#[test]
fn a_lost_poll_reply_backs_off_and_polling_goes_on() {
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    let code = rig.start(T0).unwrap();
    rig.http
        .canned
        .borrow_mut()
        .push_back(Err(NetFailure::Timeout));
    assert_eq!(
        rig.poll(T0 + 5),
        PollView::Pending(T0 + 15),
        "the interval doubles to 10 s"
    );
    assert_eq!(rig.poll(T0 + 14), PollView::Pending(T0 + 15));
    assert_eq!(rig.http_count(), 2);
    rig.world
        .approve(&code.user_code, Duration::from_secs(T0 + 14))
        .unwrap();
    assert!(matches!(rig.poll(T0 + 15), PollView::SignedIn(_)));
}

#[test]
fn an_unavailable_identity_platform_while_polling_backs_off_too() {
    let rig = Rig::new(Scenario::default());
    rig.exchange_online();
    rig.start(T0).unwrap();
    rig.http.canned.borrow_mut().push_back(Ok(HttpReply {
        status: 503,
        headers: Vec::new(),
        body: b"Service Unavailable".to_vec(),
    }));
    assert_eq!(rig.poll(T0 + 5), PollView::Pending(T0 + 15));
    assert!(rig.store.get(FLOW_KEY).unwrap().is_some());
}

#[test]
fn a_personal_account_signs_in_without_admin_consent_and_without_a_upn_warning() {
    let rig = Rig::for_case(Case::PersonalAccount);
    rig.sign_in();
    assert_eq!(rig.settings().device_email, "mfp.scanner@outlook.com");
    let AuthState::SignedIn {
        warnings, account, ..
    } = rig.status(T0 + 100)
    else {
        panic!()
    };
    assert!(account.is_personal());
    assert!(warnings.is_empty(), "{warnings:?}");
    let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(!consent.needed);
    assert!(consent.explanation.contains("Outlook.com"));
    rig.send(&message(), T0 + 100).expect("Outlook.com sends");
}

#[test]
fn without_an_email_claim_the_sign_in_name_becomes_the_device_email() {
    let rig = Rig::for_case(Case::NoEmailClaim);
    rig.sign_in();
    assert_eq!(rig.account().unwrap().email, None);
    assert_eq!(rig.settings().device_email, WORK_UPN);
    rig.send(&message(), T0 + 100).expect("sends as the UPN");
}

#[test]
fn admin_consent_is_offered_once_per_tenant_and_never_for_outlook_com() {
    let rig = Rig::for_case(Case::Happy);
    rig.exchange_online();
    let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(consent.needed);
    assert!(
        consent.url.starts_with(&format!("{AUTHORITY}/common/adminconsent?client_id={DEFAULT_CLIENT_ID}&redirect_uri=https%3A%2F%2F")),
        "{}",
        consent.url
    );
    assert_eq!(rig.http_count(), 0, "the URL is built, not fetched");

    // A configured client id, redirect URI and tenant are what the URL carries (S10).
    rig.web(&[
        ("tenant", "contoso.onmicrosoft.com"),
        ("client-id", "11111111-2222-3333-4444-555555555555"),
        (
            "consent-redirect-uri",
            "https://printers.contoso.com/consent",
        ),
    ]);
    let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
    assert_eq!(
        consent.url,
        format!(
            "{AUTHORITY}/contoso.onmicrosoft.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555&redirect_uri=https%3A%2F%2Fprinters.contoso.com%2Fconsent"
        )
    );
    rig.web(&[("tenant", "consumers")]);
    assert!(!auth::admin_consent(&rig.store, &rig.http).unwrap().needed);
    rig.web(&[("tenant", "common"), ("client-id", DEFAULT_CLIENT_ID)]);

    rig.sign_in();
    let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(
        !consent.needed,
        "a work account signed in: consent was given"
    );
    // S10: once per tenant. After a sign-out the tenant signed in to needs no consent
    // again (Entra keeps it); another tenant still does.
    auth::sign_out(&rig.store).unwrap();
    let consent = auth::admin_consent(&rig.store, &rig.http).unwrap();
    assert!(!consent.needed, "{consent:?}");
    assert!(
        consent.explanation.contains(mfp_fakes::world::WORK_TENANT),
        "{consent:?}"
    );
    rig.web(&[("tenant", mfp_fakes::world::WORK_TENANT)]);
    assert!(!auth::admin_consent(&rig.store, &rig.http).unwrap().needed);
    rig.web(&[("tenant", "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b")]);
    assert!(auth::admin_consent(&rig.store, &rig.http).unwrap().needed);
}

#[test]
fn sign_out_forgets_the_account_and_sending_asks_for_sign_in() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    auth::sign_out(&rig.store).unwrap();
    assert_eq!((rig.grant(), rig.account()), (None, None));
    assert_eq!(rig.status(T0 + 100), AuthState::SignedOut);
    let f = rig.send_err(&message(), T0 + 100);
    assert_code(&f.diagnosis, "sign-in-required");
    assert_eq!(rig.connects(), 0);
    // The Device Email Address stays (the administrator may sign in again as it).
    assert_eq!(rig.settings().device_email, WORK_UPN);
}

#[test]
fn typing_a_server_on_the_control_panel_signs_out_and_sending_is_refused() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let outcome = rig.apply(Origin::ControlPanel, &[("smtp-server", "mail.example.com")]);
    assert!(
        outcome
            .notices
            .iter()
            .any(|n| n.code == "provider-reset-by-control-panel")
    );
    assert_eq!(
        rig.grant(),
        None,
        "S4: no unused mailbox credential is kept"
    );
    let f = rig.send_err(&message(), T0 + 100);
    assert_code(&f.diagnosis, "provider-not-exchange-online");
    assert_eq!(rig.connects(), 0);
}

// ---------------------------------------------------------------------------------------
// Primary address ≠ UPN (S9)
// ---------------------------------------------------------------------------------------

#[test]
fn a_primary_address_other_than_the_upn_is_warned_about_fails_to_send_and_the_upn_fixes_it() {
    let rig = Rig::for_case(Case::PrimaryDiffersFromUpn);
    let signed_in = rig.sign_in();
    assert_eq!(
        rig.settings().device_email,
        ODD_PRIMARY,
        "S9: the account's address becomes the Device Email Address"
    );

    let AuthState::SignedIn { warnings, .. } = rig.status(signed_in) else {
        panic!()
    };
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_code(&warnings[0], "device-email-not-upn");
    assert_eq!(warnings[0].severity, Severity::Warning);
    assert!(
        warnings[0]
            .remedy
            .contains(&format!("Set the Device Email Address to {ODD_UPN}")),
        "{warnings:?}"
    );

    let f = rig.send_err(&message(), signed_in + 60);
    assert_code(&f.diagnosis, "smtp-auth-device-email-not-upn");
    assert!(f.diagnosis.remedy.contains(ODD_UPN), "{:?}", f.diagnosis);
    assert!(f.diagnosis.message.contains(ODD_PRIMARY));
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("535 5.7.3")),
        "{f:?}"
    );
    assert_eq!(f.retry_after, None, "a permanent refusal is not retried");
    assert!(rig.world.messages().is_empty());

    // The administrator takes the offer.
    rig.web(&[("device-email", ODD_UPN)]);
    let AuthState::SignedIn { warnings, .. } = rig.status(signed_in + 120) else {
        panic!()
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    let report = rig
        .send(&message(), signed_in + 120)
        .expect("sends as the UPN");
    let received = &rig.world.messages()[0];
    assert_eq!(received.account, ODD_UPN);
    assert_eq!(received.mail_from, ODD_UPN);
    assert_eq!(received.header("From").as_deref(), Some(ODD_UPN));
    assert_eq!(report.accepted, [RECIPIENT]);
}

// ---------------------------------------------------------------------------------------
// Tokens for sending: refresh ahead of expiry, rotation, refusals (Protocol facts)
// ---------------------------------------------------------------------------------------

#[test]
fn the_access_token_is_refreshed_within_ten_minutes_of_expiry_and_the_new_refresh_token_is_stored_first()
 {
    let rig = Rig::for_case(Case::Happy);
    // A platform that honours each refresh token once: only the rotated one works after.
    rig.world
        .update_settings(|s| s.single_use_refresh_tokens = true);
    rig.sign_in();
    let old = rig.grant().unwrap();
    let expires = old.expires_at;
    let token_requests = rig.token_requests();

    // 10 min 1 s before expiry: the stored token is used as it is.
    rig.send(&message(), expires - 601).expect("sent");
    assert_eq!(rig.token_requests(), token_requests);
    assert_eq!(bearer_of(&rig.last_transcript()), old.access_token.expose());

    // 10 min before: refreshed first.
    rig.log.borrow_mut().clear();
    rig.send(&message(), expires - 600).expect("sent");
    assert_eq!(rig.token_requests(), token_requests + 1);
    let refresh = rig.requests().last().unwrap().clone();
    assert_eq!(refresh.form["grant_type"], "refresh_token");
    assert_eq!(refresh.form["refresh_token"], old.refresh_token.expose());
    assert_eq!(refresh.path, "/common/oauth2/v2.0/token");

    let fresh = rig.grant().unwrap();
    assert_ne!(
        fresh.refresh_token, old.refresh_token,
        "the rotated refresh token is stored"
    );
    assert_ne!(fresh.access_token, old.access_token);
    assert!(fresh.expires_at >= expires - 600 + 3600);
    let account = rig.account().unwrap();
    assert_eq!(
        fresh.account().unwrap().unwrap().upn(),
        account.upn(),
        "the refreshed grant is the same account's"
    );
    assert_eq!(
        bearer_of(&rig.last_transcript()),
        fresh.access_token.expose(),
        "the new access token is used"
    );
    let committed = rig.position("commit oauth/grant").expect("grant committed");
    let connected = rig.position("smtp connect").expect("connected");
    assert!(rig.position("http refresh_token").unwrap() < committed);
    assert!(
        committed < connected,
        "the new grant is committed before the new token is used: {:?}",
        rig.log.borrow()
    );

    // The old refresh token no longer works at the platform.
    let config = SigninConfig::from_settings(&rig.settings(), AUTHORITY);
    let replay = signin::token::refresh_request(&config, &old);
    let reply = rig.http.send(&replay).unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(rig.requests().last().unwrap().status, 400);
    assert_eq!(
        rig.requests().last().unwrap().error.as_deref(),
        Some("invalid_grant")
    );
    // The new one does.
    let reply = rig
        .http
        .send(&signin::token::refresh_request(&config, &fresh))
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn consecutive_sends_reuse_the_token_and_give_back_the_connection() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let token_requests = rig.token_requests();
    for i in 0..3 {
        rig.send(&message(), signed_in + 10 + i).expect("sent");
        assert_eq!(
            rig.world.open_sessions(WORK_UPN),
            0,
            "the session slot is given back after each send"
        );
    }
    assert_eq!(rig.token_requests(), token_requests);
    assert_eq!(rig.world.messages().len(), 3);
    assert_eq!(rig.connects(), 3);
}

#[test]
fn a_refresh_token_idle_for_90_days_signs_the_device_out() {
    // Scripted at the platform.
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.world.set_scenario(Scenario {
        failure: Some(Aadsts::RefreshTokenInactive700082),
        ..rig.world.scenario()
    });
    let f = rig.send_err(&message(), expires - 60);
    assert_code(&f.diagnosis, "sign-in-refresh-token-expired");
    assert!(f.diagnosis.message.contains("AADSTS700082"));
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!(rig.connects(), 0);
    assert_eq!((rig.grant(), rig.account()), (None, None), "signed out");
    assert_eq!(rig.status(expires), AuthState::SignedOut);
    assert!(
        panel::diagnostics(&rig.store)
            .unwrap()
            .iter()
            .any(|d| d.code == "sign-in-required")
    );

    // And for real: 91 days without a send.
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let f = rig.send_err(&message(), signed_in + 91 * 86_400);
    assert_code(&f.diagnosis, "sign-in-refresh-token-expired");
    assert_eq!(rig.grant(), None);
    assert_eq!(rig.connects(), 0);
}

#[test]
fn a_revoked_grant_signs_the_device_out() {
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let expires = rig.grant().unwrap().expires_at;
    rig.world.set_scenario(Scenario {
        failure: Some(Aadsts::GrantRevoked50173),
        ..rig.world.scenario()
    });
    let f = rig.send_err(&message(), expires + 1);
    assert_code(&f.diagnosis, "sign-in-grant-revoked");
    assert!(
        f.diagnosis.message.contains("password"),
        "{:?}",
        f.diagnosis
    );
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!((rig.grant(), rig.account()), (None, None));
    assert_eq!(rig.connects(), 0);
    // Signing in again restores sending.
    let code = rig.start(expires + 10).unwrap();
    rig.world
        .approve(&code.user_code, Duration::from_secs(expires + 11))
        .unwrap();
    assert!(matches!(rig.poll(expires + 15), PollView::SignedIn(_)));
    rig.send(&message(), expires + 20)
        .expect("sent after signing in again");
}

#[test]
fn a_failed_refresh_sends_with_the_current_token_while_it_lasts() {
    for trouble in [
        Err(NetFailure::Timeout),
        Ok(HttpReply {
            status: 503,
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }),
    ] {
        let rig = Rig::for_case(Case::Happy);
        rig.sign_in();
        let old = rig.grant().unwrap();
        rig.http.canned.borrow_mut().push_back(trouble.clone());
        rig.send(&message(), old.expires_at - 300)
            .unwrap_or_else(|f| panic!("{trouble:?}: {f:?}"));
        assert_eq!(
            rig.grant().unwrap(),
            old,
            "nothing changed; refresh next time"
        );
        assert_eq!(bearer_of(&rig.last_transcript()), old.access_token.expose());

        // Once expired, the failure is the send's.
        rig.http.canned.borrow_mut().push_back(trouble.clone());
        let f = rig.send_err(&message(), old.expires_at + 1);
        let expected = if trouble.is_err() {
            "network-timeout"
        } else {
            "sign-in-service-unavailable"
        };
        assert_code(&f.diagnosis, expected);
        assert_eq!(rig.connects(), 1);
        assert_eq!(
            rig.grant().unwrap(),
            old,
            "a transient failure does not sign out"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

#[test]
fn a_scan_with_two_attachments_arrives_whole_streamed_in_bounded_chunks() {
    let big = noise(300 * 1024 + 17, 42);
    let small = noise(1_000, 7);
    let rig = Rig::for_case(Case::Happy)
        .with_file(1, "scan-0001.pdf", big.clone())
        .with_file(2, "page 2.jpg", small.clone());
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.to.push("bob@fabrikam.com".into());
    msg.attachments = vec![1, 2];

    let report = rig.send(&msg, signed_in + 30).expect("sent");
    assert_eq!(report.accepted, [RECIPIENT, "bob@fabrikam.com"]);
    assert!(
        report.server_reply.starts_with("250 2.0.0 OK"),
        "{}",
        report.server_reply
    );
    assert!(
        report.message_id.starts_with('<') && report.message_id.ends_with("@contoso.com>"),
        "{}",
        report.message_id
    );

    let messages = rig.world.messages();
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.account, WORK_UPN);
    assert_eq!(received.mail_from, WORK_UPN);
    assert_eq!(received.rcpt_to, [RECIPIENT, "bob@fabrikam.com"]);
    assert_eq!(
        received.header("From").as_deref(),
        Some(WORK_UPN),
        "From is the Device Email Address"
    );
    assert_eq!(
        received.header("Subject").as_deref(),
        Some("Scan from the second floor")
    );
    assert_eq!(received.message_id, report.message_id);
    let raw = received.raw.as_ref().expect("kept whole");
    assert_eq!(attachment_content(raw, "scan-0001.pdf"), big);
    assert_eq!(attachment_content(raw, "page 2.jpg"), small);

    // Streamed: never more than one chunk of a file at a time.
    assert!(rig.files.largest_request.get() <= mailer::ATTACHMENT_CHUNK);
    let chunk = mailer::ATTACHMENT_CHUNK as usize;
    let expected_reads = big.len().div_ceil(chunk) + 1 + small.len().div_ceil(chunk) + 1;
    assert_eq!(
        rig.files.reads.get() as usize,
        expected_reads,
        "each file read once, plus the empty read at its end"
    );

    // SIZE was announced, and it is the message's size.
    let transcript = rig.last_transcript();
    let mail_from = transcript
        .split("\r\n")
        .find(|l| l.starts_with("MAIL FROM:"))
        .unwrap();
    assert_eq!(
        mail_from,
        format!("MAIL FROM:<{WORK_UPN}> SIZE={}", report.size)
    );
    assert_eq!(report.size, received.size, "the announced size is exact");
    // The session ran STARTTLS before AUTH, and said goodbye.
    let starttls = transcript.find("STARTTLS\r\n").unwrap();
    assert!(starttls < transcript.find("AUTH XOAUTH2").unwrap());
    assert!(transcript.ends_with("QUIT\r\n"));
}

#[test]
fn a_walk_up_user_may_send_from_an_alias_when_the_policy_allows_edits() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let outcome = rig.web(&[("from.edit-without-auth", "yes")]);
    assert!(
        outcome
            .settings
            .iter()
            .any(|e| e.key == "from.edit-without-auth" && e.value == "yes")
    );
    let mut msg = message();
    msg.from = Some(WORK_ALIAS.into());
    rig.send(&msg, signed_in + 10)
        .expect("an alias of the mailbox may be the sender");
    let received = &rig.world.messages()[0];
    assert_eq!(received.header("From").as_deref(), Some(WORK_ALIAS));
    assert_eq!(received.mail_from, WORK_ALIAS);
    assert!(
        bearer_of(&rig.last_transcript()).len() > 2_500,
        "Microsoft's tokens exceed 2,500 bytes"
    );
    // The two-step form: the response is the line after `AUTH XOAUTH2`.
    let transcript = rig.last_transcript();
    let mut lines = transcript.split("\r\n");
    lines.find(|l| *l == "AUTH XOAUTH2").unwrap();
    let response = lines.next().unwrap();
    let decoded = String::from_utf8(STANDARD.decode(response).unwrap()).unwrap();
    assert!(
        decoded.starts_with(&format!("user={WORK_UPN}\x01auth=Bearer ")),
        "XOAUTH2 signs in as the Device Email Address"
    );
}

#[test]
fn the_device_email_itself_is_not_an_edit_of_from() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.from = Some(WORK_UPN.to_ascii_uppercase());
    rig.send(&msg, signed_in + 10)
        .expect("the Device Email Address, in any case, is always allowed");
}

#[test]
fn every_precondition_is_refused_before_any_connection() {
    // Not Exchange Online.
    let rig = Rig::for_case(Case::Happy);
    let f = rig.send_err(&message(), T0);
    assert_code(&f.diagnosis, "provider-not-exchange-online");
    assert!(f.diagnosis.remedy.contains("Exchange Online/Outlook.com"));
    assert_eq!((rig.connects(), rig.http_count()), (0, 0));

    // Exchange Online selected, nobody signed in, no Device Email Address yet.
    let rig = Rig::for_case(Case::Happy);
    rig.exchange_online();
    assert_code(
        &rig.send_err(&message(), T0).diagnosis,
        "device-email-missing",
    );
    // With an address but no grant.
    rig.web(&[("device-email", WORK_UPN)]);
    let f = rig.send_err(&message(), T0);
    assert_code(&f.diagnosis, "sign-in-required");
    assert!(f.diagnosis.remedy.contains("Open Authentication Page"));
    assert_eq!((rig.connects(), rig.http_count()), (0, 0));

    let rig = Rig::for_case(Case::Happy).with_file(1, "scan.pdf", noise(100, 1));
    let signed_in = rig.sign_in();
    let http_before = rig.http_count();
    let now = signed_in + 10;

    // No recipient.
    let mut msg = message();
    msg.to.clear();
    assert_code(&rig.send_err(&msg, now).diagnosis, "no-recipients");

    // S7: a walk-up user's From edit while the policy says No.
    let mut msg = message();
    msg.from = Some("ceo@contoso.com".into());
    let f = rig.send_err(&msg, now);
    assert_code(&f.diagnosis, "from-edit-not-allowed");
    assert!(f.diagnosis.message.contains(WORK_UPN));
    assert!(f.diagnosis.remedy.contains("SendAsDenied"));

    // A missing attachment.
    let mut msg = message();
    msg.attachments = vec![1, 9];
    assert_code(&rig.send_err(&msg, now).diagnosis, "attachment-unreadable");

    // A recipient that would inject a command is refused while writing the message.
    let mut msg = message();
    msg.to = vec!["alice@fabrikam.com>\r\nRCPT TO:<eve@evil.test".into()];
    assert_code(&rig.send_err(&msg, now).diagnosis, "mime-invalid-address");

    // S6: the control panel sets Remotely Authenticated User back.
    let outcome = rig.apply(
        Origin::ControlPanel,
        &[("login-credentials", "remotely-authenticated-user")],
    );
    assert!(
        outcome
            .notices
            .iter()
            .any(|n| n.code == "login-credentials-not-system")
    );
    let f = rig.send_err(&message(), now);
    assert_code(&f.diagnosis, "login-credentials-not-system");
    assert!(f.diagnosis.message.contains("Authentication error"));
    assert!(f.diagnosis.remedy.contains("[System]"));

    assert_eq!(rig.connects(), 0, "nothing was refused by connecting first");
    assert_eq!(rig.http_count(), http_before, "nor by fetching a token");
    assert_eq!(rig.files.reads.get(), 0);
    assert!(rig.world.messages().is_empty());

    // Back to System: sending works again.
    rig.web(&[("login-credentials", "system")]);
    rig.send(&message(), now).expect("sent");
}

#[test]
fn each_exchange_refusal_maps_to_its_diagnosis() {
    let cases: [(SmtpCase, &str, &str, &str); 6] = [
        (
            SmtpCase::AuthDisabledForTenant,
            "smtp-auth-disabled-for-tenant",
            "535 5.7.139",
            "Set-TransportConfig",
        ),
        (
            SmtpCase::AuthDisabledForMailbox,
            "smtp-auth-disabled-for-mailbox",
            "535 5.7.139",
            "Authenticated SMTP",
        ),
        (
            SmtpCase::SecurityDefaults,
            "smtp-auth-blocked-by-security-defaults",
            "535 5.7.139",
            "security defaults",
        ),
        (
            SmtpCase::ConcurrentLimit,
            "smtp-concurrent-connections",
            "432 4.3.2",
            "Wait and try again",
        ),
        (
            SmtpCase::SubmissionQuota,
            "smtp-sending-quota-exceeded",
            "554 5.2.0",
            "30 messages a minute",
        ),
        (
            SmtpCase::ErrorChallenge,
            "smtp-auth-unsuccessful",
            "535 5.7.3",
            "Sign in again",
        ),
    ];
    for (case, code, reply, remedy) in cases {
        let rig = Rig::for_case(Case::Smtp(case)).with_file(1, "scan.pdf", noise(5_000, 3));
        let signed_in = rig.sign_in();
        let mut msg = message();
        msg.attachments = vec![1];
        let f = rig.send_err(&msg, signed_in + 10);
        assert_code(&f.diagnosis, code);
        assert!(
            f.server_reply
                .as_deref()
                .is_some_and(|r| r.starts_with(reply)),
            "{case:?}: {f:?}"
        );
        assert!(
            f.diagnosis.message.contains(reply),
            "{case:?}: the server's words are quoted: {f:?}"
        );
        assert!(f.diagnosis.remedy.contains(remedy), "{case:?}: {f:?}");
        assert!(rig.world.messages().is_empty(), "{case:?}");
        assert_eq!(rig.world.open_sessions(WORK_UPN), 0, "{case:?}");
        let transcript = rig.last_transcript();
        assert!(
            transcript.ends_with("QUIT\r\n"),
            "{case:?}: a polite QUIT: {:?}",
            &transcript[transcript.len().saturating_sub(40)..]
        );
        let at_auth = !matches!(case, SmtpCase::SubmissionQuota);
        assert_eq!(
            rig.files.reads.get() == 0,
            at_auth,
            "{case:?}: the scan is read only once the server wants it"
        );
        match case {
            SmtpCase::ConcurrentLimit => assert_eq!(f.retry_after, Some(30)),
            _ => assert_eq!(f.retry_after, None, "{case:?}"),
        }
        if case == SmtpCase::ErrorChallenge {
            // The 334 error challenge is answered with an empty line, then 535 follows.
            // `AUTH XOAUTH2`, the response after the 334 prompt, then the empty line.
            let auth = transcript.find("AUTH XOAUTH2\r\n").unwrap();
            let after = &transcript[auth + "AUTH XOAUTH2\r\n".len()..];
            let first_end = after.find("\r\n").unwrap();
            assert!(
                after[first_end + 2..].starts_with("\r\n"),
                "an empty line answers the challenge"
            );
        }
    }
}

#[test]
fn concurrent_connection_limits_are_retried_with_backoff_until_attempts_run_out() {
    let rig = Rig::for_case(Case::Smtp(SmtpCase::ConcurrentLimit));
    let signed_in = rig.sign_in();
    let mut retries = Vec::new();
    for attempt in 1..=diagnose::MAX_SEND_ATTEMPTS {
        let mut msg = message();
        msg.attempt = attempt;
        let f = rig.send_err(&msg, signed_in + 10 * u64::from(attempt));
        assert_code(&f.diagnosis, "smtp-concurrent-connections");
        retries.push(f.retry_after);
    }
    assert_eq!(
        retries,
        [Some(30), Some(60), None],
        "the last attempt is not retried"
    );
}

#[test]
fn three_sessions_of_the_account_elsewhere_make_the_device_wait() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    let token = rig.grant().unwrap().access_token.expose().to_owned();
    let now = Duration::from_secs(signed_in + 5);
    // Three other clients of the same mailbox hold its three connections.
    let blob = STANDARD.encode(format!("user={WORK_UPN}\x01auth=Bearer {token}\x01\x01"));
    let mut others: Vec<SmtpSession> = (0..3)
        .map(|_| {
            let mut s = SmtpSession::new(rig.world.clone(), "192.0.2.20", now);
            s.feed(b"EHLO other\r\n", now);
            assert!(s.feed(b"STARTTLS\r\n", now).start_tls);
            s.feed(b"EHLO other\r\n", now);
            assert!(s.feed(b"AUTH XOAUTH2\r\n", now).reply.starts_with(b"334"));
            let out = s.feed(format!("{blob}\r\n").as_bytes(), now);
            assert!(
                out.reply.starts_with(b"235"),
                "{}",
                String::from_utf8_lossy(&out.reply)
            );
            s
        })
        .collect();
    let f = rig.send_err(&message(), signed_in + 10);
    assert_code(&f.diagnosis, "smtp-concurrent-connections");
    assert_eq!(f.retry_after, Some(30));
    others.pop();
    rig.send(&message(), signed_in + 40)
        .expect("a slot is free again");
}

#[test]
fn more_than_the_per_minute_limit_is_a_quota_refusal_until_the_minute_passes() {
    let rig = Rig::for_case(Case::Happy);
    rig.world.update_settings(|s| s.messages_per_minute = 2);
    let signed_in = rig.sign_in();
    rig.send(&message(), signed_in + 1).unwrap();
    rig.send(&message(), signed_in + 2).unwrap();
    let f = rig.send_err(&message(), signed_in + 3);
    assert_code(&f.diagnosis, "smtp-sending-quota-exceeded");
    rig.send(&message(), signed_in + 62)
        .expect("a minute later");
    assert_eq!(rig.world.messages().len(), 3);
}

#[test]
fn send_as_denied_after_data_in_either_wording_points_at_the_from_address_policy() {
    for wording in [SendAsReply::Current, SendAsReply::Legacy] {
        let rig = Rig::new(Scenario {
            send_as_reply: wording,
            ..Case::Happy.scenario()
        });
        let signed_in = rig.sign_in();
        rig.web(&[("from.edit-without-auth", "yes")]);
        // The envelope sender reaches Exchange as the account's, so only the From header
        // is left to refuse, after DATA (as Exchange does when the two differ).
        *rig.smtp.rewrite_mail_from.borrow_mut() =
            Some(("ceo@contoso.com".into(), WORK_UPN.into()));
        let mut msg = message();
        msg.from = Some("ceo@contoso.com".into());
        let f = rig.send_err(&msg, signed_in + 10);
        assert_code(&f.diagnosis, "smtp-send-as-denied");
        let reply = f.server_reply.clone().unwrap();
        match wording {
            SendAsReply::Current => {
                assert!(reply.starts_with("554 5.2.252 SendAsDenied"), "{reply}")
            }
            SendAsReply::Legacy => assert!(
                reply.starts_with("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException"),
                "{reply}"
            ),
        }
        assert!(
            f.diagnosis.remedy.contains(diagnose::FROM_ADDRESS_PAGE),
            "{:?}",
            f.diagnosis
        );
        assert!(
            f.diagnosis
                .remedy
                .contains("[Edit [From:] Field when Authorization is not Required] to [No]")
        );
        assert!(f.diagnosis.remedy.contains("from.alias-sender"));
        assert_eq!(f.retry_after, None);
        assert!(rig.world.messages().is_empty());
    }
}

#[test]
fn a_from_the_account_may_not_send_as_is_refused_at_mail_from() {
    let rig = Rig::for_case(Case::Happy).with_file(1, "scan.pdf", noise(2_000, 5));
    let signed_in = rig.sign_in();
    let outcome = rig.web(&[("from.edit-without-auth", "yes")]);
    assert!(
        outcome.notices.is_empty()
            || outcome
                .notices
                .iter()
                .all(|n| n.severity != Severity::Error)
    );
    assert!(
        panel::diagnostics(&rig.store)
            .unwrap()
            .iter()
            .any(|d| d.code == "send-as-denied-risk"),
        "S7 warns ahead"
    );
    let mut msg = message();
    msg.from = Some("ceo@contoso.com".into());
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-send-as-denied");
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("550 5.7.60")),
        "{f:?}"
    );
    assert!(f.diagnosis.remedy.contains(diagnose::FROM_ADDRESS_PAGE));
    assert!(
        f.diagnosis.remedy.contains(WORK_UPN),
        "names the Device Email Address to send as"
    );
    assert_eq!(rig.files.reads.get(), 0);
    assert!(rig.world.messages().is_empty());
}

#[test]
fn a_message_over_the_servers_limit_is_refused_without_reading_the_scan() {
    // Over the limit Exchange enforces (35 MB by default; 100 KB here): SIZE= is refused.
    let rig = Rig::for_case(Case::Happy).with_file(1, "big.pdf", noise(300 * 1024, 9));
    rig.world
        .update_settings(|s| s.max_message_size = 100 * 1024);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-message-too-large");
    assert!(
        f.server_reply
            .as_deref()
            .is_some_and(|r| r.starts_with("552 5.3.4")),
        "{f:?}"
    );
    assert!(f.diagnosis.remedy.contains("35 MB"));
    assert_eq!(rig.files.reads.get(), 0);

    // Over the SIZE the server advertises (150 MB): refused before the sign-in.
    let rig = Rig::for_case(Case::Happy).with_virtual_file(1, "huge.tif", 200 * 1024 * 1024);
    let signed_in = rig.sign_in();
    let mut msg = message();
    msg.attachments = vec![1];
    let f = rig.send_err(&msg, signed_in + 10);
    assert_code(&f.diagnosis, "smtp-message-too-large");
    assert_eq!(f.server_reply, None);
    assert!(
        !rig.last_transcript().contains("AUTH"),
        "no sign-in for a message that cannot be sent"
    );
}

#[test]
fn smtp_goes_only_to_the_exchange_server() {
    let rig = Rig::for_case(Case::Happy);
    let signed_in = rig.sign_in();
    // The stored settings name another server (as a corrupted or migrated record might).
    let mut settings = rig.settings();
    settings.smtp_server = "mail.example.com".into();
    rig.store
        .commit(vec![storage::settings_write(&settings)])
        .unwrap();
    let f = rig.send_err(&message(), signed_in + 10);
    assert_code(&f.diagnosis, "network-denied");
    assert!(f.diagnosis.message.contains("mail.example.com:587"));
}

// ---------------------------------------------------------------------------------------
// Secrets (DESIGN.md, "Conventions")
// ---------------------------------------------------------------------------------------

#[test]
fn no_token_appears_in_any_diagnosis_report_or_debug_output() {
    // Every rig call above checks its result against every token the identity fake
    // issued; this test makes the failures that hold the token closest.
    for case in [
        SmtpCase::ErrorChallenge,
        SmtpCase::AuthDisabledForTenant,
        SmtpCase::ConcurrentLimit,
    ] {
        let rig = Rig::for_case(Case::Smtp(case));
        let signed_in = rig.sign_in();
        let grant = rig.grant().unwrap();
        let f = rig.send_err(&message(), signed_in + 10);
        let access = grant.access_token.expose();
        for text in [
            format!("{f:?}"),
            format!("{f:#?}"),
            f.diagnosis.message.clone(),
            f.diagnosis.remedy.clone(),
        ] {
            assert!(
                !text.contains(access) && !text.contains(&access[access.len() - 64..]),
                "{case:?}"
            );
        }
        // The stored grant and the account never show a token in Debug.
        let shown = format!(
            "{grant:?} {:?} {:?}",
            rig.account(),
            rig.status(signed_in + 20)
        );
        assert!(
            !shown.contains(&access[..64]) && !shown.contains(grant.refresh_token.expose()),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
        assert!(
            rig.transcript(0).contains(
                &STANDARD.encode(format!("user={WORK_UPN}\x01auth=Bearer {access}\x01\x01"))
            ),
            "the token did go to the server"
        );
    }
    // A refresh refused for good, and a successful send's report.
    let rig = Rig::for_case(Case::Refused(Aadsts::GrantRevoked50173));
    let signed_in = rig.sign_in();
    let grant = rig.grant().unwrap();
    let f = rig.send_err(&message(), grant.expires_at);
    assert!(!format!("{f:?}").contains(grant.refresh_token.expose()));
    let rig = Rig::for_case(Case::Happy);
    rig.sign_in();
    let report = rig.send(&message(), signed_in + 10).unwrap();
    let access = rig.grant().unwrap().access_token.expose().to_owned();
    assert!(!format!("{report:?}").contains(&access[..64]));
    assert!(!rig.secrets.borrow().is_empty());
}
