//! The device as integrators and tests use it: open a state dir, then call the panels.
//! Each method is one call into a fresh component instance.

use std::path::PathBuf;

use crate::bindings::mailer::{OutgoingMessage, SendError, SendReport};
use crate::bindings::panel::Event;
use crate::bindings::relay::{RelayConfig, SessionSummary};
use crate::bindings::signin::{AuthState, ConsentStep, DeviceCode, PollStatus, SigninError};
use crate::bindings::types::{
    ApplyOutcome, ControlPanelScreen, Diagnostic, Origin, PanelError, Remedy, SettingChange,
    SettingEntry,
};
use crate::capabilities::attachments::AttachmentSet;
use crate::capabilities::net::{Net, NetConfig, SigninOverrides};
use crate::capabilities::relay_client::RelayConnection;
use crate::capabilities::store::DurableStore;
use crate::runtime::compile_cache::CacheOutcome;
use crate::runtime::component::ComponentSource;
use crate::runtime::{CallError, CallGrants, Runtime, RuntimeOptions};
use crate::state_dir::{self, StateDirProblem};

/// The store record where the component keeps the SMTP server and port it sends to, as
/// `host:port` text, written in the same commit as the settings. The host grants SMTP
/// connections to that destination only, read from its own store when the component
/// connects: never from the component's answers, never from the settings record.
pub const SMTP_DESTINATION_KEY: &str = "host/smtp-destination/v1";

/// Where the device keeps its state and which component it runs.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    pub state_dir: PathBuf,
    pub component: ComponentSource,
    /// Cache compiled code in `<state dir>/cache` (on by default).
    pub compile_cache: bool,
    pub runtime: RuntimeOptions,
    /// The network the device may use (identity platform, SMTP server); `None` grants none.
    pub net: Option<NetConfig>,
    /// `--tenant` / `--client-id`: replace the stored settings for this invocation only.
    pub overrides: SigninOverrides,
}

impl DeviceOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            component: ComponentSource::Embedded,
            compile_cache: true,
            runtime: RuntimeOptions::default(),
            net: Some(NetConfig::default()),
            overrides: SigninOverrides::default(),
        }
    }
}

/// Why a device call failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The component refused the request; the error says which field and what to do.
    #[error("{}", .0.message)]
    Refused(PanelError),
    /// The component misbehaved (trap, deadline, memory); the device stays usable.
    #[error(transparent)]
    Sandbox(#[from] CallError),
    /// The state dir or its database could not be opened, or is not trusted (another
    /// user's, open to others, a key others may read); the problem carries the remedy.
    #[error("The state dir {path} cannot be used: {problem}")]
    StateDir {
        path: String,
        problem: StateDirProblem,
    },
    /// A sign-in call failed; the error's case says what to do, its diagnosis how.
    #[error("{}", .0.diagnosis().message)]
    SigninFailed(SigninError),
    /// A send failed; the error's case says what to do, with the diagnosis and the
    /// server's reply.
    #[error("{}", .0.diagnosis().message)]
    SendFailed(SendError),
    /// The network configuration (`--authority`, `--resolve`, `--ca-file`, `--proxy`) is invalid.
    #[error("The network settings are invalid: {0}")]
    NetConfig(String),
    /// The component could not be read, compiled or linked.
    #[error("The component ({source_name}) cannot be loaded: {why}")]
    Component { source_name: String, why: String },
}

impl DeviceError {
    /// A stable code, a message and a remedy, as every failure must carry.
    pub fn diagnosis(&self) -> (String, String, Remedy) {
        match self {
            Self::Refused(e) => (e.code.clone(), e.message.clone(), e.remedy.clone()),
            Self::SigninFailed(e) => {
                let d = e.diagnosis();
                (d.code.clone(), d.message.clone(), d.remedy.clone())
            }
            Self::SendFailed(e) => {
                let d = e.diagnosis();
                (d.code.clone(), d.message.clone(), d.remedy.clone())
            }
            Self::NetConfig(_) => (
                "network-config-invalid".into(),
                self.to_string(),
                "Correct --authority (https://host), --resolve (HOST:PORT=ADDR:PORT), --ca-file (a PEM file) or --proxy (http://host:port).".into(),
            ),
            Self::Sandbox(CallError::DeadlineExceeded(_)) => (
                "component-deadline".into(),
                self.to_string(),
                "Try again. If it persists, raise --call-timeout-ms or report the component as faulty.".into(),
            ),
            Self::Sandbox(CallError::MemoryLimit(_)) => (
                "component-memory-limit".into(),
                self.to_string(),
                "Raise --memory-limit-mib, or report the component as faulty.".into(),
            ),
            Self::Sandbox(_) => (
                "component-trap".into(),
                self.to_string(),
                "Report the component as faulty; the device keeps running and the next request uses a fresh instance.".into(),
            ),
            Self::StateDir { problem, .. } => (
                problem.code().into(),
                self.to_string(),
                problem.remedy().into(),
            ),
            Self::Component { .. } => (
                "component-invalid".into(),
                self.to_string(),
                "Point --component at a mfp:smtp-oauth device-panel component, or omit it to use the built-in one.".into(),
            ),
        }
    }
}

