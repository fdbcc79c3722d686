//! The second-factor pages: the second step after the password (`/login/mfa`: a TOTP code,
//! a recovery code, a security key), enrolment during sign-in (`/mfa/totp`, then the
//! recovery codes shown once), step-up in the same session, the portal under
//! `[mfa] required`, `/saml/init` gated like SSO, and the refusals (wrong, replayed,
//! throttled, malformed) with their codes, operation IDs and audit lines. Codes are
//! computed here with totp-rs from the secret the page shows, as an authenticator app would.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy};
use latchkey_idp::mfa::recovery::RecoveryCodes;
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::{Actor, Clock};
use latchkey_saml::assertion::authn_context::{PASSWORD as PASSWORD_CLASS, REFEDS_MFA};
use latchkey_saml::authn_context::MfaClass;
use serde_json::{Value, json};
use totp_rs::TOTP;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{CreationChallengeResponse, RequestChallengeResponse};

use super::support::*;

/// The app (the wiki) needs a second factor.
pub async fn require_mfa(idp: &Idp) {
    MfaPolicy::new(&idp.store)
        .set_app(
            &Actor::cli("admin"),
            &idp.app,
            AppMfa {
                require_mfa: true,
                mfa_class: MfaClass::RefedsMfa,
            },
        )
        .await
        .unwrap();
}

pub use super::support::app_for;

/// The code the app shows at the IdP's time.
pub fn code_now(idp: &Idp, app: &TOTP) -> String {
    app.generate(idp.clock.now().unix_timestamp() as u64)
}

/// Alice enrols a TOTP app through the domain (the server's KEK); returns the app.
pub async fn totp_enrolled(idp: &Idp) -> TOTP {
    let kek = idp.kek();
    let totp = Totp::new(&idp.store, &kek);
    let e = totp.begin(&idp.alice, "phone", "test").await.unwrap();
    let app = app_for(&e.secret_base32);
    let done = totp
        .confirm(
            &Actor::user(idp.alice.id),
            &idp.alice,
            &e.factor_id,
            &code_now(idp, &app),
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }), "{done:?}");
    // The code's step is used up: the next sign-in needs the next one.
    idp.clock.advance(time::Duration::seconds(30));
    app
}

/// Text between `start` and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = body.find(start)? + start.len();
    let to = body[from..].find(end)? + from;
    Some(&body[from..to])
}

/// The secret an enrolment page shows.
pub fn secret_on(page: &Page) -> String {
    between(
        &page.body,
        "id=\"totp-secret\" class=\"secret\">",
        "</code>",
    )
    .unwrap_or_else(|| panic!("no secret on {} {}", page.status, page.body))
    .to_owned()
}

/// The recovery codes a page shows (none when it shows only the count).
pub fn recovery_codes_on(page: &Page) -> Vec<String> {
    let Some(list) = between(&page.body, "id=\"recovery-codes\">", "</ul>") else {
        return Vec::new();
    };
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect()
}

/// Where the "continue" link of the recovery-codes page goes.
pub fn continue_link(page: &Page) -> String {
    between(&page.body, "id=\"continue\" href=\"", "\"")
        .unwrap()
        .replace("&#38;", "&")
}

