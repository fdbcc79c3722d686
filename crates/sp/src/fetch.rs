//! IdP metadata from a URL, fetched at start and refreshed on its cacheDuration (sooner
//! when its `validUntil` comes first).
//!
//! A failed refresh keeps the keys already trusted (the IdP may just be restarting), is
//! recorded for [`ServiceProvider::metadata_status`] (a health check's verdict: degraded, or
//! unable to log anyone in once the copy expired) and tries again sooner; metadata past its `validUntil` is refused by the reader, and a copy that
//! expires while trusted verifies nothing more, so a dead source cannot keep stale keys
//! trusted forever once the IdP set an expiry. Every read after the first takes only the IdP
//! trusted already (a document naming another one is a failed refresh), and only over https
//! or from this machine, redirects included (`settings::metadata_url_allowed`).
//!
//! Between refreshes, `Refetch` lets the SP follow a rollover on its own: when a Response
//! fails signature verification, the metadata is fetched once more and the Response verified
//! again before it is refused (the IdP may have activated a key this copy does not list yet).
//! Such fetches are at most one per `[idp] refetch_seconds`, whatever the number of failing
//! responses: the slot is taken atomically, so a burst of forgeries causes one fetch.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, MetadataError};
use crate::idp::IdpTrust;
use crate::provider::ServiceProvider;
use crate::settings::{MetadataSource, SpConfig, read_text};

/// The largest metadata document fetched; IdP metadata is a few kilobytes.
const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;

/// How soon to try again after a failed refresh.
const RETRY_AFTER_FAILURE: Duration = Duration::minutes(1);

