//! `/api/v1/groups`: groups and their members. A `{group}` segment is an ID or a name.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::page::{self, PageInfo};
use super::users::{UserPage, page_of};
use latchkey_idp::directory::{Group, NewGroup, UserFilter, VersionedGroup};

/// A group as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupDto {
    /// Internal ID.
    pub id: Uuid,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Group> for GroupDto {
    fn from(g: Group) -> Self {
        GroupDto {
            id: g.id.0,
            name: g.name,
            description: g.description,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

/// One page of groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupPage {
    /// The groups on this page, ordered by name.
    pub items: Vec<GroupDto>,
    /// Position of the page.
    pub page: PageInfo,
}

/// Filters for listing groups.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupListQuery {
    /// Substring of name or description (case-insensitive).
    pub q: Option<String>,
    /// Page size (1-500, default 50).
    pub limit: Option<u32>,
    /// Index of the first item (default 0).
    pub offset: Option<u64>,
}

/// A new group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Name.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/groups", operation_id = "groups_list", tag = "groups", params(GroupListQuery),
    responses((status = 200, description = "OK", body = GroupPage), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Lists groups, filtered and paged.
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<GroupListQuery>,
) -> Result<axum::Json<GroupPage>, ApiError> {
    page::limit(q.limit)?;
    let mut groups = state.store.groups().list().await?;
    groups.retain(|g| page::matches(&q.q, &[Some(&g.name), g.description.as_deref()]));
    let (items, page) = page::paginate(groups, q.limit, q.offset)?;
    Ok(axum::Json(GroupPage {
        items: items.into_iter().map(GroupDto::from).collect(),
        page,
    }))
}

#[utoipa::path(post, path = "/api/v1/groups", operation_id = "groups_create", tag = "groups", request_body = CreateGroup,
    responses((status = 201, description = "Created", body = GroupDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Creates a group. Its `ETag` is that of a read.
pub async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateGroup>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewGroup {
        name: body.name,
        description: body.description,
    };
    let groups = state.store.groups();
    let id = groups.create(&caller.actor(), new).await?.id;
    let (tag, group) = tagged(groups.get_versioned(id).await?);
    Ok((StatusCode::CREATED, tag, group))
}

/// The `ETag` and body of a group as read ([`VersionedGroup::version`]: its own fields and
/// its members' version, as a SCIM group's ETag covers them).
fn tagged(now: VersionedGroup) -> ([(axum::http::HeaderName, String); 1], axum::Json<GroupDto>) {
    (
        etag::of(&now.version()),
        axum::Json(GroupDto::from(now.group)),
    )
}

#[utoipa::path(get, path = "/api/v1/groups/{group}", operation_id = "groups_get", tag = "groups",
    params(("group" = String, Path, description = "ID or name")),
    responses((status = 200, description = "OK", body = GroupDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody)),
    security(("bearer" = [])))]
/// Shows one group. Its `ETag` names this version of the group, for `If-Match` on a change:
/// the group's own fields and its member list, so a member added or removed (by anyone: the
/// API, the console, SCIM, a user's deletion) moves it too, as a SCIM group's ETag.
pub async fn get(
    State(state): State<ApiState>,
    ApiPath(group): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let groups = state.store.groups();
    let id = groups.lookup(&group).await?.id;
    Ok(tagged(groups.get_versioned(id).await?))
}

