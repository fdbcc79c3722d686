//! Extractors whose rejections are [`ApiError`]s, and the bearer-token gate.
//!
//! axum's own extractors answer bad input with plain-text bodies; these wrappers keep
//! every error in the one JSON shape.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use latchkey_idp::ErrorCode;
use latchkey_idp::audit::{Actor, Change};
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
        // The path as the client sent it (this router is nested under `/api/v1`).
        let path = crate::error::attempted_path(
            req.extensions()
                .get::<OriginalUri>()
                .map_or(req.uri(), |o| &o.0),
        );
        return Err(refuse_read_only(&state, &token, req.method(), &path).await);
    }
    req.extensions_mut().insert(Caller(token));
    Ok(next.run(req).await)
}

/// The one home of the API's 403: a read-only token (`api_read`) asking to change
/// something. Like the console's refusals (`console.refused`), it is logged and audited as
/// `api.refused` under the token's identity, with the scope the request needed as
/// `permission`, the rule as `reason`, the method and path, the code, and the operation ID
/// the response carries. An audit log that cannot be written is logged and the 403 stands.
/// (A 401, an unknown or wrong-scope token, is only logged: anyone can send one.)
async fn refuse_read_only(
    state: &ApiState,
    token: &TokenInfo,
    method: &Method,
    path: &str,
) -> ApiError {
    let operation_id = uuid::Uuid::new_v4().to_string();
    let code = ErrorCode::TokenReadOnly;
    let needed = TokenScope::Api.as_str();
    tracing::warn!(
        token = %token.id,
        permission = needed,
        reason = "scope",
        method = %method,
        path,
        operation_id,
        "API request refused: the token may only read"
    );
    let change = Change {
        action: "api.refused",
        target_kind: "api",
        target_id: path.to_owned(),
        target_name: path.to_owned(),
        before: None,
        after: Some(serde_json::json!({
            "permission": needed,
            "reason": "scope",
            "method": method.as_str(),
            "path": path,
            "code": code.as_str(),
            "operation_id": operation_id,
        })),
    };
    if let Err(e) = state
        .store
        .audit()
        .record(&token.actor(), state.store.now(), change)
        .await
    {
        tracing::error!(operation_id, error = %e, "API: the refusal's audit event was not written");
    }
    ApiError::new(
        code,
        "this token may only read (scope api_read): GET and HEAD",
    )
    .with_operation_id(operation_id)
}
