//! Figures for sending one 25 MB scan, printed (never asserted):
//! - wall time of one send through mfp-host (the real component through wasmtime, reading
//!   the PDF in chunks through the `attachments` capability) versus the same message sent
//!   with `lettre` (native Rust SMTP client, rustls), both over loopback STARTTLS and
//!   AUTH XOAUTH2 to the fake Exchange Online, median of 3 runs each, and their ratio;
//! - the process's peak RSS (VmHWM) during the mfp-host sends, read before the lettre runs
//!   (which hold the whole message in memory) since the high-water mark cannot be reset.
//!
//! Run with `cargo bench -p mfp-host --bench send`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Message, SmtpTransport, Transport};
use mfp_fakes::net::{LoopbackMicrosoft, manual_clock};
use mfp_fakes::{Scenario, World};
use mfp_host::bindings::mailer::OutgoingMessage;
use mfp_host::bindings::signin::PollStatus;
use mfp_host::bindings::types::Origin;
use mfp_host::capabilities::attachments::AttachmentSet;
use mfp_host::capabilities::net::NetConfig;
use mfp_host::device::{Device, DeviceOptions};

/// The scan's size: 25 MB (decimal), about 34 MB once base64-encoded, under Exchange
/// Online's 35 MB message limit.
const PDF_SIZE: usize = 25_000_000;
const RUNS: usize = 3;
const UPN: &str = "mfp@contoso.com";
const TO: &str = "alice@contoso.com";
const SUBJECT: &str = "Scan from MFP-0042";
const BODY: &str = "Scanned document attached.";
const FILE_NAME: &str = "scan-0001.pdf";
const SMTP_SCOPE: &str = "https://outlook.office.com/SMTP.Send offline_access openid profile email";

/// Writes a PDF-looking file of `size` bytes (`%PDF-1.7` header, then pseudo-random bytes)
/// in 1 MiB chunks, so generating it does not raise this process's peak RSS.
fn write_pdf(path: &Path, size: usize) {
    let mut out = BufWriter::new(File::create(path).unwrap());
    let header = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
    out.write_all(header).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size - header.len();
    let mut chunk = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(chunk.len());
        for word in chunk[..n].chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let v = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            word.copy_from_slice(&v[..word.len()]);
        }
        out.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

