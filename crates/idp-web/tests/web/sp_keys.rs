//! The SP side of the encryption tests: its key pair and its profile check, shared by the
//! main binary and the oracles binary (python3-saml).

use latchkey_idp::Clock;
use latchkey_saml::encryption::DecryptionKey;
use latchkey_saml::profile::{AuthenticatedSubject, SpSettings, validate_response};

use super::support::*;

/// An RSA key pair for the SP: its private key PEM and certificate PEM.
pub fn sp_encryption_pair() -> (String, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sp.example.com".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap()
        .pem();
    (pair.serialize_pem(), cert)
}

/// The SP's profile check, holding its decryption key.
pub fn sp_decrypt_validate(
    idp: &Idp,
    entity_id: &str,
    acs: &str,
    key_pem: &str,
    xml: &str,
    request_id: &str,
) -> Result<AuthenticatedSubject, latchkey_saml::Error> {
    let mut settings = SpSettings::new(
        entity_id,
        acs,
        idp.settings.entity_id.clone(),
        idp.idp_keys.clone(),
    );
    settings.decryption_keys = vec![DecryptionKey::from_pem(key_pem).unwrap()];
    validate_response(&settings, xml, Some(request_id), idp.clock.now())
}
