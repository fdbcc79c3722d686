//! Every ACS rule failure: a clear page with a code and an operation ID, an audit event with
//! that ID, and no account created or changed.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use latchkey_demo_apps::AppKind;
use time::Duration;

use crate::helpdesk::person;
use crate::support::*;

fn reader() -> Login {
    Login::new(
        "ada@example.org",
        EMAIL_FORMAT,
        &[
            ("email", &["ada@example.org"]),
            ("groups", &["engineering"]),
        ],
    )
}

#[tokio::test]
async fn bad_signature() {
    let t = app(AppKind::Wiki, "").await;
    let mut login = reader();
    login.signer = &rogue_key().key;
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "SIGNATURE_INVALID").await;
}

#[tokio::test]
async fn tampered_after_signing() {
    let t = app(AppKind::Wiki, "").await;
    let (relay, request_id) = start_login(&t).await;
    let mut login = reader();
    login.in_response_to = Some(request_id);
    let xml = login.response_xml(&t).replace("engineering", "wiki-admins");
    let reply = post_acs(&t, &xml, Some(&relay)).await;
    // Was SIGNATURE_INVALID: the SP now shows the SAML layer's own code for the rule.
    assert_refused(&t, &reply, "DIGEST_MISMATCH").await;
    assert!(!reply.body.contains("digest"), "{}", reply.body);
    let audit = t.app.store().audit_log(10).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.operation_id.to_string() == reply.operation_id())
        .unwrap();
    assert!(refusal_detail(event).contains("digest"), "{event:?}");
}

#[tokio::test]
async fn wrong_audience() {
    let t = app(AppKind::Wiki, "").await;
    let mut login = reader();
    login.audience = Some("https://helpdesk.latchkey.test/saml/metadata".into());
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "AUDIENCE_MISMATCH").await;
}

#[tokio::test]
async fn expired() {
    let t = app(AppKind::Wiki, "").await;
    let mut login = reader();
    login.not_on_or_after = NOW - Duration::minutes(10);
    let reply = sp_initiated(&t, login).await;
    // Was EXPIRED, which also stood for the assertion's own window: it is the bearer
    // confirmation's NotOnOrAfter that passed.
    assert_refused(&t, &reply, "CONFIRMATION_EXPIRED").await;
}

#[tokio::test]
async fn replayed() {
    let t = app(AppKind::Helpdesk, "allow_idp_initiated = true").await;
    let xml = person("p-0009", "support").response_xml(&t);
    let first = post_acs(&t, &xml, None).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let account = t.app.store().accounts().await.unwrap();
    assert_eq!(account.len(), 1);

    let again = post_acs(&t, &xml, None).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert_eq!(again.error_code(), "ASSERTION_REPLAYED");
    assert!(again.set_cookie.is_none());
    // Nothing changed: the one account is exactly as before.
    assert_eq!(t.app.store().accounts().await.unwrap(), account);
    let op = again.operation_id().to_owned();
    let audit = t.app.store().audit_log(100).await.unwrap();
    assert!(audit.iter().any(|e| e.operation_id.to_string() == op));
}

#[tokio::test]
async fn unsolicited_when_not_allowed() {
    let t = app(AppKind::Wiki, "").await;
    let reply = post_acs(&t, &reader().response_xml(&t), None).await;
    assert_refused(&t, &reply, "UNSOLICITED_NOT_ALLOWED").await;
}

