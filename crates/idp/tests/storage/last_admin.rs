//! The console is never left without an active admin: every way of taking the role from the
//! last active user holding it is refused (`last_admin`) with nothing written, the audit log
//! included; with another admin left, each goes. (The races are in `races.rs`.)

use latchkey_idp::audit::AuditFilter;
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{UserPatch, UserStatus};
use latchkey_idp::error::{Error, ErrorCode};
use latchkey_idp::{Store, ids::GroupId, ids::UserId};

use super::{admin, group, join, snapshot, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    the_last_direct_admin_cannot_be_taken_away,
    the_last_admin_through_a_group_cannot_be_taken_away,
    a_suspended_admin_does_not_count,
    with_another_admin_each_change_goes,
    the_forced_revocation_passes_and_says_so,
    a_directory_without_admins_is_not_held,
);

/// The users holding admin and active, by username.
pub(crate) async fn active_admins(s: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for u in s.users().list().await.unwrap() {
        if s.roles().of_user(&u).await.unwrap().has(Role::Admin) {
            out.push(u.username);
        }
    }
    out
}

#[track_caller]
fn last_admin<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(e @ Error::LastAdmin) => assert_eq!(e.code(), ErrorCode::LastAdmin),
        other => panic!("expected last_admin, got {other:?}"),
    }
}

/// Every refusal below writes nothing: not the change, not an audit line.
async fn refused_all(s: &Store, alice: UserId, admins: Option<GroupId>) {
    let before = snapshot(s).await;
    let suspend = UserPatch {
        status: Some(UserStatus::Suspended),
        ..UserPatch::default()
    };
    last_admin(s.users().suspend(&admin(), alice).await);
    last_admin(s.users().update(&admin(), alice, suspend).await);
    last_admin(s.users().delete(&admin(), alice).await);
    let csv = "username,email,status\nalice,alice@example.org,suspended\n";
    last_admin(s.users().import_csv(&admin(), csv.as_bytes()).await);
    match admins {
        None => {
            last_admin(
                s.roles()
                    .revoke(&admin(), Role::Admin, Holder::User(alice))
                    .await,
            );
        }
        Some(g) => {
            last_admin(
                s.roles()
                    .revoke(&admin(), Role::Admin, Holder::Group(g))
                    .await,
            );
            last_admin(s.groups().remove_member(&admin(), g, alice).await);
            last_admin(s.groups().delete(&admin(), g).await);
        }
    }
    assert_eq!(snapshot(s).await, before);
    assert_eq!(active_admins(s).await, ["alice"]);
}

async fn the_last_direct_admin_cannot_be_taken_away(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    user(s, "bob").await;
    s.roles()
        .grant(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    // Other roles of hers, and others' changes, are not held.
    s.roles()
        .grant(&admin(), Role::Auditor, Holder::User(alice.id))
        .await
        .unwrap();
    refused_all(s, alice.id, None).await;
    s.roles()
        .revoke(&admin(), Role::Auditor, Holder::User(alice.id))
        .await
        .unwrap();
}

async fn the_last_admin_through_a_group_cannot_be_taken_away(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let admins = group(s, "admins").await;
    join(s, admins.id, alice.id).await;
    join(s, admins.id, bob.id).await;
    s.roles()
        .grant(&admin(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    // bob, the other member, may leave: alice remains.
    s.groups()
        .remove_member(&admin(), admins.id, bob.id)
        .await
        .unwrap();
    refused_all(s, alice.id, Some(admins.id)).await;
}

async fn a_suspended_admin_does_not_count(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    for who in [alice.id, bob.id] {
        s.roles()
            .grant(&admin(), Role::Admin, Holder::User(who))
            .await
            .unwrap();
    }
    s.users().suspend(&admin(), bob.id).await.unwrap();
    refused_all(s, alice.id, None).await;
    // Back again, bob counts.
    s.users().resume(&admin(), bob.id).await.unwrap();
    s.roles()
        .revoke(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    assert_eq!(active_admins(s).await, ["bob"]);
}

async fn with_another_admin_each_change_goes(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let carol = user(s, "carol").await;
    let admins = group(s, "admins").await;
    join(s, admins.id, bob.id).await;
    join(s, admins.id, carol.id).await;
    s.roles()
        .grant(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    s.roles()
        .grant(&admin(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    s.users().suspend(&admin(), alice.id).await.unwrap();
    s.users().resume(&admin(), alice.id).await.unwrap();
    s.groups()
        .remove_member(&admin(), admins.id, carol.id)
        .await
        .unwrap();
    s.roles()
        .revoke(&admin(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    s.roles()
        .grant(&admin(), Role::Admin, Holder::Group(admins.id))
        .await
        .unwrap();
    s.groups().delete(&admin(), admins.id).await.unwrap();
    assert_eq!(active_admins(s).await, ["alice"]);
    s.roles()
        .grant(&admin(), Role::Admin, Holder::User(bob.id))
        .await
        .unwrap();
    s.users().delete(&admin(), alice.id).await.unwrap();
    assert_eq!(active_admins(s).await, ["bob"]);
    last_admin(s.users().delete(&admin(), bob.id).await);
}

async fn the_forced_revocation_passes_and_says_so(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    s.roles()
        .grant(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    s.roles()
        .revoke_forced(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    assert!(active_admins(s).await.is_empty());
    let events = s
        .audit()
        .list(&AuditFilter {
            target_id: Some(alice.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events[0].action, "role.revoke");
    assert_eq!(events[0].before.as_ref().unwrap()["forced"], true);
    // With none left, nothing more is held (there is nothing to keep) and a grant lets in.
    s.users().suspend(&admin(), alice.id).await.unwrap();
}

async fn a_directory_without_admins_is_not_held(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let staff = group(s, "staff").await;
    join(s, staff.id, alice.id).await;
    s.groups()
        .remove_member(&admin(), staff.id, alice.id)
        .await
        .unwrap();
    s.users().suspend(&admin(), alice.id).await.unwrap();
    s.users().delete(&admin(), alice.id).await.unwrap();
    s.groups().delete(&admin(), staff.id).await.unwrap();
}
