//! `latchkey token ...`: bearer tokens for the admin REST API (`--scope api`, the default;
//! `--scope api_read` reads only) and for the SCIM server (`--scope scim`); neither kind
//! reaches the other's endpoints.
//!
//! Works directly on the store the configuration names, like the other admin commands;
//! creating and revoking are recorded in the audit log as `cli:<os user>`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use latchkey_idp::tokens::{ApiTokens, TokenInfo, TokenScope};
use latchkey_idp::{Actor, Config, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `latchkey token` with its options.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Configuration file (default: $LATCHKEY_CONFIG, else ./latchkey.toml, else built-in).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once and cannot be shown again.
    Create {
        /// What the token is for (e.g. terraform, hr-sync).
        name: String,
        /// What it may call: `api` (/api/v1), `api_read` (/api/v1, GET only: monitoring,
        /// reports, a SIEM reading the audit) or `scim` (/scim/v2 only, for an HR feed).
        #[arg(long, default_value = "api", value_parser = ["api", "api_read", "scim"])]
        scope: String,
        /// Print JSON (the token under "token").
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id or name; requests with it fail from then on.
    Revoke {
        /// Token id or name.
        token: String,
    },
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let config = Config::load(args.config.as_deref())?;
        let store = Store::open(&config).await?;
        let result = execute(&store, args.command).await;
        store.close().await;
        result.map(|()| ExitCode::SUCCESS)
    })
}

fn actor() -> Actor {
    crate::admin::cli_actor()
}

async fn execute(store: &Store, cmd: TokenCommand) -> anyhow::Result<()> {
    let tokens = ApiTokens::new(store);
    let mut out = std::io::stdout().lock();
    match cmd {
        TokenCommand::Create { name, scope, json } => {
            let scope = TokenScope::parse(&scope)?;
            let (info, issued) = tokens.create_scoped(&actor(), &name, scope).await?;
            if json {
                let value = serde_json::json!({"token": issued.expose(), "info": info});
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(out, "{}", issued.expose())?;
                let mut err = std::io::stderr().lock();
                writeln!(
                    err,
                    "token {} ({}, scope {}) created; it is shown only this once. Use it as \
                     `Authorization: Bearer <token>`.",
                    info.id,
                    info.name,
                    info.scope.as_str()
                )?;
            }
        }
        TokenCommand::List { json } => {
            let all = tokens.list().await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
            } else {
                table(&mut out, &all)?;
            }
        }
        TokenCommand::Revoke { token } => {
            let info = tokens.revoke(&actor(), &token).await?;
            writeln!(out, "token {} ({}) revoked", info.id, info.name)?;
        }
    }
    Ok(())
}

fn when(t: Option<OffsetDateTime>) -> String {
    // Whole seconds: enough to tell keys apart, and the columns stay aligned.
    t.and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

fn table(out: &mut impl Write, all: &[TokenInfo]) -> anyhow::Result<()> {
    if all.is_empty() {
        writeln!(
            out,
            "no API tokens (create one with `latchkey token create NAME`)"
        )?;
        return Ok(());
    }
    let name_w = all
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<16}  {:<name_w$}  {:<5}  {:<8}  {:<20}  LAST USED",
        "ID", "NAME", "SCOPE", "STATUS", "CREATED"
    )?;
    for t in all {
        let status = if t.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        writeln!(
            out,
            "{:<16}  {:<name_w$}  {:<5}  {:<8}  {:<20}  {}",
            t.id,
            t.name,
            t.scope.as_str(),
            status,
            when(Some(t.created_at)),
            when(t.last_used_at)
        )?;
    }
    Ok(())
}
