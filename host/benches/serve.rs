//! Figures for `mfp-host serve`, printed (never asserted):
//! - start-up: process start to the `listening on` line, and to the first 200 of the
//!   login + `GET /api/v1/smtp` sequence, median of 5 starts, with the compiled-component
//!   cache warm and with `--no-compile-cache`;
//! - panel latency under load: `GET /api/v1/smtp` (median, p95) idle, then while a
//!   `POST /api/v1/send` with a 25 MB attachment (base64 in JSON) is in flight against the
//!   demo's fake Exchange Online, and their ratio.
//!
//! Everything runs on loopback against the real binary. Run with
//! `cargo bench -p mfp-host --bench serve`.

#[allow(dead_code)]
#[path = "../tests/support/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../tests/support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../tests/support/server.rs"]
mod server;
use client::PASSWORD;
use server::Server;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const STARTS: usize = 5;
const IDLE_SAMPLES: usize = 50;
/// Upper bound of samples taken while the send runs.
const BUSY_SAMPLES_MAX: usize = 400;
/// Pause between two latency samples (a panel user, not a load generator).
const SAMPLE_GAP: Duration = Duration::from_millis(10);
/// The scan's size: 25 MB (decimal), about 33 MB once base64-encoded.
const ATTACHMENT_SIZE: usize = 25_000_000;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The value at quantile `q` (nearest rank) of `samples`, in ms.
fn quantile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(|d| ms(*d)).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A start's timings: to `listening`, to the login's 204, to the first `GET /api/v1/smtp` 200.
struct StartTimes {
    listening: Duration,
    logged_in: Duration,
    smtp_ok: Duration,
}

