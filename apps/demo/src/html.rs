//! The page frame and the stylesheet. Pages are askama templates (`templates/`, escaping
//! on) extending `base.html`; they carry no script and no inline style, so a strict
//! Content-Security-Policy holds.
//!
//! The stylesheet (one for both apps) is served under a name that carries a hash of its
//! bytes, so it can be cached for a year: a changed file gets a new name. Any other name
//! under `/static/` (and the old `/style.css`) is a 404.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The stylesheet, byte for byte.
pub(crate) const STYLESHEET: &str = include_str!("../static/demo.css");

/// `demo.<first 16 hex digits of SHA-256>.css`.
static STYLESHEET_FILE: LazyLock<String> = LazyLock::new(|| {
    let digest = hex::encode(Sha256::digest(STYLESHEET.as_bytes()));
    format!("demo.{}.css", digest.get(..16).unwrap_or(&digest))
});

/// The stylesheet's URL path, as pages link to it.
pub(crate) fn stylesheet_href() -> String {
    format!("/static/{}", STYLESHEET_FILE.as_str())
}

/// GET /static/{file}
pub(crate) async fn static_file(
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    match file {
        Ok(Path(name)) if name == *STYLESHEET_FILE => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            STYLESHEET,
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Renders a page. Templates fail only on a formatting error (never on input); then the
/// visitor gets a one-line text instead of a half page, and the log says why.
pub(crate) fn render<T: Template>(page: &T) -> String {
    page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "page template failed");
        "This page could not be shown.".to_owned()
    })
}
