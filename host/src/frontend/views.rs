//! Serde views of the WIT records the front ends print: one view per record, field for
//! field, in kebab-case, so `mfp-host … --json` and the JSON API (web/API.md) show the same
//! shapes and the browser preview can map the records the same way. Enums become their
//! WIT case names (`exchange-online`, `warning`).

use serde::Serialize;

use crate::frontend::{Failure, Surface};

use crate::bindings::mailer::{Retry, SendReport};
use crate::bindings::panel::{Event, EventKind};
use crate::bindings::signin::{
    Account, AuthState, ConsentStep, DeviceCode, FailedSignIn, PendingSignIn, SignedInState,
};
use crate::bindings::types::{
    ApplyOutcome, ControlPanelScreen, Diagnostic, Fix, LoginCredentials, Origin, ServiceProvider,
    SettingChange, SettingEntry, Severity,
};

/// The WIT case name of a severity.
pub fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

/// The WIT case name of a provider (also the `service-provider` setting's value).
pub fn provider_name(provider: ServiceProvider) -> &'static str {
    match provider {
        ServiceProvider::NotSelected => "not-selected",
        ServiceProvider::ExchangeOnline => "exchange-online",
    }
}

/// The WIT case name of a credentials choice (also the `login-credentials` setting's value).
pub fn credentials_name(credentials: LoginCredentials) -> &'static str {
    match credentials {
        LoginCredentials::System => "system",
        LoginCredentials::RemotelyAuthenticatedUser => "remotely-authenticated-user",
    }
}

/// `diagnostic`: `{code, severity, message, remedy, field, fix}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DiagnosticView<'a> {
    pub code: &'a str,
    pub severity: &'static str,
    pub message: &'a str,
    pub remedy: &'a str,
    pub field: Option<&'a str>,
    pub fix: Option<FixView<'a>>,
}

impl<'a> DiagnosticView<'a> {
    /// The view with the remedy in `surface`'s words.
    pub fn new(d: &'a Diagnostic, surface: Surface) -> Self {
        Self {
            code: &d.code,
            severity: severity_name(d.severity),
            message: &d.message,
            remedy: surface.words(&d.remedy),
            field: d.field.as_deref(),
            fix: d.fix.as_ref().map(FixView::from),
        }
    }
}

/// A failure the host itself found (bad input, the device) in the shape of a diagnosis:
/// an error, without a fix, so `--json` prints one shape whoever diagnosed it.
impl<'a> DiagnosticView<'a> {
    /// The view of a failure, with the remedy in `surface`'s words.
    pub fn of_failure(f: &'a Failure, surface: Surface) -> Self {
        Self {
            code: &f.code,
            severity: severity_name(Severity::Error),
            message: &f.message,
            remedy: surface.words(&f.remedy),
            field: f.field.as_deref(),
            fix: None,
        }
    }
}

/// `fix`: `{label, changes: {key: value, …}}`, the changes as the flat object an Apply
/// takes (`POST /api/v1/smtp`'s `changes`, `settings set --json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FixView<'a> {
    pub label: &'a str,
    pub changes: serde_json::Map<String, serde_json::Value>,
}

impl<'a> From<&'a Fix> for FixView<'a> {
    fn from(f: &'a Fix) -> Self {
        Self {
            label: &f.label,
            changes: f
                .changes
                .iter()
                .map(|SettingChange { key, value }| (key.clone(), value.clone().into()))
                .collect(),
        }
    }
}

/// A list of diagnostics, as views with remedies in `surface`'s words.
pub fn diagnostics(list: &[Diagnostic], surface: Surface) -> Vec<DiagnosticView<'_>> {
    list.iter()
        .map(|d| DiagnosticView::new(d, surface))
        .collect()
}

/// `setting-entry`: `{key, value, locked}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SettingView<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub locked: Option<&'a str>,
}

impl<'a> From<&'a SettingEntry> for SettingView<'a> {
    fn from(e: &'a SettingEntry) -> Self {
        Self {
            key: &e.key,
            value: &e.value,
            locked: e.locked.as_deref(),
        }
    }
}

/// A list of settings, as views.
pub fn settings(list: &[SettingEntry]) -> Vec<SettingView<'_>> {
    list.iter().map(SettingView::from).collect()
}

/// `apply-outcome`: `{settings, notices, diagnostics}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ApplyOutcomeView<'a> {
    pub settings: Vec<SettingView<'a>>,
    pub notices: Vec<DiagnosticView<'a>>,
    pub diagnostics: Vec<DiagnosticView<'a>>,
}

