//! `/preview/`: the browser preview (crate `mfp-preview`, feature `demo`), the device's own
//! component running in the visitor's browser against the Microsoft stand-ins in the page.
//! It needs no administrator login: it changes nothing on the device and reads nothing
//! from it, and every file it serves is embedded in the binary. Its pages compile
//! WebAssembly, so they get the `'wasm-unsafe-eval'` policy ([`Policy::WasmPage`]).
//!
//! Without the `demo` feature the routes answer 404 and say how to get the preview.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::AppState;
use super::csp::{Policy, with_policy};

/// The routes; merged outside the administrator's guard.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/preview",
            get(|| async { Redirect::permanent("/preview/") }),
        )
        .route("/preview/", get(|| async { file("") }))
        .route(
            "/preview/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

#[cfg(feature = "demo")]
fn file(path: &str) -> Response {
    match mfp_preview::asset(path) {
        Some(asset) => {
            let mut response = asset.bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            );
            with_policy(response, Policy::WasmPage)
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Without the stand-ins there is no preview: say how to build it.
#[cfg(not(feature = "demo"))]
fn file(_path: &str) -> Response {
    let failure = crate::cli::preview_not_built();
    let mut response = (
        StatusCode::NOT_FOUND,
        format!(
            "error[{}]: {}\nremedy: {}\n",
            failure.code,
            failure.message,
            crate::frontend::Surface::WebPanel.words(&failure.remedy)
        ),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    with_policy(response, Policy::Page)
}
