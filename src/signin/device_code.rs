//! Step one of [Open Authentication Page] (rule S8): ask the identity platform for a
//! device code (RFC 8628 3.1–3.2) and read the code the administrator types in.

use super::aadsts::{self, ErrorReply};
use super::error::{SigninError, SigninErrorKind};
use super::reply::JsonObject;
use super::token::server_trouble;
use super::{HttpRequest, SCOPE, Secret, SigninConfig};

/// The polling interval when the reply names none (RFC 8628 3.2).
pub const DEFAULT_INTERVAL: u64 = 5;

/// The longest code lifetime believed: a longer `expires_in` is cut to this, which only
/// makes the device stop polling sooner (Microsoft sends 900 s).
pub const MAX_LIFETIME: u64 = 3600;

/// The longest URI or code accepted for display.
const MAX_SHOWN: usize = 2048;

/// `POST {authority}/{tenant}/oauth2/v2.0/devicecode` with `client_id` and `scope`.
pub fn device_code_request(config: &SigninConfig) -> HttpRequest {
    HttpRequest::form_post(
        config.endpoint_url("devicecode"),
        &[("client_id", &config.client_id), ("scope", SCOPE)],
    )
}

/// A device code and what to show the administrator (RFC 8628 3.2).
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct DeviceCode {
    /// Redeemed by the token request; whoever holds it gets the tokens once the user
    /// approves, so it is a [`Secret`].
    pub device_code: Secret,
    /// The code the administrator types at the verification URI (S8).
    pub user_code: String,
    /// Where to type it, as the server said: never a hard-coded address.
    pub verification_uri: String,
    /// Seconds the code is valid for.
    pub expires_in: u64,
    /// Seconds to wait between token requests.
    pub interval: u64,
    /// The server's own instructions, in the user's language.
    pub message: Option<String>,
}

/// Reads the device-code reply: HTTP 200 and the JSON above, or an error reply diagnosed
/// like any other (a wrong tenant or application shows up here first).
pub fn parse_device_code_reply(
    config: &SigninConfig,
    status: u16,
    body: &[u8],
) -> Result<DeviceCode, SigninError> {
    if status != 200 {
        return Err(match ErrorReply::parse(body) {
            _ if server_trouble(status) => SigninError::unavailable(status),
            Some(reply) => aadsts::failure(&reply, config),
            None => SigninError::malformed(format_args!(
                "the device-code reply has HTTP status {status} and no OAuth error"
            )),
        });
    }
    let o = JsonObject::parse("the device-code reply", body)?;
    let user_code = shown(&o, "user_code")?;
    let verification_uri = shown(&o, "verification_uri")?;
    if user_code.chars().any(char::is_whitespace)
        || verification_uri.chars().any(char::is_whitespace)
    {
        return Err(SigninError::malformed(
            "in the device-code reply, `user_code` or `verification_uri` contains spaces",
        ));
    }
    check_verification_uri(&verification_uri)?;
    Ok(DeviceCode {
        device_code: Secret::new(o.string("device_code")?),
        user_code,
        verification_uri,
        expires_in: o.seconds("expires_in")?.min(MAX_LIFETIME),
        // Zero would mean polling in a loop: one second is the least the device waits.
        interval: o
            .opt_seconds("interval")?
            .unwrap_or(DEFAULT_INTERVAL)
            .max(1),
        message: o.opt_string("message")?.map(|m| {
            m.chars()
                .filter(|c| !c.is_control())
                .take(MAX_SHOWN)
                .collect()
        }),
    })
}

/// Whether `uri` is a page an administrator may be sent to enter the code: `https`, or
/// `http` on a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`: the demo's page on the
/// device itself), with a host and no user name or password in it. Anything else (`http`
/// to another machine, whose page and code anyone on the path could swap, `javascript:`,
/// `file:`, `data:`…) is refused, naming only the scheme and host.
pub fn check_verification_uri(uri: &str) -> Result<(), SigninError> {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let scheme_ok = scheme.eq_ignore_ascii_case("https")
        || (scheme.eq_ignore_ascii_case("http") && is_loopback(host));
    let is_scheme = |s: &str| {
        s.len() <= 16
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    };
    if scheme_ok && !host.is_empty() && !authority.contains('@') {
        return Ok(());
    }
    let named = match uri.split_once(':').map(|(s, _)| s).filter(|s| is_scheme(s)) {
        Some(_) if is_scheme(scheme) && !host.is_empty() => {
            format!("{}://{}", scheme.to_ascii_lowercase(), shown_host(host))
        }
        Some(scheme) => format!("a `{scheme}:` address"),
        None => "an address without a scheme".to_owned(),
    };
    let why = if authority.contains('@') && scheme_ok {
        "it carries a user name, which can disguise the real host"
    } else if scheme.eq_ignore_ascii_case("http") {
        "plain http to another host, where anyone on the network path could change the page and the code"
    } else {
        "only https pages (or http on this device's own loopback address) are shown"
    };
    Err(SigninError::new(
        SigninErrorKind::UnsafeVerificationUri,
        None,
        "sign-in-verification-uri-unsafe",
        format!(
            "The identity platform gave {named} as the page to enter the sign-in code, which the device does not show ({why}): the sign-in was not started."
        ),
        "Check that the authority is the Microsoft identity platform (https://login.microsoftonline.com) and that no proxy alters its replies, then click [Open Authentication Page] again.",
    ))
}

