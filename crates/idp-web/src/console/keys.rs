//! `/admin/keys`: the signing keys (active, next, retired; when each certificate expires)
//! and, for admins, the rollover: rotate (a next key is published), then activate it. Both
//! go through the CLI's [`Keyring`](latchkey_idp::keys::Keyring) over the store this
//! server signs from ([`IdpKeys::keyring`](latchkey_idp::sso::IdpKeys::keyring)), and
//! activation under the same rollover rule as `latchkey key activate`
//! ([`IdpKeys::activation`](latchkey_idp::sso::IdpKeys::activation)): refused while the
//! next key has been published for less than the metadata's cacheDuration, unless the
//! admin ticks the box that is `--force`. Audited with the person's name by the keyring.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::forms::{FieldError, csrf_form};
use super::{Nav, Operator, Refusal, admit};
use crate::extract::{CsrfForm, CsrfToken, SessionCookie};
use crate::html::render;
use crate::{WebError, WebState};
use latchkey_idp::console::Permission;
use latchkey_idp::keys::{Activation, KeyAlgorithm, KeyError, KeyStatus};

/// The keys' routes.
pub(crate) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/keys", get(show))
        .route("/admin/keys/rotate", post(rotate))
        .route("/admin/keys/activate", post(activate))
}

struct KeyRow {
    id: String,
    state: &'static str,
    algorithm: &'static str,
    fingerprint: String,
    created: String,
    activated: String,
    not_after: String,
    /// For the next key: when activation is allowed without the confirmation.
    activate_from: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage<'a> {
    title: &'static str,
    nav: Nav,
    csrf: &'a str,
    keys: Vec<KeyRow>,
    missing: Option<&'static str>,
    has_next: bool,
    may_write: bool,
    wait: String,
    error: Option<FieldError>,
}

/// A time as the console's tables show it (RFC 3339, whole seconds), `-` for none.
pub(crate) fn when(t: Option<OffsetDateTime>) -> String {
    t.and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

fn rule(state: &WebState) -> Activation {
    state.keys().activation(state.settings().metadata_cache)
}

async fn page(
    state: &WebState,
    op: &Operator,
    csrf: CsrfToken,
    error: Option<FieldError>,
    status: StatusCode,
) -> Result<Response, Refusal> {
    let rule = rule(state);
    // Expiry is in the certificates the server has loaded: the active and the next key.
    let (not_after, missing): (HashMap<String, i64>, _) = match state.keys().current() {
        Ok(m) => (
            m.published
                .iter()
                .map(|c| (hex::encode(c.sha256_fingerprint()), c.not_after()))
                .collect(),
            None,
        ),
        Err(_) => (HashMap::new(), Some("No signing key is loaded.")),
    };
    let keyring = state.keys().keyring(state.store()).map_err(key_fault)?;
    let infos = keyring.list().await.map_err(key_fault)?;
    let keys: Vec<KeyRow> = infos
        .into_iter()
        .map(|k| KeyRow {
            state: k.status.as_str(),
            algorithm: k.algorithm.as_str(),
            not_after: not_after
                .get(&k.fingerprint_sha256)
                .map(|t| when(OffsetDateTime::from_unix_timestamp(*t).ok()))
                .unwrap_or_else(|| "-".into()),
            activate_from: if k.status == KeyStatus::Next {
                when(Some(rule.earliest(k.created_at)))
            } else {
                String::new()
            },
            created: when(Some(k.created_at)),
            activated: when(k.activated_at),
            fingerprint: k.fingerprint_sha256,
            id: k.id,
        })
        .collect();
    let html = render(&KeysPage {
        title: "Signing keys",
        nav: op.nav(),
        csrf: csrf.value(),
        has_next: keys.iter().any(|k| k.state == KeyStatus::Next.as_str()),
        keys,
        missing,
        may_write: op.roles.allows(Permission::WriteKeys),
        wait: match rule {
            Activation::AfterPublished(d) => format!("{} s", d.whole_seconds()),
            _ => "0 s".into(),
        },
        error,
    })?;
    Ok((status, csrf, html).into_response())
}

/// A failed key change: a database that was only busy (a deadlock, a serialization
/// failure, SQLite busy, a full pool) is [`WebError::Busy`] (503, `Retry-After`); anything
/// else is a fault.
fn key_fault(e: KeyError) -> WebError {
    match e {
        KeyError::Store(e) if matches!(*e, latchkey_idp::Error::Busy { .. }) => (*e).into(),
        other => WebError::Internal(format!("signing keys: {other}")),
    }
}

/// GET /admin/keys
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    page(&state, &op, csrf, None, StatusCode::OK).await
}

