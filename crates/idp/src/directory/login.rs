//! Password sign-in against the directory.
//!
//! # Security
//! Every failure costs the same Argon2 work (unknown login, no password, wrong password), so
//! timing does not reveal which logins exist. A suspended user is reported as such only after
//! the right password was given, so suspension is not disclosed to someone guessing. Hashes
//! made with older cost parameters are upgraded after a successful check.

use super::users::{self, User, UserStatus, Users};
use crate::audit::{self, Actor, Change};
use crate::error::Result;
use crate::password::{self, Password};
use crate::store;

/// The outcome of a password sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// The password is right and the user is active.
    Success(User),
    /// The password is right but the user is suspended.
    Suspended(User),
    /// Unknown login, no password set, or wrong password (deliberately not told apart).
    BadCredentials,
}

impl Users<'_> {
    /// Checks a password for a username or e-mail address (either, any case).
    pub async fn authenticate(&self, login: &str, password: Password) -> Result<Login> {
        let store = self.store();
        let config = store.password_config();
        let mut user = users::fetch_by_username(store.pool(), login).await?;
        if user.is_none() {
            user = self.find_by_email(login).await?;
        }
        let stored = match &user {
            Some(u) => users::password_hash(store.pool(), u.id).await?,
            None => None,
        };
        let ok = password::verify_blocking(config, stored.clone(), password.clone()).await;
        let (Some(user), Some(stored), true) = (user, stored, ok) else {
            return Ok(Login::BadCredentials);
        };
        if password::needs_rehash(&config, &stored) {
            let fresh = password::hash_blocking(config, password).await?;
            let mut tx = store.begin().await?;
            let conn = store::conn(&mut tx);
            // Only replace the hash that was checked: a concurrent password change wins.
            let changed = sqlx::query(
                "UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3",
            )
            .bind(user.id.to_db())
            .bind(&fresh)
            .bind(&stored)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if changed == 1 {
                let note = serde_json::json!({ "reason": "cost parameters changed" });
                audit::record(
                    conn,
                    &Actor::system(),
                    Change {
                        action: "user.password_rehash",
                        target_kind: "user",
                        target_id: user.id.to_string(),
                        target_name: user.username.clone(),
                        before: None,
                        after: Some(note),
                    },
                )
                .await?;
            }
            store::commit(tx).await?;
        }
        Ok(match user.status {
            UserStatus::Active => Login::Success(user),
            UserStatus::Suspended => Login::Suspended(user),
        })
    }
}
