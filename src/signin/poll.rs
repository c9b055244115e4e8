//! Polling the token endpoint while the administrator signs in (RFC 8628 3.4–3.5), as a
//! state machine that never sleeps: [`DeviceFlow::poll`] says "send this request now" or
//! "call again at T", and the host's timer calls again. The component keeps nothing
//! between calls, so the flow is a record and lives in the store between polls.
//!
//! The rules it keeps: never poll before the interval has passed since the last request;
//! `authorization_pending` waits one interval; `slow_down` adds 5 seconds to the interval
//! for the rest of the flow; a lost reply or an unavailable platform doubles it (RFC 8628
//! 3.5, "exponential backoff"); the flow stops at `expires_in` by the device's own clock,
//! whether or not the server says so, and on every terminal error.

use super::aadsts::ErrorMeaning;
use super::device_code::DeviceCode;
use super::error::{SigninError, SigninErrorKind};
use super::id_token::{Account, Expected};
use super::token::{TokenReply, TokenSet, device_token_request, read_token_reply};
use super::{HttpRequest, SigninConfig};
use crate::diagnose::{Diagnostic, Severity};
use crate::remedy::Remedy;
use crate::storage::{RecordVersion, records};

/// What `slow_down` adds to the interval, for good (RFC 8628 3.5).
pub const SLOW_DOWN_STEP: u64 = 5;

/// The longest interval backoff grows to on its own (a server's interval may be longer).
pub const MAX_BACKOFF_INTERVAL: u64 = 60;

/// Failed polls in a row (no reply, or the platform unavailable) after which the sign-in
/// status shows why: one failure is usual on a network, three mean something to fix
/// (TLS interception, a proxy, a host that denies the destination).
pub const FAILED_POLLS_SHOWN: u32 = 3;

/// Why the last poll got no usable answer, kept in the flow so that the status and the
/// pending answer can show it (a lasting network error must not hide behind "pending").
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct PollProblem {
    pub code: String,
    pub message: String,
    pub remedy: Remedy,
}

impl PollProblem {
    fn from_diagnostic(d: &Diagnostic) -> Self {
        Self {
            code: d.code.to_owned(),
            message: d.message.clone(),
            remedy: d.remedy.clone(),
        }
    }

    /// The diagnosis to show after `failed` polls in a row, under the stable code of the
    /// failure (e.g. `network-tls`).
    fn diagnostic(&self, failed: u32) -> Diagnostic {
        Diagnostic::new(
            known_code(&self.code),
            Severity::Error,
            format!(
                "The sign-in is still waiting, but the last {failed} polls of the identity platform failed. {}",
                self.message
            ),
            self.remedy.clone(),
        )
    }
}

/// The codes a failed poll may carry, as `'static` strings for [`Diagnostic`]: the
/// network failures' and the unavailable platform's; any other reads as `network-failed`.
fn known_code(code: &str) -> &'static str {
    use crate::capabilities::NetFailure as F;
    let s = String::new;
    [
        F::Denied(s()),
        F::Dns(s()),
        F::Refused(s()),
        F::Timeout,
        F::Tls(s()),
        F::Closed,
        F::TooLarge(0),
        F::Proxy(s()),
        F::Other(s()),
    ]
    .iter()
    .map(|f| f.diagnostic("").code)
    .chain([SigninError::unavailable(0).code])
    .find(|known| *known == code)
    .unwrap_or("network-failed")
}

/// A device-code sign-in in progress.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct DeviceFlow {
    /// The record's layout (see [`crate::storage::records`]).
    pub(crate) version: RecordVersion<{ records::DEVICE_FLOW }>,
    /// Where the code was issued; it is redeemed at the same tenant, as the same client.
    config: SigninConfig,
    code: DeviceCode,
    /// Unix seconds at which the code expires.
    expires_at: u64,
    /// Seconds between requests now (grown by `slow_down` and backoff, never shrunk).
    interval: u64,
    /// Unix seconds before which no request may be sent.
    next_poll_at: u64,
    /// Whether the flow has ended (approved, failed or expired): nothing more is sent.
    ended: bool,
    /// Polls in a row that got no usable answer; any answer of the platform resets it.
    /// 0 in flows stored before it was kept ([`crate::storage::Record::defaults`]).
    failed_polls: u32,
    /// Why the last of them failed.
    last_problem: Option<PollProblem>,
}

