//! Web Browser SSO profile rules: one valid signed response, then one test per rule that
//! breaks only that rule (mutate, re-sign, expect the exact error).
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::sync::OnceLock;

use latchkey_saml::Error;
use latchkey_saml::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, attrname_format, authn_context, name_id_format,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_saml::response::Response;
use latchkey_saml::status::{Status, code};
use latchkey_xmlsec::crypto::{DigestAlgorithm, SignatureAlgorithm, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions, SignatureError};
use time::OffsetDateTime;
use time::macros::datetime;

const SP: &str = "https://sp.example.com";
const ACS: &str = "https://sp.example.com/acs";
const IDP: &str = "https://idp.example.org";
const REQ: &str = "_req-0001";
const NOW: OffsetDateTime = datetime!(2026-11-28 14:00:30 UTC);

fn key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        SigningKey::from_pem(&pair.serialize_pem()).unwrap()
    })
}

fn other_key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        SigningKey::from_pem(&pair.serialize_pem()).unwrap()
    })
}

fn settings() -> SpSettings {
    SpSettings::new(SP, ACS, IDP, vec![key().verifying_key().clone()])
}

/// A response that passes every rule, and switches for how it is signed.
struct Fixture {
    assertion: Assertion,
    response: Response,
    sign_assertion: bool,
    sign_response: bool,
    signer: &'static SigningKey,
}

impl Fixture {
    fn valid() -> Self {
        Self {
            assertion: Assertion {
                id: "_assertion-1".into(),
                issue_instant: datetime!(2026-11-28 14:00:00 UTC),
                issuer: IDP.into(),
                subject: Some(Subject {
                    name_id: Some(NameId {
                        value: "alice@example.org".into(),
                        format: Some(name_id_format::EMAIL.into()),
                        name_qualifier: Some(IDP.into()),
                        sp_name_qualifier: Some(SP.into()),
                    }),
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
                    session_not_on_or_after: Some(datetime!(2026-11-28 22:00:00 UTC)),
                    authn_context_class_ref: Some(
                        authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
                    ),
                }],
                attributes: vec![
                    Attribute {
                        name: "urn:oid:0.9.2342.19200300.100.1.3".into(),
                        name_format: Some(attrname_format::URI.into()),
                        friendly_name: Some("mail".into()),
                        values: vec!["alice@example.org".into()],
                    },
                    Attribute {
                        name: "groups".into(),
                        name_format: None,
                        friendly_name: None,
                        values: vec!["staff".into(), "admins".into()],
                    },
                ],
            },
            response: Response {
                id: "_response-1".into(),
                in_response_to: Some(REQ.into()),
                issue_instant: datetime!(2026-11-28 14:00:00 UTC),
                destination: Some(ACS.into()),
                issuer: Some(IDP.into()),
                status: Status::success(),
            },
            sign_assertion: true,
            sign_response: false,
            signer: key(),
        }
    }

    fn xml(&self) -> String {
        self.xml_with(|a| a, |r| r)
    }

    /// Builds the XML, letting the test edit the assertion text and the response text
    /// before each is signed.
    fn xml_with(
        &self,
        edit_assertion: impl Fn(String) -> String,
        edit_response: impl Fn(String) -> String,
    ) -> String {
        let mut a = edit_assertion(self.assertion.to_xml().unwrap());
        if self.sign_assertion {
            a = dsig::sign(
                &a,
                &self.assertion.id,
                self.signer,
                None,
                &SignOptions::default(),
            )
            .unwrap();
        }
        let mut r = edit_response(self.response.to_xml(Some(&a)).unwrap());
        if self.sign_response {
            r = dsig::sign(
                &r,
                &self.response.id,
                self.signer,
                None,
                &SignOptions::default(),
            )
            .unwrap();
        }
        r
    }

    fn check(&self) -> Result<latchkey_saml::profile::AuthenticatedSubject, Error> {
        validate_response(&settings(), &self.xml(), Some(REQ), NOW)
    }
}

fn sig_error(e: Result<impl std::fmt::Debug, Error>) -> SignatureError {
    match e {
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(s))) => s,
        other => panic!("expected a signature error, got {other:?}"),
    }
}

// ----- valid responses -----

