//! A user's enrolled credentials: several each, named by the user, with their last use.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{AuthenticationResult, Passkey};

use super::WebauthnError;
use crate::audit::{self, Actor, Change};
use crate::ids::UserId;
use crate::store::{self, Store, timestamp};

/// Credentials one user may enrol: more than anyone carries, few enough that the allow-list
/// of a second-factor sign-in stays small.
pub const MAX_CREDENTIALS: i64 = 20;
/// The longest credential name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Our ID of an enrolled credential (not the authenticator's credential ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialId(pub Uuid);

impl std::fmt::Display for CredentialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An enrolled credential as shown to its owner and to admins: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// Our ID, for rename and remove.
    pub id: CredentialId,
    /// Whose it is.
    pub user: UserId,
    /// The name the user gave it ("YubiKey 5C", "laptop").
    pub name: String,
    /// When it was enrolled.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed someone in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The authenticator's signature counter at its last use (0 for authenticators, such as
    /// synced passkeys, that do not count).
    pub sign_count: u32,
    /// Whether the authenticator may back it up (a synced passkey) ...
    pub backup_eligible: bool,
    /// ... and whether it says it is backed up.
    pub backed_up: bool,
}

/// A credential name after trimming: 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub(crate) fn checked_name(name: &str) -> Result<String, WebauthnError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(WebauthnError::BadName("empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(WebauthnError::BadName("too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(WebauthnError::BadName("control characters"));
    }
    Ok(name.to_owned())
}

/// The stored text of an authenticator's credential ID.
pub(crate) fn credential_key(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    String,
);

const COLUMNS: &str = "id, user_id, name, created_at, last_used_at, sign_count, \
                       backup_eligible, backed_up, passkey";

fn from_row(row: Row) -> crate::Result<(Credential, String)> {
    let (id, user, name, created, used, count, eligible, backed, passkey) = row;
    let corrupt = |reason: String| crate::Error::CorruptRow {
        what: "webauthn credential",
        reason,
    };
    Ok((
        Credential {
            id: CredentialId(Uuid::parse_str(&id).map_err(|e| corrupt(e.to_string()))?),
            user: UserId::from_db(&user)?,
            name,
            created_at: timestamp::parse("credential created_at", &created)?,
            last_used_at: used
                .as_deref()
                .map(|t| timestamp::parse("credential last_used_at", t))
                .transpose()?,
            sign_count: u32::try_from(count).unwrap_or(0),
            backup_eligible: store::flag(eligible),
            backed_up: store::flag(backed),
        },
        passkey,
    ))
}

fn passkey_of(text: &str) -> crate::Result<Passkey> {
    serde_json::from_str(text).map_err(|e| crate::Error::CorruptRow {
        what: "webauthn credential",
        reason: e.to_string(),
    })
}

/// The `webauthn_credentials` table.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'s> {
    store: &'s Store,
}

impl<'s> Credentials<'s> {
    /// The credentials in `store`.
    pub fn new(store: &'s Store) -> Self {
        Credentials { store }
    }

