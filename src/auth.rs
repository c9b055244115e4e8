//! Sign-in as the panels drive it: [Open Authentication Page] (S8), the account it yields
//! becoming the Device Email Address (S9), admin consent (S10), and keeping a valid
//! access token for sends. State lives in the store between calls: the flow in progress,
//! the token set and the account, each committed atomically with what depends on it.

use crate::capabilities::{Http, HttpReply};
use crate::diagnose::{Diagnostic, Severity};
use crate::settings::Settings;
use crate::signin::{
    self, Account, DeviceFlow, FLOW_KEY, PollOutcome, PollStep, SigninConfig, SigninErrorKind,
    TokenSet, consent, device_code, token,
};
use crate::storage::{self, ACCOUNT_KEY, GRANT_KEY, Storage, Write};

/// A device code as the panels show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCodeView {
    pub user_code: String,
    pub verification_uri: String,
    pub expires_at: u64,
    pub interval: u64,
    pub message: String,
}

/// What one poll found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollView {
    Pending(u64),
    SignedIn(Account),
    Failed(Diagnostic),
}

/// Where the device stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthState {
    SignedOut,
    InProgress(DeviceCodeView),
    SignedIn {
        account: Account,
        access_token_expires_at: u64,
        warnings: Vec<Diagnostic>,
    },
}

/// The admin-consent step (S10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConsent {
    pub url: String,
    pub needed: bool,
    pub explanation: String,
}

fn read_json<T: serde::de::DeserializeOwned>(
    s: &impl Storage,
    key: &str,
) -> Result<Option<T>, Diagnostic> {
    match s.get(key).map_err(Diagnostic::from)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Diagnostic::from(storage::StoreError::Corrupt(format!("{key}: {e}")))),
    }
}

fn json_write<T: serde::Serialize>(key: &str, value: &T) -> Write {
    (
        key.to_owned(),
        Some(serde_json::to_vec(value).unwrap_or_default()),
    )
}

