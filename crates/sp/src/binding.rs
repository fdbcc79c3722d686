//! An SP-initiated login bound to the browser that started it (no login CSRF).
//!
//! Without a binding, a Response for a login the attacker started (in their own browser,
//! signed in at the IdP as themselves, never posted) could be posted from the victim's
//! browser by a form on the attacker's site: the RelayState finds the attacker's pending
//! request, every profile rule passes, and the victim is signed in to the application as the
//! attacker. So the login start gives the browser a random value in a cookie (or reuses the
//! one it has, so that logins started in two tabs both complete), the pending request keeps
//! only its SHA-256, and the ACS honours a solicited Response only from a browser presenting
//! that value ([`crate::error::Error::BrowserMismatch`], `BROWSER_MISMATCH`, otherwise). The
//! check runs when the pending request is taken, before any signature is verified: an
//! anonymous post with someone's RelayState costs no RSA, and uses the request up all the
//! same. A request stored before bindings existed (a row with none) is refused.
//!
//! An SP that accepts unsolicited Responses (`allow_idp_initiated = true`) cannot tell the
//! attacker's IdP-initiated Response from the victim's own: only refusing them makes the
//! binding complete.
//!
//! # The cookie
//! `HttpOnly`, `Max-Age` the request lifetime, `Path=/` (the login start must see it to reuse
//! it, and a cookie scoped to the ACS path is never sent to the login start). The ACS POST
//! comes from the IdP's site, usually another one, so a `SameSite=Lax` cookie would not be
//! sent with it:
//! - an `https` ACS sets `__Host-latchkey_login` with `Secure; SameSite=None`: the `__Host-`
//!   prefix stops a sibling subdomain from planting its own value (cookie tossing);
//! - an `http` ACS on a loopback host (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`:
//!   development, `latchkey demo`) sets `latchkey_login` with `Secure; SameSite=None`, which
//!   Chromium and Firefox accept from loopback over plain http;
//! - any other `http` ACS sets `latchkey_login` with `SameSite=Lax`: browsers refuse
//!   `SameSite=None` without `Secure`, so logins complete only when the IdP is on the same
//!   site as the SP. Serve the SP over https.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::BrowserMismatch;
use crate::login::PendingRequest;

/// The cookie's name on an `https` SP.
pub const HOST_COOKIE_NAME: &str = "__Host-latchkey_login";

/// The cookie's name on a plain-`http` SP (development).
pub const COOKIE_NAME: &str = "latchkey_login";

/// The length of a binding value: 64 hex digits (two version 4 UUIDs, 244 random bits).
const VALUE_LEN: usize = 64;

/// A browser's binding value: the secret its cookie carries. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BrowserKey(String);

impl std::fmt::Debug for BrowserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserKey(..)")
    }
}

impl BrowserKey {
    /// A fresh value from the OS generator.
    pub(crate) fn mint() -> Self {
        Self(format!(
            "{}{}",
            Uuid::new_v4().simple(),
            Uuid::new_v4().simple()
        ))
    }

    /// A cookie value, if it has the form of one we set (anything else is no value).
    fn parse(value: &str) -> Option<Self> {
        (value.len() == VALUE_LEN
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(value.to_owned()))
    }

    /// What a pending request keeps: the value's SHA-256, in hex.
    pub(crate) fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Whether this is the value whose [`Self::hash`] is `hash`, compared in constant time.
    pub(crate) fn matches(&self, hash: &str) -> bool {
        bool::from(self.hash().as_bytes().ct_eq(hash.as_bytes()))
    }
}

/// What a request's browser presented of its login binding: read from the request's `Cookie`
/// headers ([`Self::from_cookie_headers`], or `from_headers` with the `axum` feature). Pass
/// it to the login start, which reuses the value, and to the ACS, which checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserBinding {
    /// The value of [`COOKIE_NAME`], if well-formed.
    plain: Option<BrowserKey>,
    /// The value of [`HOST_COOKIE_NAME`], if well-formed.
    host: Option<BrowserKey>,
}

impl BrowserBinding {
    /// A browser that presented no binding (a login start then mints one).
    pub fn none() -> Self {
        Self::default()
    }

    /// The binding found in a request's `Cookie` header values (HTTP/2 may split them over
    /// several). Of several cookies of one name the first well-formed one counts; a
    /// malformed value is no value.
    pub fn from_cookie_headers<'a>(headers: impl IntoIterator<Item = &'a str>) -> Self {
        let mut found = Self::default();
        for pair in headers.into_iter().flat_map(|h| h.split(';')) {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let slot = match name.trim() {
                COOKIE_NAME => &mut found.plain,
                HOST_COOKIE_NAME => &mut found.host,
                _ => continue,
            };
            if slot.is_none() {
                *slot = BrowserKey::parse(value.trim());
            }
        }
        found
    }

    /// The binding in a request's `Cookie` headers.
    #[cfg(feature = "axum")]
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Self {
        Self::from_cookie_headers(
            headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    /// The binding as the browser will present it once it holds `cookie` (for tests, and
    /// for callers that are not a browser).
    fn holding(cookie: &BindingCookie, key: BrowserKey) -> Self {
        match cookie.security {
            Security::Host => Self {
                plain: None,
                host: Some(key),
            },
            Security::Loopback | Security::Lax => Self {
                plain: Some(key),
                host: None,
            },
        }
    }
}

/// How an SP's cookie is set, from its ACS URL's scheme and host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// `https`: `__Host-` prefix, `Secure; SameSite=None`.
    Host,
    /// `http` on a loopback host: `Secure; SameSite=None`.
    Loopback,
    /// Other `http`: `SameSite=Lax` (same-site IdPs only).
    Lax,
}

