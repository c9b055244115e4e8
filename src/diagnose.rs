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