#[test]
fn valid_signed_assertion_is_accepted() {
    let s = Fixture::valid().check().unwrap();
    assert_eq!(s.issuer, IDP);
    assert_eq!(s.name_id.value, "alice@example.org");
    assert_eq!(s.name_id.format.as_deref(), Some(name_id_format::EMAIL));
    assert_eq!(s.name_id.sp_name_qualifier.as_deref(), Some(SP));
    assert_eq!(s.session_index.as_deref(), Some("_session-1"));
    assert_eq!(s.authn_instant, datetime!(2026-11-28 13:59:50 UTC));
    assert_eq!(
        s.authn_context_class_ref.as_deref(),
        Some(authn_context::PASSWORD_PROTECTED_TRANSPORT)
    );
    assert_eq!(s.attributes.len(), 2);
    assert_eq!(s.attributes[1].values, ["staff", "admins"]);
    assert_eq!(s.assertion_id, "_assertion-1");
    assert_eq!(s.response_id, "_response-1");
    assert_eq!(s.in_response_to.as_deref(), Some(REQ));
    assert_eq!(s.replay_expiry, datetime!(2026-11-28 14:06:00 UTC));
}

#[test]
fn valid_signed_response_with_unsigned_assertion_is_accepted() {
    let mut f = Fixture::valid();
    f.sign_assertion = false;
    f.sign_response = true;
    assert_eq!(f.check().unwrap().name_id.value, "alice@example.org");
}

#[test]
fn valid_both_signed_is_accepted() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    assert!(f.check().is_ok());
}

#[test]
fn unsolicited_accepted_when_allowed() {
    let mut f = Fixture::valid();
    f.response.in_response_to = None;
    if let Some(d) = f.assertion.subject.as_mut().unwrap().confirmations[0]
        .data
        .as_mut()
    {
        d.in_response_to = None;
    }
    let mut s = settings();
    s.allow_unsolicited = true;
    let subject = validate_response(&s, &f.xml(), None, NOW).unwrap();
    assert_eq!(subject.in_response_to, None);
}

// ----- signature rules -----

#[test]
fn rule_unsigned_is_refused() {
    let mut f = Fixture::valid();
    f.sign_assertion = false;
    assert_eq!(f.check(), Err(Error::NotSigned));
}

#[test]
fn rule_untrusted_key_is_refused() {
    let mut f = Fixture::valid();
    f.signer = other_key();
    assert_eq!(sig_error(f.check()), SignatureError::BadSignature);
}

#[test]
fn rule_response_signature_must_verify_even_if_assertion_is_signed() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    // The assertion is signed by the trusted key, the Response by an untrusted one.
    let good_assertion = dsig::sign(
        &f.assertion.to_xml().unwrap(),
        &f.assertion.id,
        key(),
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let r = f.response.to_xml(Some(&good_assertion)).unwrap();
    let r = dsig::sign(
        &r,
        &f.response.id,
        other_key(),
        None,
        &SignOptions::default(),
    )
    .unwrap();
    f.sign_response = false;
    let e = validate_response(&settings(), &r, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::BadSignature);
}

#[test]
fn rule_assertion_signature_must_verify_even_if_response_is_signed() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    // Tamper with the signed assertion, then sign the Response around it.
    let xml = f.xml_with(
        |a| a,
        |r| {
            r.replace(
                "alice@example.org</saml:NameID>",
                "mallory@example.org</saml:NameID>",
            )
        },
    );
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::DigestMismatch);
}

#[test]
fn rule_content_changed_after_signing_is_refused() {
    let f = Fixture::valid();
    let xml = f.xml().replace(
        "alice@example.org</saml:NameID>",
        "mallory@example.org</saml:NameID>",
    );
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::DigestMismatch);
}

#[test]
fn rule_signature_algorithm_must_be_allowed() {
    let mut s = settings();
    s.signature_algorithms = vec![SignatureAlgorithm::RsaSha256];
    let e = validate_response(&s, &Fixture::valid().xml(), Some(REQ), NOW);
    assert_eq!(
        e,
        Err(Error::AlgorithmNotAllowed(
            SignatureAlgorithm::EcdsaSha256.uri().into()
        ))
    );
}

#[test]
fn rule_digest_algorithm_must_be_allowed() {
    let mut s = settings();
    s.digest_algorithms = vec![DigestAlgorithm::Sha512];
    let e = validate_response(&s, &Fixture::valid().xml(), Some(REQ), NOW);
    assert_eq!(
        e,
        Err(Error::AlgorithmNotAllowed(
            DigestAlgorithm::Sha256.uri().into()
        ))
    );
}

// ----- envelope rules -----

#[test]
fn rule_response_version() {
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| a,
        |r| r.replacen("Version=\"2.0\"", "Version=\"1.1\"", 1),
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::UnsupportedVersion("1.1".into()))
    );
}

#[test]
fn rule_assertion_version() {
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| a.replacen("Version=\"2.0\"", "Version=\"2.1\"", 1),
        |r| r,
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::UnsupportedVersion("2.1".into()))
    );
}

#[test]
fn rule_response_issuer() {
    let mut f = Fixture::valid();
    f.response.issuer = Some("https://evil.example".into());
    assert_eq!(
        f.check(),
        Err(Error::IssuerMismatch {
            expected: IDP.into(),
            found: "https://evil.example".into()
        })
    );
}

