//! The client state machine of one submission: one message, one connection.

use std::fmt;

use super::command::{self, check_address, check_ehlo_name};
use super::data::DotStuffer;
use super::extensions::EhloExtensions;
use super::reply::{Reply, ReplyParser};
use super::timeouts::{self, Timeouts};
use super::{SmtpError, Stage};
use crate::xoauth2::{self, AuthMode, Credentials, Exchange};

/// What happens when some recipients are refused and others accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecipientPolicy {
    /// Send to nobody: the session fails with every refusal. A scan that reaches only
    /// part of its recipients is easy to miss on a printer.
    #[default]
    RequireAll,
    /// Send to the accepted recipients; the refusals are listed in the [`Report`].
    DeliverToAccepted,
}

/// How the session introduces itself and authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// The device's name in `EHLO` (its host name, or an address literal).
    pub ehlo_name: String,
    /// Where the XOAUTH2 response goes: on the AUTH line when it fits in 512 octets,
    /// after the `334` prompt otherwise (always, with Microsoft's tokens).
    pub auth_mode: AuthMode,
    pub recipient_policy: RecipientPolicy,
    /// How long each stage is waited for (RFC 5321 §4.5.3.2; shortened only in tests).
    pub timeouts: Timeouts,
}

impl SessionConfig {
    /// Defaults for Exchange Online: initial response, every recipient required.
    pub fn new(ehlo_name: impl Into<String>) -> Self {
        Self {
            ehlo_name: ehlo_name.into(),
            auth_mode: AuthMode::InitialResponse,
            timeouts: Timeouts::RFC_5321,
            recipient_policy: RecipientPolicy::RequireAll,
        }
    }
}

/// Who the message is from and to (the SMTP envelope, not the headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The sender: the Device Email Address.
    pub from: String,
    /// The recipients, in the order they are given to the server.
    pub to: Vec<String>,
    /// The size of the message in bytes, when known: announced with `SIZE=` and checked
    /// against the server's limit before the sign-in.
    pub size: Option<u64>,
}

/// A recipient the server refused, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub recipient: String,
    pub reply: Reply,
}

/// The outcome of a message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Recipients the server accepted.
    pub accepted: Vec<String>,
    /// Recipients the server refused (only under [`RecipientPolicy::DeliverToAccepted`]).
    pub refused: Vec<Refusal>,
    /// The server's reply to the message, e.g. `250 2.0.0 OK <id> [Hostname=…]`.
    pub reply: Reply,
}

/// What the driver must do next; see the module docs for the loop. `Debug` shows the
/// length of a write, never its bytes (the AUTH line holds the token).
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// Write these bytes to the connection. They may hold the access token: never log them.
    Write(Vec<u8>),
    /// Read from the connection and pass what arrived to [`Session::feed`] (or call
    /// [`Session::connection_closed`] if the server closed it).
    Read,
    /// The server agreed to STARTTLS: perform the TLS handshake on the connection,
    /// verifying the server's certificate, then call [`Session::tls_established`].
    StartTls,
    /// The server waits for the message: pass the next chunk to [`Session::write_body`],
    /// or call [`Session::finish_body`] after the last one.
    SendBody,
    /// The server accepted the message; `QUIT` was handed out before this event. Close
    /// the connection (reading the `221` is optional).
    Sent(Report),
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Write(bytes) => write!(f, "Write(<{} bytes>)", bytes.len()),
            Event::Read => f.write_str("Read"),
            Event::StartTls => f.write_str("StartTls"),
            Event::SendBody => f.write_str("SendBody"),
            Event::Sent(report) => f.debug_tuple("Sent").field(report).finish(),
        }
    }
}

/// Where the session stands. Private: the driver sees [`Event`]s.
enum State {
    Greeting,
    Ehlo { tls: bool },
    StartTls,
    TlsHandshake,
    Auth(Exchange),
    MailFrom,
    RcptTo { next: usize },
    Data,
    Body(DotStuffer),
    Message,
    Sent(Report),
    Failed(SmtpError),
}

/// One SMTP submission, sans-IO. Build it with [`Session::new`], then drive it with
/// [`Session::next_event`].
pub struct Session {
    ehlo_name: String,
    auth_mode: AuthMode,
    recipient_policy: RecipientPolicy,
    timeouts: Timeouts,
    envelope: Envelope,
    /// Held until the sign-in starts, then moved into the exchange and dropped after it.
    credentials: Option<Credentials>,
    state: State,
    parser: ReplyParser,
    extensions: EhloExtensions,
    /// Bytes waiting to be written; may hold the access token.
    output: Vec<u8>,
    accepted: Vec<String>,
    refused: Vec<Refusal>,
}

