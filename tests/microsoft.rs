//! The "Microsoft on loopback" harness of the component tests: the stand-ins'
//! [`LoopbackMicrosoft`] on one hand-driven clock, and a device whose network reaches it
//! under Microsoft's names. Included by each wasmtime test file with `mod microsoft;`.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mfp_component_tests::{Origin, options, owned};
use mfp_fakes::net::{LoopbackMicrosoft, manual_clock};
use mfp_fakes::{Scenario, World};
use mfp_host::bindings::mailer::{OutgoingMessage, SendError};
use mfp_host::bindings::signin::PollStatus;
use mfp_host::capabilities::net::{NetConfig, SigninOverrides};
use mfp_host::device::{Device, DeviceError};

/// The time the fakes start at (Unix seconds), far from any real expiry.
pub const START: u64 = 1_900_000_000;

/// The two fakes on loopback, sharing one world and one hand-driven clock.
pub struct Microsoft {
    pub world: World,
    /// The fakes' clock in Unix seconds: tests set or advance it by hand.
    pub clock: Arc<AtomicU64>,
    pub fakes: LoopbackMicrosoft,
}

impl Microsoft {
    pub fn start(scenario: Scenario) -> Self {
        Self::with_world(World::new(scenario))
    }

    /// The fakes around `world`, e.g. one made by [`World::for_case`].
    pub fn with_world(world: World) -> Self {
        let (fake_clock, clock) = manual_clock(START);
        let fakes = LoopbackMicrosoft::start_with_clock(world.clone(), fake_clock)
            .expect("the fakes start on loopback");
        Self {
            world,
            clock,
            fakes,
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
        let mut net = NetConfig {
            authority: self.fakes.authority().into(),
            ..NetConfig::default()
        };
        net.reach_stand_ins(&self.fakes.resolve_rules(), self.fakes.ca_pem())
            .expect("the stand-ins' rules parse");
        net
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
