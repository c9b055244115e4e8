//! The sandbox seen through `mfp-host serve`: a component that loops, traps or hoards
//! memory makes its route answer 500 with the sandbox's diagnosis, and the server stays up
//! (the next call runs on a fresh instance). The server runs in-process through the host
//! library, with the misbehaving fixture this crate's `build.rs` builds.

use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use mfp_component_tests::FIXTURE_RUNAWAY_PATH;
use mfp_host::frontend::options::DeviceFlags;
use mfp_host::serve::ServeArgs;
use serde_json::json;

#[allow(dead_code)]
#[path = "../host/tests/support/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../host/tests/support/http.rs"]
mod http;
use client::{Client, PASSWORD};

/// `mfp-host`'s flags for `serve`, parsed as the binary parses them.
#[derive(Parser)]
struct ServeCommand {
    #[command(flatten)]
    flags: DeviceFlags,
    #[command(flatten)]
    serve: ServeArgs,
}

/// The server's standard output, forwarded line by line.
struct Lines {
    partial: Vec<u8>,
    tx: mpsc::Sender<String>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let _ = self
                .tx
                .send(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts `serve` on a thread (it runs until the test process ends) and returns a client
/// for the address of its `listening on` line. The state dir must outlive the test.
fn serve_in_process(state_dir: &std::path::Path, extra: &[&str]) -> Client {
    let password_file = state_dir.with_extension("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut argv = vec![
        "mfp-host".to_owned(),
        "--state-dir".to_owned(),
        state_dir.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--admin-password-file".to_owned(),
        password_file.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let ServeCommand { flags, serve } = ServeCommand::try_parse_from(argv).expect("valid flags");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Lines {
            partial: Vec::new(),
            tx: tx.clone(),
        };
        let result = mfp_host::serve::run(&flags, serve, &mut out);
        let _ = tx.send(format!("serve ended: {result:?}"));
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => match line.strip_prefix("listening on http://") {
                Some(addr) => {
                    return Client {
                        addr: addr.to_owned(),
                    };
                }
                None => seen.push(line),
            },
            Err(e) => panic!("no `listening on` line ({e}); the server said: {seen:?}"),
        }
    }
}

#[test]
fn a_misbehaving_component_gets_500_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_in_process(
        &dir.path().join("state"),
        &[
            "--component",
            FIXTURE_RUNAWAY_PATH,
            "--call-timeout-ms",
            "300",
            "--memory-limit-mib",
            "16",
        ],
    );
    let cookie = server.login();
    // settings() loops: stopped at its deadline.
    let reply = server.api(&cookie, "GET", "/api/v1/smtp", None);
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-deadline");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
    // apply() traps.
    let reply = server.api(
        &cookie,
        "POST",
        "/api/v1/smtp",
        Some(json!({ "changes": { "receive-port": "2525" } })),
    );
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-trap");
    // diagnostics() hoards memory.
    let reply = server.api(&cookie, "GET", "/api/v1/diagnostics", None);
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.error_code(), "component-memory-limit");
    // The next call gets a fresh instance.
    let reply = server.api(&cookie, "GET", "/api/v1/control-panel", None);
    assert_eq!(reply.status, 200, "{}", reply.body);
}