    /// A user's credentials, oldest first.
    pub async fn list(&self, user: UserId) -> crate::Result<Vec<Credential>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webauthn_credentials WHERE user_id = $1 \
             ORDER BY created_at, id"
        )))
        .bind(user.to_db())
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(|r| from_row(r).map(|(c, _)| c))
            .collect()
    }

    /// How many credentials a user has (the MFA policy asks "has the user a key?").
    pub async fn count(&self, user: UserId) -> crate::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1")
                .bind(user.to_db())
                .fetch_one(self.store.pool())
                .await?,
        )
    }

    /// Renames one of `user`'s credentials; audited as `webauthn.renamed`.
    pub async fn rename(
        &self,
        actor: &Actor,
        user: UserId,
        id: CredentialId,
        name: &str,
    ) -> Result<Credential, WebauthnError> {
        let name = checked_name(name)?;
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let before = self.get_in(&mut tx, user, id).await?;
        sqlx::query("UPDATE webauthn_credentials SET name = $1 WHERE id = $2 AND user_id = $3")
            .bind(&name)
            .bind(id.0.to_string())
            .bind(user.to_db())
            .execute(store::conn(&mut tx))
            .await
            .map_err(crate::Error::from)?;
        let after = Credential {
            name: name.clone(),
            ..before.clone()
        };
        let target_name = username_in(&mut tx, user).await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "webauthn.renamed",
                target_kind: "user",
                target_id: user.to_string(),
                target_name,
                before: audit::snapshot(&before),
                after: audit::snapshot(&after),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(after)
    }

    /// Removes one of `user`'s credentials; audited as `webauthn.removed`. The user's
    /// sessions end as `keep` says, in the same transaction ([`crate::session::Keep`]: the
    /// owner's own change keeps the session it came from).
    pub async fn remove(
        &self,
        actor: &Actor,
        user: UserId,
        id: CredentialId,
        keep: crate::session::Keep<'_>,
    ) -> Result<(), WebauthnError> {
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let before = self.get_in(&mut tx, user, id).await?;
        sqlx::query("DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2")
            .bind(id.0.to_string())
            .bind(user.to_db())
            .execute(store::conn(&mut tx))
            .await
            .map_err(crate::Error::from)?;
        let codes_dropped = crate::mfa::recovery::drop_when_no_factor_left(&mut tx, user).await?;
        let target_name = username_in(&mut tx, user).await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "webauthn.removed",
                target_kind: "user",
                target_id: user.to_string(),
                target_name: target_name.clone(),
                before: audit::snapshot(&before),
                after: (codes_dropped > 0)
                    .then(|| json!({ "recovery_codes_dropped": codes_dropped })),
            },
        )
        .await?;
        crate::session::end_for_credential_change(
            store::conn(&mut tx),
            actor,
            user,
            &target_name,
            keep,
            "webauthn_remove",
            None,
            now,
        )
        .await?;
        store::commit(tx).await?;
        Ok(())
    }

    async fn get_in(
        &self,
        tx: &mut store::WriteTx,
        user: UserId,
        id: CredentialId,
    ) -> Result<Credential, WebauthnError> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webauthn_credentials WHERE id = $1 AND user_id = $2"
        )))
        .bind(id.0.to_string())
        .bind(user.to_db())
        .fetch_optional(store::conn(tx))
        .await
        .map_err(crate::Error::from)?;
        match row {
            Some(r) => Ok(from_row(r)?.0),
            None => Err(WebauthnError::UnknownCredential),
        }
    }

    /// The credential with this authenticator credential ID, with its key.
    pub(crate) async fn by_credential_id(
        &self,
        raw: &[u8],
    ) -> crate::Result<Option<(Credential, Passkey)>> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webauthn_credentials WHERE credential_id = $1"
        )))
        .bind(credential_key(raw))
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|r| {
            let (c, p) = from_row(r)?;
            Ok((c, passkey_of(&p)?))
        })
        .transpose()
    }

    /// A user's keys, for an allow-list or an exclude-list.
    pub(crate) async fn passkeys(&self, user: UserId) -> crate::Result<Vec<(Credential, Passkey)>> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM webauthn_credentials WHERE user_id = $1"
        )))
        .bind(user.to_db())
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                let (c, p) = from_row(r)?;
                Ok((c, passkey_of(&p)?))
            })
            .collect()
    }

    /// Stores a verified new credential with its audit event, in one transaction. The
    /// unique credential ID makes a second enrolment of the same key fail whole.
    pub(crate) async fn insert(
        &self,
        actor: &Actor,
        user: UserId,
        name: String,
        passkey: &Passkey,
        now: OffsetDateTime,
    ) -> Result<Credential, WebauthnError> {
        let credential = Credential {
            id: CredentialId(Uuid::new_v4()),
            user,
            name,
            created_at: timestamp::truncate(now),
            last_used_at: None,
            sign_count: 0,
            backup_eligible: false,
            backed_up: false,
        };
        let serialised = serde_json::to_string(passkey)
            .map_err(|e| WebauthnError::Malformed(format!("passkey not serialisable: {e}")))?;
        let mut tx = self.store.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO webauthn_credentials (id, user_id, credential_id, passkey, name, \
             created_at, last_used_at, sign_count, backup_eligible, backed_up) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, 0, 0, 0)",
        )
        .bind(credential.id.0.to_string())
        .bind(user.to_db())
        .bind(credential_key(passkey.cred_id().as_ref()))
        .bind(&serialised)
        .bind(&credential.name)
        .bind(timestamp::format(now))
        .execute(store::conn(&mut tx))
        .await
        .map_err(crate::Error::from);
        if let Err(e) = inserted {
            return Err(if store::is_unique_violation(&e, "credential_id") {
                WebauthnError::Duplicate
            } else {
                e.into()
            });
        }
        let target_name = username_in(&mut tx, user).await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "webauthn.registered",
                target_kind: "user",
                target_id: user.to_string(),
                target_name,
                before: None,
                after: Some(json!({
                    "credential": credential.id,
                    "name": credential.name,
                    "credential_id": credential_key(passkey.cred_id().as_ref()),
                })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(credential)
    }

    /// Records a verified use: last use, counter and backup flags, and the key as the crate
    /// updated it, in one conditional `UPDATE` that holds the WebAuthn rule (L2 §7.2 step
    /// 21): when the presented signature counter or the stored one is non-zero, the
    /// presented one must be greater. Anything else may be a cloned authenticator (or the
    /// later of two uses under way at once, which a clone's can look like): the use is
    /// refused ([`WebauthnError::CounterRegression`]) and audited as
    /// `webauthn.counter_regression` in the same transaction, the stored counter unchanged.
    /// Counters of 0 on both sides (synced passkeys, which do not count) pass. The check
    /// and the write are one statement, so of two uses with one counter racing (two nodes)
    /// exactly one is accepted.
    pub(crate) async fn record_use(
        &self,
        used: &Use<'_>,
        mut passkey: Passkey,
        result: &AuthenticationResult,
        now: OffsetDateTime,
    ) -> Result<(), WebauthnError> {
        passkey.update_credential(result);
        let serialised = serde_json::to_string(&passkey).map_err(|e| crate::Error::CorruptRow {
            what: "webauthn credential",
            reason: e.to_string(),
        })?;
        let presented = result.counter();
        let mut tx = self.store.begin().await?;
        let written = sqlx::query(
            "UPDATE webauthn_credentials SET last_used_at = $1, sign_count = $2, \
             backup_eligible = $3, backed_up = $4, passkey = $5 \
             WHERE id = $6 AND (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
        )
        .bind(timestamp::format(now))
        .bind(i64::from(presented))
        .bind(store::to_flag(result.backup_eligible()))
        .bind(store::to_flag(result.backup_state()))
        .bind(serialised)
        .bind(used.credential.id.0.to_string())
        .execute(store::conn(&mut tx))
        .await
        .map_err(crate::Error::from)?;
        if written.rows_affected() == 1 {
            store::commit(tx).await?;
            return Ok(());
        }
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT sign_count FROM webauthn_credentials WHERE id = $1")
                .bind(used.credential.id.0.to_string())
                .fetch_optional(store::conn(&mut tx))
                .await
                .map_err(crate::Error::from)?;
        // Removed meanwhile: it signs nobody in.
        let Some(stored) = stored else {
            return Err(WebauthnError::UnknownCredential);
        };
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        Err(regression_in(tx, used, stored, presented, now).await)
    }

    /// Refuses a use whose counter `webauthn-rs` already found not to go up
    /// (`CredentialPossibleCompromise`, checked against the counter the ceremony read):
    /// audited as [`Credentials::record_use`] audits one, `presented` read from the
    /// authenticator data the crate verified.
    pub(crate) async fn refuse_regression(
        &self,
        used: &Use<'_>,
        presented: u32,
        now: OffsetDateTime,
    ) -> WebauthnError {
        match self.store.begin().await {
            Ok(tx) => regression_in(tx, used, used.credential.sign_count, presented, now).await,
            Err(e) => e.into(),
        }
    }
}

