//! The connection pool shared by the account store and the SQL replay cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use time::OffsetDateTime;

use crate::error::StoreError;

/// The SQL backends the schema is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (one node, or tests).
    Sqlite,
    /// PostgreSQL (several app nodes sharing accounts and the replay cache).
    Postgres,
}

/// A migrated database. Clones share the pool.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// Shared by clones and by nothing else: two handles are "the same database" (so the
    /// replay cache can join the login's transaction) exactly when they share this.
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// When (Unix ms) the replay cache's expired entries are next deleted.
    next_replay_prune: AtomicI64,
    /// Until when (Unix ms) an entry recorded before the replay cache was keyed by the
    /// IssueInstant may hold its ID ([`crate::replay::legacy_entries_until`]).
    legacy_replay_until: i64,
    /// The URL [`Database::probe`] opens its own connection to: a SQLite file database's
    /// (see [`probe_connection`]); `None` on PostgreSQL and in memory.
    probe_url: Option<String>,
    /// The thread logins are written by, on a SQLite file database (`store::writer`).
    #[cfg(feature = "sqlite")]
    writer: Option<super::writer::SqliteWriter>,
}

/// How many logins the SQLite login writer has run and in how many commits: their ratio is
/// how many logins shared a commit on average. The takes of pending requests (SP-initiated
/// logins) run on the writer too and count as logins here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions the writer committed (or tried to).
    pub commits: u64,
    /// Logins it ran in them.
    pub logins: u64,
    /// Of those, the logins run on a request's thread: the one that found the connection
    /// free, and those that queued while it held it (in its commits).
    pub inline: u64,
    /// Checkpoints of the WAL the writer's thread ran.
    pub checkpoints: u64,
}

/// The migrations table, named apart from sqlx's default so the SP schema can share a database
/// with another sqlx-migrated schema (the IdP's, say) without either seeing the other's
/// migrations as missing.
const MIGRATIONS_TABLE: &str = "_latchkey_sp_migrations";

/// How long a SQLite writer waits for the lock. Logins hold it for a few statements, so this
/// only matters under a burst of concurrent first logins.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// SQLite connections in a file database's pool. SQLite runs one writer at a time whatever
/// the pool size (logins queue on `BEGIN IMMEDIATE`), and every commit makes the other
/// connections' page caches stale (they re-read what changed), so more connections only cost
/// CPU. Two rather than one: a read can proceed beside a login, and an application that holds
/// a connection of [`Database::pool`] while calling the toolkit does not wait on itself.
const SQLITE_MAX_CONNECTIONS: u32 = 2;

/// How often expired replay-cache entries are deleted. An expired entry left in the table
/// is harmless (recording an ID overwrites an expired entry), so this only bounds the
/// table's size, without a DELETE in every login.
const REPLAY_PRUNE_INTERVAL_MS: i64 = 60_000;
/// Expired replay-cache entries deleted per statement, so a prune never holds the write lock
/// for long (a few milliseconds a batch).
const REPLAY_PRUNE_BATCH: i64 = 1_000;

