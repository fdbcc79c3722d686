//! Self-service password reset: `/reset` asks for a link, `/reset/{token}` uses it.
//!
//! # Security
//! * `POST /reset` answers with the same page and status whatever was typed: the request
//!   goes to the [`ResetDesk`], which does everything that depends on the account off the
//!   request path. Its throttle counts names as typed, existing or not, so "try again
//!   later" says nothing about the account either.
//! * A reset never bypasses a second factor: for an account that has one (a TOTP app or a
//!   key: [`latchkey_idp::mfa::Available::any_factor`], the definition sign-in and enrolment use), the form
//!   asks for a TOTP code or a recovery code, checked before the password is hashed and
//!   used up only in the transaction that uses the link and sets the password
//!   ([`latchkey_idp::enrollment::Enrollment::redeem_with_code`]): a busy hash pool or a parallel post that used the
//!   link first leaves the user their code. For an account with a key, a session of the
//!   same user in this browser that used a key (a passkey sign-in or step-up) within
//!   [`KEY_FRESH_FOR`] is the second factor, whatever else the account has: nothing to
//!   type. An account whose only factor is a key and that has no recovery codes left cannot
//!   type a code: without such a session the page asks them to sign in with the key and
//!   open the link again; `/account` cannot help them, as it asks for the current password.
//!   Recovery codes alone are not a second factor.
//! * The new password is checked against the policy before any code is spent. Redeeming
//!   ends every session of the user; the page then sends them to sign in as usual.

use crate::extract::PathSegment;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::{ClientAddress, CsrfField, CsrfForm, CsrfToken, CurrentSession};
use super::html::render;
use super::pages::{NoticePage, ResetRequestPage};
use super::set_password::{self, FormText, Refusal, SetPasswordForm};
use super::{WebError, WebState};
use latchkey_idp::Error;
use latchkey_idp::directory::User;
use latchkey_idp::enrollment::reset::ResetDesk;
use latchkey_idp::enrollment::{LinkKind, LinkLookup, ValidLink};
use latchkey_idp::error::PageCode;
use latchkey_idp::mfa::recovery::{RecoveryCheck, RecoveryCodes};
use latchkey_idp::mfa::totp::{Totp, TotpCheck};
use latchkey_idp::mfa::{AuthMethod, CheckedCode, Factors, MfaError};
use latchkey_idp::password::Password;
use latchkey_idp::session::Session;

const TITLE: &str = "Reset your password";
const THROTTLED: &str = "Too many reset requests for this name or from this network. Wait a few \
     minutes and try again.";

/// The request form.
#[derive(Debug, Deserialize)]
pub struct ResetRequestForm {
    #[serde(default)]
    name: String,
    csrf: Option<String>,
}

impl CsrfField for ResetRequestForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

fn desk(state: &WebState) -> Result<&ResetDesk, WebError> {
    state.reset_desk().ok_or(WebError::NotFound)
}

fn request_page(
    csrf: CsrfToken,
    sent: bool,
    message: Option<&str>,
    name: &str,
    status: StatusCode,
) -> Result<Response, WebError> {
    let html = render(&ResetRequestPage {
        title: TITLE,
        sent,
        message,
        name,
        csrf: csrf.value(),
    })?;
    Ok((status, csrf, html).into_response())
}

/// GET /reset
pub async fn form(State(state): State<WebState>, csrf: CsrfToken) -> Result<Response, WebError> {
    desk(&state)?;
    request_page(csrf, false, None, "", StatusCode::OK)
}

/// POST /reset: the same answer for every name (see the module docs).
pub async fn request(
    State(state): State<WebState>,
    ClientAddress(addr): ClientAddress,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<ResetRequestForm>,
) -> Result<Response, WebError> {
    let desk = desk(&state)?;
    match desk.request(state.store(), &form.name, &addr).await {
        // The name is not echoed: the answer is the same page for everyone.
        Ok(_) => request_page(csrf, true, None, "", StatusCode::OK),
        Err(Error::Throttled {
            retry_after_seconds,
        }) => {
            state.metrics().failure(PageCode::ResetThrottled);
            tracing::warn!(code = PageCode::ResetThrottled.as_str(), address = %addr, "reset request throttled");
            let mut response = request_page(
                csrf,
                false,
                Some(THROTTLED),
                "",
                StatusCode::TOO_MANY_REQUESTS,
            )?;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds.max(1)),
            );
            Ok(response)
        }
        Err(Error::InvalidField { .. }) => request_page(
            csrf,
            false,
            Some("Type your username or e-mail address."),
            "",
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => Err(e.into()),
    }
}

