//! The WebAuthn endpoints with a software authenticator: enrol over JSON in a signed-in
//! session, sign in with the passkey and no password, and the refusals (malformed,
//! oversized, foreign origin, replayed, wrong credential) with their codes, no row written
//! and an audit line.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::webauthn::Credentials;
use serde_json::{Value, json};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, CreationChallengeResponse, RequestChallengeResponse};

use super::support::*;

pub const ORIGIN: &str = "http://localhost:8080";

pub async fn passkey_idp() -> Idp {
    idp_with(|c| c.base_url = ORIGIN.into()).await
}

pub async fn json_post(browser: &mut Browser<'_>, uri: &str, body: &str) -> (StatusCode, Value) {
    let page = browser
        .send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, ORIGIN)
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await;
    let value = serde_json::from_str(&page.body).unwrap_or(Value::Null);
    (page.status, value)
}

/// Signs alice in with her password and enrols a soft key; returns the key and its ID.
pub async fn enrolled(idp: &Idp) -> (SoftPasskey, Vec<u8>) {
    let (key, raw_id, _) = enrolled_with_answer(idp).await;
    (key, raw_id)
}

/// [`enrolled`], with the answer to `register/finish`.
pub async fn enrolled_with_answer(idp: &Idp) -> (SoftPasskey, Vec<u8>, Value) {
    let mut browser = Browser::new(idp);
    browser.login("alice", PASSWORD, None).await;
    let (status, started) = json_post(&mut browser, "/webauthn/register/start", "{}").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let raw_id = credential.raw_id.to_vec();
    let body = json!({ "handle": started["handle"], "name": "my key", "credential": credential });
    let (status, done) =
        json_post(&mut browser, "/webauthn/register/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["name"], "my key");
    (key, raw_id, done)
}

/// Starts a passwordless sign-in and answers it with `key` claiming `user`'s handle.
pub async fn passkey_answer(
    browser: &mut Browser<'_>,
    key: &mut SoftPasskey,
    raw_id: &[u8],
    user: uuid::Uuid,
) -> Value {
    let (status, started) = json_post(browser, "/webauthn/login/start", "{}").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let mut options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    assert!(options.public_key.allow_credentials.is_empty());
    // The soft key keeps no resident credentials: it is told which key to use, and the user
    // handle a resident key would return is added (it is not signed).
    options.public_key.allow_credentials = vec![AllowCredentials {
        type_: "public-key".into(),
        id: raw_id.to_vec(),
        transports: None,
    }];
    let mut answer = key
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    answer.response.user_handle = Some(user.as_bytes().to_vec());
    json!({ "handle": started["handle"], "credential": answer })
}

#[tokio::test]
async fn enrol_then_sign_in_with_the_passkey_and_no_password() {
    let idp = passkey_idp().await;
    let (mut key, raw_id) = enrolled(&idp).await;
    assert_eq!(audit_actions(&idp, "webauthn.registered").await.len(), 1);

    let mut browser = Browser::new(&idp);
    assert_eq!(browser.get("/portal").await.status, StatusCode::SEE_OTHER);
    let body = passkey_answer(&mut browser, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, done) = json_post(&mut browser, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redirect"], "/portal");
    let portal = browser.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK);
    assert!(portal.body.contains("alice"));
    let signed_in = audit_actions(&idp, "login.success").await;
    let last = signed_in.first().unwrap();
    assert_eq!(
        last.after.as_ref().unwrap()["methods"],
        serde_json::json!(["passkey"])
    );

    // The same answer again: the ceremony is gone.
    let (status, refused) =
        json_post(&mut browser, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-CHALLENGE");
    assert!(refused["operation_id"].is_string());
}

#[tokio::test]
async fn a_wrong_credential_is_refused_and_audited() {
    let idp = passkey_idp().await;
    let (mut key, raw_id) = enrolled(&idp).await;
    let mut browser = Browser::new(&idp);
    // Alice's key claiming to be bob's.
    let body = passkey_answer(&mut browser, &mut key, &raw_id, idp.bob.id.0).await;
    let (status, refused) =
        json_post(&mut browser, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-UNKNOWN-CREDENTIAL");
    assert!(!browser.cookies.keys().any(|k| k.contains("session")));
    let failures = audit_actions(&idp, "login.failure").await;
    assert_eq!(
        failures.first().unwrap().after.as_ref().unwrap()["code"],
        "WEBAUTHN-UNKNOWN-CREDENTIAL"
    );
}

#[tokio::test]
async fn malformed_oversized_and_foreign_requests_enrol_nothing() {
    let idp = passkey_idp().await;
    let mut browser = Browser::new(&idp);
    // No session: no enrolment.
    let (status, refused) = json_post(&mut browser, "/webauthn/register/start", "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "WEBAUTHN-SIGN-IN-REQUIRED");

    browser.login("alice", PASSWORD, None).await;
    let (_, started) = json_post(&mut browser, "/webauthn/register/start", "{}").await;
    let handle = started["handle"].as_str().unwrap().to_owned();
    for body in [
        "not json".to_owned(),
        json!({ "handle": handle, "name": "x", "credential": { "id": "AAAA" } }).to_string(),
        json!({ "handle": handle, "name": "x", "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "attestationObject": "!!!not base64!!!", "clientDataJSON": "AAAA" },
        } })
        .to_string(),
        format!("{{\"pad\": \"{}\"}}", "a".repeat(70 * 1024)),
    ] {
        let (status, refused) = json_post(&mut browser, "/webauthn/register/finish", &body).await;
        assert!(status.is_client_error(), "{status} {refused}");
        assert_eq!(refused["code"], "WEBAUTHN-MALFORMED", "{body:.80}");
    }
    // Another origin (a page elsewhere that got hold of the cookie-less JSON path).
    let page = browser
        .send(
            Request::post("/webauthn/register/start")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        Credentials::new(&idp.store)
            .count(idp.alice.id)
            .await
            .unwrap(),
        0
    );
    assert!(audit_actions(&idp, "webauthn.refused").await.len() >= 5);
    assert!(audit_actions(&idp, "webauthn.registered").await.is_empty());
}

#[tokio::test]
async fn the_page_and_script_keep_the_strict_policy() {
    let idp = passkey_idp().await;
    let mut browser = Browser::new(&idp);
    let page = browser.get("/webauthn").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(page.body.contains("src=\"/static/webauthn.js\""));
    assert!(!page.body.contains("<script>"));
    let script = browser.get("/static/webauthn.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("navigator.credentials.get"));
    // A page of the site like the others: the base layout and the hashed stylesheet.
    assert!(page.body.contains("<header class=\"topbar\">"));
    let sheet = latchkey_idp_web::assets::stylesheet_href();
    assert!(page.body.contains(&sheet), "{}", page.body);
    assert_eq!(browser.get(&sheet).await.status, StatusCode::OK);
    assert!(
        !page.body.contains("id=\"enrol\""),
        "signed out: no enrolment"
    );
}

#[tokio::test]
async fn the_sign_in_page_offers_a_passkey_when_passkeys_are_on() {
    let idp = passkey_idp().await;
    let mut browser = Browser::new(&idp);
    let key = "k".repeat(43);
    let page = browser.get(&format!("/login?continue={key}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("id=\"passkey-sign-in\""),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("data-continue=\"{key}\"")));
    assert!(page.body.contains("src=\"/static/webauthn.js\""));
    assert!(!page.body.contains("<script>"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    // A refused password keeps the button.
    let csrf = page.field("csrf").unwrap();
    let refused = browser
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", "wrong"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("id=\"passkey-sign-in\""));

    // On an IP-address base URL passkeys are off: no button, no script, no script policy.
    let plain = idp_with(|_| {}).await;
    let mut browser = Browser::new(&plain);
    let page = browser.get("/login").await;
    assert!(!page.body.contains("passkey"), "{}", page.body);
    assert!(!page.body.contains("<script"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains("script-src"), "{csp}");
}

#[tokio::test]
async fn adding_a_key_to_an_account_with_a_factor_asks_for_it_first() {
    let idp = passkey_idp().await;
    enrolled(&idp).await;
    let mut browser = Browser::new(&idp);
    browser.login("alice", PASSWORD, None).await;
    let page = browser.get("/webauthn").await;
    assert!(
        page.body
            .contains("Signed in as <span id=\"who\">alice</span>")
    );
    assert!(!page.body.contains("id=\"enrol\""));
    assert!(page.body.contains("href=\"/login/mfa?then=webauthn\""));
    // Bob has no factor: his first key needs only his password.
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let page = bob.get("/webauthn").await;
    assert!(page.body.contains("id=\"enrol\""));
}

#[tokio::test]
async fn the_owner_lists_renames_and_removes_credentials() {
    let idp = passkey_idp().await;
    let (mut key, _) = enrolled(&idp).await;
    let mut browser = Browser::new(&idp);
    browser.login("alice", PASSWORD, None).await;
    // Her password alone does not even list them: the key names and dates tell how the
    // account is guarded.
    let refused = browser.get("/webauthn/credentials").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(refused["code"], "WEBAUTHN-STEP-UP");
    assert!(refused.to_string().find("my key").is_none(), "{refused}");
    let id = Credentials::new(&idp.store)
        .list(idp.alice.id)
        .await
        .unwrap()[0]
        .id
        .0
        .to_string();
    let uri = format!("/webauthn/credentials/{id}");

    // Bob cannot touch it (he has no factor, so nothing asks him to step up first).
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let (status, refused) = json_post(&mut bob, &uri, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-UNKNOWN-CREDENTIAL");

    // Renaming or removing her key takes a session that used a second factor, not the
    // password alone.
    for body in [r#"{"name": "laptop"}"#, "{}"] {
        let (status, refused) = json_post(&mut browser, &uri, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(refused["code"], "WEBAUTHN-STEP-UP");
    }
    assert!(audit_actions(&idp, "webauthn.renamed").await.is_empty());
    let (_, started) = json_post(&mut browser, "/webauthn/second-factor/start", "{}").await;
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let answer = key
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let body = json!({ "handle": started["handle"], "credential": answer, "then": "account" });
    let (status, done) = json_post(
        &mut browser,
        "/webauthn/second-factor/finish",
        &body.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redirect"], "/account");
    let listed = browser.get("/webauthn/credentials").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(listed["credentials"][0]["id"], id.as_str());
    assert_eq!(listed["credentials"][0]["name"], "my key");
    let (status, renamed) = json_post(&mut browser, &uri, r#"{"name": "laptop"}"#).await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "laptop");
    let (status, _) = json_post(&mut browser, &uri, "{}").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        Credentials::new(&idp.store)
            .count(idp.alice.id)
            .await
            .unwrap(),
        0
    );
    assert_eq!(audit_actions(&idp, "webauthn.renamed").await.len(), 1);
    assert_eq!(audit_actions(&idp, "webauthn.removed").await.len(), 1);
}

/// Anyone can post to the passwordless endpoints, so what they refuse before a throttle slot
/// is taken (a body that is not JSON, an unknown or used ceremony, a throttled attempt) is
/// logged, never an audit row: a burst of junk leaves the audit log as it was. A checked
/// answer that fails (a guess, counted by the throttle) is still audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_junk_passkey_sign_ins_writes_no_audit_rows() {
    let idp = idp_with(|c| {
        c.base_url = ORIGIN.into();
        c.trust_forwarded_for = true;
    })
    .await;
    let (mut key, raw_id) = enrolled(&idp).await;
    let mut browser = Browser::new(&idp);
    browser.address = Some("203.0.113.60".into());
    // A real answer, whose ceremony is then used up: replayed, it names no live ceremony.
    let answer = passkey_answer(&mut browser, &mut key, &raw_id, idp.alice.id.0).await;
    let (status, _) = json_post(&mut browser, "/webauthn/login/finish", &answer.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    let before = audit_actions(&idp, "login.failure").await.len();

    let n = 90;
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (router, gate) = (idp.router.clone(), gate.clone());
        let (uri, content_type, body) = match i % 3 {
            0 => ("/webauthn/login/start", "text/plain", "{}".to_owned()),
            1 => (
                "/webauthn/login/finish",
                "application/json",
                "not json".to_owned(),
            ),
            _ => (
                "/webauthn/login/finish",
                "application/json",
                answer.to_string(),
            ),
        };
        set.spawn(async move {
            let request = Request::post(uri)
                .header(header::CONTENT_TYPE, content_type)
                .header(header::ORIGIN, ORIGIN)
                .header("x-forwarded-for", format!("198.51.100.{}", i % 3))
                .body(Body::from(body))
                .unwrap();
            gate.wait().await;
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
                .await
                .unwrap();
            let value: Value = serde_json::from_slice(&body).unwrap();
            (
                status,
                value["code"].as_str().unwrap_or_default().to_owned(),
            )
        });
    }
    while let Some(done) = set.join_next().await {
        let (status, code) = done.unwrap();
        assert!(status.is_client_error(), "{status} {code}");
        assert!(
            ["WEBAUTHN-MALFORMED", "WEBAUTHN-CHALLENGE"].contains(&code.as_str()),
            "{code}"
        );
    }
    assert_eq!(
        audit_actions(&idp, "login.failure").await.len(),
        before,
        "refusals before a slot are not audited"
    );

    // A checked failure (alice's key claiming bob) is still a guess, audited.
    let body = passkey_answer(&mut browser, &mut key, &raw_id, idp.bob.id.0).await;
    let (status, refused) =
        json_post(&mut browser, "/webauthn/login/finish", &body.to_string()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-UNKNOWN-CREDENTIAL");
    assert_eq!(audit_actions(&idp, "login.failure").await.len(), before + 1);
}

/// Past its cap of ceremonies under way, a client is answered 429 `WEBAUTHN-TOO-MANY` with
/// `Retry-After` (its ceremonies end when answered or expired), and nothing is stored.
#[tokio::test]
async fn ceremonies_past_the_cap_say_when_to_come_back() {
    let idp = idp_with(|c| {
        c.base_url = ORIGIN.into();
        c.trust_forwarded_for = true;
    })
    .await;
    let mut browser = Browser::new(&idp);
    browser.address = Some("203.0.113.61".into());
    let cap = latchkey_idp::webauthn::MAX_PENDING_PER_OWNER;
    for _ in 0..cap {
        let (status, _) = json_post(&mut browser, "/webauthn/login/start", "{}").await;
        assert_eq!(status, StatusCode::OK);
    }
    let page = browser
        .send(
            Request::post("/webauthn/login/start")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, ORIGIN)
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert!(page.body.contains("WEBAUTHN-TOO-MANY"), "{}", page.body);
    let wait: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
}
