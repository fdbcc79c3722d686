//! The invitation page, `/invite/{token}`: the invited person sets their first password and
//! is signed in (through [`login::start_session`], like every sign-in), then goes on to the
//! portal, where the MFA policy sends them to enrol a factor if one is required.
//!
//! A refused password (the policy, two copies that differ) leaves the link usable; the link
//! is used only by [`latchkey_idp::enrollment::Enrollment::redeem`], once.

use crate::extract::PathSegment;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::extract::{ClientAddress, CsrfForm, CsrfToken, SessionCookie};
use super::login;
use super::set_password::{self, FormText, SetPasswordForm};
use super::{WebError, WebState, client_of};
use latchkey_idp::enrollment::{LinkKind, LinkLookup, ValidLink};
use latchkey_idp::error::PageCode;
use latchkey_idp::mfa::Methods;
use latchkey_idp::password::Password;

async fn valid(state: &WebState, token: &str) -> Result<Box<ValidLink>, WebError> {
    match state
        .store()
        .enrollment()
        .lookup(LinkKind::Invitation, token)
        .await?
    {
        LinkLookup::Valid(link) => Ok(link),
        LinkLookup::Unusable(s) => Err(WebError::Link(s)),
    }
}

fn intro(link: &ValidLink) -> String {
    format!(
        "Welcome, {}. You were invited to sign in here as {}: choose your password.",
        link.user
            .given_name
            .as_deref()
            .unwrap_or(&link.user.username),
        link.user.username
    )
}

fn text<'a>(intro: &'a str, action: &'a str) -> FormText<'a> {
    FormText {
        title: "Set your password",
        intro,
        action,
        button: "Set the password and sign in",
        ask_factor: false,
    }
}

/// GET /invite/{token}
pub async fn link(
    State(state): State<WebState>,
    PathSegment(token): PathSegment,
    csrf: CsrfToken,
) -> Result<Response, WebError> {
    let link = valid(&state, &token).await?;
    let intro = intro(&link);
    let action = LinkKind::Invitation.path(&token);
    set_password::page(
        &state,
        csrf,
        &link.user,
        &text(&intro, &action),
        None,
        StatusCode::OK,
    )
}

/// POST /invite/{token}: sets the password, uses the link, signs the user in.
pub async fn redeem(
    State(state): State<WebState>,
    PathSegment(token): PathSegment,
    headers: HeaderMap,
    ClientAddress(addr): ClientAddress,
    cookie: SessionCookie,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<SetPasswordForm>,
) -> Result<Response, WebError> {
    let link = valid(&state, &token).await?;
    if let Err(refusal) = set_password::check(&state, &link.user, &form.password, &form.confirm) {
        state.metrics().failure(PageCode::PasswordRefused);
        let intro = intro(&link);
        let action = LinkKind::Invitation.path(&token);
        return set_password::page(
            &state,
            csrf,
            &link.user,
            &text(&intro, &action),
            Some(&refusal),
            StatusCode::BAD_REQUEST,
        );
    }
    let user = state
        .store()
        .enrollment()
        .redeem(LinkKind::Invitation, &token, Password::new(form.password))
        .await?;
    let client = client_of(&addr, &headers);
    let signed_in = login::start_session(
        &state,
        &cookie,
        &user,
        &client,
        None,
        None,
        Methods::password(),
    )
    .await?;
    let mut response = Redirect::to(&signed_in.target).into_response();
    for cookie in signed_in.cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}
