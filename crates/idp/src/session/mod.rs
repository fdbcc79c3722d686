//! Browser sessions at the IdP, kept in the store so every node sees the same ones.
//!
//! The browser holds a random 32-byte token; the store holds only its SHA-256, so a copy of
//! the database (a backup, a read replica) does not let anyone resume a session. A session
//! ends when it has been idle too long, at its absolute expiry, at logout, and as soon as its
//! user is found suspended or deleted: [`Sessions::resume`] checks the user every time, so a
//! suspension takes effect at the user's next request without any coordination.
//!
//! Time is a parameter of every method, so the expiry rules are tested without waiting.

mod device;
mod parked;
mod throttle;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

pub use device::DeviceKeys;
pub use parked::{PARK_TTL, ParkCaps, ParkOwner, Parkable, ParkedRequests, WIDE_OWNER_FACTOR};
pub use throttle::{
    Admission, Attempt, MAX_BEARER_WINDOW, OnSuccess, Slot, Throttle, ThrottlePolicy, network_of,
};

use crate::directory::{User, UserRow, UserStatus};
use crate::error::Result;
use crate::ids::{AppId, UserId};
use crate::mfa::{AuthMethod, Methods};
use crate::store::{Store, timestamp};

/// Random bytes in a session token or parked-request key.
const TOKEN_BYTES: usize = 32;

/// A fresh random token, base64url without padding (43 characters).
pub fn fresh_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
    rand::rng().fill_bytes(bytes.as_mut());
    Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

/// What is stored in place of a token.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A session token as the browser holds it. Never logged; wiped on drop.
#[derive(Clone)]
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// The cookie value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// A live session and its (active) user.
#[derive(Debug, Clone)]
pub struct Session {
    /// The signed-in user, as loaded at this request.
    pub user: User,
    /// The opaque SessionIndex put in assertions (not the token: SPs see it).
    pub session_index: String,
    /// When the user last authenticated: the password, or the latest step-up (the
    /// assertion's AuthnInstant).
    pub authn_at: OffsetDateTime,
    /// What the authentication used (password, and any second factor added by step-up).
    pub methods: Methods,
    /// When the session began.
    pub created_at: OffsetDateTime,
    /// The absolute expiry.
    pub expires_at: OffsetDateTime,
    token_hash: String,
}

impl Session {
    /// A session stored nowhere, begun and authenticated at `now` with a password: what
    /// the console's assertion preview describes. No row has its (empty) token hash.
    pub(crate) fn detached(
        user: User,
        session_index: &str,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Session {
        Session {
            user,
            session_index: session_index.to_owned(),
            authn_at: now,
            methods: Methods::password(),
            created_at: now,
            expires_at: now + lifetime,
            token_hash: String::new(),
        }
    }

    /// The key of this session's rows (never the token itself).
    pub(crate) fn token_hash(&self) -> &str {
        &self.token_hash
    }
}

/// The browser a sign-in came from, as the sign-in saw it: recorded with the session so its
/// owner can tell their sessions apart on `/account`. Not evidence of anything (a client
/// chooses its User-Agent), so nothing is decided by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    address: Option<String>,
    user_agent: Option<String>,
}

/// The longest User-Agent kept; the header itself is bounded only by the server's header
/// limit.
pub const MAX_USER_AGENT_CHARS: usize = 256;
/// The longest address kept (an IPv6 address with a zone is under 64).
const MAX_ADDRESS_CHARS: usize = 64;

impl Client {
    /// A client at `address` (the sign-in's client address) that sent
    /// `user_agent`; both are cut to a bounded length, empty ones are dropped.
    pub fn new(address: &str, user_agent: Option<&str>) -> Client {
        let cut = |s: &str, n: usize| -> Option<String> {
            let s: String = s
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(n)
                .collect();
            (!s.is_empty()).then_some(s)
        };
        Client {
            address: cut(address, MAX_ADDRESS_CHARS),
            user_agent: user_agent.and_then(|ua| cut(ua, MAX_USER_AGENT_CHARS)),
        }
    }

    /// The client address, when known.
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or("unknown")
    }
}

/// A session as its owner sees it on `/account` (never the token or its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The SessionIndex: how the owner names it to end it.
    pub session_index: String,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// Its last request (to within a minute: see the touch interval).
    pub last_seen_at: OffsetDateTime,
    /// Its last authentication (the password, or the latest step-up).
    pub authn_at: OffsetDateTime,
    /// What the authentication used.
    pub methods: Methods,
    /// The sign-in's client address, if recorded.
    pub address: Option<String>,
    /// The sign-in's User-Agent, if recorded.
    pub user_agent: Option<String>,
}

/// An application this session has received an assertion for (single logout needs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionApp {
    /// The application.
    pub app: AppId,
    /// The NameID it was told.
    pub name_id: String,
    /// That NameID's format URI.
    pub name_id_format: String,
}

