//! The typed form of one connector template, and the parse that produces it.
//!
//! Templates are read from TOML into a loose `Raw*` shape and then converted into
//! typed values ("parse, don't validate"): once a [`Template`] exists, its NameID
//! format is a known URN, every attribute source is one of the sources the IdP can
//! actually fill, attribute names are unique and every URL placeholder is well formed.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::CatalogError;

/// The SAML NameID formats an application may ask for.
///
/// Only the four formats that SPs in the field actually request are modelled; an
/// unknown format in a template is a template bug, not something to pass through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameIdFormat {
    /// `urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified`
    Unspecified,
    /// `urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress`
    EmailAddress,
    /// `urn:oasis:names:tc:SAML:2.0:nameid-format:persistent`
    Persistent,
    /// `urn:oasis:names:tc:SAML:2.0:nameid-format:transient`
    Transient,
}

impl NameIdFormat {
    /// The URN written into `<NameID Format=...>` and into metadata.
    pub fn urn(self) -> &'static str {
        match self {
            Self::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            Self::EmailAddress => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            Self::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            Self::Transient => "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        }
    }

    /// Accepts the short name used in templates (`persistent`) or the full URN.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Unspecified,
            Self::EmailAddress,
            Self::Persistent,
            Self::Transient,
        ]
        .into_iter()
        .find(|f| f.short() == s || f.urn() == s)
    }

    fn short(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::EmailAddress => "email_address",
            Self::Persistent => "persistent",
            Self::Transient => "transient",
        }
    }
}

/// A field of a directory user that the IdP can release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserField {
    /// The user's immutable internal id (a UUID); never reassigned, so safe as a key.
    Id,
    /// The login name; unique but may be renamed by an admin.
    Username,
    /// The primary e-mail address.
    Email,
    /// First name.
    GivenName,
    /// Last name.
    FamilyName,
    /// Full name for display.
    DisplayName,
}

impl UserField {
    /// The name used in templates and in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Username => "username",
            Self::Email => "email",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::DisplayName => "display_name",
        }
    }

    /// Inverse of [`UserField::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Id,
            Self::Username,
            Self::Email,
            Self::GivenName,
            Self::FamilyName,
            Self::DisplayName,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// Where the NameID value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "field")]
pub enum NameIdSource {
    /// An opaque identifier the IdP derives per (user, application): stable for the
    /// pair, different for every application, so two SPs cannot correlate a user.
    Pairwise,
    /// A user field released as is.
    User(UserField),
}

/// Where the value of one SAML attribute comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AttributeSource {
    /// A user field (one value).
    User {
        /// Which field.
        field: UserField,
    },
    /// The names of the user's groups, one attribute value per group.
    Groups {
        /// Release only groups whose name starts with this prefix, so an
        /// application sees only the groups meant for it.
        prefix: Option<String>,
    },
    /// A custom (free-form) attribute stored on the user, e.g. `department`.
    Custom {
        /// The custom attribute's key in the directory.
        key: String,
    },
    /// The same value for every user (e.g. a Salesforce profile name).
    Constant {
        /// The value sent.
        value: String,
    },
}

