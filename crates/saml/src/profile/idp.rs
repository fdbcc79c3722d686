//! The Web Browser SSO profile as seen by the identity provider: whether an
//! AuthnRequest may be answered, and where the answer goes (SAML profiles §4.1.4.1,
//! metadata §2.4.4).
//!
//! # Security
//! The response URL always comes from the SP's registered endpoints (its metadata, or the
//! IdP's model of the application: [`RequestingSp`]): a URL in the request is honoured
//! only if the SP registered it, so a forged request cannot have an assertion posted to
//! an attacker. Whether the request's signature verified is established by the caller
//! (the binding decides how, and the caller holds the keys) and passed in as `signed`.
//!
//! [`accept_authn_request`] is the one home of every rule on an AuthnRequest that needs no
//! store: the IdP (`latchkey_idp::sso::request`) runs it on each request it receives.

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig::{self, SignOptions};
use time::{Duration, OffsetDateTime};

use crate::assertion::{
    Assertion, Attribute, AuthnStatement, BEARER, Conditions, NameId, Subject, SubjectConfirmation,
    SubjectConfirmationData, name_id_format,
};
use crate::authn_context::{ContextDecision, MfaClass, Strength, decide};
use crate::authn_request::{AuthnRequest, RequestedAuthnContext, RequestedSubject, binding_uri};
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::metadata::{EntityDescriptor, IndexedEndpoint, SpSsoDescriptor};
use crate::response::Response;
use crate::status::Status;

/// What the IdP knows about itself.
#[derive(Debug, Clone)]
pub struct IdpSettings {
    /// Our entity ID.
    pub entity_id: String,
    /// Our SingleSignOnService URLs: a request's Destination must be one of them.
    pub sso_urls: Vec<String>,
    /// NameID formats we issue: a request asking for another is refused
    /// (`InvalidNameIDPolicy`). `unspecified` is always acceptable in a request.
    pub name_id_formats: Vec<String>,
    /// Require every AuthnRequest to be signed, whatever the SP's metadata says.
    pub want_authn_requests_signed: bool,
    /// Allowed clock difference with the SP (at most [`super::MAX_CLOCK_SKEW`]).
    pub clock_skew: Duration,
    /// How old a request may be (its IssueInstant) when it arrives.
    pub max_request_age: Duration,
    /// How long an assertion we issue may be delivered (its NotOnOrAfter).
    pub assertion_lifetime: Duration,
    /// Our pages are served over HTTPS: `PasswordProtectedTransport` can be met.
    pub protected_transport: bool,
}

