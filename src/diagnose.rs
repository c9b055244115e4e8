//! Diagnoses: what may go wrong with the current settings, each with a stable code, a
//! message and a remedy that names the setting to change.

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
    pub remedy: String,
}

impl Diagnostic {
    pub fn new(
        code: &'static str,
        severity: Severity,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity,
            message: message.into(),
            remedy: remedy.into(),
        }
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
    let open: Vec<&str> = [
        (
            policy.guest_edit,
            "[Allow Guest Users to Edit [From:] Field]",
        ),
        (
            policy.edit_without_auth,
            "[Edit [From:] Field when Authorization is not Required]",
        ),
    ]
    .into_iter()
    .filter_map(|(on, label)| on.then_some(label))
    .collect();
    (!open.is_empty()).then(|| {
        Diagnostic::new(
            "send-as-denied-risk",
            Severity::Warning,
            format!(
                "{} is [Yes]: a sender address other than the signed-in account may be rejected by Exchange Online with SendAsDenied.",
                open.join(" and ")
            ),
            format!(
                "Set {} to [No] ({FROM_ADDRESS_PAGE}). If the sender address is an alias or proxy address of the account, declare it with from.alias-sender = yes instead.",
                open.join(" and ")
            ),
        )
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

/// Explains an SMTP failure from Exchange Online with a remedy naming the setting to
/// change (DESIGN.md, "Protocol facts"). `device_email` and `upn` give the UPN hint of
/// S9 for `535 5.7.3`; `attempt` bounds retries of transient (4xx) replies.
pub fn smtp_failure(
    err: &crate::smtp::SmtpError,
    device_email: &str,
    upn: Option<&str>,
    attempt: u32,
) -> SendDiagnosis {
    use crate::smtp::SmtpError;
    let reply = err.reply();
    let (code, enhanced, text) = match reply {
        Some(r) => (
            r.code,
            r.enhanced.map(|e| (e.class, e.subject, e.detail)),
            r.text(),
        ),
        None => (0, None, String::new()),
    };
    let lower = text.to_ascii_lowercase();
    let server = reply
        .map(|r| format!(" The server said: {r}"))
        .unwrap_or_default();
    let make = |code: &'static str, message: String, remedy: String| {
        Diagnostic::new(code, Severity::Error, message, remedy)
    };
    let upn_differs = upn.is_some_and(|u| !u.eq_ignore_ascii_case(device_email));
    let diagnostic = match (code, enhanced) {
        (535, Some((5, 7, 139))) if lower.contains("security defaults") => make(
            "smtp-auth-blocked-by-security-defaults",
            format!("Exchange Online refused the sign-in: the tenant's security defaults block SMTP AUTH.{server}"),
            "In the Microsoft Entra admin center, turn off security defaults (Identity > Overview > Properties > Manage security defaults) or replace them with Conditional Access policies that allow this device, then send again.".into(),
        ),
        (535, Some((5, 7, 139))) if lower.contains("mailbox") => make(
            "smtp-auth-disabled-for-mailbox",
            format!("Exchange Online refused the sign-in: SMTP AUTH is disabled for the mailbox.{server}"),
            "In the Microsoft 365 admin center, open the user > Mail > Manage email apps and tick [Authenticated SMTP] (or Set-CASMailbox -SmtpClientAuthenticationDisabled $false), then send again.".into(),
        ),
        (535, Some((5, 7, 139))) => make(
            "smtp-auth-disabled-for-tenant",
            format!("Exchange Online refused the sign-in: SMTP AUTH is disabled for the tenant.{server}"),
            "In the Exchange admin center, enable SMTP AUTH for the organization (Set-TransportConfig -SmtpClientAuthenticationDisabled $false) or for this mailbox, then send again.".into(),
        ),
        (535, _) if upn_differs => make(
            "smtp-auth-device-email-not-upn",
            format!("Exchange Online refused the sign-in as {device_email}: the Device Email Address is not the signed-in account's UPN.{server}"),
            format!(
                "Set the Device Email Address to {} in the [Device Details] (or [Description]) dialog box of CentreWare Internet Services, then send again.",
                upn.unwrap_or_default()
            ),
        ),
        (535, _) => make(
            "smtp-auth-unsuccessful",
            format!("Exchange Online refused the sign-in (535 5.7.3).{server}"),
            "Sign in again with [Open Authentication Page]; check that the account has an Exchange Online mailbox and that Authenticated SMTP is enabled for it.".into(),
        ),
        (530, Some((5, 7, 0))) => make(
            "smtp-starttls-required",
            format!("The server requires STARTTLS before sign-in.{server}"),
            "Check [SMTP Server] and [Port Number for sending Email]: Exchange Online/Outlook.com uses smtp.office365.com, port 587. Something between the device and the server may be stripping STARTTLS.".into(),
        ),
        (530, _) => make(
            "smtp-not-authenticated",
            format!("The server did not accept the device as signed in (530 5.7.57).{server}"),
            "Sign in again with [Open Authentication Page], and check the send port is 587.".into(),
        ),
        (550, Some((5, 7, 60))) => make(
            "smtp-send-as-denied",
            format!("The signed-in account may not send as this sender (550 5.7.60).{server}"),
            format!("Send as the Device Email Address ({device_email}), which must be the signed-in account's UPN, or grant the account Send As permission for that address in the Exchange admin center. Check the From Address policy ({FROM_ADDRESS_PAGE}): set [Allow Guest Users to Edit [From:] Field] and [Edit [From:] Field when Authorization is not Required] to [No]."),
        ),
        _ if lower.contains("sendasdenied") => make(
            "smtp-send-as-denied",
            format!("Exchange Online refused the message: SendAsDenied (the From address is not the account's).{server}"),
            format!("In {FROM_ADDRESS_PAGE}, set [Allow Guest Users to Edit [From:] Field] to [No] and [Edit [From:] Field when Authorization is not Required] to [No]; or, if the sender is an alias or proxy address of the account, declare it (from.alias-sender = yes) after adding it in the Exchange admin center."),
        ),
        _ if lower.contains("quotaexceeded") || enhanced == Some((5, 2, 2)) || enhanced == Some((4, 2, 2)) => make(
            "smtp-sending-quota-exceeded",
            format!("Exchange Online refused the message: the account's sending limits are exceeded.{server}"),
            "Exchange Online allows 30 messages a minute and 10,000 recipients a day per mailbox; wait, then send again (or send fewer, larger jobs).".into(),
        ),
        (432, _) | (_, Some((4, 3, 2))) => make(
            "smtp-concurrent-connections",
            format!("Exchange Online refused the connection: too many concurrent connections for this mailbox (limit 3).{server}"),
            "Wait and try again; if other devices or applications send through the same account, spread their sends or give the device its own mailbox.".into(),
        ),
        (552, _) | (_, Some((5, 3, 4))) => make(
            "smtp-message-too-large",
            format!("The message is larger than the server accepts.{server}"),
            "Scan fewer pages, at a lower resolution or in black and white, or split the job into several emails (Exchange Online's default limit is 35 MB).".into(),
        ),
        _ if matches!(err, SmtpError::MessageTooLarge { .. }) => make("smtp-message-too-large", format!("{err}."), err.remedy()),
        _ => make(err.code(), format!("{err}."), err.remedy()),
    };
    let transient = reply.is_some_and(|r| r.is_transient());
    SendDiagnosis {
        diagnostic,
        retry_after: if transient {
            retry_after(attempt)
        } else {
            None
        },
    }
}