/// Submits the second-step form shown at `at` (a `/login/mfa...` URL).
pub async fn submit_code(b: &mut Browser<'_>, at: &str, method: &str, code: &str) -> Page {
    let form = b.get(at).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.field("csrf").unwrap();
    let mut fields = vec![
        ("csrf", csrf.clone()),
        ("method", method.to_owned()),
        ("code", code.to_owned()),
    ];
    for name in ["continue", "then"] {
        if let Some(v) = form.field(name) {
            fields.push((name, v));
        }
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/login/mfa", &fields).await
}

/// Enrols at the page `at` (a `/mfa/totp...` URL): reads the secret off it, types the code
/// the app computes. Returns the app and the answer to the confirmation.
pub async fn enrol_at(b: &mut Browser<'_>, at: &str) -> (TOTP, Page) {
    let idp = b.idp;
    let page = b.get(at).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<svg"), "a QR code: {}", page.body);
    let app = app_for(&secret_on(&page));
    let csrf = page.field("csrf").unwrap();
    let factor = page.field("factor").unwrap();
    let code = code_now(idp, &app);
    let mut fields = vec![
        ("csrf", csrf.as_str()),
        ("factor", factor.as_str()),
        ("code", code.as_str()),
    ];
    let cont = page.field("continue");
    let then = page.field("then");
    if let Some(k) = &cont {
        fields.push(("continue", k));
    }
    if let Some(t) = &then {
        fields.push(("then", t));
    }
    let done = b.post("/mfa/totp", &fields).await;
    (app, done)
}

/// Asserts the SSO request was parked for a second factor; returns where it was sent.
fn parked(page: &Page) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location().to_owned();
    assert!(location.starts_with("/login/mfa?continue="), "{location}");
    location
}

fn class(idp: &Idp, page: &Page, request_id: &str) -> String {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    sp_validate(idp, SP, SP_ACS, &page.saml_response(), Some(request_id))
        .unwrap()
        .authn_context_class_ref
        .unwrap()
}

async fn last_audit(idp: &Idp, action: &str) -> Value {
    audit_actions(idp, action)
        .await
        .first()
        .unwrap_or_else(|| panic!("no {action} event"))
        .after
        .clone()
        .unwrap()
}

#[tokio::test]
async fn a_totp_code_is_accepted_once_and_its_replay_refused() {
    let idp = idp().await;
    require_mfa(&idp).await;
    let app = totp_enrolled(&idp).await;

    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let at = parked(&b.go(&redirect_uri(&request, None)).await);
    let form = b.get(&at).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body
            .contains("<strong>Wiki</strong> asks for a second factor")
    );
    assert!(form.body.contains("name=\"code\""));
    // No key, no recovery codes: neither is offered, and the page runs no script.
    assert!(!form.body.contains("security-key"));
    assert!(!form.body.contains("recovery code"));
    let csp = form.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(!csp.contains("script-src"), "{csp}");

    let code = code_now(&idp, &app);
    let done = submit_code(&mut b, &at, "totp", &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with("/saml/continue/"));
    let answer = b.go(done.location()).await;
    assert_eq!(class(&idp, &answer, &request.id), REFEDS_MFA);
    let stepped = last_audit(&idp, "login.step_up").await;
    assert_eq!(stepped["method"], "totp");
    assert_eq!(stepped["methods"], json!(["password", "totp"]));

    // The same code in another browser, in the same 30 seconds: refused as any wrong code.
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let at = parked(&other.go(&redirect_uri(&request, None)).await);
    let replay = submit_code(&mut other, &at, "totp", &code).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.error_code(), Some("MFA-FAILED"));
    assert!(replay.body.contains("That code was not accepted"));
    assert!(replay.body.contains("Operation ID: <code>"));
    let failure = last_audit(&idp, "login.failure").await;
    assert_eq!(failure["reason"], "replayed_code");
    assert_eq!(failure["code"], "MFA-FAILED");
    assert_eq!(failure["stage"], "second_factor");
    assert!(
        replay
            .body
            .contains(failure["operation_id"].as_str().unwrap())
    );
    // The form is shown again, still continuing the sign-in; the next code works.
    assert!(replay.field("continue").is_some());
    idp.clock.advance(time::Duration::seconds(30));
    let done = submit_code(&mut other, &at, "totp", &code_now(&idp, &app)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let answer = other.go(done.location()).await;
    assert_eq!(class(&idp, &answer, &request.id), REFEDS_MFA);
}

