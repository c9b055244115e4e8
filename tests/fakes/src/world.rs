//! The state both stand-ins share: the scenario, the accounts, the grants the identity
//! fake issued (the SMTP fake checks XOAUTH2 tokens against them) and the mailbox of
//! received messages.
//!
//! A [`World`] is a cheap handle (`Clone` shares it). Everything it holds is bounded:
//! expired codes and tokens are pruned, and past a cap the oldest entries go, so a client
//! looping on requests cannot grow it without limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

use crate::PERSONAL_TENANT;
use crate::scenario::{AccountKind, Case, Scenario};

/// Outstanding device codes kept at most; past it the oldest goes.
const MAX_DEVICE_CODES: usize = 1_000;
/// Access or refresh tokens kept at most (each kind); past it the oldest goes.
const MAX_TOKENS: usize = 10_000;
/// How long a refresh token may sit unused before AADSTS700082 (90 days).
pub const REFRESH_IDLE_LIMIT: Duration = Duration::from_secs(90 * 86_400);

/// The tenant id of the demo's work tenant (made up, stable so tests can name it).
pub const WORK_TENANT: &str = "3c7b4f2e-91d5-4a8c-b6e0-7f2d1a9c5e48";

/// A mailbox account that can sign in and send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The user principal name: what `preferred_username` says and what XOAUTH2's
    /// `user=` must equal.
    pub upn: String,
    /// The mailbox's primary SMTP address, which may differ from the UPN (S9).
    pub primary: String,
    /// Whether the id_token carries `email` (the primary address). Microsoft omits it for
    /// some accounts.
    pub email_claim: bool,
    /// Whether the id_token carries the optional `upn` claim.
    pub upn_claim: bool,
    /// Display name (`name` claim).
    pub name: String,
    /// Object id (`oid` claim).
    pub oid: String,
    /// Tenant id (`tid` claim): [`WORK_TENANT`] or [`PERSONAL_TENANT`].
    pub tid: String,
    /// Further addresses the mailbox may send as (proxy addresses, SendAs grants).
    pub aliases: Vec<String>,
}

impl Account {
    /// A work account in [`WORK_TENANT`] whose primary address is its UPN.
    pub fn work(upn: &str, name: &str) -> Self {
        Self {
            upn: upn.into(),
            primary: upn.into(),
            email_claim: true,
            upn_claim: true,
            name: name.into(),
            oid: "5b1f6d1e-8c3a-4d2b-9f47-0c6e2a8d9b31".into(),
            tid: WORK_TENANT.into(),
            aliases: Vec::new(),
        }
    }

    /// The account a [`Case`] signs in with.
    pub fn for_kind(kind: AccountKind) -> Self {
        let mut work = Account::work("mfp@contoso.com", "Scan to Email");
        work.aliases.push("scans@contoso.com".into());
        match kind {
            AccountKind::Work => work,
            AccountKind::PrimaryDiffersFromUpn => Account {
                upn: "mfp@contoso.onmicrosoft.com".into(),
                primary: "scanner@contoso.com".into(),
                ..work
            },
            AccountKind::NoEmailClaim => Account {
                email_claim: false,
                ..work
            },
            AccountKind::Personal => Account {
                upn: "mfp.scanner@outlook.com".into(),
                primary: "mfp.scanner@outlook.com".into(),
                upn_claim: false,
                name: "MFP Scanner".into(),
                oid: "00000000-0000-0000-4b1d-6f3a9e2c7d05".into(),
                tid: PERSONAL_TENANT.into(),
                aliases: Vec::new(),
                ..work
            },
        }
    }

    /// Whether the mailbox may send as `address`: its UPN, primary address or an alias
    /// (case-insensitive, as Exchange compares addresses).
    pub fn may_send_as(&self, address: &str) -> bool {
        !address.is_empty()
            && (self.upn.eq_ignore_ascii_case(address)
                || self.primary.eq_ignore_ascii_case(address)
                || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(address)))
    }
}