impl IdpSettings {
    /// Defaults: persistent, transient and email formats, 60 s skew, 5 min maximum age,
    /// signatures required only when the SP says it signs, protected transport when the
    /// SSO URL is `https://`. The formats are those the reference IdPs make for any SP:
    /// many SPs ask for one by default (mod_auth_mellon and SimpleSAMLphp `transient`,
    /// node-saml `emailAddress`) and fail on anything else.
    pub fn new(entity_id: impl Into<String>, sso_url: impl Into<String>) -> Self {
        let sso_url = sso_url.into();
        Self {
            entity_id: entity_id.into(),
            protected_transport: sso_url.starts_with("https://"),
            sso_urls: vec![sso_url],
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

/// A request the IdP may answer, with where and how to answer it: borrowed from the
/// request and the SP's view, so checking one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedAuthnRequest<'a> {
    /// The request ID, for InResponseTo.
    pub request_id: &'a str,
    /// The SP's entity ID: the audience.
    pub sp_entity_id: &'a str,
    /// The ACS URL the SP registered: Destination and Recipient of the answer.
    pub acs_url: &'a str,
    /// The NameID format asked for, if any (by NameIDPolicy, else by the Subject's NameID;
    /// never `unspecified`).
    pub name_id_format: Option<&'a str>,
    /// The SPNameQualifier asked for, if any.
    pub sp_name_qualifier: Option<&'a str>,
    /// Whether the IdP may create a new identifier (absent means not stated).
    pub allow_create: Option<bool>,
    /// The NameID value the request's `saml:Subject` names: an assertion must be about
    /// exactly that subject (core §3.4.1), or the SP is told `UnknownPrincipal`.
    pub subject: Option<&'a str>,
    /// Re-authenticate even with a session.
    pub force_authn: bool,
    /// Do not interact with the user (answer NoPassive if that is impossible).
    pub is_passive: bool,
    /// The authentication strength asked for.
    pub requested_authn_context: Option<&'a RequestedAuthnContext>,
    /// When set, no assertion answers the request: only an error Response with this
    /// refusal's [`Refusal::status`], at `acs_url`.
    pub refusal: Option<Refusal>,
}

impl AcceptedAuthnRequest<'_> {
    /// Where and to what the answer goes.
    pub fn target(&self) -> ResponseTarget {
        ResponseTarget {
            sp_entity_id: self.sp_entity_id.to_owned(),
            acs_url: self.acs_url.to_owned(),
            in_response_to: Some(self.request_id.to_owned()),
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

/// What the checks of an AuthnRequest read of the SP that sent it, lent without copying:
/// by its metadata ([`EntityDescriptor::requesting_sp`]) or by an IdP's own model of a
/// registered application.
pub trait RequestingSp {
    /// One of its AssertionConsumerService endpoints.
    type Acs: AcsEndpoint;
    /// Its entity ID: a request's Issuer must be exactly this.
    fn entity_id(&self) -> &str;
    /// Whether an unsigned AuthnRequest from it is refused (its metadata's
    /// `AuthnRequestsSigned`, when the IdP holds a key to check it with).
    fn requests_must_be_signed(&self) -> bool;
    /// Its AssertionConsumerService endpoints: a Response goes to one of these, never to a
    /// URL only the request names.
    fn acs_endpoints(&self) -> &[Self::Acs];
    /// Whether a request from it may ask for NameIDs of `format` (a format URI the IdP
    /// issues; see [`IdpSettings::name_id_formats`]).
    fn allows_name_id_format(&self, format: &str) -> bool;
}

/// An AssertionConsumerService endpoint as the checks read it.
pub trait AcsEndpoint {
    /// Its URL.
    fn location(&self) -> &str;
    /// Whether it takes HTTP-POST, the only binding a Response is sent with.
    fn is_http_post(&self) -> bool;
    /// The index a request may name instead of the URL.
    fn index(&self) -> u16;
    /// `isDefault`: `Some(true)` marks the default, `Some(false)` one never to default to.
    fn is_default(&self) -> Option<bool>;
}

/// An SP as its metadata describes it (see [`EntityDescriptor::requesting_sp`]).
#[derive(Debug, Clone, Copy)]
pub struct MetadataSp<'a> {
    entity_id: &'a str,
    role: &'a SpSsoDescriptor,
}

impl EntityDescriptor {
    /// The SP this metadata describes, for [`accept_authn_request`]: an entity without a
    /// SAML 2.0 SP role sends no AuthnRequest we accept ([`Error::SpRoleMissing`]).
    pub fn requesting_sp(&self) -> Result<MetadataSp<'_>> {
        Ok(MetadataSp {
            entity_id: &self.entity_id,
            role: self.sp.as_ref().ok_or(Error::SpRoleMissing)?,
        })
    }
}

impl RequestingSp for MetadataSp<'_> {
    type Acs = IndexedEndpoint;

    fn entity_id(&self) -> &str {
        self.entity_id
    }

    fn requests_must_be_signed(&self) -> bool {
        self.role.authn_requests_signed
    }

    fn acs_endpoints(&self) -> &[IndexedEndpoint] {
        &self.role.assertion_consumer_services
    }

    /// Metadata's `NameIDFormat`s say what the SP supports, not what it may ask for.
    fn allows_name_id_format(&self, _format: &str) -> bool {
        true
    }
}

impl AcsEndpoint for IndexedEndpoint {
    fn location(&self) -> &str {
        &self.location
    }

