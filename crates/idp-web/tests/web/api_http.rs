//! The admin API beyond its store cases: over a real socket, and under a full hash pool.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::json;

use super::api::api;

/// The one test over a real socket: the router served by `axum::serve` answers a raw
/// HTTP/1.1 client on the loopback interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_a_real_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let a = api(crate::support::sqlite().await).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, a.router.clone()).into_future());

    let request = |auth: Option<&str>| {
        let auth = auth
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        format!("GET /api/v1/groups HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")
    };
    for (auth, expect) in [
        (None, "HTTP/1.1 401"),
        (Some(a.token.as_str()), "HTTP/1.1 200"),
    ] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(request(auth).as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with(expect), "{response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{response}"
        );
    }
    server.abort();
}

/// Setting passwords goes through the same bounded hash pool as sign-in: past the bound the
/// API answers 503 `busy` with `Retry-After`, and a refused creation leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_hash_pool_answers_503_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = latchkey_idp::config::sqlite_url(&dir.path().join("latchkey.db"));
    // Slow enough in a debug build that eight simultaneous creations overlap.
    let passwords = latchkey_idp::config::PasswordConfig {
        memory_kib: 4096,
        iterations: 3,
        max_concurrent: 1,
        max_queued: 0,
        ..crate::support::cheap_passwords()
    };
    let store = latchkey_idp::Store::open_url(&url, 5, passwords)
        .await
        .unwrap();
    let a = std::sync::Arc::new(
        api(crate::support::TestStore {
            store,
            dir: Some(dir),
            url,
        })
        .await,
    );
    let before = a.audit_count().await;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (a, gate) = (a.clone(), gate.clone());
        set.spawn(async move {
            let body = json!({"username": format!("u{i}"), "email": format!("u{i}@example.org"),
                              "password": "correct horse battery staple"});
            let req = Request::post("/api/v1/users")
                .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            gate.wait().await;
            a.raw(req).await
        });
    }
    let (mut created, mut busy) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (status, headers, body) = r.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(body["error"], "busy", "{body}");
                assert_eq!(headers[header::RETRY_AFTER], "2");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(created >= 1 && busy >= 1, "created {created}, busy {busy}");
    let (_, list) = a.get("/api/v1/users").await;
    assert_eq!(list["items"].as_array().unwrap().len(), created);
    assert_eq!(
        a.audit_count().await - before,
        i64::try_from(created).unwrap()
    );
    assert!(a.t.store.hashing().stats().peak <= 1);
}

/// A write that waits out SQLite's busy timeout behind another connection's write lock (a
/// burst of writers, a long bulk load) is answered 503 `busy` with `Retry-After`, not as an
/// internal error, and wrote nothing; once the lock is let go the same request is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_behind_a_held_database_lock_answers_503() {
    use sqlx::Connection as _;

    let t = crate::support::sqlite().await;
    let url = t.url.clone();
    let a = api(t).await;
    let create = || {
        Request::post("/api/v1/groups")
            .header(header::AUTHORIZATION, format!("Bearer {}", a.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"name": "eng"}).to_string()))
            .unwrap()
    };
    let before = a.audit_count().await;
    let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (status, headers, body) = a.raw(create()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "busy", "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    holder.close().await.unwrap();
    assert_eq!(a.audit_count().await, before);
    let (status, _, body) = a.raw(create()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
