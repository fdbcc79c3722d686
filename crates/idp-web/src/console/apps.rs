//! `/admin/apps`: the applications, and one application's page: what it receives, who may
//! use it, and (for admins) the forms that change that. Adding one is
//! [`super::app_new`], the changes [`super::app_edit`].

use crate::extract::PathSegment;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::app_edit::{self, EditForm};
use super::app_new::{self, Problem};
use super::app_scim;
use super::{Nav, Operator, Refusal, admit};
use crate::extract::{CsrfToken, SessionCookie};
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::apps::Application;
use latchkey_idp::console::Permission;
use latchkey_idp::directory::Group;
use latchkey_idp::ids::AppId;
use latchkey_idp::mfa::policy::{MfaPolicy, class_name};

/// The applications' routes.
pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/apps", get(list).post(app_new::create))
        .route("/admin/apps/new", get(app_new::new_form))
        .route("/admin/apps/new/metadata", post(app_new::create_from_url))
        .route(
            "/admin/apps/new/upload",
            post(app_new::create_from_upload)
                .layer(DefaultBodyLimit::max(app_new::MAX_METADATA_UPLOAD)),
        )
        .route(
            "/admin/apps/new/{template}",
            get(app_new::template_form).post(app_new::create_from_template),
        )
        .route("/admin/apps/{id}", get(show).post(app_edit::edit))
        .route("/admin/apps/{id}/access", post(app_edit::assign))
        .route("/admin/apps/{id}/access/remove", post(app_edit::unassign))
        .route("/admin/apps/{id}/mfa", post(app_edit::mfa))
        .route("/admin/apps/{id}/scim", post(app_scim::set))
        .route("/admin/apps/{id}/scim/remove", post(app_scim::remove))
        .route("/admin/preview", get(super::preview::show))
}

struct AppRow {
    id: String,
    name: String,
    entity_id: String,
    groups: String,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    title: &'static str,
    nav: Nav,
    apps: Vec<AppRow>,
    may_write: bool,
}

fn names(groups: &[Group]) -> String {
    groups
        .iter()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// GET /admin/apps
pub(crate) async fn list(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    let store = state.store();
    let mut apps = Vec::new();
    for app in store.apps().list().await? {
        let groups = store.apps().access_groups(app.id).await?;
        apps.push(AppRow {
            id: app.id.to_string(),
            name: app.settings.name,
            entity_id: app.settings.entity_id,
            groups: names(&groups),
        });
    }
    let html = render(&AppsPage {
        title: "Applications",
        nav: op.nav(),
        apps,
        may_write: op.roles.allows(Permission::WriteApps),
    })?;
    Ok(html.into_response())
}

/// What to say above an application's page after it was added.
#[derive(Debug, Default)]
pub(crate) struct Notice {
    /// It was just registered from SP metadata.
    pub added_from_metadata: bool,
    /// What the metadata held that was left out.
    pub warnings: Vec<String>,
    /// What the catalogue template says the application needs of a user.
    pub expects: Option<String>,
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage<'a> {
    title: String,
    nav: Nav,
    csrf: &'a str,
    id: String,
    entity_id: String,
    slug: String,
    acs: Vec<String>,
    name_id: String,
    name_id_formats: String,
    signing: String,
    encryption: String,
    attributes: Vec<String>,
    groups: Vec<Group>,
    require_mfa: bool,
    mfa_class: &'static str,
    form: EditForm,
    may_write: bool,
    notice: Notice,
    error: Option<Problem>,
    /// The SCIM connection's state, if the application has one (never its token).
    scim: Option<ScimView>,
}

/// What the application page shows of its SCIM connection.
struct ScimView {
    url: String,
    on_remove: String,
    queue: u64,
    last_success: String,
    last_error: String,
    last_error_at: String,
    last_sync: String,
}

impl From<latchkey_idp::provisioning::ConnectionStatus> for ScimView {
    fn from(s: latchkey_idp::provisioning::ConnectionStatus) -> Self {
        use super::keys::when;
        ScimView {
            url: s.base_url,
            on_remove: s.on_remove.to_string(),
            queue: s.queue_length,
            last_success: when(s.last_success_at),
            last_error: s.last_error.unwrap_or_else(|| "-".into()),
            last_error_at: when(s.last_error_at),
            last_sync: when(s.last_sync_at),
        }
    }
}

/// Loads an application by the ID in its URL; an unknown one is a 404.
pub(crate) async fn load(state: &WebState, id: &str) -> Result<Application, WebError> {
    let id: AppId = id.parse().map_err(|_| WebError::NotFound)?;
    match state.store().apps().get(id).await {
        Ok(a) => Ok(a),
        Err(latchkey_idp::Error::UnknownApplication { .. }) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// The application's page; `form` is what the settings form shows (the stored values, or
/// what was typed when a change was refused).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn page_with(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    app: Application,
    form: EditForm,
    notice: Notice,
    error: Option<Problem>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let groups = state.store().apps().access_groups(app.id).await?;
    let mfa = MfaPolicy::new(state.store()).app(app.id).await?;
    let scim = state.store().provisioning().status(app.id).await?;
    let s = app.settings;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let html = render(&AppPage {
        title: s.name.clone(),
        nav: op.nav(),
        csrf: csrf.value(),
        id: app.id.to_string(),
        acs: s
            .acs
            .iter()
            .map(|a| format!("{} ({})", a.url, a.binding.uri()))
            .collect(),
        name_id: format!("{} from {}", s.name_id.format.uri(), s.name_id.source),
        name_id_formats: s.name_id_formats_text(),
        signing: format!(
            "response signed: {}; assertion signed: {}; requests must be signed: {}",
            yes(s.sign_response),
            yes(s.sign_assertion),
            yes(s.authn_requests_signed && !s.signing_certs.is_empty())
        ),
        encryption: format!(
            "assertion encrypted: {}; encryption certificate: {}",
            yes(s.encrypt_assertion),
            yes(s.encryption_cert.is_some())
        ),
        attributes: s.attributes.iter().map(ToString::to_string).collect(),
        groups,
        require_mfa: mfa.require_mfa,
        mfa_class: class_name::as_str(mfa.mfa_class),
        form,
        may_write: op.roles.allows(Permission::WriteApps),
        notice,
        error,
        slug: s.slug,
        entity_id: s.entity_id,
        scim: scim.map(ScimView::from),
    })?;
    Ok((status, csrf, html).into_response())
}

/// The application's page with its stored settings in the form.
pub(crate) async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    app: Application,
    notice: Notice,
    error: Option<Problem>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let form = EditForm::from(&app.settings);
    page_with(state, op, csrf, app, form, notice, error, status).await
}

/// `?template=NAME` after an application was added from that catalogue template.
#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    template: Option<String>,
}

/// GET /admin/apps/{id}
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(id): PathSegment,
    Query(q): Query<ShowQuery>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    let app = load(&state, &id).await?;
    let notice = Notice {
        expects: q
            .template
            .as_deref()
            .and_then(|t| latchkey_idp::catalog::get(t).ok())
            .map(|t| t.expects),
        ..Notice::default()
    };
    page(&state, &op, csrf, app, notice, None, StatusCode::OK).await
}
