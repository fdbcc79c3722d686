//! Single logout over the front channel (HTTP-Redirect and HTTP-POST).
//!
//! * SP-initiated: an application's LogoutRequest (to `/saml/slo`) is checked (signature
//!   against the app's registered certificates, Destination, age), the browser's IdP session
//!   is ended, every *other* application of that session is told, and finally the asking
//!   application gets its LogoutResponse. A request that arrives by cross-site POST is
//!   parked and re-entered through `/saml/slo/continue/{key}`, a same-site GET, because the
//!   `SameSite=Lax` session cookie does not come with the POST.
//! * IdP-initiated: `POST /logout` ends the session and tells every application the same way.
//!
//! The applications are told in parallel, one hidden frame each ([`run`]), as the
//! Shibboleth IdP and SimpleSAMLphp do: an application that is down, answers with an error
//! page or never answers holds up no other, and the last page says for each application
//! whether it confirmed, failed, did not answer or was not reached. Frames need no script;
//! a static one only moves on early once every frame has come back.
//!
//! # Security
//! * The IdP session ends first, so applications are only told about a logout that has
//!   happened, and an application answering with a LogoutRequest of its own finds no session
//!   to start another logout from: nothing restarts.
//! * Each application is told at most once per logout, and each of a run's records (the
//!   hop's request, what was sent, its outcome, the run itself) is taken when used, so a
//!   replayed answer or a reloaded frame changes nothing.
//! * A LogoutRequest acts once: its issuer and ID are recorded in the store (`latchkey_idp::sso`'s replay records)
//!   for the profile's time window, and a second arrival is refused (`SLO-REPLAYED`) on
//!   every node, before it can end a session or start a chain.
//! * An unsigned LogoutRequest (believed only under an application's legacy opt-in) can be
//!   sent by anyone, and each one accepted is a replay record and an audit line: it takes a
//!   throttle slot for its client network (`Slot::unsigned_logout`) before either is
//!   written, and past the bound is answered 429 `SLO-THROTTLED` with `Retry-After`, nothing
//!   recorded. One that ends the browser's own session gives its slot back. Signed ones are
//!   not counted; refused ones write nothing but a log line.
//! * A LogoutResponse is believed only if it verifies against the application's registered
//!   certificates (when it has any) and answers the LogoutRequest we sent it. One that does
//!   not is audited and the application is listed as failed (best effort: the user is
//!   already signed out of the IdP).

use axum::Form;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_saml::binding::{MessageKind, post, redirect};
use latchkey_saml::inbound::Inbound;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ClientAddress, SessionCookie};
use super::html::render;
use super::login::continue_key;
use super::pages::LogoutOnwardPage;
use super::{WebError, WebState, cookies};
use latchkey_idp::apps::Application;
use latchkey_idp::audit::Actor;
use latchkey_idp::error::{Error, PageCode};
use latchkey_idp::session::{Admission, Attempt, ParkOwner, Sessions, Slot, Throttle};
use latchkey_idp::sso::SsoError;
use latchkey_idp::sso::logout::{self as checks, AcceptedLogout, CheckedLogout, LogoutRefusal};
use latchkey_idp::sso::request::REQUEST_LIMITS;

mod run;

pub use run::{ChainEntry, Initiator, LogoutChain};
pub(crate) use run::{next, signed_out_page};
pub use run::{slo_done, slo_frame, slo_script};

/// The HTTP-POST binding's form for `/saml/slo`.
#[derive(Debug, Deserialize)]
pub struct SloForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

fn binding_error(e: latchkey_saml::Error) -> WebError {
    WebError::Logout(match e {
        latchkey_saml::Error::RelayStateTooLong { .. } => SsoError::RelayStateTooLong(e),
        other => SsoError::Binding(other),
    })
}

/// GET /saml/slo: a LogoutRequest from an SP, or an SP's LogoutResponse (HTTP-Redirect).
pub async fn slo_redirect(
    State(state): State<WebState>,
    cookie: SessionCookie,
    ClientAddress(addr): ClientAddress,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let message = redirect::decode(&query, &REQUEST_LIMITS).map_err(binding_error)?;
    let message = Inbound::Redirect(message);
    if message.kind() == MessageKind::Response {
        return run::on_response(&state, &message).await;
    }
    let (accepted, app) = accept_request(&state, &addr, message).await?;
    perform(&state, &cookie, &addr, accepted, app).await
}

/// POST /saml/slo: the same over HTTP-POST. A LogoutRequest is checked here, then parked
/// and continued same-site (the session cookie does not come with a cross-site POST); a
/// LogoutResponse needs no cookie and is handled at once.
pub async fn slo_post(
    State(state): State<WebState>,
    client: ClientAddress,
    form: Result<Form<SloForm>, FormRejection>,
) -> Result<Response, WebError> {
    slo_post_inner(&state, &client, form).await.map(after_form)
}

