//! Which destinations the `net` capability may reach, and the parsing of the host's network
//! flags (`--authority`, `--resolve`, `--proxy`) and of the URLs the component asks for.
//!
//! Parsing is strict on purpose: an egress allowlist is only as good as the parser in front
//! of it, so anything ambiguous (credentials in a URL, a path on the authority, a host name
//! where an address is expected, a missing port) is refused with a message that says what
//! to write instead, rather than guessed at.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};

use super::ConfigError;

/// A host and port: the unit the allowlist grants. Host names compare in lower case and
/// IPv6 addresses are kept without brackets (`::1`), so `[::1]` and `::1` are the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Destination {
    pub host: String,
    pub port: u16,
}

impl Destination {
    pub fn new(host: &str, port: u16) -> Self {
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Self {
            host: host.to_ascii_lowercase(),
            port,
        }
    }

    /// The host as written in a URL, an HTTP `Host` header or a `CONNECT` line.
    pub fn url_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// `host:port`, with brackets around an IPv6 address: the text a `denied` error carries.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.url_host(), self.port)
    }
}

/// An absolute URL split into what the capability needs to check and send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    /// The scheme in lower case.
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// The request target: path and query, always starting with `/`; the fragment is dropped.
    pub target: String,
}

impl Url {
    /// `scheme://host[:port]`, for a `denied` error that must not echo the path or query.
    pub fn origin(&self) -> String {
        let dest = Destination::new(&self.host, self.port.unwrap_or(0));
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, dest.url_host()),
            None => format!("{}://{}", self.scheme, dest.url_host()),
        }
    }
}

/// Parses `scheme://host[:port][/path][?query][#fragment]`. The reason on failure never
/// repeats the URL (its query could carry something private).
pub(crate) fn parse_url(s: &str) -> Result<Url, &'static str> {
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the URL contains spaces, control characters or non-ASCII characters (percent-encode them)",
        );
    }
    let (scheme, rest) = s
        .split_once("://")
        .ok_or("the URL is not absolute (expected scheme://host…)")?;
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err("the URL's scheme is not valid");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = parse_host_port(authority)?;
    let tail = tail.split('#').next().unwrap_or_default();
    let target = if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    };
    Ok(Url {
        scheme: scheme.to_ascii_lowercase(),
        host,
        port,
        target,
    })
}

/// Splits `host[:port]` or `[v6addr][:port]`; the host comes back lower case, unbracketed.
fn parse_host_port(s: &str) -> Result<(String, Option<u16>), &'static str> {
    if s.contains('@') {
        return Err("user names and passwords in URLs are not supported");
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address opened with '[' is not closed with ']'")?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| "the text between '[' and ']' is not an IPv6 address")?;
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or("only ':PORT' may follow an IPv6 address in brackets")?,
            ),
        };
        (addr, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        };
        if host.is_empty() {
            return Err("the host name is missing");
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(
                "the host name may hold only letters, digits, '-', '.' and '_' (write an IPv6 address in brackets)",
            );
        }
        (host, port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str) -> Result<u16, &'static str> {
    const MESSAGE: &str = "the port must be a number from 1 to 65535";
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MESSAGE);
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(MESSAGE),
        Ok(port) => Ok(port),
    }
}

/// The identity platform's origin, from `--authority`: `https://HOST[:PORT]` and nothing
/// else (the tenant and endpoint paths are the component's business).
pub(crate) fn parse_authority(s: &str) -> Result<Destination, ConfigError> {
    let error = |reason: &str| ConfigError::Authority {
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let url = parse_url(s).map_err(error)?;
    if url.scheme != "https" {
        return Err(error(
            "only https:// is allowed: tokens never travel in the clear",
        ));
    }
    if url.target != "/" {
        return Err(error(
            "give the origin only, without a path or query (the tenant is set with --tenant)",
        ));
    }
    Ok(Destination::new(&url.host, url.port.unwrap_or(443)))
}

/// The authority as the component sees it: `https://host`, with `:port` unless it is 443.
pub(crate) fn authority_url(dest: &Destination) -> String {
    if dest.port == 443 {
        format!("https://{}", dest.url_host())
    } else {
        format!("https://{dest}")
    }
}

/// One `--resolve HOST:PORT=ADDR:PORT`: connections to `HOST:PORT` go to `ADDR:PORT`, while
/// TLS still verifies `HOST` and the component still sees `HOST`. `ADDR` is an IP address,
/// never a name, so a rule cannot itself depend on DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveRule {
    /// The name and port the component asks for.
    pub from: Destination,
    /// Where the host actually connects.
    pub to: SocketAddr,
}

impl ResolveRule {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let error = |reason: &str| ConfigError::Resolve {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (from, to) = s
            .split_once('=')
            .ok_or_else(|| error("expected HOST:PORT=ADDR:PORT"))?;
        let (host, port) = parse_host_port(from).map_err(error)?;
        let port = port.ok_or_else(|| error("the port before '=' is missing"))?;
        let to: SocketAddr = to.parse().map_err(|_| {
            error("after '=' give an IP address and port, e.g. 127.0.0.1:8443 or [::1]:8443")
        })?;
        if to.port() == 0 {
            return Err(error("the port after '=' must be from 1 to 65535"));
        }
        Ok(Self {
            from: Destination::new(&host, port),
            to,
        })
    }
}

