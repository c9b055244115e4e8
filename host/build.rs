//! Builds the component with the workspace's own cargo, so `cargo build -p mfp-host` alone
//! yields a binary that carries the component. The crate is built for
//! `wasm32-unknown-unknown` (std without WASI) and the core module is turned into a
//! component here with `wit-component` (wit-bindgen embedded the world), so the component
//! imports only the project's interfaces and `wasi:random`: a browser page needs no WASI
//! shim. The path to the component is exported as the compile-time env var
//! `MFP_COMPONENT_WASM`.
//!
//! The nested build uses its own target directory (`<target>/wasm-component`) so it never
//! waits on the outer build's lock. The test fixtures are built by the tests crate
//! (`tests/build.rs`), not here.

use std::env;
use std::path::{Path, PathBuf};

mod build_wasm;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        // `mfp-host serve` embeds the panel's files (rust-embed): a new file must rebuild.
        "web",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let core = build_wasm::build(
        &workspace,
        "wasm-component",
        "mfp-smtp-oauth",
        build_wasm::UNKNOWN,
    );
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wasm = componentize(&core, &out_dir.join("mfp_smtp_oauth.wasm"));
    println!("cargo:rustc-env=MFP_COMPONENT_WASM={}", wasm.display());
}

/// Turns the core module at `core` into a component written to `out` (the WIT world comes
/// from the `component-type` custom section wit-bindgen embedded), validated.
fn componentize(core: &Path, out: &Path) -> PathBuf {
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
