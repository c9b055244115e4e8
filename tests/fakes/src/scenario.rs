//! The scenario table: what the stand-ins do, one switch per behaviour the product must
//! handle. [`Scenario`] holds the switches (combine them freely in tests); [`Case`] is the
//! named list the demo and the browser preview offer, one entry per situation an
//! administrator can meet, each mapped to its switches.

use serde::{Deserialize, Serialize};

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
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            approval: Approval::Manual,
            slow_down: SlowDown::Never,
            failure: None,
            smtp: SmtpCase::Normal,
            send_as_reply: SendAsReply::Current,
        }
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
            Case::PrimaryDiffersFromUpn,
            Case::NoEmailClaim,
            Case::PersonalAccount,
        ]);
        all.extend(
            [
                SmtpCase::AuthDisabledForTenant,
                SmtpCase::AuthDisabledForMailbox,
                SmtpCase::SecurityDefaults,
                SmtpCase::ConcurrentLimit,
                SmtpCase::SubmissionQuota,
                SmtpCase::ErrorChallenge,
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
            Case::Smtp(s) => match s {
                SmtpCase::Normal => "smtp-normal",
                SmtpCase::AuthDisabledForTenant => "smtp-auth-disabled-tenant",
                SmtpCase::AuthDisabledForMailbox => "smtp-auth-disabled-mailbox",
                SmtpCase::SecurityDefaults => "smtp-security-defaults",
                SmtpCase::ConcurrentLimit => "smtp-concurrent-limit",
                SmtpCase::SubmissionQuota => "smtp-submission-quota",
                SmtpCase::ErrorChallenge => "smtp-error-challenge",
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
            },
            Case::LegacySendAsReply => "SendAs refusals use the older 554 5.2.0 wording.",
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
            Case::Smtp(s) => Scenario { smtp: s, ..auto },
            Case::LegacySendAsReply => Scenario {
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
            Case::PersonalAccount => AccountKind::Personal,
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
