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

latchkey_saml::stable_codes! {
    /// The stable reasons JIT refuses a login. Serialised as the same SCREAMING_SNAKE codes
    /// [`RefusalCode::as_str`] returns.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    #[non_exhaustive]
    pub enum RefusalCode {
        /// The contract keys accounts on the NameID, but the NameID is not persistent, so it cannot
        /// identify the same person at the next login.
        NameIdNotPersistent = "NAME_ID_NOT_PERSISTENT",
        /// The contract keys accounts on a NameID of one format, and the NameID has another (or
        /// is empty).
        NameIdFormatMismatch = "NAME_ID_FORMAT_MISMATCH",
        /// The contract keys accounts on an attribute the IdP did not send.
        IdentityAttributeMissing = "IDENTITY_ATTRIBUTE_MISSING",
        /// The identity attribute has several values, so it does not name one person.
        IdentityAttributeMultiValued = "IDENTITY_ATTRIBUTE_MULTI_VALUED",
        /// A field marked `required` has no value in the assertion.
        RequiredAttributeMissing = "REQUIRED_ATTRIBUTE_MISSING",
        /// A single-valued account field was sent several values; picking one would be arbitrary.
        AttributeMultiValued = "ATTRIBUTE_MULTI_VALUED",
        /// No role rule matched and the contract denies such logins.
        NoMatchingRole = "NO_MATCHING_ROLE",
        /// No account exists for this identity and the contract only admits pre-provisioned ones.
        NotProvisioned = "NOT_PROVISIONED",
        /// The asserted e-mail belongs to a local account not linked to this identity, and the
        /// contract does not allow linking by e-mail.
        EmailBelongsToUnlinkedAccount = "EMAIL_BELONGS_TO_UNLINKED_ACCOUNT",
        /// The asserted e-mail belongs to an account linked to a different identity.
        EmailBelongsToOtherAccount = "EMAIL_BELONGS_TO_OTHER_ACCOUNT",
        /// The account was disabled through SCIM (`active: false`, or deleted under
        /// `deprovision = "disable"`).
        AccountDisabled = "ACCOUNT_DISABLED",
        /// The account was deleted through SCIM (`deprovision = "delete"`) at or after the
        /// moment the person authenticated for this login (the assertion's AuthnInstant), so
        /// the login may not create it again. A login authenticated after the delete creates
        /// the account anew, as a first login.
        AccountDeleted = "ACCOUNT_DELETED",
        /// The ACS refused the response before JIT ran; the detail starts with the ACS code
        /// (`DIGEST_MISMATCH`, `AUDIENCE_MISMATCH`, ...). Used only in audit events.
        ResponseRejected = "RESPONSE_REJECTED",
    }
}