impl Database {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies the schema.
    ///
    /// SQLite connections get WAL journalling (readers do not block the writer), a busy
    /// timeout, and foreign keys; an in-memory SQLite database gets a single connection,
    /// because each connection would otherwise see its own empty database, and a file one
    /// two (see `SQLITE_MAX_CONNECTIONS`). The pool does not ping a SQLite connection before
    /// handing it out (sqlx's default): the connection is a file handle on this machine, and
    /// the ping would be one more trip to the connection's worker thread for every statement
    /// a login runs. A SQLite file database also gets its login writer (`store::writer`): one
    /// more connection that the JIT engine writes logins through, on the request's thread when
    /// the writer is idle, else on the writer's own thread.
    ///
    /// A SQLite URL may name SQLite's `unix-excl` VFS
    /// (`sqlite:///srv/app/sp.db?mode=rwc&vfs=unix-excl`) when this process is the only one
    /// that opens the file while it runs: its connections then share the file's locks and
    /// write-ahead-log index in memory, and a transaction takes no file lock (six `fcntl`
    /// system calls fewer per login, about a tenth of a returning login's CPU:
    /// BENCHMARKS.md). Any other process (a second node on the same file, the `sqlite3`
    /// shell, a backup tool, `latchkey sp plan --database`) is then told the database is
    /// locked until this one closes it. Without it (SQLite's default VFS), every process may
    /// open the file at any time.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedBackend(scheme.to_owned()));
        };
        let compiled_in = match backend {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
        };
        if !compiled_in {
            // Said here, because sqlx would only say that no driver matches the URL.
            let scheme = url.split(':').next().unwrap_or_default();
            return Err(StoreError::UnsupportedBackend(format!(
                "{scheme} (latchkey-sp was built without that driver's feature)"
            )));
        }
        #[cfg(feature = "sqlite")]
        if backend == Backend::Sqlite && !in_memory(url) {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            if options.get_filename().as_os_str().is_empty() {
                return Err(StoreError::NoDatabaseFile(url.to_owned()));
            }
        }
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            options = options
                .test_before_acquire(false)
                .max_connections(SQLITE_MAX_CONNECTIONS);
            if in_memory(url) {
                // The database lives exactly as long as its one connection: never recycle it.
                options = options
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    // Under WAL, NORMAL syncs at checkpoints rather than at every commit: a
                    // power cut may lose the last logins' writes, never the file's integrity.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        // Keep the pool's own wait in line with SQLite's, so a burst queues instead of failing.
        let pool = options
            .acquire_timeout(SQLITE_BUSY_TIMEOUT)
            .connect(url)
            .await?;
        // One directory per backend, in pairs that say the same thing (a test holds them to
        // it), so that either may use what only it has (SQLite's `WITHOUT ROWID`).
        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        normalize_stored_emails(&pool, backend).await?;
        let legacy_replay_until = crate::replay::legacy_entries_until(&pool).await?;
        Ok(Self {
            pool,
            backend,
            shared: Arc::new(Shared {
                next_replay_prune: AtomicI64::new(i64::MIN),
                legacy_replay_until,
                probe_url: (backend == Backend::Sqlite && !in_memory(url)).then(|| url.to_owned()),
                #[cfg(feature = "sqlite")]
                writer: match backend {
                    Backend::Sqlite => start_writer(url)?,
                    Backend::Postgres => None,
                },
            }),
        })
    }

    /// How many logins the SQLite login writer has run, in how many commits; `None` where
    /// there is no writer (PostgreSQL, an in-memory SQLite database).
    pub fn writer_stats(&self) -> Option<WriterStats> {
        #[cfg(feature = "sqlite")]
        if let Some(writer) = self.writer() {
            return Some(writer.stats());
        }
        None
    }

    /// The SQLite login writer, on a file database.
    #[cfg(feature = "sqlite")]
    pub(crate) fn writer(&self) -> Option<&super::writer::SqliteWriter> {
        self.shared.writer.as_ref()
    }

    /// The pool, for an application that keeps its own tables in the same database.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens a write transaction.
    ///
    /// On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that reads and then writes
    /// fails with SQLITE_BUSY when another writer got in between, and the busy timeout cannot
    /// help; taking the write lock up front makes concurrent logins queue instead. PostgreSQL
    /// uses row locks (`FOR UPDATE`) and the unique index instead.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Checks that the database can take a login's write within `timeout`, for a readiness
    /// check: a transaction is opened as a login opens one (on SQLite `BEGIN IMMEDIATE`,
    /// which takes the write lock; on PostgreSQL a connection of the pool, told the same
    /// bound as `statement_timeout`), runs one statement and is rolled back: nothing is
    /// written. Gives up after `timeout` (a check that waits for the pool's or SQLite's 30 s
    /// is no check): a closed pool, an unreachable server or a write lock held elsewhere
    /// all fail it in bounded time ([`StoreError::TimedOut`] for the lock).
    ///
    /// On a SQLite file the probe runs on a connection of its own ([`probe_connection`]),
    /// never on the pool's: a pool connection given up on while `BEGIN IMMEDIATE` waits for
    /// the lock would go on waiting out of the pool for SQLite's 30 s busy timeout, so a few
    /// probes (anyone may call `/readyz`) would take the pool's two connections from every
    /// login.
    pub async fn probe(&self, timeout: Duration) -> Result<(), StoreError> {
        let probe = async {
            if let Some(url) = &self.shared.probe_url {
                let mut conn = probe_connection(url, timeout).await?;
                let begun = conn.execute("BEGIN IMMEDIATE").await;
                if begun.as_ref().is_err_and(is_sqlite_busy) {
                    return Err(StoreError::TimedOut(timeout));
                }
                begun?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                conn.execute("ROLLBACK").await?;
                conn.close().await?;
                return Ok(());
            }
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                let ms = timeout.as_millis().max(1);
                // Only a number is formatted in.
                let sql = sqlx::AssertSqlSafe(format!("SET LOCAL statement_timeout = {ms}"));
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            sqlx::query("SELECT 1").execute(&mut *tx).await?;
            tx.rollback().await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(timeout, probe).await {
            Ok(done) => done,
            Err(_) => Err(StoreError::TimedOut(timeout)),
        }
    }

    /// Until when (Unix ms) an entry of the replay cache recorded before it was keyed by the
    /// IssueInstant too may hold its ID; `i64::MIN` when there is none.
    pub(crate) fn legacy_replay_entries_until(&self) -> i64 {
        self.shared.legacy_replay_until
    }

    /// Whether `other` is a handle on this same pool (a clone of it).
    pub fn same_as(&self, other: &Database) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Deletes expired replay-cache entries if the last prune through this pool was more
    /// than [`REPLAY_PRUNE_INTERVAL_MS`] ago (by `now`). Runs in its own statement, never
    /// inside a login's transaction, so it holds no lock a login waits for.
    pub(crate) async fn prune_replay_cache_if_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now_ms = super::millis(now);
        let due = self.shared.next_replay_prune.load(Ordering::Relaxed);
        // Only the caller that moves the deadline prunes; the others go on.
        if now_ms < due
            || self
                .shared
                .next_replay_prune
                .compare_exchange(
                    due,
                    now_ms.saturating_add(REPLAY_PRUNE_INTERVAL_MS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(());
        }
        self.prune_replay_cache(now).await?;
        Ok(())
    }

    /// Deletes the replay-cache entries expired at `now`; returns how many.
    ///
    /// A scan of the table: an index on the expiry would be one more page written by every
    /// login, to save reading, once a minute, the entries of the last minutes. In batches of
    /// [`REPLAY_PRUNE_BATCH`], each its own statement: a busy minute's tens of thousands of
    /// deletions (each touching the key index at a random page) took seconds as one
    /// statement, holding SQLite's write lock against every login meanwhile. Entries are
    /// stored in the order they were issued, about the order they expire, so each batch's
    /// scan finds its rows early.
    pub(crate) async fn prune_replay_cache(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut pruned = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM sp_replay_cache WHERE (issued_at, assertion_id) IN (SELECT \
                 issued_at, assertion_id FROM sp_replay_cache WHERE not_on_or_after <= $1 LIMIT $2)",
            )
            .bind(super::millis(now))
            .bind(REPLAY_PRUNE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += done;
            if done < u64::try_from(REPLAY_PRUNE_BATCH).unwrap_or(u64::MAX) {
                return Ok(pruned);
            }
        }
    }
}

