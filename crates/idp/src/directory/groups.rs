//! Groups and membership. Groups are what application access policies are written in.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use super::users::{self, User};
use super::validate;
use crate::audit::{self, Actor, Change};
use crate::console::roles::AdminGuard;
use crate::error::{Error, Result};
use crate::ids::{GroupId, UserId};
use crate::store::{self, Store, timestamp};

/// A directory group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Internal ID.
    pub id: GroupId,
    /// Name, unique case-insensitively.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// When the group was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the group was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Group {
    /// A fingerprint of the group's own fields (name, description, times): what the
    /// console's rename form was drawn with, and sends back ([`Groups::rename_if`]), so a
    /// rename from a page opened before someone else's is refused instead of undoing it.
    /// Every serialized field counts, in the one stable encoding ([`crate::fingerprint`]).
    pub fn fields_version(&self) -> String {
        crate::fingerprint::of(self)
    }
}

/// A group with its members' version (`directory_groups.members_version`, moved by the
/// database's triggers on every change to what its member list shows, by any writer:
/// migration 0630), read in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedGroup {
    /// The group.
    pub group: Group,
    /// Its members' version (a number with no meaning but its changes).
    pub members_version: i64,
}

impl VersionedGroup {
    /// The admin API's `ETag` of the group: a hash of its own fields and its members'
    /// version, as a SCIM group's is (`scim::render::group`), so a membership added or
    /// removed by anyone moves it too, and knowing it never reads a member.
    pub fn version(&self) -> String {
        crate::session::token_hash(&format!(
            "{} members {}",
            self.group.fields_version(),
            self.members_version
        ))
    }
}

/// What is needed to create a group.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

impl NewGroup {
    /// A group with a name and no description.
    pub fn new(name: impl Into<String>) -> Self {
        NewGroup {
            name: name.into(),
            description: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: String,
    name: String,
    description: Option<String>,
    created_at: String,
    updated_at: String,
}

impl GroupRow {
    fn into_group(self) -> Result<Group> {
        Ok(Group {
            id: GroupId::from_db(&self.id)?,
            name: self.name,
            description: self.description,
            created_at: timestamp::parse("directory_groups.created_at", &self.created_at)?,
            updated_at: timestamp::parse("directory_groups.updated_at", &self.updated_at)?,
        })
    }
}

/// Loads a group by ID.
pub(crate) async fn fetch<'e, E>(exec: E, id: GroupId) -> Result<Option<Group>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<GroupRow> = sqlx::query_as(
        "SELECT id, name, description, created_at, updated_at FROM directory_groups WHERE id = $1",
    )
    .bind(id.to_db())
    .fetch_optional(exec)
    .await?;
    row.map(GroupRow::into_group).transpose()
}

#[derive(sqlx::FromRow)]
struct VersionedRow {
    #[sqlx(flatten)]
    group: GroupRow,
    members_version: i64,
}

/// Loads a group and its members' version in one statement (under the group's row lock if
/// the caller took it: the membership triggers take it before they move the version).
pub(crate) async fn fetch_versioned<'e, E>(exec: E, id: GroupId) -> Result<Option<VersionedGroup>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<VersionedRow> = sqlx::query_as(
        "SELECT id, name, description, created_at, updated_at, members_version \
         FROM directory_groups WHERE id = $1",
    )
    .bind(id.to_db())
    .fetch_optional(exec)
    .await?;
    row.map(|r| {
        Ok(VersionedGroup {
            group: r.group.into_group()?,
            members_version: r.members_version,
        })
    })
    .transpose()
}

/// How much of a group's row a write locks on PostgreSQL, taken whole before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowLock {
    /// A change of membership (`FOR NO KEY UPDATE`, as [`lock_id`] and the triggers take it).
    Members,
    /// A rename (its new unique `name_key`) or a deletion (`FOR UPDATE`). Taking the weaker
    /// lock first and the full one at the write deadlocks with any statement that holds the
    /// group's key share (a membership insert's foreign key) before its trigger waits for
    /// the row (a bulk load did, before it locked the group first).
    Key,
}

