//! The `/api/v1/*` routes of web/API.md. Each forwards one call to the component in a
//! blocking task and answers with what it said, through the shared views
//! ([`crate::frontend::views`]); [`ApiError`] answers a [`Failure`] with its HTTP status and
//! the `{"error": {code, message, remedy, field?}}` object.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::AppState;
use crate::bindings::mailer::{OutgoingMessage, WalkUpUser};
use crate::bindings::types::Origin;
use crate::capabilities::attachments::AttachmentSet;
use crate::device::{Device, DeviceError, unix_now};
use crate::frontend::input::{self, LdapSearch, UserKind};
use crate::frontend::send_loop;
use crate::frontend::views::{self, AuthStateView, ConsentView, ControlPanelView, DeviceCodeView};
use crate::frontend::{Failure, FailureKind, Surface};
use crate::relay;

/// A failure as the API answers it: the shared [`Failure`] and its HTTP status.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub failure: Failure,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A failure of the server itself (its login, its demo pages), with its own status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>, remedy: &str) -> Self {
        let kind = if status.is_server_error() {
            FailureKind::DeviceFault
        } else {
            FailureKind::BadInput
        };
        Self {
            status,
            failure: Failure::new(kind, code, message, remedy),
            retry_after: None,
        }
    }

    /// 400: the request itself is malformed; nothing was changed.
    pub fn bad_request(message: impl Into<String>, remedy: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", message, remedy)
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.failure.field = Some(field.into());
        self
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        Self {
            status: StatusCode::from_u16(failure.kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            failure,
            retry_after: None,
        }
    }
}

impl From<DeviceError> for ApiError {
    fn from(err: DeviceError) -> Self {
        Failure::from(err).into()
    }
}

impl ApiError {
    /// The JSON body: `{"error": {code, message, remedy, field?}, "server-reply"?}`, and
    /// for a refusal that names fields, `errors`: every refused field of the Apply, the
    /// first being `error`.
    pub fn body(&self) -> Value {
        fn error(f: &Failure) -> Value {
            let mut error =
                json!({ "code": f.code, "message": f.message, "remedy": f.remedy.web_panel });
            if let Some(field) = &f.field {
                error["field"] = json!(field);
            }
            error
        }
        let failure = &self.failure;
        let mut body = json!({ "error": error(failure) });
        if failure.field.is_some() || !failure.also.is_empty() {
            let errors: Vec<Value> = std::iter::once(failure)
                .chain(&failure.also)
                .map(error)
                .collect();
            body["errors"] = Value::Array(errors);
        }
        if let Some(reply) = &failure.server_reply {
            body["server-reply"] = json!(reply);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Runs `call` on the device in a blocking task (each call is a fresh instance).
pub(crate) async fn blocking<T, E, F>(device: &Arc<Device>, call: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
    F: FnOnce(&Device) -> Result<T, E> + Send + 'static,
{
    let device = device.clone();
    match tokio::task::spawn_blocking(move || call(&device)).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "host-task-failed",
            format!("The device call did not complete: {join}"),
            "Try again; the next call uses a fresh instance.",
        )),
    }
}

/// The JSON body of a request, or 400.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("The request body is not valid JSON: {e}"),
            "Send a JSON object with Content-Type: application/json.",
        )
    })
}

/// `{"changes": {"key": "value", …}}` as (key, value) pairs; numbers are taken as text.
fn changes(body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let remedy = "Send {\"changes\": {\"setting-key\": \"value\", …}} with string values, e.g. {\"changes\": {\"service-provider\": \"exchange-online\"}}.";
    let value = parse_body(body)?;
    let Some(Value::Object(object)) = value.get("changes") else {
        return Err(ApiError::bad_request(
            "The body must be an object with a \"changes\" object",
            remedy,
        ));
    };
    input::setting_changes(object).map_err(|key| {
        ApiError::bad_request(format!("The value of \"{key}\" must be a string"), remedy)
            .with_field(&key)
    })
}

pub(crate) async fn get_smtp(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (settings, diagnostics) = blocking(&state.device, |device| {
        Ok::<_, DeviceError>((device.settings()?, device.diagnostics()?))
    })
    .await?;
    Ok(Json(json!({
        "settings": views::settings(&settings),
        "diagnostics": views::diagnostics(&diagnostics, Surface::WebPanel),
    })))
}

async fn apply(state: &AppState, origin: Origin, body: &Bytes) -> Result<Json<Value>, ApiError> {
    let changes = changes(body)?;
    let outcome = blocking(&state.device, move |device| device.apply(origin, &changes)).await?;
    Ok(Json(views::to_json(&views::ApplyOutcomeView::new(
        &outcome,
        Surface::WebPanel,
    ))))
}

pub(crate) async fn post_smtp(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    apply(&state, Origin::WebPanel, &body).await
}

pub(crate) async fn get_control_panel(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let view = blocking(&state.device, |device| device.control_panel_view()).await?;
    Ok(Json(views::to_json(&ControlPanelView::from(&view))))
}

pub(crate) async fn post_control_panel(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    apply(&state, Origin::ControlPanel, &body).await
}

