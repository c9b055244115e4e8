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

mod build_component;
mod build_wasm;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in build_component::INPUTS {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    // `mfp-host serve` embeds the panel's files (rust-embed). Each is watched by name, not
    // `web/` as a whole: cargo watches a folder with everything under it, and the browser
    // tests' `npm ci` rewrites `web/node_modules`, which made the next build re-encode the
    // component and recompile this crate. A new asset reaches the binary with the edit to
    // the page that loads it, which is watched.
    for file in panel_files(&workspace.join("web")) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wasm = build_component::build(&workspace, &out_dir.join("mfp_smtp_oauth.wasm"));
    println!("cargo:rustc-env=MFP_COMPONENT_WASM={}", wasm.display());
}

/// The folders under `web/` that are never embedded (`host/src/serve/assets.rs`).
const NOT_EMBEDDED: &[&str] = &["node_modules", "tests", "test"];

/// The files under `dir` that `host/src/serve/assets.rs` may embed, by extension.
fn panel_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if !NOT_EMBEDDED.iter().any(|skip| name == *skip) {
                files.extend(panel_files(&path));
            }
        } else if matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("html" | "js" | "css" | "svg")
        ) {
            files.push(path);
        }
    }
    files.sort();
    files
}
