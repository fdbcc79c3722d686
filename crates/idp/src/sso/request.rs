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
//! 6. only then are requests the IdP cannot satisfy (Subject, NameIDPolicy, authentication
//!    context) answered to that ACS with a SAML error Status.
//!
//! Steps 4 to 6 (and the rule of step 3 on when a signature is required) are the saml
//! crate's pure [`accept_authn_request`], run on the application's view of itself
//! ([`latchkey_saml::profile::idp::RequestingSp`]); this module keeps what needs the store
//! or the keys: finding the application, verifying with its certificates, the replay
//! record, the bound on what is held ([`MAX_HELD`]), and the page codes.
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

use latchkey_saml::authn_request::AuthnRequest;
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::inbound::{self, Inbound, Received, Requirement, SignaturePolicy, Unverified};
use latchkey_saml::profile::idp::{self, IdpSettings, Refusal, accept_authn_request};
use latchkey_saml::status::Status;
use latchkey_xmlsec::crypto::{Certificate, VerifyingKey};
use time::{Duration, OffsetDateTime};

use super::replay::Claim;
use super::{PendingRequest, SsoError};
use std::sync::Arc;

use crate::apps::{AppKey, AppRead, Application, AppsVersion, SignInApp};
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
    rules: &IdpSettings,
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
    match check(rules, &message, unverified, found, now) {
        Err((e, unconfirmed)) if !store.apps().confirm_now(unconfirmed).await? => {
            let unverified = inbound::open::<AuthnRequest>(&message).map_err(malformed)?;
            let found = sign_in_app(store, issuer.as_deref(), AppRead::Fresh).await?;
            tracing::debug!(error = %e, "request checked again: the application had changed");
            check(rules, &message, unverified, found, now).map_err(|(e, _)| e)
        }
        checked => checked.map_err(|(e, _)| e),
    }
}

/// The checks that read the application (steps 3 to 6), on `found`; a failure comes with
/// the version of the copy it was made on, if it was.
fn check(
    rules: &IdpSettings,
    message: &Inbound,
    unverified: Unverified<'_, AuthnRequest>,
    found: SignInApp,
    now: OffsetDateTime,
) -> Result<ValidatedRequest, (SsoError, Option<AppsVersion>)> {
    let unconfirmed = found.unconfirmed;
    checked(rules, message, unverified, found, now).map_err(|e| (e, unconfirmed))
}

