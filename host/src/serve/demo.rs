//! `serve --demo`: the fake identity platform and fake Exchange Online of `mfp-fakes`,
//! in this process on loopback with a test CA made at start, and the device's network
//! pointed at them under Microsoft's names (TLS still verifies those names, against the
//! test CA). The demo pages stand in for Microsoft's: the device-login page where the
//! code is entered, and a mailbox listing what the fake Exchange Online received. The
//! scenarios of [`Case`] switch the fakes' behaviour live.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use mfp_fakes::net::{ServerHandle, TestCa, spawn_exchange, spawn_identity};
use mfp_fakes::{ApprovalError, Case, ReceivedMessage, World};
use serde_json::{Value, json};

use super::AppState;
use super::api::{ApiError, parse_body};
use crate::cli::CliError;
use crate::net::{NetConfig, ResolveRule};

/// The polling interval the demo's identity platform asks for (Microsoft: 5 s).
const DEMO_INTERVAL: u64 = 2;
/// The case the demo starts with: sign-in waits for the device-login page.
const START_CASE: Case = Case::ManualApproval;

/// The running stand-ins.
pub(crate) struct Demo {
    world: World,
    case: Mutex<Case>,
    _identity: ServerHandle,
    _exchange: ServerHandle,
}

fn demo_error(message: String) -> CliError {
    CliError {
        code: "demo-failed".into(),
        message,
        remedy: "Check that loopback networking works, then start `mfp-host serve --demo` again."
            .into(),
        exit: 3,
    }
}

impl Demo {
    /// Starts both fakes and points `net` at them; `listen` is the panel's own address
    /// (the device-login page is served there).
    pub fn start(listen: SocketAddr, net: &mut NetConfig) -> Result<Self, CliError> {
        let world = World::for_case(START_CASE);
        world.update_settings(|settings| {
            settings.verification_uri = format!("http://{listen}/demo/devicelogin");
            settings.interval = DEMO_INTERVAL;
        });
        let ca = TestCa::generate().map_err(|e| demo_error(e.to_string()))?;
        let (identity_addr, identity) =
            spawn_identity(world.clone(), &ca).map_err(|e| demo_error(e.to_string()))?;
        let (exchange_addr, exchange) =
            spawn_exchange(world.clone(), &ca).map_err(|e| demo_error(e.to_string()))?;
        let rules = [
            format!("login.microsoftonline.com:443={identity_addr}"),
            format!("smtp.office365.com:587={exchange_addr}"),
        ];
        for (i, rule) in rules.iter().enumerate() {
            let rule = ResolveRule::parse(rule).map_err(|e| demo_error(e.to_string()))?;
            net.resolve.insert(i, rule);
        }
        net.extra_roots_pem.push(ca.ca_pem().as_bytes().to_vec());
        tracing::info!(
            target: "mfp_host::serve",
            %identity_addr,
            %exchange_addr,
            "demo: fake identity platform and Exchange Online on loopback"
        );
        Ok(Self {
            world,
            case: Mutex::new(START_CASE),
            _identity: identity,
            _exchange: exchange,
        })
    }

    fn case(&self) -> Case {
        *self.case.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `/demo/*` routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo/devicelogin", get(devicelogin_page))
        .route("/demo/api/approve", post(approve))
        .route("/demo/mailbox", get(mailbox_page))
        .route("/demo/api/messages", get(messages))
        .route("/demo/api/scenarios", get(scenarios))
        .route("/demo/api/scenario", post(set_scenario))
}

fn demo(state: &AppState) -> Result<&Demo, ApiError> {
    state.demo.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "the demo is not running",
            "Start the server with --demo.",
        )
    })
}

fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// `POST /demo/api/approve {"user-code", "decline"?}`.
async fn approve(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let demo = demo(&state)?;
    let value = parse_body(&body)?;
    let Some(code) = value.get("user-code").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "the body must be {\"user-code\": \"…\"}",
            "Enter the code the panel shows.",
        )
        .with_field("user-code"));
    };
    let code = code.trim().to_ascii_uppercase();
    let decline = value
        .get("decline")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let result = if decline {
        demo.world
            .decline(&code, now())
            .map(|()| json!({ "code": "declined" }))
    } else {
        demo.world
            .approve(&code, now())
            .map(|account| json!({ "code": "approved", "account": account.upn }))
    };
    result.map(Json).map_err(|e| {
        let (code, remedy) = match e {
            ApprovalError::UnknownCode(_) => (
                "unknown-code",
                "Check the code shown on the panel and enter it again.",
            ),
            ApprovalError::Expired => (
                "code-expired",
                "Click Open Authentication Page again for a new code.",
            ),
            ApprovalError::AlreadyDecided => (
                "code-already-used",
                "This code was already approved or declined; start a new sign-in for another.",
            ),
            ApprovalError::UnknownAccount(_) => {
                ("unknown-account", "Sign in with the demo account.")
            }
        };
        ApiError::new(StatusCode::CONFLICT, code, e.to_string(), remedy).with_field("user-code")
    })
}

