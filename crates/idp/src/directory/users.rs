//! Users: creation, lookup, changes, suspension, deletion and passwords.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::{Any, Executor};
use time::OffsetDateTime;

use super::validate;
use crate::audit::{self, Actor, Change};
use crate::console::roles::AdminGuard;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::password::Password;
use crate::store::{self, Store, timestamp};

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// May sign in and use the applications their groups grant.
    Active,
    /// Kept in the directory (IDs, memberships, pairwise NameIDs) but refused at sign-in.
    Suspended,
}

impl UserStatus {
    /// `active` or `suspended`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
        }
    }

    /// Parses `active` or `suspended` (as typed in CSV files and on the command line).
    pub fn parse(raw: &str) -> Result<UserStatus> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "active" | "" => Ok(UserStatus::Active),
            "suspended" => Ok(UserStatus::Suspended),
            other => Err(Error::invalid(
                "status",
                format!("{other:?} is not one of: active, suspended"),
            )),
        }
    }
}

/// A custom attribute value: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A single value.
    One(String),
    /// Several values (e.g. `roles`).
    Many(Vec<String>),
}

impl AttributeValue {
    /// The value(s) as a list, which is how SAML attributes carry them.
    pub fn values(&self) -> Vec<String> {
        match self {
            AttributeValue::One(v) => vec![v.clone()],
            AttributeValue::Many(vs) => vs.clone(),
        }
    }
}

/// A directory user as the rest of the IdP sees it. The password hash is deliberately not
/// here: it never leaves the store except to [`Users::verify_password`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Immutable internal ID.
    pub id: UserId,
    /// Login name, unique case-insensitively.
    pub username: String,
    /// E-mail address, unique case-insensitively.
    pub email: String,
    /// Given (first) name.
    pub given_name: Option<String>,
    /// Family (last) name.
    pub family_name: Option<String>,
    /// Name to show; falls back to given + family name, then the username.
    pub display_name: Option<String>,
    /// Custom attributes (department, employee number, roles...).
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Whether the user may sign in.
    pub status: UserStatus,
    /// Whether a password is set (users of upstream IdPs may have none).
    pub has_password: bool,
    /// When the user was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the user was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl User {
    /// A fingerprint of the names an edit form shows (username, e-mail address, given, family
    /// and display names). The form sends back the one it was drawn from
    /// ([`Users::update_if`]): it posts every name, so an edit made on a page opened
    /// before someone else's change (another admin, an HR feed) would put their names back.
    pub fn names_version(&self) -> String {
        let names = [
            Some(&self.username),
            Some(&self.email),
            self.given_name.as_ref(),
            self.family_name.as_ref(),
            self.display_name.as_ref(),
        ];
        // Length-prefixed, so no two lists of names read as one text.
        let text: String = names
            .iter()
            .map(|name| match name {
                Some(name) => format!("{}:{name};", name.len()),
                None => "-;".to_owned(),
            })
            .collect();
        crate::session::token_hash(&text)
    }

    /// A fingerprint of the whole user as the admin API shows them: the `ETag` an `If-Match`
    /// names ([`Users::update_if`]). Every serialized field counts (never a password: only
    /// whether there is one), in the one stable encoding ([`crate::fingerprint`]).
    pub fn version(&self) -> String {
        crate::fingerprint::of(self)
    }

    /// The name to show in the portal and in assertions.
    pub fn shown_name(&self) -> String {
        if let Some(name) = &self.display_name {
            return name.clone();
        }
        match (&self.given_name, &self.family_name) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => self.username.clone(),
        }
    }
}

/// What is needed to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Initial status.
    pub status: UserStatus,
    /// Initial password, hashed before the transaction starts.
    pub password: Option<Password>,
}

impl NewUser {
    /// The validated fields to write, and the password to hash.
    pub(crate) fn into_fields(self) -> Result<(UserFields, Option<Password>)> {
        let fields = UserFields {
            username: self.username,
            email: self.email,
            given_name: self.given_name,
            family_name: self.family_name,
            display_name: self.display_name,
            attributes: self.attributes,
            status: self.status,
        }
        .validate()?;
        Ok((fields, self.password))
    }

    /// A new active user with only the required fields set.
    pub fn new(username: impl Into<String>, email: impl Into<String>) -> Self {
        NewUser {
            username: username.into(),
            email: email.into(),
            given_name: None,
            family_name: None,
            display_name: None,
            attributes: BTreeMap::new(),
            status: UserStatus::Active,
            password: None,
        }
    }
}

/// A change to a user; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// New login name.
    pub username: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// New given name.
    pub given_name: Option<Option<String>>,
    /// New family name.
    pub family_name: Option<Option<String>>,
    /// New display name.
    pub display_name: Option<Option<String>>,
    /// Custom attributes to add or replace.
    pub set_attributes: BTreeMap<String, AttributeValue>,
    /// Custom attributes to remove.
    pub remove_attributes: Vec<String>,
    /// New status.
    pub status: Option<UserStatus>,
}

impl UserPatch {
    /// Whether the patch would change nothing at all.
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.email.is_none()
            && self.given_name.is_none()
            && self.family_name.is_none()
            && self.display_name.is_none()
            && self.set_attributes.is_empty()
            && self.remove_attributes.is_empty()
            && self.status.is_none()
    }
}

/// A user's fields after validation: what actually gets written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserFields {
    pub username: String,
    pub email: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub status: UserStatus,
}

impl UserFields {
    pub(crate) fn validate(self) -> Result<UserFields> {
        let mut attributes = BTreeMap::new();
        for (key, value) in self.attributes {
            let key = validate::attribute_key(&key)?;
            match &value {
                AttributeValue::One(v) => validate::attribute_value(&key, v)?,
                AttributeValue::Many(vs) => {
                    if vs.len() > validate::MAX_ATTRIBUTE_VALUES {
                        return Err(Error::invalid(
                            "attribute value",
                            format!(
                                "{key:?} has more than {} values",
                                validate::MAX_ATTRIBUTE_VALUES
                            ),
                        ));
                    }
                    for v in vs {
                        validate::attribute_value(&key, v)?;
                    }
                }
            }
            attributes.insert(key, value);
        }
        Ok(UserFields {
            username: validate::username(&self.username)?,
            email: validate::email(&self.email)?,
            given_name: validate::optional_name("given_name", self.given_name.as_deref())?,
            family_name: validate::optional_name("family_name", self.family_name.as_deref())?,
            display_name: validate::optional_name("display_name", self.display_name.as_deref())?,
            attributes,
            status: self.status,
        })
    }

