//! What a server offers, read from its EHLO reply (RFC 5321 §4.1.1.1). Only the keywords
//! this client acts on are kept; the rest are ignored, as RFC 5321 asks.

use super::reply::Reply;

/// The EHLO keywords this client uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EhloExtensions {
    /// `STARTTLS` (RFC 3207): the connection can be upgraded to TLS.
    pub starttls: bool,
    /// The `AUTH` mechanisms (RFC 4954), upper-cased, e.g. `["LOGIN", "XOAUTH2"]`.
    pub auth: Vec<String>,
    /// `SIZE` (RFC 1870): `Some(limit)` when advertised; `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// `PIPELINING` (RFC 2920).
    pub pipelining: bool,
    /// `8BITMIME` (RFC 6152).
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` (RFC 6531): addresses and headers may be UTF-8.
    pub smtputf8: bool,
    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub enhanced_status_codes: bool,
}

impl EhloExtensions {
    /// Reads the keywords of an EHLO reply. The first line is the server's greeting, not a
    /// keyword. Keywords are case-insensitive; the old `AUTH=` form is understood too.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "AUTH" => {
                    for mechanism in words {
                        let mechanism = mechanism.to_ascii_uppercase();
                        if !caps.auth.contains(&mechanism) {
                            caps.auth.push(mechanism);
                        }
                    }
                }
                "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                _ => {}
            }
        }
        caps
    }

    /// Whether `mechanism` (any case) is among the advertised AUTH mechanisms.
    pub fn supports_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The fixed message size limit in bytes, when the server declared one.
    pub fn size_limit(&self) -> Option<u64> {
        self.size.filter(|&n| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Reply {
        Reply {
            code: 250,
            enhanced: None,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    #[test]
    fn exchange_online_before_tls_offers_starttls_but_no_auth() {
        let caps = EhloExtensions::from_ehlo(&ehlo(&[
            "SN4PR0501CA0030.outlook.office365.com Hello [203.0.113.5]",
            "SIZE 157286400",
            "PIPELINING",
            "DSN",
            "ENHANCEDSTATUSCODES",
            "STARTTLS",
            "8BITMIME",
            "BINARYMIME",
            "CHUNKING",
            "SMTPUTF8",
        ]));
        assert!(caps.starttls);
        assert!(caps.auth.is_empty());
        assert_eq!(caps.size_limit(), Some(157_286_400));
        assert!(caps.pipelining && caps.eight_bit_mime && caps.smtputf8);
        assert!(caps.enhanced_status_codes);
    }

    #[test]
    fn exchange_online_after_tls_offers_xoauth2() {
        let caps = EhloExtensions::from_ehlo(&ehlo(&[
            "outlook.office365.com Hello",
            "SIZE 157286400",
            "AUTH LOGIN XOAUTH2",
        ]));
        assert!(!caps.starttls);
        assert_eq!(caps.auth, ["LOGIN", "XOAUTH2"]);
        assert!(caps.supports_auth("xoauth2"));
        assert!(!caps.supports_auth("PLAIN"));
    }

    #[test]
    fn keywords_are_case_insensitive_and_old_auth_form_is_read() {
        let caps = EhloExtensions::from_ehlo(&ehlo(&[
            "mx",
            "starttls",
            "auth=login plain",
            "AUTH XOAUTH2 PLAIN",
        ]));
        assert!(caps.starttls);
        assert_eq!(caps.auth, ["LOGIN", "PLAIN", "XOAUTH2"]);
    }

    #[test]
    fn the_greeting_line_is_not_a_keyword() {
        let caps = EhloExtensions::from_ehlo(&ehlo(&["STARTTLS"]));
        assert!(!caps.starttls);
    }

    #[test]
    fn size_without_a_number_means_no_fixed_limit() {
        let caps = EhloExtensions::from_ehlo(&ehlo(&["mx", "SIZE"]));
        assert_eq!(caps.size, Some(0));
        assert_eq!(caps.size_limit(), None);
        assert_eq!(EhloExtensions::from_ehlo(&ehlo(&["mx"])).size, None);
    }
}
