//! The SCIM client's domain: outbox rows written in the change's transaction (and none for a
//! refused change), delivery through the worker to a small in-memory SCIM server, retries
//! with capped exponential backoff on an injected clock, idempotency (a user already there
//! is adopted; a removal of a missing user is done), one delivery per row when two workers
//! race (the PostgreSQL variant is the many-node case), and reconciliation.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use latchkey_idp::apps::NewApplication;
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::provisioning::worker::{Worker, WorkerSettings};
use latchkey_idp::provisioning::{NewConnection, OnRemove, sync};
use latchkey_idp::{ManualClock, Store};
use serde_json::json;
use time::{Duration, macros::datetime};
use zeroize::Zeroizing;

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;
use crate::support::fake_scim::{Fake, TOKEN};

on_both_backends!(
    outbox_rows_come_with_the_change_and_not_without_it,
    worker_follows_assign_update_suspend_unassign_and_delete,
    failures_back_off_on_the_clock_and_then_deliver,
    existing_users_are_adopted_and_missing_ones_need_no_removal,
    racing_workers_deliver_each_row_once,
    reconciliation_shows_and_applies_the_difference,
    connection_token_is_sealed_and_never_shown,
    scheduled_reconciliation_takes_one_slot_per_period,
    a_renamed_group_is_renamed_at_the_application,
    accounts_under_the_released_user_name_are_taken_away,
    a_deleted_users_account_keyed_on_their_id_is_taken_away
);

const T0: time::OffsetDateTime = datetime!(2026-12-05 12:00:00 UTC);

fn kek() -> Arc<Kek> {
    Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap())
}

/// An application assigned to `staff`, connected to `url`.
async fn connected_app(
    s: &Store,
    kek: &Kek,
    url: &str,
    on_remove: OnRemove,
) -> (
    latchkey_idp::apps::Application,
    latchkey_idp::directory::Group,
) {
    connected_app_releasing(s, kek, url, on_remove, &[]).await
}

/// [`connected_app`] whose release is `release` (mappings such as `userName=email`).
async fn connected_app_releasing(
    s: &Store,
    kek: &Kek,
    url: &str,
    on_remove: OnRemove,
    release: &[&str],
) -> (
    latchkey_idp::apps::Application,
    latchkey_idp::directory::Group,
) {
    let mut new = NewApplication::new(
        "https://wiki.example.org",
        "Wiki",
        "https://wiki.example.org/acs",
    );
    new.attributes = release.iter().map(|m| m.parse().unwrap()).collect();
    let app = s.apps().create(&admin(), new).await.unwrap();
    let staff = group(s, "staff").await;
    s.apps().assign(&admin(), app.id, staff.id).await.unwrap();
    connect(s, kek, app.id, url, on_remove).await;
    (app, staff)
}

async fn connect(
    s: &Store,
    kek: &Kek,
    app: latchkey_idp::ids::AppId,
    url: &str,
    on_remove: OnRemove,
) {
    s.provisioning()
        .connect(
            &admin(),
            kek,
            app,
            NewConnection {
                base_url: url.to_owned(),
                token: Zeroizing::new(TOKEN.to_owned()),
                on_remove,
            },
        )
        .await
        .unwrap();
}

async fn queued(s: &Store, app: latchkey_idp::ids::AppId) -> u64 {
    s.provisioning()
        .status(app)
        .await
        .unwrap()
        .unwrap()
        .queue_length
}

fn worker(s: &Store, kek: &Arc<Kek>) -> Worker {
    Worker::new(s.clone(), Arc::clone(kek), WorkerSettings::default())
}

/// Runs the worker until it finds nothing due.
async fn drain(w: &Worker) {
    for _ in 0..20 {
        if w.run_once().await.unwrap() == 0 {
            return;
        }
    }
    panic!("the outbox did not drain");
}

