//! The `[server]` section of `latchkey.toml`, and the checked settings the server runs with.
//! The operator's reference is `docs/configuration.md`.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8080"            # socket address to bind
//! base_url = "http://127.0.0.1:8080"   # how browsers and SPs reach us (no path)
//! # entity_id = "https://idp.example.org/saml/metadata"   # default: <base_url>/saml/metadata
//! cookie_secure = true                 # false only for plain-HTTP loopback development
//! session_idle_minutes = 30
//! session_absolute_minutes = 480
//! assertion_validity_seconds = 300
//! require_signed_requests = false      # apps with a signing certificate always must sign
//! trust_forwarded_for = false          # take the client address from X-Forwarded-For
//! key_algorithm = "rsa2048"            # for the first signing key: rsa2048 | ecdsa_p256
//! metrics_allow = ["127.0.0.0/8", "::1"]   # who may read /metrics without the token
//! # metrics_token = "..."              # or with `Authorization: Bearer <token>`
//! parked_per_network = 1000            # sign-ins waiting for the user, per client network
//! parked_max = 50000                   # ... and all networks' together
//! bad_tokens_per_network = 10          # wrong API/SCIM bearer tokens before 429 ...
//! bad_tokens_window_seconds = 300      # ... for this long
//! ```
//!
//! Environment overrides: `LATCHKEY_LISTEN`, `LATCHKEY_BASE_URL`, `LATCHKEY_COOKIE_SECURE`,
//! `LATCHKEY_METRICS_TOKEN`.
//!
//! The checks live here rather than at first use so a bad setting stops the server at start
//! with one clear line, instead of surfacing as a confusing browser error later.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use time::Duration;

use super::metrics_access::{MetricsAccess, Network};
use crate::config::{Config, Environment};
use crate::error::{Error, Result};
use crate::keys::KeyAlgorithm;
use crate::session::{MAX_BEARER_WINDOW, ParkCaps, ThrottlePolicy};

/// The `[server]` section as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Socket address to listen on.
    pub listen: String,
    /// The externally visible origin (`scheme://host[:port]`), used in metadata and links.
    pub base_url: String,
    /// The IdP's SAML entity ID; default `<base_url>/saml/metadata`.
    pub entity_id: Option<String>,
    /// Whether cookies carry `Secure`.
    pub cookie_secure: bool,
    /// A session unused for this long ends.
    pub session_idle_minutes: u32,
    /// A session ends this long after sign-in, however busy.
    pub session_absolute_minutes: u32,
    /// How long an assertion may be delivered and accepted.
    pub assertion_validity_seconds: u32,
    /// Refuse unsigned AuthnRequests from every application.
    pub require_signed_requests: bool,
    /// Believe the last address in `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Algorithm of the signing key generated at first start.
    pub key_algorithm: KeyAlgorithm,
    /// Networks that may read `/metrics` without a token (addresses or CIDR).
    pub metrics_allow: Vec<String>,
    /// A bearer token that opens `/metrics` from anywhere.
    pub metrics_token: Option<String>,
    /// Requests parked while their user signs in, per client network (or signed-in user).
    pub parked_per_network: u32,
    /// Requests parked for browsers nobody is signed in at (by client network) while their
    /// user signs in, in all; a signed-in user's own count only towards
    /// `parked_per_network`.
    pub parked_max: u32,
    /// Wrong bearer tokens (admin API, SCIM) one client network may present within
    /// `bad_tokens_window_seconds` before its bearer-token requests are refused (429).
    pub bad_tokens_per_network: u32,
    /// How long that window is, and how long the refusal lasts.
    pub bad_tokens_window_seconds: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            base_url: "http://127.0.0.1:8080".into(),
            entity_id: None,
            cookie_secure: true,
            session_idle_minutes: 30,
            session_absolute_minutes: 8 * 60,
            assertion_validity_seconds: 300,
            require_signed_requests: false,
            trust_forwarded_for: false,
            key_algorithm: KeyAlgorithm::Rsa2048,
            metrics_allow: vec!["127.0.0.0/8".into(), "::1".into()],
            metrics_token: None,
            parked_per_network: ParkCaps::DEFAULT.per_owner,
            parked_max: ParkCaps::DEFAULT.total,
            // ThrottlePolicy::BEARER_TOKEN's (a test holds them to it).
            bad_tokens_per_network: 10,
            bad_tokens_window_seconds: 300,
        }
    }
}

