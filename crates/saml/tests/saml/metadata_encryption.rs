//! `md:EncryptionMethod` in KeyDescriptors: read from a real SP's metadata (eduGAIN, with
//! the algorithms Shibboleth SP publishes put in) and written after KeyInfo as the schema
//! orders it. The checks against pysaml2 and python3-saml's metadata schema are in
//! `tests/oracles/metadata_encryption.rs`.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use latchkey_saml::Error;
use latchkey_saml::metadata::{KeyUse, Metadata, MetadataOptions, SpSsoDescriptor, parse_metadata};

use crate::shared::metadata_encryption::*;

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
