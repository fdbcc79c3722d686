//! Audit events: one per login, carrying the plan that was applied or refused, and one per
//! response the ACS refused before JIT ran.

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
    /// The full decision.
    pub plan: ProvisioningPlan,
}

/// The kinds of audit event JIT writes.
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
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}
