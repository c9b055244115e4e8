//! Sending a scan as mail: the preconditions (each refused before any connection), a
//! valid access token, the MIME message streamed from the host's attachments, and the
//! SMTP session (STARTTLS, AUTH XOAUTH2) driven over the host's connection. Every failure
//! comes back explained ([`crate::diagnose::smtp_failure`]). A send whose message went
//! out in full is journaled until its outcome is recorded ([`journal`]), so a device that
//! dies before the server's verdict still says the message may have been delivered.

pub mod journal;
pub mod submission;

use crate::capabilities::{Attachments, Http, NetFailure, SmtpConnector};
use crate::diagnose::{Diagnostic, Severity};
use crate::from_policy::{self, WalkUpUser};
use crate::history;
use crate::mime::{self, Attachment, AttachmentWriter, Headers, MessageWriter, TextEncoding};
use crate::oauth;
use crate::remedy::Remedy;
use crate::settings::{LoginCredentials, Settings};
use crate::smtp::Envelope;
use crate::storage::{self, Storage};

use submission::{MessageSource, Submission};

/// Bytes read from an attachment at a time: a multiple of 57, so each read fills whole
/// base64 lines, and small enough that a 25 MB scan never sits in component memory.
pub const ATTACHMENT_CHUNK: u32 = 57 * 8 * 1024;
/// Bytes read from the server at a time.
pub(crate) const READ_CHUNK: u32 = 16 * 1024;

/// One message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub to: Vec<String>,
    /// A walk-up user's edit of From; `None` sends as the Device Email Address (S7).
    pub from: Option<String>,
    /// Who stands at the panel: with `from`, the From Address policy decides (S7).
    pub user: WalkUpUser,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<u32>,
    /// Which try this is, from 1.
    pub attempt: u32,
}

/// A message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReport {
    pub message_id: String,
    pub accepted: Vec<String>,
    pub server_reply: String,
    pub size: u64,
}

/// A message that was not sent, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendFailure {
    /// What the caller does about it (`send-error`'s cases in `wit/mailer.wit`).
    pub kind: SendFailureKind,
    pub diagnosis: Diagnostic,
    pub server_reply: Option<String>,
    /// Seconds after which to send again with the next attempt; only for a temporary
    /// failure while attempts remain ([`crate::diagnose::MAX_SEND_ATTEMPTS`]).
    pub retry_after: Option<u32>,
    /// How many attempts are allowed in all, for a failure with `retry_after`: the
    /// server's temporary refusals get [`crate::diagnose::MAX_SEND_ATTEMPTS`], a wait for another
    /// instance's token refresh [`REFRESH_WAIT_ATTEMPTS`].
    pub max_attempts: u32,
}

/// Attempts a send may spend waiting for another instance's token refresh: the refresh
/// lease lasts at most [`oauth::REFRESH_LEASE_SECONDS`] and each wait at most 5 s.
pub const REFRESH_WAIT_ATTEMPTS: u32 = 30;

/// What a caller does about a failed send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendFailureKind {
    /// Refused before any connection: change what the diagnosis names.
    NotSent,
    /// No usable sign-in: sign in again.
    SignInRequired,
    /// A server or the network failed it (retry if `retry_after` says so).
    Failed,
}

/// A precondition refused: nothing reached a server.
impl From<Diagnostic> for SendFailure {
    fn from(diagnosis: Diagnostic) -> Self {
        Self {
            kind: SendFailureKind::NotSent,
            diagnosis,
            server_reply: None,
            retry_after: None,
            max_attempts: 1,
        }
    }
}

impl SendFailure {
    /// A failure a server or the network to it caused.
    fn failed(diagnosis: Diagnostic) -> Self {
        Self {
            kind: SendFailureKind::Failed,
            ..diagnosis.into()
        }
    }
}

/// A send that gets no token: a sign-in that is gone or refused for good asks for a new
/// sign-in; an unreachable platform is the network's failure; another instance's refresh
/// is worth a retry in a few seconds, while waits remain (see [`token_failure`]).
impl From<oauth::TokenError> for SendFailure {
    fn from(err: oauth::TokenError) -> Self {
        use crate::signin::SigninErrorKind;
        let kind = match &err.failure {
            oauth::SigninFailure::SignInRequired(_)
            | oauth::SigninFailure::Refused(SigninErrorKind::SignInAgain, _) => {
                SendFailureKind::SignInRequired
            }
            oauth::SigninFailure::Settings(_) => SendFailureKind::NotSent,
            oauth::SigninFailure::Unreachable(_)
            | oauth::SigninFailure::Refused(..)
            | oauth::SigninFailure::Storage(_) => SendFailureKind::Failed,
        };
        Self {
            kind,
            diagnosis: err.failure.into_diagnosis(),
            server_reply: None,
            retry_after: err.retry_after,
            max_attempts: REFRESH_WAIT_ATTEMPTS,
        }
    }
}

