//! `mfp-host`: parses the command line and hands it to a front end — `serve` to the web
//! panel's server, every other command to the command line. The two front ends share
//! the device flags and the vocabulary of `mfp_host::frontend`, and never each other.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mfp_host::frontend::options::DeviceFlags;
use mfp_host::{cli, serve};

#[derive(Debug, Parser)]
#[command(
    name = "mfp-host",
    version,
    about = "Device runtime for the Exchange Online/Outlook.com SMTP settings (mfp-smtp-oauth)"
)]
struct MfpHost {
    #[command(flatten)]
    flags: DeviceFlags,
    #[command(subcommand)]
    command: FrontEnd,
}

#[derive(Debug, Subcommand)]
enum FrontEnd {
    #[command(flatten)]
    CommandLine(cli::Command),
    /// Serves the web panel and its JSON API (web/API.md) until interrupted.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    init_logging();
    let MfpHost { flags, command } = match MfpHost::try_parse() {
        Ok(parsed) => parsed,
        Err(err) => return usage_error(err),
    };
    let mut out = std::io::stdout().lock();
    let result = match command {
        FrontEnd::CommandLine(command) => cli::run(&flags, command, &mut out),
        FrontEnd::Serve(args) => serve::run(&flags, args, &mut out),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(failure) => {
            let _ = out.flush();
            // Every refused field of an Apply, each with its remedy.
            for f in std::iter::once(&failure).chain(&failure.also) {
                eprintln!(
                    "error[{}]: {}\nremedy: {}",
                    f.code, f.message, f.remedy.command_line
                );
            }
            ExitCode::from(failure.kind.exit_status())
        }
    }
}

/// A command line clap could not parse: `--help` and `--version` print as usual; anything
/// else is bad usage (exit 2) in the same `error[CODE]` / `remedy:` form as every failure,
/// and `--json` still gets its one JSON object on stdout.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || matches!(
        err.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        err.exit();
    }
    let rendered = err.render().to_string();
    // clap's message without its usage block, on one line.
    let message = rendered
        .split("\n\nUsage:")
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let remedy = "Run `mfp-host --help`, or `mfp-host COMMAND --help` for a command's options.";
    let json = std::env::args_os().any(|arg| arg == "--json");
    if json {
        let value = serde_json::json!({
            "code": "usage",
            "severity": "error",
            "message": message,
            "remedy": remedy,
            "field": null,
            "fix": null,
        });
        println!("{value}");
    }
    eprintln!("error[usage]: {message}\nremedy: {remedy}");
    ExitCode::from(2)
}

/// Logs go to stderr, filtered by `MFP_LOG` (default: warnings, and the server's access log).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MFP_LOG")
        .unwrap_or_else(|_| "warn,mfp_host::serve=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
