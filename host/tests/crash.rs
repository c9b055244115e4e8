//! Crash safety under SIGKILL (issue 12, "Crash safety"): the real `mfp-host` binary,
//! signed in to the Microsoft stand-ins on loopback, is killed at random points of
//! settings commits, sends that rotate the refresh token, and `auth status`. The identity
//! stand-in keeps redeemed refresh tokens valid, as Entra ID does, and issues access
//! tokens that expire within the device's refresh margin, so every send refreshes first.
//!
//! After every kill the harness checks, with nothing of the device running:
//!
//! - the store opens (in this process, through the host's own `DurableStore`), and every
//!   record the device wrote reads back whole;
//! - every key holds its old or its new value, never a mix: the settings (three fields
//!   written by one `settings set`, all of one generation), the grant (both tokens as
//!   before, or both issued by the stand-in during the killed call);
//! - the refresh token on disk still works: the stand-in redeems it;
//! - a send killed after its message reached the server is in `mfp-host history`, as sent
//!   or as "may have been delivered" (`send-outcome-unknown`), and every send the journal
//!   still holds is shown that way;
//! - the next calls succeed (every call that ended before its kill exited 0), and a last
//!   send after the run goes through.
//!
//! A refresh killed while it holds the refresh lease leaves the lease for its 120 s: the
//! next send must go through with the access token on disk, and the harness then deletes
//! the lease as if that time had passed, so later kills still land in refreshes. SIGKILL
//! ends the process, not the machine: what the kernel already had of a write survives,
//! so this covers the device's commit order, not the disk's (SQLite's WAL and
//! `synchronous=FULL` cover a power cut).
//!
//! `ten_sigkills…` runs in the normal suite; the long run (`scripts/crash-test`, 200 kills
//! by default, `CRASH_KILLS` and `CRASH_SEED` to change) is `#[ignore]`d. Both print the
//! kill points they hit and the outcomes.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Approval, Scenario, SmtpCase, World};
use mfp_host::capabilities::store::DurableStore;
use mfp_smtp_oauth::history::{HISTORY_KEY, History};
use mfp_smtp_oauth::mailer::journal::{JOURNAL_KEY, Journal, OUTCOME_UNKNOWN};
use mfp_smtp_oauth::settings::Settings;
use mfp_smtp_oauth::signin::{Account, TokenSet};
use mfp_smtp_oauth::storage::{
    ACCOUNT_KEY, GRANT_KEY, REFRESH_LEASE_KEY, SETTINGS_KEY, SMTP_DESTINATION_KEY, decode,
};
use serde_json::Value;

const RECIPIENT: &str = "alice@fabrikam.com";
/// The diagnosis of a send whose final reply did not come while the device waited.
const FINAL_REPLY_MISSING: &str = "smtp-final-reply-missing";
/// How long the slow server of half the sends takes to answer the final dot: a window in
/// which the message is delivered and its outcome not yet known to the device.
const SLOW_FINAL_REPLY_MS: u32 = 400;
/// How long the identity stand-in of some sends takes to answer the refresh: a window in
/// which the device holds the refresh lease and the grant is not yet rotated.
const SLOW_TOKEN_REPLY_MS: u64 = 300;
/// Below the device's refresh margin (10 minutes): each send refreshes the grant first.
const ACCESS_TOKEN_LIFETIME: u64 = 590;
/// The generation `n` of the settings is `receive-port` 2000 + n.
const PORT_BASE: u64 = 2000;

#[test]
fn ten_sigkills_leave_a_store_that_opens_and_a_grant_that_works() {
    let report = Harness::start(seed()).run(10);
    eprintln!("{report}");
}

#[test]
#[ignore = "the long run (minutes): scripts/crash-test"]
fn hundreds_of_sigkills_leave_a_store_that_opens_and_a_grant_that_works() {
    let kills = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let report = Harness::start(seed()).run(kills);
    eprintln!("{report}");
}

