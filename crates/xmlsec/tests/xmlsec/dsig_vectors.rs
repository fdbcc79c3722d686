//! Every signed vector of `tests/data/xmldsig/README.md` (Positive and Negative tables)
//! and the signed metadata, with the verdict xmlsec1 gives and, for refusals, the rule
//! our verifier names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use latchkey_xmlsec::Error;
use latchkey_xmlsec::crypto::{Certificate, VerifyingKey};
use latchkey_xmlsec::dsig::{self, SignatureError, VerifyOptions};
use latchkey_xmlsec::reader::{self, Limits};

fn data(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key(rel: &str) -> VerifyingKey {
    let bytes = data(rel);
    if rel.ends_with(".der") || rel.ends_with(".crt") {
        Certificate::from_der(&bytes)
            .unwrap()
            .verifying_key()
            .clone()
    } else {
        VerifyingKey::from_pem(std::str::from_utf8(&bytes).unwrap()).unwrap()
    }
}

/// How the vector is verified.
#[derive(Clone, Copy)]
enum Mode {
    /// `verify_document`: every Signature's parent.
    Document,
    /// `verify_enveloping`: the XMLDSig 1.1 interop form.
    Enveloping,
}

/// `(local name, ID)` of each verified element, in document order.
type Elements = &'static [(&'static str, Option<&'static str>)];

struct Positive {
    file: &'static str,
    key: &'static str,
    mode: Mode,
    verified: Elements,
}

const POSITIVE: &[Positive] = &[
    Positive {
        file: "xmldsig/xml-crypto/signature_with_inclusivenamespaces.xml",
        key: "xmldsig/xml-crypto/signature_with_inclusivenamespaces.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("id8132302868541019755414121"))],
    },
    Positive {
        file: "xmldsig/xml-crypto/signature_with_inclusivenamespaces_lines.xml",
        key: "xmldsig/xml-crypto/signature_with_inclusivenamespaces.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("id8132302868541019755414121"))],
    },
    Positive {
        file: "xmldsig/xml-crypto/signature_with_inclusivenamespaces_lines_windows.xml",
        key: "xmldsig/xml-crypto/signature_with_inclusivenamespaces.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("id8132302868541019755414121"))],
    },
    Positive {
        file: "xmldsig/xml-crypto/valid_saml.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        verified: &[
            ("Response", Some("pfx94e4a319-b6f7-4a40-25d1-01fcb642e4c5")),
            ("Assertion", Some("pfx66496e6c-3c29-230d-6d47-b245434b872d")),
        ],
    },
    Positive {
        file: "xmldsig/xml-crypto/saml_external_ns.xml",
        key: "xmldsig/xml-crypto/saml_external_ns.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("pfx4790de7a-ba67-cdfe-122c-e557ad3b3743"))],
    },
    Positive {
        file: "xmldsig/signxml/SAML_assertion1.xml",
        key: "xmldsig/signxml/test.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("11111"))],
    },
    Positive {
        file: "xmldsig/signxml/SAML_assertion_sha256.xml",
        key: "xmldsig/signxml/test.pem",
        mode: Mode::Document,
        verified: &[("Assertion", Some("11111"))],
    },
    Positive {
        file: "xmldsig/signxml/windows_store_signature.xml",
        key: "xmldsig/signxml/windows_store_certificate.pem",
        mode: Mode::Document,
        verified: &[("Receipt", None)],
    },
    Positive {
        file: "xmldsig/samael/response_signed_by_idp_2.xml",
        key: "xmldsig/samael/public.der",
        mode: Mode::Document,
        verified: &[("Response", Some("pfxf63324d7-7ba2-b371-90d6-171637d97253"))],
    },
    Positive {
        file: "xmldsig/samael/response_signed_by_idp_ecdsa.xml",
        key: "xmldsig/samael/ec_cert.der",
        mode: Mode::Document,
        verified: &[("Response", Some("pfxf63324d7-7ba2-b371-90d6-171637d97253"))],
    },
    Positive {
        file: "xmldsig/samael/multi_saml_response_signed_2.xml",
        key: "xmldsig/samael/public.der",
        mode: Mode::Document,
        verified: &[
            (
                "Response",
                Some("_f2f02ca12d7292f8a4e03b7b99d71a45f8896c2677"),
            ),
            (
                "Assertion",
                Some("_a8d644a6c83fc56337b0330d8b0ff684978a5fe56c"),
            ),
        ],
    },
    Positive {
        file: "xmldsig/xmldsig11-interop-2012/signature-enveloping-p256_sha256.xml",
        key: "xmldsig/xmldsig11-interop-2012/p256-key.crt",
        mode: Mode::Enveloping,
        verified: &[("Object", Some("DSig.Object_1"))],
    },
    Positive {
        file: "xmldsig/xmldsig11-interop-2012/signature-enveloping-p384_sha384.xml",
        key: "xmldsig/xmldsig11-interop-2012/p384-key.crt",
        mode: Mode::Enveloping,
        verified: &[("Object", Some("DSig.Object_1"))],
    },
    Positive {
        file: "xmldsig/xmldsig11-interop-2012/signature-enveloping-p521_sha512.xml",
        key: "xmldsig/xmldsig11-interop-2012/p521-key.crt",
        mode: Mode::Enveloping,
        verified: &[("Object", Some("DSig.Object_1"))],
    },
    Positive {
        file: "metadata/edugain_sp_signed.xml",
        key: "metadata/edugain_sp_signed.pem",
        mode: Mode::Document,
        verified: &[("EntityDescriptor", None)],
    },
    Positive {
        file: "metadata/wsfederation_metadata.xml",
        key: "metadata/wsfederation_metadata.pem",
        mode: Mode::Document,
        verified: &[(
            "EntityDescriptor",
            Some("_8d1dcc18-2f1e-4a93-850b-e3a3081b3ca1"),
        )],
    },
];

