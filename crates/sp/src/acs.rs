//! The AssertionConsumerService as a chain of states, each consumed by the step that makes the
//! next, so no step can be skipped: [`VerifiedResponse`] (every profile rule passed) ->
//! [`AcceptedAssertion`] (the replay cache took its ID) -> [`ProvisioningPlan`] (dry run) or
//! [`SignedIn`] (the JIT engine applied the plan). [`VerifiedResponse::sign_in`] takes the
//! last two steps at once, in one transaction when the replay cache and the accounts share
//! the SP database.
//!
//! [`run`] chains them for an application and turns every failure into an [`AcsFailure`] with
//! a stable code and an operation ID that is also in the log and the audit trail.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use latchkey_saml::profile::AuthenticatedSubject;

use crate::binding::BrowserBinding;
use crate::error::{Error, ReplayError};
use crate::jit::{
    AssertionUse, JitEngine, LoginFacts, PendingUse, Provisioned, ProvisioningPlan, Refusal,
    RefusalCode,
};
use crate::login::SqlPendingRequests;
use crate::provider::{AcsForm, ServiceProvider};
use crate::refusals::Record;
use crate::replay::ReplayCache;
use crate::store::{AccountStore, AccountTx, AuditEvent, AuditKind};

/// A Response that passed every profile rule. Not yet checked against the replay cache.
#[derive(Debug, Clone)]
pub struct VerifiedResponse {
    subject: AuthenticatedSubject,
    return_to: Option<String>,
    /// The pending request it answers, when still to be used up: [`run`] reads a request kept
    /// in the SP database without taking it, and the login's transaction uses it up.
    pending: Option<PendingClaim>,
}

/// A pending request read (not taken) before verification, to use up with the login.
#[derive(Debug, Clone)]
pub(crate) struct PendingClaim {
    pub(crate) store: SqlPendingRequests,
    pub(crate) relay_state: String,
    pub(crate) request_id: String,
}

/// An assertion the replay cache accepted: it has not been used before and cannot be again.
#[derive(Debug, Clone)]
pub struct AcceptedAssertion {
    login: SamlLogin,
    facts: LoginFacts,
    return_to: Option<String>,
}

/// The SAML facts of a login, as an application shows them and keeps them in its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SamlLogin {
    /// The IdP's entity ID.
    pub issuer: String,
    /// The NameID value.
    pub name_id: String,
    /// The NameID format (absent: unspecified).
    pub name_id_format: Option<String>,
    /// The IdP session index.
    pub session_index: Option<String>,
    /// The assertion's ID.
    pub assertion_id: String,
    /// When the person authenticated at the IdP.
    #[serde(with = "time::serde::rfc3339")]
    pub authn_instant: OffsetDateTime,
    /// How they authenticated, as the IdP states it (`AuthnContextClassRef`: e.g.
    /// `...:PasswordProtectedTransport`, or `https://refeds.org/profile/mfa` after a second
    /// factor); an application that needs MFA checks this.
    pub authn_context_class_ref: Option<String>,
    /// When the IdP wants the SP session to end.
    #[serde(with = "time::serde::rfc3339::option")]
    pub session_not_on_or_after: Option<OffsetDateTime>,
    /// Attributes as received: Name -> values in order.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A completed login: who, what JIT did, and where to go next.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The SAML facts.
    pub login: SamlLogin,
    /// The account and the plan applied.
    pub provisioned: Provisioned,
    /// The local path the login started from, if any.
    pub return_to: Option<String>,
}

/// A login the ACS refused.
#[derive(Debug)]
pub struct AcsFailure {
    /// Why.
    pub error: Error,
    /// The ID on the error page, in the log line and in the audit event.
    pub operation_id: Uuid,
}

impl AcsFailure {
    /// The stable code.
    pub fn code(&self) -> crate::error::Code {
        self.error.code()
    }
}

impl VerifiedResponse {
    pub(crate) fn new(subject: AuthenticatedSubject, return_to: Option<String>) -> Self {
        Self {
            subject,
            return_to,
            pending: None,
        }
    }

    /// A Response answering a pending request that is still to be used up ([`run`]).
    pub(crate) fn answering(
        subject: AuthenticatedSubject,
        return_to: Option<String>,
        pending: PendingClaim,
    ) -> Self {
        Self {
            subject,
            return_to,
            pending: Some(pending),
        }
    }

    /// The authenticated subject, as the profile read it from the verified assertion.
    pub fn subject(&self) -> &AuthenticatedSubject {
        &self.subject
    }

    /// Records the assertion ID in `cache` until the assertion can no longer be accepted;
    /// refuses a replay.
    pub async fn accept<R: ReplayCache>(
        self,
        cache: &R,
        now: OffsetDateTime,
    ) -> Result<AcceptedAssertion, Error> {
        if let Some(claim) = &self.pending
            && !claim.store.take_back(&claim.relay_state).await?
        {
            return Err(Error::request_used(&claim.request_id));
        }
        cache
            .check_and_store(
                &self.subject.assertion_id,
                self.subject.issue_instant,
                self.subject.replay_expiry,
                now,
            )
            .await?;
        Ok(self.into_accepted())
    }