async fn slo_post_inner(
    state: &WebState,
    client: &ClientAddress,
    form: Result<Form<SloForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|e| WebError::BadForm(e.body_text()))?;
    let relay_state = form.relay_state.as_deref();
    match (form.saml_request.as_deref(), form.saml_response.as_deref()) {
        (Some(value), None) => {
            let message = post::decode(MessageKind::Request, value, relay_state, &REQUEST_LIMITS)
                .map_err(binding_error)?;
            let kind = MessageKind::Request;
            let now = state.store().now();
            let (checked, app) = checks::check_request(
                state.store(),
                state.settings(),
                &Inbound::Post { kind, message },
                now,
            )
            .await
            .map_err(refusal)?;
            // The slot, then the place, then the ID: a request refused any of them is not
            // used up and leaves nothing behind.
            let attempt = unsigned_slot(state, &client.0, &checked, &app).await?;
            let parked = state.parked();
            let key = match parked
                .park(checked.accepted(), &ParkOwner::network(&client.0), now)
                .await
            {
                Ok(key) => key,
                Err(e) => {
                    give_back(state, attempt).await?;
                    return Err(e.into());
                }
            };
            if let Err(e) = checked.record(state.store(), now).await {
                parked.take::<AcceptedLogout>(&key).await?;
                give_back(state, attempt).await?;
                return Err(refusal(e));
            }
            Ok(Redirect::to(&format!("/saml/slo/continue/{key}")).into_response())
        }
        (None, Some(value)) => {
            let message = post::decode(MessageKind::Response, value, relay_state, &REQUEST_LIMITS)
                .map_err(binding_error)?;
            let kind = MessageKind::Response;
            run::on_response(state, &Inbound::Post { kind, message }).await
        }
        _ => Err(binding_error(latchkey_saml::Error::MissingParameter(
            "SAMLRequest",
        ))),
    }
}

/// GET /saml/slo/continue/{key}: a LogoutRequest that came by POST, now with the cookie.
pub async fn slo_continue(
    State(state): State<WebState>,
    cookie: SessionCookie,
    ClientAddress(addr): ClientAddress,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(key)) = key else {
        return Err(WebError::NotFound);
    };
    let key = continue_key(Some(&key)).ok_or(WebError::LogoutExpired)?;
    let parked = state.parked();
    let Some((accepted, _)) = parked
        .peek::<AcceptedLogout>(&key, state.store().now())
        .await?
    else {
        return Err(WebError::LogoutExpired);
    };
    if !parked.take::<AcceptedLogout>(&key).await? {
        return Err(WebError::LogoutExpired);
    }
    let app = match state.store().apps().get(accepted.app).await {
        Ok(app) => app,
        Err(Error::UnknownApplication { app }) => {
            return Err(WebError::Logout(SsoError::UnknownIssuer(app)));
        }
        Err(e) => return Err(e.into()),
    };
    // Still the navigation that the application's form POST started.
    perform(&state, &cookie, &addr, accepted, app)
        .await
        .map(after_form)
}

/// Checks a LogoutRequest ([`checks::check_request`]), takes an unsigned one's slot
/// ([`unsigned_slot`]), then records it as used.
async fn accept_request(
    state: &WebState,
    addr: &str,
    message: Inbound,
) -> Result<(AcceptedLogout, Application), WebError> {
    let now = state.store().now();
    let (checked, app) = checks::check_request(state.store(), state.settings(), &message, now)
        .await
        .map_err(refusal)?;
    let attempt = unsigned_slot(state, addr, &checked, &app).await?;
    match checked.record(state.store(), now).await {
        Ok(accepted) => Ok((accepted, app)),
        Err(e) => {
            give_back(state, attempt).await?;
            Err(refusal(e))
        }
    }
}

/// Takes a throttle slot for an unsigned LogoutRequest ([`Slot::unsigned_logout`]), before
/// its replay record and audit line are written: anyone can send one to an application with
/// the legacy opt-in, so one client network gets a bounded number, then 429 with
/// `Retry-After` and nothing recorded. A signed (verified) request needs none: `None`.
async fn unsigned_slot(
    state: &WebState,
    addr: &str,
    checked: &CheckedLogout,
    app: &Application,
) -> Result<Option<Attempt>, WebError> {
    if checked.accepted().signed {
        return Ok(None);
    }
    match Throttle::new(state.store())
        .admit(vec![Slot::unsigned_logout(addr)], state.store().now())
        .await?
    {
        Admission::Admitted(attempt) => Ok(Some(attempt)),
        Admission::Refused { retry_after } => {
            tracing::info!(
                code = PageCode::SloThrottled.as_str(),
                app = %app.settings.entity_id,
                address = %addr,
                "unsigned LogoutRequest not acted on: too many from this client"
            );
            Err(WebError::LogoutThrottled(
                u64::try_from(retry_after.whole_seconds())
                    .unwrap_or(1)
                    .max(1),
            ))
        }
    }
}

