//! What the console's dashboard shows, each figure one bounded query: the directory's size,
//! the sign-ins of the last day (read from the audit log through its index on `at`), and
//! the applications nobody can use.

use time::{Duration, OffsetDateTime};

use crate::apps::Application;
use crate::error::Result;
use crate::store::{Store, timestamp};

/// How long before its certificate expires the dashboard warns about the signing key.
pub const KEY_EXPIRY_WARNING: Duration = Duration::days(30);

/// How long before an SP's metadata expires (its `validUntil`) the dashboard warns.
pub const METADATA_EXPIRY_WARNING: Duration = Duration::days(14);

/// How far back the dashboard counts sign-ins.
pub const SIGN_IN_WINDOW: Duration = Duration::hours(24);

/// The dashboard's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    /// Directory users.
    pub users: i64,
    /// Groups.
    pub groups: i64,
    /// Registered applications.
    pub apps: i64,
    /// Successful sign-ins in the last [`SIGN_IN_WINDOW`].
    pub sign_ins: i64,
    /// Failed sign-ins in the same window.
    pub failures: i64,
}

/// Counts for the dashboard.
pub async fn overview(store: &Store) -> Result<Overview> {
    let pool = store.pool();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(pool);
    let users = count("SELECT COUNT(*) FROM users").await?;
    let groups = count("SELECT COUNT(*) FROM directory_groups").await?;
    let apps = count("SELECT COUNT(*) FROM applications").await?;
    let since = timestamp::format(store.now() - SIGN_IN_WINDOW);
    // `at >= $1` first: the index on `at` bounds the scan to one day of the log.
    let sign_in = |action: &'static str| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM audit_events WHERE at >= $1 AND action = $2",
        )
        .bind(since.clone())
        .bind(action)
        .fetch_one(pool)
    };
    let sign_ins = sign_in("login.success").await?;
    let failures = sign_in("login.failure").await?;
    Ok(Overview {
        users,
        groups,
        apps,
        sign_ins,
        failures,
    })
}

/// Applications no active user may use: no group assigned, or only empty groups.
pub async fn unreachable_apps(store: &Store) -> Result<Vec<Application>> {
    let mut out = Vec::new();
    for app in store.apps().list().await? {
        let reachable: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM app_access x JOIN group_members m ON m.group_id = x.group_id \
             JOIN users u ON u.id = m.user_id WHERE x.app_id = $1 AND u.status = 'active' \
             LIMIT 1",
        )
        .bind(app.id.to_db())
        .fetch_optional(store.pool())
        .await?;
        if reachable.is_none() {
            out.push(app);
        }
    }
    Ok(out)
}

/// What needs doing about the signing keys: an active certificate that expires within
/// [`KEY_EXPIRY_WARNING`] (or has expired), and a next key that is published but not yet
/// signing (a rollover left half done; `latchkey key activate` finishes it, with its wait).
pub fn key_warnings(
    material: &crate::sso::keys::SigningMaterial,
    now: time::OffsetDateTime,
) -> Vec<String> {
    let mut out = Vec::new();
    let left = material.certificate.not_after() - now.unix_timestamp();
    if left <= 0 {
        out.push("The signing certificate has expired: rotate and activate a new key.".to_owned());
    } else if left < KEY_EXPIRY_WARNING.whole_seconds() {
        out.push(format!(
            "The signing certificate expires in {} days: rotate the key (latchkey key rotate), then activate it.",
            left / 86_400
        ));
    }
    if material.published.len() > 1 {
        out.push(
            "A next signing key is published but not active: activate it (latchkey key activate) once SPs have had time to fetch the metadata."
                .to_owned(),
        );
    }
    out
}

/// An application whose SP metadata expires soon, or has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiringMetadata {
    /// The application's name.
    pub name: String,
    /// Its entity ID.
    pub entity_id: String,
    /// Where the metadata was read.
    pub source: String,
    /// Its `validUntil`.
    pub valid_until: OffsetDateTime,
}

/// Applications registered or refreshed from SP metadata whose `validUntil` is within
/// [`METADATA_EXPIRY_WARNING`] of `now` or past: refresh them (`latchkey app
/// refresh-metadata`) before the SP's copy goes stale. Read through the index on
/// `valid_until`.
pub async fn expiring_metadata(store: &Store) -> Result<Vec<ExpiringMetadata>> {
    let horizon = timestamp::format(store.now() + METADATA_EXPIRY_WARNING);
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT a.name, a.entity_id, m.source, m.valid_until FROM app_metadata m \
         JOIN applications a ON a.id = m.app_id \
         WHERE m.valid_until IS NOT NULL AND m.valid_until <= $1 ORDER BY m.valid_until",
    )
    .bind(horizon)
    .fetch_all(store.pool())
    .await?;
    rows.into_iter()
        .map(|(name, entity_id, source, until)| {
            Ok(ExpiringMetadata {
                name,
                entity_id,
                source,
                valid_until: timestamp::parse("app_metadata.valid_until", &until)?,
            })
        })
        .collect()
}
