//! Builds the component for `wasm32-wasip2` with the workspace's own cargo, so
//! `cargo build -p mfp-host` alone yields a binary that carries the component. The path to
//! the built `.wasm` is exported as the compile-time env var `MFP_COMPONENT_WASM`.
//!
//! The nested build uses its own target directory (`<target>/wasm-component`) so it never
//! waits on the outer build's lock. The test fixtures are built by the tests crate
//! (`tests/build.rs`), not here.

use std::env;
use std::path::PathBuf;

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
    let wasm = build_wasm::build(&workspace, "wasm-component", "mfp-smtp-oauth");
    println!("cargo:rustc-env=MFP_COMPONENT_WASM={}", wasm.display());
}
