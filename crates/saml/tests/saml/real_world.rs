//! The profile on Responses from real IdPs (clock pinned to when they were valid), and on
//! published attacks, which must be refused.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use latchkey_saml::Error;
use latchkey_saml::assertion::name_id_format;
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_xmlsec::crypto::{Certificate, DigestAlgorithm, SignatureAlgorithm, VerifyingKey};
use latchkey_xmlsec::dsig::SignatureError;
use time::OffsetDateTime;
use time::macros::datetime;

fn path(name: &str) -> String {
    format!("{}/tests/data/responses/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn text(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap()
}

fn der_key(name: &str) -> VerifyingKey {
    Certificate::from_der(&std::fs::read(path(name)).unwrap())
        .unwrap()
        .verifying_key()
        .clone()
}

/// Settings for the samael (samling IdP) vectors, with the legacy opt-ins they need.
fn samling(key: VerifyingKey) -> SpSettings {
    let mut s = SpSettings::new(
        "http://test_accept_signed_with_correct_key.test",
        "http://sp.example.com/demo1/index.php?acs",
        "https://fujifish.github.io/samling/samling.html",
        vec![key],
    );
    s.signature_algorithms.push(SignatureAlgorithm::RsaSha1);
    s.digest_algorithms.push(DigestAlgorithm::Sha1);
    s.allow_rsa_1024 = true;
    s
}

const SAMLING_REQ: &str = "ONELOGIN_4fee3b046395c4e751011e97f8900b5273d56685";
const SAMLING_NOW: OffsetDateTime = datetime!(2014-07-17 01:02:00 UTC);

#[test]
fn samael_rsa_sha1_response_accepted_with_legacy_opt_in() {
    let s = samling(der_key("public.der"));
    let xml = text("response_signed_by_idp_2.xml");
    let subject = validate_response(&s, &xml, Some(SAMLING_REQ), SAMLING_NOW).unwrap();
    assert_eq!(
        subject.issuer,
        "https://fujifish.github.io/samling/samling.html"
    );
    assert_eq!(
        subject.name_id.format.as_deref(),
        Some(name_id_format::TRANSIENT)
    );
    assert_eq!(
        subject.name_id.sp_name_qualifier.as_deref(),
        Some("http://sp.example.com/demo1/metadata.php")
    );
    assert_eq!(
        subject.session_index.as_deref(),
        Some("_be9967abd904ddcae3c0eb4189adbe3f71e327cf93")
    );
    // The same response without the SHA-1 opt-in is refused.
    let mut strict = samling(der_key("public.der"));
    strict
        .signature_algorithms
        .retain(|a| *a != SignatureAlgorithm::RsaSha1);
    strict
        .digest_algorithms
        .retain(|a| *a != DigestAlgorithm::Sha1);
    assert!(matches!(
        validate_response(&strict, &xml, Some(SAMLING_REQ), SAMLING_NOW),
        Err(Error::Xml(latchkey_xmlsec::Error::Signature(
            SignatureError::Sha1NotAllowed
        )))
    ));
    // And with the wrong key, refused.
    let wrong = samling(der_key("ec_cert.der"));
    assert!(validate_response(&wrong, &xml, Some(SAMLING_REQ), SAMLING_NOW).is_err());
}

#[test]
fn samael_ecdsa_response_accepted() {
    let s = samling(der_key("ec_cert.der"));
    let xml = text("response_signed_by_idp_ecdsa.xml");
    let subject = validate_response(&s, &xml, Some(SAMLING_REQ), SAMLING_NOW).unwrap();
    assert_eq!(
        subject.issuer,
        "https://fujifish.github.io/samling/samling.html"
    );
    // Years later, the confirmation window has closed.
    assert_eq!(
        validate_response(
            &s,
            &xml,
            Some(SAMLING_REQ),
            datetime!(2031-01-01 00:00:00 UTC)
        ),
        Err(Error::ConfirmationExpired)
    );
}

fn feide() -> SpSettings {
    let key = VerifyingKey::from_pem(&text("feide_public.pem")).unwrap();
    let mut s = SpSettings::new(
        "passport-saml",
        "http://localhost:3000/login/callback",
        "https://openidp.feide.no",
        vec![key],
    );
    s.signature_algorithms.push(SignatureAlgorithm::RsaSha1);
    s.digest_algorithms.push(DigestAlgorithm::Sha1);
    s.allow_rsa_1024 = true;
    s
}

#[test]
fn feide_signed_response_accepted() {
    let subject = validate_response(
        &feide(),
        &text("valid_saml.xml"),
        Some("_d766d16611ac0d14121b"),
        datetime!(2012-07-03 11:33:00 UTC),
    )
    .unwrap();
    assert_eq!(subject.issuer, "https://openidp.feide.no");
    assert_eq!(
        subject.name_id.value,
        "_6c5dcaa3053321ff4d63785fbc3f67c59a129cde82"
    );
    assert!(!subject.attributes.is_empty());
}

#[test]
fn feide_signature_wrapping_refused() {
    let e = validate_response(
        &feide(),
        &text("valid_saml_signature_wrapping.xml"),
        Some("_d766d16611ac0d14121b"),
        datetime!(2012-07-03 11:33:00 UTC),
    );
    assert!(
        matches!(
            e,
            Err(Error::Xml(latchkey_xmlsec::Error::Signature(
                SignatureError::DuplicateId { count: 2, .. }
            )))
        ),
        "{e:?}"
    );
}

fn capriza(key: VerifyingKey) -> SpSettings {
    let mut s = SpSettings::new(
        "ancestor",
        "ancestor",
        "https://capriza.github.io/samling/samling.html",
        vec![key],
    );
    s.allow_unsolicited = true;
    s.allow_rsa_1024 = true;
    s
}

#[test]
fn ancestor_attack_refused() {
    // The signed response sits inside the Issuer of an unsigned outer one.
    let e = validate_response(
        &capriza(der_key("public.der")),
        &text("ancestor_attack_signed.xml"),
        None,
        datetime!(2026-02-25 13:33:00 UTC),
    );
    assert_eq!(
        e,
        Err(Error::MissingAttribute {
            element: "samlp:Response",
            attribute: "Version"
        })
    );
    // Made schema-valid on the outside, it is still refused: an Issuer holds text only.
    let patched = text("ancestor_attack_signed.xml").replacen(
        "ID=\"_malicious_outer\"",
        "ID=\"_malicious_outer\" Version=\"2.0\" IssueInstant=\"2026-02-25T13:32:14Z\"",
        1,
    );
    let e = validate_response(
        &capriza(der_key("public.der")),
        &patched,
        None,
        datetime!(2026-02-25 13:33:00 UTC),
    );
    assert_eq!(e, Err(Error::NotTextOnly("saml:Issuer")));
}

#[test]
fn object_attack_refused() {
    // The assertion's signature references the whole Response and smuggles an unsigned
    // assertion in ds:Object.
    let e = validate_response(
        &capriza(der_key("public.der")),
        &text("object_attack_response.xml"),
        None,
        datetime!(2026-02-25 13:33:00 UTC),
    );
    assert!(
        matches!(
            e,
            Err(Error::Xml(latchkey_xmlsec::Error::Signature(
                SignatureError::ReferenceNotParent { .. }
            )))
        ),
        "{e:?}"
    );
}

#[test]
fn xpointer_attack_refused() {
    let e = validate_response(
        &samling(der_key("public.der")),
        &text("xpointer_attack_signed.xml"),
        Some(SAMLING_REQ),
        SAMLING_NOW,
    );
    assert!(
        matches!(
            e,
            Err(Error::Xml(latchkey_xmlsec::Error::Signature(
                SignatureError::UnsupportedUri { .. }
            )))
        ),
        "{e:?}"
    );
}