async fn outbox_rows_come_with_the_change_and_not_without_it(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    // Nothing connected: no rows, whatever changes.
    let alice = user(s, "alice").await;
    let (app, staff) =
        connected_app(s, &kek, "https://scim.example.org/v2", OnRemove::Deactivate).await;
    assert_eq!(queued(s, app.id).await, 0, "nobody is assigned yet");
    join(s, staff.id, alice.id).await;
    assert_eq!(
        queued(s, app.id).await,
        1,
        "membership gives access: one row"
    );
    // A user outside the application's groups changes: no row for it.
    let bob = user(s, "bob").await;
    s.users()
        .update(
            &admin(),
            bob.id,
            latchkey_idp::directory::UserPatch {
                display_name: Some(Some("Bob".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(queued(s, app.id).await, 1);
    // Refused changes write nothing: a taken username, a membership that does not exist,
    // an assignment that already exists.
    let refused = s
        .users()
        .update(
            &admin(),
            alice.id,
            latchkey_idp::directory::UserPatch {
                username: Some("bob".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(refused.is_err());
    let other = group(s, "other").await;
    assert!(
        s.groups()
            .remove_member(&admin(), other.id, alice.id)
            .await
            .is_err()
    );
    assert!(s.apps().assign(&admin(), app.id, staff.id).await.is_err());
    assert_eq!(queued(s, app.id).await, 1, "refused changes wrote no row");
    // Each accepted change of alice writes a row.
    s.users().suspend(&admin(), alice.id).await.unwrap();
    s.users().resume(&admin(), alice.id).await.unwrap();
    s.groups()
        .remove_member(&admin(), staff.id, alice.id)
        .await
        .unwrap();
    assert_eq!(queued(s, app.id).await, 4);
    // After removal she is neither assigned nor known there: her changes write nothing.
    s.users().suspend(&admin(), alice.id).await.unwrap();
    assert_eq!(queued(s, app.id).await, 4);
}

async fn worker_follows_assign_update_suspend_unassign_and_delete(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    let w = worker(s, &kek);
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    drain(&w).await;
    let there = fake.by_name("alice").unwrap();
    assert_eq!(there["active"], true);
    assert_eq!(there["externalId"], alice.id.to_string());
    assert_eq!(there["emails"][0]["value"], "alice@example.org");
    assert_eq!(queued(s, app.id).await, 0);

    s.users()
        .update(
            &admin(),
            alice.id,
            latchkey_idp::directory::UserPatch {
                display_name: Some(Some("Alice L".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    drain(&w).await;
    assert_eq!(fake.by_name("alice").unwrap()["displayName"], "Alice L");

    s.users().suspend(&admin(), alice.id).await.unwrap();
    drain(&w).await;
    assert_eq!(fake.active("alice"), Some(false));
    s.users().resume(&admin(), alice.id).await.unwrap();
    drain(&w).await;
    assert_eq!(fake.active("alice"), Some(true));

    s.apps().unassign(&admin(), app.id, staff.id).await.unwrap();
    drain(&w).await;
    assert_eq!(fake.active("alice"), Some(false));
    s.apps().assign(&admin(), app.id, staff.id).await.unwrap();
    drain(&w).await;
    assert_eq!(fake.active("alice"), Some(true));
    assert_eq!(
        fake.creates.load(Ordering::SeqCst),
        1,
        "one account throughout"
    );

    // With delete as the policy, deleting the user deletes the account there.
    connect(s, &kek, app.id, &url, OnRemove::Delete).await;
    drain(&w).await;
    s.users().delete(&admin(), alice.id).await.unwrap();
    drain(&w).await;
    assert!(fake.by_name("alice").is_none());
    let stats = w.stats();
    assert!(stats.delivered() >= 7 && stats.failed() == 0);
}

async fn failures_back_off_on_the_clock_and_then_deliver(t: TestStore) {
    let clock = ManualClock::new(T0);
    let s = &t.store.clone().with_clock(clock.clone());
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    let w = worker(s, &kek);
    fake.down.store(true, Ordering::SeqCst);
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    // The directory change went through although the application is down.
    assert!(
        s.groups()
            .members(staff.id)
            .await
            .unwrap()
            .iter()
            .any(|u| u.id == alice.id)
    );

    assert_eq!(w.run_once().await.unwrap(), 1, "tried once");
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert!(
        status.last_error.as_deref().unwrap().contains("503"),
        "{status:?}"
    );
    assert_eq!(status.last_success_at, None);
    assert_eq!(status.queue_length, 1, "kept for a retry");
    // Not due again before 2 s, then 4 s, then 8 s: the delays double.
    for delay in [2, 4, 8] {
        assert_eq!(w.run_once().await.unwrap(), 0, "not due yet ({delay} s)");
        clock.advance(Duration::seconds(delay) - Duration::milliseconds(1));
        assert_eq!(
            w.run_once().await.unwrap(),
            0,
            "not due a moment early ({delay} s)"
        );
        clock.advance(Duration::milliseconds(1));
        assert_eq!(w.run_once().await.unwrap(), 1, "due after {delay} s");
    }
    // Capped: far into the retries the delay stops growing.
    for _ in 0..12 {
        clock.advance(Duration::hours(1));
        assert_eq!(w.run_once().await.unwrap(), 1);
    }
    assert_eq!(w.run_once().await.unwrap(), 0);
    clock.advance(WorkerSettings::default().backoff_max);
    fake.down.store(false, Ordering::SeqCst);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(fake.active("alice"), Some(true));
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(status.queue_length, 0);
    assert_eq!(status.last_success_at, Some(clock_now(&clock)));
    assert_eq!(w.stats().failed(), 16);
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    latchkey_idp::Clock::now(clock)
}

async fn existing_users_are_adopted_and_missing_ones_need_no_removal(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    // The application already has alice (made there by hand, inactive).
    let id = "pre-existing".to_owned();
    fake.users.lock().unwrap().insert(
        id.clone(),
        json!({"id": id, "userName": "alice", "active": false}),
    );
    let (app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    let w = worker(s, &kek);
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    drain(&w).await;
    assert_eq!(
        fake.creates.load(Ordering::SeqCst),
        0,
        "adopted, not created"
    );
    let there = fake.by_name("alice").unwrap();
    assert_eq!(there["id"], "pre-existing");
    assert_eq!(there["active"], true);
    // Removed there behind our back: a removal of her is done without an error.
    fake.users.lock().unwrap().clear();
    s.groups()
        .remove_member(&admin(), staff.id, alice.id)
        .await
        .unwrap();
    drain(&w).await;
    assert!(fake.by_name("alice").is_none());
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!((status.queue_length, status.last_error), (0, None));
}

async fn racing_workers_deliver_each_row_once(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (_app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    for i in 0..40 {
        let u = user(s, &format!("user{i:02}")).await;
        join(s, staff.id, u.id).await;
    }
    let settings = WorkerSettings {
        batch: 7,
        ..WorkerSettings::default()
    };
    let workers: Vec<Worker> = (0..3)
        .map(|_| Worker::new(s.clone(), Arc::clone(&kek), settings))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for w in workers {
        tasks.spawn(async move {
            let mut taken = 0;
            for _ in 0..30 {
                taken += w.run_once().await.unwrap();
            }
            taken
        });
    }
    let mut taken = 0;
    while let Some(n) = tasks.join_next().await {
        taken += n.unwrap();
    }
    assert_eq!(taken, 40, "every row taken by exactly one worker");
    assert_eq!(fake.creates.load(Ordering::SeqCst), 40);
    assert_eq!(fake.users.lock().unwrap().len(), 40);
}

async fn reconciliation_shows_and_applies_the_difference(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    let w = worker(s, &kek);
    for name in ["alice", "bob", "carol"] {
        let u = user(s, name).await;
        join(s, staff.id, u.id).await;
    }
    drain(&w).await;
    // Drift behind the IdP's back: bob renamed there, carol deleted there, dave (a
    // directory user outside the app's groups) made active there, and a local account.
    let dave = user(s, "dave").await;
    {
        let mut users = fake.users.lock().unwrap();
        let bob = users.values_mut().find(|u| u["userName"] == "bob").unwrap();
        bob["displayName"] = json!("Someone Else");
        let carol = users
            .iter()
            .find(|(_, u)| u["userName"] == "carol")
            .map(|(k, _)| k.clone())
            .unwrap();
        users.remove(&carol);
        users.insert(
            "d".into(),
            json!({"id": "d", "userName": "dave", "active": true}),
        );
        users.insert(
            "l".into(),
            json!({"id": "l", "userName": "wiki-admin", "active": true}),
        );
    }
    let target = s
        .provisioning()
        .target(&kek, app.id, &Default::default())
        .await
        .unwrap();
    let plan = sync::run(s, &target, &app, true).await.unwrap();
    let mut found: Vec<(&str, &str)> = plan
        .differences
        .iter()
        .map(|d| (d.action, d.user_name.as_str()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [("create", "carol"), ("remove", "dave"), ("update", "bob")]
    );
    assert_eq!((plan.unchanged, plan.foreign, plan.remote_users), (1, 1, 4));
    assert_eq!(
        fake.by_name("bob").unwrap()["displayName"],
        "Someone Else",
        "a dry run sends nothing"
    );

    let applied = sync::run(s, &target, &app, false).await.unwrap();
    assert!(
        applied.differences.iter().all(|d| d.error.is_none()),
        "{applied:?}"
    );
    assert_eq!(fake.by_name("bob").unwrap()["displayName"], "bob");
    assert_eq!(fake.active("carol"), Some(true));
    assert_eq!(fake.active("dave"), Some(false));
    assert_eq!(
        fake.active("wiki-admin"),
        Some(true),
        "a local account is left alone"
    );
    let again = sync::run(s, &target, &app, true).await.unwrap();
    assert!(again.differences.is_empty(), "{again:?}");
    assert!(
        s.provisioning()
            .status(app.id)
            .await
            .unwrap()
            .unwrap()
            .last_sync_at
            .is_some()
    );
    let _ = dave;
}

async fn connection_token_is_sealed_and_never_shown(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (app, _) = connected_app(s, &kek, "https://scim.example.org/v2/", OnRemove::Delete).await;
    let status = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(status.base_url, "https://scim.example.org/v2");
    // Its JSON is the API's (ScimStatusDto, from these fields); what it holds is all here.
    let shown = format!("{status:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    let export = super::snapshot(s).await;
    assert!(!export.0.to_string().contains(TOKEN));
    let audit = s.audit().list(&Default::default()).await.unwrap();
    let connect = audit
        .iter()
        .find(|e| e.action == "app.scim_connect")
        .unwrap();
    assert!(!serde_json::to_string(connect).unwrap().contains(TOKEN));
    // Another KEK cannot open it.
    let other = self::kek();
    assert!(
        s.provisioning()
            .target(&other, app.id, &Default::default())
            .await
            .is_err()
    );
    assert!(
        s.provisioning()
            .target(&kek, app.id, &Default::default())
            .await
            .is_ok()
    );
    // An http URL to a non-loopback host is refused, and nothing changes.
    let refused = s
        .provisioning()
        .connect(
            &admin(),
            &kek,
            app.id,
            NewConnection {
                base_url: "http://scim.example.org/v2".into(),
                token: Zeroizing::new(TOKEN.into()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await;
    assert!(refused.is_err());
    let after = s.provisioning().status(app.id).await.unwrap().unwrap();
    assert_eq!(after.on_remove, OnRemove::Delete);
}

async fn scheduled_reconciliation_takes_one_slot_per_period(t: TestStore) {
    let clock = ManualClock::new(T0);
    let s = &t.store.clone().with_clock(clock.clone());
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (_app, staff) = connected_app(s, &kek, &url, OnRemove::Deactivate).await;
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    let every = Duration::hours(1);
    let settings = Default::default();
    // Two nodes at the same moment: one runs, the other finds the slot taken.
    let (a, b) = tokio::join!(
        sync::scheduled_round(s, &kek, &settings, every),
        sync::scheduled_round(s, &kek, &settings, every)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(fake.active("alice"), Some(true), "the run created her");
    clock.advance(Duration::minutes(59));
    assert_eq!(
        sync::scheduled_round(s, &kek, &settings, every)
            .await
            .unwrap(),
        0
    );
    clock.advance(Duration::minutes(1));
    fake.users.lock().unwrap().clear();
    assert_eq!(
        sync::scheduled_round(s, &kek, &settings, every)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fake.active("alice"),
        Some(true),
        "the next period's run made her again"
    );
}

/// What the worker asks of an application for a member of a renamed group: the group by
/// its current name, and each former name (most recent first, through the application's
/// release) as a group to rename there; a name the group has again is not a former one.
async fn a_renamed_group_is_renamed_at_the_application(t: TestStore) {
    use latchkey_idp::provisioning::worker::{Want, WantedGroups, wanted};
    let clock = ManualClock::new(T0);
    let s = &t.store.clone().with_clock(clock.clone());
    let mut new = NewApplication::new(
        "https://wiki.example.org",
        "Wiki",
        "https://wiki.example.org/acs",
    );
    new.attributes = vec!["groups=groups|strip-prefix:wiki-".parse().unwrap()];
    let app = s.apps().create(&admin(), new).await.unwrap();
    let team = group(s, "wiki-team").await;
    s.apps().assign(&admin(), app.id, team.id).await.unwrap();
    let alice = user(s, "alice").await;
    join(s, team.id, alice.id).await;
    let groups_of = |want: Want| match want {
        Want::Present(_, Some(groups)) => groups,
        other => panic!("{other:?}"),
    };
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        groups_of(wanted(s, &app, alice.id).await.unwrap()),
        WantedGroups {
            names: vec!["team".into()],
            renamed: vec![],
        }
    );
    clock.advance(Duration::seconds(1));
    s.groups()
        .rename(&admin(), team.id, "wiki-squad")
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    s.groups()
        .rename(&admin(), team.id, "wiki-crew")
        .await
        .unwrap();
    assert_eq!(
        groups_of(wanted(s, &app, alice.id).await.unwrap()),
        WantedGroups {
            names: vec!["crew".into()],
            renamed: vec![pair("squad", "crew"), pair("team", "crew")],
        }
    );
    clock.advance(Duration::seconds(1));
    s.groups()
        .rename(&admin(), team.id, "wiki-team")
        .await
        .unwrap();
    assert_eq!(
        groups_of(wanted(s, &app, alice.id).await.unwrap()).renamed,
        [pair("crew", "team"), pair("squad", "team")]
    );
    // A taken name is refused and remembers nothing.
    let other = group(s, "wiki-other").await;
    assert!(
        s.groups()
            .rename(&admin(), other.id, "WIKI-TEAM")
            .await
            .is_err()
    );
    join(s, other.id, alice.id).await;
    let want = groups_of(wanted(s, &app, alice.id).await.unwrap());
    assert_eq!(want.names, ["other", "team"]);
    assert_eq!(want.renamed.len(), 2);
    // Only the last eight names are kept.
    for i in 0..10 {
        clock.advance(Duration::seconds(1));
        s.groups()
            .rename(&admin(), team.id, &format!("wiki-t{i}"))
            .await
            .unwrap();
    }
    let renamed = groups_of(wanted(s, &app, alice.id).await.unwrap()).renamed;
    let former: Vec<&str> = renamed.iter().map(|(old, _)| old.as_str()).collect();
    assert_eq!(former, ["t8", "t7", "t6", "t5", "t4", "t3", "t2", "t1"]);
}

/// An application keyed on e-mail addresses (its release sends `userName` from `email`) that
/// had alice's, bob's and carol's accounts from SAML logins before it was connected: alice,
/// suspended before her first delivery, and carol, deleted before hers, are deactivated there
/// by the worker, and bob, never admitted, by a reconciliation: each found under the address,
/// not the username. An address no directory user has is left alone.
async fn accounts_under_the_released_user_name_are_taken_away(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    for (id, name) in [
        ("a", "alice@example.org"),
        ("b", "bob@example.org"),
        ("c", "carol@example.org"),
        ("x", "someone@else.example"),
    ] {
        fake.users.lock().unwrap().insert(
            id.into(),
            json!({"id": id, "userName": name, "active": true}),
        );
    }
    let (app, staff) =
        connected_app_releasing(s, &kek, &url, OnRemove::Deactivate, &["userName=email"]).await;
    let w = worker(s, &kek);
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    s.users().suspend(&admin(), alice.id).await.unwrap();
    user(s, "bob").await;
    let carol = user(s, "carol").await;
    join(s, staff.id, carol.id).await;
    s.users().delete(&admin(), carol.id).await.unwrap();
    drain(&w).await;
    assert_eq!(fake.active("alice@example.org"), Some(false));
    assert_eq!(
        fake.active("carol@example.org"),
        Some(false),
        "found by the address her rows kept"
    );
    assert_eq!(fake.creates.load(Ordering::SeqCst), 0);
    assert_eq!(
        fake.active("bob@example.org"),
        Some(true),
        "not ours to change yet"
    );

    let target = s
        .provisioning()
        .target(&kek, app.id, &Default::default())
        .await
        .unwrap();
    let plan = sync::run(s, &target, &app, true).await.unwrap();
    let found: Vec<(&str, &str)> = plan
        .differences
        .iter()
        .map(|d| (d.action, d.user_name.as_str()))
        .collect();
    assert_eq!(found, [("remove", "bob@example.org")]);
    assert_eq!(plan.foreign, 1);
    let applied = sync::run(s, &target, &app, false).await.unwrap();
    assert!(
        applied.differences.iter().all(|d| d.error.is_none()),
        "{applied:?}"
    );
    assert_eq!(fake.active("bob@example.org"), Some(false));
    assert_eq!(fake.active("someone@else.example"), Some(true));
}

/// An application keyed on the IdP's user IDs (`userName=id`) that had dave's account before
/// it was connected: dave, deleted before his first delivery, is deactivated there, found
/// under his ID (which the directory no longer has, but his outbox rows do).
async fn a_deleted_users_account_keyed_on_their_id_is_taken_away(t: TestStore) {
    let s = &t.store;
    let kek = kek();
    let (fake, url) = Fake::start().await;
    let (_, staff) =
        connected_app_releasing(s, &kek, &url, OnRemove::Deactivate, &["userName=id"]).await;
    let dave = user(s, "dave").await;
    let id = dave.id.to_string();
    fake.users.lock().unwrap().insert(
        "d".into(),
        json!({"id": "d", "userName": id, "active": true}),
    );
    join(s, staff.id, dave.id).await;
    s.users().delete(&admin(), dave.id).await.unwrap();
    drain(&worker(s, &kek)).await;
    assert_eq!(fake.active(&id), Some(false));
    assert_eq!(fake.creates.load(Ordering::SeqCst), 0);
}
