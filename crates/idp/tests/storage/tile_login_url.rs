//! The portal tile's login URL in the registry: stored, changed and cleared through the
//! audited paths, refused without a trace when the rules refuse it, exported, and read as
//! absent from stores made before the column existed.

use latchkey_idp::Error;
use latchkey_idp::apps::NewApplication;
use latchkey_idp::audit::AuditFilter;

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    the_login_url_round_trips_through_create_update_and_clear,
    a_refused_login_url_leaves_the_store_as_it_was,
    stores_from_before_the_login_url_column_read_it_as_none,
);

fn app() -> NewApplication {
    NewApplication::new(
        "https://sp.example.org/saml",
        "Tracker",
        "https://sp.example.org/saml/acs",
    )
}

async fn the_login_url_round_trips_through_create_update_and_clear(t: TestStore) {
    let apps = t.store.apps();
    let mut new = app();
    new.tile.login_url = Some(" https://sp.example.org/login?from=portal ".into());
    let created = apps.create(&admin(), new).await.unwrap();
    assert_eq!(
        created.settings.tile.login_url.as_deref(),
        Some("https://sp.example.org/login?from=portal")
    );
    assert_eq!(apps.get(created.id).await.unwrap(), created);
    assert_eq!(apps.list().await.unwrap(), vec![created.clone()]);

    // The audit snapshot carries it (serde), and so does the export.
    let events = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("app.create".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let create = &events[0];
    assert_eq!(
        create.after.as_ref().unwrap()["tile"]["login_url"],
        "https://sp.example.org/login?from=portal"
    );
    let export = serde_json::to_value(t.store.export().await.unwrap()).unwrap();
    assert_eq!(
        export["applications"][0]["tile"]["login_url"],
        "https://sp.example.org/login?from=portal"
    );

    // Changed to a loopback development URL, then cleared; one audit line each.
    let count = t.store.audit().count().await.unwrap();
    let updated = apps
        .update(&admin(), created.id, |a| {
            a.tile.login_url = Some("http://localhost:8081/login".into())
        })
        .await
        .unwrap();
    assert_eq!(
        apps.get(created.id)
            .await
            .unwrap()
            .settings
            .tile
            .login_url
            .as_deref(),
        Some("http://localhost:8081/login")
    );
    assert_eq!(apps.get(created.id).await.unwrap(), updated);
    let cleared = apps
        .update(&admin(), created.id, |a| a.tile.login_url = None)
        .await
        .unwrap();
    assert_eq!(cleared.settings.tile.login_url, None);
    assert_eq!(apps.get(created.id).await.unwrap(), cleared);
    assert_eq!(t.store.audit().count().await.unwrap(), count + 2);
    // Blank is none.
    let unchanged = apps
        .update(&admin(), created.id, |a| {
            a.tile.login_url = Some("   ".into())
        })
        .await
        .unwrap();
    assert_eq!(unchanged, cleared);
    assert_eq!(t.store.audit().count().await.unwrap(), count + 2);
}

async fn a_refused_login_url_leaves_the_store_as_it_was(t: TestStore) {
    let apps = t.store.apps();
    let mut new = app();
    new.tile.login_url = Some("javascript:alert(1)".into());
    let err = apps.create(&admin(), new).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "login_url",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(apps.list().await.unwrap().is_empty());

    let stored = apps.create(&admin(), app()).await.unwrap();
    let before = snapshot(&t.store).await;
    let err = apps
        .update(&admin(), stored.id, |a| {
            a.tile.login_url = Some("http://sp.example.org/login".into())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidField {
                field: "login_url",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

/// Runs one statement on the store's database behind the registry's back.
async fn raw(t: &TestStore, sql: &'static str) {
    use sqlx::Connection;
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

async fn stores_from_before_the_login_url_column_read_it_as_none(t: TestStore) {
    let mut new = app();
    new.tile.description = Some("Issues".into());
    new.tile.login_url = Some("https://sp.example.org/login".into());
    let stored = t.store.apps().create(&admin(), new).await.unwrap();
    // Make the store what it was before migration 270: no column, migration not applied.
    raw(&t, "ALTER TABLE applications DROP COLUMN tile_login_url").await;
    raw(&t, "DELETE FROM _sqlx_migrations WHERE version = 270").await;

    // Opening it applies the migration; the old row reads as having no login URL, the
    // rest of its tile as it was.
    let reopened = latchkey_idp::Store::open_url(&t.url, 2, crate::support::cheap_passwords())
        .await
        .unwrap();
    let read = reopened.apps().get(stored.id).await.unwrap();
    let mut expected = stored.settings.clone();
    expected.tile.login_url = None;
    assert_eq!(read.settings, expected);
    assert_eq!(read.settings.tile.description.as_deref(), Some("Issues"));
    let updated = reopened
        .apps()
        .update(&admin(), stored.id, |a| {
            a.tile.login_url = Some("https://sp.example.org/sign-in".into())
        })
        .await
        .unwrap();
    assert_eq!(reopened.apps().get(stored.id).await.unwrap(), updated);
}
