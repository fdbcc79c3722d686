//! Registering a service provider from its SAML metadata (`<SPSSODescriptor>`).
//!
//! Metadata supplies what the SP itself knows: its entity ID, endpoints, certificates (with
//! the encryption algorithms it advertises) and the NameID format it asks for. IdP policy (attribute release, NameID source, tile) stays
//! at its defaults or comes from a catalogue template, and explicit admin choices are applied
//! by the caller last. This module does no I/O: the caller reads the file or fetches the URL
//! and hands over the text.
//!
//! # Security
//! The document is read through the hardened reader with [`Limits::metadata`] whatever the
//! caller asks. With no trusted keys nothing is verified, so the caller must have obtained
//! the text over a channel the administrator trusts (a file they chose, an HTTPS URL they
//! typed). Every endpoint still passes the registry's rules (absolute http(s) URLs only)
//! when the application is stored.
//!
//! Every signing certificate is registered, whatever `AuthnRequestsSigned` says: the SP's
//! logout messages must be signed and are checked with it. `AuthnRequestsSigned` is kept as
//! the application's `authn_requests_signed`, because many SPs publish a signing key yet
//! send unsigned AuthnRequests, and those must still be answered.

use std::fmt;

use latchkey_saml::metadata::{
    EntityDescriptor, IndexedEndpoint, Metadata, MetadataOptions, SpSsoDescriptor, parse_metadata,
};
use latchkey_xmlsec::crypto::key::MIN_RSA_BITS;
use latchkey_xmlsec::crypto::{KeyKind, VerifyingKey};
use latchkey_xmlsec::dsig::VerifyOptions;
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use super::model::{AcsEndpoint, Binding, Endpoint, NameIdFormat, NameIdSource, NewApplication};
use crate::catalog::Template;

const METADATA_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const MDUI_NS: &str = "urn:oasis:names:tc:SAML:metadata:ui";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// SAML V2.0 Metadata Profile for Algorithm Support.
const ALG_NS: &str = "urn:oasis:names:tc:SAML:metadata:algsupport";

/// Why SP metadata could not become an application. Each variant names what was wrong so
/// the CLI and the API can point at it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataImportError {
    /// The text is not well-formed SAML metadata (or breaks the reader's limits, or its
    /// signature did not verify against the trusted keys).
    #[error("malformed SP metadata: {0}")]
    Malformed(#[source] latchkey_saml::Error),
    /// The metadata's `validUntil` has passed (an admin may allow it explicitly).
    #[error(
        "the metadata expired at {valid_until} (validUntil); allow expired metadata to use it anyway"
    )]
    Expired {
        /// The `validUntil` that passed, RFC 3339.
        valid_until: String,
    },
    /// An aggregate holds several SPs and none was chosen.
    #[error("the metadata describes {} entities; choose one with an entity ID: {}", choices.len(), choices.join(", "))]
    AmbiguousEntity {
        /// The entity IDs of the SPs in the aggregate.
        choices: Vec<String>,
    },
    /// The chosen entity ID is not in the metadata.
    #[error("entity ID {entity_id:?} is not in the metadata (it has: {})", choices.join(", "))]
    UnknownEntity {
        /// The entity ID asked for.
        entity_id: String,
        /// The SP entity IDs the document does hold.
        choices: Vec<String>,
    },
    /// The entity has no SAML 2.0 `SPSSODescriptor` (an IdP's metadata, or SAML 1.x only).
    #[error("entity {entity_id:?} has no SAML 2.0 SPSSODescriptor")]
    NoSpRole {
        /// The entity ID.
        entity_id: String,
    },
    /// No `AssertionConsumerService` uses a binding this IdP sends assertions over.
    #[error("entity {entity_id:?} has no AssertionConsumerService with the HTTP-POST binding (found: {})", if found.is_empty() { "none".to_owned() } else { found.join(", ") })]
    NoSupportedAcs {
        /// The entity ID.
        entity_id: String,
        /// The bindings its ACS endpoints do use.
        found: Vec<String>,
    },
}

