//! Audit events: one per login, carrying the plan that was applied or refused, one per
//! response the ACS refused before JIT ran, one per single-logout step (started, answered,
//! asked by the IdP, refused), one per SCIM write, and one per purge of old events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::jit::ProvisioningPlan;

/// One entry of the app's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The event's own ID.
    pub id: Uuid,
    /// The ID shown to the person on the result page, so an admin can find this entry.
    pub operation_id: Uuid,
    /// When the login was processed.
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: AuditKind,
    /// The account concerned, when there is one.
    pub account_id: Option<Uuid>,
    /// The asserting IdP.
    pub idp_entity_id: String,
    /// The identity key, when one was resolved.
    pub identity_key: Option<String>,
    /// The assertion's SessionIndex.
    pub session_index: Option<String>,
    /// Who made a change that was not a login: the name of the SCIM token used. `None` for
    /// logins and logouts, whose actor is the person.
    #[serde(default)]
    pub actor: Option<String>,
    /// The full decision. For a logout event (`slo.*`) JIT decided nothing: the plan's action
    /// is [`PlanAction::Logout`](crate::jit::PlanAction::Logout) with the [`LogoutRecord`], so
    /// every row of the log has the same shape.
    pub plan: ProvisioningPlan,
}

impl AuditEvent {
    /// A new event's ID: a UUID whose first 48 bits are `at` in Unix milliseconds (the
    /// version 7 layout), the rest random. On PostgreSQL events written in time order then
    /// land at the end of the table's primary-key index, not on a random page of it each
    /// time, and the log is listed in that index's order, with no index on the time of its
    /// own. (SQLite's log has no key: it is listed by the order of its commits.)
    pub fn id_at(at: OffsetDateTime) -> Uuid {
        let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let random = crate::ids::random_uuid();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&random.as_bytes()[6..]);
        uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
    }
}

/// What a single-logout audit event records. The variant matches the event's [`AuditKind`]
/// ([`LogoutRecord::kind`]).
///
/// JSON shape (inside the plan): `{"identity": null, "action": "logout", "event": "started" |
/// "completed" | "partial" | "received" | "refused", ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogoutRecord {
    /// We sent the person to the IdP with a LogoutRequest.
    Started {
        /// Our LogoutRequest's ID, which the IdP's answer must name.
        request_id: String,
        /// The principal's NameID.
        name_id: String,
        /// The IdP session asked to end.
        session_index: Option<String>,
    },
    /// The IdP answered our LogoutRequest: every session ended.
    Completed {
        /// Our LogoutRequest's ID.
        request_id: String,
    },
    /// The IdP answered our LogoutRequest, but not every session could be ended.
    Partial {
        /// Our LogoutRequest's ID.
        request_id: String,
        /// The IdP's status (second-level code when there is one).
        status: String,
    },
    /// The IdP asked us to end sessions, and the application ended them.
    Received {
        /// The IdP's LogoutRequest ID.
        request_id: String,
        /// The principal's NameID.
        name_id: String,
        /// The IdP sessions named; empty means all of the principal's.
        session_indexes: Vec<String>,
        /// How many local sessions the application ended.
        sessions_ended: u64,
    },
    /// A logout message was refused; it ended no session.
    Refused {
        /// The stable error code (`SIGNATURE_INVALID`, `LOGOUT_REPLAYED`, ...).
        code: String,
        /// What was wrong.
        detail: String,
    },
}

impl LogoutRecord {
    /// The audit kind an event holding this record has.
    pub fn kind(&self) -> AuditKind {
        match self {
            Self::Started { .. } => AuditKind::LogoutStarted,
            Self::Completed { .. } => AuditKind::LogoutCompleted,
            Self::Partial { .. } => AuditKind::LogoutPartial,
            Self::Received { .. } => AuditKind::LogoutReceived,
            Self::Refused { .. } => AuditKind::LogoutRefused,
        }
    }
}

