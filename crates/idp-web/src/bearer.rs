//! The throttle in front of every bearer-token surface (the admin API, `/scim/v2`): wrong
//! tokens are counted per client network, and past `[server] bad_tokens_per_network` within
//! `bad_tokens_window_seconds` the network's bearer-token requests are refused (429 with
//! `Retry-After`) before their token is looked up, until the window has passed.
//!
//! It is the sign-in throttle ([`latchkey_idp::session::Throttle`], key
//! [`Slot::bearer_token`], an IPv6 client's /48 beside its /64): a request presenting a token
//! takes its network's slot in one atomic statement first, so of a burst of wrong tokens
//! no more than the limit are ever looked up, on any node. A request its surface then
//! answers 401 (an unknown, revoked or wrong-scope token) leaves the slot counted; any other
//! answer gives it back. A request without an `Authorization` header costs no lookup and
//! takes no slot.
//!
//! A token this node answered with success in the last [`KNOWN_GOOD_FOR`] skips the slot
//! ([`KnownGood`]): the slot's statements (taken, then given back) would otherwise cost every
//! request of an HR feed or a provisioning script three writes, and a guesser on the same
//! network as an integration could shut the integration out. It is still looked up and
//! checked by its surface every time (a revoked token is refused at once, and forgotten
//! here); only a token that worked can skip, so no guess ever does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use latchkey_idp::Store;
use latchkey_idp::config::ServerSettings;
use latchkey_idp::session::{Admission, Slot, Throttle, ThrottlePolicy};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How long a token answered with success skips the throttle's slot on this node.
pub const KNOWN_GOOD_FOR: Duration = Duration::minutes(5);

/// How many known-good tokens a node remembers: integrations are few; past this, a new one
/// takes the slot as any token does until an old mark expires.
const KNOWN_GOOD_MAX: usize = 256;

/// The tokens (by surface and the SHA-256 of the `Authorization` value) this node answered
/// with success lately, each with when that was.
#[derive(Debug, Default)]
struct KnownGood {
    marks: Mutex<HashMap<(Surface, [u8; 32]), OffsetDateTime>>,
}

impl KnownGood {
    fn key(surface: Surface, authorization: &[u8]) -> (Surface, [u8; 32]) {
        (surface, Sha256::digest(authorization).into())
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, HashMap<(Surface, [u8; 32]), OffsetDateTime>> {
        // A map of timestamps is never left half-changed: a panic elsewhere cannot spoil it.
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn holds(&self, key: &(Surface, [u8; 32]), now: OffsetDateTime) -> bool {
        self.marks()
            .get(key)
            .is_some_and(|at| now - *at < KNOWN_GOOD_FOR && *at <= now)
    }

    fn remember(&self, key: (Surface, [u8; 32]), now: OffsetDateTime) {
        let mut marks = self.marks();
        if marks.len() >= KNOWN_GOOD_MAX && !marks.contains_key(&key) {
            marks.retain(|_, at| now - *at < KNOWN_GOOD_FOR);
            if marks.len() >= KNOWN_GOOD_MAX {
                return;
            }
        }
        marks.insert(key, now);
    }

    fn forget(&self, key: &(Surface, [u8; 32])) {
        self.marks().remove(key);
    }
}

/// The surfaces a bearer token opens, each answering in its own error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Surface {
    /// `/api/v1`.
    Api,
    /// `/scim/v2`.
    Scim,
}

impl Surface {
    fn as_str(self) -> &'static str {
        match self {
            Surface::Api => "api",
            Surface::Scim => "scim",
        }
    }

    /// The 429 in the surface's error shape.
    fn throttled(self, retry_after_seconds: u64) -> Response {
        let mut response = match self {
            Surface::Api => crate::api::ApiError::from(latchkey_idp::Error::Throttled {
                retry_after_seconds,
            })
            .into_response(),
            Surface::Scim => latchkey_scim::http::error(&latchkey_scim::ScimError::status(
                429,
                "too many wrong bearer tokens from this network; try again later",
            )),
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        response
    }

    /// The answer when the throttle itself could not be read (the database).
    fn failed(self, err: latchkey_idp::Error) -> Response {
        match self {
            Surface::Api => crate::api::ApiError::from(err).into_response(),
            Surface::Scim => {
                tracing::error!(error = %err, "bearer-token throttle failed");
                latchkey_scim::http::error(&latchkey_scim::ScimError::status(
                    503,
                    "the server is busy; try again",
                ))
            }
        }
    }
}

/// Bearer-token requests turned away, by surface and why: `wrong` (answered 401) and
/// `throttled` (429, never looked up). Exported as `latchkey_bearer_tokens_refused_total`.
#[derive(Debug, Default)]
pub struct BearerStats {
    api_wrong: AtomicU64,
    api_throttled: AtomicU64,
    scim_wrong: AtomicU64,
    scim_throttled: AtomicU64,
}

impl BearerStats {
    fn counter(&self, surface: Surface, throttled: bool) -> &AtomicU64 {
        match (surface, throttled) {
            (Surface::Api, false) => &self.api_wrong,
            (Surface::Api, true) => &self.api_throttled,
            (Surface::Scim, false) => &self.scim_wrong,
            (Surface::Scim, true) => &self.scim_throttled,
        }
    }

