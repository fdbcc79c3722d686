//! Single logout in the demo apps: "Sign out" ends the session here and sends the browser
//! to the IdP with a signed LogoutRequest; the IdP's answer ends on the signed-out page; the
//! IdP's own LogoutRequest ends the sessions it names and is answered signed, once.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use latchkey_demo_apps::{AppKind, Clock, DemoApp, DemoConfig, router};
use latchkey_saml::assertion::NameId;
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
use latchkey_saml::status::Status;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::store::Database;
use latchkey_xmlsec::crypto::{Certificate, SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::Duration;

use crate::support::*;

const IDP_SLO: &str = "https://idp.latchkey.test/saml/slo";
const WIKI_SLO: &str = "https://wiki.latchkey.test/saml/slo";

/// The test IdP's metadata with a SingleLogoutService, written out by hand.
fn idp_metadata() -> String {
    let cert = base64::engine::general_purpose::STANDARD.encode(idp_key().cert.der());
    let redirect = binding_uri::HTTP_REDIRECT;
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}">
<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:SingleLogoutService Binding="{redirect}" Location="{IDP_SLO}"/>
<md:SingleSignOnService Binding="{redirect}" Location="{SSO}"/>
</md:IDPSSODescriptor>
</md:EntityDescriptor>"#
    )
}

struct SloApp {
    t: TestApp,
    _dir: tempfile::TempDir,
    sp_cert: Certificate,
}

/// The wiki with the signing key it makes itself on first start, trusting the test IdP.
async fn wiki() -> SloApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = DemoConfig::from_toml(&config_toml(AppKind::Wiki, ""), dir.path()).unwrap();
    assert_eq!(config.sp.slo_url.as_deref(), Some(WIKI_SLO));
    config.ensure_signing_key().unwrap();
    let key_file = dir.path().join("unused-sp-key.pem");
    let cert_file = dir.path().join("unused-sp-cert.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is its owner's only");
    }
    let sp_cert = Certificate::from_pem(&std::fs::read_to_string(&cert_file).unwrap()).unwrap();
    // A second start keeps the key it made.
    let mut again = DemoConfig::from_toml(&config_toml(AppKind::Wiki, ""), dir.path()).unwrap();
    again.ensure_signing_key().unwrap();
    let reread = Certificate::from_pem(&std::fs::read_to_string(&cert_file).unwrap()).unwrap();
    assert_eq!(reread.der(), sp_cert.der(), "kept across starts");
    let idp = IdpTrust::from_metadata(&idp_metadata(), None, NOW).unwrap();
    assert_eq!(idp.slo_url.as_deref(), Some(IDP_SLO));
    let db = Database::connect("sqlite::memory:").await.unwrap();
    let app = Arc::new(
        DemoApp::with_database(AppKind::Wiki, &config, idp, Clock::Fixed(NOW), db).unwrap(),
    );
    SloApp {
        t: TestApp {
            router: router(app.clone()),
            entity_id: config.sp.entity_id.clone(),
            acs: config.sp.acs_url.clone(),
            app,
            browser: Jar::default(),
        },
        _dir: dir,
        sp_cert,
    }
}

fn ada() -> Login {
    Login::new(
        "ada@example.org",
        EMAIL_FORMAT,
        &[
            ("email", &["ada@example.org"]),
            ("groups", &["engineering"]),
        ],
    )
}

async fn signed_in(s: &SloApp) -> String {
    let reply = sp_initiated(&s.t, ada()).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let cookie = reply.cookie();
    assert_eq!(whoami(&s.t, Some(&cookie)).await["authenticated"], true);
    cookie
}

