//! `latchkey user ...`

use latchkey_idp_web::api::users::UserDto;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use latchkey_idp::console::{Holder, Role};
use latchkey_idp::directory::{AttributeValue, NewUser, User, UserPatch, UserStatus};
use latchkey_idp::password::Password;
use serde::Serialize;

use super::Context;
use super::output::outln;
use super::output::{self, opt};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Add {
        /// Login name (letters, digits, . _ - @ +).
        username: String,
        /// E-mail address.
        #[arg(long)]
        email: String,
        /// Given (first) name.
        #[arg(long)]
        given_name: Option<String>,
        /// Family (last) name.
        #[arg(long)]
        family_name: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
        /// Custom attribute KEY=VALUE; repeat a key for a list.
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
        /// Create the user suspended.
        #[arg(long)]
        suspended: bool,
        /// Read an initial password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Grant a console role (admin, helpdesk, auditor); repeatable. A fresh install's
        /// first admin is made this way.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// List users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one user (by username, e-mail or ID) with their groups.
    Show {
        /// Username, e-mail address or ID.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What still waits for the user at applications over SCIM: removals and updates not
    /// yet delivered, per application, with their age, tries and last error.
    Provisioning {
        /// Username, e-mail address or ID.
        user: String,
        /// Print JSON (the API's shape: GET /api/v1/users/{id}/provisioning).
        #[arg(long)]
        json: bool,
    },
    /// Change a user's fields (an empty value clears an optional name).
    Set {
        /// Username, e-mail address or ID.
        user: String,
        /// New login name.
        #[arg(long)]
        username: Option<String>,
        /// New e-mail address.
        #[arg(long)]
        email: Option<String>,
        /// New given name ("" clears it).
        #[arg(long)]
        given_name: Option<String>,
        /// New family name ("" clears it).
        #[arg(long)]
        family_name: Option<String>,
        /// New display name ("" clears it).
        #[arg(long)]
        display_name: Option<String>,
        /// Set custom attribute KEY=VALUE; repeat a key for a list.
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
        /// Remove a custom attribute.
        #[arg(long = "unset-attr", value_name = "KEY")]
        unset: Vec<String>,
    },
    /// Refuse further sign-ins (memberships and identifiers are kept).
    Suspend {
        /// Username, e-mail address or ID.
        user: String,
    },
    /// Allow sign-ins again.
    Resume {
        /// Username, e-mail address or ID.
        user: String,
    },
    /// Delete a user with their memberships and pairwise identifiers.
    Delete {
        /// Username, e-mail address or ID.
        user: String,
    },
    /// Invite a user: a single-use link to set their password, mailed with [smtp], else
    /// printed. A newer invitation replaces the older. If the mail cannot be sent, the link
    /// is printed anyway and the command exits 3.
    Invite {
        /// Username, e-mail address or ID.
        user: String,
        /// How long the link works: 30m, 72h, 7d (default [enrollment] invitation_hours).
        #[arg(long, value_name = "AGE", value_parser = parse_expires)]
        expires: Option<time::Duration>,
        /// Print JSON (the API's answer to POST /api/v1/users/{user}/invitations).
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password, read from stdin (prompted when stdin is a terminal).
    Passwd {
        /// Username, e-mail address or ID.
        user: String,
        /// Read the password from the first line of stdin (the default; accepted for
        /// scripts that spell it out).
        #[arg(long)]
        password_stdin: bool,
        /// Remove the password instead (the user can then only sign in upstream).
        #[arg(long, conflicts_with = "password_stdin")]
        clear: bool,
    },
    /// Second factors of a user: list, reset, require.
    #[command(subcommand)]
    Mfa(super::mfa::UserMfaCommand),
}

/// Parses repeated KEY=VALUE flags; a key given twice becomes a list.
fn attributes(pairs: &[String]) -> anyhow::Result<BTreeMap<String, AttributeValue>> {
    let mut out: BTreeMap<String, AttributeValue> = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid --attr {pair:?}: expected KEY=VALUE");
        };
        let value = value.to_string();
        let merged = match out.remove(key) {
            None => AttributeValue::One(value),
            Some(AttributeValue::One(first)) => AttributeValue::Many(vec![first, value]),
            Some(AttributeValue::Many(mut all)) => {
                all.push(value);
                AttributeValue::Many(all)
            }
        };
        out.insert(key.to_string(), merged);
    }
    Ok(out)
}

/// Reads one password line from stdin, prompting on stderr when a person is typing.
fn read_password() -> anyhow::Result<Password> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("New password (input is visible; pipe it in to hide it): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        bail!("no password on stdin");
    }
    Ok(Password::new(password))
}

/// `--expires`: a positive age with a unit (`90m`, `72h`, `7d`; `30s` for a link meant to
/// lapse at once, as the browser test's expired invitation).
fn parse_expires(text: &str) -> Result<time::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not an age like 30m, 72h or 7d"))?;
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" => Ok(time::Duration::days(n)),
        _ => Err(format!("{text:?}: the unit must be s, m, h or d")),
    }
}