    /// `(surface, reason, count)` for each series.
    pub fn series(&self) -> [(&'static str, &'static str, u64); 4] {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("api", "wrong", read(&self.api_wrong)),
            ("api", "throttled", read(&self.api_throttled)),
            ("scim", "wrong", read(&self.scim_wrong)),
            ("scim", "throttled", read(&self.scim_throttled)),
        ]
    }
}

/// What the gate needs: the policy (`[server] bad_tokens_*`), how to tell the client's
/// address (`trust_forwarded_for`), and the counters the metrics export.
#[derive(Debug, Clone)]
pub struct BearerGuard {
    policy: ThrottlePolicy,
    trust_forwarded_for: bool,
    stats: Arc<BearerStats>,
    known: Arc<KnownGood>,
}

impl Default for BearerGuard {
    /// The default policy ([`ThrottlePolicy::BEARER_TOKEN`]), the socket peer as the client.
    fn default() -> Self {
        BearerGuard {
            policy: ThrottlePolicy::BEARER_TOKEN,
            trust_forwarded_for: false,
            stats: Arc::default(),
            known: Arc::default(),
        }
    }
}

impl BearerGuard {
    /// The guard the server's settings describe.
    pub fn new(settings: &ServerSettings) -> Self {
        BearerGuard {
            policy: settings.bad_tokens,
            trust_forwarded_for: settings.trust_forwarded_for,
            stats: Arc::default(),
            known: Arc::default(),
        }
    }

    /// Its counters, for [`crate::Metrics::count_bearer`] (shared by every surface given a
    /// clone of this guard).
    pub fn stats(&self) -> Arc<BearerStats> {
        Arc::clone(&self.stats)
    }
}

/// The middleware body: takes the client network's slot, refuses past the limit, and
/// settles the slot by the surface's answer.
pub(crate) async fn gate(
    store: &Store,
    guard: &BearerGuard,
    surface: Surface,
    req: Request,
    next: Next,
) -> Response {
    let Some(authorization) = req.headers().get(header::AUTHORIZATION) else {
        return next.run(req).await;
    };
    let known = KnownGood::key(surface, authorization.as_bytes());
    if guard.known.holds(&known, store.now()) {
        let response = next.run(req).await;
        if response.status() == StatusCode::UNAUTHORIZED {
            // Revoked (or expired) since it worked: it takes the slot from now on.
            guard.known.forget(&known);
            guard
                .stats
                .counter(surface, false)
                .fetch_add(1, Ordering::Relaxed);
        }
        return response;
    }
    let address = crate::client_address(
        guard.trust_forwarded_for,
        req.headers(),
        req.extensions().get::<ConnectInfo<SocketAddr>>(),
    );
    let throttle = Throttle::new(store);
    let slot = Slot::bearer_token(&address, guard.policy);
    let attempt = match throttle.admit(vec![slot], store.now()).await {
        Ok(Admission::Admitted(attempt)) => attempt,
        Ok(Admission::Refused { retry_after }) => {
            guard
                .stats
                .counter(surface, true)
                .fetch_add(1, Ordering::Relaxed);
            let seconds = u64::try_from(retry_after.whole_seconds())
                .unwrap_or(1)
                .max(1);
            tracing::warn!(
                surface = surface.as_str(),
                network = %latchkey_idp::session::network_of(&address),
                retry_after_seconds = seconds,
                "bearer-token request refused: too many wrong tokens from this network"
            );
            return surface.throttled(seconds);
        }
        Err(e) => return surface.failed(e),
    };
    let response = next.run(req).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        // A wrong token: its slot stays counted (the surface logged why).
        guard
            .stats
            .counter(surface, false)
            .fetch_add(1, Ordering::Relaxed);
    } else {
        if response.status().is_success() {
            guard.known.remember(known, store.now());
        }
        if let Err(e) = throttle.succeeded(attempt).await {
            // The answer stands; the slot stays counted until the run's window ends.
            tracing::warn!(surface = surface.as_str(), error = %e, "bearer-token slot not given back");
        }
    }
    response
}
