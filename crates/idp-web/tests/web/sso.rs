//! SP-initiated sign-in: each request rule, each error page, and the happy paths on both
//! bindings, with the Response checked by the SP-side profile validation.

use axum::http::{StatusCode, header};
use latchkey_idp::Clock;
use latchkey_saml::assertion::name_id_format;
use latchkey_saml::authn_request::{NameIdPolicy, binding_uri};
use latchkey_saml::binding::post;
use latchkey_saml::status::code;
use latchkey_xmlsec::dsig::{self, SignOptions};

use super::support::*;

/// Runs a request through to the page the browser ends on after signing in as `user`.
async fn sign_in_through(b: &mut Browser<'_>, first: Page, user: &str) -> Page {
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let cont = first.location().to_owned();
    assert!(cont.starts_with("/saml/continue/"), "{cont}");
    let at_login = b.get(&cont).await;
    assert_eq!(at_login.status, StatusCode::SEE_OTHER);
    let login = at_login.location().to_owned();
    assert!(login.starts_with("/login?continue="), "{login}");
    let key = continue_key(&login);
    let after = b.login(user, PASSWORD, Some(&key)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "{}", after.body);
    assert_eq!(after.location(), cont);
    b.get(&cont).await
}

#[tokio::test]
async fn redirect_binding_happy_path() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let request = authn_request(SP);
    let first = b.get(&redirect_uri(&request, Some("state-42"))).await;
    let page = sign_in_through(&mut b, first, "alice").await;
    assert_eq!(page.status, StatusCode::OK);

    // The auto-POST page: one hashed script, posting only to the SP's origin.
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains(&format!("script-src {}", post::SCRIPT_CSP_HASH)),
        "{csp}"
    );
    assert!(csp.contains("form-action https://sp.example.com;"), "{csp}");
    assert!(page.body.contains("action=\"https://sp.example.com/acs\""));
    assert_eq!(page.field("RelayState").as_deref(), Some("state-42"));

    let xml = page.saml_response();
    let subject = sp_validate(&idp, SP, SP_ACS, &xml, Some(&request.id)).unwrap();
    assert_eq!(subject.in_response_to.as_deref(), Some(request.id.as_str()));
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::PERSISTENT)
    );
    assert_eq!(
        subject.name_id.value,
        idp.store
            .apps()
            .persistent_name_id(idp.alice.id, idp.app.id)
            .await
            .unwrap()
    );
    assert_eq!(subject.name_id.sp_name_qualifier.as_deref(), Some(SP));
    assert!(subject.session_index.is_some());
    let mail = subject
        .attributes
        .iter()
        .find(|a| a.name == "mail")
        .unwrap();
    assert_eq!(mail.values, vec!["alice@example.org".to_string()]);
    let groups = subject
        .attributes
        .iter()
        .find(|a| a.name == "memberOf")
        .unwrap();
    assert_eq!(groups.values, vec!["staff".to_string()]);
    // Validity: five minutes.
    assert!(subject.replay_expiry - idp.clock.now() <= time::Duration::minutes(7));

    // The same Response is not valid for another SP or another request.
    assert!(sp_validate(&idp, SIGNED_SP, SP_ACS, &xml, Some(&request.id)).is_err());
    assert!(sp_validate(&idp, SP, SP_ACS, &xml, Some("_other")).is_err());

    let events = audit_actions(&idp, "sso.assertion").await;
    assert_eq!(events.len(), 1);
    let details = events[0].after.as_ref().unwrap();
    assert_eq!(
        details["attributes"],
        serde_json::json!(["mail", "memberOf"])
    );
    assert_eq!(details["name_id"], subject.name_id.value.as_str());
    assert_eq!(events[0].target_name.as_deref(), Some(SP));
    assert_eq!(audit_actions(&idp, "login.success").await.len(), 1);

    // A second request rides the session: no login page, straight to the Response.
    let again = authn_request(SP);
    let first = b.get(&redirect_uri(&again, None)).await;
    let page = b.follow(first).await;
    let xml = page.saml_response();
    sp_validate(&idp, SP, SP_ACS, &xml, Some(&again.id)).unwrap();
    let metrics = b.metrics().await.body;
    assert!(
        metrics.contains("latchkey_assertions_issued_total{app=\"https://sp.example.com\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("latchkey_logins_total{result=\"success\"} 1"));
}

