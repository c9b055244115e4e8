//! `send-bench --mfp-host PATH [--rounds N] [--sizes MB,MB,…] [--readme README.md]`: the
//! client CPU and peak RSS of sending one scan with `mfp-host send` versus a native lettre
//! client (`lettre-send`), both against the same stand-in Exchange Online running in its
//! own process (`stand-in`), measured from outside with `/usr/bin/time` (the child's own
//! user+sys CPU and max RSS, from `wait4`).
//!
//! For each size the two clients alternate, `--rounds` times each (default 5), and the
//! medians are reported. Every run must succeed: a failed send stops the benchmark with
//! the client's output, so no figure is ever printed for a send that did not happen. The
//! compile cache is filled by a warm-up send before any measured run (so the figures are
//! with a warm cache). With `--readme`, the results table between the markers
//! `<!-- bench:send:begin -->` and `<!-- bench:send:end -->` is replaced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TO: &str = "alice@contoso.com";
const BEGIN: &str = "<!-- bench:send:begin -->";
const END: &str = "<!-- bench:send:end -->";

struct Options {
    mfp_host: PathBuf,
    rounds: usize,
    sizes_mb: Vec<u64>,
    readme: Option<PathBuf>,
    /// Other result lines to put in the README's table (e.g. the component size).
    extra: Vec<String>,
}

fn main() {
    let options = parse_args();
    let work = std::env::temp_dir().join(format!("mfp-send-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)
        .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", work.display())));
    let result = run(&options, &work);
    let _ = std::fs::remove_dir_all(&work);
    let table = result.unwrap_or_else(|e| fail(&e));
    println!("{table}");
    if let Some(readme) = &options.readme {
        replace_between_markers(readme, &table).unwrap_or_else(|e| fail(&e));
        println!("(table written to {})", readme.display());
    }
}

fn fail(why: &str) -> ! {
    eprintln!("send-bench: FAILED: {why}");
    std::process::exit(1);
}

fn parse_args() -> Options {
    let mut options = Options {
        mfp_host: PathBuf::new(),
        rounds: 5,
        sizes_mb: vec![5, 25, 100],
        readme: None,
        extra: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--mfp-host" => options.mfp_host = value().into(),
            "--rounds" => options.rounds = value().parse().unwrap_or_else(|_| fail("--rounds N")),
            "--sizes" => {
                options.sizes_mb = value()
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .unwrap_or_else(|_| fail("--sizes 5,25,100"))
                    })
                    .collect()
            }
            "--readme" => options.readme = Some(value().into()),
            "--extra" => options.extra.push(value()),
            other => fail(&format!("unknown argument {other}")),
        }
    }
    if options.mfp_host.as_os_str().is_empty() {
        fail("--mfp-host PATH is required");
    }
    options
}

/// The stand-in process; killed when dropped.
struct StandIn(Child);

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `/usr/bin/time` reported for one client run.
#[derive(Clone, Copy)]
struct Usage {
    cpu: f64,
    user: f64,
    sys: f64,
    wall: f64,
    max_rss_kib: u64,
}

