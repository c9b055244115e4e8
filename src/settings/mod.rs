//! The SMTP settings record of the device and its setting keys (DESIGN.md, "Host
//! contract"). Parsing of values lives in [`values`], the rules S1–S7 in [`rules`].

pub mod rules;
pub mod values;

use crate::storage::{RecordVersion, records};

/// The server Exchange Online/Outlook.com submission uses (rule S2).
pub const EXCHANGE_SERVER: &str = "smtp.office365.com";
/// The submission port Exchange Online/Outlook.com uses (rule S2).
pub const EXCHANGE_SEND_PORT: u16 = 587;
/// The seed's application (client) id, used for sign-in and admin consent (rule S10).
pub const DEFAULT_CLIENT_ID: &str = "c88859d7-e6a2-48cb-acee-669df3387654";
/// The seed's admin-consent redirect URI (rule S10).
pub const DEFAULT_CONSENT_REDIRECT_URI: &str =
    "https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html";
/// The tenant used when none is configured: any work, school or personal account.
pub const DEFAULT_TENANT: &str = "common";

/// Which SMTP service the device sends through (rule S1).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize,
)]
pub enum ServiceProvider {
    #[default]
    #[serde(rename = "not-selected")]
    NotSelected,
    #[serde(rename = "exchange-online")]
    ExchangeOnline,
}

/// Whose credentials log in to the SMTP server (rule S6).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize,
)]
pub enum LoginCredentials {
    #[default]
    #[serde(rename = "system")]
    System,
    #[serde(rename = "remotely-authenticated-user")]
    RemotelyAuthenticatedUser,
}

/// Where a change comes from; rules S4 and S5 depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    WebPanel,
    ControlPanel,
}

/// Services > Email > General > From Address (rule S7). Defaults are the seed's screen; a
/// stored record lacking a field reads it as its default ([`crate::storage::Record`]).
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct FromAddressPolicy {
    /// Allow authenticated users to edit From when the LDAP search succeeded.
    pub auth_edit_on_ldap_success: bool,
    /// Allow authenticated users to edit From when the LDAP search failed.
    pub auth_edit_on_ldap_failure: bool,
    /// Allow guest users to edit the From field.
    pub guest_edit: bool,
    /// Allow authenticated users to send despite an LDAP search failure.
    pub auth_send_despite_ldap_failure: bool,
    /// Edit the From field when authorization is not required.
    pub edit_without_auth: bool,
    /// The sender address is an alias or proxy address of the account, declared by the
    /// administrator; SendAsDenied is then not a risk (seed footnote).
    pub alias_sender: bool,
}

impl Default for FromAddressPolicy {
    fn default() -> Self {
        Self {
            auth_edit_on_ldap_success: false,
            auth_edit_on_ldap_failure: true,
            guest_edit: false,
            auth_send_despite_ldap_failure: true,
            edit_without_auth: false,
            alias_sender: false,
        }
    }
}

/// Everything the SMTP settings screens hold. Stored whole, under one key; a stored record
/// lacking a field reads it as in [`Settings::default`] ([`crate::storage::Record`]).
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct Settings {
    /// The record's layout (see [`crate::storage::records`]).
    pub version: RecordVersion<{ records::SETTINGS }>,
    pub service_provider: ServiceProvider,
    pub smtp_server: String,
    pub send_port: u16,
    pub receive_port: u16,
    pub login_credentials: LoginCredentials,
    pub device_email: String,
    pub from: FromAddressPolicy,
    pub tenant: String,
    pub client_id: String,
    pub consent_redirect_uri: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            version: RecordVersion::default(),
            service_provider: ServiceProvider::NotSelected,
            smtp_server: String::new(),
            send_port: 25,
            receive_port: 25,
            login_credentials: LoginCredentials::System,
            device_email: String::new(),
            from: FromAddressPolicy::default(),
            tenant: DEFAULT_TENANT.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            consent_redirect_uri: DEFAULT_CONSENT_REDIRECT_URI.to_owned(),
        }
    }
}

/// Every setting key of the host contract, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SettingKey {
    ServiceProvider,
    SmtpServer,
    SendPort,
    ReceivePort,
    LoginCredentials,
    DeviceEmail,
    FromAuthEditOnLdapSuccess,
    FromAuthEditOnLdapFailure,
    FromGuestEdit,
    FromAuthSendDespiteLdapFailure,
    FromEditWithoutAuth,
    FromAliasSender,
    Tenant,
    ClientId,
    ConsentRedirectUri,
}

impl SettingKey {
    /// All keys, in the order the panels show them.
    pub const ALL: [SettingKey; 15] = [
        Self::ServiceProvider,
        Self::SmtpServer,
        Self::SendPort,
        Self::ReceivePort,
        Self::LoginCredentials,
        Self::DeviceEmail,
        Self::FromAuthEditOnLdapSuccess,
        Self::FromAuthEditOnLdapFailure,
        Self::FromGuestEdit,
        Self::FromAuthSendDespiteLdapFailure,
        Self::FromEditWithoutAuth,
        Self::FromAliasSender,
        Self::Tenant,
        Self::ClientId,
        Self::ConsentRedirectUri,
    ];