/// Makes an invitation, mails it when `[smtp]` is configured, and prints the link (always
/// when it was not mailed, so the admin can pass it on). A mail that fails is reported and
/// makes the command fail (exit 3) after the link is printed: the invitation exists.
async fn invite(
    ctx: &Context,
    user: &str,
    expires: Option<time::Duration>,
    json: bool,
) -> anyhow::Result<()> {
    use latchkey_idp::mail::{Mail, Mailer};
    use latchkey_idp_web::api::invitations::{InvitationDto, MailOutcome};
    let mailer = Mailer::new(&ctx.config.smtp).context("[smtp]")?;
    let target = ctx.store.users().lookup(user).await?;
    let ttl = expires.unwrap_or_else(|| ctx.config.enrollment.invitation_ttl());
    let link = ctx
        .store
        .enrollment()
        .invite(&ctx.actor, target.id, ttl)
        .await?;
    let base_url = &ctx.config.server.base_url;
    let url = link.url(base_url);
    let (outcome, failure) = if mailer.configured() {
        match mailer.send(&Mail::for_link(&link, &url)).await {
            Ok(()) => (MailOutcome::Sent, None),
            Err(e) => (MailOutcome::Failed, Some(e)),
        }
    } else {
        (MailOutcome::NotConfigured, None)
    };
    let dto = InvitationDto::new(&link, base_url, outcome);
    if json {
        output::json(&dto)?;
    } else {
        match outcome {
            MailOutcome::Sent | MailOutcome::Queued => outln!(
                "invited {} ({}): mailed a link that works once, until {}",
                dto.username,
                dto.email,
                output::when(dto.expires_at)
            )?,
            MailOutcome::NotConfigured | MailOutcome::Failed => {
                outln!(
                    "invited {}: give them this link (it works once, until {}):",
                    dto.username,
                    output::when(dto.expires_at)
                )?;
                outln!("{}", dto.url)?;
            }
        }
    }
    match failure {
        Some(e) => Err(anyhow::Error::new(e).context(format!(
            "the invitation for {} was made but not mailed; pass the link on yourself",
            dto.username
        ))),
        None => Ok(()),
    }
}

/// zxcvbn's advice on stderr when a password being set looks guessable (score below 3 of
/// 4); the policy, not this, decides what is refused.
fn hint(password: &Password, inputs: &[&str]) {
    let hint = latchkey_idp::password::strength(password, inputs);
    if hint.score < 3 {
        let advice = hint
            .warning
            .into_iter()
            .chain(hint.suggestions)
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!(
            "note: this password looks guessable (strength {}/4). {advice}",
            hint.score
        );
    }
}

fn clearable(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| if v.trim().is_empty() { None } else { Some(v) })
}

fn attribute_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::One(v) => v.clone(),
        AttributeValue::Many(vs) => vs.join(", "),
    }
}

fn status(user: &User) -> &'static str {
    match user.status {
        UserStatus::Active => "active",
        UserStatus::Suspended => "suspended",
    }
}

#[derive(Serialize)]
struct UserWithGroups {
    /// The API's shape of a user (`GET /api/v1/users/{user}`).
    #[serde(flatten)]
    user: UserDto,
    groups: Vec<String>,
}