#[tokio::test]
async fn five_wrong_codes_throttle_the_next_with_retry_after() {
    let idp = idp().await;
    require_mfa(&idp).await;
    let app = totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let at = parked(&b.go(&redirect_uri(&authn_request(SP), None)).await);
    let right = code_now(&idp, &app);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let page = submit_code(&mut b, &at, "totp", wrong).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
        assert_eq!(page.error_code(), Some("MFA-FAILED"));
    }
    // Even the right code is not checked now.
    let page = submit_code(&mut b, &at, "totp", &right).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
    assert_eq!(page.error_code(), Some("MFA-THROTTLED"));
    let wait: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let failure = last_audit(&idp, "login.failure").await;
    assert_eq!(failure["reason"], "throttled");
    // After the block, the right code gets through.
    idp.clock.advance(time::Duration::seconds(31));
    let page = submit_code(&mut b, &at, "totp", &code_now(&idp, &app)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn malformed_codes_are_refused_clearly_and_not_counted() {
    let idp = idp().await;
    require_mfa(&idp).await;
    let app = totp_enrolled(&idp).await;
    RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let at = parked(&b.go(&redirect_uri(&authn_request(SP), None)).await);
    for bad in ["12a456", "1234", "１２３４５６", &"9".repeat(100)] {
        let page = submit_code(&mut b, &at, "totp", bad).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}: {}", page.body);
        assert_eq!(page.error_code(), Some("MFA-MALFORMED"));
        assert!(page.body.contains("6 digits"), "{}", page.body);
    }
    let page = submit_code(&mut b, &at, "recovery_code", "not a code!").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code(), Some("MFA-MALFORMED"));
    assert!(page.body.contains("16 letters and digits"));
    // Open on the form that was refused.
    assert!(page.body.contains("<details class=\"recovery\" open>"));
    let malformed = audit_actions(&idp, "login.failure").await;
    assert_eq!(malformed.len(), 5);
    assert!(
        malformed
            .iter()
            .all(|e| e.after.as_ref().unwrap()["reason"] == "malformed_code")
    );
    // None of it was a guess: the right code is checked and accepted.
    let page = submit_code(&mut b, &at, "totp", &code_now(&idp, &app)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_is_audited() {
    let idp = idp().await;
    require_mfa(&idp).await;
    totp_enrolled(&idp).await;
    let codes = RecoveryCodes::new(&idp.store)
        .regenerate(
            &Actor::user(idp.alice.id),
            &idp.alice,
            latchkey_idp::session::Keep::Nothing,
        )
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let at = parked(&b.go(&redirect_uri(&request, None)).await);
    let form = b.get(&at).await;
    assert!(form.body.contains("Use a recovery code"));
    // As typed from paper: upper case, spaces for dashes.
    let typed = codes[3].to_uppercase().replace('-', " ");
    let done = submit_code(&mut b, &at, "recovery_code", &typed).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let answer = b.go(done.location()).await;
    assert_eq!(class(&idp, &answer, &request.id), REFEDS_MFA);
    let used = last_audit(&idp, "mfa.recovery_code_use").await;
    assert_eq!(used["remaining"], 9);
    assert_eq!(used["used_for"], "sign_in");
    let stepped = last_audit(&idp, "login.step_up").await;
    assert_eq!(stepped["method"], "recovery_code");
    assert_eq!(stepped["recovery_codes_left"], 9);

    // Once only.
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let at = parked(&other.go(&redirect_uri(&authn_request(SP), None)).await);
    let again = submit_code(&mut other, &at, "recovery_code", &codes[3]).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.error_code(), Some("MFA-FAILED"));
    assert_eq!(
        last_audit(&idp, "login.failure").await["method"],
        "recovery_code"
    );
}

