//! Single logout with its audit trail: each step of [`ServiceProvider`]'s logout, followed by
//! the `slo.*` event in the app's audit log, written the way the JIT engine writes its own
//! (one transaction per event on the [`AccountStore`]).
//!
//! An application that uses these instead of the bare [`ServiceProvider`] methods gets, under
//! one operation ID per event (in the log line, the audit row and the error page alike):
//! `slo.started` when it sends the person to the IdP, `slo.completed` or `slo.partial` when
//! the IdP answers, `slo.received` once it has ended the sessions an IdP's LogoutRequest
//! names, and `slo.refused` (with the error code) for any logout message it refused.
//!
//! # Security
//! A step whose audit event cannot be written fails: a logout that an admin cannot find
//! later should not look done. The exception is a refusal, which is refused whatever the
//! audit store says (its write failure is logged).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{IdpLogoutRequest, LogoutOutcome, LogoutRedirect, SloMessage, SloReceived};
use crate::acs::SamlLogin;
use crate::error::Error;
use crate::jit::{PlanAction, ProvisioningPlan};
use crate::provider::ServiceProvider;
use crate::replay::ReplayCache;
use crate::store::{AccountStore, AccountTx, AuditEvent, LogoutRecord};

/// A logout step that failed, with the operation ID of its log line and audit event.
#[derive(Debug)]
pub struct LogoutFailure {
    /// Why.
    pub error: Error,
    /// The ID on the error page, in the log line and in the audit event (when one was
    /// written: every refused message has one).
    pub operation_id: Uuid,
}

impl LogoutFailure {
    /// The stable code.
    pub fn code(&self) -> crate::error::Code {
        self.error.code()
    }
}

/// An SP-initiated logout under way.
#[derive(Debug, Clone)]
pub struct LogoutStarted {
    /// Where to send the browser.
    pub redirect: LogoutRedirect,
    /// The `slo.started` event's operation ID.
    pub operation_id: Uuid,
}

/// A logout message our SingleLogoutService accepted.
#[derive(Debug)]
pub struct LogoutReceived {
    /// The message.
    pub received: SloReceived,
    /// For the IdP's answer to our logout, the `slo.completed` or `slo.partial` event's
    /// operation ID. For an IdP's LogoutRequest, the ID [`answer`] will audit under.
    pub operation_id: Uuid,
}

/// [`ServiceProvider::start_logout`], audited as `slo.started` (with `account_id`, the local
/// account of the session being ended, when the application knows it).
///
/// The event is written after the request is remembered and before the browser is sent
/// anywhere; if it cannot be written the logout is not started (the remembered request
/// simply expires).
pub async fn start<S: AccountStore>(
    sp: &ServiceProvider,
    store: &S,
    login: &SamlLogin,
    account_id: Option<Uuid>,
    return_to: Option<&str>,
    now: OffsetDateTime,
) -> Result<LogoutStarted, LogoutFailure> {
    let operation_id = crate::ids::random_uuid();
    let fail = |error: Error| {
        tracing::warn!(%operation_id, code = error.code().as_str(), %error, "single logout not started");
        LogoutFailure {
            error,
            operation_id,
        }
    };
    let redirect = sp.start_logout(login, return_to, now).await.map_err(fail)?;
    let record = LogoutRecord::Started {
        request_id: redirect.request.request_id.clone(),
        name_id: login.name_id.clone(),
        session_index: login.session_index.clone(),
    };
    let event = Event {
        operation_id,
        account_id,
        session_index: login.session_index.clone(),
    };
    write(store, sp, event, record, now).await.map_err(fail)?;
    tracing::info!(%operation_id, request = %redirect.request.request_id, "single logout started");
    Ok(LogoutStarted {
        redirect,
        operation_id,
    })
}

/// [`ServiceProvider::receive_logout`], audited: the IdP's answer to our logout as
/// `slo.completed` or `slo.partial`, a refused message as `slo.refused` with its code. An
/// IdP's LogoutRequest is audited by [`answer`], once the application knows how many
/// sessions it ended.
pub async fn receive<S: AccountStore, R: ReplayCache>(
    sp: &ServiceProvider,
    replay: &R,
    store: &S,
    message: SloMessage<'_>,
    now: OffsetDateTime,
) -> Result<LogoutReceived, LogoutFailure> {
    let operation_id = crate::ids::random_uuid();
    let received = match sp.receive_logout(message, replay, now).await {
        Ok(received) => received,
        Err(error) => return Err(refuse(sp, store, operation_id, error, now).await),
    };
    if let SloReceived::Response(done) = &received {
        let record = match &done.outcome {
            LogoutOutcome::Complete => LogoutRecord::Completed {
                request_id: done.request_id.clone(),
            },
            LogoutOutcome::Partial { status } => LogoutRecord::Partial {
                request_id: done.request_id.clone(),
                status: status.clone(),
            },
        };
        let kind = record.kind();
        let event = Event {
            operation_id,
            account_id: None,
            session_index: None,
        };
        if let Err(error) = write(store, sp, event, record, now).await {
            tracing::error!(%operation_id, code = error.code().as_str(), %error, "could not audit the IdP's logout answer");
            return Err(LogoutFailure {
                error,
                operation_id,
            });
        }
        tracing::info!(%operation_id, request = %done.request_id, outcome = kind.as_str(), "single logout answered");
    }
    Ok(LogoutReceived {
        received,
        operation_id,
    })
}

