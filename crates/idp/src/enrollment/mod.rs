//! Invitations and password resets: single-use links that let a person set their password.
//!
//! This is the domain half; the pages (`/invite/{token}`, `/reset/{token}`, the reset form)
//! live in `latchkey-idp-web` and call only what is here:
//!
//! * [`Enrollment::invite`] makes an invitation (`latchkey user invite`, `POST
//!   /api/v1/users/{id}/invitations`); [`reset::ResetDesk::request`] asks for a reset link by
//!   name or e-mail address, answering the same whether or not the account exists.
//! * [`Enrollment::lookup`] tells a page what a token is worth ([`LinkLookup`]) without
//!   using it: show the form, or say the link expired.
//! * [`Enrollment::redeem`] sets the new password (the password policy applies, hashing goes
//!   through the store's bounded pool) and uses the link, in one transaction with its audit
//!   event; a reset also ends every session of the user. What comes next (enrolling a second
//!   factor, signing in) is the page's to decide.
//!
//! # Security
//! A token is 32 random bytes (base64url); only its SHA-256 is stored. A link is used by one
//! `UPDATE ... WHERE used_at IS NULL AND expires_at > now`, so of two simultaneous
//! redemptions exactly one changes a row and the other is refused, on every backend. A new
//! link for a user marks the older unused links of its kind used, so only the newest works;
//! a password set by any way (a link, an admin, the user's own change) uses up all of the
//! user's unused links ([`void_links`]). A suspended or deleted user's link does nothing.

pub mod reset;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::audit::{self, Actor, Change};
use crate::directory::users;
use crate::directory::{User, UserStatus};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::mfa::CheckedCode;
use crate::password::Password;
use crate::session::{Throttle, fresh_token, token_hash};
use crate::store::{self, Store, timestamp};

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// Set the first password of an account an admin made (`latchkey user invite`).
    Invitation,
    /// Replace a forgotten password (asked for on the sign-in page).
    Reset,
}

impl LinkKind {
    fn as_db(self) -> &'static str {
        match self {
            LinkKind::Invitation => "invitation",
            LinkKind::Reset => "reset",
        }
    }

    /// The path of a link of this kind for `token`, under the IdP's base URL.
    pub fn path(self, token: &str) -> String {
        match self {
            LinkKind::Invitation => format!("/invite/{token}"),
            LinkKind::Reset => format!("/reset/{token}"),
        }
    }
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkKind::Invitation => "invitation",
            LinkKind::Reset => "password reset",
        })
    }
}

/// Why a link cannot be used. Each has its own [`crate::ErrorCode`] (`link_unknown`,
/// `link_expired`, `link_used`), so a page can say "ask for a new one" accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// No link has this token (mistyped, never issued, or its user was deleted).
    Unknown,
    /// The link is past its expiry time.
    Expired,
    /// The link was used already, or a newer link for the same user replaced it.
    Used,
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkState::Unknown => "is not known",
            LinkState::Expired => "has expired",
            LinkState::Used => "was already used or replaced by a newer one",
        })
    }
}

/// A link just made. The token is the only copy anywhere; it is wiped from memory on drop.
pub struct IssuedLink {
    /// What the link is for.
    pub kind: LinkKind,
    /// Whom it is for.
    pub user: User,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    token: Zeroizing<String>,
}

impl IssuedLink {
    /// The token as it appears in the link.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The link's path (`/invite/{token}` or `/reset/{token}`).
    pub fn path(&self) -> String {
        self.kind.path(&self.token)
    }

    /// The full link under the IdP's `[server] base_url` (a trailing `/` is ignored).
    pub fn url(&self, base_url: &str) -> String {
        format!("{}{}", base_url.trim_end_matches('/'), self.path())
    }
}

impl std::fmt::Debug for IssuedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLink")
            .field("kind", &self.kind)
            .field("user", &self.user.username)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A link that can be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLink {
    /// What it is for.
    pub kind: LinkKind,
    /// Whom it is for (the page greets them, and enrols their factors after redeeming).
    pub user: User,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// Who made it: the admin's actor label for an invitation, `system` for a reset.
    pub created_by: String,
}

/// What [`Enrollment::lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkLookup {
    /// Usable: show the form. (Boxed: a user is large, and most lookups of a guessed
    /// token are the small variant.)
    Valid(Box<ValidLink>),
    /// Not usable, and why.
    Unusable(LinkState),
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    user_id: String,
    created_by: String,
    expires_at: String,
    used_at: Option<String>,
}

/// Tokens are base64url of 32 bytes: anything else is refused before a query.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Uses up every unused link of `user`, in the caller's transaction, when their password is
/// set by any way (an admin, the user's own change, another link): a link mailed for the
/// old state of the account must not set a password over the new one (an invitation, which
/// asks for no second factor, least of all). Returns how many it used up.
pub(crate) async fn void_links(
    conn: &mut sqlx::AnyConnection,
    user: UserId,
    now: OffsetDateTime,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE enrollment_links SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user.to_db())
    .bind(timestamp::format(now))
    .execute(conn)
    .await?
    .rows_affected())
}

