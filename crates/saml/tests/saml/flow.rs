//! One SP-initiated login, end to end through every layer of the crate, with each side
//! knowing the other only through the metadata XML it published:
//! SP AuthnRequest -> signed HTTP-Redirect -> IdP verifies and accepts -> IdP builds and
//! signs a Response -> auto-submitting HTTP-POST page -> SP decodes and validates.
#![allow(clippy::unwrap_used, clippy::panic)] // test helpers outside #[test] fns

use latchkey_saml::assertion::{Attribute, NameId, authn_context, name_id_format};
use latchkey_saml::authn_request::{AuthnRequest, NameIdPolicy, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, IndexedEndpoint, KeyDescriptor, KeyUse, Metadata,
    MetadataOptions, SpSsoDescriptor, parse_metadata,
};
use latchkey_saml::profile::idp::{
    IdpSettings, Issuance, SignedParts, accept_authn_request, build_response,
};
use latchkey_saml::profile::{SpSettings, validate_response};
use latchkey_xmlsec::crypto::{Certificate, SignatureAlgorithm, SigningKey};
use time::macros::datetime;

const IDP: &str = "https://idp.example.org";
const SSO: &str = "https://idp.example.org/sso";
const SP: &str = "https://sp.example.com";
const ACS: &str = "https://sp.example.com/acs";

fn identity(name: &str) -> (SigningKey, Certificate) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.into()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    (
        SigningKey::from_pem(&pair.serialize_pem()).unwrap(),
        Certificate::from_der(cert.der()).unwrap(),
    )
}

fn read_entity(xml: &str) -> EntityDescriptor {
    match parse_metadata(xml, &MetadataOptions::default()).unwrap() {
        Metadata::Entity(e) => *e,
        other => panic!("expected an entity, got {other:?}"),
    }
}

/// Pulls a hidden field's value out of the auto-submit page.
fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

#[test]
fn sp_initiated_login_end_to_end() {
    let now = datetime!(2026-11-28 14:00:00 UTC);
    let (idp_key, idp_cert) = identity("idp.example.org");
    let (sp_key, sp_cert) = identity("sp.example.com");
    let limits = BindingLimits::default();

    // Each side publishes metadata; each reads only the other's XML.
    let mut idp_md = EntityDescriptor::new(IDP);
    idp_md.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: true,
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![idp_cert.clone()],
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![name_id_format::PERSISTENT.into()],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: SSO.into(),
            response_location: None,
        }],
        slo_services: vec![],
    });
    let mut sp_md = EntityDescriptor::new(SP);
    sp_md.sp = Some(SpSsoDescriptor {
        authn_requests_signed: true,
        want_assertions_signed: true,
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: vec![sp_cert],
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![name_id_format::PERSISTENT.into()],
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: binding_uri::HTTP_POST.into(),
            location: ACS.into(),
            index: 0,
            is_default: Some(true),
        }],
        slo_services: vec![],
    });
    let idp_seen_by_sp = read_entity(&idp_md.to_signed_xml(&idp_key, Some(&idp_cert)).unwrap());
    let sp_seen_by_idp = read_entity(&sp_md.to_xml().unwrap());

    // SP: a signed redirect to the IdP's SSO endpoint, from its metadata.
    let sso = &idp_seen_by_sp.idp.as_ref().unwrap().sso_services[0];
    assert_eq!(sso.binding, binding_uri::HTTP_REDIRECT);
    let mut request = AuthnRequest::new(SP, &sso.location, now).unwrap();
    request.name_id_policy = Some(NameIdPolicy {
        format: Some(name_id_format::PERSISTENT.into()),
        sp_name_qualifier: None,
        allow_create: Some(true),
    });
    let query = redirect::encode_signed(
        MessageKind::Request,
        &request.to_xml().unwrap(),
        Some("/dashboard"),
        &sp_key,
        SignatureAlgorithm::EcdsaSha256,
        &limits,
    )
    .unwrap();
    let url = redirect::url(&sso.location, &query);

    // IdP: decode, verify with the SP's metadata keys, accept.
    let (_, received) = url.split_once('?').unwrap();
    let msg = redirect::decode(received, &limits).unwrap();
    msg.verify(
        &sp_seen_by_idp.sp_signing_keys(),
        &[SignatureAlgorithm::EcdsaSha256],
    )
    .unwrap();
    let received_request = AuthnRequest::parse(&msg.xml).unwrap();
    assert_eq!(received_request, request);
    let settings = IdpSettings::new(IDP, SSO);
    let requesting_sp = sp_seen_by_idp.requesting_sp().unwrap();
    let accepted = accept_authn_request(
        &settings,
        &requesting_sp,
        &received_request,
        true,
        now + time::Duration::seconds(1),
    )
    .unwrap();
    assert_eq!(accepted.acs_url, ACS);

    // IdP: the user authenticated; sign the answer and post it back.
    let issuance = Issuance {
        name_id: NameId {
            value: "u-7f3a".into(),
            format: accepted.name_id_format.map(str::to_owned),
            name_qualifier: Some(IDP.into()),
            sp_name_qualifier: Some(SP.into()),
        },
        session_index: "_idp-session-1".into(),
        authn_instant: now,
        authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
        session_not_on_or_after: Some(now + time::Duration::hours(8)),
        attributes: vec![Attribute {
            name: "displayName".into(),
            name_format: None,
            friendly_name: None,
            values: vec!["Zoë \"Z\" O'Neil & <co>".into()],
        }],
    };
    let response = build_response(
        &settings,
        &accepted.target(),
        &issuance,
        &idp_key,
        Some(&idp_cert),
        SignedParts::Assertion,
        now + time::Duration::seconds(2),
    )
    .unwrap();
    let page = post::auto_submit_page(
        accepted.acs_url,
        MessageKind::Response,
        &response,
        msg.relay_state.as_deref(),
        None,
        &limits,
    )
    .unwrap();

    // SP: decode the form, validate with the IdP's metadata keys.
    let posted = post::decode(
        MessageKind::Response,
        &form_field(&page, "SAMLResponse"),
        Some(&form_field(&page, "RelayState")),
        &limits,
    )
    .unwrap();
    assert_eq!(posted.relay_state.as_deref(), Some("/dashboard"));
    let sp_settings = SpSettings::new(SP, ACS, IDP, idp_seen_by_sp.idp_signing_keys());
    let subject = validate_response(
        &sp_settings,
        &posted.xml,
        Some(&request.id),
        now + time::Duration::seconds(3),
    )
    .unwrap();
    assert_eq!(subject.name_id, issuance.name_id);
    assert_eq!(subject.session_index.as_deref(), Some("_idp-session-1"));
    assert_eq!(subject.attributes, issuance.attributes);
    assert_eq!(subject.in_response_to.as_deref(), Some(request.id.as_str()));
    assert_eq!(
        subject.session_not_on_or_after,
        Some(now + time::Duration::hours(8))
    );

    // The same response, replayed to an SP that is waiting for another request, fails.
    assert!(
        validate_response(
            &sp_settings,
            &posted.xml,
            Some("_another-request"),
            now + time::Duration::seconds(3)
        )
        .is_err()
    );
}
