//! No secret leaves the device (issue #12): one end-to-end run with distinctive values —
//! the tokens and device codes the stand-in identity platform issues (random, thousands
//! of characters), the administrator's password and a wrong one typed at the login — then
//! every place they could leak is searched: each CLI command's stdout and stderr, the
//! server's stdout and its whole trace log, every API response (status line, headers and
//! body), and every file of the state dir, byte for byte. Tokens at rest are sealed, so
//! not even the database holds them. Not one hit is allowed, whole or in part.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Approval, Scenario, World};
use serde_json::json;
use support::client::Client;

/// The administrator's password: nothing like it appears anywhere by chance.
const PASSWORD: &str = "Pw-ADMIN-4b1d7c93e2-never-logged-zQx";
/// A wrong password typed at the login, which must not be logged either.
const WRONG_PASSWORD: &str = "Pw-WRONG-90f6a2d1c8-never-logged-kJv";

/// Everything the run printed, answered or wrote, by where it came from.
#[derive(Default)]
struct Haystack {
    places: Vec<(String, Vec<u8>)>,
}

impl Haystack {
    fn add(&mut self, place: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.places.push((place.into(), bytes.into()));
    }

    fn add_output(&mut self, what: &str, out: &Output) {
        self.add(format!("{what}: stdout"), out.stdout.clone());
        self.add(format!("{what}: stderr"), out.stderr.clone());
    }

    /// Every file under `dir`, recursively.
    fn add_files(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                self.add_files(&path);
            } else {
                self.add(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }

    fn bytes(&self) -> usize {
        self.places.iter().map(|(_, b)| b.len()).sum()
    }

    /// Where each needle (or a 24-character piece of one) was found.
    fn hits(&self, needles: &[String]) -> Vec<String> {
        // The needles are ASCII, so searching the text read leniently finds each of them
        // exactly where the bytes hold it (str::contains is a fast substring search).
        let texts: Vec<(&str, std::borrow::Cow<'_, str>)> = self
            .places
            .iter()
            .map(|(place, bytes)| (place.as_str(), String::from_utf8_lossy(bytes)))
            .collect();
        let mut hits = Vec::new();
        for needle in needles {
            for piece in pieces(needle) {
                for (place, text) in &texts {
                    if text.contains(piece.as_str()) {
                        hits.push(format!(
                            "{place}: {}… (of a {}-character secret)",
                            &piece[..8.min(piece.len())],
                            needle.len()
                        ));
                    }
                }
            }
        }
        hits.sort();
        hits.dedup();
        hits
    }
}

/// The whole secret, and 24-character pieces from its second half (the random part of a
/// JWT: its first segments start alike for every token), so a truncated or partial leak
/// is found too.
fn pieces(secret: &str) -> Vec<String> {
    const PIECE: usize = 24;
    let mut out = vec![secret.to_owned()];
    if secret.len() > 2 * PIECE {
        let mut at = secret.len() / 2;
        while at + PIECE <= secret.len() {
            out.push(secret[at..at + PIECE].to_owned());
            at += PIECE * 8;
        }
        out.push(secret[secret.len() - PIECE..].to_owned());
    }
    out
}

fn system_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

struct Run {
    fakes: LoopbackMicrosoft,
    flags: Vec<String>,
    state: PathBuf,
    dir: tempfile::TempDir,
}

impl Run {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        command
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.flags)
            .args(args)
            .env("MFP_LOG", "trace")
            .env("RUST_LOG", "trace")
            .env("RUST_BACKTRACE", "1")
            .env_remove("MFP_ADMIN_PASSWORD");
        command
    }

    fn cli(&self, hay: &mut Haystack, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("mfp-host runs");
        hay.add_output(&format!("mfp-host {}", args.join(" ")), &out);
        out
    }