    /// Whether writing these fields would change the user.
    pub(crate) fn changes(&self, user: &User) -> bool {
        UserFields::of(user) != *self
    }

    fn of(user: &User) -> UserFields {
        UserFields {
            username: user.username.clone(),
            email: user.email.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            display_name: user.display_name.clone(),
            attributes: user.attributes.clone(),
            status: user.status,
        }
    }

    pub(crate) fn patched(user: &User, patch: UserPatch) -> UserFields {
        let mut fields = UserFields::of(user);
        if let Some(v) = patch.username {
            fields.username = v;
        }
        if let Some(v) = patch.email {
            fields.email = v;
        }
        if let Some(v) = patch.given_name {
            fields.given_name = v;
        }
        if let Some(v) = patch.family_name {
            fields.family_name = v;
        }
        if let Some(v) = patch.display_name {
            fields.display_name = v;
        }
        for key in patch.remove_attributes {
            fields.attributes.remove(&key);
        }
        fields.attributes.extend(patch.set_attributes);
        if let Some(v) = patch.status {
            fields.status = v;
        }
        fields
    }
}

/// A `users` row as selected by [`select_users!`]; other modules that join `users u` into
/// their own statement (a session lookup) read it with `#[sqlx(flatten)]`.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    email: String,
    given_name: Option<String>,
    family_name: Option<String>,
    display_name: Option<String>,
    attributes: String,
    status: String,
    password_hash: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A [`UserRow`] with how many users its listing found in all
/// ([`Users::page_with_total`]).
#[derive(sqlx::FromRow)]
struct CountedUserRow {
    total: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

/// `SELECT` of every user column from `users u`, followed by the rest of the statement.
/// A macro rather than `format!` so every statement stays a `&'static str`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT u.id, u.username, u.email, u.given_name, u.family_name, u.display_name, \
             u.attributes, u.status, u.password_hash, u.created_at, u.updated_at FROM users u ",
            $tail
        )
    };
    // With one more column first: `SELECT <column>, u.id, ...`.
    (with $column:literal, $tail:literal) => {
        concat!(
            "SELECT ",
            $column,
            ", u.id, u.username, u.email, u.given_name, u.family_name, u.display_name, \
             u.attributes, u.status, u.password_hash, u.created_at, u.updated_at FROM users u ",
            $tail
        )
    };
}

impl UserRow {
    pub(crate) fn into_user(self) -> Result<User> {
        let status = match self.status.as_str() {
            "active" => UserStatus::Active,
            "suspended" => UserStatus::Suspended,
            other => return Err(Error::corrupt("users.status", other)),
        };
        Ok(User {
            id: UserId::from_db(&self.id)?,
            username: self.username,
            email: self.email,
            given_name: self.given_name,
            family_name: self.family_name,
            display_name: self.display_name,
            attributes: serde_json::from_str(&self.attributes)
                .map_err(|e| Error::corrupt("users.attributes", e))?,
            status,
            has_password: self.password_hash.is_some(),
            created_at: timestamp::parse("users.created_at", &self.created_at)?,
            updated_at: timestamp::parse("users.updated_at", &self.updated_at)?,
        })
    }
}

/// Stores a new password hash (or none) in a transaction the caller commits, with its
/// `user.password` audit event: the one write behind an admin's `set_password` and a user's
/// own change on `/account` ([`crate::account`]). The user's unused invitation and reset
/// links are used up with it ([`crate::enrollment::void_links`]).
pub(crate) async fn write_password(
    conn: &mut AnyConnection,
    actor: &Actor,
    id: UserId,
    hash: Option<String>,
    setter: Setter,
    now: OffsetDateTime,
) -> Result<User> {
    let before = fetch(&mut *conn, id)
        .await?
        .ok_or_else(|| Error::UnknownUser {
            user: id.to_string(),
        })?;
    let by_helpdesk = setter == Setter::Helpdesk && hash.is_some();
    sqlx::query(
        "UPDATE users SET password_hash = $2, updated_at = $3, password_set_by_helpdesk = $4 \
         WHERE id = $1",
    )
    .bind(id.to_db())
    .bind(hash.clone())
    .bind(timestamp::format(now))
    .bind(i64::from(by_helpdesk))
    .execute(&mut *conn)
    .await?;
    crate::enrollment::void_links(&mut *conn, id, now).await?;
    let after = User {
        has_password: hash.is_some(),
        updated_at: now,
        ..before.clone()
    };
    audit::record(
        conn,
        actor,
        now,
        Change {
            action: "user.password",
            target_kind: "user",
            target_id: id.to_string(),
            target_name: before.username.clone(),
            before: audit::snapshot(&before),
            after: audit::snapshot(&after),
        },
    )
    .await?;
    Ok(after)
}

/// Who sets a password, as far as gaining a console role later goes
/// ([`Users::set_password_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setter {
    /// The user themselves, or an operator who could grant them any console role anyway (an
    /// admin, an API token, the CLI on the host).
    Trusted,
    /// An operator who cannot grant console roles (helpdesk): the password stops working if
    /// the user gains a role, since whoever set it knows it.
    Helpdesk,
}

/// Loads one user by ID on any executor (pool or transaction).
pub(crate) async fn fetch<'e, E>(exec: E, id: UserId) -> Result<Option<User>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<UserRow> = sqlx::query_as(select_users!("WHERE u.id = $1"))
        .bind(id.to_db())
        .fetch_optional(exec)
        .await?;
    row.map(UserRow::into_user).transpose()
}

/// Loads one user for a change that rewrites their row from what it read, holding the row's
/// lock until the transaction ends (PostgreSQL; SQLite's write transaction already holds the
/// whole database). Every such change reads here: read without the lock, a change committed
/// meanwhile by another writer (a suspension, an HR feed's `active: false`) would be written
/// back over by this one. The user's lock comes first in the one lock order (see
/// [`super::groups::lock_groups_of`]).
pub(crate) async fn fetch_for_update(conn: &mut AnyConnection, id: UserId) -> Result<Option<User>> {
    lock(&mut *conn, id).await?;
    fetch(conn, id).await
}

/// Takes the user's row lock on PostgreSQL (nothing on SQLite, see [`fetch_for_update`]); a
/// user who does not exist is no error here.
pub(crate) async fn lock(conn: &mut AnyConnection, id: UserId) -> Result<()> {
    if store::Backend::of(conn) == store::Backend::Postgres {
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id.to_db())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The members of a group, ordered by username.
pub(crate) async fn in_group<'e, E>(exec: E, group: crate::ids::GroupId) -> Result<Vec<User>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<UserRow> = sqlx::query_as(select_users!(
        "JOIN group_members m ON m.user_id = u.id WHERE m.group_id = $1 ORDER BY u.username_key"
    ))
    .bind(group.to_db())
    .fetch_all(exec)
    .await?;
    rows.into_iter().map(UserRow::into_user).collect()
}

