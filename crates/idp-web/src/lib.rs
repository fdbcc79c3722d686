//! The SSO web server: sign-in pages, the SAML endpoints and the user portal (axum).
//!
//! ```text
//! GET  /healthz /readyz /metrics          liveness, able to sign in (JSON), Prometheus
//! GET  /saml/metadata                     signed IdP metadata (active + next key)
//! GET|POST /saml/sso                      AuthnRequest, HTTP-Redirect or HTTP-POST binding
//! GET  /saml/continue/{key}               a parked request, now same-site with the cookie
//! GET|POST /saml/init/{app}               IdP-initiated sign-in (portal tiles; POST confirms)
//! GET|POST /saml/slo                      LogoutRequest / LogoutResponse (Redirect or POST)
//! GET  /saml/slo/continue/{key}           a parked POST LogoutRequest, now with the cookie
//! GET  /saml/slo/frame/{key}              one application's LogoutRequest, in its frame
//! GET  /saml/slo/done/{run}               the end of a logout: each application's outcome
//! GET|POST /login   GET|POST /logout   GET /portal
//! GET|POST /invite/{token}               an invitation: set the first password, signed in
//! GET|POST /reset   GET|POST /reset/{token}   password reset: ask for a link, use it
//! GET|POST /login/mfa                     the second step, or a step-up (TOTP, key, recovery code)
//! GET|POST /mfa/totp                      add a TOTP app: QR code and secret, then a code confirms
//! GET|POST /mfa/recovery-codes            how many are left; new ones, shown once
//! GET /webauthn, POST /webauthn/...       passkeys and security keys (JSON ceremonies)
//! GET /account, POST /account/...         your own password, factors, sessions, sign-ins
//! ```
//!
//! Every request goes through [`headers::layer`] (security headers, metrics); every failure
//! through [`error::WebError`] (one page shape, a code and an operation ID).

pub mod account;
pub mod api;
pub mod assets;
pub mod bearer;
pub mod console;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod headers;
pub mod html;
pub mod invite;
pub mod login;
pub mod logout;
pub mod metrics;
pub mod mfa;
mod pages;
pub mod portal;
pub mod reset;
pub mod saml;
pub mod scim;
mod set_password;
pub mod webauthn;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use error::WebError;
pub use latchkey_idp::config::{ServerConfig, ServerSettings};
pub use metrics::Metrics;

use latchkey_idp::audit::{Actor, AuditBatcher, Change};
use latchkey_idp::error::Error;
use latchkey_idp::session::DeviceKeys;
use latchkey_idp::sso::{Claim, IdpKeys, SeenRequests};
use latchkey_idp::store::Store;

/// What every handler shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    settings: ServerSettings,
    /// How AuthnRequests are checked, made from `settings` once.
    request_rules: latchkey_saml::profile::idp::IdpSettings,
    keys: IdpKeys,
    metrics: Metrics,
    /// Batches sign-in audit lines; `None` when built outside a Tokio runtime, where each
    /// line is written on its own.
    audit: Option<AuditBatcher>,
    /// The trusted-browser cookie key, read from the store at first use.
    device_keys: tokio::sync::OnceCell<DeviceKeys>,
    /// The last database probe of `/readyz` and when it ran (see [`readyz`]).
    probe: tokio::sync::Mutex<Option<(Instant, &'static str)>>,
    /// What `/readyz` last found, so that its log says a state once, when it begins (see
    /// [`readyz`]).
    ready_said: latchkey_sp::health::LastFinding<ReadyChecks>,
    /// The oldest waiting SCIM removal as last read (see [`oldest_removal`]).
    oldest_removal: Reused<OldestWaiting>,
    /// The oldest row waiting in the SCIM outbox as last read, for `/readyz`.
    oldest_waiting: Reused<OldestWaiting>,
    /// Who we are to passkeys; `None` when the base URL cannot be an RP (an IP address).
    webauthn: Option<latchkey_idp::webauthn::RelyingParty>,
    /// Takes password-reset requests; `None` leaves self-service reset off (the sign-in
    /// page then offers no link to it).
    reset_desk: Option<latchkey_idp::enrollment::reset::ResetDesk>,
    /// The key that seals TOTP secrets and applications' SCIM tokens
    /// ([`latchkey_idp::mfa::totp::sealing_kek`]); `None` until
    /// [`WebState::with_sealing_kek`], and then the pages that seal answer a server fault.
    sealing_kek: Option<latchkey_idp::keys::Kek>,
    /// How long the console's invitations live, and the mail queue they go to (none until
    /// [`WebState::with_invitations`]: the console then shows the link to hand over).
    invitation_ttl: time::Duration,
    mailer: latchkey_idp::mail::Mailer,
    /// `/readyz` names the SCIM outbox stuck when its oldest row is older than this
    /// (`[provisioning] stuck_after_seconds`; `None`: not checked).
    scim_stuck_after: Option<time::Duration>,
    /// `/readyz` says the node is degraded when a removal has waited longer than this
    /// (`[provisioning] removal_overdue_seconds`; `None`: not checked).
    scim_removal_overdue: Option<time::Duration>,
}

