//! The delivery worker: takes due outbox rows, brings each (application, user) in line with
//! the directory, and backs off on failure.
//!
//! It wakes when this node writes a row ([`Store::wake_outbox`]) and polls otherwise (rows
//! written by another node or by a CLI command), so a suspension reaches every application
//! within a poll interval at worst. One batch is delivered concurrently (at most
//! [`WorkerSettings::batch`] requests in flight); one application timing out delays only its
//! own rows of that batch. A user deactivated or deleted at an application is audited
//! (`scim.user_remove`, by `system`, naming the application).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use time::Duration;

use super::client::{ClientSettings, Created};
use super::outbox::{self, Claimed};
use super::{OnRemove, ProvisioningError, Target, resource};
use crate::apps::{Application, UserField};
use crate::audit::Change;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::keys::Kek;
use crate::store::Store;

/// How the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Rows taken (and requests in flight) at once.
    pub batch: u32,
    /// How often it looks for rows when nothing woke it.
    pub poll: std::time::Duration,
    /// How long a taken row is this node's before another may take it over: longer than a
    /// delivery can take (at most three requests of [`ClientSettings::timeout`]), so a live
    /// node never loses a row it is delivering; a node killed mid-delivery holds those
    /// rows up this long.
    pub lease: Duration,
    /// The first retry's delay; each further one doubles it.
    pub backoff_base: Duration,
    /// The longest delay between retries.
    pub backoff_max: Duration,
    /// Per-request limits.
    pub client: ClientSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            batch: 32,
            poll: std::time::Duration::from_secs(2),
            lease: Duration::seconds(60),
            backoff_base: Duration::seconds(2),
            backoff_max: Duration::minutes(10),
            client: ClientSettings::default(),
        }
    }
}

/// The delay before retry number `attempts + 1`: `base * 2^attempts`, at most `max`.
pub fn backoff(attempts: i64, base: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let factor = 1i64 << exp;
    let seconds = base.whole_seconds().max(1).saturating_mul(factor);
    Duration::seconds(seconds).min(max)
}

/// Deliveries counted since start, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl DeliveryStats {
    /// Deliveries that succeeded.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    /// Deliveries that failed (and were put back for a retry).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What a delivery did at the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Created the user.
    Created,
    /// Found the user (by id, or by `userName` after a 409) and replaced it.
    Updated,
    /// Set `active` to false.
    Deactivated,
    /// Deleted the user.
    Deleted,
    /// Nothing to do (not there, and should not be).
    Nothing,
}

/// What the application should hold for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    /// This resource, active, in these groups (`None`: the application's release has no
    /// attribute from groups, and its groups are not managed).
    Present(Value, Option<WantedGroups>),
    /// No active user (deactivated or deleted, as the connection says). With the `userName`
    /// the application's release gives the user while the directory still has them (for a
    /// deleted user, the worker gives the address their outbox row kept, or their ID, where
    /// the release sends `userName` from `email` or `id`): an account the application made before it was
    /// connected (a SAML login's, say) is found under it even when it is the e-mail address
    /// rather than the username.
    Removed(Option<String>),
}

/// The groups an application should put a user in, as its release names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedGroups {
    /// The `displayName`s.
    pub names: Vec<String>,
    /// (former, current) names of those groups renamed in the directory, most recent
    /// rename first: a group of the former name at the application is renamed there rather
    /// than left behind (it may carry rights the application granted to it).
    pub renamed: Vec<(String, String)>,
}

/// The worker of one node.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    kek: Arc<Kek>,
    /// One HTTP client for every application (an error if it could not be built: each
    /// delivery then fails with the reason, and is retried).
    http: Result<super::client::Http, String>,
    settings: WorkerSettings,
    owner: String,
    stats: Arc<DeliveryStats>,
}