/// What the account must show besides the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecondFactor {
    /// Nothing: the account has no second factor.
    None,
    /// A TOTP code or a recovery code.
    Code,
    /// Only keys, which this form cannot take, and no session that used one: sign in with
    /// the key, then open the link again.
    PasskeyOnly,
    /// The account has a key, and this browser's session of the user used one lately: that
    /// is the second factor, nothing to type (whatever else the account has).
    KeyInSession,
}

/// How recently the browser's session must have used a key to stand for the second factor
/// of an account with a key on the reset page (as fresh as a pending TOTP enrolment): a
/// key used at a sign-in hours ago, in a browser left open, does not count.
pub const KEY_FRESH_FOR: time::Duration = time::Duration::minutes(15);

/// Whether `session` is `user`'s own and used a key within [`KEY_FRESH_FOR`] (its
/// authentication instant, which a step-up moves).
fn fresh_key(state: &WebState, user: &User, session: Option<&Session>) -> bool {
    session.is_some_and(|s| {
        s.user.id == user.id
            && (s.methods.contains(AuthMethod::Passkey)
                || s.methods.contains(AuthMethod::SecurityKey))
            && state.store().now() - s.authn_at <= KEY_FRESH_FOR
    })
}

/// What the reset form asks of `user`: a user who has a second factor (the one definition,
/// [`latchkey_idp::mfa::Available::any_factor`]) shows it. A user with a key whose session
/// in this browser used it lately has shown it already (even with a TOTP app beside it: the
/// key is the stronger factor, and asking for a code too only sends them to find the
/// phone); else a TOTP code or a recovery code; a user whose only factor is a key, with no
/// codes left, cannot type one and is sent to sign in with it.
async fn second_factor(
    state: &WebState,
    user: &User,
    session: Option<&Session>,
) -> Result<SecondFactor, WebError> {
    let available = Factors::new(state.store()).available(user).await?;
    Ok(if !available.any_factor() {
        SecondFactor::None
    } else if available.webauthn && fresh_key(state, user, session) {
        SecondFactor::KeyInSession
    } else if available.totp || available.recovery_codes > 0 {
        SecondFactor::Code
    } else {
        SecondFactor::PasskeyOnly
    })
}

async fn valid(state: &WebState, token: &str) -> Result<Box<ValidLink>, WebError> {
    match state
        .store()
        .enrollment()
        .lookup(LinkKind::Reset, token)
        .await?
    {
        LinkLookup::Valid(link) => Ok(link),
        LinkLookup::Unusable(s) => Err(WebError::Link(s)),
    }
}

fn form_text<'a>(intro: &'a str, action: &'a str, ask_factor: bool) -> FormText<'a> {
    FormText {
        title: TITLE,
        intro,
        action,
        button: "Set the new password",
        ask_factor,
    }
}

/// What the page tells a passkey-only user: how long after signing in with the key the
/// link works is [`KEY_FRESH_FOR`] itself, never a number written beside it.
fn passkey_only_message() -> String {
    format!(
        "Your account's second factor is a passkey, which this page cannot check. Sign in \
         with your passkey, then open the link in your mail again (within {} minutes) to \
         choose your new password.",
        KEY_FRESH_FOR.whole_minutes()
    )
}

fn passkey_only() -> Result<Response, WebError> {
    let message = passkey_only_message();
    let html = render(&NoticePage {
        title: TITLE,
        message: &message,
        hint: None,
        link_href: "/login",
        link_text: "Sign in",
    })?;
    Ok((StatusCode::FORBIDDEN, html).into_response())
}

/// GET /reset/{token}: the form, or the error page of an unusable link.
pub async fn link(
    State(state): State<WebState>,
    PathSegment(token): PathSegment,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
) -> Result<Response, WebError> {
    let link = valid(&state, &token).await?;
    let factor = second_factor(&state, &link.user, session.as_ref()).await?;
    if factor == SecondFactor::PasskeyOnly {
        return passkey_only();
    }
    let intro = format!("Choose a new password for {}.", link.user.username);
    let action = LinkKind::Reset.path(&token);
    set_password::page(
        &state,
        csrf,
        &link.user,
        &form_text(&intro, &action, factor == SecondFactor::Code),
        None,
        StatusCode::OK,
    )
}