fn post_signed(idp: &Idp, request: &latchkey_saml::authn_request::AuthnRequest) -> String {
    let xml = request.to_xml().unwrap();
    let signed = dsig::sign(
        &xml,
        &request.id,
        &idp.sp_key,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    post::encode(&signed)
}

#[tokio::test]
async fn post_binding_with_signed_request_parks_and_continues_same_site() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let mut request = authn_request(SIGNED_SP);
    request.assertion_consumer_service_url = Some(SIGNED_ACS.into());
    request.protocol_binding = Some(binding_uri::HTTP_POST.into());
    let encoded = post_signed(&idp, &request);
    let first = b
        .post(
            "/saml/sso",
            &[("SAMLRequest", &encoded), ("RelayState", "rs")],
        )
        .await;
    let page = sign_in_through(&mut b, first, "alice@example.org").await;
    assert_eq!(page.field("RelayState").as_deref(), Some("rs"));
    let xml = page.saml_response();
    let subject = sp_validate(&idp, SIGNED_SP, SIGNED_ACS, &xml, Some(&request.id)).unwrap();
    // This app asked for e-mail NameIDs and a signed Response (not a signed assertion).
    assert_eq!(subject.name_id.value, "alice@example.org");
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::EMAIL)
    );
    assert!(subject.attributes.is_empty());

    // With a session, a cross-site POST still parks and 303s: the cookie-less POST itself
    // answers nothing; the same-site GET that follows carries the cookie and is answered.
    let again = authn_request(SIGNED_SP);
    let encoded = post_signed(&idp, &again);
    let first = b
        .cross_site_post("/saml/sso", &[("SAMLRequest", &encoded)])
        .await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(first.field("SAMLResponse").is_none());
    let cont = first.location().to_owned();
    let page = b.follow(first).await;
    sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&again.id),
    )
    .unwrap();

    // A POST that does carry the cookie (same-site) is answered at once.
    let third = authn_request(SIGNED_SP);
    let encoded = post_signed(&idp, &third);
    let page = b.post("/saml/sso", &[("SAMLRequest", &encoded)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&third.id),
    )
    .unwrap();

    // A continue key answers once: one AuthnRequest, one Response.
    let replayed = b.get(&cont).await;
    assert_eq!(replayed.status, StatusCode::GONE);
    assert_eq!(replayed.error_code(), Some("SSO-EXPIRED"));
    assert!(replayed.field("SAMLResponse").is_none());
}

#[tokio::test]
async fn signed_redirect_request_verifies_and_bad_signatures_are_refused() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    // Good signature.
    let request = authn_request(SIGNED_SP);
    let page = b.get(&signed_redirect_uri(&request, &idp.sp_key)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    // Signed with a key the app never registered.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = latchkey_xmlsec::crypto::SigningKey::from_pem(&pair.serialize_pem()).unwrap();
    let page = b
        .get(&signed_redirect_uri(&authn_request(SIGNED_SP), &other))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code(), Some("SSO-BAD-SIGNATURE"));
    assert!(!page.headers.contains_key(header::LOCATION));

    // The signature is over the query: changing RelayState breaks it.
    let uri = signed_redirect_uri(&authn_request(SIGNED_SP), &idp.sp_key)
        .replace("RelayState=rs-1", "RelayState=rs-2");
    assert_eq!(b.get(&uri).await.error_code(), Some("SSO-BAD-SIGNATURE"));

    // Unsigned, from an app with a registered signing certificate.
    let page = b.get(&redirect_uri(&authn_request(SIGNED_SP), None)).await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));

    // POST binding, enveloped signature by the wrong key.
    let request = authn_request(SIGNED_SP);
    let signed = dsig::sign(
        &request.to_xml().unwrap(),
        &request.id,
        &other,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let page = b
        .post("/saml/sso", &[("SAMLRequest", &post::encode(&signed))])
        .await;
    assert_eq!(page.error_code(), Some("SSO-BAD-SIGNATURE"));
    // POST binding, unsigned.
    let page = b
        .post(
            "/saml/sso",
            &[("SAMLRequest", &post::encode(&request.to_xml().unwrap()))],
        )
        .await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));
}

