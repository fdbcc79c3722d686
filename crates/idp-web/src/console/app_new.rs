//! `/admin/apps/new`: adding an application, three ways, each ending in the registry's
//! [`Apps::create`](latchkey_idp::apps::Apps::create) as `latchkey app add` and
//! `POST /api/v1/apps` do (so the same rules check it, and it is audited with the person's
//! name):
//!
//! - from the catalogue: a form made of the template's placeholders
//!   ([`Template::placeholders`]), filled by [`Template::application`];
//! - from the SP's metadata: a URL fetched by the server with the CLI's fetch (size cap,
//!   timeout), or an uploaded file, read by [`SpMetadata::parse`];
//! - by hand: entity ID, ACS URL and binding, NameID format.
//!
//! A refused form comes back with what was typed and the field named; nothing is written.

use crate::extract::PathSegment;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::apps::{self, Notice};
use super::forms::{FieldError, csrf_form, field_error, given};
use super::{Nav, Operator, Refusal, admit};
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::apps::{
    Application, Binding, MetadataImportError, NameIdFormat, NameIdPolicy, NameIdSource,
    NewApplication, SpMetadata, SpMetadataOptions,
};
use latchkey_idp::catalog::{self, CatalogError, Template};
use latchkey_idp::console::Permission;

/// The largest metadata file the upload form takes (one SP's metadata is a few
/// kilobytes; the fetch from a URL has its own cap). The route's body limit.
pub(crate) const MAX_METADATA_UPLOAD: usize = 1024 * 1024;

/// A refusal on one of these forms: the field (a placeholder's name is a field too) and
/// what to do.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub field: String,
    pub message: String,
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        Problem {
            field: e.field.to_owned(),
            message: e.message,
        }
    }
}

/// Why an application could not be added.
pub(crate) enum AddError {
    Domain(latchkey_idp::Error),
    Catalog(CatalogError),
    Metadata(MetadataImportError),
    /// The metadata could not be had: fetched or read (the field it came from).
    Source(&'static str, String),
}

impl From<latchkey_idp::Error> for AddError {
    fn from(e: latchkey_idp::Error) -> Self {
        AddError::Domain(e)
    }
}

impl From<CatalogError> for AddError {
    fn from(e: CatalogError) -> Self {
        AddError::Catalog(e)
    }
}

impl From<MetadataImportError> for AddError {
    fn from(e: MetadataImportError) -> Self {
        AddError::Metadata(e)
    }
}

/// The field an error is about, or the error page for what no field explains.
pub(crate) fn problem(err: AddError) -> Result<Problem, WebError> {
    let (field, message) = match err {
        AddError::Domain(latchkey_idp::Error::DuplicateEntityId { entity_id }) => (
            "entity_id".to_owned(),
            format!("{entity_id:?} is already registered"),
        ),
        AddError::Domain(e) => return field_error(e).map(Problem::from),
        AddError::Catalog(e) => {
            let field = match &e {
                CatalogError::MissingPlaceholder(name) => name.clone(),
                CatalogError::NoUrlPattern { what, .. } => (*what).to_owned(),
                _ => "template".to_owned(),
            };
            (field, e.to_string())
        }
        AddError::Metadata(e) => (e.field().to_owned(), e.to_string()),
        AddError::Source(field, why) => (field.to_owned(), why),
    };
    tracing::info!(field = %field, reason = %message, "console: application not added");
    Ok(Problem { field, message })
}

struct TemplateRow {
    name: String,
    display_name: String,
}

/// What the admin typed on the "by hand" form, given back on a refusal.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ManualForm {
    csrf: Option<String>,
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    acs_url: String,
    #[serde(default)]
    acs_binding: String,
    #[serde(default)]
    name_id_format: String,
}

/// The SP metadata URL form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MetadataForm {
    csrf: Option<String>,
    #[serde(default)]
    metadata_url: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    allow_expired: Option<String>,
}

csrf_form!(ManualForm, MetadataForm);

#[derive(askama::Template)]
#[template(path = "console/app_new.html")]
struct NewPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    templates: Vec<TemplateRow>,
    manual: ManualForm,
    metadata_url: String,
    error: Option<Problem>,
}

fn templates() -> Result<Vec<TemplateRow>, WebError> {
    Ok(catalog::templates()
        .map_err(|e| WebError::Internal(e.to_string()))?
        .into_iter()
        .map(|t| TemplateRow {
            name: t.name,
            display_name: t.display_name,
        })
        .collect())
}

