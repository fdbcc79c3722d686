//! Health, readiness, metrics, metadata and the headers every page carries.

use axum::http::{StatusCode, header};

use super::support::*;

#[tokio::test]
async fn health_ready_and_metrics() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    assert_eq!(b.get("/healthz").await.body, "ok\n");
    let ready = b.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    b.get("/nowhere").await;
    let metrics = b.get("/metrics").await;
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
    keys.rotate(KeyAlgorithm::EcdsaP256, time::OffsetDateTime::now_utc())
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
