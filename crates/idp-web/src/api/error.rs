//! The one place where failures become HTTP responses.
//!
//! Every response body on error is `{"error": CODE, "message": TEXT, "field"?: NAME,
//! "operation_id"?: ID}`. `CODE` is an [`ErrorCode`], a stable snake_case word clients can
//! branch on, and [`status`] is the one place a code gets its HTTP status; `message` is for
//! people. Faults of the server itself (database down, corrupt row)
//! answer 500 with only an operation ID: the details go to the log under that ID, so
//! an admin can find them, and nothing internal reaches the client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use latchkey_idp::error::{Error, ErrorCode};

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
    /// For server faults and refusals (403): the ID under which the details were logged
    /// (and, for a refusal, audited).
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

/// The HTTP status of a code: the one place the API maps codes to statuses.
pub fn status(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::DuplicateUsername
        | C::DuplicateEmail
        | C::DuplicateGroup
        | C::DuplicateEntityId
        | C::AlreadyMember
        | C::NotMember
        | C::AlreadyGranted
        | C::NotGranted
        | C::LastAdmin
        | C::AlreadyAssigned
        | C::NotAssigned => StatusCode::CONFLICT,
        C::UnknownUser
        | C::UnknownGroup
        | C::UnknownApp
        | C::UnknownToken
        | C::UnknownTemplate
        | C::NotFound
        | C::LinkUnknown => StatusCode::NOT_FOUND,
        C::LinkExpired | C::LinkUsed => StatusCode::GONE,
        // Only an `If-Match` that no longer holds gives it here.
        C::ChangedSince => StatusCode::PRECONDITION_FAILED,
        C::Throttled => StatusCode::TOO_MANY_REQUESTS,
        C::InvalidField
        | C::PasswordTooShort
        | C::PasswordTooLong
        | C::PasswordTooCommon
        | C::EncryptionKeyUnsupported
        | C::InvalidImportRow
        | C::InvalidBody
        | C::InvalidMetadata
        | C::MetadataExpired
        | C::AmbiguousEntity
        | C::UnknownEntity
        | C::NoSpRole
        | C::NoSupportedAcs => StatusCode::UNPROCESSABLE_ENTITY,
        C::InvalidCsv | C::InvalidJson | C::InvalidQuery | C::InvalidPath => {
            StatusCode::BAD_REQUEST
        }
        C::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        C::Unauthorized => StatusCode::UNAUTHORIZED,
        C::TokenReadOnly => StatusCode::FORBIDDEN,
        C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        C::Busy => StatusCode::SERVICE_UNAVAILABLE,
        C::ScimNotConnected => StatusCode::NOT_FOUND,
        C::ScimRemovalsPending => StatusCode::CONFLICT,
        C::ScimUnavailable => StatusCode::BAD_GATEWAY,
        C::CorruptRow
        | C::ConfigInvalid
        | C::PasswordHashFailed
        | C::UnsupportedDatabase
        | C::NoDatabaseFile
        | C::MigrationFailed
        | C::DatabaseFailed
        | C::DatabaseUnwritable
        | C::DataDirUnwritable
        | C::AuditUnavailable
        | C::IoFailed
        | C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether the API answers this code as `internal` (a server fault: the code and the detail
/// go to the log under an operation ID, not to the client).
pub fn answered_as_internal(code: ErrorCode) -> bool {
    status(code) == StatusCode::INTERNAL_SERVER_ERROR
}

impl ApiError {
    /// An error with a code (and its status) and message, and no field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status: status(code),
            body: ErrorBody {
                error: code.as_str().to_owned(),
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

    /// Carries the operation ID the log line (and audit event) of this error name.
    pub(crate) fn with_operation_id(mut self, operation_id: String) -> Self {
        self.body.operation_id = Some(operation_id);
        self
    }

    /// Missing, malformed, unknown or revoked bearer token; deliberately one answer.
    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            "a valid admin API token is required (Authorization: Bearer lk_...)",
        )
    }

    /// A request field that does not parse.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, message).with_field(field)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// A server fault: logged in full, with its own code, under a fresh operation ID;
    /// answered `internal` with the ID only.
    pub(crate) fn internal(code: ErrorCode, err: &dyn std::fmt::Display) -> Self {
        let operation_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(
            operation_id = %operation_id,
            code = code.as_str(),
            error = %err,
            "admin API request failed"
        );
        let mut e = Self::new(
            ErrorCode::Internal,
            format!("the server failed; quote operation ID {operation_id} to its administrator"),
        );
        e.body.operation_id = Some(operation_id);
        e
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let code = err.code();
        if answered_as_internal(code) {
            return Self::internal(code, &err);
        }
        let field = match &err {
            Error::DuplicateUsername { .. } => Some("username"),
            Error::DuplicateEmail { .. } => Some("email"),
            Error::DuplicateGroup { .. } => Some("name"),
            Error::DuplicateEntityId { .. } => Some("entity_id"),
            Error::InvalidField { field, .. } => Some(*field),
            Error::EncryptionKeyUnsupported { .. } => Some("encryption_cert"),
            Error::PasswordRefused { .. } => Some("password"),
            _ => None,
        };
        let retry_after = match &err {
            Error::Busy {
                retry_after_seconds,
                ..
            }
            | Error::Throttled {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        };
        let mut e = Self::new(code, err.to_string());
        e.body.field = field.map(str::to_owned);
        e.retry_after = retry_after;
        e
    }
}

impl From<latchkey_idp::catalog::CatalogError> for ApiError {
    fn from(err: latchkey_idp::catalog::CatalogError) -> Self {
        use latchkey_idp::catalog::CatalogError as C;
        match &err {
            C::NotFound(_) => Self::new(ErrorCode::UnknownTemplate, err.to_string()),
            C::MissingPlaceholder(name) => Self::invalid("placeholders", err.to_string())
                .with_field(format!("placeholders.{name}")),
            C::NoUrlPattern { what, .. } => Self::invalid(what, err.to_string()),
            _ => Self::internal(ErrorCode::Internal, &err),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rej: JsonRejection) -> Self {
        let code = match &rej {
            JsonRejection::JsonDataError(_) => ErrorCode::InvalidBody,
            JsonRejection::JsonSyntaxError(_) => ErrorCode::InvalidJson,
            JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
            _ => ErrorCode::InvalidBody,
        };
        // The body could not even be buffered (too large, cut off): axum's status says which.
        let mut e = Self::new(code, rej.body_text());
        e.status = rej.status();
        e
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rej: QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidQuery, rej.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rej: PathRejection) -> Self {
        Self::new(ErrorCode::InvalidPath, rej.body_text())
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
    ApiError::new(ErrorCode::NotFound, "no such API endpoint")
}

/// Answer for a known path with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    )
}
