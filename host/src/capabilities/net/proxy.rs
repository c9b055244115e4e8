//! HTTPS through an HTTP proxy (S11): an HTTP/1.1 `CONNECT` tunnel to the authority, inside
//! which the TLS handshake runs end to end, so the proxy never sees the tokens.
//!
//! The `CONNECT` line names the authority by host name and the proxy resolves it, as curl
//! does: `--resolve` rules apply to the names this host resolves itself (the proxy's own
//! name included), not to the tunnel's target.

use std::io::{Read, Write};

use super::{Destination, NetError, ProxyConfig, tcp};

/// Largest proxy reply head accepted before the tunnel opens.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// Turns a failure to reach the proxy into `Proxy`, keeping timeouts as `Timeout`.
pub(super) fn unreachable(proxy: &ProxyConfig, err: NetError) -> NetError {
    match err {
        NetError::Timeout => NetError::Timeout,
        NetError::Dns(host) => NetError::Proxy(format!("cannot resolve the proxy's name {host}")),
        other => NetError::Proxy(format!("cannot reach {proxy}: {other}")),
    }
}

/// Asks the proxy for a tunnel to `target` over `sock`; on success `sock` is the tunnel.
/// `sock` is the call's deadline-bounded stream, so a proxy that accepts the connection and
/// never answers `CONNECT` ends the call in `Timeout` at its deadline instead of holding it.
pub(super) fn tunnel<S: Read + Write>(
    sock: &mut S,
    proxy: &ProxyConfig,
    target: &Destination,
) -> Result<(), NetError> {
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    sock.write_all(request.as_bytes())
        .and_then(|()| sock.flush())
        .map_err(|err| proxy_io(proxy, err))?;
    let head = read_head(sock, proxy)?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut reply = httparse::Response::new(&mut headers);
    match reply.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(NetError::Proxy(format!(
                "{proxy} did not answer CONNECT with a valid HTTP reply"
            )));
        }
    }
    match reply.code {
        Some(code) if (200..300).contains(&code) => Ok(()),
        code => Err(NetError::Proxy(format!(
            "{proxy} answered {} {} to CONNECT {target}",
            code.unwrap_or_default(),
            reply.reason.unwrap_or_default()
        ))),
    }
}

/// Reads the reply head byte by byte: nothing after the blank line may be consumed, since
/// it belongs to the tunnel (a 2xx reply to CONNECT has no body).
fn read_head<S: Read>(sock: &mut S, proxy: &ProxyConfig) -> Result<Vec<u8>, NetError> {
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_REPLY_HEAD {
            return Err(NetError::Proxy(format!(
                "{proxy} sent a reply head over {MAX_REPLY_HEAD} bytes"
            )));
        }
        match sock.read(&mut byte) {
            Ok(0) => {
                return Err(NetError::Proxy(format!(
                    "{proxy} closed the connection instead of opening the tunnel"
                )));
            }
            Ok(_) => head.push(byte[0]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(proxy_io(proxy, err)),
        }
    }
    Ok(head)
}

