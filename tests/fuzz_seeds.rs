//! The fuzz targets' smoke run on the stable toolchain: every seed of
//! `fuzz/seeds/<target>/`, and a fixed set of mutants of each, through the target's body
//! (`fuzz/src/`, included here as a module), with the invariants it asserts. Keeps the
//! targets compiling and their invariants true between fuzzing sessions, which need
//! nightly and cargo-fuzz (`scripts/fuzz`).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::path::{Path, PathBuf};

/// Mutants run per seed: enough to leave the seeds' exact paths, cheap enough for every
/// `./scripts/test` (well under a second per target in release).
const MUTANTS_PER_SEED: u32 = 200;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable seed").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("a readable seed"))
        })
        .collect();
    seeds.sort();
    seeds
}

/// A deterministic generator (SplitMix64), so a failing mutant fails on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four of libFuzzer's simplest mutations: flip a bit, set a byte to an
/// interesting value, insert or delete a byte, duplicate or cut a run.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    const INTERESTING: [u8; 10] = [0, b'\r', b'\n', b'.', b' ', b'"', b'=', 0x7f, 0xc3, 0xff];
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < data.len() => {
                data.remove(at);
            }
            _ => {
                let end = (at + rng.below(64)).min(data.len());
                let run = data[at..end].to_vec();
                if rng.below(2) == 0 {
                    data.splice(at..at, run);
                } else {
                    data.drain(at..end);
                }
            }
        }
    }
    data
}

fn run_target(name: &str) {
    let (_, body) = fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let seeds = seeds(name);
    assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ holds no seed");
    for (seed_name, seed) in &seeds {
        // A panic names the input: the seed, or the mutant's number (rerun to get it).
        eprintln!("{name}: seed {seed_name}");
        body(seed);
        let mut rng = Rng(seed.len() as u64 ^ 0x5eed);
        for i in 0..MUTANTS_PER_SEED {
            let mutant = mutate(seed, &mut rng);
            if std::panic::catch_unwind(|| body(&mutant)).is_err() {
                panic!("{name}: mutant {i} of seed {seed_name} failed: {mutant:?}");
            }
        }
    }
}

macro_rules! targets {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                run_target(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_tested_here_and_has_a_cargo_fuzz_entry() {
            let here = [$(stringify!($name)),*];
            for (name, _) in fuzz::TARGETS {
                assert!(here.contains(name), "{name} has no smoke test");
                let entry = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
                assert!(entry.exists(), "{} is missing", entry.display());
            }
            assert_eq!(here.len(), fuzz::TARGETS.len());
        }
    };
}

targets! {
    smtp_reply smtp_session device_code token_reply id_token
    mime_headers xoauth2 fakes_smtp fakes_http fakes_mime settings
}
