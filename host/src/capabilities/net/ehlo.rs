//! The device's name in SMTP `EHLO` (RFC 5321 §4.1.4): its host name when that is a
//! valid domain, otherwise an address literal. The component has no environment, so the
//! host supplies the name (`net.ehlo-name` in `wit/net.wit`).

use std::net::IpAddr;

/// The system's host name, if it has one: `/proc/sys/kernel/hostname` on Linux, else
/// `/etc/hostname`, else the `HOSTNAME` or `COMPUTERNAME` variable. Not validated.
pub fn system_host_name() -> Option<String> {
    let from_file = |path: &str| std::fs::read_to_string(path).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}

/// Whether `name` is an RFC 5321 `Domain`: dot-separated labels of letters, digits and
/// inner hyphens, each 1–63 octets, 253 octets in all.
pub fn is_domain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[192.0.2.7]` or `[IPv6:2001:db8::7]` (RFC 5321 §4.1.3).
pub fn address_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("[{v4}]"),
            None => format!("[IPv6:{v6}]"),
        },
    }
}

/// The name to offer: `configured` (or else the system's host name) when it is a valid
/// domain; otherwise the address literal of `local` (the device's end of its SMTP
/// connection), or of the loopback address when no connection is open yet.
pub fn ehlo_name(configured: Option<&str>, local: Option<IpAddr>) -> String {
    let name = configured
        .map(str::to_owned)
        .or_else(system_host_name)
        .map(|n| n.trim_end_matches('.').to_owned());
    match name {
        Some(name) if is_domain(&name) => name,
        _ => address_literal(local.unwrap_or(IpAddr::from([127, 0, 0, 1]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_host_name_is_used_as_is() {
        assert_eq!(
            ehlo_name(Some("mfp-0042.contoso.local"), None),
            "mfp-0042.contoso.local"
        );
        assert_eq!(ehlo_name(Some("printer."), None), "printer");
    }

    #[test]
    fn an_invalid_host_name_gives_the_connections_address_literal() {
        let local: IpAddr = "192.0.2.7".parse().unwrap();
        for bad in ["my printer", "mfp_01.local", "x\r\nQUIT", "", "-x.example"] {
            assert_eq!(ehlo_name(Some(bad), Some(local)), "[192.0.2.7]", "{bad:?}");
        }
        assert_eq!(ehlo_name(Some("bad name"), None), "[127.0.0.1]");
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(ehlo_name(Some("bad name"), Some(v6)), "[IPv6:2001:db8::7]");
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert_eq!(address_literal(mapped), "[192.0.2.9]");
    }
}
