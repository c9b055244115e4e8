//! The `relay-client` import: the connection of one nearby device to the relay, which
//! the relay's listener accepted ([`crate::relay`]). The host only moves its bytes and,
//! when the component says so after the device's `STARTTLS`, runs the server side of the
//! TLS handshake with the panel's certificate. Like the SMTP connection to Exchange, it
//! buffers nothing: bytes the device sent before the handshake are never taken for bytes
//! sent under TLS.

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::{ServerConfig, ServerConnection};
use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::net::NetError;
use crate::bindings::relay_client::{Host, HostClientConnection};
use crate::capabilities::net::{self, MAX_STAGE_TIMEOUT, StartTlsStream};

/// One device's connection: plain TCP, upgraded to TLS in place.
pub struct RelayConnection {
    stream: StartTlsStream<ServerConnection>,
    /// The certificate to answer `STARTTLS` with; `None`: TLS is not offered.
    tls: Option<Arc<ServerConfig>>,
}

impl RelayConnection {
    pub fn new(sock: TcpStream, tls: Option<Arc<ServerConfig>>) -> Self {
        let _ = sock.set_nodelay(true);
        Self {
            stream: StartTlsStream::plain(sock),
            tls,
        }
    }

    /// Reads at most `max` bytes (at most [`net::MAX_READ`]), waiting up to `timeout` for
    /// one.
    pub fn read(&mut self, max: u32, timeout: Duration) -> Result<Vec<u8>, NetError> {
        Ok(self.stream.read(max, timeout)?)
    }

    /// Writes all of `data`, each socket write within `timeout`.
    pub fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), NetError> {
        Ok(self.stream.write_all(data, timeout)?)
    }

    /// The server side of the TLS handshake. A failed one closes the connection.
    pub fn start_tls(&mut self, timeout: Duration) -> Result<(), NetError> {
        let Some(config) = self.tls.clone() else {
            return Err(NetError::Tls("this relay has no certificate".into()));
        };
        let sock = self.stream.take_for_handshake(timeout)?;
        let conn = ServerConnection::new(config).map_err(|e| NetError::Tls(e.to_string()))?;
        match net::complete_handshake(conn, sock) {
            Ok(stream) => {
                self.stream.upgraded(stream);
                Ok(())
            }
            // A timeout or a hang-up as such; anything else (rustls's alerts included) as
            // a TLS failure.
            Err(net::NetError::Other(why)) => Err(NetError::Tls(why)),
            Err(other) => Err(other.into()),
        }
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
