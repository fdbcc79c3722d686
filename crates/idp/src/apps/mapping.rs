//! Attribute release: which SAML attributes an application receives, and from where.
//!
//! A mapping has a compact text form used by the CLI and shown by `app show`:
//!
//! ```text
//! NAME[@FORMAT]=SOURCE[|FILTER]
//!   FORMAT  basic | uri | unspecified                         (default: uri)
//!   SOURCE  id | username | email | given_name | family_name | display_name
//!           | attr:KEY | const:VALUE | groups
//!   FILTER  prefix:P (keep values starting with P) | strip-prefix:P (keep them, minus P)
//! ```
//!
//! e.g. `mail=email`, `memberOf@basic=groups|strip-prefix:wiki-`, `role=const:member`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::directory::User;
use crate::error::{Error, Result};

/// The SAML `NameFormat` of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeNameFormat {
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:basic`.
    Basic,
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:uri`.
    Uri,
    /// `urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified`.
    Unspecified,
}

impl AttributeNameFormat {
    /// The format's URN.
    pub fn uri(self) -> &'static str {
        match self {
            AttributeNameFormat::Basic => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            AttributeNameFormat::Uri => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
            AttributeNameFormat::Unspecified => {
                "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
            }
        }
    }

    fn short(self) -> &'static str {
        match self {
            AttributeNameFormat::Basic => "basic",
            AttributeNameFormat::Uri => "uri",
            AttributeNameFormat::Unspecified => "unspecified",
        }
    }
}

/// A directory field a value can be taken from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum UserField {
    /// The immutable internal ID.
    Id,
    /// The username.
    Username,
    /// The e-mail address.
    Email,
    /// The given name.
    GivenName,
    /// The family name.
    FamilyName,
    /// The display name (falling back as [`User::shown_name`] does).
    DisplayName,
    /// A custom attribute.
    Attribute(String),
}

impl fmt::Display for UserField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserField::Id => "id",
            UserField::Username => "username",
            UserField::Email => "email",
            UserField::GivenName => "given_name",
            UserField::FamilyName => "family_name",
            UserField::DisplayName => "display_name",
            UserField::Attribute(key) => return write!(f, "attr:{key}"),
        })
    }
}

impl FromStr for UserField {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        Ok(match raw {
            "id" => UserField::Id,
            "username" => UserField::Username,
            "email" => UserField::Email,
            "given_name" => UserField::GivenName,
            "family_name" => UserField::FamilyName,
            "display_name" => UserField::DisplayName,
            other => match other.strip_prefix("attr:") {
                Some(key) => UserField::Attribute(crate::directory::validate::attribute_key(key)?),
                None => {
                    return Err(Error::invalid(
                        "attribute source",
                        format!(
                            "{raw:?} is not one of: id, username, email, given_name, family_name, \
                             display_name, attr:KEY, const:VALUE, groups"
                        ),
                    ));
                }
            },
        })
    }
}

impl TryFrom<String> for UserField {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<UserField> for String {
    fn from(value: UserField) -> Self {
        value.to_string()
    }
}

/// Where an attribute's values come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeSource {
    /// A directory field of the user.
    Field(UserField),
    /// The same value for everyone.
    Constant(String),
    /// The names of the user's groups.
    Groups,
}

/// Narrows the values released (e.g. only the groups meant for this SP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueFilter {
    /// Keep values that start with the prefix.
    Prefix(String),
    /// Keep values that start with the prefix, and remove it (`wiki-admins` -> `admins`).
    StripPrefix(String),
}

impl ValueFilter {
    /// Applies the filter.
    pub fn apply(&self, values: Vec<String>) -> Vec<String> {
        match self {
            ValueFilter::Prefix(p) => values.into_iter().filter(|v| v.starts_with(p)).collect(),
            ValueFilter::StripPrefix(p) => values
                .into_iter()
                .filter_map(|v| v.strip_prefix(p.as_str()).map(str::to_string))
                .filter(|v| !v.is_empty())
                .collect(),
        }
    }
}

/// One released attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMapping {
    /// The SAML attribute `Name`.
    pub name: String,
    /// Its `NameFormat`.
    pub name_format: AttributeNameFormat,
    /// Its optional `FriendlyName`.
    pub friendly_name: Option<String>,
    /// Where the values come from.
    pub source: AttributeSource,
    /// Optional narrowing of the values.
    pub filter: Option<ValueFilter>,
}

impl AttributeMapping {
    /// The values to release for a user, given the names of their groups. An empty result
    /// means the attribute is left out of the assertion.
    pub fn values(&self, user: &User, group_names: &[String]) -> Vec<String> {
        let raw = match &self.source {
            AttributeSource::Constant(v) => vec![v.clone()],
            AttributeSource::Groups => group_names.to_vec(),
            AttributeSource::Field(field) => match field {
                UserField::Id => vec![user.id.to_string()],
                UserField::Username => vec![user.username.clone()],
                UserField::Email => vec![user.email.clone()],
                UserField::GivenName => user.given_name.iter().cloned().collect(),
                UserField::FamilyName => user.family_name.iter().cloned().collect(),
                UserField::DisplayName => vec![user.shown_name()],
                UserField::Attribute(key) => user
                    .attributes
                    .get(key)
                    .map(|v| v.values())
                    .unwrap_or_default(),
            },
        };
        match &self.filter {
            Some(filter) => filter.apply(raw),
            None => raw,
        }
    }

