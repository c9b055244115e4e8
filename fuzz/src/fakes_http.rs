//! The identity platform stand-in (`mfp_fakes::handle_http`): its routing, form parsing,
//! device-code and token endpoints, fed hostile requests, and the HTTP/1.1 it answers.
//!
//! Input: fields separated by `0xFF`: a scenario selector, then one request per field,
//! `METHOD PATH`, header lines, an empty line and the body, lines ended by CRLF. In a
//! request, `@D@` becomes a pending device code, `@U@` its user code, `@R@` a valid
//! refresh token and `@A@` an access token, so the fuzzer reaches every grant.
//!
//! Invariants: the status is 100–599; header names are tokens and values carry no CR,
//! LF or NUL, so the response head cannot be split; `Content-Length` is the body's and
//! appears once; a JSON response is JSON, an error one names its `error`; the `Date`
//! header reads with the component's own parser; a request that names none of the
//! issued secrets gets none of them back.

use std::time::Duration;

use mfp_fakes::{Case, HttpResponse, handle_http};
use mfp_smtp_oauth::signin::clock::parse_http_date;

use super::fakes_smtp::{T0, signed_in_world, substitute};
use super::support::{Fields, assert_crlf_only, crlf_lines};

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Request {
    let (head, body) = match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&bytes[..at], bytes[at + 4..].to_vec()),
        None => (bytes, Vec::new()),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let (method, path) = request_line.split_once(' ').unwrap_or((request_line, ""));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    Request {
        method: method.to_owned(),
        path: path.trim_end_matches(" HTTP/1.1").to_owned(),
        headers,
        body,
    }
}

pub fn run(data: &[u8]) {
    let f = Fields::new(data);
    let (world, access, refresh, _) = signed_in_world();
    // A second sign-in, left pending: its device code and user code.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let pending = handle_http(
        &world,
        "POST",
        "/organizations/oauth2/v2.0/devicecode",
        &form,
        b"client_id=c&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access+openid+profile+email",
        T0,
    )
    .json_body()
    .unwrap_or_default();
    let device = pending["device_code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = pending["user_code"].as_str().unwrap_or_default().to_owned();
    assert!(!device.is_empty() && !refresh.is_empty() && !access.is_empty());
    let secrets = world.issued_secrets();

    let cases = Case::all();
    world.set_case(cases[usize::from(f.byte(0)) % cases.len()]);
    let pairs = [
        ("@D@", device.as_str()),
        ("@U@", user.as_str()),
        ("@R@", refresh.as_str()),
        ("@A@", access.as_str()),
    ];
    for (i, raw) in f.rest(1).into_iter().enumerate() {
        let names_a_secret = pairs.iter().any(|(p, _)| contains(raw, p.as_bytes()));
        let request = parse(&substitute(raw, &pairs));
        let now = T0 + Duration::from_secs(7 * (i as u64 + 1));
        let response = handle_http(
            &world,
            &request.method,
            &request.path,
            &request.headers,
            &request.body,
            now,
        );
        check_response(&response);
        if !names_a_secret {
            let wire = response.to_http1();
            for secret in &secrets {
                assert!(
                    !contains(&wire, secret.as_bytes()),
                    "an issued secret answered to a request that did not name it"
                );
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn check_response(response: &HttpResponse) {
    assert!(
        (100..=599).contains(&response.status),
        "status {}",
        response.status
    );
    for (name, value) in &response.headers {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "a header named {name:?}"
        );
        assert!(
            !value.contains(['\r', '\n', '\0']),
            "a header value that splits the head: {name}"
        );
        assert!(
            !name.eq_ignore_ascii_case("content-length")
                && !name.eq_ignore_ascii_case("connection"),
            "{name} would be sent twice"
        );
    }
    let date = response.header("date").expect("every response is dated");
    assert!(
        parse_http_date(date).is_some(),
        "a Date the device cannot read: {date:?}"
    );

    let wire = response.to_http1();
    let head_end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the head ends")
        + 4;
    let head = &wire[..head_end];
    assert_crlf_only("the response head", head);
    assert_eq!(&wire[head_end..], &response.body[..]);
    let status_line = format!("HTTP/1.1 {} ", response.status);
    assert!(head.starts_with(status_line.as_bytes()));
    let lengths: Vec<&[u8]> = crlf_lines(head)
        .into_iter()
        .filter(|l| l.len() > 15 && l[..15].eq_ignore_ascii_case(b"content-length:"))
        .collect();
    assert_eq!(
        lengths,
        [format!("Content-Length: {}", response.body.len()).as_bytes()]
    );

    let is_json = response
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        let json = response
            .json_body()
            .expect("a JSON response that is not JSON");
        if response.status >= 400 {
            assert!(json["error"].is_string(), "an error reply without `error`");
        }
    }
}
