//! Concurrent writes from two nodes over one database: each pair runs many rounds at once
//! (two store handles, each its own pool, as two IdP nodes have) and every answer must be one
//! of the right ones: a conflict the caller can act on (a duplicate, 409 `uniqueness`, an
//! unknown or missing member), never a database error (a PostgreSQL deadlock, a unique
//! violation that slipped past a check, SQLite busy).

use latchkey_idp::apps::NewApplication;
use latchkey_idp::directory::{NewGroup, NewUser, UserPatch};
use latchkey_idp::error::Error;
use latchkey_idp::scim::{Patched, ScimDirectory};
use latchkey_idp::tokens::{ApiTokens, TokenInfo, TokenScope};
use latchkey_idp::{Actor, Store};
use latchkey_scim::ScimError;
use serde_json::{Value, json};

use super::last_admin::active_admins;
use super::{admin, group, join, user};
use crate::on_both_backends;
use crate::support::{TestStore, cheap_passwords};
use latchkey_idp::console::{Holder, Role};

on_both_backends!(
    scim_member_removal_and_the_user_deletion_race,
    console_member_removal_and_the_user_deletion_race,
    scim_creates_of_one_username_race,
    creates_of_one_name_race,
    adds_of_one_member_race,
    renames_of_one_user_race,
    scim_member_removal_and_the_user_rename_race,
    member_addition_and_the_user_deletion_race,
    a_write_turned_away_by_another_writer_is_busy,
    two_nodes_purge_the_audit_log_at_once,
    renames_and_deletions_of_one_user_race,
    edits_of_different_fields_of_one_user_both_land,
    edits_of_different_settings_of_one_app_both_land,
    an_import_and_an_edit_of_one_user_both_land,
    grants_of_one_role_to_one_holder_race,
    assignments_of_one_group_to_one_app_race,
    two_admins_revoking_each_other_race,
    suspension_and_the_admin_group_deletion_race,
    an_hr_feeds_deactivation_a_grant_and_a_revocation_leave_an_admin,
    conditional_writes_of_one_group_from_one_read_race,
    a_rename_and_a_bulk_load_of_one_group_both_land,
);

const ROUNDS: usize = 50;
const BASE: &str = "https://idp.example/scim/v2";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The two nodes: the case's store and a second handle (its own pool) on its database.
async fn nodes(t: &TestStore) -> (Store, Store) {
    let b = Store::open_url(&t.url, 5, cheap_passwords()).await.unwrap();
    (t.store.clone(), b)
}

async fn scim_token(store: &Store) -> TokenInfo {
    ApiTokens::new(store)
        .create_scoped(&Actor::cli("tester"), "hr-feed", TokenScope::Scim)
        .await
        .unwrap()
        .0
}

/// The rounds that ended in a fault, said at the end with how many there were.
#[derive(Default)]
struct Faults(Vec<String>);

impl Faults {
    /// Whether `result` is a database error (what the web and SCIM surfaces answer as a
    /// 500), or the database's turning the write away for another (a 503); it is kept.
    fn store<T: std::fmt::Debug>(
        &mut self,
        round: usize,
        what: &str,
        result: &Result<T, Error>,
    ) -> bool {
        match result {
            Err(
                e @ (Error::Database(_)
                | Error::DatabaseUnwritable { .. }
                | Error::Busy {
                    what: latchkey_idp::error::DATABASE_CONTENDED,
                    ..
                }),
            ) => {
                self.0.push(format!("round {round}, {what}: {e}"));
                true
            }
            _ => false,
        }
    }

    /// Whether `result` is a SCIM server fault (5xx); it is kept.
    fn scim<T: std::fmt::Debug>(
        &mut self,
        round: usize,
        what: &str,
        result: &Result<T, ScimError>,
    ) -> bool {
        match result {
            Err(e) if e.status >= 500 => {
                self.0.push(format!("round {round}, {what}: {e}"));
                true
            }
            _ => false,
        }
    }

