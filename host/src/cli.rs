//! The `mfp-host` command line (DESIGN.md, "Host contract"). Integrators script against
//! it: commands, flags and setting keys are only ever added, never renamed.
//!
//! Exit status: 0 success; 1 refused by the device's rules (or `diagnose` found an
//! error); 2 bad usage or malformed input; 3 the device itself failed (state dir,
//! component, sandbox). Failures print `error[CODE]: message` and `remedy: …` on stderr.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};

use crate::bindings::types::{
    ControlPanelScreen, Diagnostic, LoginCredentials, Origin, ServiceProvider, Severity,
};
use crate::component::ComponentSource;
use crate::device::{Device, DeviceError, DeviceOptions};
use crate::net::{NetConfig, ProxyConfig, ResolveRule};
use crate::runtime::RuntimeOptions;

#[derive(Debug, Parser)]
#[command(
    name = "mfp-host",
    version,
    about = "Device runtime for the Exchange Online/Outlook.com SMTP settings (mfp-smtp-oauth)"
)]
pub struct Cli {
    /// Folder holding the device's database and compiled-code cache.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run this component file instead of the one built into the binary.
    #[arg(long, global = true, value_name = "PATH")]
    pub component: Option<PathBuf>,
    /// Wall-clock limit for one call into the component.
    #[arg(long, global = true, value_name = "MS", default_value_t = 5000)]
    pub call_timeout_ms: u64,
    /// Wall-clock limit for one call that uses the network (sign-in, a send).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 600)]
    pub network_call_timeout_secs: u64,
    /// Linear-memory limit of one component instance.
    #[arg(long, global = true, value_name = "MIB", default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// Compile the component at every start instead of caching it in the state dir.
    #[arg(long, global = true)]
    pub no_compile_cache: bool,
    /// The identity platform the device may reach.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "https://login.microsoftonline.com"
    )]
    pub authority: String,
    /// Connect to ADDR:PORT when the component asks for HOST:PORT (TLS still verifies HOST).
    #[arg(long, global = true, value_name = "HOST:PORT=ADDR:PORT")]
    pub resolve: Vec<String>,
    /// Extra trusted root certificates (PEM), besides the built-in web roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Vec<PathBuf>,
    /// Sign in to this tenant for this invocation instead of the stored `tenant` setting.
    #[arg(long, global = true, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Use this application (client) id for this invocation instead of the stored `client-id`.
    #[arg(long, global = true, value_name = "GUID")]
    pub client_id: Option<String>,
    /// HTTP proxy for HTTPS to the identity platform (HTTP CONNECT).
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
    /// Longest wait for one HTTPS read or write. (SMTP waits per RFC 5321 stage, up to 10 minutes.)
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60)]
    pub io_timeout_secs: u64,
    /// For tests only: divide every SMTP stage timeout of RFC 5321 (5 minutes for a reply, 10
    /// for the reply to the final dot) by N. 1 keeps the RFC values.
    #[arg(
        long,
        global = true,
        value_name = "N",
        default_value_t = 1,
        hide = true
    )]
    pub smtp_timeout_divisor: u32,
    /// Longest wait for a TCP connection (and for a free SMTP connection slot).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The web panel's settings (CentreWare Internet Services).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// The machine's control panel (rules S4–S6).
    #[command(subcommand)]
    Panel(PanelCommand),
    /// Lists every current warning with its remedy; exits 1 if one is an error.
    Diagnose {
        #[arg(long)]
        json: bool,
    },
    /// Shows the component's size, hash, imports and exports.
    Inspect {
        #[arg(long)]
        json: bool,
    },
    /// Signs the device in to Exchange Online/Outlook.com (device code flow, rule S8).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Sends an email through the configured server; exit status 0 only when accepted.
    Send(SendArgs),
    /// Serves the web panel and its JSON API (web/API.md) until interrupted.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the real one is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Run embedded fake Microsoft endpoints on loopback and the demo pages (/demo/...).
    #[arg(long)]
    pub demo: bool,
    /// File holding the administrator password (else $MFP_ADMIN_PASSWORD, else a random
    /// one generated at the first start, printed once, kept only as an Argon2 hash).
    #[arg(long, value_name = "FILE")]
    pub admin_password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Shows a code and a page to enter it on, waits for approval, exits 0 when signed in.
    Login,
    /// Shows who is signed in, warnings, and the admin-consent step.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Signs out: deletes the tokens and the account.
    Logout,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// A recipient (repeat for several).
    #[arg(long = "to", value_name = "ADDR", required = true)]
    pub to: Vec<String>,
    /// A walk-up user's edit of From; the From Address policy decides if it is allowed.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    #[arg(long, value_name = "S", default_value = "Scanned document")]
    pub subject: String,
    #[arg(long, value_name = "B", default_value = "")]
    pub body: String,
    /// A file to attach (repeat for several).
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Who stands at the panel (S7); `unauthenticated`: authorization is not required.
    #[arg(long, value_enum, default_value_t = UserArg::Unauthenticated)]
    pub user: UserArg,
    /// How the Address Book (LDAP) search went, with `--user authenticated` (default
    /// `succeeded`).
    #[arg(long = "ldap-search", value_enum, value_name = "OUTCOME")]
    pub ldap_search: Option<LdapSearchArg>,
}

