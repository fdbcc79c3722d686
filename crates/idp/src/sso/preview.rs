//! "What would the application receive?": the assertion a user's sign-in to an application
//! would carry, built by the code that builds real ones ([`super::grant`],
//! [`super::response`]) and neither signed nor sent, or the reason the sign-in would be
//! refused. Most "why did the app not give me a role" questions are answered by the
//! attributes it shows.
//!
//! A preview writes nothing: a persistent pairwise identifier not made yet stays unmade
//! (the preview says so, as [`super::response::PAIRWISE_NOT_YET`]), and no session,
//! request or audit row is created. It describes an IdP-initiated sign-in to the
//! application's default ACS after a password sign-in now; where the MFA policy requires
//! a second factor, the assertion is the one issued after it.

use latchkey_saml::assertion::Assertion;
use time::OffsetDateTime;

use super::response::{self, Purpose};
use super::{PendingRequest, SsoError, grant, request};
use crate::apps::{Application, NameIdFormat};
use crate::config::ServerSettings;
use crate::directory::{User, UserStatus};
use crate::error::PageCode;
use crate::mfa::policy::{MfaDecision, MfaPolicy, Target};
use crate::mfa::{AuthMethod, Methods};
use crate::session::Session;
use crate::store::Store;

/// The session index a preview's assertion carries; a real one is random per session.
pub const PREVIEW_SESSION_INDEX: &str = "preview";

/// An assertion as the application would receive it.
#[derive(Debug, Clone)]
pub struct WouldReceive {
    /// The assertion, unsigned (IDs and instants are this preview's own).
    pub assertion: Assertion,
    /// Its XML, unsigned.
    pub xml: String,
    /// The user's pairwise identifier does not exist yet: the NameID shown is
    /// [`super::response::PAIRWISE_NOT_YET`].
    pub pairwise_pending: bool,
    /// The NameID is transient: a new value at every sign-in.
    pub transient: bool,
    /// The sign-in needs a second factor (the class shown is the one stated after it).
    pub second_factor: bool,
    /// The assertion is encrypted to the application before it is sent.
    pub encrypted: bool,
}

/// Why a sign-in would be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code the refusal page or the log would carry.
    pub code: PageCode,
    /// What an admin can act on.
    pub reason: String,
}

/// A preview's answer.
#[derive(Debug, Clone)]
pub enum Preview {
    /// The sign-in would succeed with this assertion.
    Would(Box<WouldReceive>),
    /// It would be refused.
    Refused(Refusal),
}

fn refused(code: PageCode, reason: impl Into<String>) -> Preview {
    Preview::Refused(Refusal {
        code,
        reason: reason.into(),
    })
}

/// The assertion `user` would receive at `app` now, or why they would get none (see the
/// module docs). Store and build faults are errors; everything the admin can fix (access,
/// configuration, the user's data) is a [`Preview::Refused`].
pub async fn preview(
    store: &Store,
    settings: &ServerSettings,
    app: &Application,
    user: &User,
    now: OffsetDateTime,
) -> Result<Preview, SsoError> {
    if user.status != UserStatus::Active {
        return Ok(refused(
            PageCode::SsoDenied,
            format!(
                "{} is suspended: a suspended user signs in nowhere",
                user.username
            ),
        ));
    }
    let grant = grant::for_user(store, user, app).await?;
    if !grant.may_access {
        return Ok(refused(
            PageCode::SsoDenied,
            format!(
                "{} is in none of the groups assigned to {}: assign one of their groups, or \
                 add them to an assigned group",
                user.username, app.settings.name
            ),
        ));
    }
    let acs_url = match request::default_acs(app) {
        Ok(url) => url,
        Err(e) => return Ok(refused(e.code(), e.to_string())),
    };
    if let Err(e) = response::encryption_certificate(app) {
        return Ok(refused(e.code(), e.to_string()));
    }
    let pending = PendingRequest {
        app_id: app.id,
        request_id: None,
        acs_url,
        relay_state: None,
        force_authn: false,
        is_passive: false,
        name_id_format: None,
        allow_create: None,
        subject: None,
        requested_authn_context: None,
    };
    // The class: what a password sign-in gets, or, when a second factor is required, what
    // the session states once it has one.
    let policy = MfaPolicy::new(store);
    let decide = |methods: Methods| async move {
        policy
            .decide(
                user,
                Target::App(app.id),
                &methods,
                None,
                settings.mfa_required,
                settings.https,
            )
            .await
    };
    let (class, second_factor) = match decide(Methods::password()).await? {
        MfaDecision::Satisfied { class } => (class, false),
        MfaDecision::StepUp | MfaDecision::Enrol => {
            match decide(Methods::of(&[AuthMethod::Password, AuthMethod::Totp])).await? {
                MfaDecision::Satisfied { class } => (class, true),
                _ => {
                    return Ok(refused(
                        PageCode::SsoAuthnContext,
                        "no authentication this IdP offers meets what the application needs",
                    ));
                }
            }
        }
        MfaDecision::Unsatisfiable => {
            return Ok(refused(
                PageCode::SsoAuthnContext,
                "no authentication this IdP offers meets what the application needs",
            ));
        }
    };
    let content = match response::content(
        store,
        settings,
        app,
        user,
        &grant,
        &pending,
        Purpose::Preview,
    )
    .await
    {
        Ok(content) => content,
        Err(e) if !e.is_internal() => return Ok(refused(e.code(), e.to_string())),
        Err(e) => return Err(e),
    };
    let pairwise_pending = content.name_id.value == response::PAIRWISE_NOT_YET;
    let session = Session::detached(
        user.clone(),
        PREVIEW_SESSION_INDEX,
        now,
        settings.session_absolute,
    );
    let assertion = response::assertion(settings, app, &session, &pending, content, class, now)?;
    let xml = assertion
        .to_xml()
        .map_err(|e| SsoError::Build(e.to_string()))?;
    Ok(Preview::Would(Box::new(WouldReceive {
        assertion,
        xml,
        pairwise_pending,
        transient: app.settings.name_id.format == NameIdFormat::Transient,
        second_factor,
        encrypted: app.settings.encrypt_assertion,
    })))
}