/// The `NameFormat` of a SAML `<Attribute>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeNameFormat {
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified`
    Unspecified,
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:basic`
    Basic,
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:uri`
    Uri,
}

impl AttributeNameFormat {
    /// The URN written into `<Attribute NameFormat=...>`.
    pub fn urn(self) -> &'static str {
        match self {
            Self::Unspecified => "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
            Self::Basic => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            Self::Uri => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Unspecified, Self::Basic, Self::Uri]
            .into_iter()
            .find(|f| f.short() == s || f.urn() == s)
    }

    fn short(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Basic => "basic",
            Self::Uri => "uri",
        }
    }
}

/// One attribute the application reads, and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMapping {
    /// The SAML attribute `Name`, exactly as the application matches it.
    pub name: String,
    /// The attribute's `NameFormat`.
    pub name_format: AttributeNameFormat,
    /// Optional `FriendlyName` (informational; SPs match on `Name`).
    pub friendly_name: Option<String>,
    /// Where the value comes from.
    pub source: AttributeSource,
    /// Whether the application refuses a login without this attribute.
    pub required: bool,
}

/// An SP-side URL (ACS or entity ID) with `{placeholder}`s the admin fills in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlPattern(String);

impl UrlPattern {
    /// The pattern text, e.g. `https://{gitlab_host}/users/auth/saml/callback`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The placeholder names in order of first appearance.
    pub fn placeholders(&self) -> Vec<String> {
        // Validated at construction, so the split below always sees balanced braces.
        let mut out = Vec::new();
        for piece in self.0.split('{').skip(1) {
            if let Some((name, _)) = piece.split_once('}')
                && !out.iter().any(|n| n == name)
            {
                out.push(name.to_owned());
            }
        }
        out
    }

    /// Substitutes every placeholder; a placeholder with no value is an error, so a
    /// half-filled URL never reaches an application's configuration.
    pub fn fill(&self, values: &[(&str, &str)]) -> Result<String, CatalogError> {
        let mut out = self.0.clone();
        for name in self.placeholders() {
            let value = values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| CatalogError::MissingPlaceholder(name.clone()))?;
            out = out.replace(&format!("{{{name}}}"), value);
        }
        Ok(out)
    }

    fn parse(s: &str) -> Result<Self, String> {
        let mut open = false;
        let mut current = String::new();
        for c in s.chars() {
            match (c, open) {
                ('{', false) => {
                    open = true;
                    current.clear();
                }
                ('}', true) => {
                    if current.is_empty() {
                        return Err(format!("empty placeholder in {s:?}"));
                    }
                    open = false;
                }
                ('{', true) | ('}', false) => return Err(format!("unbalanced braces in {s:?}")),
                (c, true) if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' => {
                    current.push(c);
                }
                (c, true) => return Err(format!("bad character {c:?} in a placeholder of {s:?}")),
                _ => {}
            }
        }
        if open {
            return Err(format!("unclosed placeholder in {s:?}"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// A setting the admin must make on the application's side, e.g. GitLab's
/// `groups_attribute`. Shown next to the template so both sides agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpSetting {
    /// The application's own name for the setting.
    pub name: String,
    /// The value that matches this template.
    pub value: String,
}

/// One connector template: how to configure the IdP for one kind of application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Stable key, also the data file's name (`gitlab` for `gitlab.toml`).
    pub name: String,
    /// Human name shown in the portal and CLI.
    pub display_name: String,
    /// The vendor document the values were taken from (`https://`), or a file of
    /// this repository (`repo:path`) for the demo applications.
    pub docs: String,
    /// NameID format the application expects.
    pub name_id_format: NameIdFormat,
    /// Where the NameID value comes from.
    pub name_id_source: NameIdSource,
    /// The application's ACS URL, with placeholders.
    pub acs_url: Option<UrlPattern>,
    /// The application's SP entity ID, with placeholders.
    pub entity_id: Option<UrlPattern>,
    /// Sign the whole `<Response>`.
    pub sign_response: bool,
    /// Sign the `<Assertion>`.
    pub sign_assertion: bool,
    /// Attributes released, in the order they are written.
    pub attributes: Vec<AttributeMapping>,
    /// Settings to make on the application's side.
    pub sp_settings: Vec<SpSetting>,
    /// Caveats for the admin (and where a fact was not checked against the vendor).
    pub notes: String,
}

impl Template {
    /// The attribute with this SAML `Name`, if the template releases it.
    pub fn attribute(&self, name: &str) -> Option<&AttributeMapping> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// All placeholders of the ACS URL and entity ID, without duplicates.
    pub fn placeholders(&self) -> BTreeSet<String> {
        self.acs_url
            .iter()
            .chain(self.entity_id.iter())
            .flat_map(UrlPattern::placeholders)
            .collect()
    }
}

// ---- the file shape -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: String,
    display_name: String,
    docs: String,
    #[serde(default)]
    notes: String,
    #[serde(default = "yes")]
    sign_response: bool,
    #[serde(default = "yes")]
    sign_assertion: bool,
    name_id: RawNameId,
    #[serde(default)]
    sp: RawSp,
    #[serde(default)]
    attributes: Vec<RawAttribute>,
    #[serde(default)]
    sp_settings: Vec<SpSetting>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNameId {
    format: String,
    source: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSp {
    acs_url: Option<String>,
    entity_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribute {
    name: String,
    /// `email`, `username`, ... | `groups` | `custom` | `constant`
    source: String,
    #[serde(default)]
    name_format: Option<String>,
    #[serde(default)]
    friendly_name: Option<String>,
    #[serde(default)]
    required: bool,
    /// For `source = "groups"`.
    #[serde(default)]
    group_prefix: Option<String>,
    /// For `source = "custom"`.
    #[serde(default)]
    key: Option<String>,
    /// For `source = "constant"`.
    #[serde(default)]
    value: Option<String>,
}

/// Parses and checks one template file. `file_stem` is the file's name without
/// `.toml`; it must equal the template's `name` so a key always finds its file.
pub(super) fn parse(file_stem: &str, text: &str) -> Result<Template, CatalogError> {
    let invalid = |reason: String| CatalogError::Invalid {
        template: file_stem.to_owned(),
        reason,
    };
    let raw: RawTemplate = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;

    if raw.name != file_stem {
        return Err(invalid(format!(
            "name {:?} differs from the file name",
            raw.name
        )));
    }
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(invalid(
            "name must be lowercase ASCII, digits and '-'".into(),
        ));
    }
    if raw.display_name.trim().is_empty() {
        return Err(invalid("display_name is empty".into()));
    }
    let docs_ok = raw
        .docs
        .strip_prefix("https://")
        .or_else(|| raw.docs.strip_prefix("repo:"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    if !docs_ok {
        return Err(invalid(format!(
            "docs {:?} is not an https:// or repo: reference",
            raw.docs
        )));
    }
    if !raw.sign_response && !raw.sign_assertion {
        return Err(invalid(
            "neither the response nor the assertion would be signed".into(),
        ));
    }

    let name_id_format = NameIdFormat::parse(&raw.name_id.format)
        .ok_or_else(|| invalid(format!("unknown NameID format {:?}", raw.name_id.format)))?;
    let name_id_source = match raw.name_id.source.as_str() {
        "pairwise" => NameIdSource::Pairwise,
        other => NameIdSource::User(
            UserField::parse(other)
                .ok_or_else(|| invalid(format!("unknown NameID source {other:?}")))?,
        ),
    };
    // A transient NameID must not carry a stable identifier, and an emailAddress one
    // must carry an e-mail address: anything else tells the SP something false.
    match (name_id_format, name_id_source) {
        (NameIdFormat::EmailAddress, NameIdSource::User(UserField::Email)) => {}
        (NameIdFormat::EmailAddress, _) => {
            return Err(invalid(
                "emailAddress NameID must come from the email field".into(),
            ));
        }
        (NameIdFormat::Persistent, NameIdSource::User(f))
            if f != UserField::Id && f != UserField::Username =>
        {
            return Err(invalid(format!(
                "persistent NameID from {:?}, a field that is not an identifier",
                f.as_str()
            )));
        }
        _ => {}
    }

    let acs_url = raw
        .sp
        .acs_url
        .as_deref()
        .map(UrlPattern::parse)
        .transpose()
        .map_err(invalid)?;
    let entity_id = raw
        .sp
        .entity_id
        .as_deref()
        .map(UrlPattern::parse)
        .transpose()
        .map_err(invalid)?;

    let mut seen = BTreeSet::new();
    let mut attributes = Vec::with_capacity(raw.attributes.len());
    for a in raw.attributes {
        if a.name.trim().is_empty() {
            return Err(invalid("an attribute has an empty name".into()));
        }
        if !seen.insert(a.name.clone()) {
            return Err(invalid(format!("attribute {:?} appears twice", a.name)));
        }
        attributes.push(attribute(a).map_err(invalid)?);
    }

    for s in &raw.sp_settings {
        if s.name.trim().is_empty() || s.value.trim().is_empty() {
            return Err(invalid(
                "an sp_settings entry has an empty name or value".into(),
            ));
        }
    }

    Ok(Template {
        name: raw.name,
        display_name: raw.display_name,
        docs: raw.docs,
        name_id_format,
        name_id_source,
        acs_url,
        entity_id,
        sign_response: raw.sign_response,
        sign_assertion: raw.sign_assertion,
        attributes,
        sp_settings: raw.sp_settings,
        notes: raw.notes.trim().to_owned(),
    })
}

fn attribute(a: RawAttribute) -> Result<AttributeMapping, String> {
    let name_format = match a.name_format.as_deref() {
        None => AttributeNameFormat::Basic,
        Some(s) => AttributeNameFormat::parse(s)
            .ok_or_else(|| format!("attribute {:?}: unknown name_format {s:?}", a.name))?,
    };
    // The uri NameFormat promises a URI; SPs that match on it will not find a bare word.
    if name_format == AttributeNameFormat::Uri && !a.name.contains(':') {
        return Err(format!(
            "attribute {:?} has NameFormat uri but is not a URI",
            a.name
        ));
    }
    let unused = |what: &str, present: bool| {
        if present {
            Err(format!(
                "attribute {:?}: {what} does not apply to source {:?}",
                a.name, a.source
            ))
        } else {
            Ok(())
        }
    };
    let source = match a.source.as_str() {
        "groups" => {
            unused("key", a.key.is_some())?;
            unused("value", a.value.is_some())?;
            AttributeSource::Groups {
                prefix: a.group_prefix.clone(),
            }
        }
        "custom" => {
            unused("group_prefix", a.group_prefix.is_some())?;
            unused("value", a.value.is_some())?;
            let key = a
                .key
                .clone()
                .filter(|k| !k.trim().is_empty())
                .ok_or_else(|| format!("attribute {:?}: source custom needs a key", a.name))?;
            AttributeSource::Custom { key }
        }
        "constant" => {
            unused("group_prefix", a.group_prefix.is_some())?;
            unused("key", a.key.is_some())?;
            let value = a
                .value
                .clone()
                .ok_or_else(|| format!("attribute {:?}: source constant needs a value", a.name))?;
            AttributeSource::Constant { value }
        }
        other => {
            unused("group_prefix", a.group_prefix.is_some())?;
            unused("key", a.key.is_some())?;
            unused("value", a.value.is_some())?;
            let field = UserField::parse(other)
                .ok_or_else(|| format!("attribute {:?}: unknown source {other:?}", a.name))?;
            AttributeSource::User { field }
        }
    };
    Ok(AttributeMapping {
        name: a.name,
        name_format,
        friendly_name: a.friendly_name,
        source,
        required: a.required,
    })
}
