//! Error replies of the Microsoft identity platform and what each means for the
//! administrator. The platform answers a refused request with HTTP 400 and
//! `{"error": …, "error_description": "AADSTS70016: …", "error_codes": [70016], …}`; the
//! OAuth `error` says what the protocol should do, the AADSTS number says why. Rule S8
//! (Conditional Access) and S10 (admin consent) are diagnosed here.

use super::SigninConfig;
use super::consent::admin_consent_url;
use super::error::{SIGN_IN_AGAIN, SigninError, SigninErrorKind};
use super::reply::JsonObject;

/// Where Microsoft documents every AADSTS code; remedies of unknown codes point there.
const ERROR_LOOKUP: &str = "https://login.microsoftonline.com/error?code=";

/// How much of Microsoft's description a message quotes, in characters.
const MAX_DESCRIPTION: usize = 400;

/// A parsed error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// The OAuth error, e.g. `authorization_pending`, `invalid_grant`.
    pub error: String,
    /// Microsoft's description, first line only (the rest repeats trace ids and time).
    pub description: String,
    /// The AADSTS number: the first of `error_codes`, else the description's prefix.
    pub aadsts: Option<u32>,
    /// Ids Microsoft support asks for.
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl ErrorReply {
    /// Parses an error reply; `None` when `body` is not one (no `error` string).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let object = JsonObject::parse("the error reply", body).ok()?;
        let error = object.string("error").ok()?;
        let full = object
            .opt_string("error_description")
            .ok()
            .flatten()
            .unwrap_or_default();
        let description = first_line(&full);
        let from_codes = object
            .get("error_codes")
            .and_then(|v| match v {
                crate::json::Value::Array(codes) => codes.iter().find_map(crate::json::as_u64),
                _ => None,
            })
            .and_then(|c| u32::try_from(c).ok());
        Some(Self {
            aadsts: from_codes.or_else(|| aadsts_prefix(&description)),
            error: sanitize(&error, 64),
            description,
            trace_id: object
                .opt_string("trace_id")
                .ok()
                .flatten()
                .map(|s| sanitize(&s, 64)),
            correlation_id: object
                .opt_string("correlation_id")
                .ok()
                .flatten()
                .map(|s| sanitize(&s, 64)),
        })
    }

    /// `AADSTS70016: …` as Microsoft wrote it, or the OAuth error when there is no
    /// description; with the ids support needs.
    fn quoted(&self) -> String {
        let mut text = if self.description.is_empty() {
            match self.aadsts {
                Some(n) => format!("AADSTS{n} ({})", self.error),
                None => self.error.clone(),
            }
        } else {
            self.description.clone()
        };
        let ids: Vec<String> = [
            ("Trace ID", &self.trace_id),
            ("Correlation ID", &self.correlation_id),
        ]
        .into_iter()
        .filter_map(|(label, id)| id.as_ref().map(|id| format!("{label}: {id}")))
        .collect();
        if !ids.is_empty() {
            text = format!("{text} ({})", ids.join(", "));
        }
        text
    }
}

/// The AADSTS number a description starts with: `AADSTS70016: …` gives 70016.
pub fn aadsts_prefix(description: &str) -> Option<u32> {
    let digits = description.trim_start().strip_prefix("AADSTS")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let number = &digits[..end];
    (!number.is_empty() && number.len() <= 9)
        .then(|| number.parse().ok())
        .flatten()
}

/// The first line of `text`, without control characters, cut to a readable length.
fn first_line(text: &str) -> String {
    sanitize(
        text.lines().next().unwrap_or_default().trim(),
        MAX_DESCRIPTION,
    )
}

/// `text` without control characters, at most `max` characters.
fn sanitize(text: &str, max: usize) -> String {
    let mut clean: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    if text.chars().filter(|c| !c.is_control()).count() > max {
        clean.push('…');
    }
    clean
}

