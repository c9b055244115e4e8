//! `serve --demo`: the fake identity platform and fake Exchange Online of `mfp-fakes`,
//! in this process on loopback with a test CA made at start, and the device's network
//! pointed at them under Microsoft's names (TLS still verifies those names, against the
//! test CA). The demo pages stand in for Microsoft's: the device-login page where the
//! code is entered, and a mailbox listing what the fake Exchange Online received. The
//! scenarios of [`Case`] switch the fakes' behaviour live.

use std::path::Path;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mfp_fakes::net::LoopbackMicrosoft;
use mfp_fakes::{Approval, ApprovalError, Case, ReceivedMessage, World, approval_words};
use serde_json::{Value, json};

use super::AppState;
use super::api::{ApiError, parse_body};
use crate::capabilities::net::NetConfig;
use crate::frontend::Failure;

/// The polling interval the demo's identity platform asks for (Microsoft: 5 s).
const DEMO_INTERVAL: u64 = 2;
/// The case the demo starts with: sign-in waits for the device-login page.
const START_CASE: Case = Case::ManualApproval;

/// The running stand-ins.
pub(crate) struct Demo {
    world: World,
    fakes: LoopbackMicrosoft,
}

fn demo_error(message: String) -> Failure {
    Failure::device_fault(
        "demo-failed",
        message,
        "Check that loopback networking works, then start `mfp-host serve --demo` again.",
    )
}

impl Demo {
    /// Starts both fakes and points `net` at them; `panel` is the panel's own origin,
    /// `http(s)://HOST:PORT` (the device-login page is served there).
    pub fn start(panel: &str, net: &mut NetConfig) -> Result<Self, Failure> {
        let world = World::for_case(START_CASE);
        world.update_settings(|settings| {
            settings.verification_uri = format!("{panel}/demo/devicelogin");
            settings.interval = DEMO_INTERVAL;
        });
        let fakes =
            LoopbackMicrosoft::start(world.clone()).map_err(|e| demo_error(e.to_string()))?;
        fakes.set_case(START_CASE);
        // Ahead of any rule the administrator gave, so Microsoft's names reach the fakes.
        net.reach_stand_ins(&fakes.resolve_rules(), fakes.ca_pem())
            .map_err(|e| demo_error(e.to_string()))?;
        tracing::info!(
            target: "mfp_host::serve",
            identity_addr = %fakes.identity_addr(),
            exchange_addr = %fakes.exchange_addr(),
            "demo: fake identity platform and Exchange Online on loopback"
        );
        Ok(Self { world, fakes })
    }

    fn case(&self) -> Case {
        self.fakes.case().unwrap_or(START_CASE)
    }

    /// Writes what the command line needs to reach these stand-ins into `state_dir` — the
    /// test CA (`demo-ca.pem`) and the flags (`demo-cli-flags`, one shell line) — and
    /// returns the line `serve` prints: `demo: for the command line: mfp-host FLAGS`, so
    /// that `mfp-host FLAGS auth status` (and the README's session) run against this demo.
    /// The ports and the CA are new at each start, so the files are rewritten each time.
    pub fn write_cli_files(&self, state_dir: &Path) -> Result<String, Failure> {
        let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        let ca = dir.join(CLI_CA_FILE);
        std::fs::write(&ca, self.fakes.ca_pem())
            .map_err(|e| demo_error(format!("Cannot write {}: {e}", ca.display())))?;
        let mut args = vec![
            "--state-dir".to_owned(),
            dir.display().to_string(),
            "--ca-file".to_owned(),
            ca.display().to_string(),
        ];
        for rule in self.fakes.resolve_rules() {
            args.extend(["--resolve".to_owned(), rule]);
        }
        let flags = args
            .iter()
            .map(|a| shell_quoted(a))
            .collect::<Vec<_>>()
            .join(" ");
        let file = dir.join(CLI_FLAGS_FILE);
        std::fs::write(&file, format!("{flags}\n"))
            .map_err(|e| demo_error(format!("Cannot write {}: {e}", file.display())))?;
        Ok(format!("demo: for the command line: mfp-host {flags}"))
    }
}

/// The demo's test CA in PEM, in the state dir, for the command line's `--ca-file`.
const CLI_CA_FILE: &str = "demo-ca.pem";
/// The command line's flags for the demo, in the state dir.
const CLI_FLAGS_FILE: &str = "demo-cli-flags";

/// `arg` as a POSIX shell reads it back: as it is when it holds only characters the shell
/// leaves alone, else in single quotes.
fn shell_quoted(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
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
            "The demo is not running",
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
            "The body must be {\"user-code\": \"…\"}",
            "Enter the code the panel shows.",
        )
        .with_field("user-code"));
    };
    let code = code.trim().to_ascii_uppercase();
    let decline = value
        .get("decline")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // What the device will make of it, told here so that this page and the panel tell
    // one story (a blocked sign-in is never "signed in" here), in the stand-ins' words,
    // which the browser preview's sign-in page says too.
    let case = demo.case();
    let scenario = demo.world.scenario();
    let result = if decline {
        let outcome = scenario.sign_in_outcome_when_declined();
        demo.world.decline(&code, now()).map(|()| {
            json!({ "code": "declined", "outcome": outcome, "result": approval_words(outcome, case, None) })
        })
    } else {
        let outcome = scenario.sign_in_outcome();
        demo.world.approve(&code, now()).map(|account| {
            json!({
                "code": "approved",
                "account": account.upn,
                "outcome": outcome,
                "result": approval_words(outcome, case, Some(&account.upn)),
            })
        })
    };
    result.map(Json).map_err(|e| {
        // A scenario that decides on its own may have used the code up before it was
        // entered here.
        let decides_alone = scenario.approval != Approval::Manual;
        let unknown = if decides_alone {
            format!(
                "Check the code shown on the panel and enter it again. In the demo scenario {}, the stand-in decides at the printer's first polls without this page, so the sign-in may have ended already: the panel shows how.",
                case.name()
            )
        } else {
            "Check the code shown on the panel and enter it again.".to_owned()
        };
        let (code, remedy) = match e {
            ApprovalError::UnknownCode(_) => ("unknown-code", unknown.as_str()),
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

/// `GET /demo/api/messages`: what the fake Exchange Online accepted, oldest first.
async fn messages(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let demo = demo(&state)?;
    Ok(Json(Value::Array(
        demo.world
            .messages()
            .iter()
            .map(ReceivedMessage::mailbox_entry)
            .collect(),
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
                "There is no scenario named {:?}",
                name.chars().take(64).collect::<String>()
            ),
            "Pick a name from GET /demo/api/scenarios.",
        )
        .with_field("name"));
    };
    demo.fakes.set_case(case);
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

fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/demo.css\"></head><body>\
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
         <p class=\"note\" id=\"scenario\">Demo scenario <strong>{scenario}</strong>: {what} <a href=\"/demo/mailbox\">Switch</a></p>\
         <div id=\"result\" role=\"status\"></div></div>\
         <script src=\"/demo-devicelogin.js\" defer></script>",
        account = escape(&account),
        scenario = escape(&demo.case().name()),
        what = escape(demo.case().describe()),
    );
    Ok(page("Enter code — demo sign-in", &body))
}

/// `GET /demo/mailbox`: what the fake Exchange Online received, and the scenario menu.
async fn mailbox_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let demo = demo(&state)?;
    let current = demo.case();
    let mut rows = String::new();
    for m in demo.world.messages().iter().rev() {
        let v = m.mailbox_entry();
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
         <script src=\"/demo-mailbox.js\" defer></script>"
    );
    Ok(page("Mailbox — demo Exchange Online", &body))
}
