//! `/admin/apps`: the applications, read-only (changes are the CLI's and the API's for
//! now): what each one receives and which groups may use it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use super::{Nav, Refusal, admit};
use crate::extract::SessionCookie;
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::console::Permission;
use latchkey_idp::ids::AppId;

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
}

fn names(groups: &[latchkey_idp::directory::Group]) -> String {
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
    })?;
    Ok(html.into_response())
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    title: String,
    nav: Nav,
    entity_id: String,
    acs: Vec<String>,
    name_id: String,
    name_id_formats: String,
    signing: String,
    encryption: String,
    groups: String,
    attributes: String,
}

/// GET /admin/apps/{id}
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    let id: AppId = id.parse().map_err(|_| WebError::NotFound)?;
    let app = match state.store().apps().get(id).await {
        Ok(a) => a,
        Err(latchkey_idp::Error::UnknownApplication { .. }) => {
            return Err(WebError::NotFound.into());
        }
        Err(e) => return Err(e.into()),
    };
    let groups = state.store().apps().access_groups(app.id).await?;
    let s = app.settings;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let html = render(&AppPage {
        title: s.name.clone(),
        nav: op.nav(),
        acs: s.acs.iter().map(|a| a.url.clone()).collect(),
        name_id: format!("{:?} from {:?}", s.name_id.format, s.name_id.source),
        name_id_formats: s.name_id_formats_text(),
        signing: format!(
            "response signed: {}; assertion signed: {}; requests must be signed: {}",
            yes(s.sign_response),
            yes(s.sign_assertion),
            yes(s.authn_requests_signed)
        ),
        encryption: format!("assertion encrypted: {}", yes(s.encrypt_assertion)),
        attributes: serde_json::to_string_pretty(&s.attributes)
            .map_err(|e| WebError::Internal(format!("attribute mappings: {e}")))?,
        groups: names(&groups),
        entity_id: s.entity_id,
    })?;
    Ok(html.into_response())
}
