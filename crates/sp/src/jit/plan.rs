//! The provisioning plan: the complete, serialisable decision for one login.
//!
//! [`plan`] is a pure function of the contract, the mapped login and what the store holds, so
//! the exact same plan can be shown in a dry run, applied, and written to the audit log.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    Contract, EMAIL_FIELD, FirstLogin, IdentityKey, MappedLogin, Ownership, Refusal, RefusalCode,
};
use crate::store::{Account, LogoutRecord, RoleOrigin};

/// What JIT will do (or did) for one login.
///
/// JSON shape: `{"identity": {...} | null, "action": "create" | "link" | "update" |
/// "unchanged" | "refuse" | "logout" | "scim" | "purge", ...action fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningPlan {
    /// The identity the login resolved to; `None` when it was refused before one was known.
    pub identity: Option<IdentityKey>,
    /// The decision.
    #[serde(flatten)]
    pub action: PlanAction,
}

/// The decision in a [`ProvisioningPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlanAction {
    /// First login: create an account with these fields and managed roles.
    Create {
        /// The field values written.
        fields: BTreeMap<String, String>,
        /// The roles granted, all managed.
        roles: BTreeSet<String>,
    },
    /// First login, linked to an existing local account by the IdP-asserted e-mail (only when
    /// the contract enables it).
    Link {
        /// The local account that gains this identity.
        account_id: Uuid,
        /// The e-mail address it was matched by.
        email: String,
        /// IdP-owned fields overwritten.
        field_changes: Vec<FieldChange>,
        /// Managed roles granted.
        roles_added: BTreeSet<String>,
        /// Managed roles withdrawn.
        roles_removed: BTreeSet<String>,
    },
    /// Returning login with something to change.
    Update {
        /// The account.
        account_id: Uuid,
        /// IdP-owned fields overwritten or cleared.
        field_changes: Vec<FieldChange>,
        /// Managed roles granted.
        roles_added: BTreeSet<String>,
        /// Managed roles withdrawn because no rule grants them any more.
        roles_removed: BTreeSet<String>,
    },
    /// Returning login, account already up to date.
    Unchanged {
        /// The account.
        account_id: Uuid,
    },
    /// Refused: nothing is written but the audit event.
    Refuse(Refusal),
    /// Not a login: the record of a single-logout audit event. JIT never plans it; it lives
    /// here so that every audit row carries one plan of one shape.
    Logout(LogoutRecord),
    /// A SCIM change that is not a login-shaped plan: a deactivation, a deletion, a group.
    Scim(ScimRecord),
    /// Not a login: the record of an `audit.purged` event, written by
    /// [`SqlAccountStore::purge_audit`](crate::store::SqlAccountStore::purge_audit) after it
    /// deleted the events older than the retention allows.
    Purge {
        /// The cutoff: the events deleted were all from before this instant.
        #[serde(with = "time::serde::rfc3339")]
        before: OffsetDateTime,
        /// How many events were deleted.
        events: u64,
    },
}

/// What a SCIM audit event records beyond a login-shaped plan.
///
/// JSON shape (inside the plan): `{"identity": ... , "action": "scim", "change":
/// "deactivated" | "deleted" | "group", ...fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ScimRecord {
    /// The account was disabled (`active: false`, or a DELETE under `deprovision =
    /// "disable"`).
    Deactivated {
        /// The account.
        account_id: Uuid,
    },
    /// The account was deleted (a DELETE under `deprovision = "delete"`).
    Deleted {
        /// The account.
        account_id: Uuid,
    },
    /// A group was created, changed or deleted.
    Group {
        /// The group's id.
        group_id: Uuid,
        /// Its displayName.
        display_name: String,
        /// `created`, `updated` or `deleted`.
        operation: String,
        /// Accounts that became members.
        members_added: BTreeSet<Uuid>,
        /// Accounts that stopped being members.
        members_removed: BTreeSet<Uuid>,
    },
}

/// One field's old and new value. `None` means absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The account field.
    pub field: String,
    /// The value before.
    pub old: Option<String>,
    /// The value after; `None` when the IdP stopped sending an IdP-owned field.
    pub new: Option<String>,
}

/// What the store holds that bears on a login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The account keyed by the login's identity.
    pub by_identity: Option<Account>,
    /// The account holding the login's asserted e-mail address (may be the same account).
    pub by_email: Option<Account>,
}

impl ProvisioningPlan {
    /// A plan refusing the login.
    pub fn refused(identity: Option<IdentityKey>, refusal: Refusal) -> Self {
        Self {
            identity,
            action: PlanAction::Refuse(refusal),
        }
    }

    /// The account the plan touches, when it already exists.
    pub fn account_id(&self) -> Option<Uuid> {
        match &self.action {
            PlanAction::Link { account_id, .. }
            | PlanAction::Update { account_id, .. }
            | PlanAction::Unchanged { account_id } => Some(*account_id),
            PlanAction::Create { .. }
            | PlanAction::Refuse(_)
            | PlanAction::Logout(_)
            | PlanAction::Scim(_)
            | PlanAction::Purge { .. } => None,
        }
    }
}

