//! `stand-in DIR`: the Microsoft stand-ins (identity platform over HTTPS, Exchange Online
//! SMTP with STARTTLS and XOAUTH2, from `mfp-fakes`) in a process of their own, so a
//! benchmark measures each client's process alone, not the server beside it.
//!
//! Writes into DIR: `ca.pem` (the test CA), `resolve` (the two `HOST:PORT=ADDR:PORT`
//! rules, one a line), `exchange` (the SMTP address), `token` (an SMTP.Send access token
//! for the default account, for clients that take a token as it is) and last `ready`.
//! Every device code asked for is approved at once, as if an administrator typed it.
//! The 35 MB message limit is lifted (a 100 MB scan is measured too), the per-minute
//! sending limit too, and AUTH lines up to 16 KiB are taken (lettre puts the XOAUTH2
//! response on the AUTH line, which Exchange Online tolerates). Runs until killed, or
//! until its standard input closes.

use std::io::Read;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use clap::Parser;
use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Scenario, World};

/// The Microsoft stand-ins (identity platform, Exchange Online SMTP) in a process of their
/// own, until killed or until standard input closes.
#[derive(Parser)]
#[command(name = "stand-in")]
struct Options {
    /// Where to write `ca.pem`, `resolve`, `exchange`, `token` and last `ready`.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

fn main() {
    let Options { dir } = Options::parse();
    let world = World::new(Scenario::default());
    world.update_settings(|s| {
        s.max_message_size = u64::MAX;
        s.messages_per_minute = u32::MAX;
        s.max_command_line = mfp_fakes::exchange::MAX_LINE;
        s.mailbox_capacity = 4;
        s.interval = 1;
    });
    let ms = LoopbackMicrosoft::start(world.clone()).unwrap_or_else(|e| {
        eprintln!("stand-in: cannot start: {e}");
        std::process::exit(1);
    });
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).unwrap_or_else(|e| {
            eprintln!("stand-in: cannot write {name}: {e}");
            std::process::exit(1);
        })
    };
    write("ca.pem", ms.ca_pem());
    write("resolve", ms.resolve_rules().join("\n").as_bytes());
    write("exchange", ms.exchange_addr().to_string().as_bytes());
    write("token", access_token(&ms).as_bytes());
    write("ready", b"");

    // Approve every device code as soon as it is asked for.
    let approver = ms.world().clone();
    thread::spawn(move || {
        loop {
            let now = now();
            for code in approver.pending_codes(now) {
                let _ = approver.approve(&code.user_code, now);
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    // Until the driver closes our stdin (or kills us).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(ms);
}

fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// An SMTP.Send access token from the identity stand-in's own device code flow (the same
/// handler the device's requests reach over HTTPS).
fn access_token(ms: &LoopbackMicrosoft) -> String {
    let post = |endpoint: &str, form: &str| -> serde_json::Value {
        let reply = mfp_fakes::handle_http(
            ms.world(),
            "POST",
            &format!("/organizations/oauth2/v2.0/{endpoint}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
            now(),
        );
        if reply.status != 200 {
            eprintln!(
                "stand-in: {endpoint}: {} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            );
            std::process::exit(1);
        }
        serde_json::from_slice(&reply.body).unwrap_or_default()
    };
    let client = "client_id=9e5f94bc-e8a4-4e73-b8be-63364c29d753";
    let scope =
        "scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access+openid+profile+email";
    let code = post("devicecode", &format!("{client}&{scope}"));
    let user_code = code["user_code"].as_str().unwrap_or_default();
    if let Err(e) = ms.world().approve(user_code, now()) {
        eprintln!("stand-in: cannot approve the token's device code: {e}");
        std::process::exit(1);
    }
    let device_code = code["device_code"].as_str().unwrap_or_default();
    let tokens = post(
        "token",
        &format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&{client}&device_code={device_code}"
        ),
    );
    tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
