//! Reading metadata: one EntityDescriptor, or an EntitiesDescriptor aggregate.
//!
//! # Security
//! When trusted keys are configured, the document element's signature must verify and
//! everything is read from the verified element. Without keys nothing is verified: use
//! that only for metadata that came over a channel the administrator trusts (a file
//! they placed, a pinned HTTPS fetch).
//!
//! A broken entity in an aggregate (a certificate we cannot read, a missing required
//! attribute) is set aside with its error instead of failing the whole federation.

use latchkey_xmlsec::crypto::{Certificate, VerifyingKey};
use latchkey_xmlsec::dsig::{self, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;
use time::{Duration, OffsetDateTime};

use super::{
    ContactPerson, Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor,
    KeyUse, Organization, SAML2_PROTOCOL, SpSsoDescriptor,
};
use crate::error::{Error, Result};
use crate::ns::{DSIG, METADATA, XML};
use crate::read;
use crate::time::{format_datetime, parse_duration};

/// How to read metadata.
#[derive(Debug, Clone)]
pub struct MetadataOptions<'k> {
    /// Keys one of which must have signed the document element. Empty: do not verify.
    pub trusted_keys: &'k [VerifyingKey],
    /// Signature verification options (SHA-1 opt-in for old federations).
    pub verify: VerifyOptions,
    /// When given, expired metadata is refused (and expired entities in an aggregate
    /// are set aside).
    pub now: Option<OffsetDateTime>,
    /// Reader limits; [`Limits::metadata`] by default.
    pub limits: Limits,
}

impl Default for MetadataOptions<'_> {
    fn default() -> Self {
        Self {
            trusted_keys: &[],
            verify: VerifyOptions::default(),
            now: None,
            limits: Limits::metadata(),
        }
    }
}

/// A metadata document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metadata {
    /// One EntityDescriptor (boxed: it is much larger than the aggregate's header).
    Entity(Box<EntityDescriptor>),
    /// An aggregate.
    Entities(EntitiesDescriptor),
}

impl Metadata {
    /// Every usable entity in the document.
    pub fn entities(&self) -> &[EntityDescriptor] {
        match self {
            Metadata::Entity(e) => std::slice::from_ref(e),
            Metadata::Entities(a) => &a.entities,
        }
    }

    /// The entity with this entity ID.
    pub fn find(&self, entity_id: &str) -> Option<&EntityDescriptor> {
        self.entities().iter().find(|e| e.entity_id == entity_id)
    }
}

/// An EntitiesDescriptor, nested groups flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitiesDescriptor {
    /// The aggregate's Name.
    pub name: Option<String>,
    /// Its XML ID.
    pub id: Option<String>,
    /// After this the whole aggregate must not be used.
    pub valid_until: Option<OffsetDateTime>,
    /// How long a consumer may cache it.
    pub cache_duration: Option<Duration>,
    /// The entities that were read, in document order.
    pub entities: Vec<EntityDescriptor>,
    /// Entities set aside, with their entity ID when known and why.
    pub skipped: Vec<(Option<String>, Error)>,
}

/// Parses a metadata document.
pub fn parse_metadata(xml: &str, options: &MetadataOptions<'_>) -> Result<Metadata> {
    let doc = reader::parse(xml, &options.limits)?;
    let root = doc.root_element();
    let verified;
    let node = if options.trusted_keys.is_empty() {
        root
    } else {
        verified = dsig::verify_element(&doc, root, options.trusted_keys, &options.verify)?;
        verified.element()
    };
    if read::is(node, METADATA, "EntityDescriptor") {
        let e = parse_entity(node)?;
        if let (Some(now), Some(v)) = (options.now, e.valid_until)
            && now >= v
        {
            return Err(Error::MetadataExpired {
                valid_until: format_datetime(v),
            });
        }
        return Ok(Metadata::Entity(Box::new(e)));
    }
    read::expect(
        node,
        METADATA,
        "EntitiesDescriptor",
        "md:EntitiesDescriptor",
    )?;
    let valid_until = read::datetime_attr(node, "validUntil")?;
    if let (Some(now), Some(v)) = (options.now, valid_until)
        && now >= v
    {
        return Err(Error::MetadataExpired {
            valid_until: format_datetime(v),
        });
    }
    let mut out = EntitiesDescriptor {
        name: read::optional_attr(node, "Name"),
        id: read::optional_attr(node, "ID"),
        valid_until,
        cache_duration: duration_attr(node)?,
        entities: Vec::new(),
        skipped: Vec::new(),
    };
    // Nested groups are walked with an explicit stack; the reader's depth limit bounds
    // it, but no recursion is needed.
    let mut stack: Vec<Node<'_, '_>> = node.children().filter(Node::is_element).rev().collect();
    while let Some(child) = stack.pop() {
        if read::is(child, METADATA, "EntitiesDescriptor") {
            match read::datetime_attr(child, "validUntil") {
                Ok(Some(v)) if options.now.is_some_and(|now| now >= v) => {
                    out.skipped.push((
                        read::optional_attr(child, "Name"),
                        Error::MetadataExpired {
                            valid_until: format_datetime(v),
                        },
                    ));
                }
                Ok(_) => stack.extend(child.children().filter(Node::is_element).rev()),
                Err(e) => out.skipped.push((read::optional_attr(child, "Name"), e)),
            }
        } else if read::is(child, METADATA, "EntityDescriptor") {
            match parse_entity(child) {
                Ok(e)
                    if e.valid_until
                        .is_some_and(|v| options.now.is_some_and(|now| now >= v)) =>
                {
                    let v = e.valid_until.map(format_datetime).unwrap_or_default();
                    out.skipped
                        .push((Some(e.entity_id), Error::MetadataExpired { valid_until: v }));
                }
                Ok(e) => out.entities.push(e),
                Err(err) => out
                    .skipped
                    .push((read::optional_attr(child, "entityID"), err)),
            }
        }
    }
    Ok(Metadata::Entities(out))
}

