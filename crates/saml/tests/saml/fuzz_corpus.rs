#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replays every SAML fuzz target's checked-in corpus (`fuzz/corpus/<target>/`) through the
//! same function the fuzzer runs, so a crash once found stays fixed; and checks that the
//! generated seeds still pass every rule, so the fuzzer starts from accepted inputs.
//!
//! The seeds were written once by `generate_seeds` (ignored; run it with
//! `cargo test -p latchkey-saml --test fuzz_corpus -- --ignored` to refresh them).

use std::path::{Path, PathBuf};

use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::authn_request::{AuthnRequest, NameIdPolicy, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::encryption::{self, DecryptionKey, EncryptOptions};
use latchkey_saml::fuzzing::{
    self, ACS_URL, IDP_ENTITY_ID, IDP_SLO_URL, NOW, REQUEST_ID, SLO_URL, SP_ENTITY_ID, SSO_URL,
};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse, reason};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse,
    SpSsoDescriptor,
};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, ResponseTarget, SignedParts, build_error_response, build_response,
};
use latchkey_saml::profile::logout::LogoutPeer;
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_saml::response::Response;
use latchkey_saml::status::{Status, code as status_code};
use latchkey_xmlsec::crypto::{Certificate, SignatureAlgorithm, SigningKey, VerifyingKey};
use latchkey_xmlsec::dsig::{SignOptions, VerifyOptions, sign, verify_document_element};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "corpus {} is empty", dir.display());
    entries
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = corpus(target);
    for (_, bytes) in &inputs {
        run(bytes);
    }
    eprintln!("{target}: replayed {} inputs", inputs.len());
}

#[test]
fn saml_response_corpus() {
    replay("saml_response", fuzzing::saml_response);
}

#[test]
fn authn_request_corpus() {
    replay("authn_request", fuzzing::authn_request);
}

#[test]
fn metadata_corpus() {
    replay("metadata", fuzzing::metadata);
}

#[test]
fn logout_corpus() {
    replay("logout", fuzzing::logout);
}

