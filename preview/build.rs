//! Builds the browser preview's files into OUT_DIR; nothing generated is committed.
//!
//! 1. The component: the same build and the same encoding as `host/build.rs` (the shared
//!    `host/build_component.rs`), so the page runs the very bytes `mfp-host` embeds, and
//!    their SHA-256 is written to `build-info.json` for the page to show.
//! 2. jco's `js-component-bindgen` transpiles it in instantiation mode: the page passes
//!    the imports (its own `store`, `net`, `config`, `attachments`), and `wasi:random` is
//!    mapped to the page's own shim `random.js`, so no third-party WASI shim is needed.
//! 3. The Microsoft stand-ins (`mfp-fakes`, feature `wasm`) are built for
//!    `wasm32-unknown-unknown` as a cdylib in `<target>/wasm-preview`, and
//!    `wasm-bindgen-cli-support` (pinned to the lock's `wasm-bindgen`) writes their glue
//!    for the web target.
//! 4. `assets.rs` lists every file of the preview folder (the generated ones and the
//!    hand-written ones of `web/preview` and `web/`), embedded with `include_bytes!`.

use std::collections::HashMap;
use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[path = "../host/build_component.rs"]
mod build_component;
#[path = "../host/build_wasm.rs"]
mod build_wasm;

/// The hand-written files of the preview, from `web/preview/`, by their name in the folder.
const PAGE_FILES: &[(&str, &str)] = &[
    ("index.html", "web/preview/preview.html"),
    ("preview.js", "web/preview/preview.js"),
    ("preview-backend.js", "web/preview/preview-backend.js"),
    ("random.js", "web/preview/random.js"),
    ("preview.css", "web/preview/preview.css"),
    // The panel itself, unchanged: the page loads its markup and runs its script.
    ("panel.html", "web/index.html"),
    ("app.js", "web/app.js"),
    ("style.css", "web/style.css"),
    ("favicon.svg", "web/favicon.svg"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    for watched in build_component::INPUTS.iter().chain(&[
        "tests/fakes",
        "host/build_component.rs",
        "host/build_wasm.rs",
        "web/preview",
        "web/index.html",
        "web/app.js",
        "web/style.css",
        "web/favicon.svg",
    ]) {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let site = out_dir.join("site");
    if site.exists() {
        std::fs::remove_dir_all(&site).expect("clearing the old preview files");
    }
    std::fs::create_dir_all(site.join("component")).expect("creating the preview folder");
    std::fs::create_dir_all(site.join("fakes")).expect("creating the preview folder");

    let component = build_component::build(&workspace, &out_dir.join("mfp_smtp_oauth.wasm"));
    let bytes = std::fs::read(&component).expect("reading the component");
    let imports = transpile(&bytes, &site.join("component"));
    let info = serde_json::json!({
        "component-sha256": hex(&Sha256::digest(&bytes)),
        "component-size": bytes.len(),
        "imports": imports,
        "js-component-bindgen": "2.10.0",
        "wasm-bindgen": wasm_bindgen_version(&workspace),
    });
    std::fs::write(site.join("build-info.json"), format!("{info:#}\n"))
        .expect("writing build-info.json");

    let fakes = build_fakes(&workspace);
    bindgen_fakes(&fakes, &site.join("fakes"));

    let mut files: Vec<(String, PathBuf)> = PAGE_FILES
        .iter()
        .map(|(name, source)| (name.to_string(), workspace.join(source)))
        .collect();
    collect(&site, &site, &mut files);
    files.sort();
    let mut listing = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (name, path) in &files {
        assert!(path.exists(), "{} is missing", path.display());
        writeln!(
            listing,
            "    Asset {{ path: {name:?}, bytes: include_bytes!({:?}), content_type: {:?} }},",
            path.display().to_string(),
            content_type(name)
        )
        .unwrap();
    }
    listing.push_str("];\n");
    std::fs::write(out_dir.join("assets.rs"), listing).expect("writing assets.rs");
}

/// Transpiles the component into `dir` and returns its import names.
fn transpile(component: &[u8], dir: &Path) -> Vec<String> {
    let mut map = HashMap::new();
    // The page's own crypto.getRandomValues shim stands in for the only WASI import.
    map.insert("wasi:random/*".to_owned(), "./random.js#*".to_owned());
    let opts = js_component_bindgen::TranspileOpts {
        name: "mfp_smtp_oauth".into(),
        no_typescript: true,
        instantiation_mode: Some(js_component_bindgen::InstantiationMode::Async),
        map: Some(map),
        no_namespaced_exports: true,
        no_component_error_wrapping: true,
        ..Default::default()
    };
    let transpiled = js_component_bindgen::transpile(component, opts).unwrap_or_else(|e| {
        panic!("js-component-bindgen could not transpile the component: {e:?}")
    });
    for (name, bytes) in &transpiled.files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating the component folder");
        }
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
    }
    transpiled.imports
}

/// Builds `mfp-fakes` with its `wasm` feature as a cdylib for `wasm32-unknown-unknown`.
fn build_fakes(workspace: &Path) -> PathBuf {
    let target = build_wasm::UNKNOWN;
    build_wasm::ensure_wasm_target(target);
    let target_dir = build_wasm::outer_target_dir().join("wasm-preview");
    let status = build_wasm::nested_cargo(workspace)
        .args([
            "rustc",
            "--profile",
            "component",
            "--target",
            target,
            "-p",
            "mfp-fakes",
            "--lib",
            "--features",
            "wasm",
            "--crate-type",
            "cdylib",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build mfp-fakes: {e}"));
    assert!(status.success(), "building mfp-fakes for {target} failed");
    let wasm = target_dir
        .join(target)
        .join("component")
        .join("mfp_fakes.wasm");
    assert!(wasm.exists(), "{} was not produced", wasm.display());
    wasm
}

/// The stand-ins' JavaScript glue for the web target (`mfp_fakes.js`, `mfp_fakes_bg.wasm`).
fn bindgen_fakes(wasm: &Path, dir: &Path) {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(wasm)
        .out_name("mfp_fakes")
        .typescript(false)
        .web(true)
        .expect("wasm-bindgen's web target")
        .generate(dir)
        .unwrap_or_else(|e| panic!("wasm-bindgen could not bind mfp-fakes: {e:?}"));
}

/// The `wasm-bindgen` version Cargo.lock holds (what the stand-ins were built with).
fn wasm_bindgen_version(workspace: &Path) -> String {
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap_or_default();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = ")) {
                return version.trim_matches('"').to_owned();
            }
        }
    }
    String::new()
}

/// Every file under `dir`, named by its path relative to `root` with `/`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("reading the preview folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("inside the folder")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
