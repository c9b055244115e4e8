//! Trust in the state dir (issue #12): the host keeps its sealing key, its database and
//! compiled code there, so it accepts only a dir of its own user that nobody else may
//! read or write, refuses a key others could know, and never loads compiled code it did
//! not write itself. Through the library (`Device::open`, typed errors) and, for what an
//! administrator sees, through the real binary (exit 3, `error[CODE]`, `remedy:`).

#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mfp_host::runtime::compile_cache::CacheOutcome;
use mfp_host::state_dir::StateDirProblem;
use mfp_host::{Device, DeviceError, DeviceOptions};

/// A uid no test runner uses, for files "of another user" (needs root to chown).
const OTHER_UID: u32 = 4242;

fn mfp(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env_remove("MFP_LOG")
        .output()
        .expect("mfp-host runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process may give files away (root): the "another user" cases need it.
fn can_chown() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
}

fn open(state: &Path) -> Result<Device, DeviceError> {
    Device::open(DeviceOptions::new(state))
}

fn problem(result: Result<Device, DeviceError>) -> StateDirProblem {
    match result {
        Err(DeviceError::StateDir { problem, .. }) => problem,
        Err(other) => panic!("not a state dir error: {other}"),
        Ok(_) => panic!("the state dir was accepted"),
    }
}

/// Every entry of `dir` (recursively) with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push((path.clone(), mode(&path)));
        if path.is_dir() {
            out.extend(modes(&path));
        }
    }
    out
}

/// Asserts `out` failed as a device fault: exit 3, `error[code]: …`, then `remedy: …`.
fn assert_refused(out: &Output, code: &str, remedy_says: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.starts_with(&format!("error[{code}]: ")), "{err}");
    let remedy = err
        .lines()
        .find_map(|l| l.strip_prefix("remedy: "))
        .unwrap_or_else(|| panic!("no remedy: {err}"));
    assert!(remedy.contains(remedy_says), "{err}");
}

#[test]
fn a_new_state_dir_and_everything_in_it_is_private_to_this_user() {
    let root = tempfile::tempdir().unwrap();
    chmod(root.path(), 0o755);
    let state = root.path().join("a/state");
    let out = mfp(&state, &["settings", "set", "receive-port", "2525"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&state), 0o700);
    let entries = modes(&state);
    let names: Vec<String> = entries
        .iter()
        .map(|(p, _)| p.strip_prefix(&state).unwrap().display().to_string())
        .collect();
    for expected in ["secret.key", "state.sqlite3", "cache"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".cwasm")), "{names:?}");
    for (path, mode) in &entries {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{}", path.display());
    }
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "no temporary file is left: {names:?}"
    );
}

#[test]
fn a_state_dir_open_to_others_is_closed_with_a_warning_and_still_works() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(mfp(&state, &["settings", "show"]).status.success());
    chmod(&state, 0o777);
    chmod(&state.join("state.sqlite3"), 0o644);
    let out = mfp(&state, &["settings", "show", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("state.sqlite3")), 0o600);
    let err = stderr(&out);
    assert!(
        err.contains("was open to other users (mode 0777)")
            && err.contains("was open to other users (mode 0644)"),
        "{err}"
    );
}

#[test]
fn a_shared_sticky_dir_is_refused_and_left_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    assert!(matches!(
        problem(open(&shared)),
        StateDirProblem::Shared { .. }
    ));
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        0,
        "nothing written"
    );
    assert_refused(
        &mfp(&shared, &["settings", "show"]),
        "state-dir-not-private",
        "--state-dir",
    );
}

#[test]
fn a_state_dir_of_another_user_is_refused_and_nothing_is_written_in_it() {
    if !can_chown() {
        eprintln!("skipped: needs root to give a dir to another user");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o700);
    chown(&state, OTHER_UID);
    match problem(open(&state)) {
        StateDirProblem::OwnedByOther { owner, .. } => assert_eq!(owner, OTHER_UID),
        other => panic!("{other}"),
    }
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        0,
        "nothing written"
    );
    assert_refused(
        &mfp(&state, &["settings", "show"]),
        "state-dir-not-private",
        "uid 4242",
    );
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
}

#[test]
fn a_key_others_may_read_is_refused_never_used_nor_replaced() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(mfp(&state, &["settings", "show"]).status.success());
    let key = state.join("secret.key");
    // A key someone else could have read (or written: its contents are known).
    std::fs::write(&key, [0x41; 32]).unwrap();
    for exposed in [0o644, 0o640, 0o604, 0o622] {
        chmod(&key, exposed);
        assert!(
            matches!(
                problem(open(&state)),
                StateDirProblem::KeyExposed { mode, .. } if mode == exposed
            ),
            "{exposed:o}"
        );
    }
    let out = mfp(&state, &["settings", "show"]);
    assert_refused(&out, "secret-key-untrusted", "sign in again");
    assert!(stderr(&out).contains("rm "), "{}", stderr(&out));
    assert_eq!(std::fs::read(&key).unwrap(), [0x41; 32], "left as it was");
    assert_eq!(mode(&key), 0o622);
    // Following the remedy: a new key, and the device works again.
    std::fs::remove_file(&key).unwrap();
    assert!(mfp(&state, &["settings", "show"]).status.success());
    assert_ne!(std::fs::read(&key).unwrap(), [0x41; 32]);
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn a_key_of_another_user_a_linked_key_or_a_cut_short_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(mfp(&state, &["settings", "show"]).status.success());
    let key = state.join("secret.key");

    std::fs::write(&key, b"").unwrap();
    assert!(matches!(
        problem(open(&state)),
        StateDirProblem::KeyDamaged { len: 0, .. }
    ));

    std::fs::remove_file(&key).unwrap();
    let elsewhere = root.path().join("elsewhere.key");
    std::fs::write(&elsewhere, [7; 32]).unwrap();
    chmod(&elsewhere, 0o600);
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    assert!(matches!(
        problem(open(&state)),
        StateDirProblem::NotAFile { .. }
    ));
    std::fs::remove_file(&key).unwrap();

    if can_chown() {
        std::fs::write(&key, [7; 32]).unwrap();
        chmod(&key, 0o600);
        chown(&key, OTHER_UID);
        assert!(matches!(
            problem(open(&state)),
            StateDirProblem::OwnedByOther {
                owner: OTHER_UID,
                ..
            }
        ));
        let out = mfp(&state, &["settings", "show"]);
        assert_refused(&out, "state-dir-not-private", "uid 4242");
    }
}

