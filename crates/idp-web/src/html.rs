//! Server-rendered pages: one layout, escaping in one place.
//!
//! Pages carry no inline script or style (the CSP forbids both); the only script the server
//! ever sends is the SAML auto-POST, allowed by its hash on that page alone.

use std::fmt::Write as _;

/// The stylesheet, served from `/static/latchkey.css`.
pub const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2430}\
main{max-width:44rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:8px;\
box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}\
input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.55rem 1.3rem;border:0;border-radius:6px;background:#2563eb;\
color:#fff;font-size:1rem;cursor:pointer}button:hover{background:#1d4ed8}\
.brand{max-width:44rem;margin:2rem auto -2rem;padding:0 2rem;font-weight:700;color:#374151;\
letter-spacing:.02em}\
.error{color:#a40e26;background:#fdecef;padding:.6rem;border-radius:4px}\
.meta{color:#6b7280;font-size:.85rem}\
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:1rem;\
padding:0;list-style:none}\
.tiles a{display:block;padding:1rem;border:1px solid #d0d5dd;border-radius:6px;\
text-decoration:none;color:inherit}\
.tiles img{width:32px;height:32px}\
";

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (which the caller has escaped).
pub fn page(title: &str, body: &str) -> String {
    page_with_head(title, "", body)
}

/// A page that sends the browser on to `url` at once (a meta refresh, which needs no
/// script), with a link in the body for browsers that do not follow it.
pub fn refresh_page(title: &str, url: &str, body: &str) -> String {
    let head = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={}\">",
        escape(url)
    );
    let body = format!("{body}\n<p><a href=\"{}\">Continue</a></p>", escape(url));
    page_with_head(title, &head, &body)
}

fn page_with_head(title: &str, head: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">{head}\
         <title>{} · Latchkey</title>\
         <link rel=\"stylesheet\" href=\"/static/latchkey.css\"></head>\n\
         <body><div class=\"brand\">Latchkey</div><main>\n<h1>{}</h1>\n{body}\n</main></body></html>\n",
        escape(title),
        escape(title),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        let p = page("<script>", "<p>ok</p>");
        assert!(p.contains("<h1>&lt;script&gt;</h1>"));
        assert!(!p.contains("<script>"));
    }

    #[test]
    fn refresh_page_escapes_its_target() {
        let p = refresh_page("Go", "https://sp/slo?a=1&b=\"><x", "<p>b</p>");
        assert!(p.contains(
            "<meta http-equiv=\"refresh\" content=\"0;url=https://sp/slo?a=1&amp;b=&quot;&gt;&lt;x\">"
        ));
        assert!(p.contains("<a href=\"https://sp/slo?a=1&amp;b=&quot;&gt;&lt;x\">Continue</a>"));
        assert!(!p.contains("\"><x"));
    }
}
