//! The vocabulary both front ends share, so the command line and the web API say the same
//! thing in the same words: serde views of the WIT records they print ([`views`]), one
//! classification of failures into code, message, remedy, exit status and HTTP status
//! ([`failure`]), the flags that open a device ([`options`]), what people type (setting
//! changes, the walk-up user of a send: [`input`]) and the send loop that obeys the
//! component's retry answer ([`send_loop`]).
//!
//! Nothing here decides a setting, a retry or a remedy: the component does. This module
//! only maps its answers mechanically, one view per record, as the browser preview does
//! in JavaScript.

pub mod failure;
pub mod input;
pub mod options;
pub mod send_loop;
pub mod views;

pub use failure::{Failure, FailureKind};
