//! `latchkey app scim ...` and `latchkey app sync`: the IdP's SCIM client per application.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use latchkey_idp::config::ProcessEnv;
use latchkey_idp::provisioning::client::ClientSettings;
use latchkey_idp::provisioning::{ConnectionStatus, NewConnection, OnRemove, sync};
use latchkey_idp_web::api::scim::{PendingChangeDto, ScimStatusDto};
use zeroize::Zeroizing;

use super::Context;
use super::output::{self, outln};

/// The largest token file read (a bearer token is a few hundred bytes).
const MAX_TOKEN_FILE: u64 = 16 * 1024;

#[derive(Debug, Subcommand)]
pub enum ScimCommand {
    /// Connect the application to its SCIM server (or change the connection); every user
    /// it should hold is queued for delivery. The token is sealed and never shown again.
    Set {
        /// Entity ID, ID or name.
        app: String,
        /// The SCIM base URL, e.g. https://wiki.example.org/scim/v2 (http only to a
        /// loopback host).
        #[arg(long = "url", value_name = "URL")]
        url: String,
        /// A file holding the bearer token the application accepts (one line).
        #[arg(long = "token-file", value_name = "FILE")]
        token_file: PathBuf,
        /// What to do to a user who is unassigned, suspended or deleted: deactivate
        /// (active=false) or delete.
        #[arg(
            long = "on-remove",
            value_name = "deactivate|delete",
            default_value = "deactivate"
        )]
        on_remove: String,
    },
    /// Show the connection and its delivery state: last success, queue length, last error.
    Show {
        /// Entity ID, ID or name.
        app: String,
        /// Print JSON (the API's shape: GET /api/v1/apps/{id}/scim).
        #[arg(long)]
        json: bool,
    },
    /// Disconnect the application (its queue is dropped; its users stay as they are there).
    /// Refused while removals wait in the queue, unless --force.
    Remove {
        /// Entity ID, ID or name.
        app: String,
        /// Drop removals not yet delivered too (those users keep their access there; the
        /// audit event names them).
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(ctx: &Context, cmd: ScimCommand) -> anyhow::Result<()> {
    let apps = ctx.store.apps();
    let provisioning = ctx.store.provisioning();
    match cmd {
        ScimCommand::Set {
            app,
            url,
            token_file,
            on_remove,
        } => {
            let app = apps.lookup(&app).await?;
            let on_remove: OnRemove = on_remove.parse()?;
            let token = read_token(&token_file)?;
            let kek = latchkey_idp::mfa::totp::sealing_kek(&ctx.config, &ProcessEnv)
                .context("cannot load the key that seals SCIM tokens")?;
            let status = provisioning
                .connect(
                    &ctx.actor,
                    &kek,
                    app.id,
                    NewConnection {
                        base_url: url,
                        token,
                        on_remove,
                    },
                )
                .await?;
            outln!(
                "connected {} to {} ({} user(s) queued; on remove: {})",
                app.settings.entity_id,
                status.base_url,
                status.queue_length,
                status.on_remove
            )?;
        }
        ScimCommand::Show { app, json } => {
            let app = apps.lookup(&app).await?;
            let Some(status) = provisioning.status(app.id).await? else {
                bail!(
                    latchkey_idp::provisioning::ProvisioningError::NotConnected {
                        app: app.settings.entity_id
                    }
                );
            };
            if json {
                return output::json(&ScimStatusDto::from(status));
            }
            print_status(&status)?;
        }
        ScimCommand::Remove { app, force } => {
            let app = apps.lookup(&app).await?;
            let dropped = provisioning
                .disconnect(&ctx.actor, app.id, force)
                .await
                .map_err(|e| match e {
                    e @ latchkey_idp::provisioning::ProvisioningError::RemovalsPending {
                        ..
                    } => anyhow::Error::new(e).context(format!(
                        "scim_removals_pending (to drop them anyway: latchkey app scim \
                             remove {} --force)",
                        app.settings.entity_id
                    )),
                    e => e.into(),
                })?;
            outln!("disconnected {} from SCIM", app.settings.entity_id)?;
            if dropped.users > 0 {
                let named: Vec<&str> = dropped.named.iter().map(|(_, n)| n.as_str()).collect();
                outln!(
                    "dropped the undelivered removal(s) of {} user(s), who keep their access there: {}{}",
                    dropped.users,
                    named.join(", "),
                    if dropped.users > named.len() as u64 {
                        ", ..."
                    } else {
                        ""
                    }
                )?;
            }
        }
    }
    Ok(())
}

/// `latchkey app sync APP [--dry-run]`.
pub async fn sync(ctx: &Context, app: &str, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let app = ctx.store.apps().lookup(app).await?;
    let kek = latchkey_idp::mfa::totp::sealing_kek(&ctx.config, &ProcessEnv)
        .context("cannot load the key that seals SCIM tokens")?;
    let target = ctx
        .store
        .provisioning()
        .target(&kek, app.id, &ClientSettings::default())
        .await?;
    let report = sync::run(&ctx.store, &target, &app, dry_run).await?;
    if json {
        return output::json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .differences
        .iter()
        .map(|d| {
            let state = match (&d.error, report.dry_run) {
                (_, true) => "planned".to_owned(),
                (None, false) => "done".to_owned(),
                (Some(e), false) => format!("failed: {e}"),
            };
            vec![d.action.to_owned(), d.user_name.clone(), state]
        })
        .collect();
    if !rows.is_empty() {
        output::table(&["ACTION", "USER", "STATE"], &rows)?;
    }
    outln!(
        "{}: {} remote user(s), {} wanted, {} unchanged, {} difference(s), {} not from this directory (left alone){}",
        app.settings.entity_id,
        report.remote_users,
        report.wanted_users,
        report.unchanged,
        report.differences.len(),
        report.foreign,
        if dry_run {
            "; dry run, nothing sent"
        } else {
            ""
        }
    )?;
    if report.differences.iter().any(|d| d.error.is_some()) {
        bail!("some differences could not be applied (see above)");
    }
    Ok(())
}

/// `latchkey user provisioning USER [--json]`.
pub async fn user_pending(ctx: &Context, user: &str, json: bool) -> anyhow::Result<()> {
    let user = ctx.store.users().lookup(user).await?;
    let pending = ctx.store.provisioning().pending_for_user(user.id).await?;
    if json {
        let dtos: Vec<PendingChangeDto> = pending.into_iter().map(Into::into).collect();
        return output::json(&dtos);
    }
    if pending.is_empty() {
        outln!("{}: nothing waiting at any application", user.username)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = pending
        .iter()
        .map(|p| {
            vec![
                p.app.clone(),
                p.kind.as_str().to_owned(),
                output::when(p.since),
                p.attempts.to_string(),
                p.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["APP", "PENDING", "SINCE", "TRIES", "LAST ERROR"], &rows)
}

fn print_status(s: &ConnectionStatus) -> anyhow::Result<()> {
    let when = |t: Option<time::OffsetDateTime>| t.map(output::when).unwrap_or_default();
    output::fields(&[
        ("scim url", s.base_url.clone()),
        ("on remove", s.on_remove.to_string()),
        ("queue length", s.queue_length.to_string()),
        ("oldest queued", when(s.oldest_queued_at)),
        ("last success", when(s.last_success_at)),
        ("last error", s.last_error.clone().unwrap_or_default()),
        ("last error at", when(s.last_error_at)),
        ("last sync", when(s.last_sync_at)),
    ])
}

fn read_token(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > MAX_TOKEN_FILE {
        bail!("{} is larger than {MAX_TOKEN_FILE} bytes", path.display());
    }
    Ok(Zeroizing::new(text.trim().to_owned()))
}