/// What to do now, as [`DeviceFlow::poll`] says.
#[derive(Debug, PartialEq, Eq)]
pub enum PollStep {
    /// Store the flow, then send this token request and feed the reply to
    /// [`DeviceFlow::on_token_reply`] (or [`DeviceFlow::on_transport_error`] if none came).
    Send(HttpRequest),
    /// Too early: call [`DeviceFlow::poll`] again at `until` (Unix seconds).
    Wait { until: u64 },
    /// The code expired before sign-in completed; the flow is over.
    Expired(SigninError),
    /// The flow already ended with the outcome an earlier call returned.
    Ended,
}

/// What a token reply (or its absence) means.
#[derive(Debug, PartialEq, Eq)]
pub enum PollOutcome {
    /// The user has not finished: poll again at `next_poll_at`.
    Pending { next_poll_at: u64 },
    /// The server asked to slow down: `interval` is now 5 s longer for good.
    SlowDown { next_poll_at: u64, interval: u64 },
    /// No usable answer (platform unavailable, or no reply at all): polling continues,
    /// less often.
    Backoff { next_poll_at: u64, interval: u64 },
    /// Signed in. Commit the tokens and the account together; the flow is over.
    Approved(Box<Approved>),
    /// Sign-in failed for good; the flow is over.
    Failed(SigninError),
}

/// A completed sign-in.
#[derive(Debug, PartialEq, Eq)]
pub struct Approved {
    pub tokens: TokenSet,
    pub account: Account,
}

impl DeviceFlow {
    /// Starts polling for `code`, received at `now` from `config`'s endpoint. The first
    /// request goes out one interval later: nobody signs in faster than that.
    pub fn start(config: SigninConfig, code: DeviceCode, now: u64) -> Self {
        Self {
            version: RecordVersion::default(),
            config,
            expires_at: now.saturating_add(code.expires_in),
            interval: code.interval.max(1),
            next_poll_at: now.saturating_add(code.interval.max(1)),
            code,
            ended: false,
            failed_polls: 0,
            last_problem: None,
        }
    }

    /// Why polling fails, once [`FAILED_POLLS_SHOWN`] polls in a row got no usable
    /// answer; `None` after any answer.
    pub fn problem(&self) -> Option<Diagnostic> {
        (self.failed_polls >= FAILED_POLLS_SHOWN)
            .then_some(self.last_problem.as_ref())
            .flatten()
            .map(|p| p.diagnostic(self.failed_polls))
    }

    /// Where and as which application the code was issued (and is redeemed).
    pub fn config(&self) -> &SigninConfig {
        &self.config
    }

    /// The code to type, as the server gave it.
    pub fn user_code(&self) -> &str {
        &self.code.user_code
    }

    /// Where to type it, as the server gave it (S8: never a hard-coded address).
    pub fn verification_uri(&self) -> &str {
        &self.code.verification_uri
    }

    /// The server's own instructions, if it sent any.
    pub fn message(&self) -> Option<&str> {
        self.code.message.as_deref()
    }

    /// Unix seconds at which the code expires.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Seconds between requests now.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Unix seconds before which no request is sent.
    pub fn next_poll_at(&self) -> u64 {
        self.next_poll_at
    }

    /// Whether the flow is over.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// What to do at `now`. Sending reserves the next interval at once, so a reply that
    /// never arrives (or a second instance polling from the same stored flow, once the
    /// caller stored it) cannot make the device poll early.
    pub fn poll(&mut self, now: u64) -> PollStep {
        if self.ended {
            return PollStep::Ended;
        }
        if now >= self.expires_at {
            self.ended = true;
            return PollStep::Expired(SigninError::expired());
        }
        if now < self.next_poll_at {
            return PollStep::Wait {
                until: self.next_poll_at.min(self.expires_at),
            };
        }
        self.next_poll_at = now.saturating_add(self.interval);
        PollStep::Send(device_token_request(&self.config, &self.code.device_code))
    }

    /// Reads the token endpoint's reply (`status`, `body`) received at `now`.
    pub fn on_token_reply(&mut self, now: u64, status: u16, body: &[u8]) -> PollOutcome {
        self.on_dated_token_reply(now, None, status, body)
    }

