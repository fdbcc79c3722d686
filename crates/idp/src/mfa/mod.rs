//! Second factors: what a session's authentication used ([`AuthMethod`], [`Methods`]),
//! TOTP ([`totp`]), recovery codes ([`recovery`]), the MFA policy ([`policy`]), and the
//! admin view of a user's factors ([`Factors`]).
//!
//! # For the pages that use this (sign-in second step, enrolment, step-up, `/account`)
//! * After the password, ask [`policy::MfaPolicy::decide`] (with the session's methods,
//!   the application or the portal, and the request's `RequestedAuthnContext`) what is
//!   missing: nothing, a second factor ([`policy::MfaDecision::StepUp`]), enrolment first
//!   ([`policy::MfaDecision::Enrol`]) or nothing can satisfy it.
//! * A code typed by the user goes to [`totp::Totp::verify`] or
//!   [`recovery::RecoveryCodes::consume`] *with the client address*: both take their
//!   throttle slots before checking, and both refuse a malformed code with a typed error
//!   before spending a slot. On success, [`crate::session::Sessions::step_up`] adds the
//!   method to the same session and moves its AuthnInstant.
//! * Enrolment is [`totp::Totp::begin`] (a pending factor: URI, base32 secret and QR code as
//!   SVG to show once) then [`totp::Totp::confirm`] with a code from the app; only a
//!   confirmed factor counts anywhere. A page that only shows it (a GET) asks
//!   [`totp::Totp::resume_or_begin`], which shows a live pending one again rather than
//!   replace the secret being scanned.
//!
//! The pages show one answer for a wrong, replayed or unknown code; the typed outcomes are
//! for the log and the audit.

pub mod policy;
pub mod recovery;
pub mod totp;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{self, Actor, Change};
use crate::directory::User;
use crate::error::{Error, Result};
use crate::keys::KeyError;
use crate::store::{self, Store, timestamp};

/// One way a user proved who they are in a session. WebAuthn fills in `Passkey` and
/// `SecurityKey`; the names are stored in `web_sessions.authn_methods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// The account's password.
    Password,
    /// A TOTP code from a confirmed factor.
    Totp,
    /// A single-use recovery code.
    RecoveryCode,
    /// A discoverable WebAuthn credential with user verification: on its own it is two
    /// factors (the device, and the PIN or biometric that unlocked it).
    Passkey,
    /// A WebAuthn credential used as the second step after a password.
    SecurityKey,
}

impl AuthMethod {
    /// Every method, in storage order.
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::Password,
        AuthMethod::Totp,
        AuthMethod::RecoveryCode,
        AuthMethod::Passkey,
        AuthMethod::SecurityKey,
    ];

    /// The name stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Totp => "totp",
            AuthMethod::RecoveryCode => "recovery_code",
            AuthMethod::Passkey => "passkey",
            AuthMethod::SecurityKey => "security_key",
        }
    }

    fn parse(name: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// A factor that, added to a password, makes two.
    fn is_second_factor(self) -> bool {
        matches!(
            self,
            AuthMethod::Totp | AuthMethod::RecoveryCode | AuthMethod::SecurityKey
        )
    }
}

/// The methods a session's authentication used, without repeats, in [`AuthMethod`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Methods(Vec<AuthMethod>);

impl Methods {
    /// A password sign-in.
    pub fn password() -> Methods {
        Methods(vec![AuthMethod::Password])
    }

    /// These methods.
    pub fn of(methods: &[AuthMethod]) -> Methods {
        let mut out = Methods::default();
        for m in methods {
            out.add(*m);
        }
        out
    }

    /// Adds a method (a step-up).
    pub fn add(&mut self, method: AuthMethod) {
        if !self.0.contains(&method) {
            self.0.push(method);
            self.0.sort();
        }
    }

    /// Whether the session used this method.
    pub fn contains(&self, method: AuthMethod) -> bool {
        self.0.contains(&method)
    }

