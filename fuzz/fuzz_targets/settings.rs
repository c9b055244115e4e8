//! cargo-fuzz entry point; the body, with its invariants, is `mfp_fuzz::settings`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfp_fuzz::settings::run(data));
