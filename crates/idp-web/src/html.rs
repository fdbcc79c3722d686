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

/// Escapes text for HTML (askama's escaper).
// TODO(templates): webauthn page. Only `webauthn.rs`'s page still builds its body itself; this
// goes when that page moves to a template.
pub fn escape(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|safe| safe.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href='x'>\"&\"</a>"),
            "&#60;a href=&#39;x&#39;&#62;&#34;&#38;&#34;&#60;/a&#62;"
        );
    }
}
