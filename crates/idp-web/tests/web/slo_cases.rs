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
        // The SP's own clock; web/logout.rs checks it against the wall clock (its clock is
        // not yet injected), where the IdP's test clock starts.
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
