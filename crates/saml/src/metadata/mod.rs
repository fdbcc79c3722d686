//! SAML 2.0 metadata (SAML metadata §2): the model, generation of our own
//! EntityDescriptor, and reading a peer's (single or aggregate).
//!
//! One model serves both directions, so what we generate round-trips through what we
//! read. Only the parts Latchkey uses are modelled; unknown elements (Extensions,
//! RoleDescriptors of other protocols, AttributeAuthority...) are skipped when reading.

mod generate;
mod parse;

pub use parse::{EntitiesDescriptor, Metadata, MetadataOptions, parse_metadata};

use latchkey_xmlsec::crypto::{Certificate, VerifyingKey};
use time::{Duration, OffsetDateTime};

/// The SAML 2.0 protocol URI, which a role's `protocolSupportEnumeration` must list.
pub const SAML2_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// An endpoint: where a binding sends messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The binding URI (see [`crate::authn_request::binding_uri`]).
    pub binding: String,
    /// The URL.
    pub location: String,
    /// Where responses go, when different.
    pub response_location: Option<String>,
}

/// An indexed endpoint (AssertionConsumerService).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEndpoint {
    /// The binding URI.
    pub binding: String,
    /// The URL.
    pub location: String,
    /// Its index, named by AuthnRequests' AssertionConsumerServiceIndex.
    pub index: u16,
    /// Whether it is the default.
    pub is_default: Option<bool>,
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// Signing (and verifying) only.
    Signing,
    /// Encryption only.
    Encryption,
}

/// A KeyDescriptor: certificates for signing, encryption, or (no `use`) both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescriptor {
    /// `None` means the key serves both uses.
    pub key_use: Option<KeyUse>,
    /// Its certificates (usually one).
    pub certificates: Vec<Certificate>,
    /// The `md:EncryptionMethod` algorithm URIs the owner will decrypt with this key, in
    /// its order (empty: it said nothing). A peer picks from them what it supports and
    /// ignores the rest ([`crate::encryption::options_for_sp`]), so unknown or weak URIs
    /// are kept as written. Parameters inside the element (KeySize, OAEPparams,
    /// DigestMethod) are not recorded: we state our own in the EncryptedKey.
    pub encryption_methods: Vec<String>,
}

impl KeyDescriptor {
    /// Whether the key may be used to verify signatures.
    pub fn is_for_signing(&self) -> bool {
        self.key_use != Some(KeyUse::Encryption)
    }
}

/// The IdP role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdpSsoDescriptor {
    /// The IdP wants AuthnRequests signed.
    pub want_authn_requests_signed: bool,
    /// Its keys.
    pub keys: Vec<KeyDescriptor>,
    /// NameID formats it supports.
    pub name_id_formats: Vec<String>,
    /// SingleSignOnService endpoints.
    pub sso_services: Vec<Endpoint>,
    /// SingleLogoutService endpoints.
    pub slo_services: Vec<Endpoint>,
}

/// The SP role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpSsoDescriptor {
    /// The SP signs its AuthnRequests.
    pub authn_requests_signed: bool,
    /// The SP wants assertions signed.
    pub want_assertions_signed: bool,
    /// Its keys.
    pub keys: Vec<KeyDescriptor>,
    /// NameID formats it supports.
    pub name_id_formats: Vec<String>,
    /// AssertionConsumerService endpoints.
    pub assertion_consumer_services: Vec<IndexedEndpoint>,
    /// SingleLogoutService endpoints.
    pub slo_services: Vec<Endpoint>,
}

impl SpSsoDescriptor {
    /// The ACS an AuthnRequest names by index, or else the default one by the IdP's one rule
    /// ([`crate::profile::idp::default_acs`]: an HTTP-POST endpoint, the one marked
    /// `isDefault="true"`, else the lowest-indexed not marked false, else the lowest-indexed).
    pub fn acs(&self, index: Option<u16>) -> Option<&IndexedEndpoint> {
        let list = &self.assertion_consumer_services;
        match index {
            Some(i) => list.iter().find(|e| e.index == i),
            None => crate::profile::idp::default_acs(list),
        }
    }
}

/// The Organization element (one language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// OrganizationName.
    pub name: String,
    /// OrganizationDisplayName.
    pub display_name: String,
    /// OrganizationURL.
    pub url: String,
    /// The `xml:lang` of all three.
    pub lang: String,
}

/// A ContactPerson.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPerson {
    /// technical, support, administrative, billing or other.
    pub contact_type: String,
    /// Company.
    pub company: Option<String>,
    /// GivenName.
    pub given_name: Option<String>,
    /// SurName.
    pub surname: Option<String>,
    /// EmailAddress values (`mailto:` URIs by convention).
    pub email_addresses: Vec<String>,
    /// TelephoneNumber values.
    pub telephone_numbers: Vec<String>,
}

/// An EntityDescriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityDescriptor {
    /// The entity ID.
    pub entity_id: String,
    /// The XML ID (needed to sign it).
    pub id: Option<String>,
    /// After this the metadata must not be used.
    pub valid_until: Option<OffsetDateTime>,
    /// How long a consumer may cache it.
    pub cache_duration: Option<Duration>,
    /// The IdP role, if it has one (SAML 2.0 only).
    pub idp: Option<IdpSsoDescriptor>,
    /// The SP role, if it has one (SAML 2.0 only).
    pub sp: Option<SpSsoDescriptor>,
    /// The organization.
    pub organization: Option<Organization>,
    /// Contacts.
    pub contacts: Vec<ContactPerson>,
}

impl EntityDescriptor {
    /// An entity with no roles yet.
    pub fn new(entity_id: impl Into<String>) -> Self {
        Self {
            entity_id: entity_id.into(),
            id: None,
            valid_until: None,
            cache_duration: None,
            idp: None,
            sp: None,
            organization: None,
            contacts: Vec::new(),
        }
    }

    /// The IdP's signing keys: what an SP should trust for this IdP's signatures.
    pub fn idp_signing_keys(&self) -> Vec<VerifyingKey> {
        signing_keys(self.idp.as_ref().map(|r| r.keys.as_slice()))
    }

    /// The SP's signing keys: what an IdP should trust for this SP's signed requests.
    pub fn sp_signing_keys(&self) -> Vec<VerifyingKey> {
        signing_keys(self.sp.as_ref().map(|r| r.keys.as_slice()))
    }

    /// Whether the metadata may be used at `now` (`validUntil` not passed).
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.valid_until.is_none_or(|v| now < v)
    }
}

fn signing_keys(keys: Option<&[KeyDescriptor]>) -> Vec<VerifyingKey> {
    keys.unwrap_or_default()
        .iter()
        .filter(|k| k.is_for_signing())
        .flat_map(|k| k.certificates.iter().map(|c| c.verifying_key().clone()))
        .collect()
}
