//! The scenario table: what the stand-ins do, one switch per behaviour the product must
//! handle. [`Scenario`] holds the switches (combine them freely in tests); [`Case`] is the
//! named list the demo and the browser preview offer, one entry per situation an
//! administrator can meet, each mapped to its switches; [`catalogue`] says what a device
//! must make of each, and [`approval_words`] what both approval pages say of it.

use serde::{Deserialize, Serialize};

mod approval_words;
mod catalogue;
pub use approval_words::approval_words;
pub use catalogue::{NOT_OWNED, RECIPIENT, Run, ScenarioCase, catalogue};

/// What happens on the approval page once a device code is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "polls")]
pub enum Approval {
    /// Nobody signs in until [`World::approve`](crate::World::approve) or
    /// [`World::decline`](crate::World::decline) is called (the demo's approval page).
    Manual,
    /// The default account signs in on its own after this many polls were answered
    /// `authorization_pending`; the next poll gets the tokens.
    AfterPolls(u32),
    /// The user declines: the first poll gets `authorization_declined`.
    Decline,
    /// Nobody signs in and the code is treated as expired at the first poll
    /// (`expired_token`), so a client's expiry path runs without waiting 15 minutes. The
    /// real lifetime ([`Settings::code_lifetime`](crate::Settings)) is enforced regardless.
    Expire,
}

/// Whether the token endpoint asks the poller to slow down (RFC 8628 3.5). Polling faster
/// than the interval gets `slow_down` in every scenario; these add more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlowDown {
    /// Only when the client polls too fast.
    Never,
    /// The first poll of each code gets `slow_down` (the client must add 5 s for good).
    Once,
    /// Every poll gets `slow_down`: the code can only expire.
    Always,
}

/// Refusals of the identity platform, each with its AADSTS number and OAuth `error`, and
/// the request it happens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aadsts {
    /// 53003: Conditional Access blocks token issuance (S8), at the poll after sign-in.
    ConditionalAccess53003,
    /// 530033: Conditional Access blocks the device code flow itself ("Block Device Code
    /// Flow"), at the poll after sign-in.
    DeviceCodeFlowBlocked530033,
    /// 65001: nobody consented to the application (S10), at the poll after sign-in.
    ConsentRequired65001,
    /// 50076: multi-factor authentication required, at the poll after sign-in.
    MfaRequired50076,
    /// 50079: the user must enrol in multi-factor authentication, at the poll after sign-in.
    MfaEnrollment50079,
    /// 700082: the refresh token expired after 90 days idle, on refresh only.
    RefreshTokenInactive700082,
    /// 50173: the grant was revoked (password changed or reset), on refresh only.
    GrantRevoked50173,
    /// 50194: a single-tenant application used `/common` (or `/organizations`,
    /// `/consumers`): the device-code request itself fails; a tenant id works.
    SingleTenantOnCommon50194,
    /// 7000218: the application is not a public client, so the token endpoint wants a
    /// client secret, at the first poll.
    NotPublicClient7000218,
}

/// Which request an [`Aadsts`] refusal answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    DeviceCode,
    /// A device-code poll of the token endpoint.
    Poll,
    /// `grant_type=refresh_token` at the token endpoint.
    Refresh,
}

impl Aadsts {
    /// Every refusal, in AADSTS order of the design document.
    pub const ALL: [Aadsts; 9] = [
        Aadsts::ConditionalAccess53003,
        Aadsts::DeviceCodeFlowBlocked530033,
        Aadsts::ConsentRequired65001,
        Aadsts::MfaRequired50076,
        Aadsts::MfaEnrollment50079,
        Aadsts::RefreshTokenInactive700082,
        Aadsts::GrantRevoked50173,
        Aadsts::SingleTenantOnCommon50194,
        Aadsts::NotPublicClient7000218,
    ];

    /// The AADSTS number.
    pub fn code(self) -> u32 {
        match self {
            Aadsts::ConditionalAccess53003 => 53003,
            Aadsts::DeviceCodeFlowBlocked530033 => 530033,
            Aadsts::ConsentRequired65001 => 65001,
            Aadsts::MfaRequired50076 => 50076,
            Aadsts::MfaEnrollment50079 => 50079,
            Aadsts::RefreshTokenInactive700082 => 700082,
            Aadsts::GrantRevoked50173 => 50173,
            Aadsts::SingleTenantOnCommon50194 => 50194,
            Aadsts::NotPublicClient7000218 => 7000218,
        }
    }

