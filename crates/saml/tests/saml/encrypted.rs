//! Encrypted assertions through the whole profile (`validate_response`): a decrypted
//! assertion is held to the signature rule like any other, and every way of getting it
//! wrong is refused, one test per behaviour.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::sync::OnceLock;

use latchkey_saml::Error;
use latchkey_saml::assertion::{
    Assertion, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::encryption::{
    self, DataAlgorithm, DecryptOptions, DecryptionKey, EncryptOptions, KeyTransport,
};
use latchkey_saml::profile::{AuthenticatedSubject, SpSettings, validate_response};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use latchkey_xmlsec::xmlenc::EncryptionError;
use time::OffsetDateTime;
use time::macros::datetime;

const SP: &str = "https://sp.example.com";
const ACS: &str = "https://sp.example.com/acs";
const IDP: &str = "https://idp.example.org";
const REQ: &str = "_req-0001";
const NOW: OffsetDateTime = datetime!(2026-11-28 14:00:30 UTC);
const GCM: DataAlgorithm = DataAlgorithm::Aes256Gcm;
const CBC: DataAlgorithm = DataAlgorithm::Aes128Cbc;

struct Keys {
    idp: SigningKey,
    attacker: SigningKey,
    sp_pem: String,
    sp_cert: Certificate,
    other_sp_pem: String,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let ec = || {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            SigningKey::from_pem(&pair.serialize_pem()).unwrap()
        };
        let sp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let sp_cert = rcgen::CertificateParams::new(vec!["sp".into()])
            .unwrap()
            .self_signed(&sp)
            .unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        Keys {
            idp: ec(),
            attacker: ec(),
            sp_pem: sp.serialize_pem(),
            sp_cert: Certificate::from_pem(&sp_cert.pem()).unwrap(),
            other_sp_pem: other.serialize_pem(),
        }
    })
}

/// Settings that also accept CBC (the opt-in), since these tests run each rule under both
/// content ciphers; the default is GCM only (see `cbc_is_refused_by_default`).
fn settings_with(key_pem: &str) -> SpSettings {
    let mut s = SpSettings::new(SP, ACS, IDP, vec![keys().idp.verifying_key().clone()]);
    s.decryption_keys = vec![DecryptionKey::from_pem(key_pem).unwrap()];
    s.decrypt_options = DecryptOptions::default();
    s
}

fn settings() -> SpSettings {
    settings_with(&keys().sp_pem)
}

fn assertion() -> Assertion {
    Assertion {
        id: "_assertion-1".into(),
        issue_instant: datetime!(2026-11-28 14:00:00 UTC),
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId::new("alice@example.org", name_id_format::EMAIL)),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(datetime!(2026-11-28 14:05:00 UTC)),
                    recipient: Some(ACS.into()),
                    in_response_to: Some(REQ.into()),
                    address: None,
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: Some(datetime!(2026-11-28 13:59:30 UTC)),
            not_on_or_after: Some(datetime!(2026-11-28 14:05:00 UTC)),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: datetime!(2026-11-28 13:59:50 UTC),
            session_index: Some("_session-1".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: None,
        }],
        attributes: vec![],
    }
}

