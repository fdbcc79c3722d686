//! Bearer tokens for the admin API and the SCIM server, created with `latchkey token create`.
//!
//! Each token has one [`TokenScope`]: an `api` token calls `/api/v1` only, a `scim` token
//! `/scim/v2` only, so the credential handed to an HR system cannot manage applications,
//! roles or tokens, and an automation token cannot act as the directory's feed.
//!
//! A token is `lk_` + 16 hex digits of id + 64 hex digits of secret (32 random bytes).
//! Only SHA-256(secret) is stored; the id finds the row and the hashes are compared in
//! constant time, so neither a database reader nor a timing observer learns a usable
//! token. The fixed shape lets log scanners and secret scanners recognise leaked tokens.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, Change};
use crate::console::{Permission, roles};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::{self, Store, timestamp};

const PREFIX: &str = "lk_";
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;
/// How stale `last_used_at` may get before a request refreshes it: one write per token
/// per minute at most, not one per request.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// What a token may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// The admin REST API under `/api/v1` (every token made before scopes existed).
    Api,
    /// The admin REST API, reading only (GET and HEAD): for monitoring, reports and a SIEM
    /// pulling the audit log, which must not be able to change who is admin.
    ApiRead,
    /// The SCIM server under `/scim/v2` only: the directory's feed from an HR system.
    Scim,
}

impl TokenScope {
    /// Every scope, in the order help texts list them.
    pub const ALL: [TokenScope; 3] = [TokenScope::Api, TokenScope::ApiRead, TokenScope::Scim];

    /// `api`, `api_read` or `scim`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Api => "api",
            TokenScope::ApiRead => "api_read",
            TokenScope::Scim => "scim",
        }
    }

    /// Parses `api`, `api_read` (or `api-read`) or `scim`.
    pub fn parse(raw: &str) -> Result<TokenScope> {
        match raw {
            "api" => Ok(TokenScope::Api),
            "api_read" | "api-read" => Ok(TokenScope::ApiRead),
            "scim" => Ok(TokenScope::Scim),
            other => Err(Error::invalid(
                "scope",
                format!("{other:?} is not one of: api, api_read, scim"),
            )),
        }
    }

    /// Whether the token may call the admin API at all.
    pub fn reaches_api(self) -> bool {
        matches!(self, TokenScope::Api | TokenScope::ApiRead)
    }
}

/// Public facts about a token; the secret is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The token's id (the 16 hex digits after `lk_`).
    pub id: String,
    /// What the admin called it (e.g. `terraform`).
    pub name: String,
    /// What it may call.
    pub scope: TokenScope,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// When it was last presented (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked; a revoked token authenticates nothing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl TokenInfo {
    /// The audit actor for requests made with this token: labelled by its scope and id
    /// (`api:<id>`, `scim:<id>`), named by its name (what the log shows).
    pub fn actor(&self) -> Actor {
        Actor::named(
            format!("{}:{}", self.scope.as_str(), self.id),
            format!("token {}", self.name),
        )
    }
}

/// A freshly created token's full text. Shown once; wiped from memory on drop.
pub struct IssuedToken(Zeroizing<String>);

impl IssuedToken {
    /// The text to give to the API client (`Authorization: Bearer <this>`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedToken(<redacted>)")
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    scope: String,
    secret_hash: String,
    created_at: String,
    created_by: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
}

impl TokenRow {
    fn info(&self) -> Result<TokenInfo> {
        let opt =
            |what, v: &Option<String>| v.as_deref().map(|t| timestamp::parse(what, t)).transpose();
        Ok(TokenInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            scope: TokenScope::parse(&self.scope)
                .map_err(|_| Error::corrupt("api_tokens.scope", &self.scope))?,
            created_at: timestamp::parse("api_tokens.created_at", &self.created_at)?,
            created_by: self.created_by.clone(),
            last_used_at: opt("api_tokens.last_used_at", &self.last_used_at)?,
            revoked_at: opt("api_tokens.revoked_at", &self.revoked_at)?,
        })
    }
}

const COLUMNS: &str =
    "id, name, scope, secret_hash, created_at, created_by, last_used_at, revoked_at";

/// The admin API's token table.
#[derive(Debug, Clone, Copy)]
pub struct ApiTokens<'s> {
    store: &'s Store,
}

impl<'s> ApiTokens<'s> {
    /// Tokens kept in this store.
    pub fn new(store: &'s Store) -> Self {
        ApiTokens { store }
    }

    /// Creates an `api` token; the returned secret is the only copy anywhere.
    pub async fn create(&self, actor: &Actor, name: &str) -> Result<(TokenInfo, IssuedToken)> {
        self.create_scoped(actor, name, TokenScope::Api).await
    }

