//! The SAML endpoints: metadata, SSO (both bindings), the same-site continuation, and
//! single logout.
//!
//! Both bindings end the same way: the request is validated ([`crate::sso::request`]),
//! parked, and the browser is sent with a 303 to `/saml/continue/{key}`. That GET is
//! same-site, so the `SameSite=Lax` session cookie comes along even when the AuthnRequest
//! arrived as a cross-site POST, and every sign-in (SP- or IdP-initiated) is answered by the
//! one function [`issue`], which applies the access policy.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::FormRejection;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_saml::binding::{BindingLimits, MessageKind, post, redirect};
use latchkey_saml::logout::{LogoutRequest, LogoutResponse};
use latchkey_saml::status::{Status, code};
use serde::Deserialize;
use serde_json::json;

use super::login::continue_key;
use super::{WebError, WebState, client_addr, cookies};
use crate::audit::Actor;
use crate::error::Error;
use crate::session::{ParkedRequests, Session, SessionApp, Sessions};
use crate::sso::request::{self, InboundRequest, REQUEST_LIMITS, ValidatedRequest, app_keys};
use crate::sso::{PendingRequest, SsoError, metadata, response};
use crate::store::timestamp;

/// GET /saml/metadata
pub async fn metadata(State(state): State<WebState>) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    let xml = metadata::signed_metadata(state.settings(), &keys, timestamp::now())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/samlmetadata+xml"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        xml,
    )
        .into_response())
}

/// The HTTP-POST binding's form.
#[derive(Debug, Deserialize)]
pub struct SamlForm {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// GET /saml/sso (HTTP-Redirect binding)
pub async fn sso_redirect(
    State(state): State<WebState>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let validated = request::validate(
        state.store(),
        state.settings(),
        InboundRequest::Redirect { query: &query },
        timestamp::now(),
    )
    .await?;
    accept(&state, validated).await
}

/// POST /saml/sso (HTTP-POST binding)
pub async fn sso_post(
    State(state): State<WebState>,
    form: Result<Form<SamlForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|e| WebError::BadForm(e.body_text()))?;
    let saml_request =
        form.saml_request
            .ok_or(SsoError::Binding(latchkey_saml::Error::MissingParameter(
                "SAMLRequest",
            )))?;
    let validated = request::validate(
        state.store(),
        state.settings(),
        InboundRequest::Post {
            saml_request: &saml_request,
            relay_state: form.relay_state.as_deref(),
        },
        timestamp::now(),
    )
    .await?;
    accept(&state, validated).await
}

/// Answers a refusal at once, or parks the request and continues same-site.
async fn accept(state: &WebState, validated: ValidatedRequest) -> Result<Response, WebError> {
    let now = timestamp::now();
    if let Some(status) = validated.refusal {
        let reason = match status.sub_code.as_deref() {
            Some(code::INVALID_NAMEID_POLICY) => "SSO-NAMEID-POLICY",
            Some(code::NO_AUTHN_CONTEXT) => "SSO-AUTHN-CONTEXT",
            _ => "SSO-REFUSED",
        };
        return refuse(
            state,
            &validated.app,
            &validated.pending,
            status,
            reason,
            None,
        )
        .await;
    }
    let key = ParkedRequests::new(state.store())
        .park(&validated.pending, now)
        .await?;
    Ok(Redirect::to(&format!("/saml/continue/{key}")).into_response())
}

/// Sends a SAML error Status to the (validated) ACS, and records why.
async fn refuse(
    state: &WebState,
    app: &crate::apps::Application,
    pending: &PendingRequest,
    status: Status,
    reason: &'static str,
    user: Option<&Session>,
) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    let sub_code = status.sub_code.clone();
    let xml = response::failure(state.settings(), &keys, pending, status, timestamp::now())?;
    state.metrics().failure(reason);
    let actor = match user {
        Some(s) => Actor::user(s.user.id),
        None => Actor::new("anonymous"),
    };
    state
        .audit(
            &actor,
            "sso.refused",
            "app",
            app.id.to_string(),
            app.settings.entity_id.clone(),
            json!({ "reason": reason, "status": sub_code, "in_response_to": pending.request_id }),
        )
        .await?;
    tracing::info!(code = reason, app = %app.settings.entity_id, "answered the request with an error status");
    auto_post(&pending.acs_url, &xml, pending.relay_state.as_deref())
}

