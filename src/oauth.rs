//! Sign-in as the panels drive it: [Open Authentication Page] (S8), the account it yields
//! becoming the Device Email Address (S9), admin consent (S10), and keeping a valid
//! access token for sends. State lives in the store between calls: the flow in progress,
//! the token set and the account, each committed atomically with what depends on it.

use crate::capabilities::{Http, HttpReply};
use crate::diagnose::{Diagnostic, Severity};
use crate::history::{self, EventKind};
use crate::remedy::Remedy;
use crate::settings::Settings;
use crate::signin::{
    self, Account, DeviceFlow, FLOW_KEY, PollOutcome, PollStep, SigninConfig, SigninErrorKind,
    TokenSet, consent, device_code, token,
};
use crate::storage::{self, ACCOUNT_KEY, GRANT_KEY, REFRESH_LEASE_KEY, Storage, StoreError, Write};

/// A device code as the panels show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCodeView {
    pub user_code: String,
    pub verification_uri: String,
    pub expires_at: u64,
    pub interval: u64,
    pub message: String,
    /// Why polling fails, after several failed polls in a row; `None` once one succeeds.
    pub problem: Option<Diagnostic>,
}

/// What one poll found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollView {
    Pending(u64),
    /// Still pending, but the last polls got no answer from the identity platform:
    /// call again at `next_poll_at`; `problem` says why (a network, TLS or proxy failure).
    Unreachable {
        next_poll_at: u64,
        problem: Diagnostic,
    },
    SignedIn(Account),
    Failed(Diagnostic),
}

/// Where the device stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    SignedOut,
    /// A sign-in waits for the administrator; an account signed in before may still be.
    InProgress {
        code: DeviceCodeView,
        still_signed_in: Option<SignedIn>,
    },
    SignedIn(SignedIn),
    /// The last sign-in failed; an account signed in before may still be.
    SignInFailed {
        failure: FailedSignIn,
        still_signed_in: Option<SignedIn>,
    },
}

/// A signed-in account, with the S9 warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedIn {
    pub account: Account,
    pub access_token_expires_at: u64,
    pub warnings: Vec<Diagnostic>,
}

/// Where the last failed sign-in is kept, until the next one starts or a sign-out (it is
/// one of [`storage::GRANT_KEYS`]). Not a secret, but kept with the grant it is about.
pub const FAILED_SIGN_IN_KEY: &str = "oauth/failed-sign-in";

/// A sign-in that ended without an account, as stored: the diagnosis in its text form
/// (codes are stable strings), and when it ended.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct FailedSignIn {
    /// The record's layout (see [`storage::records`]).
    pub version: storage::RecordVersion<{ storage::records::FAILED_SIGN_IN }>,
    pub code: String,
    pub message: String,
    pub remedy: Remedy,
    pub failed_at: u64,
}

impl FailedSignIn {
    fn new(diagnosis: &Diagnostic, now: u64) -> Self {
        Self {
            version: Default::default(),
            code: diagnosis.code.to_owned(),
            message: diagnosis.message.clone(),
            remedy: diagnosis.remedy.clone(),
            failed_at: now,
        }
    }
}

/// The admin-consent step (S10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConsent {
    pub url: String,
    pub needed: bool,
    pub explanation: String,
}

/// Why a sign-in call failed, by what the caller does about it; mirrors `signin-error`
/// in `wit/signin.wit`. Each case is decided where the failure happens, never guessed
/// from a code afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigninFailure {
    /// A setting stands in the way (provider, tenant or client id).
    Settings(Diagnostic),
    /// Nobody is signed in, or no sign-in is in progress.
    SignInRequired(Diagnostic),
    /// The identity platform could not be reached or could not answer now.
    Unreachable(Diagnostic),
    /// The identity platform refused, or answered in a way that cannot be trusted.
    Refused(SigninErrorKind, Diagnostic),
    /// The device's storage failed.
    Storage(Diagnostic),
}

impl SigninFailure {
    /// The diagnosis, whatever the case.
    pub fn diagnosis(&self) -> &Diagnostic {
        match self {
            Self::Settings(d)
            | Self::SignInRequired(d)
            | Self::Unreachable(d)
            | Self::Refused(_, d)
            | Self::Storage(d) => d,
        }
    }

    pub fn into_diagnosis(self) -> Diagnostic {
        match self {
            Self::Settings(d)
            | Self::SignInRequired(d)
            | Self::Unreachable(d)
            | Self::Refused(_, d)
            | Self::Storage(d) => d,
        }
    }
}

impl From<StoreError> for SigninFailure {
    fn from(err: StoreError) -> Self {
        Self::Storage(Diagnostic::from(err))
    }
}

/// A platform that could not answer now is unreachable for the caller (try later); any
/// other error is a refusal.
impl From<signin::SigninError> for SigninFailure {
    fn from(err: signin::SigninError) -> Self {
        match err.kind {
            SigninErrorKind::Unavailable => Self::Unreachable(err.diagnostic()),
            kind => Self::Refused(kind, err.diagnostic()),
        }
    }
}

