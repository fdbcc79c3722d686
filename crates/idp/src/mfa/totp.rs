//! TOTP second factors (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of
//! skew either way), computed by the `totp-rs` crate at the time of the store's clock.
//!
//! # Secrets at rest
//! The 160-bit secret is sealed with AES-256-GCM by [`Kek::seal_bound`], the one sealer the
//! crate has (signing keys use it too), with the row's id and user in the additional data:
//! a secret copied into another user's row does not open. The KEK is the one the database
//! key store uses (`[keys] kek_file` or `$LATCHKEY_KEK`); a node with file keys and no KEK
//! gets `<data_dir>/keys/mfa.kek` (0600) made on first use, kept beside the signing keys it
//! is as secret as ([`sealing_kek`]). Nodes sharing a database must share that KEK.
//!
//! # Each code once
//! A code is accepted for its 30-second step only if the factor's `last_step` is older; the
//! check and the move are one conditional `UPDATE` whose affected-row count decides, so two
//! simultaneous submissions of the same code cannot both pass, on any node.
//!
//! # Throttled like passwords
//! A check takes its slots (the user's second-factor run, and the client address) through
//! [`Throttle::admit`] before any code is computed; a success resets the user's run and
//! gives the address its slot back, as a right password does. A malformed code is refused
//! before that: it is no guess.

use std::path::Path;

use subtle::ConstantTimeEq;
use time::Duration;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use super::MfaError;
use crate::audit::{self, Actor, Change};
use crate::config::{Config, Environment, KeyStoreKind};
use crate::directory::User;
use crate::keys::{Kek, KeyError};
use crate::session::{Admission, Slot, Throttle};
use crate::store::{self, Store, timestamp};

/// Digits in a code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Steps of clock difference allowed either way.
pub const SKEW_STEPS: i64 = 1;
/// Random bytes in a secret (RFC 4226 recommends 160 bits).
const SECRET_BYTES: usize = 20;
/// Confirmed TOTP factors one user may have: enough for a phone and a spare, and a bound
/// on the work of one check (every factor is tried).
pub const MAX_FACTORS: usize = 5;
/// How long a begun enrolment may be confirmed.
pub const PENDING_FOR: Duration = Duration::minutes(15);
/// The longest factor name.
const MAX_NAME: usize = 64;
/// Domain separation and version of the sealed secret's AAD.
const AAD_LABEL: &str = "latchkey totp secret v1";

/// The KEK that seals TOTP secrets: the configured one (`$LATCHKEY_KEK`, `[keys]
/// kek_file`), else, with the file key store, `<data_dir>/keys/mfa.kek`, made on first use.
pub fn sealing_kek(config: &Config, env: &dyn Environment) -> Result<Kek, KeyError> {
    match Kek::resolve(&config.keys, env) {
        Err(KeyError::KekMissing) if config.keys.store == KeyStoreKind::Files => {
            let dir = config.data_dir.join("keys");
            local_kek(&dir)
        }
        other => other,
    }
}

fn local_kek(dir: &Path) -> Result<Kek, KeyError> {
    let path = dir.join("mfa.kek");
    if path.exists() {
        return Kek::from_file(&path);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| KeyError::Io {
        path: dir.to_owned(),
        source: e,
    })?;
    // Another process may have made it meanwhile: then read that one.
    Kek::create_file(&path).or_else(|_| Kek::from_file(&path))
}

/// A code as typed: exactly six ASCII digits once spaces are removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Code {
    /// Parses what the user typed (spaces, as authenticator apps show `123 456`, are
    /// ignored). Anything else than six digits is [`MfaError::MalformedCode`], checked
    /// before looking at the length of the whole input, so no input can make it work.
    pub fn parse(typed: &str) -> Result<Code, MfaError> {
        if typed.len() > 32 {
            return Err(MfaError::MalformedCode("a TOTP code is 6 digits"));
        }
        let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(MfaError::MalformedCode("a TOTP code has only digits"));
        }
        if digits.len() != DIGITS {
            return Err(MfaError::MalformedCode("a TOTP code is 6 digits"));
        }
        Ok(Code(digits))
    }
}

