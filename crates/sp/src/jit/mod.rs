//! Just-in-time provisioning: turning a verified SAML login into a local account.
//!
//! The flow is split so that every decision is a pure function and only the last step writes:
//! [`LoginFacts`] (what the IdP asserted) -> [`Contract::map`] ([`MappedLogin`], or a
//! [`Refusal`]) -> [`plan`] against what the store holds ([`ProvisioningPlan`]) ->
//! [`JitEngine::login`] applies the plan in one transaction and audits it. The plan can be
//! computed without applying it ([`JitEngine::plan`]), which is what a dry-run CLI prints.
//!
//! # Decisions worth knowing
//! - **E-mail is never an identity.** Without `link_by_email`, a first login whose asserted
//!   e-mail already belongs to a local account is refused with
//!   `EMAIL_BELONGS_TO_UNLINKED_ACCOUNT`, rather than linked (that would hand the account to
//!   whoever the IdP says owns the address) or duplicated (two accounts, one address, and the
//!   app's password reset reaching both). The admin links the account, or enables
//!   `link_by_email` for an IdP whose addresses are verified. Even then only a local account
//!   (one with no identity yet) is linked, by the address the IdP asserted (the account's
//!   own up to ASCII case: an address that only folds onto it, like one spelt with U+212A
//!   KELVIN SIGN for `k`, is refused), and the link is a distinct `jit.linked_by_email` audit
//!   event. An address held by an account of another
//!   identity is always refused (`EMAIL_BELONGS_TO_OTHER_ACCOUNT`).
//! - **Refusals change nothing.** A refused returning login (no role any more, attribute
//!   missing) leaves the account exactly as it was, managed roles included; the refusal is the
//!   audit event. Roles are withdrawn at the next successful login.
//! - **`default_role` is a fallback**, granted only when no rule matches; `deny_when_no_role`
//!   refuses in that case instead, so the contract may set one or the other, not both.
//! - **Create-only fields** are written in the `Create` plan only: not on later logins, and not
//!   when linking an account JIT did not create.
//! - **Attribute values**: an empty string counts as absent, and repeated values count once;
//!   a field fed several distinct values is refused (`ATTRIBUTE_MULTI_VALUED`) rather than
//!   picking one.

mod contract;
pub(crate) mod engine;
mod plan;
mod refusal;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use contract::{
    Condition, Contract, Deprovision, FieldRule, FirstLogin, IdentitySource, MappedLogin,
    Ownership, RoleRule,
};
pub(crate) use engine::{AssertionUse, PendingUse};
pub use engine::{JitEngine, Outcome, Provisioned};
pub use plan::{FieldChange, Lookup, PlanAction, ProvisioningPlan, ScimRecord, plan};
pub use refusal::{Refusal, RefusalCode};

/// The SAML 2.0 NameID format whose value is stable and opaque per SP, the only format safe to
/// key accounts on by default (transient IDs change every login; e-mail NameIDs get reassigned).
pub const NAMEID_FORMAT_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// The account field holding the person's e-mail address: the one kept unique across
/// accounts and, when the contract allows it, used to link a local account.
pub const EMAIL_FIELD: &str = "email";

/// What an authenticated SAML login says about the person, as the ACS hands it to JIT.
///
/// This is deliberately a plain struct rather than a SAML type: the engine must only ever see
/// data that the SAML layer has already verified, and building this struct is where the ACS
/// commits to that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFacts {
    /// The `Issuer` of the verified assertion.
    pub idp_entity_id: String,
    /// The `NameID` value of the assertion's subject.
    pub name_id: String,
    /// The `NameID` `Format` attribute; `None` when absent (which means "unspecified").
    pub name_id_format: Option<String>,
    /// The `SessionIndex` of the `AuthnStatement`, kept for the audit log and single logout.
    pub session_index: Option<String>,
    /// Attribute values by attribute `Name`, in the order the IdP sent them.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// When the person authenticated at the IdP (the assertion's `AuthnInstant`); `None`
    /// for facts that do not come from an assertion. A login for an identity whose account
    /// SCIM deleted at or after this instant is refused (`ACCOUNT_DELETED`), as is one
    /// without it, while the delete is remembered.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub authn_instant: Option<time::OffsetDateTime>,
}

/// The key an account is found by on every login: the asserting IdP plus a value that IdP
/// guarantees stable for this person.
///
/// `key` is prefixed with its source (`name_id:` or `attribute:<name>:`), so switching a
/// contract from one source to another can never match a value of one kind against the other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKey {
    /// The IdP entity ID; the same NameID from two IdPs is two different people.
    pub idp_entity_id: String,
    /// The source-prefixed stable value.
    pub key: String,
}

impl IdentityKey {
    /// The key for a persistent NameID, as the default identity source builds it. Public so an
    /// admin tool can pre-provision accounts that JIT will then recognise.
    pub fn name_id(idp_entity_id: &str, name_id: &str) -> Self {
        Self {
            idp_entity_id: idp_entity_id.to_owned(),
            key: format!("name_id:{name_id}"),
        }
    }

    /// The key for a NameID of a non-persistent `format` (an e-mail address, say). The format
    /// is part of the key, so the same text as a persistent ID is a different identity.
    pub fn name_id_of_format(idp_entity_id: &str, format: &str, name_id: &str) -> Self {
        Self {
            idp_entity_id: idp_entity_id.to_owned(),
            key: format!("name_id[{format}]:{name_id}"),
        }
    }

    /// The key for an identity read from attribute `attribute`.
    pub fn attribute(idp_entity_id: &str, attribute: &str, value: &str) -> Self {
        Self {
            idp_entity_id: idp_entity_id.to_owned(),
            key: format!("attribute:{attribute}:{value}"),
        }
    }
}

/// Normalises an e-mail address for lookups: surrounding space trimmed, lower-cased, in
/// Unicode NFC.
///
/// Local parts are case-sensitive in theory, but no mail provider in use treats them so, and
/// two accounts differing only by case would be an account-takeover trap; likewise two
/// differing only by composition (`é` as U+00E9 or as `e` U+0301), which look the same.
/// Keys stored before NFC are rewritten when the database is opened
/// ([`crate::store::Database::connect`]). Linking still needs the address itself up to
/// ASCII case (NFC maps U+212A KELVIN SIGN onto `K`), so another spelling is refused, never
/// linked.
pub fn normalize_email(email: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let email = email.trim();
    // Every login asks; ASCII (nearly every address) is its own NFC.
    if email.is_ascii() {
        return email.to_ascii_lowercase();
    }
    email.to_lowercase().nfc().collect()
}
