//! Extractors for what every page handler needs from the browser: its session, the
//! anti-forgery token for the forms it shows, and the check of a form it posted.
//!
//! These are the only readers of the IdP's cookies in the handlers (the passkey endpoints in
//! `webauthn.rs` still read their own, until their page moves to a template), so the rules of
//! [`super::cookies`] (exactly one cookie of a name, `__Host-` names) apply to every page.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponseParts, ResponseParts};
use serde::de::DeserializeOwned;

use super::{WebError, WebState, cookies};
use latchkey_idp::apps::AppsVersion;
use latchkey_idp::ids::AppId;
use latchkey_idp::session::{Session, Sessions};
use latchkey_idp::sso::grant::{self, Grant};

/// The session cookie's token, not yet checked (checking costs a store read; handlers that
/// may refuse the request first call [`SessionCookie::resume`] only when they need it).
#[derive(Debug, Clone, Default)]
pub struct SessionCookie(Option<String>);

impl SessionCookie {
    /// The token, to end the session it names.
    pub fn token(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The session the cookie names, if still valid (see [`Sessions::resume`]).
    pub async fn resume(&self, state: &WebState) -> Result<Option<Session>, WebError> {
        let Some(token) = &self.0 else {
            return Ok(None);
        };
        Ok(Sessions::new(state.store())
            .resume(token, state.store().now(), state.settings().session_idle)
            .await?)
    }
}

impl SessionCookie {
    /// The session the cookie names, if still valid, with its grant at `app` and the
    /// applications' version: what a sign-in to `app` reads, in one statement (see
    /// [`grant::resume`]).
    pub async fn resume_for(
        &self,
        state: &WebState,
        app: AppId,
    ) -> Result<Option<(Session, Grant, AppsVersion)>, WebError> {
        let Some(token) = &self.0 else {
            return Ok(None);
        };
        Ok(grant::resume(
            state.store(),
            token,
            state.store().now(),
            state.settings().session_idle,
            app,
        )
        .await?)
    }
}

impl FromRequestParts<WebState> for SessionCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        Ok(SessionCookie(cookies::session_token(
            state.settings(),
            &parts.headers,
        )))
    }
}

/// The signed-in user's live session, if any.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Option<Session>);

impl FromRequestParts<WebState> for CurrentSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let cookie = SessionCookie(cookies::session_token(state.settings(), &parts.headers));
        Ok(CurrentSession(cookie.resume(state).await?))
    }
}

/// A page's one path segment (a link's token, an object's ID), percent-decoded. One that
/// does not decode (invalid UTF-8) names no page: [`WebError::NotFound`], the error page with
/// its code, not axum's plain-text rejection.
#[derive(Debug, Clone)]
pub struct PathSegment(pub String);

impl FromRequestParts<WebState> for PathSegment {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(segment)) => Ok(PathSegment(segment)),
            Err(rejection) => {
                tracing::info!(path = parts.uri.path(), %rejection, "unreadable path segment");
                Err(WebError::NotFound)
            }
        }
    }
}

/// The client's address ([`super::client_addr`]: the socket peer, or the proxy's last
/// `X-Forwarded-For` hop when configured), for what is counted per client.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<WebState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        let connect = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientAddress(super::client_addr(
            state.settings(),
            &parts.headers,
            connect,
        )))
    }
}

/// The trusted-browser cookie, if any (verified by the caller against the account).
#[derive(Debug, Clone)]
pub struct DeviceCookie(pub Option<String>);

impl FromRequestParts<WebState> for DeviceCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        Ok(DeviceCookie(cookies::device_token(
            state.settings(),
            &parts.headers,
        )))
    }
}

/// The anti-forgery token to put in the forms of this response: the browser's own if sane,
/// else a new one. Returned as part of the response, it installs the new cookie.
#[derive(Debug, Clone)]
pub struct CsrfToken {
    value: String,
    set_cookie: Option<String>,
}

