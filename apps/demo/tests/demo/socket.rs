//! The one real-socket test: `run` fetches the IdP metadata over HTTP, opens its SQLite file
//! and serves on a TCP port.

use std::time::Duration as StdDuration;

use axum::Router;
use axum::routing::get;
use latchkey_demo_apps::{AppKind, DemoConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn run_serves_on_a_socket_with_metadata_fetched_by_url() {
    let metadata = idp_metadata_xml(&[&idp_key().cert]);
    let idp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_port = idp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = Router::new().route("/metadata", get(move || async move { metadata }));
        axum::serve(idp, app).await.unwrap();
    });

    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = DemoConfig::from_toml(
        &format!(
            r#"
listen = "127.0.0.1:{port}"
database = "wiki.sqlite"

[sp]
entity_id = "http://127.0.0.1:{port}/saml/metadata"
acs_url = "http://127.0.0.1:{port}/saml/acs"

[sp.idp]
metadata_url = "http://127.0.0.1:{idp_port}/metadata"
"#
        ),
        dir.path(),
    )
    .unwrap();
    let server = tokio::spawn(latchkey_demo_apps::run(AppKind::Wiki, config));

    let mut reply = None;
    for _ in 0..100 {
        if let Some(r) = http_get(port, "/saml/metadata").await {
            reply = Some(r);
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let reply = reply.expect("the demo app never answered");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(&format!("http://127.0.0.1:{port}/saml/acs")));

    let login = http_get(port, "/login").await.unwrap();
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    assert!(
        login
            .to_ascii_lowercase()
            .contains(&format!("location: {SSO}?samlrequest=").to_ascii_lowercase())
    );
    assert!(dir.path().join("wiki.sqlite").exists());
    server.abort();
}

#[tokio::test]
async fn metadata_refresh_swaps_in_the_next_key() {
    let metadata = std::sync::Arc::new(std::sync::Mutex::new(idp_metadata_xml(&[&idp_key().cert])));
    let served = metadata.clone();
    let idp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_port = idp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = Router::new().route(
            "/metadata",
            get(move || {
                let served = served.clone();
                async move { served.lock().unwrap().clone() }
            }),
        );
        axum::serve(idp, app).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let config = DemoConfig::from_toml(
        &format!(
            r#"
listen = "127.0.0.1:0"
database = "x.sqlite"
[sp]
entity_id = "https://app.example/saml/metadata"
acs_url = "https://app.example/saml/acs"
[sp.idp]
metadata_url = "http://127.0.0.1:{idp_port}/metadata"
refresh_seconds = 600
"#
        ),
        dir.path(),
    )
    .unwrap();
    let trust = latchkey_sp::fetch::load_idp(&config.sp, latchkey_demo_apps::Clock::System.now())
        .await
        .unwrap();
    let sp = latchkey_sp::ServiceProvider::new(&config.sp, None, trust).unwrap();
    assert_eq!(sp.idp().keys.len(), 1);
    // The IdP announces its next key.
    *metadata.lock().unwrap() = idp_metadata_xml(&[&idp_key().cert, &rogue_key().cert]);
    let next = latchkey_sp::fetch::refresh_once(&sp, &config.sp)
        .await
        .unwrap();
    assert_eq!(next, time::Duration::minutes(10));
    assert_eq!(sp.idp().keys.len(), 2);
    // A broken source keeps the keys already trusted.
    *metadata.lock().unwrap() = "<not-metadata/>".to_owned();
    assert!(
        latchkey_sp::fetch::refresh_once(&sp, &config.sp)
            .await
            .is_err()
    );
    assert_eq!(sp.idp().keys.len(), 2);
}

/// An IdP metadata source the test can break: serves `Some(xml)`, or 503 for `None`.
async fn switchable_metadata(
    xml: Option<String>,
) -> (u16, std::sync::Arc<std::sync::Mutex<Option<String>>>) {
    let metadata = std::sync::Arc::new(std::sync::Mutex::new(xml));
    let served = metadata.clone();
    let idp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = idp.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = Router::new().route(
            "/metadata",
            get(move || {
                let served = served.clone();
                async move {
                    match served.lock().unwrap().clone() {
                        Some(xml) => (axum::http::StatusCode::OK, xml),
                        None => (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "down".to_owned(),
                        ),
                    }
                }
            }),
        );
        axum::serve(idp, app).await.unwrap();
    });
    (port, metadata)
}

fn url_config(idp_port: u16) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
database = "unused.sqlite"
[sp]
entity_id = "https://wiki.latchkey.test/saml/metadata"
acs_url = "https://wiki.latchkey.test/saml/acs"
[sp.idp]
metadata_url = "http://127.0.0.1:{idp_port}/metadata"
"#
    )
}

async fn readyz(t: &TestApp) -> (axum::http::StatusCode, serde_json::Value) {
    let reply = crate::support::get(t, "/readyz", None).await;
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    (reply.status, serde_json::from_str(&reply.body).unwrap())
}

