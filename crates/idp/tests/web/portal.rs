//! The portal and IdP-initiated sign-in.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::apps::NewApplication;

use super::support::*;

#[tokio::test]
async fn portal_shows_exactly_the_assigned_apps() {
    let idp = idp().await;
    // An app nobody is assigned to.
    idp.store
        .apps()
        .create(
            &Actor::system(),
            NewApplication::new(
                "https://hidden.example",
                "Payroll",
                "https://hidden.example/acs",
            ),
        )
        .await
        .unwrap();
    let mut b = Browser::new(&idp);
    assert_eq!(b.get("/portal").await.location(), "/login");
    b.login("alice", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert!(page.body.contains(&format!("/saml/init/{}", idp.app.id)));
    assert!(
        page.body
            .contains(&format!("/saml/init/{}", idp.signed_app.id))
    );
    assert!(page.body.contains("The team wiki"));
    assert!(!page.body.contains("Payroll"));

    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let page = b.get("/portal").await;
    assert!(!page.body.contains("/saml/init/"));
    assert!(
        page.body
            .contains("No applications are assigned to you yet.")
    );
}

#[tokio::test]
async fn tile_launch_sends_an_unsolicited_response_with_the_default_relay_state() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    b.login("alice", PASSWORD, None).await;
    // Signed in already: the launch is answered in the one round trip, no redirect.
    let page = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.field("RelayState").as_deref(), Some("/welcome"));
    let xml = page.saml_response();
    assert!(!xml.contains("InResponseTo"));
    let subject = sp_validate(&idp, SP, SP_ACS, &xml, None).unwrap();
    assert!(subject.in_response_to.is_none());
    // An SP that does not accept unsolicited responses refuses it: it really is one.
    let mut settings = latchkey_saml::profile::SpSettings::new(
        SP,
        SP_ACS,
        idp.settings.entity_id.clone(),
        idp.idp_keys.clone(),
    );
    settings.allow_unsolicited = false;
    assert!(
        latchkey_saml::profile::validate_response(
            &settings,
            &xml,
            None,
            time::OffsetDateTime::now_utc()
        )
        .is_err()
    );
}

#[tokio::test]
async fn launch_without_a_session_signs_in_first_and_unassigned_users_are_denied() {
    let idp = idp().await;
    let mut b = Browser::new(&idp);
    let first = b.get(&format!("/saml/init/{}", idp.app.id)).await;
    let cont = first.location().to_owned();
    let login = b.get(&cont).await.location().to_owned();
    let key = continue_key(&login);
    b.login("alice", PASSWORD, Some(&key)).await;
    let page = b.get(&cont).await;
    sp_validate(&idp, SP, SP_ACS, &page.saml_response(), None).unwrap();

    let mut b = Browser::new(&idp);
    b.login("bob", PASSWORD, None).await;
    let page = b.go(&format!("/saml/init/{}", idp.app.id)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.error_code(), Some("SSO-DENIED"));
    assert_eq!(audit_actions(&idp, "sso.denied").await.len(), 1);

    for bad in [
        "/saml/init/not-a-uuid",
        "/saml/init/00000000-0000-0000-0000-000000000000",
        "/saml/init/%FF%FE",
    ] {
        let page = b.get(bad).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{bad}");
        assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"), "{bad}");
    }
    let page = b.get("/saml/continue/%FF%FE").await;
    assert_eq!(page.error_code(), Some("WEB-NOT-FOUND"));
}
