//! Calendar formatting of `now` (time since the Unix epoch) in the shapes Microsoft's
//! replies use. Written out here because the core must not read a clock and needs no
//! time-zone support: everything is UTC.

use std::time::Duration;

/// A UTC calendar time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn civil(now: Duration) -> Civil {
    let secs = now.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4).rem_euclid(7)) as u32,
    }
}

/// `2024-06-10 08:00:00Z`: the `timestamp` of an identity-platform error.
pub fn aad_timestamp(now: Duration) -> String {
    let c = civil(now);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `2024-06-10T08:00:00.0000000Z`: how AADSTS descriptions quote an issue date.
pub fn iso_ticks(now: Duration) -> String {
    let c = civil(now);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        now.subsec_nanos() / 100
    )
}

/// `2024-06-10T08:00:00.123Z`: the time inside Exchange's bracketed diagnostics.
pub fn iso_millis(now: Duration) -> String {
    let c = civil(now);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        now.subsec_millis()
    )
}

/// `Mon, 10 Jun 2024 08:00:00 GMT`: an HTTP `Date` header (IMF-fixdate, RFC 9110 5.6.7),
/// formatted by the same `httpdate` crate the component parses it with.
pub fn http_date(now: Duration) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + now)
}

/// `Mon, 10 Jun 2024 08:00:00 +0000`: the date in Exchange's greeting (RFC 5322 style).
pub fn rfc5322(now: Duration) -> String {
    let c = civil(now);
    format!(
        "{}, {} {} {:04} {:02}:{:02}:{:02} +0000",
        WEEKDAYS[c.weekday as usize % 7],
        c.day,
        MONTHS[(c.month as usize + 11) % 12],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-06-10 08:00:00 UTC, a Monday.
    const JUNE_10: Duration = Duration::from_secs(1_718_006_400);

    #[test]
    fn formats_a_known_instant_in_each_shape() {
        assert_eq!(aad_timestamp(JUNE_10), "2024-06-10 08:00:00Z");
        assert_eq!(rfc5322(JUNE_10), "Mon, 10 Jun 2024 08:00:00 +0000");
        assert_eq!(
            iso_millis(JUNE_10 + Duration::from_millis(5)),
            "2024-06-10T08:00:00.005Z"
        );
        assert_eq!(iso_ticks(JUNE_10), "2024-06-10T08:00:00.0000000Z");
        assert_eq!(http_date(JUNE_10), "Mon, 10 Jun 2024 08:00:00 GMT");
        assert_eq!(
            http_date(Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }

    #[test]
    fn epoch_and_leap_day_are_right() {
        assert_eq!(rfc5322(Duration::ZERO), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            aad_timestamp(Duration::from_secs(951_782_400)),
            "2000-02-29 00:00:00Z"
        );
    }
}