/// Loads one user by case-folded username.
pub(crate) async fn fetch_by_username<'e, E>(exec: E, username: &str) -> Result<Option<User>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<UserRow> = sqlx::query_as(select_users!("WHERE u.username_key = $1"))
        .bind(store::fold(username))
        .fetch_optional(exec)
        .await?;
    row.map(UserRow::into_user).transpose()
}

/// A user's stored password hash, if any.
pub(crate) async fn password_hash<'e, E>(exec: E, id: UserId) -> Result<Option<String>>
where
    E: Executor<'e, Database = Any>,
{
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id.to_db())
            .fetch_optional(exec)
            .await?;
    Ok(stored.flatten())
}

/// Refuses a username or e-mail address another user (not `except`) already has.
pub(crate) async fn check_unique(
    conn: &mut AnyConnection,
    fields: &UserFields,
    except: Option<UserId>,
) -> Result<()> {
    let except = except.map(UserId::to_db).unwrap_or_default();
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE username_key = $1 AND id <> $2")
            .bind(store::fold(&fields.username))
            .bind(&except)
            .fetch_optional(&mut *conn)
            .await?;
    if taken.is_some() {
        return Err(Error::DuplicateUsername {
            username: fields.username.clone(),
        });
    }
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE email_key = $1 AND id <> $2")
            .bind(store::fold(&fields.email))
            .bind(&except)
            .fetch_optional(&mut *conn)
            .await?;
    if taken.is_some() {
        return Err(Error::DuplicateEmail {
            email: fields.email.clone(),
        });
    }
    Ok(())
}

/// Maps a uniqueness violation that slipped past [`check_unique`] (a concurrent writer on
/// PostgreSQL) to the typed error.
fn unique_error(err: Error, fields: &UserFields) -> Error {
    if store::is_unique_violation(&err, "username_key") {
        Error::DuplicateUsername {
            username: fields.username.clone(),
        }
    } else if store::is_unique_violation(&err, "email_key") {
        Error::DuplicateEmail {
            email: fields.email.clone(),
        }
    } else {
        err
    }
}

pub(crate) fn attributes_json(fields: &UserFields) -> Result<String> {
    serde_json::to_string(&fields.attributes).map_err(|e| Error::corrupt("users.attributes", e))
}

/// Inserts a validated user and records `user.create`, inside the caller's transaction.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    fields: &UserFields,
    password_hash: Option<String>,
) -> Result<User> {
    check_unique(conn, fields, None).await?;
    let id = UserId::new_random();
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, email_key, given_name, \
         family_name, display_name, attributes, status, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
    )
    .bind(id.to_db())
    .bind(&fields.username)
    .bind(store::fold(&fields.username))
    .bind(&fields.email)
    .bind(store::fold(&fields.email))
    .bind(fields.given_name.clone())
    .bind(fields.family_name.clone())
    .bind(fields.display_name.clone())
    .bind(attributes_json(fields)?)
    .bind(fields.status.as_str())
    .bind(password_hash.clone())
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_error(e.into(), fields))?;
    let words = super::words::of(fields);
    let key = store::fold(&fields.username);
    super::words::insert_many(conn, words.iter().map(|w| (id, key.as_str(), w.as_str()))).await?;
    let (user, change) = created(id, fields, password_hash.is_some(), now);
    audit::record(conn, actor, now, change).await?;
    crate::provisioning::outbox::user_changed(conn, &user, "user.create", now).await?;
    Ok(user)
}

/// The user a creation stores and its `user.create` audit change: one definition for the
/// single insert and the bulk one ([`Users::create_many`]).
pub(crate) fn created(
    id: UserId,
    fields: &UserFields,
    has_password: bool,
    now: OffsetDateTime,
) -> (User, Change) {
    let user = User {
        id,
        username: fields.username.clone(),
        email: fields.email.clone(),
        given_name: fields.given_name.clone(),
        family_name: fields.family_name.clone(),
        display_name: fields.display_name.clone(),
        attributes: fields.attributes.clone(),
        status: fields.status,
        has_password,
        created_at: now,
        updated_at: now,
    };
    let change = Change {
        action: "user.create",
        target_kind: "user",
        target_id: id.to_string(),
        target_name: user.username.clone(),
        before: None,
        after: audit::snapshot(&user),
    };
    (user, change)
}

/// Writes new field values over an existing user and records the change; a no-op (same
/// values) writes nothing and records nothing, which is what makes imports idempotent.
pub(crate) async fn rewrite(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    action: &'static str,
    before: &User,
    fields: &UserFields,
) -> Result<User> {
    if UserFields::of(before) == *fields {
        return Ok(before.clone());
    }
    check_unique(conn, fields, Some(before.id)).await?;
    if fields.username != before.username {
        // A rename rewrites the user's membership rows (migration 0620) and moves their
        // groups' versions (0630): the user and their groups first, in the one lock order.
        super::groups::lock_groups_of(&mut *conn, before.id).await?;
    }
    let updated = sqlx::query(
        "UPDATE users SET username = $2, username_key = $3, email = $4, email_key = $5, \
         given_name = $6, family_name = $7, display_name = $8, attributes = $9, status = $10, \
         updated_at = $11 WHERE id = $1",
    )
    .bind(before.id.to_db())
    .bind(&fields.username)
    .bind(store::fold(&fields.username))
    .bind(&fields.email)
    .bind(store::fold(&fields.email))
    .bind(fields.given_name.clone())
    .bind(fields.family_name.clone())
    .bind(fields.display_name.clone())
    .bind(attributes_json(fields)?)
    .bind(fields.status.as_str())
    .bind(timestamp::format(now))
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_error(e.into(), fields))?
    .rows_affected();
    if updated == 0 {
        // Deleted by another writer since the caller read it: nothing to record.
        return Err(Error::UnknownUser {
            user: before.id.to_string(),
        });
    }
    // A rename's new key reaches the rows listings are ordered by (`user_words`,
    // `group_members`) through the database's trigger (migration 0620), whoever renames.
    let words = super::words::of(fields);
    if words != super::words::of(&UserFields::of(before)) {
        let key = store::fold(&fields.username);
        super::words::write(conn, before.id, &key, &words).await?;
    }
    let after = User {
        username: fields.username.clone(),
        email: fields.email.clone(),
        given_name: fields.given_name.clone(),
        family_name: fields.family_name.clone(),
        display_name: fields.display_name.clone(),
        attributes: fields.attributes.clone(),
        status: fields.status,
        updated_at: now,
        ..before.clone()
    };
    audit::record(
        conn,
        actor,
        now,
        Change {
            action,
            target_kind: "user",
            target_id: before.id.to_string(),
            target_name: after.username.clone(),
            before: audit::snapshot(before),
            after: audit::snapshot(&after),
        },
    )
    .await?;
    crate::provisioning::outbox::user_changed(conn, &after, action, now).await?;
    // A suspension ends the user's sessions in its own transaction, whoever suspends
    // (console, API, CLI, SCIM, an import): a session left in place would count again the
    // moment the user is resumed. (Their links only do nothing while they are suspended.)
    if before.status == UserStatus::Active && after.status == UserStatus::Suspended {
        crate::session::end_for_credential_change(
            conn,
            actor,
            before.id,
            &after.username,
            crate::session::Keep::Nothing,
            "suspend",
            None,
            now,
        )
        .await?;
    }
    Ok(after)
}

