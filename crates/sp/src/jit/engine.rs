//! The JIT engine: look up, plan, apply and audit one login in one transaction.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Contract, EMAIL_FIELD, LoginFacts, Lookup, PlanAction, ProvisioningPlan, Refusal, RefusalCode,
    normalize_email, plan,
};
use crate::error::{Error, ReplayError, StoreError};
use crate::settings::UnchangedLogins;
#[cfg(feature = "sqlite")]
use crate::store::writer::now_or_never;
use crate::store::{
    Account, AccountStore, AccountTx, AuditEvent, AuditKind, ProvisionedBy, RoleOrigin,
};

/// Applies one application's provisioning contract to logins.
#[derive(Debug, Clone)]
pub struct JitEngine<S> {
    /// Shared with the logins this engine hands to a SQLite writer thread.
    contract: Arc<Contract>,
    store: S,
    unchanged: UnchangedLogins,
}

/// What a successful login did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new account was created.
    Created,
    /// A local account was linked by e-mail.
    Linked,
    /// The account was updated.
    Updated,
    /// Nothing needed changing.
    Unchanged,
}

/// A login JIT let through.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The account as it is after the login.
    pub account: Account,
    /// What happened.
    pub outcome: Outcome,
    /// The plan that was applied (also in the audit log).
    pub plan: ProvisioningPlan,
    /// The ID of the audit event, to carry into the session's logs.
    pub operation_id: Uuid,
}

/// An assertion to record in the replay cache within the login's transaction.
#[derive(Clone, Copy)]
pub(crate) struct AssertionUse<'a> {
    /// The assertion's ID.
    pub id: &'a str,
    /// Its IssueInstant: with the ID, its key in the replay cache.
    pub issued_at: OffsetDateTime,
    /// Until when it must not be accepted again.
    pub not_on_or_after: OffsetDateTime,
    /// The pending request the login answers (an SP-initiated login whose request is kept
    /// in the same database), used up in the login's transaction, first.
    pub answers: Option<PendingUse<'a>>,
}

/// A pending request to use up in a login's transaction
/// ([`AccountTx::use_pending_request`]).
#[derive(Clone, Copy)]
pub(crate) struct PendingUse<'a> {
    /// The key it is kept under.
    pub relay_state: &'a str,
    /// Its AuthnRequest's ID, which the verified Response answers.
    pub request_id: &'a str,
}

/// The per-login values every audit event carries.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    facts: &'a LoginFacts,
    operation_id: Uuid,
    now: OffsetDateTime,
    /// The assertion to record with the audit event, when the store does so.
    assertion: Option<AssertionUse<'a>>,
    /// Whether a login that changed nothing gets an event.
    unchanged: UnchangedLogins,
}

/// What [`JitEngine::provision`] did, before the caller audits and commits.
pub(crate) enum Step {
    /// The contract refused; nothing was written.
    Refused {
        /// The refusing plan.
        plan: ProvisioningPlan,
        /// Why.
        refusal: Refusal,
        /// The account the identity already has, if any.
        account_id: Option<Uuid>,
    },
    /// The plan was applied in the transaction.
    Done {
        /// The account as it now is.
        account: Account,
        /// What happened.
        outcome: Outcome,
        /// The plan applied.
        plan: ProvisioningPlan,
    },
}

/// The state read for one decision.
struct Decision {
    lookup: Lookup,
    email: Option<String>,
    plan: ProvisioningPlan,
}

impl<S: AccountStore> JitEngine<S> {
    /// An engine applying `contract` to the accounts in `store`.
    pub fn new(contract: Contract, store: S) -> Self {
        Self {
            contract: Arc::new(contract),
            store,
            unchanged: UnchangedLogins::default(),
        }
    }

    /// The engine with `policy` for logins that change nothing (`[audit] unchanged_logins`;
    /// by default each is recorded).
    pub fn unchanged_logins(mut self, policy: UnchangedLogins) -> Self {
        self.unchanged = policy;
        self
    }

