//! No input makes the parsers or the profile panic: valid documents, cut and spliced at
//! random, go through every public entry point that reads XML or binding parameters.
//! (The fuzz targets explore further; this keeps the property in `cargo test`.)
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use std::sync::OnceLock;

use latchkey_saml::assertion::{
    Assertion, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::metadata::{MetadataOptions, parse_metadata};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::SigningKey;
use latchkey_xmlsec::dsig::{self, SignOptions};
use proptest::prelude::*;
use time::macros::datetime;

struct Fixture {
    settings: SpSettings,
    response: String,
    request: String,
    metadata: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
        let t = datetime!(2026-11-28 14:00:00 UTC);
        let a = Assertion {
            id: "_a".into(),
            issue_instant: t,
            issuer: "idp".into(),
            subject: Some(Subject {
                name_id: Some(NameId::new("alice", name_id_format::EMAIL)),
                confirmations: vec![SubjectConfirmation {
                    method: BEARER.into(),
                    data: Some(SubjectConfirmationData {
                        not_on_or_after: Some(t + time::Duration::minutes(5)),
                        recipient: Some("acs".into()),
                        in_response_to: Some("_req".into()),
                        ..SubjectConfirmationData::default()
                    }),
                }],
            }),
            conditions: Some(Conditions {
                audience_restrictions: vec![vec!["sp".into()]],
                ..Conditions::default()
            }),
            authn_statements: vec![AuthnStatement {
                authn_instant: t,
                session_index: None,
                session_not_on_or_after: None,
                authn_context_class_ref: None,
            }],
            attributes: vec![],
        };
        let signed = dsig::sign(
            &a.to_xml().unwrap(),
            "_a",
            &key,
            None,
            &SignOptions::default(),
        )
        .unwrap();
        let response = Response {
            id: "_r".into(),
            in_response_to: Some("_req".into()),
            issue_instant: t,
            destination: Some("acs".into()),
            issuer: Some("idp".into()),
            status: Status::success(),
        }
        .to_xml(Some(&signed))
        .unwrap();
        let metadata = std::fs::read_to_string(format!(
            "{}/tests/data/metadata/sp_metadata.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Fixture {
            settings: SpSettings::new("sp", "acs", "idp", vec![key.verifying_key().clone()]),
            response,
            request: AuthnRequest::new("sp", "https://idp/sso", t)
                .unwrap()
                .to_xml()
                .unwrap(),
            metadata,
        }
    })
}

/// Cuts `text` at two char boundaries and splices `insert` between the pieces.
fn mutate(text: &str, a: usize, b: usize, insert: &str) -> String {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let i = bounds[a % bounds.len()];
    let j = bounds[b % bounds.len()];
    let (lo, hi) = (i.min(j), i.max(j));
    format!("{}{insert}{}", &text[..lo], &text[hi..])
}

fn splice() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("<".to_owned()),
        Just("\"".to_owned()),
        Just("<!---->".to_owned()),
        Just("&amp;".to_owned()),
        Just("<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">".to_owned()),
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn profile_never_panics(a in any::<usize>(), b in any::<usize>(), ins in splice()) {
        let f = fixture();
        let xml = mutate(&f.response, a, b, &ins);
        let _ = validate_response(&f.settings, &xml, Some("_req"), datetime!(2026-11-28 14:01:00 UTC));
        let _ = validate_response(&f.settings, &xml, None, datetime!(2026-11-28 14:01:00 UTC));
    }

    #[test]
    fn message_parsers_never_panic(a in any::<usize>(), b in any::<usize>(), ins in splice()) {
        let f = fixture();
        let xml = mutate(&f.request, a, b, &ins);
        let _ = AuthnRequest::parse(&xml);
        let _ = LogoutRequest::parse(&xml);
        let _ = LogoutResponse::parse(&xml);
        let limits = BindingLimits::default();
        let _ = post::decode(MessageKind::Request, &xml, Some(&ins), &limits);
        let _ = redirect::decode(&xml, &limits);
    }

    #[test]
    fn metadata_parser_never_panics(a in any::<usize>(), b in any::<usize>(), ins in splice()) {
        let f = fixture();
        let xml = mutate(&f.metadata, a, b, &ins);
        let _ = parse_metadata(&xml, &MetadataOptions::default());
    }
}
