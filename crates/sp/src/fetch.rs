//! IdP metadata from a URL, fetched at start and refreshed on its cacheDuration.
//!
//! A failed refresh keeps the keys already trusted (the IdP may just be restarting) and tries
//! again sooner; metadata past its `validUntil` is refused by the reader, so a dead source
//! cannot keep stale keys trusted forever once the IdP set an expiry.

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
    let client = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(15))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fail(e.to_string()))?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > MAX_METADATA_BYTES {
            return Err(fail(format!("larger than {MAX_METADATA_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fail("not UTF-8".to_owned()))
}

/// Reads the IdP from the configured metadata file or URL.
pub async fn load_idp(config: &SpConfig, now: OffsetDateTime) -> Result<IdpTrust, Error> {
    let xml = match config.metadata_source()? {
        MetadataSource::File(path) => read_text(&path)?,
        MetadataSource::Url(url) => fetch_metadata(&url).await?,
    };
    Ok(IdpTrust::from_metadata(
        &xml,
        config.idp.entity_id.as_deref(),
        now,
    )?)
}

/// Re-reads the IdP metadata once and swaps it into `sp`; returns when to do it next. On
/// failure `sp` keeps the IdP it had.
// The SP toolkit has no injected clock: everything else takes `now` from its caller, and
// this background refresh is the one place it reads the wall clock itself.
#[allow(clippy::disallowed_methods)]
pub async fn refresh_once(sp: &ServiceProvider, config: &SpConfig) -> Result<Duration, Error> {
    let fallback = Duration::seconds(i64::from(config.idp.refresh_seconds));
    let idp = load_idp(config, OffsetDateTime::now_utc()).await?;
    tracing::info!(idp = %idp.entity_id, keys = idp.keys.len(), "IdP metadata refreshed");
    let next = idp.refresh_interval(fallback);
    sp.set_idp(idp);
    Ok(next)
}

/// Re-reads the IdP metadata forever, on its cacheDuration (else `idp.refresh_seconds`), and
/// swaps the trusted IdP in `sp`. Every certificate of the new metadata is trusted, so an IdP
/// key rollover announced in its metadata breaks no login.
pub fn spawn_refresh(sp: ServiceProvider, config: SpConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let fallback = Duration::seconds(i64::from(config.idp.refresh_seconds));
        let mut wait = sp.idp().refresh_interval(fallback);
        loop {
            tokio::time::sleep(StdDuration::from_secs(wait.whole_seconds().unsigned_abs())).await;
            match refresh_once(&sp, &config).await {
                Ok(next) => wait = next,
                Err(error) => {
                    tracing::warn!(%error, "IdP metadata refresh failed; keeping the current keys");
                    wait = RETRY_AFTER_FAILURE;
                }
            }
        }
    })
}
