//! `/scim/v2`: the IdP's SCIM 2.0 server, the directory fed from outside (an HR system or
//! another IdP). The domain is [`latchkey_idp::scim::ScimDirectory`]; this is its HTTP
//! side, on the plumbing every SCIM server here shares (`latchkey_scim::http`).
//!
//! - Every route needs a live token of scope `scim` (`latchkey token create NAME --scope
//!   scim`); an admin API token gets the same 401 as an unknown one, and a SCIM token gets
//!   401 on `/api/v1`.
//! - A slot among [`MAX_IN_FLIGHT`] is taken in one atomic step before the token is even
//!   looked up (503 with `Retry-After` past it), and a body over
//!   `latchkey_scim::MAX_BODY_BYTES` is refused with 413 before it is read past the limit.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use latchkey_idp::Store;
use latchkey_idp::scim::{Patched, Resource, ScimDirectory};
use latchkey_idp::tokens::TokenInfo;
use latchkey_scim::ScimError;
use latchkey_scim::http::{self as scim_http, InFlight, Slot};
use latchkey_scim::list::{ListQuery, Projection};
use latchkey_scim::schema::{self, GROUP_TYPE, USER_TYPE};

/// The most SCIM requests served at once (each holds a database connection for a while).
pub const MAX_IN_FLIGHT: usize = 16;

struct Server {
    directory: ScimDirectory,
    in_flight: InFlight,
}

type S = Arc<Server>;

/// The SCIM routes under `/scim/v2`, resources located under `base_url` + `/scim/v2`.
pub fn router(store: Store, base_url: &str) -> Router {
    let base = format!("{}/scim/v2", base_url.trim_end_matches('/'));
    let state = Arc::new(Server {
        directory: ScimDirectory::new(store, base),
        in_flight: InFlight::new(MAX_IN_FLIGHT),
    });
    let v2 = Router::new()
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
        .fallback(fallback)
        .layer(axum::middleware::from_fn(crate::headers::api))
        .with_state(state);
    Router::new().nest("/scim/v2", v2)
}

/// Takes a slot, then checks the token.
async fn admit<'a>(
    server: &'a Server,
    headers: &HeaderMap,
) -> Result<(Slot<'a>, TokenInfo), Box<Response>> {
    let slot = server.in_flight.take()?;
    let Some(presented) = scim_http::bearer(headers) else {
        return Err(Box::new(scim_http::unauthorized()));
    };
    match server.directory.authenticate(presented).await {
        Ok(Some(token)) => Ok((slot, token)),
        Ok(None) => Err(Box::new(scim_http::unauthorized())),
        Err(e) => Err(Box::new(scim_http::error(&e))),
    }
}

macro_rules! admit {
    ($server:expr, $headers:expr) => {
        match admit(&$server, &$headers).await {
            Ok(admitted) => admitted,
            Err(response) => return *response,
        }
    };
}

macro_rules! body {
    ($headers:expr, $body:expr) => {
        match scim_http::read_json(&$headers, $body).await {
            Ok(v) => v,
            Err(e) => return scim_http::error(&e),
        }
    };
}

fn written(status: StatusCode, result: Result<Resource, ScimError>) -> Response {
    match result {
        Ok(r) => scim_http::resource(status, &r.json, r.version, status == StatusCode::CREATED),
        Err(e) => scim_http::error(&e),
    }
}

fn got(
    headers: &HeaderMap,
    result: Result<Resource, ScimError>,
    projection: &Projection,
) -> Response {
    match result {
        Ok(mut r) => {
            projection.apply(&mut r.json);
            scim_http::got(headers, &r.json, r.version)
        }
        Err(e) => scim_http::error(&e),
    }
}

fn deleted(result: Result<(), ScimError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => scim_http::error(&e),
    }
}

fn listed(result: Result<Value, ScimError>) -> Response {
    match result {
        Ok(v) => scim_http::json_response(StatusCode::OK, &v),
        Err(e) => scim_http::error(&e),
    }
}

