//! Sign-in, CSRF, throttling, suspension and sessions.

use axum::http::StatusCode;
use latchkey_idp::session::Sessions;
use latchkey_idp::{Actor, Clock};

use super::support::*;

#[tokio::test]
async fn login_by_username_or_email_starts_a_session() {
    let idp = idp().await;
    for name in ["alice", "ALICE@example.org"] {
        let mut b = Browser::new(&idp);
        let page = b.login(name, PASSWORD, None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{name}: {}", page.body);
        assert_eq!(page.location(), "/portal");
        let cookie = page.headers[axum::http::header::SET_COOKIE]
            .to_str()
            .unwrap();
        assert!(cookie.starts_with("latchkey_session="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        let portal = b.get("/portal").await;
        assert_eq!(portal.status, StatusCode::OK);
        assert!(portal.body.contains("Alice Liddell"));
        // Signed in, the login page sends the user on to the portal.
        assert_eq!(b.get("/login").await.location(), "/portal");
    }
}

#[tokio::test]
async fn failures_share_one_generic_message_and_are_audited() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let wrong = b.login("alice", "not the password", None).await;
    let unknown = b.login("mallory", PASSWORD, None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let message = |p: &Page| {
        let start = p.body.find("class=\"error\"").unwrap();
        p.body[start..start + 120].to_string()
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(!b.cookies.contains_key("latchkey_session"));
    let events = audit_actions(&idp, "login.failure").await;
    assert_eq!(events.len(), 2);
    let reasons: Vec<_> = events
        .iter()
        .map(|e| {
            e.after.as_ref().unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(reasons.contains(&"bad_password".to_string()));
    assert!(reasons.contains(&"unknown_user".to_string()));
    let metrics = b.metrics().await.body;
    assert!(metrics.contains("latchkey_logins_total{result=\"failure\"} 2"));
}

#[tokio::test]
async fn csrf_token_is_required_and_must_match_its_cookie() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    // No token at all.
    let page = b
        .post("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("WEB-CSRF"));
    // A token, but not the one in the cookie.
    b.get("/login").await;
    let page = b
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(page.error_code(), Some("WEB-CSRF"));
    // A token without its cookie (another site's form).
    let token = b.get("/login").await.field("csrf").unwrap();
    b.cookies.clear();
    let page = b
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", &token),
            ],
        )
        .await;
    assert_eq!(page.error_code(), Some("WEB-CSRF"));
    assert!(audit_actions(&idp, "login.success").await.is_empty());
    // Logout needs it too.
    b.login("alice", PASSWORD, None).await;
    let page = b.post("/logout", &[]).await;
    assert_eq!(page.error_code(), Some("WEB-CSRF"));
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
}

#[tokio::test]
async fn suspended_user_cannot_sign_in_and_loses_existing_sessions() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    idp.store
        .users()
        .suspend(&Actor::system(), idp.alice.id)
        .await
        .unwrap();
    // The next request finds the session gone.
    let page = b.get("/portal").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");
    // And SSO does not ride it either: the browser is sent to sign in.
    let request = authn_request(SP);
    let first = b.get(&redirect_uri(&request, None)).await;
    let cont = b.get(first.location()).await;
    assert!(cont.location().starts_with("/login?continue="));
    // Signing in again is refused with the generic message.
    let page = b.login("alice", PASSWORD, None).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("Sign-in failed"));
    let events = audit_actions(&idp, "login.failure").await;
    assert_eq!(events[0].after.as_ref().unwrap()["reason"], "suspended");
    // Resumed, the same password works again.
    idp.store
        .users()
        .resume(&Actor::system(), idp.alice.id)
        .await
        .unwrap();
    assert_eq!(
        b.login("alice", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    for _ in 0..5 {
        let page = b.login("alice", "wrong password", None).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = b.login("Alice", PASSWORD, None).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("Too many failed attempts"));
    // Another account from the same address is not locked by alice's failures.
    let mut other = Browser::new(&idp);
    assert_eq!(
        other.login("bob", PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
    // Unknown names are throttled the same way, so the throttle reveals nothing.
    for _ in 0..5 {
        b.login("nobody", "x", None).await;
    }
    assert_eq!(
        b.login("nobody", "x", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn logout_ends_the_session_and_login_replaces_an_old_one() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let old = b.cookies["latchkey_session"].clone();
    // Signing in again issues a new token and ends the old one (no fixation).
    b.login("alice", PASSWORD, None).await;
    let new = b.cookies["latchkey_session"].clone();
    assert_ne!(old, new);
    let now = idp.clock.now();
    let sessions = Sessions::new(&idp.store);
    assert!(
        sessions
            .resume(&old, now, idp.settings.session_idle)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sessions
            .resume(&new, now, idp.settings.session_idle)
            .await
            .unwrap()
            .is_some()
    );

    let confirm = b.get("/logout").await;
    let csrf = confirm.field("csrf").unwrap();
    let page = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!b.cookies.contains_key("latchkey_session"));
    assert!(
        sessions
            .resume(&new, now, idp.settings.session_idle)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(audit_actions(&idp, "logout").await.len(), 1);
}

/// The same limits through the browser, on the IdP's clock: a session used just inside the
/// idle limit lives on past many of them, one left idle for the limit ends, and none
/// outlives its absolute lifetime however busy it is.
#[tokio::test]
async fn a_browser_session_ends_when_idle_or_at_its_absolute_lifetime() {
    let idp = idp().await;
    let idle = idp.settings.session_idle;
    let absolute = idp.settings.session_absolute;
    let step = idle - time::Duration::minutes(1);
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let signed_in = idp.clock.now();
    let mut uses = 0;
    while idp.clock.now() + step < signed_in + absolute {
        idp.clock.advance(step);
        assert_eq!(b.get("/portal").await.status, StatusCode::OK);
        uses += 1;
    }
    assert!(
        uses > 10,
        "the session outlived many idle limits ({uses} uses)"
    );
    idp.clock.set(signed_in + absolute);
    let page = b.get("/portal").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login");

    // A fresh session, left alone: a second short of the idle limit it is alive...
    b.login("alice", PASSWORD, None).await;
    idp.clock.advance(idle - time::Duration::seconds(1));
    assert_eq!(b.get("/portal").await.status, StatusCode::OK);
    // ...and a full idle limit after that use it is over, and stays over.
    idp.clock.advance(idle);
    assert_eq!(b.get("/portal").await.location(), "/login");
    idp.clock.advance(-idle);
    assert_eq!(b.get("/portal").await.location(), "/login");
}

#[tokio::test]
async fn sessions_end_when_idle_or_past_their_absolute_lifetime() {
    let idp = idp().await;
    let sessions = Sessions::new(&idp.store);
    let start = idp.clock.now();
    let idle = time::Duration::minutes(30);
    let (token, session) = sessions
        .create(&idp.alice, start, time::Duration::hours(8))
        .await
        .unwrap();
    assert!(!token.expose().is_empty());
    assert_ne!(token.expose(), session.session_index);
    // Used every 20 minutes, it survives past the idle limit...
    let mut t = start;
    for _ in 0..6 {
        t += time::Duration::minutes(20);
        assert!(
            sessions
                .resume(token.expose(), t, idle)
                .await
                .unwrap()
                .is_some()
        );
    }
    // ...until the absolute limit.
    assert!(
        sessions
            .resume(token.expose(), start + time::Duration::hours(8), idle)
            .await
            .unwrap()
            .is_none()
    );
    // Idle for 30 minutes, it ends (and stays ended).
    let (token, _) = sessions
        .create(&idp.alice, start, time::Duration::hours(8))
        .await
        .unwrap();
    assert!(
        sessions
            .resume(token.expose(), start + idle, idle)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sessions
            .resume(token.expose(), start, idle)
            .await
            .unwrap()
            .is_none()
    );
}

/// The login page a parked sign-in leads to, and its continue key.
async fn parked_login_page(b: &mut Browser<'_>) -> (Page, String) {
    let request = authn_request(SP);
    let first = b.get(&redirect_uri(&request, None)).await;
    let to_login = b.get(first.location()).await;
    let location = to_login.location().to_owned();
    assert!(location.starts_with("/login?continue="), "{location}");
    (b.get(&location).await, continue_key(&location))
}

#[tokio::test]
async fn the_login_page_names_the_application_that_asked_escaped() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let (page, key) = parked_login_page(&mut b).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Sign in to continue to <strong>Wiki</strong>."),
        "{}",
        page.body
    );

    // The name is the admin's text, shown as text.
    idp.store
        .apps()
        .update(&Actor::system(), idp.app.id, |a| {
            a.name = "Docs <script>alert(1)</script> & \"Co\"".into();
        })
        .await
        .unwrap();
    let page = b.get(&format!("/login?continue={key}")).await;
    assert!(
        page.body.contains(
            "continue to <strong>Docs &#60;script&#62;alert(1)&#60;/script&#62; &#38; \
             &#34;Co&#34;</strong>"
        ),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>"));

    // A failed attempt shows the form again, still naming the application...
    let csrf = page.field("csrf").unwrap();
    let failed = b
        .post(
            "/login",
            &[
                ("username", "alice"),
                ("password", "wrong"),
                ("csrf", &csrf),
                ("continue", &key),
            ],
        )
        .await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    assert!(failed.body.contains("Sign in to continue to <strong>Docs"));
    assert_eq!(failed.field("continue").as_deref(), Some(key.as_str()));
    // ...and reading the page did not use up the parked request.
    let done = b.login("alice", PASSWORD, Some(&key)).await;
    assert_eq!(done.location(), format!("/saml/continue/{key}"));
    let answer = b.follow(done).await;
    let xml = answer.saml_response();
    assert!(xml.contains("InResponseTo="), "{xml}");
}

#[tokio::test]
async fn an_unknown_or_expired_continue_key_shows_the_plain_form() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let plain = b.get("/login").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(!plain.body.contains("continue to"));

    // Well-formed but never issued.
    let unknown = "A".repeat(43);
    let page = b.get(&format!("/login?continue={unknown}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("continue to"), "{}", page.body);
    assert!(!page.body.contains("class=\"error\""), "{}", page.body);

    // Parked for the Wiki, but longer ago than a parked request lives.
    let pending = latchkey_idp::sso::PendingRequest {
        app_id: idp.app.id,
        request_id: Some("_old".into()),
        acs_url: SP_ACS.into(),
        relay_state: None,
        force_authn: false,
        is_passive: false,
        name_id_format: None,
        allow_create: None,
        subject: None,
        requested_authn_context: None,
    };
    let parked = latchkey_idp::session::ParkedRequests::new(&idp.store);
    let expired = parked
        .park(
            &pending,
            &latchkey_idp::session::ParkOwner::network("192.0.2.1"),
            idp.clock.now(),
        )
        .await
        .unwrap();
    idp.clock.advance(time::Duration::hours(1));
    let page = b.get(&format!("/login?continue={expired}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("continue to"), "{}", page.body);
    assert!(!page.body.contains("Wiki"), "{}", page.body);
    assert!(!page.body.contains("class=\"error\""), "{}", page.body);

    // The same request parked now is named: the difference is the expiry alone.
    let fresh = parked
        .park(
            &pending,
            &latchkey_idp::session::ParkOwner::network("192.0.2.1"),
            idp.clock.now(),
        )
        .await
        .unwrap();
    let page = b.get(&format!("/login?continue={fresh}")).await;
    assert!(page.body.contains("continue to <strong>Wiki</strong>"));

    // A parked request whose application was removed since: the plain form.
    idp.store
        .apps()
        .delete(&Actor::system(), idp.app.id)
        .await
        .unwrap();
    let page = b.get(&format!("/login?continue={fresh}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("continue to"), "{}", page.body);
}
