//! The admin console under `/admin`: the directory and the audit log in web pages, for the
//! people a console role names ([`latchkey_idp::console`]).
//!
//! Every handler starts with [`admit`]: no session sends the browser to the IdP's own
//! sign-in and back; a session without a second factor (`[console] require_mfa`, on by
//! default) goes to the second step, or to enrol one, and on to `/admin`; a session without
//! the handler's [`Permission`] gets the 403 page (code and operation ID). Every form is a [`CsrfForm`](super::extract::CsrfForm); a refused
//! field gives the form back naming it, with nothing written. Every change is made as
//! [`Actor::person`], so the audit log names who made it. One file per area.

mod app_edit;
mod app_new;
mod app_scim;
mod apps;
mod audit;
mod dashboard;
mod forms;
mod groups;
mod keys;
mod listing;
mod preview;
mod roles;
mod tokens;
mod users;

use axum::Router;
use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::extract::SessionCookie;
use super::{WebError, WebState};
use latchkey_idp::Actor;
use latchkey_idp::console::{Permission, RoleSet};
use latchkey_idp::directory::User;
use latchkey_idp::ids::{GroupId, UserId};
use latchkey_idp::mfa::policy::{MfaDecision, MfaPolicy, Target};
use latchkey_idp::session::Session;

/// The console's routes (merged into the server's router).
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/new", get(users::new_form))
        .route("/admin/users/{id}", get(users::show).post(users::edit))
        .route("/admin/users/{id}/suspend", post(users::suspend))
        .route("/admin/users/{id}/resume", post(users::resume))
        .route("/admin/users/{id}/password", post(users::password))
        .route("/admin/users/{id}/sessions", post(users::end_sessions))
        .route("/admin/users/{id}/invitation", post(users::invite))
        .route("/admin/users/{id}/attributes", post(users::set_attribute))
        .route(
            "/admin/users/{id}/attributes/remove",
            post(users::remove_attribute),
        )
        .route(
            "/admin/users/{id}/factors/reset",
            post(users::reset_factors),
        )
        .route("/admin/users/{id}/groups", post(users::join))
        .route("/admin/users/{id}/groups/remove", post(users::leave))
        .route("/admin/groups", get(groups::list).post(groups::create))
        .route("/admin/groups/{id}", get(groups::show))
        .route("/admin/groups/{id}/name", post(groups::rename))
        .route("/admin/groups/{id}/delete", post(groups::delete))
        .route("/admin/groups/{id}/members", post(groups::add_member))
        .route(
            "/admin/groups/{id}/members/remove",
            post(groups::remove_member),
        )
        .route("/admin/roles", get(roles::list).post(roles::grant))
        .route("/admin/roles/revoke", post(roles::revoke))
        .route("/admin/tokens", get(tokens::list).post(tokens::create))
        .route("/admin/tokens/revoke", post(tokens::revoke))
        .route("/admin/audit", get(audit::list))
        .route("/admin/audit/export", get(audit::export))
        .route("/admin/audit/{seq}", get(audit::show))
        .merge(apps::routes())
        .merge(keys::routes())
}

/// The signed-in console user a handler acts for.
pub(crate) struct Operator {
    pub user: User,
    pub roles: RoleSet,
}

impl Operator {
    /// Who changes are recorded as: the person, by name.
    pub fn actor(&self) -> Actor {
        Actor::person(&self.user)
    }

    /// The links the console's navigation shows this person.
    pub fn nav(&self) -> Nav {
        Nav {
            directory: self.roles.allows(Permission::ReadDirectory),
            apps: self.roles.allows(Permission::ReadApps),
            audit: self.roles.allows(Permission::ReadAudit),
            username: self.user.username.clone(),
        }
    }

    /// Refuses what the roles do not allow.
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if self.roles.allows(permission) {
            Ok(())
        } else {
            Err(self.forbidden(permission))
        }
    }

    /// The 403 for this person and what they asked for.
    pub fn forbidden(&self, permission: Permission) -> WebError {
        WebError::Forbidden {
            user: self.user.username.clone(),
            permission,
        }
    }

    /// Refuses unless this person may change `group`'s members: joining a group that
    /// carries a console role grants the role, so only an admin may change those. Both
    /// member forms (the user's page and the group's) ask here.
    pub async fn may_change_members(
        &self,
        state: &WebState,
        group: GroupId,
    ) -> Result<(), Refusal> {
        self.require(Permission::WriteGroupMembers)?;
        let carries = state.store().roles().of_group(group).await?;
        if self.roles.may_change_members(&carries) {
            Ok(())
        } else {
            Err(Refusal::Page(self.forbidden(Permission::WriteGroupMembers)))
        }
    }
}

