//! Second factors in the browser: the sign-in's second step and step-ups (`/login/mfa`),
//! TOTP enrolment (`/mfa/totp`) and recovery codes (`/mfa/recovery-codes`).
//!
//! * `/login/mfa` is where the SSO gate ([`latchkey_idp::sso::authn`]) sends a sign-in that
//!   needs a second factor (its request parked under `continue`), and where the portal
//!   sends a session that `[mfa] required` (or a user or group rule) finds short. It offers
//!   what the user has: a TOTP code, a security key or passkey (the JSON ceremony in
//!   [`super::webauthn`]), a recovery code. An accepted factor steps the *same* session up
//!   ([`Sessions::step_up`]: same SessionIndex, AuthnInstant now) and the browser goes on to
//!   `/saml/continue/{key}`, or to the page `then` names.
//! * A user with no factor is sent to `/mfa/totp` instead: the QR code and the secret, then
//!   a code from the app confirms the factor, which counts as the step-up; the first factor
//!   comes with ten recovery codes, shown once. The same page, without `continue`, adds an
//!   app from a signed-in session and returns to `/account`.
//!
//! # Security
//! * One answer for a wrong and a replayed code (`MFA-FAILED`); a throttled check is 429
//!   with `Retry-After` (`MFA-THROTTLED`) and checks nothing; input that cannot be a code
//!   is refused before it is counted (`MFA-MALFORMED`). Each refusal has an operation ID on
//!   the page, the same ID in the log line, and an audit line (`login.failure`, stage
//!   `second_factor`); each success `login.step_up`.
//! * A user who has a factor adds or replaces factors (a TOTP app, new recovery codes, a
//!   key at `/webauthn`) only from a session that used one: otherwise a stolen password
//!   would be enough to enrol the thief's own authenticator. Such requests are sent to step
//!   up first.
//! * Where a page goes next is `/saml/continue/{key}` with a key of the shape we issue, or
//!   one of a fixed list of our own pages ([`Then`]): never a URL from the request.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, IntoResponseParts, Redirect, Response, ResponseParts};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::extract::{ClientAddress, CsrfField, CsrfForm, CsrfToken, CurrentSession};
use super::html::render;
use super::pages::{RecoveryCodesPage, Refusal, SecondFactorPage, TotpEnrolPage};
use super::{WebError, WebState, cookies, login};
use latchkey_idp::audit::Actor;
use latchkey_idp::error::PageCode;
use latchkey_idp::mfa::policy::{MfaDecision, MfaPolicy, Target};
use latchkey_idp::mfa::recovery::{RecoveryCheck, RecoveryCodes};
use latchkey_idp::mfa::totp::{Enrolment, Totp, TotpCheck};
use latchkey_idp::mfa::{AuthMethod, Available, Factors, MfaError};
use latchkey_idp::session::{Keep, Session, Sessions};

/// The one answer for a wrong or replayed code.
const FAILED: &str = "That code was not accepted. Check the code and try again; a code works \
     once, so wait for the next one if you just used it.";
/// Shown while throttled.
const THROTTLED: &str = "Too many wrong codes. Wait a few minutes and try again.";
/// A TOTP code that cannot be one.
const MALFORMED_TOTP: &str = "A code from an authenticator app is 6 digits.";
/// A recovery code that cannot be one.
const MALFORMED_RECOVERY: &str =
    "A recovery code is 16 letters and digits (dashes and spaces do not matter).";
/// The enrolment being confirmed is gone.
const ENROL_EXPIRED: &str = "This set-up expired or was replaced. Scan the new code below \
     (remove the old entry from your app) and enter the code it shows.";
/// The name a new TOTP app gets (renamed on the account page).
const DEFAULT_NAME: &str = "Authenticator app";

