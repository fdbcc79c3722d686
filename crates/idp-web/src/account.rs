//! `/account`: the signed-in user's own account. One page shows the password form, the
//! second factors (TOTP apps, passkeys and security keys, with name and last use; how many
//! recovery codes are left), the user's sessions and their recent sign-ins from the audit
//! log; each change is a form that posts here and comes back to the page.
//!
//! * `POST /account/password`: the current password and the new one twice. The new one
//!   goes through the set-password checks the reset and invitation pages use; the change
//!   itself (throttled check of the current password, hash, audit, the end of every other
//!   session) is [`latchkey_idp::account::Account::change_password`].
//! * `POST /account/factors/{id}/rename`, `.../remove`: one of the user's TOTP apps or keys.
//!   Adding goes to the enrolment pages (`/mfa/totp`, `/webauthn`), new recovery codes to
//!   `/mfa/recovery-codes`, which come back here.
//! * `POST /account/sessions/end`: ends one of the user's sessions by its SessionIndex
//!   (the browser's own too, which then signs out).
//!
//! # Security
//! * The page needs what the portal needs: a session short of what `[mfa] required` (or a
//!   user's or group's rule) asks is sent to step up first, and sees and changes nothing.
//! * Changing factors follows the step-up-first rule of every factor page
//!   ([`latchkey_idp::mfa::Available::step_up_needed`]): a user who has a second factor
//!   changes them only from a session that used one, else the request is sent to step up
//!   and nothing changes.
//! * An ID in a path or field is looked up among the signed-in user's own factors and
//!   sessions only: another user's is answered exactly as one that does not exist
//!   (`ACCOUNT-UNKNOWN`), and nothing is written.
//! * Each refusal is the page again with the field at fault, a code and an operation ID;
//!   the detail goes to the log line with the same ID. Each change is audited in the same
//!   transaction as the change, naming the user.

use crate::extract::PathSegment;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::extract::{ClientAddress, CsrfField, CsrfForm, CsrfOnly, CsrfToken, CurrentSession};
use super::html::render;
use super::pages::{AccountPage, AccountRefusal, FactorRow, SessionRow, SignInRow};
use super::{WebError, WebState, cookies, portal, set_password};
use latchkey_idp::Error;
use latchkey_idp::account::{Account, PasswordChange};
use latchkey_idp::audit::{Actor, AuditEvent};
use latchkey_idp::error::PageCode;
use latchkey_idp::mfa::totp::Totp;
use latchkey_idp::mfa::{AuthMethod, FactorInfo, FactorKind, Factors, MfaError};
use latchkey_idp::password::{Password, StrengthHint};
use latchkey_idp::session::{Keep, Session, Sessions};
use latchkey_idp::webauthn::{CredentialId, Credentials, WebauthnError};

const TITLE: &str = "Your account";
/// How many sign-ins the page lists.
const SIGN_INS_SHOWN: u32 = 20;
/// The longest SessionIndex we issue is 66 characters; anything much longer is not one.
const MAX_SESSION_FIELD: usize = 128;

/// What the page says after a change it redirected from (`?done=`): a fixed sentence,
/// never text from the request.
fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "password" => {
            Some("Your password is changed, and every other session of your account has ended.")
        }
        "renamed" => Some("The factor is renamed."),
        "removed" => Some("The factor is removed."),
        "session" => Some("The session has ended."),
        _ => None,
    }
}

/// `?done=...` after a change.
#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

/// A refusal to show on the page (with its status), built by [`refuse`].
struct Refused {
    refusal: AccountRefusal,
    status: StatusCode,
    hint: Option<StrengthHint>,
    retry_after: Option<u64>,
}

