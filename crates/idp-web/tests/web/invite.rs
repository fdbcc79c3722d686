//! The invitation page: the link shows a set-password form for its user, a refused
//! password leaves it usable, a good one signs the user in and uses the link up; expired
//! and reused links are refused.

use axum::http::StatusCode;
use latchkey_idp::Actor;
use latchkey_idp::directory::NewUser;

use super::support::*;

const NEW_PASSWORD: &str = "an invited person's long passphrase";

async fn invite(idp: &Idp) -> (latchkey_idp::directory::User, String) {
    let mut new = NewUser::new("carol", "carol@example.org");
    new.given_name = Some("Carol".into());
    let carol = idp
        .store
        .users()
        .create(&Actor::system(), new)
        .await
        .unwrap();
    let link = idp
        .store
        .enrollment()
        .invite(
            &Actor::new("admin:root"),
            carol.id,
            time::Duration::hours(72),
        )
        .await
        .unwrap();
    (carol, link.path())
}

async fn post(b: &mut Browser<'_>, path: &str, password: &str, confirm: &str) -> Page {
    let form = b.get(path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.field("csrf").unwrap();
    b.post(
        path,
        &[
            ("password", password),
            ("confirm", confirm),
            ("csrf", &csrf),
        ],
    )
    .await
}

#[tokio::test]
async fn an_invitation_sets_the_password_and_signs_in_once() {
    let idp = idp().await;
    let (_carol, path) = invite(&idp).await;
    let mut b = Browser::new(&idp);
    let form = b.get(&path).await;
    assert!(form.body.contains("Welcome, Carol"), "{}", form.body);

    // Refused by the policy, or two copies that differ: the link stays usable.
    let short = post(&mut b, &path, "short", "short").await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("at least 12 characters"),
        "{}",
        short.body
    );
    let differ = post(&mut b, &path, NEW_PASSWORD, "something else, long").await;
    assert_eq!(differ.status, StatusCode::BAD_REQUEST);

    let done = post(&mut b, &path, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal");
    let portal = b.get("/portal").await;
    assert_eq!(portal.status, StatusCode::OK);
    assert!(portal.body.contains("carol"), "{}", portal.body);
    assert_eq!(
        audit_actions(&idp, "user.invitation_redeemed").await.len(),
        1
    );

    // Used up.
    let mut other = Browser::new(&idp);
    let again = other.get(&path).await;
    assert_eq!(again.error_code(), Some("LINK-USED"));
    assert_eq!(
        other.login("carol", NEW_PASSWORD, None).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn an_expired_invitation_is_refused() {
    let idp = idp().await;
    let (_carol, path) = invite(&idp).await;
    let mut b = Browser::new(&idp);
    let csrf = b.get(&path).await.field("csrf").unwrap();
    idp.clock.advance(time::Duration::hours(73));
    let page = b.get(&path).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(page.error_code(), Some("LINK-EXPIRED"));
    let post = b
        .post(
            &path,
            &[
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(post.error_code(), Some("LINK-EXPIRED"));
    assert!(
        audit_actions(&idp, "user.invitation_redeemed")
            .await
            .is_empty()
    );
}
