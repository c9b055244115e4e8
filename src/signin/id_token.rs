//! The signed-in account, read from the OpenID Connect id_token (rule S9).
//!
//! The signature is not checked, on purpose: the id_token arrives in the token endpoint's
//! reply, over TLS, from the authority the device chose, in answer to the device's own
//! request. OpenID Connect Core 1.0, 3.1.3.7, lets a client that receives the id_token
//! directly from the token endpoint in this way use TLS server validation instead of
//! checking the token's signature. The claims only name the account the device signed in
//! as; nothing here grants access on their strength (Exchange Online checks the access
//! token itself).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use super::error::SigninError;
use super::reply::JsonObject;
use crate::diagnose::{Diagnostic, Severity};

/// The tenant id of personal Microsoft accounts (Outlook.com, Hotmail, Live).
pub const PERSONAL_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Where the Device Email Address is changed on the web panel (seed, S9).
const DEVICE_DETAILS: &str =
    "[Device Details] (or [Description]) dialog box of CentreWare Internet Services";

/// base64url as JWTs use it (RFC 7515 2: no padding); padding is tolerated all the same.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims of the signed-in account that the device uses. Stored with the grant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
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
}

impl Account {
    /// Reads the account from an id_token (a JWS compact serialization) without checking
    /// its signature (see the module's documentation for why that is sound here).
    pub fn from_id_token(id_token: &str) -> Result<Self, SigninError> {
        let mut parts = id_token.split('.');
        let (Some(_header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SigninError::malformed("the id_token is not a signed JWT"));
        };
        let json = BASE64URL
            .decode(payload)
            .map_err(|_| SigninError::malformed("the id_token's payload is not base64url"))?;
        let claims = JsonObject::parse("the id_token's claims", &json)?;
        Ok(Self {
            preferred_username: claims.opt_string("preferred_username")?,
            email: claims.opt_string("email")?,
            upn: claims.opt_string("upn")?,
            oid: claims.opt_string("oid")?,
            tid: claims.opt_string("tid")?,
        })
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
                "Set the Device Email Address to {upn} (setting device-email, in the {DEVICE_DETAILS})."
            ),
        ))
    }
}

/// Enough of an address to tell it from a phone number or a bare name.
fn is_address(value: &str) -> bool {
    value
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
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

    #[test]
    fn the_account_round_trips_through_the_store() {
        let a = Account::from_id_token(&work_id_token()).unwrap();
        let bytes = serde_json::to_vec(&a).unwrap();
        assert_eq!(serde_json::from_slice::<Account>(&bytes).unwrap(), a);
    }
}
