//! `/admin/roles`: who holds which console role; admins grant and revoke.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{FieldError, csrf_form, field_error, refusal_status};
use super::{Nav, Operator, Refusal, admit};
use crate::WebState;
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use crate::html::render;
use latchkey_idp::console::{Grant, Holder, Permission, Role};

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    grants: Vec<Grant>,
    may_write: bool,
    error: Option<FieldError>,
}

async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let html = render(&RolesPage {
        title: "Console roles",
        nav: op.nav(),
        csrf: csrf.value(),
        grants: state.store().roles().list().await?,
        may_write: op.roles.allows(Permission::WriteRoles),
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// GET /admin/roles
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    page(&state, &op, csrf, None, StatusCode::OK).await
}

/// A grant or revocation: the role, `user` or `group`, and who.
#[derive(Debug, Deserialize)]
pub(crate) struct GrantForm {
    csrf: Option<String>,
    #[serde(default)]
    role: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    holder: String,
}

csrf_form!(GrantForm);

async fn holder(state: &WebState, form: &GrantForm) -> latchkey_idp::Result<Holder> {
    match form.kind.as_str() {
        "group" => Ok(Holder::Group(
            state.store().groups().lookup(form.holder.trim()).await?.id,
        )),
        "user" => Ok(Holder::User(
            state.store().users().lookup(form.holder.trim()).await?.id,
        )),
        _ => Err(latchkey_idp::Error::InvalidField {
            field: "kind",
            reason: "user or group".into(),
        }),
    }
}

async fn change(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    csrf: CsrfToken,
    form: GrantForm,
    grant: bool,
) -> Result<Response, Refusal> {
    let op = admit(state, cookie, uri, Permission::WriteRoles).await?;
    let result = async {
        let role = Role::parse(&form.role)?;
        let holder = holder(state, &form).await?;
        let roles = state.store().roles();
        if grant {
            roles.grant(&op.actor(), role, holder).await
        } else {
            roles.revoke(&op.actor(), role, holder).await
        }
    }
    .await;
    match result {
        Ok(()) => Ok(Redirect::to("/admin/roles").into_response()),
        Err(e) => {
            let status = refusal_status(&e);
            let field = match &e {
                latchkey_idp::Error::AlreadyGranted { .. }
                | latchkey_idp::Error::NotGranted { .. } => Some("role"),
                latchkey_idp::Error::UnknownUser { .. }
                | latchkey_idp::Error::UnknownGroup { .. } => Some("holder"),
                _ => None,
            };
            let error = match field {
                Some(field) => FieldError {
                    field,
                    message: e.to_string(),
                },
                None => field_error(e)?,
            };
            page(state, &op, csrf, Some(error), status).await
        }
    }
}

/// POST /admin/roles
pub(crate) async fn grant(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<GrantForm>,
) -> Result<Response, Refusal> {
    change(&state, &cookie, &uri, csrf, form, true).await
}

/// POST /admin/roles/revoke
pub(crate) async fn revoke(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<GrantForm>,
) -> Result<Response, Refusal> {
    change(&state, &cookie, &uri, csrf, form, false).await
}
