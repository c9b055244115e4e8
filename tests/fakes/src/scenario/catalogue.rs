//! The scenario catalogue: every named [`Case`] with what a device does against it and
//! what must come of it — signed in or sent, or the diagnosis code it must give, the
//! words of Microsoft it must quote and what its remedy must say.
//!
//! One table, so the component tests run exactly what the demo and the browser preview
//! offer: the wasmtime tests iterate it against a fresh device per entry, and a case added
//! to [`Case::all`] without an entry here fails this crate's own tests.

use serde::Serialize;

use super::{Aadsts, Case, IdTokenFlaw, SmtpCase};
use crate::exchange::SLOW_FINAL_REPLY_MS;

/// What the device does against a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "from")]
pub enum Run {
    /// Selects Exchange Online, starts a sign-in and polls at the pace the device asks
    /// for until it ends. A code that waits for the approval page
    /// ([`Approval::Manual`](super::Approval::Manual)) is approved there right away.
    SignIn,
    /// Signs in as [`Run::SignIn`] does (which must succeed), then sends one message to
    /// [`RECIPIENT`] from the Device Email Address.
    Send,
    /// As [`Run::Send`], but a walk-up user (allowed to edit From) sends as this address,
    /// which the account may not send as.
    SendFrom(&'static str),
    /// Signs in, moves the clock to five minutes before the access token expires (inside
    /// the device's ten-minute refresh margin), then sends: the send refreshes first.
    RefreshThenSend,
}

impl Run {
    /// A short name, for [`ScenarioCase::name`].
    pub fn name(self) -> &'static str {
        match self {
            Run::SignIn => "sign-in",
            Run::Send => "send",
            Run::SendFrom(_) => "send-from-other",
            Run::RefreshThenSend => "refresh-then-send",
        }
    }
}

/// Where a [`Run::Send`] goes.
pub const RECIPIENT: &str = "alice@contoso.com";
/// An address no stand-in account may send as, for [`Run::SendFrom`].
pub const NOT_OWNED: &str = "ceo@contoso.com";

/// One entry of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioCase {
    /// The named case: the stand-ins' switches and the account that signs in.
    pub case: Case,
    /// What the device does.
    pub run: Run,
    /// The diagnosis code the device must give; `None`: the run succeeds (signed in, or
    /// the message accepted and in the mailbox).
    pub code: Option<&'static str>,
    /// Microsoft's own words the diagnosis must quote: the start of the SMTP reply
    /// (which must also be the failure's server reply), or the `AADSTS` number.
    pub quotes: Option<&'static str>,
    /// Further words the diagnosis's message must contain.
    pub says: &'static [&'static str],
    /// Words the remedy must contain.
    pub remedy: &'static [&'static str],
    /// Whether the failure is temporary, so the device offers to retry it later.
    pub retried: bool,
    /// The warning codes a successful sign-in carries, exactly.
    pub warnings: &'static [&'static str],
}

impl ScenarioCase {
    /// An entry that must succeed.
    const fn succeeds(case: Case, run: Run) -> Self {
        Self {
            case,
            run,
            code: None,
            quotes: None,
            says: &[],
            remedy: &[],
            retried: false,
            warnings: &[],
        }
    }

    /// An entry that must fail with the diagnosis `code`.
    const fn fails(case: Case, run: Run, code: &'static str) -> Self {
        Self {
            code: Some(code),
            ..Self::succeeds(case, run)
        }
    }

    const fn quoting(self, words: &'static str) -> Self {
        Self {
            quotes: Some(words),
            ..self
        }
    }

    const fn saying(self, words: &'static [&'static str]) -> Self {
        Self {
            says: words,
            ..self
        }
    }

    const fn remedy(self, words: &'static [&'static str]) -> Self {
        Self {
            remedy: words,
            ..self
        }
    }

    const fn retried(self) -> Self {
        Self {
            retried: true,
            ..self
        }
    }

    const fn warning(self, codes: &'static [&'static str]) -> Self {
        Self {
            warnings: codes,
            ..self
        }
    }

    /// A stable name for reports: the case's name and the run, e.g.
    /// `smtp-mailbox-full/send`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.case.name(), self.run.name())
    }
}

/// Every entry; each case of [`Case::all`] appears at least once.
pub fn catalogue() -> &'static [ScenarioCase] {
    CATALOGUE
}

use Run::{RefreshThenSend, Send, SendFrom, SignIn};

const SIGN_IN_AGAIN: &str = "Open Authentication Page";

