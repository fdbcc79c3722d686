//! The cookies the IdP sets (session, anti-forgery, trusted browser) and the CSRF check.
//!
//! Both are `HttpOnly`, `Path=/`, `SameSite=Lax`, and `Secure` unless the configuration
//! relaxed it for plain-HTTP loopback development; when secure they use the `__Host-` prefix,
//! which browsers only accept from a secure origin, without `Domain`, at `Path=/`, so a
//! sibling subdomain cannot plant or overwrite them.
//!
//! CSRF is a double-submit token: a random value in a cookie, repeated in each form, compared
//! in constant time. Another site can neither read the cookie nor set a `__Host-` one.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use subtle::ConstantTimeEq;
use time::Duration;

use latchkey_idp::config::ServerSettings;

/// The session cookie's base name.
const SESSION: &str = "latchkey_session";
/// The anti-forgery cookie's base name.
const CSRF: &str = "latchkey_csrf";
/// The trusted-browser cookie's base name (see [`latchkey_idp::session::DeviceKeys`]).
const DEVICE: &str = "latchkey_device";
/// How long a browser stays trusted after its last sign-in.
const DEVICE_LIFETIME: Duration = Duration::days(180);

/// The cookie names for these settings.
pub fn session_name(settings: &ServerSettings) -> String {
    name(settings, SESSION)
}

fn name(settings: &ServerSettings, base: &str) -> String {
    if settings.cookie_secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// The value of the cookie `name`, if the request carries exactly one.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    // Two cookies of one name: one may have been planted; trust neither.
                    return None;
                }
                found = Some(v.trim_matches('"').to_string());
            }
        }
    }
    found
}

/// A `Set-Cookie` value.
pub fn set(
    settings: &ServerSettings,
    base_name: &str,
    value: &str,
    max_age: Option<Duration>,
) -> String {
    let mut out = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax",
        name(settings, base_name)
    );
    if settings.cookie_secure {
        out.push_str("; Secure");
    }
    if let Some(age) = max_age {
        out.push_str(&format!("; Max-Age={}", age.whole_seconds().max(0)));
    }
    out
}

/// The `Set-Cookie` value for a new session.
pub fn set_session(settings: &ServerSettings, token: &str) -> String {
    // No Max-Age: the cookie lives as long as the browser session, the server enforces
    // the idle and absolute limits.
    set(settings, SESSION, token, None)
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session(settings: &ServerSettings) -> String {
    set(settings, SESSION, "", Some(Duration::ZERO))
}

/// The request's session token, if any.
pub fn session_token(settings: &ServerSettings, headers: &HeaderMap) -> Option<String> {
    get(headers, &session_name(settings)).filter(|v| !v.is_empty())
}

/// The request's trusted-browser cookie, if any (verified by the caller).
pub fn device_token(settings: &ServerSettings, headers: &HeaderMap) -> Option<String> {
    get(headers, &name(settings, DEVICE)).filter(|v| !v.is_empty() && v.len() <= 256)
}

/// The `Set-Cookie` value that marks this browser as trusted for one account.
pub fn set_device(settings: &ServerSettings, value: &str) -> String {
    set(settings, DEVICE, value, Some(DEVICE_LIFETIME))
}

/// The CSRF token to put in forms: the request's cookie if it has a sane one, else a new one
/// (returned with the `Set-Cookie` that installs it).
pub fn csrf_token(settings: &ServerSettings, headers: &HeaderMap) -> (String, Option<String>) {
    match get(headers, &name(settings, CSRF)) {
        Some(v)
            if v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            (v, None)
        }
        _ => {
            let fresh = latchkey_idp::session::fresh_token().to_string();
            let cookie = set(settings, CSRF, &fresh, None);
            (fresh, Some(cookie))
        }
    }
}

/// The request's anti-forgery cookie, if it carries exactly one.
pub fn csrf_cookie(settings: &ServerSettings, headers: &HeaderMap) -> Option<String> {
    get(headers, &name(settings, CSRF))
}

/// Whether a submitted form token matches the anti-forgery cookie (constant time).
pub fn csrf_matches(cookie: Option<&str>, submitted: Option<&str>) -> bool {
    match (cookie, submitted) {
        (Some(cookie), Some(form)) if !cookie.is_empty() => {
            bool::from(cookie.as_bytes().ct_eq(form.as_bytes()))
        }
        _ => false,
    }
}

/// Whether a submitted form token matches the request's CSRF cookie.
pub fn csrf_ok(settings: &ServerSettings, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    csrf_matches(csrf_cookie(settings, headers).as_deref(), submitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use latchkey_idp::config::{ServerConfig, ServerSettings};

    fn settings(secure: bool) -> ServerSettings {
        ServerSettings::check(ServerConfig {
            cookie_secure: secure,
            ..ServerConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let s = settings(true);
        let c = set_session(&s, "tok");
        assert_eq!(
            c,
            "__Host-latchkey_session=tok; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        let c = set_session(&settings(false), "tok");
        assert_eq!(c, "latchkey_session=tok; Path=/; HttpOnly; SameSite=Lax");
    }

    #[test]
    fn duplicate_cookies_are_ignored_and_csrf_compares() {
        let s = settings(false);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; latchkey_csrf=abc"));
        assert_eq!(get(&h, "latchkey_csrf").as_deref(), Some("abc"));
        assert!(csrf_ok(&s, &h, Some("abc")));
        assert!(!csrf_ok(&s, &h, Some("abd")));
        assert!(!csrf_ok(&s, &h, None));
        h.append(COOKIE, HeaderValue::from_static("latchkey_csrf=xyz"));
        assert_eq!(get(&h, "latchkey_csrf"), None);
        assert!(!csrf_ok(&s, &h, Some("xyz")));
    }
}
