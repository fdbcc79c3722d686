//! `/admin/users`: find, create, edit (names, e-mail, custom attributes), suspend and resume
//! users, set a password or send an
//! invitation, reset second factors, end sessions, manage groups; and what each user can
//! use, with the reason.

use crate::extract::PathSegment;
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{FieldError, csrf_form, drawn_from, field_error, form_refusal, given};
use super::{Attempted, ForbiddenRule, Nav, Operator, Refusal, admit, listing, set_membership};
use crate::api::invitations::{InvitationDto, MailOutcome, issue};
use crate::extract::{CsrfForm, CsrfOnly, CsrfToken, SessionCookie};
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::console::{Permission, access};
use latchkey_idp::directory::{AttributeValue, Group, NewUser, Setter, User, UserPatch};
use latchkey_idp::ids::UserId;
use latchkey_idp::mfa::Factors;
use latchkey_idp::password::Password;
use latchkey_idp::session::Sessions;

/// The longest search text read.
const MAX_QUERY: usize = 100;

/// `?q=&after=` on the list: the search and the cursor of the page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    title: &'static str,
    nav: Nav,
    q: String,
    users: Vec<User>,
    /// The search was too broad to read by names: only usernames beginning with it are
    /// listed, and the page says so.
    too_broad: bool,
    may_write: bool,
    first: Option<String>,
    next: Option<String>,
}

fn page_href(q: &str, after: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("q", q);
    if let Some(after) = after {
        query.append_pair("after", after);
    }
    format!("/admin/users?{}", query.finish())
}

/// GET /admin/users: a page of users in username order, by keyset cursor (a bookmark of
/// a deep page costs what the first does); search is a prefix of the username or of a word
/// of the user's names, or of the e-mail address when it has an `@`
/// ([`latchkey_idp::directory::UserFilter::search`]).
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    let query = query.map(|Query(l)| l).unwrap_or_default();
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(MAX_QUERY)
        .collect();
    let after = query.after.filter(|a| !a.is_empty());
    let (users, next, too_broad) =
        listing::users(state.store(), &listing::search(&q), after.as_deref()).await?;
    let html = render(&UsersPage {
        title: "Users",
        nav: op.nav(),
        may_write: op.roles.allows(Permission::WriteUsers),
        first: after.is_some().then(|| page_href(&q, None)),
        next: next.map(|n| page_href(&q, Some(&n))),
        q,
        users,
        too_broad,
    })?;
    Ok(html.into_response())
}

/// The user form's fields (`console/user_fields.html`): a new user's, or a user's own on
/// their page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserForm {
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    display_name: String,
    /// The edit form's [`User::names_version`] (the names it was drawn with).
    #[serde(default)]
    seen: String,
}

/// A group named in a form (a user's groups, a group's members, an application's access).
#[derive(Debug, Deserialize)]
pub(crate) struct GroupForm {
    csrf: Option<String>,
    #[serde(default)]
    pub(crate) group: String,
}

/// A new password.
#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    csrf: Option<String>,
    #[serde(default)]
    password: String,
}

/// A custom attribute to set: its name, and its values one per line (one line is a single
/// value, several a list, as the API's `set_attributes` takes them).
#[derive(Debug, Deserialize)]
pub(crate) struct AttributeForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    values: String,
}

/// A custom attribute to remove.
#[derive(Debug, Deserialize)]
pub(crate) struct AttributeName {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
}

csrf_form!(
    UserForm,
    GroupForm,
    PasswordForm,
    AttributeForm,
    AttributeName
);

impl UserForm {
    /// The edit form as `user`'s page draws it.
    fn of(user: &User) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        UserForm {
            csrf: None,
            username: user.username.clone(),
            email: user.email.clone(),
            given_name: text(&user.given_name),
            family_name: text(&user.family_name),
            display_name: text(&user.display_name),
            seen: user.names_version(),
        }
    }
}

fn optional(v: &str) -> Option<String> {
    given(&Some(v.to_owned()))
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewUserPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    form: UserForm,
    error: Option<FieldError>,
}

