//! What the out-of-process benchmarks share: the stand-in Microsoft in a process of its
//! own, running a client under `/usr/bin/time`, the scan they send, medians, the machine,
//! and the README's results tables. Every helper fails loudly: a client that fails is an
//! `Err` with its output, never a figure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flags `send-bench` and `relay-bench` share (flattened into each one's command line),
/// so `scripts/bench` passes `--mfp-host`, `--rounds` and `--readme` to both the same way.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The mfp-host binary to measure (e.g. target/release/mfp-host).
    #[arg(long, value_name = "PATH")]
    pub mfp_host: PathBuf,
    /// Measured rounds of each side, alternating; the medians are reported.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = rounds)]
    pub rounds: usize,
    /// Replace the results table between this benchmark's `bench:*` markers in this file.
    #[arg(long, value_name = "README.md")]
    pub readme: Option<PathBuf>,
}

/// Runs one benchmark as `send-bench` and `relay-bench` do: `run` gets a scratch folder of
/// its own (removed afterwards) and returns the results table, which is printed and, with
/// `--readme`, written between the markers `(begin, end)`. Any failure ends the process
/// with status 1 and `NAME: FAILED: why`: a bench never prints figures for an operation
/// that failed.
pub fn run_bench(
    name: &str,
    args: &BenchArgs,
    (begin, end): (&str, &str),
    run: impl FnOnce(&Path) -> Result<String, String>,
) {
    let fail = |why: String| -> ! {
        eprintln!("{name}: FAILED: {why}");
        std::process::exit(1);
    };
    let work = std::env::temp_dir().join(format!("mfp-{name}-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&work) {
        fail(format!("cannot create {}: {e}", work.display()));
    }
    let result = run(&work);
    let _ = std::fs::remove_dir_all(&work);
    let table = result.unwrap_or_else(|e| fail(e));
    println!("{table}");
    if let Some(readme) = &args.readme {
        replace_between_markers(readme, begin, end, &table).unwrap_or_else(|e| fail(e));
        println!("(table written to {})", readme.display());
    }
}

/// The stand-in Exchange Online in its process and a device of `mfp-host` on it, signed in
/// to the Exchange Online stand-in: what both benches start from.
pub struct BenchDevice {
    pub stand_in: StandIn,
    mfp_host: PathBuf,
    host_flags: Vec<String>,
}

impl BenchDevice {
    /// Starts the stand-in under `work`, and selects Exchange Online and signs in on a
    /// device whose state is under `work` too.
    pub fn signed_in(mfp_host: &Path, tools: &Path, work: &Path) -> Result<Self, String> {
        let stand_in = StandIn::start(tools, &work.join("stand-in"))?;
        let host_flags = stand_in.host_flags(&work.join("device"));
        let device = Self {
            stand_in,
            mfp_host: mfp_host.to_path_buf(),
            host_flags,
        };
        checked(
            device.mfp(&["settings", "set", "service-provider", "exchange-online"]),
            "settings set",
        )?;
        checked(device.mfp(&["auth", "login"]), "auth login")?;
        Ok(device)
    }

    /// `mfp-host` with this device's flags, then `args`.
    pub fn mfp(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.mfp_host);
        cmd.args(&self.host_flags).args(args);
        cmd
    }
}

/// `--rounds`: a count of at least 1, since a median of no rounds is no figure.
fn rounds(value: &str) -> Result<usize, String> {
    match value.parse() {
        Ok(0) => Err("at least 1 round is needed".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}")),
    }
}

/// One item of a comma-separated number list (`--sizes 5, 25`), spaces around it allowed.
pub fn trimmed<T: std::str::FromStr>(item: &str) -> Result<T, T::Err> {
    item.trim().parse()
}

/// The directory this tool runs from, which holds its sibling tools (`stand-in`,
/// `lettre-send`).
pub fn tools_dir() -> Result<PathBuf, String> {
    Ok(std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default())
}

