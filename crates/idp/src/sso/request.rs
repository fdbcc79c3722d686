//! Checking an AuthnRequest before anything is answered.
//!
//! The order is fixed and is the point of this module:
//! 1. decode within the binding's caps (a deflate bomb stops at the cap);
//! 2. the Issuer must be a registered application;
//! 3. the signature, when present and verifiable or when required, must verify against the
//!    application's registered certificates only (never a key in the message);
//! 4. Destination and IssueInstant must fit;
//! 5. the ACS URL (or index) must be registered for the application: a Response is never sent
//!    to a URL the admin did not register;
//! 6. only then are requests the IdP cannot satisfy (NameIDPolicy, authentication context)
//!    answered to that ACS with a SAML error Status.
//!
//! # Security
//! The signature goes through the one inbound path ([`latchkey_saml::inbound`]). It is
//! checked whenever the application has a signing certificate registered; it is required
//! when the application signs its AuthnRequests (`authn_requests_signed`, with a
//! certificate) or the server requires signed requests. An application without
//! certificates, on a server that does not require signatures, is treated as sending
//! unsigned requests, since a signature nobody can check proves nothing. A signed request
//! must carry a Destination naming `/saml/sso`, and every request's ID is used once
//! ([`super::replay`]): validation hands back the [`Claim`] that records it, and the caller
//! records it before it answers (with the answer's audit line, or on its own before the
//! request waits for a sign-in).

use latchkey_saml::assertion::name_id_format;
use latchkey_saml::authn_context::{ContextDecision, MfaClass, Strength, decide};
use latchkey_saml::authn_request::{AuthnRequest, RequestedSubject, binding_uri};
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::inbound::{self, Inbound, Received, Requirement, SignaturePolicy, Unverified};
use latchkey_saml::status::{Status, code};
use latchkey_xmlsec::crypto::{Certificate, VerifyingKey};
use time::{Duration, OffsetDateTime};

use super::replay::Claim;
use super::{PendingRequest, SsoError};
use std::sync::Arc;

use crate::apps::{AppKey, AppRead, Application, AppsVersion, Binding, NameIdFormat, SignInApp};
use crate::config::ServerSettings;
use crate::store::Store;

/// Caps for an inbound AuthnRequest: they are small documents, so the caps are tight.
pub const REQUEST_LIMITS: BindingLimits = BindingLimits {
    max_encoded: 128 * 1024,
    max_decoded: 64 * 1024,
    max_relay_state: 80,
};

/// The most a request may leave us to hold, in bytes of its [`PendingRequest`] (its ID,
/// subject, RelayState, requested formats and contexts): a parked row, and its ID a replay
/// record. Anyone can send an AuthnRequest, and the caps on what is held count rows, so a
/// row must be small; a real request holds well under 2 KiB (an ID is tens of characters).
pub const MAX_HELD: usize = 4 * 1024;

/// Oldest IssueInstant accepted.
const MAX_AGE: Duration = Duration::minutes(10);
/// How far in the future an IssueInstant may be (clock skew).
const MAX_FUTURE: Duration = Duration::minutes(3);

/// An AuthnRequest as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum InboundRequest<'a> {
    /// HTTP-Redirect: the raw query string (without `?`), exactly as received.
    Redirect {
        /// The query string.
        query: &'a str,
    },
    /// HTTP-POST: the form fields.
    Post {
        /// The `SAMLRequest` field.
        saml_request: &'a str,
        /// The `RelayState` field.
        relay_state: Option<&'a str>,
    },
}

/// A request that passed every check up to the ACS: it may be answered at `pending.acs_url`.
#[derive(Debug, Clone)]
pub struct ValidatedRequest {
    /// The requesting application.
    pub app: Arc<Application>,
    /// Set when the checks ran on this node's copy of the application, read at this
    /// version: the request may be answered only once it is confirmed as current
    /// ([`crate::apps::Apps::confirm`]), else it is validated again from the database.
    pub unconfirmed: Option<AppsVersion>,
    /// What to answer, and where.
    pub pending: PendingRequest,
    /// When set, the request can only be refused, with this Status, at the ACS.
    pub refusal: Option<Status>,
    /// The request's ID, not yet recorded as used: whatever answers the request, or parks
    /// it, records it first and answers nothing if that finds it used (a replay).
    pub claim: Claim,
}

