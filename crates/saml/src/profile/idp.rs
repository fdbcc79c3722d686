//! The Web Browser SSO profile as seen by the identity provider: whether an
//! AuthnRequest may be answered, and where the answer goes (SAML profiles §4.1.4.1,
//! metadata §2.4.4).
//!
//! # Security
//! The response URL always comes from the SP's metadata: a URL in the request is honoured
//! only if the metadata lists it, so a forged request cannot have an assertion posted to
//! an attacker. Whether the request's signature verified is established by the caller
//! (the binding decides how) and passed in as `signed`.

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::{Duration, OffsetDateTime};

use crate::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use crate::authn_request::{AuthnRequest, RequestedAuthnContext, binding_uri};
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::metadata::EntityDescriptor;
use crate::response::Response;
use crate::status::Status;

/// What the IdP knows about itself.
#[derive(Debug, Clone)]
pub struct IdpSettings {
    /// Our entity ID.
    pub entity_id: String,
    /// Our SingleSignOnService URLs: a request's Destination must be one of them.
    pub sso_urls: Vec<String>,
    /// NameID formats we issue. `unspecified` is always acceptable in a request.
    pub name_id_formats: Vec<String>,
    /// Require every AuthnRequest to be signed, whatever the SP's metadata says.
    pub want_authn_requests_signed: bool,
    /// Allowed clock difference with the SP (at most [`super::MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// How old a request may be (its IssueInstant) when it arrives.
    pub max_request_age: Duration,
    /// How long an assertion we issue may be delivered (its NotOnOrAfter).
    pub assertion_lifetime: Duration,
}

impl IdpSettings {
    /// Defaults: persistent, transient and email formats, 60 s skew, 5 min maximum age,
    /// signatures required only when the SP's metadata says it signs.
    pub fn new(entity_id: impl Into<String>, sso_url: impl Into<String>) -> Self {
        Self {
            entity_id: entity_id.into(),
            sso_urls: vec![sso_url.into()],
            name_id_formats: vec![
                name_id_format::PERSISTENT.to_owned(),
                name_id_format::TRANSIENT.to_owned(),
                name_id_format::EMAIL.to_owned(),
            ],
            want_authn_requests_signed: false,
            clock_skew: Duration::seconds(60),
            max_request_age: Duration::minutes(5),
            assertion_lifetime: Duration::minutes(5),
        }
    }
}

/// A request the IdP may answer, with where and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedAuthnRequest {
    /// The request ID, for InResponseTo.
    pub request_id: String,
    /// The SP's entity ID: the audience.
    pub sp_entity_id: String,
    /// The ACS URL from the SP's metadata: Destination and Recipient of the answer.
    pub acs_url: String,
    /// The NameID format asked for, if any (and supported).
    pub name_id_format: Option<String>,
    /// The SPNameQualifier asked for, if any.
    pub sp_name_qualifier: Option<String>,
    /// Whether the IdP may create a new identifier (absent means not stated).
    pub allow_create: Option<bool>,
    /// Re-authenticate even with a session.
    pub force_authn: bool,
    /// Do not interact with the user (answer NoPassive if that is impossible).
    pub is_passive: bool,
    /// The authentication strength asked for.
    pub requested_authn_context: Option<RequestedAuthnContext>,
}

impl AcceptedAuthnRequest {
    /// Where and to what the answer goes.
    pub fn target(&self) -> ResponseTarget {
        ResponseTarget {
            sp_entity_id: self.sp_entity_id.clone(),
            acs_url: self.acs_url.clone(),
            in_response_to: Some(self.request_id.clone()),
        }
    }
}

/// Where a Response goes. Made from an accepted request, or by the IdP for an
/// IdP-initiated login (with `in_response_to: None` and the ACS from the SP's metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseTarget {
    /// The SP's entity ID: the audience.
    pub sp_entity_id: String,
    /// The ACS URL: Destination and Recipient.
    pub acs_url: String,
    /// The request answered, if any.
    pub in_response_to: Option<String>,
}

/// What the IdP asserts about the user who authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuance {
    /// The subject's identifier for this SP.
    pub name_id: NameId,
    /// The IdP session, for single logout.
    pub session_index: String,
    /// When the user authenticated.
    pub authn_instant: OffsetDateTime,
    /// How (see [`crate::assertion::authn_context`]).
    pub authn_context_class_ref: String,
    /// When the SP session should end, if the IdP wants to say.
    pub session_not_on_or_after: Option<OffsetDateTime>,
    /// The attributes released to this SP.
    pub attributes: Vec<Attribute>,
}

