//! Users found by the words of their names (migration 0590): a surname finds its people,
//! every writer keeps the words, and an install upgraded to 0590 gets the words of the users
//! it already had.

use latchkey_idp::Store;
use latchkey_idp::directory::{NewGroup, NewUser, UserFilter, UserPatch};

use super::admin;
use super::users::walk;
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords, migrated_to};

on_both_backends!(
    a_search_finds_users_by_the_words_of_their_names,
    a_common_word_is_gathered_and_a_too_common_one_is_not,
    users_of_an_upgraded_install_are_found_by_their_names,
);

fn search(q: &str) -> UserFilter {
    UserFilter {
        search: Some(q.into()),
        ..UserFilter::default()
    }
}

async fn found(t: &TestStore, q: &str) -> Vec<String> {
    walk(t, &search(q), 100).await.concat()
}

fn person(username: &str, email: &str, given: &str, family: &str) -> NewUser {
    let mut u = NewUser::new(username, email);
    u.given_name = Some(given.into());
    u.family_name = Some(family.into());
    u.display_name = Some(format!("{given} {family}"));
    u
}

async fn a_search_finds_users_by_the_words_of_their_names(t: TestStore) {
    let users = t.store.users();
    for new in [
        person("jsmith", "jane.smith@corp.example", "Jane", "Smith"),
        person("jdoe", "john.doe@corp.example", "John", "Doe"),
        person("smithers", "w.smithers@corp.example", "Waylon", "Smithers"),
        person("bob", "bob@corp.example", "Robert", "Smith-Jones"),
        person("eve", "eve@smith.example", "Eve", "Adams"),
    ] {
        users.create(&admin(), new).await.unwrap();
    }
    // A username prefix (smithers) or a word's (Smith, Smithers, Smith-Jones), in username
    // order; not a domain (eve@smith.example).
    assert_eq!(found(&t, "smith").await, ["bob", "jsmith", "smithers"]);
    assert_eq!(found(&t, "SMI").await, ["bob", "jsmith", "smithers"]);
    assert_eq!(
        walk(&t, &search("smith"), 1).await,
        [vec!["bob"], vec!["jsmith"], vec!["smithers"]]
    );
    assert_eq!(users.count(&search("smith")).await.unwrap(), 3);
    assert_eq!(users.count_up_to(&search("smith"), 2).await.unwrap(), 3);
    // Every word of the search must begin a word of the user's.
    assert_eq!(found(&t, "Jane Smith").await, ["jsmith"]);
    assert_eq!(found(&t, "smi jo").await, ["bob"]);
    assert_eq!(found(&t, "smith, robert").await, ["bob"]);
    assert!(found(&t, "jane doe").await.is_empty());
    // The address's local part counts, the middle of a word does not.
    assert_eq!(found(&t, "doe").await, ["jdoe"]);
    assert!(found(&t, "mith").await.is_empty());
    // One letter is a username prefix only (every "j..." word would be too broad).
    assert_eq!(found(&t, "j").await, ["jdoe", "jsmith"]);
    // With `@`, the address prefix as before.
    assert_eq!(found(&t, "bob@").await, ["bob"]);

    // Within a group.
    let staff = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("staff"))
        .await
        .unwrap();
    for name in ["jsmith", "jdoe"] {
        let u = users.lookup(name).await.unwrap();
        t.store
            .groups()
            .add_member(&admin(), staff.id, u.id)
            .await
            .unwrap();
    }
    let in_staff = UserFilter {
        group: Some(staff.id),
        ..search("smith")
    };
    assert_eq!(walk(&t, &in_staff, 10).await.concat(), ["jsmith"]);
    assert_eq!(users.count(&in_staff).await.unwrap(), 1);

    // A change of name changes the words; a deleted user's go with them.
    let jdoe = users.lookup("jdoe").await.unwrap();
    let married = UserPatch {
        family_name: Some(Some("Smithson".into())),
        display_name: Some(Some("John Smithson".into())),
        ..UserPatch::default()
    };
    users.update(&admin(), jdoe.id, married).await.unwrap();
    assert_eq!(
        found(&t, "smith").await,
        ["bob", "jdoe", "jsmith", "smithers"]
    );
    assert!(
        found(&t, "doe").await.contains(&"jdoe".to_owned()),
        "still its address"
    );
    let renamed = UserPatch {
        email: Some("john.smithson@corp.example".into()),
        ..UserPatch::default()
    };
    users.update(&admin(), jdoe.id, renamed).await.unwrap();
    assert!(found(&t, "doe").await.is_empty());
    let bob = users.lookup("bob").await.unwrap();
    users.delete(&admin(), bob.id).await.unwrap();
    assert_eq!(found(&t, "smith").await, ["jdoe", "jsmith", "smithers"]);
    assert_eq!(found(&t, "jones").await, Vec::<String>::new());
}

