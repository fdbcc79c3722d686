//! The routes of a SCIM server (feature `http`): `/Users`, `/Groups`, their resources and
//! the discovery endpoints, over a [`Backend`] that holds the resources. The SP toolkit's
//! server and the IdP's differ in where resources live and who may call, not in how a
//! request is admitted, read, answered or refused, so that part is written once, here.
//!
//! Every route takes a slot among the backend's [`InFlight`] first (503 past it), before
//! the token is even looked up, then authenticates (401), then reads a body within
//! `MAX_BODY_BYTES` (413).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::http::{self, InFlight};
use crate::list::{ListQuery, Projection};
use crate::schema::{self, GROUP_TYPE, ResourceType, USER_TYPE};
use crate::{Patched, Resource, ScimError, etag};

/// Which resources a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl Kind {
    /// Its resource type: the schema a request's body and query are checked against.
    pub fn resource_type(self) -> &'static ResourceType {
        match self {
            Kind::User => &USER_TYPE,
            Kind::Group => &GROUP_TYPE,
        }
    }
}

/// Where a SCIM server's resources live and who may change them.
pub trait Backend: Send + Sync + 'static {
    /// Who a request's token says is calling, handed to every write.
    type Caller: Send + Sync;

    /// The bound on requests served at once.
    fn in_flight(&self) -> &InFlight;

    /// The base URL resources are located under (`…/scim/v2`).
    fn base_url(&self) -> &str;

    /// The request's caller, or the response refusing it (401, or an error looking the
    /// token up).
    fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> impl Future<Output = Result<Self::Caller, Response>> + Send;

    /// `GET /Users` or `GET /Groups`: the ListResponse.
    fn list(
        &self,
        kind: Kind,
        query: &ListQuery,
    ) -> impl Future<Output = Result<Value, ScimError>> + Send;

    /// `GET /{kind}/{id}`. `projection` is applied to the answer afterwards; a backend may
    /// leave out reading what it drops ([`Projection::returns`]), but not change the version.
    fn get(
        &self,
        kind: Kind,
        id: &str,
        projection: &Projection,
    ) -> impl Future<Output = Result<Resource, ScimError>> + Send;

    /// `POST /{kind}`.
    fn create(
        &self,
        caller: &Self::Caller,
        kind: Kind,
        body: &Value,
    ) -> impl Future<Output = Result<Resource, ScimError>> + Send;

    /// `PUT /{kind}/{id}`.
    fn replace(
        &self,
        caller: &Self::Caller,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Resource, ScimError>> + Send;

    /// `PATCH /{kind}/{id}`.
    fn patch(
        &self,
        caller: &Self::Caller,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Patched, ScimError>> + Send;

    /// `DELETE /{kind}/{id}`.
    fn delete(
        &self,
        caller: &Self::Caller,
        kind: Kind,
        id: &str,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<(), ScimError>> + Send;

    /// A `/Schemas` entry as this server enforces it (a server may require more than RFC
    /// 7643 does).
    fn schema(&self, sc: &schema::Schema) -> Value {
        schema::schema_json(sc, self.base_url())
    }
}

/// The SCIM routes over `backend`, to nest under the SCIM base path.
pub fn router<B: Backend>(backend: Arc<B>) -> Router {
    type S<B> = State<Arc<B>>;
    type Params = Query<Vec<(String, String)>>;
    let mut router: Router<Arc<B>> = Router::new();
    for (kind, path) in [(Kind::User, "Users"), (Kind::Group, "Groups")] {
        router = router
            .route(
                &format!("/{path}"),
                get(move |s: S<B>, h: HeaderMap, q: Params| list(kind, s, h, q))
                    .post(move |s: S<B>, h: HeaderMap, b: Body| create(kind, s, h, b)),
            )
            .route(
                &format!("/{path}/{{id}}"),
                get(move |s: S<B>, h: HeaderMap, p: Path<String>, q: Params| {
                    fetch(kind, s, h, p, q)
                })
                .put(move |s: S<B>, h: HeaderMap, p: Path<String>, b: Body| {
                    replace(kind, s, h, p, b)
                })
                .patch(move |s: S<B>, h: HeaderMap, p: Path<String>, b: Body| {
                    patch(kind, s, h, p, b)
                })
                .delete(move |s: S<B>, h: HeaderMap, p: Path<String>| delete(kind, s, h, p)),
            );
    }
    router
        .route("/ServiceProviderConfig", get(service_provider_config::<B>))
        .route("/Schemas", get(schemas::<B>))
        .route("/Schemas/{id}", get(schema_by_id::<B>))
        .route("/ResourceTypes", get(resource_types::<B>))
        .route("/ResourceTypes/{id}", get(resource_type_by_id::<B>))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(backend)
}

/// Takes a slot (before any other work), then authenticates; the slot is held until the
/// response is made.
macro_rules! admit {
    ($backend:expr, $headers:expr) => {{
        let slot = match $backend.in_flight().take() {
            Ok(slot) => slot,
            Err(response) => return *response,
        };
        match $backend.authenticate(&$headers).await {
            Ok(caller) => (slot, caller),
            Err(response) => return response,
        }
    }};
}

macro_rules! body {
    ($headers:expr, $body:expr) => {
        match http::read_json(&$headers, $body).await {
            Ok(v) => v,
            Err(e) => return http::error(&e),
        }
    };
}

fn written(status: StatusCode, result: Result<Resource, ScimError>) -> Response {
    match result {
        Ok(r) => http::resource(status, &r.json, r.version, status == StatusCode::CREATED),
        Err(e) => http::error(&e),
    }
}

async fn list<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(b, headers);
    let answer = match ListQuery::parse(&params, kind.resource_type()) {
        Ok(q) => b.list(kind, &q).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(v) => http::json_response(StatusCode::OK, &v),
        Err(e) => http::error(&e),
    }
}

async fn create<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (_slot, caller) = admit!(b, headers);
    let body = body!(headers, body);
    written(StatusCode::CREATED, b.create(&caller, kind, &body).await)
}