/// GET /admin/users/new
pub(crate) async fn new_form(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteUsers).await?;
    let html = render(&NewUserPage {
        title: "New user",
        nav: op.nav(),
        csrf: csrf.value(),
        form: UserForm::default(),
        error: None,
    })?;
    Ok((csrf, html).into_response())
}

/// POST /admin/users
pub(crate) async fn create(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteUsers).await?;
    let mut new = NewUser::new(form.username.trim(), form.email.trim());
    new.given_name = optional(&form.given_name);
    new.family_name = optional(&form.family_name);
    new.display_name = optional(&form.display_name);
    match state.store().users().create(&op.actor(), new).await {
        Ok(user) => Ok(Redirect::to(&format!("/admin/users/{}", user.id)).into_response()),
        Err(e) => {
            let error = field_error(e)?;
            let html = render(&NewUserPage {
                title: "New user",
                nav: op.nav(),
                csrf: csrf.value(),
                form,
                error: Some(error),
            })?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, csrf, html).into_response())
        }
    }
}

/// One application the user can use, as the page lists it.
struct AccessRow {
    app: String,
    through: String,
}

/// A change not yet delivered to an application over SCIM, as the page lists it.
struct PendingRow {
    app: String,
    kind: &'static str,
    since: String,
    attempts: i64,
    last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage<'a> {
    title: String,
    nav: Nav,
    csrf: &'a str,
    user: User,
    /// The edit form, drawn from `user`.
    form: UserForm,
    roles: String,
    factors: String,
    has_factor: bool,
    groups: Vec<Group>,
    access: Vec<AccessRow>,
    pending: Vec<PendingRow>,
    may_write: bool,
    may_audit: bool,
    audit_href: String,
    shown: Shown,
}

/// What the user's page shows above the facts: a refused change, or an invitation just made.
#[derive(Default)]
struct Shown {
    error: Option<FieldError>,
    invitation: Option<InvitationNotice>,
}

/// An invitation just made, as the page tells it: mailed, or the link to hand over (shown
/// this once; only its hash is stored).
struct InvitationNotice {
    mailed_to: Option<String>,
    url: Option<String>,
    mail_failed: bool,
    expires: String,
}