    /// The contract.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The plan this login would get at `now`, computed against the store but not applied
    /// nor audited: the refusal a real login at `now` would get too, such as
    /// [`RefusalCode::AccountDeleted`] when SCIM deleted the account after the person
    /// authenticated.
    pub async fn plan(
        &self,
        facts: &LoginFacts,
        now: OffsetDateTime,
    ) -> Result<ProvisioningPlan, Error> {
        let mut tx = self.store.begin().await?;
        // The SCIM deletions a login honours, as `provision` looks them up.
        let decision = decide(&self.contract, &mut tx, facts, Some(now)).await?;
        // Dropping the transaction rolls it back; nothing was written anyway.
        drop(tx);
        Ok(decision.plan)
    }

    /// Provisions the account for a verified login: plans, applies the plan and writes the
    /// audit event in one transaction.
    ///
    /// A refusal is audited (in its own committed transaction, with nothing else written) and
    /// returned as [`Error::Refused`], whose operation ID the error page should show.
    ///
    /// Many concurrent first logins of one person create exactly one account: the losers of
    /// the insert race see the winner's account and plan again against it.
    pub async fn login(
        &self,
        facts: &LoginFacts,
        now: OffsetDateTime,
    ) -> Result<Provisioned, Error> {
        self.login_in_tx(Cow::Borrowed(facts), None, now).await
    }

    /// [`JitEngine::login`], recording `assertion` in the store's replay cache in the same
    /// transaction ([`AccountTx::record_assertion`]): first, so a replay is refused before
    /// anything is read, or on PostgreSQL with the audit event, in its statement
    /// ([`AccountTx::records_with_audit`]), so a replay is refused before the commit and
    /// its transaction rolled back. Either way the assertion is used up exactly when the
    /// login's effects (or its refusal's audit event) are committed.
    pub(crate) async fn login_once(
        &self,
        facts: LoginFacts,
        assertion: AssertionUse<'_>,
        now: OffsetDateTime,
    ) -> Result<Provisioned, Error> {
        self.login_in_tx(Cow::Owned(facts), Some(assertion), now)
            .await
    }

    /// One login's transaction: on a SQLite file database, a job of the database's login
    /// writer (`store::writer`: the same steps, committed with the logins queued beside it);
    /// elsewhere a transaction of the store's own. The writer's job owns its facts: they are
    /// copied only if the caller lends them.
    async fn login_in_tx(
        &self,
        facts: Cow<'_, LoginFacts>,
        assertion: Option<AssertionUse<'_>>,
        now: OffsetDateTime,
    ) -> Result<Provisioned, Error> {
        let operation_id = crate::ids::random_uuid();
        #[cfg(feature = "sqlite")]
        if let Some(writer) = self
            .store
            .database()
            .and_then(crate::store::Database::writer)
        {
            let contract = Arc::clone(&self.contract);
            let unchanged = self.unchanged;
            let facts = facts.into_owned();
            let assertion = assertion.map(|a| {
                let answers = a
                    .answers
                    .map(|p| (p.relay_state.to_owned(), p.request_id.to_owned()));
                (a.id.to_owned(), a.issued_at, a.not_on_or_after, answers)
            });
            let result = writer
                .run(move |tx| {
                    let assertion =
                        assertion
                            .as_ref()
                            .map(|(id, issued_at, until, answers)| AssertionUse {
                                id,
                                issued_at: *issued_at,
                                not_on_or_after: *until,
                                answers: answers.as_ref().map(|(relay_state, request_id)| {
                                    PendingUse {
                                        relay_state,
                                        request_id,
                                    }
                                }),
                            });
                    let attempt = Attempt {
                        facts: &facts,
                        operation_id,
                        now,
                        assertion: None,
                        unchanged,
                    };
                    now_or_never(login_steps(&contract, tx, attempt, assertion))
                })
                .await;
            return logged(result, operation_id);
        }
        let attempt = Attempt {
            facts: &facts,
            operation_id,
            now,
            assertion: None,
            unchanged: self.unchanged,
        };
        let tx = self.store.begin().await?;
        logged(
            login_steps(&self.contract, tx, attempt, assertion).await,
            operation_id,
        )
    }

