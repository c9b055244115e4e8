//! Exchange Online's SMTP submission service (`smtp.office365.com:587`), sans-IO: one
//! [`SmtpSession`] per connection; bytes in, reply bytes out.
//!
//! The dialogue Exchange runs: a `220` greeting; EHLO lists STARTTLS and no AUTH before
//! TLS; `STARTTLS` → `220 2.0.0 SMTP server ready`, after which the wrapper must start TLS
//! ([`SmtpOutput::start_tls`]) and the client says EHLO again, now offered
//! `AUTH LOGIN XOAUTH2`; `AUTH XOAUTH2` checks the bearer token against the tokens the
//! identity fake issued ([`World`]) and that its UPN equals `user=`; MAIL FROM must be an
//! address the mailbox may send as; after DATA the From header is checked again (SendAs)
//! and the message lands in the World's mailbox.
//!
//! A client cannot exhaust memory: command lines are capped at [`MAX_LINE`], recipients
//! at [`MAX_RECIPIENTS`], kept message bytes by [`Settings`], and a session that keeps
//! erring is closed after [`MAX_ERRORS`] refusals.

mod data;
pub mod mime;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::SMTP_SEND_SCOPE;
use crate::clock::{iso_millis, rfc5322};
use crate::random;
use crate::scenario::{SendAsReply, SmtpCase};
use crate::world::{Account, ReceivedMessage, Settings, World};
use data::{DotReader, LineCheck, Sink};
pub use mime::{DecodedAttachment, DecodedMessage};

/// Longest line accepted at all, without CRLF: the XOAUTH2 response after `334` carries
/// a token of several kilobytes (RFC 4954 allows 12,288 octets for it).
pub const MAX_LINE: usize = 16 * 1024;
/// Longest command line by default, CRLF included (RFC 5321 §4.5.3.1.4;
/// [`Settings::max_command_line`]). A longer one, such as `AUTH XOAUTH2 <response>` with a
/// Microsoft token, is refused `500 5.5.2 Line too long` as a strict server (Dovecot's
/// submission service) refuses it: RFC 4954 §4 sends such a response after `334` instead.
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest line of a message, CRLF excluded (RFC 5322 §2.1.1).
pub const MAX_MESSAGE_LINE: usize = 998;
/// How long [`SmtpCase::SlowFinalReply`]'s named case waits before its `250`.
pub const SLOW_FINAL_REPLY_MS: u32 = 3_000;
/// Most recipients per message (Exchange Online: 500).
pub const MAX_RECIPIENTS: usize = 500;
/// Refused commands after which the session is closed.
pub const MAX_ERRORS: u32 = 20;
/// The SIZE Exchange Online advertises (150 MB), whatever it enforces.
pub const ADVERTISED_SIZE: u64 = 157_286_400;

/// What the wrapper must do after [`SmtpSession::feed`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmtpOutput {
    /// Reply bytes to send, in order (several when the client pipelines).
    pub reply: Vec<u8>,
    /// Send `reply`, then start TLS as the server; every byte the client sent after
    /// STARTTLS in plain text has been discarded, as RFC 3207 requires.
    pub start_tls: bool,
    /// Send `reply`, then close the connection.
    pub close: bool,
    /// Wait this long before sending `reply` (a slow server, [`SmtpCase::SlowFinalReply`]).
    pub delay: Duration,
}

/// What the session expects next.
enum Mode {
    /// A command line.
    Command,
    /// The rest of a line that was too long, to be discarded.
    Overflow,
    /// The XOAUTH2 blob after `334 `.
    XoauthBlob,
    /// The empty line that answers an error challenge.
    ChallengeAnswer,
    /// AUTH LOGIN's user name, then password.
    LoginUser,
    LoginPassword,
    /// DATA's body, and what its raw lines broke.
    Data(DotReader, LineCheck),
    /// A BDAT chunk: bytes still to come, whether it is the last, and the refusal to send
    /// once it has been read (RFC 3030: a refused chunk is still consumed).
    Bdat {
        remaining: u64,
        last: bool,
        refusal: Option<String>,
    },
}

/// One transaction's envelope.
struct Envelope {
    from: String,
    rcpt: Vec<String>,
    /// `BODY=8BITMIME` (or `SMTPUTF8`) was given: 8-bit message bytes are allowed.
    eight_bit: bool,
}