/// A change to a group; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGroup {
    /// A new name (unique, any case). Applications connected over SCIM rename their group
    /// of the old name too.
    pub name: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/groups/{group}", operation_id = "groups_update", tag = "groups",
    params(("group" = String, Path, description = "ID or name"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the group this changes")), request_body = UpdateGroup,
    responses((status = 200, description = "OK", body = GroupDto), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the group or its members changed since it was read; nothing was written", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// Renames a group. With `If-Match` (the `ETag` of a read), only if nobody changed the group
/// or its members since: else 412 `changed_since` and nothing is written.
pub async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(group): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UpdateGroup>,
) -> Result<impl IntoResponse, ApiError> {
    let if_match = IfMatch::of(&headers);
    let groups = state.store.groups();
    let id = groups.lookup(&group).await?.id;
    let now = match body.name {
        Some(name) => {
            groups
                .rename_if(&caller.actor(), id, &name, |now| {
                    if_match.admits(&now.version())
                })
                .await?
        }
        // Nothing to write: the precondition is still answered.
        None => {
            let now = groups.get_versioned(id).await?;
            if !if_match.admits(&now.version()) {
                return Err(latchkey_idp::Error::ChangedSince { what: "group" }.into());
            }
            now
        }
    };
    Ok(tagged(now))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}", operation_id = "groups_delete", tag = "groups",
    params(("group" = String, Path, description = "ID or name"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the group this deletes")),
    responses((status = 204, description = "Done; no body"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the group or its members changed since it was read; nothing was written", body = ErrorBody)),
    security(("bearer" = [])))]
/// Deletes a group with its memberships and application assignments. With `If-Match`, only
/// if nobody changed the group or its members since it was read: else 412 `changed_since`.
pub async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath(group): ApiPath<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let if_match = IfMatch::of(&headers);
    let groups = state.store.groups();
    let id = groups.lookup(&group).await?.id;
    groups
        .delete_if(&caller.actor(), id, |now| if_match.admits(&now.version()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of `GET /groups/{group}/members`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// Page size (1-500, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Index of the first item (default 0). Deep offsets cost more; prefer `cursor`.
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/groups/{group}/members", operation_id = "groups_members", tag = "groups",
    params(("group" = String, Path, description = "ID or name"), MembersQuery),
    responses((status = 200, description = "OK", body = UserPage), (status = 400, description = "Malformed query, e.g. a `cursor` this listing did not hand out", body = ErrorBody), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody), (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody)),
    security(("bearer" = [])))]
/// The group's members, a page at a time in username order, exactly as `GET
/// /users?group=` pages them (`next_cursor`; a big group is never one response).
pub async fn members(
    State(state): State<ApiState>,
    ApiPath(group): ApiPath<String>,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let limit = page::limit(q.limit)?;
    let id = state.store.groups().lookup(&group).await?.id;
    let filter = UserFilter {
        group: Some(id),
        ..UserFilter::default()
    };
    page_of(&state.store, &filter, limit, q.cursor.as_deref(), q.offset)
        .await
        .map(axum::Json)
}

#[utoipa::path(put, path = "/api/v1/groups/{group}/members/{user}", operation_id = "groups_add_member", tag = "groups",
    params(("group" = String, Path, description = "ID or name"),
        ("user" = String, Path, description = "ID, username or e-mail address"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the group this changes")),
    responses((status = 204, description = "Done; no body; `ETag` names the group now"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the group or its members changed since it was read; nothing was written", body = ErrorBody)),
    security(("bearer" = [])))]
/// Adds a user to the group. A membership is part of the group's `ETag`: the answer carries
/// the new one, and with `If-Match` the change goes only if nobody changed the group or its
/// members since it was read, else 412 `changed_since` and nothing is written.
pub async fn add_member(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((group, user)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    set_member(&state, &caller, &group, &user, &headers, true).await
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}/members/{user}", operation_id = "groups_remove_member", tag = "groups",
    params(("group" = String, Path, description = "ID or name"),
        ("user" = String, Path, description = "ID, username or e-mail address"), ("If-Match" = Option<String>, Header, description = "The `ETag` of the group this changes")),
    responses((status = 204, description = "Done; no body; `ETag` names the group now"), (status = 401, description = "Missing, malformed, unknown or revoked bearer token", body = ErrorBody), (status = 404, description = "No such object", body = ErrorBody),
        (status = 409, description = "Conflicts with the object's current state or another object", body = ErrorBody), (status = 412, description = "`If-Match` names another version: the group or its members changed since it was read; nothing was written", body = ErrorBody)),
    security(("bearer" = [])))]
/// Removes a user from the group. As an addition: the answer carries the group's new `ETag`,
/// and with `If-Match` the change goes only if the group and its members are as read.
pub async fn remove_member(
    State(state): State<ApiState>,
    caller: Caller,
    ApiPath((group, user)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    set_member(&state, &caller, &group, &user, &headers, false).await
}

/// Adds `user` to `group` (`member`) or removes them, if the group is as `If-Match` names
/// it: the membership change behind both routes, answered with the group's new `ETag`.
async fn set_member(
    state: &ApiState,
    caller: &Caller,
    group: &str,
    user: &str,
    headers: &HeaderMap,
    member: bool,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let if_match = IfMatch::of(headers);
    let group = state.store.groups().lookup(group).await?.id;
    let user = state.store.users().lookup(user).await?.id;
    let admits = |now: &VersionedGroup| if_match.admits(&now.version());
    let groups = state.store.groups();
    let now = if member {
        groups
            .add_member_if(&caller.actor(), group, user, admits)
            .await?
    } else {
        groups
            .remove_member_if(&caller.actor(), group, user, admits)
            .await?
    };
    Ok((StatusCode::NO_CONTENT, etag::of(&now.version())))
}
