//! The relay's SMTP *server* side, sans-IO: what a nearby device (a printer, a scanner)
//! that cannot do OAuth says to the relay, and what the relay answers. Like the client
//! [`Session`](crate::smtp::Session), it never touches a socket: the driver reads and
//! writes the connection and performs the server-side TLS handshake when told to.
//!
//! It speaks submission (RFC 5321) with STARTTLS (RFC 3207), AUTH PLAIN (RFC 4616) and
//! LOGIN (RFC 4954), SIZE (RFC 1870), 8BITMIME and enhanced status codes (RFC 2034). It
//! decides the protocol only. Every policy question (may this password pass, this sender,
//! this recipient, what came of the message) is handed to the caller as a [`ServerEvent`]
//! and answered with a verdict method, so the component keeps every decision.
//!
//! # Driving a server
//!
//! ```no_run
//! use mfp_smtp_oauth::relay::server::{Answer, Server, ServerConfig, ServerEvent, ServerTimeouts};
//!
//! # trait Connection {
//! #     fn write(&mut self, bytes: &[u8]);
//! #     fn read(&mut self) -> Vec<u8>; // empty: the client closed the connection
//! #     fn accept_tls(&mut self);
//! # }
//! fn serve(conn: &mut impl Connection, config: ServerConfig) {
//!     let mut server = Server::new(config);
//!     loop {
//!         match server.next_event() {
//!             ServerEvent::Write(bytes) => conn.write(&bytes),
//!             ServerEvent::Read => match conn.read() {
//!                 bytes if bytes.is_empty() => server.connection_closed(),
//!                 bytes => server.feed(&bytes),
//!             },
//!             ServerEvent::StartTls => {
//!                 conn.accept_tls();
//!                 server.tls_established();
//!             }
//!             ServerEvent::CheckAuth(attempt) => server.auth_verdict(attempt.password() == "secret"),
//!             ServerEvent::Sender { .. } => server.sender_verdict(Ok(())),
//!             ServerEvent::Recipient(_) => server.recipient_verdict(Ok(())),
//!             ServerEvent::Body(_chunk) => { /* pass it on upstream */ }
//!             ServerEvent::MessageEnd => server.message_verdict(Answer::new(250, "2.0.0", "OK")),
//!             ServerEvent::Closed { .. } => return,
//!         }
//!     }
//! }
//! ```
//!
//! # Memory
//!
//! A command line is at most 512 octets (RFC 5321 §4.5.3.1.4); a longer one is dropped as
//! it arrives. The message is never held: its bytes leave as [`ServerEvent::Body`] pieces
//! as they arrive, less at most two withheld bytes (a `.` or `.` CR at a line start, which
//! may yet be the final dot). What the server keeps is at most what one [`Server::feed`]
//! brought, since it asks for no more bytes while a question is pending.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::smtp::{EnhancedStatus, check_address};

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
const MAX_REPLY_LINE: usize = 512;
/// Most lines of one rendered [`Answer`]; the client's own parser takes no more.
const MAX_ANSWER_LINES: usize = 100;
/// Refused commands after which the connection is closed: a client this confused, or
/// guessing passwords, gets no more tries on this connection.
pub const MAX_ERRORS: u32 = 10;
/// Longest EHLO/HELO argument kept (a domain is at most 253 octets).
const MAX_CLIENT_NAME: usize = 255;

/// The command line's content without its line ending.
const MAX_LINE_CONTENT: usize = MAX_COMMAND_LINE - 2;

/// The `334` challenges of AUTH LOGIN: "Username:" and "Password:" in base64.
const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// What the relay offers and how long it waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Our name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Advertised as `SIZE n`; a `MAIL FROM` announcing more is refused with `552 5.3.4`.
    pub max_message_size: u64,
    /// Recipients accepted per message; one more gets `452 4.5.3` (the client sends the
    /// rest in another message, RFC 5321 §4.5.3.1.10).
    pub max_recipients: usize,
    /// Advertise and accept STARTTLS: the host has a certificate.
    pub tls_offered: bool,
    /// A relay password is set: AUTH is needed before MAIL, and offered only under TLS
    /// (a password must never cross the network in clear).
    pub auth_required: bool,
    pub timeouts: ServerTimeouts,
}

/// How long the server waits for the client (RFC 5321 §4.5.3.2.7: a server waits at
/// least 5 minutes for a command; the same for each piece of the message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// For the next command line (or AUTH response).
    pub command: Duration,
    /// For the next bytes of the message, after `354`.
    pub data_block: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(5 * 60),
            data_block: Duration::from_secs(5 * 60),
        }
    }
}

