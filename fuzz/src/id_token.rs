//! The id_token (`signin::id_token`): the account a sign-in names, and the checks of its
//! audience, tenant, issuer and times.
//!
//! Input: an options byte (tenant setting, the `Date` header; bit 3 takes the rest as the
//! whole token instead of its claims), then the claims JSON, which is wrapped in a JWT
//! (`header.base64url(claims).signature`) so the fuzzer works on the JSON directly.
//!
//! Invariants: a token the checks accept is issued to this client, in a tenant that fits
//! the setting, by that tenant's v2.0 issuer, and is not expired; the checked and
//! unchecked readings agree; the account survives the store; an address taken
//! from the claims (it becomes the Device Email Address) holds no control character or
//! space; no message holds a control character.

use mfp_smtp_oauth::signin::Account;
use mfp_smtp_oauth::signin::clock::CLOCK_LEEWAY;
use mfp_smtp_oauth::signin::id_token::{Expected, PERSONAL_TENANT_ID, tenant_fits};
use mfp_smtp_oauth::storage;
use serde_json::Value;

use super::support::{base64url, has_control};
use super::token_reply::{CLIENT_ID, NOW, config, server_now};

pub fn run(data: &[u8]) {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let token = if options & 8 != 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        format!(
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            base64url(rest)
        )
    };
    let config = config(options);
    let expected = Expected {
        client_id: CLIENT_ID,
        tenant: &config.tenant,
        now: NOW,
        server_now: server_now(options),
    };
    let unchecked = Account::from_id_token(&token);
    match Account::from_checked_id_token(&token, &expected) {
        Ok(account) => {
            let plain = unchecked.expect("a checked token that cannot be read");
            assert_eq!(
                Account {
                    clock_skew: None,
                    ..account.clone()
                },
                plain
            );
            let claims = claims(&token).expect("accepted claims are a JSON object");
            check_accepted(&claims, &account, &config.tenant);
        }
        Err(err) => {
            assert!(!has_control(&err.message), "control character in {err:?}");
        }
    }
    if let Ok(account) = Account::from_id_token(&token) {
        check_account(&account);
    }
}

fn claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let json = super::support::base64_decode(payload)?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn check_accepted(claims: &serde_json::Map<String, Value>, account: &Account, tenant: &str) {
    let fits = |aud: &str| aud.eq_ignore_ascii_case(CLIENT_ID);
    match claims.get("aud") {
        Some(Value::String(aud)) => assert!(fits(aud)),
        Some(Value::Array(all)) => assert!(all.iter().filter_map(Value::as_str).any(fits)),
        other => panic!("accepted with aud {other:?}"),
    }
    let tid = account.tid.as_deref().expect("accepted without a tenant");
    assert!(tenant_fits(tenant, tid));
    assert_eq!(
        account.is_personal(),
        tid.eq_ignore_ascii_case(PERSONAL_TENANT_ID)
    );
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let issuer_tenant = iss
        .strip_prefix("https://")
        .and_then(|r| r.split_once('/'))
        .map(|(_, path)| path);
    assert_eq!(
        issuer_tenant.map(str::to_ascii_lowercase),
        Some(format!("{}/v2.0", tid.to_ascii_lowercase())),
        "issuer {iss:?} accepted"
    );
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|t| t as u64)),
        _ => None,
    }
    .expect("accepted without exp");
    assert!(
        exp.saturating_add(CLOCK_LEEWAY) > NOW,
        "an expired token accepted"
    );
}

fn check_account(account: &Account) {
    let stored = storage::encode(account);
    assert_eq!(
        storage::decode::<Account>(storage::ACCOUNT_KEY, &stored)
            .ok()
            .as_ref(),
        Some(account)
    );
    for address in [account.device_email_address(), account.upn()]
        .into_iter()
        .flatten()
    {
        assert!(address.contains('@'));
        assert!(
            !address.chars().any(|c| c.is_control() || c.is_whitespace()),
            "an address from the claims with a control character or space: {address:?}"
        );
    }
    for warning in account.warnings("scanner@contoso.com") {
        assert!(
            !has_control(&warning.message),
            "control character in {warning:?}"
        );
    }
}