#[tokio::test]
async fn server_wide_signature_requirement_applies_to_every_app() {
    let idp = idp_with(|c| c.require_signed_requests = true).await;
    let mut b = Browser::new(&idp);
    let page = b.get(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));
    let metadata = b.get("/saml/metadata").await;
    assert!(metadata.body.contains("WantAuthnRequestsSigned=\"true\""));
}

#[tokio::test]
async fn unknown_sp_and_unregistered_acs_get_an_error_page_and_nothing_is_sent() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;

    let page = b
        .get(&redirect_uri(&authn_request("https://evil.example"), None))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code(), Some("SSO-UNKNOWN-SP"));
    assert!(page.field("SAMLResponse").is_none());

    let mut request = authn_request(SP);
    request.assertion_consumer_service_url = Some("https://evil.example/acs".into());
    let page = b.get(&redirect_uri(&request, None)).await;
    assert_eq!(page.error_code(), Some("SSO-ACS"));
    assert!(page.field("SAMLResponse").is_none());

    // A registered URL with a different query string is a different URL.
    let mut request = authn_request(SP);
    request.assertion_consumer_service_url = Some(format!("{SP_ACS}?next=https://evil.example"));
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-ACS")
    );

    let mut request = authn_request(SP);
    request.assertion_consumer_service_index = Some(7);
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-ACS")
    );

    // The registered index works and is the default ACS.
    let mut request = authn_request(SP);
    request.assertion_consumer_service_index = Some(0);
    let page = b.go(&redirect_uri(&request, None)).await;
    sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();

    let mut request = authn_request(SP);
    request.issuer = None;
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-NO-ISSUER")
    );

    let mut request = authn_request(SP);
    request.destination = Some("https://other-idp.example/sso".into());
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-DESTINATION")
    );

    let mut request = authn_request(SP);
    request.issue_instant -= time::Duration::hours(1);
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-STALE")
    );

    let mut request = authn_request(SP);
    request.protocol_binding = Some(binding_uri::HTTP_ARTIFACT.into());
    assert_eq!(
        b.get(&redirect_uri(&request, None)).await.error_code(),
        Some("SSO-BINDING")
    );

    let metrics = b.metrics().await.body;
    assert!(
        metrics.contains("latchkey_failures_total{reason=\"SSO-ACS\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn malformed_oversized_and_bomb_requests_are_refused_without_a_500() {
    use std::io::Write;
    let idp = idp().await;
    let mut b = Browser::new(&idp);

    // 16 MiB of zeros deflates to ~16 KiB: under the encoded cap, far over the decoded one.
    let mut enc = flate2_encoder();
    let chunk = vec![b'<'; 1024 * 1024];
    for _ in 0..16 {
        enc.write_all(&chunk).unwrap();
    }
    let bomb = enc.finish().unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bomb);
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLRequest", &b64)
        .finish();
    let page = b.get(&format!("/saml/sso?{query}")).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(page.error_code(), Some("SSO-DECODE"));

    // An oversized POST field.
    let huge = "A".repeat(200 * 1024);
    let page = b.post("/saml/sso", &[("SAMLRequest", &huge)]).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A body over the server's limit.
    let huge = "A".repeat(400 * 1024);
    let page = b.post("/saml/sso", &[("SAMLRequest", &huge)]).await;
    assert!(page.status.is_client_error(), "{}", page.status);

    for junk in [
        "/saml/sso?SAMLRequest=%%%",
        "/saml/sso?SAMLRequest=bm90IGRlZmxhdGU=",
        "/saml/sso?SAMLResponse=abc",
        "/saml/sso?SAMLRequest=a&SAMLRequest=b",
        "/saml/sso?SAMLRequest=a&SigAlg=x",
    ] {
        let page = b.get(junk).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{junk}");
        assert_eq!(page.error_code(), Some("SSO-DECODE"), "{junk}");
    }
    // Well-formed XML that is not an AuthnRequest, and a DOCTYPE.
    for xml in ["<x/>", "<!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>"] {
        let page = b
            .post("/saml/sso", &[("SAMLRequest", &post::encode(xml))])
            .await;
        assert_eq!(page.error_code(), Some("SSO-MALFORMED"), "{xml}");
    }
    let page = b.post("/saml/sso", &[("RelayState", "x")]).await;
    assert_eq!(page.error_code(), Some("SSO-DECODE"));
    let page = b
        .send(
            axum::http::Request::post("/saml/sso")
                .header(header::CONTENT_TYPE, "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(page.error_code(), Some("WEB-FORM"));
}

fn flate2_encoder() -> flate2::write::DeflateEncoder<Vec<u8>> {
    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best())
}

#[tokio::test]
async fn relay_state_over_80_bytes_is_refused() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let long = "r".repeat(81);
    let xml = authn_request(SP).to_xml().unwrap();
    let query = format!(
        "{}&RelayState={long}",
        latchkey_saml::binding::redirect::encode(
            latchkey_saml::binding::MessageKind::Request,
            &xml,
            None,
            &Default::default()
        )
        .unwrap()
    );
    let page = b.get(&format!("/saml/sso?{query}")).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code(), Some("SSO-RELAYSTATE"));
    let page = b
        .post(
            "/saml/sso",
            &[("SAMLRequest", &post::encode(&xml)), ("RelayState", &long)],
        )
        .await;
    assert_eq!(page.error_code(), Some("SSO-RELAYSTATE"));
}