/// One of our own pages a second-factor page may go on to (`then=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// The portal (the default after a step-up without a parked request).
    Portal,
    /// The account page (the default after adding a factor there).
    Account,
    /// Adding a TOTP app (after the step-up it needs).
    Totp,
    /// Recovery codes (after the step-up making new ones needs).
    RecoveryCodes,
    /// The passkey page (after the step-up adding a key needs).
    Webauthn,
    /// The admin console (`[console] require_mfa`).
    Console,
}

impl Then {
    fn parse(name: &str) -> Option<Then> {
        match name {
            "portal" => Some(Then::Portal),
            "account" => Some(Then::Account),
            "totp" => Some(Then::Totp),
            "recovery-codes" => Some(Then::RecoveryCodes),
            "webauthn" => Some(Then::Webauthn),
            "console" => Some(Then::Console),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Then::Portal => "portal",
            Then::Account => "account",
            Then::Totp => "totp",
            Then::RecoveryCodes => "recovery-codes",
            Then::Webauthn => "webauthn",
            Then::Console => "console",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Then::Portal => "/portal",
            Then::Account => "/account",
            Then::Totp => "/mfa/totp",
            Then::RecoveryCodes => "/mfa/recovery-codes",
            Then::Webauthn => "/webauthn",
            Then::Console => "/admin",
        }
    }
}

/// Where a second-factor page goes when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// The parked SAML sign-in, `/saml/continue/{key}`.
    Saml(String),
    /// One of our pages.
    Page(Then),
    /// The console page the step-up was asked for (`then=/admin/...`), a path checked by
    /// [`console_path`].
    Console(String),
}

/// A console page to come back to: `/admin` or a path below it, in plain path characters
/// (the one check of return paths, [`login::return_path`]: no scheme, no `//`, no `..`, no
/// backslash, no query). Anything else is `None`, and the caller goes to `/admin`.
pub(crate) fn console_path(raw: &str) -> Option<String> {
    login::return_path(Some(raw)).filter(|p| p == "/admin" || p.starts_with("/admin/"))
}

impl Next {
    /// From the `continue` and `then` fields: a well-formed key wins; a `then` that is a
    /// path is a console page ([`console_path`]; one that fails the check is `/admin`); an
    /// unknown `then` is the page's default.
    pub(crate) fn from_fields(cont: Option<&str>, then: Option<&str>, default: Then) -> Next {
        if let Some(key) = login::continue_key(cont) {
            return Next::Saml(key);
        }
        match then {
            Some(path) if path.starts_with('/') => match console_path(path) {
                Some(path) => Next::Console(path),
                None => Next::Page(Then::Console),
            },
            _ => Next::Page(then.and_then(Then::parse).unwrap_or(default)),
        }
    }

    /// The path to go to.
    pub(crate) fn target(&self) -> String {
        match self {
            Next::Saml(key) => format!("/saml/continue/{key}"),
            Next::Page(then) => then.path().to_owned(),
            Next::Console(path) => path.clone(),
        }
    }

    /// The `continue` field to carry.
    fn cont(&self) -> Option<&str> {
        match self {
            Next::Saml(key) => Some(key),
            Next::Page(_) | Next::Console(_) => None,
        }
    }

    /// The `then` field to carry.
    fn then(&self) -> Option<&str> {
        match self {
            Next::Saml(_) => None,
            Next::Page(then) => Some(then.as_str()),
            Next::Console(path) => Some(path),
        }
    }

    /// The query string that carries this on to another second-factor page.
    pub(crate) fn query(&self) -> String {
        match self {
            Next::Saml(key) => format!("?continue={key}"),
            Next::Page(then) => format!("?then={}", then.as_str()),
            // Plain path characters (console_path): nothing to escape.
            Next::Console(path) => format!("?then={path}"),
        }
    }

    /// The sign-in form, for a browser that has no session (any more).
    fn to_login(&self) -> Response {
        match self {
            Next::Saml(key) => Redirect::to(&format!("/login?continue={key}")).into_response(),
            Next::Console(path) => Redirect::to(&format!("/login?to={path}")).into_response(),
            Next::Page(_) => Redirect::to("/login").into_response(),
        }
    }
}

