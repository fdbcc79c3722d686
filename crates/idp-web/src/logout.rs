//! Single logout over the front channel (HTTP-Redirect and HTTP-POST).
//!
//! * SP-initiated: an application's LogoutRequest (to `/saml/slo`) is checked (signature
//!   against the app's registered certificates, Destination, age), the browser's IdP session
//!   is ended, every *other* application of that session is told in turn, and finally the
//!   asking application gets its LogoutResponse. A request that arrives by cross-site POST
//!   is parked and re-entered through `/saml/slo/continue/{key}`, a same-site GET, because
//!   the `SameSite=Lax` session cookie does not come with the POST.
//! * IdP-initiated: `POST /logout` ends the session and starts the same chain.
//!
//! The chain is parked between applications under a fresh key that travels as RelayState;
//! each application's LogoutResponse brings it back and the next one is asked, over the
//! binding it registered.
//!
//! # Security
//! * The IdP session ends first, so the chain only tells applications about a logout that
//!   has happened, and an application answering with a LogoutRequest of its own finds no
//!   session to start a chain from: the chain never restarts.
//! * Each application is in the chain at most once, the chain only shrinks, and a parked key
//!   is taken (deleted) when used, so a replayed answer continues nothing: no loop.
//! * A LogoutRequest acts once: its issuer and ID are recorded in the store (`latchkey_idp::sso`'s replay records)
//!   for the profile's time window, and a second arrival is refused (`SLO-REPLAYED`) on
//!   every node, before it can end a session or start a chain.
//! * A LogoutResponse is believed only if it verifies against the application's registered
//!   certificates (when it has any) and answers the LogoutRequest we sent it. One that does
//!   not is audited and the application is listed as unconfirmed; the chain goes on, since
//!   the user is already signed out of the IdP (best effort).

use std::net::SocketAddr;

use axum::Form;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_saml::assertion::{NameId, name_id_format};
use latchkey_saml::binding::{MessageKind, post, redirect};
use latchkey_saml::inbound::Inbound;
use latchkey_saml::logout::{LogoutRequest, LogoutResponse, reason};
use latchkey_saml::status::{Status, code};
use latchkey_xmlsec::dsig::{self, SignOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::html::{escape, page, refresh_page};
use super::login::continue_key;
use super::{WebError, WebState, client_addr, cookies};
use latchkey_idp::apps::{Application, Binding, Endpoint};
use latchkey_idp::audit::Actor;
use latchkey_idp::error::Error;
use latchkey_idp::ids::AppId;
use latchkey_idp::session::{Parkable, ParkedRequests, SessionApp, Sessions};
use latchkey_idp::sso::SsoError;
use latchkey_idp::sso::logout::{self as checks, AcceptedLogout, LogoutRefusal};
use latchkey_idp::sso::request::REQUEST_LIMITS;

/// The most applications one chain visits: a bound on the browser's trip even if the
/// session table were to hold something absurd.
const MAX_CHAIN: usize = 64;

/// The applications still to be told, parked between SPs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LogoutChain {
    /// The SessionIndex of the ended session.
    pub session_index: String,
    /// The applications left, in order (each at most once).
    pub remaining: Vec<ChainEntry>,
    /// The LogoutRequest whose answer the chain waits for.
    #[serde(default)]
    pub awaiting: Option<Awaiting>,
    /// Whether the browser's IdP session was ended by this logout.
    #[serde(default)]
    pub session_ended: bool,
    /// Applications that confirmed (display names), for the final page.
    #[serde(default)]
    pub signed_out: Vec<String>,
    /// Applications asked whose answer was missing, untrusted or not a success.
    #[serde(default)]
    pub unconfirmed: Vec<String>,
    /// Applications without a front-channel single-logout endpoint.
    #[serde(default)]
    pub without_slo: Vec<String>,
    /// The application that asked for the logout (SP-initiated), answered last.
    #[serde(default)]
    pub initiator: Option<Initiator>,
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

/// The LogoutRequest outstanding at one application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Awaiting {
    /// The application asked.
    pub app: AppId,
    /// Its display name.
    pub name: String,
    /// Our request's ID: the answer's InResponseTo must be this.
    pub request_id: String,
}

