//! The signed-in account, read from the OpenID Connect id_token (rule S9).
//!
//! The signature is not checked, on purpose: the id_token arrives in the token endpoint's
//! reply, over TLS, from the authority the device chose, in answer to the device's own
//! request. OpenID Connect Core 1.0, 3.1.3.7, lets a client that receives the id_token
//! directly from the token endpoint in this way use TLS server validation instead of
//! checking the token's signature. The claims only name the account the device signed in
//! as; nothing here grants access on their strength (Exchange Online checks the access
//! token itself).
//!
//! Its claims are still checked (OpenID Connect Core 3.1.3.7, items 2–3 and 9), because a
//! token for another application or tenant, or an expired one, means something is wrong
//! (a misconfigured authority or proxy, a replayed reply, a wrong device clock): with
//! [`Account::from_checked_id_token`], nobody is signed in then, and the diagnosis says
//! which check failed:
//! - `aud` is the client id the device signed in as;
//! - `tid` is a tenant id that fits the `tenant` setting: any tenant for `common`, any but
//!   the personal-account tenant for `organizations`, only that one for `consumers`,
//!   exactly that tenant for a tenant id. For a tenant *domain* (`contoso.com`) the device
//!   cannot know the id without asking the platform, so any organization's tenant id fits
//!   (the platform itself routes a domain to its tenant);
//! - `iss` is the v2.0 issuer of that same tenant, `https://{host}/{tid}/v2.0` (the host
//!   is not compared: national clouds and test authorities use their own);
//! - `exp` is in the future and `nbf` (else `iat`) not in the future, each with
//!   [`CLOCK_LEEWAY`]. When the token endpoint's `Date` shows that the device's own clock
//!   is off, a failure of these is diagnosed as the wrong clock it is.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::clock::{CLOCK_LEEWAY, ClockSkew, shown as shown_time};
use super::error::{SigninError, SigninErrorKind};
use super::reply::JsonObject;
use crate::diagnose::{Diagnostic, Fix, Severity};
use crate::remedy::Remedy;
use crate::storage::{RecordVersion, records};

/// The tenant id of personal Microsoft accounts (Outlook.com, Hotmail, Live).
pub const PERSONAL_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// base64url as JWTs use it (RFC 7515 2: no padding); padding is tolerated all the same.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims of the signed-in account that the device uses. Stored with the grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, miniserde::Deserialize)]
pub struct Account {
    /// The record's layout (see [`crate::storage::records`]).
    pub version: RecordVersion<{ records::ACCOUNT }>,
    /// The sign-in name; for work and school accounts usually the UPN.
    pub preferred_username: Option<String>,
    /// The primary email address; may be absent.
    pub email: Option<String>,
    /// The user principal name, when the tenant emits it.
    pub upn: Option<String>,
    /// The account's object id in its tenant.
    pub oid: Option<String>,
    /// The tenant id; [`PERSONAL_TENANT_ID`] for personal Microsoft accounts.
    pub tid: Option<String>,
    /// Not a claim: the device's clock against the platform's at sign-in, when they were
    /// more than [`CLOCK_LEEWAY`] apart (the sign-in's warning).
    pub clock_skew: Option<ClockSkew>,
}

/// As serde wrote it: every claim (`null` when absent), and `clock_skew` only when there is
/// one (records of builds before it had none).
impl miniserde::Serialize for Account {
    fn begin(&self) -> miniserde::ser::Fragment<'_> {
        fn claim(c: &Option<String>) -> Option<&dyn miniserde::Serialize> {
            Some(c)
        }
        crate::json::Fields::new(vec![
            ("version", Some(&self.version)),
            ("preferred_username", claim(&self.preferred_username)),
            ("email", claim(&self.email)),
            ("upn", claim(&self.upn)),
            ("oid", claim(&self.oid)),
            ("tid", claim(&self.tid)),
            (
                "clock_skew",
                self.clock_skew
                    .as_ref()
                    .map(|c| c as &dyn miniserde::Serialize),
            ),
        ])
        .begin()
    }
}

/// What an id_token must fit: the sign-in the device made, and when it received the token.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The client id the device signed in as.
    pub client_id: &'a str,
    /// The `tenant` setting the device signed in to.
    pub tenant: &'a str,
    /// The device's clock when the reply arrived (Unix seconds).
    pub now: u64,
    /// The platform's clock then, from the reply's `Date` header, if it had one.
    pub server_now: Option<u64>,
}