/// `?continue=KEY&then=PAGE` (and `&enrol=1` from the SSO gate, which the page decides for
/// itself from the user's factors).
#[derive(Debug, Default, Deserialize)]
pub struct FlowQuery {
    #[serde(rename = "continue")]
    cont: Option<String>,
    then: Option<String>,
}

fn flow(query: Result<Query<FlowQuery>, QueryRejection>) -> FlowQuery {
    query.map(|Query(q)| q).unwrap_or_default()
}

/// A store or sealing failure behind a second-factor page: a server fault.
fn internal(e: MfaError) -> WebError {
    match e {
        MfaError::Store(e) => e.into(),
        other => WebError::Internal(other.to_string()),
    }
}

/// The policy for pages that run the passkey script: our own script and fetches to
/// ourselves, nothing else (as [`super::webauthn`]'s).
fn with_script_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(super::webauthn::CSP),
    );
    response
}

/// Whether a user who has a factor must step up before changing their factors: a session
/// that used only a password cannot add or replace them. Answers where to send it.
fn step_up_first(
    session: &Session,
    available: &Available,
    next: &Next,
    back: Then,
) -> Option<Response> {
    if !available.step_up_needed(&session.methods) {
        return None;
    }
    let query = match next {
        // A parked sign-in: the user has a factor, so the step-up is what it needs.
        Next::Saml(key) => format!("?continue={key}"),
        Next::Page(_) | Next::Console(_) => format!("?then={}", back.as_str()),
    };
    Some(Redirect::to(&format!("/login/mfa{query}")).into_response())
}

/// A factor was just added (a TOTP app, a passkey or security key): a user who has no
/// recovery codes (it is their first factor, or they used them all) gets ten, to be shown
/// in this answer only: the way back in if the factor is lost. The one rule for every kind
/// of factor.
pub(crate) async fn codes_for_new_factor(
    state: &WebState,
    user: &latchkey_idp::directory::User,
) -> Result<Option<Vec<Zeroizing<String>>>, WebError> {
    let codes = RecoveryCodes::new(state.store());
    if codes.remaining(user).await.map_err(internal)? > 0 {
        return Ok(None);
    }
    // None left, so none replaced: no session ends (were some made meanwhile, the
    // replacement ends every session, the safe side).
    let made = codes
        .regenerate(&Actor::user(user.id), user, Keep::Nothing)
        .await
        .map_err(internal)?;
    tracing::info!(user = %user.username, "first factor: recovery codes made");
    Ok(Some(made))
}

/// A session stepped up under a new token ([`Sessions::step_up`]): returned with the
/// answer, it sets the session cookie to that token.
pub(crate) struct SteppedUp {
    cookie: Option<HeaderValue>,
}

impl IntoResponseParts for SteppedUp {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        if let Some(cookie) = self.cookie {
            res.headers_mut().append(header::SET_COOKIE, cookie);
        }
        Ok(res)
    }
}

/// The one second-factor gate of the IdP's own pages (the portal, the account page, the
/// console): whether this session's sign-in meets what `[mfa] required`, a group or the user
/// asks, plus `page_requires`, the page's own rule (`[console] require_mfa` for the
/// console). They are no application, so no application rule applies; the one MFA decision
/// ([`MfaPolicy::decide`]) answers. A session short of it is logged naming `page`.
pub(crate) async fn own_page_satisfied(
    state: &WebState,
    session: &Session,
    page_requires: bool,
    page: &str,
) -> Result<bool, WebError> {
    if session.methods.multi_factor() {
        // What `decide` answers for two factors and no requested context, without the
        // policy's queries on every page.
        return Ok(true);
    }
    let settings = state.settings();
    let decision = MfaPolicy::new(state.store())
        .decide(
            &session.user,
            Target::Portal,
            &session.methods,
            None,
            settings.mfa_required || page_requires,
            settings.https,
        )
        .await?;
    if matches!(decision, MfaDecision::Satisfied { .. }) {
        return Ok(true);
    }
    tracing::info!(user = %session.user.username, ?decision, page, "page needs a second factor");
    Ok(false)
}

