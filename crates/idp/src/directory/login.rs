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
        let user = self.find_login(login).await?;
        self.check_password(user, password).await
    }

    /// The user a sign-in name means: a username, else an e-mail address (any case). Only
    /// a lookup, cheap, so a caller can decide on throttling before the costly check.
    pub async fn find_login(&self, login: &str) -> Result<Option<User>> {
        if login.is_empty() {
            return Ok(None);
        }
        if let Some(user) = users::fetch_by_username(self.store().pool(), login).await? {
            return Ok(Some(user));
        }
        if login.contains('@') {
            return self.find_by_email(login).await;
        }
        Ok(None)
    }

    /// Checks `password` for a user found by [`Users::find_login`] (`None`: unknown name,
    /// checked against nothing at the same cost), through the store's bounded hash pool;
    /// [`Error::Busy`](crate::Error::Busy) when the pool is full.
    pub async fn check_password(&self, user: Option<User>, password: Password) -> Result<Login> {
        let store = self.store();
        let config = store.password_config();
        let stored = match &user {
            Some(u) => users::password_hash(store.pool(), u.id).await?,
            None => None,
        };
        let ok = store
            .hashing()
            .verify(stored.clone(), password.clone())
            .await?;
        let (Some(user), Some(stored), true) = (user, stored, ok) else {
            return Ok(Login::BadCredentials);
        };
        if password::needs_rehash(&config, &stored) {
            // The password was right: a full hash pool only postpones the upgrade to a
            // later sign-in, it does not fail this one.
            match store.hashing().hash(password).await {
                Ok(fresh) => rehash(store, &user, &stored, &fresh).await?,
                Err(crate::Error::Busy { .. }) => {
                    tracing::debug!(user = %user.username, "password rehash postponed: pool busy");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(match user.status {
            UserStatus::Active => Login::Success(user),
            UserStatus::Suspended => Login::Suspended(user),
        })
    }
}

/// Replaces the hash that was checked with one made with the configured cost.
async fn rehash(store: &store::Store, user: &User, stored: &str, fresh: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    let conn = store::conn(&mut tx);
    // Only replace the hash that was checked: a concurrent password change wins.
    let changed =
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3")
            .bind(user.id.to_db())
            .bind(fresh)
            .bind(stored)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if changed == 1 {
        let note = serde_json::json!({ "reason": "cost parameters changed" });
        audit::record(
            conn,
            &Actor::system(),
            store.now(),
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
    store::commit(tx).await
}