/// What enrolment shows the user, once: never stored in the clear.
pub struct Enrolment {
    /// The pending factor, to confirm with [`Totp::confirm`].
    pub factor_id: String,
    /// The secret in base32, for typing into an app by hand.
    pub secret_base32: Zeroizing<String>,
    /// The `otpauth://totp/...` URI the QR code holds.
    pub uri: Zeroizing<String>,
    /// The QR code of `uri`, an inline SVG document (no external service).
    pub qr_svg: Zeroizing<String>,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("factor_id", &self.factor_id)
            .finish_non_exhaustive()
    }
}

/// The outcome of a code check. Pages show one answer for everything but `Accepted` and
/// `Throttled`; the difference is for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum TotpCheck {
    /// The code is right for a step not used before; the factor's id.
    Accepted {
        /// Which factor matched.
        factor_id: String,
    },
    /// No factor of the user gives this code now.
    Wrong,
    /// The code is right but its step was already used (a replay, or a second submit).
    Replayed,
    /// Too many guesses: nothing was checked.
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
}

/// A factor name after trimming: 1 to [`MAX_NAME`] characters, no control characters.
fn checked_name(name: &str) -> Result<&str, MfaError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(MfaError::InvalidName("a factor needs a name"));
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(MfaError::InvalidName(
            "at most 64 characters, no control characters",
        ));
    }
    Ok(name)
}

/// TOTP factors in a store, sealed under a KEK.
#[derive(Debug, Clone, Copy)]
pub struct Totp<'s> {
    store: &'s Store,
    kek: &'s Kek,
}

fn aad(factor_id: &str, user: &User) -> String {
    format!("{AAD_LABEL}\0{factor_id}\0{}", user.id.to_db())
}

fn generator(secret: Vec<u8>, issuer: &str, account: &str) -> Result<TOTP, MfaError> {
    // otpauth labels cannot hold ':' (it separates issuer and account).
    let clean = |s: &str| s.replace(':', "-");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        // The skew is applied here (not by the crate) so the matched step is known.
        0,
        STEP_SECONDS as u64,
        secret,
        Some(clean(issuer)),
        clean(account),
    )
    .map_err(|e| MfaError::Sealing(KeyError::Generate(format!("TOTP: {e}"))))
}

/// What enrolment shows for a secret: its base32, URI and QR code.
fn shown(factor_id: String, totp: &TOTP) -> Result<Enrolment, MfaError> {
    let uri = Zeroizing::new(totp.get_url());
    let qr_svg = Zeroizing::new(
        qrcode::QrCode::new(uri.as_bytes())
            .map_err(|e| MfaError::Sealing(KeyError::Generate(format!("QR code: {e}"))))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    );
    Ok(Enrolment {
        factor_id,
        secret_base32: Zeroizing::new(totp.get_secret_base32()),
        uri,
        qr_svg,
    })
}

impl<'s> Totp<'s> {
    /// TOTP factors in `store`, sealed under `kek` (see [`sealing_kek`]).
    pub fn new(store: &'s Store, kek: &'s Kek) -> Self {
        Totp { store, kek }
    }

    /// Starts an enrolment: a pending factor with a fresh secret, and what to show. An
    /// earlier pending enrolment of the user is dropped (one at a time bounds the rows).
    /// `issuer` is what the app shows above the code (the IdP's name or host).
    pub async fn begin(
        &self,
        user: &User,
        name: &str,
        issuer: &str,
    ) -> Result<Enrolment, MfaError> {
        self.start(user, name, issuer, false).await
    }

    /// The user's pending enrolment shown again while it may still be confirmed (the same
    /// secret, URI and QR code), else a new one as [`Totp::begin`] starts: what a page that
    /// only shows (a GET) asks for, so that a reload, a second tab or a link from another
    /// site does not replace the secret the user is scanning. Looking and starting are one
    /// transaction under the user's row lock, so two at once show the same enrolment.
    pub async fn resume_or_begin(
        &self,
        user: &User,
        name: &str,
        issuer: &str,
    ) -> Result<Enrolment, MfaError> {
        self.start(user, name, issuer, true).await
    }

