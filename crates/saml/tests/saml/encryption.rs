//! Encrypted assertions: the IdP signs then encrypts, the SP decrypts then verifies; the
//! SAML-level refusals; and CBC failures that must not be told apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The crate takes `now` as a parameter; these tests pass the wall clock's, as an SP would.
#![allow(clippy::disallowed_methods)]

use latchkey_saml::Error;
use latchkey_saml::assertion::{Assertion, NameId, Subject, name_id_format};
use latchkey_saml::encryption::{
    self, DataAlgorithm, DecryptOptions, Decrypted, DecryptionKey, EncryptOptions, KeyTransport,
};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::Certificate;
use latchkey_xmlsec::dsig::{self, SignOptions};
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::xmlenc::{self, EncryptionError};
use time::macros::datetime;

use crate::shared::encryption_keys::{IDP, keys};

const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

fn sp_key() -> DecryptionKey {
    DecryptionKey::from_pem(&keys().sp_key_pem).unwrap()
}

fn assertion_xml() -> String {
    Assertion {
        id: "_assertion-1".into(),
        issue_instant: datetime!(2026-11-28 14:00:00 UTC),
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId {
                value: "alice@example.org".into(),
                format: Some(name_id_format::EMAIL.into()),
                name_qualifier: None,
                sp_name_qualifier: None,
            }),
            confirmations: vec![],
        }),
        conditions: None,
        authn_statements: vec![],
        attributes: vec![],
    }
    .to_xml()
    .unwrap()
}

fn signed_assertion() -> String {
    dsig::sign(
        &assertion_xml(),
        "_assertion-1",
        &keys().idp_key,
        None,
        &SignOptions::default(),
    )
    .unwrap()
}

