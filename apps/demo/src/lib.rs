//! Two demo applications built only on the `latchkey-sp` toolkit: a wiki and a helpdesk.
//!
//! Each is a small axum app with its own SQLite database (empty at start) whose accounts are
//! created just in time from Latchkey logins. Run one with
//! `latchkey demo-app wiki --config wiki.toml` (see [`config`] for the file).
//!
//! Routes: `/` (the signed-in account, its role and how it was provisioned), `/login`
//! (SP-initiated login), `/saml/metadata`, `/saml/acs`, `/saml/slo` (single logout: the
//! IdP's LogoutRequest or its answer to ours), `/whoami` (JSON), `/readyz` (JSON: 200 while
//! the database answers and the IdP metadata lets anyone log in, else 503; failing refreshes reported), `/admin` (accounts created
//! and SCIM, and the audit log with where each change came from), `/logout` (POST: ends the
//! local session, then single logout through the IdP), `/scim/v2/...` (SCIM 2.0, when
//! configured: see [`config`]), `/static/demo.<hash>.css` (the stylesheet). With
//! `[sp.audit] retain_days`, the app purges its audit log of older events every ten minutes.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
mod html;
mod pages;
mod routes;
mod session;

use std::sync::Arc;

pub use app::{AppKind, Clock, DemoApp};
pub use config::DemoConfig;
pub use routes::router;

latchkey_sp::latchkey_saml::stable_codes! {
    /// The demo apps' own page codes, beside the SP toolkit's ([`latchkey_sp::Code`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum DemoCode {
        /// The signed-in account lacks the app's admin role (wiki `admin`, helpdesk `agent`),
        /// which the admin page needs.
        AdminRoleRequired = "ADMIN_ROLE_REQUIRED",
        /// A fault of the demo app itself (its database, its templates); the detail is only
        /// in its log, under the operation ID the page shows.
        Internal = "INTERNAL",
    }
}

/// Why a demo app could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The configuration file is unusable.
    #[error("config: {0}")]
    Config(String),
    /// The SP toolkit failed (settings, IdP metadata, database).
    #[error(transparent)]
    Sp(#[from] latchkey_sp::Error),
    /// The listening socket failed.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the wiki until the process is stopped.
pub async fn run_wiki(config: DemoConfig) -> Result<(), DemoError> {
    run(AppKind::Wiki, config).await
}

/// Runs the helpdesk until the process is stopped.
pub async fn run_helpdesk(config: DemoConfig) -> Result<(), DemoError> {
    run(AppKind::Helpdesk, config).await
}

/// Runs one demo app: makes its signing key if it has none, loads the IdP metadata (waiting up to a minute for an IdP that is still
/// starting), opens the database, keeps the metadata refreshed, and serves.
pub async fn run(kind: AppKind, mut config: DemoConfig) -> Result<(), DemoError> {
    config.ensure_signing_key()?;
    config.ensure_scim(kind.scim_name_id())?;
    let idp = load_idp_patiently(&config).await?;
    let app = Arc::new(DemoApp::open(kind, &config, idp, Clock::System).await?);
    latchkey_sp::fetch::spawn_refresh(app.sp().clone(), config.sp.clone());
    if config.sp.audit.retention().is_some() {
        tokio::spawn(purge_audit(app.clone()));
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    tracing::info!(
        app = kind.name(),
        listen = %config.listen,
        entity_id = %config.sp.entity_id,
        "demo app listening"
    );
    // The socket peer bounds the logins one client may start (`start_login_from`).
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}

/// Every ten minutes (the first at start): deletes the audit events older than
/// `[sp.audit] retain_days`, as the IdP's `[audit] retain_days` does.
async fn purge_audit(app: Arc<DemoApp>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        match app.purge_audit().await {
            Ok(Some(purge)) if purge.events > 0 => tracing::info!(
                app = app.kind().name(),
                purged = purge.events,
                batches = purge.batches,
                "audit events past [sp.audit] retain_days removed"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(app = app.kind().name(), error = %e, "audit purge failed"),
        }
    }
}

async fn load_idp_patiently(config: &DemoConfig) -> Result<latchkey_sp::idp::IdpTrust, DemoError> {
    let mut attempt = 0u32;
    loop {
        match latchkey_sp::fetch::load_idp(&config.sp, Clock::System.now()).await {
            Ok(idp) => return Ok(idp),
            Err(e) if attempt < 30 && matches!(e, latchkey_sp::Error::Metadata(_)) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "IdP metadata not available yet; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
