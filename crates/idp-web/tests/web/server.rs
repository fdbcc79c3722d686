//! Health, readiness, metrics, metadata and the headers every page carries.

use axum::http::{StatusCode, header};
use latchkey_idp::Clock;
use sqlx::Connection as _;

use super::readiness::*;
use super::support::*;

#[tokio::test]
async fn health_ready_and_metrics() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    assert_eq!(b.get("/healthz").await.body, "ok\n");
    let ready = b.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(
        readiness(&ready),
        serde_json::json!({
            "ready": true,
            "degraded": false,
            "checks": { "database": "ok", "audit": "ok", "signing_key": "ok" }
        })
    );
    assert_eq!(ready.headers[header::CACHE_CONTROL], "no-store");
    b.get("/nowhere").await;
    let metrics = b.metrics().await;
    assert!(
        metrics
            .body
            .contains("latchkey_failures_total{reason=\"WEB-NOT-FOUND\"} 1")
    );
    assert!(
        metrics
            .body
            .contains("latchkey_http_request_duration_seconds_count{route=\"/healthz\"} 1")
    );
}

#[tokio::test]
async fn a_favicon_request_is_not_a_failure() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    for _ in 0..2 {
        let icon = b.get("/favicon.ico").await;
        assert_eq!(icon.status, StatusCode::NO_CONTENT);
        assert!(icon.body.is_empty());
        assert!(
            icon.headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
    }
    let metrics = b.metrics().await.body;
    assert!(!metrics.contains("latchkey_failures_total{"), "{metrics}");
    assert!(
        metrics.contains("latchkey_http_request_duration_seconds_count{route=\"/favicon.ico\"} 2"),
        "{metrics}"
    );
    // A page that is really missing still counts.
    b.get("/favicon.png").await;
    let metrics = b.metrics().await.body;
    assert!(metrics.contains("latchkey_failures_total{reason=\"WEB-NOT-FOUND\"} 1"));
}

#[tokio::test]
async fn security_headers_on_pages_and_error_pages() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    for uri in ["/login", "/nowhere", "/saml/sso?SAMLRequest=%%%"] {
        let page = b.get(uri).await;
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{uri}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("script-src"), "no script on {uri}");
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!page.body.contains("<script"), "{uri}");
        // Plain-http development origin: no HSTS.
        assert!(
            page.headers
                .get(header::STRICT_TRANSPORT_SECURITY)
                .is_none()
        );
    }
    let nowhere = b.get("/nowhere").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.error_code(), Some("WEB-NOT-FOUND"));
    assert!(nowhere.body.contains("Operation ID: <code>"));
}

/// Every answer of the server as `latchkey serve` composes it (the pages, the admin API and
/// SCIM merged into one router) carries the security headers: pages, redirects, refusals,
/// the fallbacks of each router and a path none of them knows.
#[tokio::test]
async fn every_answer_of_the_composed_server_carries_the_security_headers() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let idp = idp().await;
    let composed = idp
        .router
        .clone()
        .merge(latchkey_idp_web::api::router(
            latchkey_idp_web::api::ApiState::new(idp.store.clone()),
        ))
        .merge(latchkey_idp_web::scim::router(idp.store.clone(), BASE));
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let form = |uri: &str, body: String| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let cases = [
        (get("/login"), Some(StatusCode::OK)),
        (get("/"), Some(StatusCode::SEE_OTHER)),
        (get("/portal"), Some(StatusCode::SEE_OTHER)),
        (get("/admin/users"), Some(StatusCode::SEE_OTHER)),
        (get("/account"), Some(StatusCode::SEE_OTHER)),
        (get("/nowhere"), Some(StatusCode::NOT_FOUND)),
        (get("/api/nowhere"), Some(StatusCode::NOT_FOUND)),
        (get("/api/v1/nowhere"), None),
        (get("/scim/v2/Users"), Some(StatusCode::UNAUTHORIZED)),
        (
            get("/saml/sso?SAMLRequest=%%%"),
            Some(StatusCode::BAD_REQUEST),
        ),
        (
            Request::delete("/login").body(Body::empty()).unwrap(),
            Some(StatusCode::METHOD_NOT_ALLOWED),
        ),
        (
            form("/login", "username=alice&password=x".into()),
            Some(StatusCode::FORBIDDEN),
        ),
        (form("/login", "x".repeat(300 * 1024)), None),
    ];
    for (request, expected) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let response = composed.clone().oneshot(request).await.unwrap();
        if let Some(status) = expected {
            assert_eq!(response.status(), status, "{what}");
        }
        assert!(!response.status().is_server_error(), "{what}");
        let h = response.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe"), "{what}: {csp}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{what}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{what}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{what}");
    }
}

