//! The token endpoint's replies: the device-flow poll (`signin::DeviceFlow`) and a
//! refresh (`signin::token::parse_refresh_reply`), with the error replies and AADSTS codes
//! they carry.
//!
//! Input: a status selector byte, an options byte (tenant setting, the `Date` header),
//! then the reply body.
//!
//! Invariants: approved tokens are Bearer, with an access token, a refresh token and an
//! id_token that fits the tenant, expiring within a day of `now`; a pending or slowed
//! poll waits (`slow_down` adds exactly 5 s, backoff doubles up to 60 s); a failure ends
//! the flow for good; a refresh keeps the previous refresh token only when the reply has
//! none; no message holds a control character; with the tokens replaced by markers, no
//! marker reaches a message, a remedy or a `Debug`.

use mfp_smtp_oauth::signin::id_token::tenant_fits;
use mfp_smtp_oauth::signin::poll::{MAX_BACKOFF_INTERVAL, SLOW_DOWN_STEP};
use mfp_smtp_oauth::signin::token::{MAX_TOKEN_LIFETIME, parse_refresh_reply};
use mfp_smtp_oauth::signin::{
    DeviceCode, DeviceFlow, PollOutcome, PollStep, Secret, SigninConfig, TokenSet,
};
use mfp_smtp_oauth::storage;
use serde_json::{Value, json};

use super::support::has_control;

/// Markers that stand for secrets in a second pass; removed from everything else.
pub const MARK_ACCESS: &str = "MaRkAcCeSs7f3a9c";
pub const MARK_REFRESH: &str = "MaRkReFrEsH2b8e4d";
pub const MARK_DEVICE: &str = "MaRkDeViCe5c1d0e";
const MARK_PREVIOUS: &str = "MaRkPrEvIoUs9e6f1a";

/// The device's clock in every run (Unix seconds, June 2025).
pub const NOW: u64 = 1_750_000_000;
/// The application the id_tokens must be issued to.
pub const CLIENT_ID: &str = "c88859d7-e6a2-48cb-acee-669df3387654";
/// The tenant settings a run may use.
pub const TENANTS: [&str; 5] = [
    "common",
    "organizations",
    "consumers",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "contoso.com",
];

/// Mostly 200, then the statuses the platform answers with, then any.
pub fn status(selector: u8) -> u16 {
    match selector {
        0..=127 => 200,
        128..=175 => 400,
        176..=191 => 401,
        192..=207 => 429,
        208..=223 => 503,
        224..=231 => 500,
        other => 100 + u16::from(other - 232) * 20,
    }
}

/// `body` as a JSON object with every marker removed from its strings, then `fields` set
/// to markers; `None` when it is no JSON object.
pub fn marked(body: &[u8], fields: &[(&str, &str)]) -> Option<Vec<u8>> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let Value::Object(mut map) = strip_markers(Value::Object(map)) else {
        return None;
    };
    for (field, mark) in fields {
        map.insert((*field).to_owned(), Value::String((*mark).to_owned()));
    }
    serde_json::to_vec(&Value::Object(map)).ok()
}

fn strip_markers(value: Value) -> Value {
    let clean = |s: String| {
        [MARK_ACCESS, MARK_REFRESH, MARK_DEVICE, MARK_PREVIOUS]
            .iter()
            .fold(s, |s, m| s.replace(m, ""))
            // A marker must not be rebuilt from what surrounds a removed one.
            .replace("MaRk", "")
    };
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_markers).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (clean(k), strip_markers(v)))
                .collect(),
        ),
        other => other,
    }
}

pub fn config(options: u8) -> SigninConfig {
    SigninConfig {
        tenant: TENANTS[usize::from(options) % TENANTS.len()].to_owned(),
        client_id: CLIENT_ID.to_owned(),
        ..SigninConfig::default()
    }
}

/// The platform's clock from the options: none, the same, or hours off either way.
pub fn server_now(options: u8) -> Option<u64> {
    match options >> 4 {
        0..=7 => None,
        8..=11 => Some(NOW),
        12 | 13 => Some(NOW + 3 * 3600),
        _ => Some(NOW - 3 * 3600),
    }
}

pub fn run(data: &[u8]) {
    let (selector, options, body) = match data {
        [s, o, body @ ..] => (*s, *o, body),
        _ => return,
    };
    let status = status(selector);
    let config = config(options);
    let server_now = server_now(options);

    poll(&config, server_now, status, body, None);
    refresh(&config, status, body, None);

    let marks = [
        ("access_token", MARK_ACCESS),
        ("refresh_token", MARK_REFRESH),
    ];
    if let Some(marked) = marked(body, &marks) {
        poll(
            &config,
            server_now,
            status,
            &marked,
            Some(&[MARK_ACCESS, MARK_REFRESH, MARK_DEVICE]),
        );
        refresh(
            &config,
            status,
            &marked,
            Some(&[MARK_ACCESS, MARK_REFRESH, MARK_PREVIOUS]),
        );
    }
}