    /// Two writers racing for one thing: unless either ended in a fault (kept), exactly one
    /// succeeded and the other was refused as `lost` says.
    #[track_caller]
    fn one_wins<T: std::fmt::Debug>(
        &mut self,
        round: usize,
        first: &Result<T, Error>,
        second: &Result<T, Error>,
        lost: impl Fn(&Error) -> bool,
    ) {
        let fault = self.store(round, "first", first) | self.store(round, "second", second);
        if !fault {
            assert!(
                match (first, second) {
                    (Ok(_), Err(e)) | (Err(e), Ok(_)) => lost(e),
                    _ => false,
                },
                "round {round}: {first:?} {second:?}"
            );
        }
    }

    #[track_caller]
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} faults in {ROUNDS} rounds: {:#?}",
            self.0.len(),
            self.0
        );
    }
}

/// A SCIM PATCH taking a user out of a group while the user is deleted (over SCIM): the PATCH
/// locks the group, then deletes the membership; the deletion locks the user, its cascade
/// deletes the membership and the membership's trigger locks the group (migration 0630).
async fn scim_member_removal_and_the_user_deletion_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let g = group(&a, "eng").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        join(&a, g.id, x.id).await;
        let remove = json!({"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{}\"]", x.id)}]});
        let (patched, deleted) = tokio::join!(
            async {
                scim_a
                    .patch_group(&token, &g.id.to_string(), &remove, None)
                    .await
            },
            async { scim_b.delete_user(&token, &x.id.to_string(), None).await },
        );
        let fault =
            faults.scim(round, "patched", &patched) | faults.scim(round, "deleted", &deleted);
        if !fault {
            assert!(matches!(patched, Ok(Patched::Applied(_))), "{patched:?}");
            deleted.unwrap();
        }
    }
    faults.assert_none();
    assert!(a.groups().members(g.id).await.unwrap().is_empty());
}

/// The same pair through the console (or API): a member removed while the user is deleted.
async fn console_member_removal_and_the_user_deletion_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let g = group(&a, "eng").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        join(&a, g.id, x.id).await;
        let (removed, deleted) = tokio::join!(
            async { a.groups().remove_member(&admin(), g.id, x.id).await },
            async { b.users().delete(&admin(), x.id).await },
        );
        let fault =
            faults.store(round, "removed", &removed) | faults.store(round, "deleted", &deleted);
        if !fault {
            assert!(
                matches!(
                    removed,
                    Ok(()) | Err(Error::UnknownUser { .. } | Error::NotMember { .. })
                ),
                "round {round}: {removed:?}"
            );
            deleted.unwrap();
        }
    }
    faults.assert_none();
}

/// Two SCIM POSTs of one `userName`: one 201, one 409 `uniqueness`.
async fn scim_creates_of_one_username_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let body = |n: u8| -> Value {
            json!({"schemas": [USER], "userName": format!("u{round}"),
                "emails": [{"value": format!("u{round}-{n}@example.org"), "primary": true}]})
        };
        let (first, second) = tokio::join!(
            async { scim_a.create_user(&token, &body(1)).await },
            async { scim_b.create_user(&token, &body(2)).await },
        );
        let fault = faults.scim(round, "first", &first) | faults.scim(round, "second", &second);
        if !fault {
            let refused: Vec<&ScimError> = [&first, &second]
                .into_iter()
                .filter_map(|r| r.as_ref().err())
                .collect();
            assert_eq!(refused.len(), 1, "round {round}: {first:?} {second:?}");
            assert_eq!(refused[0].status, 409, "round {round}: {}", refused[0]);
            assert_eq!(refused[0].scim_type.map(|t| t.as_str()), Some("uniqueness"));
        }
    }
    faults.assert_none();
}

/// Two creates of one username, one group name, one entity ID (console or API, two nodes):
/// one is made, the other refused as a duplicate.
async fn creates_of_one_name_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let name = format!("n{round}");
        let (first, second) = tokio::join!(
            async {
                a.users()
                    .create(
                        &admin(),
                        NewUser::new(&name, format!("{name}-1@example.org")),
                    )
                    .await
            },
            async {
                b.users()
                    .create(
                        &admin(),
                        NewUser::new(&name, format!("{name}-2@example.org")),
                    )
                    .await
            },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::DuplicateUsername { .. })
        });
        let (first, second) = tokio::join!(
            async { a.groups().create(&admin(), NewGroup::new(&name)).await },
            async { b.groups().create(&admin(), NewGroup::new(&name)).await },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::DuplicateGroup { .. })
        });
        let entity = format!("https://{name}.example.org");
        let acs = format!("https://{name}.example.org/acs");
        let (first, second) = tokio::join!(
            async {
                a.apps()
                    .create(&admin(), NewApplication::new(&entity, "App", &acs))
                    .await
            },
            async {
                b.apps()
                    .create(&admin(), NewApplication::new(&entity, "App", &acs))
                    .await
            },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::DuplicateEntityId { .. })
        });
    }
    faults.assert_none();
}

