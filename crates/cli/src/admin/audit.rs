//! `latchkey audit`: read the audit log.

use clap::Args;
use latchkey_idp::audit::AuditFilter;
use latchkey_idp::{Clock as _, SystemClock};
use latchkey_idp_web::api::audit::AuditEventDto;

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
    #[arg(long, value_name = "OBJECT", conflicts_with = "app")]
    target: Option<String>,
    /// Only events by or about this user (username, e-mail or ID): sign-ins, assertions
    /// issued to them, denials, and changes made to their account.
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Only events about this application (entity ID, name or ID): assertions issued,
    /// denials, configuration changes.
    #[arg(long, value_name = "APP")]
    app: Option<String>,
    /// Only events at or after this time: RFC 3339 (2026-11-28T09:00:00Z) or an age such
    /// as 30m, 12h, 7d.
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<time::OffsetDateTime>,
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

/// `--since`: an RFC 3339 instant, or an age (`90s`, `30m`, `12h`, `7d`) back from now.
fn parse_since(text: &str) -> Result<time::OffsetDateTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| {
        format!("{text:?} is neither an RFC 3339 time nor an age like 30m, 12h, 7d")
    })?;
    let age = match unit {
        "s" => time::Duration::seconds(n),
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return Err(format!("{text:?}: the age's unit must be s, m, h or d")),
    };
    Ok(SystemClock.now() - age)
}

pub async fn run(ctx: &Context, args: AuditArgs) -> anyhow::Result<()> {
    let target_id = match (&args.target, &args.app) {
        (Some(t), _) => Some(target_id(ctx, t).await?),
        (None, Some(a)) => Some(ctx.store.apps().lookup(a).await?.id.to_string()),
        (None, None) => None,
    };
    let user_id = match &args.user {
        Some(u) => Some(ctx.store.users().lookup(u).await?.id.to_string()),
        None => None,
    };
    let events = ctx
        .store
        .audit()
        .list(&AuditFilter {
            actor: args.actor,
            action: args.action,
            target_id,
            user_id,
            since: args.since,
            until: None,
            before_seq: None,
            limit: Some(args.limit),
        })
        .await?;
    if args.json {
        let shaped: Vec<AuditEventDto> = events.iter().cloned().map(AuditEventDto::from).collect();
        return output::json(&shaped);
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                output::when(e.at),
                // The name people read; the label only where no name was recorded.
                e.actor_name.clone().unwrap_or_else(|| e.actor.clone()),
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
