//! `latchkey group ...`

use clap::Subcommand;
use latchkey_idp::directory::{NewGroup, UserFilter};
use latchkey_idp_web::api::groups::GroupDto;

use super::Context;
use super::output;
use super::output::outln;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Add {
        /// Group name (unique, any case).
        name: String,
        /// What the group is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List groups.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (its members stay; applications assigned to it lose it).
    Delete {
        /// Group name or ID.
        group: String,
    },
    /// Rename a group or change its settings.
    #[command(group(
        clap::ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["name", "require_mfa"])
    ))]
    Set {
        /// Group name or ID.
        group: String,
        /// A new name (applications connected over SCIM rename their group of the old
        /// name too).
        #[arg(long)]
        name: Option<String>,
        /// Whether every member needs a second factor to sign in.
        #[arg(long, value_name = "BOOL")]
        require_mfa: Option<bool>,
    },
    /// Manage a group's members.
    #[command(subcommand)]
    Members(MembersCommand),
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Add users to a group.
    Add {
        /// Group name or ID.
        group: String,
        /// Usernames, e-mail addresses or IDs.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove users from a group.
    Remove {
        /// Group name or ID.
        group: String,
        /// Usernames, e-mail addresses or IDs.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// List a group's members.
    List {
        /// Group name or ID.
        group: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, cmd: GroupCommand) -> anyhow::Result<()> {
    let groups = ctx.store.groups();
    match cmd {
        GroupCommand::Add { name, description } => {
            let group = groups
                .create(&ctx.actor, NewGroup { name, description })
                .await?;
            outln!("created group {} ({})", group.name, group.id)?;
        }
        GroupCommand::List { json } => {
            let all = groups.list().await?;
            if json {
                let shaped: Vec<GroupDto> = all.iter().cloned().map(GroupDto::from).collect();
                return output::json(&shaped);
            }
            let mut rows = Vec::with_capacity(all.len());
            for g in &all {
                let members = ctx.store.users().count(&members_of(g.id)).await?;
                rows.push(vec![
                    g.name.clone(),
                    members.to_string(),
                    output::opt(&g.description),
                    g.id.to_string(),
                ]);
            }
            output::table(&["NAME", "MEMBERS", "DESCRIPTION", "ID"], &rows)?;
        }
        GroupCommand::Set {
            group,
            name,
            require_mfa,
        } => {
            let mut group = groups.lookup(&group).await?;
            if let Some(name) = name {
                let before = group.name.clone();
                group = groups.rename(&ctx.actor, group.id, &name).await?;
                outln!("renamed group {before} to {}", group.name)?;
            }
            if let Some(require) = require_mfa {
                latchkey_idp::mfa::policy::MfaPolicy::new(&ctx.store)
                    .set_group(&ctx.actor, &group, require)
                    .await?;
                outln!(
                    "members of {} {} a second factor",
                    group.name,
                    if require {
                        "now need"
                    } else {
                        "no longer need"
                    }
                )?;
            }
        }
        GroupCommand::Delete { group } => {
            let group = groups.lookup(&group).await?;
            super::last_admin_hint(groups.delete(&ctx.actor, group.id).await)?;
            outln!("deleted group {}", group.name)?;
        }
        GroupCommand::Members(MembersCommand::Add { group, users }) => {
            let group = groups.lookup(&group).await?;
            for user in users {
                let user = ctx.store.users().lookup(&user).await?;
                groups.add_member(&ctx.actor, group.id, user.id).await?;
                outln!("added {} to {}", user.username, group.name)?;
            }
        }
        GroupCommand::Members(MembersCommand::Remove { group, users }) => {
            let group = groups.lookup(&group).await?;
            for user in users {
                let user = ctx.store.users().lookup(&user).await?;
                super::last_admin_hint(groups.remove_member(&ctx.actor, group.id, user.id).await)?;
                outln!("removed {} from {}", user.username, group.name)?;
            }
        }
        GroupCommand::Members(MembersCommand::List { group, json }) => {
            // Streamed a page at a time, as `user list` (a group of any size in constant
            // memory), in the same shape.
            let group = groups.lookup(&group).await?;
            super::user::stream(ctx.store.users(), &members_of(group.id), json).await?;
        }
    }
    Ok(())
}

/// The listing filter of a group's members.
fn members_of(group: latchkey_idp::ids::GroupId) -> UserFilter {
    UserFilter {
        group: Some(group),
        ..UserFilter::default()
    }
}
