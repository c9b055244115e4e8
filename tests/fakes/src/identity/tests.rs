//! The identity fake answers as Microsoft does; each test states one rule.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::*;
use crate::Scenario;
use crate::scenario::{AccountKind, Case};

const T0: Duration = Duration::from_secs(1_718_006_400);
const SCOPE: &str = "https://outlook.office.com/SMTP.Send offline_access openid profile email";
const CLIENT: &str = "9e5f94bc-e8a4-4e73-b8be-63364c29d753";
const FORM: [(&str, &str); 1] = [("content-type", "application/x-www-form-urlencoded")];

fn at(secs: u64) -> Duration {
    T0 + Duration::from_secs(secs)
}

fn post(world: &World, path: &str, form: &[(&str, &str)], now: Duration) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let reply = handle_http(world, "POST", path, &FORM, body.as_bytes(), now);
    (reply.status, reply.json_body().unwrap_or(Value::Null))
}

fn start(world: &World, tenant: &str, now: Duration) -> (u16, Value) {
    post(
        world,
        &format!("/{tenant}/oauth2/v2.0/devicecode"),
        &[("client_id", CLIENT), ("scope", SCOPE)],
        now,
    )
}

fn poll_code(world: &World, device_code: &str, now: Duration) -> (u16, Value) {
    post(
        world,
        "/common/oauth2/v2.0/token",
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", CLIENT),
            ("device_code", device_code),
        ],
        now,
    )
}

fn refresh_with(world: &World, token: &str, now: Duration) -> (u16, Value) {
    post(
        world,
        "/common/oauth2/v2.0/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT),
            ("refresh_token", token),
        ],
        now,
    )
}

fn error_of(reply: &(u16, Value)) -> (&str, u64) {
    (
        reply.1["error"].as_str().unwrap_or(""),
        reply.1["error_codes"][0].as_u64().unwrap_or(0),
    )
}

/// Signs in through `world` (whose scenario must approve on its own or manually) and
/// returns the token reply.
fn sign_in(world: &World) -> Value {
    let (_, code) = start(world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default().to_string();
    let _ = world.approve(code["user_code"].as_str().unwrap_or_default(), T0);
    let reply = poll_code(world, &device_code, at(5));
    assert_eq!(reply.0, 200, "{}", reply.1);
    reply.1
}

fn claims(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
        .unwrap_or(Value::Null)
}

#[test]
fn device_code_reply_has_microsofts_fields_and_the_configured_uri() {
    let world = World::new(Scenario::default());
    world.update_settings(|s| s.verification_uri = "http://127.0.0.1:8080/approve".into());
    let (status, body) = start(&world, "common", T0);
    assert_eq!(status, 200);
    let user_code = body["user_code"].as_str().unwrap_or_default();
    assert_eq!(user_code.len(), 9);
    assert!(body["device_code"].as_str().unwrap_or_default().len() > 100);
    assert_eq!(body["verification_uri"], "http://127.0.0.1:8080/approve");
    assert_eq!(
        (body["expires_in"].as_u64(), body["interval"].as_u64()),
        (Some(900), Some(5))
    );
    assert_eq!(
        body["message"],
        format!(
            "To sign in, use a web browser to open the page http://127.0.0.1:8080/approve and enter the code {user_code} to authenticate."
        )
    );
}

#[test]
fn pending_poll_is_http_400_in_microsofts_error_shape() {
    let world = World::new(Scenario::default());
    let (_, code) = start(&world, "common", T0);
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(5),
    );
    assert_eq!(reply.0, 400);
    assert_eq!(error_of(&reply), ("authorization_pending", 70016));
    let description = reply.1["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with("AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.\r\nTrace ID: "));
    assert!(
        description.contains("\r\nCorrelation ID: ")
            && description.ends_with("Timestamp: 2024-06-10 08:00:05Z")
    );
    assert_eq!(reply.1["timestamp"], "2024-06-10 08:00:05Z");
    assert_eq!(
        reply.1["error_uri"],
        "https://login.microsoftonline.com/error?code=70016"
    );
    assert_eq!(reply.1["trace_id"].as_str().map(str::len), Some(36));
}

#[test]
fn approve_after_n_polls_grants_tokens_on_the_next_poll() {
    let world = World::new(Scenario {
        approval: Approval::AfterPolls(2),
        ..Scenario::default()
    });
    let (_, code) = start(&world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default();
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(5))).0,
        "authorization_pending"
    );
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(10))).0,
        "authorization_pending"
    );
    let (status, tokens) = poll_code(&world, device_code, at(15));
    assert_eq!(status, 200);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "https://outlook.office.com/SMTP.Send");
    let expires_in = tokens["expires_in"].as_u64().unwrap_or(0);
    assert!((3600..=5400).contains(&expires_in));
    assert_eq!(tokens["ext_expires_in"].as_u64(), Some(expires_in));
    assert!(tokens["access_token"].as_str().unwrap_or_default().len() > 2500);
    assert!(
        !tokens["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    // A redeemed code is gone.
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(20))).0,
        "bad_verification_code"
    );
}