#[tokio::test]
async fn unassigned_user_is_denied_with_an_audit_event_and_no_assertion() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let request = authn_request(SP);
    let first = b.get(&redirect_uri(&request, None)).await;
    let page = sign_in_through(&mut b, first, "bob").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("SSO-DENIED"));
    assert!(page.body.contains("not allowed to use Wiki"));
    assert!(page.field("SAMLResponse").is_none());
    assert!(!page.body.contains("<form"));
    // The way out: back to the portal, or sign out to sign in as someone else.
    assert!(page.body.contains("<a href=\"/portal\">"), "{}", page.body);
    assert!(
        page.body
            .contains("<a href=\"/logout\">Sign in as someone else</a>")
    );
    let denied = audit_actions(&idp, "sso.denied").await;
    assert_eq!(denied.len(), 1);
    // The operation ID on the page is the one in the audit event.
    let marker = "Operation ID: <code>";
    let start = page.body.find(marker).unwrap() + marker.len();
    let shown = &page.body[start..start + page.body[start..].find('<').unwrap()];
    assert_eq!(shown.len(), 12);
    assert_eq!(denied[0].after.as_ref().unwrap()["operation_id"], shown);
    assert_eq!(denied[0].actor, format!("user:{}", idp.bob.id));
    assert_eq!(
        denied[0].target_id.as_deref(),
        Some(idp.app.id.to_string().as_str())
    );
    assert!(audit_actions(&idp, "sso.assertion").await.is_empty());
    // No pairwise identifier was allocated for him either.
    assert!(
        idp.store
            .apps()
            .user_for_name_id(idp.app.id, "anything")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn is_passive_without_a_session_answers_no_passive() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let mut request = authn_request(SP);
    request.is_passive = true;
    let page = b.go(&redirect_uri(&request, Some("p"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("password"),
        "no login page for IsPassive"
    );
    let err = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap_err();
    match err {
        latchkey_saml::Error::StatusNotSuccess {
            code: top,
            sub_code,
            ..
        } => {
            assert_eq!(top, code::RESPONDER);
            assert_eq!(sub_code.as_deref(), Some(code::NO_PASSIVE));
        }
        other => panic!("{other}"),
    }
    assert_eq!(page.field("RelayState").as_deref(), Some("p"));

    // With a session, IsPassive just works.
    b.login("alice", PASSWORD, None).await;
    let mut request = authn_request(SP);
    request.is_passive = true;
    let page = b.go(&redirect_uri(&request, None)).await;
    sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
}

#[tokio::test]
async fn a_signed_in_user_is_answered_in_one_round_trip_and_force_authn_still_parks() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let page = b.get(&redirect_uri(&request, Some("one-trip"))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.headers.contains_key(header::LOCATION));
    assert_eq!(page.field("RelayState").as_deref(), Some("one-trip"));
    sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    assert_eq!(audit_actions(&idp, "sso.assertion").await.len(), 1);

    // The access policy is the same on this path: bob is signed in, but not assigned.
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let page = bob.get(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("SSO-DENIED"));
    assert!(page.field("SAMLResponse").is_none());

    // ForceAuthn is never answered from the session: it parks and asks for the password.
    let mut request = authn_request(SP);
    request.force_authn = true;
    let first = b.get(&redirect_uri(&request, None)).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert!(first.location().starts_with("/saml/continue/"));
    assert!(first.field("SAMLResponse").is_none());
}

#[tokio::test]
async fn force_authn_asks_for_the_password_again() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let first_authn = {
        let request = authn_request(SP);
        let page = b.go(&redirect_uri(&request, None)).await;
        sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id))
            .unwrap()
            .authn_instant
    };
    // Some time later the SP wants a fresh sign-in.
    idp.clock.advance(time::Duration::minutes(5));
    let mut request = authn_request(SP);
    request.force_authn = true;
    let first = b.get(&redirect_uri(&request, None)).await;
    // Despite the session, the browser is sent to the login page.
    let page = sign_in_through(&mut b, first, "alice").await;
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    assert!(subject.authn_instant >= first_authn);
    assert_eq!(audit_actions(&idp, "login.success").await.len(), 2);

    // ForceAuthn together with IsPassive cannot be met (a minute later: a sign-in at the very
    // instant a request is parked counts as fresh for it).
    idp.clock.advance(time::Duration::minutes(1));
    let mut request = authn_request(SP);
    request.force_authn = true;
    request.is_passive = true;
    let page = b.go(&redirect_uri(&request, None)).await;
    assert_refused_with(&idp, SP, SP_ACS, &page, &request.id, code::NO_PASSIVE);
}

