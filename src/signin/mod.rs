//! Sign-in with the OAuth 2.0 device authorization grant (RFC 8628) against the
//! Microsoft identity platform: the seed's [Open Authentication Page] (rule S8), the
//! account it yields (rule S9) and admin consent (rule S10).
//!
//! Sans-IO, like the rest of the core: functions here build HTTP requests as plain data
//! ([`HttpRequest`]) and read replies as a status and body bytes. The thin wasm layer sends
//! the requests through the host's `net` import; tests feed byte strings. Nothing here
//! sleeps or reads a clock: every function that depends on time takes `now` (Unix
//! seconds), so tests drive time explicitly and the host owns the timers.
//!
//! How a driver runs a sign-in:
//! 1. [`device_code::device_code_request`]; send it; [`device_code::parse_device_code_reply`]:
//!    show [`DeviceCode::user_code`] and the server's [`DeviceCode::verification_uri`].
//! 2. [`DeviceFlow::start`], then store the flow (it is a record, under [`FLOW_KEY`]): the
//!    component keeps nothing between calls.
//! 3. Whenever the host's timer fires, load the flow and call [`DeviceFlow::poll`] with the
//!    current time. It answers [`PollStep::Send`] (send this token request now, then feed
//!    the reply to [`DeviceFlow::on_token_reply`], or [`DeviceFlow::on_transport_error`]
//!    when no reply came), [`PollStep::Wait`] (nothing to do: ask the host to call again
//!    at that time), [`PollStep::Expired`] or [`PollStep::Ended`]. Store the flow after
//!    every call, and before sending: a request sent reserves the next interval.
//! 4. [`PollOutcome::Approved`] carries the [`TokenSet`] and the [`Account`]: commit both,
//!    and the account's Device Email Address (S9), in one store commit, and delete the
//!    flow. [`Account::upn_warning`] gives the S9 warning when that address is not the UPN.
//!
//! Before that, [`consent::consent_notice`] gives the admin-consent step (S10); a failure
//! is a [`SigninError`], whose [`SigninError::diagnostic`] is what panels show.
//!
//! Later, [`TokenSet::refresh_due`] says when to run [`token::refresh_request`] and
//! [`token::parse_refresh_reply`]; the reply's new refresh token must be committed before
//! the new access token is used (DESIGN.md, "Protocol facts").

pub mod aadsts;
pub mod clock;
pub mod consent;
pub mod device_code;
pub mod error;
pub mod id_token;
pub mod poll;
mod reply;
pub mod token;

use crate::settings::{DEFAULT_CLIENT_ID, DEFAULT_CONSENT_REDIRECT_URI, DEFAULT_TENANT, Settings};

pub use aadsts::ErrorReply;
pub use device_code::DeviceCode;
pub use error::{SigninError, SigninErrorKind};
pub use id_token::Account;
pub use poll::{Approved, DeviceFlow, PollOutcome, PollStep};
pub use token::TokenSet;

/// The authority used when the host configures none (DESIGN.md, "Host contract").
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// What the device asks for: sending mail over SMTP as the account, a refresh token
/// (`offline_access`) so the device keeps sending without a person, and the OpenID
/// Connect claims that name the account (S9).
pub const SCOPE: &str = "https://outlook.office.com/SMTP.Send offline_access openid profile email";

/// The store key of a sign-in in progress (a serialized [`DeviceFlow`]).
pub const FLOW_KEY: &str = "oauth/device-flow";

/// Where and as which application the device signs in. Everything a request needs, so a
/// [`DeviceFlow`] can carry it and poll the same endpoint it started at.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct SigninConfig {
    /// Scheme and host of the identity platform, e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// `common`, `organizations`, `consumers`, a tenant id or a tenant domain.
    pub tenant: String,
    /// The application (client) id.
    pub client_id: String,
    /// Where the admin-consent page sends the administrator afterwards (S10).
    pub consent_redirect_uri: String,
}

impl Default for SigninConfig {
    fn default() -> Self {
        Self {
            authority: DEFAULT_AUTHORITY.to_owned(),
            tenant: DEFAULT_TENANT.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            consent_redirect_uri: DEFAULT_CONSENT_REDIRECT_URI.to_owned(),
        }
    }
}

impl SigninConfig {
    /// The sign-in configuration of `settings` at `authority` (the host's, not a setting).
    /// Tenant, client id and redirect URI were validated when they were applied.
    pub fn from_settings(settings: &Settings, authority: &str) -> Self {
        Self {
            authority: authority.to_owned(),
            tenant: settings.tenant.clone(),
            client_id: settings.client_id.clone(),
            consent_redirect_uri: settings.consent_redirect_uri.clone(),
        }
    }

    /// `{authority}/{tenant}/oauth2/v2.0/{endpoint}`.
    fn endpoint_url(&self, endpoint: &str) -> String {
        format!(
            "{}/{}/oauth2/v2.0/{endpoint}",
            self.authority.trim_end_matches('/'),
            self.tenant
        )
    }
}