/// One SMTP connection to the Exchange fake.
pub struct SmtpSession {
    world: World,
    settings: Settings,
    peer: String,
    started: Duration,
    session_id: String,
    tls: bool,
    greeted: bool,
    account: Option<Account>,
    envelope: Option<Envelope>,
    message: Option<Sink>,
    mode: Mode,
    line: Vec<u8>,
    errors: u32,
    closed: bool,
}

impl SmtpSession {
    /// A new connection from `peer` (an IP address, shown in the EHLO reply) at `now`.
    pub fn new(world: World, peer: &str, now: Duration) -> Self {
        world.count_request("smtp");
        let settings = world.settings();
        Self {
            world,
            settings,
            peer: peer
                .chars()
                .filter(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
                .take(45)
                .collect(),
            started: now,
            session_id: random::hex_upper(16),
            tls: false,
            greeted: false,
            account: None,
            envelope: None,
            message: None,
            mode: Mode::Command,
            line: Vec::new(),
            errors: 0,
            closed: false,
        }
    }

    /// `220 <host> Microsoft ESMTP MAIL Service ready at <date>`.
    pub fn greeting(&self) -> Vec<u8> {
        format!(
            "220 {} Microsoft ESMTP MAIL Service ready at {}\r\n",
            self.settings.smtp_host,
            rfc5322(self.started)
        )
        .into_bytes()
    }

    /// Whether TLS was started (STARTTLS accepted).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The account that authenticated, if any.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// Whether the session has ended (QUIT or too many errors).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds bytes the client sent at `now`; returns the replies and what to do next.
    /// Bytes after the session closed (QUIT, or a `421`) get no reply; they are recorded
    /// as `after close: …` in [`World::smtp_commands`], since a client must not send them.
    pub fn feed(&mut self, input: &[u8], now: Duration) -> SmtpOutput {
        let mut out = SmtpOutput::default();
        if self.closed {
            for line in input.split_inclusive(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\n").unwrap_or(line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let shown: String = redacted(&self.mode, line).chars().take(80).collect();
                self.world.log_smtp(format!("after close: {shown}"));
            }
            out.close = true;
            return out;
        }
        let mut rest = input;
        while !rest.is_empty() && !self.closed {
            match &mut self.mode {
                Mode::Data(reader, check) => {
                    let sink = self
                        .message
                        .get_or_insert_with(|| Sink::new(self.settings.keep_raw_up_to));
                    let (used, done) = reader.push(rest, sink);
                    check.push(&rest[..used]);
                    rest = &rest[used..];
                    if done {
                        let Mode::Data(_, check) = std::mem::replace(&mut self.mode, Mode::Command)
                        else {
                            unreachable!("matched Mode::Data above")
                        };
                        self.end_of_message(now, Some(check), &mut out);
                    }
                }
                Mode::Bdat { remaining, .. } => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    *remaining -= take as u64;
                    let done = *remaining == 0;
                    if let Some(sink) = &mut self.message {
                        sink.write(&rest[..take]);
                    }
                    rest = &rest[take..];
                    if done {
                        self.end_of_chunk(now, &mut out);
                    }
                }
                _ => match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let segment = &rest[..i];
                        rest = &rest[i + 1..];
                        if matches!(self.mode, Mode::Overflow) {
                            self.mode = Mode::Command;
                        } else if self.line.len() + segment.len() > MAX_LINE {
                            self.line.clear();
                            self.mode = Mode::Command;
                            self.reply(&mut out, "500 5.5.2 Line too long".into());
                        } else {
                            self.line.extend_from_slice(segment);
                            let mut line = std::mem::take(&mut self.line);
                            let crlf_len = line.len() + 1;
                            if line.last() == Some(&b'\r') {
                                line.pop();
                            }
                            if matches!(self.mode, Mode::Command)
                                && crlf_len > self.settings.max_command_line
                            {
                                self.log_line(&line, " (refused: line too long)");
                                self.reply(&mut out, "500 5.5.2 Line too long".into());
                                continue;
                            }
                            self.log_line(&line, "");
                            self.handle_line(&line, now, &mut out);
                            if out.start_tls {
                                // Anything pipelined after STARTTLS is not trusted (RFC 3207).
                                break;
                            }
                        }
                    }
                    None => {
                        if !matches!(self.mode, Mode::Overflow) {
                            if self.line.len() + rest.len() > MAX_LINE {
                                self.line.clear();
                                self.mode = Mode::Overflow;
                                self.reply(&mut out, "500 5.5.2 Line too long".into());
                            } else {
                                self.line.extend_from_slice(rest);
                            }
                        }
                        rest = &[];
                    }
                },
            }
            if self.errors >= MAX_ERRORS && !self.closed {
                out.reply.extend_from_slice(
                    b"421 4.7.0 Too many errors on this connection, closing transmission channel\r\n",
                );
                self.closed = true;
            }
        }
        out.close = self.closed;
        out
    }

    /// Appends one reply line; 5xx replies count towards [`MAX_ERRORS`].
    fn reply(&mut self, out: &mut SmtpOutput, text: String) {
        if text.starts_with('5') {
            self.errors += 1;
        }
        if self.settings.hang_up_after_refusal && (text.starts_with('4') || text.starts_with('5')) {
            self.closed = true;
        }
        out.reply.extend_from_slice(text.as_bytes());
        out.reply.extend_from_slice(b"\r\n");
    }

    /// Records a line the client sent in [`World::smtp_commands`], redacted (see [`redacted`]).
    fn log_line(&self, line: &[u8], note: &str) {
        let shown = redacted(&self.mode, line);
        self.world.log_smtp(format!("{shown}{note}"));
    }

    /// `[host time session]`: the diagnostics Exchange appends to refusals.
    fn stamp(&self, now: Duration) -> String {
        format!(
            "[{} {} {}]",
            self.settings.smtp_host,
            iso_millis(now),
            self.session_id
        )
    }

    fn handle_line(&mut self, line: &[u8], now: Duration, out: &mut SmtpOutput) {
        let text = String::from_utf8_lossy(line);
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::XoauthBlob => {
                if text == "*" {
                    self.reply(out, "501 5.7.0 Authentication cancelled".into());
                } else {
                    self.check_xoauth2(&text, now, out);
                }
            }
            // The only answer to an error challenge is an empty line (what Google
            // documents for XOAUTH2); anything else is a syntax error, not a new try.
            Mode::ChallengeAnswer if !line.is_empty() => {
                self.reply(
                    out,
                    "501 5.5.2 Syntax error: answer the error challenge with an empty line".into(),
                );
            }
            Mode::ChallengeAnswer => {
                let stamp = self.stamp(now);
                self.reply(
                    out,
                    format!("535 5.7.3 Authentication unsuccessful {stamp}"),
                );
            }
            Mode::LoginUser => {
                if text.trim() == "*" {
                    self.reply(out, "501 5.7.0 Authentication cancelled".into());
                } else {
                    self.mode = Mode::LoginPassword;
                    self.reply(out, "334 UGFzc3dvcmQ6".into());
                }
            }
            Mode::LoginPassword => {
                let stamp = self.stamp(now);
                self.reply(out, format!("535 5.7.139 Authentication unsuccessful, basic authentication is disabled. {stamp}"));
            }
            _ => self.command(&text, now, out),
        }
    }

    fn command(&mut self, text: &str, now: Duration, out: &mut SmtpOutput) {
        let (verb, args) = match text.split_once(' ') {
            Some((verb, args)) => (verb, args.trim()),
            None => (text.trim(), ""),
        };
        let host = self.settings.smtp_host.clone();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if args.is_empty() => {
                self.reply(out, "501 5.5.4 Invalid domain name".into())
            }
            "EHLO" => {
                self.greeted = true;
                self.reset();
                let auth_or_tls = if self.tls {
                    "AUTH LOGIN XOAUTH2"
                } else {
                    "STARTTLS"
                };
                let lines = [
                    format!("{host} Hello [{}]", self.peer),
                    format!("SIZE {ADVERTISED_SIZE}"),
                    "PIPELINING".into(),
                    "DSN".into(),
                    "ENHANCEDSTATUSCODES".into(),
                    auth_or_tls.into(),
                    "8BITMIME".into(),
                    "BINARYMIME".into(),
                    "CHUNKING".into(),
                    "SMTPUTF8".into(),
                ];
                let last = lines.len() - 1;
                for (i, line) in lines.iter().enumerate() {
                    let sep = if i == last { ' ' } else { '-' };
                    out.reply
                        .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
                }
            }
            "HELO" => {
                self.greeted = true;
                self.reset();
                self.reply(out, format!("250 {host} Hello [{}]", self.peer));
            }
            "STARTTLS" if self.tls => self.reply(out, "503 5.5.1 Bad sequence of commands".into()),
            "STARTTLS" => {
                self.reply(out, "220 2.0.0 SMTP server ready".into());
                self.tls = true;
                self.greeted = false;
                self.reset();
                out.start_tls = true;
            }
            "AUTH" => self.auth(args, now, out),
            "MAIL" => self.mail(args, now, out),
            "RCPT" => self.rcpt(args, out),
            "DATA" => {
                if let Some(refusal) = self.refuse_data() {
                    self.reply(out, refusal);
                } else {
                    self.message = Some(Sink::new(self.settings.keep_raw_up_to));
                    self.mode = Mode::Data(DotReader::new(), LineCheck::default());
                    self.reply(out, "354 Start mail input; end with <CRLF>.<CRLF>".into());
                }
            }
            "BDAT" => self.bdat(args, now, out),
            "RSET" => {
                self.reset();
                self.reply(out, "250 2.0.0 Resetting".into());
            }
            "NOOP" => self.reply(out, "250 2.0.0 OK".into()),
            "VRFY" => self.reply(out, "252 2.1.5 Cannot VRFY user".into()),
            "QUIT" => {
                if self.world.scenario().smtp != SmtpCase::QuitUnanswered {
                    self.reply(out, "221 2.0.0 Service closing transmission channel".into());
                }
                self.closed = true;
            }
            _ => self.reply(out, "500 5.3.3 Unrecognized command".into()),
        }
    }

    /// `421 4.3.2 Service not available`: Exchange closes the connection, whatever the
    /// client was doing (DESIGN.md). Whatever the client sends after it is recorded.
    fn service_unavailable(&mut self, out: &mut SmtpOutput) {
        self.reply(
            out,
            "421 4.3.2 Service not available, closing transmission channel".into(),
        );
        self.closed = true;
    }

    /// Drops the transaction in progress (not the authentication).
    fn reset(&mut self) {
        self.envelope = None;
        self.message = None;
    }

    /// The refusal of a command that needs TLS, EHLO and AUTH before it, if any.
    fn refuse_unauthenticated(&self, now: Duration) -> Option<String> {
        if !self.tls {
            Some("530 5.7.0 Must issue a STARTTLS command first".into())
        } else if !self.greeted {
            Some("503 5.5.2 Send hello first".into())
        } else if self.account.is_none() {
            Some(format!(
                "530 5.7.57 Client not authenticated to send mail {}",
                self.stamp(now)
            ))
        } else {
            None
        }
    }

    fn auth(&mut self, args: &str, now: Duration, out: &mut SmtpOutput) {
        if !self.tls {
            return self.reply(out, "530 5.7.0 Must issue a STARTTLS command first".into());
        }
        if !self.greeted {
            return self.reply(out, "503 5.5.2 Send hello first".into());
        }
        if self.account.is_some() || self.envelope.is_some() {
            return self.reply(out, "503 5.5.1 Bad sequence of commands".into());
        }
        let (mechanism, initial) = match args.split_once(' ') {
            Some((m, i)) => (m, Some(i)),
            None => (args, None),
        };
        match (mechanism.to_ascii_uppercase().as_str(), initial) {
            ("XOAUTH2", Some(blob)) => self.check_xoauth2(blob, now, out),
            ("XOAUTH2", None) => {
                self.mode = Mode::XoauthBlob;
                self.reply(out, "334 ".into());
            }
            ("LOGIN", _) => {
                self.mode = Mode::LoginUser;
                self.reply(out, "334 VXNlcm5hbWU6".into());
            }
            _ => self.reply(out, "504 5.7.4 Unrecognized authentication type".into()),
        }
    }

    /// Checks `AUTH XOAUTH2`'s `base64("user=" U "\x01auth=Bearer " T "\x01\x01")`.
    fn check_xoauth2(&mut self, blob: &str, now: Duration, out: &mut SmtpOutput) {
        let stamp = self.stamp(now);
        let disabled = |what: &str| {
            format!(
                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the {what}. Visit https://aka.ms/smtp_auth_disabled for more information. {stamp}"
            )
        };
        let scenario = self.world.scenario();
        match scenario.smtp {
            SmtpCase::AuthDisabledForTenant => return self.reply(out, disabled("Tenant")),
            SmtpCase::AuthDisabledForMailbox => return self.reply(out, disabled("Mailbox")),
            SmtpCase::SecurityDefaults => {
                return self.reply(
                    out,
                    format!("535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator. {stamp}"),
                );
            }
            SmtpCase::ConditionalAccess => {
                return self.reply(
                    out,
                    format!("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator. {stamp}"),
                );
            }
            SmtpCase::AuthUnsuccessful => {
                return self.reply(
                    out,
                    format!("535 5.7.3 Authentication unsuccessful {stamp}"),
                );
            }
            SmtpCase::ErrorChallenge => {
                self.mode = Mode::ChallengeAnswer;
                let challenge = STANDARD.encode(
                    r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#,
                );
                return self.reply(out, format!("334 {challenge}"));
            }
            _ => {}
        }
        let unsuccessful = format!("535 5.7.3 Authentication unsuccessful {stamp}");
        let Ok(decoded) = STANDARD.decode(blob) else {
            return self.reply(
                out,
                "501 5.5.2 Cannot Base64-decode Client responses".into(),
            );
        };
        let account = parse_xoauth2(&decoded).and_then(|(user, token)| {
            self.world
                .token_account(&token, SMTP_SEND_SCOPE, now)
                .filter(|account| account.upn.eq_ignore_ascii_case(&user))
        });
        let Some(account) = account else {
            return self.reply(out, unsuccessful);
        };
        if scenario.smtp == SmtpCase::ConcurrentLimit || !self.world.open_session(&account.upn) {
            return self.reply(
                out,
                format!("432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. {stamp}"),
            );
        }
        self.account = Some(account);
        self.reply(out, "235 2.7.0 Authentication successful".into());
    }

    fn mail(&mut self, args: &str, now: Duration, out: &mut SmtpOutput) {
        if let Some(refusal) = self.refuse_unauthenticated(now) {
            return self.reply(out, refusal);
        }
        if self.envelope.is_some() {
            return self.reply(out, "503 5.5.2 Sender already specified".into());
        }
        let Some((address, params)) = path_argument(args, "FROM:") else {
            return self.reply(out, "501 5.1.7 Invalid address".into());
        };
        let mut eight_bit = false;
        for param in params.split_whitespace() {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if key.eq_ignore_ascii_case("SMTPUTF8")
                || (key.eq_ignore_ascii_case("BODY") && value.eq_ignore_ascii_case("8BITMIME"))
            {
                eight_bit = true;
            } else if key.eq_ignore_ascii_case("SIZE") {
                match value.parse::<u64>() {
                    Ok(size) if size > self.settings.max_message_size => {
                        return self.reply(
                            out,
                            "552 5.3.4 Message size exceeds fixed maximum message size".into(),
                        );
                    }
                    Ok(_) => {}
                    Err(_) => return self.reply(out, "501 5.5.4 Invalid arguments".into()),
                }
            }
        }
        // Continuous-error throttling refuses the sender, whoever it is, at MAIL FROM.
        let throttled = match self.world.scenario().smtp {
            SmtpCase::ThrottledMailboxFull => {
                Some("251 Sender throttled due to continuous mailbox full errors.")
            }
            SmtpCase::ThrottledSendAsDenied => {
                Some("252 Sender throttled due to continuous send as denied errors.")
            }
            SmtpCase::ThrottledInvalidLicense => {
                Some("253 Sender throttled due to continuous invalid license errors.")
            }
            _ => None,
        };
        if let Some(throttled) = throttled {
            return self.reply(out, format!("550 5.2.{throttled}"));
        }
        let after_data = self.world.scenario().smtp == SmtpCase::SendAsDeniedAfterData;
        let allowed = after_data
            || self
                .account
                .as_ref()
                .is_some_and(|a| a.may_send_as(&address));
        if !allowed {
            let stamp = self.stamp(now);
            return self.reply(
                out,
                format!("550 5.7.60 SMTP; Client does not have permissions to send as this sender {stamp}"),
            );
        }
        if self.world.scenario().smtp == SmtpCase::ServiceUnavailableAfterMail {
            return self.service_unavailable(out);
        }
        self.envelope = Some(Envelope {
            from: address,
            rcpt: Vec::new(),
            eight_bit,
        });
        self.reply(out, "250 2.1.0 Sender OK".into());
    }

    fn rcpt(&mut self, args: &str, out: &mut SmtpOutput) {
        if self.envelope.is_none() {
            return self.reply(out, "503 5.5.2 Need mail command".into());
        }
        let address = match path_argument(args, "TO:") {
            Some((address, _)) if !address.is_empty() => address,
            _ => return self.reply(out, "501 5.1.3 Invalid address".into()),
        };
        let Some(envelope) = self.envelope.as_mut() else {
            return;
        };
        if envelope.rcpt.len() >= MAX_RECIPIENTS {
            return self.reply(out, "452 4.5.3 Too many recipients".into());
        }
        envelope.rcpt.push(address);
        self.reply(out, "250 2.1.5 Recipient OK".into());
    }

    /// Why DATA or BDAT cannot start now, if it cannot.
    fn refuse_data(&self) -> Option<String> {
        match &self.envelope {
            None => Some("503 5.5.2 Need mail command".into()),
            Some(e) if e.rcpt.is_empty() => Some("503 5.5.2 Need rcpt command".into()),
            _ => None,
        }
    }

    fn bdat(&mut self, args: &str, now: Duration, out: &mut SmtpOutput) {
        let mut parts = args.split_whitespace();
        let size = parts.next().and_then(|s| s.parse::<u64>().ok());
        let last = match parts.next() {
            None => false,
            Some(word) if word.eq_ignore_ascii_case("LAST") => true,
            Some(_) => return self.reply(out, "501 5.5.4 Invalid arguments".into()),
        };
        let Some(size) = size else {
            return self.reply(out, "501 5.5.4 Invalid arguments".into());
        };
        let refusal = self.refuse_data();
        if refusal.is_none() && self.message.is_none() {
            self.message = Some(Sink::new(self.settings.keep_raw_up_to));
        }
        self.mode = Mode::Bdat {
            remaining: size,
            last,
            refusal,
        };
        if size == 0 {
            // No chunk bytes follow: the chunk is complete now.
            self.end_of_chunk(now, out);
        }
    }

    fn end_of_chunk(&mut self, now: Duration, out: &mut SmtpOutput) {
        let Mode::Bdat { last, refusal, .. } = std::mem::replace(&mut self.mode, Mode::Command)
        else {
            return;
        };
        if let Some(refusal) = refusal {
            return self.reply(out, refusal);
        }
        if last {
            self.end_of_message(now, None, out);
        } else {
            let size = self.message.as_ref().map_or(0, Sink::size);
            self.reply(out, format!("250 2.0.0 {size} bytes received"));
        }
    }

    /// The checks Exchange makes once the whole message is in, then delivery. `lines`:
    /// what DATA's raw lines broke (BDAT carries binary, unchecked).
    fn end_of_message(&mut self, now: Duration, lines: Option<LineCheck>, out: &mut SmtpOutput) {
        let (Some(sink), Some(envelope), Some(account)) = (
            self.message.take(),
            self.envelope.take(),
            self.account.clone(),
        ) else {
            return self.reply(out, "503 5.5.1 Bad sequence of commands".into());
        };
        let scenario = self.world.scenario();
        match scenario.smtp {
            SmtpCase::ServiceUnavailableAtFinalDot => return self.service_unavailable(out),
            SmtpCase::SlowFinalReply { millis } => {
                out.delay = Duration::from_millis(u64::from(millis));
            }
            _ => {}
        }
        if let Some(lines) = lines
            && let Some(refusal) = lines.refusal(envelope.eight_bit)
        {
            return self.reply(out, refusal.into());
        }
        let headers = sink.headers().to_vec();
        if header_value(&headers, "From").is_none_or(|from| addresses(&from).is_empty()) {
            // RFC 5322 §3.6: From is required; Exchange Online refuses such a message.
            return self.reply(
                out,
                "550 5.6.0 Invalid message content: the message has no From header (RFC 5322 section 3.6)".into(),
            );
        }
        let mailbox_host = self.settings.mailbox_host.clone();
        if sink.size() > self.settings.max_message_size {
            return self.reply(
                out,
                "552 5.3.4 Message size exceeds fixed maximum message size".into(),
            );
        }
        if scenario.smtp == SmtpCase::SubmissionQuota
            || !self.world.record_submission(&account.upn, now)
        {
            return self.reply(
                out,
                format!("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message Cannot submit message. [Hostname={mailbox_host}]"),
            );
        }
        match scenario.smtp {
            SmtpCase::MailboxFull => {
                return self.reply(
                    out,
                    format!("554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionQuotaExceeded; Failed to process message due to a permanent exception with message Cannot submit message. [Hostname={mailbox_host}]"),
                );
            }
            SmtpCase::OutboundSpam => {
                return self.reply(
                    out,
                    format!("554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; Failed to process message due to a permanent exception with message WASCL UserAction verdict is not None. Actual verdict is Suspend, ShowTierUpgrade. OutboundSpamException: WASCL UserAction verdict is not None. Actual verdict is Suspend, ShowTierUpgrade.[Hostname={mailbox_host}]"),
                );
            }
            _ => {}
        }
        let from = header_value(&headers, "From")
            .map(|v| addresses(&v))
            .unwrap_or_default();
        if let Some(denied) = from.iter().find(|a| !account.may_send_as(a)) {
            let denied: String = denied
                .chars()
                .filter(|c| !c.is_control())
                .take(320)
                .collect();
            let text = match scenario.send_as_reply {
                SendAsReply::Current => format!(
                    "554 5.2.252 SendAsDenied; {} not allowed to send as {denied}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message. 0.35250:0A006F8A, 1.36674:0A000000, 1.61250:00000000[EndDiagnosticData] [Hostname={mailbox_host}]",
                    account.upn
                ),
                SendAsReply::Legacy => format!(
                    "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message. [Hostname={mailbox_host}]"
                ),
            };
            return self.reply(out, text);
        }
        let message_id = header_value(&headers, "Message-ID")
            .map(|v| {
                v.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(250)
                    .collect::<String>()
            })
            .filter(|id| id.starts_with('<') && id.ends_with('>') && id.len() > 2)
            .unwrap_or_else(|| format!("<{}@{mailbox_host}>", random::hex_upper(32)));
        let (size, sha256, raw) = sink.finish();
        self.world.deliver(ReceivedMessage {
            account: account.upn.clone(),
            mail_from: envelope.from,
            rcpt_to: envelope.rcpt,
            headers: String::from_utf8_lossy(&headers).into_owned(),
            size,
            sha256,
            raw,
            message_id: message_id.clone(),
            received_at: now,
        });
        self.reply(
            out,
            format!("250 2.0.0 OK {message_id} [Hostname={mailbox_host}]"),
        );
    }
}

