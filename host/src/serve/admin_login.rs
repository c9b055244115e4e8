//! The administrator's login (seed: "Log in to CentreWare Internet Services as system
//! administrator"): the password and its Argon2 hash, server-side sessions in an
//! HttpOnly SameSite=Strict cookie (`Secure` whenever the browser reached the panel over
//! HTTPS), the `Origin` check of every mutating request (CSRF, with the origins of
//! [`super::site`]), and failed logins slowed down per client ([`super::login_throttle`]).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use serde_json::Value;

use super::AppState;
use super::api::{ApiError, parse_body};
use super::login_throttle::{self, LoginThrottle};
use crate::frontend::Failure;

/// The session cookie.
pub(crate) const COOKIE: &str = "mfp_session";
/// Where a generated password's hash is kept, in the state dir.
pub(crate) const HASH_FILE: &str = "admin.argon2";
/// The environment variable that may hold the password.
const PASSWORD_ENV: &str = "MFP_ADMIN_PASSWORD";
/// A session lasts this long after login.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; past it the oldest is dropped.
const MAX_SESSIONS: usize = 256;
/// Longer passwords are refused without hashing.
const MAX_PASSWORD_BYTES: usize = 1024;

/// The password hash to check logins against, and the password when it was generated now.
pub(crate) struct AdminPassword {
    pub hash: String,
    pub generated: Option<String>,
}

fn password_error(message: String, remedy: &str) -> Failure {
    Failure::device_fault("admin-password-unavailable", message, remedy)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source is a precondition of the host (it also seals the tokens).
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

fn hash_password(password: &str) -> Result<String, Failure> {
    let salt = SaltString::encode_b64(&random_bytes::<16>())
        .map_err(|e| password_error(format!("Cannot make a salt: {e}"), "Try again."))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| password_error(format!("Cannot hash the password: {e}"), "Try again."))
}

/// The administrator password: from `file`, else `$MFP_ADMIN_PASSWORD`, else the hash
/// kept in the state dir, else a new random one (whose hash is then kept, mode 0600).
pub(crate) fn admin_password_hash(
    file: Option<&Path>,
    state_dir: &Path,
) -> Result<AdminPassword, Failure> {
    let given = match file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            password_error(
                format!("Cannot read --admin-password-file {}: {e}", path.display()),
                "Give a readable file holding the administrator password (one line).",
            )
        })?),
        None => std::env::var(PASSWORD_ENV).ok(),
    };
    if let Some(password) = given {
        let password = password.trim_end_matches(['\r', '\n']);
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(password_error(
                "The administrator password is empty or longer than 1024 bytes".into(),
                "Put a password of 1 to 1024 bytes in --admin-password-file or MFP_ADMIN_PASSWORD.",
            ));
        }
        return Ok(AdminPassword {
            hash: hash_password(password)?,
            generated: None,
        });
    }
    let path = state_dir.join(HASH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            let stored = stored.trim().to_owned();
            PasswordHash::new(&stored).map_err(|e| {
                password_error(
                    format!("The file {} is not an Argon2 hash: {e}", path.display()),
                    "Delete the file to have a new password generated at the next start, or give --admin-password-file.",
                )
            })?;
            return Ok(AdminPassword {
                hash: stored,
                generated: None,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(password_error(
                format!("Cannot read {}: {e}", path.display()),
                "Check the state dir's permissions, or give --admin-password-file.",
            ));
        }
    }
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<18>());
    let hash = hash_password(&password)?;
    write_private(&path, hash.as_bytes()).map_err(|e| {
        password_error(
            format!("Cannot write {}: {e}", path.display()),
            "Check that the state dir is writable, or give --admin-password-file.",
        )
    })?;
    Ok(AdminPassword {
        hash,
        generated: Some(password),
    })
}

/// Writes `path` readable only by this user, atomically (temporary file, fsync, rename).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Sessions and failed-login records, in memory (a restart logs everybody out).
pub(crate) struct AdminLogin {
    hash: String,
    sessions: Mutex<HashMap<String, Instant>>,
    throttle: LoginThrottle,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AdminLogin {
    pub fn new(hash: String) -> Self {
        Self {
            hash,
            sessions: Mutex::default(),
            throttle: LoginThrottle::default(),
        }
    }

    fn verify(&self, password: &str) -> bool {
        PasswordHash::new(&self.hash)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    fn new_session(&self) -> String {
        let id = hex::encode(random_bytes::<32>());
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), now + SESSION_LIFETIME);
        id
    }

    fn valid(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut sessions = lock(&self.sessions);
        match sessions.get(id) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                sessions.remove(id);
                false
            }
            None => false,
        }
    }

    fn end(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }
}

/// The `mfp_session` cookie of a request.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Routes that need no session: logging in, the login page and static assets (scripts and
/// styles; every HTML page but the login page needs a session).
fn public(method: &Method, path: &str) -> bool {
    match (method, path) {
        (&Method::POST, "/api/v1/login") => true,
        (&Method::GET | &Method::HEAD, "/login" | "/login.html") => true,
        (&Method::GET | &Method::HEAD, _) => {
            let name = path.trim_start_matches('/');
            !name.contains('/')
                && [".css", ".js", ".ico", ".svg", ".png"]
                    .iter()
                    .any(|ext| name.ends_with(ext))
        }
        _ => false,
    }
}