impl ServerTimeouts {
    /// The RFC values shortened by `divisor` (0 is taken as 1), never below 1 ms: tests
    /// shorten every wait alike, as with [`crate::smtp::Timeouts::divided_by`].
    pub fn divided_by(divisor: u32) -> Self {
        let divisor = divisor.max(1);
        let rfc = Self::default();
        let cut = |d: Duration| (d / divisor).max(Duration::from_millis(1));
        Self {
            command: cut(rfc.command),
            data_block: cut(rfc.data_block),
        }
    }
}

/// A reply the server writes: code, enhanced status code (RFC 3463) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    pub enhanced: Option<EnhancedStatus>,
    /// One line per `\n`. May come from anywhere (a diagnosis, an address): rendering
    /// makes it safe, see [`Answer::render`].
    pub text: String,
}

impl Answer {
    /// `Answer::new(550, "5.7.1", "…")`. An enhanced code that does not parse is left out.
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: EnhancedStatus::parse(enhanced),
            text: text.into(),
        }
    }

    /// An answer without an enhanced status code (greeting, EHLO, `354`, `334`).
    fn plain(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// The bytes on the wire: `CODE-ENH text` CRLF for every line but the last, `CODE ENH
    /// text` CRLF for the last. Nothing in `text` can end a line early or inject a reply:
    /// CR, LF (other than as the line separator), other control characters and non-ASCII
    /// become `?` (a tab a space); each line is cut so it stays within 512 octets; at most
    /// 100 lines. A code outside 200–599 becomes 451 (a local error), and an enhanced code
    /// of another class than the code is left out (RFC 3463 §2).
    pub fn render(&self) -> Vec<u8> {
        let code = if (200..600).contains(&self.code) {
            self.code
        } else {
            451
        };
        let enhanced = self
            .enhanced
            .filter(|e| u16::from(e.class) == code / 100)
            .map(|e| e.to_string());
        let text = self.text.trim_end_matches(['\r', '\n']);
        let lines: Vec<&str> = text.split('\n').take(MAX_ANSWER_LINES).collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let separator = if i + 1 == lines.len() { ' ' } else { '-' };
            let mut rendered = format!("{code}{separator}");
            if let Some(enhanced) = &enhanced {
                rendered.push_str(enhanced);
                if !line.is_empty() {
                    rendered.push(' ');
                }
            }
            let room = (MAX_REPLY_LINE - 2).saturating_sub(rendered.len());
            rendered.extend(line.chars().map(printable).take(room));
            out.extend_from_slice(rendered.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

/// One character of reply text as printable ASCII.
fn printable(c: char) -> char {
    match c {
        '\t' => ' ',
        c if c == ' ' || c.is_ascii_graphic() => c,
        _ => '?',
    }
}

/// The SASL mechanisms offered (RFC 4954): both send the password as is, hence only
/// under TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMechanism {
    /// RFC 4616: `authzid NUL authcid NUL passwd` in one base64 response.
    Plain,
    /// The widespread de-facto mechanism: username and password in two responses.
    Login,
}

impl AuthMechanism {
    /// The mechanism's SASL name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
        }
    }
}

/// Credentials a client offered, for the caller to check. `Debug` never shows the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthAttempt {
    pub mechanism: AuthMechanism,
    pub username: String,
    password: String,
}

impl AuthAttempt {
    pub fn new(mechanism: AuthMechanism, username: String, password: String) -> Self {
        Self {
            mechanism,
            username,
            password,
        }
    }

    /// The password as the client sent it (UTF-8, no NUL, CR or LF).
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for AuthAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthAttempt")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// What the driver must do next. A question (`CheckAuth`, `Sender`, `Recipient`,
/// `MessageEnd`) is returned again on every call until its verdict method is called;
/// `Write` and `Body` are handed out once. `Debug` shows the length of `Write` and `Body`,
/// never the bytes (message content).
#[derive(Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Send these bytes to the client.
    Write(Vec<u8>),
    /// Read from the client and pass the bytes to [`Server::feed`] (or call
    /// [`Server::connection_closed`] if it closed the connection).
    Read,
    /// Perform the server TLS handshake now, then call [`Server::tls_established`].
    StartTls,
    /// Answer with [`Server::auth_verdict`].
    CheckAuth(AuthAttempt),
    /// `MAIL FROM` was parsed (`""` for the null sender `<>`); answer with
    /// [`Server::sender_verdict`].
    Sender { address: String, size: Option<u64> },
    /// `RCPT TO` was parsed; answer with [`Server::recipient_verdict`].
    Recipient(String),
    /// The next piece of the message: dot-unstuffed, line endings as the client sent them.
    Body(Vec<u8>),
    /// The final dot came; answer with [`Server::message_verdict`] once the outcome is
    /// known (after the upstream server answered: nothing is acknowledged before).
    MessageEnd,
    /// The conversation is over (QUIT answered, a 421 sent, or the client went away):
    /// close the socket. `mid_message`: a message was started (`354` sent) and never
    /// answered, so the caller must abort it upstream without a final dot.
    Closed { mid_message: bool },
}

