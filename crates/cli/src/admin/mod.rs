//! Admin commands that work directly on the store the config names (no server needed).
//!
//! The store is found from `--config FILE`, else `$LATCHKEY_CONFIG`, else `./latchkey.toml`,
//! else built-in defaults (SQLite under `./latchkey-data/`); `LATCHKEY_DATABASE_URL` or
//! `DATABASE_URL` override the database. Every change is recorded in the audit log as
//! `cli:<os user>@<host>`.

mod app;
mod audit;
mod group;
mod mfa;
mod output;
mod role;
mod scim;
mod transfer;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use latchkey_idp::{Actor, Config, Store};

use self::output::outln;

/// The commands `main` flattens into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage directory users.
    User(Box<Scoped<user::UserCommand>>),
    /// Manage groups and their members.
    Group(Scoped<group::GroupCommand>),
    /// Manage applications (SAML service providers) and who may use them.
    App(Box<Scoped<app::AppCommand>>),
    /// Import users from a file.
    Import(Scoped<transfer::ImportCommand>),
    /// Write users, groups and applications as JSON (password hashes are never exported).
    Export(transfer::ExportArgs),
    /// Grant, revoke and list console roles (admin, helpdesk, auditor).
    Role(Scoped<role::RoleCommand>),
    /// Show the audit log (newest first).
    Audit(audit::AuditArgs),
    /// Show which store the configuration names and its schema version.
    StoreInfo(StoreArgs),
}

/// Where the store is; accepted before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml, else built-in).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// A command group plus the store options.
#[derive(Debug, Args)]
pub struct Scoped<C: Subcommand> {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: C,
}

/// What every admin command works with.
pub(crate) struct Context {
    pub store: Store,
    pub actor: Actor,
    /// The configuration the store came from (base URL, link lifetimes, `[smtp]`).
    pub config: Config,
}

impl Context {
    async fn open(args: &StoreArgs) -> anyhow::Result<Context> {
        let config = Config::load(args.config.as_deref())?;
        let store = Store::open(&config).await?;
        Ok(Context {
            store,
            actor: cli_actor(),
            config,
        })
    }
}

/// The administrator at this terminal, as every command that changes something records
/// them: `<os user>@<host>`, so a shared admin account on several machines still tells
/// the log where a change came from.
/// A change refused as `last_admin`, said with its code and the operator's way past it: the
/// console and API always refuse it; on the server, `role revoke --force` takes the role
/// anyway (and `role grant` lets someone in again).
pub(crate) fn last_admin_hint<T>(result: latchkey_idp::Result<T>) -> anyhow::Result<T> {
    result.map_err(|e| match e {
        latchkey_idp::Error::LastAdmin => anyhow::Error::new(e).context(
            "last_admin (to do it on purpose: latchkey role revoke admin --user NAME --force, \
             then this again)",
        ),
        e => e.into(),
    })
}

pub(crate) fn cli_actor() -> Actor {
    Actor::cli(&format!("{}@{}", os_user(), host_name()))
}

/// The OS account: `$USER`, else `$LOGNAME`, else the numeric uid of this process (never
/// a made-up name such as `unknown`).
fn os_user() -> String {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if let Some(user) = from_env("USER").or_else(|| from_env("LOGNAME")) {
        return user;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            return format!("uid{}", meta.uid());
        }
    }
    "unknown-user".into()
}

/// The machine's name: the kernel's (`/proc/sys/kernel/hostname`), `/etc/hostname`, or
/// `$HOSTNAME`.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

pub fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    // The catalogue is compiled in: listing it must not open (or create) a store.
    if let AdminCommand::App(s) = &cmd
        && let app::AppCommand::Templates { json } = s.command
    {
        return crate::catalog_cmd::run(crate::catalog_cmd::TemplateCommand::List { json });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let store_args = match &cmd {
            AdminCommand::User(s) => s.store.clone(),
            AdminCommand::Group(s) => s.store.clone(),
            AdminCommand::Role(s) => s.store.clone(),
            AdminCommand::App(s) => s.store.clone(),
            AdminCommand::Import(s) => s.store.clone(),
            AdminCommand::Export(e) => e.store.clone(),
            AdminCommand::Audit(a) => a.store.clone(),
            AdminCommand::StoreInfo(s) => s.clone(),
        };
        let ctx = Context::open(&store_args).await?;
        let result = match cmd {
            AdminCommand::User(s) => user::run(&ctx, s.command).await,
            AdminCommand::Group(s) => group::run(&ctx, s.command).await,
            AdminCommand::Role(s) => role::run(&ctx, s.command).await,
            AdminCommand::App(s) => app::run(&ctx, s.command).await,
            AdminCommand::Import(s) => transfer::import(&ctx, s.command).await,
            AdminCommand::Export(e) => transfer::export(&ctx, e).await,
            AdminCommand::Audit(a) => audit::run(&ctx, a).await,
            AdminCommand::StoreInfo(_) => store_info(&ctx).await,
        };
        ctx.store.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

async fn store_info(ctx: &Context) -> anyhow::Result<()> {
    outln!("backend: {}", ctx.store.backend().name())?;
    outln!("schema version: {}", ctx.store.schema_version().await?)?;
    Ok(())
}