fn duration_attr(node: Node<'_, '_>) -> Result<Option<Duration>> {
    node.attribute("cacheDuration")
        .map(|d| parse_duration(d.trim()))
        .transpose()
}

/// Whether a role supports SAML 2.0.
fn supports_saml2(role: Node<'_, '_>) -> bool {
    role.attribute("protocolSupportEnumeration")
        .is_some_and(|p| p.split_ascii_whitespace().any(|u| u == SAML2_PROTOCOL))
}

fn parse_entity(node: Node<'_, '_>) -> Result<EntityDescriptor> {
    const E: &str = "md:EntityDescriptor";
    let entity_id = read::required_attr(node, E, "entityID")?.trim().to_owned();
    let idp = read::children(node, METADATA, "IDPSSODescriptor")
        .find(|r| supports_saml2(*r))
        .map(parse_idp)
        .transpose()?;
    let sp = read::children(node, METADATA, "SPSSODescriptor")
        .find(|r| supports_saml2(*r))
        .map(parse_sp)
        .transpose()?;
    let organization = read::optional_child(node, METADATA, "Organization", E, "md:Organization")?
        .map(parse_organization)
        .transpose()?;
    let contacts = read::children(node, METADATA, "ContactPerson")
        .map(parse_contact)
        .collect::<Result<Vec<_>>>()?;
    Ok(EntityDescriptor {
        entity_id,
        id: read::optional_attr(node, "ID"),
        valid_until: read::datetime_attr(node, "validUntil")?,
        cache_duration: duration_attr(node)?,
        idp,
        sp,
        organization,
        contacts,
    })
}

