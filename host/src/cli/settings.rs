//! `settings show|set`, `panel set-server|set|show`, `diagnose` and `inspect`: the
//! settings screens in a terminal. Text for people, `--json` through the shared views.

use std::io::{Read, Write};

use serde_json::{Map, Value};

use crate::bindings::types::{ControlPanelScreen, Diagnostic, Origin, Severity};
use crate::device::{Device, DeviceError, DeviceOptions};
use crate::frontend::views::{self, ControlPanelView, DiagnosticView};
use crate::frontend::{Failure, Surface, input};

/// The changes of `settings set`, from KEY VALUE pairs or a JSON object.
pub(super) fn set_changes(
    pairs: &[String],
    json: Option<&str>,
) -> Result<Vec<(String, String)>, Failure> {
    match json {
        Some(_) if !pairs.is_empty() => Err(Failure::bad_input(
            "usage",
            "Give the changes either as KEY VALUE pairs or as --json, not both",
            "Use `settings set KEY VALUE [KEY VALUE…]` or `settings set --json '{\"key\":\"value\"}'`.",
        )),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                Failure::bad_input(
                    "invalid-json",
                    format!("Could not read the JSON from stdin: {e}"),
                    "Pipe a UTF-8 JSON object into the command.",
                )
            })?;
            json_changes(&text)
        }
        Some(text) => json_changes(text),
        None if pairs.is_empty() || pairs.len() % 2 != 0 => Err(Failure::bad_input(
            "usage",
            format!(
                "The command `settings set` takes KEY VALUE pairs; got {} argument(s)",
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

/// Largest `settings set --json` input accepted.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// A flat JSON object of setting keys; values are strings (numbers are accepted for ports).
fn json_changes(text: &str) -> Result<Vec<(String, String)>, Failure> {
    let remedy = "Give one flat JSON object of setting keys and string values, e.g. {\"service-provider\": \"exchange-online\", \"receive-port\": \"25\"}.";
    // Settings are a few hundred bytes: a larger input is refused here, before the
    // component (and its memory cap) has to hold it.
    if text.len() > MAX_JSON_BYTES {
        return Err(Failure::bad_input(
            "invalid-json",
            format!("The --json input is larger than {MAX_JSON_BYTES} bytes"),
            remedy,
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Failure::bad_input(
            "invalid-json",
            format!("The --json input is not valid JSON: {e}"),
            remedy,
        )
    })?;
    let Value::Object(object) = value else {
        return Err(Failure::bad_input(
            "invalid-json",
            "The --json input must be a JSON object",
            remedy,
        ));
    };
    input::setting_changes(&object).map_err(|key| {
        Failure::bad_input(
            "invalid-json",
            format!("The value of \"{key}\" must be a string"),
            remedy,
        )
    })
}

/// One diagnosis as text: `warning[CODE]: message` and its remedy.
pub(super) fn write_diagnostic(
    out: &mut (impl Write + ?Sized),
    d: &Diagnostic,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}[{}]: {}\n  remedy: {}",
        views::severity_name(d.severity),
        d.code,
        d.message,
        d.remedy.command_line
    )?;
    if let Some(fix) = &d.fix {
        let changes: Vec<String> = fix
            .changes
            .iter()
            .map(|c| format!("{} {}", c.key, shell_word(&c.value)))
            .collect();
        writeln!(out, "  fix: mfp-host settings set {}", changes.join(" "))?;
    }
    Ok(())
}

/// `value` as one shell word: quoted unless it is plain.
fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._-+:/".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

pub(super) fn show_settings(
    device: &Device,
    json: bool,
    out: &mut impl Write,
) -> Result<std::io::Result<()>, Failure> {
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

pub(super) fn apply(
    device: &Device,
    origin: Origin,
    changes: &[(String, String)],
    out: &mut impl Write,
) -> Result<std::io::Result<()>, Failure> {
    let outcome = device.apply(origin, changes)?;
    Ok((|| {
        writeln!(out, "Applied {} change(s).", changes.len())?;
        outcome
            .notices
            .iter()
            .try_for_each(|n| write_diagnostic(out, n))
    })())
}

pub(super) fn show_control_panel(
    view: &ControlPanelScreen,
    json: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let view = ControlPanelView::from(view);
    if json {
        return writeln!(out, "{}", views::to_json(&view));
    }
    writeln!(out, "service-provider   {}", view.service_provider)?;
    writeln!(out, "smtp-server        {}", view.smtp_server)?;
    writeln!(out, "send-port          {}", view.send_port)?;
    writeln!(out, "receive-port       {}", view.receive_port)?;
    writeln!(out, "login-credentials  {}", view.login_credentials)?;
    let edits = if view.smtp_edits_enabled {
        "enabled"
    } else {
        "not enabled"
    };
    writeln!(out, "smtp-edits         {edits}")?;
    if let Some(notice) = view.notice {
        writeln!(out, "notice             {notice}")?;
    }
    Ok(())
}

pub(super) fn diagnose(device: &Device, json: bool, out: &mut impl Write) -> Result<u8, Failure> {
    let found = device.diagnostics()?;
    let result = if json {
        let list: Vec<DiagnosticView<'_>> = views::diagnostics(&found, Surface::CommandLine);
        writeln!(out, "{}", views::to_json(&list))
    } else if found.is_empty() {
        writeln!(out, "No problems found.")
    } else {
        found.iter().try_for_each(|d| write_diagnostic(out, d))
    };
    result.map_err(Failure::output)?;
    Ok(if found.iter().any(|d| d.severity == Severity::Error) {
        1
    } else {
        0
    })
}

pub(super) fn inspect(
    options: &DeviceOptions,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let failed = |why: String| {
        Failure::from(DeviceError::Component {
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
            serde_json::json!({ "size": bytes.len(), "sha256": info.sha256, "imports": info.imports, "exports": info.exports })
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
    result.map_err(Failure::output)?;
    Ok(0)
}
