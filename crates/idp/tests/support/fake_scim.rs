//! An in-memory SCIM server for the SCIM client's store tests and its benchmark (one copy,
//! included by both): the tests need failures on demand and request counts that no
//! external server gives.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// The bearer token the fake accepts.
pub const TOKEN: &str = "fake-scim-token";

/// An in-memory SCIM server: enough of RFC 7644 for the client (create with 409 on a taken
/// userName, filter by userName, paging, PUT, PATCH of active, DELETE), a switch that makes
/// it answer 503, and a count of creates.
#[derive(Clone, Default)]
pub struct Fake {
    pub users: Arc<Mutex<BTreeMap<String, Value>>>,
    pub down: Arc<AtomicBool>,
    pub creates: Arc<AtomicU64>,
    /// When set, the next PUT says so on `.0` and waits for `.1` before it is answered.
    pub hold: Arc<Mutex<Option<Hold>>>,
    next: Arc<AtomicU64>,
}

/// A PUT held: (it arrived, let it go).
pub type Hold = (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

impl Fake {
    pub async fn start() -> (Fake, String) {
        let fake = Fake::default();
        let app = Router::new()
            .route("/Users", get(list).post(create))
            .route(
                "/Users/{id}",
                axum::routing::put(replace).patch(patch).delete(delete),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/scim/v2", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, Router::new().nest("/scim/v2", app))
                .await
                .unwrap();
        });
        (fake, url)
    }

    pub fn by_name(&self, name: &str) -> Option<Value> {
        self.users
            .lock()
            .unwrap()
            .values()
            .find(|u| u["userName"] == name)
            .cloned()
    }

    pub fn active(&self, name: &str) -> Option<bool> {
        self.by_name(name).map(|u| u["active"].as_bool().unwrap())
    }
}

fn refused(fake: &Fake, headers: &axum::http::HeaderMap) -> Option<Response> {
    if fake.down.load(Ordering::SeqCst) {
        return Some((StatusCode::SERVICE_UNAVAILABLE, "down").into_response());
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    None
}

async fn list(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(r) = refused(&fake, &headers) {
        return r;
    }
    let all: Vec<Value> = fake.users.lock().unwrap().values().cloned().collect();
    let matching: Vec<Value> = match q.get("filter") {
        Some(f) => {
            let name = f
                .strip_prefix("userName eq ")
                .map(|v| serde_json::from_str::<String>(v).unwrap())
                .unwrap();
            all.into_iter().filter(|u| u["userName"] == name).collect()
        }
        None => all,
    };
    let start: usize = q.get("startIndex").map_or(1, |s| s.parse().unwrap());
    let count: usize = q.get("count").map_or(100, |s| s.parse().unwrap());
    let page: Vec<Value> = matching
        .iter()
        .skip(start - 1)
        .take(count)
        .cloned()
        .collect();
    axum::Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": matching.len(), "startIndex": start, "itemsPerPage": page.len(),
        "Resources": page,
    }))
    .into_response()
}

async fn create(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = refused(&fake, &headers) {
        return r;
    }
    let mut user: Value = serde_json::from_str(&body).unwrap();
    if fake.by_name(user["userName"].as_str().unwrap()).is_some() {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"status": "409", "scimType": "uniqueness"})),
        )
            .into_response();
    }
    fake.creates.fetch_add(1, Ordering::SeqCst);
    let id = format!("r{}", fake.next.fetch_add(1, Ordering::SeqCst));
    user["id"] = json!(id);
    fake.users.lock().unwrap().insert(id, user.clone());
    (StatusCode::CREATED, axum::Json(user)).into_response()
}

async fn replace(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    let held = fake.hold.lock().unwrap().take();
    if let Some((arrived, go)) = held {
        let _ = arrived.send(());
        let _ = go.await;
    }
    if let Some(r) = refused(&fake, &headers) {
        return r;
    }
    let mut users = fake.users.lock().unwrap();
    if !users.contains_key(&id) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut user: Value = serde_json::from_str(&body).unwrap();
    user["id"] = json!(id);
    users.insert(id, user.clone());
    axum::Json(user).into_response()
}

async fn patch(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = refused(&fake, &headers) {
        return r;
    }
    let op: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(op["Operations"][0]["path"], "active");
    let mut users = fake.users.lock().unwrap();
    let Some(user) = users.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    user["active"] = op["Operations"][0]["value"].clone();
    axum::Json(user.clone()).into_response()
}

async fn delete(
    State(fake): State<Fake>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = refused(&fake, &headers) {
        return r;
    }
    match fake.users.lock().unwrap().remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
