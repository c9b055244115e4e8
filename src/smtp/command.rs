//! The commands this client sends, and the checks that keep outside input (addresses, the
//! EHLO name) from changing them: a CR or LF in an address would end the command early
//! and let the rest be read as a command of its own (SMTP command injection).

use super::SmtpError;

/// Longest mailbox address accepted (RFC 5321 path limit less the angle brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest EHLO name accepted (a DNS name, RFC 1035).
pub const MAX_EHLO_NAME_LEN: usize = 253;

/// Checks a mailbox address for `MAIL FROM`/`RCPT TO`. `field` names it in the error
/// (`from`, `to[0]`…). Non-ASCII is allowed here; the session requires SMTPUTF8 for it.
pub fn check_address(field: &str, address: &str) -> Result<(), SmtpError> {
    let refuse = |what: &'static str| {
        Err(SmtpError::InvalidAddress {
            field: field.to_owned(),
            what,
        })
    };
    if address.is_empty() {
        return refuse("is empty");
    }
    if address.len() > MAX_ADDRESS_LEN {
        return refuse("is longer than 254 bytes");
    }
    for c in address.chars() {
        let what = match c {
            '\r' => "contains a carriage return (CR)",
            '\n' => "contains a line feed (LF)",
            c if c.is_control() => "contains a control character",
            c if c.is_whitespace() => "contains a space",
            '<' | '>' => "contains an angle bracket (< or >)",
            _ => continue,
        };
        return refuse(what);
    }
    // One `@` only: `a@evil.example@contoso.com` reads as a source route to some relays.
    if address.matches('@').count() > 1 {
        return refuse("contains more than one @");
    }
    match address.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(()),
        _ => refuse("is not of the form name@domain"),
    }
}

/// Checks the name the device gives itself in `EHLO`: printable ASCII without spaces (a
/// host name or an address literal such as `[192.0.2.1]`).
pub fn check_ehlo_name(name: &str) -> Result<(), SmtpError> {
    let refuse = |what: &'static str| Err(SmtpError::InvalidEhloName { what });
    if name.is_empty() {
        return refuse("is empty");
    }
    if name.len() > MAX_EHLO_NAME_LEN {
        return refuse("is longer than 253 bytes");
    }
    for c in name.chars() {
        let what = match c {
            '\r' => "contains a carriage return (CR)",
            '\n' => "contains a line feed (LF)",
            c if c.is_control() => "contains a control character",
            ' ' => "contains a space",
            c if !c.is_ascii_graphic() => "contains a character that is not printable ASCII",
            _ => continue,
        };
        return refuse(what);
    }
    Ok(())
}

/// The name the device gives itself when the host supplies none it could use: an
/// address literal (RFC 5321 §4.1.3), which every server accepts.
pub const FALLBACK_EHLO_NAME: &str = "[127.0.0.1]";

/// The EHLO name from the one the host supplies (the device's host name or an address
/// literal, RFC 5321 §4.1.4): used as is when it is a syntactically valid domain or
/// address literal, otherwise [`FALLBACK_EHLO_NAME`]. So nothing from the host can put a
/// CR, LF or space into the command.
pub fn ehlo_name_or_fallback(supplied: &str) -> String {
    let name = supplied.trim_end_matches('.');
    if check_ehlo_name(name).is_ok() && (is_domain(name) || is_address_literal(name)) {
        name.to_owned()
    } else {
        FALLBACK_EHLO_NAME.to_owned()
    }
}

/// RFC 5321 `Domain`: dot-separated labels of letters, digits and inner hyphens, each at
/// most 63 octets, the whole at most 253.
fn is_domain(name: &str) -> bool {
    name.len() <= MAX_EHLO_NAME_LEN
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

/// RFC 5321 `address-literal`: `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn is_address_literal(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) else {
        return false;
    };
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            inner[5..].parse::<std::net::Ipv6Addr>().is_ok()
        }
        _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

pub(super) fn ehlo(name: &str) -> Vec<u8> {
    format!("EHLO {name}\r\n").into_bytes()
}

pub(super) fn starttls() -> Vec<u8> {
    b"STARTTLS\r\n".to_vec()
}

/// `MAIL FROM:<from>`, with `SIZE=` (RFC 1870) when the size is known and the server
/// advertised SIZE, and `SMTPUTF8` (RFC 6531) when an address needs it.
pub(super) fn mail_from(from: &str, size: Option<u64>, smtputf8: bool) -> Vec<u8> {
    let mut line = format!("MAIL FROM:<{from}>");
    if let Some(size) = size {
        line.push_str(&format!(" SIZE={size}"));
    }
    if smtputf8 {
        line.push_str(" SMTPUTF8");
    }
    line.push_str("\r\n");
    line.into_bytes()
}

