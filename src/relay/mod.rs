//! The relay: nearby devices that cannot do OAuth (printers, scanners, line-of-business
//! boxes) submit mail to it over plain SMTP, and each message is passed through to
//! Exchange Online as the signed-in account with XOAUTH2 (issue: Basic authentication to
//! Exchange Online ends in December 2026).
//!
//! Pass-through, never store-and-forward: the device's final dot is answered only after
//! Exchange answered the relay's, with Exchange's verdict (and, for a refusal, the
//! component's diagnosis in the reply text, so the device's own log shows the remedy).
//! Nothing is acknowledged that Exchange has not accepted, so a relay that dies mid-message
//! loses nothing: the device never heard `250` and sends again. The message streams
//! through in pieces; a 25 MB scan is never whole in memory.
//!
//! The host listens and moves bytes. Everything else is decided here: who may relay
//! ([`config`]), the protocol ([`server`]), whose name a message may carry, the header,
//! the size, the per-minute limit ([`policy`]), and what every refusal says.

pub mod config;
pub mod policy;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::capabilities::{Http, NetFailure, SmtpConnector};
use crate::diagnose::{Diagnostic, Severity};
use crate::history;
use crate::mailer::submission::{self, MessageSource, Submission};
use crate::mailer::{SendFailure, SendFailureKind, journal};
use crate::mime;
use crate::oauth;
use crate::remedy::Remedy;
use crate::smtp::{self, Envelope};
use crate::storage::{self, Storage};

pub use config::{CheckedConfig, RelayConfig, check};
use policy::{Header, HeaderProblem, Senders};
use server::{Answer, Server, ServerConfig, ServerEvent, ServerTimeouts};

/// Connections served at once: Exchange Online allows 3 concurrent SMTP connections per
/// mailbox, and each relayed message holds one. One more is told to come back (`421`).
pub const MAX_CONNECTIONS: u32 = 3;
/// The largest message relayed: Exchange Online's default limit (35 MB).
pub const MAX_MESSAGE_SIZE: u64 = 35 * 1024 * 1024;
/// Recipients per message: Exchange Online's default recipient limit.
pub const MAX_RECIPIENTS: usize = 500;
/// The longest header block read before a message goes on (its From is checked first).
pub const MAX_HEADER: usize = 64 * 1024;
/// Bytes read from the device at a time.
const READ_CHUNK: u32 = 64 * 1024;
/// How long one device may keep a connection, in seconds: past it, the relay closes the
/// connection at the next point between messages (`421`, and the device connects again).
/// Each wait is bounded by RFC 5321's timeouts, but a device that kept talking would
/// otherwise hold one of the [`MAX_CONNECTIONS`] for ever.
pub const MAX_CONNECTION_SECS: u64 = 10 * 60;

/// The device's connection as the host grants it; mirrors `relay-client` in
/// `wit/relay.wit`.
pub trait RelayClient {
    fn read(&mut self, max: u32, timeout: Duration) -> Result<Vec<u8>, NetFailure>;
    fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), NetFailure>;
    /// The server side of a TLS handshake, with the host's certificate.
    fn start_tls(&mut self, timeout: Duration) -> Result<(), NetFailure>;
    /// The host's clock (Unix seconds).
    fn now(&self) -> u64;
}

/// What became of one connection; mirrors `session-summary` in `wit/relay.wit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionSummary {
    pub refused_at_connect: bool,
    pub relayed: u32,
    pub refused: u32,
}

