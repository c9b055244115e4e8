//! Builds the misbehaving fixture component (`tests/fixtures/runaway`) for `wasm32-wasip2`
//! the way `host/build.rs` builds the component (same shared module), in its own target
//! subdirectory (`<target>/wasm-fixtures`), and exports its path as the compile-time env
//! var `MFP_FIXTURE_RUNAWAY_WASM`. Only the tests need it, so the host build does not pay
//! for it.

use std::env;
use std::path::PathBuf;

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
    let wasm = build_wasm::build(
        &workspace,
        "wasm-fixtures",
        "mfp-fixture-runaway",
        build_wasm::WASIP2,
    );
    println!(
        "cargo:rustc-env=MFP_FIXTURE_RUNAWAY_WASM={}",
        wasm.display()
    );
}