/// Runs every check of the module docs, on the application as `read` says. A request that
/// fails a check made on a copy that is no longer current is checked again on the
/// application as it is now: a copy never refuses what the database would accept.
pub async fn validate(
    store: &Store,
    settings: &ServerSettings,
    inbound: InboundRequest<'_>,
    now: OffsetDateTime,
    read: AppRead,
) -> Result<ValidatedRequest, SsoError> {
    let binding_error = |e: latchkey_saml::Error| match e {
        latchkey_saml::Error::RelayStateTooLong { .. } => SsoError::RelayStateTooLong(e),
        other => SsoError::Binding(other),
    };
    let message = match inbound {
        InboundRequest::Redirect { query } => {
            Inbound::Redirect(redirect::decode(query, &REQUEST_LIMITS).map_err(binding_error)?)
        }
        InboundRequest::Post {
            saml_request,
            relay_state,
        } => Inbound::Post {
            kind: MessageKind::Request,
            message: post::decode(
                MessageKind::Request,
                saml_request,
                relay_state,
                &REQUEST_LIMITS,
            )
            .map_err(binding_error)?,
        },
    };
    let unverified = inbound::open::<AuthnRequest>(&message).map_err(malformed)?;
    let issuer = unverified.issuer().map(str::to_owned);
    let found = sign_in_app(store, issuer.as_deref(), read).await?;
    match check(settings, &message, unverified, found, now) {
        Err((e, unconfirmed)) if !store.apps().confirm_now(unconfirmed).await? => {
            let unverified = inbound::open::<AuthnRequest>(&message).map_err(malformed)?;
            let found = sign_in_app(store, issuer.as_deref(), AppRead::Fresh).await?;
            tracing::debug!(error = %e, "request checked again: the application had changed");
            check(settings, &message, unverified, found, now).map_err(|(e, _)| e)
        }
        checked => checked.map_err(|(e, _)| e),
    }
}

/// The checks that read the application (steps 3 to 6), on `found`; a failure comes with
/// the version of the copy it was made on, if it was.
fn check(
    settings: &ServerSettings,
    message: &Inbound,
    unverified: Unverified<'_, AuthnRequest>,
    found: SignInApp,
    now: OffsetDateTime,
) -> Result<ValidatedRequest, (SsoError, Option<AppsVersion>)> {
    let unconfirmed = found.unconfirmed;
    checked(settings, message, unverified, found, now).map_err(|e| (e, unconfirmed))
}

fn checked(
    settings: &ServerSettings,
    message: &Inbound,
    unverified: Unverified<'_, AuthnRequest>,
    found: SignInApp,
    now: OffsetDateTime,
) -> Result<ValidatedRequest, SsoError> {
    let SignInApp { app, unconfirmed } = found;
    let keys = app_keys(&app)?;
    let requirement = if signature_required(settings, &app) {
        Requirement::Required
    } else {
        Requirement::IfVerifiable
    };
    let Received {
        message: request,
        signed,
    } = unverified
        .verify(&keys, &SignaturePolicy::default(), requirement)
        .map_err(signature_error)?;
    let relay_state = message.relay_state().map(str::to_owned);

    // A signed request must name the endpoint that received it (bindings §3.4.5.2,
    // §3.5.5.2): otherwise a request signed for another IdP could be replayed here.
    match (&request.destination, signed) {
        (Some(d), _) if d != &settings.url("/saml/sso") => {
            return Err(SsoError::WrongDestination(d.chars().take(300).collect()));
        }
        (None, true) => return Err(SsoError::WrongDestination(String::new())),
        _ => {}
    }
    if request.issue_instant < now - MAX_AGE || request.issue_instant > now + MAX_FUTURE {
        return Err(SsoError::Stale);
    }
    let acs_url = resolve_acs(&app, &request)?;
    if let Some(binding) = &request.protocol_binding
        && binding != binding_uri::HTTP_POST
    {
        return Err(SsoError::UnsupportedBinding(binding.clone()));
    }

    let refusal = subject_refusal(&request)
        .or_else(|| name_id_refusal(&app, &request))
        .or_else(|| authn_context_refusal(&request, settings.https));
    // Recorded by the caller, when it answers: only a request that is answered uses up its
    // ID. After the window the request is refused as stale anyway, and the record may go.
    let claim = Claim::authn_request(
        &app.settings.entity_id,
        &request.id,
        request.issue_instant + MAX_AGE,
    );
    let pending = PendingRequest {
        app_id: app.id,
        request_id: Some(request.id.clone()),
        acs_url,
        relay_state,
        force_authn: request.force_authn,
        is_passive: request.is_passive,
        // A subject named with a format asks for that format too.
        name_id_format: requested_format(&request).or_else(|| match &request.subject {
            Some(RequestedSubject::NameId(n)) => n
                .format
                .clone()
                .filter(|f| f != name_id_format::UNSPECIFIED),
            _ => None,
        }),
        allow_create: request.name_id_policy.as_ref().and_then(|p| p.allow_create),
        subject: match &request.subject {
            Some(RequestedSubject::NameId(n)) => Some(n.value.clone()),
            _ => None,
        },
        requested_authn_context: request
            .requested_authn_context
            .as_ref()
            .map(super::RequestedContext::from_saml),
    };
    // Checked before anything is answered, recorded or parked (a refusal's ID is recorded
    // too).
    if serde_json::to_vec(&pending).map_or(usize::MAX, |v| v.len()) > MAX_HELD {
        return Err(SsoError::Binding(latchkey_saml::Error::DecodedTooLarge {
            limit: MAX_HELD,
        }));
    }
    Ok(ValidatedRequest {
        unconfirmed,
        claim,
        pending,
        app,
        refusal,
    })
}