#[test]
fn rule_signed_response_needs_issuer() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    f.response.issuer = None;
    assert_eq!(
        f.check(),
        Err(Error::IssuerMismatch {
            expected: IDP.into(),
            found: String::new()
        })
    );
}

#[test]
fn rule_assertion_issuer() {
    let mut f = Fixture::valid();
    f.assertion.issuer = "https://other-idp.example".into();
    assert_eq!(
        f.check(),
        Err(Error::IssuerMismatch {
            expected: IDP.into(),
            found: "https://other-idp.example".into()
        })
    );
}

#[test]
fn rule_issuer_format_is_entity() {
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| {
            a.replacen(
                "<saml:Issuer>",
                &format!("<saml:Issuer Format=\"{}\">", name_id_format::EMAIL),
                1,
            )
        },
        |r| r,
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::IssuerFormat(name_id_format::EMAIL.into()))
    );
}

#[test]
fn rule_destination() {
    let mut f = Fixture::valid();
    f.response.destination = Some("https://sp.example.com/other".into());
    assert_eq!(
        f.check(),
        Err(Error::DestinationMismatch {
            found: "https://sp.example.com/other".into()
        })
    );
}

#[test]
fn rule_signed_response_needs_destination() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    f.response.destination = None;
    assert_eq!(
        f.check(),
        Err(Error::DestinationMismatch {
            found: String::new()
        })
    );
}

#[test]
fn rule_status_success() {
    let mut f = Fixture::valid();
    f.response.status = Status::failure(code::RESPONDER, Some(code::AUTHN_FAILED), Some("no"));
    assert_eq!(
        f.check(),
        Err(Error::StatusNotSuccess {
            code: code::RESPONDER.into(),
            sub_code: Some(code::AUTHN_FAILED.into()),
            message: Some("no".into())
        })
    );
}

#[test]
fn rule_response_in_response_to() {
    let mut f = Fixture::valid();
    f.response.in_response_to = Some("_someone-elses".into());
    assert_eq!(
        f.check(),
        Err(Error::InResponseToMismatch {
            expected: Some(REQ.into()),
            found: Some("_someone-elses".into())
        })
    );
}

#[test]
fn rule_unsolicited_not_allowed_by_default() {
    let mut f = Fixture::valid();
    f.response.in_response_to = None;
    if let Some(d) = f.assertion.subject.as_mut().unwrap().confirmations[0]
        .data
        .as_mut()
    {
        d.in_response_to = None;
    }
    assert_eq!(
        validate_response(&settings(), &f.xml(), None, NOW),
        Err(Error::UnsolicitedNotAllowed)
    );
}

#[test]
fn rule_exactly_one_assertion_none() {
    let f = Fixture::valid();
    let r = f.response.to_xml(None).unwrap();
    let r = dsig::sign(&r, &f.response.id, key(), None, &SignOptions::default()).unwrap();
    assert_eq!(
        validate_response(&settings(), &r, Some(REQ), NOW),
        Err(Error::AssertionCount(0))
    );
}

#[test]
fn rule_exactly_one_assertion_two() {
    let f = Fixture::valid();
    let mut second = f.assertion.clone();
    second.id = "_assertion-2".into();
    let second = dsig::sign(
        &second.to_xml().unwrap(),
        "_assertion-2",
        key(),
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let xml = f.xml_with(
        |a| a,
        |r| r.replace("</samlp:Response>", &format!("{second}</samlp:Response>")),
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::AssertionCount(2))
    );
}

#[test]
fn rule_encrypted_assertion_not_supported() {
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| a,
        |r| {
            r.replace(
                "</samlp:Status>",
                "</samlp:Status><saml:EncryptedAssertion/>",
            )
        },
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::EncryptedAssertion)
    );
}

// ----- subject confirmation rules -----

fn confirmation(f: &mut Fixture) -> &mut SubjectConfirmation {
    &mut f.assertion.subject.as_mut().unwrap().confirmations[0]
}

fn confirmation_data(f: &mut Fixture) -> &mut SubjectConfirmationData {
    confirmation(f).data.as_mut().unwrap()
}

#[test]
fn rule_subject_name_id_required() {
    let mut f = Fixture::valid();
    f.assertion.subject.as_mut().unwrap().name_id = None;
    assert_eq!(f.check(), Err(Error::SubjectMissing));
}

#[test]
fn rule_bearer_confirmation_required() {
    let mut f = Fixture::valid();
    f.assertion.subject.as_mut().unwrap().confirmations.clear();
    assert_eq!(f.check(), Err(Error::BearerConfirmationMissing));
}