/// Deletes a user (memberships, sessions and pairwise NameIDs go with them) and records
/// `user.delete` with what went, inside the caller's transaction.
pub(crate) async fn remove(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: OffsetDateTime,
    before: &User,
) -> Result<()> {
    super::groups::lock_groups_of(&mut *conn, before.id).await?;
    let groups: Vec<String> = super::groups::of_user(&mut *conn, before.id)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    // Before the row goes: the user still counts as assigned where they were.
    crate::provisioning::outbox::user_changed(conn, before, "user.delete", now).await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(before.id.to_db())
        .execute(&mut *conn)
        .await?;
    // What the deletion took with it: the user and their memberships.
    let mut snapshot = audit::snapshot(before);
    if let Some(serde_json::Value::Object(map)) = snapshot.as_mut() {
        map.insert("groups".into(), serde_json::json!(groups));
    }
    audit::record(
        conn,
        actor,
        now,
        Change {
            action: "user.delete",
            target_kind: "user",
            target_id: before.id.to_string(),
            target_name: before.username.clone(),
            before: snapshot,
            after: None,
        },
    )
    .await
}

/// Which users a listing wants; every field left `None` means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Search, case-insensitive. With `@` it is a prefix of the e-mail address (so a whole
    /// address finds its user). Without, a user matches when it is a prefix of their
    /// username, or when each of its words (up to four) begins a word of their names,
    /// username or address's local part: "smi" and "jane smith" find Jane Smith
    /// (`j.smith`). A one-letter search is a username prefix only; so is one whose every word
    /// begins 20,000 words of users or more (5,000 with another word, a status or a group),
    /// and then the page says so ([`UserPage::search_too_broad`]). Prefixes, not substrings,
    /// because a B-tree index serves a prefix range on both SQLite and PostgreSQL, and a
    /// substring needs a full scan (or trigram indexes SQLite lacks).
    pub search: Option<String>,
    /// Only users in this state.
    pub status: Option<UserStatus>,
    /// Only members of this group.
    pub group: Option<crate::ids::GroupId>,
}

/// Where the next page of a user listing starts: after the user with this case-folded
/// username. Usernames are unique case-insensitively, so the key alone is a total order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor(String);

impl UserCursor {
    /// A cursor from the key a previous page handed out ([`UserCursor::key`]).
    pub fn from_key(key: impl Into<String>) -> UserCursor {
        UserCursor(key.into())
    }

    /// The cursor of the page that starts after `user`.
    pub fn after(user: &User) -> UserCursor {
        UserCursor(store::fold(&user.username))
    }

    /// The case-folded username the next page starts after.
    pub fn key(&self) -> &str {
        &self.0
    }
}

/// One page of users and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    /// The users, in username order.
    pub users: Vec<User>,
    /// The cursor of the next page, if there is one.
    pub next: Option<UserCursor>,
    /// Whether the search was too broad to read by the words of names (each of its words
    /// begins those of more users than a search reads, [`UserFilter::search`]): the page
    /// holds only the users whose username begins with it, and the caller says so rather
    /// than let "no user matches" stand for "nobody is called that".
    pub search_too_broad: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    Rows,
    Count,
    /// A count of at most `LIMIT` matches (the caller closes the sub-select).
    CountUpTo,
    /// The matches' case-folded usernames as `k`, in their order when `ordered` (the
    /// username side of a search by words, [`found_by_words`]).
    Keys {
        ordered: bool,
    },
    /// A search by words' matches as `k`, in no order, for a statement that reads them more
    /// than once ([`Users::page_with_total`]): the username side no more than `take` in
    /// order, the words side whole (its range is bounded by [`ByWords`]).
    Found,
}

/// The listing statement for `filter`, without its `LIMIT`: only the set filters appear, each
/// as a predicate an index serves. Keys are compared and ordered byte-wise: SQLite's
/// default collation already is, PostgreSQL is told `COLLATE "C"` (matching the indexes
/// of migrations 0440, 0460 and 0610), so both backends agree on the order and a prefix is
/// a key range. `take` is how many rows from the start (after `after`) the caller reads, at
/// most: a search by words reads no more of either side.
fn listing(
    backend: crate::store::Backend,
    filter: &UserFilter,
    by_words: &ByWords,
    after: Option<&UserCursor>,
    select: Select,
    take: Option<i64>,
) -> crate::store::sql::Sql {
    let mut sql = crate::store::sql::Sql::new("");
    match by_words {
        ByWords::Words(terms) => {
            found_by_words(&mut sql, backend, filter, terms, after, select, take);
        }
        ByWords::No | ByWords::TooBroad => by_prefix(&mut sql, backend, filter, after, select),
    }
    sql
}