fn seed() -> u64 {
    std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

fn system_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the harness runs and kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// A send with a scan attached; the grant is refreshed first.
    Send,
    /// The same against a server that takes [`SLOW_FINAL_REPLY_MS`] to answer the dot.
    SlowSend,
    /// The same against an identity platform that takes [`SLOW_TOKEN_REPLY_MS`] to
    /// answer the refresh.
    SlowRefresh,
    /// `settings set` of three fields, one generation.
    Settings,
    /// `auth status --json`.
    Status,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::SlowSend => "send (slow final reply)",
            Op::SlowRefresh => "send (slow refresh)",
            Op::Settings => "settings set",
            Op::Status => "auth status",
        }
    }

    fn is_send(self) -> bool {
        matches!(self, Op::Send | Op::SlowSend | Op::SlowRefresh)
    }
}

/// What the device's store holds, read with nothing of the device running.
#[derive(Clone, Debug)]
struct OnDisk {
    generation: u64,
    access_token: String,
    refresh_token: String,
    tenant: String,
    client_id: String,
    /// Message-IDs of the sends the journal holds.
    journal: Vec<String>,
    /// Whether a refresh lease is held (by a refresh that was killed, when nothing runs).
    lease: bool,
}

/// What the stand-ins saw, before a call.
struct Seen {
    token_requests: u64,
    smtp_connections: u64,
    messages: HashSet<String>,
    secrets: HashSet<String>,
}

struct Harness {
    world: World,
    base: Scenario,
    flags: Vec<String>,
    state: PathBuf,
    scan: PathBuf,
    out: PathBuf,
    seed: u64,
    rng: Rng,
    disk: OnDisk,
    /// The longest unkilled run of each call, measured at the start: kills land within it.
    durations: BTreeMap<Op, Duration>,
    /// (call, kill point) -> count.
    points: BTreeMap<(String, String), u32>,
    kills: u32,
    completed: u32,
    /// Refresh leases left by killed refreshes (see [`Harness::outlive_lease`]).
    leases_outlived: u32,
    _fakes: LoopbackMicrosoft,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// The stand-ins, a device signed in, the settings at generation 0, and each call's
    /// duration measured.
    fn start(seed: u64) -> Self {
        let base = Scenario {
            approval: Approval::AfterPolls(0),
            ..Scenario::default()
        };
        let world = World::new(base.clone());
        world.update_settings(|s| {
            assert!(
                !s.single_use_refresh_tokens,
                "Entra keeps redeemed refresh tokens valid"
            );
            s.access_token_lifetime = Some(ACCESS_TOKEN_LIFETIME);
            // The harness sends far more than a mailbox may per minute.
            s.messages_per_minute = u32::MAX;
            s.max_connections_per_account = u32::MAX;
        });
        let fakes = LoopbackMicrosoft::start(world.clone()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let flags = fakes.host_flags(&dir.path().join("test-ca.pem")).unwrap();
        let scan = dir.path().join("scan.pdf");
        let pdf: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&scan, pdf).unwrap();
        let mut harness = Self {
            world,
            base,
            flags,
            state: dir.path().join("state"),
            scan,
            out: dir.path().join("out"),
            seed,
            rng: Rng(seed | 1),
            disk: OnDisk {
                generation: 0,
                access_token: String::new(),
                refresh_token: String::new(),
                tenant: String::new(),
                client_id: String::new(),
                journal: Vec::new(),
                lease: false,
            },
            durations: BTreeMap::new(),
            points: BTreeMap::new(),
            kills: 0,
            completed: 0,
            leases_outlived: 0,
            _fakes: fakes,
            _dir: dir,
        };
        std::fs::create_dir_all(&harness.out).unwrap();
        harness.must(&["settings", "set", "service-provider", "exchange-online"]);
        harness.must(&["auth", "login"]);
        harness.must(&settings_args(0));
        harness.disk = harness.read_disk(None, None);
        for op in [
            Op::Send,
            Op::SlowSend,
            Op::SlowRefresh,
            Op::Settings,
            Op::Status,
        ] {
            for _ in 0..3 {
                let started = Instant::now();
                let generation = harness.disk.generation + 1;
                harness.prepare(op);
                harness.must(&harness.args(op, generation));
                let took = started.elapsed();
                let longest = harness.durations.entry(op).or_default();
                *longest = (*longest).max(took);
                harness.disk = harness.read_disk((op == Op::Settings).then_some(generation), None);
                harness.settle();
            }
        }
        harness
    }

