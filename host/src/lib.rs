//! `mfp-host`: the device runtime for the mfp-smtp-oauth component.
//!
//! Laid out by role, each folder importing only the ones above it in this list:
//!
//! - [`runtime`]: wasmtime — the engine, the sandbox, the compile cache, loading the
//!   component, and one bounded, fresh instance per call;
//! - [`capabilities`]: what the component is granted — the store (with sealing), the
//!   network and the attachments of a send;
//! - [`device`]: the typed device API, one method per component export;
//! - [`frontend`]: the vocabulary both front ends share — serde views of the WIT records,
//!   one classification of failures, the send loop;
//! - [`relay`]: the SMTP relay's listener for nearby devices, which both front ends run;
//! - [`cli`] and [`serve`]: the two front ends, side by side; neither imports the other;
//! - [`state_dir`]: the trust checks every part that keeps files in the state dir shares.
//!
//! The host makes no decision of its own: every rule lives in the component.

pub mod bindings;
pub mod capabilities;
pub mod cli;
pub mod device;
pub mod frontend;
pub mod relay;
pub mod runtime;
pub mod serve;
pub mod state_dir;

pub use device::{Device, DeviceError, DeviceOptions};
