//! The `net` capability: the only way the component reaches the network. It grants two
//! kinds of destination and nothing else: HTTPS to the configured identity-platform
//! authority (through the configured HTTP proxy, if any) and TCP connections, upgradable to
//! TLS in place, to the configured SMTP server and port. Every other destination is refused
//! with `Denied` naming it, and the check sits in one place, [`NetGrant`].
//!
//! Why blocking `std::net` with rustls and no async runtime: a call from the component into
//! the host is synchronous, so a blocking socket with read, write and connect timeouts is the
//! simplest model that cannot leak tasks. Why our own small HTTP/1.1 client instead of a
//! crate: the host must enforce the allowlist, `--resolve`, extra roots, the proxy and a
//! response cap on every request, and one request per connection with `Connection: close`
//! needs only a few dozen lines over `httparse`.
//!
//! Errors never carry request bodies or header values (they hold tokens), and the `Debug`
//! output of requests and responses shows neither.

mod deadline;
mod ehlo;
mod http;
mod limits;
mod policy;
mod proxy;
mod smtp;
mod starttls;
mod tcp;
mod tls;
mod wit_adapter;

#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use ehlo::system_host_name;
pub use http::{HttpRequest, HttpResponse};
pub use policy::{Destination, ProxyConfig, ResolveRule};
pub use smtp::{MAX_READ, MAX_STAGE_TIMEOUT, SmtpConnection};
pub use starttls::StartTlsStream;
pub use tls::complete_handshake;
pub use wit_adapter::{NetAccess, SigninOverrides};

/// The identity platform granted when `--authority` is not given.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// How the host reaches the network, from its command-line flags.
#[derive(Clone)]
pub struct NetConfig {
    /// The identity platform's origin, `https://HOST[:PORT]` (`--authority`).
    pub authority: String,
    /// `--resolve HOST:PORT=ADDR:PORT` rules; each `HOST:PORT` at most once.
    pub resolve: Vec<ResolveRule>,
    /// Extra trust roots, one PEM file each (`--ca-file`); the webpki roots are always trusted.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// HTTP proxy for HTTPS to the authority (`--proxy`). SMTP never uses it.
    pub proxy: Option<ProxyConfig>,
    /// Longest wait for a TCP connection, and for a free SMTP connection slot.
    pub connect_timeout: Duration,
    /// Longest wait for any one HTTPS read or write. SMTP reads and writes wait as long as
    /// the component's session says for each stage (RFC 5321 §4.5.3.2, up to 10 minutes).
    pub io_timeout: Duration,
    /// What the component divides every SMTP stage timeout by (`net.smtp-timeout-divisor`):
    /// 1, the RFC 5321 values. Only tests set more, to shorten 10 minutes to seconds.
    pub smtp_timeout_divisor: u32,
    /// The device's name for EHLO; `None`: the system's host name. Either is used only
    /// when it is a valid domain, else the connection's address literal (RFC 5321 §4.1.4).
    pub ehlo_name: Option<String>,
    /// Largest HTTP response accepted (headers and body each), in bytes.
    pub max_response_bytes: u64,
    /// Most SMTP connections open at once to one destination (Exchange Online allows 3 per
    /// mailbox and answers `432 4.3.2` beyond that).
    pub max_smtp_connections: usize,
}

impl NetConfig {
    /// Sends Microsoft's names to servers standing in for them, as `--resolve` and
    /// `--ca-file` do: `resolve_rules` (`HOST:PORT=ADDR:PORT`) go ahead of any rule already
    /// given, and `ca_pem` is trusted besides the web roots. TLS still verifies the names.
    pub fn reach_stand_ins(
        &mut self,
        resolve_rules: &[String],
        ca_pem: &[u8],
    ) -> Result<(), ConfigError> {
        for (i, rule) in resolve_rules.iter().enumerate() {
            self.resolve.insert(i, ResolveRule::parse(rule)?);
        }
        self.extra_roots_pem.push(ca_pem.to_vec());
        Ok(())
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            authority: DEFAULT_AUTHORITY.to_owned(),
            resolve: Vec::new(),
            extra_roots_pem: Vec::new(),
            proxy: None,
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            smtp_timeout_divisor: 1,
            ehlo_name: None,
            max_response_bytes: 1 << 20,
            max_smtp_connections: 3,
        }
    }
}