impl<'a> ApplyOutcomeView<'a> {
    pub fn new(o: &'a ApplyOutcome, surface: Surface) -> Self {
        Self {
            settings: settings(&o.settings),
            notices: diagnostics(&o.notices, surface),
            diagnostics: diagnostics(&o.diagnostics, surface),
        }
    }
}

/// `control-panel-screen`. Ports are shown as text, as the setting values are.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ControlPanelView<'a> {
    pub service_provider: &'static str,
    pub smtp_server: &'a str,
    pub send_port: String,
    pub receive_port: String,
    pub login_credentials: &'static str,
    pub smtp_edits_enabled: bool,
    pub notice: Option<&'a str>,
}

impl<'a> From<&'a ControlPanelScreen> for ControlPanelView<'a> {
    fn from(v: &'a ControlPanelScreen) -> Self {
        Self {
            service_provider: provider_name(v.service_provider),
            smtp_server: &v.smtp_server,
            send_port: v.send_port.to_string(),
            receive_port: v.receive_port.to_string(),
            login_credentials: credentials_name(v.login_credentials),
            smtp_edits_enabled: v.smtp_edits_enabled,
            notice: v.notice.as_deref(),
        }
    }
}

/// `account`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccountView<'a> {
    pub username: &'a str,
    pub upn: &'a str,
    pub email: Option<&'a str>,
    pub tenant_id: &'a str,
    pub personal: bool,
}

impl<'a> From<&'a Account> for AccountView<'a> {
    fn from(a: &'a Account) -> Self {
        Self {
            username: &a.username,
            upn: &a.upn,
            email: a.email.as_deref(),
            tenant_id: &a.tenant_id,
            personal: a.personal,
        }
    }
}

/// `device-code`: what the administrator types, and where.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceCodeView<'a> {
    pub user_code: &'a str,
    pub verification_uri: &'a str,
    pub expires_at: u64,
    pub interval: u32,
    pub message: &'a str,
    pub problem: Option<DiagnosticView<'a>>,
}

impl<'a> DeviceCodeView<'a> {
    pub fn new(c: &'a DeviceCode, surface: Surface) -> Self {
        Self {
            user_code: &c.user_code,
            verification_uri: &c.verification_uri,
            expires_at: c.expires_at,
            interval: c.interval,
            message: &c.message,
            problem: c.problem.as_ref().map(|d| DiagnosticView::new(d, surface)),
        }
    }
}

/// `signed-in-state`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SignedInView<'a> {
    pub account: AccountView<'a>,
    pub access_token_expires_at: u64,
    pub warnings: Vec<DiagnosticView<'a>>,
}

impl<'a> SignedInView<'a> {
    pub fn new(s: &'a SignedInState, surface: Surface) -> Self {
        Self {
            account: AccountView::from(&s.account),
            access_token_expires_at: s.access_token_expires_at,
            warnings: diagnostics(&s.warnings, surface),
        }
    }
}

/// `auth-state`, tagged by `code`: `signed-out`; `sign-in-in-progress` with the device
/// code's fields; `signed-in` with the account's; `sign-in-failed` with `diagnosis` and
/// `failed-at`. An account still signed in during or after another sign-in adds its
/// fields (`account`, `warnings`, …) to the last two. `GET /api/v1/signin` and
/// `mfp-host auth status --json` print it.
#[derive(Debug, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum AuthStateView<'a> {
    SignedOut,
    #[serde(rename = "sign-in-in-progress")]
    InProgress(PendingSignInView<'a>),
    SignedIn(SignedInView<'a>),
    SignInFailed(FailedSignInView<'a>),
}

impl<'a> AuthStateView<'a> {
    pub fn new(s: &'a AuthState, surface: Surface) -> Self {
        match s {
            AuthState::SignedOut => Self::SignedOut,
            AuthState::InProgress(pending) => {
                Self::InProgress(PendingSignInView::new(pending, surface))
            }
            AuthState::SignedIn(state) => Self::SignedIn(SignedInView::new(state, surface)),
            AuthState::SignInFailed(failed) => {
                Self::SignInFailed(FailedSignInView::new(failed, surface))
            }
        }
    }
}

/// `pending-sign-in`: the device code's fields, and the account still signed in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingSignInView<'a> {
    #[serde(flatten)]
    pub device_code: DeviceCodeView<'a>,
    #[serde(flatten)]
    pub still_signed_in: Option<SignedInView<'a>>,
}

impl<'a> PendingSignInView<'a> {
    pub fn new(p: &'a PendingSignIn, surface: Surface) -> Self {
        Self {
            device_code: DeviceCodeView::new(&p.device_code, surface),
            still_signed_in: p
                .still_signed_in
                .as_ref()
                .map(|s| SignedInView::new(s, surface)),
        }
    }
}

/// `failed-sign-in`: why, when, and the account still signed in.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FailedSignInView<'a> {
    pub diagnosis: DiagnosticView<'a>,
    pub failed_at: u64,
    #[serde(flatten)]
    pub still_signed_in: Option<SignedInView<'a>>,
}

