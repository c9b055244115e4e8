//! The Exchange Online stand-in's SMTP server (`mfp_fakes::SmtpSession`), fed by a
//! hostile client, and its MIME decoder on whatever messages that client got accepted.
//!
//! Input: fields separated by `0xFF`: a scenario selector, then one field per read from
//! the client. In a read, `@B@` becomes a valid XOAUTH2 response for the signed-in
//! account, `@T@` its access token and `@U@` its UPN, so the fuzzer gets past AUTH.
//!
//! Invariants: every reply is well-formed SMTP that the component's own reply parser
//! reads completely (code, `-`/space continuation, CRLF, at most 512 octets a line, no
//! reply split across two answers); nothing is answered once the session closed; the
//! command log shows no XOAUTH2 response or token on an AUTH line or a line of its own;
//! accepted messages decode without panic.

use std::time::Duration;

use mfp_fakes::identity::DEVICE_CODE_GRANT;
use mfp_fakes::{Case, Scenario, SmtpSession, World, handle_http};
use mfp_smtp_oauth::smtp::ReplyParser;

use super::support::{Fields, assert_crlf_only, base64, crlf_lines};

/// The stand-ins' clock at the start of every run.
pub const T0: Duration = Duration::from_secs(1_750_000_000);

/// A world whose first account signed in through the identity stand-in: the world,
/// the access token, the refresh token, and the UPN.
pub fn signed_in_world() -> (World, String, String, String) {
    let world = World::new(Scenario::default());
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let code = handle_http(
        &world,
        "POST",
        "/common/oauth2/v2.0/devicecode",
        &form,
        b"client_id=c&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access+openid+profile+email",
        T0,
    )
    .json_body()
    .unwrap_or_default();
    let field = |v: &serde_json::Value, name: &str| v[name].as_str().unwrap_or_default().to_owned();
    let _ = world.approve(&field(&code, "user_code"), T0);
    let body = format!(
        "grant_type={}&client_id=c&device_code={}",
        DEVICE_CODE_GRANT.replace(':', "%3A"),
        field(&code, "device_code")
    );
    let tokens = handle_http(
        &world,
        "POST",
        "/common/oauth2/v2.0/token",
        &form,
        body.as_bytes(),
        T0 + Duration::from_secs(6),
    )
    .json_body()
    .unwrap_or_default();
    let upn = world
        .accounts()
        .first()
        .map(|a| a.upn.clone())
        .unwrap_or_default();
    (
        world,
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
        upn,
    )
}

/// `read` with every `placeholder` replaced.
pub fn substitute(read: &[u8], pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = read.to_vec();
    for (placeholder, value) in pairs {
        let (from, to) = (placeholder.as_bytes(), value.as_bytes());
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(from) {
                next.extend_from_slice(to);
                i += from.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let (world, token, _, upn) = signed_in_world();
    assert!(!token.is_empty(), "the identity stand-in issued no token");
    let cases = Case::all();
    world.set_case(cases[usize::from(f.byte(0)) % cases.len()]);
    let blob = base64(format!("user={upn}\x01auth=Bearer {token}\x01\x01").as_bytes());
    let pairs = [
        ("@B@", blob.as_str()),
        ("@T@", token.as_str()),
        ("@U@", upn.as_str()),
    ];

    let mut session = SmtpSession::new(world.clone(), "203.0.113.7", T0);
    check_replies(&session.greeting());
    let mut closed = false;
    for (i, read) in f.rest(1).into_iter().enumerate() {
        let now = T0 + Duration::from_secs(10 + i as u64);
        let out = session.feed(&substitute(read, &pairs), now);
        if closed {
            assert!(out.reply.is_empty(), "an answer after the session closed");
            assert!(out.close);
            continue;
        }
        check_replies(&out.reply);
        closed = out.close;
        assert_eq!(closed, session.is_closed());
    }

    // An AUTH line is logged without its response (whatever blank separates its words),
    // and a line that starts with the response or the token, sent after a `334` or not,
    // before or after the session closed, shows as its length only. (A client that puts
    // a secret inside another command, such as MAIL FROM, has it logged.)
    for logged in world.smtp_commands() {
        let line = logged.strip_prefix("after close: ").unwrap_or(&logged);
        if let Some((verb, rest)) = line.split_once([' ', '\t'])
            && verb.eq_ignore_ascii_case("AUTH")
        {
            assert!(!rest.contains(&token), "an AUTH line logged with its token");
            assert!(
                !rest.contains(&blob),
                "an AUTH line logged with its response"
            );
        }
        for secret in [&blob, &token] {
            let start = &secret[..secret.len().min(16)];
            assert!(!line.starts_with(start), "a bare secret logged: {logged:?}");
        }
    }
    for message in world.messages() {
        let decoded = message.decoded();
        let raw = message.raw.as_ref().map_or(0, Vec::len) as u64;
        for attachment in &decoded.attachments {
            assert!(
                attachment.size <= raw,
                "an attachment larger than its message"
            );
        }
    }
}

/// `bytes` are complete SMTP replies, as a client reads them.
fn check_replies(bytes: &[u8]) {
    assert_crlf_only("a reply", bytes);
    assert!(bytes.is_empty() || bytes.ends_with(b"\r\n"));
    for line in crlf_lines(bytes) {
        assert!(line.len() + 2 <= 512, "a reply line over 512 octets");
        let valid = line.len() >= 3
            && matches!(line[0], b'2'..=b'5')
            && matches!(line[1], b'0'..=b'5')
            && line[2].is_ascii_digit()
            && matches!(line.get(3), None | Some(b' ' | b'-'));
        assert!(
            valid,
            "not a reply line: {:?}",
            String::from_utf8_lossy(line)
        );
    }
    let mut parser = ReplyParser::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (consumed, result) = parser.parse(rest);
        rest = &rest[consumed..];
        if let Err(err) = result {
            panic!("the client cannot read the reply: {err}");
        }
    }
    assert!(!parser.is_mid_reply(), "a reply split across two answers");
}
