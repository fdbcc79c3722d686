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
use crate::binding::post::PostMessage;
use crate::binding::{BindingLimits, MessageKind, post, redirect};
use crate::encryption::DecryptionKey;
use crate::inbound::{self, Inbound, Requirement, SignaturePolicy};
use crate::logout::{LogoutRequest, LogoutResponse};
use crate::metadata::{MetadataOptions, parse_metadata};
use crate::profile::logout::LogoutPeer;
use crate::profile::{SpSettings, validate_response};

/// The SP the fuzzed Responses are addressed to.
pub const SP_ENTITY_ID: &str = "https://sp.fuzz.example";
/// Its ACS URL.
pub const ACS_URL: &str = "https://sp.fuzz.example/acs";
/// The IdP that signs the seeds.
pub const IDP_ENTITY_ID: &str = "https://idp.fuzz.example";
/// The SP's SSO endpoint at the IdP (the Destination of fuzzed AuthnRequests).
pub const SSO_URL: &str = "https://idp.fuzz.example/sso";
/// The SP's SingleLogoutService: the Destination of the IdP's logout messages.
pub const SLO_URL: &str = "https://sp.fuzz.example/slo";
/// The IdP's SingleLogoutService: the Destination of the SP's logout messages.
pub const IDP_SLO_URL: &str = "https://idp.fuzz.example/slo";
/// The outstanding request the seeds answer (AuthnRequest and LogoutRequest alike).
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
    if let Ok(message) = redirect::decode(text, &capped_binding_limits()) {
        round_trip(&message.xml);
        let message = Inbound::Redirect(message);
        let _ = inbound::open::<AuthnRequest>(&message).and_then(|m| {
            m.verify(
                sp_keys(),
                &SignaturePolicy::default(),
                Requirement::IfVerifiable,
            )
        });
    }
    round_trip(text);
}

/// A logout message arriving at a SingleLogoutService, at the SP (from the IdP, signed
/// with the IdP's key) and at the IdP (from the SP, signed with the SP's key): the input
/// as an HTTP-Redirect query (detached signature), as an HTTP-POST field value and as raw
/// XML (enveloped signature), each read as a LogoutRequest and a LogoutResponse and put
/// through [`LogoutPeer`]'s rules. Invariants: a parsed message survives writing and
/// reading back unchanged; an accepted message comes from the configured peer.
pub fn logout(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = capped_binding_limits();
    if let Ok(message) = redirect::decode(text, &limits) {
        let xml = message.xml.clone();
        logout_inbound(&Inbound::Redirect(message));
        logout_round_trip(&xml);
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        if let Ok(message) = post::decode(kind, text, None, &limits) {
            logout_inbound(&Inbound::Post { kind, message });
        }
    }
    // As if a binding had verified it too, so that XML mutations reach the rules behind
    // the signature check.
    for side in logout_sides() {
        side.check(text, false);
        side.check(text, true);
    }
    for kind in [MessageKind::Request, MessageKind::Response] {
        let message = PostMessage {
            xml: text.to_owned(),
            relay_state: None,
        };
        logout_inbound(&Inbound::Post { kind, message });
    }
    logout_round_trip(text);
}

/// One end of single logout: who it hears from, with which keys, at which URL.
struct LogoutSide {
    peer: LogoutPeer,
    keys: Vec<VerifyingKey>,
}

impl LogoutSide {
    /// Runs the profile on `xml` as both message kinds; `signed` says whether the binding
    /// verified it with this side's keys.
    fn check(&self, xml: &str, signed: bool) {
        if let Ok(request) = LogoutRequest::parse(xml) {
            self.check_request(&request, signed);
        }
        if let Ok(response) = LogoutResponse::parse(xml) {
            self.check_response(&response, signed);
        }
    }

    fn check_request(&self, request: &LogoutRequest, signed: bool) {
        if self.peer.check_request(request, signed, NOW).is_ok()
            && (!signed || request.issuer.as_deref() != Some(self.peer.entity_id.as_str()))
        {
            panic_finding("accepted a LogoutRequest unsigned or from another issuer");
        }
    }

    fn check_response(&self, response: &LogoutResponse, signed: bool) {
        if self
            .peer
            .check_response(response, REQUEST_ID, signed, NOW)
            .is_ok()
            && (!signed
                || response.issuer.as_deref() != Some(self.peer.entity_id.as_str())
                || response.in_response_to.as_deref() != Some(REQUEST_ID))
        {
            panic_finding("accepted a LogoutResponse unsigned, from another issuer or request");
        }
    }
}

/// The one inbound path ([`inbound`]), as each side runs it on a message of either
/// kind: the signature by that side's peer keys (over the query, or enveloped on the
/// document element), then the profile's rules on what was verified.
fn logout_inbound(message: &Inbound) {
    let policy = SignaturePolicy::default();
    for side in logout_sides() {
        if let Ok(request) = inbound::open::<LogoutRequest>(message)
            .and_then(|m| m.verify(&side.keys, &policy, Requirement::Required))
        {
            side.check_request(&request.message, request.signed);
        }
        if let Ok(response) = inbound::open::<LogoutResponse>(message)
            .and_then(|m| m.verify(&side.keys, &policy, Requirement::Required))
        {
            side.check_response(&response.message, response.signed);
        }
    }
}

fn logout_round_trip(xml: &str) {
    if let Ok(request) = LogoutRequest::parse(xml)
        && let Ok(again) = request.to_xml()
        && LogoutRequest::parse(&again).ok().as_ref() != Some(&request)
    {
        panic_finding("LogoutRequest does not survive to_xml and parse");
    }
    if let Ok(response) = LogoutResponse::parse(xml)
        && let Ok(again) = response.to_xml()
        && LogoutResponse::parse(&again).ok().as_ref() != Some(&response)
    {
        panic_finding("LogoutResponse does not survive to_xml and parse");
    }
}

/// The SP hearing from the IdP, and the IdP hearing from the SP.
fn logout_sides() -> &'static [LogoutSide] {
    static SIDES: OnceLock<Vec<LogoutSide>> = OnceLock::new();
    SIDES.get_or_init(|| {
        vec![
            LogoutSide {
                peer: LogoutPeer::new(IDP_ENTITY_ID, SLO_URL),
                keys: VerifyingKey::from_pem(IDP_P256_PUBLIC)
                    .into_iter()
                    .collect(),
            },
            LogoutSide {
                peer: LogoutPeer::new(SP_ENTITY_ID, IDP_SLO_URL),
                keys: sp_keys().to_vec(),
            },
        ]
    })
}

/// Binding caps of 64 KiB: the fuzzer's inputs are no larger, and a deflate bomb stops
/// early.
fn capped_binding_limits() -> BindingLimits {
    BindingLimits {
        max_encoded: 64 * 1024,
        max_decoded: 64 * 1024,
        ..BindingLimits::default()
    }
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
