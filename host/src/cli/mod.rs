//! The `mfp-host` command line (DESIGN.md, "Host contract"), every command but `serve`.
//! Integrators script against it: commands, flags and setting keys are only ever added,
//! never renamed.
//!
//! Exit status: 0 success; 1 refused by the device's rules (or `diagnose` found an
//! error); 2 bad usage or malformed input; 3 the device itself failed (state dir,
//! component, sandbox). Failures print `error[CODE]: message` and `remedy: …` on stderr
//! ([`Failure`]).
//!
//! - this file: the commands and their dispatch;
//! - [`settings`]: `settings`, `panel`, `diagnose`, `inspect`;
//! - [`signin`]: `auth login|status|logout`;
//! - [`send`]: `send`, with a progress bar;
//! - [`history`]: `history`;
//! - `preview`: `preview export`;
//! - [`relay`]: `relay`, the SMTP relay for nearby devices.

mod history;
mod preview;
mod relay;
mod send;
mod settings;
mod signin;

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::bindings::types::Origin;
use crate::device::Device;
use crate::frontend::Failure;
use crate::frontend::input::{LdapSearch, UserKind};
use crate::frontend::options::DeviceFlags;
pub use preview::{PreviewCommand, not_built as preview_not_built};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The web panel's settings (CentreWare Internet Services).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// The machine's control panel: what it shows and the SMTP edits it allows.
    #[command(subcommand)]
    Panel(PanelCommand),
    /// Lists every current warning with its remedy; exits 1 if one is an error.
    Diagnose {
        /// Print one JSON array of {code, severity, message, remedy, field, fix}, one
        /// object per warning (the JSON API's diagnosis).
        #[arg(long)]
        json: bool,
    },
    /// Shows the component's size, hash, imports and exports.
    Inspect {
        /// Print one JSON object: {size, sha256, imports, exports}.
        #[arg(long)]
        json: bool,
    },
    /// Signs the device in to Exchange Online/Outlook.com (device code flow).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Sends an email through the configured server; exit status 0 only when accepted.
    Send(SendArgs),
    /// The browser preview: the device's component and the Microsoft stand-ins in a page.
    #[command(subcommand)]
    Preview(PreviewCommand),
    /// Relays the mail of nearby devices that cannot do OAuth to Exchange Online, as the
    /// signed-in account, until interrupted. Each message is passed through and answered
    /// only after Exchange answered; nothing is stored.
    Relay(crate::relay::RelayArgs),
    /// Lists what happened, newest first: sign-ins, sends, relayed messages, provider
    /// resets and failed token refreshes, each with its diagnosis (the current warnings
    /// are `diagnose`'s).
    History {
        /// Print one JSON array of {kind, at, succeeded, summary, diagnosis, server-reply,
        /// origin}, newest first (`GET /api/v1/history`'s shape).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Shows a code and a page to enter it on, waits for approval, exits 0 when signed in.
    Login,
    /// Shows who is signed in, warnings, and the admin-consent step.
    Status {
        /// Print one JSON object with a stable `code`: signed-in, signed-out,
        /// sign-in-in-progress or sign-in-failed (with the diagnosis of that sign-in).
        #[arg(long)]
        json: bool,
    },
    /// Signs out: deletes the tokens and the account.
    Logout,
    /// Cancels the sign-in in progress; an account signed in before stays signed in.
    Cancel,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// A recipient (repeat for several).
    #[arg(long = "to", value_name = "ADDR", required = true)]
    pub to: Vec<String>,
    /// A walk-up user's edit of From; the From Address policy decides if it is allowed.
    #[arg(long, value_name = "ADDR")]
    pub from: Option<String>,
    /// The Subject line.
    #[arg(long, value_name = "S", default_value = "Scanned document")]
    pub subject: String,
    /// The message text.
    #[arg(long, value_name = "B", default_value = "")]
    pub body: String,
    /// A file to attach (repeat for several).
    #[arg(long = "attach", value_name = "FILE")]
    pub attach: Vec<PathBuf>,
    /// Print one JSON object on stdout: the result of the send, or the diagnosis of why
    /// it failed (stderr still carries the `error[CODE]` lines).
    #[arg(long)]
    pub json: bool,
    /// Who stands at the panel: with it the From Address policy decides whether they may
    /// send and edit From. `unauthenticated`: authorization is not required.
    #[arg(long, value_enum, default_value_t = UserKind::Unauthenticated)]
    pub user: UserKind,
    /// How the Address Book (LDAP) search went, with `--user authenticated` (default
    /// `succeeded`).
    #[arg(long = "ldap-search", value_enum, value_name = "OUTCOME")]
    pub ldap_search: Option<LdapSearch>,
}

