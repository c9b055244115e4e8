//! The whole flow through the real `mfp-host` binary, as an administrator runs it: the
//! fake Microsoft identity platform and Exchange Online on loopback (real TLS, a test CA
//! passed with `--ca-file`, Microsoft's names mapped with `--resolve`), the system clock,
//! `auth login` waiting for real. Exit statuses and the `error[CODE]` / `remedy:` lines
//! are what scripts rely on.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Approval, Scenario, SmtpCase, World};

/// Both fakes on 127.0.0.1 with the system clock, and the flags that reach them.
struct Fakes {
    world: World,
    flags: Vec<String>,
    _fakes: LoopbackMicrosoft,
    _dir: tempfile::TempDir,
}

impl Fakes {
    fn start(scenario: Scenario) -> Self {
        let world = World::new(scenario);
        let fakes = LoopbackMicrosoft::start(world.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = fakes.host_flags(&dir.path().join("test-ca.pem")).unwrap();
        Self {
            world,
            flags,
            _fakes: fakes,
            _dir: dir,
        }
    }

    fn command(&self, state: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        command
            .arg("--state-dir")
            .arg(state)
            .args(&self.flags)
            .args(args);
        command
    }

    fn run(&self, state: &Path, args: &[&str]) -> Output {
        self.command(state, args).output().expect("mfp-host runs")
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(out: &Output) -> bool {
    out.status.code() == Some(0)
}

/// Asserts a failure printed as `error[code]: …` then `remedy: …`, with exit status `exit`.
fn assert_error(out: &Output, code: &str, exit: i32) {
    let err = stderr(out);
    assert!(
        err.starts_with(&format!("error[{code}]: ")),
        "stderr: {err}\nstdout: {}",
        stdout(out)
    );
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("remedy: ")),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(exit), "{err}");
}

fn select_exchange_online(fakes: &Fakes, state: &Path) {
    let out = fakes.run(
        state,
        &["settings", "set", "service-provider", "exchange-online"],
    );
    assert!(succeeded(&out), "{}", stderr(&out));
}

#[test]
fn login_status_send_logout_through_the_real_binary() {
    let fakes = Fakes::start(Scenario {
        approval: Approval::AfterPolls(1),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    select_exchange_online(&fakes, &state);

    // auth login: the first line shows the page and the code while the fake still waits
    // for that very code; then the CLI polls for real (5 s, then 5 s more).
    let mut child = fakes
        .command(&state, &["auth", "login"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mfp-host runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let uri = fakes.world.settings().verification_uri;
    assert!(
        first.starts_with(&format!("To sign in, open {uri} and enter the code ")),
        "{first}"
    );
    let user_code = first.trim_end().rsplit(' ').next().unwrap().to_owned();
    let pending = fakes.world.pending_codes(system_now());
    assert!(
        pending.iter().any(|c| c.user_code == user_code),
        "the code shown is the one the identity platform issued: {user_code} vs {pending:?}"
    );
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "stdout: {first}{rest}\nstderr: {err}"
    );
    assert!(
        rest.contains("Signed in as mfp@contoso.com")
            && rest.contains("The Device Email Address is now mfp@contoso.com"),
        "{rest}"
    );

    // auth status --json
    let out = fakes.run(&state, &["auth", "status", "--json"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["code"], "signed-in", "{status}");
    assert_eq!(status["account"]["upn"], "mfp@contoso.com", "{status}");
    assert_eq!(status["warnings"], serde_json::json!([]), "{status}");

    // send a scan
    let scan = dir.path().join("scan.pdf");
    let pdf: Vec<u8> = b"%PDF-1.7\n"
        .iter()
        .copied()
        .chain((0..50_000u32).map(|i| (i * 13 % 251) as u8))
        .collect();
    std::fs::write(&scan, &pdf).unwrap();
    let scan_arg = scan.to_str().unwrap();
    let send = [
        "send",
        "--to",
        "alice@contoso.com",
        "--attach",
        scan_arg,
        "--json",
    ];
    let out = fakes.run(&state, &send);
    assert!(
        succeeded(&out),
        "stderr: {}\nstdout: {}",
        stderr(&out),
        stdout(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["code"], "sent", "{report}");
    assert_eq!(
        report["accepted"],
        serde_json::json!(["alice@contoso.com"]),
        "{report}"
    );
    assert_eq!(report["attempts"], 1, "{report}");
    let received = fakes.world.messages();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(
        m.account, "mfp@contoso.com",
        "authenticated with XOAUTH2 as the UPN, checked by the server"
    );
    assert_eq!(m.mail_from, "mfp@contoso.com");
    assert_eq!(m.rcpt_to, ["alice@contoso.com"]);
    assert_eq!(
        report["message-id"].as_str(),
        Some(m.message_id.as_str()),
        "{report}"
    );
    let attachments = m.decoded().attachments;
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0].name, "scan.pdf", "the attachment is named");
    assert_eq!(attachments[0].size, pdf.len() as u64, "and arrived whole");

    // A refused walk-up edit of From: exit 1 before any connection.
    let out = fakes.run(
        &state,
        &[
            "send",
            "--to",
            "alice@contoso.com",
            "--from",
            "ceo@contoso.com",
        ],
    );
    assert_error(&out, "from-edit-not-allowed", 1);
    assert_eq!(fakes.world.messages().len(), 1);

    // auth logout, then send again: refused, nothing sent.
    let out = fakes.run(&state, &["auth", "logout"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    let out = fakes.run(&state, &["auth", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["code"], "signed-out", "{status}");
    let out = fakes.run(&state, &send);
    assert_ne!(out.status.code(), Some(0));
    assert_error(&out, "sign-in-required", 1);
    assert_eq!(fakes.world.messages().len(), 1);
}

fn system_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

#[test]
fn refused_preconditions_exit_1_with_code_and_remedy_before_connecting() {
    let fakes = Fakes::start(Scenario::default());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let send = ["send", "--to", "alice@contoso.com"];

    // Service provider not selected.
    let out = fakes.run(&state, &send);
    assert_error(&out, "provider-not-exchange-online", 1);

    // S6: Remotely Authenticated User cannot authenticate to Exchange Online.
    let out = fakes.run(
        &state,
        &[
            "settings",
            "set",
            "service-provider",
            "exchange-online",
            "device-email",
            "mfp@contoso.com",
        ],
    );
    assert!(succeeded(&out), "{}", stderr(&out));
    let out = fakes.run(
        &state,
        &[
            "panel",
            "set",
            "login-credentials",
            "remotely-authenticated-user",
        ],
    );
    assert!(succeeded(&out), "{}", stderr(&out));
    let out = fakes.run(&state, &send);
    assert_error(&out, "login-credentials-not-system", 1);

    // Not signed in.
    let out = fakes.run(&state, &["settings", "set", "login-credentials", "system"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    let out = fakes.run(&state, &send);
    assert_error(&out, "sign-in-required", 1);

    assert!(fakes.world.messages().is_empty());
    assert_eq!(fakes.world.open_sessions("mfp@contoso.com"), 0);
}

/// `auth login` against fakes that approve at the first poll (about one interval, 5 s).
fn sign_in(fakes: &Fakes, state: &Path) {
    select_exchange_online(fakes, state);
    let out = fakes.run(state, &["auth", "login"]);
    assert!(succeeded(&out), "{}\n{}", stdout(&out), stderr(&out));
}

#[test]
fn send_user_and_ldap_search_decide_the_from_policy_through_the_real_binary() {
    let fakes = Fakes::start(Scenario {
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    sign_in(&fakes, &state);
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--to", "alice@contoso.com"];
        args.extend_from_slice(extra);
        fakes.run(&state, &args)
    };
    let set = |key: &str, value: &str| {
        let out = fakes.run(&state, &["settings", "set", key, value]);
        assert!(succeeded(&out), "{}", stderr(&out));
    };
    let alias = ["--from", "scans@contoso.com"];

    // An LDAP outcome without an authenticated user is bad usage, and a bad name too.
    let out = send(&["--user", "guest", "--ldap-search", "failed"]);
    assert_error(&out, "usage", 2);
    assert!(
        stderr(&out).contains("--user authenticated"),
        "{}",
        stderr(&out)
    );
    assert_eq!(send(&["--user", "admin"]).status.code(), Some(2));

    // The default stays "authorization not required": its own field decides the edit.
    let out = send(&alias);
    assert_error(&out, "from-edit-not-allowed", 1);
    assert!(
        stderr(&out).contains("from.edit-without-auth"),
        "{}",
        stderr(&out)
    );

    // A guest: "guests may edit" decides, not "edit when not required".
    set("from.edit-without-auth", "yes");
    let guest = [&["--user", "guest"][..], &alias[..]].concat();
    let out = send(&guest);
    assert_error(&out, "from-edit-not-allowed", 1);
    assert!(stderr(&out).contains("from.guest-edit"), "{}", stderr(&out));
    set("from.guest-edit", "yes");
    let out = send(&guest);
    assert!(succeeded(&out), "{}", stderr(&out));
    assert_eq!(
        fakes.world.messages()[0].header("From").as_deref(),
        Some("scans@contoso.com")
    );

    // An authenticated user after a successful search (the default outcome): the first
    // checkbox, unticked by default.
    let out = send(&[&["--user", "authenticated"][..], &alias[..]].concat());
    assert_error(&out, "from-edit-not-allowed", 1);
    assert!(
        stderr(&out).contains("from.auth-edit-on-ldap-success"),
        "{}",
        stderr(&out)
    );

    // After a failed search, "send despite LDAP failure" = No refuses the send itself,
    // before any connection.
    set("from.auth-send-despite-ldap-failure", "no");
    let connections = fakes.world.requests("smtp");
    let out = send(&["--user", "authenticated", "--ldap-search", "failed"]);
    assert_error(&out, "send-refused-ldap-search-failed", 1);
    assert!(
        stderr(&out).contains("from.auth-send-despite-ldap-failure"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fakes.world.requests("smtp"), connections, "no connection");
    // The same user after a successful search sends.
    let out = send(&["--user", "authenticated", "--ldap-search", "succeeded"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    assert_eq!(fakes.world.messages().len(), 2);
}

#[test]
fn history_lists_the_sign_in_the_sends_and_the_reset_newest_first() {
    let fakes = Fakes::start(Scenario {
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = fakes.run(&state, &["history", "--json"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "[]");

    sign_in(&fakes, &state);
    let out = fakes.run(&state, &["send", "--to", "alice@contoso.com"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    fakes.world.set_scenario(Scenario {
        smtp: SmtpCase::AuthDisabledForTenant,
        ..fakes.world.scenario()
    });
    let out = fakes.run(&state, &["send", "--to", "alice@contoso.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = fakes.run(&state, &["panel", "set-server", "mail.example.com"]);
    assert!(succeeded(&out), "{}", stderr(&out));

    let out = fakes.run(&state, &["history", "--json"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["provider-reset", "send", "send", "sign-in"],
        "{history:#}"
    );
    let reset = &history[0];
    assert_eq!(reset["origin"], "control-panel", "{reset}");
    assert_eq!(reset["succeeded"], true);
    assert_eq!(
        reset["diagnosis"]["code"], "provider-reset-by-control-panel",
        "{reset}"
    );
    let refused = &history[1];
    assert_eq!(refused["succeeded"], false, "{refused}");
    assert!(
        refused["server-reply"].as_str().unwrap().starts_with("535"),
        "{refused}"
    );
    assert!(refused["diagnosis"]["remedy"].is_string(), "{refused}");
    let send = &history[2];
    assert_eq!(send["succeeded"], true, "{send}");
    assert!(
        send["server-reply"].as_str().unwrap().starts_with("250"),
        "{send}"
    );
    assert_eq!(send["diagnosis"], serde_json::Value::Null);
    assert_eq!(send["origin"], serde_json::Value::Null);
    assert!(
        history[3]["summary"] == "Signed in as mfp@contoso.com.",
        "{history:#}"
    );
    let at = |i: usize| history[i]["at"].as_u64().unwrap();
    assert!((0..3).all(|i| at(i) >= at(i + 1)) && at(3) > 1_700_000_000);
    assert!(!stdout(&out).contains("alice@contoso.com"), "no recipient");

    // The same, for a person: one line per entry, newest first, the diagnosis under it.
    let out = fakes.run(&state, &["history"]);
    assert!(succeeded(&out), "{}", stderr(&out));
    let text = stdout(&out);
    let heads: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads.len(), 4, "{text}");
    assert!(heads[0].contains(" GMT  provider-reset"), "{text}");
    assert!(
        heads[3].ends_with("Signed in as mfp@contoso.com."),
        "{text}"
    );
    assert!(
        text.contains("    warning[provider-reset-by-control-panel]: "),
        "{text}"
    );
    assert!(text.contains("\n    server: 535 "), "{text}");
}
