//! Thin wrappers that give the sans-IO stand-ins real sockets, for the component tests
//! and `mfp-host serve --demo`: a test CA made at run time ([`TestCa`]), an HTTPS server
//! for the identity fake ([`spawn_identity`]) and an SMTP server with STARTTLS for the
//! Exchange fake ([`spawn_exchange`]). Both listen on loopback, run one thread per
//! connection, and stop when their [`ServerHandle`] is stopped or dropped.
//! [`LoopbackMicrosoft`] starts both for one world, with what a client needs to reach
//! them under Microsoft's names.
//!
//! No decision is made here: every reply comes from the core, so a test over TCP and the
//! browser preview see the same bytes.

mod ca;
mod https;
mod loopback;
mod smtp;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use ca::{SERVER_NAMES, TestCa};
pub use https::spawn_identity_on;
pub use loopback::{
    AUTHORITY, IDENTITY_HOST, IDENTITY_PORT, LoopbackMicrosoft, SMTP_HOST, SMTP_PORT, manual_clock,
};
pub use smtp::spawn_exchange_on;

use crate::World;

/// Connections served at once per server; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 64;

/// Where the servers read the time: the system clock, or a test's own.
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The system clock, as time since the Unix epoch.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    })
}

/// Why a server or the CA could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("generating the test certificates failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("setting up TLS failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("opening the listening socket failed: {0}")]
    Io(#[from] io::Error),
}

/// Serves the identity fake over HTTPS on a free loopback port, with the system clock.
pub fn spawn_identity(world: World, ca: &TestCa) -> Result<(SocketAddr, ServerHandle), NetError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let handle = spawn_identity_on(listener, world, ca, system_clock())?;
    Ok((handle.addr(), handle))
}

/// Serves the Exchange fake (SMTP with STARTTLS) on a free loopback port, with the
/// system clock.
pub fn spawn_exchange(world: World, ca: &TestCa) -> Result<(SocketAddr, ServerHandle), NetError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let handle = spawn_exchange_on(listener, world, ca, system_clock())?;
    Ok((handle.addr(), handle))
}

/// A running server. Stopping (or dropping) it closes the listener and asks connection
/// threads to end; SMTP connections notice within a quarter second, HTTPS ones when their
/// single request is done or times out.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its accept loop to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `serve` on a thread per accepted connection until stopped.
fn spawn_server<F>(listener: TcpListener, serve: F) -> Result<ServerHandle, NetError>
where
    F: Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
{
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let serve = Arc::new(serve);
    let thread = {
        let stop = stop.clone();
        thread::Builder::new()
            .name(format!("mfp-fakes {addr}"))
            .spawn(move || {
                let active = Arc::new(AtomicUsize::new(0));
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    let (serve, stop, active) = (serve.clone(), stop.clone(), active.clone());
                    let spawned = thread::Builder::new()
                        .name("mfp-fakes connection".into())
                        .spawn(move || {
                            let _slot = Slot(active);
                            serve(stream, &stop);
                        });
                    if spawned.is_err() {
                        // The closure (and its slot) was dropped with the error.
                        continue;
                    }
                }
            })?
    };
    Ok(ServerHandle {
        addr,
        stop,
        thread: Some(thread),
    })
}

/// Gives a connection slot back however the connection thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
