//! `mfp-host history [--json]`: what happened, newest first, as the component recorded it
//! (sign-ins, sends, provider resets, failed refreshes), each entry with its diagnosis
//! when it has one. The current warnings are `diagnose`'s.

use std::io::Write;

use crate::bindings::panel::Event;
use crate::device::Device;
use crate::frontend::views;
use crate::frontend::{Failure, Surface};

/// Prints the history; exits 0 whatever it holds (a past failure is no failure of this
/// command).
pub(super) fn history(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, Failure> {
    let events = device.history()?;
    let result = if json {
        writeln!(
            out,
            "{}",
            views::to_json(&views::history(&events, Surface::CommandLine))
        )
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
            indented(&d.remedy.command_line)
        )?;
    }
    Ok(())
}

/// `text` with its continuation lines (a multi-line SMTP reply) indented under the first.
fn indented(text: &str) -> String {
    text.trim_end().replace('\n', "\n            ")
}

/// Unix seconds as an HTTP date (`Tue, 01 Dec 2026 04:51:56 GMT`, RFC 9110): a fixed-width
/// UTC time, by the same crate the component reads the identity platform's dates with.
fn utc(at: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at))
}
