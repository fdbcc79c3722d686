//! The stylesheet, served under a name that carries a hash of its bytes.
//!
//! A changed stylesheet gets a new name, so every page links to the version it was built
//! with and the file itself can be cached for a year (`immutable`): no browser ever mixes a
//! new page with an old stylesheet, and no request is spent revalidating it. Any other name
//! under `/static/` (the old `latchkey.css` included) is a 404.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::WebError;

/// The IdP's one stylesheet, byte for byte.
pub const STYLESHEET: &str = include_str!("../static/latchkey.css");

/// `latchkey.<first 16 hex digits of SHA-256>.css`, computed once from [`STYLESHEET`].
static STYLESHEET_FILE: LazyLock<String> = LazyLock::new(|| {
    let digest = hex::encode(Sha256::digest(STYLESHEET.as_bytes()));
    format!("latchkey.{}.css", digest.get(..16).unwrap_or(&digest))
});

/// The stylesheet's URL path, as pages link to it.
pub fn stylesheet_href() -> String {
    format!("/static/{}", STYLESHEET_FILE.as_str())
}

/// The cache policy of a file whose name changes with its content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// GET /static/{file}
pub async fn file(file: Result<Path<String>, axum::extract::rejection::PathRejection>) -> Response {
    match file {
        Ok(Path(name)) if name == *STYLESHEET_FILE => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, IMMUTABLE),
            ],
            STYLESHEET,
        )
            .into_response(),
        _ => WebError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_carries_the_content_hash() {
        let href = stylesheet_href();
        let hash = href
            .strip_prefix("/static/latchkey.")
            .and_then(|h| h.strip_suffix(".css"))
            .unwrap_or_default();
        assert_eq!(hash.len(), 16, "{href}");
        let full = hex::encode(Sha256::digest(STYLESHEET.as_bytes()));
        assert!(full.starts_with(hash), "{href}");
    }
}