impl WebState {
    /// State over an open store, checked settings and the signing keys. Inside a Tokio
    /// runtime this starts the audit writer (see [`latchkey_idp::audit`]'s group commit).
    pub fn new(store: Store, settings: ServerSettings, keys: IdpKeys) -> Self {
        let audit = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| AuditBatcher::start(store.clone()));
        WebState(Arc::new(Inner {
            store,
            request_rules: latchkey_idp::sso::request::request_rules(&settings),
            settings,
            keys,
            metrics: Metrics::default(),
            audit,
            device_keys: tokio::sync::OnceCell::new(),
            probe: tokio::sync::Mutex::new(None),
            ready_said: latchkey_sp::health::LastFinding::default(),
            oldest_removal: Reused::default(),
            oldest_waiting: Reused::default(),
            webauthn: None,
            reset_desk: None,
            sealing_kek: None,
            invitation_ttl: latchkey_idp::config::EnrollmentConfig::default().invitation_ttl(),
            mailer: latchkey_idp::mail::Mailer::disabled(),
            scim_stuck_after: None,
            scim_removal_overdue: None,
        }))
        .with_webauthn(&latchkey_idp::webauthn::WebauthnConfig::default())
    }

    /// The same state with the `[webauthn]` section applied (the default is the base URL's
    /// host and origin). A base URL that cannot be a relying party (WebAuthn refuses IP
    /// addresses) leaves passkeys off, with a warning, rather than stopping the server.
    pub fn with_webauthn(mut self, config: &latchkey_idp::webauthn::WebauthnConfig) -> Self {
        let rp = match latchkey_idp::webauthn::RelyingParty::new(&self.0.settings.base_url, config)
        {
            Ok(rp) => Some(rp),
            Err(e) => {
                tracing::warn!(error = %e, "passkeys are off");
                None
            }
        };
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.webauthn = rp;
        }
        self
    }

    /// The same state with self-service password reset on: `/reset` hands requests to
    /// `desk` (see [`latchkey_idp::enrollment::reset::ResetDesk`]).
    pub fn with_reset_desk(mut self, desk: latchkey_idp::enrollment::reset::ResetDesk) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.reset_desk = Some(desk);
        }
        self
    }

    /// The same state with `/readyz` reporting the SCIM outbox stuck when its oldest row is
    /// older than `after` (`None`: not checked).
    pub fn with_scim_stuck_after(mut self, after: Option<time::Duration>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.scim_stuck_after = after;
        }
        self
    }

    /// The same state with `/readyz` saying the node is degraded when a removal has waited
    /// longer than `after` to reach its application (`None`: not checked).
    pub fn with_scim_removal_overdue(mut self, after: Option<time::Duration>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.scim_removal_overdue = after;
        }
        self
    }

    /// The same state with the key that seals TOTP secrets and SCIM tokens (`latchkey serve`
    /// loads it with
    /// [`latchkey_idp::mfa::totp::sealing_kek`]; every node sharing a database must have
    /// the same one).
    pub fn with_sealing_kek(mut self, kek: latchkey_idp::keys::Kek) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.sealing_kek = Some(kek);
        }
        self
    }

    /// The same state with the console's invitations living `[enrollment]`'s time and
    /// mailed through `mailer` (the API's queue: `latchkey serve` hands both the same one).
    pub fn with_invitations(
        mut self,
        enrollment: latchkey_idp::config::EnrollmentConfig,
        mailer: latchkey_idp::mail::Mailer,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.0) {
            inner.invitation_ttl = enrollment.invitation_ttl();
            inner.mailer = mailer;
        }
        self
    }

    /// How long an invitation lives, and the queue its mail goes to.
    pub(crate) fn invitations(&self) -> (time::Duration, &latchkey_idp::mail::Mailer) {
        (self.0.invitation_ttl, &self.0.mailer)
    }

    /// The reset desk, when self-service reset is on.
    pub fn reset_desk(&self) -> Option<&latchkey_idp::enrollment::reset::ResetDesk> {
        self.0.reset_desk.as_ref()
    }

    /// The key that seals TOTP secrets and SCIM tokens; a server fault when none was given.
    pub(crate) fn sealing_kek(&self) -> Result<&latchkey_idp::keys::Kek, WebError> {
        self.0
            .sealing_kek
            .as_ref()
            .ok_or_else(|| WebError::Internal("no sealing key-encryption key loaded".into()))
    }

    /// The WebAuthn relying party, when passkeys are on.
    pub fn webauthn(&self) -> Option<&latchkey_idp::webauthn::RelyingParty> {
        self.0.webauthn.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Parked requests, under the caps of this server's settings.
    pub fn parked(&self) -> latchkey_idp::session::ParkedRequests<'_> {
        latchkey_idp::session::ParkedRequests::new(self.store())
            .with_caps(self.settings().park_caps)
    }

    /// The checked `[server]` settings.
    pub fn settings(&self) -> &ServerSettings {
        &self.0.settings
    }

    /// How AuthnRequests are checked under these settings
    /// ([`latchkey_idp::sso::request::request_rules`]).
    pub fn request_rules(&self) -> &latchkey_saml::profile::idp::IdpSettings {
        &self.0.request_rules
    }

    /// The signing keys.
    pub fn keys(&self) -> &IdpKeys {
        &self.0.keys
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The key of trusted-browser cookies (shared by every node through the store).
    pub(crate) async fn device_keys(&self) -> Result<&DeviceKeys, WebError> {
        Ok(self
            .0
            .device_keys
            .get_or_try_init(|| DeviceKeys::load(self.store()))
            .await?)
    }

    /// Writes one audit event (sign-ins, assertions, denials).
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        action: &'static str,
        target_kind: &'static str,
        target_id: String,
        target_name: String,
        details: Value,
    ) -> Result<(), WebError> {
        self.audit_claiming(
            None,
            actor,
            action,
            target_kind,
            target_id,
            target_name,
            details,
        )
        .await
    }

    /// [`Self::audit`] for the answer to an AuthnRequest whose ID is not yet recorded as
    /// used: the record and the line are committed together (the audit writer's group
    /// commit), and a replay (the ID already used) is an error with nothing written, so
    /// the caller sends no Response.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit_claiming(
        &self,
        claim: Option<Claim>,
        actor: &Actor,
        action: &'static str,
        target_kind: &'static str,
        target_id: String,
        target_name: String,
        details: Value,
    ) -> Result<(), WebError> {
        let change = Change {
            action,
            target_kind,
            target_id,
            target_name,
            before: None,
            after: Some(details),
        };
        let at = self.store().now();
        let refused = claim.as_ref().map(Claim::replayed);
        if let Some(batcher) = &self.0.audit {
            // Without a claim the line is always stored.
            return match (
                batcher.record_claiming(actor, at, change, claim).await?,
                refused,
            ) {
                (false, Some(replayed)) => Err(replayed.into()),
                _ => Ok(()),
            };
        }
        // No writer (outside a runtime): the record first, on its own, then the line.
        if let Some(claim) = &claim
            && !SeenRequests::new(self.store()).claim(claim, at).await?
        {
            return Err(claim.replayed().into());
        }
        self.store().audit().record(actor, at, change).await?;
        Ok(())
    }

    /// Records `claim` on its own, for a request that waits (parked) instead of being
    /// answered now; a replay is an error.
    pub(crate) async fn claim(&self, claim: Option<Claim>) -> Result<(), WebError> {
        if let Some(claim) = claim
            && !SeenRequests::new(self.store())
                .claim(&claim, self.store().now())
                .await?
        {
            return Err(claim.replayed().into());
        }
        Ok(())
    }
}