/// A secret string: a token or a device code. Its `Debug` never shows the value and it
/// has no `Display`, so it cannot reach a log, a panic or an error message by accident
/// (DESIGN.md, "Conventions"). It serializes as the plain string, for the store only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The plain string (serde's `transparent` before).
impl miniserde::Serialize for Secret {
    fn begin(&self) -> miniserde::ser::Fragment<'_> {
        miniserde::ser::Fragment::Str(std::borrow::Cow::Borrowed(&self.0))
    }
}

impl miniserde::Deserialize for Secret {
    fn begin(out: &mut Option<Self>) -> &mut dyn miniserde::de::Visitor {
        miniserde::make_place!(Place);

        impl miniserde::de::Visitor for Place<Secret> {
            fn string(&mut self, s: &str) -> miniserde::Result<()> {
                self.out = Some(Secret(s.to_owned()));
                Ok(())
            }
        }

        Place::new(out)
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The HTTP methods the identity platform's endpoints use; mirrors `http-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// An HTTP request as plain data, for the host's `net` capability to send.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// `application/x-www-form-urlencoded`; may hold a device code or a refresh token.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A form POST, as every request of the device flow is.
    fn form_post(url: String, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
            .into_bytes();
        Self {
            method: HttpMethod::Post,
            url,
            headers: vec![
                (
                    "Content-Type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                ),
                ("Accept".to_owned(), "application/json".to_owned()),
            ],
            body,
        }
    }
}

/// Redacts the body: a token request carries a device code or a refresh token.
impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field(
                "body",
                &format_args!("<{} bytes, redacted>", self.body.len()),
            )
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Fixtures shared by the sign-in tests: replies shaped exactly as DESIGN.md's
    //! "Protocol facts" describe Microsoft's.

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// A JWT with `claims` as payload and a dummy header and signature.
    pub fn jwt(claims: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"k1"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    /// The id_token of a work account whose primary address is its UPN.
    pub fn work_id_token() -> String {
        jwt(&serde_json::json!({
            "aud": "c88859d7-e6a2-48cb-acee-669df3387654",
            "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "iat": 1_600_000_000u64,
            "nbf": 1_600_000_000u64,
            "exp": 4_000_000_000u64,
            "preferred_username": "scanner@contoso.com",
            "email": "scanner@contoso.com",
            "name": "Scanner",
            "oid": "00000000-0000-0000-66f3-3332eca7ea81",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "ver": "2.0"
        }))
    }

    /// A successful token reply (HTTP 200), as the token endpoint sends it.
    pub fn token_reply(access: &str, refresh: &str, expires_in: u64) -> Vec<u8> {
        serde_json::json!({
            "token_type": "Bearer",
            "scope": "https://outlook.office.com/SMTP.Send https://outlook.office.com/User.Read",
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": work_id_token()
        })
        .to_string()
        .into_bytes()
    }

    /// An error reply (sent with HTTP 400) as the Microsoft identity platform shapes it.
    pub fn error_reply(error: &str, code: u32, text: &str) -> Vec<u8> {
        serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2025-01-01 10:00:00Z"),
            "error_codes": [code],
            "timestamp": "2025-01-01 10:00:00Z",
            "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
            "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "error_uri": "https://login.microsoftonline.com/error?code=".to_owned() + &code.to_string()
        })
        .to_string()
        .into_bytes()
    }

    /// Microsoft's reply while the user has not finished signing in.
    pub fn pending_reply() -> Vec<u8> {
        error_reply(
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    /// The form fields of a request body, decoded.
    pub fn form(body: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(body).into_owned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_smtp_send_with_refresh_and_identity() {
        assert_eq!(
            SCOPE,
            "https://outlook.office.com/SMTP.Send offline_access openid profile email"
        );
    }

    #[test]
    fn default_config_is_the_seeds_application_on_common() {
        let config = SigninConfig::default();
        assert_eq!(config.authority, "https://login.microsoftonline.com");
        assert_eq!(config.tenant, "common");
        assert_eq!(config.client_id, "c88859d7-e6a2-48cb-acee-669df3387654");
        assert_eq!(
            SigninConfig::from_settings(&Settings::default(), DEFAULT_AUTHORITY),
            config
        );
    }

    #[test]
    fn endpoint_urls_ignore_a_trailing_slash_on_the_authority() {
        let config = SigninConfig {
            authority: "https://login.example.test/".into(),
            tenant: "contoso.onmicrosoft.com".into(),
            ..SigninConfig::default()
        };
        assert_eq!(
            config.endpoint_url("token"),
            "https://login.example.test/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn secrets_and_request_bodies_never_show_in_debug() {
        let secret = Secret::new("eyJ0eXAiOiJKV1QiLCJub25jZSI6");
        assert!(!format!("{secret:?}").contains("eyJ0"));
        let request = HttpRequest::form_post(
            "https://login.example.test/t".into(),
            &[("refresh_token", "0.AAAA-very-secret")],
        );
        let shown = format!("{request:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn secrets_serialize_as_plain_strings_for_the_store() {
        let secret = Secret::new("abc");
        assert_eq!(crate::json::to_string(&secret), "\"abc\"");
        assert_eq!(crate::json::from_slice::<Secret>(b"\"abc\""), Some(secret));
        assert_eq!(crate::json::from_slice::<Secret>(b"1"), None);
    }
}