impl fmt::Debug for ServerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerEvent::Write(bytes) => write!(f, "Write(<{} bytes>)", bytes.len()),
            ServerEvent::Read => f.write_str("Read"),
            ServerEvent::StartTls => f.write_str("StartTls"),
            ServerEvent::CheckAuth(attempt) => f.debug_tuple("CheckAuth").field(attempt).finish(),
            ServerEvent::Sender { address, size } => f
                .debug_struct("Sender")
                .field("address", address)
                .field("size", size)
                .finish(),
            ServerEvent::Recipient(address) => f.debug_tuple("Recipient").field(address).finish(),
            ServerEvent::Body(bytes) => write!(f, "Body(<{} bytes>)", bytes.len()),
            ServerEvent::MessageEnd => f.write_str("MessageEnd"),
            ServerEvent::Closed { mid_message } => f
                .debug_struct("Closed")
                .field("mid_message", mid_message)
                .finish(),
        }
    }
}

/// A question waiting for the caller's verdict.
#[derive(Clone)]
enum Question {
    Auth(AuthAttempt),
    Sender { address: String, size: Option<u64> },
    Recipient(String),
    MessageEnd,
}

/// Where an AUTH exchange stands, waiting for the client's next response line.
enum AuthStep {
    PlainResponse,
    LoginUsername,
    LoginPassword { username: Vec<u8> },
}

/// Where the server stands. Private: the driver sees [`ServerEvent`]s.
enum State {
    /// Waiting for a command line.
    Command,
    /// Waiting for an AUTH response line.
    Auth(AuthStep),
    /// Waiting for the caller's verdict; no input is processed meanwhile.
    Asking(Question),
    /// `220` to STARTTLS sent: waiting for the handshake; input before it is discarded.
    TlsHandshake,
    /// After `354`: the message streams.
    Body(Unstuffer),
    Closed {
        mid_message: bool,
    },
}

/// The line break before a line start: the final dot must be framed by line breaks of
/// one kind, `CRLF . CRLF` or (leniently) `LF . LF`. A mixed `CRLF . LF` or `LF . CRLF`
/// is content: a relay that ended the message there while the next hop does not (or the
/// reverse) is what SMTP smuggling exploits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Break {
    /// The start of the message (right after `354`): either kind.
    Start,
    Crlf,
    Lf,
}

impl Break {
    fn allows_crlf(self) -> bool {
        self != Break::Lf
    }

    fn allows_lf(self) -> bool {
        self != Break::Crlf
    }
}

/// Undoes the transparency of RFC 5321 §4.5.2 as bytes arrive: a `.` starting a line is
/// removed, and the line `.` alone ends the message. A line starts after each LF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unstuffer {
    /// Inside a line; `cr`: the last byte passed on was a CR.
    Text { cr: bool },
    /// At a line start.
    LineStart(Break),
    /// A `.` started the line: withheld until the next byte tells what it is.
    Dot(Break),
    /// `.` CR started the line: withheld, the final dot if LF follows.
    DotCr(Break),
}

impl Default for Unstuffer {
    fn default() -> Self {
        Unstuffer::LineStart(Break::Start)
    }
}

impl Unstuffer {
    /// Passes the message bytes of `input` to `out`. Returns how many bytes of `input`
    /// the message took, final dot line included, once it ended; `None` if all of it was
    /// message.
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match *self {
                Unstuffer::Text { cr } => {
                    let rest = &input[i..];
                    match rest.iter().position(|&b| b == b'\n') {
                        None => {
                            out.extend_from_slice(rest);
                            *self = Unstuffer::Text {
                                cr: rest.last() == Some(&b'\r'),
                            };
                            return None;
                        }
                        Some(lf) => {
                            let crlf = if lf == 0 { cr } else { rest[lf - 1] == b'\r' };
                            out.extend_from_slice(&rest[..=lf]);
                            *self =
                                Unstuffer::LineStart(if crlf { Break::Crlf } else { Break::Lf });
                            i += lf + 1;
                        }
                    }
                }
                Unstuffer::LineStart(brk) => {
                    if input[i] == b'.' {
                        *self = Unstuffer::Dot(brk);
                        i += 1;
                    } else {
                        *self = Unstuffer::Text { cr: false };
                    }
                }
                Unstuffer::Dot(brk) => match input[i] {
                    b'\r' if brk.allows_crlf() => {
                        *self = Unstuffer::DotCr(brk);
                        i += 1;
                    }
                    b'\n' if brk.allows_lf() => return Some(i + 1),
                    // A stuffed dot: dropped; the byte after it is text.
                    _ => *self = Unstuffer::Text { cr: false },
                },
                Unstuffer::DotCr(_) => {
                    if input[i] == b'\n' {
                        return Some(i + 1);
                    }
                    // `.` CR and more: the dot was stuffed, the CR is text.
                    out.push(b'\r');
                    *self = Unstuffer::Text { cr: true };
                }
            }
        }
        None
    }
}