/// A device: its store and its loaded component.
pub struct Device {
    runtime: Runtime,
    store: DurableStore,
    net: Option<Net>,
    overrides: SigninOverrides,
}

impl Device {
    /// Opens the state dir (creating it private to this user) and loads the component.
    pub fn open(options: DeviceOptions) -> Result<Self, DeviceError> {
        let state_dir = &options.state_dir;
        let state_error = |problem: StateDirProblem| DeviceError::StateDir {
            path: state_dir.display().to_string(),
            problem,
        };
        state_dir::ensure_private_dir(state_dir).map_err(state_error)?;
        let store = DurableStore::open(state_dir).map_err(|e| state_error(e.into_problem()))?;
        let component_error = |why: String| DeviceError::Component {
            source_name: options.component.describe(),
            why,
        };
        let bytes = options
            .component
            .bytes()
            .map_err(|e| component_error(e.to_string()))?;
        let mut runtime_options = options.runtime.clone();
        if options.compile_cache {
            runtime_options
                .cache_dir
                .get_or_insert_with(|| state_dir.join("cache"));
        }
        let runtime = Runtime::new(&bytes, store.clone(), runtime_options)
            .map_err(|e| component_error(format!("{e:#}")))?;
        let net = match options.net.clone() {
            Some(config) => {
                Some(Net::new(config).map_err(|e| DeviceError::NetConfig(e.to_string()))?)
            }
            None => None,
        };
        Ok(Self {
            runtime,
            store,
            net,
            overrides: options.overrides.clone(),
        })
    }

    /// The device's durable store, for host-side tooling and tests.
    pub fn store(&self) -> &DurableStore {
        &self.store
    }

    /// Whether this start found the compiled component in the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.runtime.cache_outcome()
    }

    pub fn settings(&self) -> Result<Vec<SettingEntry>, DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.panel(store)?.call_settings(store)
            })?
            .map_err(DeviceError::Refused)
    }

    /// One Apply from `origin` now; `changes` are (setting key, value) pairs.
    pub fn apply(
        &self,
        origin: Origin,
        changes: &[(String, String)],
    ) -> Result<ApplyOutcome, DeviceError> {
        self.apply_at(origin, changes, unix_now())
    }

    /// One Apply from `origin` at `now` (Unix seconds): the time the history records a
    /// provider reset at.
    pub fn apply_at(
        &self,
        origin: Origin,
        changes: &[(String, String)],
        now: u64,
    ) -> Result<ApplyOutcome, DeviceError> {
        let changes: Vec<SettingChange> = changes
            .iter()
            .map(|(key, value)| SettingChange {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.panel(store)?.call_apply(store, origin, &changes, now)
            })?
            .map_err(DeviceError::Refused)
    }

    pub fn control_panel_view(&self) -> Result<ControlPanelScreen, DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.panel(store)?.call_control_panel_view(store)
            })?
            .map_err(DeviceError::Refused)
    }

    pub fn diagnostics(&self) -> Result<Vec<Diagnostic>, DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.panel(store)?.call_diagnostics(store)
            })?
            .map_err(DeviceError::Refused)
    }

    /// What happened, newest first: sign-ins, sends, provider resets, failed refreshes.
    pub fn history(&self) -> Result<Vec<Event>, DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.panel(store)?.call_history(store)
            })?
            .map_err(DeviceError::Refused)
    }
}

impl Device {
    /// A grant of the identity platform only (sign-in calls).
    fn identity_grant(&self) -> CallGrants {
        CallGrants {
            net: self.net.as_ref().map(|net| net.grant(None)),
            overrides: self.overrides.clone(),
            ..CallGrants::default()
        }
    }