#[test]
fn a_database_file_of_another_user_is_refused() {
    if !can_chown() {
        eprintln!("skipped: needs root to give a file to another user");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(mfp(&state, &["settings", "show"]).status.success());
    chown(&state.join("state.sqlite3"), OTHER_UID);
    assert!(matches!(
        problem(open(&state)),
        StateDirProblem::OwnedByOther {
            owner: OTHER_UID,
            ..
        }
    ));
}

/// The one compiled entry in the state dir's cache.
fn cache_entry(state: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(state.join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[test]
fn compiled_code_is_loaded_only_when_this_device_wrote_it_for_this_entry() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert_eq!(open(&state).unwrap().cache_outcome(), CacheOutcome::Stored);
    assert_eq!(open(&state).unwrap().cache_outcome(), CacheOutcome::Hit);
    let entry = cache_entry(&state);
    let genuine = std::fs::read(&entry).unwrap();
    assert_eq!(mode(&entry), 0o600);
    assert_eq!(mode(&state.join("cache")), 0o700);

    // Another device's genuine entry for the very same component and engine: a valid
    // artifact, but not authenticated by this device's key.
    let other = root.path().join("other");
    drop(open(&other).unwrap());
    let foreign = std::fs::read(cache_entry(&other)).unwrap();
    assert_ne!(foreign, genuine);

    let mut flipped = genuine.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let mut bad_tag = genuine.clone();
    bad_tag[8] ^= 0x80;
    let plants: [(&str, Vec<u8>); 6] = [
        ("another device's entry", foreign),
        ("one bit changed in the code", flipped),
        ("one bit changed in the tag", bad_tag),
        ("cut short", genuine[..genuine.len() / 3].to_vec()),
        ("empty", Vec::new()),
        ("not a cache file", b"\x7fELF planted".to_vec()),
    ];
    for (what, bytes) in plants {
        std::fs::write(&entry, &bytes).unwrap();
        chmod(&entry, 0o600);
        let device = open(&state).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            device.cache_outcome(),
            CacheOutcome::Stored,
            "{what}: discarded and compiled again, never loaded"
        );
        assert!(device.settings().is_ok(), "{what}");
        drop(device);
        let rewritten = std::fs::read(&entry).unwrap();
        assert_ne!(rewritten, bytes, "{what}: replaced");
        assert_eq!(
            open(&state).unwrap().cache_outcome(),
            CacheOutcome::Hit,
            "{what}"
        );
    }
}

#[test]
fn a_genuine_entry_put_under_another_entrys_name_is_not_loaded() {
    use mfp_host::runtime::Runtime;
    use mfp_host::runtime::compile_cache::{entry_path, load_or_compile};
    use mfp_host::runtime::component::ComponentSource;

    let dir = tempfile::tempdir().unwrap();
    let key = [0x5a; 32];
    let engine = Runtime::engine().unwrap();
    let a = ComponentSource::Embedded.bytes().unwrap().into_owned();
    // The same component with a custom section appended: other bytes, another entry.
    let mut b = a.clone();
    b.extend_from_slice(&[0x00, 0x06, 0x05, b'e', b'x', b't', b'r', b'a']);
    let (_, outcome) = load_or_compile(&engine, &b, Some(dir.path()), &key).unwrap();
    assert_eq!(outcome, CacheOutcome::Stored);
    let (entry_a, entry_b) = (
        entry_path(dir.path(), &engine, &a),
        entry_path(dir.path(), &engine, &b),
    );
    assert_ne!(entry_a, entry_b);
    // B's genuine file, tag and all, where A's entry belongs.
    std::fs::copy(&entry_b, &entry_a).unwrap();
    let (_, outcome) = load_or_compile(&engine, &a, Some(dir.path()), &key).unwrap();
    assert_eq!(outcome, CacheOutcome::Stored, "B's code is not loaded as A");
    let (_, outcome) = load_or_compile(&engine, &a, Some(dir.path()), &key).unwrap();
    assert_eq!(outcome, CacheOutcome::Hit);
    // And another key (another device) does not accept this device's entries.
    let (_, outcome) = load_or_compile(&engine, &a, Some(dir.path()), &[0x5b; 32]).unwrap();
    assert_eq!(outcome, CacheOutcome::Stored);
}

#[test]
fn a_planted_cache_entry_is_reported_on_stderr_and_replaced() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("state");
    assert!(mfp(&state, &["settings", "show"]).status.success());
    let entry = cache_entry(&state);
    std::fs::write(&entry, b"MFPCWAS1 planted by someone else").unwrap();
    let out = mfp(&state, &["settings", "show"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("discarding the compiled component cache entry"),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        b"MFPCWAS1 planted by someone else"
    );
    let out = mfp(&state, &["settings", "show"]);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
