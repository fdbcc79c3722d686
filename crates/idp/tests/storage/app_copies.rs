//! The applications' version, which each node's copy of the applications is checked
//! against (`Apps::for_sign_in`, confirmed by the sign-in's statement): every way an
//! application changes must move it, and a copy must never be confirmed after a change
//! made elsewhere.

use latchkey_idp::apps::{AppKey, AppRead, AppsVersion, NewApplication, SpMetadata};
use latchkey_idp::session::Sessions;
use latchkey_idp::sso::grant;
use latchkey_idp::{Store, apps::Apps};
use time::Duration;

use super::metadata_import::{options, toolkit_sp};
use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords};

on_both_backends!(
    every_change_to_an_application_moves_the_version,
    a_copy_is_confirmed_only_while_nothing_changed
);

const IDLE: Duration = Duration::minutes(30);

/// Runs `change`, then says whether the version moved.
async fn moves(apps: Apps<'_>, change: impl AsyncFnOnce()) -> bool {
    let before: AppsVersion = apps.version().await.unwrap();
    change().await;
    apps.version().await.unwrap() != before
}

/// Another node: its own pool (and copies) over the same database.
async fn other_node(t: &TestStore) -> Store {
    Store::open_url(&t.url, 2, cheap_passwords()).await.unwrap()
}

/// A statement behind the registry's back (what a new write path, a migration or an
/// operator's SQL would run).
async fn raw(t: &TestStore, sql: &'static str, id: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query(sql).bind(id).execute(&mut conn).await.unwrap();
}

async fn every_change_to_an_application_moves_the_version(t: TestStore) {
    let s = &t.store;
    let apps = s.apps();
    let new = NewApplication::new(
        "https://wiki.example.org",
        "Wiki",
        "https://wiki.example.org/acs",
    );
    let mut wiki = None;
    assert!(
        moves(apps, async || wiki =
            Some(apps.create(&admin(), new).await.unwrap()))
        .await
    );
    let wiki = wiki.unwrap();
    assert!(
        moves(apps, async || {
            apps.update(&admin(), wiki.id, |a| a.name = "Wiki 2".into())
                .await
                .unwrap();
        })
        .await
    );

    // From metadata, and refreshed from it.
    let xml = toolkit_sp(false).metadata_xml().unwrap();
    let metadata = SpMetadata::parse(&xml, &options()).unwrap();
    let mut from_metadata = None;
    assert!(
        moves(apps, async || {
            from_metadata = Some(
                apps.create_from_metadata(&admin(), metadata.application(None), &metadata, "test")
                    .await
                    .unwrap(),
            );
        })
        .await
    );
    let from_metadata = from_metadata.unwrap();
    let moved = SpMetadata::parse(&xml.replace("/saml/acs", "/saml/acs2"), &options()).unwrap();
    assert!(
        moves(apps, async || {
            let refreshed = apps
                .refresh_metadata(&admin(), from_metadata.id, &moved, "test")
                .await
                .unwrap();
            assert!(refreshed.is_some(), "the refresh changed the ACS");
        })
        .await
    );

    // Hand-written SQL, on a connection of its own.
    let id = wiki.id.to_string();
    assert!(
        moves(apps, async || {
            raw(
                &t,
                "UPDATE applications SET tile_visible = 0 WHERE id = $1",
                &id,
            )
            .await;
        })
        .await
    );
    assert!(moves(apps, async || apps.delete(&admin(), wiki.id).await.unwrap()).await);
    let id = from_metadata.id.to_string();
    assert!(
        moves(apps, async || {
            raw(&t, "DELETE FROM applications WHERE id = $1", &id).await;
        })
        .await
    );

    // What the sign-in reads beside the application (access, MFA policy) is read fresh
    // with the session, so assigning a group need not move it; reading moves nothing.
    let crm = apps
        .create(
            &admin(),
            NewApplication::new(
                "https://crm.example.org",
                "CRM",
                "https://crm.example.org/acs",
            ),
        )
        .await
        .unwrap();
    assert!(!moves(apps, async || drop(apps.get(crm.id).await.unwrap())).await);
}

