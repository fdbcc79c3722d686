//! Recovery codes: ten single-use codes, shown once when made, for a user whose
//! authenticator is lost.
//!
//! # Stored as SHA-256, not Argon2
//! A code is 16 characters from a 32-letter alphabet: 80 random bits. Nobody can search that
//! space from a stolen hash, so a slow hash would only cost every sign-in Argon2 work (and
//! memory the hash pool bounds) for no gain. The hash is keyed by a fixed label and the
//! user's id, so equal codes of two users do not give equal rows.
//!
//! # Each code once
//! A use is one `DELETE` of the matching row: the affected-row count decides, so a burst of
//! the same code from several browsers or nodes succeeds once. Regenerating replaces all
//! codes in one transaction. Uses and regenerations are audited; checks are throttled like
//! TOTP codes (the same slots).

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::MfaError;
use crate::audit::{self, Actor, Change};
use crate::directory::User;
use crate::ids::UserId;
use crate::session::{Admission, Attempt, Slot, Throttle};
use crate::store::{self, Store, timestamp};

/// Codes in a set.
pub const COUNT: usize = 10;
/// Characters in a code (without the dashes shown every four).
const LENGTH: usize = 16;
/// Crockford's base32 (no i, l, o, u): read from paper and typed back. 5 bits each.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LABEL: &str = "latchkey recovery code v1";

/// What a recovery-code check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum RecoveryCheck {
    /// The code was one of the user's and is now used up; how many are left.
    Accepted {
        /// Codes the user still has.
        remaining: i64,
    },
    /// Not one of the user's unused codes.
    Wrong,
    /// Too many guesses: nothing was checked.
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
}

/// A user's recovery codes.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryCodes<'s> {
    store: &'s Store,
}

/// The canonical form of a typed code: lower case, dashes and spaces removed; anything
/// else than 16 letters of the alphabet is malformed.
fn normalize(typed: &str) -> Result<Zeroizing<String>, MfaError> {
    if typed.len() > 64 {
        return Err(MfaError::MalformedCode(
            "a recovery code is 16 letters and digits",
        ));
    }
    let code: Zeroizing<String> = Zeroizing::new(
        typed
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    if code.len() != LENGTH || !code.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(MfaError::MalformedCode(
            "a recovery code is 16 letters and digits",
        ));
    }
    Ok(code)
}

fn hash(user: &User, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(LABEL.as_bytes());
    h.update([0]);
    h.update(user.id.to_db().as_bytes());
    h.update([0]);
    h.update(code.as_bytes());
    hex::encode(h.finalize())
}

fn fresh_code() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; LENGTH]);
    rand::fill(&mut bytes[..]);
    let mut out = Zeroizing::new(String::with_capacity(LENGTH + 3));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(*b & 31)]));
    }
    out
}

/// Drops `user`'s recovery codes when no factor they stand in for is left (no confirmed
/// TOTP, no passkey), inside the transaction that removed a factor. Codes that outlived every
/// factor would do nothing now, but would come back to life, perhaps long after they leaked,
/// as soon as a new factor is enrolled. Returns how many went.
pub(crate) async fn drop_when_no_factor_left(
    tx: &mut store::WriteTx,
    user: UserId,
) -> crate::Result<u64> {
    let dropped = sqlx::query(
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM mfa_totp WHERE user_id = $1 AND confirmed = 1) \
         AND NOT EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = $1)",
    )
    .bind(user.to_db())
    .execute(store::conn(tx))
    .await?
    .rows_affected();
    Ok(dropped)
}

impl<'s> RecoveryCodes<'s> {
    /// Recovery codes in `store`.
    pub fn new(store: &'s Store) -> Self {
        RecoveryCodes { store }
    }