/// A word several hundred users share is gathered and paged in username order; one that
/// 1,000 share is too broad to gather, and the search is a username prefix only, unless
/// another of its words is narrower: that one is read and the broad one checked.
async fn a_common_word_is_gathered_and_a_too_common_one_is_not(t: TestStore) {
    let parkers = |from: usize, to: usize| -> Vec<NewUser> {
        (from..to)
            .map(|i| {
                person(
                    &format!("p{i:04}"),
                    &format!("p{i:04}@corp.example"),
                    "Pat",
                    "Parker",
                )
            })
            .collect()
    };
    t.store
        .users()
        .create_many(&admin(), parkers(0, 900))
        .await
        .unwrap();
    t.store
        .users()
        .create(
            &admin(),
            person("zed", "zed@corp.example", "Zed", "Parkinson"),
        )
        .await
        .unwrap();
    let first = t
        .store
        .users()
        .page(&search("park"), None, 50)
        .await
        .unwrap();
    let expected: Vec<String> = (0..50).map(|i| format!("p{i:04}")).collect();
    let names: Vec<String> = first.users.iter().map(|u| u.username.clone()).collect();
    assert_eq!(names, expected);
    let all = walk(&t, &search("park"), 200).await.concat();
    assert_eq!(all.len(), 901);
    assert_eq!(all.last().map(String::as_str), Some("zed"));
    assert_eq!(
        t.store
            .users()
            .count_up_to(&search("park"), 10_000)
            .await
            .unwrap(),
        901
    );
    assert_eq!(found(&t, "park zed").await, ["zed"]);

    t.store
        .users()
        .create_many(&admin(), parkers(900, 1_000))
        .await
        .unwrap();
    assert!(
        found(&t, "park").await.is_empty(),
        "no username begins with park"
    );
    assert!(found(&t, "pat parker").await.is_empty(), "both too broad");
    assert_eq!(found(&t, "p0999").await, ["p0999"]);
    assert_eq!(found(&t, "parkinson").await, ["zed"]);
    // The narrower word is read first, whichever is longer or comes first.
    assert_eq!(found(&t, "park zed").await, ["zed"]);
    assert_eq!(found(&t, "p parkinson").await, ["zed"]);
}

const AT: &str = "2026-12-01T09:00:00.000000Z";

async fn users_of_an_upgraded_install_are_found_by_their_names(t: TestStore) {
    // A database of the same kind as the case's, migrated only to the version before 0590.
    let (pool, url, _dir) = migrated_to(&t, 580).await;
    for i in 0..1_500 {
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, email_key, given_name, \
             family_name, display_name, status, created_at, updated_at) \
             VALUES ($1, $2, $2, $3, $3, 'Ada', $4, $5, 'active', $6, $6)",
        )
        .bind(format!("6f0b2a40-6c1e-4a53-9a86-{i:012}"))
        .bind(format!("u{i:04}"))
        .bind(format!("u{i:04}@corp.example"))
        .bind(match i {
            700 => "Lovelace",
            ..1_000 => "Byron",
            _ => "Babbage",
        })
        .bind(match i {
            700 => "Ada Lovelace",
            ..1_000 => "Ada Byron",
            _ => "Ada Babbage",
        })
        .bind(AT)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let filter = search("lovelace");
    let page = store.users().page(&filter, None, 10).await.unwrap();
    let names: Vec<&str> = page.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["u0700"]);
    assert_eq!(store.users().count(&search("byron")).await.unwrap(), 999);
    // Once: a second open finds nothing left to do and the words are not doubled.
    store.close().await;
    let again = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    assert_eq!(again.users().count(&search("babbage")).await.unwrap(), 500);
    assert_eq!(
        again.users().count(&search("ada lovelace")).await.unwrap(),
        1
    );
    again.close().await;

    // A node of the old version, still running during a rolling upgrade, creates users
    // without words (one with no word at all); the next start writes the words they lack.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    for (i, username, email, family) in [
        (1_500, "u1500", "gh@corp.example", "Hopper"),
        (1_501, "_", "_@corp.example", ""),
    ] {
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, email_key, family_name, \
             status, created_at, updated_at) VALUES ($1, $2, $2, $3, $3, $4, 'active', $5, $5)",
        )
        .bind(format!("6f0b2a40-6c1e-4a53-9a86-{i:012}"))
        .bind(username)
        .bind(email)
        .bind(family)
        .bind(AT)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    let third = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    assert_eq!(found_in(&third, "hopper").await, ["u1500"]);
    assert_eq!(third.users().count(&search("babbage")).await.unwrap(), 500);
}

async fn found_in(store: &Store, text: &str) -> Vec<String> {
    let page = store.users().page(&search(text), None, 50).await.unwrap();
    page.users.into_iter().map(|u| u.username).collect()
}
