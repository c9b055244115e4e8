//! `mfp-host serve`: the web panel (the files of `web/`, embedded in the binary) and the
//! device JSON API of `web/API.md`, on one HTTP listener (loopback by default).
//!
//! Like the command line, the server decides nothing about the settings: every route
//! forwards one call to the component (in a blocking task, on a fresh instance) and
//! returns what it said, through the shared views of [`crate::frontend`]. What the server
//! owns is what a host must own: who may call (the administrator's login,
//! [`admin_login`]), the sign-in timer ([`signin_timer`]), and with the `demo` feature
//! and `--demo`, the Microsoft stand-ins (`demo`).
//!
//! - [`api`]: the `/api/v1/*` routes and the mapping of failures to HTTP;
//! - [`admin_login`]: admin password (Argon2), sessions, the `Origin` check, login rate limit;
//! - [`signin_timer`]: polls the identity platform exactly when the component says;
//! - `demo` (feature `demo`): the stand-ins on loopback, the device-login and mailbox
//!   pages, scenarios;
//! - [`assets`]: the embedded `web/` pages, scripts and styles.

mod admin_login;
mod api;
mod assets;
#[cfg(feature = "demo")]
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

use std::path::PathBuf;

use crate::device::Device;
use crate::frontend::Failure;
use crate::frontend::options::DeviceFlags;

/// `mfp-host serve`'s own flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the real one is printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Run embedded fake Microsoft endpoints on loopback and the demo pages (/demo/...).
    #[arg(long)]
    pub demo: bool,
    /// File holding the administrator password (else $MFP_ADMIN_PASSWORD, else a random
    /// one generated at the first start, printed once, kept only as an Argon2 hash).
    #[arg(long, value_name = "FILE")]
    pub admin_password_file: Option<PathBuf>,
}

/// The largest request body of a test email (attachments travel base64-encoded).
const SEND_BODY_LIMIT: usize = 48 << 20;
/// The largest body of any other request.
const BODY_LIMIT: usize = 64 << 10;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub device: Arc<Device>,
    pub admin_login: Arc<admin_login::AdminLogin>,
    pub signin: Arc<signin_timer::SigninTimer>,
    #[cfg(feature = "demo")]
    pub demo: Option<Arc<demo::Demo>>,
}

fn failed(code: &str, message: String, remedy: &str) -> Failure {
    Failure::device_fault(code, message, remedy)
}

/// Runs the server until interrupted (Ctrl-C or SIGTERM). Prints `admin password: …` when
/// it generated one, then `listening on http://ADDR` once the socket is bound.
pub fn run(flags: &DeviceFlags, args: ServeArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let listener = std::net::TcpListener::bind(args.listen).map_err(|e| {
        failed(
            "listen-failed",
            format!("Cannot listen on {}: {e}", args.listen),
            "Choose a free address with --listen (e.g. 127.0.0.1:0 for any free port).",
        )
    })?;
    let addr = listener.local_addr().map_err(|e| {
        failed(
            "listen-failed",
            format!("Cannot read the listening address: {e}"),
            "Try again with another --listen address.",
        )
    })?;

    // Only `--demo` changes the options: it points the network at the stand-ins.
    #[cfg_attr(not(feature = "demo"), expect(unused_mut))]
    let mut options = flags.device_options()?;
    #[cfg(feature = "demo")]
    let demo = match (args.demo, options.net.as_mut()) {
        (true, Some(net)) => Some(Arc::new(demo::Demo::start(addr, net)?)),
        _ => None,
    };
    #[cfg(not(feature = "demo"))]
    if args.demo {
        return Err(Failure::bad_input(
            "demo-not-built",
            "This mfp-host was built without the Microsoft stand-ins, so --demo is not available",
            "Build it with the `demo` feature (on by default): `cargo build --release -p mfp-host`, or run without --demo against the real Microsoft endpoints.",
        ));
    }
    let state_dir = flags.state_dir();
    let device = Arc::new(Device::open(options)?);
    let admin = admin_login::admin_password_hash(args.admin_password_file.as_deref(), &state_dir)?;
    if let Some(password) = &admin.generated {
        writeln!(out, "admin password: {password}").map_err(Failure::output)?;
        eprintln!(
            "The administrator password above is shown only once; its Argon2 hash is kept in {}.",
            state_dir.join(admin_login::HASH_FILE).display()
        );
    }
    // What the command line needs to run against this demo, and where it was written.
    #[cfg(feature = "demo")]
    if let Some(demo) = &demo {
        let line = demo.write_cli_files(&state_dir)?;
        writeln!(out, "{line}").map_err(Failure::output)?;
    }
    let state = AppState {
        device,
        admin_login: Arc::new(admin_login::AdminLogin::new(admin.hash)),
        signin: Arc::new(signin_timer::SigninTimer::default()),
        #[cfg(feature = "demo")]
        demo,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mfp-serve")
        .build()
        .map_err(|e| {
            failed(
                "runtime-failed",
                format!("Cannot start the server's threads: {e}"),
                "Check the process limits of this user.",
            )
        })?;
    runtime.block_on(async move {
        listener.set_nonblocking(true).map_err(|e| {
            failed(
                "listen-failed",
                format!("Cannot use the listening socket: {e}"),
                "Try again.",
            )
        })?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| {
            failed(
                "listen-failed",
                format!("Cannot use the listening socket: {e}"),
                "Try again.",
            )
        })?;
        // A sign-in left in progress by an earlier run goes on being polled.
        signin_timer::resume(state.clone());
        // An idle device stays signed in: refresh tokens expire after 90 idle days.
        signin_timer::keep_alive(state.clone());
        let app = router(state);
        writeln!(out, "listening on http://{addr}").map_err(Failure::output)?;
        out.flush().map_err(Failure::output)?;
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
                format!("The server stopped: {e}"),
                "Restart `mfp-host serve`.",
            )
        })
    })?;
    Ok(0)
}

/// Every route of web/API.md; `/demo/*` only with `--demo`.
fn router(state: AppState) -> Router {
    #[cfg_attr(not(feature = "demo"), expect(unused_mut))]
    let mut app = Router::new()
        .route("/api/v1/login", post(admin_login::login))
        .route("/api/v1/logout", post(admin_login::logout))
        .route("/api/v1/smtp", get(api::get_smtp).post(api::post_smtp))
        .route(
            "/api/v1/control-panel",
            get(api::get_control_panel).post(api::post_control_panel),
        )
        .route("/api/v1/diagnostics", get(api::get_diagnostics))
        .route("/api/v1/history", get(api::get_history))
        .route(
            "/api/v1/signin",
            get(api::get_signin)
                .post(api::post_signin)
                .delete(api::delete_signin),
        )
        .route("/api/v1/signin/cancel", post(api::post_signin_cancel))
        .route("/api/v1/admin-consent", get(api::get_admin_consent))
        .route(
            "/api/v1/send",
            post(api::post_send).layer(DefaultBodyLimit::max(SEND_BODY_LIMIT)),
        )
        .route("/", get(assets::index))
        .route("/login", get(assets::login))
        .route("/{file}", get(assets::file));
    #[cfg(feature = "demo")]
    if state.demo.is_some() {
        app = app.merge(demo::routes());
    }
    app.route_layer(middleware::from_fn_with_state(
        state.clone(),
        admin_login::guard,
    ))
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
