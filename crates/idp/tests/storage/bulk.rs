//! The bulk loaders (`Users::create_many`, `Groups::add_members`, `Audit::record_many`)
//! write what the one-at-a-time domain calls write, and all or nothing.

use latchkey_idp::Error;
use latchkey_idp::audit::{AuditEvent, AuditFilter, Change};
use latchkey_idp::directory::{NewGroup, NewUser, UserFilter};
use latchkey_idp::password::Password;

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    bulk_users_and_members_are_what_single_writes_make,
    a_bulk_load_with_one_bad_row_writes_nothing,
    many_audit_lines_are_stored_in_order,
    a_time_window_pages_by_time_through_lines_of_the_same_instant,
    a_settled_bulk_load_reads_the_same,
);

fn person(name: &str) -> NewUser {
    let mut new = NewUser::new(name, format!("{name}@example.org"));
    new.display_name = Some(format!("{name} Example"));
    new
}

/// The one event about `target` with `action`.
async fn event(t: &TestStore, action: &str, target: String) -> AuditEvent {
    let mut events = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some(action.into()),
            target_id: Some(target),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

/// An event's `after` with the fields that differ between two users taken out.
fn shape(e: &AuditEvent) -> serde_json::Value {
    let mut after = e.after.clone().unwrap();
    for field in [
        "id",
        "username",
        "email",
        "display_name",
        "created_at",
        "updated_at",
    ] {
        after.as_object_mut().unwrap().remove(field);
    }
    serde_json::json!({
        "actor": e.actor, "actor_name": e.actor_name, "kind": e.target_kind, "after": after,
        "before": e.before,
    })
}

async fn bulk_users_and_members_are_what_single_writes_make(t: TestStore) {
    let single = t
        .store
        .users()
        .create(&admin(), person("solo"))
        .await
        .unwrap();
    let mut with_password = person("cat");
    with_password.password = Some(Password::new("correct horse battery staple"));
    let made = t
        .store
        .users()
        .create_many(&admin(), vec![person("ann"), person("Bob"), with_password])
        .await
        .unwrap();
    assert_eq!(made.len(), 3);
    for user in &made {
        // The rows read back as what was returned, found by any spelling.
        assert_eq!(&t.store.users().get(user.id).await.unwrap(), user);
        let found = t
            .store
            .users()
            .find_by_username(&user.username.to_uppercase())
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(user));
    }
    assert!(made[2].has_password && !made[0].has_password);
    assert!(
        t.store
            .users()
            .verify_password(made[2].id, Password::new("correct horse battery staple"))
            .await
            .unwrap()
    );
    // Each creation has its line, shaped as a single creation's.
    let solo_line = event(&t, "user.create", single.id.to_string()).await;
    let ann_line = event(&t, "user.create", made[0].id.to_string()).await;
    assert_eq!(ann_line.target_name.as_deref(), Some("ann"));
    assert_eq!(ann_line.after.as_ref().unwrap()["username"], "ann");
    assert_eq!(shape(&ann_line), shape(&solo_line));
    // Listed by the SQL listing like any user.
    let page = t
        .store
        .users()
        .page(&UserFilter::default(), None, 10)
        .await
        .unwrap();
    let names: Vec<&str> = page.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["ann", "Bob", "cat", "solo"]);

    let staff = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap();
    t.store
        .groups()
        .add_member(&admin(), staff.id, single.id)
        .await
        .unwrap();
    let single_line = event(&t, "group.member_add", staff.id.to_string()).await;
    t.store
        .groups()
        .add_members(&admin(), &staff, &made[..2])
        .await
        .unwrap();
    let members: Vec<String> = t
        .store
        .groups()
        .members(staff.id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(members, ["ann", "Bob", "solo"]);
    let lines = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("group.member_add".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(lines.len(), 3);
    let bob_line = &lines[0];
    assert_eq!(bob_line.after.as_ref().unwrap()["user"], "Bob");
    assert_eq!(
        bob_line.after.as_ref().unwrap()["user_id"],
        made[1].id.to_string()
    );
    for e in &lines {
        assert_eq!(
            (&e.actor, &e.target_kind, &e.target_id, &e.target_name),
            (
                &single_line.actor,
                &single_line.target_kind,
                &single_line.target_id,
                &single_line.target_name
            )
        );
    }
}

async fn a_bulk_load_with_one_bad_row_writes_nothing(t: TestStore) {
    let ann = t
        .store
        .users()
        .create(&admin(), person("ann"))
        .await
        .unwrap();
    let before = snapshot(&t.store).await;
    // Twice in the batch, in any case: refused by name before anything is written.
    let err = t
        .store
        .users()
        .create_many(&admin(), vec![person("cat"), person("CAT")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateUsername { ref username } if username == "CAT"),
        "{err:?}"
    );
    // Invalid: the field is named.
    let err = t
        .store
        .users()
        .create_many(
            &admin(),
            vec![person("dan"), NewUser::new("eve", "not-an-address")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidField { .. }), "{err:?}");
    // Taken in the store: the unique key refuses the whole load.
    assert!(
        t.store
            .users()
            .create_many(&admin(), vec![person("fay"), person("Ann")])
            .await
            .is_err()
    );
    assert_eq!(snapshot(&t.store).await, before);

    // A membership that exists fails the whole load of memberships.
    let staff = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap();
    let bob = t
        .store
        .users()
        .create(&admin(), person("bob"))
        .await
        .unwrap();
    t.store
        .groups()
        .add_member(&admin(), staff.id, ann.id)
        .await
        .unwrap();
    let before = snapshot(&t.store).await;
    assert!(
        t.store
            .groups()
            .add_members(&admin(), &staff, &[bob, ann])
            .await
            .is_err()
    );
    assert_eq!(snapshot(&t.store).await, before);
}

async fn many_audit_lines_are_stored_in_order(t: TestStore) {
    let now = t.store.now();
    let lines: Vec<_> = (0..2_500)
        .map(|i| {
            (
                admin(),
                now - time::Duration::seconds(2_500 - i),
                Change {
                    action: "test.line",
                    target_kind: "test",
                    target_id: format!("t{i}"),
                    target_name: format!("line {i}"),
                    before: None,
                    after: Some(serde_json::json!({ "i": i })),
                },
            )
        })
        .collect();
    t.store.audit().record_many(lines).await.unwrap();
    let newest = t
        .store
        .audit()
        .list(&AuditFilter {
            limit: Some(2),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].target_name.as_deref(), Some("line 2499"));
    assert_eq!(newest[1].target_name.as_deref(), Some("line 2498"));
    assert_eq!(newest[0].actor_name.as_deref(), admin().name());
    assert_eq!(newest[0].after, Some(serde_json::json!({ "i": 2499 })));
    assert_eq!(t.store.audit().count().await.unwrap(), 2_500);
}

/// With `since`, the log comes newest first by time, then `seq`; its cursor continues after
/// the last line in that order, also among lines stamped the same instant (a stopped clock,
/// one group commit), so a walk sees every line in the window once.
async fn a_time_window_pages_by_time_through_lines_of_the_same_instant(t: TestStore) {
    let now = t.store.now();
    let line = |i: i64, at: time::OffsetDateTime| {
        (
            admin(),
            at,
            Change {
                action: "test.line",
                target_kind: "test",
                target_id: format!("t{i}"),
                target_name: format!("{i}"),
                before: None,
                after: None,
            },
        )
    };
    // Two before the window, five at its first instant, two later (one written out of
    // order: an older stamp committed after a newer one).
    let old = now - time::Duration::hours(2);
    let start = now - time::Duration::hours(1);
    let mut lines = vec![line(0, old), line(1, old)];
    lines.extend((2..7).map(|i| line(i, start)));
    lines.push(line(7, now));
    lines.push(line(8, start + time::Duration::minutes(1)));
    t.store.audit().record_many(lines).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = t
            .store
            .audit()
            .list(&AuditFilter {
                since: Some(start),
                before_seq: cursor,
                limit: Some(2),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        seen.extend(page.iter().map(|e| e.target_name.clone().unwrap()));
        match page.last() {
            Some(last) if page.len() == 2 => cursor = Some(last.seq),
            _ => break,
        }
        assert!(seen.len() < 20, "the walk does not end: {seen:?}");
    }
    assert_eq!(seen, ["7", "8", "6", "5", "4", "3", "2"]);

    // A range: `until` is exclusive, and alone it is the window's other end.
    let names = |events: Vec<latchkey_idp::audit::AuditEvent>| -> Vec<String> {
        events.into_iter().map(|e| e.target_name.unwrap()).collect()
    };
    let range = |since, until| AuditFilter {
        since,
        until,
        ..AuditFilter::default()
    };
    let minute = start + time::Duration::minutes(1);
    let audit = t.store.audit();
    assert_eq!(
        names(audit.list(&range(Some(start), Some(minute))).await.unwrap()),
        ["6", "5", "4", "3", "2"]
    );
    assert_eq!(
        names(audit.list(&range(None, Some(start))).await.unwrap()),
        ["1", "0"]
    );
    assert_eq!(
        names(audit.list(&range(Some(minute), Some(now))).await.unwrap()),
        ["8"]
    );
}

/// What `latchkey bench list` runs after its load (on PostgreSQL a `VACUUM`, which refuses
/// to run inside a transaction block) succeeds, and a search finds the same users after it.
async fn a_settled_bulk_load_reads_the_same(t: TestStore) {
    let made = t
        .store
        .users()
        .create_many(
            &admin(),
            vec![person("grace.one"), person("grace.two"), person("alan")],
        )
        .await
        .unwrap();
    let filter = UserFilter {
        search: Some("grace".into()),
        ..UserFilter::default()
    };
    let before = t.store.users().page(&filter, None, 10).await.unwrap();
    assert_eq!(before.users, made[..2].to_vec());
    t.store.settle_after_bulk_load().await.unwrap();
    // Twice: nothing is left open by the first.
    t.store.settle_after_bulk_load().await.unwrap();
    let after = t.store.users().page(&filter, None, 10).await.unwrap();
    assert_eq!(after, before);
}