impl Worker {
    /// A worker delivering from `store`'s outbox, opening tokens with `kek`.
    pub fn new(store: Store, kek: Arc<Kek>, settings: WorkerSettings) -> Worker {
        Worker {
            http: super::client::Http::new(&settings.client).map_err(|e| e.to_string()),
            store,
            kek,
            settings,
            owner: uuid::Uuid::new_v4().to_string(),
            stats: Arc::default(),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until the task is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let wake = self.store.outbox_wake();
            loop {
                match self.run_once().await {
                    Ok(n) if n >= self.settings.batch as usize => continue,
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "SCIM outbox: cannot take rows"),
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(self.settings.poll) => {}
                }
            }
        })
    }

    /// Takes one batch of due rows and delivers them; returns how many were taken.
    pub async fn run_once(&self) -> Result<usize> {
        let now = self.store.now();
        let claimed = outbox::claim(
            &self.store,
            &self.owner,
            now,
            now + self.settings.lease,
            self.settings.batch.max(1),
        )
        .await?;
        let taken = claimed.len();
        if taken == 0 {
            return Ok(0);
        }
        // One target (token opened, client built) per application in the batch.
        let mut targets: HashMap<crate::ids::AppId, Arc<Result<Target, String>>> = HashMap::new();
        for item in &claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(item.app_id) {
                let target = match &self.http {
                    Ok(http) => self
                        .store
                        .provisioning()
                        .target_on(&self.kek, item.app_id, http)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.clone()),
                };
                slot.insert(Arc::new(target));
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for item in claimed {
            let Some(target) = targets.get(&item.app_id).cloned() else {
                continue;
            };
            let worker = self.clone();
            tasks.spawn(async move { worker.deliver_one(&target, item).await });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                // A panicking delivery loses only its lease: the row is taken again later.
                tracing::error!(error = %e, "SCIM delivery task failed");
            }
        }
        Ok(taken)
    }

    async fn deliver_one(&self, target: &Result<Target, String>, item: Claimed) {
        let outcome = match target {
            Ok(target) => self.deliver(target, &item).await,
            Err(e) => Err(e.clone()),
        };
        let provisioning = self.store.provisioning();
        match outcome {
            Ok(done) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(app = %item.app_id, user = %item.user_name, ?done, "SCIM delivered");
                if let Err(e) = provisioning.record_outcome(item.app_id, Ok(())).await {
                    tracing::warn!(error = %e, "SCIM: cannot record a success");
                }
            }
            Err(error) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                let delay = backoff(
                    item.attempts,
                    self.settings.backoff_base,
                    self.settings.backoff_max,
                );
                tracing::warn!(
                    app = %item.app_id, user = %item.user_name, attempts = item.attempts + 1,
                    retry_in_s = delay.whole_seconds(), %error, "SCIM delivery failed"
                );
                let next = self.store.now() + delay;
                if let Err(e) = outbox::retry_later(&self.store, &item, next, &error).await {
                    // The lease runs out and the row is taken again.
                    tracing::warn!(error = %e, "SCIM: cannot put a row back");
                }
                if let Err(e) = provisioning.record_outcome(item.app_id, Err(&error)).await {
                    tracing::warn!(error = %e, "SCIM: cannot record a failure");
                }
            }
        }
    }

    async fn deliver(&self, target: &Target, item: &Claimed) -> Result<Done, String> {
        let lease_until = self.store.now() + self.settings.lease;
        let through = outbox::take_pair(&self.store, item, &self.owner, lease_until)
            .await
            .map_err(|e| e.to_string())?;
        let Some(app) = crate::apps::registry::fetch(self.store.pool(), item.app_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            // The application is gone, and its rows with it.
            return Ok(Done::Nothing);
        };
        let want = match wanted(&self.store, &app, item.user_id)
            .await
            .map_err(|e| e.to_string())?
        {
            // A deleted user: an application keyed on addresses knows them by the one the
            // row kept, one keyed on the IdP's IDs by theirs.
            Want::Removed(None) => Want::Removed(match resource::user_name_field(&app) {
                Some(UserField::Email) => item.user_email.clone(),
                Some(UserField::Id) => Some(item.user_id.to_string()),
                _ => None,
            }),
            want => want,
        };
        let done = converge(&self.store, target, item.user_id, &item.user_name, &want)
            .await
            .map_err(|e| e.to_string())?;
        // Access taken away is shown per user (`scim.user_remove`), committed with the rows'
        // removal: an event that cannot be written fails the delivery, which leaves the rows
        // and records nothing, and its retry removes again (a deactivation is answered, and
        // recorded, once more; a deleted user is no longer found there, and then only the
        // log has it).
        let removed = match done {
            Done::Deactivated => Some("deactivated"),
            Done::Deleted => Some("deleted"),
            _ => None,
        };
        let event = removed.map(|removed| Change {
            action: "scim.user_remove",
            target_kind: "user",
            target_id: item.user_id.to_string(),
            target_name: item.user_name.clone(),
            before: None,
            after: Some(serde_json::json!({
                "app": app.settings.entity_id, "app_id": app.id, "done": removed,
            })),
        });
        outbox::done(&self.store, item, &self.owner, through, event)
            .await
            .map_err(|e| e.to_string())?;
        Ok(done)
    }
}

