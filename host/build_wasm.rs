//! Builds workspace crates for `wasm32-wasip2` with the workspace's own cargo and the
//! `component` profile. Shared by `host/build.rs` (the component) and `tests/build.rs`
//! (the test fixtures), each with its own target subdirectory, so a nested build never
//! waits on the outer build's lock nor on the other nested build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Builds `krate` into `<outer target>/<subdir>` and returns the path of its `.wasm`.
pub fn build(workspace: &Path, subdir: &str, krate: &str) -> PathBuf {
    ensure_wasm_target();
    let target_dir = outer_target_dir().join(subdir);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--profile",
            "component",
            "--target",
            TARGET,
            "-p",
            krate,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
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
        .unwrap_or_else(|e| panic!("could not run cargo to build {krate}: {e}"));
    assert!(status.success(), "building {krate} for {TARGET} failed");
    let wasm = target_dir
        .join(TARGET)
        .join("component")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
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