/// Which elements of a Response get an enveloped signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedParts {
    /// The assertion only (the usual choice).
    Assertion,
    /// The Response only.
    Response,
    /// Both: the assertion, then the Response around it.
    Both,
}

/// The assertion that logs the user in at `target` (profiles §4.1.4.2): issued by
/// `issuer`, valid from `now` for `lifetime`, for the SP's audience only, its subject
/// confirmed by bearer at the ACS (Recipient, InResponseTo, NotOnOrAfter; no NotBefore).
/// The one home of that shape: the IdP's sign-ins and previews, the benches and the CLI
/// tools all build their assertions here.
pub fn assertion(
    issuer: &str,
    lifetime: Duration,
    target: &ResponseTarget,
    issuance: Issuance,
    now: OffsetDateTime,
) -> Result<Assertion> {
    let until = now + lifetime;
    Ok(Assertion {
        id: new_id()?,
        issue_instant: now,
        issuer: issuer.to_owned(),
        subject: Some(Subject {
            name_id: Some(issuance.name_id),
            confirmations: vec![SubjectConfirmation {
                method: BEARER.to_owned(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: Some(until),
                    recipient: Some(target.acs_url.clone()),
                    in_response_to: target.in_response_to.clone(),
                    address: None,
                }),
            }],
        }),
        conditions: Some(Conditions {
            not_before: Some(now),
            not_on_or_after: Some(until),
            audience_restrictions: vec![vec![target.sp_entity_id.clone()]],
            one_time_use: false,
        }),
        authn_statements: vec![AuthnStatement {
            authn_instant: issuance.authn_instant,
            session_index: Some(issuance.session_index),
            session_not_on_or_after: issuance.session_not_on_or_after,
            authn_context_class_ref: Some(issuance.authn_context_class_ref),
        }],
        attributes: issuance.attributes,
    })
}

/// Builds and signs the Response that logs the user in at `target`.
pub fn build_response(
    settings: &IdpSettings,
    target: &ResponseTarget,
    issuance: &Issuance,
    key: &SigningKey,
    certificate: Option<&Certificate>,
    parts: SignedParts,
    now: OffsetDateTime,
) -> Result<String> {
    let assertion = assertion(
        &settings.entity_id,
        settings.assertion_lifetime,
        target,
        issuance.clone(),
        now,
    )?;
    let assertion_xml = if matches!(parts, SignedParts::Assertion | SignedParts::Both) {
        assertion.to_signed_xml(key, certificate)?
    } else {
        assertion.write()?
    };
    let response = envelope(
        &settings.entity_id,
        &target.acs_url,
        target.in_response_to.as_deref(),
        Status::success(),
        now,
    )?;
    let xml = response.to_xml_with(&assertion_xml)?;
    if matches!(parts, SignedParts::Response | SignedParts::Both) {
        return Ok(dsig::sign(
            &xml,
            &response.id,
            key,
            certificate,
            &SignOptions::default(),
        )?);
    }
    Ok(xml)
}

/// Builds and signs a Response that carries only an error status (for example
/// Responder/NoPassive, or Requester/InvalidNameIDPolicy).
pub fn build_error_response(
    settings: &IdpSettings,
    target: &ResponseTarget,
    status: Status,
    key: &SigningKey,
    certificate: Option<&Certificate>,
    now: OffsetDateTime,
) -> Result<String> {
    let response = envelope(
        &settings.entity_id,
        &target.acs_url,
        target.in_response_to.as_deref(),
        status,
        now,
    )?;
    Ok(dsig::sign(
        &response.to_xml(None)?,
        &response.id,
        key,
        certificate,
        &SignOptions::default(),
    )?)
}

/// The Response around an assertion or an error status, from `issuer` to the ACS at
/// `acs_url` (its Destination), answering `in_response_to` if a request came.
pub fn envelope(
    issuer: &str,
    acs_url: &str,
    in_response_to: Option<&str>,
    status: Status,
    now: OffsetDateTime,
) -> Result<Response> {
    Ok(Response {
        id: new_id()?,
        in_response_to: in_response_to.map(str::to_owned),
        issue_instant: now,
        destination: Some(acs_url.to_owned()),
        issuer: Some(issuer.to_owned()),
        status,
    })
}

