//! Administrator consent on Microsoft Entra ID (rule S10). Before the device can sign in
//! with a work or school account, a Global Administrator of the tenant consents, once per
//! tenant, to the application reading basic account information and sending mail. The
//! seed gives the URL to open; personal Microsoft accounts (Outlook.com) need no consent.

use super::SigninConfig;
use super::id_token::Account;
use crate::diagnose::{Diagnostic, Severity};
use crate::storage::{RecordVersion, records};

/// The store key of the [`ConsentRecord`]: outside the grant keys, so a sign-out or an S4
/// reset (which delete the grant) keep it. Entra ID keeps a tenant's consent whatever the
/// device does; the device remembers it as long.
pub const CONSENT_KEY: &str = "consent/v1";

/// Tenants remembered at most; past it the oldest goes (a device signs in to a handful).
const MAX_REMEMBERED: usize = 64;

/// One tenant the application was consented to, proven by a work or school sign-in there.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct Consented {
    /// The application that signed in: consent is per application and tenant.
    pub client_id: String,
    /// The tenant id (`tid`) of the account that signed in.
    pub tenant_id: String,
    /// The `tenant` setting it signed in with (`common`, a domain, a tenant id), so a
    /// domain setting is recognised too.
    pub tenant_setting: String,
}

/// S10: the tenants this device has signed in to with a work or school account, stored
/// under [`CONSENT_KEY`]. Consent is needed once per tenant: such a sign-in proves it was
/// given, so the device does not ask for it again there, also after a sign-out.
/// A stored record without `tenants` has none ([`crate::storage::Record::defaults`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct ConsentRecord {
    /// The record's layout (see [`crate::storage::records`]).
    pub version: RecordVersion<{ records::CONSENT }>,
    pub tenants: Vec<Consented>,
}

impl ConsentRecord {
    /// Remembers the sign-in of `account` made with `config`; `false` when nothing changed
    /// (already known, or a personal account, which needs no consent).
    pub fn remember(&mut self, config: &SigninConfig, account: &Account) -> bool {
        let Some(tid) = account
            .tid
            .as_deref()
            .filter(|_| consent_applies_to(account))
        else {
            return false;
        };
        let entry = Consented {
            client_id: config.client_id.to_ascii_lowercase(),
            tenant_id: tid.to_ascii_lowercase(),
            tenant_setting: config.tenant.to_ascii_lowercase(),
        };
        if self.tenants.contains(&entry) {
            return false;
        }
        if self.tenants.len() >= MAX_REMEMBERED {
            self.tenants.remove(0);
        }
        self.tenants.push(entry);
        true
    }

    /// The remembered sign-in that shows `config`'s tenant already consented to its
    /// application: the same tenant id, or the same tenant domain; for `common` and
    /// `organizations`, any work or school tenant this device signed in to (the one an
    /// administrator signs in with again).
    pub fn covering(&self, config: &SigninConfig) -> Option<&Consented> {
        let tenant = config.tenant.to_ascii_lowercase();
        let same_app = |c: &&Consented| c.client_id.eq_ignore_ascii_case(&config.client_id);
        let mut mine = self.tenants.iter().rev().filter(same_app);
        match tenant.as_str() {
            "common" | "organizations" => mine.next(),
            _ => mine.find(|c| c.tenant_id == tenant || c.tenant_setting == tenant),
        }
    }
}

/// The tenant segment of the consent URL. Consent is granted by an organization, so
/// `consumers` (personal accounts only, where consent is never needed) becomes `common`,
/// as in the seed; any other tenant is kept, so a single-tenant registration works too.
pub fn consent_tenant(tenant: &str) -> &str {
    if tenant.eq_ignore_ascii_case("consumers") || tenant.is_empty() {
        "common"
    } else {
        tenant
    }
}

/// S10: `{authority}/{tenant-or-common}/adminconsent?client_id=…&redirect_uri=…`, the seed's
/// URL for the seed's defaults. The query is form-encoded, so the redirect URI appears
/// percent-encoded; browsers and the identity platform decode it to the seed's value.
pub fn admin_consent_url(config: &SigninConfig) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", &config.consent_redirect_uri)
        .finish();
    format!(
        "{}/{}/adminconsent?{query}",
        config.authority.trim_end_matches('/'),
        consent_tenant(&config.tenant)
    )
}

/// S10: whether the administrator-consent step applies to `account`: not for personal
/// Microsoft accounts (Outlook.com), where the seed says it is not needed.
pub fn consent_applies_to(account: &Account) -> bool {
    !account.is_personal()
}