impl CsrfToken {
    /// The value for the form's hidden `csrf` field.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl FromRequestParts<WebState> for CsrfToken {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Infallible> {
        let (value, set_cookie) = cookies::csrf_token(state.settings(), &parts.headers);
        Ok(CsrfToken { value, set_cookie })
    }
}

impl IntoResponseParts for CsrfToken {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        if let Some(cookie) = self.set_cookie
            && let Ok(v) = HeaderValue::from_str(&cookie)
        {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(res)
    }
}

/// A form that carries the anti-forgery field.
pub trait CsrfField {
    /// The submitted `csrf` field.
    fn csrf(&self) -> Option<&str>;
}

/// A posted form whose `csrf` field matched the browser's anti-forgery cookie: a form
/// that cannot be read is [`WebError::BadForm`], a missing or foreign token
/// [`WebError::Csrf`], before the handler runs.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

impl<T> FromRequest<WebState> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let cookie = cookies::csrf_cookie(state.settings(), req.headers());
        let Form(form) = Form::<T>::from_request(req, state)
            .await
            .map_err(|e| unreadable(e.status(), e.body_text()))?;
        if !cookies::csrf_matches(cookie.as_deref(), form.csrf()) {
            return Err(WebError::Csrf);
        }
        Ok(CsrfForm(form))
    }
}

/// How a body that could not be read is answered: past the route's body limit the reader
/// stops with 413, and the page says so (`WEB-TOO-LARGE`), not that the form was malformed.
fn unreadable(status: axum::http::StatusCode, text: String) -> WebError {
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge(text)
    } else {
        WebError::BadForm(text)
    }
}

/// A form with no field but the anti-forgery token.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

impl CsrfField for CsrfOnly {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The most parts a multipart form may have: the console's upload has three.
const MAX_UPLOAD_PARTS: usize = 8;

/// A posted multipart form (a file upload) whose anti-forgery field matched the browser's
/// cookie. The `csrf` part must come first, as the forms put it, so nothing of a forged
/// upload is read past it; the rest is read into memory as text, within the route's body
/// limit (`DefaultBodyLimit`) and [`MAX_UPLOAD_PARTS`].
#[derive(Debug)]
pub struct CsrfUpload {
    /// (part name, text, whether it was a file).
    parts: Vec<(String, String, bool)>,
}

impl CsrfUpload {
    /// A text field's value.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.part(name, false)
    }

    /// An uploaded file's contents.
    pub fn file(&self, name: &str) -> Option<&str> {
        self.part(name, true)
    }

    fn part(&self, name: &str, file: bool) -> Option<&str> {
        self.parts
            .iter()
            .find(|(n, _, f)| n == name && *f == file)
            .map(|(_, text, _)| text.as_str())
    }
}

impl FromRequest<WebState> for CsrfUpload {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let cookie = cookies::csrf_cookie(state.settings(), req.headers());
        let bad =
            |e: axum::extract::multipart::MultipartError| unreadable(e.status(), e.body_text());
        let mut multipart = axum::extract::Multipart::from_request(req, state)
            .await
            .map_err(|e| WebError::BadForm(e.body_text()))?;
        let Some(first) = multipart.next_field().await.map_err(bad)? else {
            return Err(WebError::Csrf);
        };
        if first.name() != Some("csrf") {
            return Err(WebError::Csrf);
        }
        let token = first.text().await.map_err(bad)?;
        if !cookies::csrf_matches(cookie.as_deref(), Some(&token)) {
            return Err(WebError::Csrf);
        }
        let mut parts = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            if parts.len() >= MAX_UPLOAD_PARTS {
                return Err(WebError::BadForm("too many form parts".into()));
            }
            let name = field.name().unwrap_or_default().to_owned();
            let file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(bad)?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| WebError::BadForm(format!("{name}: not UTF-8 text")))?;
            parts.push((name, text, file));
        }
        Ok(CsrfUpload { parts })
    }
}