/// The application whose LogoutRequest started the chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Initiator {
    /// The application.
    pub app: AppId,
    /// Its request's ID, echoed as InResponseTo.
    pub request_id: String,
    /// Its RelayState, returned untouched.
    pub relay_state: Option<String>,
}

impl Parkable for LogoutChain {
    const KIND: &'static str = "slo";
}

impl LogoutChain {
    /// A chain over the applications a session signed in to, once that session has ended.
    pub fn new(session_index: String, apps: Vec<SessionApp>) -> Self {
        let mut remaining: Vec<ChainEntry> = Vec::new();
        for a in apps {
            if remaining.len() < MAX_CHAIN && !remaining.iter().any(|e| e.app == a.app) {
                remaining.push(ChainEntry {
                    app: a.app,
                    name_id: a.name_id,
                    name_id_format: a.name_id_format,
                });
            }
        }
        LogoutChain {
            session_index,
            remaining,
            session_ended: true,
            ..LogoutChain::default()
        }
    }
}

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
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let message = redirect::decode(&query, &REQUEST_LIMITS).map_err(binding_error)?;
    let message = Inbound::Redirect(message);
    if message.kind() == MessageKind::Response {
        return on_response(&state, &message).await;
    }
    let (accepted, app) = accept_request(&state, message).await?;
    let addr = client_addr(state.settings(), &headers, connect.as_deref());
    perform(&state, &headers, &addr, accepted, app).await
}

/// POST /saml/slo: the same over HTTP-POST. A LogoutRequest is checked here, then parked
/// and continued same-site (the session cookie does not come with a cross-site POST); a
/// LogoutResponse needs no cookie and is handled at once.
pub async fn slo_post(
    State(state): State<WebState>,
    form: Result<Form<SloForm>, FormRejection>,
) -> Result<Response, WebError> {
    slo_post_inner(&state, form).await.map(after_form)
}

async fn slo_post_inner(
    state: &WebState,
    form: Result<Form<SloForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|e| WebError::BadForm(e.body_text()))?;
    let relay_state = form.relay_state.as_deref();
    match (form.saml_request.as_deref(), form.saml_response.as_deref()) {
        (Some(value), None) => {
            let message = post::decode(MessageKind::Request, value, relay_state, &REQUEST_LIMITS)
                .map_err(binding_error)?;
            let kind = MessageKind::Request;
            let (accepted, _) = accept_request(state, Inbound::Post { kind, message }).await?;
            let key = ParkedRequests::new(state.store())
                .park(&accepted, state.store().now())
                .await?;
            Ok(Redirect::to(&format!("/saml/slo/continue/{key}")).into_response())
        }
        (None, Some(value)) => {
            let message = post::decode(MessageKind::Response, value, relay_state, &REQUEST_LIMITS)
                .map_err(binding_error)?;
            let kind = MessageKind::Response;
            on_response(state, &Inbound::Post { kind, message }).await
        }
        _ => Err(binding_error(latchkey_saml::Error::MissingParameter(
            "SAMLRequest",
        ))),
    }
}

/// GET /saml/slo/continue/{key}: a LogoutRequest that came by POST, now with the cookie.
pub async fn slo_continue(
    State(state): State<WebState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(key)) = key else {
        return Err(WebError::NotFound);
    };
    let key = continue_key(Some(&key)).ok_or(WebError::LogoutExpired)?;
    let parked = ParkedRequests::new(state.store());
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
    let addr = client_addr(state.settings(), &headers, connect.as_deref());
    // Still the navigation that the application's form POST started.
    perform(&state, &headers, &addr, accepted, app)
        .await
        .map(after_form)
}

/// Checks a LogoutRequest ([`checks::accept_request`]) and records it as used.
async fn accept_request(
    state: &WebState,
    message: Inbound,
) -> Result<(AcceptedLogout, Application), WebError> {
    checks::accept_request(
        state.store(),
        state.settings(),
        &message,
        state.store().now(),
    )
    .await
    .map_err(|e| match e {
        LogoutRefusal::Sso(e) => WebError::Logout(e),
        LogoutRefusal::Replayed => WebError::LogoutReplayed,
    })
}