impl InvitationNotice {
    fn of(i: InvitationDto) -> Self {
        let mailed = i.mail == MailOutcome::Queued;
        InvitationNotice {
            mailed_to: mailed.then(|| i.email.clone()),
            url: (!mailed).then_some(i.url),
            mail_failed: i.mail == MailOutcome::Failed,
            expires: i
                .expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

async fn load(state: &WebState, id: &str) -> Result<User, WebError> {
    let id: UserId = id.parse().map_err(|_| WebError::NotFound)?;
    match state.store().users().get(id).await {
        Ok(u) => Ok(u),
        Err(latchkey_idp::Error::UnknownUser { .. }) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The user's page, with what it shows, at the given status.
async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    user: User,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let store = state.store();
    let roles = store.roles().of_user(&user).await?;
    let granted = store.roles().granted_to(&user).await?;
    let groups = store.groups().of_user(user.id).await?;
    let available = Factors::new(store).available(&user).await?;
    let mut factors = Vec::new();
    if available.totp {
        factors.push("authenticator app".to_owned());
    }
    if available.webauthn {
        factors.push("passkey or security key".to_owned());
    }
    if available.recovery_codes > 0 {
        factors.push(format!("{} recovery codes", available.recovery_codes));
    }
    let access = access::of_user(store, &user)
        .await?
        .into_iter()
        .map(|a| AccessRow {
            app: a.app.settings.name,
            through: a
                .through
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let pending = store
        .provisioning()
        .pending_for_user(user.id)
        .await?
        .into_iter()
        .map(|p| PendingRow {
            app: p.app,
            kind: p.kind.as_str(),
            since: super::keys::when(Some(p.since)),
            attempts: p.attempts,
            last_error: p.last_error,
        })
        .collect();
    let audit_href = format!("/admin/audit?user={}", user.id);
    let html = render(&UserPage {
        title: format!("{} ({})", user.shown_name(), user.username),
        nav: op.nav(),
        csrf: csrf.value(),
        roles: roles
            .roles()
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        has_factor: !factors.is_empty(),
        factors: factors.join(", "),
        may_write: op.roles.may_change_user(&granted),
        may_audit: op.roles.allows(Permission::ReadAudit),
        audit_href,
        form: UserForm::of(&user),
        user,
        groups,
        access,
        pending,
        shown,
    })?;
    Ok((status, csrf, html).into_response())
}

/// GET /admin/users/{id}
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    let user = load(&state, &id).await?;
    page(&state, &op, csrf, user, Shown::default(), StatusCode::OK).await
}

/// The operator and the user a change is about, once the operator may change that user:
/// a user who holds a console role only by an admin.
async fn target(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    id: &str,
) -> Result<(Operator, User), Refusal> {
    let op = admit(state, cookie, uri, Permission::WriteUsers).await?;
    let user = load(state, id).await?;
    let their_roles = state.store().roles().granted_to(&user).await?;
    if !op.roles.may_change_user(&their_roles) {
        return Err(op
            .forbidden(
                state,
                Permission::WriteUsers,
                ForbiddenRule::RoleHolder,
                Attempted::user(&user),
            )
            .await);
    }
    Ok((op, user))
}

/// After a change: back to the user's page (a GET, so a reload does not post again).
fn done(user: UserId) -> Response {
    Redirect::to(&format!("/admin/users/{user}")).into_response()
}

/// A refused change: the page again with the field named, and nothing written.
async fn refused(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    user: UserId,
    err: latchkey_idp::Error,
) -> Result<Response, Refusal> {
    // A page drawn before someone else's change is drawn again with what is there now.
    let (error, status) = form_refusal(err)?;
    let shown = Shown {
        error: Some(error),
        invitation: None,
    };
    let user = state.store().users().get(user).await?;
    page(state, op, csrf, user, shown, status).await
}

/// POST /admin/users/{id}: the attributes.
pub(crate) async fn edit(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    let patch = UserPatch {
        username: Some(form.username.trim().to_owned()),
        email: Some(form.email.trim().to_owned()),
        given_name: Some(optional(&form.given_name)),
        family_name: Some(optional(&form.family_name)),
        display_name: Some(optional(&form.display_name)),
        ..UserPatch::default()
    };
    let unchanged = |now: &User| drawn_from(&form.seen, &now.names_version());
    patched(&state, &op, csrf, user.id, unchanged, patch).await
}

/// POST /admin/users/{id}/suspend: also ends the user's sessions.
pub(crate) async fn suspend(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    // The suspension ends the sessions in its own transaction, by every path.
    if let Err(err) = state.store().users().suspend(&op.actor(), user.id).await {
        return refused(&state, &op, csrf, user.id, err).await;
    }
    Ok(done(user.id))
}

/// POST /admin/users/{id}/resume
pub(crate) async fn resume(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    PathSegment(id): PathSegment,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    state.store().users().resume(&op.actor(), user.id).await?;
    Ok(done(user.id))
}

/// POST /admin/users/{id}/password
pub(crate) async fn password(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    if form.password.is_empty() {
        let err = latchkey_idp::Error::InvalidField {
            field: "password",
            reason: "a password is needed".into(),
        };
        return refused(&state, &op, csrf, user.id, err).await;
    }
    // Helpdesk's password stops working if the user gains a console role later.
    let setter = if op.roles.allows(Permission::WriteRoles) {
        Setter::Trusted
    } else {
        Setter::Helpdesk
    };
    let set = state
        .store()
        .users()
        .set_password_by(
            &op.actor(),
            user.id,
            Some(Password::new(form.password)),
            setter,
        )
        .await;
    match set {
        Ok(()) => Ok(done(user.id)),
        Err(e) => refused(&state, &op, csrf, user.id, e).await,
    }
}

/// POST /admin/users/{id}/sessions: signs the user out everywhere.
pub(crate) async fn end_sessions(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    PathSegment(id): PathSegment,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    Sessions::new(state.store())
        .end_all_audited(&op.actor(), &user)
        .await?;
    Ok(done(user.id))
}

/// Adds the user to, or removes them from, the group the form names.
async fn membership(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    csrf: CsrfToken,
    id: &str,
    group: &str,
    member: bool,
) -> Result<Response, Refusal> {
    let (op, user) = target(state, cookie, uri, id).await?;
    op.require(state, Permission::WriteGroupMembers).await?;
    let changed = match state.store().groups().lookup(group.trim()).await {
        Ok(group) => set_membership(state, &op, group.id, user.id, member).await?,
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(done(user.id)),
        Err(e) => refused(state, &op, csrf, user.id, e).await,
    }
}

/// POST /admin/users/{id}/groups
pub(crate) async fn join(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    membership(&state, &cookie, &uri, csrf, &id, &form.group, true).await
}

/// POST /admin/users/{id}/groups/remove
pub(crate) async fn leave(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    membership(&state, &cookie, &uri, csrf, &id, &form.group, false).await
}

/// POST /admin/users/{id}/invitation: a single-use link to set a password, mailed when
/// `[smtp]` is configured, else shown on the page this once (as `POST
/// /api/v1/users/{user}/invitations` answers it). Audited as `user.invited`.
pub(crate) async fn invite(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    let (ttl, mailer) = state.invitations();
    let issued = issue(
        state.store(),
        &op.actor(),
        user.id,
        ttl,
        &state.settings().base_url,
        mailer,
    )
    .await;
    match issued {
        Ok(invitation) => {
            let shown = Shown {
                invitation: Some(InvitationNotice::of(invitation)),
                ..Shown::default()
            };
            page(&state, &op, csrf, user, shown, StatusCode::OK).await
        }
        Err(e) => refused(&state, &op, csrf, user.id, e).await,
    }
}

/// POST /admin/users/{id}/factors/reset: removes every second factor (a lost phone), as
/// `latchkey user mfa reset`; the user enrols again at their next sign-in that needs one.
/// Audited as `mfa.reset`.
pub(crate) async fn reset_factors(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    PathSegment(id): PathSegment,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    Factors::new(state.store())
        .reset(&op.actor(), &user)
        .await?;
    Ok(done(user.id))
}

/// Applies `patch` to the user as the operator if `admits` them as they are now (see
/// `Users::update_if`): back to the page, or the page again naming the refused field.
async fn patched(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    user: UserId,
    admits: impl FnOnce(&User) -> bool,
    patch: UserPatch,
) -> Result<Response, Refusal> {
    match state
        .store()
        .users()
        .update_if(&op.actor(), user, admits, patch)
        .await
    {
        Ok(_) => Ok(done(user)),
        Err(e) => refused(state, op, csrf, user, e).await,
    }
}

/// POST /admin/users/{id}/attributes: sets one custom attribute (what mappings release).
pub(crate) async fn set_attribute(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<AttributeForm>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    let mut values: Vec<String> = form
        .values
        .lines()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    let value = match values.len() {
        0 => {
            let err = latchkey_idp::Error::InvalidField {
                field: "values",
                reason: "give at least one value".into(),
            };
            return refused(&state, &op, csrf, user.id, err).await;
        }
        1 => AttributeValue::One(values.remove(0)),
        _ => AttributeValue::Many(values),
    };
    let patch = UserPatch {
        set_attributes: [(form.name.trim().to_owned(), value)].into_iter().collect(),
        ..UserPatch::default()
    };
    match state
        .store()
        .users()
        .update(&op.actor(), user.id, patch)
        .await
    {
        Ok(_) => Ok(done(user.id)),
        // The domain names what it checked; the page names the form's own fields.
        Err(latchkey_idp::Error::InvalidField { field, reason }) => {
            let field = match field {
                "attribute name" => "name",
                "attribute value" => "values",
                other => other,
            };
            let err = latchkey_idp::Error::InvalidField { field, reason };
            refused(&state, &op, csrf, user.id, err).await
        }
        Err(e) => refused(&state, &op, csrf, user.id, e).await,
    }
}

/// POST /admin/users/{id}/attributes/remove
pub(crate) async fn remove_attribute(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<AttributeName>,
) -> Result<Response, Refusal> {
    let (op, user) = target(&state, &cookie, &uri, &id).await?;
    let patch = UserPatch {
        remove_attributes: vec![form.name.trim().to_owned()],
        ..UserPatch::default()
    };
    patched(&state, &op, csrf, user.id, |_| true, patch).await
}
