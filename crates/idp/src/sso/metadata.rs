//! The IdP's own metadata: what an SP imports to trust us.
//!
//! Both the active certificate and, during a rollover, the next one are published, so SPs
//! that refresh metadata trust the new key before it signs anything.

use latchkey_saml::assertion::name_id_format;
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse,
};
use time::{Duration, OffsetDateTime};

use super::SsoError;
use super::keys::SigningMaterial;
use crate::config::ServerSettings;

/// How long a fetched copy stays valid: long enough to ride out an outage of the IdP's
/// metadata URL, short enough that a retired key drops out within a week.
const VALIDITY: Duration = Duration::days(7);
/// How often SPs are asked to refresh.
const CACHE: Duration = Duration::hours(1);

/// The signed metadata document.
pub fn signed_metadata(
    settings: &ServerSettings,
    keys: &SigningMaterial,
    now: OffsetDateTime,
) -> Result<String, SsoError> {
    let sso = settings.url("/saml/sso");
    let slo = settings.url("/saml/slo");
    let mut entity = EntityDescriptor::new(settings.entity_id.clone());
    entity.valid_until = Some(now + VALIDITY);
    entity.cache_duration = Some(CACHE);
    entity.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: settings.require_signed_requests,
        // One KeyDescriptor per key: SPs read one certificate per KeyInfo.
        keys: keys
            .published
            .iter()
            .map(|c| KeyDescriptor {
                key_use: Some(KeyUse::Signing),
                certificates: vec![c.clone()],
                encryption_methods: Vec::new(),
            })
            .collect(),
        name_id_formats: vec![
            name_id_format::PERSISTENT.into(),
            name_id_format::TRANSIENT.into(),
            name_id_format::EMAIL.into(),
            name_id_format::UNSPECIFIED.into(),
        ],
        sso_services: vec![
            endpoint(binding_uri::HTTP_REDIRECT, &sso),
            endpoint(binding_uri::HTTP_POST, &sso),
        ],
        slo_services: vec![endpoint(binding_uri::HTTP_REDIRECT, &slo)],
    });
    entity
        .to_signed_xml(&keys.key, Some(&keys.certificate))
        .map_err(|e| SsoError::Build(e.to_string()))
}

fn endpoint(binding: &str, location: &str) -> Endpoint {
    Endpoint {
        binding: binding.into(),
        location: location.into(),
        response_location: None,
    }
}
