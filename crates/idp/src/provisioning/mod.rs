//! The SCIM client: pushing users to the applications that take SCIM 2.0 (RFC 7643/7644).
//!
//! # What is sent
//! An application may have a SCIM connection: a base URL, a bearer token (sealed under the
//! KEK with [`Kek::seal_bound`], the application's ID in the AAD, never shown back) and what
//! to do when a user should no longer be there ([`OnRemove`]: deactivate or delete). Its
//! users are those the access policy admits (active, in an assigned group), each sent as a
//! SCIM User built from the directory and the application's attribute release
//! ([`resource::user_resource`]).
//!
//! # The outbox
//! Every directory change that can change what an application should hold (a user created,
//! changed, suspended, resumed or deleted; a membership; a group given or taken an
//! application; a group deleted; a connection made) writes one row per (application, user)
//! into `scim_outbox` **in the transaction of the change** ([`outbox`]): a change that rolls
//! back leaves no row, and a committed change cannot lose its row to a crash. A row means
//! "make this user at this application match the directory": the [`worker`] reads the
//! directory when it delivers, so one delivery covers every older row of the pair, and a
//! retry always sends the newest state.
//!
//! # Delivery
//! The worker claims a bounded batch of due rows with a lease (one `UPDATE ... RETURNING`
//! whose condition re-checks the lease, so on PostgreSQL exactly one node wins each row; an
//! expired lease is taken over), the oldest row of each pair only, so a pair is delivered in
//! order. Failures back off exponentially (capped) by the store's clock. Deliveries are
//! idempotent: a create that meets an existing `userName` adopts and updates it; removing a
//! user the application does not have is done. The id the application gave the user is kept
//! in `scim_remote_ids`. A failing application only delays its own rows: the directory
//! change was committed before any request was made.
//!
//! Reconciliation ([`sync`]) lists the application's users and compares them with who
//! should be there.

pub mod client;
pub(crate) mod outbox;
pub mod resource;
pub mod sync;
pub mod worker;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, Change};
use crate::error::Error;
use crate::ids::AppId;
use crate::keys::{Kek, KeyError};
use crate::store::{self, Store, timestamp};

pub use client::{ClientError, ScimClient};
pub use outbox::{DROPPED_NAMED, DroppedRemovals, Pending, PendingKind};

/// Domain separation and version of the sealed token's AAD.
const AAD_LABEL: &str = "latchkey scim token v1";
/// The longest bearer token accepted.
const MAX_TOKEN: usize = 4096;
/// The longest base URL accepted.
const MAX_URL: usize = 2048;

/// What happens at an application to a user who should no longer be there (unassigned,
/// suspended or deleted in the directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnRemove {
    /// `active: false` (the account stays, disabled).
    #[default]
    Deactivate,
    /// `DELETE /Users/{id}`.
    Delete,
}

impl OnRemove {
    /// The stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            OnRemove::Deactivate => "deactivate",
            OnRemove::Delete => "delete",
        }
    }
}

impl fmt::Display for OnRemove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OnRemove {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "deactivate" => Ok(OnRemove::Deactivate),
            "delete" => Ok(OnRemove::Delete),
            other => Err(Error::invalid(
                "scim_on_remove",
                format!("{other:?}: expected deactivate or delete"),
            )),
        }
    }
}

/// Why provisioning could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// The token could not be sealed or opened (no KEK, another KEK, a damaged row).
    #[error("SCIM token: {0}")]
    Key(#[from] KeyError),
    /// The application has no SCIM connection.
    #[error("application {app} has no SCIM connection")]
    NotConnected {
        /// The application as named.
        app: String,
    },
    /// The application's SCIM server failed or refused a request.
    #[error(transparent)]
    Remote(#[from] ClientError),
    /// A disconnect would drop removals not yet delivered: those users keep their access at
    /// the application, and the queue is the only trace of it. Nothing was written.
    #[error(
        "application {app} has {users} user(s) whose removal is not delivered yet; \
         disconnecting drops it and they keep their access there (force to disconnect anyway)"
    )]
    RemovalsPending {
        /// The application as named.
        app: String,
        /// How many users.
        users: u64,
    },
}