/// A second factor was accepted: the session steps up under a new token (no token from
/// before the second factor is worth anything after it), the audit says so. `None` when
/// the session ended meanwhile: the browser is signed out.
pub(crate) async fn stepped_up(
    state: &WebState,
    session: &Session,
    method: AuthMethod,
    addr: &str,
    detail: Value,
) -> Result<Option<SteppedUp>, WebError> {
    let now = state.store().now();
    let Some((token, session)) = Sessions::new(state.store())
        .step_up(session, method, now)
        .await?
    else {
        tracing::info!(user = %session.user.username, address = %addr, "second factor accepted, but the session ended meanwhile");
        return Ok(None);
    };
    let methods: Vec<&str> = session.methods.iter().map(AuthMethod::as_str).collect();
    let user = &session.user;
    let mut details = json!({
        "address": addr,
        "session_index": session.session_index,
        "method": method.as_str(),
        "methods": methods,
    });
    if let (Some(d), Value::Object(extra)) = (details.as_object_mut(), detail) {
        d.extend(extra);
    }
    state
        .audit(
            &Actor::user(user.id),
            "login.step_up",
            "user",
            user.id.to_string(),
            user.username.clone(),
            details,
        )
        .await?;
    tracing::info!(user = %user.username, address = %addr, method = method.as_str(), "second factor accepted; session stepped up");
    let cookie =
        HeaderValue::from_str(&cookies::set_session(state.settings(), token.expose())).ok();
    Ok(Some(SteppedUp { cookie }))
}

/// A refused second factor: counted, logged and audited under a fresh operation ID, which
/// the page shows.
async fn refused(
    state: &WebState,
    session: &Session,
    method: AuthMethod,
    addr: &str,
    code: PageCode,
    reason: &'static str,
    message: &'static str,
) -> Result<Refusal, WebError> {
    let operation_id = super::error::new_operation_id();
    let user = &session.user;
    state.metrics().failure(code);
    tracing::warn!(
        code = code.as_str(),
        operation_id,
        user = %user.username,
        address = %addr,
        method = method.as_str(),
        reason,
        "second factor refused"
    );
    state
        .audit(
            &Actor::user(user.id),
            "login.failure",
            "user",
            user.id.to_string(),
            user.username.clone(),
            json!({
                "stage": "second_factor",
                "method": method.as_str(),
                "reason": reason,
                "code": code.as_str(),
                "operation_id": operation_id,
                "address": addr,
            }),
        )
        .await?;
    Ok(Refusal {
        message,
        code: code.as_str(),
        operation_id,
    })
}