/// A connection of its own to the SQLite database at `url` (a file), on which a wait for the
/// write lock lasts at most `wait`: for a readiness probe, the SP's ([`Database::probe`]) and
/// the IdP's store's alike. A probe must not run on a pool's connection: given up on (a
/// timeout dropping its future) while SQLite waits for the lock, that connection goes on
/// waiting, out of the pool, for the pool's busy timeout. This one is the probe's alone and
/// waits no longer than the probe; dropped, it is closed once its statement returns.
pub async fn probe_connection(url: &str, wait: Duration) -> Result<AnyConnection, sqlx::Error> {
    install_default_drivers();
    let mut conn = AnyConnection::connect(url).await?;
    let ms = wait.as_millis().clamp(1, i32::MAX as u128);
    // Only a number is formatted in.
    sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Rewrites the e-mail keys (`sp_accounts.email`) stored before keys were NFC
/// ([`crate::jit::normalize_email`]): a key in another composition would no longer be found
/// by its address, and would not stop a second account taking it. Only keys with a
/// character outside printable ASCII are read (a scan of the column, at each start; the
/// rest are NFC already), and each is rewritten only if still what was read. One that
/// another account's key now equals is left as it is and logged: two accounts hold one
/// address in two spellings, for the operator to merge.
async fn normalize_stored_emails(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    use sqlx::Row as _;
    let select = match backend {
        Backend::Sqlite => "SELECT id, email FROM sp_accounts WHERE email GLOB '*[^ -~]*'",
        Backend::Postgres => "SELECT id, email FROM sp_accounts WHERE email ~ '[^ -~]'",
    };
    for row in sqlx::query(select).fetch_all(pool).await? {
        let id: String = row.try_get("id")?;
        let email: String = row.try_get("email")?;
        let key = crate::jit::normalize_email(&email);
        if key == email {
            continue;
        }
        let rewritten =
            sqlx::query("UPDATE sp_accounts SET email = $1 WHERE id = $2 AND email = $3")
                .bind(key)
                .bind(id.clone())
                .bind(email)
                .execute(pool)
                .await;
        match rewritten {
            Ok(_) => tracing::info!(account = %id, "e-mail key rewritten in NFC"),
            Err(e) if super::sql::is_value_taken(&e) => tracing::warn!(
                account = %id,
                "another account holds this account's e-mail address in another Unicode \
                 spelling; its key is left as it was: merge the two accounts"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Whether `e` is SQLite's busy timeout running out (SQLITE_BUSY and its extended codes).
fn is_sqlite_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| matches!(code.as_ref(), "5" | "261" | "517" | "773"))
}

/// Whether the SQLite `url` names an in-memory database (which exists only on its one
/// connection).
fn in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// The login writer for the SQLite database at `url`, once migrated; none for an in-memory one
/// (a second connection would open a database of its own).
#[cfg(feature = "sqlite")]
fn start_writer(url: &str) -> Result<Option<super::writer::SqliteWriter>, StoreError> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    if in_memory(url) || path.as_os_str().is_empty() {
        return Ok(None);
    }
    super::writer::SqliteWriter::start(path, url_vfs(url)).map(Some)
}

/// The SQLite VFS a database URL names (`?vfs=unix-excl`), if any: the login writer opens the
/// file through it too, as the pool's connections do (sqlx reads it from the URL).
#[cfg(feature = "sqlite")]
fn url_vfs(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("vfs="))
        .filter(|vfs| !vfs.is_empty())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::url_vfs;

    #[test]
    fn the_writer_opens_the_file_through_the_vfs_the_url_names() {
        assert_eq!(
            url_vfs("sqlite:///srv/sp.db?mode=rwc&vfs=unix-excl"),
            Some("unix-excl")
        );
        assert_eq!(
            url_vfs("sqlite:///srv/sp.db?vfs=unix-excl"),
            Some("unix-excl")
        );
        assert_eq!(url_vfs("sqlite:///srv/sp.db?mode=rwc"), None);
        assert_eq!(url_vfs("sqlite:///srv/vfs=unix-excl.db"), None);
        assert_eq!(url_vfs("sqlite:///srv/sp.db?vfs="), None);
    }
}
