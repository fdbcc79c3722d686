//! A scripted browser just big enough for SAML front-channel flows: a cookie jar per host,
//! redirects followed by hand, and the two ways a SAML hop continues without a person
//! (an auto-submitting form carrying `SAMLRequest`/`SAMLResponse`, and a meta refresh).
//! Every URL it requests is kept in `trail`, so a test can check which hops happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};

/// One answer, after every redirect was followed.
pub struct Page {
    pub url: Url,
    pub status: StatusCode,
    pub body: String,
}

/// One `<form>`: where it goes, how, and its named inputs in document order.
pub struct Form {
    pub action: Url,
    pub method: Method,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Client {
    http: reqwest::Client,
    /// host -> cookie name -> value (ports and paths are not told apart: every server here
    /// sets its cookies for `/`).
    jar: BTreeMap<String, BTreeMap<String, String>>,
    /// Every request made, in order, as "METHOD URL".
    pub trail: Vec<String>,
    /// Every form posted, in order: where to, and its fields.
    pub posts: Vec<(Url, Vec<(String, String)>)>,
    /// The page the next request starts from (its origin), for `Sec-Fetch-Site` (which
    /// the IdP reads to tell a click on its own portal from another site's link).
    page_origin: Option<reqwest::Url>,
}

impl Client {
    pub fn new() -> Client {
        Client {
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
            trail: Vec::new(),
            posts: Vec::new(),
            page_origin: None,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let url = Url::parse(url).unwrap();
        self.request(Method::GET, url, None).await
    }

    /// Submits a form, then follows redirects.
    pub async fn submit(&mut self, form: &Form) -> Page {
        if form.method == Method::GET {
            let mut url = form.action.clone();
            url.query_pairs_mut().extend_pairs(&form.fields);
            self.request(Method::GET, url, None).await
        } else {
            self.posts.push((form.action.clone(), form.fields.clone()));
            let body = serde_urlencoded(&form.fields);
            self.request(Method::POST, form.action.clone(), Some(body))
                .await
        }
    }

    /// Follows the hops a browser takes by itself (auto-posted SAML forms, meta refreshes)
    /// until a page asks for something else.
    pub async fn settle(&mut self, mut page: Page) -> Page {
        for _ in 0..20 {
            if let Some(form) = forms(&page)
                .into_iter()
                .find(|f| f.get("SAMLRequest").is_some() || f.get("SAMLResponse").is_some())
            {
                page = self.submit(&form).await;
            } else if let Some(url) = meta_refresh(&page) {
                page = self.request(Method::GET, url, None).await;
            } else {
                return page;
            }
        }
        panic!("more than 20 automatic hops; last at {}", page.url);
    }

    async fn request(
        &mut self,
        mut method: Method,
        mut url: Url,
        mut body: Option<String>,
    ) -> Page {
        for _ in 0..20 {
            self.trail.push(format!("{method} {url}"));
            let host = url.host_str().unwrap().to_owned();
            let mut req = self.http.request(method.clone(), url.clone());
            // As a browser says it: the origins of this site are all ports of one host
            // here, so "same-origin" is exact and anything else is another site.
            let fetch_site = match &self.page_origin {
                None => "none",
                Some(o) if o.origin() == url.origin() => "same-origin",
                Some(_) => "cross-site",
            };
            req = req.header("sec-fetch-site", fetch_site);
            if let Some(cookies) = self.jar.get(&host).filter(|c| !c.is_empty()) {
                let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
                req = req.header("cookie", header.join("; "));
            }
            if let Some(body) = &body {
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            for value in resp.headers().get_all("set-cookie") {
                self.store_cookie(&host, value.to_str().unwrap());
            }
            let status = resp.status();
            if status.is_redirection() {
                let location = resp.headers()["location"].to_str().unwrap();
                url = url.join(location).unwrap();
                if status != StatusCode::TEMPORARY_REDIRECT
                    && status != StatusCode::PERMANENT_REDIRECT
                {
                    method = Method::GET;
                    body = None;
                }
                continue;
            }
            let body = resp.text().await.unwrap();
            self.page_origin = Some(url.clone());
            return Page { url, status, body };
        }
        panic!("more than 20 redirects; last at {url}");
    }

    fn store_cookie(&mut self, host: &str, header: &str) {
        let mut parts = header.split(';');
        let (name, value) = parts.next().unwrap().trim().split_once('=').unwrap();
        let expired = value.is_empty()
            || parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0"
                    || attr
                        .strip_prefix("expires=")
                        .is_some_and(|date| year_of(date) < this_year())
            });
        let cookies = self.jar.entry(host.to_owned()).or_default();
        if expired {
            cookies.remove(name);
        } else {
            cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The names of the cookies held for `host`.
    pub fn cookie_names(&self, host: &str) -> Vec<String> {
        self.jar
            .get(host)
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The four-digit year in an HTTP date ("Mon, 01 Jan 2001 00:00:00 GMT").
fn year_of(date: &str) -> u64 {
    date.split([' ', '-'])
        .find(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|y| y.parse().ok())
        .unwrap_or(0)
}

fn this_year() -> u64 {
    use latchkey_idp::Clock as _;
    u64::try_from(latchkey_idp::SystemClock.now().year()).unwrap()
}

fn serde_urlencoded(fields: &[(String, String)]) -> String {
    let mut url = Url::parse("http://x/").unwrap();
    url.query_pairs_mut().extend_pairs(fields);
    url.query().unwrap_or_default().to_owned()
}

/// The forms on a page (no nesting, as HTML has none).
pub fn forms(page: &Page) -> Vec<Form> {
    let mut out = Vec::new();
    let mut rest = page.body.as_str();
    while let Some(start) = find_tag(rest, "form") {
        let tail = &rest[start..];
        let end = tail
            .to_ascii_lowercase()
            .find("</form")
            .unwrap_or(tail.len());
        let inner = &tail[..end];
        let open = &inner[..inner.find('>').unwrap_or(inner.len())];
        let action = attr(open, "action").unwrap_or_default();
        let method = match attr(open, "method").map(|m| m.to_ascii_uppercase()) {
            Some(m) if m == "POST" => Method::POST,
            _ => Method::GET,
        };
        let mut fields = Vec::new();
        let mut inputs = inner;
        while let Some(i) = find_tag(inputs, "input") {
            let tag = &inputs[i..];
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            if let Some(name) = attr(tag, "name") {
                fields.push((name, attr(tag, "value").unwrap_or_default()));
            }
            inputs = &inputs[i + tag.len()..];
        }
        out.push(Form {
            action: page.url.join(&action).unwrap(),
            method,
            fields,
        });
        rest = &tail[end..];
    }
    out
}

/// The target of `<meta http-equiv="refresh" content="0;url=...">`, if the page has one.
pub fn meta_refresh(page: &Page) -> Option<Url> {
    let mut rest = page.body.as_str();
    while let Some(i) = find_tag(rest, "meta") {
        let tag = &rest[i..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        if attr(tag, "http-equiv").is_some_and(|v| v.eq_ignore_ascii_case("refresh")) {
            let content = attr(tag, "content")?;
            let lower = content.to_ascii_lowercase();
            let at = lower.find("url=")? + 4;
            return page.url.join(content[at..].trim()).ok();
        }
        rest = &rest[i + tag.len()..];
    }
    None
}

/// Where the next `<name ` (any case) starts.
fn find_tag(text: &str, name: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let needle = format!("<{name}");
    let mut from = 0;
    while let Some(i) = lower[from..].find(&needle) {
        let at = from + i;
        let next = lower.as_bytes().get(at + needle.len()).copied();
        if next.is_some_and(|b| b.is_ascii_whitespace() || b == b'>' || b == b'/') {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

/// A quoted attribute's value in one start tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&format!("{name}=")) {
        let at = from + i;
        let before = lower.as_bytes()[at - 1];
        from = at + name.len() + 1;
        if !before.is_ascii_whitespace() {
            continue;
        }
        let quote = tag[from..].chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let value = &tag[from + 1..];
        return Some(unescape(&value[..value.find(quote)?]));
    }
    None
}

/// HTML character references: the five named ones and numeric ones.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e < 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity.strip_prefix('#').and_then(|n| {
                match n.strip_prefix('x').or_else(|| n.strip_prefix('X')) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => n.parse().ok(),
                }
                .and_then(char::from_u32)
            }),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
