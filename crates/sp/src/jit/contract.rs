//! The provisioning contract: what an application lets its IdP decide about local accounts.
//!
//! It is parsed from TOML into raw structs and then checked into [`Contract`], so a contract
//! that exists is one that makes sense ("parse, don't validate"): every JIT-written field has an
//! attribute, every role condition tests exactly one thing, and linking by e-mail is only
//! possible when an IdP-asserted e-mail exists.
//!
//! ```toml
//! identity = { source = "persistent_name_id" }   # or { source = "attribute", attribute = "uid" }
//!                                                # or { source = "name_id", format = "urn:...:emailAddress" }
//! on_first_login = "create"                      # or "refuse": pre-provisioned accounts only
//! link_by_email = false
//! deny_when_no_role = true
//! deprovision = "disable"                       # or "delete": what a SCIM DELETE does
//!
//! [[fields]]
//! attribute = "mail"
//! field = "email"
//! ownership = "idp"          # idp | create_only | app
//! required = true
//!
//! [[roles]]
//! grant = "admin"
//! when = { attribute = "groups", contains = "wiki-admins" }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{EMAIL_FIELD, IdentityKey, LoginFacts, NAMEID_FORMAT_PERSISTENT, Refusal, RefusalCode};
use crate::error::ContractError;

/// A checked provisioning contract. Build it with [`Contract::from_toml`] or by deserialising
/// it (for example as the `[provisioning]` table of SP.toml).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawContract")]
pub struct Contract {
    identity: IdentitySource,
    on_first_login: FirstLogin,
    fields: Vec<FieldRule>,
    roles: Vec<RoleRule>,
    default_role: Option<String>,
    deny_when_no_role: bool,
    link_by_email: bool,
    deprovision: Deprovision,
}

/// What a SCIM `DELETE` of a user does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deprovision {
    /// Disable it (logins refused, sessions ended) and keep it with its data, detached from
    /// SCIM: what most applications want, since their content refers to the account.
    #[default]
    Disable,
    /// Delete it with its roles.
    Delete,
}

/// Where the stable identity of a person comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdentitySource {
    /// The NameID, which must then have the persistent format.
    #[default]
    PersistentNameId,
    /// The NameID, which must then have exactly this format. For an IdP that identifies people
    /// by e-mail address (`...:1.1:nameid-format:emailAddress`): simpler, but an address that
    /// is reassigned to someone else hands them the old account, so prefer persistent IDs.
    NameId {
        /// The required NameID format URI.
        format: String,
    },
    /// A single-valued attribute the IdP promises is stable (an employee number, say).
    Attribute {
        /// The attribute `Name`.
        attribute: String,
    },
}

/// What happens when no account exists yet for an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstLogin {
    /// Create the account.
    #[default]
    Create,
    /// Refuse: only accounts provisioned beforehand may log in.
    Refuse,
}

/// Who decides the value of an account field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// The IdP: overwritten (or cleared) at every login, so the IdP stays the source of truth.
    Idp,
    /// Written once, when JIT creates the account, then left to the app and the user.
    CreateOnly,
    /// The app: JIT never reads an attribute for it nor writes it. Declaring it documents that
    /// the field is deliberately outside the IdP's reach.
    App,
}

/// One attribute-to-field mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRule {
    /// The SAML attribute `Name` the value is read from (`None` only for app-owned fields).
    pub attribute: Option<String>,
    /// The account field written.
    pub field: String,
    /// Who owns the field.
    pub ownership: Ownership,
    /// Refuse the login when the attribute has no value.
    pub required: bool,
}

/// Grants `grant` when `when` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleRule {
    /// The test on the asserted attributes.
    pub when: Condition,
    /// The role granted, marked as managed by JIT.
    pub grant: String,
}

/// A test on one attribute's values. Comparisons are exact and case-sensitive: group names are
/// identifiers, and a case-folded match could grant a role to a look-alike group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// One of the attribute's values is exactly this.
    Contains {
        /// The attribute `Name`.
        attribute: String,
        /// The value looked for.
        value: String,
    },
    /// The attribute has exactly one distinct value, and it is this.
    Equals {
        /// The attribute `Name`.
        attribute: String,
        /// The value required.
        value: String,
    },
    /// One of the attribute's values starts with this.
    Prefix {
        /// The attribute `Name`.
        attribute: String,
        /// The prefix looked for.
        prefix: String,
    },
}

impl Condition {
    fn holds(&self, facts: &LoginFacts) -> bool {
        let values = |attribute: &str| distinct_values(facts, attribute);
        match self {
            Self::Contains { attribute, value } => values(attribute).contains(&value.as_str()),
            Self::Equals { attribute, value } => values(attribute) == [value.as_str()],
            Self::Prefix { attribute, prefix } => values(attribute)
                .iter()
                .any(|v| v.starts_with(prefix.as_str())),
        }
    }
}

