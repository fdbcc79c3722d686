//! Passkeys and security keys over HTTP: JSON endpoints for the ceremonies, the browser
//! script that calls `navigator.credentials` (`/static/webauthn.js`, which the sign-in page,
//! the second-step page and `/webauthn` load), and the page `/webauthn` to add a key and to
//! sign in with a passkey.
//!
//! * `POST /webauthn/register/start`, `.../register/finish`: a signed-in user enrols a key;
//!   a user who had no recovery codes (a first factor) gets ten in the answer, shown once
//!   by the script ([`crate::mfa::codes_for_new_factor`], as after a first TOTP app).
//! * `POST /webauthn/login/start`, `.../login/finish`: passwordless sign-in with a
//!   discoverable credential; a success starts the session exactly as the password form does
//!   ([`crate::login::start_session`]).
//! * `POST /webauthn/second-factor/start`, `.../second-factor/finish`: one of the signed-in
//!   user's keys as the second step after the password (or a step-up); a success steps the
//!   session up under a new token ([`crate::mfa::stepped_up`]) and answers where to go next.
//! * `GET /webauthn/credentials`, `POST /webauthn/credentials/{id}`: list, rename
//!   (`{"name": ...}`) or remove (`{}`) the signed-in user's credentials.
//!
//! Enrolling, renaming or removing a key of a user who already has a second factor needs a
//! session that used one (`WEBAUTHN-STEP-UP` otherwise; the one rule of every factor page,
//! `mfa::Available::step_up_needed`): a password alone must not let anyone add their own
//! key to the account.
//!
//! Every body is JSON under [`MAX_BODY`] (an attestation is a few kilobytes; anything
//! larger is refused before it is parsed). A refusal answers `{"code", "operation_id"}`
//! with a [`Code`], logs the detail under the operation ID, and writes an audit line
//! (`webauthn.refused`, or `login.failure` for a sign-in; an anonymous passwordless sign-in
//! only for a checked guess, which the throttle counted). The POSTs need
//! `Content-Type: application/json` (a cross-site page cannot send that without a CORS
//! preflight we never answer) and, when the browser sends one, our own `Origin`.

use crate::extract::PathSegment;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use latchkey_idp::audit::Actor;
use latchkey_idp::mfa::{AuthMethod, Methods};
use latchkey_idp::webauthn::{
    Ceremonies, Code, CredentialId, Credentials, PublicKeyCredential, Purpose,
    RegisterPublicKeyCredential, RelyingParty, WebauthnError,
};

use super::error::new_operation_id;
use super::extract::{ClientAddress, CurrentSession, SessionCookie};
use super::html::render;
use super::mfa::{self, Next, Then};
use super::pages::WebauthnPage;
use super::{WebError, WebState, login};
use latchkey_idp::mfa::Factors;
use latchkey_idp::session::{Keep, Session};

/// The largest body a WebAuthn endpoint reads: an attestation with a certificate chain is a
/// few kilobytes; 64 KiB leaves room and bounds what an anonymous request makes us parse.
pub const MAX_BODY: usize = 64 * 1024;

/// The policy of pages that run the script: our own script and fetches to ourselves,
/// nothing else.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The browser side: `navigator.credentials.create/get` and base64url conversion.
pub const SCRIPT: &str = include_str!("webauthn/webauthn.js");

/// A refusal as JSON.
struct Refused {
    code: Code,
    status: StatusCode,
    operation_id: String,
    retry_after: Option<u64>,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "code": self.code.as_str(), "operation_id": self.operation_id })),
        )
            .into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Malformed | Code::BadName => StatusCode::BAD_REQUEST,
        Code::Challenge
        | Code::WrongRelyingParty
        | Code::Refused
        | Code::CounterRegression
        | Code::UnknownCredential => StatusCode::UNAUTHORIZED,
        Code::Duplicate => StatusCode::CONFLICT,
        Code::TooMany | Code::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Code::SignInRequired | Code::StepUpRequired => StatusCode::FORBIDDEN,
        Code::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refused change to (or listing of) the signed-in user's keys, logged, audited as