/// Access to the sessions table.
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'s> {
    store: &'s Store,
}

/// A session joined with its user: one round trip per request instead of two.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_index: String,
    authn_at: String,
    authn_methods: String,
    session_created_at: String,
    last_seen_at: String,
    expires_at: String,
    #[sqlx(flatten)]
    user: UserRow,
}

/// The columns of a [`SessionRow`], from `web_sessions s JOIN users u`: the sign-in's
/// statement ([`crate::sso::grant::resume`]) reads the same row as [`Sessions::resume`].
macro_rules! session_columns {
    () => {
        "s.session_index, s.authn_at, s.authn_methods, s.created_at AS session_created_at, \
         s.last_seen_at, s.expires_at, u.id, u.username, u.email, u.given_name, \
         u.family_name, u.display_name, u.attributes, u.status, u.password_hash, \
         u.created_at, u.updated_at"
    };
}
pub(crate) use session_columns;

/// The stored hash of a cookie's token, or `None` for a token no session can have.
pub(crate) fn cookie_hash(token: &str) -> Option<String> {
    (!token.is_empty() && token.len() <= 128).then(|| token_hash(token))
}

/// Writes to `last_seen_at` are skipped when the last one is this recent, so a busy page
/// does not turn every request into a database write.
const TOUCH_INTERVAL: Duration = Duration::seconds(30);

impl<'s> Sessions<'s> {
    /// Sessions in `store`.
    pub fn new(store: &'s Store) -> Self {
        Sessions { store }
    }

    /// Starts a session for a user who just entered their password at `now`.
    pub async fn create(
        &self,
        user: &User,
        now: OffsetDateTime,
        absolute: Duration,
    ) -> Result<(SessionToken, Session)> {
        self.create_with(user, Methods::password(), &Client::default(), now, absolute)
            .await
    }

    /// Starts a session for a user who authenticated at `now` with `methods` (a passkey
    /// sign-in has no password; a sign-in whose second step was done before the session
    /// began has both), from `client`.
    pub async fn create_with(
        &self,
        user: &User,
        methods: Methods,
        client: &Client,
        now: OffsetDateTime,
        absolute: Duration,
    ) -> Result<(SessionToken, Session)> {
        let token = SessionToken(fresh_token());
        let hash = token_hash(token.expose());
        let session_index = format!("_s{}", token_hash(&fresh_token()));
        let expires_at = now + absolute;
        sqlx::query(
            "INSERT INTO web_sessions \
             (token_hash, user_id, session_index, authn_at, created_at, last_seen_at, expires_at, \
             authn_methods, client_address, user_agent) \
             VALUES ($1, $2, $3, $4, $4, $4, $5, $6, $7, $8)",
        )
        .bind(&hash)
        .bind(user.id.to_db())
        .bind(&session_index)
        .bind(timestamp::format(now))
        .bind(timestamp::format(expires_at))
        .bind(methods.to_db())
        .bind(client.address.clone())
        .bind(client.user_agent.clone())
        .execute(self.store.pool())
        .await?;
        Ok((
            token,
            Session {
                user: user.clone(),
                session_index,
                authn_at: now,
                methods,
                created_at: now,
                expires_at,
                token_hash: hash,
            },
        ))
    }

    /// The session a cookie names, if it is still valid at `now`. An expired or idle session,
    /// or one whose user is no longer active, is deleted and `None` is returned; a suspended
    /// user loses all their sessions here.
    pub async fn resume(
        &self,
        token: &str,
        now: OffsetDateTime,
        idle: Duration,
    ) -> Result<Option<Session>> {
        let Some(hash) = cookie_hash(token) else {
            return Ok(None);
        };
        // A deleted user's sessions go with them (ON DELETE CASCADE), so the inner join
        // loses nothing.
        let row: Option<SessionRow> = sqlx::query_as(concat!(
            "SELECT ",
            session_columns!(),
            " FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1"
        ))
        .bind(&hash)
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        self.admit(row, hash, now, idle).await
    }

