//! Reconciliation: list an application's users over SCIM, compare them with who should be
//! there, show the difference and (unless a dry run) apply it through the same
//! [`converge`] the worker uses.
//!
//! Who should be there: every user the access policy admits, with their mapped attributes.
//! What is removed (deactivated or deleted, as the connection says): an active remote user
//! that is ours (a user id we were given, or a `userName` the application's release gives a
//! directory user, such as their e-mail address, else their username) and should not be
//! there. Remote users that match no directory user (the application's own local accounts)
//! are left alone and only counted. Users are compared on their attributes and, when the
//! application's release manages groups, on the groups the application puts them in (read as
//! every delivery reads them, one query per user); an update that is applied sets both.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::client::RemoteUser;
use super::worker::{Want, converge, wanted};
use super::{ProvisioningError, Target, resource};
use crate::apps::{Application, UserField};
use crate::error::Error;
use crate::ids::UserId;
use crate::store::{Store, timestamp};

/// Users listed per request.
pub const PAGE: u32 = 100;
/// The most remote users read in one run: a bound on memory and time whatever the server
/// claims as `totalResults`.
pub const MAX_REMOTE_USERS: usize = 1_000_000;

/// One difference found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// create, update or remove.
    pub action: &'static str,
    /// The `userName`.
    pub user_name: String,
    /// Why it failed to apply, if it was applied and failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Whether it only looked.
    pub dry_run: bool,
    /// Users read from the application.
    pub remote_users: u64,
    /// Users that should be there.
    pub wanted_users: u64,
    /// Users already as they should be.
    pub unchanged: u64,
    /// Remote users matching no directory user, left alone.
    pub foreign: u64,
    /// The differences, in the order applied.
    pub differences: Vec<Difference>,
}

/// Runs a reconciliation of `app` through `target`.
pub async fn run(
    store: &Store,
    target: &Target,
    app: &Application,
    dry_run: bool,
) -> Result<SyncReport, ProvisioningError> {
    let remote = list_all(target).await?;
    let by_name: HashMap<String, &RemoteUser> = remote
        .iter()
        .map(|u| (u.user_name.to_lowercase(), u))
        .collect();
    let known: HashMap<String, UserId> = remote_ids(store, app).await?;
    let admitted = admitted_users(store, app).await?;
    let mut report = SyncReport {
        dry_run,
        remote_users: remote.len() as u64,
        wanted_users: 0,
        unchanged: 0,
        foreign: 0,
        differences: Vec::new(),
    };
    let mut plan: Vec<(&'static str, UserId, String, Want)> = Vec::new();
    let mut matched: HashSet<String> = HashSet::new();
    for user in admitted {
        let want = wanted(store, app, user).await?;
        let Want::Present(resource, _) = &want else {
            continue;
        };
        report.wanted_users += 1;
        let name = resource
            .get("userName")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match by_name.get(&name.to_lowercase()) {
            None => plan.push(("create", user, name, want)),
            Some(there) => {
                matched.insert(there.id.clone());
                let groups_differ = match &want {
                    Want::Present(_, Some(groups)) => {
                        groups_differ(target, &there.id, &groups.names).await?
                    }
                    _ => false,
                };
                if groups_differ || resource::differs(resource, &there.resource) {
                    plan.push(("update", user, name, want));
                } else {
                    report.unchanged += 1;
                }
            }
        }
    }
    for there in &remote {
        if matched.contains(&there.id) || !there.active() {
            continue;
        }
        let ours = match known.get(&there.id) {
            Some(user) => Some(*user),
            None => owner_of(store, app, &there.user_name).await?,
        };
        match ours {
            Some(user) => plan.push(("remove", user, there.user_name.clone(), Want::Removed(None))),
            None => report.foreign += 1,
        }
    }
    for (action, user, user_name, want) in plan {
        let error = if dry_run {
            None
        } else {
            converge(store, target, user, &user_name, &want)
                .await
                .err()
                .map(|e| e.to_string())
        };
        report.differences.push(Difference {
            action,
            user_name,
            error,
        });
    }
    if !dry_run {
        sqlx::query("UPDATE scim_connections SET last_sync_at = $2 WHERE app_id = $1")
            .bind(app.id.to_db())
            .bind(timestamp::format(store.now()))
            .execute(store.pool())
            .await
            .map_err(Error::from)?;
    }
    Ok(report)
}

/// The directory user a remote account's `userName` is ours for: the one the release's
/// rule for `userName` gives it ([`resource::user_name_field`], checked by giving the user's
/// `userName` again), else the user of that username.
async fn owner_of(store: &Store, app: &Application, remote: &str) -> Result<Option<UserId>, Error> {
    let users = store.users();
    let candidate = match resource::user_name_field(app) {
        Some(UserField::Email) => users.find_by_email(remote).await?,
        Some(UserField::Id) => match remote.parse::<UserId>() {
            Ok(id) => crate::directory::users::fetch(store.pool(), id).await?,
            Err(_) => None,
        },
        _ => None,
    };
    // A candidate comes only from a directory field, whose value does not depend on groups.
    if let Some(user) = candidate
        && resource::user_name(&user, app, &[]).eq_ignore_ascii_case(remote)
    {
        return Ok(Some(user.id));
    }
    Ok(users.find_by_username(remote).await?.map(|u| u.id))
}

/// Whether the application puts its user `id` in other groups than `wanted` (compared as
/// sets of `displayName`s, the way a delivery sets them).
async fn groups_differ(
    target: &Target,
    id: &str,
    wanted: &[String],
) -> Result<bool, ProvisioningError> {
    let there: HashSet<String> = target
        .client
        .groups_of(id)
        .await?
        .into_iter()
        .map(|(_, name)| name)
        .collect();
    let wanted: HashSet<String> = wanted.iter().cloned().collect();
    Ok(there != wanted)
}

async fn list_all(target: &Target) -> Result<Vec<RemoteUser>, ProvisioningError> {
    let mut all = Vec::new();
    let mut start = 1u64;
    loop {
        let page = target.client.list(start, PAGE).await?;
        let got = page.users.len();
        all.extend(page.users);
        start += got as u64;
        if got == 0 || start > page.total || all.len() >= MAX_REMOTE_USERS {
            return Ok(all);
        }
    }
}

async fn remote_ids(store: &Store, app: &Application) -> Result<HashMap<String, UserId>, Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT remote_id, user_id FROM scim_remote_ids WHERE app_id = $1")
            .bind(app.id.to_db())
            .fetch_all(store.pool())
            .await?;
    rows.into_iter()
        .map(|(remote, user)| Ok((remote, UserId::from_db(&user)?)))
        .collect()
}

