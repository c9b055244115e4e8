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
    let core = optimise(&core).unwrap_or(core);
    componentize(&core, out)
}

/// The wasm features the core module uses (rustc's defaults for the target, and SIMD),
/// which Binaryen must be told: the stripped module carries no `target_features` section.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-simd",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Shrinks the core module with Binaryen's `wasm-opt -Oz` (about 15%) when it is installed
/// (Debian's `binaryen`, which `scripts/test` and `scripts/bench` install), or names it in
/// `$MFP_WASM_OPT`. Without it the component is built as rustc left it: the same behaviour,
/// larger, and the build says so.
fn optimise(core: &Path) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=MFP_WASM_OPT");
    let Some(wasm_opt) = find_wasm_opt() else {
        println!(
            "cargo:warning=wasm-opt not found: the component is not size-optimised (install Debian's `binaryen`, then `touch src/lib.rs`)"
        );
        return None;
    };
    println!("cargo:rerun-if-changed={}", wasm_opt.display());
    // `host/build.rs` and `preview/build.rs` may run at once and share `core`'s folder:
    // each writes its own file and renames it into place, so neither reads a half-written
    // one (both write the same bytes).
    let optimised = core.with_extension("opt.wasm");
    let partial = core.with_extension(format!("opt.wasm.{}", std::process::id()));
    let status = std::process::Command::new(&wasm_opt)
        .arg("-Oz")
        .args(WASM_FEATURES)
        .arg(core)
        .arg("-o")
        .arg(&partial)
        .status()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", wasm_opt.display()));
    assert!(
        status.success(),
        "{} failed on {}",
        wasm_opt.display(),
        core.display()
    );
    std::fs::rename(&partial, &optimised)
        .unwrap_or_else(|e| panic!("could not write {}: {e}", optimised.display()));
    Some(optimised)
}

/// `$MFP_WASM_OPT`, or `wasm-opt` on the `PATH`.
fn find_wasm_opt() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MFP_WASM_OPT") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("wasm-opt"))
        .find(|candidate| candidate.is_file())
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