impl ProvisioningError {
    /// The admin code of this failure.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            ProvisioningError::Store(e) => e.code(),
            ProvisioningError::Key(_) => crate::ErrorCode::Internal,
            ProvisioningError::NotConnected { .. } => crate::ErrorCode::ScimNotConnected,
            ProvisioningError::Remote(_) => crate::ErrorCode::ScimUnavailable,
            ProvisioningError::RemovalsPending { .. } => crate::ErrorCode::ScimRemovalsPending,
        }
    }
}

/// A connection as an admin gives it.
pub struct NewConnection {
    /// The SCIM base URL (`.../scim/v2`): https, or http to a loopback host.
    pub base_url: String,
    /// The bearer token the application accepts.
    pub token: Zeroizing<String>,
    /// Deactivate or delete removed users.
    pub on_remove: OnRemove,
}

impl fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewConnection")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("on_remove", &self.on_remove)
            .finish()
    }
}

/// A connection and how its delivery goes: what the CLI, API and console show. The token
/// is not part of it. Its JSON (the API's, `latchkey app scim show --json`) is
/// `latchkey_idp_web::api::scim::ScimStatusDto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStatus {
    /// The application.
    pub app_id: AppId,
    /// The SCIM base URL.
    pub base_url: String,
    /// Deactivate or delete removed users.
    pub on_remove: OnRemove,
    /// Outbox rows waiting for this application.
    pub queue_length: u64,
    /// When the oldest waiting row was written.
    pub oldest_queued_at: Option<OffsetDateTime>,
    /// The last delivery that succeeded.
    pub last_success_at: Option<OffsetDateTime>,
    /// The last failure, as the application or the network said it.
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<OffsetDateTime>,
    /// The last reconciliation run.
    pub last_sync_at: Option<OffsetDateTime>,
}

/// Where and how to reach one application, with its token opened: only the worker and a
/// reconciliation hold one.
pub struct Target {
    /// The application.
    pub app_id: AppId,
    /// Deactivate or delete removed users.
    pub on_remove: OnRemove,
    /// The client bound to its base URL and token.
    pub client: ScimClient,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("app_id", &self.app_id)
            .field("on_remove", &self.on_remove)
            .finish_non_exhaustive()
    }
}

/// SCIM connections of applications.
#[derive(Debug, Clone, Copy)]
pub struct Provisioning<'s> {
    store: &'s Store,
}

impl<'s> Provisioning<'s> {
    pub(crate) fn new(store: &'s Store) -> Self {
        Provisioning { store }
    }

    /// Connects (or reconnects) an application to its SCIM server, and queues every user
    /// it should hold, in one transaction with the `app.scim_connect` audit event (which
    /// names the URL and the policy, never the token).
    pub async fn connect(
        &self,
        actor: &Actor,
        kek: &Kek,
        app: AppId,
        new: NewConnection,
    ) -> Result<ConnectionStatus, ProvisioningError> {
        let base_url = check_url(&new.base_url)?;
        check_token(&new.token)?;
        let sealed = kek.seal_bound(&aad(app), new.token.as_bytes())?;
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let application = crate::apps::registry::fetch(&mut *conn, app)
            .await?
            .ok_or_else(|| Error::UnknownApplication {
                app: app.to_string(),
            })?;
        let before: Option<(String, String)> =
            sqlx::query_as("SELECT base_url, on_remove FROM scim_connections WHERE app_id = $1")
                .bind(app.to_db())
                .fetch_optional(&mut *conn)
                .await
                .map_err(Error::from)?;
        sqlx::query(
            "INSERT INTO scim_connections \
             (app_id, base_url, token_sealed, sealed_with, on_remove, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (app_id) DO UPDATE SET base_url = excluded.base_url, \
             token_sealed = excluded.token_sealed, sealed_with = excluded.sealed_with, \
             on_remove = excluded.on_remove, updated_at = excluded.updated_at, \
             last_error = NULL, last_error_at = NULL",
        )
        .bind(app.to_db())
        .bind(&base_url)
        .bind(&sealed)
        .bind(kek.id())
        .bind(new.on_remove.as_str())
        .bind(timestamp::format(now))
        .execute(&mut *conn)
        .await
        .map_err(Error::from)?;
        outbox::app_connected(&mut *conn, app, now).await?;
        let shown = |url: &str, on_remove: &str| serde_json::json!({ "scim_url": url, "on_remove": on_remove, "token": "(set)" });
        audit::record(
            conn,
            actor,
            now,
            Change {
                action: "app.scim_connect",
                target_kind: "application",
                target_id: app.to_string(),
                target_name: application.settings.entity_id.clone(),
                before: before.map(|(u, o)| shown(&u, &o)),
                after: Some(shown(&base_url, new.on_remove.as_str())),
            },
        )
        .await?;
        store::commit(tx).await?;
        self.store.wake_outbox();
        self.status(app)
            .await?
            .ok_or_else(|| ProvisioningError::NotConnected {
                app: app.to_string(),
            })
    }