/// Serves one device's connection from the greeting to its close. `peer` is its address
/// and port; `open_connections` counts the relay's open connections, this one included.
pub fn serve_client(
    s: &impl Storage,
    http: &impl Http,
    smtp: &impl SmtpConnector,
    client: &mut impl RelayClient,
    peer: &str,
    config: &RelayConfig,
    open_connections: u32,
) -> SessionSummary {
    let hostname = smtp::ehlo_name_or_fallback(&smtp.ehlo_name());
    let (checked, peer_ip) = match admit(config, peer, open_connections) {
        Ok(admitted) => admitted,
        Err(answer) => {
            let opened_at = client.now();
            let mut link = Link {
                server: Server::refusing(&hostname, answer),
                client,
                opened_at,
            };
            while !matches!(link.step(), Step::Closed) {}
            return SessionSummary {
                refused_at_connect: true,
                ..SessionSummary::default()
            };
        }
    };
    let server = Server::new(ServerConfig {
        hostname: hostname.clone(),
        max_message_size: MAX_MESSAGE_SIZE,
        max_recipients: MAX_RECIPIENTS,
        tls_offered: checked.tls_offered,
        auth_required: checked.password.is_some(),
        timeouts: ServerTimeouts::divided_by(smtp.timeout_divisor()),
    });
    let mut relay = Relay {
        s,
        http,
        smtp,
        link: Link {
            server,
            opened_at: client.now(),
            client,
        },
        checked,
        peer: peer_ip,
        hostname,
        envelope: None,
        summary: SessionSummary::default(),
    };
    relay.run();
    relay.summary
}

/// Whether this connection may be served: the configuration holds, the device is inside
/// the allowed ranges (`554` otherwise) and the relay is not at its connection limit
/// (`421`, come back shortly).
fn admit(
    config: &RelayConfig,
    peer: &str,
    open_connections: u32,
) -> Result<(CheckedConfig, IpAddr), Answer> {
    let checked = config::check(config).map_err(|err| {
        Answer::new(
            421,
            "4.3.5",
            format!(
                "The relay is misconfigured: {} Try again later.",
                err.message
            ),
        )
    })?;
    let Ok(peer) = peer.parse::<SocketAddr>() else {
        return Err(Answer::new(
            554,
            "5.7.1",
            "The relay cannot tell your address.",
        ));
    };
    let ip = config::canonical(peer.ip());
    if !checked.allows(ip) {
        return Err(Answer::new(
            554,
            "5.7.1",
            format!(
                "{ip} may not relay here: it is outside the relay's allowed address ranges. The relay's administrator can add it with --allow."
            ),
        ));
    }
    if open_connections > MAX_CONNECTIONS {
        return Err(Answer::new(
            421,
            "4.3.2",
            format!(
                "The relay already serves {MAX_CONNECTIONS} connections, Exchange Online's limit; try again shortly."
            ),
        ));
    }
    Ok((checked, ip))
}

/// The device's side: the protocol state and the connection it runs over.
struct Link<'c, D: RelayClient> {
    server: Server,
    client: &'c mut D,
    /// When the device connected (Unix seconds), for [`MAX_CONNECTION_SECS`].
    opened_at: u64,
}

/// What a step of the link produced that its caller must handle.
enum Step {
    /// Moved bytes or did the handshake; nothing to decide.
    Moved,
    Question(ServerEvent),
    Body(Vec<u8>),
    MessageEnd,
    Closed,
}

