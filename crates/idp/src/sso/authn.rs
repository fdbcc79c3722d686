//! What a signed-in session needs before an assertion for an application may be issued:
//! the MFA policy ([`crate::mfa::policy`]) and the request's `RequestedAuthnContext`
//! ([`latchkey_saml::authn_context`]) decided together, once per answer, on the session as
//! it is at that moment (it may have stepped up since the request arrived).
//!
//! The policy's stored inputs come with the sign-in's [`Grant`], read in the same statement
//! as the access policy's (one round trip to the database for both), so the gate itself
//! reads nothing and may be asked again at no cost (the Response builder does, before it
//! states a class).

use super::PendingRequest;
use super::grant::Grant;
use crate::config::ServerSettings;
use crate::mfa::policy::MfaDecision;
use crate::session::Session;

/// What to do with a sign-in for a signed-in session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Issue the assertion, stating this `AuthnContextClassRef`.
    Issue {
        /// The class.
        class: &'static str,
    },
    /// The session needs a second factor first (the user has one): park the request and
    /// step up, in the same session, then answer it.
    StepUp,
    /// The session needs a second factor and the user has none: enrol one, then answer.
    Enrol,
    /// Nothing meets the request: answer `Responder` / `NoAuthnContext`.
    NoAuthnContext,
}

/// Decides a sign-in for `session` to the application `grant` was read for (see the module
/// docs).
pub fn gate(
    settings: &ServerSettings,
    session: &Session,
    grant: &Grant,
    pending: &PendingRequest,
) -> Gate {
    let requested = pending
        .requested_authn_context
        .as_ref()
        .map(|r| r.to_saml());
    let decision = grant.mfa.decide(
        &session.methods,
        requested.as_ref(),
        settings.mfa_required,
        settings.https,
    );
    match decision {
        MfaDecision::Satisfied { class } => Gate::Issue { class },
        MfaDecision::StepUp => Gate::StepUp,
        MfaDecision::Enrol => Gate::Enrol,
        MfaDecision::Unsatisfiable => Gate::NoAuthnContext,
    }
}