pub(crate) async fn get_diagnostics(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let found = blocking(&state.device, |device| device.diagnostics()).await?;
    Ok(Json(views::to_json(&views::diagnostics(
        &found,
        Surface::WebPanel,
    ))))
}

/// The relay's state: whether `serve --relay-listen` runs one, or a separate `mfp-host
/// relay` runs on this state dir; where, who may use it, and the last messages relayed
/// with their outcome (from the component's history).
pub(crate) async fn get_relay(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut status = match &state.relay {
        Some(config) => serde_json::json!({
            "listening": true,
            "process": "serve",
            "listen": config.listen,
            "allow": config.allow,
            "authentication": config.password.is_some(),
        }),
        None => match relay::announcement::running(&state.state_dir) {
            Some(separate) => serde_json::json!({
                "listening": true,
                "process": "separate",
                "pid": separate.pid,
                "listen": separate.listen,
                "allow": separate.allow,
                "authentication": separate.authentication,
                "fingerprint": separate.fingerprint,
            }),
            None => return Ok(Json(serde_json::json!({ "listening": false }))),
        },
    };
    let events = blocking(&state.device, |device| device.history()).await?;
    let recent: Vec<_> = events
        .into_iter()
        .filter(|e| e.kind == crate::bindings::panel::EventKind::Relayed)
        .take(RELAY_RECENT)
        .collect();
    status["recent"] = views::to_json(&views::history(&recent, Surface::WebPanel));
    Ok(Json(status))
}

/// Relayed messages the panel lists.
const RELAY_RECENT: usize = 10;

/// What happened, newest first (the component's history).
pub(crate) async fn get_history(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let events = blocking(&state.device, |device| device.history()).await?;
    Ok(Json(views::to_json(&views::history(
        &events,
        Surface::WebPanel,
    ))))
}

/// Open Authentication Page: a device code, then the server polls on its own timer.
pub(crate) async fn post_signin(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let code = state.signin.start(&state).await?;
    Ok(Json(views::to_json(&DeviceCodeView::new(
        &code,
        Surface::WebPanel,
    ))))
}

/// Where sign-in stands, as the component keeps it: in progress (the device code, never
/// the tokens), signed in, or the last sign-in's failure, with any account still signed in.
pub(crate) async fn get_signin(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = blocking(&state.device, |device| device.signin_status(unix_now())).await?;
    Ok(Json(views::to_json(&AuthStateView::new(
        &status,
        Surface::WebPanel,
    ))))
}

/// Cancels the sign-in in progress (204); an account signed in before stays signed in.
pub(crate) async fn post_signin_cancel(
    State(state): State<AppState>,
) -> Result<StatusCode, ApiError> {
    state.signin.cancel(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn delete_signin(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    state.signin.sign_out(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn get_admin_consent(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let step = blocking(&state.device, |device| device.admin_consent()).await?;
    Ok(Json(views::to_json(&ConsentView::from(&step))))
}

/// The test email of the web panel: recipients, subject, body and base64 attachments.
struct TestEmail {
    to: Vec<String>,
    from: Option<String>,
    /// Who stands at the panel (S7), from `user` and `ldap-search`.
    user: WalkUpUser,
    subject: String,
    body: String,
    attachments: Vec<(String, Arc<[u8]>)>,
}

fn test_email(body: &Bytes) -> Result<TestEmail, ApiError> {
    let remedy = "Send {\"to\": [\"addr\"], \"subject\": \"…\", \"body\": \"…\", \"attachments\": [{\"name\": \"scan.pdf\", \"data-base64\": \"…\"}]}.";
    let value = parse_body(body)?;
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(
                ApiError::bad_request(format!("\"{key}\" must be a string"), remedy)
                    .with_field(key),
            ),
        }
    };
    let to = match value.get("to") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>(),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request("The \"to\" field must be a list of addresses", remedy)
            .with_field("to")
    })?;
    let mut attachments = Vec::new();
    if let Some(list) = value.get("attachments").filter(|v| !v.is_null()) {
        let Value::Array(list) = list else {
            return Err(
                ApiError::bad_request("The \"attachments\" field must be a list", remedy)
                    .with_field("attachments"),
            );
        };
        for (i, item) in list.iter().enumerate() {
            let name = item.get("name").and_then(Value::as_str);
            let data = item.get("data-base64").and_then(Value::as_str);
            let (Some(name), Some(data)) = (name, data) else {
                return Err(ApiError::bad_request(
                    format!("Attachment {i} needs \"name\" and \"data-base64\" strings"),
                    remedy,
                )
                .with_field("attachments"));
            };
            let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|e| {
                    ApiError::bad_request(
                        format!("Attachment {i} ({name}) is not valid base64: {e}"),
                        remedy,
                    )
                    .with_field("attachments")
                })?;
            attachments.push((name.to_owned(), Arc::from(bytes)));
        }
    }
    // S7: `user` (default `unauthenticated`) and, for an authenticated user, `ldap-search`
    // (default `succeeded`), as `mfp-host send --user/--ldap-search`.
    let user_remedy = "Give \"user\" as \"authenticated\", \"guest\" or \"unauthenticated\", and \"ldap-search\" (\"succeeded\" or \"failed\") only with \"authenticated\".";
    let user_kind = match text("user")? {
        None => UserKind::Unauthenticated,
        Some(name) => <UserKind as clap::ValueEnum>::from_str(&name, false).map_err(|_| {
            ApiError::bad_request(
                format!("The \"user\" {name:?} is not a kind of user"),
                user_remedy,
            )
            .with_field("user")
        })?,
    };
    let ldap_search = match text("ldap-search")? {
        None => None,
        Some(name) => Some(
            <LdapSearch as clap::ValueEnum>::from_str(&name, false).map_err(|_| {
                ApiError::bad_request(
                    format!("The \"ldap-search\" {name:?} is not an outcome"),
                    user_remedy,
                )
                .with_field("ldap-search")
            })?,
        ),
    };
    let user = input::walk_up_user(user_kind, ldap_search).map_err(|why| {
        ApiError::bad_request(
            format!("The \"ldap-search\" field is refused: {why}"),
            user_remedy,
        )
        .with_field("ldap-search")
    })?;
    Ok(TestEmail {
        to,
        from: text("from")?,
        user,
        subject: text("subject")?.unwrap_or_else(|| "Test email".into()),
        body: text("body")?.unwrap_or_default(),
        attachments,
    })
}

