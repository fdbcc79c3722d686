//! Extractors whose rejections are [`ApiError`]s, and the bearer-token gate.
//!
//! axum's own extractors answer bad input with plain-text bodies; these wrappers keep
//! every error in the one JSON shape.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use latchkey_idp::ErrorCode;
use latchkey_idp::audit::Actor;
use latchkey_idp::tokens::{ApiTokens, TokenInfo, TokenScope};

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Query-string parameters.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// The authenticated caller: the token the request presented.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// The audit actor changes are recorded under (`api:<token id>`).
    pub fn actor(&self) -> Actor {
        self.0.actor()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// Reads what [`require_token`] stored; a handler mounted outside the gate by
    /// mistake therefore refuses every request rather than running unauthenticated.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Middleware: lets a request through only with a live bearer token of the `api` scope, or
/// of `api_read` for a GET or HEAD (any other method is a 403 `token_read_only`). A `scim`
/// token is refused with the same 401 as an unknown one (the log line says why): it was made
/// for the directory's feed, not for managing the IdP.
pub(crate) async fn require_token(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(ApiError::unauthorized)?;
    let token = ApiTokens::new(&state.store)
        .verify(presented)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !token.scope.reaches_api() {
        tracing::warn!(token = %token.id, scope = token.scope.as_str(), "API request refused: the token's scope is not api");
        return Err(ApiError::unauthorized());
    }
    if token.scope == TokenScope::ApiRead && !matches!(*req.method(), Method::GET | Method::HEAD) {
        tracing::warn!(token = %token.id, method = %req.method(), path = req.uri().path(), "API request refused: the token may only read");
        return Err(ApiError::new(
            ErrorCode::TokenReadOnly,
            "this token may only read (scope api_read): GET and HEAD",
        ));
    }
    req.extensions_mut().insert(Caller(token));
    Ok(next.run(req).await)
}