    /// [`Self::on_token_reply`] for a reply whose `Date` header said `server_now`: the
    /// platform's clock tells a wrong device clock from an expired id_token.
    pub fn on_dated_token_reply(
        &mut self,
        now: u64,
        server_now: Option<u64>,
        status: u16,
        body: &[u8],
    ) -> PollOutcome {
        if self.ended {
            return PollOutcome::Failed(not_in_progress());
        }
        let expected = Expected {
            client_id: &self.config.client_id,
            tenant: &self.config.tenant,
            now,
            server_now,
        };
        let reply = read_token_reply(&self.config, now, status, body);
        match &reply {
            Ok(TokenReply::Unavailable(_) | TokenReply::Error(ErrorMeaning::Transient)) => {
                // Fields, not a method: `expected` borrows the config meanwhile.
                self.failed_polls = self.failed_polls.saturating_add(1);
                self.last_problem = Some(PollProblem::from_diagnostic(
                    &SigninError::unavailable(status).diagnostic(),
                ));
            }
            _ => self.failed_polls = 0,
        }
        match reply {
            Ok(TokenReply::Tokens(tokens)) => match tokens.into_new_grant(&expected) {
                Ok((tokens, account)) => {
                    self.ended = true;
                    PollOutcome::Approved(Box::new(Approved { tokens, account }))
                }
                Err(err) => self.fail(err),
            },
            Ok(TokenReply::Error(ErrorMeaning::Pending)) => {
                self.wait_again(now, |next_poll_at, _| PollOutcome::Pending { next_poll_at })
            }
            Ok(TokenReply::Error(ErrorMeaning::SlowDown)) => {
                self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
                self.wait_again(now, |next_poll_at, interval| PollOutcome::SlowDown {
                    next_poll_at,
                    interval,
                })
            }
            Ok(TokenReply::Error(ErrorMeaning::Transient)) | Ok(TokenReply::Unavailable(_)) => {
                self.back_off(now)
            }
            Ok(TokenReply::Error(ErrorMeaning::Failed(err))) | Err(err) => self.fail(err),
        }
    }

    /// No reply came for the request sent (timeout, connection lost, TLS or proxy
    /// failure, a destination the host denies; `why` diagnoses it): RFC 8628 3.5 asks the
    /// client to poll less often, so the interval doubles. After [`FAILED_POLLS_SHOWN`]
    /// such polls in a row, [`DeviceFlow::problem`] tells why.
    pub fn on_transport_error(&mut self, now: u64, why: &Diagnostic) -> PollOutcome {
        if self.ended {
            return PollOutcome::Failed(not_in_progress());
        }
        self.count_failure(why);
        self.back_off(now)
    }

    fn count_failure(&mut self, why: &Diagnostic) {
        self.failed_polls = self.failed_polls.saturating_add(1);
        self.last_problem = Some(PollProblem::from_diagnostic(why));
    }

    fn back_off(&mut self, now: u64) -> PollOutcome {
        let doubled = self.interval.saturating_mul(2).min(MAX_BACKOFF_INTERVAL);
        self.interval = self.interval.max(doubled);
        self.wait_again(now, |next_poll_at, interval| PollOutcome::Backoff {
            next_poll_at,
            interval,
        })
    }

    /// Schedules the next request one interval after `now`, or stops if the code expires
    /// first: a request at or after `expires_at` could not succeed.
    fn wait_again(
        &mut self,
        now: u64,
        outcome: impl FnOnce(u64, u64) -> PollOutcome,
    ) -> PollOutcome {
        if now >= self.expires_at {
            return self.fail(SigninError::expired());
        }
        self.next_poll_at = now.saturating_add(self.interval);
        outcome(self.next_poll_at.min(self.expires_at), self.interval)
    }

    fn fail(&mut self, err: SigninError) -> PollOutcome {
        self.ended = true;
        PollOutcome::Failed(err)
    }
}