fn assert_hidden(shown: &str, marks: Option<&[&str]>) {
    for mark in marks.unwrap_or_default() {
        assert!(!shown.contains(mark), "a secret ({mark}) in {shown:?}");
    }
}

fn poll(
    config: &SigninConfig,
    server_now: Option<u64>,
    status: u16,
    body: &[u8],
    marks: Option<&[&str]>,
) {
    let code = DeviceCode {
        device_code: Secret::new(MARK_DEVICE),
        user_code: "ABCD-EFGH".into(),
        verification_uri: "https://microsoft.com/devicelogin".into(),
        expires_in: 900,
        interval: 5,
        message: None,
    };
    let mut flow = DeviceFlow::start(config.clone(), code, NOW - 60);
    let PollStep::Send(request) = flow.poll(NOW) else {
        panic!("the flow did not poll when due");
    };
    assert_hidden(&format!("{request:?}"), marks);
    let interval = flow.interval();
    let outcome = flow.on_dated_token_reply(NOW, server_now, status, body);
    assert_hidden(&format!("{outcome:?} {flow:?}"), marks);
    match outcome {
        PollOutcome::Approved(approved) => {
            assert_eq!(status, 200);
            assert!(flow.is_ended());
            let tokens = &approved.tokens;
            check_tokens(tokens);
            assert!(tokens.id_token.is_some(), "a sign-in without an id_token");
            let account = &approved.account;
            let tid = account.tid.as_deref().unwrap_or_default();
            assert!(tenant_fits(&config.tenant, tid), "tenant {tid:?} accepted");
            if let Some(address) = account.device_email_address() {
                assert!(!has_control(address), "Device Email Address {address:?}");
            }
            let stored = storage::encode(tokens);
            assert_eq!(
                &storage::decode::<TokenSet>(storage::GRANT_KEY, &stored).ok(),
                &Some(tokens.clone())
            );
        }
        PollOutcome::Pending { next_poll_at } => {
            assert!(next_poll_at > NOW && next_poll_at <= flow.expires_at());
            assert_eq!(flow.interval(), interval);
            assert!(!flow.is_ended());
        }
        PollOutcome::SlowDown {
            next_poll_at,
            interval: now_interval,
        } => {
            assert!(next_poll_at > NOW);
            assert_eq!(now_interval, interval + SLOW_DOWN_STEP);
            assert!(!flow.is_ended());
        }
        PollOutcome::Backoff {
            next_poll_at,
            interval: now_interval,
        } => {
            assert!(next_poll_at > NOW);
            assert_eq!(
                now_interval,
                interval.max((interval * 2).min(MAX_BACKOFF_INTERVAL))
            );
            assert!(!flow.is_ended());
        }
        PollOutcome::Failed(err) => {
            assert!(flow.is_ended(), "a failure that keeps polling");
            assert!(!has_control(&err.message), "control character in {err:?}");
            assert_eq!(flow.poll(NOW + 3600), PollStep::Ended);
            assert!(matches!(
                flow.on_token_reply(NOW, status, body),
                PollOutcome::Failed(_)
            ));
        }
    }
}

fn check_tokens(tokens: &TokenSet) {
    assert!(tokens.token_type.eq_ignore_ascii_case("bearer"));
    assert!(!tokens.access_token.expose().is_empty());
    assert!(!tokens.refresh_token.expose().is_empty());
    assert!((NOW..=NOW + MAX_TOKEN_LIFETIME).contains(&tokens.expires_at));
    if let Some(ext) = tokens.ext_expires_at {
        assert!((NOW..=NOW + MAX_TOKEN_LIFETIME).contains(&ext));
    }
    assert_eq!(tokens.obtained_at, Some(NOW));
}

fn refresh(config: &SigninConfig, status: u16, body: &[u8], marks: Option<&[&str]>) {
    let previous: TokenSet = storage::decode(
        storage::GRANT_KEY,
        json!({
        "token_type": "Bearer",
        "scope": "https://outlook.office.com/SMTP.Send",
        "access_token": "old-access",
        "refresh_token": MARK_PREVIOUS,
        "id_token": null,
        "expires_at": NOW - 10,
        "ext_expires_at": null,
        "obtained_at": NOW - 86_400,
        })
        .to_string()
        .as_bytes(),
    )
    .expect("a stored grant");
    match parse_refresh_reply(config, &previous, NOW, status, body) {
        Ok(tokens) => {
            assert_eq!(status, 200);
            assert_hidden(&format!("{tokens:?}"), marks);
            check_tokens(&tokens);
            let sent = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("refresh_token")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .filter(|t| !t.is_empty());
            match sent {
                Some(new) => assert_eq!(tokens.refresh_token.expose(), new),
                None => assert_eq!(tokens.refresh_token, previous.refresh_token),
            }
        }
        Err(err) => {
            assert_hidden(&format!("{err} {err:?}"), marks);
            assert!(!has_control(&err.message), "control character in {err:?}");
        }
    }
}