/// Logs and counts a refusal under a fresh operation ID, which the page shows.
fn refuse(
    state: &WebState,
    session: &Session,
    code: PageCode,
    field: Option<&'static str>,
    message: impl Into<String>,
    detail: &str,
) -> Refused {
    let operation_id = super::error::new_operation_id();
    state.metrics().failure(code);
    tracing::info!(
        code = code.as_str(),
        operation_id,
        user = %session.user.username,
        field,
        detail,
        "account change refused"
    );
    let status = match code {
        PageCode::AccountUnknown => StatusCode::NOT_FOUND,
        PageCode::AccountPasswordWrong => StatusCode::UNAUTHORIZED,
        PageCode::LoginThrottled => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    Refused {
        refusal: AccountRefusal {
            field,
            message: message.into(),
            code: code.as_str(),
            operation_id,
        },
        status,
        hint: None,
        retry_after: None,
    }
}

/// A time as the page shows it.
fn when(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Methods in words, for the sessions and sign-ins lists.
fn method_words(methods: impl Iterator<Item = AuthMethod>) -> String {
    let words: Vec<&str> = methods
        .map(|m| match m {
            AuthMethod::Password => "password",
            AuthMethod::Totp => "authenticator app",
            AuthMethod::RecoveryCode => "recovery code",
            AuthMethod::Passkey => "passkey",
            AuthMethod::SecurityKey => "security key",
        })
        .collect();
    words.join(", ")
}

fn factor_row(f: &FactorInfo) -> Option<FactorRow> {
    let kind = match f.kind {
        FactorKind::Totp => "Authenticator app",
        FactorKind::Webauthn => "Passkey or security key",
        FactorKind::RecoveryCodes => return None,
    };
    Some(FactorRow {
        id: f.id.clone(),
        kind,
        name: f.name.clone(),
        created: when(f.created_at),
        last_used: f.last_used_at.map(when).unwrap_or_else(|| "never".into()),
    })
}

/// One audit event of the sign-in history as a row: what happened, with what, from where.
fn sign_in_row(e: &AuditEvent) -> SignInRow {
    let after = e.after.as_ref();
    let field = |name: &str| after.and_then(|a| a.get(name));
    let what = match (e.action.as_str(), field("stage").and_then(Value::as_str)) {
        ("login.success", _) => "Signed in",
        ("login.step_up", _) => "Second factor accepted",
        ("login.failure", Some("second_factor")) => "Second factor refused",
        ("login.failure", Some("password_change")) => "Wrong current password (account page)",
        _ => "Sign-in refused",
    };
    let names: Vec<&str> = match (field("methods"), field("method")) {
        (Some(Value::Array(list)), _) => list.iter().filter_map(Value::as_str).collect(),
        (_, Some(Value::String(one))) => vec![one.as_str()],
        _ => Vec::new(),
    };
    let methods = method_words(
        names
            .iter()
            .filter_map(|n| AuthMethod::ALL.into_iter().find(|m| m.as_str() == *n)),
    );
    SignInRow {
        at: when(e.at),
        what,
        methods,
        address: field("address")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
    }
}

/// The page, with a notice or a refusal.
async fn show(
    state: &WebState,
    csrf: CsrfToken,
    session: &Session,
    notice: Option<&'static str>,
    refused: Option<Refused>,
) -> Result<Response, WebError> {
    let user = &session.user;
    let factors = Factors::new(state.store());
    let available = factors.available(user).await?;
    let listed = factors.list(user).await?;
    let now = state.store().now();
    let sessions = Sessions::new(state.store())
        .of_user(user.id, now)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            current: s.session_index == session.session_index,
            created: when(s.created_at),
            last_seen: when(s.last_seen_at),
            address: s.address.unwrap_or_default(),
            browser: s.user_agent.unwrap_or_default(),
            methods: method_words(s.methods.iter()),
            index: s.session_index,
        })
        .collect();
    let sign_ins = Account::new(state.store())
        .sign_ins(user.id, SIGN_INS_SHOWN)
        .await?
        .iter()
        .map(sign_in_row)
        .collect();
    let shown_name = user.shown_name();
    let (status, refusal, hint, retry_after) = match refused {
        Some(r) => (r.status, Some(r.refusal), r.hint, r.retry_after),
        None => (StatusCode::OK, None, None, None),
    };
    let html = render(&AccountPage {
        title: TITLE,
        shown_name: &shown_name,
        username: &user.username,
        csrf: csrf.value(),
        notice,
        refusal,
        hint,
        min_length: state.store().hashing().config().min_length(),
        may_change: !available.step_up_needed(&session.methods),
        passkeys: state.webauthn().is_some(),
        factors: listed.iter().filter_map(factor_row).collect(),
        recovery_remaining: available.any_factor().then_some(available.recovery_codes),
        sessions,
        sign_ins,
    })?;
    let mut response = (status, csrf, html).into_response();
    if let Some(s) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s.max(1)));
    }
    Ok(response)
}

