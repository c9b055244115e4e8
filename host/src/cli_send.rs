//! `mfp-host send`: one email, with a progress bar on a terminal (driven by the bytes the
//! component reads from the attachments) and plain lines otherwise. Transient failures are
//! retried after the delay the component asks for; the host owns that timer.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use crate::attachments::AttachmentSet;
use crate::bindings::mailer::{OutgoingMessage, WalkUpUser};
use crate::cli::{CliError, LdapSearchArg, SendArgs, UserArg, diagnostic_json, output_error};
use crate::device::{Device, DeviceError, unix_now};

/// The user at the panel from `--user` and `--ldap-search` (also the JSON API's `user`
/// and `ldap-search`). An LDAP outcome belongs to an authenticated user only: with
/// anyone else it is refused, so a script never believes it tested a case it did not.
pub fn walk_up_user(
    user: UserArg,
    ldap_search: Option<LdapSearchArg>,
) -> Result<WalkUpUser, &'static str> {
    match (user, ldap_search) {
        (UserArg::Authenticated, None | Some(LdapSearchArg::Succeeded)) => {
            Ok(WalkUpUser::AuthenticatedLdapSucceeded)
        }
        (UserArg::Authenticated, Some(LdapSearchArg::Failed)) => {
            Ok(WalkUpUser::AuthenticatedLdapFailed)
        }
        (UserArg::Guest, None) => Ok(WalkUpUser::Guest),
        (UserArg::Unauthenticated, None) => Ok(WalkUpUser::Unauthenticated),
        (UserArg::Guest | UserArg::Unauthenticated, Some(_)) => {
            Err("an LDAP search outcome applies only to an authenticated user")
        }
    }
}

pub fn send(device: &Device, args: &SendArgs, out: &mut impl Write) -> Result<u8, CliError> {
    let user = walk_up_user(args.user, args.ldap_search).map_err(|why| {
        CliError::usage(
            "usage",
            format!("--ldap-search: {why}"),
            "Use --ldap-search only with --user authenticated.",
        )
    })?;
    let mut attempt = 1;
    loop {
        let files = AttachmentSet::from_paths(&args.attach).map_err(|e| CliError {
            code: "attachment-unreadable".into(),
            message: format!("an attachment cannot be read: {e}"),
            remedy: "Check the --attach paths: each must be a readable file.".into(),
            exit: 2,
        })?;
        let message = OutgoingMessage {
            to: args.to.clone(),
            from: args.from.clone(),
            user,
            subject: args.subject.clone(),
            body: args.body.clone(),
            attachments: files.ids(),
            attempt,
        };
        let total = files.total_size();
        let progress = files.progress();
        let bar = (std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message("sending");
            bar
        });
        let done = std::sync::atomic::AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            if let Some(bar) = &bar {
                let (done, progress) = (&done, progress.clone());
                scope.spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        bar.set_position(progress.load(Ordering::Relaxed));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                });
            }
            let result = device.send(&message, files, unix_now());
            done.store(true, Ordering::Relaxed);
            result
        });
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        match result {
            Ok(report) => {
                if args.json {
                    writeln!(
                        out,
                        "{}",
                        json!({
                            "code": "sent",
                            "message-id": report.message_id,
                            "accepted": report.accepted,
                            "server-reply": report.server_reply,
                            "size": report.size,
                            "attempts": attempt,
                        })
                    )
                    .map_err(output_error)?;
                } else {
                    writeln!(
                        out,
                        "Sent {} ({} bytes) to {}.\n  server: {}",
                        report.message_id,
                        report.size,
                        report.accepted.join(", "),
                        report.server_reply
                    )
                    .map_err(output_error)?;
                }
                return Ok(0);
            }
            Err(DeviceError::SendFailed(failure)) => {
                if let Some(delay) = failure.retry_after {
                    eprintln!(
                        "warning[{}]: {} Retrying in {delay} s (attempt {} of 3).",
                        failure.diagnosis.code,
                        failure.diagnosis.message,
                        attempt + 1
                    );
                    std::thread::sleep(Duration::from_secs(u64::from(delay)));
                    attempt += 1;
                    continue;
                }
                if args.json {
                    let mut value = diagnostic_json(&failure.diagnosis);
                    value["server-reply"] = json!(failure.server_reply);
                    writeln!(out, "{value}").map_err(output_error)?;
                }
                return Err(DeviceError::SendFailed(failure).into());
            }
            Err(other) => return Err(other.into()),
        }
    }
}