async fn post_logout(s: &SloApp, cookie: &str) -> Reply {
    send(
        &s.t,
        Request::post("/logout")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

/// The URL a refresh page sends the browser on to.
fn refresh_target(body: &str) -> String {
    let start = body.find("content=\"0;url=").unwrap() + "content=\"0;url=".len();
    let end = body[start..].find('"').unwrap();
    body[start..start + end]
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

fn idp_query(kind: MessageKind, xml: &str, relay: Option<&str>, key: &SigningKey) -> String {
    redirect::encode_signed(
        kind,
        xml,
        relay,
        key,
        SignatureAlgorithm::RsaSha256,
        &BindingLimits::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn metadata_lists_the_slo_endpoint_and_the_signing_certificate() {
    let s = wiki().await;
    let reply = get(&s.t, "/saml/metadata", None).await;
    let md = parse_metadata(&reply.body, &MetadataOptions::default()).unwrap();
    let sp = md.find(&s.t.entity_id).unwrap().sp.as_ref().unwrap();
    assert!(
        sp.slo_services
            .iter()
            .any(|e| e.binding == binding_uri::HTTP_REDIRECT && e.location == WIKI_SLO)
    );
    assert!(sp.authn_requests_signed);
    assert!(
        sp.keys
            .iter()
            .any(|k| k.certificates.iter().any(|c| c.der() == s.sp_cert.der()))
    );
}

#[tokio::test]
async fn sign_out_goes_through_the_idp_and_ends_on_the_signed_out_page() {
    let s = wiki().await;
    let cookie = signed_in(&s).await;
    let reply = post_logout(&s, &cookie).await;
    // A page, not a 303: the form's CSP form-action 'self' would block a redirect off-site.
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.set_cookie.as_deref().unwrap().contains("Max-Age=0"));
    assert_eq!(whoami(&s.t, Some(&cookie)).await["authenticated"], false);
    let url = refresh_target(&reply.body);
    let (endpoint, query) = url.split_once('?').unwrap();
    assert_eq!(endpoint, IDP_SLO);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    message
        .verify(
            &[s.sp_cert.verifying_key().clone()],
            &[SignatureAlgorithm::EcdsaSha256],
        )
        .unwrap();
    let request = LogoutRequest::parse(&message.xml).unwrap();
    assert_eq!(request.name_id.value, "ada@example.org");
    assert_eq!(request.session_indexes, ["_session-1".to_owned()]);

    let answer = LogoutResponse {
        id: "_idp-answer-1".into(),
        in_response_to: Some(request.id.clone()),
        issue_instant: NOW - Duration::seconds(1),
        destination: Some(WIKI_SLO.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    };
    let q = idp_query(
        MessageKind::Response,
        &answer.to_xml().unwrap(),
        message.relay_state.as_deref(),
        &idp_key().key,
    );
    let reply = get(&s.t, &format!("/saml/slo?{q}"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("You are signed out"), "{}", reply.body);
    // The answer is honoured once.
    let again = get(&s.t, &format!("/saml/slo?{q}"), None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code(), "LOGOUT_UNKNOWN_REQUEST");

    // The app's audit log has each step, the refusal with its code.
    let log = slo_log(&s).await;
    assert_eq!(
        log.keys().map(String::as_str).collect::<Vec<_>>(),
        ["slo.completed", "slo.refused", "slo.started"]
    );
    assert!(log["slo.started"][0].contains(&request.id));
    assert!(log["slo.completed"][0].contains(&request.id));
    assert!(log["slo.refused"][0].contains("LOGOUT_UNKNOWN_REQUEST"));
}

/// The app's `slo.*` audit events (the test clock stands still, so by kind, not time): each
/// kind with its records as JSON.
async fn slo_log(s: &SloApp) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut log = std::collections::BTreeMap::<String, Vec<String>>::new();
    for e in s.t.app.store().audit_log(50).await.unwrap() {
        if e.kind.as_str().starts_with("slo.") {
            log.entry(e.kind.as_str().to_owned())
                .or_default()
                .push(serde_json::to_string(&e.plan.action).unwrap());
        }
    }
    for records in log.values_mut() {
        records.sort();
    }
    log
}

#[tokio::test]
async fn sign_out_without_a_key_ends_the_local_session_only() {
    // The plain test app has no key: the session still ends, with no trip to the IdP.
    let t = app(AppKind::Wiki, "").await;
    let cookie = sp_initiated(&t, ada()).await.cookie();
    let reply = send(
        &t,
        Request::post("/logout")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location.as_deref(), Some("/"));
    assert_eq!(whoami(&t, Some(&cookie)).await["authenticated"], false);
}

fn idp_request(id: &str) -> LogoutRequest {
    LogoutRequest {
        id: id.into(),
        issue_instant: NOW - Duration::seconds(1),
        destination: Some(WIKI_SLO.into()),
        issuer: Some(IDP.into()),
        name_id: NameId::new("ada@example.org", EMAIL_FORMAT),
        session_indexes: vec!["_session-1".into()],
        not_on_or_after: Some(NOW + Duration::minutes(5)),
        reason: None,
    }
}

#[tokio::test]
async fn idp_initiated_logout_ends_the_session_and_is_answered_once() {
    let s = wiki().await;
    let cookie = signed_in(&s).await;

    // A forged request ends nothing.
    let forged = idp_query(
        MessageKind::Request,
        &idp_request("_forged").to_xml().unwrap(),
        None,
        &rogue_key().key,
    );
    let reply = get(&s.t, &format!("/saml/slo?{forged}"), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "SIGNATURE_INVALID");
    assert_eq!(whoami(&s.t, Some(&cookie)).await["authenticated"], true);

    let q = idp_query(
        MessageKind::Request,
        &idp_request("_idp-logout-1").to_xml().unwrap(),
        Some("chain-key"),
        &idp_key().key,
    );
    // No cookie needed: the request names the person and the IdP session.
    let reply = get(&s.t, &format!("/saml/slo?{q}"), None).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(whoami(&s.t, Some(&cookie)).await["authenticated"], false);
    let location = reply.location.unwrap();
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, IDP_SLO);
    let message = redirect::decode(query, &BindingLimits::default()).unwrap();
    assert_eq!(message.relay_state.as_deref(), Some("chain-key"));
    message
        .verify(
            &[s.sp_cert.verifying_key().clone()],
            &[SignatureAlgorithm::EcdsaSha256],
        )
        .unwrap();
    let response = LogoutResponse::parse(&message.xml).unwrap();
    assert_eq!(response.in_response_to.as_deref(), Some("_idp-logout-1"));
    assert!(response.status.is_success());

    // The same request again is refused by name.
    let again = get(&s.t, &format!("/saml/slo?{q}"), None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code(), "LOGOUT_REPLAYED");

    let log = slo_log(&s).await;
    assert_eq!(
        log.keys().map(String::as_str).collect::<Vec<_>>(),
        ["slo.received", "slo.refused"]
    );
    let received = &log["slo.received"];
    assert_eq!(received.len(), 1);
    assert!(received[0].contains("_idp-logout-1"), "{}", received[0]);
    assert!(
        received[0].contains("\"sessions_ended\":1"),
        "{}",
        received[0]
    );
    let refused = log["slo.refused"].join("\n");
    assert_eq!(log["slo.refused"].len(), 2);
    assert!(refused.contains("SIGNATURE_INVALID"), "{refused}");
    assert!(refused.contains("LOGOUT_REPLAYED"), "{refused}");
}

#[tokio::test]
async fn idp_initiated_logout_over_post_answers_with_a_refresh_page() {
    let s = wiki().await;
    let cookie = signed_in(&s).await;
    let request = idp_request("_idp-logout-post");
    let signed = dsig::sign(
        &request.to_xml().unwrap(),
        &request.id,
        &idp_key().key,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let b64 = post::encode(&signed);
    let body = format!(
        "SAMLRequest={}&RelayState=k",
        b64.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let reply = send(
        &s.t,
        Request::post("/saml/slo")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(refresh_target(&reply.body).starts_with(&format!("{IDP_SLO}?SAMLResponse=")));
    assert_eq!(whoami(&s.t, Some(&cookie)).await["authenticated"], false);
    // An empty form is refused with a code, not a crash.
    let reply = send(
        &s.t,
        Request::post("/saml/slo")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "MISSING_PARAMETER");
}