impl<'a> FailedSignInView<'a> {
    pub fn new(f: &'a FailedSignIn, surface: Surface) -> Self {
        Self {
            diagnosis: DiagnosticView::new(&f.diagnosis, surface),
            failed_at: f.failed_at,
            still_signed_in: f
                .still_signed_in
                .as_ref()
                .map(|s| SignedInView::new(s, surface)),
        }
    }
}

/// `consent-step`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConsentView<'a> {
    pub url: &'a str,
    pub needed: bool,
    pub explanation: &'a str,
}

impl<'a> From<&'a ConsentStep> for ConsentView<'a> {
    fn from(c: &'a ConsentStep) -> Self {
        Self {
            url: &c.url,
            needed: c.needed,
            explanation: &c.explanation,
        }
    }
}

/// `send-report`, with how many attempts the send took.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SendReportView<'a> {
    /// Always `sent`.
    pub code: &'static str,
    pub message_id: &'a str,
    pub accepted: &'a [String],
    pub server_reply: &'a str,
    pub size: u64,
    pub attempts: u32,
}

impl<'a> SendReportView<'a> {
    pub fn new(report: &'a SendReport, attempts: u32) -> Self {
        Self {
            code: "sent",
            message_id: &report.message_id,
            accepted: &report.accepted,
            server_reply: &report.server_reply,
            size: report.size,
            attempts,
        }
    }
}

/// `retry`: a temporary failure and when the send goes again, `attempt N of M` as the
/// component counts them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RetryView<'a> {
    pub diagnosis: DiagnosticView<'a>,
    pub server_reply: Option<&'a str>,
    pub after_seconds: u32,
    pub next_attempt: u32,
    pub max_attempts: u32,
}

impl<'a> RetryView<'a> {
    pub fn new(r: &'a Retry, surface: Surface) -> Self {
        Self {
            diagnosis: DiagnosticView::new(&r.failure.diagnosis, surface),
            server_reply: r.failure.server_reply.as_deref(),
            after_seconds: r.after_seconds,
            next_attempt: r.next_attempt,
            max_attempts: r.max_attempts,
        }
    }
}

/// The WIT case name of an origin.
pub fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::WebPanel => "web-panel",
        Origin::ControlPanel => "control-panel",
    }
}

/// The WIT case name of a history entry's kind.
pub fn event_kind_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::SignIn => "sign-in",
        EventKind::Send => "send",
        EventKind::ProviderReset => "provider-reset",
        EventKind::RefreshFailed => "refresh-failed",
        EventKind::Relayed => "relayed",
    }
}

/// `event`: one entry of the history, `{kind, at, succeeded, summary, diagnosis,
/// server-reply, origin}`; `GET /api/v1/history` and `mfp-host history --json` print a
/// list of them, newest first.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct EventView<'a> {
    pub kind: &'static str,
    pub at: u64,
    pub succeeded: bool,
    pub summary: &'a str,
    pub diagnosis: Option<DiagnosticView<'a>>,
    pub server_reply: Option<&'a str>,
    pub origin: Option<&'static str>,
}

impl<'a> EventView<'a> {
    pub fn new(e: &'a Event, surface: Surface) -> Self {
        Self {
            kind: event_kind_name(e.kind),
            at: e.at,
            succeeded: e.succeeded,
            summary: &e.summary,
            diagnosis: e
                .diagnosis
                .as_ref()
                .map(|d| DiagnosticView::new(d, surface)),
            server_reply: e.server_reply.as_deref(),
            origin: e.origin.map(origin_name),
        }
    }
}

/// A history, as views with remedies in `surface`'s words.
pub fn history(list: &[Event], surface: Surface) -> Vec<EventView<'_>> {
    list.iter().map(|e| EventView::new(e, surface)).collect()
}

/// The one-line JSON of a view (views always serialize).
pub fn to_json<T: Serialize>(view: &T) -> serde_json::Value {
    serde_json::to_value(view).unwrap_or(serde_json::Value::Null)
}
