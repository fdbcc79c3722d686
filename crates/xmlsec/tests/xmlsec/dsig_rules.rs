//! Our own signatures: a round trip for every signing algorithm, then one test per
//! verification rule, each breaking only that rule on a document we signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use latchkey_xmlsec::Error;
use latchkey_xmlsec::crypto::{
    Certificate, DigestAlgorithm, KeyError, SignatureAlgorithm, SigningKey,
};
use latchkey_xmlsec::dsig::{self, SignOptions, SignatureError, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

const RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="_resp1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
  <saml:Issuer>https://idp.example.org</saml:Issuer>
  <samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
  <saml:Assertion ID="_assert1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">
    <saml:Issuer>https://idp.example.org</saml:Issuer>
    <saml:Subject><saml:NameID>alice@example.org</saml:NameID></saml:Subject>
    <saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue xsi:type="xs:string">alice@example.org</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>
"#;

/// A fresh key pair and self-signed certificate for `alg` (rcgen on aws-lc-rs).
fn keypair(alg: SignatureAlgorithm) -> (SigningKey, Certificate) {
    let rc_alg = match alg {
        SignatureAlgorithm::RsaSha256 => &rcgen::PKCS_RSA_SHA256,
        SignatureAlgorithm::RsaSha384 => &rcgen::PKCS_RSA_SHA384,
        SignatureAlgorithm::RsaSha512 => &rcgen::PKCS_RSA_SHA512,
        SignatureAlgorithm::EcdsaSha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        SignatureAlgorithm::EcdsaSha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        other => panic!("no test key for {other:?}"),
    };
    let kp = rcgen::KeyPair::generate_for(rc_alg).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["signer.example.org".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    (
        SigningKey::from_pem(&kp.serialize_pem()).unwrap(),
        Certificate::from_pem(&cert.pem()).unwrap(),
    )
}

fn rsa() -> (SigningKey, Certificate) {
    keypair(SignatureAlgorithm::RsaSha256)
}

fn sign_assertion(key: &SigningKey, cert: Option<&Certificate>) -> String {
    dsig::sign(RESPONSE, "_assert1", key, cert, &SignOptions::default()).unwrap()
}

/// Verifies `_assert1` with `key` trusted, strict defaults.
fn verify_assertion(xml: &str, key: &SigningKey) -> Result<(), Error> {
    verify_assertion_with(xml, key, &VerifyOptions::default())
}

fn verify_assertion_with(
    xml: &str,
    key: &SigningKey,
    options: &VerifyOptions,
) -> Result<(), Error> {
    let doc = reader::parse(xml, &Limits::default())?;
    let keys = [key.verifying_key().clone()];
    let v = dsig::verify_by_id(&doc, "_assert1", &keys, options)?;
    assert_eq!(v.element().attribute("ID"), Some("_assert1"));
    Ok(())
}

fn rule(result: Result<(), Error>) -> SignatureError {
    match result {
        Err(Error::Signature(e)) => e,
        other => panic!("expected a signature rule to fail, got {other:?}"),
    }
}

/// Replaces the one occurrence of `from` (it must occur exactly once).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replacen(from, to, 1)
}

fn signature_text(signed: &str) -> &str {
    let start = signed.find("<ds:Signature ").unwrap();
    let end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &signed[start..end]
}

#[test]
fn round_trip_every_signing_algorithm() {
    for alg in SignatureAlgorithm::ALL.into_iter().filter(|a| a.can_sign()) {
        let (key, cert) = keypair(alg);
        let natural = match alg {
            SignatureAlgorithm::EcdsaSha384 => SignatureAlgorithm::EcdsaSha384,
            SignatureAlgorithm::EcdsaSha256 => SignatureAlgorithm::EcdsaSha256,
            _ => SignatureAlgorithm::RsaSha256,
        };
        assert_eq!(key.default_algorithm(), natural);
        let options = SignOptions {
            algorithm: Some(alg),
            ..SignOptions::default()
        };
        let signed = dsig::sign(RESPONSE, "_assert1", &key, Some(&cert), &options).unwrap();
        // Only the Signature was added, right after the Assertion's Issuer.
        let sig = signature_text(&signed);
        assert_eq!(signed.replacen(sig, "", 1), RESPONSE, "{alg:?}");
        assert!(signed.contains(&format!(
            "<saml:Issuer>https://idp.example.org</saml:Issuer>{sig}"
        )));
        let doc = reader::parse(&signed, &Limits::default()).unwrap();
        let keys = [key.verifying_key().clone()];
        let v = dsig::verify_by_id(&doc, "_assert1", &keys, &VerifyOptions::default()).unwrap();
        assert_eq!(v.signature_algorithm(), alg);
        let want_digest = match alg {
            SignatureAlgorithm::RsaSha384 | SignatureAlgorithm::EcdsaSha384 => {
                DigestAlgorithm::Sha384
            }
            SignatureAlgorithm::RsaSha512 => DigestAlgorithm::Sha512,
            _ => DigestAlgorithm::Sha256,
        };
        assert_eq!(v.digest_algorithm(), want_digest);
        assert_eq!(v.element().tag_name().name(), "Assertion");
        assert_eq!(v.signature_element().parent_element(), Some(v.element()));
        let all = dsig::verify_document(&doc, &keys, &VerifyOptions::default()).unwrap();
        assert_eq!(all.len(), 1);
    }
}

#[test]
fn signs_outer_response_with_signed_assertion_inside() {
    let (key, cert) = rsa();
    let inner = sign_assertion(&key, Some(&cert));
    let both = dsig::sign(&inner, "_resp1", &key, Some(&cert), &SignOptions::default()).unwrap();
    let doc = reader::parse(&both, &Limits::default()).unwrap();
    let keys = [key.verifying_key().clone()];
    let all = dsig::verify_document(&doc, &keys, &VerifyOptions::default()).unwrap();
    let names: Vec<_> = all.iter().map(|v| v.id().unwrap()).collect();
    assert_eq!(names, ["_resp1", "_assert1"]);
    let root = dsig::verify_document_element(&doc, &keys, &VerifyOptions::default()).unwrap();
    assert_eq!(root.element(), doc.root_element());
}

#[test]
fn insertion_points_first_child_and_self_closing() {
    let (key, _) = keypair(SignatureAlgorithm::EcdsaSha256);
    let keys = [key.verifying_key().clone()];
    // No Issuer: the Signature becomes the first child.
    let xml = "<r xmlns=\"urn:x\"><e ID=\"a1\" note='x>y'>\n  <c>text</c>\n</e></r>";
    let signed = dsig::sign(xml, "a1", &key, None, &SignOptions::default()).unwrap();
    assert!(signed.starts_with("<r xmlns=\"urn:x\"><e ID=\"a1\" note='x>y'><ds:Signature "));
    let doc = reader::parse(&signed, &Limits::default()).unwrap();
    dsig::verify_by_id(&doc, "a1", &keys, &VerifyOptions::default()).unwrap();
    // A self-closing element is opened up.
    let xml = "<r><e ID=\"a2\" k=\"v\"/><f/></r>";
    let signed = dsig::sign(xml, "a2", &key, None, &SignOptions::default()).unwrap();
    assert!(signed.starts_with("<r><e ID=\"a2\" k=\"v\"><ds:Signature "));
    assert!(signed.ends_with("</ds:Signature></e><f/></r>"));
    let doc = reader::parse(&signed, &Limits::default()).unwrap();
    dsig::verify_by_id(&doc, "a2", &keys, &VerifyOptions::default()).unwrap();
}

#[test]
fn signing_refusals() {
    let (key, _) = rsa();
    let opts = SignOptions::default();
    let err = |r: Result<String, Error>| r.unwrap_err();
    assert_eq!(
        err(dsig::sign(RESPONSE, "_nope", &key, None, &opts)),
        Error::Signature(SignatureError::IdNotFound { id: "_nope".into() })
    );
    assert_eq!(
        err(dsig::sign(RESPONSE, "a'b", &key, None, &opts)),
        Error::Signature(SignatureError::InvalidId { id: "a'b".into() })
    );
    let dup = "<r><a ID=\"x\"/><b ID=\"x\"/></r>";
    assert!(matches!(
        err(dsig::sign(dup, "x", &key, None, &opts)),
        Error::Signature(SignatureError::DuplicateId { count: 2, .. })
    ));
    let mixed = "<r><a ID=\"x\"/><b Id=\"x\"/></r>";
    assert!(matches!(
        err(dsig::sign(mixed, "x", &key, None, &opts)),
        Error::Signature(SignatureError::DuplicateId { count: 2, .. })
    ));
    let signed = sign_assertion(&key, None);
    assert_eq!(
        err(dsig::sign(&signed, "_assert1", &key, None, &opts)),
        Error::Signature(SignatureError::AlreadySigned)
    );
    let sha1 = SignOptions {
        digest: Some(DigestAlgorithm::Sha1),
        ..SignOptions::default()
    };
    assert!(matches!(
        err(dsig::sign(RESPONSE, "_assert1", &key, None, &sha1)),
        Error::Signature(SignatureError::UnsupportedForSigning(_))
    ));
    for alg in [SignatureAlgorithm::RsaSha1, SignatureAlgorithm::EcdsaSha512] {
        let o = SignOptions {
            algorithm: Some(alg),
            ..SignOptions::default()
        };
        assert_eq!(
            err(dsig::sign(RESPONSE, "_assert1", &key, None, &o)),
            Error::Key(KeyError::VerifyOnly(alg))
        );
    }
    let (_, other_cert) = rsa();
    assert_eq!(
        err(dsig::sign(
            RESPONSE,
            "_assert1",
            &key,
            Some(&other_cert),
            &opts
        )),
        Error::Key(KeyError::CertificateMismatch)
    );
    let ec = SignOptions {
        algorithm: Some(SignatureAlgorithm::EcdsaSha256),
        ..SignOptions::default()
    };
    assert!(matches!(
        err(dsig::sign(RESPONSE, "_assert1", &key, None, &ec)),
        Error::Key(KeyError::AlgorithmKeyMismatch { .. })
    ));
    assert!(matches!(
        err(dsig::sign("<a><!DOCTYPE x></a>", "x", &key, None, &opts)),
        Error::Read(_)
    ));
}

// ---- one test per verification rule -------------------------------------------------

#[test]
fn untouched_signature_verifies_and_comments_do_not_matter() {
    let (key, cert) = rsa();
    let signed = sign_assertion(&key, Some(&cert));
    verify_assertion(&signed, &key).unwrap();
    // Comments are outside the signed node-set; base64 may be re-wrapped.
    let commented = replace_once(
        &signed,
        "alice@example.org</saml:NameID>",
        "alice@<!-- c -->example.org</saml:NameID>",
    );
    verify_assertion(&commented, &key).unwrap();
    let value_start = signed.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let mut wrapped = signed.clone();
    wrapped.insert_str(value_start + 20, "\n  ");
    wrapped.insert_str(value_start, "\r\n\t");
    verify_assertion(&wrapped, &key).unwrap();
}

#[test]
fn handle_exposes_only_signed_content() {
    let (key, cert) = rsa();
    let signed = sign_assertion(&key, Some(&cert));
    let commented = replace_once(
        &signed,
        "<saml:NameID>alice@example.org",
        "<saml:NameID>alice@<!-- x -->example.org",
    );
    let doc = reader::parse(&commented, &Limits::default()).unwrap();
    let keys = [key.verifying_key().clone()];
    let v = dsig::verify_by_id(&doc, "_assert1", &keys, &VerifyOptions::default()).unwrap();
    let name_id = v
        .element()
        .descendants()
        .find(|n| n.has_tag_name(("urn:oasis:names:tc:SAML:2.0:assertion", "NameID")))
        .unwrap();
    assert_eq!(
        name_id.text(),
        Some("alice@"),
        "text() is the first text node only, as in roxmltree"
    );
    assert_eq!(v.text(name_id).as_deref(), Some("alice@example.org"));
    // The Signature and everything outside the Assertion are not covered.
    assert!(!v.covers(v.signature_element()));
    let cert_node = v
        .signature_element()
        .descendants()
        .find(|n| n.has_tag_name(("http://www.w3.org/2000/09/xmldsig#", "X509Certificate")))
        .unwrap();
    assert!(!v.covers(cert_node));
    assert_eq!(v.text(cert_node), None);
    assert!(!v.covers(doc.root_element()));
    assert!(v.covers(v.element()));
    let names: Vec<_> = v
        .signed_children()
        .filter(|n| n.is_element())
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(names, ["Issuer", "Subject", "AttributeStatement"]);
}

#[test]
fn rule_tampered_text() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let bad = replace_once(&signed, "<saml:NameID>alice@", "<saml:NameID>mallory@");
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::DigestMismatch
    );
}

