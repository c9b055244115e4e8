//! Parsing of setting values from their text form. Every function refuses bad input with
//! a typed [`PanelError`] that names the field and says what a valid value looks like.
//! Nothing here accepts CR, LF or other control characters: these values end up in SMTP
//! commands, headers and URLs.

use super::{LoginCredentials, ServiceProvider, SettingKey};
use crate::error::PanelError;

/// Longest DNS name (RFC 1035, without the trailing dot).
pub const MAX_HOST_LEN: usize = 253;
/// Longest mailbox address accepted (RFC 5321 path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest redirect URI accepted.
pub const MAX_URI_LEN: usize = 2048;

/// Describes the first character a person cannot see or type safely, if any.
fn forbidden_char(text: &str) -> Option<&'static str> {
    text.chars().find_map(|c| match c {
        '\r' => Some("a carriage return (CR)"),
        '\n' => Some("a line feed (LF)"),
        c if c.is_control() => Some("a control character"),
        c if c.is_whitespace() => Some("a space"),
        _ => None,
    })
}

/// A port number 1–65535 (rule S2).
pub fn parse_port(key: SettingKey, text: &str) -> Result<u16, PanelError> {
    let field = key.as_str();
    let remedy = format!(
        "Enter a whole number from 1 to 65535 for [{}].",
        key.label()
    );
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PanelError::invalid(
            field,
            "port-not-a-number",
            format!(
                "[{}] must be a number; \"{}\" is not.",
                key.label(),
                text.escape_debug()
            ),
            remedy,
        ));
    }
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        _ => Err(PanelError::invalid(
            field,
            "port-out-of-range",
            format!(
                "[{}] must be from 1 to 65535; {} is out of range.",
                key.label(),
                text
            ),
            remedy,
        )),
    }
}

/// An SMTP server: a DNS host name or an IP address literal.
pub fn parse_host(key: SettingKey, text: &str) -> Result<String, PanelError> {
    let field = key.as_str();
    let label = key.label();
    let remedy =
        format!("Enter a host name such as smtp.example.com, or an IP address, in [{label}].");
    if text.is_empty() {
        return Err(PanelError::invalid(
            field,
            "host-empty",
            format!("[{label}] is empty."),
            remedy,
        ));
    }
    if let Some(what) = forbidden_char(text) {
        return Err(PanelError::invalid(
            field,
            "host-invalid",
            format!("[{label}] contains {what}."),
            remedy,
        ));
    }
    if text.len() > MAX_HOST_LEN {
        return Err(PanelError::invalid(
            field,
            "host-too-long",
            format!(
                "[{label}] is {} characters long; a host name has at most {MAX_HOST_LEN}.",
                text.len()
            ),
            remedy,
        ));
    }
    let literal = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if literal.parse::<std::net::IpAddr>().is_ok() {
        return Ok(text.to_owned());
    }
    let name = text.strip_suffix('.').unwrap_or(text);
    for part in name.split('.') {
        let ok = !part.is_empty()
            && part.len() <= 63
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !part.starts_with('-')
            && !part.ends_with('-');
        if !ok {
            return Err(PanelError::invalid(
                field,
                "host-invalid",
                format!(
                    "[{label}] \"{}\" is not a valid host name (label \"{}\").",
                    text.escape_debug(),
                    part.escape_debug()
                ),
                remedy,
            ));
        }
    }
    Ok(text.to_owned())
}

/// `yes` or `no` (the From Address radio buttons and checkboxes, rule S7).
pub fn parse_yes_no(key: SettingKey, text: &str) -> Result<bool, PanelError> {
    match text {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(PanelError::invalid(
            key.as_str(),
            "not-yes-or-no",
            format!(
                "[{}] must be yes or no; \"{}\" is neither.",
                key.label(),
                text.escape_debug()
            ),
            format!("Set [{}] to yes or no.", key.label()),
        )),
    }
}