impl MetadataImportError {
    /// The stable code the admin API answers with.
    pub fn code(&self) -> crate::error::ErrorCode {
        use crate::error::ErrorCode as C;
        match self {
            MetadataImportError::Malformed(_) => C::InvalidMetadata,
            MetadataImportError::Expired { .. } => C::MetadataExpired,
            MetadataImportError::AmbiguousEntity { .. } => C::AmbiguousEntity,
            MetadataImportError::UnknownEntity { .. } => C::UnknownEntity,
            MetadataImportError::NoSpRole { .. } => C::NoSpRole,
            MetadataImportError::NoSupportedAcs { .. } => C::NoSupportedAcs,
        }
    }

    /// The application field (or request field) the error is about, for API answers.
    pub fn field(&self) -> &'static str {
        match self {
            MetadataImportError::Malformed(_) => "metadata",
            MetadataImportError::Expired { .. } => "valid_until",
            MetadataImportError::AmbiguousEntity { .. }
            | MetadataImportError::UnknownEntity { .. } => "entity_id",
            MetadataImportError::NoSpRole { .. } => "SPSSODescriptor",
            MetadataImportError::NoSupportedAcs { .. } => "acs",
        }
    }
}

/// How to read an SP's metadata.
#[derive(Debug, Clone)]
pub struct SpMetadataOptions<'k> {
    /// Which SP to take from an aggregate (`EntitiesDescriptor`); a single
    /// `EntityDescriptor` must match it when given.
    pub entity_id: Option<String>,
    /// The current time, for `validUntil`.
    pub now: OffsetDateTime,
    /// Accept metadata whose `validUntil` has passed (the admin's explicit choice).
    pub allow_expired: bool,
    /// Keys one of which must have signed the document. Empty: nothing is verified.
    pub trusted_keys: &'k [VerifyingKey],
    /// How the signature is checked when keys are given (SHA-1 and 1024-bit RSA are
    /// opt-ins for old federations).
    pub verify: VerifyOptions,
}

impl SpMetadataOptions<'_> {
    /// Unsigned metadata read at `now`, a single SP expected.
    pub fn new(now: OffsetDateTime) -> Self {
        SpMetadataOptions {
            entity_id: None,
            now,
            allow_expired: false,
            trusted_keys: &[],
            verify: VerifyOptions::default(),
        }
    }
}