/// What a token-endpoint error asks of the poller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// `authorization_pending`: the user has not finished; poll again after the interval.
    Pending,
    /// `slow_down`: poll again, with the interval 5 s longer from now on (RFC 8628 3.5).
    SlowDown,
    /// The platform is briefly unavailable (`temporarily_unavailable`); back off and retry.
    Transient,
    /// Stop: the flow or the grant has failed.
    Failed(SigninError),
}

/// What `reply` means for a device-code poll or a refresh. Terminal errors map to a
/// failure whose AADSTS number picks the diagnosis when it has a specific one, and whose
/// OAuth error picks it otherwise.
pub fn meaning(reply: &ErrorReply, config: &SigninConfig) -> ErrorMeaning {
    match reply.error.as_str() {
        "authorization_pending" => ErrorMeaning::Pending,
        "slow_down" => ErrorMeaning::SlowDown,
        "temporarily_unavailable" => ErrorMeaning::Transient,
        _ => ErrorMeaning::Failed(failure(reply, config)),
    }
}

/// The diagnosis of a terminal error reply.
pub fn failure(reply: &ErrorReply, config: &SigninConfig) -> SigninError {
    if let Some(err) = reply.aadsts.and_then(|n| by_aadsts(n, reply, config)) {
        return err;
    }
    by_oauth_error(reply)
}

/// The failures that AADSTS numbers identify precisely.
fn by_aadsts(n: u32, reply: &ErrorReply, config: &SigninConfig) -> Option<SigninError> {
    use SigninErrorKind as K;
    let said = reply.quoted();
    let client = &config.client_id;
    let err = |kind, code, message: String, remedy: String| {
        Some(SigninError::new(kind, Some(n), code, message, remedy))
    };
    match n {
        // S8: the seed warns of "Block Device Code Flow" in particular.
        53003 | 530033 => err(
            K::ConditionalAccess,
            "sign-in-blocked-by-conditional-access",
            format!(
                "Sign-in was blocked by a Conditional Access policy of Microsoft Entra ID, for example one that blocks the device code flow (\"Block Device Code Flow\"). Microsoft said: {said}"
            ),
            format!(
                "Ask the tenant's administrator to configure the Conditional Access policy so that this application (client id {client}) or the account used for sign-in is excluded from it, then click [Open Authentication Page] again."
            ),
        ),
        // S10.
        65001 => err(
            K::ConsentRequired,
            "sign-in-consent-required",
            format!(
                "The application (client id {client}) has not been granted consent in this tenant. Microsoft said: {said}"
            ),
            format!(
                "A Global Administrator opens {} in a browser, signs in, confirms and clicks [Accept]; then click [Open Authentication Page] again. Consent is needed once per tenant.",
                admin_consent_url(config)
            ),
        ),
        50076 => err(
            K::MfaRequired,
            "sign-in-mfa-required",
            format!("Multi-factor authentication is required for this account. Microsoft said: {said}"),
            "Click [Open Authentication Page] again and complete the multi-factor authentication in the browser.".to_owned(),
        ),
        50079 => err(
            K::MfaRequired,
            "sign-in-mfa-registration-required",
            format!(
                "The account must register for multi-factor authentication before it can sign in. Microsoft said: {said}"
            ),
            "Register a multi-factor authentication method for the account (https://aka.ms/mfasetup), then click [Open Authentication Page] again and complete it in the browser.".to_owned(),
        ),
        700082 => err(
            K::SignInAgain,
            "sign-in-refresh-token-expired",
            format!(
                "The device's sign-in expired because it was not used for 90 days. Microsoft said: {said}"
            ),
            SIGN_IN_AGAIN.to_owned(),
        ),
        50173 => err(
            K::SignInAgain,
            "sign-in-grant-revoked",
            format!(
                "The device's sign-in was revoked, for example because the account's password was changed or reset. Microsoft said: {said}"
            ),
            SIGN_IN_AGAIN.to_owned(),
        ),
        50194 => err(
            K::Configuration,
            "sign-in-tenant-required",
            format!(
                "The application (client id {client}) is registered for a single tenant and cannot sign in through the tenant \"{}\". Microsoft said: {said}",
                config.tenant
            ),
            "Set [Tenant] to your tenant's id or domain, such as contoso.onmicrosoft.com, then click [Open Authentication Page] again.".to_owned(),
        ),
        7000218 => err(
            K::Configuration,
            "sign-in-not-public-client",
            format!(
                "The application (client id {client}) is not allowed to use the device code flow: it is not registered as a public client. Microsoft said: {said}"
            ),
            "In the Microsoft Entra admin center, open App registrations > the application > Authentication, set \"Allow public client flows\" to Yes and save; then click [Open Authentication Page] again.".to_owned(),
        ),
        700016 => err(
            K::Configuration,
            "sign-in-application-not-found",
            format!(
                "The application (client id {client}) was not found in the tenant \"{}\". Microsoft said: {said}",
                config.tenant
            ),
            format!(
                "Check [Application (client) ID] and [Tenant]. If they are right, a Global Administrator grants consent at {}; then click [Open Authentication Page] again.",
                admin_consent_url(config)
            ),
        ),
        90002 => err(
            K::Configuration,
            "sign-in-tenant-not-found",
            format!("The tenant \"{}\" does not exist. Microsoft said: {said}", config.tenant),
            "Set [Tenant] to common, or to your tenant's id or domain, such as contoso.onmicrosoft.com.".to_owned(),
        ),
        _ => None,
    }
}

