//! AuthnContext and MFA at the SSO endpoint: every `Comparison`, NoAuthnContext, the
//! per-application MFA requirement with step-up in the same session, and ForceAuthn with
//! MFA. Here the step-up itself is done through the domain API the pages call
//! (`mfa::totp::Totp::verify`, `Sessions::step_up`); `web/mfa_pages.rs` goes through the
//! pages.

use axum::http::StatusCode;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::mfa::AuthMethod;
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy};
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::session::Sessions;
use latchkey_idp::{Actor, Clock};
use latchkey_saml::assertion::authn_context::{
    MOBILE_TWO_FACTOR_CONTRACT, PASSWORD, PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA,
};
use latchkey_saml::authn_context::MfaClass;
use latchkey_saml::authn_request::{Comparison, RequestedAuthnContext};
use latchkey_saml::status::code;
use totp_rs::{Algorithm, Secret, TOTP};

use super::support::*;

fn asking(comparison: Comparison, classes: &[&str]) -> latchkey_saml::authn_request::AuthnRequest {
    let mut request = authn_request(SP);
    request.requested_authn_context = Some(RequestedAuthnContext {
        comparison,
        class_refs: classes.iter().map(|c| (*c).to_owned()).collect(),
    });
    request
}

/// The class of the assertion `page` posts, after the SP's full check.
fn class_of(idp: &Idp, page: &Page, request_id: &str) -> String {
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    sp_validate(idp, SP, SP_ACS, &page.saml_response(), Some(request_id))
        .unwrap()
        .authn_context_class_ref
        .unwrap()
}

/// Asserts the request was parked for a second factor; returns the continuation key.
fn parked_for_second_factor(page: &Page, enrol: bool) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let location = page.location();
    assert!(location.starts_with("/login/mfa?continue="), "{location}");
    assert_eq!(location.ends_with("&enrol=1"), enrol, "{location}");
    assert!(page.field("SAMLResponse").is_none());
    location
        .trim_start_matches("/login/mfa?continue=")
        .trim_end_matches("&enrol=1")
        .to_owned()
}

fn assert_no_authn_context(idp: &Idp, page: &Page, request_id: &str) {
    let err = sp_validate(idp, SP, SP_ACS, &page.saml_response(), Some(request_id)).unwrap_err();
    assert!(
        matches!(
            err,
            latchkey_saml::Error::StatusNotSuccess { ref code, sub_code: Some(ref s), .. }
                if code == code::RESPONDER && s == code::NO_AUTHN_CONTEXT
        ),
        "{err}"
    );
}

/// Enrols a TOTP factor for alice and returns the secret's generator.
async fn enrol_totp(idp: &Idp, kek: &Kek) -> TOTP {
    let totp = Totp::new(&idp.store, kek);
    let e = totp.begin(&idp.alice, "phone", "test").await.unwrap();
    let app_codes = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        30,
        Secret::Encoded(e.secret_base32.to_string())
            .to_bytes()
            .unwrap(),
        None,
        String::new(),
    );
    let code = app_codes.generate(idp.clock.now().unix_timestamp() as u64);
    let done = totp
        .confirm(
            &Actor::user(idp.alice.id),
            &idp.alice,
            &e.factor_id,
            &code,
            "127.0.0.1",
        )
        .await
        .unwrap();
    assert!(matches!(done, TotpCheck::Accepted { .. }), "{done:?}");
    app_codes
}

