//! The device's clock against the identity platform's. A printer whose date and time are
//! wrong sees valid id_tokens as expired (or not yet valid), and its mail carries a wrong
//! date. The token endpoint's HTTP `Date` header (RFC 9110 5.6.7) tells the platform's
//! time, so such a device gets a diagnosis that names its clock instead of a puzzling
//! sign-in failure.

use crate::diagnose::{Diagnostic, Severity};
use crate::remedy::Remedy;

/// How far the device's clock may be from the platform's before it is called wrong, and
/// the leeway an id_token's times get: 5 minutes, the clock skew Microsoft's own token
/// validation allows by default.
pub const CLOCK_LEEWAY: u64 = 300;

/// The Unix time of an HTTP `Date` header value (IMF-fixdate, or the obsolete RFC 850 and
/// asctime forms); `None` when it is absent or unreadable.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(value.trim()).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// The `Date` header of `headers` (names compare without regard to case), as Unix time.
pub fn date_header(headers: &[(String, String)]) -> Option<u64> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("date"))
        .and_then(|(_, value)| parse_http_date(value))
}

/// The last second an HTTP date can show, 9999-12-31 23:59:59 GMT (`httpdate` panics
/// after it).
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// Unix time as an HTTP date, e.g. `Mon, 30 Nov 2026 20:42:06 GMT`, for diagnoses. Times
/// from outside (an id_token's `nbf`) may lie past year 9999: they show as its last second.
pub fn shown(unix: u64) -> String {
    let unix = unix.min(LAST_HTTP_DATE);
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

/// The device's clock at `device_now` measured against the platform's `server_now`:
/// `Some` when they are more than [`CLOCK_LEEWAY`] apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct ClockSkew {
    pub device_now: u64,
    pub server_now: u64,
}

impl ClockSkew {
    /// The skew at this reply, if it is larger than the leeway.
    pub fn measure(device_now: u64, server_now: Option<u64>) -> Option<Self> {
        let server_now = server_now?;
        (device_now.abs_diff(server_now) > CLOCK_LEEWAY).then_some(Self {
            device_now,
            server_now,
        })
    }

    /// Seconds the device's clock is ahead of the platform's (negative: behind).
    pub fn seconds_ahead(&self) -> i64 {
        let ahead = i128::from(self.device_now) - i128::from(self.server_now);
        ahead.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// "about 2 hours ahead of" / "about 7 minutes behind".
    fn how_far(&self) -> String {
        let seconds = self.device_now.abs_diff(self.server_now);
        let amount = match seconds {
            s if s >= 2 * 86_400 => format!("about {} days", s / 86_400),
            s if s >= 2 * 3600 => format!("about {} hours", s / 3600),
            s => format!("about {} minutes", s.div_ceil(60)),
        };
        let side = if self.device_now > self.server_now {
            "ahead of"
        } else {
            "behind"
        };
        format!("{amount} {side}")
    }

    fn clocks(&self) -> String {
        format!(
            "the device's clock says {} but the Microsoft identity platform's says {} ({} it)",
            shown(self.device_now),
            shown(self.server_now),
            self.how_far()
        )
    }

    /// The error when this skew made a valid id_token look `looks` ("expired", "not yet
    /// valid"): nobody was signed in, and the fix is the clock, not the account.
    pub fn id_token_diagnostic(&self, looks: &str) -> Diagnostic {
        Diagnostic::new(
            "device-clock-wrong",
            Severity::Error,
            format!(
                "The device's date and time are wrong: {}. So the sign-in's id_token looks {looks}, and nobody was signed in.",
                self.clocks()
            ),
            remedy(),
        )
    }

    /// The warning of a sign-in that succeeded on a device whose clock is wrong.
    pub fn warning(&self) -> Diagnostic {
        Diagnostic::new(
            "device-clock-wrong",
            Severity::Warning,
            format!(
                "The device's date and time are wrong: when it signed in, {}. Sign-ins may fail, tokens may be refreshed at the wrong time, and sent email carries a wrong date.",
                self.clocks()
            ),
            remedy(),
        )
    }
}

fn remedy() -> Remedy {
    Remedy::each(
        "Set the device's date and time, or have it use an NTP server, then click [Open Authentication Page] again.",
        "Set this machine's clock, or have it use an NTP server, then run `mfp-host auth login` again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_read_in_each_form_rfc_9110_allows() {
        // RFC 9110 5.6.7's own example, 784111777.
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date(""), None);
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "date".to_owned(),
                "Sun, 06 Nov 1994 08:49:37 GMT".to_owned(),
            ),
        ];
        assert_eq!(date_header(&headers), Some(784_111_777));
        assert_eq!(date_header(&headers[..1]), None);
        assert_eq!(shown(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn a_skew_counts_only_beyond_five_minutes() {
        const T: u64 = 1_900_000_000;
        assert_eq!(ClockSkew::measure(T + 300, Some(T)), None);
        assert_eq!(ClockSkew::measure(T - 300, Some(T)), None);
        assert_eq!(
            ClockSkew::measure(T + 301, None),
            None,
            "no Date, no verdict"
        );
        let ahead = ClockSkew::measure(T + 2 * 3600, Some(T)).unwrap();
        assert_eq!(ahead.seconds_ahead(), 7200);
        let d = ahead.id_token_diagnostic("expired");
        assert_eq!(
            (d.code, d.severity),
            ("device-clock-wrong", Severity::Error)
        );
        assert!(
            d.message.contains("about 2 hours ahead of"),
            "{}",
            d.message
        );
        assert!(d.message.contains("looks expired"), "{}", d.message);
        assert!(d.remedy.contains("NTP"), "{}", d.remedy);
        let behind = ClockSkew::measure(T - 420, Some(T)).unwrap();
        assert_eq!(behind.seconds_ahead(), -420);
        let w = behind.warning();
        assert_eq!(w.severity, Severity::Warning);
        assert!(
            w.message.contains("about 7 minutes behind"),
            "{}",
            w.message
        );
    }
}
