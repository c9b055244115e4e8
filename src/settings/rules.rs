//! The provider-selection state machine: rules S1–S7 of DESIGN.md, one named function
//! each. [`apply`] is pure: it takes the current settings and one Apply, and returns the
//! next settings (or a refusal that changes nothing). Storage happens in `panel`.

use std::collections::BTreeMap;

use super::values::{
    parse_client_id, parse_email, parse_host, parse_login_credentials, parse_port,
    parse_redirect_uri, parse_service_provider, parse_tenant, parse_yes_no,
};
use super::{
    EXCHANGE_SEND_PORT, EXCHANGE_SERVER, LoginCredentials, Origin, ServiceProvider, SettingKey,
    Settings,
};
use crate::diagnose::{self, Diagnostic, Severity};
use crate::error::{PanelError, PanelErrorKind};
use crate::remedy::Remedy;

/// An accepted Apply.
#[derive(Debug, PartialEq, Eq)]
pub struct Applied {
    /// The settings after the Apply, to be committed whole.
    pub settings: Settings,
    /// What the Apply changed on its own (S2, S4, S6).
    pub notices: Vec<Diagnostic>,
    /// The OAuth grant must be deleted in the same commit (S4: a credential not in use is not kept).
    pub discard_grant: bool,
}

/// The keys the machine's control panel can edit; the rest are web-panel settings.
pub const CONTROL_PANEL_KEYS: [SettingKey; 4] = [
    SettingKey::SmtpServer,
    SettingKey::SendPort,
    SettingKey::ReceivePort,
    SettingKey::LoginCredentials,
];

const PROVIDER_LABEL: &str = "[Service Provider] is [Exchange Online/Outlook.com]";

/// One Apply from `origin`: every change is accepted, or none is.
pub fn apply(
    current: &Settings,
    origin: Origin,
    changes: &[(String, String)],
) -> Result<Applied, PanelError> {
    let changes = parse_keys(changes)?;
    match origin {
        Origin::WebPanel => apply_from_web_panel(current, &changes),
        Origin::ControlPanel => apply_from_control_panel(current, &changes),
    }
}

/// Maps each change to its key, refusing unknown and repeated keys (all of them at once).
fn parse_keys(changes: &[(String, String)]) -> Result<BTreeMap<SettingKey, &str>, PanelError> {
    let mut parsed = BTreeMap::new();
    let mut refused = Vec::new();
    for (key_text, value) in changes {
        let Some(key) = SettingKey::parse(key_text) else {
            let known: Vec<&str> = SettingKey::ALL.iter().map(|k| k.as_str()).collect();
            refused.push(PanelError::new(
                PanelErrorKind::UnknownKey,
                Some(key_text),
                "unknown-key",
                format!("\"{}\" is not a setting.", key_text.escape_debug()),
                format!("Use one of: {}.", known.join(", ")),
            ));
            continue;
        };
        if parsed.insert(key, value.as_str()).is_some() {
            refused.push(PanelError::invalid(
                key.as_str(),
                "duplicate-key",
                format!("\"{}\" is given twice in one Apply.", key.as_str()),
                "Give each setting once per Apply.",
            ));
        }
    }
    match PanelError::all(refused) {
        Some(refusal) => Err(refusal),
        None => Ok(parsed),
    }
}

/// Writes every well-formed change into `next`; the refusals of the malformed ones.
fn set_values(next: &mut Settings, changes: &BTreeMap<SettingKey, &str>) -> Vec<PanelError> {
    changes
        .iter()
        .filter_map(|(&key, &text)| set_value(next, key, text).err())
        .collect()
}

