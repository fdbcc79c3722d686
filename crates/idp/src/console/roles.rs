//! Console roles and their permissions.
//!
//! - **admin**: everything;
//! - **helpdesk**: users (create, edit, suspend, reset password or factors, end sessions) and
//!   group membership, but not applications, keys or tokens;
//! - **auditor**: read-only, including the audit log.
//!
//! A role is granted to a user directly or to a group; a user's effective roles are the union
//! of both ([`Roles::of_user`]). A suspended user holds none. Every grant and revocation is
//! an audit event written in its transaction.
//!
//! Helpdesk must not be a way to become admin: a helpdesk user may change only users who hold
//! no console role, and the membership only of groups that carry no role
//! ([`RoleSet::may_change_user`], [`RoleSet::may_change_members`]).
//!
//! The console is never left without an admin: a change that could take the role from the
//! last active user holding it (a revocation, a suspension, a deletion, a member leaving a
//! group or a group deleted) runs under [`AdminGuard`] and is refused with
//! [`Error::LastAdmin`] if it would. The CLI's `role revoke --force` is the one way past it
//! ([`Roles::revoke_forced`]): an operator with a shell can always grant admin again.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor};

use crate::audit::{self, Actor, Change};
use crate::directory::{Group, User, UserStatus};
use crate::error::{Error, Result};
use crate::ids::{GroupId, UserId};
use crate::store::{self, Store, timestamp};

/// A console role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Users and group membership; not applications, keys or tokens.
    Helpdesk,
    /// Read-only, including the audit log.
    Auditor,
}

impl Role {
    /// Every role, in the order pages list them.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Helpdesk, Role::Auditor];

    /// The stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Helpdesk => "helpdesk",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role's name (any case); anything else is an `invalid_field` on `role`.
    pub fn parse(raw: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| Error::InvalidField {
                field: "role",
                reason: format!("{raw:?} is not a role (admin, helpdesk, auditor)"),
            })
    }

    /// What this role may do; the one place the role table is written down.
    pub fn permits(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Role::Admin => true,
            Role::Helpdesk => matches!(
                permission,
                P::ReadDirectory | P::WriteUsers | P::WriteGroupMembers
            ),
            Role::Auditor => matches!(permission, P::ReadDirectory | P::ReadApps | P::ReadAudit),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a console page or form does; each handler names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See users, groups, memberships, and which applications a user may use.
    ReadDirectory,
    /// See applications, keys and API tokens (their state, never secrets).
    ReadApps,
    /// See the audit log.
    ReadAudit,
    /// Create, edit, suspend, resume users; set passwords or factors; end sessions.
    WriteUsers,
    /// Add users to groups and remove them.
    WriteGroupMembers,
    /// Create and delete groups.
    WriteGroups,
    /// Add, change and assign applications.
    WriteApps,
    /// Rotate and activate signing keys.
    WriteKeys,
    /// Create and revoke admin API tokens.
    WriteTokens,
    /// Grant and revoke console roles.
    WriteRoles,
}

impl Permission {
    /// Every permission (for tables of who may do what).
    pub const ALL: [Permission; 10] = [
        Permission::ReadDirectory,
        Permission::ReadApps,
        Permission::ReadAudit,
        Permission::WriteUsers,
        Permission::WriteGroupMembers,
        Permission::WriteGroups,
        Permission::WriteApps,
        Permission::WriteKeys,
        Permission::WriteTokens,
        Permission::WriteRoles,
    ];

    /// The name logs and audit events carry (`write_group_members`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadDirectory => "read_directory",
            Permission::ReadApps => "read_apps",
            Permission::ReadAudit => "read_audit",
            Permission::WriteUsers => "write_users",
            Permission::WriteGroupMembers => "write_group_members",
            Permission::WriteGroups => "write_groups",
            Permission::WriteApps => "write_apps",
            Permission::WriteKeys => "write_keys",
            Permission::WriteTokens => "write_tokens",
            Permission::WriteRoles => "write_roles",
        }
    }
}