    /// Removes an application's SCIM connection with its queue and remote ids; the users
    /// stay as they are at the application. Refused ([`ProvisioningError::RemovalsPending`],
    /// nothing written) while a removal waits in the queue, unless `force`: then the
    /// `app.scim_disconnect` event names the users whose removals were dropped (a count and
    /// the first [`DROPPED_NAMED`] by name), and so does the answer.
    pub async fn disconnect(
        &self,
        actor: &Actor,
        app: AppId,
        force: bool,
    ) -> Result<DroppedRemovals, ProvisioningError> {
        let now = self.store.now();
        let mut tx = self.store.begin().await?;
        let conn = store::conn(&mut tx);
        let application = crate::apps::registry::fetch(&mut *conn, app)
            .await?
            .ok_or_else(|| Error::UnknownApplication {
                app: app.to_string(),
            })?;
        let removed = sqlx::query("DELETE FROM scim_connections WHERE app_id = $1")
            .bind(app.to_db())
            .execute(&mut *conn)
            .await
            .map_err(Error::from)?
            .rows_affected();
        if removed == 0 {
            return Err(ProvisioningError::NotConnected {
                app: application.settings.entity_id,
            });
        }
        let tag = format!("disconnect:{}", uuid::Uuid::new_v4());
        let dropped = outbox::take_app(&mut *conn, app, &tag, now).await?;
        if dropped.users > 0 && !force {
            // The transaction is dropped: nothing was written.
            return Err(ProvisioningError::RemovalsPending {
                app: application.settings.entity_id,
                users: dropped.users,
            });
        }
        outbox::drop_taken(&mut *conn, app, &tag).await?;
        sqlx::query("DELETE FROM scim_remote_ids WHERE app_id = $1")
            .bind(app.to_db())
            .execute(&mut *conn)
            .await
            .map_err(Error::from)?;
        let after = (dropped.users > 0).then(|| {
            let users: Vec<serde_json::Value> = dropped
                .named
                .iter()
                .map(|(id, name)| serde_json::json!({ "id": id, "name": name }))
                .collect();
            serde_json::json!({
                "forced": true,
                "dropped_removals": dropped.users,
                "users": users,
            })
        });
        audit::record(
            conn,
            actor,
            now,
            Change {
                action: "app.scim_disconnect",
                target_kind: "application",
                target_id: app.to_string(),
                target_name: application.settings.entity_id,
                before: None,
                after,
            },
        )
        .await?;
        store::commit(tx).await?;
        Ok(dropped)
    }

    /// What waits in the outbox for `user`, per application: removals and updates not yet
    /// delivered, with their age, tries and last failure.
    pub async fn pending_for_user(&self, user: crate::ids::UserId) -> Result<Vec<Pending>, Error> {
        outbox::pending_of_user(self.store, user).await
    }

