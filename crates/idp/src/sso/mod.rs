//! The IdP side of Web Browser SSO: checking an AuthnRequest against the application
//! registry, building and signing the Response, and the IdP's own metadata.
//!
//! Nothing here speaks HTTP; `latchkey-idp-web` turns these results into pages. The order of
//! the checks in [`request`] is the security argument: nothing is answered to an ACS URL
//! before the issuer is known and the URL is registered for it.

pub mod authn;
pub mod grant;
pub mod keys;
pub mod logout;
pub mod metadata;
pub mod preview;
pub(crate) mod replay;
pub mod request;
pub mod response;

use serde::{Deserialize, Serialize};

pub use keys::{IdpKeys, SigningMaterial};
pub use replay::{Claim, SeenRequests, purge_seen_requests};
pub use request::{InboundRequest, ValidatedRequest};

use crate::ids::AppId;

/// A sign-in the IdP has agreed to answer, once the user is authenticated: parked in the
/// store between the request and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The application that asked (or is being launched).
    pub app_id: AppId,
    /// The AuthnRequest's ID, echoed as InResponseTo; `None` for IdP-initiated sign-in.
    pub request_id: Option<String>,
    /// The registered ACS URL the Response goes to.
    pub acs_url: String,
    /// RelayState to return untouched.
    pub relay_state: Option<String>,
    /// The user must enter their password again, even with a session.
    pub force_authn: bool,
    /// The user must not be shown any page.
    pub is_passive: bool,
    /// The NameID format the request's NameIDPolicy asked for (`None`: none, or
    /// `unspecified`: the application's own).
    #[serde(default)]
    pub name_id_format: Option<String>,
    /// The NameIDPolicy's AllowCreate: whether a new persistent identifier may be made for
    /// this request (absent means yes).
    #[serde(default)]
    pub allow_create: Option<bool>,
    /// The NameID value the request's `saml:Subject` names: the assertion must be about
    /// exactly that subject (core §3.4.1), or the SP is told `UnknownPrincipal`.
    #[serde(default)]
    pub subject: Option<String>,
    /// The request's `RequestedAuthnContext`, decided when the assertion is issued (the
    /// session may step up in between): see [`authn::gate`].
    #[serde(default)]
    pub requested_authn_context: Option<RequestedContext>,
}

/// A `RequestedAuthnContext` as parked with its request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedContext {
    /// `exact`, `minimum`, `maximum` or `better`.
    pub comparison: String,
    /// The classes, in the SP's order of preference.
    pub class_refs: Vec<String>,
}

impl RequestedContext {
    /// From the parsed request.
    pub fn from_saml(r: &latchkey_saml::authn_request::RequestedAuthnContext) -> Self {
        RequestedContext {
            comparison: r.comparison.as_str().to_owned(),
            class_refs: r.class_refs.clone(),
        }
    }

    /// Back to the SAML form the decision reads (an unknown comparison, which only a
    /// tampered row could hold, reads as `exact`).
    pub fn to_saml(&self) -> latchkey_saml::authn_request::RequestedAuthnContext {
        latchkey_saml::authn_request::RequestedAuthnContext {
            comparison: self.comparison.parse().unwrap_or_default(),
            class_refs: self.class_refs.clone(),
        }
    }
}

impl crate::session::Parkable for PendingRequest {
    const KIND: &'static str = "sso";
}

