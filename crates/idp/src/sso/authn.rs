//! What a signed-in session needs before an assertion for an application may be issued:
//! the MFA policy ([`crate::mfa::policy`]) and the request's `RequestedAuthnContext`
//! ([`latchkey_saml::authn_context`]) decided together, once per answer, on the session as
//! it is at that moment (it may have stepped up since the request arrived).

use super::PendingRequest;
use crate::apps::Application;
use crate::config::ServerSettings;
use crate::error::Result;
use crate::mfa::policy::{MfaDecision, MfaPolicy, Target};
use crate::session::Session;
use crate::store::Store;

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

/// Decides a sign-in to `app` for `session` (see the module docs).
pub async fn gate(
    store: &Store,
    settings: &ServerSettings,
    session: &Session,
    app: &Application,
    pending: &PendingRequest,
) -> Result<Gate> {
    let requested = pending
        .requested_authn_context
        .as_ref()
        .map(|r| r.to_saml());
    let decision = MfaPolicy::new(store)
        .decide(
            &session.user,
            Target::App(app.id),
            &session.methods,
            requested.as_ref(),
            settings.mfa_required,
            settings.https,
        )
        .await?;
    Ok(match decision {
        MfaDecision::Satisfied { class } => Gate::Issue { class },
        MfaDecision::StepUp => Gate::StepUp,
        MfaDecision::Enrol => Gate::Enrol,
        MfaDecision::Unsatisfiable => Gate::NoAuthnContext,
    })
}
