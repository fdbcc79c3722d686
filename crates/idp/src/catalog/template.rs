//! The typed form of one connector template, and the parse that produces it.
//!
//! Templates are read from TOML into a loose `Raw*` shape and then converted into
//! typed values ("parse, don't validate"): once a [`Template`] exists, its NameID
//! policy and attribute mappings are the application registry's own types
//! ([`crate::apps`]), checked by the registry's own rules, attribute names are unique
//! and every URL placeholder is well formed. A template therefore turns into a
//! [`NewApplication`] without any further translation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::CatalogError;
use crate::apps::{
    AttributeMapping, AttributeNameFormat, AttributeSource, NameIdFormat, NameIdPolicy,
    NameIdSource, NewApplication, UserField, ValueFilter,
};

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
    /// NameID format the application expects, and where its value comes from.
    pub name_id: NameIdPolicy,
    /// The application's ACS URL, with placeholders.
    pub acs_url: Option<UrlPattern>,
    /// The application's SP entity ID, with placeholders.
    pub entity_id: Option<UrlPattern>,
    /// The page of the application that starts an SP-initiated sign-in, with
    /// placeholders (only those of the ACS URL and entity ID, so filling those fills
    /// this); it becomes the portal tile's login URL. Given only where the vendor
    /// documents one.
    pub login_url: Option<UrlPattern>,
    /// Sign the whole `<Response>`.
    pub sign_response: bool,
    /// Sign the `<Assertion>`.
    pub sign_assertion: bool,
    /// Attributes released, in the order they are written.
    pub attributes: Vec<AttributeMapping>,
    /// Names of the attributes without which the application refuses a login.
    pub required_attributes: Vec<String>,
    /// Settings to make on the application's side.
    pub sp_settings: Vec<SpSetting>,
    /// What the application needs of a user to let them in, and what it grants from what:
    /// the groups or attributes it reads. Shown by `template show` and `app add`, because
    /// an admin who assigns the wrong group otherwise finds out from the application's
    /// refusal page.
    pub expects: String,
    /// Caveats for the admin (and where a fact was not checked against the vendor).
    pub notes: String,
}

impl Template {
    /// The attribute with this SAML `Name`, if the template releases it.
    pub fn attribute(&self, name: &str) -> Option<&AttributeMapping> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// All placeholders of the ACS URL, entity ID and login URL, without duplicates.
    pub fn placeholders(&self) -> BTreeSet<String> {
        self.acs_url
            .iter()
            .chain(self.entity_id.iter())
            .chain(self.login_url.iter())
            .flat_map(UrlPattern::placeholders)
            .collect()
    }

    /// Sets what the template decides on an application being registered: NameID
    /// policy, released attributes and signing. Endpoints, certificates and the tile
    /// stay as the caller made them (the login URL is a pattern too: see
    /// [`Template::application`]).
    pub fn apply_to(&self, app: &mut NewApplication) {
        app.name_id = self.name_id.clone();
        app.attributes = self.attributes.clone();
        app.sign_response = self.sign_response;
        app.sign_assertion = self.sign_assertion;
    }