    /// The OAuth `error` Microsoft sends with it.
    pub fn error(self) -> &'static str {
        match self {
            Aadsts::MfaEnrollment50079 => "interaction_required",
            Aadsts::SingleTenantOnCommon50194 => "invalid_request",
            Aadsts::NotPublicClient7000218 => "invalid_client",
            _ => "invalid_grant",
        }
    }

    /// The request it answers.
    pub fn stage(self) -> Stage {
        match self {
            Aadsts::SingleTenantOnCommon50194 => Stage::DeviceCode,
            Aadsts::RefreshTokenInactive700082 | Aadsts::GrantRevoked50173 => Stage::Refresh,
            _ => Stage::Poll,
        }
    }
}

/// What is wrong with the id_token of a successful sign-in: each must leave the device
/// signed out, with a diagnosis that says which check failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdTokenFlaw {
    /// A token as Microsoft issues it.
    #[default]
    None,
    /// `aud` names another application (Microsoft Graph's id), not the client id.
    WrongAudience,
    /// `tid` names another organization ([`OTHER_TENANT`]) while `iss` names the account's
    /// own: the token fits neither a tenant-id setting nor its own issuer.
    WrongTenant,
    /// `exp` (and `iat`, `nbf`) an hour in the past by the platform's own clock.
    Expired,
}

/// The tenant id an id_token names under [`IdTokenFlaw::WrongTenant`] (made up).
pub const OTHER_TENANT: &str = "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/// The verification URI of [`Scenario::insecure_verification_uri`]: plain `http` to a
/// public host, which the device must not show.
pub const INSECURE_VERIFICATION_URI: &str = "http://microsoft.com/devicelogin";

/// Exchange Online's behaviour at AUTH and after DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpCase {
    /// Tokens are checked; limits are enforced as configured.
    Normal,
    /// `535 5.7.139 … SmtpClientAuthentication is disabled for the Tenant …` at AUTH.
    AuthDisabledForTenant,
    /// `535 5.7.139 … SmtpClientAuthentication is disabled for the Mailbox …` at AUTH.
    AuthDisabledForMailbox,
    /// `535 5.7.139 … locked by your organization's security defaults policy …` at AUTH.
    SecurityDefaults,
    /// `432 4.3.2 Concurrent connections limit exceeded …` at AUTH, whatever the count.
    ConcurrentLimit,
    /// `554 5.2.0 …SubmissionQuotaExceededException …` after DATA.
    SubmissionQuota,
    /// A Gmail-style `334 <base64 JSON>` error challenge at AUTH XOAUTH2; the client must
    /// answer with an empty line, then gets `535 5.7.3`.
    ErrorChallenge,
    /// `535 5.7.139 Authentication unsuccessful, the request did not meet the criteria …`
    /// at AUTH: Conditional Access or security defaults refuse the sign-in.
    ConditionalAccess,
    /// `535 5.7.3 Authentication unsuccessful` at AUTH, whatever the token (e.g. an
    /// Outlook.com account whose sign-in is blocked).
    AuthUnsuccessful,
    /// `554 5.2.2 mailbox full; …QuotaExceededException…` after DATA: sent mail is kept
    /// in Sent Items, so a full mailbox cannot send.
    MailboxFull,
    /// `550 5.2.251 Sender throttled due to continuous mailbox full errors.` at MAIL FROM.
    ThrottledMailboxFull,
    /// `550 5.2.252 Sender throttled due to continuous send as denied errors.` at MAIL FROM.
    ThrottledSendAsDenied,
    /// `550 5.2.253 Sender throttled due to continuous invalid license errors.` at MAIL FROM.
    ThrottledInvalidLicense,
    /// Outlook.com `554 5.2.0 …OutboundSpamException…` after DATA: the account is
    /// blocked for sending spam.
    OutboundSpam,
    /// Send As is checked only at submission: MAIL FROM accepts any sender, and a From
    /// header the account may not send as gets SendAsDenied after DATA (in the wording of
    /// [`SendAsReply`]).
    SendAsDeniedAfterData,
    /// `421 4.3.2 Service not available, closing transmission channel` in reply to MAIL
    /// FROM, then the connection closes: temporary, and the client sends nothing more.
    ServiceUnavailableAfterMail,
    /// `421 4.3.2 Service not available…` in reply to the final dot: not delivered.
    ServiceUnavailableAtFinalDot,
    /// The reply to the final dot comes after `millis` milliseconds (a slow server; RFC
    /// 5321 gives the client 10 minutes). The named case waits
    /// [`SLOW_FINAL_REPLY_MS`](crate::exchange::SLOW_FINAL_REPLY_MS).
    SlowFinalReply { millis: u32 },
    /// QUIT gets no `221`: the server just closes the connection (a failed QUIT, which
    /// must not turn an accepted message into a failure).
    QuitUnanswered,
}