/// The application registered under the message's Issuer (claimed, not yet verified: it
/// only says whose keys check the signature).
pub(crate) async fn registered_app(
    store: &Store,
    issuer: Option<&str>,
) -> Result<Application, SsoError> {
    let issuer = claimed_issuer(issuer)?;
    store
        .apps()
        .find_by_entity_id(issuer)
        .await?
        .ok_or_else(|| unknown_issuer(issuer))
}

/// [`registered_app`] for a sign-in, as `read` says ([`crate::apps::Apps::for_sign_in`]).
async fn sign_in_app(
    store: &Store,
    issuer: Option<&str>,
    read: AppRead,
) -> Result<SignInApp, SsoError> {
    let issuer = claimed_issuer(issuer)?;
    store
        .apps()
        .for_sign_in(AppKey::EntityId(issuer), read)
        .await?
        .ok_or_else(|| unknown_issuer(issuer))
}

fn claimed_issuer(issuer: Option<&str>) -> Result<&str, SsoError> {
    issuer
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .ok_or(SsoError::MissingIssuer)
}

fn unknown_issuer(issuer: &str) -> SsoError {
    SsoError::UnknownIssuer(issuer.chars().take(200).collect())
}

fn signature_required(settings: &ServerSettings, app: &Application) -> bool {
    settings.require_signed_requests
        || (app.settings.authn_requests_signed && !app.settings.signing_certs.is_empty())
}

/// How a message that is not the one expected is reported: a binding fault when the
/// wrong parameter carried it, else a malformed message.
pub(crate) fn malformed(e: latchkey_saml::Error) -> SsoError {
    match e {
        latchkey_saml::Error::MissingParameter(_) => SsoError::Binding(e),
        other => SsoError::Malformed(other),
    }
}

/// How a refused signature is reported: missing, or present and not verifying.
pub(crate) fn signature_error(e: latchkey_saml::Error) -> SsoError {
    match e {
        latchkey_saml::Error::Unsigned => SsoError::SignatureRequired,
        latchkey_saml::Error::Xml(latchkey_xmlsec::Error::Read(_)) => SsoError::Malformed(e),
        other => SsoError::SignatureInvalid(other.to_string()),
    }
}

/// The verifying keys of every certificate registered for the application.
pub(crate) fn app_keys(app: &Application) -> Result<Vec<VerifyingKey>, SsoError> {
    let mut keys = Vec::new();
    for text in &app.settings.signing_certs {
        let blocks = pem::parse_many(text).map_err(|e| {
            SsoError::Store(crate::error::Error::corrupt(
                "applications.signing_certs",
                e,
            ))
        })?;
        for block in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
            let cert = Certificate::from_der(block.contents()).map_err(|e| {
                SsoError::Store(crate::error::Error::corrupt(
                    "applications.signing_certs",
                    e,
                ))
            })?;
            keys.push(cert.verifying_key().clone());
        }
    }
    Ok(keys)
}