/// A Response carrying `encrypted` where the Assertion would be.
fn response_with(encrypted: &str) -> String {
    Response {
        id: "_response-1".into(),
        in_response_to: None,
        issue_instant: datetime!(2026-11-28 14:00:00 UTC),
        destination: Some("https://sp.example.com/acs".into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
    .to_xml_encrypted(encrypted)
    .unwrap()
}

fn decrypt_in(xml: &str, options: &DecryptOptions) -> Result<Decrypted, Error> {
    let doc = reader::parse(xml, &Limits::default()).unwrap();
    let node = doc
        .tree()
        .descendants()
        .find(|n| n.tag_name().name() == "EncryptedAssertion")
        .unwrap();
    encryption::decrypt_assertion(node, &[sp_key()], options)
}

fn encrypted(data: DataAlgorithm, transport: KeyTransport, xml: &str) -> String {
    encryption::encrypt_assertion(xml, &keys().sp_cert, &EncryptOptions::new(data, transport))
        .unwrap()
}

#[test]
fn sign_encrypt_embed_decrypt_verify_read() {
    for data in DataAlgorithm::ALL {
        for transport in KeyTransport::ALL {
            let signed = signed_assertion();
            let ea = encrypted(data, transport, &signed);
            assert!(
                ea.starts_with("<saml:EncryptedAssertion xmlns:saml="),
                "{ea}"
            );
            assert!(!ea.contains("alice"), "plaintext leaked");
            let response = response_with(&ea);
            let decrypted = decrypt_in(&response, &DecryptOptions::default()).unwrap();
            // The bytes that were signed come back, with the one declaration the
            // Response puts in scope at the EncryptedAssertion (samlp) made explicit,
            // as in-place decryption would see it; the assertion declares saml itself.
            let in_context = element_text(&signed).replacen(
                "<saml:Assertion ",
                "<saml:Assertion xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ",
                1,
            );
            assert_eq!(decrypted.xml, in_context);
            assert_eq!(
                (decrypted.data_algorithm, decrypted.key_transport),
                (data, transport)
            );
            let doc = reader::parse(&decrypted.xml, &Limits::default()).unwrap();
            let verified = encryption::verify_decrypted_assertion(
                &doc,
                &decrypted,
                &[keys().idp_cert.verifying_key().clone()],
                &latchkey_saml::inbound::SignaturePolicy::default(),
                false,
            )
            .unwrap();
            let assertion = Assertion::from_verified(&verified).unwrap();
            assert_eq!(
                assertion.subject.unwrap().name_id.unwrap().value,
                "alice@example.org"
            );
        }
    }
}

/// The Assertion element's text in a standalone document.
fn element_text(doc: &str) -> &str {
    doc[doc.find("<saml:Assertion").unwrap()..].trim_end()
}

fn xml_error(result: Result<Decrypted, Error>) -> EncryptionError {
    match result {
        Err(Error::Xml(latchkey_xmlsec::Error::Encryption(e))) => e,
        other => panic!("expected an encryption error, got {other:?}"),
    }
}

#[test]
fn the_encrypted_key_may_sit_beside_the_data() {
    let ea = encrypted(
        DataAlgorithm::Aes256Gcm,
        KeyTransport::RsaOaepMgf1Sha1,
        &signed_assertion(),
    );
    let ks = ea.find("<xenc:EncryptedKey>").unwrap();
    let ke = ea.find("</xenc:EncryptedKey>").unwrap() + "</xenc:EncryptedKey>".len();
    let key = ea[ks..ke].replace(
        "<xenc:EncryptedKey>",
        r#"<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="_k">"#,
    );
    let retrieval =
        r##"<ds:RetrievalMethod URI="#_k" Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"/>"##;
    let moved = format!("{}{retrieval}{}", &ea[..ks], &ea[ke..]).replace(
        "</saml:EncryptedAssertion>",
        &format!("{key}</saml:EncryptedAssertion>"),
    );
    let out = decrypt_in(&response_with(&moved), &DecryptOptions::default()).unwrap();
    assert!(out.xml.starts_with("<saml:Assertion"));
}

#[test]
fn encrypted_assertion_structure_is_checked() {
    let ea = encrypted(
        DataAlgorithm::Aes256Gcm,
        KeyTransport::RsaOaepMgf1Sha1,
        &signed_assertion(),
    );
    let open = format!("<saml:EncryptedAssertion xmlns:saml=\"{ASSERTION_NS}\">");
    let data = ea
        .strip_prefix(&open)
        .unwrap()
        .strip_suffix("</saml:EncryptedAssertion>")
        .unwrap();
    let twice = format!("{open}{data}{data}</saml:EncryptedAssertion>");
    assert_eq!(
        decrypt_in(&twice, &DecryptOptions::default()).unwrap_err(),
        Error::DuplicateElement {
            parent: "saml:EncryptedAssertion",
            child: "xenc:EncryptedData"
        }
    );
    let empty = format!("{open}</saml:EncryptedAssertion>");
    assert!(matches!(
        decrypt_in(&empty, &DecryptOptions::default()),
        Err(Error::MissingElement { .. })
    ));
    let foreign = format!("{open}<saml:Assertion/>{data}</saml:EncryptedAssertion>");
    assert!(matches!(
        decrypt_in(&foreign, &DecryptOptions::default()),
        Err(Error::UnexpectedElement { .. })
    ));
    let v15 = ea
        .replace(
            "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        )
        .replace(
            r#"<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>"#,
            "",
        );
    assert_eq!(
        xml_error(decrypt_in(&v15, &DecryptOptions::default())),
        EncryptionError::RsaPkcs1v15Refused
    );
    let cbc = encrypted(
        DataAlgorithm::Aes128Cbc,
        KeyTransport::RsaOaepMgf1Sha1,
        &signed_assertion(),
    );
    assert_eq!(
        xml_error(decrypt_in(&cbc, &DecryptOptions::gcm_only())),
        EncryptionError::DataAlgorithmNotAllowed(DataAlgorithm::Aes128Cbc)
    );
}

#[test]
fn a_plaintext_that_is_not_an_assertion_is_a_decryption_failure() {
    let other = "<samlp:Foo xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol' ID='_x'/>";
    let data =
        xmlenc::encrypt_element(other, "_x", &keys().sp_cert, &EncryptOptions::default()).unwrap();
    let ea = format!(
        "<saml:EncryptedAssertion xmlns:saml=\"{ASSERTION_NS}\">{data}</saml:EncryptedAssertion>"
    );
    assert_eq!(
        xml_error(decrypt_in(&ea, &DecryptOptions::default())),
        EncryptionError::DecryptionFailed
    );
    // And encrypt_assertion takes only an Assertion.
    assert!(matches!(
        encryption::encrypt_assertion(other, &keys().sp_cert, &EncryptOptions::default()),
        Err(Error::UnexpectedElement { .. })
    ));
}

#[test]
fn decrypted_is_not_trusted_and_unauthenticated_cbc_failures_look_alike() {
    // Anyone with the SP's certificate can encrypt an unsigned (or forged) assertion.
    let trusted = [keys().idp_cert.verifying_key().clone()];
    for data in [DataAlgorithm::Aes256Gcm, DataAlgorithm::Aes256Cbc] {
        let ea = encrypted(data, KeyTransport::RsaOaepMgf1Sha1, &assertion_xml());
        let decrypted = decrypt_in(&response_with(&ea), &DecryptOptions::default()).unwrap();
        let doc = reader::parse(&decrypted.xml, &Limits::default()).unwrap();
        let check = |authenticated| {
            encryption::verify_decrypted_assertion(
                &doc,
                &decrypted,
                &trusted,
                &latchkey_saml::inbound::SignaturePolicy::default(),
                authenticated,
            )
            .map(|v| v.id().map(str::to_owned))
        };
        let signature_error = Error::Xml(dsig::SignatureError::SignatureCount { found: 0 }.into());
        let decryption_failed = Error::Xml(EncryptionError::DecryptionFailed.into());
        match data {
            // GCM ciphertext cannot be altered, so the real reason is safe to give.
            DataAlgorithm::Aes256Gcm => {
                assert_eq!(check(false).unwrap_err(), signature_error);
            }
            // CBC with nothing covering the ciphertext: the same error as a bad pad.
            _ => {
                assert_eq!(check(false).unwrap_err(), decryption_failed);
                assert_eq!(check(true).unwrap_err(), signature_error);
            }
        }
    }
}

#[test]
fn options_follow_what_the_sp_advertises_and_never_pick_weak_ones() {
    let o = encryption::options_for_sp(&[]);
    assert_eq!(
        (o.data, o.key_transport),
        (DataAlgorithm::Aes256Gcm, KeyTransport::RsaOaepMgf1Sha1)
    );
    let old_sp = [
        "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    ];
    let o = encryption::options_for_sp(&old_sp);
    assert_eq!(
        (o.data, o.key_transport),
        (DataAlgorithm::Aes128Cbc, KeyTransport::RsaOaepMgf1Sha1)
    );
    let modern = [
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    ];
    let o = encryption::options_for_sp(&modern);
    assert_eq!(
        (o.data, o.key_transport),
        (DataAlgorithm::Aes128Gcm, KeyTransport::RsaOaepSha256)
    );
    let only_weak = ["http://www.w3.org/2001/04/xmlenc#tripledes-cbc"];
    assert_eq!(
        encryption::options_for_sp(&only_weak).data,
        DataAlgorithm::Aes256Gcm
    );
}

#[test]
fn the_encryption_certificate_is_an_rsa_key_not_marked_for_signing_only() {
    use latchkey_saml::metadata::{KeyDescriptor, KeyUse};
    let k = keys();
    let signing = KeyDescriptor {
        key_use: Some(KeyUse::Signing),
        certificates: vec![k.sp_cert.clone()],
        encryption_methods: Vec::new(),
    };
    let ec_enc = KeyDescriptor {
        key_use: Some(KeyUse::Encryption),
        certificates: vec![k.idp_cert.clone()],
        encryption_methods: Vec::new(),
    };
    let both = KeyDescriptor {
        key_use: None,
        certificates: vec![k.sp_cert.clone()],
        encryption_methods: Vec::new(),
    };
    // A second RSA certificate, so that which descriptor won is visible.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let other = rcgen::CertificateParams::new(vec!["sp2".into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let enc = KeyDescriptor {
        key_use: Some(KeyUse::Encryption),
        certificates: vec![Certificate::from_pem(&other.pem()).unwrap()],
        encryption_methods: Vec::new(),
    };
    assert_eq!(
        encryption::encryption_certificate(std::slice::from_ref(&signing)),
        None
    );
    assert_eq!(
        encryption::encryption_certificate(&[signing.clone(), ec_enc.clone()]),
        None
    );
    assert_eq!(
        encryption::encryption_certificate(&[signing.clone(), ec_enc, both.clone()]),
        Some(&k.sp_cert)
    );
    assert_eq!(
        encryption::encryption_certificate(&[both, enc.clone()]),
        Some(&enc.certificates[0])
    );
}