impl<D: RelayClient> Link<'_, D> {
    /// Handles what needs no decision (writes, reads, the TLS handshake) and hands back
    /// the rest.
    fn step(&mut self) -> Step {
        match self.server.next_event() {
            ServerEvent::Write(bytes) => {
                if self.client.write(&bytes, self.server.timeout()).is_err() {
                    self.server.connection_closed();
                }
                Step::Moved
            }
            ServerEvent::Read if self.open_too_long() => {
                let answer = Answer::new(
                    421,
                    "4.4.2",
                    format!(
                        "This connection has been open {} minutes, the relay's limit; connect again to send more.",
                        MAX_CONNECTION_SECS / 60
                    ),
                );
                let _ = self.client.write(&answer.render(), Duration::from_secs(5));
                self.server.connection_closed();
                Step::Moved
            }
            ServerEvent::Read => {
                match self.client.read(READ_CHUNK, self.server.timeout()) {
                    Ok(bytes) => self.server.feed(&bytes),
                    Err(NetFailure::Timeout) => {
                        // RFC 5321 §4.5.3.2.7: a server that gives up says so first.
                        let answer = Answer::new(
                            421,
                            "4.4.2",
                            "Timeout waiting for the client; closing the connection.",
                        );
                        let _ = self.client.write(&answer.render(), Duration::from_secs(5));
                        self.server.connection_closed();
                    }
                    Err(_) => self.server.connection_closed(),
                }
                Step::Moved
            }
            ServerEvent::StartTls => {
                match self.client.start_tls(self.server.timeout()) {
                    Ok(()) => self.server.tls_established(),
                    Err(_) => self.server.connection_closed(),
                }
                Step::Moved
            }
            ServerEvent::Body(chunk) => Step::Body(chunk),
            ServerEvent::MessageEnd => Step::MessageEnd,
            ServerEvent::Closed { .. } => Step::Closed,
            question => Step::Question(question),
        }
    }

    /// Whether the connection has used up its [`MAX_CONNECTION_SECS`] and may be closed
    /// now, between messages.
    fn open_too_long(&self) -> bool {
        self.server.between_messages()
            && self.client.now().saturating_sub(self.opened_at) >= MAX_CONNECTION_SECS
    }

    /// The next piece of the message being received.
    fn next_piece(&mut self) -> Piece {
        loop {
            match self.step() {
                Step::Moved => {}
                Step::Body(chunk) => return Piece::Chunk(chunk),
                Step::MessageEnd => return Piece::End,
                Step::Closed => return Piece::Gone,
                // No question comes while a message is received; one that did would be
                // a protocol state this driver does not know: give the connection up.
                Step::Question(_) => {
                    self.server.connection_closed();
                    return Piece::Gone;
                }
            }
        }
    }

    /// Reads the rest of a message that will not be relayed (none when `ended`): the
    /// bytes read, or, as `Err`, those read before the device left.
    fn drain(&mut self, ended: bool) -> Result<u64, u64> {
        let mut read = 0u64;
        if ended {
            return Ok(read);
        }
        loop {
            match self.next_piece() {
                Piece::Chunk(chunk) => read += chunk.len() as u64,
                Piece::End => return Ok(read),
                Piece::Gone => return Err(read),
            }
        }
    }
}

/// A piece of the message being received.
enum Piece {
    Chunk(Vec<u8>),
    End,
    /// The device closed the connection (or it failed) before the final dot.
    Gone,
}

/// The envelope the device gave for the message being received.
struct PendingEnvelope {
    from: String,
    size: Option<u64>,
    to: Vec<String>,
    /// Who the relay sends as, read once at `MAIL FROM`: the header is checked against it.
    senders: Senders,
}

struct Relay<'a, 'c, S, H, C, D: RelayClient> {
    s: &'a S,
    http: &'a H,
    smtp: &'a C,
    link: Link<'c, D>,
    checked: CheckedConfig,
    peer: IpAddr,
    hostname: String,
    envelope: Option<PendingEnvelope>,
    summary: SessionSummary,
}

impl<S: Storage, H: Http, C: SmtpConnector, D: RelayClient> Relay<'_, '_, S, H, C, D> {
    fn run(&mut self) {
        loop {
            match self.link.step() {
                Step::Moved => {}
                Step::Question(question) => self.answer(question),
                Step::Body(first) => self.message(Some(first)),
                Step::MessageEnd => self.message(None),
                Step::Closed => return,
            }
        }
    }

    fn answer(&mut self, question: ServerEvent) {
        match question {
            ServerEvent::CheckAuth(attempt) => {
                let accepted = self
                    .checked
                    .password
                    .as_ref()
                    .is_some_and(|p| same_secret(p.expose(), attempt.password()));
                self.link.server.auth_verdict(accepted);
            }
            ServerEvent::Sender { address, size } => {
                let verdict = match self.sender_verdict(&address) {
                    Ok(senders) => {
                        self.envelope = Some(PendingEnvelope {
                            from: address,
                            size,
                            to: Vec::new(),
                            senders,
                        });
                        Ok(())
                    }
                    Err(answer) => {
                        self.summary.refused += 1;
                        Err(answer)
                    }
                };
                self.link.server.sender_verdict(verdict);
            }
            ServerEvent::Recipient(address) => {
                if let Some(envelope) = &mut self.envelope {
                    envelope.to.push(address);
                }
                self.link.server.recipient_verdict(Ok(()));
            }
            _ => {}
        }
    }

