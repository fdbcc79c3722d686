//! Persistent pairwise NameIDs.
//!
//! Each (user, application) pair gets a random identifier the first time it is needed. It is
//! stored, not derived, so renaming a user or changing their e-mail never changes what an SP
//! knows them as, and two SPs cannot correlate a user by comparing identifiers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::error::{Error, Result};
use crate::ids::{AppId, UserId};
use crate::store::{Store, timestamp};

/// Random bytes per identifier (160 bits: collisions are not a practical concern, and the
/// unique index turns one into a retry rather than a shared identity).
const ID_BYTES: usize = 20;

fn fresh() -> String {
    let mut bytes = [0u8; ID_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the pair's identifier, creating it on first use. Safe under concurrency: racing
/// callers (threads or IdP nodes) insert with `ON CONFLICT DO NOTHING` and all read back the
/// single row that won.
pub(crate) async fn get_or_create(store: &Store, user: UserId, app: AppId) -> Result<String> {
    if let Some(existing) = lookup(store, user, app).await? {
        return Ok(existing);
    }
    for _ in 0..3 {
        let inserted = sqlx::query(
            "INSERT INTO pairwise_ids (app_id, user_id, name_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(app.to_db())
        .bind(user.to_db())
        .bind(fresh())
        .bind(timestamp::format(store.now()))
        .execute(store.pool())
        .await;
        match inserted {
            Ok(_) => {}
            // A foreign-key failure means the user or the app does not exist.
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(missing(store, user, app).await);
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(existing) = lookup(store, user, app).await? {
            return Ok(existing);
        }
        // Nothing stored and nothing inserted: the random value collided with another
        // user's for this app (astronomically unlikely). Draw again.
    }
    Err(Error::corrupt(
        "pairwise_ids",
        "could not allocate a unique identifier",
    ))
}

async fn lookup(store: &Store, user: UserId, app: AppId) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT name_id FROM pairwise_ids WHERE app_id = $1 AND user_id = $2")
            .bind(app.to_db())
            .bind(user.to_db())
            .fetch_optional(store.pool())
            .await?,
    )
}

/// Which side of a failed pair is missing.
async fn missing(store: &Store, user: UserId, app: AppId) -> Error {
    match store.users().get(user).await {
        Err(e) => e,
        Ok(_) => Error::UnknownApplication {
            app: app.to_string(),
        },
    }
}

/// The user a pairwise identifier stands for at an application (for NameID-based requests
/// such as logout).
pub(crate) async fn resolve(store: &Store, app: AppId, name_id: &str) -> Result<Option<UserId>> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM pairwise_ids WHERE app_id = $1 AND name_id = $2")
            .bind(app.to_db())
            .bind(name_id)
            .fetch_optional(store.pool())
            .await?;
    id.map(|id| UserId::from_db(&id)).transpose()
}
