//! What a registered service provider is: endpoints, keys, NameID policy, attribute release,
//! signing choices and its portal tile.

use std::fmt;
use std::str::FromStr;

use latchkey_saml::encryption::EncryptOptions;
use latchkey_saml::profile::idp::RequestingSp;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::mapping::AttributeMapping;
use crate::error::{Error, Result};
use crate::ids::AppId;

/// A SAML protocol binding an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// HTTP-POST (the usual binding for ACS endpoints).
    HttpPost,
    /// HTTP-Redirect (requests and logout, never assertions).
    HttpRedirect,
    /// HTTP-Artifact.
    HttpArtifact,
    /// SOAP (back-channel logout).
    Soap,
}

impl Binding {
    /// The binding's URN as used in metadata and messages.
    pub fn uri(self) -> &'static str {
        match self {
            Binding::HttpPost => "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            Binding::HttpRedirect => "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            Binding::HttpArtifact => "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact",
            Binding::Soap => "urn:oasis:names:tc:SAML:2.0:bindings:SOAP",
        }
    }

    /// Parses a short name (`post`, `redirect`, `artifact`, `soap`) or a full binding URN.
    pub fn parse(raw: &str) -> Result<Binding> {
        let all = [
            Binding::HttpPost,
            Binding::HttpRedirect,
            Binding::HttpArtifact,
            Binding::Soap,
        ];
        let short = raw.trim().to_ascii_lowercase();
        let found = all.into_iter().find(|b| {
            b.uri() == raw.trim()
                || short == b.short()
                || short.strip_prefix("http-") == Some(b.short())
        });
        found.ok_or_else(|| {
            Error::invalid(
                "binding",
                format!("{raw:?} is not one of: post, redirect, artifact, soap, or a binding URN"),
            )
        })
    }

    fn short(self) -> &'static str {
        match self {
            Binding::HttpPost => "post",
            Binding::HttpRedirect => "redirect",
            Binding::HttpArtifact => "artifact",
            Binding::Soap => "soap",
        }
    }
}

/// An AssertionConsumerService endpoint: where responses are posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsEndpoint {
    /// Absolute http(s) URL.
    pub url: String,
    /// Binding (HTTP-POST or HTTP-Artifact).
    pub binding: Binding,
    /// The index an AuthnRequest may name instead of a URL.
    pub index: u16,
    /// Used when a request names no endpoint.
    pub is_default: bool,
}

/// A single-logout endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Absolute http(s) URL.
    pub url: String,
    /// Binding.
    pub binding: Binding,
}

/// The NameID format asserted to the SP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameIdFormat {
    /// Stable, opaque, per-SP identifier.
    Persistent,
    /// Fresh random identifier per session.
    Transient,
    /// An e-mail address.
    EmailAddress,
    /// No particular format (SP-specific, often the username).
    Unspecified,
}

impl NameIdFormat {
    /// The format's URN.
    pub fn uri(self) -> &'static str {
        match self {
            NameIdFormat::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            NameIdFormat::Transient => "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            NameIdFormat::EmailAddress => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            NameIdFormat::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        }
    }

    /// Parses `persistent`, `transient`, `email`, `unspecified` or a format URN.
    pub fn parse(raw: &str) -> Result<NameIdFormat> {
        let all = [
            NameIdFormat::Persistent,
            NameIdFormat::Transient,
            NameIdFormat::EmailAddress,
            NameIdFormat::Unspecified,
        ];
        let short = raw.trim().to_ascii_lowercase();
        let short = match short.as_str() {
            "email" | "emailaddress" | "email-address" => "email-address",
            other => other,
        };
        all.into_iter()
            .find(|f| f.uri() == raw.trim() || short == f.short())
            .ok_or_else(|| {
                Error::invalid(
                    "name_id_format",
                    format!(
                        "{raw:?} is not one of: persistent, transient, email, unspecified, or a format URN"
                    ),
                )
            })
    }