/// One SMTP server conversation, sans-IO. Build it with [`Server::new`] (or
/// [`Server::refusing`]), then drive it with [`Server::next_event`].
pub struct Server {
    config: ServerConfig,
    state: State,
    /// Bytes received and not processed yet (while a question is pending, or a partial
    /// command line).
    input: Vec<u8>,
    /// A command line grew past the limit: its bytes are dropped up to the next LF.
    discarding: bool,
    /// Bytes to write.
    output: Vec<u8>,
    /// Message bytes not handed out yet.
    body: Vec<u8>,
    tls: bool,
    authenticated: bool,
    /// The EHLO/HELO argument; `None`: no EHLO/HELO yet (since TLS started).
    client_name: Option<String>,
    /// The envelope: `MAIL FROM` accepted, and how many recipients.
    sender: bool,
    recipients: usize,
    errors: u32,
}

impl Server {
    /// A conversation with a new client: the `220` greeting is queued.
    pub fn new(config: ServerConfig) -> Self {
        let greeting = Answer::plain(220, format!("{} ESMTP ready", config.hostname));
        let mut server = Self::with_state(config, State::Command);
        server.write(&greeting);
        server
    }

    /// A client that may not relay (e.g. outside the allowed ranges): the answer (a `554`,
    /// RFC 5321 §3.1) is written at connect, after our name, then the conversation is
    /// closed.
    pub fn refusing(hostname: &str, answer: Answer) -> Self {
        let config = ServerConfig {
            hostname: hostname.to_owned(),
            max_message_size: 0,
            max_recipients: 0,
            tls_offered: false,
            auth_required: true,
            timeouts: ServerTimeouts::default(),
        };
        let mut server = Self::with_state(config, State::Closed { mid_message: false });
        let text = format!("{hostname} {}", answer.text);
        server.write(&Answer { text, ..answer });
        server
    }

    fn with_state(config: ServerConfig, state: State) -> Self {
        Self {
            config,
            state,
            input: Vec::new(),
            discarding: false,
            output: Vec::new(),
            body: Vec::new(),
            tls: false,
            authenticated: false,
            client_name: None,
            sender: false,
            recipients: 0,
            errors: 0,
        }
    }

    /// What to do next: pending bytes to write first, then pending message bytes, then
    /// the pending question (or `StartTls`, `Closed`), else `Read`.
    pub fn next_event(&mut self) -> ServerEvent {
        if !self.output.is_empty() {
            return ServerEvent::Write(std::mem::take(&mut self.output));
        }
        if !self.body.is_empty() {
            return ServerEvent::Body(std::mem::take(&mut self.body));
        }
        match &self.state {
            State::Asking(Question::Auth(attempt)) => ServerEvent::CheckAuth(attempt.clone()),
            State::Asking(Question::Sender { address, size }) => ServerEvent::Sender {
                address: address.clone(),
                size: *size,
            },
            State::Asking(Question::Recipient(address)) => ServerEvent::Recipient(address.clone()),
            State::Asking(Question::MessageEnd) => ServerEvent::MessageEnd,
            State::TlsHandshake => ServerEvent::StartTls,
            State::Closed { mid_message } => ServerEvent::Closed {
                mid_message: *mid_message,
            },
            State::Command | State::Auth(_) | State::Body(_) => ServerEvent::Read,
        }
    }

    /// Takes bytes read from the client, in pieces of any size (one byte at a time
    /// included). Bytes that arrive while the TLS handshake is due are discarded (RFC 3207
    /// §5: they could only be injected in clear); after the conversation closed, ignored.
    pub fn feed(&mut self, bytes: &[u8]) {
        match self.state {
            State::TlsHandshake | State::Closed { .. } => {}
            _ => {
                self.input.extend_from_slice(bytes);
                self.pump();
            }
        }
    }

