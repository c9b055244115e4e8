//! SMTP submission to Exchange Online (`smtp.office365.com:587`), sans-IO: the
//! [`Session`] never touches a socket. The caller reads and writes the connection and
//! performs the TLS handshake when told to; the session decides every byte that is sent
//! and what every reply means. So each protocol path is unit-tested with byte strings.
//!
//! The session goes greeting → `EHLO` → `STARTTLS` → (TLS) → `EHLO` → `AUTH XOAUTH2` →
//! `MAIL FROM` → `RCPT TO` (each recipient) → `DATA` → the message → `QUIT`. It never
//! sends `AUTH` before TLS and never falls back to plaintext: a server that does not offer
//! STARTTLS, or refuses it, ends the session with a typed error. Every refusal by the
//! server is an [`SmtpError`] holding the reply (code, enhanced status code, text) and the
//! [`Stage`] it came at, so a diagnosis can map `535 5.7.139` or `554 5.2.252` to a remedy.
//!
//! # Driving a session
//!
//! One loop, one `match`. [`Session::next_event`] first hands out bytes to write, then
//! says what the session waits for:
//!
//! ```no_run
//! use mfp_smtp_oauth::smtp::{Envelope, Event, Report, Session, SessionConfig, SmtpError};
//! use mfp_smtp_oauth::xoauth2::Credentials;
//!
//! # trait Connection {
//! #     fn write(&mut self, bytes: &[u8]);
//! #     fn read(&mut self) -> Vec<u8>; // empty: the server closed the connection
//! #     fn start_tls(&mut self, server_name: &str);
//! # }
//! fn send(
//!     conn: &mut impl Connection,
//!     credentials: Credentials,
//!     message: &mut impl Iterator<Item = Vec<u8>>,
//! ) -> Result<Report, SmtpError> {
//!     let envelope = Envelope {
//!         from: "scanner@contoso.com".into(),
//!         to: vec!["alice@contoso.com".into()],
//!         size: None,
//!     };
//!     let config = SessionConfig::new("mfp-0042.contoso.local");
//!     let mut session = Session::new(config, credentials, envelope)?; // refuses bad input
//!     loop {
//!         match session.next_event()? {
//!             Event::Write(bytes) => conn.write(&bytes),
//!             Event::Read => match conn.read() {
//!                 bytes if bytes.is_empty() => session.connection_closed(),
//!                 bytes => session.feed(&bytes),
//!             },
//!             Event::StartTls => {
//!                 conn.start_tls("smtp.office365.com"); // verify the certificate!
//!                 session.tls_established()?;
//!             }
//!             Event::SendBody => match message.next() {
//!                 Some(chunk) => session.write_body(&chunk)?,
//!                 None => session.finish_body()?,
//!             },
//!             Event::Sent(report) => return Ok(report), // QUIT was already written
//!         }
//!     }
//! }
//! ```
//!
//! A failure is returned by `next_event` after any last bytes (a polite `QUIT`) were
//! handed out, so the loop above writes them before it stops.

mod command;
mod data;
mod extensions;
mod reply;
mod session;
pub mod timeouts;

pub use command::{
    FALLBACK_EHLO_NAME, MAX_ADDRESS_LEN, MAX_EHLO_NAME_LEN, check_address, check_ehlo_name,
    ehlo_name_or_fallback,
};
pub use data::DotStuffer;
pub use extensions::EhloExtensions;
pub use reply::{EnhancedStatus, MAX_LINE_LEN, MAX_REPLY_LINES, Reply, ReplyError, ReplyParser};
pub use session::{Envelope, Event, RecipientPolicy, Refusal, Report, Session, SessionConfig};
pub use timeouts::Timeouts;

use crate::xoauth2::{ErrorChallenge, Xoauth2Error};

/// Where in the session something happened: which command the server was answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The server's `220` greeting after connecting.
    Greeting,
    /// `EHLO`, before or after TLS.
    Ehlo,
    /// `STARTTLS` and the TLS handshake that follows it.
    StartTls,
    /// `AUTH XOAUTH2`.
    Auth,
    /// `MAIL FROM`: the sender.
    MailFrom,
    /// `RCPT TO`: the recipients.
    RcptTo,
    /// `DATA`, before the message is sent.
    Data,
    /// The message itself and the server's verdict on it after `CRLF.CRLF`.
    Message,
}

impl Stage {
    /// A stable lower-case name, e.g. for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Ehlo => "ehlo",
            Stage::StartTls => "starttls",
            Stage::Auth => "auth",
            Stage::MailFrom => "mail-from",
            Stage::RcptTo => "rcpt-to",
            Stage::Data => "data",
            Stage::Message => "message",
        }
    }

    /// What was going on, for messages.
    fn describe(self) -> &'static str {
        match self {
            Stage::Greeting => "the connection",
            Stage::Ehlo => "the greeting (EHLO)",
            Stage::StartTls => "the switch to TLS (STARTTLS)",
            Stage::Auth => "the sign-in (AUTH XOAUTH2)",
            Stage::MailFrom => "the sender (MAIL FROM)",
            Stage::RcptTo => "the recipients (RCPT TO)",
            Stage::Data => "the start of the message (DATA)",
            Stage::Message => "the message",
        }
    }
}

