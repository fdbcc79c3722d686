//! Single logout (HTTP-Redirect LogoutRequest from an SP) and the PostgreSQL backend.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Clock, SystemClock};
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::status::code;
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};

use super::slo_cases::{
    give_signed_app_slo, logout_request, replayed_logout_request, signed_in_to_signed_app,
    signed_query,
};
use super::support::*;

#[tokio::test]
async fn signed_logout_request_ends_the_session_and_answers_signed() {
    let idp = idp().await;
    // The signed app gets an SLO endpoint.
    give_signed_app_slo(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    let subject = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap();
    let token = b.cookies["latchkey_session"].clone();

    let logout = logout_request(
        SIGNED_SP,
        &subject.name_id.value,
        subject.name_id.format.as_deref().unwrap(),
    );
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key)))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location().to_owned();
    assert!(
        location.starts_with(&format!("{SIGNED_SP}/slo?SAMLResponse=")),
        "{location}"
    );
    assert!(!b.cookies.contains_key("latchkey_session"));
    let sessions = Sessions::new(&idp.store);
    assert!(
        sessions
            .resume(&token, idp.clock.now(), idp.settings.session_idle)
            .await
            .unwrap()
            .is_none()
    );
    // The LogoutResponse verifies with the IdP's key and answers the request.
    let query = location.split_once('?').unwrap().1;
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    message
        .verify(&idp.idp_keys, &[SignatureAlgorithm::EcdsaSha256])
        .unwrap();
    assert_eq!(message.relay_state.as_deref(), Some("slo-state"));
    assert!(
        message
            .xml
            .contains(&format!("InResponseTo=\"{}\"", logout.id))
    );
    assert!(message.xml.contains(code::SUCCESS));
    let response = LogoutResponse::parse(&message.xml).unwrap();
    assert_eq!(response.in_response_to.as_deref(), Some(logout.id.as_str()));
    assert_eq!(
        response.issuer.as_deref(),
        Some(idp.settings.entity_id.as_str())
    );
    assert_eq!(
        response.destination.as_deref(),
        Some(format!("{SIGNED_SP}/slo").as_str())
    );
    assert!(response.status.is_success(), "{:?}", response.status);
    assert_eq!(audit_actions(&idp, "logout.slo").await.len(), 1);
}

#[tokio::test]
async fn unsigned_or_forged_logout_requests_end_nothing() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    let subject = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap();
    let logout = logout_request(SIGNED_SP, &subject.name_id.value, "x");

    let unsigned = redirect::encode(
        MessageKind::Request,
        &logout.to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap();
    let page = b.get(&format!("/saml/slo?{unsigned}")).await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));

    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let forger = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&logout, &forger)))
        .await;
    assert_eq!(page.error_code(), Some("SSO-BAD-SIGNATURE"));
    assert_eq!(
        b.get("/portal").await.status,
        StatusCode::OK,
        "still signed in"
    );

    // From an app without certificates, an unsigned request is refused too...
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    let forged = logout_request(SP, &subject.name_id.value, "x");
    let q = redirect::encode(
        MessageKind::Request,
        &forged.to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap();
    let page = b.get(&format!("/saml/slo?{q}")).await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));
    assert_eq!(
        b.get("/portal").await.status,
        StatusCode::OK,
        "still signed in"
    );

    // ...unless its admin set the legacy opt-in: then an unsigned request may end only this
    // browser's session, and only when it names the NameID this session was given.
    allow_unsigned_logout(&idp, idp.app.id).await;
    let wrong = logout_request(SP, "someone-else", "x");
    let q = redirect::encode(
        MessageKind::Request,
        &wrong.to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap();
    assert_eq!(
        b.get(&format!("/saml/slo?{q}")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        b.get("/portal").await.status,
        StatusCode::OK,
        "still signed in"
    );
    let right = logout_request(SP, &subject.name_id.value, "x");
    let q = redirect::encode(
        MessageKind::Request,
        &right.to_xml().unwrap(),
        None,
        &BindingLimits::default(),
    )
    .unwrap();
    b.get(&format!("/saml/slo?{q}")).await;
    assert_eq!(b.get("/portal").await.location(), "/login");
}

#[tokio::test]
async fn passive_request_from_an_unassigned_user_is_refused_without_a_page() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let mut request = authn_request(SP);
    request.is_passive = true;
    let page = b.go(&redirect_uri(&request, None)).await;
    let err = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap_err();
    assert!(
        matches!(&err, latchkey_saml::Error::StatusNotSuccess { sub_code: Some(s), .. } if s == code::REQUEST_DENIED),
        "{err}"
    );
    assert_eq!(audit_actions(&idp, "sso.denied").await.len(), 1);
    assert!(audit_actions(&idp, "sso.assertion").await.is_empty());
}