#[test]
fn rule_no_other_confirmation_method() {
    let mut f = Fixture::valid();
    let hok = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key";
    let mut extra = confirmation(&mut f).clone();
    extra.method = hok.into();
    f.assertion
        .subject
        .as_mut()
        .unwrap()
        .confirmations
        .push(extra);
    assert_eq!(f.check(), Err(Error::ConfirmationMethod(hok.into())));
}

#[test]
fn rule_recipient() {
    let mut f = Fixture::valid();
    confirmation_data(&mut f).recipient = Some("https://evil.example/acs".into());
    assert_eq!(
        f.check(),
        Err(Error::RecipientMismatch {
            found: "https://evil.example/acs".into()
        })
    );
}

#[test]
fn rule_confirmation_not_on_or_after_required() {
    let mut f = Fixture::valid();
    confirmation_data(&mut f).not_on_or_after = None;
    assert_eq!(f.check(), Err(Error::ConfirmationExpired));
}

#[test]
fn rule_confirmation_expired() {
    let mut f = Fixture::valid();
    // 61 s ago: beyond the 60 s skew.
    confirmation_data(&mut f).not_on_or_after = Some(datetime!(2026-11-28 13:59:29 UTC));
    assert_eq!(f.check(), Err(Error::ConfirmationExpired));
}

#[test]
fn rule_confirmation_not_before() {
    let mut f = Fixture::valid();
    confirmation_data(&mut f).not_before = Some(datetime!(2026-11-28 14:01:31 UTC));
    assert_eq!(f.check(), Err(Error::ConfirmationNotYetValid));
}

#[test]
fn rule_bearer_confirmation_has_no_not_before() {
    // SAML profiles §4.1.4.2: the bearer SubjectConfirmationData "MUST NOT contain a
    // NotBefore attribute", even one already past.
    let mut f = Fixture::valid();
    confirmation_data(&mut f).not_before = Some(datetime!(2026-11-28 13:59:00 UTC));
    assert_eq!(f.check(), Err(Error::ConfirmationNotYetValid));
}

#[test]
fn rule_confirmation_in_response_to() {
    let mut f = Fixture::valid();
    confirmation_data(&mut f).in_response_to = Some("_other".into());
    assert_eq!(
        f.check(),
        Err(Error::InResponseToMismatch {
            expected: Some(REQ.into()),
            found: Some("_other".into())
        })
    );
}

// ----- conditions -----

fn conditions(f: &mut Fixture) -> &mut Conditions {
    f.assertion.conditions.as_mut().unwrap()
}

#[test]
fn rule_conditions_required() {
    let mut f = Fixture::valid();
    f.assertion.conditions = None;
    assert_eq!(f.check(), Err(Error::ConditionsMissing));
}

#[test]
fn rule_not_before_with_skew() {
    let mut f = Fixture::valid();
    conditions(&mut f).not_before = Some(datetime!(2026-11-28 14:01:30 UTC));
    assert!(f.check().is_ok(), "exactly at the skew is accepted");
    conditions(&mut f).not_before = Some(datetime!(2026-11-28 14:01:31 UTC));
    assert_eq!(f.check(), Err(Error::NotYetValid));
}

#[test]
fn rule_not_on_or_after_with_skew() {
    let mut f = Fixture::valid();
    conditions(&mut f).not_on_or_after = Some(datetime!(2026-11-28 13:59:31 UTC));
    assert!(f.check().is_ok(), "within the skew is accepted");
    conditions(&mut f).not_on_or_after = Some(datetime!(2026-11-28 13:59:30 UTC));
    assert_eq!(f.check(), Err(Error::Expired));
}

#[test]
fn rule_skew_is_bounded() {
    let mut f = Fixture::valid();
    conditions(&mut f).not_on_or_after = Some(datetime!(2026-11-28 13:50:00 UTC));
    let mut s = settings();
    s.clock_skew = time::Duration::days(1);
    assert_eq!(
        validate_response(&s, &f.xml(), Some(REQ), NOW),
        Err(Error::Expired)
    );
}

#[test]
fn rule_unknown_condition_is_refused() {
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| {
            a.replacen(
                "<saml:AudienceRestriction>",
                "<saml:Condition xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"x:Custom\" xmlns:x=\"urn:x\"/><saml:AudienceRestriction>",
                1,
            )
        },
        |r| r,
    );
    assert_eq!(
        validate_response(&settings(), &xml, Some(REQ), NOW),
        Err(Error::UnknownCondition(
            "{urn:oasis:names:tc:SAML:2.0:assertion}Condition".into()
        ))
    );
}

#[test]
fn rule_audience_required() {
    let mut f = Fixture::valid();
    conditions(&mut f).audience_restrictions.clear();
    assert_eq!(f.check(), Err(Error::AudienceMissing));
}

