//! Builds workspace crates for a wasm target with the workspace's own cargo and the
//! `component` profile. Shared by `host/build.rs` (the component, a core module for
//! `wasm32-unknown-unknown` that it turns into a component) and `tests/build.rs` (the test
//! fixture, built the same way), each with its own target subdirectory, so a nested
//! build never waits on the outer build's lock nor on the other nested build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// std without WASI: the module imports nothing but what its WIT world declares.
pub const UNKNOWN: &str = "wasm32-unknown-unknown";

/// Builds `krate` for `target` into `<outer target>/<subdir>` and returns the path of its
/// `.wasm`.
pub fn build(workspace: &Path, subdir: &str, krate: &str, target: &str) -> PathBuf {
    ensure_wasm_target(target);
    let target_dir = outer_target_dir().join(subdir);
    let mut cmd = nested_cargo(workspace);
    cmd.args([
        "build",
        "--profile",
        "component",
        "--target",
        target,
        "-p",
        krate,
    ])
    .arg("--target-dir")
    .arg(&target_dir);
    if target == UNKNOWN {
        // wasm SIMD (on in wasmtime and every current browser) for the per-byte scans of a
        // send (`mfp-wire`). Only this target's crates get it, not build scripts.
        cmd.env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-C target-feature=+simd128",
        );
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build {krate}: {e}"));
    assert!(status.success(), "building {krate} for {target} failed");
    let wasm = target_dir
        .join(target)
        .join("component")
        .join(format!("{}.wasm", krate.replace('-', "_")));
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

/// The workspace's own cargo, run in `workspace`, without the flags meant for the outer
/// (host) build; the caller adds the subcommand and its arguments.
pub fn nested_cargo(workspace: &Path) -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace);
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
    cmd
}

/// The outer build's target directory: the nearest ancestor of OUT_DIR holding CACHEDIR.TAG.
pub fn outer_target_dir() -> PathBuf {
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
pub fn ensure_wasm_target(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let installed = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).exists())
        .unwrap_or(false);
    if installed {
        return;
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", target]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let status = rustup.status().unwrap_or_else(|e| {
        panic!("the {target} target is missing and rustup could not be run: {e}")
    });
    assert!(status.success(), "`rustup target add {target}` failed");
}
