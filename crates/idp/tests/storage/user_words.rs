//! Users found by the words of their names (migration 0590): a surname finds its people,
//! every writer keeps the words, and an install upgraded to 0590 gets the words of the users
//! it already had; since 0610 the words are read in username order, so a surname thousands
//! share is found too.

use latchkey_idp::Store;
use latchkey_idp::directory::{NewGroup, NewUser, UserFilter, UserPatch, UserStatus};

use super::admin;
use super::users::walk;
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords, migrated_to};

on_both_backends!(
    a_search_finds_users_by_the_words_of_their_names,
    a_word_thousands_share_is_paged_and_a_too_broad_search_says_so,
    words_written_before_0610_are_found_in_username_order,
    users_of_an_upgraded_install_are_found_by_their_names,
    a_rename_by_any_writer_moves_the_user_in_searches_and_member_listings,
    a_page_and_its_total_in_one_statement_are_the_page_and_the_count,
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

/// A word 1,200 users share (more than the 1,000 a search gathered before migration 0610,
/// when it then found nobody by name) is read in username order: paged by cursor and by
/// offset, counted, with another term, a status and a group. A search whose every word
/// begins too many users' words is a username prefix only, and the page says so.
async fn a_word_thousands_share_is_paged_and_a_too_broad_search_says_so(t: TestStore) {
    let users = t.store.users();
    let parkers = (0..1_200)
        .map(|i| {
            person(
                &format!("p{i:04}"),
                &format!("p{i:04}@corp.example"),
                "Pat",
                "Parker",
            )
        })
        .collect();
    users.create_many(&admin(), parkers).await.unwrap();
    for new in [
        person("zed", "zed@corp.example", "Zed", "Parkinson"),
        // Found by its username (and that word): listed once.
        person("parkour", "runner@corp.example", "Free", "Runner"),
        // A word after `parker`, a username before every other: the order is the username's.
        person("aaron", "aaron@corp.example", "Aaron", "Parkes"),
    ] {
        users.create(&admin(), new).await.unwrap();
    }
    let parkers: Vec<String> = (0..1_200).map(|i| format!("p{i:04}")).collect();
    let mut park = vec!["parkour".to_owned(), "aaron".to_owned()];
    park.extend(parkers.iter().cloned());
    park.push("zed".into());
    park.sort();

    let first = users.page(&search("park"), None, 50).await.unwrap();
    let names: Vec<&str> = first.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, park[..50]);
    assert!(!first.search_too_broad);
    let pages = walk(&t, &search("park"), 200).await;
    assert_eq!(pages.len(), 7);
    assert_eq!(pages.concat(), park);
    assert_eq!(users.count(&search("park")).await.unwrap(), 1_203);
    assert_eq!(
        users.count_up_to(&search("park"), 10_000).await.unwrap(),
        1_203
    );
    assert_eq!(users.count_up_to(&search("park"), 100).await.unwrap(), 101);
    let at = users
        .page_at_offset(&search("Parker"), 1_000, 3)
        .await
        .unwrap();
    let names: Vec<&str> = at.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["p1000", "p1001", "p1002"]);
    assert!(at.next.is_some());
    let last = users
        .page_at_offset(&search("Parker"), 1_198, 3)
        .await
        .unwrap();
    assert_eq!(last.users.len(), 2);
    assert!(last.next.is_none());

    // Every word must begin one of the user's; the narrower is read, whichever comes first.
    assert_eq!(found(&t, "park zed").await, ["zed"]);
    assert_eq!(found(&t, "p parkinson").await, ["zed"]);
    assert_eq!(found(&t, "pat parker").await, parkers);
    assert_eq!(users.count(&search("parker pat")).await.unwrap(), 1_200);
    assert!(found(&t, "pat runner").await.is_empty());

    // A status, a group.
    let p0007 = users.lookup("p0007").await.unwrap();
    users.suspend(&admin(), p0007.id).await.unwrap();
    let suspended = UserFilter {
        status: Some(UserStatus::Suspended),
        ..search("parker")
    };
    assert_eq!(walk(&t, &suspended, 10).await.concat(), ["p0007"]);
    assert_eq!(users.count(&suspended).await.unwrap(), 1);
    let active = UserFilter {
        status: Some(UserStatus::Active),
        ..search("park")
    };
    assert_eq!(users.count(&active).await.unwrap(), 1_202);
    let group = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("team"))
        .await
        .unwrap();
    let mut members = Vec::new();
    for name in ["p0500", "p0501", "p1199", "zed", "parkour"] {
        members.push(users.lookup(name).await.unwrap());
    }
    t.store
        .groups()
        .add_members(&admin(), &group, &members)
        .await
        .unwrap();
    let in_team = UserFilter {
        group: Some(group.id),
        ..search("park")
    };
    assert_eq!(
        walk(&t, &in_team, 2).await,
        [
            vec!["p0500", "p0501"],
            vec!["p1199", "parkour"],
            vec!["zed"]
        ]
    );
    assert_eq!(users.count(&in_team).await.unwrap(), 5);
    assert_eq!(users.count_up_to(&in_team, 3).await.unwrap(), 4);

    // A rename that keeps the user's words (`parkinson.zed`: both are words of theirs)
    // moves where a search meets them.
    let zed = users.lookup("zed").await.unwrap();
    for username in ["parkinson.zed", "zed.parkinson"] {
        let renamed = UserPatch {
            username: Some(username.into()),
            ..UserPatch::default()
        };
        users.update(&admin(), zed.id, renamed).await.unwrap();
        assert_eq!(found(&t, "parkinson").await, [username]);
        assert_eq!(found(&t, "zed").await, [username]);
    }
    assert_eq!(
        found(&t, "park").await.last().map(String::as_str),
        Some("zed.parkinson")
    );

    // 1,300 users with fourteen words beginning "pa" each: the range holds more than a
    // search reads (20,000), so "pa" is a username prefix only, and says so.
    let wordy = (0..1_300)
        .map(|i| {
            let mut u = NewUser::new(format!("q{i:04}"), format!("q{i:04}@corp.example"));
            u.display_name = Some(
                (1..=14)
                    .map(|w| format!("Pa{w:02}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            u
        })
        .collect();
    users.create_many(&admin(), wordy).await.unwrap();
    users
        .create(
            &admin(),
            person("pablo", "pablo@corp.example", "Pablo", "Neruda"),
        )
        .await
        .unwrap();
    let broad = users.page(&search("pa"), None, 50).await.unwrap();
    assert!(broad.search_too_broad);
    let names: Vec<&str> = broad.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["pablo", "parkour"]);
    assert_eq!(users.count(&search("pa")).await.unwrap(), 2);
    // The API's page with its total says the same.
    let (with_total, total) = users
        .page_with_total(&search("pa"), 0, 50, 10_000)
        .await
        .unwrap();
    assert_eq!((&with_total, total), (&broad, 2));
    // More letters, or another word, narrow it.
    let narrower = users.page(&search("pa0"), None, 50).await.unwrap();
    assert!(!narrower.search_too_broad);
    assert_eq!(users.count(&search("pa0")).await.unwrap(), 1_300);
    assert_eq!(found(&t, "pa q0042").await, ["q0042"]);
    assert_eq!(found(&t, "park").await.len(), 1_203);
    // Each match checked (another word): 5,000 entries are read at most.
    let checked = users.page(&search("pa0 pa1"), None, 50).await.unwrap();
    assert!(checked.search_too_broad);
    assert!(checked.users.is_empty());
    let in_team = UserFilter {
        group: Some(group.id),
        ..search("pa0")
    };
    assert!(
        users
            .page(&in_team, None, 50)
            .await
            .unwrap()
            .search_too_broad
    );
    assert!(
        !users
            .page(&search("pa0"), None, 50)
            .await
            .unwrap()
            .search_too_broad
    );
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

/// Words written before migration 0610 (without the username) are found after it in
/// username order, past the old bound of 1,000; a row an older node writes without the
/// username gets it from `users`.
async fn words_written_before_0610_are_found_in_username_order(t: TestStore) {
    let (pool, url, _dir) = migrated_to(&t, 600).await;
    // Inserted in an order unlike the usernames', so the order comes from the keys.
    for i in (0..1_100).rev() {
        let id = format!("6f0b2a40-6c1e-4a53-9a86-{:012}", (i * 7) % 1_100);
        let username = format!("U{i:04}");
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, email_key, family_name, \
             display_name, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4, 'Byron', 'Ada Byron', 'active', $5, $5)",
        )
        .bind(&id)
        .bind(&username)
        .bind(username.to_lowercase())
        .bind(format!("u{i:04}@corp.example"))
        .bind(AT)
        .execute(&pool)
        .await
        .unwrap();
        for word in ["ada", "byron"] {
            sqlx::query("INSERT INTO user_words (word, user_id) VALUES ($1, $2)")
                .bind(word)
                .bind(&id)
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    pool.close().await;

    let store = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let byron = search("byron");
    let first = store.users().page(&byron, None, 3).await.unwrap();
    let names: Vec<&str> = first.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["U0000", "U0001", "U0002"]);
    let after = first.next.unwrap();
    let second = store.users().page(&byron, Some(&after), 2).await.unwrap();
    let names: Vec<&str> = second.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["U0003", "U0004"]);
    assert_eq!(store.users().count(&byron).await.unwrap(), 1_100);
    assert_eq!(
        store.users().count(&search("ada byron")).await.unwrap(),
        1_100
    );
    store.close().await;

    // A node of the version before, during a rolling upgrade, writes a user's words without
    // the username.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let id = "6f0b2a40-6c1e-4a53-9a86-000000009999";
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, email_key, family_name, \
         status, created_at, updated_at) \
         VALUES ($1, 'A.Hopper', 'a.hopper', 'gh@corp.example', 'gh@corp.example', 'Byron', \
         'active', $2, $2)",
    )
    .bind(id)
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO user_words (word, user_id) VALUES ('byron', $1), ('a', $1)")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let again = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let first = again.users().page(&byron, None, 2).await.unwrap();
    let names: Vec<&str> = first.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["A.Hopper", "U0000"]);
    assert_eq!(again.users().count(&byron).await.unwrap(), 1_101);
    again.close().await;
}