/// Takes the group's row lock and reads it with its members' version, refusing it unless
/// `admits` it as it is now ([`Error::ChangedSince`]): the check of every conditional write
/// to a group, inside the write's transaction.
async fn lock_admitted(
    conn: &mut AnyConnection,
    id: GroupId,
    lock: RowLock,
    admits: impl FnOnce(&VersionedGroup) -> bool,
) -> Result<VersionedGroup> {
    let unknown = || Error::UnknownGroup {
        name: id.to_string(),
    };
    let found = match (lock, store::Backend::of(conn)) {
        (RowLock::Key, store::Backend::Postgres) => {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM directory_groups WHERE id = $1 FOR UPDATE")
                    .bind(id.to_db())
                    .fetch_optional(&mut *conn)
                    .await?;
            found.is_some()
        }
        _ => lock_id(&mut *conn, id).await?,
    };
    if !found {
        return Err(unknown());
    }
    let now = fetch_versioned(&mut *conn, id).await?.ok_or_else(unknown)?;
    if !admits(&now) {
        return Err(Error::ChangedSince { what: "group" });
    }
    Ok(now)
}

/// Loads a group by case-folded name.
pub(crate) async fn fetch_by_name<'e, E>(exec: E, name: &str) -> Result<Option<Group>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<GroupRow> = sqlx::query_as(
        "SELECT id, name, description, created_at, updated_at FROM directory_groups \
         WHERE name_key = $1",
    )
    .bind(store::fold(name.trim()))
    .fetch_optional(exec)
    .await?;
    row.map(GroupRow::into_group).transpose()
}

/// The groups in an application's access policy, by name.
pub(crate) async fn with_access<'e, E>(exec: E, app: crate::ids::AppId) -> Result<Vec<Group>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<GroupRow> = sqlx::query_as(
        "SELECT g.id, g.name, g.description, g.created_at, g.updated_at \
         FROM directory_groups g JOIN app_access x ON x.group_id = g.id \
         WHERE x.app_id = $1 ORDER BY g.name_key",
    )
    .bind(app.to_db())
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(GroupRow::into_group).collect()
}

/// The groups a user belongs to, by name.
pub(crate) async fn of_user<'e, E>(exec: E, user: UserId) -> Result<Vec<Group>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<GroupRow> = sqlx::query_as(
        "SELECT g.id, g.name, g.description, g.created_at, g.updated_at \
         FROM directory_groups g JOIN group_members m ON m.group_id = g.id \
         WHERE m.user_id = $1 ORDER BY g.name_key",
    )
    .bind(user.to_db())
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(GroupRow::into_group).collect()
}