/// The algorithm of a new next key.
#[derive(Debug, Deserialize)]
pub(crate) struct RotateForm {
    csrf: Option<String>,
    #[serde(default)]
    algorithm: String,
}

/// Activation, with the explicit confirmation that skips the wait.
#[derive(Debug, Deserialize)]
pub(crate) struct ActivateForm {
    csrf: Option<String>,
    #[serde(default)]
    force: Option<String>,
}

csrf_form!(RotateForm, ActivateForm);

/// After a change: the database store's nodes (this one first) see it at their refresh;
/// this node looks now, so the page and the metadata show it at once.
async fn changed(state: &WebState) -> Result<Response, Refusal> {
    if let Err(e) = state.keys().refresh().await {
        tracing::warn!(error = %e, "signing keys changed; reloading them failed");
    }
    Ok(Redirect::to("/admin/keys").into_response())
}

/// A refusal the admin can act on, on the field it is about; anything else is a fault.
fn refusal(e: KeyError, field: &'static str) -> Result<FieldError, WebError> {
    match e {
        KeyError::TooSoon { .. } | KeyError::NoNextKey | KeyError::NextKeyExists(_) => {
            tracing::info!(reason = %e, "console: key change refused");
            Ok(FieldError {
                field,
                message: e.to_string(),
            })
        }
        other => Err(key_fault(other)),
    }
}

/// POST /admin/keys/rotate
pub(crate) async fn rotate(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<RotateForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteKeys).await?;
    let algorithm = match form.algorithm.trim() {
        "" => state.settings().key_algorithm,
        name => match KeyAlgorithm::parse(name) {
            Some(a) => a,
            None => {
                let error = FieldError {
                    field: "algorithm",
                    message: format!("{name:?} is not rsa2048 or ecdsa_p256"),
                };
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                return page(&state, &op, csrf, Some(error), status).await;
            }
        },
    };
    let mut keyring = state.keys().keyring(state.store()).map_err(key_fault)?;
    match keyring
        .rotate(&op.actor(), algorithm, state.store().now())
        .await
    {
        Ok(_) => changed(&state).await,
        Err(e) => {
            let error = refusal(e, "rotate")?;
            page(
                &state,
                &op,
                csrf,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// POST /admin/keys/activate
pub(crate) async fn activate(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
    csrf: CsrfToken,
    CsrfForm(form): CsrfForm<ActivateForm>,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::WriteKeys).await?;
    let rule = if form.force.is_some() {
        Activation::Forced
    } else {
        rule(&state)
    };
    let mut keyring = state.keys().keyring(state.store()).map_err(key_fault)?;
    match keyring
        .activate(&op.actor(), state.store().now(), rule)
        .await
    {
        Ok(info) => {
            if rule == Activation::Forced {
                tracing::warn!(key = %info.id, user = %op.user.username,
                    "signing key activated without waiting for the metadata's cacheDuration");
            }
            changed(&state).await
        }
        Err(e) => {
            let error = refusal(e, "force")?;
            page(
                &state,
                &op,
                csrf,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key change the database turned away as busy answers 503, not a 500.
    #[test]
    fn a_busy_store_is_503_not_500() {
        let busy = KeyError::Store(Box::new(latchkey_idp::Error::Busy {
            what: latchkey_idp::error::DATABASE_CONTENDED,
            retry_after_seconds: 1,
        }));
        let response = key_fault(busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let other = key_fault(KeyError::NoActiveKey).into_response();
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
