//! `/admin`: counts, the last day's sign-ins, and what needs attention.

use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use super::{Nav, Refusal, admit};
use crate::WebState;
use crate::extract::SessionCookie;
use crate::html::render;
use latchkey_idp::console::Permission;
use latchkey_idp::console::overview::{self, Overview};

#[derive(Template)]
#[template(path = "console/dashboard.html")]
struct DashboardPage {
    title: &'static str,
    nav: Nav,
    figures: Overview,
    warnings: Vec<String>,
}

/// GET /admin
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    let store = state.store();
    let figures = overview::overview(store).await?;
    let mut warnings = match state.keys().current() {
        Ok(material) => overview::key_warnings(&material, store.now()),
        Err(_) => vec!["No signing key is loaded: sign-ins cannot be answered.".to_owned()],
    };
    warnings.extend(
        overview::unreachable_apps(store)
            .await?
            .into_iter()
            .map(|a| {
                format!(
                    "Nobody can use {} ({}): no active user is in a group assigned to it.",
                    a.settings.name, a.settings.entity_id
                )
            }),
    );
    warnings.extend(
        overview::expiring_metadata(store)
            .await?
            .into_iter()
            .map(|m| {
                let verb = if m.valid_until <= store.now() {
                    "expired"
                } else {
                    "expires"
                };
                let at = m
                    .valid_until
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                format!(
                    "The SP metadata of {} ({}), read from {}, {verb} at {at}: refresh it (latchkey app refresh-metadata).",
                    m.name, m.entity_id, m.source
                )
            }),
    );
    let html = render(&DashboardPage {
        title: "Admin console",
        nav: op.nav(),
        figures,
        warnings,
    })?;
    Ok(html.into_response())
}