/// An RFC 2047 header value made readable (`=?UTF-8?B?…?=` and `?Q?` words).
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, after) = rest.split_at(start);
        let decoded = after[2..].splitn(3, '?').collect::<Vec<_>>();
        let word = match decoded.as_slice() {
            [_charset, enc, tail] => tail.find("?=").map(|end| (enc, &tail[..end], end)),
            _ => None,
        };
        let Some((enc, text, end)) = word else {
            break;
        };
        let bytes = if enc.eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD.decode(text).ok()
        } else if enc.eq_ignore_ascii_case("q") {
            Some(decode_q(text))
        } else {
            None
        };
        let Some(bytes) = bytes else { break };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&String::from_utf8_lossy(&bytes));
        last_was_word = true;
        let consumed = 2 + decoded[0].len() + 1 + decoded[1].len() + 1 + end + 2;
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

fn decode_q(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => match text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The file names of a message's attachments (`Content-Disposition: attachment`), read
/// from the raw message the fake kept (large ones keep headers only: no names then).
fn attachment_names(message: &ReceivedMessage) -> Vec<String> {
    let Some(raw) = &message.raw else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(raw);
    // Unfold header lines, then look at each Content-Disposition header.
    let unfolded = text.replace("\r\n ", " ").replace("\r\n\t", " ");
    let mut names = Vec::new();
    for line in unfolded.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if !lower.starts_with("content-disposition:") || !lower.contains("attachment") {
            continue;
        }
        let mut plain = None;
        let mut extended = None;
        let mut pieces: Vec<(u32, String)> = Vec::new();
        for param in line.split(';').skip(1) {
            let Some((key, value)) = param.trim().split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"');
            let from_ext = |v: &str| {
                let v = v.splitn(3, '\'').last().unwrap_or(v);
                percent_decode(v)
            };
            if key == "filename" {
                plain = Some(decode_words(value));
            } else if key == "filename*" {
                extended = Some(from_ext(value));
            } else if let Some(index) = key.strip_prefix("filename*") {
                let (n, encoded) = match index.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (index, false),
                };
                if let Ok(n) = n.parse::<u32>() {
                    let part = if encoded {
                        if n == 0 {
                            from_ext(value)
                        } else {
                            percent_decode(value)
                        }
                    } else {
                        value.to_owned()
                    };
                    pieces.push((n, part));
                }
            }
        }
        pieces.sort_by_key(|(n, _)| *n);
        let joined: String = pieces.into_iter().map(|(_, p)| p).collect();
        let name = extended
            .or(plain)
            .or((!joined.is_empty()).then_some(joined))
            .unwrap_or_else(|| "(unnamed)".into());
        names.push(name);
    }
    names
}

fn message_json(m: &ReceivedMessage) -> Value {
    json!({
        "from": m.header("From").map(|f| decode_words(&f)).unwrap_or_else(|| m.mail_from.clone()),
        "to": m.rcpt_to,
        "subject": m.header("Subject").map(|s| decode_words(&s)).unwrap_or_default(),
        "size": m.size,
        "attachments": attachment_names(m),
        "received-at": m.received_at.as_secs(),
        "message-id": m.message_id,
        "account": m.account,
    })
}

/// `GET /demo/api/messages`: what the fake Exchange Online accepted, oldest first.
async fn messages(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let demo = demo(&state)?;
    Ok(Json(Value::Array(
        demo.world.messages().iter().map(message_json).collect(),
    )))
}

fn scenario_json(case: Case, current: Case) -> Value {
    json!({ "name": case.name(), "description": case.describe(), "current": case == current })
}

/// `GET /demo/api/scenarios`: every case, the current one marked.
async fn scenarios(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let demo = demo(&state)?;
    let current = demo.case();
    Ok(Json(Value::Array(
        Case::all()
            .into_iter()
            .map(|c| scenario_json(c, current))
            .collect(),
    )))
}

/// `POST /demo/api/scenario {"name"}`: switches the fakes to that case, live.
async fn set_scenario(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let demo = demo(&state)?;
    let value = parse_body(&body)?;
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(case) = Case::from_name(name) else {
        return Err(ApiError::bad_request(
            format!(
                "there is no scenario named {:?}",
                name.chars().take(64).collect::<String>()
            ),
            "Pick a name from GET /demo/api/scenarios.",
        )
        .with_field("name"));
    };
    demo.world.set_case(case);
    *demo.case.lock().unwrap_or_else(|p| p.into_inner()) = case;
    tracing::info!(target: "mfp_host::serve", scenario = case.name(), "demo scenario switched");
    Ok(Json(scenario_json(case, case)))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}\
    .card{border:1px solid #ccc;border-radius:6px;padding:1.5rem;margin:1rem 0}\
    input[type=text]{font-size:1.3rem;letter-spacing:.15em;padding:.4rem;width:14rem;text-transform:uppercase}\
    button{font-size:1rem;padding:.45rem 1rem;margin:.5rem .5rem 0 0}\
    table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left;vertical-align:top}\
    .note{color:#555;font-size:.9rem}.demo{background:#fff4d6;padding:.4rem .7rem;border-radius:4px;font-size:.9rem}\
    #result{margin-top:1rem;font-weight:600}";

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{PAGE_STYLE}</style></head><body>\
         <p class=\"demo\">Demo: a stand-in for Microsoft, running inside mfp-host. <a href=\"/\">Back to the panel</a> · <a href=\"/demo/mailbox\">Mailbox</a></p>\
         {body}</body></html>",
        title = escape(title)
    ))
    .into_response()
}