    /// Plans `facts` under `contract` against what `tx` sees and applies the plan in `tx`,
    /// without auditing or committing: the one provisioning path of JIT logins and SCIM
    /// writes, whose callers each add their audit event to the same transaction.
    ///
    /// Many concurrent first logins of one person create exactly one account: the losers of
    /// the insert race see the winner's account and plan again against it.
    pub(crate) async fn provision(
        &self,
        contract: &Contract,
        tx: &mut S::Tx,
        facts: &LoginFacts,
        now: OffsetDateTime,
    ) -> Result<Step, Error> {
        provision(contract, tx, facts, now, Origin::Scim).await
    }
}

/// Says what a login did, once it is committed (or refused).
fn logged(result: Result<Provisioned, Error>, operation_id: Uuid) -> Result<Provisioned, Error> {
    match &result {
        Ok(done) => {
            let outcome = audit_kind(done.outcome).as_str();
            tracing::info!(%operation_id, account = %done.account.id, outcome, "JIT login");
        }
        Err(Error::Refused { refusal, .. }) => {
            tracing::warn!(%operation_id, code = refusal.code.as_str(), detail = %refusal.detail, "JIT refused login");
        }
        Err(_) => {}
    }
    result
}

/// The steps of one login in `tx`: record the assertion (a replay stops here, nothing
/// written), provision, audit, commit. A refusal is audited and committed too. A store that
/// records the assertion with the audit event ([`AccountTx::records_with_audit`]) gets it
/// there instead, in one trip; a replay found then stops the login all the same, and
/// dropping the transaction rolls back whatever it had done.
async fn login_steps<T: AccountTx>(
    contract: &Contract,
    mut tx: T,
    attempt: Attempt<'_>,
    assertion: Option<AssertionUse<'_>>,
) -> Result<Provisioned, Error> {
    if let Some(p) = assertion.and_then(|a| a.answers)
        && !tx.use_pending_request(p.relay_state, p.request_id).await?
    {
        // Another login used the request first: refused as a second use of it is, and
        // nothing of this one is kept (dropping the transaction rolls it back).
        return Err(Error::request_used(p.request_id));
    }
    let with_audit = assertion.filter(|_| tx.records_with_audit());
    if let Some(a) = assertion
        && with_audit.is_none()
        && !tx
            .record_assertion(a.id, a.issued_at, a.not_on_or_after, attempt.now)
            .await?
    {
        // Dropping the transaction rolls it back: nothing of this login is kept.
        return Err(ReplayError::Replayed(a.id.to_owned()).into());
    }
    let attempt = Attempt {
        assertion: with_audit,
        ..attempt
    };
    match provision(contract, &mut tx, attempt.facts, attempt.now, Origin::Login).await? {
        Step::Refused {
            plan,
            refusal,
            account_id,
        } => {
            audit(&mut tx, attempt, AuditKind::Refused, account_id, &plan).await?;
            tx.commit().await?;
            Err(Error::Refused {
                refusal,
                operation_id: attempt.operation_id,
            })
        }
        Step::Done {
            account,
            outcome,
            plan,
        } => {
            if outcome == Outcome::Unchanged && attempt.unchanged == UnchangedLogins::LogOnly {
                // No event: the assertion is recorded on its own where it would have gone
                // with the event, so a replay is still refused before the commit.
                if let Some(a) = attempt.assertion
                    && !tx
                        .record_assertion(a.id, a.issued_at, a.not_on_or_after, attempt.now)
                        .await?
                {
                    return Err(ReplayError::Replayed(a.id.to_owned()).into());
                }
            } else {
                let kind = audit_kind(outcome);
                audit(&mut tx, attempt, kind, Some(account.id), &plan).await?;
            }
            tx.commit().await?;
            Ok(Provisioned {
                account,
                outcome,
                plan,
                operation_id: attempt.operation_id,
            })
        }
    }
}

fn audit_kind(outcome: Outcome) -> AuditKind {
    match outcome {
        Outcome::Created => AuditKind::Created,
        Outcome::Linked => AuditKind::LinkedByEmail,
        Outcome::Updated => AuditKind::Updated,
        Outcome::Unchanged => AuditKind::Unchanged,
    }
}

/// Who provisions: a login honours the SCIM deletions the store remembers
/// ([`AccountTx::deleted_at`]); a SCIM write is the provisioning client itself, and may create
/// again what it deleted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Login,
    Scim,
}

