//! `mfp-host relay`: the SMTP relay for nearby devices, in the foreground until
//! interrupted. It answers STARTTLS with the device's certificate (the self-signed one the
//! panel uses, made at the first start and kept in the state dir) and prints its
//! fingerprint, so a device's administrator can pin it.

use std::io::Write;
use std::sync::Arc;

use crate::device::Device;
use crate::frontend::Failure;
use crate::frontend::certificate;
use crate::frontend::options::DeviceFlags;
use crate::relay::announcement::{self, RunningRelay};
use crate::relay::{Relay, RelayArgs};

pub fn run(flags: &DeviceFlags, args: &RelayArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let device = Arc::new(Device::open(flags.device_options()?)?);
    let names = certificate::certificate_names(args.listen.ip(), None);
    let tls = certificate::self_signed(&flags.state_dir(), &names)?;
    let relay = Relay::bind(device, args.listen, &args.access, tls.config.clone())?;
    for line in relay.describe() {
        writeln!(out, "{line}").map_err(Failure::output)?;
    }
    writeln!(
        out,
        "relay STARTTLS certificate SHA-256 fingerprint: {}",
        tls.fingerprint
    )
    .map_err(Failure::output)?;
    out.flush().map_err(Failure::output)?;
    // The panel of a `serve` on this state dir shows this relay while it runs.
    let running = RunningRelay {
        pid: std::process::id(),
        listen: relay.config().listen.clone(),
        allow: relay.config().allow.clone(),
        authentication: relay.config().password.is_some(),
        fingerprint: tls.fingerprint.clone(),
    };
    let _announcement = match announcement::announce(&flags.state_dir(), &running) {
        Ok(held) => held,
        Err(err) => {
            tracing::warn!("the panel cannot show this relay as running: {err}");
            None
        }
    };
    relay.serve_forever();
    Ok(0)
}
