//! `latchkey demo-app wiki|helpdesk --config FILE`: one of the two demo applications built on
//! the SP toolkit (see `latchkey_demo_apps::config` for the file). Logs go to stderr
//! (`RUST_LOG` filters) through [`crate::logging`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use latchkey_demo_apps::{AppKind, DemoConfig};

use crate::logging;

/// Which demo app.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DemoAppName {
    /// The wiki: e-mail NameID, reader/editor/admin from groups.
    Wiki,
    /// The helpdesk: persistent NameID, agent for the support department.
    Helpdesk,
}

/// Options of `latchkey demo-app`.
#[derive(Debug, Args)]
pub struct DemoAppArgs {
    /// Which app to run.
    app: DemoAppName,
    /// The app's TOML configuration (listen, database, [sp] settings).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

pub fn run(args: DemoAppArgs) -> anyhow::Result<ExitCode> {
    // Held to the end of `run`, so queued lines are flushed on the way out.
    let _logging = logging::init("info,sqlx=warn");
    let config = DemoConfig::load(&args.config)
        .with_context(|| format!("cannot load {}", args.config.display()))?;
    let kind = match args.app {
        DemoAppName::Wiki => AppKind::Wiki,
        DemoAppName::Helpdesk => AppKind::Helpdesk,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(latchkey_demo_apps::run(kind, config))?;
    Ok(ExitCode::SUCCESS)
}
