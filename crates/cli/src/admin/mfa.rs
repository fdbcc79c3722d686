//! `latchkey user mfa ...`, and the MFA options of `app set` and `group set`: thin over
//! `latchkey_idp::mfa`, with `--json` in the admin API's shapes.

use clap::Subcommand;
use latchkey_idp::mfa::Factors;
use latchkey_idp::mfa::policy::{AppMfa, MfaPolicy, class_name};
use latchkey_idp_web::api::mfa::FactorDto;

use super::Context;
use super::output::{self, outln};

#[derive(Debug, Subcommand)]
pub enum UserMfaCommand {
    /// List a user's second factors: names, kinds, when enrolled and last used (never a
    /// secret).
    List {
        /// Username, e-mail address or ID.
        user: String,
        /// Print JSON (the objects of `GET /api/v1/users/{user}/factors`).
        #[arg(long)]
        json: bool,
    },
    /// Remove every second factor of a user (a lost phone); they enrol again at their next
    /// sign-in if a factor is required.
    Reset {
        /// Username, e-mail address or ID.
        user: String,
    },
    /// Require a second factor of a user (`--off` stops requiring it).
    Require {
        /// Username, e-mail address or ID.
        user: String,
        /// Stop requiring it.
        #[arg(long)]
        off: bool,
    },
}

pub async fn run_user(ctx: &Context, cmd: UserMfaCommand) -> anyhow::Result<()> {
    match cmd {
        UserMfaCommand::List { user, json } => {
            let user = ctx.store.users().lookup(&user).await?;
            let factors: Vec<FactorDto> = Factors::new(&ctx.store)
                .list(&user)
                .await?
                .into_iter()
                .map(FactorDto::from)
                .collect();
            if json {
                return output::json(&factors);
            }
            let rows: Vec<Vec<String>> = factors
                .iter()
                .map(|f| {
                    vec![
                        f.kind.clone(),
                        f.name.clone(),
                        output::when(f.created_at),
                        f.last_used_at
                            .map(output::when)
                            .unwrap_or_else(|| "never".into()),
                        f.remaining.map(|n| n.to_string()).unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["KIND", "NAME", "CREATED", "LAST USED", "LEFT"], &rows)?;
        }
        UserMfaCommand::Reset { user } => {
            let user = ctx.store.users().lookup(&user).await?;
            let n = Factors::new(&ctx.store).reset(&ctx.actor, &user).await?;
            outln!("removed {n} second factor(s) of {}", user.username)?;
        }
        UserMfaCommand::Require { user, off } => {
            let user = ctx.store.users().lookup(&user).await?;
            MfaPolicy::new(&ctx.store)
                .require_for_user(&ctx.actor, &user, !off)
                .await?;
            outln!(
                "{} {} a second factor",
                user.username,
                if off { "no longer needs" } else { "now needs" }
            )?;
        }
    }
    Ok(())
}

/// Applies `app set --require-mfa/--mfa-class`; `false` when neither was given.
pub async fn set_app(
    ctx: &Context,
    app: &latchkey_idp::apps::Application,
    require: Option<bool>,
    class: Option<&str>,
) -> anyhow::Result<bool> {
    if require.is_none() && class.is_none() {
        return Ok(false);
    }
    let policy = MfaPolicy::new(&ctx.store);
    let mut to = policy.app(app.id).await?;
    if let Some(require) = require {
        to.require_mfa = require;
    }
    if let Some(name) = class {
        to.mfa_class = class_name::parse(name).ok_or_else(|| {
            anyhow::anyhow!("--mfa-class: expected refeds or mobile_two_factor, not {name:?}")
        })?;
    }
    policy.set_app(&ctx.actor, app, to).await?;
    let AppMfa {
        require_mfa,
        mfa_class,
    } = to;
    outln!(
        "{}: second factor {}, multi-factor class {}",
        app.settings.entity_id,
        if require_mfa {
            "required"
        } else {
            "not required"
        },
        class_name::as_str(mfa_class)
    )?;
    Ok(true)
}