    /// `mfp-host serve` on this state dir, with the trace log in a file.
    fn serve(&self) -> (Child, Client, PathBuf) {
        let password_file = self.dir.path().join("admin-password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let log = self.dir.path().join("serve.log");
        let mut child = self
            .command(&["serve", "--listen", "127.0.0.1:0", "--admin-password-file"])
            .arg(&password_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut printed = String::new();
        let addr = loop {
            let mut line = String::new();
            assert!(
                lines.read_line(&mut line).unwrap() > 0,
                "serve ended: {printed}"
            );
            printed.push_str(&line);
            if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                break addr.to_owned();
            }
        };
        std::fs::write(self.dir.path().join("serve.stdout"), printed).unwrap();
        (child, Client { addr }, log)
    }
}

#[test]
fn no_token_or_password_appears_in_any_output_log_response_or_state_file() {
    let world = World::new(Scenario {
        approval: Approval::AfterPolls(0),
        ..Scenario::default()
    });
    let fakes = LoopbackMicrosoft::start(world).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flags = fakes.host_flags(&dir.path().join("test-ca.pem")).unwrap();
    let run = Run {
        flags,
        state: dir.path().join("state"),
        fakes,
        dir,
    };
    let mut hay = Haystack::default();

    // The command line: sign in, look around, send, sign in again over the old grant.
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    ok(&run.cli(
        &mut hay,
        &["settings", "set", "service-provider", "exchange-online"],
    ));
    ok(&run.cli(&mut hay, &["auth", "login"]));
    let scan = run.dir.path().join("scan.pdf");
    std::fs::write(&scan, b"%PDF-1.7\nscan\n").unwrap();
    let scan = scan.display().to_string();
    for args in [
        &["auth", "status", "--json"][..],
        &["auth", "status"],
        &[
            "send",
            "--to",
            "alice@contoso.com",
            "--attach",
            &scan,
            "--json",
        ],
        &["send", "--to", "alice@contoso.com", "--subject", "Scan"],
        &["history", "--json"],
        &["history"],
        &["diagnose", "--json"],
        &["settings", "show", "--json"],
        &["panel", "show", "--json"],
    ] {
        ok(&run.cli(&mut hay, args));
    }
    // A refused send and a refused setting print diagnoses: no token in them either.
    run.cli(&mut hay, &["send", "--to", "not an address", "--json"]);
    run.cli(&mut hay, &["settings", "set", "device-email", "x"]);

    // The web panel: a wrong password, the right one, a sign-in over the API, a send.
    let (mut server, client, log) = run.serve();
    let origin = client.origin();
    let wrong = client.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&json!({ "password": WRONG_PASSWORD }).to_string()),
    );
    assert!((400..500).contains(&wrong.status), "{}", wrong.body);
    let login = client.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &origin)],
        Some(&json!({ "password": PASSWORD }).to_string()),
    );
    assert_eq!(login.status, 204, "{}", login.body);
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut answers = vec![wrong, login];
    let started = client.api(&cookie, "POST", "/api/v1/signin", None);
    assert_eq!(started.status, 200, "{}", started.body);
    let user_code = started.json()["user-code"].as_str().unwrap().to_owned();
    answers.push(started);
    // The device code of this sign-in is forgotten by the platform once redeemed.
    let mut secrets = run.fakes.world().issued_secrets();
    run.fakes.world().approve(&user_code, system_now()).unwrap();
    client.wait_for_signin(&cookie, "signed-in");
    for (method, path, body) in [
        ("GET", "/api/v1/signin", None),
        ("GET", "/api/v1/smtp", None),
        ("GET", "/api/v1/control-panel", None),
        ("GET", "/api/v1/diagnostics", None),
        (
            "POST",
            "/api/v1/send",
            Some(
                json!({ "to": ["alice@contoso.com"], "subject": "From the panel", "body": "Hello" }),
            ),
        ),
        (
            "POST",
            "/api/v1/send",
            Some(json!({ "to": ["not an address"] })),
        ),
        ("GET", "/api/v1/history", None),
        ("GET", "/api/v1/admin-consent", None),
        ("POST", "/api/v1/logout", None),
    ] {
        answers.push(client.api(&cookie, method, path, body));
    }
    let _ = server.kill();
    let _ = server.wait();
    for (i, reply) in answers.iter().enumerate() {
        let headers: String = reply
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        hay.add(
            format!("API answer {i} ({})", reply.status),
            format!("{headers}\n{}", reply.body),
        );
    }
    hay.add("serve: stderr (trace log)", std::fs::read(&log).unwrap());
    hay.add(
        "serve: stdout",
        std::fs::read(run.dir.path().join("serve.stdout")).unwrap(),
    );
    hay.add_files(&run.state);

    assert_eq!(
        run.fakes.world().messages().len(),
        3,
        "the sends went through"
    );
    secrets.extend(run.fakes.world().issued_secrets());
    secrets.sort();
    secrets.dedup();
    let tokens = secrets.len();
    assert!(
        tokens >= 5,
        "two sign-ins: a device code, access and refresh tokens: {tokens}"
    );
    secrets.push(PASSWORD.to_owned());
    secrets.push(WRONG_PASSWORD.to_owned());
    // The search finds what is there: the user code the panel showed is in its answer.
    assert!(
        !hay.hits(std::slice::from_ref(&user_code)).is_empty(),
        "the search works"
    );
    let hits = hay.hits(&secrets);
    println!(
        "secrets: {} secrets ({tokens} issued by the identity platform, 2 passwords) searched in {} places, {} bytes: {} hits",
        secrets.len(),
        hay.places.len(),
        hay.bytes(),
        hits.len()
    );
    assert!(hits.is_empty(), "secrets leaked:\n{}", hits.join("\n"));
}