/// Something in the metadata that was left out, for the admin to see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportWarning {
    /// An ACS endpoint with a binding this IdP does not send assertions over.
    AcsBindingIgnored {
        /// Its URL.
        url: String,
        /// Its binding URI.
        binding: String,
    },
    /// No single-logout endpoint with the Redirect or POST binding.
    SloIgnored {
        /// The bindings that were offered.
        bindings: Vec<String>,
    },
    /// The SP says it signs requests but publishes no signing key, so its signatures
    /// cannot be checked and its requests are accepted as unsigned requests are.
    NoSigningCert,
    /// None of the NameID formats listed is one this IdP issues.
    NameIdFormatsIgnored {
        /// The formats listed.
        formats: Vec<String>,
    },
    /// The SP lists the NameID formats it accepts, and the application's own format (what
    /// a request naming none, or an IdP-initiated login, gets) is another: such logins will
    /// likely fail at the SP. A request naming one of the SP's formats gets that one.
    NameIdFormatMismatch {
        /// The application's own format.
        configured: String,
        /// The formats the SP lists.
        listed: Vec<String>,
    },
    /// The SP lists the NameID formats it accepts and the application's allowed list holds
    /// none of them: every request that names one of them is refused.
    NameIdFormatsDisallowed {
        /// The formats the application allows (short names).
        allowed: Vec<String>,
        /// The formats the SP lists.
        listed: Vec<String>,
    },
    /// The SP publishes a signing key and lists the signature algorithms it uses
    /// (`alg:SigningMethod`), none of which this IdP accepts: its signed requests and
    /// logout messages will be refused.
    SigningMethodsRefused {
        /// The algorithms listed.
        listed: Vec<String>,
    },
    /// A signing certificate the SP publishes holds an RSA key under 2048 bits, which this
    /// IdP refuses to verify with: its signed requests and logout messages will be refused.
    WeakSigningKey {
        /// The key's size.
        bits: u32,
    },
    /// The SP wants signed assertions (`WantAssertionsSigned`) and the application signs
    /// only the Response: the SP will refuse every login.
    AssertionsNotSigned,
    /// The metadata's `validUntil` has passed and it was used anyway.
    Expired {
        /// The `validUntil`, RFC 3339.
        valid_until: String,
    },
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportWarning::AcsBindingIgnored { url, binding } => {
                write!(f, "ignored AssertionConsumerService {url} ({binding} is not supported)")
            }
            ImportWarning::SloIgnored { bindings } => write!(
                f,
                "ignored SingleLogoutService (bindings {}; only HTTP-Redirect and HTTP-POST are used)",
                bindings.join(", ")
            ),
            ImportWarning::NoSigningCert => f.write_str(
                "AuthnRequestsSigned is true but no signing certificate is published; requests are not checked",
            ),
            ImportWarning::NameIdFormatsIgnored { formats } => write!(
                f,
                "no supported NameIDFormat among {}; using persistent",
                formats.join(", ")
            ),
            ImportWarning::NameIdFormatMismatch { configured, listed } => write!(
                f,
                "the SP lists NameID formats {} but the application's own is {configured}: \
                 requests that name no format, and IdP-initiated logins, get it and may fail \
                 (set --name-id-format)",
                listed.join(", ")
            ),
            ImportWarning::NameIdFormatsDisallowed { allowed, listed } => write!(
                f,
                "the SP lists NameID formats {} but the application allows only {}: its \
                 requests for them will be refused (set --name-id-formats)",
                listed.join(", "),
                allowed.join(", ")
            ),
            ImportWarning::SigningMethodsRefused { listed } => write!(
                f,
                "the SP signs with {}, which this IdP does not accept (RSA or ECDSA with \
                 SHA-2 only): its signed requests and logout messages will be refused",
                listed.join(", ")
            ),
            ImportWarning::WeakSigningKey { bits } => write!(
                f,
                "the SP's signing certificate holds a {bits}-bit RSA key; this IdP verifies only \
                 RSA keys of 2048 bits or more, so its signed requests and logout messages will \
                 be refused (ask the SP for a new key)",
            ),
            ImportWarning::AssertionsNotSigned => f.write_str(
                "the SP wants signed assertions (WantAssertionsSigned) but the application signs \
                 only the Response: its logins will fail (set --sign-assertion true)",
            ),
            ImportWarning::Expired { valid_until } => {
                write!(f, "the metadata expired at {valid_until}; used anyway as asked")
            }
        }
    }
}

/// What an SP's metadata says, mapped onto the application model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    /// The SP's entity ID.
    pub entity_id: String,
    /// `mdui:DisplayName`, else the Organization's display name, if any.
    pub display_name: Option<String>,
    /// HTTP-POST ACS endpoints, exactly one of them the default.
    pub acs: Vec<AcsEndpoint>,
    /// The single-logout endpoint (Redirect preferred, else POST).
    pub slo: Option<Endpoint>,
    /// PEM signing certificates (only when the SP signs its requests).
    pub signing_certs: Vec<String>,
    /// PEM certificate to encrypt to (an RSA key for `encryption` or unspecified use).
    pub encryption_cert: Option<String>,
    /// The `md:EncryptionMethod` algorithms listed with that certificate's KeyDescriptor.
    pub encryption_methods: Vec<String>,
    /// The first NameID format listed that this IdP issues.
    pub name_id_format: Option<NameIdFormat>,
    /// Every NameID format the SP lists, as listed.
    pub name_id_formats: Vec<String>,
    /// `WantAssertionsSigned`.
    pub want_assertions_signed: bool,
    /// The signature algorithms the SP says it uses (`alg:SigningMethod`, on the entity or
    /// its SPSSODescriptor), as listed; empty when it says nothing.
    pub signing_methods: Vec<String>,
    /// `AuthnRequestsSigned`.
    pub authn_requests_signed: bool,
    /// The earliest `validUntil` of the descriptor and its aggregate: after it the SP's
    /// copy is stale, and the console's dashboard says so ahead of time.
    pub valid_until: Option<OffsetDateTime>,
    /// What was left out.
    pub warnings: Vec<ImportWarning>,
}

