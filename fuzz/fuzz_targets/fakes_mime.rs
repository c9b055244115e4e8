//! cargo-fuzz entry point; the body, with its invariants, is `mfp_fuzz::fakes_mime`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mfp_fuzz::fakes_mime::run(data));
