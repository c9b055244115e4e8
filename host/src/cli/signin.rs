//! `mfp-host auth …`: the device code flow in a terminal (seed steps 6–9). The component
//! says when to poll; this loop only sleeps until then, so waiting costs no CPU.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::settings::write_diagnostic;
use crate::bindings::signin::{AuthState, PollStatus, SignedInState};
use crate::device::{Device, unix_now};
use crate::frontend::views::{self, AuthStateView, ConsentView};
use crate::frontend::{Failure, Surface};

/// Starts a sign-in, shows the code, polls when the component asks, exits 0 when signed in.
pub(super) fn login(device: &Device, out: &mut impl Write) -> Result<u8, Failure> {
    let code = device.signin_start(unix_now())?;
    writeln!(
        out,
        "To sign in, open {} and enter the code {}",
        code.verification_uri, code.user_code
    )
    .map_err(Failure::output)?;
    if !code.message.is_empty() {
        writeln!(out, "({})", code.message).map_err(Failure::output)?;
    }
    out.flush().map_err(Failure::output)?;
    let terminal = std::io::stderr().is_terminal();
    loop {
        match device.signin_poll(unix_now())? {
            PollStatus::Pending(at) => wait_until(at, code.expires_at, terminal),
            PollStatus::PendingUnreachable(trouble) => {
                // Polls keep failing: say why, and keep waiting (it may recover).
                if terminal {
                    eprintln!();
                }
                eprintln!(
                    "warning[{}]: {}\nremedy: {}",
                    trouble.diagnosis.code,
                    trouble.diagnosis.message,
                    trouble.diagnosis.remedy.command_line
                );
                wait_until(trouble.next_poll_at, code.expires_at, terminal)
            }
            PollStatus::SignedIn(account) => {
                if terminal {
                    eprintln!();
                }
                writeln!(
                    out,
                    "Signed in as {}. The Device Email Address is now {}.",
                    account.username,
                    account.email.as_deref().unwrap_or(&account.upn)
                )
                .map_err(Failure::output)?;
                if let Ok(AuthState::SignedIn(state)) = device.signin_status(unix_now()) {
                    state
                        .warnings
                        .iter()
                        .try_for_each(|w| write_diagnostic(out, w))
                        .map_err(Failure::output)?;
                }
                return Ok(0);
            }
            PollStatus::Failed(diagnosis) => {
                if terminal {
                    eprintln!();
                }
                return Err(Failure::new(
                    crate::frontend::FailureKind::Diagnosed,
                    &diagnosis.code,
                    diagnosis.message,
                    diagnosis.remedy,
                ));
            }
        }
    }
}

/// Sleeps until `at`, showing the time left on a terminal once a second.
fn wait_until(at: u64, expires_at: u64, terminal: bool) {
    loop {
        let now = unix_now();
        if now >= at {
            return;
        }
        if terminal {
            let left = expires_at.saturating_sub(now);
            eprint!(
                "\rWaiting for approval… the code expires in {:02}:{:02} ",
                left / 60,
                left % 60
            );
            let _ = std::io::stderr().flush();
            std::thread::sleep(Duration::from_secs(1).min(Duration::from_secs(at - now)));
        } else {
            std::thread::sleep(Duration::from_secs(at - now));
        }
    }
}

/// Who is signed in, the warnings, and the admin-consent step.
pub(super) fn status(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, Failure> {
    let state = device.signin_status(unix_now())?;
    let consent = device.admin_consent().ok();
    if json {
        let mut value = views::to_json(&AuthStateView::new(&state, Surface::CommandLine));
        value["admin-consent"] = views::to_json(&consent.as_ref().map(ConsentView::from));
        writeln!(out, "{value}").map_err(Failure::output)?;
        return Ok(0);
    }
    let signed_in = |out: &mut dyn Write, s: &SignedInState| -> std::io::Result<()> {
        writeln!(
            out,
            "Signed in as {} (UPN {}, tenant {}).",
            s.account.username, s.account.upn, s.account.tenant_id
        )?;
        s.warnings
            .iter()
            .try_for_each(|w| write_diagnostic(&mut *out, w))
    };
    (|| -> std::io::Result<()> {
        match &state {
            AuthState::SignedOut => {
                writeln!(out, "Signed out. Run `mfp-host auth login` to sign in.")
            }
            AuthState::InProgress(pending) => {
                let code = &pending.device_code;
                writeln!(
                    out,
                    "Sign-in in progress: open {} and enter {}",
                    code.verification_uri, code.user_code
                )?;
                // Polls that keep failing (TLS, proxy, denied): say why.
                if let Some(problem) = &code.problem {
                    write_diagnostic(out, problem)?;
                }
                match &pending.still_signed_in {
                    Some(s) => signed_in(out, s),
                    None => Ok(()),
                }
            }
            AuthState::SignedIn(s) => signed_in(out, s),
            AuthState::SignInFailed(failed) => {
                writeln!(out, "The last sign-in failed:")?;
                write_diagnostic(out, &failed.diagnosis)?;
                match &failed.still_signed_in {
                    Some(s) => signed_in(out, s),
                    None => writeln!(out, "Nobody is signed in."),
                }
            }
        }
    })()
    .map_err(Failure::output)?;
    if let Some(c) = consent {
        writeln!(
            out,
            "Admin consent ({}): {}\n  {}",
            if c.needed { "needed" } else { "not needed" },
            c.explanation,
            c.url
        )
        .map_err(Failure::output)?;
    }
    Ok(0)
}
