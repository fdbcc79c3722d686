//! The set-password form that reset and invitation links share (and whose checks the
//! account page's change of password runs too): its fields, the checks of
//! a new password before anything is spent on it (the two copies, the policy), and the
//! page itself with zxcvbn's advice.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::{CsrfField, CsrfToken};
use super::html::render;
use super::pages::SetPasswordPage;
use super::{WebError, WebState};
use latchkey_idp::Error;
use latchkey_idp::directory::User;
use latchkey_idp::password::{self, Password, StrengthHint};

/// The posted form.
#[derive(Deserialize)]
pub struct SetPasswordForm {
    #[serde(default)]
    pub(crate) password: String,
    #[serde(default)]
    pub(crate) confirm: String,
    /// A TOTP or recovery code (reset of an account with a second factor).
    #[serde(default)]
    pub(crate) code: String,
    csrf: Option<String>,
}

impl std::fmt::Debug for SetPasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPasswordForm")
    }
}

impl CsrfField for SetPasswordForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// A new password that may not be set, in words for the page.
pub(crate) struct Refusal {
    pub(crate) message: String,
    pub(crate) hint: Option<StrengthHint>,
}

/// The words the owner of the account knows an attacker would try first.
fn user_inputs(user: &User) -> Vec<&str> {
    let mut inputs = vec![user.username.as_str(), user.email.as_str()];
    inputs.extend(user.given_name.as_deref());
    inputs.extend(user.family_name.as_deref());
    inputs
}

/// Checks the two copies and the policy (cheap: before any code is spent or hash made).
/// The account page's change of password runs the same checks.
pub(crate) fn check(
    state: &WebState,
    user: &User,
    password: &str,
    confirm: &str,
) -> Result<(), Refusal> {
    if password != confirm {
        return Err(Refusal {
            message: "The two passwords differ. Type the same password twice.".into(),
            hint: None,
        });
    }
    let candidate = Password::new(password);
    match password::check_policy(&state.store().hashing().config(), &candidate) {
        Ok(()) => Ok(()),
        Err(Error::PasswordRefused { rule }) => Err(Refusal {
            message: format!("This password {rule}."),
            hint: Some(password::strength(&candidate, &user_inputs(user)))
                .filter(|h| h.warning.is_some() || !h.suggestions.is_empty()),
        }),
        Err(other) => Err(Refusal {
            message: other.to_string(),
            hint: None,
        }),
    }
}

/// zxcvbn's advice on an accepted password, for the page after it: the policy let it
/// through, but it is guessable (score under 3).
pub(crate) fn advice(user: &User, password: &str) -> Option<String> {
    let hint = password::strength(&Password::new(password), &user_inputs(user));
    if hint.score >= 3 {
        return None;
    }
    let mut text = String::from("Your new password is easy to guess.");
    for line in hint.warning.iter().chain(hint.suggestions.iter()) {
        text.push(' ');
        text.push_str(line);
    }
    Some(text)
}

/// What the form says around its fields.
pub(crate) struct FormText<'a> {
    pub(crate) title: &'a str,
    pub(crate) intro: &'a str,
    pub(crate) action: &'a str,
    pub(crate) button: &'a str,
    pub(crate) ask_factor: bool,
}

/// The form, with a refusal if there was one.
pub(crate) fn page(
    state: &WebState,
    csrf: CsrfToken,
    user: &User,
    text: &FormText<'_>,
    refusal: Option<&Refusal>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let html = render(&SetPasswordPage {
        title: text.title,
        intro: text.intro,
        message: refusal.map(|r| r.message.as_str()),
        hint: refusal.and_then(|r| r.hint.as_ref()),
        action: text.action,
        username: &user.username,
        min_length: state.store().hashing().config().min_length(),
        ask_factor: text.ask_factor,
        button: text.button,
        csrf: csrf.value(),
    })?;
    Ok((status, csrf, html).into_response())
}