/// The keys `settings set` takes and their values, under its help (the README's list).
const SETTING_KEYS: &str = "\
Setting keys and their values:
  service-provider                     not-selected, exchange-online
  smtp-server                          a host name (fixed under exchange-online)
  send-port                            1-65535 (fixed under exchange-online)
  receive-port                         1-65535
  login-credentials                    system, remotely-authenticated-user
  device-email                         an email address, or empty
  from.auth-edit-on-ldap-success       yes, no
  from.auth-edit-on-ldap-failure       yes, no
  from.guest-edit                      yes, no
  from.auth-send-despite-ldap-failure  yes, no
  from.edit-without-auth               yes, no
  from.alias-sender                    yes, no
  tenant                               common, organizations, consumers, a tenant id or domain
  client-id                            the application (client) id, a GUID
  consent-redirect-uri                 an https:// URL

Example: mfp-host settings set service-provider exchange-online receive-port 2525";

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Prints every setting, and why a locked one is locked.
    Show {
        /// Print one flat JSON object keyed by setting key, every value a string.
        #[arg(long)]
        json: bool,
    },
    /// Applies KEY VALUE pairs as one Apply from the web panel; all or nothing.
    #[command(after_help = SETTING_KEYS)]
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
    /// Types an SMTP server name on the control panel (under Exchange Online/Outlook.com
    /// this sets the provider back to Not Selected and signs the device out).
    SetServer { host: String },
    /// Changes one SMTP setting on the control panel: smtp-server, send-port, receive-port
    /// or login-credentials.
    Set { key: String, value: String },
    /// Prints what the control panel shows (the server is blank under Exchange Online).
    Show {
        /// Print one JSON object of what the panel shows, with `smtp-edits-enabled` and
        /// the notice that explains locked fields.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one command with the device `flags` describe, writing its output to `out`.
/// Returns the exit status on success.
pub fn run(flags: &DeviceFlags, command: Command, out: &mut impl Write) -> Result<u8, Failure> {
    // Input is checked before the device is opened: malformed input touches nothing.
    let changes = match &command {
        Command::Settings(SettingsCommand::Set { pairs, json }) => {
            Some(settings::set_changes(pairs, json.as_deref())?)
        }
        _ => None,
    };
    match command {
        Command::Inspect { json } => {
            return settings::inspect(&flags.offline_device_options(), json, out);
        }
        // `send` opens the device itself, so that `--json` reports a failure to open it too.
        Command::Send(args) => return send::send(flags, &args, out),
        Command::Preview(preview) => return preview::run(&preview, out),
        Command::Relay(args) => return relay::run(flags, &args, out),
        _ => {}
    }
    let device = Device::open(flags.device_options()?)?;
    let written = match command {
        Command::Settings(SettingsCommand::Show { json }) => {
            settings::show_settings(&device, json, out)?
        }
        Command::Settings(SettingsCommand::Set { .. }) => {
            settings::apply(&device, Origin::WebPanel, &changes.unwrap_or_default(), out)?
        }
        Command::Panel(PanelCommand::SetServer { host }) => settings::apply(
            &device,
            Origin::ControlPanel,
            &[("smtp-server".into(), host)],
            out,
        )?,
        Command::Panel(PanelCommand::Set { key, value }) => {
            settings::apply(&device, Origin::ControlPanel, &[(key, value)], out)?
        }
        Command::Panel(PanelCommand::Show { json }) => {
            settings::show_control_panel(&device.control_panel_view()?, json, out)
        }
        Command::Diagnose { json } => return settings::diagnose(&device, json, out),
        Command::History { json } => return history::history(&device, json, out),
        Command::Auth(AuthCommand::Login) => return signin::login(&device, out),
        Command::Auth(AuthCommand::Status { json }) => return signin::status(&device, json, out),
        Command::Auth(AuthCommand::Logout) => {
            device.sign_out()?;
            writeln!(out, "Signed out: the tokens and the account were deleted.")
        }
        Command::Auth(AuthCommand::Cancel) => {
            device.cancel_signin()?;
            writeln!(
                out,
                "No sign-in is in progress now; an account signed in before stays signed in."
            )
        }
        Command::Inspect { .. } | Command::Send(_) | Command::Preview(_) | Command::Relay(_) => {
            unreachable!("handled above")
        }
    };
    written.map_err(Failure::output)?;
    Ok(0)
}