/// What does not change between scenarios: addresses, lifetimes, limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The `verification_uri` of device-code replies, e.g. the demo's approval page.
    pub verification_uri: String,
    /// Device-code lifetime in seconds (`expires_in`, Microsoft: 900).
    pub code_lifetime: u64,
    /// Polling interval in seconds (`interval`, Microsoft: 5).
    pub interval: u64,
    /// The registered application; `None` accepts any client id.
    pub client_id: Option<String>,
    /// The scopes the registered application asks for, exactly (in any order): DESIGN.md's
    /// `https://outlook.office.com/SMTP.Send offline_access openid profile email`. A
    /// device-code request for another set gets AADSTS70011 (`invalid_scope`). `None`
    /// accepts any scope (tests that need a token of another resource).
    pub scope: Option<String>,
    /// Whether each refresh token may be redeemed once only: a second use gets
    /// `invalid_grant` (AADSTS70000), as a strict platform answers a replayed token.
    /// Off by default: Entra ID keeps an already-redeemed refresh token valid. On in the
    /// race tests, where a client that spends a rotated token must not sign out.
    pub single_use_refresh_tokens: bool,
    /// Lifetime of issued access tokens in seconds; `None`: 3600 to 5400 at random, as
    /// Microsoft's. A short one makes a device refresh at every send (crash tests).
    pub access_token_lifetime: Option<u64>,
    /// The application's display name, quoted by AADSTS65001 and 50194.
    pub app_name: String,
    /// The front-end host name in SMTP greetings and diagnostics.
    pub smtp_host: String,
    /// The mailbox server named in `[Hostname=…]` after DATA.
    pub mailbox_host: String,
    /// Largest message accepted, in bytes (Exchange Online default: 35 MB). The EHLO reply
    /// advertises `SIZE 157286400` regardless, as Exchange does.
    pub max_message_size: u64,
    /// Authenticated SMTP sessions one account may hold at once (Exchange: 3).
    pub max_connections_per_account: u32,
    /// Messages one account may submit per minute (Exchange: 30).
    pub messages_per_minute: u32,
    /// Messages up to this size are kept whole in the mailbox; larger ones keep their
    /// headers, size and SHA-256 only.
    pub keep_raw_up_to: usize,
    /// Messages the mailbox keeps; past it the oldest goes.
    pub mailbox_capacity: usize,
    /// Longest SMTP command line accepted, CRLF included: 512 (RFC 5321 §4.5.3.1.4), as a
    /// strict server (Dovecot) enforces, so `AUTH XOAUTH2 <response>` with a Microsoft
    /// token gets `500 5.5.2 Line too long`. Exchange Online itself tolerates longer AUTH
    /// lines: raise it (e.g. to `exchange::MAX_LINE`) to stand in for that leniency.
    pub max_command_line: usize,
    /// Whether the server hangs up right after any `4xx`/`5xx` reply, so the client's
    /// QUIT finds the connection gone: a client must still report the server's refusal,
    /// not the failed QUIT. Off by default.
    pub hang_up_after_refusal: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            verification_uri: "https://microsoft.com/devicelogin".into(),
            code_lifetime: 900,
            interval: 5,
            client_id: None,
            scope: Some(crate::DEVICE_SCOPE.into()),
            single_use_refresh_tokens: false,
            access_token_lifetime: None,
            hang_up_after_refusal: false,
            app_name: "MFP Scan to Email".into(),
            smtp_host: "PH7P220CA0011.outlook.office365.com".into(),
            mailbox_host: "PH7PR11MB5987.namprd11.prod.outlook.com".into(),
            max_message_size: 35 * 1024 * 1024,
            max_connections_per_account: 3,
            messages_per_minute: 30,
            keep_raw_up_to: 4 * 1024 * 1024,
            mailbox_capacity: 200,
            max_command_line: crate::exchange::MAX_COMMAND_LINE,
        }
    }
}

/// A message Exchange accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceivedMessage {
    /// The UPN of the account that authenticated.
    pub account: String,
    /// The envelope sender (MAIL FROM).
    pub mail_from: String,
    /// The envelope recipients (RCPT TO).
    pub rcpt_to: Vec<String>,
    /// The header section as received (up to 64 KiB), lossily decoded.
    pub headers: String,
    /// Size after dot-unstuffing, in bytes.
    pub size: u64,
    /// SHA-256 of the message bytes, lower-case hex.
    pub sha256: String,
    /// The whole message, when not larger than [`Settings::keep_raw_up_to`].
    #[serde(skip)]
    pub raw: Option<Vec<u8>>,
    /// The Message-ID Exchange reported (the message's own, or one it assigned).
    pub message_id: String,
    /// When it was accepted (time since the Unix epoch).
    pub received_at: Duration,
}

impl ReceivedMessage {
    /// The value of header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        crate::exchange::header_value(self.headers.as_bytes(), name)
    }

    /// The message as the demo mailbox lists it (`GET /demo/api/messages`, and the
    /// preview's mailbox): as the fake Exchange decodes it; a message kept as headers
    /// only lists no attachments.
    pub fn mailbox_entry(&self) -> serde_json::Value {
        let decoded = self.decoded();
        serde_json::json!({
            "from": decoded.from,
            "to": self.rcpt_to,
            "subject": decoded.subject,
            "size": self.size,
            "attachments": decoded.attachments.iter().map(|a| &a.name).collect::<Vec<_>>(),
            "received-at": self.received_at.as_secs(),
            "message-id": self.message_id,
            "account": self.account,
        })
    }
}