/// One SP's binding cookie: its name and attributes.
#[derive(Debug, Clone)]
pub(crate) struct BindingCookie {
    security: Security,
    max_age_seconds: i64,
}

impl BindingCookie {
    /// The cookie of the SP whose ACS is `acs_url`, kept `max_age_seconds` (the request
    /// lifetime).
    pub(crate) fn for_acs(acs_url: &str, max_age_seconds: i64) -> Self {
        let security = if scheme_is(acs_url, "https://") {
            Security::Host
        } else if is_loopback(host_of(acs_url)) {
            Security::Loopback
        } else {
            Security::Lax
        };
        Self {
            security,
            max_age_seconds,
        }
    }

    /// The cookie's name.
    pub(crate) fn name(&self) -> &'static str {
        match self.security {
            Security::Host => HOST_COOKIE_NAME,
            Security::Loopback | Security::Lax => COOKIE_NAME,
        }
    }

    /// The value `browser` presented under this SP's cookie name.
    pub(crate) fn presented<'a>(&self, browser: &'a BrowserBinding) -> Option<&'a BrowserKey> {
        match self.security {
            Security::Host => browser.host.as_ref(),
            Security::Loopback | Security::Lax => browser.plain.as_ref(),
        }
    }

    /// The `Set-Cookie` header value that gives the browser `key`.
    pub(crate) fn set_cookie(&self, key: &BrowserKey) -> String {
        let same_site = match self.security {
            Security::Host | Security::Loopback => "Secure; SameSite=None",
            Security::Lax => "SameSite=Lax",
        };
        format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; {same_site}",
            self.name(),
            key.0,
            self.max_age_seconds
        )
    }

    /// Whether `browser` is the one that started `request`: it presents, under this SP's
    /// cookie name, the value whose hash the request keeps.
    pub(crate) fn check(
        &self,
        browser: &BrowserBinding,
        request: &PendingRequest,
    ) -> Result<(), BrowserMismatch> {
        let Some(hash) = request.browser.as_deref() else {
            return Err(BrowserMismatch::Unbound);
        };
        match self.presented(browser) {
            None => Err(BrowserMismatch::NoCookie),
            Some(key) if key.matches(hash) => Ok(()),
            Some(_) => Err(BrowserMismatch::OtherBrowser),
        }
    }

    /// What the browser presents once it holds `key`.
    pub(crate) fn binding(&self, key: BrowserKey) -> BrowserBinding {
        BrowserBinding::holding(self, key)
    }
}

fn scheme_is(url: &str, scheme: &str) -> bool {
    url.get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
}

/// The host of an `http(s)` URL, without port or brackets, lower-cased.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.to_ascii_lowercase()
}

/// Whether browsers treat `host` as loopback (potentially trustworthy over plain http).
fn is_loopback(host: String) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_follows_the_acs_url() {
        let https = BindingCookie::for_acs("HTTPS://wiki.example.com/saml/acs", 600);
        let key = BrowserKey::mint();
        let set = https.set_cookie(&key);
        assert!(set.starts_with("__Host-latchkey_login="), "{set}");
        assert!(
            set.ends_with("; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=None"),
            "{set}"
        );
        for loopback in [
            "http://localhost:8081/saml/acs",
            "http://127.0.0.1:8081/saml/acs",
            "http://[::1]:8081/saml/acs",
            "http://wiki.localhost/saml/acs",
        ] {
            let cookie = BindingCookie::for_acs(loopback, 60);
            assert_eq!(cookie.security, Security::Loopback, "{loopback}");
            assert!(cookie.set_cookie(&key).starts_with("latchkey_login="));
        }
        let lax = BindingCookie::for_acs("http://user@wiki.test:80/saml/acs", 60);
        assert_eq!(lax.security, Security::Lax);
        assert!(lax.set_cookie(&key).ends_with("HttpOnly; SameSite=Lax"));
    }

    #[test]
    fn a_browser_presents_only_well_formed_values_under_our_names() {
        let key = BrowserKey::mint();
        let v = &key.0;
        let browser = BrowserBinding::from_cookie_headers([
            "session=abc; latchkey_login=short",
            &format!(
                "latchkey_login={v}; __Host-latchkey_login={}",
                "A".repeat(64)
            ),
        ]);
        assert_eq!(browser.plain.as_ref(), Some(&key));
        assert_eq!(browser.host, None);
        assert!(key.matches(&key.hash()));
        assert!(!BrowserKey::mint().matches(&key.hash()));
        assert!(!key.matches(""));
    }
}
