//! The services (`auth`, `mailer`) against the Microsoft stand-ins of `mfp-fakes`, natively:
//! no network, no wasmtime. The adapters in `rig` implement the host capabilities over the
//! fakes' sans-IO cores, the clock is a number the tests set, and every diagnosis a test
//! sees is checked for leaked secrets (tokens, device codes).
//!
//! Each test reads as a specification of one behaviour (DESIGN.md S6–S10, "Protocol facts").

mod history;
mod journal;
mod relay;
mod remedies;
mod rig;
mod secrets;
mod send;
mod signin;
mod tokens;