/// A user's effective roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    /// A set of the given roles (sorted, without repeats).
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut roles: Vec<Role> = roles.into_iter().collect();
        roles.sort();
        roles.dedup();
        RoleSet(roles)
    }

    /// The roles, admin first.
    pub fn roles(&self) -> &[Role] {
        &self.0
    }

    /// No console role at all: the console is closed to this user.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this role is held.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// Whether any held role grants the permission.
    pub fn allows(&self, permission: Permission) -> bool {
        self.0.iter().any(|r| r.permits(permission))
    }

    /// Whether these roles may change a user who holds `target`'s roles: a console user
    /// may be changed only by an admin, so helpdesk cannot take over an admin's account.
    pub fn may_change_user(&self, target: &RoleSet) -> bool {
        self.allows(Permission::WriteUsers) && (target.is_empty() || self.has(Role::Admin))
    }

    /// Whether these roles may change the members of a group that carries `group_roles`:
    /// joining such a group grants its roles, so only an admin may.
    pub fn may_change_members(&self, group_roles: &[Role]) -> bool {
        self.allows(Permission::WriteGroupMembers)
            && (group_roles.is_empty() || self.has(Role::Admin))
    }
}

/// The transaction advisory lock every change that could take the admin role from someone
/// takes first ([`AdminGuard::take`]), on every node.
const ADMINS_LOCK: i64 = 0x6c6b_2d61_646d_696e;

/// Whether some active user holds `admin`, directly or through a group (own uncommitted
/// changes included). Read from the grants (a handful of rows) out to their users, not from
/// every user in, which on a directory of 100,000 read them all twice a change.
async fn any_active_admin(conn: &mut sqlx::AnyConnection) -> Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM console_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.role = $2 AND u.status = $1 \
         UNION ALL SELECT 1 FROM console_roles r \
         JOIN group_members m ON m.group_id = r.group_id JOIN users u ON u.id = m.user_id \
         WHERE r.role = $2 AND u.status = $1 LIMIT 1",
    )
    .bind(UserStatus::Active.as_str())
    .bind(Role::Admin.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Holds a change that could take the admin role from someone to "an active admin remains".
///
/// [`AdminGuard::take`] is the first thing such a transaction does, before any row lock: on
/// PostgreSQL it takes the transaction advisory lock [`ADMINS_LOCK`], so these changes run
/// one at a time on every node (SQLite's write transaction, taken up front, already runs
/// them so), and notes whether an active admin exists. [`AdminGuard::keep`], just before the
/// commit, refuses ([`Error::LastAdmin`]) if one did and none does now. Two admins revoking
/// each other at once cannot both see the other still there: the second reads after the
/// first's commit. Taken first, the lock cannot deadlock with row locks: a transaction waits
/// for it holding none, and whoever holds it waits only for rows of writers that never wait
/// for it. Changes that only add admins (grants, joins, resumptions) need not take it.
#[derive(Debug)]
#[must_use = "keep() checks the change before its commit"]
pub(crate) struct AdminGuard {
    had_admin: bool,
}

impl AdminGuard {
    /// Takes the lock (PostgreSQL) and notes whether an active admin exists now.
    pub(crate) async fn take(conn: &mut sqlx::AnyConnection) -> Result<AdminGuard> {
        if store::Backend::of(conn) == store::Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ADMINS_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        Ok(AdminGuard {
            had_admin: any_active_admin(conn).await?,
        })
    }

    /// Refuses the transaction's changes if they left no active admin where there was one.
    /// (A directory with no admin at all, before the first grant, has nothing to keep.)
    pub(crate) async fn keep(self, conn: &mut sqlx::AnyConnection) -> Result<()> {
        if self.had_admin && !any_active_admin(conn).await? {
            tracing::warn!("refused a change that would leave no active console admin");
            return Err(Error::LastAdmin);
        }
        Ok(())
    }
}

/// Who a grant is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// One user.
    User(UserId),
    /// Every member of a group.
    Group(GroupId),
}