    fn context(&self) -> String {
        format!(
            "seed {} (CRASH_SEED={} reproduces), after {} kills",
            self.seed, self.seed, self.kills
        )
    }

    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mfp-host"));
        command
            .arg("--state-dir")
            .arg(&self.state)
            .args(&self.flags)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs `args` to its end; it must exit 0.
    fn must<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.command(args).output().expect("mfp-host runs");
        assert!(
            out.status.success(),
            "{:?} failed ({}): {}\n{}",
            args.iter()
                .map(|a| a.as_ref().to_owned())
                .collect::<Vec<_>>(),
            self.context(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn args(&self, op: Op, generation: u64) -> Vec<String> {
        match op {
            Op::Send | Op::SlowSend | Op::SlowRefresh => [
                "send",
                "--to",
                RECIPIENT,
                "--subject",
                "Crash test",
                "--attach",
                &self.scan.display().to_string(),
                "--json",
            ]
            .map(str::to_owned)
            .to_vec(),
            Op::Settings => settings_args(generation),
            Op::Status => ["auth", "status", "--json"].map(str::to_owned).to_vec(),
        }
    }

    /// Sets the stand-ins up for `op`.
    fn prepare(&self, op: Op) {
        if op == Op::SlowRefresh {
            self.world.before_next_token_reply(|| {
                std::thread::sleep(Duration::from_millis(SLOW_TOKEN_REPLY_MS));
            });
        }
        let smtp = match op {
            Op::SlowSend => SmtpCase::SlowFinalReply {
                millis: SLOW_FINAL_REPLY_MS,
            },
            _ => SmtpCase::Normal,
        };
        self.world.set_scenario(Scenario {
            smtp,
            ..self.base.clone()
        });
    }

    /// Back to the plain stand-ins after a call (a slow refresh the call did not reach
    /// must not slow the next).
    fn settle(&self) {
        self.world.set_scenario(self.base.clone());
        self.world.before_next_token_reply(|| {});
    }

    fn seen(&self) -> Seen {
        Seen {
            token_requests: self.world.requests("token"),
            smtp_connections: self.world.requests("smtp"),
            messages: self.message_ids(),
            secrets: self.world.issued_secrets().into_iter().collect(),
        }
    }

    fn message_ids(&self) -> HashSet<String> {
        self.world
            .messages()
            .into_iter()
            .map(|m| m.message_id)
            .collect()
    }

    /// Runs `args`, SIGKILLed after `delay` unless it ended before: `None` when killed.
    fn run_killed(&self, args: &[String], delay: Duration) -> (Option<ExitStatus>, String) {
        let stdout = self.out.join("stdout");
        let stderr = self.out.join("stderr");
        let mut child = self
            .command(args)
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("mfp-host runs");
        std::thread::sleep(delay);
        let status = match child.try_wait().unwrap() {
            Some(status) => Some(status),
            None => {
                // SIGKILL on Unix: no destructor, no flush, no handler runs.
                child.kill().unwrap();
                child.wait().unwrap();
                None
            }
        };
        let output = format!(
            "{}{}",
            std::fs::read_to_string(stdout).unwrap_or_default(),
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
        (status, output)
    }

    /// Kills calls until `kills` were killed; every check after each.
    fn run(mut self, kills: u32) -> String {
        let started = Instant::now();
        let mut runs = 0;
        while self.kills < kills {
            runs += 1;
            assert!(
                runs < kills * 4 + 20,
                "too few calls were killed: {}",
                self.context()
            );
            let op = match self.rng.below(20) {
                0..=4 => Op::Send,
                5..=8 => Op::SlowSend,
                9..=12 => Op::SlowRefresh,
                13..=17 => Op::Settings,
                _ => Op::Status,
            };
            let window = self.durations[&op].mul_f64(1.5).as_millis() as u64;
            let delay = Duration::from_millis(self.rng.below(window + 1));
            let generation = self.disk.generation + 1;
            let args = self.args(op, generation);
            self.prepare(op);
            let before = self.seen();
            let (status, output) = self.run_killed(&args, delay);
            self.settle();
            let attempted = (op == Op::Settings).then_some(generation);
            let point = match status {
                Some(status) => {
                    assert!(
                        status.success(),
                        "{} ended on its own with {status} ({}): {output}",
                        op.name(),
                        self.context()
                    );
                    self.completed += 1;
                    self.disk = self.read_disk(attempted, Some(&before));
                    if op == Op::Settings {
                        assert_eq!(self.disk.generation, generation, "{}", self.context());
                    }
                    if op.is_send() {
                        self.check_sends(&before, true);
                    }
                    "ended before the kill".to_owned()
                }
                None => {
                    self.kills += 1;
                    let journal_before: HashSet<String> =
                        self.disk.journal.iter().cloned().collect();
                    let generation_before = self.disk.generation;
                    self.disk = self.read_disk(attempted, Some(&before));
                    match op {
                        Op::Settings if self.disk.generation == generation_before => {
                            "before the commit: old settings".to_owned()
                        }
                        Op::Settings => "after the commit: new settings".to_owned(),
                        Op::Status => "killed".to_owned(),
                        Op::Send | Op::SlowSend | Op::SlowRefresh => {
                            let journaled = self
                                .disk
                                .journal
                                .iter()
                                .any(|id| !journal_before.contains(id));
                            self.kill_point_of_send(&before, journaled)
                        }
                    }
                }
            };
            *self
                .points
                .entry((op.name().to_owned(), point))
                .or_default() += 1;
            self.refresh_token_works();
            if self.disk.lease {
                self.outlive_lease();
            }
        }
        // The device carries on: a send goes through, and records it.
        let before = self.seen();
        self.must(&self.args(Op::Send, 0));
        self.disk = self.read_disk(None, Some(&before));
        self.check_sends(&before, true);
        self.refresh_token_works();
        self.report(started.elapsed())
    }

    /// A refresh was killed holding the lease: the next send must still go through with
    /// the access token on disk; then the harness deletes the lease, as if its 120 s had
    /// passed, so that later sends rotate the grant again instead of waiting it out.
    fn outlive_lease(&mut self) {
        let before = self.seen();
        self.must(&self.args(Op::Send, 0));
        self.disk = self.read_disk(None, Some(&before));
        self.check_sends(&before, true);
        self.leases_outlived += 1;
        let store = DurableStore::open(&self.state).unwrap();
        store
            .commit(&[(REFRESH_LEASE_KEY.to_owned(), None)])
            .unwrap();
        self.disk.lease = false;
    }

    /// Where a killed send was, from what the stand-ins and the device recorded; checks
    /// that a message the server received is in the history.
    fn kill_point_of_send(&self, before: &Seen, journaled: bool) -> String {
        let delivered = self.check_sends(before, false);
        let point = if let Some(sent) = delivered {
            match sent {
                true => "after the outcome was recorded: sent",
                false => "after delivery, before the outcome was recorded: may have been delivered",
            }
        } else if journaled {
            "after the data, before the server took the final dot: may have been delivered"
        } else if self.world.requests("smtp") > before.smtp_connections {
            "during the SMTP session, before the data ended"
        } else if self.world.requests("token") > before.token_requests {
            "during the token refresh"
        } else {
            "before any request (start-up, settings read)"
        };
        point.to_owned()
    }

    /// Checks the history against the mailbox: every message the server received since
    /// `before` is in `mfp-host history` as sent or as "may have been delivered" (only
    /// sent when the call `ended`), and every send the journal holds shows as "may have
    /// been delivered". Returns, for a message received, whether it shows as sent.
    fn check_sends(&self, before: &Seen, ended: bool) -> Option<bool> {
        let history: Vec<Value> = serde_json::from_str(&self.must(&["history", "--json"]))
            .unwrap_or_else(|e| panic!("history --json: {e} ({})", self.context()));
        let about = |id: &str| -> Vec<&Value> {
            history
                .iter()
                .filter(|e| e["summary"].as_str().is_some_and(|s| s.contains(id)))
                .collect()
        };
        let code = |e: &Value| e["diagnosis"]["code"].as_str().unwrap_or("").to_owned();
        for id in &self.disk.journal {
            assert!(
                about(id).iter().any(|e| code(e) == OUTCOME_UNKNOWN),
                "the journal holds {id}, which the history does not show: {history:#?} ({})",
                self.context()
            );
        }
        let new: Vec<String> = self
            .message_ids()
            .into_iter()
            .filter(|id| !before.messages.contains(id))
            .collect();
        assert!(
            new.len() == usize::from(ended) || (!ended && new.len() <= 1),
            "one call sent {new:?} ({})",
            self.context()
        );
        let id = new.first()?;
        let entries = about(id);
        let sent = entries.iter().any(|e| e["succeeded"] == true);
        let maybe = entries
            .iter()
            .any(|e| [OUTCOME_UNKNOWN, FINAL_REPLY_MISSING].contains(&code(e).as_str()));
        assert!(
            sent || maybe,
            "the server received {id}, which the history does not report: {entries:#?} ({})",
            self.context()
        );
        if ended {
            assert!(sent, "a send that ended is recorded as sent: {entries:#?}");
        }
        Some(sent)
    }

    /// Opens the store as the device does and checks every record: each reads back
    /// whole, the settings are of one generation (the last committed or `attempted`), the
    /// grant is as before or wholly new from the stand-in (since `before`).
    fn read_disk(&self, attempted: Option<u64>, before: Option<&Seen>) -> OnDisk {
        let ctx = self.context();
        let store = DurableStore::open(&self.state)
            .unwrap_or_else(|e| panic!("the store does not open: {e} ({ctx})"));
        let get = |key: &str| {
            store
                .get(key)
                .unwrap_or_else(|e| panic!("{key}: {e} ({ctx})"))
                .unwrap_or_else(|| panic!("{key} is missing ({ctx})"))
        };
        let settings: Settings = decode(SETTINGS_KEY, &get(SETTINGS_KEY))
            .unwrap_or_else(|e| panic!("{SETTINGS_KEY}: {e} ({ctx})"));
        let generation = u64::from(settings.receive_port).saturating_sub(PORT_BASE);
        assert_eq!(
            (
                settings.consent_redirect_uri.as_str(),
                settings.from.guest_edit
            ),
            (
                consent_uri(generation).as_str(),
                generation.is_multiple_of(2)
            ),
            "the settings mix two generations ({ctx})"
        );
        assert!(
            generation == self.disk.generation || Some(generation) == attempted,
            "generation {generation}: neither the old ({}) nor the new ({attempted:?}) ({ctx})",
            self.disk.generation
        );
        assert_eq!(
            get(SMTP_DESTINATION_KEY),
            b"smtp.office365.com:587",
            "{ctx}"
        );
        let grant: TokenSet =
            decode(GRANT_KEY, &get(GRANT_KEY)).unwrap_or_else(|e| panic!("grant: {e} ({ctx})"));
        let (access, refresh) = (
            grant.access_token.expose().to_owned(),
            grant.refresh_token.expose().to_owned(),
        );
        if let Some(before) = before {
            let old = (
                access == self.disk.access_token,
                refresh == self.disk.refresh_token,
            );
            let issued_since =
                |t: &String| !before.secrets.contains(t) && self.world.issued_secrets().contains(t);
            assert!(
                old == (true, true) || (issued_since(&access) && issued_since(&refresh)),
                "the grant is neither the old one nor one the stand-in issued in this call: old access {}, old refresh {} ({ctx})",
                old.0,
                old.1
            );
        }
        let _: Account = decode(ACCOUNT_KEY, &get(ACCOUNT_KEY))
            .unwrap_or_else(|e| panic!("account: {e} ({ctx})"));
        if let Some(history) = store.get(HISTORY_KEY).unwrap() {
            let _: History =
                decode(HISTORY_KEY, &history).unwrap_or_else(|e| panic!("history: {e} ({ctx})"));
        }
        let journal = match store.get(JOURNAL_KEY).unwrap() {
            None => Vec::new(),
            Some(bytes) => decode::<Journal>(JOURNAL_KEY, &bytes)
                .unwrap_or_else(|e| panic!("journal: {e} ({ctx})"))
                .sends
                .into_iter()
                .map(|s| s.message_id)
                .collect(),
        };
        OnDisk {
            generation,
            access_token: access,
            refresh_token: refresh,
            tenant: settings.tenant,
            client_id: settings.client_id,
            journal,
            lease: store.get(REFRESH_LEASE_KEY).unwrap().is_some(),
        }
    }

    /// The refresh token on disk is redeemed by the stand-in (as the device would do at
    /// its next send); redeeming keeps it valid, as with Entra.
    fn refresh_token_works(&self) {
        let scope = mfp_fakes::DEVICE_SCOPE
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace(' ', "%20");
        let body = format!(
            "client_id={}&grant_type=refresh_token&refresh_token={}&scope={scope}",
            self.disk.client_id, self.disk.refresh_token
        );
        let response = mfp_fakes::handle_http(
            &self.world,
            "POST",
            &format!("/{}/oauth2/v2.0/token", self.disk.tenant),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
            system_now(),
        );
        assert_eq!(
            response.status,
            200,
            "the refresh token on disk no longer works: {} ({})",
            String::from_utf8_lossy(&response.body),
            self.context()
        );
    }

    fn report(&self, took: Duration) -> String {
        let mut text = format!(
            "crash test: {} SIGKILLs in {} calls ({} ended before their kill), {:.0} s, seed {}\n\
             every check held after each: store opens, records whole, old-or-new values, refresh token redeemable, delivered sends reported\n\
             refresh leases left by a killed refresh: {} (a send went through with the lease held, then the lease was deleted as if expired)\n\
             kill windows (longest of 3 unkilled runs +50%):",
            self.kills,
            self.kills + self.completed,
            self.completed,
            took.as_secs_f64(),
            self.seed,
            self.leases_outlived
        );
        for (op, d) in &self.durations {
            text.push_str(&format!(" {} {} ms;", op.name(), d.as_millis()));
        }
        text.push_str("\nkill points:\n");
        for ((op, point), n) in &self.points {
            text.push_str(&format!("  {n:>4}  {op}: {point}\n"));
        }
        text
    }
}

fn consent_uri(generation: u64) -> String {
    format!("https://consent.example.com/generation/{generation}")
}

/// `settings set` of the three fields of `generation`, in one Apply.
fn settings_args(generation: u64) -> Vec<String> {
    [
        "settings".to_owned(),
        "set".into(),
        "receive-port".into(),
        (PORT_BASE + generation).to_string(),
        "consent-redirect-uri".into(),
        consent_uri(generation),
        "from.guest-edit".into(),
        if generation.is_multiple_of(2) {
            "yes"
        } else {
            "no"
        }
        .into(),
    ]
    .to_vec()
}
