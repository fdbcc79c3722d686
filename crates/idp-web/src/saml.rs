//! The SAML endpoints: metadata, SSO (both bindings) and the same-site continuation
//! (single logout is in [`super::logout`]).
//!
//! Both bindings start the same way: the request is validated ([`latchkey_idp::sso::request`]).
//! When it arrived with a live session cookie and does not ask for a fresh sign-in, it is
//! answered at once: that is the common case (the user is already signed in), and it costs
//! one request instead of two (and no parked row). Otherwise it is parked, and the browser is sent with a
//! 303 to `/saml/continue/{key}`. That GET is same-site, so the `SameSite=Lax` session cookie
//! comes along even when the AuthnRequest arrived as a cross-site POST (which carries no
//! cookie, so it is never mistaken for "no session" and answered NoPassive too early).
//! Every sign-in (SP- or IdP-initiated, at once or after the park) is answered by the one
//! function [`issue`], which applies the access policy.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_saml::binding::{BindingLimits, MessageKind, post};
use latchkey_saml::status::{Status, code};
use serde::Deserialize;
use serde_json::json;

use super::extract::{ClientAddress, SessionCookie};
use super::login::continue_key;
use super::{WebError, WebState};
use latchkey_idp::apps::{AppRead, AppsVersion};
use latchkey_idp::audit::Actor;
use latchkey_idp::error::Error;
use latchkey_idp::error::PageCode;
use latchkey_idp::session::{Admission, ParkOwner, Session, SessionApp, Sessions, Slot, Throttle};
use latchkey_idp::sso::request::{self, InboundRequest, ValidatedRequest};
use latchkey_idp::sso::{Claim, PendingRequest, SsoError, authn, grant, metadata, response};

/// GET /saml/metadata
pub async fn metadata(State(state): State<WebState>) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    let xml = metadata::signed_metadata(state.settings(), &keys, state.store().now())?;
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
    cookie: SessionCookie,
    client: ClientAddress,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = query.unwrap_or_default();
    sso(
        &state,
        &cookie,
        &client,
        InboundRequest::Redirect { query: &query },
    )
    .await
}

/// POST /saml/sso (HTTP-POST binding)
pub async fn sso_post(
    State(state): State<WebState>,
    cookie: SessionCookie,
    client: ClientAddress,
    form: Result<Form<SamlForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(|e| WebError::BadForm(e.body_text()))?;
    let saml_request =
        form.saml_request
            .ok_or(SsoError::Binding(latchkey_saml::Error::MissingParameter(
                "SAMLRequest",
            )))?;
    let inbound = InboundRequest::Post {
        saml_request: &saml_request,
        relay_state: form.relay_state.as_deref(),
    };
    sso(&state, &cookie, &client, inbound).await
}

/// Both bindings: validates the request on this node's copy of the application, and
/// answers it once that copy is confirmed as current; when it is not, the request is
/// validated and answered again on the application read from the database, as if it had
/// just arrived (nothing was answered or recorded from the copy).
async fn sso(
    state: &WebState,
    cookie: &SessionCookie,
    client: &ClientAddress,
    inbound: InboundRequest<'_>,
) -> Result<Response, WebError> {
    let now = state.store().now();
    for read in [AppRead::Cached, AppRead::Fresh] {
        let validated =
            request::validate(state.store(), state.request_rules(), inbound, now, read).await?;
        if let Some(answer) = accept(state, cookie, client, validated).await? {
            return Ok(answer);
        }
    }
    Err(stale_twice())
}

/// What a sign-in answers if the application read from the database were taken for a
/// stale copy, which [`answer_or_park`] never does (it checks only copies).
pub(crate) fn stale_twice() -> WebError {
    WebError::Internal("the application read from the database was taken for a stale copy".into())
}