/// A rename that keeps a user's words (`dora.ng` to `ng.dora`) moves them in a search's and a
/// group's username order however it is written: through the directory, and as a node of an
/// older version writes it, `users` alone (migration 0620's trigger copies the key).
async fn a_rename_by_any_writer_moves_the_user_in_searches_and_member_listings(t: TestStore) {
    let users = t.store.users();
    let mut ids = Vec::new();
    for name in ["dora.ng", "mia.ng", "olga.ng"] {
        let mut new = NewUser::new(name, format!("{name}@corp.example"));
        new.family_name = Some("Byron".into());
        ids.push(users.create(&admin(), new).await.unwrap().id);
    }
    let group = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("crew"))
        .await
        .unwrap();
    for id in &ids {
        t.store
            .groups()
            .add_member(&admin(), group.id, *id)
            .await
            .unwrap();
    }
    let members = UserFilter {
        group: Some(group.id),
        ..UserFilter::default()
    };
    // Pages of one user, so the order comes from the keys the rows carry.
    let first = |filter: UserFilter| {
        let store = &t.store;
        async move {
            let page = store.users().page(&filter, None, 1).await.unwrap();
            page.users[0].username.clone()
        }
    };
    assert_eq!(first(search("byron")).await, "dora.ng");
    assert_eq!(first(members.clone()).await, "dora.ng");

    // Through the directory.
    let patch = UserPatch {
        username: Some("ng.dora".into()),
        ..UserPatch::default()
    };
    users.update(&admin(), ids[0], patch).await.unwrap();
    assert_eq!(first(search("byron")).await, "mia.ng");
    assert_eq!(first(members.clone()).await, "mia.ng");

    // As an older node renames: the `users` row alone.
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&t.url)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET username = 'ng.mia', username_key = 'ng.mia' WHERE id = $1")
        .bind(ids[1].to_string())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(first(search("byron")).await, "ng.dora");
    assert_eq!(first(members.clone()).await, "ng.dora");
    let all = users.page(&search("byron"), None, 10).await.unwrap();
    let names: Vec<&str> = all.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["ng.dora", "ng.mia", "olga.ng"]);
    // Paged one at a time, each appears once, in that order.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = users.page(&members, after.as_ref(), 1).await.unwrap();
        walked.extend(page.users.iter().map(|u| u.username.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, ["ng.dora", "ng.mia", "olga.ng"]);
}

