//! Rendering pages: every page is an askama template (`templates/`, escaping on) extending
//! `base.html`, with the one stylesheet of [`super::assets`].
//!
//! Pages carry no inline script or style (the CSP forbids both); the only script the server
//! ever sends is the SAML auto-POST, allowed by its hash on that page alone.

use askama::Template;
use axum::response::Html;

use super::WebError;

/// Renders a page; a template that fails to render (a formatting error, never input) is a
/// server fault.
pub(crate) fn render<T: Template>(page: &T) -> Result<Html<String>, WebError> {
    page.render()
        .map(Html)
        .map_err(|e| WebError::Internal(format!("page template: {e}")))
}
