//! Access taken away at applications is never silent: a removal's audit event commits with
//! its outbox rows' deletion (a retry never records it twice); disconnecting drops pending
//! removals only when forced, and then names whose; and an admin can see, per user, what
//! still waits at which application.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use latchkey_idp::apps::{Application, NewApplication};
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::directory::Group;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::provisioning::worker::{Worker, WorkerSettings};
use latchkey_idp::provisioning::{NewConnection, OnRemove, PendingKind, ProvisioningError};
use latchkey_idp::{ManualClock, Store};
use time::{Duration, macros::datetime};
use zeroize::Zeroizing;

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;
use crate::support::fake_scim::{Fake, TOKEN};

on_both_backends!(
    a_removal_whose_rows_stay_is_recorded_once,
    a_disconnect_drops_pending_removals_only_when_forced,
    pending_changes_are_shown_per_user
);

const T0: time::OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);

fn kek() -> Arc<Kek> {
    Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap())
}

/// The wiki, assigned to `staff`, connected to `url`.
async fn wiki(s: &Store, kek: &Kek, url: &str) -> (Application, Group) {
    let app = s
        .apps()
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
    s.apps().assign(&admin(), app.id, staff.id).await.unwrap();
    connect(s, kek, &app, url).await;
    (app, staff)
}