/// The registered HTTP-POST ACS URL the request names, or the default one.
fn resolve_acs(app: &Application, request: &AuthnRequest) -> Result<String, SsoError> {
    let endpoints = &app.settings.acs;
    let chosen = if let Some(url) = &request.assertion_consumer_service_url {
        endpoints
            .iter()
            .find(|e| &e.url == url)
            .ok_or_else(|| SsoError::UnregisteredAcs(url.chars().take(300).collect()))?
    } else if let Some(index) = request.assertion_consumer_service_index {
        endpoints
            .iter()
            .find(|e| e.index == index)
            .ok_or(SsoError::UnknownAcsIndex(index))?
    } else {
        return default_acs(app);
    };
    if chosen.binding != Binding::HttpPost {
        return Err(SsoError::NoUsableAcs);
    }
    Ok(chosen.url.clone())
}

/// The default ACS of an application, for IdP-initiated sign-in.
pub fn default_acs(app: &Application) -> Result<String, SsoError> {
    app.settings
        .acs
        .iter()
        .filter(|e| e.binding == Binding::HttpPost)
        .find(|e| e.is_default)
        .or_else(|| {
            app.settings
                .acs
                .iter()
                .filter(|e| e.binding == Binding::HttpPost)
                .min_by_key(|e| e.index)
        })
        .map(|e| e.url.clone())
        .ok_or(SsoError::NoUsableAcs)
}

/// A `saml:Subject` we cannot read (no NameID) names someone we cannot check: no
/// assertion may answer it.
fn subject_refusal(request: &AuthnRequest) -> Option<Status> {
    matches!(request.subject, Some(RequestedSubject::Other)).then(|| {
        Status::failure(
            code::RESPONDER,
            Some(code::UNKNOWN_PRINCIPAL),
            Some("the request names its subject by an identifier this IdP does not read"),
        )
    })
}

/// The format a NameIDPolicy asks for, unless it leaves the choice to us (none, or
/// `unspecified`).
fn requested_format(request: &AuthnRequest) -> Option<String> {
    request
        .name_id_policy
        .as_ref()?
        .format
        .clone()
        .filter(|f| f != name_id_format::UNSPECIFIED)
}

/// The formats the IdP can make for any application, as the reference IdPs do: many SPs
/// ask for one by default (mod_auth_mellon and SimpleSAMLphp `transient`, node-saml
/// `emailAddress`) and fail on anything else.
const PRODUCIBLE: [&str; 3] = [
    name_id_format::TRANSIENT,
    name_id_format::PERSISTENT,
    name_id_format::EMAIL,
];

/// A NameIDPolicy asking for a format we cannot make at all, or one the application's
/// allowed list leaves out, is refused with `InvalidNameIDPolicy`; whether a producible
/// one can be made for this user (an e-mail address, AllowCreate) is decided when the
/// assertion is built.
fn name_id_refusal(app: &Application, request: &AuthnRequest) -> Option<Status> {
    let wanted = requested_format(request)?;
    if wanted != app.settings.name_id.format.uri() && !PRODUCIBLE.contains(&wanted.as_str()) {
        return Some(Status::failure(
            code::REQUESTER,
            Some(code::INVALID_NAMEID_POLICY),
            Some("this identity provider cannot make a NameID of the requested format"),
        ));
    }
    let allowed =
        NameIdFormat::parse(&wanted).is_ok_and(|format| app.settings.allows_name_id_format(format));
    (!allowed).then(|| {
        Status::failure(
            code::REQUESTER,
            Some(code::INVALID_NAMEID_POLICY),
            Some("the application is not allowed NameIDs of the requested format"),
        )
    })
}

/// A request no session of this IdP could meet, even after a second factor (an unknown
/// class, `PasswordProtectedTransport` on plain http, `better` than MFA), is answered
/// `Responder` / `NoAuthnContext` at once (core §3.3.2.2.1): there is no point in signing
/// anyone in for it. What the session must still do is decided when the answer is built
/// ([`super::authn::gate`]).
fn authn_context_refusal(request: &AuthnRequest, https: bool) -> Option<Status> {
    let requested = request.requested_authn_context.as_ref()?;
    let best = Strength {
        protected_transport: https,
        multi_factor: true,
        mfa_class: MfaClass::default(),
    };
    if decide(Some(requested), best) != ContextDecision::Unsatisfiable {
        return None;
    }
    Some(Status::failure(
        code::RESPONDER,
        Some(code::NO_AUTHN_CONTEXT),
        Some("no authentication this identity provider offers meets the requested context"),
    ))
}
