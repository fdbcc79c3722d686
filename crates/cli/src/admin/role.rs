//! `latchkey role ...`: console roles (admin, helpdesk, auditor) for users and groups.

use clap::{Args, Subcommand};
use latchkey_idp::console::{Holder, Role};
use latchkey_idp_web::api::roles::RoleGrantDto;

use super::Context;
use super::output;
use super::output::outln;

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Grant a console role to a user or to every member of a group.
    Grant(GrantArgs),
    /// Revoke a role granted to a user directly, or to a group. Taking admin from the last
    /// active user holding it is refused (`last_admin`) unless --force is given.
    Revoke(RevokeArgs),
    /// List every grant.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// admin, helpdesk or auditor.
    role: String,
    /// Username, e-mail address or ID.
    #[arg(long, conflicts_with = "group", required_unless_present = "group")]
    user: Option<String>,
    /// Group name or ID.
    #[arg(long)]
    group: Option<String>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    grant: GrantArgs,
    /// Revoke even if this leaves no active console admin (audited as forced). Only here, on
    /// the server, where `latchkey role grant` can let someone in again; the console and the
    /// API always refuse it.
    #[arg(long)]
    force: bool,
}

async fn holder(ctx: &Context, args: &GrantArgs) -> anyhow::Result<(Holder, String)> {
    match (&args.user, &args.group) {
        (Some(user), _) => {
            let user = ctx.store.users().lookup(user).await?;
            Ok((Holder::User(user.id), format!("user {}", user.username)))
        }
        (None, Some(group)) => {
            let group = ctx.store.groups().lookup(group).await?;
            Ok((Holder::Group(group.id), format!("group {}", group.name)))
        }
        (None, None) => anyhow::bail!("name a --user or a --group"),
    }
}

pub async fn run(ctx: &Context, cmd: RoleCommand) -> anyhow::Result<()> {
    let roles = ctx.store.roles();
    match cmd {
        RoleCommand::Grant(args) => {
            let role = Role::parse(&args.role)?;
            let (holder, named) = holder(ctx, &args).await?;
            roles.grant(&ctx.actor, role, holder).await?;
            outln!("granted {role} to {named}")?;
        }
        RoleCommand::Revoke(RevokeArgs { grant: args, force }) => {
            let role = Role::parse(&args.role)?;
            let (holder, named) = holder(ctx, &args).await?;
            if force {
                roles.revoke_forced(&ctx.actor, role, holder).await?;
            } else {
                super::last_admin_hint(roles.revoke(&ctx.actor, role, holder).await)?;
            }
            outln!("revoked {role} from {named}")?;
        }
        RoleCommand::List { json } => {
            let grants: Vec<RoleGrantDto> = roles
                .list()
                .await?
                .into_iter()
                .map(RoleGrantDto::from)
                .collect();
            if json {
                return output::json(&grants);
            }
            let rows: Vec<Vec<String>> = grants
                .into_iter()
                .map(|g| vec![g.role, g.holder_kind, g.holder_name])
                .collect();
            output::table(&["ROLE", "KIND", "HOLDER"], &rows)?;
        }
    }
    Ok(())
}
