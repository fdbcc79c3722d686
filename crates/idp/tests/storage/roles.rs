use latchkey_idp::audit::AuditFilter;
use latchkey_idp::console::{Holder, Permission, Role, RoleSet};
use latchkey_idp::tokens::{ApiTokens, TokenScope};
use latchkey_idp::{Actor, Error};

use super::{admin, group, join, snapshot, user};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    roles_come_directly_and_through_groups,
    grants_are_audited_and_refused_twice,
    a_suspended_user_holds_no_role,
    a_person_is_recorded_by_name_in_both_writers,
    a_persons_tokens_work_only_while_they_may_make_them,
);

async fn roles_come_directly_and_through_groups(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let carol = user(s, "carol").await;
    let support = group(s, "support").await;
    join(s, support.id, bob.id).await;
    let roles = s.roles();
    roles
        .grant(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap();
    roles
        .grant(&admin(), Role::Helpdesk, Holder::Group(support.id))
        .await
        .unwrap();
    roles
        .grant(&admin(), Role::Auditor, Holder::User(bob.id))
        .await
        .unwrap();

    assert_eq!(
        roles.of_user(&alice).await.unwrap(),
        RoleSet::new([Role::Admin])
    );
    assert_eq!(
        roles.of_user(&bob).await.unwrap().roles(),
        [Role::Helpdesk, Role::Auditor]
    );
    assert!(roles.of_user(&carol).await.unwrap().is_empty());
    assert_eq!(roles.of_group(support.id).await.unwrap(), [Role::Helpdesk]);
    assert!(roles.check(&bob, Permission::WriteUsers).await.unwrap());
    assert!(roles.check(&bob, Permission::ReadAudit).await.unwrap());
    assert!(!roles.check(&bob, Permission::WriteApps).await.unwrap());
    assert!(
        !roles
            .check(&carol, Permission::ReadDirectory)
            .await
            .unwrap()
    );

    let listed: Vec<(Role, String, String)> = roles
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.role, g.holder_kind, g.holder_name))
        .collect();
    assert_eq!(
        listed,
        [
            (Role::Admin, "user".into(), "alice".into()),
            (Role::Helpdesk, "group".into(), "support".into()),
            (Role::Auditor, "user".into(), "bob".into()),
        ]
    );

    // Leaving the group takes its role away.
    s.groups()
        .remove_member(&admin(), support.id, bob.id)
        .await
        .unwrap();
    assert_eq!(roles.of_user(&bob).await.unwrap().roles(), [Role::Auditor]);
}

