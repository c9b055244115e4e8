//! The component as the device embeds it: the workspace's crate built for
//! `wasm32-unknown-unknown` (`build_wasm`) and its core module encoded as a component with
//! `wit-component`. Shared by `host/build.rs` (the bytes `mfp-host` carries) and
//! `preview/build.rs` (the bytes the browser preview runs), so both get the very same
//! component from one build and one encoding: there is no second build with other
//! bindings, and the page's SHA-256 is the one `mfp-host inspect` prints.
//!
//! The including build script must also declare `mod build_wasm;` at its root.

use std::path::{Path, PathBuf};

/// What the component is built from, relative to the workspace: a change to any of them
/// rebuilds it (`cargo:rerun-if-changed` of each including build script).
pub const INPUTS: &[&str] = &[
    "src",
    "wit",
    "Cargo.toml",
    "Cargo.lock",
    "rust-toolchain.toml",
];

/// Builds the component crate (in `<target>/wasm-component`, shared by every caller so the
/// second one finds it built) and writes the component to `out`, which it returns.
pub fn build(workspace: &Path, out: &Path) -> PathBuf {
    let core = crate::build_wasm::build(
        workspace,
        "wasm-component",
        "mfp-smtp-oauth",
        crate::build_wasm::UNKNOWN,
    );
    componentize(&core, out)
}

/// Turns the core module at `core` into a component written to `out` (the WIT world comes
/// from the `component-type` custom section wit-bindgen embedded), validated.
pub fn componentize(core: &Path, out: &Path) -> PathBuf {
    let module =
        std::fs::read(core).unwrap_or_else(|e| panic!("could not read {}: {e}", core.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| panic!("{} is not a valid component core: {e:?}", core.display()));
    std::fs::write(out, component)
        .unwrap_or_else(|e| panic!("could not write {}: {e}", out.display()));
    out.to_path_buf()
}
