//! The `relay-client` import: the connection of one nearby device to the relay, which
//! the relay's listener accepted ([`crate::relay`]). The host only moves its bytes and,
//! when the component says so after the device's `STARTTLS`, runs the server side of the
//! TLS handshake with the panel's certificate. Like the SMTP connection to Exchange, it
//! buffers nothing: bytes the device sent before the handshake are never taken for bytes
//! sent under TLS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::net::NetError;
use crate::bindings::relay_client::{Host, HostClientConnection};
use crate::capabilities::net::{MAX_READ, MAX_STAGE_TIMEOUT};

/// One device's connection: plain TCP, upgraded to TLS in place.
pub struct RelayConnection {
    stream: Stream,
    /// The certificate to answer `STARTTLS` with; `None`: TLS is not offered.
    tls: Option<Arc<ServerConfig>>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// A TLS handshake failed: the socket is closed.
    Failed,
}

const FAILED: &str = "the connection was closed after its TLS handshake failed";

impl RelayConnection {
    pub fn new(sock: TcpStream, tls: Option<Arc<ServerConfig>>) -> Self {
        let _ = sock.set_nodelay(true);
        Self {
            stream: Stream::Plain(sock),
            tls,
        }
    }

    fn socket(&self) -> Option<&TcpStream> {
        match &self.stream {
            Stream::Plain(sock) => Some(sock),
            Stream::Tls(stream) => Some(&stream.sock),
            Stream::Failed => None,
        }
    }

    fn set_timeout(&self, timeout: Duration) -> Result<(), NetError> {
        let timeout = timeout.clamp(Duration::from_millis(1), MAX_STAGE_TIMEOUT);
        let sock = self
            .socket()
            .ok_or_else(|| NetError::Other(FAILED.into()))?;
        sock.set_read_timeout(Some(timeout))
            .and_then(|()| sock.set_write_timeout(Some(timeout)))
            .map_err(|e| NetError::Other(format!("cannot set the timeout: {e}")))
    }

    /// Reads at most `max` bytes (at most [`MAX_READ`]), waiting up to `timeout` for one.
    pub fn read(&mut self, max: u32, timeout: Duration) -> Result<Vec<u8>, NetError> {
        if max == 0 {
            return Err(NetError::Other(
                "a read must ask for at least 1 byte".into(),
            ));
        }
        self.set_timeout(timeout)?;
        let mut buf = vec![0; (max as usize).min(MAX_READ)];
        loop {
            let read = match &mut self.stream {
                Stream::Plain(sock) => sock.read(&mut buf),
                Stream::Tls(stream) => stream.read(&mut buf),
                Stream::Failed => return Err(NetError::Other(FAILED.into())),
            };
            match read {
                Ok(0) => return Err(NetError::Closed),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io_error(err)),
            }
        }
    }

    /// Writes all of `data`, each socket write within `timeout`.
    pub fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), NetError> {
        self.set_timeout(timeout)?;
        let written = match &mut self.stream {
            Stream::Plain(sock) => sock.write_all(data).and_then(|()| sock.flush()),
            Stream::Tls(stream) => stream.write_all(data).and_then(|()| stream.flush()),
            Stream::Failed => return Err(NetError::Other(FAILED.into())),
        };
        written.map_err(io_error)
    }

    /// The server side of the TLS handshake. A failed one closes the connection.
    pub fn start_tls(&mut self, timeout: Duration) -> Result<(), NetError> {
        let Some(config) = self.tls.clone() else {
            return Err(NetError::Tls("this relay has no certificate".into()));
        };
        if matches!(self.stream, Stream::Plain(_)) {
            self.set_timeout(timeout)?;
        }
        match std::mem::replace(&mut self.stream, Stream::Failed) {
            Stream::Plain(mut sock) => {
                let mut conn =
                    ServerConnection::new(config).map_err(|e| NetError::Tls(e.to_string()))?;
                while conn.is_handshaking() {
                    match conn.complete_io(&mut sock) {
                        Ok((0, 0)) if conn.is_handshaking() => {
                            return Err(NetError::Tls(
                                "the device closed the connection during the TLS handshake".into(),
                            ));
                        }
                        Ok(_) => {}
                        Err(err) => {
                            let _ = sock.shutdown(Shutdown::Both);
                            return Err(match io_error(err) {
                                NetError::Timeout => NetError::Timeout,
                                NetError::Other(why) => NetError::Tls(why),
                                other => other,
                            });
                        }
                    }
                }
                self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, sock)));
                Ok(())
            }
            tls @ Stream::Tls(_) => {
                self.stream = tls;
                Err(NetError::Other(
                    "TLS is already active on this connection".into(),
                ))
            }
            Stream::Failed => Err(NetError::Other(FAILED.into())),
        }
    }
}

impl Drop for RelayConnection {
    /// Says goodbye properly under TLS (`close_notify`), without waiting for an answer.
    fn drop(&mut self) {
        match &mut self.stream {
            Stream::Plain(sock) => {
                let _ = sock.shutdown(Shutdown::Both);
            }
            Stream::Tls(stream) => {
                stream.conn.send_close_notify();
                let _ = stream.conn.write_tls(&mut stream.sock);
                let _ = stream.sock.shutdown(Shutdown::Both);
            }
            Stream::Failed => {}
        }
    }
}

fn io_error(err: io::Error) -> NetError {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => NetError::Timeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => NetError::Closed,
        _ => NetError::Other(err.to_string()),
    }
}

/// One call's relay grant: the device connection it serves (if any), and the waits it
/// asked for, which lengthen the call's deadline as the SMTP stage timeouts do.
#[derive(Default)]
pub struct RelayAccess {
    table: ResourceTable,
    wait_budget: Duration,
}

impl RelayAccess {
    /// Puts `connection` in this call's table, for the component to borrow.
    pub fn grant(
        &mut self,
        connection: RelayConnection,
    ) -> wasmtime::Result<Resource<RelayConnection>> {
        Ok(self.table.push(connection)?)
    }

    /// How much longer than its own deadline this call may run.
    pub fn wait_budget(&self) -> Duration {
        self.wait_budget
    }

    fn wait(&mut self, timeout_ms: u32) -> Duration {
        let timeout = Duration::from_millis(u64::from(timeout_ms)).min(MAX_STAGE_TIMEOUT);
        self.wait_budget = self.wait_budget.saturating_add(timeout);
        timeout
    }

    fn connection(
        &mut self,
        handle: &Resource<RelayConnection>,
    ) -> wasmtime::Result<&mut RelayConnection> {
        Ok(self.table.get_mut(handle)?)
    }
}

impl Host for RelayAccess {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()))
    }
}

impl HostClientConnection for RelayAccess {
    fn read(
        &mut self,
        handle: Resource<RelayConnection>,
        max: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, NetError>> {
        let timeout = self.wait(timeout_ms);
        Ok(self.connection(&handle)?.read(max, timeout))
    }

    fn write(
        &mut self,
        handle: Resource<RelayConnection>,
        data: Vec<u8>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), NetError>> {
        let timeout = self.wait(timeout_ms);
        Ok(self.connection(&handle)?.write(&data, timeout))
    }

    fn start_tls(
        &mut self,
        handle: Resource<RelayConnection>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<(), NetError>> {
        let timeout = self.wait(timeout_ms);
        Ok(self.connection(&handle)?.start_tls(timeout))
    }

    fn drop(&mut self, handle: Resource<RelayConnection>) -> wasmtime::Result<()> {
        // The host owns the connection (the component only borrows it): a drop from the
        // component would be a bug in the bindings.
        let _ = handle;
        Ok(())
    }
}
