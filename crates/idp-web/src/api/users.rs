//! `/api/v1/users`: the directory's users.
//!
//! A `{user}` path segment is resolved the way the CLI resolves what an admin types:
//! internal ID, then username, then e-mail address.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::groups::GroupDto;
use super::page::{self, PageInfo};
use latchkey_idp::directory::{
    AttributeValue, NewUser, User, UserCursor, UserFilter, UserPatch, UserStatus,
};
use latchkey_idp::password::{self, Password};

/// A user as the API shows it. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserDto {
    /// Immutable internal ID.
    pub id: Uuid,
    /// Login name (unique, case-insensitive).
    pub username: String,
    /// E-mail address (unique, case-insensitive).
    pub email: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Display name as stored (may be absent).
    pub display_name: Option<String>,
    /// Custom attributes: each a string or a list of strings.
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// `active` or `suspended`.
    pub status: String,
    /// Whether a password is set.
    pub has_password: bool,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            id: u.id.0,
            username: u.username,
            email: u.email,
            given_name: u.given_name,
            family_name: u.family_name,
            display_name: u.display_name,
            attributes: u.attributes,
            status: status_name(u.status).to_owned(),
            has_password: u.has_password,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

fn status_name(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => "active",
        UserStatus::Suspended => "suspended",
    }
}

/// One page of users.
///
/// Page through with `next_cursor` (keyset paging: every page costs the same). `page`, the
/// offset form older clients read, comes with every answer to a request without `cursor`;
/// its `total` is counted then, up to 10,000 (beyond, `total_is_lower_bound` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    /// The users on this page, ordered by case-folded username (byte-wise).
    pub items: Vec<UserDto>,
    /// Position of the page; absent when the request gave a `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<PageInfo>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Set (`true`) when `q` was too broad to search by the words of names: each of its
    /// words begins the words of 20,000 users or more (5,000 with another word, `status` or
    /// `group`). `items` then holds only the users whose username begins with `q`; another
    /// word or more letters narrow it. Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub search_too_broad: bool,
}

/// Filters for listing users.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserListQuery {
    /// Search, case-insensitive. With `@`, a prefix of the e-mail address (a whole address
    /// finds its user). Without, a prefix of the username, or words each beginning a word of
    /// the user's names, username or address (`smi`, `jane smith`); one letter searches
    /// usernames only, and so do words that each begin too many users' words (the page's
    /// `search_too_broad` says so). Prefixes because an index serves them.
    pub q: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// Only members of this group (name or ID).
    pub group: Option<String>,
    /// Page size (1-500, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Index of the first item (default 0). Deep offsets cost more; prefer `cursor`.
    pub offset: Option<u64>,
}

/// The kind tag inside user-listing cursors.
const USER_CURSOR: &str = "users";

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name.
    pub username: String,
    /// E-mail address.
    pub email: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Custom attributes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// `active` (default) or `suspended`.
    pub status: Option<String>,
    /// Initial password (checked against the password policy).
    pub password: Option<String>,
}

/// Changes to a user. An absent field is left alone; `null` clears an optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// New login name.
    pub username: Option<String>,
    /// New e-mail address.
    pub email: Option<String>,
    /// New given name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub given_name: Option<Option<String>>,
    /// New family name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub family_name: Option<Option<String>>,
    /// New display name, or `null` to clear.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// Custom attributes to add or replace.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub set_attributes: BTreeMap<String, AttributeValue>,
    /// Custom attributes to remove.
    #[serde(default)]
    pub remove_attributes: Vec<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent at all (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A password to set, or `null` to remove the user's password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password; `null` removes it (the user can then only sign in upstream).
    pub password: Option<String>,
}

fn parse_status(raw: Option<&str>) -> Result<Option<UserStatus>, ApiError> {
    raw.map(|s| match s {
        "active" => Ok(UserStatus::Active),
        "suspended" => Ok(UserStatus::Suspended),
        other => Err(ApiError::invalid(
            "status",
            format!("{other:?} is not one of: active, suspended"),
        )),
    })
    .transpose()
}