/// `Err` with every refusal of `refused`, if there is one.
fn refuse_all(refused: Vec<PanelError>) -> Result<(), PanelError> {
    match PanelError::all(refused) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// Writes one validated value into `settings`.
fn set_value(settings: &mut Settings, key: SettingKey, text: &str) -> Result<(), PanelError> {
    match key {
        SettingKey::ServiceProvider => settings.service_provider = parse_service_provider(text)?,
        SettingKey::SmtpServer => settings.smtp_server = parse_host(key, text)?,
        SettingKey::SendPort => settings.send_port = parse_port(key, text)?,
        SettingKey::ReceivePort => settings.receive_port = parse_port(key, text)?,
        SettingKey::LoginCredentials => settings.login_credentials = parse_login_credentials(text)?,
        SettingKey::DeviceEmail => settings.device_email = parse_email(key, text)?,
        SettingKey::FromAuthEditOnLdapSuccess => {
            settings.from.auth_edit_on_ldap_success = parse_yes_no(key, text)?
        }
        SettingKey::FromAuthEditOnLdapFailure => {
            settings.from.auth_edit_on_ldap_failure = parse_yes_no(key, text)?
        }
        SettingKey::FromGuestEdit => settings.from.guest_edit = parse_yes_no(key, text)?,
        SettingKey::FromAuthSendDespiteLdapFailure => {
            settings.from.auth_send_despite_ldap_failure = parse_yes_no(key, text)?
        }
        SettingKey::FromEditWithoutAuth => {
            settings.from.edit_without_auth = parse_yes_no(key, text)?
        }
        SettingKey::FromAliasSender => settings.from.alias_sender = parse_yes_no(key, text)?,
        SettingKey::Tenant => settings.tenant = parse_tenant(text)?,
        SettingKey::ClientId => settings.client_id = parse_client_id(text)?,
        SettingKey::ConsentRedirectUri => settings.consent_redirect_uri = parse_redirect_uri(text)?,
    }
    Ok(())
}

fn apply_from_web_panel(
    current: &Settings,
    changes: &BTreeMap<SettingKey, &str>,
) -> Result<Applied, PanelError> {
    let mut next = current.clone();
    // Every malformed value and every field fixed by the provider, in one answer.
    let mut refused = set_values(&mut next, changes);
    if next.is_exchange_online() {
        refused.extend(fixed_by_provider(&next, changes));
    }
    refuse_all(refused)?;
    let mut notices = Vec::new();
    if next.is_exchange_online() {
        if changes.contains_key(&SettingKey::SmtpServer) {
            // Restated in another case, the fixed server keeps its one spelling, so the
            // same Apply twice stores the same settings (the `settings` fuzz target checks it).
            next.smtp_server = EXCHANGE_SERVER.to_owned();
        }
        if !current.is_exchange_online() {
            notices.extend(select_exchange_online(&mut next));
        }
    }
    Ok(Applied {
        discard_grant: deselecting_exchange_online(current, &next),
        settings: next,
        notices,
    })
}

fn apply_from_control_panel(
    current: &Settings,
    changes: &BTreeMap<SettingKey, &str>,
) -> Result<Applied, PanelError> {
    refuse_all(
        changes
            .keys()
            .filter_map(|&key| check_control_panel_key(key).err())
            .collect(),
    )?;
    let mut next = current.clone();
    let mut notices = Vec::new();
    if current.is_exchange_online() {
        if let Some(&server) = changes.get(&SettingKey::SmtpServer) {
            // Validate before resetting, so a bad entry changes nothing.
            parse_host(SettingKey::SmtpServer, server)?;
            notices.push(reset_provider_on_server_entry(&mut next));
        } else {
            check_control_panel_locked(changes)?;
        }
    }
    refuse_all(set_values(&mut next, changes))?;
    notices.extend(diagnose::credentials_not_system(&next));
    Ok(Applied {
        discard_grant: deselecting_exchange_online(current, &next),
        settings: next,
        notices,
    })
}

/// S2: selecting Exchange Online fixes the server to `smtp.office365.com` and the send
/// port to 587; the receive port keeps its value. S6: Login Credentials must be System,
/// so Remotely Authenticated User is switched, with a notice.
pub fn select_exchange_online(next: &mut Settings) -> Vec<Diagnostic> {
    next.smtp_server = EXCHANGE_SERVER.to_owned();
    next.send_port = EXCHANGE_SEND_PORT;
    let mut notices = vec![Diagnostic::new(
        "exchange-online-selected",
        Severity::Info,
        format!(
            "[Service Provider] is now [Exchange Online/Outlook.com]: server {EXCHANGE_SERVER}, send port {EXCHANGE_SEND_PORT}. The email address of the logged-in account will be set as the Device Email Address."
        ),
        "Click [Open Authentication Page] and sign in with the account that sends the email.",
    )];
    if next.login_credentials == LoginCredentials::RemotelyAuthenticatedUser {
        next.login_credentials = LoginCredentials::System;
        notices.push(Diagnostic::new(
            "login-credentials-switched-to-system",
            Severity::Warning,
            "[Login Credentials for Email Send] was [Remotely Authenticated User] and is now [System], as Exchange Online/Outlook.com requires.",
            "Do not change [Login Credentials for Email Send] back to [Remotely Authenticated User] from the control panel: sending would fail with an authentication error.",
        ));
    }
    notices
}

/// S3 (and S6 on the web panel): while Exchange Online is selected, the server and the
/// send port are fixed and Login Credentials must be System. A change to any of them is
/// refused naming the field, all of them at once; the receive port stays editable.
/// Restating the fixed value is not a change.
pub fn check_fixed_by_provider(
    next: &Settings,
    changes: &BTreeMap<SettingKey, &str>,
) -> Result<(), PanelError> {
    refuse_all(fixed_by_provider(next, changes))
}

/// The refusals of [`check_fixed_by_provider`], one per field.
fn fixed_by_provider(next: &Settings, changes: &BTreeMap<SettingKey, &str>) -> Vec<PanelError> {
    let fixed = |key: SettingKey, code: &'static str, what: String| {
        PanelError::new(
            PanelErrorKind::FixedByProvider,
            Some(key.as_str()),
            code,
            format!("[{}] is fixed while {PROVIDER_LABEL}: {what}.", key.label()),
            "Leave it as it is (only [Port Number for receiving Email] may be changed), or set [Service Provider] to [Not Selected] first.",
        )
    };
    let mut refused = Vec::new();
    if changes.contains_key(&SettingKey::SmtpServer)
        && !next.smtp_server.eq_ignore_ascii_case(EXCHANGE_SERVER)
    {
        refused.push(fixed(
            SettingKey::SmtpServer,
            "smtp-server-fixed",
            format!("it must be {EXCHANGE_SERVER}"),
        ));
    }
    if changes.contains_key(&SettingKey::SendPort) && next.send_port != EXCHANGE_SEND_PORT {
        refused.push(fixed(
            SettingKey::SendPort,
            "send-port-fixed",
            format!("it must be {EXCHANGE_SEND_PORT}"),
        ));
    }
    if changes.contains_key(&SettingKey::LoginCredentials)
        && next.login_credentials == LoginCredentials::RemotelyAuthenticatedUser
    {
        // S6, in the seed's own words: the remedy is the selection, not "leave it".
        refused.push(PanelError::new(
            PanelErrorKind::FixedByProvider,
            Some(SettingKey::LoginCredentials.as_str()),
            "login-credentials-fixed",
            format!(
                "[{}] must be [System] while {PROVIDER_LABEL}: a remotely authenticated user cannot send through Exchange Online.",
                SettingKey::LoginCredentials.label()
            ),
            format!(
                "Change the selection to [System] in [{}].",
                SettingKey::LoginCredentials.label()
            ),
        ));
    }
    refused
}

