//! The vocabulary both front ends share, so the command line and the web API say the same
//! thing in the same words: serde views of the WIT records they print ([`views`]), one
//! classification of failures into code, message, remedy, exit status and HTTP status
//! ([`failure`]), the flags that open a device ([`options`]), what people type (setting
//! changes, the walk-up user of a send: [`input`]) and the send loop that obeys the
//! component's retry answer ([`send_loop`]), and the device's TLS certificate, which the
//! panel serves HTTPS with and the relay answers STARTTLS with ([`certificate`]).
//!
//! Nothing here decides a setting, a retry or a remedy: the component does. This module
//! only maps its answers mechanically, one view per record, as the browser preview does
//! in JavaScript.

pub mod certificate;
pub mod failure;
pub mod input;
pub mod options;
pub mod send_loop;
pub mod views;

pub use failure::{Failure, FailureKind};

use crate::bindings::types::Remedy;

/// Which front end shows a remedy: the component words each remedy for both, and each
/// front end prints its own words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The web panel and its JSON API: buttons, fields and pages.
    WebPanel,
    /// `mfp-host`'s subcommands: commands, setting keys and flags.
    CommandLine,
}

impl Surface {
    /// `remedy` in this surface's words.
    pub fn words(self, remedy: &Remedy) -> &str {
        match self {
            Self::WebPanel => &remedy.web_panel,
            Self::CommandLine => &remedy.command_line,
        }
    }
}

/// A remedy the host words itself, the same for every surface (about the device's process,
/// its flags or its files, which both surfaces name alike).
impl From<&str> for Remedy {
    fn from(text: &str) -> Self {
        Self::from(text.to_owned())
    }
}

impl From<String> for Remedy {
    fn from(text: String) -> Self {
        Self {
            web_panel: text.clone(),
            command_line: text,
        }
    }
}