fn run(
    file: &str,
    keys: &[VerifyingKey],
    mode: Mode,
    options: &VerifyOptions,
) -> Result<Vec<(String, Option<String>)>, Error> {
    let bytes = data(file);
    let doc = reader::parse_bytes(&bytes, &Limits::metadata())?;
    let verified = match mode {
        Mode::Document => dsig::verify_document(&doc, keys, options)?,
        Mode::Enveloping => vec![dsig::verify_enveloping(&doc, keys, options)?],
    };
    Ok(verified
        .iter()
        .map(|v| {
            assert_eq!(
                v.key_index(),
                keys.len() - 1,
                "the matching key is reported"
            );
            (
                v.element().tag_name().name().to_owned(),
                v.id().map(str::to_owned),
            )
        })
        .collect())
}

#[test]
fn positive_vectors_verify() {
    for case in POSITIVE {
        // Every other vector's key first: the verifier must try them all and report
        // which trusted key matched.
        let mut keys: Vec<VerifyingKey> = Vec::new();
        for other in POSITIVE.iter().map(|c| c.key) {
            let k = key(other);
            if other != case.key && !keys.contains(&k) && k != key(case.key) {
                keys.push(k);
            }
        }
        keys.push(key(case.key));
        let got = run(case.file, &keys, case.mode, &VerifyOptions::legacy())
            .unwrap_or_else(|e| panic!("{}: expected OK, got {e:?}", case.file));
        let want: Vec<_> = case
            .verified
            .iter()
            .map(|(n, id)| ((*n).to_owned(), id.map(str::to_owned)))
            .collect();
        assert_eq!(got, want, "{}", case.file);
    }
}

