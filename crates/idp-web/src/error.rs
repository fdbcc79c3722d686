//! The one place where a failed browser request becomes a page.
//!
//! Every error page shows a short code (`SSO-ACS`, `WEB-CSRF`...) and a fresh operation ID;
//! the log line for the same failure carries both plus the details, so an admin can find the
//! line for the page a user screenshotted. Server faults show nothing internal. Bad input is
//! never a 500.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::html::render;
use super::pages::ErrorPage;
use latchkey_idp::enrollment::LinkState;
use latchkey_idp::error::PageCode;
use latchkey_idp::sso::SsoError;

/// A refused or failed browser request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// No such page.
    #[error("no such page")]
    NotFound,
    /// The path exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A form or query could not be read.
    #[error("malformed form: {0}")]
    BadForm(String),
    /// The body is larger than the route accepts; it was not read.
    #[error("request body too large: {0}")]
    TooLarge(String),
    /// The anti-forgery token was missing or did not match its cookie.
    #[error("the anti-forgery token is missing or wrong")]
    Csrf,
    /// A console page or change that none of the user's roles allows.
    #[error("{user} may not {permission:?}")]
    Forbidden {
        /// The signed-in user's username (for the log line).
        user: String,
        /// What was asked for.
        permission: latchkey_idp::console::Permission,
        /// The operation ID already written into the refusal's audit event
        /// (`console.refused`; for a user holding no console role, its log line only), so
        /// the page leads an admin to that event.
        operation_id: String,
    },
    /// An SSO request was refused (see [`SsoError`]). Made through `From`, which sends a
    /// store that was only busy to [`WebError::Busy`].
    #[error(transparent)]
    Sso(SsoError),
    /// A single-logout request was refused (see [`SsoError`]); nothing was signed out.
    #[error("logout request refused: {0}")]
    Logout(SsoError),
    /// A parked sign-out request (one that came by POST) expired or was already acted on.
    #[error("the sign-out request expired or was already used")]
    LogoutExpired,
    /// A LogoutRequest arrived a second time (its issuer and ID are recorded for the
    /// profile's time window); the replay ended nothing.
    #[error("the sign-out request was already used")]
    LogoutReplayed,
    /// A parked sign-in request expired or was already answered.
    #[error("the sign-in request expired or was already used")]
    RequestExpired,
    /// The user is not in any group the application is assigned to.
    #[error("user may not use application {app}")]
    Denied {
        /// The application's display name.
        app: String,
        /// The operation ID already written into the denial's audit event, so the page a
        /// user screenshots leads an admin to that event.
        operation_id: String,
    },
    /// The user has as many TOTP apps as allowed; nothing was added.
    #[error("the user already has {0} TOTP apps, the most allowed")]
    TooManyFactors(usize),
    /// A bounded resource (password hashing) is full; nothing was done.
    #[error("busy: {0}")]
    Busy(String, u64),
    /// This client has too many requests of a kind under way; nothing was done. Retry after
    /// the given seconds.
    #[error("too many requests from this client")]
    Throttled(u64),
    /// This client's network sent too many unsigned LogoutRequests; nothing was recorded or
    /// signed out. Retry after the given seconds.
    #[error("too many unsigned sign-out requests from this client")]
    LogoutThrottled(u64),
    /// An invitation or reset link that cannot be used; nothing was changed.
    #[error("the link {0}")]
    Link(latchkey_idp::enrollment::LinkState),
    /// A fault of the server (store, keys); details only in the log.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<latchkey_idp::error::Error> for WebError {
    fn from(err: latchkey_idp::error::Error) -> Self {
        match err {
            latchkey_idp::error::Error::Busy {
                retry_after_seconds,
                ..
            } => WebError::Busy(err.to_string(), retry_after_seconds),
            latchkey_idp::error::Error::Throttled {
                retry_after_seconds,
            } => WebError::Throttled(retry_after_seconds),
            latchkey_idp::error::Error::LinkUnusable { state, .. } => WebError::Link(state),
            // The admin code (`database_unwritable`, `corrupt_row`...) goes into the log line.
            _ => WebError::Internal(format!("{err} ({})", err.code())),
        }
    }
}

impl From<SsoError> for WebError {
    /// A store that turned an SSO request away for other writers (a deadlock, a
    /// serialization failure, SQLite busy) or had no free connection ([`Error::Busy`]) is
    /// busy, 503 with `Retry-After` as on every other surface, not the SSO fault page (500).
    fn from(e: SsoError) -> Self {
        match e {
            SsoError::Store(err @ latchkey_idp::error::Error::Busy { .. }) => err.into(),
            other => WebError::Sso(other),
        }
    }
}

impl WebError {
    /// A refused single-logout request; a store that was only busy is [`WebError::Busy`]
    /// (see `From<SsoError>`).
    pub(crate) fn logout(e: SsoError) -> Self {
        match e {
            SsoError::Store(err @ latchkey_idp::error::Error::Busy { .. }) => err.into(),
            other => WebError::Logout(other),
        }
    }
}