async fn fetch<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let _admitted = admit!(b, headers);
    let projection = Projection::parse(&params, kind.resource_type());
    match b.get(kind, &id, &projection).await {
        Ok(mut r) => {
            projection.apply(&mut r.json);
            http::got(&headers, &r.json, r.version)
        }
        Err(e) => http::error(&e),
    }
}

async fn replace<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, caller) = admit!(b, headers);
    let body = body!(headers, body);
    let if_match = http::if_match(&headers);
    written(
        StatusCode::OK,
        b.replace(&caller, kind, &id, &body, if_match).await,
    )
}

async fn patch<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let (_slot, caller) = admit!(b, headers);
    let body = body!(headers, body);
    let if_match = http::if_match(&headers);
    match b.patch(&caller, kind, &id, &body, if_match).await {
        Ok(Patched::Resource(r)) => written(StatusCode::OK, Ok(r)),
        Ok(Patched::Applied(version)) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&etag(version)) {
                response.headers_mut().insert(header::ETAG, v);
            }
            response
        }
        Err(e) => http::error(&e),
    }
}

async fn delete<B: Backend>(
    kind: Kind,
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (_slot, caller) = admit!(b, headers);
    let if_match = http::if_match(&headers);
    match b.delete(&caller, kind, &id, if_match).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => http::error(&e),
    }
}

async fn service_provider_config<B: Backend>(
    State(b): State<Arc<B>>,
    headers: HeaderMap,
) -> Response {
    let _admitted = admit!(b, headers);
    http::service_provider_config(b.base_url())
}

async fn schemas<B: Backend>(State(b): State<Arc<B>>, headers: HeaderMap) -> Response {
    let _admitted = admit!(b, headers);
    let items = schema::ALL_SCHEMAS.iter().map(|sc| b.schema(sc)).collect();
    http::json_response(StatusCode::OK, &http::list_of(items))
}

async fn schema_by_id<B: Backend>(
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _admitted = admit!(b, headers);
    match schema::ALL_SCHEMAS.iter().find(|sc| sc.id == id) {
        Some(sc) => http::json_response(StatusCode::OK, &b.schema(sc)),
        None => http::error(&ScimError::not_found("Schema")),
    }
}

async fn resource_types<B: Backend>(State(b): State<Arc<B>>, headers: HeaderMap) -> Response {
    let _admitted = admit!(b, headers);
    http::resource_types(b.base_url())
}

async fn resource_type_by_id<B: Backend>(
    State(b): State<Arc<B>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let _admitted = admit!(b, headers);
    http::resource_type_by_id(b.base_url(), &id)
}

async fn fallback(method: Method, uri: axum::http::Uri) -> Response {
    http::fallback(&method, uri.path())
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    http::method_not_allowed(&method, uri.path())
}