#[tokio::test]
async fn https_base_url_adds_hsts_and_host_prefixed_secure_cookies() {
    let idp = idp_with(|c| {
        c.base_url = "https://idp.example.org".into();
        c.cookie_secure = true;
    })
    .await;
    let mut b = Browser::new(&idp);
    let page = b.get("/login").await;
    assert_eq!(
        page.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("__Host-latchkey_csrf="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax")
    );
}

#[tokio::test]
async fn metadata_is_signed_and_lists_both_bindings() {
    // idp() already verified the signature against the key store's active certificate.
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let page = b.get("/saml/metadata").await;
    assert_eq!(
        page.headers[header::CONTENT_TYPE],
        "application/samlmetadata+xml"
    );
    assert!(page.body.contains("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"http://127.0.0.1:8080/saml/sso\""));
    assert!(page.body.contains("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"http://127.0.0.1:8080/saml/sso\""));
    assert!(
        page.body
            .contains("entityID=\"http://127.0.0.1:8080/saml/metadata\"")
    );
    assert_eq!(idp.idp_keys.len(), 1);
}

#[tokio::test]
async fn a_staged_next_key_is_published_without_a_restart() {
    use latchkey_idp::keys::{KeyAlgorithm, KeyStore};
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    assert_eq!(
        b.get("/saml/metadata")
            .await
            .body
            .matches("<md:KeyDescriptor")
            .count(),
        1
    );
    let mut keys = KeyStore::open(&idp.key_dir).unwrap();
    keys.rotate(KeyAlgorithm::EcdsaP256, idp.clock.now())
        .unwrap();
    let next = keys.next().unwrap().unwrap().certificate().unwrap();
    let body = b.get("/saml/metadata").await.body;
    assert_eq!(
        body.matches("<md:KeyDescriptor use=\"signing\"").count(),
        2,
        "{body}"
    );
    assert!(body.contains(&next.to_base64()));
}

/// Whatever arrives at the public endpoints, the answer is a page, never a server error.
#[test]
fn arbitrary_input_never_gets_a_server_error() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let idp = runtime.block_on(idp());
    let encoded = |bytes: &[u8]| {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        url::form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..512),
        "[ -~]{0,120}",
        prop::sample::select(vec![
            "/saml/sso?SAMLRequest=",
            "/saml/slo?SAMLRequest=",
            "/saml/sso?SAMLResponse=",
            "/saml/continue/",
            "/saml/init/",
            "/login?continue=",
        ]),
    );
    runner
        .run(&strategy, |(bytes, text, path)| {
            runtime.block_on(async {
                let mut b = Browser::new(&idp);
                // Raw bytes as a binding payload, and printable junk as a path or query.
                let uri = format!("{path}{}", encoded(&bytes));
                let page = b.get(&uri).await;
                prop_assert!(!page.status.is_server_error(), "{uri}: {}", page.status);
                let junk: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
                let page = b.get(&format!("{path}{junk}")).await;
                prop_assert!(!page.status.is_server_error());
                let page = b
                    .post(
                        "/saml/sso",
                        &[("SAMLRequest", &text), ("RelayState", &text)],
                    )
                    .await;
                prop_assert!(!page.status.is_server_error());
                let page = b
                    .post(
                        "/login",
                        &[("username", &text), ("password", &text), ("csrf", &text)],
                    )
                    .await;
                prop_assert!(!page.status.is_server_error());
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test]
async fn readyz_is_503_while_the_sqlite_file_is_locked() {
    let idp = idp().await;
    let url = idp.url.clone();
    not_ready_while_the_database_is_locked(&idp, async move || {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "BEGIN IMMEDIATE; UPDATE readiness_probe SET probed_at = 'held' WHERE id = 1",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        // Dropping the connection closes it, which rolls back and releases the lock.
        Box::new(conn) as Box<dyn std::any::Any>
    })
    .await;
}

#[tokio::test]
async fn readyz_is_503_without_a_signing_key() {
    let idp = idp().await;
    ready_becomes(&idp, StatusCode::OK).await;
    std::fs::remove_dir_all(&idp.key_dir).unwrap();
    let body = ready_becomes(&idp, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["ready"], false);
    // A code, never the key store's error (it names the key directory).
    assert_eq!(
        body["checks"]["signing_key"], "signing_key_unavailable",
        "{body}"
    );
    let key_dir = idp.key_dir.display().to_string();
    assert!(!body.to_string().contains(&key_dir), "{body}");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["audit"], "ok");
}