    /// When the oldest removal still waiting in the outbox was written (any application):
    /// how long someone has kept access the directory took away.
    pub async fn oldest_waiting_removal(&self) -> Result<Option<OffsetDateTime>, Error> {
        outbox::oldest_removal(self.store).await
    }

    /// The application's connection and delivery state, if it has one.
    pub async fn status(&self, app: AppId) -> Result<Option<ConnectionStatus>, Error> {
        let rows = self.statuses_where(Some(app)).await?;
        Ok(rows.into_iter().next())
    }

    /// Every connection's state, for metrics and the health check.
    pub async fn statuses(&self) -> Result<Vec<ConnectionStatus>, Error> {
        self.statuses_where(None).await
    }

    async fn statuses_where(&self, app: Option<AppId>) -> Result<Vec<ConnectionStatus>, Error> {
        let sql = "SELECT c.app_id, c.base_url, c.on_remove, c.last_success_at, c.last_error, \
                   c.last_error_at, c.last_sync_at, \
                   (SELECT COUNT(*) FROM scim_outbox o WHERE o.app_id = c.app_id) AS queued, \
                   (SELECT MIN(o.created_at) FROM scim_outbox o WHERE o.app_id = c.app_id) \
                   AS oldest FROM scim_connections c";
        let rows = match app {
            Some(app) => {
                let sql = sqlx::AssertSqlSafe(format!("{sql} WHERE c.app_id = $1"));
                sqlx::query(sql)
                    .bind(app.to_db())
                    .fetch_all(self.store.pool())
                    .await?
            }
            None => {
                let sql = sqlx::AssertSqlSafe(format!("{sql} ORDER BY c.app_id"));
                sqlx::query(sql).fetch_all(self.store.pool()).await?
            }
        };
        let when = |what: &'static str, v: Option<String>| {
            v.map(|t| timestamp::parse(what, &t)).transpose()
        };
        rows.into_iter()
            .map(|row| {
                Ok(ConnectionStatus {
                    app_id: AppId::from_db(&row.try_get::<String, _>("app_id")?)?,
                    base_url: row.try_get("base_url")?,
                    on_remove: row.try_get::<String, _>("on_remove")?.parse()?,
                    queue_length: u64::try_from(row.try_get::<i64, _>("queued")?).unwrap_or(0),
                    oldest_queued_at: when("scim_outbox.created_at", row.try_get("oldest")?)?,
                    last_success_at: when(
                        "scim_connections.last_success_at",
                        row.try_get("last_success_at")?,
                    )?,
                    last_error: row.try_get("last_error")?,
                    last_error_at: when(
                        "scim_connections.last_error_at",
                        row.try_get("last_error_at")?,
                    )?,
                    last_sync_at: when(
                        "scim_connections.last_sync_at",
                        row.try_get("last_sync_at")?,
                    )?,
                })
            })
            .collect()
    }

    /// The application's connection with its token opened, ready to send.
    pub async fn target(
        &self,
        kek: &Kek,
        app: AppId,
        settings: &client::ClientSettings,
    ) -> Result<Target, ProvisioningError> {
        let http = client::Http::new(settings)?;
        self.target_on(kek, app, &http).await
    }

    /// [`Provisioning::target`] over an HTTP client already built (the worker's, shared by
    /// every application).
    pub async fn target_on(
        &self,
        kek: &Kek,
        app: AppId,
        http: &client::Http,
    ) -> Result<Target, ProvisioningError> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT base_url, token_sealed, sealed_with, on_remove FROM scim_connections \
             WHERE app_id = $1",
        )
        .bind(app.to_db())
        .fetch_optional(self.store.pool())
        .await
        .map_err(Error::from)?;
        let Some((base_url, sealed, sealed_with, on_remove)) = row else {
            return Err(ProvisioningError::NotConnected {
                app: app.to_string(),
            });
        };
        let token = kek.open_bound(&app.to_string(), &aad(app), &sealed_with, &sealed)?;
        let token =
            Zeroizing::new(
                String::from_utf8(token.to_vec()).map_err(|_| KeyError::Tampered {
                    id: app.to_string(),
                })?,
            );
        Ok(Target {
            app_id: app,
            on_remove: on_remove.parse()?,
            client: http.client(&base_url, token),
        })
    }

    /// Records the outcome of a delivery or a run on the connection's state.
    pub(crate) async fn record_outcome(
        &self,
        app: AppId,
        outcome: std::result::Result<(), &str>,
    ) -> Result<(), Error> {
        let now = timestamp::format(self.store.now());
        let query = match outcome {
            Ok(()) => {
                sqlx::query("UPDATE scim_connections SET last_success_at = $2 WHERE app_id = $1")
                    .bind(app.to_db())
                    .bind(now)
            }
            Err(error) => sqlx::query(
                "UPDATE scim_connections SET last_error = $2, last_error_at = $3 \
                 WHERE app_id = $1",
            )
            .bind(app.to_db())
            .bind(clip(error))
            .bind(now),
        };
        query.execute(self.store.pool()).await?;
        Ok(())
    }

    /// When the oldest row still waiting in the outbox was written (any application): the
    /// health check's measure of a stuck queue.
    pub async fn oldest_waiting(&self) -> Result<Option<OffsetDateTime>, Error> {
        outbox::oldest(self.store).await
    }

    /// The applications with a connection.
    pub async fn connected_apps(&self) -> Result<Vec<AppId>, Error> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT app_id FROM scim_connections ORDER BY app_id")
                .fetch_all(self.store.pool())
                .await?;
        ids.iter().map(|id| AppId::from_db(id)).collect()
    }
}