#[tokio::test]
async fn signing_out_at_the_idp_tells_each_application_in_its_own_frame() {
    let idp = idp().await;
    for (app, url) in [
        (idp.app.id, format!("{SP}/slo")),
        (idp.signed_app.id, format!("{SIGNED_SP}/slo")),
    ] {
        idp.store
            .apps()
            .update(&Actor::system(), app, |a| {
                a.slo = Some(latchkey_idp::apps::Endpoint {
                    url: url.clone(),
                    binding: latchkey_idp::apps::Binding::HttpRedirect,
                });
            })
            .await
            .unwrap();
    }
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let mut subjects = Vec::new();
    for (entity, acs) in [(SP, SP_ACS), (SIGNED_SP, SIGNED_ACS)] {
        // One sign-in after the other: the chain walks them in the order they happened.
        idp.clock.advance(time::Duration::seconds(1));
        let request = authn_request(entity);
        let uri = if entity == SP {
            redirect_uri(&request, None)
        } else {
            signed_redirect_uri(&request, &idp.sp_key)
        };
        let page = b.go(&uri).await;
        subjects.push(
            sp_validate(&idp, entity, acs, &page.saml_response(), Some(&request.id)).unwrap(),
        );
    }
    let token = b.cookies["latchkey_session"].clone();
    let csrf = b.get("/logout").await.field("csrf").unwrap();
    let mut page = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the form is answered by a page"
    );
    assert!(page.headers.get(axum::http::header::LOCATION).is_none());
    assert!(!b.cookies.contains_key("latchkey_session"));
    // The IdP session is over before the first SP hears of it.
    assert!(
        Sessions::new(&idp.store)
            .resume(&token, idp.clock.now(), idp.settings.session_idle)
            .await
            .unwrap()
            .is_none()
    );
    // One frame per application, in the order they were signed in to.
    let frames = page.slo_frames();
    assert_eq!(frames.len(), 2, "{}", page.body);
    let (_, done) = page.slo_done();
    for ((subject, entity), frame) in subjects.iter().zip([SP, SIGNED_SP]).zip(&frames) {
        // Each frame sends its application the LogoutRequest.
        let location = b.get(frame).await.hop();
        let (endpoint, query) = location.split_once('?').unwrap();
        assert_eq!(endpoint, format!("{entity}/slo"));
        // What the SP receives: a LogoutRequest signed by the IdP, naming its user.
        let message = redirect::decode(query, &BindingLimits::default()).unwrap();
        message
            .verify(&idp.idp_keys, &[SignatureAlgorithm::EcdsaSha256])
            .unwrap();
        let request = LogoutRequest::parse(&message.xml).unwrap();
        assert_eq!(request.name_id.value, subject.name_id.value);
        assert_eq!(
            request.session_indexes,
            vec![subject.session_index.clone().unwrap()]
        );
        assert_eq!(
            request.issuer.as_deref(),
            Some(idp.settings.entity_id.as_str())
        );
        // The SP answers; its RelayState carries the chain on.
        let answer = LogoutResponse {
            id: latchkey_saml::ids::new_id().unwrap(),
            in_response_to: Some(request.id.clone()),
            issue_instant: SystemClock.now(), // the SP's clock, as above
            destination: Some(format!("{BASE}/saml/slo")),
            issuer: Some(entity.into()),
            status: latchkey_saml::status::Status::success(),
        };
        let q = redirect::encode(
            MessageKind::Response,
            &answer.to_xml().unwrap(),
            message.relay_state.as_deref(),
            &BindingLimits::default(),
        )
        .unwrap();
        let answered = b.get(&format!("/saml/slo?{q}")).await;
        assert_eq!(answered.status, StatusCode::OK, "{}", answered.body);
    }
    page = b.get(&done).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are signed out"));
}

#[tokio::test]
async fn a_replayed_logout_request_is_refused_and_ends_nothing() {
    replayed_logout_request(idp().await).await;
}