    /// Decides on a session row read for the token whose hash is `hash` (see
    /// [`Sessions::resume`]): ends it and answers `None` when it is over or its user is not
    /// active, and notes the request on a live one.
    pub(crate) async fn admit(
        &self,
        row: SessionRow,
        hash: String,
        now: OffsetDateTime,
        idle: Duration,
    ) -> Result<Option<Session>> {
        let last_seen = timestamp::parse("web_sessions.last_seen_at", &row.last_seen_at)?;
        let expires_at = timestamp::parse("web_sessions.expires_at", &row.expires_at)?;
        if now >= expires_at || now - last_seen >= idle {
            self.delete(&hash).await?;
            return Ok(None);
        }
        let user = row.user.into_user()?;
        if user.status != UserStatus::Active {
            self.end_all_for_user(user.id).await?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_INTERVAL {
            sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1")
                .bind(&hash)
                .bind(timestamp::format(now))
                .execute(self.store.pool())
                .await?;
        }
        Ok(Some(Session {
            user,
            session_index: row.session_index,
            authn_at: timestamp::parse("web_sessions.authn_at", &row.authn_at)?,
            methods: Methods::from_db(&row.authn_methods)?,
            created_at: timestamp::parse("web_sessions.created_at", &row.session_created_at)?,
            expires_at,
            token_hash: hash,
        }))
    }

    /// Upgrades a live session after a second factor (or a re-prompt for one, ForceAuthn):
    /// `method` is added to its methods and its AuthnInstant becomes `now`. The session
    /// gets a new token, as at sign-in, so a token seen or planted before the second factor
    /// is worth nothing after it: the row moves to the new token's hash with its
    /// applications, in one transaction. Same SessionIndex, so the applications it signed
    /// in to keep their single-logout link. `None` when the session is gone meanwhile (it
    /// ended, or a concurrent step-up of the same session moved it first): the caller
    /// treats the browser as signed out.
    pub async fn step_up(
        &self,
        session: &Session,
        method: AuthMethod,
        now: OffsetDateTime,
    ) -> Result<Option<(SessionToken, Session)>> {
        let mut methods = session.methods.clone();
        methods.add(method);
        let token = SessionToken(fresh_token());
        let hash = token_hash(token.expose());
        let mut tx = self.store.begin().await?;
        let conn = crate::store::conn(&mut tx);
        let moved = sqlx::query(
            "INSERT INTO web_sessions \
             (token_hash, user_id, session_index, authn_at, created_at, last_seen_at, expires_at, \
             authn_methods, client_address, user_agent) \
             SELECT $2, user_id, session_index, $3, created_at, $3, expires_at, $4, \
             client_address, user_agent FROM web_sessions WHERE token_hash = $1",
        )
        .bind(&session.token_hash)
        .bind(&hash)
        .bind(timestamp::format(now))
        .bind(methods.to_db())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(None);
        }
        sqlx::query("UPDATE web_session_apps SET token_hash = $2 WHERE token_hash = $1")
            .bind(&session.token_hash)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
        let ended = sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(&session.token_hash)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if ended == 0 {
            // Moved by a concurrent step-up between our copy and now: keep neither copy.
            return Ok(None);
        }
        crate::store::commit(tx).await?;
        Ok(Some((
            token,
            Session {
                methods,
                authn_at: now,
                token_hash: hash,
                ..session.clone()
            },
        )))
    }

    /// Ends one session (logout). Unknown tokens are ignored.
    pub async fn end(&self, token: &str) -> Result<()> {
        self.delete(&token_hash(token)).await
    }

    /// Ends every session of a user (suspension, password change); returns how many.
    pub async fn end_all_for_user(&self, user: UserId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
            .bind(user.to_db())
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends every session of a user on an admin's request, with its audit event in the same
    /// transaction (`user.sessions_end`, how many were ended); returns how many.
    pub async fn end_all_audited(
        &self,
        actor: &crate::Actor,
        user: &crate::directory::User,
    ) -> Result<u64> {
        let mut tx = self.store.begin().await?;
        let done = end_all_in(
            crate::store::conn(&mut tx),
            actor,
            user,
            "end_sessions",
            self.store.now(),
        )
        .await?;
        crate::store::commit(tx).await?;
        Ok(done)
    }

    /// A user's live sessions (not past their absolute expiry; an idle one shows until its
    /// next use ends it), the most recently used first.
    pub async fn of_user(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<SessionInfo>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT session_index, created_at, last_seen_at, authn_at, authn_methods, \
             client_address, user_agent FROM web_sessions \
             WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, created_at DESC",
        )
        .bind(user.to_db())
        .bind(timestamp::format(now))
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(
                |(session_index, created, seen, authn, methods, address, user_agent)| {
                    Ok(SessionInfo {
                        session_index,
                        created_at: timestamp::parse("web_sessions.created_at", &created)?,
                        last_seen_at: timestamp::parse("web_sessions.last_seen_at", &seen)?,
                        authn_at: timestamp::parse("web_sessions.authn_at", &authn)?,
                        methods: Methods::from_db(&methods)?,
                        address,
                        user_agent,
                    })
                },
            )
            .collect()
    }