/// The result of applying a contract to one login, before looking at any stored account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedLogin {
    /// The key the account is found by.
    pub identity: IdentityKey,
    /// Every JIT-written (IdP-owned or create-only) field, `None` when the IdP sent no value.
    pub fields: BTreeMap<String, Option<String>>,
    /// The normalised value of the `email` field, when there is one.
    pub email: Option<String>,
    /// The roles the rules grant (or the default role).
    pub roles: BTreeSet<String>,
}

impl Contract {
    /// Parses and checks a contract written in TOML.
    pub fn from_toml(text: &str) -> Result<Self, ContractError> {
        let raw: RawContract =
            toml::from_str(text).map_err(|e| ContractError::Parse(e.to_string()))?;
        Self::try_from(raw)
    }

    /// Whether accounts are created on first login.
    pub fn on_first_login(&self) -> FirstLogin {
        self.on_first_login
    }

    /// Whether an unlinked local account may be linked by the IdP-asserted e-mail.
    pub fn link_by_email(&self) -> bool {
        self.link_by_email
    }

    /// What a SCIM DELETE does.
    pub fn deprovision(&self) -> Deprovision {
        self.deprovision
    }

    /// Where identities come from.
    pub fn identity(&self) -> &IdentitySource {
        &self.identity
    }

    /// This contract as SCIM applies it: creating a user is the pre-provisioning that
    /// `on_first_login = "refuse"` is there to allow, and `deny_when_no_role` refuses a
    /// login, not an account pushed before its groups.
    pub(crate) fn for_scim(&self) -> Self {
        Self {
            on_first_login: FirstLogin::Create,
            deny_when_no_role: false,
            ..self.clone()
        }
    }

    /// The field mappings, in contract order.
    pub fn fields(&self) -> &[FieldRule] {
        &self.fields
    }

    /// Applies the contract to one login: identity, field values and roles, or the refusal.
    ///
    /// Checks run in a fixed order (identity, then fields, then roles) so the same bad login
    /// always yields the same code.
    pub fn map(&self, facts: &LoginFacts) -> Result<MappedLogin, Refusal> {
        let identity = self.identity_of(facts)?;
        let mut fields = BTreeMap::new();
        let mut email = None;
        for rule in &self.fields {
            let Some(attribute) = &rule.attribute else {
                continue;
            };
            let value = match distinct_values(facts, attribute).as_slice() {
                [] => None,
                [one] => Some((*one).to_owned()),
                _ => {
                    return Err(Refusal::new(
                        RefusalCode::AttributeMultiValued,
                        format!("attribute `{attribute}` (field `{}`)", rule.field),
                    ));
                }
            };
            if value.is_none() && rule.required {
                return Err(Refusal::new(
                    RefusalCode::RequiredAttributeMissing,
                    format!("attribute `{attribute}` (field `{}`)", rule.field),
                ));
            }
            if rule.field == EMAIL_FIELD {
                email = value.as_deref().map(super::normalize_email);
            }
            fields.insert(rule.field.clone(), value);
        }
        let mut roles: BTreeSet<String> = self
            .roles
            .iter()
            .filter(|rule| rule.when.holds(facts))
            .map(|rule| rule.grant.clone())
            .collect();
        if roles.is_empty() {
            if self.deny_when_no_role {
                return Err(Refusal::new(
                    RefusalCode::NoMatchingRole,
                    "no role rule matched the asserted attributes",
                ));
            }
            roles.extend(self.default_role.clone());
        }
        Ok(MappedLogin {
            identity,
            fields,
            email,
            roles,
        })
    }

    /// The ownership of `field`, or `None` when the contract does not mention it (and JIT
    /// therefore never touches it).
    pub(crate) fn ownership_of(&self, field: &str) -> Option<Ownership> {
        self.fields
            .iter()
            .find(|rule| rule.field == field)
            .map(|rule| rule.ownership)
    }

    fn identity_of(&self, facts: &LoginFacts) -> Result<IdentityKey, Refusal> {
        match &self.identity {
            IdentitySource::PersistentNameId => {
                if facts.name_id_format.as_deref() != Some(NAMEID_FORMAT_PERSISTENT) {
                    return Err(Refusal::new(
                        RefusalCode::NameIdNotPersistent,
                        format!(
                            "NameID format is {}",
                            facts.name_id_format.as_deref().unwrap_or("unspecified")
                        ),
                    ));
                }
                if facts.name_id.is_empty() {
                    return Err(Refusal::new(
                        RefusalCode::NameIdNotPersistent,
                        "NameID is empty",
                    ));
                }
                Ok(IdentityKey::name_id(&facts.idp_entity_id, &facts.name_id))
            }
            IdentitySource::NameId { format } => {
                if facts.name_id_format.as_deref() != Some(format.as_str()) {
                    return Err(Refusal::new(
                        RefusalCode::NameIdFormatMismatch,
                        format!(
                            "NameID format is {}, the contract wants {format}",
                            facts.name_id_format.as_deref().unwrap_or("unspecified")
                        ),
                    ));
                }
                if facts.name_id.is_empty() {
                    return Err(Refusal::new(
                        RefusalCode::NameIdFormatMismatch,
                        "NameID is empty",
                    ));
                }
                Ok(IdentityKey::name_id_of_format(
                    &facts.idp_entity_id,
                    format,
                    &facts.name_id,
                ))
            }
            IdentitySource::Attribute { attribute } => {
                match distinct_values(facts, attribute).as_slice() {
                    [] => Err(Refusal::new(
                        RefusalCode::IdentityAttributeMissing,
                        format!("attribute `{attribute}`"),
                    )),
                    [one] => Ok(IdentityKey::attribute(&facts.idp_entity_id, attribute, one)),
                    _ => Err(Refusal::new(
                        RefusalCode::IdentityAttributeMultiValued,
                        format!("attribute `{attribute}`"),
                    )),
                }
            }
        }
    }
}