    fn is_http_post(&self) -> bool {
        self.binding == binding_uri::HTTP_POST
    }

    fn index(&self) -> u16 {
        self.index
    }

    fn is_default(&self) -> Option<bool> {
        self.is_default
    }
}

/// Why a request that passed every check may only be answered with an error Status at its
/// ACS (what a page would refuse is an [`Error`] instead: nothing is sent to an ACS before
/// the request is known to come from the SP and name one of its endpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request's `saml:Subject` names its principal by something other than a NameID
    /// (core §3.4.1): no assertion can be known to be about that subject.
    SubjectUnreadable,
    /// NameIDPolicy asks for a format this IdP does not issue.
    NameIdFormatUnsupported,
    /// NameIDPolicy asks for a format this SP is not allowed.
    NameIdFormatNotAllowed,
    /// No authentication this IdP offers, even with a second factor, meets the
    /// RequestedAuthnContext (core §3.3.2.2.1).
    NoAuthnContext,
}

impl Refusal {
    /// The Status the request is answered with.
    pub fn status(self) -> Status {
        use crate::status::code;
        match self {
            Refusal::SubjectUnreadable => Status::failure(
                code::RESPONDER,
                Some(code::UNKNOWN_PRINCIPAL),
                Some("the request names its subject by an identifier this IdP does not read"),
            ),
            Refusal::NameIdFormatUnsupported => Status::failure(
                code::REQUESTER,
                Some(code::INVALID_NAMEID_POLICY),
                Some("this identity provider cannot make a NameID of the requested format"),
            ),
            Refusal::NameIdFormatNotAllowed => Status::failure(
                code::REQUESTER,
                Some(code::INVALID_NAMEID_POLICY),
                Some("the application is not allowed NameIDs of the requested format"),
            ),
            Refusal::NoAuthnContext => Status::failure(
                code::RESPONDER,
                Some(code::NO_AUTHN_CONTEXT),
                Some("no authentication this identity provider offers meets the requested context"),
            ),
        }
    }
}

impl IdpSettings {
    /// Whether an AuthnRequest from `sp` must be signed: when either side requires it.
    /// The caller verifies the signature (it holds the keys), so it asks this first.
    pub fn requires_signature<S: RequestingSp + ?Sized>(&self, sp: &S) -> bool {
        self.want_authn_requests_signed || sp.requests_must_be_signed()
    }

    fn skew(&self) -> Duration {
        self.clock_skew.clamp(Duration::ZERO, super::MAX_CLOCK_SKEW)
    }

    /// The last instant a request issued at `issue_instant` is accepted: a replay record
    /// of its ID may go after it.
    pub fn request_valid_until(&self, issue_instant: OffsetDateTime) -> OffsetDateTime {
        issue_instant + self.max_request_age + self.skew()
    }
}

/// The endpoint a request that names none is answered at: the HTTP-POST one marked
/// default, else the lowest-indexed HTTP-POST one not marked `isDefault="false"`, else the
/// lowest-indexed HTTP-POST one. Also where an IdP-initiated Response goes.
pub fn default_acs<E: AcsEndpoint>(endpoints: &[E]) -> Option<&E> {
    let post = || endpoints.iter().filter(|e| e.is_http_post());
    post()
        .find(|e| e.is_default() == Some(true))
        .or_else(|| {
            post()
                .filter(|e| e.is_default().is_none())
                .min_by_key(|e| e.index())
        })
        .or_else(|| post().min_by_key(|e| e.index()))
}