/// Sends a test email through the shared send loop: transient failures are retried when
/// and as often as the component says, in one blocking task. With `Accept:
/// text/event-stream` the answer is a stream of Server-Sent Events instead: `attempt`
/// (`{"attempt"}`), `progress` (`{"bytes-read","total"}`, twice a second while a scan
/// goes out), `retry` (the component's `retry-later`: diagnosis, server reply, wait, next
/// and most attempts), then one `result`: `{"status", "body", "attempts", "elapsed-ms"}`,
/// where `body` is what the plain request would have answered with that status.
pub(crate) async fn post_send(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Parsing a 33 MB JSON body and decoding its base64 is CPU work: off the async
    // workers, so panel requests are not held up behind it.
    let email = tokio::task::spawn_blocking(move || test_email(&body))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server-failed",
                e.to_string(),
                "Try again.",
            )
        })??;
    let message = OutgoingMessage {
        to: email.to,
        from: email.from,
        user: email.user,
        subject: email.subject,
        body: email.body,
        attachments: Vec::new(),
        attempt: 1,
    };
    let files = email.attachments;
    let streamed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !streamed {
        let sent = blocking(&state.device, move |device| {
            send_loop::send(
                device,
                message,
                |_| Ok(AttachmentSet::from_memory(files.clone())),
                log_retry,
            )
            .map_err(Failure::from)
        })
        .await?;
        let report = views::SendReportView::new(&sent.report, sent.attempts);
        return Ok(Json(views::to_json(&report)).into_response());
    }

    let (events, receiver) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let device = state.device.clone();
    let started = std::time::Instant::now();
    tokio::task::spawn_blocking(move || {
        let progress: Arc<AtomicU64> = Arc::default();
        let total: u64 = files.iter().map(|(_, data)| data.len() as u64).sum();
        let done = Arc::new(AtomicBool::new(false));
        // Twice a second, how much of the attachments the component has read.
        let ticker = {
            let (events, progress, done) = (events.clone(), progress.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) && total > 0 {
                    let read = progress.load(Ordering::Relaxed);
                    let _ = events.send(sse(
                        "progress",
                        json!({ "bytes-read": read, "total": total }),
                    ));
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
            })
        };
        let mut attempts = 0;
        let outcome = send_loop::send(
            &device,
            message,
            |attempt| {
                attempts = attempt;
                let _ = events.send(sse("attempt", json!({ "attempt": attempt })));
                Ok(AttachmentSet::from_memory(files.clone()).counting_into(progress.clone()))
            },
            |retry| {
                log_retry(retry);
                let _ = events.send(sse(
                    "retry",
                    views::to_json(&views::RetryView::new(retry, Surface::WebPanel)),
                ));
            },
        );
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        let (status, body) = match outcome {
            Ok(sent) => {
                attempts = sent.attempts;
                (
                    200,
                    views::to_json(&views::SendReportView::new(&sent.report, sent.attempts)),
                )
            }
            Err(err) => {
                let error = ApiError::from(Failure::from(err));
                (error.status.as_u16(), error.body())
            }
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let _ = events.send(sse(
            "result",
            json!({ "status": status, "body": body, "attempts": attempts, "elapsed-ms": elapsed_ms }),
        ));
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, std::convert::Infallible>(event), receiver))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One Server-Sent Event named `name` carrying `data` as JSON.
fn sse(name: &str, data: Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn log_retry(retry: &crate::bindings::mailer::Retry) {
    tracing::info!(
        target: "mfp_host::serve",
        code = retry.failure.diagnosis.code,
        next_attempt = retry.next_attempt,
        max_attempts = retry.max_attempts,
        "send will be retried in {} s",
        retry.after_seconds
    );
}