/// The non-empty values of `attribute`, duplicates removed, in the order sent. An empty string
/// counts as no value: IdPs send `""` for unset directory attributes.
fn distinct_values<'a>(facts: &'a LoginFacts, attribute: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for value in facts.attributes.get(attribute).into_iter().flatten() {
        if !value.is_empty() && !out.contains(&value.as_str()) {
            out.push(value);
        }
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    #[serde(default)]
    identity: IdentitySource,
    #[serde(default)]
    on_first_login: FirstLogin,
    #[serde(default)]
    fields: Vec<RawField>,
    #[serde(default)]
    roles: Vec<RawRoleRule>,
    #[serde(default)]
    default_role: Option<String>,
    #[serde(default)]
    deny_when_no_role: bool,
    #[serde(default)]
    link_by_email: bool,
    #[serde(default)]
    deprovision: Deprovision,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(default)]
    attribute: Option<String>,
    field: String,
    ownership: Ownership,
    #[serde(default)]
    required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoleRule {
    when: RawCondition,
    grant: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    attribute: String,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
}

impl TryFrom<RawContract> for Contract {
    type Error = ContractError;

    fn try_from(raw: RawContract) -> Result<Self, ContractError> {
        match &raw.identity {
            IdentitySource::Attribute { attribute } if attribute.is_empty() => {
                return Err(ContractError::EmptyName("identity attribute"));
            }
            IdentitySource::NameId { format } if format.is_empty() => {
                return Err(ContractError::EmptyName("identity format"));
            }
            _ => {}
        }
        let mut seen = BTreeSet::new();
        let mut fields = Vec::with_capacity(raw.fields.len());
        for f in raw.fields {
            if f.field.is_empty() || f.attribute.as_deref() == Some("") {
                return Err(ContractError::EmptyName("fields"));
            }
            if !seen.insert(f.field.clone()) {
                return Err(ContractError::DuplicateField(f.field));
            }
            match f.ownership {
                Ownership::App if f.attribute.is_some() || f.required => {
                    return Err(ContractError::AppFieldWithAttribute(f.field));
                }
                Ownership::Idp | Ownership::CreateOnly if f.attribute.is_none() => {
                    return Err(ContractError::FieldWithoutAttribute(f.field));
                }
                _ => {}
            }
            fields.push(FieldRule {
                attribute: f.attribute,
                field: f.field,
                ownership: f.ownership,
                required: f.required,
            });
        }
        let mut roles = Vec::with_capacity(raw.roles.len());
        for r in raw.roles {
            if r.grant.is_empty() || r.when.attribute.is_empty() {
                return Err(ContractError::EmptyName("roles"));
            }
            let attribute = r.when.attribute;
            let when = match (r.when.contains, r.when.equals, r.when.prefix) {
                (Some(value), None, None) => Condition::Contains { attribute, value },
                (None, Some(value), None) => Condition::Equals { attribute, value },
                (None, None, Some(prefix)) => Condition::Prefix { attribute, prefix },
                _ => return Err(ContractError::AmbiguousCondition(r.grant)),
            };
            roles.push(RoleRule {
                when,
                grant: r.grant,
            });
        }
        if raw.default_role.as_deref() == Some("") {
            return Err(ContractError::EmptyName("default_role"));
        }
        if raw.default_role.is_some() && raw.deny_when_no_role {
            return Err(ContractError::DefaultRoleWithDeny);
        }
        if raw.link_by_email
            && !fields
                .iter()
                .any(|f| f.field == EMAIL_FIELD && f.attribute.is_some())
        {
            return Err(ContractError::LinkWithoutEmail);
        }
        Ok(Self {
            identity: raw.identity,
            on_first_login: raw.on_first_login,
            fields,
            roles,
            default_role: raw.default_role,
            deny_when_no_role: raw.deny_when_no_role,
            link_by_email: raw.link_by_email,
            deprovision: raw.deprovision,
        })
    }
}
