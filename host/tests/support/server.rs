//! A running `mfp-host serve` (the real binary), started with `--listen 127.0.0.1:0`: the
//! bound address is read from its `listening on` line. Shared by the `serve_*` tests and
//! `benches/serve.rs`; talk to it through [`Client`] (a `Server` derefs to one).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::client::{Client, PASSWORD};

/// A running `mfp-host serve`, killed when dropped.
pub struct Server {
    child: Child,
    client: Client,
    log: PathBuf,
    /// Just before the process was spawned.
    pub started: Instant,
    /// Process start to the `listening on` line.
    pub to_listening: Duration,
    /// The state dir it serves (the command line may open it meanwhile).
    pub state_dir: PathBuf,
    /// What it printed on stdout before its `listening on` line (e.g. the demo's
    /// command-line flags).
    pub printed: Vec<String>,
    /// The temporary state dir of [`Server::start`], removed after the process is killed.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh state dir, with the administrator's password [`PASSWORD`] and
    /// `extra` after `serve`.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("admin-password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let mut server = Self::start_in(&dir.path().join("state"), &password_file, &[], extra);
        server._dir = Some(dir);
        server
    }

    /// A server on `state_dir` (which may hold an earlier run's state); `global`: options
    /// before `serve` (e.g. `--no-compile-cache`), `serve`: after it. Its stderr goes to
    /// `<state_dir>.stderr.log`.
    pub fn start_in(
        state_dir: &Path,
        password_file: &Path,
        global: &[&str],
        serve: &[&str],
    ) -> Self {
        let log = state_dir.with_extension("stderr.log");
        let stderr = std::fs::File::create(&log).unwrap();
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-host"))
            .arg("--state-dir")
            .arg(state_dir)
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-password-file"])
            .arg(password_file)
            .args(serve)
            .env_remove("MFP_ADMIN_PASSWORD")
            .env_remove("MFP_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("mfp-host starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        let (at, addr) = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok((at, line)) => {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        break (at, addr.trim().to_owned());
                    }
                    printed.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log);
                    panic!("no `listening on` line from mfp-host serve; stderr: {log:?}");
                }
            }
        };
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Self {
            child,
            client: Client { addr },
            log,
            state_dir: state_dir.to_path_buf(),
            printed,
            started,
            to_listening: at - started,
            _dir: None,
        }
    }

    /// What the server wrote to stderr so far (its access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
