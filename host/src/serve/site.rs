//! Which names and origins are this server: the `Host` check of every request (DNS
//! rebinding) and the `Origin` rule of mutating requests (cross-site requests).
//!
//! A page of another site can make a browser talk to the panel under the other site's
//! name (DNS rebinding: `evil.example` resolving to the printer); its requests then carry
//! `Host: evil.example` and a matching `Origin`, so an `Origin` check alone passes them.
//! The `Host` header tells them apart: the server answers only to
//!
//! - its listen address (for a wildcard listen, `0.0.0.0` or `::`, any address of this
//!   machine's interfaces, among them the one the connection came in on), with the listen
//!   port;
//! - `localhost` with the listen port;
//! - the `--public-origin`'s host and port (a TLS reverse proxy, or the machine's DNS
//!   name).
//!
//! Anything else gets 421 with the typed error `host-refused`. IP literals are compared as
//! addresses (an IPv4-mapped IPv6 address is its IPv4 address).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::ApiError;

/// The origin that a reverse proxy (or the machine's DNS name) serves the panel under:
/// `https://HOST[:PORT]`, kept normalised (host in lower case, no default port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PublicOrigin {
    /// `https://host` or `https://host:port`, as a browser sends it in `Origin`.
    origin: String,
    /// Lower case; an IPv6 literal keeps its brackets.
    host: String,
    port: u16,
}

impl PublicOrigin {
    /// Parses `--public-origin`: `https://` and a host with an optional port, nothing else
    /// (a trailing `/` is allowed). A plain `http://` origin is refused: the panel's
    /// session cookie would then travel in clear text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &text[8..])
            .ok_or_else(|| format!("{text:?} does not start with https://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{text:?} is not an origin: give https://HOST or https://HOST:PORT, without a path or user"
            ));
        }
        let authority = Authority::from_str(rest).map_err(|e| format!("{text:?}: {e}"))?;
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        let port = authority.port_u16().unwrap_or(443);
        let origin = if port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        };
        Ok(Self { origin, host, port })
    }

    /// `https://host[:port]`.
    pub(crate) fn as_str(&self) -> &str {
        &self.origin
    }

    /// The host, without brackets around an IPv6 literal (a certificate's name).
    pub(crate) fn host_name(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The address a connection came in on: for a wildcard listen, the machine's address
/// the client used. Set by the connection loop on every request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Connection {
    pub local: SocketAddr,
}

/// What this server is, as browsers see it.
#[derive(Clone, Debug)]
pub(crate) struct Site {
    /// The bound address (the real port when `--listen` said 0).
    pub listen: SocketAddr,
    /// Whether the listener speaks TLS.
    pub https: bool,
    pub public_origin: Option<PublicOrigin>,
}

/// `ip` as an address to compare: an IPv4-mapped IPv6 address is its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The addresses of this machine's interfaces, now (DHCP may change them while running).
fn interface_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|list| list.iter().map(|i| canonical(i.ip())).collect())
        .unwrap_or_default()
}

impl Site {
    /// The scheme browsers use for the listen address.
    pub(crate) fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// Whether `authority` (a `Host` header) is the public origin's host and port.
    fn names_public_origin(&self, authority: &Authority) -> bool {
        self.public_origin.as_ref().is_some_and(|public| {
            authority.host().eq_ignore_ascii_case(&public.host)
                && authority.port_u16().unwrap_or(443) == public.port
        })
    }

    /// Whether a request with this `Host` header, on a connection that came in on `local`,
    /// is addressed to this server.
    pub(crate) fn host_allowed(&self, host: &str, local: SocketAddr) -> bool {
        if host.is_empty() || host.contains('@') {
            return false;
        }
        let Ok(authority) = Authority::from_str(host) else {
            return false;
        };
        if self.names_public_origin(&authority) {
            return true;
        }
        let name = authority.host();
        let port = authority.port_u16();
        let default_port = if self.https { 443 } else { 80 };
        if port.unwrap_or(default_port) != self.listen.port() {
            return false;
        }
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let literal = name.trim_start_matches('[').trim_end_matches(']');
        let Ok(ip) = literal.parse::<IpAddr>() else {
            return false;
        };
        let ip = canonical(ip);
        let listen = canonical(self.listen.ip());
        if !listen.is_unspecified() {
            return ip == listen;
        }
        ip == canonical(local.ip()) || ip.is_loopback() || interface_addresses().contains(&ip)
    }

    /// Whether the `Origin` of a mutating request is this server: the listen address as
    /// the browser sees it (this server's scheme and the `Host` header, which
    /// [`host_check`] has accepted), or the public origin (only it, when the `Host` is the
    /// public origin's: a proxy's host reached over plain HTTP is another origin).
    pub(crate) fn same_origin(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if self
            .public_origin
            .as_ref()
            .is_some_and(|public| origin.eq_ignore_ascii_case(public.as_str()))
        {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if Authority::from_str(host).is_ok_and(|a| self.names_public_origin(&a)) {
            return false;
        }
        let own = if self.https { "https://" } else { "http://" };
        !host.is_empty()
            && origin
                .strip_prefix(own)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    }

    /// Whether this request reached the browser over HTTPS: this server's TLS, or the
    /// public origin's (a TLS reverse proxy), told by the `Origin` it was sent from.
    pub(crate) fn request_is_https(&self, headers: &HeaderMap) -> bool {
        self.https
            || self.public_origin.as_ref().is_some_and(|public| {
                headers
                    .get(header::ORIGIN)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|origin| origin.eq_ignore_ascii_case(public.as_str()))
            })
    }
}