#[test]
fn rule_audience_names_us() {
    let mut f = Fixture::valid();
    conditions(&mut f).audience_restrictions = vec![vec!["https://other-sp.example".into()]];
    assert_eq!(f.check(), Err(Error::AudienceMismatch));
}

#[test]
fn rule_every_audience_restriction_names_us() {
    let mut f = Fixture::valid();
    conditions(&mut f)
        .audience_restrictions
        .push(vec!["https://other-sp.example".into()]);
    assert_eq!(f.check(), Err(Error::AudienceMismatch));
}

#[test]
fn rule_authn_statement_required() {
    let mut f = Fixture::valid();
    f.assertion.authn_statements.clear();
    assert_eq!(f.check(), Err(Error::AuthnStatementMissing));
}

#[test]
fn rule_session_not_on_or_after() {
    let mut f = Fixture::valid();
    f.assertion.authn_statements[0].session_not_on_or_after =
        Some(datetime!(2026-11-28 13:59:00 UTC));
    assert_eq!(f.check(), Err(Error::SessionExpired));
}

// ----- wrapping and injection -----

#[test]
fn wrapping_signed_assertion_hidden_and_forged_one_in_its_place() {
    // The attacker keeps a validly signed assertion but hides it in Extensions, and
    // puts a forged, unsigned assertion where the real one was.
    let f = Fixture::valid();
    let signed = dsig::sign(
        &f.assertion.to_xml().unwrap(),
        &f.assertion.id,
        key(),
        None,
        &SignOptions::default(),
    )
    .unwrap();
    let mut forged = f.assertion.clone();
    forged.id = "_forged".into();
    forged
        .subject
        .as_mut()
        .unwrap()
        .name_id
        .as_mut()
        .unwrap()
        .value = "admin@example.org".into();
    let r = f.response.to_xml(Some(&forged.to_xml().unwrap())).unwrap();
    let r = r.replace(
        "</samlp:Status>",
        &format!("</samlp:Status><samlp:Extensions>{signed}</samlp:Extensions>"),
    );
    assert_eq!(
        validate_response(&settings(), &r, Some(REQ), NOW),
        Err(Error::NotSigned)
    );
}

#[test]
fn wrapping_duplicate_id_is_refused() {
    // A forged assertion reuses the signed one's ID.
    let f = Fixture::valid();
    let mut forged = f.assertion.clone();
    forged
        .subject
        .as_mut()
        .unwrap()
        .name_id
        .as_mut()
        .unwrap()
        .value = "admin@example.org".into();
    let xml = f.xml_with(
        |a| a,
        |r| {
            r.replace(
                "</samlp:Status>",
                &format!(
                    "</samlp:Status><samlp:Extensions>{}</samlp:Extensions>",
                    forged.to_xml().unwrap()
                ),
            )
        },
    );
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert!(matches!(sig_error(e), SignatureError::DuplicateId { .. }));
}

#[test]
fn comment_injected_into_name_id_does_not_truncate_it() {
    // A comment inside the signed NameID leaves the digest unchanged (c14n drops it);
    // the value read must still be the whole signed text.
    let f = Fixture::valid();
    let xml = f.xml().replace(
        "alice@example.org</saml:NameID>",
        "alice@example.org<!-- x -->.evil.example</saml:NameID>",
    );
    // The digest changes because text changed; use a value split without new text.
    let split = f.xml().replace(
        "alice@example.org</saml:NameID>",
        "alice@<!---->example.org</saml:NameID>",
    );
    let s = validate_response(&settings(), &split, Some(REQ), NOW).unwrap();
    assert_eq!(s.name_id.value, "alice@example.org");
    assert!(validate_response(&settings(), &xml, Some(REQ), NOW).is_err());
}

// ----- attack review: wrapping, injection, algorithms (each must be refused by its rule,
// and identity read only from the verified element) -----

fn forged(f: &Fixture, id: &str, name: &str) -> Assertion {
    let mut a = f.assertion.clone();
    a.id = id.into();
    a.subject.as_mut().unwrap().name_id.as_mut().unwrap().value = name.into();
    a
}

fn signed_assertion(f: &Fixture) -> String {
    dsig::sign(
        &f.assertion.to_xml().unwrap(),
        &f.assertion.id,
        key(),
        None,
        &SignOptions::default(),
    )
    .unwrap()
}

