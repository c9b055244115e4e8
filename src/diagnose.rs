//! Diagnoses: what may go wrong with the current settings, each with a stable code, a
//! message and a remedy that names the setting to change.

use crate::remedy::Remedy;
use crate::settings::{LoginCredentials, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One finding; mirrors `diagnostic` in `wit/types.wit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    pub remedy: Remedy,
    /// The setting key (or message field) the finding is about, for a panel to show it
    /// next to that field.
    pub field: Option<&'static str>,
    /// Settings changes that apply the remedy in one step, when there are some.
    pub fix: Option<Fix>,
}

/// A remedy a panel can apply as one Apply; mirrors `fix` in `wit/types.wit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    /// The button's words.
    pub label: String,
    /// (setting key, new value) pairs.
    pub changes: Vec<(&'static str, String)>,
}

impl Diagnostic {
    pub fn new(
        code: &'static str,
        severity: Severity,
        message: impl Into<String>,
        remedy: impl Into<Remedy>,
    ) -> Self {
        Self {
            code,
            severity,
            message: message.into(),
            remedy: remedy.into(),
            field: None,
            fix: None,
        }
    }

    /// The same finding, about the setting or message field `field`.
    pub fn about(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    /// The same finding, with a one-step fix.
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}

/// Where Login Credentials is set on the web panel, for remedies.
pub const SMTP_GENERAL_PAGE: &str = "Properties > Connectivity > Protocols > SMTP Server > General";
/// Where the From Address policy is set on the web panel, for remedies.
pub const FROM_ADDRESS_PAGE: &str = "Properties > Services > Email > General > From Address";

/// Every current finding about `settings`, most severe first.
pub fn diagnostics(settings: &Settings, signed_in: bool) -> Vec<Diagnostic> {
    let mut found: Vec<Diagnostic> = [
        credentials_not_system(settings),
        send_as_denied_risk(settings),
        sign_in_required(settings, signed_in),
    ]
    .into_iter()
    .flatten()
    .collect();
    found.sort_by(|a, b| b.severity.cmp(&a.severity));
    found
}

/// S6: with Exchange Online, Login Credentials must be System; Remotely Authenticated
/// User (typically set back from the control panel) makes every send fail to authenticate.
pub fn credentials_not_system(settings: &Settings) -> Option<Diagnostic> {
    (settings.is_exchange_online() && settings.login_credentials == LoginCredentials::RemotelyAuthenticatedUser).then(|| {
        Diagnostic::new(
            "login-credentials-not-system",
            Severity::Error,
            "[Login Credentials for Email Send] is [Remotely Authenticated User]; with Exchange Online/Outlook.com every send will fail with an authentication error.",
            format!(
                "Choose [System] in [Login Credentials for Email Send] ({SMTP_GENERAL_PAGE}), and do not change it from the control panel."
            ),
        )
        .about("login-credentials")
        .with_fix(Fix {
            label: "Use [System]".into(),
            changes: vec![("login-credentials", "system".into())],
        })
    })
}

/// S7: with Exchange Online, letting guests edit From, or editing From when authorization
/// is not required, sends as an address the account may not own: SendAsDenied. Not a risk
/// when the administrator declared the sender an alias or proxy address of the account.
pub fn send_as_denied_risk(settings: &Settings) -> Option<Diagnostic> {
    let policy = &settings.from;
    if !settings.is_exchange_online() || policy.alias_sender {
        return None;
    }
    let open: Vec<(&'static str, &str)> = [
        (
            policy.guest_edit,
            "from.guest-edit",
            "[Allow Guest Users to Edit [From:] Field]",
        ),
        (
            policy.edit_without_auth,
            "from.edit-without-auth",
            "[Edit [From:] Field when Authorization is not Required]",
        ),
    ]
    .into_iter()
    .filter_map(|(on, key, label)| on.then_some((key, label)))
    .collect();
    let labels: Vec<&str> = open.iter().map(|(_, label)| *label).collect();
    open.first().map(|(first_key, _)| {
        Diagnostic::new(
            "send-as-denied-risk",
            Severity::Warning,
            format!(
                "{} is [Yes]: a sender address other than the signed-in account may be rejected by Exchange Online with SendAsDenied.",
                labels.join(" and ")
            ),
            format!(
                "Set {} to [No] ({FROM_ADDRESS_PAGE}). If the sender address is an alias or proxy address of the account, set [Sender is an alias or proxy address of the signed-in account] to [Yes] instead.",
                labels.join(" and ")
            ),
        )
        .about(first_key)
        .with_fix(Fix {
            label: format!("Set {} to [No]", labels.join(" and ")),
            changes: open.iter().map(|(key, _)| (*key, "no".to_owned())).collect(),
        })
    })
}

/// S8: Exchange Online is selected but no account is signed in, so nothing can be sent yet.
pub fn sign_in_required(settings: &Settings, signed_in: bool) -> Option<Diagnostic> {
    (settings.is_exchange_online() && !signed_in).then(|| {
        Diagnostic::new(
            "sign-in-required",
            Severity::Info,
            "Exchange Online/Outlook.com is selected, but no account is signed in yet.",
            format!("Click [Open Authentication Page] ({SMTP_GENERAL_PAGE}) and sign in with the account that sends the email."),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ServiceProvider;

    fn exchange() -> Settings {
        Settings {
            service_provider: ServiceProvider::ExchangeOnline,
            ..Settings::default()
        }
    }

    fn codes(settings: &Settings) -> Vec<&'static str> {
        diagnostics(settings, true)
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn nothing_to_say_about_defaults() {
        assert!(diagnostics(&Settings::default(), false).is_empty());
        assert!(codes(&exchange()).is_empty());
    }

    #[test]
    fn guest_edit_under_exchange_warns_of_send_as_denied() {
        let mut s = exchange();
        s.from.guest_edit = true;
        let found = diagnostics(&s, true);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "send-as-denied-risk");
        assert!(found[0].message.contains("Allow Guest Users"));
        assert!(!found[0].message.contains("Authorization is not Required"));
        assert!(found[0].remedy.contains("[No]"));
    }

    #[test]
    fn alias_sender_silences_the_send_as_warning() {
        let mut s = exchange();
        s.from.edit_without_auth = true;
        assert_eq!(codes(&s), ["send-as-denied-risk"]);
        s.from.alias_sender = true;
        assert!(codes(&s).is_empty());
    }

    #[test]
    fn from_policy_does_not_matter_without_exchange() {
        let mut s = Settings::default();
        s.from.guest_edit = true;
        s.from.edit_without_auth = true;
        assert!(codes(&s).is_empty());
    }

    #[test]
    fn remote_user_credentials_under_exchange_is_an_error_first() {
        let mut s = exchange();
        s.from.guest_edit = true;
        s.login_credentials = LoginCredentials::RemotelyAuthenticatedUser;
        assert_eq!(
            codes(&s),
            ["login-credentials-not-system", "send-as-denied-risk"]
        );
        assert!(diagnostics(&s, true)[0].remedy.contains("[System]"));
    }

    #[test]
    fn exchange_without_an_account_asks_for_sign_in() {
        let found = diagnostics(&exchange(), false);
        assert_eq!(found[0].code, "sign-in-required");
        assert!(found[0].remedy.contains("Open Authentication Page"));
    }
}

/// How a failed send is explained: the diagnosis, and whether the host should try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendDiagnosis {
    pub diagnostic: Diagnostic,
    /// Seconds to wait before the next attempt, for a transient failure worth retrying.
    pub retry_after: Option<u32>,
}

/// Transient failures are tried this many times in all.
pub const MAX_SEND_ATTEMPTS: u32 = 3;

/// Backoff before attempt `attempt + 1`: 30 s, then 60 s; `None` once attempts are spent.
pub fn retry_after(attempt: u32) -> Option<u32> {
    (attempt < MAX_SEND_ATTEMPTS)
        .then(|| 30u32.saturating_mul(1 << attempt.saturating_sub(1).min(4)))
}

/// Who a failed send signed in as: the sign-in advice for a `535` depends on it (S9, and
/// personal accounts, which have no UPN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sender<'a> {
    /// The Device Email Address: XOAUTH2's `user=` and the default From.
    pub device_email: &'a str,
    /// The signed-in account's UPN, when its id_token gave one.
    pub upn: Option<&'a str>,
    /// The account's own (primary) address, when its id_token gave one.
    pub account_address: Option<&'a str>,
    /// A personal Microsoft account (Outlook.com) rather than a work or school account.
    pub personal: bool,
}

/// Explains an SMTP failure from Exchange Online with a remedy naming what to change
/// (DESIGN.md, "Protocol facts"). Replies are told apart by their basic code, enhanced
/// code and text together: Exchange reuses enhanced codes (`5.2.252` is both SendAsDenied
/// after DATA, with `554`, and a throttle, with `550`). `attempt` bounds retries of
/// transient (4xx) replies; permanent ones are never retried.
pub fn smtp_failure(err: &crate::smtp::SmtpError, sender: &Sender, attempt: u32) -> SendDiagnosis {
    let Some(reply) = err.reply() else {
        let code = if matches!(err, crate::smtp::SmtpError::MessageTooLarge { .. }) {
            "smtp-message-too-large"
        } else {
            err.code()
        };
        return SendDiagnosis {
            diagnostic: Diagnostic::new(code, Severity::Error, format!("{err}."), err.remedy()),
            retry_after: None,
        };
    };
    let enhanced = reply.enhanced.map(|e| (e.class, e.subject, e.detail));
    let lower = reply.text().to_ascii_lowercase();
    let said = format!(" The server said: {reply}");
    let found = classify(reply.code, enhanced, &lower, sender);
    let (code, message, remedy, retry) = match found {
        Some(Found {
            code,
            message,
            remedy,
            retry,
        }) => (code, format!("{message}{said}"), remedy, retry),
        None => (
            err.code(),
            format!("{err}."),
            err.remedy().into(),
            Retry::ByReplyCode,
        ),
    };
    let retry_after = match retry {
        Retry::Never => None,
        Retry::ByReplyCode if reply.is_transient() => retry_after(attempt),
        Retry::ByReplyCode => None,
    };
    SendDiagnosis {
        diagnostic: Diagnostic::new(code, Severity::Error, message, remedy),
        retry_after,
    }
}

/// Whether a classified reply may be retried.
enum Retry {
    /// As the reply code says: 4xx is retried, 5xx is not.
    ByReplyCode,
    /// Never, whatever the code: waiting does not help (a full mailbox).
    Never,
}

/// A reply recognised by [`classify`].
struct Found {
    code: &'static str,
    message: String,
    remedy: Remedy,
    retry: Retry,
}

fn found(code: &'static str, message: impl Into<String>, remedy: impl Into<Remedy>) -> Found {
    Found {
        code,
        message: message.into(),
        remedy: remedy.into(),
        retry: Retry::ByReplyCode,
    }
}

/// What the From Address policy should say to stop SendAsDenied, for remedies.
fn from_policy_advice() -> String {
    format!(
        "In {FROM_ADDRESS_PAGE}, set [Allow Guest Users to Edit [From:] Field] to [No] and [Edit [From:] Field when Authorization is not Required] to [No]; or, if the sender is an alias or proxy address of the account, set [Sender is an alias or proxy address of the signed-in account] to [Yes] after adding it in the Exchange admin center."
    )
}

/// The reply `code` / `enhanced` with lower-cased text `lower`, if it is one Exchange
/// Online is known to send; `None` leaves the generic explanation of the failed stage.
fn classify(
    code: u16,
    enhanced: Option<(u8, u16, u16)>,
    lower: &str,
    sender: &Sender,
) -> Option<Found> {
    let device_email = sender.device_email;
    let detail = enhanced.map(|(_, _, d)| d);
    let subject = enhanced.map(|(_, s, _)| s);
    Some(match (code, enhanced) {
        (535, Some((5, 7, 139))) => auth_refused_by_policy(lower),
        (535, _) if sender.personal => personal_sign_in_refused(sender),
        (535, _)
            if sender
                .upn
                .is_some_and(|u| !u.eq_ignore_ascii_case(device_email)) =>
        {
            found(
                "smtp-auth-device-email-not-upn",
                format!(
                    "Exchange Online refused the sign-in as {device_email}: the Device Email Address is not the signed-in account's UPN."
                ),
                {
                    let upn = sender.upn.unwrap_or_default();
                    Remedy::each(
                        format!(
                            "Set the Device Email Address to {upn} in the [Device Details] (or [Description]) dialog box, then send again."
                        ),
                        format!("Run `mfp-host settings set device-email {upn}`, then send again."),
                    )
                },
            )
        }
        (535, _) => found(
            "smtp-auth-unsuccessful",
            "Exchange Online refused the sign-in.",
            "Sign in again with [Open Authentication Page]; check that the account has an Exchange Online mailbox and that Authenticated SMTP is enabled for it.",
        ),
        (530, Some((5, 7, 0))) => found(
            "smtp-starttls-required",
            "The server requires STARTTLS before sign-in.",
            "Check [SMTP Server IP Address / Host Name] and [Port Number for sending Email]: Exchange Online/Outlook.com uses smtp.office365.com, port 587. Something between the device and the server may be stripping STARTTLS.",
        ),
        (530, _) => found(
            "smtp-not-authenticated",
            "The server did not accept the device as signed in.",
            "Sign in again with [Open Authentication Page], and check the send port is 587.",
        ),
        // Continuous-error throttling of SMTP AUTH: 550 with 5.2.251–5.2.255, before the
        // SendAsDenied case, whose after-DATA reply is 554 with 5.2.252.
        (550, Some((5, 2, 251..=255))) => throttled(detail.unwrap_or_default(), device_email),
        _ if lower.contains("sender throttled") => {
            throttled(detail.unwrap_or_default(), device_email)
        }
        (550, Some((5, 7, 60))) => found(
            "smtp-send-as-denied",
            "The signed-in account may not send as this sender (550 5.7.60).",
            format!(
                "Send as the Device Email Address ({device_email}), which must be the signed-in account's UPN, or grant the account Send As permission for that address in the Exchange admin center. Check the From Address policy ({FROM_ADDRESS_PAGE}): set [Allow Guest Users to Edit [From:] Field] and [Edit [From:] Field when Authorization is not Required] to [No]."
            ),
        ),
        _ if lower.contains("sendasdenied") => found(
            "smtp-send-as-denied",
            "Exchange Online refused the message: SendAsDenied (the From address is not the account's).",
            from_policy_advice(),
        ),
        _ if lower.contains("outboundspam") => found(
            "smtp-account-blocked-for-spam",
            format!(
                "Outlook.com refused the message: the account {device_email} is blocked from sending because it was flagged for sending spam."
            ),
            format!(
                "Sign in to Outlook.com (https://outlook.live.com) as {device_email} in a browser and follow the steps it shows to unblock sending (usually verifying the account with a phone number), then send again. Sending again before that keeps failing."
            ),
        ),
        _ if lower.contains("submissionquotaexceeded") => found(
            "smtp-sending-quota-exceeded",
            "Exchange Online refused the message: the account's sending limits are exceeded.",
            "Exchange Online allows 30 messages a minute and 10,000 recipients a day per mailbox; wait, then send again (or send fewer, larger jobs).",
        ),
        _ if lower.contains("quotaexceeded")
            || lower.contains("mailbox full")
            || (subject, detail) == (Some(2), Some(2)) =>
        {
            Found {
                retry: Retry::Never,
                ..found(
                    "smtp-mailbox-full",
                    format!(
                        "Exchange Online refused the message: the mailbox of {device_email} is full. Sent mail is kept in its Sent Items folder, so a full mailbox cannot send."
                    ),
                    "Free space in the mailbox (empty Sent Items and Deleted Items), or have the administrator set a retention policy that removes old Sent Items, or raise the mailbox quota; then send again. Waiting does not help.",
                )
            }
        }
        (432, _) => concurrent_connections(),
        _ if lower.contains("concurrent connections") => concurrent_connections(),
        (421, _) | (_, Some((_, 3, 2))) => found(
            "smtp-service-unavailable",
            "Exchange Online is not accepting messages right now: a temporary condition on the server's side.",
            "Nothing on the device needs changing: it sends again after a short wait. If it persists for hours, check Exchange Online's service health in the Microsoft 365 admin center.",
        ),
        (552, _) | (_, Some((5, 3, 4))) => found(
            "smtp-message-too-large",
            "The message is larger than the server accepts.",
            "Scan fewer pages, at a lower resolution or in black and white, or split the job into several emails (Exchange Online's default limit is 35 MB).",
        ),
        _ => return None,
    })
}

/// `535 5.7.139`: a policy refused the sign-in. Which one, the text says: only "Tenant"
/// means the tenant-wide SMTP AUTH switch, only "Mailbox" the mailbox's.
fn auth_refused_by_policy(lower: &str) -> Found {
    if lower.contains("did not meet the criteria") {
        found(
            "smtp-auth-blocked-by-conditional-access",
            "Exchange Online refused the sign-in: it did not meet the criteria of the tenant's Conditional Access policies or security defaults.",
            "In the Microsoft Entra admin center, open Sign-in logs for the device's account and find the failed sign-in: it names the Conditional Access policy (or security defaults) that blocked it. Exclude this account or device from that policy, or adjust its conditions (location, device, MFA), then send again.",
        )
    } else if lower.contains("security defaults") {
        found(
            "smtp-auth-blocked-by-security-defaults",
            "Exchange Online refused the sign-in: the tenant's security defaults block SMTP AUTH.",
            "In the Microsoft Entra admin center, turn off security defaults (Identity > Overview > Properties > Manage security defaults) or replace them with Conditional Access policies that allow this device, then send again.",
        )
    } else if lower.contains("tenant") {
        found(
            "smtp-auth-disabled-for-tenant",
            "Exchange Online refused the sign-in: SMTP AUTH is disabled for the tenant.",
            "In the Exchange admin center, enable SMTP AUTH for the organization (Set-TransportConfig -SmtpClientAuthenticationDisabled $false) or for this mailbox, then send again.",
        )
    } else if lower.contains("mailbox") {
        found(
            "smtp-auth-disabled-for-mailbox",
            "Exchange Online refused the sign-in: SMTP AUTH is disabled for the mailbox.",
            "In the Microsoft 365 admin center, open the user > Mail > Manage email apps and tick [Authenticated SMTP] (or Set-CASMailbox -SmtpClientAuthenticationDisabled $false), then send again.",
        )
    } else {
        found(
            "smtp-auth-refused-by-policy",
            "Exchange Online refused the sign-in because of a policy of the tenant or the mailbox.",
            "Ask the Microsoft 365 administrator to check, for the device's account, the sign-in logs (Conditional Access), and that Authenticated SMTP is enabled for the mailbox and the organization; then send again.",
        )
    }
}

/// `535` for a personal Microsoft account: it has no UPN, so the S9 advice does not apply.
fn personal_sign_in_refused(sender: &Sender) -> Found {
    let device_email = sender.device_email;
    let own = sender
        .account_address
        .or(sender.upn)
        .filter(|own| !own.eq_ignore_ascii_case(device_email));
    let remedy = match own {
        Some(own) => Remedy::each(
            format!(
                "Personal Microsoft accounts (Outlook.com) sign in with their own address only: set the Device Email Address to {own} in the [Device Details] (or [Description]) dialog box, then send again."
            ),
            format!(
                "Personal Microsoft accounts (Outlook.com) sign in with their own address only: run `mfp-host settings set device-email {own}`, then send again."
            ),
        ),
        None => Remedy::from(format!(
            "Sign in again with [Open Authentication Page] as {device_email}. If it still fails, sign in to https://account.microsoft.com with that account and check its Security settings: sign-in must not be blocked or waiting for a verification, and the account must be allowed to send mail from apps (Outlook.com > Settings > Mail > Sync email)."
        )),
    };
    found(
        "smtp-auth-personal-account",
        format!(
            "Outlook.com refused the sign-in of the personal Microsoft account {device_email}."
        ),
        remedy,
    )
}

/// `550 5.2.25x Sender throttled due to continuous … errors`: Exchange stops the mailbox
/// sending over SMTP AUTH for a while after repeated failures of one kind. The cause must
/// be fixed first; sending again before that only keeps the throttle on.
fn throttled(detail: u16, device_email: &str) -> Found {
    let (cause, fix) = match detail {
        251 => (
            "its mailbox is full",
            "free space in the mailbox of the account (Sent Items keeps every sent message) or set a retention policy",
        ),
        252 => (
            "of repeated SendAsDenied refusals",
            "make the device send as the account: set [Allow Guest Users to Edit [From:] Field] and [Edit [From:] Field when Authorization is not Required] to [No] (From Address page), or grant the account Send As permission for the sender address",
        ),
        253 => (
            "the account has no valid Exchange Online license",
            "assign the account a license that includes Exchange Online in the Microsoft 365 admin center",
        ),
        254 => (
            "of messages with too many recipients",
            "send to fewer recipients per message",
        ),
        255 => (
            "of repeated invalid recipients",
            "correct the recipient addresses (check the address book entries used)",
        ),
        _ => (
            "of repeated failed sends",
            "fix the cause of the earlier failures (see the device's previous send errors)",
        ),
    };
    let fix = fix.replace("From Address page", FROM_ADDRESS_PAGE);
    found(
        "smtp-sender-throttled",
        format!(
            "Exchange Online has stopped {device_email} from sending for a while because {cause}."
        ),
        format!(
            "First {fix}. Then wait before sending again: Exchange lifts the throttle after a while, and every further failing send keeps it on."
        ),
    )
}

/// `432 4.3.2 Concurrent connections limit exceeded`: the mailbox holds 3 connections.
fn concurrent_connections() -> Found {
    found(
        "smtp-concurrent-connections",
        "Exchange Online refused the connection: too many concurrent connections for this mailbox (limit 3).",
        "Wait and try again; if other devices or applications send through the same account, spread their sends or give the device its own mailbox.",
    )
}

#[cfg(test)]
mod smtp_failure_tests {
    use super::*;
    use crate::smtp::{ReplyParser, SmtpError, Stage};

    fn rejected(stage: Stage, reply: &str) -> SmtpError {
        let (_, parsed) = ReplyParser::default().parse(format!("{reply}\r\n").as_bytes());
        SmtpError::Rejected {
            stage,
            reply: parsed.unwrap().unwrap(),
            auth_challenge: None,
        }
    }

    const WORK: Sender<'static> = Sender {
        device_email: "mfp@contoso.com",
        upn: Some("mfp@contoso.com"),
        account_address: Some("mfp@contoso.com"),
        personal: false,
    };

    fn explain(stage: Stage, reply: &str) -> SendDiagnosis {
        smtp_failure(&rejected(stage, reply), &WORK, 1)
    }

    const MAILBOX_FULL: &str = "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionQuotaExceeded; Failed to process message due to a permanent exception with message Cannot submit message. [Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com]";
    const SEND_AS_DENIED: &str = "554 5.2.252 SendAsDenied; mfp@contoso.com not allowed to send as ceo@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.[EndDiagnosticData]";

    #[test]
    fn a_full_mailbox_is_permanent_and_points_at_sent_items() {
        let d = explain(Stage::Message, MAILBOX_FULL);
        assert_eq!(d.diagnostic.code, "smtp-mailbox-full");
        assert!(d.diagnostic.message.contains("Sent Items"));
        assert!(d.diagnostic.remedy.contains("retention policy"));
        assert!(d.diagnostic.remedy.contains("Waiting does not help"));
        assert_eq!(d.retry_after, None);
        // Even a 4xx form of it is not worth a retry.
        let d = explain(
            Stage::Message,
            "452 4.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException",
        );
        assert_eq!(
            (d.diagnostic.code, d.retry_after),
            ("smtp-mailbox-full", None)
        );
    }

    #[test]
    fn the_submission_quota_is_not_a_full_mailbox() {
        let d = explain(
            Stage::Message,
            "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message Cannot submit message.",
        );
        assert_eq!(d.diagnostic.code, "smtp-sending-quota-exceeded");
        assert!(d.diagnostic.remedy.contains("30 messages a minute"));
    }

    #[test]
    fn each_throttle_says_what_to_fix_first_then_to_wait() {
        for (reply, fix) in [
            (
                "550 5.2.251 Sender throttled due to continuous mailbox full errors.",
                "retention policy",
            ),
            (
                "550 5.2.252 Sender throttled due to continuous send as denied errors.",
                "From Address",
            ),
            (
                "550 5.2.253 Sender throttled due to continuous invalid license errors.",
                "license",
            ),
        ] {
            let d = explain(Stage::MailFrom, reply);
            assert_eq!(d.diagnostic.code, "smtp-sender-throttled", "{reply}");
            assert!(d.diagnostic.remedy.starts_with("First "), "{reply}");
            assert!(
                d.diagnostic.remedy.contains(fix),
                "{reply}: {}",
                d.diagnostic.remedy
            );
            assert!(d.diagnostic.remedy.contains("wait"), "{reply}");
            assert!(
                !d.diagnostic.remedy.contains("Device Email Address to"),
                "{reply}"
            );
            assert_eq!(d.retry_after, None, "{reply}");
        }
    }

    #[test]
    fn send_as_denied_after_data_stays_send_as_denied_despite_its_5_2_252() {
        for reply in [
            SEND_AS_DENIED,
            "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message Cannot submit message.",
        ] {
            let d = explain(Stage::Message, reply);
            assert_eq!(d.diagnostic.code, "smtp-send-as-denied", "{reply}");
            assert!(d.diagnostic.remedy.contains(FROM_ADDRESS_PAGE));
            assert_eq!(d.retry_after, None);
        }
    }

    #[test]
    fn outbound_spam_asks_to_unblock_the_account() {
        let d = explain(
            Stage::Message,
            "554 5.2.0 STOREDRV.Submission.Exception:OutboundSpamException; Failed to process message due to a permanent exception with message WASCL UserAction verdict is not None. Actual verdict is Suspend, ShowTierUpgrade. OutboundSpamException: WASCL UserAction verdict is not None. Actual verdict is Suspend, ShowTierUpgrade.",
        );
        assert_eq!(d.diagnostic.code, "smtp-account-blocked-for-spam");
        assert!(d.diagnostic.remedy.contains("unblock"));
        assert!(!d.diagnostic.remedy.contains("Device Email Address"));
        assert_eq!(d.retry_after, None);
    }

    #[test]
    fn each_5_7_139_text_gets_its_own_advice_and_only_tenant_means_the_tenant_switch() {
        for (text, code, must, must_not) in [
            (
                "the request did not meet the criteria to be authenticated successfully. Contact your administrator.",
                "smtp-auth-blocked-by-conditional-access",
                "Conditional Access",
                "Set-TransportConfig",
            ),
            (
                "SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
                "smtp-auth-disabled-for-tenant",
                "Set-TransportConfig",
                "Conditional Access",
            ),
            (
                "SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.",
                "smtp-auth-disabled-for-mailbox",
                "Authenticated SMTP",
                "Set-TransportConfig",
            ),
            (
                "user is locked by your organization's security defaults policy. Contact your administrator.",
                "smtp-auth-blocked-by-security-defaults",
                "security defaults",
                "Set-TransportConfig",
            ),
        ] {
            let d = explain(
                Stage::Auth,
                &format!("535 5.7.139 Authentication unsuccessful, {text}"),
            );
            assert_eq!(d.diagnostic.code, code, "{text}");
            assert!(d.diagnostic.remedy.contains(must), "{text}");
            assert!(!d.diagnostic.remedy.contains(must_not), "{text}");
            assert_eq!(d.retry_after, None);
        }
    }

    #[test]
    fn service_unavailable_is_temporary_and_not_about_concurrency() {
        let d = explain(
            Stage::Message,
            "421 4.3.2 Service not available, closing transmission channel",
        );
        assert_eq!(d.diagnostic.code, "smtp-service-unavailable");
        assert!(!d.diagnostic.message.contains("concurrent"));
        assert!(!d.diagnostic.remedy.contains("concurrent"));
        assert_eq!(d.retry_after, Some(30));
        let d = explain(
            Stage::Data,
            "451 4.3.2 System not accepting network messages",
        );
        assert_eq!(
            (d.diagnostic.code, d.retry_after),
            ("smtp-service-unavailable", Some(30))
        );
        // 432, or the text, is the concurrency limit.
        for reply in [
            "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.",
            "421 4.3.2 Concurrent connections limit exceeded",
        ] {
            let d = explain(Stage::Auth, reply);
            assert_eq!(d.diagnostic.code, "smtp-concurrent-connections", "{reply}");
            assert!(d.diagnostic.message.contains("limit 3"));
            assert_eq!(d.retry_after, Some(30));
        }
    }

    #[test]
    fn a_personal_account_never_gets_the_upn_advice() {
        let refused = rejected(Stage::Auth, "535 5.7.3 Authentication unsuccessful");
        let personal = Sender {
            device_email: "scans@outlook.com",
            upn: Some("mfp.scanner@outlook.com"),
            account_address: Some("mfp.scanner@outlook.com"),
            personal: true,
        };
        let d = smtp_failure(&refused, &personal, 1).diagnostic;
        assert_eq!(d.code, "smtp-auth-personal-account");
        assert!(!d.remedy.contains("UPN"), "{}", d.remedy);
        assert!(
            d.remedy.contains("to mfp.scanner@outlook.com"),
            "its own address: {}",
            d.remedy
        );
        let own = Sender {
            device_email: "mfp.scanner@outlook.com",
            ..personal
        };
        let d = smtp_failure(&refused, &own, 1).diagnostic;
        assert_eq!(d.code, "smtp-auth-personal-account");
        assert!(!d.remedy.contains("UPN"));
        assert!(d.remedy.contains("account.microsoft.com"));
        // The same reply for a work account whose Device Email Address is not its UPN.
        let work = Sender {
            device_email: "scanner@contoso.com",
            ..WORK
        };
        let d = smtp_failure(&refused, &work, 1).diagnostic;
        assert_eq!(d.code, "smtp-auth-device-email-not-upn");
        assert!(d.remedy.contains("mfp@contoso.com"));
    }
}
