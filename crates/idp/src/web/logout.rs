//! IdP-initiated single logout: when the user signs out at the IdP, each application the
//! session signed in to (and that registered a single-logout URL) gets a signed
//! LogoutRequest, one after the other, over front-channel HTTP-Redirect.
//!
//! The IdP session is ended first, so the chain only ever tells SPs about a logout that has
//! happened. The rest of the chain is parked under a fresh key that travels as RelayState;
//! each SP's LogoutResponse (to `/saml/slo`) brings the key back and the next SP is asked. An
//! SP that never answers leaves the user on its page, already signed out of the IdP.

use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_saml::assertion::{NameId, name_id_format};
use latchkey_saml::binding::{MessageKind, redirect};
use latchkey_saml::logout::{LogoutRequest, reason};
use serde::{Deserialize, Serialize};

use super::html::page;
use super::{WebError, WebState};
use crate::error::Error;
use crate::ids::AppId;
use crate::session::{Parkable, ParkedRequests, SessionApp};
use crate::sso::SsoError;
use crate::sso::request::REQUEST_LIMITS;
use crate::store::timestamp;

/// The applications still to be told, parked between SPs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutChain {
    /// The SessionIndex of the ended session.
    pub session_index: String,
    /// The applications left, in order.
    pub remaining: Vec<ChainEntry>,
}

/// One application of a logout chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainEntry {
    /// The application.
    pub app: AppId,
    /// The NameID it was given.
    pub name_id: String,
    /// That NameID's format.
    pub name_id_format: String,
}

impl Parkable for LogoutChain {
    const KIND: &'static str = "slo";
}

impl LogoutChain {
    /// A chain over the applications a session signed in to.
    pub fn new(session_index: String, apps: Vec<SessionApp>) -> Self {
        LogoutChain {
            session_index,
            remaining: apps
                .into_iter()
                .map(|a| ChainEntry {
                    app: a.app,
                    name_id: a.name_id,
                    name_id_format: a.name_id_format,
                })
                .collect(),
        }
    }
}

/// Sends the browser to the next application with a single-logout URL, or shows the
/// signed-out page when none is left.
pub(crate) async fn next(state: &WebState, mut chain: LogoutChain) -> Result<Response, WebError> {
    while !chain.remaining.is_empty() {
        let entry = chain.remaining.remove(0);
        let app = match state.store().apps().get(entry.app).await {
            Ok(app) => app,
            Err(Error::UnknownApplication { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(endpoint) = app.settings.slo.clone() else {
            continue;
        };
        let now = timestamp::now();
        let build = |e: latchkey_saml::Error| WebError::Sso(SsoError::Build(e.to_string()));
        let mut name_id = NameId::new(entry.name_id.clone(), &entry.name_id_format);
        if entry.name_id_format == name_id_format::PERSISTENT
            || entry.name_id_format == name_id_format::TRANSIENT
        {
            name_id.name_qualifier = Some(state.settings().entity_id.clone());
            name_id.sp_name_qualifier = Some(app.settings.entity_id.clone());
        }
        let request = LogoutRequest {
            id: latchkey_saml::ids::new_id().map_err(build)?,
            issue_instant: now,
            destination: Some(endpoint.url.clone()),
            issuer: Some(state.settings().entity_id.clone()),
            name_id,
            session_indexes: vec![chain.session_index.clone()],
            not_on_or_after: Some(now + time::Duration::minutes(5)),
            reason: Some(reason::USER.into()),
        };
        let key = ParkedRequests::new(state.store()).park(&chain, now).await?;
        let keys = state.keys().current().map_err(SsoError::from)?;
        let query = redirect::encode_signed(
            MessageKind::Request,
            &request.to_xml().map_err(build)?,
            Some(&key),
            &keys.key,
            keys.key.default_algorithm(),
            &REQUEST_LIMITS,
        )
        .map_err(build)?;
        tracing::info!(app = %app.settings.entity_id, "single logout: asking the application");
        return Ok(Redirect::to(&redirect::url(&endpoint.url, &query)).into_response());
    }
    Ok(signed_out_page())
}

/// Picks the chain up again when an SP's LogoutResponse brings its key back.
pub(crate) async fn resume(state: &WebState, key: Option<&str>) -> Result<Response, WebError> {
    let Some(key) = super::login::continue_key(key) else {
        return Ok(signed_out_page());
    };
    let parked = ParkedRequests::new(state.store());
    let Some((chain, _)) = parked.peek::<LogoutChain>(&key, timestamp::now()).await? else {
        return Ok(signed_out_page());
    };
    if !parked.take::<LogoutChain>(&key).await? {
        return Ok(signed_out_page());
    }
    next(state, chain).await
}

/// The page at the end of a logout.
pub(crate) fn signed_out_page() -> Response {
    Html(page(
        "Signed out",
        "<p>You are signed out of Latchkey and of the applications that support single \
         logout. Close the browser to be sure other applications forget you too.</p>\
         <p><a href=\"/login\">Sign in again</a></p>",
    ))
    .into_response()
}
