//! The HTTP side every SCIM server shares (axum): the body limit, error and resource
//! responses with their ETag and Location headers, `If-Match`/`If-None-Match`, the bound
//! on requests in flight, and the discovery endpoints, so the SP toolkit's server and the
//! IdP's answer the same way.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::schema;
use super::{CONTENT_TYPE, LIST_SCHEMA, MAX_BODY_BYTES, ScimError, etag, if_match_admits};

/// The error as a SCIM response, with its log line: error level only for a fault of ours
/// (500); an overload (503) or a feature we do not offer (501) is a warning, so that a flood
/// of anonymous requests cannot fill the log with errors.
pub fn error(e: &ScimError) -> Response {
    if e.status == 500 {
        tracing::error!(status = e.status, detail = %e.detail, "SCIM error");
    } else if e.status > 500 {
        tracing::warn!(status = e.status, detail = %e.detail, "SCIM request not served");
    } else {
        tracing::info!(status = e.status, scim_type = ?e.scim_type.map(|t| t.as_str()), detail = %e.detail, "SCIM request refused");
    }
    let mut response = json_response(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_json(),
    );
    if e.status == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// 401 with `WWW-Authenticate: Bearer`.
pub fn unauthorized() -> Response {
    tracing::warn!("SCIM request refused: no valid bearer token");
    let mut r = error(&ScimError::status(401, "a valid bearer token is required"));
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"scim\""),
    );
    r
}

/// A JSON body as `application/scim+json`.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body.to_string(),
    )
        .into_response()
}

/// A resource with its `ETag`, and its `Location` when `location` (a creation).
pub fn resource(status: StatusCode, json: &Value, version: i64, location: bool) -> Response {
    let mut response = json_response(status, json);
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if location && let Some(Ok(v)) = json["meta"]["location"].as_str().map(HeaderValue::from_str) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A read resource: 304 when `If-None-Match` names its version, else 200.
pub fn got(headers: &HeaderMap, json: &Value, version: i64) -> Response {
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_match_admits(v, version));
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(version)) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return response;
    }
    resource(StatusCode::OK, json, version, false)
}

/// The `If-Match` header, if any.
pub fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// The bearer token of `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The body as JSON, refusing one over [`MAX_BODY_BYTES`] (413, before reading past the
/// limit) or not JSON (400 `invalidSyntax`).
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ScimError> {
    let too_large = || {
        ScimError::status(
            413,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not JSON: {e}")))
}

/// A bound on the requests served at once.
#[derive(Debug)]
pub struct InFlight {
    count: AtomicUsize,
    max: usize,
}

/// A slot among the requests in flight; released when dropped.
#[derive(Debug)]
pub struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// At most `max` at once.
    pub fn new(max: usize) -> Self {
        InFlight {
            count: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot in one atomic step (before any other work), or answers 503 with
    /// `Retry-After`.
    pub fn take(&self) -> Result<Slot<'_>, Box<Response>> {
        if self.count.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!("SCIM request refused: too many in flight");
            return Err(Box::new(error(&ScimError::status(
                503,
                "too many requests in flight; retry",
            ))));
        }
        Ok(Slot(&self.count))
    }
}

/// A ListResponse of every item, on one page (the discovery lists).
pub fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Response {
    json_response(StatusCode::OK, &super::service_provider_config(base))
}

/// `GET /Schemas`.
pub fn schemas(base: &str) -> Response {
    let items = schema::ALL_SCHEMAS
        .iter()
        .map(|sc| schema::schema_json(sc, base))
        .collect();
    json_response(StatusCode::OK, &list_of(items))
}

/// `GET /Schemas/{id}`.
pub fn schema_by_id(base: &str, id: &str) -> Response {
    match schema::ALL_SCHEMAS.iter().find(|sc| sc.id == id) {
        Some(sc) => json_response(StatusCode::OK, &schema::schema_json(sc, base)),
        None => error(&ScimError::not_found("Schema")),
    }
}

/// `GET /ResourceTypes`.
pub fn resource_types(base: &str) -> Response {
    let items = schema::ALL_TYPES
        .iter()
        .map(|rt| rt.to_json(base))
        .collect();
    json_response(StatusCode::OK, &list_of(items))
}

/// `GET /ResourceTypes/{id}`.
pub fn resource_type_by_id(base: &str, id: &str) -> Response {
    match schema::ALL_TYPES.iter().find(|rt| rt.name == id) {
        Some(rt) => json_response(StatusCode::OK, &rt.to_json(base)),
        None => error(&ScimError::not_found("ResourceType")),
    }
}

/// Any other path: 501 for a POST to the two endpoints of RFC 7644 this server does not
/// offer (`/Bulk`, section 3.7, and `/.search`, at the root or under a resource type,
/// section 3.4.3), as the RFC asks; 404 for everything else, so that a client that mistyped
/// a path is told so rather than told a feature is missing.
pub fn fallback(method: &Method, path: &str) -> Response {
    error(&unoffered(method, path).unwrap_or_else(|| ScimError::not_found("endpoint")))
}

/// A path we serve, with a method we do not: 405 in SCIM's error shape, or 501 for a
/// `/.search` under a resource type (which the path `/Users/{id}` would otherwise take).
pub fn method_not_allowed(method: &Method, path: &str) -> Response {
    error(
        &unoffered(method, path)
            .unwrap_or_else(|| ScimError::status(405, format!("{method} is not allowed here"))),
    )
}

/// The 501 of a POST to an endpoint of RFC 7644 this server does not offer.
fn unoffered(method: &Method, path: &str) -> Option<ScimError> {
    let search = path == "/.search" || path.ends_with("/.search");
    (method == Method::POST && (path == "/Bulk" || search))
        .then(|| ScimError::status(501, "not supported by this server (no Bulk, no /.search)"))
}
