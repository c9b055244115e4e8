//! `mfp-host auth …`: the device code flow in a terminal (seed steps 6–9). The component
//! says when to poll; this loop only sleeps until then, so waiting costs no CPU.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::{Value, json};

use crate::bindings::signin::{Account, AuthState, PollStatus};
use crate::cli::{CliError, diagnostic_json, output_error, write_diagnostic};
use crate::device::{Device, DeviceError, unix_now};

fn account_json(a: &Account) -> Value {
    json!({ "username": a.username, "upn": a.upn, "email": a.email, "tenant-id": a.tenant_id, "personal": a.personal })
}

/// Starts a sign-in, shows the code, polls when the component asks, exits 0 when signed in.
pub fn login(device: &Device, out: &mut impl Write) -> Result<u8, CliError> {
    let code = device.signin_start(unix_now())?;
    writeln!(
        out,
        "To sign in, open {} and enter the code {}",
        code.verification_uri, code.user_code
    )
    .map_err(output_error)?;
    if !code.message.is_empty() {
        writeln!(out, "({})", code.message).map_err(output_error)?;
    }
    out.flush().map_err(output_error)?;
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
                    trouble.diagnosis.code, trouble.diagnosis.message, trouble.diagnosis.remedy
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
                .map_err(output_error)?;
                if let Ok(AuthState::SignedIn(state)) = device.signin_status(unix_now()) {
                    state
                        .warnings
                        .iter()
                        .try_for_each(|w| write_diagnostic(out, w))
                        .map_err(output_error)?;
                }
                return Ok(0);
            }
            PollStatus::Failed(diagnostic) => {
                if terminal {
                    eprintln!();
                }
                return Err(DeviceError::Diagnosed(diagnostic).into());
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
pub fn status(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, CliError> {
    let state = device.signin_status(unix_now())?;
    let consent = device.admin_consent().ok();
    let consent_json = consent
        .as_ref()
        .map(|c| json!({ "url": c.url, "needed": c.needed, "explanation": c.explanation }));
    if json {
        let value = match &state {
            AuthState::SignedOut => json!({ "code": "signed-out", "admin-consent": consent_json }),
            AuthState::InProgress(code) => json!({
                "code": "sign-in-in-progress",
                "user-code": code.user_code,
                "verification-uri": code.verification_uri,
                "expires-at": code.expires_at,
                "problem": code.problem.as_ref().map(diagnostic_json),
                "admin-consent": consent_json,
            }),
            AuthState::SignedIn(s) => json!({
                "code": "signed-in",
                "account": account_json(&s.account),
                "access-token-expires-at": s.access_token_expires_at,
                "warnings": s.warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
                "admin-consent": consent_json,
            }),
        };
        writeln!(out, "{value}").map_err(output_error)?;
        return Ok(0);
    }
    match &state {
        AuthState::SignedOut => writeln!(out, "Signed out. Run `mfp-host auth login` to sign in.")
            .map_err(output_error)?,
        AuthState::InProgress(code) => {
            writeln!(
                out,
                "Sign-in in progress: open {} and enter {}",
                code.verification_uri, code.user_code
            )
            .map_err(output_error)?;
            // Polls that keep failing (TLS, proxy, denied): say why.
            if let Some(problem) = &code.problem {
                write_diagnostic(out, problem).map_err(output_error)?;
            }
        }
        AuthState::SignedIn(s) => {
            writeln!(
                out,
                "Signed in as {} (UPN {}, tenant {}).",
                s.account.username, s.account.upn, s.account.tenant_id
            )
            .map_err(output_error)?;
            s.warnings
                .iter()
                .try_for_each(|w| write_diagnostic(out, w))
                .map_err(output_error)?;
        }
    }
    if let Some(c) = consent {
        writeln!(
            out,
            "Admin consent ({}): {}\n  {}",
            if c.needed { "needed" } else { "not needed" },
            c.explanation,
            c.url
        )
        .map_err(output_error)?;
    }
    Ok(0)
}
