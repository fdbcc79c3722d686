//! The SCIM endpoints over axum: `router` serves a [`ScimService`] under whatever prefix the
//! application nests it at (`/scim/v2` by convention).
//!
//! The HTTP plumbing is `latchkey_scim::http`, shared with the IdP's SCIM server. Every
//! route needs a configured bearer token (401 otherwise). A body larger than
//! `latchkey_scim::MAX_BODY_BYTES` is refused with 413 before it is parsed, and at most [`MAX_IN_FLIGHT`]
//! requests are served at once (503 with `Retry-After` past that), so a token holder cannot
//! make the application buffer or queue without bound.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latchkey_scim::http::{self, InFlight, Slot};
use serde_json::Value;
use time::OffsetDateTime;

use super::ScimError;
use super::list::{ListQuery, Projection};
use super::schema::{GROUP_TYPE, USER_TYPE};
use super::service::{Actor, Resource, ScimService};

/// The most SCIM requests served at once.
pub const MAX_IN_FLIGHT: usize = 16;

/// Where the endpoints get the time.
pub type Now = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

struct Server {
    service: ScimService,
    now: Now,
    in_flight: InFlight,
}

type S = Arc<Server>;

/// The SCIM routes for `service`, to nest under the SCIM base path.
pub fn router(service: ScimService, now: Now) -> Router {
    let state = Arc::new(Server {
        service,
        now,
        in_flight: InFlight::new(MAX_IN_FLIGHT),
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

/// Takes a slot (before any other work) and checks the token.
fn admit<'a>(server: &'a Server, headers: &HeaderMap) -> Result<(Slot<'a>, Actor), Box<Response>> {
    let slot = server.in_flight.take()?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match server.service.authenticate(authorization) {
        Some(actor) => Ok((slot, actor)),
        None => Err(Box::new(http::unauthorized())),
    }
}

fn error(e: &ScimError) -> Response {
    http::error(e)
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    http::json_response(status, body)
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    http::if_match(headers)
}

fn got(
    headers: &HeaderMap,
    result: Result<Resource, ScimError>,
    projection: &Projection,
) -> Response {
    match result {
        Ok(mut r) => {
            projection.apply(&mut r.json);
            http::got(headers, &r.json, r.version)
        }
        Err(e) => error(&e),
    }
}

fn written(status: StatusCode, result: Result<Resource, ScimError>) -> Response {
    match result {
        Ok(r) => http::resource(status, &r.json, r.version, status == StatusCode::CREATED),
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
        match http::read_json(&$headers, $body).await {
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
    http::service_provider_config(s.service.base_url())
}

async fn schemas(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    http::schemas(s.service.base_url())
}

async fn schema_by_id(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let _admitted = admit!(s, headers);
    http::schema_by_id(s.service.base_url(), &id)
}

async fn resource_types(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    http::resource_types(s.service.base_url())
}

async fn resource_type_by_id(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _admitted = admit!(s, headers);
    http::resource_type_by_id(s.service.base_url(), &id)
}

async fn not_found(method: Method) -> Response {
    http::fallback(&method)
}