impl Account {
    /// Reads the account from an id_token (a JWS compact serialization) without checking
    /// its signature (see the module's documentation for why that is sound here) or its
    /// claims: for a token already accepted at sign-in.
    pub fn from_id_token(id_token: &str) -> Result<Self, SigninError> {
        Self::from_claims(&claims_of(id_token)?)
    }

    fn from_claims(claims: &JsonObject) -> Result<Self, SigninError> {
        Ok(Self {
            version: RecordVersion::default(),
            preferred_username: claims.opt_string("preferred_username")?,
            email: claims.opt_string("email")?,
            upn: claims.opt_string("upn")?,
            oid: claims.opt_string("oid")?,
            tid: claims.opt_string("tid")?,
            clock_skew: None,
        })
    }

    /// Reads the account of a new sign-in from its id_token, after checking that the token
    /// fits `expected` (see the module's documentation). A token that does not is a
    /// [`SigninErrorKind::IdTokenRejected`] error whose diagnosis names the failed check.
    pub fn from_checked_id_token(id_token: &str, expected: &Expected) -> Result<Self, SigninError> {
        let claims = claims_of(id_token)?;
        let mut account = Self::from_claims(&claims)?;
        let tid = account.tid.clone().unwrap_or_default();
        check_audience(&claims, expected.client_id)?;
        check_tenant(&tid, expected.tenant)?;
        check_issuer(&claims, &tid)?;
        let skew = ClockSkew::measure(expected.now, expected.server_now);
        check_times(&claims, expected.now, skew)?;
        account.clock_skew = skew;
        Ok(account)
    }

    /// S9 and the clock: the warnings of this account while `device_email` is the Device
    /// Email Address.
    pub fn warnings(&self, device_email: &str) -> Vec<Diagnostic> {
        self.upn_warning(device_email)
            .into_iter()
            .chain(self.clock_skew.map(|skew| skew.warning()))
            .collect()
    }

    /// Whether this is a personal Microsoft account (Outlook.com) rather than a work or
    /// school account of Microsoft Entra ID.
    pub fn is_personal(&self) -> bool {
        self.tid
            .as_deref()
            .is_some_and(|tid| tid.eq_ignore_ascii_case(PERSONAL_TENANT_ID))
    }

    /// S9: the address that becomes the Device Email Address after sign-in: the account's
    /// primary address (`email`), else its sign-in name or UPN when that is an address.
    pub fn device_email_address(&self) -> Option<&str> {
        [&self.email, &self.preferred_username, &self.upn]
            .into_iter()
            .filter_map(|claim| claim.as_deref())
            .find(|value| is_address(value))
    }

    /// The UPN Exchange Online authenticates: `upn`, else `preferred_username` (which the
    /// platform fills with the UPN for work and school accounts).
    pub fn upn(&self) -> Option<&str> {
        [&self.upn, &self.preferred_username]
            .into_iter()
            .filter_map(|claim| claim.as_deref())
            .find(|value| is_address(value))
    }

    /// S9: whether the Device Email Address set after sign-in differs from the UPN, which
    /// makes sending fail to authenticate. Addresses compare without regard to case, as
    /// Exchange Online compares them. Personal accounts have no separate UPN.
    pub fn upn_differs(&self) -> bool {
        self.upn_differs_from(self.device_email_address().unwrap_or_default())
    }

    /// Whether `device_email` (the current setting) is not this account's UPN.
    pub fn upn_differs_from(&self, device_email: &str) -> bool {
        if self.is_personal() {
            return false;
        }
        self.upn()
            .is_some_and(|upn| !upn.eq_ignore_ascii_case(device_email.trim()))
    }

    /// S9: the warning shown after sign-in (or whenever `device_email` is the current
    /// Device Email Address) when it is not the UPN, offering the UPN as the new value.
    pub fn upn_warning(&self, device_email: &str) -> Option<Diagnostic> {
        if !self.upn_differs_from(device_email) {
            return None;
        }
        let upn = self.upn()?;
        Some(Diagnostic::new(
            "device-email-not-upn",
            Severity::Warning,
            format!(
                "The Device Email Address {device_email} is not the signed-in account's UPN {upn}: sending email will fail with an authentication error."
            ),
            format!(
                "Set the Device Email Address to {upn} in the [Device Details] (or [Description]) dialog box."
            ),
        )
        .about("device-email")
        .with_fix(Fix {
            label: format!("Use the UPN ({upn})"),
            changes: vec![("device-email", upn.to_owned())],
        }))
    }
}