fn proxy_io(proxy: &ProxyConfig, err: std::io::Error) -> NetError {
    match tcp::io_error(err) {
        NetError::Timeout => NetError::Timeout,
        other => NetError::Proxy(format!("{proxy}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::sync::mpsc;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use super::super::testing::{self, TestCa, https_server, net_config};
    use super::super::{HttpRequest, Net, NetError, ProxyConfig};

    /// A one-connection CONNECT proxy that sends every tunnel to 127.0.0.1:`upstream`
    /// (or answers `refuse` instead) and returns the request line it received.
    fn connect_proxy(upstream: u16, refuse: Option<&'static str>) -> (u16, JoinHandle<String>) {
        let (listener, port) = testing::listener();
        let handle = thread::spawn(move || {
            let (mut client, _) = listener.accept().unwrap();
            let head = testing::read_request(&mut client);
            let line = String::from_utf8_lossy(&head)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            if let Some(reply) = refuse {
                client.write_all(reply.as_bytes()).unwrap();
                return line;
            }
            let upstream = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            let (mut client_in, mut upstream_out) =
                (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let pump = thread::spawn(move || {
                let _ = io::copy(&mut client_in, &mut upstream_out);
                let _ = upstream_out.shutdown(Shutdown::Write);
            });
            let (mut upstream_in, mut client_out) = (upstream, client);
            let _ = io::copy(&mut upstream_in, &mut client_out);
            let _ = client_out.shutdown(Shutdown::Write);
            let _ = pump.join();
            line
        });
        (port, handle)
    }

    fn token_request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode".into(),
            headers: Vec::new(),
            body: b"client_id=c&scope=s".to_vec(),
        }
    }

    #[test]
    fn https_goes_through_the_connect_tunnel_by_name() {
        let ca = TestCa::new("test CA");
        let server = ca.server_config(&["login.microsoftonline.com"]);
        let (server_port, server) = https_server(server, 1, |_| {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()
        });
        let (proxy_port, proxy) = connect_proxy(server_port, None);
        // No --resolve rule for the authority: only the proxy knows where it is.
        let mut config = net_config(&ca, &[]);
        config.proxy = Some(ProxyConfig::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap());
        let response = Net::new(config)
            .unwrap()
            .grant(None)
            .http_request(token_request())
            .unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"{}"[..])
        );
        assert_eq!(
            proxy.join().unwrap(),
            "CONNECT login.microsoftonline.com:443 HTTP/1.1"
        );
        let seen = server.join().unwrap();
        assert!(
            seen[0].ends_with(b"client_id=c&scope=s"),
            "the request crossed the tunnel whole"
        );
    }

    #[test]
    fn proxy_refusing_the_tunnel_is_a_proxy_error_with_its_status() {
        let ca = TestCa::new("test CA");
        let (proxy_port, proxy) = connect_proxy(
            0,
            Some("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        );
        let mut config = net_config(&ca, &[]);
        config.proxy = Some(ProxyConfig::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap());
        let err = Net::new(config)
            .unwrap()
            .grant(None)
            .http_request(token_request())
            .unwrap_err();
        assert_eq!(
            err,
            NetError::Proxy(format!(
                "http://127.0.0.1:{proxy_port} answered 407 Proxy Authentication Required to CONNECT login.microsoftonline.com:443"
            ))
        );
        proxy.join().unwrap();
    }

    #[test]
    fn unreachable_proxy_is_a_proxy_error() {
        let ca = TestCa::new("test CA");
        let mut config = net_config(&ca, &[]);
        let port = testing::closed_port();
        config.proxy = Some(ProxyConfig::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        let err = Net::new(config)
            .unwrap()
            .grant(None)
            .http_request(token_request())
            .unwrap_err();
        assert!(
            matches!(&err, NetError::Proxy(m) if m.contains("cannot reach") && m.contains("refused")),
            "{err:?}"
        );
    }

    /// A proxy that accepts the connection and reads `CONNECT` but never answers: the call
    /// must end in `Timeout` at its own deadline. The I/O timeout is far longer, and the
    /// proxy hangs up after a while (so a regression fails instead of hanging the suite),
    /// so without the deadline on the reply the error would be "closed", not `Timeout`.
    #[test]
    fn a_proxy_that_never_answers_connect_times_out_at_the_call_deadline() {
        let ca = TestCa::new("test CA");
        let (listener, port) = testing::listener();
        let (done, ended) = mpsc::channel::<()>();
        let silent = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let head = testing::read_request(&mut sock);
            let _ = ended.recv_timeout(Duration::from_secs(20));
            head
        });
        let mut config = net_config(&ca, &[]);
        config.io_timeout = Duration::from_secs(120);
        config.proxy = Some(ProxyConfig::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        let err = Net::new(config)
            .unwrap()
            .grant(None)
            .until(Instant::now() + Duration::from_millis(300))
            .http_request(token_request())
            .unwrap_err();
        let _ = done.send(());
        assert_eq!(err, NetError::Timeout);
        let head = silent.join().unwrap();
        assert!(
            head.starts_with(b"CONNECT login.microsoftonline.com:443 "),
            "the proxy got the CONNECT before going silent"
        );
    }

    #[test]
    fn a_proxy_that_hangs_up_is_a_proxy_error() {
        let ca = TestCa::new("test CA");
        let (listener, port) = testing::listener();
        let hang_up = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let _ = sock.read(&mut [0; 64]);
        });
        let mut config = net_config(&ca, &[]);
        config.proxy = Some(ProxyConfig::parse(&format!("http://127.0.0.1:{port}")).unwrap());
        let err = Net::new(config)
            .unwrap()
            .grant(None)
            .http_request(token_request())
            .unwrap_err();
        assert!(
            matches!(&err, NetError::Proxy(m) if m.contains("closed")),
            "{err:?}"
        );
        hang_up.join().unwrap();
    }
}
