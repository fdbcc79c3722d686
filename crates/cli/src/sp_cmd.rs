//! `latchkey sp ...`: SP toolkit tools.
//!
//! `latchkey sp plan --config SP.toml RESPONSE` runs a Response through the same checks as the
//! ACS (every profile rule, a fresh replay cache) and prints the JIT provisioning plan as JSON,
//! without applying it.

use latchkey_idp::{Clock as _, SystemClock};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::stdout::outln;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use latchkey_sp::ServiceProvider;
use latchkey_sp::jit::JitEngine;
use latchkey_sp::replay::MemoryReplayCache;
use latchkey_sp::settings::SpConfig;
use latchkey_sp::store::{Database, SqlAccountStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// SP toolkit commands.
#[derive(Debug, Subcommand)]
pub enum SpCommand {
    /// Print the provisioning plan a Response would get, as JSON, without applying it.
    Plan(PlanArgs),
}

/// Options of `latchkey sp plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// SP settings (TOML) with a [provisioning] contract.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The Response: a file (`-` for stdin) holding its XML or its base64 POST value.
    response: PathBuf,
    /// The AuthnRequest ID it answers (omit for an IdP-initiated response).
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// Check as of this instant instead of now (RFC 3339), for recorded responses.
    #[arg(long, value_name = "RFC3339")]
    now: Option<String>,
    /// Plan against the accounts in this database (sqlx URL); default: an empty one.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

pub fn run(cmd: SpCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cmd {
        SpCommand::Plan(args) => runtime.block_on(plan(args)),
    }
}

async fn plan(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .with_context(|| format!("--now {t:?} is not an RFC 3339 time"))?,
        None => SystemClock.now(),
    };
    let config = SpConfig::load(&args.config)?;
    let Some(contract) = config.provisioning.clone() else {
        bail!("{} has no [provisioning] contract", args.config.display());
    };
    let xml = read_response(&args.response)?;
    let idp = latchkey_sp::fetch::load_idp(&config, now).await?;
    let key = config.load_key()?;
    let sp = ServiceProvider::new(&config, key, idp)?;
    let url = args.database.as_deref().unwrap_or("sqlite::memory:");
    let db = Database::connect(url)
        .await
        .with_context(|| format!("cannot open {url}"))?;
    let engine = JitEngine::new(contract, SqlAccountStore::new(db));
    let accepted = sp
        .verify_xml(&xml, args.request_id.as_deref(), None, now)
        .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?
        .accept(&MemoryReplayCache::new(1), now)
        .await?;
    let plan = accepted.plan(&engine, now).await?;
    let out = serde_json::json!({ "login": accepted.login(), "plan": plan });
    outln!("{}", serde_json::to_string_pretty(&out)?)?;
    Ok(ExitCode::SUCCESS)
}

/// The Response XML from a file or stdin, decoding base64 when it is not XML already.
fn read_response(path: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        return Ok(text);
    }
    latchkey_sp::provider::decode_post(trimmed.trim_end())
        .context("RESPONSE is neither XML nor base64-encoded XML")
}