/// Checks an AuthnRequest from the SP described by `sp` (looked up by the request's
/// Issuer). `signed` says whether the caller verified the request's signature with the
/// SP's keys (detached for HTTP-Redirect, enveloped for HTTP-POST).
pub fn accept_authn_request(
    settings: &IdpSettings,
    sp: &EntityDescriptor,
    request: &AuthnRequest,
    signed: bool,
    now: OffsetDateTime,
) -> Result<AcceptedAuthnRequest> {
    let skew = settings
        .clock_skew
        .clamp(Duration::ZERO, super::MAX_CLOCK_SKEW);
    // Rule: the Issuer is the SP whose metadata we hold.
    match request.issuer.as_deref() {
        Some(i) if i == sp.entity_id => {}
        other => {
            return Err(Error::RequestIssuerMismatch {
                expected: sp.entity_id.clone(),
                found: other.unwrap_or_default().to_owned(),
            });
        }
    }
    let role = sp.sp.as_ref().ok_or(Error::SpRoleMissing)?;
    // Rule: signed when either side requires it.
    if (settings.want_authn_requests_signed || role.authn_requests_signed) && !signed {
        return Err(Error::Unsigned);
    }
    // Rule: Destination names us; a signed request must carry it.
    match request.destination.as_deref() {
        Some(d) if !settings.sso_urls.iter().any(|u| u == d) => {
            return Err(Error::RequestDestinationMismatch {
                found: d.to_owned(),
            });
        }
        None if signed => {
            return Err(Error::RequestDestinationMismatch {
                found: String::new(),
            });
        }
        _ => {}
    }
    // Rule: fresh.
    if request.issue_instant > now + skew {
        return Err(Error::RequestNotYetValid);
    }
    if request.issue_instant + settings.max_request_age + skew < now {
        return Err(Error::RequestExpired);
    }
    // Rule: the response binding is HTTP-POST.
    if let Some(b) = request.protocol_binding.as_deref()
        && b != binding_uri::HTTP_POST
    {
        return Err(Error::UnsupportedBinding(b.to_owned()));
    }
    // Rule: the ACS comes from metadata.
    let acs_list = &role.assertion_consumer_services;
    let acs = match (
        request.assertion_consumer_service_url.as_deref(),
        request.assertion_consumer_service_index,
    ) {
        (Some(url), _) => acs_list
            .iter()
            .find(|e| e.location == url && e.binding == binding_uri::HTTP_POST)
            .ok_or_else(|| Error::AcsNotRegistered(url.to_owned()))?,
        (None, Some(i)) => role.acs(Some(i)).ok_or(Error::AcsIndexUnknown(i))?,
        (None, None) => acs_list
            .iter()
            .filter(|e| e.binding == binding_uri::HTTP_POST)
            .find(|e| e.is_default == Some(true))
            .or_else(|| {
                acs_list
                    .iter()
                    .find(|e| e.binding == binding_uri::HTTP_POST && e.is_default.is_none())
            })
            .or_else(|| {
                acs_list
                    .iter()
                    .find(|e| e.binding == binding_uri::HTTP_POST)
            })
            .ok_or(Error::AcsMissing)?,
    };
    if acs.binding != binding_uri::HTTP_POST {
        return Err(Error::UnsupportedBinding(acs.binding.clone()));
    }
    // Rule: a NameID format we issue.
    let policy = request.name_id_policy.as_ref();
    let format = policy
        .and_then(|p| p.format.clone())
        .filter(|f| f != name_id_format::UNSPECIFIED);
    if let Some(f) = &format
        && !settings.name_id_formats.contains(f)
    {
        return Err(Error::NameIdFormatUnsupported(f.clone()));
    }
    Ok(AcceptedAuthnRequest {
        request_id: request.id.clone(),
        sp_entity_id: sp.entity_id.clone(),
        acs_url: acs.location.clone(),
        name_id_format: format,
        sp_name_qualifier: policy.and_then(|p| p.sp_name_qualifier.clone()),
        allow_create: policy.and_then(|p| p.allow_create),
        force_authn: request.force_authn,
        is_passive: request.is_passive,
        requested_authn_context: request.requested_authn_context.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn_request::NameIdPolicy;
    use crate::metadata::{IndexedEndpoint, SpSsoDescriptor};
    use time::macros::datetime;

    const SP: &str = "https://sp.example.com";
    const SSO: &str = "https://idp.example.org/sso";
    const NOW: OffsetDateTime = datetime!(2026-11-28 14:00:00 UTC);

    fn sp() -> EntityDescriptor {
        let mut e = EntityDescriptor::new(SP);
        e.sp = Some(SpSsoDescriptor {
            assertion_consumer_services: vec![
                IndexedEndpoint {
                    binding: binding_uri::HTTP_ARTIFACT.into(),
                    location: "https://sp.example.com/artifact".into(),
                    index: 0,
                    is_default: Some(true),
                },
                IndexedEndpoint {
                    binding: binding_uri::HTTP_POST.into(),
                    location: "https://sp.example.com/acs".into(),
                    index: 1,
                    is_default: None,
                },
                IndexedEndpoint {
                    binding: binding_uri::HTTP_POST.into(),
                    location: "https://sp.example.com/acs2".into(),
                    index: 2,
                    is_default: Some(false),
                },
            ],
            ..SpSsoDescriptor::default()
        });
        e
    }

    fn request() -> AuthnRequest {
        let mut r = AuthnRequest::new(SP, SSO, NOW - Duration::seconds(10)).unwrap();
        r.name_id_policy = Some(NameIdPolicy {
            format: Some(name_id_format::PERSISTENT.into()),
            sp_name_qualifier: None,
            allow_create: Some(true),
        });
        r
    }

    fn settings() -> IdpSettings {
        IdpSettings::new("https://idp.example.org", SSO)
    }

    fn accept(r: &AuthnRequest, signed: bool) -> Result<AcceptedAuthnRequest> {
        accept_authn_request(&settings(), &sp(), r, signed, NOW)
    }

    #[test]
    fn default_acs_is_the_first_post_endpoint_not_marked_false() {
        let a = accept(&request(), false).unwrap();
        assert_eq!(a.acs_url, "https://sp.example.com/acs");
        assert_eq!(
            a.name_id_format.as_deref(),
            Some(name_id_format::PERSISTENT)
        );
        assert_eq!(a.allow_create, Some(true));
        assert_eq!(a.sp_entity_id, SP);
    }

    #[test]
    fn acs_by_url_and_by_index() {
        let mut r = request();
        r.assertion_consumer_service_url = Some("https://sp.example.com/acs2".into());
        assert_eq!(
            accept(&r, false).unwrap().acs_url,
            "https://sp.example.com/acs2"
        );
        r.assertion_consumer_service_url = Some("https://evil.example/acs".into());
        assert_eq!(
            accept(&r, false),
            Err(Error::AcsNotRegistered("https://evil.example/acs".into()))
        );
        r.assertion_consumer_service_url = None;
        r.assertion_consumer_service_index = Some(2);
        assert_eq!(
            accept(&r, false).unwrap().acs_url,
            "https://sp.example.com/acs2"
        );
        r.assertion_consumer_service_index = Some(9);
        assert_eq!(accept(&r, false), Err(Error::AcsIndexUnknown(9)));
        r.assertion_consumer_service_index = Some(0);
        assert_eq!(
            accept(&r, false),
            Err(Error::UnsupportedBinding(binding_uri::HTTP_ARTIFACT.into()))
        );
    }

    #[test]
    fn issuer_must_be_the_sp() {
        let mut r = request();
        r.issuer = Some("https://other.example".into());
        assert!(matches!(
            accept(&r, false),
            Err(Error::RequestIssuerMismatch { .. })
        ));
        r.issuer = None;
        assert!(matches!(
            accept(&r, false),
            Err(Error::RequestIssuerMismatch { .. })
        ));
    }

    #[test]
    fn signature_required_by_either_side() {
        let mut s = settings();
        s.want_authn_requests_signed = true;
        assert_eq!(
            accept_authn_request(&s, &sp(), &request(), false, NOW),
            Err(Error::Unsigned)
        );
        assert!(accept_authn_request(&s, &sp(), &request(), true, NOW).is_ok());
        let mut signing_sp = sp();
        if let Some(role) = signing_sp.sp.as_mut() {
            role.authn_requests_signed = true;
        }
        assert_eq!(
            accept_authn_request(&settings(), &signing_sp, &request(), false, NOW),
            Err(Error::Unsigned)
        );
    }

    #[test]
    fn destination_rules() {
        let mut r = request();
        r.destination = Some("https://idp.example.org/other".into());
        assert!(matches!(
            accept(&r, false),
            Err(Error::RequestDestinationMismatch { .. })
        ));
        r.destination = None;
        assert!(accept(&r, false).is_ok());
        assert_eq!(
            accept(&r, true),
            Err(Error::RequestDestinationMismatch {
                found: String::new()
            })
        );
    }

    #[test]
    fn freshness() {
        let mut r = request();
        r.issue_instant = NOW + Duration::seconds(61);
        assert_eq!(accept(&r, false), Err(Error::RequestNotYetValid));
        r.issue_instant = NOW - Duration::minutes(6) - Duration::seconds(1);
        assert_eq!(accept(&r, false), Err(Error::RequestExpired));
        r.issue_instant = NOW - Duration::minutes(6);
        assert!(accept(&r, false).is_ok());
    }

    #[test]
    fn binding_and_name_id_policy() {
        let mut r = request();
        r.protocol_binding = Some(binding_uri::HTTP_REDIRECT.into());
        assert_eq!(
            accept(&r, false),
            Err(Error::UnsupportedBinding(binding_uri::HTTP_REDIRECT.into()))
        );
        let mut r = request();
        r.name_id_policy = Some(NameIdPolicy {
            format: Some("urn:example:kerberos".into()),
            ..NameIdPolicy::default()
        });
        assert_eq!(
            accept(&r, false),
            Err(Error::NameIdFormatUnsupported(
                "urn:example:kerberos".into()
            ))
        );
        r.name_id_policy = Some(NameIdPolicy {
            format: Some(name_id_format::UNSPECIFIED.into()),
            ..NameIdPolicy::default()
        });
        assert_eq!(accept(&r, false).unwrap().name_id_format, None);
    }

    #[test]
    fn built_responses_pass_the_sp_profile() {
        use crate::assertion::authn_context;
        use crate::profile::{SpSettings, validate_response};
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
        let accepted = accept(&request(), false).unwrap();
        let issuance = Issuance {
            name_id: NameId::new("alice", name_id_format::PERSISTENT),
            session_index: "_s1".into(),
            authn_instant: NOW,
            authn_context_class_ref: authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
            session_not_on_or_after: None,
            attributes: vec![Attribute {
                name: "mail".into(),
                name_format: None,
                friendly_name: None,
                values: vec!["alice@example.org".into()],
            }],
        };
        let sp_settings = SpSettings::new(
            SP,
            "https://sp.example.com/acs",
            "https://idp.example.org",
            vec![key.verifying_key().clone()],
        );
        for parts in [
            SignedParts::Assertion,
            SignedParts::Response,
            SignedParts::Both,
        ] {
            let xml = build_response(
                &settings(),
                &accepted.target(),
                &issuance,
                &key,
                None,
                parts,
                NOW,
            )
            .unwrap();
            let s = validate_response(&sp_settings, &xml, Some(&accepted.request_id), NOW).unwrap();
            assert_eq!(s.name_id.value, "alice");
            assert_eq!(s.attributes, issuance.attributes);
            assert_eq!(s.session_index.as_deref(), Some("_s1"));
        }
        let xml = build_error_response(
            &settings(),
            &accepted.target(),
            Status::failure(
                crate::status::code::RESPONDER,
                Some(crate::status::code::NO_PASSIVE),
                None,
            ),
            &key,
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(
            validate_response(&sp_settings, &xml, Some(&accepted.request_id), NOW),
            Err(Error::StatusNotSuccess {
                code: crate::status::code::RESPONDER.into(),
                sub_code: Some(crate::status::code::NO_PASSIVE.into()),
                message: None
            })
        );
    }

    #[test]
    fn sp_without_sp_role() {
        let mut e = sp();
        e.sp = None;
        assert_eq!(
            accept_authn_request(&settings(), &e, &request(), false, NOW),
            Err(Error::SpRoleMissing)
        );
    }
}
