//! `mfp-host send`: one email, with a progress bar on a terminal (driven by the bytes the
//! component reads from the attachments) and plain lines otherwise. Retries happen in the
//! shared send loop, when and as often as the component says.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::SendArgs;
use crate::bindings::mailer::OutgoingMessage;
use crate::capabilities::attachments::AttachmentSet;
use crate::device::Device;
use crate::frontend::send_loop::{self, NotSent};
use crate::frontend::views::{self, DiagnosticView, SendReportView};
use crate::frontend::{Failure, input};

pub(super) fn send(device: &Device, args: &SendArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let user = input::walk_up_user(args.user, args.ldap_search).map_err(|why| {
        Failure::bad_input(
            "usage",
            format!("--ldap-search: {why}"),
            "Use --ldap-search only with --user authenticated.",
        )
    })?;
    let message = OutgoingMessage {
        to: args.to.clone(),
        from: args.from.clone(),
        user,
        subject: args.subject.clone(),
        body: args.body.clone(),
        attachments: Vec::new(),
        attempt: 1,
    };
    let open_files = || {
        AttachmentSet::from_paths(&args.attach).map_err(|e| {
            Failure::bad_input(
                "attachment-unreadable",
                format!("an attachment cannot be read: {e}"),
                "Check the --attach paths: each must be a readable file.",
            )
        })
    };
    // The bar follows the bytes read by the current attempt.
    let total = open_files()?.total_size();
    let bar = (std::io::stderr().is_terminal() && total > 0).then(|| progress_bar(total));
    let progress: Mutex<Arc<AtomicU64>> = Mutex::default();
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        if let Some(bar) = &bar {
            let (done, progress) = (&done, &progress);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let read = progress.lock().map_or(0, |p| p.load(Ordering::Relaxed));
                    bar.set_position(read);
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let result = send_loop::send(
            device,
            message,
            |_attempt| {
                let files = open_files()?;
                if let Ok(mut current) = progress.lock() {
                    *current = files.progress();
                }
                Ok(files)
            },
            |retry| {
                let d = &retry.failure.diagnosis;
                let reply = retry
                    .failure
                    .server_reply
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                let line = format!(
                    "warning[{}]: {}{reply} Retrying in {} s (attempt {} of {}).",
                    d.code, d.message, retry.after_seconds, retry.next_attempt, retry.max_attempts
                );
                match &bar {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            },
        );
        done.store(true, Ordering::Relaxed);
        result
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(sent) => {
            let report = &sent.report;
            if args.json {
                let view = SendReportView::new(report, sent.attempts);
                writeln!(out, "{}", views::to_json(&view)).map_err(Failure::output)?;
            } else {
                writeln!(
                    out,
                    "Sent {} ({} bytes) to {}.\n  server: {}",
                    report.message_id,
                    report.size,
                    report.accepted.join(", "),
                    report.server_reply
                )
                .map_err(Failure::output)?;
            }
            Ok(0)
        }
        Err(NotSent::Device(crate::device::DeviceError::SendFailed(failure))) if args.json => {
            let mut value = views::to_json(&DiagnosticView::from(failure.diagnosis()));
            value["server-reply"] = failure.server_reply().into();
            writeln!(out, "{value}").map_err(Failure::output)?;
            Err(crate::device::DeviceError::SendFailed(failure).into())
        }
        Err(err) => Err(err.into()),
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("sending");
    bar
}
