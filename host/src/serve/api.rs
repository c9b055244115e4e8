//! The `/api/v1/*` routes of web/API.md. Each forwards one call to the component in a
//! blocking task and answers with what it said; [`ApiError`] maps device failures to HTTP
//! statuses and the `{"error": {code, message, remedy, field?}}` object.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::AppState;
use super::signin_timer::Phase;
use crate::attachments::AttachmentSet;
use crate::bindings::mailer::{OutgoingMessage, WalkUpUser};
use crate::bindings::signin::{Account, AuthState, DeviceCode, SignedInState};
use crate::bindings::types::{
    ApplyOutcome, ControlPanelScreen, Origin, PanelErrorKind, SettingEntry,
};
use crate::cli::{LdapSearchArg, UserArg, credentials_label, diagnostic_json, provider_label};
use crate::cli_send::walk_up_user;
use crate::device::{Device, DeviceError, unix_now};
use crate::runtime::CallError;

/// Send attempts at most, when Exchange asks to retry later (as `mfp-host send`).
const MAX_SEND_ATTEMPTS: u32 = 3;
/// The longest retry delay the server waits for within one request.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// A failure as the API answers it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub remedy: String,
    pub field: Option<String>,
    /// `server-reply` beside `error` (a failed send), `null` when there was none.
    pub server_reply: Option<Option<String>>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>, remedy: &str) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            remedy: remedy.into(),
            field: None,
            server_reply: None,
            retry_after: None,
        }
    }

    /// 400: the request itself is malformed; nothing was changed.
    pub fn bad_request(message: impl Into<String>, remedy: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-request", message, remedy)
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error =
            json!({ "code": self.code, "message": self.message, "remedy": self.remedy });
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut body = json!({ "error": error });
        if let Some(reply) = self.server_reply {
            body["server-reply"] = json!(reply);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<DeviceError> for ApiError {
    fn from(err: DeviceError) -> Self {
        let status = match &err {
            DeviceError::Refused(e) if e.kind == PanelErrorKind::Storage => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            DeviceError::Refused(_) => StatusCode::CONFLICT,
            DeviceError::Diagnosed(_) | DeviceError::SendFailed(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            DeviceError::Sandbox(_)
            | DeviceError::StateDir { .. }
            | DeviceError::NetConfig(_)
            | DeviceError::Component { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if let DeviceError::Sandbox(e) = &err {
            let kind = match e {
                CallError::DeadlineExceeded(_) => "deadline",
                CallError::MemoryLimit(_) => "memory",
                CallError::Trap(_) => "trap",
                CallError::Instantiate(_) => "instantiate",
            };
            tracing::warn!(target: "mfp_host::serve", kind, "a component call failed: {e}");
        }
        let (code, message, remedy) = err.diagnosis();
        let mut api = Self::new(status, &code, message, &remedy);
        match err {
            DeviceError::Refused(e) => api.field = e.field,
            DeviceError::SendFailed(e) => api.server_reply = Some(e.server_reply),
            _ => {}
        }
        api
    }
}

/// Runs `call` on the device in a blocking task (each call is a fresh instance).
pub(crate) async fn blocking<T, F>(device: &Arc<Device>, call: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Device) -> Result<T, DeviceError> + Send + 'static,
{
    let device = device.clone();
    match tokio::task::spawn_blocking(move || call(&device)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(join) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "host-task-failed",
            format!("the device call did not complete: {join}"),
            "Try again; the next call uses a fresh instance.",
        )),
    }
}

/// The JSON body of a request, or 400.
pub(crate) fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("the request body is not valid JSON: {e}"),
            "Send a JSON object with Content-Type: application/json.",
        )
    })
}

fn settings_json(entries: &[SettingEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({ "key": e.key, "value": e.value, "locked": e.locked }))
            .collect(),
    )
}

fn outcome_json(outcome: &ApplyOutcome) -> Value {
    json!({
        "settings": settings_json(&outcome.settings),
        "notices": outcome.notices.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })
}

