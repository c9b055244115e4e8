//! The relay's listener (`mfp-host relay`, and `serve --relay-listen`): it accepts the SMTP
//! connections of nearby devices that cannot do OAuth and hands each one, whole, to one
//! call into the component, which speaks SMTP with the device and passes every message
//! through to Exchange Online (`src/relay/`). The host moves bytes and owns the socket,
//! the certificate and the threads; who may relay, what is accepted and every reply are
//! the component's.

pub mod announcement;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::bindings::relay::RelayConfig;
use crate::capabilities::relay_client::RelayConnection;
use crate::device::Device;
use crate::frontend::Failure;

/// The default listen address: this machine only, the SMTP submission port's usual
/// unprivileged stand-in.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:2525";

/// Connections handled at once. The component serves at most 3 (Exchange Online's limit)
/// and tells the rest to come back; beyond this many, further devices wait in the
/// listen queue, so a flood of connections cannot start a flood of instances.
pub const MAX_HANDLERS: u32 = 16;

/// `mfp-host relay`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// Address to listen on for the devices' SMTP (`127.0.0.1:0` picks a free port; the
    /// real one is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub access: RelayAccessArgs,
}

/// Who may relay: shared by `relay` and `serve --relay-listen`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RelayAccessArgs {
    /// An address range that may relay, in CIDR notation (repeat for several): required
    /// when listening beyond loopback. Once one is given, only the ranges given may relay.
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<String>,
    /// File holding the relay password (its first line): devices must then authenticate
    /// (AUTH PLAIN or LOGIN, any user name), which is offered only after STARTTLS.
    #[arg(long, value_name = "FILE")]
    pub relay_password_file: Option<PathBuf>,
}

/// A relay bound to its address, its configuration accepted by the component.
pub struct Relay {
    device: Arc<Device>,
    listener: TcpListener,
    config: RelayConfig,
    tls: Arc<rustls::ServerConfig>,
}

impl Relay {
    /// Checks the configuration with the component (an open relay is refused there), then
    /// binds `listen`. STARTTLS uses `tls`, the device's certificate.
    pub fn bind(
        device: Arc<Device>,
        listen: SocketAddr,
        access: &RelayAccessArgs,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Self, Failure> {
        let password = access
            .relay_password_file
            .as_deref()
            .map(read_password)
            .transpose()?;
        let mut config = RelayConfig {
            listen: listen.to_string(),
            allow: access.allow.clone(),
            password,
            tls_offered: true,
        };
        device.check_relay_config(&config)?;
        let listener = TcpListener::bind(listen).map_err(|e| {
            Failure::device_fault(
                "relay-listen-failed",
                format!("The relay cannot listen on {listen}: {e}"),
                "Choose a free address with --listen (or serve's --relay-listen), e.g. 127.0.0.1:2525, or 127.0.0.1:0 for any free port.",
            )
        })?;
        if let Ok(bound) = listener.local_addr() {
            config.listen = bound.to_string();
        }
        // The panel's certificate advertises HTTP in ALPN; SMTP negotiates none.
        let mut smtp_tls = (*tls).clone();
        smtp_tls.alpn_protocols.clear();
        Ok(Self {
            device,
            listener,
            config,
            tls: Arc::new(smtp_tls),
        })
    }

    /// The address devices connect to.
    pub fn local_addr(&self) -> String {
        self.config.listen.clone()
    }

    /// What the administrator is told at start: where, who may relay, and how.
    pub fn describe(&self) -> Vec<String> {
        let allowed = match self.config.allow.is_empty() {
            true => "this machine only (loopback)".to_owned(),
            false => self.config.allow.join(", "),
        };
        let auth = match self.config.password {
            Some(_) => "required (AUTH PLAIN or LOGIN, after STARTTLS)",
            None => "none (devices are told apart by address only)",
        };
        vec![
            format!("relay listening on smtp://{}", self.config.listen),
            format!("relay allowed: {allowed}"),
            format!("relay authentication: {auth}"),
        ]
    }

    /// The listen address and ranges, for the panel.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Accepts connections until the process ends, each in a thread of its own.
    pub fn serve_forever(self) {
        let open = Arc::new(AtomicU32::new(0));
        let slots = Arc::new(Slots::new(MAX_HANDLERS));
        let relay = Arc::new(self);
        for stream in relay.listener.incoming() {
            let Ok(sock) = stream else { continue };
            let peer = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            let slot = slots.take();
            let (relay, open) = (relay.clone(), open.clone());
            let spawned = std::thread::Builder::new()
                .name("mfp-relay".into())
                .spawn(move || {
                    let _slot = slot;
                    let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
                    let connection = RelayConnection::new(sock, Some(relay.tls.clone()));
                    let result =
                        relay
                            .device
                            .serve_relay_client(connection, &peer, &relay.config, now_open);
                    open.fetch_sub(1, Ordering::SeqCst);
                    match result {
                        Ok(s) if s.refused_at_connect => tracing::info!(
                            target: "mfp_host::relay",
                            "{peer}: refused at connect"
                        ),
                        Ok(s) => tracing::info!(
                            target: "mfp_host::relay",
                            "{peer}: {} relayed, {} refused",
                            s.relayed,
                            s.refused
                        ),
                        Err(err) => tracing::warn!(
                            target: "mfp_host::relay",
                            "{peer}: the relay call failed: {err}"
                        ),
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!(target: "mfp_host::relay", "cannot start a relay thread: {err}");
            }
        }
    }
}

/// The relay password: the file's first line, without its line ending.
fn read_password(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::bad_input(
            "relay-password-unreadable",
            format!("The relay password file {} cannot be read: {e}", path.display()),
            "Give --relay-password-file a readable text file holding the password on its first line.",
        )
    })?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// A counting semaphore: at most `n` connections are handled at once.
struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
}

/// One taken slot, given back when dropped.
struct Slot(Arc<Slots>);

impl Slots {
    fn new(n: u32) -> Self {
        Self {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn take(self: &Arc<Self>) -> Slot {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        self.0.freed.notify_one();
    }
}
