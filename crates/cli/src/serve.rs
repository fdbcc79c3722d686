//! `latchkey serve`: the SSO server (sign-in, SAML endpoints, portal) and the admin API.
//!
//! Reads the same configuration as the admin commands (`--config`, `$LATCHKEY_CONFIG`,
//! `./latchkey.toml`), plus its `[server]` section; generates the first signing key on first
//! start, under `<data_dir>/keys` or in the database (`[keys] store`); with the database
//! store, a task picks up rollovers done on other nodes. Logs go to stderr (`RUST_LOG` filters;
//! `LATCHKEY_LOG_FORMAT=json` for JSON lines). SIGINT/SIGTERM stop accepting connections and
//! let requests in flight finish.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use latchkey_idp::config::ProcessEnv;
use latchkey_idp::session::{Sessions, Throttle};
use latchkey_idp::sso::IdpKeys;
use latchkey_idp::web::{self, ServerSettings, WebState};
use latchkey_idp::{Config, Store};
use tracing_subscriber::EnvFilter;

/// Options of `latchkey serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml, else built-in).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding `[server] listen` and $LATCHKEY_LISTEN.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("LATCHKEY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("warning: logging not initialised: {e}");
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let mut settings = ServerSettings::resolve(&config, &ProcessEnv)?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    let store = Store::open(&config).await?;
    let keys = IdpKeys::from_config(
        &config,
        &ProcessEnv,
        &store,
        settings.key_algorithm,
        time::OffsetDateTime::now_utc(),
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
    let state = WebState::new(store.clone(), settings, keys);
    let app = web::router(state).merge(latchkey_idp::api::router(
        latchkey_idp::api::ApiState::new(store.clone()),
    ));

    let janitor = tokio::spawn(purge_sessions(store.clone()));
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
    if let Some(task) = key_refresh {
        task.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Every ten minutes: deletes sessions past their absolute expiry, and throttle runs that
/// ended (so names typed once do not pile up).
async fn purge_sessions(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = time::OffsetDateTime::now_utc();
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
