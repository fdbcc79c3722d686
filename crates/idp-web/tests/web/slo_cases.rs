//! Single-logout cases that run on both backends: on SQLite in the main binary, on
//! PostgreSQL in the oracles binary.

#![allow(unused_imports)]

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Clock, SystemClock};
use latchkey_saml::assertion::NameId;
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::status::code;
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};

use super::support::*;

/// A replayed LogoutRequest is refused and ends nothing.
pub async fn replayed_logout_request(idp: Idp) {
    give_signed_app_slo(&idp).await;
    let mut b = Browser::new(&idp);
    let subject = signed_in_to_signed_app(&idp, &mut b).await;
    let format = subject.name_id.format.clone().unwrap();
    let logout = logout_request(SIGNED_SP, &subject.name_id.value, &format);
    let captured = format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key));

    // The original works: the session ends and the app gets its answer.
    let page = b.get(&captured).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(
        page.location()
            .starts_with(&format!("{SIGNED_SP}/slo?SAMLResponse="))
    );
    assert_eq!(b.get("/portal").await.location(), "/login");

    // Alice signs in again; the captured request, replayed, ends nothing.
    signed_in_to_signed_app(&idp, &mut b).await;
    let page = b.get(&captured).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert_eq!(page.error_code(), Some("SLO-REPLAYED"));
    assert!(page.body.contains("already used once"), "{}", page.body);
    assert!(page.headers.get(axum::http::header::SET_COOKIE).is_none());
    assert_eq!(
        b.get("/portal").await.status,
        StatusCode::OK,
        "still signed in"
    );
    // Over POST (parked and continued otherwise) it is refused the same way.
    let page = b
        .cross_site_post(
            "/saml/slo",
            &[("SAMLRequest", &signed_post(&logout, &idp.sp_key))],
        )
        .await;
    assert_eq!(page.error_code(), Some("SLO-REPLAYED"), "{}", page.body);
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    assert_eq!(audit_actions(&idp, "logout.slo").await.len(), 1);

    // A new request from the app still works.
    let fresh = logout_request(SIGNED_SP, &subject.name_id.value, &format);
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&fresh, &idp.sp_key)))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(b.get("/portal").await.location(), "/login");
    assert_eq!(audit_actions(&idp, "logout.slo").await.len(), 2);
}

pub fn logout_request(issuer: &str, name_id: &str, format: &str) -> LogoutRequest {
    LogoutRequest {
        id: latchkey_saml::ids::new_id().unwrap(),
        // The SP's own clock (the wall clock), where the IdP's test clock starts.
        issue_instant: SystemClock.now(),
        destination: Some(format!("{BASE}/saml/slo")),
        issuer: Some(issuer.into()),
        name_id: NameId::new(name_id, format),
        session_indexes: Vec::new(),
        not_on_or_after: None,
        reason: None,
    }
}

/// The request signed (enveloped) and encoded for the HTTP-POST binding's `SAMLRequest`.
pub fn signed_post(request: &LogoutRequest, key: &SigningKey) -> String {
    let xml = latchkey_xmlsec::dsig::sign(
        &request.to_xml().unwrap(),
        &request.id,
        key,
        None,
        &latchkey_xmlsec::dsig::SignOptions::default(),
    )
    .unwrap();
    latchkey_saml::binding::post::encode(&xml)
}

pub fn signed_query(request: &LogoutRequest, key: &SigningKey) -> String {
    redirect::encode_signed(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        Some("slo-state"),
        key,
        key.default_algorithm(),
        &BindingLimits::default(),
    )
    .unwrap()
}