/// Failures named only by the OAuth error (RFC 6749 5.2, RFC 8628 3.5), with Microsoft's
/// own names accepted beside the RFC's.
fn by_oauth_error(reply: &ErrorReply) -> SigninError {
    use SigninErrorKind as K;
    let said = reply.quoted();
    let err = |kind, code, message: String, remedy: String| {
        SigninError::new(kind, reply.aadsts, code, message, remedy)
    };
    match reply.error.as_str() {
        // Microsoft says `authorization_declined`; RFC 8628 says `access_denied`.
        "authorization_declined" | "access_denied" => err(
            K::Declined,
            "sign-in-declined",
            format!("The sign-in request was declined in the browser. Microsoft said: {said}"),
            "Click [Open Authentication Page] again and accept the request with the account that sends the email.".to_owned(),
        ),
        "expired_token" => {
            let mut e = SigninError::expired();
            e.aadsts = reply.aadsts;
            e.message = format!("{} Microsoft said: {said}", e.message);
            e
        }
        "bad_verification_code" => err(
            K::BadVerificationCode,
            "sign-in-bad-verification-code",
            format!("The identity platform does not recognise the device's sign-in code. Microsoft said: {said}"),
            SIGN_IN_AGAIN.to_owned(),
        ),
        "invalid_grant" => err(
            K::SignInAgain,
            "sign-in-invalid-grant",
            format!("The identity platform no longer accepts the device's sign-in. Microsoft said: {said}"),
            SIGN_IN_AGAIN.to_owned(),
        ),
        "invalid_client" | "unauthorized_client" | "invalid_scope" => err(
            K::Configuration,
            "sign-in-application-refused",
            format!("The identity platform refused the application's request. Microsoft said: {said}"),
            aadsts_remedy(reply.aadsts, "Check [Application (client) ID] and [Tenant], and that the application registration allows public client flows and the SMTP.Send permission"),
        ),
        _ => err(
            K::Rejected,
            "sign-in-refused",
            format!("The identity platform refused the sign-in. Microsoft said: {said}"),
            aadsts_remedy(reply.aadsts, "Correct what Microsoft's message names"),
        ),
    }
}

