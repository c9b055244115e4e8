//! The identity platform's device code flow (Entra ID, v2.0 endpoints), sans-IO: one
//! HTTP request in, one response out.
//!
//! - `POST /{tenant}/oauth2/v2.0/devicecode` (`client_id`, `scope`) issues a device code;
//! - `POST /{tenant}/oauth2/v2.0/token` redeems it (`grant_type=urn:ietf:params:oauth:
//!   grant-type:device_code`) or refreshes (`grant_type=refresh_token`).
//!
//! Errors are what Microsoft sends: HTTP 400 (401 for `invalid_client`) with
//! `{"error", "error_description": "AADSTSnnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\n
//! Timestamp: …", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}`.
//! The polling rules of RFC 8628 are enforced: a poll sooner than the interval after the
//! previous one gets `slow_down` and the interval grows by 5 s for that code; a code past
//! its lifetime gets `expired_token`. Refresh tokens rotate: each refresh returns a new
//! one and the old one is refused from then on.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::clock::{aad_timestamp, iso_ticks};
use crate::http::{HttpResponse, header};
use crate::random;
use crate::scenario::{Aadsts, Approval, IdTokenFlaw, SlowDown, Stage};
use crate::world::{
    AccessGrant, Account, Decision, DeviceGrant, REFRESH_IDLE_LIMIT, RefreshGrant, State, World,
};

/// The device-code grant type (RFC 8628 3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Largest request body read, in bytes; OAuth forms are a few hundred bytes (a refresh
/// token a few thousand).
pub const MAX_BODY: usize = 64 * 1024;

/// The resource id of Exchange Online, as MFA errors name it.
const EXCHANGE_RESOURCE: &str = "00000002-0000-0ff1-ce00-000000000000";

/// Scopes that shape the id_token rather than name a resource.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// User-code characters: upper-case letters and digits without look-alikes (I, O, 0, 1).
const USER_CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// Answers one HTTP request to the identity platform at time `now` (since the Unix epoch).
/// `path` may carry a query string, which is ignored. Every response carries a `Date`
/// header, as Microsoft's do, on the platform's clock ([`Scenario::clock_offset`]).
///
/// [`Scenario::clock_offset`]: crate::Scenario::clock_offset
pub fn handle_http<K: AsRef<str>, V: AsRef<str>>(
    world: &World,
    method: &str,
    path: &str,
    headers: &[(K, V)],
    body: &[u8],
    now: Duration,
) -> HttpResponse {
    let mut response = answer(world, method, path, headers, body, now);
    let platform_now = platform_clock(now, world.scenario().clock_offset);
    response
        .headers
        .push(("Date".into(), crate::clock::http_date(platform_now)));
    response
}

/// The platform's clock: the true time `now` moved by the scenario's offset (seconds).
fn platform_clock(now: Duration, offset: i64) -> Duration {
    let shift = Duration::from_secs(offset.unsigned_abs());
    if offset >= 0 {
        now.saturating_add(shift)
    } else {
        now.saturating_sub(shift)
    }
}

fn answer<K: AsRef<str>, V: AsRef<str>>(
    world: &World,
    method: &str,
    path: &str,
    headers: &[(K, V)],
    body: &[u8],
    now: Duration,
) -> HttpResponse {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (tenant, endpoint) = match segments.as_slice() {
        [tenant, "oauth2", "v2.0", endpoint]
            if *endpoint == "devicecode" || *endpoint == "token" =>
        {
            (*tenant, *endpoint)
        }
        _ => return HttpResponse::text(404, "Not Found"),
    };
    world.count_request(endpoint);
    if !method.eq_ignore_ascii_case("POST") {
        let method: String = method
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(16)
            .collect();
        return error_reply(
            "invalid_request",
            900561,
            &format!("The endpoint only accepts POST requests. Received a {method} request."),
            now,
        );
    }
    if body.len() > MAX_BODY {
        return HttpResponse::text(413, "Payload Too Large");
    }
    if !valid_tenant(tenant) {
        return error_reply(
            "invalid_request",
            90002,
            &format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
                shown(tenant)
            ),
            now,
        );
    }
    // A body that is not a form (or has no content type) cannot be read, so every
    // parameter is missing (AADSTS900144), as at Microsoft.
    let is_form = header(headers, "content-type").is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    let form = match Form::parse(if is_form { body } else { b"" }) {
        Ok(form) => form,
        Err(duplicate) => {
            return error_reply(
                "invalid_request",
                9000411,
                &format!(
                    "The request is not properly formatted. The parameter '{}' is duplicated.",
                    shown(&duplicate)
                ),
                now,
            );
        }
    };
    if endpoint == "token"
        && let Some(hook) = world.take_token_hook()
    {
        hook();
    }
    let mut state = world.lock();
    match endpoint {
        "devicecode" => device_code(&mut state, tenant, &form, now),
        _ => token(&mut state, tenant, &form, now),
    }
}