/// The endpoint the request names (by URL, else by index), or the default one; it must
/// take HTTP-POST.
fn resolve_acs<'a, E: AcsEndpoint>(endpoints: &'a [E], request: &AuthnRequest) -> Result<&'a E> {
    let chosen = match (
        request.assertion_consumer_service_url.as_deref(),
        request.assertion_consumer_service_index,
    ) {
        (Some(url), _) => endpoints
            .iter()
            .find(|e| e.location() == url)
            .ok_or_else(|| Error::AcsNotRegistered(url.to_owned()))?,
        (None, Some(i)) => endpoints
            .iter()
            .find(|e| e.index() == i)
            .ok_or(Error::AcsIndexUnknown(i))?,
        (None, None) => return default_acs(endpoints).ok_or(Error::AcsMissing),
    };
    if !chosen.is_http_post() {
        return Err(Error::AcsMissing);
    }
    Ok(chosen)
}

/// Checks an AuthnRequest from `sp` (the SP registered under the request's Issuer) and
/// says where and how to answer it. `signed` says whether the caller verified the
/// request's signature with the SP's keys (detached for HTTP-Redirect, enveloped for
/// HTTP-POST); it asks [`IdpSettings::requires_signature`] whether one was needed.
///
/// The order is the security argument: the Issuer, the signature, Destination and
/// freshness, then the ACS (registered for the SP); only then the requests that are
/// answered at that ACS with an error Status ([`AcceptedAuthnRequest::refusal`]).
pub fn accept_authn_request<'a, S: RequestingSp + ?Sized>(
    settings: &IdpSettings,
    sp: &'a S,
    request: &'a AuthnRequest,
    signed: bool,
    now: OffsetDateTime,
) -> Result<AcceptedAuthnRequest<'a>> {
    // Rule: the Issuer is the SP.
    match request.issuer.as_deref().map(str::trim) {
        Some(i) if i == sp.entity_id() => {}
        other => {
            return Err(Error::RequestIssuerMismatch {
                expected: sp.entity_id().to_owned(),
                found: other.unwrap_or_default().to_owned(),
            });
        }
    }
    // Rule: signed when either side requires it.
    if settings.requires_signature(sp) && !signed {
        return Err(Error::Unsigned);
    }
    // Rule: Destination names us; a signed request must carry it (bindings §3.4.5.2,
    // §3.5.5.2: otherwise a request signed for another IdP could be replayed here).
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
    if request.issue_instant > now + settings.skew() {
        return Err(Error::RequestNotYetValid);
    }
    if settings.request_valid_until(request.issue_instant) < now {
        return Err(Error::RequestExpired);
    }
    // Rule: the ACS is one the SP registered.
    let acs = resolve_acs(sp.acs_endpoints(), request)?;
    // Rule: the response binding is HTTP-POST.
    if let Some(b) = request.protocol_binding.as_deref()
        && b != binding_uri::HTTP_POST
    {
        return Err(Error::UnsupportedBinding(b.to_owned()));
    }
    let policy = request.name_id_policy.as_ref();
    // The format NameIDPolicy asks for, unless it leaves the choice to us.
    let wanted = policy
        .and_then(|p| p.format.as_deref())
        .filter(|f| *f != name_id_format::UNSPECIFIED);
    let subject = match &request.subject {
        Some(RequestedSubject::NameId(n)) => Some(n),
        _ => None,
    };
    // Refusals, answered at the ACS. Rule: a subject we can read.
    let refusal = if matches!(request.subject, Some(RequestedSubject::Other)) {
        Some(Refusal::SubjectUnreadable)
    // Rule: a NameID format we issue, and the SP may have.
    } else if wanted.is_some_and(|f| !settings.name_id_formats.iter().any(|i| i == f)) {
        Some(Refusal::NameIdFormatUnsupported)
    } else if wanted.is_some_and(|f| !sp.allows_name_id_format(f)) {
        Some(Refusal::NameIdFormatNotAllowed)
    // Rule: an authentication context some session here could meet.
    } else if request
        .requested_authn_context
        .as_ref()
        .is_some_and(|r| !settings.can_meet(r))
    {
        Some(Refusal::NoAuthnContext)
    } else {
        None
    };
    Ok(AcceptedAuthnRequest {
        request_id: &request.id,
        sp_entity_id: sp.entity_id(),
        acs_url: acs.location(),
        // A subject named with a format asks for that format too.
        name_id_format: wanted.or_else(|| {
            subject
                .and_then(|n| n.format.as_deref())
                .filter(|f| *f != name_id_format::UNSPECIFIED)
        }),
        sp_name_qualifier: policy.and_then(|p| p.sp_name_qualifier.as_deref()),
        allow_create: policy.and_then(|p| p.allow_create),
        subject: subject.map(|n| n.value.as_str()),
        force_authn: request.force_authn,
        is_passive: request.is_passive,
        requested_authn_context: request.requested_authn_context.as_ref(),
        refusal,
    })
}