async fn list_users(
    State(s): State<S>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    match ListQuery::parse(&params, &USER_TYPE) {
        Ok(q) => listed(s.directory.list_users(&q).await),
        Err(e) => scim_http::error(&e),
    }
}

async fn create_user(State(s): State<S>, headers: HeaderMap, body: Body) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::CREATED,
        s.directory.create_user(&token, &body).await,
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
    got(&headers, s.directory.get_user(&id).await, &projection)
}

async fn put_user(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    let if_match = scim_http::if_match(&headers);
    written(
        StatusCode::OK,
        s.directory.replace_user(&token, &id, &body, if_match).await,
    )
}

async fn patch_user(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    let if_match = scim_http::if_match(&headers);
    written(
        StatusCode::OK,
        s.directory.patch_user(&token, &id, &body, if_match).await,
    )
}

async fn delete_user(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_slot, token) = admit!(s, headers);
    let if_match = scim_http::if_match(&headers);
    deleted(s.directory.delete_user(&token, &id, if_match).await)
}

async fn list_groups(
    State(s): State<S>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(s, headers);
    match ListQuery::parse(&params, &GROUP_TYPE) {
        Ok(q) => listed(s.directory.list_groups(&q).await),
        Err(e) => scim_http::error(&e),
    }
}

async fn create_group(State(s): State<S>, headers: HeaderMap, body: Body) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    written(
        StatusCode::CREATED,
        s.directory.create_group(&token, &body).await,
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
    got(&headers, s.directory.get_group(&id).await, &projection)
}

async fn put_group(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    let if_match = scim_http::if_match(&headers);
    written(
        StatusCode::OK,
        s.directory
            .replace_group(&token, &id, &body, if_match)
            .await,
    )
}

async fn patch_group(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, token) = admit!(s, headers);
    let body = body!(headers, body);
    let if_match = scim_http::if_match(&headers);
    match s.directory.patch_group(&token, &id, &body, if_match).await {
        Ok(Patched::Resource(r)) => written(StatusCode::OK, Ok(r)),
        Ok(Patched::Applied) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => scim_http::error(&e),
    }
}

async fn delete_group(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_slot, token) = admit!(s, headers);
    let if_match = scim_http::if_match(&headers);
    deleted(s.directory.delete_group(&token, &id, if_match).await)
}

async fn service_provider_config(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    scim_http::service_provider_config(s.directory.base_url())
}

/// A `/Schemas` entry as this server enforces it: a directory user needs an e-mail
/// address, so `emails` (and its `value`) is required here, which RFC 7643 leaves optional.
fn idp_schema(sc: &schema::Schema, base: &str) -> Value {
    let mut json = schema::schema_json(sc, base);
    if sc.id == USER_TYPE.schema.id {
        schema::mark_required(&mut json, "emails", Some("value"));
    }
    json
}

async fn schemas(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    let base = s.directory.base_url();
    let items = schema::ALL_SCHEMAS
        .iter()
        .map(|sc| idp_schema(sc, base))
        .collect();
    scim_http::json_response(StatusCode::OK, &scim_http::list_of(items))
}

async fn schema_by_id(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let _admitted = admit!(s, headers);
    match schema::ALL_SCHEMAS.iter().find(|sc| sc.id == id) {
        Some(sc) => {
            scim_http::json_response(StatusCode::OK, &idp_schema(sc, s.directory.base_url()))
        }
        None => scim_http::error(&ScimError::not_found("Schema")),
    }
}

async fn resource_types(State(s): State<S>, headers: HeaderMap) -> Response {
    let _admitted = admit!(s, headers);
    scim_http::resource_types(s.directory.base_url())
}

async fn resource_type_by_id(
    State(s): State<S>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _admitted = admit!(s, headers);
    scim_http::resource_type_by_id(s.directory.base_url(), &id)
}

async fn fallback(method: Method) -> Response {
    scim_http::fallback(&method)
}