/// The claims (payload) of a JWS compact serialization, signature unchecked.
fn claims_of(id_token: &str) -> Result<JsonObject, SigninError> {
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SigninError::malformed("the id_token is not a signed JWT"));
    };
    let json = BASE64URL
        .decode(payload)
        .map_err(|_| SigninError::malformed("the id_token's payload is not base64url"))?;
    JsonObject::parse("the id_token's claims", &json)
}

/// What to do when the id_token does not fit the sign-in's application or tenant.
fn check_configuration() -> Remedy {
    Remedy::each(
        "Check [Tenant] and [Application (client) ID], and that the device signs in at the Microsoft identity platform with no proxy altering its replies; then click [Open Authentication Page] again.",
        "Check the tenant and client-id settings (and --tenant, --client-id and --authority), and that no proxy alters the identity platform's replies; then run `mfp-host auth login` again.",
    )
}

fn rejected(code: &'static str, message: String, remedy: impl Into<Remedy>) -> SigninError {
    SigninError::new(
        SigninErrorKind::IdTokenRejected,
        None,
        code,
        format!("{message}: nobody was signed in."),
        remedy,
    )
}

/// A claim value made safe to quote: printable, short (claims come from outside).
fn quoted(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect()
}

/// `aud` is the client id, as a string or (OIDC allows it) in an array of audiences.
fn check_audience(claims: &JsonObject, client_id: &str) -> Result<(), SigninError> {
    use crate::json::{Value, as_str};
    let fits = |aud: &str| aud.eq_ignore_ascii_case(client_id);
    let (ok, named) = match claims.get("aud") {
        Some(Value::String(aud)) => (fits(aud), quoted(aud)),
        Some(Value::Array(all)) => {
            let auds: Vec<&str> = all.iter().filter_map(as_str).collect();
            (auds.iter().any(|a| fits(a)), quoted(&auds.join(", ")))
        }
        _ => (false, "no application".to_owned()),
    };
    if ok {
        return Ok(());
    }
    Err(rejected(
        "sign-in-id-token-audience",
        format!(
            "The sign-in's id_token was issued to {named}, not to this device's application (client id {client_id})"
        ),
        check_configuration(),
    ))
}

/// Whether `tid` (a tenant id) fits the `tenant` setting (see the module's documentation).
pub fn tenant_fits(tenant: &str, tid: &str) -> bool {
    let personal = tid.eq_ignore_ascii_case(PERSONAL_TENANT_ID);
    if !is_guid(tid) {
        return false;
    }
    match tenant.to_ascii_lowercase().as_str() {
        "common" => true,
        "organizations" => !personal,
        "consumers" => personal,
        guid if is_guid(guid) => guid.eq_ignore_ascii_case(tid),
        _domain => !personal,
    }
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_tenant(tid: &str, tenant: &str) -> Result<(), SigninError> {
    if tenant_fits(tenant, tid) {
        return Ok(());
    }
    let which = match tenant.to_ascii_lowercase().as_str() {
        "organizations" => "work or school accounts only, and this is a personal Microsoft account",
        "consumers" => {
            "personal Microsoft accounts (Outlook.com) only, and this is a work or school account"
        }
        t if is_guid(t) => "that tenant only",
        "common" => "any tenant, but this is no tenant id",
        _ => "a work or school tenant, and this is a personal Microsoft account",
    };
    let named = if tid.is_empty() {
        "no tenant".to_owned()
    } else {
        format!("tenant {}", quoted(tid))
    };
    Err(rejected(
        "sign-in-id-token-tenant",
        format!(
            "The sign-in's id_token names {named}, which does not fit the tenant setting {tenant} ({which})"
        ),
        {
            let check = check_configuration();
            Remedy::each(
                format!(
                    "Sign in with an account of tenant {tenant}, or set [Tenant] to the account's tenant (or common). {}",
                    check.web_panel()
                ),
                format!(
                    "Sign in with an account of tenant {tenant}, or set the tenant setting to the account's tenant (or common). {}",
                    check.command_line()
                ),
            )
        },
    ))
}

/// `iss` is `https://{host}/{tid}/v2.0`: the issuer of the tenant the token names.
fn check_issuer(claims: &JsonObject, tid: &str) -> Result<(), SigninError> {
    let iss = claims.opt_string("iss")?.unwrap_or_default();
    let issuer_tenant = iss
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(host, path)| (!host.is_empty()).then_some(path))
        .and_then(|path| path.strip_suffix("/v2.0"));
    if issuer_tenant.is_some_and(|t| t.eq_ignore_ascii_case(tid)) {
        return Ok(());
    }
    let named = if iss.is_empty() {
        "no issuer".to_owned()
    } else {
        format!("the issuer {}", quoted(&iss))
    };
    Err(rejected(
        "sign-in-id-token-issuer",
        format!(
            "The sign-in's id_token names {named}, which is not the v2.0 issuer of its own tenant {} (https://login.microsoftonline.com/{}/v2.0)",
            quoted(tid),
            quoted(tid)
        ),
        check_configuration(),
    ))
}

