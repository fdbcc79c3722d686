//! Escaping and the page frame. Every value that reaches HTML goes through [`esc`]; the pages
//! carry no script and no inline style, so a strict Content-Security-Policy holds.

use std::fmt::Write;

/// Escapes text for an HTML element body or a double-quoted attribute.
pub(crate) fn esc(text: &str) -> String {
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

/// A complete page: `body` must already be escaped HTML.
pub(crate) fn page(title: &str, app_title: &str, body: &str) -> String {
    page_with_head(title, app_title, "", body)
}

/// A page that sends the browser on to `url` at once (meta refresh), with a link for
/// browsers that do not follow it.
///
/// Answers a form POST whose next hop is another site: browsers apply the posting page's
/// CSP `form-action 'self'` to redirects after the POST, so a 303 to the IdP could be
/// blocked, while a refresh is a new navigation.
pub(crate) fn refresh_page(title: &str, app_title: &str, url: &str, body: &str) -> String {
    let head = format!(
        "<meta http-equiv=\"refresh\" content=\"0;url={}\">",
        esc(url)
    );
    let body = format!(
        "{body}<p><a class=\"button\" href=\"{}\">Continue</a></p>",
        esc(url)
    );
    page_with_head(title, app_title, &head, &body)
}

fn page_with_head(title: &str, app_title: &str, head: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         {head}\
         <title>{} · {}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\n\
         <body><header><a class=\"brand\" href=\"/\">{}</a>\
         <nav><a href=\"/whoami\">whoami</a> <a href=\"/admin\">admin</a></nav></header>\n\
         <main>{}</main></body></html>\n",
        esc(title),
        esc(app_title),
        esc(app_title),
        body
    );
    out
}

/// The stylesheet, served from `/style.css`.
pub(crate) const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}\
header{display:flex;justify-content:space-between;align-items:center;padding:.8rem 1.5rem;background:#1d2330}\
header a{color:#fff;text-decoration:none;margin-left:1rem}.brand{font-weight:700;margin-left:0}\
main{max-width:56rem;margin:2rem auto;padding:0 1.5rem}\
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:1.2rem 1.5rem;margin-bottom:1.2rem}\
.error{border-left:6px solid #c0392b}.ok{border-left:6px solid #27ae60}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #eceff3;vertical-align:top}\
code{background:#eef1f5;padding:.1rem .3rem;border-radius:4px}\
.role{display:inline-block;background:#2d6cdf;color:#fff;border-radius:4px;padding:.1rem .5rem}\
.button,button{display:inline-block;background:#2d6cdf;color:#fff;border:0;border-radius:6px;padding:.5rem 1rem;text-decoration:none;font-size:1rem;cursor:pointer}\
.muted{color:#667085}.wrap{overflow-wrap:anywhere}\n";