#[test]
fn wrapping_signed_assertion_in_advice_of_a_forged_one() {
    let f = Fixture::valid();
    let signed = signed_assertion(&f);
    let outer = forged(&f, "_forged", "admin@example.org")
        .to_xml()
        .unwrap()
        .replacen(
            "<saml:AuthnStatement",
            &format!("<saml:Advice>{signed}</saml:Advice><saml:AuthnStatement"),
            1,
        );
    let r = f.response.to_xml(Some(&outer)).unwrap();
    assert_eq!(
        validate_response(&settings(), &r, Some(REQ), NOW),
        Err(Error::NotSigned)
    );
    // The forged one takes the signed one's ID and its Signature: two elements, one ID.
    let sig_start = signed.find("<ds:Signature").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let outer = forged(&f, &f.assertion.id, "admin@example.org")
        .to_xml()
        .unwrap()
        .replacen(
            "</saml:Issuer>",
            &format!("</saml:Issuer>{}", &signed[sig_start..sig_end]),
            1,
        )
        .replacen(
            "<saml:AuthnStatement",
            &format!("<saml:Advice>{signed}</saml:Advice><saml:AuthnStatement"),
            1,
        );
    let r = f.response.to_xml(Some(&outer)).unwrap();
    let e = validate_response(&settings(), &r, Some(REQ), NOW);
    assert!(matches!(sig_error(e), SignatureError::DuplicateId { .. }));
}

#[test]
fn wrapping_signed_response_moved_into_the_object_of_a_forged_one() {
    // The whole signed Response goes into a ds:Object of a copy of its own Signature, on a
    // new Response with the same ID around a forged assertion.
    let mut f = Fixture::valid();
    f.sign_assertion = false;
    f.sign_response = true;
    let signed = f.xml();
    let sig_start = signed.find("<ds:Signature").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap();
    let with_object = format!(
        "{}<ds:Object>{signed}</ds:Object></ds:Signature>",
        &signed[sig_start..sig_end]
    );
    let outer = f
        .response
        .to_xml(Some(
            &forged(&f, "_forged", "admin@example.org").to_xml().unwrap(),
        ))
        .unwrap()
        .replacen("</saml:Issuer>", &format!("</saml:Issuer>{with_object}"), 1);
    // The copy's SignedInfo inside the Object counts as a second one.
    let e = validate_response(&settings(), &outer, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::SignedInfoCount { found: 2 });
    // Without the inner Signature, the copy's ID is the outer one's.
    let inner_start = signed.find("<ds:Signature").unwrap();
    let inner_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let bare = format!("{}{}", &signed[..inner_start], &signed[inner_end..]);
    let outer = outer.replacen(&signed, &bare, 1);
    let e = validate_response(&settings(), &outer, Some(REQ), NOW);
    assert!(matches!(sig_error(e), SignatureError::DuplicateId { .. }));
}

#[test]
fn wrapping_unsigned_assertion_before_or_after_the_signed_one() {
    let f = Fixture::valid();
    let extra = forged(&f, "_forged", "admin@example.org").to_xml().unwrap();
    let before = f.xml_with(
        |a| a,
        |r| r.replacen("</samlp:Status>", &format!("</samlp:Status>{extra}"), 1),
    );
    let after = f.xml_with(
        |a| a,
        |r| r.replace("</samlp:Response>", &format!("{extra}</samlp:Response>")),
    );
    for xml in [before, after] {
        assert_eq!(
            validate_response(&settings(), &xml, Some(REQ), NOW),
            Err(Error::AssertionCount(2))
        );
    }
}

#[test]
fn wrapping_assertion_added_to_a_signed_response_breaks_its_digest() {
    let mut f = Fixture::valid();
    f.sign_assertion = false;
    f.sign_response = true;
    let extra = forged(&f, "_forged", "admin@example.org").to_xml().unwrap();
    let xml = f
        .xml()
        .replace("</samlp:Response>", &format!("{extra}</samlp:Response>"));
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::DigestMismatch);
}

#[test]
fn wrapping_duplicate_id_in_a_namespaced_id_attribute() {
    // wsu:Id counts as an ID: a second element carrying the signed one's ID is refused.
    let f = Fixture::valid();
    let wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    let xml = f.xml_with(
        |a| a,
        |r| {
            r.replacen(
                "</samlp:Status>",
                &format!(
                    "</samlp:Status><samlp:Extensions><x:Decoy xmlns:x=\"urn:x\" xmlns:wsu=\"{wsu}\" wsu:Id=\"_assertion-1\"/></samlp:Extensions>"
                ),
                1,
            )
        },
    );
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert!(matches!(sig_error(e), SignatureError::DuplicateId { .. }));
    // xml:id is not an ID our verifier resolves: a decoy carrying it changes nothing.
    let xml = f.xml_with(
        |a| a,
        |r| {
            r.replacen(
                "</samlp:Status>",
                "</samlp:Status><samlp:Extensions><x:Decoy xmlns:x=\"urn:x\" xml:id=\"_assertion-1\"/></samlp:Extensions>",
                1,
            )
        },
    );
    let s = validate_response(&settings(), &xml, Some(REQ), NOW).unwrap();
    assert_eq!(s.name_id.value, "alice@example.org");
}