/// A time claim (NumericDate: seconds, possibly fractional).
fn time_claim(claims: &JsonObject, name: &str) -> Result<Option<u64>, SigninError> {
    use crate::json::{Number, Value};
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(Number::U64(t))) => Ok(Some(*t)),
        // `-0`, which serde_json read as the float -0.0.
        Some(Value::Number(Number::I64(0))) => Ok(Some(0)),
        // Fractional seconds are cut to whole ones (`as` saturates a huge one).
        Some(Value::Number(Number::F64(t))) if t.is_finite() && *t >= 0.0 => Ok(Some(*t as u64)),
        Some(_) => Err(SigninError::malformed(format_args!(
            "in the id_token's claims, `{name}` is not a time"
        ))),
    }
}

/// `exp` after `now`, `nbf` (else `iat`) not after it, each with [`CLOCK_LEEWAY`]. When the
/// device's clock is off (`skew`) and the token's times fit the platform's clock, the
/// diagnosis is the clock.
fn check_times(claims: &JsonObject, now: u64, skew: Option<ClockSkew>) -> Result<(), SigninError> {
    let Some(exp) = time_claim(claims, "exp")? else {
        return Err(rejected(
            "sign-in-id-token-expired",
            "The sign-in's id_token has no expiry time (`exp`)".to_owned(),
            check_configuration(),
        ));
    };
    let valid_from = match time_claim(claims, "nbf")? {
        Some(nbf) => Some(nbf),
        None => time_claim(claims, "iat")?,
    };
    let expired_at = |t: u64| exp.saturating_add(CLOCK_LEEWAY) <= t;
    let early_at = |t: u64| valid_from.is_some_and(|from| from > t.saturating_add(CLOCK_LEEWAY));
    let looks = if expired_at(now) {
        "expired"
    } else if early_at(now) {
        "not yet valid"
    } else {
        return Ok(());
    };
    if let Some(skew) = skew
        && !expired_at(skew.server_now)
        && !early_at(skew.server_now)
    {
        let d = skew.id_token_diagnostic(looks);
        return Err(SigninError::new(
            SigninErrorKind::IdTokenRejected,
            None,
            d.code,
            d.message,
            d.remedy,
        ));
    }
    let clock_remedy = Remedy::each(
        "Check the device's date and time (or have it use an NTP server), and that no proxy replays old replies; then click [Open Authentication Page] again.",
        "Check this machine's clock (or have it use an NTP server), and that no proxy replays old replies; then run `mfp-host auth login` again.",
    );
    Err(if looks == "expired" {
        rejected(
            "sign-in-id-token-expired",
            format!(
                "The sign-in's id_token expired at {}, before the device received it at {} (by the device's clock, with 5 minutes' leeway)",
                shown_time(exp),
                shown_time(now)
            ),
            clock_remedy,
        )
    } else {
        rejected(
            "sign-in-id-token-not-yet-valid",
            format!(
                "The sign-in's id_token is valid only from {}, after the device received it at {} (by the device's clock, with 5 minutes' leeway)",
                shown_time(valid_from.unwrap_or_default()),
                shown_time(now)
            ),
            clock_remedy,
        )
    })
}