/// Gives back the slot of a request that wrote nothing after all (refused a place, or a
/// replay).
async fn give_back(state: &WebState, attempt: Option<Attempt>) -> Result<(), WebError> {
    if let Some(attempt) = attempt {
        Throttle::new(state.store()).not_checked(attempt).await?;
    }
    Ok(())
}

fn refusal(e: LogoutRefusal) -> WebError {
    match e {
        LogoutRefusal::Sso(e) => WebError::logout(e),
        LogoutRefusal::Replayed => WebError::LogoutReplayed,
    }
}

/// Acts on an accepted LogoutRequest: ends the sessions it may end, then tells the
/// session's other applications and finally answers the asking one.
async fn perform(
    state: &WebState,
    cookie: &SessionCookie,
    addr: &str,
    accepted: AcceptedLogout,
    app: Application,
) -> Result<Response, WebError> {
    let sessions = Sessions::new(state.store());
    let mut ended = 0u64;
    let mut chain = LogoutChain::default();
    if let Some(session) = cookie.resume(state).await? {
        let apps = sessions.apps(&session).await?;
        // This browser's session is ended only when it is one the request names: signed in
        // to the asking application under that NameID, and, when the request lists
        // SessionIndexes, one of them (core §3.7.3.2).
        let named = accepted.session_indexes.is_empty()
            || accepted.session_indexes.contains(&session.session_index);
        let matches = named
            && apps
                .iter()
                .any(|a| a.app == app.id && a.name_id == accepted.name_id);
        if matches && let Some(token) = cookie.token() {
            sessions.end(token).await?;
            ended += 1;
            let others = apps.into_iter().filter(|a| a.app != app.id).collect();
            chain = LogoutChain::new(session.session_index.clone(), others);
        }
    }
    if accepted.signed
        && let Some(user) = state
            .store()
            .apps()
            .user_for_name_id(app.id, &accepted.name_id)
            .await?
    {
        let by_index = sessions
            .end_by_index(user, &accepted.session_indexes)
            .await?;
        ended += by_index;
        chain.session_ended |= by_index > 0;
    }
    state
        .audit(
            &Actor::new(format!("app:{}", app.id)),
            "logout.slo",
            "app",
            app.id.to_string(),
            app.settings.entity_id.clone(),
            json!({
                "signed": accepted.signed,
                "binding": accepted.binding,
                "sessions_ended": ended,
                "propagate_to": chain.remaining.len(),
                "address": addr,
            }),
        )
        .await?;
    if !accepted.signed && ended > 0 {
        // This browser signed in to the application: not the flood the slot bounds. The
        // logout has happened either way, so a slot not given back only costs a slot.
        if let Err(e) = Throttle::new(state.store())
            .succeeded_later(Slot::unsigned_logout(addr))
            .await
        {
            tracing::warn!(error = %e, "single logout: an unsigned request's slot was not given back");
        }
    }
    if chain.session_ended {
        chain.signed_out.push(app.settings.name.clone());
    }
    chain.initiator = Some(Initiator {
        app: app.id,
        request_id: accepted.request_id,
        relay_state: accepted.relay_state,
    });
    let mut response = next(state, chain, &ParkOwner::network(addr)).await?;
    if ended > 0
        && let Ok(v) = HeaderValue::from_str(&cookies::clear_session(state.settings()))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Turns an off-site redirect that answers a form submission into a page that refreshes to
/// it.
///
/// Browsers apply the submitting page's CSP `form-action` to every redirect that follows a
/// form POST (Chrome does). Ours allows `'self'` only, and an application's page may allow
/// only itself and the IdP, so a 303 from `POST /logout` (or from a POSTed logout message)
/// to the next application's SLO URL could be blocked. A meta refresh is a new navigation,
/// outside the form's policy. Same-site redirects and every other response pass unchanged.
pub(crate) fn after_form(response: Response) -> Response {
    if !response.status().is_redirection() {
        return response;
    }
    let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|l| !l.starts_with('/'))
        .map(str::to_owned)
    else {
        return response;
    };
    let mut page = render(&LogoutOnwardPage {
        title: "Signing out",
        url: &location,
    })
    .into_response();
    for cookie in response.headers().get_all(header::SET_COOKIE) {
        page.headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    page
}