/// Every matched route goes through here: the `Origin` check of mutating requests, then
/// the session (API routes answer 401, pages redirect to the login page).
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating && !state.site.same_origin(request.headers()) {
        let scheme = state.site.scheme();
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin-refused",
            "The request's Origin is not this server, so it was refused (cross-site request protection)",
            &format!(
                "Use the web panel from this server's own address; scripts must send an Origin header equal to {scheme}://HOST:PORT of this server (or to its --public-origin)."
            ),
        )
        .into_response();
    }
    if public(&method, &path) {
        return next.run(request).await;
    }
    if session_id(request.headers()).is_some_and(|id| state.admin_login.valid(id)) {
        return next.run(request).await;
    }
    let api = path.starts_with("/api/") || path.starts_with("/demo/api/");
    if api || mutating {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "not-logged-in",
            "Log in as the system administrator first",
            "Open the login page (/login) and enter the administrator password.",
        )
        .into_response();
    }
    Redirect::to("/login").into_response()
}

/// The session cookie; `secure` when the browser reached the panel over HTTPS, so that it
/// never travels in clear text.
fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("mfp_session=; Path=/; Max-Age=0"))
}

/// `POST /api/v1/login {"password"}`: 204 and the session cookie; 401; 429 while the
/// client's delay runs; 503 when every Argon2 slot stayed busy.
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let value = parse_body(&body)?;
    let Some(password) = value.get("password").and_then(Value::as_str) else {
        return Err(ApiError::bad_request(
            "The body must be {\"password\": \"…\"}",
            "Send the administrator password as a JSON string.",
        )
        .with_field("password"));
    };
    let password = password.to_owned();
    drop(value);
    let throttle = &state.admin_login.throttle;
    if let Err(wait) = throttle.take_attempt(peer.ip()) {
        let wait = login_throttle::retry_after_secs(wait);
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-login-attempts",
            format!(
                "After several failed logins from this address, the next attempt must wait {wait} s"
            ),
            &format!(
                "Wait {wait} s, then log in with the administrator password (the wait grows with each failed login, to {} s at most, and ends with a successful one).",
                login_throttle::MAX_DELAY.as_secs()
            ),
        );
        error.retry_after = Some(wait);
        return Err(error);
    }
    let ok = if password.len() > MAX_PASSWORD_BYTES {
        false
    } else {
        let Some(slot) = throttle.argon2_slot().await else {
            throttle.not_checked(peer.ip());
            let mut error = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "login-busy",
                "The panel is checking too many logins at once",
                "Try again in a moment.",
            );
            error.retry_after = Some(1);
            return Err(error);
        };
        let auth = state.admin_login.clone();
        let checked = tokio::task::spawn_blocking(move || auth.verify(&password))
            .await
            .unwrap_or(false);
        drop(slot);
        checked
    };
    if !ok {
        tracing::warn!(target: "mfp_host::serve", client = %peer.ip(), "failed administrator login");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong-password",
            "The administrator password is not correct",
            "Enter the administrator password (from --admin-password-file, MFP_ADMIN_PASSWORD, or the one printed at the first start).",
        )
        .with_field("password"));
    }
    throttle.succeeded(peer.ip());
    let id = state.admin_login.new_session();
    let secure = state.site.request_is_https(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&id, SESSION_LIFETIME.as_secs(), secure),
    );
    Ok(response)
}

/// `POST /api/v1/logout`: 204, the session ended and the cookie cleared.
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        state.admin_login.end(id);
    }
    let secure = state.site.request_is_https(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, secure));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_checked_against_its_hash() {
        let auth = AdminLogin::new(hash_password("pw").unwrap());
        assert!(auth.verify("pw") && !auth.verify("PW") && !auth.verify(""));
    }

    #[test]
    fn the_cookie_is_secure_over_https_only() {
        let https = cookie("ab", 60, true);
        let https = https.to_str().unwrap();
        assert!(https.ends_with("; Secure") && https.contains("HttpOnly; SameSite=Strict"));
        assert!(!cookie("ab", 60, false).to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn a_generated_password_is_kept_only_as_a_private_hash() {
        let dir = tempfile::tempdir().unwrap();
        let first = admin_password_hash(None, dir.path());
        // The environment may carry a password; only check the generated path without it.
        if std::env::var(PASSWORD_ENV).is_ok() {
            return;
        }
        let first = first.unwrap();
        let password = first.generated.clone().unwrap();
        let stored = std::fs::read_to_string(dir.path().join(HASH_FILE)).unwrap();
        assert!(stored.starts_with("$argon2") && !stored.contains(&password));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(HASH_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = admin_password_hash(None, dir.path()).unwrap();
        assert!(again.generated.is_none());
        assert!(AdminLogin::new(again.hash).verify(&password));
    }
}
