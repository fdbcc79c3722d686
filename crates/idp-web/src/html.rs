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

/// A page whose body was built by its caller.
// TODO(templates): logout pages. Only `logout.rs` builds bodies itself; it moves to
// templates of its own once its rewrite has landed, and this goes.
#[derive(Template)]
#[template(path = "raw.html")]
struct RawPage<'a> {
    title: &'a str,
    body: &'a str,
    refresh: Option<&'a str>,
}

/// Escapes text for HTML (askama's escaper).
// TODO(templates): logout pages.
pub fn escape(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|safe| safe.to_string())
        .unwrap_or_default()
}

/// A whole page around `body` (which the caller has escaped).
// TODO(templates): logout pages.
pub fn page(title: &str, body: &str) -> String {
    RawPage {
        title,
        body,
        refresh: None,
    }
    .render()
    .unwrap_or_default()
}

/// A page that sends the browser on to `url` at once (a meta refresh, which needs no
/// script), with a link in the body for browsers that do not follow it.
// TODO(templates): logout pages.
pub fn refresh_page(title: &str, url: &str, body: &str) -> String {
    RawPage {
        title,
        body,
        refresh: Some(url),
    }
    .render()
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
        let p = page("<script>", "<p>ok</p>");
        assert!(p.contains("<h1>&#60;script&#62;</h1>"));
        assert!(p.contains("<p>ok</p>"));
        assert!(!p.contains("<script>"));
    }

    #[test]
    fn refresh_page_escapes_its_target() {
        let p = refresh_page("Go", "https://sp/slo?a=1&b=\"><x", "<p>b</p>");
        assert!(
            p.contains(
                "<meta http-equiv=\"refresh\" content=\"0;url=https://sp/slo?a=1&#38;b=&#34;&#62;&#60;x\">"
            ),
            "{p}"
        );
        assert!(p.contains("<a href=\"https://sp/slo?a=1&#38;b=&#34;&#62;&#60;x\">Continue</a>"));
        assert!(!p.contains("\"><x"));
    }
}
