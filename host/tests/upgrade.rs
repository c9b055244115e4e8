//! State that survives upgrades: the current `mfp-host` runs on a state folder written by
//! the first release layout (`tests/fixtures/state-v1`, see its README) and must find the
//! settings, the sealed sign-in and the consent record as that build left them. A record
//! the current build can no longer read would show here as a signed-out device, factory
//! settings or a `storage-*` diagnosis.
//!
//! The tests run on a copy: the fixture is evidence of what an old build wrote, and must
//! never be rewritten by a newer one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The account the fixture is signed in as (the stand-ins' work account).
const USERNAME: &str = "mfp@contoso.com";
const TENANT_ID: &str = "3c7b4f2e-91d5-4a8c-b6e0-7f2d1a9c5e48";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/state-v1")
}

/// Every file of the fixture folder and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert!(entry.file_type().unwrap().is_file(), "{name} is not a file");
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// A copy of the fixture's state files in a fresh temporary folder, with the key file's
/// mode as a device has it (a git checkout keeps only the executable bit).
fn copy_of_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in snapshot(&fixture_dir()) {
        if name != "README.md" {
            std::fs::write(dir.path().join(&name), bytes).unwrap();
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.path().join("secret.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    dir
}

fn mfp(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("mfp-host runs")
}

/// The JSON a command printed; `exits` lists the exit statuses it may end with.
fn json_of(state: &Path, args: &[&str], exits: &[i32]) -> serde_json::Value {
    let out = mfp(state, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code().is_some_and(|c| exits.contains(&c)),
        "{args:?} exited with {:?}\nstderr: {stderr}\nstdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !stderr.contains("error["),
        "{args:?} reported an error: {stderr}"
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stderr}"))
}

/// Diagnosis codes that mean a stored record could not be used.
fn is_storage_code(code: &str) -> bool {
    code.starts_with("storage-")
}

/// Every `code` field anywhere in `value`.
fn codes(value: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(code)) = map.get("code") {
                    found.push(code.clone());
                }
                stack.extend(map.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

#[test]
fn the_current_binary_reads_the_settings_and_sign_in_of_the_first_layout() {
    let copy = copy_of_fixture();
    let state = copy.path();

    let settings = json_of(state, &["settings", "show", "--json"], &[0]);
    for (key, value) in [
        ("service-provider", "exchange-online"),
        ("smtp-server", "smtp.office365.com"),
        ("send-port", "587"),
        ("receive-port", "2525"),
        ("login-credentials", "system"),
        ("device-email", USERNAME),
        ("from.auth-edit-on-ldap-success", "yes"),
        ("from.auth-edit-on-ldap-failure", "yes"),
        ("from.guest-edit", "yes"),
        ("from.auth-send-despite-ldap-failure", "yes"),
        ("from.edit-without-auth", "yes"),
        ("from.alias-sender", "no"),
        ("tenant", "common"),
    ] {
        assert_eq!(settings[key], value, "{key} in {settings}");
    }

    let status = json_of(state, &["auth", "status", "--json"], &[0]);
    assert_eq!(status["code"], "signed-in", "{status}");
    assert_eq!(status["account"]["username"], USERNAME, "{status}");
    assert_eq!(status["account"]["tenant-id"], TENANT_ID, "{status}");
    // consent/v1: the tenant the fixture signed in to needs no consent again (S10).
    assert_eq!(status["admin-consent"]["needed"], false, "{status}");
    let status_codes = codes(&status);
    assert!(
        !status_codes.iter().any(|c| is_storage_code(c)),
        "a stored record was unreadable: {status}"
    );

    // Exit 1 would mean an error-level finding; the fixture's From policy gives a warning.
    let diagnose = json_of(state, &["diagnose", "--json"], &[0, 1]);
    let diagnose_codes = codes(&diagnose);
    assert!(
        !diagnose_codes
            .iter()
            .any(|c| is_storage_code(c) || c == "sign-in-required"),
        "{diagnose}"
    );
    // The fixture's From policy (guest and unauthenticated edits of From) was read.
    assert!(
        diagnose_codes.iter().any(|c| c == "send-as-denied-risk"),
        "{diagnose}"
    );

    // Read again after the current build had the state: nothing was lost on the way.
    let again = json_of(state, &["auth", "status", "--json"], &[0]);
    assert_eq!(again["code"], "signed-in", "{again}");
    assert_eq!(
        json_of(state, &["settings", "show", "--json"], &[0]),
        settings
    );
}

#[test]
fn the_fixture_itself_is_never_written() {
    let fixture = fixture_dir();
    let before = snapshot(&fixture);
    assert!(
        ["README.md", "secret.key", "state.sqlite3"]
            .iter()
            .all(|name| before.contains_key(*name)),
        "fixture files: {:?}",
        before.keys().collect::<Vec<_>>()
    );

    let copy = copy_of_fixture();
    // A change on the copy: the Apply must land there, and only there.
    let out = mfp(copy.path(), &["settings", "set", "receive-port", "2526"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json_of(copy.path(), &["auth", "status", "--json"], &[0]);
    assert_eq!(status["code"], "signed-in", "{status}");
    let settings = json_of(copy.path(), &["settings", "show", "--json"], &[0]);
    assert_eq!(settings["receive-port"], "2526");

    // Byte for byte as before, and no WAL, SHM or cache appeared next to it.
    let after = snapshot(&fixture);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &before {
        assert!(after[name] == *bytes, "{name} was changed");
    }
}
