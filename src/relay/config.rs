//! The relay's configuration as the operator gave it (`mfp-host relay --listen … --allow …
//! --relay-password-file …`), checked before the host listens, and the one question it
//! answers for every connection: may this address relay?

use std::net::{IpAddr, SocketAddr};

use crate::error::PanelError;
use crate::remedy::Remedy;
use crate::signin::Secret;

/// How the relay was configured; mirrors `relay-config` in `wit/relay.wit`.
#[derive(Clone, Debug, Default)]
pub struct RelayConfig {
    /// The listen address as given, e.g. `127.0.0.1:2525`.
    pub listen: String,
    /// Address ranges allowed to relay, in CIDR notation.
    pub allow: Vec<String>,
    /// When set, devices must authenticate with it (after STARTTLS).
    pub password: Option<Secret>,
    /// Whether the host can run STARTTLS on a device's connection.
    pub tls_offered: bool,
}

/// An address range: a network address and how many leading bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Parses `192.168.1.0/24`, `fd00::/8`, or a single address (a /32 or /128). Host bits
    /// set beyond the prefix (`192.168.1.7/24`) are refused: the operator may have meant
    /// one address, and guessing either way widens or narrows the relay silently.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{}` is not an IP address", printable(address)))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= width)
                .ok_or_else(|| {
                    format!(
                        "`/{}` is not a prefix length from 0 to {width}",
                        printable(p)
                    )
                })?,
        };
        let range = Self { network, prefix };
        if range.masked(network) != bits(network) {
            return Err(format!(
                "`{}` has address bits set beyond /{prefix}",
                printable(text)
            ));
        }
        Ok(range)
    }

    /// Whether `address` is inside this range. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.7`, as a dual-stack listener reports IPv4 devices) counts as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.network.is_ipv4() && self.masked(address) == bits(self.network)
    }

    fn masked(&self, address: IpAddr) -> u128 {
        let width = if address.is_ipv4() { 32 } else { 128 };
        let host_bits = u32::from(width - self.prefix);
        let mask = match host_bits {
            128 => 0,
            n => u128::MAX << n,
        };
        bits(address) & mask
    }
}

impl std::fmt::Display for AddressRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// IPv4-mapped IPv6 addresses as the IPv4 address they carry.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// At most 64 characters of operator input, without control characters, for a message.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// A configuration that passed [`check`].
#[derive(Clone, Debug)]
pub struct CheckedConfig {
    pub listen: SocketAddr,
    pub ranges: Vec<AddressRange>,
    pub password: Option<Secret>,
    pub tls_offered: bool,
}

impl CheckedConfig {
    /// Whether a device at `peer` may relay: loopback always (it is this machine), other
    /// addresses only inside an allowed range.
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        peer.is_loopback() && self.ranges.is_empty()
            || self.ranges.iter().any(|range| range.contains(peer))
    }
}