    /// Whether a message from `address` may start now: the relay must be signed in to
    /// Exchange Online, `address` one it sends as, and the minute's limit not reached.
    /// Returns who the relay sends as, for the message's header.
    fn sender_verdict(&mut self, address: &str) -> Result<Senders, Answer> {
        let now = self.link.client.now();
        let refusal = match self.senders() {
            Err(diagnostic) => (
                Answer::with_diagnosis(451, "4.7.0", &diagnostic),
                diagnostic,
            ),
            Ok(senders) if !senders.allows(address) => {
                let diagnostic = not_a_sender(address, &senders);
                (
                    Answer::with_diagnosis(550, "5.7.1", &diagnostic),
                    diagnostic,
                )
            }
            Ok(senders) => match policy::reserve_slot(self.s, now) {
                Ok(()) => return Ok(senders),
                Err(wait) => {
                    let diagnostic = rate_limited(wait);
                    (
                        Answer::with_diagnosis(451, "4.7.0", &diagnostic),
                        diagnostic,
                    )
                }
            },
        };
        let (answer, diagnostic) = refusal;
        let event = history::Event::new(
            history::EventKind::Relayed,
            now,
            false,
            format!(
                "Not relayed for {} as {}: refused before the message was sent.",
                self.peer,
                if address.is_empty() { "<>" } else { address }
            ),
        )
        .with_diagnosis(&diagnostic);
        history::append(self.s, &event);
        Err(answer)
    }

    /// The addresses the relay sends as now, or why it cannot send at all.
    fn senders(&self) -> Result<Senders, Diagnostic> {
        let settings = storage::load_settings(self.s).map_err(Diagnostic::from)?;
        if !settings.is_exchange_online() {
            return Err(Diagnostic::new(
                "relay-provider-not-exchange-online",
                Severity::Error,
                "The relay's device does not send through Exchange Online/Outlook.com.",
                "Select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page].",
            ));
        }
        match oauth::account(self.s) {
            Ok(Some(account)) => Ok(Senders::new(&settings, &account)),
            Ok(None) => Err(oauth::sign_in_required()),
            Err(failure) => Err(failure.into_diagnosis()),
        }
    }

    /// Receives one message (its first piece, if any, in hand), passes it through to
    /// Exchange Online, and answers the device's final dot with the outcome.
    fn message(&mut self, first: Option<Vec<u8>>) {
        let Some(envelope) = self.envelope.take() else {
            // A message with no envelope cannot be: the server asks for MAIL first.
            if self.link.drain(false).is_ok() {
                self.link.server.message_verdict(Answer::new(
                    503,
                    "5.5.1",
                    "No sender was accepted.",
                ));
            }
            return;
        };
        let now = self.link.client.now();
        let (outcome, size) = self.relay(first, &envelope, now);
        let Some(outcome) = outcome else {
            self.summary.refused += 1;
            let event = history::Event::new(
                history::EventKind::Relayed,
                now,
                false,
                format!(
                    "Not relayed for {}: the device closed the connection before the end of the message ({} received); nothing was delivered.",
                    self.peer,
                    history::size_text(size)
                ),
            );
            history::append(self.s, &event);
            return;
        };
        let (answer, event, journaled) = outcome;
        journal::settle(self.s, journaled.as_ref(), &event);
        if event.succeeded {
            self.summary.relayed += 1;
        } else {
            self.summary.refused += 1;
        }
        self.link.server.message_verdict(answer);
    }

