use std::collections::BTreeMap;

use latchkey_idp::Error;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::directory::{
    AttributeValue, NewGroup, NewUser, UserCursor, UserFilter, UserPatch, UserStatus,
};
use latchkey_idp::password::Password;

use super::{admin, snapshot};
use crate::on_both_backends;
use crate::support::TestStore;

on_both_backends!(
    create_and_find_case_insensitively,
    duplicate_username_is_refused_and_nothing_changes,
    duplicate_email_is_refused_and_nothing_changes,
    update_renames_and_keeps_id,
    update_into_taken_email_is_refused,
    suspend_resume_delete,
    passwords_are_hashed_and_never_audited,
    invalid_email_names_the_field,
    reopening_keeps_data_and_schema,
    racing_creates_yield_one_user_and_typed_errors,
    authenticate_by_username_or_email,
    old_hashes_are_upgraded_at_login,
    keyset_pages_walk_every_match_once,
    listing_filters_are_served_by_indexes,
);

fn alice() -> NewUser {
    let mut u = NewUser::new("Alice", "Alice@Example.org");
    u.given_name = Some("Alice".into());
    u.family_name = Some("Liddell".into());
    u.attributes = BTreeMap::from([
        ("department".to_string(), AttributeValue::One("R&D".into())),
        (
            "roles".to_string(),
            AttributeValue::Many(vec!["wiki-admin".into(), "hr".into()]),
        ),
    ]);
    u
}

async fn create_and_find_case_insensitively(t: TestStore) {
    let users = t.store.users();
    let created = users.create(&admin(), alice()).await.unwrap();
    assert_eq!(created.username, "Alice");
    assert_eq!(created.status, UserStatus::Active);
    assert!(!created.has_password);

    let by_name = users.find_by_username("aLICE").await.unwrap().unwrap();
    assert_eq!(by_name, created);
    let by_mail = users
        .find_by_email("alice@EXAMPLE.ORG")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_mail.id, created.id);
    assert_eq!(
        users.lookup(&created.id.to_string()).await.unwrap(),
        created
    );
    assert_eq!(
        users.get(created.id).await.unwrap().attributes,
        alice().attributes
    );
    assert!(users.find_by_username("bob").await.unwrap().is_none());

    let events = t.store.audit().list(&AuditFilter::default()).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, "user.create");
    assert_eq!(events[0].actor, "cli:tester");
    assert_eq!(
        events[0].target_id.as_deref(),
        Some(created.id.to_string().as_str())
    );
    assert!(events[0].before.is_none());
    assert_eq!(
        events[0].after.as_ref().unwrap()["email"],
        "Alice@Example.org"
    );
}