/// S4: typing an SMTP server name on the control panel sets Service Provider to Not
/// Selected; the OAuth grant is discarded with it (see [`deselecting_exchange_online`]).
pub fn reset_provider_on_server_entry(next: &mut Settings) -> Diagnostic {
    next.service_provider = ServiceProvider::NotSelected;
    Diagnostic::new(
        "provider-reset-by-control-panel",
        Severity::Warning,
        "An SMTP server name was entered on the control panel, so [Service Provider] is now [Not Selected] and the Exchange Online/Outlook.com account was signed out.",
        "To send through Exchange Online/Outlook.com again, select [Exchange Online/Outlook.com] in [Service Provider], click [Apply], then click [Open Authentication Page].",
    )
}

/// S4: leaving Exchange Online, by either panel, discards the OAuth grant: nothing keeps
/// a mailbox credential that is not in use.
pub fn deselecting_exchange_online(current: &Settings, next: &Settings) -> bool {
    current.is_exchange_online() && !next.is_exchange_online()
}

/// S5: while Exchange Online is selected, SMTP edits on the control panel are not enabled,
/// except typing a server name (S4) and Login Credentials (S6, which the seed warns about).
pub fn check_control_panel_locked(changes: &BTreeMap<SettingKey, &str>) -> Result<(), PanelError> {
    match changes
        .keys()
        .find(|&&key| key != SettingKey::LoginCredentials)
    {
        None => Ok(()),
        Some(&key) => Err(PanelError::new(
            PanelErrorKind::NotEnabledOnControlPanel,
            Some(key.as_str()),
            "control-panel-locked",
            format!(
                "[{}] cannot be changed on the control panel while {PROVIDER_LABEL}.",
                key.label()
            ),
            Remedy::each(
                "Change it on the web panel (Properties > Connectivity > Protocols > SMTP Server > General).",
                "Change it with `mfp-host settings set`, as the system administrator.",
            ),
        )),
    }
}

