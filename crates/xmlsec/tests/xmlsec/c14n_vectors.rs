//! Conformance vectors for canonicalization, byte for byte: the W3C exc-c14n examples,
//! Merlin Hughes' exc-c14n interop vector (with its SHA-1 digests), and the canonical
//! bytes xmlsec1 produced for real signed SAML documents and metadata.
//!
//! Every row either runs or names why it is skipped; none is skipped today. Data and
//! provenance: `tests/data/c14n/README.md`.

// Helpers outside `#[test]` functions: a failed lookup there is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use base64::Engine as _;
use latchkey_xmlsec::c14n::{self, Algorithm, Options};
use latchkey_xmlsec::reader::{self, Limits};
use latchkey_xmlsec::tree::Node;

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(data(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha(alg: &'static digest::Algorithm, bytes: &[u8]) -> String {
    b64(digest::digest(alg, bytes).as_ref())
}

/// Shows where two byte strings first differ, with some context, as text.
fn diff(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let from = at.saturating_sub(80);
    format!(
        "lengths {} vs {}, first difference at byte {at}\n got: {:?}\nwant: {:?}",
        got.len(),
        want.len(),
        String::from_utf8_lossy(&got[from..(at + 80).min(got.len())]),
        String::from_utf8_lossy(&want[from..(at + 80).min(want.len())]),
    )
}

fn assert_bytes(name: &str, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "{name}: canonical bytes differ: {}",
        diff(got, want)
    );
}

// ---------------------------------------------------------------------------------------
// W3C Exclusive XML Canonicalization, sections 2.2 and 2.4.

struct W3cCase {
    input: &'static str,
    algorithm: Algorithm,
    expected: &'static str,
    skip: Option<&'static str>,
}

const EXC_NO_COMMENTS: Algorithm = Algorithm::Exclusive {
    with_comments: false,
};
const EXC_COMMENTS: Algorithm = Algorithm::Exclusive {
    with_comments: true,
};
const INC_COMMENTS: Algorithm = Algorithm::Inclusive {
    with_comments: true,
};

const W3C: &[W3cCase] = &[
    W3cCase {
        input: "example2_2_1.xml",
        algorithm: EXC_NO_COMMENTS,
        expected: "example2_2_c14nized_exclusive.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_2_1.xml",
        algorithm: EXC_COMMENTS,
        expected: "example2_2_c14nized_exclusive.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_2_2.xml",
        algorithm: EXC_NO_COMMENTS,
        expected: "example2_2_c14nized_exclusive.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_2_2.xml",
        algorithm: EXC_COMMENTS,
        expected: "example2_2_c14nized_exclusive.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_4.xml",
        algorithm: EXC_NO_COMMENTS,
        expected: "example2_4_c14nized.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_2_1.xml",
        algorithm: INC_COMMENTS,
        expected: "example2_2_1_c14nized.xml",
        skip: None,
    },
    W3cCase {
        input: "example2_2_2.xml",
        algorithm: INC_COMMENTS,
        expected: "example2_2_2_c14nized.xml",
        skip: None,
    },
];

#[test]
fn w3c_exc_c14n_examples() {
    let mut ran = 0;
    for case in W3C {
        let label = format!("{} {:?}", case.input, case.algorithm);
        if let Some(reason) = case.skip {
            eprintln!("SKIP {label}: {reason}");
            continue;
        }
        let bytes = read(&format!("c14n/w3c-exc-c14n/{}", case.input));
        let doc = reader::parse_bytes(&bytes, &Limits::default()).unwrap();
        let apex = doc
            .tree()
            .descendants()
            .find(|n| n.has_tag_name(("http://example.net", "elem2")))
            .unwrap();
        let got = c14n::canonicalize_to_vec(apex, case.algorithm, &Options::default(), None)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        let want = read(&format!("c14n/w3c-exc-c14n/{}", case.expected));
        assert_bytes(&label, &got, &want);
        ran += 1;
    }
    assert_eq!(ran, W3C.len(), "every W3C vector must run");
}

// ---------------------------------------------------------------------------------------
// Merlin's exc-c14n interop vector. Its references use `#xpointer(id(...))`, the one
// kind of same-document reference that keeps comments under #WithComments.

struct MerlinCase {
    expected: &'static str,
    /// Which `dsig:Reference` of the document this row is (None: the SignedInfo row).
    reference: Option<usize>,
    algorithm: Algorithm,
    prefixes: &'static [&'static str],
    sha1: Option<&'static str>,
    skip: Option<&'static str>,
}