#[tokio::test]
async fn name_id_policy_we_cannot_honour_is_refused_at_the_acs() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let mut request = authn_request(SP);
    request.name_id_policy = Some(NameIdPolicy {
        format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:kerberos".into()),
        sp_name_qualifier: None,
        allow_create: Some(true),
    });
    let page = b.get(&redirect_uri(&request, None)).await;
    // Answered at once, to the registered ACS, without asking anyone to sign in.
    assert_eq!(page.status, StatusCode::OK);
    let err = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap_err();
    match err {
        latchkey_saml::Error::StatusNotSuccess { sub_code, .. } => {
            assert_eq!(sub_code.as_deref(), Some(code::INVALID_NAMEID_POLICY));
        }
        other => panic!("{other}"),
    }
    assert_eq!(audit_actions(&idp, "sso.refused").await.len(), 1);

    // Formats we can make are accepted, whatever the app's own is.
    for format in [
        name_id_format::PERSISTENT,
        name_id_format::UNSPECIFIED,
        name_id_format::TRANSIENT,
        name_id_format::EMAIL,
    ] {
        let mut request = authn_request(SP);
        request.name_id_policy = Some(NameIdPolicy {
            format: Some(format.into()),
            sp_name_qualifier: None,
            allow_create: None,
        });
        let first = b.get(&redirect_uri(&request, None)).await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{format}");
    }
}

/// What mod_auth_mellon and SimpleSAMLphp (transient) and node-saml (emailAddress) ask
/// for by default, from an app registered with pairwise persistent NameIDs.
#[tokio::test]
async fn the_requested_name_id_format_is_issued() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let ask = |format: &str, allow_create: Option<bool>| {
        let mut request = authn_request(SP);
        request.name_id_policy = Some(NameIdPolicy {
            format: Some(format.into()),
            sp_name_qualifier: None,
            allow_create,
        });
        (request.id.clone(), redirect_uri(&request, None))
    };
    // Transient: a fresh opaque value each time, scoped to this IdP and SP.
    let mut transients = Vec::new();
    for _ in 0..2 {
        let (id, uri) = ask(name_id_format::TRANSIENT, None);
        let page = b.get(&uri).await;
        let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&id)).unwrap();
        assert_eq!(
            subject.name_id.format.as_deref(),
            Some(name_id_format::TRANSIENT)
        );
        assert_eq!(subject.name_id.sp_name_qualifier.as_deref(), Some(SP));
        assert_ne!(subject.name_id.value, "alice@example.org");
        transients.push(subject.name_id.value);
    }
    assert_ne!(transients[0], transients[1]);
    // Each was recorded, as single logout will name it for this app.
    let recorded = audit_actions(&idp, "sso.assertion").await;
    for t in &transients {
        assert!(
            recorded
                .iter()
                .any(|e| e.after.as_ref().unwrap()["name_id"] == t.as_str())
        );
    }
    // emailAddress: the user's address.
    let (id, uri) = ask(name_id_format::EMAIL, None);
    let subject = sp_validate(
        &idp,
        SP,
        SP_ACS,
        &b.get(&uri).await.saml_response(),
        Some(&id),
    )
    .unwrap();
    assert_eq!(subject.name_id.value, "alice@example.org");
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::EMAIL)
    );
    // An app the admin does not release the address to cannot get it as a NameID either.
    idp.store
        .apps()
        .update(&latchkey_idp::Actor::system(), idp.app.id, |a| {
            a.attributes.retain(|m| {
                m.source
                    != latchkey_idp::apps::AttributeSource::Field(
                        latchkey_idp::apps::UserField::Email,
                    )
            });
        })
        .await
        .unwrap();
    let (id, uri) = ask(name_id_format::EMAIL, None);
    let page = b.get(&uri).await;
    assert_refused_with(&idp, SP, SP_ACS, &page, &id, code::INVALID_NAMEID_POLICY);
    assert!(!page.saml_response().contains("alice@example.org"));
    // unspecified: the app's own (pairwise persistent).
    let (id, uri) = ask(name_id_format::UNSPECIFIED, None);
    let subject = sp_validate(
        &idp,
        SP,
        SP_ACS,
        &b.get(&uri).await.saml_response(),
        Some(&id),
    )
    .unwrap();
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::PERSISTENT)
    );
}