#[test]
fn id_token_carries_the_accounts_claims() {
    let world = World::new(Scenario::default());
    let tokens = sign_in(&world);
    let c = claims(tokens["id_token"].as_str().unwrap_or_default());
    assert_eq!(c["preferred_username"], "mfp@contoso.com");
    assert_eq!(c["email"], "mfp@contoso.com");
    assert_eq!(c["upn"], "mfp@contoso.com");
    assert_eq!(c["aud"], CLIENT);
    assert_eq!(c["tid"], crate::world::WORK_TENANT);
    assert_eq!(
        c["iss"],
        format!(
            "https://login.microsoftonline.com/{}/v2.0",
            crate::world::WORK_TENANT
        )
    );
    assert_eq!(c["iat"].as_u64(), Some(at(5).as_secs()));
    assert_eq!(c["exp"].as_u64(), Some(at(5).as_secs() + 3600));
    assert!(c["oid"].is_string() && c["name"].is_string());
}

#[test]
fn primary_address_mismatch_shows_in_the_email_claim() {
    let world = World::for_case(Case::PrimaryDiffersFromUpn);
    let c = claims(sign_in(&world)["id_token"].as_str().unwrap_or_default());
    assert_eq!(c["preferred_username"], "mfp@contoso.onmicrosoft.com");
    assert_eq!(c["email"], "scanner@contoso.com");
}

#[test]
fn email_claim_is_omitted_when_the_scenario_says_so() {
    let world = World::for_case(Case::NoEmailClaim);
    let c = claims(sign_in(&world)["id_token"].as_str().unwrap_or_default());
    assert!(c.get("email").is_none());
    assert_eq!(c["preferred_username"], "mfp@contoso.com");
}

#[test]
fn personal_accounts_have_the_consumer_tenant_id() {
    let world = World::for_case(Case::PersonalAccount);
    let c = claims(sign_in(&world)["id_token"].as_str().unwrap_or_default());
    assert_eq!(c["tid"], crate::PERSONAL_TENANT);
    assert_eq!(
        world.accounts()[0],
        crate::Account::for_kind(AccountKind::Personal)
    );
}

#[test]
fn polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval() {
    let world = World::new(Scenario::default());
    let (_, code) = start(&world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default();
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(5))).0,
        "authorization_pending"
    );
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(9))),
        ("slow_down", 70016)
    );
    // The interval is now 10 s: 5 s later is still too soon, 10 s later is fine.
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(14))).0,
        "slow_down"
    );
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(29))).0,
        "authorization_pending"
    );
}

#[test]
fn slow_down_once_answers_only_the_first_poll() {
    let world = World::for_case(Case::SlowDownOnce);
    let (_, code) = start(&world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default();
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(5))).0,
        "slow_down"
    );
    assert_eq!(
        error_of(&poll_code(&world, device_code, at(15))).0,
        "authorization_pending"
    );
}

#[test]
fn slow_down_always_answers_every_poll() {
    let world = World::for_case(Case::SlowDownAlways);
    let (_, code) = start(&world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default();
    for secs in [5, 20, 60, 200] {
        assert_eq!(
            error_of(&poll_code(&world, device_code, at(secs))).0,
            "slow_down"
        );
    }
}

#[test]
fn a_code_past_its_lifetime_is_expired_token() {
    let world = World::new(Scenario::default());
    let (_, code) = start(&world, "common", T0);
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(900),
    );
    assert_eq!(error_of(&reply), ("expired_token", 70020));
    assert_eq!(
        world
            .approve(code["user_code"].as_str().unwrap_or_default(), at(901))
            .map(|_| ()),
        Err(crate::ApprovalError::UnknownCode(
            code["user_code"].as_str().unwrap_or_default().into()
        ))
    );
}