    /// The message's way through: its header checked, then streamed to Exchange. `None`
    /// when the device left before the final dot (nothing was delivered then: the final
    /// dot never went to Exchange). Also returns the bytes received.
    #[allow(clippy::type_complexity)]
    fn relay(
        &mut self,
        first: Option<Vec<u8>>,
        envelope: &PendingEnvelope,
        now: u64,
    ) -> (
        Option<(Answer, history::Event, Option<journal::InFlight>)>,
        u64,
    ) {
        let recipients = history::recipients(envelope.to.len());
        let facts = |size: u64| {
            format!(
                "as {} to {recipients} ({})",
                envelope.from,
                history::size_text(size)
            )
        };
        let refused = |diagnostic: &Diagnostic, answer: Answer, size: u64, peer: IpAddr| {
            let event = history::Event::new(
                history::EventKind::Relayed,
                now,
                false,
                format!(
                    "Not relayed for {peer} {}: refused by the relay.",
                    facts(size)
                ),
            )
            .with_diagnosis(diagnostic);
            (Some((answer, event, None)), size)
        };

        // The header first: its From is checked before anything reaches Exchange.
        let mut head = first.unwrap_or_default();
        let mut ended = false;
        while header_end(&head).is_none() && head.len() <= MAX_HEADER && !ended {
            match self.link.next_piece() {
                Piece::Chunk(chunk) => head.extend_from_slice(&chunk),
                Piece::End => ended = true,
                Piece::Gone => return (None, head.len() as u64),
            }
        }
        // The header parsed once: checked, and its Message-ID kept for the journal.
        let checked = match header_end(&head) {
            None if head.len() > MAX_HEADER => Err(header_too_large()),
            None if !head.is_empty() && !ended => Err(header_too_large()),
            None => Err(header_refused(&HeaderProblem::Malformed(
                "it has no header",
            ))),
            Some(len) => Header::parse(&head[..len])
                .and_then(|header| {
                    header.check_senders(&envelope.senders)?;
                    Ok(header.message_id().unwrap_or_default())
                })
                .map_err(|problem| match problem {
                    HeaderProblem::NotASender(address) => {
                        (not_a_sender(&address, &envelope.senders), 550, "5.7.1")
                    }
                    other => header_refused(&other),
                }),
        };
        let message_id = match checked {
            Ok(message_id) => message_id,
            Err((diagnostic, code, enhanced)) => {
                let size = match self.link.drain(ended) {
                    Ok(rest) => head.len() as u64 + rest,
                    Err(rest) => return (None, head.len() as u64 + rest),
                };
                let answer = Answer::with_diagnosis(code, enhanced, &diagnostic);
                return refused(&diagnostic, answer, size, self.peer);
            }
        };

        // RFC 5321 §4.4: a relay adds its trace header on top.
        let mut prefix = self.received_header(now).into_bytes();
        let trace_len = prefix.len() as u64;
        prefix.extend_from_slice(&head);
        let settings = match storage::load_settings(self.s) {
            Ok(settings) => settings,
            Err(err) => {
                let diagnostic = Diagnostic::from(err);
                let size = match self.link.drain(ended) {
                    Ok(rest) => head.len() as u64 + rest,
                    Err(rest) => return (None, head.len() as u64 + rest),
                };
                return refused(
                    &diagnostic,
                    Answer::with_diagnosis(451, "4.3.0", &diagnostic),
                    size,
                    self.peer,
                );
            }
        };
        let mut body = DeviceBody {
            link: &mut self.link,
            prefix: Some(prefix),
            buffer: Vec::new(),
            received: head.len() as u64,
            ended,
            gone: false,
            too_large: false,
        };
        let submission = Submission {
            settings: &settings,
            envelope: Envelope {
                from: envelope.from.clone(),
                to: envelope.to.clone(),
                size: envelope.size.map(|size| size + trace_len),
            },
            message_id: message_id.clone(),
            attempt: 1,
            now,
        };
        let mut journaled = None;
        let result = submission::submit(
            self.s,
            self.http,
            self.smtp,
            submission,
            &mut body,
            &mut journaled,
        );
        let (received, gone, too_large, ended) =
            (body.received, body.gone, body.too_large, body.ended);
        if gone {
            return (None, received);
        }
        // A message refused early (Exchange refused the sender, the sign-in failed) is
        // still being sent by the device: read it to its end before answering.
        let size = match self.link.drain(ended) {
            Ok(rest) => received + rest,
            Err(rest) => return (None, received + rest),
        };
        if too_large {
            let diagnostic = too_large_diagnostic(size);
            return refused(
                &diagnostic,
                Answer::with_diagnosis(552, "5.3.4", &diagnostic),
                size,
                self.peer,
            );
        }
        let message_id_fact = match message_id.is_empty() {
            true => String::new(),
            false => format!(", Message-ID {message_id}"),
        };
        let summary_facts = format!(
            "as {} to {recipients} ({}{message_id_fact})",
            envelope.from,
            history::size_text(size)
        );
        let outcome = match result {
            Ok(report) => {
                let event = history::Event::new(
                    history::EventKind::Relayed,
                    now,
                    true,
                    format!("Relayed for {} {summary_facts}.", self.peer),
                )
                .with_server_reply(Some(&report.reply.to_string()));
                let answer = Answer::new(
                    250,
                    "2.0.0",
                    format!("Relayed to Exchange Online: {}", report.reply.text()),
                );
                (answer, event)
            }
            Err(failure) => {
                let event = history::Event::new(
                    history::EventKind::Relayed,
                    now,
                    false,
                    format!("Not relayed for {} {summary_facts}.", self.peer),
                )
                .with_diagnosis(&failure.diagnosis)
                .with_server_reply(failure.server_reply.as_deref());
                (failure_answer(&failure), event)
            }
        };
        (Some((outcome.0, outcome.1, journaled)), size)
    }

