//! Sign-in and sign-out.
//!
//! # Security
//! * One message for every failure (unknown name, wrong password, suspended account, no
//!   password set), and the same Argon2 work for unknown names, so neither the page nor its
//!   timing tells which names exist.
//! * Attempts are throttled per account name, per client address and per both, in the
//!   store, shared by all nodes; a slot is taken before the password is checked (see
//!   [`latchkey_idp::session::Throttle`]). A browser that signed in to the account before is
//!   throttled on its own instead (see [`latchkey_idp::session::DeviceKeys`]), so an attacker's
//!   failures cannot keep the owner out.
//! * Password checks go through the store's bounded hash pool: past its bound the answer
//!   is 503 with `Retry-After`, never more memory.
//! * A successful sign-in always starts a new session (no fixation) and ends the one the
//!   browser had.
//! * The only redirect after sign-in is to `/saml/continue/<key>` with a key of the exact
//!   shape we issue, or to `/portal`: there is no open redirect.
//! * The form names the application a parked sign-in is for (escaped), read without taking
//!   the request; an unknown or expired key shows the plain form and says nothing about it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::{
    ClientAddress, CsrfField, CsrfForm, CsrfOnly, CsrfToken, DeviceCookie, SessionCookie,
};
use super::html::render as render_page;
use super::logout::{self, LogoutChain};
use super::pages::{LoginPage, SignOutPage};
use super::{WebError, WebState, client_of, cookies};
use latchkey_idp::Error;
use latchkey_idp::audit::Actor;
use latchkey_idp::directory::{Login, User};
use latchkey_idp::error::PageCode;
use latchkey_idp::mfa::Methods;
use latchkey_idp::password::Password;
use latchkey_idp::session::{Admission, Client, ParkOwner, Sessions, Slot, Throttle};
use latchkey_idp::sso::PendingRequest;

/// The one failure message.
const FAILED: &str = "Sign-in failed. Check your username and password; if they are right, your account may \
     not be able to sign in. Ask your administrator.";
/// Shown while throttled.
const THROTTLED: &str = "Too many failed attempts. Wait a few minutes and try again.";
/// Shown when the password check could not even start.
const BUSY: &str = "The sign-in service is busy. Wait a moment and try again.";

/// The longest username or e-mail address looked up.
const MAX_NAME: usize = 320;

/// `?continue=KEY` (a parked SAML request) or `?to=/admin/...` (the console page the
/// browser was sent from) on the login page.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "continue")]
    cont: Option<String>,
    to: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    csrf: Option<String>,
    #[serde(rename = "continue")]
    cont: Option<String>,
    to: Option<String>,
}

impl CsrfField for LoginForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Keeps only continue keys of the shape we issue (43 base64url characters).
pub(crate) fn continue_key(raw: Option<&str>) -> Option<String> {
    raw.filter(|k| {
        k.len() == 43
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
    .map(str::to_owned)
}

/// Keeps only a path of ours to return to after sign-in: `/admin` or below it, or
/// `/account`, in plain path characters (no query, no `//`, no `..`), so `to` can never
/// send a browser away.
pub(crate) fn return_path(raw: Option<&str>) -> Option<String> {
    raw.filter(|p| {
        (*p == "/admin" || p.starts_with("/admin/") || *p == "/account")
            && p.len() <= 200
            && !p.contains("//")
            && !p.contains("..")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_'))
    })
    .map(str::to_owned)
}

/// GET /login
pub async fn form(
    State(state): State<WebState>,
    cookie: SessionCookie,
    csrf: CsrfToken,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.ok().map(|Query(q)| q);
    let cont = query.as_ref().and_then(|q| continue_key(q.cont.as_deref()));
    let to = query.as_ref().and_then(|q| return_path(q.to.as_deref()));
    // Already signed in and nothing to continue: the form would only start a second session.
    if cont.is_none() && matches!(cookie.resume(&state).await, Ok(Some(_))) {
        return Redirect::to(to.as_deref().unwrap_or("/portal")).into_response();
    }
    render(
        &state,
        csrf,
        cont.as_deref(),
        to.as_deref(),
        "",
        None,
        StatusCode::OK,
    )
    .await
}

/// The name of the application a parked sign-in is for, if `cont` names one still parked.
///
/// Only a peek: the request stays parked for `/saml/continue`. Any failure (unknown or
/// expired key, the application removed meanwhile, a store error) leaves the form plain, so
/// the page tells a visitor nothing about keys they did not get from us.
pub(crate) async fn continuing_to(state: &WebState, cont: Option<&str>) -> Option<String> {
    let key = cont?;
    let parked = state.parked();
    let pending = match parked
        .peek::<PendingRequest>(key, state.store().now())
        .await
    {
        Ok(found) => found?.0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the parked request for the login page");
            return None;
        }
    };
    match state.store().apps().get(pending.app_id).await {
        Ok(app) => Some(app.settings.name),
        Err(e) => {
            tracing::debug!(error = %e, "the parked request's application is gone");
            None
        }
    }
}

async fn render(
    state: &WebState,
    csrf: CsrfToken,
    cont: Option<&str>,
    to: Option<&str>,
    username: &str,
    message: Option<&str>,
    status: StatusCode,
) -> Response {
    let passkeys = state.webauthn().is_some();
    let page = LoginPage {
        title: "Sign in",
        continuing_to: continuing_to(state, cont).await,
        message,
        csrf: csrf.value(),
        cont,
        to,
        username,
        reset: state.reset_desk().is_some(),
        passkeys,
    };
    let mut response = match render_page(&page) {
        Ok(html) => (status, csrf, html).into_response(),
        Err(e) => return e.into_response(),
    };
    if passkeys {
        // The passkey button's script (a file of ours) and its fetches to ourselves.
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(super::webauthn::CSP),
        );
    }
    response
}

