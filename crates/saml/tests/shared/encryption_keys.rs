//! The keys of the encryption tests (`tests/saml/encryption.rs`, and the python3-saml
//! oracle in `tests/oracles/encryption.rs`): an ECDSA IdP and an RSA SP, made once.

use std::sync::OnceLock;

use latchkey_xmlsec::crypto::{Certificate, SigningKey};

pub const IDP: &str = "https://idp.example.org";

pub struct Keys {
    pub idp_key: SigningKey,
    pub idp_cert: Certificate,
    pub sp_key_pem: String,
    pub sp_cert: Certificate,
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let idp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let idp_cert = rcgen::CertificateParams::new(vec!["idp".into()])
            .unwrap()
            .self_signed(&idp)
            .unwrap();
        let sp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let sp_cert = rcgen::CertificateParams::new(vec!["sp".into()])
            .unwrap()
            .self_signed(&sp)
            .unwrap();
        Keys {
            idp_key: SigningKey::from_pem(&idp.serialize_pem()).unwrap(),
            idp_cert: Certificate::from_pem(&idp_cert.pem()).unwrap(),
            sp_key_pem: sp.serialize_pem(),
            sp_cert: Certificate::from_pem(&sp_cert.pem()).unwrap(),
        }
    })
}
