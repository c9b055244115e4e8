//! `mfp-host serve`: the web panel (the files of `web/`, embedded in the binary) and the
//! device JSON API of `web/API.md`, on one listener: plain HTTP on loopback (the default),
//! HTTPS elsewhere.
//!
//! Like the command line, the server decides nothing about the settings: every route
//! forwards one call to the component (in a blocking task, on a fresh instance) and
//! returns what it said, through the shared views of [`crate::frontend`]. What the server
//! owns is what a host must own: who may call (the administrator's login,
//! [`admin_login`]), the sign-in timer ([`signin_timer`]), and with the `demo` feature
//! and `--demo`, the Microsoft stand-ins (`demo`).
//!
//! - [`api`]: the `/api/v1/*` routes and the mapping of failures to HTTP;
//! - [`admin_login`]: admin password (Argon2), sessions, the `Origin` check of mutating
//!   requests;
//! - [`login_throttle`]: a growing delay per client after failed logins, and a cap on
//!   concurrent Argon2 checks;
//! - [`site`]: which names and origins are this server (`Host` check, DNS rebinding);
//! - [`tls`]: HTTPS, the administrator's certificate or a self-signed one;
//! - [`limits`]: the accept loop: connection cap, header and body read timeouts;
//! - [`content_type`]: request bodies must be declared JSON;
//! - [`csp`]: the Content-Security-Policy and the other headers of every answer;
//! - [`signin_timer`]: polls the identity platform exactly when the component says;
//! - `demo` (feature `demo`): the stand-ins on loopback, the device-login and mailbox
//!   pages, scenarios;
//! - [`assets`]: the embedded `web/` pages, scripts and styles.

mod admin_login;
mod api;
mod assets;
mod content_type;
pub(crate) mod csp;
#[cfg(feature = "demo")]
mod demo;
mod limits;
mod login_throttle;
mod preview;
mod signin_timer;
mod site;

use crate::frontend::certificate as tls;
use crate::relay;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use std::path::PathBuf;

use crate::device::Device;
use crate::frontend::Failure;
use crate::frontend::options::{DeviceFlags, default_state_dir};

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
    /// Serve HTTPS with this certificate chain (PEM, leaf first; with --tls-key). Without
    /// it, a --listen address other than loopback gets a self-signed certificate, made at
    /// the first start and kept in the state dir.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a --listen address other than loopback (refused without it): the
    /// password and the session then cross the network in clear text. Only behind a TLS
    /// reverse proxy (see --public-origin) or on a network you trust.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub allow_plain_http: bool,
    /// The https:// origin browsers reach the panel at when it is not the listen address:
    /// a TLS reverse proxy's, or this machine's DNS name. Its Host and Origin are accepted.
    #[arg(long, value_name = "https://HOST[:PORT]")]
    pub public_origin: Option<String>,
    /// Also run the SMTP relay for nearby devices on this address (as `mfp-host relay
    /// --listen` does), answering STARTTLS with the panel's certificate.
    #[arg(long, value_name = "ADDR:PORT")]
    pub relay_listen: Option<std::net::SocketAddr>,
    /// An address range that may use the relay, in CIDR notation (repeat for several):
    /// `relay --allow` for `--relay-listen`.
    #[arg(long, value_name = "CIDR", requires = "relay_listen")]
    pub relay_allow: Vec<String>,
    /// The relay password file: `relay --relay-password-file` for `--relay-listen`.
    #[arg(long, value_name = "FILE", requires = "relay_listen")]
    pub relay_password_file: Option<PathBuf>,
    /// For tests only: the longest wait for a request's headers (and a TLS handshake).
    #[arg(long, value_name = "SECONDS", hide = true, default_value_t = limits::HEADER_READ_TIMEOUT.as_secs())]
    pub header_read_timeout_secs: u64,
    /// For tests only: the longest wait for a request body (before the size allowance).
    #[arg(long, value_name = "SECONDS", hide = true, default_value_t = limits::BODY_READ_TIMEOUT.as_secs())]
    pub body_read_timeout_secs: u64,
    /// For tests only: connections served at once.
    #[arg(long, value_name = "N", hide = true, default_value_t = limits::MAX_CONNECTIONS)]
    pub max_connections: usize,
}

/// How the listener speaks, from the flags and the listen address.
enum Transport {
    Plain,
    /// `--tls-cert` and `--tls-key`.
    GivenCertificate(PathBuf, PathBuf),
    /// A listen address other than loopback, without a certificate: the self-signed one.
    SelfSigned,
}