/// An app with an allowed list gets only the formats on it: one outside it is answered
/// InvalidNameIDPolicy at once (nobody is asked to sign in for it), one on it is issued,
/// and a request naming none gets the app's own.
#[tokio::test]
async fn a_name_id_format_outside_the_apps_allowed_list_is_refused() {
    let idp = idp().await;
    idp.store
        .apps()
        .update(&latchkey_idp::Actor::system(), idp.app.id, |a| {
            a.name_id_formats = vec![
                latchkey_idp::apps::NameIdFormat::Persistent,
                latchkey_idp::apps::NameIdFormat::EmailAddress,
            ];
        })
        .await
        .unwrap();
    let ask = |format: Option<&str>| {
        let mut request = authn_request(SP);
        request.name_id_policy = Some(NameIdPolicy {
            format: format.map(str::to_owned),
            sp_name_qualifier: None,
            allow_create: Some(true),
        });
        (request.id.clone(), redirect_uri(&request, None))
    };
    let mut b = Browser::new(&idp);
    let (id, uri) = ask(Some(name_id_format::TRANSIENT));
    let page = b.get(&uri).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_refused_with(&idp, SP, SP_ACS, &page, &id, code::INVALID_NAMEID_POLICY);

    b.login("alice", PASSWORD, None).await;
    let (id, uri) = ask(Some(name_id_format::TRANSIENT));
    let page = b.get(&uri).await;
    assert_refused_with(&idp, SP, SP_ACS, &page, &id, code::INVALID_NAMEID_POLICY);
    let (id, uri) = ask(Some(name_id_format::EMAIL));
    let subject = sp_validate(
        &idp,
        SP,
        SP_ACS,
        &b.get(&uri).await.saml_response(),
        Some(&id),
    )
    .unwrap();
    assert_eq!(subject.name_id.value, "alice@example.org");
    for asked in [None, Some(name_id_format::UNSPECIFIED)] {
        let (id, uri) = ask(asked);
        let subject = sp_validate(
            &idp,
            SP,
            SP_ACS,
            &b.get(&uri).await.saml_response(),
            Some(&id),
        )
        .unwrap();
        assert_eq!(
            subject.name_id.format.as_deref(),
            Some(name_id_format::PERSISTENT),
            "{asked:?}"
        );
    }

    // Without the list (the default), transient is issued again.
    idp.store
        .apps()
        .update(&latchkey_idp::Actor::system(), idp.app.id, |a| {
            a.name_id_formats.clear();
        })
        .await
        .unwrap();
    let (id, uri) = ask(Some(name_id_format::TRANSIENT));
    let subject = sp_validate(
        &idp,
        SP,
        SP_ACS,
        &b.get(&uri).await.saml_response(),
        Some(&id),
    )
    .unwrap();
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::TRANSIENT)
    );
}