/// `send --user`: who stands at the panel (the From Address policy, S7, depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserArg {
    /// A user who logged in at the device.
    Authenticated,
    /// A guest user.
    Guest,
    /// Nobody logged in: authorization is not required.
    Unauthenticated,
}

/// `send --ldap-search`: how the Address Book (LDAP) search for an authenticated user went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LdapSearchArg {
    Succeeded,
    Failed,
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Prints every setting (as one flat JSON object with --json).
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Applies KEY VALUE pairs as one Apply from the web panel; all or nothing.
    Set {
        /// Alternating setting keys and values, e.g. `service-provider exchange-online`.
        #[arg(value_name = "KEY VALUE")]
        pairs: Vec<String>,
        /// The changes as one flat JSON object instead (`-` reads it from stdin).
        #[arg(long, value_name = "OBJECT")]
        json: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PanelCommand {
    /// Types an SMTP server name on the control panel (resets the provider, rule S4).
    SetServer { host: String },
    /// Changes one SMTP setting on the control panel.
    Set { key: String, value: String },
    /// Prints what the control panel shows (the server is blank under Exchange Online).
    Show {
        #[arg(long)]
        json: bool,
    },
}

/// A failure as the command line reports it.
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
    pub remedy: String,
    pub exit: u8,
}

impl CliError {
    pub(crate) fn usage(code: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            remedy: remedy.into(),
            exit: 2,
        }
    }
}

impl From<DeviceError> for CliError {
    fn from(err: DeviceError) -> Self {
        // Refusals and diagnosed failures (a sign-in or a send the component explained)
        // are outcomes of the device's rules: 1. Only the device itself failing is 3.
        let exit = if matches!(
            err,
            DeviceError::Refused(_) | DeviceError::Diagnosed(_) | DeviceError::SendFailed(_)
        ) {
            1
        } else {
            3
        };
        let (code, message, remedy) = err.diagnosis();
        Self {
            code,
            message,
            remedy,
            exit,
        }
    }
}

/// Parses the process arguments, runs the command and returns the exit status.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match run(cli, &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let _ = out.flush();
            eprintln!(
                "error[{}]: {}\nremedy: {}",
                err.code, err.message, err.remedy
            );
            ExitCode::from(err.exit)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MFP_LOG")
        .unwrap_or_else(|_| "warn,mfp_host::serve=info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// The default state dir: the per-user state folder (XDG on Linux).
pub fn default_state_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "mfp-smtp-oauth")
        .map(|dirs| {
            dirs.state_dir()
                .unwrap_or(dirs.data_local_dir())
                .to_path_buf()
        })
        .unwrap_or_else(|| PathBuf::from("mfp-state"))
}