/// A device code waiting to be approved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingCode {
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    /// When the code expires (time since the Unix epoch).
    pub expires_at: Duration,
}

/// Why [`World::approve`] or [`World::decline`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no device code has the user code {0:?}")]
    UnknownCode(String),
    #[error("the code has expired; start the sign-in again")]
    Expired,
    #[error("the code was already approved or declined")]
    AlreadyDecided,
    #[error("no account has the UPN {0:?}")]
    UnknownAccount(String),
}

/// Where a device code stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Pending,
    Approved(Account),
    Declined,
}

/// An issued device code.
#[derive(Clone, Debug)]
pub(crate) struct DeviceGrant {
    pub user_code: String,
    pub client_id: String,
    /// The tenant segment of the request that issued the code: it is redeemed there only.
    pub tenant: String,
    pub scope: String,
    pub issued: Duration,
    pub expires: Duration,
    /// Seconds between polls, grown by 5 with each `slow_down`.
    pub interval: u64,
    pub last_poll: Option<Duration>,
    /// Polls answered `authorization_pending`.
    pub pending_polls: u32,
    /// Whether the scenario's single `slow_down` was sent.
    pub slowed_once: bool,
    pub decision: Decision,
}

/// An issued access token.
#[derive(Clone, Debug)]
pub(crate) struct AccessGrant {
    pub account: Account,
    pub scope: String,
    pub expires: Duration,
}

/// An issued refresh token and its lineage.
#[derive(Clone, Debug)]
pub(crate) struct RefreshGrant {
    pub account: Account,
    pub client_id: String,
    pub scope: String,
    /// When the sign-in that started this chain of refresh tokens happened.
    pub first_issued: Duration,
    /// When this token was issued (its idle clock starts here).
    pub issued: Duration,
    /// A newer refresh token replaced this one: reuse is refused.
    pub rotated: bool,
}

pub(crate) struct State {
    pub scenario: Scenario,
    pub settings: Settings,
    pub accounts: Vec<Account>,
    /// By device code.
    pub device: HashMap<String, DeviceGrant>,
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub mailbox: VecDeque<ReceivedMessage>,
    /// Authenticated SMTP sessions per lower-cased UPN.
    pub sessions: HashMap<String, u32>,
    /// Submission times per lower-cased UPN, for the per-minute limit.
    pub submissions: HashMap<String, VecDeque<Duration>>,
    /// Requests received per identity endpoint (`devicecode`, `token`) and SMTP
    /// connections (`smtp`), for benchmarks and tests that count. Three keys at most.
    pub requests: HashMap<&'static str, u64>,
    /// Lines sent to the Exchange fake, redacted (see `World::smtp_commands`).
    pub smtp_log: VecDeque<String>,
    /// Run once when the next token request arrives, before it is answered (see
    /// [`World::before_next_token_reply`]).
    pub token_hook: Option<Box<dyn FnOnce() + Send>>,
}

impl State {
    pub fn default_account(&self) -> Account {
        self.accounts
            .first()
            .cloned()
            .unwrap_or_else(|| Account::for_kind(AccountKind::Work))
    }

    /// Stores a device grant, pruning expired ones and, at the cap, the oldest.
    pub fn insert_device(&mut self, code: String, grant: DeviceGrant, now: Duration) {
        self.device.retain(|_, g| g.expires > now);
        insert_capped(&mut self.device, code, grant, MAX_DEVICE_CODES, |g| {
            g.issued
        });
    }

    pub fn insert_access(&mut self, token: String, grant: AccessGrant, now: Duration) {
        self.access.retain(|_, g| g.expires > now);
        insert_capped(&mut self.access, token, grant, MAX_TOKENS, |g| g.expires);
    }

    pub fn insert_refresh(&mut self, token: String, grant: RefreshGrant, now: Duration) {
        self.refresh.retain(|_, g| {
            now.saturating_sub(g.issued) < REFRESH_IDLE_LIMIT + Duration::from_secs(86_400)
        });
        insert_capped(&mut self.refresh, token, grant, MAX_TOKENS, |g| g.issued);
    }

    /// The device grant whose user code is `user_code` (ignoring case, spaces and dashes).
    fn by_user_code(&mut self, user_code: &str) -> Option<&mut DeviceGrant> {
        let wanted = normalize_user_code(user_code);
        self.device.values_mut().find(|g| g.user_code == wanted)
    }
}

