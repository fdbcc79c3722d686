//! Single logout over HTTP-POST, propagation over each application's registered binding,
//! checked LogoutResponses, and the chain's guarantees (best effort, never a loop).

use axum::http::{StatusCode, header};
use base64::Engine;
use latchkey_idp::Actor;
use latchkey_idp::apps::{Binding, Endpoint};
use latchkey_idp::ids::AppId;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Clock, SystemClock};
use latchkey_saml::assertion::NameId;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::profile::AuthenticatedSubject;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::{SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

use super::support::*;

async fn set_slo(idp: &Idp, app: AppId, url: &str, binding: Binding) {
    let url = url.to_owned();
    idp.store
        .apps()
        .update(&Actor::system(), app, |a| {
            a.slo = Some(Endpoint {
                url: url.clone(),
                binding,
            });
        })
        .await
        .unwrap();
}

/// Signs alice in to the signed app (Tracker) and then the plain one (Wiki); returns their
/// subjects in that order.
async fn sign_in_to_both(idp: &Idp, b: &mut Browser<'_>) -> Vec<AuthenticatedSubject> {
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&request, &idp.sp_key)).await;
    let tracker = sp_validate(
        idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&request.id),
    )
    .unwrap();
    // A second later: the chain walks the applications in the order they were signed in to.
    idp.clock.advance(time::Duration::seconds(1));
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let wiki = sp_validate(idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    vec![tracker, wiki]
}

fn logout_request(issuer: &str, subject: &AuthenticatedSubject) -> LogoutRequest {
    LogoutRequest {
        id: latchkey_saml::ids::new_id().unwrap(),
        // The SP's own clock; web/logout.rs checks it against the wall clock (its clock is
        // not yet injected), where the IdP's test clock starts.
        issue_instant: SystemClock.now(),
        destination: Some(format!("{BASE}/saml/slo")),
        issuer: Some(issuer.into()),
        name_id: NameId::new(
            subject.name_id.value.clone(),
            subject.name_id.format.as_deref().unwrap(),
        ),
        session_indexes: Vec::new(),
        not_on_or_after: None,
        reason: None,
    }
}

fn logout_response(issuer: &str, in_response_to: &str) -> LogoutResponse {
    LogoutResponse {
        id: latchkey_saml::ids::new_id().unwrap(),
        in_response_to: Some(in_response_to.into()),
        // The SP's own clock; web/logout.rs checks it against the wall clock (its clock is
        // not yet injected), where the IdP's test clock starts.
        issue_instant: SystemClock.now(),
        destination: Some(format!("{BASE}/saml/slo")),
        issuer: Some(issuer.into()),
        status: Status::success(),
    }
}

/// The base64 form value of an enveloped-signed message.
fn post_signed(xml: &str, id: &str, key: &SigningKey) -> String {
    post::encode(&dsig::sign(xml, id, key, None, &SignOptions::default()).unwrap())
}

/// `/saml/slo?...` for a redirect message, signed when a key is given.
fn redirect_slo(
    kind: MessageKind,
    xml: &str,
    relay: Option<&str>,
    key: Option<&SigningKey>,
) -> String {
    let limits = BindingLimits::default();
    let query = match key {
        Some(k) => redirect::encode_signed(kind, xml, relay, k, k.default_algorithm(), &limits),
        None => redirect::encode(kind, xml, relay, &limits),
    }
    .unwrap();
    format!("/saml/slo?{query}")
}

/// The IdP-signed LogoutRequest a redirect sends the browser to `endpoint` with.
fn redirected_request(idp: &Idp, page: &Page, endpoint: &str) -> (LogoutRequest, Option<String>) {
    let hop = page.hop();
    let (to, query) = hop.split_once('?').unwrap();
    assert_eq!(to, endpoint);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert_eq!(message.kind, MessageKind::Request);
    message
        .verify(&idp.idp_keys, &[SignatureAlgorithm::EcdsaSha256])
        .unwrap();
    (
        LogoutRequest::parse(&message.xml).unwrap(),
        message.relay_state,
    )
}

async fn start_idp_logout<'a>(b: &mut Browser<'a>) -> Page {
    let csrf = b.get("/logout").await.field("csrf").unwrap();
    b.post("/logout", &[("csrf", &csrf)]).await
}