impl Session {
    /// Checks every input that ends up in a command (EHLO name, addresses) and refuses
    /// the session, typed, before anything is sent.
    pub fn new(
        config: SessionConfig,
        credentials: Credentials,
        envelope: Envelope,
    ) -> Result<Self, SmtpError> {
        check_ehlo_name(&config.ehlo_name)?;
        check_address("from", &envelope.from)?;
        if envelope.to.is_empty() {
            return Err(SmtpError::NoRecipients);
        }
        for (i, to) in envelope.to.iter().enumerate() {
            check_address(&format!("to[{i}]"), to)?;
        }
        Ok(Self {
            ehlo_name: config.ehlo_name,
            auth_mode: config.auth_mode,
            recipient_policy: config.recipient_policy,
            timeouts: config.timeouts,
            envelope,
            credentials: Some(credentials),
            state: State::Greeting,
            parser: ReplyParser::default(),
            extensions: EhloExtensions::default(),
            output: Vec::new(),
            accepted: Vec::new(),
            refused: Vec::new(),
        })
    }

    /// What to do next. Pending bytes come first, as [`Event::Write`]; a failure is
    /// returned once they are out, and again on every later call.
    pub fn next_event(&mut self) -> Result<Event, SmtpError> {
        if !self.output.is_empty() {
            return Ok(Event::Write(std::mem::take(&mut self.output)));
        }
        Ok(match &self.state {
            State::Failed(err) => return Err(err.clone()),
            State::Sent(report) => Event::Sent(report.clone()),
            State::TlsHandshake => Event::StartTls,
            State::Body(_) => Event::SendBody,
            _ => Event::Read,
        })
    }

