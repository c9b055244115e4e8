//! One message handed to the SMTP server: a valid access token, the session (STARTTLS,
//! AUTH XOAUTH2) driven over the host's connection, the message pulled from a
//! [`MessageSource`] one chunk at a time, and the journal entry committed before the final
//! dot. The scan sender ([`super::send`]) and the relay ([`crate::relay`]) both submit
//! through here, so both get the same session, refresh and diagnosis.

use crate::capabilities::{Http, NetFailure, SmtpConnector, SmtpStream};
use crate::diagnose::{self, Diagnostic};
use crate::oauth;
use crate::settings::Settings;
use crate::smtp::{self, Envelope, Event, Report, Session, SessionConfig, Timeouts};
use crate::storage::{self, Storage};
use crate::xoauth2::Credentials;

use super::{
    READ_CHUNK, SendFailure, SendFailureKind, journal, maybe_delivered, protocol, refuse, smtp_net,
    token_failure,
};

/// Where a submitted message comes from: the next piece of it, or `None` after the last.
/// An `Err` abandons the message before its final dot, so the server delivers nothing.
/// [`submit`] takes it as `dyn`: the mailer and the relay then share one copy of it.
pub trait MessageSource {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>, SendFailure>;
}

/// What is submitted, besides the message itself.
pub struct Submission<'a> {
    pub settings: &'a Settings,
    /// Sender, recipients and, when known beforehand, the size (announced with `SIZE=`).
    pub envelope: Envelope,
    /// The message's Message-ID, for the journal (may be empty when it has none).
    pub message_id: String,
    /// Which try this is, from 1: the diagnosis says whether another is worth it.
    pub attempt: u32,
    pub now: u64,
}

/// Submits one message and returns the server's acceptance. `journaled` learns the journal
/// entry committed before the final dot, which the caller settles with the outcome.
pub fn submit(
    s: &impl Storage,
    http: &impl Http,
    smtp: &impl SmtpConnector,
    submission: Submission<'_>,
    body: &mut dyn MessageSource,
    journaled: &mut Option<journal::InFlight>,
) -> Result<Report, SendFailure> {
    let Submission {
        settings,
        envelope,
        message_id,
        attempt,
        now,
    } = submission;
    // Only now, with everything checked, is a token fetched (and maybe refreshed).
    let (tokens, account) =
        oauth::tokens_for_send(s, http, now).map_err(|e| token_failure(e, attempt))?;
    // Who signs in, for the advice on a refused sign-in (personal accounts have no UPN).
    let sender = diagnose::Sender {
        device_email: &settings.device_email,
        upn: account.upn(),
        account_address: account.device_email_address(),
        personal: account.is_personal(),
    };
    let credentials = Credentials::new(settings.device_email.clone(), tokens.access_token.expose())
        .map_err(|e| {
            refuse(
                e.code(),
                format!("The sign-in cannot be framed: {e}."),
                e.remedy(),
            )
        })?;
    let recipients = envelope.to.len();
    let announced_size = envelope.size;
    // The host's name for the device (RFC 5321 §4.1.4), or an address literal.
    let mut config = SessionConfig::new(smtp::ehlo_name_or_fallback(&smtp.ehlo_name()));
    config.timeouts = Timeouts::divided_by(smtp.timeout_divisor());
    let mut session = Session::new(config, credentials, envelope)
        .map_err(|e| SendFailure::from(diagnose::smtp_failure(&e, &sender, attempt).diagnostic))?;

    // The host grants the destination its store record names: make sure it is current.
    storage::ensure_smtp_destination(s, settings)
        .map_err(|e| SendFailure::failed(Diagnostic::from(e)))?;
    let mut conn = smtp
        .connect(&settings.smtp_server, settings.send_port)
        .map_err(|e| smtp_net(e, settings))?;
    let mut written: u64 = 0;
    loop {
        let event = match session.next_event() {
            Ok(event) => event,
            Err(err) => {
                let explained = diagnose::smtp_failure(&err, &sender, attempt);
                return Err(SendFailure {
                    kind: SendFailureKind::Failed,
                    diagnosis: explained.diagnostic,
                    server_reply: err.reply().map(|r| r.to_string()),
                    retry_after: explained.retry_after,
                    max_attempts: diagnose::MAX_SEND_ATTEMPTS,
                });
            }
        };
        // Each wait gets its stage's timeout (RFC 5321 §4.5.3.2).
        conn.set_timeout(session.timeout());
        match event {
            Event::Write(bytes) => {
                let courtesy_quit = session.outcome_known();
                match conn.write(&bytes) {
                    // The QUIT is out: wait briefly for the 221, whatever comes.
                    Ok(()) if courtesy_quit => {
                        let _ = conn.read(READ_CHUNK);
                    }
                    Ok(()) => {}
                    // Delivered stays delivered, and the server's refusal stays the
                    // diagnosis, even when the QUIT cannot be written.
                    Err(_) if courtesy_quit => {}
                    Err(e) => return Err(smtp_net(e, settings)),
                }
            }
            Event::Read => match conn.read(READ_CHUNK) {
                Ok(bytes) => session.feed(&bytes),
                Err(e) if session.awaits_final_reply() => {
                    return Err(maybe_delivered(&e, settings));
                }
                Err(NetFailure::Closed) => session.connection_closed(),
                Err(e) => return Err(smtp_net(e, settings)),
            },
            Event::StartTls => {
                conn.start_tls(&settings.smtp_server)
                    .map_err(|e| smtp_net(e, settings))?;
                session.tls_established().map_err(|e| protocol(&e))?;
            }
            Event::SendBody => match body.next_chunk()? {
                Some(chunk) => {
                    written += chunk.len() as u64;
                    session.write_body(chunk).map_err(|e| protocol(&e))?
                }
                None => {
                    // The final dot hands the message over: journal it first, so that a
                    // device that dies before the verdict still knows it may have gone.
                    let entry = journal::InFlight {
                        message_id: message_id.clone(),
                        recipients,
                        size: announced_size.unwrap_or(written),
                        attempt,
                        started_at: now,
                        server: format!("{}:{}", settings.smtp_server, settings.send_port),
                    };
                    *journaled = journal::begin(s, &entry).then_some(entry);
                    session.finish_body().map_err(|e| protocol(&e))?
                }
            },
            Event::Sent(report) => return Ok(report),
        }
    }
}
