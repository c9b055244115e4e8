//! cargo-fuzz entry point; the body, with its invariants, is `mfp_fuzz::xoauth2`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfp_fuzz::xoauth2::run(data));