#[test]
fn rule_tampered_attribute() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let bad = replace_once(&signed, "Name=\"mail\"", "Name=\"role\"");
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::DigestMismatch
    );
}

#[test]
fn rule_tampered_signed_info() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    // A digest value changed in SignedInfo breaks the signature over SignedInfo.
    let dv_start = signed.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let mut bad = signed.clone();
    let c = if &bad[dv_start..dv_start + 1] == "A" {
        "B"
    } else {
        "A"
    };
    bad.replace_range(dv_start..dv_start + 1, c);
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::BadSignature
    );
}

#[test]
fn rule_signature_moved_to_another_element() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let sig = signature_text(&signed).to_owned();
    let removed = signed.replacen(&sig, "", 1);
    let moved = replace_once(
        &removed,
        "<saml:Issuer>https://idp.example.org</saml:Issuer>\n  <samlp:Status>",
        &format!("<saml:Issuer>https://idp.example.org</saml:Issuer>{sig}\n  <samlp:Status>"),
    );
    assert_eq!(
        rule(verify_assertion(&moved, &key)),
        SignatureError::SignatureCount { found: 0 }
    );
    let doc = reader::parse(&moved, &Limits::default()).unwrap();
    let keys = [key.verifying_key().clone()];
    let err = dsig::verify_by_id(&doc, "_resp1", &keys, &VerifyOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Signature(SignatureError::ReferenceNotParent { ref expected, .. }) if expected.as_deref() == Some("_resp1")),
        "{err:?}"
    );
}

