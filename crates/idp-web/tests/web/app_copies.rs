//! Each node answers sign-ins from its copy of the application (`latchkey_idp::apps`'s
//! cache), confirmed against the applications' version before anything is answered: a
//! change made anywhere, at another node or in hand-written SQL, is seen from its commit on.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::apps::{AcsEndpoint, Binding};
use sqlx::Connection as _;

use super::support::*;

#[tokio::test]
async fn a_change_at_another_node_is_seen_by_the_next_sign_in() {
    changes_elsewhere_are_seen_at_once(&idp().await).await;
}

/// Where an auto-POST page sends its form.
fn form_action(page: &Page) -> String {
    let marker = "action=\"";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no form: {} {}", page.status, page.body))
        + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

/// An AuthnRequest from the SP naming the ACS it registered first.
fn request_for_first_acs() -> String {
    let mut request = authn_request(SP);
    request.assertion_consumer_service_url = Some(SP_ACS.into());
    redirect_uri(&request, None)
}

/// Shared with the PostgreSQL oracles, where the two nodes share one database server.
pub async fn changes_elsewhere_are_seen_at_once(idp: &Idp) {
    let mut b = Browser::new(idp);
    b.login("alice", PASSWORD, None).await;
    let launch = format!("/saml/init/{}", idp.app.id);
    // The first sign-in reads the application and keeps it; the second is answered from
    // the copy.
    for _ in 0..2 {
        assert_eq!(form_action(&b.go(&launch).await), SP_ACS);
        assert_eq!(form_action(&b.get(&request_for_first_acs()).await), SP_ACS);
    }

    // Another node moves the ACS: the next sign-ins here go to the new one, and a request
    // naming the old one is refused, not answered there.
    let (_, other) = second_node(idp).await;
    let moved = "https://sp.example.com/moved-acs";
    other
        .apps()
        .update(&Actor::system(), idp.app.id, |s| {
            s.acs = vec![AcsEndpoint {
                url: moved.into(),
                binding: Binding::HttpPost,
                index: 0,
                is_default: true,
            }];
        })
        .await
        .unwrap();
    assert_eq!(form_action(&b.go(&launch).await), moved);
    let refused = b.get(&request_for_first_acs()).await;
    assert_eq!(refused.error_code(), Some("SSO-ACS"), "{}", refused.body);
    assert!(refused.field("SAMLResponse").is_none());
    let mut request = authn_request(SP);
    request.assertion_consumer_service_url = Some(moved.into());
    assert_eq!(
        form_action(&b.get(&redirect_uri(&request, None)).await),
        moved
    );

    // Hand-written SQL, behind the registry's back, removes the application: no node
    // signs anyone in to it any more.
    let mut raw = sqlx::AnyConnection::connect(&idp.url).await.unwrap();
    sqlx::query("DELETE FROM applications WHERE id = $1")
        .bind(idp.app.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(b.get(&launch).await.status, StatusCode::NOT_FOUND);
    let gone = b.get(&redirect_uri(&authn_request(SP), None)).await;
    assert_eq!(gone.error_code(), Some("SSO-UNKNOWN-SP"), "{}", gone.body);
    assert!(gone.field("SAMLResponse").is_none());
}