/// Answers a refusal or a signed-in user at once; otherwise parks the request and
/// continues same-site. `None` (nothing answered or recorded) when the request was
/// validated on a copy of the application that is no longer current.
async fn accept(
    state: &WebState,
    cookie: &SessionCookie,
    client: &ClientAddress,
    validated: ValidatedRequest,
) -> Result<Option<Response>, WebError> {
    if let Some(status) = validated.refusal {
        if !state
            .store()
            .apps()
            .confirm_now(validated.unconfirmed)
            .await?
        {
            return Ok(None);
        }
        let reason = match status.sub_code.as_deref() {
            Some(code::INVALID_NAMEID_POLICY) => PageCode::SsoNameidPolicy,
            Some(code::NO_AUTHN_CONTEXT) => PageCode::SsoAuthnContext,
            _ => PageCode::SsoRefused,
        };
        refusal_slot(state, client, reason, &validated.app).await?;
        return refuse(
            state,
            &validated.app,
            &validated.pending,
            status,
            reason,
            None,
            Some(validated.claim),
        )
        .await
        .map(Some);
    }
    answer_or_park(
        state,
        cookie,
        client,
        &validated.app,
        validated.unconfirmed,
        validated.pending,
        Some(validated.claim),
    )
    .await
}

/// Takes a slot for answering an anonymous request with an error Status. Anyone can send a
/// request that is refused, and each refusal is an audit line: one client network gets a
/// bounded number ([`ThrottlePolicy::REFUSED_REQUEST`]) before it is answered 429, the
/// request neither answered nor recorded.
///
/// [`ThrottlePolicy::REFUSED_REQUEST`]: latchkey_idp::session::ThrottlePolicy::REFUSED_REQUEST
async fn refusal_slot(
    state: &WebState,
    client: &ClientAddress,
    reason: PageCode,
    app: &latchkey_idp::apps::Application,
) -> Result<(), WebError> {
    if let Admission::Refused { retry_after } = Throttle::new(state.store())
        .admit(vec![Slot::refused_request(&client.0)], state.store().now())
        .await?
    {
        tracing::info!(
            code = reason.as_str(),
            app = %app.settings.entity_id,
            address = %client.0,
            "refused request not answered: too many from this client"
        );
        return Err(WebError::Throttled(
            u64::try_from(retry_after.whole_seconds())
                .unwrap_or(1)
                .max(1),
        ));
    }
    Ok(())
}

/// Issues at once for a live session when no fresh sign-in is asked for; otherwise parks
/// the request and sends the browser to the same-site continuation. Shared with the
/// portal's launch. `claim` is the AuthnRequest's ID not yet recorded as used (none for
/// an IdP-initiated launch): recorded with the answer's audit line, or once the request has
/// its place among the parked (counted against `client`'s network: nobody is signed in),
/// so a request refused for want of a place leaves no record either.
///
/// `app` read at `unconfirmed` is this node's copy: nothing is answered from it unless the
/// applications are still at that version (read with the session, or on its own before
/// parking); else `None`, and the caller decides again from the database.
pub(crate) async fn answer_or_park(
    state: &WebState,
    cookie: &SessionCookie,
    client: &ClientAddress,
    app: &latchkey_idp::apps::Application,
    unconfirmed: Option<AppsVersion>,
    pending: PendingRequest,
    claim: Option<Claim>,
) -> Result<Option<Response>, WebError> {
    let apps = state.store().apps();
    if !pending.force_authn
        && let Some((session, grant, current)) = cookie.resume_for(state, app.id).await?
    {
        if !apps.confirm(unconfirmed, current) {
            return Ok(None);
        }
        return issue(state, &session, &grant, app, &pending, claim)
            .await
            .map(Some);
    }
    // What is parked (the ACS above all) is answered later: it must be current now.
    if !apps.confirm_now(unconfirmed).await? {
        return Ok(None);
    }
    let parked = state.parked();
    let key = parked
        .park(
            &pending,
            &ParkOwner::network(&client.0),
            state.store().now(),
        )
        .await?;
    if let Err(replayed) = state.claim(claim).await {
        parked.take::<PendingRequest>(&key).await?;
        return Err(replayed);
    }
    Ok(Some(
        Redirect::to(&format!("/saml/continue/{key}")).into_response(),
    ))
}

/// Sends a SAML error Status to the (validated) ACS, and records why (with `claim`, the
/// request's ID if not yet recorded: a replay gets no Response).
async fn refuse(
    state: &WebState,
    app: &latchkey_idp::apps::Application,
    pending: &PendingRequest,
    status: Status,
    reason: PageCode,
    user: Option<&Session>,
    claim: Option<Claim>,
) -> Result<Response, WebError> {
    let keys = state.keys().current().map_err(SsoError::from)?;
    let sub_code = status.sub_code.clone();
    let xml = response::failure(
        state.settings(),
        &keys,
        pending,
        status,
        state.store().now(),
    )?;
    let actor = match user {
        Some(s) => Actor::person(&s.user),
        None => Actor::new("anonymous"),
    };
    state
        .audit_claiming(
            claim,
            &actor,
            "sso.refused",
            "app",
            app.id.to_string(),
            app.settings.entity_id.clone(),
            json!({ "reason": reason.as_str(), "status": sub_code, "in_response_to": pending.request_id }),
        )
        .await?;
    state.metrics().failure(reason);
    tracing::info!(code = reason.as_str(), app = %app.settings.entity_id, "answered the request with an error status");
    auto_post(
        &pending.acs_url,
        MessageKind::Response,
        &xml,
        pending.relay_state.as_deref(),
    )
}