fn control_panel_json(view: &ControlPanelScreen) -> Value {
    json!({
        "service-provider": provider_label(view.service_provider),
        "smtp-server": view.smtp_server,
        "send-port": view.send_port.to_string(),
        "receive-port": view.receive_port.to_string(),
        "login-credentials": credentials_label(view.login_credentials),
        "smtp-edits-enabled": view.smtp_edits_enabled,
        "notice": view.notice,
    })
}

/// `{"changes": {"key": "value", …}}` as (key, value) pairs; numbers are taken as text.
fn changes(body: &Bytes) -> Result<Vec<(String, String)>, ApiError> {
    let remedy = "Send {\"changes\": {\"setting-key\": \"value\", …}} with string values, e.g. {\"changes\": {\"service-provider\": \"exchange-online\"}}.";
    let value = parse_body(body)?;
    let Some(Value::Object(object)) = value.get("changes") else {
        return Err(ApiError::bad_request(
            "the body must be an object with a \"changes\" object",
            remedy,
        ));
    };
    object
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            Value::Number(n) => Ok((key.clone(), n.to_string())),
            _ => Err(ApiError::bad_request(
                format!("the value of \"{key}\" must be a string"),
                remedy,
            )
            .with_field(key)),
        })
        .collect()
}

pub(crate) async fn get_smtp(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (settings, diagnostics) = blocking(&state.device, |device| {
        Ok((device.settings()?, device.diagnostics()?))
    })
    .await?;
    Ok(Json(json!({
        "settings": settings_json(&settings),
        "diagnostics": diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
    })))
}

async fn apply(state: &AppState, origin: Origin, body: &Bytes) -> Result<Json<Value>, ApiError> {
    let changes = changes(body)?;
    let outcome = blocking(&state.device, move |device| device.apply(origin, &changes)).await?;
    Ok(Json(outcome_json(&outcome)))
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
    Ok(Json(control_panel_json(&view)))
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
    Ok(Json(Value::Array(
        found.iter().map(diagnostic_json).collect(),
    )))
}

