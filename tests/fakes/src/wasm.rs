//! The stand-ins for the browser preview (feature `wasm`, built for
//! `wasm32-unknown-unknown` and bound with wasm-bindgen): the page's `net` capability calls
//! these, so the component in the page runs its real device-code and SMTP session code
//! against the same handlers that answer the wasmtime tests and `mfp-host serve --demo`.
//!
//! What the loopback wrappers of `net` do with sockets and TLS is done here on values: an
//! HTTPS request is one call; an SMTP connection is an id whose replies wait in a queue for
//! the component's reads; STARTTLS is simulated (the page says so): `start_tls` succeeds
//! only after the server agreed and only for the name the connection was opened to.
//!
//! The world is held by the page; [`Fakes::snapshot`] and [`Fakes::restore`] carry the
//! issued codes and tokens and the mailbox across a reload (the device's own state is in
//! the page's store), so a device signed in before a reload still sends afterwards.
//!
//! Time is always passed in by the page (`now_ms`, milliseconds since the Unix epoch), so a
//! test drives a fake clock. Failures come back as JSON strings thrown to JavaScript,
//! `{"tag": …, "val": …}` in the shape of the WIT `net-error` cases, which the page hands
//! to the component unchanged.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use crate::exchange::SmtpSession;
use crate::scenario::{Approval, Case, approval_words};
use crate::world::{AccessGrant, Account, Decision, DeviceGrant, ReceivedMessage, RefreshGrant};
use crate::{ApprovalError, World, catalogue};

/// The SMTP server the preview's Exchange Online answers as (its simulated certificate
/// names it).
pub const SMTP_HOST: &str = "smtp.office365.com";
/// The submission port it listens on.
pub const SMTP_PORT: u16 = 587;
/// The peer address the Exchange fake sees (shown in its EHLO reply).
const PEER: &str = "192.0.2.1";
/// Connections open at once, at most; a component that leaks them gets `refused`.
const MAX_CONNECTIONS: usize = 16;
/// Messages a snapshot keeps (newest), and the largest whose whole bytes it keeps.
const SNAPSHOT_MESSAGES: usize = 20;
const SNAPSHOT_RAW_UP_TO: usize = 256 * 1024;

fn duration(now_ms: f64) -> Duration {
    if now_ms.is_finite() && now_ms > 0.0 {
        Duration::from_millis(now_ms as u64)
    } else {
        Duration::ZERO
    }
}

/// A `net-error` case as JSON text, thrown to the page.
fn net_error(tag: &str, val: Option<&str>) -> String {
    match val {
        Some(v) => json!({ "tag": tag, "val": v }),
        None => json!({ "tag": tag }),
    }
    .to_string()
}

/// A page-level error (`{"code", "message"}`), thrown to the page.
fn page_error(code: &str, message: impl Into<String>) -> String {
    json!({ "code": code, "message": message.into() }).to_string()
}

/// One simulated SMTP connection.
struct Connection {
    session: SmtpSession,
    /// The host name the connection was opened to: the only name its certificate carries.
    host: String,
    /// Reply bytes not read yet, each chunk with the delay before it arrives.
    replies: VecDeque<(Vec<u8>, Duration)>,
    /// The server agreed to STARTTLS and waits for the handshake.
    tls_offered: bool,
    /// The server closes the connection once `replies` are read.
    closing: bool,
}

/// The stand-ins of one page: the shared world and the open SMTP connections.
#[wasm_bindgen]
pub struct Fakes {
    world: World,
    case: Case,
    connections: BTreeMap<u32, Connection>,
    next_id: u32,
}