#[tokio::test]
async fn a_user_without_a_factor_enrols_during_sign_in_and_sees_recovery_codes_once() {
    let idp = idp().await;
    require_mfa(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let at = parked(&page);
    assert!(at.ends_with("&enrol=1"), "{at}");
    let to_enrol = b.get(&at).await;
    assert_eq!(to_enrol.status, StatusCode::SEE_OTHER);
    let enrol_at_url = to_enrol.location().to_owned();
    assert!(
        enrol_at_url.starts_with("/mfa/totp?continue="),
        "{enrol_at_url}"
    );

    // A mistyped code: refused, and the same secret is shown again.
    let page = b.get(&enrol_at_url).await;
    assert!(
        page.body
            .contains("<strong>Wiki</strong> asks for a second factor")
    );
    let secret = secret_on(&page);
    let app = app_for(&secret);
    let right = code_now(&idp, &app);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    let csrf = page.field("csrf").unwrap();
    let factor = page.field("factor").unwrap();
    let key = page.field("continue").unwrap();
    let refused = b
        .post(
            "/mfa/totp",
            &[
                ("csrf", &csrf),
                ("factor", &factor),
                ("code", wrong),
                ("continue", &key),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error_code(), Some("MFA-FAILED"));
    assert_eq!(secret_on(&refused), secret);
    assert!(
        !latchkey_idp::mfa::Factors::new(&idp.store)
            .has_factor(&idp.alice)
            .await
            .unwrap()
    );

    // The right code: the factor counts, the session steps up, ten codes are shown once.
    let done = b
        .post(
            "/mfa/totp",
            &[
                ("csrf", &csrf),
                ("factor", &factor),
                ("code", &right),
                ("continue", &key),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let codes = recovery_codes_on(&done);
    assert_eq!(codes.len(), 10, "{}", done.body);
    assert!(codes.iter().all(|c| c.len() == 19), "{codes:?}");
    assert_eq!(done.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(audit_actions(&idp, "mfa.totp_enrol").await.len(), 1);
    assert_eq!(
        audit_actions(&idp, "mfa.recovery_codes_regenerate")
            .await
            .len(),
        1
    );
    assert_eq!(last_audit(&idp, "login.step_up").await["method"], "totp");
    let next = continue_link(&done);
    assert_eq!(next, format!("/saml/continue/{key}"));
    let answer = b.go(&next).await;
    assert_eq!(class(&idp, &answer, &request.id), REFEDS_MFA);

    // Never shown again: the page has the count and a form for new ones.
    let later = b.get("/mfa/recovery-codes").await;
    assert_eq!(later.status, StatusCode::OK);
    assert!(recovery_codes_on(&later).is_empty());
    assert!(
        later
            .body
            .contains("<strong id=\"recovery-remaining\">10</strong>")
    );
    for code in &codes {
        assert!(!later.body.contains(code.as_str()));
    }
    // And a code from the list works as a second factor.
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let at = parked(&other.go(&redirect_uri(&authn_request(SP), None)).await);
    let used = submit_code(&mut other, &at, "recovery_code", &codes[0]).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER, "{}", used.body);
    // The app too, a step later.
    idp.clock.advance(time::Duration::seconds(30));
    let mut third = Browser::new(&idp);
    third.login("alice", PASSWORD, None).await;
    let at = parked(&third.go(&redirect_uri(&authn_request(SP), None)).await);
    let used = submit_code(&mut third, &at, "totp", &code_now(&idp, &app)).await;
    assert_eq!(used.status, StatusCode::SEE_OTHER, "{}", used.body);
}

#[tokio::test]
async fn step_up_keeps_the_session_under_a_new_token_and_a_second_app_without_the_policy_is_not_prompted()
 {
    let idp = idp().await;
    let app = totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    // No policy yet: a password is enough.
    let first = authn_request(SP);
    let page = b.go(&redirect_uri(&first, None)).await;
    let before = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&first.id)).unwrap();
    assert_eq!(
        before.authn_context_class_ref.as_deref(),
        Some(PASSWORD_CLASS)
    );

    require_mfa(&idp).await;
    idp.clock.advance(time::Duration::minutes(2));
    let request = authn_request(SP);
    let at = parked(&b.go(&redirect_uri(&request, None)).await);
    let password_only = b.cookies.clone();
    let done = submit_code(&mut b, &at, "totp", &code_now(&idp, &app)).await;
    let stepped_at = idp.clock.now();
    // A change of privilege: the session goes on under a new token, and the one from
    // before the second factor is signed out (fixation, or a token seen in between).
    let session_cookie = |jar: &std::collections::BTreeMap<String, String>| {
        jar.iter()
            .find(|(name, _)| name.ends_with("latchkey_session"))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_ne!(session_cookie(&b.cookies), session_cookie(&password_only));
    let mut stale = Browser::new(&idp);
    stale.cookies = password_only;
    let portal = stale.get("/portal").await;
    assert_eq!(portal.status, StatusCode::SEE_OTHER, "{}", portal.body);
    assert_eq!(portal.location(), "/login");
    let answer = b.go(done.location()).await;
    let after = sp_validate(&idp, SP, SP_ACS, &answer.saml_response(), Some(&request.id)).unwrap();
    assert_eq!(after.authn_context_class_ref.as_deref(), Some(REFEDS_MFA));
    assert_eq!(
        after.session_index, before.session_index,
        "the same session"
    );
    assert!(after.authn_instant > before.authn_instant);
    assert!((after.authn_instant - stepped_at).abs() < time::Duration::seconds(1));

    // The tracker has no policy: answered at once, no second prompt, in the same session.
    let tracker = authn_request(SIGNED_SP);
    let page = b.go(&signed_redirect_uri(&tracker, &idp.sp_key)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let subject = sp_validate(
        &idp,
        SIGNED_SP,
        SIGNED_ACS,
        &page.saml_response(),
        Some(&tracker.id),
    )
    .unwrap();
    assert_eq!(subject.session_index, before.session_index);
    assert_eq!(subject.authn_context_class_ref.as_deref(), Some(REFEDS_MFA));
    assert_eq!(audit_actions(&idp, "login.step_up").await.len(), 1);
    // Single logout still knows both applications of the session, the one told before the
    // step-up included.
    let sessions = latchkey_idp::session::Sessions::new(&idp.store);
    let live = sessions
        .resume(
            &session_cookie(&b.cookies),
            idp.clock.now(),
            idp.settings.session_idle,
        )
        .await
        .unwrap()
        .unwrap();
    let mut told: Vec<_> = sessions
        .apps(&live)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.app)
        .collect();
    told.sort();
    let mut expected = vec![idp.app.id, idp.signed_app.id];
    expected.sort();
    assert_eq!(told, expected);
}

#[tokio::test]
async fn force_authn_asks_for_the_password_and_the_apps_second_factor_again() {
    let idp = idp().await;
    require_mfa(&idp).await;
    let app = totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = authn_request(SP);
    let at = parked(&b.go(&redirect_uri(&request, None)).await);
    let done = submit_code(&mut b, &at, "totp", &code_now(&idp, &app)).await;
    let answer = b.go(done.location()).await;
    assert_eq!(class(&idp, &answer, &request.id), REFEDS_MFA);

    idp.clock.advance(time::Duration::minutes(5));
    let mut forced = authn_request(SP);
    forced.force_authn = true;
    let first = b.get(&redirect_uri(&forced, None)).await;
    let at_login = b.get(first.location()).await;
    assert!(at_login.location().starts_with("/login?continue="));
    let key = continue_key(at_login.location());
    let after = b.login("alice", PASSWORD, Some(&key)).await;
    let at = parked(&b.go(after.location()).await);
    let done = submit_code(&mut b, &at, "totp", &code_now(&idp, &app)).await;
    let answer = b.go(done.location()).await;
    let subject = sp_validate(&idp, SP, SP_ACS, &answer.saml_response(), Some(&forced.id)).unwrap();
    assert_eq!(subject.authn_context_class_ref.as_deref(), Some(REFEDS_MFA));
    assert!((subject.authn_instant - idp.clock.now()).abs() < time::Duration::seconds(1));
}

#[tokio::test]
async fn mfa_required_holds_at_the_portal_and_idp_initiated_launch_steps_up() {
    let idp = idp_with_settings(|s| s.mfa_required = true).await;
    let mut b = Browser::new(&idp);
    let signed_in = b.login("alice", PASSWORD, None).await;
    assert_eq!(signed_in.location(), "/portal");
    let portal = b.get("/portal").await;
    assert_eq!(portal.location(), "/login/mfa?then=portal");
    let to_enrol = b.get(portal.location()).await;
    assert_eq!(to_enrol.location(), "/mfa/totp?then=portal");
    let (app, done) = enrol_at(&mut b, to_enrol.location()).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(recovery_codes_on(&done).len(), 10);
    assert_eq!(continue_link(&done), "/portal");
    let portal = b.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK, "{}", portal.body);
    assert!(portal.body.contains("Your applications"));

    // Another browser: password, then the code, then the portal.
    idp.clock.advance(time::Duration::seconds(30));
    let mut other = Browser::new(&idp);
    other.login("alice", PASSWORD, None).await;
    let portal = other.get("/portal").await;
    assert_eq!(portal.location(), "/login/mfa?then=portal");
    let done = submit_code(
        &mut other,
        "/login/mfa?then=portal",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.location(), "/portal");
    assert_eq!(other.get("/portal").await.status, StatusCode::OK);

    // A portal launch of an app goes through the same gate as SP-initiated SSO.
    let idp = super::support::idp().await;
    require_mfa(&idp).await;
    totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    let launch = b.get("/saml/init/wiki").await;
    assert_eq!(launch.status, StatusCode::SEE_OTHER, "{}", launch.body);
    assert!(
        launch.location().starts_with("/login/mfa?continue="),
        "{}",
        launch.location()
    );
}

#[tokio::test]
async fn a_password_alone_cannot_change_the_factors_of_an_account_that_has_one() {
    let idp = idp().await;
    let app = totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    // Adding an app, or new recovery codes: step up first.
    let page = b.get("/mfa/totp").await;
    assert_eq!(page.location(), "/login/mfa?then=totp");
    // Nor see how many codes are left.
    let form = b.get("/mfa/recovery-codes").await;
    assert_eq!(form.location(), "/login/mfa?then=recovery-codes");
    let csrf = b.get("/account").await.field("csrf").unwrap();
    let page = b.post("/mfa/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(page.location(), "/login/mfa?then=recovery-codes");
    assert_eq!(
        RecoveryCodes::new(&idp.store)
            .remaining(&idp.alice)
            .await
            .unwrap(),
        0
    );
    // After the step-up, both work; adding a second app does not make new codes.
    let done = submit_code(
        &mut b,
        "/login/mfa?then=totp",
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.location(), "/mfa/totp");
    let page = b.post("/mfa/recovery-codes", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(recovery_codes_on(&page).len(), 10);
    assert_eq!(continue_link(&page), "/account");
    let (_, added) = enrol_at(&mut b, "/mfa/totp").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), "/account");
    let listed = latchkey_idp::mfa::Factors::new(&idp.store)
        .list(&idp.alice)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3, "two apps and the codes");
}

/// Showing the enrolment page again (a reload, a second tab, a link from another site: a GET
/// needs no form) shows the same pending enrolment, so the code from the first page's secret
/// still confirms it; once it expired, the page starts a new one.
#[tokio::test]
async fn showing_the_enrolment_page_again_keeps_the_secret_being_scanned() {
    use latchkey_idp::mfa::totp::PENDING_FOR;
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let first = b.get("/mfa/totp").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let stale = secret_on(&first);
    let again = b.get("/mfa/totp").await;
    assert_eq!(secret_on(&again), stale);
    assert_eq!(again.field("factor"), first.field("factor"));

    // Past its time, a GET starts a new one; shown again, it stays.
    idp.clock.advance(PENDING_FOR + time::Duration::seconds(1));
    let first = b.get("/mfa/totp").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let secret = secret_on(&first);
    assert_ne!(secret, stale);
    let again = b.get("/mfa/totp").await;
    assert_eq!(secret_on(&again), secret);

    // The first page's form, with the code its secret gives, confirms the factor.
    let app = app_for(&secret);
    let csrf = first.field("csrf").unwrap();
    let factor = first.field("factor").unwrap();
    let code = code_now(&idp, &app);
    let done = b
        .post(
            "/mfa/totp",
            &[("csrf", &csrf), ("factor", &factor), ("code", &code)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(recovery_codes_on(&done).len(), 10, "{}", done.body);
    let listed = latchkey_idp::mfa::Factors::new(&idp.store)
        .list(&idp.alice)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "the app and the codes: {listed:?}");
    assert_eq!(audit_actions(&idp, "mfa.totp_enrol").await.len(), 1);
}

// --- password + security key ------------------------------------------------------------

const ORIGIN: &str = "http://localhost:8080";

async fn json_post(b: &mut Browser<'_>, uri: &str, body: &Value) -> (StatusCode, Value) {
    let page = b
        .send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, ORIGIN)
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    (
        page.status,
        serde_json::from_str(&page.body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_user_with_only_a_security_key_steps_up_with_it() {
    let idp = idp_with(|c| c.base_url = ORIGIN.into()).await;
    require_mfa(&idp).await;
    // Alice enrols a key in a password session (her first factor).
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let (status, started) = json_post(&mut b, "/webauthn/register/start", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key
        .do_registration(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let body = json!({ "handle": started["handle"], "name": "yubikey", "credential": credential });
    let (status, done) = json_post(&mut b, "/webauthn/register/finish", &body).await;
    assert_eq!(status, StatusCode::OK);
    // Her first factor: ten recovery codes in the answer, as after a first TOTP app.
    assert_eq!(done["recovery_codes"].as_array().map(Vec::len), Some(10));
    // A second key now needs a session that used the first.
    let (status, refused) = json_post(&mut b, "/webauthn/register/start", &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "WEBAUTHN-STEP-UP");

    // A new sign-in: the key is a factor, so she steps up (no enrolment): the key is
    // offered, and her recovery codes, not an authenticator app.
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let request = latchkey_saml::authn_request::AuthnRequest::new(
        SP,
        &format!("{ORIGIN}/saml/sso"),
        latchkey_idp::SystemClock.now(),
    )
    .unwrap();
    let at = parked(&b.go(&redirect_uri(&request, None)).await);
    assert!(!at.contains("enrol=1"), "{at}");
    let page = b.get(&at).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("id=\"security-key\""));
    assert!(page.body.contains("src=\"/static/webauthn.js\""));
    assert!(!page.body.contains("value=\"totp\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"recovery_code\""),
        "{}",
        page.body
    );
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    let cont = continue_key(&at.replace("&enrol=1", ""));

    let (status, started) = json_post(&mut b, "/webauthn/second-factor/start", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    assert_eq!(options.public_key.allow_credentials.len(), 1);
    let answer = key
        .do_authentication(Url::parse(ORIGIN).unwrap(), options)
        .unwrap();
    let body = json!({ "handle": started["handle"], "credential": answer, "continue": cont });
    let (status, done) = json_post(&mut b, "/webauthn/second-factor/finish", &body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redirect"], format!("/saml/continue/{cont}"));
    let answer_page = b.go(done["redirect"].as_str().unwrap()).await;
    assert_eq!(class(&idp, &answer_page, &request.id), REFEDS_MFA);
    let stepped = last_audit(&idp, "login.step_up").await;
    assert_eq!(stepped["method"], "security_key");
    assert_eq!(stepped["credential_name"], "yubikey");
    // The same answer again: the ceremony is gone.
    let (status, refused) = json_post(&mut b, "/webauthn/second-factor/finish", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-CHALLENGE");
    assert_eq!(
        last_audit(&idp, "login.failure").await["method"],
        "security_key"
    );

    // Bob, with no key, cannot start one; nobody without a session can.
    let mut bob = Browser::new(&idp);
    bob.login("bob", PASSWORD, None).await;
    let (status, refused) = json_post(&mut bob, "/webauthn/second-factor/start", &json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "WEBAUTHN-UNKNOWN-CREDENTIAL");
    let mut nobody = Browser::new(&idp);
    let (status, refused) =
        json_post(&mut nobody, "/webauthn/second-factor/start", &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["code"], "WEBAUTHN-SIGN-IN-REQUIRED");
}