impl Cli {
    /// The device options these flags describe.
    pub fn device_options(&self) -> DeviceOptions {
        let mut options =
            DeviceOptions::new(self.state_dir.clone().unwrap_or_else(default_state_dir));
        options.component = self
            .component
            .clone()
            .map(ComponentSource::File)
            .unwrap_or_default();
        options.compile_cache = !self.no_compile_cache;
        options.runtime = RuntimeOptions {
            call_timeout: Duration::from_millis(self.call_timeout_ms.max(1)),
            network_call_timeout: Duration::from_secs(self.network_call_timeout_secs.max(1)),
            memory_limit: self.memory_limit_mib.max(1).saturating_mul(1 << 20),
            cache_dir: None,
        };
        options
    }

    /// The network configuration these flags describe.
    pub fn net_config(&self) -> Result<NetConfig, CliError> {
        let bad = |what: String| {
            CliError::usage(
                "network-config-invalid",
                what,
                "See `mfp-host --help` for the forms of --authority, --resolve, --ca-file and --proxy.",
            )
        };
        let mut config = NetConfig {
            authority: self.authority.clone(),
            io_timeout: Duration::from_secs(self.io_timeout_secs.max(1)),
            smtp_timeout_divisor: self.smtp_timeout_divisor.max(1),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs.max(1)),
            ..NetConfig::default()
        };
        for rule in &self.resolve {
            config
                .resolve
                .push(ResolveRule::parse(rule).map_err(|e| bad(e.to_string()))?);
        }
        for path in &self.ca_file {
            config.extra_roots_pem.push(
                std::fs::read(path)
                    .map_err(|e| bad(format!("--ca-file {}: {e}", path.display())))?,
            );
        }
        if let Some(proxy) = &self.proxy {
            config.proxy = Some(ProxyConfig::parse(proxy).map_err(|e| bad(e.to_string()))?);
        }
        Ok(config)
    }
}

/// Runs one command, writing its output to `out`. Returns the exit status on success.
pub fn run(cli: Cli, out: &mut impl Write) -> Result<u8, CliError> {
    // Input is checked before the device is opened: malformed input touches nothing.
    let changes = match &cli.command {
        Command::Settings(SettingsCommand::Set { pairs, json }) => {
            Some(set_changes(pairs, json.as_deref())?)
        }
        _ => None,
    };
    if let Command::Inspect { json } = cli.command {
        return inspect(&cli.device_options(), json, out);
    }
    if let Command::Serve(args) = &cli.command {
        return crate::serve::run(&cli, args.clone(), out);
    }
    let mut options = cli.device_options();
    options.net = Some(cli.net_config()?);
    options.overrides = crate::net::SigninOverrides {
        tenant: cli.tenant.clone(),
        client_id: cli.client_id.clone(),
    };
    let device = Device::open(options)?;
    let written = match cli.command {
        Command::Settings(SettingsCommand::Show { json }) => show_settings(&device, json, out)?,
        Command::Settings(SettingsCommand::Set { .. }) => {
            apply(&device, Origin::WebPanel, &changes.unwrap_or_default(), out)?
        }
        Command::Panel(PanelCommand::SetServer { host }) => apply(
            &device,
            Origin::ControlPanel,
            &[("smtp-server".into(), host)],
            out,
        )?,
        Command::Panel(PanelCommand::Set { key, value }) => {
            apply(&device, Origin::ControlPanel, &[(key, value)], out)?
        }
        Command::Panel(PanelCommand::Show { json }) => {
            show_control_panel(&device.control_panel_view()?, json, out)
        }
        Command::Diagnose { json } => return diagnose(&device, json, out),
        Command::Auth(AuthCommand::Login) => return crate::cli_auth::login(&device, out),
        Command::Auth(AuthCommand::Status { json }) => {
            return crate::cli_auth::status(&device, json, out);
        }
        Command::Auth(AuthCommand::Logout) => {
            device.sign_out()?;
            writeln!(out, "Signed out: the tokens and the account were deleted.")
        }
        Command::Send(args) => return crate::cli_send::send(&device, &args, out),
        Command::Inspect { .. } | Command::Serve(_) => unreachable!("handled above"),
    };
    written.map_err(output_error)?;
    Ok(0)
}

