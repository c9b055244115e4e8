//! The identity platform's device-code reply (`signin::device_code`), and the
//! verification URI check that decides which page an administrator is sent to.
//!
//! Input: a status selector byte, then the reply body.
//!
//! Invariants: a reply that is read gives a code and a URI of printable text without
//! spaces, an `https` (or loopback `http`) URI, a lifetime of at most an hour and an
//! interval of at least a second; a URI the check accepts is `https://` or `http://` to a
//! loopback host; an error's message names neither the device code nor a control
//! character; the device code never shows in `Debug`.

use mfp_smtp_oauth::signin::SigninConfig;
use mfp_smtp_oauth::signin::device_code::{
    DeviceCode, MAX_LIFETIME, check_verification_uri, parse_device_code_reply,
};

use super::support::has_control;
use super::token_reply::{self, MARK_DEVICE};

pub fn run(data: &[u8]) {
    let (status, body) = match data.split_first() {
        Some((&selector, body)) => (token_reply::status(selector), body),
        None => (200, &[][..]),
    };
    let config = SigninConfig::default();
    check(&config, status, body);
    // Again with the device code set to a marker that occurs nowhere else: it must not
    // reach any message or `Debug`.
    if let Some(marked) = token_reply::marked(body, &[("device_code", MARK_DEVICE)]) {
        let shown = match parse_device_code_reply(&config, status, &marked) {
            Ok(code) => format!("{code:?}"),
            Err(err) => format!("{err} {err:?}"),
        };
        assert!(!shown.contains(MARK_DEVICE), "the device code in {shown:?}");
    }

    // The URI check on its own, on any text.
    let uri = String::from_utf8_lossy(body);
    if check_verification_uri(&uri).is_ok() {
        assert_safe_uri(&uri);
    } else if let Err(err) = check_verification_uri(&uri) {
        assert!(!has_control(&err.message), "control character in {err:?}");
        assert!(err.message.len() < 1024, "an unbounded message");
    }
}

fn check(config: &SigninConfig, status: u16, body: &[u8]) {
    match parse_device_code_reply(config, status, body) {
        Ok(code) => check_code(&code, status),
        Err(err) => {
            assert!(!has_control(&err.message), "control character in {err:?}");
        }
    }
}

fn check_code(code: &DeviceCode, status: u16) {
    assert_eq!(status, 200, "a device code from HTTP {status}");
    for shown in [&code.user_code, &code.verification_uri] {
        assert!(!shown.is_empty() && shown.len() <= 2048);
        assert!(!shown.chars().any(|c| c.is_control() || c.is_whitespace()));
    }
    assert_safe_uri(&code.verification_uri);
    assert!(!code.device_code.expose().is_empty());
    assert!(code.expires_in <= MAX_LIFETIME);
    assert!(code.interval >= 1);
    if let Some(message) = &code.message {
        assert!(!has_control(message));
        assert!(message.chars().count() <= 2048);
    }
    let shown = format!("{code:?}");
    assert!(
        code.device_code.expose().len() < 12 || !shown.contains(code.device_code.expose()),
        "the device code in Debug"
    );
}

/// `https://host…`, or `http://` to `localhost`, `127.x.x.x` or `[::1]`; no user name.
fn assert_safe_uri(uri: &str) {
    let lower = uri.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host_port.split(':').next().unwrap_or_default(),
        };
        assert!(
            host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback()),
            "plain http to {host:?} accepted"
        );
        rest
    } else {
        panic!("a verification URI of another scheme accepted: {uri:?}");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    assert!(!authority.is_empty(), "no host in {uri:?}");
    assert!(!authority.contains('@'), "a user name in {uri:?}");
}
