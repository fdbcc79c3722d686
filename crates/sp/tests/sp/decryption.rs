//! Encrypted assertions at the SP: the `[encryption]` settings (key files, checks), the
//! encryption certificate in our metadata (what an IdP encrypts to), and the ACS
//! accepting an encrypted assertion only with our key and only under the IdP's signature.

use std::path::Path;

use latchkey_saml::assertion::{
    Assertion, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::encryption::{self, DataAlgorithm, EncryptOptions, KeyTransport};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse, MetadataOptions,
    parse_metadata,
};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::settings::SpConfig;
use latchkey_sp::{Error, ServiceProvider, SettingsError};
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use latchkey_xmlsec::xmlenc::EncryptionError;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const IDP: &str = "https://idp.example.org";
const SP: &str = "https://app.example.com/saml/metadata";
const ACS: &str = "https://app.example.com/saml/acs";
const NOW: OffsetDateTime = datetime!(2026-11-28 15:00:00 UTC);

struct Files {
    dir: tempfile::TempDir,
    idp_key: SigningKey,
    idp_cert: Certificate,
    sp_cert: Certificate,
}

/// A directory with `enc-key.pem`/`enc-cert.pem` (RSA), `other-key.pem` (another RSA key)
/// and `ec-key.pem`/`ec-cert.pem` (ECDSA), and the IdP's signing pair.
fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let cert_of = |kp: &rcgen::KeyPair| {
        rcgen::CertificateParams::new(vec!["app.example.com".into()])
            .unwrap()
            .self_signed(kp)
            .unwrap()
            .pem()
    };
    let rsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let sp_cert_pem = cert_of(&rsa);
    write("enc-key.pem", &rsa.serialize_pem());
    write("enc-cert.pem", &sp_cert_pem);
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    write("other-key.pem", &other.serialize_pem());
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    write("ec-key.pem", &ec.serialize_pem());
    write("ec-cert.pem", &cert_of(&ec));
    let idp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    Files {
        idp_key: SigningKey::from_pem(&idp.serialize_pem()).unwrap(),
        idp_cert: Certificate::from_pem(&cert_of(&idp)).unwrap(),
        sp_cert: Certificate::from_pem(&sp_cert_pem).unwrap(),
        dir,
    }
}

fn config(dir: &Path, encryption: &str) -> SpConfig {
    SpConfig::from_toml(
        &format!(
            "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\nallow_idp_initiated = true\n\
             [idp]\nmetadata_file = \"idp.xml\"\n{encryption}\n"
        ),
        dir,
    )
    .unwrap()
}

const ENCRYPTION: &str =
    "[encryption]\nprivate_key_file = \"enc-key.pem\"\ncertificate_file = \"enc-cert.pem\"";

fn trust(cert: &Certificate) -> IdpTrust {
    let mut e = EntityDescriptor::new(IDP);
    e.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: false,
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![cert.clone()],
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: format!("{IDP}/sso"),
            response_location: None,
        }],
        slo_services: vec![],
    });
    IdpTrust::from_metadata(&e.to_xml().unwrap(), None, NOW).unwrap()
}

fn sp(f: &Files, encryption: &str) -> ServiceProvider {
    ServiceProvider::new(&config(f.dir.path(), encryption), None, trust(&f.idp_cert)).unwrap()
}