/// Why a send failed. Each variant has a stable [`code`](SmtpError::code) and a
/// [`remedy`](SmtpError::remedy); none holds a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// An address would not make a well-formed command; refused before anything is sent.
    #[error("the address in {field} {what}")]
    InvalidAddress { field: String, what: &'static str },
    /// The device's EHLO name would not make a well-formed command.
    #[error("the device's host name for EHLO {what}")]
    InvalidEhloName { what: &'static str },
    /// The envelope has no recipient.
    #[error("the message has no recipient")]
    NoRecipients,
    /// The credentials cannot be framed for XOAUTH2, or the exchange went wrong.
    #[error(transparent)]
    Credentials(#[from] Xoauth2Error),
    /// The server does not offer STARTTLS: credentials are never sent without TLS.
    #[error(
        "the SMTP server does not offer STARTTLS, and the device never sends credentials without TLS"
    )]
    StartTlsNotOffered,
    /// After TLS, the server does not offer the XOAUTH2 mechanism.
    #[error("the SMTP server does not offer XOAUTH2 sign-in (it offers: {})", display_list(.offered))]
    Xoauth2NotOffered { offered: Vec<String> },
    /// An address is not ASCII and the server does not offer SMTPUTF8.
    #[error(
        "the address in {field} is internationalized, and the SMTP server does not offer SMTPUTF8"
    )]
    SmtpUtf8NotOffered { field: String },
    /// The message is larger than the limit the server declared with SIZE.
    #[error("the message ({size} bytes) is larger than the SMTP server accepts ({limit} bytes)")]
    MessageTooLarge { size: u64, limit: u64 },
    /// The server refused a command. `auth_challenge` holds the decoded `334` error
    /// challenge when the server sent one before refusing the sign-in.
    #[error("the SMTP server refused {}: {reply}", .stage.describe())]
    Rejected {
        stage: Stage,
        reply: Reply,
        auth_challenge: Option<ErrorChallenge>,
    },
    /// Recipients were refused: all of them, or any under [`RecipientPolicy::RequireAll`].
    #[error("the SMTP server refused {}", describe_refusals(.refused))]
    RecipientsRefused { refused: Vec<Refusal> },
    /// The server's bytes are not SMTP, break a limit, or came when none were expected.
    #[error("the SMTP server broke the protocol during {}: {what}", .stage.describe())]
    Protocol { stage: Stage, what: String },
    /// The server closed the connection before the session was over.
    #[error("the SMTP server closed the connection during {}", .stage.describe())]
    ConnectionClosed { stage: Stage },
    /// The driver called a method the session was not ready for (a bug in the driver).
    #[error("{call} was called during {}, when the session did not ask for it", .stage.describe())]
    OutOfOrder { call: &'static str, stage: Stage },
}

