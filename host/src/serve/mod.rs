//! `mfp-host serve`: the web panel (the files of `web/`, embedded in the binary) and the
//! device JSON API of `web/API.md`, on one HTTP listener (loopback by default).
//!
//! Like the command line, the server decides nothing about the settings: every route
//! forwards one call to the component (in a blocking task, on a fresh instance) and
//! returns what it said. What the server owns is what a host must own: who may call
//! (the administrator's session, [`auth`]), the sign-in timer ([`signin_timer`]), and in
//! `--demo` the embedded stand-ins of Microsoft ([`demo`]).
//!
//! - [`api`]: the `/api/v1/*` routes and the mapping of device failures to HTTP;
//! - [`auth`]: admin password (Argon2), sessions, the `Origin` check, login rate limit;
//! - [`signin_timer`]: polls the identity platform exactly when the component says;
//! - [`demo`]: the fakes on loopback, the device-login and mailbox pages, scenarios;
//! - [`assets`]: the embedded `web/` pages, scripts and styles.

mod api;
mod assets;
mod auth;
mod demo;
mod signin_timer;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::cli::{Cli, CliError, ServeArgs, default_state_dir};
use crate::device::{Device, DeviceOptions};
use crate::net::SigninOverrides;

/// The largest request body of a test email (attachments travel base64-encoded).
const SEND_BODY_LIMIT: usize = 48 << 20;
/// The largest body of any other request.
const BODY_LIMIT: usize = 64 << 10;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub device: Arc<Device>,
    pub auth: Arc<auth::Auth>,
    pub signin: Arc<signin_timer::SigninTimer>,
    pub demo: Option<Arc<demo::Demo>>,
}

fn failed(code: &str, message: String, remedy: &str) -> CliError {
    CliError {
        code: code.into(),
        message,
        remedy: remedy.into(),
        exit: 3,
    }
}

/// Runs the server until interrupted (Ctrl-C or SIGTERM). Prints `admin password: …` when
/// it generated one, then `listening on http://ADDR` once the socket is bound.
pub fn run(cli: &Cli, args: ServeArgs, out: &mut impl Write) -> Result<u8, CliError> {
    let listener = std::net::TcpListener::bind(args.listen).map_err(|e| {
        failed(
            "listen-failed",
            format!("cannot listen on {}: {e}", args.listen),
            "Choose a free address with --listen (e.g. 127.0.0.1:0 for any free port).",
        )
    })?;
    let addr = listener.local_addr().map_err(|e| {
        failed(
            "listen-failed",
            format!("cannot read the listening address: {e}"),
            "Try again with another --listen address.",
        )
    })?;

    let mut options: DeviceOptions = cli.device_options();
    let mut net = cli.net_config()?;
    let demo = if args.demo {
        Some(Arc::new(demo::Demo::start(addr, &mut net)?))
    } else {
        None
    };
    options.net = Some(net);
    options.overrides = SigninOverrides {
        tenant: cli.tenant.clone(),
        client_id: cli.client_id.clone(),
    };
    let state_dir = cli.state_dir.clone().unwrap_or_else(default_state_dir);
    let device = Arc::new(Device::open(options)?);
    let admin = auth::admin_password_hash(args.admin_password_file.as_deref(), &state_dir)?;
    if let Some(password) = &admin.generated {
        writeln!(out, "admin password: {password}").map_err(crate::cli::output_error)?;
        eprintln!(
            "The administrator password above is shown only once; its Argon2 hash is kept in {}.",
            state_dir.join(auth::HASH_FILE).display()
        );
    }
    let state = AppState {
        device,
        auth: Arc::new(auth::Auth::new(admin.hash)),
        signin: Arc::new(signin_timer::SigninTimer::default()),
        demo,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mfp-serve")
        .build()
        .map_err(|e| {
            failed(
                "runtime-failed",
                format!("cannot start the server's threads: {e}"),
                "Check the process limits of this user.",
            )
        })?;
    runtime.block_on(async move {
        listener.set_nonblocking(true).map_err(|e| {
            failed(
                "listen-failed",
                format!("cannot use the listening socket: {e}"),
                "Try again.",
            )
        })?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| {
            failed(
                "listen-failed",
                format!("cannot use the listening socket: {e}"),
                "Try again.",
            )
        })?;
        // A sign-in left in progress by an earlier run goes on being polled.
        signin_timer::resume(state.clone());
        // An idle device stays signed in: refresh tokens expire after 90 idle days.
        signin_timer::keep_alive(state.clone());
        let app = router(state);
        writeln!(out, "listening on http://{addr}").map_err(crate::cli::output_error)?;
        out.flush().map_err(crate::cli::output_error)?;
        tracing::info!(target: "mfp_host::serve", "listening on http://{addr}");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| {
            failed(
                "serve-failed",
                format!("the server stopped: {e}"),
                "Restart `mfp-host serve`.",
            )
        })
    })?;
    Ok(0)
}

/// Every route of web/API.md; `/demo/*` only with `--demo`.
fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout))
        .route("/api/v1/smtp", get(api::get_smtp).post(api::post_smtp))
        .route(
            "/api/v1/control-panel",
            get(api::get_control_panel).post(api::post_control_panel),
        )
        .route("/api/v1/diagnostics", get(api::get_diagnostics))
        .route(
            "/api/v1/signin",
            get(api::get_signin)
                .post(api::post_signin)
                .delete(api::delete_signin),
        )
        .route("/api/v1/admin-consent", get(api::get_admin_consent))
        .route(
            "/api/v1/send",
            post(api::post_send).layer(DefaultBodyLimit::max(SEND_BODY_LIMIT)),
        )
        .route("/", get(assets::index))
        .route("/login", get(assets::login))
        .route("/{file}", get(assets::file));
    if state.demo.is_some() {
        app = app.merge(demo::routes());
    }
    app.route_layer(middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
}

/// One line per request: method, path (never the query), status and milliseconds; never
/// a body, a cookie, a password or a token. Adds the headers every answer carries.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(200).collect();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    tracing::info!(
        target: "mfp_host::serve::access",
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    response
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