/// The HTTP proxy from `--proxy http://HOST:PORT`, used for HTTPS to the authority (S11)
/// through `CONNECT`. Proxy authentication is not supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    pub address: Destination,
}

impl ProxyConfig {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let error = |reason: &str| ConfigError::Proxy {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        let url = parse_url(s).map_err(error)?;
        if url.scheme != "http" {
            return Err(error(
                "only http:// proxies are supported (the tunnel itself carries TLS)",
            ));
        }
        if url.target != "/" {
            return Err(error("give http://HOST:PORT only, without a path"));
        }
        let port = url
            .port
            .ok_or_else(|| error("add the proxy's port, e.g. http://proxy.example.com:8080"))?;
        Ok(Self {
            address: Destination::new(&url.host, port),
        })
    }
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_and_target() {
        let url = parse_url("HTTPS://Login.MicrosoftOnline.com/common/oauth2/v2.0/token?x=1#frag")
            .unwrap();
        assert_eq!(url.scheme, "https");
        assert_eq!(url.host, "login.microsoftonline.com");
        assert_eq!(url.port, None);
        assert_eq!(url.target, "/common/oauth2/v2.0/token?x=1");
        assert_eq!(parse_url("https://h:8443").unwrap().target, "/");
        assert_eq!(parse_url("https://h?q").unwrap().target, "/?q");
        let v6 = parse_url("https://[::1]:8443/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", Some(8443)));
        assert_eq!(v6.origin(), "https://[::1]:8443");
    }

    #[test]
    fn urls_that_could_smuggle_a_destination_are_refused() {
        for bad in [
            "https://user:pw@login.microsoftonline.com/",
            "https://login.microsoftonline.com /x",
            "https://login.microsoftonline.com\r\nHost: evil/",
            "https://login.microsoftonline.com:0/",
            "https://login.microsoftonline.com:99999/",
            "https://login.microsoftonline.com:/",
            "https://a:1:2/",
            "https://[::1/",
            "https:///path",
            "login.microsoftonline.com/path",
            "https://lögin.example/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn authority_is_an_https_origin() {
        let dest = parse_authority("https://login.microsoftonline.com/").unwrap();
        assert_eq!(dest, Destination::new("login.microsoftonline.com", 443));
        assert_eq!(authority_url(&dest), "https://login.microsoftonline.com");
        let local = parse_authority("https://127.0.0.1:8443").unwrap();
        assert_eq!(authority_url(&local), "https://127.0.0.1:8443");

        let err = parse_authority("http://login.microsoftonline.com").unwrap_err();
        assert!(err.to_string().contains("only https://"), "{err}");
        let err = parse_authority("https://login.microsoftonline.com/common").unwrap_err();
        assert!(err.to_string().contains("--tenant"), "{err}");
    }

    #[test]
    fn resolve_rules_map_a_name_to_an_address() {
        let rule = ResolveRule::parse("Login.MicrosoftOnline.com:443=127.0.0.1:8443").unwrap();
        assert_eq!(
            rule.from,
            Destination::new("login.microsoftonline.com", 443)
        );
        assert_eq!(rule.to, "127.0.0.1:8443".parse().unwrap());
        let v6 = ResolveRule::parse("[::1]:25=[::1]:2525").unwrap();
        assert_eq!(v6.from.to_string(), "[::1]:25");

        for (bad, hint) in [
            ("login.microsoftonline.com:443", "HOST:PORT=ADDR:PORT"),
            (
                "login.microsoftonline.com=127.0.0.1:8443",
                "port before '='",
            ),
            ("login.microsoftonline.com:443=localhost:8443", "IP address"),
            ("login.microsoftonline.com:443=127.0.0.1", "IP address"),
            ("login.microsoftonline.com:443=127.0.0.1:0", "1 to 65535"),
        ] {
            let err = ResolveRule::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(hint) && err.contains("--resolve"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn proxy_is_http_with_an_explicit_port() {
        let proxy = ProxyConfig::parse("http://Proxy.Corp:8080/").unwrap();
        assert_eq!(proxy.address, Destination::new("proxy.corp", 8080));
        assert_eq!(proxy.to_string(), "http://proxy.corp:8080");
        for (bad, hint) in [
            ("http://proxy.corp", "port"),
            ("https://proxy.corp:8443", "only http://"),
            ("socks5://proxy.corp:1080", "only http://"),
            ("http://user:pw@proxy.corp:8080", "not supported"),
            ("proxy.corp:8080", "not absolute"),
        ] {
            let err = ProxyConfig::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains(hint) && err.contains("--proxy"),
                "{bad}: {err}"
            );
        }
    }
}