fn new_page(
    op: &Operator,
    csrf: CsrfToken,
    manual: ManualForm,
    metadata_url: String,
    error: Option<Problem>,
) -> Result<Response, Refusal> {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(&NewPage {
        title: "Add an application",
        nav: op.nav(),
        csrf: csrf.value(),
        templates: templates()?,
        manual,
        metadata_url,
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// GET /admin/apps/new
pub(crate) async fn new_form(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let manual = ManualForm {
        acs_binding: "post".into(),
        name_id_format: "persistent".into(),
        ..ManualForm::default()
    };
    new_page(&op, csrf, manual, String::new(), None)
}

/// Registers `new`; on success, to the application's page (with what the template says
/// the application expects, when it came from one).
async fn register(
    state: &WebState,
    op: &Operator,
    new: NewApplication,
) -> Result<Application, AddError> {
    Ok(state.store().apps().create(&op.actor(), new).await?)
}

fn added(app: &Application, template: Option<&str>) -> Response {
    let to = match template {
        Some(t) => format!("/admin/apps/{}?template={t}", app.id),
        None => format!("/admin/apps/{}", app.id),
    };
    Redirect::to(&to).into_response()
}

/// POST /admin/apps: by hand.
pub(crate) async fn create(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<ManualForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let result = async {
        let name = given(&Some(form.name.clone())).unwrap_or_else(|| form.entity_id.clone());
        let mut new = NewApplication::new(form.entity_id.trim(), name, form.acs_url.trim());
        let binding =
            Binding::parse(&form.acs_binding).map_err(|e| latchkey_idp::Error::InvalidField {
                field: "acs_binding",
                reason: e.to_string(),
            })?;
        new.acs.iter_mut().for_each(|a| a.binding = binding);
        // The value each format is made from, as a template would choose it.
        let format = NameIdFormat::parse(&form.name_id_format)?;
        new.name_id = NameIdPolicy {
            format,
            source: match format {
                NameIdFormat::EmailAddress => NameIdSource::Email,
                NameIdFormat::Unspecified => NameIdSource::Username,
                NameIdFormat::Persistent | NameIdFormat::Transient => NameIdSource::Pairwise,
            },
        };
        register(&state, &op, new).await
    }
    .await;
    match result {
        Ok(app) => Ok(added(&app, None)),
        Err(e) => {
            let error = problem(e)?;
            new_page(&op, csrf, form, String::new(), Some(error))
        }
    }
}

#[derive(askama::Template)]
#[template(path = "console/app_template.html")]
struct TemplatePage<'a> {
    title: String,
    nav: Nav,
    csrf: &'a str,
    template: Template,
    /// (placeholder, value typed so far).
    fields: Vec<(String, String)>,
    /// The template has no URL patterns (generic SAML): the URLs are asked for.
    explicit: bool,
    values: BTreeMap<String, String>,
    error: Option<Problem>,
}

impl TemplatePage<'_> {
    fn value(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }
}

/// The template form as posted: `name`, `entity_id` and `acs_url` (for templates without
/// URL patterns), and one `param-NAME` per placeholder.
#[derive(Debug, Deserialize)]
pub(crate) struct TemplateForm {
    csrf: Option<String>,
    #[serde(flatten)]
    values: BTreeMap<String, String>,
}

csrf_form!(TemplateForm);

const PARAM: &str = "param-";

fn template_page(
    op: &Operator,
    csrf: CsrfToken,
    template: Template,
    values: BTreeMap<String, String>,
    error: Option<Problem>,
) -> Result<Response, Refusal> {
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let fields = template
        .placeholders()
        .into_iter()
        .map(|p| {
            let typed = values
                .get(&format!("{PARAM}{p}"))
                .cloned()
                .unwrap_or_default();
            (p, typed)
        })
        .collect();
    let html = render(&TemplatePage {
        title: format!("Add {}", template.display_name),
        nav: op.nav(),
        csrf: csrf.value(),
        explicit: template.acs_url.is_none() || template.entity_id.is_none(),
        fields,
        template,
        values,
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

fn template_named(name: &str) -> Result<Template, WebError> {
    match catalog::get(name) {
        Ok(t) => Ok(t),
        Err(CatalogError::NotFound(_)) => Err(WebError::NotFound),
        Err(e) => Err(WebError::Internal(e.to_string())),
    }
}

/// GET /admin/apps/new/{template}
pub(crate) async fn template_form(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(name): PathSegment,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let template = template_named(&name)?;
    template_page(&op, csrf, template, BTreeMap::new(), None)
}

/// The application a template makes from the form: its URL patterns filled with the
/// placeholders (an empty one is missing), or, for a template without patterns, the URLs
/// typed and the template's policy applied, as `app add --template` does.
fn from_template(
    template: &Template,
    values: &BTreeMap<String, String>,
) -> Result<NewApplication, AddError> {
    let typed = |key: &str| values.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut new = if template.acs_url.is_some() && template.entity_id.is_some() {
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(PARAM)?, v.trim())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        template.application(&pairs)?
    } else {
        let mut app = NewApplication::new(
            typed("entity_id").unwrap_or(""),
            template.display_name.clone(),
            typed("acs_url").unwrap_or(""),
        );
        template.apply_to(&mut app);
        app
    };
    if let Some(name) = typed("name") {
        new.name = name.to_owned();
    }
    Ok(new)
}

/// POST /admin/apps/new/{template}
pub(crate) async fn create_from_template(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    PathSegment(name): PathSegment,
    CsrfForm(form): CsrfForm<TemplateForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let template = template_named(&name)?;
    let result = match from_template(&template, &form.values) {
        Ok(new) => register(&state, &op, new).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(app) => Ok(added(&app, Some(&template.name))),
        Err(e) => {
            let error = problem(e)?;
            template_page(&op, csrf, template, form.values, Some(error))
        }
    }
}

/// Reads the metadata and registers its SP (with the template's policy, when one is
/// chosen); answers with the application's page and what the metadata held that was left
/// out.
#[allow(clippy::too_many_arguments)]
async fn from_metadata(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    text: Result<String, AddError>,
    template: &str,
    allow_expired: bool,
    source: &str,
    url: String,
) -> Result<Response, Refusal> {
    let result = async {
        let template = match template.trim() {
            "" => None,
            name => Some(catalog::get(name)?),
        };
        let options = SpMetadataOptions {
            allow_expired,
            ..SpMetadataOptions::new(state.store().now())
        };
        let metadata = SpMetadata::parse(&text?, &options)?;
        let new = metadata.application(template.as_ref());
        let mismatches = metadata.mismatches(&new);
        let app = state
            .store()
            .apps()
            .create_from_metadata(&op.actor(), new, &metadata, source)
            .await?;
        let warnings: Vec<String> = metadata
            .warnings
            .iter()
            .chain(&mismatches)
            .map(ToString::to_string)
            .collect();
        Ok::<_, AddError>((app, warnings))
    }
    .await;
    match result {
        Ok((app, warnings)) => {
            let notice = Notice {
                added_from_metadata: true,
                warnings,
                expects: None,
            };
            apps::page(state, op, csrf, app, notice, None, StatusCode::OK).await
        }
        Err(e) => {
            let error = problem(e)?;
            new_page(op, csrf, ManualForm::default(), url, Some(error))
        }
    }
}

/// POST /admin/apps/new/metadata: fetched from the SP's URL by the server.
pub(crate) async fn create_from_url(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<MetadataForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let url = form.metadata_url.trim().to_owned();
    let text = if url.starts_with("https://") || url.starts_with("http://") {
        latchkey_sp::fetch::fetch_metadata(&url)
            .await
            .map_err(|e| AddError::Source("metadata_url", e.to_string()))
    } else {
        Err(AddError::Source(
            "metadata_url",
            "give the http(s) URL the SP publishes its metadata at".into(),
        ))
    };
    let allow_expired = form.allow_expired.is_some();
    let source = url.clone();
    from_metadata(
        &state,
        &op,
        csrf,
        text,
        &form.template,
        allow_expired,
        &source,
        url,
    )
    .await
}

/// POST /admin/apps/new/upload: a metadata file (multipart, under
/// [`MAX_METADATA_UPLOAD`]). The anti-forgery field must come before the file, as the
/// form puts it, so nothing of a forged upload is read.
pub(crate) async fn create_from_upload(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    upload: crate::extract::CsrfUpload,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteApps).await?;
    let text = match upload.file("metadata_file") {
        Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
        _ => Err(AddError::Source(
            "metadata_file",
            "choose the SP's metadata file (XML)".into(),
        )),
    };
    let template = upload.text("template").unwrap_or("").to_owned();
    let allow_expired = upload.text("allow_expired").is_some();
    from_metadata(
        &state,
        &op,
        csrf,
        text,
        &template,
        allow_expired,
        "an uploaded file",
        String::new(),
    )
    .await
}