    /// The format whose URN is exactly `uri`, if any (no allocation: read on every
    /// AuthnRequest that asks for a format).
    pub fn from_uri(uri: &str) -> Option<NameIdFormat> {
        [
            NameIdFormat::Persistent,
            NameIdFormat::Transient,
            NameIdFormat::EmailAddress,
            NameIdFormat::Unspecified,
        ]
        .into_iter()
        .find(|f| f.uri() == uri)
    }

    /// The short name the CLI takes and shows.
    pub fn short(self) -> &'static str {
        match self {
            NameIdFormat::Persistent => "persistent",
            NameIdFormat::Transient => "transient",
            NameIdFormat::EmailAddress => "email-address",
            NameIdFormat::Unspecified => "unspecified",
        }
    }
}

/// Where the NameID value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NameIdSource {
    /// A stored random identifier unique to this (user, app) pair; survives renames and
    /// cannot be correlated across SPs.
    Pairwise,
    /// The user's e-mail address.
    Email,
    /// The user's username.
    Username,
    /// A custom attribute (its first value).
    Attribute(String),
}

impl fmt::Display for NameIdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameIdSource::Pairwise => f.write_str("pairwise"),
            NameIdSource::Email => f.write_str("email"),
            NameIdSource::Username => f.write_str("username"),
            NameIdSource::Attribute(name) => write!(f, "attr:{name}"),
        }
    }
}

impl FromStr for NameIdSource {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self> {
        match raw.trim() {
            "pairwise" | "persistent" => Ok(NameIdSource::Pairwise),
            "email" => Ok(NameIdSource::Email),
            "username" => Ok(NameIdSource::Username),
            other => match other.strip_prefix("attr:") {
                Some(name) => Ok(NameIdSource::Attribute(
                    crate::directory::validate::attribute_key(name)?,
                )),
                None => Err(Error::invalid(
                    "name_id_source",
                    format!("{raw:?} is not one of: pairwise, email, username, attr:NAME"),
                )),
            },
        }
    }
}

impl TryFrom<String> for NameIdSource {
    type Error = Error;

    fn try_from(value: String) -> Result<Self> {
        value.parse()
    }
}

impl From<NameIdSource> for String {
    fn from(value: NameIdSource) -> Self {
        value.to_string()
    }
}

/// How the NameID is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameIdPolicy {
    /// The declared format.
    pub format: NameIdFormat,
    /// Where the value comes from (ignored for transient IDs, which are per session).
    pub source: NameIdSource,
}

impl Default for NameIdPolicy {
    fn default() -> Self {
        NameIdPolicy {
            format: NameIdFormat::Persistent,
            source: NameIdSource::Pairwise,
        }
    }
}

/// How the application appears in the user portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tile {
    /// One line under the name.
    pub description: Option<String>,
    /// Absolute http(s) URL of an icon.
    pub icon_url: Option<String>,
    /// RelayState sent with IdP-initiated sign-in (at most 80 bytes, per the SAML bindings).
    pub default_relay_state: Option<String>,
    /// Whether the tile is shown (hidden apps are still usable SP-initiated).
    pub visible: bool,
    /// The application's own sign-in start page: when set, the tile links there and the
    /// application sends an AuthnRequest (SP-initiated), which SPs prefer to an unsolicited
    /// Response (they can bind it to a request they made). `/saml/init/{id}` keeps working
    /// either way. `https://`, or `http://` on a loopback host only. Absent in data written
    /// before the field existed.
    #[serde(default)]
    pub login_url: Option<String>,
}

impl Default for Tile {
    fn default() -> Self {
        Tile {
            description: None,
            icon_url: None,
            default_relay_state: None,
            visible: true,
            login_url: None,
        }
    }
}