impl SpMetadata {
    /// What in `app` (the definition about to be stored: the metadata's, a template's and
    /// the admin's choices together) contradicts this metadata in a way that breaks logins.
    pub fn mismatches(&self, app: &super::NewApplication) -> Vec<ImportWarning> {
        let mut out = Vec::new();
        let configured = app.name_id.format.uri();
        let listed = &self.name_id_formats;
        if !listed.is_empty()
            && !listed.iter().any(|f| {
                f == configured || f == latchkey_saml::assertion::name_id_format::UNSPECIFIED
            })
        {
            out.push(ImportWarning::NameIdFormatMismatch {
                configured: configured.to_owned(),
                listed: listed.clone(),
            });
        }
        // `unspecified` in the SP's list means it takes whatever it gets; a format we do
        // not know cannot be on the allowed list.
        let allowed = |f: &String| {
            f == latchkey_saml::assertion::name_id_format::UNSPECIFIED
                || NameIdFormat::parse(f).is_ok_and(|f| app.allows_name_id_format(f))
        };
        if !app.name_id_formats.is_empty() && !listed.is_empty() && !listed.iter().any(allowed) {
            out.push(ImportWarning::NameIdFormatsDisallowed {
                allowed: app
                    .name_id_formats
                    .iter()
                    .map(|f| f.short().to_owned())
                    .collect(),
                listed: listed.clone(),
            });
        }
        let accepted = |uri: &String| {
            latchkey_xmlsec::crypto::SignatureAlgorithm::from_uri(uri.trim())
                .is_some_and(|a| latchkey_saml::inbound::SIGNATURE_ALGORITHMS.contains(&a))
        };
        if !app.signing_certs.is_empty()
            && !self.signing_methods.is_empty()
            && !self.signing_methods.iter().any(accepted)
        {
            out.push(ImportWarning::SigningMethodsRefused {
                listed: self.signing_methods.clone(),
            });
        }
        if self.want_assertions_signed && !app.sign_assertion {
            out.push(ImportWarning::AssertionsNotSigned);
        }
        out
    }

    /// Reads an SP's metadata document (an EntityDescriptor, or an aggregate with
    /// `options.entity_id` choosing the SP).
    pub fn parse(xml: &str, options: &SpMetadataOptions<'_>) -> Result<Self, MetadataImportError> {
        let read = MetadataOptions {
            trusted_keys: options.trusted_keys,
            verify: options.verify.clone(),
            now: (!options.allow_expired).then_some(options.now),
            limits: Limits::metadata(),
        };
        let metadata = parse_metadata(xml, &read).map_err(|e| match e {
            latchkey_saml::Error::MetadataExpired { valid_until } => {
                MetadataImportError::Expired { valid_until }
            }
            other => MetadataImportError::Malformed(other),
        })?;
        if let (Metadata::Entities(all), Some(wanted)) = (&metadata, options.entity_id.as_deref())
            && let Some((_, err)) = all
                .skipped
                .iter()
                .find(|(id, _)| id.as_deref() == Some(wanted.trim()))
        {
            // The chosen SP was set aside by the reader: say why rather than "not found".
            return Err(match err {
                latchkey_saml::Error::MetadataExpired { valid_until } => {
                    MetadataImportError::Expired {
                        valid_until: valid_until.clone(),
                    }
                }
                other => MetadataImportError::Malformed(other.clone()),
            });
        }
        let entity = choose(&metadata, options.entity_id.as_deref())?;
        let mut out = Self::from_entity(entity)?;
        let aggregate_until = match &metadata {
            Metadata::Entities(all) => all.valid_until,
            Metadata::Entity(_) => None,
        };
        out.valid_until = [entity.valid_until, aggregate_until]
            .into_iter()
            .flatten()
            .min();
        if let Some(v) = out.valid_until
            && v <= options.now
        {
            out.warnings.push(ImportWarning::Expired {
                valid_until: format_rfc3339(v),
            });
        }
        out.signing_methods = alg_signing_methods(xml, &entity.entity_id);
        if let Some(name) = mdui_display_name(xml, &entity.entity_id) {
            out.display_name = Some(name);
        }
        out.display_name = out.display_name.as_deref().and_then(tidy_name);
        Ok(out)
    }