/// An unsolicited Response whose assertion is signed by `signer` and encrypted to `to`.
fn encrypted_response(signer: &SigningKey, to: &Certificate, data: DataAlgorithm) -> String {
    let assertion = Assertion {
        id: "_a1".into(),
        issue_instant: NOW,
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId::new("p-1", name_id_format::PERSISTENT)),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(NOW + Duration::minutes(5)),
                    recipient: Some(ACS.into()),
                    in_response_to: None,
                    address: None,
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: None,
            not_on_or_after: Some(NOW + Duration::minutes(5)),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: NOW,
            session_index: Some("_s".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: None,
        }],
        attributes: vec![],
    };
    let signed = dsig::sign(
        &assertion.to_xml().unwrap(),
        "_a1",
        signer,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let options = EncryptOptions::new(data, KeyTransport::RsaOaepMgf1Sha1);
    let encrypted = encryption::encrypt_assertion(&signed, to, &options).unwrap();
    Response {
        id: "_r1".into(),
        in_response_to: None,
        issue_instant: NOW,
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
    .to_xml_encrypted(&encrypted)
    .unwrap()
}

fn saml_error(result: Result<latchkey_sp::acs::VerifiedResponse, Error>) -> latchkey_saml::Error {
    match result {
        Err(Error::Saml(e)) => e,
        other => panic!("expected a SAML error, got {other:?}"),
    }
}

#[test]
fn encryption_settings_are_loaded_and_checked() {
    let f = files();
    let loaded = config(f.dir.path(), ENCRYPTION)
        .load_decryption()
        .unwrap()
        .unwrap();
    assert_eq!(loaded.keys.len(), 1);
    assert_eq!(loaded.certificate, f.sp_cert);
    assert!(
        config(f.dir.path(), "")
            .load_decryption()
            .unwrap()
            .is_none()
    );

    let rollover = config(
        f.dir.path(),
        &format!("{ENCRYPTION}\nprevious_private_key_files = [\"other-key.pem\"]"),
    );
    assert_eq!(rollover.load_decryption().unwrap().unwrap().keys.len(), 2);

    let mismatched = config(
        f.dir.path(),
        "[encryption]\nprivate_key_file = \"other-key.pem\"\ncertificate_file = \"enc-cert.pem\"",
    );
    assert!(matches!(
        mismatched.load_decryption(),
        Err(SettingsError::KeyCertificateMismatch)
    ));
    let ec = config(
        f.dir.path(),
        "[encryption]\nprivate_key_file = \"ec-key.pem\"\ncertificate_file = \"ec-cert.pem\"",
    );
    assert!(matches!(
        ec.load_decryption(),
        Err(SettingsError::Invalid {
            setting: "encryption.certificate_file",
            ..
        })
    ));
    let missing = config(
        f.dir.path(),
        "[encryption]\nprivate_key_file = \"nope.pem\"\ncertificate_file = \"enc-cert.pem\"",
    );
    assert!(matches!(
        missing.load_decryption(),
        Err(SettingsError::Read { .. })
    ));
    // The constructor reads them too, so a broken key stops the SP from starting.
    assert!(ServiceProvider::new(&mismatched, None, trust(&f.idp_cert)).is_err());
}

#[test]
fn metadata_publishes_the_encryption_certificate_an_idp_will_pick() {
    let f = files();
    let with = sp(&f, ENCRYPTION).metadata_xml().unwrap();
    let parsed = parse_metadata(&with, &MetadataOptions::default()).unwrap();
    let keys = &parsed.find(SP).unwrap().sp.as_ref().unwrap().keys;
    assert_eq!(encryption::encryption_certificate(keys), Some(&f.sp_cert));

    let without = sp(&f, "").metadata_xml().unwrap();
    let parsed = parse_metadata(&without, &MetadataOptions::default()).unwrap();
    let keys = &parsed.find(SP).unwrap().sp.as_ref().unwrap().keys;
    assert_eq!(encryption::encryption_certificate(keys), None);
}

#[test]
fn the_acs_accepts_an_encrypted_assertion_only_with_our_key() {
    let f = files();
    let gcm = encrypted_response(&f.idp_key, &f.sp_cert, DataAlgorithm::Aes256Gcm);
    let cbc = encrypted_response(&f.idp_key, &f.sp_cert, DataAlgorithm::Aes128Cbc);
    // CBC only where the settings opt in to it.
    let with_key = sp(&f, &format!("{ENCRYPTION}\nallow_cbc = true"));
    for xml in [&gcm, &cbc] {
        let verified = with_key.verify_xml(xml, None, None, NOW).unwrap();
        assert_eq!(verified.subject().name_id.value, "p-1");
    }
    // Without [encryption] the ACS says what it cannot read.
    assert_eq!(
        saml_error(sp(&f, "").verify_xml(&gcm, None, None, NOW)),
        latchkey_saml::Error::EncryptedAssertion
    );
    // An assertion someone else signed and encrypted to our certificate is refused, and
    // under CBC it looks like any decryption failure.
    let forged = encrypted_response(
        &SigningKey::from_pem(
            &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .serialize_pem(),
        )
        .unwrap(),
        &f.sp_cert,
        DataAlgorithm::Aes128Cbc,
    );
    let err = saml_error(with_key.verify_xml(&forged, None, None, NOW));
    assert_eq!(
        err,
        latchkey_saml::Error::Xml(EncryptionError::DecryptionFailed.into())
    );
    assert_eq!(Error::Saml(err).code().as_str(), "DECRYPTION_FAILED");
    // By default CBC is refused before anything is decrypted: no padding or timing
    // oracle to ask.
    let strict = sp(&f, ENCRYPTION);
    assert!(strict.verify_xml(&gcm, None, None, NOW).is_ok());
    assert_eq!(
        saml_error(strict.verify_xml(&cbc, None, None, NOW)),
        latchkey_saml::Error::Xml(
            EncryptionError::DataAlgorithmNotAllowed(DataAlgorithm::Aes128Cbc).into()
        )
    );
}