impl fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetConfig")
            .field("authority", &self.authority)
            .field("resolve", &self.resolve)
            .field(
                "extra_roots_pem",
                &format_args!("{} file(s)", self.extra_roots_pem.len()),
            )
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("smtp_timeout_divisor", &self.smtp_timeout_divisor)
            .field("ehlo_name", &self.ehlo_name)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_smtp_connections", &self.max_smtp_connections)
            .finish()
    }
}

/// Why a network operation failed: one case per remedy, mirroring WIT `net-error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The destination (`host:port`) is not granted to the component.
    #[error("the host does not grant access to {0}")]
    Denied(String),
    /// The host name could not be resolved.
    #[error("cannot resolve the host name {0}")]
    Dns(String),
    /// The server refused the connection or could not be reached.
    #[error("cannot connect: {0}")]
    Refused(String),
    #[error("no answer within the time limit")]
    Timeout,
    /// Certificate not trusted, name mismatch or handshake failure; rustls's reason.
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the peer closed the connection")]
    Closed,
    /// The response exceeded this cap, in bytes.
    #[error("the response is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// The configured HTTP proxy could not be reached or refused the tunnel.
    #[error("the HTTP proxy failed: {0}")]
    Proxy(String),
    #[error("{0}")]
    Other(String),
}

/// A network flag the host cannot use; the message names the flag and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--authority {value:?}: {reason}; expected https://HOST[:PORT], e.g. {DEFAULT_AUTHORITY}"
    )]
    Authority { value: String, reason: String },
    #[error(
        "--resolve {value:?}: {reason}; expected HOST:PORT=ADDR:PORT, e.g. login.microsoftonline.com:443=127.0.0.1:8443"
    )]
    Resolve { value: String, reason: String },
    #[error("--proxy {value:?}: {reason}; expected http://HOST:PORT")]
    Proxy { value: String, reason: String },
    /// `file` counts the `--ca-file` flags from 1.
    #[error("--ca-file (number {file}): {reason}")]
    CaFile { file: usize, reason: String },
    #[error("{0}")]
    Limits(String),
}

/// The process's network capability: configuration, trust roots and connection slots.
/// Built once; cheap to clone, shared by every instance.
#[derive(Clone)]
pub struct Net {
    shared: Arc<Shared>,
}

struct Shared {
    authority: Destination,
    authority_url: String,
    resolve: HashMap<Destination, SocketAddr>,
    proxy: Option<ProxyConfig>,
    tls: Arc<rustls::ClientConfig>,
    limiter: limits::ConnectionLimiter,
    connect_timeout: Duration,
    io_timeout: Duration,
    smtp_timeout_divisor: u32,
    ehlo_name: Option<String>,
    max_response_bytes: u64,
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("authority", &self.shared.authority_url)
            .field("proxy", &self.shared.proxy)
            .finish_non_exhaustive()
    }
}

impl Net {
    pub fn new(config: NetConfig) -> Result<Net, ConfigError> {
        let authority = policy::parse_authority(&config.authority)?;
        let mut resolve = HashMap::new();
        for rule in config.resolve {
            if let Some(previous) = resolve.insert(rule.from.clone(), rule.to)
                && previous != rule.to
            {
                return Err(ConfigError::Resolve {
                    value: format!("{}={}", rule.from, rule.to),
                    reason: format!("{} is already resolved to {previous}", rule.from),
                });
            }
        }
        for (what, value) in [
            ("connect timeout", config.connect_timeout),
            ("read/write timeout", config.io_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Limits(format!(
                    "the {what} must be longer than zero"
                )));
            }
        }
        if config.max_smtp_connections == 0 || config.max_response_bytes == 0 {
            return Err(ConfigError::Limits(
                "the SMTP connection limit and the response size cap must be at least 1".into(),
            ));
        }
        let tls = tls::client_config(&config.extra_roots_pem)?;
        Ok(Net {
            shared: Arc::new(Shared {
                authority_url: policy::authority_url(&authority),
                authority,
                resolve,
                proxy: config.proxy,
                tls,
                limiter: limits::ConnectionLimiter::new(config.max_smtp_connections),
                connect_timeout: config.connect_timeout,
                io_timeout: config.io_timeout,
                smtp_timeout_divisor: config.smtp_timeout_divisor.max(1),
                ehlo_name: config.ehlo_name,
                max_response_bytes: config.max_response_bytes,
            }),
        })
    }

    /// A per-call grant: the authority is always granted; `smtp` is the SMTP server and
    /// port, if any.
    pub fn grant(&self, smtp: Option<(String, u16)>) -> NetGrant {
        NetGrant {
            net: self.clone(),
            smtp: match smtp {
                Some((host, port)) => SmtpGrant::Fixed(Destination::new(&host, port)),
                None => SmtpGrant::None,
            },
            until: None,
        }
    }

    /// A per-call grant whose SMTP server and port are whatever `lookup` answers when the
    /// component connects (the device reads them from its store's SMTP destination record,
    /// which the component may bring up to date earlier in the same call).
    pub fn grant_smtp_lookup(
        &self,
        lookup: impl Fn() -> Option<(String, u16)> + Send + Sync + 'static,
    ) -> NetGrant {
        NetGrant {
            net: self.clone(),
            smtp: SmtpGrant::Lookup(Arc::new(lookup)),
            until: None,
        }
    }
}

