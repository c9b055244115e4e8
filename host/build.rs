//! Builds the component (and the test fixtures) for `wasm32-wasip2` with the workspace's
//! own cargo, so `cargo build -p mfp-host` alone yields a binary that carries the
//! component. Paths to the built `.wasm` files are exported as compile-time env vars.
//!
//! The nested build uses its own target directory (`<target>/wasm-component`) so it never
//! waits on the outer build's lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Crate name → env var holding the path of its `.wasm`.
const COMPONENTS: &[(&str, &str)] = &[
    ("mfp-smtp-oauth", "MFP_COMPONENT_WASM"),
    ("mfp-fixture-runaway", "MFP_FIXTURE_RUNAWAY_WASM"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "tests/fixtures/runaway",
        "rust-toolchain.toml",
        // `mfp-host serve` embeds the panel's files (rust-embed): a new file must rebuild.
        "web",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    ensure_wasm_target();

    let target_dir = outer_target_dir().join("wasm-component");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args(["build", "--profile", "component", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for (krate, _) in COMPONENTS {
        cmd.args(["-p", krate]);
    }
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("could not run cargo to build the component");
    assert!(
        status.success(),
        "building the component for {TARGET} failed"
    );

    for (krate, var) in COMPONENTS {
        let wasm = target_dir
            .join(TARGET)
            .join("component")
            .join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(wasm.exists(), "{} was not produced", wasm.display());
        println!("cargo:rustc-env={var}={}", wasm.display());
    }
}

/// The outer build's target directory: the nearest ancestor of OUT_DIR holding CACHEDIR.TAG.
fn outer_target_dir() -> PathBuf {
    if let Ok(dir) = env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.join("target"))
}

/// rustup does not add a toolchain file's targets to a toolchain that is already installed,
/// so add the wasm target here when the sysroot lacks it (a fresh machine needs no manual step).
fn ensure_wasm_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).exists())
        .unwrap_or(false);
    if installed {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let status = rustup
        .status()
        .expect("the wasm32-wasip2 target is missing and rustup could not be run");
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}