async fn session_alive(idp: &Idp, token: &str) -> bool {
    Sessions::new(&idp.store)
        .resume(token, idp.clock.now(), idp.settings.session_idle)
        .await
        .unwrap()
        .is_some()
}

fn forger() -> SigningKey {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    SigningKey::from_pem(&pair.serialize_pem()).unwrap()
}

#[tokio::test]
async fn sp_initiated_logout_over_post_ends_the_session_and_lists_the_apps_signed_out() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.app.id,
        &format!("{SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let token = b.cookies["latchkey_session"].clone();
    // Wiki has no certificate: its unsigned answer counts only under the legacy opt-in.
    allow_unsigned_logout(&idp, idp.app.id).await;

    // Tracker (no SLO endpoint of its own) posts a signed LogoutRequest.
    let request = logout_request(SIGNED_SP, &subjects[0]);
    let encoded = post_signed(&request.to_xml().unwrap(), &request.id, &idp.sp_key);
    let first = b
        .post(
            "/saml/slo",
            &[("SAMLRequest", &encoded), ("RelayState", "rs-out")],
        )
        .await;
    // Parked and continued same-site, where the session cookie comes along.
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let cont = first.location().to_owned();
    assert!(cont.starts_with("/saml/slo/continue/"), "{cont}");
    assert!(
        session_alive(&idp, &token).await,
        "the POST alone ends nothing"
    );

    let page = b.get(&cont).await;
    // The frames page: one frame per other application.
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!session_alive(&idp, &token).await);
    assert!(!b.cookies.contains_key("latchkey_session"));
    let frames = page.slo_frames();
    assert_eq!(frames.len(), 1, "{}", page.body);
    let (_, done) = page.slo_done();
    // The other application of the session is told, about its own NameID.
    let frame = b.get(&frames[0]).await;
    let (told, relay) = redirected_request(&idp, &frame, &format!("{SP}/slo"));
    assert_eq!(told.name_id.value, subjects[1].name_id.value);
    assert_eq!(
        told.session_indexes,
        vec![subjects[1].session_index.clone().unwrap()]
    );
    let answer = logout_response(SP, &told.id);
    let page = b
        .get(&redirect_slo(
            MessageKind::Response,
            &answer.to_xml().unwrap(),
            relay.as_deref(),
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("signed you out"), "{}", page.body);
    let page = b.get(&done).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("You are signed out of Latchkey"));
    let signed_out = page.body.split("Signed out of:").nth(1).unwrap();
    let signed_out = signed_out.split("</ul>").next().unwrap();
    assert!(signed_out.contains("<li>Tracker</li>"), "{}", page.body);
    assert!(signed_out.contains("<li>Wiki</li>"), "{}", page.body);
    assert!(!page.body.contains("did not confirm"), "{}", page.body);
    assert_eq!(b.get("/portal").await.location(), "/login");
    // The parked request answers once.
    let replay = b.get(&cont).await;
    assert_eq!(replay.status, StatusCode::GONE);
    assert_eq!(replay.error_code(), Some("SLO-EXPIRED"));
    let audit = audit_actions(&idp, "logout.slo").await;
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn sp_initiated_logout_over_post_is_answered_over_the_apps_post_binding() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/saml/slo"),
        Binding::HttpPost,
    )
    .await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let request = logout_request(SIGNED_SP, &subjects[0]);
    let encoded = post_signed(&request.to_xml().unwrap(), &request.id, &idp.sp_key);
    let first = b
        .post(
            "/saml/slo",
            &[("SAMLRequest", &encoded), ("RelayState", "rs")],
        )
        .await;
    // Wiki has no SLO endpoint: it is listed, and the answer says the logout was partial.
    let page = b.follow(first).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.field("RelayState").as_deref(), Some("rs"));
    let xml = decode_field(&page, "SAMLResponse");
    let doc = reader::parse(&xml, &Limits::default()).unwrap();
    let verified = dsig::verify_element(
        &doc,
        doc.root_element(),
        &idp.idp_keys,
        &VerifyOptions::default(),
    )
    .unwrap();
    let answer = LogoutResponse::from_verified(&verified).unwrap();
    assert_eq!(answer.in_response_to.as_deref(), Some(request.id.as_str()));
    assert_eq!(
        answer.status.sub_code.as_deref(),
        Some(latchkey_saml::status::code::PARTIAL_LOGOUT)
    );
    assert_eq!(b.get("/portal").await.location(), "/login");
}