/// One grant as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role granted.
    pub role: Role,
    /// `user` or `group`.
    pub holder_kind: String,
    /// The holder's ID.
    pub holder_id: String,
    /// The holder's username or group name.
    pub holder_name: String,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    role: String,
    holder_kind: String,
    holder_id: String,
    holder_name: String,
}

/// Console role grants.
#[derive(Debug, Clone, Copy)]
pub struct Roles<'s> {
    store: &'s Store,
}

fn stored_role(raw: &str) -> Result<Role> {
    Role::parse(raw).map_err(|_| Error::corrupt("console_roles.role", raw))
}

/// The effective roles of a user: direct grants and those of their groups; none while the
/// user is suspended.
pub(crate) async fn of_user<'e, E>(exec: E, user: &User) -> Result<RoleSet>
where
    E: Executor<'e, Database = Any>,
{
    if user.status == UserStatus::Suspended {
        return Ok(RoleSet::default());
    }
    granted_to(exec, user).await
}

/// The roles granted to a user, directly or through groups, whatever the user's status.
///
/// Guards on who may change a user ask this, not [`of_user`]: a suspended admin holds no
/// role while suspended, but whoever could reset their password and resume them would
/// become admin through them.
pub(crate) async fn granted_to<'e, E>(exec: E, user: &User) -> Result<RoleSet>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT role FROM console_roles WHERE user_id = $1 \
         UNION SELECT r.role FROM console_roles r \
         JOIN group_members m ON m.group_id = r.group_id WHERE m.user_id = $1",
    )
    .bind(user.id.to_db())
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| stored_role(r))
        .collect::<Result<Vec<_>>>()
        .map(RoleSet::new)
}

/// The roles granted to a group itself.
pub(crate) async fn of_group<'e, E>(exec: E, group: GroupId) -> Result<Vec<Role>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<String> =
        sqlx::query_scalar("SELECT role FROM console_roles WHERE group_id = $1 ORDER BY role")
            .bind(group.to_db())
            .fetch_all(exec)
            .await?;
    rows.iter().map(|r| stored_role(r)).collect()
}

