//! What the console's forms share: the anti-forgery field, and how a refused change becomes
//! the form again with the field named.

use axum::http::StatusCode;
use latchkey_idp::error::Error;

use super::super::WebError;

/// Implements [`CsrfField`](crate::extract::CsrfField) for a form struct with a
/// `csrf: Option<String>` field.
macro_rules! csrf_form {
    ($($t:ty),+ $(,)?) => {
        $(impl crate::extract::CsrfField for $t {
            fn csrf(&self) -> Option<&str> {
                self.csrf.as_deref()
            }
        })+
    };
}
pub(crate) use csrf_form;

/// A refusal to show on the form: the field it is about and what to do.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Sorts an error from the domain into one the form shows (bad input about a field, or a
/// conflict with what is stored) and everything else, which becomes an error page.
pub(crate) fn field_error(err: Error) -> Result<FieldError, WebError> {
    let field = match &err {
        Error::InvalidField { field, .. } => *field,
        Error::DuplicateUsername { .. } => "username",
        Error::DuplicateEmail { .. } => "email",
        Error::UnknownUser { .. } => "user",
        Error::ChangedSince { what } => what,
        Error::UnknownGroup { .. } => "group",
        Error::DuplicateGroup { .. } => "name",
        Error::AlreadyMember { .. } | Error::NotMember { .. } => "group",
        Error::UnknownToken { .. } => "token",
        // Whatever the form changed (a grant, a status, a membership, a group), what it would
        // take is the admin role; the code goes with the sentence, as on other refusals' pages.
        Error::LastAdmin => {
            return Ok(FieldError {
                field: "role",
                message: format!("{err} ({})", err.code().as_str()),
            });
        }
        _ => return Err(err.into()),
    };
    Ok(FieldError {
        field,
        message: err.to_string(),
    })
}

/// The status of a form given back refused: 409 for a conflict with what is stored now (the
/// form was drawn before another change, or the change would leave no admin), else 422.
pub(crate) fn refusal_status(err: &Error) -> StatusCode {
    match err {
        Error::ChangedSince { .. } | Error::LastAdmin => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// Whether a form drawn from the version `seen` (its hidden `seen` field) may be saved over
/// the object as it is `now`: the same version, or none given (a post not from our page).
/// Every edit form that can be refused `changed_since` asks here.
pub(crate) fn drawn_from(seen: &str, now: &str) -> bool {
    let seen = seen.trim();
    seen.is_empty() || seen == now
}

/// A refused change as its form shows it: the field ([`field_error`]) and the status
/// ([`refusal_status`]); what no field is about becomes an error page.
pub(crate) fn form_refusal(err: Error) -> Result<(FieldError, StatusCode), WebError> {
    let status = refusal_status(&err);
    Ok((field_error(err)?, status))
}

/// An empty text field is "not given".
pub(crate) fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