/// An address the Device Email Address setting itself accepts (one mailbox, no space or
/// control character): claims come from outside, and S9 writes this one to the settings.
fn is_address(value: &str) -> bool {
    !value.is_empty()
        && crate::settings::values::parse_email(crate::settings::SettingKey::DeviceEmail, value)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::test_support::{jwt, work_id_token};
    use serde_json::json;

    fn account(claims: serde_json::Value) -> Account {
        Account::from_id_token(&jwt(&claims)).unwrap()
    }

    #[test]
    fn claims_of_a_work_account_are_read() {
        let a = Account::from_id_token(&work_id_token()).unwrap();
        assert_eq!(a.preferred_username.as_deref(), Some("scanner@contoso.com"));
        assert_eq!(a.email.as_deref(), Some("scanner@contoso.com"));
        assert_eq!(
            a.oid.as_deref(),
            Some("00000000-0000-0000-66f3-3332eca7ea81")
        );
        assert_eq!(
            a.tid.as_deref(),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        assert_eq!(a.upn, None);
        assert!(!a.is_personal());
        assert!(!a.upn_differs());
    }

    #[test]
    fn padded_payloads_are_accepted_too() {
        let token = jwt(&json!({"email": "a@b.test"}));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        while !parts[1].len().is_multiple_of(4) {
            parts[1].push('=');
        }
        assert_eq!(
            Account::from_id_token(&parts.join("."))
                .unwrap()
                .email
                .as_deref(),
            Some("a@b.test")
        );
    }

    #[test]
    fn primary_address_becomes_the_device_email_and_differs_from_the_upn() {
        let a = account(json!({
            "preferred_username": "j.smith@contoso.onmicrosoft.com",
            "email": "john.smith@contoso.com",
            "upn": "j.smith@contoso.onmicrosoft.com",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"
        }));
        assert_eq!(a.device_email_address(), Some("john.smith@contoso.com"));
        assert_eq!(a.upn(), Some("j.smith@contoso.onmicrosoft.com"));
        assert!(a.upn_differs());
        let warning = a.upn_warning("john.smith@contoso.com").unwrap();
        assert_eq!(warning.code, "device-email-not-upn");
        assert_eq!(warning.severity, Severity::Warning);
        assert!(
            warning
                .remedy
                .contains("Set the Device Email Address to j.smith@contoso.onmicrosoft.com")
        );
        assert!(
            a.upn_warning("J.Smith@Contoso.onmicrosoft.com").is_none(),
            "case does not matter"
        );
    }

    #[test]
    fn without_email_the_sign_in_name_is_the_device_email() {
        let a = account(json!({"preferred_username": "scanner@contoso.com", "tid": "t"}));
        assert_eq!(a.device_email_address(), Some("scanner@contoso.com"));
        assert_eq!(a.upn(), Some("scanner@contoso.com"));
        let a = account(json!({"preferred_username": "+81 90 0000 0000", "upn": "u@contoso.com"}));
        assert_eq!(a.device_email_address(), Some("u@contoso.com"));
        assert_eq!(a.upn(), Some("u@contoso.com"));
    }

    #[test]
    fn personal_accounts_are_recognised_by_their_tenant() {
        let a = account(json!({
            "preferred_username": "someone@outlook.com",
            "email": "someone.alias@outlook.com",
            "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"
        }));
        assert!(a.is_personal());
        assert!(!a.upn_differs(), "personal accounts have no UPN to match");
        assert!(a.upn_warning("anything@outlook.com").is_none());
    }

    #[test]
    fn malformed_id_tokens_are_typed_errors() {
        let bad_json = format!("e30.{}.sig", BASE64URL.encode("not json"));
        let wrong_type = jwt(&json!({"email": 5}));
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d.e",
            "e30.!!!.sig",
            &bad_json,
            &wrong_type,
        ] {
            let err = Account::from_id_token(token).unwrap_err();
            assert_eq!(
                err.kind,
                crate::signin::SigninErrorKind::MalformedReply,
                "{token}"
            );
        }
    }

    const CLIENT: &str = "c88859d7-e6a2-48cb-acee-669df3387654";
    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const NOW: u64 = 1_900_000_000;

    /// The claims of a token Microsoft issued at `iat` to the default client in `TENANT`.
    fn claims_at(iat: u64) -> serde_json::Value {
        json!({
            "aud": CLIENT,
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            "iat": iat, "nbf": iat, "exp": iat + 3600,
            "preferred_username": "scanner@contoso.com",
            "email": "scanner@contoso.com",
            "tid": TENANT,
        })
    }

    fn check(
        claims: &serde_json::Value,
        tenant: &str,
        server_now: Option<u64>,
    ) -> Result<Account, SigninError> {
        let expected = Expected {
            client_id: CLIENT,
            tenant,
            now: NOW,
            server_now,
        };
        Account::from_checked_id_token(&jwt(claims), &expected)
    }

    fn refused(claims: &serde_json::Value, tenant: &str, server_now: Option<u64>) -> SigninError {
        let err = check(claims, tenant, server_now).unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::IdTokenRejected, "{err:?}");
        assert!(
            err.message.ends_with("nobody was signed in."),
            "{}",
            err.message
        );
        err
    }

    #[test]
    fn a_fitting_id_token_gives_the_account_and_its_primary_address() {
        let mut claims = claims_at(NOW);
        claims["email"] = "john.smith@contoso.com".into();
        claims["preferred_username"] = "j.smith@contoso.onmicrosoft.com".into();
        for tenant in [
            "common",
            "organizations",
            TENANT,
            "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
            "contoso.com",
        ] {
            let a = check(&claims, tenant, Some(NOW)).unwrap();
            assert_eq!(
                a.device_email_address(),
                Some("john.smith@contoso.com"),
                "{tenant}"
            );
            assert_eq!(a.clock_skew, None);
        }
        // An array audience holding the client id, and an upper-case client id, fit too.
        claims["aud"] = json!(["other", CLIENT.to_uppercase()]);
        check(&claims, "common", None).unwrap();
    }

    #[test]
    fn another_application_is_refused_naming_it() {
        let mut claims = claims_at(NOW);
        claims["aud"] = "11111111-2222-3333-4444-555555555555".into();
        let err = refused(&claims, "common", Some(NOW));
        assert_eq!(err.code, "sign-in-id-token-audience");
        assert!(
            err.message.contains("11111111-2222-3333-4444-555555555555"),
            "{}",
            err.message
        );
        assert!(err.message.contains(CLIENT), "{}", err.message);
        claims.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            refused(&claims, "common", None).code,
            "sign-in-id-token-audience"
        );
    }

    #[test]
    fn the_tenant_must_fit_the_tenant_setting() {
        let work = claims_at(NOW);
        let mut personal = claims_at(NOW);
        personal["tid"] = PERSONAL_TENANT_ID.into();
        personal["iss"] =
            format!("https://login.microsoftonline.com/{PERSONAL_TENANT_ID}/v2.0").into();
        let other = "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        for (claims, tenant, fits) in [
            (&work, "common", true),
            (&personal, "common", true),
            (&work, "organizations", true),
            (&personal, "organizations", false),
            (&work, "consumers", false),
            (&personal, "consumers", true),
            (&work, other, false),
            (&personal, TENANT, false),
            (&work, "contoso.onmicrosoft.com", true),
            (&personal, "contoso.onmicrosoft.com", false),
        ] {
            match check(claims, tenant, None) {
                Ok(_) => assert!(fits, "{tenant}: {claims}"),
                Err(err) => {
                    assert!(!fits, "{tenant}: {err:?}");
                    assert_eq!(err.code, "sign-in-id-token-tenant");
                    assert!(
                        err.message.contains(&format!("tenant setting {tenant}")),
                        "{}",
                        err.message
                    );
                }
            }
        }
        let mut no_tid = claims_at(NOW);
        no_tid.as_object_mut().unwrap().remove("tid");
        assert!(
            refused(&no_tid, "common", None)
                .message
                .contains("names no tenant")
        );
    }

    #[test]
    fn the_issuer_must_be_its_own_tenants_v2_issuer() {
        let other = "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        for iss in [
            format!("https://login.microsoftonline.com/{other}/v2.0"),
            format!("https://sts.windows.net/{other}/"),
            format!("http://login.microsoftonline.com/{TENANT}/v2.0"),
            format!("https://login.microsoftonline.com/{TENANT}/v2.0/extra"),
            "https://login.microsoftonline.com/common/v2.0".to_owned(),
        ] {
            let mut claims = claims_at(NOW);
            claims["iss"] = iss.clone().into();
            let err = refused(&claims, "common", None);
            assert_eq!(err.code, "sign-in-id-token-issuer", "{iss}");
            assert!(err.message.contains(&iss), "{}", err.message);
        }
        let mut claims = claims_at(NOW);
        claims["iss"] = format!("https://login.partner.microsoftonline.cn/{TENANT}/v2.0").into();
        check(&claims, TENANT, None).expect("a national cloud's host");
    }

    #[test]
    fn expiry_gets_five_minutes_leeway_and_no_more() {
        // Issued an hour and 4 minutes ago: expired 4 minutes ago, within the leeway.
        check(&claims_at(NOW - 3600 - 240), "common", None).unwrap();
        let err = refused(&claims_at(NOW - 3600 - 301), "common", None);
        assert_eq!(err.code, "sign-in-id-token-expired");
        assert!(err.message.contains("expired at"), "{}", err.message);
        assert!(err.remedy.contains("date and time"), "{}", err.remedy);
        // Valid from 4 minutes on: fine; from 6 minutes on: not yet valid.
        check(&claims_at(NOW + 240), "common", None).unwrap();
        let err = refused(&claims_at(NOW + 360), "common", None);
        assert_eq!(err.code, "sign-in-id-token-not-yet-valid");
        // Without nbf, iat says when it became valid.
        let mut claims = claims_at(NOW + 360);
        claims.as_object_mut().unwrap().remove("nbf");
        assert_eq!(
            refused(&claims, "common", None).code,
            "sign-in-id-token-not-yet-valid"
        );
        // No exp at all.
        let mut claims = claims_at(NOW);
        claims.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            refused(&claims, "common", None).code,
            "sign-in-id-token-expired"
        );
        // A time that is not a number is malformed.
        let mut claims = claims_at(NOW);
        claims["exp"] = "tomorrow".into();
        let err = check(&claims, "common", None).unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::MalformedReply);
    }

    #[test]
    fn a_wrong_device_clock_is_diagnosed_as_such() {
        // The device's clock is 2 hours ahead: the fresh token looks expired by it.
        let server = NOW - 7200;
        let err = refused(&claims_at(server), "common", Some(server));
        assert_eq!(err.code, "device-clock-wrong");
        assert!(
            err.message.contains("date and time are wrong"),
            "{}",
            err.message
        );
        assert!(err.message.contains("looks expired"), "{}", err.message);
        assert!(
            err.message.contains("about 2 hours ahead of"),
            "{}",
            err.message
        );
        assert!(err.remedy.contains("NTP"));
        // 30 minutes behind: the token looks not yet valid.
        let server = NOW + 1800;
        let err = refused(&claims_at(server), "common", Some(server));
        assert_eq!(err.code, "device-clock-wrong");
        assert!(
            err.message.contains("looks not yet valid"),
            "{}",
            err.message
        );
        // A token expired by the platform's clock too is an expired token, not a clock issue.
        let err = refused(
            &claims_at(NOW - 7200 - 3600 - 600),
            "common",
            Some(NOW - 7200),
        );
        assert_eq!(err.code, "sign-in-id-token-expired");
        // A clock 20 minutes off with a token that still fits: signed in, with the warning.
        let server = NOW - 1200;
        let a = check(&claims_at(server), "common", Some(server)).unwrap();
        let skew = a.clock_skew.unwrap();
        assert_eq!(skew.seconds_ahead(), 1200);
        let warnings = a.warnings("scanner@contoso.com");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].code, "device-clock-wrong");
        assert_eq!(warnings[0].severity, Severity::Warning);
        // Within 5 minutes: no warning.
        let a = check(&claims_at(NOW), "common", Some(NOW - 299)).unwrap();
        assert!(a.warnings("scanner@contoso.com").is_empty());
    }

    #[test]
    fn the_account_round_trips_through_the_store() {
        use crate::storage::{decode, encode};
        let mut a = Account::from_id_token(&work_id_token()).unwrap();
        let bytes = encode(&a);
        // Byte for byte as the serde build wrote it: no `clock_skew` without a skew.
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"version":1,"preferred_username":"scanner@contoso.com","email":"scanner@contoso.com","upn":null,"oid":"00000000-0000-0000-66f3-3332eca7ea81","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47"}"#
        );
        assert_eq!(decode::<Account>("oauth/account", &bytes).unwrap(), a);
        a.clock_skew = Some(ClockSkew {
            device_now: 5,
            server_now: 7,
        });
        let bytes = encode(&a);
        assert!(
            String::from_utf8_lossy(&bytes)
                .ends_with(r#","clock_skew":{"device_now":5,"server_now":7}}"#)
        );
        assert_eq!(decode::<Account>("oauth/account", &bytes).unwrap(), a);
    }
}
