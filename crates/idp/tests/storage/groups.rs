use latchkey_idp::Error;
use latchkey_idp::directory::NewGroup;

use super::{admin, group, join, snapshot, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    membership_round_trip,
    duplicate_group_is_refused,
    unknown_group_is_a_typed_error,
    deleting_a_group_or_user_drops_memberships,
);

async fn membership_round_trip(t: TestStore) {
    let s = &t.store;
    let staff = group(s, "Staff").await;
    let wiki = group(s, "wiki-editors").await;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    join(s, staff.id, bob.id).await;
    join(s, staff.id, alice.id).await;
    join(s, wiki.id, alice.id).await;

    let names = |us: Vec<latchkey_idp::directory::User>| {
        us.into_iter().map(|u| u.username).collect::<Vec<_>>()
    };
    assert_eq!(
        names(s.groups().members(staff.id).await.unwrap()),
        ["alice", "bob"]
    );
    let of_alice: Vec<String> = s
        .groups()
        .of_user(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(of_alice, ["Staff", "wiki-editors"]);
    assert_eq!(s.groups().lookup("STAFF").await.unwrap().id, staff.id);

    let before = snapshot(s).await;
    let err = s
        .groups()
        .add_member(&admin(), staff.id, alice.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyMember { .. }), "{err:?}");
    assert_eq!(snapshot(s).await, before);

    s.groups()
        .remove_member(&admin(), staff.id, alice.id)
        .await
        .unwrap();
    assert_eq!(names(s.groups().members(staff.id).await.unwrap()), ["bob"]);
    let err = s
        .groups()
        .remove_member(&admin(), staff.id, alice.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotMember { .. }), "{err:?}");
}

async fn duplicate_group_is_refused(t: TestStore) {
    let s = &t.store;
    s.groups()
        .create(&admin(), NewGroup::new("Staff"))
        .await
        .unwrap();
    let before = snapshot(s).await;
    let err = s
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateGroup { name } if name == "staff"),
        "{err:?}"
    );
    assert_eq!(snapshot(s).await, before);
}

async fn unknown_group_is_a_typed_error(t: TestStore) {
    let s = &t.store;
    let err = s.groups().lookup("nobody-here").await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownGroup { name } if name == "nobody-here"),
        "{err:?}"
    );
    let alice = user(s, "alice").await;
    let before = snapshot(s).await;
    let missing = latchkey_idp::ids::GroupId::new_random();
    let err = s
        .groups()
        .add_member(&admin(), missing, alice.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownGroup { .. }), "{err:?}");
    assert_eq!(snapshot(s).await, before);
}

async fn deleting_a_group_or_user_drops_memberships(t: TestStore) {
    let s = &t.store;
    let staff = group(s, "staff").await;
    let ops = group(s, "ops").await;
    let alice = user(s, "alice").await;
    join(s, staff.id, alice.id).await;
    join(s, ops.id, alice.id).await;
    s.groups().delete(&admin(), staff.id).await.unwrap();
    let left: Vec<String> = s
        .groups()
        .of_user(alice.id)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(left, ["ops"]);
    let deleted = s
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("group.delete".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        deleted[0].before.as_ref().unwrap()["members"],
        serde_json::json!(["alice"])
    );
    s.users().delete(&admin(), alice.id).await.unwrap();
    let deleted = s
        .audit()
        .list(&latchkey_idp::audit::AuditFilter {
            action: Some("user.delete".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        deleted[0].before.as_ref().unwrap()["groups"],
        serde_json::json!(["ops"])
    );
    assert!(s.groups().members(ops.id).await.unwrap().is_empty());
}