/// Acts on an accepted LogoutRequest: ends the sessions it may end, then tells the
/// session's other applications and finally answers the asking one.
async fn perform(
    state: &WebState,
    headers: &HeaderMap,
    addr: &str,
    accepted: AcceptedLogout,
    app: Application,
) -> Result<Response, WebError> {
    let sessions = Sessions::new(state.store());
    let mut ended = 0u64;
    let mut chain = LogoutChain::default();
    if let Some(session) = state.session(headers).await? {
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
        if matches && let Some(token) = cookies::session_token(state.settings(), headers) {
            sessions.end(&token).await?;
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
    if chain.session_ended {
        chain.signed_out.push(app.settings.name.clone());
    }
    chain.initiator = Some(Initiator {
        app: app.id,
        request_id: accepted.request_id,
        relay_state: accepted.relay_state,
    });
    let mut response = next(state, chain).await?;
    if ended > 0
        && let Ok(v) = HeaderValue::from_str(&cookies::clear_session(state.settings()))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The registered single-logout endpoint, if it is one we can use from the browser.
fn front_channel(app: &Application) -> Option<&Endpoint> {
    app.settings
        .slo
        .as_ref()
        .filter(|e| matches!(e.binding, Binding::HttpRedirect | Binding::HttpPost))
}

/// Sends the browser to the next application with a single-logout endpoint, or ends the
/// chain (the initiator's LogoutResponse, or the signed-out page).
pub(crate) async fn next(state: &WebState, mut chain: LogoutChain) -> Result<Response, WebError> {
    let initiator = chain.initiator.as_ref().map(|i| i.app);
    while !chain.remaining.is_empty() {
        let entry = chain.remaining.remove(0);
        if Some(entry.app) == initiator {
            continue;
        }
        let app = match state.store().apps().get(entry.app).await {
            Ok(app) => app,
            Err(Error::UnknownApplication { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(endpoint) = front_channel(&app).cloned() else {
            chain.without_slo.push(app.settings.name.clone());
            continue;
        };
        let now = state.store().now();
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
        chain.awaiting = Some(Awaiting {
            app: app.id,
            name: app.settings.name.clone(),
            request_id: request.id.clone(),
        });
        let key = ParkedRequests::new(state.store()).park(&chain, now).await?;
        tracing::info!(app = %app.settings.entity_id, "single logout: asking the application");
        let xml = request.to_xml().map_err(build)?;
        return send(
            state,
            &endpoint,
            MessageKind::Request,
            &xml,
            &request.id,
            Some(&key),
        );
    }
    finish(state, chain).await
}

fn build(e: latchkey_saml::Error) -> WebError {
    WebError::Sso(SsoError::Build(e.to_string()))
}

/// Sends a logout message over the endpoint's binding, signed with the IdP's key (over the
/// query for Redirect, enveloped for POST).
fn send(
    state: &WebState,
    endpoint: &Endpoint,
    kind: MessageKind,
    xml: &str,
    id: &str,
    relay_state: Option<&str>,
) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    if endpoint.binding == Binding::HttpPost {
        let signed = dsig::sign(
            xml,
            id,
            &keys.key,
            Some(&keys.certificate),
            &SignOptions::default(),
        )
        .map_err(|e| WebError::Sso(SsoError::Build(e.to_string())))?;
        return super::saml::auto_post(&endpoint.url, kind, &signed, relay_state);
    }
    let query = redirect::encode_signed(
        kind,
        xml,
        relay_state,
        &keys.key,
        keys.key.default_algorithm(),
        &REQUEST_LIMITS,
    )
    .map_err(build)?;
    Ok(Redirect::to(&redirect::url(&endpoint.url, &query)).into_response())
}

/// The end of a chain: the initiator's LogoutResponse (PartialLogout when some application
/// did not confirm), or the signed-out page.
async fn finish(state: &WebState, chain: LogoutChain) -> Result<Response, WebError> {
    let Some(initiator) = &chain.initiator else {
        return Ok(signed_out_page(&chain));
    };
    let app = match state.store().apps().get(initiator.app).await {
        Ok(app) => app,
        Err(Error::UnknownApplication { .. }) => return Ok(signed_out_page(&chain)),
        Err(e) => return Err(e.into()),
    };
    let Some(endpoint) = front_channel(&app).cloned() else {
        return Ok(signed_out_page(&chain));
    };
    let status = if !chain.session_ended {
        // Nothing the request named was found, so nothing was ended: not a Success.
        Status::failure(
            code::REQUESTER,
            Some(code::UNKNOWN_PRINCIPAL),
            Some("no session named by the request was found"),
        )
    } else if chain.unconfirmed.is_empty() && chain.without_slo.is_empty() {
        Status::success()
    } else {
        Status {
            code: code::SUCCESS.into(),
            sub_code: Some(code::PARTIAL_LOGOUT.into()),
            message: None,
        }
    };
    let answer = LogoutResponse {
        id: latchkey_saml::ids::new_id().map_err(build)?,
        in_response_to: Some(initiator.request_id.clone()),
        issue_instant: state.store().now(),
        destination: Some(endpoint.url.clone()),
        issuer: Some(state.settings().entity_id.clone()),
        status,
    };
    let xml = answer.to_xml().map_err(build)?;
    send(
        state,
        &endpoint,
        MessageKind::Response,
        &xml,
        &answer.id,
        initiator.relay_state.as_deref(),
    )
}

/// An application's LogoutResponse: the parked chain (named by RelayState) goes on,
/// whatever the answer's verdict.
async fn on_response(state: &WebState, message: &Inbound) -> Result<Response, WebError> {
    let Some(key) = continue_key(message.relay_state()) else {
        return Ok(signed_out_page(&LogoutChain::default()));
    };
    let parked = ParkedRequests::new(state.store());
    let Some((mut chain, _)) = parked
        .peek::<LogoutChain>(&key, state.store().now())
        .await?
    else {
        return Ok(signed_out_page(&LogoutChain::default()));
    };
    if !parked.take::<LogoutChain>(&key).await? {
        return Ok(signed_out_page(&LogoutChain::default()));
    }
    if let Some(awaiting) = chain.awaiting.take() {
        let verdict = match state.store().apps().get(awaiting.app).await {
            Ok(app) => checks::check_response(
                state.settings(),
                &app,
                message,
                &awaiting.request_id,
                state.store().now(),
            ),
            Err(e) => Err(e.to_string()),
        };
        match verdict {
            Ok(true) => chain.signed_out.push(awaiting.name),
            Ok(false) => chain.unconfirmed.push(awaiting.name),
            Err(refusal) => {
                tracing::warn!(
                    code = "SLO-RESPONSE-REFUSED",
                    app = %awaiting.app,
                    reason = %refusal,
                    "single logout: an application's LogoutResponse was not trusted"
                );
                state
                    .metrics()
                    .failure(latchkey_idp::error::PageCode::SloResponseRefused);
                state
                    .audit(
                        &Actor::new(format!("app:{}", awaiting.app)),
                        "logout.response_refused",
                        "app",
                        awaiting.app.to_string(),
                        awaiting.name.clone(),
                        json!({ "reason": refusal, "in_response_to": awaiting.request_id }),
                    )
                    .await?;
                chain.unconfirmed.push(awaiting.name);
            }
        }
    }
    next(state, chain).await
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
    let mut page = Html(refresh_page(
        "Signing out",
        &location,
        "<p>Signing you out of your applications…</p>",
    ))
    .into_response();
    for cookie in response.headers().get_all(header::SET_COOKIE) {
        page.headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    page
}

/// The page at the end of a logout: what was signed out, and what may not have been.
pub(crate) fn signed_out_page(chain: &LogoutChain) -> Response {
    let mut body = String::new();
    if chain.session_ended || chain.initiator.is_none() {
        body.push_str("<p>You are signed out of Latchkey.</p>");
    } else {
        body.push_str("<p>No Latchkey session of yours was ended here.</p>");
    }
    let list = |title: &str, names: &[String], out: &mut String| {
        if names.is_empty() {
            return;
        }
        out.push_str(&format!("<p>{}</p><ul>", escape(title)));
        for n in names {
            out.push_str(&format!("<li>{}</li>", escape(n)));
        }
        out.push_str("</ul>");
    };
    list("Signed out of:", &chain.signed_out, &mut body);
    list(
        "These applications did not confirm the sign-out:",
        &chain.unconfirmed,
        &mut body,
    );
    list(
        "These applications do not support single logout:",
        &chain.without_slo,
        &mut body,
    );
    body.push_str(
        "<p>Close the browser to be sure every application forgets you.</p>\
         <p><a href=\"/login\">Sign in again</a></p>",
    );
    Html(page("Signed out", &body)).into_response()
}
