//! Builds the misbehaving fixture component (`tests/fixtures/runaway`) the way
//! `host/build.rs` builds the component: for `wasm32-unknown-unknown`, its core module
//! encoded as a component (same shared modules), so it imports only its WIT world, as the
//! real one does. In its own target subdirectory (`<target>/wasm-fixtures`); its path is
//! the compile-time env var `MFP_FIXTURE_RUNAWAY_WASM`. Only the tests need it, so the host
//! build does not pay for it.

use std::env;
use std::path::PathBuf;

#[path = "../host/build_component.rs"]
#[allow(dead_code)] // only `componentize` is used here
mod build_component;
#[path = "../host/build_wasm.rs"]
mod build_wasm;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in [
        "tests/fixtures/runaway",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let core = build_wasm::build(
        &workspace,
        "wasm-fixtures",
        "mfp-fixture-runaway",
        build_wasm::UNKNOWN,
    );
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("runaway.wasm");
    let wasm = build_component::componentize(&core, &out);
    println!(
        "cargo:rustc-env=MFP_FIXTURE_RUNAWAY_WASM={}",
        wasm.display()
    );
}