/// The browser as a new session records it: its address ([`extract::ClientAddress`]) and
/// User-Agent.
pub(crate) fn client_of(address: &str, headers: &HeaderMap) -> latchkey_idp::session::Client {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    latchkey_idp::session::Client::new(address, user_agent)
}

/// The client's address: the socket peer, or the last `X-Forwarded-For` hop when the
/// configuration says a proxy sets it (the rule is [`latchkey_sp::network::client_address`],
/// shared with the SP toolkit's applications).
pub(crate) fn client_addr(
    settings: &ServerSettings,
    headers: &HeaderMap,
    connect: Option<&ConnectInfo<SocketAddr>>,
) -> String {
    client_address(settings.trust_forwarded_for, headers, connect)
}

/// [`client_addr`] for a surface that holds only `trust_forwarded_for`.
pub(crate) fn client_address(
    trust_forwarded_for: bool,
    headers: &HeaderMap,
    connect: Option<&ConnectInfo<SocketAddr>>,
) -> String {
    latchkey_sp::network::client_address(
        headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or_default()),
        connect.map(|c| c.0.ip()),
        trust_forwarded_for,
    )
    .unwrap_or_else(|| "unknown".into())
}

/// The server's router.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/static/{file}", get(assets::file))
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/login/mfa",
            get(mfa::second_factor).post(mfa::second_factor_submit),
        )
        .route("/mfa/totp", get(mfa::totp_form).post(mfa::totp_confirm))
        .route(
            "/mfa/recovery-codes",
            get(mfa::recovery_codes).post(mfa::regenerate_recovery_codes),
        )
        .route("/logout", get(login::logout_form).post(login::logout))
        .route("/portal", get(portal::portal))
        .route("/account", get(account::page))
        .route("/account/password", post(account::change_password))
        .route("/account/factors/{id}/rename", post(account::rename_factor))
        .route("/account/factors/{id}/remove", post(account::remove_factor))
        .route("/account/sessions/end", post(account::end_session))
        .route("/invite/{token}", get(invite::link).post(invite::redeem))
        .route("/reset", get(reset::form).post(reset::request))
        .route("/reset/{token}", get(reset::link).post(reset::redeem))
        .route("/saml/metadata", get(saml::metadata))
        .route("/saml/sso", get(saml::sso_redirect).post(saml::sso_post))
        .route("/saml/continue/{key}", get(saml::resume))
        .route(
            "/saml/init/{app}",
            get(portal::launch).post(portal::launch_confirmed),
        )
        .route(
            "/saml/slo",
            get(logout::slo_redirect).post(logout::slo_post),
        )
        .route("/saml/slo/continue/{key}", get(logout::slo_continue))
        .route("/saml/slo/frame/{key}", get(logout::slo_frame))
        .route("/saml/slo/done/{key}", get(logout::slo_done))
        .route("/static/logout.js", get(logout::slo_script))
        .route("/favicon.ico", get(favicon))
        .route("/static/webauthn.js", get(webauthn::script))
        .route("/webauthn", get(webauthn::page))
        .route("/webauthn/register/start", post(webauthn::register_start))
        .route("/webauthn/register/finish", post(webauthn::register_finish))
        .route("/webauthn/login/start", post(webauthn::login_start))
        .route("/webauthn/login/finish", post(webauthn::login_finish))
        .route(
            "/webauthn/second-factor/start",
            post(webauthn::second_factor_start),
        )
        .route(
            "/webauthn/second-factor/finish",
            post(webauthn::second_factor_finish),
        )
        .route("/webauthn/credentials", get(webauthn::credentials))
        .route("/webauthn/credentials/{id}", post(webauthn::manage))
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(256 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::layer,
        ))
        .with_state(state)
}