/// A reply fed to a flow that has already ended.
fn not_in_progress() -> SigninError {
    SigninError::new(
        SigninErrorKind::Expired,
        None,
        "sign-in-not-in-progress",
        "No sign-in is in progress: the last one has already ended.",
        "Click [Open Authentication Page] to start a new sign-in.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::test_support::{error_reply, form, pending_reply, token_reply};

    const T0: u64 = 1_700_000_000;

    fn code(expires_in: u64, interval: u64) -> DeviceCode {
        DeviceCode {
            device_code: crate::signin::Secret::new("DC-secret"),
            user_code: "FJ8QK5XLM".into(),
            verification_uri: "https://microsoft.com/devicelogin".into(),
            expires_in,
            interval,
            message: None,
        }
    }

    fn flow() -> DeviceFlow {
        DeviceFlow::start(SigninConfig::default(), code(900, 5), T0)
    }

    fn sends(step: PollStep) -> HttpRequest {
        match step {
            PollStep::Send(request) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn slow_down() -> Vec<u8> {
        error_reply(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Slow down.",
        )
    }

    fn timeout() -> Diagnostic {
        crate::capabilities::NetFailure::Timeout.diagnostic("the identity platform")
    }

    #[test]
    fn three_failed_polls_in_a_row_show_why_until_an_answer_comes() {
        let tls = crate::capabilities::NetFailure::Tls("unknown issuer".into())
            .diagnostic("the identity platform");
        let mut f = flow();
        let mut now = T0 + 5;
        for failed in 1..=3 {
            sends(f.poll(now));
            let PollOutcome::Backoff { next_poll_at, .. } = f.on_transport_error(now, &tls) else {
                panic!("not a backoff")
            };
            assert_eq!(
                f.problem().is_some(),
                failed >= FAILED_POLLS_SHOWN,
                "{failed}"
            );
            now = next_poll_at;
        }
        let shown = f.problem().unwrap();
        assert_eq!(shown.code, "network-tls");
        assert!(shown.message.contains("last 3 polls") && shown.message.contains("unknown issuer"));
        // It survives the store, and an old record without the counter reads as none.
        use crate::storage::{decode, encode};
        let back: DeviceFlow = decode(crate::signin::FLOW_KEY, &encode(&f)).unwrap();
        assert_eq!(back.problem(), Some(shown));
        let mut old: serde_json::Value = serde_json::from_slice(&encode(&f)).unwrap();
        old.as_object_mut().unwrap().remove("failed_polls");
        old.as_object_mut().unwrap().remove("last_problem");
        let old: DeviceFlow = decode(crate::signin::FLOW_KEY, old.to_string().as_bytes()).unwrap();
        assert_eq!(old.problem(), None);
        assert_eq!(old.failed_polls, 0);
        // An unavailable platform counts too; any OAuth answer clears it.
        sends(f.poll(now));
        f.on_token_reply(now, 503, b"<html>Service Unavailable</html>");
        assert_eq!(f.problem().unwrap().code, "sign-in-service-unavailable");
        now = f.next_poll_at();
        sends(f.poll(now));
        f.on_token_reply(now, 400, &pending_reply());
        assert_eq!(f.problem(), None);
    }

    #[test]
    fn first_request_goes_out_exactly_one_interval_after_start() {
        let mut f = flow();
        assert_eq!(f.poll(T0), PollStep::Wait { until: T0 + 5 });
        assert_eq!(f.poll(T0 + 4), PollStep::Wait { until: T0 + 5 });
        let request = sends(f.poll(T0 + 5));
        assert_eq!(
            request.url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert!(form(&request.body).contains(&("device_code".into(), "DC-secret".into())));
    }

    #[test]
    fn pending_schedules_the_next_request_exactly_one_interval_later() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        assert_eq!(
            f.on_token_reply(T0 + 5, 400, &pending_reply()),
            PollOutcome::Pending {
                next_poll_at: T0 + 10
            }
        );
        assert_eq!(f.poll(T0 + 9), PollStep::Wait { until: T0 + 10 });
        sends(f.poll(T0 + 10));
    }

    #[test]
    fn a_slow_reply_delays_the_next_request_from_its_arrival() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        assert_eq!(
            f.on_token_reply(T0 + 8, 400, &pending_reply()),
            PollOutcome::Pending {
                next_poll_at: T0 + 13
            }
        );
    }

    #[test]
    fn a_lost_reply_does_not_let_the_device_poll_early() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        // The host never fed a reply (it crashed, or the timer fired twice).
        assert_eq!(f.poll(T0 + 6), PollStep::Wait { until: T0 + 10 });
        sends(f.poll(T0 + 10));
    }

    #[test]
    fn slow_down_twice_gives_an_interval_of_15_seconds_for_good() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        assert_eq!(
            f.on_token_reply(T0 + 5, 400, &slow_down()),
            PollOutcome::SlowDown {
                next_poll_at: T0 + 15,
                interval: 10
            }
        );
        sends(f.poll(T0 + 15));
        assert_eq!(
            f.on_token_reply(T0 + 15, 400, &slow_down()),
            PollOutcome::SlowDown {
                next_poll_at: T0 + 30,
                interval: 15
            }
        );
        sends(f.poll(T0 + 30));
        // Pending afterwards keeps the longer interval.
        assert_eq!(
            f.on_token_reply(T0 + 30, 400, &pending_reply()),
            PollOutcome::Pending {
                next_poll_at: T0 + 45
            }
        );
        assert_eq!(f.interval(), 15);
        assert_eq!(f.poll(T0 + 44), PollStep::Wait { until: T0 + 45 });
    }

    #[test]
    fn the_flow_stops_at_expires_in_by_its_own_clock() {
        let mut f = DeviceFlow::start(SigninConfig::default(), code(12, 5), T0);
        sends(f.poll(T0 + 5));
        assert_eq!(
            f.on_token_reply(T0 + 5, 400, &pending_reply()),
            PollOutcome::Pending {
                next_poll_at: T0 + 10
            }
        );
        sends(f.poll(T0 + 10));
        // The next request would be at T0 + 15, after expiry: wait until expiry instead.
        assert_eq!(
            f.on_token_reply(T0 + 10, 400, &pending_reply()),
            PollOutcome::Pending {
                next_poll_at: T0 + 12
            }
        );
        assert_eq!(f.poll(T0 + 11), PollStep::Wait { until: T0 + 12 });
        match f.poll(T0 + 12) {
            PollStep::Expired(err) => {
                assert_eq!(err.kind, SigninErrorKind::Expired);
                assert_eq!(err.code, "sign-in-expired");
            }
            other => panic!("expected expiry, got {other:?}"),
        }
        assert!(f.is_ended());
        assert_eq!(f.poll(T0 + 13), PollStep::Ended);
    }

    #[test]
    fn a_pending_reply_arriving_after_expiry_ends_the_flow() {
        let mut f = DeviceFlow::start(SigninConfig::default(), code(10, 5), T0);
        sends(f.poll(T0 + 5));
        match f.on_token_reply(T0 + 10, 400, &pending_reply()) {
            PollOutcome::Failed(err) => assert_eq!(err.kind, SigninErrorKind::Expired),
            other => panic!("expected expiry, got {other:?}"),
        }
        assert_eq!(f.poll(T0 + 11), PollStep::Ended);
    }

    #[test]
    fn every_terminal_error_stops_the_flow() {
        let cases = [
            ("authorization_declined", 70000, SigninErrorKind::Declined),
            ("access_denied", 70000, SigninErrorKind::Declined),
            ("expired_token", 70019, SigninErrorKind::Expired),
            (
                "bad_verification_code",
                70000,
                SigninErrorKind::BadVerificationCode,
            ),
            ("invalid_grant", 70000, SigninErrorKind::SignInAgain),
            ("invalid_grant", 53003, SigninErrorKind::ConditionalAccess),
            ("invalid_grant", 65001, SigninErrorKind::ConsentRequired),
            ("invalid_client", 7000218, SigninErrorKind::Configuration),
            ("invalid_request", 90014, SigninErrorKind::Rejected),
        ];
        for (error, code, kind) in cases {
            let mut f = flow();
            sends(f.poll(T0 + 5));
            let body = error_reply(error, code, "Something Microsoft says.");
            match f.on_token_reply(T0 + 5, 400, &body) {
                PollOutcome::Failed(err) => {
                    assert_eq!(err.kind, kind, "{error} {code}");
                    assert_eq!(err.aadsts, Some(code));
                }
                other => panic!("{error} {code}: expected a failure, got {other:?}"),
            }
            assert!(f.is_ended());
            assert_eq!(f.poll(T0 + 100), PollStep::Ended, "{error} {code}");
        }
    }

    #[test]
    fn approval_gives_tokens_and_account_and_ends_the_flow() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        let PollOutcome::Approved(approved) =
            f.on_token_reply(T0 + 6, 200, &token_reply("at", "rt", 4000))
        else {
            panic!("not approved")
        };
        assert_eq!(approved.tokens.access_token.expose(), "at");
        assert_eq!(approved.tokens.expires_at, T0 + 6 + 4000);
        assert_eq!(
            approved.account.device_email_address(),
            Some("scanner@contoso.com")
        );
        assert_eq!(f.poll(T0 + 20), PollStep::Ended);
        assert!(matches!(
            f.on_token_reply(T0 + 21, 200, &token_reply("at", "rt", 4000)),
            PollOutcome::Failed(e) if e.code == "sign-in-not-in-progress"
        ));
    }

    #[test]
    fn an_unavailable_platform_or_a_lost_reply_doubles_the_interval() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        assert_eq!(
            f.on_token_reply(T0 + 5, 503, b"<html>Service Unavailable</html>"),
            PollOutcome::Backoff {
                next_poll_at: T0 + 15,
                interval: 10
            }
        );
        sends(f.poll(T0 + 15));
        assert_eq!(
            f.on_transport_error(T0 + 45, &timeout()),
            PollOutcome::Backoff {
                next_poll_at: T0 + 65,
                interval: 20
            }
        );
        sends(f.poll(T0 + 65));
        let busy = br#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred."}"#;
        assert_eq!(
            f.on_token_reply(T0 + 65, 503, busy),
            PollOutcome::Backoff {
                next_poll_at: T0 + 105,
                interval: 40
            }
        );
        sends(f.poll(T0 + 105));
        let throttled = error_reply("invalid_request", 50196, "Client request loop.");
        assert_eq!(
            f.on_token_reply(T0 + 105, 429, &throttled),
            PollOutcome::Backoff {
                next_poll_at: T0 + 165,
                interval: MAX_BACKOFF_INTERVAL
            }
        );
        for _ in 0..5 {
            f.on_transport_error(T0 + 165, &timeout());
        }
        assert_eq!(f.interval(), MAX_BACKOFF_INTERVAL);
    }

    #[test]
    fn malformed_replies_stop_with_a_typed_error() {
        for (status, body) in [(200, &b"<html>"[..]), (200, b"{}"), (404, b"Not Found")] {
            let mut f = flow();
            sends(f.poll(T0 + 5));
            match f.on_token_reply(T0 + 5, status, body) {
                PollOutcome::Failed(err) => assert_eq!(err.kind, SigninErrorKind::MalformedReply),
                other => panic!("expected a failure, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_flow_survives_the_store_between_polls_and_hides_its_device_code() {
        let mut f = flow();
        sends(f.poll(T0 + 5));
        f.on_token_reply(T0 + 5, 400, &slow_down());
        let bytes = crate::storage::encode(&f);
        let mut back: DeviceFlow = crate::storage::decode(crate::signin::FLOW_KEY, &bytes).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.poll(T0 + 14), PollStep::Wait { until: T0 + 15 });
        assert_eq!(back.user_code(), "FJ8QK5XLM");
        assert_eq!(back.verification_uri(), "https://microsoft.com/devicelogin");
        assert!(!format!("{back:?}").contains("DC-secret"));
    }

    #[test]
    fn huge_server_numbers_never_overflow_the_clock() {
        let mut f = DeviceFlow::start(
            SigninConfig::default(),
            code(u64::MAX, u64::MAX),
            u64::MAX - 10,
        );
        assert_eq!(f.poll(u64::MAX - 10), PollStep::Wait { until: u64::MAX });
        assert!(matches!(f.poll(u64::MAX), PollStep::Expired(_)));
    }

    /// A host driving the flow with its timer, against a scripted identity platform: the
    /// requests go out exactly when the protocol allows, and sign-in completes.
    #[test]
    fn a_host_timer_loop_polls_on_schedule_until_approval() {
        let mut replies = vec![
            (400, pending_reply()),
            (400, slow_down()),
            (400, pending_reply()),
            (200, token_reply("at", "rt", 3600)),
        ]
        .into_iter();
        let mut f = flow();
        let mut now = T0;
        let mut sent_at = Vec::new();
        let approved = loop {
            match f.poll(now) {
                PollStep::Wait { until } => now = until,
                PollStep::Send(_) => {
                    sent_at.push(now - T0);
                    let (status, body) = replies.next().unwrap();
                    match f.on_token_reply(now, status, &body) {
                        PollOutcome::Pending { next_poll_at }
                        | PollOutcome::SlowDown { next_poll_at, .. }
                        | PollOutcome::Backoff { next_poll_at, .. } => now = next_poll_at,
                        PollOutcome::Approved(a) => break a,
                        PollOutcome::Failed(err) => panic!("{err}"),
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(sent_at, [5, 10, 20, 30]);
        assert_eq!(approved.tokens.refresh_token.expose(), "rt");
    }
}