/// Which SMTP server a call may connect to.
#[derive(Clone)]
enum SmtpGrant {
    None,
    Fixed(Destination),
    /// Looked up at connect time.
    Lookup(Arc<dyn Fn() -> Option<(String, u16)> + Send + Sync>),
}

impl SmtpGrant {
    fn allows(&self, dest: &Destination) -> bool {
        match self {
            Self::None => false,
            Self::Fixed(granted) => granted == dest,
            Self::Lookup(lookup) => {
                lookup().is_some_and(|(host, port)| Destination::new(&host, port) == *dest)
            }
        }
    }
}

impl fmt::Debug for SmtpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Fixed(dest) => write!(f, "Fixed({dest})"),
            Self::Lookup(_) => f.write_str("Lookup(store)"),
        }
    }
}

/// What one component call may reach. Every destination check happens here.
#[derive(Clone, Debug)]
pub struct NetGrant {
    net: Net,
    smtp: SmtpGrant,
    /// The call's deadline: no HTTPS exchange of this grant waits past it.
    until: Option<Instant>,
}

impl NetGrant {
    /// This grant for a call that must end by `deadline`: its HTTPS exchanges (connect,
    /// proxy `CONNECT`, TLS handshake, request, response) stop there even when the proxy
    /// stays silent or the server keeps trickling bytes.
    pub fn until(mut self, deadline: Instant) -> Self {
        self.until = Some(deadline);
        self
    }

    /// The granted identity platform, e.g. `https://login.microsoftonline.com`.
    pub fn authority(&self) -> &str {
        &self.net.shared.authority_url
    }

    /// The device's name for EHLO: the configured or system host name when it is a
    /// valid domain, else the address literal of `local` (see [`ehlo::ehlo_name`]).
    pub fn ehlo_name(&self, local: Option<std::net::IpAddr>) -> String {
        ehlo::ehlo_name(self.net.shared.ehlo_name.as_deref(), local)
    }

    /// What the component divides its SMTP stage timeouts by (1 but in tests).
    pub fn smtp_timeout_divisor(&self) -> u32 {
        self.net.shared.smtp_timeout_divisor
    }