/// The form parameters of a request.
struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `application/x-www-form-urlencoded`; `Err(name)` for a repeated parameter.
    fn parse(body: &[u8]) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(k.into_owned());
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// A parameter that is present and not empty.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// `common`, `organizations`, `consumers`, a tenant id or a domain name.
fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 253
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && (matches!(tenant, "common" | "organizations" | "consumers")
            || is_guid(tenant)
            || tenant.contains('.'))
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A client-supplied value made safe to quote in a description: printable ASCII, short.
fn shown(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect()
}

/// An error reply in Microsoft's shape. `invalid_client` gets 401, everything else 400.
pub fn error_reply(error: &str, code: u32, text: &str, now: Duration) -> HttpResponse {
    let trace_id = random::uuid();
    let correlation_id = random::uuid();
    let timestamp = aad_timestamp(now);
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let status = if error == "invalid_client" { 401 } else { 400 };
    HttpResponse::json(status, &body, &trace_id)
}

fn missing(parameter: &str, now: Duration) -> HttpResponse {
    error_reply(
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{parameter}'."),
        now,
    )
}

/// AADSTS700016 when a registered client id is configured and another one is used.
fn unknown_client(
    state: &State,
    client_id: &str,
    tenant: &str,
    now: Duration,
) -> Option<HttpResponse> {
    let registered = state.settings.client_id.as_deref()?;
    (registered != client_id).then(|| {
        error_reply(
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                shown(client_id),
                shown(tenant)
            ),
            now,
        )
    })
}

/// The description of a scenario refusal, in Microsoft's words.
fn refusal_text(
    failure: Aadsts,
    state: &State,
    client_id: &str,
    issued: Duration,
    now: Duration,
) -> String {
    let app = &state.settings.app_name;
    let client = shown(client_id);
    match failure {
        Aadsts::ConditionalAccess53003 => {
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.".into()
        }
        Aadsts::DeviceCodeFlowBlocked530033 => {
            "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance with the device code flow (Block Device Code Flow).".into()
        }
        Aadsts::ConsentRequired65001 => format!(
            "The user or administrator has not consented to use the application with ID '{client}' named '{app}'. Send an interactive authorization request for this user and resource."
        ),
        Aadsts::MfaRequired50076 => format!(
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{EXCHANGE_RESOURCE}'."
        ),
        Aadsts::MfaEnrollment50079 => format!(
            "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '{EXCHANGE_RESOURCE}'."
        ),
        Aadsts::RefreshTokenInactive700082 => format!(
            "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for 90.00:00:00.",
            iso_ticks(issued)
        ),
        Aadsts::GrantRevoked50173 => format!(
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
            iso_ticks(issued),
            iso_ticks(now)
        ),
        Aadsts::SingleTenantOnCommon50194 => format!(
            "Application '{client}'({app}) is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant."
        ),
        Aadsts::NotPublicClient7000218 => {
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into()
        }
    }
}