/// One member added by two writers at once: through the console, one adds and the other is
/// told it is already a member; through SCIM (an add is idempotent) both succeed.
async fn adds_of_one_member_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let g = group(&a, "eng").await;
    let h = group(&a, "ops").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let (first, second) = tokio::join!(
            async { a.groups().add_member(&admin(), g.id, x.id).await },
            async { b.groups().add_member(&admin(), g.id, x.id).await },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::AlreadyMember { .. })
        });
        let add = json!({"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": x.id.to_string()}]}]});
        let (first, second) = tokio::join!(
            async {
                scim_a
                    .patch_group(&token, &h.id.to_string(), &add, None)
                    .await
            },
            async {
                scim_b
                    .patch_group(&token, &h.id.to_string(), &add, None)
                    .await
            },
        );
        let fault = faults.scim(round, "first", &first) | faults.scim(round, "second", &second);
        if !fault {
            first.unwrap();
            second.unwrap();
        }
    }
    faults.assert_none();
    assert_eq!(a.groups().members(g.id).await.unwrap().len(), ROUNDS);
    assert_eq!(a.groups().members(h.id).await.unwrap().len(), ROUNDS);
}

/// A user renamed by two clients at once (both succeed, one after the other), and two users
/// renamed to one name at once (one succeeds, one is told the name is taken); the users are
/// members of a group, whose version a rename moves (migration 0630).
async fn renames_of_one_user_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let g = group(&a, "eng").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let y = user(&a, &format!("y{round}")).await;
        join(&a, g.id, x.id).await;
        join(&a, g.id, y.id).await;
        let rename = |name: String| UserPatch {
            username: Some(name),
            ..UserPatch::default()
        };
        let (first, second) = tokio::join!(
            async {
                a.users()
                    .update(&admin(), x.id, rename(format!("x{round}-a")))
                    .await
            },
            async {
                b.users()
                    .update(&admin(), x.id, rename(format!("x{round}-b")))
                    .await
            },
        );
        let fault = faults.store(round, "first", &first) | faults.store(round, "second", &second);
        if !fault {
            first.unwrap();
            second.unwrap();
        }
        let (first, second) = tokio::join!(
            async {
                a.users()
                    .update(&admin(), x.id, rename(format!("z{round}")))
                    .await
            },
            async {
                b.users()
                    .update(&admin(), y.id, rename(format!("z{round}")))
                    .await
            },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::DuplicateUsername { .. })
        });
    }
    faults.assert_none();
}

/// A SCIM PATCH taking a user out of a group while an admin renames them: the rename rewrites
/// the user's membership rows (migration 0620) and moves their groups' versions (0630).
async fn scim_member_removal_and_the_user_rename_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let g = group(&a, "eng").await;
    let h = group(&a, "ops").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        join(&a, g.id, x.id).await;
        join(&a, h.id, x.id).await;
        let remove = json!({"schemas": [PATCH], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{}\"]", x.id)}]});
        let rename = UserPatch {
            username: Some(format!("x{round}-renamed")),
            ..UserPatch::default()
        };
        let (patched, renamed) = tokio::join!(
            async {
                scim_a
                    .patch_group(&token, &g.id.to_string(), &remove, None)
                    .await
            },
            async { b.users().update(&admin(), x.id, rename).await },
        );
        let fault =
            faults.scim(round, "patched", &patched) | faults.store(round, "renamed", &renamed);
        if !fault {
            assert!(matches!(patched, Ok(Patched::Applied(_))), "{patched:?}");
            renamed.unwrap();
        }
    }
    faults.assert_none();
}