/// `abcd-1234 ` → `ABCD1234`: how the approval page compares what the user typed.
fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .take(64)
        .collect()
}

/// The shared state of both stand-ins.
#[derive(Clone)]
pub struct World {
    inner: Arc<Mutex<State>>,
}

impl World {
    /// A world running `scenario` with default settings and the work account.
    pub fn new(scenario: Scenario) -> Self {
        Self::with(
            scenario,
            Settings::default(),
            vec![Account::for_kind(AccountKind::Work)],
        )
    }

    /// A world running the named case, with its account.
    pub fn for_case(case: Case) -> Self {
        Self::with(
            case.scenario(),
            Settings::default(),
            vec![Account::for_kind(case.account_kind())],
        )
    }

    /// A world with everything chosen. The first account is the one that signs in when
    /// nobody names another.
    pub fn with(scenario: Scenario, settings: Settings, accounts: Vec<Account>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                scenario,
                settings,
                accounts,
                device: HashMap::new(),
                access: HashMap::new(),
                refresh: HashMap::new(),
                mailbox: VecDeque::new(),
                sessions: HashMap::new(),
                submissions: HashMap::new(),
                requests: HashMap::new(),
                smtp_log: VecDeque::new(),
                token_hook: None,
            })),
        }
    }

    /// The state, even if a thread panicked while holding it (the data stays usable: every
    /// update is a single insert or remove).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn scenario(&self) -> Scenario {
        self.lock().scenario.clone()
    }

    /// Switches scenario; issued codes and tokens stay (the demo switches live).
    pub fn set_scenario(&self, scenario: Scenario) {
        self.lock().scenario = scenario;
    }

    /// Switches to a named case: its scenario and its account.
    pub fn set_case(&self, case: Case) {
        let mut state = self.lock();
        state.scenario = case.scenario();
        state.accounts = vec![Account::for_kind(case.account_kind())];
    }

    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Changes the settings with `change`, e.g. to point `verification_uri` at the demo.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut self.lock().settings);
    }

    pub fn accounts(&self) -> Vec<Account> {
        self.lock().accounts.clone()
    }

    pub fn set_accounts(&self, accounts: Vec<Account>) {
        self.lock().accounts = accounts;
    }

    /// Device codes waiting for the approval page.
    pub fn pending_codes(&self, now: Duration) -> Vec<PendingCode> {
        let state = self.lock();
        let mut codes: Vec<PendingCode> = state
            .device
            .values()
            .filter(|g| g.expires > now && g.decision == Decision::Pending)
            .map(|g| PendingCode {
                user_code: g.user_code.clone(),
                client_id: g.client_id.clone(),
                scope: g.scope.clone(),
                expires_at: g.expires,
            })
            .collect();
        codes.sort_by_key(|c| c.expires_at);
        codes
    }

    /// The approval page: the first account signs in with `user_code` and approves.
    pub fn approve(&self, user_code: &str, now: Duration) -> Result<Account, ApprovalError> {
        let mut state = self.lock();
        let account = state.default_account();
        decide(
            &mut state,
            user_code,
            now,
            Decision::Approved(account.clone()),
        )?;
        Ok(account)
    }

    /// The approval page: the account with `upn` signs in with `user_code` and approves.
    pub fn approve_as(
        &self,
        user_code: &str,
        upn: &str,
        now: Duration,
    ) -> Result<Account, ApprovalError> {
        let mut state = self.lock();
        let account = state
            .accounts
            .iter()
            .find(|a| a.upn.eq_ignore_ascii_case(upn))
            .cloned()
            .ok_or_else(|| ApprovalError::UnknownAccount(upn.chars().take(256).collect()))?;
        decide(
            &mut state,
            user_code,
            now,
            Decision::Approved(account.clone()),
        )?;
        Ok(account)
    }

    /// The approval page: the user declines the request.
    pub fn decline(&self, user_code: &str, now: Duration) -> Result<(), ApprovalError> {
        decide(&mut self.lock(), user_code, now, Decision::Declined)
    }

    /// Messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.lock().mailbox.iter().cloned().collect()
    }

    /// Empties the mailbox.
    pub fn clear_messages(&self) {
        self.lock().mailbox.clear();
    }

    /// Runs `hook` when the next request to the token endpoint arrives, before it is
    /// answered: tests put what another device does while a poll or a refresh is in flight
    /// there (a reset, a sign-out), deterministically. The hook runs on the server's
    /// thread, without the world locked.
    pub fn before_next_token_reply(&self, hook: impl FnOnce() + Send + 'static) {
        self.lock().token_hook = Some(Box::new(hook));
    }

    /// Takes the hook set by [`World::before_next_token_reply`], if any.
    pub(crate) fn take_token_hook(&self) -> Option<Box<dyn FnOnce() + Send>> {
        self.lock().token_hook.take()
    }

    /// Requests the identity fake received at `endpoint` (`"devicecode"` or `"token"`),
    /// whatever their answer, or connections the Exchange fake took (`"smtp"`); any other
    /// name counts 0.
    pub fn requests(&self, endpoint: &str) -> u64 {
        self.lock().requests.get(endpoint).copied().unwrap_or(0)
    }

    /// Counts one request to a known identity endpoint.
    pub(crate) fn count_request(&self, endpoint: &str) {
        let key = match endpoint {
            "devicecode" => "devicecode",
            "token" => "token",
            "smtp" => "smtp",
            _ => return,
        };
        let mut state = self.lock();
        let count = state.requests.entry(key).or_insert(0);
        *count = count.saturating_add(1);
    }

    /// Every secret the identity platform issued and still holds: device codes, access
    /// tokens and refresh tokens. Leak tests search a device's output, logs and state for
    /// them.
    pub fn issued_secrets(&self) -> Vec<String> {
        let state = self.lock();
        state
            .device
            .keys()
            .chain(state.access.keys())
            .chain(state.refresh.keys())
            .cloned()
            .collect()
    }

    /// Authenticated SMTP sessions `upn` holds now.
    pub fn open_sessions(&self, upn: &str) -> u32 {
        self.lock()
            .sessions
            .get(&upn.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// The account an access token was issued to, if it is valid at `now` for `scope`.
    pub fn token_account(&self, token: &str, scope: &str, now: Duration) -> Option<Account> {
        let state = self.lock();
        let grant = state.access.get(token)?;
        (grant.expires > now
            && grant
                .scope
                .split(' ')
                .any(|s| s.eq_ignore_ascii_case(scope)))
        .then(|| grant.account.clone())
    }

    /// Takes one of `upn`'s concurrent-session slots; `false` when all are in use.
    pub(crate) fn open_session(&self, upn: &str) -> bool {
        let mut state = self.lock();
        let limit = state.settings.max_connections_per_account;
        let count = state.sessions.entry(upn.to_ascii_lowercase()).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back a slot taken by [`World::open_session`].
    pub(crate) fn close_session(&self, upn: &str) {
        let mut state = self.lock();
        let key = upn.to_ascii_lowercase();
        if let Some(count) = state.sessions.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.sessions.remove(&key);
            }
        }
    }

    /// Counts a submission by `upn`; `false` when the per-minute limit is already reached.
    pub(crate) fn record_submission(&self, upn: &str, now: Duration) -> bool {
        let mut state = self.lock();
        let limit = state.settings.messages_per_minute as usize;
        let times = state
            .submissions
            .entry(upn.to_ascii_lowercase())
            .or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= Duration::from_secs(60))
        {
            times.pop_front();
        }
        if times.len() >= limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// Puts an accepted message into the mailbox, dropping the oldest past its capacity.
    pub(crate) fn deliver(&self, message: ReceivedMessage) {
        let mut state = self.lock();
        let capacity = state.settings.mailbox_capacity.max(1);
        while state.mailbox.len() >= capacity {
            state.mailbox.pop_front();
        }
        state.mailbox.push_back(message);
    }
}

fn decide(
    state: &mut State,
    user_code: &str,
    now: Duration,
    decision: Decision,
) -> Result<(), ApprovalError> {
    let grant = state
        .by_user_code(user_code)
        .ok_or_else(|| ApprovalError::UnknownCode(user_code.chars().take(64).collect()))?;
    if grant.expires <= now {
        return Err(ApprovalError::Expired);
    }
    if grant.decision != Decision::Pending {
        return Err(ApprovalError::AlreadyDecided);
    }
    grant.decision = decision;
    Ok(())
}

/// Inserts `value`, first evicting the entry that sorts first by `age` when `map` is at
/// `cap`: the fakes keep bounded state whatever a client does.
fn insert_capped<V, K: Ord>(
    map: &mut HashMap<String, V>,
    key: String,
    value: V,
    cap: usize,
    age: impl Fn(&V) -> K,
) {
    if map.len() >= cap
        && let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| age(v))
            .map(|(k, _)| k.clone())
    {
        map.remove(&oldest);
    }
    map.insert(key, value);
}