#[test]
fn rule_duplicated_id() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    // A second element with the same ID outside the signed Assertion (the wrapping
    // attack's decoy), under each ID attribute name in force.
    for attr in ["ID", "Id", "AssertionID"] {
        let bad = replace_once(
            &signed,
            "<samlp:Status>",
            &format!("<samlp:Extensions {attr}=\"_assert1\"/><samlp:Status>"),
        );
        let doc = reader::parse(&bad, &Limits::default()).unwrap();
        let keys = [key.verifying_key().clone()];
        let assertion = doc
            .root_element()
            .children()
            .find(|n| n.has_tag_name(("urn:oasis:names:tc:SAML:2.0:assertion", "Assertion")))
            .unwrap();
        let err =
            dsig::verify_element(&doc, assertion, &keys, &VerifyOptions::default()).unwrap_err();
        assert_eq!(
            err,
            Error::Signature(SignatureError::DuplicateId {
                id: "_assert1".into(),
                count: 2
            }),
            "{attr}"
        );
        // Looking it up by ID is refused for the same reason.
        assert!(matches!(
            rule(verify_assertion(&bad, &key)),
            SignatureError::DuplicateId { count: 2, .. }
        ));
    }
}

#[test]
fn rule_two_signatures() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let sig = signature_text(&signed).to_owned();
    let bad = signed.replacen(&sig, &format!("{sig}{sig}"), 1);
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::SignatureCount { found: 2 }
    );
}