/// A user added to a group (console, and SCIM) while they are deleted: the addition is made
/// before the deletion (and goes with it) or finds no user.
async fn member_addition_and_the_user_deletion_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let g = group(&a, "eng").await;
    let h = group(&a, "ops").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        join(&a, g.id, x.id).await;
        let (added, deleted) = tokio::join!(
            async { a.groups().add_member(&admin(), h.id, x.id).await },
            async { b.users().delete(&admin(), x.id).await },
        );
        let fault = faults.store(round, "added", &added) | faults.store(round, "deleted", &deleted);
        if !fault {
            assert!(
                matches!(added, Ok(()) | Err(Error::UnknownUser { .. })),
                "round {round}: {added:?}"
            );
            deleted.unwrap();
        }
        let y = user(&a, &format!("y{round}")).await;
        join(&a, g.id, y.id).await;
        let add = json!({"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": y.id.to_string()}]}]});
        let (added, deleted) = tokio::join!(
            async {
                scim_a
                    .patch_group(&token, &h.id.to_string(), &add, None)
                    .await
            },
            async { b.users().delete(&admin(), y.id).await },
        );
        let fault =
            faults.scim(round, "patched", &added) | faults.store(round, "deleted", &deleted);
        if !fault {
            assert!(
                added.is_ok() || added.as_ref().is_err_and(|e| e.status == 400),
                "round {round}: {added:?}"
            );
            deleted.unwrap();
        }
    }
    faults.assert_none();
    assert!(a.groups().members(h.id).await.unwrap().is_empty());
}

/// A write the database turns away only because of another writer is `Busy` (503 with
/// `Retry-After` on every surface), never a server fault: on SQLite, the busy timeout running
/// out while another connection holds the write lock; on PostgreSQL, the victim of a deadlock.
async fn a_write_turned_away_by_another_writer_is_busy(t: TestStore) {
    let contended = |e: &Error| {
        matches!(
            e,
            Error::Busy {
                what: latchkey_idp::error::DATABASE_CONTENDED,
                retry_after_seconds: 1,
            }
        )
    };
    let x = user(&t.store, "x").await;
    let y = user(&t.store, "y").await;
    sqlx::any::install_default_drivers();
    let other = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&t.url)
        .await
        .unwrap();
    if t.url.starts_with("sqlite") {
        let mut holder = other.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *holder)
            .await
            .unwrap();
        let err = t
            .store
            .groups()
            .create(&admin(), NewGroup::new("eng"))
            .await
            .unwrap_err();
        assert!(contended(&err), "{err:?}");
        sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
        return;
    }
    // Two transactions lock x and y in opposite orders: PostgreSQL aborts one of them.
    let lock = "UPDATE users SET updated_at = updated_at WHERE id = $1";
    let (mut one, mut two) = (other.begin().await.unwrap(), other.begin().await.unwrap());
    sqlx::query(lock)
        .bind(x.id.to_string())
        .execute(&mut *one)
        .await
        .unwrap();
    sqlx::query(lock)
        .bind(y.id.to_string())
        .execute(&mut *two)
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        sqlx::query(lock).bind(y.id.to_string()).execute(&mut *one),
        sqlx::query(lock).bind(x.id.to_string()).execute(&mut *two),
    );
    let victim = match (first, second) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("one of the two is a deadlock's victim: {other:?}"),
    };
    assert!(contended(&Error::from(victim)));
}