fn decode_field(page: &Page, name: &str) -> String {
    let b64 = page
        .field(name)
        .unwrap_or_else(|| panic!("no {name}: {} {}", page.status, page.body));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn logout_request_over_post_with_a_bad_signature_is_refused_and_the_session_stays() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let token = b.cookies["latchkey_session"].clone();
    let request = logout_request(SIGNED_SP, &subjects[0]);
    let xml = request.to_xml().unwrap();

    let forged = post_signed(&xml, &request.id, &forger());
    let page = b.post("/saml/slo", &[("SAMLRequest", &forged)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code(), Some("SSO-BAD-SIGNATURE"));
    assert!(
        page.body.contains("Sign-out request refused"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Nothing was signed out"),
        "{}",
        page.body
    );

    // Signed by the right key, then altered: the signature no longer covers it.
    let signed = dsig::sign(
        &xml,
        &request.id,
        &idp.sp_key,
        None,
        &SignOptions::default(),
    )
    .unwrap()
    .replace(&subjects[0].name_id.value, "bob@example.org");
    let page = b
        .post("/saml/slo", &[("SAMLRequest", &post::encode(&signed))])
        .await;
    assert_eq!(page.error_code(), Some("SSO-BAD-SIGNATURE"));

    let page = b
        .post("/saml/slo", &[("SAMLRequest", &post::encode(&xml))])
        .await;
    assert_eq!(page.error_code(), Some("SSO-UNSIGNED"));

    assert!(session_alive(&idp, &token).await);
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    assert!(audit_actions(&idp, "logout.slo").await.is_empty());
}

#[tokio::test]
async fn propagation_to_a_post_slo_app_auto_posts_a_signed_logout_request() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/saml/slo"),
        Binding::HttpPost,
    )
    .await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let logout = start_idp_logout(&mut b).await;
    let frames = logout.slo_frames();
    assert_eq!(frames.len(), 1, "{}", logout.body);
    let page = b.get(&frames[0]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("action=\"https://signed.example.net/saml/slo\""),
        "{}",
        page.body
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains(&format!("script-src {}", post::SCRIPT_CSP_HASH)),
        "{csp}"
    );
    assert!(
        csp.contains("form-action https://signed.example.net;"),
        "{csp}"
    );
    // Framed by our own frames page only.
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");

    // What the SP receives verifies with the IdP's key, and names the SP's own NameID.
    let xml = decode_field(&page, "SAMLRequest");
    let doc = reader::parse(&xml, &Limits::default()).unwrap();
    let verified = dsig::verify_element(
        &doc,
        doc.root_element(),
        &idp.idp_keys,
        &VerifyOptions::default(),
    )
    .unwrap();
    let request = LogoutRequest::from_verified(&verified).unwrap();
    assert_eq!(request.name_id.value, subjects[0].name_id.value);
    assert_eq!(
        request.destination.as_deref(),
        Some("https://signed.example.net/saml/slo")
    );
    assert_eq!(
        request.issuer.as_deref(),
        Some(idp.settings.entity_id.as_str())
    );

    // The SP answers by POST, signed: the chain goes on (Wiki has no endpoint) and ends.
    let answer = logout_response(SIGNED_SP, &request.id);
    let encoded = post_signed(&answer.to_xml().unwrap(), &answer.id, &idp.sp_key);
    let relay = page.field("RelayState").unwrap();
    let page = b
        .post(
            "/saml/slo",
            &[("SAMLResponse", &encoded), ("RelayState", &relay)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("signed you out"), "{}", page.body);
    let page = b.get(&logout.slo_done().1).await;
    let signed_out = page.body.split("Signed out of:").nth(1).unwrap();
    assert!(signed_out.contains("<li>Tracker</li>"), "{}", page.body);
    assert!(page.body.contains("do not support single logout"));
    assert!(
        audit_actions(&idp, "logout.response_refused")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn untrusted_logout_responses_are_audited_and_the_chain_still_finishes() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.app.id,
        &format!("{SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    set_slo(
        &idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    // Even with the legacy opt-in, Wiki's unsigned answer must answer our request.
    allow_unsigned_logout(&idp, idp.app.id).await;
    let mut b = Browser::new(&idp);
    sign_in_to_both(&idp, &mut b).await;
    let logout = start_idp_logout(&mut b).await;
    let frames = logout.slo_frames();
    assert_eq!(frames.len(), 2, "{}", logout.body);
    let page = b.get(&frames[0]).await;
    let (told, relay) = redirected_request(&idp, &page, &format!("{SIGNED_SP}/slo"));

    // Tracker has a certificate: an answer signed by another key is not believed...
    let forged = logout_response(SIGNED_SP, &told.id);
    let page = b
        .get(&redirect_slo(
            MessageKind::Response,
            &forged.to_xml().unwrap(),
            relay.as_deref(),
            Some(&forger()),
        ))
        .await;
    assert!(page.body.contains("did not confirm"), "{}", page.body);
    // ...and Wiki is asked all the same.
    let page = b.get(&frames[1]).await;
    let (told, relay) = redirected_request(&idp, &page, &format!("{SP}/slo"));
    // Wiki (no certificate) answers a request we never sent: not believed either.
    let stray = logout_response(SP, "_not-our-request");
    let page = b
        .get(&redirect_slo(
            MessageKind::Response,
            &stray.to_xml().unwrap(),
            relay.as_deref(),
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = b.get(&logout.slo_done().1).await;
    let unconfirmed = page.body.split("did not confirm").nth(1).unwrap();
    assert!(unconfirmed.contains("<li>Tracker</li>"), "{}", page.body);
    assert!(unconfirmed.contains("<li>Wiki</li>"), "{}", page.body);
    assert!(!page.body.contains("Signed out of:"), "{}", page.body);
    let refused = audit_actions(&idp, "logout.response_refused").await;
    assert_eq!(refused.len(), 2);
    let details: Vec<String> = refused
        .iter()
        .map(|e| serde_json::to_string(&e.after).unwrap())
        .collect();
    assert!(details.iter().any(|d| d.contains(&told.id)), "{details:?}");
    assert!(
        details
            .iter()
            .any(|d| d.to_lowercase().contains("signature")),
        "{details:?}"
    );
}

#[tokio::test]
async fn an_app_answering_with_a_logout_request_does_not_restart_the_chain() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.app.id,
        &format!("{SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    set_slo(
        &idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let logout = start_idp_logout(&mut b).await;
    let frames = logout.slo_frames();
    let page = b.get(&frames[0]).await;
    let (told, relay) = redirected_request(&idp, &page, &format!("{SIGNED_SP}/slo"));
    // A reloaded frame asks nobody again.
    let again = b.get(&frames[0]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(again.body.contains("already asked"), "{}", again.body);

    // Tracker answers with a LogoutRequest of its own, echoing the chain's RelayState. The
    // IdP session is over, so it is simply answered: nobody else is asked again.
    let own = logout_request(SIGNED_SP, &subjects[0]);
    let page = b
        .get(&redirect_slo(
            MessageKind::Request,
            &own.to_xml().unwrap(),
            relay.as_deref(),
            Some(&idp.sp_key),
        ))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (to, query) = page.location().split_once('?').unwrap();
    assert_eq!(to, format!("{SIGNED_SP}/slo"));
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert_eq!(message.kind, MessageKind::Response);
    let answer = LogoutResponse::parse(&message.xml).unwrap();
    assert_eq!(answer.in_response_to.as_deref(), Some(own.id.as_str()));

    // Its real answer counts, once.
    let real = logout_response(SIGNED_SP, &told.id);
    let uri = redirect_slo(
        MessageKind::Response,
        &real.to_xml().unwrap(),
        relay.as_deref(),
        Some(&idp.sp_key),
    );
    let page = b.get(&uri).await;
    assert!(page.body.contains("signed you out"), "{}", page.body);
    // Replayed, it counts nothing: the hop's key was used up.
    let replay = b.get(&uri).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert!(replay.headers.get(header::LOCATION).is_none());
    assert!(!replay.body.contains("signed you out"), "{}", replay.body);
    // Wiki's frame asks Wiki; the logout ends at the page once it answered.
    let page = b.get(&frames[1]).await;
    let (wiki_told, wiki_relay) = redirected_request(&idp, &page, &format!("{SP}/slo"));
    b.get(&redirect_slo(
        MessageKind::Response,
        &logout_response(SP, &wiki_told.id).to_xml().unwrap(),
        wiki_relay.as_deref(),
        None,
    ))
    .await;
    let done = b.get(&logout.slo_done().1).await;
    assert!(
        done.body.contains("did not confirm"),
        "Wiki is unsigned without the opt-in: {}",
        done.body
    );
    // The done page shows once.
    let again = b.get(&logout.slo_done().1).await;
    assert!(!again.body.contains("<li>"), "{}", again.body);
    let signed_out = done.body.split("Signed out of:").nth(1).unwrap();
    let signed_out = signed_out.split("</ul>").next().unwrap();
    assert!(signed_out.contains("<li>Tracker</li>"), "{}", done.body);
    let unconfirmed = done.body.split("did not confirm").nth(1).unwrap();
    assert!(unconfirmed.contains("<li>Wiki</li>"), "{}", done.body);
}

#[tokio::test]
async fn an_unsigned_logout_response_is_not_believed_without_the_legacy_opt_in() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.app.id,
        &format!("{SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    let mut b = Browser::new(&idp);
    sign_in_to_both(&idp, &mut b).await;
    let logout = start_idp_logout(&mut b).await;
    let page = b.get(&logout.slo_frames()[0]).await;
    // Wiki (no certificate, no opt-in) answers our very request, unsigned.
    let (told, relay) = redirected_request(&idp, &page, &format!("{SP}/slo"));
    let answer = logout_response(SP, &told.id);
    let page = b
        .get(&redirect_slo(
            MessageKind::Response,
            &answer.to_xml().unwrap(),
            relay.as_deref(),
            None,
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = b.get(&logout.slo_done().1).await;
    let unconfirmed = page.body.split("did not confirm").nth(1).unwrap();
    assert!(unconfirmed.contains("<li>Wiki</li>"), "{}", page.body);
    let refused = audit_actions(&idp, "logout.response_refused").await;
    assert_eq!(refused.len(), 1);
    let detail = serde_json::to_string(&refused[0].after).unwrap();
    assert!(detail.contains("not signed"), "{detail}");
}

/// Both applications with an endpoint; alice signed in to both; the IdP's sign-out page.
async fn both_with_slo<'a>(idp: &'a Idp) -> (Browser<'a>, Page) {
    set_slo(idp, idp.app.id, &format!("{SP}/slo"), Binding::HttpRedirect).await;
    set_slo(
        idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    allow_unsigned_logout(idp, idp.app.id).await;
    let mut b = Browser::new(idp);
    sign_in_to_both(idp, &mut b).await;
    let page = start_idp_logout(&mut b).await;
    (b, page)
}

/// The names listed under the final page's heading that starts with `heading`.
fn listed(page: &Page, heading: &str) -> Vec<String> {
    let Some(rest) = page.body.split(heading).nth(1) else {
        return Vec::new();
    };
    let list = rest.split("</ul>").next().unwrap();
    list.split("<li>")
        .skip(1)
        .map(|li| li.split("</li>").next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_application_that_never_answers_holds_up_no_other_and_is_listed() {
    let idp = idp().await;
    let (mut b, logout) = both_with_slo(&idp).await;
    // One frame per application, each free to load at once; the page moves on by itself.
    let frames = logout.slo_frames();
    assert_eq!(frames.len(), 2, "{}", logout.body);
    let (secs, done) = logout.slo_done();
    assert!((1..=10).contains(&secs), "{secs}");
    assert!(done.starts_with("/saml/slo/done/"), "{done}");
    assert!(
        logout
            .body
            .contains("<script src=\"/static/logout.js\"></script>")
    );
    // Frames may load only from us and these applications' logout endpoints.
    let csp = logout.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-src 'self' https://signed.example.net https://sp.example.com;"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // Tracker is down (connection refused) or answers with an error page: its frame is
    // sent off, and nothing ever comes back.
    let tracker = b.get(&frames[0]).await;
    redirected_request(&idp, &tracker, &format!("{SIGNED_SP}/slo"));
    // Wiki is asked all the same, and confirms.
    let page = b.get(&frames[1]).await;
    let (told, relay) = redirected_request(&idp, &page, &format!("{SP}/slo"));
    let answered = b
        .get(&redirect_slo(
            MessageKind::Response,
            &logout_response(SP, &told.id).to_xml().unwrap(),
            relay.as_deref(),
            None,
        ))
        .await;
    assert!(
        answered.body.contains("signed you out"),
        "{}",
        answered.body
    );
    assert!(answered.body.contains("name=\"latchkey-slo\""));

    let page = b.get(&done).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(listed(&page, "Signed out of:"), ["Wiki"]);
    assert_eq!(
        listed(&page, "These applications did not answer:"),
        ["Tracker"]
    );
    assert!(listed(&page, "did not confirm").is_empty(), "{}", page.body);
    let audit = audit_actions(&idp, "logout.propagated").await;
    assert_eq!(audit.len(), 1);
    let detail = serde_json::to_string(&audit[0].after).unwrap();
    assert!(detail.contains("\"no_answer\":[\"Tracker\"]"), "{detail}");
    assert!(detail.contains("\"confirmed\":[\"Wiki\"]"), "{detail}");
}

#[tokio::test]
async fn garbage_answers_and_frames_never_loaded_are_told_apart() {
    let idp = idp().await;
    let (mut b, logout) = both_with_slo(&idp).await;
    let frames = logout.slo_frames();
    // Tracker answers garbage where its LogoutResponse should be: refused, counted as no
    // answer; Wiki's frame never loads (the user left at once).
    let tracker = b.get(&frames[0]).await;
    let (_, relay) = redirected_request(&idp, &tracker, &format!("{SIGNED_SP}/slo"));
    let garbage = b
        .get(&format!(
            "/saml/slo?SAMLResponse=bm90IHNhbWw%3D&RelayState={}",
            relay.unwrap()
        ))
        .await;
    assert!(garbage.status.is_client_error(), "{}", garbage.body);
    let page = b.get(&logout.slo_done().1).await;
    assert_eq!(
        listed(&page, "These applications did not answer:"),
        ["Tracker"]
    );
    assert_eq!(
        listed(&page, "These applications were not reached:"),
        ["Wiki"]
    );
    assert!(page.body.contains("You are signed out of Latchkey"));
    // A frame loaded after the end asks nobody.
    let late = b.get(&frames[1]).await;
    assert_eq!(late.status, StatusCode::OK);
    assert!(late.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn sp_initiated_logout_with_an_application_down_answers_partial_logout() {
    let idp = idp().await;
    set_slo(
        &idp,
        idp.app.id,
        &format!("{SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    set_slo(
        &idp,
        idp.signed_app.id,
        &format!("{SIGNED_SP}/slo"),
        Binding::HttpRedirect,
    )
    .await;
    let mut b = Browser::new(&idp);
    let subjects = sign_in_to_both(&idp, &mut b).await;
    let token = b.cookies["latchkey_session"].clone();
    // Tracker asks; Wiki is the one to tell, and never answers.
    let request = logout_request(SIGNED_SP, &subjects[0]);
    let page = b
        .get(&redirect_slo(
            MessageKind::Request,
            &request.to_xml().unwrap(),
            Some("rs-tracker"),
            Some(&idp.sp_key),
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!session_alive(&idp, &token).await, "ended first");
    let frames = page.slo_frames();
    assert_eq!(frames.len(), 1, "only the others are framed: {}", page.body);
    let wiki = b.get(&frames[0]).await;
    redirected_request(&idp, &wiki, &format!("{SP}/slo"));
    // The time is up: Tracker gets its answer, a partial logout.
    let done = b.get(&page.slo_done().1).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (to, query) = done.location().split_once('?').unwrap();
    assert_eq!(to, format!("{SIGNED_SP}/slo"));
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    message
        .verify(&idp.idp_keys, &[SignatureAlgorithm::EcdsaSha256])
        .unwrap();
    assert_eq!(message.relay_state.as_deref(), Some("rs-tracker"));
    let answer = LogoutResponse::parse(&message.xml).unwrap();
    assert_eq!(answer.in_response_to.as_deref(), Some(request.id.as_str()));
    assert_eq!(
        answer.status.sub_code.as_deref(),
        Some(latchkey_saml::status::code::PARTIAL_LOGOUT)
    );
}

#[tokio::test]
async fn the_frames_script_is_served_as_a_static_script() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let page = b.get("/static/logout.js").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(page.body.contains("slo-done"));
}