fn settings_and_config(
    s: &impl Storage,
    http: &impl Http,
) -> Result<(Settings, SigninConfig), Diagnostic> {
    let settings = storage::load_settings(s).map_err(Diagnostic::from)?;
    let mut config = SigninConfig::from_settings(&settings, &http.authority());
    // The host's --tenant / --client-id win for this invocation; checked like the settings.
    let overrides = http.overrides();
    let refused = |e: crate::error::PanelError| {
        Diagnostic::new(
            e.code,
            Severity::Error,
            format!("The host's override is invalid: {}", e.message),
            e.remedy,
        )
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
) -> Result<HttpReply, Diagnostic> {
    http.send(request).map_err(|e| {
        e.diagnostic(&format!(
            "the Microsoft identity platform at {}",
            config.authority
        ))
    })
}

/// S8: sign-in needs Exchange Online selected (and applied) first.
fn require_exchange_online(settings: &Settings) -> Result<(), Diagnostic> {
    if settings.is_exchange_online() {
        return Ok(());
    }
    Err(Diagnostic::new(
        "provider-not-exchange-online",
        Severity::Error,
        "[Service Provider] is not [Exchange Online/Outlook.com], so there is nothing to sign in to.",
        "Select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page].",
    ))
}

fn view(flow: &DeviceFlow) -> DeviceCodeView {
    DeviceCodeView {
        user_code: flow.user_code().to_owned(),
        verification_uri: flow.verification_uri().to_owned(),
        expires_at: flow.expires_at(),
        interval: flow.interval(),
        message: flow.message().unwrap_or_default().to_owned(),
    }
}

/// S8: requests a device code and remembers the flow.
pub fn start(s: &impl Storage, http: &impl Http, now: u64) -> Result<DeviceCodeView, Diagnostic> {
    let (settings, config) = settings_and_config(s, http)?;
    require_exchange_online(&settings)?;
    let reply = send(http, &config, &device_code::device_code_request(&config))?;
    let code = device_code::parse_device_code_reply(&config, reply.status, &reply.body)
        .map_err(|e| e.diagnostic())?;
    let flow = DeviceFlow::start(config, code, now);
    s.commit(vec![json_write(FLOW_KEY, &flow)])
        .map_err(Diagnostic::from)?;
    Ok(view(&flow))
}

/// Performs at most one token request, if one is due at `now`.
pub fn poll(s: &impl Storage, http: &impl Http, now: u64) -> Result<PollView, Diagnostic> {
    let Some(mut flow) = read_json::<DeviceFlow>(s, FLOW_KEY)? else {
        if let Some(account) = read_json::<Account>(s, ACCOUNT_KEY)? {
            return Ok(PollView::SignedIn(account));
        }
        return Err(Diagnostic::new(
            "sign-in-not-started",
            Severity::Error,
            "No sign-in is in progress.",
            "Click [Open Authentication Page] to start one.",
        ));
    };
    let end = |diagnostic: Diagnostic| -> Result<PollView, Diagnostic> {
        s.commit(vec![(FLOW_KEY.to_owned(), None)])
            .map_err(Diagnostic::from)?;
        Ok(PollView::Failed(diagnostic))
    };
    let request = match flow.poll(now) {
        PollStep::Wait { until } => return Ok(PollView::Pending(until)),
        PollStep::Expired(err) => return end(err.diagnostic()),
        PollStep::Ended => {
            return end(Diagnostic::new(
                "sign-in-ended",
                Severity::Error,
                "The sign-in already ended.",
                "Click [Open Authentication Page] to start a new one.",
            ));
        }
        PollStep::Send(request) => request,
    };
    // The request books the next interval: remember that before sending.
    s.commit(vec![json_write(FLOW_KEY, &flow)])
        .map_err(Diagnostic::from)?;
    let outcome = match http.send(&request) {
        Ok(reply) => flow.on_token_reply(now, reply.status, &reply.body),
        Err(_) => flow.on_transport_error(now),
    };
    match outcome {
        PollOutcome::Pending { next_poll_at }
        | PollOutcome::SlowDown { next_poll_at, .. }
        | PollOutcome::Backoff { next_poll_at, .. } => {
            s.commit(vec![json_write(FLOW_KEY, &flow)])
                .map_err(Diagnostic::from)?;
            Ok(PollView::Pending(next_poll_at))
        }
        PollOutcome::Failed(err) => end(err.diagnostic()),
        PollOutcome::Approved(approved) => {
            let (tokens, account) = (&approved.tokens, &approved.account);
            storage::update_settings(s, |current| {
                let mut settings = current.clone();
                if let Some(address) = account.device_email_address() {
                    // S9: the signed-in account's address becomes the Device Email Address.
                    settings.device_email = address.to_owned();
                }
                let writes = vec![
                    json_write(GRANT_KEY, tokens),
                    json_write(ACCOUNT_KEY, account),
                    storage::settings_write(&settings),
                    (FLOW_KEY.to_owned(), None),
                ];
                Ok::<_, Diagnostic>(((), writes))
            })?;
            Ok(PollView::SignedIn(approved.account))
        }
    }
}

/// The device's sign-in state at `now`, with the S9 warning when the Device Email
/// Address is not the account's UPN.
pub fn status(s: &impl Storage, now: u64) -> Result<AuthState, Diagnostic> {
    if let Some(flow) = read_json::<DeviceFlow>(s, FLOW_KEY)?
        && !flow.is_ended()
        && now < flow.expires_at()
    {
        return Ok(AuthState::InProgress(view(&flow)));
    }
    let (Some(tokens), Some(account)) = (
        read_json::<TokenSet>(s, GRANT_KEY)?,
        read_json::<Account>(s, ACCOUNT_KEY)?,
    ) else {
        return Ok(AuthState::SignedOut);
    };
    let settings = storage::load_settings(s).map_err(Diagnostic::from)?;
    let warnings = account
        .upn_warning(&settings.device_email)
        .into_iter()
        .collect();
    Ok(AuthState::SignedIn {
        account,
        access_token_expires_at: tokens.expires_at,
        warnings,
    })
}

/// Forgets the account, its tokens and any sign-in in progress.
pub fn sign_out(s: &impl Storage) -> Result<(), Diagnostic> {
    s.commit(storage::grant_deletions().collect())
        .map_err(Diagnostic::from)
}

/// S10: the admin-consent URL, and whether this device needs it.
pub fn admin_consent(s: &impl Storage, http: &impl Http) -> Result<AdminConsent, Diagnostic> {
    let (_, config) = settings_and_config(s, http)?;
    let account = read_json::<Account>(s, ACCOUNT_KEY)?;
    let url = consent::admin_consent_url(&config);
    let (needed, explanation) = match &account {
        Some(a) if a.is_personal() => (
            false,
            "Not needed: the signed-in account is a personal Microsoft account (Outlook.com).",
        ),
        Some(_) => (
            false,
            "Already given for this tenant: the work or school account signed in.",
        ),
        None if config.tenant.eq_ignore_ascii_case("consumers") => (
            false,
            "Not needed: the tenant is set to personal Microsoft accounts (Outlook.com) only.",
        ),
        None => (
            true,
            "Needed once per tenant before a work or school (Exchange Online) account can sign in: a Global Administrator opens the URL and clicks [Accept]. Not needed for Outlook.com.",
        ),
    };
    Ok(AdminConsent {
        url,
        needed,
        explanation: explanation.to_owned(),
    })
}

/// The token set and account to send with, refreshed first when the access token expires
/// within 10 minutes. The rotated refresh token is committed before the new access token
/// is used. A refresh the platform refuses for good (AADSTS700082, 50173) signs the device
/// out, with the AADSTS-specific remedy.
pub fn tokens_for_send(
    s: &impl Storage,
    http: &impl Http,
    now: u64,
) -> Result<(TokenSet, Account), Diagnostic> {
    let (Some(tokens), Some(account)) = (
        read_json::<TokenSet>(s, GRANT_KEY)?,
        read_json::<Account>(s, ACCOUNT_KEY)?,
    ) else {
        return Err(Diagnostic::new(
            "sign-in-required",
            Severity::Error,
            "No Exchange Online/Outlook.com account is signed in, so the device has no token to send with.",
            "Click [Open Authentication Page] (Properties > Connectivity > Protocols > SMTP Server > General) and sign in with the account that sends the email.",
        ));
    };
    if !tokens.refresh_due(now) {
        return Ok((tokens, account));
    }
    let (_, config) = settings_and_config(s, http)?;
    let reply = match send(http, &config, &token::refresh_request(&config, &tokens)) {
        Ok(reply) => reply,
        // The current token still works for a while: send with it and refresh next time.
        Err(_) if !tokens.is_expired(now) => return Ok((tokens, account)),
        Err(diagnostic) => return Err(diagnostic),
    };
    match token::parse_refresh_reply(&config, &tokens, now, reply.status, &reply.body) {
        Ok(fresh) => {
            s.commit(vec![json_write(GRANT_KEY, &fresh)])
                .map_err(Diagnostic::from)?;
            Ok((fresh, account))
        }
        // As with a network failure: an unavailable platform leaves the current token usable.
        Err(err) if err.kind == SigninErrorKind::Unavailable && !tokens.is_expired(now) => {
            Ok((tokens, account))
        }
        Err(err) => {
            if err.kind == SigninErrorKind::SignInAgain {
                s.commit(storage::grant_deletions().collect())
                    .map_err(Diagnostic::from)?;
            }
            Err(err.diagnostic())
        }
    }
}

/// The stored account, if one is signed in.
pub fn account(s: &impl Storage) -> Result<Option<Account>, Diagnostic> {
    read_json(s, ACCOUNT_KEY)
}