/// AllowCreate="false" for a persistent identifier the user does not have yet: the SP is
/// told InvalidNameIDPolicy; once one exists, it is sent.
#[tokio::test]
async fn allow_create_false_sends_only_an_existing_persistent_identifier() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    // The Tracker sends e-mail NameIDs; alice has no pairwise identifier for it yet.
    let ask = |allow_create: bool| {
        let mut request = authn_request(SIGNED_SP);
        request.name_id_policy = Some(NameIdPolicy {
            format: Some(name_id_format::PERSISTENT.into()),
            sp_name_qualifier: None,
            allow_create: Some(allow_create),
        });
        (
            request.id.clone(),
            signed_redirect_uri(&request, &idp.sp_key),
        )
    };
    let (id, uri) = ask(false);
    let page = b.get(&uri).await;
    let err = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&id),
    )
    .unwrap_err();
    assert!(
        matches!(err, latchkey_saml::Error::StatusNotSuccess { sub_code: Some(ref s), .. } if s == code::INVALID_NAMEID_POLICY),
        "{err}"
    );
    let (id, uri) = ask(true);
    let page = b.get(&uri).await;
    let made = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&id),
    )
    .unwrap()
    .name_id;
    assert_eq!(made.format.as_deref(), Some(name_id_format::PERSISTENT));
    let (id, uri) = ask(false);
    let page = b.get(&uri).await;
    let again = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&id),
    )
    .unwrap()
    .name_id;
    assert_eq!(again.value, made.value);
}

#[tokio::test]
async fn encrypted_assertion_decrypts_and_verifies_at_the_sp() {
    use latchkey_saml::encryption::{self, DecryptOptions, DecryptionKey};
    use latchkey_xmlsec::dsig::VerifyOptions;
    use latchkey_xmlsec::reader::{self, Limits};

    let idp = idp().await;
    let sp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let sp_cert = rcgen::CertificateParams::new(vec!["sp.example.com".into()])
        .unwrap()
        .self_signed(&sp)
        .unwrap()
        .pem();
    idp.store
        .apps()
        .update(&latchkey_idp::Actor::system(), idp.app.id, |a| {
            a.encryption_cert = Some(sp_cert.clone());
            a.encrypt_assertion = true;
        })
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let xml = page.saml_response();
    assert!(
        !xml.contains("alice@example.org"),
        "attributes travel encrypted"
    );
    // An SP without the decryption key cannot read it...
    assert!(sp_validate(&idp, SP, SP_ACS, &xml, Some(&request.id)).is_err());
    // ...the SP with the key decrypts it and checks the IdP's signature on the assertion.
    let doc = reader::parse(&xml, &Limits::default()).unwrap();
    let response =
        dsig::verify_document_element(&doc, &idp.idp_keys, &VerifyOptions::default()).unwrap();
    let encrypted = response
        .element()
        .children()
        .find(|n| n.tag_name().name() == "EncryptedAssertion")
        .unwrap();
    let key = DecryptionKey::from_pem(&sp.serialize_pem()).unwrap();
    let decrypted =
        encryption::decrypt_assertion(encrypted, &[key], &DecryptOptions::default()).unwrap();
    let assertion_doc = reader::parse(&decrypted.xml, &Limits::default()).unwrap();
    let verified = encryption::verify_decrypted_assertion(
        &assertion_doc,
        &decrypted,
        &idp.idp_keys,
        &latchkey_saml::inbound::SignaturePolicy::default(),
        true,
    )
    .unwrap();
    assert!(decrypted.xml.contains("alice@example.org"));
    assert!(
        decrypted
            .xml
            .contains(&format!("InResponseTo=\"{}\"", request.id))
    );
    assert_eq!(verified.element().tag_name().name(), "Assertion");
}

