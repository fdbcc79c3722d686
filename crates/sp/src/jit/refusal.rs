//! Why a login was refused, as a code that is stable across versions (for error pages, log
//! searches and tests) plus a detail for the audit log.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A refused login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The stable reason.
    pub code: RefusalCode,
    /// Which attribute, account or rule was involved, for the audit log and the admin.
    pub detail: String,
}

impl Refusal {
    pub(crate) fn new(code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

/// The stable reasons JIT refuses a login. Serialised as the same SCREAMING_SNAKE codes
/// [`RefusalCode::as_str`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum RefusalCode {
    /// The contract keys accounts on the NameID, but the NameID is not persistent, so it cannot
    /// identify the same person at the next login.
    NameIdNotPersistent,
    /// The contract keys accounts on a NameID of one format, and the NameID has another (or
    /// is empty).
    NameIdFormatMismatch,
    /// The contract keys accounts on an attribute the IdP did not send.
    IdentityAttributeMissing,
    /// The identity attribute has several values, so it does not name one person.
    IdentityAttributeMultiValued,
    /// A field marked `required` has no value in the assertion.
    RequiredAttributeMissing,
    /// A single-valued account field was sent several values; picking one would be arbitrary.
    AttributeMultiValued,
    /// No role rule matched and the contract denies such logins.
    NoMatchingRole,
    /// No account exists for this identity and the contract only admits pre-provisioned ones.
    NotProvisioned,
    /// The asserted e-mail belongs to a local account not linked to this identity, and the
    /// contract does not allow linking by e-mail.
    EmailBelongsToUnlinkedAccount,
    /// The asserted e-mail belongs to an account linked to a different identity.
    EmailBelongsToOtherAccount,
    /// The ACS refused the response before JIT ran; the detail starts with the ACS code
    /// (`SIGNATURE_INVALID`, `AUDIENCE_MISMATCH`, ...). Used only in audit events.
    ResponseRejected,
}

impl RefusalCode {
    /// The code as shown on error pages and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NameIdNotPersistent => "NAME_ID_NOT_PERSISTENT",
            Self::NameIdFormatMismatch => "NAME_ID_FORMAT_MISMATCH",
            Self::IdentityAttributeMissing => "IDENTITY_ATTRIBUTE_MISSING",
            Self::IdentityAttributeMultiValued => "IDENTITY_ATTRIBUTE_MULTI_VALUED",
            Self::RequiredAttributeMissing => "REQUIRED_ATTRIBUTE_MISSING",
            Self::AttributeMultiValued => "ATTRIBUTE_MULTI_VALUED",
            Self::NoMatchingRole => "NO_MATCHING_ROLE",
            Self::NotProvisioned => "NOT_PROVISIONED",
            Self::EmailBelongsToUnlinkedAccount => "EMAIL_BELONGS_TO_UNLINKED_ACCOUNT",
            Self::EmailBelongsToOtherAccount => "EMAIL_BELONGS_TO_OTHER_ACCOUNT",
            Self::ResponseRejected => "RESPONSE_REJECTED",
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