#[test]
fn rule_two_references() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let start = signed.find("<ds:Reference ").unwrap();
    let end = signed.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
    let reference = signed[start..end].to_owned();
    let bad = signed.replacen(&reference, &format!("{reference}{reference}"), 1);
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::ReferenceCount { found: 2 }
    );
}

#[test]
fn rule_wrong_uri() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let bad = replace_once(&signed, "URI=\"#_assert1\"", "URI=\"#_resp1\"");
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::ReferenceNotParent {
            uri: "#_resp1".into(),
            expected: Some("_assert1".into())
        }
    );
    let bad = replace_once(&signed, "URI=\"#_assert1\"", "URI=\"\"");
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::EmptyUriNotDocumentElement
    );
    let bad = replace_once(&signed, " URI=\"#_assert1\"", "");
    assert!(matches!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::MissingAttribute {
            attribute: "URI",
            ..
        }
    ));
}

#[test]
fn rule_xpointer_uri() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    for uri in [
        "#xpointer(id('_assert1'))",
        "#xpointer(/)",
        "#element(/1/3)",
        "http://evil/#_assert1",
    ] {
        let bad = replace_once(&signed, "URI=\"#_assert1\"", &format!("URI=\"{uri}\""));
        assert_eq!(
            rule(verify_assertion(&bad, &key)),
            SignatureError::UnsupportedUri { uri: uri.into() }
        );
    }
}