pub(crate) fn output_error(err: std::io::Error) -> CliError {
    CliError {
        code: "output-failed".into(),
        message: format!("could not write the output: {err}"),
        remedy: "Check where standard output goes.".into(),
        exit: 3,
    }
}

/// The changes of `settings set`, from KEY VALUE pairs or a JSON object.
fn set_changes(pairs: &[String], json: Option<&str>) -> Result<Vec<(String, String)>, CliError> {
    match json {
        Some(_) if !pairs.is_empty() => Err(CliError::usage(
            "usage",
            "give the changes either as KEY VALUE pairs or as --json, not both",
            "Use `settings set KEY VALUE [KEY VALUE…]` or `settings set --json '{\"key\":\"value\"}'`.",
        )),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                CliError::usage(
                    "invalid-json",
                    format!("could not read the JSON from stdin: {e}"),
                    "Pipe a UTF-8 JSON object into the command.",
                )
            })?;
            parse_json_changes(&text)
        }
        Some(text) => parse_json_changes(text),
        None if pairs.is_empty() || pairs.len() % 2 != 0 => Err(CliError::usage(
            "usage",
            format!(
                "`settings set` takes KEY VALUE pairs; got {} argument(s)",
                pairs.len()
            ),
            "Give each key followed by its value, e.g. `settings set service-provider exchange-online receive-port 25`.",
        )),
        None => Ok(pairs
            .chunks(2)
            .map(|kv| (kv[0].clone(), kv[1].clone()))
            .collect()),
    }
}

/// A flat JSON object of setting keys; values are strings (numbers are accepted for ports).
pub fn parse_json_changes(text: &str) -> Result<Vec<(String, String)>, CliError> {
    let remedy = "Give one flat JSON object of setting keys and string values, e.g. {\"service-provider\": \"exchange-online\", \"receive-port\": \"25\"}.";
    let value: Value = serde_json::from_str(text).map_err(|e| {
        CliError::usage(
            "invalid-json",
            format!("the --json input is not valid JSON: {e}"),
            remedy,
        )
    })?;
    let Value::Object(object) = value else {
        return Err(CliError::usage(
            "invalid-json",
            "the --json input must be a JSON object",
            remedy,
        ));
    };
    object
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            Value::Number(n) => Ok((key, n.to_string())),
            other => Err(CliError::usage(
                "invalid-json",
                format!("the value of \"{key}\" must be a string, not {other}"),
                remedy,
            )),
        })
        .collect()
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

pub(crate) fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({ "code": d.code, "severity": severity_name(d.severity), "message": d.message, "remedy": d.remedy })
}

pub(crate) fn write_diagnostic(out: &mut impl Write, d: &Diagnostic) -> std::io::Result<()> {
    writeln!(
        out,
        "{}[{}]: {}\n  remedy: {}",
        severity_name(d.severity),
        d.code,
        d.message,
        d.remedy
    )
}

fn show_settings(
    device: &Device,
    json: bool,
    out: &mut impl Write,
) -> Result<std::io::Result<()>, CliError> {
    let entries = device.settings()?;
    Ok((|| {
        if json {
            let object: Map<String, Value> = entries
                .iter()
                .map(|e| (e.key.clone(), Value::String(e.value.clone())))
                .collect();
            return writeln!(out, "{}", Value::Object(object));
        }
        for e in &entries {
            match &e.locked {
                Some(why) => writeln!(out, "{:<38} {:<28} (locked: {why})", e.key, e.value)?,
                None => writeln!(out, "{:<38} {}", e.key, e.value)?,
            }
        }
        Ok(())
    })())
}