/// Which wording a SendAs refusal after DATA uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendAsReply {
    /// `554 5.2.252 SendAsDenied; a not allowed to send as b; STOREDRV…`.
    Current,
    /// The older `554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException…`.
    Legacy,
}

/// The switches both stand-ins read. `Scenario::default()` is the happy path with a
/// manual approval page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    pub approval: Approval,
    pub slow_down: SlowDown,
    /// An identity refusal, answered at its [`Stage`].
    pub failure: Option<Aadsts>,
    pub smtp: SmtpCase,
    pub send_as_reply: SendAsReply,
    /// What is wrong with the id_token of a successful sign-in.
    #[serde(default)]
    pub id_token: IdTokenFlaw,
    /// Seconds the identity platform's clock is ahead of the true time (negative: behind),
    /// as its `Date` header and id_token times show: to the device, its own clock looks
    /// wrong by as much.
    #[serde(default)]
    pub clock_offset: i64,
    /// Device-code replies name [`INSECURE_VERIFICATION_URI`] as the page to open.
    #[serde(default)]
    pub insecure_verification_uri: bool,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            approval: Approval::Manual,
            slow_down: SlowDown::Never,
            failure: None,
            smtp: SmtpCase::Normal,
            send_as_reply: SendAsReply::Current,
            id_token: IdTokenFlaw::None,
            clock_offset: 0,
            insecure_verification_uri: false,
        }
    }
}

/// How long an id_token of the stand-in is valid after it is issued (Microsoft: an hour).
pub const ID_TOKEN_LIFETIME_SECS: u64 = 3600;

/// The clock skew an id_token's times are allowed (5 minutes, as Microsoft's own token
/// libraries allow): a device with a right clock accepts a token issued by a platform whose
/// clock is off by less.
pub const ID_TOKEN_CLOCK_LEEWAY_SECS: u64 = 300;

/// How a sign-in against a scenario ends once its code is approved (on the approval page,
/// or on its own): what a device with a right clock must make of what the identity
/// platform answers. The demo's approval page tells it, so that it never says "signed in"
/// when the device will say otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum SignInOutcome {
    /// Tokens are issued and the device signs in (perhaps with a warning, e.g. about its
    /// clock).
    SignedIn,
    /// The request is declined (`authorization_declined`).
    Declined,
    /// The code expires before any token is issued (`expired_token`), also when every
    /// poll is told to slow down.
    Expired,
    /// The identity platform refuses: the device code request, or the token request after
    /// the approval.
    Refused(Aadsts),
    /// Tokens are issued, but the id_token is flawed: the device stays signed out.
    IdTokenRejected(IdTokenFlaw),
    /// Tokens are issued, but the platform's clock is so far off that the id_token's times
    /// look wrong to the device (not yet valid, or expired): the device stays signed out.
    ClockRejected,
    /// The device-code reply names a page the device will not show (plain http on a
    /// public host): the sign-in ends before any approval.
    VerificationUriRejected,
}

impl SignInOutcome {
    /// Whether the device ends up signed in.
    pub fn signs_in(self) -> bool {
        self == SignInOutcome::SignedIn
    }
}

impl Scenario {
    /// How a sign-in ends under these switches, in the order the stand-ins check them:
    /// the device-code request, the token endpoint's refusals, expiry and slow-downs, a
    /// decline, a refusal after approval, then the id_token the device checks.
    pub fn sign_in_outcome(&self) -> SignInOutcome {
        if let Some(outcome) = self.outcome_before_decision() {
            return outcome;
        }
        if self.approval == Approval::Decline {
            return SignInOutcome::Declined;
        }
        if let Some(a) = self.failure.filter(|a| a.stage() == Stage::Poll) {
            return SignInOutcome::Refused(a);
        }
        if self.id_token != IdTokenFlaw::None {
            return SignInOutcome::IdTokenRejected(self.id_token);
        }
        // Ahead: the token is issued in the device's future. Behind: it may have expired
        // by the device's clock.
        let leeway = ID_TOKEN_CLOCK_LEEWAY_SECS as i64;
        let lifetime = ID_TOKEN_LIFETIME_SECS as i64;
        if self.clock_offset > leeway || self.clock_offset + lifetime < -leeway {
            return SignInOutcome::ClockRejected;
        }
        SignInOutcome::SignedIn
    }