    /// Checks the rules the text form cannot express by itself.
    pub(crate) fn validate(&self) -> Result<()> {
        let field = "attribute mapping";
        if self.name.trim().is_empty() || self.name.len() > 1024 {
            return Err(Error::invalid(
                field,
                "attribute name must be 1-1024 characters",
            ));
        }
        if self
            .name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::invalid(
                field,
                format!("attribute name {:?} contains whitespace", self.name),
            ));
        }
        if let AttributeSource::Constant(v) = &self.source
            && (v.is_empty() || v.chars().any(char::is_control))
        {
            return Err(Error::invalid(
                field,
                format!("constant for {:?} must be non-empty text", self.name),
            ));
        }
        if let Some(ValueFilter::Prefix(p) | ValueFilter::StripPrefix(p)) = &self.filter
            && p.is_empty()
        {
            return Err(Error::invalid(
                field,
                format!("filter prefix for {:?} must not be empty", self.name),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for AttributeMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}=", self.name, self.name_format.short())?;
        match &self.source {
            AttributeSource::Field(field) => write!(f, "{field}")?,
            AttributeSource::Constant(v) => write!(f, "const:{v}")?,
            AttributeSource::Groups => f.write_str("groups")?,
        }
        match &self.filter {
            Some(ValueFilter::Prefix(p)) => write!(f, "|prefix:{p}"),
            Some(ValueFilter::StripPrefix(p)) => write!(f, "|strip-prefix:{p}"),
            None => Ok(()),
        }
    }
}

impl FromStr for AttributeMapping {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(
                "attribute mapping",
                format!("{raw:?}: {why} (expected NAME[@FORMAT]=SOURCE[|FILTER])"),
            )
        };
        let (lhs, rhs) = raw.split_once('=').ok_or_else(|| bad("missing '='"))?;
        let (name, name_format) = match lhs.rsplit_once('@') {
            Some((name, "basic")) => (name, AttributeNameFormat::Basic),
            Some((name, "uri")) => (name, AttributeNameFormat::Uri),
            Some((name, "unspecified")) => (name, AttributeNameFormat::Unspecified),
            _ => (lhs, AttributeNameFormat::Uri),
        };
        // Constants may contain '|', so only look for a filter after non-constant sources.
        let (source, filter) = match rhs.strip_prefix("const:") {
            Some(value) => (AttributeSource::Constant(value.to_string()), None),
            None => {
                let (source, filter) = match rhs.split_once('|') {
                    Some((s, f)) => (s, Some(f)),
                    None => (rhs, None),
                };
                let source = if source == "groups" {
                    AttributeSource::Groups
                } else {
                    AttributeSource::Field(source.parse()?)
                };
                let filter = match filter {
                    None => None,
                    Some(f) => Some(if let Some(p) = f.strip_prefix("strip-prefix:") {
                        ValueFilter::StripPrefix(p.to_string())
                    } else if let Some(p) = f.strip_prefix("prefix:") {
                        ValueFilter::Prefix(p.to_string())
                    } else {
                        return Err(bad("filter must be prefix:P or strip-prefix:P"));
                    }),
                };
                (source, filter)
            }
        };
        let mapping = AttributeMapping {
            name: name.to_string(),
            name_format,
            friendly_name: None,
            source,
            filter,
        };
        mapping.validate()?;
        Ok(mapping)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::directory::{AttributeValue, UserStatus};
    use crate::ids::UserId;

    fn user() -> User {
        User {
            id: UserId::new_random(),
            username: "alice".into(),
            email: "alice@example.org".into(),
            given_name: Some("Alice".into()),
            family_name: None,
            display_name: None,
            attributes: BTreeMap::from([(
                "roles".to_string(),
                AttributeValue::Many(vec!["wiki-admin".into(), "hr".into()]),
            )]),
            status: UserStatus::Active,
            has_password: false,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn text_form_round_trips() {
        for text in [
            "mail@uri=email",
            "memberOf@basic=groups|strip-prefix:wiki-",
            "role@unspecified=const:a|b",
            "urn:oid:2.5.4.42@uri=given_name",
            "r@basic=attr:roles|prefix:wiki-",
        ] {
            let mapping: AttributeMapping = text.parse().unwrap();
            assert_eq!(mapping.to_string(), text);
        }
        let m: AttributeMapping = "mail=email".parse().unwrap();
        assert_eq!(m.name_format, AttributeNameFormat::Uri);
    }

    #[test]
    fn bad_text_is_refused() {
        for text in [
            "mail",
            "mail=nonsense",
            "g=groups|suffix:x",
            "=email",
            "g=groups|prefix:",
        ] {
            assert!(text.parse::<AttributeMapping>().is_err(), "{text}");
        }
    }

    #[test]
    fn values_follow_source_and_filter() {
        let u = user();
        let groups = vec!["wiki-editors".to_string(), "staff".to_string()];
        let v = |t: &str| t.parse::<AttributeMapping>().unwrap().values(&u, &groups);
        assert_eq!(v("g=groups|strip-prefix:wiki-"), vec!["editors"]);
        assert_eq!(v("g=groups|prefix:wiki-"), vec!["wiki-editors"]);
        assert_eq!(v("r=attr:roles|prefix:wiki-"), vec!["wiki-admin"]);
        assert_eq!(v("n=display_name"), vec!["Alice"]);
        assert!(v("f=family_name").is_empty());
        assert_eq!(v("c=const:x"), vec!["x"]);
    }
}