/// The users `filter` selects by the prefix of their username (or with `@`, of their
/// address), appended to `sql`.
///
/// A group's members are read from `group_members` in its own username order (each member
/// row carries the key, migration 0460): one index range is the page whatever the group's
/// size, where joining every member and sorting took a second at 100,000. A count of them
/// joins `users` only for a filter on a user's own columns.
fn by_prefix(
    sql: &mut crate::store::sql::Sql,
    backend: crate::store::Backend,
    filter: &UserFilter,
    after: Option<&UserCursor>,
    select: Select,
) {
    use crate::store::Backend;
    use crate::store::sql::prefix_bound;
    let pg = backend == Backend::Postgres;
    let search = filter
        .search
        .as_deref()
        .map(store::fold)
        .filter(|s| !s.is_empty());
    let by_email = search.as_deref().is_some_and(|s| s.contains('@'));
    let (username_key, email_key) = match (filter.group.is_some(), pg) {
        (true, true) => ("m.username_key COLLATE \"C\"", "u.email_key COLLATE \"C\""),
        (true, false) => ("m.username_key", "u.email_key"),
        (false, true) => ("u.username_key COLLATE \"C\"", "u.email_key COLLATE \"C\""),
        (false, false) => ("u.username_key", "u.email_key"),
    };
    let joins_users = by_email || filter.status.is_some();
    match (select, filter.group) {
        (Select::Rows, None) => sql.push(select_users!("")),
        (Select::Count, None) => sql.push("SELECT COUNT(*) FROM users u "),
        (Select::CountUpTo, None) => sql.push("SELECT COUNT(*) FROM (SELECT 1 FROM users u "),
        (Select::Keys { .. } | Select::Found, None) => sql
            .push("SELECT ")
            .push(username_key)
            .push(" AS k FROM users u "),
        (Select::Rows, Some(_)) => {
            sql.push(select_users!("JOIN group_members m ON m.user_id = u.id "))
        }
        (Select::Count, Some(_)) if joins_users => {
            sql.push("SELECT COUNT(*) FROM users u JOIN group_members m ON m.user_id = u.id ")
        }
        (Select::CountUpTo, Some(_)) if joins_users => sql.push(
            "SELECT COUNT(*) FROM (SELECT 1 FROM users u JOIN group_members m ON m.user_id = u.id ",
        ),
        (Select::Keys { .. } | Select::Found, Some(_)) if joins_users => sql
            .push("SELECT ")
            .push(username_key)
            .push(" AS k FROM users u JOIN group_members m ON m.user_id = u.id "),
        (Select::Count, Some(_)) => sql.push("SELECT COUNT(*) FROM group_members m "),
        (Select::CountUpTo, Some(_)) => {
            sql.push("SELECT COUNT(*) FROM (SELECT 1 FROM group_members m ")
        }
        (Select::Keys { .. } | Select::Found, Some(_)) => sql
            .push("SELECT ")
            .push(username_key)
            .push(" AS k FROM group_members m "),
    };
    sql.push("WHERE 1 = 1");
    if let Some(group) = filter.group {
        sql.push(" AND m.group_id = ").text(group.to_db());
    }
    if let Some(search) = search {
        let key = if by_email { email_key } else { username_key };
        sql.push(" AND ")
            .push(key)
            .push(" >= ")
            .text(search.clone())
            .push(" AND ")
            .push(key)
            .push(" < ")
            .text(prefix_bound(&search));
    }
    if let Some(status) = filter.status {
        sql.push(" AND u.status = ").text(status.as_str());
    }
    if let Some(after) = after {
        sql.push(" AND ")
            .push(username_key)
            .push(" > ")
            .text(after.0.clone());
    }
    if matches!(select, Select::Rows | Select::Keys { ordered: true }) {
        sql.push(" ORDER BY ").push(username_key);
    }
}

/// The users `filter` selects when its search is also read by words ([`ByWords::Words`]),
/// appended to `sql`: those whose username begins with the search ([`by_prefix`]), and
/// those with a word in the first term's range (and one in each other term's) whose
/// username does not, so no user is counted twice.
///
/// The words are read from `user_words`' key `(word, username_key, user_id)` alone: one
/// index range, in username order per word, after the cursor, and sorted across the range's
/// words keeping only the first `take` (a top-N sort over index entries, ~0.15 us each at
/// 100,000 users on SQLite). Only the matches on the page are looked up in `users`. Another
/// term, a status or a group is checked per match ([`CHECK_AT_MOST`]).
fn found_by_words(
    sql: &mut crate::store::sql::Sql,
    backend: crate::store::Backend,
    filter: &UserFilter,
    terms: &[String],
    after: Option<&UserCursor>,
    select: Select,
    take: Option<i64>,
) {
    use crate::store::Backend;
    use crate::store::sql::prefix_bound;
    let key = match backend {
        Backend::Postgres => "u.username_key COLLATE \"C\"",
        Backend::Sqlite => "u.username_key",
    };
    // A page on PostgreSQL gathers the matches first, as `Found` does: run as sqlx runs it
    // (prepared, with parameters), PostgreSQL made the words side's `DISTINCT ... ORDER BY
    // ... LIMIT` distinct by sorting the whole range (a family name 5,000 share: 7.5-10 ms)
    // where gathered it hashes it and sorts the top of it (4.5 ms). SQLite's top-N form is
    // kept (its plan is held by `listing_filters_are_served_by_indexes`).
    let gathered = select == Select::Rows && backend == Backend::Postgres;
    match select {
        Select::Rows if gathered => sql.push("WITH found AS MATERIALIZED ("),
        Select::Rows => sql.push(select_users!("WHERE ")).push(key).push(" IN ("),
        Select::Count => sql.push("SELECT COUNT(*) FROM ("),
        Select::CountUpTo => sql.push("SELECT COUNT(*) FROM (SELECT 1 FROM ("),
        // The keys of both sides (no caller asks for them).
        Select::Keys { .. } => sql.push("SELECT k FROM ("),
        Select::Found => sql,
    };
    let ordered = take.is_some();
    // The words side is read whole when gathered, the statement pages it itself.
    let words_take = if select == Select::Found || gathered {
        None
    } else {
        take
    };
    sql.push("SELECT k FROM (");
    by_prefix(sql, backend, filter, after, Select::Keys { ordered });
    if let Some(take) = take {
        sql.push(" LIMIT ").int(take);
    }
    sql.push(
        ") a UNION ALL SELECT k FROM (SELECT DISTINCT w0.username_key AS k FROM user_words w0",
    );
    let search = filter
        .search
        .as_deref()
        .map(store::fold)
        .unwrap_or_default();
    if let Some((first, rest)) = terms.split_first() {
        sql.push(" WHERE w0.word >= ")
            .text(first.clone())
            .push(" AND w0.word < ")
            .text(prefix_bound(first));
        if let Some(after) = after {
            sql.push(" AND w0.username_key > ").text(after.0.clone());
        }
        // Those the username side has.
        sql.push(" AND NOT (w0.username_key >= ")
            .text(search.clone())
            .push(" AND w0.username_key < ")
            .text(prefix_bound(&search))
            .push(")");
        if let Some(status) = filter.status {
            sql.push(" AND EXISTS (SELECT 1 FROM users s WHERE s.id = w0.user_id AND s.status = ")
                .text(status.as_str())
                .push(")");
        }
        if let Some(group) = filter.group {
            sql.push(
                " AND EXISTS (SELECT 1 FROM group_members g WHERE g.user_id = w0.user_id \
                 AND g.group_id = ",
            )
            .text(group.to_db())
            .push(")");
        }
        for term in rest {
            sql.push(
                " AND EXISTS (SELECT 1 FROM user_words w1 \
                 WHERE w1.user_id = w0.user_id AND w1.word >= ",
            )
            .text(term.clone())
            .push(" AND w1.word < ")
            .text(prefix_bound(term))
            .push(")");
        }
    }
    if let Some(take) = words_take {
        sql.push(" ORDER BY w0.username_key LIMIT ").int(take);
    }
    sql.push(") b");
    match select {
        Select::Rows if gathered => {
            sql.push(") ")
                .push(select_users!("WHERE "))
                .push(key)
                .push(" IN (SELECT k FROM found ORDER BY k");
            if let Some(take) = take {
                sql.push(" LIMIT ").int(take);
            }
            sql.push(") ORDER BY ").push(key)
        }
        Select::Rows => sql.push(") ORDER BY ").push(key),
        Select::Count | Select::CountUpTo | Select::Keys { .. } => sql.push(") found"),
        Select::Found => sql,
    };
}

