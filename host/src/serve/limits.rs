//! The panel's connections: how many may be open, how long a client may take to send a
//! request's headers and its body, and HTTPS. `axum::serve` has none of these, so the
//! server runs its own accept loop over hyper.
//!
//! Slow clients (slowloris) hold a connection and a task each while they trickle bytes;
//! with no bound, a few hundred of them starve the panel. So:
//!
//! - at most [`MAX_CONNECTIONS`] connections are served at once; one more is answered 503
//!   `too-many-connections` (on plain HTTP; over TLS it is closed) and closed at once;
//! - the request line and headers must arrive within [`HEADER_READ_TIMEOUT`] of the
//!   connection's start (or of the previous answer on a kept-alive connection, so an idle
//!   connection is closed after as long), and a TLS handshake within the same;
//! - a request body must arrive within [`BODY_READ_TIMEOUT`], plus one second per
//!   [`BODY_MIN_RATE`] bytes it declares (a 48 MB scan on a slow link), else 408
//!   `request-body-timeout` and the connection is closed.
//!
//! Answers are never timed: a send that waits through the component's retries and the
//! final-dot reply, and a stream of send events, last as long as they need. Only what the
//! client sends is.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::AppState;
use super::api::ApiError;
use super::site::Connection;

/// Connections served at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// The longest wait for a request's line and headers (and for a TLS handshake).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for a request body, before [`BODY_MIN_RATE`]'s allowance.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per second a large body must keep up on average past [`BODY_READ_TIMEOUT`].
pub(crate) const BODY_MIN_RATE: u64 = 256 << 10;
/// Over-limit connections answered at once (each takes at most a second); past it they
/// are closed without an answer.
const REFUSALS: usize = 16;
/// How long open connections get to finish when the server is stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The figures in force (the defaults above; tests shorten them with hidden flags).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_read: Duration,
    pub body_read: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_read: HEADER_READ_TIMEOUT,
            body_read: BODY_READ_TIMEOUT,
        }
    }
}

impl Limits {
    /// How long a body of `declared` bytes (`None`: chunked, up to `limit`) may take.
    pub(crate) fn body_deadline(&self, declared: Option<u64>, limit: usize) -> Duration {
        let size = declared.unwrap_or(limit as u64);
        self.body_read + Duration::from_secs(size / BODY_MIN_RATE)
    }
}

/// An answer written by hand on a connection hyper never saw: status line, JSON body,
/// `Connection: close`.
fn raw_answer(status: StatusCode, error: ApiError) -> Vec<u8> {
    let body = error.body().to_string();
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

/// Writes `answer`, stops writing, and reads (and drops) what the client still sends for
/// up to a second, so that the answer is not lost to a reset.
async fn answer_and_close(mut tcp: TcpStream, answer: Vec<u8>) {
    let write = async {
        tcp.write_all(&answer).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left = 64usize << 10;
        while left > 0 {
            let n = tcp.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

fn too_many_connections(max: usize) -> Vec<u8> {
    raw_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-connections",
            format!("The panel already serves {max} connections"),
            "Try again in a few seconds; close other tabs or scripts that hold connections to the panel.",
        ),
    )
}

fn https_required() -> Vec<u8> {
    raw_answer(
        StatusCode::BAD_REQUEST,
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "https-required",
            "This panel is served over HTTPS only",
            "Open the same address with https:// (the certificate's SHA-256 fingerprint is printed when `mfp-host serve` starts).",
        ),
    )
}

/// Serves `app` on `listener` until `shutdown` completes: plain HTTP/1.1, or HTTPS with
/// `tls`, within `limits`. Then open connections get [`SHUTDOWN_GRACE`] to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let listen = listener.local_addr().ok();
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // moment rather than spin.
                    tracing::warn!(target: "mfp_host::serve", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(target: "mfp_host::serve", client = %peer.ip(), "connection refused: {} already open", limits.max_connections);
            if acceptor.is_none()
                && let Ok(refusal) = refusals.clone().try_acquire_owned()
            {
                tokio::spawn(async move {
                    answer_and_close(tcp, too_many_connections(limits.max_connections)).await;
                    drop(refusal);
                });
            }
            continue;
        };
        let local = tcp
            .local_addr()
            .ok()
            .or(listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(
                move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(Connection { local });
                    let mut app = app.clone();
                    async move { tower_service::Service::call(&mut app, request.map(Body::new)).await }
                },
            );
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .keep_alive(true);
            let Some(acceptor) = acceptor else {
                let _ = watcher
                    .watch(http.serve_connection(TokioIo::new(tcp), service))
                    .await;
                return;
            };
            // A TLS client speaks first with a handshake record (0x16); anything else is
            // plain HTTP sent to the HTTPS port, answered in plain text with the remedy.
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.header_read, tcp.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == 0x16 => {}
                Ok(Ok(1)) => return answer_and_close(tcp, https_required()).await,
                _ => return,
            }
            let Ok(Ok(stream)) =
                tokio::time::timeout(limits.header_read, acceptor.accept(tcp)).await
            else {
                return;
            };
            let _ = watcher
                .watch(http.serve_connection(TokioIo::new(stream), service))
                .await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {},
    }
}

/// Reads the whole request body within its deadline, then hands the request on with the
/// body in memory: 408 `request-body-timeout` (and the connection closed) when it does not
/// arrive in time, 413 `request-too-large` past the route's limit. Runs after the session
/// and content-type checks, so only the administrator's requests are read at all.
pub(crate) async fn read_body(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = super::body_limit(request.uri().path());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared == Some(0)
        || (declared.is_none() && !request.headers().contains_key(header::TRANSFER_ENCODING))
    {
        return next.run(request).await;
    }
    let too_large = || {
        let mut response = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request-too-large",
            format!("The request body is larger than this route takes ({limit} bytes)"),
            "Send a smaller body (a test email's attachments travel base64-encoded, so a scan may be about three quarters of the limit).",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let deadline = state.limits.body_deadline(declared, limit);
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(deadline, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let past_limit = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if past_limit {
                return too_large();
            }
            return ApiError::bad_request(
                format!("The request body could not be read: {e}"),
                "Send the whole body as Content-Length says.",
            )
            .into_response();
        }
        Err(_) => {
            tracing::warn!(target: "mfp_host::serve", path = parts.uri.path(), "request body timed out");
            let mut response = ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-body-timeout",
                format!(
                    "The request body did not arrive within {} s",
                    deadline.as_secs()
                ),
                "Send the whole request at once; on a slow or congested link, try again.",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_body_gets_time_in_proportion_to_its_size() {
        let limits = Limits::default();
        assert_eq!(
            limits.body_deadline(Some(60_000), 64 << 10),
            BODY_READ_TIMEOUT
        );
        let scan = limits.body_deadline(Some(48 << 20), 48 << 20);
        assert_eq!(
            scan,
            BODY_READ_TIMEOUT + Duration::from_secs((48 << 20) / BODY_MIN_RATE)
        );
        assert_eq!(limits.body_deadline(None, 64 << 10), BODY_READ_TIMEOUT);
    }
}