async fn not_found() -> WebError {
    WebError::NotFound
}

/// Browsers ask for `/favicon.ico` on every origin by themselves. We have no icon, and that
/// is not a refused request: answered "no content" (cached for a week, so they stop asking)
/// rather than through the 404 page, which would log a warning and count a failure for
/// every first visit.
async fn favicon() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=604800"),
        )],
    )
}

async fn method_not_allowed() -> WebError {
    WebError::MethodNotAllowed
}

/// When the oldest row (of a kind) waiting in the SCIM outbox was written (`None`: none
/// waits), or why it could not be read.
type OldestWaiting = Result<Option<time::OffsetDateTime>, String>;

/// How long a reading of the SCIM outbox is reused: finding its oldest row may walk it, and
/// `/readyz` is public, so however often it (or `/metrics`) is called, each reading runs at
/// most once in this time (by the store's clock); concurrent calls wait for the one in flight.
const OUTBOX_READING_REUSE: time::Duration = time::Duration::seconds(10);

/// A reading of the store reused for [`OUTBOX_READING_REUSE`].
#[derive(Debug)]
struct Reused<T>(tokio::sync::Mutex<Option<(time::OffsetDateTime, T)>>);

impl<T> Default for Reused<T> {
    fn default() -> Self {
        Self(tokio::sync::Mutex::new(None))
    }
}

impl<T: Clone> Reused<T> {
    /// The last reading if it was taken less than [`OUTBOX_READING_REUSE`] before `now`,
    /// else `read`'s (which runs only then).
    async fn get(&self, now: time::OffsetDateTime, read: impl Future<Output = T>) -> T {
        let mut last = self.0.lock().await;
        if let Some((at, reading)) = last.as_ref()
            && *at <= now
            && now - *at < OUTBOX_READING_REUSE
        {
            return reading.clone();
        }
        let reading = read.await;
        *last = Some((now, reading.clone()));
        reading
    }
}