fn read_json<T: storage::Record>(s: &impl Storage, key: &str) -> Result<Option<T>, SigninFailure> {
    match s.get(key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(storage::decode(key, &bytes)?)),
    }
}

/// A record and the exact bytes it was read from, for a compare-and-swap on it.
fn read_raw_json<T: storage::Record>(
    s: &impl Storage,
    key: &str,
) -> Result<(Option<Vec<u8>>, Option<T>), SigninFailure> {
    match s.get(key)? {
        None => Ok((None, None)),
        Some(bytes) => {
            let value = storage::decode(key, &bytes)?;
            Ok((Some(bytes), Some(value)))
        }
    }
}

fn json_write<T: storage::Record>(key: &str, value: &T) -> Write {
    (key.to_owned(), Some(storage::encode(value)))
}

fn settings_and_config(
    s: &impl Storage,
    http: &impl Http,
) -> Result<(Settings, SigninConfig), SigninFailure> {
    let settings = storage::load_settings(s)?;
    let mut config = SigninConfig::from_settings(&settings, &http.authority());
    // The host's --tenant / --client-id win for this invocation; checked like the settings.
    let overrides = http.overrides();
    let refused = |e: crate::error::PanelError| {
        SigninFailure::Settings(Diagnostic::new(
            e.code,
            Severity::Error,
            format!("The host's override is invalid: {}", e.message),
            e.remedy,
        ))
    };
    if let Some(tenant) = overrides.tenant {
        config.tenant = crate::settings::values::parse_tenant(&tenant).map_err(refused)?;
    }
    if let Some(client_id) = overrides.client_id {
        config.client_id = crate::settings::values::parse_client_id(&client_id).map_err(refused)?;
    }
    Ok((settings, config))
}

/// Sends `request`, turning a network failure into its diagnosis.
fn send(
    http: &impl Http,
    config: &SigninConfig,
    request: &signin::HttpRequest,
) -> Result<HttpReply, SigninFailure> {
    http.send(request).map_err(|e| {
        SigninFailure::Unreachable(e.diagnostic(&format!(
            "the Microsoft identity platform at {}",
            config.authority
        )))
    })
}

/// S8: sign-in needs Exchange Online selected (and applied) first.
fn require_exchange_online(settings: &Settings) -> Result<(), SigninFailure> {
    if settings.is_exchange_online() {
        return Ok(());
    }
    Err(SigninFailure::Settings(Diagnostic::new(
        "provider-not-exchange-online",
        Severity::Error,
        "[Service Provider] is not [Exchange Online/Outlook.com], so there is nothing to sign in to.",
        "Select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page].",
    ).about("service-provider")))
}

fn view(flow: &DeviceFlow) -> DeviceCodeView {
    DeviceCodeView {
        user_code: flow.user_code().to_owned(),
        verification_uri: flow.verification_uri().to_owned(),
        expires_at: flow.expires_at(),
        interval: flow.interval(),
        message: flow.message().unwrap_or_default().to_owned(),
        problem: flow.problem(),
    }
}

/// S8: requests a device code and remembers the flow. A sign-in the identity platform
/// refused or could not be asked for is recorded in the history (a setting in the way is
/// the caller's to show, and is not).
pub fn start(
    s: &impl Storage,
    http: &impl Http,
    now: u64,
) -> Result<DeviceCodeView, SigninFailure> {
    let started = request_device_code(s, http, now);
    if let Err(failure @ (SigninFailure::Refused(..) | SigninFailure::Unreachable(_))) = &started {
        let event = history::Event::new(EventKind::SignIn, now, false, "Sign-in could not start.")
            .with_diagnosis(failure.diagnosis());
        history::append(s, &event);
    }
    started
}

fn request_device_code(
    s: &impl Storage,
    http: &impl Http,
    now: u64,
) -> Result<DeviceCodeView, SigninFailure> {
    let (settings, config) = settings_and_config(s, http)?;
    require_exchange_online(&settings)?;
    let reply = send(http, &config, &device_code::device_code_request(&config))?;
    let code = device_code::parse_device_code_reply(&config, reply.status, &reply.body)
        .map_err(SigninFailure::from)?;
    let flow = DeviceFlow::start(config, code, now);
    // A new sign-in replaces the last failure: its outcome is what counts now.
    s.commit(vec![
        json_write(FLOW_KEY, &flow),
        (FAILED_SIGN_IN_KEY.to_owned(), None),
    ])?;
    Ok(view(&flow))
}