impl World {
    /// Every line clients sent to the Exchange fake, in order, across connections (the
    /// most recent [`MAX_LOGGED_LINES`]): commands as sent, XOAUTH2 and LOGIN responses as
    /// their length only, message content not at all; lines after the server closed the
    /// session as `after close: …`. What a test checks the client's dialogue with.
    pub fn smtp_commands(&self) -> Vec<String> {
        self.lock().smtp_log.iter().cloned().collect()
    }

    pub(crate) fn log_smtp(&self, line: String) {
        let mut state = self.lock();
        if state.smtp_log.len() >= MAX_LOGGED_LINES {
            state.smtp_log.pop_front();
        }
        state.smtp_log.push_back(line);
    }
}

/// Lines [`World::smtp_commands`] keeps.
pub const MAX_LOGGED_LINES: usize = 1000;

/// How `line`, read in `mode`, shows in [`World::smtp_commands`]. Tests print that log and
/// the demo keeps it, so no token may show, however a client sends it: an XOAUTH2 or LOGIN
/// response after `334` shows as its length only, and so does the initial response of
/// `AUTH MECHANISM RESPONSE` (words split on any blank, as a careless client may use a tab).
/// A command line that starts with a base64 word longer than any SMTP verb is a response
/// sent when none was asked for (pipelined after a refused `AUTH`, or after the session
/// closed), or a bare token: it shows as its length too. So does a mechanism name that is
/// no SASL name (RFC 4422 §3.1).
fn redacted(mode: &Mode, line: &[u8]) -> String {
    let secret = |what: &str, len: usize| format!("<{what}, {len} octets>");
    match mode {
        Mode::XoauthBlob => return secret("XOAUTH2 response", line.len()),
        Mode::LoginUser | Mode::LoginPassword => return secret("LOGIN response", line.len()),
        Mode::ChallengeAnswer if line.is_empty() => return "<empty line>".into(),
        Mode::ChallengeAnswer => return secret("non-empty answer", line.len()),
        _ => {}
    }
    let text = String::from_utf8_lossy(line);
    let blank = |c: char| c == ' ' || c == '\t';
    let (verb, rest) = text.split_once(blank).unwrap_or((&text, ""));
    if verb.eq_ignore_ascii_case("AUTH") && !rest.is_empty() {
        let (mechanism, response) = rest.split_once(blank).unwrap_or((rest, ""));
        let mechanism = if is_sasl_name(mechanism) {
            mechanism.to_owned()
        } else {
            secret("mechanism", mechanism.len())
        };
        return if rest.contains(blank) {
            let response = secret("initial response", response.len());
            format!("{verb} {mechanism} {response}")
        } else {
            format!("{verb} {mechanism}")
        };
    }
    if starts_like_base64(&text) {
        return secret("base64 line", line.len());
    }
    text.chars().take(200).collect()
}