#[test]
fn rule_disallowed_transform() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let exc = "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:Transform>";
    for alg in [
        "http://www.w3.org/TR/1999/REC-xpath-19991116",
        "http://www.w3.org/TR/1999/REC-xslt-19991116",
        "http://www.w3.org/2002/06/xmldsig-filter2",
        "http://www.w3.org/2000/09/xmldsig#base64",
    ] {
        let bad = replace_once(
            &signed,
            exc,
            &format!("<ds:Transform Algorithm=\"{alg}\"></ds:Transform>"),
        );
        assert_eq!(
            rule(verify_assertion(&bad, &key)),
            SignatureError::DisallowedTransform {
                algorithm: alg.into()
            }
        );
    }
    // c14n before enveloped-signature, or twice: out of sequence.
    let env = "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>";
    let swapped = replace_once(&signed, &format!("{env}{exc}"), &format!("{exc}{env}"));
    assert_eq!(
        rule(verify_assertion(&swapped, &key)),
        SignatureError::TransformSequence
    );
    let twice = replace_once(&signed, &format!("{env}{exc}"), &format!("{env}{env}{exc}"));
    assert_eq!(
        rule(verify_assertion(&twice, &key)),
        SignatureError::TransformSequence
    );
}

#[test]
fn rule_disallowed_canonicalization() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let cm = "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:CanonicalizationMethod>";
    let alg = "http://www.w3.org/2006/12/xml-c14n11";
    let bad = replace_once(
        &signed,
        cm,
        &format!("<ds:CanonicalizationMethod Algorithm=\"{alg}\"></ds:CanonicalizationMethod>"),
    );
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::DisallowedCanonicalization {
            algorithm: alg.into()
        }
    );
}

#[test]
fn rule_signature_and_digest_methods_allow_listed() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let sm = SignatureAlgorithm::RsaSha256.uri();
    for alg in [
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
    ] {
        let bad = replace_once(&signed, sm, alg);
        assert_eq!(
            rule(verify_assertion(&bad, &key)),
            SignatureError::UnknownSignatureAlgorithm {
                algorithm: alg.into()
            }
        );
    }
    let bad = replace_once(
        &signed,
        DigestAlgorithm::Sha256.uri(),
        "http://www.w3.org/2001/04/xmldsig-more#md5",
    );
    assert!(matches!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::UnknownDigestAlgorithm { .. }
    ));
    // Parameters on SignatureMethod (HMACOutputLength truncation) are refused.
    let bad = replace_once(
        &signed,
        &format!("<ds:SignatureMethod Algorithm=\"{sm}\"></ds:SignatureMethod>"),
        &format!(
            "<ds:SignatureMethod Algorithm=\"{sm}\"><ds:HMACOutputLength>8</ds:HMACOutputLength></ds:SignatureMethod>"
        ),
    );
    assert!(matches!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::UnexpectedElement {
            parent: "SignatureMethod",
            ..
        }
    ));
}

