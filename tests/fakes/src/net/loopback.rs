//! "Microsoft on loopback": both stand-ins started together for one [`World`], with a
//! fresh test CA, and what a client needs to reach them under Microsoft's own names — the
//! authority URL, `HOST:PORT=ADDR:PORT` resolve rules and the CA certificate in PEM.
//!
//! The component tests, the benchmark, the CLI tests and `mfp-host serve --demo` all set
//! Microsoft up this way. The answer is plain data (strings and PEM bytes), not a host
//! configuration type: this crate sits below `mfp-host`, which turns the data into its
//! `NetConfig` or its `--resolve`/`--ca-file` flags.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    Clock, NetError, ServerHandle, TestCa, spawn_exchange_on, spawn_identity_on, system_clock,
};
use crate::{Case, World};

/// The identity platform's host and HTTPS port.
pub const IDENTITY_HOST: &str = "login.microsoftonline.com";
pub const IDENTITY_PORT: u16 = 443;
/// Exchange Online's SMTP submission host and port.
pub const SMTP_HOST: &str = "smtp.office365.com";
pub const SMTP_PORT: u16 = 587;
/// The authority (identity platform base URL) a device uses.
pub const AUTHORITY: &str = "https://login.microsoftonline.com";

/// A clock moved by hand, in whole seconds since the Unix epoch, and the [`Clock`] the
/// servers read it through: tests jump past expiries without sleeping.
pub fn manual_clock(start_secs: u64) -> (Clock, Arc<AtomicU64>) {
    let seconds = Arc::new(AtomicU64::new(start_secs));
    let read = seconds.clone();
    let clock: Clock = Arc::new(move || Duration::from_secs(read.load(Ordering::SeqCst)));
    (clock, seconds)
}

/// The fake identity platform (HTTPS) and the fake Exchange Online (SMTP with STARTTLS)
/// on free 127.0.0.1 ports, sharing one world and one clock. Dropping it stops both.
pub struct LoopbackMicrosoft {
    world: World,
    ca: TestCa,
    clock: Clock,
    /// The named case the world was last set to, if any ([`LoopbackMicrosoft::set_case`]).
    case: Mutex<Option<Case>>,
    identity: ServerHandle,
    exchange: ServerHandle,
}

impl LoopbackMicrosoft {
    /// Both stand-ins around `world`, reading the system clock.
    pub fn start(world: World) -> Result<Self, NetError> {
        Self::start_with_clock(world, system_clock())
    }

    /// Both stand-ins for the named `case` (its scenario and account), system clock.
    pub fn start_case(case: Case) -> Result<Self, NetError> {
        let ms = Self::start(World::for_case(case))?;
        *ms.case.lock().unwrap_or_else(|p| p.into_inner()) = Some(case);
        Ok(ms)
    }

    /// Both stand-ins around `world`, reading `clock` (e.g. one from [`manual_clock`]).
    pub fn start_with_clock(world: World, clock: Clock) -> Result<Self, NetError> {
        let ca = TestCa::generate()?;
        let listen = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
        let identity = spawn_identity_on(listen()?, world.clone(), &ca, clock.clone())?;
        let exchange = spawn_exchange_on(listen()?, world.clone(), &ca, clock.clone())?;
        Ok(Self {
            world,
            ca,
            clock,
            case: Mutex::new(None),
            identity,
            exchange,
        })
    }

    /// The state both stand-ins share: scenario, accounts, tokens, mailbox.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The test CA the servers' certificate chains to.
    pub fn ca(&self) -> &TestCa {
        &self.ca
    }

    /// The CA certificate in PEM, for the client's trust store.
    pub fn ca_pem(&self) -> &[u8] {
        self.ca.ca_pem().as_bytes()
    }

    /// The time the stand-ins read.
    pub fn now(&self) -> Duration {
        (self.clock)()
    }

    /// The authority URL a device uses: Microsoft's own, reached through the rules of
    /// [`LoopbackMicrosoft::resolve_rules`].
    pub fn authority(&self) -> &'static str {
        AUTHORITY
    }

    /// Where the identity platform listens.
    pub fn identity_addr(&self) -> SocketAddr {
        self.identity.addr()
    }

    /// Where Exchange Online listens.
    pub fn exchange_addr(&self) -> SocketAddr {
        self.exchange.addr()
    }

    /// `login.microsoftonline.com:443=127.0.0.1:PORT`.
    pub fn identity_rule(&self) -> String {
        format!("{IDENTITY_HOST}:{IDENTITY_PORT}={}", self.identity_addr())
    }

    /// `smtp.office365.com:587=127.0.0.1:PORT`.
    pub fn exchange_rule(&self) -> String {
        format!("{SMTP_HOST}:{SMTP_PORT}={}", self.exchange_addr())
    }

    /// Both resolve rules, identity platform first, in the `HOST:PORT=ADDR:PORT` form of
    /// curl's and `mfp-host`'s `--resolve`.
    pub fn resolve_rules(&self) -> [String; 2] {
        [self.identity_rule(), self.exchange_rule()]
    }

    /// The `mfp-host` global flags that reach these stand-ins: `--resolve` for each rule
    /// and `--ca-file ca_file`, where the test CA is written now.
    pub fn host_flags(&self, ca_file: &std::path::Path) -> std::io::Result<Vec<String>> {
        std::fs::write(ca_file, self.ca_pem())?;
        let mut flags = Vec::new();
        for rule in self.resolve_rules() {
            flags.extend(["--resolve".to_owned(), rule]);
        }
        flags.extend(["--ca-file".to_owned(), ca_file.display().to_string()]);
        Ok(flags)
    }

    /// Switches both stand-ins to the named `case` (scenario and account), live.
    pub fn set_case(&self, case: Case) {
        self.world.set_case(case);
        *self.case.lock().unwrap_or_else(|p| p.into_inner()) = Some(case);
    }

    /// The named case last set by [`LoopbackMicrosoft::start_case`] or
    /// [`LoopbackMicrosoft::set_case`]; `None` when the world was set up otherwise.
    pub fn case(&self) -> Option<Case> {
        *self.case.lock().unwrap_or_else(|p| p.into_inner())
    }
}