/// Checks the configuration: the listen address and every range parse, a listen address
/// beyond loopback has at least one range (otherwise it would be an open relay on the
/// LAN), and a password is not empty.
pub fn check(config: &RelayConfig) -> Result<CheckedConfig, PanelError> {
    let listen: SocketAddr = config.listen.parse().map_err(|_| {
        PanelError::invalid(
            "listen",
            "relay-listen-invalid",
            format!(
                "The relay's listen address `{}` is not an address and port.",
                printable(&config.listen)
            ),
            Remedy::each(
                "Give the relay's listen address as an IP address and port, e.g. 127.0.0.1:2525 or [::]:2525.",
                "Give --listen (or serve's --relay-listen) as ADDR:PORT, e.g. 127.0.0.1:2525 or [::]:2525.",
            ),
        )
    })?;
    let mut ranges = Vec::new();
    for text in &config.allow {
        let range = AddressRange::parse(text.trim()).map_err(|why| {
            PanelError::invalid(
                "allow",
                "relay-allow-invalid",
                format!("The relay's allowed range is not valid: {why}."),
                Remedy::each(
                    "Give each allowed range in CIDR notation, e.g. 192.168.1.0/24 or fd00::/8, or a single address.",
                    "Give each --allow in CIDR notation, e.g. --allow 192.168.1.0/24 or --allow fd00::/8, or a single address.",
                ),
            )
        })?;
        ranges.push(range);
    }
    if !listen.ip().is_loopback() && ranges.is_empty() {
        return Err(PanelError::invalid(
            "allow",
            "relay-open",
            format!(
                "The relay would listen on {listen}, beyond this machine, with no allowed range: anyone who reaches it could send mail as the signed-in account."
            ),
            Remedy::each(
                "Name the address ranges of the devices that may relay, or listen on 127.0.0.1 only.",
                "Add --allow CIDR for the devices that may relay (e.g. --allow 192.168.1.0/24), or listen on 127.0.0.1.",
            ),
        ));
    }
    if config
        .password
        .as_ref()
        .is_some_and(|p| p.expose().is_empty())
    {
        return Err(PanelError::invalid(
            "relay-password",
            "relay-password-empty",
            "The relay password file is empty.",
            Remedy::each(
                "Write the relay password into its file, or run the relay without one.",
                "Write the password into the file given to --relay-password-file (one line), or leave the flag out.",
            ),
        ));
    }
    Ok(CheckedConfig {
        listen,
        ranges,
        password: config.password.clone(),
        tls_offered: config.tls_offered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_their_prefix_covers() {
        let lan = AddressRange::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains(ip("192.168.1.0")));
        assert!(lan.contains(ip("192.168.1.255")));
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(
            lan.contains(ip("::ffff:192.168.1.7")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!lan.contains(ip("::1")));
        let one = AddressRange::parse("10.0.0.7").unwrap();
        assert!(one.contains(ip("10.0.0.7")) && !one.contains(ip("10.0.0.8")));
        let all = AddressRange::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        let v6 = AddressRange::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(
            AddressRange::parse("::/0")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
    }

    #[test]
    fn malformed_ranges_are_refused() {
        for bad in [
            "192.168.1.7/24",
            "192.168.1.0/33",
            "fd00::/129",
            "192.168.1.0/",
            "192.168.1.0/+8",
            "192.168.1.0/24/8",
            "example.com/24",
            "",
            "10.0.0.0/8\r\n",
        ] {
            assert!(AddressRange::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    fn config(listen: &str, allow: &[&str]) -> RelayConfig {
        RelayConfig {
            listen: listen.into(),
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..RelayConfig::default()
        }
    }

    #[test]
    fn a_listen_beyond_loopback_needs_a_range() {
        let err = check(&config("0.0.0.0:2525", &[])).unwrap_err();
        assert_eq!(err.code, "relay-open");
        assert!(
            err.remedy.command_line().contains("--allow"),
            "{:?}",
            err.remedy
        );
        assert!(check(&config("[::]:2525", &[])).is_err());
        assert!(check(&config("0.0.0.0:2525", &["192.168.1.0/24"])).is_ok());
        assert!(check(&config("127.0.0.1:2525", &[])).is_ok());
        assert!(check(&config("[::1]:2525", &[])).is_ok());
        assert_eq!(
            check(&config("2525", &[])).unwrap_err().code,
            "relay-listen-invalid"
        );
        assert_eq!(
            check(&config("127.0.0.1:2525", &["10.0.0.1/8"]))
                .unwrap_err()
                .code,
            "relay-allow-invalid"
        );
    }

    #[test]
    fn loopback_relays_only_while_no_range_is_named() {
        let local = check(&config("127.0.0.1:2525", &[])).unwrap();
        assert!(local.allows(ip("127.0.0.1")) && local.allows(ip("127.0.0.2")));
        assert!(local.allows(ip("::1")) && local.allows(ip("::ffff:127.0.0.1")));
        assert!(!local.allows(ip("192.168.1.7")));
        // Once ranges are named they alone decide, so `--allow 127.0.0.1` can shut out
        // the rest of loopback (the tests bind a client to 127.0.0.2 to show it).
        let named = check(&config("127.0.0.1:2525", &["127.0.0.1/32"])).unwrap();
        assert!(named.allows(ip("127.0.0.1")));
        assert!(!named.allows(ip("127.0.0.2")));
    }

    #[test]
    fn an_empty_password_is_refused() {
        let mut c = config("127.0.0.1:2525", &[]);
        c.password = Some(Secret::new(""));
        assert_eq!(check(&c).unwrap_err().code, "relay-password-empty");
    }
}
