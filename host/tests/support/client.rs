//! The web panel's side of `mfp-host serve` in tests and benchmarks: requests on fresh
//! connections, the administrator's login, logged-in API calls, and the multi-step flows
//! several tests share (the demo's sign-in). It only needs the server's address, so it
//! serves the spawned binary ([`super::server`]) and an in-process server alike.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{Reply, parse_reply};

/// The administrator password every test server is started with.
pub const PASSWORD: &str = "correct horse battery staple";

/// Talks to the server at `addr` (`127.0.0.1:PORT`).
pub struct Client {
    pub addr: String,
}

/// An HTTP/1.1 request with `Connection: close`; a body is sent as JSON, unless `headers`
/// name another `Content-Type`.
pub fn raw_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let typed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if let Some(body) = body {
        if !typed {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if method != "GET" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body.unwrap_or_default().as_bytes());
    raw
}

impl Client {
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request on a fresh connection. A body is sent as JSON.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.request_as(&self.addr, method, path, headers, body)
    }

    /// [`Self::request`] with this `Host` header (DNS rebinding: another site's name).
    pub fn request_as(
        &self,
        host: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        stream
            .write_all(&raw_request(host, method, path, headers, body))
            .unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        parse_reply(&raw)
    }

    /// Logs in from the panel's own origin: the answer, and the `Cookie` header value
    /// when it was a 204 with a session cookie.
    pub fn try_login(&self) -> (Reply, Option<String>) {
        let reply = self.request(
            "POST",
            "/api/v1/login",
            &[("Origin", &self.origin())],
            Some(&json!({ "password": PASSWORD }).to_string()),
        );
        let cookie = (reply.status == 204)
            .then(|| reply.header("set-cookie"))
            .flatten()
            .map(|c| c.split(';').next().unwrap().trim().to_owned());
        (reply, cookie)
    }

    /// Logs in; returns the `Cookie` header value, after checking the cookie's attributes.
    pub fn login(&self) -> String {
        let (reply, pair) = self.try_login();
        assert_eq!(reply.status, 204, "{}", reply.body);
        let cookie = reply.header("set-cookie").expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let pair = pair.unwrap();
        assert!(pair.starts_with("mfp_session=") && pair.len() == "mfp_session=".len() + 64);
        pair
    }

    /// A logged-in request from the panel's own origin.
    pub fn api(&self, cookie: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        self.api_raw(cookie, method, path, body.as_deref())
    }

    /// [`Self::api`] with a body already serialised (a large send, built once).
    pub fn api_raw(&self, cookie: &str, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.request(
            method,
            path,
            &[("Cookie", cookie), ("Origin", &self.origin())],
            body,
        )
    }

    /// One setting's value as the web panel shows it.
    pub fn setting(&self, cookie: &str, key: &str) -> String {
        let smtp = self.api(cookie, "GET", "/api/v1/smtp", None);
        assert_eq!(smtp.status, 200, "{}", smtp.body);
        smtp.json()["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no setting {key}"))
            .to_owned()
    }

    /// Polls `GET /api/v1/signin` until its code is `until` (bounded).
    pub fn wait_for_signin(&self, cookie: &str, until: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = self.api(cookie, "GET", "/api/v1/signin", None);
            assert_eq!(reply.status, 200, "{}", reply.body);
            let value = reply.json();
            if value["code"] == until {
                return value;
            }
            assert!(Instant::now() < deadline, "still {value}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Selects Exchange Online/Outlook.com with one Apply from the web panel.
    pub fn select_exchange_online(&self, cookie: &str) {
        let reply = self.api(
            cookie,
            "POST",
            "/api/v1/smtp",
            Some(json!({ "changes": { "service-provider": "exchange-online" } })),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }

    /// Signs the demo in: Exchange Online selected, the code approved, the timer finishing.
    pub fn demo_sign_in(&self, cookie: &str) {
        self.select_exchange_online(cookie);
        let started = self.api(cookie, "POST", "/api/v1/signin", None);
        assert_eq!(started.status, 200, "{}", started.body);
        let user_code = started.json()["user-code"].as_str().unwrap().to_owned();
        let reply = self.api(
            cookie,
            "POST",
            "/demo/api/approve",
            Some(json!({ "user-code": user_code })),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        self.wait_for_signin(cookie, "signed-in");
    }
}