#[tokio::test]
async fn a_logout_request_replayed_at_the_last_instant_of_its_window_is_refused() {
    let idp = idp().await;
    give_signed_app_slo(&idp).await;
    let mut b = Browser::new(&idp);
    let subject = signed_in_to_signed_app(&idp, &mut b).await;
    let format = subject.name_id.format.clone().unwrap();
    let mut logout = logout_request(SIGNED_SP, &subject.name_id.value, &format);
    // IssueInstant travels in whole seconds.
    logout.issue_instant = logout.issue_instant.replace_nanosecond(0).unwrap();
    let captured = format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key));
    let page = b.get(&captured).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(b.get("/portal").await.location(), "/login");

    // The last instant the profile takes the request (IssueInstant + 5 min + 60 s skew):
    // its replay record ends there too, and must still refuse it.
    idp.clock
        .set(logout.issue_instant + time::Duration::minutes(6));
    signed_in_to_signed_app(&idp, &mut b).await;
    let page = b.get(&captured).await;
    assert_eq!(page.error_code(), Some("SLO-REPLAYED"), "{}", page.body);
    assert_eq!(
        b.get("/portal").await.status,
        StatusCode::OK,
        "still signed in"
    );
    assert_eq!(audit_actions(&idp, "logout.slo").await.len(), 1);
}

/// Signs alice in to the signed app (Tracker) with an SLO endpoint; returns her subject
/// there and her session cookie.
async fn signed_in_with_slo<'a>(
    idp: &'a Idp,
) -> (
    Browser<'a>,
    latchkey_saml::profile::AuthenticatedSubject,
    String,
) {
    give_signed_app_slo(idp).await;
    let mut b = Browser::new(idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    let subject = sp_validate(
        idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap();
    let token = b.cookies["latchkey_session"].clone();
    (b, subject, token)
}

/// The status of the LogoutResponse a redirect to the SP carries.
fn answered_status(page: &Page, idp: &Idp) -> latchkey_saml::status::Status {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let query = page.location().split_once('?').unwrap().1;
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    message
        .verify(&idp.idp_keys, &[SignatureAlgorithm::EcdsaSha256])
        .unwrap();
    LogoutResponse::parse(&message.xml).unwrap().status
}

#[tokio::test]
async fn a_logout_request_naming_another_session_index_ends_nothing_and_is_not_success() {
    let idp = idp().await;
    let (mut b, subject, token) = signed_in_with_slo(&idp).await;
    // alice's NameID, but a SessionIndex of no session of this browser (core §3.7.3.2).
    let mut logout = logout_request(
        SIGNED_SP,
        &subject.name_id.value,
        subject.name_id.format.as_deref().unwrap(),
    );
    logout.session_indexes = vec!["_another-session".into()];
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key)))
        .await;
    let status = answered_status(&page, &idp);
    assert!(!status.is_success(), "{status:?}");
    assert_eq!(status.sub_code.as_deref(), Some(code::UNKNOWN_PRINCIPAL));
    let sessions = Sessions::new(&idp.store);
    assert!(
        sessions
            .resume(&token, idp.clock.now(), idp.settings.session_idle)
            .await
            .unwrap()
            .is_some(),
        "the browser's session was not named, so it stays"
    );

    // Naming this browser's own SessionIndex ends it, with Success.
    let mut logout = logout_request(
        SIGNED_SP,
        &subject.name_id.value,
        subject.name_id.format.as_deref().unwrap(),
    );
    logout.session_indexes = vec![subject.session_index.clone().unwrap()];
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key)))
        .await;
    assert!(answered_status(&page, &idp).is_success());
    assert!(
        sessions
            .resume(&token, idp.clock.now(), idp.settings.session_idle)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_logout_request_matching_no_session_is_not_answered_success() {
    let idp = idp().await;
    let (mut b, _, token) = signed_in_with_slo(&idp).await;
    // A signed request naming a NameID nobody has: nothing ends, and the answer says so.
    let logout = logout_request(
        SIGNED_SP,
        "nobody",
        latchkey_saml::assertion::name_id_format::PERSISTENT,
    );
    let page = b
        .get(&format!("/saml/slo?{}", signed_query(&logout, &idp.sp_key)))
        .await;
    let status = answered_status(&page, &idp);
    assert!(!status.is_success(), "{status:?}");
    assert!(b.cookies.contains_key("latchkey_session"));
    assert!(
        Sessions::new(&idp.store)
            .resume(&token, idp.clock.now(), idp.settings.session_idle)
            .await
            .unwrap()
            .is_some()
    );
}

/// Unsigned LogoutRequests (an application's legacy opt-in) are bounded per client
/// network: see [`super::slo_cases::unsigned_logout_burst`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_unsigned_logout_requests_from_one_network_is_bounded() {
    let idp = idp_with(|c| c.trust_forwarded_for = true).await;
    super::slo_cases::unsigned_logout_burst(&idp, std::slice::from_ref(&idp.router)).await;
}
