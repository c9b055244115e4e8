//! cargo-fuzz entry point; the body, with its invariants, is `mfp_fuzz::smtp_reply`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfp_fuzz::smtp_reply::run(data));
