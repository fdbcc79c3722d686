//! `latchkey audit`: read the audit log.

use clap::Args;
use latchkey_idp::audit::AuditFilter;

use super::output::{self, outln};
use super::{Context, StoreArgs};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub(super) store: StoreArgs,
    /// Only events by this actor (e.g. cli:root, user:<id>, system).
    #[arg(long)]
    actor: Option<String>,
    /// Only events with this action (e.g. user.create, app.assign).
    #[arg(long)]
    action: Option<String>,
    /// Only events about this user, group or application (name, e-mail, entity ID or ID).
    #[arg(long, value_name = "OBJECT")]
    target: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON (with the before/after state of each change).
    #[arg(long)]
    json: bool,
}

/// Resolves `--target` to an internal ID: users first, then groups, then applications.
async fn target_id(ctx: &Context, reference: &str) -> anyhow::Result<String> {
    if let Ok(user) = ctx.store.users().lookup(reference).await {
        return Ok(user.id.to_string());
    }
    if let Ok(group) = ctx.store.groups().lookup(reference).await {
        return Ok(group.id.to_string());
    }
    if let Ok(app) = ctx.store.apps().lookup(reference).await {
        return Ok(app.id.to_string());
    }
    // Deleted objects can still be looked for by their ID.
    Ok(reference.to_string())
}

pub async fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    let target_id = match &args.target {
        Some(t) => Some(target_id(ctx, t).await?),
        None => None,
    };
    let events = ctx
        .store
        .audit()
        .list(&AuditFilter {
            actor: args.actor,
            action: args.action,
            target_id,
            since: None,
            before_seq: None,
            limit: Some(args.limit),
        })
        .await?;
    if args.json {
        return output::json(&events);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                output::when(e.at),
                e.actor.clone(),
                e.action.clone(),
                output::opt(&e.target_name),
            ]
        })
        .collect();
    if rows.is_empty() {
        return outln!("no matching events");
    }
    output::table(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET"], &rows)
}