fn envelope() -> Response {
    Response {
        id: "_response-1".into(),
        in_response_to: Some(REQ.into()),
        issue_instant: datetime!(2026-11-28 14:00:00 UTC),
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
}

/// How the Response is put together.
struct Build {
    assertion: Assertion,
    /// Who signs the assertion, if anyone.
    assertion_signer: Option<&'static SigningKey>,
    sign_response: bool,
    data: DataAlgorithm,
    transport: KeyTransport,
}

impl Build {
    fn new(data: DataAlgorithm) -> Self {
        Self {
            assertion: assertion(),
            assertion_signer: Some(&keys().idp),
            sign_response: false,
            data,
            transport: KeyTransport::RsaOaepMgf1Sha1,
        }
    }

    fn encrypted_assertion(&self) -> String {
        let mut a = self.assertion.to_xml().unwrap();
        if let Some(k) = self.assertion_signer {
            a = dsig::sign(&a, &self.assertion.id, k, None, &SignOptions::default()).unwrap();
        }
        let options = EncryptOptions::new(self.data, self.transport);
        encryption::encrypt_assertion(&a, &keys().sp_cert, &options).unwrap()
    }

    /// The Response XML; `edit` changes the unsigned Response text before any signing.
    fn xml_with(&self, edit: impl Fn(String) -> String) -> String {
        let r = envelope();
        let xml = edit(r.to_xml_encrypted(&self.encrypted_assertion()).unwrap());
        if self.sign_response {
            dsig::sign(&xml, &r.id, &keys().idp, None, &SignOptions::default()).unwrap()
        } else {
            xml
        }
    }

    fn xml(&self) -> String {
        self.xml_with(|x| x)
    }

    fn check_with(&self, settings: &SpSettings) -> Result<AuthenticatedSubject, Error> {
        validate_response(settings, &self.xml(), Some(REQ), NOW)
    }

    fn check(&self) -> Result<AuthenticatedSubject, Error> {
        self.check_with(&settings())
    }
}

fn decryption_failed() -> Error {
    Error::Xml(EncryptionError::DecryptionFailed.into())
}

fn assert_alice(result: Result<AuthenticatedSubject, Error>) {
    let subject = result.unwrap();
    assert_eq!(subject.name_id.value, "alice@example.org");
    assert_eq!(subject.assertion_id, "_assertion-1");
    assert_eq!(subject.session_index.as_deref(), Some("_session-1"));
    assert_eq!(subject.in_response_to.as_deref(), Some(REQ));
}

#[test]
fn signed_then_encrypted_assertion_is_accepted_gcm_and_cbc() {
    for data in [
        DataAlgorithm::Aes128Gcm,
        DataAlgorithm::Aes256Gcm,
        DataAlgorithm::Aes128Cbc,
        DataAlgorithm::Aes256Cbc,
    ] {
        for transport in [KeyTransport::RsaOaepMgf1Sha1, KeyTransport::RsaOaepSha256] {
            let mut b = Build::new(data);
            b.transport = transport;
            assert_alice(b.check());
            // Signing the Response as well changes nothing.
            b.sign_response = true;
            assert_alice(b.check());
        }
    }
}

#[test]
fn unsigned_assertion_under_a_signed_response_is_accepted() {
    for data in [GCM, CBC] {
        let mut b = Build::new(data);
        b.assertion_signer = None;
        b.sign_response = true;
        assert_alice(b.check());
    }
}

#[test]
fn without_a_decryption_key_an_encrypted_assertion_is_refused_as_such() {
    let b = Build::new(GCM);
    let plain = SpSettings::new(SP, ACS, IDP, vec![keys().idp.verifying_key().clone()]);
    assert_eq!(b.check_with(&plain), Err(Error::EncryptedAssertion));
}

#[test]
fn unsigned_response_with_unsigned_encrypted_assertion_is_refused() {
    // GCM authenticates the ciphertext, so the real reason may be told.
    let mut gcm = Build::new(GCM);
    gcm.assertion_signer = None;
    let err = gcm.check().unwrap_err();
    assert!(
        matches!(err, Error::Xml(latchkey_xmlsec::Error::Signature(_))),
        "{err:?}"
    );
    // Under CBC the missing signature must look exactly like a ciphertext that did not
    // decrypt: the same error as with the wrong key.
    let mut cbc = Build::new(CBC);
    cbc.assertion_signer = None;
    assert_eq!(cbc.check(), Err(decryption_failed()));
    assert_eq!(
        Build::new(CBC).check_with(&settings_with(&keys().other_sp_pem)),
        Err(decryption_failed())
    );
}

#[test]
fn assertion_signed_by_someone_else_is_refused() {
    // Anyone can encrypt to the SP's certificate: encryption proves nothing.
    let mut gcm = Build::new(GCM);
    gcm.assertion_signer = Some(&keys().attacker);
    assert!(matches!(
        gcm.check(),
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(_)))
    ));
    let mut cbc = Build::new(CBC);
    cbc.assertion_signer = Some(&keys().attacker);
    assert_eq!(cbc.check(), Err(decryption_failed()));
    // A bad assertion signature is refused even when the Response's signature is good.
    for data in [GCM, CBC] {
        let mut b = Build::new(data);
        b.assertion_signer = Some(&keys().attacker);
        b.sign_response = true;
        assert!(
            matches!(
                b.check(),
                Err(Error::Xml(latchkey_xmlsec::Error::Signature(_)))
            ),
            "{data:?}"
        );
    }
}