/// Checked settings: what the running server reads.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Origin without a trailing slash, e.g. `https://idp.example.org`.
    pub base_url: String,
    /// The IdP's entity ID.
    pub entity_id: String,
    /// Whether the base URL is https (HSTS, `__Host-` cookies, authn context class).
    pub https: bool,
    /// Whether cookies carry `Secure`.
    pub cookie_secure: bool,
    /// Idle session timeout.
    pub session_idle: Duration,
    /// Absolute session lifetime.
    pub session_absolute: Duration,
    /// Assertion validity window.
    pub assertion_validity: Duration,
    /// Refuse unsigned AuthnRequests from every application.
    pub require_signed_requests: bool,
    /// Believe `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// Algorithm for a first signing key.
    pub key_algorithm: KeyAlgorithm,
    /// Who may read `/metrics`.
    pub metrics_access: MetricsAccess,
    /// The `cacheDuration` published in the IdP metadata (`[keys] metadata_cache_seconds`):
    /// it lives in `[keys]` because `key activate` waits on it too.
    pub metadata_cache: Duration,
    /// `[mfa] required`: every sign-in needs a second factor.
    pub mfa_required: bool,
    /// `[console] require_mfa`: the console needs a second factor in the session.
    pub console_require_mfa: bool,
    /// How many requests may be parked while their users sign in.
    pub park_caps: ParkCaps,
    /// Wrong bearer tokens per client network (`bad_tokens_per_network`, `_window_seconds`).
    pub bad_tokens: ThrottlePolicy,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Config {
        path: "[server]".into(),
        reason: reason.into(),
    }
}

impl ServerSettings {
    /// Applies environment overrides to the config's `[server]` section and checks it.
    pub fn resolve(config: &Config, env: &dyn Environment) -> Result<ServerSettings> {
        let mut settings = Self::check(config.server.clone().with_env(env)?)?;
        settings.metadata_cache = config.keys.metadata_cache();
        settings.mfa_required = config.mfa.required;
        settings.console_require_mfa = config.console.require_mfa;
        Ok(settings)
    }
}

impl ServerConfig {
    /// The section with its environment overrides applied, unchecked: what `latchkey config
    /// check` shows as effective, and what [`ServerSettings::resolve`] then checks.
    pub fn with_env(mut self, env: &dyn Environment) -> Result<ServerConfig> {
        let raw = &mut self;
        if let Some(v) = env.var("LATCHKEY_LISTEN") {
            raw.listen = v;
        }
        if let Some(v) = env.var("LATCHKEY_BASE_URL") {
            raw.base_url = v;
        }
        if let Some(v) = env.var("LATCHKEY_METRICS_TOKEN") {
            raw.metrics_token = Some(v);
        }
        if let Some(v) = env.var("LATCHKEY_COOKIE_SECURE") {
            raw.cookie_secure = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(bad(format!(
                        "LATCHKEY_COOKIE_SECURE={v:?} is not a boolean"
                    )));
                }
            };
        }
        Ok(self)
    }
}