/// The page code of a failed response, left in its extensions for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct FailureCode(pub PageCode);

impl WebError {
    /// The short code shown on the page, logged and counted.
    pub fn code(&self) -> PageCode {
        match self {
            WebError::NotFound => PageCode::WebNotFound,
            WebError::MethodNotAllowed => PageCode::WebMethod,
            WebError::BadForm(_) => PageCode::WebForm,
            WebError::TooLarge(_) => PageCode::WebTooLarge,
            WebError::Csrf => PageCode::WebCsrf,
            WebError::Forbidden { .. } => PageCode::WebForbidden,
            WebError::Sso(e) | WebError::Logout(e) => e.code(),
            WebError::RequestExpired => PageCode::SsoExpired,
            WebError::LogoutExpired => PageCode::SloExpired,
            WebError::LogoutReplayed => PageCode::SloReplayed,
            WebError::Denied { .. } => PageCode::SsoDenied,
            WebError::TooManyFactors(_) => PageCode::MfaTooMany,
            WebError::Busy(..) => PageCode::WebBusy,
            WebError::Throttled(_) => PageCode::WebThrottled,
            WebError::LogoutThrottled(_) => PageCode::SloThrottled,
            WebError::Link(LinkState::Unknown) => PageCode::LinkUnknown,
            WebError::Link(LinkState::Expired) => PageCode::LinkExpired,
            WebError::Link(LinkState::Used) => PageCode::LinkUsed,
            WebError::Internal(_) => PageCode::WebInternal,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebError::Csrf | WebError::Denied { .. } | WebError::Forbidden { .. } => {
                StatusCode::FORBIDDEN
            }
            WebError::TooManyFactors(_) => StatusCode::CONFLICT,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Sso(SsoError::Binding(
                latchkey_saml::Error::EncodedTooLarge { .. }
                | latchkey_saml::Error::DecodedTooLarge { .. },
            ))
            | WebError::Logout(SsoError::Binding(
                latchkey_saml::Error::EncodedTooLarge { .. }
                | latchkey_saml::Error::DecodedTooLarge { .. },
            )) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Sso(e) | WebError::Logout(e) if e.is_internal() => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Busy(..) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Throttled(_) | WebError::LogoutThrottled(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::RequestExpired | WebError::LogoutExpired => StatusCode::GONE,
            WebError::Link(LinkState::Unknown) => StatusCode::NOT_FOUND,
            WebError::Link(_) => StatusCode::GONE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// What the user reads: specific enough to act on, never internal detail.
    fn explain(&self) -> (&'static str, String) {
        match self {
            WebError::NotFound => ("Not found", "There is no page at this address.".into()),
            WebError::MethodNotAllowed => {
                ("Not allowed", "This page cannot be used that way.".into())
            }
            WebError::BadForm(_) => (
                "Bad request",
                "The form could not be read. Go back and try again.".into(),
            ),
            WebError::TooLarge(_) => (
                "Too large",
                "What you sent is larger than this page accepts. Go back and send a smaller file."
                    .into(),
            ),
            WebError::Csrf => (
                "Please try again",
                "The form expired or was sent from another site. Reload the page and try again."
                    .into(),
            ),
            WebError::Forbidden { .. } => (
                "Not allowed",
                "Your console role does not allow this page or change. Ask an administrator \
                 if you need it."
                    .into(),
            ),
            WebError::RequestExpired => (
                "Sign-in expired",
                "This sign-in request has expired or was already used. Go back to the \
                 application and sign in again."
                    .into(),
            ),
            WebError::LogoutExpired => (
                "Sign-out expired",
                "This sign-out request has expired or was already used. To be sure you are \
                 signed out, sign out from the portal or close the browser."
                    .into(),
            ),
            WebError::LogoutReplayed => (
                "Sign-out already done",
                "This sign-out request was already used once, so it was not acted on again. \
                 If you meant to sign out, sign out from the portal or close the browser."
                    .into(),
            ),
            WebError::Denied { app, .. } => (
                "Access denied",
                format!(
                    "You are signed in, but your account is not allowed to use {}. \
                     Ask your administrator to give you access.",
                    app
                ),
            ),
            WebError::Sso(e) | WebError::Logout(e) if e.is_internal() => (
                "Something went wrong",
                "The sign-in service failed. Quote the operation ID below to your administrator."
                    .into(),
            ),
            WebError::Sso(_) => (
                "Sign-in request refused",
                // The rule it broke goes to the log under the operation ID, never to the
                // browser (whoever sent the request learns nothing of our checks).
                "The application sent a sign-in request this service cannot accept. Tell the \
                 application's administrator, quoting the code and operation ID below."
                    .into(),
            ),
            WebError::Logout(_) => (
                "Sign-out request refused",
                "The application sent a sign-out request this service cannot accept. Nothing \
                 was signed out here. Tell the application's administrator, quoting the code \
                 and operation ID below."
                    .into(),
            ),
            WebError::TooManyFactors(n) => (
                "Too many authenticator apps",
                format!(
                    "Your account already has {n} authenticator apps, the most allowed. \
                     Remove one on your account page before adding another."
                ),
            ),
            WebError::Link(state) => (
                "Link not usable",
                format!(
                    "This link {state}. Ask for a new one: a password reset from the sign-in \
                     page, an invitation from your administrator."
                ),
            ),
            WebError::Busy(..) => (
                "Busy",
                "The sign-in service is busy. Wait a moment and try again.".into(),
            ),
            WebError::Throttled(_) => (
                "Too many requests",
                "Too many sign-ins are under way from your network. Wait a minute and try again."
                    .into(),
            ),
            WebError::LogoutThrottled(_) => (
                "Too many requests",
                "Too many sign-out requests came from your network, so this one was not acted \
                 on and you may still be signed in. Wait a minute and try again, or sign out \
                 from the portal or close the browser."
                    .into(),
            ),
            WebError::Internal(_) => (
                "Something went wrong",
                "The sign-in service failed. Quote the operation ID below to your administrator."
                    .into(),
            ),
        }
    }
}

/// A fresh operation ID: 12 hex digits, enough to find one log line or audit event.
pub(crate) fn new_operation_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id.get(..12).unwrap_or(&id).to_owned()
}

/// The path a refusal records (the console's `console.refused`, the API's `api.refused`):
/// any path under `/admin` reaches the console's gate, and many under `/api/v1` the API's,
/// so it is cut to [`ATTEMPTED_PATH_MAX`] bytes (at a character boundary) before it is
/// logged or audited.
pub(crate) fn attempted_path(uri: &Uri) -> String {
    let path = uri.path();
    let mut end = path.len().min(ATTEMPTED_PATH_MAX);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path.get(..end).unwrap_or_default().to_owned()
}

/// The longest path a refusal records, in bytes.
const ATTEMPTED_PATH_MAX: usize = 200;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let operation_id = match &self {
            WebError::Denied { operation_id, .. } | WebError::Forbidden { operation_id, .. } => {
                operation_id.clone()
            }
            _ => new_operation_id(),
        };
        let status = self.status();
        let page_code = self.code();
        let code = page_code.as_str();
        if status.is_server_error() {
            tracing::error!(code, operation_id = %operation_id, error = %self, "request failed");
        } else {
            tracing::warn!(code, operation_id = %operation_id, error = %self, "request refused");
        }
        let (title, message) = self.explain();
        let page = ErrorPage {
            title,
            message: &message,
            code,
            operation_id: &operation_id,
            // Signed in as the wrong person is the usual reason: offer the way out.
            denied: matches!(self, WebError::Denied { .. }),
        };
        let mut response = match render(&page) {
            Ok(html) => (status, html).into_response(),
            // Not even the error page renders: the code and ID alone, as text.
            Err(_) => (
                status,
                format!("Error {code}, operation ID {operation_id}\n"),
            )
                .into_response(),
        };
        if let WebError::Busy(_, seconds)
        | WebError::Throttled(seconds)
        | WebError::LogoutThrottled(seconds) = self
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response.extensions_mut().insert(FailureCode(page_code));
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The one home of the path a refusal records (console and API alike): kept whole up to
    /// 200 bytes, cut at a character boundary beyond, the query never part of it.
    #[test]
    fn attempted_path_is_bounded_at_a_character_boundary() {
        let uri: Uri = "/admin/users/42?q=x".parse().unwrap();
        assert_eq!(attempted_path(&uri), "/admin/users/42");
        let long = format!("/api/v1/{}", "a".repeat(500));
        let uri: Uri = long.parse().unwrap();
        assert_eq!(attempted_path(&uri), long[..ATTEMPTED_PATH_MAX]);
        // "é" is two bytes, percent-encoded by a client but not necessarily by a raw one.
        let wide = format!("/admin/{}{}", "a".repeat(192), "é".repeat(10));
        let uri = Uri::builder()
            .path_and_query(wide.as_str())
            .build()
            .unwrap();
        let cut = attempted_path(&uri);
        assert_eq!(cut.len(), ATTEMPTED_PATH_MAX - 1, "{cut}");
        assert!(wide.starts_with(&cut));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod sso_tests {
    use super::*;

    /// An SSO or single-logout request the store turned away as busy (40P01, 40001,
    /// SQLite busy, a full pool) is a 503 with `Retry-After`, never the 500 of a fault; any
    /// other store failure stays the SSO fault page.
    #[test]
    fn a_busy_store_under_sso_is_503_not_500() {
        let busy = || {
            SsoError::Store(latchkey_idp::error::Error::Busy {
                what: latchkey_idp::error::DATABASE_CONTENDED,
                retry_after_seconds: 1,
            })
        };
        for e in [WebError::from(busy()), WebError::logout(busy())] {
            let response = e.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                response
                    .headers()
                    .contains_key(axum::http::header::RETRY_AFTER)
            );
        }
        let fault = WebError::from(SsoError::Build("x".into()));
        assert_eq!(
            fault.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