/// The oldest waiting removal, for `/readyz` and `/metrics` (one reading for both).
async fn oldest_removal(state: &WebState) -> OldestWaiting {
    let read = async {
        let provisioning = state.store().provisioning();
        provisioning
            .oldest_waiting_removal()
            .await
            .map_err(|e| e.to_string())
    };
    state.0.oldest_removal.get(state.store().now(), read).await
}

/// The oldest row waiting in the SCIM outbox, whatever its kind, for `/readyz`.
async fn oldest_waiting(state: &WebState) -> OldestWaiting {
    let read = async {
        let provisioning = state.store().provisioning();
        provisioning
            .oldest_waiting()
            .await
            .map_err(|e| e.to_string())
    };
    state.0.oldest_waiting.get(state.store().now(), read).await
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for the database to take its probe write: well inside a load
/// balancer's or Kubernetes' probe timeout, and far below the pool's 30 s.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A probe result younger than this is reused, so that however often `/readyz` is called
/// (by several balancers, or by anyone: it is public) it costs at most one small write a
/// second; concurrent calls wait for the one probe in flight.
const READY_PROBE_REUSE: Duration = Duration::from_secs(1);

latchkey_saml::stable_codes! {
    /// What `/readyz` shows for a check that fails, beside `"ok"` (snake_case). Anyone may
    /// ask, so it shows only these; why is in the log line `not ready`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum ReadyCode {
        /// The database did not take the probe's write within 2 s: its write lock held by
        /// another connection, or overloaded. It may pass on its own. Not ready.
        DatabaseBusy = "database_busy",
        /// The database refuses the probe's write: read-only (the file, its folder or the
        /// file system), or without permission. Not ready.
        DatabaseUnwritable = "database_unwritable",
        /// The database failed the probe otherwise (unreachable, refusing). Not ready.
        DatabaseFailed = "database_failed",
        /// The audit writer has stopped: no sign-in is answered without its audit line.
        /// Not ready.
        AuditStopped = "audit_stopped",
        /// No signing key is loaded (the key store cannot be read, or has no active key).
        /// Not ready.
        SigningKeyUnavailable = "signing_key_unavailable",
        /// The SCIM outbox's oldest row is older than `[scim] stuck_after_seconds` (see
        /// `latchkey app scim show`). Reported; ready all the same.
        ScimOutboxStuck = "scim_outbox_stuck",
        /// The SCIM outbox could not be read. Reported; ready all the same.
        ScimOutboxUnreadable = "scim_outbox_unreadable",
        /// A removal (a user suspended, deleted or out of the application's groups) has
        /// waited longer than `[provisioning] removal_overdue_seconds` to reach its
        /// application (see `latchkey user provisioning`): someone keeps access there.
        /// Reported (`degraded`); ready all the same.
        ScimRemovalOverdue = "scim_removal_overdue",
    }
}