    /// `Received: from <EHLO name> ([peer]) by <us> with ESMTP(S)(A); <date>` (RFC 5321
    /// §4.4, RFC 3848). The EHLO name is the device's own claim: kept only if it is
    /// plainly a name.
    fn received_header(&self, now: u64) -> String {
        let claimed = self
            .link
            .server
            .client_name()
            .filter(|name| {
                !name.is_empty()
                    && name.len() <= 255
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b))
            })
            .unwrap_or("unknown");
        let protocol = match (
            self.link.server.is_tls(),
            self.link.server.is_authenticated(),
        ) {
            (true, true) => "ESMTPSA",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (false, false) => "ESMTP",
        };
        format!(
            "Received: from {claimed} ([{}])\r\n\tby {} (mfp-host relay) with {protocol};\r\n\t{}\r\n",
            self.peer,
            self.hostname,
            mime::rfc5322_date(now)
        )
    }
}

/// The message as Exchange gets it: the trace header and the header block first, then
/// the rest as the device sends it. An error abandons it before the final dot.
struct DeviceBody<'l, 'c, D: RelayClient> {
    link: &'l mut Link<'c, D>,
    prefix: Option<Vec<u8>>,
    buffer: Vec<u8>,
    /// Bytes of the message received from the device so far.
    received: u64,
    ended: bool,
    gone: bool,
    too_large: bool,
}

impl<D: RelayClient> MessageSource for DeviceBody<'_, '_, D> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>, SendFailure> {
        if let Some(prefix) = self.prefix.take() {
            self.buffer = prefix;
            return Ok(Some(&self.buffer));
        }
        if self.ended {
            return Ok(None);
        }
        match self.link.next_piece() {
            Piece::Chunk(chunk) => {
                self.received += chunk.len() as u64;
                if self.received > MAX_MESSAGE_SIZE {
                    self.too_large = true;
                    return Err(too_large_diagnostic(self.received).into());
                }
                self.buffer = chunk;
                Ok(Some(&self.buffer))
            }
            Piece::End => {
                self.ended = true;
                Ok(None)
            }
            Piece::Gone => {
                self.gone = true;
                Err(Diagnostic::new(
                    "relay-device-left",
                    Severity::Error,
                    "The device closed the connection before the end of the message; nothing was delivered.",
                    "Nothing to do: the device sends the message again.",
                )
                .into())
            }
        }
    }
}