/// The session the page serves, or where the browser goes instead: to sign in, or to step
/// up first when `[mfa] required` (or a user's or group's rule) asks more than the session
/// used, as at the portal ([`portal::short_of_second_factor`]): such a session sees nothing
/// of the account and changes nothing.
async fn admitted(
    state: &WebState,
    session: Option<Session>,
) -> Result<Result<Session, Response>, WebError> {
    let Some(session) = session else {
        return Ok(Err(Redirect::to("/login?to=/account").into_response()));
    };
    Ok(
        match portal::short_of_second_factor(state, &session, "account").await? {
            Some(step_up) => Err(step_up),
            None => Ok(session),
        },
    )
}

/// GET /account
pub async fn page(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let session = match admitted(&state, session).await? {
        Ok(session) => session,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let done = query.ok().and_then(|Query(q)| q.done);
    show(&state, csrf, &session, notice(done.as_deref()), None).await
}

/// The change-password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm")
    }
}

impl CsrfField for PasswordForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// POST /account/password
pub async fn change_password(
    State(state): State<WebState>,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
    let session = match admitted(&state, session).await? {
        Ok(session) => session,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let user = &session.user;
    if form.current.is_empty() {
        let r = refuse(
            &state,
            &session,
            PageCode::AccountInput,
            Some("Current password"),
            "Type your current password.",
            "no current password",
        );
        return show(&state, csrf, &session, None, Some(r)).await;
    }
    if let Err(refusal) = set_password::check(&state, user, &form.password, &form.confirm) {
        let mut r = refuse(
            &state,
            &session,
            PageCode::PasswordRefused,
            Some("New password"),
            refusal.message,
            "policy",
        );
        r.hint = refusal.hint;
        return show(&state, csrf, &session, None, Some(r)).await;
    }
    let changed = Account::new(state.store())
        .change_password(
            &session,
            Password::new(form.current),
            Password::new(form.password),
            &addr,
        )
        .await;
    let refused = match changed {
        Ok(PasswordChange::Changed { sessions_ended }) => {
            tracing::info!(user = %user.username, address = %addr, sessions_ended, "password changed on the account page");
            return Ok(Redirect::to("/account?done=password").into_response());
        }
        Ok(PasswordChange::WrongPassword) => {
            let r = refuse(
                &state,
                &session,
                PageCode::AccountPasswordWrong,
                Some("Current password"),
                "This is not your current password.",
                "wrong current password",
            );
            // A guess at the password: it belongs in the user's sign-in history.
            state
                .audit(
                    &Actor::person(user),
                    "login.failure",
                    "user",
                    user.id.to_string(),
                    user.username.clone(),
                    json!({
                        "stage": "password_change",
                        "reason": "bad_password",
                        "code": r.refusal.code,
                        "operation_id": r.refusal.operation_id,
                        "address": addr,
                    }),
                )
                .await?;
            r
        }
        Ok(PasswordChange::Throttled { retry_after }) => {
            let mut r = refuse(
                &state,
                &session,
                PageCode::LoginThrottled,
                Some("Current password"),
                "Too many wrong passwords for this account or from this network. Wait a few \
                 minutes and try again.",
                "throttled",
            );
            r.retry_after = Some(u64::try_from(retry_after.whole_seconds()).unwrap_or(1));
            r
        }
        Err(Error::PasswordRefused { rule }) => refuse(
            &state,
            &session,
            PageCode::PasswordRefused,
            Some("New password"),
            format!("This password {rule}."),
            "policy",
        ),
        Err(e) => return Err(e.into()),
    };
    show(&state, csrf, &session, None, Some(refused)).await
}

/// Which of the signed-in user's factors an ID names.
enum Owned {
    Totp(String),
    Key(CredentialId),
}

/// Looks `id` up among the user's own TOTP apps and keys (never anyone else's).
async fn owned_factor(
    state: &WebState,
    session: &Session,
    id: &str,
) -> Result<Option<Owned>, WebError> {
    let listed = Factors::new(state.store()).list(&session.user).await?;
    let Some(found) = listed.iter().find(|f| f.id == id) else {
        return Ok(None);
    };
    Ok(match found.kind {
        FactorKind::Totp => Some(Owned::Totp(found.id.clone())),
        FactorKind::Webauthn => uuid::Uuid::parse_str(&found.id)
            .ok()
            .map(|u| Owned::Key(CredentialId(u))),
        FactorKind::RecoveryCodes => None,
    })
}

/// The step-up-first rule of every factor page: `Some` redirect when this session must
/// show a second factor before changing factors.
async fn step_up_first(state: &WebState, session: &Session) -> Result<Option<Response>, WebError> {
    let available = Factors::new(state.store()).available(&session.user).await?;
    Ok(available
        .step_up_needed(&session.methods)
        .then(|| Redirect::to("/login/mfa?then=account").into_response()))
}

fn unknown_factor(state: &WebState, session: &Session, id: &str) -> Refused {
    refuse(
        state,
        session,
        PageCode::AccountUnknown,
        None,
        "You have no factor with this ID.",
        &format!("factor {id:?}"),
    )
}

fn mfa_fault(e: MfaError) -> WebError {
    match e {
        MfaError::Store(e) => e.into(),
        other => WebError::Internal(other.to_string()),
    }
}

fn webauthn_fault(e: WebauthnError) -> WebError {
    match e {
        WebauthnError::Store(e) => e.into(),
        other => WebError::Internal(other.to_string()),
    }
}

/// The rename form.
#[derive(Debug, Deserialize)]
pub struct RenameForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
}

