//! Behind a reverse proxy: whose address counts for the bound on logins started.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{Request, StatusCode};
use latchkey_demo_apps::{AppKind, Clock};
use latchkey_sp::login::PENDING_PER_NETWORK;

use crate::support::*;

/// `GET /login` from the proxy at 10.0.0.2, which says the browser is `forwarded_for`.
async fn start_via_proxy(t: &TestApp, forwarded_for: &str) -> StatusCode {
    let mut request = Request::get("/login")
        .header("x-forwarded-for", forwarded_for)
        .body(Body::empty())
        .unwrap();
    let proxy: SocketAddr = "10.0.0.2:40000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(proxy));
    send(t, request).await.status
}

async fn app_behind_proxy(trust: bool) -> TestApp {
    let config = format!(
        "trust_forwarded_for = {trust}\n{}",
        config_toml(AppKind::Wiki, "")
    );
    app_from(AppKind::Wiki, &config, Clock::Fixed(NOW)).await
}

#[tokio::test]
async fn a_believed_proxy_keeps_one_browsers_flood_from_using_up_everyone_elses_logins() {
    let t = app_behind_proxy(true).await;
    // The flooding browser writes its own X-Forwarded-For values; the proxy appends the
    // address it saw, and only that one counts.
    for i in 0..PENDING_PER_NETWORK {
        let status = start_via_proxy(&t, &format!("198.51.100.{}, 192.0.2.7", i % 250)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "start {i}");
    }
    assert_eq!(
        start_via_proxy(&t, "203.0.113.9, 192.0.2.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another browser behind the same proxy still signs in.
    assert_eq!(
        start_via_proxy(&t, "192.0.2.8").await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_unbelieved_forwarded_for_changes_nothing() {
    let t = app_behind_proxy(false).await;
    // Every start counts against the peer (the proxy), whatever the header says: a client
    // that could name its own address could rotate through fresh ones for ever.
    for i in 0..PENDING_PER_NETWORK {
        let status = start_via_proxy(&t, &format!("192.0.2.{}", i % 250)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "start {i}");
    }
    assert_eq!(
        start_via_proxy(&t, "192.0.2.8").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