/// `localhost`, an IPv4 address in 127.0.0.0/8 or `::1`.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A host name as it may appear in a diagnosis: host-name characters only, short.
fn shown_host(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        .take(100)
        .collect()
}

/// A field shown to the administrator: present, printable, not absurdly long.
fn shown(o: &JsonObject, field: &str) -> Result<String, SigninError> {
    let value = o.string(field)?;
    if value.len() > MAX_SHOWN || value.chars().any(char::is_control) {
        return Err(SigninError::malformed(format_args!(
            "in the device-code reply, `{field}` is not printable text"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::SigninErrorKind;
    use crate::signin::test_support::{error_reply, form};

    /// The device-code reply as Microsoft sends it.
    pub(crate) const REPLY: &str = r#"{"user_code":"FJ8QK5XLM","device_code":"FAQABAAEAAAAm-06blBE1TpVMil8KPQ41fake","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code FJ8QK5XLM to authenticate."}"#;

    #[test]
    fn request_posts_client_id_and_the_exact_scope_to_the_tenant() {
        let request = device_code_request(&SigninConfig::default());
        assert_eq!(request.method, crate::signin::HttpMethod::Post);
        assert_eq!(
            request.url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"
        );
        assert!(request.headers.contains(&(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        assert_eq!(
            form(&request.body),
            [
                (
                    "client_id".to_owned(),
                    "c88859d7-e6a2-48cb-acee-669df3387654".to_owned()
                ),
                (
                    "scope".to_owned(),
                    "https://outlook.office.com/SMTP.Send offline_access openid profile email"
                        .to_owned()
                ),
            ]
        );
        let body = String::from_utf8(request.body).unwrap();
        assert!(body.contains("scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access+openid+profile+email"), "{body}");
    }

    #[test]
    fn reply_is_read_with_the_servers_verification_uri() {
        let code =
            parse_device_code_reply(&SigninConfig::default(), 200, REPLY.as_bytes()).unwrap();
        assert_eq!(code.user_code, "FJ8QK5XLM");
        assert_eq!(
            code.device_code.expose(),
            "FAQABAAEAAAAm-06blBE1TpVMil8KPQ41fake"
        );
        assert_eq!(code.verification_uri, "https://microsoft.com/devicelogin");
        assert_eq!((code.expires_in, code.interval), (900, 5));
        assert!(code.message.unwrap().contains("FJ8QK5XLM"));

        let other = REPLY.replace(
            "https://microsoft.com/devicelogin",
            "https://login.example.test/device",
        );
        let code =
            parse_device_code_reply(&SigninConfig::default(), 200, other.as_bytes()).unwrap();
        assert_eq!(code.verification_uri, "https://login.example.test/device");
    }

    #[test]
    fn interval_defaults_to_five_seconds_and_is_never_zero() {
        let without = r#"{"user_code":"A","device_code":"d","verification_uri":"https://x.test/d","expires_in":"900"}"#;
        let code =
            parse_device_code_reply(&SigninConfig::default(), 200, without.as_bytes()).unwrap();
        assert_eq!(code.interval, 5);
        assert_eq!(code.message, None);
        let zero = without.replace(r#""expires_in""#, r#""interval":0,"expires_in""#);
        let code = parse_device_code_reply(&SigninConfig::default(), 200, zero.as_bytes()).unwrap();
        assert_eq!(code.interval, 1);
    }

    #[test]
    fn absurd_lifetimes_are_cut_to_an_hour() {
        let long = REPLY.replace(
            r#""expires_in":900"#,
            r#""expires_in":18446744073709551615"#,
        );
        let code = parse_device_code_reply(&SigninConfig::default(), 200, long.as_bytes()).unwrap();
        assert_eq!(code.expires_in, MAX_LIFETIME);
    }

    #[test]
    fn missing_or_malformed_fields_are_typed_errors_that_name_the_field() {
        for (field, bad) in [
            (
                "device_code",
                REPLY.replace(
                    r#""device_code":"FAQABAAEAAAAm-06blBE1TpVMil8KPQ41fake","#,
                    "",
                ),
            ),
            (
                "user_code",
                REPLY.replace(r#""user_code":"FJ8QK5XLM","#, r#""user_code":7,"#),
            ),
            (
                "expires_in",
                REPLY.replace(r#""expires_in":900"#, r#""expires_in":-900"#),
            ),
            (
                "interval",
                REPLY.replace(r#""interval":5"#, r#""interval":1e3"#),
            ),
            (
                "verification_uri",
                REPLY.replace(
                    "https://microsoft.com/devicelogin",
                    "https://x.test/\\u001b[2J",
                ),
            ),
        ] {
            let err =
                parse_device_code_reply(&SigninConfig::default(), 200, bad.as_bytes()).unwrap_err();
            assert_eq!(err.kind, SigninErrorKind::MalformedReply, "{field}");
            assert!(err.message.contains(field), "{field}: {}", err.message);
            assert!(
                !err.message.contains("FAQAB"),
                "the device code is never quoted"
            );
        }
        let err = parse_device_code_reply(&SigninConfig::default(), 200, b"<html>").unwrap_err();
        assert_eq!(err.code, "sign-in-malformed-reply");
    }

    #[test]
    fn error_replies_are_diagnosed() {
        let body = error_reply("invalid_request", 90002, "Tenant 'contoso.test' not found.");
        let config = SigninConfig {
            tenant: "contoso.test".into(),
            ..SigninConfig::default()
        };
        let err = parse_device_code_reply(&config, 400, &body).unwrap_err();
        assert_eq!(err.code, "sign-in-tenant-not-found");
        let err = parse_device_code_reply(&config, 503, b"Service Unavailable").unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::Unavailable);
        let err = parse_device_code_reply(&config, 429, &body).unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::Unavailable);
        let err = parse_device_code_reply(&config, 404, b"Not Found").unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::MalformedReply);
    }

    #[test]
    fn only_https_or_loopback_http_verification_uris_are_shown() {
        for good in [
            "https://microsoft.com/devicelogin",
            "HTTPS://login.microsoftonline.com:443/common/oauth2/deviceauth",
            "http://127.0.0.1:8080/demo/devicelogin",
            "http://127.8.9.10/d",
            "http://localhost:8080/demo/devicelogin",
            "http://[::1]:8080/demo/devicelogin",
        ] {
            assert_eq!(check_verification_uri(good), Ok(()), "{good}");
            let reply = REPLY.replace("https://microsoft.com/devicelogin", good);
            let code =
                parse_device_code_reply(&SigninConfig::default(), 200, reply.as_bytes()).unwrap();
            assert_eq!(code.verification_uri, good);
        }
        for (bad, named) in [
            ("http://microsoft.com/devicelogin", "http://microsoft.com"),
            (
                "http://192.168.1.5:8080/demo/devicelogin",
                "http://192.168.1.5",
            ),
            (
                "http://localhost.evil.example/d",
                "http://localhost.evil.example",
            ),
            (
                "http://127.0.0.1.evil.example/d",
                "http://127.0.0.1.evil.example",
            ),
            (
                "javascript:alert(document.cookie)",
                "a `javascript:` address",
            ),
            ("JavaScript://%0aalert(1)", "javascript://"),
            ("data:text/html,<script>", "a `data:` address"),
            ("file:///etc/passwd", "a `file:` address"),
            ("ftp://microsoft.com/devicelogin", "ftp://microsoft.com"),
            (
                "https://microsoft.com@evil.example/d",
                "https://evil.example",
            ),
            ("https:///devicelogin", "a `https:` address"),
            ("//microsoft.com/devicelogin", "an address without a scheme"),
        ] {
            let reply = REPLY.replace("https://microsoft.com/devicelogin", bad);
            let err = parse_device_code_reply(&SigninConfig::default(), 200, reply.as_bytes())
                .unwrap_err();
            assert_eq!(err.kind, SigninErrorKind::UnsafeVerificationUri, "{bad}");
            assert_eq!(err.code, "sign-in-verification-uri-unsafe", "{bad}");
            assert!(err.message.contains(named), "{bad}: {}", err.message);
            assert!(!err.message.contains("FAQAB"), "no device code in {bad}");
            assert!(!err.message.contains("<script>"), "{}", err.message);
        }
    }

    #[test]
    fn the_device_code_never_shows_in_debug() {
        let code =
            parse_device_code_reply(&SigninConfig::default(), 200, REPLY.as_bytes()).unwrap();
        let shown = format!("{code:?}");
        assert!(!shown.contains("FAQAB"), "{shown}");
        assert!(shown.contains("FJ8QK5XLM"));
    }
}