async fn duplicate_username_is_refused_and_nothing_changes(t: TestStore) {
    let users = t.store.users();
    users.create(&admin(), alice()).await.unwrap();
    let before = snapshot(&t.store).await;
    let err = users
        .create(&admin(), NewUser::new("ALICE", "other@example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateUsername { username } if username == "ALICE"),
        "{err:?}"
    );
    assert_eq!(snapshot(&t.store).await, before);
}

async fn duplicate_email_is_refused_and_nothing_changes(t: TestStore) {
    let users = t.store.users();
    users.create(&admin(), alice()).await.unwrap();
    let before = snapshot(&t.store).await;
    let err = users
        .create(&admin(), NewUser::new("alice2", "ALICE@example.ORG"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEmail { .. }), "{err:?}");
    assert!(err.to_string().contains("e-mail"), "{err}");
    assert_eq!(snapshot(&t.store).await, before);
}

async fn update_renames_and_keeps_id(t: TestStore) {
    let users = t.store.users();
    let a = users.create(&admin(), alice()).await.unwrap();
    let patch = UserPatch {
        username: Some("alice.l".into()),
        display_name: Some(Some("Alice L.".into())),
        given_name: Some(None),
        remove_attributes: vec!["roles".into()],
        set_attributes: BTreeMap::from([("floor".to_string(), AttributeValue::One("3".into()))]),
        ..UserPatch::default()
    };
    let b = users.update(&admin(), a.id, patch).await.unwrap();
    assert_eq!(b.id, a.id);
    assert_eq!(b.username, "alice.l");
    assert_eq!(b.given_name, None);
    assert_eq!(b.shown_name(), "Alice L.");
    assert!(b.updated_at >= a.updated_at);
    assert_eq!(b.created_at, a.created_at);
    assert_eq!(
        b.attributes.keys().cloned().collect::<Vec<_>>(),
        vec!["department", "floor"]
    );
    assert_eq!(users.get(a.id).await.unwrap(), b);
    assert!(users.find_by_username("alice").await.unwrap().is_none());
    // Changing only the case of the own username is not a conflict with oneself.
    let c = users
        .update(
            &admin(),
            a.id,
            UserPatch {
                username: Some("Alice.L".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(c.username, "Alice.L");
    // A no-op patch records nothing.
    let count = t.store.audit().count().await.unwrap();
    users
        .update(&admin(), a.id, UserPatch::default())
        .await
        .unwrap();
    assert_eq!(t.store.audit().count().await.unwrap(), count);
    let update = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.update".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(update.len(), 2);
    assert_eq!(update[1].before.as_ref().unwrap()["username"], "Alice");
    assert_eq!(update[1].after.as_ref().unwrap()["username"], "alice.l");
}

async fn update_into_taken_email_is_refused(t: TestStore) {
    let users = t.store.users();
    users.create(&admin(), alice()).await.unwrap();
    let bob = users
        .create(&admin(), NewUser::new("bob", "bob@example.org"))
        .await
        .unwrap();
    let before = snapshot(&t.store).await;
    let err = users
        .update(
            &admin(),
            bob.id,
            UserPatch {
                email: Some("alice@example.org".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEmail { .. }), "{err:?}");
    let err = users
        .update(
            &admin(),
            bob.id,
            UserPatch {
                username: Some("alice".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateUsername { .. }), "{err:?}");
    assert_eq!(snapshot(&t.store).await, before);
}

async fn suspend_resume_delete(t: TestStore) {
    let users = t.store.users();
    let a = users.create(&admin(), alice()).await.unwrap();
    assert_eq!(
        users.suspend(&admin(), a.id).await.unwrap().status,
        UserStatus::Suspended
    );
    assert_eq!(users.get(a.id).await.unwrap().status, UserStatus::Suspended);
    assert_eq!(
        users.resume(&admin(), a.id).await.unwrap().status,
        UserStatus::Active
    );
    users.delete(&admin(), a.id).await.unwrap();
    let err = users.get(a.id).await.unwrap_err();
    assert!(matches!(err, Error::UnknownUser { .. }), "{err:?}");
    let err = users.delete(&admin(), a.id).await.unwrap_err();
    assert!(matches!(err, Error::UnknownUser { .. }), "{err:?}");
    let actions: Vec<String> = t
        .store
        .audit()
        .list(&AuditFilter {
            target_id: Some(a.id.to_string()),
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.delete",
            "user.resume",
            "user.sessions_end",
            "user.suspend",
            "user.create"
        ]
    );
    // The username is free again.
    users.create(&admin(), alice()).await.unwrap();
}

async fn passwords_are_hashed_and_never_audited(t: TestStore) {
    let users = t.store.users();
    let mut new = alice();
    new.password = Some(Password::new("first password"));
    let a = users.create(&admin(), new).await.unwrap();
    assert!(a.has_password);
    assert!(
        users
            .verify_password(a.id, Password::new("first password"))
            .await
            .unwrap()
    );
    assert!(
        !users
            .verify_password(a.id, Password::new("First password"))
            .await
            .unwrap()
    );

    users
        .set_password(&admin(), a.id, Some(Password::new("second password")))
        .await
        .unwrap();
    assert!(
        !users
            .verify_password(a.id, Password::new("first password"))
            .await
            .unwrap()
    );
    assert!(
        users
            .verify_password(a.id, Password::new("second password"))
            .await
            .unwrap()
    );

    users.set_password(&admin(), a.id, None).await.unwrap();
    assert!(!users.get(a.id).await.unwrap().has_password);
    assert!(
        !users
            .verify_password(a.id, Password::new("second password"))
            .await
            .unwrap()
    );

    let err = users
        .set_password(&admin(), a.id, Some(Password::new("short")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PasswordRefused {
                rule: latchkey_idp::password::PasswordRule::TooShort { min: 12 }
            }
        ),
        "{err:?}"
    );
    let err = users
        .set_password(&admin(), a.id, Some(Password::new("LeaveMeAlone")))
        .await
        .unwrap_err();
    assert_eq!(err.code().as_str(), "password_too_common", "{err:?}");

    let log = serde_json::to_string(&t.store.audit().list(&AuditFilter::default()).await.unwrap())
        .unwrap();
    assert!(!log.contains("argon2"), "audit log leaks a hash: {log}");
    assert!(
        !log.contains("password_hash"),
        "audit log leaks a hash column: {log}"
    );
    assert!(
        !log.contains("second password"),
        "audit log leaks a password: {log}"
    );
    let export = serde_json::to_string(&t.store.export().await.unwrap()).unwrap();
    assert!(!export.contains("argon2"), "export leaks a hash");
}

async fn invalid_email_names_the_field(t: TestStore) {
    let before = snapshot(&t.store).await;
    let err = t
        .store
        .users()
        .create(&admin(), NewUser::new("carol", "carol.example.org"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidField { field: "email", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("carol.example.org"), "{err}");
    assert_eq!(snapshot(&t.store).await, before);
}

async fn reopening_keeps_data_and_schema(t: TestStore) {
    let a = t.store.users().create(&admin(), alice()).await.unwrap();
    let version = t.store.schema_version().await.unwrap();
    assert!(version >= 1);
    let again = latchkey_idp::Store::open_url(&t.url, 2, crate::support::cheap_passwords())
        .await
        .unwrap();
    assert_eq!(again.schema_version().await.unwrap(), version);
    assert_eq!(again.users().get(a.id).await.unwrap(), a);
    if again.backend() == latchkey_idp::store::Backend::Sqlite {
        assert!(t.url.starts_with("sqlite://"));
        use sqlx::Connection;
        let mut raw = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

async fn racing_creates_yield_one_user_and_typed_errors(t: TestStore) {
    // Two pools stand in for two IdP nodes; all callers pass the pre-check at about the same
    // time, so the database's unique index has the last word and must map to the typed error.
    let other = latchkey_idp::Store::open_url(&t.url, 4, crate::support::cheap_passwords())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = if i % 2 == 0 {
            t.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let new = if i % 3 == 0 {
                NewUser::new("racer", format!("racer{i}@example.org"))
            } else {
                NewUser::new(format!("racer{i}"), "racer@example.org")
            };
            store.users().create(&admin(), new).await
        }));
    }
    let (mut created, mut dup_name, mut dup_mail) = (0, 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(Error::DuplicateUsername { .. }) => dup_name += 1,
            Err(Error::DuplicateEmail { .. }) => dup_mail += 1,
            Err(other) => panic!("untyped failure under concurrency: {other:?}"),
        }
    }
    assert_eq!(created + dup_name + dup_mail, 12);
    let users = t.store.users().list().await.unwrap();
    assert_eq!(users.len(), created);
    // One winner for the contested username, one for the contested e-mail address.
    assert_eq!(created, 2, "{dup_name} name / {dup_mail} mail conflicts");
    assert_eq!(
        t.store.audit().count().await.unwrap(),
        i64::try_from(created).unwrap(),
        "an audit event without its change, or the reverse"
    );
}

async fn authenticate_by_username_or_email(t: TestStore) {
    use latchkey_idp::directory::Login;
    let users = t.store.users();
    let mut new = alice();
    new.password = Some(Password::new("correct horse"));
    let a = users.create(&admin(), new).await.unwrap();
    users
        .create(&admin(), NewUser::new("nopass", "nopass@example.org"))
        .await
        .unwrap();

    let ok = users
        .authenticate("alice", Password::new("correct horse"))
        .await
        .unwrap();
    assert_eq!(ok, Login::Success(users.get(a.id).await.unwrap()));
    let ok = users
        .authenticate("ALICE@example.org", Password::new("correct horse"))
        .await
        .unwrap();
    assert!(matches!(ok, Login::Success(u) if u.id == a.id));
    for (login, pw) in [
        ("alice", "correct horsE"),
        ("nobody", "correct horse"),
        ("nopass", "correct horse"),
    ] {
        let got = users.authenticate(login, Password::new(pw)).await.unwrap();
        assert_eq!(got, Login::BadCredentials, "{login}");
    }
    users.suspend(&admin(), a.id).await.unwrap();
    assert_eq!(
        users
            .authenticate("alice", Password::new("wrong password"))
            .await
            .unwrap(),
        Login::BadCredentials,
        "suspension must not be disclosed without the password"
    );
    assert!(matches!(
        users
            .authenticate("alice", Password::new("correct horse"))
            .await
            .unwrap(),
        Login::Suspended(_)
    ));
}

async fn old_hashes_are_upgraded_at_login(t: TestStore) {
    use latchkey_idp::directory::Login;
    let mut new = alice();
    new.password = Some(Password::new("correct horse"));
    let a = t.store.users().create(&admin(), new).await.unwrap();
    // The same database, opened with higher cost parameters (as after a config change).
    let mut stronger = crate::support::cheap_passwords();
    stronger.iterations += 1;
    let upgraded = latchkey_idp::Store::open_url(&t.url, 2, stronger)
        .await
        .unwrap();
    let got = upgraded
        .users()
        .authenticate("alice", Password::new("correct horse"))
        .await
        .unwrap();
    assert!(matches!(got, Login::Success(_)));
    let rehash = t
        .store
        .audit()
        .list(&AuditFilter {
            action: Some("user.password_rehash".into()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rehash.len(), 1);
    assert_eq!(rehash[0].actor, "system");
    // Still the same password, now under the new parameters: a second login does not rehash.
    upgraded
        .users()
        .authenticate("alice", Password::new("correct horse"))
        .await
        .unwrap();
    assert!(
        t.store
            .users()
            .verify_password(a.id, Password::new("correct horse"))
            .await
            .unwrap()
    );
    assert_eq!(
        t.store
            .audit()
            .list(&AuditFilter {
                action: Some("user.password_rehash".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap()
            .len(),
        1
    );
}

/// Creates `names` as users (e-mail `NAME@corp.example`), the odd ones suspended.
async fn directory_of(t: &TestStore, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        let mut new = NewUser::new(*name, format!("{name}@corp.example"));
        if i % 2 == 1 {
            new.status = UserStatus::Suspended;
        }
        t.store.users().create(&admin(), new).await.unwrap();
    }
}

/// Follows cursors to the end, returning each page's usernames.
pub(super) async fn walk(t: &TestStore, filter: &UserFilter, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<UserCursor> = None;
    loop {
        let page = t
            .store
            .users()
            .page(filter, after.as_ref(), limit)
            .await
            .unwrap();
        pages.push(page.users.iter().map(|u| u.username.clone()).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
        assert!(pages.len() < 100, "the walk does not end");
    }
}

async fn keyset_pages_walk_every_match_once(t: TestStore) {
    // Mixed case: the order is the case-folded key, byte-wise, the same on both backends.
    directory_of(&t, &["dan", "Ann", "bob", "Bea", "cat", "eve", "ed", "al"]).await;
    let all = UserFilter::default();
    assert_eq!(
        walk(&t, &all, 3).await,
        [
            vec!["al", "Ann", "Bea"],
            vec!["bob", "cat", "dan"],
            vec!["ed", "eve"],
        ]
    );
    assert_eq!(t.store.users().count(&all).await.unwrap(), 8);
    // A bounded count: exact up to the cap, one more means "more than that".
    assert_eq!(t.store.users().count_up_to(&all, 100).await.unwrap(), 8);
    assert_eq!(t.store.users().count_up_to(&all, 8).await.unwrap(), 8);
    assert_eq!(t.store.users().count_up_to(&all, 3).await.unwrap(), 4);
    // A page that ends exactly at the last user has no next cursor.
    assert_eq!(walk(&t, &all, 8).await.len(), 1);

    // Prefix search on the username, case-insensitive; with `@`, on the e-mail address.
    let search = |q: &str| UserFilter {
        search: Some(q.into()),
        ..UserFilter::default()
    };
    assert_eq!(walk(&t, &search("A"), 1).await, [vec!["al"], vec!["Ann"]]);
    assert_eq!(t.store.users().count(&search("a")).await.unwrap(), 2);
    assert_eq!(walk(&t, &search("BOB@CORP"), 10).await, [vec!["bob"]]);
    assert_eq!(walk(&t, &search("ob"), 10).await, [Vec::<String>::new()]);

    // Status and group filters combine with paging.
    let suspended = UserFilter {
        status: Some(UserStatus::Suspended),
        ..UserFilter::default()
    };
    assert_eq!(
        walk(&t, &suspended, 2).await.concat(),
        ["al", "Ann", "Bea", "eve"]
    );
    let staff = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap();
    for name in ["eve", "Bea", "dan"] {
        let u = t.store.users().lookup(name).await.unwrap();
        t.store
            .groups()
            .add_member(&admin(), staff.id, u.id)
            .await
            .unwrap();
    }
    let members = UserFilter {
        group: Some(staff.id),
        ..UserFilter::default()
    };
    assert_eq!(
        walk(&t, &members, 2).await,
        [vec!["Bea", "dan"], vec!["eve"]]
    );
    assert_eq!(t.store.users().count(&members).await.unwrap(), 3);
    assert_eq!(t.store.users().count_up_to(&members, 1).await.unwrap(), 2);
    assert_eq!(t.store.users().count_up_to(&members, 5).await.unwrap(), 3);
    // A member renamed moves in the group's order too (the member rows carry the key).
    let bea = t.store.users().lookup("Bea").await.unwrap();
    let rename = UserPatch {
        username: Some("Zed".into()),
        ..UserPatch::default()
    };
    t.store
        .users()
        .update(&admin(), bea.id, rename)
        .await
        .unwrap();
    assert_eq!(
        walk(&t, &members, 2).await,
        [vec!["dan", "eve"], vec!["Zed"]]
    );
    let in_group = |q: &str| UserFilter {
        search: Some(q.into()),
        ..members.clone()
    };
    assert_eq!(walk(&t, &in_group("z"), 5).await, [vec!["Zed"]]);
    assert_eq!(t.store.users().count(&in_group("e")).await.unwrap(), 1);
    assert_eq!(t.store.users().count(&in_group("zed@")).await.unwrap(), 0);
    assert_eq!(t.store.users().count(&in_group("bea@")).await.unwrap(), 1);
    // Legacy offset paging sees the same order.
    let third: Vec<String> = t
        .store
        .users()
        .page_at_offset(&all, 2, 2)
        .await
        .unwrap()
        .users
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(third, ["bob", "cat"]);
}

async fn listing_filters_are_served_by_indexes(t: TestStore) {
    if t.store.backend() != latchkey_idp::store::Backend::Sqlite {
        // PostgreSQL's planner picks a sequential scan on a table this small whatever
        // indexes exist; its plans are checked at scale by `latchkey bench`.
        return;
    }
    directory_of(&t, &["ann", "bob"]).await;
    let staff = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap();
    let filters = [
        UserFilter::default(),
        UserFilter {
            search: Some("a".into()),
            ..UserFilter::default()
        },
        UserFilter {
            search: Some("zz".into()),
            ..UserFilter::default()
        },
        UserFilter {
            search: Some("ann@corp".into()),
            ..UserFilter::default()
        },
        UserFilter {
            status: Some(UserStatus::Suspended),
            ..UserFilter::default()
        },
        UserFilter {
            group: Some(staff.id),
            ..UserFilter::default()
        },
    ];
    for filter in filters {
        let plan = t.store.users().explain_page(&filter).await.unwrap();
        for line in plan.lines() {
            assert!(
                !line.starts_with("SCAN") || line.contains("INDEX"),
                "{filter:?} scans a table without an index:\n{plan}"
            );
        }
        if filter.group.is_none() && !filter.search.as_deref().unwrap_or("").contains('@') {
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{filter:?} sorts instead of reading the index in order:\n{plan}"
            );
        }
    }
    // A search that begins a word reads both ranges through their indexes: the words from
    // `user_words`' key alone (it holds the username), `users` only for the page.
    let by_word = UserFilter {
        search: Some("an".into()),
        ..UserFilter::default()
    };
    let plan = t.store.users().explain_page(&by_word).await.unwrap();
    assert!(
        plan.contains("SEARCH w0 USING COVERING INDEX") && plan.contains("(word>? AND word<?)"),
        "{plan}"
    );
    assert!(
        plan.contains("SEARCH u USING COVERING INDEX users_username_key_c"),
        "{plan}"
    );
    // The two sides' first rows are scanned (`a`, `b`), no table is.
    assert!(
        !plan.lines().any(|l| l.starts_with("SCAN")
            && !l.contains("INDEX")
            && !["SCAN a", "SCAN b"].contains(&l)),
        "{plan}"
    );
}
