//! What the console's forms share: the anti-forgery field, and how a refused change becomes
//! the form again with the field named.

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
        _ => return Err(err.into()),
    };
    Ok(FieldError {
        field,
        message: err.to_string(),
    })
}

/// An empty text field is "not given".
pub(crate) fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