    /// S8: requests a device code.
    pub fn signin_start(&self, now: u64) -> Result<DeviceCode, DeviceError> {
        self.runtime
            .call(self.identity_grant(), |dev, store| {
                dev.signin(store)?.call_start(store, now)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    /// Performs at most one token request, if one is due at `now`.
    pub fn signin_poll(&self, now: u64) -> Result<PollStatus, DeviceError> {
        self.runtime
            .call(self.identity_grant(), |dev, store| {
                dev.signin(store)?.call_poll(store, now)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    pub fn signin_status(&self, now: u64) -> Result<AuthState, DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.signin(store)?.call_status(store, now)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    pub fn sign_out(&self) -> Result<(), DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.signin(store)?.call_sign_out(store)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    /// Cancels the sign-in in progress; an account signed in before stays.
    pub fn cancel_signin(&self) -> Result<(), DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.signin(store)?.call_cancel(store)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    /// Keeps an idle device signed in (refresh tokens expire after 90 idle days): refreshes
    /// the grant when it is a week old; answers when to call again (Unix seconds).
    pub fn signin_keep_alive(&self, now: u64) -> Result<u64, DeviceError> {
        self.runtime
            .call(self.identity_grant(), |dev, store| {
                dev.signin(store)?.call_keep_alive(store, now)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    pub fn admin_consent(&self) -> Result<ConsentStep, DeviceError> {
        self.runtime
            .call(self.identity_grant(), |dev, store| {
                dev.signin(store)?.call_admin_consent(store)
            })?
            .map_err(DeviceError::SigninFailed)
    }

    /// One send attempt. The network grant is the identity platform (for a token refresh)
    /// and the SMTP destination the store's [`SMTP_DESTINATION_KEY`] names when the
    /// component connects, nothing else.
    pub fn send(
        &self,
        message: &OutgoingMessage,
        attachments: AttachmentSet,
        now: u64,
    ) -> Result<SendReport, DeviceError> {
        let grants = CallGrants {
            attachments,
            ..self.submission_grants()
        };
        self.runtime
            .call(grants, |dev, store| {
                dev.mailer(store)?.call_send(store, message, now)
            })?
            .map_err(DeviceError::SendFailed)
    }
}

impl Device {
    /// Checks a relay configuration (listen address, allowed ranges, password) before
    /// the relay listens; the component refuses an open relay.
    pub fn check_relay_config(&self, config: &RelayConfig) -> Result<(), DeviceError> {
        self.runtime
            .call(CallGrants::default(), |dev, store| {
                dev.relay(store)?.call_check_config(store, config)
            })?
            .map_err(DeviceError::Refused)
    }

    /// Serves one nearby device's connection to the relay, from the greeting to its
    /// close, in one call: each message is passed through to the SMTP server the
    /// settings name. `open_connections` counts the relay's open connections, this one
    /// included.
    pub fn serve_relay_client(
        &self,
        connection: RelayConnection,
        peer: &str,
        config: &RelayConfig,
        open_connections: u32,
    ) -> Result<SessionSummary, DeviceError> {
        Ok(self.runtime.call(self.submission_grants(), |dev, store| {
            let client = store.data_mut().relay.grant(connection)?;
            dev.relay(store)?
                .call_serve_client(store, client, peer, config, open_connections)
        })?)
    }
}

impl Device {
    /// What a call that submits mail may reach: the identity platform (for a token
    /// refresh) and the SMTP destination the store's [`SMTP_DESTINATION_KEY`] names when
    /// the component connects, nothing else.
    fn submission_grants(&self) -> CallGrants {
        let store = self.store.clone();
        CallGrants {
            net: self
                .net
                .as_ref()
                .map(|net| net.grant_smtp_lookup(move || smtp_destination(&store))),
            overrides: self.overrides.clone(),
            ..CallGrants::default()
        }
    }
}

/// The SMTP server and port the store's destination record names, if it holds one that
/// reads as `host:port`.
fn smtp_destination(store: &DurableStore) -> Option<(String, u16)> {
    let record = store.get(SMTP_DESTINATION_KEY).ok()??;
    let text = String::from_utf8(record).ok()?;
    let (host, port) = text.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

impl SendError {
    /// The diagnosis, whatever the case.
    pub fn diagnosis(&self) -> &Diagnostic {
        match self {
            Self::NotSent(d) | Self::SignInRequired(d) => d,
            Self::RetryLater(retry) => &retry.failure.diagnosis,
            Self::Failed(failure) => &failure.diagnosis,
        }
    }

    /// Seconds to wait before the next attempt, when the component asks for one.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::RetryLater(retry) => Some(retry.after_seconds),
            _ => None,
        }
    }

    /// The server's reply, when a server answered.
    pub fn server_reply(&self) -> Option<&str> {
        match self {
            Self::NotSent(_) | Self::SignInRequired(_) => None,
            Self::RetryLater(retry) => retry.failure.server_reply.as_deref(),
            Self::Failed(failure) => failure.server_reply.as_deref(),
        }
    }
}

impl SigninError {
    /// The diagnosis, whatever the case.
    pub fn diagnosis(&self) -> &Diagnostic {
        match self {
            Self::Settings(d)
            | Self::SignInRequired(d)
            | Self::Unreachable(d)
            | Self::Storage(d) => d,
            Self::Refused(refusal) => &refusal.diagnosis,
        }
    }
}

/// Seconds since the Unix epoch, as the component's calls take them.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