const MERLIN: &[MerlinCase] = &[
    MerlinCase {
        expected: "c14n-0.txt",
        reference: Some(0),
        algorithm: EXC_NO_COMMENTS,
        prefixes: &[],
        sha1: Some("7yOTjUu+9oEhShgyIIXDLjQ08aY="),
        skip: None,
    },
    MerlinCase {
        expected: "c14n-1.txt",
        reference: Some(1),
        algorithm: EXC_NO_COMMENTS,
        prefixes: &["bar", "#default"],
        sha1: Some("09xMy0RTQM1Q91demYe/0F6AGXo="),
        skip: None,
    },
    MerlinCase {
        expected: "c14n-2.txt",
        reference: Some(2),
        algorithm: EXC_COMMENTS,
        prefixes: &[],
        sha1: Some("ZQH+SkCN8c5y0feAr+aRTZDwyvY="),
        skip: None,
    },
    MerlinCase {
        expected: "c14n-3.txt",
        reference: Some(3),
        algorithm: EXC_COMMENTS,
        prefixes: &["bar", "#default"],
        sha1: Some("a1cTqBgbqpUt6bMJN4C6zFtnoyo="),
        skip: None,
    },
    MerlinCase {
        expected: "c14n-4.txt",
        reference: None,
        algorithm: EXC_NO_COMMENTS,
        prefixes: &[],
        sha1: None,
        skip: None,
    },
];

#[test]
fn merlin_exc_c14n_one() {
    let bytes = read("c14n/merlin-exc-c14n-one/exc-signature.xml");
    let doc = reader::parse_bytes(&bytes, &Limits::default()).unwrap();
    let object = doc
        .tree()
        .descendants()
        .find(|n| n.has_tag_name((DSIG, "Object")) && n.attribute("Id") == Some("to-be-signed"))
        .unwrap();
    let signed_info = child(doc.root_element(), DSIG, "Signature")
        .and_then(|s| child(s, DSIG, "SignedInfo"))
        .unwrap();
    let references: Vec<_> = children(signed_info, DSIG, "Reference").collect();
    assert_eq!(references.len(), 4);

    let mut ran = 0;
    for case in MERLIN {
        if let Some(reason) = case.skip {
            eprintln!("SKIP merlin {}: {reason}", case.expected);
            continue;
        }
        let apex = match case.reference {
            Some(i) => {
                // The table must agree with what the document itself says.
                let reference = references[i];
                let (algorithm, prefixes) = reference_c14n(reference);
                assert_eq!(Some(algorithm), Some(case.algorithm), "{}", case.expected);
                assert_eq!(prefixes, case.prefixes, "{}", case.expected);
                assert_eq!(Some(digest_value(reference).as_str()), case.sha1);
                object
            }
            None => signed_info,
        };
        let options = Options {
            inclusive_prefixes: case.prefixes,
        };
        let got = c14n::canonicalize_to_vec(apex, case.algorithm, &options, None).unwrap();
        let want = read(&format!("c14n/merlin-exc-c14n-one/{}", case.expected));
        assert_bytes(case.expected, &got, &want);
        if let Some(expected_sha1) = case.sha1 {
            assert_eq!(
                sha(&digest::SHA1_FOR_LEGACY_USE_ONLY, &got),
                expected_sha1,
                "{}",
                case.expected
            );
        }
        ran += 1;
    }
    assert_eq!(ran, MERLIN.len(), "every Merlin vector must run");
}

// ---------------------------------------------------------------------------------------
// Canonical bytes xmlsec1 fed to the digest and the signature for real signed documents.
// The transforms are read from each document's own Reference, the way a verifier would.

struct DerivedCase {
    name: &'static str,
    source: &'static str,
    skip: Option<&'static str>,
}

const DERIVED: &[DerivedCase] = &[
    DerivedCase {
        name: "okta-assertion-prefixlist",
        source: "xmldsig/xml-crypto/signature_with_inclusivenamespaces.xml",
        skip: None,
    },
    DerivedCase {
        name: "feide-response",
        source: "xmldsig/xml-crypto/valid_saml.xml",
        skip: None,
    },
    DerivedCase {
        name: "saml-external-ns",
        source: "xmldsig/xml-crypto/saml_external_ns.xml",
        skip: None,
    },
    DerivedCase {
        name: "pyxmlsecurity-assertion-sha256",
        source: "xmldsig/signxml/SAML_assertion_sha256.xml",
        skip: None,
    },
    DerivedCase {
        name: "samael-response-ecdsa",
        source: "xmldsig/samael/response_signed_by_idp_ecdsa.xml",
        skip: None,
    },
    DerivedCase {
        name: "windows-store-receipt",
        source: "xmldsig/signxml/windows_store_signature.xml",
        skip: None,
    },
    DerivedCase {
        name: "azure-wsfed-metadata",
        source: "metadata/wsfederation_metadata.xml",
        skip: None,
    },
    DerivedCase {
        name: "edugain-sp-metadata",
        source: "metadata/edugain_sp_signed.xml",
        skip: None,
    },
];