/// S10: the consent step to show before sign-in, or `None` when it does not apply: the
/// tenant is `consumers` (personal accounts only), or `signed_in` is an account of the
/// tenant that already signed in (consent is needed once per tenant, and a successful
/// work-account sign-in proves it was given) or a personal account.
pub fn consent_notice(config: &SigninConfig, signed_in: Option<&Account>) -> Option<Diagnostic> {
    if config.tenant.eq_ignore_ascii_case("consumers") || signed_in.is_some() {
        return None;
    }
    Some(Diagnostic::new(
        "admin-consent",
        Severity::Info,
        "To send with an Exchange Online (work or school) address, a Global Administrator of the tenant must first consent to the application reading basic account information and sending email. Once per tenant; not needed for Outlook.com.",
        format!(
            "Open {} in a browser, log in as a Global Administrator, confirm and click [Accept], and close the browser when consent succeeded.",
            admin_consent_url(config)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DEFAULT_CLIENT_ID, DEFAULT_CONSENT_REDIRECT_URI, Settings};
    use crate::signin::DEFAULT_AUTHORITY;

    /// The URL printed in the seed, step 1 of "Administrator Consent on Microsoft Entra ID".
    const SEED_URL: &str = "https://login.microsoftonline.com/common/adminconsent?client_id=c88859d7-e6a2-48cb-acee-669df3387654&redirect_uri=https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html";

    fn split(url: &str) -> (&str, Vec<(String, String)>) {
        let (base, query) = url.split_once('?').unwrap();
        (
            base,
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    #[test]
    fn default_settings_give_the_seeds_consent_url() {
        let config = SigninConfig::from_settings(&Settings::default(), DEFAULT_AUTHORITY);
        let url = admin_consent_url(&config);
        assert_eq!(split(&url), split(SEED_URL));
        let (base, query) = split(&url);
        assert_eq!(
            base,
            "https://login.microsoftonline.com/common/adminconsent"
        );
        assert_eq!(
            query,
            [
                ("client_id".to_owned(), DEFAULT_CLIENT_ID.to_owned()),
                (
                    "redirect_uri".to_owned(),
                    DEFAULT_CONSENT_REDIRECT_URI.to_owned()
                ),
            ]
        );
        assert_eq!(
            query[1].1,
            "https://opencds-fb.fujifilm.com/gen/mfp_aux/adminConsent.html"
        );
    }

    #[test]
    fn configured_tenant_client_and_redirect_are_used() {
        let config = SigninConfig {
            authority: "https://login.example.test/".into(),
            tenant: "contoso.onmicrosoft.com".into(),
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            consent_redirect_uri: "https://example.test/consent?x=1&y=2".into(),
        };
        let url = admin_consent_url(&config);
        let (base, query) = split(&url);
        assert_eq!(
            base,
            "https://login.example.test/contoso.onmicrosoft.com/adminconsent"
        );
        assert_eq!(query[0].1, "11111111-2222-3333-4444-555555555555");
        assert_eq!(query[1].1, "https://example.test/consent?x=1&y=2");
        assert_eq!(
            query.len(),
            2,
            "the redirect URI's own query stays inside it"
        );
    }

    #[test]
    fn consumers_tenant_consents_through_common() {
        assert_eq!(consent_tenant("consumers"), "common");
        assert_eq!(consent_tenant("organizations"), "organizations");
    }

    #[test]
    fn consent_notice_is_shown_for_work_tenants_until_someone_signed_in() {
        let config = SigninConfig::default();
        let notice = consent_notice(&config, None).unwrap();
        assert_eq!(notice.code, "admin-consent");
        assert!(notice.remedy.contains("/common/adminconsent?client_id="));
        assert!(notice.message.contains("not needed for Outlook.com"));
        let consumers = SigninConfig {
            tenant: "consumers".into(),
            ..SigninConfig::default()
        };
        assert!(consent_notice(&consumers, None).is_none());
    }

    #[test]
    fn consent_is_remembered_per_application_and_tenant() {
        let tenant_a = "3c7b4f2e-91d5-4a8c-b6e0-7f2d1a9c5e48";
        let tenant_b = "0b5e7f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        let config = |tenant: &str| SigninConfig {
            tenant: tenant.into(),
            ..SigninConfig::default()
        };
        let work = Account {
            tid: Some(tenant_a.to_uppercase()),
            ..Account::default()
        };
        let mut record = ConsentRecord::default();
        for tenant in ["common", "organizations", tenant_a, tenant_b, "contoso.com"] {
            assert_eq!(record.covering(&config(tenant)), None, "{tenant}");
        }
        assert!(record.remember(&config("contoso.com"), &work));
        assert!(
            !record.remember(&config("contoso.com"), &work),
            "known already"
        );
        assert_eq!(record.tenants.len(), 1);
        for tenant in ["common", "organizations", tenant_a, "Contoso.com"] {
            let known = record.covering(&config(tenant)).unwrap();
            assert_eq!(known.tenant_id, tenant_a, "{tenant}");
        }
        assert_eq!(record.covering(&config(tenant_b)), None, "another tenant");
        assert_eq!(
            record.covering(&config("fabrikam.com")),
            None,
            "another domain"
        );
        let other_app = SigninConfig {
            client_id: "11111111-2222-3333-4444-555555555555".into(),
            ..config(tenant_a)
        };
        assert_eq!(
            record.covering(&other_app),
            None,
            "consent is per application"
        );
        // Personal accounts need no consent and are not remembered.
        let personal = Account {
            tid: Some(crate::signin::id_token::PERSONAL_TENANT_ID.into()),
            ..Account::default()
        };
        assert!(!record.remember(&config("common"), &personal));
        // The record is bounded.
        for i in 0..100u32 {
            let account = Account {
                tid: Some(format!("00000000-0000-0000-0000-{i:012}")),
                ..Account::default()
            };
            record.remember(&config("common"), &account);
        }
        assert_eq!(record.tenants.len(), MAX_REMEMBERED);
        assert_eq!(record.covering(&config(tenant_a)), None, "the oldest went");
    }

    #[test]
    fn personal_accounts_need_no_consent() {
        let personal = Account {
            preferred_username: Some("someone@outlook.com".into()),
            tid: Some(crate::signin::id_token::PERSONAL_TENANT_ID.into()),
            ..Account::default()
        };
        assert!(!consent_applies_to(&personal));
        let work = Account {
            tid: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
            ..Account::default()
        };
        assert!(consent_applies_to(&work));
        assert!(consent_notice(&SigninConfig::default(), Some(&personal)).is_none());
    }
}