pub fn parse_service_provider(text: &str) -> Result<ServiceProvider, PanelError> {
    match text {
        "not-selected" => Ok(ServiceProvider::NotSelected),
        "exchange-online" => Ok(ServiceProvider::ExchangeOnline),
        _ => Err(PanelError::invalid(
            SettingKey::ServiceProvider.as_str(),
            "provider-unknown",
            format!(
                "[Service Provider] \"{}\" is not a provider.",
                text.escape_debug()
            ),
            "Choose not-selected or exchange-online (Exchange Online/Outlook.com).",
        )),
    }
}

pub fn parse_login_credentials(text: &str) -> Result<LoginCredentials, PanelError> {
    match text {
        "system" => Ok(LoginCredentials::System),
        "remotely-authenticated-user" => Ok(LoginCredentials::RemotelyAuthenticatedUser),
        _ => Err(PanelError::invalid(
            SettingKey::LoginCredentials.as_str(),
            "login-credentials-unknown",
            format!(
                "[Login Credentials for Email Send] \"{}\" is not a choice.",
                text.escape_debug()
            ),
            "Choose system or remotely-authenticated-user.",
        )),
    }
}

/// The Device Email Address: empty (not set yet) or `local@domain`.
pub fn parse_email(key: SettingKey, text: &str) -> Result<String, PanelError> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let invalid = |why: String| {
        PanelError::invalid(
            key.as_str(),
            "email-invalid",
            format!("[{}] {why}", key.label()),
            format!(
                "Enter one address such as scanner@contoso.com in [{}].",
                key.label()
            ),
        )
    };
    if let Some(what) = forbidden_char(text) {
        return Err(invalid(format!("contains {what}.")));
    }
    if text.len() > MAX_EMAIL_LEN {
        return Err(invalid(format!(
            "is longer than {MAX_EMAIL_LEN} characters."
        )));
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err(invalid(format!("\"{}\" has no @.", text.escape_debug())));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains(['@', '<', '>', '(', ')', ',', ';', ':', '"', '[', ']', '\\']);
    if !local_ok || parse_host(key, domain).is_err() || domain.starts_with('[') {
        return Err(invalid(format!(
            "\"{}\" is not a valid email address.",
            text.escape_debug()
        )));
    }
    Ok(text.to_owned())
}

/// The Entra ID tenant: `common`, `organizations`, `consumers`, a tenant id or a domain.
pub fn parse_tenant(text: &str) -> Result<String, PanelError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_HOST_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(PanelError::invalid(
            SettingKey::Tenant.as_str(),
            "tenant-invalid",
            format!(
                "[Tenant] \"{}\" is not a tenant name, id or domain.",
                text.escape_debug()
            ),
            "Enter common, organizations, consumers, your tenant id (a GUID) or your tenant's domain such as contoso.onmicrosoft.com.",
        ))
    }
}

/// Whether `text` is a GUID in its 8-4-4-4-12 hexadecimal form.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The application (client) id: a GUID (rule S10).
pub fn parse_client_id(text: &str) -> Result<String, PanelError> {
    if is_guid(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(PanelError::invalid(
            SettingKey::ClientId.as_str(),
            "client-id-invalid",
            format!(
                "[Application (client) ID] \"{}\" is not a GUID.",
                text.escape_debug()
            ),
            "Copy the Application (client) ID from the app registration, e.g. c88859d7-e6a2-48cb-acee-669df3387654.",
        ))
    }
}