async fn connect(s: &Store, kek: &Kek, app: &Application, url: &str) {
    s.provisioning()
        .connect(
            &admin(),
            kek,
            app.id,
            NewConnection {
                base_url: url.to_owned(),
                token: Zeroizing::new(TOKEN.to_owned()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await
        .unwrap();
}

async fn drain(w: &Worker) {
    for _ in 0..20 {
        if w.run_once().await.unwrap() == 0 {
            return;
        }
    }
    panic!("the outbox did not drain");
}

async fn events(s: &Store, action: &str, target: String) -> Vec<latchkey_idp::audit::AuditEvent> {
    s.audit()
        .list(&AuditFilter {
            action: Some(action.into()),
            target_id: Some(target),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Runs `sql` on a second handle on the test's database.
async fn raw(t: &TestStore, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// The delivery deactivated alice, then its rows could not be deleted: the event went
/// with them, and the retry (which deactivates again) records the removal once.
async fn a_removal_whose_rows_stay_is_recorded_once(t: TestStore) {
    let clock = ManualClock::new(T0);
    let s = &t.store.clone().with_clock(clock.clone());
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = wiki(s, &kek, &url).await;
    let w = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    drain(&w).await;
    assert_eq!(fake.active("alice"), Some(true));

    s.users().suspend(&admin(), alice.id).await.unwrap();
    let postgres = t.url.starts_with("postgres");
    if postgres {
        raw(
            &t,
            "CREATE FUNCTION hold_outbox() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'outbox held'; END $$; \
             CREATE TRIGGER hold_outbox BEFORE DELETE ON scim_outbox \
             FOR EACH ROW EXECUTE FUNCTION hold_outbox();",
        )
        .await;
    } else {
        raw(
            &t,
            "CREATE TRIGGER hold_outbox BEFORE DELETE ON scim_outbox \
             BEGIN SELECT RAISE(ABORT, 'outbox held'); END;",
        )
        .await;
    }
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(fake.active("alice"), Some(false), "deactivated there");
    assert_eq!(w.stats().failed(), 1, "but its rows stayed");
    assert!(
        events(s, "scim.user_remove", alice.id.to_string())
            .await
            .is_empty(),
        "no event without the rows' removal"
    );
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(status.queue_length, 1);

    raw(
        &t,
        if postgres {
            "DROP TRIGGER hold_outbox ON scim_outbox; DROP FUNCTION hold_outbox();"
        } else {
            "DROP TRIGGER hold_outbox;"
        },
    )
    .await;
    clock.advance(Duration::minutes(1));
    drain(&w).await;
    let removals = events(s, "scim.user_remove", alice.id.to_string()).await;
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert_eq!(removals[0].after.as_ref().unwrap()["done"], "deactivated");
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(status.queue_length, 0);
}

/// Bob's suspension cannot reach the wiki: disconnecting would leave him active there with
/// no trace, so it is refused (nothing written); a pending update does not hold it up; a
/// forced disconnect names him in its event.
async fn a_disconnect_drops_pending_removals_only_when_forced(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = wiki(s, &kek, &url).await;
    let w = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    let bob = user(s, "bob").await;
    join(s, staff.id, bob.id).await;
    drain(&w).await;
    assert_eq!(fake.active("bob"), Some(true));

    fake.down.store(true, Ordering::SeqCst);
    s.users().suspend(&admin(), bob.id).await.unwrap();
    let carol = user(s, "carol").await;
    join(s, staff.id, carol.id).await;
    assert_eq!(w.run_once().await.unwrap(), 2, "both tried, both failed");

    let refused = s
        .provisioning()
        .disconnect(&admin(), app.id, false)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ProvisioningError::RemovalsPending { users: 1, .. }),
        "{refused:?}"
    );
    assert_eq!(refused.code().as_str(), "scim_removals_pending");
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(status.queue_length, 2, "nothing dropped");
    assert!(
        events(s, "app.scim_disconnect", app.id.to_string())
            .await
            .is_empty()
    );

    // Resumed, bob's row is an update again: nothing in the way.
    s.users().resume(&admin(), bob.id).await.unwrap();
    let dropped = s
        .provisioning()
        .disconnect(&admin(), app.id, false)
        .await
        .unwrap();
    assert_eq!(dropped.users, 0);
    assert!(s.provisioning().status(app.id).await.unwrap().is_none());
    let plain = events(s, "app.scim_disconnect", app.id.to_string()).await;
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].after, None);

    // Again with his removal waiting (and carol's): forced, it is dropped and named.
    connect(s, &kek, &app, &url).await;
    s.users().suspend(&admin(), bob.id).await.unwrap();
    s.users().suspend(&admin(), carol.id).await.unwrap();
    let dropped = s
        .provisioning()
        .disconnect(&admin(), app.id, true)
        .await
        .unwrap();
    assert_eq!(dropped.users, 2);
    let named: Vec<&str> = dropped.named.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(named, ["bob", "carol"]);
    let forced = events(s, "app.scim_disconnect", app.id.to_string()).await;
    assert_eq!(forced.len(), 2);
    let after = forced[0].after.as_ref().expect("the forced one names them");
    assert_eq!(after["dropped_removals"], 2);
    assert_eq!(after["users"][0]["name"], "bob");
    assert_eq!(after["users"][0]["id"], bob.id.to_string());
    assert_eq!(after["users"][1]["name"], "carol");
    assert!(s.provisioning().status(app.id).await.unwrap().is_none());
}

/// What still waits for a user, per application: a removal with its tries and last error,
/// an update; nothing once delivered.
async fn pending_changes_are_shown_per_user(t: TestStore) {
    let clock = ManualClock::new(T0);
    let s = &t.store.clone().with_clock(clock.clone());
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = wiki(s, &kek, &url).await;
    let w = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    let bob = user(s, "bob").await;
    let carol = user(s, "carol").await;
    join(s, staff.id, bob.id).await;
    drain(&w).await;
    assert!(
        s.provisioning()
            .pending_for_user(bob.id)
            .await
            .unwrap()
            .is_empty()
    );

    fake.down.store(true, Ordering::SeqCst);
    s.users().suspend(&admin(), bob.id).await.unwrap();
    clock.advance(Duration::seconds(30));
    join(s, staff.id, carol.id).await;
    assert_eq!(w.run_once().await.unwrap(), 2);
    clock.advance(Duration::minutes(5));
    assert_eq!(w.run_once().await.unwrap(), 2);

    let pending = s.provisioning().pending_for_user(bob.id).await.unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    let p = &pending[0];
    assert_eq!(p.app_id, app.id);
    assert_eq!(p.app, "https://wiki.example.org");
    assert_eq!(p.kind, PendingKind::Removal);
    assert_eq!(p.since, T0);
    assert_eq!(p.attempts, 2);
    assert!(p.last_error.as_deref().unwrap().contains("503"), "{p:?}");
    assert!(p.next_attempt_at > T0 + Duration::minutes(5));
    let theirs = s.provisioning().pending_for_user(carol.id).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].kind, PendingKind::Update);
    assert_eq!(theirs[0].since, T0 + Duration::seconds(30));

    fake.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::hours(1));
    drain(&w).await;
    assert!(
        s.provisioning()
            .pending_for_user(bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.provisioning()
            .pending_for_user(carol.id)
            .await
            .unwrap()
            .is_empty()
    );
}