/// One use of a credential being recorded: whose, by whom, from where, for what.
#[derive(Debug)]
pub(crate) struct Use<'a> {
    /// The credential as read for this use.
    pub credential: &'a Credential,
    /// Its owner's username (the audit event's target name).
    pub username: &'a str,
    /// Who the audit line names.
    pub actor: &'a Actor,
    /// The client's address.
    pub address: &'a str,
    /// `passwordless` or `second_factor`.
    pub purpose: &'static str,
}

/// The signature counter in an assertion's authenticator data (bytes 33 to 36, big-endian,
/// after the RP ID hash and the flags); `None` when the data is too short to hold one.
pub(crate) fn presented_counter(authenticator_data: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = authenticator_data.get(33..37)?.try_into().ok()?;
    Some(u32::from_be_bytes(bytes))
}

/// Writes the `webauthn.counter_regression` event in `tx`, commits it, and answers the
/// refusal (or the store's error, when the event could not be written).
async fn regression_in(
    mut tx: store::WriteTx,
    used: &Use<'_>,
    stored: u32,
    presented: u32,
    now: OffsetDateTime,
) -> WebauthnError {
    let credential = used.credential;
    let recorded = audit::record(
        store::conn(&mut tx),
        used.actor,
        now,
        Change {
            action: "webauthn.counter_regression",
            target_kind: "user",
            target_id: credential.user.to_string(),
            target_name: used.username.to_owned(),
            before: None,
            after: Some(json!({
                "credential": credential.id,
                "name": credential.name,
                "stored_counter": stored,
                "presented_counter": presented,
                "purpose": used.purpose,
                "address": used.address,
            })),
        },
    )
    .await;
    let committed = match recorded {
        Ok(()) => store::commit(tx).await,
        Err(e) => Err(e),
    };
    match committed {
        Ok(()) => WebauthnError::CounterRegression { stored, presented },
        Err(e) => e.into(),
    }
}

