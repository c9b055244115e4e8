//! The headers every answer carries, and the Content-Security-Policy of each page.
//!
//! The panel's pages load their scripts and styles from this server only, with no inline
//! script or style (the demo pages and the login page included), so the policy can be
//! `default-src 'self'`: an injected `<script>` or `onclick=` does not run, and no page can
//! be framed by another site (`frame-ancestors 'none'`, clickjacking). A route that needs
//! more sets its own policy with [`with_policy`] and this layer leaves it alone; the only
//! such need is the browser preview's WebAssembly compile ([`Policy::WasmPage`]).
//!
//! No `Strict-Transport-Security`: with the self-signed certificate of a first start, HSTS
//! would make a browser refuse the certificate exception the administrator must be able
//! to make after checking the fingerprint.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// Which Content-Security-Policy a page gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Every page and answer: scripts, styles, images and requests from this origin only.
    Page,
    /// [`Policy::Page`] plus `'wasm-unsafe-eval'`: the page may compile WebAssembly (the
    /// browser preview runs the component in the page), and still runs no inline script
    /// and no `eval`. Only the preview, which needs the `demo` feature, serves it.
    #[cfg_attr(not(feature = "demo"), allow(dead_code))]
    WasmPage,
}

impl Policy {
    /// The header value.
    pub(crate) fn header(self) -> HeaderValue {
        let script = match self {
            Self::Page => "script-src 'self'",
            Self::WasmPage => "script-src 'self' 'wasm-unsafe-eval'",
        };
        let value = format!(
            "default-src 'self'; {script}; style-src 'self'; img-src 'self'; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    }
}

/// `response` with the policy `policy`, which the outer layer then keeps.
pub(crate) fn with_policy(mut response: Response, policy: Policy) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, policy.header());
    response
}

/// The headers of every answer: the page policy unless the route set one, no MIME
/// sniffing, no framing (also for browsers without `frame-ancestors`), no referrer, and
/// no caching unless the route said otherwise.
pub(crate) fn add_headers(headers: &mut HeaderMap) {
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| Policy::Page.header());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_this_origin_and_no_inline_script() {
        let page = Policy::Page.header();
        let page = page.to_str().unwrap();
        assert!(page.starts_with("default-src 'self';"), "{page}");
        assert!(page.contains("frame-ancestors 'none'"), "{page}");
        assert!(
            !page.contains("unsafe-inline") && !page.contains("unsafe-eval"),
            "{page}"
        );
        let wasm = Policy::WasmPage.header();
        let wasm = wasm.to_str().unwrap();
        assert!(
            wasm.contains("script-src 'self' 'wasm-unsafe-eval'"),
            "{wasm}"
        );
        assert!(
            !wasm.contains("'unsafe-eval'") && !wasm.contains("unsafe-inline"),
            "{wasm}"
        );
    }

    #[test]
    fn a_route_policy_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_SECURITY_POLICY, Policy::WasmPage.header());
        add_headers(&mut headers);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            Policy::WasmPage.header()
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
