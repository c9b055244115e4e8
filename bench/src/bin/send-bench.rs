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

use std::path::Path;
use std::process::Command;

use clap::Parser;
use mfp_bench::{
    BenchArgs, BenchDevice, Usage, checked, machine, median, mib, path_str, run_bench, timed,
    tools_dir, trimmed, write_scan,
};

const TO: &str = "alice@contoso.com";
const BEGIN: &str = "<!-- bench:send:begin -->";
const END: &str = "<!-- bench:send:end -->";

/// Client CPU and peak RSS of sending one scan with `mfp-host send` versus a native lettre
/// client, both against the stand-in Exchange Online in a process of its own.
#[derive(Parser)]
#[command(name = "send-bench")]
struct Options {
    #[command(flatten)]
    bench: BenchArgs,
    /// Scan sizes to measure, in MB, comma-separated.
    #[arg(long = "sizes", value_name = "MB,MB,…", value_delimiter = ',',
          value_parser = trimmed::<u64>, default_value = "5,25,100")]
    sizes_mb: Vec<u64>,
    /// A result line to put above the table (e.g. the component size); may be repeated.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    extra: Vec<String>,
}

fn main() {
    let options = Options::parse();
    run_bench("send-bench", &options.bench, (BEGIN, END), |work| {
        run(&options, work)
    });
}

fn run(options: &Options, work: &Path) -> Result<String, String> {
    let tools = tools_dir()?;
    let device = BenchDevice::signed_in(&options.bench.mfp_host, &tools, work)?;
    let stand_in_dir = device.stand_in.dir.clone();
    let mfp = |args: &[&str]| device.mfp(args);

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
        for round in 1..=options.bench.rounds {
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

fn table(options: &Options, rows: &[(u64, Vec<Usage>, Vec<Usage>)]) -> String {
    let mut t = String::new();
    t.push_str(&format!("Measured on {}.\n\n", machine()));
    for line in &options.extra {
        t.push_str(line);
        t.push_str("\n\n");
    }
    t.push_str(&format!(
        "Send of one scan (random bytes, every line starting with `.`) over loopback STARTTLS + AUTH XOAUTH2 to the stand-in Exchange Online in its own process; each client's own process CPU (user+sys) and peak RSS from `/usr/bin/time`, medians of {} alternating rounds; compile cache warm.\n\n",
        options.bench.rounds
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
