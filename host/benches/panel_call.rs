//! Figures for issue 2, printed (never asserted):
//! - the release component's size and its import list;
//! - one panel call (apply + store commit, and a read) through wasmtime versus the same
//!   Rust code called natively on the same SQLite store: medians of alternating rounds,
//!   as ratios measured in this run;
//! - the floor under every call: a fresh instance made and dropped with nothing called;
//! - a settings read through wasmtime split into its phases (instance made, panel bound,
//!   the call itself, instance dropped), to show how much of it is wasmtime's own;
//! - the host's cold start (process start to the first answer of `settings show`) with
//!   and without the precompiled-component cache.
//!
//! Run with `cargo bench -p mfp-host --bench panel_call`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mfp_host::bindings::panel::SettingChange;
use mfp_host::bindings::types::Origin;
use mfp_host::capabilities::store::DurableStore;
use mfp_host::device::{Device, DeviceOptions};
use mfp_host::runtime::component::EMBEDDED;
use mfp_host::runtime::{CallGrants, Runtime, RuntimeOptions};
use mfp_smtp_oauth::storage::{Storage, StoreError, Write};

/// The host's SQLite store seen through the core's `Storage` trait, for the native baseline.
struct NativeStore(DurableStore);

fn store_error(err: mfp_host::bindings::store::StoreError) -> StoreError {
    StoreError::Other(format!("{err:?}"))
}

impl Storage for NativeStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(store_error)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.0.commit(&writes).map_err(store_error)
    }
    fn commit_if(
        &self,
        guards: Vec<mfp_smtp_oauth::storage::Guard>,
        writes: Vec<Write>,
    ) -> Result<(), StoreError> {
        self.0.commit_if(&guards, &writes).map_err(store_error)
    }
}

/// Alternates the receive port so every Apply really commits.
fn change(i: usize) -> Vec<(String, String)> {
    vec![("receive-port".to_owned(), (2000 + i % 2).to_string())]
}