async fn grants_are_audited_and_refused_twice(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let roles = s.roles();
    roles
        .grant(&admin(), Role::Helpdesk, Holder::User(alice.id))
        .await
        .unwrap();
    let before = snapshot(s).await;
    let err = roles
        .grant(&admin(), Role::Helpdesk, Holder::User(alice.id))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyGranted { .. }), "{err:?}");
    let err = roles
        .revoke(&admin(), Role::Admin, Holder::User(alice.id))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotGranted { .. }), "{err:?}");
    assert_eq!(snapshot(s).await, before);

    roles
        .revoke(&admin(), Role::Helpdesk, Holder::User(alice.id))
        .await
        .unwrap();
    assert!(roles.of_user(&alice).await.unwrap().is_empty());
    let events = s
        .audit()
        .list(&AuditFilter {
            target_id: Some(alice.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["role.revoke", "role.grant", "user.create"]);
    assert_eq!(events[1].after.as_ref().unwrap()["role"], "helpdesk");
    assert_eq!(events[0].actor, admin().as_str());
    assert_eq!(events[0].actor_name.as_deref(), Some("tester"));
}

async fn a_person_is_recorded_by_name_in_both_writers(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let staff = group(s, "staff").await;
    s.groups()
        .add_member(&latchkey_idp::Actor::person(&alice), staff.id, alice.id)
        .await
        .unwrap();
    let batcher = latchkey_idp::audit::AuditBatcher::start(s.clone());
    batcher
        .record(
            &latchkey_idp::Actor::person(&alice),
            s.now(),
            latchkey_idp::audit::Change {
                action: "login.success",
                target_kind: "user",
                target_id: alice.id.to_string(),
                target_name: alice.username.clone(),
                before: None,
                after: None,
            },
        )
        .await
        .unwrap();
    let events = s
        .audit()
        .list(&AuditFilter {
            user_id: Some(alice.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let by: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor_name.as_deref()))
        .collect();
    assert_eq!(
        by,
        [
            ("login.success", Some("alice")),
            ("group.member_add", Some("alice")),
            ("user.create", Some("tester")),
        ]
    );
}

async fn a_suspended_user_holds_no_role(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    // Another admin, so the console keeps one while alice is suspended.
    let bob = user(s, "bob").await;
    for who in [alice.id, bob.id] {
        s.roles()
            .grant(&admin(), Role::Admin, Holder::User(who))
            .await
            .unwrap();
    }
    let alice = s.users().suspend(&admin(), alice.id).await.unwrap();
    assert!(s.roles().of_user(&alice).await.unwrap().is_empty());
    let alice = s.users().resume(&admin(), alice.id).await.unwrap();
    assert!(s.roles().of_user(&alice).await.unwrap().has(Role::Admin));
}

/// A token made in the console by a person is that person's delegation, not a key of its
/// own: it works only while its maker may still make tokens (an active admin, directly or
/// through a group). Demoted, suspended or deleted, their tokens stop (and work again if the
/// role comes back); an operator's (CLI) token answers to nobody's role.
async fn a_persons_tokens_work_only_while_they_may_make_them(t: TestStore) {
    let s = &t.store;
    let alice = user(s, "alice").await;
    let bob = user(s, "bob").await;
    let admins = group(s, "admins").await;
    join(s, admins.id, alice.id).await;
    let roles = s.roles();
    for holder in [Holder::Group(admins.id), Holder::User(bob.id)] {
        roles.grant(&admin(), Role::Admin, holder).await.unwrap();
    }
    let tokens = ApiTokens::new(s);
    let as_alice = Actor::person(&alice);
    let (_, api) = tokens.create(&as_alice, "alice-tf").await.unwrap();
    let (_, feed) = tokens
        .create_scoped(&as_alice, "alice-feed", TokenScope::Scim)
        .await
        .unwrap();
    let (_, cli) = tokens.create(&admin(), "operator").await.unwrap();
    let works = |issued: &latchkey_idp::tokens::IssuedToken| {
        let text = issued.expose().to_owned();
        async move { tokens.verify(&text).await.unwrap().is_some() }
    };
    assert!(works(&api).await && works(&feed).await && works(&cli).await);

    // Out of the group that made her admin: her tokens stop with her role.
    s.groups()
        .remove_member(&admin(), admins.id, alice.id)
        .await
        .unwrap();
    assert!(!works(&api).await && !works(&feed).await);
    assert!(works(&cli).await);
    // Helpdesk or auditor may not make tokens either.
    roles
        .grant(&admin(), Role::Helpdesk, Holder::User(alice.id))
        .await
        .unwrap();
    assert!(!works(&api).await);
    // Admin again: they work again (nothing was revoked).
    join(s, admins.id, alice.id).await;
    assert!(works(&api).await && works(&feed).await);
    // Suspended: they stop.
    s.users().suspend(&admin(), alice.id).await.unwrap();
    assert!(!works(&api).await && !works(&feed).await);
    s.users().resume(&admin(), alice.id).await.unwrap();
    assert!(works(&api).await);
    // Deleted: they stop for good.
    s.users().delete(&admin(), alice.id).await.unwrap();
    assert!(!works(&api).await && !works(&feed).await);
    assert!(works(&cli).await);
}