/// How a search is run, chosen per search from how many index entries each of its terms'
/// word ranges holds (read up to the bound that applies, [`READ_AT_MOST`] or
/// [`CHECK_AT_MOST`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum ByWords {
    /// The username (or address) prefix alone: no search, an address, a one-letter search,
    /// or one a term of which begins no word.
    No,
    /// The username prefix alone, because every term's range is too broad to read by words
    /// (a two-letter search of a large directory): the page says so
    /// ([`UserPage::search_too_broad`]), and another word or more letters narrow it.
    TooBroad,
    /// Both: the term whose range is narrowest is read ([`found_by_words`]), every other
    /// term must begin a word too.
    Words(Vec<String>),
}

/// The most index entries a search reads of a word range when nothing is checked per
/// match (one term, no status or group): read from `user_words`' key in username order per
/// word and sorted keeping a page's worth, ~0.15 us an entry on SQLite at 100,000 users
/// (10,000 entries, a family name 5,000 people share: 1.7 ms), so 20,000 keep a page, and
/// the count that decides, within a few milliseconds. Before migration 0610 each match was
/// looked up in `users` (~2 us) and the bound was 1,000: a surname 1,000 people share found
/// nobody by name.
const READ_AT_MOST: i64 = 20_000;

/// The most index entries a search reads of its narrowest word range when each match is
/// checked: another term (through `user_words_user`), a status (in `users`) or a group's
/// membership, ~2 us a match, so 5,000 keep a page near 10 ms. Walking users in username
/// order and checking words instead costs nothing when matches are spread out, but matches
/// of a name cluster (every `grace.*` has the word `grace`), and reaching a late cluster
/// read most of the directory: 300 ms.
const CHECK_AT_MOST: i64 = 5_000;

/// A page of `limit` users from `rows`, read one past it: the extra row says another page
/// follows, whose cursor is after the page's last user.
fn page_of(rows: Vec<UserRow>, limit: u32, by_words: &ByWords) -> Result<UserPage> {
    let mut users = rows
        .into_iter()
        .map(UserRow::into_user)
        .collect::<Result<Vec<User>>>()?;
    let more = users.len() > limit as usize;
    users.truncate(limit as usize);
    let next = match users.last() {
        Some(last) if more => Some(UserCursor::after(last)),
        _ => None,
    };
    Ok(UserPage {
        users,
        next,
        search_too_broad: *by_words == ByWords::TooBroad,
    })
}

/// Directory users.
#[derive(Debug, Clone, Copy)]
pub struct Users<'s> {
    store: &'s Store,
}