/// Whether this node can sign people in: the database takes a write (a probe row updated
/// in bounded time), the audit writer runs (no sign-in is answered without its audit line)
/// and a signing key is loaded. 200 or 503, with each check named in a JSON body, `"ok"` or
/// a [`ReadyCode`], never an error's text (anyone may ask; the detail is logged):
/// `{"ready":false,"degraded":false,"checks":{"database":"database_unwritable","audit":"ok",
/// "signing_key":"ok"}}`. `degraded` (not counted in `ready`) is the SCIM checks: an outbox
/// stuck, or a removal overdue (someone keeps access an application was told to take away).
async fn readyz(State(state): State<WebState>) -> Response {
    let database = {
        let mut last = state.0.probe.lock().await;
        match last.as_ref() {
            Some((at, outcome)) if at.elapsed() < READY_PROBE_REUSE => *outcome,
            _ => {
                let outcome = match state.store().probe_write(READY_PROBE_TIMEOUT).await {
                    Ok(()) => "ok",
                    Err(e) => {
                        let code = match e {
                            Error::DatabaseUnwritable { locked: true, .. } | Error::Busy { .. } => {
                                ReadyCode::DatabaseBusy
                            }
                            Error::DatabaseUnwritable { .. } => ReadyCode::DatabaseUnwritable,
                            _ => ReadyCode::DatabaseFailed,
                        };
                        tracing::warn!(%code, error = %e, "readiness: database probe failed");
                        code.as_str()
                    }
                };
                *last = Some((Instant::now(), outcome));
                outcome
            }
        }
    };
    // Why a check failed, for the log line that says so.
    let mut why: Vec<String> = Vec::new();
    let audit = match &state.0.audit {
        Some(batcher) if !batcher.is_alive() => ReadyCode::AuditStopped.as_str(),
        _ => "ok",
    };
    let signing_key = match state.keys().current() {
        Ok(_) => "ok",
        Err(e) => {
            why.push(format!("no signing key: {e}"));
            ReadyCode::SigningKeyUnavailable.as_str()
        }
    };
    let now = state.store().now();
    // Reported, not counted in `ready`: an application that is down holds up its own
    // deliveries, and taking this node out of the load balancer would not bring it back.
    let scim_outbox = match state.0.scim_stuck_after {
        None => None,
        Some(after) => Some(outbox_check(
            oldest_waiting(&state).await,
            now - after,
            ReadyCode::ScimOutboxStuck,
            "the SCIM outbox's oldest row (see latchkey app scim show)",
            &mut why,
        )),
    };
    // Someone keeps access the directory took away: said, and `degraded`, but the node
    // still signs people in.
    let scim_removals = match state.0.scim_removal_overdue {
        None => None,
        Some(after) => Some(outbox_check(
            oldest_removal(&state).await,
            now - after,
            ReadyCode::ScimRemovalOverdue,
            "the oldest SCIM removal (see latchkey user provisioning)",
            &mut why,
        )),
    };
    let degraded = [scim_outbox, scim_removals]
        .into_iter()
        .flatten()
        .any(|c| c != "ok");
    let ready = [database, audit, signing_key].iter().all(|c| *c == "ok");
    let checks = ReadyChecks {
        database,
        audit,
        signing_key,
        scim_outbox,
        scim_removals,
    };
    say_readiness(&state, checks, ready, degraded, &why);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut checks = json!({ "database": database, "audit": audit, "signing_key": signing_key });
    if let Some(map) = checks.as_object_mut() {
        for (name, check) in [
            ("scim_outbox", scim_outbox),
            ("scim_removals", scim_removals),
        ] {
            if let Some(check) = check {
                map.insert(name.into(), Value::String(check.to_owned()));
            }
        }
    }
    let body = json!({ "ready": ready, "degraded": degraded, "checks": checks });
    (status, Json(body)).into_response()
}

/// One of `/readyz`'s SCIM checks: `late` when the oldest row `reading` found was written
/// before `deadline`, `"ok"` when not (or none waits), unreadable when it could not be read;
/// what failed, and why, goes into `why` for the log line.
fn outbox_check(
    reading: OldestWaiting,
    deadline: time::OffsetDateTime,
    late: ReadyCode,
    what: &str,
    why: &mut Vec<String>,
) -> &'static str {
    match reading {
        Ok(Some(oldest)) if oldest < deadline => {
            why.push(format!("{what} has waited since {oldest}"));
            late.as_str()
        }
        Ok(_) => "ok",
        Err(e) => {
            why.push(format!("{what} cannot be read: {e}"));
            ReadyCode::ScimOutboxUnreadable.as_str()
        }
    }
}

/// What one `/readyz` call found, check by check (`"ok"` or a [`ReadyCode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadyChecks {
    database: &'static str,
    audit: &'static str,
    signing_key: &'static str,
    scim_outbox: Option<&'static str>,
    scim_removals: Option<&'static str>,
}

/// Logs what `/readyz` found when it differs from what the last call found: a node that is
/// not ready (or degraded) says so, with why, once when it becomes so and again whenever the
/// failing checks change, and says when it is ready again. Anyone may call `/readyz`, as
/// often as they like: a line per call would let them fill the log.
fn say_readiness(
    state: &WebState,
    checks: ReadyChecks,
    ready: bool,
    degraded: bool,
    why: &[String],
) {
    let Some(before) = state.0.ready_said.changed(checks) else {
        return;
    };
    let ReadyChecks {
        database,
        audit,
        signing_key,
        ..
    } = checks;
    let outbox = checks.scim_outbox.unwrap_or("ok");
    let removals = checks.scim_removals.unwrap_or("ok");
    let why = why.join("; ");
    if !ready {
        tracing::warn!(%database, %audit, %signing_key, %outbox, %removals, %why, "not ready");
    } else if degraded {
        tracing::warn!(%outbox, %removals, %why, "ready, degraded");
    } else if before.is_some() {
        tracing::info!("ready again");
    }
}