/// `500`–`504`, or an enhanced code `5.5.x`: the server could not parse a command (RFC
/// 5321 §4.2.4, RFC 3463 "protocol status"), e.g. Dovecot's `500 5.5.2 Line too long`.
/// Whatever the stage, this is about the device's command, never the account.
fn is_syntax_refusal(reply: &Reply) -> bool {
    (500..=504).contains(&reply.code)
        || reply
            .enhanced
            .is_some_and(|e| e.class == 5 && e.subject == 5)
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

fn describe_refusals(refused: &[Refusal]) -> String {
    let each: Vec<String> = refused
        .iter()
        .map(|r| format!("{} ({})", r.recipient, r.reply))
        .collect();
    let noun = if refused.len() == 1 {
        "recipient"
    } else {
        "recipients"
    };
    format!("{noun} {}", each.join(", "))
}

impl SmtpError {
    /// The stable machine code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            SmtpError::InvalidAddress { .. } => "smtp-invalid-address",
            SmtpError::InvalidEhloName { .. } => "smtp-invalid-ehlo-name",
            SmtpError::NoRecipients => "smtp-no-recipients",
            SmtpError::Credentials(err) => err.code(),
            SmtpError::StartTlsNotOffered => "smtp-starttls-not-offered",
            SmtpError::Xoauth2NotOffered { .. } => "smtp-xoauth2-not-offered",
            SmtpError::SmtpUtf8NotOffered { .. } => "smtp-smtputf8-not-offered",
            SmtpError::MessageTooLarge { .. } => "smtp-message-too-large",
            SmtpError::Rejected { reply, .. } if reply.code == 421 => "smtp-service-unavailable",
            SmtpError::Rejected { reply, .. } if is_syntax_refusal(reply) => "smtp-command-refused",
            SmtpError::Rejected { stage, reply, .. } => match stage {
                Stage::Greeting => "smtp-connection-refused",
                Stage::Ehlo => "smtp-ehlo-refused",
                Stage::StartTls => "smtp-starttls-refused",
                Stage::Auth => "smtp-auth-failed",
                Stage::MailFrom => "smtp-sender-refused",
                Stage::RcptTo if reply.is_transient() => "smtp-recipient-deferred",
                Stage::RcptTo => "smtp-recipients-refused",
                Stage::Data => "smtp-data-refused",
                Stage::Message => "smtp-message-refused",
            },
            SmtpError::RecipientsRefused { .. } => "smtp-recipients-refused",
            SmtpError::Protocol { .. } => "smtp-protocol-error",
            SmtpError::ConnectionClosed { .. } => "smtp-connection-closed",
            SmtpError::OutOfOrder { .. } => "smtp-out-of-order",
        }
    }

    /// A first remedy. The diagnosis module may know better from the enhanced status code
    /// (see [`SmtpError::reply`]).
    pub fn remedy(&self) -> String {
        const SERVER: &str = "Exchange Online/Outlook.com uses smtp.office365.com, port 587";
        match self {
            SmtpError::InvalidAddress { .. } => "Correct the address: one mailbox such as name@example.com, without spaces, angle brackets or control characters.".into(),
            SmtpError::InvalidEhloName { .. } => "Correct the device's host name in its network settings: letters, digits, dots and hyphens only.".into(),
            SmtpError::NoRecipients => "Enter at least one recipient address.".into(),
            SmtpError::Credentials(err) => err.remedy().into(),
            SmtpError::StartTlsNotOffered => format!("Check the SMTP server and send port ({SERVER}). If they are right, a firewall or proxy between the device and the server may be removing STARTTLS."),
            SmtpError::Xoauth2NotOffered { .. } => format!("Check the SMTP server and send port ({SERVER}); this server does not accept OAuth sign-in."),
            SmtpError::SmtpUtf8NotOffered { .. } => "Use an address made of ASCII characters only.".into(),
            SmtpError::MessageTooLarge { .. } => "Scan fewer pages, at a lower resolution or in black and white, or split the job into several emails.".into(),
            SmtpError::Rejected { reply, .. } if reply.code == 421 => "The server is closing connections for now (a temporary condition on its side); the device sends again later. If it persists for hours, check Exchange Online's service health.".into(),
            SmtpError::Rejected { reply, .. } if is_syntax_refusal(reply) => format!("The server refused a command of the device as malformed (for example a line too long for a strict server); this is no sign-in problem. Check the SMTP server and send port ({SERVER}); if they are right, report the server's reply."),
            SmtpError::Rejected { stage, reply, .. } if reply.is_transient() => format!("The server reports a temporary problem with {}; try again in a few minutes.", stage.describe()),
            SmtpError::Rejected { stage, .. } => match stage {
                Stage::Auth => "Sign in again with [Open Authentication Page]; check that SMTP AUTH is enabled for the mailbox and the tenant.".into(),
                Stage::MailFrom | Stage::Message => "Check that the Device Email Address is the signed-in account (its user principal name) or an address it may send as.".into(),
                _ => format!("Check the SMTP server and send port ({SERVER}), then try again."),
            },
            SmtpError::RecipientsRefused { .. } => "Check the refused recipient addresses.".into(),
            SmtpError::Protocol { .. } => format!("Check the SMTP server and send port ({SERVER}); something other than an SMTP server may be answering."),
            SmtpError::ConnectionClosed { .. } => "Try again. Exchange Online allows 3 connections at a time per mailbox; if other devices send through the same account, try later.".into(),
            SmtpError::OutOfOrder { .. } => "This is a defect of the device software; report it.".into(),
        }
    }

    /// Where it happened, when the server was involved.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            SmtpError::Rejected { stage, .. }
            | SmtpError::Protocol { stage, .. }
            | SmtpError::ConnectionClosed { stage }
            | SmtpError::OutOfOrder { stage, .. } => Some(*stage),
            SmtpError::StartTlsNotOffered => Some(Stage::Ehlo),
            SmtpError::Xoauth2NotOffered { .. }
            | SmtpError::SmtpUtf8NotOffered { .. }
            | SmtpError::MessageTooLarge { .. } => Some(Stage::Ehlo),
            SmtpError::RecipientsRefused { .. } => Some(Stage::RcptTo),
            SmtpError::Credentials(Xoauth2Error::UnexpectedChallenge) => Some(Stage::Auth),
            _ => None,
        }
    }

    /// The server's reply, for a refusal of one command.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}