    /// The methods.
    pub fn iter(&self) -> impl Iterator<Item = AuthMethod> + '_ {
        self.0.iter().copied()
    }

    /// Whether the authentication had two distinct factors: a password and a second
    /// factor, or a passkey (possession plus user verification).
    pub fn multi_factor(&self) -> bool {
        self.contains(AuthMethod::Passkey)
            || (self.contains(AuthMethod::Password)
                && self.iter().any(AuthMethod::is_second_factor))
    }

    /// The stored form: names joined by commas.
    pub(crate) fn to_db(&self) -> String {
        self.iter()
            .map(AuthMethod::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads the stored form; a name this version does not know is a corrupt row (it would
    /// otherwise be silently dropped and the session look weaker or stronger than it was).
    pub(crate) fn from_db(text: &str) -> Result<Methods> {
        let mut out = Methods::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let method = AuthMethod::parse(name).ok_or_else(|| {
                Error::corrupt(
                    "web_sessions.authn_methods",
                    format!("unknown authentication method {name:?}"),
                )
            })?;
            out.add(method);
        }
        Ok(out)
    }
}

/// The `used_for` of an `mfa.recovery_code_use` event whose code signed the user in (or
/// stepped a session up).
pub const USED_FOR_SIGN_IN: &str = "sign_in";
/// The `used_for` of an `mfa.recovery_code_use` event whose code was the second factor of a
/// password reset ([`crate::enrollment::Enrollment::redeem_with_code`]).
pub const USED_FOR_PASSWORD_RESET: &str = "password_reset";

/// Why a second-factor operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// A code that is not what it must be (TOTP: exactly 6 digits; recovery code: 16
    /// letters and digits, dashes and spaces ignored). Refused before any slot is taken.
    #[error("the code is malformed: {0}")]
    MalformedCode(&'static str),
    /// No pending TOTP enrolment of this user has this id (unknown, someone else's, expired
    /// or already confirmed).
    #[error("no pending TOTP enrolment {0:?} for this user")]
    NoPendingEnrolment(String),
    /// The user has as many factors as allowed.
    #[error("this user already has {0} TOTP factors, the most allowed")]
    TooManyFactors(usize),
    /// A factor name is empty or too long.
    #[error("invalid factor name: {0}")]
    InvalidName(&'static str),
    /// The sealing key (KEK) is missing, wrong, or a sealed secret did not open.
    #[error(transparent)]
    Sealing(#[from] KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<sqlx::Error> for MfaError {
    fn from(e: sqlx::Error) -> Self {
        MfaError::Store(Error::from(e))
    }
}

/// Which kind of factor a [`FactorInfo`] describes.
/// A TOTP or recovery code checked (throttled like any code, the throttle's slots held) but
/// not yet used up: [`totp::Totp::check_for_later`] and
/// [`recovery::RecoveryCodes::check_for_later`] make one, and the transaction that needs the
/// second factor uses it up with the rest of its work
/// ([`crate::enrollment::Enrollment::redeem_with_code`]), so a failure after the check that
/// is not the user's (the hash pool busy, a parallel post that used the link) leaves them
/// the code. The use is conditional (the TOTP step still newer than the factor's last, the
/// recovery code still there): of parallel uses of one code, one passes.
#[must_use]
#[derive(Debug)]
pub struct CheckedCode {
    user: crate::ids::UserId,
    username: String,
    address: String,
    kind: CheckedKind,
    attempt: crate::session::Attempt,
}

#[derive(Debug)]
enum CheckedKind {
    Totp { factor_id: String, step: i64 },
    Recovery { code_hash: String },
}

impl CheckedCode {
    /// Which method the code is: [`AuthMethod::Totp`] or [`AuthMethod::RecoveryCode`].
    pub fn method(&self) -> AuthMethod {
        match self.kind {
            CheckedKind::Totp { .. } => AuthMethod::Totp,
            CheckedKind::Recovery { .. } => AuthMethod::RecoveryCode,
        }
    }

    /// The user whose code this is.
    pub fn user(&self) -> crate::ids::UserId {
        self.user
    }

    /// Uses the code up in the caller's transaction: `false` (nothing written) if another
    /// use took it since the check. A recovery code's use is audited there too, as
    /// `mfa.recovery_code_use` with `used_for` [`USED_FOR_PASSWORD_RESET`] (a sign-in's says
    /// [`USED_FOR_SIGN_IN`]).
    pub(crate) async fn use_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        now: OffsetDateTime,
    ) -> Result<bool> {
        match &self.kind {
            CheckedKind::Totp { factor_id, step } => Ok(sqlx::query(
                "UPDATE mfa_totp SET last_step = $1, last_used_at = $2 \
                 WHERE id = $3 AND user_id = $4 AND confirmed = 1 AND last_step < $1",
            )
            .bind(*step)
            .bind(timestamp::format(now))
            .bind(factor_id)
            .bind(self.user.to_db())
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1),
            CheckedKind::Recovery { code_hash } => {
                let used = sqlx::query(
                    "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2",
                )
                .bind(self.user.to_db())
                .bind(code_hash)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if used != 1 {
                    return Ok(false);
                }
                let remaining: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1",
                )
                .bind(self.user.to_db())
                .fetch_one(&mut *conn)
                .await?;
                audit::record(
                    conn,
                    &Actor::user(self.user),
                    now,
                    Change {
                        action: "mfa.recovery_code_use",
                        target_kind: "user",
                        target_id: self.user.to_string(),
                        target_name: self.username.clone(),
                        before: None,
                        after: Some(serde_json::json!({
                            "address": self.address,
                            "remaining": remaining,
                            "used_for": USED_FOR_PASSWORD_RESET,
                        })),
                    },
                )
                .await?;
                Ok(true)
            }
        }
    }

    /// The throttle's slots, for [`crate::session::Throttle::succeeded`] once the use is
    /// committed.
    pub(crate) fn into_attempt(self) -> crate::session::Attempt {
        self.attempt
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// A TOTP authenticator app.
    Totp,
    /// The set of recovery codes (one entry, with how many are left).
    RecoveryCodes,
    /// A passkey or security key (WebAuthn), enrolled at `/webauthn`.
    Webauthn,
}

/// A factor as admins and the account page see it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorInfo {
    /// The factor's id (TOTP, WebAuthn credential), or `recovery-codes`.
    pub id: String,
    /// What kind of factor.
    pub kind: FactorKind,
    /// The name the user gave it (`recovery codes` for the set of codes).
    pub name: String,
    /// When it was enrolled (the codes: generated).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Recovery codes left (only for the codes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
}

/// What a user has to step up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Available {
    /// A confirmed TOTP app.
    pub totp: bool,
    /// A passkey or security key.
    pub webauthn: bool,
    /// Unused recovery codes.
    pub recovery_codes: i64,
}

