//! `latchkey import ...` and `latchkey export`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::output::outln;
use super::{Context, StoreArgs, output};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import users from CSV: all rows or none; re-running the same file changes nothing.
    ///
    /// Columns: username, email (required); given_name, family_name, display_name,
    /// status (active|suspended), groups (existing group names separated by ';');
    /// any other column is a custom attribute.
    Users {
        /// The CSV file (with a header row).
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub(super) store: StoreArgs,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub async fn import(ctx: &Context, cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Users { file, json } => {
            let reader = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let report = ctx
                .store
                .users()
                .import_csv(&ctx.actor, std::io::BufReader::new(reader))
                .await
                .with_context(|| file.display().to_string())?;
            if json {
                return output::json(&report);
            }
            outln!(
                "created {}, updated {}, unchanged {}, memberships added {}",
                report.created.len(),
                report.updated.len(),
                report.unchanged,
                report.memberships_added
            )?;
        }
    }
    Ok(())
}

pub async fn export(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let export = ctx.store.export().await?;
    match args.output {
        None => output::json(&export),
        Some(path) => {
            let text = serde_json::to_string_pretty(&export)? + "\n";
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(())
        }
    }
}