async fn a_copy_is_confirmed_only_while_nothing_changed(t: TestStore) {
    let s = &t.store;
    let apps = s.apps();
    let wiki = apps
        .create(
            &admin(),
            NewApplication::new(
                "https://wiki.example.org",
                "Wiki",
                "https://wiki.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let staff = group(s, "staff").await;
    let ann = user(s, "ann").await;
    join(s, staff.id, ann.id).await;
    apps.assign(&admin(), wiki.id, staff.id).await.unwrap();
    let (token, _) = Sessions::new(s)
        .create(&ann, s.now(), Duration::hours(8))
        .await
        .unwrap();
    let current = async || {
        let (_, _, version) = grant::resume(s, token.expose(), s.now(), IDLE, wiki.id)
            .await
            .unwrap()
            .unwrap();
        version
    };
    let by_entity_id = AppKey::EntityId("https://wiki.example.org");

    // The first read is fresh and kept; then each key finds the copy, unconfirmed.
    let first = apps
        .for_sign_in(by_entity_id, AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.unconfirmed, None);
    for key in [AppKey::Id(wiki.id), by_entity_id, AppKey::Slug("wiki")] {
        let copy = apps
            .for_sign_in(key, AppRead::Cached)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(copy.app.id, wiki.id);
        assert!(copy.unconfirmed.is_some());
        assert!(apps.confirm(copy.unconfirmed, current().await));
        assert!(apps.confirm_now(copy.unconfirmed).await.unwrap());
    }

    // Another node moves the ACS: the copy here is refused, by the sign-in's statement and
    // by the version read on its own, and the next read is fresh.
    let other = other_node(&t).await;
    other
        .apps()
        .update(&admin(), wiki.id, |a| {
            a.acs[0].url = "https://wiki.example.org/moved".into()
        })
        .await
        .unwrap();
    let stale = apps
        .for_sign_in(AppKey::Id(wiki.id), AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stale.app.settings.acs[0].url,
        "https://wiki.example.org/acs"
    );
    assert!(!apps.confirm_now(stale.unconfirmed).await.unwrap());
    assert!(!apps.confirm(stale.unconfirmed, current().await));
    let fresh = apps
        .for_sign_in(AppKey::Id(wiki.id), AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.unconfirmed, None);
    assert_eq!(
        fresh.app.settings.acs[0].url,
        "https://wiki.example.org/moved"
    );
    // A fresh read is relied on as it is, whatever the version (as before copies).
    assert!(apps.confirm(fresh.unconfirmed, current().await));

    // The other node renames the entity ID: the old one finds the copy, which is refused,
    // and then nothing.
    let _ = apps
        .for_sign_in(by_entity_id, AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    other
        .apps()
        .update(&admin(), wiki.id, |a| {
            a.entity_id = "https://wiki.example.net".into()
        })
        .await
        .unwrap();
    let stale = apps
        .for_sign_in(by_entity_id, AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    assert!(!apps.confirm_now(stale.unconfirmed).await.unwrap());
    assert!(
        apps.for_sign_in(by_entity_id, AppRead::Fresh)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        apps.for_sign_in(by_entity_id, AppRead::Cached)
            .await
            .unwrap()
            .is_none()
    );

    // And removes it.
    let _ = apps
        .for_sign_in(AppKey::Id(wiki.id), AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    other.apps().delete(&admin(), wiki.id).await.unwrap();
    let stale = apps
        .for_sign_in(AppKey::Id(wiki.id), AppRead::Cached)
        .await
        .unwrap()
        .unwrap();
    assert!(!apps.confirm_now(stale.unconfirmed).await.unwrap());
    assert!(
        apps.for_sign_in(AppKey::Id(wiki.id), AppRead::Fresh)
            .await
            .unwrap()
            .is_none()
    );
}
