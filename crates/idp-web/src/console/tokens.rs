//! `/admin/tokens`: the admin API's and the SCIM server's tokens: list with scope and last
//! use, create (the secret shown once, on the answer to the form, never stored), revoke.
//! Admins only change them.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use super::forms::{FieldError, csrf_form, field_error};
use super::{Nav, Operator, Refusal, admit};
use crate::WebState;
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use crate::html::render;
use latchkey_idp::console::Permission;
use latchkey_idp::tokens::{ApiTokens, TokenScope};

struct TokenRow {
    id: String,
    name: String,
    scope: &'static str,
    created_by: String,
    last_used: String,
    state: &'static str,
    live: bool,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    tokens: Vec<TokenRow>,
    may_write: bool,
    issued: Option<&'a str>,
    error: Option<FieldError>,
}

async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    issued: Option<&str>,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let when = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let tokens = ApiTokens::new(state.store())
        .list()
        .await?
        .into_iter()
        .map(|t| TokenRow {
            live: t.revoked_at.is_none(),
            state: if t.revoked_at.is_some() {
                "revoked"
            } else {
                "live"
            },
            last_used: t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            scope: t.scope.as_str(),
            id: t.id,
            name: t.name,
            created_by: t.created_by,
        })
        .collect();
    let html = render(&TokensPage {
        title: "API tokens",
        nav: op.nav(),
        csrf: csrf.value(),
        tokens,
        may_write: op.roles.allows(Permission::WriteTokens),
        issued,
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// The list again with the refused field named (422); nothing was written.
async fn refused(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    err: latchkey_idp::Error,
) -> Result<Response, Refusal> {
    let error = field_error(err)?;
    page(
        state,
        op,
        csrf,
        None,
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// GET /admin/tokens
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    page(&state, &op, csrf, None, None, StatusCode::OK).await
}

/// A new token's name.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    /// `api` (the default) or `scim`.
    #[serde(default)]
    scope: String,
}

/// The token to revoke.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeForm {
    csrf: Option<String>,
    #[serde(default)]
    token: String,
}

csrf_form!(CreateForm, RevokeForm);

/// POST /admin/tokens: answers with the list and the new secret, shown this once.
pub(crate) async fn create(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteTokens).await?;
    let created = match form.scope.as_str() {
        "" => Ok(TokenScope::Api),
        other => TokenScope::parse(other),
    };
    let created = match created {
        Ok(scope) => {
            ApiTokens::new(state.store())
                .create_scoped(&op.actor(), form.name.trim(), scope)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok((_, issued)) => {
            page(
                &state,
                &op,
                csrf,
                Some(issued.expose()),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => refused(&state, &op, csrf, e).await,
    }
}

/// POST /admin/tokens/revoke
pub(crate) async fn revoke(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteTokens).await?;
    match ApiTokens::new(state.store())
        .revoke(&op.actor(), form.token.trim())
        .await
    {
        Ok(_) => Ok(Redirect::to("/admin/tokens").into_response()),
        Err(e) => refused(&state, &op, csrf, e).await,
    }
}
