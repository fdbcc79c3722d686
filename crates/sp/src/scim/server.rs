//! The SCIM endpoints over axum: `router` serves a [`ScimService`] under whatever prefix the
//! application nests it at (`/scim/v2` by convention).
//!
//! Every route needs a configured bearer token (401 otherwise). A body larger than
//! [`MAX_BODY_BYTES`] is refused with 413 before it is parsed, and at most [`MAX_IN_FLIGHT`]
//! requests are served at once (503 with `Retry-After` past that), so a token holder cannot
//! make the application buffer or queue without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::list::{ListQuery, Projection};
use super::schema::{self, GROUP_TYPE, USER_TYPE};
use super::service::{Actor, Resource, ScimService};
use super::{CONTENT_TYPE, LIST_SCHEMA, MAX_BODY_BYTES, ScimError, etag, if_match_admits};

/// The most SCIM requests served at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// Where the endpoints get the time.
pub type Now = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

struct Server {
    service: ScimService,
    now: Now,
    in_flight: AtomicUsize,
}

type S = Arc<Server>;

/// The SCIM routes for `service`, to nest under the SCIM base path.
pub fn router(service: ScimService, now: Now) -> Router {
    let state = Arc::new(Server {
        service,
        now,
        in_flight: AtomicUsize::new(0),
    });
    Router::new()
        .route("/Users", get(list_users).post(create_user))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route("/Groups", get(list_groups).post(create_group))
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(put_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema_by_id))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type_by_id))
        .fallback(not_found)
        .with_state(state)
}

/// A slot among the requests in flight; released when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes a slot (before any other work) and checks the token.
fn admit<'a>(server: &'a Server, headers: &HeaderMap) -> Result<(Slot<'a>, Actor), Box<Response>> {
    if server.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
        server.in_flight.fetch_sub(1, Ordering::AcqRel);
        tracing::warn!("SCIM request refused: too many in flight");
        let mut r = error(&ScimError::status(
            503,
            "too many requests in flight; retry",
        ));
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(Box::new(r));
    }
    let slot = Slot(&server.in_flight);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match server.service.authenticate(authorization) {
        Some(actor) => Ok((slot, actor)),
        None => {
            tracing::warn!("SCIM request refused: no valid bearer token");
            let mut r = error(&ScimError::status(401, "a valid bearer token is required"));
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
            Err(Box::new(r))
        }
    }
}

fn error(e: &ScimError) -> Response {
    if e.status >= 500 {
        tracing::error!(status = e.status, detail = %e.detail, "SCIM error");
    } else {
        tracing::info!(status = e.status, scim_type = ?e.scim_type.map(|t| t.as_str()), detail = %e.detail, "SCIM request refused");
    }
    scim_json(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_json(),
    )
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body.to_string(),
    )
        .into_response()
}

fn resource_response(status: StatusCode, r: &Resource, location: bool) -> Response {
    let mut response = scim_json(status, &r.json);
    if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if location
        && let Some(Ok(v)) = r.json["meta"]["location"]
            .as_str()
            .map(HeaderValue::from_str)
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// The body as JSON, refusing one over [`MAX_BODY_BYTES`] (413) or not JSON (400).
async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, ScimError> {
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

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

/// `If-None-Match` naming the current version: 304, nothing else to send.
fn not_modified(headers: &HeaderMap, r: &Resource) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| if_match_admits(v, r.version))
}

fn got(
    headers: &HeaderMap,
    result: Result<Resource, ScimError>,
    projection: &Projection,
) -> Response {
    match result.map(|mut r| {
        projection.apply(&mut r.json);
        r
    }) {
        Ok(r) if not_modified(headers, &r) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(v) = HeaderValue::from_str(&etag(r.version)) {
                response.headers_mut().insert(header::ETAG, v);
            }
            response
        }
        Ok(r) => resource_response(StatusCode::OK, &r, false),
        Err(e) => error(&e),
    }
}

fn written(status: StatusCode, result: Result<Resource, ScimError>) -> Response {
    match result {
        Ok(r) => resource_response(status, &r, status == StatusCode::CREATED),
        Err(e) => error(&e),
    }
}

fn deleted(result: Result<(), ScimError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(&e),
    }
}

