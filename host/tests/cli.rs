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
    for (args, code) in [
        (
            &["settings", "set", "send-port", "0"][..],
            "error[port-out-of-range]",
        ),
        (
            &["settings", "set", "smtp-servr", "x"][..],
            "error[unknown-key]",
        ),
    ] {
        let out = mfp(dir.path(), args);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).starts_with(code), "{}", stderr(&out));
    }
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