fn refusal(
    failure: Aadsts,
    state: &State,
    client_id: &str,
    issued: Duration,
    now: Duration,
) -> HttpResponse {
    let text = refusal_text(failure, state, client_id, issued, now);
    error_reply(failure.error(), failure.code(), &text, now)
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
fn device_code(state: &mut State, tenant: &str, form: &Form, now: Duration) -> HttpResponse {
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id", now);
    };
    if let Some(reply) = unknown_client(state, client_id, tenant, now) {
        return reply;
    }
    let Some(scope) = form.get("scope") else {
        return missing("scope", now);
    };
    if let Some(reply) = unregistered_scope(state, scope, now) {
        return reply;
    }
    if state.scenario.failure == Some(Aadsts::SingleTenantOnCommon50194)
        && matches!(tenant, "common" | "organizations" | "consumers")
    {
        return refusal(
            Aadsts::SingleTenantOnCommon50194,
            state,
            client_id,
            now,
            now,
        );
    }
    let settings = &state.settings;
    let verification_uri = if state.scenario.insecure_verification_uri {
        crate::scenario::INSECURE_VERIFICATION_URI
    } else {
        settings.verification_uri.as_str()
    };
    let device_code = format!("DAQABIQEAAAD{}", random::base64url(180));
    let user_code = random::chars(9, USER_CODE_ALPHABET);
    let body = json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": settings.code_lifetime,
        "interval": settings.interval,
        "message": format!(
            "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
            verification_uri, user_code
        ),
    });
    let grant = DeviceGrant {
        user_code,
        client_id: client_id.into(),
        tenant: tenant.into(),
        scope: scope.chars().take(2048).collect(),
        issued: now,
        expires: now + Duration::from_secs(settings.code_lifetime),
        interval: settings.interval,
        last_poll: None,
        pending_polls: 0,
        slowed_once: false,
        decision: Decision::Pending,
    };
    state.insert_device(device_code, grant, now);
    HttpResponse::json(200, &body, &random::uuid())
}

/// AADSTS70011 unless `scope` is the registered application's scope set (any order, as
/// a set); see [`crate::Settings::scope`].
fn unregistered_scope(state: &State, scope: &str, now: Duration) -> Option<HttpResponse> {
    let registered = state.settings.scope.as_deref()?;
    let set = |s: &str| {
        let mut v: Vec<String> = s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    (set(scope) != set(registered)).then(|| {
        error_reply(
            "invalid_scope",
            70011,
            &format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope '{}' is not valid. The application asks for '{registered}'.",
                shown(scope)
            ),
            now,
        )
    })
}

/// `POST /{tenant}/oauth2/v2.0/token`.
fn token(state: &mut State, tenant: &str, form: &Form, now: Duration) -> HttpResponse {
    let Some(grant_type) = form.get("grant_type") else {
        return missing("grant_type", now);
    };
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id", now);
    };
    if let Some(reply) = unknown_client(state, client_id, "common", now) {
        return reply;
    }
    match grant_type {
        DEVICE_CODE_GRANT => poll(state, tenant, form, client_id, now),
        "refresh_token" => refresh(state, form, client_id, now),
        other => error_reply(
            "unsupported_grant_type",
            70003,
            &format!(
                "The app requested an unsupported grant type '{}'.",
                shown(other)
            ),
            now,
        ),
    }
}