fn run(options: &Options, work: &Path) -> Result<String, String> {
    let tools = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let stand_in_dir = work.join("stand-in");
    std::fs::create_dir_all(&stand_in_dir).map_err(|e| e.to_string())?;
    let child = Command::new(tools.join("stand-in"))
        .arg(&stand_in_dir)
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start stand-in: {e}"))?;
    let _stand_in = StandIn(child);
    let started = Instant::now();
    while !stand_in_dir.join("ready").exists() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the stand-in did not get ready in 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let resolve =
        std::fs::read_to_string(stand_in_dir.join("resolve")).map_err(|e| e.to_string())?;
    let mut host_flags: Vec<String> = vec![
        "--state-dir".into(),
        work.join("device").display().to_string(),
        "--ca-file".into(),
        stand_in_dir.join("ca.pem").display().to_string(),
    ];
    for rule in resolve.lines() {
        host_flags.push("--resolve".into());
        host_flags.push(rule.to_owned());
    }
    let mfp = |args: &[&str]| -> Command {
        let mut cmd = Command::new(&options.mfp_host);
        cmd.args(&host_flags).args(args);
        cmd
    };
    checked(
        mfp(&["settings", "set", "service-provider", "exchange-online"]),
        "settings set",
    )?;
    checked(mfp(&["auth", "login"]), "auth login")?;

    // Warm-up: fills the compile cache and the page cache, checks both clients work.
    let warm = work.join("warm-up.pdf");
    write_scan(&warm, 100_000).map_err(|e| e.to_string())?;
    checked(
        mfp(&["send", "--to", TO, "--attach", path_str(&warm)]),
        "warm-up send (mfp-host)",
    )?;
    let lettre = |file: &Path| -> Command {
        let mut cmd = Command::new(tools.join("lettre-send"));
        cmd.arg(&stand_in_dir).arg(file);
        cmd
    };
    checked(lettre(&warm), "warm-up send (lettre)")?;

    let mut rows = Vec::new();
    for &mb in &options.sizes_mb {
        let file = work.join(format!("scan-{mb}mb.pdf"));
        write_scan(&file, mb * 1_000_000).map_err(|e| e.to_string())?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=options.rounds {
            ours.push(timed(
                mfp(&["send", "--to", TO, "--attach", path_str(&file)]),
                &format!("{mb} MB round {round}: mfp-host send"),
            )?);
            theirs.push(timed(
                lettre(&file),
                &format!("{mb} MB round {round}: lettre"),
            )?);
            eprintln!(
                "{mb} MB round {round}: mfp-host {:.3} s CPU {:.1} MiB, lettre {:.3} s CPU {:.1} MiB",
                ours[round - 1].cpu,
                mib(ours[round - 1].max_rss_kib),
                theirs[round - 1].cpu,
                mib(theirs[round - 1].max_rss_kib)
            );
        }
        let _ = std::fs::remove_file(&file);
        rows.push((mb, ours, theirs));
    }
    Ok(table(options, &rows))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// Runs `cmd` to its end; an exit status other than 0 is the benchmark's failure.
fn checked(mut cmd: Command, what: &str) -> Result<(), String> {
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
fn timed(cmd: Command, what: &str) -> Result<Usage, String> {
    let report = std::env::temp_dir().join(format!("mfp-send-bench-time-{}", std::process::id()));
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
fn write_scan(path: &Path, size: u64) -> std::io::Result<()> {
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

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn table(options: &Options, rows: &[(u64, Vec<Usage>, Vec<Usage>)]) -> String {
    let mut t = String::new();
    t.push_str(&format!("Measured on {}.\n\n", machine()));
    for line in &options.extra {
        t.push_str(line);
        t.push_str("\n\n");
    }
    t.push_str(&format!(
        "Send of one scan (random bytes, every line starting with `.`) over loopback STARTTLS + AUTH XOAUTH2 to the stand-in Exchange Online in its own process; each client's own process CPU (user+sys) and peak RSS from `/usr/bin/time`, medians of {} alternating rounds; compile cache warm.\n\n",
        options.rounds
    ));
    t.push_str("| scan | mfp-host CPU (user / sys) | lettre CPU (user / sys) | CPU ratio | mfp-host peak RSS | lettre peak RSS | mfp-host wall | lettre wall |\n");
    t.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (mb, ours, theirs) in rows {
        let m = |v: &[Usage], f: fn(&Usage) -> f64| median(v.iter().map(f).collect());
        let (oc, tc) = (m(ours, |u| u.cpu), m(theirs, |u| u.cpu));
        t.push_str(&format!(
            "| {mb} MB | {oc:.3} s ({:.3} / {:.3}) | {tc:.3} s ({:.3} / {:.3}) | **{:.2}×** | {:.1} MiB | {:.1} MiB | {:.2} s | {:.2} s |\n",
            m(ours, |u| u.user),
            m(ours, |u| u.sys),
            m(theirs, |u| u.user),
            m(theirs, |u| u.sys),
            oc / tc,
            m(ours, |u| u.max_rss_kib as f64) / 1024.0,
            m(theirs, |u| u.max_rss_kib as f64) / 1024.0,
            m(ours, |u| u.wall),
            m(theirs, |u| u.wall),
        ));
    }
    t
}

/// The CPU model and count, and the kernel: what the figures were measured on.
fn machine() -> String {
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

fn replace_between_markers(readme: &Path, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!(
            "{} lacks the markers {BEGIN} … {END}",
            readme.display()
        ));
    };
    if end < begin {
        return Err(format!("{}: {END} comes before {BEGIN}", readme.display()));
    }
    let updated = format!("{}{BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    std::fs::write(readme, updated).map_err(|e| format!("{}: {e}", readme.display()))
}