/// Invitation and reset links in the store.
#[derive(Debug, Clone, Copy)]
pub struct Enrollment<'s> {
    store: &'s Store,
}

impl<'s> Enrollment<'s> {
    /// The links in `store`.
    pub fn new(store: &'s Store) -> Self {
        Enrollment { store }
    }

    /// Invites `user`: a link that lets them set their password, valid for `ttl`. An older
    /// unused invitation of theirs stops working. Audited as `user.invited` by `actor`.
    pub async fn invite(&self, actor: &Actor, user: UserId, ttl: Duration) -> Result<IssuedLink> {
        if ttl <= Duration::ZERO || ttl > Duration::days(30) {
            return Err(Error::invalid(
                "expires",
                "an invitation must live between a minute and 30 days",
            ));
        }
        self.issue(actor, LinkKind::Invitation, user, ttl, "user.invited")
            .await
    }

    /// A reset link for `user` (the [`reset::ResetDesk`] worker makes these; an admin tool
    /// may too). Audited as `user.password_reset_requested`.
    pub async fn issue_reset(
        &self,
        actor: &Actor,
        user: UserId,
        ttl: Duration,
    ) -> Result<IssuedLink> {
        self.issue(
            actor,
            LinkKind::Reset,
            user,
            ttl,
            "user.password_reset_requested",
        )
        .await
    }