    /// Maps one parsed EntityDescriptor.
    fn from_entity(entity: &EntityDescriptor) -> Result<Self, MetadataImportError> {
        let entity_id = entity.entity_id.clone();
        let sp = entity
            .sp
            .as_ref()
            .ok_or_else(|| MetadataImportError::NoSpRole {
                entity_id: entity_id.clone(),
            })?;
        let mut warnings = Vec::new();
        let acs = acs_endpoints(&entity_id, sp, &mut warnings)?;
        let slo = slo_endpoint(sp, &mut warnings);

        let signing_keys = || {
            sp.keys
                .iter()
                .filter(|k| k.is_for_signing())
                .flat_map(|k| k.certificates.iter())
        };
        for cert in signing_keys() {
            if let KeyKind::Rsa { bits } = cert.verifying_key().kind()
                && bits < MIN_RSA_BITS
            {
                warnings.push(ImportWarning::WeakSigningKey { bits });
            }
        }
        let signing: Vec<String> = signing_keys().map(|c| c.to_pem()).collect();
        // Registered whatever AuthnRequestsSigned says: logout messages are checked with
        // them. `authn_requests_signed` decides whether AuthnRequests must be signed.
        if sp.authn_requests_signed && signing.is_empty() {
            warnings.push(ImportWarning::NoSigningCert);
        }
        let signing_certs = signing;
        let chosen = latchkey_saml::encryption::encryption_certificate(&sp.keys);
        let encryption_cert = chosen.map(|c| c.to_pem());
        // The algorithms belong to the KeyDescriptor that holds the chosen certificate.
        let encryption_methods = chosen
            .and_then(|c| {
                sp.keys
                    .iter()
                    .find(|k| k.certificates.iter().any(|x| std::ptr::eq(x, c)))
            })
            .map(|k| k.encryption_methods.clone())
            .unwrap_or_default();

        let name_id_format = sp
            .name_id_formats
            .iter()
            .find_map(|f| NameIdFormat::parse(f).ok());
        if name_id_format.is_none() && !sp.name_id_formats.is_empty() {
            warnings.push(ImportWarning::NameIdFormatsIgnored {
                formats: sp.name_id_formats.clone(),
            });
        }
        let display_name = entity.organization.as_ref().and_then(|o| {
            [&o.display_name, &o.name]
                .into_iter()
                .map(|n| n.trim())
                .find(|n| !n.is_empty())
                .map(str::to_owned)
        });
        Ok(SpMetadata {
            entity_id,
            display_name,
            acs,
            slo,
            signing_certs,
            encryption_cert,
            encryption_methods,
            name_id_format,
            name_id_formats: sp.name_id_formats.clone(),
            want_assertions_signed: sp.want_assertions_signed,
            signing_methods: Vec::new(),
            authn_requests_signed: sp.authn_requests_signed,
            valid_until: None,
            warnings,
        })
    }

    /// A new application: the template's policy (attribute release, NameID policy,
    /// signing choices) when one is given, else the safe defaults, with the metadata's
    /// entity ID, endpoints, certificates and name over it.
    ///
    /// Without a template the metadata's NameID format is used, with a source that fits
    /// it (pairwise for persistent, e-mail for emailAddress, username for unspecified).
    /// A template keeps its own NameID policy: it knows what the application expects.
    pub fn application(&self, template: Option<&Template>) -> NewApplication {
        let name = self
            .display_name
            .clone()
            .or_else(|| template.map(|t| t.display_name.clone()))
            .unwrap_or_else(|| self.entity_id.clone());
        let mut app = NewApplication::new(self.entity_id.clone(), name, String::new());
        match template {
            Some(t) => t.apply_to(&mut app),
            None => {
                if let Some(format) = self.name_id_format {
                    app.name_id.format = format;
                    app.name_id.source = match format {
                        NameIdFormat::Persistent | NameIdFormat::Transient => {
                            NameIdSource::Pairwise
                        }
                        NameIdFormat::EmailAddress => NameIdSource::Email,
                        NameIdFormat::Unspecified => NameIdSource::Username,
                    };
                }
            }
        }
        self.apply_to(&mut app);
        app
    }

