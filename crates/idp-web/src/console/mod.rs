//! The admin console under `/admin`: the directory and the audit log in web pages, for the
//! people a console role names ([`latchkey_idp::console`]).
//!
//! Every handler starts with [`admit`]: no session sends the browser to the IdP's own
//! sign-in and back; a session without a second factor (`[console] require_mfa`, on by
//! default) goes to the second step, or to enrol one, and on to `/admin`; a session without
//! the handler's [`Permission`] gets the 403 page (code and operation ID), and so does one
//! helpdesk may not use on a console user or a role-carrying group: each such refusal is
//! decided in [`Operator::forbidden`], which logs it and writes its `console.refused` audit
//! event under the page's operation ID (only logs it, for a user holding no console role).
//! Every form is a [`CsrfForm`](super::extract::CsrfForm); a refused field gives the form
//! back naming it, with nothing written. Every change is made as [`Actor::person`], so the
//! audit log names who made it. One file per area.

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
    /// The page or form this request is for (what a refusal's audit event says was
    /// attempted).
    pub path: String,
}

/// Which rule refused a console request: the `rule` of its audit event and log line, never
/// shown to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForbiddenRule {
    /// None of the operator's roles grants the permission.
    Permission,
    /// The user to change holds a console role (suspended or not): only an admin may.
    RoleHolder,
    /// The group carries a console role: only an admin may change its members.
    RoleCarryingGroup,
}

impl ForbiddenRule {
    /// The name the audit event and the log line carry.
    pub fn as_str(self) -> &'static str {
        match self {
            ForbiddenRule::Permission => "permission",
            ForbiddenRule::RoleHolder => "role_holder",
            ForbiddenRule::RoleCarryingGroup => "role_carrying_group",
        }
    }
}

/// What a refused request would have read or changed: the audit event's target.
pub(crate) struct Attempted {
    kind: &'static str,
    id: String,
    name: String,
}

impl Attempted {
    /// A user to change.
    pub fn user(user: &User) -> Self {
        Attempted {
            kind: "user",
            id: user.id.to_string(),
            name: user.username.clone(),
        }
    }

    /// A group whose members were to change.
    pub fn group(id: GroupId, name: &str) -> Self {
        Attempted {
            kind: "group",
            id: id.to_string(),
            name: name.to_owned(),
        }
    }

    /// A console page or form itself (no permission for it at all).
    fn page(path: &str) -> Self {
        Attempted {
            kind: "console",
            id: path.to_owned(),
            name: path.to_owned(),
        }
    }
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

    /// Refuses what the roles do not allow (audited as [`Self::forbidden`]).
    pub async fn require(&self, state: &WebState, permission: Permission) -> Result<(), Refusal> {
        if self.roles.allows(permission) {
            Ok(())
        } else {
            Err(self
                .forbidden(
                    state,
                    permission,
                    ForbiddenRule::Permission,
                    Attempted::page(&self.path),
                )
                .await)
        }
    }

    /// The 403 for this person and what they attempted: the one place a console refusal
    /// is decided into a page. The page shows its code and a fresh operation ID; the log
    /// line and the `console.refused` audit event carry the same ID with who, the
    /// permission, the page or form, the target and the rule (as `reason`, the key the
    /// other refusals' events use: `login.failure`, `sso.denied`). An audit log that cannot be
    /// written is logged and the 403 stands (a side channel never turns it into a 500).
    ///
    /// A person holding no console role at all is no operator: any signed-in user can open
    /// `/admin` pages, as often as they like, so their refusals are only logged (the same
    /// line, under the page's operation ID), never audited, and cannot grow the audit log
    /// without bound, as a 401 anyone can cause is only logged. An operator refused a
    /// permission (or a target: a console user, a role-carrying group) is audited.
    pub async fn forbidden(
        &self,
        state: &WebState,
        permission: Permission,
        rule: ForbiddenRule,
        target: Attempted,
    ) -> Refusal {
        let operation_id = super::error::new_operation_id();
        let operator = !self.roles.is_empty();
        tracing::warn!(
            operator = %self.user.username,
            holds_a_role = operator,
            permission = permission.as_str(),
            reason = rule.as_str(),
            path = %self.path,
            target = %target.name,
            operation_id,
            "console: refused"
        );
        if !operator {
            return self.refusal(permission, operation_id);
        }
        let details = serde_json::json!({
            "permission": permission.as_str(),
            "reason": rule.as_str(),
            "path": self.path,
            "code": latchkey_idp::error::PageCode::WebForbidden.as_str(),
            "operation_id": operation_id,
        });
        if let Err(e) = state
            .audit(
                &self.actor(),
                "console.refused",
                target.kind,
                target.id,
                target.name,
                details,
            )
            .await
        {
            tracing::error!(operation_id, error = %e, "console: the refusal's audit event was not written");
        }
        self.refusal(permission, operation_id)
    }

    /// The 403 page of a refusal decided in [`Self::forbidden`].
    fn refusal(&self, permission: Permission, operation_id: String) -> Refusal {
        Refusal::Page(WebError::Forbidden {
            user: self.user.username.clone(),
            permission,
            operation_id,
        })
    }

    /// Refuses unless this person may change `group`'s members: joining a group that
    /// carries a console role grants the role, so only an admin may change those. Both
    /// member forms (the user's page and the group's) ask here.
    pub async fn may_change_members(
        &self,
        state: &WebState,
        group: GroupId,
    ) -> Result<(), Refusal> {
        self.require(state, Permission::WriteGroupMembers).await?;
        let carries = state.store().roles().of_group(group).await?;
        if self.roles.may_change_members(&carries) {
            return Ok(());
        }
        let name = match state.store().groups().get(group).await {
            Ok(g) => g.name,
            Err(_) => String::new(),
        };
        Err(self
            .forbidden(
                state,
                Permission::WriteGroupMembers,
                ForbiddenRule::RoleCarryingGroup,
                Attempted::group(group, &name),
            )
            .await)
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
        return Err(op
            .forbidden(
                state,
                Permission::WriteGroupMembers,
                ForbiddenRule::RoleHolder,
                Attempted::user(&target),
            )
            .await);
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
    // `[console] require_mfa` (on by default) is the console's own rule.
    let required = state.settings().console_require_mfa;
    if !super::mfa::own_page_satisfied(state, &session, required, &back).await? {
        return Err(Refusal::SignIn(format!("/login/mfa?then={back}")));
    }
    let roles = state.store().roles().of_user(&session.user).await?;
    let operator = Operator {
        user: session.user,
        roles,
        path: super::error::attempted_path(uri),
    };
    operator.require(state, permission).await?;
    Ok(operator)
}
