//! Entity tags on the admin API. A read of an object that clients replace or patch whole
//! answers the version it read (`ETag`); a write that names one (`If-Match`) goes only if the
//! object is still at it, checked under the object's row lock, else 412 `changed_since` and
//! nothing written. SCIM reads `If-Match` the same way ([`latchkey_scim::if_match_admits_tag`]).

use axum::http::{HeaderMap, HeaderName, header};

/// The `ETag` header of an object at `version`.
pub(crate) fn of(version: &str) -> [(HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// The request's `If-Match`, if any (a value that is not text admits nothing).
#[derive(Debug, Clone)]
pub(crate) struct IfMatch(Option<String>);

impl IfMatch {
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        IfMatch(
            headers
                .get(header::IF_MATCH)
                .map(|v| v.to_str().unwrap_or_default().to_owned()),
        )
    }

    /// Whether the write may go with the object at `version`: always without the header.
    pub(crate) fn admits(&self, version: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|header| latchkey_scim::if_match_admits_tag(header, version))
    }
}