/// Two nodes' retention sweeps at once (`[audit] retain_days` runs on every node): each old
/// event goes once, the two `audit.purged` lines together count every one, and neither
/// sweep fails.
async fn two_nodes_purge_the_audit_log_at_once(t: TestStore) {
    use latchkey_idp::ManualClock;
    use latchkey_idp::audit::Change;
    use time::Duration;
    let clock = ManualClock::starting_now();
    let (a, b) = nodes(&t).await;
    let (a, b) = (a.with_clock(clock.clone()), b.with_clock(clock.clone()));
    for round in 0..3i64 {
        let start = a.now();
        let old = (0..11_000).map(|_| {
            (
                Actor::new("anonymous:192.0.2.1"),
                start - Duration::days(400),
                Change {
                    action: "login.failure",
                    target_kind: "user",
                    target_id: String::new(),
                    target_name: format!("r{round}"),
                    before: None,
                    after: None,
                },
            )
        });
        a.audit().record_many(old.collect()).await.unwrap();
        let cutoff = start - Duration::days(365);
        let (first, second) = tokio::join!(async { a.audit().purge_before(cutoff).await }, async {
            b.audit().purge_before(cutoff).await
        },);
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first + second, 11_000, "round {round}");
        let left = a
            .audit()
            .list(&latchkey_idp::audit::AuditFilter {
                action: Some("audit.purged".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let said: i64 = left
            .iter()
            .filter(|e| e.at >= start)
            .map(|e| e.after.as_ref().unwrap()["events"].as_i64().unwrap())
            .sum();
        assert_eq!(said, 11_000, "round {round}");
        clock.advance(Duration::minutes(1));
    }
}

/// A member of two groups renamed on one surface while deleted on the other (console and
/// SCIM, both ways round): SCIM locks the user first, the console did not.
async fn renames_and_deletions_of_one_user_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let g = group(&a, "eng").await;
    let h = group(&a, "ops").await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let y = user(&a, &format!("y{round}")).await;
        for member in [x.id, y.id] {
            join(&a, g.id, member).await;
            join(&a, h.id, member).await;
        }
        let rename = UserPatch {
            username: Some(format!("x{round}-renamed")),
            ..UserPatch::default()
        };
        let (renamed, deleted) = tokio::join!(
            async { a.users().update(&admin(), x.id, rename).await },
            async { scim_b.delete_user(&token, &x.id.to_string(), None).await },
        );
        let fault =
            faults.store(round, "renamed", &renamed) | faults.scim(round, "deleted", &deleted);
        if !fault {
            assert!(
                matches!(renamed, Ok(_) | Err(Error::UnknownUser { .. })),
                "round {round}: {renamed:?}"
            );
            deleted.unwrap();
        }
        let rename = json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "userName", "value": format!("y{round}-renamed")}]});
        let (renamed, deleted) = tokio::join!(
            async {
                scim_b
                    .patch_user(&token, &y.id.to_string(), &rename, None)
                    .await
            },
            async { a.users().delete(&admin(), y.id).await },
        );
        let fault =
            faults.scim(round, "renamed", &renamed) | faults.store(round, "deleted", &deleted);
        if !fault {
            assert!(
                renamed.is_ok() || renamed.as_ref().is_err_and(|e| e.status == 404),
                "round {round}: {renamed:?}"
            );
            assert!(
                matches!(deleted, Ok(()) | Err(Error::UnknownUser { .. })),
                "round {round}: {deleted:?}"
            );
        }
    }
    faults.assert_none();
}

/// Two edits of one user at once, each of a different field: both land. Every edit rewrites
/// the whole row from what it read, so one that read before the other committed would put
/// the other's field back: a suspension (console or an HR feed's `active: false`) undone by
/// an admin's rename of the same person at the same moment.
async fn edits_of_different_fields_of_one_user_both_land(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let named = UserPatch {
            given_name: Some(Some(format!("X{round}"))),
            ..UserPatch::default()
        };
        let (edited, suspended) = tokio::join!(
            async { a.users().update(&admin(), x.id, named).await },
            async { b.users().suspend(&admin(), x.id).await },
        );
        let fault =
            faults.store(round, "edited", &edited) | faults.store(round, "suspended", &suspended);
        if !fault {
            let now = a.users().get(x.id).await.unwrap();
            assert_eq!(
                (now.given_name.as_deref(), now.status.as_str()),
                (Some(format!("X{round}").as_str()), "suspended"),
                "round {round}: console edit and suspension"
            );
        }
        let y = user(&a, &format!("y{round}")).await;
        let named = UserPatch {
            family_name: Some(Some(format!("Y{round}"))),
            ..UserPatch::default()
        };
        let off = json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": false}]});
        let (edited, deactivated) = tokio::join!(
            async { a.users().update(&admin(), y.id, named).await },
            async {
                scim_b
                    .patch_user(&token, &y.id.to_string(), &off, None)
                    .await
            },
        );
        let fault = faults.store(round, "edited", &edited)
            | faults.scim(round, "deactivated", &deactivated);
        if !fault {
            let now = a.users().get(y.id).await.unwrap();
            assert_eq!(
                (now.family_name.as_deref(), now.status.as_str()),
                (Some(format!("Y{round}").as_str()), "suspended"),
                "round {round}: console edit and SCIM active=false"
            );
        }
    }
    faults.assert_none();
}