/// `/readyz` while the metadata URL starts failing: still ready (logins work on the keys
/// trusted) but the failing refreshes are reported, by code and how many in a row, never
/// with the error's text (anyone may ask; the log has it); a success clears them.
#[tokio::test]
async fn readyz_reports_failing_metadata_refreshes() {
    let (port, metadata) = switchable_metadata(Some(idp_metadata_xml(&[&idp_key().cert]))).await;
    let toml = url_config(port);
    let config = DemoConfig::from_toml(&toml, std::path::Path::new("/nonexistent")).unwrap();
    let t = app_from(AppKind::Wiki, &toml, latchkey_demo_apps::Clock::Fixed(NOW)).await;
    let (status, body) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["idp_metadata"], "ok");
    assert_eq!(body["checks"]["metadata_refresh"], "ok");
    assert_eq!(body["metadata"]["verdict"], "ok");
    assert_eq!(body["metadata"]["idp"], IDP);

    latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
        .await
        .unwrap();
    let (_, body) = readyz(&t).await;
    assert!(body["metadata"]["last_refresh"].is_string(), "{body}");

    *metadata.lock().unwrap() = None;
    for _ in 0..2 {
        assert!(
            latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
                .await
                .is_err()
        );
    }
    let (status, body) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["checks"]["idp_metadata"], "ok");
    assert_eq!(body["checks"]["metadata_refresh"], "metadata_fetch_failed");
    assert_eq!(body["metadata"]["verdict"], "degraded");
    assert_eq!(body["metadata"]["code"], "metadata_fetch_failed");
    assert_eq!(body["metadata"]["consecutive_failures"], 2);
    assert!(body["metadata"]["last_failure_at"].is_string(), "{body}");
    // The refresh's error (an HTTP 503 from the metadata URL, the URL itself) is not shown.
    let text = body.to_string();
    assert!(
        !text.contains("503") && !text.contains("127.0.0.1") && !text.contains("error"),
        "{text}"
    );
    assert_eq!(body["metadata"].get("detail"), None, "{body}");
    assert_eq!(body["metadata"].get("last_failure"), None, "{body}");

    *metadata.lock().unwrap() = Some(idp_metadata_xml(&[&idp_key().cert]));
    latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
        .await
        .unwrap();
    let (_, body) = readyz(&t).await;
    assert_eq!(body["metadata"]["verdict"], "ok", "{body}");
    assert_eq!(body["checks"]["metadata_refresh"], "ok");
}

/// `/readyz` probes the database in bounded time: with the one connection of the test's
/// in-memory database held by another transaction (as a write lock held elsewhere would
/// be), it answers 503 after the 2 s probe gives up, not after the pool's 30 s; a result
/// under a second old is reused, so calls cannot load the database; once the connection
/// is free the app is ready again, and a closed pool makes it unready.
#[tokio::test]
async fn readyz_is_unavailable_while_the_database_does_not_answer() {
    use std::time::{Duration, Instant};
    let t = crate::support::app(AppKind::Wiki, "").await;
    let (status, body) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    let pool = t.app.store().database().pool().clone();
    let held = pool.begin().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let started = Instant::now();
    let (status, body) = readyz(&t).await;
    let took = started.elapsed();
    assert_eq!(
        status,
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "{body}"
    );
    assert_eq!(body["ready"], false);
    // A code, not the error's text.
    assert_eq!(body["checks"]["database"], "database_busy", "{body}");
    assert_eq!(body["checks"]["idp_metadata"], "ok");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // Asked again at once: the result is reused, the database is not probed again.
    let started = Instant::now();
    let (status, _) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_millis(500));

    held.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["database"], "ok");

    pool.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = readyz(&t).await;
    assert_eq!(
        status,
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "{body}"
    );
    assert_eq!(body["checks"]["database"], "database_failed", "{body}");
    assert!(!body.to_string().contains("closed"), "{body}");
}

/// `/readyz` once the trusted metadata's validUntil has passed and the refreshes keep
/// failing: 503, nobody can log in; a refresh that succeeds makes the app ready again.
#[tokio::test]
async fn readyz_is_unavailable_once_the_metadata_expired() {
    let wall = latchkey_demo_apps::Clock::System.now();
    let until = wall + time::Duration::hours(1);
    let (port, metadata) = switchable_metadata(Some(idp_metadata_xml_until(
        &[&idp_key().cert],
        Some(until),
    )))
    .await;
    let toml = url_config(port);
    let config = DemoConfig::from_toml(&toml, std::path::Path::new("/nonexistent")).unwrap();
    // The app's clock is two hours on: the copy it fetches now expires before then.
    let t = app_from(
        AppKind::Wiki,
        &toml,
        latchkey_demo_apps::Clock::Fixed(wall + time::Duration::hours(2)),
    )
    .await;
    latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
        .await
        .unwrap();
    *metadata.lock().unwrap() = None;
    assert!(
        latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
            .await
            .is_err()
    );
    let (status, body) = readyz(&t).await;
    assert_eq!(
        status,
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "{body}"
    );
    assert_eq!(body["ready"], false);
    assert_eq!(body["checks"]["idp_metadata"], "metadata_expired", "{body}");
    assert_eq!(body["checks"]["metadata_refresh"], "metadata_fetch_failed");
    assert_eq!(body["metadata"]["verdict"], "cannot_log_in");
    assert_eq!(body["metadata"]["code"], "metadata_expired");
    assert_eq!(body["metadata"].get("detail"), None, "{body}");
    assert_eq!(body["metadata"]["consecutive_failures"], 1);

    // The IdP publishes metadata without an expiry: ready again at the next refresh.
    *metadata.lock().unwrap() = Some(idp_metadata_xml(&[&idp_key().cert]));
    latchkey_sp::fetch::refresh_once(t.app.sp(), &config.sp)
        .await
        .unwrap();
    let (status, body) = readyz(&t).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["verdict"], "ok");
}
