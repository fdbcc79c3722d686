//! Single logout at the SP, over the front channel (SAML profiles §4.4).
//!
//! * SP-initiated: [`ServiceProvider::start_logout`] builds a LogoutRequest for the login
//!   the application kept (its NameID and SessionIndex), remembers its ID server-side under
//!   a fresh RelayState exactly as a login start does, and returns the IdP URL (HTTP-Redirect,
//!   signed over the query). The IdP's LogoutResponse comes back to our SingleLogoutService,
//!   where [`ServiceProvider::receive_logout`] finds the request by RelayState and checks the
//!   answer.
//! * IdP-initiated: the IdP's LogoutRequest arrives at the same endpoint (Redirect or POST);
//!   [`ServiceProvider::receive_logout`] checks it and hands back an [`IdpLogoutRequest`]. The
//!   application ends the sessions it [matches](IdpLogoutRequest::matches), then sends the
//!   browser to [`ServiceProvider::answer_logout`]'s URL with the signed LogoutResponse.
//! * [`start`], [`receive`] and [`answer`] do the same and write each step to the app's
//!   audit log (`slo.*` events); an application with an audit log should use them.
//!
//! # Security
//! * Every logout message is signed (our key) or must be (the IdP's keys from its metadata,
//!   never a key inside the message): unsigned logout would let any page end anyone's
//!   session.
//! * A LogoutResponse is believed only for a request we have outstanding: the RelayState must
//!   name one (taken once), and InResponseTo must be its ID.
//! * Logout requests share the login's store of outstanding requests (memory or the SP
//!   database, so any node can match the answer). A RelayState is taken once whichever
//!   endpoint presents it, and the answer must still carry the stored ID: a login's key
//!   brought to the SingleLogoutService (or the reverse) is refused by InResponseTo.
//! * An IdP's LogoutRequest is used once: its ID goes into the replay cache (prefixed so it
//!   can never collide with an assertion ID) until the profile's time window would refuse it
//!   anyway.

use latchkey_saml::assertion::NameId;
use latchkey_saml::binding::{MessageKind, post, redirect};
use latchkey_saml::inbound::{self, Inbound, Requirement};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse, reason};
use latchkey_saml::profile::MAX_CLOCK_SKEW;
use latchkey_saml::profile::logout::LogoutPeer;
use latchkey_saml::status::Status;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::acs::SamlLogin;
use crate::error::{Error, LogoutError, ReplayError};
use crate::idp::IdpTrust;
use crate::login::{PendingRequest, local_path};
use crate::provider::ServiceProvider;
use crate::replay::ReplayCache;
use crate::settings::SpKey;

mod audit;

pub use audit::{
    LogoutFailure, LogoutReceived, LogoutStarted, answer, audit_refusal, receive, start,
};

/// How long a LogoutRequest we send stays valid at the IdP (its NotOnOrAfter).
const REQUEST_VALIDITY: Duration = Duration::minutes(5);

/// The browser redirect that starts an SP-initiated logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRedirect {
    /// The IdP's SingleLogoutService URL with the signed LogoutRequest and RelayState.
    pub url: String,
    /// The opaque key the request is stored under.
    pub relay_state: String,
    /// The request that was stored (its ID is the answer's InResponseTo).
    pub request: PendingRequest,
}

/// The form fields of a logout message posted to our SingleLogoutService (HTTP-POST).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SloForm {
    /// A LogoutRequest, base64.
    #[serde(rename = "SAMLRequest", default)]
    pub saml_request: Option<String>,
    /// A LogoutResponse, base64.
    #[serde(rename = "SAMLResponse", default)]
    pub saml_response: Option<String>,
    /// The RelayState.
    #[serde(rename = "RelayState", default)]
    pub relay_state: Option<String>,
}

/// A logout message as it reached our SingleLogoutService.
#[derive(Debug, Clone, Copy)]
pub enum SloMessage<'a> {
    /// HTTP-Redirect: the raw query string (without `?`), exactly as received, because the
    /// signature covers its octets.
    Redirect(&'a str),
    /// HTTP-POST: the form.
    Post(&'a SloForm),
}

/// What arrived at our SingleLogoutService, once every rule passed.
#[derive(Debug)]
pub enum SloReceived {
    /// The IdP asks us to end sessions.
    Request(Box<IdpLogoutRequest>),
    /// The IdP answered our logout.
    Response(LogoutCompleted),
}

/// How an SP-initiated logout ended at the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// The IdP ended its session and every other application confirmed.
    Complete,
    /// The IdP answered, but not every session could be ended (PartialLogout, or a
    /// non-success status, named here).
    Partial {
        /// The status code (second level when there is one).
        status: String,
    },
}

