//! Bodies of the SAML fuzz targets in `fuzz/`, kept here so that `cargo test` replays the
//! checked-in corpora through exactly the code the fuzzers ran.
//!
//! Each function must return normally for every input; a panic here is a finding. The
//! trusted keys and the clock are fixed, so the seeds (Responses signed by the test key,
//! see `tests/fuzz_corpus.rs`) pass every rule and mutations explore each refusal.
#![doc(hidden)]

use std::sync::OnceLock;

use latchkey_xmlsec::crypto::{Certificate, DigestAlgorithm, SignatureAlgorithm, VerifyingKey};
use latchkey_xmlsec::reader::Limits;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::authn_request::AuthnRequest;
use crate::binding::{BindingLimits, redirect};
use crate::encryption::DecryptionKey;
use crate::metadata::{MetadataOptions, parse_metadata};
use crate::profile::{SpSettings, validate_response};

/// The SP the fuzzed Responses are addressed to.
pub const SP_ENTITY_ID: &str = "https://sp.fuzz.example";
/// Its ACS URL.
pub const ACS_URL: &str = "https://sp.fuzz.example/acs";
/// The IdP that signs the seeds.
pub const IDP_ENTITY_ID: &str = "https://idp.fuzz.example";
/// The SP's SSO endpoint at the IdP (the Destination of fuzzed AuthnRequests).
pub const SSO_URL: &str = "https://idp.fuzz.example/sso";
/// The outstanding request the seeds answer.
pub const REQUEST_ID: &str = "_fuzz-request";
/// The fixed clock: the seeds are issued at this instant.
pub const NOW: OffsetDateTime = datetime!(2026-11-28 12:00:00 UTC);

/// The seeds' IdP signing key (P-256), public half; the private half is in
/// `tests/data/fuzz/`. A test key, trusted nowhere else.
const IDP_P256_PUBLIC: &str = include_str!("../tests/data/fuzz/idp-p256.pub.pem");
/// The SP key that signs redirect seeds (RSA-2048), public half.
const SP_RSA_PUBLIC: &str = include_str!("../tests/data/fuzz/sp-rsa2048.pub.pem");
/// The same SP key, private half: it decrypts the seeds' EncryptedAssertions.
const SP_RSA_PRIVATE: &str = include_str!("../tests/data/fuzz/sp-rsa2048.key.pem");

/// The Web Browser SSO profile on one Response, as an SP configured for the seeds' IdP
/// would run it: solicited and unsolicited, with the modern and the legacy algorithm
/// allow-lists, the first one holding the SP's decryption key. Invariant: an accepted
/// subject always comes from the configured IdP and answers the request given.
pub fn saml_response(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    for settings in response_settings() {
        for request_id in [Some(REQUEST_ID), None] {
            if let Ok(subject) = validate_response(settings, xml, request_id, NOW)
                && (subject.issuer != settings.idp_entity_id
                    || subject.in_response_to.as_deref() != request_id)
            {
                panic_finding("accepted a subject from another issuer or request");
            }
        }
    }
}

/// An AuthnRequest arriving over HTTP-Redirect: decode the query (inflate with the cap),
/// check the detached signature with the SP's key, and parse the XML. The input is also
/// parsed as XML directly, so XML mutations reach the parser without the encoding.
/// Invariant: a parsed request survives writing and reading back unchanged.
pub fn authn_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = BindingLimits {
        max_encoded: 64 * 1024,
        max_decoded: 64 * 1024,
        ..BindingLimits::default()
    };
    if let Ok(message) = redirect::decode(text, &limits) {
        if message.is_signed() {
            let _ = message.verify(sp_keys(), &[SignatureAlgorithm::RsaSha256]);
        }
        round_trip(&message.xml);
    }
    round_trip(text);
}

/// Metadata, unsigned (as from a file the administrator placed) and against a trusted
/// key with the clock set (as from a fetched, signed aggregate).
pub fn metadata(data: &[u8]) {
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let limits = small_limits();
    let _ = parse_metadata(
        xml,
        &MetadataOptions {
            limits,
            ..MetadataOptions::default()
        },
    );
    let _ = parse_metadata(
        xml,
        &MetadataOptions {
            trusted_keys: metadata_keys(),
            now: Some(NOW),
            limits,
            ..MetadataOptions::default()
        },
    );
}

fn round_trip(xml: &str) {
    let Ok(request) = AuthnRequest::parse(xml) else {
        return;
    };
    let Ok(again) = request.to_xml() else {
        return;
    };
    match AuthnRequest::parse(&again) {
        Ok(reread) if reread == request => {}
        _ => panic_finding("AuthnRequest does not survive to_xml and parse"),
    }
}

fn response_settings() -> &'static [SpSettings] {
    static SETTINGS: OnceLock<Vec<SpSettings>> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let mut modern = SpSettings::new(SP_ENTITY_ID, ACS_URL, IDP_ENTITY_ID, idp_keys());
        let mut legacy = modern.clone();
        modern.allow_unsolicited = true;
        modern.decryption_keys = DecryptionKey::from_pem(SP_RSA_PRIVATE)
            .into_iter()
            .collect();
        legacy
            .signature_algorithms
            .push(SignatureAlgorithm::RsaSha1);
        legacy.digest_algorithms.push(DigestAlgorithm::Sha1);
        legacy.allow_rsa_1024 = true;
        vec![modern, legacy]
    })
}

/// The seeds' key, and the keys of the real-world test responses (so that their
/// signatures verify and mutations reach the rules behind them).
fn idp_keys() -> Vec<VerifyingKey> {
    let pems = [
        IDP_P256_PUBLIC,
        include_str!("../tests/data/responses/feide_public.pem"),
    ];
    let ders: [&[u8]; 2] = [
        include_bytes!("../tests/data/responses/public.der"),
        include_bytes!("../tests/data/responses/ec_cert.der"),
    ];
    pems.into_iter()
        .filter_map(|pem| VerifyingKey::from_pem(pem).ok())
        .chain(
            ders.into_iter()
                .filter_map(|der| Certificate::from_der(der).ok())
                .map(|c| c.verifying_key().clone()),
        )
        .collect()
}

fn sp_keys() -> &'static [VerifyingKey] {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| VerifyingKey::from_pem(SP_RSA_PUBLIC).into_iter().collect())
}

fn metadata_keys() -> &'static [VerifyingKey] {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            IDP_P256_PUBLIC,
            include_str!("../tests/data/metadata/edugain_sp_signed.pem"),
            include_str!("../tests/data/metadata/wsfederation_metadata.pem"),
        ]
        .into_iter()
        .filter_map(|pem| VerifyingKey::from_pem(pem).ok())
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
        ..Limits::metadata()
    }
}
