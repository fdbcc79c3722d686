//! Checking an application's single-logout messages before anything is ended, beside
//! [`super::request`], which does the same for AuthnRequests. `latchkey_idp_web::logout` runs
//! the chain; everything that decides whether a message is believed is here.
//!
//! # Security
//! * A logout message is authenticated through the one inbound path
//!   ([`latchkey_saml::inbound`]): the query signature for HTTP-Redirect, the enveloped
//!   signature for HTTP-POST, against the application's registered certificates only.
//! * It must be signed. An unsigned one is believed only from an application whose admin
//!   set the legacy opt-in `allow_unsigned_logout` (and never when the server requires
//!   signatures); such a request ends at most this browser's session, and only when that
//!   session signed in to the application under the NameID it names.
//! * A LogoutRequest acts once: its issuer and ID are recorded ([`SeenRequests`]) for the
//!   profile's time window, on every node. Checking writes nothing; the caller records a
//!   checked request ([`CheckedLogout::record`]) only once it has taken what the request
//!   must take first: an unsigned one's throttle slot for its client network
//!   ([`crate::session::Slot::unsigned_logout`]), and a park.

use latchkey_saml::binding::MessageKind;
use latchkey_saml::inbound::{self, Inbound, Received, Requirement, SignaturePolicy};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::profile::logout::LogoutPeer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::SsoError;
use super::replay::{Seen, SeenRequests};
use super::request::{app_keys, malformed, registered_app, signature_error};
use crate::apps::Application;
use crate::config::ServerSettings;
use crate::ids::AppId;
use crate::store::Store;

/// A LogoutRequest that passed every check, parked across the same-site hop when it came
/// by POST.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptedLogout {
    /// The asking application.
    pub app: AppId,
    /// The request's ID.
    pub request_id: String,
    /// The NameID it names.
    pub name_id: String,
    /// The sessions it names (empty: all of the principal's).
    pub session_indexes: Vec<String>,
    /// Whether its signature was verified (unsigned requests, from an application with the
    /// legacy opt-in, end this browser's session only).
    pub signed: bool,
    /// RelayState to return.
    pub relay_state: Option<String>,
    /// `redirect` or `post`, for the audit trail.
    pub binding: String,
}

impl crate::session::Parkable for AcceptedLogout {
    const KIND: &'static str = "slo-request";
}

/// Why a LogoutRequest was refused: a rule, or a second arrival.
#[derive(Debug, thiserror::Error)]
pub enum LogoutRefusal {
    /// A rule refused it.
    #[error(transparent)]
    Sso(#[from] SsoError),
    /// It was acted on before (on any node).
    #[error("the LogoutRequest was already used")]
    Replayed,
}

/// A LogoutRequest that passed every check and is not yet recorded as used.
#[derive(Debug)]
pub struct CheckedLogout {
    accepted: AcceptedLogout,
    issuer: String,
    /// When the profile starts refusing it as too old: its replay record may go then.
    window_end: OffsetDateTime,
}

impl CheckedLogout {
    /// The request as it will act.
    pub fn accepted(&self) -> &AcceptedLogout {
        &self.accepted
    }

    /// Records the request as used, refusing a replay, on every node. Taken last, after any
    /// slot or place the request must take (an unsigned one's throttle slot, a park), so a
    /// request refused for lack of one keeps its ID and the application can send it again.
    pub async fn record(
        self,
        store: &Store,
        now: OffsetDateTime,
    ) -> Result<AcceptedLogout, LogoutRefusal> {
        let first = SeenRequests::new(store)
            .first_use(
                Seen::LogoutRequest,
                &self.issuer,
                &self.accepted.request_id,
                self.window_end,
                now,
            )
            .await
            .map_err(SsoError::Store)?;
        if !first {
            tracing::warn!(
                code = crate::PageCode::SloReplayed.as_str(),
                app = %self.issuer,
                request = %self.accepted.request_id,
                "single logout: a LogoutRequest arrived again"
            );
            return Err(LogoutRefusal::Replayed);
        }
        Ok(self.accepted)
    }
}

/// Checks a LogoutRequest (registered issuer, signature, then the profile's Destination
/// and time rules); [`CheckedLogout::record`] then uses it up.
pub async fn check_request(
    store: &Store,
    settings: &ServerSettings,
    message: &Inbound,
    now: OffsetDateTime,
) -> Result<(CheckedLogout, Application), LogoutRefusal> {
    let unverified = inbound::open::<LogoutRequest>(message).map_err(malformed)?;
    let app = registered_app(store, unverified.issuer()).await?;
    let Received {
        message: request,
        signed,
    } = unverified
        .verify(
            &app_keys(&app)?,
            &SignaturePolicy::default(),
            requirement(settings, &app),
        )
        .map_err(signature_error)?;
    let peer = peer(settings, &app);
    // The signature policy was applied above; the profile's remaining rules (Destination,
    // IssueInstant, NotOnOrAfter) hold for unsigned requests too.
    peer.check_request(&request, true, now)
        .map_err(profile_error)?;
    let window_end = request.issue_instant + peer.max_age + peer.clock_skew;
    Ok((
        CheckedLogout {
            accepted: AcceptedLogout {
                app: app.id,
                request_id: request.id,
                name_id: request.name_id.value,
                session_indexes: request.session_indexes,
                signed,
                relay_state: message.relay_state().map(str::to_owned),
                binding: message.binding_name().into(),
            },
            issuer: app.settings.entity_id.clone(),
            window_end,
        },
        app,
    ))
}

/// Whether `app`'s answer to our LogoutRequest `request_id` is a trusted success; `Err`
/// says why it is not trusted at all.
pub fn check_response(
    settings: &ServerSettings,
    app: &Application,
    message: &Inbound,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<bool, String> {
    if message.kind() != MessageKind::Response {
        return Err("not a LogoutResponse".into());
    }
    let keys = app_keys(app).map_err(|e| e.to_string())?;
    let Received {
        message: response, ..
    } = inbound::open::<LogoutResponse>(message)
        .and_then(|m| {
            m.verify(
                &keys,
                &SignaturePolicy::default(),
                requirement(settings, app),
            )
        })
        .map_err(|e| e.to_string())?;
    peer(settings, app)
        .check_response(&response, request_id, true, now)
        .map_err(|e| e.to_string())?;
    Ok(response.status.is_success())
}

/// Signed, unless the application has the legacy opt-in and the server allows it.
fn requirement(settings: &ServerSettings, app: &Application) -> Requirement {
    if app.settings.allow_unsigned_logout && !settings.require_signed_requests {
        Requirement::IfVerifiable
    } else {
        Requirement::Required
    }
}

fn peer(settings: &ServerSettings, app: &Application) -> LogoutPeer {
    LogoutPeer::new(app.settings.entity_id.clone(), settings.url("/saml/slo"))
}

fn profile_error(e: latchkey_saml::Error) -> SsoError {
    match e {
        latchkey_saml::Error::LogoutDestinationMismatch { found } => {
            SsoError::WrongDestination(found.chars().take(300).collect())
        }
        latchkey_saml::Error::LogoutExpired | latchkey_saml::Error::LogoutNotYetValid => {
            SsoError::Stale
        }
        other => SsoError::Malformed(other),
    }
}
