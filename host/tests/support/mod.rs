//! Helpers shared by the host's integration tests (and, through `#[path]`, its benches).
//! Each test file uses a part of them.
#![allow(dead_code)]

pub mod client;
pub mod http;
pub mod server;
pub mod tls;