macro_rules! admit {
    ($server:expr, $headers:expr) => {
        match admit(&$server, &$headers) {
            Ok(admitted) => admitted,
            Err(response) => return *response,
        }
    };
}

macro_rules! body {
    ($headers:expr, $body:expr) => {
        match read_json(&$headers, $body).await {
            Ok(v) => v,
            Err(e) => return error(&e),
        }
    };
}

async fn list_users(
    State(s): State<S>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    match ListQuery::parse(&params, &USER_TYPE) {
        Ok(q) => match s.service.list_users(&q).await {
            Ok(v) => scim_json(StatusCode::OK, &v),
            Err(e) => error(&e),
        },
        Err(e) => error(&e),
    }
}

async fn create_user(State(s): State<S>, headers: HeaderMap, body: Body) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::CREATED,
        s.service.create_user(&actor, &body, (s.now)()).await,
    )
}

async fn get_user(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    let projection = Projection::parse(&params, &USER_TYPE);
    got(&headers, s.service.get_user(&id).await, &projection)
}

async fn put_user(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::OK,
        s.service
            .replace_user(&actor, &id, &body, if_match(&headers), (s.now)())
            .await,
    )
}

async fn patch_user(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::OK,
        s.service
            .patch_user(&actor, &id, &body, if_match(&headers), (s.now)())
            .await,
    )
}

async fn delete_user(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_slot, actor) = admit!(s, headers);
    deleted(
        s.service
            .delete_user(&actor, &id, if_match(&headers), (s.now)())
            .await,
    )
}

async fn list_groups(
    State(s): State<S>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    match ListQuery::parse(&params, &GROUP_TYPE) {
        Ok(q) => match s.service.list_groups(&q).await {
            Ok(v) => scim_json(StatusCode::OK, &v),
            Err(e) => error(&e),
        },
        Err(e) => error(&e),
    }
}

async fn create_group(State(s): State<S>, headers: HeaderMap, body: Body) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::CREATED,
        s.service.create_group(&actor, &body, (s.now)()).await,
    )
}

async fn get_group(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    let projection = Projection::parse(&params, &GROUP_TYPE);
    got(&headers, s.service.get_group(&id).await, &projection)
}

async fn put_group(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::OK,
        s.service
            .replace_group(&actor, &id, &body, if_match(&headers), (s.now)())
            .await,
    )
}

async fn patch_group(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, actor) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::OK,
        s.service
            .patch_group(&actor, &id, &body, if_match(&headers), (s.now)())
            .await,
    )
}

async fn delete_group(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_slot, actor) = admit!(s, headers);
    deleted(
        s.service
            .delete_group(&actor, &id, if_match(&headers), (s.now)())
            .await,
    )
}

async fn service_provider_config(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    scim_json(
        StatusCode::OK,
        &super::service_provider_config(s.service.base_url()),
    )
}

fn list_of(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

async fn schemas(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    let base = s.service.base_url();
    let items = schema::ALL_SCHEMAS
        .iter()
        .map(|sc| schema::schema_json(sc, base))
        .collect();
    scim_json(StatusCode::OK, &list_of(items))
}

async fn schema_by_id(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let _admitted = admit!(s, headers);
    match schema::ALL_SCHEMAS.iter().find(|sc| sc.id == id) {
        Some(sc) => scim_json(
            StatusCode::OK,
            &schema::schema_json(sc, s.service.base_url()),
        ),
        None => error(&ScimError::not_found("Schema")),
    }
}

async fn resource_types(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    let base = s.service.base_url();
    let items = schema::ALL_TYPES
        .iter()
        .map(|rt| rt.to_json(base))
        .collect();
    scim_json(StatusCode::OK, &list_of(items))
}

async fn resource_type_by_id(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _admitted = admit!(s, headers);
    match schema::ALL_TYPES.iter().find(|rt| rt.name == id) {
        Some(rt) => scim_json(StatusCode::OK, &rt.to_json(s.service.base_url())),
        None => error(&ScimError::not_found("ResourceType")),
    }
}

async fn not_found(method: Method) -> Response {
    let e = if method == Method::POST {
        ScimError::status(501, "not supported by this server (no Bulk, no /.search)")
    } else {
        ScimError::not_found("endpoint")
    };
    error(&e)
}