/// How many times one login plans against the store at most (see [`provision`]).
const ROUNDS: usize = 2;

/// [`JitEngine::provision`], for any transaction (the SQLite writer's too).
async fn provision<T: AccountTx>(
    contract: &Contract,
    tx: &mut T,
    facts: &LoginFacts,
    now: OffsetDateTime,
    origin: Origin,
) -> Result<Step, Error> {
    let deletions = (origin == Origin::Login).then_some(now);
    // Two rounds are enough: the only reasons to retry are losing the insert race, or a
    // link's identity to a concurrent login, after which the winner's row is visible and the
    // plan is no longer `Create` or `Link`, and losing an e-mail address to a concurrent
    // login, after which the winner holds it and the plan refuses.
    for round in 0..ROUNDS {
        let decision = decide(contract, tx, facts, deletions).await?;
        let plan = decision.plan.clone();
        let identity = plan.identity.clone();
        match plan.action.clone() {
            PlanAction::Refuse(refusal) => {
                let account_id = decision.lookup.by_identity.as_ref().map(|a| a.id);
                return Ok(Step::Refused {
                    plan,
                    refusal,
                    account_id,
                });
            }
            PlanAction::Create { fields, roles } => {
                let Some(identity) = identity else {
                    break;
                };
                let mut account = Account {
                    id: Uuid::new_v4(),
                    identity: Some(identity),
                    email: decision.email,
                    fields,
                    roles: Default::default(),
                    provisioned_by: ProvisionedBy::Jit,
                    active: true,
                    created_at: now,
                    updated_at: now,
                };
                if !tx.insert_account(&account).await? {
                    continue;
                }
                for role in roles {
                    tx.grant_role(account.id, &role, RoleOrigin::Managed)
                        .await?;
                    account.roles.insert(role, RoleOrigin::Managed);
                }
                return Ok(Step::Done {
                    account,
                    outcome: Outcome::Created,
                    plan,
                });
            }
            // `plan` never produces them; a store that did would be inconsistent.
            PlanAction::Logout(_) | PlanAction::Scim(_) | PlanAction::Purge { .. } => break,
            PlanAction::Unchanged { .. } => {
                let Some(account) = decision.lookup.by_identity else {
                    break;
                };
                return Ok(Step::Done {
                    account,
                    outcome: Outcome::Unchanged,
                    plan,
                });
            }
            PlanAction::Update {
                field_changes,
                roles_added,
                roles_removed,
                ..
            }
            | PlanAction::Link {
                field_changes,
                roles_added,
                roles_removed,
                ..
            } => {
                let linking = matches!(plan.action, PlanAction::Link { .. });
                let target = if linking {
                    decision.lookup.by_email
                } else {
                    decision.lookup.by_identity
                };
                let Some(mut account) = target else {
                    break;
                };
                for change in field_changes {
                    match change.new {
                        Some(value) => account.fields.insert(change.field, value),
                        None => account.fields.remove(&change.field),
                    };
                }
                let before = account.email.take();
                account.email = account.fields.get(EMAIL_FIELD).map(|e| normalize_email(e));
                if linking {
                    account.identity = identity.clone();
                }
                account.updated_at = now;
                if linking || (account.email.is_some() && account.email != before) {
                    // The address (or, for a link, the identity) was free when `decide`
                    // looked, but a concurrent login may have taken it since: its unique
                    // index then refuses this write, and the login is planned again, once,
                    // against the winner (refused as it would have been had it come second).
                    if !tx.update_account_new_email(&account).await? {
                        if round + 1 < ROUNDS {
                            continue;
                        }
                        let refusal = Refusal::new(
                            RefusalCode::EmailBelongsToOtherAccount,
                            if linking {
                                "another account took this e-mail or identity meanwhile"
                            } else {
                                "another account took this e-mail meanwhile"
                            },
                        );
                        return Ok(Step::Refused {
                            plan: ProvisioningPlan::refused(identity, refusal.clone()),
                            refusal,
                            account_id: (!linking).then_some(account.id),
                        });
                    }
                } else {
                    tx.update_account(&account).await?;
                }
                for role in roles_added {
                    tx.grant_role(account.id, &role, RoleOrigin::Managed)
                        .await?;
                    account.roles.insert(role, RoleOrigin::Managed);
                }
                for role in roles_removed {
                    tx.revoke_managed_role(account.id, &role).await?;
                    account.roles.remove(&role);
                }
                let outcome = if linking {
                    Outcome::Linked
                } else {
                    Outcome::Updated
                };
                return Ok(Step::Done {
                    account,
                    outcome,
                    plan,
                });
            }
        }
    }
    Err(StoreError::Inconsistent(
        "account insert conflicted, yet no conflicting account is visible".to_owned(),
    )
    .into())
}