    async fn issue(
        &self,
        actor: &Actor,
        kind: LinkKind,
        user: UserId,
        ttl: Duration,
        action: &'static str,
    ) -> Result<IssuedLink> {
        let token = fresh_token();
        let hash = token_hash(&token);
        let now = self.store.now();
        let expires_at = now + ttl;
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let user = users::fetch(&mut *conn, user)
            .await?
            .ok_or_else(|| Error::UnknownUser {
                user: user.to_string(),
            })?;
        let superseded = sqlx::query(
            "UPDATE enrollment_links SET used_at = $3, superseded_by = $4 \
             WHERE user_id = $1 AND kind = $2 AND used_at IS NULL",
        )
        .bind(user.id.to_db())
        .bind(kind.as_db())
        .bind(timestamp::format(now))
        .bind(&hash)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO enrollment_links (token_hash, kind, user_id, created_at, created_by, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&hash)
        .bind(kind.as_db())
        .bind(user.id.to_db())
        .bind(timestamp::format(now))
        .bind(actor.as_str())
        .bind(timestamp::format(expires_at))
        .execute(&mut *conn)
        .await?;
        audit::record(
            conn,
            actor,
            now,
            Change {
                action,
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: None,
                after: Some(serde_json::json!({
                    "expires_at": timestamp::format(expires_at),
                    "superseded": superseded,
                })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(IssuedLink {
            kind,
            user,
            expires_at,
            token,
        })
    }

    /// What a token of `kind` is worth now, without using it.
    pub async fn lookup(&self, kind: LinkKind, token: &str) -> Result<LinkLookup> {
        if !well_formed(token) {
            return Ok(LinkLookup::Unusable(LinkState::Unknown));
        }
        let row: Option<LinkRow> = sqlx::query_as(
            "SELECT user_id, created_by, expires_at, used_at FROM enrollment_links \
             WHERE token_hash = $1 AND kind = $2",
        )
        .bind(token_hash(token))
        .bind(kind.as_db())
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(LinkLookup::Unusable(LinkState::Unknown));
        };
        if row.used_at.is_some() {
            return Ok(LinkLookup::Unusable(LinkState::Used));
        }
        let expires_at = timestamp::parse("enrollment_links.expires_at", &row.expires_at)?;
        if expires_at <= self.store.now() {
            return Ok(LinkLookup::Unusable(LinkState::Expired));
        }
        // A suspended user's link does nothing (as a deleted user's): it is said to be
        // unknown, which tells its holder nothing of the account.
        let Some(user) = users::fetch(self.store.pool(), UserId::from_db(&row.user_id)?)
            .await?
            .filter(|u| u.status == UserStatus::Active)
        else {
            return Ok(LinkLookup::Unusable(LinkState::Unknown));
        };
        Ok(LinkLookup::Valid(Box::new(ValidLink {
            kind,
            user,
            expires_at,
            created_by: row.created_by,
        })))
    }

    /// Uses a link of `kind` to set `password`: the password policy applies, the hash is made
    /// in the store's bounded pool, and then one transaction uses the link (only if still
    /// unused and unexpired), sets the password, ends every session of the user when the
    /// link is a reset, and records `user.invitation_redeemed` or `user.password_reset`
    /// (with who issued the link, and `code_used`: the second factor's code the reset took,
    /// `totp` or `recovery_code`, or null when none was typed). Returns the user, for the page to go on with (second
    /// factor enrolment, or asking for one the user has, before signing them in).
    ///
    /// An unusable link is [`Error::LinkUnusable`], checked before any hashing, so a made-up
    /// token costs one indexed read.
    pub async fn redeem(&self, kind: LinkKind, token: &str, password: Password) -> Result<User> {
        self.redeem_using(kind, token, password, None)
            .await?
            .ok_or(Error::LinkUnusable {
                kind,
                state: LinkState::Used,
            })
    }

    /// [`Enrollment::redeem`] of a reset link for an account with a second factor: `code`
    /// (checked by the page, not yet used) is used up in the same transaction as the link,
    /// after the password is hashed, so a failure that is not the user's (the hash pool
    /// busy, a parallel post that used the link first) leaves them the code, and of
    /// parallel posts at most one writes a password and uses the code. `Ok(None)` (nothing
    /// written, the link still usable) when the code was used meanwhile (a sign-in with the
    /// same code): the page refuses it as a wrong code.
    ///
    /// The code's throttle slots were taken when it was checked, before any slow work. An
    /// error here (the hash pool full, the link used meanwhile, the store busy) wrote
    /// nothing and used no code: as a sign-in the hash pool turned away, the slots are
    /// given back ([`Throttle::not_checked`]), so a user retrying through a burst is not
    /// locked out by our own overload. Only a right code gets this far, so nothing a
    /// guesser sends is given back.
    pub async fn redeem_with_code(
        &self,
        token: &str,
        password: Password,
        code: CheckedCode,
    ) -> Result<Option<User>> {
        let throttle = Throttle::new(self.store);
        let redeemed = match self
            .redeem_using(LinkKind::Reset, token, password, Some(&code))
            .await
        {
            Ok(redeemed) => redeemed,
            Err(e) => {
                throttle.not_checked(code.into_attempt()).await?;
                return Err(e);
            }
        };
        if redeemed.is_some() {
            throttle.succeeded(code.into_attempt()).await?;
        }
        Ok(redeemed)
    }

    async fn redeem_using(
        &self,
        kind: LinkKind,
        token: &str,
        password: Password,
        code: Option<&CheckedCode>,
    ) -> Result<Option<User>> {
        let link = match self.lookup(kind, token).await? {
            LinkLookup::Valid(link) => link,
            LinkLookup::Unusable(state) => return Err(Error::LinkUnusable { kind, state }),
        };
        let hash = self.store.hashing().hash(password).await?;
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        // The user's row first (the one lock order), and still active: suspended or deleted
        // while the password was hashed, the link does nothing and stays as it was.
        let before = match users::fetch_for_update(&mut *conn, link.user.id).await? {
            Some(user) if user.status == UserStatus::Active => user,
            _ => {
                drop(tx);
                return Err(Error::LinkUnusable {
                    kind,
                    state: LinkState::Unknown,
                });
            }
        };
        let used: Option<String> = sqlx::query_scalar(
            "UPDATE enrollment_links SET used_at = $3 \
             WHERE token_hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 \
             RETURNING user_id",
        )
        .bind(token_hash(token))
        .bind(kind.as_db())
        .bind(timestamp::format(now))
        .fetch_optional(&mut *conn)
        .await?;
        if used.is_none() {
            drop(tx);
            let state = match self.lookup(kind, token).await? {
                LinkLookup::Unusable(state) => state,
                // Another request used it and then... cannot be valid again; say used.
                LinkLookup::Valid(_) => LinkState::Used,
            };
            return Err(Error::LinkUnusable { kind, state });
        }
        if let Some(code) = code {
            // The code is this link's user's, and still unused: else nothing is written.
            if code.user() != before.id || !code.use_in(&mut *conn, now).await? {
                drop(tx);
                return Ok(None);
            }
        }
        // The user's other links (an invitation beside a reset link) set a password no more.
        let links_voided = void_links(&mut *conn, before.id, now).await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, updated_at = $3, password_set_by_helpdesk = 0 \
             WHERE id = $1",
        )
        .bind(before.id.to_db())
        .bind(&hash)
        .bind(timestamp::format(now))
        .execute(&mut *conn)
        .await?;
        let sessions_ended = match kind {
            LinkKind::Reset => sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                .bind(before.id.to_db())
                .execute(&mut *conn)
                .await?
                .rows_affected(),
            LinkKind::Invitation => 0,
        };
        let after = User {
            has_password: true,
            updated_at: now,
            ..before.clone()
        };
        let action = match kind {
            LinkKind::Invitation => "user.invitation_redeemed",
            LinkKind::Reset => "user.password_reset",
        };
        audit::record(
            conn,
            &Actor::user(before.id),
            now,
            Change {
                action,
                target_kind: "user",
                target_id: before.id.to_string(),
                target_name: before.username.clone(),
                before: audit::snapshot(&before),
                after: Some(serde_json::json!({
                    "user": audit::snapshot(&after),
                    "link_issued_by": link.created_by,
                    "sessions_ended": sessions_ended,
                    "links_voided": links_voided,
                    "code_used": code.map(|c| c.method().as_str()),
                })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(Some(after))
    }

    /// Forgets links that expired or were used before `cutoff`; returns how many.
    pub async fn purge(&self, cutoff: OffsetDateTime) -> Result<u64> {
        let cutoff = timestamp::format(cutoff);
        let done =
            sqlx::query("DELETE FROM enrollment_links WHERE expires_at <= $1 OR used_at <= $1")
                .bind(&cutoff)
                .execute(self.store.pool())
                .await?;
        Ok(done.rows_affected())
    }
}