pub async fn run(ctx: &Context, cmd: UserCommand) -> anyhow::Result<()> {
    let users = ctx.store.users();
    match cmd {
        UserCommand::Mfa(cmd) => return super::mfa::run_user(ctx, cmd).await,
        UserCommand::Add {
            username,
            email,
            given_name,
            family_name,
            display_name,
            attributes: attrs,
            suspended,
            password_stdin,
            roles,
        } => {
            // Parsed before anything is written, so a misspelt role creates no user.
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()?;
            let mut new = NewUser::new(username, email);
            new.given_name = given_name;
            new.family_name = family_name;
            new.display_name = display_name;
            new.attributes = attributes(&attrs)?;
            if suspended {
                new.status = UserStatus::Suspended;
            }
            if password_stdin {
                let password = read_password()?;
                hint(&password, &[&new.username, &new.email]);
                new.password = Some(password);
            }
            let user = users.create(&ctx.actor, new).await?;
            outln!("created user {} ({})", user.username, user.id)?;
            for role in roles {
                ctx.store
                    .roles()
                    .grant(&ctx.actor, role, Holder::User(user.id))
                    .await?;
                outln!("granted {role} to user {}", user.username)?;
            }
        }
        UserCommand::List { json } => {
            stream(users, &latchkey_idp::directory::UserFilter::default(), json).await?
        }
        UserCommand::Provisioning { user, json } => {
            return super::scim::user_pending(ctx, &user, json).await;
        }
        UserCommand::Show { user, json } => {
            let user = users.lookup(&user).await?;
            let groups: Vec<String> = ctx
                .store
                .groups()
                .of_user(user.id)
                .await?
                .into_iter()
                .map(|g| g.name)
                .collect();
            if json {
                return output::json(&UserWithGroups {
                    user: UserDto::from(user),
                    groups,
                });
            }
            let mut pairs = vec![
                ("id", user.id.to_string()),
                ("username", user.username.clone()),
                ("email", user.email.clone()),
                ("given name", opt(&user.given_name)),
                ("family name", opt(&user.family_name)),
                ("display name", opt(&user.display_name)),
                ("status", status(&user).to_string()),
                (
                    "password",
                    if user.has_password { "set" } else { "not set" }.to_string(),
                ),
                ("groups", groups.join(", ")),
                ("created", output::when(user.created_at)),
                ("updated", output::when(user.updated_at)),
            ];
            let attrs: Vec<String> = user
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={}", attribute_text(v)))
                .collect();
            pairs.push(("attributes", attrs.join("; ")));
            output::fields(&pairs)?;
        }
        UserCommand::Set {
            user,
            username,
            email,
            given_name,
            family_name,
            display_name,
            attributes: attrs,
            unset,
        } => {
            let target = users.lookup(&user).await?;
            let patch = UserPatch {
                username,
                email,
                given_name: clearable(given_name),
                family_name: clearable(family_name),
                display_name: clearable(display_name),
                set_attributes: attributes(&attrs)?,
                remove_attributes: unset,
                status: None,
            };
            if patch.is_empty() {
                bail!("nothing to change: give at least one option (see --help)");
            }
            let after = super::last_admin_hint(users.update(&ctx.actor, target.id, patch).await)?;
            outln!("updated user {}", after.username)?;
        }
        UserCommand::Suspend { user } => {
            let target = users.lookup(&user).await?;
            super::last_admin_hint(users.suspend(&ctx.actor, target.id).await)?;
            outln!("suspended user {}", target.username)?;
        }
        UserCommand::Resume { user } => {
            let target = users.lookup(&user).await?;
            users.resume(&ctx.actor, target.id).await?;
            outln!("resumed user {}", target.username)?;
        }
        UserCommand::Delete { user } => {
            let target = users.lookup(&user).await?;
            super::last_admin_hint(users.delete(&ctx.actor, target.id).await)?;
            outln!("deleted user {}", target.username)?;
        }
        UserCommand::Invite {
            user,
            expires,
            json,
        } => invite(ctx, &user, expires, json).await?,
        UserCommand::Passwd {
            user,
            password_stdin: _,
            clear,
        } => {
            let target = users.lookup(&user).await?;
            let password = if clear { None } else { Some(read_password()?) };
            if let Some(p) = &password {
                hint(p, &[&target.username, &target.email]);
            }
            users.set_password(&ctx.actor, target.id, password).await?;
            if clear {
                outln!("removed the password of {}", target.username)?;
            } else {
                outln!("set the password of {}", target.username)?;
            }
        }
    }
    Ok(())
}

/// Users fetched per page while `user list` streams: large enough that a walk of 100,000
/// users is 200 statements, small enough that memory stays flat.
const LIST_PAGE: u32 = 500;

/// Prints every user `filter` selects (everyone for `user list`, a group's members for
/// `group members list`) a page at a time, so a directory of any size is listed in constant
/// memory: `--json` as one JSON array of the API's user objects, written element by
/// element; the table with columns padded to the widest cell of the first page.
pub(super) async fn stream(
    users: latchkey_idp::directory::Users<'_>,
    filter: &latchkey_idp::directory::UserFilter,
    json: bool,
) -> anyhow::Result<()> {
    use latchkey_idp::directory::UserCursor;
    let mut after: Option<UserCursor> = None;
    let mut widths: Option<Vec<usize>> = None;
    let mut first = true;
    if json {
        crate::stdout::out!("[")?;
    }
    loop {
        let page = users.page(filter, after.as_ref(), LIST_PAGE).await?;
        if json {
            for user in &page.users {
                let item = serde_json::to_string(&UserDto::from(user.clone()))?;
                crate::stdout::out!("{}\n  {item}", if first { "" } else { "," })?;
                first = false;
            }
        } else {
            let rows: Vec<Vec<String>> = page
                .users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.email.clone(),
                        u.shown_name(),
                        status(u).to_string(),
                        u.id.to_string(),
                    ]
                })
                .collect();
            let header = ["USERNAME", "EMAIL", "NAME", "STATUS", "ID"];
            if widths.is_none() {
                let w = output::widths(&header, &rows);
                output::row(&w, &header)?;
                widths = Some(w);
            }
            if let Some(widths) = &widths {
                for row in &rows {
                    let cells: Vec<&str> = row.iter().map(String::as_str).collect();
                    output::row(widths, &cells)?;
                }
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if json {
        outln!("{}]", if first { "" } else { "\n" })?;
    }
    Ok(())
}
