//! Fixtures of the toolkit tests (`toolkit.rs`, `rollover.rs`, and the store case in
//! `backends/toolkit.rs`, which the oracles binary also builds): an IdP with two keys, an SP
//! trusting it, Responses and ACS forms.

use std::path::Path;
use std::sync::OnceLock;

use latchkey_saml::assertion::{
    Assertion, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use latchkey_saml::authn_request::binding_uri;
use latchkey_saml::metadata::{
    Endpoint, EntityDescriptor, IdpSsoDescriptor, KeyDescriptor, KeyUse,
};
use latchkey_saml::response::Response;
use latchkey_saml::status::Status;
use latchkey_sp::idp::IdpTrust;
use latchkey_sp::settings::SpConfig;
use latchkey_sp::{AcsForm, ServiceProvider};
use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::support::keys::{Pair, pair};

pub(crate) const IDP: &str = "https://idp.example.org";
pub(crate) const SSO: &str = "https://idp.example.org/sso";
pub(crate) const SP: &str = "https://app.example.com/saml/metadata";
pub(crate) const ACS: &str = "https://app.example.com/saml/acs";
pub(crate) const NOW: OffsetDateTime = datetime!(2026-11-28 15:00:00 UTC);

pub(crate) fn old_key() -> &'static Pair {
    static K: OnceLock<Pair> = OnceLock::new();
    K.get_or_init(pair)
}

pub(crate) fn new_key() -> &'static Pair {
    static K: OnceLock<Pair> = OnceLock::new();
    K.get_or_init(pair)
}

pub(crate) fn idp_entity(entity_id: &str, certs: &[&Certificate]) -> EntityDescriptor {
    let mut e = EntityDescriptor::new(entity_id);
    e.cache_duration = Some(Duration::hours(2));
    e.idp = Some(IdpSsoDescriptor {
        want_authn_requests_signed: true,
        keys: vec![KeyDescriptor {
            key_use: Some(KeyUse::Signing),
            certificates: certs.iter().map(|c| (*c).clone()).collect(),
            encryption_methods: Vec::new(),
        }],
        name_id_formats: vec![],
        sso_services: vec![Endpoint {
            binding: binding_uri::HTTP_REDIRECT.into(),
            location: SSO.into(),
            response_location: None,
        }],
        slo_services: vec![],
    });
    e
}

pub(crate) fn trust(certs: &[&Certificate]) -> IdpTrust {
    IdpTrust::from_metadata(&idp_entity(IDP, certs).to_xml().unwrap(), None, NOW).unwrap()
}

pub(crate) fn config(extra: &str) -> SpConfig {
    SpConfig::from_toml(
        &format!(
            "entity_id = \"{SP}\"\nacs_url = \"{ACS}\"\n{extra}\n[idp]\nmetadata_file = \"idp.xml\"\n"
        ),
        Path::new("/etc/app"),
    )
    .unwrap()
}

pub(crate) fn sp(certs: &[&Certificate]) -> ServiceProvider {
    ServiceProvider::new(&config(""), None, trust(certs)).unwrap()
}

/// A signed Response answering `request_id` (or none), by `signer`.
pub(crate) fn response(
    request_id: Option<&str>,
    assertion_id: &str,
    signer: &SigningKey,
) -> String {
    response_for("p-1", request_id, assertion_id, signer)
}

/// [`response`] about the person whose persistent NameID is `name_id`.
pub(crate) fn response_for(
    name_id: &str,
    request_id: Option<&str>,
    assertion_id: &str,
    signer: &SigningKey,
) -> String {
    let assertion = Assertion {
        id: assertion_id.into(),
        issue_instant: NOW,
        issuer: IDP.into(),
        subject: Some(Subject {
            name_id: Some(NameId::new(name_id, name_id_format::PERSISTENT)),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(NOW + Duration::minutes(5)),
                    recipient: Some(ACS.into()),
                    in_response_to: request_id.map(str::to_owned),
                    address: None,
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: None,
            not_on_or_after: Some(NOW + Duration::minutes(5)),
            audience_restrictions: vec![vec![SP.into()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: NOW,
            session_index: Some("_s".into()),
            session_not_on_or_after: None,
            authn_context_class_ref: None,
        }],
        attributes: vec![],
    };
    let signed = dsig::sign(
        &assertion.to_xml().unwrap(),
        assertion_id,
        signer,
        None,
        &SignOptions::default(),
    )
    .unwrap();
    Response {
        id: format!("_r{assertion_id}"),
        in_response_to: request_id.map(str::to_owned),
        issue_instant: NOW,
        destination: Some(ACS.into()),
        issuer: Some(IDP.into()),
        status: Status::success(),
    }
    .to_xml(Some(&signed))
    .unwrap()
}

pub(crate) fn form(xml: &str, relay_state: Option<&str>) -> AcsForm {
    use base64::Engine as _;
    AcsForm {
        saml_response: base64::engine::general_purpose::STANDARD.encode(xml),
        relay_state: relay_state.map(str::to_owned),
    }
}

pub(crate) const CONTRACT: &str = r#"
identity = { source = "persistent_name_id" }
default_role = "member"
"#;
