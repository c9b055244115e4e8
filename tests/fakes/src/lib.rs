//! Stand-ins for the two Microsoft services the printer talks to: the identity platform
//! (Entra ID, device code flow, `login.microsoftonline.com`) and Exchange Online SMTP
//! (`smtp.office365.com:587`).
//!
//! They are product code, written once: the component tests run them, `mfp-host serve
//! --demo` embeds them and the browser preview runs them in the page, so every surface
//! answers with the same bytes. Hence the split:
//!
//! - a sans-IO core (this crate without features, also for `wasm32-unknown-unknown`):
//!   [`identity::handle_http`] turns an HTTP request into a response, and
//!   [`exchange::SmtpSession`] turns SMTP bytes into replies. Time is always a parameter
//!   (`now`, the time since the Unix epoch), never read from a clock, so tests can jump
//!   past a code's expiry and the browser can use its own clock;
//! - a [`World`] shared by both, holding the [`Scenario`], the accounts, the tokens the
//!   identity fake issued (which the SMTP fake checks XOAUTH2 against) and the mailbox of
//!   received messages;
//! - with the `net` feature, thin wrappers (`net`) that serve the core over loopback TCP
//!   with TLS from a test CA generated at run time.
//!
//! Replies copy Microsoft's wording as published or observed (see DESIGN.md, "Protocol
//! facts"); the scenario table [`Case`] names every failure the product must diagnose,
//! and [`catalogue`] says what a device must make of each. [`ReceivedMessage::decoded`]
//! reads a received message back as a mailbox shows it.

pub mod clock;
pub mod exchange;
pub mod http;
pub mod identity;
mod random;
pub mod scenario;
pub mod world;

#[cfg(feature = "net")]
pub mod net;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use exchange::{SmtpOutput, SmtpSession};
pub use http::HttpResponse;
pub use identity::handle_http;
pub use scenario::{
    Aadsts, Approval, Case, IdTokenFlaw, Run, Scenario, ScenarioCase, SendAsReply, SignInOutcome,
    SlowDown, SmtpCase, approval_words, catalogue,
};
pub use world::{Account, ApprovalError, ReceivedMessage, Settings, World};

/// The tenant id Microsoft uses for every personal Microsoft account (Outlook.com).
pub const PERSONAL_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The scopes the device asks for (DESIGN.md, "Protocol facts").
pub const DEVICE_SCOPE: &str =
    "https://outlook.office.com/SMTP.Send offline_access openid profile email";

/// The scope that lets a token authenticate SMTP AUTH XOAUTH2 at Exchange Online.
pub const SMTP_SEND_SCOPE: &str = "https://outlook.office.com/SMTP.Send";