pub(super) fn rcpt_to(to: &str) -> Vec<u8> {
    format!("RCPT TO:<{to}>\r\n").into_bytes()
}

pub(super) fn data() -> Vec<u8> {
    b"DATA\r\n".to_vec()
}

pub(super) fn quit() -> Vec<u8> {
    b"QUIT\r\n".to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address_error(address: &str) -> &'static str {
        match check_address("to[0]", address) {
            Err(SmtpError::InvalidAddress { field, what }) => {
                assert_eq!(field, "to[0]");
                what
            }
            other => panic!("{address:?} gave {other:?}"),
        }
    }

    #[test]
    fn ordinary_and_international_addresses_pass() {
        for ok in [
            "scanner@contoso.com",
            "a.b+c@sub.example.org",
            "jörg@bücher.example",
            "x@[192.0.2.1]",
        ] {
            assert!(check_address("from", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn addresses_that_could_inject_a_command_are_refused() {
        assert_eq!(
            address_error("a@x.com>\r\nRCPT TO:<b@y.com"),
            "contains an angle bracket (< or >)"
        );
        assert_eq!(
            address_error("a@x.com\r\nDATA"),
            "contains a carriage return (CR)"
        );
        assert_eq!(address_error("a@x.com\nDATA"), "contains a line feed (LF)");
        assert_eq!(
            address_error("a@x\u{0}.com"),
            "contains a control character"
        );
        assert_eq!(
            address_error("a@x\u{85}.com"),
            "contains a control character"
        );
        assert_eq!(address_error("a b@x.com"), "contains a space");
        assert_eq!(
            address_error("<a@x.com>"),
            "contains an angle bracket (< or >)"
        );
    }

    #[test]
    fn malformed_addresses_are_refused() {
        assert_eq!(address_error(""), "is empty");
        assert_eq!(address_error("nobody"), "is not of the form name@domain");
        assert_eq!(address_error("@x.com"), "is not of the form name@domain");
        assert_eq!(address_error("a@"), "is not of the form name@domain");
        assert_eq!(
            address_error("alice@evil.example@contoso.com"),
            "contains more than one @"
        );
        let long = format!("{}@x.com", "a".repeat(250));
        assert_eq!(address_error(&long), "is longer than 254 bytes");
    }

    #[test]
    fn ehlo_names_are_printable_ascii_without_spaces() {
        assert!(check_ehlo_name("mfp-3f2a.contoso.local").is_ok());
        assert!(check_ehlo_name("[192.0.2.7]").is_ok());
        for (bad, what) in [
            ("", "is empty"),
            ("mfp\r\nMAIL FROM:<x@y>", "contains a carriage return (CR)"),
            ("mfp\n", "contains a line feed (LF)"),
            ("mfp\t", "contains a control character"),
            ("my printer", "contains a space"),
            (
                "drucker-ü",
                "contains a character that is not printable ASCII",
            ),
        ] {
            assert_eq!(
                check_ehlo_name(bad),
                Err(SmtpError::InvalidEhloName { what }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_hosts_name_is_used_only_when_it_is_a_domain_or_an_address_literal() {
        for good in [
            "mfp-0042.contoso.local",
            "printer",
            "MFP-7.Example.COM",
            "[192.0.2.7]",
            "[IPv6:2001:db8::7]",
        ] {
            assert_eq!(ehlo_name_or_fallback(good), good);
        }
        assert_eq!(ehlo_name_or_fallback("mfp.contoso.com."), "mfp.contoso.com");
        for bad in [
            "",
            "mfp\r\nMAIL FROM:<x@y>",
            "my printer",
            "under_score.local",
            "-lead.example",
            "trail-.example",
            "a..b",
            "drucker-ü.example",
            "[300.1.1.1]",
            "[2001:db8::7]",
            "[IPv6:nonsense]",
            &"a".repeat(64),
        ] {
            assert_eq!(ehlo_name_or_fallback(bad), FALLBACK_EHLO_NAME, "{bad:?}");
        }
        assert!(check_ehlo_name(FALLBACK_EHLO_NAME).is_ok());
    }

    #[test]
    fn mail_from_carries_size_and_smtputf8_only_when_asked() {
        assert_eq!(mail_from("a@x", None, false), b"MAIL FROM:<a@x>\r\n");
        assert_eq!(
            mail_from("a@x", Some(1234), true),
            b"MAIL FROM:<a@x> SIZE=1234 SMTPUTF8\r\n"
        );
    }
}
