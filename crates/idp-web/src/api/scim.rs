//! An application's SCIM connection in the admin API (the IdP's SCIM client): set it (the
//! token is sealed and never answered back), read its delivery state, remove it (refused
//! while removals wait, unless forced); and per user, what still waits at which application.
//! Each change is audited under the calling token (`app.scim_connect`, `app.scim_disconnect`).

use axum::extract::State;
use axum::http::StatusCode;
use latchkey_idp::provisioning::{
    ConnectionStatus, NewConnection, OnRemove, Pending, ProvisioningError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use zeroize::Zeroizing;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};

/// A connection as set: the token is write-only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConnectionInput {
    /// The SCIM base URL (`https://.../scim/v2`; http only to a loopback host).
    pub url: String,
    /// The bearer token the application accepts; sealed at rest, never shown back.
    pub token: String,
    /// `deactivate` (default) or `delete`: what happens to a user who is unassigned,
    /// suspended or deleted.
    #[serde(default)]
    pub on_remove: Option<String>,
}

impl std::fmt::Debug for ScimConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimConnectionInput")
            .field("url", &self.url)
            .field("token", &"***")
            .field("on_remove", &self.on_remove)
            .finish()
    }
}

/// An application's SCIM connection and its delivery state. `latchkey app scim show
/// --json` prints the same object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScimStatusDto {
    /// The application's ID.
    pub app_id: String,
    /// The SCIM base URL.
    pub base_url: String,
    /// `deactivate` or `delete`.
    pub on_remove: String,
    /// Outbox rows waiting for this application.
    pub queue_length: u64,
    /// When the oldest waiting row was written (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub oldest_queued_at: Option<OffsetDateTime>,
    /// The last delivery that succeeded (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
    /// The last reconciliation run (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sync_at: Option<OffsetDateTime>,
}

impl From<ConnectionStatus> for ScimStatusDto {
    fn from(s: ConnectionStatus) -> Self {
        ScimStatusDto {
            app_id: s.app_id.to_string(),
            base_url: s.base_url,
            on_remove: s.on_remove.to_string(),
            queue_length: s.queue_length,
            oldest_queued_at: s.oldest_queued_at,
            last_success_at: s.last_success_at,
            last_error: s.last_error,
            last_error_at: s.last_error_at,
            last_sync_at: s.last_sync_at,
        }
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(err: ProvisioningError) -> Self {
        match err {
            ProvisioningError::Store(e) => e.into(),
            other => {
                let code = other.code();
                if super::error::answered_as_internal(code) {
                    return ApiError::internal(code, &other);
                }
                ApiError::new(code, other.to_string())
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/apps/{app}/scim", operation_id = "apps_scim_get", tag = "apps",
    params(("app" = String, Path, description = "Entity ID or ID")),
    responses((status = 200, description = "OK", body = ScimStatusDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such application, or no SCIM connection", body = ErrorBody)),
    security(("bearer" = [])))]
/// The application's SCIM connection and delivery state (never its token).
pub async fn get(
    State(state): State<ApiState>,
    _caller: Caller,
    ApiPath(app): ApiPath<String>,
) -> Result<axum::Json<ScimStatusDto>, ApiError> {
    let app = state.store.apps().lookup(&app).await?;
    let status = state.store.provisioning().status(app.id).await?.ok_or(
        ProvisioningError::NotConnected {
            app: app.settings.entity_id,
        },
    )?;
    Ok(axum::Json(status.into()))
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/scim", operation_id = "apps_scim_set", tag = "apps", request_body = ScimConnectionInput,
    params(("app" = String, Path, description = "Entity ID or ID")),
    responses((status = 200, description = "OK", body = ScimStatusDto), (status = 400, description = "Invalid body", body = ErrorBody), (status = 422, description = "Invalid URL, token or on_remove", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Connects the application to its SCIM server (or changes the connection) and queues
/// every user it should hold; audited as `app.scim_connect` without the token.
pub async fn set(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<ScimConnectionInput>,
) -> Result<axum::Json<ScimStatusDto>, ApiError> {
    let app = state.store.apps().lookup(&app).await?;
    let on_remove: OnRemove = match body.on_remove.as_deref() {
        Some(text) => text.parse()?,
        None => OnRemove::default(),
    };
    let Some(kek) = state.sealing_kek.as_deref() else {
        return Err(ApiError::internal(
            latchkey_idp::ErrorCode::Internal,
            &"no key to seal SCIM tokens with",
        ));
    };
    let status = state
        .store
        .provisioning()
        .connect(
            &caller.actor(),
            kek,
            app.id,
            NewConnection {
                base_url: body.url,
                token: Zeroizing::new(body.token),
                on_remove,
            },
        )
        .await?;
    Ok(axum::Json(status.into()))
}

/// How a disconnect goes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ScimDeleteQuery {
    /// Disconnect even while removals wait in the queue: they are dropped (those users
    /// keep their access at the application) and the audit event names them. Default false.
    pub force: Option<bool>,
}

#[utoipa::path(delete, path = "/api/v1/apps/{app}/scim", operation_id = "apps_scim_delete", tag = "apps",
    params(("app" = String, Path, description = "Entity ID or ID"), ScimDeleteQuery),
    responses((status = 204, description = "Disconnected"), (status = 400, description = "The query string does not parse", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such application, or no SCIM connection", body = ErrorBody),
        (status = 409, description = "`scim_removals_pending`: removals not yet delivered would be dropped; nothing was changed (see `force`)", body = ErrorBody)),
    security(("bearer" = [])))]
/// Removes the application's SCIM connection and its queue; audited as
/// `app.scim_disconnect` (naming the users whose removals were dropped, when forced).
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app): ApiPath<String>,
    ApiQuery(q): ApiQuery<ScimDeleteQuery>,
) -> Result<StatusCode, ApiError> {
    let app = state.store.apps().lookup(&app).await?;
    state
        .store
        .provisioning()
        .disconnect(&caller.actor(), app.id, q.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A change waiting for one user at one application. `latchkey user provisioning --json`
/// prints a list of the same objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PendingChangeDto {
    /// The application's ID.
    pub app_id: String,
    /// Its entity ID.
    pub app: String,
    /// `removal` (the user keeps access there until it is delivered) or `update`.
    pub kind: String,
    /// When the oldest waiting change was made (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// Deliveries tried and failed so far.
    pub attempts: i64,
    /// When it is tried next (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// The last failure, as the application or the network said it.
    pub last_error: Option<String>,
}

impl From<Pending> for PendingChangeDto {
    fn from(p: Pending) -> Self {
        PendingChangeDto {
            app_id: p.app_id.to_string(),
            app: p.app,
            kind: p.kind.as_str().to_owned(),
            since: p.since,
            attempts: p.attempts,
            next_attempt_at: p.next_attempt_at,
            last_error: p.last_error,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/users/{user}/provisioning", operation_id = "users_provisioning", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = Vec<PendingChangeDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// What waits for the user at applications over SCIM, per application: removals and
/// updates not yet delivered, with their age, tries and last failure. Empty when every
/// application holds what the directory says.
pub async fn user_pending(
    State(state): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<axum::Json<Vec<PendingChangeDto>>, ApiError> {
    let id = state.store.users().lookup(&user).await?.id;
    let pending = state.store.provisioning().pending_for_user(id).await?;
    Ok(axum::Json(
        pending.into_iter().map(PendingChangeDto::from).collect(),
    ))
}
