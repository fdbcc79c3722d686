//! Throwaway P-256 key pairs with self-signed certificates, for the IdP and SP sides.

use latchkey_xmlsec::crypto::{Certificate, SigningKey};

/// A signing key, its certificate, and both as PEM (for settings read from files).
pub struct Pair {
    pub key: SigningKey,
    pub cert: Certificate,
    pub key_pem: String,
    pub cert_pem: String,
}

/// A fresh pair.
pub fn pair() -> Pair {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["k.example".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    Pair {
        key: SigningKey::from_pem(&kp.serialize_pem()).unwrap(),
        cert: Certificate::from_der(cert.der()).unwrap(),
        key_pem: kp.serialize_pem(),
        cert_pem: cert.pem(),
    }
}