/// Audits an IdP's LogoutRequest as `slo.received`, with the number of local sessions the
/// application ended for it, then returns [`ServiceProvider::answer_logout`]'s URL.
///
/// Call it after ending the sessions [`IdpLogoutRequest::matches`]: the event says they are
/// gone, so it is written even when the answer then cannot be built.
pub async fn answer<S: AccountStore>(
    sp: &ServiceProvider,
    store: &S,
    request: &IdpLogoutRequest,
    sessions_ended: usize,
    operation_id: Uuid,
    now: OffsetDateTime,
) -> Result<String, LogoutFailure> {
    let fail = |error: Error| LogoutFailure {
        error,
        operation_id,
    };
    let r = request.request();
    let record = LogoutRecord::Received {
        request_id: r.id.clone(),
        name_id: r.name_id.value.clone(),
        session_indexes: r.session_indexes.clone(),
        sessions_ended: u64::try_from(sessions_ended).unwrap_or(u64::MAX),
    };
    let event = Event {
        operation_id,
        account_id: None,
        session_index: r.session_indexes.first().cloned(),
    };
    write(store, sp, event, record, now).await.map_err(fail)?;
    tracing::info!(%operation_id, request = %r.id, sessions_ended, "the IdP ended sessions here");
    sp.answer_logout(request, now).map_err(|error| {
        tracing::error!(%operation_id, code = error.code().as_str(), %error, "cannot answer the IdP's logout");
        fail(error)
    })
}

/// Writes a `slo.refused` event for a logout message refused outside [`receive`] (a form the
/// web framework could not read, say), under `operation_id`, unless this minute's bound of
/// audited refusals is reached ([`crate::refusals`]): anyone can post to the SLO endpoint.
/// The caller logs the refusal either way.
pub async fn audit_refusal<S: AccountStore>(
    sp: &ServiceProvider,
    store: &S,
    operation_id: Uuid,
    error: &Error,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let budget = sp.refusals().take(now);
    if budget == crate::refusals::Record::LogOnly {
        return Ok(());
    }
    let record = LogoutRecord::Refused {
        code: error.code().as_str().to_owned(),
        detail: format!("{error}{}", budget.note()),
    };
    let event = Event {
        operation_id,
        account_id: None,
        session_index: None,
    };
    write(store, sp, event, record, now).await
}

/// Logs and audits a refused message; the refusal stands even if the audit write fails.
async fn refuse<S: AccountStore>(
    sp: &ServiceProvider,
    store: &S,
    operation_id: Uuid,
    error: Error,
    now: OffsetDateTime,
) -> LogoutFailure {
    tracing::warn!(%operation_id, code = error.code().as_str(), %error, "logout message refused");
    if let Err(audit_error) = audit_refusal(sp, store, operation_id, &error, now).await {
        tracing::error!(%operation_id, error = %audit_error, "could not audit the refusal");
    }
    LogoutFailure {
        error,
        operation_id,
    }
}

/// The columns of a logout event that vary by step.
struct Event {
    operation_id: Uuid,
    account_id: Option<Uuid>,
    session_index: Option<String>,
}

/// Appends one logout event in its own transaction, as the engine does for a refusal.
async fn write<S: AccountStore>(
    store: &S,
    sp: &ServiceProvider,
    event: Event,
    record: LogoutRecord,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let event = AuditEvent {
        id: AuditEvent::id_at(now),
        operation_id: event.operation_id,
        at: now,
        kind: record.kind(),
        account_id: event.account_id,
        idp_entity_id: sp.idp().entity_id.clone(),
        identity_key: None,
        session_index: event.session_index,
        actor: None,
        plan: ProvisioningPlan {
            identity: None,
            action: PlanAction::Logout(record),
        },
    };
    let mut tx = store.begin().await?;
    tx.append_audit(&event).await?;
    tx.commit().await?;
    Ok(())
}