    /// Ends the session of `user` with this SessionIndex, on its owner's request, with its
    /// audit event (`session.end`) in the same transaction. `false` (and nothing written)
    /// when the user has no such session: the index may be someone else's.
    pub async fn end_one_audited(
        &self,
        actor: &crate::Actor,
        user: &User,
        session_index: &str,
    ) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let conn = crate::store::conn(&mut tx);
        let done =
            sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND session_index = $2")
                .bind(user.id.to_db())
                .bind(session_index)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        crate::audit::record(
            conn,
            actor,
            self.store.now(),
            crate::audit::Change {
                action: "session.end",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: Some(serde_json::json!({ "session_index": session_index })),
                after: None,
            },
        )
        .await?;
        crate::store::commit(tx).await?;
        Ok(true)
    }

    /// Sessions whose SessionIndex is one of `indexes` (or all of the user's when empty)
    /// are ended; used by single logout. Returns how many.
    pub async fn end_by_index(&self, user: UserId, indexes: &[String]) -> Result<u64> {
        if indexes.is_empty() {
            return self.end_all_for_user(user).await;
        }
        let mut ended = 0;
        for index in indexes {
            let done =
                sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND session_index = $2")
                    .bind(user.to_db())
                    .bind(index)
                    .execute(self.store.pool())
                    .await?;
            ended += done.rows_affected();
        }
        Ok(ended)
    }

    /// Remembers that `app` received an assertion about this session's user.
    pub async fn record_app(
        &self,
        session: &Session,
        entry: &SessionApp,
        now: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_session_apps (token_hash, app_id, name_id, name_id_format, issued_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash, app_id) DO UPDATE SET \
             name_id = excluded.name_id, name_id_format = excluded.name_id_format, \
             issued_at = excluded.issued_at",
        )
        .bind(&session.token_hash)
        .bind(entry.app.to_db())
        .bind(&entry.name_id)
        .bind(&entry.name_id_format)
        .bind(timestamp::format(now))
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// The applications this session has signed in to.
    pub async fn apps(&self, session: &Session) -> Result<Vec<SessionApp>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT app_id, name_id, name_id_format FROM web_session_apps \
             WHERE token_hash = $1 ORDER BY issued_at",
        )
        .bind(&session.token_hash)
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(|(app, name_id, name_id_format)| {
                Ok(SessionApp {
                    app: AppId::from_db(&app)?,
                    name_id,
                    name_id_format,
                })
            })
            .collect()
    }

    /// Deletes sessions past their absolute expiry (a periodic job; `resume` handles the rest).
    pub async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(timestamp::format(now))
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete(&self, hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1")
            .bind(hash)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }
}

/// Which of a user's sessions a change to how they sign in (a password, a second factor)
/// leaves alive. One rule, for every such change: made by the user from one of their
/// sessions, that session stays (it just proved the password or a factor) and the others
/// end; made by an admin (console, API, CLI), every session ends (what was replaced or
/// removed may be lost or stolen, and whoever holds it may be signed in with it).
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// The owner's own change: this session stays, the user's others end.
    Current(&'a Session),
    /// An admin's change (or one made from no session): every session ends.
    Nothing,
}

/// Ends `user`'s sessions as `keep` says after a change to how they sign in, and records
/// `user.sessions_end` (how many, `reason`, the `address` the change came from if known),
/// in the caller's transaction: the one write behind a password changed by its owner, a
/// second factor removed or replaced, and a suspension (`reason` `suspend`, whoever
/// suspends: [`crate::directory::users::rewrite`]). Returns how many ended.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn end_for_credential_change(
    conn: &mut sqlx::AnyConnection,
    actor: &crate::Actor,
    user: UserId,
    username: &str,
    keep: Keep<'_>,
    reason: &'static str,
    address: Option<&str>,
    now: OffsetDateTime,
) -> Result<u64> {
    let done = match keep {
        Keep::Current(session) => {
            sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user.to_db())
                .bind(session.token_hash())
                .execute(&mut *conn)
                .await?
        }
        Keep::Nothing => {
            sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                .bind(user.to_db())
                .execute(&mut *conn)
                .await?
        }
    }
    .rows_affected();
    let mut after = serde_json::json!({ "sessions_ended": done, "reason": reason });
    if let (Some(address), Some(map)) = (address, after.as_object_mut()) {
        map.insert("address".into(), address.into());
    }
    crate::audit::record(
        conn,
        actor,
        now,
        crate::audit::Change {
            action: "user.sessions_end",
            target_kind: "user",
            target_id: user.to_string(),
            target_name: username.to_owned(),
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(done)
}

/// Ends every session of `user` and records `user.sessions_end` (how many, `reason`), in the
/// caller's transaction: the one write behind an admin's "end sessions" (`end_sessions`) and
/// an admin's new password (`password_set`); [`end_for_credential_change`] with nothing kept.
pub(crate) async fn end_all_in(
    conn: &mut sqlx::AnyConnection,
    actor: &crate::Actor,
    user: &crate::directory::User,
    reason: &'static str,
    now: OffsetDateTime,
) -> Result<u64> {
    end_for_credential_change(
        conn,
        actor,
        user.id,
        &user.username,
        Keep::Nothing,
        reason,
        None,
        now,
    )
    .await
}
