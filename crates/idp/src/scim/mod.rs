//! The IdP's SCIM 2.0 server without HTTP: the directory fed from outside. An HR system or
//! another IdP pushes users and groups in with a token of scope `scim`
//! ([`crate::tokens::TokenScope`]); `latchkey-idp-web` serves this under `/scim/v2`.
//!
//! - Every resource is a directory user or group ([`render`] maps the attributes); the
//!   protocol parts (schemas, filters, PATCH, listings, errors) are `latchkey-scim`'s.
//! - Every write is one store transaction through the directory's own writes (validation,
//!   uniqueness, audit with the token as actor: `scim:<id>`, "token <name>"), with the SCIM
//!   side rows in the same transaction: a refused request writes nothing.
//! - A value an admin set by hand is not overwritten: [`rule`] decides every field, and a
//!   refused value is audited as `scim.conflict`.
//! - `active: false` suspends the user, which ends their sessions in the same transaction
//!   ([`users::rewrite`], as for every suspension).
//!   `DELETE /Users/{id}` deletes the user as `latchkey user delete` does (memberships,
//!   sessions and pairwise NameIDs go; the audit keeps what went): it is what RFC 7644 and
//!   the usual clients (Entra, Okta) mean by it, and a client that wants to keep the person
//!   sends `active: false` instead.
//! - A user's ETag is a hash of the resource as answered ([`render::Resource::version`]); a
//!   group's is a hash of its own fields and its members' version, a number the database's
//!   triggers move on every change to what its member list shows, by any writer (migration
//!   0630; [`render::group`]), so it is known without reading a member. Either is checked
//!   against `If-Match` inside the writing transaction after the row is locked, so a change
//!   in between (by SCIM or an admin) is a 412, never a lost update.
//! - Listings are answered from SQL where the filter allows ([`listing`]), and never
//!   hold more than [`listing::MAX_SCAN`] resources otherwise.
//! - Console role holders, and groups that carry a console role, are out of SCIM's reach
//!   ([`out_of_reach`]): a write that would change one, or a role holder's membership of
//!   any group, is a 403 and writes nothing.

pub mod listing;
pub mod render;
pub mod rule;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use sqlx::AnyConnection;
use time::OffsetDateTime;

use latchkey_scim::patch::{self, PatchOp, ValueChange};
use latchkey_scim::schema::{GROUP_TYPE, USER_TYPE};
use latchkey_scim::{GROUP_SCHEMA, ScimError, if_match_admits};

use crate::audit::{self, Actor, Change};
use crate::console::roles;
use crate::directory::users::{self, UserFields};
use crate::directory::{AttributeValue, Group, NewGroup, User, UserStatus, groups};
use crate::error::Error;
use crate::ids::{GroupId, UserId};
use crate::store::{self, Store, timestamp};
use crate::tokens::{ApiTokens, TokenInfo, TokenScope};

pub use latchkey_scim::Patched;
pub use render::{Member, Resource};
use rule::Fields;

/// The SCIM server over a store.
#[derive(Debug, Clone)]
pub struct ScimDirectory {
    store: Store,
    base_url: String,
}

