//! The "Microsoft on loopback" harness of the component tests: the fake identity platform
//! and the fake Exchange Online on loopback TLS, sharing one world and one hand-driven
//! clock, and a device whose network reaches them under Microsoft's names. Included by
//! each wasmtime test file with `mod microsoft;`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mfp_component_tests::{Origin, options, owned};
use mfp_fakes::net::{ServerHandle, TestCa, spawn_exchange_on, spawn_identity_on};
use mfp_fakes::{Scenario, World};
use mfp_host::bindings::mailer::{OutgoingMessage, SendError};
use mfp_host::bindings::signin::PollStatus;
use mfp_host::device::{Device, DeviceError};
use mfp_host::net::{NetConfig, ResolveRule, SigninOverrides};

/// The two fakes on loopback, sharing one world and one hand-driven clock.
pub struct Microsoft {
    pub world: World,
    pub clock: Arc<AtomicU64>,
    pub ca: TestCa,
    pub identity: ServerHandle,
    pub exchange: ServerHandle,
}

impl Microsoft {
    pub fn start(scenario: Scenario) -> Self {
        Self::with_world(World::new(scenario))
    }

    /// The fakes around `world`, e.g. one made by [`World::for_case`].
    pub fn with_world(world: World) -> Self {
        let clock = Arc::new(AtomicU64::new(1_900_000_000));
        let read = clock.clone();
        let fake_clock: mfp_fakes::net::Clock =
            Arc::new(move || Duration::from_secs(read.load(Ordering::SeqCst)));
        let ca = TestCa::generate().unwrap();
        let identity = spawn_identity_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            world.clone(),
            &ca,
            fake_clock.clone(),
        )
        .unwrap();
        let exchange = spawn_exchange_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            world.clone(),
            &ca,
            fake_clock,
        )
        .unwrap();
        Self {
            world,
            clock,
            ca,
            identity,
            exchange,
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    pub fn advance(&self, seconds: u64) -> u64 {
        self.clock.fetch_add(seconds, Ordering::SeqCst) + seconds
    }

    /// A device on `dir` whose network reaches these fakes under Microsoft's names.
    pub fn device(&self, dir: &std::path::Path) -> Device {
        self.device_with(dir, SigninOverrides::default())
    }

    /// A device as `mfp-host --tenant/--client-id` would open it.
    pub fn device_with(&self, dir: &std::path::Path, overrides: SigninOverrides) -> Device {
        let mut opts = options(dir);
        opts.overrides = overrides;
        opts.net = Some(self.net_config());
        Device::open(opts).unwrap()
    }

    /// A device whose network is `net` (e.g. [`Microsoft::net_config`] with shortened SMTP
    /// timeouts or a given EHLO name).
    pub fn device_on(&self, dir: &std::path::Path, net: NetConfig) -> Device {
        let mut opts = options(dir);
        opts.net = Some(net);
        Device::open(opts).unwrap()
    }

    /// The network configuration that reaches these fakes under Microsoft's names.
    pub fn net_config(&self) -> NetConfig {
        NetConfig {
            authority: "https://login.microsoftonline.com".into(),
            resolve: vec![
                ResolveRule::parse(&format!(
                    "login.microsoftonline.com:443={}",
                    self.identity.addr()
                ))
                .unwrap(),
                ResolveRule::parse(&format!("smtp.office365.com:587={}", self.exchange.addr()))
                    .unwrap(),
            ],
            extra_roots_pem: vec![self.ca.ca_pem().as_bytes().to_vec()],
            ..NetConfig::default()
        }
    }

    /// Selects Exchange Online, signs in (approved on the fake's page) and returns the device.
    pub fn signed_in_device(&self, dir: &std::path::Path) -> Device {
        self.sign_in(self.device(dir))
    }

    /// [`Microsoft::signed_in_device`] on the network `net`.
    pub fn signed_in_device_on(&self, dir: &std::path::Path, net: NetConfig) -> Device {
        self.sign_in(self.device_on(dir, net))
    }

    /// Selects Exchange Online on `device`, signs it in and returns it.
    pub fn sign_in(&self, device: Device) -> Device {
        device
            .apply(
                Origin::WebPanel,
                &owned(&[("service-provider", "exchange-online")]),
            )
            .unwrap();
        let code = device.signin_start(self.now()).unwrap();
        self.world
            .approve(&code.user_code, Duration::from_secs(self.now()))
            .unwrap();
        let at = self.advance(u64::from(code.interval));
        match device.signin_poll(at).unwrap() {
            PollStatus::SignedIn(_) => device,
            other => panic!("not signed in: {other:?}"),
        }
    }
}

pub fn message(to: &str, attachments: Vec<u32>) -> OutgoingMessage {
    OutgoingMessage {
        to: vec![to.into()],
        from: None,
        user: mfp_host::bindings::mailer::WalkUpUser::Unauthenticated,
        subject: "Scan from MFP-0042 — Übersicht".into(),
        body: "Scanned document attached.".into(),
        attachments,
        attempt: 1,
    }
}

pub fn send_failure(err: DeviceError) -> SendError {
    match err {
        DeviceError::SendFailed(e) => e,
        other => panic!("expected a send failure, got {other:?}"),
    }
}