/// GET /saml/continue/{key}
pub async fn resume(
    State(state): State<WebState>,
    cookie: SessionCookie,
    client: ClientAddress,
    key: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, WebError> {
    let Ok(Path(key)) = key else {
        return Err(WebError::NotFound);
    };
    let key = continue_key(Some(&key)).ok_or(WebError::RequestExpired)?;
    let now = state.store().now();
    let parked = state.parked();
    let Some((pending, parked_at)) = parked.peek::<PendingRequest>(&key, now).await? else {
        return Err(WebError::RequestExpired);
    };
    let session = cookie
        .resume(&state)
        .await?
        .filter(|s| !pending.force_authn || s.authn_at >= parked_at);
    match session {
        Some(session) => {
            if !parked.take::<PendingRequest>(&key).await? {
                return Err(WebError::RequestExpired);
            }
            let app = load_app(&state, &pending).await?;
            let grant = grant::load(state.store(), &session, &app).await?;
            // Its ID was recorded when it was parked.
            issue(&state, &session, &grant, &app, &pending, None).await
        }
        None if pending.is_passive => {
            let app = load_app(&state, &pending).await?;
            refusal_slot(&state, &client, PageCode::SsoNoPassive, &app).await?;
            if !parked.take::<PendingRequest>(&key).await? {
                return Err(WebError::RequestExpired);
            }
            let status = Status::failure(
                code::RESPONDER,
                Some(code::NO_PASSIVE),
                Some("the user is not signed in"),
            );
            refuse(
                &state,
                &app,
                &pending,
                status,
                PageCode::SsoNoPassive,
                None,
                None,
            )
            .await
        }
        None => Ok(Redirect::to(&format!("/login?continue={key}")).into_response()),
    }
}

async fn load_app(
    state: &WebState,
    pending: &PendingRequest,
) -> Result<latchkey_idp::apps::Application, WebError> {
    match state.store().apps().get(pending.app_id).await {
        Ok(app) => Ok(app),
        Err(Error::UnknownApplication { app }) => Err(SsoError::UnknownIssuer(app).into()),
        Err(e) => Err(e.into()),
    }
}

/// Answers a sign-in for a signed-in user, who holds `grant` at `app` (read with the
/// session or after it): the access policy, then the Response. `claim` (the request's
/// ID, if not yet recorded) is committed with the answer's audit line, or on its own once
/// the request is parked for a second factor.
async fn issue(
    state: &WebState,
    session: &Session,
    grant: &grant::Grant,
    app: &latchkey_idp::apps::Application,
    pending: &PendingRequest,
    mut claim: Option<Claim>,
) -> Result<Response, WebError> {
    let now = state.store().now();
    let user = &session.user;
    if !grant.may_access {
        let operation_id = crate::error::new_operation_id();
        state
            .audit_claiming(
                claim.take(),
                &Actor::person(user),
                "sso.denied",
                "app",
                app.id.to_string(),
                app.settings.entity_id.clone(),
                json!({
                    "reason": "not_assigned",
                    "user": user.username,
                    "operation_id": operation_id,
                }),
            )
            .await?;
        if pending.is_passive {
            // IsPassive forbids showing a page, even this one: answer the SP instead.
            let status = Status::failure(
                code::RESPONDER,
                Some(code::REQUEST_DENIED),
                Some("the user may not use this application"),
            );
            return refuse(
                state,
                app,
                pending,
                status,
                PageCode::SsoDenied,
                Some(session),
                claim.take(),
            )
            .await;
        }
        return Err(WebError::Denied {
            app: app.settings.name.clone(),
            operation_id,
        });
    }
    // The MFA policy and the request's RequestedAuthnContext, on the session as it is now.
    match authn::gate(state.settings(), session, grant, pending) {
        authn::Gate::Issue { .. } => {}
        authn::Gate::NoAuthnContext => {
            let status = Status::failure(
                code::RESPONDER,
                Some(code::NO_AUTHN_CONTEXT),
                Some("no authentication this identity provider offers meets the requested context"),
            );
            return refuse(
                state,
                app,
                pending,
                status,
                PageCode::SsoAuthnContext,
                Some(session),
                claim.take(),
            )
            .await;
        }
        gate @ (authn::Gate::StepUp | authn::Gate::Enrol) => {
            if pending.is_passive {
                // A second factor needs a page, which IsPassive forbids.
                let status = Status::failure(
                    code::RESPONDER,
                    Some(code::NO_PASSIVE),
                    Some("a second factor is needed and the request is passive"),
                );
                return refuse(
                    state,
                    app,
                    pending,
                    status,
                    PageCode::SsoNoPassive,
                    Some(session),
                    claim.take(),
                )
                .await;
            }
            let parked = state.parked();
            let key = parked.park(pending, &ParkOwner::user(user.id), now).await?;
            if let Err(replayed) = state.claim(claim.take()).await {
                parked.take::<PendingRequest>(&key).await?;
                return Err(replayed);
            }
            let enrol = if gate == authn::Gate::Enrol {
                "&enrol=1"
            } else {
                ""
            };
            let code = if enrol.is_empty() {
                PageCode::MfaStepUp
            } else {
                PageCode::MfaEnrol
            };
            tracing::info!(
                code = code.as_str(),
                app = %app.settings.entity_id,
                user = %user.username,
                "sign-in parked for a second factor"
            );
            return Ok(Redirect::to(&format!("/login/mfa?continue={key}{enrol}")).into_response());
        }
    }
    let keys = state.keys().current().map_err(SsoError::from)?;
    let issued = match response::success(
        state.store(),
        state.settings(),
        &keys,
        app,
        session,
        grant,
        pending,
        now,
    )
    .await
    {
        Ok(issued) => issued,
        Err(SsoError::NameIdPolicy(why)) => {
            // The SP asked for an identifier this user cannot have: it is told so, in
            // SAML, and decides (core §3.4.1.1).
            tracing::info!(app = %app.settings.entity_id, reason = %why, "NameID policy refused");
            let status = Status::failure(
                code::REQUESTER,
                Some(code::INVALID_NAMEID_POLICY),
                Some("the requested NameID cannot be made for this user"),
            );
            return refuse(
                state,
                app,
                pending,
                status,
                PageCode::SsoNameid,
                Some(session),
                claim.take(),
            )
            .await;
        }
        Err(SsoError::SubjectMismatch) => {
            // Another principal than the one signed in: never an assertion about someone
            // else (core §3.4.1). The page that follows at the SP can offer to sign in
            // again; here the SP is told in SAML.
            tracing::info!(app = %app.settings.entity_id, "AuthnRequest names another subject");
            let status = Status::failure(
                code::RESPONDER,
                Some(code::UNKNOWN_PRINCIPAL),
                Some("the signed-in user is not the subject the request names"),
            );
            return refuse(
                state,
                app,
                pending,
                status,
                PageCode::SsoNameid,
                Some(session),
                claim.take(),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    };
    let format = issued.name_id.format.clone().unwrap_or_default();
    let entry = SessionApp {
        app: app.id,
        name_id: issued.name_id.value.clone(),
        name_id_format: format.clone(),
    };
    // Single logout needs what each application was told; an unchanged answer (the usual
    // case with persistent NameIDs) is already on record.
    if grant.recorded.as_ref() != Some(&entry) {
        Sessions::new(state.store())
            .record_app(session, &entry, now)
            .await?;
    }
    // The request's ID is recorded in the same commit as this line: a replay racing this
    // one (here or at another node) gets no Response.
    state
        .audit_claiming(
            claim,
            &Actor::person(user),
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
        MessageKind::Response,
        &issued.xml,
        pending.relay_state.as_deref(),
    )
}

/// The auto-submitting page (a Response to an ACS, or a logout message to an SLO endpoint),
/// with a CSP that allows its one script (by hash) and a form post to the destination's
/// origin only.
pub(crate) fn auto_post(
    acs: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
) -> Result<Response, WebError> {
    let build = |e: String| WebError::Sso(SsoError::Build(e));
    let html = post::auto_submit_page(acs, kind, xml, relay_state, None, &BindingLimits::default())
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
