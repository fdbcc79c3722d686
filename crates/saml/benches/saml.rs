//! What an SP pays per login in this crate: decoding an HTTP-Redirect request, and the
//! whole Web Browser SSO profile on a signed Response (parse, verify, read, check).
//!
//! Run: `cargo bench -p latchkey-saml --bench saml`. The Response carries 20 attributes
//! and a P-256 signature over its assertion; `now` is fixed, so the input never expires.
// Bench set-up works on fixed inputs; a failure there should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_saml::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::{BindingLimits, MessageKind, redirect};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::SigningKey;
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::macros::datetime;

const SP: &str = "https://sp.example.com";
const ACS: &str = "https://sp.example.com/acs";
const IDP: &str = "https://idp.example.org";

fn signed_response(key: &SigningKey) -> String {
    let t = datetime!(2026-11-28 14:00:00 UTC);
    let later = datetime!(2026-11-28 14:05:00 UTC);
    let assertion = Assertion {
        id: "_a".into(),
        issue_instant: t,
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId::new("alice@example.org", name_id_format::EMAIL)),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_on_or_after: Some(later),
                    recipient: Some(ACS.into()),
                    in_response_to: Some("_req".into()),
                    ..SubjectConfirmationData::default()
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: Some(t),
            not_on_or_after: Some(later),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: t,
            session_index: Some("_s".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: None,
        }],
        attributes: (0..20)
            .map(|i| Attribute {
                name: format!("urn:example:attribute:{i}"),
                name_format: None,
                friendly_name: None,
                values: vec![format!("value {i}"), format!("second value {i}")],
            })
            .collect(),
    };
    let a = dsig::sign(
        &assertion.to_xml().unwrap(),
        "_a",
        key,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    Response {
        id: "_r".into(),
        in_response_to: Some("_req".into()),
        issue_instant: t,
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
    .to_xml(Some(&a))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
    let xml = signed_response(&key);
    let settings = SpSettings::new(SP, ACS, IDP, vec![key.verifying_key().clone()]);
    let now = datetime!(2026-11-28 14:01:00 UTC);
    assert!(validate_response(&settings, &xml, Some("_req"), now).is_ok());
    c.bench_function("validate_response (P-256, 20 attributes)", |b| {
        b.iter(|| {
            black_box(validate_response(
                &settings,
                black_box(&xml),
                Some("_req"),
                now,
            ))
        })
    });

    let request = AuthnRequest::new(SP, "https://idp.example.org/sso", now)
        .unwrap()
        .to_xml()
        .unwrap();
    let limits = BindingLimits::default();
    let query = redirect::encode(MessageKind::Request, &request, Some("state"), &limits).unwrap();
    c.bench_function("redirect decode + AuthnRequest parse", |b| {
        b.iter(|| {
            let m = redirect::decode(black_box(&query), &limits).unwrap();
            black_box(AuthnRequest::parse(&m.xml).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