#[test]
fn rule_sha1_needs_opt_in() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let bad = replace_once(
        &signed,
        DigestAlgorithm::Sha256.uri(),
        DigestAlgorithm::Sha1.uri(),
    );
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::Sha1NotAllowed
    );
    // With the opt-in the SHA-1 gate passes and the (now wrong) SignedInfo fails on its
    // own merits: the gate was the only rule the strict run tripped.
    let legacy = VerifyOptions::legacy();
    assert_eq!(
        rule(verify_assertion_with(&bad, &key, &legacy)),
        SignatureError::BadSignature
    );
    let bad = replace_once(
        &signed,
        SignatureAlgorithm::RsaSha256.uri(),
        SignatureAlgorithm::RsaSha1.uri(),
    );
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::Sha1NotAllowed
    );
}

#[test]
fn rule_wrong_key() {
    let (key, _) = rsa();
    let (other, _) = rsa();
    let signed = sign_assertion(&key, None);
    assert_eq!(
        rule(verify_assertion(&signed, &other)),
        SignatureError::BadSignature
    );
    // An EC key cannot even be tried against RSA-SHA256.
    let (ec, _) = keypair(SignatureAlgorithm::EcdsaSha256);
    assert_eq!(
        rule(verify_assertion(&signed, &ec)),
        SignatureError::NoKeyForAlgorithm {
            algorithm: SignatureAlgorithm::RsaSha256
        }
    );
}

#[test]
fn rule_key_in_keyinfo_is_not_trusted() {
    // Signed by an attacker who includes their own certificate: it is never used.
    let (attacker, attacker_cert) = rsa();
    let (trusted, _) = rsa();
    let signed = sign_assertion(&attacker, Some(&attacker_cert));
    assert!(signed.contains(&attacker_cert.to_base64()));
    assert_eq!(
        rule(verify_assertion(&signed, &trusted)),
        SignatureError::BadSignature
    );
    let doc = reader::parse(&signed, &Limits::default()).unwrap();
    let err = dsig::verify_by_id(&doc, "_assert1", &[], &VerifyOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        Error::Signature(SignatureError::NoKeyForAlgorithm { .. })
    ));
}

#[test]
fn rule_values_are_text_only() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    for (element, comment) in [
        ("DigestValue", "<!---->"),
        ("SignatureValue", "<!-- x -->"),
        ("DigestValue", "<x/>"),
    ] {
        let open = format!("<ds:{element}>");
        let bad = replace_once(&signed, &open, &format!("{open}{comment}"));
        assert_eq!(
            rule(verify_assertion(&bad, &key)),
            SignatureError::NonTextContent { element },
            "{comment}"
        );
    }
    let bad = replace_once(&signed, "<ds:DigestValue>", "<ds:DigestValue>*");
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::InvalidBase64 {
            element: "DigestValue"
        }
    );
}

#[test]
fn rule_signed_info_shape() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let si_start = signed.find("<ds:SignedInfo>").unwrap();
    let si_end = signed.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
    let si = signed[si_start..si_end].to_owned();
    // A decoy SignedInfo wrapped deeper inside the Signature.
    let wrapped = replace_once(
        &signed,
        "</ds:SignatureValue>",
        &format!("</ds:SignatureValue><ds:KeyInfo><x>{si}</x></ds:KeyInfo>"),
    );
    assert_eq!(
        rule(verify_assertion(&wrapped, &key)),
        SignatureError::SignedInfoCount { found: 2 }
    );
    let none = signed.replacen(&si, "", 1);
    assert_eq!(
        rule(verify_assertion(&none, &key)),
        SignatureError::SignedInfoCount { found: 0 }
    );
    // SignatureValue before SignedInfo.
    let sv_start = signed.find("<ds:SignatureValue>").unwrap();
    let sv_end = signed.find("</ds:SignatureValue>").unwrap() + "</ds:SignatureValue>".len();
    let sv = signed[sv_start..sv_end].to_owned();
    let swapped = signed
        .replacen(&sv, "", 1)
        .replacen(&si, &format!("{sv}{si}"), 1);
    assert!(matches!(
        rule(verify_assertion(&swapped, &key)),
        SignatureError::UnexpectedElement {
            parent: "Signature",
            ..
        }
    ));
}