/// Takes `user`'s row lock, then those of the groups they are a member of in ID order (as
/// the membership triggers take them, migration 0630). The order every writer keeps: a user
/// before their groups, a group before its membership rows. [`insert_member`] and
/// [`delete_member`] take the group first; a change that reaches memberships through the
/// user (a deletion's cascade, a rename's new username key, migration 0620) calls this
/// before it. In the other order a user's deletion deadlocked on PostgreSQL with a SCIM PATCH
/// removing them (the PATCH held the group and waited for the membership row, the cascade
/// held that row and its trigger waited for the group). SQLite's one writer already runs
/// them one after the other.
pub(crate) async fn lock_groups_of(conn: &mut AnyConnection, user: UserId) -> Result<()> {
    if store::Backend::of(conn) == store::Backend::Postgres {
        super::users::lock(&mut *conn, user).await?;
        sqlx::query(
            "SELECT 1 FROM directory_groups WHERE id IN \
             (SELECT group_id FROM group_members WHERE user_id = $1) \
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(user.to_db())
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Takes the group's row lock on PostgreSQL (see [`lock_groups_of`]; SQLite's writer holds
/// the whole database); refuses a group deleted meanwhile.
async fn lock_group(conn: &mut AnyConnection, group: &Group) -> Result<()> {
    if !lock_id(conn, group.id).await? {
        return Err(Error::UnknownGroup {
            name: group.name.clone(),
        });
    }
    Ok(())
}

/// Takes the group's row lock on PostgreSQL (SQLite's writer holds the whole database);
/// whether the group exists.
pub(crate) async fn lock_id(conn: &mut AnyConnection, group: GroupId) -> Result<bool> {
    let sql = match store::Backend::of(conn) {
        store::Backend::Postgres => {
            "SELECT 1 FROM directory_groups WHERE id = $1 FOR NO KEY UPDATE"
        }
        store::Backend::Sqlite => "SELECT 1 FROM directory_groups WHERE id = $1",
    };
    let found: Option<i64> = sqlx::query_scalar(sql)
        .bind(group.to_db())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Whether the user is in the group.
async fn is_member(conn: &mut AnyConnection, group: GroupId, user: UserId) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.to_db())
            .bind(user.to_db())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

/// Former names kept per group (the SCIM client renames an application's group of any of
/// them).
const FORMER_NAMES_KEPT: i64 = 8;

/// Keeps `before`'s name as a former name of the group now called `name` (a name it has
/// again is no longer former), the most recent [`FORMER_NAMES_KEPT`] only.
async fn remember_former_name(
    conn: &mut AnyConnection,
    before: &Group,
    name: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_former_names (group_id, name, renamed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (group_id, name) DO UPDATE SET renamed_at = excluded.renamed_at",
    )
    .bind(before.id.to_db())
    .bind(&before.name)
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM group_former_names WHERE group_id = $1 AND (name = $2 OR name NOT IN \
         (SELECT name FROM group_former_names WHERE group_id = $1 \
         ORDER BY renamed_at DESC, name LIMIT $3))",
    )
    .bind(before.id.to_db())
    .bind(name)
    .bind(FORMER_NAMES_KEPT)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The former names of the groups `user` is in, most recent first: (group, name).
pub(crate) async fn former_names_of_member(
    conn: &mut AnyConnection,
    user: UserId,
) -> Result<Vec<(GroupId, String)>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT f.group_id, f.name FROM group_former_names f \
         JOIN group_members m ON m.group_id = f.group_id WHERE m.user_id = $1 \
         ORDER BY f.renamed_at DESC, f.name",
    )
    .bind(user.to_db())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(g, name)| Ok((GroupId::from_db(&g)?, name)))
        .collect()
}

/// Adds a membership and records `group.member_add`, in the caller's transaction.
pub(crate) async fn insert_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
    user: &User,
) -> Result<()> {
    lock_group(conn, group).await?;
    // The member row carries the user's case-folded username: a group's member listing is
    // ordered by it from one index (migration 0460). A membership already there, also one
    // another writer added a moment ago (PostgreSQL waits for its commit), inserts nothing:
    // a check before the insert would let both writers through to a unique violation.
    let added = sqlx::query(
        "INSERT INTO group_members (group_id, user_id, username_key, added_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, user_id) DO NOTHING",
    )
    .bind(group.id.to_db())
    .bind(user.id.to_db())
    .bind(store::fold(&user.username))
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        // The user was deleted since the caller read them (the group is locked).
        if store::is_foreign_key_violation(&e) {
            Error::UnknownUser {
                user: user.username.clone(),
            }
        } else {
            e.into()
        }
    })?
    .rows_affected();
    if added == 0 {
        return Err(Error::AlreadyMember {
            user: user.username.clone(),
            group: group.name.clone(),
        });
    }
    crate::provisioning::outbox::user_changed(&mut *conn, user, "group.member_add", now).await?;
    audit::record(
        &mut *conn,
        actor,
        now,
        member_change("group.member_add", group, user),
    )
    .await?;
    // Joining a group that carries a console role grants it: no link issued before may
    // set this now-privileged user's password.
    let carries = crate::console::roles::of_group(&mut *conn, group.id).await?;
    crate::console::roles::void_credentials_of(conn, actor, now, &[user.id], &carries).await
}

/// Adds a membership only if missing; returns whether it was added.
pub(crate) async fn ensure_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
    user: &User,
) -> Result<bool> {
    if is_member(conn, group.id, user.id).await? {
        return Ok(false);
    }
    insert_member(conn, actor, now, group, user).await?;
    Ok(true)
}

pub(crate) fn member_change(action: &'static str, group: &Group, user: &User) -> Change {
    let membership = serde_json::json!({
        "group": group.name, "group_id": group.id, "user": user.username, "user_id": user.id,
    });
    let (before, after) = if action == "group.member_add" {
        (None, Some(membership))
    } else {
        (Some(membership), None)
    };
    Change {
        action,
        target_kind: "group",
        target_id: group.id.to_string(),
        target_name: group.name.clone(),
        before,
        after,
    }
}

