//! The IdP's own metadata: what an SP imports to trust us.
//!
//! Both the active certificate and, during a rollover, the next one are published, so SPs
//! that refresh metadata trust the new key before it signs anything. The `cacheDuration` is
//! `[keys] metadata_cache_seconds`, the same figure `key activate` waits on: a promise to SPs
//! that a copy this old still lists every key that may sign.

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
    entity.cache_duration = Some(settings.metadata_cache);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
    use time::macros::datetime;

    use super::*;
    use crate::config::{Config, Environment};
    use crate::keys::{KeyAlgorithm, KeyStore};

    struct NoEnv;

    impl Environment for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn the_cache_duration_is_the_configured_one() {
        let now = datetime!(2026-12-05 12:00 UTC);
        let dir = tempfile::tempdir().unwrap();
        let mut store = KeyStore::open(dir.path().join("keys")).unwrap();
        store
            .load_or_generate(KeyAlgorithm::EcdsaP256, now)
            .unwrap();
        let active = store.active().unwrap();
        let keys = SigningMaterial {
            key: active.signing_key().unwrap(),
            certificate: active.certificate().unwrap(),
            published: vec![active.certificate().unwrap()],
        };
        for (seconds, expected) in [(600, Duration::minutes(10)), (86_400, Duration::days(1))] {
            let mut config = Config::default();
            config.keys.metadata_cache_seconds = seconds;
            let settings = ServerSettings::resolve(&config, &NoEnv).unwrap();
            let xml = signed_metadata(&settings, &keys, now).unwrap();
            let options = MetadataOptions {
                now: Some(now),
                ..MetadataOptions::default()
            };
            let metadata = parse_metadata(&xml, &options).unwrap();
            let entity = &metadata.entities()[0];
            assert_eq!(entity.cache_duration, Some(expected));
            assert_eq!(entity.valid_until, Some(now + VALIDITY));
        }
    }
}
