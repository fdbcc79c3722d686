//! A SCIM group's member entries, one row per member (migration 0580): an install that kept
//! them as one JSON array per group keeps every entry of a member it still has.

use latchkey_idp::Store;
use latchkey_idp::scim::ScimDirectory;
use serde_json::json;

use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords, migrated_to};

on_both_backends!(entries_move_from_the_json_array_to_rows);

const AT: &str = "2026-12-01T09:00:00.000000Z";
const GROUP: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1a01";
const DAN: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1a02";
const ERIN: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1a03";
const GONE: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1a04";

async fn entries_move_from_the_json_array_to_rows(t: TestStore) {
    // A database of the same kind as the case's, migrated only to the version before 0580.
    let (pool, url, _dir) = migrated_to(&t, 560).await;
    for (id, name) in [(DAN, "dan"), (ERIN, "erin"), (GONE, "gone")] {
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, email_key, status, \
             created_at, updated_at) VALUES ($1, $2, $2, $3, $3, 'active', $4, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(format!("{name}@example.org"))
        .bind(AT)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO directory_groups (id, name, name_key, created_at, updated_at) \
         VALUES ($1, 'Eng', 'eng', $2, $2)",
    )
    .bind(GROUP)
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    // dan and erin are members; the entry for `gone` outlived its membership.
    for user in [DAN, ERIN] {
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id, added_at, username_key) \
             VALUES ($1, $2, $3, '')",
        )
        .bind(GROUP)
        .bind(user)
        .bind(AT)
        .execute(&pool)
        .await
        .unwrap();
    }
    let written = json!([
        {"value": DAN, "display": "Dan (HR)", "type": "User"},
        {"value": GONE, "display": "Gone"},
    ]);
    sqlx::query(
        "INSERT INTO scim_groups (group_id, external_id, members, updated_at) \
         VALUES ($1, 'hr-eng', $2, $3)",
    )
    .bind(GROUP)
    .bind(written.to_string())
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let scim = ScimDirectory::new(store, "https://idp.example/scim/v2");
    let group = scim.get_group(GROUP, true).await.unwrap().json;
    assert_eq!(group["externalId"], "hr-eng");
    assert_eq!(
        group["members"],
        json!([
            {"value": DAN, "display": "Dan (HR)", "type": "User"},
            {"value": ERIN, "display": "erin", "type": "User",
                "$ref": format!("https://idp.example/scim/v2/Users/{ERIN}")},
        ]),
        "dan's entry as written, erin's from her username, nothing of `gone`"
    );
}
