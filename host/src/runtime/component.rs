//! The component this binary carries, built by `build.rs` from the workspace, and where
//! `--component PATH` points instead.

use std::path::PathBuf;

/// The release build of the mfp-smtp-oauth component, embedded in the binary.
pub const EMBEDDED: &[u8] = include_bytes!(env!("MFP_COMPONENT_WASM"));

/// Where the build left the component (for tests and `--component`).
pub const EMBEDDED_PATH: &str = env!("MFP_COMPONENT_WASM");

/// Which component to run.
#[derive(Clone, Debug, Default)]
pub enum ComponentSource {
    /// The component built into this binary.
    #[default]
    Embedded,
    /// A `.wasm` component file (`--component PATH`).
    File(PathBuf),
}

impl ComponentSource {
    /// The component's bytes.
    pub fn bytes(&self) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
        match self {
            Self::Embedded => Ok(std::borrow::Cow::Borrowed(EMBEDDED)),
            Self::File(path) => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Embedded => "the built-in component".to_owned(),
            Self::File(path) => path.display().to_string(),
        }
    }
}