impl ServerSettings {
    /// Checks a raw section; the metadata's cacheDuration is `[keys]`'s default.
    pub fn check(raw: ServerConfig) -> Result<ServerSettings> {
        let listen: SocketAddr = raw
            .listen
            .trim()
            .parse()
            .map_err(|e| bad(format!("listen {:?}: {e}", raw.listen)))?;
        let url = url::Url::parse(raw.base_url.trim())
            .map_err(|e| bad(format!("base_url {:?}: {e}", raw.base_url)))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(bad(format!("base_url must be http(s), not {other}"))),
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "base_url must be an origin only (scheme://host[:port]), without a path",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("base_url has no host"))?
            .to_string();
        let base_url = url.as_str().trim_end_matches('/').to_string();
        if !raw.cookie_secure {
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if https || !loopback {
                return Err(bad(
                    "cookie_secure = false is allowed only for a plain-http loopback base_url \
                     (local development)",
                ));
            }
        }
        if raw.session_idle_minutes == 0 || raw.session_absolute_minutes == 0 {
            return Err(bad("session timeouts must be at least one minute"));
        }
        if raw.session_idle_minutes > raw.session_absolute_minutes {
            return Err(bad(
                "session_idle_minutes cannot exceed session_absolute_minutes",
            ));
        }
        if !(30..=3600).contains(&raw.assertion_validity_seconds) {
            return Err(bad("assertion_validity_seconds must be 30-3600"));
        }
        let entity_id = match raw.entity_id {
            Some(e) if !e.trim().is_empty() => e.trim().to_string(),
            _ => format!("{base_url}/saml/metadata"),
        };
        let allow = raw
            .metrics_allow
            .iter()
            .map(|n| Network::parse(n).map_err(|e| bad(format!("metrics_allow: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        let metrics_access = MetricsAccess::new(allow, raw.metrics_token);
        if raw.parked_per_network == 0 || raw.parked_per_network > raw.parked_max {
            return Err(bad(
                "parked_per_network must be at least 1 and at most parked_max",
            ));
        }
        let window = Duration::seconds(i64::from(raw.bad_tokens_window_seconds));
        if raw.bad_tokens_per_network == 0
            || raw.bad_tokens_window_seconds == 0
            || window > MAX_BEARER_WINDOW
        {
            return Err(bad(
                "bad_tokens_per_network must be at least 1, and bad_tokens_window_seconds 1-3600",
            ));
        }
        Ok(ServerSettings {
            listen,
            base_url,
            entity_id,
            https,
            cookie_secure: raw.cookie_secure,
            session_idle: Duration::minutes(i64::from(raw.session_idle_minutes)),
            session_absolute: Duration::minutes(i64::from(raw.session_absolute_minutes)),
            assertion_validity: Duration::seconds(i64::from(raw.assertion_validity_seconds)),
            require_signed_requests: raw.require_signed_requests,
            trust_forwarded_for: raw.trust_forwarded_for,
            key_algorithm: raw.key_algorithm,
            metrics_access,
            metadata_cache: crate::config::KeysConfig::default().metadata_cache(),
            mfa_required: false,
            console_require_mfa: crate::config::ConsoleConfig::default().require_mfa,
            park_caps: ParkCaps {
                per_owner: raw.parked_per_network,
                total: raw.parked_max,
            },
            bad_tokens: ThrottlePolicy::bearer_tokens(
                i64::from(raw.bad_tokens_per_network),
                window,
            ),
        })
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(edit: impl FnOnce(&mut ServerConfig)) -> Result<ServerSettings> {
        let mut raw = ServerConfig::default();
        edit(&mut raw);
        ServerSettings::check(raw)
    }

    #[test]
    fn defaults_are_valid_and_derive_the_entity_id() {
        let s = with(|_| {}).unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert_eq!(s.entity_id, "http://127.0.0.1:8080/saml/metadata");
        assert!(s.cookie_secure && !s.https);
        assert_eq!(s.assertion_validity, Duration::minutes(5));
    }

    #[test]
    fn insecure_cookies_only_on_loopback_http() {
        assert!(with(|r| r.cookie_secure = false).is_ok());
        assert!(
            with(|r| {
                r.cookie_secure = false;
                r.base_url = "http://localhost:9000".into();
            })
            .is_ok()
        );
        for url in ["https://127.0.0.1:8443", "http://idp.example.org"] {
            let err = with(|r| {
                r.cookie_secure = false;
                r.base_url = url.into();
            })
            .unwrap_err();
            assert!(err.to_string().contains("cookie_secure"), "{err}");
        }
    }

    #[test]
    fn refuses_paths_bad_timeouts_and_validity() {
        assert!(with(|r| r.base_url = "https://idp.example.org/sso".into()).is_err());
        assert!(with(|r| r.base_url = "ftp://idp".into()).is_err());
        assert!(with(|r| r.listen = "nonsense".into()).is_err());
        assert!(with(|r| r.session_idle_minutes = 0).is_err());
        assert!(with(|r| r.session_idle_minutes = 600).is_err());
        assert!(with(|r| r.assertion_validity_seconds = 86_400).is_err());
        assert!(with(|r| r.bad_tokens_per_network = 0).is_err());
        assert!(with(|r| r.bad_tokens_window_seconds = 0).is_err());
        assert!(with(|r| r.bad_tokens_window_seconds = 3_601).is_err());
        assert_eq!(
            with(|_| {}).unwrap().bad_tokens,
            ThrottlePolicy::BEARER_TOKEN
        );
        let err = with(|r| r.metrics_allow = vec!["10.0.0.0/40".into()]).unwrap_err();
        assert!(err.to_string().contains("metrics_allow"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        struct Env;
        impl Environment for Env {
            fn var(&self, name: &str) -> Option<String> {
                match name {
                    "LATCHKEY_BASE_URL" => Some("https://idp.example.org/".into()),
                    "LATCHKEY_LISTEN" => Some("0.0.0.0:9443".into()),
                    _ => None,
                }
            }
        }
        let s = ServerSettings::resolve(&Config::default(), &Env).unwrap();
        assert_eq!(s.base_url, "https://idp.example.org");
        assert!(s.https);
        assert_eq!(s.listen.port(), 9443);
    }
}