#[test]
fn reference_shapes_are_refused() {
    let f = Fixture::valid();
    let xml = f.xml();
    // To an ancestor (the Response).
    let ancestor = xml.replacen("URI=\"#_assertion-1\"", "URI=\"#_response-1\"", 1);
    let e = validate_response(&settings(), &ancestor, Some(REQ), NOW);
    assert!(matches!(
        sig_error(e),
        SignatureError::ReferenceNotParent { .. }
    ));
    // The whole document, from an element that is not the document element.
    let empty = xml.replacen("URI=\"#_assertion-1\"", "URI=\"\"", 1);
    let e = validate_response(&settings(), &empty, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::EmptyUriNotDocumentElement);
    // Two References.
    let start = xml.find("<ds:Reference").unwrap();
    let end = xml.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
    let two = format!("{}{}{}", &xml[..end], &xml[start..end], &xml[end..]);
    let e = validate_response(&settings(), &two, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::ReferenceCount { found: 2 });
}

#[test]
fn transforms_beyond_enveloped_and_c14n_are_refused() {
    let xml = Fixture::valid().xml();
    for (algorithm, body) in [
        (
            "http://www.w3.org/TR/1999/REC-xpath-19991116",
            "<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath>",
        ),
        (
            "http://www.w3.org/TR/1999/REC-xslt-19991116",
            "<xsl:stylesheet xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" version=\"1.0\"/>",
        ),
        ("http://www.w3.org/2002/06/xmldsig-filter2", ""),
    ] {
        let t = xml.replacen(
            "<ds:Transforms>",
            &format!(
                "<ds:Transforms><ds:Transform Algorithm=\"{algorithm}\">{body}</ds:Transform>"
            ),
            1,
        );
        let e = validate_response(&settings(), &t, Some(REQ), NOW);
        assert_eq!(
            sig_error(e),
            SignatureError::DisallowedTransform {
                algorithm: algorithm.into()
            },
            "{algorithm}"
        );
    }
}

#[test]
fn injection_in_signed_values_never_changes_what_is_read() {
    let f = Fixture::valid();
    let xml = f.xml();
    // CDATA is text to c14n: the digest holds, and the value is the whole text.
    let cdata = xml.replacen(
        "alice@example.org</saml:NameID>",
        "<![CDATA[alice@example.org]]></saml:NameID>",
        1,
    );
    let s = validate_response(&settings(), &cdata, Some(REQ), NOW).unwrap();
    assert_eq!(s.name_id.value, "alice@example.org");
    // Text added after a comment, in the NameID or an attribute value, is new content.
    for (from, to) in [
        (
            "alice@example.org</saml:NameID>",
            "alice@example.org<!---->.evil.com</saml:NameID>",
        ),
        (
            "staff</saml:AttributeValue>",
            "sta<!---->ff<![CDATA[,admins]]></saml:AttributeValue>",
        ),
        (
            "alice@example.org</saml:NameID>",
            "alice@<?x y?>example.org</saml:NameID>",
        ),
    ] {
        let t = xml.replacen(from, to, 1);
        let e = validate_response(&settings(), &t, Some(REQ), NOW);
        assert_eq!(sig_error(e), SignatureError::DigestMismatch, "{to}");
    }
    // A comment splitting an attribute value: read whole.
    let split = xml.replacen(
        "staff</saml:AttributeValue>",
        "sta<!-- -->ff</saml:AttributeValue>",
        1,
    );
    let s = validate_response(&settings(), &split, Some(REQ), NOW).unwrap();
    assert_eq!(s.attributes[1].values, ["staff", "admins"]);
    // The saml prefix re-declared to another namespace mid-assertion is new content.
    let renamed = xml.replacen("<saml:NameID ", "<saml:NameID xmlns:saml=\"urn:evil\" ", 1);
    assert!(validate_response(&settings(), &renamed, Some(REQ), NOW).is_err());
    // A DOCTYPE (entities, XXE) never gets past the reader.
    let doctype = format!(
        "<!DOCTYPE r [<!ENTITY e \"admin@example.org\">]>{}",
        xml.replacen("alice@example.org</saml:NameID>", "&e;</saml:NameID>", 1)
    );
    assert!(matches!(
        validate_response(&settings(), &doctype, Some(REQ), NOW),
        Err(Error::Xml(latchkey_xmlsec::Error::Read(_)))
    ));
}