    /// Creates a token for `scope`; the returned secret is the only copy anywhere.
    pub async fn create_scoped(
        &self,
        actor: &Actor,
        name: &str,
        scope: TokenScope,
    ) -> Result<(TokenInfo, IssuedToken)> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "token name must be 1-100 printable characters",
            ));
        }
        let mut id = [0u8; ID_HEX / 2];
        let mut secret = Zeroizing::new([0u8; SECRET_HEX / 2]);
        rand::fill(&mut id);
        rand::fill(&mut secret[..]);
        let id = hex::encode(id);
        let text = Zeroizing::new(format!("{PREFIX}{id}{}", hex::encode(&secret[..])));
        let hash = hex::encode(Sha256::digest(&secret[..]));
        let now = self.store.now();

        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        sqlx::query(
            "INSERT INTO api_tokens (id, name, scope, secret_hash, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(scope.as_str())
        .bind(&hash)
        .bind(timestamp::format(now))
        .bind(actor.as_str())
        .execute(&mut *conn)
        .await?;
        let info = TokenInfo {
            id: id.clone(),
            name: name.to_owned(),
            scope,
            created_at: now,
            created_by: actor.as_str().to_owned(),
            last_used_at: None,
            revoked_at: None,
        };
        audit::record(
            conn,
            actor,
            now,
            token_change("token.create", &info, None, audit::snapshot(&info)),
        )
        .await?;
        store::commit(tx).await?;
        Ok((info, IssuedToken(text)))
    }

    /// All tokens, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created_at, id"
        ));
        let rows: Vec<TokenRow> = sqlx::query_as(sql).fetch_all(self.store.pool()).await?;
        rows.iter().map(TokenRow::info).collect()
    }

    /// Revokes a live token named by id or by name (a name must match exactly one live
    /// token). Revoking takes effect on the next request on every node.
    pub async fn revoke(&self, actor: &Actor, reference: &str) -> Result<TokenInfo> {
        let unknown = || Error::UnknownToken {
            token: reference.to_owned(),
        };
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE revoked_at IS NULL AND (id = $1 OR name = $1)"
        ));
        let rows: Vec<TokenRow> = sqlx::query_as(sql)
            .bind(reference)
            .fetch_all(&mut *conn)
            .await?;
        let row = match <[TokenRow; 1]>::try_from(rows) {
            Ok([row]) => row,
            Err(rows) if rows.is_empty() => return Err(unknown()),
            Err(_) => {
                return Err(Error::invalid(
                    "token",
                    format!("{reference:?} names several tokens; revoke by id"),
                ));
            }
        };
        let before = row.info()?;
        let now = self.store.now();
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(&row.id)
            .bind(timestamp::format(now))
            .execute(&mut *conn)
            .await?;
        let after = TokenInfo {
            revoked_at: Some(now),
            ..before.clone()
        };
        audit::record(
            conn,
            actor,
            now,
            token_change(
                "token.revoke",
                &after,
                audit::snapshot(&before),
                audit::snapshot(&after),
            ),
        )
        .await?;
        store::commit(tx).await?;
        Ok(after)
    }

    /// The live token this text proves, or `None` for anything else (malformed,
    /// unknown, wrong secret, revoked); the caller cannot tell which, by design.
    pub async fn verify(&self, presented: &str) -> Result<Option<TokenInfo>> {
        let Some((id, secret)) = split(presented) else {
            return Ok(None);
        };
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"));
        let row: Option<TokenRow> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let presented_hash = Sha256::digest(&secret[..]);
        let stored_hash = hex::decode(&row.secret_hash)
            .map_err(|e| Error::corrupt("api_tokens.secret_hash", e))?;
        if !bool::from(presented_hash.as_slice().ct_eq(&stored_hash)) || row.revoked_at.is_some() {
            return Ok(None);
        }
        let mut info = row.info()?;
        if !self.maker_may_still(&info).await? {
            tracing::warn!(token = %info.id, created_by = %info.created_by,
                "token refused: the person who made it may no longer make tokens");
            return Ok(None);
        }
        let now = self.store.now();
        if info
            .last_used_at
            .is_none_or(|t| now - t >= LAST_USED_GRANULARITY)
        {
            sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(&info.id)
                .bind(timestamp::format(now))
                .execute(self.store.pool())
                .await?;
            info.last_used_at = Some(now);
        }
        Ok(Some(info))
    }
}

impl ApiTokens<'_> {
    /// Whether the token's maker still stands behind it. A token made in the console by a
    /// person (`user:<id>`) is their delegation: it works only while they may make tokens
    /// (an active user whose roles grant [`Permission::WriteTokens`]), so a demoted,
    /// suspended or deleted admin keeps no admin API (or SCIM feed) through one made before.
    /// An operator's (the CLI's) token answers to nobody's role.
    async fn maker_may_still(&self, info: &TokenInfo) -> Result<bool> {
        let Some(person) = info.created_by.strip_prefix("user:") else {
            return Ok(true);
        };
        let Ok(id) = person.parse::<UserId>() else {
            return Ok(false);
        };
        let Some(user) = crate::directory::users::fetch(self.store.pool(), id).await? else {
            return Ok(false);
        };
        Ok(roles::of_user(self.store.pool(), &user)
            .await?
            .allows(Permission::WriteTokens))
    }
}

/// Splits `lk_<id><secret>` into the id and the decoded secret.
fn split(presented: &str) -> Option<(&str, Zeroizing<Vec<u8>>)> {
    let rest = presented.strip_prefix(PREFIX)?;
    if rest.len() != ID_HEX + SECRET_HEX
        || !rest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let (id, secret) = rest.split_at(ID_HEX);
    Some((id, Zeroizing::new(hex::decode(secret).ok()?)))
}

fn token_change(
    action: &'static str,
    info: &TokenInfo,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        action,
        target_kind: "token",
        target_id: info.id.clone(),
        target_name: info.name.clone(),
        before,
        after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_shape_splits() {
        let good = format!("lk_{}{}", "0123456789abcdef", "ab".repeat(32));
        let (id, secret) = split(&good).unwrap();
        assert_eq!(id, "0123456789abcdef");
        assert_eq!(secret.len(), 32);
        for bad in [
            String::new(),
            "lk_".into(),
            good.to_uppercase(),
            good.replacen("lk_", "xx_", 1),
            format!("{good}0"),
            good[..good.len() - 1].to_string(),
            good.replacen('a', "g", 1),
        ] {
            assert!(split(&bad).is_none(), "{bad}");
        }
    }
}