/// Removes a membership and records `group.member_remove`, in the caller's transaction;
/// refuses a missing one.
pub(crate) async fn delete_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
    user: &User,
) -> Result<()> {
    lock_group(conn, group).await?;
    if !is_member(conn, group.id, user.id).await? {
        return Err(Error::NotMember {
            user: user.username.clone(),
            group: group.name.clone(),
        });
    }
    // Before the membership goes: the user still counts as assigned where it let them in.
    crate::provisioning::outbox::user_changed(&mut *conn, user, "group.member_remove", now).await?;
    // Another writer may have removed it since the check (PostgreSQL waits for its commit):
    // then this one removed nothing and says so, its outbox row going with the rollback.
    let removed = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(group.id.to_db())
        .bind(user.id.to_db())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(Error::NotMember {
            user: user.username.clone(),
            group: group.name.clone(),
        });
    }
    audit::record(
        conn,
        actor,
        now,
        member_change("group.member_remove", group, user),
    )
    .await
}

/// Creates a group and records `group.create`, in the caller's transaction; refuses a taken
/// name.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    new: NewGroup,
) -> Result<Group> {
    let name = validate::name("group name", &new.name)?;
    let description = validate::optional_name("description", new.description.as_deref())?;
    if fetch_by_name(&mut *conn, &name).await?.is_some() {
        return Err(Error::DuplicateGroup { name });
    }
    let group = Group {
        id: GroupId::new_random(),
        name,
        description,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO directory_groups (id, name, name_key, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(group.id.to_db())
    .bind(&group.name)
    .bind(store::fold(&group.name))
    .bind(group.description.clone())
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| duplicate(e.into(), &group.name))?;
    audit::record(
        conn,
        actor,
        now,
        Change {
            action: "group.create",
            target_kind: "group",
            target_id: group.id.to_string(),
            target_name: group.name.clone(),
            before: None,
            after: audit::snapshot(&group),
        },
    )
    .await?;
    Ok(group)
}

/// A name taken by a concurrent writer (PostgreSQL) as the typed error.
fn duplicate(e: Error, name: &str) -> Error {
    if store::is_unique_violation(&e, "name_key") {
        Error::DuplicateGroup {
            name: name.to_owned(),
        }
    } else {
        e
    }
}

/// Renames a group and records `group.update`, in the caller's transaction; refuses a name
/// another group has. The same name (in any case) is a no-op that records nothing.
pub(crate) async fn rename(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    before: &Group,
    name: &str,
) -> Result<Group> {
    let name = validate::name("group name", name)?;
    if name == before.name {
        return Ok(before.clone());
    }
    if let Some(other) = fetch_by_name(&mut *conn, &name).await?
        && other.id != before.id
    {
        return Err(Error::DuplicateGroup { name });
    }
    sqlx::query(
        "UPDATE directory_groups SET name = $2, name_key = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(before.id.to_db())
    .bind(&name)
    .bind(store::fold(&name))
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| duplicate(e.into(), &name))?;
    remember_former_name(conn, before, &name, now).await?;
    let after = Group {
        name,
        updated_at: now,
        ..before.clone()
    };
    crate::provisioning::outbox::members_changed(&mut *conn, before.id, "group.update", now)
        .await?;
    audit::record(
        conn,
        actor,
        now,
        Change {
            action: "group.update",
            target_kind: "group",
            target_id: before.id.to_string(),
            target_name: after.name.clone(),
            before: audit::snapshot(before),
            after: audit::snapshot(&after),
        },
    )
    .await?;
    Ok(after)
}

/// Deletes a group (memberships and application access go with it) and records
/// `group.delete` with what went, in the caller's transaction.
pub(crate) async fn remove(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
) -> Result<()> {
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT u.username FROM users u JOIN group_members m ON m.user_id = u.id \
         WHERE m.group_id = $1 ORDER BY u.username_key",
    )
    .bind(group.id.to_db())
    .fetch_all(&mut *conn)
    .await?;
    let applications: Vec<String> = sqlx::query_scalar(
        "SELECT a.entity_id FROM applications a JOIN app_access x ON x.app_id = a.id \
         WHERE x.group_id = $1 ORDER BY a.entity_id",
    )
    .bind(group.id.to_db())
    .fetch_all(&mut *conn)
    .await?;
    crate::provisioning::outbox::members_changed(&mut *conn, group.id, "group.delete", now).await?;
    sqlx::query("DELETE FROM directory_groups WHERE id = $1")
        .bind(group.id.to_db())
        .execute(&mut *conn)
        .await?;
    let mut before = audit::snapshot(group);
    if let Some(serde_json::Value::Object(map)) = before.as_mut() {
        // What the deletion took with it: memberships and application access.
        map.insert("members".into(), serde_json::json!(members));
        map.insert("applications".into(), serde_json::json!(applications));
    }
    audit::record(
        conn,
        actor,
        now,
        Change {
            action: "group.delete",
            target_kind: "group",
            target_id: group.id.to_string(),
            target_name: group.name.clone(),
            before,
            after: None,
        },
    )
    .await
}