/// Every request: refused with 421 `host-refused` unless its `Host` names this server.
pub(crate) async fn host_check(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let site = &state.site;
    let local = request
        .extensions()
        .get::<Connection>()
        .map_or(site.listen, |c| c.local);
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if site.host_allowed(host, local) {
        return next.run(request).await;
    }
    let shown: String = host.chars().take(100).collect();
    let port = site.listen.port();
    let scheme = site.scheme();
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "host-refused",
        format!("This server does not answer to the name {shown:?} (DNS rebinding protection)"),
        &format!(
            "Open the panel at the address `mfp-host serve` printed, or at {scheme}://localhost:{port}; to reach it under another name, start it with --public-origin https://NAME[:PORT]."
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn site(listen: &str, https: bool, public: Option<&str>) -> Site {
        Site {
            listen: listen.parse().unwrap(),
            https,
            public_origin: public.map(|p| PublicOrigin::parse(p).unwrap()),
        }
    }

    #[test]
    fn a_public_origin_is_https_and_only_an_origin() {
        let p = PublicOrigin::parse("https://Printer.Example/").unwrap();
        assert_eq!(p.as_str(), "https://printer.example");
        let p = PublicOrigin::parse("https://printer.example:8443").unwrap();
        assert_eq!(p.as_str(), "https://printer.example:8443");
        let p = PublicOrigin::parse("https://[2001:db8::1]:8443").unwrap();
        assert_eq!(p.host_name(), "2001:db8::1");
        for bad in [
            "http://printer.example",
            "printer.example",
            "https://",
            "https://printer.example/panel",
            "https://user@printer.example",
            "https://printer.example?x",
        ] {
            assert!(PublicOrigin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_host_must_be_the_listen_address_localhost_or_the_public_origin() {
        let local = "127.0.0.1:8080".parse().unwrap();
        let s = site("127.0.0.1:8080", false, Some("https://panel.example"));
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "panel.example",
            "panel.example:443",
        ] {
            assert!(s.host_allowed(ok, local), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "127.0.0.2:8080",
            "[::1]:8080",
            "panel.example:8080",
            "panel.example.evil.example",
            "user@127.0.0.1:8080",
            "",
            "127.0.0.1:8080/x",
        ] {
            assert!(!s.host_allowed(bad, local), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_listen_answers_to_the_machine_s_addresses() {
        let s = site("0.0.0.0:8443", true, None);
        let local: SocketAddr = "192.0.2.7:8443".parse().unwrap();
        assert!(s.host_allowed("192.0.2.7:8443", local));
        assert!(s.host_allowed("127.0.0.1:8443", local));
        assert!(s.host_allowed("localhost:8443", local));
        assert!(!s.host_allowed("evil.example:8443", local));
        assert!(!s.host_allowed("192.0.2.7:8080", local));
        // Not an address of this machine (TEST-NET-2 is never assigned).
        assert!(!s.host_allowed("198.51.100.9:8443", local));
        // A dual-stack listen sees IPv4 clients as IPv4-mapped addresses.
        let s = site("[::]:8443", true, None);
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:8443".parse().unwrap();
        assert!(s.host_allowed("192.0.2.7:8443", mapped));
    }

    #[test]
    fn the_origin_is_this_server_s_scheme_and_host_or_the_public_origin() {
        let headers = |host: &str, origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        let plain = site("127.0.0.1:8080", false, Some("https://panel.example"));
        assert!(plain.same_origin(&headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"))));
        assert!(!plain.same_origin(&headers("127.0.0.1:8080", Some("https://127.0.0.1:8080"))));
        assert!(!plain.same_origin(&headers("127.0.0.1:8080", None)));
        assert!(!plain.same_origin(&headers("127.0.0.1:8080", Some("null"))));
        assert!(plain.same_origin(&headers("panel.example", Some("https://panel.example"))));
        assert!(!plain.same_origin(&headers("panel.example", Some("http://panel.example"))));
        assert!(plain.request_is_https(&headers("panel.example", Some("https://panel.example"))));
        assert!(!plain.request_is_https(&headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"))));
        let tls = site("127.0.0.1:8443", true, None);
        assert!(tls.same_origin(&headers("127.0.0.1:8443", Some("https://127.0.0.1:8443"))));
        assert!(!tls.same_origin(&headers("127.0.0.1:8443", Some("http://127.0.0.1:8443"))));
        assert!(tls.request_is_https(&headers("127.0.0.1:8443", None)));
    }
}