/// Two edits of one application at once, each of a different setting: both land (an edit
/// rewrites the whole definition from what it read, as a user's does).
async fn edits_of_different_settings_of_one_app_both_land(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let app = a
            .apps()
            .create(
                &admin(),
                NewApplication::new(
                    format!("https://sp{round}.example/"),
                    "App",
                    format!("https://sp{round}.example/acs"),
                ),
            )
            .await
            .unwrap();
        let (renamed, launched) = tokio::join!(
            async {
                a.apps()
                    .update(&admin(), app.id, |s| s.name = format!("App {round}"))
                    .await
            },
            async {
                b.apps()
                    .update(&admin(), app.id, |s| s.launch_without_confirmation = true)
                    .await
            },
        );
        let fault =
            faults.store(round, "renamed", &renamed) | faults.store(round, "launched", &launched);
        if !fault {
            let now = a.apps().get(app.id).await.unwrap();
            assert_eq!(
                (
                    now.settings.name.as_str(),
                    now.settings.launch_without_confirmation
                ),
                (format!("App {round}").as_str(), true),
                "round {round}"
            );
        }
    }
    faults.assert_none();
}

/// Two admins revoking each other's role at once, from two nodes: exactly one goes, the other
/// is refused `last_admin`, and one admin remains, never none.
async fn two_admins_revoking_each_other_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    let mut survivor: Option<latchkey_idp::ids::UserId> = None;
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let y = user(&a, &format!("y{round}")).await;
        for who in [x.id, y.id] {
            a.roles()
                .grant(&admin(), Role::Admin, Holder::User(who))
                .await
                .unwrap();
        }
        if let Some(old) = survivor.take() {
            a.roles()
                .revoke(&admin(), Role::Admin, Holder::User(old))
                .await
                .unwrap();
        }
        let (first, second) = tokio::join!(
            async {
                a.roles()
                    .revoke(&admin(), Role::Admin, Holder::User(y.id))
                    .await
            },
            async {
                b.roles()
                    .revoke(&admin(), Role::Admin, Holder::User(x.id))
                    .await
            },
        );
        faults.one_wins(round, &first, &second, |e| matches!(e, Error::LastAdmin));
        let left = active_admins(&a).await;
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        survivor = Some(if left[0] == x.username { x.id } else { y.id });
    }
    faults.assert_none();
}

/// One admin suspends the other (a direct holder) while the other deletes the group through
/// which they hold admin: exactly one goes, one admin remains.
async fn suspension_and_the_admin_group_deletion_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    let mut previous: Option<(latchkey_idp::ids::UserId, latchkey_idp::ids::GroupId)> = None;
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let y = user(&a, &format!("y{round}")).await;
        let g = group(&a, &format!("admins{round}")).await;
        join(&a, g.id, y.id).await;
        a.roles()
            .grant(&admin(), Role::Admin, Holder::User(x.id))
            .await
            .unwrap();
        a.roles()
            .grant(&admin(), Role::Admin, Holder::Group(g.id))
            .await
            .unwrap();
        if let Some((old_x, old_g)) = previous.take() {
            a.roles()
                .revoke(&admin(), Role::Admin, Holder::User(old_x))
                .await
                .unwrap();
            match a.groups().delete(&admin(), old_g).await {
                Ok(()) | Err(Error::UnknownGroup { .. }) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        let (suspended, deleted) = tokio::join!(
            async { a.users().suspend(&admin(), x.id).await.map(|_| ()) },
            async { b.groups().delete(&admin(), g.id).await },
        );
        faults.one_wins(round, &suspended, &deleted, |e| {
            matches!(e, Error::LastAdmin)
        });
        let left = active_admins(&a).await;
        assert_eq!(left.len(), 1, "round {round}: {left:?}");
        previous = Some((x.id, g.id));
    }
    faults.assert_none();
}

/// A CSV import naming a user's family name while an admin edits their given name: both land
/// (the import rewrites the row from what it read, keeping what its file does not name).
async fn an_import_and_an_edit_of_one_user_both_land(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let csv = format!(
            "username,email,family_name\nx{round},{},Imported\n",
            x.email
        );
        let named = UserPatch {
            given_name: Some(Some(format!("X{round}"))),
            ..UserPatch::default()
        };
        let (imported, edited) = tokio::join!(
            async { a.users().import_csv(&admin(), csv.as_bytes()).await },
            async { b.users().update(&admin(), x.id, named).await },
        );
        let fault =
            faults.store(round, "imported", &imported) | faults.store(round, "edited", &edited);
        if !fault {
            let now = a.users().get(x.id).await.unwrap();
            assert_eq!(
                (now.given_name.as_deref(), now.family_name.as_deref()),
                (Some(format!("X{round}").as_str()), Some("Imported")),
                "round {round}"
            );
        }
    }
    faults.assert_none();
}

