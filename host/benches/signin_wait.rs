//! Figures for waiting on the device code flow, printed (never asserted):
//! - the CPU time (user + system) of the real `mfp-host auth login` process while it waits
//!   60 s for the code to be approved, against the fake identity platform over loopback
//!   HTTPS with the system clock, next to the CPU time of a process that only starts and
//!   answers one call (`auth status`), so the waiting part is visible;
//! - the token requests the fake received while waiting, against RFC 8628's pace (one per
//!   5 s interval);
//! - a short run where the fake answers the first poll with `slow_down` (approved at
//!   once): the requests made against the fewest possible, and the time it took.
//!
//! Run with `cargo bench -p mfp-host --bench signin_wait`. `MFP_BENCH_WAIT_SECS` shortens
//! the 60 s wait for a quick look.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mfp_fakes::net::{TestCa, spawn_identity};
use mfp_fakes::{Approval, Scenario, SlowDown, World};

/// The polling interval the fake announces (Microsoft's).
const INTERVAL_SECS: u64 = 5;

fn system_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// CPU time (user + system) of this process's terminated and waited-for children.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// `mfp-host` with the global flags that point it at the fake under Microsoft's name.
struct Host {
    state: PathBuf,
    ca_file: PathBuf,
    identity: SocketAddr,
}

impl Host {
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        command
            .arg("--state-dir")
            .arg(&self.state)
            .args(["--authority", "https://login.microsoftonline.com"])
            .arg("--resolve")
            .arg(format!("login.microsoftonline.com:443={}", self.identity))
            .arg("--ca-file")
            .arg(&self.ca_file);
        command
    }

    /// A fresh device dir with Exchange Online selected (this also fills the compile cache).
    fn prepare(dir: &Path, name: &str, ca_file: &Path, identity: SocketAddr) -> Self {
        let host = Self {
            state: dir.join(name),
            ca_file: ca_file.to_path_buf(),
            identity,
        };
        let out = host
            .command()
            .args(["settings", "set", "service-provider", "exchange-online"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        host
    }

    /// CPU time of one `auth status` run: start-up plus one call, no waiting.
    fn status_cpu(&self) -> Duration {
        let before = children_cpu();
        let out = self.command().args(["auth", "status"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        children_cpu() - before
    }
}

/// What one `auth login` run cost.
struct Login {
    cpu: Duration,
    /// From the code appearing on stdout to the process exiting.
    wall: Duration,
    /// Token requests before the code was approved.
    before_approval: u64,
    /// Token requests in all.
    total: u64,
    output: String,
}

/// Runs `auth login`, approves the code `approve_after` once it is shown, waits for the
/// process to exit.
fn login(host: &Host, world: &World, approve_after: Duration) -> Login {
    let cpu_before = children_cpu();
    let tokens_before = world.requests("token");
    let mut child = host
        .command()
        .args(["auth", "login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut output = String::new();
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("`auth login` showed no code");
        output.push_str(&line);
        output.push('\n');
        if let Some((_, rest)) = line.split_once("enter the code ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    let shown = Instant::now();
    std::thread::sleep(approve_after);
    let before_approval = world.requests("token") - tokens_before;
    world.approve(&code, system_now()).unwrap();
    let status = child.wait().unwrap();
    let wall = shown.elapsed();
    let cpu = children_cpu() - cpu_before;
    output.extend(lines.try_iter().map(|l| l + "\n"));
    let errors = errors.join().unwrap_or_default();
    assert!(status.success(), "{status}: {output}{errors}");
    Login {
        cpu,
        wall,
        before_approval,
        total: world.requests("token") - tokens_before,
        output,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; there are no test cases here.
    }
    let wait_secs: u64 = std::env::var("MFP_BENCH_WAIT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);

    let ca = TestCa::generate().unwrap();
    let world = World::new(Scenario {
        approval: Approval::Manual,
        ..Scenario::default()
    });
    let (identity, _server) = spawn_identity(world.clone(), &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.ca_pem()).unwrap();

    // 1. Waiting for approval.
    let host = Host::prepare(dir.path(), "wait", &ca_file, identity);
    let baseline = host.status_cpu();
    let run = login(&host, &world, Duration::from_secs(wait_secs));
    print!("{}", run.output);
    println!(
        "CPU while waiting {wait_secs} s for approval: {:.0} ms user+sys for the whole `auth login` process ({:.2} s wall from code shown to exit); one `auth status` process (start-up + one call) takes {:.0} ms, so waiting costs about {:.0} ms",
        run.cpu.as_secs_f64() * 1e3,
        run.wall.as_secs_f64(),
        baseline.as_secs_f64() * 1e3,
        run.cpu.saturating_sub(baseline).as_secs_f64() * 1e3
    );
    println!(
        "token requests during the {wait_secs} s wait: {} (RFC 8628 pace at the {INTERVAL_SECS} s interval: {wait_secs} s / {INTERVAL_SECS} s = {}); {} in all including the one that got the tokens",
        run.before_approval,
        wait_secs / INTERVAL_SECS,
        run.total
    );

    // 2. slow_down on the first poll, approved at once.
    world.set_scenario(Scenario {
        approval: Approval::Manual,
        slow_down: SlowDown::Once,
        ..Scenario::default()
    });
    let host = Host::prepare(dir.path(), "slow-down", &ca_file, identity);
    let run = login(&host, &world, Duration::ZERO);
    println!(
        "slow_down once, approved at once: {} token requests (fewest possible: 2, the slowed one and the one that gets the tokens), signed in {:.2} s after the code was shown (polls due at {INTERVAL_SECS} s, then {} s after it with the interval grown by 5 s: >= {} s), {:.0} ms CPU",
        run.total,
        run.wall.as_secs_f64(),
        INTERVAL_SECS + 5,
        INTERVAL_SECS + INTERVAL_SECS + 5,
        run.cpu.as_secs_f64() * 1e3
    );
}
