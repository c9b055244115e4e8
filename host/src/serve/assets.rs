//! The panel's files (`web/*.html`, `*.js`, `*.css`, `*.svg`), embedded in the binary at build
//! time; the browser tests, node modules and package files stay out. `host/build.rs` watches
//! the same files by name (its `panel_files`): a change to these patterns goes there too.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "../web/"]
#[include = "*.html"]
#[include = "*.js"]
#[include = "*.css"]
#[include = "*.svg"]
#[exclude = "node_modules/*"]
#[exclude = "tests/*"]
#[exclude = "test/*"]
#[exclude = "*.config.js"]
#[exclude = "*.test.js"]
#[exclude = "*.spec.js"]
struct Web;

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The embedded file `name` (top level of `web/` only), or 404.
fn serve(name: &str) -> Response {
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return not_found();
    }
    match Web::get(name) {
        Some(file) => {
            let mut response = file.data.into_owned().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(name)),
            );
            response
        }
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// `GET /`: the panel.
pub(crate) async fn index() -> Response {
    serve("index.html")
}

/// `GET /login`: the login page.
pub(crate) async fn login() -> Response {
    serve("login.html")
}

/// `GET /{file}`: a page, script or style by name.
pub(crate) async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}