/// The admin-consent redirect URI: an https URL without spaces (rule S10).
pub fn parse_redirect_uri(text: &str) -> Result<String, PanelError> {
    let ok = text.len() <= MAX_URI_LEN
        && forbidden_char(text).is_none()
        && text
            .strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(PanelError::invalid(
            SettingKey::ConsentRedirectUri.as_str(),
            "redirect-uri-invalid",
            format!(
                "[Admin consent redirect URI] \"{}\" is not an https URL.",
                text.escape_debug()
            ),
            "Enter the redirect URI registered for the application, starting with https://.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PanelErrorKind;

    fn code(result: Result<impl std::fmt::Debug, PanelError>) -> &'static str {
        result.expect_err("should be refused").code
    }

    #[test]
    fn ports_accept_the_whole_range_and_nothing_else() {
        assert_eq!(parse_port(SettingKey::SendPort, "1").unwrap(), 1);
        assert_eq!(parse_port(SettingKey::SendPort, "65535").unwrap(), 65535);
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "0")),
            "port-out-of-range"
        );
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "65536")),
            "port-out-of-range"
        );
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "99999999999")),
            "port-out-of-range"
        );
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "58x")),
            "port-not-a-number"
        );
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "-1")),
            "port-not-a-number"
        );
        assert_eq!(
            code(parse_port(SettingKey::SendPort, "")),
            "port-not-a-number"
        );
    }

    #[test]
    fn port_errors_name_the_field() {
        let err = parse_port(SettingKey::ReceivePort, "0").unwrap_err();
        assert_eq!(err.kind, PanelErrorKind::InvalidValue);
        assert_eq!(err.field.as_deref(), Some("receive-port"));
        assert!(err.message.contains("Port Number for receiving Email"));
    }

    #[test]
    fn hosts_refuse_empty_spaces_line_breaks_and_overlength() {
        let k = SettingKey::SmtpServer;
        assert_eq!(
            parse_host(k, "smtp.example.com").unwrap(),
            "smtp.example.com"
        );
        assert_eq!(parse_host(k, "192.0.2.7").unwrap(), "192.0.2.7");
        assert_eq!(parse_host(k, "[2001:db8::1]").unwrap(), "[2001:db8::1]");
        assert_eq!(code(parse_host(k, "")), "host-empty");
        assert_eq!(code(parse_host(k, "smtp example.com")), "host-invalid");
        assert_eq!(
            code(parse_host(k, "smtp.example.com\r\nRCPT TO:<x@y>")),
            "host-invalid"
        );
        assert_eq!(code(parse_host(k, "smtp\n")), "host-invalid");
        assert_eq!(code(parse_host(k, "-bad.example.com")), "host-invalid");
        assert_eq!(code(parse_host(k, "a..b")), "host-invalid");
        let long = format!("{}.com", "a.".repeat(126));
        assert!(long.len() > MAX_HOST_LEN);
        assert_eq!(code(parse_host(k, &long)), "host-too-long");
        let fits = format!("{}.com", "a".repeat(63));
        assert!(parse_host(k, &fits).is_ok());
    }

    #[test]
    fn emails_need_one_mailbox_without_line_breaks() {
        let k = SettingKey::DeviceEmail;
        assert_eq!(
            parse_email(k, "scanner@contoso.com").unwrap(),
            "scanner@contoso.com"
        );
        assert_eq!(parse_email(k, "").unwrap(), "");
        assert_eq!(code(parse_email(k, "scanner")), "email-invalid");
        assert_eq!(code(parse_email(k, "a@b.com\r\nBcc: x@y")), "email-invalid");
        assert_eq!(code(parse_email(k, "<a@b.com>")), "email-invalid");
    }

    #[test]
    fn s10_identifiers_are_checked() {
        assert!(parse_client_id("C88859D7-E6A2-48CB-ACEE-669DF3387654").is_ok());
        assert_eq!(code(parse_client_id("not-a-guid")), "client-id-invalid");
        assert!(parse_tenant("contoso.onmicrosoft.com").is_ok());
        assert_eq!(code(parse_tenant("con toso")), "tenant-invalid");
        assert!(parse_redirect_uri("https://example.com/consent").is_ok());
        assert_eq!(
            code(parse_redirect_uri("http://example.com")),
            "redirect-uri-invalid"
        );
        assert_eq!(
            code(parse_redirect_uri("https://a.com/\r\n")),
            "redirect-uri-invalid"
        );
    }

    #[test]
    fn yes_no_is_strict() {
        assert!(parse_yes_no(SettingKey::FromGuestEdit, "yes").unwrap());
        assert_eq!(
            code(parse_yes_no(SettingKey::FromGuestEdit, "true")),
            "not-yes-or-no"
        );
    }
}