    /// The longest wait for an HTTPS connection to open: the connect timeout, or what is
    /// left of the call's deadline when that is less; `Timeout` once the deadline has passed.
    fn connect_wait(&self) -> Result<Duration, NetError> {
        let timeout = self.net.shared.connect_timeout;
        let Some(until) = self.until else {
            return Ok(timeout);
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NetError::Timeout);
        }
        Ok(left.min(timeout))
    }

    /// Sends one HTTPS request to the authority and reads the whole response. Any other
    /// scheme, host or port is `Denied`; redirects are returned, not followed.
    pub fn http_request(&self, req: HttpRequest) -> Result<HttpResponse, NetError> {
        let shared = &self.net.shared;
        let url = policy::parse_url(&req.url)
            .map_err(|reason| NetError::Other(format!("invalid request URL: {reason}")))?;
        if url.scheme != "https" {
            return Err(NetError::Denied(url.origin()));
        }
        let dest = Destination::new(&url.host, url.port.unwrap_or(443));
        if dest != shared.authority {
            return Err(NetError::Denied(dest.to_string()));
        }
        http::check_request(&req)?;
        let connect_timeout = self.connect_wait()?;
        let sock = match &shared.proxy {
            Some(proxy) => tcp::dial(
                &proxy.address,
                &shared.resolve,
                connect_timeout,
                shared.io_timeout,
            )
            .map_err(|err| proxy::unreachable(proxy, err))?,
            None => tcp::dial(&dest, &shared.resolve, connect_timeout, shared.io_timeout)?,
        };
        // Bounded by the deadline from here on, the proxy's reply to CONNECT included.
        let mut sock = deadline::DeadlineStream::new(sock, self.until, shared.io_timeout);
        if let Some(proxy) = &shared.proxy {
            proxy::tunnel(&mut sock, proxy, &dest)?;
        }
        let stream = tls::handshake(&shared.tls, &dest.host, sock)?;
        let host_header = if dest.port == 443 {
            dest.url_host()
        } else {
            dest.to_string()
        };
        http::exchange(
            stream,
            &req,
            &host_header,
            &url.target,
            shared.max_response_bytes,
        )
    }

    /// Opens a TCP connection to the granted SMTP server. Waits up to the connect timeout
    /// for a free slot when the destination already has the most connections allowed.
    pub fn connect(&self, host: &str, port: u16) -> Result<SmtpConnection, NetError> {
        let shared = &self.net.shared;
        let dest = Destination::new(host, port);
        if !self.smtp.allows(&dest) {
            return Err(NetError::Denied(dest.to_string()));
        }
        let permit = shared
            .limiter
            .acquire(&dest.to_string(), shared.connect_timeout)?;
        let sock = tcp::dial(
            &dest,
            &shared.resolve,
            shared.connect_timeout,
            shared.io_timeout,
        )?;
        Ok(SmtpConnection::new(dest, sock, shared.tls.clone(), permit))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestCa, https_server, net_config};
    use super::*;

    const TOKEN_URL: &str = "https://login.microsoftonline.com/common/oauth2/v2.0/token";

    fn ok_json(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn request(method: &str, url: &str, body: &str) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: vec![("Accept".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// A grant whose authority, login.microsoftonline.com:443, is a local server trusting `ca`.
    fn grant_for(ca: &TestCa, port: u16) -> NetGrant {
        let config = net_config(ca, &[("login.microsoftonline.com:443", port)]);
        Net::new(config).unwrap().grant(None)
    }

    #[test]
    fn https_get_and_post_reach_the_authority_through_resolve_and_extra_roots() {
        let ca = TestCa::new("test CA");
        let server = ca.server_config(&["login.microsoftonline.com"]);
        let (port, handle) = https_server(server, 2, |_| ok_json(r#"{"ok":true}"#));
        let grant = grant_for(&ca, port);
        assert_eq!(grant.authority(), "https://login.microsoftonline.com");

        let get = grant
            .http_request(request(
                "GET",
                "https://login.microsoftonline.com/common/discovery",
                "",
            ))
            .unwrap();
        assert_eq!(
            (get.status, get.body.as_slice()),
            (200, &br#"{"ok":true}"#[..])
        );
        assert_eq!(get.header("content-type"), Some("application/json"));
        let post = grant
            .http_request(request(
                "POST",
                TOKEN_URL,
                "grant_type=refresh_token&client_id=c",
            ))
            .unwrap();
        assert_eq!(post.status, 200);

        let requests = handle.join().unwrap();
        let get = String::from_utf8_lossy(&requests[0]);
        assert!(
            get.starts_with(
                "GET /common/discovery HTTP/1.1\r\nHost: login.microsoftonline.com\r\n"
            ),
            "{get}"
        );
        assert!(!get.contains("Content-Length"), "{get}");
        let post = String::from_utf8_lossy(&requests[1]);
        assert!(
            post.starts_with("POST /common/oauth2/v2.0/token HTTP/1.1\r\n"),
            "{post}"
        );
        assert!(
            post.contains("Content-Length: 36\r\n")
                && post.ends_with("\r\n\r\ngrant_type=refresh_token&client_id=c"),
            "{post}"
        );
    }

    #[test]
    fn other_hosts_ports_and_schemes_are_denied_by_name() {
        let grant = Net::new(NetConfig::default())
            .unwrap()
            .grant(Some(("smtp.office365.com".into(), 587)));
        for (url, named) in [
            ("https://example.com/x?secret=1", "example.com:443"),
            (
                "https://login.microsoftonline.com:8443/",
                "login.microsoftonline.com:8443",
            ),
            ("https://smtp.office365.com:587/", "smtp.office365.com:587"),
            (
                "http://login.microsoftonline.com/common",
                "http://login.microsoftonline.com",
            ),
            ("https://[::1]/", "[::1]:443"),
        ] {
            let err = grant.http_request(request("GET", url, "")).unwrap_err();
            assert_eq!(err, NetError::Denied(named.into()), "{url}");
        }
        let err = grant
            .http_request(request("GET", "not a url", ""))
            .unwrap_err();
        assert!(matches!(err, NetError::Other(_)), "{err:?}");
    }

    #[test]
    fn header_injection_is_refused_before_connecting() {
        // Nothing listens: a connection attempt would fail with Refused, not Other.
        let ca = TestCa::new("test CA");
        let grant = grant_for(&ca, testing::closed_port());
        let mut req = request("POST", TOKEN_URL, "");
        req.headers
            .push(("X-Note".into(), "a\r\nAuthorization: Bearer stolen".into()));
        let err = grant.http_request(req).unwrap_err();
        assert!(
            matches!(&err, NetError::Other(m) if m.contains("X-Note") && !m.contains("stolen")),
            "{err:?}"
        );
    }

    #[test]
    fn untrusted_certificate_is_a_tls_error_with_the_reason() {
        let trusted = TestCa::new("trusted CA");
        let rogue = TestCa::new("rogue CA");
        let (port, _handle) = https_server(
            rogue.server_config(&["login.microsoftonline.com"]),
            1,
            |_| ok_json("{}"),
        );
        let err = grant_for(&trusted, port)
            .http_request(request("GET", TOKEN_URL, ""))
            .unwrap_err();
        assert_eq!(
            err,
            NetError::Tls("invalid peer certificate: UnknownIssuer".into())
        );
    }

    #[test]
    fn certificate_for_another_name_is_a_tls_error() {
        let ca = TestCa::new("test CA");
        let (port, _handle) =
            https_server(ca.server_config(&["evil.example"]), 1, |_| ok_json("{}"));
        let err = grant_for(&ca, port)
            .http_request(request("GET", TOKEN_URL, ""))
            .unwrap_err();
        assert!(
            matches!(&err, NetError::Tls(m) if m.contains("not valid for name")),
            "{err:?}"
        );
    }

    #[test]
    fn chunked_response_over_tls_is_reassembled() {
        let ca = TestCa::new("test CA");
        let (port, _handle) = https_server(
            ca.server_config(&["login.microsoftonline.com"]),
            1,
            |_| {
                b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"error\":\r\n17\r\n\"authorization_pending\"\r\n1\r\n}\r\n0\r\n\r\n".to_vec()
            },
        );
        let response = grant_for(&ca, port)
            .http_request(request("POST", TOKEN_URL, "x=1"))
            .unwrap();
        assert_eq!(response.status, 400);
        assert_eq!(response.body, br#"{"error":"authorization_pending"}"#);
    }

    #[test]
    fn oversized_response_is_too_large() {
        let ca = TestCa::new("test CA");
        let (port, _handle) =
            https_server(ca.server_config(&["login.microsoftonline.com"]), 1, |_| {
                ok_json(&"x".repeat(4096))
            });
        let mut config = net_config(&ca, &[("login.microsoftonline.com:443", port)]);
        config.max_response_bytes = 1024;
        let err = Net::new(config)
            .unwrap()
            .grant(None)
            .http_request(request("GET", TOKEN_URL, ""))
            .unwrap_err();
        assert_eq!(err, NetError::TooLarge(1024));
    }

    #[test]
    fn nothing_listening_is_refused() {
        let ca = TestCa::new("test CA");
        let err = grant_for(&ca, testing::closed_port())
            .http_request(request("GET", TOKEN_URL, ""))
            .unwrap_err();
        assert!(
            matches!(&err, NetError::Refused(m) if m.contains("login.microsoftonline.com:443")),
            "{err:?}"
        );
    }

    #[test]
    fn handles_can_be_shared_across_threads_and_resource_tables() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Net>();
        shareable::<NetGrant>();
        shareable::<SmtpConnection>();
    }

    #[test]
    fn bad_configuration_is_refused_with_a_remedy() {
        let config = |f: fn(&mut NetConfig)| {
            let mut config = NetConfig::default();
            f(&mut config);
            Net::new(config).unwrap_err().to_string()
        };
        assert!(
            config(|c| c.authority = "login.microsoftonline.com".into()).contains("--authority")
        );
        assert!(
            config(|c| c.extra_roots_pem = vec![b"not pem".to_vec()])
                .contains("no certificate found")
        );
        assert!(config(|c| c.io_timeout = Duration::ZERO).contains("longer than zero"));
        assert!(
            config(|c| c.resolve = vec![
                ResolveRule::parse("h:1=127.0.0.1:2").unwrap(),
                ResolveRule::parse("H:1=127.0.0.1:3").unwrap(),
            ])
            .contains("already resolved")
        );
    }
}