    /// The key as integrators write it (`settings set KEY VALUE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceProvider => "service-provider",
            Self::SmtpServer => "smtp-server",
            Self::SendPort => "send-port",
            Self::ReceivePort => "receive-port",
            Self::LoginCredentials => "login-credentials",
            Self::DeviceEmail => "device-email",
            Self::FromAuthEditOnLdapSuccess => "from.auth-edit-on-ldap-success",
            Self::FromAuthEditOnLdapFailure => "from.auth-edit-on-ldap-failure",
            Self::FromGuestEdit => "from.guest-edit",
            Self::FromAuthSendDespiteLdapFailure => "from.auth-send-despite-ldap-failure",
            Self::FromEditWithoutAuth => "from.edit-without-auth",
            Self::FromAliasSender => "from.alias-sender",
            Self::Tenant => "tenant",
            Self::ClientId => "client-id",
            Self::ConsentRedirectUri => "consent-redirect-uri",
        }
    }

    /// The key's label on the seed's screens, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::ServiceProvider => "Service Provider",
            Self::SmtpServer => "SMTP Server IP Address / Host Name",
            Self::SendPort => "Port Number for sending Email",
            Self::ReceivePort => "Port Number for receiving Email",
            Self::LoginCredentials => "Login Credentials for Email Send",
            Self::DeviceEmail => "Device Email Address",
            Self::FromAuthEditOnLdapSuccess => {
                "Allow Authenticated Users to Edit [From:] Field when Address Book (LDAP) Search Successful"
            }
            Self::FromAuthEditOnLdapFailure => {
                "Allow Authenticated Users to Edit [From:] Field when Address Book (LDAP) Search Failure"
            }
            Self::FromGuestEdit => "Allow Guest Users to Edit [From:] Field",
            Self::FromAuthSendDespiteLdapFailure => {
                "Allow Authenticated Users to send Email despite LDAP Search Failure"
            }
            Self::FromEditWithoutAuth => "Edit [From:] Field when Authorization is not Required",
            Self::FromAliasSender => "Sender is an alias or proxy address of the signed-in account",
            Self::Tenant => "Tenant",
            Self::ClientId => "Application (client) ID",
            Self::ConsentRedirectUri => "Admin consent redirect URI",
        }
    }

    /// Parses a key; `None` for anything that is not a setting.
    pub fn parse(text: &str) -> Option<SettingKey> {
        Self::ALL.into_iter().find(|key| key.as_str() == text)
    }
}

impl ServiceProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotSelected => "not-selected",
            Self::ExchangeOnline => "exchange-online",
        }
    }
}

impl LoginCredentials {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::RemotelyAuthenticatedUser => "remotely-authenticated-user",
        }
    }
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

impl Settings {
    /// The value of `key` in its text form, as `settings show` prints it.
    pub fn value_text(&self, key: SettingKey) -> String {
        match key {
            SettingKey::ServiceProvider => self.service_provider.as_str().to_owned(),
            SettingKey::SmtpServer => self.smtp_server.clone(),
            SettingKey::SendPort => self.send_port.to_string(),
            SettingKey::ReceivePort => self.receive_port.to_string(),
            SettingKey::LoginCredentials => self.login_credentials.as_str().to_owned(),
            SettingKey::DeviceEmail => self.device_email.clone(),
            SettingKey::FromAuthEditOnLdapSuccess => {
                yes_no(self.from.auth_edit_on_ldap_success).to_owned()
            }
            SettingKey::FromAuthEditOnLdapFailure => {
                yes_no(self.from.auth_edit_on_ldap_failure).to_owned()
            }
            SettingKey::FromGuestEdit => yes_no(self.from.guest_edit).to_owned(),
            SettingKey::FromAuthSendDespiteLdapFailure => {
                yes_no(self.from.auth_send_despite_ldap_failure).to_owned()
            }
            SettingKey::FromEditWithoutAuth => yes_no(self.from.edit_without_auth).to_owned(),
            SettingKey::FromAliasSender => yes_no(self.from.alias_sender).to_owned(),
            SettingKey::Tenant => self.tenant.clone(),
            SettingKey::ClientId => self.client_id.clone(),
            SettingKey::ConsentRedirectUri => self.consent_redirect_uri.clone(),
        }
    }

    pub fn is_exchange_online(&self) -> bool {
        self.service_provider == ServiceProvider::ExchangeOnline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_back_from_its_text() {
        for key in SettingKey::ALL {
            assert_eq!(SettingKey::parse(key.as_str()), Some(key));
        }
        assert_eq!(SettingKey::parse("smtp-servers"), None);
    }

    #[test]
    fn defaults_are_the_seeds_screens() {
        let s = Settings::default();
        assert_eq!(s.receive_port, 25);
        assert_eq!(s.client_id, "c88859d7-e6a2-48cb-acee-669df3387654");
        assert_eq!(s.tenant, "common");
        assert!(s.from.auth_edit_on_ldap_failure && !s.from.auth_edit_on_ldap_success);
        assert!(
            !s.from.guest_edit
                && !s.from.edit_without_auth
                && s.from.auth_send_despite_ldap_failure
        );
    }
}