/// `webauthn.refused` under `who`, and answered.
async fn refuse_key_change(
    state: &WebState,
    who: &Actor,
    addr: &str,
    error: &WebauthnError,
) -> Response {
    answer_refusal(
        state,
        Some(who),
        "webauthn.refused",
        addr,
        AuthMethod::Passkey,
        error,
    )
    .await
}

/// A refused second factor (a security key after a password, or a step-up), logged, audited
/// as `login.failure` under `who`, and answered.
async fn refuse_second_factor(
    state: &WebState,
    who: &Actor,
    addr: &str,
    error: &WebauthnError,
) -> Response {
    answer_refusal(
        state,
        Some(who),
        "login.failure",
        addr,
        AuthMethod::SecurityKey,
        error,
    )
    .await
}

/// A refused passwordless sign-in, which anyone can send: audited (`login.failure`) only
/// when it was a checked guess ([`WebauthnError::is_guess`]), which the throttle counted
/// first. What is refused before a slot (a body we cannot read, an unknown or used
/// ceremony, a throttled attempt, the ceremonies' cap) is only logged, so a burst of junk
/// costs no audit row, as a throttled password sign-in costs none.
async fn refuse_anonymous(state: &WebState, addr: &str, error: &WebauthnError) -> Response {
    let who = anonymous(addr);
    let audited = error.is_guess().then_some(&who);
    answer_refusal(
        state,
        audited,
        "login.failure",
        addr,
        AuthMethod::Passkey,
        error,
    )
    .await
}

/// Logs a refusal, audits it as `who` (none: not audited), and answers it.
async fn answer_refusal(
    state: &WebState,
    who: Option<&Actor>,
    action: &'static str,
    addr: &str,
    method: AuthMethod,
    error: &WebauthnError,
) -> Response {
    let code = error.code();
    let operation_id = new_operation_id();
    if code == Code::Internal {
        tracing::error!(code = code.as_str(), operation_id, address = addr, error = %error, "webauthn request failed");
    } else {
        tracing::warn!(code = code.as_str(), operation_id, address = addr, error = %error, "webauthn request refused");
    }
    if action == "login.failure" {
        state.metrics().login("failure");
    }
    if let Some(who) = who {
        let audited = state
            .audit(
                who,
                action,
                "user",
                String::new(),
                String::new(),
                json!({ "code": code.as_str(), "operation_id": operation_id, "address": addr, "method": method.as_str() }),
            )
            .await;
        if let Err(e) = audited {
            tracing::error!(operation_id, error = %e, "webauthn refusal not audited");
        }
    }
    let retry_after = error.retry_after_seconds().map(|s| s.max(1));
    Refused {
        code,
        status: status_of(code),
        operation_id,
        retry_after,
    }
    .into_response()
}

