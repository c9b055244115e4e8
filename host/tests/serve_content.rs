//! What the panel accepts and what its pages may run (issue #12): request bodies must be
//! declared `application/json` (415 otherwise, and nothing changes); every answer carries
//! a Content-Security-Policy of `default-src 'self'` with no inline script or style
//! allowed and no framing, and `nosniff`; and the pages (the login page and the demo
//! pages included) hold no inline script, style or event handler, so that policy does not
//! break them.

use serde_json::json;

mod support;
use support::client::PASSWORD;
use support::server::Server;

#[test]
fn bodies_of_another_type_are_refused_and_change_nothing() {
    let server = Server::start(&[]);
    let origin = server.origin();
    let login = json!({ "password": PASSWORD }).to_string();
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let reply = server.request(
            "POST",
            "/api/v1/login",
            &[("Origin", &origin), ("Content-Type", content_type)],
            Some(&login),
        );
        assert_eq!(reply.status, 415, "{content_type}: {}", reply.body);
        assert_eq!(reply.error_code(), "unsupported-media-type");
        assert!(reply.header("set-cookie").is_none());
    }
    let cookie = server.login();
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();
    let reply = server.request(
        "POST",
        "/api/v1/smtp",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "text/plain"),
        ],
        Some(&change),
    );
    assert_eq!(reply.status, 415, "{}", reply.body);
    assert_eq!(server.setting(&cookie, "service-provider"), "not-selected");
    // JSON with a charset is JSON.
    let reply = server.request(
        "POST",
        "/api/v1/smtp",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        Some(&change),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Requests without a body need no type.
    let reply = server.api(&cookie, "POST", "/api/v1/signin/cancel", None);
    assert_eq!(reply.status, 204, "{}", reply.body);
}

/// Every `<script …>` tag in `html` has a `src`; there is no `<style>` element, no `style=`
/// attribute and no `on…=` event handler attribute.
fn assert_no_inline_code(page: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag = &lower[at..at + lower[at..].find('>').unwrap()];
        assert!(
            tag.contains(" src="),
            "{page}: inline script at {at}: {tag}"
        );
    }
    assert!(!lower.contains("<style"), "{page}: a <style> element");
    assert!(!lower.contains(" style="), "{page}: a style attribute");
    for (at, _) in lower.match_indices(" on") {
        let name: String = lower[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let handler = lower[at + 1 + name.len()..].starts_with('=');
        assert!(
            !(handler && name.len() > 2),
            "{page}: an event handler attribute {name}="
        );
    }
}

#[test]
fn every_answer_has_a_strict_policy_and_no_page_needs_inline_code() {
    let server = Server::start(&["--demo"]);
    let cookie = server.login();
    for page in ["/login", "/", "/demo/devicelogin", "/demo/mailbox"] {
        let reply = server.api(&cookie, "GET", page, None);
        assert_eq!(reply.status, 200, "{page}");
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.starts_with("default-src 'self';"), "{page}: {csp}");
        assert!(csp.contains("script-src 'self';"), "{page}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{page}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{page}: {csp}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{page}"
        );
        assert_no_inline_code(page, &reply.body);
        // Each script and style the page names is served, with its type.
        let lower = reply.body.to_ascii_lowercase();
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in lower.match_indices(attribute) {
                let start = at + attribute.len();
                let url = &reply.body[start..start + reply.body[start..].find('"').unwrap()];
                let wanted = if url.ends_with(".js") {
                    "text/javascript"
                } else if url.ends_with(".css") {
                    "text/css"
                } else {
                    continue;
                };
                let asset = server.request("GET", url, &[], None);
                assert_eq!(asset.status, 200, "{page}: {url}");
                assert!(
                    asset
                        .header("content-type")
                        .is_some_and(|t| t.starts_with(wanted)),
                    "{page}: {url}: {:?}",
                    asset.header("content-type")
                );
            }
        }
    }
    // API answers and refusals carry it too.
    for (path, status) in [("/api/v1/smtp", 200), ("/no-such-page.js", 404)] {
        let reply = server.api(&cookie, "GET", path, None);
        assert_eq!(reply.status, status, "{path}");
        assert!(reply.header("content-security-policy").is_some(), "{path}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
    }
}
