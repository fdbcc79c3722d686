//! Self-service: what a signed-in user changes and sees on their own account (the
//! `/account` page). Factors are changed through their own modules ([`crate::mfa`],
//! [`crate::webauthn`]) and sessions through [`crate::session::Sessions`]; this module
//! holds what needs more than one of them: a password change, and the sign-ins the audit
//! log recorded.
//!
//! # A password change
//! The current password is asked for even in a live session: a session left open on a
//! shared computer must not be enough to take the account over. Its check takes throttle
//! slots first, under the same keys as a sign-in with that name ([`Slot::account`],
//! [`Slot::address`]), so guessing it here counts exactly like guessing it at `/login`.
//! The new password meets the policy before any of that. The hash, the audit event and the
//! end of every *other* session of the user are one transaction: a password changed because
//! it leaked also throws out whoever used it.

use time::Duration;

use crate::audit::{Actor, AuditEvent};
use crate::directory::users::{Setter, write_password};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::password::{self, Password};
use crate::session::{Admission, Keep, Session, Slot, Throttle};
use crate::store::{self, Store};

/// The audit actions a user's sign-in history is made of.
pub const SIGN_IN_ACTIONS: [&str; 3] = ["login.success", "login.failure", "login.step_up"];

/// How a password change went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    /// Changed; this many other sessions of the user were ended.
    Changed {
        /// Sessions ended (the one that asked stays).
        sessions_ended: u64,
    },
    /// The current password was wrong; nothing changed and the guess stays counted.
    WrongPassword,
    /// Too many wrong passwords for this account or address; nothing was checked.
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
}

/// A signed-in user's own account.
#[derive(Debug, Clone, Copy)]
pub struct Account<'s> {
    store: &'s Store,
}

impl<'s> Account<'s> {
    /// Accounts in `store`.
    pub fn new(store: &'s Store) -> Self {
        Account { store }
    }

    /// Changes the password of `session`'s user from `current` to `new`, from `address`
    /// (see the module docs). A `new` password the policy refuses is
    /// [`Error::PasswordRefused`] before anything is counted or checked; a full hash pool is
    /// [`Error::Busy`], the throttle slot then given back.
    pub async fn change_password(
        &self,
        session: &Session,
        current: Password,
        new: Password,
        address: &str,
    ) -> Result<PasswordChange> {
        let user = &session.user;
        password::check_policy(&self.store.hashing().config(), &new)?;
        let throttle = Throttle::new(self.store);
        let slots = vec![Slot::account(&user.username), Slot::address(address)];
        let attempt = match throttle.admit(slots, self.store.now()).await? {
            Admission::Admitted(attempt) => attempt,
            Admission::Refused { retry_after } => {
                return Ok(PasswordChange::Throttled { retry_after });
            }
        };
        let right = match self.store.users().verify_password(user.id, current).await {
            Ok(right) => right,
            Err(e) => {
                throttle.not_checked(attempt).await?;
                return Err(e);
            }
        };
        if !right {
            return Ok(PasswordChange::WrongPassword);
        }
        throttle.succeeded(attempt).await?;
        let hash = self.store.hashing().hash(new).await?;
        let now = self.store.now();
        let actor = Actor::person(user);
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        write_password(
            &mut *conn,
            &actor,
            user.id,
            Some(hash),
            Setter::Trusted,
            now,
        )
        .await?;
        let sessions_ended = crate::session::end_for_credential_change(
            conn,
            &actor,
            user.id,
            &user.username,
            Keep::Current(session),
            "password_change",
            Some(address),
            now,
        )
        .await?;
        store::commit(tx).await?;
        Ok(PasswordChange::Changed { sessions_ended })
    }

    /// The user's latest sign-ins, failures and step-ups ([`SIGN_IN_ACTIONS`]) from the
    /// audit log, newest first, at most `limit`. A failure is here when the name typed was
    /// this account's.
    pub async fn sign_ins(&self, user: UserId, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows: Vec<crate::audit::EventRow> = sqlx::query_as(
            "SELECT seq, id, at, actor, actor_name, action, target_kind, target_id, target_name, \
             before, after FROM audit_events \
             WHERE target_id = $1 AND action IN ($2, $3, $4) ORDER BY seq DESC LIMIT $5",
        )
        .bind(user.to_string())
        .bind(SIGN_IN_ACTIONS[0])
        .bind(SIGN_IN_ACTIONS[1])
        .bind(SIGN_IN_ACTIONS[2])
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.into_iter()
            .map(crate::audit::EventRow::into_event)
            .collect::<Result<Vec<_>, Error>>()
    }
}