    async fn start(
        &self,
        user: &User,
        name: &str,
        issuer: &str,
        resume: bool,
    ) -> Result<Enrolment, MfaError> {
        let name = checked_name(name)?;
        let confirmed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mfa_totp WHERE user_id = $1 AND confirmed = 1",
        )
        .bind(user.id.to_db())
        .fetch_one(self.store.pool())
        .await?;
        if confirmed >= MAX_FACTORS as i64 {
            return Err(MfaError::TooManyFactors(MAX_FACTORS));
        }
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        if resume {
            crate::directory::users::lock(store::conn(&mut tx), user.id).await?;
            let live: Option<(String, String, String)> = sqlx::query_as(
                "SELECT id, sealed_secret, sealed_with FROM mfa_totp \
                 WHERE user_id = $1 AND confirmed = 0 AND created_at > $2 \
                 ORDER BY created_at DESC, id LIMIT 1",
            )
            .bind(user.id.to_db())
            .bind(timestamp::format(now - PENDING_FOR))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((id, sealed, sealed_with)) = live {
                store::commit(tx).await?;
                return self.show_sealed(user, id, &sealed, &sealed_with, issuer);
            }
        }
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand::fill(&mut secret[..]);
        let factor_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let sealed = self.kek.seal_bound(&aad(&factor_id, user), &secret)?;
        let totp = generator(secret.to_vec(), issuer, &user.username)?;
        sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed = 0")
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO mfa_totp (id, user_id, name, sealed_secret, sealed_with, confirmed, \
             last_step, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, 0, -1, $6, NULL)",
        )
        .bind(&factor_id)
        .bind(user.id.to_db())
        .bind(name)
        .bind(&sealed)
        .bind(self.kek.id())
        .bind(timestamp::format(now))
        .execute(&mut *tx)
        .await?;
        store::commit(tx).await?;
        shown(factor_id, &totp)
    }

    /// Shows a pending enrolment again (the page after a mistyped code): the same secret,
    /// URI and QR code as [`Totp::begin`] gave, while the enrolment may still be
    /// confirmed. [`MfaError::NoPendingEnrolment`] when it is unknown, someone else's,
    /// expired or confirmed.
    pub async fn reopen(
        &self,
        user: &User,
        factor_id: &str,
        issuer: &str,
    ) -> Result<Enrolment, MfaError> {
        let cutoff = self.store.now() - PENDING_FOR;
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, sealed_secret, sealed_with FROM mfa_totp \
             WHERE id = $1 AND user_id = $2 AND confirmed = 0 AND created_at > $3",
        )
        .bind(factor_id)
        .bind(user.id.to_db())
        .bind(timestamp::format(cutoff))
        .fetch_optional(self.store.pool())
        .await?;
        let Some((id, sealed, sealed_with)) = row else {
            return Err(MfaError::NoPendingEnrolment(
                factor_id.chars().take(64).collect(),
            ));
        };
        self.show_sealed(user, id, &sealed, &sealed_with, issuer)
    }

    /// What enrolment shows for a stored pending factor: its secret opened again.
    fn show_sealed(
        &self,
        user: &User,
        id: String,
        sealed: &str,
        sealed_with: &str,
        issuer: &str,
    ) -> Result<Enrolment, MfaError> {
        let secret = self
            .kek
            .open_bound(&id, &aad(&id, user), sealed_with, sealed)?;
        let totp = generator(secret.to_vec(), issuer, &user.username)?;
        shown(id, &totp)
    }

    /// Confirms a pending enrolment with a code from the app: the factor counts from now
    /// on, and the code's step is used up. Audited as `mfa.totp_enrol` by `actor`. A wrong
    /// code leaves the enrolment pending (and counts against the throttle).
    pub async fn confirm(
        &self,
        actor: &Actor,
        user: &User,
        factor_id: &str,
        typed: &str,
        address: &str,
    ) -> Result<TotpCheck, MfaError> {
        let code = Code::parse(typed)?;
        let cutoff = self.store.now() - PENDING_FOR;
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT id, name, sealed_secret, sealed_with FROM mfa_totp \
             WHERE id = $1 AND user_id = $2 AND confirmed = 0 AND created_at > $3",
        )
        .bind(factor_id)
        .bind(user.id.to_db())
        .bind(timestamp::format(cutoff))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Err(MfaError::NoPendingEnrolment(
                factor_id.chars().take(64).collect(),
            ));
        };
        let name = row.1.clone();
        let outcome = self
            .check(user, &code, address, vec![(row.0, row.2, row.3)])
            .await?;
        let TotpCheck::Accepted { factor_id } = outcome else {
            return Ok(outcome);
        };
        // The step was recorded by `check` on the pending row; now it becomes a factor.
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE mfa_totp SET confirmed = 1 WHERE id = $1 AND user_id = $2 AND confirmed = 0",
        )
        .bind(&factor_id)
        .bind(user.id.to_db())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Err(MfaError::NoPendingEnrolment(factor_id));
        }
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "mfa.totp_enrol",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: None,
                after: Some(serde_json::json!({ "factor_id": factor_id, "name": name })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(TotpCheck::Accepted { factor_id })
    }

    /// The user's confirmed factors (ID, sealed secret, its sealer), in the order a code is
    /// tried against them.
    async fn confirmed_secrets(
        &self,
        user: &User,
    ) -> Result<Vec<(String, String, String)>, MfaError> {
        Ok(sqlx::query_as(
            "SELECT id, sealed_secret, sealed_with FROM mfa_totp \
             WHERE user_id = $1 AND confirmed = 1 ORDER BY created_at, id",
        )
        .bind(user.id.to_db())
        .fetch_all(self.store.pool())
        .await?)
    }

    /// Checks a code against the user's confirmed factors (a sign-in's second step or a
    /// step-up). On [`TotpCheck::Accepted`], add [`super::AuthMethod::Totp`] to the session.
    pub async fn verify(
        &self,
        user: &User,
        typed: &str,
        address: &str,
    ) -> Result<TotpCheck, MfaError> {
        let code = Code::parse(typed)?;
        let rows = self.confirmed_secrets(user).await?;
        self.check(user, &code, address, rows).await
    }

    /// Renames one confirmed factor of the user (the account page); audited as
    /// `mfa.totp_rename`. `false` (nothing written) if the user has no such factor.
    pub async fn rename(
        &self,
        actor: &Actor,
        user: &User,
        factor_id: &str,
        name: &str,
    ) -> Result<bool, MfaError> {
        let name = checked_name(name)?;
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let before: Option<String> = sqlx::query_scalar(
            "SELECT name FROM mfa_totp WHERE id = $1 AND user_id = $2 AND confirmed = 1",
        )
        .bind(factor_id)
        .bind(user.id.to_db())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = before else {
            return Ok(false);
        };
        sqlx::query("UPDATE mfa_totp SET name = $1 WHERE id = $2 AND user_id = $3")
            .bind(name)
            .bind(factor_id)
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "mfa.totp_rename",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: Some(serde_json::json!({ "factor_id": factor_id, "name": before })),
                after: Some(serde_json::json!({ "factor_id": factor_id, "name": name })),
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(true)
    }

    /// Removes one factor of the user (the account page); audited. `false` if there was
    /// no such factor. The user's sessions end as `keep` says, in the same transaction
    /// ([`crate::session::Keep`]: the owner's own change keeps the session it came from).
    pub async fn remove(
        &self,
        actor: &Actor,
        user: &User,
        factor_id: &str,
        keep: crate::session::Keep<'_>,
    ) -> Result<bool, MfaError> {
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let done = sqlx::query("DELETE FROM mfa_totp WHERE id = $1 AND user_id = $2")
            .bind(factor_id)
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if done == 0 {
            return Ok(false);
        }
        let codes_dropped = super::recovery::drop_when_no_factor_left(&mut tx, user.id).await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "mfa.totp_remove",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: Some(serde_json::json!({ "factor_id": factor_id })),
                after: (codes_dropped > 0)
                    .then(|| serde_json::json!({ "recovery_codes_dropped": codes_dropped })),
            },
        )
        .await?;
        crate::session::end_for_credential_change(
            store::conn(&mut tx),
            actor,
            user.id,
            &user.username,
            keep,
            "mfa_totp_remove",
            None,
            now,
        )
        .await?;
        store::commit(tx).await?;
        Ok(true)
    }

    /// Checks a code against the user's confirmed factors as [`Totp::verify`] does, but
    /// leaves its step unused: `Ok(Ok(_))` is to be used up by the transaction that needs
    /// it ([`super::CheckedCode`]); `Ok(Err(_))` is the refusal (wrong, replayed, throttled).
    pub async fn check_for_later(
        &self,
        user: &User,
        typed: &str,
        address: &str,
    ) -> Result<Result<super::CheckedCode, TotpCheck>, MfaError> {
        let code = Code::parse(typed)?;
        let rows = self.confirmed_secrets(user).await?;
        let (factor_id, step, attempt) = match self.matched(user, &code, address, rows).await? {
            Matched::Found {
                factor_id,
                step,
                attempt,
            } => (factor_id, step, attempt),
            Matched::Refused(outcome) => return Ok(Err(outcome)),
        };
        // Already used now: a replay, refused at once (the use itself checks again).
        let unused: Option<i64> =
            sqlx::query_scalar("SELECT last_step FROM mfa_totp WHERE id = $1 AND last_step < $2")
                .bind(&factor_id)
                .bind(step)
                .fetch_optional(self.store.pool())
                .await?;
        if unused.is_none() {
            return Ok(Err(TotpCheck::Replayed));
        }
        Ok(Ok(super::CheckedCode {
            user: user.id,
            username: user.username.clone(),
            address: address.to_owned(),
            kind: super::CheckedKind::Totp { factor_id, step },
            attempt,
        }))
    }

    /// Throttle, then try every candidate factor at the steps now-1, now, now+1; the first
    /// match moves that factor's `last_step` forwards atomically or is a replay.
    async fn check(
        &self,
        user: &User,
        code: &Code,
        address: &str,
        factors: Vec<(String, String, String)>,
    ) -> Result<TotpCheck, MfaError> {
        let (factor_id, s, attempt) = match self.matched(user, code, address, factors).await? {
            Matched::Found {
                factor_id,
                step,
                attempt,
            } => (factor_id, step, attempt),
            Matched::Refused(outcome) => return Ok(outcome),
        };
        let throttle = Throttle::new(self.store);
        let now = self.store.now();
        let moved = sqlx::query(
            "UPDATE mfa_totp SET last_step = $1, last_used_at = $2 \
             WHERE id = $3 AND last_step < $1",
        )
        .bind(s)
        .bind(timestamp::format(now))
        .bind(&factor_id)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if moved != 1 {
            return Ok(TotpCheck::Replayed);
        }
        throttle.succeeded(attempt).await?;
        Ok(TotpCheck::Accepted { factor_id })
    }

    /// Throttle, then try every candidate factor at the steps now-1, now, now+1: the first
    /// match, with the throttle's slots, or the refusal.
    async fn matched(
        &self,
        user: &User,
        code: &Code,
        address: &str,
        factors: Vec<(String, String, String)>,
    ) -> Result<Matched, MfaError> {
        let throttle = Throttle::new(self.store);
        let now = self.store.now();
        let attempt = match throttle
            .admit(vec![Slot::factor(user.id), Slot::address(address)], now)
            .await?
        {
            Admission::Admitted(a) => a,
            Admission::Refused { retry_after } => {
                return Ok(Matched::Refused(TotpCheck::Throttled { retry_after }));
            }
        };
        let step = now.unix_timestamp().max(0) / STEP_SECONDS;
        let mut matched = None;
        'factors: for (id, sealed, sealed_with) in &factors {
            let secret = self
                .kek
                .open_bound(id, &aad(id, user), sealed_with, sealed)?;
            let totp = generator(secret.to_vec(), "", "x")?;
            for s in [step, step - SKEW_STEPS, step + SKEW_STEPS] {
                let at = u64::try_from(s.max(0) * STEP_SECONDS).unwrap_or(0);
                let expected = Zeroizing::new(totp.generate(at));
                if bool::from(expected.as_bytes().ct_eq(code.0.as_bytes())) {
                    matched = Some((id.clone(), s));
                    break 'factors;
                }
            }
        }
        let Some((factor_id, step)) = matched else {
            // A failure keeps its slots counted.
            return Ok(Matched::Refused(TotpCheck::Wrong));
        };
        Ok(Matched::Found {
            factor_id,
            step,
            attempt,
        })
    }
}

/// What [`Totp::matched`] found.
enum Matched {
    /// A factor gives this code at `step`; the throttle's slots are held.
    Found {
        factor_id: String,
        step: i64,
        attempt: crate::session::Attempt,
    },
    /// No match, or throttled.
    Refused(TotpCheck),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_anything_else_is_a_typed_error() {
        assert!(Code::parse("123456").is_ok());
        assert!(Code::parse(" 123 456 ").is_ok());
        for bad in [
            "12345",
            "1234567",
            "12a456",
            "",
            "١٢٣٤٥٦",
            "123456\0",
            &"1".repeat(10_000),
        ] {
            assert!(
                matches!(Code::parse(bad), Err(MfaError::MalformedCode(_))),
                "{bad:?}"
            );
        }
    }
}
