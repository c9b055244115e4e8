//! Hostile input (issue #12): every value of `tests/hostile/corpus.json` goes to the
//! device the way an attacker could bring it, and each must end in a typed error within
//! its timeout, with the device's state as it was before.
//!
//! - `settings`, `settings_json`, `args_bytes` and `send`: typed at the command line (the
//!   real binary): exit 1 (refused by the device's rules) or 2 (malformed), `error[CODE]`
//!   and `remedy:` on stderr, or with `--json` one JSON diagnosis on stdout.
//! - `identity`: what a hostile identity platform answers to `signin.start` (through
//!   `Device`, i.e. the component in wasmtime): a `signin-error`.
//! - `smtp`: what a hostile SMTP server does to `mailer.send`: a `send-error`. Among them,
//!   servers that send one byte a second, which a per-read timeout alone never stops.
//!
//! "As it was": the settings, the control panel, the history and the sign-in state read
//! through the component are compared before and after; network cases may add the
//! history entry of the failed attempt (by design), which must not carry the hostile
//! bytes.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfp_fakes::net::{LoopbackMicrosoft, TestCa, manual_clock};
use mfp_fakes::{Approval, Scenario, World};
use mfp_host::bindings::mailer::{OutgoingMessage, WalkUpUser};
use mfp_host::bindings::signin::PollStatus;
use mfp_host::bindings::types::Origin;
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::capabilities::net::{NetConfig, ResolveRule};
use mfp_host::{Device, DeviceError, DeviceOptions};
use serde_json::Value;

/// Longest any one case may take: the slow servers are cut off well before.
const CASE_TIMEOUT: Duration = Duration::from_secs(40);

fn corpus() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/corpus.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The bytes a corpus value stands for (see the corpus's `_doc`).
fn bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) if o.contains_key("hex") => hex_decode(o["hex"].as_str().unwrap()),
        Value::Object(o) if o.contains_key("repeat") => {
            let part = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default();
            let times = o["times"].as_u64().unwrap() as usize;
            let mut out = part("prefix").as_bytes().to_vec();
            out.extend(part("repeat").repeat(times).into_bytes());
            out.extend(part("suffix").as_bytes());
            out
        }
        other => panic!("not a corpus value: {other}"),
    }
}

fn text(value: &Value) -> String {
    String::from_utf8(bytes(value)).unwrap()
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(unix)]
fn os_arg(value: &Value) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes(value))
}

/// `value` with every `{"repeat": …}` inside expanded to its text.
fn expand(value: &Value) -> Value {
    match value {
        Value::Object(o) if o.contains_key("repeat") => Value::String(text(value)),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), expand(v))).collect()),
        other => other.clone(),
    }
}

/// What an observer can read of the device's state, through the component.
fn snapshot(device: &Device, now: u64) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        device.settings().unwrap(),
        device.control_panel_view().unwrap(),
        device.history().unwrap(),
        device.signin_status(now).unwrap()
    )
}