/// A device-code poll (RFC 8628 3.4–3.5). The code is redeemed only by the client it was
/// issued to, at the tenant it was issued for: anything else does not find it.
fn poll(
    state: &mut State,
    tenant: &str,
    form: &Form,
    client_id: &str,
    now: Duration,
) -> HttpResponse {
    let Some(code) = form.get("device_code") else {
        return missing("device_code", now);
    };
    if state.scenario.failure == Some(Aadsts::NotPublicClient7000218) {
        return refusal(Aadsts::NotPublicClient7000218, state, client_id, now, now);
    }
    let scenario = state.scenario.clone();
    let Some(grant) = state
        .device
        .get_mut(code)
        .filter(|g| g.client_id == client_id && g.tenant.eq_ignore_ascii_case(tenant))
    else {
        return error_reply(
            "bad_verification_code",
            70000,
            "The provided value for the input parameter 'device_code' is not valid.",
            now,
        );
    };
    if grant.expires <= now || scenario.approval == Approval::Expire {
        state.device.remove(code);
        return error_reply(
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            now,
        );
    }
    // Whole seconds, as devices count: a poll at the interval's second is in time.
    let too_soon = grant
        .last_poll
        .is_some_and(|last| now.as_secs().saturating_sub(last.as_secs()) < grant.interval);
    let scripted = match scenario.slow_down {
        SlowDown::Never => false,
        SlowDown::Once => !grant.slowed_once,
        SlowDown::Always => true,
    };
    grant.last_poll = Some(now);
    if too_soon || scripted {
        grant.slowed_once = true;
        grant.interval = grant.interval.saturating_add(5);
        return error_reply(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Polling too frequently: slow down and wait at least the interval between requests.",
            now,
        );
    }
    if scenario.approval == Approval::Decline {
        grant.decision = Decision::Declined;
    }
    if let (Approval::AfterPolls(n), Decision::Pending) = (scenario.approval, &grant.decision)
        && grant.pending_polls >= n
    {
        grant.decision = Decision::Approved(state_default_account(&state.accounts));
    }
    match grant.decision.clone() {
        Decision::Pending => {
            grant.pending_polls = grant.pending_polls.saturating_add(1);
            error_reply(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                now,
            )
        }
        Decision::Declined => {
            state.device.remove(code);
            error_reply(
                "authorization_declined",
                70000,
                "The user has declined the authorization request.",
                now,
            )
        }
        Decision::Approved(account) => {
            let Some(grant) = state.device.remove(code) else {
                return HttpResponse::text(500, "Internal Server Error");
            };
            if let Some(failure) = scenario.failure.filter(|f| f.stage() == Stage::Poll) {
                return refusal(failure, state, client_id, grant.issued, now);
            }
            issue_tokens(state, &account, client_id, &grant.scope, now, now)
        }
    }
}

fn state_default_account(accounts: &[Account]) -> Account {
    accounts
        .first()
        .cloned()
        .unwrap_or_else(|| Account::for_kind(crate::scenario::AccountKind::Work))
}