#[test]
fn expire_scenario_expires_at_the_first_poll() {
    let world = World::for_case(Case::Expired);
    let (_, code) = start(&world, "common", T0);
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(5),
    );
    assert_eq!(error_of(&reply).0, "expired_token");
}

#[test]
fn unknown_device_code_is_bad_verification_code() {
    let world = World::new(Scenario::default());
    assert_eq!(
        error_of(&poll_code(&world, "DAQABnothing", T0)).0,
        "bad_verification_code"
    );
}

#[test]
fn declining_on_the_approval_page_ends_the_flow() {
    let world = World::new(Scenario::default());
    let (_, code) = start(&world, "common", T0);
    let user_code = code["user_code"].as_str().unwrap_or_default();
    assert_eq!(world.pending_codes(T0).len(), 1);
    // The approval page accepts the code as typed: lower case, with a dash.
    let typed = format!("{}-{}", &user_code[..4].to_lowercase(), &user_code[4..]);
    assert_eq!(world.decline(&typed, at(1)), Ok(()));
    assert_eq!(
        world.approve(user_code, at(2)).map(|_| ()),
        Err(crate::ApprovalError::AlreadyDecided)
    );
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(5),
    );
    assert_eq!(error_of(&reply), ("authorization_declined", 70000));
}

#[test]
fn decline_scenario_declines_at_the_first_poll() {
    let world = World::for_case(Case::Declined);
    let (_, code) = start(&world, "common", T0);
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(5),
    );
    assert_eq!(error_of(&reply).0, "authorization_declined");
}

#[test]
fn each_poll_refusal_has_its_error_and_aadsts_code() {
    for failure in Aadsts::ALL.into_iter().filter(|f| f.stage() == Stage::Poll) {
        let world = World::for_case(Case::Refused(failure));
        let (_, code) = start(&world, "common", T0);
        let device_code = code["device_code"].as_str().unwrap_or_default().to_string();
        let _ = world.approve(code["user_code"].as_str().unwrap_or_default(), T0);
        let reply = poll_code(&world, &device_code, at(5));
        assert_eq!(
            error_of(&reply),
            (failure.error(), u64::from(failure.code())),
            "{failure:?}"
        );
        let description = reply.1["error_description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with(&format!("AADSTS{}: ", failure.code())),
            "{description}"
        );
        let expected_status = if failure.error() == "invalid_client" {
            401
        } else {
            400
        };
        assert_eq!(reply.0, expected_status);
    }
}