/// Everything that defines an application. This is the seam for other ways of registering an
/// SP: the generic connector fills it from explicit fields, catalogue templates from a
/// template, and an SP-metadata parser from `<SPSSODescriptor>` (entity ID, ACS/SLO
/// endpoints, certificates, NameID format), leaving IdP policy at its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApplication {
    /// The SP's SAML entity ID (unique).
    pub entity_id: String,
    /// Name shown to admins and on the portal tile.
    pub name: String,
    /// Short unique name for launch links (`/saml/init/{slug}`, beside the internal ID):
    /// lower-case letters, digits and hyphens. Left empty at registration it is derived
    /// from the name and made unique ([`super::derive_slug`]); left empty in a
    /// change it stays what it was.
    #[serde(default)]
    pub slug: String,
    /// Where assertions may be sent; responses go nowhere else.
    pub acs: Vec<AcsEndpoint>,
    /// Single-logout endpoint.
    pub slo: Option<Endpoint>,
    /// PEM certificates the SP signs its messages with (several during key rollover).
    /// AuthnRequests, LogoutRequests and LogoutResponses are checked against them only.
    pub signing_certs: Vec<String>,
    /// The SP signs its AuthnRequests (metadata's `AuthnRequestsSigned`): with a signing
    /// certificate registered, an unsigned AuthnRequest is then refused. Many SPs publish a
    /// signing key for logout yet send unsigned AuthnRequests; for them this is false.
    /// Absent in data written before the field existed: true, what a registered
    /// certificate meant then.
    #[serde(default = "yes")]
    pub authn_requests_signed: bool,
    /// Legacy opt-in: believe this SP's unsigned LogoutRequests and LogoutResponses. Off by
    /// default, because an unsigned LogoutRequest can be forged by anyone who guesses a
    /// NameID; with it on, an unsigned request ends at most the browser's own session, and
    /// only when that session signed in to this SP under the NameID it names.
    #[serde(default)]
    pub allow_unsigned_logout: bool,
    /// Opt-out: IdP-initiated launch from another site's link issues at once. Off by
    /// default, because then any site can sign a visitor into this application under their
    /// own account without their say (login CSRF); with it off, such a launch asks the user
    /// to confirm first.
    #[serde(default)]
    pub launch_without_confirmation: bool,
    /// PEM certificate to encrypt assertions to.
    pub encryption_cert: Option<String>,
    /// The `md:EncryptionMethod` algorithm URIs the SP advertised for that certificate, in
    /// its order: the content cipher and key transport are chosen from them (see
    /// [`NewApplication::encrypt_options`]). Kept as advertised, weak ones included: the
    /// choice never picks what we do not allow. Empty (and absent in data written before
    /// the field existed): the defaults every SAML stack reads.
    #[serde(default)]
    pub encryption_methods: Vec<String>,
    /// NameID format and source.
    pub name_id: NameIdPolicy,
    /// The NameID formats a request may ask for (its NameIDPolicy or Subject). Empty: every
    /// format this IdP can make, which is what SPs with default settings need (mod_auth_mellon
    /// asks for transient, node-saml for emailAddress). An admin narrows it when an SP must
    /// never be able to pick, say, a correlatable e-mail NameID over the pairwise one. When
    /// set it includes `name_id.format`, what a request that names no format gets. Absent in
    /// data written before the field existed.
    #[serde(default)]
    pub name_id_formats: Vec<NameIdFormat>,
    /// Attributes released to the SP; nothing else is.
    pub attributes: Vec<AttributeMapping>,
    /// Sign the `<Response>`.
    pub sign_response: bool,
    /// Sign the `<Assertion>`.
    pub sign_assertion: bool,
    /// Encrypt the assertion to `encryption_cert`.
    pub encrypt_assertion: bool,
    /// Portal tile.
    pub tile: Tile,
}

fn yes() -> bool {
    true
}

