//! Bodies of the fuzz targets in `fuzz/`, kept here so that `cargo test` can replay the
//! checked-in corpora through exactly the code the fuzzers ran.
//!
//! Each function must return normally for every input; a panic here is a finding.
#![doc(hidden)]

use std::sync::OnceLock;

use crate::c14n::{self, Algorithm, Options};
use crate::crypto::{Certificate, VerifyingKey};
use crate::dsig::{self, VerifyOptions};
use crate::reader::{self, Limits};

/// Elements canonicalized per input, so a large input cannot make one run quadratic.
const MAX_APEXES: usize = 8;

/// Reads arbitrary bytes through the hardened reader.
pub fn reader(data: &[u8]) {
    let _ = reader::parse_bytes(data, &small_limits());
}

/// Canonicalizes the document and a few of its elements with every algorithm, and checks
/// that canonical output is a fixed point: canonicalizing it again changes nothing.
pub fn c14n(data: &[u8]) {
    let Ok(doc) = reader::parse_bytes(data, &small_limits()) else {
        return;
    };
    let prefixes: Vec<&str> = doc
        .root_element()
        .namespaces()
        .filter_map(|ns| ns.name())
        .take(2)
        .chain(std::iter::once("#default"))
        .collect();
    let algorithms = [
        Algorithm::Exclusive {
            with_comments: false,
        },
        Algorithm::Exclusive {
            with_comments: true,
        },
        Algorithm::Inclusive {
            with_comments: false,
        },
        Algorithm::Inclusive {
            with_comments: true,
        },
    ];
    let apexes = std::iter::once(doc.tree().root())
        .chain(doc.tree().descendants().filter(|n| n.is_element()))
        .take(MAX_APEXES);
    for apex in apexes {
        let exclude = apex.first_element_child();
        for algorithm in algorithms {
            for list in [&[][..], &prefixes[..]] {
                let options = Options {
                    inclusive_prefixes: list,
                };
                let mut out = Vec::new();
                let _ = c14n::canonicalize(apex, algorithm, &options, exclude, &mut out);
            }
        }
    }
    let whole = doc.tree().root();
    let mut first = Vec::new();
    if c14n::canonicalize(
        whole,
        Algorithm::EXCLUSIVE,
        &Options::default(),
        None,
        &mut first,
    )
    .is_ok()
    {
        let Ok(again) = reader::parse_bytes(&first, &small_limits()) else {
            panic_finding("canonical output does not parse again");
            return;
        };
        let mut second = Vec::new();
        let ok = c14n::canonicalize(
            again.tree().root(),
            Algorithm::EXCLUSIVE,
            &Options::default(),
            None,
            &mut second,
        );
        if ok.is_err() || first != second {
            panic_finding("canonical output is not a fixed point");
        }
    }
}

/// Runs every verification entry point against a fixed set of trusted keys: the
/// certificates of the signed test vectors, so that seeds reach the digest and signature
/// checks and mutations explore every refusal on the way there.
pub fn verify(data: &[u8]) {
    let Ok(doc) = reader::parse_bytes(data, &small_limits()) else {
        return;
    };
    let keys = trusted_keys();
    for options in [VerifyOptions::default(), VerifyOptions::legacy()] {
        if let Ok(all) = dsig::verify_document(&doc, keys, &options) {
            for verified in all {
                // The handle must point into this document, at the signature's parent.
                let parent = verified.signature_element().parent_element();
                if parent != Some(verified.element()) {
                    panic_finding("Verified element is not the signature's parent");
                }
            }
        }
        let _ = dsig::verify_document_element(&doc, keys, &options);
        let _ = dsig::verify_enveloping(&doc, keys, &options);
    }
}

fn trusted_keys() -> &'static [VerifyingKey] {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            include_str!("../tests/data/keys/rsa2048-cert.pem"),
            include_str!("../tests/data/xmldsig/signxml/test.pem"),
            include_str!("../tests/data/xmldsig/xml-crypto/feide_public.pem"),
            include_str!("../tests/data/xmldsig/xml-crypto/signature_with_inclusivenamespaces.pem"),
            include_str!("../tests/data/metadata/wsfederation_metadata.pem"),
        ]
        .into_iter()
        .filter_map(|pem| Certificate::from_pem(pem).ok())
        .map(|c| c.verifying_key().clone())
        .chain(
            [
                &include_bytes!("../tests/data/xmldsig/samael/public.der")[..],
                &include_bytes!("../tests/data/xmldsig/samael/ec_cert.der")[..],
            ]
            .into_iter()
            .filter_map(|der| Certificate::from_der(der).ok())
            .map(|c| c.verifying_key().clone()),
        )
        .collect()
    })
}

/// Reports a broken invariant as a crash, which is what the fuzzer looks for.
#[allow(clippy::panic)]
fn panic_finding(what: &str) {
    panic!("fuzz finding: {what}");
}

fn small_limits() -> Limits {
    Limits {
        max_bytes: 256 * 1024,
        max_nodes: 20_000,
        ..Limits::default()
    }
}