#[test]
fn rule_no_object_in_enveloped_signature() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let bad = replace_once(
        &signed,
        "</ds:SignatureValue>",
        "</ds:SignatureValue><ds:Object><saml:Assertion ID=\"_evil\"><saml:NameID>admin</saml:NameID></saml:Assertion></ds:Object>",
    );
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::ObjectNotAllowed
    );
}

#[test]
fn rule_keyinfo_holds_only_dsig_elements() {
    let (key, cert) = rsa();
    let signed = sign_assertion(&key, Some(&cert));
    // Unsigned SAML content smuggled into KeyInfo, inside the verified element.
    let bad = replace_once(
        &signed,
        "<ds:X509Data>",
        "<ds:X509Data><saml:NameID>admin@example.org</saml:NameID>",
    );
    assert_eq!(
        rule(verify_assertion(&bad, &key)),
        SignatureError::UnexpectedElement {
            parent: "KeyInfo",
            found: "{urn:oasis:names:tc:SAML:2.0:assertion}NameID".into()
        }
    );
    // XML-DSig elements of any kind are fine (KeyInfo is ignored anyway).
    let ok = replace_once(
        &signed,
        "<ds:X509Data>",
        "<ds:KeyName>idp</ds:KeyName><ds:X509Data>",
    );
    verify_assertion(&ok, &key).unwrap();
}

#[test]
fn foreign_nodes_and_unsigned_documents() {
    let (key, _) = rsa();
    let signed = sign_assertion(&key, None);
    let doc = reader::parse(&signed, &Limits::default()).unwrap();
    let other = reader::parse(&signed, &Limits::default()).unwrap();
    let keys = [key.verifying_key().clone()];
    let foreign = other.root_element();
    assert_eq!(
        dsig::verify_element(&doc, foreign, &keys, &VerifyOptions::default()).unwrap_err(),
        Error::Signature(SignatureError::ForeignNode)
    );
    let plain = reader::parse(RESPONSE, &Limits::default()).unwrap();
    assert_eq!(
        dsig::verify_document(&plain, &keys, &VerifyOptions::default()).unwrap_err(),
        Error::Signature(SignatureError::NoSignature)
    );
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any mutation of a signed document is either still valid (the mutation hit
        /// only whitespace or comments) or refused with an error; never a panic.
        #[test]
        fn mutated_signed_documents_never_panic(pos in 0usize..4000, byte in any::<u8>()) {
            let (key, cert) = KEY.with(|k| k.clone());
            let signed = dsig::sign(RESPONSE, "_assert1", &key, Some(&cert), &SignOptions::default()).unwrap();
            let keys = [key.verifying_key().clone()];
            let original = {
                let doc = reader::parse(&signed, &Limits::default()).unwrap();
                let v = dsig::verify_by_id(&doc, "_assert1", &keys, &VerifyOptions::default()).unwrap();
                v.signed_bytes().to_vec()
            };
            let mut bytes = signed.into_bytes();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(doc) = reader::parse_bytes(&bytes, &Limits::default()) {
                // A mutation may be accepted only if it left the signed content as it
                // was (whitespace outside the Assertion, KeyInfo, a comment...).
                if let Ok(all) = dsig::verify_document(&doc, &keys, &VerifyOptions::default()) {
                    for v in all {
                        prop_assert_eq!(v.signed_bytes(), original.as_slice());
                        prop_assert_eq!(v.id(), Some("_assert1"));
                    }
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = dsig::sign(text, "_assert1", &key, None, &SignOptions::default());
            }
        }

        #[test]
        fn arbitrary_text_never_panics_signing(text in ".{0,200}", id in "[a-z_]{1,8}") {
            let (key, _) = KEY.with(|k| k.clone());
            let _ = dsig::sign(&text, &id, &key, None, &SignOptions::default());
        }
    }

    thread_local! {
        static KEY: (std::rc::Rc<SigningKey>, Certificate) = {
            let (k, c) = keypair(SignatureAlgorithm::EcdsaSha256);
            (std::rc::Rc::new(k), c)
        };
    }
}