/// What `app` should hold for the user: their resource if the access policy admits them
/// (active, in an assigned group), else nothing active.
pub async fn wanted(store: &Store, app: &Application, user: UserId) -> Result<Want> {
    let Some(user) = crate::directory::users::fetch(store.pool(), user).await? else {
        return Ok(Want::Removed(None));
    };
    let admitted = store.apps().may_access(app.id, &user).await?;
    let of_user = store.groups().of_user(user.id).await?;
    let groups: Vec<String> = of_user.iter().map(|g| g.name.clone()).collect();
    if !admitted {
        return Ok(Want::Removed(Some(resource::user_name(
            &user, app, &groups,
        ))));
    }
    // The groups the application sees are those its release sends (filter included), so
    // a role the app grants from a group follows the same rule over SCIM as in an assertion.
    let mapping = app
        .settings
        .attributes
        .iter()
        .find(|a| matches!(a.source, crate::apps::AttributeSource::Groups));
    let released = match mapping {
        None => None,
        Some(a) => {
            let mut conn = store.pool().acquire().await?;
            let former =
                crate::directory::groups::former_names_of_member(&mut conn, user.id).await?;
            // A former name maps to the application's name for it through the same release.
            let one = |name: &str| match a.values(&user, &[name.to_owned()]).as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            };
            let renamed = former
                .iter()
                .filter_map(|(id, old)| {
                    let now = of_user.iter().find(|g| g.id == *id)?;
                    let (old, new) = (one(old)?, one(&now.name)?);
                    (old != new).then_some((old, new))
                })
                .collect();
            Some(WantedGroups {
                names: a.values(&user, &groups),
                renamed,
            })
        }
    };
    Ok(Want::Present(
        resource::user_resource(&user, app, &groups, true),
        released,
    ))
}

/// Makes the application hold what `want` says for the user, idempotently: a create that
/// meets an existing `userName` adopts and replaces it; a stale remote id is forgotten and
/// the user found again; removing a user the application does not have is done.
pub async fn converge(
    store: &Store,
    target: &Target,
    user: UserId,
    user_name: &str,
    want: &Want,
) -> Result<Done, ProvisioningError> {
    let client = &target.client;
    let known = outbox::remote_id(store, target.app_id, user).await?;
    match want {
        Want::Present(resource, groups) => {
            let (done, id) = upsert(store, target, user, user_name, known, resource).await?;
            if let Some(groups) = groups {
                sync_groups(client, &id, groups).await?;
            }
            Ok(done)
        }
        Want::Removed(released) => {
            remove(store, target, user, released.as_deref(), user_name, known).await
        }
    }
}