/// Why an SSO step was refused. Each variant has a short code (see [`SsoError::code`]) that
/// the error page shows and the log carries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SsoError {
    /// The binding layer refused the message (size caps, base64, deflate, URL coding).
    #[error("the request could not be decoded: {0}")]
    Binding(latchkey_saml::Error),
    /// RelayState is over the binding's 80-byte cap.
    #[error("RelayState is too long: {0}")]
    RelayStateTooLong(latchkey_saml::Error),
    /// The message is not a well-formed AuthnRequest.
    #[error("the request is not a valid AuthnRequest: {0}")]
    Malformed(latchkey_saml::Error),
    /// The AuthnRequest has no Issuer, so it cannot be tied to an application.
    #[error("the request names no issuer")]
    MissingIssuer,
    /// No application is registered with this entity ID.
    #[error("no application is registered as {0:?}")]
    UnknownIssuer(String),
    /// The requested ACS URL is not registered for the application.
    #[error("the ACS URL {0:?} is not registered for this application")]
    UnregisteredAcs(String),
    /// The requested ACS index is not registered for the application.
    #[error("the ACS index {0} is not registered for this application")]
    UnknownAcsIndex(u16),
    /// The application has no usable ACS endpoint (none at all, or only non-POST ones).
    #[error("the application has no HTTP-POST ACS endpoint")]
    NoUsableAcs,
    /// The request asks for a response binding other than HTTP-POST.
    #[error("response binding {0:?} is not supported; only HTTP-POST is")]
    UnsupportedBinding(String),
    /// The request is unsigned but the application or the IdP requires signatures.
    #[error("this application must sign its requests")]
    SignatureRequired,
    /// The request's signature does not verify with the application's certificates.
    #[error("the request signature is invalid: {0}")]
    SignatureInvalid(String),
    /// The request is addressed to another endpoint.
    #[error("the request is addressed to {0:?}, not to this IdP")]
    WrongDestination(String),
    /// The request's IssueInstant is too far from now.
    #[error("the request was issued too long ago or in the future")]
    Stale,
    /// An AuthnRequest with this ID from this application was answered before (on any
    /// node) within its validity window: a replay.
    #[error("the request {0:?} was already used")]
    Replayed(String),
    /// The application wants encrypted assertions but has no usable encryption
    /// certificate (none, or not RSA). Refused rather than sent in the clear.
    #[error("assertion encryption is configured without a usable (RSA) encryption certificate")]
    EncryptionUnsupported,
    /// The NameID the application is configured with cannot be made for this user.
    #[error("no NameID can be made for this user: {0}")]
    NameIdUnavailable(String),
    /// The NameID format the request asked for cannot be made for this user (no e-mail
    /// address, or a new persistent identifier with AllowCreate false): answered to the SP
    /// as `InvalidNameIDPolicy`, not as a page.
    #[error("the requested NameID cannot be made for this user: {0}")]
    NameIdPolicy(String),
    /// The request names a subject (`saml:Subject`) other than the signed-in user: no
    /// assertion about anyone else is sent; the SP is told `UnknownPrincipal`.
    #[error("the request names another subject than the signed-in user")]
    SubjectMismatch,
    /// Building or signing the response failed (a server fault).
    #[error("building the response failed: {0}")]
    Build(String),
    /// The signing key is unavailable (a server fault).
    #[error("signing key unavailable: {0}")]
    Keys(#[from] crate::keys::KeyError),
    /// The store failed (a server fault).
    #[error(transparent)]
    Store(#[from] crate::error::Error),
    /// The session does not meet the authentication context this sign-in needs (a
    /// caller issued without passing [`authn::gate`] first).
    #[error("the session does not meet the authentication context required")]
    AuthnContext,
}

use crate::error::PageCode;

impl SsoError {
    /// A short, stable, greppable code for pages, logs and the failures metric.
    pub fn code(&self) -> PageCode {
        match self {
            SsoError::Binding(_) => PageCode::SsoDecode,
            SsoError::RelayStateTooLong(_) => PageCode::SsoRelaystate,
            SsoError::Malformed(_) => PageCode::SsoMalformed,
            SsoError::MissingIssuer => PageCode::SsoNoIssuer,
            SsoError::UnknownIssuer(_) => PageCode::SsoUnknownSp,
            SsoError::UnregisteredAcs(_) | SsoError::UnknownAcsIndex(_) => PageCode::SsoAcs,
            SsoError::NoUsableAcs => PageCode::SsoNoAcs,
            SsoError::UnsupportedBinding(_) => PageCode::SsoBinding,
            SsoError::SignatureRequired => PageCode::SsoUnsigned,
            SsoError::SignatureInvalid(_) => PageCode::SsoBadSignature,
            SsoError::WrongDestination(_) => PageCode::SsoDestination,
            SsoError::Stale => PageCode::SsoStale,
            SsoError::Replayed(_) => PageCode::SsoReplayed,
            SsoError::EncryptionUnsupported => PageCode::SsoEncryption,
            SsoError::NameIdUnavailable(_)
            | SsoError::NameIdPolicy(_)
            | SsoError::SubjectMismatch => PageCode::SsoNameid,
            SsoError::Build(_) => PageCode::SsoBuild,
            SsoError::Keys(_) => PageCode::SsoKeys,
            SsoError::Store(_) => PageCode::SsoStore,
            SsoError::AuthnContext => PageCode::SsoAuthnContext,
        }
    }

    /// Whether the fault is the server's (answered 500, details only in the log).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            SsoError::Build(_) | SsoError::Keys(_) | SsoError::Store(_)
        )
    }
}
