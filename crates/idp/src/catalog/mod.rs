//! Catalogue of connector templates: one TOML file per application kind, shipped
//! inside the binary, each pre-filling the NameID and the attribute names that the
//! application's own SAML/JIT code reads.
//!
//! Why data files and not code: the facts come from vendor documents that change;
//! a reviewer can check a TOML file against the page its `docs` key names without
//! reading Rust. The files live in `crates/idp/catalog/` and are compiled in with
//! `include_str!`; a test checks that every file in that folder is listed here and
//! parses, so a template cannot be added and forgotten, or shipped broken.

mod template;

pub use template::{SpSetting, Template, UrlPattern};

/// What can go wrong reading the catalogue or filling in a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A shipped template file does not parse or breaks a rule (a build defect,
    /// caught by the catalogue's tests).
    #[error("connector template {template:?} is invalid: {reason}")]
    Invalid {
        /// The file stem of the template.
        template: String,
        /// Which rule failed.
        reason: String,
    },
    /// No template has that name.
    #[error("no connector template named {0:?}")]
    NotFound(String),
    /// A URL pattern was filled without a value for one of its placeholders.
    #[error("no value given for placeholder {{{0}}}")]
    MissingPlaceholder(String),
    /// An application was asked for from a template that has no pattern for one of
    /// its URLs (the generic template); the URL must be given explicitly.
    #[error("template {template:?} has no {what} pattern; give the URL explicitly")]
    NoUrlPattern {
        /// The template.
        template: String,
        /// `acs_url` or `entity_id`.
        what: &'static str,
    },
}

/// The shipped template files: (file stem, contents).
const FILES: &[(&str, &str)] = &[
    (
        "generic-saml",
        include_str!("../../catalog/generic-saml.toml"),
    ),
    ("gitlab", include_str!("../../catalog/gitlab.toml")),
    ("grafana", include_str!("../../catalog/grafana.toml")),
    ("nextcloud", include_str!("../../catalog/nextcloud.toml")),
    ("mattermost", include_str!("../../catalog/mattermost.toml")),
    ("sentry", include_str!("../../catalog/sentry.toml")),
    ("zendesk", include_str!("../../catalog/zendesk.toml")),
    ("slack", include_str!("../../catalog/slack.toml")),
    (
        "atlassian-cloud",
        include_str!("../../catalog/atlassian-cloud.toml"),
    ),
    (
        "aws-iam-identity-center",
        include_str!("../../catalog/aws-iam-identity-center.toml"),
    ),
    ("salesforce", include_str!("../../catalog/salesforce.toml")),
    (
        "latchkey-wiki",
        include_str!("../../catalog/latchkey-wiki.toml"),
    ),
    (
        "latchkey-helpdesk",
        include_str!("../../catalog/latchkey-helpdesk.toml"),
    ),
];

/// The names of all shipped templates, in catalogue order, without parsing them.
pub fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _)| *name)
}

/// Every shipped template, parsed.
///
/// The files are compiled in and checked by tests, so an error here means a broken
/// build; it is still returned rather than panicking, as the server must not abort.
pub fn templates() -> Result<Vec<Template>, CatalogError> {
    FILES
        .iter()
        .map(|(stem, text)| template::parse(stem, text))
        .collect()
}

/// The template with this name.
pub fn get(name: &str) -> Result<Template, CatalogError> {
    let (stem, text) = FILES
        .iter()
        .find(|(stem, _)| *stem == name)
        .ok_or_else(|| CatalogError::NotFound(name.to_owned()))?;
    template::parse(stem, text)
}

/// Parses a template from text, for admins who keep their own templates; the same
/// rules as for the shipped ones apply.
pub fn parse(name: &str, text: &str) -> Result<Template, CatalogError> {
    template::parse(name, text)
}

#[cfg(test)]
mod tests;
