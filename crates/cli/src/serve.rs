//! `latchkey serve`: the SSO server (sign-in, SAML endpoints, portal) and the admin API.
//!
//! Reads the same configuration as the admin commands (`--config`, `$LATCHKEY_CONFIG`,
//! `./latchkey.toml`), plus its `[server]` section; generates the first signing key on first
//! start, under `<data_dir>/keys` or in the database (`[keys] store`); with the database
//! store, a task picks up rollovers done on other nodes. Logs go to stderr (`RUST_LOG` filters;
//! `LATCHKEY_LOG_FORMAT=json` for JSON lines) through [`crate::logging`], so a full disk or a
//! closed pipe costs log lines, never sign-ins. SIGINT/SIGTERM stop accepting connections and
//! let requests in flight finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use latchkey_idp::config::ProcessEnv;
use latchkey_idp::config::ServerSettings;
use latchkey_idp::session::{Sessions, Throttle};
use latchkey_idp::sso::IdpKeys;
use latchkey_idp::store::front_door::FrontDoor;
use latchkey_idp::{Config, Store};
use latchkey_idp_web::{self as web, WebState};

use crate::logging::{self, LogDrops};

/// Options of `latchkey serve`.
#[derive(Debug, Args)]
#[command(after_help = SERVE_AFTER_HELP)]
pub struct ServeArgs {
    /// Configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml, else built-in).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding `[server] listen` and $LATCHKEY_LISTEN.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// The options are few because the file holds the rest; this says where they are listed.
pub const SERVE_AFTER_HELP: &str = "Every key of latchkey.toml ([server], [database], [password], \
[keys]), its default and its environment override: docs/configuration.md, or `latchkey config \
reference`. `latchkey config check` validates a file and shows the effective configuration.";

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Lives until the runtime has stopped, so the last lines ("stopped") are flushed.
    let logging = logging::init("info,sqlx=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, logging.drops()))?;
    drop(runtime);
    drop(logging);
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs, log_drops: LogDrops) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let mut settings = ServerSettings::resolve(&config, &ProcessEnv)?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    let store = Store::open(&config).await?;
    // Opening only reads: a read-only file or file system shows first at a write, and
    // would otherwise show as every sign-in failing.
    store.probe_write(STARTUP_PROBE_TIMEOUT).await?;
    let keys = IdpKeys::from_config(
        &config,
        &ProcessEnv,
        &store,
        settings.key_algorithm,
        store.now(),
    )
    .await
    .context("cannot load the signing key")?;
    let key_refresh = keys.spawn_refresh();
    let listen = settings.listen;
    tracing::info!(
        base_url = %settings.base_url,
        entity_id = %settings.entity_id,
        database = store.backend().name(),
        keys = ?config.keys.store,
        "starting latchkey"
    );
    let mailer = latchkey_idp::mail::Mailer::new(&config.smtp).context("[smtp]")?;
    if !mailer.configured() {
        tracing::info!("no [smtp] host: invitation links are answered, not mailed");
    }
    let base_url = settings.base_url.clone();
    let reset_desk = latchkey_idp::enrollment::reset::ResetDesk::start(
        store.clone(),
        base_url.clone(),
        config.enrollment.reset_ttl(),
        std::sync::Arc::new(mailer.clone()),
    );
    // TOTP secrets are sealed under the key store's KEK, or a node-local one beside the
    // file keys: loaded now, so a missing or unreadable key stops the start, not a sign-in.
    let sealing_kek = latchkey_idp::mfa::totp::sealing_kek(&config, &ProcessEnv)
        .context("cannot load the key that seals TOTP secrets")?;
    // Wrong API and SCIM tokens, throttled per client network; counted in /metrics.
    let bearer = latchkey_idp_web::bearer::BearerGuard::new(&settings);
    let state =
        WebState::new(store.clone(), settings, keys)
            .with_webauthn(&config.webauthn)
            .with_sealing_kek(sealing_kek)
            .with_reset_desk(reset_desk)
            .with_invitations(config.enrollment, mailer.clone())
            .with_scim_stuck_after((config.provisioning.stuck_after_seconds > 0).then(|| {
                time::Duration::seconds(i64::from(config.provisioning.stuck_after_seconds))
            }))
            .with_scim_removal_overdue(config.provisioning.removal_overdue());
    state.metrics().count_log_drops(move || log_drops.total());
    state.metrics().count_mail(mailer.stats_handle());
    state.metrics().count_bearer(bearer.stats());
    // The SCIM client: delivers the outbox to connected applications (sealed tokens open
    // with the same KEK as TOTP secrets).
    let scim_kek = std::sync::Arc::new(
        latchkey_idp::mfa::totp::sealing_kek(&config, &ProcessEnv)
            .context("cannot load the key that seals SCIM tokens")?,
    );
    let scim_worker = latchkey_idp::provisioning::worker::Worker::new(
        store.clone(),
        std::sync::Arc::clone(&scim_kek),
        config.provisioning.worker(),
    );
    state.metrics().count_scim(scim_worker.stats());
    let scim_task = scim_worker.spawn();
    // SQLite: checkpoints off the requests' path (PostgreSQL has none to run).
    let checkpoints = latchkey_idp::store::checkpoint::spawn(&store).map(|(task, stats)| {
        state.metrics().count_checkpoints(stats);
        task
    });
    let scim_sync = (config.provisioning.sync_interval_minutes > 0).then(|| {
        tokio::spawn(scheduled_sync(
            store.clone(),
            std::sync::Arc::clone(&scim_kek),
            config.provisioning,
        ))
    });
    let app = web::router(state)
        .merge(latchkey_idp_web::api::router(
            latchkey_idp_web::api::ApiState::new(store.clone())
                .with_enrollment(&base_url, config.enrollment, mailer)
                .with_sealing_kek(scim_kek)
                .with_bearer_guard(bearer.clone()),
        ))
        .merge(latchkey_idp_web::scim::router_with(
            store.clone(),
            &base_url,
            bearer,
        ));