/// The legacy vectors (SHA-1 or 1024-bit RSA) are refused without the opt-ins.
#[test]
fn legacy_vectors_need_opt_in() {
    for case in POSITIVE {
        let keys = [key(case.key)];
        let strict = run(case.file, &keys, case.mode, &VerifyOptions::default());
        let legacy_alg = std::str::from_utf8(&data(case.file))
            .unwrap()
            .contains("#sha1\"")
            || std::str::from_utf8(&data(case.file))
                .unwrap()
                .contains("#rsa-sha1\"");
        let short_key =
            matches!(keys[0].kind(), latchkey_xmlsec::crypto::KeyKind::Rsa { bits } if bits < 2048);
        match strict {
            Ok(_) => assert!(
                !legacy_alg && !short_key,
                "{} verified without opt-in",
                case.file
            ),
            Err(Error::Signature(SignatureError::Sha1NotAllowed)) => {
                assert!(legacy_alg, "{}", case.file)
            }
            Err(Error::Signature(SignatureError::KeyRefused(_))) => {
                assert!(short_key, "{}", case.file)
            }
            Err(e) => panic!("{}: unexpected {e:?}", case.file),
        }
    }
}

struct Negative {
    file: &'static str,
    key: &'static str,
    mode: Mode,
    expect: fn(&SignatureError) -> bool,
}

const NEGATIVE: &[Negative] = &[
    Negative {
        file: "xmldsig/xml-crypto/valid_saml_withcomments.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        expect: |e| *e == SignatureError::BadSignature,
    },
    Negative {
        file: "xmldsig/xml-crypto/valid_saml_with_digest_comment.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        expect: |e| {
            *e == SignatureError::NonTextContent {
                element: "DigestValue",
            }
        },
    },
    Negative {
        file: "xmldsig/xml-crypto/valid_saml_signature_wrapping.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        expect: |e| matches!(e, SignatureError::DuplicateId { count: 2, .. }),
    },
    Negative {
        file: "xmldsig/xml-crypto/id_with_quotes.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        expect: |e| matches!(e, SignatureError::UnsupportedUri { uri } if uri == "t't"),
    },
    Negative {
        file: "xmldsig/xml-crypto/invalid_saml_no_signed_info.xml",
        key: "xmldsig/xml-crypto/feide_public.pem",
        mode: Mode::Document,
        expect: |e| *e == SignatureError::SignedInfoCount { found: 0 },
    },
    Negative {
        file: "xmldsig/xml-crypto/saml_multiple_signed_info_nodes.xml",
        key: "xmldsig/xml-crypto/saml_external_ns.pem",
        mode: Mode::Document,
        expect: |e| *e == SignatureError::SignedInfoCount { found: 2 },
    },
    Negative {
        file: "xmldsig/xml-crypto/saml_wrapped_signed_info_node.xml",
        key: "xmldsig/xml-crypto/saml_external_ns.pem",
        mode: Mode::Document,
        expect: |e| *e == SignatureError::SignedInfoCount { found: 2 },
    },
    Negative {
        file: "xmldsig/samael/xpointer_attack_signed.xml",
        key: "xmldsig/samael/public.der",
        mode: Mode::Document,
        expect: |e| matches!(e, SignatureError::UnsupportedUri { uri } if uri == "#element(/1/3)"),
    },
    Negative {
        file: "xmldsig/signxml/SAML_assertion1.xml",
        key: "xmldsig/signxml/windows_store_certificate.pem",
        mode: Mode::Document,
        expect: |e| *e == SignatureError::BadSignature,
    },
    Negative {
        // A P-384 key cannot check ECDSA-SHA256 at all: the wrong key is never tried.
        file: "xmldsig/xmldsig11-interop-2012/signature-enveloping-p256_sha256.xml",
        key: "xmldsig/xmldsig11-interop-2012/p384-key.crt",
        mode: Mode::Enveloping,
        expect: |e| matches!(e, SignatureError::NoKeyForAlgorithm { .. }),
    },
    Negative {
        // The Signature inside the Assertion references the whole Response.
        file: "xmldsig/samael/object_attack_response.xml",
        key: "xmldsig/samael/public.der",
        mode: Mode::Document,
        expect: |e| {
            matches!(e, SignatureError::ReferenceNotParent { uri, expected }
                if uri == "#_a890a910011c26be5cf0aa558ad80fd0b7c10c9855"
                && expected.as_deref() == Some("_ec87dd840868b48045a05b8a1778ffd3ed1d473f2f"))
        },
    },
];