    /// How a sign-in ends when the user declines on the approval page: declined, unless
    /// the stand-ins end it before the user's decision counts.
    pub fn sign_in_outcome_when_declined(&self) -> SignInOutcome {
        self.outcome_before_decision()
            .unwrap_or(SignInOutcome::Declined)
    }

    /// The end that comes whatever the user decides: no code issued or shown, or the
    /// token endpoint refusing or expiring the code before it looks at the decision.
    fn outcome_before_decision(&self) -> Option<SignInOutcome> {
        let failure = self.failure;
        if let Some(a) = failure.filter(|a| a.stage() == Stage::DeviceCode) {
            return Some(SignInOutcome::Refused(a));
        }
        if self.insecure_verification_uri {
            return Some(SignInOutcome::VerificationUriRejected);
        }
        // The token endpoint refuses a client that is not public at every poll.
        if failure == Some(Aadsts::NotPublicClient7000218) {
            return Some(SignInOutcome::Refused(Aadsts::NotPublicClient7000218));
        }
        if self.approval == Approval::Expire || self.slow_down == SlowDown::Always {
            return Some(SignInOutcome::Expired);
        }
        None
    }
}

/// Which mailbox account a case signs in with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountKind {
    /// A work account whose primary address is its UPN.
    Work,
    /// A work account whose primary address differs from its UPN (S9).
    PrimaryDiffersFromUpn,
    /// A work account whose id_token has no `email` claim.
    NoEmailClaim,
    /// A personal Microsoft account (Outlook.com, tenant `9188040d-…`).
    Personal,
}

/// The named situations the demo and the browser preview offer. Each is a
/// [`Scenario`] plus the account that signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    /// Sign-in approved after two pending polls; mail goes through.
    Happy,
    /// Sign-in waits for the approval page.
    ManualApproval,
    /// The user declines on the approval page.
    Declined,
    /// The code expires before anybody signs in.
    Expired,
    /// The first poll is told to slow down, then sign-in succeeds.
    SlowDownOnce,
    /// Every poll is told to slow down.
    SlowDownAlways,
    /// An identity-platform refusal.
    Refused(Aadsts),
    /// The primary address differs from the UPN (S9).
    PrimaryDiffersFromUpn,
    /// The id_token carries no `email` claim.
    NoEmailClaim,
    /// A personal Microsoft account (Outlook.com).
    PersonalAccount,
    /// A personal Microsoft account whose sign-in Outlook.com refuses (`535 5.7.3`).
    PersonalAccountAuthRefused,
    /// The id_token of the sign-in is flawed: the device stays signed out.
    IdToken(IdTokenFlaw),
    /// The platform's clock is 2 hours ahead of the device's: a fresh id_token looks not
    /// yet valid, and the device must say its own clock is wrong.
    ServerClockAhead,
    /// The platform's clock is 30 minutes behind the device's: sign-in works, with a
    /// warning that the device's clock is wrong.
    ServerClockBehind,
    /// The device-code reply names a plain `http` page on a public host.
    InsecureVerificationUri,
    /// An Exchange Online behaviour other than normal.
    Smtp(SmtpCase),
    /// SendAs refusals use the older 5.2.0 wording.
    LegacySendAsReply,
}

impl Case {
    /// Every case, in the order a menu lists them.
    pub fn all() -> Vec<Case> {
        let mut all = vec![
            Case::Happy,
            Case::ManualApproval,
            Case::Declined,
            Case::Expired,
            Case::SlowDownOnce,
            Case::SlowDownAlways,
        ];
        all.extend(Aadsts::ALL.into_iter().map(Case::Refused));
        all.extend([
            Case::IdToken(IdTokenFlaw::WrongAudience),
            Case::IdToken(IdTokenFlaw::WrongTenant),
            Case::IdToken(IdTokenFlaw::Expired),
            Case::ServerClockAhead,
            Case::ServerClockBehind,
            Case::InsecureVerificationUri,
        ]);
        all.extend([
            Case::PrimaryDiffersFromUpn,
            Case::NoEmailClaim,
            Case::PersonalAccount,
            Case::PersonalAccountAuthRefused,
        ]);
        all.extend(
            [
                SmtpCase::AuthDisabledForTenant,
                SmtpCase::AuthDisabledForMailbox,
                SmtpCase::SecurityDefaults,
                SmtpCase::ConcurrentLimit,
                SmtpCase::SubmissionQuota,
                SmtpCase::ErrorChallenge,
                SmtpCase::ConditionalAccess,
                SmtpCase::AuthUnsuccessful,
                SmtpCase::MailboxFull,
                SmtpCase::ThrottledMailboxFull,
                SmtpCase::ThrottledSendAsDenied,
                SmtpCase::ThrottledInvalidLicense,
                SmtpCase::OutboundSpam,
                SmtpCase::SendAsDeniedAfterData,
                SmtpCase::ServiceUnavailableAfterMail,
                SmtpCase::ServiceUnavailableAtFinalDot,
                SmtpCase::SlowFinalReply {
                    millis: crate::exchange::SLOW_FINAL_REPLY_MS,
                },
                SmtpCase::QuitUnanswered,
            ]
            .map(Case::Smtp),
        );
        all.push(Case::LegacySendAsReply);
        all
    }