    /// The client closed the connection (or reading failed). What was pending is dropped:
    /// nobody reads the replies, and a started message is to be aborted.
    pub fn connection_closed(&mut self) {
        if matches!(self.state, State::Closed { .. }) {
            return;
        }
        let mid_message = matches!(
            self.state,
            State::Body(_) | State::Asking(Question::MessageEnd)
        );
        self.close(mid_message);
        self.output.clear();
        self.body.clear();
    }

    /// Whether the conversation is between messages: waiting for a command, no `MAIL FROM`
    /// accepted. A server that closes for its own reasons (RFC 5321 §3.8) does it here,
    /// so no message is cut.
    pub fn between_messages(&self) -> bool {
        matches!(self.state, State::Command) && !self.sender
    }

    /// The driver finished the TLS handshake after [`ServerEvent::StartTls`]. Everything
    /// learned in clear (EHLO, envelope, authentication) is forgotten (RFC 3207 §4.2); the
    /// client starts over with EHLO. Ignored at any other time.
    pub fn tls_established(&mut self) {
        if !matches!(self.state, State::TlsHandshake) {
            return;
        }
        self.tls = true;
        self.authenticated = false;
        self.client_name = None;
        self.reset_envelope();
        self.input.clear();
        self.discarding = false;
        self.state = State::Command;
    }

    /// The caller's verdict on [`ServerEvent::CheckAuth`]. Ignored when none is pending.
    pub fn auth_verdict(&mut self, accepted: bool) {
        if !matches!(self.state, State::Asking(Question::Auth(_))) {
            return;
        }
        self.state = State::Command;
        if accepted {
            self.authenticated = true;
            self.write(&Answer::new(235, "2.7.0", "Authentication successful"));
        } else {
            self.refuse(auth_invalid());
        }
        self.pump();
    }

    /// The caller's verdict on [`ServerEvent::Sender`]: `Ok` gives `250 2.1.0`, `Err` its
    /// answer (a `421` closes the conversation). Ignored when none is pending.
    pub fn sender_verdict(&mut self, verdict: Result<(), Answer>) {
        if !matches!(self.state, State::Asking(Question::Sender { .. })) {
            return;
        }
        self.state = State::Command;
        match verdict {
            Ok(()) => {
                self.sender = true;
                self.write(&Answer::new(250, "2.1.0", "Sender OK"));
            }
            Err(answer) => self.verdict_refusal(&answer),
        }
        self.pump();
    }

    /// The caller's verdict on [`ServerEvent::Recipient`]: `Ok` gives `250 2.1.5`, `Err`
    /// its answer (a `421` closes the conversation). Ignored when none is pending.
    pub fn recipient_verdict(&mut self, verdict: Result<(), Answer>) {
        if !matches!(self.state, State::Asking(Question::Recipient(_))) {
            return;
        }
        self.state = State::Command;
        match verdict {
            Ok(()) => {
                self.recipients += 1;
                self.write(&Answer::new(250, "2.1.5", "Recipient OK"));
            }
            Err(answer) => self.verdict_refusal(&answer),
        }
        self.pump();
    }

    /// The reply to the final dot, after [`ServerEvent::MessageEnd`]. The envelope is
    /// reset for the next `MAIL`; a `421` closes the conversation. Ignored when no message
    /// ended.
    pub fn message_verdict(&mut self, answer: Answer) {
        if !matches!(self.state, State::Asking(Question::MessageEnd)) {
            return;
        }
        self.state = State::Command;
        self.reset_envelope();
        self.verdict_refusal(&answer);
        self.pump();
    }

    /// How long the driver may wait for the client now: a data block while the message
    /// streams, a command otherwise.
    pub fn timeout(&self) -> Duration {
        match self.state {
            State::Body(_) => self.config.timeouts.data_block,
            _ => self.config.timeouts.command,
        }
    }

    /// Whether TLS is up (after [`Server::tls_established`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the client authenticated (since TLS started).
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// The client's EHLO/HELO argument (printable ASCII, for a `Received` header).
    pub fn client_name(&self) -> Option<&str> {
        self.client_name.as_deref()
    }