impl IdpSettings {
    /// Whether some session of this IdP, after a second factor if need be, could meet
    /// `requested`. What a session must still do is decided when the answer is built
    /// ([`crate::authn_context::decide`] on its own strength).
    fn can_meet(&self, requested: &RequestedAuthnContext) -> bool {
        let best = Strength {
            protected_transport: self.protected_transport,
            multi_factor: true,
            mfa_class: MfaClass::default(),
        };
        decide(Some(requested), best) != ContextDecision::Unsatisfiable
    }
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

    fn accept(r: &AuthnRequest, signed: bool) -> Result<AcceptedAuthnRequest<'static>> {
        // Leaked so that the accepted request can outlive the helper (tests only).
        let sp: &'static EntityDescriptor = Box::leak(Box::new(sp()));
        let r: &'static AuthnRequest = Box::leak(Box::new(r.clone()));
        let sp: &'static MetadataSp<'static> = Box::leak(Box::new(sp.requesting_sp()?));
        accept_authn_request(&settings(), sp, r, signed, NOW)
    }

    #[test]
    fn default_acs_is_the_first_post_endpoint_not_marked_false() {
        let a = accept(&request(), false).unwrap();
        assert_eq!(a.acs_url, "https://sp.example.com/acs");
        assert_eq!(a.name_id_format, Some(name_id_format::PERSISTENT));
        assert_eq!(a.refusal, None);
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
        assert_eq!(accept(&r, false), Err(Error::AcsMissing));
        // By URL too: registered, but not for HTTP-POST.
        r.assertion_consumer_service_index = None;
        r.assertion_consumer_service_url = Some("https://sp.example.com/artifact".into());
        assert_eq!(accept(&r, false), Err(Error::AcsMissing));
    }

    fn endpoint(index: u16, post: bool, is_default: Option<bool>) -> IndexedEndpoint {
        IndexedEndpoint {
            binding: if post {
                binding_uri::HTTP_POST
            } else {
                binding_uri::HTTP_ARTIFACT
            }
            .into(),
            location: format!("https://sp.example.com/{index}"),
            index,
            is_default,
        }
    }

    #[test]
    fn default_acs_rule() {
        let pick = |list: &[IndexedEndpoint]| default_acs(list).map(|e| e.index);
        // Marked default wins, wherever it is.
        let list = [
            endpoint(0, true, None),
            endpoint(3, true, Some(true)),
            endpoint(1, true, None),
        ];
        assert_eq!(pick(&list), Some(3));
        // Else the lowest index not marked false, in any order.
        let list = [
            endpoint(2, true, None),
            endpoint(0, true, Some(false)),
            endpoint(1, true, None),
        ];
        assert_eq!(pick(&list), Some(1));
        // Else the lowest index.
        let list = [
            endpoint(2, true, Some(false)),
            endpoint(1, true, Some(false)),
        ];
        assert_eq!(pick(&list), Some(1));
        // Never one that does not take HTTP-POST, even marked default.
        let list = [
            endpoint(0, false, Some(true)),
            endpoint(4, true, Some(false)),
        ];
        assert_eq!(pick(&list), Some(4));
        assert_eq!(pick(&[endpoint(0, false, Some(true))]), None);
        let mut sp = sp();
        if let Some(role) = sp.sp.as_mut() {
            role.assertion_consumer_services = vec![endpoint(0, false, None)];
        }
        let sp = sp.requesting_sp().unwrap();
        let r = request();
        assert_eq!(
            accept_authn_request(&settings(), &sp, &r, false, NOW),
            Err(Error::AcsMissing)
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
        // Surrounding white space is not part of the entity ID.
        r.issuer = Some(format!(" {SP}\n"));
        assert!(accept(&r, false).is_ok());
    }

    #[test]
    fn signature_required_by_either_side() {
        let mut s = settings();
        s.want_authn_requests_signed = true;
        let (e, r) = (sp(), request());
        let sp = e.requesting_sp().unwrap();
        assert!(s.requires_signature(&sp));
        assert_eq!(
            accept_authn_request(&s, &sp, &r, false, NOW),
            Err(Error::Unsigned)
        );
        assert!(accept_authn_request(&s, &sp, &r, true, NOW).is_ok());
        let mut signing_sp = e.clone();
        if let Some(role) = signing_sp.sp.as_mut() {
            role.authn_requests_signed = true;
        }
        let signing_sp = signing_sp.requesting_sp().unwrap();
        assert!(settings().requires_signature(&signing_sp));
        assert!(!settings().requires_signature(&sp));
        assert_eq!(
            accept_authn_request(&settings(), &signing_sp, &r, false, NOW),
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
        assert_eq!(settings().request_valid_until(r.issue_instant), NOW);
        r.issue_instant = NOW + Duration::seconds(60);
        assert!(accept(&r, false).is_ok());
    }

    #[test]
    fn response_binding() {
        let mut r = request();
        r.protocol_binding = Some(binding_uri::HTTP_REDIRECT.into());
        assert_eq!(
            accept(&r, false),
            Err(Error::UnsupportedBinding(binding_uri::HTTP_REDIRECT.into()))
        );
        r.protocol_binding = Some(binding_uri::HTTP_POST.into());
        assert!(accept(&r, false).is_ok());
        // Checked once the ACS is known to be registered.
        r.protocol_binding = Some(binding_uri::HTTP_REDIRECT.into());
        r.assertion_consumer_service_url = Some("https://evil.example/acs".into());
        assert!(matches!(accept(&r, false), Err(Error::AcsNotRegistered(_))));
    }

    #[test]
    fn name_id_policy_format_we_issue() {
        let mut r = request();
        r.name_id_policy = Some(NameIdPolicy {
            format: Some("urn:example:kerberos".into()),
            ..NameIdPolicy::default()
        });
        let a = accept(&r, false).unwrap();
        assert_eq!(a.refusal, Some(Refusal::NameIdFormatUnsupported));
        // Answered at the registered ACS, as InvalidNameIDPolicy.
        assert_eq!(a.acs_url, "https://sp.example.com/acs");
        assert_eq!(
            a.refusal.map(|r| r.status().sub_code),
            Some(Some(crate::status::code::INVALID_NAMEID_POLICY.into()))
        );
        r.name_id_policy = Some(NameIdPolicy {
            format: Some(name_id_format::UNSPECIFIED.into()),
            ..NameIdPolicy::default()
        });
        let a = accept(&r, false).unwrap();
        assert_eq!((a.name_id_format, a.refusal), (None, None));
    }

    /// An SP that may have only persistent NameIDs.
    struct Narrow(EntityDescriptor);

    impl RequestingSp for Narrow {
        type Acs = IndexedEndpoint;
        fn entity_id(&self) -> &str {
            &self.0.entity_id
        }
        fn requests_must_be_signed(&self) -> bool {
            false
        }
        fn acs_endpoints(&self) -> &[IndexedEndpoint] {
            self.0
                .sp
                .as_ref()
                .map_or(&[], |r| &r.assertion_consumer_services)
        }
        fn allows_name_id_format(&self, format: &str) -> bool {
            format == name_id_format::PERSISTENT
        }
    }

    #[test]
    fn name_id_policy_format_the_sp_may_have() {
        let narrow = Narrow(sp());
        let mut r = request();
        let a = accept_authn_request(&settings(), &narrow, &r, false, NOW).unwrap();
        assert_eq!(a.refusal, None);
        r.name_id_policy = Some(NameIdPolicy {
            format: Some(name_id_format::EMAIL.into()),
            ..NameIdPolicy::default()
        });
        let a = accept_authn_request(&settings(), &narrow, &r, false, NOW).unwrap();
        assert_eq!(a.refusal, Some(Refusal::NameIdFormatNotAllowed));
        // Any SP may have it from its metadata alone.
        assert_eq!(accept(&r, false).unwrap().refusal, None);
    }

    #[test]
    fn subject_rule() {
        use crate::authn_request::RequestedSubject;
        let mut r = request();
        r.name_id_policy = None;
        r.subject = Some(RequestedSubject::NameId(NameId::new(
            "alice@example.org",
            name_id_format::EMAIL,
        )));
        let a = accept(&r, false).unwrap();
        assert_eq!(a.subject, Some("alice@example.org"));
        // The subject's format is asked for too.
        assert_eq!(a.name_id_format, Some(name_id_format::EMAIL));
        assert_eq!(a.refusal, None);
        r.subject = Some(RequestedSubject::Other);
        let a = accept(&r, false).unwrap();
        assert_eq!(
            (a.subject, a.refusal),
            (None, Some(Refusal::SubjectUnreadable))
        );
        assert_eq!(
            a.refusal.map(|r| r.status().sub_code),
            Some(Some(crate::status::code::UNKNOWN_PRINCIPAL.into()))
        );
    }

    #[test]
    fn authn_context_some_session_could_meet() {
        use crate::assertion::authn_context;
        use crate::authn_request::Comparison;
        let mut r = request();
        let ask = |class: &str| RequestedAuthnContext {
            comparison: Comparison::Exact,
            class_refs: vec![class.into()],
        };
        r.requested_authn_context = Some(ask(authn_context::PASSWORD_PROTECTED_TRANSPORT));
        assert_eq!(accept(&r, false).unwrap().refusal, None);
        // Not over plain http.
        let mut plain = settings();
        plain.protected_transport = false;
        assert!(!IdpSettings::new("i", "http://idp.example.org/sso").protected_transport);
        let e = sp();
        let e = e.requesting_sp().unwrap();
        let a = accept_authn_request(&plain, &e, &r, false, NOW);
        assert_eq!(a.unwrap().refusal, Some(Refusal::NoAuthnContext));
        // A class nobody here offers.
        r.requested_authn_context = Some(ask("urn:example:retina-scan"));
        let a = accept(&r, false).unwrap();
        assert_eq!(a.refusal, Some(Refusal::NoAuthnContext));
        assert_eq!(
            a.refusal.map(|r| r.status().sub_code),
            Some(Some(crate::status::code::NO_AUTHN_CONTEXT.into()))
        );
        assert_eq!(
            a.requested_authn_context.map(|c| c.class_refs.len()),
            Some(1)
        );
    }

    #[test]
    fn force_authn_and_is_passive_are_passed_on() {
        let mut r = request();
        let a = accept(&r, false).unwrap();
        assert!(!a.force_authn && !a.is_passive);
        r.force_authn = true;
        r.is_passive = true;
        let a = accept(&r, false).unwrap();
        assert!(a.force_authn && a.is_passive);
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
            let s = validate_response(&sp_settings, &xml, Some(accepted.request_id), NOW).unwrap();
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
            validate_response(&sp_settings, &xml, Some(accepted.request_id), NOW),
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
        assert_eq!(e.requesting_sp().map(|_| ()), Err(Error::SpRoleMissing));
    }
}