fn mean(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

fn time(n: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..n / 10 {
        f(i); // warm-up
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    mean(start.elapsed(), n)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Mean microseconds per phase of one settings read through wasmtime.
#[derive(Default)]
struct ReadPhases {
    made: f64,
    bound: f64,
    called: f64,
    dropped: f64,
}

/// `n` settings reads through `runtime`, each timed phase by phase: the instance made
/// (store, pooled slot, instantiation), the panel interface bound, the call (the guest's
/// code, its store reads and the answer lifted into host strings), the instance dropped.
fn read_phases(runtime: &Runtime, n: usize) -> ReadPhases {
    let mut total = ReadPhases::default();
    for i in 0..n + n / 10 {
        let start = Instant::now();
        let (made, bound, called) = runtime
            .call(CallGrants::default(), |dev, store| {
                let made = Instant::now();
                let panel = dev.panel(store)?;
                let bound = Instant::now();
                let entries = panel.call_settings(store)?;
                assert!(
                    matches!(&entries, Ok(list) if !list.is_empty()),
                    "the timed settings read failed: {entries:?}"
                );
                Ok((made, bound, Instant::now()))
            })
            .unwrap();
        let dropped = Instant::now();
        if i >= n / 10 {
            total.made += (made - start).as_secs_f64();
            total.bound += (bound - made).as_secs_f64();
            total.called += (called - bound).as_secs_f64();
            total.dropped += (dropped - called).as_secs_f64();
        }
    }
    let per_call = |seconds: f64| seconds * 1e6 / n as f64;
    ReadPhases {
        made: per_call(total.made),
        bound: per_call(total.bound),
        called: per_call(total.called),
        dropped: per_call(total.dropped),
    }
}

fn cold_start_ms(state: &Path, extra: &[&str], runs: usize) -> f64 {
    let exe = env!("CARGO_BIN_EXE_mfp-host");
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let out = Command::new(exe)
                .arg("--state-dir")
                .arg(state)
                .args(extra)
                .args(["settings", "show"])
                .output()
                .unwrap();
            assert!(out.status.success());
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(samples)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; there are no test cases here.
    }
    println!(
        "component size: {} bytes ({:.1} KiB; bar 256 KiB)",
        EMBEDDED.len(),
        EMBEDDED.len() as f64 / 1024.0
    );
    let info = mfp_host::runtime::inspect(EMBEDDED).unwrap();
    println!("component imports ({}):", info.imports.len());
    for import in &info.imports {
        println!("  {import}");
    }

    let n = 500;
    let wasm_dir = tempfile::tempdir().unwrap();
    let device = Device::open(DeviceOptions::new(wasm_dir.path())).unwrap();
    let native_dir = tempfile::tempdir().unwrap();
    let native = NativeStore(DurableStore::open(native_dir.path()).unwrap());

    // Alternating rounds, wasmtime then native, each the mean of one batch of calls;
    // the figures are the medians of the rounds.
    let rounds = 7;
    let (mut wasm_apply, mut native_apply) = (Vec::new(), Vec::new());
    let (mut wasm_read, mut native_read) = (Vec::new(), Vec::new());
    let mut empty_call = Vec::new();
    let floor_dir = tempfile::tempdir().unwrap();
    let floor = Runtime::new(
        EMBEDDED,
        DurableStore::open(floor_dir.path()).unwrap(),
        RuntimeOptions::default(),
    )
    .unwrap();
    // The phase split reads stored settings, as the device's reads do.
    floor
        .call(CallGrants::default(), |dev, store| {
            let change = SettingChange {
                key: "receive-port".to_owned(),
                value: "2001".to_owned(),
            };
            dev.panel(store)?
                .call_apply(store, Origin::WebPanel, &[change], 1_750_000_000)
        })
        .unwrap()
        .unwrap();
    let mut phases = Vec::new();
    for _ in 0..rounds {
        wasm_apply.push(time(n, |i| {
            device.apply(Origin::WebPanel, &change(i)).unwrap();
        }));
        native_apply.push(time(n, |i| {
            mfp_smtp_oauth::panel::apply(
                &native,
                mfp_smtp_oauth::settings::Origin::WebPanel,
                &change(i),
                1_750_000_000,
            )
            .unwrap();
        }));
        wasm_read.push(time(n * 4, |_| {
            device.settings().unwrap();
        }));
        native_read.push(time(n * 4, |_| {
            mfp_smtp_oauth::panel::settings(&native).unwrap();
        }));
        empty_call.push(time(n * 4, |_| {
            floor.call(CallGrants::default(), |_, _| Ok(())).unwrap();
        }));
        phases.push(read_phases(&floor, n * 4));
    }
    let empty_call = median(empty_call);
    let (wasm_apply, native_apply) = (median(wasm_apply), median(native_apply));
    let (wasm_read, native_read) = (median(wasm_read), median(native_read));
    println!(
        "apply + commit (fsync), median of {rounds} alternating rounds: wasmtime {wasm_apply:.1} µs, native {native_apply:.1} µs, ratio {:.2}x (target <= 2x)",
        wasm_apply / native_apply
    );
    println!(
        "settings read (no commit), median of {rounds} alternating rounds: wasmtime {wasm_read:.1} µs, native {native_read:.1} µs, ratio {:.2}x (target <= 3x; a fresh pooled instance per call included)",
        wasm_read / native_read
    );

    println!(
        "a fresh instance made and dropped, nothing called (the floor under every call): {empty_call:.1} µs, {:.2}x the native read",
        empty_call / native_read
    );

    let phase = |pick: fn(&ReadPhases) -> f64| median(phases.iter().map(pick).collect());
    let (made, bound, called, dropped) = (
        phase(|p| p.made),
        phase(|p| p.bound),
        phase(|p| p.called),
        phase(|p| p.dropped),
    );
    println!(
        "settings read by phase (medians of {rounds} rounds): instance made {made:.1} µs, panel bound {bound:.1} µs, called {called:.1} µs (guest code, store reads, answer lifted), instance dropped {dropped:.1} µs"
    );
    println!(
        "  wasmtime's own part (made + bound + dropped, no guest code): {:.1} µs, {:.2}x the native read",
        made + bound + dropped,
        (made + bound + dropped) / native_read
    );

    let runs = 7;
    let cold_dir = tempfile::tempdir().unwrap();
    let uncached = cold_start_ms(cold_dir.path(), &["--no-compile-cache"], runs);
    cold_start_ms(cold_dir.path(), &[], 1); // fills the cache
    let cached = cold_start_ms(cold_dir.path(), &[], runs);
    println!(
        "cold start to first `settings show` answer (median of {runs}): {uncached:.1} ms compiling, {cached:.1} ms from the cache"
    );
}
