//! Readiness probing for the `/readyz` tests, shared by the main binary (SQLite) and the
//! oracles binary (PostgreSQL).

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::support::*;

pub fn readiness(page: &Page) -> serde_json::Value {
    serde_json::from_str(&page.body).unwrap_or_else(|e| panic!("{e}: {}", page.body))
}

/// `GET /readyz`; not through [`Browser`], which takes every 5xx for a bug.
pub async fn get_readyz(idp: &Idp) -> Page {
    use tower::ServiceExt as _;
    let request = axum::http::Request::get("/readyz")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = idp.router.clone().oneshot(request).await.unwrap();
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        body: body_text(response).await,
    }
}

/// Asks `/readyz` until it answers `status` (a probe result is reused for a second).
pub async fn ready_becomes(idp: &Idp, status: StatusCode) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let page = get_readyz(idp).await;
        if page.status == status {
            return readiness(&page);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "/readyz stayed {}: {}",
            page.status,
            page.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// While another connection holds the write lock, the node cannot sign anyone in (sessions
/// and audit lines are writes): `/readyz` says so within its own short timeout, naming the
/// database by its code, and is ready again once the lock is gone, without a restart.
pub async fn not_ready_while_the_database_is_locked(
    idp: &Idp,
    lock: impl AsyncFnOnce() -> Box<dyn std::any::Any>,
) {
    ready_becomes(idp, StatusCode::OK).await;
    let holder = lock().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    let page = get_readyz(idp).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the probe is bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    let body = readiness(&page);
    assert_eq!(body["ready"], false);
    // A code, never the error's text (anyone may ask; the log has why).
    assert_eq!(body["checks"]["database"], "database_busy", "{body}");
    assert!(
        !page.body.contains("timed out") && !page.body.contains("locked"),
        "{}",
        page.body
    );
    assert_eq!(body["checks"]["audit"], "ok");
    assert_eq!(body["checks"]["signing_key"], "ok");
    drop(holder);
    let body = ready_becomes(idp, StatusCode::OK).await;
    assert_eq!(body["checks"]["database"], "ok");
}
