//! `wasm-size FILE.wasm [--top N | --index N,N,…]`: the bytes of a wasm core module (or a
//! component, whose embedded core modules are walked too) by section, and its code by crate
//! and by function when the module kept its `name` section (build with
//! `CARGO_PROFILE_COMPONENT_STRIP=false` for that; `scripts/bench` does). `--index N,N,…`
//! names functions by index instead, as a profile of wasmtime's compiled code numbers them
//! (`wasm[0]::function[N]`). Prints Markdown tables, so the figures can be pasted into an
//! issue as they are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser as _;
use mfp_bench::trimmed;
use wasmparser::{Name, NameSectionReader, Parser, Payload};

/// The bytes of a wasm core module (or a component's core modules) by section, and its
/// code by crate and by function when it kept its `name` section; Markdown tables.
#[derive(clap::Parser)]
#[command(name = "wasm-size")]
struct Options {
    /// The .wasm file: a core module or a component.
    #[arg(value_name = "FILE.wasm")]
    file: PathBuf,
    /// How many of the largest functions to list (needs the `name` section).
    #[arg(long, value_name = "N", default_value_t = 20)]
    top: usize,
    /// Only name these functions, by index (wasmtime profiles say `wasm[0]::function[N]`).
    #[arg(long, value_name = "N,N,…", value_delimiter = ',', value_parser = trimmed::<u32>,
          conflicts_with = "top")]
    index: Vec<u32>,
}

fn main() {
    let options = Options::parse();
    let path = options.file.display().to_string();
    let bytes = std::fs::read(&options.file).unwrap_or_else(|e| {
        eprintln!("cannot read {path}: {e}");
        std::process::exit(2);
    });
    let report = match analyse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path} is not a wasm module: {e}");
            std::process::exit(1);
        }
    };
    if !options.index.is_empty() {
        // The names of functions by index, e.g. those a profile of wasmtime's compiled
        // code names `wasm[0]::function[N]`.
        for &index in &options.index {
            let name = report
                .names
                .get(&index)
                .map(|n| format!("{:#}", rustc_demangle::demangle(n)));
            println!("{index}: {}", name.as_deref().unwrap_or("(no name)"));
        }
        return;
    }
    report.print(&path, bytes.len(), options.top);
}

#[derive(Default)]
struct Report {
    /// Section name to bytes (header included), summed over every module.
    sections: BTreeMap<String, usize>,
    /// Function index (imports first, as in the name section) to body size.
    bodies: Vec<(u32, usize)>,
    names: BTreeMap<u32, String>,
    data_segments: usize,
}

fn analyse(bytes: &[u8]) -> wasmparser::Result<Report> {
    let mut r = Report::default();
    let mut imported_funcs = 0u32;
    let mut next_body = 0u32;
    for payload in Parser::new(0).parse_all(bytes) {
        let mut add = |name: &str, range: std::ops::Range<usize>| {
            *r.sections.entry(name.to_owned()).or_default() += range.len();
        };
        match payload? {
            Payload::TypeSection(s) => add("type", s.range()),
            Payload::ImportSection(s) => {
                for import in s.clone().into_imports() {
                    if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                        imported_funcs += 1;
                    }
                }
                add("import", s.range());
            }
            Payload::FunctionSection(s) => add("function", s.range()),
            Payload::TableSection(s) => add("table", s.range()),
            Payload::MemorySection(s) => add("memory", s.range()),
            Payload::GlobalSection(s) => add("global", s.range()),
            Payload::ExportSection(s) => add("export", s.range()),
            Payload::ElementSection(s) => add("element", s.range()),
            Payload::CodeSectionStart { range, .. } => add("code", range),
            Payload::CodeSectionEntry(body) => {
                r.bodies
                    .push((imported_funcs + next_body, body.range().len()));
                next_body += 1;
            }
            Payload::DataSection(s) => {
                r.data_segments += s.count() as usize;
                add("data", s.range());
            }
            Payload::CustomSection(c) => {
                add(&format!("custom:{}", c.name()), c.range());
                if c.name() == "name" {
                    let reader = NameSectionReader::new(wasmparser::BinaryReader::new(
                        c.data(),
                        c.data_offset(),
                    ));
                    for name in reader {
                        if let Name::Function(map) = name? {
                            for naming in map {
                                let naming = naming?;
                                r.names.insert(naming.index, naming.name.to_owned());
                            }
                        }
                    }
                }
            }
            Payload::ComponentTypeSection(s) => add("component:type", s.range()),
            Payload::ComponentImportSection(s) => add("component:import", s.range()),
            Payload::ComponentExportSection(s) => add("component:export", s.range()),
            Payload::ComponentCanonicalSection(s) => add("component:canonical", s.range()),
            Payload::ComponentAliasSection(s) => add("component:alias", s.range()),
            Payload::InstanceSection(s) => add("component:core-instance", s.range()),
            Payload::ComponentInstanceSection(s) => add("component:instance", s.range()),
            _ => {}
        }
    }
    Ok(r)
}

/// The crate a (demangled) function belongs to: its path's first segment, or for
/// `<T as Trait>::f` the crate of `T`; the crate of a generic's type argument is not
/// looked at (twiggy does the same).
fn crate_of(name: &str) -> String {
    let demangled = format!("{:#}", rustc_demangle::demangle(name));
    let mut path = demangled.trim_start_matches('<').trim_start_matches('&');
    path = path.trim_start_matches("mut ").trim_start_matches('[');
    let end = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    let first = &path[..end];
    if first.is_empty() || !path[end..].starts_with("::") {
        // Not a Rust path: wit-bindgen's exports, libc-like symbols, `dlmalloc`, ...
        return format!("(other: {})", first.chars().take(24).collect::<String>());
    }
    first.to_owned()
}

impl Report {
    fn print(&self, path: &str, total: usize, top: usize) {
        println!("{path}: {total} bytes");
        println!();
        println!("| section | bytes |");
        println!("| --- | ---: |");
        let mut sections: Vec<_> = self.sections.iter().collect();
        sections.sort_by_key(|s| std::cmp::Reverse(*s.1));
        for (name, bytes) in sections {
            println!("| {name} | {bytes} |");
        }
        if self.names.is_empty() {
            println!();
            println!(
                "(no `name` section: build with CARGO_PROFILE_COMPONENT_STRIP=false for the code by crate)"
            );
            return;
        }
        let mut by_crate: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut functions: Vec<(usize, String)> = Vec::new();
        for &(index, size) in &self.bodies {
            let name = self.names.get(&index).cloned().unwrap_or_default();
            let entry = by_crate.entry(crate_of(&name)).or_default();
            entry.0 += size;
            entry.1 += 1;
            functions.push((size, format!("{:#}", rustc_demangle::demangle(&name))));
        }
        let code: usize = self.bodies.iter().map(|b| b.1).sum();
        println!();
        println!("code by crate ({code} bytes of function bodies):");
        println!();
        println!("| crate | bytes | functions |");
        println!("| --- | ---: | ---: |");
        let mut crates: Vec<_> = by_crate.into_iter().collect();
        crates.sort_by_key(|c| std::cmp::Reverse(c.1.0));
        for (name, (bytes, count)) in crates {
            println!("| {name} | {bytes} | {count} |");
        }
        functions.sort_by_key(|f| std::cmp::Reverse(f.0));
        println!();
        println!("largest functions:");
        println!();
        println!("| bytes | function |");
        println!("| ---: | --- |");
        for (size, name) in functions.into_iter().take(top) {
            let short: String = name.chars().take(110).collect();
            println!("| {size} | `{short}` |");
        }
    }
}