/// The AAD that binds a sealed token to its application's row.
fn aad(app: AppId) -> String {
    format!("{AAD_LABEL}|{app}")
}

/// Error text as stored: a bounded length, so a chatty server cannot grow the row.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A base URL: absolute, https, or http only to a loopback host (a bearer token must not
/// cross a network in clear); no query, fragment or credentials; stored without the
/// trailing slash.
fn check_url(text: &str) -> Result<String, Error> {
    let field = "scim_url";
    let text = text.trim();
    if text.len() > MAX_URL {
        return Err(Error::invalid(
            field,
            format!("longer than {MAX_URL} bytes"),
        ));
    }
    let url = url::Url::parse(text).map_err(|e| Error::invalid(field, format!("{text:?}: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if crate::config::smtp::is_loopback(host) => {}
        _ => {
            return Err(Error::invalid(
                field,
                format!("{text:?}: must be https (http only to a loopback host)"),
            ));
        }
    }
    if host.is_empty()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(Error::invalid(
            field,
            format!("{text:?}: a base URL has a host and no query, fragment or credentials"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn check_token(token: &str) -> Result<(), Error> {
    let field = "scim_token";
    if token.is_empty() || token.len() > MAX_TOKEN {
        return Err(Error::invalid(
            field,
            format!("must be 1-{MAX_TOKEN} bytes"),
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be printable ASCII without spaces (an HTTP bearer token)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        assert_eq!(
            check_url("https://wiki.example.org/scim/v2/").unwrap(),
            "https://wiki.example.org/scim/v2"
        );
        assert!(check_url("http://127.0.0.1:8080/scim/v2").is_ok());
        assert!(check_url("http://localhost/scim/v2").is_ok());
        assert!(check_url("http://wiki.example.org/scim/v2").is_err());
        assert!(check_url("https://u:p@wiki.example.org/scim/v2").is_err());
        assert!(check_url("https://wiki.example.org/scim/v2?x=1").is_err());
        assert!(check_url("ftp://wiki.example.org/").is_err());
    }

    #[test]
    fn tokens_are_printable_and_bounded() {
        assert!(check_token("abc-123_XYZ.~+/=").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("a b").is_err());
        assert!(check_token("a\nb").is_err());
        assert!(check_token(&"x".repeat(MAX_TOKEN + 1)).is_err());
    }

    #[test]
    fn long_errors_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(400);
        let clipped = clip(&long);
        assert!(clipped.len() <= 504);
        assert!(clipped.ends_with("..."));
    }
}