/// The IdP's trusted answer to one of our LogoutRequests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutCompleted {
    /// Our LogoutRequest's ID, which the answer's InResponseTo named.
    pub request_id: String,
    /// What the IdP reported.
    pub outcome: LogoutOutcome,
    /// The local path the logout started from, if any.
    pub return_to: Option<String>,
}

/// A LogoutRequest from our IdP that passed every rule (signature by the IdP's keys, Issuer,
/// Destination, time window, not seen before). The application ends the sessions it matches
/// and then answers with [`ServiceProvider::answer_logout`].
#[derive(Debug, Clone)]
pub struct IdpLogoutRequest {
    request: LogoutRequest,
    relay_state: Option<String>,
}

impl IdpLogoutRequest {
    /// The verified request.
    pub fn request(&self) -> &LogoutRequest {
        &self.request
    }

    /// The principal to log out.
    pub fn name_id(&self) -> &NameId {
        &self.request.name_id
    }

    /// The IdP sessions to end; empty means all of the principal's.
    pub fn session_indexes(&self) -> &[String] {
        &self.request.session_indexes
    }

    /// Whether a local session made from `login` is one this request ends: same IdP, same
    /// NameID (and format, when both name one), and, when the request names sessions, one
    /// of them.
    pub fn matches(&self, login: &SamlLogin) -> bool {
        let r = &self.request;
        let same_idp = r.issuer.as_deref() == Some(login.issuer.as_str());
        let same_name = r.name_id.value == login.name_id
            && match (&r.name_id.format, &login.name_id_format) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            };
        let same_session = r.session_indexes.is_empty()
            || login
                .session_index
                .as_ref()
                .is_some_and(|s| r.session_indexes.contains(s));
        same_idp && same_name && same_session
    }
}

fn refused(e: latchkey_saml::Error) -> Error {
    LogoutError::Refused(e).into()
}