    /// Processes buffered input until it runs out or the server waits for something
    /// other than the client (a verdict, the TLS handshake) or is closed.
    fn pump(&mut self) {
        let mut pos = 0;
        while pos < self.input.len() {
            let rest = &self.input[pos..];
            match &mut self.state {
                State::Body(unstuffer) => match unstuffer.decode(rest, &mut self.body) {
                    Some(taken) => {
                        pos += taken;
                        self.state = State::Asking(Question::MessageEnd);
                    }
                    None => pos = self.input.len(),
                },
                State::Command | State::Auth(_) => {
                    let lf = rest.iter().position(|&b| b == b'\n');
                    if self.discarding {
                        let Some(lf) = lf else {
                            pos = self.input.len();
                            break;
                        };
                        pos += lf + 1;
                        self.discarding = false;
                        self.state = State::Command;
                        self.refuse(line_too_long());
                        continue;
                    }
                    match lf {
                        Some(lf) => {
                            let line = rest[..lf].to_vec();
                            pos += lf + 1;
                            self.on_line(line);
                        }
                        // +1: the line's CR may be the last byte that arrived.
                        None if rest.len() > MAX_LINE_CONTENT + 1 => {
                            self.discarding = true;
                            pos = self.input.len();
                        }
                        None => break,
                    }
                }
                State::Asking(_) | State::TlsHandshake | State::Closed { .. } => break,
            }
        }
        match self.state {
            // RFC 3207 §5: what came after STARTTLS in clear is dropped, never executed.
            State::TlsHandshake | State::Closed { .. } => self.input.clear(),
            _ => {
                self.input.drain(..pos);
            }
        }
    }

    /// One complete line (without its LF) in the command or AUTH state.
    fn on_line(&mut self, mut line: Vec<u8>) {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let state = std::mem::replace(&mut self.state, State::Command);
        if line.len() > MAX_LINE_CONTENT {
            return self.refuse(line_too_long());
        }
        if line.iter().any(|&b| !(b == b' ' || b.is_ascii_graphic())) {
            return self.refuse(Answer::new(
                501,
                "5.5.2",
                "Syntax error: control or non-ASCII characters",
            ));
        }
        // Printable ASCII only, checked above.
        let line = String::from_utf8_lossy(&line).into_owned();
        match state {
            State::Auth(step) => self.on_auth_response(step, &line),
            _ => self.on_command(&line),
        }
    }