/// Alice signed in to the signed app (which has an SLO endpoint): her subject there.
pub async fn signed_in_to_signed_app(
    idp: &Idp,
    b: &mut Browser<'_>,
) -> latchkey_saml::profile::AuthenticatedSubject {
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    sp_validate(
        idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap()
}

/// Gives the signed app (Tracker) a Redirect SLO endpoint.
pub async fn give_signed_app_slo(idp: &Idp) {
    idp.store
        .apps()
        .update(&Actor::system(), idp.signed_app.id, |a| {
            a.slo = Some(latchkey_idp::apps::Endpoint {
                url: format!("{SIGNED_SP}/slo"),
                binding: latchkey_idp::apps::Binding::HttpRedirect,
            });
        })
        .await
        .unwrap();
}

/// An unsigned LogoutRequest from `issuer` naming `name_id`, issued now by the IdP's clock,
/// as an HTTP-Redirect query (no signature).
pub fn unsigned_query(idp: &Idp, issuer: &str, name_id: &str) -> String {
    let mut request = logout_request(
        issuer,
        name_id,
        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    );
    request.issue_instant = idp.clock.now();
    redirect::encode(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap()
}

/// Rows in the LogoutRequest replay record.
pub async fn logout_replay_records(idp: &Idp) -> i64 {
    use sqlx::Connection as _;
    let mut raw = sqlx::AnyConnection::connect(&idp.url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM slo_seen_requests")
        .fetch_one(&mut raw)
        .await
        .unwrap()
}

/// Under an application's legacy opt-in anyone can post unsigned LogoutRequests, each a
/// replay record and a `logout.slo` line. Forty at once from one client network (addresses
/// of one IPv6 /64, spread over `routers`, the nodes of one store): exactly
/// `UNSIGNED_LOGOUT.free` are acted on, the rest are answered 429 `SLO-THROTTLED` with
/// `Retry-After` and write nothing. A logout that ended the browser's own session gave its
/// slot back first; another network, a signed request and, once the block has passed on the
/// IdP's clock, the same network again, are acted on. `idp` trusts `X-Forwarded-For`.
pub async fn unsigned_logout_burst(idp: &Idp, routers: &[axum::Router]) {
    use axum::http::header;
    use latchkey_idp::session::ThrottlePolicy;
    allow_unsigned_logout(idp, idp.app.id).await;
    let network = |i: usize| format!("2001:db8:5:5::{:x}", i + 1);
    let free = usize::try_from(ThrottlePolicy::UNSIGNED_LOGOUT.free).unwrap();

    // Alice, signed in to the app from that network, signs out there with an unsigned
    // request: her session ends, and the slot it took is given back.
    let mut b = Browser::new(idp);
    b.address = Some(network(1000));
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let subject = sp_validate(idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    let own = unsigned_query(idp, SP, &subject.name_id.value);
    let page = b.get(&format!("/saml/slo?{own}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(b.get("/portal").await.location(), "/login", "signed out");
    assert_eq!(audit_actions(idp, "logout.slo").await.len(), 1);
    assert_eq!(logout_replay_records(idp).await, 1);

    // The burst: every request built before any is sent, all released at once.
    let n = 40;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let uri = format!(
            "/saml/slo?{}",
            unsigned_query(idp, SP, "nobody@example.org")
        );
        let request = axum::http::Request::get(uri.as_str())
            .header("x-forwarded-for", network(i))
            .body(axum::body::Body::empty())
            .unwrap();
        let (router, gate) = (routers[i % routers.len()].clone(), gate.clone());
        set.spawn(async move {
            gate.wait().await;
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap().to_owned());
            (status, retry_after, body_text(response).await)
        });
    }
    let (mut acted, mut throttled) = (0, 0);
    let block = ThrottlePolicy::UNSIGNED_LOGOUT.base;
    while let Some(r) = set.join_next().await {
        let (status, retry_after, body) = r.unwrap();
        match status {
            StatusCode::OK => acted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1;
                // The clock stands still: the block set by the last free slot, to the second.
                assert_eq!(
                    retry_after.as_deref(),
                    Some(block.whole_seconds().to_string().as_str())
                );
                assert!(body.contains("SLO-THROTTLED"), "{body}");
                assert!(body.contains("may still be signed in"), "{body}");
                // A code and an operation ID; the detail only in the log.
                assert!(!body.contains(SP) && !body.contains("2001:db8"), "{body}");
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!((acted, throttled), (free, n - free));
    assert_eq!(audit_actions(idp, "logout.slo").await.len(), free + 1);
    assert_eq!(
        logout_replay_records(idp).await,
        i64::try_from(free + 1).unwrap()
    );

    // Over POST, the same network is refused before anything is parked or recorded.
    let mut noisy = Browser::new(idp);
    noisy.address = Some(network(2000));
    let mut posted = logout_request(
        SP,
        "nobody@example.org",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    );
    posted.issue_instant = idp.clock.now();
    let form = latchkey_saml::binding::post::encode(&posted.to_xml().unwrap());
    let page = noisy
        .cross_site_post("/saml/slo", &[("SAMLRequest", &form)])
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.error_code(), Some("SLO-THROTTLED"));
    assert!(page.headers.contains_key(header::RETRY_AFTER));
    assert_eq!(
        logout_replay_records(idp).await,
        i64::try_from(free + 1).unwrap()
    );
    // Its ID was not used up: from another network the same request is acted on.
    let mut other = Browser::new(idp);
    other.address = Some("198.51.100.30".into());
    let page = other
        .cross_site_post("/saml/slo", &[("SAMLRequest", &form)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = other.get(page.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = other
        .get(&format!(
            "/saml/slo?{}",
            unsigned_query(idp, SP, "nobody@example.org")
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(audit_actions(idp, "logout.slo").await.len(), free + 3);

    // A signed request from the app's configured key is not anonymous: not held up.
    let signed = logout_request(SIGNED_SP, "nobody@example.org", "x");
    let page = noisy
        .get(&format!("/saml/slo?{}", signed_query(&signed, &idp.sp_key)))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(audit_actions(idp, "logout.slo").await.len(), free + 4);

    // Once the block has passed (on the IdP's clock), the network is heard again: one
    // request, which starts the next, longer block.
    idp.clock.advance(block + time::Duration::seconds(1));
    let page = noisy
        .get(&format!(
            "/saml/slo?{}",
            unsigned_query(idp, SP, "nobody@example.org")
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = noisy
        .get(&format!(
            "/saml/slo?{}",
            unsigned_query(idp, SP, "nobody@example.org")
        ))
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(
        page.headers[header::RETRY_AFTER],
        (2 * block.whole_seconds()).to_string()
    );
    assert_eq!(audit_actions(idp, "logout.slo").await.len(), free + 5);
    assert_eq!(
        logout_replay_records(idp).await,
        i64::try_from(free + 5).unwrap()
    );
}