    /// Records the assertion ID in `cache` and applies the JIT plan: [`Self::accept`] then
    /// [`AcceptedAssertion::provision`], with the same outcomes.
    ///
    /// When `cache` and the engine's store are on one SP database (a [`SqlReplayCache`]
    /// and a [`SqlAccountStore`](crate::store::SqlAccountStore) over clones of one
    /// [`Database`](crate::store::Database)), both happen in the login's single
    /// transaction: one commit instead of two, and a login that fails on a store error
    /// leaves its assertion unused (nothing else of it was kept either). A Response from
    /// [`run`] that answers a pending request kept in that database too has the request used
    /// up in that same transaction, first: if another login used it meanwhile, this one is
    /// refused as a second use of the request is (`IN_RESPONSE_TO_MISMATCH`) and nothing of
    /// it is kept; a store error leaves the request in place with the rest.
    ///
    /// [`SqlReplayCache`]: crate::replay::SqlReplayCache
    pub async fn sign_in<S: AccountStore, R: ReplayCache>(
        mut self,
        cache: &R,
        engine: &JitEngine<S>,
        now: OffsetDateTime,
    ) -> Result<SignedIn, Error> {
        let joined = match (cache.database(), engine.store().database()) {
            (Some(cache_db), Some(store_db)) => {
                cache_db.same_as(store_db)
                    && self
                        .pending
                        .as_ref()
                        .is_none_or(|p| p.store.database().same_as(store_db))
            }
            _ => false,
        };
        if !joined {
            return self.accept(cache, now).await?.provision(engine, now).await;
        }
        let pending = self.pending.take();
        let (issued_at, not_on_or_after) = (self.subject.issue_instant, self.subject.replay_expiry);
        if not_on_or_after <= now {
            use_up(pending.as_ref()).await?;
            return Err(ReplayError::Expired(self.subject.assertion_id).into());
        }
        if let Some(db) = cache.database() {
            db.prune_replay_cache_if_due(now).await?;
            if crate::replay::legacy_entry_holds(db, &self.subject.assertion_id, now).await? {
                // Refused as a replay found in the login's transaction is: the request is
                // used up all the same.
                use_up(pending.as_ref()).await?;
                return Err(ReplayError::Replayed(self.subject.assertion_id).into());
            }
        }
        let AcceptedAssertion {
            login,
            facts,
            return_to,
        } = self.into_accepted();
        let assertion = AssertionUse {
            id: &login.assertion_id,
            issued_at,
            not_on_or_after,
            answers: pending.as_ref().map(|p| PendingUse {
                relay_state: &p.relay_state,
                request_id: &p.request_id,
            }),
        };
        // The facts are the writer's to keep (its job outlives this call's borrows).
        let provisioned = match engine.login_once(facts, assertion, now).await {
            Ok(provisioned) => provisioned,
            Err(error @ Error::Replay(ReplayError::Replayed(_) | ReplayError::Expired(_))) => {
                // Refused, and rolled back with the request's use: used up all the same (a
                // full cache is a busy answer, which uses nothing up).
                use_up(pending.as_ref()).await?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        Ok(SignedIn {
            login,
            provisioned,
            return_to,
        })
    }

    /// The next state, once the replay cache has taken the ID (or is about to, in the same
    /// transaction as the login). Takes the subject apart rather than copying it: the login
    /// and JIT's facts share only the attributes, copied once.
    fn into_accepted(self) -> AcceptedAssertion {
        let login = saml_login(self.subject);
        let facts = LoginFacts {
            idp_entity_id: login.issuer.clone(),
            name_id: login.name_id.clone(),
            name_id_format: login.name_id_format.clone(),
            session_index: login.session_index.clone(),
            attributes: login.attributes.clone(),
            authn_instant: Some(login.authn_instant),
        };
        AcceptedAssertion {
            login,
            facts,
            return_to: self.return_to,
        }
    }
}

impl AcceptedAssertion {
    /// The SAML facts.
    pub fn login(&self) -> &SamlLogin {
        &self.login
    }

    /// What JIT sees.
    pub fn facts(&self) -> &LoginFacts {
        &self.facts
    }

    /// The plan JIT would apply at `now` ([`JitEngine::plan`]), without applying or
    /// auditing it.
    pub async fn plan<S: AccountStore>(
        &self,
        engine: &JitEngine<S>,
        now: OffsetDateTime,
    ) -> Result<ProvisioningPlan, Error> {
        engine.plan(&self.facts, now).await
    }

    /// Applies the JIT plan in one transaction with its audit event.
    pub async fn provision<S: AccountStore>(
        self,
        engine: &JitEngine<S>,
        now: OffsetDateTime,
    ) -> Result<SignedIn, Error> {
        let provisioned = engine.login(&self.facts, now).await?;
        Ok(SignedIn {
            login: self.login,
            provisioned,
            return_to: self.return_to,
        })
    }
}

/// Uses up a pending request whose login went no further than a refusal that wrote nothing
/// (a commit of its own: only failures pay for it).
async fn use_up(pending: Option<&PendingClaim>) -> Result<(), Error> {
    match pending {
        Some(p) => p.store.discard(&p.relay_state).await,
        None => Ok(()),
    }
}

fn saml_login(s: AuthenticatedSubject) -> SamlLogin {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in s.attributes {
        attributes.entry(a.name).or_default().extend(a.values);
    }
    SamlLogin {
        issuer: s.issuer,
        name_id: s.name_id.value,
        name_id_format: s.name_id.format,
        session_index: s.session_index,
        assertion_id: s.assertion_id,
        authn_instant: s.authn_instant,
        authn_context_class_ref: s.authn_context_class_ref,
        session_not_on_or_after: s.session_not_on_or_after,
        attributes,
    }
}

/// The whole ACS: profile rules, then the replay cache and JIT ([`VerifiedResponse::sign_in`]:
/// one transaction when both are in the SP database). `browser` is what the posting request
/// presented (its `Cookie` headers): a Response to a login this SP started is honoured only
/// from the browser that started it ([`crate::binding`]).
///
/// The pending request of an SP-initiated login is used up once, whatever follows: when the
/// SP keeps it in the database of the replay cache and accounts
/// ([`ServiceProvider::with_database`]), it is read before verification and deleted in the
/// login's own transaction, so a successful login commits once (a refused one pays a commit
/// of its own to use it up: expired, from another browser, failing verification, or refused
/// by the replay cache); otherwise [`ServiceProvider::verify_response`] takes it first. Of
/// several posts of one answer at once, exactly one logs in.
///
/// On failure nothing is created or changed. A JIT refusal is audited by the engine; every
/// other refusal is audited here (`acs.rejected`, with the code and detail) under a fresh
/// operation ID, and logged with it, except a login turned away busy ([`Error::is_busy`]:
/// answer 503), which is only logged.
pub async fn run<S: AccountStore, R: ReplayCache>(
    sp: &ServiceProvider,
    form: &AcsForm,
    browser: &BrowserBinding,
    replay: &R,
    engine: &JitEngine<S>,
    now: OffsetDateTime,
) -> Result<SignedIn, AcsFailure> {
    let result = async {
        // A request kept in the login's database is read here and used up by the login's
        // own transaction (one commit); elsewhere `verify_response` takes it first.
        let one_commit = match (replay.database(), engine.store().database()) {
            (Some(cache_db), Some(store_db)) => cache_db.same_as(store_db).then_some(store_db),
            _ => None,
        };
        let verified = match one_commit {
            Some(db) => sp.verify_response_for_login(form, browser, db, now).await?,
            None => sp.verify_response(form, browser, now).await?,
        };
        verified.sign_in(replay, engine, now).await
    }
    .await;
    match result {
        Ok(done) => Ok(done),
        Err(Error::Refused {
            refusal,
            operation_id,
        }) => Err(AcsFailure {
            error: Error::Refused {
                refusal,
                operation_id,
            },
            operation_id,
        }),
        Err(error) if error.is_busy() => {
            // Turned away at a bound (the writer's queue, the replay cache's size): writing
            // an audit row for it would be one more write for a store already at its limit,
            // so the log line is its record.
            let operation_id = crate::ids::random_uuid();
            tracing::warn!(
                %operation_id,
                code = error.code().as_str(),
                detail = %error,
                "ACS turned a response away: at its bound"
            );
            Err(AcsFailure {
                error,
                operation_id,
            })
        }
        Err(error) => {
            let operation_id = crate::ids::random_uuid();
            tracing::warn!(
                %operation_id,
                code = error.code().as_str(),
                detail = %error,
                "ACS refused a response"
            );
            if let Err(audit_error) =
                audit_rejection(sp, engine.store(), operation_id, &error, now).await
            {
                tracing::error!(%operation_id, error = %audit_error, "could not audit the refusal");
            }
            Err(AcsFailure {
                error,
                operation_id,
            })
        }
    }
}

/// Writes an `acs.rejected` audit event for a response refused before JIT ran, unless this
/// minute's bound of audited refusals is reached ([`crate::refusals`]): anyone can post to
/// the ACS. The caller logs the refusal either way.
pub async fn audit_rejection<S: AccountStore>(
    sp: &ServiceProvider,
    store: &S,
    operation_id: Uuid,
    error: &Error,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let record = sp.refusals().take(now);
    if record == Record::LogOnly {
        return Ok(());
    }
    let event = AuditEvent {
        id: AuditEvent::id_at(now),
        operation_id,
        at: now,
        kind: AuditKind::Rejected,
        account_id: None,
        idp_entity_id: sp.idp().entity_id.clone(),
        identity_key: None,
        session_index: None,
        actor: None,
        plan: ProvisioningPlan::refused(
            None,
            Refusal::new(
                RefusalCode::ResponseRejected,
                format!("{}: {error}{}", error.code(), record.note()),
            ),
        ),
    };
    let mut tx = store.begin().await?;
    tx.append_audit(&event).await?;
    tx.commit().await?;
    Ok(())
}