impl<'s> Users<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Users { store }
    }

    pub(crate) fn store(&self) -> &'s Store {
        self.store
    }

    /// Creates a user; refuses a taken username or e-mail address.
    pub async fn create(&self, actor: &Actor, new: NewUser) -> Result<User> {
        let (fields, password) = new.into_fields()?;
        let hash = match password {
            Some(pw) => Some(self.store.hashing().hash(pw).await?),
            None => None,
        };
        let mut tx = self.store.begin().await?;
        let user = insert(store::conn(&mut tx), actor, self.store.now(), &fields, hash).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(user)
    }

    /// The user with this ID.
    pub async fn get(&self, id: UserId) -> Result<User> {
        fetch(self.store.pool(), id)
            .await?
            .ok_or_else(|| Error::UnknownUser {
                user: id.to_string(),
            })
    }

    /// The user with this username (any case), if any.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<User>> {
        fetch_by_username(self.store.pool(), username).await
    }

    /// The user with this e-mail address (any case), if any.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(select_users!("WHERE u.email_key = $1"))
            .bind(store::fold(email))
            .fetch_optional(self.store.pool())
            .await?;
        row.map(UserRow::into_user).transpose()
    }

    /// Resolves what an admin typed: an internal ID, a username or an e-mail address.
    pub async fn lookup(&self, reference: &str) -> Result<User> {
        if let Ok(id) = reference.parse::<UserId>()
            && let Some(user) = fetch(self.store.pool(), id).await?
        {
            return Ok(user);
        }
        if let Some(user) = self.find_by_username(reference).await? {
            return Ok(user);
        }
        if let Some(user) = self.find_by_email(reference).await? {
            return Ok(user);
        }
        Err(Error::UnknownUser {
            user: reference.to_string(),
        })
    }

    /// All users, ordered by username.
    ///
    /// Loads the whole directory into memory: fine for an export, not for a listing. The
    /// API and CLI page with [`Users::page`]; the admin console moves to it on merge.
    pub async fn list(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(select_users!("ORDER BY u.username_key"))
            .fetch_all(self.store.pool())
            .await?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// One page of the users matching `filter`, in username order, starting after `after`.
    ///
    /// Keyset paging: each page costs the same however deep it is, because the statement
    /// seeks to the cursor in the username index instead of skipping rows.
    pub async fn page(
        &self,
        filter: &UserFilter,
        after: Option<&UserCursor>,
        limit: u32,
    ) -> Result<UserPage> {
        let limit = limit.max(1);
        let by_words = self.by_words(filter).await?;
        let take = i64::from(limit) + 1;
        let mut sql = listing(
            self.store.backend(),
            filter,
            &by_words,
            after,
            Select::Rows,
            Some(take),
        );
        sql.push(" LIMIT ").int(take);
        let rows: Vec<UserRow> = sql.fetch_all(self.store.pool()).await?;
        page_of(rows, limit, &by_words)
    }

    /// The page of `limit` users at position `offset` of the filtered listing; its `next`
    /// is set when more follow (a cursor after its last user).
    ///
    /// Kept for clients of the offset API: the database still walks past `offset` rows, so
    /// deep pages cost more; [`Users::page`] does not.
    pub async fn page_at_offset(
        &self,
        filter: &UserFilter,
        offset: u64,
        limit: u32,
    ) -> Result<UserPage> {
        let by_words = self.by_words(filter).await?;
        self.page_by(filter, &by_words, offset, limit).await
    }

    async fn page_by(
        &self,
        filter: &UserFilter,
        by_words: &ByWords,
        offset: u64,
        limit: u32,
    ) -> Result<UserPage> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = limit.max(1);
        // One row past the page says whether another follows.
        let take = i64::from(limit) + 1;
        let mut sql = listing(
            self.store.backend(),
            filter,
            by_words,
            None,
            Select::Rows,
            Some(offset.saturating_add(take)),
        );
        sql.push(" LIMIT ").int(take).push(" OFFSET ").int(offset);
        let rows: Vec<UserRow> = sql.fetch_all(self.store.pool()).await?;
        page_of(rows, limit, by_words)
    }

    /// The page of `limit` users at `offset` (the first page at 0, [`Users::page`]) and how
    /// many users match, counted no further than `cap` ([`Users::count_up_to`]): what an
    /// offset listing answers, with the search's ranges weighed once for both.
    pub async fn page_with_total(
        &self,
        filter: &UserFilter,
        offset: u64,
        limit: u32,
        cap: u64,
    ) -> Result<(UserPage, u64)> {
        let by_words = self.by_words(filter).await?;
        if let Some(found) = self
            .page_and_total_by_words(filter, &by_words, offset, limit, cap)
            .await?
        {
            return Ok(found);
        }
        let page = self.page_by(filter, &by_words, offset, limit).await?;
        let total = self.count_by(filter, &by_words, cap).await?;
        Ok((page, total))
    }

    /// [`Users::page_with_total`] of a search by words in one statement: the matches are
    /// gathered once (a `MATERIALIZED` common table expression, which both backends compute
    /// once) and both counted and paged from there. Read twice, page and count, each made the
    /// words' range distinct on its own: at 100,000 users on PostgreSQL a family name 5,000
    /// share took ~4 ms for each. `None` for a listing not by words, and when the page is
    /// empty past the first, where no row carries the count (the caller counts).
    async fn page_and_total_by_words(
        &self,
        filter: &UserFilter,
        by_words: &ByWords,
        offset: u64,
        limit: u32,
        cap: u64,
    ) -> Result<Option<(UserPage, u64)>> {
        use crate::store::Backend;
        let ByWords::Words(terms) = by_words else {
            return Ok(None);
        };
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let limit = limit.max(1);
        let take = i64::from(limit) + 1;
        let capped = i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX);
        let backend = self.store.backend();
        let key = match backend {
            Backend::Postgres => "u.username_key COLLATE \"C\"",
            Backend::Sqlite => "u.username_key",
        };
        let mut sql = crate::store::sql::Sql::new("WITH found AS MATERIALIZED (");
        // The username side as far as the count and the page need it, in its order.
        let prefix_take = capped.max(offset.saturating_add(take));
        found_by_words(
            &mut sql,
            backend,
            filter,
            terms,
            None,
            Select::Found,
            Some(prefix_take),
        );
        sql.push(") ")
            .push(select_users!(
                with "(SELECT COUNT(*) FROM found) AS total",
                "WHERE "
            ))
            .push(key)
            .push(" IN (SELECT k FROM found ORDER BY k LIMIT ")
            .int(take)
            .push(" OFFSET ")
            .int(offset)
            .push(") ORDER BY ")
            .push(key);
        let rows: Vec<CountedUserRow> = sql.fetch_all(self.store.pool()).await?;
        let Some(total) = rows.first().map(|r| r.total) else {
            // An empty first page: nothing matched.
            return Ok((offset == 0).then(|| {
                (
                    UserPage {
                        users: Vec::new(),
                        next: None,
                        search_too_broad: false,
                    },
                    0,
                )
            }));
        };
        let users = rows.into_iter().map(|r| r.user).collect();
        let page = page_of(users, limit, by_words)?;
        let total = u64::try_from(total).unwrap_or(0).min(cap.saturating_add(1));
        Ok(Some((page, total)))
    }

    /// How many users match `filter`. A count walks the matching index entries, so callers
    /// ask once per listing (its first page), not once per page.
    pub async fn count(&self, filter: &UserFilter) -> Result<u64> {
        let by_words = self.by_words(filter).await?;
        let sql = listing(
            self.store.backend(),
            filter,
            &by_words,
            None,
            Select::Count,
            None,
        );
        let n = sql.fetch_int(self.store.pool()).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How many users match `filter`, counting no further than `cap`: a result up to `cap`
    /// is exact, `cap + 1` means "more than `cap`". Reads at most `cap + 1` index entries,
    /// where an exact count of a large directory reads them all.
    pub async fn count_up_to(&self, filter: &UserFilter, cap: u64) -> Result<u64> {
        let by_words = self.by_words(filter).await?;
        self.count_by(filter, &by_words, cap).await
    }

    async fn count_by(&self, filter: &UserFilter, by_words: &ByWords, cap: u64) -> Result<u64> {
        let mut sql = listing(
            self.store.backend(),
            filter,
            by_words,
            None,
            Select::CountUpTo,
            None,
        );
        sql.push(" LIMIT ")
            .int(i64::try_from(cap.saturating_add(1)).unwrap_or(i64::MAX))
            .push(") capped");
        let n = sql.fetch_int(self.store.pool()).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// How `filter`'s search is run ([`ByWords`]): a count of at most [`READ_AT_MOST`]
    /// index entries per term.
    async fn by_words(&self, filter: &UserFilter) -> Result<ByWords> {
        use crate::store::sql::{Sql, prefix_bound};
        let Some(search) = filter.search.as_deref().map(store::fold) else {
            return Ok(ByWords::No);
        };
        if search.contains('@') {
            return Ok(ByWords::No);
        }
        let mut terms = super::words::terms(&search);
        if terms.iter().all(|t| t.chars().count() < 2) {
            return Ok(ByWords::No);
        }
        let checked = terms.len() > 1 || filter.status.is_some() || filter.group.is_some();
        let bound = if checked { CHECK_AT_MOST } else { READ_AT_MOST };
        // Each term's range counted: the narrowest is read, the others checked per entry,
        // so "ada lovelace" costs what its rarer word costs. Longest first (a longer term
        // begins fewer words, as a whole username's pieces do), and each count reads no
        // further than the narrowest so far: "ivan.lovelace123" reads a handful of entries,
        // not the 4,167 of "ivan".
        let mut order: Vec<usize> = (0..terms.len())
            .filter(|&i| terms[i].chars().count() >= 2)
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(terms[i].chars().count()));
        let mut narrowest: Option<(i64, usize)> = None;
        for i in order {
            let term = &terms[i];
            let cap = narrowest.map_or(bound, |(least, _)| least);
            let mut words =
                Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM user_words WHERE word >= ");
            words
                .text(term.clone())
                .push(" AND word < ")
                .text(prefix_bound(term))
                .push(" LIMIT ")
                .int(cap)
                .push(") w");
            let n = words.fetch_int(self.store.pool()).await?;
            if n == 0 {
                // A term that begins no word: no user matches by words.
                return Ok(ByWords::No);
            }
            if narrowest.is_none_or(|(least, _)| n < least) {
                narrowest = Some((n, i));
            }
        }
        let Some((words, first)) = narrowest else {
            return Ok(ByWords::No);
        };
        if words >= bound {
            return Ok(ByWords::TooBroad);
        }
        terms.swap(0, first);
        Ok(ByWords::Words(terms))
    }

    /// The database's plan for a page of this listing, for the tests that check an index
    /// serves every filter.
    #[doc(hidden)]
    pub async fn explain_page(&self, filter: &UserFilter) -> Result<String> {
        let backend = self.store.backend();
        let by_words = self.by_words(filter).await?;
        let mut sql = listing(backend, filter, &by_words, None, Select::Rows, Some(51));
        sql.push(" LIMIT ").int(51);
        sql.plan(
            self.store.pool(),
            backend == crate::store::Backend::Postgres,
        )
        .await
    }

    /// Applies a change; an empty or no-op patch records nothing.
    pub async fn update(&self, actor: &Actor, id: UserId, patch: UserPatch) -> Result<User> {
        self.update_if(actor, id, |_| true, patch).await
    }

    /// [`Users::update`] from what a client saw (a console form's [`User::names_version`], an
    /// API `If-Match` on [`User::version`]): unless `admits` the user as they are now (read
    /// under their row's lock), nothing is written ([`Error::ChangedSince`]).
    pub async fn update_if(
        &self,
        actor: &Actor,
        id: UserId,
        admits: impl FnOnce(&User) -> bool,
        patch: UserPatch,
    ) -> Result<User> {
        let suspends = patch.status == Some(UserStatus::Suspended);
        self.change(actor, id, "user.update", suspends, |user| {
            if !admits(user) {
                return Err(Error::ChangedSince { what: "user" });
            }
            Ok(UserFields::patched(user, patch))
        })
        .await
    }

    /// Refuses further sign-ins: ends the user's sessions (`user.sessions_end`) in the same
    /// transaction; keeps everything else. Refuses to suspend the last active admin
    /// ([`Error::LastAdmin`]).
    pub async fn suspend(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.change(actor, id, "user.suspend", true, |user| {
            let mut fields = UserFields::of(user);
            fields.status = UserStatus::Suspended;
            Ok(fields)
        })
        .await
    }

    /// Allows sign-ins again.
    pub async fn resume(&self, actor: &Actor, id: UserId) -> Result<User> {
        self.change(actor, id, "user.resume", false, |user| {
            let mut fields = UserFields::of(user);
            fields.status = UserStatus::Active;
            Ok(fields)
        })
        .await
    }

    async fn change(
        &self,
        actor: &Actor,
        id: UserId,
        action: &'static str,
        suspends: bool,
        apply: impl FnOnce(&User) -> Result<UserFields>,
    ) -> Result<User> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        // A suspension could take the admin role from its last active holder: the guard's
        // lock comes before the user's.
        let guard = match suspends {
            true => Some(AdminGuard::take(&mut *conn).await?),
            false => None,
        };
        let before = fetch_for_update(&mut *conn, id)
            .await?
            .ok_or_else(|| Error::UnknownUser {
                user: id.to_string(),
            })?;
        let fields = apply(&before)?.validate()?;
        let after = rewrite(
            &mut *conn,
            actor,
            self.store.now(),
            action,
            &before,
            &fields,
        )
        .await?;
        if let Some(guard) = guard {
            guard.keep(conn).await?;
        }
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(after)
    }

    /// Deletes a user with their memberships and pairwise NameIDs; refuses to delete the last
    /// active admin ([`Error::LastAdmin`]).
    pub async fn delete(&self, actor: &Actor, id: UserId) -> Result<()> {
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let guard = AdminGuard::take(&mut *conn).await?;
        let before = fetch(&mut *conn, id)
            .await?
            .ok_or_else(|| Error::UnknownUser {
                user: id.to_string(),
            })?;
        remove(&mut *conn, actor, self.store.now(), &before).await?;
        guard.keep(conn).await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        Ok(())
    }

    /// Sets (or with `None` removes) a user's password, as an admin does (console, API,
    /// CLI), and ends every session of the user in the same transaction: a password is
    /// set for someone else when the old one leaked, and whoever signed in with it must not
    /// stay signed in (`user.sessions_end`, as after a reset link). The audit event says
    /// that the password changed, never what to. (The user's own change, which keeps the
    /// session it was made from, is [`crate::account::Account::change_password`].)
    pub async fn set_password(
        &self,
        actor: &Actor,
        id: UserId,
        password: Option<Password>,
    ) -> Result<()> {
        self.set_password_by(actor, id, password, Setter::Trusted)
            .await
    }

    /// [`Users::set_password`] by `setter`: one set by helpdesk is cleared if the user gains
    /// a console role later (`user.password_voided`), with their sessions.
    pub async fn set_password_by(
        &self,
        actor: &Actor,
        id: UserId,
        password: Option<Password>,
        setter: Setter,
    ) -> Result<()> {
        let hash = match password {
            Some(pw) => Some(self.store.hashing().hash(pw).await?),
            None => None,
        };
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let user = write_password(&mut *conn, actor, id, hash, setter, now).await?;
        crate::session::end_all_in(conn, actor, &user, "password_set", now).await?;
        store::commit(tx).await
    }

    /// Checks a password. A user without a password (or a malformed hash) fails after the
    /// same amount of work as a real check. Suspension is the caller's decision, not this one.
    pub async fn verify_password(&self, id: UserId, password: Password) -> Result<bool> {
        let stored = password_hash(self.store.pool(), id).await?;
        self.store.hashing().verify(stored, password).await
    }
}