/// `GET /demo/devicelogin`: the "Enter code" page of the fake identity platform.
async fn devicelogin_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let demo = demo(&state)?;
    let account = demo
        .world
        .accounts()
        .first()
        .map(|a| a.upn.clone())
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h1>Enter code</h1>\
         <p>Enter the code displayed on the printer's panel to allow access.</p>\
         <form id=\"form\"><label for=\"code\">Code</label><br>\
         <input id=\"code\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\" autofocus required><br>\
         <button type=\"submit\" id=\"approve\">Next: sign in and approve</button>\
         <button type=\"button\" id=\"decline\">Decline</button></form>\
         <p class=\"note\">You sign in as <strong>{account}</strong> (the demo's account for the current scenario).</p>\
         <div id=\"result\" role=\"status\"></div></div>\
         <script>\
         const q=new URLSearchParams(location.search).get('code');if(q)document.getElementById('code').value=q;\
         async function send(decline){{const code=document.getElementById('code').value.trim();\
         const out=document.getElementById('result');out.textContent='';\
         const r=await fetch('/demo/api/approve',{{method:'POST',headers:{{'Content-Type':'application/json'}},body:JSON.stringify({{'user-code':code,decline}})}});\
         const j=await r.json().catch(()=>({{}}));\
         if(r.ok){{out.textContent=j.code==='approved'?'Signed in as '+j.account+'. You can close this page; the printer finishes the sign-in on its own.':'You declined the sign-in request.';}}\
         else{{out.textContent=(j.error&&j.error.message||r.statusText)+(j.error&&j.error.remedy?' — '+j.error.remedy:'');}}}}\
         document.getElementById('form').addEventListener('submit',e=>{{e.preventDefault();send(false);}});\
         document.getElementById('decline').addEventListener('click',()=>send(true));\
         </script>",
        account = escape(&account)
    );
    Ok(page("Enter code — demo sign-in", &body))
}

/// `GET /demo/mailbox`: what the fake Exchange Online received, and the scenario menu.
async fn mailbox_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let demo = demo(&state)?;
    let current = demo.case();
    let mut rows = String::new();
    for m in demo.world.messages().iter().rev() {
        let v = message_json(m);
        let text = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let list = |key: &str| {
            v[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&mfp_fakes::clock::iso_millis(m.received_at)),
            escape(&text("from")),
            escape(&list("to")),
            escape(&text("subject")),
            m.size,
            escape(&list("attachments")),
        ));
    }
    if rows.is_empty() {
        rows = "<tr><td colspan=\"6\">No message yet. Send a test email from the panel.</td></tr>"
            .into();
    }
    let options: String = Case::all()
        .into_iter()
        .map(|c| {
            format!(
                "<option value=\"{n}\"{sel}>{n} — {d}</option>",
                n = escape(&c.name()),
                d = escape(c.describe()),
                sel = if c == current { " selected" } else { "" }
            )
        })
        .collect();
    let body = format!(
        "<h1>Mailbox of the demo Exchange Online</h1>\
         <table><thead><tr><th>Received</th><th>From</th><th>To</th><th>Subject</th><th>Bytes</th><th>Attachments</th></tr></thead>\
         <tbody>{rows}</tbody></table>\
         <div class=\"card\"><h2>Scenario</h2><p class=\"note\">Switch how the stand-ins behave (sign-in and sending), live.</p>\
         <select id=\"case\">{options}</select> <button id=\"switch\">Switch</button><div id=\"result\" role=\"status\"></div></div>\
         <script>document.getElementById('switch').addEventListener('click',async()=>{{\
         const name=document.getElementById('case').value;\
         const r=await fetch('/demo/api/scenario',{{method:'POST',headers:{{'Content-Type':'application/json'}},body:JSON.stringify({{name}})}});\
         const j=await r.json().catch(()=>({{}}));\
         document.getElementById('result').textContent=r.ok?'Now: '+j.name+' — '+j.description:(j.error&&j.error.message||r.statusText);}});</script>"
    );
    Ok(page("Mailbox — demo Exchange Online", &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(decode_words("=?UTF-8?B?U2NhbiDDvA==?="), "Scan ü");
        assert_eq!(decode_words("plain subject"), "plain subject");
        assert_eq!(decode_words("=?utf-8?q?a_b=C3=BC?= tail"), "a bü tail");
        assert_eq!(percent_decode("Gr%C3%B6%C3%9Fe.pdf"), "Größe.pdf");
    }
}
