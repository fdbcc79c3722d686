//! Fixtures of the `md:EncryptionMethod` tests (`tests/saml/metadata_encryption.rs`, and the
//! pysaml2 checks in `tests/oracles/metadata_encryption.rs`).

use std::path::Path;

use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    EntityDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse, Metadata, MetadataOptions,
    SpSsoDescriptor, parse_metadata,
};
use latchkey_xmlsec::crypto::Certificate;

pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const TRIPLEDES: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
pub const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";

/// eduGAIN SP metadata (provenance in tests/data/README.md): one signing and one
/// encryption KeyDescriptor, neither listing an EncryptionMethod.
pub fn edugain() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metadata/edugain_sp_signed.xml");
    std::fs::read_to_string(path).unwrap()
}

/// The same document with the EncryptionMethods Shibboleth SP 3 publishes (parameters as
/// child elements, whitespace around one URI) put after the encryption key's KeyInfo.
/// Its signature no longer verifies; it is read without trusted keys.
pub fn edugain_with_methods() -> String {
    let xml = edugain();
    let kd = xml.find("<md:KeyDescriptor use=\"encryption\">").unwrap();
    let at = kd + xml[kd..].find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let methods = format!(
        "\n<md:EncryptionMethod Algorithm=\"{AES128_GCM}\"/>\
         \n<md:EncryptionMethod Algorithm=\" {AES256_GCM} \"><xenc:KeySize \
         xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\">256</xenc:KeySize></md:EncryptionMethod>\
         \n<md:EncryptionMethod Algorithm=\"{AES128_CBC}\"/>\
         \n<md:EncryptionMethod Algorithm=\"{TRIPLEDES}\"/>\
         \n<md:EncryptionMethod Algorithm=\"{RSA_OAEP}\"><ds:DigestMethod xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" \
         Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/></md:EncryptionMethod>\
         \n<md:EncryptionMethod Algorithm=\"{RSA_OAEP_MGF1P}\"/>\
         \n<md:EncryptionMethod Algorithm=\"{RSA_1_5}\"/>"
    );
    format!("{}{methods}{}", &xml[..at], &xml[at..])
}

pub fn sp_of(xml: &str) -> SpSsoDescriptor {
    match parse_metadata(xml, &MetadataOptions::default()).unwrap() {
        Metadata::Entity(e) => e.sp.unwrap(),
        Metadata::Entities(_) => panic!("expected one EntityDescriptor"),
    }
}

pub fn rsa_cert() -> Certificate {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sp.example.org".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    Certificate::from_der(cert.der()).unwrap()
}

pub fn sp_entity(cert: &Certificate, methods: &[&str]) -> EntityDescriptor {
    let mut e = EntityDescriptor::new("https://sp.example.org/saml");
    e.sp = Some(SpSsoDescriptor {
        keys: vec![
            KeyDescriptor {
                key_use: Some(KeyUse::Signing),
                certificates: vec![cert.clone()],
                encryption_methods: Vec::new(),
            },
            KeyDescriptor {
                key_use: Some(KeyUse::Encryption),
                certificates: vec![cert.clone()],
                encryption_methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            },
        ],
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: binding_uri::HTTP_POST.into(),
            location: "https://sp.example.org/saml/acs".into(),
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    });
    e
}