/// Performs at most one token request, if one is due at `now`. Every write of the flow
/// is a compare-and-swap on the record as read, so a reset (S4), a provider change, a
/// sign-out or a new sign-in that lands meanwhile is never overwritten, and an approval
/// that arrives after one of them stores nothing.
pub fn poll(s: &impl Storage, http: &impl Http, now: u64) -> Result<PollView, SigninFailure> {
    let (Some(raw), Some(mut flow)) = read_raw_json::<DeviceFlow>(s, FLOW_KEY)? else {
        if let Some(account) = read_json::<Account>(s, ACCOUNT_KEY)? {
            return Ok(PollView::SignedIn(account));
        }
        return Err(SigninFailure::SignInRequired(Diagnostic::new(
            "sign-in-not-started",
            Severity::Error,
            "No sign-in is in progress.",
            "Click [Open Authentication Page] to start one.",
        )));
    };
    // Writes only if the flow is still the record `expected`; `false` when another
    // instance or a reset changed it.
    let swap = |expected: &[u8], writes: Vec<Write>| -> Result<bool, SigninFailure> {
        match s.commit_if(vec![storage::guard(FLOW_KEY, Some(expected))], writes) {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    };
    // The flow ends: deleted, and the failure kept for every panel (`status`) and in
    // the history in the same commit, unless another instance or a reset changed the flow
    // meanwhile (then that one recorded how it ended).
    let end = |expected: &[u8], diagnostic: Diagnostic| -> Result<PollView, SigninFailure> {
        let failure = FailedSignIn::new(&diagnostic, now);
        let event = history::Event::new(EventKind::SignIn, now, false, "Sign-in failed.")
            .with_diagnosis(&diagnostic);
        let ended = history::commit_recorded(
            s,
            vec![storage::guard(FLOW_KEY, Some(expected))],
            vec![
                (FLOW_KEY.to_owned(), None),
                json_write(FAILED_SIGN_IN_KEY, &failure),
            ],
            &event,
        );
        match ended {
            Ok(()) | Err(StoreError::Conflict) => Ok(PollView::Failed(diagnostic)),
            Err(e) => Err(e.into()),
        }
    };
    let request = match flow.poll(now) {
        PollStep::Wait { until } => return Ok(pending(&flow, until)),
        PollStep::Expired(err) => return end(&raw, err.diagnostic()),
        PollStep::Ended => {
            return end(
                &raw,
                Diagnostic::new(
                    "sign-in-ended",
                    Severity::Error,
                    "The sign-in already ended.",
                    "Click [Open Authentication Page] to start a new one.",
                ),
            );
        }
        PollStep::Send(request) => request,
    };
    // The request books the next interval: remember that before sending.
    let booked = storage::encode(&flow);
    if !swap(&raw, vec![(FLOW_KEY.to_owned(), Some(booked.clone()))])? {
        return changed_meanwhile(s);
    }
    let outcome = match http.send(&request) {
        Ok(reply) => flow.on_dated_token_reply(now, reply.date(), reply.status, &reply.body),
        Err(e) => {
            let why = e.diagnostic(&format!(
                "the Microsoft identity platform at {}",
                flow.config().authority
            ));
            flow.on_transport_error(now, &why)
        }
    };
    match outcome {
        PollOutcome::Pending { next_poll_at }
        | PollOutcome::SlowDown { next_poll_at, .. }
        | PollOutcome::Backoff { next_poll_at, .. } => {
            if !swap(&booked, vec![json_write(FLOW_KEY, &flow)])? {
                return changed_meanwhile(s);
            }
            Ok(pending(&flow, next_poll_at))
        }
        PollOutcome::Failed(err) => end(&booked, err.diagnostic()),
        PollOutcome::Approved(approved) => {
            let (tokens, account) = (&approved.tokens, &approved.account);
            let consent = consent_write(s, flow.config(), account)?;
            // Stored only if, at the commit, the provider is still Exchange Online and the
            // flow is still the one polled (S4, a provider change, a sign-out or a new
            // sign-in delete or replace it): else nothing is kept of this approval.
            let flow_guard = storage::guard(FLOW_KEY, Some(&booked));
            // The history's entry goes into the commit that stores the sign-in.
            let signed_in = history::Event::new(
                EventKind::SignIn,
                now,
                true,
                format!("Signed in as {}.", account.upn().unwrap_or("an account")),
            );
            let logged = history::Recorded::new(s, Some(signed_in));
            let refused = storage::update_settings_guarded(&logged, vec![flow_guard], |current| {
                if !current.is_exchange_online() {
                    return Ok((Some(cancelled(CancelledBy::ProviderChanged)), Vec::new()));
                }
                if s.get(FLOW_KEY)?.as_deref() != Some(&booked[..]) {
                    return Ok((Some(cancelled(CancelledBy::FlowGone)), Vec::new()));
                }
                let mut settings = current.clone();
                if let Some(address) = account.device_email_address() {
                    // S9: the signed-in account's address becomes the Device Email Address.
                    settings.device_email = address.to_owned();
                }
                let mut writes = vec![
                    json_write(GRANT_KEY, tokens),
                    json_write(ACCOUNT_KEY, account),
                    storage::settings_write(&settings),
                    (FLOW_KEY.to_owned(), None),
                    // A lease of an earlier grant must not hold up this one's refresh.
                    (REFRESH_LEASE_KEY.to_owned(), None),
                ];
                writes.extend(consent.clone()); // S10: the tenant, remembered past a sign-out
                writes.push((FAILED_SIGN_IN_KEY.to_owned(), None));
                Ok::<_, SigninFailure>((None, writes))
            })?;
            match refused {
                None => Ok(PollView::SignedIn(approved.account)),
                // The flow may still be stored (a provider change keeps it): it is over.
                Some(diagnostic) => end(&booked, diagnostic),
            }
        }
    }
}

/// What cancelled a sign-in before its approval could be stored.
enum CancelledBy {
    /// The flow record was deleted or replaced: a sign-out, a reset or a new sign-in.
    FlowGone,
    /// The Service Provider is no longer Exchange Online.
    ProviderChanged,
}

fn cancelled(by: CancelledBy) -> Diagnostic {
    let message = match by {
        CancelledBy::FlowGone => {
            "The sign-in was approved, but it had been cancelled meanwhile (the device was signed out, the sign-in was reset, or a new sign-in was started), so nothing was stored and nobody is signed in by it."
        }
        CancelledBy::ProviderChanged => {
            "The sign-in was approved, but [Service Provider] is no longer [Exchange Online/Outlook.com] (it was changed on the web panel, or an SMTP server name was typed on the control panel, meanwhile), so nothing was stored and nobody is signed in by it."
        }
    };
    Diagnostic::new(
        "sign-in-cancelled",
        Severity::Error,
        message,
        "To send through Exchange Online, select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page] and sign in again.",
    )
}

/// The flow changed between reading and writing it: another instance polled it (then it
/// is still pending), or it was cancelled.
fn changed_meanwhile(s: &impl Storage) -> Result<PollView, SigninFailure> {
    Ok(match read_json::<DeviceFlow>(s, FLOW_KEY)? {
        Some(flow) if !flow.is_ended() => pending(&flow, flow.next_poll_at()),
        _ => PollView::Failed(cancelled(CancelledBy::FlowGone)),
    })
}

/// "Call again at `at`", with why polling fails when it has for a while.
fn pending(flow: &DeviceFlow, at: u64) -> PollView {
    match flow.problem() {
        None => PollView::Pending(at),
        Some(problem) => PollView::Unreachable {
            next_poll_at: at,
            problem,
        },
    }
}

/// The device's sign-in state at `now`, with the S9 warning when the Device Email
/// Address is not the account's UPN.
pub fn status(s: &impl Storage, now: u64) -> Result<AuthState, SigninFailure> {
    let signed_in = match (
        read_json::<TokenSet>(s, GRANT_KEY)?,
        read_json::<Account>(s, ACCOUNT_KEY)?,
    ) {
        (Some(tokens), Some(account)) => {
            let settings = storage::load_settings(s)?;
            let warnings = account.warnings(&settings.device_email);
            Some(SignedIn {
                account,
                access_token_expires_at: tokens.expires_at,
                warnings,
            })
        }
        _ => None,
    };
    if let Some(flow) = read_json::<DeviceFlow>(s, FLOW_KEY)?
        && !flow.is_ended()
        && now < flow.expires_at()
    {
        return Ok(AuthState::InProgress {
            code: view(&flow),
            still_signed_in: signed_in,
        });
    }
    Ok(
        match (read_json::<FailedSignIn>(s, FAILED_SIGN_IN_KEY)?, signed_in) {
            (Some(failure), still_signed_in) => AuthState::SignInFailed {
                failure,
                still_signed_in,
            },
            (None, Some(signed_in)) => AuthState::SignedIn(signed_in),
            (None, None) => AuthState::SignedOut,
        },
    )
}

/// Forgets the account, its tokens and any sign-in in progress.
pub fn sign_out(s: &impl Storage) -> Result<(), SigninFailure> {
    Ok(s.commit(storage::grant_deletions().collect())?)
}

/// Cancels the sign-in in progress: only its flow is deleted, so the account signed in
/// before keeps sending, and a poll of the cancelled flow (another instance's, an
/// approval arriving late) finds it gone and stores nothing (see [`poll`]).
pub fn cancel(s: &impl Storage) -> Result<(), SigninFailure> {
    Ok(s.commit(vec![(FLOW_KEY.to_owned(), None)])?)
}

/// S10: the admin-consent URL, and whether this device needs it. Consent is needed once
/// per tenant (and application): a tenant the device has signed in to with a work or school
/// account never needs it again, also after a sign-out or an S4 reset, because Entra ID
/// keeps the consent and the device remembers the tenant ([`consent::ConsentRecord`]).
pub fn admin_consent(s: &impl Storage, http: &impl Http) -> Result<AdminConsent, SigninFailure> {
    let (_, config) = settings_and_config(s, http)?;
    let account = read_json::<Account>(s, ACCOUNT_KEY)?;
    let record = read_json::<consent::ConsentRecord>(s, consent::CONSENT_KEY)?.unwrap_or_default();
    let url = consent::admin_consent_url(&config);
    let (needed, explanation) = match (&account, record.covering(&config)) {
        (Some(a), _) if a.is_personal() => (
            false,
            "Not needed: the signed-in account is a personal Microsoft account (Outlook.com)."
                .to_owned(),
        ),
        (Some(_), _) => (
            false,
            "Already given for this tenant: the work or school account signed in.".to_owned(),
        ),
        (None, _) if config.tenant.eq_ignore_ascii_case("consumers") => (
            false,
            "Not needed: the tenant is set to personal Microsoft accounts (Outlook.com) only."
                .to_owned(),
        ),
        (None, Some(known)) => (
            false,
            format!(
                "Already given: this device has signed in to tenant {} before, and consent is needed only once per tenant. Another tenant needs its own consent.",
                known.tenant_id
            ),
        ),
        (None, None) => (
            true,
            "Needed once per tenant before a work or school (Exchange Online) account can sign in: a Global Administrator opens the URL and clicks [Accept]. Not needed for Outlook.com.".to_owned(),
        ),
    };
    Ok(AdminConsent {
        url,
        needed,
        explanation,
    })
}

/// S10: the write that remembers the tenant `account` signed in to with `config` (none
/// when it is already known or a personal account), for the commit that stores the sign-in.
pub fn consent_write(
    s: &impl Storage,
    config: &SigninConfig,
    account: &Account,
) -> Result<Option<Write>, SigninFailure> {
    let mut record =
        read_json::<consent::ConsentRecord>(s, consent::CONSENT_KEY)?.unwrap_or_default();
    Ok(record
        .remember(config, account)
        .then(|| json_write(consent::CONSENT_KEY, &record)))
}

/// How long one instance may hold the refresh lease: longer than one token request can
/// take (connect and read timeouts), short enough that a crashed holder delays the others
/// little. Only a send whose access token has already expired waits for it.
pub const REFRESH_LEASE_SECONDS: u64 = 120;

/// When a keep-alive refresh could not be done now, how long until the next try (seconds).
const KEEP_ALIVE_RETRY: u64 = 3600;

/// How often a refresh re-reads the grant after a compare-and-swap found it changed.
const MAX_REFRESH_ATTEMPTS: usize = 8;

/// The refresh lease record: the instance that wrote it may spend the refresh token
/// until `until` (Unix seconds).
#[derive(miniserde::Serialize, miniserde::Deserialize)]
pub(crate) struct RefreshLease {
    pub(crate) version: storage::RecordVersion<{ storage::records::REFRESH_LEASE }>,
    until: u64,
}

/// Why no token is available for a send, and when trying again may help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    pub failure: SigninFailure,
    /// Seconds after which another attempt may succeed (another instance is refreshing).
    pub retry_after: Option<u32>,
}