/// `page_with_total` reads a search by words once for both its page and its total: each of
/// its answers is what the page and the count, asked separately, say. Searches with both
/// sides (usernames and words), users with two words in the range, another term, a status,
/// a group; pages at several offsets, and totals under and past the cap.
async fn a_page_and_its_total_in_one_statement_are_the_page_and_the_count(t: TestStore) {
    let users = t.store.users();
    let group = t
        .store
        .groups()
        .create(&admin(), NewGroup::new("night shift"))
        .await
        .unwrap();
    for i in 0..23 {
        // Usernames beginning "park" (the username side), and family names Park and
        // Parker (two words in the range "par" for some), spread over usernames.
        let (username, given, family) = match i % 4 {
            0 => (format!("park.u{i:02}"), "Ann", "Lee"),
            1 => (format!("a{i:02}.lee"), "Parker", "Park"),
            2 => (format!("z{i:02}.kim"), "Ann", "Park"),
            _ => (format!("m{i:02}.roe"), "Bo", "Parkinson"),
        };
        let new = person(
            &username,
            &format!("{username}@corp.example"),
            given,
            family,
        );
        let user = users.create(&admin(), new).await.unwrap();
        if i % 3 == 0 {
            users.suspend(&admin(), user.id).await.unwrap();
        }
        if i % 2 == 0 {
            t.store
                .groups()
                .add_member(&admin(), group.id, user.id)
                .await
                .unwrap();
        }
    }
    let filters = [
        search("park"),
        search("par"),
        search("ann park"),
        search("parkinson"),
        search("nobody"),
        UserFilter {
            status: Some(UserStatus::Active),
            ..search("park")
        },
        UserFilter {
            group: Some(group.id),
            ..search("par")
        },
    ];
    let mut by_words = 0;
    for filter in &filters {
        for (offset, limit) in [(0, 5), (0, 50), (5, 5), (10, 4), (20, 5), (40, 5)] {
            for cap in [3, 10, 10_000] {
                let (page, total) = users
                    .page_with_total(filter, offset, limit, cap)
                    .await
                    .unwrap();
                let alone = users.page_at_offset(filter, offset, limit).await.unwrap();
                let counted = users.count_up_to(filter, cap).await.unwrap();
                assert_eq!(page, alone, "{filter:?} at {offset}, {limit}");
                assert_eq!(total, counted, "{filter:?} capped at {cap}");
                by_words += usize::from(!page.users.is_empty() && offset == 0);
            }
        }
    }
    // The searches found users, so the statement under test ran (not only the fallbacks).
    assert!(by_words >= 6 * 3 * 2, "{by_words}");
    let (page, total) = users
        .page_with_total(&search("park"), 0, 50, 10_000)
        .await
        .unwrap();
    // Every user has "park" in a username or a word.
    assert_eq!((page.users.len(), total), (23, 23));
}
