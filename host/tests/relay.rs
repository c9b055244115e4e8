//! `mfp-host relay` through the real binary: a real SMTP client (Python's `smtplib`)
//! submits to the relay, and the relay passes each message through to the stand-in
//! Exchange Online (real TLS, XOAUTH2) as the signed-in account.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Approval, Scenario, SmtpCase, World};

/// The stand-ins on loopback, a signed-in state dir, and the flags that reach them.
struct Signed {
    world: World,
    flags: Vec<String>,
    state: PathBuf,
    dir: tempfile::TempDir,
    _fakes: LoopbackMicrosoft,
}

impl Signed {
    fn start() -> Self {
        let world = World::new(Scenario {
            approval: Approval::AfterPolls(0),
            ..Scenario::default()
        });
        world.update_settings(|s| s.interval = 1);
        let fakes = LoopbackMicrosoft::start(world.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = fakes.host_flags(&dir.path().join("test-ca.pem")).unwrap();
        let state = dir.path().join("state");
        let signed = Self {
            world,
            flags,
            state,
            dir,
            _fakes: fakes,
        };
        let out = signed.run(&["settings", "set", "service-provider", "exchange-online"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = signed.run(&["auth", "login"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        signed
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        command
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.flags)
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("mfp-host runs")
    }

    /// Starts `mfp-host relay` on a free loopback port with `extra` flags; returns the
    /// process and its `host:port`.
    fn relay(&self, extra: &[&str]) -> Relay {
        let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mfp-host relay runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("relay listening on smtp://")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        // The start-up lines end with the certificate's fingerprint.
        let mut fingerprint = None;
        while fingerprint.is_none() {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap() == 0 {
                panic!("the relay ended before printing its certificate's fingerprint");
            }
            fingerprint = line
                .trim()
                .strip_prefix("relay STARTTLS certificate SHA-256 fingerprint: ")
                .map(str::to_owned);
        }
        // Keep reading stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.lines() {});
        Relay {
            child,
            addr,
            fingerprint: fingerprint.unwrap_or_default(),
        }
    }

    /// `mfp-host history --json`: the entries, newest first.
    fn history_json(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["history", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("history --json prints a list")
    }
}

struct Relay {
    child: Child,
    addr: String,
    /// As printed at start: `AA:BB:…`.
    fingerprint: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` with Python 3, the relay's host and port as argv[1] and argv[2].
fn python(relay: &Relay, dir: &Path, script: &str, extra: &[&str]) -> Output {
    let (host, port) = relay.addr.rsplit_once(':').unwrap();
    let path = dir.join("client.py");
    std::fs::write(&path, script).unwrap();
    Command::new("python3")
        .arg(&path)
        .args([host, port])
        .args(extra)
        .output()
        .expect("python3 runs (installed by scripts/test)")
}

/// Starts `script` with Python 3 like [`python`], its stdout piped, for a test that acts
/// while the client is mid-conversation.
fn python_child(relay: &Relay, dir: &Path, script: &str) -> Child {
    let (host, port) = relay.addr.rsplit_once(':').unwrap();
    let path = dir.join("client-live.py");
    std::fs::write(&path, script).unwrap();
    Command::new("python3")
        .arg(&path)
        .args([host, port])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (installed by scripts/test)")
}

/// The client's stdout, failing the test with both streams when it did not exit 0.
fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const SEND: &str = r#"
import smtplib, sys
host, port, message_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(message_file, 'rb') as f:
    message = f.read()
with smtplib.SMTP(host, port, timeout=30) as s:
    s.ehlo('scanner-3f.contoso.local')
    refused = s.sendmail('mfp@contoso.com', ['alice@contoso.com', 'bob@contoso.com'], message)
    print('accepted', refused)
"#;

#[test]
fn a_message_relayed_arrives_byte_identical_below_the_trace_header() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let message = b"From: Scanner <mfp@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Scan\r\nMessage-ID: <scan-1@scanner-3f>\r\n\r\n.leading dot\r\nline two\r\n".to_vec();
    let file = signed.dir.path().join("message.eml");
    std::fs::write(&file, &message).unwrap();
    let out = python(&relay, signed.dir.path(), SEND, &[file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let received = signed.world.messages();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m.account, "mfp@contoso.com");
    assert_eq!(m.mail_from, "mfp@contoso.com");
    assert_eq!(m.rcpt_to, ["alice@contoso.com", "bob@contoso.com"]);
    let raw = m.raw.as_deref().expect("kept whole");
    assert!(
        raw.starts_with(b"Received: from scanner-3f.contoso.local ([127.0.0.1])"),
        "{}",
        String::from_utf8_lossy(raw)
    );
    assert!(raw.ends_with(&message), "{}", String::from_utf8_lossy(raw));
}

/// A small message from the signed-in account, CRLF throughout.
const SMALL: &[u8] =
    b"From: Scanner <mfp@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Scan\r\n\r\nScanned page.\r\n";

/// Once `--allow` names ranges, they alone decide: loopback's other addresses are outside
/// `127.0.0.1/32`. Breaking it: `CheckedConfig::allows` letting loopback in whatever the
/// ranges (or not checking at all) makes the 127.0.0.2 client connect.
#[test]
fn a_client_outside_the_allowed_ranges_is_refused_at_connect() {
    let signed = Signed::start();
    let relay = signed.relay(&["--allow", "127.0.0.1/32"]);
    let script = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = smtplib.SMTP(host, port, timeout=30, source_address=('127.0.0.2', 0))
    print('connected', s.ehlo())
except smtplib.SMTPConnectError as e:
    print('refused', e.smtp_code, e.smtp_error.decode())
"#;
    let out = stdout_of(&python(&relay, signed.dir.path(), script, &[]));
    // A refusing greeting names the server first (RFC 5321 §4.3.2), then the reason.
    assert!(out.starts_with("refused 554 5.7.1 "), "{out}");
    assert!(out.contains(" 127.0.0.2 may not relay here"), "{out}");
    assert!(
        out.contains("outside the relay's allowed address ranges"),
        "{out}"
    );
    assert!(
        out.contains("--allow"),
        "the refusal names the remedy: {out}"
    );

    // The same relay serves 127.0.0.1.
    let file = signed.dir.path().join("message.eml");
    std::fs::write(&file, SMALL).unwrap();
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        SEND,
        &[file.to_str().unwrap()],
    ));
    assert!(out.contains("accepted {}"), "{out}");
    assert_eq!(signed.world.messages().len(), 1);
}

/// With a relay password: AUTH only after STARTTLS, nothing without it, the wrong password
/// refused, and STARTTLS with the certificate whose fingerprint the relay printed.
/// Breaking it: offering AUTH in clear (`server.rs` EHLO), or accepting any password
/// (`same_secret`), or skipping the `530` at MAIL, turns a line below red.
#[test]
fn auth_is_required_and_offered_only_after_starttls() {
    let signed = Signed::start();
    let password_file = signed.dir.path().join("relay-password");
    std::fs::write(&password_file, "s3cret-relay\n").unwrap();
    let relay = signed.relay(&["--relay-password-file", password_file.to_str().unwrap()]);
    let file = signed.dir.path().join("message.eml");
    std::fs::write(&file, SMALL).unwrap();
    let script = r#"
import base64, hashlib, smtplib, ssl, sys
host, port, password, message_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(message_file, 'rb') as f:
    message = f.read()
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo('scanner-3f.contoso.local')
print('clear: auth offered', s.has_extn('auth'), 'starttls offered', s.has_extn('starttls'))
plain = base64.b64encode(b'\0any\0' + password.encode()).decode()
code, text = s.docmd('AUTH', 'PLAIN ' + plain)
print('clear: auth plain', code, text.decode())
code, text = s.docmd('MAIL', 'FROM:<mfp@contoso.com>')
print('clear: mail', code, text.decode())
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
s.starttls(context=context)
print('peer sha256', hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest())
s.ehlo('scanner-3f.contoso.local')
print('tls: auth offered', s.esmtp_features.get('auth', '').strip())
code, text = s.docmd('MAIL', 'FROM:<mfp@contoso.com>')
print('tls: mail', code, text.decode())
try:
    s.login('any', 'wrong-' + password)
    print('wrong password accepted')
except smtplib.SMTPAuthenticationError as e:
    print('wrong password', e.smtp_code, e.smtp_error.decode())
s.login('any', password)
print('right password accepted')
print('refused', s.sendmail('mfp@contoso.com', ['alice@contoso.com'], message))
s.quit()
"#;
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        script,
        &["s3cret-relay", file.to_str().unwrap()],
    ));
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}"))
            .to_owned()
    };
    assert_eq!(
        line("clear: auth offered"),
        "clear: auth offered False starttls offered True"
    );
    assert!(
        line("clear: auth plain").starts_with("clear: auth plain 530 5.7.0"),
        "{out}"
    );
    assert!(
        line("clear: mail").starts_with("clear: mail 530 5.7.0"),
        "{out}"
    );
    let expected: String = relay.fingerprint.replace(':', "").to_ascii_lowercase();
    assert_eq!(
        expected.len(),
        64,
        "fingerprint as printed: {}",
        relay.fingerprint
    );
    assert_eq!(line("peer sha256"), format!("peer sha256 {expected}"));
    let offered = line("tls: auth offered");
    assert!(
        offered.contains("PLAIN") && offered.contains("LOGIN"),
        "{out}"
    );
    assert!(
        line("tls: mail").starts_with("tls: mail 530 5.7.0"),
        "{out}"
    );
    assert!(
        line("wrong password").starts_with("wrong password 535"),
        "{out}"
    );
    assert_eq!(line("refused"), "refused {}");

    let received = signed.world.messages();
    assert_eq!(received.len(), 1);
    let raw = received[0].raw.as_deref().expect("kept whole");
    let text = String::from_utf8_lossy(raw);
    assert!(
        text.contains("with ESMTPSA;"),
        "TLS and AUTH in the trace header: {text}"
    );
    assert!(raw.ends_with(SMALL), "{text}");
}

/// A 25 MB message of random lines (some starting with `.`) arriving exactly; the relay's
/// peak RSS stays below 64 MiB. Breaking it: reading the whole message before sending
/// (collecting `DeviceBody`'s chunks) raises the peak past the bar; a dot-unstuffing slip
/// changes the digest.
#[test]
fn a_25_mb_message_streams_through_with_flat_memory() {
    use sha2::{Digest, Sha256};
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let pid = relay.child.id();
    let before = vm_hwm_kib(pid);

    let mut message = b"From: Scanner <mfp@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Large scan\r\nMessage-ID: <large@scanner-3f>\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut n = 0u64;
    while message.len() < 25_000_000 {
        n += 1;
        match n % 97 {
            0 => message.extend_from_slice(b".\r\n"),
            k if k % 13 == 0 => message.push(b'.'),
            _ => {}
        }
        for _ in 0..76 {
            message.push(ALPHABET[(next() % 64) as usize]);
        }
        message.extend_from_slice(b"\r\n");
    }
    let file = signed.dir.path().join("large.eml");
    std::fs::write(&file, &message).unwrap();
    let started = std::time::Instant::now();
    let script = r#"
import smtplib, sys
host, port, message_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(message_file, 'rb') as f:
    message = f.read()
with smtplib.SMTP(host, port, timeout=300) as s:
    s.ehlo('scanner-3f.contoso.local')
    print('accepted', s.sendmail('mfp@contoso.com', ['alice@contoso.com'], message))
"#;
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        script,
        &[file.to_str().unwrap()],
    ));
    let elapsed = started.elapsed();
    assert!(out.contains("accepted {}"), "{out}");

    let received = signed.world.messages();
    assert_eq!(received.len(), 1);
    let m = &received[0];
    // The trace header the relay added: its first line and the folded lines under it.
    let mut trace = String::new();
    for (i, line) in m.headers.split_inclusive('\n').enumerate() {
        match i {
            0 => {
                assert!(line.starts_with("Received: "), "{}", m.headers);
                trace.push_str(line);
            }
            _ if line.starts_with(['\t', ' ']) => trace.push_str(line),
            _ => break,
        }
    }
    let mut expected = trace.into_bytes();
    expected.extend_from_slice(&message);
    assert_eq!(m.size, expected.len() as u64);
    assert_eq!(m.sha256, hex::encode(Sha256::digest(&expected)));

    let peak = vm_hwm_kib(pid);
    let cpu = cpu_seconds(pid);
    eprintln!(
        "relay of a {:.1} MB message: peak RSS (VmHWM) {:.1} MiB (before the message: {:.1} MiB), relay CPU {cpu:.2} s, client wall time {:.2} s",
        message.len() as f64 / 1e6,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        elapsed.as_secs_f64()
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB, the bar is 64 MiB");
    // The bar alone would pass a relay holding the message whole (its start-up peak is
    // about 16 MiB): the growth must stay well below the message's own 25 MB.
    assert!(
        peak - before < 12 * 1024,
        "peak RSS grew by {} KiB while the message passed: it was held whole",
        peak - before
    );
}

/// The relay process's peak resident set (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// User and system CPU time the process has used so far, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 of `rest`.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
}

/// Exchange's refusal comes back to the device with Exchange's enhanced code and the
/// component's diagnosis, and the history records it. Breaking it: answering `250` before
/// Exchange answered, or dropping the diagnosis from `failure_answer`, turns it red.
#[test]
fn an_exchange_refusal_reaches_the_client_with_the_diagnosis() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let file = signed.dir.path().join("message.eml");
    std::fs::write(&file, SMALL).unwrap();
    let script = r#"
import smtplib, sys
host, port, message_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(message_file, 'rb') as f:
    message = f.read()
with smtplib.SMTP(host, port, timeout=60) as s:
    try:
        print('accepted', s.sendmail('mfp@contoso.com', ['alice@contoso.com'], message))
    except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused) as e:
        print('refused', type(e).__name__, e.smtp_code, e.smtp_error.decode().replace('\n', ' '))
"#;
    // At AUTH: Exchange refuses the relay's own sign-in.
    signed.world.set_scenario(Scenario {
        smtp: SmtpCase::AuthDisabledForTenant,
        ..signed.world.scenario()
    });
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        script,
        &[file.to_str().unwrap()],
    ));
    assert!(
        out.starts_with("refused SMTPDataError 554 5.7.139 "),
        "{out}"
    );
    assert!(
        out.contains("SMTP AUTH is disabled for the tenant"),
        "{out}"
    );
    assert!(
        out.contains("SmtpClientAuthenticationDisabled $false"),
        "the remedy: {out}"
    );
    let history = signed.history_json();
    let newest = &history[0];
    assert_eq!(newest["kind"], "relayed", "{newest}");
    assert_eq!(newest["succeeded"], false, "{newest}");
    assert_eq!(
        newest["diagnosis"]["code"], "smtp-auth-disabled-for-tenant",
        "{newest}"
    );
    assert!(
        newest["server-reply"]
            .as_str()
            .unwrap_or_default()
            .contains("5.7.139"),
        "{newest}"
    );

    // After the final dot: Exchange had the whole message, and refused it.
    signed.world.set_scenario(Scenario {
        smtp: SmtpCase::MailboxFull,
        ..signed.world.scenario()
    });
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        script,
        &[file.to_str().unwrap()],
    ));
    assert!(out.starts_with("refused SMTPDataError 554 5.2.2 "), "{out}");
    assert!(out.contains("is full"), "{out}");
    assert!(out.contains("Sent Items"), "the remedy: {out}");
    let history = signed.history_json();
    assert_eq!(
        history[0]["diagnosis"]["code"], "smtp-mailbox-full",
        "{}",
        history[0]
    );
    assert_eq!(history[0]["succeeded"], false);
    assert!(signed.world.messages().is_empty());
}

/// SIGKILL while the message streams to Exchange: the device never hears `250`, and
/// Exchange, which never got the final dot, delivers nothing. Breaking it: a relay that
/// acknowledges a message before its end reached Exchange (a `250` as soon as it has
/// the body in hand, store-and-forward style) shows a `250` here.
#[test]
fn a_relay_killed_mid_message_never_acknowledges_it() {
    let signed = Signed::start();
    let mut relay = signed.relay(&[]);
    let script = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=60)
f = s.makefile('rb')
def reply(expected):
    while True:
        line = f.readline()
        if not line.startswith(expected):
            raise SystemExit('expected %s, got %r' % (expected, line))
        if line[3:4] != b'-':
            return
reply(b'220')
for command, expected in [(b'EHLO scanner-3f.contoso.local', b'250'),
                          (b'MAIL FROM:<mfp@contoso.com>', b'250'),
                          (b'RCPT TO:<alice@contoso.com>', b'250'),
                          (b'DATA', b'354')]:
    s.sendall(command + b'\r\n')
    reply(expected)
s.sendall(b'From: mfp@contoso.com\r\nTo: alice@contoso.com\r\nSubject: Killed\r\n\r\n')
line = b'A' * 1022 + b'\r\n'
for _ in range(1024):
    s.sendall(line)
print('sent', flush=True)
try:
    rest = f.read()
except OSError as e:
    rest = b''
    print('error', e)
print('after', repr(rest), flush=True)
"#;
    let mut client = python_child(&relay, signed.dir.path(), script);
    let mut stdout = BufReader::new(client.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "sent");
    // Wait until the message is on its way to Exchange (its DATA sent), so the kill
    // lands mid-stream rather than before the relay reached Exchange.
    for _ in 0..300 {
        if signed.world.smtp_commands().iter().any(|c| c == "DATA") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        signed.world.smtp_commands().iter().any(|c| c == "DATA"),
        "{:?}",
        signed.world.smtp_commands()
    );
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(client.wait().unwrap().success(), "{rest}");
    let after = rest
        .lines()
        .find_map(|l| l.strip_prefix("after "))
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(!after.contains("250"), "the device heard: {after}");
    assert!(signed.world.messages().is_empty());
}

/// Not the account, not relayed: MAIL FROM someone else gets `550 5.7.1`, and so does a
/// From header naming someone else under a good envelope, at the end of DATA; Exchange is
/// never contacted. Breaking it: `Senders::allows` saying yes to anyone makes Exchange
/// (the stand-in) see the message.
#[test]
fn mail_only_goes_out_as_the_signed_in_account() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let script = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
good = b'From: Scanner <mfp@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Scan\r\n\r\nbody\r\n'
forged = b'From: The CEO <ceo@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Wire transfer\r\n\r\nbody\r\n'
with smtplib.SMTP(host, port, timeout=30) as s:
    try:
        print('envelope accepted', s.sendmail('ceo@contoso.com', ['alice@contoso.com'], good))
    except smtplib.SMTPSenderRefused as e:
        print('envelope refused', e.smtp_code, e.smtp_error.decode().replace('\n', ' '))
    try:
        print('header accepted', s.sendmail('mfp@contoso.com', ['alice@contoso.com'], forged))
    except smtplib.SMTPDataError as e:
        print('header refused', e.smtp_code, e.smtp_error.decode().replace('\n', ' '))
"#;
    let out = stdout_of(&python(&relay, signed.dir.path(), script, &[]));
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{out}"))
            .to_owned()
    };
    let envelope = line("envelope ");
    assert!(envelope.starts_with("envelope refused 550 5.7.1 "), "{out}");
    assert!(
        envelope.contains("SendAsDenied") && envelope.contains("ceo@contoso.com"),
        "{out}"
    );
    let header = line("header ");
    assert!(header.starts_with("header refused 550 5.7.1 "), "{out}");
    assert!(
        header.contains("SendAsDenied") && header.contains("ceo@contoso.com"),
        "{out}"
    );
    assert!(signed.world.messages().is_empty());
    assert_eq!(
        signed.world.smtp_commands(),
        Vec::<String>::new(),
        "Exchange was never contacted"
    );
}

/// Exchange Online's 30 messages a minute: the 31st is told to come back (`451 4.7.0`) at
/// MAIL, before anything reaches Exchange. Breaking it: skipping `policy::reserve_slot`
/// lets the 31st through to the stand-in, which refuses it after DATA (554) instead.
#[test]
fn the_thirty_first_message_of_a_minute_is_told_to_retry() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let script = r#"
import smtplib, sys
host, port = sys.argv[1], int(sys.argv[2])
message = b'From: mfp@contoso.com\r\nTo: alice@contoso.com\r\nSubject: Page\r\n\r\nPage.\r\n'
with smtplib.SMTP(host, port, timeout=60) as s:
    for i in range(1, 32):
        try:
            s.sendmail('mfp@contoso.com', ['alice@contoso.com'], message)
            print('accepted', i)
        except smtplib.SMTPResponseException as e:
            print('refused', i, type(e).__name__, e.smtp_code, e.smtp_error.decode().replace('\n', ' '))
"#;
    let out = stdout_of(&python(&relay, signed.dir.path(), script, &[]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 31, "{out}");
    for (i, line) in lines[..30].iter().enumerate() {
        assert_eq!(*line, format!("accepted {}", i + 1), "{out}");
    }
    assert!(
        lines[30].starts_with("refused 31 SMTPSenderRefused 451 4.7.0 "),
        "{out}"
    );
    assert!(lines[30].contains("try again in"), "{out}");
    assert_eq!(signed.world.messages().len(), 30);
}

/// Exchange Online's 3 connections: a 4th device is told to come back (`421`) at connect,
/// and is served once one of the 3 left. Breaking it: `admit` not counting connections
/// lets the 4th in.
#[test]
fn a_fourth_connection_is_told_to_come_back() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let script = r#"
import smtplib, sys, time
host, port = sys.argv[1], int(sys.argv[2])
held = []
for i in range(3):
    s = smtplib.SMTP(host, port, timeout=30)
    s.ehlo('scanner-%d.contoso.local' % i)
    held.append(s)
try:
    s = smtplib.SMTP(host, port, timeout=30)
    print('fourth connected')
    s.quit()
except smtplib.SMTPConnectError as e:
    print('fourth refused', e.smtp_code, e.smtp_error.decode().replace('\n', ' '))
for s in held:
    s.quit()
# The relay counts a connection until its handler is done: allow it a moment.
for attempt in range(100):
    try:
        s = smtplib.SMTP(host, port, timeout=30)
        print('later connected', s.ehlo()[0])
        s.quit()
        break
    except smtplib.SMTPConnectError as e:
        time.sleep(0.1)
else:
    print('later refused')
"#;
    let out = stdout_of(&python(&relay, signed.dir.path(), script, &[]));
    assert!(out.contains("fourth refused 421 4.3.2 "), "{out}");
    assert!(out.contains("3 connections"), "{out}");
    assert!(out.contains("later connected 250"), "{out}");
}

/// Not an open relay: listening beyond loopback needs `--allow`, and a range with host
/// bits set is refused rather than guessed. Breaking it: `config::check` not requiring a
/// range for a non-loopback listen makes the relay start.
#[test]
fn an_open_relay_or_a_malformed_range_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mfp-host"))
            .arg("--state-dir")
            .arg(&state)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("mfp-host runs")
    };
    let out = run(&["relay", "--listen", "0.0.0.0:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[relay-open]"), "{stderr}");
    assert!(stderr.contains("remedy: Add --allow CIDR"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(&["relay", "--listen", "127.0.0.1:0", "--allow", "10.0.0.1/8"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[relay-allow-invalid]"), "{stderr}");
    assert!(stderr.contains("10.0.0.1/8"), "{stderr}");
}

/// `mfp-host history` lists a relayed message by sender, recipient count and size, and
/// never its subject or body. Breaking it: putting the Subject in the summary.
#[test]
fn history_lists_relayed_messages_without_their_content() {
    let signed = Signed::start();
    let relay = signed.relay(&[]);
    let mut message = b"From: Scanner <mfp@contoso.com>\r\nTo: alice@contoso.com\r\nSubject: Payroll-March-Confidential\r\n\r\n".to_vec();
    while message.len() < 1_500 {
        message.extend_from_slice(b"salary-line-secret 4200\r\n");
    }
    let file = signed.dir.path().join("message.eml");
    std::fs::write(&file, &message).unwrap();
    let out = stdout_of(&python(
        &relay,
        signed.dir.path(),
        SEND,
        &[file.to_str().unwrap()],
    ));
    assert!(out.contains("accepted {}"), "{out}");

    let out = signed.run(&["history"]);
    let text = stdout_of(&out);
    let entry = text
        .lines()
        .find(|l| l.contains(" relayed "))
        .unwrap_or_else(|| panic!("no relayed entry:\n{text}"));
    assert!(entry.contains(" ok "), "{entry}");
    assert!(
        entry.contains("as mfp@contoso.com to 2 recipients"),
        "{entry}"
    );
    let size = format!("({:.1} kB", message.len() as f64 / 1e3);
    assert!(entry.contains(&size), "{entry} should say {size}");
    assert!(!text.contains("Payroll"), "the subject leaked:\n{text}");
    assert!(
        !text.contains("salary-line-secret"),
        "the body leaked:\n{text}"
    );
}