    /// A complete application from the template's URL patterns and the admin's
    /// placeholder values (e.g. `gitlab_host`). Templates without URL patterns
    /// (generic SAML) need the URLs given explicitly: use [`Template::apply_to`].
    pub fn application(
        &self,
        placeholders: &[(&str, &str)],
    ) -> Result<NewApplication, CatalogError> {
        let missing = |what: &'static str| CatalogError::NoUrlPattern {
            template: self.name.clone(),
            what,
        };
        let acs = self.acs_url.as_ref().ok_or_else(|| missing("acs_url"))?;
        let entity_id = self
            .entity_id
            .as_ref()
            .ok_or_else(|| missing("entity_id"))?;
        let mut app = NewApplication::new(
            entity_id.fill(placeholders)?,
            self.display_name.clone(),
            acs.fill(placeholders)?,
        );
        app.tile.login_url = self
            .login_url
            .as_ref()
            .map(|p| p.fill(placeholders))
            .transpose()?;
        self.apply_to(&mut app);
        Ok(app)
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
    expects: String,
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
    login_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribute {
    name: String,
    /// The registry's source text: `email`, `username`, `given_name`, `family_name`,
    /// `display_name`, `id`, `attr:KEY`, `const:VALUE` or `groups`.
    source: String,
    /// `prefix:P` or `strip-prefix:P`.
    #[serde(default)]
    filter: Option<String>,
    /// `basic` (default), `uri` or `unspecified`.
    #[serde(default)]
    name_format: Option<String>,
    #[serde(default)]
    friendly_name: Option<String>,
    #[serde(default)]
    required: bool,
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

    let format = NameIdFormat::parse(&raw.name_id.format)
        .map_err(|e| invalid(format!("NameID format: {e}")))?;
    let source: NameIdSource = raw
        .name_id
        .source
        .parse()
        .map_err(|e| invalid(format!("NameID source: {e}")))?;
    // An emailAddress NameID must carry an e-mail address, and a persistent one must
    // not be a value the user can change freely: anything else misleads the SP.
    match (format, &source) {
        (NameIdFormat::EmailAddress, NameIdSource::Email) => {}
        (NameIdFormat::EmailAddress, _) => {
            return Err(invalid(
                "emailAddress NameID must come from the email field".into(),
            ));
        }
        (NameIdFormat::Persistent, NameIdSource::Email) => {
            return Err(invalid(
                "persistent NameID from the e-mail address, which can change".into(),
            ));
        }
        _ => {}
    }
    let name_id = NameIdPolicy { format, source };

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
    let login_url = raw
        .sp
        .login_url
        .as_deref()
        .map(UrlPattern::parse)
        .transpose()
        .map_err(invalid)?;
    if let Some(login) = &login_url {
        // Filled only when the application is made from the ACS URL and entity ID, and
        // with their values: a placeholder of its own would never be asked for.
        let known: BTreeSet<String> = acs_url
            .iter()
            .chain(entity_id.iter())
            .flat_map(UrlPattern::placeholders)
            .collect();
        if acs_url.is_none() || entity_id.is_none() {
            return Err(invalid(
                "sp.login_url needs sp.acs_url and sp.entity_id".into(),
            ));
        }
        if let Some(own) = login
            .placeholders()
            .into_iter()
            .find(|p| !known.contains(p))
        {
            return Err(invalid(format!(
                "sp.login_url placeholder {{{own}}} is not in acs_url or entity_id"
            )));
        }
    }

    let mut seen = BTreeSet::new();
    let mut attributes = Vec::with_capacity(raw.attributes.len());
    let mut required_attributes = Vec::new();
    for a in raw.attributes {
        if !seen.insert(a.name.clone()) {
            return Err(invalid(format!("attribute {:?} appears twice", a.name)));
        }
        if a.required {
            required_attributes.push(a.name.clone());
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
        name_id,
        acs_url,
        entity_id,
        login_url,
        sign_response: raw.sign_response,
        sign_assertion: raw.sign_assertion,
        attributes,
        required_attributes,
        sp_settings: raw.sp_settings,
        expects: raw.expects.trim().to_owned(),
        notes: raw.notes.trim().to_owned(),
    })
}

fn attribute(a: RawAttribute) -> Result<AttributeMapping, String> {
    let name_format = match a.name_format.as_deref() {
        None | Some("basic") => AttributeNameFormat::Basic,
        Some("uri") => AttributeNameFormat::Uri,
        Some("unspecified") => AttributeNameFormat::Unspecified,
        Some(other) => {
            return Err(format!(
                "attribute {:?}: unknown name_format {other:?}",
                a.name
            ));
        }
    };
    // The uri NameFormat promises a URI; SPs that match on it will not find a bare word.
    if name_format == AttributeNameFormat::Uri && !a.name.contains(':') {
        return Err(format!(
            "attribute {:?} has NameFormat uri but is not a URI",
            a.name
        ));
    }
    let source = if a.source == "groups" {
        AttributeSource::Groups
    } else if let Some(value) = a.source.strip_prefix("const:") {
        AttributeSource::Constant(value.to_owned())
    } else {
        AttributeSource::Field(
            a.source
                .parse::<UserField>()
                .map_err(|e| format!("attribute {:?}: {e}", a.name))?,
        )
    };
    let filter = match a.filter.as_deref() {
        None => None,
        Some(f) => Some(if let Some(p) = f.strip_prefix("strip-prefix:") {
            ValueFilter::StripPrefix(p.to_owned())
        } else if let Some(p) = f.strip_prefix("prefix:") {
            ValueFilter::Prefix(p.to_owned())
        } else {
            return Err(format!(
                "attribute {:?}: filter {f:?} is not prefix:P or strip-prefix:P",
                a.name
            ));
        }),
    };
    let mapping = AttributeMapping {
        name: a.name,
        name_format,
        friendly_name: a.friendly_name,
        source,
        filter,
    };
    // The registry's own rules, so a template can never produce a mapping that
    // `app create` would refuse.
    mapping.validate().map_err(|e| e.to_string())?;
    Ok(mapping)
}