/// Whether `ip` is a loopback address (an IPv4-mapped one included).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn transport(args: &ServeArgs) -> Transport {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Transport::GivenCertificate(cert.clone(), key.clone()),
        _ if is_loopback(args.listen.ip()) || args.allow_plain_http => Transport::Plain,
        _ => Transport::SelfSigned,
    }
}

/// The state dir `serve` uses: `serve --demo` without `--state-dir` gets one of its own,
/// `demo/` in the default state dir, so the demo's fake tokens, fake Device Email Address
/// and scenario settings never land in the real device's state.
fn serve_flags(flags: &DeviceFlags, args: &ServeArgs) -> DeviceFlags {
    let mut flags = flags.clone();
    if args.demo && flags.state_dir.is_none() {
        flags.state_dir = Some(default_state_dir().join(DEMO_STATE_SUBDIR));
    }
    flags
}

/// The demo's own state dir, inside the default one (when `--state-dir` is not given).
pub const DEMO_STATE_SUBDIR: &str = "demo";

/// The largest request body of a test email (attachments travel base64-encoded).
const SEND_BODY_LIMIT: usize = 48 << 20;
/// The largest body of any other request.
const BODY_LIMIT: usize = 64 << 10;

/// The largest body the route at `path` takes.
fn body_limit(path: &str) -> usize {
    if path == "/api/v1/send" {
        SEND_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub device: Arc<Device>,
    pub admin_login: Arc<admin_login::AdminLogin>,
    pub signin: Arc<signin_timer::SigninTimer>,
    pub site: Arc<site::Site>,
    pub limits: limits::Limits,
    /// The relay's configuration when `--relay-listen` runs one, for the panel.
    pub relay: Option<Arc<crate::bindings::relay::RelayConfig>>,
    /// The state dir, where a separate `mfp-host relay` announces itself.
    pub state_dir: Arc<std::path::Path>,
    #[cfg(feature = "demo")]
    pub demo: Option<Arc<demo::Demo>>,
}

fn failed(code: &str, message: String, remedy: &str) -> Failure {
    Failure::device_fault(code, message, remedy)
}

/// Runs the server until interrupted (Ctrl-C or SIGTERM). Prints `admin password: …` when
/// it generated one, the certificate's fingerprint when it serves HTTPS, then
/// `listening on http://ADDR` (or `https://`) once the socket is bound.
pub fn run(flags: &DeviceFlags, args: ServeArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let public_origin = args
        .public_origin
        .as_deref()
        .map(site::PublicOrigin::parse)
        .transpose()
        .map_err(|why| {
            Failure::bad_input(
                "public-origin-invalid",
                format!("--public-origin is not an https origin: {why}"),
                "Give the origin browsers use, e.g. --public-origin https://printer.example.com or https://printer.example.com:8443.",
            )
        })?;
    let transport = transport(&args);
    #[cfg(feature = "demo")]
    let own_demo_state = args.demo && flags.state_dir.is_none();
    let flags = &serve_flags(flags, &args);
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
    let site = site::Site {
        listen: addr,
        https: !matches!(transport, Transport::Plain),
        public_origin,
    };

    // Only `--demo` changes the options: it points the network at the stand-ins.
    #[cfg_attr(not(feature = "demo"), expect(unused_mut))]
    let mut options = flags.device_options()?;
    #[cfg(feature = "demo")]
    let demo = match (args.demo, options.net.as_mut()) {
        (true, Some(net)) => Some(Arc::new(demo::Demo::start(&panel_url(&site), net)?)),
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
    let tls = match &transport {
        Transport::Plain => None,
        Transport::GivenCertificate(cert, key) => Some(tls::from_files(cert, key)?),
        Transport::SelfSigned => {
            let public_host = site.public_origin.as_ref().map(|p| p.host_name());
            let names = tls::certificate_names(addr.ip(), public_host);
            Some(tls::self_signed(&state_dir, &names)?)
        }
    };
    let admin = admin_login::admin_password_hash(args.admin_password_file.as_deref(), &state_dir)?;
    if let Some(password) = &admin.generated {
        writeln!(out, "admin password: {password}").map_err(Failure::output)?;
        eprintln!(
            "The administrator password above is shown only once; its Argon2 hash is kept in {}.",
            state_dir.join(admin_login::HASH_FILE).display()
        );
    }
    if let Some(tls) = &tls {
        if let tls::Origin::SelfSignedNew(path) = &tls.origin {
            eprintln!(
                "A self-signed certificate for the panel was made and kept in {} (mode 0600). Browsers warn about it: accept it only when the fingerprint they show is the one below.",
                path.display()
            );
        }
        writeln!(
            out,
            "tls certificate SHA-256 fingerprint: {}",
            tls.fingerprint
        )
        .map_err(Failure::output)?;
    }
    if !site.https && !is_loopback(addr.ip()) {
        eprintln!(
            "warning: serving the panel over plain HTTP on {addr} (--allow-plain-http): the administrator password and the session cross the network in clear text. Use it only behind a TLS reverse proxy (--public-origin) or on a network you trust."
        );
    }
    // What the command line needs to run against this demo, and where it was written.
    #[cfg(feature = "demo")]
    if let Some(demo) = &demo {
        let line = demo.write_cli_files(&state_dir)?;
        writeln!(out, "{line}").map_err(Failure::output)?;
        if own_demo_state {
            eprintln!(
                "demo: the demo keeps its state in {} (not the device's); give --state-dir to choose another.",
                state_dir.display()
            );
        }
    }
    let relay = match args.relay_listen {
        Some(listen) => {
            // The relay answers STARTTLS with the panel's certificate, or with the
            // self-signed one when the panel itself serves plain HTTP.
            let config = match &tls {
                Some(tls) => tls.config.clone(),
                None => {
                    tls::self_signed(&state_dir, &tls::certificate_names(listen.ip(), None))?.config
                }
            };
            let access = relay::RelayAccessArgs {
                allow: args.relay_allow.clone(),
                relay_password_file: args.relay_password_file.clone(),
            };
            let relay = relay::Relay::bind(device.clone(), listen, &access, config)?;
            for line in relay.describe() {
                writeln!(out, "{line}").map_err(Failure::output)?;
            }
            let status = Arc::new(relay.config().clone());
            std::thread::Builder::new()
                .name("mfp-relay-listener".into())
                .spawn(move || relay.serve_forever())
                .map_err(|e| {
                    failed(
                        "runtime-failed",
                        format!("Cannot start the relay's thread: {e}"),
                        "Check the process limits of this user.",
                    )
                })?;
            Some(status)
        }
        None => None,
    };
    let limits = limits::Limits {
        max_connections: args.max_connections.max(1),
        header_read: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        body_read: Duration::from_secs(args.body_read_timeout_secs.max(1)),
    };
    let state = AppState {
        device,
        admin_login: Arc::new(admin_login::AdminLogin::new(admin.hash)),
        signin: Arc::new(signin_timer::SigninTimer::default()),
        site: Arc::new(site),
        limits,
        relay,
        state_dir: Arc::from(state_dir.as_path()),
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
        let scheme = state.site.scheme();
        let app = router(state);
        writeln!(out, "listening on {scheme}://{addr}").map_err(Failure::output)?;
        out.flush().map_err(Failure::output)?;
        tracing::info!(target: "mfp_host::serve", "listening on {scheme}://{addr}");
        limits::serve(
            listener,
            app,
            tls.map(|tls| tls.config),
            limits,
            shutdown_signal(),
        )
        .await;
        Ok::<(), Failure>(())
    })?;
    Ok(0)
}

/// The panel's address for a page the demo links to (the device-login page): the public
/// origin, else the listen address (loopback for a wildcard listen).
#[cfg(feature = "demo")]
fn panel_url(site: &site::Site) -> String {
    if let Some(public) = &site.public_origin {
        return public.as_str().to_owned();
    }
    let mut addr = site.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    format!("{}://{addr}", site.scheme())
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
        .route("/api/v1/relay", get(api::get_relay))
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
    // In order: the Origin and session checks, the body's declared type, then the body
    // read within its deadline.
    app.route_layer(middleware::from_fn_with_state(
        state.clone(),
        limits::read_body,
    ))
    .route_layer(middleware::from_fn(content_type::require_json))
    .route_layer(middleware::from_fn_with_state(
        state.clone(),
        admin_login::guard,
    ))
    // The browser preview runs in the visitor's browser and changes nothing here: no login.
    .merge(preview::routes())
    .layer(DefaultBodyLimit::max(BODY_LIMIT))
    .layer(middleware::from_fn_with_state(
        state.clone(),
        site::host_check,
    ))
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
    csp::add_headers(response.headers_mut());
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
