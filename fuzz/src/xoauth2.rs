//! XOAUTH2 (`xoauth2`): framing the account and token, and the server's `334`
//! challenges, including the base64 JSON error challenge.
//!
//! Input: fields separated by `0xFF`: user, token, flags (bit 0: two-step AUTH), then
//! one `334` payload per field; the last field is also decoded as an error challenge,
//! raw and base64-encoded.
//!
//! Invariants: credentials the checks accept frame back to exactly the user and token
//! (four `^A`-separated fields, so no field can be forged); every line sent is one
//! CRLF-terminated line, the one-line form at most 512 octets; a third `334` is refused;
//! `Debug` never shows the token; an error challenge's fields are the JSON's.

use mfp_smtp_oauth::xoauth2::{
    AuthMode, Credentials, ErrorChallenge, Exchange, MAX_COMMAND_LINE, Xoauth2Error,
};
use serde_json::Value;

use super::support::{Fields, base64, base64_decode};

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let (user, token) = (f.text(0), f.text(1));
    let payloads = f.rest(3);

    for payload in &payloads {
        check_error_challenge(payload);
    }

    let Ok(credentials) = Credentials::new(user.clone(), token.clone()) else {
        return;
    };
    assert!(!user.is_empty() && !token.is_empty());
    assert!(!user.chars().any(char::is_control));
    assert!(!token.chars().any(|c| c.is_control() || c == ' '));
    assert_eq!(
        format!("{credentials:?}"),
        format!("Credentials {{ user: {user:?}, token: \"<redacted>\" }}")
    );

    let response = credentials.initial_response();
    let framed = base64_decode(&response).expect("the response is base64");
    assert_eq!(base64(&framed), response, "not canonical base64");
    let framed = String::from_utf8(framed).expect("UTF-8 in, UTF-8 out");
    let fields: Vec<&str> = framed.split('\x01').collect();
    assert_eq!(
        fields,
        [
            format!("user={user}").as_str(),
            format!("auth=Bearer {token}").as_str(),
            "",
            ""
        ],
        "the XOAUTH2 fields changed"
    );

    let mode = if f.byte(2) & 1 != 0 {
        AuthMode::Challenge
    } else {
        AuthMode::InitialResponse
    };
    let (mut exchange, line) = Exchange::start(credentials, mode);
    let shown = format!("{exchange:?}");
    let redacted = format!(
        "Exchange {{ credentials: Credentials {{ user: {user:?}, token: \"<redacted>\" }}, step: "
    );
    assert!(shown.starts_with(&redacted), "Debug shows {shown:?}");
    let line = String::from_utf8(line).expect("an ASCII command");
    one_line(&line);
    let mut answered = match line.strip_prefix("AUTH XOAUTH2") {
        Some("\r\n") => 0,
        Some(rest) => {
            assert_eq!(mode, AuthMode::InitialResponse);
            assert_eq!(rest, format!(" {response}\r\n"));
            assert!(
                line.len() <= MAX_COMMAND_LINE,
                "an AUTH line over 512 octets"
            );
            1
        }
        None => panic!("not an AUTH command: {line:?}"),
    };
    for payload in payloads {
        let payload = String::from_utf8_lossy(payload);
        match exchange.on_challenge(&payload) {
            Ok(answer) => {
                let answer = String::from_utf8(answer).expect("ASCII");
                one_line(&answer);
                match answered {
                    0 => assert_eq!(answer, format!("{response}\r\n")),
                    1 => {
                        assert_eq!(answer, "\r\n");
                        assert!(exchange.error_challenge().is_some());
                    }
                    _ => panic!("a third 334 answered"),
                }
                answered += 1;
            }
            Err(err) => {
                assert_eq!(err, Xoauth2Error::UnexpectedChallenge);
                assert_eq!(answered, 2);
            }
        }
    }
}

/// Exactly one line, ended by CRLF.
fn one_line(line: &str) {
    assert!(line.ends_with("\r\n"));
    let inner = &line[..line.len() - 2];
    assert!(
        !inner.contains(['\r', '\n']),
        "a line break inside {line:?}"
    );
}

fn check_error_challenge(payload: &[u8]) {
    let text = String::from_utf8_lossy(payload);
    // Any text: never a panic.
    let _ = ErrorChallenge::decode(&text);
    // The payload as a server sends it: base64 of (what may be) JSON.
    let challenge = ErrorChallenge::decode(&base64(payload));
    let json = serde_json::from_slice::<Value>(payload).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    assert_eq!(challenge.status, field("status"));
    assert_eq!(challenge.schemes, field("schemes"));
    assert_eq!(challenge.scope, field("scope"));
}
