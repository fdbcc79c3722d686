//! Second factors in the admin API: a user's factors (names, kind, times; never a secret),
//! resetting them, requiring one of a user, and the MFA policy of applications and groups.
//! Each change is audited under the calling token (`api:<token id>`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy, class_name};
use latchkey_idp::mfa::{FactorInfo, FactorKind, Factors};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiPath, Caller};
use latchkey_idp::error::Error;

/// One second factor of a user, as admins see it. `latchkey user mfa list --json` prints
/// the same objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FactorDto {
    /// The factor's ID (`recovery-codes` for the set of codes).
    pub id: String,
    /// `totp`, `webauthn` (a passkey or security key) or `recovery_codes`.
    pub kind: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was enrolled (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used to sign in (RFC 3339), if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Recovery codes left (recovery codes only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub remaining: Option<i64>,
}

impl From<FactorInfo> for FactorDto {
    fn from(f: FactorInfo) -> Self {
        FactorDto {
            id: f.id,
            kind: match f.kind {
                FactorKind::Totp => "totp",
                FactorKind::RecoveryCodes => "recovery_codes",
                FactorKind::Webauthn => "webauthn",
            }
            .to_owned(),
            name: f.name,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
            remaining: f.remaining,
        }
    }
}

/// Whether a second factor is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequireMfa {
    /// Require a second factor.
    pub require_mfa: bool,
}

/// An application's MFA settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppMfaDto {
    /// Every sign-in to the application needs a second factor.
    pub require_mfa: bool,
    /// The multi-factor class its assertions state: `refeds` (`https://refeds.org/profile/mfa`,
    /// the default) or `mobile_two_factor` (`MobileTwoFactorContract`).
    #[serde(default = "refeds")]
    pub mfa_class: String,
}

fn refeds() -> String {
    "refeds".into()
}

impl From<AppMfa> for AppMfaDto {
    fn from(a: AppMfa) -> Self {
        AppMfaDto {
            require_mfa: a.require_mfa,
            mfa_class: class_name::as_str(a.mfa_class).to_owned(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/users/{user}/factors", operation_id = "users_factors_list", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = Vec<FactorDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Lists a user's confirmed second factors: names, kinds and times, never a secret.
pub async fn list_factors(
    State(state): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<axum::Json<Vec<FactorDto>>, ApiError> {
    let user = state.store.users().lookup(&user).await?;
    let factors = Factors::new(&state.store).list(&user).await?;
    Ok(axum::Json(
        factors.into_iter().map(FactorDto::from).collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}/factors", operation_id = "users_factors_reset", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Removes every second factor of a user (a lost device); audited as `mfa.reset`.
pub async fn reset_factors(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let user = state.store.users().lookup(&user).await?;
    Factors::new(&state.store)
        .reset(&caller.actor(), &user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/users/{user}/mfa", operation_id = "users_mfa_require", tag = "users", request_body = RequireMfa,
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = RequireMfa), (status = 400, description = "Invalid body", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Requires (or stops requiring) a second factor of this user; audited as `user.mfa_required`.
pub async fn require_for_user(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    ApiJson(body): ApiJson<RequireMfa>,
) -> Result<axum::Json<RequireMfa>, ApiError> {
    let user = state.store.users().lookup(&user).await?;
    MfaPolicy::new(&state.store)
        .require_for_user(&caller.actor(), &user, body.require_mfa)
        .await?;
    Ok(axum::Json(body))
}

#[utoipa::path(put, path = "/api/v1/groups/{group}/mfa", operation_id = "groups_mfa_set", tag = "groups", request_body = RequireMfa,
    params(("group" = String, Path, description = "Group name or ID"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the group this changes")),
    responses((status = 200, description = "OK; `ETag` is the group's", body = RequireMfa), (status = 400, description = "Invalid body", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 412, description = "`If-Match` names another version: the group or its members changed since it was read; nothing was written", body = ErrorBody)),
    security(("bearer" = [])))]
/// Requires (or stops requiring) a second factor of the group's members; audited as
/// `group.mfa_policy`. With `If-Match` (the `ETag` of a read of the group), only if nobody
/// changed the group or its members since: else 412 `changed_since` and nothing is written.
/// Answers the group's `ETag`, as its other writes do.
pub async fn set_group(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(group): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RequireMfa>,
) -> Result<impl IntoResponse, ApiError> {
    let if_match = IfMatch::of(&headers);
    let group = state.store.groups().lookup(&group).await?;
    let now = MfaPolicy::new(&state.store)
        .set_group_if(&caller.actor(), &group, body.require_mfa, |now| {
            if_match.admits(&now.version())
        })
        .await?;
    Ok((etag::of(&now.version()), axum::Json(body)))
}

#[utoipa::path(put, path = "/api/v1/apps/{app}/mfa", operation_id = "apps_mfa_set", tag = "apps", request_body = AppMfaDto,
    params(("app" = String, Path, description = "Entity ID or ID")),
    responses((status = 200, description = "OK", body = AppMfaDto), (status = 400, description = "Invalid body", body = ErrorBody), (status = 422, description = "Unknown mfa_class", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Sets whether the application requires a second factor, and which multi-factor class
/// its assertions state; audited as `app.mfa_policy`.
pub async fn set_app(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<AppMfaDto>,
) -> Result<axum::Json<AppMfaDto>, ApiError> {
    let app = state.store.apps().lookup(&app).await?;
    let mfa_class = class_name::parse(&body.mfa_class).ok_or_else(|| Error::InvalidField {
        field: "mfa_class",
        reason: "expected \"refeds\" or \"mobile_two_factor\"".into(),
    })?;
    let to = AppMfa {
        require_mfa: body.require_mfa,
        mfa_class,
    };
    MfaPolicy::new(&state.store)
        .set_app(&caller.actor(), &app, to)
        .await?;
    Ok(axum::Json(to.into()))
}