/// A token failure of the send at `attempt`: its retry stands only while attempts remain.
pub(crate) fn token_failure(err: oauth::TokenError, attempt: u32) -> SendFailure {
    let mut failure = SendFailure::from(err);
    if attempt >= failure.max_attempts {
        failure.retry_after = None;
    }
    failure
}

/// A precondition refused, about the setting or message field `field`.
fn refuse_at(
    field: &'static str,
    code: &'static str,
    message: impl Into<String>,
    remedy: impl Into<Remedy>,
) -> SendFailure {
    Diagnostic::new(code, Severity::Error, message, remedy)
        .about(field)
        .into()
}

pub(crate) fn refuse(
    code: &'static str,
    message: impl Into<String>,
    remedy: impl Into<Remedy>,
) -> SendFailure {
    Diagnostic::new(code, Severity::Error, message, remedy).into()
}

pub(crate) fn smtp_net(err: NetFailure, settings: &Settings) -> SendFailure {
    SendFailure::failed(err.diagnostic(&format!(
        "the SMTP server {}:{}",
        settings.smtp_server, settings.send_port
    )))
}

/// Checks what must hold before the device connects anywhere. `signed_in`: whether a
/// grant is stored; without one nothing can be sent, and that is what the caller must hear
/// first (its remedy, signing in, also fills the Device Email Address).
pub fn check_preconditions(
    settings: &Settings,
    signed_in: bool,
    message: &OutgoingMessage,
) -> Result<(), SendFailure> {
    if !settings.is_exchange_online() {
        return Err(refuse_at(
            "service-provider",
            "provider-not-exchange-online",
            "[Service Provider] is not [Exchange Online/Outlook.com]; this device sends with OAuth 2.0 only through Exchange Online/Outlook.com.",
            "Select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page].",
        ));
    }
    // S6: Remotely Authenticated User cannot authenticate to Exchange Online.
    if settings.login_credentials == LoginCredentials::RemotelyAuthenticatedUser {
        return Err(refuse_at(
            "login-credentials",
            "login-credentials-not-system",
            "Authentication error: [Login Credentials for Email Send] is [Remotely Authenticated User], which Exchange Online/Outlook.com does not accept.",
            "Choose [System] in [Login Credentials for Email Send] on the web panel, and do not change it from the control panel.",
        ));
    }
    if !signed_in {
        return Err(SendFailure {
            kind: SendFailureKind::SignInRequired,
            ..oauth::sign_in_required().into()
        });
    }
    if settings.device_email.is_empty() {
        return Err(refuse_at(
            "device-email",
            "device-email-missing",
            "The Device Email Address is empty, so the message has no sender.",
            "Sign in with [Open Authentication Page] (the account's address becomes the Device Email Address), or set it in [Device Details].",
        ));
    }
    if message.to.is_empty() {
        return Err(refuse_at(
            "to",
            "no-recipients",
            "The message has no recipient.",
            "Enter at least one recipient address.",
        ));
    }
    // S7: the policy field of the user at the panel decides whether they may send at all
    // (after a failed LDAP search) and whether they may edit From.
    from_policy::check(
        &settings.from,
        message.user,
        message.from.as_deref(),
        &settings.device_email,
    )
    .map_err(|refusal| SendFailure::from(refusal.about("from")))
}

/// The message body as chunks, read lazily from the host's attachments. Each chunk is
/// written into one buffer that every chunk reuses, so a scan's base64 is not allocated
/// anew for each piece.
struct BodySource<'a, A: Attachments> {
    files: &'a A,
    head: Option<Vec<u8>>,
    pending: std::vec::IntoIter<(u32, Attachment, u64)>,
    writer: Option<MessageWriter>,
    current: Option<(u32, u64, AttachmentWriter)>,
    done: bool,
    buffer: Vec<u8>,
}