    /// Refreshes an existing definition from the metadata: ACS and SLO endpoints and
    /// certificates are replaced (a key rollover published in metadata takes effect), and
    /// the assertion is signed when the SP wants it. Entity ID, name and policy are kept.
    ///
    /// An encryption certificate that disappeared from the metadata is kept (with the
    /// algorithms advertised for it) if the application encrypts, so a refresh never
    /// silently turns encryption off; the registry would refuse encryption without a
    /// certificate anyway.
    pub fn apply_to(&self, app: &mut NewApplication) {
        app.acs = self.acs.clone();
        app.slo = self.slo.clone();
        app.signing_certs = self.signing_certs.clone();
        app.authn_requests_signed = self.authn_requests_signed;
        if self.encryption_cert.is_some() || !app.encrypt_assertion {
            app.encryption_cert = self.encryption_cert.clone();
            app.encryption_methods = self.encryption_methods.clone();
        }
        if self.want_assertions_signed {
            app.sign_assertion = true;
        }
    }
}

impl NewApplication {
    /// An application from an SP's metadata with default IdP policy: the one-call form
    /// of [`SpMetadata::parse`] then [`SpMetadata::application`]. The warnings say what
    /// was left out.
    pub fn from_sp_metadata(
        xml: &str,
        options: &SpMetadataOptions<'_>,
    ) -> Result<(NewApplication, Vec<ImportWarning>), MetadataImportError> {
        let metadata = SpMetadata::parse(xml, options)?;
        Ok((metadata.application(None), metadata.warnings))
    }
}

/// The SP entity the caller meant.
fn choose<'m>(
    metadata: &'m Metadata,
    wanted: Option<&str>,
) -> Result<&'m EntityDescriptor, MetadataImportError> {
    let sps = || -> Vec<String> {
        metadata
            .entities()
            .iter()
            .filter(|e| e.sp.is_some())
            .map(|e| e.entity_id.clone())
            .collect()
    };
    if let Some(id) = wanted {
        return metadata
            .find(id.trim())
            .ok_or_else(|| MetadataImportError::UnknownEntity {
                entity_id: id.to_owned(),
                choices: sps(),
            });
    }
    match metadata {
        Metadata::Entity(e) => Ok(e),
        Metadata::Entities(_) => {
            let mut with_sp = metadata.entities().iter().filter(|e| e.sp.is_some());
            match (with_sp.next(), with_sp.next()) {
                (Some(only), None) => Ok(only),
                _ => Err(MetadataImportError::AmbiguousEntity { choices: sps() }),
            }
        }
    }
}

fn acs_endpoints(
    entity_id: &str,
    sp: &SpSsoDescriptor,
    warnings: &mut Vec<ImportWarning>,
) -> Result<Vec<AcsEndpoint>, MetadataImportError> {
    let post = Binding::HttpPost.uri();
    let (kept, dropped): (Vec<&IndexedEndpoint>, Vec<&IndexedEndpoint>) = sp
        .assertion_consumer_services
        .iter()
        .partition(|e| e.binding == post);
    for e in &dropped {
        warnings.push(ImportWarning::AcsBindingIgnored {
            url: e.location.clone(),
            binding: e.binding.clone(),
        });
    }
    // The default among the kept ones, by the metadata rule: marked true, else the first
    // not marked false, else the first.
    let default = kept
        .iter()
        .find(|e| e.is_default == Some(true))
        .or_else(|| kept.iter().find(|e| e.is_default.is_none()))
        .or_else(|| kept.first())
        .map(|e| e.index);
    let Some(default) = default else {
        let mut found: Vec<String> = dropped.iter().map(|e| e.binding.clone()).collect();
        found.dedup();
        return Err(MetadataImportError::NoSupportedAcs {
            entity_id: entity_id.to_owned(),
            found,
        });
    };
    Ok(kept
        .into_iter()
        .map(|e| AcsEndpoint {
            url: e.location.clone(),
            binding: Binding::HttpPost,
            index: e.index,
            is_default: e.index == default,
        })
        .collect())
}

