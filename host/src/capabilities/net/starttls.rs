//! A TCP connection that `STARTTLS` upgrades to TLS in place: the SMTP connection to
//! Exchange (the client side, [`super::SmtpConnection`]) and a nearby device's connection to
//! the relay (the server side, [`crate::capabilities::relay_client`]). Nothing is buffered
//! on the host: `read` hands over exactly what the socket gave, so no plaintext read
//! before the upgrade can be mistaken for data received under TLS.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use rustls::client::ClientConnectionData;
use rustls::server::ServerConnectionData;
use rustls::{ClientConnection, ConnectionCommon, ServerConnection, SideData, StreamOwned};

use super::smtp::{MAX_READ, MAX_STAGE_TIMEOUT};
use super::{NetError, tcp};

/// rustls's client or server connection: the side of the handshake this host plays.
pub trait TlsSide: DerefMut + Deref<Target = ConnectionCommon<Self::Data>> {
    type Data: SideData;
}

impl TlsSide for ClientConnection {
    type Data = ClientConnectionData;
}

impl TlsSide for ServerConnection {
    type Data = ServerConnectionData;
}

/// Plain TCP, then TLS once the handshake succeeded. Dropping it closes the connection.
pub struct StartTlsStream<C: TlsSide>(Stream<C>);

enum Stream<C: TlsSide> {
    Plain(TcpStream),
    Tls(Box<StreamOwned<C, TcpStream>>),
    /// A TLS handshake failed: the socket is closed and nothing more can be done with it.
    Failed,
}

const FAILED: &str = "the connection was closed after its TLS handshake failed";

impl<C: TlsSide> StartTlsStream<C> {
    /// A connection not yet upgraded.
    pub fn plain(sock: TcpStream) -> Self {
        Self(Stream::Plain(sock))
    }

    /// Whether the upgrade has succeeded.
    pub fn is_tls(&self) -> bool {
        matches!(self.0, Stream::Tls(_))
    }

    /// `plain`, `tls` or `failed`, for logs.
    pub fn state(&self) -> &'static str {
        match self.0 {
            Stream::Plain(_) => "plain",
            Stream::Tls(_) => "tls",
            Stream::Failed => "failed",
        }
    }

    /// The socket underneath, while the connection is usable.
    pub fn socket(&self) -> Option<&TcpStream> {
        match &self.0 {
            Stream::Plain(sock) => Some(sock),
            Stream::Tls(stream) => Some(&stream.sock),
            Stream::Failed => None,
        }
    }

    /// Makes the next socket operations wait at most `timeout` (at least 1 ms, at most
    /// [`MAX_STAGE_TIMEOUT`]): the caller's stage timeout, applied per operation.
    fn set_timeout(&self, timeout: Duration) -> Result<(), NetError> {
        let timeout = timeout.clamp(Duration::from_millis(1), MAX_STAGE_TIMEOUT);
        let Some(sock) = self.socket() else {
            return Err(NetError::Other(FAILED.into()));
        };
        sock.set_read_timeout(Some(timeout))
            .and_then(|()| sock.set_write_timeout(Some(timeout)))
            .map_err(|e| NetError::Other(format!("cannot set the timeout: {e}")))
    }

    /// Reads at most `max` bytes (and at most [`MAX_READ`]), waiting up to `timeout` for
    /// at least one: `Closed` at the end of the stream.
    pub fn read(&mut self, max: u32, timeout: Duration) -> Result<Vec<u8>, NetError> {
        if max == 0 {
            return Err(NetError::Other(
                "a read must ask for at least 1 byte".into(),
            ));
        }
        self.set_timeout(timeout)?;
        let mut buf = vec![0; (max as usize).min(MAX_READ)];
        loop {
            let read = match &mut self.0 {
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
                Err(err) => return Err(tcp::io_error(err)),
            }
        }
    }

    /// Writes all of `data` (encrypted once TLS is on), each socket write within
    /// `timeout`.
    pub fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<(), NetError> {
        self.set_timeout(timeout)?;
        let written = match &mut self.0 {
            Stream::Plain(sock) => sock.write_all(data).and_then(|()| sock.flush()),
            Stream::Tls(stream) => stream.write_all(data).and_then(|()| stream.flush()),
            Stream::Failed => return Err(NetError::Other(FAILED.into())),
        };
        written.map_err(tcp::io_error)
    }

    /// The plain socket, for the TLS handshake, each of its reads and writes within
    /// `timeout`; the stream counts as failed until [`Self::upgraded`] gives the TLS stream
    /// back. Refused once TLS is on (the stream stays as it is) or after a failed
    /// handshake.
    pub fn take_for_handshake(&mut self, timeout: Duration) -> Result<TcpStream, NetError> {
        self.set_timeout(timeout)?;
        match std::mem::replace(&mut self.0, Stream::Failed) {
            Stream::Plain(sock) => Ok(sock),
            tls @ Stream::Tls(_) => {
                self.0 = tls;
                Err(NetError::Other(
                    "TLS is already active on this connection".into(),
                ))
            }
            Stream::Failed => Err(NetError::Other(FAILED.into())),
        }
    }

    /// The stream after a successful handshake.
    pub fn upgraded(&mut self, stream: StreamOwned<C, TcpStream>) {
        self.0 = Stream::Tls(Box::new(stream));
    }
}

impl<C: TlsSide> Drop for StartTlsStream<C> {
    /// Says goodbye properly under TLS (`close_notify`), without waiting for an answer,
    /// and closes the socket.
    fn drop(&mut self) {
        match &mut self.0 {
            Stream::Plain(sock) => {
                let _ = sock.shutdown(Shutdown::Both);
            }
            Stream::Tls(stream) => {
                stream.conn.send_close_notify();
                while stream.conn.wants_write() {
                    if !matches!(stream.conn.write_tls(&mut stream.sock), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = stream.sock.shutdown(Shutdown::Both);
            }
            Stream::Failed => {}
        }
    }
}