    /// Takes bytes read from the connection, in pieces of any size. Replies are handled
    /// as they complete; a bad one fails the session (see [`Session::next_event`]).
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                State::Sent(_) | State::Failed(_) => return, // e.g. the 221 to QUIT
                State::TlsHandshake => {
                    // Bytes after the 220 to STARTTLS, before TLS: an attacker's injected
                    // replies would be taken for the server's (RFC 3207 §5).
                    return self.fail(
                        SmtpError::Protocol {
                            stage: Stage::StartTls,
                            what: "it sent data after agreeing to STARTTLS, before TLS started"
                                .into(),
                        },
                        false,
                    );
                }
                State::Body(_) => {
                    return self.fail(
                        SmtpError::Protocol {
                            stage: Stage::Message,
                            what: "it sent a reply while the message was being sent".into(),
                        },
                        false,
                    );
                }
                _ => {}
            }
            let (consumed, result) = self.parser.parse(input);
            input = &input[consumed..];
            match result {
                Ok(None) => {}
                Ok(Some(reply)) => self.on_reply(reply),
                Err(err) => {
                    let stage = self.stage();
                    return self.fail(
                        SmtpError::Protocol {
                            stage,
                            what: err.to_string(),
                        },
                        false,
                    );
                }
            }
        }
    }

    /// The driver finished the TLS handshake after [`Event::StartTls`]. Everything
    /// learned before TLS is forgotten (RFC 3207 §4.2) and `EHLO` is sent again.
    pub fn tls_established(&mut self) -> Result<(), SmtpError> {
        if !matches!(self.state, State::TlsHandshake) {
            return Err(self.out_of_order("tls_established"));
        }
        self.extensions = EhloExtensions::default();
        self.parser = ReplyParser::default();
        self.send(command::ehlo(&self.ehlo_name));
        self.state = State::Ehlo { tls: true };
        Ok(())
    }

    /// The next chunk of the message (after [`Event::SendBody`]): line endings are
    /// normalized to CRLF and lines beginning with `.` are stuffed.
    pub fn write_body(&mut self, chunk: &[u8]) -> Result<(), SmtpError> {
        match &mut self.state {
            State::Body(stuffer) => {
                stuffer.write(chunk, &mut self.output);
                Ok(())
            }
            _ => Err(self.out_of_order("write_body")),
        }
    }

    /// Ends the message (`CRLF.CRLF`); the server's verdict is read next.
    pub fn finish_body(&mut self) -> Result<(), SmtpError> {
        match std::mem::replace(&mut self.state, State::Message) {
            State::Body(stuffer) => {
                stuffer.finish(&mut self.output);
                Ok(())
            }
            other => {
                self.state = other;
                Err(self.out_of_order("finish_body"))
            }
        }
    }

    /// The connection ended (the server closed it, or reading failed). Fails the session
    /// unless the message was already accepted.
    pub fn connection_closed(&mut self) {
        if !matches!(self.state, State::Sent(_) | State::Failed(_)) {
            let stage = self.stage();
            self.fail(SmtpError::ConnectionClosed { stage }, false);
        }
    }

    /// Where the session stands.
    pub fn stage(&self) -> Stage {
        match &self.state {
            State::Failed(err) => err.stage().unwrap_or(Stage::Greeting),
            state => stage_of(state),
        }
    }

    /// What the server offered in its last EHLO reply (after TLS, once TLS is up).
    pub fn extensions(&self) -> &EhloExtensions {
        &self.extensions
    }

    /// How long the driver may wait for what the session asks for now (RFC 5321
    /// §4.5.3.2): the reply it reads, or, while the message is sent, each write of it.
    /// Once the outcome is known, the brief wait for the `221` to `QUIT`.
    pub fn timeout(&self) -> std::time::Duration {
        let stage = match &self.state {
            State::Greeting => timeouts::GREETING,
            State::MailFrom => timeouts::MAIL,
            State::RcptTo { .. } => timeouts::RCPT,
            State::Data => timeouts::DATA_INITIATION,
            State::Body(_) => timeouts::DATA_BLOCK,
            State::Message => timeouts::FINAL_DOT,
            State::Sent(_) | State::Failed(_) => timeouts::QUIT,
            State::Ehlo { .. } | State::StartTls | State::TlsHandshake | State::Auth(_) => {
                timeouts::OTHER
            }
        };
        self.timeouts.of(stage)
    }

    /// Whether the whole message is out and the server's verdict on it is awaited: if
    /// the connection fails now, the message may have been delivered (RFC 5321 §4.5.3.2).
    pub fn awaits_final_reply(&self) -> bool {
        matches!(self.state, State::Message) && self.output.is_empty()
    }

    /// Whether the outcome is decided (the message accepted, or the send failed): what
    /// is still written is a courtesy `QUIT`, whose failure changes nothing.
    pub fn outcome_known(&self) -> bool {
        matches!(self.state, State::Sent(_) | State::Failed(_))
    }

    /// Handles a complete reply. Every arm sets the next state; the placeholder taken
    /// out while the current one is matched is never seen.
    fn on_reply(&mut self, reply: Reply) {
        if reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the channel, whatever it was asked;
            // nothing more may be sent on this connection, not even QUIT.
            let stage = self.stage();
            return self.fail(
                SmtpError::Rejected {
                    stage,
                    reply,
                    auth_challenge: None,
                },
                false,
            );
        }
        match std::mem::replace(&mut self.state, State::Failed(SmtpError::NoRecipients)) {
            State::Greeting if reply.code == 220 => self.ehlo(false),
            State::Ehlo { tls } if reply.is_positive() => {
                self.extensions = EhloExtensions::from_ehlo(&reply);
                if tls {
                    self.authenticate();
                } else if self.extensions.starttls {
                    self.send(command::starttls());
                    self.state = State::StartTls;
                } else {
                    self.fail(SmtpError::StartTlsNotOffered, true);
                }
            }
            State::StartTls if reply.code == 220 => self.state = State::TlsHandshake,
            State::Auth(_) if reply.code == 235 => self.mail_from(),
            State::Auth(mut exchange) if reply.code == 334 => {
                let payload = reply.lines.first().map_or("", String::as_str);
                match exchange.on_challenge(payload) {
                    Ok(answer) => {
                        self.send(answer);
                        self.state = State::Auth(exchange);
                    }
                    Err(err) => self.fail(err.into(), false),
                }
            }
            State::Auth(exchange) => {
                let auth_challenge = exchange.error_challenge().cloned();
                self.reject(Stage::Auth, reply, auth_challenge);
            }
            State::MailFrom if reply.is_positive() => self.rcpt_to(0),
            State::RcptTo { next } => self.on_rcpt_reply(next, reply),
            State::Data if reply.code == 354 => self.state = State::Body(DotStuffer::default()),
            State::Message if reply.is_positive() => {
                self.send(command::quit());
                self.state = State::Sent(Report {
                    accepted: std::mem::take(&mut self.accepted),
                    refused: std::mem::take(&mut self.refused),
                    reply,
                });
            }
            state @ (State::Greeting
            | State::Ehlo { .. }
            | State::StartTls
            | State::MailFrom
            | State::Data
            | State::Message) => {
                let stage = stage_of(&state);
                self.reject(stage, reply, None);
            }
            // `feed` does not parse replies in the other states.
            state @ (State::TlsHandshake | State::Body(_) | State::Sent(_) | State::Failed(_)) => {
                self.state = state;
            }
        }
    }

    fn on_rcpt_reply(&mut self, index: usize, reply: Reply) {
        let recipient = self.envelope.to.get(index).cloned().unwrap_or_default();
        if reply.is_transient() {
            // A 4xx is not a refused recipient: the server cannot take it now (RFC 5321
            // §4.2.1). The whole message waits and is sent again, to every recipient.
            return self.reject(Stage::RcptTo, reply, None);
        }
        if reply.is_positive() {
            self.accepted.push(recipient);
        } else {
            self.refused.push(Refusal { recipient, reply });
        }
        if index + 1 < self.envelope.to.len() {
            return self.rcpt_to(index + 1);
        }
        let refuse = self.accepted.is_empty()
            || (!self.refused.is_empty() && self.recipient_policy == RecipientPolicy::RequireAll);
        if refuse {
            let refused = std::mem::take(&mut self.refused);
            self.fail(SmtpError::RecipientsRefused { refused }, true);
        } else {
            self.send(command::data());
            self.state = State::Data;
        }
    }

    fn ehlo(&mut self, tls: bool) {
        self.send(command::ehlo(&self.ehlo_name));
        self.state = State::Ehlo { tls };
    }

    /// After the EHLO over TLS: everything that would fail the send for sure is checked
    /// before the token is sent.
    fn authenticate(&mut self) {
        let caps = &self.extensions;
        if !caps.supports_auth(xoauth2::MECHANISM) {
            let offered = caps.auth.clone();
            return self.fail(SmtpError::Xoauth2NotOffered { offered }, true);
        }
        if !caps.smtputf8
            && let Some(field) = self.non_ascii_address()
        {
            return self.fail(SmtpError::SmtpUtf8NotOffered { field }, true);
        }
        if let (Some(size), Some(limit)) = (self.envelope.size, caps.size_limit())
            && size > limit
        {
            return self.fail(SmtpError::MessageTooLarge { size, limit }, true);
        }
        let Some(credentials) = self.credentials.take() else {
            let stage = Stage::Auth;
            return self.fail(
                SmtpError::OutOfOrder {
                    call: "authenticate",
                    stage,
                },
                true,
            );
        };
        let (exchange, line) = Exchange::start(credentials, self.auth_mode);
        self.send(line);
        self.state = State::Auth(exchange);
    }

    fn mail_from(&mut self) {
        let size = self.extensions.size.and(self.envelope.size);
        let smtputf8 = self.non_ascii_address().is_some();
        self.send(command::mail_from(&self.envelope.from, size, smtputf8));
        self.state = State::MailFrom;
    }

    fn rcpt_to(&mut self, index: usize) {
        let line = command::rcpt_to(self.envelope.to.get(index).map_or("", String::as_str));
        self.send(line);
        self.state = State::RcptTo { next: index };
    }

    /// The first envelope address that needs SMTPUTF8, by field name.
    fn non_ascii_address(&self) -> Option<String> {
        if !self.envelope.from.is_ascii() {
            return Some("from".into());
        }
        self.envelope
            .to
            .iter()
            .position(|to| !to.is_ascii())
            .map(|i| format!("to[{i}]"))
    }

    fn send(&mut self, bytes: Vec<u8>) {
        self.output.extend_from_slice(&bytes);
    }

    fn reject(
        &mut self,
        stage: Stage,
        reply: Reply,
        auth_challenge: Option<xoauth2::ErrorChallenge>,
    ) {
        let err = SmtpError::Rejected {
            stage,
            reply,
            auth_challenge,
        };
        self.fail(err, true);
    }

    /// Ends the session with `err`. `polite`: the server waits for a command, so `QUIT`
    /// is handed out first (never mid-message or when the stream is out of step).
    fn fail(&mut self, err: SmtpError, polite: bool) {
        if polite {
            self.send(command::quit());
        }
        self.credentials = None;
        self.state = State::Failed(err);
    }

    fn out_of_order(&self, call: &'static str) -> SmtpError {
        match &self.state {
            State::Failed(err) => err.clone(),
            _ => SmtpError::OutOfOrder {
                call,
                stage: self.stage(),
            },
        }
    }
}

/// The stage a state belongs to (a failed state: where it failed is in the error).
fn stage_of(state: &State) -> Stage {
    match state {
        State::Greeting | State::Failed(_) => Stage::Greeting,
        State::Ehlo { .. } => Stage::Ehlo,
        State::StartTls | State::TlsHandshake => Stage::StartTls,
        State::Auth(_) => Stage::Auth,
        State::MailFrom => Stage::MailFrom,
        State::RcptTo { .. } => Stage::RcptTo,
        State::Data => Stage::Data,
        State::Body(_) | State::Message | State::Sent(_) => Stage::Message,
    }
}

impl fmt::Debug for Session {
    /// Shows where the session stands, never the pending bytes (they may hold the token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("stage", &self.stage())
            .field("failed", &matches!(self.state, State::Failed(_)))
            .field("envelope", &self.envelope)
            .field("capabilities", &self.extensions)
            .field("pending_output_bytes", &self.output.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
