//! A SCIM group's version (migration 0630): a hash of the group's own fields and its members'
//! version, which the database's triggers move on every change to what the member list shows,
//! whoever writes it. Each writer here must move it, a change that shows nothing must not, and
//! `If-Match` with it is checked after the group's row is locked.

use latchkey_idp::directory::{User, UserPatch};
use latchkey_idp::ids::GroupId;
use latchkey_idp::scim::{Patched, ScimDirectory};
use latchkey_idp::tokens::{ApiTokens, TokenInfo, TokenScope};
use latchkey_idp::{Actor, Store};
use serde_json::{Value, json};

use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords, migrated_to};

on_both_backends!(
    every_writer_moves_a_group_version,
    if_match_is_checked_against_the_group_version,
    concurrent_patches_with_one_etag_one_wins,
    groups_of_an_older_schema_get_a_version,
);

const BASE: &str = "https://idp.example/scim/v2";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn scim_token(store: &Store) -> TokenInfo {
    ApiTokens::new(store)
        .create_scoped(&Actor::cli("tester"), "hr-feed", TokenScope::Scim)
        .await
        .unwrap()
        .0
}

/// The group's version as answered without its members, held to be the one answered with
/// them.
async fn version(scim: &ScimDirectory, id: GroupId) -> i64 {
    let light = scim.get_group(&id.to_string(), false).await.unwrap();
    let full = scim.get_group(&id.to_string(), true).await.unwrap();
    assert_eq!(light.version, full.version, "{}", full.json);
    assert!(light.json.get("members").is_none());
    assert_eq!(light.json["meta"], full.json["meta"]);
    light.version
}

