//! The Exchange fake over TCP: plain text until STARTTLS, then rustls on the same socket.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{Clock, NetError, ServerHandle, TestCa, spawn_server};
use crate::World;
use crate::exchange::SmtpSession;

/// How often a connection thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(250);
/// How long a connection may stay silent before it is dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(300);

/// Serves the Exchange fake on `listener`, reading the time from `clock`.
pub fn spawn_exchange_on(
    listener: TcpListener,
    world: World,
    ca: &TestCa,
    clock: Clock,
) -> Result<ServerHandle, NetError> {
    let config = ca.server_config();
    spawn_server(listener, move |stream, stop: &AtomicBool| {
        // A failed connection concerns that client only; nothing to report.
        let _ = serve(stream, config.clone(), world.clone(), &clock, stop);
    })
}

/// The connection, before and after STARTTLS.
enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.write_all(bytes).and_then(|()| tcp.flush()),
            Transport::Tls(tls) => tls.write_all(bytes).and_then(|()| tls.flush()),
        }
    }

    /// Wraps the socket in TLS; the handshake runs on the next read.
    fn start_tls(self, config: Arc<ServerConfig>) -> io::Result<Self> {
        match self {
            Transport::Plain(tcp) => {
                let conn = ServerConnection::new(config).map_err(io::Error::other)?;
                Ok(Transport::Tls(Box::new(StreamOwned::new(conn, tcp))))
            }
            tls => Ok(tls),
        }
    }

    fn close(self) {
        if let Transport::Tls(mut tls) = self {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
}

/// After the server closed the session (QUIT, `421`), reads what the client still sends
/// until it hangs up, for a short while, so the session can record it: a client must
/// send nothing after a `421`.
fn linger(transport: &mut Transport, session: &mut SmtpSession, clock: &Clock) {
    const LINGER: Duration = Duration::from_millis(500);
    let mut buf = [0u8; 4096];
    let mut waited = Duration::ZERO;
    while waited < LINGER {
        match transport.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                session.feed(&buf[..n], clock());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                waited += TICK;
            }
            Err(_) => return,
        }
    }
}

fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    world: World,
    clock: &Clock,
    stop: &AtomicBool,
) -> io::Result<()> {
    let peer = tcp
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    tcp.set_read_timeout(Some(TICK))?;
    tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    let mut session = SmtpSession::new(world, &peer, clock());
    let mut transport = Transport::Plain(tcp);
    transport.send(&session.greeting())?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut idle = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        let n = match transport.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                idle += TICK;
                if idle >= IDLE_LIMIT {
                    let _ = transport.send(
                        b"421 4.4.1 Connection timed out. Total session duration exceeded\r\n",
                    );
                    break;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        idle = Duration::ZERO;
        let out = session.feed(&buf[..n], clock());
        if !out.delay.is_zero() {
            std::thread::sleep(out.delay);
        }
        transport.send(&out.reply)?;
        if out.close {
            linger(&mut transport, &mut session, clock);
            break;
        }
        if out.start_tls {
            transport = transport.start_tls(config.clone())?;
        }
    }
    transport.close();
    Ok(())
}