/// A `/proc/self/status` field in KiB (e.g. `VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn millis(samples: &[f64]) -> String {
    samples
        .iter()
        .map(|s| format!("{s:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The two fakes on loopback, sharing one world and one hand-driven clock.
struct Microsoft {
    world: World,
    clock: Arc<AtomicU64>,
    fakes: LoopbackMicrosoft,
}

impl Microsoft {
    fn start() -> Self {
        let world = World::new(Scenario::default());
        let start = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let (fake_clock, clock) = manual_clock(start.as_secs());
        let fakes = LoopbackMicrosoft::start_with_clock(world.clone(), fake_clock).unwrap();
        Self {
            world,
            clock,
            fakes,
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn advance(&self, seconds: u64) -> u64 {
        self.clock.fetch_add(seconds, Ordering::SeqCst) + seconds
    }

    /// Selects Exchange Online and signs the device in (approved on the fake's page).
    fn signed_in_device(&self, dir: &Path) -> Device {
        let mut opts = DeviceOptions::new(dir);
        let mut net = NetConfig {
            authority: self.fakes.authority().into(),
            ..NetConfig::default()
        };
        net.reach_stand_ins(&self.fakes.resolve_rules(), self.fakes.ca_pem())
            .unwrap();
        opts.net = Some(net);
        let device = Device::open(opts).unwrap();
        device
            .apply(
                Origin::WebPanel,
                &[("service-provider".into(), "exchange-online".into())],
            )
            .unwrap();
        let code = device.signin_start(self.now()).unwrap();
        self.world
            .approve(&code.user_code, Duration::from_secs(self.now()))
            .unwrap();
        let at = self.advance(u64::from(code.interval));
        match device.signin_poll(at).unwrap() {
            PollStatus::SignedIn(_) => device,
            other => panic!("not signed in: {other:?}"),
        }
    }

    /// An SMTP.Send access token for the same account, from the identity fake's own
    /// device code flow (the same handler the device's requests reach over HTTPS).
    fn access_token(&self) -> String {
        let now = Duration::from_secs(self.now());
        let post = |endpoint: &str, form: &[(&str, &str)]| -> serde_json::Value {
            let body = form_urlencoded(form);
            let reply = mfp_fakes::handle_http(
                &self.world,
                "POST",
                &format!("/organizations/oauth2/v2.0/{endpoint}"),
                &[("content-type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
                now,
            );
            assert_eq!(
                reply.status,
                200,
                "{}",
                String::from_utf8_lossy(&reply.body)
            );
            serde_json::from_slice(&reply.body).unwrap()
        };
        let client = "9e5f94bc-e8a4-4e73-b8be-63364c29d753";
        let code = post(
            "devicecode",
            &[("client_id", client), ("scope", SMTP_SCOPE)],
        );
        self.world
            .approve(code["user_code"].as_str().unwrap(), now)
            .unwrap();
        let tokens = post(
            "token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", client),
                ("device_code", code["device_code"].as_str().unwrap()),
            ],
        );
        tokens["access_token"].as_str().unwrap().to_owned()
    }
}

/// `application/x-www-form-urlencoded` for the few plain values used here.
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn mfp_send(ms: &Microsoft, device: &Device, pdf: &Path) -> f64 {
    let start = Instant::now();
    let files = AttachmentSet::from_paths(&[pdf.to_path_buf()]).unwrap();
    let message = OutgoingMessage {
        to: vec![TO.into()],
        from: None,
        user: mfp_host::bindings::mailer::WalkUpUser::Unauthenticated,
        subject: SUBJECT.into(),
        body: BODY.into(),
        attachments: files.ids(),
        attempt: 1,
    };
    let report = device.send(&message, files, ms.now()).unwrap();
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    assert!(report.server_reply.starts_with("250"), "{report:?}");
    elapsed
}

fn lettre_transport(ms: &Microsoft, token: &str) -> SmtpTransport {
    // lettre puts the XOAUTH2 response on the AUTH line (beyond 512 octets), which
    // Exchange Online tolerates and the strict fake refuses by default.
    ms.world
        .update_settings(|s| s.max_command_line = mfp_fakes::exchange::MAX_LINE);
    let root = Certificate::from_pem(ms.fakes.ca_pem()).unwrap();
    let tls = TlsParameters::builder("smtp.office365.com".into())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(root)
        .build_rustls()
        .unwrap();
    let exchange = ms.fakes.exchange_addr();
    SmtpTransport::builder_dangerous(exchange.ip().to_string())
        .port(exchange.port())
        .tls(Tls::Required(tls))
        .hello_name(ClientId::Domain("mfp-0042.contoso.com".into()))
        .credentials(Credentials::new(UPN.into(), token.into()))
        .authentication(vec![Mechanism::Xoauth2])
        .timeout(Some(Duration::from_secs(120)))
        .build()
}

/// Reads the file, builds the message and sends it: what the device does, natively.
fn lettre_send(transport: &SmtpTransport, pdf: &Path) -> f64 {
    let start = Instant::now();
    let bytes = std::fs::read(pdf).unwrap();
    let message = Message::builder()
        .from(UPN.parse().unwrap())
        .to(TO.parse().unwrap())
        .subject(SUBJECT)
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(BODY.to_owned()))
                .singlepart(
                    Attachment::new(FILE_NAME.into())
                        .body(bytes, ContentType::parse("application/pdf").unwrap()),
                ),
        )
        .unwrap();
    let reply = transport.send(&message).unwrap();
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    assert!(reply.is_positive());
    elapsed
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; there are no test cases here.
    }
    let dir = tempfile::tempdir().unwrap();
    let pdf: PathBuf = dir.path().join(FILE_NAME);
    write_pdf(&pdf, PDF_SIZE);
    let state = dir.path().join("device");

    // Fill the compile cache in a child process, so compiling the component (cranelift)
    // does not set this process's high-water mark before the send is measured.
    let out = Command::new(env!("CARGO_BIN_EXE_mfp-host"))
        .arg("--state-dir")
        .arg(&state)
        .args(["settings", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let ms = Microsoft::start();
    let device = ms.signed_in_device(&state);
    println!(
        "message: {PDF_SIZE} bytes PDF attachment ({:.1} MiB), loopback STARTTLS + AUTH XOAUTH2 to the fake Exchange Online; compiled component: {:?}",
        PDF_SIZE as f64 / (1 << 20) as f64,
        device.cache_outcome()
    );

    let rss_before = status_kib("VmRSS");
    let hwm_before = status_kib("VmHWM");
    let mfp: Vec<f64> = (0..RUNS).map(|_| mfp_send(&ms, &device, &pdf)).collect();
    let hwm_after = status_kib("VmHWM");
    let mfp_wire = ms
        .world
        .messages()
        .last()
        .map(|m| (m.size, m.raw.is_some()));

    let token = ms.access_token();
    let transport = lettre_transport(&ms, &token);
    let native: Vec<f64> = (0..RUNS).map(|_| lettre_send(&transport, &pdf)).collect();
    let lettre_wire = ms.world.messages().last().map(|m| m.size);
    let hwm_lettre = status_kib("VmHWM");

    let (mfp_ms, lettre_ms) = (median(mfp.clone()), median(native.clone()));
    println!(
        "send, median of {RUNS}: mfp-host {mfp_ms:.0} ms [{}], lettre {lettre_ms:.0} ms [{}], ratio mfp/lettre {:.2}x (target <= 1.0x)",
        millis(&mfp),
        millis(&native),
        mfp_ms / lettre_ms
    );
    if let (Some((mfp_size, kept)), Some(lettre_size)) = (mfp_wire, lettre_wire) {
        println!(
            "message size as received: mfp-host {mfp_size} bytes, lettre {lettre_size} bytes; the fake kept {} (it keeps only headers, size and SHA-256 of messages over 4 MiB, so the server side adds little to this process's RSS)",
            if kept {
                "the whole message"
            } else {
                "only the SHA-256"
            }
        );
    }
    println!(
        "peak RSS of the process (VmHWM) during the mfp-host sends: {:.1} MiB (target <= 64 MiB); before the sends: RSS {:.1} MiB, VmHWM {:.1} MiB; delta over RSS before {:.1} MiB",
        mib(hwm_after),
        mib(rss_before),
        mib(hwm_before),
        mib(hwm_after.saturating_sub(rss_before))
    );
    println!(
        "(for reference, VmHWM after the lettre runs, which hold the whole message: {:.1} MiB)",
        mib(hwm_lettre)
    );
}