/// The username of `user`, for the audit event's target: the audit names the person whose
/// factors changed (the credential's own name is in the event's detail).
async fn username_in(tx: &mut store::WriteTx, user: UserId) -> Result<String, WebauthnError> {
    let name: Option<String> = sqlx::query_scalar("SELECT username FROM users WHERE id = $1")
        .bind(user.to_db())
        .fetch_optional(store::conn(tx))
        .await
        .map_err(crate::Error::from)?;
    Ok(name.unwrap_or_else(|| user.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::PasswordConfig;
    use crate::directory::NewUser;
    use crate::webauthn::{Ceremonies, RelyingParty, WebauthnConfig};
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    /// The crate's result of a verified use with `counter`: what `record_use` is given after
    /// a signature checked out (the authenticator's bytes are not what this rule is about).
    fn result_with(passkey: &Passkey, counter: u32) -> AuthenticationResult {
        serde_json::from_value(json!({
            "cred_id": credential_key(passkey.cred_id().as_ref()),
            "needs_update": false,
            "user_verified": true,
            "backup_state": false,
            "backup_eligible": false,
            "counter": counter,
            "extensions": {},
        }))
        .unwrap()
    }

    /// The counter rule of `record_use` on its own: 0 after 0 passes (passkeys that do not
    /// count); otherwise only a greater counter does; a refusal leaves the stored counter
    /// and writes one `webauthn.counter_regression` event with both counters.
    #[tokio::test]
    async fn only_a_greater_counter_or_zero_after_zero_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let url = crate::config::sqlite_url(&dir.path().join("latchkey.db"));
        let cheap = PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
        };
        let store = Store::open_url(&url, 2, cheap).await.unwrap();
        let user = store
            .users()
            .create(&Actor::system(), NewUser::new("alice", "alice@example.org"))
            .await
            .unwrap();
        let origin = url::Url::parse("https://idp.example.org").unwrap();
        let rp = RelyingParty::new(origin.as_str(), &WebauthnConfig::default()).unwrap();
        let started = Ceremonies::new(&store, &rp)
            .start_registration(&user)
            .await
            .unwrap();
        let mut key = SoftPasskey::new(true);
        let answer = key.do_registration(origin, started.options).unwrap();
        Ceremonies::new(&store, &rp)
            .finish_registration(
                &Actor::user(user.id),
                &user,
                &started.handle,
                &answer,
                "key",
            )
            .await
            .unwrap();
        let credentials = Credentials::new(&store);
        let (credential, passkey) = credentials.passkeys(user.id).await.unwrap().remove(0);
        let actor = Actor::person(&user);
        let used = Use {
            credential: &credential,
            username: &user.username,
            actor: &actor,
            address: "192.0.2.7",
            purpose: "second_factor",
        };
        let now = store.now();
        let record = |counter: u32| {
            let passkey = passkey.clone();
            let used = &used;
            let credentials = &credentials;
            async move {
                credentials
                    .record_use(used, passkey.clone(), &result_with(&passkey, counter), now)
                    .await
            }
        };
        let stored = async || credentials.list(user.id).await.unwrap()[0].sign_count;
        let regressions = async || {
            store
                .audit()
                .list(&crate::audit::AuditFilter {
                    action: Some("webauthn.counter_regression".into()),
                    ..crate::audit::AuditFilter::default()
                })
                .await
                .unwrap()
        };

        record(0).await.unwrap();
        record(0).await.unwrap();
        assert_eq!(stored().await, 0);
        record(5).await.unwrap();
        assert_eq!(stored().await, 5);
        for counter in [5, 4, 0] {
            match record(counter).await {
                Err(WebauthnError::CounterRegression { stored, presented }) => {
                    assert_eq!((stored, presented), (5, counter));
                }
                other => panic!("counter {counter} after 5: {other:?}"),
            }
        }
        assert_eq!(stored().await, 5);
        let events = regressions().await;
        assert_eq!(events.len(), 3);
        let details = events[0].after.clone().unwrap();
        assert_eq!(details["stored_counter"], 5);
        assert_eq!(details["credential"], credential.id.to_string());
        record(6).await.unwrap();
        assert_eq!(stored().await, 6);
        assert_eq!(regressions().await.len(), 3);
    }
}
