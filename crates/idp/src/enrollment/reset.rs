//! Self-service password reset: the request side.
//!
//! # The same answer, in the same time, for every name
//! [`ResetDesk::request`] takes throttle slots under the name as typed and under the client
//! address (the same statements for names that exist and names that do not), puts the
//! request on a bounded queue, and returns [`ResetRequested`]: a unit, so nothing in the
//! answer can differ. Everything that depends on whether the account exists (the lookup, the
//! link's row and audit line, the mail) runs later on the desk's worker task, off the
//! request path, so it cannot show in the request's timing either.
//!
//! # Bounds
//! At most [`ThrottlePolicy::RESET_ACCOUNT`]'s free requests per name as typed and per
//! resolved account (so neither "alice" nor "alice@example.org", nor both in turn, can flood
//! alice's mailbox), [`ThrottlePolicy::RESET_ADDRESS`]'s per client address, and a queue of
//! [`QUEUE`] requests per node; past any of them the request is refused (`throttled` or
//! `busy`), again the same whether or not the account exists.
//!
//! A reset never bypasses a second factor: the page that redeems the link must ask for the
//! user's factor (or a recovery code) before [`super::Enrollment::redeem`]; this module only
//! delivers the link.
//!
//! [`ThrottlePolicy::RESET_ACCOUNT`]: crate::session::ThrottlePolicy::RESET_ACCOUNT
//! [`ThrottlePolicy::RESET_ADDRESS`]: crate::session::ThrottlePolicy::RESET_ADDRESS

use std::sync::Arc;

use time::Duration;
use tokio::sync::mpsc;

use super::{Enrollment, IssuedLink};
use crate::audit::Actor;
use crate::directory::UserStatus;
use crate::error::{Error, Result};
use crate::session::{Admission, Slot, Throttle};
use crate::store::Store;

/// Requests waiting for the worker, per node.
pub const QUEUE: usize = 256;

/// The answer to every accepted reset request, whoever it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResetRequested;

/// Where the worker hands a link for delivery (the mail queue, or a test's inbox). It must
/// not block: queue the message and return.
pub trait LinkSink: Send + Sync + 'static {
    /// Delivers `link` (to `link.user.email`); `url` is the full link.
    fn deliver(&self, link: &IssuedLink, url: &str);
}

struct Job {
    typed: String,
}

/// The node's reset desk: a bounded queue and one worker task.
#[derive(Debug, Clone)]
pub struct ResetDesk {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl ResetDesk {
    /// Starts the worker on the current Tokio runtime. Links live `ttl` and are made under
    /// `base_url` (`[server] base_url`); each is handed to `sink`.
    pub fn start(store: Store, base_url: String, ttl: Duration, sink: Arc<dyn LinkSink>) -> Self {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            while let Some(job) = jobs.recv().await {
                if let Err(e) = work(&store, &base_url, ttl, sink.as_ref(), &job.typed).await {
                    tracing::warn!(error = %e, "password reset request failed");
                }
            }
        });
        ResetDesk { queue }
    }

    /// Asks for a reset link for the account named `typed` (a username or an e-mail
    /// address), from `client` (the address the request came from). See the module docs:
    /// the outcome is the same whether or not the account exists.
    pub async fn request(
        &self,
        store: &Store,
        typed: &str,
        client: &str,
    ) -> Result<ResetRequested> {
        let typed = typed.trim();
        if typed.is_empty() || typed.len() > 320 {
            return Err(Error::invalid(
                "username",
                "name or e-mail address, 1-320 bytes",
            ));
        }
        let slots = vec![Slot::reset_address(client), Slot::reset_name(typed)];
        if let Admission::Refused { retry_after } =
            Throttle::new(store).admit(slots, store.now()).await?
        {
            return Err(Error::Throttled {
                retry_after_seconds: u64::try_from(retry_after.whole_seconds()).unwrap_or(1),
            });
        }
        self.queue
            .try_send(Job {
                typed: typed.to_owned(),
            })
            .map_err(|_| Error::Busy {
                what: "password reset queue",
                retry_after_seconds: crate::password::RETRY_AFTER_SECONDS,
            })?;
        Ok(ResetRequested)
    }
}

/// The part that depends on the account: runs on the worker, never on the request path.
async fn work(
    store: &Store,
    base_url: &str,
    ttl: Duration,
    sink: &dyn LinkSink,
    typed: &str,
) -> Result<()> {
    let users = store.users();
    let user = match users.find_by_username(typed).await? {
        Some(user) => Some(user),
        None => users.find_by_email(typed).await?,
    };
    let Some(user) = user.filter(|u| u.status == UserStatus::Active) else {
        return Ok(());
    };
    if let Admission::Refused { .. } = Throttle::new(store)
        .admit(vec![Slot::reset_user(user.id)], store.now())
        .await?
    {
        tracing::info!(user = %user.id, "password reset not sent: too many for this account");
        return Ok(());
    }
    let link = Enrollment::new(store)
        .issue_reset(&Actor::system(), user.id, ttl)
        .await?;
    let url = link.url(base_url);
    sink.deliver(&link, &url);
    Ok(())
}