/// A user or group write: a whole resource (POST, PUT) or operations on the current one.
enum Write<'a> {
    Replace(&'a Value),
    Patch(&'a [PatchOp]),
}

impl ScimDirectory {
    /// A server whose resources are located under `base_url` (`.../scim/v2`).
    pub fn new(store: Store, base_url: impl Into<String>) -> Self {
        ScimDirectory {
            store,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL resources are located under.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The live `scim` token `presented` proves, or `None` for anything else (unknown,
    /// revoked, or an `api` token, which is logged: it was made for the admin API).
    pub async fn authenticate(&self, presented: &str) -> Result<Option<TokenInfo>, ScimError> {
        let token = ApiTokens::new(&self.store)
            .verify(presented)
            .await
            .map_err(scim_error)?;
        Ok(token.filter(|t| {
            let scim = t.scope == TokenScope::Scim;
            if !scim {
                tracing::warn!(token = %t.id, scope = t.scope.as_str(), "SCIM request refused: the token's scope is not scim");
            }
            scim
        }))
    }

    // ---- users ---------------------------------------------------------------------

    /// `GET /Users/{id}`.
    pub async fn get_user(&self, id: &str) -> Result<Resource, ScimError> {
        let id = user_id(id)?;
        let mut conn = self.store.pool().acquire().await.map_err(db)?;
        let user = users::fetch(&mut *conn, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| ScimError::not_found("User"))?;
        self.render_user(&mut conn, &user).await
    }

    async fn render_user(
        &self,
        conn: &mut AnyConnection,
        user: &User,
    ) -> Result<Resource, ScimError> {
        let row = load_user_row(conn, user.id).await?;
        let groups = user_groups(conn, user.id).await?;
        Ok(render::user(
            user,
            &row.extras,
            &groups,
            row.updated_at,
            &self.base_url,
        ))
    }

    /// `POST /Users`.
    pub async fn create_user(
        &self,
        token: &TokenInfo,
        body: &Value,
    ) -> Result<Resource, ScimError> {
        let resource = USER_TYPE.check(body, true)?;
        let wanted = render::WantedUser::from_resource(&resource);
        let Some(Value::String(email)) = wanted.fields.get("email") else {
            return Err(ScimError::invalid_value(
                "`emails` is required: every directory user has an e-mail address",
            ));
        };
        let mut fields = UserFields {
            username: String::new(),
            email: email.clone(),
            given_name: None,
            family_name: None,
            display_name: None,
            attributes: Default::default(),
            status: UserStatus::Active,
        };
        apply_fields(&mut fields, &wanted.fields);
        let fields = fields.validate().map_err(scim_error)?;
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let user = users::insert(conn, &actor, now, &fields, None)
            .await
            .map_err(scim_error)?;
        // What was pushed is what the directory now holds.
        let pushed = render::fields_of(&user);
        save_user_row(conn, user.id, &wanted.extras, &pushed, now).await?;
        let resource = render::user(&user, &wanted.extras, &[], Some(now), &self.base_url);
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        tracing::info!(user = %user.id, actor = actor.as_str(), "SCIM created user");
        Ok(resource)
    }

    /// `PUT /Users/{id}`.
    pub async fn replace_user(
        &self,
        token: &TokenInfo,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        self.update_user(token, id, Write::Replace(body), if_match)
            .await
    }

    /// `PATCH /Users/{id}`.
    pub async fn patch_user(
        &self,
        token: &TokenInfo,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        let ops = patch::parse_request(body)?;
        self.update_user(token, id, Write::Patch(&ops), if_match)
            .await
    }

    async fn update_user(
        &self,
        token: &TokenInfo,
        id: &str,
        write: Write<'_>,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        let id = user_id(id)?;
        // Parse a whole resource before taking the write lock.
        let replacement = match write {
            Write::Replace(body) => Some(USER_TYPE.check(body, true)?),
            Write::Patch(_) => None,
        };
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let before = locked_user(conn, id).await?;
        let row = load_user_row(conn, id).await?;
        let groups = user_groups(conn, id).await?;
        let current = render::user(
            &before,
            &row.extras,
            &groups,
            row.updated_at,
            &self.base_url,
        );
        check_version(if_match, current.version)?;
        let resource = match (replacement, write) {
            (Some(r), _) => r,
            (None, Write::Patch(ops)) => {
                let patched = patch::apply(&current.json, ops, &USER_TYPE)?;
                USER_TYPE.check(&patched, false)?
            }
            (None, Write::Replace(body)) => USER_TYPE.check(body, true)?,
        };
        let wanted = render::WantedUser::from_resource(&resource);
        let names = render::user_fields();
        let merged = rule::merge(
            names.iter().map(String::as_str),
            &render::fields_of(&before),
            &row.pushed,
            &wanted.fields,
            // The directory always has a username, an e-mail address and a status: a
            // resource without them says nothing of them.
            &["userName", "email", rule::ACTIVE],
        );
        let mut fields = UserFields {
            username: before.username.clone(),
            email: before.email.clone(),
            given_name: None,
            family_name: None,
            display_name: None,
            attributes: before.attributes.clone(),
            status: before.status,
        };
        for key in names.iter().filter_map(|n| n.strip_prefix("attributes.")) {
            fields.attributes.remove(key);
        }
        apply_fields(&mut fields, &merged.fields);
        let fields = fields.validate().map_err(scim_error)?;
        if fields.changes(&before) || wanted.extras != row.extras {
            guard_user(conn, &before).await?;
        }
        let after = users::rewrite(conn, &actor, now, "user.update", &before, &fields)
            .await
            .map_err(scim_error)?;
        if !merged.conflicts.is_empty() {
            tracing::warn!(user = %id, fields = ?merged.conflicts.iter().map(|c| &c.field).collect::<Vec<_>>(), "SCIM kept values an admin set by hand");
            audit::record(
                conn,
                &actor,
                now,
                Change {
                    action: "scim.conflict",
                    target_kind: "user",
                    target_id: id.to_string(),
                    target_name: after.username.clone(),
                    before: audit::snapshot(&merged.conflicts),
                    after: None,
                },
            )
            .await
            .map_err(scim_error)?;
        }
        let changed = wanted.extras != row.extras || merged.pushed != row.pushed;
        let modified = if changed {
            if wanted.extras != row.extras {
                audit::record(
                    conn,
                    &actor,
                    now,
                    Change {
                        action: "user.scim_attributes",
                        target_kind: "user",
                        target_id: id.to_string(),
                        target_name: after.username.clone(),
                        before: Some(row.extras.clone()),
                        after: Some(wanted.extras.clone()),
                    },
                )
                .await
                .map_err(scim_error)?;
            }
            save_user_row(conn, id, &wanted.extras, &merged.pushed, now).await?;
            Some(now)
        } else {
            row.updated_at
        };
        let resource = render::user(&after, &wanted.extras, &groups, modified, &self.base_url);
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        Ok(resource)
    }

    /// `DELETE /Users/{id}`: deletes the directory user (see the module documentation).
    pub async fn delete_user(
        &self,
        token: &TokenInfo,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let id = user_id(id)?;
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let before = locked_user(conn, id).await?;
        if if_match.is_some() {
            let current = self.render_user(conn, &before).await?;
            check_version(if_match, current.version)?;
        }
        guard_user(conn, &before).await?;
        users::remove(conn, &actor, now, &before)
            .await
            .map_err(scim_error)?;
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        tracing::info!(user = %id, actor = actor.as_str(), "SCIM deleted user");
        Ok(())
    }

    // ---- groups --------------------------------------------------------------------

    /// `GET /Groups/{id}`; without `members` (asked with `excludedAttributes=members`, say)
    /// none is read, and the version is the same.
    pub async fn get_group(&self, id: &str, members: bool) -> Result<Resource, ScimError> {
        let id = group_id(id)?;
        let mut conn = self.store.pool().acquire().await.map_err(db)?;
        let group = groups::fetch(&mut *conn, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| ScimError::not_found("Group"))?;
        self.render_group(&mut conn, &group, members).await
    }

    /// The group as answered, its members only if `members`. Its members' version is read
    /// before them: a change in between can make the version older than the members shown
    /// (an `If-Match` with it is then a 412), never newer.
    pub(crate) async fn render_group(
        &self,
        conn: &mut AnyConnection,
        group: &Group,
        members: bool,
    ) -> Result<Resource, ScimError> {
        let row = load_group_row(conn, group.id).await?;
        let members = if members {
            Some(group_members(conn, group.id).await?)
        } else {
            None
        };
        Ok(render::group(
            group,
            row.external_id.as_deref(),
            members.as_deref(),
            row.members_version,
            row.updated_at,
            &self.base_url,
        ))
    }

    /// `POST /Groups`.
    pub async fn create_group(
        &self,
        token: &TokenInfo,
        body: &Value,
    ) -> Result<Resource, ScimError> {
        let resource = GROUP_TYPE.check(body, true)?;
        let wanted = WantedGroup::from_resource(&resource)?;
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let group = groups::insert(
            conn,
            &actor,
            now,
            NewGroup {
                name: wanted.name.clone(),
                description: None,
            },
        )
        .await
        .map_err(scim_error)?;
        for (member, written) in wanted.members.iter().zip(&wanted.written) {
            add_member(conn, &actor, now, &group, *member).await?;
            write_entry(conn, group.id, *member, written.as_ref()).await?;
        }
        save_group_row(conn, group.id, wanted.external_id.as_deref(), now).await?;
        let resource = self.render_group(conn, &group, true).await?;
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        tracing::info!(group = %group.id, actor = actor.as_str(), "SCIM created group");
        Ok(resource)
    }

    /// `PUT /Groups/{id}`.
    pub async fn replace_group(
        &self,
        token: &TokenInfo,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        self.update_group(token, id, Write::Replace(body), if_match)
            .await
    }

    /// `PATCH /Groups/{id}`. One that only adds and removes members (what Entra and Okta
    /// send for every membership change, with `If-Match` or without) is applied to the
    /// members it names and answered with no body, only the new ETag: a group of 50,000 is
    /// neither read nor sent back to add one. Anything else is applied to the whole group,
    /// which is answered.
    pub async fn patch_group(
        &self,
        token: &TokenInfo,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Patched, ScimError> {
        let ops = patch::parse_request(body)?;
        let changes: Option<Vec<ValueChange>> = ops
            .iter()
            .map(|op| patch::value_change(op, &GROUP_TYPE, "members"))
            .collect();
        if let Some(changes) = changes {
            let version = self.change_members(token, id, &changes, if_match).await?;
            return Ok(Patched::Applied(version));
        }
        self.update_group(token, id, Write::Patch(&ops), if_match)
            .await
            .map(Patched::Resource)
    }

    /// Applies member changes in order to the members they name, reading and writing only
    /// those: what applying them to the whole group would leave, for the same checks (every
    /// added entry against the schema, a member must be a user, a role-carrying group is out
    /// of reach). `If-Match` is checked against the group's version, which needs no member
    /// read; the answer is the version after.
    async fn change_members(
        &self,
        token: &TokenInfo,
        id: &str,
        changes: &[ValueChange<'_>],
        if_match: Option<&str>,
    ) -> Result<i64, ScimError> {
        let id = group_id(id)?;
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let group = locked_group(conn, id).await?;
        if if_match.is_some() {
            let current = self.render_group(conn, &group, false).await?;
            check_version(if_match, current.version)?;
        }
        // Per named user: (a member before, written entry before), then the same after.
        let mut named: BTreeMap<UserId, [(bool, Option<Value>); 2]> = BTreeMap::new();
        for change in changes {
            match change {
                ValueChange::Add(items) => {
                    let checked = GROUP_TYPE.check(
                        &json!({"schemas": [GROUP_SCHEMA], "displayName": group.name,
                            "members": items}),
                        false,
                    )?;
                    for item in members_of(&checked) {
                        let (user, written) = member_of(item)?;
                        let state = named_state(conn, &mut named, id, user).await?;
                        if !state.0 {
                            *state = (true, written);
                        }
                    }
                }
                ValueChange::Remove(values) => {
                    for value in values {
                        // Only the ID as answered names a member (`same_item` compares it).
                        let Ok(user) = value.parse::<UserId>() else {
                            continue;
                        };
                        if user.to_string() != *value {
                            continue;
                        }
                        *named_state(conn, &mut named, id, user).await? = (false, None);
                    }
                }
            }
        }
        if named.values().any(|[before, after]| before.0 != after.0) {
            guard_group(conn, &group).await?;
        }
        let mut changed = false;
        for (user_id, [before, after]) in &named {
            match (before.0, after.0) {
                (false, true) => {
                    add_member(conn, &actor, now, &group, *user_id).await?;
                    write_entry(conn, id, *user_id, after.1.as_ref()).await?;
                }
                (true, false) => {
                    remove_member(conn, &actor, now, &group, *user_id).await?;
                }
                (true, true) if before.1 != after.1 => {
                    write_entry(conn, id, *user_id, after.1.as_ref()).await?;
                }
                _ => continue,
            }
            changed = true;
        }
        if changed {
            // Its `lastModified` moves; its `externalId` stays.
            let row = load_group_row(conn, id).await?;
            save_group_row(conn, id, row.external_id.as_deref(), now).await?;
        }
        let after = self.render_group(conn, &group, false).await?;
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        Ok(after.version)
    }

    /// Groups follow the SCIM client: a PUT's member list is the group's (the overwrite
    /// rule is about a person's attributes, not about who is in a group the feed owns).
    async fn update_group(
        &self,
        token: &TokenInfo,
        id: &str,
        write: Write<'_>,
        if_match: Option<&str>,
    ) -> Result<Resource, ScimError> {
        let id = group_id(id)?;
        let replacement = match write {
            Write::Replace(body) => Some(GROUP_TYPE.check(body, true)?),
            Write::Patch(_) => None,
        };
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let before = locked_group(conn, id).await?;
        let row = load_group_row(conn, id).await?;
        // The version first: it needs no member read, and a stale `If-Match` reads none.
        let version = render::group(
            &before,
            row.external_id.as_deref(),
            None,
            row.members_version,
            row.updated_at,
            &self.base_url,
        )
        .version;
        check_version(if_match, version)?;
        let members = group_members(conn, id).await?;
        let current = render::group(
            &before,
            row.external_id.as_deref(),
            Some(&members),
            row.members_version,
            row.updated_at,
            &self.base_url,
        );
        let resource = match (replacement, write) {
            (Some(r), _) => r,
            (None, Write::Patch(ops)) => {
                let patched = patch::apply(&current.json, ops, &GROUP_TYPE)?;
                GROUP_TYPE.check(&patched, false)?
            }
            (None, Write::Replace(body)) => GROUP_TYPE.check(body, true)?,
        };
        let wanted = WantedGroup::from_resource(&resource)?;
        let had: BTreeMap<&str, &Member> = members.iter().map(|m| (m.id.as_str(), m)).collect();
        let want: BTreeSet<String> = wanted.members.iter().map(ToString::to_string).collect();
        let same_members =
            had.len() == want.len() && want.iter().all(|w| had.contains_key(w.as_str()));
        if wanted.name != before.name || !same_members {
            guard_group(conn, &before).await?;
        }
        let after = groups::rename(conn, &actor, now, &before, &wanted.name)
            .await
            .map_err(scim_error)?;
        let mut changed = false;
        for (member, written) in wanted.members.iter().zip(&wanted.written) {
            match had.get(member.to_string().as_str()) {
                None => {
                    add_member(conn, &actor, now, &after, *member).await?;
                    write_entry(conn, id, *member, written.as_ref()).await?;
                    changed = true;
                }
                Some(m) => {
                    // An entry the same as the one answered without it (a client sending back
                    // what it read) changes nothing and is not kept.
                    let keep = match written {
                        Some(e) if m.written.is_none() && *e == m.entry(&self.base_url) => None,
                        other => other.clone(),
                    };
                    if keep != m.written {
                        write_entry(conn, id, *member, keep.as_ref()).await?;
                        changed = true;
                    }
                }
            }
        }
        for m in &members {
            if !want.contains(&m.id) {
                remove_member(conn, &actor, now, &after, user_id(&m.id)?).await?;
                changed = true;
            }
        }
        if wanted.external_id != row.external_id || changed {
            save_group_row(conn, id, wanted.external_id.as_deref(), now).await?;
        }
        let resource = self.render_group(conn, &after, true).await?;
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        Ok(resource)
    }

    /// `DELETE /Groups/{id}`: deletes the group, its memberships and its place in
    /// application access, as `latchkey group delete` does.
    pub async fn delete_group(
        &self,
        token: &TokenInfo,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ScimError> {
        let id = group_id(id)?;
        let actor = token.actor();
        let now = self.store.now();
        let mut tx = self.store.begin().await.map_err(scim_error)?;
        let conn = store::conn(&mut tx);
        let group = locked_group(conn, id).await?;
        if if_match.is_some() {
            let current = self.render_group(conn, &group, false).await?;
            check_version(if_match, current.version)?;
        }
        guard_group(conn, &group).await?;
        guard_members(conn, &group).await?;
        groups::remove(conn, &actor, now, &group)
            .await
            .map_err(scim_error)?;
        store::commit(tx).await.map_err(scim_error)?;
        self.store.wake_outbox();
        tracing::info!(group = %id, actor = actor.as_str(), "SCIM deleted group");
        Ok(())
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }
}

/// What a checked Group resource asks for.
struct WantedGroup {
    name: String,
    external_id: Option<String>,
    members: Vec<UserId>,
    /// Per member, the entry to keep as written ([`member_of`]).
    written: Vec<Option<Value>>,
}

impl WantedGroup {
    fn from_resource(resource: &Value) -> Result<WantedGroup, ScimError> {
        let name = resource
            .get("displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value("`displayName` is required"))?
            .to_owned();
        let mut members = Vec::new();
        let mut written = Vec::new();
        // A set, not `members.contains`: a PUT of 100,000 members was 5 billion comparisons.
        let mut seen = BTreeSet::new();
        for m in members_of(resource) {
            let (id, entry) = member_of(m)?;
            if seen.insert(id) {
                members.push(id);
                written.push(entry);
            }
        }
        Ok(WantedGroup {
            name,
            external_id: resource
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            members,
            written,
        })
    }
}

/// The member entries of a checked Group resource.
fn members_of(resource: &Value) -> &[Value] {
    resource
        .get("members")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The user a member entry names, and the entry to keep as written: only one naming the
/// user by the ID as answered (another spelling of it is the same user, answered as a
/// member SCIM did not describe).
fn member_of(m: &Value) -> Result<(UserId, Option<Value>), ScimError> {
    if let Some(kind) = m.get("type").and_then(Value::as_str)
        && kind.eq_ignore_ascii_case("Group")
    {
        return Err(ScimError::invalid_value(
            "only users can be members (no nested groups)",
        ));
    }
    let value = m
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("every member needs a `value`"))?;
    let id: UserId = value.parse().map_err(|_| {
        ScimError::invalid_value(format!("member `{value}` is not a user of this directory"))
    })?;
    let written = (id.to_string() == value).then(|| m.clone());
    Ok((id, written))
}

/// Sets the user fields that `fields` (by rule name) hold; custom attributes are set, not
/// removed (the caller removed the ones SCIM decides).
fn apply_fields(out: &mut UserFields, fields: &Fields) {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    if let Some(v) = text("userName") {
        out.username = v;
    }
    if let Some(v) = text("email") {
        out.email = v;
    }
    out.given_name = text("givenName");
    out.family_name = text("familyName");
    out.display_name = text("displayName");
    if let Some(Value::Bool(active)) = fields.get(rule::ACTIVE) {
        out.status = if *active {
            UserStatus::Active
        } else {
            UserStatus::Suspended
        };
    }
    for (name, value) in fields {
        let Some(key) = name.strip_prefix("attributes.") else {
            continue;
        };
        let value = match value {
            Value::String(s) => AttributeValue::One(s.clone()),
            Value::Array(items) => AttributeValue::Many(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            ),
            _ => continue,
        };
        out.attributes.insert(key.to_owned(), value);
    }
}

/// A user or group ID from a URL; anything else is a resource that does not exist.
fn user_id(raw: &str) -> Result<UserId, ScimError> {
    raw.parse().map_err(|_| ScimError::not_found("User"))
}

fn group_id(raw: &str) -> Result<GroupId, ScimError> {
    raw.parse().map_err(|_| ScimError::not_found("Group"))
}

fn check_version(if_match: Option<&str>, version: i64) -> Result<(), ScimError> {
    match if_match {
        Some(header) if !if_match_admits(header, version) => Err(ScimError::precondition_failed()),
        _ => Ok(()),
    }
}

/// Why console role holders are out of SCIM's reach: a SCIM token is held by another
/// system (an HR feed, another IdP), and through a role holder that system could make
/// itself admin (a new e-mail address on an admin, then a password reset; a member added to
/// a group that carries a role) or lock every admin out. Admins change them by hand; a
/// feed that repeats their current values is answered as usual.
fn out_of_reach(what: &str) -> ScimError {
    ScimError::status(
        403,
        format!("{what} a console role; SCIM may not change it (an admin can, in the console)"),
    )
}

/// Refuses a change to a user who is granted a console role (suspended or not: resuming
/// gives the role back).
async fn guard_user(conn: &mut AnyConnection, user: &User) -> Result<(), ScimError> {
    let held = roles::granted_to(&mut *conn, user)
        .await
        .map_err(scim_error)?;
    if held.is_empty() {
        return Ok(());
    }
    tracing::warn!(user = %user.id, roles = ?held.roles(), "SCIM write refused: the user holds a console role");
    Err(out_of_reach("this user holds"))
}

/// Refuses a change to a group that carries a console role (joining it grants the role).
async fn guard_group(conn: &mut AnyConnection, group: &Group) -> Result<(), ScimError> {
    let carries = roles::of_group(&mut *conn, group.id)
        .await
        .map_err(scim_error)?;
    if carries.is_empty() {
        return Ok(());
    }
    tracing::warn!(group = %group.id, roles = ?carries, "SCIM write refused: the group carries a console role");
    Err(out_of_reach("this group carries"))
}

/// Refuses to delete a group a console role holder is in: the deletion takes every member
/// out, which [`remove_member`] refuses for a role holder one member at a time.
async fn guard_members(conn: &mut AnyConnection, group: &Group) -> Result<(), ScimError> {
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT m.user_id FROM group_members m WHERE m.group_id = $1 AND (\
         EXISTS (SELECT 1 FROM console_roles r WHERE r.user_id = m.user_id) OR \
         EXISTS (SELECT 1 FROM console_roles r JOIN group_members o ON o.group_id = r.group_id \
         WHERE o.user_id = m.user_id)) LIMIT 1",
    )
    .bind(group.id.to_db())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let Some(holder) = holder else {
        return Ok(());
    };
    tracing::warn!(group = %group.id, member = %holder, "SCIM group deletion refused: a member holds a console role");
    Err(out_of_reach("a member of this group holds"))
}

/// The user, read after taking their row's lock ([`users::fetch_for_update`]), so the
/// version compared with `If-Match` is the one the write replaces.
async fn locked_user(conn: &mut AnyConnection, id: UserId) -> Result<User, ScimError> {
    users::fetch_for_update(conn, id)
        .await
        .map_err(scim_error)?
        .ok_or_else(|| ScimError::not_found("User"))
}

/// The group, read after taking its row's write lock: an `UPDATE` that changes nothing, of a
/// column no foreign key refers to (SQLite checks every child row of a parent key an
/// `UPDATE` names, even to the same value: setting the group's key cost 8 ms for a group of
/// 100,000).
async fn locked_group(conn: &mut AnyConnection, id: GroupId) -> Result<Group, ScimError> {
    lock(
        conn,
        "UPDATE directory_groups SET updated_at = updated_at WHERE id = $1",
        &id.to_db(),
        "Group",
    )
    .await?;
    groups::fetch(&mut *conn, id)
        .await
        .map_err(scim_error)?
        .ok_or_else(|| ScimError::not_found("Group"))
}

async fn lock(
    conn: &mut AnyConnection,
    statement: &'static str,
    id: &str,
    what: &str,
) -> Result<(), ScimError> {
    let done = sqlx::query(statement)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(ScimError::not_found(what));
    }
    Ok(())
}

/// The SCIM side of a user.
struct UserRowScim {
    extras: Value,
    pushed: Fields,
    updated_at: Option<OffsetDateTime>,
}

async fn load_user_row(conn: &mut AnyConnection, id: UserId) -> Result<UserRowScim, ScimError> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT resource, pushed, updated_at FROM scim_users WHERE user_id = $1")
            .bind(id.to_db())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
    let Some((resource, pushed, updated_at)) = row else {
        return Ok(UserRowScim {
            extras: Value::Object(Default::default()),
            pushed: Fields::new(),
            updated_at: None,
        });
    };
    Ok(UserRowScim {
        extras: serde_json::from_str(&resource)
            .map_err(|e| scim_error(Error::corrupt("scim_users.resource", e)))?,
        pushed: serde_json::from_str(&pushed)
            .map_err(|e| scim_error(Error::corrupt("scim_users.pushed", e)))?,
        updated_at: Some(
            timestamp::parse("scim_users.updated_at", &updated_at).map_err(scim_error)?,
        ),
    })
}

async fn save_user_row(
    conn: &mut AnyConnection,
    id: UserId,
    extras: &Value,
    pushed: &Fields,
    now: OffsetDateTime,
) -> Result<(), ScimError> {
    let pushed = serde_json::to_string(pushed)
        .map_err(|e| scim_error(Error::corrupt("scim_users.pushed", e)))?;
    sqlx::query(
        "INSERT INTO scim_users (user_id, resource, pushed, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id) DO UPDATE SET resource = excluded.resource, \
         pushed = excluded.pushed, updated_at = excluded.updated_at",
    )
    .bind(id.to_db())
    .bind(extras.to_string())
    .bind(pushed)
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// The SCIM side of a group, and its members' version.
struct GroupRowScim {
    external_id: Option<String>,
    updated_at: Option<OffsetDateTime>,
    members_version: i64,
}

async fn load_group_row(conn: &mut AnyConnection, id: GroupId) -> Result<GroupRowScim, ScimError> {
    let row: Option<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT g.members_version, s.external_id, s.updated_at FROM directory_groups g \
         LEFT JOIN scim_groups s ON s.group_id = g.id WHERE g.id = $1",
    )
    .bind(id.to_db())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    let (members_version, external_id, updated_at) =
        row.ok_or_else(|| ScimError::not_found("Group"))?;
    Ok(GroupRowScim {
        external_id,
        updated_at: updated_at
            .map(|t| timestamp::parse("scim_groups.updated_at", &t))
            .transpose()
            .map_err(scim_error)?,
        members_version,
    })
}

async fn save_group_row(
    conn: &mut AnyConnection,
    id: GroupId,
    external_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), ScimError> {
    sqlx::query(
        "INSERT INTO scim_groups (group_id, external_id, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (group_id) DO UPDATE SET external_id = excluded.external_id, \
         updated_at = excluded.updated_at",
    )
    .bind(id.to_db())
    .bind(external_id.map(str::to_owned))
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Keeps `written` as the member's entry (none: the member is answered by username). The
/// row goes with the membership (a foreign key), so only a member has one.
async fn write_entry(
    conn: &mut AnyConnection,
    group: GroupId,
    user: UserId,
    written: Option<&Value>,
) -> Result<(), ScimError> {
    let query = match written {
        Some(entry) => sqlx::query(
            "INSERT INTO scim_group_members (group_id, user_id, entry) VALUES ($1, $2, $3) \
             ON CONFLICT (group_id, user_id) DO UPDATE SET entry = excluded.entry",
        )
        .bind(group.to_db())
        .bind(user.to_db())
        .bind(entry.to_string()),
        None => sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.to_db())
            .bind(user.to_db()),
    };
    query.execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

/// The state of a user a member change names, read once per request: (a member before, their
/// written entry), then what the changes so far leave.
async fn named_state<'m>(
    conn: &mut AnyConnection,
    named: &'m mut BTreeMap<UserId, [(bool, Option<Value>); 2]>,
    group: GroupId,
    user: UserId,
) -> Result<&'m mut (bool, Option<Value>), ScimError> {
    let state = match named.entry(user) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(new) => {
            let row: Option<(Option<String>,)> = sqlx::query_as(
                "SELECT e.entry FROM group_members m LEFT JOIN scim_group_members e \
                 ON e.group_id = m.group_id AND e.user_id = m.user_id \
                 WHERE m.group_id = $1 AND m.user_id = $2",
            )
            .bind(group.to_db())
            .bind(user.to_db())
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            let state = match row {
                None => (false, None),
                Some((entry,)) => (true, entry.as_deref().map(parse_entry).transpose()?),
            };
            new.insert([state.clone(), state])
        }
    };
    Ok(&mut state[1])
}

fn parse_entry(text: &str) -> Result<Value, ScimError> {
    serde_json::from_str(text)
        .map_err(|e| scim_error(Error::corrupt("scim_group_members.entry", e)))
}

/// A user's groups as (ID, name), by name.
async fn user_groups(
    conn: &mut AnyConnection,
    id: UserId,
) -> Result<Vec<(String, String)>, ScimError> {
    Ok(groups::of_user(&mut *conn, id)
        .await
        .map_err(scim_error)?
        .into_iter()
        .map(|g| (g.id.to_string(), g.name))
        .collect())
}

/// A group's members, by username.
async fn group_members(conn: &mut AnyConnection, id: GroupId) -> Result<Vec<Member>, ScimError> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT u.id, u.username, e.entry FROM group_members m \
         JOIN users u ON u.id = m.user_id \
         LEFT JOIN scim_group_members e ON e.group_id = m.group_id AND e.user_id = m.user_id \
         WHERE m.group_id = $1 ORDER BY u.username_key",
    )
    .bind(id.to_db())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    rows.into_iter()
        .map(|(id, username, entry)| {
            Ok(Member {
                id,
                username,
                written: entry.as_deref().map(parse_entry).transpose()?,
            })
        })
        .collect()
}

/// The user a member entry names; one that does not exist is the client's mistake.
async fn member_user(conn: &mut AnyConnection, id: UserId) -> Result<User, ScimError> {
    users::fetch(&mut *conn, id)
        .await
        .map_err(scim_error)?
        .ok_or_else(|| not_a_user(id))
}

fn not_a_user(id: UserId) -> ScimError {
    ScimError::invalid_value(format!("member `{id}` is not a user of this directory"))
}

/// Adds the user a member entry names to `group`; one deleted meanwhile (by another writer,
/// after it was read) is answered as one that never was. A console role holder's groups are
/// out of SCIM's reach ([`guard_user`]): joining or leaving a group changes what they may use
/// and what applications read of them.
async fn add_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
    id: UserId,
) -> Result<(), ScimError> {
    let user = member_user(conn, id).await?;
    guard_user(conn, &user).await?;
    groups::insert_member(conn, actor, now, group, &user)
        .await
        .map_err(|e| match e {
            Error::UnknownUser { .. } => not_a_user(id),
            e => scim_error(e),
        })
}