impl Available {
    /// Whether the user has a second factor: a confirmed TOTP app or a WebAuthn credential.
    /// This is the one definition every page and policy asks (through here or
    /// [`Factors::has_factor`]). Recovery codes do not count: they are the way back in when
    /// a factor is lost, not a factor to enrol, and a user left with codes alone is asked to
    /// enrol one.
    pub fn any_factor(&self) -> bool {
        self.totp || self.webauthn
    }

    /// Whether a session that used `methods` must step up before it changes this user's
    /// factors (adds, renames or removes one, makes new recovery codes): a user who has a
    /// second factor changes them only from a session that used one, or a stolen password
    /// would be enough to enrol the thief's own authenticator. A user with none may add
    /// their first from a password session.
    pub fn step_up_needed(&self, methods: &Methods) -> bool {
        self.any_factor() && !methods.multi_factor()
    }
}

/// The admin view of users' factors.
#[derive(Debug, Clone, Copy)]
pub struct Factors<'s> {
    store: &'s Store,
}

impl<'s> Factors<'s> {
    /// Factors in `store`.
    pub fn new(store: &'s Store) -> Self {
        Factors { store }
    }

    /// A user's confirmed factors: TOTP apps and WebAuthn credentials oldest first, then the
    /// recovery codes (pending enrolments are not factors).
    pub async fn list(&self, user: &User) -> Result<Vec<FactorInfo>> {
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM mfa_totp \
             WHERE user_id = $1 AND confirmed = 1 ORDER BY created_at, id",
        )
        .bind(user.id.to_db())
        .fetch_all(self.store.pool())
        .await?;
        let keys = crate::webauthn::Credentials::new(self.store)
            .list(user.id)
            .await?;
        let mut out = Vec::with_capacity(rows.len() + keys.len() + 1);
        for key in keys {
            out.push(FactorInfo {
                id: key.id.to_string(),
                kind: FactorKind::Webauthn,
                name: key.name,
                created_at: key.created_at,
                last_used_at: key.last_used_at,
                remaining: None,
            });
        }
        for (id, name, created, used) in rows {
            out.push(FactorInfo {
                id,
                kind: FactorKind::Totp,
                name,
                created_at: timestamp::parse("mfa_totp.created_at", &created)?,
                last_used_at: used
                    .map(|u| timestamp::parse("mfa_totp.last_used_at", &u))
                    .transpose()?,
                remaining: None,
            });
        }
        // Stable: equal times keep TOTP before keys, as a second-resolution clock may give.
        out.sort_by_key(|f| f.created_at);
        let (left, created): (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM mfa_recovery_codes WHERE user_id = $1",
        )
        .bind(user.id.to_db())
        .fetch_one(self.store.pool())
        .await?;
        if let Some(created) = created {
            let used: Option<String> = sqlx::query_scalar(
                "SELECT MAX(at) FROM audit_events WHERE action = 'mfa.recovery_code_use' \
                 AND target_id = $1",
            )
            .bind(user.id.to_db())
            .fetch_one(self.store.pool())
            .await?;
            out.push(FactorInfo {
                id: "recovery-codes".into(),
                kind: FactorKind::RecoveryCodes,
                name: "recovery codes".into(),
                created_at: timestamp::parse("mfa_recovery_codes.created_at", &created)?,
                last_used_at: used
                    .map(|u| timestamp::parse("audit_events.at", &u))
                    .transpose()?,
                remaining: Some(left),
            });
        }
        Ok(out)
    }

    /// Whether the user has a second factor ([`Available::any_factor`], the one definition).
    pub async fn has_factor(&self, user: &User) -> Result<bool> {
        Ok(self.available(user).await?.any_factor())
    }

    /// What a user can step up with, for the second-step page: the forms it shows.
    pub async fn available(&self, user: &User) -> Result<Available> {
        let (totp, keys, codes): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM mfa_totp WHERE user_id = $1 AND confirmed = 1), \
             (SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = $1), \
             (SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1)",
        )
        .bind(user.id.to_db())
        .fetch_one(self.store.pool())
        .await?;
        Ok(Available {
            totp: totp > 0,
            webauthn: keys > 0,
            recovery_codes: codes,
        })
    }

    /// Removes every factor of a user (TOTP, pending enrolments, WebAuthn credentials,
    /// recovery codes), for a user who lost their device; one audit event with what was
    /// removed. Returns how many factors went. An admin's change (console, API, CLI): every
    /// session of the user ends in the same transaction (`user.sessions_end`, reason
    /// `mfa_reset`; [`crate::session::Keep::Nothing`]), since whoever holds the lost device may be
    /// signed in with it.
    pub async fn reset(&self, actor: &Actor, user: &User) -> Result<usize> {
        let before = self.list(user).await?;
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM webauthn_credentials WHERE user_id = $1")
            .bind(user.id.to_db())
            .execute(&mut *tx)
            .await?;
        audit::record(
            store::conn(&mut tx),
            actor,
            now,
            Change {
                action: "mfa.reset",
                target_kind: "user",
                target_id: user.id.to_string(),
                target_name: user.username.clone(),
                before: audit::snapshot(&before),
                after: None,
            },
        )
        .await?;
        crate::session::end_for_credential_change(
            store::conn(&mut tx),
            actor,
            user.id,
            &user.username,
            crate::session::Keep::Nothing,
            "mfa_reset",
            None,
            now,
        )
        .await?;
        store::commit(tx).await?;
        Ok(before.len())
    }
}