impl<A: Attachments> BodySource<'_, A> {
    /// The next piece of the message, or `None` after the last.
    fn next_chunk(&mut self) -> Result<Option<&[u8]>, SendFailure> {
        self.buffer.clear();
        if let Some(head) = self.head.take() {
            self.buffer = head;
            return Ok(Some(&self.buffer));
        }
        if let Some((id, offset, mut part)) = self.current.take() {
            let chunk = self
                .files
                .read(id, offset, ATTACHMENT_CHUNK)
                .map_err(attachment_failed)?;
            if chunk.is_empty() {
                let (writer, tail) = part.finish();
                self.writer = Some(writer);
                self.buffer.extend_from_slice(&tail);
                return Ok(Some(&self.buffer));
            }
            part.write_into(&chunk, &mut self.buffer);
            self.current = Some((id, offset + chunk.len() as u64, part));
            return Ok(Some(&self.buffer));
        }
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        match self.pending.next() {
            Some((id, attachment, _)) => {
                let (part, head) = writer.attachment(&attachment);
                self.current = Some((id, 0, part));
                self.buffer.extend_from_slice(&head);
                Ok(Some(&self.buffer))
            }
            None if !self.done => {
                self.done = true;
                self.buffer.extend_from_slice(&writer.finish());
                Ok(Some(&self.buffer))
            }
            None => Ok(None),
        }
    }
}

fn attachment_failed(why: String) -> SendFailure {
    refuse(
        "attachment-unreadable",
        format!("A scanned page could not be read: {why}."),
        "Scan the document again.",
    )
}

/// Sends `message` at `now`. `random` seeds the Message-ID and the MIME boundary. The
/// outcome is recorded in the history (never the message's subject, body or addresses),
/// in the commit that deletes the send's journal entry; sends abandoned earlier (see
/// [`journal::settle_abandoned`]) are recorded first.
pub fn send(
    s: &impl Storage,
    http: &impl Http,
    smtp: &impl SmtpConnector,
    files: &impl Attachments,
    message: &OutgoingMessage,
    random: [u8; 32],
    now: u64,
) -> Result<SendReport, SendFailure> {
    journal::settle_abandoned(s, now);
    let mut progress = Progress::default();
    let result = attempt(s, http, smtp, files, message, random, now, &mut progress);
    let event = send_event(message, progress.written, &result, now);
    journal::settle(s, progress.journaled.as_ref(), &event);
    result
}

/// What an attempt got to, for its history entry and journal.
#[derive(Default)]
struct Progress {
    /// The Message-ID and size, once the message is written.
    written: Option<(String, u64)>,
    /// The journal entry committed before the final dot, if one was.
    journaled: Option<journal::InFlight>,
}

/// The history entry of one send attempt: how many recipients, the message's size and
/// Message-ID once it was written (`written`), and the server's verdict or the diagnosis.
fn send_event(
    message: &OutgoingMessage,
    written: Option<(String, u64)>,
    result: &Result<SendReport, SendFailure>,
    now: u64,
) -> history::Event {
    let to = history::recipients(message.to.len());
    let written = match result {
        Ok(report) => Some((report.message_id.clone(), report.size)),
        Err(_) => written,
    };
    let mut facts = Vec::new();
    if let Some((message_id, size)) = written {
        facts.push(history::size_text(size));
        facts.push(format!("Message-ID {message_id}"));
    }
    if message.attempt > 1 {
        facts.push(format!("attempt {}", message.attempt));
    }
    let facts = match facts.is_empty() {
        true => String::new(),
        false => format!(" ({})", facts.join(", ")),
    };
    let failure = match result {
        Ok(report) => {
            return history::Event::new(
                history::EventKind::Send,
                now,
                true,
                format!("Sent to {to}{facts}."),
            )
            .with_server_reply(Some(&report.server_reply));
        }
        Err(failure) => failure,
    };
    let summary = match (failure.kind, failure.retry_after) {
        (_, Some(after)) => format!(
            "Not sent to {to}{facts}; to be tried again in {after} s (attempt {} of {}).",
            message.attempt.saturating_add(1),
            failure.max_attempts
        ),
        (SendFailureKind::NotSent, None) => {
            format!("Not sent to {to}{facts}: refused before connecting.")
        }
        (SendFailureKind::SignInRequired, None) => {
            format!("Not sent to {to}{facts}: no usable sign-in.")
        }
        (SendFailureKind::Failed, None) => format!("Not sent to {to}{facts}."),
    };
    history::Event::new(history::EventKind::Send, now, false, summary)
        .with_diagnosis(&failure.diagnosis)
        .with_server_reply(failure.server_reply.as_deref())
}