    /// Makes a new set of [`COUNT`] codes, replacing any the user had, and returns them to
    /// show once (`abcd-efgh-jkmn-pqrs`). Audited as `mfa.recovery_codes_regenerate`. When
    /// unused codes were replaced (a second factor taken away), the user's sessions end as
    /// `keep` says, in the same transaction ([`crate::session::Keep`]); a first set ends none.
    pub async fn regenerate(
        &self,
        actor: &Actor,
        user: &User,
        keep: crate::session::Keep<'_>,
    ) -> Result<Vec<Zeroizing<String>>, MfaError> {
        let codes: Vec<Zeroizing<String>> = (0..COUNT).map(|_| fresh_code()).collect();
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let replaced = sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for code in &codes {
            let canonical = normalize(code)?;
            sqlx::query(
                "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(user.id.to_db())
            .bind(hash(user, &canonical))
            .bind(timestamp::format(now))
            .execute(&mut *tx)
            .await?;
        }
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "mfa.recovery_codes_regenerate",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: Some(serde_json::json!({ "unused_codes": replaced })),
                after: Some(serde_json::json!({ "codes": COUNT })),
            },
        )
        .await?;
        if replaced > 0 {
            crate::session::end_for_credential_change(
                store::conn(&mut tx),
                actor,
                user.id,
                &user.username,
                keep,
                "mfa_recovery_codes_regenerate",
                None,
                now,
            )
            .await?;
        }
        store::commit(tx).await?;
        Ok(codes)
    }

    /// How many unused codes the user has.
    pub async fn remaining(&self, user: &User) -> Result<i64, MfaError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user.id.to_db())
                .fetch_one(self.store.pool())
                .await?,
        )
    }

    /// What every check of a typed code does first: read it (a malformed one is an error,
    /// not a guess), then take the user's and the address's throttle slots, before any
    /// lookup. `Ok(Err(_))` is the throttle's refusal.
    async fn admit(
        &self,
        user: &User,
        typed: &str,
        address: &str,
        now: OffsetDateTime,
    ) -> Result<Result<(Zeroizing<String>, Attempt), RecoveryCheck>, MfaError> {
        let code = normalize(typed)?;
        match Throttle::new(self.store)
            .admit(vec![Slot::factor(user.id), Slot::address(address)], now)
            .await?
        {
            Admission::Admitted(attempt) => Ok(Ok((code, attempt))),
            Admission::Refused { retry_after } => Ok(Err(RecoveryCheck::Throttled { retry_after })),
        }
    }

    /// Checks a code as [`RecoveryCodes::consume`] does (throttled, the same slots) but
    /// leaves it unused: `Ok(Ok(_))` is to be used up by the transaction that needs it
    /// ([`super::CheckedCode`]); `Ok(Err(_))` is the refusal (wrong or throttled).
    pub async fn check_for_later(
        &self,
        user: &User,
        typed: &str,
        address: &str,
    ) -> Result<Result<super::CheckedCode, RecoveryCheck>, MfaError> {
        let (code, attempt) = match self.admit(user, typed, address, self.store.now()).await? {
            Ok(admitted) => admitted,
            Err(refused) => return Ok(Err(refused)),
        };
        let code_hash = hash(user, &code);
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2",
        )
        .bind(user.id.to_db())
        .bind(&code_hash)
        .fetch_optional(self.store.pool())
        .await?;
        if found.is_none() {
            return Ok(Err(RecoveryCheck::Wrong));
        }
        Ok(Ok(super::CheckedCode {
            user: user.id,
            username: user.username.clone(),
            address: address.to_owned(),
            kind: super::CheckedKind::Recovery { code_hash },
            attempt,
        }))
    }

    /// Uses a code as a second factor: throttled (the same slots as TOTP), then one
    /// `DELETE` decides. A use is audited as `mfa.recovery_code_use` by the user, with the
    /// client address, how many codes are left and `used_for` [`super::USED_FOR_SIGN_IN`]. On [`RecoveryCheck::Accepted`], add
    /// [`super::AuthMethod::RecoveryCode`] to the session.
    pub async fn consume(
        &self,
        user: &User,
        typed: &str,
        address: &str,
    ) -> Result<RecoveryCheck, MfaError> {
        let now = self.store.now();
        let (code, attempt) = match self.admit(user, typed, address, now).await? {
            Ok(admitted) => admitted,
            Err(refused) => return Ok(refused),
        };
        let mut tx = self.store.begin().await?;
        let used =
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2")
                .bind(user.id.to_db())
                .bind(hash(user, &code))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if used != 1 {
            return Ok(RecoveryCheck::Wrong);
        }
        let remaining: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user.id.to_db())
                .fetch_one(&mut *tx)
                .await?;
        audit::record(
            store::conn(&mut tx),
            &Actor::user(user.id),
            now,
            Change {
                action: "mfa.recovery_code_use",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: None,
                after: Some(serde_json::json!({
                    "address": address,
                    "remaining": remaining,
                    "used_for": super::USED_FOR_SIGN_IN,
                })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Throttle::new(self.store).succeeded(attempt).await?;
        Ok(RecoveryCheck::Accepted { remaining })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_codes_are_canonical_and_typed_forms_normalize() {
        let code = fresh_code();
        assert_eq!(code.len(), LENGTH + 3);
        let canonical = normalize(&code).unwrap();
        assert_eq!(canonical.len(), LENGTH);
        assert_eq!(
            normalize(&code.to_uppercase().replace('-', " ")).unwrap(),
            canonical
        );
        for bad in [
            "",
            "abcd",
            "abcd-efgh-jkmn-pqri",
            &"a".repeat(100),
            "abcd-efgh-jkmn-pqrsa",
        ] {
            assert!(
                matches!(normalize(bad), Err(MfaError::MalformedCode(_))),
                "{bad:?}"
            );
        }
    }
}
