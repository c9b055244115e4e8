//! The bodies of the fuzz targets, one module per parser that reads outside input. Each
//! `run` takes libFuzzer's bytes and asserts the invariants of what it parses (a panic is
//! the finding), not only that it returns.
//!
//! Plain functions with no dependency on libFuzzer, so the same bodies run twice: under
//! `cargo +nightly fuzz run <target>` (`fuzz_targets/`), and on the stable toolchain in
//! `tests/fuzz_seeds.rs`, which includes this file with `#[path]` and runs every seed
//! of `fuzz/seeds/<target>/` through its target on every `./scripts/test`.
//!
//! Structured inputs are fields separated by the byte `0xFF`, which never occurs in UTF-8
//! text, so seeds stay readable and the fuzzer can still put any text in any field.

pub mod device_code;
pub mod fakes_http;
pub mod fakes_mime;
pub mod fakes_smtp;
pub mod id_token;
pub mod mime_headers;
pub mod settings;
pub mod smtp_reply;
pub mod smtp_session;
pub mod token_reply;
pub mod xoauth2;

mod support;

/// A target's body: one input, checked by assertions.
pub type Body = fn(&[u8]);

/// Every target by name: the names of `fuzz_targets/*.rs` and of `seeds/<target>/`.
pub const TARGETS: &[(&str, Body)] = &[
    ("smtp_reply", smtp_reply::run),
    ("smtp_session", smtp_session::run),
    ("device_code", device_code::run),
    ("token_reply", token_reply::run),
    ("id_token", id_token::run),
    ("mime_headers", mime_headers::run),
    ("xoauth2", xoauth2::run),
    ("fakes_smtp", fakes_smtp::run),
    ("fakes_http", fakes_http::run),
    ("fakes_mime", fakes_mime::run),
    ("settings", settings::run),
];