/// What changed between two snapshots, for the failure message.
fn changed(before: &str, after: &str) -> String {
    let old: Vec<&str> = before.lines().collect();
    after
        .lines()
        .enumerate()
        .filter(|(i, line)| old.get(*i) != Some(line))
        .map(|(_, line)| line.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The settings and the control panel only: what a failed network attempt leaves alone.
fn settings_snapshot(device: &Device) -> String {
    format!(
        "{:?}\n{:?}",
        device.settings().unwrap(),
        device.control_panel_view().unwrap()
    )
}

/// Runs the binary, killing it at [`CASE_TIMEOUT`].
fn run(
    state: &Path,
    flags: &[String],
    args: &[OsString],
    stdin: Option<Vec<u8>>,
) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(state)
        .args(flags)
        .args(args)
        .env_remove("MFP_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CASE_TIMEOUT {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, started.elapsed())
}

/// The typed error a command printed: `error[CODE]` + `remedy:` on stderr, or with
/// `--json` one diagnosis object on stdout. `None`: no typed error.
fn typed_error(out: &Output, json: bool) -> Option<String> {
    if !matches!(out.status.code(), Some(1 | 2)) {
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // What the argument parser refuses before the device sees it (an argument that is not
    // UTF-8, a value that looks like a flag): bad usage, exit 2, with the usage line.
    if out.status.code() == Some(2) && err.starts_with("error: ") && err.contains("\nUsage: ") {
        return Some("usage (argument parser)".into());
    }
    if json {
        let value: Value = serde_json::from_slice(&out.stdout).ok()?;
        return value["code"].as_str().map(str::to_owned);
    }
    let code = err.strip_prefix("error[")?.split(']').next()?.to_owned();
    err.contains("\nremedy: ").then_some(code)
}

/// Outcomes by case, printed as the test's evidence.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
    /// Failures before the current case began.
    case_start: usize,
}

impl Report {
    fn begin(&mut self) {
        self.case_start = self.failures.len();
    }

    /// Ends a case. A case marked `known_issue` in the corpus (a bug reported, not fixed
    /// yet) must still fail: its failures are listed, not counted; once it passes, the
    /// mark must go.
    fn end(&mut self, group: &str, case: &Value) {
        let Some(issue) = case.get("known_issue").and_then(Value::as_str) else {
            return;
        };
        let name = text(&case["name"]);
        let failures = self.failures.split_off(self.case_start);
        if failures.is_empty() {
            self.failures.push(format!(
                "{group}: {name}: passes now; remove its known_issue mark ({issue})"
            ));
        } else {
            self.lines
                .push(format!("{group:13} {name:60} KNOWN ISSUE: {issue}"));
        }
    }

    fn ok(&mut self, group: &str, name: &str, code: &str, took: Duration) {
        self.lines.push(format!(
            "{group:13} {name:60} {code:40} {:>6.1}s",
            took.as_secs_f64()
        ));
    }

    fn fail(&mut self, group: &str, name: &str, why: String) {
        self.failures.push(format!("{group}: {name}: {why}"));
    }

    fn finish(self, group: &str) {
        for line in &self.lines {
            println!("{line}");
        }
        let known = self
            .lines
            .iter()
            .filter(|l| l.contains("KNOWN ISSUE"))
            .count();
        println!(
            "{group}: {} cases with a typed error, {known} known issue(s), {} failures",
            self.lines.len() - known,
            self.failures.len()
        );
        assert!(self.failures.is_empty(), "\n{}", self.failures.join("\n"));
    }
}

fn now() -> u64 {
    mfp_host::device::unix_now()
}

#[test]
fn hostile_settings_typed_at_the_command_line_are_refused_and_change_nothing() {
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let device = Device::open(DeviceOptions::new(&state)).unwrap();
    let before = snapshot(&device, now());
    let mut report = Report::default();
    let mut cases: Vec<(&str, String, Vec<OsString>, Option<Vec<u8>>)> = Vec::new();
    for case in corpus["settings"].as_array().unwrap() {
        let args = vec![
            "settings".into(),
            "set".into(),
            text(&case["key"]).into(),
            text(&case["value"]).into(),
        ];
        cases.push(("settings", text(&case["name"]), args, None));
    }
    for case in corpus["settings_json"].as_array().unwrap() {
        let args = vec!["settings".into(), "set".into(), "--json".into(), "-".into()];
        cases.push((
            "settings-json",
            text(&case["name"]),
            args,
            Some(bytes(&case["stdin"])),
        ));
    }
    for case in corpus["args_bytes"].as_array().unwrap() {
        let args: Vec<OsString> = case["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(os_arg)
            .collect();
        cases.push(("args-bytes", text(&case["name"]), args, None));
    }
    for (group, name, args, stdin) in cases {
        let json = args.iter().any(|a| a == "--json") && args[0] == "send";
        let (out, took) = run(&state, &[], &args, stdin);
        match typed_error(&out, json) {
            Some(code) if took < CASE_TIMEOUT => report.ok(group, &name, &code, took),
            _ => report.fail(
                group,
                &name,
                format!(
                    "exit {:?} after {took:?}; stdout {:?}; stderr {:?}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout)
                        .chars()
                        .take(300)
                        .collect::<String>(),
                    String::from_utf8_lossy(&out.stderr)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            ),
        }
        let after = snapshot(&device, now());
        if after != before {
            report.fail(
                group,
                &name,
                format!("the device's state changed: {}", changed(&before, &after)),
            );
            break;
        }
    }
    report.finish("settings");
}

/// The Microsoft stand-ins on a manual clock and a device signed in to them.
struct SignedIn {
    fakes: LoopbackMicrosoft,
    clock: Arc<std::sync::atomic::AtomicU64>,
    state: PathBuf,
    /// Global flags that reach the stand-ins from the command line.
    flags: Vec<String>,
    _dir: tempfile::TempDir,
}

impl SignedIn {
    fn new() -> Self {
        let (clock, seconds) = manual_clock(now());
        let world = World::new(Scenario {
            approval: Approval::Manual,
            ..Scenario::default()
        });
        let fakes = LoopbackMicrosoft::start_with_clock(world, clock).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = fakes.host_flags(&dir.path().join("ca.pem")).unwrap();
        let state = dir.path().join("state");
        let rig = Self {
            fakes,
            clock: seconds,
            state,
            flags,
            _dir: dir,
        };
        let device = rig.device(&rig.fakes.resolve_rules(), rig.fakes.ca_pem());
        let at = rig.now();
        device
            .apply(
                Origin::WebPanel,
                &[("service-provider".into(), "exchange-online".into())],
            )
            .unwrap();
        let code = device.signin_start(at).unwrap();
        rig.fakes
            .world()
            .approve(&code.user_code, Duration::from_secs(at))
            .unwrap();
        let at = rig.advance(u64::from(code.interval));
        match device.signin_poll(at).unwrap() {
            PollStatus::SignedIn(_) => {}
            other => panic!("not signed in: {other:?}"),
        }
        rig
    }

    fn now(&self) -> u64 {
        self.clock.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn advance(&self, seconds: u64) -> u64 {
        self.clock
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst)
            + seconds
    }

    /// A device on this state dir whose network follows `rules`, trusting `ca_pem`.
    fn device(&self, rules: &[String], ca_pem: &[u8]) -> Device {
        let mut options = DeviceOptions::new(&self.state);
        options.net = Some(NetConfig {
            resolve: rules
                .iter()
                .map(|r| ResolveRule::parse(r).unwrap())
                .collect(),
            extra_roots_pem: vec![ca_pem.to_vec()],
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
            // RFC 5321's 5 minutes for a reply become 5 s.
            smtp_timeout_divisor: 60,
            ..NetConfig::default()
        });
        options.runtime.network_call_timeout = Duration::from_secs(6);
        Device::open(options).unwrap()
    }
}

#[test]
fn hostile_send_input_is_refused_before_any_connection_and_changes_nothing() {
    let corpus = corpus();
    let rig = SignedIn::new();
    let observer = Device::open(DeviceOptions::new(&rig.state)).unwrap();
    let observer_state = |device: &Device, now: u64| {
        format!(
            "{}\n{:?}",
            settings_snapshot(device),
            device.signin_status(now).unwrap()
        )
    };
    let before = observer_state(&observer, rig.now());
    let mut connections = rig.fakes.world().requests("smtp");
    let mut seen = observer.history().unwrap().len();
    let mut report = Report::default();
    for case in corpus["send"].as_array().unwrap() {
        report.begin();
        let name = text(&case["name"]);
        let mut args: Vec<OsString> = vec!["send".into(), "--json".into()];
        args.extend(
            case["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| OsString::from(text(v))),
        );
        let (out, took) = run(&rig.state, &rig.flags, &args, None);
        match typed_error(&out, true) {
            Some(code) if took < CASE_TIMEOUT => report.ok("send", &name, &code, took),
            _ => report.fail(
                "send",
                &name,
                format!(
                    "exit {:?}; stdout {:?}; stderr {:?}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout)
                        .chars()
                        .take(300)
                        .collect::<String>(),
                    String::from_utf8_lossy(&out.stderr)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            ),
        }
        let connected = rig.fakes.world().requests("smtp") - connections;
        if connected > 0 {
            report.fail(
                "send",
                &name,
                format!("{connected} SMTP connection(s) made"),
            );
            connections += connected;
        }
        // A refused send is recorded in the history (by design): its entry may be new,
        // everything else stays, and the entry carries none of the hostile text.
        let after = observer_state(&observer, rig.now());
        if after != before {
            report.fail(
                "send",
                &name,
                format!("the device's state changed: {}", changed(&before, &after)),
            );
            break;
        }
        let history = observer.history().unwrap();
        let new = format!("{:?}", &history[..history.len() - seen.min(history.len())]);
        seen = history.len();
        let hostile = [
            "evil",
            "RCPT",
            "DATA",
            "Bcc",
            "\\r",
            "\\n",
            "aaaaaaaaaaaaaaaa",
        ];
        if hostile.iter().any(|m| new.contains(m)) {
            report.fail("send", &name, format!("hostile text in the history: {new}"));
        }
        report.end("send", case);
    }
    let delivered = rig.fakes.world().messages();
    let known = corpus["send"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("known_issue").is_some())
        .count();
    if delivered.len() > known {
        report.fail(
            "send",
            "(all)",
            format!(
                "{} message(s) delivered: {:?}",
                delivered.len(),
                delivered.iter().map(|m| &m.rcpt_to).collect::<Vec<_>>()
            ),
        );
    }
    report.finish("send");
}

/// Which corpus case a hostile server plays now.
type Playing = Arc<Mutex<Value>>;

/// Writes `prefix`, then `unit` every `every` until the peer goes (or 2 minutes).
fn drip(stream: &mut impl Write, prefix: &[u8], unit: &[u8], every: Duration) {
    if stream
        .write_all(prefix)
        .and_then(|()| stream.flush())
        .is_err()
    {
        return;
    }
    let end = Instant::now() + Duration::from_secs(120);
    while Instant::now() < end {
        std::thread::sleep(every);
        if stream
            .write_all(unit)
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The answer a response spec of the `identity` corpus stands for.
fn respond(stream: &mut impl Write, spec: &Value) {
    let http = |status: u64, content_type: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let answer = if let Some(json) = spec.get("json") {
        http(200, "application/json", expand(json).to_string().as_bytes())
    } else if let Some(n) = spec.get("json_padding").and_then(Value::as_u64) {
        let body = serde_json::json!({
            "user_code": "ABCD1234", "device_code": "DAQABIQEAAADhostile",
            "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900,
            "interval": 5, "message": "m", "padding": "P".repeat(n as usize),
        });
        http(200, "application/json", body.to_string().as_bytes())
    } else if let Some(raw) = spec.get("raw") {
        bytes(raw)
    } else if let Some(prefix) = spec.get("drip") {
        let every = Duration::from_millis(spec["every_ms"].as_u64().unwrap());
        return drip(stream, &bytes(prefix), &bytes(&spec["drip_forever"]), every);
    } else {
        let status = spec.get("status").and_then(Value::as_u64).unwrap_or(200);
        let content_type = spec
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap_or("application/json");
        http(status, content_type, &bytes(&spec["body"]))
    };
    let _ = stream.write_all(&answer);
    let _ = stream.flush();
}

/// A hostile identity platform over HTTPS: the device-code endpoint answers as the case
/// says, the token endpoint says `authorization_pending`.
fn hostile_identity(ca: &TestCa, playing: Playing) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ca.server_config();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { break };
            let (config, playing) = (config.clone(), playing.clone());
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut reader = BufReader::new(&mut tls);
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let spec = playing.lock().unwrap().clone();
                if head.contains("/devicecode") {
                    respond(&mut tls, &spec["devicecode"]);
                } else {
                    let pending = br#"{"error":"authorization_pending"}"#;
                    respond(
                        &mut tls,
                        &serde_json::json!({"status": 400, "body": String::from_utf8_lossy(pending)}),
                    );
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    port
}

#[test]
fn a_hostile_identity_platform_gets_a_typed_sign_in_error_and_no_sign_in() {
    let corpus = corpus();
    let rig = SignedIn::new();
    // Signed out again, so that a sign-in could only come from the hostile server.
    let ca = TestCa::generate().unwrap();
    let playing: Playing = Arc::new(Mutex::new(Value::Null));
    let port = hostile_identity(&ca, playing.clone());
    let device = rig.device(
        &[format!("login.microsoftonline.com:443=127.0.0.1:{port}")],
        ca.ca_pem().as_bytes(),
    );
    device.sign_out().unwrap();
    let before = settings_snapshot(&device);
    let mut report = Report::default();
    for case in corpus["identity"].as_array().unwrap() {
        report.begin();
        let name = text(&case["name"]);
        *playing.lock().unwrap() = case.clone();
        let started = Instant::now();
        let result = device.signin_start(rig.now());
        let took = started.elapsed();
        match result {
            _ if took >= CASE_TIMEOUT => report.fail("identity", &name, format!("took {took:?}")),
            Err(DeviceError::SigninFailed(e)) => {
                report.ok("identity", &name, &e.diagnosis().code, took)
            }
            Err(other) => report.fail("identity", &name, format!("not a sign-in error: {other}")),
            Ok(code) => report.fail("identity", &name, format!("accepted: {code:?}")),
        }
        let status = format!("{:?}", device.signin_status(rig.now()).unwrap());
        let history = format!("{:?}", device.history().unwrap());
        if !status.contains("SignedOut") && !status.contains("Failed") {
            report.fail("identity", &name, format!("sign-in state: {status}"));
        }
        if let Some(marker) = case.get("marker").and_then(Value::as_str) {
            let escaped = format!("{marker:?}");
            let escaped = &escaped[1..escaped.len() - 1];
            if status.contains(escaped) || history.contains(escaped) {
                report.fail(
                    "identity",
                    &name,
                    format!("{marker:?} was kept: {status} {history}"),
                );
            }
        }
        if settings_snapshot(&device) != before {
            report.fail("identity", &name, "the settings changed".into());
        }
        report.end("identity", case);
    }
    report.finish("identity");
}

/// A hostile SMTP server: each connection plays the current case's script.
fn hostile_smtp(playing: Playing) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { break };
            let playing = playing.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
                let script = playing.lock().unwrap()["script"].clone();
                let mut reader = BufReader::new(sock.try_clone().unwrap());
                for step in script.as_array().unwrap() {
                    if let Some(data) = step.get("send") {
                        if sock.write_all(&bytes(data)).is_err() {
                            return;
                        }
                    } else if step.get("read").is_some() {
                        let mut line = Vec::new();
                        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                            return;
                        }
                    } else if step.get("close").is_some() {
                        return;
                    } else if let Some(unit) = step.get("flood") {
                        let unit = bytes(unit);
                        let end = Instant::now() + Duration::from_secs(60);
                        while Instant::now() < end && sock.write_all(&unit).is_ok() {}
                        return;
                    } else if let Some(prefix) = step.get("drip") {
                        let every = Duration::from_millis(step["every_ms"].as_u64().unwrap());
                        return drip(
                            &mut sock,
                            &bytes(prefix),
                            &bytes(&step["drip_forever"]),
                            every,
                        );
                    }
                }
                // Then wait for the client to go.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
        }
    });
    port
}

/// Control characters a stored server reply must not carry.
fn has_controls(text: &str) -> bool {
    text.chars().any(|c| c.is_control())
}

#[test]
fn a_hostile_smtp_server_gets_a_typed_send_error_within_the_stage_timeout() {
    let corpus = corpus();
    let rig = SignedIn::new();
    let playing: Playing = Arc::new(Mutex::new(Value::Null));
    let port = hostile_smtp(playing.clone());
    let device = rig.device(
        &[
            rig.fakes.identity_rule(),
            format!("smtp.office365.com:587=127.0.0.1:{port}"),
        ],
        rig.fakes.ca_pem(),
    );
    let before = settings_snapshot(&device);
    let message = OutgoingMessage {
        to: vec!["alice@contoso.com".into()],
        from: None,
        user: WalkUpUser::Unauthenticated,
        subject: "Scan".into(),
        body: "Scanned document attached.".into(),
        attachments: Vec::new(),
        attempt: 1,
    };
    let mut report = Report::default();
    for case in corpus["smtp"].as_array().unwrap() {
        report.begin();
        let name = text(&case["name"]);
        *playing.lock().unwrap() = case.clone();
        let started = Instant::now();
        let result = device.send(&message, AttachmentSet::default(), rig.now());
        let took = started.elapsed();
        match result {
            _ if took >= CASE_TIMEOUT => report.fail("smtp", &name, format!("took {took:?}")),
            Err(DeviceError::SendFailed(e)) => {
                let reply = e.server_reply().unwrap_or_default();
                if has_controls(reply) {
                    report.fail(
                        "smtp",
                        &name,
                        format!("the reply is kept with control characters: {reply:?}"),
                    );
                } else {
                    report.ok("smtp", &name, &e.diagnosis().code, took);
                }
            }
            Err(other) => report.fail(
                "smtp",
                &name,
                format!("not a send error after {took:?}: {other}"),
            ),
            Ok(sent) => report.fail("smtp", &name, format!("sent: {sent:?}")),
        }
        for event in device.history().unwrap() {
            if event.server_reply.as_deref().is_some_and(has_controls) {
                report.fail(
                    "smtp",
                    &name,
                    format!("history keeps control characters: {:?}", event.server_reply),
                );
                break;
            }
        }
        if settings_snapshot(&device) != before {
            report.fail("smtp", &name, "the settings changed".into());
        }
        if !format!("{:?}", device.signin_status(rig.now()).unwrap()).contains("SignedIn") {
            report.fail("smtp", &name, "no longer signed in".into());
        }
        report.end("smtp", case);
    }
    report.finish("smtp");
}