    /// A stable name for menus, command lines and URLs, e.g. `aadsts-53003`.
    pub fn name(self) -> String {
        match self {
            Case::Happy => "happy".into(),
            Case::ManualApproval => "manual-approval".into(),
            Case::Declined => "declined".into(),
            Case::Expired => "expired".into(),
            Case::SlowDownOnce => "slow-down-once".into(),
            Case::SlowDownAlways => "slow-down-always".into(),
            Case::Refused(a) => format!("aadsts-{}", a.code()),
            Case::PrimaryDiffersFromUpn => "primary-differs-from-upn".into(),
            Case::NoEmailClaim => "no-email-claim".into(),
            Case::PersonalAccount => "personal-account".into(),
            Case::IdToken(flaw) => match flaw {
                IdTokenFlaw::None => "id-token-fine",
                IdTokenFlaw::WrongAudience => "id-token-wrong-audience",
                IdTokenFlaw::WrongTenant => "id-token-wrong-tenant",
                IdTokenFlaw::Expired => "id-token-expired",
            }
            .into(),
            Case::ServerClockAhead => "server-clock-ahead".into(),
            Case::ServerClockBehind => "server-clock-behind".into(),
            Case::InsecureVerificationUri => "http-verification-uri".into(),
            Case::PersonalAccountAuthRefused => "personal-account-auth-refused".into(),
            Case::Smtp(s) => match s {
                SmtpCase::Normal => "smtp-normal",
                SmtpCase::AuthDisabledForTenant => "smtp-auth-disabled-tenant",
                SmtpCase::AuthDisabledForMailbox => "smtp-auth-disabled-mailbox",
                SmtpCase::SecurityDefaults => "smtp-security-defaults",
                SmtpCase::ConcurrentLimit => "smtp-concurrent-limit",
                SmtpCase::SubmissionQuota => "smtp-submission-quota",
                SmtpCase::ErrorChallenge => "smtp-error-challenge",
                SmtpCase::ConditionalAccess => "smtp-conditional-access",
                SmtpCase::AuthUnsuccessful => "smtp-auth-unsuccessful",
                SmtpCase::MailboxFull => "smtp-mailbox-full",
                SmtpCase::ThrottledMailboxFull => "smtp-throttled-mailbox-full",
                SmtpCase::ThrottledSendAsDenied => "smtp-throttled-send-as-denied",
                SmtpCase::ThrottledInvalidLicense => "smtp-throttled-invalid-license",
                SmtpCase::OutboundSpam => "smtp-outbound-spam",
                SmtpCase::SendAsDeniedAfterData => "smtp-send-as-denied",
                SmtpCase::ServiceUnavailableAfterMail => "smtp-421-after-mail",
                SmtpCase::ServiceUnavailableAtFinalDot => "smtp-421-at-final-dot",
                SmtpCase::SlowFinalReply { .. } => "smtp-slow-final-reply",
                SmtpCase::QuitUnanswered => "smtp-quit-unanswered",
            }
            .into(),
            Case::LegacySendAsReply => "legacy-send-as-reply".into(),
        }
    }

    /// The case named `name` (see [`Case::name`]).
    pub fn from_name(name: &str) -> Option<Case> {
        if name == "smtp-normal" {
            return Some(Case::Smtp(SmtpCase::Normal));
        }
        Case::all().into_iter().find(|c| c.name() == name)
    }