/// The signature with the application's keys, then every rule that needs no store, in
/// the one home of those rules ([`accept_authn_request`]); what is left here is what
/// needs the store: the replay record's [`Claim`] and the bound on what is held.
fn checked(
    rules: &IdpSettings,
    message: &Inbound,
    unverified: Unverified<'_, AuthnRequest>,
    found: SignInApp,
    now: OffsetDateTime,
) -> Result<ValidatedRequest, SsoError> {
    let SignInApp { app, unconfirmed } = found;
    let keys = app_keys(&app)?;
    let requirement = if rules.requires_signature(&app.settings) {
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
    let accepted =
        accept_authn_request(rules, &app.settings, &request, signed, now).map_err(refused)?;
    // Recorded by the caller, when it answers: only a request that is answered uses up its
    // ID. After the window the request is refused as stale anyway, and the record may go.
    let claim = Claim::authn_request(
        &app.settings.entity_id,
        &request.id,
        rules.request_valid_until(request.issue_instant),
    );
    let pending = PendingRequest {
        app_id: app.id,
        request_id: Some(accepted.request_id.to_owned()),
        acs_url: accepted.acs_url.to_owned(),
        relay_state: message.relay_state().map(str::to_owned),
        force_authn: accepted.force_authn,
        is_passive: accepted.is_passive,
        name_id_format: accepted.name_id_format.map(str::to_owned),
        allow_create: accepted.allow_create,
        subject: accepted.subject.map(str::to_owned),
        requested_authn_context: accepted
            .requested_authn_context
            .map(super::RequestedContext::from_saml),
    };
    let refusal = accepted.refusal.map(Refusal::status);
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

/// How this IdP checks AuthnRequests, from the server's settings: built once, when the
/// server starts. A request is accepted from `MAX_AGE` before now to `MAX_FUTURE` after.
pub fn request_rules(settings: &ServerSettings) -> IdpSettings {
    let mut rules = IdpSettings::new(settings.entity_id.clone(), settings.url("/saml/sso"));
    rules.want_authn_requests_signed = settings.require_signed_requests;
    rules.clock_skew = MAX_FUTURE;
    rules.max_request_age = MAX_AGE - MAX_FUTURE;
    rules.assertion_lifetime = settings.assertion_validity;
    rules.protected_transport = settings.https;
    rules
}

/// How a rule of [`accept_authn_request`] refusing the request is reported (the page
/// codes of the checks it took over). Strings from the request are shortened for the log.
fn refused(e: latchkey_saml::Error) -> SsoError {
    use latchkey_saml::Error as E;
    match e {
        E::RequestIssuerMismatch { found, .. } if found.trim().is_empty() => {
            SsoError::MissingIssuer
        }
        E::RequestIssuerMismatch { found, .. } => unknown_issuer(&found),
        E::Unsigned => SsoError::SignatureRequired,
        E::RequestDestinationMismatch { found } => {
            SsoError::WrongDestination(found.chars().take(300).collect())
        }
        E::RequestExpired | E::RequestNotYetValid => SsoError::Stale,
        E::AcsNotRegistered(url) => SsoError::UnregisteredAcs(url.chars().take(300).collect()),
        E::AcsIndexUnknown(index) => SsoError::UnknownAcsIndex(index),
        E::AcsMissing => SsoError::NoUsableAcs,
        E::UnsupportedBinding(binding) => SsoError::UnsupportedBinding(binding),
        other => SsoError::Malformed(other),
    }
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

/// The default ACS of an application, for IdP-initiated sign-in
/// ([`latchkey_saml::profile::idp::default_acs`]'s rule).
pub fn default_acs(app: &Application) -> Result<String, SsoError> {
    idp::default_acs(&app.settings.acs)
        .map(|e| e.url.clone())
        .ok_or(SsoError::NoUsableAcs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{AcsEndpoint, Binding, NameIdFormat, NewApplication};
    use crate::config::ServerConfig;
    use crate::error::PageCode;
    use latchkey_saml::assertion::name_id_format;
    use latchkey_saml::authn_request::{NameIdPolicy, binding_uri};
    use latchkey_saml::profile::idp::RequestingSp;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-06 12:00:00 UTC);
    const SP: &str = "https://sp.example.org";

    fn rules(edit: impl FnOnce(&mut ServerConfig)) -> IdpSettings {
        let mut raw = ServerConfig {
            base_url: "https://idp.example.org".into(),
            ..ServerConfig::default()
        };
        edit(&mut raw);
        request_rules(&ServerSettings::check(raw).unwrap())
    }

    fn app() -> NewApplication {
        NewApplication::new(SP, "SP", "https://sp.example.org/acs")
    }

    fn request(issued: OffsetDateTime) -> AuthnRequest {
        AuthnRequest::new(SP, "https://idp.example.org/saml/sso", issued).unwrap()
    }

    fn accept(rules: &IdpSettings, app: &NewApplication, r: &AuthnRequest) -> Result<(), SsoError> {
        accept_authn_request(rules, app, r, false, NOW)
            .map(|_| ())
            .map_err(refused)
    }

    fn code(r: Result<(), SsoError>) -> Option<PageCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn the_window_is_ten_minutes_back_and_three_ahead() {
        let rules = rules(|_| {});
        let app = app();
        for (issued, ok) in [
            (NOW - Duration::minutes(10), true),
            (NOW - Duration::minutes(10) - Duration::seconds(1), false),
            (NOW + Duration::minutes(3), true),
            (NOW + Duration::minutes(3) + Duration::seconds(1), false),
        ] {
            let r = request(issued);
            let want = (!ok).then_some(PageCode::SsoStale);
            assert_eq!(code(accept(&rules, &app, &r)), want, "{issued}");
        }
        // The replay record lasts as long as the request is accepted.
        assert_eq!(rules.request_valid_until(NOW), NOW + MAX_AGE);
    }

    #[test]
    fn the_rules_are_the_servers() {
        let r = rules(|_| {});
        assert_eq!(r.entity_id, "https://idp.example.org/saml/metadata");
        assert_eq!(r.sso_urls, ["https://idp.example.org/saml/sso"]);
        assert!(r.protected_transport && !r.want_authn_requests_signed);
        assert_eq!(r.assertion_lifetime, Duration::seconds(300));
        let r = rules(|c| {
            c.base_url = "http://127.0.0.1:8080".into();
            c.require_signed_requests = true;
        });
        assert!(!r.protected_transport && r.want_authn_requests_signed);
        // The destination is this server's /saml/sso.
        let plain = rules(|c| c.base_url = "http://127.0.0.1:8080".into());
        let mut req = request(NOW);
        assert_eq!(
            code(accept(&plain, &app(), &req)),
            Some(PageCode::SsoDestination)
        );
        req.destination = Some("http://127.0.0.1:8080/saml/sso".into());
        assert_eq!(code(accept(&plain, &app(), &req)), None);
        assert_eq!(code(accept(&r, &app(), &req)), Some(PageCode::SsoUnsigned));
    }

    #[test]
    fn an_application_must_sign_only_with_a_certificate_to_check() {
        let mut app = app();
        assert!(app.authn_requests_signed && !app.requests_must_be_signed());
        app.signing_certs.push("-----BEGIN CERTIFICATE-----".into());
        assert!(app.requests_must_be_signed());
        app.authn_requests_signed = false;
        assert!(!app.requests_must_be_signed());
    }

    #[test]
    fn an_application_lends_its_allowed_name_id_formats() {
        let rules = rules(|_| {});
        let mut app = app();
        app.name_id_formats = vec![NameIdFormat::Persistent];
        let mut r = request(NOW);
        let ask = |format: &str| NameIdPolicy {
            format: Some(format.into()),
            ..NameIdPolicy::default()
        };
        r.name_id_policy = Some(ask(name_id_format::EMAIL));
        let refusal = |app: &NewApplication, r: &AuthnRequest| {
            accept_authn_request(&rules, app, r, false, NOW)
                .unwrap()
                .refusal
        };
        assert_eq!(refusal(&app, &r), Some(Refusal::NameIdFormatNotAllowed));
        app.name_id_formats.clear();
        assert_eq!(refusal(&app, &r), None);
        r.name_id_policy = Some(ask("urn:example:kerberos"));
        assert_eq!(refusal(&app, &r), Some(Refusal::NameIdFormatUnsupported));
        // Only exact URIs: not the short names an admin types.
        assert!(!RequestingSp::allows_name_id_format(&app, "persistent"));
    }

    #[test]
    fn acs_choice_and_its_page_codes() {
        let rules = rules(|_| {});
        let mut app = app();
        let endpoint = |url: &str, binding, index, is_default| AcsEndpoint {
            url: url.into(),
            binding,
            index,
            is_default,
        };
        app.acs = vec![
            endpoint("https://sp.example.org/art", Binding::HttpArtifact, 0, true),
            endpoint("https://sp.example.org/b", Binding::HttpPost, 5, false),
            endpoint("https://sp.example.org/a", Binding::HttpPost, 2, false),
        ];
        let acs = |r: &AuthnRequest| {
            accept_authn_request(&rules, &app, r, false, NOW)
                .map(|a| a.acs_url.to_owned())
                .map_err(|e| refused(e).code())
        };
        let mut r = request(NOW);
        // Default: not the Artifact one marked default; the lowest-indexed POST one.
        assert_eq!(acs(&r), Ok("https://sp.example.org/a".into()));
        let registered = Application {
            id: crate::ids::AppId::new_random(),
            settings: app.clone(),
            created_at: NOW,
            updated_at: NOW,
        };
        assert_eq!(
            default_acs(&registered).ok().as_deref(),
            Some("https://sp.example.org/a")
        );
        r.assertion_consumer_service_index = Some(5);
        assert_eq!(acs(&r), Ok("https://sp.example.org/b".into()));
        r.assertion_consumer_service_index = Some(0);
        assert_eq!(acs(&r), Err(PageCode::SsoNoAcs));
        r.assertion_consumer_service_index = Some(7);
        assert_eq!(acs(&r), Err(PageCode::SsoAcs));
        r.assertion_consumer_service_index = None;
        r.assertion_consumer_service_url = Some("https://sp.example.org/art".into());
        assert_eq!(acs(&r), Err(PageCode::SsoNoAcs));
        r.assertion_consumer_service_url = Some("https://evil.example/acs".into());
        assert_eq!(acs(&r), Err(PageCode::SsoAcs));
        r.assertion_consumer_service_url = None;
        r.protocol_binding = Some(binding_uri::HTTP_ARTIFACT.into());
        assert_eq!(acs(&r), Err(PageCode::SsoBinding));
    }

    #[test]
    fn issuer_errors_keep_their_page_codes() {
        let rules = rules(|_| {});
        let mut r = request(NOW);
        r.issuer = Some("https://other.example".into());
        assert_eq!(
            code(accept(&rules, &app(), &r)),
            Some(PageCode::SsoUnknownSp)
        );
        r.issuer = Some("  ".into());
        assert_eq!(
            code(accept(&rules, &app(), &r)),
            Some(PageCode::SsoNoIssuer)
        );
    }
}