async fn admitted_users(store: &Store, app: &Application) -> Result<Vec<UserId>, Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT m.user_id FROM app_access x JOIN group_members m \
         ON m.group_id = x.group_id WHERE x.app_id = $1 ORDER BY m.user_id",
    )
    .bind(app.id.to_db())
    .fetch_all(store.pool())
    .await?;
    ids.iter().map(|id| UserId::from_db(id)).collect()
}

/// One round of the scheduled reconciliation (`[provisioning] sync_interval_minutes`): every
/// connected application whose last run is older than `every` is reconciled. The slot is
/// taken first by one conditional `UPDATE` of `last_sync_at`, so of several nodes exactly
/// one runs each application per period. Returns the applications reconciled; a failing
/// one is logged and the others still run.
pub async fn scheduled_round(
    store: &Store,
    kek: &crate::keys::Kek,
    settings: &super::client::ClientSettings,
    every: time::Duration,
) -> Result<usize, Error> {
    let now = store.now();
    let mut ran = 0;
    for app_id in store.provisioning().connected_apps().await? {
        let taken = sqlx::query(
            "UPDATE scim_connections SET last_sync_at = $2 WHERE app_id = $1 \
             AND (last_sync_at IS NULL OR last_sync_at <= $3)",
        )
        .bind(app_id.to_db())
        .bind(timestamp::format(now))
        .bind(timestamp::format(now - every))
        .execute(store.pool())
        .await?
        .rows_affected();
        if taken == 0 {
            continue;
        }
        let Some(app) = crate::apps::registry::fetch(store.pool(), app_id).await? else {
            continue;
        };
        let outcome = match store.provisioning().target(kek, app_id, settings).await {
            Ok(target) => run(store, &target, &app, false).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(report) => {
                ran += 1;
                tracing::info!(
                    app = %app.settings.entity_id,
                    differences = report.differences.len(),
                    failed = report.differences.iter().filter(|d| d.error.is_some()).count(),
                    "SCIM reconciliation"
                );
            }
            Err(e) => {
                tracing::warn!(app = %app.settings.entity_id, error = %e, "SCIM reconciliation failed");
                let text = e.to_string();
                store
                    .provisioning()
                    .record_outcome(app_id, Err(&text))
                    .await?;
            }
        }
    }
    Ok(ran)
}