/// Makes the application hold `resource` for the user; returns what it did and the id.
async fn upsert(
    store: &Store,
    target: &Target,
    user: UserId,
    user_name: &str,
    known: Option<String>,
    resource: &Value,
) -> Result<(Done, String), ProvisioningError> {
    let client = &target.client;
    if let Some(id) = known {
        if client.replace(&id, resource).await? {
            return Ok((Done::Updated, id));
        }
        outbox::set_remote_id(store, target.app_id, user, None).await?;
    }
    match client.create(resource).await? {
        Created::Id(id) => {
            outbox::set_remote_id(store, target.app_id, user, Some(&id)).await?;
            Ok((Done::Created, id))
        }
        Created::Exists => {
            let name = resource
                .get("userName")
                .and_then(Value::as_str)
                .unwrap_or(user_name);
            let Some(existing) = client.find_by_user_name(name).await? else {
                return Err(ProvisioningError::Store(Error::invalid(
                    "scim user",
                    format!("the application says {name:?} exists but cannot find it"),
                )));
            };
            client.replace(&existing.id, resource).await?;
            outbox::set_remote_id(store, target.app_id, user, Some(&existing.id)).await?;
            Ok((Done::Updated, existing.id))
        }
    }
}

/// Puts the member `id` in exactly the groups named `wanted` (by `displayName`, created
/// when missing) among the application's groups. A group of theirs there under a former
/// name of a wanted one is renamed first, unless the application already has a group of
/// the new name (then the member moves, as for any other group).
async fn sync_groups(
    client: &super::ScimClient,
    id: &str,
    groups: &WantedGroups,
) -> Result<(), ProvisioningError> {
    let wanted = &groups.names;
    let mut current = client.groups_of(id).await?;
    for (old, new) in &groups.renamed {
        if !wanted.contains(new) || current.iter().any(|(_, n)| n == new) {
            continue;
        }
        if let Some(at) = current.iter_mut().find(|(_, n)| n == old)
            && client.find_group(new).await?.is_none()
            && client.rename_group(&at.0, new).await?
        {
            at.1 = new.clone();
        }
    }
    for (group, name) in &current {
        if !wanted.iter().any(|w| w == name) {
            client.set_member(group, id, false).await?;
        }
    }
    for name in wanted {
        if current.iter().any(|(_, n)| n == name) {
            continue;
        }
        match client.find_group(name).await? {
            Some((group, _)) => client.set_member(&group, id, true).await?,
            None => client.create_group(name, id).await?,
        }
    }
    Ok(())
}

/// Removes the user (deactivate or delete, as the connection says), if the application has
/// them: by the remote ID stored for them, else under the `userName` the release gives them
/// (`released`), else under `user_name`.
async fn remove(
    store: &Store,
    target: &Target,
    user: UserId,
    released: Option<&str>,
    user_name: &str,
    known: Option<String>,
) -> Result<Done, ProvisioningError> {
    let client = &target.client;
    let id = match known {
        Some(id) => Some(id),
        None => {
            let mut names: Vec<&str> = released.into_iter().collect();
            if !names.iter().any(|n| n.eq_ignore_ascii_case(user_name)) {
                names.push(user_name);
            }
            let mut found = None;
            for name in names {
                found = client.find_by_user_name(name).await?.map(|u| u.id);
                if found.is_some() {
                    break;
                }
            }
            found
        }
    };
    let Some(id) = id else {
        return Ok(Done::Nothing);
    };
    match target.on_remove {
        OnRemove::Deactivate => {
            if client.deactivate(&id).await? {
                // Kept, so a resume finds the same account.
                outbox::set_remote_id(store, target.app_id, user, Some(&id)).await?;
                Ok(Done::Deactivated)
            } else {
                outbox::set_remote_id(store, target.app_id, user, None).await?;
                Ok(Done::Nothing)
            }
        }
        OnRemove::Delete => {
            client.delete(&id).await?;
            outbox::set_remote_id(store, target.app_id, user, None).await?;
            Ok(Done::Deleted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let (base, max) = (Duration::seconds(2), Duration::minutes(10));
        assert_eq!(backoff(0, base, max), Duration::seconds(2));
        assert_eq!(backoff(1, base, max), Duration::seconds(4));
        assert_eq!(backoff(4, base, max), Duration::seconds(32));
        assert_eq!(backoff(9, base, max), max);
        assert_eq!(backoff(1000, base, max), max);
        assert_eq!(backoff(-3, base, max), Duration::seconds(2));
    }
}
