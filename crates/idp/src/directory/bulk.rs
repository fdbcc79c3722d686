//! Loading many users and memberships at once: multi-row statements in one transaction.
//!
//! For seeding a large directory (a migration from another system, `latchkey bench list`'s
//! 100,000 users), where a statement and a commit per row would take minutes. The rows and
//! their audit lines are exactly what [`Users::create`] and [`Groups::add_member`] write
//! (the same row builders, [`users::created`] and [`groups::member_change`]); only the
//! per-row checks that a unique key or primary key already makes are left to the database:
//! a taken username or e-mail address, or a membership that exists, fails the whole load
//! and writes nothing. They queue no SCIM deliveries (the outbox of `provisioning`): after
//! seeding a directory whose applications take SCIM, run `latchkey app sync` for each.

use std::collections::HashSet;

use super::groups::{self, Group, Groups};
use super::users::{self, NewUser, User, Users};
use crate::audit::{self, Actor, Line};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::{self, timestamp};

/// Users per `INSERT`: 13 parameters each, under every backend's limit.
const USERS_PER_STATEMENT: usize = 500;
/// Memberships per `INSERT`: 4 parameters each.
const MEMBERS_PER_STATEMENT: usize = 1_000;

/// `(${first}, ..., ${first + count - 1})`.
fn placeholders(first: usize, count: usize) -> String {
    let n: Vec<String> = (first..first + count).map(|k| format!("${k}")).collect();
    format!("({})", n.join(", "))
}

impl Users<'_> {
    /// Creates every user of `news` in one transaction, each recorded as `user.create`
    /// exactly as [`Users::create`] records it; all or nothing.
    ///
    /// Every user is validated before the store is touched, and a name or address given
    /// twice in `news` is refused by name. One already in the store is refused by the
    /// database's unique key (a database error; nothing is written).
    pub async fn create_many(&self, actor: &Actor, news: Vec<NewUser>) -> Result<Vec<User>> {
        let mut rows = Vec::with_capacity(news.len());
        let (mut names, mut emails) = (HashSet::new(), HashSet::new());
        for new in news {
            let (fields, password) = new.into_fields()?;
            if !names.insert(store::fold(&fields.username)) {
                return Err(Error::DuplicateUsername {
                    username: fields.username,
                });
            }
            if !emails.insert(store::fold(&fields.email)) {
                return Err(Error::DuplicateEmail {
                    email: fields.email,
                });
            }
            let hash = match password {
                Some(pw) => Some(self.store().hashing().hash(pw).await?),
                None => None,
            };
            rows.push((UserId::new_random(), fields, hash));
        }
        let now = self.store().now();
        let at = timestamp::format(now);
        let mut tx = self.store().begin().await?;
        let conn = store::conn(&mut tx);
        for chunk in rows.chunks(USERS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| placeholders(i * 13 + 1, 13))
                .collect();
            // Only placeholders are formatted in; every value is bound.
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO users (id, username, username_key, email, email_key, given_name, \
                 family_name, display_name, attributes, status, password_hash, created_at, \
                 updated_at) VALUES {}",
                values.join(", ")
            ));
            let mut query = sqlx::query(sql);
            for (id, fields, hash) in chunk {
                query = query
                    .bind(id.to_db())
                    .bind(fields.username.clone())
                    .bind(store::fold(&fields.username))
                    .bind(fields.email.clone())
                    .bind(store::fold(&fields.email))
                    .bind(fields.given_name.clone())
                    .bind(fields.family_name.clone())
                    .bind(fields.display_name.clone())
                    .bind(users::attributes_json(fields)?)
                    .bind(fields.status.as_str())
                    .bind(hash.clone())
                    .bind(at.clone())
                    .bind(at.clone());
            }
            query.execute(&mut *conn).await?;
        }
        let words: Vec<_> = rows
            .iter()
            .map(|(id, fields, _)| (*id, store::fold(&fields.username), super::words::of(fields)))
            .collect();
        super::words::insert_many(
            conn,
            words
                .iter()
                .flat_map(|(id, key, ws)| ws.iter().map(|w| (*id, key.as_str(), w.as_str()))),
        )
        .await?;
        let mut created = Vec::with_capacity(rows.len());
        let mut lines = Vec::with_capacity(rows.len());
        for (id, fields, hash) in &rows {
            let (user, change) = users::created(*id, fields, hash.is_some(), now);
            lines.push(Line::new(actor, now, change));
            created.push(user);
        }
        audit::insert_lines(conn, &lines).await?;
        store::commit(tx).await?;
        Ok(created)
    }
}

impl Groups<'_> {
    /// Makes every user of `members` a member of `group` in one transaction, each recorded
    /// as `group.member_add` exactly as [`Groups::add_member`] records it; all or nothing (a
    /// membership that exists already fails the whole load).
    pub async fn add_members(&self, actor: &Actor, group: &Group, members: &[User]) -> Result<()> {
        let now = self.store().now();
        let at = timestamp::format(now);
        let mut tx = self.store().begin().await?;
        let conn = store::conn(&mut tx);
        // The group before its membership rows, as every writer takes them: an insert holds
        // the group's key share (its foreign key) and its trigger then waits for the group's
        // row (0630), so a writer holding that row and renaming the group deadlocked with it.
        if !groups::lock_id(&mut *conn, group.id).await? {
            return Err(Error::UnknownGroup {
                name: group.name.clone(),
            });
        }
        for chunk in members.chunks(MEMBERS_PER_STATEMENT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| placeholders(i * 4 + 1, 4))
                .collect();
            // Only placeholders are formatted in; every value is bound.
            let sql = sqlx::AssertSqlSafe(format!(
                "INSERT INTO group_members (group_id, user_id, username_key, added_at) VALUES {}",
                values.join(", ")
            ));
            let mut query = sqlx::query(sql);
            for user in chunk {
                query = query
                    .bind(group.id.to_db())
                    .bind(user.id.to_db())
                    .bind(store::fold(&user.username))
                    .bind(at.clone());
            }
            query.execute(&mut *conn).await?;
        }
        let lines: Vec<Line> = members
            .iter()
            .map(|user| {
                Line::new(
                    actor,
                    now,
                    groups::member_change("group.member_add", group, user),
                )
            })
            .collect();
        audit::insert_lines(&mut *conn, &lines).await?;
        // As for one member added: a group carrying a console role grants it.
        let carries = crate::console::roles::of_group(&mut *conn, group.id).await?;
        let ids: Vec<_> = members.iter().map(|u| u.id).collect();
        crate::console::roles::void_credentials_of(conn, actor, now, &ids, &carries).await?;
        store::commit(tx).await
    }
}
