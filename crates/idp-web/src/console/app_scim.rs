//! An application's SCIM connection on its console page (the IdP's SCIM client): set it or
//! remove it, through [`Provisioning`](latchkey_idp::provisioning::Provisioning) as `latchkey
//! app scim set|remove` and `PUT|DELETE /api/v1/apps/{app}/scim` do. The token is sealed at
//! once and never shown back, so each save asks for it again; a refused save names the field
//! and writes nothing.

use crate::extract::PathSegment;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::app_edit::{back, problem, refused};
use super::app_new::Problem;
use super::apps;
use super::{Refusal, admit};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use latchkey_idp::console::Permission;
use latchkey_idp::provisioning::{NewConnection, OnRemove, ProvisioningError};

/// The connection form. The token is write-only: the page never fills it in.
#[derive(Deserialize)]
pub(crate) struct ScimForm {
    csrf: Option<String>,
    #[serde(default)]
    scim_url: String,
    #[serde(default)]
    scim_token: Zeroizing<String>,
    #[serde(default)]
    scim_on_remove: String,
}

super::forms::csrf_form!(ScimForm);

/// The disconnect form: its CSRF token, and the box that drops removals not yet delivered.
#[derive(Deserialize)]
pub(crate) struct RemoveForm {
    csrf: Option<String>,
    #[serde(default)]
    force: Option<String>,
}

super::forms::csrf_form!(RemoveForm);

/// POST /admin/apps/{id}/scim: connects the application (or changes its connection) and
/// queues every user it should hold.
pub(crate) async fn set(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<ScimForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    let on_remove = match form.scim_on_remove.trim() {
        "" => Ok(OnRemove::default()),
        text => text.parse::<OnRemove>(),
    };
    let result = match on_remove {
        Ok(on_remove) => {
            let kek = state.sealing_kek()?;
            let new = NewConnection {
                base_url: form.scim_url.trim().to_owned(),
                token: Zeroizing::new(form.scim_token.trim().to_owned()),
                on_remove,
            };
            state
                .store()
                .provisioning()
                .connect(&op.actor(), kek, app.id, new)
                .await
                .map(drop)
        }
        Err(e) => Err(ProvisioningError::Store(e)),
    };
    match result {
        Ok(()) => Ok(back(&app)),
        Err(ProvisioningError::Store(e)) => {
            let error = problem(e)?;
            refused(&state, &op, csrf, app, error).await
        }
        Err(e) => Err(WebError::Internal(format!("SCIM connection: {e}")).into()),
    }
}

/// POST /admin/apps/{id}/scim/remove: removes the connection with its queue; the users stay
/// as they are at the application. While a removal waits in the queue it is refused (409,
/// the form says how many users keep access) unless the form's `force` box is ticked; then
/// the audit event names them.
pub(crate) async fn remove(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    match state
        .store()
        .provisioning()
        .disconnect(&op.actor(), app.id, form.force.is_some())
        .await
    {
        Ok(_) => Ok(back(&app)),
        Err(e @ ProvisioningError::RemovalsPending { .. }) => {
            let error = Problem {
                field: "scim".into(),
                message: e.to_string(),
            };
            tracing::info!(app = %app.settings.entity_id, reason = %error.message,
                "console: SCIM disconnect refused");
            apps::page(
                &state,
                &op,
                csrf,
                app,
                apps::Notice::default(),
                Some(error),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(ProvisioningError::NotConnected { app: name }) => {
            let error = Problem {
                field: "scim".into(),
                message: format!("{name} has no SCIM connection"),
            };
            refused(&state, &op, csrf, app, error).await
        }
        Err(ProvisioningError::Store(e)) => Err(WebError::from(e).into()),
        Err(e) => Err(WebError::Internal(format!("SCIM connection: {e}")).into()),
    }
}