#[test]
fn derived_from_signed_documents() {
    let mut ran = 0;
    for case in DERIVED {
        if let Some(reason) = case.skip {
            eprintln!("SKIP {}: {reason}", case.name);
            continue;
        }
        let bytes = read(case.source);
        let doc = reader::parse_bytes(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // xmlsec1 verifies the first Signature in document order.
        let signature = doc
            .tree()
            .descendants()
            .find(|n| n.has_tag_name((DSIG, "Signature")))
            .unwrap();
        let signed_info = child(signature, DSIG, "SignedInfo").unwrap();
        let reference = child(signed_info, DSIG, "Reference").unwrap();

        // The reference: the referenced node, the enveloped signature cut out, then the
        // reference's own c14n (inclusive C14N 1.0 when it names none).
        let uri = reference.attribute("URI").unwrap();
        let apex = if uri.is_empty() {
            doc.tree().root()
        } else {
            let id = uri.strip_prefix('#').unwrap();
            doc.tree()
                .descendants()
                .find(|n| {
                    ["ID", "Id", "AssertionID"]
                        .iter()
                        .any(|a| n.attribute(*a) == Some(id))
                })
                .unwrap()
        };
        let enveloped = transforms(reference).any(|t| t.attribute("Algorithm") == Some(ENVELOPED));
        assert!(
            enveloped,
            "{}: every derived vector is enveloped",
            case.name
        );
        let (mut algorithm, prefixes) = reference_c14n(reference);
        // Same-document references without an XPointer drop comments (XMLDSig 4.3.3.3).
        algorithm = without_comments(algorithm);
        let got = c14n::canonicalize_to_vec(
            apex,
            algorithm,
            &Options {
                inclusive_prefixes: &prefixes,
            },
            Some(signature),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let want = read(&format!("c14n/derived/{}.reference.c14n", case.name));
        assert_bytes(&format!("{} reference", case.name), &got, &want);
        let method = child(reference, DSIG, "DigestMethod")
            .and_then(|m| m.attribute("Algorithm"))
            .unwrap();
        let alg = match method {
            "http://www.w3.org/2000/09/xmldsig#sha1" => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            "http://www.w3.org/2001/04/xmlenc#sha256" => &digest::SHA256,
            other => panic!("{}: digest {other}", case.name),
        };
        assert_eq!(
            sha(alg, &got),
            digest_value(reference),
            "{} digest",
            case.name
        );

        // The SignedInfo, with the document's CanonicalizationMethod.
        let method = child(signed_info, DSIG, "CanonicalizationMethod").unwrap();
        let algorithm = Algorithm::from_uri(method.attribute("Algorithm").unwrap()).unwrap();
        let prefixes = prefix_list(method);
        let got = c14n::canonicalize_to_vec(
            signed_info,
            algorithm,
            &Options {
                inclusive_prefixes: &prefixes,
            },
            None,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let want = read(&format!("c14n/derived/{}.signedinfo.c14n", case.name));
        assert_bytes(&format!("{} signedinfo", case.name), &got, &want);
        ran += 1;
    }
    assert_eq!(ran, DERIVED.len(), "every derived vector must run");
}

fn without_comments(algorithm: Algorithm) -> Algorithm {
    match algorithm {
        Algorithm::Exclusive { .. } => Algorithm::Exclusive {
            with_comments: false,
        },
        Algorithm::Inclusive { .. } => Algorithm::Inclusive {
            with_comments: false,
        },
    }
}

// ---------------------------------------------------------------------------------------
// Reading the test documents' own signature elements.

fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name((ns, name)))
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &'static str, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, ns, name).next()
}

fn transforms<'a, 'i>(reference: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> {
    child(reference, DSIG, "Transforms")
        .into_iter()
        .flat_map(|t| children(t, DSIG, "Transform"))
}

/// The c14n algorithm among a reference's transforms, and its PrefixList.
fn reference_c14n<'a>(reference: Node<'a, '_>) -> (Algorithm, Vec<&'a str>) {
    let mut found = None;
    for t in transforms(reference) {
        if let Some(alg) = t.attribute("Algorithm").and_then(Algorithm::from_uri) {
            assert!(found.is_none(), "one c14n transform per reference");
            found = Some((alg, prefix_list(t)));
        }
    }
    found.unwrap_or((
        Algorithm::Inclusive {
            with_comments: false,
        },
        Vec::new(),
    ))
}

fn prefix_list<'a>(method: Node<'a, '_>) -> Vec<&'a str> {
    child(method, EXC, "InclusiveNamespaces")
        .and_then(|n| n.attribute("PrefixList"))
        .map(|l| l.split_ascii_whitespace().collect())
        .unwrap_or_default()
}

fn digest_value(reference: Node<'_, '_>) -> String {
    child(reference, DSIG, "DigestValue")
        .and_then(|d| d.text())
        .unwrap()
        .split_ascii_whitespace()
        .collect()
}