impl NewApplication {
    /// A fingerprint of the whole definition. The console's settings form posts every
    /// setting it shows (ACS URLs, certificates...) and sends back the fingerprint it was
    /// drawn from ([`crate::apps::Apps::update_if`]; the admin API's `ETag`), so a form opened before someone
    /// else's change (another admin, a metadata refresh rolling the SP's certificate) is
    /// refused instead of putting the old settings back. Every serialized field counts
    /// ([`crate::fingerprint::of`], a stable encoding, not the `Debug` form).
    pub fn version(&self) -> String {
        crate::fingerprint::of(self)
    }

    /// An application with one HTTP-POST ACS endpoint and safe defaults: pairwise persistent
    /// NameID, no attributes released, response and assertion signed, no encryption.
    pub fn new(
        entity_id: impl Into<String>,
        name: impl Into<String>,
        acs_url: impl Into<String>,
    ) -> Self {
        NewApplication {
            entity_id: entity_id.into(),
            name: name.into(),
            slug: String::new(),
            acs: vec![AcsEndpoint {
                url: acs_url.into(),
                binding: Binding::HttpPost,
                index: 0,
                is_default: true,
            }],
            slo: None,
            signing_certs: Vec::new(),
            authn_requests_signed: true,
            allow_unsigned_logout: false,
            launch_without_confirmation: false,
            encryption_cert: None,
            encryption_methods: Vec::new(),
            name_id: NameIdPolicy::default(),
            name_id_formats: Vec::new(),
            attributes: Vec::new(),
            sign_response: true,
            sign_assertion: true,
            encrypt_assertion: false,
            tile: Tile::default(),
        }
    }

    /// How assertions to this application are encrypted: the best content cipher and key
    /// transport among the algorithms it advertised that we implement and allow (never
    /// RSA PKCS#1 v1.5 or 3DES), else AES-256-GCM under RSA-OAEP.
    pub fn encrypt_options(&self) -> EncryptOptions {
        let advertised: Vec<&str> = self.encryption_methods.iter().map(String::as_str).collect();
        latchkey_saml::encryption::options_for_sp(&advertised)
    }

    /// Whether a request may ask for `format`: the allowed list holds it, or there is no
    /// list. The app's own format is always allowed (a list without it is refused when
    /// stored).
    pub fn allows_name_id_format(&self, format: NameIdFormat) -> bool {
        self.name_id_formats.is_empty()
            || format == self.name_id.format
            || self.name_id_formats.contains(&format)
    }

    /// The allowed list as admins read it (CLI and console): short names, or `any` when
    /// there is no list.
    pub fn name_id_formats_text(&self) -> String {
        if self.name_id_formats.is_empty() {
            return "any".into();
        }
        let names: Vec<&str> = self.name_id_formats.iter().map(|f| f.short()).collect();
        names.join(", ")
    }
}

/// What the AuthnRequest checks ([`latchkey_saml::profile::idp::accept_authn_request`])
/// read of an application, borrowed from it.
impl RequestingSp for NewApplication {
    type Acs = AcsEndpoint;

    fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// `authn_requests_signed` with a certificate to check the signature with: a
    /// signature nobody can check proves nothing.
    fn requests_must_be_signed(&self) -> bool {
        self.authn_requests_signed && !self.signing_certs.is_empty()
    }

    fn acs_endpoints(&self) -> &[AcsEndpoint] {
        &self.acs
    }

    fn allows_name_id_format(&self, format: &str) -> bool {
        NameIdFormat::from_uri(format)
            .is_some_and(|f| NewApplication::allows_name_id_format(self, f))
    }
}

impl latchkey_saml::profile::idp::AcsEndpoint for AcsEndpoint {
    fn location(&self) -> &str {
        &self.url
    }

    fn is_http_post(&self) -> bool {
        self.binding == Binding::HttpPost
    }

    fn index(&self) -> u16 {
        self.index
    }

    /// An application marks one default, and none `false`.
    fn is_default(&self) -> Option<bool> {
        self.is_default.then_some(true)
    }
}

/// A registered application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// Internal ID.
    pub id: AppId,
    /// Its definition.
    #[serde(flatten)]
    pub settings: NewApplication,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
