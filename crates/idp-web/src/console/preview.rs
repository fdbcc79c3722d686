//! `/admin/preview`: choose a user and an application, see the NameID, attributes and
//! AuthnContext the application would receive ([`latchkey_idp::sso::preview`], the code of
//! real assertions, unsigned), or why the sign-in would be refused. Read-only, for every
//! console role that sees the directory.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::forms::{FieldError, field_error};
use super::{Nav, Refusal, admit};
use crate::extract::SessionCookie;
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::console::Permission;
use latchkey_idp::sso::preview::{self, Preview};

/// The chosen user (username, e-mail or ID) and application (ID).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PreviewQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    app: String,
}

struct AppChoice {
    id: String,
    name: String,
    chosen: bool,
}

struct AttributeRow {
    name: String,
    name_format: String,
    values: Vec<String>,
}

/// What the page shows of an assertion.
struct Shown {
    name_id: String,
    name_id_format: String,
    name_qualifier: String,
    sp_name_qualifier: String,
    attributes: Vec<AttributeRow>,
    authn_context: String,
    recipient: String,
    audience: String,
    notes: Vec<&'static str>,
    xml: String,
}

struct Refused {
    code: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/preview.html")]
struct PreviewPage {
    title: &'static str,
    nav: Nav,
    user: String,
    apps: Vec<AppChoice>,
    shown: Option<Shown>,
    refused: Option<Refused>,
    error: Option<FieldError>,
}

fn shown(would: preview::WouldReceive) -> Shown {
    let a = would.assertion;
    let name_id = a.subject.as_ref().and_then(|s| s.name_id.clone());
    let confirmation = a
        .subject
        .as_ref()
        .and_then(|s| s.confirmations.first())
        .and_then(|c| c.data.as_ref());
    let mut notes = Vec::new();
    if would.pairwise_pending {
        notes.push("The pairwise identifier is made at the user's first sign-in to this application; it stays the same afterwards.");
    }
    if would.transient {
        notes.push("The NameID is transient: a new random value at every sign-in.");
    }
    if would.second_factor {
        notes.push("A second factor is required: the sign-in asks for it, and the class shown is the one stated after it.");
    }
    if would.encrypted {
        notes
            .push("The assertion is encrypted to the application's certificate before it is sent.");
    }
    notes.push("Sent signed as the application is configured; shown here unsigned, with this preview's own IDs and times.");
    Shown {
        name_id: name_id
            .as_ref()
            .map(|n| n.value.clone())
            .unwrap_or_default(),
        name_id_format: name_id
            .as_ref()
            .and_then(|n| n.format.clone())
            .unwrap_or_default(),
        name_qualifier: name_id
            .as_ref()
            .and_then(|n| n.name_qualifier.clone())
            .unwrap_or_default(),
        sp_name_qualifier: name_id
            .as_ref()
            .and_then(|n| n.sp_name_qualifier.clone())
            .unwrap_or_default(),
        attributes: a
            .attributes
            .iter()
            .map(|at| AttributeRow {
                name: at.name.clone(),
                name_format: at.name_format.clone().unwrap_or_default(),
                values: at.values.clone(),
            })
            .collect(),
        authn_context: a
            .authn_statements
            .first()
            .and_then(|s| s.authn_context_class_ref.clone())
            .unwrap_or_default(),
        recipient: confirmation
            .and_then(|d| d.recipient.clone())
            .unwrap_or_default(),
        audience: a
            .conditions
            .as_ref()
            .map(|c| c.audience_restrictions.concat().join(" "))
            .unwrap_or_default(),
        notes,
        xml: would.xml,
    }
}

/// GET /admin/preview
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    Query(q): Query<PreviewQuery>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadDirectory).await?;
    let store = state.store();
    let all = store.apps().list().await?;
    let chosen = all.iter().find(|a| a.id.to_string() == q.app.trim());
    let apps = all
        .iter()
        .map(|a| AppChoice {
            id: a.id.to_string(),
            name: a.settings.name.clone(),
            chosen: chosen.is_some_and(|c| c.id == a.id),
        })
        .collect();
    let (mut shown_, mut refused, mut error) = (None, None, None);
    let user = q.user.trim();
    if !user.is_empty() || !q.app.trim().is_empty() {
        match (store.users().lookup(user).await, chosen) {
            (Err(e), _) => error = Some(field_error(e)?),
            (Ok(_), None) => {
                error = Some(FieldError {
                    field: "app",
                    message: "choose an application".into(),
                })
            }
            (Ok(user), Some(app)) => {
                match preview::preview(store, state.settings(), app, &user, store.now())
                    .await
                    .map_err(WebError::from)?
                {
                    Preview::Would(would) => shown_ = Some(shown(*would)),
                    Preview::Refused(r) => {
                        refused = Some(Refused {
                            code: r.code.as_str(),
                            reason: r.reason,
                        })
                    }
                }
            }
        }
    }
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let html = render(&PreviewPage {
        title: "Assertion preview",
        nav: op.nav(),
        user: q.user,
        apps,
        shown: shown_,
        refused,
        error,
    })?;
    Ok((status, html).into_response())
}
