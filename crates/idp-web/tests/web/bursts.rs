//! Sign-in bursts for the front-door tests, shared by the main binary (SQLite) and the
//! oracles binary (PostgreSQL, two nodes).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use latchkey_idp::Store;
use latchkey_idp::session::ThrottlePolicy;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::support::*;

/// A CSRF value of the shape the server issues; the double-submit check only needs the
/// cookie and the field to match.
pub const CSRF: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// One sign-in POST as a fresh browser would send it, from `address` (the IdP under test
/// trusts `X-Forwarded-For` where the test needs addresses).
pub async fn post_login(
    router: Router,
    username: String,
    password: String,
    address: Option<String>,
    extra_cookie: Option<String>,
) -> (StatusCode, HeaderMap) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", username.as_str()),
            ("password", password.as_str()),
            ("csrf", CSRF),
        ])
        .finish();
    let mut cookie = format!("latchkey_csrf={CSRF}");
    if let Some(extra) = extra_cookie {
        cookie.push_str("; ");
        cookie.push_str(&extra);
    }
    let mut request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie);
    if let Some(addr) = address {
        request = request.header("x-forwarded-for", addr);
    }
    let response = router
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    (response.status(), response.headers().clone())
}

/// Sends `n` sign-ins at once (each from `address(i)` as user `name(i)`) and returns the
/// statuses, once all are answered.
pub async fn burst(
    routers: &[Router],
    n: usize,
    name: impl Fn(usize) -> String,
    address: impl Fn(usize) -> Option<String>,
    password: &str,
) -> Vec<(StatusCode, HeaderMap)> {
    // Every request is built before any is sent, and all wait on one barrier, so they
    // reach the server as one burst.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = JoinSet::new();
    for i in 0..n {
        let router = routers[i % routers.len()].clone();
        let (user, addr, pw, gate) = (name(i), address(i), password.to_owned(), gate.clone());
        set.spawn(async move {
            gate.wait().await;
            post_login(router, user, pw, addr, None).await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

pub fn count(results: &[(StatusCode, HeaderMap)], status: StatusCode) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

pub fn hashes(store: &Store) -> u64 {
    store.hashing().stats().completed
}

pub async fn one_account_burst(idp: &Idp, routers: &[Router], stores: &[&Store]) {
    let before: u64 = stores.iter().map(|s| hashes(s)).sum();
    let results = burst(
        routers,
        40,
        |_| "alice".into(),
        |_| Some("198.51.100.7".into()),
        "wrong password",
    )
    .await;
    let evaluated: u64 = stores.iter().map(|s| hashes(s)).sum::<u64>() - before;
    let limit = usize::try_from(ThrottlePolicy::PAIR.free).unwrap();
    assert_eq!(
        count(&results, StatusCode::UNAUTHORIZED),
        limit,
        "evaluated"
    );
    assert_eq!(count(&results, StatusCode::TOO_MANY_REQUESTS), 40 - limit);
    assert_eq!(evaluated, u64::try_from(limit).unwrap(), "Argon2 runs");
    for (status, headers) in &results {
        if *status == StatusCode::TOO_MANY_REQUESTS {
            let after: u64 = headers[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=30).contains(&after), "Retry-After {after}");
        }
    }
    // The owner, from that address and without a trusted browser, is refused too: the
    // slot is checked before the password.
    let (status, _) = post_login(
        idp.router.clone(),
        "alice".into(),
        PASSWORD.into(),
        Some("198.51.100.7".into()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

/// Sixteen tabs of one signed-in session present one AuthnRequest at once, half at a second
/// node: exactly one gets a Response (its ID recorded in the commit of that answer's audit
/// line), every other one the replay page, and one `sso.assertion` line is written. Shared
/// by the SQLite and PostgreSQL binaries.
pub async fn one_authn_request_burst(idp: &Idp) {
    let mut b = Browser::new(idp);
    b.login("alice", PASSWORD, None).await;
    let cookie: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = cookie.join("; ");
    let (node_b, _) = second_node(idp).await;
    let routers = [idp.router.clone(), node_b];
    let request = authn_request(SP);
    let uri = redirect_uri(&request, None);
    let before = idp
        .store
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("sso.assertion".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();

    let n = 16;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (router, uri, cookie, gate) = (
            routers[i % 2].clone(),
            uri.clone(),
            cookie.clone(),
            gate.clone(),
        );
        set.spawn(async move {
            let request = axum::http::Request::get(uri.as_str())
                .header(header::COOKIE, cookie)
                .body(axum::body::Body::empty())
                .unwrap();
            gate.wait().await;
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            (response.status(), body_text(response).await)
        });
    }
    let (mut answered, mut replayed) = (0, 0);
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        if status == StatusCode::OK && body.contains("name=\"SAMLResponse\"") {
            answered += 1;
        } else {
            assert!(body.contains("SSO-REPLAYED"), "{status} {body}");
            assert!(!body.contains("SAMLResponse"), "{body}");
            replayed += 1;
        }
    }
    assert_eq!((answered, replayed), (1, n - 1));
    let after = idp
        .store
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("sso.assertion".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "one assertion, one line");
}