#[tokio::test]
async fn a_signed_authn_request_must_name_this_endpoint_as_its_destination() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    // Signed, without a Destination: it could have been meant for any IdP.
    let mut request = authn_request(SIGNED_SP);
    request.destination = None;
    let page = b.get(&signed_redirect_uri(&request, &idp.sp_key)).await;
    assert_eq!(page.error_code(), Some("SSO-DESTINATION"), "{}", page.body);
    // Over POST too.
    let mut request = authn_request(SIGNED_SP);
    request.destination = None;
    let page = b
        .post(
            "/saml/sso",
            &[("SAMLRequest", &post_signed(&idp, &request))],
        )
        .await;
    assert_eq!(page.error_code(), Some("SSO-DESTINATION"), "{}", page.body);
    // Signed, naming another endpoint.
    let mut request = authn_request(SIGNED_SP);
    request.destination = Some(format!("{BASE}/saml/other"));
    let page = b.get(&signed_redirect_uri(&request, &idp.sp_key)).await;
    assert_eq!(page.error_code(), Some("SSO-DESTINATION"));
    // Unsigned requests may still leave it out.
    let mut request = authn_request(SP);
    request.destination = None;
    let page = b.get(&redirect_uri(&request, None)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn an_authn_request_id_is_answered_once() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let request = authn_request(SIGNED_SP);
    let uri = signed_redirect_uri(&request, &idp.sp_key);
    let page = b.get(&uri).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    // The same signed request again, still inside its IssueInstant window.
    let again = b.get(&uri).await;
    assert_eq!(again.error_code(), Some("SSO-REPLAYED"), "{}", again.body);
    // From another browser.
    let mut other = Browser::new(&idp);
    assert_eq!(other.get(&uri).await.error_code(), Some("SSO-REPLAYED"));
    // At another node: its own pool and server state over the same database.
    let (node_b, _) = second_node(&idp).await;
    let at_b = tower::ServiceExt::oneshot(
        node_b,
        axum::http::Request::get(uri.as_str())
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(!at_b.status().is_success(), "{}", at_b.status());
    let body = body_text(at_b).await;
    assert!(body.contains("Error code: <code>SSO-REPLAYED<"), "{body}");
    // A fresh request from the same application is answered.
    let page = b
        .get(&signed_redirect_uri(&authn_request(SIGNED_SP), &idp.sp_key))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

/// An AuthnRequest that names its subject gets an assertion about that subject or an
/// error status, never one about whoever happens to be signed in (core §3.4.1).
#[tokio::test]
async fn a_request_naming_another_subject_never_gets_an_assertion_about_the_signed_in_user() {
    use latchkey_saml::assertion::NameId;
    use latchkey_saml::authn_request::RequestedSubject;

    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let ask = |value: &str| {
        let mut request = authn_request(SP);
        request.subject = Some(RequestedSubject::NameId(NameId::new(
            value,
            name_id_format::EMAIL,
        )));
        (request.id.clone(), redirect_uri(&request, None))
    };
    // Bob is named; alice is signed in: the SP is told, and no assertion is made.
    let (id, uri) = ask("bob@example.org");
    let page = b.get(&uri).await;
    assert_refused_with(&idp, SP, SP_ACS, &page, &id, code::UNKNOWN_PRINCIPAL);
    assert!(!page.saml_response().contains("bob@example.org"));
    // Alice is named, by the format she is named in: she gets her assertion.
    let (id, uri) = ask("alice@example.org");
    let subject = sp_validate(
        &idp,
        SP,
        SP_ACS,
        &b.get(&uri).await.saml_response(),
        Some(&id),
    )
    .unwrap();
    assert_eq!(subject.name_id.value, "alice@example.org");
    // A subject we cannot read is refused at once, before anyone signs in.
    let request = authn_request(SP);
    let issuer_end = "</saml:Issuer>";
    let xml = request.to_xml().unwrap().replacen(
        issuer_end,
        &format!(
            "{issuer_end}<saml:Subject><saml:SubjectConfirmation \
             Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"/></saml:Subject>"
        ),
        1,
    );
    let query = latchkey_saml::binding::redirect::encode(
        latchkey_saml::binding::MessageKind::Request,
        &xml,
        None,
        &latchkey_saml::binding::BindingLimits::default(),
    )
    .unwrap();
    let mut fresh = Browser::new(&idp);
    let page = fresh.get(&format!("/saml/sso?{query}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_refused_with(
        &idp,
        SP,
        SP_ACS,
        &page,
        &request.id,
        code::UNKNOWN_PRINCIPAL,
    );
}

/// Sixteen tabs of one signed-in session present one AuthnRequest at once, half at a second
/// node: one Response (see [`super::bursts::one_authn_request_burst`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authn_request_id_burst_gets_one_response_across_nodes() {
    let idp = idp().await;
    super::bursts::one_authn_request_burst(&idp).await;
}