/// "{first}, using Microsoft's reference for AADSTS{n}; then sign in again."
fn aadsts_remedy(aadsts: Option<u32>, first: &str) -> String {
    match aadsts {
        Some(n) => format!(
            "{first} (Microsoft explains AADSTS{n} at {ERROR_LOOKUP}{n}), then click [Open Authentication Page] again."
        ),
        None => format!("{first}, then click [Open Authentication Page] again."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::test_support::{error_reply, pending_reply};

    fn parsed(error: &str, code: u32, text: &str) -> ErrorReply {
        ErrorReply::parse(&error_reply(error, code, text)).unwrap()
    }

    fn fail(error: &str, code: u32, text: &str) -> SigninError {
        failure(&parsed(error, code, text), &SigninConfig::default())
    }

    #[test]
    fn pending_reply_parses_with_its_aadsts_number_and_first_line() {
        let reply = ErrorReply::parse(&pending_reply()).unwrap();
        assert_eq!(reply.error, "authorization_pending");
        assert_eq!(reply.aadsts, Some(70016));
        assert_eq!(
            reply.description,
            "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling."
        );
        assert_eq!(
            meaning(&reply, &SigninConfig::default()),
            ErrorMeaning::Pending
        );
    }

    #[test]
    fn aadsts_number_comes_from_the_description_when_error_codes_is_absent() {
        let body = br#"{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked."}"#;
        let reply = ErrorReply::parse(body).unwrap();
        assert_eq!(reply.aadsts, Some(50173));
        assert_eq!(
            aadsts_prefix("AADSTS7000218: The request body"),
            Some(7000218)
        );
        assert_eq!(aadsts_prefix("AADSTS: nothing"), None);
        assert_eq!(aadsts_prefix("AADSTS99999999999999: too long"), None);
        assert_eq!(aadsts_prefix("no prefix"), None);
    }

    #[test]
    fn huge_or_odd_error_codes_fall_back_to_the_description() {
        let body = br#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[99999999999999,"x"]}"#;
        assert_eq!(ErrorReply::parse(body).unwrap().aadsts, Some(700082));
    }

    #[test]
    fn bodies_without_an_error_string_are_not_error_replies() {
        for body in [
            &br#"{"access_token":"x"}"#[..],
            b"{}",
            b"not json",
            br#"{"error":42}"#,
        ] {
            assert_eq!(ErrorReply::parse(body), None);
        }
    }

    #[test]
    fn slow_down_and_temporarily_unavailable_keep_polling() {
        let config = SigninConfig::default();
        let slow = parsed("slow_down", 70016, "Slow down.");
        assert_eq!(meaning(&slow, &config), ErrorMeaning::SlowDown);
        let busy = ErrorReply::parse(br#"{"error":"temporarily_unavailable"}"#).unwrap();
        assert_eq!(meaning(&busy, &config), ErrorMeaning::Transient);
    }

    #[test]
    fn conditional_access_names_block_device_code_flow_and_the_exclusion() {
        for code in [53003, 530033] {
            let err = fail(
                "invalid_grant",
                code,
                "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
            );
            assert_eq!(err.kind, SigninErrorKind::ConditionalAccess);
            assert_eq!(err.code, "sign-in-blocked-by-conditional-access");
            assert_eq!(err.aadsts, Some(code));
            assert!(err.message.contains("Block Device Code Flow"));
            assert!(err.message.contains(&format!("AADSTS{code}")));
            assert!(err.remedy.contains("excluded"));
            assert!(err.remedy.contains("c88859d7-e6a2-48cb-acee-669df3387654"));
        }
    }

    #[test]
    fn missing_consent_shows_the_admin_consent_url() {
        let err = fail(
            "invalid_grant",
            65001,
            "The user or administrator has not consented to use the application with ID 'c88859d7-e6a2-48cb-acee-669df3387654'.",
        );
        assert_eq!(err.kind, SigninErrorKind::ConsentRequired);
        assert!(err.remedy.contains(
            "https://login.microsoftonline.com/common/adminconsent?client_id=c88859d7-e6a2-48cb-acee-669df3387654&redirect_uri="
        ));
        assert!(err.remedy.contains("Global Administrator"));
    }

    #[test]
    fn mfa_codes_ask_to_complete_or_register_mfa() {
        let err = fail(
            "invalid_grant",
            50076,
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.",
        );
        assert_eq!(err.kind, SigninErrorKind::MfaRequired);
        assert!(err.remedy.contains("multi-factor"));
        let err = fail(
            "interaction_required",
            50079,
            "The user is required to use multi-factor authentication.",
        );
        assert_eq!(err.code, "sign-in-mfa-registration-required");
        assert!(err.remedy.contains("Register"));
    }

    #[test]
    fn idle_expiry_and_revocation_ask_to_sign_in_again() {
        let idle = fail(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued on 2024-01-01 and was inactive for 90.00:00:00.",
        );
        assert_eq!(idle.code, "sign-in-refresh-token-expired");
        assert!(idle.message.contains("90 days"));
        let revoked = fail(
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
        );
        assert_eq!(revoked.code, "sign-in-grant-revoked");
        assert!(revoked.message.contains("password"));
        for err in [idle, revoked] {
            assert_eq!(err.kind, SigninErrorKind::SignInAgain);
            assert!(err.remedy.contains("Open Authentication Page"));
        }
    }

    #[test]
    fn single_tenant_app_on_common_asks_to_set_the_tenant() {
        let err = fail(
            "invalid_request",
            50194,
            "Application 'c88859d7-e6a2-48cb-acee-669df3387654' is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
        );
        assert_eq!(err.kind, SigninErrorKind::Configuration);
        assert_eq!(err.code, "sign-in-tenant-required");
        assert!(err.message.contains("\"common\""));
        assert!(err.remedy.contains("[Tenant]"));
    }

    #[test]
    fn non_public_client_asks_to_allow_public_client_flows() {
        let err = fail(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
        assert_eq!(err.code, "sign-in-not-public-client");
        assert!(err.remedy.contains("Allow public client flows"));
    }

    #[test]
    fn declined_in_either_spelling_is_declined() {
        for error in ["authorization_declined", "access_denied"] {
            let err = fail(error, 70000, "The user declined the request.");
            assert_eq!(err.kind, SigninErrorKind::Declined, "{error}");
            assert_eq!(err.code, "sign-in-declined");
        }
    }

    #[test]
    fn expired_and_bad_codes_stop_with_their_own_codes() {
        let err = fail("expired_token", 70019, "Verification code expired.");
        assert_eq!(
            (err.kind, err.code),
            (SigninErrorKind::Expired, "sign-in-expired")
        );
        assert_eq!(err.aadsts, Some(70019));
        let err = fail(
            "bad_verification_code",
            70000,
            "The provided value for the input parameter 'device_code' is not valid.",
        );
        assert_eq!(err.kind, SigninErrorKind::BadVerificationCode);
    }

    #[test]
    fn unknown_codes_keep_the_aadsts_number_and_microsofts_words() {
        let err = fail(
            "invalid_request",
            90014,
            "The required field 'device_code' is missing from the credential.",
        );
        assert_eq!(err.kind, SigninErrorKind::Rejected);
        assert_eq!(err.aadsts, Some(90014));
        assert!(
            err.message
                .contains("AADSTS90014: The required field 'device_code' is missing")
        );
        assert!(
            err.message
                .contains("Trace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333")
        );
        assert!(
            err.remedy
                .contains("https://login.microsoftonline.com/error?code=90014")
        );
        assert!(
            !err.message.contains("Timestamp"),
            "only the first line is quoted"
        );
    }

    #[test]
    fn control_characters_and_overlong_descriptions_are_tamed() {
        let long = "x".repeat(5000);
        let body = serde_json::json!({"error": "weird\u{1b}[31m", "error_description": format!("AADSTS1: \u{7}{long}")}).to_string();
        let reply = ErrorReply::parse(body.as_bytes()).unwrap();
        assert!(!reply.description.chars().any(char::is_control));
        assert!(reply.description.chars().count() <= MAX_DESCRIPTION + 1);
        assert!(!reply.error.contains('\u{1b}'));
    }
}