impl CsrfField for RenameForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// POST /account/factors/{id}/rename
pub async fn rename_factor(
    State(state): State<WebState>,
    PathSegment(id): PathSegment,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Result<Response, WebError> {
    let session = match admitted(&state, session).await? {
        Ok(session) => session,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if let Some(redirect) = step_up_first(&state, &session).await? {
        return Ok(redirect);
    }
    let actor = Actor::person(&session.user);
    let bad_name = || {
        refuse(
            &state,
            &session,
            PageCode::AccountInput,
            Some("Name"),
            "A name is 1 to 64 characters, without control characters.",
            "factor name",
        )
    };
    let refused = match owned_factor(&state, &session, &id).await? {
        None => unknown_factor(&state, &session, &id),
        Some(Owned::Totp(factor)) => {
            match Totp::new(state.store(), state.sealing_kek()?)
                .rename(&actor, &session.user, &factor, &form.name)
                .await
            {
                Ok(true) => return Ok(Redirect::to("/account?done=renamed").into_response()),
                Ok(false) => unknown_factor(&state, &session, &id),
                Err(MfaError::InvalidName(_)) => bad_name(),
                Err(e) => return Err(mfa_fault(e)),
            }
        }
        Some(Owned::Key(key)) => {
            match Credentials::new(state.store())
                .rename(&actor, session.user.id, key, &form.name)
                .await
            {
                Ok(_) => return Ok(Redirect::to("/account?done=renamed").into_response()),
                Err(WebauthnError::UnknownCredential) => unknown_factor(&state, &session, &id),
                Err(WebauthnError::BadName(_)) => bad_name(),
                Err(e) => return Err(webauthn_fault(e)),
            }
        }
    };
    show(&state, csrf, &session, None, Some(refused)).await
}

/// POST /account/factors/{id}/remove
pub async fn remove_factor(
    State(state): State<WebState>,
    PathSegment(id): PathSegment,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, WebError> {
    let session = match admitted(&state, session).await? {
        Ok(session) => session,
        Err(elsewhere) => return Ok(elsewhere),
    };
    if let Some(redirect) = step_up_first(&state, &session).await? {
        return Ok(redirect);
    }
    let actor = Actor::person(&session.user);
    let refused = match owned_factor(&state, &session, &id).await? {
        None => unknown_factor(&state, &session, &id),
        Some(Owned::Totp(factor)) => {
            match Totp::new(state.store(), state.sealing_kek()?)
                .remove(&actor, &session.user, &factor, Keep::Current(&session))
                .await
            {
                Ok(true) => return Ok(Redirect::to("/account?done=removed").into_response()),
                Ok(false) => unknown_factor(&state, &session, &id),
                Err(e) => return Err(mfa_fault(e)),
            }
        }
        Some(Owned::Key(key)) => {
            match Credentials::new(state.store())
                .remove(&actor, session.user.id, key, Keep::Current(&session))
                .await
            {
                Ok(()) => return Ok(Redirect::to("/account?done=removed").into_response()),
                Err(WebauthnError::UnknownCredential) => unknown_factor(&state, &session, &id),
                Err(e) => return Err(webauthn_fault(e)),
            }
        }
    };
    show(&state, csrf, &session, None, Some(refused)).await
}

/// The end-a-session form.
#[derive(Debug, Deserialize)]
pub struct EndSessionForm {
    csrf: Option<String>,
    /// The SessionIndex of the session to end.
    #[serde(default)]
    session: String,
}

impl CsrfField for EndSessionForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// POST /account/sessions/end: ends one of the user's sessions; ending this browser's own
/// signs it out.
pub async fn end_session(
    State(state): State<WebState>,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<EndSessionForm>,
) -> Result<Response, WebError> {
    let session = match admitted(&state, session).await? {
        Ok(session) => session,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let index = form.session.trim();
    if index.is_empty() || index.len() > MAX_SESSION_FIELD {
        let r = refuse(
            &state,
            &session,
            PageCode::AccountInput,
            Some("Session"),
            "Choose a session from the list.",
            "no session named, or an overlong one",
        );
        return show(&state, csrf, &session, None, Some(r)).await;
    }
    let ended = Sessions::new(state.store())
        .end_one_audited(&Actor::person(&session.user), &session.user, index)
        .await?;
    if !ended {
        let r = refuse(
            &state,
            &session,
            PageCode::AccountUnknown,
            None,
            "You have no session with this ID (it may have ended already).",
            &format!("session {index:?}"),
        );
        return show(&state, csrf, &session, None, Some(r)).await;
    }
    tracing::info!(user = %session.user.username, "session ended on the account page");
    if index == session.session_index {
        let mut response = Redirect::to("/login").into_response();
        if let Ok(v) = HeaderValue::from_str(&cookies::clear_session(state.settings())) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(response);
    }
    Ok(Redirect::to("/account?done=session").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_idp::mfa::Methods;

    #[test]
    fn notices_are_our_own_sentences() {
        assert!(notice(Some("password")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }

    #[test]
    fn methods_read_as_words() {
        let m = Methods::of(&[AuthMethod::Password, AuthMethod::Totp]);
        assert_eq!(method_words(m.iter()), "password, authenticator app");
    }
}