#[test]
fn conditional_access_refusal_names_the_blocked_device_code_flow() {
    let world = World::for_case(Case::Refused(Aadsts::DeviceCodeFlowBlocked530033));
    let (_, code) = start(&world, "common", T0);
    let _ = world.approve(code["user_code"].as_str().unwrap_or_default(), T0);
    let reply = poll_code(
        &world,
        code["device_code"].as_str().unwrap_or_default(),
        at(5),
    );
    assert!(
        reply.1["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("Conditional Access")
    );
}

#[test]
fn single_tenant_app_fails_on_common_but_not_on_its_tenant() {
    let world = World::for_case(Case::Refused(Aadsts::SingleTenantOnCommon50194));
    assert_eq!(
        error_of(&start(&world, "common", T0)),
        ("invalid_request", 50194)
    );
    assert_eq!(error_of(&start(&world, "organizations", T0)).1, 50194);
    assert_eq!(start(&world, crate::world::WORK_TENANT, T0).0, 200);
    assert_eq!(start(&world, "contoso.com", T0).0, 200);
}

#[test]
fn refresh_rotates_and_a_redeemed_refresh_token_stays_valid_by_default() {
    let world = World::new(Scenario::default());
    let first = sign_in(&world)["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, second) = refresh_with(&world, &first, at(3600));
    assert_eq!(status, 200);
    assert_ne!(second["refresh_token"].as_str().unwrap_or_default(), first);
    // Entra ID honours a redeemed refresh token until it expires.
    assert_eq!(refresh_with(&world, &first, at(3700)).0, 200);
}

#[test]
fn with_single_use_refresh_tokens_a_reused_refresh_token_is_invalid_grant() {
    let world = World::new(Scenario::default());
    world.update_settings(|s| s.single_use_refresh_tokens = true);
    let first = sign_in(&world)["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (status, second) = refresh_with(&world, &first, at(3600));
    assert_eq!(status, 200);
    let second_rt = second["refresh_token"].as_str().unwrap_or_default();
    assert!(!second_rt.is_empty() && second_rt != first);
    assert!(second["access_token"].as_str().unwrap_or_default().len() > 2500);
    assert_eq!(
        error_of(&refresh_with(&world, &first, at(3700))),
        ("invalid_grant", 70000)
    );
    assert_eq!(refresh_with(&world, second_rt, at(3800)).0, 200);
}

#[test]
fn refresh_only_refusals_let_sign_in_succeed_then_fail_the_refresh() {
    for failure in [
        Aadsts::RefreshTokenInactive700082,
        Aadsts::GrantRevoked50173,
    ] {
        let world = World::for_case(Case::Refused(failure));
        let tokens = sign_in(&world);
        let reply = refresh_with(
            &world,
            tokens["refresh_token"].as_str().unwrap_or_default(),
            at(60),
        );
        assert_eq!(
            error_of(&reply),
            ("invalid_grant", u64::from(failure.code())),
            "{failure:?}"
        );
    }
}

#[test]
fn a_refresh_token_idle_for_90_days_expires_for_real() {
    let world = World::new(Scenario::default());
    let rt = sign_in(&world)["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reply = refresh_with(&world, &rt, at(5) + REFRESH_IDLE_LIMIT);
    assert_eq!(error_of(&reply).1, 700082);
}

#[test]
fn missing_parameters_and_wrong_methods_are_refused_like_microsoft() {
    let world = World::new(Scenario::default());
    let reply = post(
        &world,
        "/common/oauth2/v2.0/devicecode",
        &[("scope", SCOPE)],
        T0,
    );
    assert_eq!(error_of(&reply), ("invalid_request", 900144));
    let reply = post(
        &world,
        "/common/oauth2/v2.0/token",
        &[("client_id", CLIENT)],
        T0,
    );
    assert!(
        reply.1["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("'grant_type'")
    );
    let reply = post(
        &world,
        "/common/oauth2/v2.0/token",
        &[("grant_type", "password"), ("client_id", CLIENT)],
        T0,
    );
    assert_eq!(error_of(&reply), ("unsupported_grant_type", 70003));
    let get = handle_http(&world, "GET", "/common/oauth2/v2.0/token", &FORM, b"", T0);
    assert_eq!(get.status, 400);
    assert_eq!(
        handle_http(&world, "POST", "/common/other", &FORM, b"", T0).status,
        404
    );
    let reply = post(
        &world,
        "/no_such!tenant/oauth2/v2.0/devicecode",
        &[("client_id", CLIENT), ("scope", SCOPE)],
        T0,
    );
    assert_eq!(error_of(&reply).1, 90002);
}

#[test]
fn a_registered_client_id_refuses_other_applications() {
    let world = World::new(Scenario::default());
    world.update_settings(|s| s.client_id = Some("11111111-2222-3333-4444-555555555555".into()));
    assert_eq!(
        error_of(&start(&world, "common", T0)),
        ("unauthorized_client", 700016)
    );
}

#[test]
fn token_replies_are_not_cacheable_and_debug_hides_the_body() {
    let world = World::new(Scenario::default());
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", CLIENT), ("scope", SCOPE)])
        .finish();
    let reply = handle_http(
        &world,
        "POST",
        "/common/oauth2/v2.0/devicecode?x=1",
        &FORM,
        body.as_bytes(),
        T0,
    );
    assert_eq!(reply.header("cache-control"), Some("no-store, no-cache"));
    assert!(!format!("{reply:?}").contains("device_code"));
    let http = String::from_utf8_lossy(&reply.to_http1()).into_owned();
    assert!(http.starts_with("HTTP/1.1 200 OK\r\n") && http.contains("Connection: close\r\n"));
}

#[test]
fn requests_are_counted_per_endpoint_whatever_their_answer() {
    let world = World::new(Scenario {
        approval: Approval::Manual,
        ..Scenario::default()
    });
    assert_eq!(
        (world.requests("devicecode"), world.requests("token")),
        (0, 0)
    );
    let (_, code) = start(&world, "common", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default().to_string();
    assert_eq!(poll_code(&world, &device_code, at(5)).0, 400); // authorization_pending
    assert_eq!(poll_code(&world, &device_code, at(6)).0, 400); // slow_down
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", CLIENT)])
        .finish();
    handle_http(
        &world,
        "GET",
        "/common/oauth2/v2.0/token",
        &FORM,
        body.as_bytes(),
        T0,
    );
    handle_http(&world, "POST", "/common/oauth2/v2.0/other", &FORM, b"", T0);
    assert_eq!(world.requests("devicecode"), 1);
    assert_eq!(world.requests("token"), 3);
    assert_eq!(world.requests("other"), 0);
}

/// Asserts Microsoft's error shape: HTTP 400, `error`, an `AADSTSnnnn: ` description with
/// trace and correlation ids, and `error_codes` holding the same number.
fn assert_aadsts(reply: &HttpResponse, error: &str, code: u64) {
    assert_eq!(reply.status, 400, "{reply:?}");
    let body = reply.json_body().unwrap_or(Value::Null);
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains("\r\nTrace ID: "), "{description}");
    assert!(
        description.contains("\r\nCorrelation ID: "),
        "{description}"
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

fn raw_post(
    world: &World,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
    now: Duration,
) -> HttpResponse {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    handle_http(world, "POST", path, headers, body.as_bytes(), now)
}

#[test]
fn a_device_code_is_redeemed_only_by_its_client_at_its_tenant() {
    let world = World::new(Scenario {
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let (_, code) = start(&world, "contoso.onmicrosoft.com", T0);
    let device_code = code["device_code"].as_str().unwrap_or_default().to_string();
    let redeem = |tenant: &str, client: &str, now| {
        raw_post(
            &world,
            &format!("/{tenant}/oauth2/v2.0/token"),
            &FORM,
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", client),
                ("device_code", &device_code),
            ],
            now,
        )
    };
    // Another application, or another tenant, does not find the code.
    let other_client = redeem(
        "contoso.onmicrosoft.com",
        "11111111-2222-3333-4444-555555555555",
        at(5),
    );
    assert_aadsts(&other_client, "bad_verification_code", 70000);
    assert_aadsts(
        &redeem("common", CLIENT, at(10)),
        "bad_verification_code",
        70000,
    );
    assert_aadsts(
        &redeem(WORK_TENANT_ID, CLIENT, at(15)),
        "bad_verification_code",
        70000,
    );
    // Its own client at its own tenant (any case) gets the tokens.
    let reply = redeem("Contoso.onmicrosoft.com", CLIENT, at(20));
    assert_eq!(reply.status, 200, "{:?}", reply.json_body());
}

const WORK_TENANT_ID: &str = crate::world::WORK_TENANT;

#[test]
fn only_the_applications_scope_set_gets_a_device_code() {
    let world = World::new(Scenario::default());
    for scope in [
        "https://outlook.office.com/SMTP.Send offline_access openid profile",
        "https://graph.microsoft.com/Mail.Send offline_access openid profile email",
        "https://outlook.office.com/SMTP.Send offline_access openid profile email User.Read",
        "openid",
    ] {
        let reply = raw_post(
            &world,
            "/common/oauth2/v2.0/devicecode",
            &FORM,
            &[("client_id", CLIENT), ("scope", scope)],
            T0,
        );
        assert_aadsts(&reply, "invalid_scope", 70011);
        let body = reply.json_body().unwrap_or_default();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("'scope' is not valid"),
            "{body}"
        );
    }
    // The same set in another order is the same request.
    let reordered = "email profile openid offline_access https://outlook.office.com/SMTP.Send";
    let reply = raw_post(
        &world,
        "/common/oauth2/v2.0/devicecode",
        &FORM,
        &[("client_id", CLIENT), ("scope", reordered)],
        T0,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(start(&world, "common", T0).0, 200);
}

#[test]
fn a_request_that_is_not_a_form_has_no_parameters() {
    let world = World::new(Scenario::default());
    let form = [("client_id", CLIENT), ("scope", SCOPE)];
    for headers in [
        vec![("content-type", "application/json")],
        vec![("content-type", "text/plain; charset=utf-8")],
        vec![],
    ] {
        let reply = raw_post(
            &world,
            "/common/oauth2/v2.0/devicecode",
            &headers,
            &form,
            T0,
        );
        assert_aadsts(&reply, "invalid_request", 900144);
        let body = reply.json_body().unwrap_or_default();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains("must contain the following parameter: 'client_id'"),
            "{headers:?}: {body}"
        );
    }
    let with_charset = [(
        "Content-Type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let reply = raw_post(
        &world,
        "/common/oauth2/v2.0/devicecode",
        &with_charset,
        &form,
        T0,
    );
    assert_eq!(reply.status, 200);
}

#[test]
fn every_reply_has_a_date_on_the_platforms_clock() {
    let world = World::new(Scenario::default());
    let reply = handle_http(
        &world,
        "POST",
        "/common/oauth2/v2.0/devicecode",
        &FORM,
        b"",
        T0,
    );
    assert_eq!(reply.header("date"), Some("Mon, 10 Jun 2024 08:00:00 GMT"));
    assert_eq!(
        handle_http(&world, "GET", "/nowhere", &FORM, b"", T0).header("date"),
        Some("Mon, 10 Jun 2024 08:00:00 GMT")
    );
    world.set_case(Case::ServerClockAhead);
    let reply = handle_http(
        &world,
        "POST",
        "/common/oauth2/v2.0/devicecode",
        &FORM,
        b"",
        T0,
    );
    assert_eq!(reply.header("date"), Some("Mon, 10 Jun 2024 10:00:00 GMT"));
    // The id_token's times follow the platform's clock too.
    let tokens = sign_in(&world);
    let c = claims(tokens["id_token"].as_str().unwrap_or_default());
    assert_eq!(c["iat"], at(5).as_secs() + 7200);
    assert_eq!(c["exp"], at(5).as_secs() + 7200 + 3600);
    world.set_case(Case::ServerClockBehind);
    let tokens = sign_in(&world);
    let c = claims(tokens["id_token"].as_str().unwrap_or_default());
    assert_eq!(c["iat"], at(5).as_secs() - 1800);
}

#[test]
fn id_token_flaws_change_only_their_claim() {
    let world = World::new(Scenario::default());
    let good = claims(sign_in(&world)["id_token"].as_str().unwrap_or_default());
    assert_eq!(good["aud"], CLIENT);
    assert_eq!(good["tid"], WORK_TENANT_ID);
    assert_eq!(
        good["iss"],
        format!("https://login.microsoftonline.com/{WORK_TENANT_ID}/v2.0")
    );
    let now = at(5).as_secs();
    assert_eq!(
        (good["iat"].as_u64(), good["exp"].as_u64()),
        (Some(now), Some(now + 3600))
    );
    for (case, claim, value) in [
        (
            IdTokenFlaw::WrongAudience,
            "aud",
            Value::from("00000003-0000-0000-c000-000000000000"),
        ),
        (
            IdTokenFlaw::WrongTenant,
            "tid",
            Value::from(crate::scenario::OTHER_TENANT),
        ),
        (IdTokenFlaw::Expired, "exp", Value::from(now - 3600)),
    ] {
        world.set_case(Case::IdToken(case));
        let flawed = claims(sign_in(&world)["id_token"].as_str().unwrap_or_default());
        assert_eq!(flawed[claim], value, "{case:?}");
        for other in ["aud", "tid", "iss", "preferred_username", "oid"] {
            if other != claim {
                assert_eq!(flawed[other], good[other], "{case:?}: {other}");
            }
        }
    }
}

#[test]
fn the_insecure_verification_uri_case_names_a_plain_http_page() {
    let world = World::for_case(Case::InsecureVerificationUri);
    let (status, body) = start(&world, "common", T0);
    assert_eq!(status, 200);
    assert_eq!(body["verification_uri"], "http://microsoft.com/devicelogin");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("http://microsoft.com/devicelogin")
    );
    world.set_case(Case::Happy);
    assert_eq!(
        start(&world, "common", T0).1["verification_uri"],
        "https://microsoft.com/devicelogin"
    );
}