/// One role granted to one holder by two admins at once (a user, then a group): one grant
/// goes, the other is told it is already granted (not a unique violation, a 500); a grant to
/// a user deleted at that moment is `unknown_user`.
async fn grants_of_one_role_to_one_holder_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let x = user(&a, &format!("x{round}")).await;
        let g = group(&a, &format!("g{round}")).await;
        for holder in [Holder::User(x.id), Holder::Group(g.id)] {
            let (first, second) = tokio::join!(
                async { a.roles().grant(&admin(), Role::Helpdesk, holder).await },
                async { b.roles().grant(&admin(), Role::Helpdesk, holder).await },
            );
            faults.one_wins(round, &first, &second, |e| {
                matches!(e, Error::AlreadyGranted { .. })
            });
        }
        let (granted, deleted) = tokio::join!(
            async {
                a.roles()
                    .grant(&admin(), Role::Auditor, Holder::User(x.id))
                    .await
            },
            async { b.users().delete(&admin(), x.id).await },
        );
        let fault =
            faults.store(round, "granted", &granted) | faults.store(round, "deleted", &deleted);
        if !fault {
            assert!(
                matches!(granted, Ok(()) | Err(Error::UnknownUser { .. })),
                "round {round}: {granted:?}"
            );
            deleted.unwrap();
        }
    }
    faults.assert_none();
}

/// One group given access to one application by two admins at once, then taken away by two:
/// each time one goes and the other is told it already is (or is not) assigned.
async fn assignments_of_one_group_to_one_app_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let g = group(&a, &format!("g{round}")).await;
        let app = a
            .apps()
            .create(
                &admin(),
                NewApplication::new(
                    format!("https://app{round}.example/"),
                    "App",
                    format!("https://app{round}.example/acs"),
                ),
            )
            .await
            .unwrap();
        let (first, second) = tokio::join!(
            async { a.apps().assign(&admin(), app.id, g.id).await },
            async { b.apps().assign(&admin(), app.id, g.id).await },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::AlreadyAssigned { .. })
        });
        let (first, second) = tokio::join!(
            async { a.apps().unassign(&admin(), app.id, g.id).await },
            async { b.apps().unassign(&admin(), app.id, g.id).await },
        );
        faults.one_wins(round, &first, &second, |e| {
            matches!(e, Error::NotAssigned { .. })
        });
    }
    faults.assert_none();
}

/// Three writers at once: an HR feed deactivates U over SCIM, an admin makes U admin, and
/// another revokes admin from V, the only active admin. SCIM leaves role holders alone, and
/// reads U under U's row lock, which a grant takes too: either the grant lands first (the
/// feed is refused, U is an active admin) or the feed does (U is suspended, and the
/// revocation finds no other active admin). Never none left.
async fn an_hr_feeds_deactivation_a_grant_and_a_revocation_leave_an_admin(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_b = ScimDirectory::new(b.clone(), BASE);
    let off = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": false}]});
    let mut faults = Faults::default();
    let mut earlier: Vec<latchkey_idp::ids::UserId> = Vec::new();
    for round in 0..ROUNDS {
        let v = user(&a, &format!("v{round}")).await;
        let u = user(&a, &format!("u{round}")).await;
        a.roles()
            .grant(&admin(), Role::Admin, Holder::User(v.id))
            .await
            .unwrap();
        for old in earlier.drain(..) {
            // Whatever the last round left holding admin.
            let _ = a
                .roles()
                .revoke_forced(&admin(), Role::Admin, Holder::User(old))
                .await;
        }
        assert_eq!(active_admins(&a).await, vec![v.username.clone()]);
        let (deactivated, granted, revoked) = tokio::join!(
            async {
                scim_b
                    .patch_user(&token, &u.id.to_string(), &off, None)
                    .await
            },
            async {
                a.roles()
                    .grant(&admin(), Role::Admin, Holder::User(u.id))
                    .await
            },
            async {
                b.roles()
                    .revoke(&admin(), Role::Admin, Holder::User(v.id))
                    .await
            },
        );
        let fault = faults.scim(round, "deactivated", &deactivated)
            | faults.store(round, "granted", &granted)
            | faults.store(round, "revoked", &revoked);
        if !fault {
            let left = active_admins(&a).await;
            assert!(
                !left.is_empty(),
                "round {round}: no admin left: {deactivated:?} {granted:?} {revoked:?}"
            );
        }
        earlier.extend([u.id, v.id]);
    }
    faults.assert_none();
}