/// Where the header block ends (its length, the empty line excluded), if it has.
fn header_end(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") || bytes.starts_with(b"\n") {
        return Some(0);
    }
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2);
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 1);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Compares the relay password in time that does not depend on where they differ.
fn same_secret(expected: &str, offered: &str) -> bool {
    let (a, b) = (expected.as_bytes(), offered.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

impl Answer {
    /// A refusal whose text is the diagnosis and its remedy, so that the device's log
    /// says what to do. The relay's administrator acts on the command line.
    fn with_diagnosis(code: u16, enhanced: &str, diagnostic: &Diagnostic) -> Self {
        Answer::new(
            code,
            enhanced,
            format!(
                "{} {}",
                diagnostic.message,
                diagnostic.remedy.command_line()
            ),
        )
    }
}

/// The reply to the device's final dot for a message that was not sent: Exchange's own
/// code class and enhanced status when it answered; otherwise a `451` when trying again
/// later can help, a `554` when it cannot.
fn failure_answer(failure: &SendFailure) -> Answer {
    let reply = failure.server_reply.as_deref().and_then(|r| {
        smtp::ReplyParser::default()
            .parse(format!("{r}\r\n").as_bytes())
            .1
            .ok()
            .flatten()
    });
    if let Some(reply) = reply.filter(|r| matches!(r.code / 100, 4 | 5)) {
        let enhanced = reply
            .enhanced
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("{}.0.0", reply.code / 100));
        let code = if reply.code / 100 == 4 { 451 } else { 554 };
        return Answer::with_diagnosis(code, &enhanced, &failure.diagnosis);
    }
    let temporary = failure.retry_after.is_some()
        || matches!(
            failure.kind,
            SendFailureKind::SignInRequired | SendFailureKind::Failed
        );
    match temporary {
        true => Answer::with_diagnosis(451, "4.4.0", &failure.diagnosis),
        false => Answer::with_diagnosis(554, "5.6.0", &failure.diagnosis),
    }
}

fn not_a_sender(address: &str, senders: &Senders) -> Diagnostic {
    let shown = if address.is_empty() { "<>" } else { address };
    Diagnostic::new(
        "relay-sender-refused",
        Severity::Error,
        format!(
            "The relay sends only as the signed-in account or its declared aliases ({}); Exchange Online would refuse {shown} (SendAsDenied).",
            senders.list()
        ),
        Remedy::each(
            "Set the sending device's From address to the signed-in account's address, or declare the Device Email Address an alias with [Sender is an alias or proxy address of the signed-in account].",
            "Set the sending device's From address to the signed-in account's address, or declare the Device Email Address an alias (`mfp-host settings set from.alias-sender yes`).",
        ),
    )
}

fn rate_limited(wait: u64) -> Diagnostic {
    Diagnostic::new(
        "relay-rate-limited",
        Severity::Warning,
        format!(
            "The relay has passed {} messages to Exchange Online in the last minute, its limit per mailbox.",
            policy::MESSAGES_PER_MINUTE
        ),
        format!("Nothing to do: try again in {wait} s; the device retries by itself."),
    )
}

fn header_too_large() -> (Diagnostic, u16, &'static str) {
    (
        Diagnostic::new(
            "relay-header-too-large",
            Severity::Error,
            format!(
                "The message's header is longer than {} KiB.",
                MAX_HEADER / 1024
            ),
            "Send a message with a shorter header.",
        ),
        552,
        "5.3.4",
    )
}

fn header_refused(problem: &HeaderProblem) -> (Diagnostic, u16, &'static str) {
    let why = match problem {
        HeaderProblem::Malformed(why) | HeaderProblem::From(why) => *why,
        HeaderProblem::NotASender(_) => "its sender is refused",
    };
    (
        Diagnostic::new(
            "relay-header-refused",
            Severity::Error,
            format!("The message's header is refused: {why}."),
            "Check the sending device's mail settings: each message needs one From field naming one address, and a header with no control characters.",
        ),
        554,
        "5.6.0",
    )
}

fn too_large_diagnostic(size: u64) -> Diagnostic {
    Diagnostic::new(
        "relay-message-too-large",
        Severity::Error,
        format!(
            "The message is larger than {}, Exchange Online's limit ({} received).",
            history::size_text(MAX_MESSAGE_SIZE),
            history::size_text(size)
        ),
        "Scan at a lower resolution, or split the document into several messages.",
    )
}