fn parse_keys(role: Node<'_, '_>) -> Result<Vec<KeyDescriptor>> {
    read::children(role, METADATA, "KeyDescriptor")
        .map(|k| {
            let key_use = match k.attribute("use").map(str::trim) {
                None => None,
                Some("signing") => Some(KeyUse::Signing),
                Some("encryption") => Some(KeyUse::Encryption),
                Some(other) => {
                    return Err(Error::InvalidValue {
                        element: "md:KeyDescriptor",
                        attribute: "use",
                        value: other.to_owned(),
                    });
                }
            };
            let mut certificates = Vec::new();
            for info in read::children(k, DSIG, "KeyInfo") {
                for data in read::children(info, DSIG, "X509Data") {
                    for c in read::children(data, DSIG, "X509Certificate") {
                        let text = read::text_only(c, "ds:X509Certificate")?;
                        certificates.push(
                            Certificate::from_base64(&text).map_err(|e| Error::Xml(e.into()))?,
                        );
                    }
                }
            }
            let encryption_methods = read::children(k, METADATA, "EncryptionMethod")
                .map(|m| {
                    read::required_attr(m, "md:EncryptionMethod", "Algorithm")
                        .map(|a| a.trim().to_owned())
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(KeyDescriptor {
                key_use,
                certificates,
                encryption_methods,
            })
        })
        .collect()
}

fn parse_endpoints(
    role: Node<'_, '_>,
    local: &'static str,
    shown: &'static str,
) -> Result<Vec<Endpoint>> {
    read::children(role, METADATA, local)
        .map(|e| {
            Ok(Endpoint {
                binding: read::required_attr(e, shown, "Binding")?.trim().to_owned(),
                location: read::required_attr(e, shown, "Location")?.trim().to_owned(),
                response_location: read::optional_attr(e, "ResponseLocation")
                    .map(|l| l.trim().to_owned()),
            })
        })
        .collect()
}

fn parse_name_id_formats(role: Node<'_, '_>) -> Result<Vec<String>> {
    read::children(role, METADATA, "NameIDFormat")
        .map(|f| read::uri_text(f, "md:NameIDFormat"))
        .collect()
}

fn parse_idp(role: Node<'_, '_>) -> Result<IdpSsoDescriptor> {
    const R: &str = "md:IDPSSODescriptor";
    Ok(IdpSsoDescriptor {
        want_authn_requests_signed: read::bool_attr(role, R, "WantAuthnRequestsSigned")?
            .unwrap_or(false),
        keys: parse_keys(role)?,
        name_id_formats: parse_name_id_formats(role)?,
        sso_services: parse_endpoints(role, "SingleSignOnService", "md:SingleSignOnService")?,
        slo_services: parse_endpoints(role, "SingleLogoutService", "md:SingleLogoutService")?,
    })
}

fn parse_sp(role: Node<'_, '_>) -> Result<SpSsoDescriptor> {
    const R: &str = "md:SPSSODescriptor";
    const A: &str = "md:AssertionConsumerService";
    let mut acs: Vec<IndexedEndpoint> = Vec::new();
    for e in read::children(role, METADATA, "AssertionConsumerService") {
        let index = read::u16_attr(e, A, "index")?.ok_or(Error::MissingAttribute {
            element: A,
            attribute: "index",
        })?;
        if acs.iter().any(|x| x.index == index) {
            return Err(Error::DuplicateEndpointIndex(index));
        }
        acs.push(IndexedEndpoint {
            binding: read::required_attr(e, A, "Binding")?.trim().to_owned(),
            location: read::required_attr(e, A, "Location")?.trim().to_owned(),
            index,
            is_default: read::bool_attr(e, A, "isDefault")?,
        });
    }
    Ok(SpSsoDescriptor {
        authn_requests_signed: read::bool_attr(role, R, "AuthnRequestsSigned")?.unwrap_or(false),
        want_assertions_signed: read::bool_attr(role, R, "WantAssertionsSigned")?.unwrap_or(false),
        keys: parse_keys(role)?,
        name_id_formats: parse_name_id_formats(role)?,
        assertion_consumer_services: acs,
        slo_services: parse_endpoints(role, "SingleLogoutService", "md:SingleLogoutService")?,
    })
}

/// The child in the preferred language (`en`, else the first).
fn localized<'a, 'i>(node: Node<'a, 'i>, local: &'static str) -> Option<Node<'a, 'i>> {
    let mut all = read::children(node, METADATA, local);
    let first = all.next()?;
    let english = std::iter::once(first)
        .chain(all)
        .find(|n| n.attribute((XML, "lang")) == Some("en"));
    Some(english.unwrap_or(first))
}

fn parse_organization(node: Node<'_, '_>) -> Result<Organization> {
    const O: &str = "md:Organization";
    let name = localized(node, "OrganizationName").ok_or(Error::MissingElement {
        parent: O,
        child: "md:OrganizationName",
    })?;
    let text = |local: &'static str, shown: &'static str| -> Result<String> {
        localized(node, local)
            .map(|n| read::text_only(n, shown).map(|t| t.trim().to_owned()))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(Organization {
        name: read::text_only(name, "md:OrganizationName")?
            .trim()
            .to_owned(),
        display_name: text("OrganizationDisplayName", "md:OrganizationDisplayName")?,
        url: text("OrganizationURL", "md:OrganizationURL")?,
        lang: name.attribute((XML, "lang")).unwrap_or("en").to_owned(),
    })
}

fn parse_contact(node: Node<'_, '_>) -> Result<ContactPerson> {
    const C: &str = "md:ContactPerson";
    let one = |local: &'static str, shown: &'static str| -> Result<Option<String>> {
        read::optional_child(node, METADATA, local, C, shown)?
            .map(|n| read::text_only(n, shown).map(|t| t.trim().to_owned()))
            .transpose()
    };
    let many = |local: &'static str, shown: &'static str| -> Result<Vec<String>> {
        read::children(node, METADATA, local)
            .map(|n| read::text_only(n, shown).map(|t| t.trim().to_owned()))
            .collect()
    };
    Ok(ContactPerson {
        contact_type: read::required_attr(node, C, "contactType")?.to_owned(),
        company: one("Company", "md:Company")?,
        given_name: one("GivenName", "md:GivenName")?,
        surname: one("SurName", "md:SurName")?,
        email_addresses: many("EmailAddress", "md:EmailAddress")?,
        telephone_numbers: many("TelephoneNumber", "md:TelephoneNumber")?,
    })
}