#[wasm_bindgen]
impl Fakes {
    /// Stand-ins running the named case (`Case::name`; the manual-approval case when the
    /// name is unknown), whose device codes name `verification_uri` and ask for polls
    /// every `interval` seconds.
    #[wasm_bindgen(constructor)]
    pub fn new(case: &str, verification_uri: &str, interval: u32) -> Fakes {
        let case = Case::from_name(case).unwrap_or(Case::ManualApproval);
        let world = World::for_case(case);
        world.update_settings(|s| {
            s.verification_uri = verification_uri.chars().take(2048).collect();
            s.interval = u64::from(interval.clamp(1, 60));
        });
        Fakes {
            world,
            case,
            connections: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The scenario catalogue (`mfp_fakes::catalogue`), as JSON: each entry with its
    /// `name`, the case's `description`, and what a device must make of it.
    pub fn catalogue() -> String {
        let entries: Vec<Value> = catalogue()
            .iter()
            .map(|entry| {
                let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut value {
                    map.insert("name".into(), entry.name().into());
                    map.insert("case".into(), entry.case.name().into());
                    map.insert("description".into(), entry.case.describe().into());
                }
                value
            })
            .collect();
        Value::Array(entries).to_string()
    }

    /// Every named case, for the scenario picker: `[{name, description, current}]`.
    pub fn scenarios(&self) -> String {
        let list: Vec<Value> = Case::all()
            .into_iter()
            .map(|c| json!({ "name": c.name(), "description": c.describe(), "current": c == self.case }))
            .collect();
        Value::Array(list).to_string()
    }

    /// The current case's name.
    pub fn scenario(&self) -> String {
        self.case.name()
    }

    /// Whether codes of the current case wait for the approval page.
    pub fn manual_approval(&self) -> bool {
        self.world.scenario().approval == Approval::Manual
    }

    /// Switches to the named case; issued codes and tokens stay, as in the demo.
    pub fn set_scenario(&mut self, name: &str) -> Result<(), String> {
        let case = Case::from_name(name).ok_or_else(|| {
            page_error(
                "unknown-scenario",
                format!(
                    "There is no scenario named {:?}.",
                    name.chars().take(64).collect::<String>()
                ),
            )
        })?;
        self.world.set_case(case);
        self.case = case;
        Ok(())
    }

    /// One HTTPS request to the identity platform: `headers_json` is `[[name, value]…]`.
    /// Answers `{"status", "headers": [[name, value]…], "body-base64"}`.
    pub fn http_request(
        &self,
        method: &str,
        path: &str,
        headers_json: &str,
        body: &[u8],
        now_ms: f64,
    ) -> String {
        let headers: Vec<(String, String)> = serde_json::from_str(headers_json).unwrap_or_default();
        let response = crate::identity::handle_http(
            &self.world,
            method,
            path,
            &headers,
            body,
            duration(now_ms),
        );
        json!({
            "status": response.status,
            "headers": response.headers,
            "body-base64": STANDARD.encode(&response.body),
        })
        .to_string()
    }

    /// Opens an SMTP connection to `host:port`; the greeting waits to be read. Only
    /// [`SMTP_HOST`]:[`SMTP_PORT`] answers (`refused` otherwise, as a closed port would).
    pub fn smtp_connect(&mut self, host: &str, port: u16, now_ms: f64) -> Result<u32, String> {
        if !host.eq_ignore_ascii_case(SMTP_HOST) || port != SMTP_PORT {
            let host: String = host.chars().take(253).collect();
            return Err(net_error(
                "refused",
                Some(&format!(
                    "{host}:{port}: nothing answers there in the preview (only {SMTP_HOST}:{SMTP_PORT})"
                )),
            ));
        }
        if self.connections.len() >= MAX_CONNECTIONS {
            return Err(net_error(
                "refused",
                Some("too many connections are open in the preview"),
            ));
        }
        let session = SmtpSession::new(self.world.clone(), PEER, duration(now_ms));
        let greeting = session.greeting();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.connections.insert(
            id,
            Connection {
                session,
                host: host.to_ascii_lowercase(),
                replies: VecDeque::from([(greeting, Duration::ZERO)]),
                tls_offered: false,
                closing: false,
            },
        );
        Ok(id)
    }

    /// Reads at most `max` bytes of what the server sent. `timeout` when nothing comes
    /// within `timeout_ms` (the server waits for the client, or answers later than that),
    /// `closed` once the server hung up and everything was read.
    pub fn smtp_read(&mut self, id: u32, max: u32, timeout_ms: u32) -> Result<Vec<u8>, String> {
        let conn = self.connection(id)?;
        let Some((chunk, delay)) = conn.replies.front_mut() else {
            return Err(if conn.closing || conn.session.is_closed() {
                net_error("closed", None)
            } else {
                net_error("timeout", None)
            });
        };
        let wait = Duration::from_millis(u64::from(timeout_ms));
        if *delay > wait {
            // The reply is still on its way when the reader gives up.
            *delay -= wait;
            return Err(net_error("timeout", None));
        }
        *delay = Duration::ZERO;
        let take = chunk.len().min(max.max(1) as usize);
        let out: Vec<u8> = chunk.drain(..take).collect();
        if chunk.is_empty() {
            conn.replies.pop_front();
        }
        Ok(out)
    }

    /// Sends `data` to the server at `now_ms`; its replies queue up for reads.
    pub fn smtp_write(&mut self, id: u32, data: &[u8], now_ms: f64) -> Result<(), String> {
        let conn = self.connection(id)?;
        if conn.closing {
            return Err(net_error("closed", None));
        }
        let out = conn.session.feed(data, duration(now_ms));
        if !out.reply.is_empty() {
            conn.replies.push_back((out.reply, out.delay));
        }
        conn.tls_offered |= out.start_tls;
        conn.closing |= out.close;
        Ok(())
    }

    /// The TLS handshake, simulated: it succeeds when the server agreed to STARTTLS and
    /// `server_name` is the name the connection was opened to.
    pub fn smtp_start_tls(&mut self, id: u32, server_name: &str) -> Result<(), String> {
        let conn = self.connection(id)?;
        if !conn.tls_offered {
            return Err(net_error(
                "tls",
                Some("the server did not agree to STARTTLS (simulated TLS)"),
            ));
        }
        if !server_name.eq_ignore_ascii_case(&conn.host) {
            return Err(net_error(
                "tls",
                Some(&format!(
                    "the certificate is for {}, not {} (simulated TLS)",
                    conn.host,
                    server_name.chars().take(253).collect::<String>()
                )),
            ));
        }
        conn.tls_offered = false;
        Ok(())
    }

    /// Drops a connection (the component released it).
    pub fn smtp_close(&mut self, id: u32) {
        self.connections.remove(&id);
    }

    /// Device codes waiting for the approval page: `[{"user-code", "expires-at"}]`.
    pub fn pending_codes(&self, now_ms: f64) -> String {
        let list: Vec<Value> = self
            .world
            .pending_codes(duration(now_ms))
            .into_iter()
            .map(|c| json!({ "user-code": c.user_code, "expires-at": c.expires_at.as_secs() }))
            .collect();
        Value::Array(list).to_string()
    }

    /// The approval page: approves (or with `decline`, declines) `user_code`. Answers
    /// `{"code": "approved" | "declined", "account"?, "outcome": {"kind", "detail"?},
    /// "result", "scenario", "description"}`: how the sign-in will end under the current
    /// case (`SignInOutcome`), and `result` the page's sentence for it
    /// ([`approval_words`]), as `/demo/api/approve` says them.
    pub fn approve(&self, user_code: &str, decline: bool, now_ms: f64) -> Result<String, String> {
        let code = user_code.trim().to_ascii_uppercase();
        let scenario = self.world.scenario();
        let now = duration(now_ms);
        let case = self.case;
        let answer = if decline {
            let outcome = scenario.sign_in_outcome_when_declined();
            self.world.decline(&code, now).map(|()| {
                json!({ "code": "declined", "outcome": outcome, "result": approval_words(outcome, case, None) })
            })
        } else {
            let outcome = scenario.sign_in_outcome();
            self.world.approve(&code, now).map(|account| {
                json!({
                    "code": "approved",
                    "account": account.upn,
                    "outcome": outcome,
                    "result": approval_words(outcome, case, Some(&account.upn)),
                })
            })
        };
        let mut answer = answer.map_err(|e| {
            let code = match e {
                ApprovalError::UnknownCode(_) => "unknown-code",
                ApprovalError::Expired => "code-expired",
                ApprovalError::AlreadyDecided => "code-already-used",
                ApprovalError::UnknownAccount(_) => "unknown-account",
            };
            page_error(code, e.to_string())
        })?;
        answer["scenario"] = self.case.name().into();
        answer["description"] = self.case.describe().into();
        Ok(answer.to_string())
    }

    /// The mailbox, newest last: `[{"from", "to", "subject", "size", "attachments",
    /// "received-at", "message-id", "account"}]`, as `/demo/api/messages` lists it.
    pub fn messages(&self) -> String {
        let list: Vec<Value> = self
            .world
            .messages()
            .iter()
            .map(crate::ReceivedMessage::mailbox_entry)
            .collect();
        Value::Array(list).to_string()
    }

    /// Empties the mailbox.
    pub fn clear_messages(&self) {
        self.world.clear_messages();
    }

    /// The world as JSON, for the page to keep across a reload: the case, issued device
    /// codes, access and refresh tokens, and the newest messages.
    pub fn snapshot(&self) -> String {
        let state = self.world.lock();
        let ms = |d: Duration| d.as_millis() as u64;
        let device: Vec<Value> = state
            .device
            .iter()
            .map(|(code, g)| {
                json!({
                    "device-code": code, "user-code": g.user_code, "client-id": g.client_id,
                    "tenant": g.tenant, "scope": g.scope, "issued": ms(g.issued),
                    "expires": ms(g.expires), "interval": g.interval,
                    "last-poll": g.last_poll.map(ms), "pending-polls": g.pending_polls,
                    "slowed-once": g.slowed_once,
                    "decision": match &g.decision {
                        Decision::Pending => json!("pending"),
                        Decision::Declined => json!("declined"),
                        Decision::Approved(a) => json!({ "approved": a }),
                    },
                })
            })
            .collect();
        let access: Vec<Value> = state
            .access
            .iter()
            .map(|(token, g)| json!({ "token": token, "account": g.account, "scope": g.scope, "expires": ms(g.expires) }))
            .collect();
        let refresh: Vec<Value> = state
            .refresh
            .iter()
            .map(|(token, g)| {
                json!({
                    "token": token, "account": g.account, "client-id": g.client_id,
                    "scope": g.scope, "first-issued": ms(g.first_issued),
                    "issued": ms(g.issued), "rotated": g.rotated,
                })
            })
            .collect();
        let skip = state.mailbox.len().saturating_sub(SNAPSHOT_MESSAGES);
        let mailbox: Vec<Value> = state
            .mailbox
            .iter()
            .skip(skip)
            .map(|m| {
                json!({
                    "account": m.account, "mail-from": m.mail_from, "rcpt-to": m.rcpt_to,
                    "headers": m.headers, "size": m.size, "sha256": m.sha256,
                    "raw-base64": m.raw.as_ref().filter(|r| r.len() <= SNAPSHOT_RAW_UP_TO).map(|r| STANDARD.encode(r)),
                    "message-id": m.message_id, "received-at": ms(m.received_at),
                })
            })
            .collect();
        json!({
            "case": self.case.name(),
            "device": device,
            "access": access,
            "refresh": refresh,
            "mailbox": mailbox,
        })
        .to_string()
    }

    /// Puts back what [`Fakes::snapshot`] kept; what does not read back is left out, so a
    /// damaged snapshot costs at most a sign-in, never an error.
    pub fn restore(&mut self, snapshot: &str) {
        let Ok(value) = serde_json::from_str::<Value>(snapshot) else {
            return;
        };
        if let Some(case) = value["case"].as_str().and_then(Case::from_name) {
            self.world.set_case(case);
            self.case = case;
        }
        let now = Duration::ZERO;
        let mut state = self.world.lock();
        for g in value["device"].as_array().into_iter().flatten() {
            let decision = match &g["decision"] {
                Value::String(s) if s == "declined" => Some(Decision::Declined),
                Value::String(s) if s == "pending" => Some(Decision::Pending),
                other => account(&other["approved"]).map(Decision::Approved),
            };
            let (Some(code), Some(decision)) = (g["device-code"].as_str(), decision) else {
                continue;
            };
            let grant = DeviceGrant {
                user_code: text(&g["user-code"]),
                client_id: text(&g["client-id"]),
                tenant: text(&g["tenant"]),
                scope: text(&g["scope"]),
                issued: millis(&g["issued"]),
                expires: millis(&g["expires"]),
                interval: g["interval"].as_u64().unwrap_or(5),
                last_poll: g["last-poll"].as_u64().map(Duration::from_millis),
                pending_polls: g["pending-polls"].as_u64().unwrap_or(0) as u32,
                slowed_once: g["slowed-once"].as_bool().unwrap_or(false),
                decision,
            };
            state.insert_device(code.to_owned(), grant, now);
        }
        for g in value["access"].as_array().into_iter().flatten() {
            let (Some(token), Some(account)) = (g["token"].as_str(), account(&g["account"])) else {
                continue;
            };
            let grant = AccessGrant {
                account,
                scope: text(&g["scope"]),
                expires: millis(&g["expires"]),
            };
            state.insert_access(token.to_owned(), grant, now);
        }
        for g in value["refresh"].as_array().into_iter().flatten() {
            let (Some(token), Some(account)) = (g["token"].as_str(), account(&g["account"])) else {
                continue;
            };
            let grant = RefreshGrant {
                account,
                client_id: text(&g["client-id"]),
                scope: text(&g["scope"]),
                first_issued: millis(&g["first-issued"]),
                issued: millis(&g["issued"]),
                rotated: g["rotated"].as_bool().unwrap_or(false),
            };
            state.insert_refresh(token.to_owned(), grant, now);
        }
        drop(state);
        for m in value["mailbox"].as_array().into_iter().flatten() {
            self.world.deliver(ReceivedMessage {
                account: text(&m["account"]),
                mail_from: text(&m["mail-from"]),
                rcpt_to: m["rcpt-to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                headers: text(&m["headers"]),
                size: m["size"].as_u64().unwrap_or(0),
                sha256: text(&m["sha256"]),
                raw: m["raw-base64"]
                    .as_str()
                    .and_then(|b| STANDARD.decode(b).ok()),
                message_id: text(&m["message-id"]),
                received_at: millis(&m["received-at"]),
            });
        }
    }
}

impl Fakes {
    fn connection(&mut self, id: u32) -> Result<&mut Connection, String> {
        self.connections
            .get_mut(&id)
            .ok_or_else(|| net_error("closed", None))
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn millis(value: &Value) -> Duration {
    Duration::from_millis(value.as_u64().unwrap_or(0))
}

/// An [`Account`] as its `Serialize` wrote it.
fn account(value: &Value) -> Option<Account> {
    Some(Account {
        upn: value["upn"].as_str()?.to_owned(),
        primary: text(&value["primary"]),
        email_claim: value["email_claim"].as_bool().unwrap_or(true),
        upn_claim: value["upn_claim"].as_bool().unwrap_or(true),
        name: text(&value["name"]),
        oid: text(&value["oid"]),
        tid: text(&value["tid"]),
        aliases: value["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp_reply(fakes: &mut Fakes, id: u32) -> String {
        let mut text = String::new();
        while let Ok(bytes) = fakes.smtp_read(id, 4096, 1000) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        text
    }

    #[test]
    fn starttls_is_simulated_only_after_the_server_agreed_and_for_its_own_name() {
        let mut fakes = Fakes::new("happy", "https://microsoft.com/devicelogin", 5);
        let id = fakes.smtp_connect("smtp.office365.com", 587, 1e12).unwrap();
        assert!(smtp_reply(&mut fakes, id).starts_with("220 "));
        fakes.smtp_write(id, b"EHLO [127.0.0.1]\r\n", 1e12).unwrap();
        assert!(smtp_reply(&mut fakes, id).contains("STARTTLS"));
        fakes.smtp_write(id, b"STARTTLS\r\n", 1e12).unwrap();
        assert!(smtp_reply(&mut fakes, id).starts_with("220 "));
        assert!(fakes.smtp_start_tls(id, "evil.example").is_err());
        fakes.smtp_start_tls(id, "smtp.office365.com").unwrap();
        assert!(fakes.smtp_start_tls(id, "smtp.office365.com").is_err());
    }

    /// Issues a device code the way the component asks for one; answers its user code.
    fn issue_code(fakes: &Fakes, now_ms: f64) -> String {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("client_id", "9e5f94bc-e8a4-4e73-b8be-63364c29d753")])
            .append_pair("scope", crate::DEVICE_SCOPE)
            .finish();
        let headers = r#"[["content-type", "application/x-www-form-urlencoded"]]"#;
        let reply = fakes.http_request(
            "POST",
            "/organizations/oauth2/v2.0/devicecode",
            headers,
            body.as_bytes(),
            now_ms,
        );
        let reply: Value = serde_json::from_str(&reply).unwrap();
        let body = STANDARD
            .decode(reply["body-base64"].as_str().unwrap())
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        body["user_code"].as_str().unwrap().to_owned()
    }

    #[test]
    fn the_preview_approval_page_says_what_the_demo_page_says() {
        let now = 1.7e12;
        let fakes = Fakes::new("aadsts-53003", "https://microsoft.com/devicelogin", 5);
        let code = issue_code(&fakes, now);
        let answer: Value =
            serde_json::from_str(&fakes.approve(&code, false, now).unwrap()).unwrap();
        let case = Case::from_name("aadsts-53003").unwrap();
        let outcome = fakes.world.scenario().sign_in_outcome();
        let upn = answer["account"].as_str().unwrap();
        assert_eq!(answer["result"], approval_words(outcome, case, Some(upn)));
        assert!(
            answer["result"]
                .as_str()
                .unwrap()
                .starts_with("Blocked by Conditional Access")
        );

        let fakes = Fakes::new("manual-approval", "https://microsoft.com/devicelogin", 5);
        let code = issue_code(&fakes, now);
        let answer: Value =
            serde_json::from_str(&fakes.approve(&code, true, now).unwrap()).unwrap();
        assert_eq!(answer["code"], "declined");
        assert!(
            answer["result"]
                .as_str()
                .unwrap()
                .starts_with("You declined")
        );
    }

    #[test]
    fn a_snapshot_keeps_the_tokens_so_a_restored_world_accepts_them() {
        let fakes = Fakes::new("happy", "https://microsoft.com/devicelogin", 5);
        let account = Account::for_kind(crate::scenario::AccountKind::Work);
        fakes.world.lock().insert_access(
            "token-1".into(),
            AccessGrant {
                account: account.clone(),
                scope: crate::DEVICE_SCOPE.into(),
                expires: Duration::from_secs(5_000),
            },
            Duration::ZERO,
        );
        let mut restored = Fakes::new("manual-approval", "x", 5);
        restored.restore(&fakes.snapshot());
        assert_eq!(restored.scenario(), "happy");
        assert_eq!(
            restored.world.token_account(
                "token-1",
                crate::SMTP_SEND_SCOPE,
                Duration::from_secs(10)
            ),
            Some(account)
        );
        restored.restore("not json");
    }
}