/// The stand-in process (`stand-in DIR`), killed when dropped.
pub struct StandIn {
    child: Child,
    /// Where it wrote `ca.pem`, `resolve`, `exchange` and `token`.
    pub dir: PathBuf,
}

impl StandIn {
    /// Starts `tools/stand-in` writing into `dir`, and waits (at most 30 s) until it is ready.
    pub fn start(tools: &Path, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let child = Command::new(tools.join("stand-in"))
            .arg(dir)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start stand-in: {e}"))?;
        let stand_in = Self {
            child,
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        while !dir.join("ready").exists() {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the stand-in did not get ready in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(stand_in)
    }

    /// `mfp-host`'s flags for a device in `state_dir` that reaches this stand-in.
    pub fn host_flags(&self, state_dir: &Path) -> Vec<String> {
        let resolve = std::fs::read_to_string(self.dir.join("resolve")).unwrap_or_default();
        let mut flags: Vec<String> = vec![
            "--state-dir".into(),
            state_dir.display().to_string(),
            "--ca-file".into(),
            self.dir.join("ca.pem").display().to_string(),
        ];
        for rule in resolve.lines() {
            flags.push("--resolve".into());
            flags.push(rule.to_owned());
        }
        flags
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/usr/bin/time` reported for one client run.
#[derive(Clone, Copy)]
pub struct Usage {
    pub cpu: f64,
    pub user: f64,
    pub sys: f64,
    pub wall: f64,
    pub max_rss_kib: u64,
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// Runs `cmd` to its end; an exit status other than 0 is the benchmark's failure.
pub fn checked(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Runs `cmd` under `/usr/bin/time` and returns the child's usage; fails when the client
/// fails.
pub fn timed(cmd: Command, what: &str) -> Result<Usage, String> {
    let report = std::env::temp_dir().join(format!("mfp-bench-time-{}", std::process::id()));
    let mut timed = Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&report)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    checked(timed, what)?;
    let text = std::fs::read_to_string(&report).map_err(|e| format!("{what}: {e}"))?;
    let _ = std::fs::remove_file(&report);
    let fields: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [wall, user, sys, rss] = fields[..] else {
        return Err(format!("{what}: unexpected /usr/bin/time output {text:?}"));
    };
    Ok(Usage {
        cpu: user + sys,
        user,
        sys,
        wall,
        max_rss_kib: rss as u64,
    })
}

/// A PDF-like scan of `size` bytes: a `%PDF-1.7` header, then pseudo-random bytes in which
/// every line starts with `.` (so dot-stuffing has work to do wherever it happens).
pub fn write_scan(path: &Path, size: u64) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let header = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    out.write_all(header)?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size.saturating_sub(header.len() as u64) as usize;
    let mut chunk = vec![0u8; 1 << 20];
    let mut after_newline = true;
    while left > 0 {
        let n = left.min(chunk.len());
        for word in chunk[..n].chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        for b in &mut chunk[..n] {
            if after_newline {
                *b = b'.';
            }
            after_newline = *b == b'\n';
        }
        out.write_all(&chunk[..n])?;
        left -= n;
    }
    out.flush()
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The CPU model and count, and the kernel: what the figures were measured on.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} CPUs available, Linux {}", kernel.trim())
}

/// Replaces the text between the `begin` and `end` markers of `readme` with `table`.
pub fn replace_between_markers(
    readme: &Path,
    begin_marker: &str,
    end_marker: &str,
    table: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let (Some(begin), Some(end)) = (text.find(begin_marker), text.find(end_marker)) else {
        return Err(format!(
            "{} lacks the markers {begin_marker} … {end_marker}",
            readme.display()
        ));
    };
    if end < begin {
        return Err(format!(
            "{}: {end_marker} comes before {begin_marker}",
            readme.display()
        ));
    }
    let updated = format!("{}{begin_marker}\n{table}{}", &text[..begin], &text[end..]);
    std::fs::write(readme, updated).map_err(|e| format!("{}: {e}", readme.display()))
}