#[test]
fn the_wrong_sp_key_is_a_decryption_failure() {
    let wrong = settings_with(&keys().other_sp_pem);
    for data in [GCM, CBC] {
        assert_eq!(
            Build::new(data).check_with(&wrong),
            Err(decryption_failed())
        );
        let mut signed = Build::new(data);
        signed.sign_response = true;
        assert_eq!(signed.check_with(&wrong), Err(decryption_failed()));
    }
    // A second key (a rollover) is tried too.
    let mut both = wrong.clone();
    both.decryption_keys
        .push(DecryptionKey::from_pem(&keys().sp_pem).unwrap());
    assert_alice(Build::new(GCM).check_with(&both));
}

#[test]
fn rsa_1_5_key_transport_is_refused() {
    let b = Build::new(GCM);
    let xml = b.xml_with(|x| {
        let oaep = KeyTransport::RsaOaepMgf1Sha1.uri();
        assert!(x.contains(oaep));
        x.replace(oaep, "http://www.w3.org/2001/04/xmlenc#rsa-1_5")
    });
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::Xml(EncryptionError::RsaPkcs1v15Refused.into()))
    );
}

#[test]
fn cbc_is_refused_by_default() {
    let mut s = SpSettings::new(SP, ACS, IDP, vec![keys().idp.verifying_key().clone()]);
    s.decryption_keys = vec![DecryptionKey::from_pem(&keys().sp_pem).unwrap()];
    assert_eq!(s.decrypt_options, DecryptOptions::gcm_only());
    assert_eq!(
        Build::new(CBC).check_with(&s),
        Err(Error::Xml(
            EncryptionError::DataAlgorithmNotAllowed(CBC).into()
        ))
    );
    assert_alice(Build::new(GCM).check_with(&s));
}

#[test]
fn one_clear_and_one_encrypted_assertion_are_refused() {
    let b = Build::new(GCM);
    let clear = dsig::sign(
        &assertion().to_xml().unwrap(),
        "_assertion-1",
        &keys().idp,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let encrypted = b.encrypted_assertion();
    let mixed =
        b.xml_with(|x| x.replace("</samlp:Response>", &format!("{clear}</samlp:Response>")));
    assert_eq!(
        validate_response(&settings(), &mixed, Some(REQ), NOW),
        Err(Error::AssertionCount(2))
    );
    let two = b.xml_with(|x| {
        x.replace(
            "</samlp:Response>",
            &format!("{encrypted}</samlp:Response>"),
        )
    });
    assert_eq!(
        validate_response(&settings(), &two, Some(REQ), NOW),
        Err(Error::AssertionCount(2))
    );
}

#[test]
fn profile_rules_apply_to_the_decrypted_assertion() {
    let mut b = Build::new(GCM);
    b.assertion
        .conditions
        .as_mut()
        .unwrap()
        .audience_restrictions = vec![vec!["https://other.example.com".into()]];
    assert_eq!(b.check(), Err(Error::AudienceMismatch));
    let mut b = Build::new(CBC);
    b.assertion.issuer = "https://evil.example.org".into();
    assert!(matches!(b.check(), Err(Error::IssuerMismatch { .. })));
    let b = Build::new(GCM);
    assert!(matches!(
        validate_response(&settings(), &b.xml(), Some("_another-request"), NOW),
        Err(Error::InResponseToMismatch { .. })
    ));
}

#[test]
fn a_signed_response_covers_the_ciphertext() {
    // Changing one character of the CipherValue under a signed Response breaks the
    // Response's signature before anything is decrypted.
    let mut b = Build::new(CBC);
    b.sign_response = true;
    let xml = b.xml();
    assert_alice(validate_response(&settings(), &xml, Some(REQ), NOW));
    // The last CipherValue holds the content; change the character in the middle of its
    // base64 text (never padding, never whitespace) to another base64 character, so the
    // message stays well-formed and only the ciphertext differs.
    let close = xml.rfind(":CipherValue>").unwrap();
    let value_end = xml[..close].rfind('<').unwrap();
    let value_start = xml[..value_end].rfind('>').unwrap() + 1;
    let value = xml[value_start..value_end].trim();
    assert!(value.len() > 16, "a CipherValue too short to hold content");
    let value_at = value_start + xml[value_start..value_end].find(value).unwrap() + value.len() / 2;
    let original = xml.as_bytes()[value_at];
    assert!(
        original.is_ascii_alphanumeric() || original == b'+' || original == b'/',
        "not a base64 character: {:?}",
        original as char
    );
    let mut bytes = xml.into_bytes();
    bytes[value_at] = if original == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        validate_response(&settings(), &tampered, Some(REQ), NOW),
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(_)))
    ));
}
