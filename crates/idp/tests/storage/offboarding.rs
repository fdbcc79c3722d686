//! Taking access away: what a suspension, a group's deletion and the SCIM client leave
//! behind. A suspension ends the user's sessions in its own transaction, by every path (so a
//! resume brings none back); a deleted group's members are brought in line at every
//! application they are at (it may be a group that application is sent); a removal's outbox
//! row outlives a delivery that missed it; each removal at an application is audited.

use std::sync::Arc;

use latchkey_idp::apps::NewApplication;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::directory::{UserPatch, UserStatus};
use latchkey_idp::keys::{Kek, KekSource};
use latchkey_idp::provisioning::worker::{Worker, WorkerSettings};
use latchkey_idp::provisioning::{NewConnection, OnRemove};
use latchkey_idp::session::Sessions;
use latchkey_idp::sso::grant;
use latchkey_idp::{Actor, Store};
use time::Duration;
use zeroize::Zeroizing;

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::TestStore;
use crate::support::fake_scim::{Fake, TOKEN};

on_both_backends!(
    a_suspension_ends_sessions_on_every_path,
    a_deleted_group_is_taken_away_where_it_was_sent,
    a_removal_committed_during_a_delivery_is_not_lost,
    removals_at_applications_are_audited_per_user
);

const IDLE: Duration = Duration::minutes(30);
const LIFETIME: Duration = Duration::hours(8);