/// GET /saml/continue/{key}
pub async fn resume(
    State(state): State<WebState>,
    headers: HeaderMap,
    key: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(key)) = key else {
        return Err(WebError::NotFound);
    };
    let key = continue_key(Some(&key)).ok_or(WebError::RequestExpired)?;
    let now = timestamp::now();
    let parked = ParkedRequests::new(state.store());
    let Some((pending, parked_at)) = parked.peek::<PendingRequest>(&key, now).await? else {
        return Err(WebError::RequestExpired);
    };
    let session = state
        .session(&headers)
        .await?
        .filter(|s| !pending.force_authn || s.authn_at >= parked_at);
    match session {
        Some(session) => {
            if !parked.take::<PendingRequest>(&key).await? {
                return Err(WebError::RequestExpired);
            }
            issue(&state, &session, &pending).await
        }
        None if pending.is_passive => {
            if !parked.take::<PendingRequest>(&key).await? {
                return Err(WebError::RequestExpired);
            }
            let app = load_app(&state, &pending).await?;
            let status = Status::failure(
                code::RESPONDER,
                Some(code::NO_PASSIVE),
                Some("the user is not signed in"),
            );
            refuse(&state, &app, &pending, status, "SSO-NO-PASSIVE", None).await
        }
        None => Ok(Redirect::to(&format!("/login?continue={key}")).into_response()),
    }
}

async fn load_app(
    state: &WebState,
    pending: &PendingRequest,
) -> Result<crate::apps::Application, WebError> {
    match state.store().apps().get(pending.app_id).await {
        Ok(app) => Ok(app),
        Err(Error::UnknownApplication { app }) => Err(SsoError::UnknownIssuer(app).into()),
        Err(e) => Err(e.into()),
    }
}

/// Answers a sign-in for a signed-in user: the access policy, then the Response.
async fn issue(
    state: &WebState,
    session: &Session,
    pending: &PendingRequest,
) -> Result<Response, WebError> {
    let now = timestamp::now();
    let app = load_app(state, pending).await?;
    let user = &session.user;
    if !state.store().apps().may_access(app.id, user).await? {
        state
            .audit(
                &Actor::user(user.id),
                "sso.denied",
                "app",
                app.id.to_string(),
                app.settings.entity_id.clone(),
                json!({ "reason": "not_assigned", "user": user.username }),
            )
            .await?;
        if pending.is_passive {
            // IsPassive forbids showing a page, even this one: answer the SP instead.
            let status = Status::failure(
                code::RESPONDER,
                Some(code::REQUEST_DENIED),
                Some("the user may not use this application"),
            );
            return refuse(state, &app, pending, status, "SSO-DENIED", Some(session)).await;
        }
        return Err(WebError::Denied {
            app: app.settings.name.clone(),
        });
    }
    let keys = state.keys().current().map_err(SsoError::from)?;
    let issued = response::success(
        state.store(),
        state.settings(),
        &keys,
        &app,
        user,
        session,
        pending,
        now,
    )
    .await?;
    let format = issued.name_id.format.clone().unwrap_or_default();
    Sessions::new(state.store())
        .record_app(
            session,
            &SessionApp {
                app: app.id,
                name_id: issued.name_id.value.clone(),
                name_id_format: format.clone(),
            },
            now,
        )
        .await?;
    state
        .audit(
            &Actor::user(user.id),
            "sso.assertion",
            "app",
            app.id.to_string(),
            app.settings.entity_id.clone(),
            json!({
                "user": user.username,
                "name_id": issued.name_id.value,
                "name_id_format": format,
                "attributes": issued.attribute_names,
                "acs": pending.acs_url,
                "in_response_to": pending.request_id,
                "assertion_id": issued.assertion_id,
            }),
        )
        .await?;
    state.metrics().assertion(&app.settings.entity_id);
    tracing::info!(user = %user.username, app = %app.settings.entity_id, "assertion issued");
    auto_post(
        &pending.acs_url,
        &issued.xml,
        pending.relay_state.as_deref(),
    )
}

/// The auto-submitting page, with a CSP that allows its one script (by hash) and a form
/// post to the ACS's origin only.
fn auto_post(acs: &str, xml: &str, relay_state: Option<&str>) -> Result<Response, WebError> {
    let build = |e: String| WebError::Sso(SsoError::Build(e));
    let html = post::auto_submit_page(
        acs,
        MessageKind::Response,
        xml,
        relay_state,
        None,
        &BindingLimits::default(),
    )
    .map_err(|e| build(e.to_string()))?;
    let origin = url::Url::parse(acs)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|e| build(e.to_string()))?;
    let csp = format!(
        "default-src 'none'; script-src {}; form-action {origin}; frame-ancestors 'none'; \
         base-uri 'none'",
        post::SCRIPT_CSP_HASH
    );
    let mut response = Html(html).into_response();
    let value = HeaderValue::from_str(&csp).map_err(|e| build(e.to_string()))?;
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, value);
    Ok(response)
}

