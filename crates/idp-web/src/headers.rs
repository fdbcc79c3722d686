//! Security headers on every response, and per-route latency and failure metrics.
//!
//! A handler that needs a different Content-Security-Policy (the SAML auto-POST page, which
//! runs one hashed script and posts to the SP) sets its own; every other response gets the
//! strict default: nothing but our stylesheet and images, forms only to ourselves, never
//! framed. The admin API (`/api/v1`) gets the same defaults through [`api`]: its JSON
//! carries directory data, which must neither be sniffed into something else nor cached.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::WebState;
use super::error::FailureCode;

/// The default policy for pages on an https origin.
const CSP_HTTPS: &str = "default-src 'none'; style-src 'self'; img-src 'self' https:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The same on a plain-http development origin (tile icons may be http there).
const CSP_HTTP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: http:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The middleware.
pub async fn layer(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let mut response = next.run(request).await;
    let https = state.settings().https;
    let headers = response.headers_mut();
    set_defaults(headers, if https { CSP_HTTPS } else { CSP_HTTP });
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if let Some(FailureCode(code)) = response.extensions().get::<FailureCode>() {
        state.metrics().failure(*code);
    }
    state.metrics().observe(&route, started.elapsed());
    response
}

/// The middleware for the admin API router. It has no [`WebState`], so no https setting:
/// HSTS is left to the pages of the same origin, and the CSP is the strict one (JSON shows
/// no images).
pub async fn api(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_defaults(response.headers_mut(), CSP_HTTPS);
    response
}

/// Adds each default header the handler did not set itself.
fn set_defaults(headers: &mut HeaderMap, csp: &'static str) {
    let defaults: [(header::HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
}
