//! `relay-bench --mfp-host PATH [--rounds N] [--mb MB] [--readme README.md]`: what the relay costs. A scan
//! (default 25 MB) goes from a native lettre client to the stand-in Exchange Online two
//! ways, alternating, `--rounds` times each (default 5):
//!
//! - **direct**: lettre with STARTTLS and AUTH XOAUTH2 straight to the stand-in;
//! - **relayed**: lettre with plain SMTP and no authentication to `mfp-host relay`, which
//!   passes it through to the stand-in as the signed-in account.
//!
//! Reported: the relay process's CPU (user+sys, from `/proc/PID/stat`, before and after
//! each relayed send) and its peak RSS (`VmHWM`), and the client's wall time each way
//! (from `/usr/bin/time`), as medians, with the added latency as a ratio. The stand-in
//! runs in a process of its own. Every send must succeed, or no figure is printed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use clap::Parser;
use mfp_bench::{
    BenchArgs, BenchDevice, checked, machine, median, run_bench, timed, tools_dir, write_scan,
};

const BEGIN: &str = "<!-- bench:relay:begin -->";
const END: &str = "<!-- bench:relay:end -->";

/// What `mfp-host relay` costs: a scan from lettre to the stand-in Exchange Online, direct
/// and through the relay, alternating.
#[derive(Parser)]
#[command(name = "relay-bench")]
struct Options {
    #[command(flatten)]
    bench: BenchArgs,
    /// Size of the scan sent each round, in MB.
    #[arg(long, value_name = "MB", default_value_t = 25)]
    mb: u64,
}

fn main() {
    let options = Options::parse();
    run_bench("relay-bench", &options.bench, (BEGIN, END), |work| {
        run(&options, work)
    });
}

/// The relay process; killed when dropped.
struct RelayProcess {
    child: Child,
    addr: String,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RelayProcess {
    /// CPU seconds (user+sys) the relay process has used so far.
    fn cpu(&self) -> Result<f64, String> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_err(|e| format!("the relay is gone: {e}"))?;
        // Fields after the command name (which may hold spaces) end with ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // utime and stime are fields 14 and 15 of stat(5); 12 and 13 after the name.
        let (Some(user), Some(sys)) = (ticks(11), ticks(12)) else {
            return Err(format!("unreadable /proc stat: {stat}"));
        };
        Ok((user + sys) / clock_ticks())
    }

    /// The relay process's peak RSS so far, in MiB.
    fn peak_rss_mib(&self) -> Result<f64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("the relay is gone: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .ok_or_else(|| "no VmHWM in /proc status".into())
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn run(options: &Options, work: &Path) -> Result<String, String> {
    let tools = tools_dir()?;
    let device = BenchDevice::signed_in(&options.bench.mfp_host, &tools, work)?;
    let stand_in = &device.stand_in;
    let mfp = |args: &[&str]| device.mfp(args);

    let mut child = mfp(&["relay", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the relay: {e}"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no relay stdout")?);
    let mut first = String::new();
    lines.read_line(&mut first).map_err(|e| e.to_string())?;
    let addr = first
        .trim()
        .strip_prefix("relay listening on smtp://")
        .ok_or_else(|| format!("the relay printed {first:?}"))?
        .to_owned();
    std::thread::spawn(move || for _ in lines.lines() {});
    let relay = RelayProcess { child, addr };

    let lettre = |file: &Path, via: Option<&str>| -> Command {
        let mut cmd = Command::new(tools.join("lettre-send"));
        cmd.arg(&stand_in.dir).arg(file);
        if let Some(via) = via {
            cmd.args(["--via", via]);
        }
        cmd
    };
    // Warm-up: compiles the component into the cache, checks both ways work.
    let warm = work.join("warm-up.pdf");
    write_scan(&warm, 100_000).map_err(|e| e.to_string())?;
    checked(lettre(&warm, None), "warm-up send (direct)")?;
    checked(lettre(&warm, Some(&relay.addr)), "warm-up send (relayed)")?;

    let file = work.join("scan.pdf");
    write_scan(&file, options.mb * 1_000_000).map_err(|e| e.to_string())?;
    let (mut direct, mut relayed, mut relay_cpu) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=options.bench.rounds {
        direct.push(timed(lettre(&file, None), &format!("round {round}: direct"))?.wall);
        let before = relay.cpu()?;
        let wall = timed(
            lettre(&file, Some(&relay.addr)),
            &format!("round {round}: relayed"),
        )?
        .wall;
        relay_cpu.push(relay.cpu()? - before);
        relayed.push(wall);
        eprintln!(
            "round {round}: direct {:.2} s, relayed {wall:.2} s, relay CPU {:.3} s",
            direct[round - 1],
            relay_cpu[round - 1]
        );
    }
    let peak = relay.peak_rss_mib()?;
    let (d, r) = (median(direct), median(relayed));
    Ok(format!(
        "Measured on {}.\n\nA {} MB scan (random bytes, every line starting with `.`) from lettre to the stand-in Exchange Online (its own process), medians of {} alternating rounds, compile cache warm:\n\n| | client wall time | relay process CPU (user+sys) | relay peak RSS |\n| --- | ---: | ---: | ---: |\n| direct (STARTTLS + XOAUTH2) | {d:.2} s | | |\n| through `mfp-host relay` (plain SMTP in) | {r:.2} s | {:.3} s | {peak:.1} MiB |\n\nAdded latency: **{:.2}×** the direct send's wall time.\n",
        machine(),
        options.mb,
        options.bench.rounds,
        median(relay_cpu),
        r / d
    ))
}
