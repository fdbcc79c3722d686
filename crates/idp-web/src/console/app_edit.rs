//! The changes an admin makes on an application's page: its settings (NameID, attribute
//! release, signing and encryption, the tile, the slug) through
//! [`Apps::update`](latchkey_idp::apps::Apps::update) as `latchkey app set` and
//! `PUT /api/v1/apps/{app}` do; its access policy (assigned groups, a second factor) through
//! [`Apps::assign`](latchkey_idp::apps::Apps::assign) and
//! [`MfaPolicy::set_app`]. Each is audited with the person's name by the call that makes
//! it; a refused one gives the page back with the field named and nothing written.

use super::users::GroupForm;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::app_new::Problem;
use super::apps::{self, Notice};
use super::forms::{FieldError, csrf_form, field_error};
use super::{Operator, Refusal, admit};
use crate::WebState;
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use latchkey_idp::apps::{Application, AttributeMapping, NameIdFormat, NewApplication};
use latchkey_idp::console::Permission;
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy, class_name};

/// The settings form, as shown and as posted (checkboxes: present means on).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditForm {
    csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon_url: String,
    #[serde(default)]
    pub name_id_format: String,
    #[serde(default)]
    pub name_id_source: String,
    /// One mapping a line, in the CLI's and the API's text form.
    #[serde(default)]
    pub attributes: String,
    #[serde(default)]
    pub sign_response: Option<String>,
    #[serde(default)]
    pub sign_assertion: Option<String>,
    #[serde(default)]
    pub authn_requests_signed: Option<String>,
    #[serde(default)]
    pub encrypt_assertion: Option<String>,
    /// PEM; empty forgets it.
    #[serde(default)]
    pub encryption_cert: String,
}

/// The application's MFA policy.
#[derive(Debug, Deserialize)]
pub(crate) struct MfaForm {
    csrf: Option<String>,
    #[serde(default)]
    require_mfa: Option<String>,
    #[serde(default)]
    mfa_class: String,
}

csrf_form!(EditForm, MfaForm);

fn on(b: bool) -> Option<String> {
    b.then(|| "on".to_owned())
}

impl From<&NewApplication> for EditForm {
    fn from(s: &NewApplication) -> Self {
        EditForm {
            csrf: None,
            name: s.name.clone(),
            slug: s.slug.clone(),
            description: s.tile.description.clone().unwrap_or_default(),
            icon_url: s.tile.icon_url.clone().unwrap_or_default(),
            name_id_format: s.name_id.format.uri().to_owned(),
            name_id_source: s.name_id.source.to_string(),
            attributes: s
                .attributes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            sign_response: on(s.sign_response),
            sign_assertion: on(s.sign_assertion),
            authn_requests_signed: on(s.authn_requests_signed),
            encrypt_assertion: on(s.encrypt_assertion),
            encryption_cert: s.encryption_cert.clone().unwrap_or_default(),
        }
    }
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl EditForm {
    /// The NameID format choices, for the select.
    pub fn formats(&self) -> Vec<(&'static str, bool)> {
        [
            NameIdFormat::Persistent,
            NameIdFormat::Transient,
            NameIdFormat::EmailAddress,
            NameIdFormat::Unspecified,
        ]
        .into_iter()
        .map(|f| (f.uri(), f.uri() == self.name_id_format))
        .collect()
    }

    /// Writes the form over a copy of the settings; the registry then checks the result as
    /// it checks a new application.
    fn apply(&self, s: &mut NewApplication) -> latchkey_idp::Result<()> {
        s.name = self.name.trim().to_owned();
        s.slug = self.slug.trim().to_owned();
        s.tile.description = optional(&self.description);
        s.tile.icon_url = optional(&self.icon_url);
        s.name_id.format = NameIdFormat::parse(&self.name_id_format)?;
        s.name_id.source = self.name_id_source.parse()?;
        s.attributes = self
            .attributes
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.parse::<AttributeMapping>()
                    .map_err(|e| latchkey_idp::Error::InvalidField {
                        field: "attributes",
                        reason: format!("{l:?}: {e}"),
                    })
            })
            .collect::<Result<_, _>>()?;
        s.sign_response = self.sign_response.is_some();
        s.sign_assertion = self.sign_assertion.is_some();
        s.authn_requests_signed = self.authn_requests_signed.is_some();
        s.encrypt_assertion = self.encrypt_assertion.is_some();
        let cert = optional(&self.encryption_cert);
        if cert.is_none() {
            s.encryption_methods.clear();
        }
        s.encryption_cert = cert;
        Ok(())
    }
}