/// One send attempt; `progress` learns the Message-ID and size once the message is
/// written, and the journal entry once the final dot is due.
#[allow(clippy::too_many_arguments)]
fn attempt(
    s: &impl Storage,
    http: &impl Http,
    smtp: &impl SmtpConnector,
    files: &impl Attachments,
    message: &OutgoingMessage,
    random: [u8; 32],
    now: u64,
    progress: &mut Progress,
) -> Result<SendReport, SendFailure> {
    let settings = storage::load_settings(s).map_err(|e| SendFailure::from(Diagnostic::from(e)))?;
    let signed_in = storage::has_grant(s).map_err(|e| SendFailure::from(Diagnostic::from(e)))?;
    check_preconditions(&settings, signed_in, message)?;
    let from = message
        .from
        .clone()
        .unwrap_or_else(|| settings.device_email.clone());

    let mut attachments = Vec::new();
    for &id in &message.attachments {
        let (name, size) = files.info(id).map_err(attachment_failed)?;
        let attachment = Attachment::new(&name).map_err(mime_failed)?;
        attachments.push((id, attachment, size));
    }
    let headers = Headers {
        from: from.clone(),
        to: message.to.clone(),
        subject: message.subject.clone(),
        date: now,
    };
    let mut ids = [[0u8; 16]; 2];
    ids[0].copy_from_slice(&random[..16]);
    ids[1].copy_from_slice(&random[16..]);
    let randomness = mime::Random {
        message_id: ids[0],
        boundary: ids[1],
    };
    let (writer, head) = MessageWriter::start(
        &headers,
        randomness,
        &message.body,
        TextEncoding::QuotedPrintable,
    )
    .map_err(mime_failed)?;
    let message_id = message_id_of(&head);
    let size = estimated_size(&writer, &head, &attachments);
    progress.written = Some((message_id.clone(), size));

    let envelope = Envelope {
        from,
        to: message.to.clone(),
        size: Some(size),
    };
    let mut body = BodySource {
        files,
        head: Some(head),
        pending: attachments.into_iter(),
        writer: Some(writer),
        current: None,
        done: false,
        buffer: Vec::new(),
    };
    let submission = Submission {
        settings: &settings,
        envelope,
        message_id: message_id.clone(),
        attempt: message.attempt,
        now,
    };
    let report = submission::submit(
        s,
        http,
        smtp,
        submission,
        &mut body,
        &mut progress.journaled,
    )?;
    Ok(SendReport {
        message_id,
        accepted: report.accepted,
        server_reply: report.reply.to_string(),
        size,
    })
}

impl<A: Attachments> MessageSource for BodySource<'_, A> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>, SendFailure> {
        BodySource::next_chunk(self)
    }
}

/// The whole message was sent but its verdict never came (a timeout, or the connection
/// lost): the server may have delivered it. Sending again blindly could deliver it twice
/// (RFC 5321 §4.5.3.2), so this is no "try again" and carries no retry time.
pub(crate) fn maybe_delivered(err: &NetFailure, settings: &Settings) -> SendFailure {
    SendFailure::failed(maybe_delivered_diagnosis(err, settings))
}

fn maybe_delivered_diagnosis(err: &NetFailure, settings: &Settings) -> Diagnostic {
    let why = match err {
        NetFailure::Timeout => "no reply came in time".to_owned(),
        other => other.to_string(),
    };
    Diagnostic::new(
        "smtp-final-reply-missing",
        Severity::Error,
        format!(
            "The message was sent to {}:{} in full, but the server's verdict on it did not arrive ({why}). The message may have been delivered.",
            settings.smtp_server, settings.send_port
        ),
        "Check with a recipient, or in the mailbox's Sent Items, whether the message arrived before you send it again; sending it again may deliver it twice.",
    )
}

pub(crate) fn protocol(err: &crate::smtp::SmtpError) -> SendFailure {
    SendFailure::failed(Diagnostic::new(
        err.code(),
        Severity::Error,
        format!("{err}."),
        err.remedy(),
    ))
}

fn mime_failed(err: mime::MimeError) -> SendFailure {
    refuse(
        err.code(),
        format!("The message cannot be written: {err}."),
        err.remedy(),
    )
}

/// The Message-ID the writer put in the headers.
fn message_id_of(head: &[u8]) -> String {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: ").map(str::to_owned))
        .unwrap_or_default()
}

/// The message's size for `SIZE=`: the exact bytes of everything but the attachments'
/// contents, whose base64 length follows from their sizes.
fn estimated_size(
    writer: &MessageWriter,
    head: &[u8],
    attachments: &[(u32, Attachment, u64)],
) -> u64 {
    let mut size = head.len() as u64;
    let mut w = writer.clone();
    for (_, attachment, file_size) in attachments {
        let (part, part_head) = w.attachment(attachment);
        let (next, tail) = part.finish();
        size += (part_head.len() + tail.len()) as u64 + mime::base64_encoded_len(*file_size);
        w = next;
    }
    size + w.finish().len() as u64
}