/// Decides what to do with a mapped login given what the store holds.
///
/// # Security
/// An existing account is only ever matched by identity key. An account holding the same
/// e-mail is linked only when the contract says `link_by_email`, only if that account is a
/// local one (not already linked to some identity), and only by the address the IdP asserted,
/// which must be the account's own up to ASCII case (not merely fold onto it). Otherwise the login is refused rather than creating a second account with that address.
pub fn plan(contract: &Contract, mapped: &MappedLogin, lookup: &Lookup) -> ProvisioningPlan {
    let identity = Some(mapped.identity.clone());
    let email_owner = lookup.by_email.as_ref().filter(|other| {
        lookup
            .by_identity
            .as_ref()
            .is_none_or(|mine| mine.id != other.id)
    });
    let action = match (&lookup.by_identity, email_owner) {
        (Some(account), _) if !account.active => PlanAction::Refuse(Refusal::new(
            RefusalCode::AccountDisabled,
            format!("account {} is disabled", account.id),
        )),
        (Some(account), Some(other)) if email_changes(contract, mapped, account) => {
            PlanAction::Refuse(email_taken(other))
        }
        (Some(account), _) => {
            let field_changes = idp_field_changes(contract, mapped, account);
            let (roles_added, roles_removed) = role_changes(&mapped.roles, account);
            if field_changes.is_empty() && roles_added.is_empty() && roles_removed.is_empty() {
                PlanAction::Unchanged {
                    account_id: account.id,
                }
            } else {
                PlanAction::Update {
                    account_id: account.id,
                    field_changes,
                    roles_added,
                    roles_removed,
                }
            }
        }
        (None, Some(other))
            if other.identity.is_none()
                && contract.link_by_email()
                && same_address(mapped, other) =>
        {
            let (roles_added, roles_removed) = role_changes(&mapped.roles, other);
            PlanAction::Link {
                account_id: other.id,
                email: mapped.email.clone().unwrap_or_default(),
                field_changes: idp_field_changes(contract, mapped, other),
                roles_added,
                roles_removed,
            }
        }
        (None, Some(other)) => PlanAction::Refuse(email_taken(other)),
        (None, None) => match contract.on_first_login() {
            FirstLogin::Refuse => PlanAction::Refuse(Refusal::new(
                RefusalCode::NotProvisioned,
                "no account exists for this identity and on_first_login is refuse",
            )),
            FirstLogin::Create => PlanAction::Create {
                fields: mapped
                    .fields
                    .iter()
                    .filter_map(|(field, value)| Some((field.clone(), value.clone()?)))
                    .collect(),
                roles: mapped.roles.clone(),
            },
        },
    };
    ProvisioningPlan { identity, action }
}

/// Whether the address the IdP asserted is the local account's own, up to ASCII case: what
/// linking needs. The lookup that found `other` folds case the Unicode way (so no two
/// accounts differ by case alone), and that folds some non-ASCII characters onto ASCII
/// ones (U+212A KELVIN SIGN is `k` lower-cased): a different mailbox, never linked.
fn same_address(mapped: &MappedLogin, other: &Account) -> bool {
    let asserted = mapped.fields.get(EMAIL_FIELD).and_then(Option::as_deref);
    let held = other.fields.get(EMAIL_FIELD);
    matches!((asserted, held), (Some(a), Some(h)) if a.trim().eq_ignore_ascii_case(h.trim()))
}

fn email_taken(other: &Account) -> Refusal {
    if other.identity.is_none() {
        Refusal::new(
            RefusalCode::EmailBelongsToUnlinkedAccount,
            format!(
                "local account {} holds this e-mail and link_by_email is off",
                other.id
            ),
        )
    } else {
        Refusal::new(
            RefusalCode::EmailBelongsToOtherAccount,
            format!("account {} of another identity holds this e-mail", other.id),
        )
    }
}

/// Whether this login would move an IdP-owned e-mail to a new address.
fn email_changes(contract: &Contract, mapped: &MappedLogin, account: &Account) -> bool {
    contract.ownership_of(EMAIL_FIELD) == Some(Ownership::Idp) && mapped.email != account.email
}

fn idp_field_changes(
    contract: &Contract,
    mapped: &MappedLogin,
    account: &Account,
) -> Vec<FieldChange> {
    mapped
        .fields
        .iter()
        .filter(|(field, _)| contract.ownership_of(field) == Some(Ownership::Idp))
        .filter_map(|(field, new)| {
            let old = account.fields.get(field);
            (old != new.as_ref()).then(|| FieldChange {
                field: field.clone(),
                old: old.cloned(),
                new: new.clone(),
            })
        })
        .collect()
}

/// Managed roles follow the rules; roles granted by hand are never removed, and a role that is
/// already held by hand is not re-granted as managed (so losing the group later cannot take
/// away what an admin gave).
fn role_changes(
    desired: &BTreeSet<String>,
    account: &Account,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let added = desired
        .iter()
        .filter(|role| !account.roles.contains_key(*role))
        .cloned()
        .collect();
    let removed = account
        .roles
        .iter()
        .filter(|(role, origin)| **origin == RoleOrigin::Managed && !desired.contains(*role))
        .map(|(role, _)| role.clone())
        .collect();
    (added, removed)
}