fn checked_password(
    config: &latchkey_idp::config::PasswordConfig,
    raw: Option<String>,
) -> Result<Option<Password>, ApiError> {
    raw.map(|p| {
        let p = Password::new(p);
        password::check_policy(config, &p)?;
        Ok(p)
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/users", operation_id = "users_list", tag = "users", params(UserListQuery),
    responses((status = 200, description = "OK", body = UserPage), (status = 400, description = "Malformed query, e.g. a `cursor` this listing did not hand out", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such group", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Lists users, filtered and paged in the database.
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<UserListQuery>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let limit = page::limit(q.limit)?;
    let store = &state.store;
    let filter = UserFilter {
        search: q.q.clone(),
        status: parse_status(q.status.as_deref())?,
        group: match &q.group {
            Some(group) => Some(store.groups().lookup(group).await?.id),
            None => None,
        },
    };
    page_of(store, &filter, limit, q.cursor.as_deref(), q.offset)
        .await
        .map(axum::Json)
}

/// A page of the users `filter` selects: after `cursor`, or at `offset` (counted then,
/// once per listing). The one listing behind `/users` and `/groups/{group}/members`.
pub(crate) async fn page_of(
    store: &latchkey_idp::Store,
    filter: &UserFilter,
    limit: u32,
    cursor: Option<&str>,
    offset: Option<u64>,
) -> Result<UserPage, ApiError> {
    let users = store.users();
    if let Some(cursor) = cursor {
        if offset.is_some() {
            return Err(ApiError::invalid("cursor", "give either cursor or offset"));
        }
        let after = UserCursor::from_key(page::decode_cursor(USER_CURSOR, cursor)?);
        let found = users.page(filter, Some(&after), limit).await?;
        return Ok(UserPage {
            items: found.users.into_iter().map(UserDto::from).collect(),
            page: None,
            next_cursor: found
                .next
                .map(|c| page::encode_cursor(USER_CURSOR, c.key())),
            search_too_broad: found.search_too_broad,
        });
    }
    let offset = offset.unwrap_or(0);
    // One row past the page says whether another follows, whatever the count says.
    // Counted no further than TOTAL_CAP: an exact count of 100,000 users was most of the
    // time of a first page (bench list); past the cap `total` is a lower bound, and says so.
    let (found, counted) = users
        .page_with_total(filter, offset, limit, page::TOTAL_CAP)
        .await?;
    let (items, more) = (found.users, found.next.is_some());
    let total = counted.min(page::TOTAL_CAP);
    let end = offset.saturating_add(items.len() as u64);
    Ok(UserPage {
        next_cursor: items
            .last()
            .filter(|_| more)
            .map(|last| page::encode_cursor(USER_CURSOR, UserCursor::after(last).key())),
        items: items.into_iter().map(UserDto::from).collect(),
        page: Some(PageInfo {
            total,
            total_is_lower_bound: counted > page::TOTAL_CAP,
            offset,
            limit,
            next_offset: more.then_some(end),
        }),
        search_too_broad: found.search_too_broad,
    })
}

#[utoipa::path(post, path = "/api/v1/users", operation_id = "users_create", tag = "users", request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody), (status = 503, description = "Busy (password hashing is full); see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
/// Creates a user.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, axum::Json<UserDto>), ApiError> {
    let new = NewUser {
        username: body.username,
        email: body.email,
        given_name: body.given_name,
        family_name: body.family_name,
        display_name: body.display_name,
        attributes: body.attributes,
        status: parse_status(body.status.as_deref())?.unwrap_or(UserStatus::Active),
        password: checked_password(&state.store.password_config(), body.password)?,
    };
    let user = state.store.users().create(&caller.actor(), new).await?;
    Ok((StatusCode::CREATED, axum::Json(user.into())))
}

#[utoipa::path(get, path = "/api/v1/users/{user}", operation_id = "users_get", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = UserDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Shows one user. Its `ETag` names this version of the user, for `If-Match` on a change.
pub async fn get(
    State(state): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let user = state.store.users().lookup(&user).await?;
    Ok((etag::of(&user.version()), axum::Json(UserDto::from(user))))
}

#[utoipa::path(patch, path = "/api/v1/users/{user}", operation_id = "users_update", tag = "users", request_body = PatchUser,
    params(("user" = String, Path, description = "ID, username or e-mail address"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the user this changes")),
    responses((status = 200, description = "OK", body = UserDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the user changed since it was read; nothing was written", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Changes a user's fields and attributes. With `If-Match` (the `ETag` of a read), only if
/// nobody changed the user since: else 412 `changed_since` and nothing is written.
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchUser>,
) -> Result<impl IntoResponse, ApiError> {
    let patch = UserPatch {
        username: body.username,
        email: body.email,
        given_name: body.given_name,
        family_name: body.family_name,
        display_name: body.display_name,
        set_attributes: body.set_attributes,
        remove_attributes: body.remove_attributes,
        status: parse_status(body.status.as_deref())?,
    };
    let if_match = IfMatch::of(&headers);
    let users = state.store.users();
    let id = users.lookup(&user).await?.id;
    let updated = users
        .update_if(
            &caller.actor(),
            id,
            |now| if_match.admits(&now.version()),
            patch,
        )
        .await?;
    Ok((
        etag::of(&updated.version()),
        axum::Json(UserDto::from(updated)),
    ))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}", operation_id = "users_delete", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Deletes a user with their memberships and pairwise NameIDs.
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let users = state.store.users();
    let id = users.lookup(&user).await?.id;
    users.delete(&caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/suspend", operation_id = "users_suspend", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = UserDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Refuses further sign-ins by the user.
pub async fn suspend(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<axum::Json<UserDto>, ApiError> {
    let users = state.store.users();
    let id = users.lookup(&user).await?.id;
    Ok(axum::Json(users.suspend(&caller.actor(), id).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/resume", operation_id = "users_resume", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = UserDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Allows sign-ins again.
pub async fn resume(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
) -> Result<axum::Json<UserDto>, ApiError> {
    let users = state.store.users();
    let id = users.lookup(&user).await?.id;
    Ok(axum::Json(users.resume(&caller.actor(), id).await?.into()))
}

#[utoipa::path(put, path = "/api/v1/users/{user}/password", operation_id = "users_set_password", tag = "users", request_body = SetPassword,
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody), (status = 503, description = "Busy (password hashing is full); see Retry-After", body = ErrorBody)),
    security(("bearer" = [])))]
/// Sets or removes the user's password.
pub async fn set_password(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(user): ApiPath<String>,
    ApiJson(body): ApiJson<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let password = checked_password(&state.store.password_config(), body.password)?;
    let users = state.store.users();
    let id = users.lookup(&user).await?.id;
    users.set_password(&caller.actor(), id, password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users/{user}/groups", operation_id = "users_groups", tag = "users",
    params(("user" = String, Path, description = "ID, username or e-mail address")),
    responses((status = 200, description = "OK", body = Vec<GroupDto>), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// The groups a user belongs to.
pub async fn groups(
    State(state): State<ApiState>,
    ApiPath(user): ApiPath<String>,
) -> Result<axum::Json<Vec<GroupDto>>, ApiError> {
    let id = state.store.users().lookup(&user).await?.id;
    let groups = state.store.groups().of_user(id).await?;
    Ok(axum::Json(groups.into_iter().map(GroupDto::from).collect()))
}
