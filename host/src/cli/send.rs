//! `mfp-host send`: one email, with a progress bar on a terminal (driven by the bytes the
//! component reads from the attachments) and plain lines otherwise. Retries happen in the
//! shared send loop, when and as often as the component says.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::SendArgs;
use crate::bindings::mailer::OutgoingMessage;
use crate::capabilities::attachments::AttachmentSet;
use crate::device::{Device, DeviceError};
use crate::frontend::options::DeviceFlags;
use crate::frontend::send_loop::{self, NotSent, Sent};
use crate::frontend::views::{self, DiagnosticView, SendReportView};
use crate::frontend::{Failure, Surface, input};

/// `send`: checks the input, opens the device, sends. With `--json`, stdout holds exactly
/// one JSON object whatever happens: the report, or the diagnosis of the failure.
pub(super) fn send(
    flags: &DeviceFlags,
    args: &SendArgs,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let result = prepare(flags, args)
        .map_err(|failure| (failure, None))
        .and_then(|(device, message, total)| {
            send_with_progress(&device, args, message, total).map_err(|not_sent| match not_sent {
                // The component's diagnosis of the send, with its severity, fix and the
                // server's reply.
                NotSent::Device(DeviceError::SendFailed(failure)) => {
                    let mut value = views::to_json(&DiagnosticView::new(
                        failure.diagnosis(),
                        Surface::CommandLine,
                    ));
                    value["server-reply"] = failure.server_reply().into();
                    (Failure::from(DeviceError::SendFailed(failure)), Some(value))
                }
                other => (other.into(), None),
            })
        });
    match result {
        Ok(sent) => {
            let report = &sent.report;
            let written = if args.json {
                let view = SendReportView::new(report, sent.attempts);
                writeln!(out, "{}", views::to_json(&view))
            } else {
                writeln!(
                    out,
                    "Sent {} ({} bytes) to {}.\n  server: {}",
                    report.message_id,
                    report.size,
                    report.accepted.join(", "),
                    report.server_reply
                )
            };
            written.map_err(Failure::output)?;
            Ok(0)
        }
        Err((failure, diagnosis)) => {
            if args.json {
                let value = diagnosis.unwrap_or_else(|| {
                    let mut value =
                        views::to_json(&DiagnosticView::of_failure(&failure, Surface::CommandLine));
                    value["server-reply"] = serde_json::Value::Null;
                    value
                });
                writeln!(out, "{value}").map_err(Failure::output)?;
            }
            Err(failure)
        }
    }
}

type Prepared = (Device, OutgoingMessage, u64);

/// The input checked (malformed input touches nothing), then the device opened: the
/// device, the message and the attachments' total size.
fn prepare(flags: &DeviceFlags, args: &SendArgs) -> Result<Prepared, Failure> {
    let user = input::walk_up_user(args.user, args.ldap_search).map_err(|why| {
        Failure::bad_input(
            "usage",
            format!("The --ldap-search option is refused: {why}."),
            "Use --ldap-search only with --user authenticated.",
        )
        .with_field("ldap-search")
    })?;
    let total = open_attachments(&args.attach)?.total_size();
    let device = Device::open(flags.device_options()?)?;
    let message = OutgoingMessage {
        to: args.to.clone(),
        from: args.from.clone(),
        user,
        subject: args.subject.clone(),
        body: args.body.clone(),
        attachments: Vec::new(),
        attempt: 1,
    };
    Ok((device, message, total))
}

/// The files of `--attach`, opened for one attempt. A file that cannot be used is named.
fn open_attachments(paths: &[PathBuf]) -> Result<AttachmentSet, Failure> {
    AttachmentSet::from_paths(paths).map_err(|e| {
        // `from_paths` stops at the first path that is not a readable regular file.
        let message = match paths.iter().find(|p| !p.is_file()) {
            Some(path) if path.exists() => {
                format!("The attachment {} is not a file.", path.display())
            }
            Some(path) => format!("The attachment {} cannot be read: {e}.", path.display()),
            None => format!("An attachment cannot be read: {e}."),
        };
        Failure::bad_input(
            "attachment-unreadable",
            message,
            "Check the --attach paths: each must be a readable file.",
        )
        .with_field("attach")
    })
}

/// Sends `message`, with a progress bar of `total` bytes on a terminal and the retries
/// the component asks for.
fn send_with_progress(
    device: &Device,
    args: &SendArgs,
    message: OutgoingMessage,
    total: u64,
) -> Result<Sent, NotSent> {
    // The bar follows the bytes read by the current attempt.
    let bar = (std::io::stderr().is_terminal() && total > 0).then(|| progress_bar(total));
    let progress: Arc<AtomicU64> = Arc::default();
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        if let Some(bar) = &bar {
            let (done, progress) = (&done, &progress);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    bar.set_position(progress.load(Ordering::Relaxed));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let result = send_loop::send(
            device,
            message,
            |_attempt| Ok(open_attachments(&args.attach)?.counting_into(progress.clone())),
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
    result
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