fn apply(
    device: &Device,
    origin: Origin,
    changes: &[(String, String)],
    out: &mut impl Write,
) -> Result<std::io::Result<()>, CliError> {
    let outcome = device.apply(origin, changes)?;
    Ok((|| {
        writeln!(out, "Applied {} change(s).", changes.len())?;
        outcome
            .notices
            .iter()
            .try_for_each(|n| write_diagnostic(out, n))
    })())
}

pub(crate) fn provider_label(p: ServiceProvider) -> &'static str {
    match p {
        ServiceProvider::NotSelected => "not-selected",
        ServiceProvider::ExchangeOnline => "exchange-online",
    }
}

pub(crate) fn credentials_label(c: LoginCredentials) -> &'static str {
    match c {
        LoginCredentials::System => "system",
        LoginCredentials::RemotelyAuthenticatedUser => "remotely-authenticated-user",
    }
}

fn show_control_panel(
    view: &ControlPanelScreen,
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    if json {
        let value = json!({
            "service-provider": provider_label(view.service_provider),
            "smtp-server": view.smtp_server,
            "send-port": view.send_port.to_string(),
            "receive-port": view.receive_port.to_string(),
            "login-credentials": credentials_label(view.login_credentials),
            "smtp-edits-enabled": view.smtp_edits_enabled,
            "notice": view.notice,
        });
        return writeln!(out, "{value}");
    }
    writeln!(
        out,
        "service-provider   {}",
        provider_label(view.service_provider)
    )?;
    writeln!(out, "smtp-server        {}", view.smtp_server)?;
    writeln!(out, "send-port          {}", view.send_port)?;
    writeln!(out, "receive-port       {}", view.receive_port)?;
    writeln!(
        out,
        "login-credentials  {}",
        credentials_label(view.login_credentials)
    )?;
    writeln!(
        out,
        "smtp-edits         {}",
        if view.smtp_edits_enabled {
            "enabled"
        } else {
            "not enabled"
        }
    )?;
    if let Some(notice) = &view.notice {
        writeln!(out, "notice             {notice}")?;
    }
    Ok(())
}

fn diagnose(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, CliError> {
    let found = device.diagnostics()?;
    let result = if json {
        writeln!(
            out,
            "{}",
            Value::Array(found.iter().map(diagnostic_json).collect())
        )
    } else if found.is_empty() {
        writeln!(out, "No problems found.")
    } else {
        found.iter().try_for_each(|d| write_diagnostic(out, d))
    };
    result.map_err(output_error)?;
    Ok(if found.iter().any(|d| d.severity == Severity::Error) {
        1
    } else {
        0
    })
}

fn inspect(options: &DeviceOptions, json: bool, out: &mut impl Write) -> Result<u8, CliError> {
    let failed = |why: String| {
        CliError::from(DeviceError::Component {
            source_name: options.component.describe(),
            why,
        })
    };
    let bytes = options
        .component
        .bytes()
        .map_err(|e| failed(e.to_string()))?;
    let info = crate::runtime::inspect(&bytes).map_err(|e| failed(format!("{e:#}")))?;
    let result = if json {
        writeln!(
            out,
            "{}",
            json!({ "size": bytes.len(), "sha256": info.sha256, "imports": info.imports, "exports": info.exports })
        )
    } else {
        (|| {
            writeln!(out, "component  {}", options.component.describe())?;
            writeln!(
                out,
                "size       {} bytes ({:.1} KiB)",
                bytes.len(),
                bytes.len() as f64 / 1024.0
            )?;
            writeln!(out, "sha256     {}", info.sha256)?;
            info.imports
                .iter()
                .try_for_each(|i| writeln!(out, "import     {i}"))?;
            info.exports
                .iter()
                .try_for_each(|e| writeln!(out, "export     {e}"))
        })()
    };
    result.map_err(output_error)?;
    Ok(0)
}