/// `grant_type=refresh_token`: a new access token and a new refresh token; the old
/// refresh token is refused from now on.
fn refresh(state: &mut State, form: &Form, client_id: &str, now: Duration) -> HttpResponse {
    let Some(token) = form.get("refresh_token") else {
        return missing("refresh_token", now);
    };
    let invalid = |now| {
        error_reply(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
            now,
        )
    };
    let Some(grant) = state.refresh.get(token).cloned() else {
        return invalid(now);
    };
    if grant.client_id != client_id {
        return invalid(now);
    }
    if grant.rotated && state.settings.single_use_refresh_tokens {
        return error_reply(
            "invalid_grant",
            70000,
            "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid. The refresh token has already been redeemed.",
            now,
        );
    }
    if let Some(failure) = state
        .scenario
        .failure
        .filter(|f| f.stage() == Stage::Refresh)
    {
        state.refresh.remove(token);
        return refusal(failure, state, client_id, grant.first_issued, now);
    }
    if now.saturating_sub(grant.issued) >= REFRESH_IDLE_LIMIT {
        state.refresh.remove(token);
        return refusal(
            Aadsts::RefreshTokenInactive700082,
            state,
            client_id,
            grant.issued,
            now,
        );
    }
    if let Some(old) = state.refresh.get_mut(token) {
        old.rotated = true;
    }
    issue_tokens(
        state,
        &grant.account,
        client_id,
        &grant.scope,
        grant.first_issued,
        now,
    )
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// The success reply: access token (always more than 2,500 bytes, as Microsoft's are),
/// a refresh token with `offline_access`, an id_token with `openid`.
fn issue_tokens(
    state: &mut State,
    account: &Account,
    client_id: &str,
    scope: &str,
    first_issued: Duration,
    now: Duration,
) -> HttpResponse {
    let requested: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    let has = |s: &str| requested.iter().any(|r| r.eq_ignore_ascii_case(s));
    let resource: Vec<&str> = requested
        .iter()
        .copied()
        .filter(|s| !OIDC_SCOPES.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .collect();
    let granted = if resource.is_empty() {
        "openid".to_string()
    } else {
        resource.join(" ")
    };
    let expires_in = state
        .settings
        .access_token_lifetime
        .unwrap_or_else(|| random::between(3600, 5400));
    let kid = random::base64url(20);
    let access_token = format!(
        "{}.{}.{}",
        b64(
            &json!({"typ": "JWT", "nonce": random::base64url(32), "alg": "RS256", "x5t": kid, "kid": kid})
        ),
        random::base64url(random::between(1900, 2300) as usize),
        random::base64url(256)
    );
    state.insert_access(
        access_token.clone(),
        AccessGrant {
            account: account.clone(),
            scope: granted.clone(),
            expires: now + Duration::from_secs(expires_in),
        },
        now,
    );
    let mut body = json!({
        "token_type": "Bearer",
        "scope": granted,
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    });
    if has("offline_access") {
        let refresh_token = format!("1.AQ{}", random::base64url(720));
        state.insert_refresh(
            refresh_token.clone(),
            RefreshGrant {
                account: account.clone(),
                client_id: client_id.into(),
                scope: scope.into(),
                first_issued,
                issued: now,
                rotated: false,
            },
            now,
        );
        body["refresh_token"] = refresh_token.into();
    }
    if has("openid") {
        let issued = platform_clock(now, state.scenario.clock_offset);
        let token = id_token(account, client_id, has("profile"), has("email"), issued);
        body["id_token"] = flawed(&token, state.scenario.id_token).into();
    }
    HttpResponse::json(200, &body, &random::uuid())
}

/// An id_token that looks like Microsoft's (RS256 header, v2.0 claims) but is not signed:
/// clients read its claims and never verify it (they got it over TLS from the token
/// endpoint).
pub fn id_token(
    account: &Account,
    client_id: &str,
    profile: bool,
    email: bool,
    now: Duration,
) -> String {
    let iat = now.as_secs();
    let mut claims = Map::new();
    claims.insert("aud".into(), client_id.into());
    claims.insert(
        "iss".into(),
        format!("https://login.microsoftonline.com/{}/v2.0", account.tid).into(),
    );
    claims.insert("iat".into(), iat.into());
    claims.insert("nbf".into(), iat.into());
    claims.insert(
        "exp".into(),
        (iat + crate::scenario::ID_TOKEN_LIFETIME_SECS).into(),
    );
    if email && account.email_claim {
        claims.insert("email".into(), account.primary.clone().into());
    }
    if profile {
        claims.insert("name".into(), account.name.clone().into());
        claims.insert("preferred_username".into(), account.upn.clone().into());
    }
    claims.insert("oid".into(), account.oid.clone().into());
    claims.insert("sub".into(), random::base64url(32).into());
    claims.insert("tid".into(), account.tid.clone().into());
    if account.upn_claim {
        claims.insert("upn".into(), account.upn.clone().into());
    }
    claims.insert("uti".into(), random::base64url(16).into());
    claims.insert("ver".into(), "2.0".into());
    format!(
        "{}.{}.{}",
        b64(&json!({"typ": "JWT", "alg": "RS256", "kid": random::base64url(20)})),
        b64(&Value::Object(claims)),
        random::base64url(256)
    )
}

/// `token` with the scenario's flaw: its claims changed, its header and signature kept.
fn flawed(token: &str, flaw: IdTokenFlaw) -> String {
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return token.to_owned();
    };
    let Some(mut claims) = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
    else {
        return token.to_owned();
    };
    match flaw {
        IdTokenFlaw::None => return token.to_owned(),
        // Microsoft Graph's application id: a token for another application.
        IdTokenFlaw::WrongAudience => claims["aud"] = "00000003-0000-0000-c000-000000000000".into(),
        IdTokenFlaw::WrongTenant => claims["tid"] = crate::scenario::OTHER_TENANT.into(),
        IdTokenFlaw::Expired => {
            for (claim, back) in [("iat", 7200), ("nbf", 7200), ("exp", 7200)] {
                let t = claims[claim].as_u64().unwrap_or_default();
                claims[claim] = t.saturating_sub(back).into();
            }
        }
    }
    format!("{header}.{}.{signature}", b64(&claims))
}

#[cfg(test)]
mod tests;
