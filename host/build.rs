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
use std::path::PathBuf;

mod build_component;
mod build_wasm;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    // `mfp-host serve` embeds the panel's files (rust-embed): a new file must rebuild.
    for watched in build_component::INPUTS.iter().chain(&["web"]) {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wasm = build_component::build(&workspace, &out_dir.join("mfp_smtp_oauth.wasm"));
    println!("cargo:rustc-env=MFP_COMPONENT_WASM={}", wasm.display());
}