/// The kinds of audit event the SP writes: JIT and the ACS for logins, single logout for
/// logouts, SCIM for its writes, and the retention purge (`audit.purged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AuditKind {
    /// An account was created at first login.
    #[serde(rename = "jit.created")]
    Created,
    /// An existing account was updated.
    #[serde(rename = "jit.updated")]
    Updated,
    /// A login that changed nothing.
    #[serde(rename = "jit.unchanged")]
    Unchanged,
    /// A local account was linked to an identity by its IdP-asserted e-mail. Kept distinct
    /// because it is the one decision that hands an existing account to an IdP.
    #[serde(rename = "jit.linked_by_email")]
    LinkedByEmail,
    /// A login was refused.
    #[serde(rename = "jit.refused")]
    Refused,
    /// The ACS refused a response before JIT ran (bad signature, wrong audience, replay...);
    /// the plan holds a `RESPONSE_REJECTED` refusal whose detail starts with the ACS code.
    #[serde(rename = "acs.rejected")]
    Rejected,
    /// An SP-initiated logout was started: the person was sent to the IdP.
    #[serde(rename = "slo.started")]
    LogoutStarted,
    /// The IdP confirmed our logout ended every session.
    #[serde(rename = "slo.completed")]
    LogoutCompleted,
    /// The IdP answered our logout, but some sessions may live on (PartialLogout or another
    /// non-success status): worth an admin's look.
    #[serde(rename = "slo.partial")]
    LogoutPartial,
    /// The IdP asked us to end sessions (IdP-initiated logout, or another app's), and the
    /// application ended them.
    #[serde(rename = "slo.received")]
    LogoutReceived,
    /// A logout message (request or answer) was refused: forged, replayed, stale, or naming
    /// no logout of ours.
    #[serde(rename = "slo.refused")]
    LogoutRefused,
    /// SCIM created an account (or took over the one JIT had made for that identity).
    #[serde(rename = "scim.created")]
    ScimCreated,
    /// SCIM changed an account: its resource, fields, roles, or `active`.
    #[serde(rename = "scim.updated")]
    ScimUpdated,
    /// SCIM set `active` to false: logins are refused and sessions ended.
    #[serde(rename = "scim.disabled")]
    ScimDisabled,
    /// SCIM deleted a user: the account was disabled or deleted, as the contract's
    /// `deprovision` says.
    #[serde(rename = "scim.deleted")]
    ScimDeleted,
    /// The contract refused a SCIM write; nothing was changed.
    #[serde(rename = "scim.refused")]
    ScimRefused,
    /// SCIM created, changed or deleted a group (its members' roles are separate events).
    #[serde(rename = "scim.group")]
    ScimGroup,
    /// Events older than the retention (`[audit] retain_days`) were deleted; the plan's
    /// [`PlanAction::Purge`](crate::jit::PlanAction::Purge) says how many and the cutoff.
    /// Written after the deletion, by the purge that made it, which never deletes it.
    #[serde(rename = "audit.purged")]
    Purged,
}

impl AuditKind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "jit.created",
            Self::Updated => "jit.updated",
            Self::Unchanged => "jit.unchanged",
            Self::LinkedByEmail => "jit.linked_by_email",
            Self::Refused => "jit.refused",
            Self::Rejected => "acs.rejected",
            Self::LogoutStarted => "slo.started",
            Self::LogoutCompleted => "slo.completed",
            Self::LogoutPartial => "slo.partial",
            Self::LogoutReceived => "slo.received",
            Self::LogoutRefused => "slo.refused",
            Self::ScimCreated => "scim.created",
            Self::ScimUpdated => "scim.updated",
            Self::ScimDisabled => "scim.disabled",
            Self::ScimDeleted => "scim.deleted",
            Self::ScimRefused => "scim.refused",
            Self::ScimGroup => "scim.group",
            Self::Purged => "audit.purged",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Updated,
            Self::Unchanged,
            Self::LinkedByEmail,
            Self::Refused,
            Self::Rejected,
            Self::LogoutStarted,
            Self::LogoutCompleted,
            Self::LogoutPartial,
            Self::LogoutReceived,
            Self::LogoutRefused,
            Self::ScimCreated,
            Self::ScimUpdated,
            Self::ScimDisabled,
            Self::ScimDeleted,
            Self::ScimRefused,
            Self::ScimGroup,
            Self::Purged,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}
