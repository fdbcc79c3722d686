//! `/api/v1/roles`: console roles (admin, helpdesk, auditor) granted to users or groups.
//! A `{role}` segment is a role's name; `{user}` and `{group}` resolve as elsewhere.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, Caller};
use latchkey_idp::console::{Grant, Holder, Role};

/// One role grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RoleGrantDto {
    /// `admin`, `helpdesk` or `auditor`.
    pub role: String,
    /// `user` or `group`.
    pub holder_kind: String,
    /// The user's or group's internal ID.
    pub holder_id: String,
    /// The user's username or the group's name.
    pub holder_name: String,
}

impl From<Grant> for RoleGrantDto {
    fn from(g: Grant) -> Self {
        RoleGrantDto {
            role: g.role.as_str().to_string(),
            holder_kind: g.holder_kind,
            holder_id: g.holder_id,
            holder_name: g.holder_name,
        }
    }
}

#[utoipa::path(get, path = "/api/v1/roles", operation_id = "roles_list", tag = "roles",
    responses((status = 200, description = "OK", body = Vec<RoleGrantDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody)),
    security(("bearer" = [])))]
/// Every role grant: by role, users before groups, then by name.
pub async fn list(
    State(state): State<ApiState>,
) -> Result<axum::Json<Vec<RoleGrantDto>>, ApiError> {
    let grants = state.store.roles().list().await?;
    Ok(axum::Json(
        grants.into_iter().map(RoleGrantDto::from).collect(),
    ))
}

/// A grant or a revocation: the two ways a role changes hands.
#[derive(Clone, Copy)]
enum Change {
    Grant,
    Revoke,
}

/// The one body of the four role handlers.
async fn change(
    state: &ApiState,
    caller: &Caller,
    role: Role,
    holder: Holder,
    change: Change,
) -> Result<StatusCode, ApiError> {
    let roles = state.store.roles();
    match change {
        Change::Grant => roles.grant(&caller.actor(), role, holder).await?,
        Change::Revoke => roles.revoke(&caller.actor(), role, holder).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn user_holder(state: &ApiState, user: &str) -> Result<Holder, ApiError> {
    Ok(Holder::User(state.store.users().lookup(user).await?.id))
}

async fn group_holder(state: &ApiState, group: &str) -> Result<Holder, ApiError> {
    Ok(Holder::Group(state.store.groups().lookup(group).await?.id))
}

#[utoipa::path(put, path = "/api/v1/roles/{role}/users/{user}", operation_id = "roles_grant_user", tag = "roles",
    params(("role" = String, Path, description = "admin, helpdesk or auditor"),
        ("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Grants a role to a user.
pub async fn grant_user(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((role, user)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&role)?;
    let holder = user_holder(&state, &user).await?;
    change(&state, &caller, role, holder, Change::Grant).await
}

#[utoipa::path(delete, path = "/api/v1/roles/{role}/users/{user}", operation_id = "roles_revoke_user", tag = "roles",
    params(("role" = String, Path, description = "admin, helpdesk or auditor"),
        ("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Revokes a role granted to a user directly (one held through a group stays).
pub async fn revoke_user(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((role, user)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&role)?;
    let holder = user_holder(&state, &user).await?;
    change(&state, &caller, role, holder, Change::Revoke).await
}

#[utoipa::path(put, path = "/api/v1/roles/{role}/groups/{group}", operation_id = "roles_grant_group", tag = "roles",
    params(("role" = String, Path, description = "admin, helpdesk or auditor"),
        ("group" = String, Path, description = "ID or name")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Grants a role to every member of a group.
pub async fn grant_group(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((role, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&role)?;
    let holder = group_holder(&state, &group).await?;
    change(&state, &caller, role, holder, Change::Grant).await
}

#[utoipa::path(delete, path = "/api/v1/roles/{role}/groups/{group}", operation_id = "roles_revoke_group", tag = "roles",
    params(("role" = String, Path, description = "admin, helpdesk or auditor"),
        ("group" = String, Path, description = "ID or name")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Revokes a role granted to a group.
pub async fn revoke_group(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((role, group)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let role = Role::parse(&role)?;
    let holder = group_holder(&state, &group).await?;
    change(&state, &caller, role, holder, Change::Revoke).await
}
