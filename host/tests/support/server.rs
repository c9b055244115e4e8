//! A running `mfp-host serve` (the real binary), started with `--listen 127.0.0.1:0` (or
//! another listen address, [`Launch`]): the bound address is read from its `listening on`
//! line. Shared by the `serve_*` tests and `benches/serve.rs`; talk to it through
//! [`Client`] (a `Server` derefs to one), or over HTTPS through `super::tls`.

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
    /// `http` or `https`, from the `listening on` line.
    pub scheme: String,
    /// The temporary state dir of [`Server::start`], removed after the process is killed.
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh state dir, with the administrator's password [`PASSWORD`] and
    /// `extra` after `serve`.
    pub fn start(extra: &[&str]) -> Self {
        let (dir, password_file) = password_dir();
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
        Self::launch(&Launch {
            state_dir: Some(state_dir),
            password_file,
            global,
            serve,
            ..Launch::default()
        })
        .expect("mfp-host serve starts")
    }

    /// A server as `launch` says; `Err` with its stderr when it exits (or says nothing)
    /// before its `listening on` line.
    pub fn launch(launch: &Launch) -> Result<Self, String> {
        let log = match launch.state_dir {
            Some(dir) => dir.with_extension("stderr.log"),
            None => launch.password_file.with_extension("stderr.log"),
        };
        let stderr = std::fs::File::create(&log).unwrap();
        let started = Instant::now();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        if let Some(dir) = launch.state_dir {
            command.arg("--state-dir").arg(dir);
        }
        command
            .args(launch.global)
            .args(["serve", "--listen", launch.listen, "--admin-password-file"])
            .arg(launch.password_file)
            .args(launch.serve)
            .env_remove("MFP_ADMIN_PASSWORD")
            .env_remove("MFP_LOG");
        for (name, value) in launch.env {
            command.env(name, value);
        }
        let mut child = command
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
        let (at, scheme, addr) = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok((at, line)) => {
                    if let Some((scheme, addr)) = line
                        .strip_prefix("listening on ")
                        .and_then(|rest| rest.split_once("://"))
                    {
                        break (at, scheme.to_owned(), addr.trim().to_owned());
                    }
                    printed.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        };
        // A wildcard listen is reached on loopback.
        let addr = addr
            .strip_prefix("0.0.0.0:")
            .map(|port| format!("127.0.0.1:{port}"))
            .unwrap_or(addr);
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Ok(Self {
            child,
            client: Client { addr },
            log,
            state_dir: launch.state_dir.map(Path::to_path_buf).unwrap_or_default(),
            printed,
            scheme,
            started,
            to_listening: at - started,
            _dir: None,
        })
    }

    /// The certificate fingerprint the server printed (`AB:CD:…`), when it serves HTTPS.
    pub fn fingerprint(&self) -> Option<String> {
        self.printed.iter().find_map(|line| {
            line.strip_prefix("tls certificate SHA-256 fingerprint: ")
                .map(|f| f.trim().to_owned())
        })
    }

    /// What the server wrote to stderr so far (its access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// How to start a server beyond [`Server::start_in`]'s defaults.
pub struct Launch<'a> {
    /// `--state-dir`; `None` leaves it out (the default state dir: set `env`'s
    /// `XDG_STATE_HOME` to keep it in a temporary folder).
    pub state_dir: Option<&'a Path>,
    pub password_file: &'a Path,
    pub listen: &'a str,
    /// Flags before `serve`.
    pub global: &'a [&'a str],
    /// Flags after `serve`.
    pub serve: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
}

impl Default for Launch<'_> {
    fn default() -> Self {
        Self {
            state_dir: None,
            password_file: Path::new(""),
            listen: "127.0.0.1:0",
            global: &[],
            serve: &[],
            env: &[],
        }
    }
}

/// A fresh temporary folder holding the password file `admin-password` ([`PASSWORD`]);
/// returns it and the file's path.
pub fn password_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    (dir, password_file)
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
