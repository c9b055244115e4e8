//! Which names and origins the panel answers to (issue #12): a `Host` header naming
//! another site (DNS rebinding: `evil.example` resolving to the printer) is refused with
//! 421 even when its `Origin` matches it; `localhost`, the listen address and, for a
//! wildcard listen, this machine's addresses are accepted; behind a TLS reverse proxy,
//! `--public-origin` names the proxy's origin, whose Host and Origin are accepted and
//! whose logins get a `Secure` cookie.

use serde_json::json;

mod support;
use support::client::PASSWORD;
use support::server::{Launch, Server, password_dir};

fn login_body() -> String {
    json!({ "password": PASSWORD }).to_string()
}

#[test]
fn another_sites_name_is_refused_even_with_a_matching_origin() {
    let server = Server::start(&[]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let cookie = server.login();
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();

    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        // The right address on another port, or another loopback address.
        "127.0.0.1:1".to_owned(),
        format!("127.0.0.2:{port}"),
    ] {
        let origin = format!("http://{host}");
        // The rebinding page logs in with its own origin: refused, no cookie.
        let reply = server.request_as(
            &host,
            "POST",
            "/api/v1/login",
            &[("Origin", &origin)],
            Some(&login_body()),
        );
        assert_eq!(reply.status, 421, "{host}: {}", reply.body);
        assert_eq!(reply.error_code(), "host-refused", "{host}");
        assert!(reply.header("set-cookie").is_none(), "{host}");
        assert!(!reply.json()["error"]["remedy"].as_str().unwrap().is_empty());
        // Nor may it read or change anything with a session it got somehow.
        let reply = server.request_as(&host, "GET", "/api/v1/smtp", &[("Cookie", &cookie)], None);
        assert_eq!(reply.status, 421, "{host}");
        let reply = server.request_as(
            &host,
            "POST",
            "/api/v1/smtp",
            &[("Cookie", &cookie), ("Origin", &origin)],
            Some(&change),
        );
        assert_eq!(reply.status, 421, "{host}");
        assert_eq!(
            server.request_as(&host, "GET", "/login", &[], None).status,
            421,
            "{host}"
        );
    }
    assert_eq!(server.setting(&cookie, "service-provider"), "not-selected");

    // localhost with the listen port is this server.
    let host = format!("localhost:{port}");
    let origin = format!("http://{host}");
    assert_eq!(
        server.request_as(&host, "GET", "/login", &[], None).status,
        200
    );
    let reply = server.request_as(
        &host,
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&login_body()),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    // The refusals are logged like any request.
    assert!(server.log().contains("status=421"), "{}", server.log());
}

#[test]
fn behind_a_tls_proxy_the_public_origin_is_this_server() {
    let (dir, password_file) = password_dir();
    let state = dir.path().join("state");
    let server = Server::launch(&Launch {
        state_dir: Some(&state),
        password_file: &password_file,
        serve: &["--public-origin", "https://Panel.Example:8443/"],
        ..Launch::default()
    })
    .unwrap();
    // The proxy speaks plain HTTP to the panel on loopback and passes the browser's Host.
    let host = "panel.example:8443";
    let reply = server.request_as(
        host,
        "POST",
        "/api/v1/login",
        &[("Origin", "https://panel.example:8443")],
        Some(&login_body()),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    // The browser reached the panel over HTTPS: the cookie is Secure.
    let set_cookie = reply.header("set-cookie").unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();
    // The proxy's origin on another port, or over http, is another origin.
    for origin in [
        "https://panel.example",
        "http://panel.example:8443",
        "https://evil.example",
    ] {
        let reply = server.request_as(
            host,
            "POST",
            "/api/v1/smtp",
            &[("Cookie", &cookie), ("Origin", origin)],
            Some(&change),
        );
        assert_eq!(reply.status, 403, "{origin}: {}", reply.body);
    }
    let reply = server.request_as(
        host,
        "POST",
        "/api/v1/smtp",
        &[
            ("Cookie", &cookie),
            ("Origin", "https://panel.example:8443"),
        ],
        Some(&change),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Its host on another port is not it.
    assert_eq!(
        server
            .request_as("panel.example:9443", "GET", "/login", &[], None)
            .status,
        421
    );
    // The listen address still works as before, without Secure.
    let (reply, _) = server.try_login();
    assert_eq!(reply.status, 204);
    assert!(!reply.header("set-cookie").unwrap().contains("Secure"));
    drop(server);

    // A public origin must be an https origin.
    for bad in [
        "http://panel.example",
        "https://panel.example/panel",
        "panel.example",
    ] {
        let refused = Server::launch(&Launch {
            state_dir: Some(&state),
            password_file: &password_file,
            serve: &["--public-origin", bad],
            ..Launch::default()
        });
        let stderr = refused.err().expect("refused");
        assert!(stderr.contains("public-origin-invalid"), "{bad}: {stderr}");
    }
}

#[test]
fn a_wildcard_listen_answers_to_this_machines_addresses_only() {
    let (dir, password_file) = password_dir();
    let state = dir.path().join("state");
    let server = Server::launch(&Launch {
        state_dir: Some(&state),
        password_file: &password_file,
        listen: "0.0.0.0:0",
        serve: &["--allow-plain-http"],
        ..Launch::default()
    })
    .unwrap();
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    assert_eq!(server.request("GET", "/login", &[], None).status, 200);
    // Every address of this machine's interfaces names it (the test still connects on
    // loopback: only the Host header differs).
    let own: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap()
        .iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4())
        .collect();
    for ip in &own {
        let host = format!("{ip}:{port}");
        assert_eq!(
            server.request_as(&host, "GET", "/login", &[], None).status,
            200,
            "{host}"
        );
    }
    // An address that is not this machine's (TEST-NET-3), or a name, is not.
    for host in [
        format!("203.0.113.9:{port}"),
        format!("evil.example:{port}"),
    ] {
        assert_eq!(
            server.request_as(&host, "GET", "/login", &[], None).status,
            421,
            "{host}"
        );
    }
}