#[test]
fn negative_vectors_are_refused_by_the_named_rule() {
    for case in NEGATIVE {
        let keys = [key(case.key)];
        match run(case.file, &keys, case.mode, &VerifyOptions::legacy()) {
            Ok(v) => panic!("{}: must be refused, verified {v:?}", case.file),
            Err(Error::Signature(e)) => {
                assert!((case.expect)(&e), "{}: wrong rule {e:?}", case.file)
            }
            Err(e) => panic!("{}: not a signature error: {e:?}", case.file),
        }
    }
}

/// xmlsec1 says OK: the inner Assertion is validly signed. What matters is that the
/// handle points at the Assertion, so the attacker's outer Response is never read.
#[test]
fn ancestor_attack_verifies_only_the_inner_assertion() {
    let bytes = data("xmldsig/samael/ancestor_attack_signed.xml");
    let doc = reader::parse_bytes(&bytes, &Limits::default()).unwrap();
    let keys = [key("xmldsig/samael/public.der")];
    let opts = VerifyOptions::legacy();
    let all = dsig::verify_document(&doc, &keys, &opts).unwrap();
    assert_eq!(all.len(), 1);
    let v = &all[0];
    assert_eq!(v.element().tag_name().name(), "Assertion");
    assert_ne!(v.element(), doc.root_element());
    assert_eq!(doc.root_element().tag_name().name(), "Response");
    assert_eq!(v.id(), Some("_ec87dd840868b48045a05b8a1778ffd3ed1d473f2f"));
    assert_eq!(v.element().attribute("ID"), v.id());
    // Neither Response around it (the attacker's outer one, nor the unsigned one it
    // wraps) carries a signature of its own.
    for response_id in [
        "_malicious_outer",
        "_a890a910011c26be5cf0aa558ad80fd0b7c10c9855",
    ] {
        assert_eq!(
            dsig::verify_by_id(&doc, response_id, &keys, &opts).unwrap_err(),
            Error::Signature(SignatureError::SignatureCount { found: 0 })
        );
    }
    assert_eq!(
        dsig::verify_document_element(&doc, &keys, &opts).unwrap_err(),
        Error::Signature(SignatureError::SignatureCount { found: 0 })
    );
}

/// For the Object attack the Assertion's signature is refused whichever way it is asked
/// for, and the Response (which the Reference names) has no signature child at all.
#[test]
fn object_attack_refused_from_every_entry_point() {
    let bytes = data("xmldsig/samael/object_attack_response.xml");
    let doc = reader::parse_bytes(&bytes, &Limits::default()).unwrap();
    let keys = [key("xmldsig/samael/public.der")];
    let opts = VerifyOptions::legacy();
    let err = dsig::verify_by_id(
        &doc,
        "_ec87dd840868b48045a05b8a1778ffd3ed1d473f2f",
        &keys,
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Signature(SignatureError::ReferenceNotParent { .. })
        ),
        "{err:?}"
    );
    let err = dsig::verify_by_id(
        &doc,
        "_a890a910011c26be5cf0aa558ad80fd0b7c10c9855",
        &keys,
        &opts,
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::Signature(SignatureError::SignatureCount { found: 0 })
    );
}

/// The signed bytes the handle exposes are exactly the bytes xmlsec1 digested
/// (`c14n/derived/*.reference.c14n` in the shared data, reproduced here by digest).
#[test]
fn signed_bytes_hash_to_the_digest_value() {
    let bytes = data("xmldsig/signxml/SAML_assertion_sha256.xml");
    let doc = reader::parse_bytes(&bytes, &Limits::default()).unwrap();
    let keys = [key("xmldsig/signxml/test.pem")];
    let v = dsig::verify_by_id(&doc, "11111", &keys, &VerifyOptions::legacy()).unwrap();
    let reparsed = reader::parse_bytes(v.signed_bytes(), &Limits::default()).unwrap();
    assert_eq!(reparsed.root_element().tag_name().name(), "Assertion");
    assert!(
        !std::str::from_utf8(v.signed_bytes())
            .unwrap()
            .contains("Signature")
    );
}