/// Directory groups.
#[derive(Debug, Clone, Copy)]
pub struct Groups<'s> {
    store: &'s Store,
}

impl<'s> Groups<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Groups { store }
    }

    pub(crate) fn store(&self) -> &'s Store {
        self.store
    }

    /// Creates a group; refuses a taken name.
    pub async fn create(&self, actor: &Actor, new: NewGroup) -> Result<Group> {
        let mut tx = self.store.begin().await?;
        let group = insert(store::conn(&mut tx), actor, self.store.now(), new).await?;
        store::commit(tx).await?;
        Ok(group)
    }

    /// The group with this ID.
    pub async fn get(&self, id: GroupId) -> Result<Group> {
        fetch(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::UnknownGroup {
                name: id.to_string(),
            })
    }

    /// The group with this name (any case), if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Group>> {
        fetch_by_name(self.store.pool(), name).await
    }

    /// Resolves what an admin typed: a group name or an internal ID.
    pub async fn lookup(&self, reference: &str) -> Result<Group> {
        if let Some(group) = self.find_by_name(reference).await? {
            return Ok(group);
        }
        if let Ok(id) = reference.parse::<GroupId>()
            && let Some(group) = fetch(self.store.pool(), id).await?
        {
            return Ok(group);
        }
        Err(Error::UnknownGroup {
            name: reference.to_string(),
        })
    }

    /// All groups, ordered by name.
    pub async fn list(&self) -> Result<Vec<Group>> {
        let rows: Vec<GroupRow> = sqlx::query_as(
            "SELECT id, name, description, created_at, updated_at FROM directory_groups \
             ORDER BY name_key",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter().map(GroupRow::into_group).collect()
    }

    /// The group with this ID and its members' version, read together: the admin API's
    /// `ETag` ([`VersionedGroup::version`]).
    pub async fn get_versioned(&self, id: GroupId) -> Result<VersionedGroup> {
        fetch_versioned(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::UnknownGroup {
                name: id.to_string(),
            })
    }

    /// Deletes a group, its memberships and its place in application access policies.
    /// Refuses to take the admin role from its last active holder ([`Error::LastAdmin`]).
    pub async fn delete(&self, actor: &Actor, id: GroupId) -> Result<()> {
        self.delete_if(actor, id, |_| true).await
    }

    /// [`Groups::delete`] from what a client saw (an API `If-Match`): unless `admits` the
    /// group as it is now (read under its row lock), nothing is written
    /// ([`Error::ChangedSince`]).
    pub async fn delete_if(
        &self,
        actor: &Actor,
        id: GroupId,
        admits: impl FnOnce(&VersionedGroup) -> bool,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let guard = AdminGuard::take(&mut *conn).await?;
        let group = lock_admitted(&mut *conn, id, RowLock::Key, admits)
            .await?
            .group;
        remove(&mut *conn, actor, self.store.now(), &group).await?;
        guard.keep(conn).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(())
    }

    /// Renames a group and records `group.update`; refuses a name another group has.
    /// Applications connected over SCIM rename their group of the old name too (see
    /// [`crate::provisioning::worker::WantedGroups::renamed`]), so rights they granted to it
    /// stay with it.
    pub async fn rename(&self, actor: &Actor, id: GroupId, name: &str) -> Result<Group> {
        Ok(self.rename_if(actor, id, name, |_| true).await?.group)
    }

    /// [`Groups::rename`] from what a client saw (a console form's [`Group::fields_version`],
    /// an API `If-Match` on [`VersionedGroup::version`]): the group is read under its row
    /// lock, and unless `admits` it as it is now nothing is written
    /// ([`Error::ChangedSince`]). Answers the group as it is after.
    pub async fn rename_if(
        &self,
        actor: &Actor,
        id: GroupId,
        name: &str,
        admits: impl FnOnce(&VersionedGroup) -> bool,
    ) -> Result<VersionedGroup> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let before = lock_admitted(&mut *conn, id, RowLock::Key, admits).await?;
        let group = rename(&mut *conn, actor, self.store.now(), &before.group, name).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        // A rename moves no member's entry: the members' version is the one read locked.
        Ok(VersionedGroup {
            group,
            members_version: before.members_version,
        })
    }

    /// Adds a user to a group; refuses an existing membership.
    pub async fn add_member(&self, actor: &Actor, group: GroupId, user: UserId) -> Result<()> {
        self.add_member_if(actor, group, user, |_| true).await?;
        Ok(())
    }

    /// [`Groups::add_member`] from what a client saw (an API `If-Match`): unless `admits`
    /// the group as it is now (read under its row lock), nothing is written
    /// ([`Error::ChangedSince`]). Answers the group after, its members' version moved.
    pub async fn add_member_if(
        &self,
        actor: &Actor,
        group: GroupId,
        user: UserId,
        admits: impl FnOnce(&VersionedGroup) -> bool,
    ) -> Result<VersionedGroup> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let before = lock_admitted(&mut *conn, group, RowLock::Members, admits).await?;
        let user = load_user(conn, user).await?;
        insert_member(conn, actor, self.store.now(), &before.group, &user).await?;
        let after = locked_after(conn, &before).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(after)
    }

    /// Removes a user from a group; refuses a missing membership, and one that would take the
    /// admin role from its last active holder ([`Error::LastAdmin`]).
    pub async fn remove_member(&self, actor: &Actor, group: GroupId, user: UserId) -> Result<()> {
        self.remove_member_if(actor, group, user, |_| true).await?;
        Ok(())
    }

    /// [`Groups::remove_member`] from what a client saw (an API `If-Match`): unless `admits`
    /// the group as it is now (read under its row lock), nothing is written
    /// ([`Error::ChangedSince`]). Answers the group after, its members' version moved.
    pub async fn remove_member_if(
        &self,
        actor: &Actor,
        group: GroupId,
        user: UserId,
        admits: impl FnOnce(&VersionedGroup) -> bool,
    ) -> Result<VersionedGroup> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let guard = AdminGuard::take(&mut *conn).await?;
        let before = lock_admitted(&mut *conn, group, RowLock::Members, admits).await?;
        let user = load_user(conn, user).await?;
        delete_member(&mut *conn, actor, self.store.now(), &before.group, &user).await?;
        guard.keep(&mut *conn).await?;
        let after = locked_after(conn, &before).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(after)
    }

    /// The group's members, ordered by username.
    pub async fn members(&self, group: GroupId) -> Result<Vec<User>> {
        users::in_group(self.store.pool(), group).await
    }

    /// The groups a user belongs to, ordered by name.
    pub async fn of_user(&self, user: UserId) -> Result<Vec<Group>> {
        of_user(self.store.pool(), user).await
    }
}

async fn load_user(conn: &mut AnyConnection, user: UserId) -> Result<User> {
    users::fetch(&mut *conn, user)
        .await?
        .ok_or_else(|| Error::UnknownUser {
            user: user.to_string(),
        })
}

/// The group `before` named again after a change in this transaction (its row still locked):
/// its members' version as the triggers moved it.
async fn locked_after(conn: &mut AnyConnection, before: &VersionedGroup) -> Result<VersionedGroup> {
    fetch_versioned(conn, before.group.id)
        .await?
        .ok_or_else(|| Error::UnknownGroup {
            name: before.group.name.clone(),
        })
}