#[test]
fn several_bearer_confirmations_one_satisfied_is_enough() {
    let mut f = Fixture::valid();
    let good = confirmation(&mut f).clone();
    let mut wrong_recipient = good.clone();
    wrong_recipient.data.as_mut().unwrap().recipient = Some("https://evil.example/acs".into());
    let mut expired = good.clone();
    expired.data.as_mut().unwrap().not_on_or_after = Some(datetime!(2026-11-28 13:00:00 UTC));
    let mut other_request = good.clone();
    other_request.data.as_mut().unwrap().in_response_to = Some("_other".into());
    f.assertion.subject.as_mut().unwrap().confirmations =
        vec![wrong_recipient.clone(), expired.clone(), good.clone()];
    let s = f.check().unwrap();
    // The expiry is the satisfied confirmation's, never an unsatisfied one's.
    assert_eq!(s.replay_expiry, datetime!(2026-11-28 14:06:00 UTC));
    // None satisfied: refused by the first one's rule.
    f.assertion.subject.as_mut().unwrap().confirmations =
        vec![expired, wrong_recipient.clone(), other_request];
    assert_eq!(f.check(), Err(Error::ConfirmationExpired));
    f.assertion.subject.as_mut().unwrap().confirmations = vec![wrong_recipient];
    assert_eq!(
        f.check(),
        Err(Error::RecipientMismatch {
            found: "https://evil.example/acs".into()
        })
    );
}

#[test]
fn conditions_without_not_on_or_after_fall_back_to_the_confirmation() {
    let mut f = Fixture::valid();
    conditions(&mut f).not_on_or_after = None;
    confirmation_data(&mut f).not_on_or_after = Some(datetime!(2026-11-28 14:03:00 UTC));
    assert_eq!(
        f.check().unwrap().replay_expiry,
        datetime!(2026-11-28 14:04:00 UTC)
    );
}

#[test]
fn one_time_use_is_reported_and_proxy_restriction_accepted() {
    let mut f = Fixture::valid();
    conditions(&mut f).one_time_use = true;
    assert!(f.check().unwrap().one_time_use);
    let f = Fixture::valid();
    let xml = f.xml_with(
        |a| {
            a.replacen(
                "</saml:AudienceRestriction>",
                "</saml:AudienceRestriction><saml:ProxyRestriction Count=\"0\"/>",
                1,
            )
        },
        |r| r,
    );
    assert!(
        !validate_response(&settings(), &xml, Some(REQ), NOW)
            .unwrap()
            .one_time_use
    );
}

#[test]
fn status_not_success_refuses_even_a_valid_assertion() {
    let mut f = Fixture::valid();
    f.sign_response = true;
    f.response.status = Status::failure(code::RESPONDER, None, None);
    assert!(matches!(f.check(), Err(Error::StatusNotSuccess { .. })));
}

/// The Fixture's response with its assertion's SignatureMethod or DigestMethod URI
/// replaced: the algorithm rules run before any key is tried.
fn with_method(element: &str, uri: &str) -> String {
    let xml = Fixture::valid().xml();
    let tag = format!("<ds:{element} Algorithm=\"");
    let start = xml.find(&tag).unwrap() + tag.len();
    let end = start + xml[start..].find('"').unwrap();
    format!("{}{uri}{}", &xml[..start], &xml[end..])
}

#[test]
fn sha1_and_hmac_are_refused_by_default() {
    let e = validate_response(
        &settings(),
        &with_method("SignatureMethod", SignatureAlgorithm::RsaSha1.uri()),
        Some(REQ),
        NOW,
    );
    assert_eq!(sig_error(e), SignatureError::Sha1NotAllowed);
    let e = validate_response(
        &settings(),
        &with_method("DigestMethod", DigestAlgorithm::Sha1.uri()),
        Some(REQ),
        NOW,
    );
    assert_eq!(sig_error(e), SignatureError::Sha1NotAllowed);
    // HMAC: the "key" would be whatever the sender likes.
    let hmac = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
    let e = validate_response(
        &settings(),
        &with_method("SignatureMethod", hmac),
        Some(REQ),
        NOW,
    );
    assert_eq!(
        sig_error(e),
        SignatureError::UnknownSignatureAlgorithm {
            algorithm: hmac.into()
        }
    );
}

#[test]
fn only_configured_keys_never_keyinfo() {
    // Signed by another key whose certificate travels in KeyInfo: never read.
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["idp".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let cert = latchkey_xmlsec::crypto::Certificate::from_pem(&cert.pem()).unwrap();
    let other = SigningKey::from_pem(&kp.serialize_pem()).unwrap();
    let f = Fixture::valid();
    let a = dsig::sign(
        &f.assertion.to_xml().unwrap(),
        &f.assertion.id,
        &other,
        Some(&cert),
        &SignOptions::default(),
    )
    .unwrap();
    assert!(a.contains("<ds:X509Certificate>"));
    let xml = f.response.to_xml(Some(&a)).unwrap();
    let e = validate_response(&settings(), &xml, Some(REQ), NOW);
    assert_eq!(sig_error(e), SignatureError::BadSignature);
}
