//! The console asks for a second factor (`[console] require_mfa`, on by default): a session
//! that used a password alone is sent to the second step (or to enrol a factor first) and
//! then back to the console page it asked for (a checked `/admin` path; anything else is
//! `/admin`), before its roles are read; the switch turns the console's own rule
//! off, but not what `[mfa] required` asks.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::console::{Holder, Role};

use super::mfa_pages::{code_now, continue_link, enrol_at, recovery_codes_on, submit_code};
use super::support::*;

async fn make_admin(idp: &Idp) {
    idp.store
        .roles()
        .grant(&Actor::system(), Role::Admin, Holder::User(idp.alice.id))
        .await
        .unwrap();
}

/// GET `route` with a password-only session: sent to the second step, to come back to it.
async fn sent_to_second_step(b: &mut Browser<'_>, route: &str) {
    let page = b.get(route).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{route}: {}", page.body);
    assert_eq!(
        page.location(),
        format!("/login/mfa?then={route}"),
        "{route}"
    );
}

#[tokio::test]
async fn an_admin_without_a_factor_enrols_on_the_way_in() {
    let idp = idp().await;
    make_admin(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    for route in ["/admin", "/admin/users", "/admin/audit"] {
        sent_to_second_step(&mut b, route).await;
    }
    // A password alone changes nothing in the console.
    let before = idp.store.audit().count().await.unwrap();
    let csrf = b.get("/logout").await.field("csrf").unwrap();
    let page = b
        .post(
            &format!("/admin/users/{}/suspend", idp.bob.id),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(
        page.location(),
        format!("/login/mfa?then=/admin/users/{}/suspend", idp.bob.id)
    );
    assert_eq!(idp.store.audit().count().await.unwrap(), before);
    let bob = idp.store.users().get(idp.bob.id).await.unwrap();
    assert_eq!(bob.status.as_str(), "active");

    // No factor yet: the second step sends her to set one up, which says it is required.
    let step = b.get("/login/mfa?then=/admin/users").await;
    assert_eq!(step.status, StatusCode::SEE_OTHER);
    assert_eq!(step.location(), "/mfa/totp?then=/admin/users");
    let page = b.get(step.location()).await;
    assert!(
        page.body.contains("Your account needs a second factor"),
        "{}",
        page.body
    );
    let (_app, done) = enrol_at(&mut b, "/mfa/totp?then=/admin/users").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(recovery_codes_on(&done).len(), 10);
    assert_eq!(continue_link(&done), "/admin/users");
    let page = b.get("/admin/users").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test]
async fn an_admin_with_a_factor_steps_up_and_comes_back_to_the_console() {
    let idp = idp().await;
    make_admin(&idp).await;
    let app = super::mfa_pages::totp_enrolled(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    let user_page = format!("/admin/users/{}", idp.bob.id);
    sent_to_second_step(&mut b, &user_page).await;
    let done = submit_code(
        &mut b,
        &format!("/login/mfa?then={user_page}"),
        "totp",
        &code_now(&idp, &app),
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), user_page, "back to the page she asked for");
    assert_eq!(b.get(&user_page).await.status, StatusCode::OK);
    assert_eq!(b.get("/admin/groups").await.status, StatusCode::OK);
}

/// A step-up carries only a path under `/admin`: a link to the second step naming another
/// site, a path that climbs out, a backslash or a query lands on `/admin`, and the form
/// carries `/admin` on, never what was sent.
#[tokio::test]
async fn a_step_up_never_sends_the_browser_away() {
    let idp = idp().await;
    make_admin(&idp).await;
    let app = super::mfa_pages::totp_enrolled(&idp).await;
    let attempts = [
        "//evil.example/admin",
        "https://evil.example/admin",
        "/admin//evil.example",
        "/admin/../../evil",
        "/admin\\evil.example",
        "/\\evil.example",
        "/admin/users?to=https://evil.example",
        "/administrator",
        "/portal",
    ];
    for (i, evil) in attempts.into_iter().enumerate() {
        let mut b = Browser::new(&idp);
        b.login("alice", PASSWORD, None).await;
        // The form shown for it carries `/admin` or the named default, never the attempt.
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("then", evil)
            .finish();
        let form = b.get(&format!("/login/mfa?{query}")).await;
        assert_eq!(form.status, StatusCode::OK, "{evil}: {}", form.body);
        assert_ne!(form.field("then").as_deref(), Some(evil), "{evil}");
        // Posted as is, with a good code: the console's front page.
        let csrf = form.field("csrf").unwrap();
        // A fresh 30-second step per attempt: a TOTP step is accepted once.
        idp.clock.advance(time::Duration::seconds(30));
        let code = code_now(&idp, &app);
        let done = b
            .post(
                "/login/mfa",
                &[("csrf", csrf.as_str()), ("then", evil), ("code", &code)],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{evil}: {}", done.body);
        let expected = if evil.starts_with('/') {
            "/admin"
        } else {
            "/portal"
        };
        assert_eq!(done.location(), expected, "attempt {i}: {evil}");
    }
}

#[tokio::test]
async fn a_password_alone_does_not_tell_whether_someone_holds_a_role() {
    let idp = idp().await;
    // bob holds no role: he is asked for the second factor like an admin, not refused.
    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    sent_to_second_step(&mut b, "/admin").await;
    step_up_with_new_totp(&mut b, &idp.bob).await;
    let page = b.get("/admin").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("WEB-FORBIDDEN"));
}

#[tokio::test]
async fn the_switch_turns_the_consoles_rule_off_but_not_the_idps() {
    let idp = idp_with_settings(|s| s.console_require_mfa = false).await;
    make_admin(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);

    // `[mfa] required` still holds for the console, as for the portal.
    let idp = idp_with_settings(|s| {
        s.console_require_mfa = false;
        s.mfa_required = true;
    })
    .await;
    make_admin(&idp).await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    sent_to_second_step(&mut b, "/admin").await;
}

#[test]
fn the_console_requires_mfa_unless_the_file_says_otherwise() {
    use latchkey_idp::config::{Config, ServerSettings};
    let env = std::collections::HashMap::<&str, &str>::new();
    let settings = ServerSettings::resolve(&Config::default(), &env).unwrap();
    assert!(settings.console_require_mfa);
    let config = Config::from_toml("[console]\nrequire_mfa = false\n").unwrap();
    let settings = ServerSettings::resolve(&config, &env).unwrap();
    assert!(!settings.console_require_mfa);
}