/// The status a refusal is answered with.
fn status_of(code: &str) -> StatusCode {
    match code {
        c if c == PageCode::MfaThrottled.as_str() => StatusCode::TOO_MANY_REQUESTS,
        c if c == PageCode::MfaFailed.as_str() => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn retry_after(response: &mut Response, seconds: Option<u64>) {
    if let Some(s) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
    }
}

fn seconds(d: time::Duration) -> u64 {
    u64::try_from(d.whole_seconds()).unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------------------
// /login/mfa

/// GET /login/mfa: the second step of a sign-in, or a step-up of a live session.
pub async fn second_factor(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    query: Result<Query<FlowQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let q = flow(query);
    let next = Next::from_fields(q.cont.as_deref(), q.then.as_deref(), Then::Portal);
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    if session.methods.multi_factor() {
        // Nothing to add (a second tab, the back button): on to where it was going.
        return Ok(Redirect::to(&next.target()).into_response());
    }
    let available = Factors::new(state.store()).available(&session.user).await?;
    if !available.any_factor() {
        return Ok(Redirect::to(&format!("/mfa/totp{}", next.query())).into_response());
    }
    show_second_factor(
        &state,
        csrf,
        &session,
        &next,
        available,
        None,
        false,
        StatusCode::OK,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn show_second_factor(
    state: &WebState,
    csrf: CsrfToken,
    session: &Session,
    next: &Next,
    available: Available,
    refusal: Option<Refusal>,
    recovery_open: bool,
    status: StatusCode,
) -> Result<Response, WebError> {
    let security_key = available.webauthn && state.webauthn().is_some();
    let page = SecondFactorPage {
        title: "Second factor",
        continuing_to: login::continuing_to(state, next.cont()).await,
        username: &session.user.username,
        refusal,
        csrf: csrf.value(),
        cont: next.cont(),
        then: next.then(),
        totp: available.totp,
        security_key,
        recovery: available.recovery_codes > 0,
        recovery_open,
    };
    let html = render(&page)?;
    let response = (status, csrf, html).into_response();
    Ok(if security_key {
        with_script_policy(response)
    } else {
        response
    })
}

/// The second-step form.
#[derive(Debug, Deserialize)]
pub struct SecondFactorForm {
    csrf: Option<String>,
    #[serde(rename = "continue")]
    cont: Option<String>,
    then: Option<String>,
    /// `totp` (the default) or `recovery_code`.
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
}

impl CsrfField for SecondFactorForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// What a code check came to, TOTP or recovery code alike.
enum Checked {
    Accepted(Value),
    Refused(&'static str),
    Throttled(time::Duration),
}

/// POST /login/mfa: checks a TOTP or recovery code; on success the session steps up and
/// the browser goes on.
pub async fn second_factor_submit(
    State(state): State<WebState>,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<SecondFactorForm>,
) -> Result<Response, WebError> {
    let next = Next::from_fields(form.cont.as_deref(), form.then.as_deref(), Then::Portal);
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    let user = &session.user;
    let method = if form.method == "recovery_code" {
        AuthMethod::RecoveryCode
    } else {
        AuthMethod::Totp
    };
    let checked = match method {
        AuthMethod::RecoveryCode => RecoveryCodes::new(state.store())
            .consume(user, &form.code, &addr)
            .await
            .map(|c| match c {
                RecoveryCheck::Accepted { remaining } => {
                    Checked::Accepted(json!({ "recovery_codes_left": remaining }))
                }
                RecoveryCheck::Wrong => Checked::Refused("wrong_code"),
                RecoveryCheck::Throttled { retry_after } => Checked::Throttled(retry_after),
            }),
        _ => Totp::new(state.store(), state.sealing_kek()?)
            .verify(user, &form.code, &addr)
            .await
            .map(|c| match c {
                TotpCheck::Accepted { factor_id } => {
                    Checked::Accepted(json!({ "factor_id": factor_id }))
                }
                TotpCheck::Wrong => Checked::Refused("wrong_code"),
                TotpCheck::Replayed => Checked::Refused("replayed_code"),
                TotpCheck::Throttled { retry_after } => Checked::Throttled(retry_after),
            }),
    };
    let (code, reason, message, wait) = match checked {
        Ok(Checked::Accepted(detail)) => {
            return Ok(
                match stepped_up(&state, &session, method, &addr, detail).await? {
                    Some(renewed) => (renewed, Redirect::to(&next.target())).into_response(),
                    None => next.to_login(),
                },
            );
        }
        Ok(Checked::Refused(reason)) => (PageCode::MfaFailed, reason, FAILED, None),
        Ok(Checked::Throttled(wait)) => (
            PageCode::MfaThrottled,
            "throttled",
            THROTTLED,
            Some(seconds(wait)),
        ),
        Err(MfaError::MalformedCode(_)) => {
            let message = if method == AuthMethod::RecoveryCode {
                MALFORMED_RECOVERY
            } else {
                MALFORMED_TOTP
            };
            (PageCode::MfaMalformed, "malformed_code", message, None)
        }
        Err(e) => return Err(internal(e)),
    };
    let refusal = refused(&state, &session, method, &addr, code, reason, message).await?;
    let available = Factors::new(state.store()).available(user).await?;
    let mut response = show_second_factor(
        &state,
        csrf,
        &session,
        &next,
        available,
        Some(refusal),
        method == AuthMethod::RecoveryCode,
        status_of(code.as_str()),
    )
    .await?;
    retry_after(&mut response, wait);
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// /mfa/totp

/// What TOTP apps show above the code: the product and this IdP's host.
fn issuer(state: &WebState) -> String {
    let host = url::Url::parse(&state.settings().base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if host.is_empty() {
        "Latchkey".to_owned()
    } else {
        format!("Latchkey ({host})")
    }
}

/// The secret in groups of four, as people copy it.
fn grouped(secret: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(secret.len() + secret.len() / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The QR code as an element for the page: the crate's SVG document without its XML
/// declaration.
fn svg_element(document: &str) -> &str {
    match document.find("<svg") {
        Some(start) => &document[start..],
        None => "",
    }
}

#[allow(clippy::too_many_arguments)]
async fn show_enrolment(
    state: &WebState,
    csrf: CsrfToken,
    next: &Next,
    enrolment: &Enrolment,
    refusal: Option<Refusal>,
    status: StatusCode,
    wait: Option<u64>,
) -> Result<Response, WebError> {
    let secret = grouped(&enrolment.secret_base32);
    let page = TotpEnrolPage {
        title: "Set up an authenticator app",
        continuing_to: login::continuing_to(state, next.cont()).await,
        required: matches!(
            next,
            Next::Page(Then::Portal | Then::Console) | Next::Console(_)
        ),
        refusal,
        qr_svg: svg_element(&enrolment.qr_svg),
        secret: &secret,
        factor_id: &enrolment.factor_id,
        csrf: csrf.value(),
        cont: next.cont(),
        then: next.then(),
    };
    let html = render(&page)?;
    let mut response = (status, csrf, html).into_response();
    retry_after(&mut response, wait);
    Ok(response)
}

/// The user's pending enrolment shown again, or a new one when there is none or it expired
/// (never a second one that would spoil the QR code being scanned: a GET may come from a
/// reload, another tab or a link from another site).
async fn pending_enrolment(state: &WebState, session: &Session) -> Result<Enrolment, WebError> {
    Totp::new(state.store(), state.sealing_kek()?)
        .resume_or_begin(&session.user, DEFAULT_NAME, &issuer(state))
        .await
        .map_err(|e| match e {
            MfaError::TooManyFactors(n) => WebError::TooManyFactors(n),
            e => internal(e),
        })
}

/// Where an enrolment goes when done: the parked sign-in, or the page named (never back to
/// the enrolment itself, which would start another), by default the account page.
fn enrolment_next(cont: Option<&str>, then: Option<&str>) -> Next {
    match Next::from_fields(cont, then, Then::Account) {
        Next::Page(Then::Totp) => Next::Page(Then::Account),
        next => next,
    }
}

/// GET /mfa/totp: a new TOTP app: its QR code and secret, and the form that confirms it. The
/// user's pending enrolment is shown again while it may still be confirmed, so showing the
/// page changes nothing the user can see; there is no "start over": a pending enrolment
/// expires after [`latchkey_idp::mfa::totp::PENDING_FOR`], and a confirmed app can be
/// removed from `/account`.
/// During a sign-in (`continue`) this is the enrolment the policy asked for; from a
/// signed-in session it adds an app and returns to `/account`.
pub async fn totp_form(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    query: Result<Query<FlowQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let q = flow(query);
    let next = enrolment_next(q.cont.as_deref(), q.then.as_deref());
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    let available = Factors::new(state.store()).available(&session.user).await?;
    if let Some(redirect) = step_up_first(&session, &available, &next, Then::Totp) {
        return Ok(redirect);
    }
    let enrolment = pending_enrolment(&state, &session).await?;
    show_enrolment(&state, csrf, &next, &enrolment, None, StatusCode::OK, None).await
}

/// The enrolment form.
#[derive(Debug, Deserialize)]
pub struct TotpForm {
    csrf: Option<String>,
    #[serde(rename = "continue")]
    cont: Option<String>,
    then: Option<String>,
    /// The pending factor the page showed.
    #[serde(default)]
    factor: String,
    #[serde(default)]
    code: String,
}

impl CsrfField for TotpForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// POST /mfa/totp: confirms the app with a code from it. The factor counts from now on and
/// the session steps up with it; a first factor comes with recovery codes, shown once.
pub async fn totp_confirm(
    State(state): State<WebState>,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<TotpForm>,
) -> Result<Response, WebError> {
    let next = enrolment_next(form.cont.as_deref(), form.then.as_deref());
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    let user = &session.user;
    let available = Factors::new(state.store()).available(user).await?;
    if let Some(redirect) = step_up_first(&session, &available, &next, Then::Totp) {
        return Ok(redirect);
    }
    let actor = Actor::user(user.id);
    let totp = Totp::new(state.store(), state.sealing_kek()?);
    let confirmed = totp
        .confirm(&actor, user, &form.factor, &form.code, &addr)
        .await;
    let (code, reason, message, wait) = match confirmed {
        Ok(TotpCheck::Accepted { factor_id }) => {
            let Some(renewed) = stepped_up(
                &state,
                &session,
                AuthMethod::Totp,
                &addr,
                json!({ "enrolled": factor_id }),
            )
            .await?
            else {
                return Ok(next.to_login());
            };
            return match codes_for_new_factor(&state, user).await? {
                Some(codes) => Ok((renewed, show_codes(csrf, &next, &codes)?).into_response()),
                None => Ok((renewed, Redirect::to(&next.target())).into_response()),
            };
        }
        Ok(TotpCheck::Wrong) => (PageCode::MfaFailed, "wrong_code", FAILED, None),
        Ok(TotpCheck::Replayed) => (PageCode::MfaFailed, "replayed_code", FAILED, None),
        Ok(TotpCheck::Throttled { retry_after }) => (
            PageCode::MfaThrottled,
            "throttled",
            THROTTLED,
            Some(seconds(retry_after)),
        ),
        Err(MfaError::MalformedCode(_)) => (
            PageCode::MfaMalformed,
            "malformed_code",
            MALFORMED_TOTP,
            None,
        ),
        Err(MfaError::NoPendingEnrolment(_)) => (
            PageCode::MfaEnrolExpired,
            "enrolment_expired",
            ENROL_EXPIRED,
            None,
        ),
        Err(e) => return Err(internal(e)),
    };
    let refusal = refused(
        &state,
        &session,
        AuthMethod::Totp,
        &addr,
        code,
        reason,
        message,
    )
    .await?;
    // The same QR code again while it may still be confirmed, else a new one.
    let enrolment = match totp.reopen(user, &form.factor, &issuer(&state)).await {
        Ok(e) => e,
        Err(MfaError::NoPendingEnrolment(_)) => pending_enrolment(&state, &session).await?,
        Err(e) => return Err(internal(e)),
    };
    show_enrolment(
        &state,
        csrf,
        &next,
        &enrolment,
        Some(refusal),
        status_of(code.as_str()),
        wait,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// /mfa/recovery-codes

fn show_codes(
    csrf: CsrfToken,
    next: &Next,
    codes: &[Zeroizing<String>],
) -> Result<Response, WebError> {
    let target = next.target();
    let html = render(&RecoveryCodesPage {
        title: "Your recovery codes",
        refusal: None,
        codes: codes.iter().map(|c| c.to_string()).collect(),
        remaining: i64::try_from(codes.len()).unwrap_or(0),
        csrf: csrf.value(),
        then: next.then(),
        next: &target,
    })?;
    Ok((csrf, html).into_response())
}

/// GET /mfa/recovery-codes: how many unused codes are left, and a form to make new ones.
/// The codes themselves are never shown again.
pub async fn recovery_codes(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    query: Result<Query<FlowQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let q = flow(query);
    let next = Next::Page(
        q.then
            .as_deref()
            .and_then(Then::parse)
            .unwrap_or(Then::Account),
    );
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    // How many codes are left tells a password alone how the account is guarded: a user
    // who has a second factor sees it only from a session that used one, as for new codes.
    let available = Factors::new(state.store()).available(&session.user).await?;
    if let Some(redirect) = step_up_first(&session, &available, &next, Then::RecoveryCodes) {
        return Ok(redirect);
    }
    let remaining = RecoveryCodes::new(state.store())
        .remaining(&session.user)
        .await
        .map_err(internal)?;
    let target = next.target();
    let html = render(&RecoveryCodesPage {
        title: "Recovery codes",
        refusal: None,
        codes: Vec::new(),
        remaining,
        csrf: csrf.value(),
        then: next.then(),
        next: &target,
    })?;
    Ok((csrf, html).into_response())
}

/// The form that makes new codes.
#[derive(Debug, Deserialize)]
pub struct RegenerateForm {
    csrf: Option<String>,
    then: Option<String>,
}

impl CsrfField for RegenerateForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// POST /mfa/recovery-codes: replaces the user's codes with ten new ones, shown once.
/// Only from a session that used a second factor: new codes are a way in.
pub async fn regenerate_recovery_codes(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RegenerateForm>,
) -> Result<Response, WebError> {
    let next = Next::Page(
        form.then
            .as_deref()
            .and_then(Then::parse)
            .unwrap_or(Then::Account),
    );
    let Some(session) = session else {
        return Ok(next.to_login());
    };
    let available = Factors::new(state.store()).available(&session.user).await?;
    if !available.any_factor() {
        // Codes stand in for a factor: the first one brings them.
        return Ok(Redirect::to("/mfa/totp?then=account").into_response());
    }
    if let Some(redirect) = step_up_first(&session, &available, &next, Then::RecoveryCodes) {
        return Ok(redirect);
    }
    let codes = RecoveryCodes::new(state.store())
        .regenerate(
            &Actor::user(session.user.id),
            &session.user,
            Keep::Current(&session),
        )
        .await
        .map_err(internal)?;
    tracing::info!(user = %session.user.username, "recovery codes made anew");
    show_codes(csrf, &next, &codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_parked_key_one_of_our_pages_or_a_checked_console_path() {
        let key = "a".repeat(43);
        assert_eq!(
            Next::from_fields(Some(&key), Some("account"), Then::Portal).target(),
            format!("/saml/continue/{key}")
        );
        for (then, path) in [
            (Some("account"), "/account"),
            (Some("totp"), "/mfa/totp"),
            (Some("recovery-codes"), "/mfa/recovery-codes"),
            (Some("https://evil.example/"), "/portal"),
            (None, "/portal"),
            // A console page asked for comes back as itself; any other path is refused to
            // the console's front page, never followed.
            (Some("console"), "/admin"),
            (Some("/admin"), "/admin"),
            (Some("/admin/users/4f1c-9a"), "/admin/users/4f1c-9a"),
            (Some("//evil.example"), "/admin"),
            (Some("/admin//evil.example"), "/admin"),
            (Some("/admin/../portal"), "/admin"),
            (Some("/admin\\@evil.example"), "/admin"),
            (Some("/admin/users?next=https://evil.example"), "/admin"),
            (Some("/administrator"), "/admin"),
            (Some("/account"), "/admin"),
            (Some("/\\evil.example"), "/admin"),
        ] {
            assert_eq!(
                Next::from_fields(Some("short"), then, Then::Portal).target(),
                path,
                "{then:?}"
            );
        }
    }

    #[test]
    fn secrets_are_grouped_and_the_qr_code_is_an_element() {
        assert_eq!(grouped("ABCDEFGHIJ").as_str(), "ABCD EFGH IJ");
        assert_eq!(
            svg_element("<?xml version=\"1.0\"?><svg x=\"1\"></svg>"),
            "<svg x=\"1\"></svg>"
        );
    }
}
