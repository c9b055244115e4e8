//! The `mfp-host` command line as integrators script it (DESIGN.md, "Host contract"):
//! real processes, one state dir, exit statuses and the `error[CODE]` / `remedy:` lines.

use std::path::Path;
use std::process::{Command, Output};

fn mfp(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("mfp-host runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn settings_json(state: &Path) -> serde_json::Value {
    let out = mfp(state, &["settings", "show", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("settings show --json prints JSON")
}

#[test]
fn settings_show_json_is_one_flat_object_of_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let json = settings_json(dir.path());
    let object = json.as_object().unwrap();
    for key in [
        "service-provider",
        "smtp-server",
        "send-port",
        "receive-port",
        "login-credentials",
        "device-email",
        "from.auth-edit-on-ldap-success",
        "from.auth-edit-on-ldap-failure",
        "from.guest-edit",
        "from.auth-send-despite-ldap-failure",
        "from.edit-without-auth",
        "from.alias-sender",
        "tenant",
        "client-id",
        "consent-redirect-uri",
    ] {
        assert!(
            object.get(key).is_some_and(|v| v.is_string()),
            "missing {key}"
        );
    }
    assert_eq!(object.len(), 15);
    assert_eq!(json["service-provider"], "not-selected");
}

#[test]
fn settings_set_persists_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(
        dir.path(),
        &[
            "settings",
            "set",
            "service-provider",
            "exchange-online",
            "receive-port",
            "2525",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("exchange-online-selected"));
    let json = settings_json(dir.path());
    assert_eq!(json["smtp-server"], "smtp.office365.com");
    assert_eq!(json["send-port"], "587");
    assert_eq!(json["receive-port"], "2525");
}

#[test]
fn settings_set_accepts_a_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(
        dir.path(),
        &[
            "settings",
            "set",
            "--json",
            r#"{"receive-port": 2526, "from.guest-edit": "yes"}"#,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json = settings_json(dir.path());
    assert_eq!(
        (
            json["receive-port"].as_str(),
            json["from.guest-edit"].as_str()
        ),
        (Some("2526"), Some("yes"))
    );
}

#[test]
fn malformed_json_is_a_usage_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = settings_json(dir.path());
    for bad in [
        r#"{"receive-port": "26""#,
        "[1,2]",
        r#"{"receive-port": {"nested": 1}}"#,
        "",
    ] {
        let out = mfp(dir.path(), &["settings", "set", "--json", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error[invalid-json]: ") && err.contains("\nremedy: "),
            "{err}"
        );
    }
    assert_eq!(settings_json(dir.path()), before);
}

#[test]
fn a_refused_apply_exits_1_with_code_message_and_remedy() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        mfp(
            dir.path(),
            &["settings", "set", "service-provider", "exchange-online"]
        )
        .status
        .success()
    );
    let out = mfp(
        dir.path(),
        &["settings", "set", "smtp-server", "mail.example.com"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error[smtp-server-fixed]: "), "{err}");
    assert!(err.contains("\nremedy: "), "{err}");
    // The control panel may not edit the SMTP fields under Exchange Online.
    let out = mfp(dir.path(), &["panel", "set", "receive-port", "2525"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error[control-panel-locked]"));
}

#[test]
fn an_unknown_key_or_a_malformed_value_is_bad_usage_exit_2_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let before = settings_json(dir.path());
    for (args, code) in [
        (&["settings", "set", "no-such-key", "1"][..], "unknown-key"),
        (
            &["settings", "set", "receive-port", "abc"][..],
            "port-not-a-number",
        ),
        (
            &["settings", "set", "send-port", "0"][..],
            "port-out-of-range",
        ),
        // All or nothing: the valid first change does not land either.
        (
            &["settings", "set", "receive-port", "2525", "smtp-servr", "x"][..],
            "unknown-key",
        ),
        (&["panel", "set", "no-such-key", "1"][..], "unknown-key"),
        (&["panel", "set-server", "bad host"][..], "host-invalid"),
    ] {
        let out = mfp(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error[{code}]: ")),
            "{args:?}: {err}"
        );
        assert!(err.contains("\nremedy: "), "{err}");
    }
    assert_eq!(settings_json(dir.path()), before);
}

#[test]
fn an_odd_number_of_key_value_arguments_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(dir.path(), &["settings", "set", "receive-port"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error[usage]"));
}

#[test]
fn panel_set_server_resets_the_provider_and_panel_show_blanks_it_under_exchange() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        mfp(
            dir.path(),
            &["settings", "set", "service-provider", "exchange-online"]
        )
        .status
        .success()
    );
    let out = mfp(dir.path(), &["panel", "show", "--json"]);
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["smtp-server"], "");
    assert_eq!(view["smtp-edits-enabled"], false);

    let out = mfp(dir.path(), &["panel", "set", "send-port", "25"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error[control-panel-locked]"));

    let out = mfp(dir.path(), &["panel", "set-server", "mail.example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("provider-reset-by-control-panel"));
    assert_eq!(
        settings_json(dir.path())["service-provider"],
        "not-selected"
    );
    let view: serde_json::Value =
        serde_json::from_slice(&mfp(dir.path(), &["panel", "show", "--json"]).stdout).unwrap();
    assert_eq!(view["smtp-server"], "mail.example.com");
}

#[test]
fn diagnose_prints_code_severity_message_remedy_and_exits_1_on_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(dir.path(), &["diagnose", "--json"]);
    assert!(out.status.success());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );

    assert!(
        mfp(
            dir.path(),
            &[
                "settings",
                "set",
                "service-provider",
                "exchange-online",
                "from.guest-edit",
                "yes"
            ]
        )
        .status
        .success()
    );
    assert!(
        mfp(
            dir.path(),
            &[
                "panel",
                "set",
                "login-credentials",
                "remotely-authenticated-user"
            ]
        )
        .status
        .success()
    );
    let out = mfp(dir.path(), &["diagnose", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let found: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = found.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        [
            "login-credentials-not-system",
            "send-as-denied-risk",
            "sign-in-required"
        ]
    );
    for d in &found {
        for field in ["code", "severity", "message", "remedy"] {
            assert!(
                d[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field} missing in {d}"
            );
        }
    }
    assert_eq!(found[0]["severity"], "error");
}

#[test]
fn the_compiled_component_is_cached_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    assert!(mfp(dir.path(), &["settings", "show"]).status.success());
    let cached: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].file_name().to_string_lossy().ends_with(".cwasm"));
    // The second start loads it and still answers.
    assert!(mfp(dir.path(), &["settings", "show"]).status.success());
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_a_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    let out = mfp(
        &dir.path().join("state"),
        &["--component", bogus.to_str().unwrap(), "settings", "show"],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.starts_with("error[component-invalid]") && err.contains("remedy: "),
        "{err}"
    );
}

#[test]
fn inspect_lists_only_granted_imports() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(dir.path(), &["inspect", "--json"]);
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let imports: Vec<&str> = info["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(imports.contains(&"mfp:smtp-oauth/store@0.1.0"));
    assert!(imports.iter().all(|i| !i.starts_with("wasi:filesystem")
        && !i.starts_with("wasi:sockets")
        && !i.starts_with("wasi:http")));
}

/// Runs `mfp-host` without a state dir (help and usage need none).
fn mfp_bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .args(args)
        .output()
        .expect("mfp-host runs")
}

/// The subcommands a help text lists under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path (`[]`, `["settings"]`, `["settings", "set"]`, …) and its help.
fn every_help() -> Vec<(Vec<String>, String)> {
    let mut found = Vec::new();
    let mut pending = vec![Vec::<String>::new()];
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = mfp_bare(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let help = stdout(&out);
        for sub in subcommands(&help) {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
        found.push((path, help));
    }
    found
}

#[test]
fn each_help_shows_its_own_options_first_and_the_global_ones_once_under_their_heading() {
    let helps = every_help();
    assert!(
        helps.len() >= 15,
        "{:?}",
        helps.iter().map(|h| &h.0).collect::<Vec<_>>()
    );
    for (path, help) in &helps {
        // No internal rule numbers (S4–S6, rule S8) in any help.
        let rule = regex_free_rule_number(help);
        assert!(rule.is_none(), "{path:?} names rule {rule:?}:\n{help}");
        // The global flags once, under their own heading, after the command's own.
        assert_eq!(help.matches("--state-dir").count(), 1, "{path:?}:\n{help}");
        let global = help
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{path:?}:\n{help}"));
        assert!(
            help.find("--state-dir").unwrap() > global,
            "{path:?}:\n{help}"
        );
        if let Some(own) = help.find("\nOptions:\n") {
            assert!(own < global, "{path:?}:\n{help}");
        }
        // --json is described wherever it exists.
        if let Some(line) = help.lines().find(|l| l.trim_start().starts_with("--json")) {
            let described = line.contains("JSON")
                || help[help.find(line).unwrap() + line.len()..]
                    .lines()
                    .nth(1)
                    .is_some_and(|next| next.contains("JSON"));
            assert!(described, "{path:?}: --json undescribed:\n{help}");
        }
    }
    let send = &helps.iter().find(|(p, _)| p == &["send"]).unwrap().1;
    let own = &send[..send.find("Global options:").unwrap()];
    for flag in [
        "--to",
        "--from",
        "--attach",
        "--json",
        "--user",
        "--ldap-search",
    ] {
        assert!(
            own.contains(flag),
            "{flag} not among send's own options:\n{send}"
        );
    }
}

/// The first `S<digit>` word in `text` (an internal rule number), if any.
fn regex_free_rule_number(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() >= 2 && w.starts_with('S') && w[1..].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[test]
fn settings_set_help_lists_every_key_and_the_values_of_the_enumerated_ones() {
    let out = mfp_bare(&["settings", "set", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    let dir = tempfile::tempdir().unwrap();
    for key in settings_json(dir.path()).as_object().unwrap().keys() {
        assert!(help.contains(key.as_str()), "{key} missing:\n{help}");
    }
    for value in [
        "exchange-online",
        "not-selected",
        "remotely-authenticated-user",
        "1-65535",
    ] {
        assert!(help.contains(value), "{value} missing:\n{help}");
    }
}

/// Asserts stdout holds exactly one JSON value, an object whose `code` is the one of the
/// `error[CODE]` line on stderr, and returns it.
fn one_json_diagnosis(out: &Output, code: &str) -> serde_json::Value {
    let values: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)));
    assert_eq!(values.len(), 1, "stdout: {}", stdout(out));
    let value = values.into_iter().next().unwrap();
    assert_eq!(value["code"], code, "{value}");
    assert_eq!(value["severity"], "error", "{value}");
    for field in ["message", "remedy"] {
        assert!(
            value[field].as_str().is_some_and(|s| !s.is_empty()),
            "{value}"
        );
    }
    assert!(
        stderr(out).starts_with(&format!("error[{code}]: ")),
        "{}",
        stderr(out)
    );
    value
}

#[test]
fn send_json_prints_exactly_one_json_object_whatever_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A state dir the host creates (0700): the temporary dir itself may be open to others,
    // which the host would close with a warning on stderr.
    let state = dir.path().join("state");
    let missing = dir.path().join("no-such-scan.pdf");
    let missing = missing.to_str().unwrap();
    let send = ["send", "--json", "--to", "alice@contoso.com"];
    fn plus<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [base, extra].concat()
    }
    let with = |extra: &[&'static str]| plus(&send, extra);

    // Malformed input, before the device is opened.
    let out = mfp(&state, &plus(&send, &["--attach", missing]));
    assert_eq!(out.status.code(), Some(2));
    let value = one_json_diagnosis(&out, "attachment-unreadable");
    assert_eq!(value["field"], "attach");
    let out = mfp(
        &state,
        &with(&["--user", "guest", "--ldap-search", "failed"]),
    );
    assert_eq!(out.status.code(), Some(2));
    one_json_diagnosis(&out, "usage");
    let out = mfp(&state, &with(&["--resolve", "no-port=1.2.3.4"]));
    assert_eq!(out.status.code(), Some(2));
    one_json_diagnosis(&out, "network-config-invalid");

    // The component's refusal before any connection.
    let out = mfp(&state, &send);
    assert_eq!(out.status.code(), Some(1));
    let value = one_json_diagnosis(&out, "provider-not-exchange-online");
    assert!(value.get("server-reply").is_some(), "{value}");

    // Without --json, stdout stays empty on failure.
    let out = mfp(&state, &["send", "--to", "alice@contoso.com"]);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
}

#[test]
fn an_unreadable_attachment_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-scan.pdf");
    let out = mfp(
        dir.path(),
        &[
            "send",
            "--to",
            "alice@contoso.com",
            "--attach",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error[attachment-unreadable]: "), "{err}");
    let first = err.lines().next().unwrap();
    assert!(first.contains(missing.to_str().unwrap()), "{err}");
    // A folder is not a file either, and is named too.
    let out = mfp(
        dir.path(),
        &[
            "send",
            "--to",
            "alice@contoso.com",
            "--attach",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.lines()
            .next()
            .unwrap()
            .contains(dir.path().to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn a_send_before_any_sign_in_says_to_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(
        dir.path(),
        &["settings", "set", "service-provider", "exchange-online"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // No Device Email Address yet either: the sign-in is what is missing (it fills the
    // address), and no connection is tried (none is reachable from this test).
    let out = mfp(dir.path(), &["send", "--json", "--to", "alice@contoso.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let value = one_json_diagnosis(&out, "sign-in-required");
    assert_eq!(value["server-reply"], serde_json::Value::Null);
}

#[test]
fn the_hosts_own_messages_start_with_a_capital_letter() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-scan.pdf");
    for args in [
        &["settings", "set", "--json", "[1]"][..],
        &["settings", "set", "--json", "{"][..],
        &["settings", "set", "receive-port"][..],
        &["settings", "set", "--json", "{}", "receive-port", "1"][..],
        &[
            "send",
            "--to",
            "a@contoso.com",
            "--attach",
            missing.to_str().unwrap(),
        ][..],
        &[
            "send",
            "--to",
            "a@contoso.com",
            "--user",
            "guest",
            "--ldap-search",
            "failed",
        ][..],
        &["--resolve", "no-port", "settings", "show"][..],
        &["--ca-file", missing.to_str().unwrap(), "settings", "show"][..],
    ] {
        let out = mfp(dir.path(), args);
        let err = stderr(&out);
        let message = err
            .lines()
            .next()
            .and_then(|l| l.split_once("]: "))
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("{args:?}: {err}"));
        assert!(
            message.starts_with(|c: char| c.is_uppercase()),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn every_invalid_field_of_one_apply_is_reported_with_its_remedy_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let before = settings_json(dir.path());
    let out = mfp(
        dir.path(),
        &["settings", "set", "receive-port", "abc", "send-port", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("error[").count(), 2, "{err}");
    assert_eq!(err.matches("remedy:").count(), 2, "{err}");
    assert!(err.contains("[Port Number for receiving Email]"), "{err}");
    assert!(err.contains("[Port Number for sending Email]"), "{err}");
    assert_eq!(settings_json(dir.path()), before, "nothing changed");
}

/// The command line's remedies name commands, setting keys and flags, never the web
/// panel's buttons, labels or pages: the component words each remedy for both.
#[test]
fn remedies_at_the_terminal_name_commands_not_buttons() {
    let dir = tempfile::tempdir().unwrap();
    let out = mfp(
        dir.path(),
        &["settings", "set", "service-provider", "exchange-online"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Not signed in yet: sign in with `auth login`.
    let out = mfp(dir.path(), &["diagnose"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("sign-in-required"), "{shown}");
    assert!(
        shown.contains("remedy: Run `mfp-host auth login`"),
        "{shown}"
    );
    // Under Exchange Online Login Credentials must stay System: `settings set … system`.
    let out = mfp(
        dir.path(),
        &[
            "settings",
            "set",
            "login-credentials",
            "remotely-authenticated-user",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("remedy: Run `mfp-host settings set login-credentials system`"),
        "{err}"
    );
    // A web-only field from the control panel: change it with `settings set`.
    let out = mfp(dir.path(), &["panel", "set", "tenant", "contoso.com"]);
    let err = stderr(&out);
    assert!(err.contains("`mfp-host settings set`"), "{err}");
    for text in [shown.as_ref(), err.as_str()] {
        for panel_word in [
            "[Open Authentication Page]",
            "[Apply]",
            "Properties >",
            "CentreWare",
        ] {
            assert!(!text.contains(panel_word), "{panel_word}: {text}");
        }
    }
}