impl<'s> Roles<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Roles { store }
    }

    /// The user's effective roles (direct and through groups; none while suspended).
    pub async fn of_user(&self, user: &User) -> Result<RoleSet> {
        of_user(self.store.pool(), user).await
    }

    /// The roles granted to a user, whatever their status: what guards on changing them
    /// must ask ([`granted_to`]).
    pub async fn granted_to(&self, user: &User) -> Result<RoleSet> {
        granted_to(self.store.pool(), user).await
    }

    /// The roles granted to a group itself.
    pub async fn of_group(&self, group: GroupId) -> Result<Vec<Role>> {
        of_group(self.store.pool(), group).await
    }

    /// Whether the user may do this in the console: the one permission check.
    pub async fn check(&self, user: &User, permission: Permission) -> Result<bool> {
        Ok(self.of_user(user).await?.allows(permission))
    }

    /// Every grant: by role (admin first), users before groups, then by name.
    pub async fn list(&self) -> Result<Vec<Grant>> {
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT r.role AS role, 'user' AS holder_kind, u.id AS holder_id, \
                    u.username AS holder_name \
             FROM console_roles r JOIN users u ON u.id = r.user_id \
             UNION ALL \
             SELECT r.role, 'group', g.id, g.name \
             FROM console_roles r JOIN directory_groups g ON g.id = r.group_id \
             ORDER BY 2 DESC, 4",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut grants = rows
            .into_iter()
            .map(|r| {
                Ok(Grant {
                    role: stored_role(&r.role)?,
                    holder_kind: r.holder_kind,
                    holder_id: r.holder_id,
                    holder_name: r.holder_name,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        grants.sort_by_key(|g| g.role);
        Ok(grants)
    }

    /// Grants a role; refuses one already granted to this holder.
    pub async fn grant(&self, actor: &Actor, role: Role, holder: Holder) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let (kind, id, name) = load_holder(conn, holder).await?;
        if is_granted(conn, role, holder).await? {
            return Err(Error::AlreadyGranted {
                role: role.as_str(),
                holder: name,
            });
        }
        let now = self.store.now();
        let (user_id, group_id) = columns(holder);
        sqlx::query(
            "INSERT INTO console_roles (role, user_id, group_id, granted_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(role.as_str())
        .bind(user_id)
        .bind(group_id)
        .bind(timestamp::format(now))
        .execute(&mut *conn)
        .await?;
        audit::record(
            &mut *conn,
            actor,
            now,
            change("role.grant", role, kind, id, name),
        )
        .await?;
        let gaining = match holder {
            Holder::User(user) => vec![user],
            Holder::Group(group) => members_of(&mut *conn, group).await?,
        };
        void_credentials_of(conn, actor, now, &gaining, &[role]).await?;
        store::commit(tx).await
    }

    /// Revokes a role; refuses one this holder was not granted, and the admin role from the
    /// last active user holding it ([`Error::LastAdmin`]).
    pub async fn revoke(&self, actor: &Actor, role: Role, holder: Holder) -> Result<()> {
        self.revoke_as(actor, role, holder, false).await
    }

    /// Revokes a role even from the last active admin: the operator's way past
    /// [`Error::LastAdmin`] (`latchkey role revoke --force`, run on the server, where
    /// `latchkey role grant` can always let someone in again). Audited as forced.
    pub async fn revoke_forced(&self, actor: &Actor, role: Role, holder: Holder) -> Result<()> {
        self.revoke_as(actor, role, holder, true).await
    }

    async fn revoke_as(
        &self,
        actor: &Actor,
        role: Role,
        holder: Holder,
        force: bool,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let guard = if role == Role::Admin && !force {
            Some(AdminGuard::take(&mut *conn).await?)
        } else {
            None
        };
        let (kind, id, name) = load_holder(conn, holder).await?;
        if !is_granted(conn, role, holder).await? {
            return Err(Error::NotGranted {
                role: role.as_str(),
                holder: name,
            });
        }
        let (user_id, group_id) = columns(holder);
        sqlx::query(
            "DELETE FROM console_roles WHERE role = $1 \
             AND (user_id = $2 OR group_id = $3)",
        )
        .bind(role.as_str())
        .bind(user_id)
        .bind(group_id)
        .execute(&mut *conn)
        .await?;
        let mut event = change("role.revoke", role, kind, id, name);
        if force && let Some(serde_json::Value::Object(map)) = event.before.as_mut() {
            map.insert("forced".into(), serde_json::json!(true));
        }
        audit::record(&mut *conn, actor, self.store.now(), event).await?;
        if let Some(guard) = guard {
            guard.keep(conn).await?;
        }
        store::commit(tx).await
    }
}

/// The users in `group` now.
async fn members_of(conn: &mut sqlx::AnyConnection, group: GroupId) -> Result<Vec<UserId>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = $1")
            .bind(group.to_db())
            .fetch_all(conn)
            .await?;
    ids.iter().map(|id| UserId::from_db(id)).collect()
}

/// `users` have just gained console roles (`roles`: granted to them, or carried by a group
/// they joined or are in). What someone else may know of their credentials stops working, in
/// the caller's transaction, or it would open a now-privileged account:
/// - their unused invitation and reset links (helpdesk may hold one, shown in the console
///   without SMTP), audited per user as `user.links_voided`;
/// - a password helpdesk set for them ([`crate::directory::Setter::Helpdesk`]): cleared, with
///   their sessions (one may be the setter's), audited as `user.password_voided`; they set a
///   new one by a reset link or an admin sets it.
///
/// Each event names the roles. The one home for it: [`Roles::grant`] and every membership
/// insert ([`crate::directory::groups::insert_member`], the bulk load) call it.
pub(crate) async fn void_credentials_of(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    now: time::OffsetDateTime,
    users: &[UserId],
    roles: &[Role],
) -> Result<()> {
    if roles.is_empty() {
        return Ok(());
    }
    for &user in users {
        void_helpdesk_password(&mut *conn, actor, now, user, roles).await?;
        let voided = crate::enrollment::void_links(&mut *conn, user, now).await?;
        if voided == 0 {
            continue;
        }
        let name = crate::directory::fetch_user(&mut *conn, user)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        audit::record(
            &mut *conn,
            actor,
            now,
            Change {
                action: "user.links_voided",
                target_kind: "user",
                target_id: user.to_string(),
                target_name: name,
                before: None,
                after: Some(serde_json::json!({
                    "reason": "role_granted",
                    "roles": roles,
                    "links_voided": voided,
                })),
            },
        )
        .await?;
    }
    Ok(())
}

/// [`void_credentials_of`]'s password step for one user.
async fn void_helpdesk_password(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    now: time::OffsetDateTime,
    user: UserId,
    roles: &[Role],
) -> Result<()> {
    let cleared = sqlx::query(
        "UPDATE users SET password_hash = NULL, password_set_by_helpdesk = 0, updated_at = $2 \
         WHERE id = $1 AND password_set_by_helpdesk <> 0",
    )
    .bind(user.to_db())
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if cleared == 0 {
        return Ok(());
    }
    let Some(holder) = crate::directory::fetch_user(&mut *conn, user).await? else {
        return Ok(());
    };
    audit::record(
        &mut *conn,
        actor,
        now,
        Change {
            action: "user.password_voided",
            target_kind: "user",
            target_id: user.to_string(),
            target_name: holder.username.clone(),
            before: None,
            after: Some(serde_json::json!({
                "reason": "role_granted",
                "roles": roles,
                "password_set_by": "helpdesk",
            })),
        },
    )
    .await?;
    crate::session::end_all_in(conn, actor, &holder, "password_voided", now).await?;
    Ok(())
}

fn columns(holder: Holder) -> (Option<String>, Option<String>) {
    match holder {
        Holder::User(u) => (Some(u.to_db()), None),
        Holder::Group(g) => (None, Some(g.to_db())),
    }
}

async fn is_granted(conn: &mut sqlx::AnyConnection, role: Role, holder: Holder) -> Result<bool> {
    let (user_id, group_id) = columns(holder);
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM console_roles WHERE role = $1 AND (user_id = $2 OR group_id = $3)",
    )
    .bind(role.as_str())
    .bind(user_id)
    .bind(group_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// The holder's kind, ID and name, read after taking its row's lock (PostgreSQL; SQLite's
/// writer holds the whole database): two grants of one role to one holder then run one after
/// the other, the second finding the first's (not a unique violation), and a holder deleted
/// meanwhile is unknown (not a foreign-key violation).
async fn load_holder(
    conn: &mut sqlx::AnyConnection,
    holder: Holder,
) -> Result<(&'static str, String, String)> {
    match holder {
        Holder::User(id) => crate::directory::users::lock(&mut *conn, id).await?,
        Holder::Group(id) => {
            crate::directory::groups::lock_id(&mut *conn, id).await?;
        }
    }
    match holder {
        Holder::User(id) => {
            let user: User = crate::directory::fetch_user(&mut *conn, id)
                .await?
                .ok_or_else(|| Error::UnknownUser {
                    user: id.to_string(),
                })?;
            Ok(("user", id.to_string(), user.username))
        }
        Holder::Group(id) => {
            let group: Group = crate::directory::fetch_group(&mut *conn, id)
                .await?
                .ok_or_else(|| Error::UnknownGroup {
                    name: id.to_string(),
                })?;
            Ok(("group", id.to_string(), group.name))
        }
    }
}

fn change(
    action: &'static str,
    role: Role,
    kind: &'static str,
    id: String,
    name: String,
) -> Change {
    let grant = serde_json::json!({ "role": role, "holder_kind": kind, "holder": name });
    let (before, after) = if action == "role.grant" {
        (None, Some(grant))
    } else {
        (Some(grant), None)
    };
    Change {
        action,
        target_kind: kind,
        target_id: id,
        target_name: name,
        before,
        after,
    }
}
