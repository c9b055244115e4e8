//! Opening TCP connections (with `--resolve` applied and timeouts set) and turning I/O
//! errors into [`NetError`] cases, so every module reports a failure the same way.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{Destination, NetError};

/// Connects to `dest`, or to the address a `--resolve` rule gives for it, trying each
/// resolved address in turn. The stream gets `io_timeout` as its read and write timeout.
/// DNS itself is the system resolver's and has no timeout of ours.
pub(super) fn dial(
    dest: &Destination,
    resolve: &HashMap<Destination, SocketAddr>,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<TcpStream, NetError> {
    let addrs: Vec<SocketAddr> = match resolve.get(dest) {
        Some(addr) => vec![*addr],
        None => (dest.host.as_str(), dest.port)
            .to_socket_addrs()
            .map_err(|_| NetError::Dns(dest.host.clone()))?
            .collect(),
    };
    let mut last = NetError::Dns(dest.host.clone());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, connect_timeout) {
            Ok(sock) => {
                let configured = sock
                    .set_read_timeout(Some(io_timeout))
                    .and_then(|()| sock.set_write_timeout(Some(io_timeout)))
                    .and_then(|()| sock.set_nodelay(true));
                return match configured {
                    Ok(()) => Ok(sock),
                    Err(err) => Err(NetError::Other(format!(
                        "cannot configure the socket: {err}"
                    ))),
                };
            }
            Err(err) => last = connect_error(dest, addr, &err),
        }
    }
    Err(last)
}

fn connect_error(dest: &Destination, addr: SocketAddr, err: &io::Error) -> NetError {
    use io::ErrorKind::*;
    match err.kind() {
        TimedOut | WouldBlock => NetError::Timeout,
        ConnectionRefused => NetError::Refused(format!("{dest} ({addr}) refused the connection")),
        NetworkUnreachable | HostUnreachable => {
            NetError::Refused(format!("{dest} ({addr}) is unreachable"))
        }
        _ => NetError::Refused(format!("{dest} ({addr}): {err}")),
    }
}

/// Maps an error from reading or writing an open connection (plain or TLS).
pub(super) fn io_error(err: io::Error) -> NetError {
    use io::ErrorKind::*;
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return NetError::Tls(tls.to_string());
    }
    match err.kind() {
        TimedOut | WouldBlock => NetError::Timeout,
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => NetError::Closed,
        _ => NetError::Other(format!("network I/O failed: {err}")),
    }
}
