//! The device as integrators and tests use it: open a state dir, then call the panels.
//! Each method is one call into a fresh component instance.

use std::path::{Path, PathBuf};

use crate::bindings::types::{
    ApplyOutcome, ControlPanelScreen, Diagnostic, Origin, PanelError, SettingChange, SettingEntry,
};
use crate::cache::CacheOutcome;
use crate::component::ComponentSource;
use crate::runtime::{CallError, Runtime, RuntimeOptions};
use crate::store::DurableStore;

/// Where the device keeps its state and which component it runs.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    pub state_dir: PathBuf,
    pub component: ComponentSource,
    /// Cache compiled code in `<state dir>/cache` (on by default).
    pub compile_cache: bool,
    pub runtime: RuntimeOptions,
}

impl DeviceOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            component: ComponentSource::Embedded,
            compile_cache: true,
            runtime: RuntimeOptions::default(),
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
    /// The state dir or its database could not be opened.
    #[error("the state dir {path} cannot be used: {why}")]
    StateDir { path: String, why: String },
    /// The component could not be read, compiled or linked.
    #[error("the component ({source_name}) cannot be loaded: {why}")]
    Component { source_name: String, why: String },
}

impl DeviceError {
    /// A stable code, a message and a remedy, as every failure must carry.
    pub fn diagnosis(&self) -> (String, String, String) {
        match self {
            Self::Refused(e) => (e.code.clone(), e.message.clone(), e.remedy.clone()),
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
            Self::StateDir { .. } => (
                "state-dir-unavailable".into(),
                self.to_string(),
                "Check that --state-dir exists, is writable by this user and has free space.".into(),
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
}

impl Device {
    /// Opens the state dir (creating it private to this user) and loads the component.
    pub fn open(options: DeviceOptions) -> Result<Self, DeviceError> {
        let state_dir = &options.state_dir;
        let state_error = |why: String| DeviceError::StateDir {
            path: state_dir.display().to_string(),
            why,
        };
        create_private_dir(state_dir).map_err(|e| state_error(e.to_string()))?;
        let store = DurableStore::open(state_dir).map_err(|e| state_error(e.to_string()))?;
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
        Ok(Self { runtime, store })
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
            .call(|dev, store| dev.mfp_smtp_oauth_panel().call_settings(store))?
            .map_err(DeviceError::Refused)
    }

    /// One Apply from `origin`; `changes` are (setting key, value) pairs.
    pub fn apply(
        &self,
        origin: Origin,
        changes: &[(String, String)],
    ) -> Result<ApplyOutcome, DeviceError> {
        let changes: Vec<SettingChange> = changes
            .iter()
            .map(|(key, value)| SettingChange {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.runtime
            .call(|dev, store| {
                dev.mfp_smtp_oauth_panel()
                    .call_apply(store, origin, &changes)
            })?
            .map_err(DeviceError::Refused)
    }

    pub fn control_panel_view(&self) -> Result<ControlPanelScreen, DeviceError> {
        self.runtime
            .call(|dev, store| dev.mfp_smtp_oauth_panel().call_control_panel_view(store))?
            .map_err(DeviceError::Refused)
    }

    pub fn diagnostics(&self) -> Result<Vec<Diagnostic>, DeviceError> {
        self.runtime
            .call(|dev, store| dev.mfp_smtp_oauth_panel().call_diagnostics(store))?
            .map_err(DeviceError::Refused)
    }
}

/// Creates `dir` (and parents) readable only by this user: it holds the database and
/// compiled code that the host trusts.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