#[tokio::test]
async fn unsolicited_when_allowed_signs_in() {
    let t = app(AppKind::Wiki, "allow_idp_initiated = true").await;
    let reply = post_acs(
        &t,
        &reader().response_xml(&t),
        Some("https://idp-relay.example/"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    // An IdP's own RelayState is never used as a redirect target.
    assert_eq!(reply.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn unknown_in_response_to() {
    let t = app(AppKind::Wiki, "").await;
    let mut login = reader();
    login.in_response_to = Some("_never-sent".into());
    let reply = post_acs(&t, &login.response_xml(&t), None).await;
    assert_refused(&t, &reply, "IN_RESPONSE_TO_MISMATCH").await;
}

#[tokio::test]
async fn answer_to_another_request() {
    let t = app(AppKind::Wiki, "").await;
    let (relay, _mine) = start_login(&t).await;
    let (_, other) = start_login(&t).await;
    let mut login = reader();
    login.in_response_to = Some(other);
    let reply = post_acs(&t, &login.response_xml(&t), Some(&relay)).await;
    assert_refused(&t, &reply, "IN_RESPONSE_TO_MISMATCH").await;
}

/// Login CSRF: the attacker (the test browser) starts a login and gets the IdP's Response to
/// it, then has the victim's browser post it to the ACS. Without the login cookie, or with the
/// victim's own, it is refused (`BROWSER_MISMATCH`: code and operation ID on the page, the
/// detail in the audit log) and nothing is provisioned; the request is used up either way.
/// Only the browser that started a login completes it.
#[tokio::test]
async fn an_answer_posted_from_another_browser_is_refused() {
    let t = app(AppKind::Wiki, "").await;
    // The victim's browser holds a binding of its own (it started a login once).
    let victim = send_from_elsewhere(&t, Request::get("/login").body(Body::empty()).unwrap())
        .await
        .set_cookies
        .into_iter()
        .find(|c| c.starts_with("__Host-latchkey_login="))
        .unwrap();
    let victim = victim.split(';').next().unwrap().to_owned();
    assert_ne!(Some(&victim), t.browser.cookie().as_ref());
    for posted_with in [None, Some(victim.as_str())] {
        let (relay, request_id) = start_login(&t).await;
        let mut login = reader();
        login.in_response_to = Some(request_id);
        let xml = login.response_xml(&t);
        let reply = post_acs_from_elsewhere(&t, &xml, Some(&relay), posted_with).await;
        assert_refused(&t, &reply, "BROWSER_MISMATCH").await;
        // Used up: the attacker's own browser cannot post it after.
        let again = post_acs(&t, &xml, Some(&relay)).await;
        assert_eq!(again.error_code(), "IN_RESPONSE_TO_MISMATCH");
        assert!(t.app.store().accounts().await.unwrap().is_empty());
    }
    let ok = sp_initiated(&t, reader()).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
}

/// Two logins started in one browser (two tabs) both complete: the second start reuses the
/// browser's binding.
#[tokio::test]
async fn two_logins_started_in_one_browser_both_complete() {
    let t = app(AppKind::Wiki, "").await;
    let (first_relay, first_id) = start_login(&t).await;
    let cookie = t.browser.cookie().unwrap();
    let (second_relay, second_id) = start_login(&t).await;
    assert_eq!(t.browser.cookie().unwrap(), cookie);
    for (relay, id) in [(second_relay, second_id), (first_relay, first_id)] {
        let mut login = reader();
        login.in_response_to = Some(id);
        let reply = post_acs(&t, &login.response_xml(&t), Some(&relay)).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    }
}

#[tokio::test]
async fn relay_state_is_single_use() {
    let t = app(AppKind::Wiki, "").await;
    let (relay, request_id) = start_login(&t).await;
    let mut login = reader();
    login.in_response_to = Some(request_id);
    let ok = post_acs(&t, &login.response_xml(&t), Some(&relay)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // A second, freshly signed answer to the same request: the request is gone.
    let again = post_acs(&t, &login.response_xml(&t), Some(&relay)).await;
    assert_eq!(again.error_code(), "IN_RESPONSE_TO_MISMATCH");
}

#[tokio::test]
async fn missing_required_attribute() {
    let t = app(AppKind::Helpdesk, "").await;
    let mut login = person("p-0003", "support");
    login.attributes.retain(|(n, _)| n != "sn");
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "REQUIRED_ATTRIBUTE_MISSING").await;
}

#[tokio::test]
async fn no_matching_role() {
    let t = app(AppKind::Wiki, "").await;
    let login = Login::new(
        "mallory@example.org",
        EMAIL_FORMAT,
        &[("groups", &["marketing"])],
    );
    let reply = sp_initiated(&t, login).await;
    assert_refused(&t, &reply, "NO_MATCHING_ROLE").await;
    assert!(reply.body.contains("engineering, or any wiki-* group"));
}

#[tokio::test]
async fn returning_user_refused_keeps_account_unchanged() {
    let t = app(AppKind::Wiki, "").await;
    let ok = sp_initiated(&t, reader()).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let before = t.app.store().accounts().await.unwrap();
    let mut lost = reader();
    lost.attributes = vec![("groups".into(), vec!["marketing".into()])];
    let reply = sp_initiated(&t, lost).await;
    assert_eq!(reply.error_code(), "NO_MATCHING_ROLE");
    assert_eq!(t.app.store().accounts().await.unwrap(), before);
}

#[tokio::test]
async fn malformed_posts() {
    let t = app(AppKind::Wiki, "").await;
    let not_base64 = send(
        &t,
        axum::http::Request::post("/saml/acs")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from("SAMLResponse=%%%not-base64"))
            .unwrap(),
    )
    .await;
    assert_eq!(not_base64.error_code(), "BASE64_INVALID");
    let audit = t.app.store().audit_log(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.operation_id.to_string() == not_base64.operation_id())
    );
    let missing = send(
        &t,
        axum::http::Request::post("/saml/acs")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from("RelayState=x"))
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), "MISSING_PARAMETER");
    let garbage = post_acs(&t, "<not-saml/>", None).await;
    assert_eq!(garbage.status, StatusCode::FORBIDDEN);
    assert!(t.app.store().accounts().await.unwrap().is_empty());
}