fn problem(err: latchkey_idp::Error) -> Result<Problem, Refusal> {
    use latchkey_idp::Error as E;
    let field = match &err {
        E::DuplicateEntityId { .. } => "entity_id",
        E::AlreadyAssigned { .. } | E::NotAssigned { .. } => "group",
        _ => return Ok(field_error(err)?.into()),
    };
    Ok(FieldError {
        field,
        message: err.to_string(),
    }
    .into())
}

fn back(app: &Application) -> Response {
    Redirect::to(&format!("/admin/apps/{}", app.id)).into_response()
}

async fn refused(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    app: Application,
    error: Problem,
) -> Result<Response, Refusal> {
    tracing::info!(app = %app.settings.entity_id, field = %error.field, reason = %error.message,
        "console: application change refused");
    apps::page(
        state,
        op,
        csrf,
        app,
        Notice::default(),
        Some(error),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// POST /admin/apps/{id}: the settings.
pub(crate) async fn edit(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    let mut settings = app.settings.clone();
    let result = match form.apply(&mut settings) {
        Ok(()) => {
            state
                .store()
                .apps()
                .update(&op.actor(), app.id, move |s| *s = settings)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(updated) => Ok(back(&updated)),
        Err(e) => {
            let error = problem(e)?;
            tracing::info!(app = %app.settings.entity_id, field = %error.field,
                "console: application change refused");
            apps::page_with(
                &state,
                &op,
                csrf,
                app,
                form,
                Notice::default(),
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn access(
    state: &WebState,
    cookie: &SessionCookie,
    uri: &Uri,
    csrf: CsrfToken,
    id: &str,
    group: &str,
    assign: bool,
) -> Result<Response, Refusal> {
    let op = admit(state, cookie, uri, Permission::WriteApps).await?;
    let app = apps::load(state, id).await?;
    let store = state.store();
    let result = match store.groups().lookup(group.trim()).await {
        Ok(g) if assign => store.apps().assign(&op.actor(), app.id, g.id).await,
        Ok(g) => store.apps().unassign(&op.actor(), app.id, g.id).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(back(&app)),
        Err(e) => {
            let error = problem(e)?;
            refused(state, &op, csrf, app, error).await
        }
    }
}

/// POST /admin/apps/{id}/access: let a group's members use it.
pub(crate) async fn assign(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    access(&state, &cookie, &uri, csrf, &id, &form.group, true).await
}

/// POST /admin/apps/{id}/access/remove
pub(crate) async fn unassign(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> Result<Response, Refusal> {
    access(&state, &cookie, &uri, csrf, &id, &form.group, false).await
}

/// POST /admin/apps/{id}/mfa: whether every sign-in needs a second factor, and the class
/// its assertions state.
pub(crate) async fn mfa(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<MfaForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let app = apps::load(&state, &id).await?;
    let Some(mfa_class) = class_name::parse(form.mfa_class.trim()) else {
        let error = Problem {
            field: "mfa_class".into(),
            message: format!(
                "{:?} is not a class: refeds or mobile_two_factor",
                form.mfa_class
            ),
        };
        return refused(&state, &op, csrf, app, error).await;
    };
    let policy = MfaPolicy::new(state.store());
    let to = AppMfa {
        require_mfa: form.require_mfa.is_some(),
        mfa_class,
    };
    if policy.app(app.id).await? != to {
        policy.set_app(&op.actor(), &app, to).await?;
    }
    Ok(back(&app))
}