/// S1/S5: the control panel edits only the SMTP server screen; provider, From policy,
/// Device Email Address and the OAuth application settings belong to the web panel.
pub fn check_control_panel_key(key: SettingKey) -> Result<(), PanelError> {
    if CONTROL_PANEL_KEYS.contains(&key) {
        return Ok(());
    }
    Err(PanelError::new(
        PanelErrorKind::NotEnabledOnControlPanel,
        Some(key.as_str()),
        "web-panel-only",
        format!(
            "[{}] is set on the web panel, not on the control panel.",
            key.label()
        ),
        Remedy::each(
            "Log in to the web panel as system administrator and change it there.",
            "Change it with `mfp-host settings set`, as the system administrator.",
        ),
    ))
}

/// Why `key` cannot be edited from the web panel under `settings`, if it cannot (S3).
pub fn web_panel_lock(settings: &Settings, key: SettingKey) -> Option<String> {
    let fixed = matches!(key, SettingKey::SmtpServer | SettingKey::SendPort);
    (fixed && settings.is_exchange_online()).then(|| format!("Fixed while {PROVIDER_LABEL}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn web(current: &Settings, pairs: &[(&str, &str)]) -> Result<Applied, PanelError> {
        apply(current, Origin::WebPanel, &changes(pairs))
    }

    fn control(current: &Settings, pairs: &[(&str, &str)]) -> Result<Applied, PanelError> {
        apply(current, Origin::ControlPanel, &changes(pairs))
    }

    fn exchange() -> Settings {
        web(
            &Settings::default(),
            &[("service-provider", "exchange-online")],
        )
        .unwrap()
        .settings
    }

    #[test]
    fn selecting_exchange_sets_server_and_send_port_and_keeps_receive_port() {
        let mut start = Settings::default();
        start.smtp_server = "mail.example.com".into();
        start.send_port = 2525;
        start.receive_port = 110;
        let applied = web(&start, &[("service-provider", "exchange-online")]).unwrap();
        assert_eq!(applied.settings.smtp_server, "smtp.office365.com");
        assert_eq!(applied.settings.send_port, 587);
        assert_eq!(applied.settings.receive_port, 110);
        assert_eq!(applied.notices[0].code, "exchange-online-selected");
        assert!(!applied.discard_grant);
    }

    #[test]
    fn server_and_send_port_are_fixed_under_exchange_naming_the_field() {
        let eo = exchange();
        let err = web(&eo, &[("smtp-server", "mail.example.com")]).unwrap_err();
        assert_eq!(
            (err.kind, err.field.as_deref(), err.code),
            (
                PanelErrorKind::FixedByProvider,
                Some("smtp-server"),
                "smtp-server-fixed"
            )
        );
        assert!(err.message.contains("Exchange Online/Outlook.com"));
        let err = web(&eo, &[("send-port", "25")]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("send-port"));
        // Restating the fixed values is not a change, in any case.
        for server in ["smtp.office365.com", "SMTP.Office365.COM"] {
            let applied = web(&eo, &[("smtp-server", server), ("send-port", "587")]).unwrap();
            assert_eq!(applied.settings, eo, "{server}");
        }
        // The receive port stays editable.
        assert_eq!(
            web(&eo, &[("receive-port", "995")])
                .unwrap()
                .settings
                .receive_port,
            995
        );
    }

    #[test]
    fn selecting_exchange_with_another_server_in_the_same_apply_is_refused() {
        let err = web(
            &Settings::default(),
            &[
                ("service-provider", "exchange-online"),
                ("smtp-server", "mail.example.com"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.code, "smtp-server-fixed");
    }

    #[test]
    fn control_panel_server_entry_resets_provider_and_discards_grant() {
        let applied = control(&exchange(), &[("smtp-server", "mail.example.com")]).unwrap();
        assert_eq!(
            applied.settings.service_provider,
            ServiceProvider::NotSelected
        );
        assert_eq!(applied.settings.smtp_server, "mail.example.com");
        assert!(applied.discard_grant);
        assert_eq!(applied.notices[0].code, "provider-reset-by-control-panel");
    }

    #[test]
    fn bad_server_entry_on_control_panel_changes_nothing() {
        let err = control(&exchange(), &[("smtp-server", "bad host")]).unwrap_err();
        assert_eq!(err.code, "host-invalid");
    }

    #[test]
    fn control_panel_other_smtp_edits_are_not_enabled_under_exchange() {
        let err = control(&exchange(), &[("send-port", "25")]).unwrap_err();
        assert_eq!(
            (err.kind, err.code),
            (
                PanelErrorKind::NotEnabledOnControlPanel,
                "control-panel-locked"
            )
        );
        let err = control(&exchange(), &[("receive-port", "26")]).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("receive-port"));
        // Without Exchange Online the control panel edits freely.
        assert_eq!(
            control(&Settings::default(), &[("send-port", "465")])
                .unwrap()
                .settings
                .send_port,
            465
        );
    }

    #[test]
    fn control_panel_cannot_touch_web_panel_settings() {
        let err = control(
            &Settings::default(),
            &[("service-provider", "exchange-online")],
        )
        .unwrap_err();
        assert_eq!(err.code, "web-panel-only");
        assert_eq!(
            control(&Settings::default(), &[("from.guest-edit", "yes")])
                .unwrap_err()
                .code,
            "web-panel-only"
        );
    }

    #[test]
    fn remote_user_is_switched_to_system_with_a_notice_on_selection() {
        let start = web(
            &Settings::default(),
            &[("login-credentials", "remotely-authenticated-user")],
        )
        .unwrap()
        .settings;
        let applied = web(&start, &[("service-provider", "exchange-online")]).unwrap();
        assert_eq!(applied.settings.login_credentials, LoginCredentials::System);
        assert!(
            applied
                .notices
                .iter()
                .any(|n| n.code == "login-credentials-switched-to-system")
        );
    }

    #[test]
    fn web_panel_refuses_remote_user_under_exchange_but_control_panel_warns() {
        let err = web(
            &exchange(),
            &[("login-credentials", "remotely-authenticated-user")],
        )
        .unwrap_err();
        assert_eq!(err.code, "login-credentials-fixed");
        let applied = control(
            &exchange(),
            &[("login-credentials", "remotely-authenticated-user")],
        )
        .unwrap();
        assert_eq!(
            applied.settings.login_credentials,
            LoginCredentials::RemotelyAuthenticatedUser
        );
        assert_eq!(applied.notices[0].code, "login-credentials-not-system");
    }

    #[test]
    fn leaving_exchange_on_the_web_panel_discards_the_grant_and_unlocks_the_server() {
        let applied = web(
            &exchange(),
            &[
                ("service-provider", "not-selected"),
                ("smtp-server", "mail.example.com"),
            ],
        )
        .unwrap();
        assert!(applied.discard_grant);
        assert_eq!(applied.settings.smtp_server, "mail.example.com");
    }

    #[test]
    fn unknown_and_repeated_keys_are_refused_whole() {
        let err = web(
            &Settings::default(),
            &[("receive-port", "26"), ("smtp-servr", "x")],
        )
        .unwrap_err();
        assert_eq!(
            (err.kind, err.field.as_deref()),
            (PanelErrorKind::UnknownKey, Some("smtp-servr"))
        );
        let err = web(
            &Settings::default(),
            &[("receive-port", "26"), ("receive-port", "27")],
        )
        .unwrap_err();
        assert_eq!(err.code, "duplicate-key");
    }

    #[test]
    fn web_panel_locks_only_the_fixed_fields() {
        let eo = exchange();
        assert!(web_panel_lock(&eo, SettingKey::SmtpServer).is_some());
        assert!(web_panel_lock(&eo, SettingKey::SendPort).is_some());
        assert!(web_panel_lock(&eo, SettingKey::ReceivePort).is_none());
        assert!(web_panel_lock(&Settings::default(), SettingKey::SmtpServer).is_none());
    }

    #[test]
    fn every_invalid_field_of_one_apply_is_refused_at_once_and_nothing_changes() {
        let current = Settings::default();
        let changes = [
            ("receive-port", "abc"),
            ("no-such-key", "1"),
            ("send-port", "0"),
            ("device-email", "not an address"),
        ];
        let changes: Vec<(String, String)> = changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // An unknown key is refused before the values are read.
        let err = apply(&current, Origin::WebPanel, &changes).unwrap_err();
        assert_eq!(err.each().count(), 1, "{err:?}");
        assert_eq!(err.kind, PanelErrorKind::UnknownKey);

        let known: Vec<(String, String)> = changes
            .into_iter()
            .filter(|(k, _)| k != "no-such-key")
            .collect();
        let err = apply(&current, Origin::WebPanel, &known).unwrap_err();
        let fields: Vec<&str> = err.each().filter_map(|e| e.field.as_deref()).collect();
        assert_eq!(fields.len(), 3, "{err:?}");
        for field in ["receive-port", "send-port", "device-email"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
    }

    #[test]
    fn under_exchange_online_each_fixed_field_is_refused_and_credentials_say_choose_system() {
        let mut current = Settings::default();
        select_exchange_online(&mut current);
        current.service_provider = ServiceProvider::ExchangeOnline;
        let changes: Vec<(String, String)> = [
            ("smtp-server", "mail.example.com"),
            ("send-port", "25"),
            ("login-credentials", "remotely-authenticated-user"),
            ("receive-port", "0"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let err = apply(&current, Origin::WebPanel, &changes).unwrap_err();
        let codes: Vec<&str> = err.each().map(|e| e.code).collect();
        assert_eq!(codes.len(), 4, "{codes:?}");
        let credentials = err
            .each()
            .find(|e| e.code == "login-credentials-fixed")
            .expect("credentials refused");
        assert!(
            credentials
                .remedy
                .contains("Change the selection to [System]"),
            "{credentials:?}"
        );
        assert!(!credentials.remedy.contains("Leave it as it is"));
    }
}