impl ServiceProvider {
    /// Starts an SP-initiated logout of `login` (the facts the ACS gave the application):
    /// builds the LogoutRequest, remembers it under a fresh RelayState, and returns the IdP
    /// URL to send the browser to. `return_to` is kept only if it is a local path.
    ///
    /// The application should end its own session first: the person asked to leave, and
    /// the IdP's answer may never come back.
    pub async fn start_logout(
        &self,
        login: &SamlLogin,
        return_to: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<LogoutRedirect, Error> {
        self.slo_url().ok_or(LogoutError::NoSloUrl)?;
        let key = self.key().ok_or(LogoutError::NoSigningKey)?;
        let idp = self.idp();
        let destination = idp_slo_url(&idp)?;
        let request = LogoutRequest {
            id: latchkey_saml::ids::new_id()?,
            issue_instant: now,
            destination: Some(destination.to_owned()),
            issuer: Some(self.entity_id().to_owned()),
            name_id: NameId {
                value: login.name_id.clone(),
                format: login.name_id_format.clone(),
                name_qualifier: None,
                sp_name_qualifier: None,
            },
            session_indexes: login.session_index.iter().cloned().collect(),
            not_on_or_after: Some(now + REQUEST_VALIDITY),
            reason: Some(reason::USER.to_owned()),
        };
        let xml = request.to_xml()?;
        let pending = PendingRequest {
            request_id: request.id.clone(),
            return_to: return_to.and_then(local_path),
            expires_at: now + self.request_lifetime(),
            // Its answer comes to the SingleLogoutService, which binds it to no browser.
            browser: None,
        };
        // Only a signed-in person starts a logout: bounded by the total, not per client.
        let relay_state = self.pending().insert(pending.clone(), None, now).await?;
        let query = signed_query(self, key, MessageKind::Request, &xml, Some(&relay_state))?;
        Ok(LogoutRedirect {
            url: redirect::url(destination, &query),
            relay_state,
            request: pending,
        })
    }

    /// Checks a logout message that reached our SingleLogoutService: a LogoutRequest from
    /// the IdP (recorded in `replay` so it acts once), or the IdP's LogoutResponse to a
    /// request of ours (whose pending entry is taken).
    pub async fn receive_logout<R: ReplayCache>(
        &self,
        message: SloMessage<'_>,
        replay: &R,
        now: OffsetDateTime,
    ) -> Result<SloReceived, Error> {
        let our_slo = self.slo_url().ok_or(LogoutError::NoSloUrl)?.to_owned();
        let inbound = self.decode(message)?;
        let idp = self.idp();
        let mut peer = LogoutPeer::new(&idp.entity_id, our_slo);
        peer.clock_skew = self.clock_skew();
        match inbound.kind() {
            MessageKind::Request => {
                let request: LogoutRequest = self.verified(&inbound, &idp, "a LogoutRequest")?;
                peer.check_request(&request, true, now).map_err(refused)?;
                let issuer = request.issuer.as_deref().unwrap_or_default();
                // After this instant the profile refuses the request as too old, so the
                // replay cache need not remember it longer.
                let window_end = request.issue_instant
                    + peer.max_age
                    + peer.clock_skew.clamp(Duration::ZERO, MAX_CLOCK_SKEW);
                let key = format!("logout-request:{issuer}:{}", request.id);
                match replay
                    .check_and_store(&key, request.issue_instant, window_end, now)
                    .await
                {
                    Ok(()) => {}
                    Err(Error::Replay(ReplayError::Replayed(_))) => {
                        return Err(LogoutError::Replayed(request.id).into());
                    }
                    Err(Error::Replay(ReplayError::Expired(_))) => {
                        return Err(refused(latchkey_saml::Error::LogoutExpired));
                    }
                    Err(other) => return Err(other),
                }
                Ok(SloReceived::Request(Box::new(IdpLogoutRequest {
                    request,
                    relay_state: inbound.relay_state().map(str::to_owned),
                })))
            }
            MessageKind::Response => {
                let response: LogoutResponse = self.verified(&inbound, &idp, "a LogoutResponse")?;
                let relay_state = inbound.relay_state().ok_or(LogoutError::UnknownRequest)?;
                let pending = self
                    .pending()
                    .take(relay_state, now)
                    .await?
                    .ok_or(LogoutError::UnknownRequest)?;
                peer.check_response(&response, &pending.request_id, true, now)
                    .map_err(refused)?;
                let status = &response.status;
                let outcome = if status.is_success() && status.sub_code.is_none() {
                    LogoutOutcome::Complete
                } else {
                    LogoutOutcome::Partial {
                        status: status.sub_code.clone().unwrap_or(status.code.clone()),
                    }
                };
                Ok(SloReceived::Response(LogoutCompleted {
                    request_id: pending.request_id,
                    outcome,
                    return_to: pending.return_to,
                }))
            }
        }
    }

    /// The URL that takes the browser back to the IdP with our signed LogoutResponse
    /// (HTTP-Redirect, Success) to `request`, once the application has ended the sessions
    /// it matches.
    pub fn answer_logout(
        &self,
        request: &IdpLogoutRequest,
        now: OffsetDateTime,
    ) -> Result<String, Error> {
        let key = self.key().ok_or(LogoutError::NoSigningKey)?;
        let idp = self.idp();
        let destination = idp_slo_url(&idp)?;
        let response = LogoutResponse {
            id: latchkey_saml::ids::new_id()?,
            in_response_to: Some(request.request.id.clone()),
            issue_instant: now,
            destination: Some(destination.to_owned()),
            issuer: Some(self.entity_id().to_owned()),
            status: Status::success(),
        };
        let xml = response.to_xml()?;
        let query = signed_query(
            self,
            key,
            MessageKind::Response,
            &xml,
            request.relay_state.as_deref(),
        )?;
        Ok(redirect::url(destination, &query))
    }

    fn decode(&self, message: SloMessage<'_>) -> Result<Inbound, Error> {
        match message {
            SloMessage::Redirect(query) => Ok(Inbound::Redirect(
                redirect::decode(query, self.limits()).map_err(refused)?,
            )),
            SloMessage::Post(form) => {
                let relay = form.relay_state.as_deref();
                let (kind, value) = match (&form.saml_request, &form.saml_response) {
                    (Some(v), None) => (MessageKind::Request, v),
                    (None, Some(v)) => (MessageKind::Response, v),
                    (Some(_), Some(_)) => {
                        return Err(refused(latchkey_saml::Error::AmbiguousMessage));
                    }
                    (None, None) => {
                        return Err(refused(latchkey_saml::Error::MissingParameter(
                            "SAMLRequest or SAMLResponse",
                        )));
                    }
                };
                let message = post::decode(kind, value, relay, self.limits()).map_err(refused)?;
                Ok(Inbound::Post { kind, message })
            }
        }
    }

    /// The message, read only from what the IdP's keys verified (over the query for
    /// HTTP-Redirect, enveloped for HTTP-POST).
    fn verified<T: inbound::Message>(
        &self,
        message: &Inbound,
        idp: &IdpTrust,
        wanted: &'static str,
    ) -> Result<T, Error> {
        let received = inbound::open::<T>(message)
            .map_err(|e| unexpected(e, wanted))?
            .verify(&idp.keys, &self.signature_policy(), Requirement::Required)
            .map_err(refused)?;
        Ok(received.message)
    }
}

/// A message of another kind than its binding field says is refused by name; any other
/// parse failure is the SAML layer's.
fn unexpected(e: latchkey_saml::Error, wanted: &'static str) -> Error {
    match e {
        latchkey_saml::Error::UnexpectedElement { .. } => {
            LogoutError::UnexpectedMessage(wanted).into()
        }
        other => refused(other),
    }
}

fn idp_slo_url(idp: &IdpTrust) -> Result<&str, Error> {
    Ok(idp.slo_url.as_deref().ok_or(LogoutError::NoIdpEndpoint)?)
}

fn signed_query(
    sp: &ServiceProvider,
    key: &SpKey,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
) -> Result<String, Error> {
    Ok(redirect::encode_signed(
        kind,
        xml,
        relay_state,
        &key.key,
        key.key.default_algorithm(),
        sp.limits(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn login(session_index: Option<&str>) -> SamlLogin {
        SamlLogin {
            issuer: "https://idp".into(),
            name_id: "alice".into(),
            name_id_format: Some("f".into()),
            session_index: session_index.map(str::to_owned),
            assertion_id: "_a".into(),
            authn_instant: datetime!(2026-11-28 14:00:00 UTC),
            authn_context_class_ref: None,
            session_not_on_or_after: None,
            attributes: BTreeMap::new(),
        }
    }

    fn request(
        issuer: &str,
        name: &str,
        format: Option<&str>,
        indexes: &[&str],
    ) -> IdpLogoutRequest {
        IdpLogoutRequest {
            request: LogoutRequest {
                id: "_l".into(),
                issue_instant: datetime!(2026-11-28 14:00:00 UTC),
                destination: None,
                issuer: Some(issuer.into()),
                name_id: NameId {
                    value: name.into(),
                    format: format.map(str::to_owned),
                    name_qualifier: None,
                    sp_name_qualifier: None,
                },
                session_indexes: indexes.iter().map(|s| (*s).to_owned()).collect(),
                not_on_or_after: None,
                reason: None,
            },
            relay_state: None,
        }
    }

    #[test]
    fn matching_a_local_session() {
        let s1 = login(Some("_s1"));
        assert!(request("https://idp", "alice", Some("f"), &[]).matches(&s1));
        assert!(request("https://idp", "alice", None, &["_s0", "_s1"]).matches(&s1));
        assert!(!request("https://idp", "alice", Some("f"), &["_s2"]).matches(&s1));
        assert!(!request("https://other", "alice", Some("f"), &[]).matches(&s1));
        assert!(!request("https://idp", "bob", Some("f"), &[]).matches(&s1));
        assert!(!request("https://idp", "alice", Some("g"), &[]).matches(&s1));
        // A login without a SessionIndex is ended only by a request naming none.
        assert!(!request("https://idp", "alice", Some("f"), &["_s1"]).matches(&login(None)));
        assert!(request("https://idp", "alice", Some("f"), &[]).matches(&login(None)));
    }
}