/// Adds `user` to `group` (`member`) or removes them, as `op`, once `op` may change both
/// the group's members and the user (a user granted a console role, suspended or not, only
/// by an admin): the one membership change behind the user's and the group's forms.
pub(crate) async fn set_membership(
    state: &WebState,
    op: &Operator,
    group: GroupId,
    user: UserId,
    member: bool,
) -> Result<Result<(), latchkey_idp::Error>, Refusal> {
    op.may_change_members(state, group).await?;
    let target = match state.store().users().get(user).await {
        Ok(target) => target,
        Err(e @ latchkey_idp::Error::UnknownUser { .. }) => return Ok(Err(e)),
        Err(e) => return Err(e.into()),
    };
    let their_roles = state.store().roles().granted_to(&target).await?;
    if !op.roles.may_change_user(&their_roles) {
        tracing::warn!(operator = %op.user.username, user = %target.username, %group,
            "console: membership change of a console user refused");
        return Err(Refusal::Page(op.forbidden(Permission::WriteGroupMembers)));
    }
    let groups = state.store().groups();
    Ok(if member {
        groups.add_member(&op.actor(), group, user).await
    } else {
        groups.remove_member(&op.actor(), group, user).await
    })
}

/// The console's navigation, by what this person may see.
pub(crate) struct Nav {
    pub directory: bool,
    pub apps: bool,
    pub audit: bool,
    pub username: String,
}

/// A console request that could not go on: to the sign-in page (and back) or the second
/// factor's, or an error page.
pub(crate) enum Refusal {
    SignIn(String),
    Page(WebError),
}

impl<E: Into<WebError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal::Page(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(to) => Redirect::to(&to).into_response(),
            Refusal::Page(e) => e.into_response(),
        }
    }
}

/// Whether this session's sign-in is strong enough for the console. `[console]
/// require_mfa` (on by default) adds the console's own rule to what `[mfa] required`, a
/// group or the user asks, and the one MFA decision ([`MfaPolicy::decide`], for the IdP's
/// own pages) says whether the session's methods meet them; the console is no application,
/// so no application rule applies.
async fn console_mfa_satisfied(state: &WebState, session: &Session) -> Result<bool, WebError> {
    if session.methods.multi_factor() {
        // What `decide` answers for two factors and no requested context, without the
        // policy's queries on every console page.
        return Ok(true);
    }
    let settings = state.settings();
    let decision = MfaPolicy::new(state.store())
        .decide(
            &session.user,
            Target::Portal,
            &session.methods,
            None,
            settings.mfa_required || settings.console_require_mfa,
            settings.https,
        )
        .await?;
    if matches!(decision, MfaDecision::Satisfied { .. }) {
        return Ok(true);
    }
    tracing::info!(user = %session.user.username, ?decision, "console needs a second factor");
    Ok(false)
}

/// The gate of every console handler: the session, the user's roles, the permission.
pub(crate) async fn admit(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    permission: Permission,
) -> Result<Operator, Refusal> {
    // The page asked for, to come back to after signing in or stepping up.
    let back = super::mfa::console_path(uri.path()).unwrap_or_else(|| "/admin".into());
    let sign_in = || Refusal::SignIn(format!("/login?to={back}"));
    let Some(session) = cookie.resume(state).await? else {
        return Err(sign_in());
    };
    // Before the roles are read: a password alone tells nobody whether its owner holds a
    // console role. `/login/mfa` sends a user without a factor on to enrol one.
    if !console_mfa_satisfied(state, &session).await? {
        return Err(Refusal::SignIn(format!("/login/mfa?then={back}")));
    }
    let roles = state.store().roles().of_user(&session.user).await?;
    let operator = Operator {
        user: session.user,
        roles,
    };
    operator.require(permission)?;
    Ok(operator)
}