async fn metrics_text(
    State(state): State<WebState>,
    headers: HeaderMap,
    extract::ClientAddress(addr): extract::ClientAddress,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !state.settings().metrics_access.allows(&addr, bearer) {
        tracing::info!(address = %addr, "metrics scrape refused");
        return (
            StatusCode::FORBIDDEN,
            "metrics are not open to this client\n",
        )
            .into_response();
    }
    let mut text = state.metrics().render();
    text.push_str(&metrics::render_hashing(&state.store().hashing().stats()));
    match oldest_removal(&state).await {
        Ok(oldest) => text.push_str(&metrics::render_oldest_removal(
            oldest.map(|at| state.store().now() - at),
        )),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the oldest SCIM removal"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;
    use latchkey_idp::config::PasswordConfig;
    use latchkey_idp::keys::KeyAlgorithm;

    async fn state(dir: &std::path::Path) -> WebState {
        let cheap = PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
        };
        let url = latchkey_idp::config::sqlite_url(&dir.join("latchkey.db"));
        let store = Store::open_url(&url, 2, cheap).await.unwrap();
        let settings = ServerSettings::check(ServerConfig {
            base_url: "http://127.0.0.1:8080".into(),
            cookie_secure: false,
            ..ServerConfig::default()
        })
        .unwrap();
        let keys = IdpKeys::open(dir.join("keys"), KeyAlgorithm::EcdsaP256, store.now()).unwrap();
        WebState::new(store, settings, keys)
    }

    async fn ready(state: &WebState) -> (StatusCode, Value) {
        let response = readyz(State(state.clone())).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_dead_audit_writer_makes_the_node_unready() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let (status, body) = ready(&state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let batcher = state.0.audit.as_ref().unwrap();
        assert!(batcher.is_alive());
        batcher.abort();
        // Aborting takes effect when the task is next polled.
        for _ in 0..100 {
            if !batcher.is_alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (status, body) = ready(&state).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["ready"], false);
        assert_eq!(body["checks"]["audit"], "audit_stopped");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["signing_key"], "ok");
    }

    /// What the code under `run` logs, as text.
    async fn logged<F: std::future::Future>(run: F) -> (F::Output, String) {
        #[derive(Clone, Default)]
        struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish();
        // The test's runtime has one thread: everything the handler logs is on this one.
        let out = {
            let _guard = tracing::subscriber::set_default(subscriber);
            run.await
        };
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    /// `/readyz` and `/metrics` are public: a reading of the SCIM outbox is taken at most
    /// once in ten seconds by the store's clock, however often they are called.
    #[tokio::test]
    async fn an_outbox_reading_is_reused_for_ten_seconds() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let reused: Reused<usize> = Reused::default();
        let reads = AtomicUsize::new(0);
        let read = || async { reads.fetch_add(1, Ordering::SeqCst) };
        let t0 = time::macros::datetime!(2026-12-07 12:00 UTC);
        for s in [0, 1, 5, 9] {
            assert_eq!(reused.get(t0 + time::Duration::seconds(s), read()).await, 0);
        }
        assert_eq!(
            reused.get(t0 + time::Duration::seconds(10), read()).await,
            1
        );
        // A clock set back does not reuse a reading from its future.
        assert_eq!(reused.get(t0, read()).await, 2);
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    /// Anyone may call `/readyz`, as often as they like: a node that is not ready says so in
    /// its log once, when it becomes so, not once per call; a ready node says nothing.
    #[tokio::test]
    async fn readiness_is_logged_when_it_changes_not_at_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let ((), quiet) = logged(async {
            for _ in 0..3 {
                assert_eq!(ready(&state).await.0, StatusCode::OK);
            }
        })
        .await;
        assert!(!quiet.contains("ready"), "{quiet}");
        let batcher = state.0.audit.as_ref().unwrap();
        batcher.abort();
        for _ in 0..100 {
            if !batcher.is_alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ((), said) = logged(async {
            for _ in 0..5 {
                assert_eq!(ready(&state).await.0, StatusCode::SERVICE_UNAVAILABLE);
            }
        })
        .await;
        assert_eq!(said.matches("not ready").count(), 1, "{said}");
        assert!(said.contains("audit=audit_stopped"), "{said}");
    }

    /// An application whose users the group `staff` (returned) holds, alice a member, with a
    /// SCIM connection: her create waits in the outbox.
    async fn connected_app(store: &Store) -> latchkey_idp::directory::Group {
        use latchkey_idp::apps::NewApplication;
        use latchkey_idp::directory::{NewGroup, NewUser};
        use latchkey_idp::keys::{Kek, KekSource};
        use latchkey_idp::provisioning::{NewConnection, OnRemove};
        let admin = latchkey_idp::Actor::system();
        let app = NewApplication::new("https://wiki.test", "Wiki", "https://wiki.test/acs");
        let app = store.apps().create(&admin, app).await.unwrap();
        let staff = store
            .groups()
            .create(&admin, NewGroup::new("staff"))
            .await
            .unwrap();
        let alice = store
            .users()
            .create(&admin, NewUser::new("alice", "alice@example.org"))
            .await
            .unwrap();
        store
            .groups()
            .add_member(&admin, staff.id, alice.id)
            .await
            .unwrap();
        store.apps().assign(&admin, app.id, staff.id).await.unwrap();
        let kek = Kek::from_base64(&Kek::generate_base64(), KekSource::Env).unwrap();
        let connection = NewConnection {
            base_url: "https://scim.wiki.test/v2".into(),
            token: zeroize::Zeroizing::new("t".into()),
            on_remove: OnRemove::Deactivate,
        };
        store
            .provisioning()
            .connect(&admin, &kek, app.id, connection)
            .await
            .unwrap();
        staff
    }

    /// A removal waiting past `removal_overdue_seconds` makes `/readyz` say `degraded` (still
    /// 200: the node signs people in), and its age is the
    /// `latchkey_scim_oldest_removal_age_seconds` gauge; an update waiting as long does not.
    #[tokio::test]
    async fn an_overdue_removal_degrades_readiness() {
        use latchkey_idp::directory::NewUser;
        let dir = tempfile::tempdir().unwrap();
        let plain = state(dir.path()).await;
        let clock = latchkey_idp::ManualClock::new(time::macros::datetime!(2026-12-05 12:00 UTC));
        let store = plain.store().clone().with_clock(clock.clone());
        let state = WebState::new(
            store.clone(),
            plain.settings().clone(),
            plain.keys().clone(),
        )
        .with_scim_removal_overdue(Some(time::Duration::hours(1)));
        let gauge = |state: &WebState| {
            let state = state.clone();
            async move {
                let response = metrics_text(
                    State(state),
                    HeaderMap::new(),
                    extract::ClientAddress("127.0.0.1".into()),
                )
                .await;
                assert_eq!(response.status(), StatusCode::OK);
                let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let text = String::from_utf8(body.to_vec()).unwrap();
                text.lines()
                    .find_map(|l| l.strip_prefix("latchkey_scim_oldest_removal_age_seconds "))
                    .map(str::to_owned)
            }
        };
        let staff = connected_app(&store).await;
        let admin = latchkey_idp::Actor::system();
        clock.advance(time::Duration::hours(2));
        let (status, body) = ready(&state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["checks"]["scim_removals"], "ok",
            "an update is no removal"
        );
        assert_eq!(body["degraded"], false, "{body}");
        assert_eq!(gauge(&state).await.as_deref(), Some("0"));

        // Bob joins, and is suspended before the application heard of him.
        let bob = store
            .users()
            .create(&admin, NewUser::new("bob", "bob@example.org"))
            .await
            .unwrap();
        store
            .groups()
            .add_member(&admin, staff.id, bob.id)
            .await
            .unwrap();
        store.users().suspend(&admin, bob.id).await.unwrap();
        // One reading serves for 10 s, however often anyone asks.
        assert_eq!(gauge(&state).await.as_deref(), Some("0"));
        clock.advance(time::Duration::seconds(10));
        assert_eq!(gauge(&state).await.as_deref(), Some("10"));
        clock.advance(time::Duration::minutes(59) - time::Duration::seconds(10));
        let (_, body) = ready(&state).await;
        assert_eq!(body["checks"]["scim_removals"], "ok", "{body}");
        assert_eq!(gauge(&state).await.as_deref(), Some("3540"));
        clock.advance(time::Duration::minutes(2));
        let (status, body) = ready(&state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["ready"], true);
        assert_eq!(body["degraded"], true);
        assert_eq!(
            body["checks"]["scim_removals"], "scim_removal_overdue",
            "{body}"
        );
        assert_eq!(gauge(&state).await.as_deref(), Some("3660"));
    }

    /// A row older than `stuck_after_seconds` is named in `/readyz`, which stays 200: an
    /// application that is down is not this node's fault.
    #[tokio::test]
    async fn a_stuck_scim_outbox_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let plain = state(dir.path()).await;
        let clock = latchkey_idp::ManualClock::new(time::macros::datetime!(2026-12-05 12:00 UTC));
        let store = plain.store().clone().with_clock(clock.clone());
        let state = WebState::new(
            store.clone(),
            plain.settings().clone(),
            plain.keys().clone(),
        )
        .with_scim_stuck_after(Some(time::Duration::minutes(15)));
        connected_app(&store).await;
        let (status, body) = ready(&state).await;
        assert_eq!(
            (status, &body["checks"]["scim_outbox"]),
            (StatusCode::OK, &json!("ok"))
        );
        clock.advance(time::Duration::minutes(16));
        let (status, body) = ready(&state).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["checks"]["scim_outbox"], "scim_outbox_stuck", "{body}");
        assert_eq!(body["degraded"], true, "{body}");
    }
}
