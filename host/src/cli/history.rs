//! `mfp-host history [--json]`: what happened, newest first, as the component recorded it
//! (sign-ins, sends, provider resets, failed refreshes), each entry with its diagnosis
//! when it has one. The current warnings are `diagnose`'s.

use std::io::Write;

use crate::bindings::panel::Event;
use crate::device::Device;
use crate::frontend::Failure;
use crate::frontend::views;

/// Prints the history; exits 0 whatever it holds (a past failure is no failure of this
/// command).
pub(super) fn history(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, Failure> {
    let events = device.history()?;
    let result = if json {
        writeln!(out, "{}", views::to_json(&views::history(&events)))
    } else if events.is_empty() {
        writeln!(
            out,
            "Nothing recorded yet: sign-ins, sends and provider resets appear here."
        )
    } else {
        events.iter().try_for_each(|e| write_event(out, e))
    };
    result.map_err(Failure::output)?;
    Ok(0)
}

/// One entry: its time (UTC), kind and outcome, summary; then, indented, the server's
/// reply and the diagnosis with its remedy.
fn write_event(out: &mut impl Write, e: &Event) -> std::io::Result<()> {
    let outcome = if e.succeeded { "ok" } else { "failed" };
    writeln!(
        out,
        "{}  {:<14} {:<6}  {}",
        utc(e.at),
        views::event_kind_name(e.kind),
        outcome,
        e.summary
    )?;
    if let Some(reply) = &e.server_reply {
        writeln!(out, "    server: {}", indented(reply))?;
    }
    if let Some(d) = &e.diagnosis {
        writeln!(
            out,
            "    {}[{}]: {}\n      remedy: {}",
            views::severity_name(d.severity),
            d.code,
            indented(&d.message),
            indented(&d.remedy)
        )?;
    }
    Ok(())
}

/// `text` with its continuation lines (a multi-line SMTP reply) indented under the first.
fn indented(text: &str) -> String {
    text.trim_end().replace('\n', "\n            ")
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, by Howard Hinnant's civil-from-days
/// algorithm (the Gregorian calendar), so the host needs no date crate for one line.
fn utc(at: u64) -> String {
    let days = (at / 86_400) as i64;
    let secs = at % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn unix_seconds_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_900_000_000), "2030-03-17 17:46:40 UTC");
        assert_eq!(utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }
}