static CATALOGUE: &[ScenarioCase] = &[
    // --- Sign-in: approval, polling --------------------------------------------------
    ScenarioCase::succeeds(Case::Happy, Send),
    ScenarioCase::succeeds(Case::ManualApproval, SignIn),
    ScenarioCase::fails(Case::Declined, SignIn, "sign-in-declined"),
    ScenarioCase::fails(Case::Expired, SignIn, "sign-in-expired"),
    ScenarioCase::succeeds(Case::SlowDownOnce, SignIn),
    ScenarioCase::fails(Case::SlowDownAlways, SignIn, "sign-in-expired"),
    // --- Identity platform refusals --------------------------------------------------
    ScenarioCase::fails(
        Case::Refused(Aadsts::ConditionalAccess53003),
        SignIn,
        "sign-in-blocked-by-conditional-access",
    )
    .quoting("AADSTS53003")
    .saying(&["Block Device Code Flow"])
    .remedy(&["Conditional Access"]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::DeviceCodeFlowBlocked530033),
        SignIn,
        "sign-in-blocked-by-conditional-access",
    )
    .quoting("AADSTS530033")
    .saying(&["Block Device Code Flow"])
    .remedy(&["Conditional Access"]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::ConsentRequired65001),
        SignIn,
        "sign-in-consent-required",
    )
    .quoting("AADSTS65001")
    .remedy(&["https://login.microsoftonline.com/common/adminconsent?client_id="]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::MfaRequired50076),
        SignIn,
        "sign-in-mfa-required",
    )
    .quoting("AADSTS50076")
    .remedy(&["multi-factor authentication"]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::MfaEnrollment50079),
        SignIn,
        "sign-in-mfa-registration-required",
    )
    .quoting("AADSTS50079")
    .remedy(&["https://aka.ms/mfasetup"]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::RefreshTokenInactive700082),
        RefreshThenSend,
        "sign-in-refresh-token-expired",
    )
    .quoting("AADSTS700082")
    .remedy(&[SIGN_IN_AGAIN]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::GrantRevoked50173),
        RefreshThenSend,
        "sign-in-grant-revoked",
    )
    .quoting("AADSTS50173")
    .remedy(&[SIGN_IN_AGAIN]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::SingleTenantOnCommon50194),
        SignIn,
        "sign-in-tenant-required",
    )
    .quoting("AADSTS50194")
    .remedy(&["[Tenant]"]),
    ScenarioCase::fails(
        Case::Refused(Aadsts::NotPublicClient7000218),
        SignIn,
        "sign-in-not-public-client",
    )
    .quoting("AADSTS7000218")
    .remedy(&["Allow public client flows"]),
    // --- id_token checks, clocks, the verification page ------------------------------
    ScenarioCase::fails(
        Case::IdToken(IdTokenFlaw::WrongAudience),
        SignIn,
        "sign-in-id-token-audience",
    )
    .saying(&["nobody was signed in"]),
    ScenarioCase::fails(
        Case::IdToken(IdTokenFlaw::WrongTenant),
        SignIn,
        "sign-in-id-token-issuer",
    )
    .saying(&["nobody was signed in", super::OTHER_TENANT]),
    ScenarioCase::fails(
        Case::IdToken(IdTokenFlaw::Expired),
        SignIn,
        "sign-in-id-token-expired",
    )
    .saying(&["nobody was signed in", "expired at"]),
    ScenarioCase::fails(Case::ServerClockAhead, SignIn, "device-clock-wrong")
        .saying(&["about 2 hours behind", "looks not yet valid"])
        .remedy(&["NTP"]),
    ScenarioCase::succeeds(Case::ServerClockBehind, SignIn).warning(&["device-clock-wrong"]),
    ScenarioCase::fails(
        Case::InsecureVerificationUri,
        SignIn,
        "sign-in-verification-uri-unsafe",
    )
    .saying(&["http://microsoft.com"]),
    // --- Accounts --------------------------------------------------------------------
    ScenarioCase::fails(
        Case::PrimaryDiffersFromUpn,
        Send,
        "smtp-auth-device-email-not-upn",
    )
    .quoting("535 5.7.3")
    .remedy(&["mfp@contoso.onmicrosoft.com"])
    .warning(&["device-email-not-upn"]),
    ScenarioCase::succeeds(Case::NoEmailClaim, Send),
    ScenarioCase::succeeds(Case::PersonalAccount, Send),
    ScenarioCase::fails(
        Case::PersonalAccountAuthRefused,
        Send,
        "smtp-auth-personal-account",
    )
    .quoting("535 5.7.3 Authentication unsuccessful")
    .remedy(&["account.microsoft.com"]),
    // --- Exchange Online -------------------------------------------------------------
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::AuthDisabledForTenant),
        Send,
        "smtp-auth-disabled-for-tenant",
    )
    .quoting("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant")
    .remedy(&[
        "SMTP AUTH",
        "Set-TransportConfig -SmtpClientAuthenticationDisabled $false",
    ]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::AuthDisabledForMailbox),
        Send,
        "smtp-auth-disabled-for-mailbox",
    )
    .quoting("535 5.7.139")
    .remedy(&["Authenticated SMTP"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::SecurityDefaults),
        Send,
        "smtp-auth-blocked-by-security-defaults",
    )
    .quoting("535 5.7.139")
    .saying(&["security defaults policy"])
    .remedy(&["security defaults"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ConcurrentLimit),
        Send,
        "smtp-concurrent-connections",
    )
    .quoting("432 4.3.2 Concurrent connections limit exceeded")
    .retried(),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::SubmissionQuota),
        Send,
        "smtp-sending-quota-exceeded",
    )
    .quoting("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException")
    .remedy(&["30 messages a minute"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ErrorChallenge),
        Send,
        "smtp-auth-unsuccessful",
    )
    .quoting("535 5.7.3")
    .remedy(&[SIGN_IN_AGAIN]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ConditionalAccess),
        Send,
        "smtp-auth-blocked-by-conditional-access",
    )
    .quoting("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria")
    .remedy(&["Conditional Access", "Sign-in logs"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::AuthUnsuccessful),
        Send,
        "smtp-auth-unsuccessful",
    )
    .quoting("535 5.7.3 Authentication unsuccessful"),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::MailboxFull),
        Send,
        "smtp-mailbox-full",
    )
    .quoting("554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException")
    .saying(&["Sent Items"])
    .remedy(&["retention policy"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ThrottledMailboxFull),
        Send,
        "smtp-sender-throttled",
    )
    .quoting("550 5.2.251 Sender throttled due to continuous mailbox full errors.")
    .remedy(&["retention policy", "wait"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ThrottledSendAsDenied),
        Send,
        "smtp-sender-throttled",
    )
    .quoting("550 5.2.252 Sender throttled due to continuous send as denied errors.")
    .remedy(&["From Address", "wait"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ThrottledInvalidLicense),
        Send,
        "smtp-sender-throttled",
    )
    .quoting("550 5.2.253 Sender throttled due to continuous invalid license errors.")
    .remedy(&["license", "wait"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::OutboundSpam),
        Send,
        "smtp-account-blocked-for-spam",
    )
    .quoting("554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException")
    .remedy(&["unblock", "mfp.scanner@outlook.com"]),
    // Send As is checked only after DATA: the account's own address goes through, another
    // is refused after the message was sent.
    ScenarioCase::succeeds(Case::Smtp(SmtpCase::SendAsDeniedAfterData), Send),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::SendAsDeniedAfterData),
        SendFrom(NOT_OWNED),
        "smtp-send-as-denied",
    )
    .quoting("554 5.2.252 SendAsDenied; mfp@contoso.com not allowed to send as ceo@contoso.com")
    .remedy(&["From Address", "[Sender is an alias or proxy address of the signed-in account]"]),
    ScenarioCase::fails(
        Case::LegacySendAsReply,
        SendFrom(NOT_OWNED),
        "smtp-send-as-denied",
    )
    .quoting("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException")
    .remedy(&["From Address", "[Sender is an alias or proxy address of the signed-in account]"]),
    // Normally Exchange refuses another sender at MAIL FROM already.
    ScenarioCase::fails(Case::Happy, SendFrom(NOT_OWNED), "smtp-send-as-denied")
        .quoting("550 5.7.60 SMTP; Client does not have permissions to send as this sender")
        .remedy(&["Send As permission", "From Address"]),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ServiceUnavailableAfterMail),
        Send,
        "smtp-service-unavailable",
    )
    .quoting("421 4.3.2 Service not available")
    .retried(),
    ScenarioCase::fails(
        Case::Smtp(SmtpCase::ServiceUnavailableAtFinalDot),
        Send,
        "smtp-service-unavailable",
    )
    .quoting("421 4.3.2 Service not available")
    .retried(),
    ScenarioCase::succeeds(
        Case::Smtp(SmtpCase::SlowFinalReply {
            millis: SLOW_FINAL_REPLY_MS,
        }),
        Send,
    ),
    ScenarioCase::succeeds(Case::Smtp(SmtpCase::QuitUnanswered), Send),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_has_an_entry_and_every_entry_a_unique_name() {
        let entries = catalogue();
        for case in Case::all() {
            assert!(
                entries.iter().any(|e| e.case == case),
                "{}: no entry in the catalogue",
                case.name()
            );
        }
        let mut names: Vec<String> = entries.iter().map(ScenarioCase::name).collect();
        names.sort();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate entries");
    }

    #[test]
    fn expectations_fit_their_entries() {
        for entry in catalogue() {
            let name = entry.name();
            if entry.code.is_none() {
                assert!(
                    entry.quotes.is_none()
                        && entry.says.is_empty()
                        && entry.remedy.is_empty()
                        && !entry.retried,
                    "{name}: a success has no diagnosis to check"
                );
            }
            if let Case::Refused(aadsts) = entry.case {
                assert_eq!(
                    entry.quotes,
                    Some(format!("AADSTS{}", aadsts.code()).as_str()),
                    "{name}: Microsoft's number is quoted"
                );
            }
        }
    }

    #[test]
    fn the_catalogue_serializes_for_the_browser_preview() {
        let json = serde_json::to_value(catalogue()).unwrap();
        let first = &json[0];
        assert_eq!(first["case"], "happy");
        assert_eq!(first["run"]["kind"], "send");
        assert_eq!(first["code"], serde_json::Value::Null);
    }
}
