//! `md:EncryptionMethod` in KeyDescriptors: read from a real SP's metadata (eduGAIN, with
//! the algorithms Shibboleth SP publishes put in), written after KeyInfo as the schema
//! orders it, and checked both ways against pysaml2's own metadata model and python3-saml's
//! bundled metadata schema (the oracle is found through LATCHKEY_PYTHON; these tests fail,
//! never skip, without it).
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Command;

use latchkey_saml::Error;
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    EntityDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse, Metadata, MetadataOptions,
    SpSsoDescriptor, parse_metadata,
};
use latchkey_xmlsec::crypto::Certificate;
use serde_json::{Value, json};

const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const TRIPLEDES: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";

/// eduGAIN SP metadata (provenance in tests/data/README.md): one signing and one
/// encryption KeyDescriptor, neither listing an EncryptionMethod.
fn edugain() -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metadata/edugain_sp_signed.xml");
    std::fs::read_to_string(path).unwrap()
}

/// The same document with the EncryptionMethods Shibboleth SP 3 publishes (parameters as
/// child elements, whitespace around one URI) put after the encryption key's KeyInfo.
/// Its signature no longer verifies; it is read without trusted keys.
fn edugain_with_methods() -> String {
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

fn sp_of(xml: &str) -> SpSsoDescriptor {
    match parse_metadata(xml, &MetadataOptions::default()).unwrap() {
        Metadata::Entity(e) => e.sp.unwrap(),
        Metadata::Entities(_) => panic!("expected one EntityDescriptor"),
    }
}

fn methods_by_use(sp: &SpSsoDescriptor) -> Vec<(Option<KeyUse>, Vec<String>)> {
    sp.keys
        .iter()
        .map(|k| (k.key_use, k.encryption_methods.clone()))
        .collect()
}

#[test]
fn a_real_sp_metadata_file_lists_no_methods_and_reads_as_none() {
    let sp = sp_of(&edugain());
    assert_eq!(
        methods_by_use(&sp),
        vec![
            (Some(KeyUse::Signing), vec![]),
            (Some(KeyUse::Encryption), vec![])
        ]
    );
}

#[test]
fn encryption_methods_are_read_in_order_from_their_key_descriptor() {
    let sp = sp_of(&edugain_with_methods());
    let expected: Vec<String> = [
        AES128_GCM,
        AES256_GCM,
        AES128_CBC,
        TRIPLEDES,
        RSA_OAEP,
        RSA_OAEP_MGF1P,
        RSA_1_5,
    ]
    .map(str::to_owned)
    .to_vec();
    assert_eq!(
        methods_by_use(&sp),
        vec![
            (Some(KeyUse::Signing), vec![]),
            (Some(KeyUse::Encryption), expected)
        ]
    );
    // The certificates are read as before.
    assert_eq!(sp_of(&edugain()).keys, {
        let mut keys = sp.keys.clone();
        keys.iter_mut().for_each(|k| k.encryption_methods.clear());
        keys
    });
}

#[test]
fn an_encryption_method_without_its_algorithm_is_refused() {
    let xml = edugain_with_methods().replace(
        &format!("<md:EncryptionMethod Algorithm=\"{AES128_CBC}\"/>"),
        "<md:EncryptionMethod/>",
    );
    assert_eq!(
        parse_metadata(&xml, &MetadataOptions::default()).unwrap_err(),
        Error::MissingAttribute {
            element: "md:EncryptionMethod",
            attribute: "Algorithm",
        }
    );
}

fn rsa_cert() -> Certificate {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["sp.example.org".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    Certificate::from_der(cert.der()).unwrap()
}

fn sp_entity(cert: &Certificate, methods: &[&str]) -> EntityDescriptor {
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

#[test]
fn written_encryption_methods_round_trip() {
    let cert = rsa_cert();
    let entity = sp_entity(&cert, &[AES256_GCM, RSA_OAEP, RSA_1_5]);
    let xml = entity.to_xml().unwrap();
    match parse_metadata(&xml, &MetadataOptions::default()).unwrap() {
        Metadata::Entity(e) => assert_eq!(*e, entity),
        Metadata::Entities(_) => panic!("one entity written"),
    }
    // Signed, the same.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = latchkey_xmlsec::crypto::SigningKey::from_pem(&pair.serialize_pem()).unwrap();
    let signed = entity.to_signed_xml(&key, None).unwrap();
    let trusted = [key.verifying_key().clone()];
    let read = parse_metadata(
        &signed,
        &MetadataOptions {
            trusted_keys: &trusted,
            ..MetadataOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        read.entities()[0].sp.as_ref().unwrap().keys[1].encryption_methods,
        [AES256_GCM, RSA_OAEP, RSA_1_5]
    );
}

/// Runs the oracle script and parses its output (JSON for `read`, XML text for `write`).
fn oracle(args: &[&str]) -> String {
    let python = std::env::var("LATCHKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/metadata_encryption_methods.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {} with {python}: {e} (set LATCHKEY_PYTHON to the oracle venv, see scripts/test)", script.display())
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(3),
        "pysaml2/python3-saml are not importable with {python} (set LATCHKEY_PYTHON to the \
         oracle venv, see scripts/test): {stderr}"
    );
    assert!(out.status.success(), "oracle failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pysaml2_reads_the_methods_we_write_and_the_schema_accepts_their_place() {
    let cert = rsa_cert();
    let xml = sp_entity(&cert, &[AES128_CBC, RSA_OAEP_MGF1P])
        .to_xml()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp.xml");
    std::fs::write(&path, &xml).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_eq!(
        verdict,
        json!({
            "keys": [
                {"use": "signing", "algorithms": []},
                {"use": "encryption", "algorithms": [AES128_CBC, RSA_OAEP_MGF1P]},
            ],
            "schema_valid": true,
        })
    );
    // The oracle does tell a misplaced element: the edited eduGAIN file (methods after
    // KeyInfo) is schema-valid, and the same methods before KeyInfo are not.
    let edited = edugain_with_methods();
    std::fs::write(&path, &edited).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_eq!(verdict["schema_valid"], true, "{verdict}");
    let kd = edited
        .find("<md:KeyDescriptor use=\"encryption\">")
        .unwrap();
    let start = kd + edited[kd..].find("<ds:KeyInfo").unwrap();
    let end = kd + edited[kd..].find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    let key_info = &edited[start..end];
    let close = kd + edited[kd..].find("</md:KeyDescriptor>").unwrap();
    let misplaced = format!(
        "{}{}{key_info}{}",
        &edited[..start],
        &edited[end..close],
        &edited[close..]
    );
    std::fs::write(&path, &misplaced).unwrap();
    let verdict: Value = serde_json::from_str(&oracle(&["read", path.to_str().unwrap()])).unwrap();
    assert_ne!(verdict["schema_valid"], true, "{verdict}");
}

#[test]
fn we_read_the_methods_pysaml2_writes() {
    let cert = rsa_cert();
    let xml = oracle(&[
        "write",
        "https://sp.example.org/saml",
        "https://sp.example.org/saml/acs",
        &cert.to_base64(),
        AES256_GCM,
        RSA_OAEP,
        TRIPLEDES,
    ]);
    let sp = sp_of(&xml);
    assert_eq!(sp.keys.len(), 1);
    assert_eq!(sp.keys[0].key_use, Some(KeyUse::Encryption));
    assert_eq!(sp.keys[0].certificates, vec![cert]);
    assert_eq!(
        sp.keys[0].encryption_methods,
        [AES256_GCM, RSA_OAEP, TRIPLEDES]
    );
}