fn one_start(state: &Path, password_file: &Path, extra: &[&str]) -> StartTimes {
    let server = Server::start_in(state, password_file, extra, &[]);
    let deadline = server.started + Duration::from_secs(120);
    let cookie = loop {
        if let (_, Some(cookie)) = server.try_login() {
            break cookie;
        }
        assert!(Instant::now() < deadline, "no login within 120 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    let logged_in = server.started.elapsed();
    loop {
        if server.api(&cookie, "GET", "/api/v1/smtp", None).status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no 200 from GET /api/v1/smtp");
        std::thread::sleep(Duration::from_millis(5));
    }
    StartTimes {
        listening: server.to_listening,
        logged_in,
        smtp_ok: server.started.elapsed(),
    }
    // `server` is killed here.
}

fn start_up(label: &str, state: &Path, password_file: &Path, extra: &[&str]) {
    let runs: Vec<StartTimes> = (0..STARTS)
        .map(|_| one_start(state, password_file, extra))
        .collect();
    let median =
        |f: fn(&StartTimes) -> Duration| quantile(&runs.iter().map(f).collect::<Vec<_>>(), 0.5);
    let all = |f: fn(&StartTimes) -> Duration| {
        runs.iter()
            .map(|r| format!("{:.0}", ms(f(r))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("start-up, {label} (median of {STARTS}; each run in ms):");
    println!(
        "  process start -> `listening on` line: {:.1} ms  [{}]",
        median(|r| r.listening),
        all(|r| r.listening)
    );
    println!(
        "  process start -> login 204:           {:.1} ms  [{}]",
        median(|r| r.logged_in),
        all(|r| r.logged_in)
    );
    println!(
        "  process start -> first GET /api/v1/smtp 200 (after login): {:.1} ms  [{}]",
        median(|r| r.smtp_ok),
        all(|r| r.smtp_ok)
    );
}

/// The send's JSON body: one PDF-looking attachment of `size` pseudo-random bytes.
fn send_body(size: usize) -> String {
    let mut data = Vec::with_capacity(size);
    data.extend_from_slice(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < size {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = (size - data.len()).min(8);
        data.extend_from_slice(&v[..n]);
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    json!({
        "to": ["alice@contoso.com"],
        "subject": "Scan from MFP-0042",
        "body": "Scanned document attached.",
        "attachments": [{ "name": "scan-0001.pdf", "data-base64": encoded }],
    })
    .to_string()
}

/// One timed `GET /api/v1/smtp`: (start, end).
fn sample(server: &Server, cookie: &str) -> (Instant, Instant) {
    let start = Instant::now();
    let status = server.api(cookie, "GET", "/api/v1/smtp", None).status;
    let end = Instant::now();
    assert_eq!(status, 200);
    (start, end)
}

fn latency_under_send(root: &Path, password_file: &Path) {
    let state = root.join("busy-state");
    let server = Server::start_in(&state, password_file, &[], &["--demo"]);
    let cookie = server.login();
    server.demo_sign_in(&cookie);

    for _ in 0..5 {
        sample(&server, &cookie); // warm-up
    }
    let idle: Vec<Duration> = (0..IDLE_SAMPLES)
        .map(|_| {
            let (a, b) = sample(&server, &cookie);
            std::thread::sleep(SAMPLE_GAP);
            b - a
        })
        .collect();

    let body = send_body(ATTACHMENT_SIZE);
    let body_len = body.len();
    let (done_tx, done_rx) = mpsc::channel();
    let sender = std::thread::scope(|scope| {
        let send = scope.spawn(|| {
            let start = Instant::now();
            let reply = server.api_raw(&cookie, "POST", "/api/v1/send", Some(&body));
            let end = Instant::now();
            let _ = done_tx.send(());
            (start, end, reply.status, reply.body)
        });
        // Let the send's connection open before sampling.
        std::thread::sleep(Duration::from_millis(5));
        let mut busy = Vec::new();
        while busy.len() < BUSY_SAMPLES_MAX {
            if done_rx.try_recv().is_ok() {
                break;
            }
            busy.push(sample(&server, &cookie));
            std::thread::sleep(SAMPLE_GAP);
        }
        (send.join().unwrap(), busy)
    });
    let ((send_start, send_end, status, reply), busy) = sender;
    let inside: Vec<Duration> = busy
        .iter()
        .filter(|(a, b)| *a >= send_start && *b <= send_end)
        .map(|(a, b)| *b - *a)
        .collect();
    let reply: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);

    println!(
        "panel latency, GET /api/v1/smtp (fresh connection each, {} ms between samples):",
        SAMPLE_GAP.as_millis()
    );
    println!(
        "  idle:  median {:.2} ms, p95 {:.2} ms over {} samples",
        quantile(&idle, 0.5),
        quantile(&idle, 0.95),
        idle.len()
    );
    println!(
        "  send:  POST /api/v1/send, {} MB attachment ({:.1} MB JSON body): {} in {:.0} ms, size {}",
        ATTACHMENT_SIZE / 1_000_000,
        body_len as f64 / 1e6,
        status,
        ms(send_end - send_start),
        reply["size"]
    );
    println!(
        "  busy:  median {:.2} ms, p95 {:.2} ms over {} samples inside the send (of {} taken)",
        quantile(&inside, 0.5),
        quantile(&inside, 0.95),
        inside.len(),
        busy.len()
    );
    println!(
        "  ratio busy/idle: median {:.2}x, p95 {:.2}x",
        quantile(&inside, 0.5) / quantile(&idle, 0.5),
        quantile(&inside, 0.95) / quantile(&idle, 0.95)
    );
    // `server` is killed here.
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; there are no test cases here.
    }
    let root = tempfile::tempdir().unwrap();
    let password_file: PathBuf = root.path().join("admin-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();

    let warm = root.path().join("warm-state");
    // One run to fill the compiled-component cache in the state dir.
    one_start(&warm, &password_file, &[]);
    start_up("compile cache warm", &warm, &password_file, &[]);
    let uncached = root.path().join("uncached-state");
    // One run to create the state dir, so both series start from an existing one.
    one_start(&uncached, &password_file, &["--no-compile-cache"]);
    start_up(
        "--no-compile-cache",
        &uncached,
        &password_file,
        &["--no-compile-cache"],
    );

    latency_under_send(root.path(), &password_file);
}
