//! Shared fixtures for the component tests: a device on a fresh state dir, loading the
//! real component through the host library, with one compiled-code cache for the whole
//! test run so each test does not recompile.

use std::path::{Path, PathBuf};

pub use mfp_host::bindings::types::{Origin, PanelErrorKind, ServiceProvider};
use mfp_host::device::{Device, DeviceError, DeviceOptions};

/// A fixture component (built by `build.rs`) that exports the same world but loops, traps
/// and hoards memory on purpose.
pub const FIXTURE_RUNAWAY_PATH: &str = env!("MFP_FIXTURE_RUNAWAY_WASM");

/// A device on its own temporary state dir. The dir lives as long as the value.
pub struct TestDevice {
    pub device: Device,
    pub dir: tempfile::TempDir,
}

/// The compile cache shared by every test of this run.
pub fn shared_cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mfp-test-compile-cache-{}", std::process::id()))
}

/// Options for a device on `state_dir` that share the run's compile cache.
pub fn options(state_dir: &Path) -> DeviceOptions {
    let mut options = DeviceOptions::new(state_dir);
    options.runtime.cache_dir = Some(shared_cache_dir());
    options
}

impl TestDevice {
    /// A device with factory settings.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let device = Device::open(options(dir.path())).expect("device opens");
        Self { device, dir }
    }

    /// Opens a second device (as a restarted host process would) on the same state dir.
    pub fn reopen(&self) -> Device {
        Device::open(options(self.dir.path())).expect("device reopens")
    }

    pub fn web(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<mfp_host::bindings::types::ApplyOutcome, DeviceError> {
        self.device.apply(Origin::WebPanel, &owned(pairs))
    }

    pub fn control(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<mfp_host::bindings::types::ApplyOutcome, DeviceError> {
        self.device.apply(Origin::ControlPanel, &owned(pairs))
    }

    /// The current value of one setting key.
    pub fn value(&self, key: &str) -> String {
        value_of(&self.device, key)
    }
}

impl Default for TestDevice {
    fn default() -> Self {
        Self::new()
    }
}

/// The current value of `key` on `device`.
pub fn value_of(device: &Device, key: &str) -> String {
    let entries = device.settings().expect("settings");
    entries
        .into_iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no setting {key}"))
        .value
}

pub fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The refusal inside a device error; panics on any other failure.
pub fn refusal(err: DeviceError) -> mfp_host::bindings::types::PanelError {
    match err {
        DeviceError::Refused(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