/// Reads a JSON body we asked for, refusing a wrong type, a foreign origin, an oversized or
/// unreadable body as [`Code::Malformed`] before anything else is done with it.
fn read_json<T: DeserializeOwned>(
    rp: &RelyingParty,
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<T, WebauthnError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json_type {
        return Err(WebauthnError::Malformed(
            "Content-Type is not application/json".into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && origin != rp.origin().origin().ascii_serialization()
    {
        return Err(WebauthnError::Malformed(format!(
            "request from origin {origin:?}"
        )));
    }
    // Past the router's body limit the body was not read at all.
    let body = body
        .as_ref()
        .map_err(|e| WebauthnError::Malformed(e.body_text()))?;
    if body.len() > MAX_BODY {
        return Err(WebauthnError::Malformed(format!(
            "body of {} bytes",
            body.len()
        )));
    }
    serde_json::from_slice(body).map_err(|e| WebauthnError::Malformed(e.to_string()))
}

/// With passkeys off (a base URL that cannot be a relying party), the JSON endpoints are not
/// there: 404, not a server fault for every request anyone sends them.
fn passkeys_on(state: &WebState) -> Result<(), WebError> {
    match state.webauthn() {
        Some(_) => Ok(()),
        None => Err(WebError::NotFound),
    }
}

/// The prologue of a signed-in user's ceremony: passkeys on (else 404), and the session
/// with the actor its changes and refusals are recorded under; `None` for a browser
/// without a session, which the caller answers with [`signed_out`].
fn signed_in(
    state: &WebState,
    session: Option<Session>,
) -> Result<Option<(Session, Actor)>, WebError> {
    passkeys_on(state)?;
    Ok(session.map(|session| {
        let actor = Actor::user(session.user.id);
        (session, actor)
    }))
}

/// The first step inside every ceremony: the relying party, and the request's JSON body.
fn ceremony<'s, T: DeserializeOwned>(
    state: &'s WebState,
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<(&'s RelyingParty, T), WebauthnError> {
    let rp = relying_party(state)?;
    Ok((rp, read_json(rp, headers, body)?))
}

fn relying_party(state: &WebState) -> Result<&RelyingParty, WebauthnError> {
    state
        .webauthn()
        .ok_or_else(|| WebauthnError::Config("no relying party for this base_url".into()))
}

/// `POST /webauthn/register/start`: the options for `navigator.credentials.create`.
pub async fn register_start(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let Some((session, actor)) = signed_in(&state, session)? else {
        return Ok(signed_out(&addr));
    };
    let started = async {
        let (rp, _) = ceremony::<Value>(&state, &headers, &body)?;
        may_change_keys(&state, &session).await?;
        Ceremonies::new(state.store(), rp)
            .start_registration(&session.user)
            .await
    }
    .await;
    Ok(match started {
        Ok(s) => Json(json!({ "handle": s.handle, "options": s.options })).into_response(),
        Err(e) => refuse_key_change(&state, &actor, &addr, &e).await,
    })
}

/// The body of `register/finish`.
#[derive(Deserialize)]
struct RegisterFinish {
    handle: String,
    name: String,
    credential: RegisterPublicKeyCredential,
}

/// `POST /webauthn/register/finish`: verifies and stores the new credential.
pub async fn register_finish(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let Some((session, actor)) = signed_in(&state, session)? else {
        return Ok(signed_out(&addr));
    };
    let done = async {
        let (rp, finish) = ceremony::<RegisterFinish>(&state, &headers, &body)?;
        may_change_keys(&state, &session).await?;
        Ceremonies::new(state.store(), rp)
            .finish_registration(
                &actor,
                &session.user,
                &finish.handle,
                &finish.credential,
                &finish.name,
            )
            .await
    }
    .await;
    Ok(match done {
        Ok(c) => {
            tracing::info!(user = %session.user.username, credential = %c.id, "webauthn credential enrolled");
            let mut answer = json!({ "id": c.id, "name": c.name });
            // As after a first TOTP app: codes, in this answer only (the script shows them).
            if let Some(codes) = mfa::codes_for_new_factor(&state, &session.user).await? {
                let codes: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
                answer["recovery_codes"] = json!(codes);
            }
            Json(answer).into_response()
        }
        Err(e) => refuse_key_change(&state, &actor, &addr, &e).await,
    })
}

/// `POST /webauthn/login/start`: the options for `navigator.credentials.get`, asking for any
/// passkey of ours.
pub async fn login_start(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    passkeys_on(&state)?;
    let started = async {
        let (rp, _) = ceremony::<Value>(&state, &headers, &body)?;
        Ceremonies::new(state.store(), rp)
            .start_sign_in(Purpose::Passwordless, None, &addr)
            .await
    }
    .await;
    Ok(match started {
        Ok(s) => Json(json!({ "handle": s.handle, "options": s.options })).into_response(),
        Err(e) => refuse_anonymous(&state, &addr, &e).await,
    })
}

/// The body of `login/finish`.
#[derive(Deserialize)]
struct LoginFinish {
    handle: String,
    credential: PublicKeyCredential,
    /// The parked SAML request to continue (as on the password form).
    #[serde(default, rename = "continue")]
    cont: Option<String>,
}

/// `POST /webauthn/login/finish`: verifies the assertion and starts the session; answers
/// `{"redirect": ...}` with the session cookies.
pub async fn login_finish(
    State(state): State<WebState>,
    headers: HeaderMap,
    cookie: SessionCookie,
    ClientAddress(addr): ClientAddress,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    passkeys_on(&state)?;
    let mut cont = None;
    let done = async {
        let (rp, finish) = ceremony::<LoginFinish>(&state, &headers, &body)?;
        cont = login::continue_key(finish.cont.as_deref());
        Ceremonies::new(state.store(), rp)
            .finish_passwordless(&finish.handle, &finish.credential, &addr)
            .await
    }
    .await;
    let (user, _credential) = match done {
        Ok(found) => found,
        Err(e) => return Ok(refuse_anonymous(&state, &addr, &e).await),
    };
    let client = super::client_of(&addr, &headers);
    let signed_in = login::start_session(
        &state,
        &cookie,
        &user,
        &client,
        cont.as_deref(),
        None,
        Methods::of(&[AuthMethod::Passkey]),
    )
    .await?;
    let mut response = Json(json!({ "redirect": signed_in.target })).into_response();
    for cookie in signed_in.cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `GET /webauthn/credentials`: the signed-in user's credentials (names, dates, never keys).
/// A user who has a second factor sees them only from a session that used one, as they
/// change them: a password alone learns nothing of the keys that guard the account.
pub async fn credentials(
    State(state): State<WebState>,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
) -> Result<Response, WebError> {
    let Some(session) = session else {
        return Ok(signed_out(&addr));
    };
    if let Err(e) = may_change_keys(&state, &session).await {
        let who = Actor::user(session.user.id);
        return Ok(refuse_key_change(&state, &who, &addr, &e).await);
    }
    let list = Credentials::new(state.store())
        .list(session.user.id)
        .await?;
    Ok(Json(json!({ "credentials": list })).into_response())
}

/// The body of a rename; an empty body (or `{}`) removes.
#[derive(Deserialize)]
struct Manage {
    /// The new name; absent to remove the credential.
    #[serde(default)]
    name: Option<String>,
}

/// `POST /webauthn/credentials/{id}`: `{"name": ...}` renames one of the signed-in user's
/// credentials, `{}` removes it. Both are audited (`webauthn.renamed`, `webauthn.removed`).
pub async fn manage(
    State(state): State<WebState>,
    PathSegment(id): PathSegment,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let Some((session, actor)) = signed_in(&state, session)? else {
        return Ok(signed_out(&addr));
    };
    let done = async {
        let (_, wanted) = ceremony::<Manage>(&state, &headers, &body)?;
        let id = uuid::Uuid::parse_str(&id)
            .map(CredentialId)
            .map_err(|_| WebauthnError::UnknownCredential)?;
        may_change_keys(&state, &session).await?;
        let credentials = Credentials::new(state.store());
        match wanted.name {
            Some(name) => credentials
                .rename(&actor, session.user.id, id, &name)
                .await
                .map(|c| json!({ "id": c.id, "name": c.name })),
            None => credentials
                .remove(&actor, session.user.id, id, Keep::Current(&session))
                .await
                .map(|()| json!({ "removed": id })),
        }
    }
    .await;
    Ok(match done {
        Ok(v) => Json(v).into_response(),
        Err(e) => refuse_key_change(&state, &actor, &addr, &e).await,
    })
}

/// A user who has a second factor adds, renames or removes keys only from a session that
/// used one: a password alone must not be enough to enrol the thief's key (or to remove the
/// owner's).
async fn may_change_keys(state: &WebState, session: &Session) -> Result<(), WebauthnError> {
    let available = Factors::new(state.store()).available(&session.user).await?;
    if available.step_up_needed(&session.methods) {
        return Err(WebauthnError::StepUpRequired);
    }
    Ok(())
}

/// `POST /webauthn/second-factor/start`: the options for `navigator.credentials.get`,
/// allowing the signed-in user's own keys: the second step after a password, or a step-up.
pub async fn second_factor_start(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let Some((session, actor)) = signed_in(&state, session)? else {
        return Ok(signed_out(&addr));
    };
    let started = async {
        let (rp, _) = ceremony::<Value>(&state, &headers, &body)?;
        Ceremonies::new(state.store(), rp)
            .start_sign_in(Purpose::SecondFactor, Some(&session.user), &addr)
            .await
    }
    .await;
    Ok(match started {
        Ok(s) => Json(json!({ "handle": s.handle, "options": s.options })).into_response(),
        Err(e) => refuse_second_factor(&state, &actor, &addr, &e).await,
    })
}

/// The body of `second-factor/finish`.
#[derive(Deserialize)]
struct SecondFactorFinish {
    handle: String,
    credential: PublicKeyCredential,
    /// The parked SAML request to continue.
    #[serde(default, rename = "continue")]
    cont: Option<String>,
    /// Or the page to go on to (`portal`, `account`...).
    #[serde(default)]
    then: Option<String>,
}

/// `POST /webauthn/second-factor/finish`: verifies the assertion against the user's own
/// keys (throttled like a password guess, by the domain), steps the session up under a new
/// token ([`mfa::stepped_up`]; the answer sets its cookie) and answers `{"redirect": ...}`.
pub async fn second_factor_finish(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let Some((session, actor)) = signed_in(&state, session)? else {
        return Ok(signed_out(&addr));
    };
    let mut next = Next::Page(Then::Portal);
    let done = async {
        let (rp, finish) = ceremony::<SecondFactorFinish>(&state, &headers, &body)?;
        next = Next::from_fields(finish.cont.as_deref(), finish.then.as_deref(), Then::Portal);
        Ceremonies::new(state.store(), rp)
            .finish_second_factor(&session.user, &finish.handle, &finish.credential, &addr)
            .await
    }
    .await;
    let credential = match done {
        Ok(c) => c,
        Err(e) => {
            return Ok(refuse_second_factor(&state, &actor, &addr, &e).await);
        }
    };
    let Some(renewed) = mfa::stepped_up(
        &state,
        &session,
        AuthMethod::SecurityKey,
        &addr,
        json!({ "credential": credential.id, "credential_name": credential.name }),
    )
    .await?
    else {
        return Ok(signed_out(&addr));
    };
    Ok((renewed, Json(json!({ "redirect": next.target() }))).into_response())
}

fn anonymous(addr: &str) -> Actor {
    Actor::new(format!("anonymous:{addr}"))
}

fn signed_out(addr: &str) -> Response {
    let operation_id = new_operation_id();
    tracing::info!(
        code = Code::SignInRequired.as_str(),
        operation_id,
        address = addr,
        "webauthn enrolment without a session"
    );
    Refused {
        code: Code::SignInRequired,
        status: StatusCode::FORBIDDEN,
        operation_id,
        retry_after: None,
    }
    .into_response()
}

/// `GET /static/webauthn.js`.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// `GET /webauthn`: add a key when signed in (after a step-up, for an account that has a
/// second factor); sign in with a passkey either way.
pub async fn page(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
) -> Result<Response, WebError> {
    let may_enrol = match &session {
        Some(s) => may_change_keys(&state, s).await.is_ok(),
        None => false,
    };
    let html = render(&WebauthnPage {
        title: "Passkeys and security keys",
        username: session.as_ref().map(|s| s.user.username.as_str()),
        may_enrol,
    })?;
    let mut response = html.into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A database busy with other writes answers 503 with `Retry-After` and its code, as
    /// every other surface does, not the 500 of a server fault.
    #[test]
    fn a_busy_database_answers_503_with_retry_after() {
        let error = WebauthnError::from(latchkey_idp::Error::Busy {
            what: latchkey_idp::error::DATABASE_CONTENDED,
            retry_after_seconds: 1,
        });
        let response = Refused {
            code: error.code(),
            status: status_of(error.code()),
            operation_id: "0123456789ab".into(),
            retry_after: error.retry_after_seconds(),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert_eq!(status_of(Code::CounterRegression), StatusCode::UNAUTHORIZED);
    }
}