async fn a_suspension_ends_sessions_on_every_path(t: TestStore) {
    let s: &Store = &t.store;
    let wiki = s
        .apps()
        .create(
            &admin(),
            NewApplication::new(
                "https://wiki.example.org",
                "wiki",
                "https://wiki.example.org/acs",
            ),
        )
        .await
        .unwrap();
    let staff = group(s, "staff").await;
    s.apps().assign(&admin(), wiki.id, staff.id).await.unwrap();
    let sessions = Sessions::new(s);
    // The console's and the API's suspension (a status in an update), and the CLI's.
    for name in ["update", "suspend"] {
        let ann = user(s, &format!("ann-{name}")).await;
        join(s, staff.id, ann.id).await;
        let (one, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
        let (two, _) = sessions.create(&ann, s.now(), LIFETIME).await.unwrap();
        assert!(
            grant::resume(s, one.expose(), s.now(), IDLE, wiki.id)
                .await
                .unwrap()
                .is_some()
        );

        if name == "update" {
            let patch = UserPatch {
                status: Some(UserStatus::Suspended),
                ..Default::default()
            };
            s.users()
                .update(&Actor::cli("api"), ann.id, patch)
                .await
                .unwrap();
        } else {
            s.users().suspend(&Actor::cli("cli"), ann.id).await.unwrap();
        }
        // Gone from the store at once, not only when next presented.
        assert!(
            sessions.of_user(ann.id, s.now()).await.unwrap().is_empty(),
            "{name}"
        );
        s.users().resume(&admin(), ann.id).await.unwrap();
        // Nothing made before the suspension counts again after the resume.
        for token in [&one, &two] {
            assert!(
                grant::resume(s, token.expose(), s.now(), IDLE, wiki.id)
                    .await
                    .unwrap()
                    .is_none(),
                "{name}"
            );
        }
        // The admin can see it, per user.
        let ended = s
            .audit()
            .list(&AuditFilter {
                action: Some("user.sessions_end".into()),
                target_id: Some(ann.id.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ended.len(), 1, "{name}");
        let after = ended[0].after.as_ref().unwrap();
        assert_eq!(after["reason"], "suspend");
        assert_eq!(after["sessions_ended"], 2);
    }
}

async fn a_deleted_group_is_taken_away_where_it_was_sent(t: TestStore) {
    let s = &t.store;
    let kek = Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap());
    // The wiki is opened by `staff` and is sent the user's groups: `wiki-admins` is a role
    // there, though it opens nothing by itself.
    let mut new = NewApplication::new(
        "https://wiki.example.org",
        "Wiki",
        "https://wiki.example.org/acs",
    );
    new.attributes = vec!["groups=groups".parse().unwrap()];
    let wiki = s.apps().create(&admin(), new).await.unwrap();
    let staff = group(s, "staff").await;
    let admins = group(s, "wiki-admins").await;
    s.apps().assign(&admin(), wiki.id, staff.id).await.unwrap();
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    join(s, admins.id, alice.id).await;
    s.provisioning()
        .connect(
            &admin(),
            &kek,
            wiki.id,
            NewConnection {
                base_url: "https://scim.example.org/v2".into(),
                token: Zeroizing::new(TOKEN.to_owned()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await
        .unwrap();
    let queued = || async {
        s.provisioning()
            .status(wiki.id)
            .await
            .unwrap()
            .unwrap()
            .queue_length
    };
    let before = queued().await;
    s.groups().delete(&admin(), admins.id).await.unwrap();
    assert_eq!(
        queued().await,
        before + 1,
        "alice must leave wiki-admins at the wiki"
    );
}

/// A removal whose transaction drew its outbox number before another change of the same
/// user, and committed while that one's delivery was in flight (PostgreSQL draws numbers
/// outside transactions; SQLite's one writer cannot interleave them): the delivery read the
/// directory before the removal, so the removal's row must outlive it.
async fn a_removal_committed_during_a_delivery_is_not_lost(t: TestStore) {
    if !t.url.starts_with("postgres") {
        return;
    }
    let s = &t.store;
    let kek = Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap());
    let (fake, url) = Fake::start().await;
    let wiki = s
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
    s.apps().assign(&admin(), wiki.id, staff.id).await.unwrap();
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    s.provisioning()
        .connect(
            &admin(),
            &kek,
            wiki.id,
            NewConnection {
                base_url: url,
                token: Zeroizing::new(TOKEN.to_owned()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await
        .unwrap();
    let worker = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    while worker.run_once().await.unwrap() > 0 {}
    assert_eq!(fake.active("alice"), Some(true));

    // The removal, as `delete_member` writes it, not yet committed.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.url).await.unwrap();
    let mut removal = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO scim_outbox (app_id, user_id, user_name, reason, created_at, \
         next_attempt_at) VALUES ($1, $2, 'alice', 'group.member_remove', $3, $3)",
    )
    .bind(wiki.id.to_string())
    .bind(alice.id.to_string())
    .bind("2026-01-01T00:00:00.000000Z")
    .execute(&mut *removal)
    .await
    .unwrap();
    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(staff.id.to_string())
        .bind(alice.id.to_string())
        .execute(&mut *removal)
        .await
        .unwrap();
    // A later change of alice, committed first.
    let patch = UserPatch {
        display_name: Some(Some("Alice B".into())),
        ..Default::default()
    };
    s.users().update(&admin(), alice.id, patch).await.unwrap();
    // Its delivery reads the directory, then the removal commits while its PUT is in flight.
    let (arrived, at_fake) = tokio::sync::oneshot::channel();
    let (go, held) = tokio::sync::oneshot::channel();
    *fake.hold.lock().unwrap() = Some((arrived, held));
    let run = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run_once().await.unwrap() }
    });
    at_fake.await.unwrap();
    removal.commit().await.unwrap();
    go.send(()).unwrap();
    assert_eq!(run.await.unwrap(), 1);
    assert_eq!(fake.by_name("alice").unwrap()["displayName"], "Alice B");
    let queued = s
        .provisioning()
        .status(wiki.id)
        .await
        .unwrap()
        .unwrap()
        .queue_length;
    assert_eq!(
        queued, 1,
        "the removal's row was taken by a delivery that missed it"
    );
    while worker.run_once().await.unwrap() > 0 {}
    assert_eq!(fake.active("alice"), Some(false));
}

/// The admin's proof, per user: which application the user was taken out of, and how.
async fn removals_at_applications_are_audited_per_user(t: TestStore) {
    let s = &t.store;
    let kek = Arc::new(Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap());
    let (fake, url) = Fake::start().await;
    let wiki = s
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
    s.apps().assign(&admin(), wiki.id, staff.id).await.unwrap();
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    join(s, staff.id, alice.id).await;
    join(s, staff.id, bob.id).await;
    s.provisioning()
        .connect(
            &admin(),
            &kek,
            wiki.id,
            NewConnection {
                base_url: url,
                token: Zeroizing::new(TOKEN.to_owned()),
                on_remove: OnRemove::Deactivate,
            },
        )
        .await
        .unwrap();
    let worker = Worker::new(s.clone(), Arc::clone(&kek), WorkerSettings::default());
    while worker.run_once().await.unwrap() > 0 {}
    let removals = |id: latchkey_idp::ids::UserId| async move {
        s.audit()
            .list(&AuditFilter {
                action: Some("scim.user_remove".into()),
                user_id: Some(id.to_string()),
                ..Default::default()
            })
            .await
            .unwrap()
    };
    assert!(
        removals(alice.id).await.is_empty(),
        "a creation is no removal"
    );

    s.users().suspend(&admin(), alice.id).await.unwrap();
    s.users().delete(&admin(), bob.id).await.unwrap();
    while worker.run_once().await.unwrap() > 0 {}
    assert_eq!(fake.active("alice"), Some(false));
    assert_eq!(fake.active("bob"), Some(false));
    for (who, id) in [("alice", alice.id), ("bob", bob.id)] {
        let events = removals(id).await;
        assert_eq!(events.len(), 1, "{who}: {events:?}");
        assert_eq!(events[0].actor, "system");
        let after = events[0].after.as_ref().unwrap();
        assert_eq!(after["app"], "https://wiki.example.org", "{who}");
        assert_eq!(after["done"], "deactivated", "{who}");
    }
}