/// Takes the user a member entry named out of `group`, unless they hold a console role
/// ([`guard_user`]).
async fn remove_member(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    group: &Group,
    id: UserId,
) -> Result<(), ScimError> {
    let user = member_user(conn, id).await?;
    guard_user(conn, &user).await?;
    groups::delete_member(conn, actor, now, group, &user)
        .await
        .map_err(scim_error)
}

fn db(e: sqlx::Error) -> ScimError {
    scim_error(Error::from(e))
}

/// A directory error as SCIM answers it. What the client can act on keeps its detail; the
/// rest is a 500 whose detail is only an operation ID, the log line carrying the cause.
pub fn scim_error(e: Error) -> ScimError {
    match &e {
        Error::InvalidField { .. } | Error::PasswordRefused { .. } => {
            ScimError::invalid_value(e.to_string())
        }
        Error::DuplicateUsername { .. }
        | Error::DuplicateEmail { .. }
        | Error::DuplicateGroup { .. } => ScimError::uniqueness(e.to_string()),
        Error::UnknownUser { .. } => ScimError::not_found("User"),
        Error::UnknownGroup { .. } => ScimError::not_found("Group"),
        Error::Busy {
            retry_after_seconds,
            ..
        } => ScimError::status(
            503,
            format!("busy; retry after {retry_after_seconds} seconds"),
        ),
        _ => {
            let operation = uuid::Uuid::new_v4();
            tracing::error!(%operation, error = %e, "SCIM request failed");
            ScimError::status(500, format!("internal error (operation {operation})"))
        }
    }
}
