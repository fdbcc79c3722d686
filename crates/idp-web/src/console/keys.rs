//! `/admin/keys`: the signing keys as this node uses them (the active one, and a next one
//! published in the metadata during a rollover), read-only. Rotation and activation stay
//! with `latchkey key`, which applies the rollover safety rule.

use askama::Template;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use time::format_description::well_known::Rfc3339;

use super::{Nav, Refusal, admit};
use crate::WebState;
use crate::extract::SessionCookie;
use crate::html::render;
use latchkey_idp::console::Permission;
use latchkey_xmlsec::crypto::Certificate;

struct KeyRow {
    state: &'static str,
    fingerprint: String,
    subject: String,
    until: String,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    title: &'static str,
    nav: Nav,
    keys: Vec<KeyRow>,
    missing: Option<&'static str>,
}

fn row(state: &'static str, cert: &Certificate) -> KeyRow {
    let until = time::OffsetDateTime::from_unix_timestamp(cert.not_after())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| cert.not_after().to_string());
    KeyRow {
        state,
        fingerprint: hex::encode(cert.sha256_fingerprint()),
        subject: cert.subject().to_owned(),
        until,
    }
}

/// GET /admin/keys
pub(crate) async fn show(
    State(state): State<WebState>,
    cookie: SessionCookie,
    uri: Uri,
) -> Result<Response, Refusal> {
    let op = admit(&state, &cookie, &uri, Permission::ReadApps).await?;
    let (keys, missing) = match state.keys().current() {
        Ok(material) => {
            let mut keys = vec![row("active", &material.certificate)];
            // `published` is the active certificate, then the next one during a rollover.
            keys.extend(
                material
                    .published
                    .iter()
                    .filter(|c| c.der() != material.certificate.der())
                    .map(|c| row("next (published, not signing)", c)),
            );
            (keys, None)
        }
        Err(_) => (Vec::new(), Some("No signing key is loaded.")),
    };
    let html = render(&KeysPage {
        title: "Signing keys",
        nav: op.nav(),
        keys,
        missing,
    })?;
    Ok(html.into_response())
}