/// GET /saml/slo: a LogoutRequest from an SP (HTTP-Redirect), or an SP's LogoutResponse.
///
/// # Security
/// A signed request (checked against the app's certificates) may end the sessions its NameID
/// and SessionIndexes name. An unsigned one (accepted only from apps without certificates,
/// when the server does not require signatures) ends at most this browser's own session, and
/// only if that session signed in to the app as that NameID.
pub async fn slo(
    State(state): State<WebState>,
    headers: HeaderMap,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    let message = redirect::decode(&query, &REQUEST_LIMITS).map_err(|e| match e {
        latchkey_saml::Error::RelayStateTooLong { .. } => SsoError::RelayStateTooLong(e),
        other => SsoError::Binding(other),
    })?;
    if message.kind == MessageKind::Response {
        // An SP answering our LogoutRequest: on to the next one in the chain.
        return super::logout::resume(&state, message.relay_state.as_deref()).await;
    }
    let request = LogoutRequest::parse(&message.xml).map_err(SsoError::Malformed)?;
    let issuer = request.issuer.clone().ok_or(SsoError::MissingIssuer)?;
    let app = state
        .store()
        .apps()
        .find_by_entity_id(&issuer)
        .await?
        .ok_or_else(|| SsoError::UnknownIssuer(issuer.chars().take(200).collect()))?;
    let keys = app_keys(&app)?;
    let signed = if !keys.is_empty() {
        message
            .verify(
                &keys,
                &[
                    latchkey_xmlsec::crypto::SignatureAlgorithm::RsaSha256,
                    latchkey_xmlsec::crypto::SignatureAlgorithm::RsaSha384,
                    latchkey_xmlsec::crypto::SignatureAlgorithm::RsaSha512,
                    latchkey_xmlsec::crypto::SignatureAlgorithm::EcdsaSha256,
                    latchkey_xmlsec::crypto::SignatureAlgorithm::EcdsaSha384,
                    latchkey_xmlsec::crypto::SignatureAlgorithm::EcdsaSha512,
                ],
            )
            .map_err(|e| match e {
                latchkey_saml::Error::Unsigned => SsoError::SignatureRequired,
                other => SsoError::SignatureInvalid(other.to_string()),
            })?;
        true
    } else if state.settings().require_signed_requests {
        return Err(SsoError::SignatureRequired.into());
    } else {
        false
    };

    let sessions = Sessions::new(state.store());
    let mut ended = 0u64;
    if let Some(session) = state.session(&headers).await? {
        let matches = sessions
            .apps(&session)
            .await?
            .iter()
            .any(|a| a.app == app.id && a.name_id == request.name_id.value);
        if matches && let Some(token) = cookies::session_token(state.settings(), &headers) {
            sessions.end(&token).await?;
            ended += 1;
        }
    }
    if signed
        && let Some(user) = state
            .store()
            .apps()
            .user_for_name_id(app.id, &request.name_id.value)
            .await?
    {
        ended += sessions
            .end_by_index(user, &request.session_indexes)
            .await?;
    }
    let addr = client_addr(state.settings(), &headers, connect.as_deref());
    state
        .audit(
            &Actor::new(format!("app:{}", app.id)),
            "logout.slo",
            "app",
            app.id.to_string(),
            app.settings.entity_id.clone(),
            json!({ "signed": signed, "sessions_ended": ended, "address": addr }),
        )
        .await?;

    let Some(endpoint) = &app.settings.slo else {
        return Ok(super::logout::signed_out_page());
    };
    let now = timestamp::now();
    let id = latchkey_saml::ids::new_id().map_err(|e| SsoError::Build(e.to_string()))?;
    let answer = LogoutResponse {
        id,
        in_response_to: Some(request.id.clone()),
        issue_instant: now,
        destination: Some(endpoint.url.clone()),
        issuer: Some(state.settings().entity_id.clone()),
        status: Status::success(),
    };
    let xml = answer
        .to_xml()
        .map_err(|e| SsoError::Build(e.to_string()))?;
    let material = state.keys().current().map_err(SsoError::from)?;
    let query = redirect::encode_signed(
        MessageKind::Response,
        &xml,
        message.relay_state.as_deref(),
        &material.key,
        material.key.default_algorithm(),
        &REQUEST_LIMITS,
    )
    .map_err(|e| SsoError::Build(e.to_string()))?;
    let mut response = Redirect::to(&redirect::url(&endpoint.url, &query)).into_response();
    if ended > 0
        && let Ok(v) = HeaderValue::from_str(&cookies::clear_session(state.settings()))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