    fn on_command(&mut self, line: &str) {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim_matches(' ')),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => self.hello(arg, true),
            "HELO" => self.hello(arg, false),
            "STARTTLS" => self.starttls(arg),
            "AUTH" => self.auth(arg),
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
            "DATA" => self.data(arg),
            "RSET" if !arg.is_empty() => self.refuse(syntax("RSET")),
            "RSET" => {
                self.reset_envelope();
                self.write(&Answer::new(250, "2.0.0", "Reset"));
            }
            "NOOP" => self.write(&Answer::new(250, "2.0.0", "OK")),
            "VRFY" => self.write(&Answer::new(252, "2.5.0", "Cannot VRFY user")),
            "EXPN" => self.write(&Answer::new(502, "5.5.1", "EXPN not available")),
            "HELP" => self.write(&Answer::new(
                214,
                "2.0.0",
                "Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT",
            )),
            "QUIT" => {
                self.write(&Answer::new(221, "2.0.0", "Bye"));
                self.close(false);
            }
            _ => self.refuse(Answer::new(500, "5.5.1", "Command unrecognized")),
        }
    }

    /// EHLO/HELO: a new start, as RSET (RFC 5321 §4.1.4).
    fn hello(&mut self, arg: &str, extended: bool) {
        let name = arg.split(' ').next().unwrap_or_default();
        if name.is_empty() || name.len() > MAX_CLIENT_NAME {
            return self.refuse(syntax(if extended { "EHLO" } else { "HELO" }));
        }
        self.reset_envelope();
        self.client_name = Some(name.to_owned());
        let mut text = format!("{} Hello {name}", self.config.hostname);
        if extended {
            text.push_str(&format!(
                "\nSIZE {}\n8BITMIME\nENHANCEDSTATUSCODES",
                self.config.max_message_size
            ));
            if self.config.tls_offered && !self.tls {
                text.push_str("\nSTARTTLS");
            }
            if self.config.auth_required && self.tls {
                text.push_str("\nAUTH PLAIN LOGIN");
            }
        }
        self.write(&Answer::plain(250, text));
    }

    fn starttls(&mut self, arg: &str) {
        if !self.config.tls_offered {
            return self.write(&Answer::new(454, "4.7.0", "TLS not available"));
        }
        if self.tls {
            return self.refuse(Answer::new(503, "5.5.1", "TLS already active"));
        }
        if !arg.is_empty() {
            return self.refuse(syntax("STARTTLS"));
        }
        self.write(&Answer::new(220, "2.0.0", "Ready to start TLS"));
        self.state = State::TlsHandshake;
    }

    fn auth(&mut self, arg: &str) {
        let refusal = if !self.config.auth_required {
            Some(Answer::new(503, "5.5.1", "AUTH not available"))
        } else if !self.tls {
            Some(Answer::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ))
        } else if self.client_name.is_none() {
            Some(send_ehlo_first())
        } else if self.authenticated {
            Some(Answer::new(503, "5.5.1", "Already authenticated"))
        } else if self.sender {
            Some(Answer::new(
                503,
                "5.5.1",
                "AUTH not permitted during a mail transaction",
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return self.refuse(refusal);
        }
        let mut words = arg.split(' ').filter(|w| !w.is_empty());
        let (Some(mechanism), initial, None) = (words.next(), words.next(), words.next()) else {
            return self.refuse(syntax("AUTH mechanism [initial-response]"));
        };
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("PLAIN", None) => {
                self.write(&Answer::plain(334, ""));
                self.state = State::Auth(AuthStep::PlainResponse);
            }
            ("PLAIN", Some(response)) => self.on_auth_response(AuthStep::PlainResponse, response),
            ("LOGIN", None) => {
                self.write(&Answer::plain(334, LOGIN_USERNAME));
                self.state = State::Auth(AuthStep::LoginUsername);
            }
            ("LOGIN", Some(response)) => self.on_auth_response(AuthStep::LoginUsername, response),
            _ => self.refuse(Answer::new(
                504,
                "5.5.4",
                "Unrecognized authentication type",
            )),
        }
    }

    /// A base64 response in an AUTH exchange (on the AUTH line or after a `334`).
    fn on_auth_response(&mut self, step: AuthStep, response: &str) {
        if response == "*" {
            return self.refuse(Answer::new(501, "5.7.0", "Authentication cancelled"));
        }
        // RFC 4954 §4: `=` is an empty response.
        let decoded = if response == "=" {
            Ok(Vec::new())
        } else {
            STANDARD.decode(response)
        };
        let Ok(decoded) = decoded else {
            return self.refuse(Answer::new(501, "5.5.2", "Invalid base64"));
        };
        let attempt = match step {
            AuthStep::PlainResponse => plain_credentials(&decoded),
            AuthStep::LoginUsername => {
                self.write(&Answer::plain(334, LOGIN_PASSWORD));
                self.state = State::Auth(AuthStep::LoginPassword { username: decoded });
                return;
            }
            AuthStep::LoginPassword { username } => credential(username)
                .zip(credential(decoded))
                .map(|(username, password)| {
                    AuthAttempt::new(AuthMechanism::Login, username, password)
                }),
        };
        match attempt {
            Some(attempt) => self.state = State::Asking(Question::Auth(attempt)),
            None => self.refuse(auth_invalid()),
        }
    }

    fn mail(&mut self, arg: &str) {
        if self.client_name.is_none() {
            return self.refuse(send_ehlo_first());
        }
        if self.config.auth_required && !self.authenticated {
            return self.refuse(Answer::new(530, "5.7.0", "Authentication required"));
        }
        if self.sender {
            return self.refuse(Answer::new(503, "5.5.1", "Sender already specified"));
        }
        let Some((address, params)) = parse_path(arg, "FROM:") else {
            return self.refuse(syntax("MAIL FROM:<address>"));
        };
        let mut size = None;
        let mut body = false;
        let mut auth = false;
        for param in params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key.to_ascii_uppercase().as_str() {
                "SIZE" if size.is_none() => match parse_size(value) {
                    Some(n) => size = Some(n),
                    None => return self.refuse(syntax("SIZE=<number>")),
                },
                "BODY" if !body => {
                    if !(value.eq_ignore_ascii_case("7BIT")
                        || value.eq_ignore_ascii_case("8BITMIME"))
                    {
                        return self.refuse(syntax("BODY=7BIT or BODY=8BITMIME"));
                    }
                    body = true;
                }
                // RFC 4954 §5: a server that offers AUTH accepts the parameter; what it
                // claims about the message's submitter is not taken into account.
                "AUTH" if !auth && !value.is_empty() => auth = true,
                "SIZE" | "BODY" | "AUTH" => return self.refuse(syntax("MAIL FROM:<address>")),
                _ => return self.refuse(unsupported_parameter()),
            }
        }
        if !address.is_empty() && check_address("from", &address).is_err() {
            return self.refuse(Answer::new(501, "5.1.7", "Bad sender address syntax"));
        }
        if size.is_some_and(|n| n > self.config.max_message_size) {
            return self.write(&Answer::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
        }
        self.state = State::Asking(Question::Sender { address, size });
    }

    fn rcpt(&mut self, arg: &str) {
        if !self.sender {
            return self.refuse(need_mail());
        }
        let Some((address, mut params)) = parse_path(arg, "TO:") else {
            return self.refuse(syntax("RCPT TO:<address>"));
        };
        if params.next().is_some() {
            return self.refuse(unsupported_parameter());
        }
        if check_address("to", &address).is_err() {
            return self.refuse(Answer::new(501, "5.1.3", "Bad recipient address syntax"));
        }
        if self.recipients >= self.config.max_recipients {
            return self.write(&Answer::new(452, "4.5.3", "Too many recipients"));
        }
        self.state = State::Asking(Question::Recipient(address));
    }

    fn data(&mut self, arg: &str) {
        if !arg.is_empty() {
            return self.refuse(syntax("DATA"));
        }
        if !self.sender {
            return self.refuse(need_mail());
        }
        if self.recipients == 0 {
            return self.write(&Answer::new(554, "5.5.1", "No valid recipients"));
        }
        self.write(&Answer::plain(
            354,
            "Start mail input; end with <CRLF>.<CRLF>",
        ));
        self.state = State::Body(Unstuffer::default());
    }

    fn reset_envelope(&mut self) {
        self.sender = false;
        self.recipients = 0;
    }

    fn write(&mut self, answer: &Answer) {
        self.output.extend_from_slice(&answer.render());
    }

    /// A refused command: counted; the last one allowed gets `421` and the end instead.
    fn refuse(&mut self, answer: Answer) {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.write(&Answer::new(
                421,
                "4.7.0",
                "Too many errors, closing connection",
            ));
            return self.close(false);
        }
        self.write(&answer);
    }

    /// The caller's answer to a question. A `421` means the service is closing the
    /// channel (RFC 5321 §3.8), so it is the last thing written.
    fn verdict_refusal(&mut self, answer: &Answer) {
        self.write(answer);
        if answer.code == 421 {
            self.close(false);
        }
    }

    fn close(&mut self, mid_message: bool) {
        self.state = State::Closed { mid_message };
        self.input.clear();
    }
}

