//! `/admin/groups`: the groups, their members, and the applications each one opens.

use crate::extract::PathSegment;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{FieldError, csrf_form, drawn_from, field_error, form_refusal, given};
use super::listing::{self, After};
use super::{Nav, Operator, Refusal, admit, set_membership};
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::console::Permission;
use latchkey_idp::directory::{Group, User};
use latchkey_idp::ids::GroupId;

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    groups: Vec<Group>,
    may_create: bool,
    error: Option<FieldError>,
}

async fn list_page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let groups = state.store().groups().list().await?;
    let html = render(&GroupsPage {
        title: "Groups",
        nav: op.nav(),
        csrf: csrf.value(),
        groups,
        may_create: op.roles.allows(Permission::WriteGroups),
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// GET /admin/groups
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    list_page(&state, &op, csrf, None, StatusCode::OK).await
}

/// A new group, or a group's new name.
#[derive(Debug, Deserialize)]
pub(crate) struct NameForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// The rename form's [`Group::fields_version`] (the group it was drawn with).
    #[serde(default)]
    seen: String,
}

csrf_form!(NameForm);

/// POST /admin/groups: creates a group and shows it; a refused name gives the list back.
pub(crate) async fn create(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteGroups).await?;
    let new = latchkey_idp::directory::NewGroup {
        name: form.name.trim().to_owned(),
        description: given(&form.description),
    };
    match state.store().groups().create(&op.actor(), new).await {
        Ok(group) => Ok(Redirect::to(&format!("/admin/groups/{}", group.id)).into_response()),
        Err(e) => {
            let error = field_error(e)?;
            list_page(
                &state,
                &op,
                csrf,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// POST /admin/groups/{id}/name: renames the group (applications connected over SCIM
/// rename theirs); a refused name gives the page back naming the field. A form drawn before
/// someone else changed the group is refused (409 `changed_since`, the page drawn again with
/// what is there now), not saved over their change.
pub(crate) async fn rename(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<NameForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteGroups).await?;
    let group = load(&state, &id).await?;
    let result = state
        .store()
        .groups()
        .rename_if(&op.actor(), group.id, form.name.trim(), |now| {
            drawn_from(&form.seen, &now.group.fields_version())
        })
        .await;
    match result {
        Ok(now) => Ok(Redirect::to(&format!("/admin/groups/{}", now.group.id)).into_response()),
        Err(e @ latchkey_idp::Error::ChangedSince { .. }) => {
            tracing::info!(group = %group.id, "console: group changed since its page was drawn");
            let error = field_error(e)?;
            let now = load(&state, &id).await?;
            refused(&state, &op, csrf, now, error, StatusCode::CONFLICT).await
        }
        Err(e) => {
            let (error, status) = form_refusal(e)?;
            refused(&state, &op, csrf, group, error, status).await
        }
    }
}

/// A group's deletion: `confirm` is the box the admin ticks.
#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    csrf: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

csrf_form!(DeleteForm);

/// POST /admin/groups/{id}/delete: deletes the group with its memberships and the access it
/// gave (applications connected over SCIM are told, as for any change of membership), then
/// shows the list. Refused, naming the field, without the ticked box, and while the group
/// carries console roles: its members would lose them at once, perhaps every admin; taking
/// the roles off first (`latchkey role revoke --group`) makes that a decision of its own.
pub(crate) async fn delete(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteGroups).await?;
    let group = load(&state, &id).await?;
    let carries = state.store().roles().of_group(group.id).await?;
    let refusal = if form.confirm.as_deref() != Some("yes") {
        Some(FieldError {
            field: "confirm",
            message: "tick the box to delete the group".into(),
        })
    } else if !carries.is_empty() {
        Some(FieldError {
            field: "group",
            message: "the group carries console roles: revoke them first \
                      (latchkey role revoke --group)"
                .into(),
        })
    } else {
        None
    };
    if let Some(error) = refusal {
        return refused(
            &state,
            &op,
            csrf,
            group,
            error,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match state.store().groups().delete(&op.actor(), group.id).await {
        Ok(()) => Ok(Redirect::to("/admin/groups").into_response()),
        Err(e) => {
            let (error, status) = form_refusal(e)?;
            refused(&state, &op, csrf, group, error, status).await
        }
    }
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage<'a> {
    title: String,
    nav: Nav,
    csrf: &'a str,
    group: Group,
    roles: String,
    apps: Vec<String>,
    members: Vec<User>,
    first: Option<String>,
    next: Option<String>,
    may_write: bool,
    may_rename: bool,
    error: Option<FieldError>,
}

async fn load(state: &WebState, id: &str) -> Result<Group, WebError> {
    let id: GroupId = id.parse().map_err(|_| WebError::NotFound)?;
    match state.store().groups().get(id).await {
        Ok(g) => Ok(g),
        Err(latchkey_idp::Error::UnknownGroup { .. }) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The group's page: its members a page at a time (after `after`), with an optional refusal.
async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    group: Group,
    after: Option<&str>,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let store = state.store();
    let carries = store.roles().of_group(group.id).await?;
    let (members, next, _) = listing::users(store, &listing::members(group.id), after).await?;
    let href = |after: Option<&str>| match after {
        Some(a) => format!("/admin/groups/{}?after={a}", group.id),
        None => format!("/admin/groups/{}", group.id),
    };
    let first = after.map(|_| href(None));
    let next = next.map(|n| href(Some(&n)));
    let apps: Vec<String> = store
        .apps()
        .opened_by_group(group.id)
        .await?
        .into_iter()
        .map(|a| a.settings.name)
        .collect();
    let html = render(&GroupPage {
        title: format!("Group {}", group.name),
        nav: op.nav(),
        csrf: csrf.value(),
        roles: carries
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        may_write: op.roles.may_change_members(&carries),
        may_rename: op.roles.allows(Permission::WriteGroups),
        group,
        apps,
        members,
        first,
        next,
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// The group's page again, `error` named on its form (422).
async fn refused(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    group: Group,
    error: FieldError,
    status: StatusCode,
) -> Result<Response, Refusal> {
    page(state, op, csrf, group, None, Some(error), status).await
}

/// GET /admin/groups/{id}?after=: the members by keyset cursor, as the users list.
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    query: Result<Query<After>, QueryRejection>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    let group = load(&state, &id).await?;
    let after = query.map(|Query(q)| q.after).unwrap_or_default();
    page(
        &state,
        &op,
        csrf,
        group,
        after.as_deref(),
        None,
        StatusCode::OK,
    )
    .await
}

/// A user named in a membership form.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberForm {
    csrf: Option<String>,
    #[serde(default)]
    user: String,
}

csrf_form!(MemberForm);

/// Adds or removes the named user; a refused change gives the page back naming the field.
async fn change(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    csrf: CsrfToken,
    id: &str,
    user: &str,
    member: bool,
) -> Result<Response, Refusal> {
    let op = admit(state, cookie, uri, Permission::WriteGroupMembers).await?;
    let group = load(state, id).await?;
    op.may_change_members(state, group.id).await?;
    let result = match state.store().users().lookup(user.trim()).await {
        Ok(user) => set_membership(state, &op, group.id, user.id, member).await?,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/admin/groups/{}", group.id)).into_response()),
        Err(e) => {
            let (error, status) = form_refusal(e)?;
            refused(state, &op, csrf, group, error, status).await
        }
    }
}

/// POST /admin/groups/{id}/members
pub(crate) async fn add_member(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> Result<Response, Refusal> {
    change(&state, &cookie, &uri, csrf, &id, &form.user, true).await
}

/// POST /admin/groups/{id}/members/remove
pub(crate) async fn remove_member(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> Result<Response, Refusal> {
    change(&state, &cookie, &uri, csrf, &id, &form.user, false).await
}