/// A SASL mechanism name: 1 to 20 upper-case letters, digits, `-` or `_` (RFC 4422 §3.1;
/// compared without regard to case, as the server does).
fn is_sasl_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `text` starts with more characters of base64 (or base64url, as tokens use)
/// than any SMTP verb has (`STARTTLS`, 8 letters): no command line does.
fn starts_like_base64(text: &str) -> bool {
    text.bytes()
        .take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
        .count()
        > 8
}

impl Drop for SmtpSession {
    /// A closed connection gives its concurrent-session slot back.
    fn drop(&mut self) {
        if let Some(account) = &self.account {
            self.world.close_session(&account.upn);
        }
    }
}

/// `user` and `token` from a decoded XOAUTH2 response, which must be exactly
/// `user=` U `^A` `auth=Bearer ` T `^A^A`: in that order, no other field, nothing trimmed,
/// no empty user or token, no space in the token.
fn parse_xoauth2(decoded: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(decoded).ok()?;
    let rest = text.strip_prefix("user=")?.strip_suffix("\x01\x01")?;
    let (user, auth) = rest.split_once('\x01')?;
    let token = auth.strip_prefix("auth=Bearer ")?;
    let valid = !user.is_empty()
        && !token.is_empty()
        && !token.contains(['\x01', ' '])
        && !user.contains('\x01');
    valid.then(|| (user.to_owned(), token.to_owned()))
}

/// The address and parameters of `FROM:<a@b> SIZE=1` (or `TO:`); `<>` gives "".
fn path_argument(args: &str, keyword: &str) -> Option<(String, String)> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    let address = &rest[..end];
    let params = rest[end + 1..].trim().to_string();
    if address.is_empty() {
        return Some((String::new(), params));
    }
    let valid = address.len() <= 320
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<')
        && address
            .rsplit_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    valid.then(|| (address.to_string(), params))
}

/// The unfolded value of header `name` in a header section (first occurrence).
pub fn header_value(headers: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(headers);
    let mut value: Option<String> = None;
    for line in text.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((field, rest)) = line.split_once(':')
            && field.trim_end().eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_string());
        }
    }
    value
}

/// The addresses in a From header value: `"Name" <a@b>, c@d`.
fn addresses(value: &str) -> Vec<String> {
    if value.contains('<') {
        value
            .split('<')
            .skip(1)
            .filter_map(|part| part.split_once('>').map(|(a, _)| a.trim().to_string()))
            .filter(|a| !a.is_empty())
            .collect()
    } else {
        value
            .split(',')
            .map(|a| a.split('(').next().unwrap_or_default().trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests;
