//! `mfp-host`: the device runtime for the mfp-smtp-oauth component.
//!
//! It loads the component with wasmtime, grants it durable storage ([`store`]) and
//! nothing else of the system ([`sandbox`]), bounds every call in time and memory
//! ([`runtime`]), caches the compiled component ([`cache`]) and offers the panels as a
//! typed API ([`device`]) and a command line ([`cli`]). It makes no decision of its own:
//! every rule lives in the component.

pub mod attachments;
pub mod cache;
pub mod cli;
mod cli_auth;
mod cli_send;
pub mod component;
pub mod device;
pub mod net;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod serve;
pub mod store;

pub use device::{Device, DeviceError, DeviceOptions};

/// Types generated from `wit/` for the host side.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "device-panel",
        path: "../wit",
        additional_derives: [PartialEq],
        with: {
            "mfp:smtp-oauth/net.connection": crate::net::SmtpConnection,
        },
    });

    pub use exports::mfp::smtp_oauth::{mailer, panel, signin};
    pub use mfp::smtp_oauth::{attachments, net, store, types};
}