/// What the step-up page will do: check a code, then upgrade the browser's session.
async fn step_up(idp: &Idp, b: &mut Browser<'_>, kek: &Kek, app_codes: &TOTP) {
    idp.clock.advance(time::Duration::seconds(30));
    let code = app_codes.generate(idp.clock.now().unix_timestamp() as u64);
    let check = Totp::new(&idp.store, kek)
        .verify(&idp.alice, &code, "127.0.0.1")
        .await
        .unwrap();
    assert!(matches!(check, TotpCheck::Accepted { .. }), "{check:?}");
    let token = b
        .cookies
        .iter()
        .find(|(name, _)| name.ends_with("latchkey_session"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let sessions = Sessions::new(&idp.store);
    let session = sessions
        .resume(&token, idp.clock.now(), idp.settings.session_idle)
        .await
        .unwrap()
        .unwrap();
    let (renewed, _) = sessions
        .step_up(&session, AuthMethod::Totp, idp.clock.now())
        .await
        .unwrap()
        .unwrap();
    // As the step-up page's answer does: the browser keeps the new token.
    let name = b
        .cookies
        .keys()
        .find(|name| name.ends_with("latchkey_session"))
        .unwrap()
        .clone();
    b.cookies.insert(name, renewed.expose().to_owned());
}

fn kek() -> Kek {
    Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap()
}

#[tokio::test]
async fn every_comparison_on_a_password_session() {
    // The test IdP is on plain http: a password session is `Password`.
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", super::support::PASSWORD, None).await;

    let none = authn_request(SP);
    assert_eq!(
        class_of(&idp, &b.go(&redirect_uri(&none, None)).await, &none.id),
        PASSWORD
    );

    for (comparison, classes, want) in [
        (Comparison::Exact, vec![PASSWORD], PASSWORD),
        (Comparison::Minimum, vec![PASSWORD], PASSWORD),
        (Comparison::Maximum, vec![REFEDS_MFA], PASSWORD),
        (Comparison::Maximum, vec![PASSWORD], PASSWORD),
    ] {
        let request = asking(comparison, &classes);
        let page = b.go(&redirect_uri(&request, None)).await;
        assert_eq!(
            class_of(&idp, &page, &request.id),
            want,
            "{comparison:?} {classes:?}"
        );
    }
    // Stronger than the session: a second factor in the same session would do. Alice has
    // none yet, so she is sent to enrol one.
    for (comparison, classes) in [
        (Comparison::Exact, vec![REFEDS_MFA]),
        (Comparison::Exact, vec![MOBILE_TWO_FACTOR_CONTRACT]),
        (Comparison::Minimum, vec![REFEDS_MFA]),
        (Comparison::Better, vec![PASSWORD]),
    ] {
        let request = asking(comparison, &classes);
        let page = b.go(&redirect_uri(&request, None)).await;
        parked_for_second_factor(&page, true);
    }
    // Nothing this IdP offers: answered NoAuthnContext at once, never a weaker assertion.
    for (comparison, classes) in [
        (Comparison::Exact, vec!["urn:example:ac:classes:Smartcard"]),
        // Plain http is never a protected transport, whatever the factors.
        (Comparison::Exact, vec![PASSWORD_PROTECTED_TRANSPORT]),
        (Comparison::Better, vec![REFEDS_MFA]),
        (Comparison::Minimum, vec!["urn:example:unknown"]),
    ] {
        let request = asking(comparison, &classes);
        let page = b.go(&redirect_uri(&request, None)).await;
        assert_no_authn_context(&idp, &page, &request.id);
    }
    let refused = audit_actions(&idp, "sso.refused").await;
    assert_eq!(refused.len(), 4);
    assert!(
        refused
            .iter()
            .all(|e| e.after.as_ref().unwrap()["reason"] == "SSO-AUTHN-CONTEXT")
    );
}

#[tokio::test]
async fn https_password_sessions_are_password_protected_transport() {
    let idp = idp_with(|c| {
        c.base_url = "https://idp.example.org".into();
        c.cookie_secure = true;
    })
    .await;
    let mut b = Browser::new(&idp);
    b.login("alice", super::support::PASSWORD, None).await;
    let request = asking(Comparison::Exact, &[PASSWORD_PROTECTED_TRANSPORT]);
    let page = b.go(&redirect_uri(&request, None)).await;
    if page.status == StatusCode::OK {
        assert_eq!(
            class_of(&idp, &page, &request.id),
            PASSWORD_PROTECTED_TRANSPORT
        );
    }
}

#[tokio::test]
async fn an_app_that_requires_mfa_steps_up_in_the_same_session_and_states_refeds_mfa() {
    let idp = idp().await;
    let kek = kek();
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
    let mut b = Browser::new(&idp);
    b.login("alice", super::support::PASSWORD, None).await;
    // No factor yet: enrol.
    let page = b.go(&redirect_uri(&authn_request(SP), None)).await;
    parked_for_second_factor(&page, true);
    let app_codes = enrol_totp(&idp, &kek).await;
    // A factor, but the session has not used it: step up.
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    let key = parked_for_second_factor(&page, false);
    // The second-step page asks for the code (`web/mfa_pages.rs` fills it in).
    let second_step = b.get(page.location()).await;
    assert_eq!(second_step.status, StatusCode::OK);
    assert!(second_step.body.contains("name=\"code\""));
    let session_index = |xml: &str| {
        sp_validate(&idp, SP, SP_ACS, xml, Some(&request.id))
            .unwrap()
            .session_index
    };
    step_up(&idp, &mut b, &kek, &app_codes).await;
    let stepped_at = idp.clock.now();
    let page = b.go(&format!("/saml/continue/{key}")).await;
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&request.id)).unwrap();
    assert_eq!(subject.authn_context_class_ref.as_deref(), Some(REFEDS_MFA));
    // AuthnInstant is the step-up's (written to the second), not the password's 30 s earlier.
    assert!(
        (subject.authn_instant - stepped_at).abs() < time::Duration::seconds(1),
        "{} vs {stepped_at}",
        subject.authn_instant
    );
    let first_index = session_index(&page.saml_response());

    // Later requests in this session go straight through, and the app told
    // MobileTwoFactorContract is told that.
    MfaPolicy::new(&idp.store)
        .set_app(
            &Actor::cli("admin"),
            &idp.app,
            AppMfa {
                require_mfa: true,
                mfa_class: MfaClass::MobileTwoFactorContract,
            },
        )
        .await
        .unwrap();
    let again = authn_request(SP);
    let page = b.go(&redirect_uri(&again, None)).await;
    let subject = sp_validate(&idp, SP, SP_ACS, &page.saml_response(), Some(&again.id)).unwrap();
    assert_eq!(
        subject.authn_context_class_ref.as_deref(),
        Some(MOBILE_TWO_FACTOR_CONTRACT)
    );
    assert_eq!(subject.session_index, first_index, "the same session");

    // IsPassive cannot step up: NoPassive.
    let mut b2 = Browser::new(&idp);
    b2.login("alice", super::support::PASSWORD, None).await;
    let mut passive = authn_request(SP);
    passive.is_passive = true;
    let page = b2.go(&redirect_uri(&passive, None)).await;
    assert_refused_with(&idp, SP, SP_ACS, &page, &passive.id, code::NO_PASSIVE);
}

