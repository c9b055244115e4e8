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
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        } else if method != "GET" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        if let Some(body) = body {
            stream.write_all(body.as_bytes()).unwrap();
        }
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