fn device_code_json(code: &DeviceCode) -> Map<String, Value> {
    let value = json!({
        "user-code": code.user_code,
        "verification-uri": code.verification_uri,
        "expires-at": code.expires_at,
        "interval": code.interval,
        "message": code.message,
        "problem": code.problem.as_ref().map(diagnostic_json),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn account_json(a: &Account) -> Value {
    json!({ "username": a.username, "upn": a.upn, "email": a.email, "tenant-id": a.tenant_id, "personal": a.personal })
}

/// Open Authentication Page: a device code, then the server polls on its own timer.
pub(crate) async fn post_signin(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let code = state.signin.start(&state).await?;
    Ok(Json(Value::Object(device_code_json(&code))))
}

/// Where sign-in stands: the timer's sign-in while it runs or after it failed, else the
/// component's status. The device code is shown while in progress, never the tokens.
pub(crate) async fn get_signin(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = blocking(&state.device, |device| device.signin_status(unix_now())).await?;
    let signed_in = |s: &SignedInState| {
        json!({
            "account": account_json(&s.account),
            "access-token-expires-at": s.access_token_expires_at,
            "warnings": s.warnings.iter().map(diagnostic_json).collect::<Vec<_>>(),
        })
    };
    let phase = state.signin.phase();
    let mut value = match (&phase, &status) {
        (_, AuthState::InProgress(code)) | (Phase::Polling(code), _) => {
            let mut map = device_code_json(code);
            map.insert("code".into(), json!("sign-in-in-progress"));
            Value::Object(map)
        }
        (Phase::Failed(diagnosis), _) => {
            json!({ "code": "sign-in-failed", "diagnosis": diagnosis })
        }
        (_, AuthState::SignedIn(s)) => {
            let mut value = signed_in(s);
            value["code"] = json!("signed-in");
            value
        }
        (_, AuthState::SignedOut) => json!({ "code": "signed-out" }),
    };
    // A failed re-sign-in leaves the earlier account signed in: say so too.
    if value["code"] != "signed-in"
        && let AuthState::SignedIn(s) = &status
        && let Value::Object(extra) = signed_in(s)
    {
        for (key, v) in extra {
            value[key.as_str()] = v;
        }
    }
    Ok(Json(value))
}

pub(crate) async fn delete_signin(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    state.signin.sign_out(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn get_admin_consent(
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let step = blocking(&state.device, |device| device.admin_consent()).await?;
    Ok(Json(
        json!({ "url": step.url, "needed": step.needed, "explanation": step.explanation }),
    ))
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
        ApiError::bad_request("\"to\" must be a list of addresses", remedy).with_field("to")
    })?;
    let mut attachments = Vec::new();
    if let Some(list) = value.get("attachments").filter(|v| !v.is_null()) {
        let Value::Array(list) = list else {
            return Err(
                ApiError::bad_request("\"attachments\" must be a list", remedy)
                    .with_field("attachments"),
            );
        };
        for (i, item) in list.iter().enumerate() {
            let name = item.get("name").and_then(Value::as_str);
            let data = item.get("data-base64").and_then(Value::as_str);
            let (Some(name), Some(data)) = (name, data) else {
                return Err(ApiError::bad_request(
                    format!("attachment {i} needs \"name\" and \"data-base64\" strings"),
                    remedy,
                )
                .with_field("attachments"));
            };
            let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned.as_bytes())
                .map_err(|e| {
                    ApiError::bad_request(
                        format!("attachment {i} ({name}) is not valid base64: {e}"),
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
    let user_arg = match text("user")? {
        None => UserArg::Unauthenticated,
        Some(name) => <UserArg as clap::ValueEnum>::from_str(&name, false).map_err(|_| {
            ApiError::bad_request(
                format!("\"user\" {name:?} is not a kind of user"),
                user_remedy,
            )
            .with_field("user")
        })?,
    };
    let ldap_search = match text("ldap-search")? {
        None => None,
        Some(name) => Some(
            <LdapSearchArg as clap::ValueEnum>::from_str(&name, false).map_err(|_| {
                ApiError::bad_request(
                    format!("\"ldap-search\" {name:?} is not an outcome"),
                    user_remedy,
                )
                .with_field("ldap-search")
            })?,
        ),
    };
    let user = walk_up_user(user_arg, ldap_search).map_err(|why| {
        ApiError::bad_request(format!("\"ldap-search\": {why}"), user_remedy)
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

/// Sends a test email; transient failures are retried after the delay the component asks
/// for, as `mfp-host send` does.
pub(crate) async fn post_send(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    let mut attempt = 1;
    loop {
        let files = AttachmentSet::from_memory(email.attachments.clone());
        let message = OutgoingMessage {
            to: email.to.clone(),
            from: email.from.clone(),
            user: email.user,
            subject: email.subject.clone(),
            body: email.body.clone(),
            attachments: files.ids(),
            attempt,
        };
        let result = blocking(&state.device, move |device| {
            match device.send(&message, files, unix_now()) {
                Err(DeviceError::SendFailed(failure))
                    if failure.retry_after.is_some() && attempt < MAX_SEND_ATTEMPTS =>
                {
                    Ok(Err(failure))
                }
                other => other.map(Ok),
            }
        })
        .await?;
        match result {
            Ok(report) => {
                return Ok(Json(json!({
                    "message-id": report.message_id,
                    "accepted": report.accepted,
                    "server-reply": report.server_reply,
                    "size": report.size,
                    "attempts": attempt,
                })));
            }
            Err(failure) => {
                let delay = Duration::from_secs(u64::from(failure.retry_after.unwrap_or(1)));
                tracing::info!(
                    target: "mfp_host::serve",
                    code = failure.diagnosis.code,
                    attempt,
                    "send will be retried in {delay:?}"
                );
                tokio::time::sleep(delay.min(MAX_RETRY_WAIT)).await;
                attempt += 1;
            }
        }
    }
}