#[tokio::test]
async fn force_authn_with_mfa_asks_for_the_password_and_the_second_factor_again() {
    let idp = idp().await;
    let kek = kek();
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
    let app_codes = enrol_totp(&idp, &kek).await;
    let mut b = Browser::new(&idp);
    b.login("alice", super::support::PASSWORD, None).await;
    step_up(&idp, &mut b, &kek, &app_codes).await;
    let request = authn_request(SP);
    let page = b.go(&redirect_uri(&request, None)).await;
    assert_eq!(class_of(&idp, &page, &request.id), REFEDS_MFA);

    idp.clock.advance(time::Duration::minutes(5));
    let mut request = authn_request(SP);
    request.force_authn = true;
    let first = b.get(&redirect_uri(&request, None)).await;
    assert!(first.location().starts_with("/saml/continue/"));
    let at_login = b.get(first.location()).await;
    assert!(at_login.location().starts_with("/login?continue="));
    let key = continue_key(at_login.location());
    let after = b.login("alice", super::support::PASSWORD, Some(&key)).await;
    // The password alone does not answer it: the app's policy wants the factor again.
    let page = b.go(after.location()).await;
    let key = parked_for_second_factor(&page, false);
    step_up(&idp, &mut b, &kek, &app_codes).await;
    let page = b.go(&format!("/saml/continue/{key}")).await;
    assert_eq!(class_of(&idp, &page, &request.id), REFEDS_MFA);
}
