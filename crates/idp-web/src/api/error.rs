//! The one place where failures become HTTP responses.
//!
//! Every response body on error is `{"error": CODE, "message": TEXT, "field"?: NAME,
//! "operation_id"?: ID}`. `CODE` is a stable snake_case word clients can branch on;
//! `message` is for people. Faults of the server itself (database down, corrupt row)
//! answer 500 with only an operation ID: the details go to the log under that ID, so
//! an admin can find them, and nothing internal reaches the client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use latchkey_idp::error::Error;

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `duplicate_username`, `invalid_field`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For server faults: the ID under which the details were logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// `Retry-After` seconds, for 503 busy.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and message and no field.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                field: None,
                operation_id: None,
            },
            retry_after: None,
        }
    }

    /// Names the request field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Missing, malformed, unknown or revoked bearer token; deliberately one answer.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin API token is required (Authorization: Bearer lk_...)",
        )
    }

    /// A request field that does not parse.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A server fault: logged in full under a fresh operation ID, answered with the ID only.
    fn internal(err: &dyn std::fmt::Display) -> Self {
        let operation_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(operation_id = %operation_id, error = %err, "admin API request failed");
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the server failed; quote operation ID {operation_id} to its administrator"),
        );
        e.body.operation_id = Some(operation_id);
        e
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use StatusCode as S;
        let message = err.to_string();
        match &err {
            Error::DuplicateUsername { .. } => {
                Self::new(S::CONFLICT, "duplicate_username", message).with_field("username")
            }
            Error::DuplicateEmail { .. } => {
                Self::new(S::CONFLICT, "duplicate_email", message).with_field("email")
            }
            Error::DuplicateGroup { .. } => {
                Self::new(S::CONFLICT, "duplicate_group", message).with_field("name")
            }
            Error::DuplicateEntityId { .. } => {
                Self::new(S::CONFLICT, "duplicate_entity_id", message).with_field("entity_id")
            }
            Error::UnknownUser { .. } => Self::new(S::NOT_FOUND, "unknown_user", message),
            Error::UnknownGroup { .. } => Self::new(S::NOT_FOUND, "unknown_group", message),
            Error::UnknownApplication { .. } => Self::new(S::NOT_FOUND, "unknown_app", message),
            Error::UnknownToken { .. } => Self::new(S::NOT_FOUND, "unknown_token", message),
            Error::AlreadyMember { .. } => Self::new(S::CONFLICT, "already_member", message),
            Error::NotMember { .. } => Self::new(S::CONFLICT, "not_member", message),
            Error::AlreadyAssigned { .. } => Self::new(S::CONFLICT, "already_assigned", message),
            Error::NotAssigned { .. } => Self::new(S::CONFLICT, "not_assigned", message),
            Error::InvalidField { field, .. } => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(*field)
            }
            Error::EncryptionKeyUnsupported { .. } => Self::new(
                S::UNPROCESSABLE_ENTITY,
                "encryption_key_unsupported",
                message,
            )
            .with_field("encryption_cert"),
            Error::ImportRow { .. } => {
                Self::new(S::UNPROCESSABLE_ENTITY, "invalid_import_row", message)
            }
            Error::Csv(_) => Self::new(S::BAD_REQUEST, "invalid_csv", message),
            Error::Busy {
                retry_after_seconds,
                ..
            } => ApiError {
                retry_after: Some(*retry_after_seconds),
                ..Self::new(S::SERVICE_UNAVAILABLE, "busy", message)
            },
            // Everything else is the server's own fault (database, files, configuration,
            // corrupt rows). New variants land here until mapped: safe, if unhelpful.
            _ => Self::internal(&err),
        }
    }
}

impl From<latchkey_idp::catalog::CatalogError> for ApiError {
    fn from(err: latchkey_idp::catalog::CatalogError) -> Self {
        use latchkey_idp::catalog::CatalogError as C;
        match &err {
            C::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "unknown_template", err.to_string()),
            C::MissingPlaceholder(name) => Self::invalid("placeholders", err.to_string())
                .with_field(format!("placeholders.{name}")),
            C::NoUrlPattern { what, .. } => Self::invalid(what, err.to_string()),
            _ => Self::internal(&err),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rej: JsonRejection) -> Self {
        let code = match &rej {
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ => "invalid_body",
        };
        Self::new(rej.status(), code, rej.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rej: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", rej.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rej: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_path", rej.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(self.body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"latchkey-admin\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Answer for paths no route matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint")
}

/// Answer for a known path with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}