    /// One line saying what the case shows, for the demo's menu.
    pub fn describe(self) -> &'static str {
        match self {
            Case::Happy => "Sign-in approved after two polls; mail is accepted.",
            Case::ManualApproval => {
                "Sign-in waits until the code is approved on the approval page."
            }
            Case::Declined => "The user declines the sign-in request.",
            Case::Expired => "The device code expires before anybody signs in.",
            Case::SlowDownOnce => "The first poll is told to slow down; then sign-in succeeds.",
            Case::SlowDownAlways => "Every poll is told to slow down, until the code expires.",
            Case::Refused(a) => match a {
                Aadsts::ConditionalAccess53003 => {
                    "Conditional Access blocks token issuance (AADSTS53003)."
                }
                Aadsts::DeviceCodeFlowBlocked530033 => {
                    "Conditional Access blocks the device code flow (AADSTS530033)."
                }
                Aadsts::ConsentRequired65001 => {
                    "Nobody consented to the application (AADSTS65001)."
                }
                Aadsts::MfaRequired50076 => {
                    "Multi-factor authentication is required (AADSTS50076)."
                }
                Aadsts::MfaEnrollment50079 => {
                    "The user must enrol in multi-factor authentication (AADSTS50079)."
                }
                Aadsts::RefreshTokenInactive700082 => {
                    "The refresh token expired after 90 idle days (AADSTS700082)."
                }
                Aadsts::GrantRevoked50173 => {
                    "The grant was revoked, e.g. after a password change (AADSTS50173)."
                }
                Aadsts::SingleTenantOnCommon50194 => {
                    "A single-tenant application used /common (AADSTS50194)."
                }
                Aadsts::NotPublicClient7000218 => {
                    "The application is not registered as a public client (AADSTS7000218)."
                }
            },
            Case::PrimaryDiffersFromUpn => "The mailbox's primary address differs from its UPN.",
            Case::NoEmailClaim => "The id_token carries no email claim.",
            Case::PersonalAccount => "A personal Microsoft account (Outlook.com).",
            Case::IdToken(flaw) => match flaw {
                IdTokenFlaw::None => "The id_token is as Microsoft issues it.",
                IdTokenFlaw::WrongAudience => {
                    "The id_token was issued to another application (wrong aud)."
                }
                IdTokenFlaw::WrongTenant => {
                    "The id_token names another tenant than its issuer and the device's setting."
                }
                IdTokenFlaw::Expired => "The id_token expired an hour ago.",
            },
            Case::ServerClockAhead => {
                "The identity platform's clock is 2 hours ahead: the device's clock is wrong."
            }
            Case::ServerClockBehind => {
                "The identity platform's clock is 30 minutes behind: sign-in warns about the clock."
            }
            Case::InsecureVerificationUri => {
                "The device-code reply names a plain http page (http://microsoft.com/devicelogin)."
            }
            Case::PersonalAccountAuthRefused => {
                "Outlook.com refuses the sign-in of a personal account (535 5.7.3)."
            }
            Case::Smtp(s) => match s {
                SmtpCase::Normal => "Exchange Online accepts authenticated mail.",
                SmtpCase::AuthDisabledForTenant => {
                    "SMTP AUTH is disabled for the tenant (535 5.7.139)."
                }
                SmtpCase::AuthDisabledForMailbox => {
                    "SMTP AUTH is disabled for the mailbox (535 5.7.139)."
                }
                SmtpCase::SecurityDefaults => "Security defaults block SMTP AUTH (535 5.7.139).",
                SmtpCase::ConcurrentLimit => "Too many concurrent connections (432 4.3.2).",
                SmtpCase::SubmissionQuota => "The submission quota is exceeded (554 5.2.0).",
                SmtpCase::ErrorChallenge => "AUTH answers with a 334 error challenge, then 535.",
                SmtpCase::ConditionalAccess => {
                    "Conditional Access or security defaults refuse the sign-in (535 5.7.139)."
                }
                SmtpCase::AuthUnsuccessful => "Every sign-in is refused (535 5.7.3).",
                SmtpCase::MailboxFull => {
                    "The mailbox is full, so sent mail cannot be kept (554 5.2.2)."
                }
                SmtpCase::ThrottledMailboxFull => {
                    "Throttled after continuous mailbox-full errors (550 5.2.251)."
                }
                SmtpCase::ThrottledSendAsDenied => {
                    "Throttled after continuous SendAsDenied errors (550 5.2.252)."
                }
                SmtpCase::ThrottledInvalidLicense => {
                    "Throttled after continuous invalid-license errors (550 5.2.253)."
                }
                SmtpCase::OutboundSpam => {
                    "Outlook.com blocks the account for sending spam (554 5.2.0 OutboundSpamException)."
                }
                SmtpCase::SendAsDeniedAfterData => {
                    "Send As is checked after DATA: another sender gets 554 5.2.252 SendAsDenied."
                }
                SmtpCase::ServiceUnavailableAfterMail => {
                    "The server answers MAIL FROM with 421 4.3.2 and closes the connection."
                }
                SmtpCase::ServiceUnavailableAtFinalDot => {
                    "The server answers the message with 421 4.3.2 and closes the connection."
                }
                SmtpCase::SlowFinalReply { .. } => {
                    "The server takes a few seconds to accept the message (RFC 5321 allows 10 minutes)."
                }
                SmtpCase::QuitUnanswered => {
                    "The server closes the connection instead of answering QUIT with 221."
                }
            },
            Case::LegacySendAsReply => {
                "Send As is checked after DATA, with the older 554 5.2.0 SendAsDenied wording."
            }
        }
    }

    /// The switches of this case. Cases that sign in do so on their own after two polls,
    /// except [`Case::ManualApproval`].
    pub fn scenario(self) -> Scenario {
        let auto = Scenario {
            approval: Approval::AfterPolls(2),
            ..Scenario::default()
        };
        match self {
            Case::Happy
            | Case::PrimaryDiffersFromUpn
            | Case::NoEmailClaim
            | Case::PersonalAccount => auto,
            Case::PersonalAccountAuthRefused => Scenario {
                smtp: SmtpCase::AuthUnsuccessful,
                ..auto
            },
            Case::ManualApproval => Scenario::default(),
            Case::Declined => Scenario {
                approval: Approval::Decline,
                ..auto
            },
            Case::Expired => Scenario {
                approval: Approval::Expire,
                ..auto
            },
            Case::SlowDownOnce => Scenario {
                slow_down: SlowDown::Once,
                ..auto
            },
            Case::SlowDownAlways => Scenario {
                slow_down: SlowDown::Always,
                ..auto
            },
            Case::Refused(a) => Scenario {
                failure: Some(a),
                ..auto
            },
            Case::IdToken(flaw) => Scenario {
                id_token: flaw,
                ..auto
            },
            Case::ServerClockAhead => Scenario {
                clock_offset: 2 * 3600,
                ..auto
            },
            Case::ServerClockBehind => Scenario {
                clock_offset: -30 * 60,
                ..auto
            },
            Case::InsecureVerificationUri => Scenario {
                insecure_verification_uri: true,
                ..auto
            },
            Case::Smtp(s) => Scenario { smtp: s, ..auto },
            // The older wording is an after-DATA reply: MAIL FROM must let the sender pass.
            Case::LegacySendAsReply => Scenario {
                smtp: SmtpCase::SendAsDeniedAfterData,
                send_as_reply: SendAsReply::Legacy,
                ..auto
            },
        }
    }

    /// The account that signs in.
    pub fn account_kind(self) -> AccountKind {
        match self {
            Case::PrimaryDiffersFromUpn => AccountKind::PrimaryDiffersFromUpn,
            Case::NoEmailClaim => AccountKind::NoEmailClaim,
            Case::PersonalAccount
            | Case::PersonalAccountAuthRefused
            | Case::Smtp(SmtpCase::OutboundSpam) => AccountKind::Personal,
            _ => AccountKind::Work,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_has_a_unique_name_that_reads_back() {
        let all = Case::all();
        let mut names: Vec<String> = all.iter().map(|c| c.name()).collect();
        for case in &all {
            assert_eq!(
                Case::from_name(&case.name()),
                Some(*case),
                "{}",
                case.name()
            );
            assert!(!case.describe().is_empty());
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    /// The outcome the demo's approval page tells is the one the component tests hold the
    /// device to: a case whose sign-in fails in the catalogue never "signs in", and the
    /// kind of failure matches the diagnosis.
    #[test]
    fn the_sign_in_outcome_agrees_with_the_catalogue() {
        for entry in catalogue() {
            let name = entry.name();
            let outcome = entry.case.scenario().sign_in_outcome();
            if entry.run != Run::SignIn {
                // Sends sign in first, which must succeed.
                assert_eq!(outcome, SignInOutcome::SignedIn, "{name}");
                continue;
            }
            assert_eq!(
                outcome.signs_in(),
                entry.code.is_none(),
                "{name}: {outcome:?}"
            );
            let code = entry.code.unwrap_or_default();
            match outcome {
                SignInOutcome::SignedIn => {}
                SignInOutcome::Declined => assert_eq!(code, "sign-in-declined", "{name}"),
                SignInOutcome::Expired => assert_eq!(code, "sign-in-expired", "{name}"),
                SignInOutcome::Refused(a) => assert_eq!(
                    entry.quotes,
                    Some(format!("AADSTS{}", a.code()).as_str()),
                    "{name}"
                ),
                SignInOutcome::IdTokenRejected(_) => {
                    assert!(code.starts_with("sign-in-id-token-"), "{name}: {code}")
                }
                SignInOutcome::ClockRejected => assert_eq!(code, "device-clock-wrong", "{name}"),
                SignInOutcome::VerificationUriRejected => {
                    assert_eq!(code, "sign-in-verification-uri-unsafe", "{name}")
                }
            }
        }
    }

    /// The SMTP reply codes in an SMTP case's description (`554 5.2.0`), as they appear
    /// in the demo's scenario menu.
    fn reply_codes_named(text: &str) -> Vec<String> {
        let words: Vec<&str> = text
            .split_whitespace()
            .map(|w| w.trim_matches(|c: char| "().,;:".contains(c)))
            .collect();
        let basic = |w: &str| w.len() == 3 && w.chars().all(|c| c.is_ascii_digit());
        let enhanced = |w: &str| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        };
        words
            .windows(2)
            .filter(|pair| basic(pair[0]) && enhanced(pair[1]))
            .map(|pair| format!("{} {}", pair[0], pair[1]))
            .collect()
    }

    /// Each case's reply is the one its name and description promise: an SMTP reply the
    /// menu names is the one the catalogue holds the device to quote for that case (e.g.
    /// `legacy-send-as-reply`: 554 5.2.0).
    #[test]
    fn each_case_gives_the_reply_its_description_names() {
        let mut checked = 0;
        for case in Case::all() {
            let named = reply_codes_named(case.describe());
            let Some(code) = named.first() else { continue };
            let quoted: Vec<&str> = catalogue()
                .iter()
                .filter(|e| e.case == case)
                .filter_map(|e| e.quotes)
                .collect();
            assert!(
                quoted.iter().any(|q| q.starts_with(code.as_str())),
                "{}: described with {code}, but the device is held to {quoted:?}",
                case.name()
            );
            checked += 1;
        }
        assert!(
            reply_codes_named(Case::LegacySendAsReply.describe()) == ["554 5.2.0"],
            "{}",
            Case::LegacySendAsReply.describe()
        );
        assert!(checked >= 15, "only {checked} cases name a reply");
    }

    #[test]
    fn declining_ends_declined_unless_the_code_was_lost_before_the_decision() {
        for case in [
            Case::Happy,
            Case::ManualApproval,
            Case::Refused(Aadsts::ConditionalAccess53003),
        ] {
            assert_eq!(
                case.scenario().sign_in_outcome_when_declined(),
                SignInOutcome::Declined,
                "{}",
                case.name()
            );
        }
        assert_eq!(
            Case::Expired.scenario().sign_in_outcome_when_declined(),
            SignInOutcome::Expired
        );
        assert_eq!(
            Case::Refused(Aadsts::NotPublicClient7000218)
                .scenario()
                .sign_in_outcome_when_declined(),
            SignInOutcome::Refused(Aadsts::NotPublicClient7000218)
        );
    }

    #[test]
    fn a_clock_off_within_the_leeway_or_the_tokens_lifetime_still_signs_in() {
        let with_offset = |clock_offset| Scenario {
            clock_offset,
            ..Scenario::default()
        };
        assert!(with_offset(300).sign_in_outcome().signs_in());
        assert_eq!(
            with_offset(301).sign_in_outcome(),
            SignInOutcome::ClockRejected
        );
        assert!(with_offset(-3600 - 300).sign_in_outcome().signs_in());
        assert_eq!(
            with_offset(-3600 - 301).sign_in_outcome(),
            SignInOutcome::ClockRejected
        );
    }

    #[test]
    fn each_aadsts_refusal_has_microsofts_error_value() {
        assert_eq!(Aadsts::ConditionalAccess53003.error(), "invalid_grant");
        assert_eq!(Aadsts::SingleTenantOnCommon50194.error(), "invalid_request");
        assert_eq!(Aadsts::NotPublicClient7000218.error(), "invalid_client");
        assert_eq!(Aadsts::RefreshTokenInactive700082.stage(), Stage::Refresh);
        assert_eq!(Aadsts::GrantRevoked50173.stage(), Stage::Refresh);
        assert_eq!(Aadsts::SingleTenantOnCommon50194.stage(), Stage::DeviceCode);
    }
}