/// Two clients changing one group from one read (the admin API's `If-Match` on its
/// `ETag`), from two nodes at once: two renames, or a rename and a member added. Exactly
/// one goes, the other is refused `changed_since`: the version is checked under the
/// group's row lock, so both cannot have seen it unchanged.
async fn conditional_writes_of_one_group_from_one_read_race(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let mut faults = Faults::default();
    let changed = |e: &Error| matches!(e, Error::ChangedSince { what: "group" });
    for round in 0..ROUNDS {
        let g = group(&a, &format!("g{round}")).await;
        let x = user(&a, &format!("x{round}")).await;
        let seen = a.groups().get_versioned(g.id).await.unwrap().version();
        let admits = |now: &latchkey_idp::directory::VersionedGroup| now.version() == seen;
        let (first, second) = tokio::join!(
            async {
                a.groups()
                    .rename_if(&admin(), g.id, &format!("a{round}"), admits)
                    .await
            },
            async {
                b.groups()
                    .rename_if(&admin(), g.id, &format!("b{round}"), admits)
                    .await
            },
        );
        faults.one_wins(round, &first, &second, changed);
        let seen = a.groups().get_versioned(g.id).await.unwrap().version();
        let admits = |now: &latchkey_idp::directory::VersionedGroup| now.version() == seen;
        let (renamed, added) = tokio::join!(
            async {
                a.groups()
                    .rename_if(&admin(), g.id, &format!("c{round}"), admits)
                    .await
            },
            async { b.groups().add_member_if(&admin(), g.id, x.id, admits).await },
        );
        faults.one_wins(round, &renamed, &added, changed);
    }
    faults.assert_none();
}

/// A group renamed while a bulk load adds members to it, from two nodes at once, by the
/// directory (console, API) and by SCIM: both land. The load's insert holds the group's key
/// share (its foreign key) and its trigger then waits for the group's row (0630): a load that
/// did not lock the group first deadlocked with a SCIM rename (which holds the row, then
/// needs its full lock for the new unique name), and so did a directory rename that took the
/// row's weaker lock first, on PostgreSQL.
async fn a_rename_and_a_bulk_load_of_one_group_both_land(t: TestStore) {
    let (a, b) = nodes(&t).await;
    let token = scim_token(&a).await;
    let scim_a = ScimDirectory::new(a.clone(), BASE);
    let mut faults = Faults::default();
    for round in 0..ROUNDS {
        let g = group(&a, &format!("g{round}")).await;
        let x = user(&a, &format!("x{round}")).await;
        let (renamed, loaded) = tokio::join!(
            async {
                a.groups()
                    .rename(&admin(), g.id, &format!("r{round}"))
                    .await
            },
            async {
                b.groups()
                    .add_members(&admin(), &g, std::slice::from_ref(&x))
                    .await
            },
        );
        let fault =
            faults.store(round, "renamed", &renamed) | faults.store(round, "loaded", &loaded);
        if !fault {
            renamed.unwrap();
            loaded.unwrap();
        }
        let h = group(&a, &format!("h{round}")).await;
        let rename = json!({"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "displayName", "value": format!("s{round}")}]});
        let (renamed, loaded) = tokio::join!(
            async {
                scim_a
                    .patch_group(&token, &h.id.to_string(), &rename, None)
                    .await
            },
            async {
                b.groups()
                    .add_members(&admin(), &h, std::slice::from_ref(&x))
                    .await
            },
        );
        let fault =
            faults.scim(round, "scim renamed", &renamed) | faults.store(round, "loaded", &loaded);
        if !fault {
            renamed.unwrap();
            loaded.unwrap();
        }
    }
    faults.assert_none();
}