/// Checks the code of an account with a second factor: six digits are a TOTP code, else
/// a recovery code. Neither is used up here: [`Enrollment::redeem_with_code`] uses it in
/// the transaction that sets the password. `Err` carries what the page says.
///
/// [`Enrollment::redeem_with_code`]: latchkey_idp::enrollment::Enrollment::redeem_with_code
async fn check_code(
    state: &WebState,
    user: &User,
    typed: &str,
    addr: &str,
) -> Result<CheckedCode, String> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Err("This account has a second factor: type a code from it.".into());
    }
    let digits = typed.chars().filter(|c| !c.is_whitespace()).count() == 6
        && typed
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace());
    let outcome = if digits {
        let Ok(kek) = state.sealing_kek() else {
            tracing::warn!("a TOTP code on the reset page but no KEK is configured here");
            return Err(WRONG_CODE.into());
        };
        match Totp::new(state.store(), kek)
            .check_for_later(user, typed, addr)
            .await
        {
            Ok(Ok(checked)) => Ok(checked),
            Ok(Err(TotpCheck::Throttled { .. })) => Err(THROTTLED_CODE),
            Ok(Err(TotpCheck::Wrong | TotpCheck::Replayed | TotpCheck::Accepted { .. }))
            | Err(MfaError::MalformedCode(_)) => Err(WRONG_CODE),
            Err(e) => {
                tracing::error!(error = %e, "TOTP check failed on the reset page");
                Err(WRONG_CODE)
            }
        }
    } else {
        match RecoveryCodes::new(state.store())
            .check_for_later(user, typed, addr)
            .await
        {
            Ok(Ok(checked)) => Ok(checked),
            Ok(Err(RecoveryCheck::Throttled { .. })) => Err(THROTTLED_CODE),
            Ok(Err(RecoveryCheck::Wrong | RecoveryCheck::Accepted { .. }))
            | Err(MfaError::MalformedCode(_)) => Err(WRONG_CODE),
            Err(e) => {
                tracing::error!(error = %e, "recovery code check failed on the reset page");
                Err(WRONG_CODE)
            }
        }
    };
    outcome.map_err(str::to_owned)
}

const WRONG_CODE: &str = "The code is not right. Type the current code of your authenticator \
                          app, or one of your recovery codes.";
const THROTTLED_CODE: &str = "Too many wrong codes. Wait a few minutes and try again.";

/// POST /reset/{token}: the new password (and a code, if the account has a second factor).
pub async fn redeem(
    State(state): State<WebState>,
    PathSegment(token): PathSegment,
    ClientAddress(addr): ClientAddress,
    CurrentSession(session): CurrentSession,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<SetPasswordForm>,
) -> Result<Response, WebError> {
    let link = valid(&state, &token).await?;
    let user = &link.user;
    let factor = second_factor(&state, user, session.as_ref()).await?;
    if factor == SecondFactor::PasskeyOnly {
        return passkey_only();
    }
    let intro = format!("Choose a new password for {}.", user.username);
    let action = LinkKind::Reset.path(&token);
    let text = form_text(&intro, &action, factor == SecondFactor::Code);
    let refuse = |state: &WebState, csrf, code: PageCode, refusal: Refusal| {
        state.metrics().failure(code);
        tracing::info!(code = code.as_str(), user = %user.username, "password reset refused");
        set_password::page(
            state,
            csrf,
            user,
            &text,
            Some(&refusal),
            StatusCode::BAD_REQUEST,
        )
    };
    if let Err(refusal) = set_password::check(&state, user, &form.password, &form.confirm) {
        return refuse(&state, csrf, PageCode::PasswordRefused, refusal);
    }
    let checked = match factor {
        SecondFactor::Code => match check_code(&state, user, &form.code, &addr).await {
            Ok(checked) => Some(checked),
            Err(message) => {
                let refusal = Refusal {
                    message,
                    hint: None,
                };
                return refuse(&state, csrf, PageCode::ResetFactor, refusal);
            }
        },
        // Nothing typed to check: no factor, or a key this browser's session used.
        SecondFactor::None | SecondFactor::KeyInSession | SecondFactor::PasskeyOnly => None,
    };
    let advice = set_password::advice(user, &form.password);
    let enrollment = state.store().enrollment();
    let password = Password::new(form.password);
    let user = match checked {
        // The code is used up with the link, in one transaction, or not at all.
        Some(checked) => {
            match enrollment
                .redeem_with_code(&token, password, checked)
                .await?
            {
                Some(user) => user,
                None => {
                    let refusal = Refusal {
                        message: WRONG_CODE.into(),
                        hint: None,
                    };
                    return refuse(&state, csrf, PageCode::ResetFactor, refusal);
                }
            }
        }
        None => enrollment.redeem(LinkKind::Reset, &token, password).await?,
    };
    tracing::info!(user = %user.username, "password reset");
    let html = render(&NoticePage {
        title: "Password changed",
        message: "Your password is changed, and every session of your account has ended. \
                  Sign in with the new password.",
        hint: advice.as_deref(),
        link_href: "/login",
        link_text: "Sign in",
    })?;
    Ok(html.into_response())
}