impl From<SigninFailure> for TokenError {
    fn from(failure: SigninFailure) -> Self {
        Self {
            failure,
            retry_after: None,
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(err: StoreError) -> Self {
        SigninFailure::from(err).into()
    }
}

/// Nobody is signed in: a send's diagnosis (see [`crate::mailer::check_preconditions`]).
pub(crate) fn sign_in_required() -> Diagnostic {
    Diagnostic::new(
        "sign-in-required",
        Severity::Error,
        "No Exchange Online/Outlook.com account is signed in, so the device has no token to send with.",
        "Click [Open Authentication Page] (Properties > Connectivity > Protocols > SMTP Server > General) and sign in with the account that sends the email.",
    )
}

/// The token set and account to send with, refreshed first when the access token expires
/// within 10 minutes (see [`renewed_grant`] for how concurrent instances share that).
pub fn tokens_for_send(
    s: &impl Storage,
    http: &impl Http,
    now: u64,
) -> Result<(TokenSet, Account), TokenError> {
    renewed_grant(s, http, now, Renewal::Send)
}

/// Keeps an idle device signed in: refreshes the grant when it was obtained
/// [`token::KEEP_ALIVE_AFTER`] ago or more (or when that is unknown), since a refresh token
/// unused for 90 days expires (AADSTS700082). Returns when to call again (Unix seconds).
pub fn keep_alive(s: &impl Storage, http: &impl Http, now: u64) -> Result<u64, SigninFailure> {
    match renewed_grant(s, http, now, Renewal::KeepAlive) {
        // Still due: another instance is refreshing it, or the platform could not be
        // reached. Weeks remain before the 90 days: look again in an hour.
        Ok((tokens, _)) if tokens.keep_alive_due(now) => Ok(now.saturating_add(KEEP_ALIVE_RETRY)),
        Ok((tokens, _)) => Ok(tokens.keep_alive_at(now)),
        Err(TokenError {
            retry_after: Some(after),
            ..
        }) => Ok(now.saturating_add(u64::from(after))),
        Err(err) => Err(err.failure),
    }
}

/// The stored grant, refreshed first when [`Renewal::is_due`] says so for `during`.
/// Refreshing is serialised through the store's compare-and-swap, so that an instance
/// never spends a refresh token another has already rotated, and no race ever signs the
/// device out:
///
/// - one instance takes the refresh lease (a compare-and-swap on the grant and the lease);
///   the others keep sending with the current access token while it is valid, or are
///   asked to retry shortly when it has expired;
/// - the rotated grant is committed only if the grant is still the one whose refresh token
///   was spent (else it was replaced: a sign-out, a new sign-in or another refresh), and
///   before the new access token is used;
/// - a refusal for good (`invalid_grant`: AADSTS700082, 50173, 70000) deletes the grant
///   only if it is unchanged and the lease still this instance's; if another instance
///   rotated it meanwhile, the newer grant is used instead.
///
/// A refresh that fails is recorded in the history ([`refresh_failed`]): a refusal for
/// good in the commit that signs out, any other failure once the lease is given back.
fn renewed_grant(
    s: &impl Storage,
    http: &impl Http,
    now: u64,
    during: Renewal,
) -> Result<(TokenSet, Account), TokenError> {
    for _ in 0..MAX_REFRESH_ATTEMPTS {
        let (raw_grant, tokens) = read_raw_json::<TokenSet>(s, GRANT_KEY)?;
        let (Some(raw_grant), Some(tokens), Some(account)) =
            (raw_grant, tokens, read_json::<Account>(s, ACCOUNT_KEY)?)
        else {
            return Err(SigninFailure::SignInRequired(sign_in_required()).into());
        };
        if !during.is_due(&tokens, now) {
            return Ok((tokens, account));
        }
        let raw_lease = s.get(REFRESH_LEASE_KEY)?;
        if let Some(until) = live_lease(raw_lease.as_deref(), now) {
            // Another instance is refreshing this grant right now.
            if !tokens.is_expired(now) {
                return Ok((tokens, account));
            }
            return Err(refresh_in_progress(until - now));
        }
        let (_, config) = settings_and_config(s, http)?;
        let lease = storage::encode(&RefreshLease {
            version: Default::default(),
            until: now.saturating_add(REFRESH_LEASE_SECONDS),
        });
        let take = s.commit_if(
            vec![
                storage::guard(GRANT_KEY, Some(&raw_grant)),
                storage::guard(REFRESH_LEASE_KEY, raw_lease.as_deref()),
            ],
            vec![(REFRESH_LEASE_KEY.to_owned(), Some(lease.clone()))],
        );
        match take {
            Ok(()) => {}
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
        let refreshed = match send(http, &config, &token::refresh_request(&config, &tokens)) {
            Err(network) => Err(RefreshFailure::Network(network.into_diagnosis())),
            Ok(reply) => {
                token::parse_refresh_reply(&config, &tokens, now, reply.status, &reply.body)
                    .map_err(|err| RefreshFailure::Refused((err.kind, err.diagnostic())))
            }
        };
        match refreshed {
            Ok(fresh) => {
                // Persisted before the new access token is used; never over a grant that
                // was replaced or deleted meanwhile.
                let commit = s.commit_if(
                    vec![storage::guard(GRANT_KEY, Some(&raw_grant))],
                    vec![
                        json_write(GRANT_KEY, &fresh),
                        (REFRESH_LEASE_KEY.to_owned(), None),
                    ],
                );
                match commit {
                    Ok(()) => return Ok((fresh, account)),
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(RefreshFailure::Refused((SigninErrorKind::SignInAgain, diagnostic))) => {
                let sign_out = history::commit_recorded(
                    s,
                    vec![
                        storage::guard(GRANT_KEY, Some(&raw_grant)),
                        storage::guard(REFRESH_LEASE_KEY, Some(&lease)),
                    ],
                    storage::grant_deletions().collect(),
                    &refresh_failed(now, during, &diagnostic, RefreshLeft::SignedOut),
                );
                match sign_out {
                    Ok(()) => {
                        return Err(SigninFailure::Refused(
                            SigninErrorKind::SignInAgain,
                            diagnostic,
                        )
                        .into());
                    }
                    // Another instance rotated the grant (or took over the lease): the
                    // refusal was about a token that is no longer ours to judge.
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(failure) => {
                // Give the lease back (unless another instance has taken it over).
                let _ = s.commit_if(
                    vec![storage::guard(REFRESH_LEASE_KEY, Some(&lease))],
                    vec![(REFRESH_LEASE_KEY.to_owned(), None)],
                );
                let failure = match failure {
                    RefreshFailure::Network(d) => SigninFailure::Unreachable(d),
                    RefreshFailure::Refused((SigninErrorKind::Unavailable, d)) => {
                        SigninFailure::Unreachable(d)
                    }
                    RefreshFailure::Refused((kind, d)) => SigninFailure::Refused(kind, d),
                };
                // An unreachable or unavailable platform leaves the current token usable
                // while it lasts: send with it and refresh next time.
                let usable =
                    matches!(failure, SigninFailure::Unreachable(_)) && !tokens.is_expired(now);
                let left = if usable {
                    RefreshLeft::TokenStillValid
                } else {
                    RefreshLeft::Failed
                };
                history::append(s, &refresh_failed(now, during, failure.diagnosis(), left));
                if usable {
                    return Ok((tokens, account));
                }
                return Err(failure.into());
            }
        }
    }
    Err(StoreError::Conflict.into())
}

/// What a grant is renewed for.
#[derive(Clone, Copy)]
enum Renewal {
    Send,
    KeepAlive,
}

impl Renewal {
    /// Whether `tokens` must be refreshed first: before a send when the access token
    /// expires within 10 minutes; to keep the grant alive when it was obtained long ago.
    fn is_due(self, tokens: &TokenSet, now: u64) -> bool {
        match self {
            Self::Send => tokens.refresh_due(now),
            Self::KeepAlive => tokens.keep_alive_due(now),
        }
    }
}

/// Where a failed refresh left the device.
enum RefreshLeft {
    /// The grant was refused for good and deleted.
    SignedOut,
    /// The current access token still works, until it expires.
    TokenStillValid,
    /// The refresh failed, and the call with it.
    Failed,
}

/// The history entry of a refresh that gave no new grant.
fn refresh_failed(
    now: u64,
    during: Renewal,
    diagnosis: &Diagnostic,
    left: RefreshLeft,
) -> history::Event {
    let what = match during {
        Renewal::Send => "The sign-in could not be renewed for a send",
        Renewal::KeepAlive => "The weekly keep-alive could not renew the sign-in",
    };
    let summary = match left {
        RefreshLeft::SignedOut => {
            format!("{what}: Microsoft refused it for good, so the device was signed out.")
        }
        RefreshLeft::TokenStillValid => {
            format!("{what}; the current access token is used while it lasts.")
        }
        RefreshLeft::Failed => format!("{what}."),
    };
    history::Event::new(EventKind::RefreshFailed, now, false, summary).with_diagnosis(diagnosis)
}

/// Why a refresh request gave no new grant.
enum RefreshFailure {
    /// No reply: the network failed.
    Network(Diagnostic),
    /// The platform answered with a refusal.
    Refused((SigninErrorKind, Diagnostic)),
}

/// The end of a lease another instance holds at `now`, if one does. A lease reaching
/// further than one lease from now was written under a clock that has since jumped back:
/// it is ignored.
fn live_lease(raw: Option<&[u8]>, now: u64) -> Option<u64> {
    // An unreadable lease (or one of a newer layout) is no lease: taking it is a
    // compare-and-swap on these very bytes.
    let lease: RefreshLease = storage::decode(REFRESH_LEASE_KEY, raw?).ok()?;
    (lease.until > now && lease.until <= now.saturating_add(REFRESH_LEASE_SECONDS))
        .then_some(lease.until)
}

fn refresh_in_progress(wait: u64) -> TokenError {
    TokenError {
        failure: SigninFailure::Unreachable(Diagnostic::new(
            "sign-in-refresh-in-progress",
            Severity::Warning,
            "The access token has expired and another send is renewing it right now.",
            "Nothing to do: the device sends again in a few seconds.",
        )),
        retry_after: Some(u32::try_from(wait.clamp(1, 5)).unwrap_or(5)),
    }
}

/// The stored account, if one is signed in.
pub fn account(s: &impl Storage) -> Result<Option<Account>, SigninFailure> {
    read_json(s, ACCOUNT_KEY)
}

#[cfg(test)]
mod race_tests {
    //! Refresh races between instances, played out on one store: what another instance
    //! does while this one's refresh request is in flight is done by the scripted network.

    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::capabilities::NetFailure;
    use crate::signin::test_support::{error_reply, token_reply, work_id_token};
    use crate::signin::{HttpRequest, Secret};
    use crate::storage::MemoryStorage;

    const NOW: u64 = 1_800_000_000;

    /// What the scripted network answers to a request.
    type Answer<'a> = Box<dyn FnMut(&HttpRequest) -> Result<HttpReply, NetFailure> + 'a>;

    /// Answers each request with `answer`, counting them.
    struct Scripted<'a> {
        answer: RefCell<Answer<'a>>,
        requests: Cell<usize>,
    }

    impl Http for Scripted<'_> {
        fn send(&self, request: &HttpRequest) -> Result<HttpReply, NetFailure> {
            self.requests.set(self.requests.get() + 1);
            (self.answer.borrow_mut())(request)
        }
        fn authority(&self) -> String {
            signin::DEFAULT_AUTHORITY.into()
        }
    }

    fn scripted<'a>(
        answer: impl FnMut(&HttpRequest) -> Result<HttpReply, NetFailure> + 'a,
    ) -> Scripted<'a> {
        Scripted {
            answer: RefCell::new(Box::new(answer)),
            requests: Cell::new(0),
        }
    }

    fn reply(status: u16, body: Vec<u8>) -> Result<HttpReply, NetFailure> {
        Ok(HttpReply {
            status,
            headers: Vec::new(),
            body,
        })
    }

    fn tokens(access: &str, refresh: &str, expires_at: u64) -> TokenSet {
        TokenSet {
            version: Default::default(),
            token_type: "Bearer".into(),
            scope: signin::SCOPE.into(),
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            id_token: None,
            expires_at,
            ext_expires_at: None,
            obtained_at: Some(expires_at - 3600),
        }
    }

    /// A signed-in store whose access token expires at `expires_at`.
    fn signed_in(expires_at: u64) -> MemoryStorage {
        let s = MemoryStorage::default();
        let account = Account::from_id_token(&work_id_token()).unwrap();
        s.commit(vec![
            json_write(GRANT_KEY, &tokens("at-0", "rt-0", expires_at)),
            json_write(ACCOUNT_KEY, &account),
        ])
        .unwrap();
        s
    }

    fn stored(s: &MemoryStorage) -> Option<TokenSet> {
        read_json(s, GRANT_KEY).unwrap()
    }

    fn invalid_grant() -> Result<HttpReply, NetFailure> {
        reply(
            400,
            error_reply(
                "invalid_grant",
                70000,
                "The refresh token has already been redeemed.",
            ),
        )
    }

    #[test]
    fn invalid_grant_for_a_grant_another_instance_rotated_meanwhile_uses_the_newer_grant() {
        let s = signed_in(NOW + 300);
        // While this refresh is in flight, another instance commits the rotated grant
        // (its lease had run out); then the platform refuses the spent token.
        let http = scripted(|_| {
            s.commit(vec![json_write(
                GRANT_KEY,
                &tokens("at-1", "rt-1", NOW + 3900),
            )])
            .unwrap();
            invalid_grant()
        });
        let (used, _) = tokens_for_send(&s, &http, NOW).expect("not signed out");
        assert_eq!(used.refresh_token.expose(), "rt-1");
        assert_eq!(stored(&s).unwrap().refresh_token.expose(), "rt-1");
        assert_eq!(http.requests.get(), 1, "the newer grant needs no refresh");
    }

    #[test]
    fn invalid_grant_for_an_unchanged_grant_signs_out() {
        let s = signed_in(NOW + 300);
        let http = scripted(|_| invalid_grant());
        let err = tokens_for_send(&s, &http, NOW).unwrap_err();
        assert_eq!(err.retry_after, None);
        assert_eq!(stored(&s), None);
        assert_eq!(s.get(REFRESH_LEASE_KEY).unwrap(), None);
    }

    #[test]
    fn a_refreshed_grant_is_not_stored_over_a_sign_out_that_landed_meanwhile() {
        let s = signed_in(NOW + 300);
        let http = scripted(|_| {
            s.commit(storage::grant_deletions().collect()).unwrap();
            reply(200, token_reply("at-1", "rt-1", 3600))
        });
        let err = tokens_for_send(&s, &http, NOW).unwrap_err();
        assert!(
            matches!(err.failure, SigninFailure::SignInRequired(_)),
            "{err:?}"
        );
        assert_eq!(err.failure.diagnosis().code, "sign-in-required");
        assert_eq!(stored(&s), None);
    }

    #[test]
    fn while_another_instance_holds_the_lease_nobody_else_spends_the_refresh_token() {
        let s = signed_in(NOW + 300);
        let lease = storage::encode(&RefreshLease {
            version: Default::default(),
            until: NOW + 350,
        });
        s.commit(vec![(REFRESH_LEASE_KEY.into(), Some(lease))])
            .unwrap();
        let http = scripted(|_| panic!("no request while another instance refreshes"));
        // The access token is still valid: send with it.
        let (used, _) = tokens_for_send(&s, &http, NOW + 250).unwrap();
        assert_eq!(used.access_token.expose(), "at-0");
        // Expired: try again shortly, never refresh alongside the holder.
        let err = tokens_for_send(&s, &http, NOW + 301).unwrap_err();
        assert_eq!(err.failure.diagnosis().code, "sign-in-refresh-in-progress");
        assert!(matches!(err.retry_after, Some(1..=5)));
        // A lapsed lease (its holder crashed) is taken over.
        let http = scripted(|_| reply(200, token_reply("at-1", "rt-1", 3600)));
        let (used, _) = tokens_for_send(&s, &http, NOW + 350).unwrap();
        assert_eq!(used.refresh_token.expose(), "rt-1");
        assert_eq!(
            s.get(REFRESH_LEASE_KEY).unwrap(),
            None,
            "the lease is given back"
        );
    }

    #[test]
    fn a_network_failure_gives_the_lease_back_and_sends_with_the_valid_token() {
        let s = signed_in(NOW + 300);
        let http = scripted(|_| Err(NetFailure::Timeout));
        let (used, _) = tokens_for_send(&s, &http, NOW).unwrap();
        assert_eq!(used.access_token.expose(), "at-0");
        assert_eq!(s.get(REFRESH_LEASE_KEY).unwrap(), None);
        assert_eq!(stored(&s).unwrap().refresh_token.expose(), "rt-0");
    }

    #[test]
    fn keep_alive_refreshes_a_week_old_grant_and_says_when_to_come_back() {
        let s = signed_in(NOW + 3600);
        let obtained = NOW;
        let http = scripted(|_| reply(200, token_reply("at-1", "rt-1", 3600)));
        let later = obtained + token::KEEP_ALIVE_AFTER - 1;
        assert_eq!(
            keep_alive(&s, &http, later).unwrap(),
            obtained + token::KEEP_ALIVE_AFTER
        );
        assert_eq!(http.requests.get(), 0);
        let due = obtained + token::KEEP_ALIVE_AFTER;
        assert_eq!(
            keep_alive(&s, &http, due).unwrap(),
            due + token::KEEP_ALIVE_AFTER
        );
        assert_eq!(http.requests.get(), 1);
        assert_eq!(stored(&s).unwrap().obtained_at, Some(due));
        // Signed out: nothing to keep alive.
        sign_out(&s).unwrap();
        assert_eq!(
            keep_alive(&s, &http, due).unwrap_err().diagnosis().code,
            "sign-in-required"
        );
    }
}