/// Fetches a metadata document, with a timeout and a size cap.
pub async fn fetch_metadata(url: &str) -> Result<String, MetadataError> {
    let fail = |detail: String| MetadataError::Fetch {
        url: url.to_owned(),
        detail,
    };
    // reqwest's own message names the step, its sources say why: both go to the log.
    let why = |e: reqwest::Error| {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        fail(detail)
    };
    if !crate::settings::metadata_url_allowed(url) {
        return Err(fail(
            "not https (http only to this machine), so its keys could not be trusted".to_owned(),
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(15))
        // A redirect is followed only to where the URL itself may point (`https`, or
        // `http` to this machine): an https source must not hand the keys to plain HTTP.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() >= 3 {
                attempt.error("more than 3 redirects")
            } else if crate::settings::metadata_url_allowed(attempt.url().as_str()) {
                attempt.follow()
            } else {
                attempt.error("redirected to a URL metadata may not come from")
            }
        }))
        .build()
        .map_err(why)?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(why)?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(why)? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(fail(format!("larger than {MAX_METADATA_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fail("not UTF-8".to_owned()))
}

/// Reads the IdP from the configured metadata file or URL.
pub async fn load_idp(config: &SpConfig, now: OffsetDateTime) -> Result<IdpTrust, Error> {
    load_idp_named(config, config.idp.entity_id.as_deref(), now).await
}

/// [`load_idp`], picking the IdP `entity_id` names (any single one when `None`).
async fn load_idp_named(
    config: &SpConfig,
    entity_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<IdpTrust, Error> {
    match config.metadata_source()? {
        MetadataSource::File(path) => {
            Ok(IdpTrust::from_metadata(&read_text(&path)?, entity_id, now)?)
        }
        MetadataSource::Url(url) => Ok(fetch_idp(&url, entity_id, now).await?),
    }
}

async fn fetch_idp(
    url: &str,
    entity_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<IdpTrust, MetadataError> {
    IdpTrust::from_metadata(&fetch_metadata(url).await?, entity_id, now)
}

/// The forced re-fetch of one SP's IdP metadata (see the module docs). Lives in the
/// [`ServiceProvider`], so every request of that SP shares its rate limit.
#[derive(Debug)]
pub(crate) struct Refetch {
    url: String,
    every: Duration,
    /// Unix time (seconds) before which no forced fetch may start.
    next_allowed: AtomicI64,
}

impl Refetch {
    /// The re-fetch for `config`, when its metadata comes from a URL.
    pub(crate) fn for_config(config: &SpConfig) -> Option<Self> {
        let MetadataSource::Url(url) = config.metadata_source().ok()? else {
            return None;
        };
        Some(Self {
            url,
            every: Duration::seconds(i64::from(config.idp.refetch_seconds)),
            next_allowed: AtomicI64::new(i64::MIN),
        })
    }

    /// Fetches the metadata of `entity_id` (the IdP trusted now) if no forced fetch
    /// happened in the last `refetch_seconds` (`None`: too soon, nothing fetched).
    pub(crate) async fn fetch_if_due(
        &self,
        entity_id: &str,
        now: OffsetDateTime,
    ) -> Option<Result<IdpTrust, MetadataError>> {
        if !self.take_slot(now) {
            return None;
        }
        Some(fetch_idp(&self.url, Some(entity_id), now).await)
    }

    /// Takes the one slot of the current period, if it is free. A compare-and-swap, so of
    /// many requests failing at once exactly one wins.
    fn take_slot(&self, now: OffsetDateTime) -> bool {
        let at = now.unix_timestamp();
        let mut allowed = self.next_allowed.load(Ordering::Acquire);
        loop {
            if at < allowed {
                return false;
            }
            let next = at.saturating_add(self.every.whole_seconds());
            match self.next_allowed.compare_exchange(
                allowed,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(current) => allowed = current,
            }
        }
    }
}

/// The wall clock, for the background refresh.
// The SP toolkit has no injected clock: everything else takes `now` from its caller, and
// this background refresh is the one place it reads the wall clock itself.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Re-reads the IdP metadata once and swaps it into `sp`; returns when to do it next. On
/// failure `sp` keeps the IdP it had.
///
/// Only the IdP `sp` trusts now is read from the new document (the one `idp.entity_id`
/// names, or the one the first document held): a document without it, naming another IdP,
/// is a failed refresh, never a switch of IdP.
///
/// Either way the outcome is recorded for [`ServiceProvider::metadata_status`].
pub async fn refresh_once(sp: &ServiceProvider, config: &SpConfig) -> Result<Duration, Error> {
    let fallback = Duration::seconds(i64::from(config.idp.refresh_seconds));
    let now = wall_clock();
    let trusted = sp.idp();
    let idp = match load_idp_named(config, Some(&trusted.entity_id), now).await {
        Ok(idp) => idp,
        Err(error) => {
            sp.refresh_failed(now, &error);
            return Err(error);
        }
    };
    sp.refresh_succeeded(now);
    tracing::info!(idp = %idp.entity_id, keys = idp.keys.len(), "IdP metadata refreshed");
    let next = idp.next_refresh(fallback, now);
    sp.set_idp(idp);
    Ok(next)
}

/// Re-reads the IdP metadata forever, on its cacheDuration (else `idp.refresh_seconds`, and
/// no later than its validUntil), and swaps the trusted IdP in `sp`. Every certificate of the new metadata is trusted, so an IdP
/// key rollover announced in its metadata breaks no login.
pub fn spawn_refresh(sp: ServiceProvider, config: SpConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let fallback = Duration::seconds(i64::from(config.idp.refresh_seconds));
        let mut wait = sp.idp().next_refresh(fallback, wall_clock());
        loop {
            tokio::time::sleep(StdDuration::from_secs(wait.whole_seconds().unsigned_abs())).await;
            match refresh_once(&sp, &config).await {
                Ok(next) => wait = next,
                Err(error) => {
                    let status = sp.metadata_status(wall_clock());
                    tracing::warn!(
                        %error,
                        verdict = ?status.verdict,
                        consecutive_failures = status.consecutive_failures,
                        "IdP metadata refresh failed; keeping the current keys"
                    );
                    wait = RETRY_AFTER_FAILURE;
                }
            }
        }
    })
}