fn ops(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn every_writer_moves_a_group_version(t: TestStore) {
    let s = &t.store;
    let scim = ScimDirectory::new(s.clone(), BASE);
    let token = scim_token(s).await;
    let eng = group(s, "eng").await;
    let other = group(s, "other").await;
    let dan = user(s, "dan").await;
    let erin = user(s, "erin").await;
    let fay = user(s, "fay").await;
    let id = eng.id.to_string();
    let mut last = version(&scim, eng.id).await;
    // Each step: what it does, and whether the group a client sees changed.
    macro_rules! step {
        ($what:expr, $moves:expr) => {{
            let now = version(&scim, eng.id).await;
            if $moves {
                assert_ne!(now, last, "{} did not move the version", $what);
            } else {
                assert_eq!(now, last, "{} moved the version", $what);
            }
            last = now;
        }};
    }

    // The writers the console, the API and the CLI go through.
    join(s, eng.id, dan.id).await;
    step!("Groups::add_member", true);
    s.groups()
        .add_members(&admin(), &eng, std::slice::from_ref(&fay))
        .await
        .unwrap();
    step!("Groups::add_members (bulk)", true);
    s.groups()
        .remove_member(&admin(), eng.id, fay.id)
        .await
        .unwrap();
    step!("Groups::remove_member", true);
    let eng = s
        .groups()
        .rename(&admin(), eng.id, "engineering")
        .await
        .unwrap();
    step!("Groups::rename", true);

    // SCIM: a member added as written, then the same add again and a removal of a member who
    // is not there (no change), then externalId.
    let add_erin = ops(json!([{"op": "add", "path": "members",
        "value": [{"value": erin.id.to_string(), "display": "Erin (HR)"}]}]));
    let Patched::Applied(answered) = scim
        .patch_group(&token, &id, &add_erin, None)
        .await
        .unwrap()
    else {
        panic!("a members-only PATCH is answered with no body");
    };
    step!("a SCIM PATCH adding a member", true);
    assert_eq!(
        answered, last,
        "the 204's ETag is the group's version after"
    );
    scim.patch_group(&token, &id, &add_erin, None)
        .await
        .unwrap();
    step!("a SCIM PATCH adding a member again", false);
    let remove_fay = ops(json!([{"op": "remove", "path": "members",
        "value": [{"value": fay.id.to_string()}]}]));
    scim.patch_group(&token, &id, &remove_fay, None)
        .await
        .unwrap();
    step!("a SCIM PATCH removing a non-member", false);
    let external = ops(json!([{"op": "replace", "path": "externalId", "value": "hr-eng"}]));
    scim.patch_group(&token, &id, &external, None)
        .await
        .unwrap();
    step!("a SCIM PATCH of externalId", true);
    scim.patch_group(&token, &id, &external, None)
        .await
        .unwrap();
    step!("the same externalId again", false);

    // Hand-written SQL on the memberships, from a connection of its own.
    let hand = sqlx::AnyPool::connect(&t.url).await.unwrap();
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id, username_key, added_at) \
         VALUES ($1, $2, 'fay', '2026-12-06T10:00:00.000000Z')",
    )
    .bind(eng.id.to_string())
    .bind(fay.id.to_string())
    .execute(&hand)
    .await
    .unwrap();
    step!("an INSERT INTO group_members", true);
    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(eng.id.to_string())
        .bind(fay.id.to_string())
        .execute(&hand)
        .await
        .unwrap();
    step!("a DELETE FROM group_members", true);
    sqlx::query("UPDATE scim_group_members SET entry = $1 WHERE group_id = $2")
        .bind(json!({"value": erin.id.to_string(), "display": "Erin E."}).to_string())
        .bind(eng.id.to_string())
        .execute(&hand)
        .await
        .unwrap();
    step!("an UPDATE of a member's entry as SCIM wrote it", true);
    for (from, to) in [(dan.id, fay.id), (fay.id, dan.id)] {
        sqlx::query("UPDATE group_members SET user_id = $1 WHERE group_id = $2 AND user_id = $3")
            .bind(to.to_string())
            .bind(eng.id.to_string())
            .bind(from.to_string())
            .execute(&hand)
            .await
            .unwrap();
        step!("an UPDATE moving a membership to another user", true);
    }

    // A member's username is the `display` of an entry SCIM did not write; case matters.
    for name in ["daniel", "Daniel"] {
        s.users()
            .update(
                &admin(),
                dan.id,
                UserPatch {
                    username: Some(name.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        step!(format!("renaming a member to {name}"), true);
        let full = scim.get_group(&id, true).await.unwrap().json;
        assert!(
            full.to_string()
                .contains(&format!("\"display\":\"{name}\""))
        );
    }
    s.users()
        .update(
            &admin(),
            dan.id,
            UserPatch {
                given_name: Some(Some("Dan".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    step!("a member's given name (not shown in the group)", false);

    // Another group's members are not this group's.
    join(s, other.id, fay.id).await;
    step!("a member added to another group", false);

    // Deleting a member: the membership goes by the foreign key's cascade.
    s.users().delete(&admin(), erin.id).await.unwrap();
    step!("deleting a member", true);
    let full = scim.get_group(&id, true).await.unwrap().json;
    assert_eq!(full["members"].as_array().map(Vec::len), Some(1), "{full}");
    assert!(!full.to_string().contains(&erin.id.to_string()));
    // Deleting a user who is no member.
    let gus = user(s, "gus").await;
    s.users().delete(&admin(), gus.id).await.unwrap();
    step!("deleting a user who is no member", false);
    assert_eq!(version(&scim, eng.id).await, last, "reading moves nothing");
}

async fn if_match_is_checked_against_the_group_version(t: TestStore) {
    let s = &t.store;
    let scim = ScimDirectory::new(s.clone(), BASE);
    let token = scim_token(s).await;
    let eng = group(s, "eng").await;
    let dan = user(s, "dan").await;
    let erin = user(s, "erin").await;
    let id = eng.id.to_string();
    let tag = |v: i64| latchkey_scim::etag(v);
    let first = version(&scim, eng.id).await;
    let add = |u: &User| {
        ops(json!([{"op": "add", "path": "members", "value": [{"value": u.id.to_string()}]}]))
    };
    // Members only, with the current ETag: applied, answered with the version after.
    let Patched::Applied(second) = scim
        .patch_group(&token, &id, &add(&dan), Some(&tag(first)))
        .await
        .unwrap()
    else {
        panic!("a members-only PATCH is answered with no body");
    };
    assert_ne!(second, first);
    assert_eq!(second, version(&scim, eng.id).await);
    // The ETag it replaced: 412, members only or not, and nothing written.
    let members_before = s.groups().members(eng.id).await.unwrap().len();
    for body in [
        add(&erin),
        ops(json!([{"op": "replace", "path": "displayName", "value": "x"}])),
    ] {
        let e = scim
            .patch_group(&token, &id, &body, Some(&tag(first)))
            .await
            .unwrap_err();
        assert_eq!(e.status, 412, "{body}");
    }
    let e = scim
        .replace_group(
            &token,
            &id,
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "x"}),
            Some(&tag(first)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 412);
    let e = scim
        .delete_group(&token, &id, Some(&tag(first)))
        .await
        .unwrap_err();
    assert_eq!(e.status, 412);
    assert_eq!(
        s.groups().members(eng.id).await.unwrap().len(),
        members_before
    );
    assert_eq!(s.groups().get(eng.id).await.unwrap().name, "eng");
    // A change by another writer makes the ETag a client holds stale.
    join(s, eng.id, erin.id).await;
    let e = scim
        .patch_group(
            &token,
            &id,
            &ops(json!([{"op": "remove", "path": "members",
                "value": [{"value": dan.id.to_string()}]}])),
            Some(&tag(second)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 412);
    // The whole-group path with the current ETag answers the group, members and version.
    let third = version(&scim, eng.id).await;
    let Patched::Resource(r) = scim
        .patch_group(
            &token,
            &id,
            &ops(json!([{"op": "replace", "path": "displayName", "value": "engineering"}])),
            Some(&tag(third)),
        )
        .await
        .unwrap()
    else {
        panic!("a PATCH of displayName is answered with the group");
    };
    assert_eq!(r.json["members"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.version, version(&scim, eng.id).await);
    assert_ne!(r.version, third);
    // The ETag before that PATCH is stale now; a DELETE with the current one goes through.
    let e = scim
        .delete_group(&token, &id, Some(&tag(third)))
        .await
        .unwrap_err();
    assert_eq!(e.status, 412);
    scim.delete_group(&token, &id, Some(&tag(r.version)))
        .await
        .unwrap();
}

/// Two membership changes sent at once with the same ETag (a client retrying, or two
/// workers of one): exactly one is applied, the other is a 412, never a lost update.
async fn concurrent_patches_with_one_etag_one_wins(t: TestStore) {
    let s = &t.store;
    let scim = ScimDirectory::new(s.clone(), BASE);
    let token = scim_token(s).await;
    let eng = group(s, "eng").await;
    let id = eng.id.to_string();
    let mut people = Vec::new();
    for name in ["dan", "erin", "fay", "gus", "hal", "ivy"] {
        people.push(user(s, name).await);
    }
    for (done, round) in people.chunks(2).enumerate() {
        let tag = latchkey_scim::etag(version(&scim, eng.id).await);
        let patch = |u: &User| {
            ops(json!([{"op": "add", "path": "members", "value": [{"value": u.id.to_string()}]}]))
        };
        let (a, b) = (patch(&round[0]), patch(&round[1]));
        let (ra, rb) = tokio::join!(
            scim.patch_group(&token, &id, &a, Some(&tag)),
            scim.patch_group(&token, &id, &b, Some(&tag)),
        );
        let statuses = [&ra, &rb].map(|r| r.as_ref().map_or_else(|e| e.status, |_| 204));
        let mut sorted = statuses;
        sorted.sort_unstable();
        assert_eq!(sorted, [204, 412], "{statuses:?}");
        let members = s.groups().members(eng.id).await.unwrap();
        let winner = if ra.is_ok() { &round[0] } else { &round[1] };
        assert!(members.iter().any(|m| m.id == winner.id));
        assert_eq!(members.len(), done + 1, "one member a round");
    }
}

/// Groups of a database from before 0630 get a version, and their ETag moves from there.
async fn groups_of_an_older_schema_get_a_version(t: TestStore) {
    const AT: &str = "2026-12-01T09:00:00.000000Z";
    const GROUP: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1b01";
    const DAN: &str = "6f0b2a40-6c1e-4a53-9a86-4a8f6f0c1b02";
    let (pool, url, _dir) = migrated_to(&t, 620).await;
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, email_key, status, \
         created_at, updated_at) VALUES ($1, 'dan', 'dan', 'dan@example.org', \
         'dan@example.org', 'active', $2, $2)",
    )
    .bind(DAN)
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO directory_groups (id, name, name_key, created_at, updated_at) \
         VALUES ($1, 'Eng', 'eng', $2, $2)",
    )
    .bind(GROUP)
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO group_members (group_id, user_id, added_at, username_key) \
         VALUES ($1, $2, $3, 'dan')",
    )
    .bind(GROUP)
    .bind(DAN)
    .bind(AT)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open_url(&url, 2, cheap_passwords()).await.unwrap();
    let (members_version,): (i64,) =
        sqlx::query_as("SELECT members_version FROM directory_groups WHERE id = $1")
            .bind(GROUP)
            .fetch_one(&sqlx::AnyPool::connect(&url).await.unwrap())
            .await
            .unwrap();
    assert_eq!(members_version, 0);
    let scim = ScimDirectory::new(store.clone(), BASE);
    let id: GroupId = GROUP.parse().unwrap();
    let before = version(&scim, id).await;
    store
        .groups()
        .remove_member(&admin(), id, DAN.parse().unwrap())
        .await
        .unwrap();
    assert_ne!(version(&scim, id).await, before);
}