impl fmt::Debug for Server {
    /// Where the conversation stands, never bytes (they may hold a password or content).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Command => "command",
            State::Auth(_) => "auth",
            State::Asking(_) => "asking",
            State::TlsHandshake => "tls-handshake",
            State::Body(_) => "body",
            State::Closed { .. } => "closed",
        };
        f.debug_struct("Server")
            .field("state", &state)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("client_name", &self.client_name)
            .field("recipients", &self.recipients)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// `FROM:<address> params…` (or `TO:`): the address between the angle brackets and the
/// parameters after them. A space after the colon is allowed; the brackets are not
/// optional. `None`: not of this form.
fn parse_path<'a>(
    arg: &'a str,
    keyword: &str,
) -> Option<(String, impl Iterator<Item = &'a str> + use<'a>)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start_matches(' ');
    let inner = rest.strip_prefix('<')?;
    let close = inner.find('>')?;
    let address = &inner[..close];
    if address.contains('<') {
        return None;
    }
    let params = &inner[close + 1..];
    if !(params.is_empty() || params.starts_with(' ')) {
        return None;
    }
    Some((
        address.to_owned(),
        params.split(' ').filter(|p| !p.is_empty()),
    ))
}

/// `SIZE=n` (RFC 1870): 1 to 20 digits.
fn parse_size(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// RFC 4616: `authzid NUL authcid NUL passwd`. An authorization identity other than the
/// user's own is not supported (the relay acts for nobody else).
fn plain_credentials(message: &[u8]) -> Option<AuthAttempt> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if !(authzid.is_empty() || authzid == authcid) {
        return None;
    }
    let username = credential(authcid.to_vec())?;
    let password = credential(passwd.to_vec())?;
    Some(AuthAttempt::new(AuthMechanism::Plain, username, password))
}

/// A username or password: non-empty UTF-8 without NUL, CR or LF.
fn credential(bytes: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(bytes).ok()?;
    let bad = text.is_empty() || text.contains(['\0', '\r', '\n']);
    (!bad).then_some(text)
}

fn syntax(usage: &str) -> Answer {
    Answer::new(501, "5.5.4", format!("Syntax: {usage}"))
}

fn line_too_long() -> Answer {
    Answer::new(500, "5.5.2", "Line too long")
}

fn send_ehlo_first() -> Answer {
    Answer::new(503, "5.5.1", "Send EHLO first")
}

fn need_mail() -> Answer {
    Answer::new(503, "5.5.1", "Need MAIL command")
}

fn unsupported_parameter() -> Answer {
    Answer::new(555, "5.5.4", "Unsupported parameter")
}

fn auth_invalid() -> Answer {
    Answer::new(535, "5.7.8", "Authentication credentials invalid")
}

#[cfg(test)]
mod tests;