    let janitor = tokio::spawn(purge_sessions(store.clone(), config.audit.retention()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(%listen, "listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("server failed")?;
    janitor.abort();
    scim_task.abort();
    if let Some(task) = scim_sync {
        task.abort();
    }
    if let Some(task) = key_refresh {
        task.abort();
    }
    if let Some(task) = checkpoints {
        task.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Reconciles every connected application each `[provisioning] sync_interval_minutes`
/// (looked at every minute; one node per period takes each application).
async fn scheduled_sync(
    store: Store,
    kek: std::sync::Arc<latchkey_idp::keys::Kek>,
    config: latchkey_idp::config::ProvisioningConfig,
) {
    let every = time::Duration::minutes(i64::from(config.sync_interval_minutes));
    let settings = config.worker().client;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) =
            latchkey_idp::provisioning::sync::scheduled_round(&store, &kek, &settings, every).await
        {
            tracing::warn!(error = %e, "SCIM reconciliation round failed");
        }
    }
}

/// How long the start-up write check waits (another node may hold the lock briefly).
const STARTUP_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Every ten minutes: deletes sessions past their absolute expiry, throttle runs that
/// ended (so names typed once do not pile up), expired parked requests and WebAuthn
/// ceremonies left over by the starts, SAML request IDs past their window, and
/// audit events older than `[audit] retain_days` when set.
async fn purge_sessions(store: Store, audit_retention: Option<time::Duration>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = store.now();
        match Sessions::new(&store).purge_expired(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "session purge failed"),
        }
        match Throttle::new(&store).purge(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "ended throttle runs removed"),
            Err(e) => tracing::warn!(error = %e, "throttle purge failed"),
        }
        // The front door's expired rows count for nothing already; each start deletes a
        // few, this the rest (in batches, under the starts' lock).
        for door in [FrontDoor::Parked, FrontDoor::Ceremonies] {
            match door.sweep(&store, now).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, table = door.table(), "expired rows removed"),
                Err(e) => {
                    tracing::warn!(error = %e, table = door.table(), "front-door sweep failed")
                }
            }
        }
        match latchkey_idp::sso::purge_seen_requests(&store, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired request IDs removed"),
            Err(e) => tracing::warn!(error = %e, "request ID purge failed"),
        }
        // Used and expired links are kept a day, so a page can still say "already used"
        // or "expired" rather than "unknown" to someone who clicks late.
        match store
            .enrollment()
            .purge(now - time::Duration::days(1))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "old invitation and reset links removed"),
            Err(e) => tracing::warn!(error = %e, "link purge failed"),
        }
        if let Some(keep) = audit_retention {
            match store.audit().purge_before(now - keep).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(purged = n, "audit events past [audit] retain_days removed")
                }
                Err(e) => tracing::warn!(error = %e, "audit purge failed"),
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