fn slo_endpoint(sp: &SpSsoDescriptor, warnings: &mut Vec<ImportWarning>) -> Option<Endpoint> {
    let found = [Binding::HttpRedirect, Binding::HttpPost]
        .into_iter()
        .find_map(|b| {
            sp.slo_services
                .iter()
                .find(|e| e.binding == b.uri())
                .map(|e| Endpoint {
                    url: e.location.clone(),
                    binding: b,
                })
        });
    if found.is_none() && !sp.slo_services.is_empty() {
        warnings.push(ImportWarning::SloIgnored {
            bindings: sp.slo_services.iter().map(|e| e.binding.clone()).collect(),
        });
    }
    found
}

/// The SP's `mdui:DisplayName` (English, else the first), which the metadata model does
/// not carry. Cosmetic only: it names the application and decides nothing.
fn mdui_display_name(xml: &str, entity_id: &str) -> Option<String> {
    let doc = reader::parse(xml, &Limits::metadata()).ok()?;
    let is = |n: &Node<'_, '_>, ns: &str, local: &str| {
        n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == local
    };
    let entity = doc.tree().descendants().find(|n| {
        is(n, METADATA_NS, "EntityDescriptor")
            && n.attribute("entityID").map(str::trim) == Some(entity_id)
    })?;
    let names: Vec<Node<'_, '_>> = entity
        .children()
        .filter(|n| is(n, METADATA_NS, "SPSSODescriptor"))
        .flat_map(|r| r.children().filter(|n| is(n, METADATA_NS, "Extensions")))
        .flat_map(|x| x.children().filter(|n| is(n, MDUI_NS, "UIInfo")))
        .flat_map(|u| u.children().filter(|n| is(n, MDUI_NS, "DisplayName")))
        .collect();
    let chosen = names
        .iter()
        .find(|n| n.attribute((XML_NS, "lang")) == Some("en"))
        .or_else(|| names.first())?;
    let text: String = chosen
        .children()
        .filter(Node::is_text)
        .filter_map(|t| t.text())
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The `alg:SigningMethod` algorithms of the entity's and its SPSSODescriptor's
/// Extensions, which the metadata model does not carry. Used only to warn.
fn alg_signing_methods(xml: &str, entity_id: &str) -> Vec<String> {
    let Ok(doc) = reader::parse(xml, &Limits::metadata()) else {
        return Vec::new();
    };
    let is = |n: &Node<'_, '_>, ns: &str, local: &str| {
        n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == local
    };
    let Some(entity) = doc.tree().descendants().find(|n| {
        is(n, METADATA_NS, "EntityDescriptor")
            && n.attribute("entityID").map(str::trim) == Some(entity_id)
    }) else {
        return Vec::new();
    };
    std::iter::once(entity)
        .chain(
            entity
                .children()
                .filter(|n| is(n, METADATA_NS, "SPSSODescriptor")),
        )
        .flat_map(|r| r.children().filter(|n| is(n, METADATA_NS, "Extensions")))
        .flat_map(|x| x.children().filter(|n| is(n, ALG_NS, "SigningMethod")))
        .filter_map(|m| m.attribute("Algorithm"))
        .map(|a| a.trim().to_owned())
        .collect()
}

/// A name from metadata as the registry accepts names: whitespace runs (newlines from
/// pretty-printed XML included) made one space, control characters dropped, cut to the
/// longest name allowed. A name that is empty then is no name.
fn tidy_name(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    let name: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(crate::directory::validate::MAX_NAME)
        .collect();
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn format_rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::tidy_name;

    #[test]
    fn names_from_metadata_fit_the_registry() {
        assert_eq!(
            tidy_name("  Team\n   Wiki\u{7}  ").as_deref(),
            Some("Team Wiki")
        );
        assert_eq!(tidy_name(" \n\t "), None);
        let long = "x".repeat(1000);
        let cut = tidy_name(&long).unwrap();
        assert_eq!(cut.chars().count(), crate::directory::validate::MAX_NAME);
        assert!(crate::directory::validate::name("name", &cut).is_ok());
    }
}