/// Reads what the plan depends on, inside `tx`, and plans. With `deletions` (a login's
/// `now`), a plan that would give the identity an account (create, or link) is refused when
/// SCIM deleted its account at or after the person authenticated
/// ([`RefusalCode::AccountDeleted`]).
async fn decide<T: AccountTx>(
    contract: &Contract,
    tx: &mut T,
    facts: &LoginFacts,
    deletions: Option<OffsetDateTime>,
) -> Result<Decision, Error> {
    let mapped = match contract.map(facts) {
        Ok(mapped) => mapped,
        Err(refusal) => {
            return Ok(Decision {
                lookup: Lookup::default(),
                email: None,
                plan: ProvisioningPlan::refused(None, refusal),
            });
        }
    };
    let mut by_identity = tx.find_by_identity(&mapped.identity).await?;
    let mut by_email = match &mapped.email {
        Some(email) if by_identity.as_ref().and_then(|a| a.email.as_ref()) != Some(email) => {
            tx.find_by_email(email).await?
        }
        _ => None,
    };
    // Under READ COMMITTED each statement sees what was committed when it started, so a
    // concurrent first login of this same person can commit between the two lookups. The
    // account found by e-mail is then this person's own, not someone else's address.
    if by_identity.is_none()
        && by_email
            .as_ref()
            .is_some_and(|a| a.identity.as_ref() == Some(&mapped.identity))
    {
        by_identity = by_email.take();
    }
    let lookup = Lookup {
        by_identity,
        by_email,
    };
    let mut plan = plan(contract, &mapped, &lookup);
    if let Some(now) = deletions
        && matches!(
            plan.action,
            PlanAction::Create { .. } | PlanAction::Link { .. }
        )
        && let Some(deleted_at) = tx.deleted_at(&mapped.identity, now).await?
        && facts.authn_instant.is_none_or(|at| at <= deleted_at)
    {
        // Under READ COMMITTED this statement starts after the identity lookup that found
        // no account, so it sees the delete that removed it (they commit together). An
        // assertion of a login in flight across the delete cannot bring the account back.
        plan = ProvisioningPlan::refused(
            plan.identity,
            Refusal::new(
                RefusalCode::AccountDeleted,
                format!(
                    "SCIM deleted this identity's account at {deleted_at}, after the person \
                     authenticated for this login"
                ),
            ),
        );
    }
    Ok(Decision {
        lookup,
        email: mapped.email,
        plan,
    })
}

async fn audit<T: AccountTx>(
    tx: &mut T,
    attempt: Attempt<'_>,
    kind: AuditKind,
    account_id: Option<Uuid>,
    plan: &ProvisioningPlan,
) -> Result<(), Error> {
    let event = AuditEvent {
        id: AuditEvent::id_at(attempt.now),
        operation_id: attempt.operation_id,
        at: attempt.now,
        kind,
        account_id,
        idp_entity_id: attempt.facts.idp_entity_id.clone(),
        identity_key: plan.identity.as_ref().map(|i| i.key.clone()),
        session_index: attempt.facts.session_index.clone(),
        actor: None,
        plan: plan.clone(),
    };
    match attempt.assertion {
        Some(a) => {
            if !tx
                .append_audit_once(&event, a.id, a.issued_at, a.not_on_or_after, attempt.now)
                .await?
            {
                return Err(ReplayError::Replayed(a.id.to_owned()).into());
            }
        }
        None => tx.append_audit(&event).await?,
    }
    Ok(())
}