/// The generated logout seeds pass the profile at the end they are addressed to: signed
/// queries verify with the sender's key, signed POST documents verify enveloped, and the
/// messages pass `LogoutPeer`. Unsigned ones are refused as unsigned and nothing else.
#[test]
fn generated_logout_seeds_are_accepted() {
    let idp_key = VerifyingKey::from_pem(&read(&data("fuzz/idp-p256.pub.pem"))).unwrap();
    let sp_key = VerifyingKey::from_pem(&read(&data("fuzz/sp-rsa2048.pub.pem"))).unwrap();
    let algorithms = [
        SignatureAlgorithm::RsaSha256,
        SignatureAlgorithm::EcdsaSha256,
    ];
    let mut accepted = 0;
    for (path, bytes) in corpus("logout") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("gen-") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        // `from-idp` seeds are addressed to the SP's SLO, `from-sp` ones to the IdP's.
        let (peer, key) = if name.contains("from-idp") {
            (LogoutPeer::new(IDP_ENTITY_ID, SLO_URL), &idp_key)
        } else {
            assert!(name.contains("from-sp"), "{name}");
            (LogoutPeer::new(SP_ENTITY_ID, IDP_SLO_URL), &sp_key)
        };
        let keys = std::slice::from_ref(key);
        let (xml, signed) = if name.contains("-query-") {
            let m = redirect::decode(&text, &BindingLimits::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if m.is_signed() {
                m.verify(keys, &algorithms)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            (m.xml.clone(), m.is_signed())
        } else if name.contains("-post-") {
            let kind = if name.contains("request") {
                MessageKind::Request
            } else {
                MessageKind::Response
            };
            let m = post::decode(kind, &text, None, &BindingLimits::default()).unwrap();
            (m.xml, true)
        } else {
            (text, name.contains("signed"))
        };
        if name.contains("-post-") || (name.contains("-xml-") && signed) {
            let doc = latchkey_xmlsec::reader::parse(&xml, &Default::default()).unwrap();
            verify_document_element(&doc, keys, &VerifyOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let outcome = if name.contains("request") {
            let request = LogoutRequest::parse(&xml).unwrap();
            assert_eq!(request.issuer.as_deref(), Some(peer.entity_id.as_str()));
            peer.check_request(&request, signed, NOW)
        } else {
            let response = LogoutResponse::parse(&xml).unwrap();
            assert_eq!(response.issuer.as_deref(), Some(peer.entity_id.as_str()));
            peer.check_response(&response, REQUEST_ID, signed, NOW)
        };
        if signed {
            outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
            accepted += 1;
        } else {
            assert_eq!(outcome, Err(latchkey_saml::Error::Unsigned), "{name}");
        }
    }
    assert!(accepted >= 8, "only {accepted} accepted logout seeds");
}

/// The generated Response seeds pass every rule under the fuzz target's settings; if they
/// stopped doing so (a new rule, an expired fixture), the fuzzer would only ever explore
/// the first refusal.
#[test]
fn generated_response_seeds_are_accepted() {
    let key = VerifyingKey::from_pem(&read(&data("fuzz/idp-p256.pub.pem"))).unwrap();
    let mut settings = SpSettings::new(SP_ENTITY_ID, ACS_URL, IDP_ENTITY_ID, vec![key]);
    settings.allow_unsolicited = true;
    settings.decryption_keys =
        vec![DecryptionKey::from_pem(&read(&data("fuzz/sp-rsa2048.key.pem"))).unwrap()];
    let mut accepted = 0;
    for (path, bytes) in corpus("saml_response") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("gen-ok-") {
            continue;
        }
        let xml = String::from_utf8(bytes).unwrap();
        let request = (!name.contains("unsolicited")).then_some(REQUEST_ID);
        let subject = validate_response(&settings, &xml, request, NOW)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(subject.attributes.len(), 6, "{name}");
        accepted += 1;
    }
    assert!(accepted >= 5, "only {accepted} generated seeds");
}

/// The generated redirect seeds decode to an AuthnRequest, and the signed one verifies.
#[test]
fn generated_request_seeds_decode() {
    let key = VerifyingKey::from_pem(&read(&data("fuzz/sp-rsa2048.pub.pem"))).unwrap();
    let mut signed = 0;
    for (path, bytes) in corpus("authn_request") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("gen-query-") {
            continue;
        }
        let m = redirect::decode(
            std::str::from_utf8(&bytes).unwrap(),
            &BindingLimits::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let request = AuthnRequest::parse(&m.xml).unwrap();
        assert_eq!(request.issuer.as_deref(), Some(SP_ENTITY_ID));
        if m.is_signed() {
            m.verify(std::slice::from_ref(&key), &[SignatureAlgorithm::RsaSha256])
                .unwrap();
            signed += 1;
        }
    }
    assert!(signed >= 1);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn attributes() -> Vec<Attribute> {
    [
        ("mail", vec!["alice@example.org"]),
        ("givenName", vec!["Alice"]),
        ("sn", vec!["Example"]),
        ("displayName", vec!["Alice <Example> & Co"]),
        ("groups", vec!["staff", "wiki-editors"]),
        ("eduPersonAffiliation", vec!["member"]),
    ]
    .into_iter()
    .map(|(name, values)| Attribute {
        name: name.into(),
        name_format: None,
        friendly_name: None,
        values: values.into_iter().map(str::to_owned).collect(),
    })
    .collect()
}

/// Writes the generated seeds (and copies the test vectors) into `fuzz/corpus/`.
#[test]
#[ignore = "writes fuzz/corpus; run once to refresh the seeds"]
fn generate_seeds() {
    let idp_key = SigningKey::from_pem(&read(&data("fuzz/idp-p256.key.pem"))).unwrap();
    let sp_key = SigningKey::from_pem(&read(&data("fuzz/sp-rsa2048.key.pem"))).unwrap();
    let idp = IdpSettings::new(IDP_ENTITY_ID, SSO_URL);
    let issuance = Issuance {
        name_id: NameId::new("alice@example.org", name_id_format::EMAIL),
        session_index: "_fuzz-session".into(),
        authn_instant: NOW,
        authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
        session_not_on_or_after: None,
        attributes: attributes(),
    };
    let solicited = ResponseTarget {
        sp_entity_id: SP_ENTITY_ID.into(),
        acs_url: ACS_URL.into(),
        in_response_to: Some(REQUEST_ID.into()),
    };
    let unsolicited = ResponseTarget {
        in_response_to: None,
        ..solicited.clone()
    };
    for (name, target, parts) in [
        ("assertion-signed", &solicited, SignedParts::Assertion),
        ("response-signed", &solicited, SignedParts::Response),
        ("both-signed", &solicited, SignedParts::Both),
        ("unsolicited", &unsolicited, SignedParts::Assertion),
    ] {
        let xml = build_response(&idp, target, &issuance, &idp_key, None, parts, NOW).unwrap();
        write(
            "saml_response",
            &format!("gen-ok-{name}.xml"),
            xml.as_bytes(),
        );
    }
    // An encrypted assertion (signed inside), for the SP's key.
    let assertion_doc = build_response(
        &idp,
        &solicited,
        &issuance,
        &idp_key,
        None,
        SignedParts::Assertion,
        NOW,
    )
    .unwrap();
    let doc = latchkey_xmlsec::reader::parse(&assertion_doc, &Default::default()).unwrap();
    let node = doc
        .root_element()
        .children()
        .find(|n| n.tag_name().name() == "Assertion")
        .unwrap();
    let sp_cert = Certificate::from_pem(&read(&data("fuzz/sp-rsa2048.cert.pem"))).unwrap();
    let encrypted = encryption::encrypt_assertion(
        &assertion_doc[node.range()],
        &sp_cert,
        &EncryptOptions::default(),
    )
    .unwrap();
    let envelope = Response {
        id: "_fuzz-encrypted".into(),
        in_response_to: Some(REQUEST_ID.into()),
        issue_instant: NOW,
        destination: Some(ACS_URL.into()),
        issuer: Some(IDP_ENTITY_ID.into()),
        status: Status::success(),
    };
    let xml = envelope.to_xml_encrypted(&encrypted).unwrap();
    write("saml_response", "gen-ok-encrypted.xml", xml.as_bytes());
    let denied = Status::failure(status_code::RESPONDER, Some(status_code::NO_PASSIVE), None);
    let xml = build_error_response(&idp, &solicited, denied, &idp_key, None, NOW).unwrap();
    write("saml_response", "gen-error-no-passive.xml", xml.as_bytes());
    for entry in std::fs::read_dir(data("responses")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            write(
                "saml_response",
                &format!("seed-{name}"),
                &std::fs::read(&path).unwrap(),
            );
        }
    }

    let limits = BindingLimits::default();
    let mut request = AuthnRequest::new(SP_ENTITY_ID, SSO_URL, NOW).unwrap();
    write(
        "authn_request",
        "gen-xml-minimal.xml",
        request.to_xml().unwrap().as_bytes(),
    );
    let query = redirect::encode(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        None,
        &limits,
    )
    .unwrap();
    write("authn_request", "gen-query-minimal", query.as_bytes());
    request.assertion_consumer_service_url = Some(ACS_URL.into());
    request.protocol_binding = Some(binding_uri::HTTP_POST.into());
    request.force_authn = true;
    request.provider_name = Some("Fuzz & <SP>".into());
    request.name_id_policy = Some(NameIdPolicy {
        format: Some(name_id_format::PERSISTENT.into()),
        sp_name_qualifier: Some(SP_ENTITY_ID.into()),
        allow_create: Some(true),
    });
    let xml = request.to_xml().unwrap();
    write("authn_request", "gen-xml-full.xml", xml.as_bytes());
    let query = redirect::encode_signed(
        MessageKind::Request,
        &xml,
        Some("relay-42"),
        &sp_key,
        SignatureAlgorithm::RsaSha256,
        &limits,
    )
    .unwrap();
    write("authn_request", "gen-query-signed", query.as_bytes());
    // A POST-bound value, to see the decoder refuse base64 that is not deflated.
    write(
        "authn_request",
        "gen-post-value",
        post::encode(&xml).as_bytes(),
    );

    for entry in std::fs::read_dir(data("metadata")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            write(
                "metadata",
                &format!("seed-{name}"),
                &std::fs::read(&path).unwrap(),
            );
        }
    }
    logout_seeds(&idp_key, &sp_key);

    let mut idp_md = EntityDescriptor::new(IDP_ENTITY_ID);
    idp_md.valid_until = Some(NOW + time::Duration::days(7));
    idp_md.idp = Some(IdpSsoDescriptor {
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![
                Certificate::from_pem(&read(&data("fuzz/idp-p256.cert.pem"))).unwrap(),
            ],
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![name_id_format::EMAIL.into()],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: SSO_URL.into(),
            response_location: None,
        }],
        ..IdpSsoDescriptor::default()
    });
    let signed = idp_md.to_signed_xml(&idp_key, None).unwrap();
    write("metadata", "gen-idp-signed.xml", signed.as_bytes());
    let mut sp_md = EntityDescriptor::new(SP_ENTITY_ID);
    sp_md.sp = Some(SpSsoDescriptor {
        authn_requests_signed: true,
        want_assertions_signed: true,
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: binding_uri::HTTP_POST.into(),
            location: ACS_URL.into(),
            index: 0,
            is_default: Some(true),
        }],
        ..SpSsoDescriptor::default()
    });
    write("metadata", "gen-sp.xml", sp_md.to_xml().unwrap().as_bytes());
}