/// POST /login
///
/// In this order, so that a burst cannot outrun the throttle or the memory bound: a cheap
/// lookup of the name; a slot under every throttle key, taken atomically; only then the
/// Argon2 check, through the store's bounded hash pool; then the outcome goes back to the
/// throttle (a success resets or gives back, a failure stays counted).
pub async fn submit(
    State(state): State<WebState>,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    cookie: SessionCookie,
    DeviceCookie(device): DeviceCookie,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, WebError> {
    let cont = continue_key(form.cont.as_deref());
    let to = return_path(form.to.as_deref());
    let now = state.store().now();
    let name = form.username.trim();
    let typed: String = name.chars().take(MAX_NAME).collect();
    let users = state.store().users();
    let user = if name.len() <= MAX_NAME {
        users.find_login(&typed).await?
    } else {
        None
    };
    let user_id = user.as_ref().map(|u| u.id);

    // A browser that signed in to this very account before counts its own failures only.
    let trusted = match (user_id, device) {
        (Some(id), Some(token)) => state.device_keys().await?.verify(&token, id),
        _ => None,
    };
    let slots = match &trusted {
        Some(nonce) => vec![Slot::device(nonce)],
        None => vec![
            Slot::pair(&typed, &addr),
            Slot::account(&typed),
            Slot::address(&addr),
        ],
    };
    let throttle = Throttle::new(state.store());
    let attempt = match throttle.admit(slots, now).await? {
        Admission::Admitted(attempt) => attempt,
        Admission::Refused { retry_after } => {
            state.metrics().login("failure");
            state.metrics().failure(PageCode::LoginThrottled);
            tracing::warn!(
                code = PageCode::LoginThrottled.as_str(),
                address = %addr,
                trusted = trusted.is_some(),
                "sign-in refused while throttled"
            );
            let seconds = u64::try_from(retry_after.whole_seconds()).unwrap_or(1);
            let page = Refusal::new(THROTTLED, StatusCode::TOO_MANY_REQUESTS, seconds);
            return Ok(refuse(&state, csrf, cont.as_deref(), &typed, page).await);
        }
    };

    let outcome = match users
        .check_password(user, Password::new(form.password))
        .await
    {
        Ok(outcome) => outcome,
        Err(e) => {
            // Not checked, so not a guess: the slots go back.
            throttle.not_checked(attempt).await?;
            let Error::Busy {
                retry_after_seconds,
                ..
            } = e
            else {
                return Err(e.into());
            };
            state.metrics().failure(PageCode::LoginBusy);
            tracing::warn!(code = PageCode::LoginBusy.as_str(), address = %addr, "sign-in refused: hash pool full");
            let page = Refusal::new(BUSY, StatusCode::SERVICE_UNAVAILABLE, retry_after_seconds);
            return Ok(refuse(&state, csrf, cont.as_deref(), &typed, page).await);
        }
    };
    let user = match outcome {
        Login::Success(user) => user,
        refused => {
            let reason = match (&refused, user_id) {
                (Login::Suspended(_), _) => "suspended",
                (_, None) => "unknown_user",
                _ => "bad_password",
            };
            state.metrics().login("failure");
            state.metrics().failure(match reason {
                "suspended" => PageCode::LoginSuspended,
                _ => PageCode::LoginFailed,
            });
            state
                .audit(
                    &Actor::new(format!("anonymous:{addr}")),
                    "login.failure",
                    "user",
                    user_id.map(|id| id.to_string()).unwrap_or_default(),
                    typed.clone(),
                    json!({
                        "reason": reason,
                        "address": addr,
                        "trusted_browser": trusted.is_some(),
                    }),
                )
                .await?;
            tracing::info!(reason, address = %addr, "sign-in failed");
            return Ok(render(
                &state,
                csrf,
                cont.as_deref(),
                to.as_deref(),
                &typed,
                Some(FAILED),
                StatusCode::UNAUTHORIZED,
            )
            .await);
        }
    };
    throttle.succeeded(attempt).await?;
    let client = client_of(&addr, &headers);
    let signed_in = start_session(
        &state,
        &cookie,
        &user,
        &client,
        cont.as_deref(),
        to,
        Methods::password(),
    )
    .await?;
    let mut response = Redirect::to(&signed_in.target).into_response();
    for cookie in signed_in.cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A user who just proved who they are, on their way in: where to go and the cookies to set.
pub(crate) struct SignedIn {
    /// The parked SAML request to continue, or the portal.
    pub(crate) target: String,
    /// The session cookie and the trusted-browser cookie.
    pub(crate) cookies: Vec<HeaderValue>,
}

/// Starts the session of a user who has just authenticated by `methods` (a password, a
/// passkey): ends the browser's old session (`old`), creates the new one, counts and audits
/// the sign-in, and makes the cookies. It goes on to the parked request `cont`, else to the
/// console page `to` (already checked by [`return_path`]), else to the portal. Every way of signing in ends here, so a session is
/// always made, recorded and trusted the same way.
pub(crate) async fn start_session(
    state: &WebState,
    old: &SessionCookie,
    user: &User,
    client: &Client,
    cont: Option<&str>,
    to: Option<String>,
    methods: Methods,
) -> Result<SignedIn, WebError> {
    let addr = client.address();
    let now = state.store().now();
    let sessions = Sessions::new(state.store());
    if let Some(old) = old.token() {
        sessions.end(old).await?;
    }
    let method: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    let (token, session) = sessions
        .create_with(
            user,
            methods,
            client,
            now,
            state.settings().session_absolute,
        )
        .await?;
    state.metrics().login("success");
    state
        .audit(
            &Actor::person(user),
            "login.success",
            "user",
            user.id.to_string(),
            user.username.clone(),
            json!({ "address": addr, "session_index": session.session_index, "methods": method }),
        )
        .await?;
    tracing::info!(user = %user.username, address = %addr, method = ?method, "signed in");
    let target = match (cont, to) {
        (Some(k), _) => format!("/saml/continue/{k}"),
        (None, Some(path)) => path,
        (None, None) => "/portal".to_owned(),
    };
    let device = state.device_keys().await?.issue(user.id);
    let cookies = [
        cookies::set_session(state.settings(), token.expose()),
        cookies::set_device(state.settings(), &device),
    ]
    .iter()
    .filter_map(|c| HeaderValue::from_str(c).ok())
    .collect();
    Ok(SignedIn { target, cookies })
}

/// A sign-in that was not checked (throttled, or the hash pool full): the form again,
/// with a message, a status and `Retry-After`.
struct Refusal {
    message: &'static str,
    status: StatusCode,
    retry_after_seconds: u64,
}

impl Refusal {
    fn new(message: &'static str, status: StatusCode, retry_after_seconds: u64) -> Self {
        Refusal {
            message,
            status,
            retry_after_seconds: retry_after_seconds.max(1),
        }
    }
}

async fn refuse(
    state: &WebState,
    csrf: CsrfToken,
    cont: Option<&str>,
    typed: &str,
    refusal: Refusal,
) -> Response {
    // A throttled sign-in starts over from the portal (`to` is not carried).
    let mut response = render(
        state,
        csrf,
        cont,
        None,
        typed,
        Some(refusal.message),
        refusal.status,
    )
    .await;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(refusal.retry_after_seconds),
    );
    response
}

/// GET /logout: a confirmation form (a GET must not end the session: links and prefetches
/// would sign people out).
pub async fn logout_form(csrf: CsrfToken) -> Result<Response, WebError> {
    let html = render_page(&SignOutPage {
        title: "Sign out",
        csrf: csrf.value(),
    })?;
    Ok((csrf, html).into_response())
}

/// POST /logout
pub async fn logout(
    State(state): State<WebState>,
    cookie: SessionCookie,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let sessions = Sessions::new(state.store());
    let mut chain = None;
    let mut owner = None;
    if let Some(session) = cookie.resume(&state).await? {
        let apps = sessions.apps(&session).await?;
        state
            .audit(
                &Actor::person(&session.user),
                "logout",
                "user",
                session.user.id.to_string(),
                session.user.username.clone(),
                json!({ "session_index": session.session_index, "applications": apps.len() }),
            )
            .await?;
        chain = Some(LogoutChain::new(session.session_index.clone(), apps));
        owner = Some(ParkOwner::user(session.user.id));
    }
    // The session ends before any application is told about it.
    if let Some(token) = cookie.token() {
        sessions.end(token).await?;
    }
    let mut response = match (chain, owner) {
        (Some(chain), Some(owner)) => {
            logout::after_form(logout::next(&state, chain, &owner).await?)
        }
        _ => logout::signed_out_page(&LogoutChain::default()),
    };
    if let Ok(v) = HeaderValue::from_str(&cookies::clear_session(state.settings())) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