/// Logout seeds for both ends: the IdP's messages to the SP's SLO signed with the IdP key,
/// the SP's to the IdP's SLO signed with the SP key; each as XML (plain and enveloped-
/// signed), as redirect queries (unsigned and signed) and as a POST value (signed).
fn logout_seeds(idp_key: &SigningKey, sp_key: &SigningKey) {
    let limits = BindingLimits::default();
    for (from, issuer, destination, key, alg) in [
        (
            "idp",
            IDP_ENTITY_ID,
            SLO_URL,
            idp_key,
            SignatureAlgorithm::EcdsaSha256,
        ),
        (
            "sp",
            SP_ENTITY_ID,
            IDP_SLO_URL,
            sp_key,
            SignatureAlgorithm::RsaSha256,
        ),
    ] {
        let request = LogoutRequest {
            id: format!("_fuzz-logout-{from}"),
            issue_instant: NOW,
            destination: Some(destination.into()),
            issuer: Some(issuer.into()),
            name_id: NameId {
                value: "alice@example.org".into(),
                format: Some(name_id_format::EMAIL.into()),
                name_qualifier: Some(IDP_ENTITY_ID.into()),
                sp_name_qualifier: Some(SP_ENTITY_ID.into()),
            },
            session_indexes: vec!["_fuzz-session".into()],
            not_on_or_after: Some(NOW + time::Duration::minutes(2)),
            reason: Some(reason::USER.into()),
        };
        let response = LogoutResponse {
            id: format!("_fuzz-logout-response-{from}"),
            in_response_to: Some(REQUEST_ID.into()),
            issue_instant: NOW,
            destination: Some(destination.into()),
            issuer: Some(issuer.into()),
            status: Status::failure(
                status_code::RESPONDER,
                Some(status_code::PARTIAL_LOGOUT),
                Some("one session remains"),
            ),
        };
        for (what, kind, id, xml) in [
            (
                "request",
                MessageKind::Request,
                &request.id,
                request.to_xml().unwrap(),
            ),
            (
                "response",
                MessageKind::Response,
                &response.id,
                response.to_xml().unwrap(),
            ),
        ] {
            let prefix = format!("gen-from-{from}");
            write(
                "logout",
                &format!("{prefix}-xml-{what}.xml"),
                xml.as_bytes(),
            );
            let signed_xml = sign(&xml, id, key, None, &SignOptions::default()).unwrap();
            write(
                "logout",
                &format!("{prefix}-xml-{what}-signed.xml"),
                signed_xml.as_bytes(),
            );
            write(
                "logout",
                &format!("{prefix}-post-{what}"),
                post::encode(&signed_xml).as_bytes(),
            );
            let query = redirect::encode(kind, &xml, Some("relay-7"), &limits).unwrap();
            write(
                "logout",
                &format!("{prefix}-query-{what}"),
                query.as_bytes(),
            );
            let query =
                redirect::encode_signed(kind, &xml, Some("relay-7"), key, alg, &limits).unwrap();
            write(
                "logout",
                &format!("{prefix}-query-{what}-signed"),
                query.as_bytes(),
            );
        }
    }
}
