//! The database behind the IdP: one SQLite file by default, or PostgreSQL shared by many nodes.
//!
//! Everything goes through sqlx's `Any` driver with runtime queries, so each query is written
//! once. The SQL is kept portable (`$N` placeholders, `ON CONFLICT`, text timestamps, integer
//! flags); what genuinely differs per backend lives in [`backend`]. Nothing that several IdP
//! nodes must agree on is kept in process memory: a [`Store`] is a connection pool, and the one
//! copy it keeps (the applications the sign-in path reads, [`crate::apps::AppCache`]) is
//! checked against the database's version of them before any answer relies on it.
//!
//! ```no_run
//! # async fn demo() -> latchkey_idp::Result<()> {
//! use latchkey_idp::apps::NewApplication;
//! use latchkey_idp::directory::{NewGroup, NewUser};
//! use latchkey_idp::{Actor, Config, Store};
//!
//! let store = Store::open(&Config::load(None)?).await?;
//! let admin = Actor::cli("root");
//! let alice = store.users().create(&admin, NewUser::new("alice", "alice@example.org")).await?;
//! let staff = store.groups().create(&admin, NewGroup::new("staff")).await?;
//! store.groups().add_member(&admin, staff.id, alice.id).await?;
//! let wiki = NewApplication::new("https://wiki.example.org", "Wiki", "https://wiki.example.org/acs");
//! let wiki = store.apps().create(&admin, wiki).await?;
//! store.apps().assign(&admin, wiki.id, staff.id).await?;
//! assert!(store.apps().may_access(wiki.id, &alice).await?);
//! let name_id = store.apps().persistent_name_id(alice.id, wiki.id).await?;
//! # let _ = name_id;
//! # Ok(())
//! # }
//! ```

pub(crate) mod backend;
pub mod checkpoint;
pub mod front_door;
pub(crate) mod sql;
pub(crate) mod timestamp;

use std::sync::Arc;

use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Transaction};

pub use backend::Backend;

use crate::apps::{AppCache, Apps};
use crate::audit::Audit;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, PasswordConfig};
use crate::directory::{Groups, Users};
use crate::error::{Error, Result};
use crate::password::HashPool;

/// A handle on the store; cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The node's one bounded Argon2 pool: every hash of this store's users goes through it.
    hashing: HashPool,
    /// The database as shown in errors: the URL with any password removed.
    name: String,
    /// A SQLite file's URL, which [`Store::probe_write`] opens a connection of its own to
    /// (`latchkey_sp::store::probe_connection`); `None` on PostgreSQL and in memory.
    probe_url: Option<String>,
    /// Where every part of the IdP reads the time (see [`crate::clock`]).
    clock: Arc<dyn Clock>,
    /// Wakes this node's SCIM delivery worker after a change wrote outbox rows.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// This node's copy of the applications sign-ins read, checked before every use.
    apps_cache: Arc<AppCache>,
}

/// A write transaction. Dropping it without [`Store::commit`] rolls everything back.
pub(crate) type WriteTx = Transaction<'static, sqlx::Any>;

/// How long a server connection may sit in the pool before it is pinged on checkout.
const PING_WHEN_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl Store {
    /// Opens (creating if needed) the store the configuration names and applies migrations.
    ///
    /// With the default SQLite file, a data folder or file that cannot be written is named
    /// with its cause ([`Error::DataDirUnwritable`], [`Error::DatabaseUnwritable`]) instead
    /// of what the pool would say 30 s later ("pool timed out"). Opening does not write: a
    /// server should follow with [`Store::probe_write`], which also catches what only a
    /// write shows (a read-only file system, a file SQLite could open only read-only).
    pub async fn open(config: &Config) -> Result<Store> {
        if config.database.url.is_some() {
            return Self::open_url(
                &config.database_url(),
                config.database.max_connections,
                config.password,
            )
            .await;
        }
        let file = config.data_dir.join(crate::config::SQLITE_FILE);
        private_file(&config.data_dir, &file)?;
        let url = config.database_url();
        // The pool retries a connection SQLite refuses (say, a folder where it cannot create
        // the -wal and -shm files) until its 30 s run out and then says only "pool timed
        // out"; one connection of our own fails at once, with SQLite's reason.
        let unwritable = |e: &dyn std::fmt::Display| Error::DatabaseUnwritable {
            database: file.display().to_string(),
            reason: format!(
                "SQLite cannot open it ({e}); check that the file and its folder are \
                 writable (SQLite creates -wal and -shm files beside it)"
            ),
            locked: false,
        };
        sqlx::any::install_default_drivers();
        let mut first =
            <AnyConnection as sqlx::Connection>::connect(&Backend::Sqlite.connect_url(&url))
                .await
                .map_err(|e| unwritable(&e))?;
        sqlx::query("SELECT COUNT(*) FROM sqlite_master")
            .fetch_one(&mut first)
            .await
            .map_err(|e| unwritable(&e))?;
        let _ = sqlx::Connection::close(first).await;
        Self::open_url(&url, config.database.max_connections, config.password)
            .await
            .map_err(|e| match e {
                Error::Busy {
                    what: crate::error::DATABASE_POOL_EXHAUSTED,
                    ..
                } => unwritable(&"timed out"),
                other => other,
            })
    }

    /// Opens the store at a database URL directly; used by [`Store::open`] and by tests.
    pub async fn open_url(
        url: &str,
        max_connections: impl Into<Option<u32>>,
        password: PasswordConfig,
    ) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        backend.check_url(url)?;
        let url = backend.connect_url(url);
        let max_connections = max_connections
            .into()
            .unwrap_or_else(|| backend.default_max_connections());
        // sqlx pings every connection before each checkout by default: a round trip per
        // statement (to the worker thread with SQLite, to the server with PostgreSQL). A
        // file cannot drop a connection, so SQLite's are never pinged; a server's are pinged
        // only after they sat idle (a restart or a firewall may have cut them meanwhile),
        // as HikariCP does. Under load connections are never idle that long.
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false);
        if backend.in_memory(&url) {
            // Each SQLite connection to memory has a database of its own, which lives as long
            // as the connection: one connection, never recycled.
            options = options
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        if backend == Backend::Postgres {
            options = options.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_WHEN_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        }
        if backend == Backend::Sqlite {
            // Under WAL, NORMAL syncs at checkpoints instead of at every commit: a power cut
            // may lose the last commits (sessions, audit lines) but never corrupts the file,
            // and every sign-in stops paying an fsync per write. A server checkpoints from a
            // task of its own ([`checkpoint`]); a commit does only past a larger WAL.
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = NORMAL").await?;
                    sqlx::Executor::execute(&mut *conn, checkpoint::FALLBACK).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        backend.prepare(&pool).await?;
        backend.migrate(&pool).await?;
        let indexed = crate::directory::words::backfill(&pool, backend).await?;
        if indexed > 0 {
            tracing::info!(
                users = indexed,
                "users' search words written (migration 0590)"
            );
        }
        Ok(Store {
            pool,
            backend,
            hashing: HashPool::new(password),
            name: backend::redact(&url),
            probe_url: (backend == Backend::Sqlite && !backend.in_memory(&url))
                .then(|| url.clone()),
            clock: Arc::new(SystemClock),
            outbox_wake: Arc::default(),
            apps_cache: Arc::default(),
        })
    }

    /// This handle (same pool) reading the time from `clock` instead of the wall clock.
    /// Everything reached through it (directory, sessions, throttle, web and API state)
    /// then runs on that clock; tests use a [`crate::ManualClock`] to move time on.
    pub fn with_clock(self, clock: impl Clock + 'static) -> Store {
        Store {
            clock: Arc::new(clock),
            ..self
        }
    }

    /// The current time by the store's clock, truncated to what is stored (microseconds),
    /// so that a value written and read back compares equal.
    pub fn now(&self) -> time::OffsetDateTime {
        timestamp::truncate(self.clock.now())
    }

    /// Checks that the database takes a write within `timeout`: one row of
    /// `readiness_probe` is updated and committed (the table never grows). A read would
    /// answer from a read-only file or while another connection holds the write lock, where
    /// every sign-in fails; this fails there too, and in bounded time, because a readiness
    /// check that waits for the pool's 30 s is no check. PostgreSQL is told the same bound
    /// (`lock_timeout`), so a probe given up on does not go on holding a connection; on a
    /// SQLite file the probe runs on a connection of its own, waiting for the lock no longer
    /// than `timeout` (`latchkey_sp::store::probe_connection`), never on the pool's.
    pub async fn probe_write(&self, timeout: std::time::Duration) -> Result<()> {
        let probe = async {
            let update = sqlx::query("UPDATE readiness_probe SET probed_at = $1 WHERE id = 1")
                .bind(timestamp::format(self.now()));
            if let Some(url) = &self.probe_url {
                // On a connection of its own that waits for the lock no longer than the
                // probe: a pool connection given up on would go on waiting, out of the
                // pool, for SQLite's busy timeout.
                let mut conn = latchkey_sp::store::probe_connection(url, timeout).await?;
                let mut tx = sqlx::Connection::begin_with(&mut conn, "BEGIN IMMEDIATE").await?;
                let updated = update.execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                let _ = sqlx::Connection::close(conn).await;
                return Ok::<_, Error>(updated);
            }
            let mut tx = self.begin().await?;
            if self.backend == Backend::Postgres {
                let ms = timeout.as_millis().max(1);
                // Only a number is formatted in.
                let sql = sqlx::AssertSqlSafe(format!("SET LOCAL lock_timeout = {ms}"));
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            let updated = update.execute(&mut *tx).await?.rows_affected();
            commit(tx).await?;
            Ok::<_, Error>(updated)
        };
        let (reason, locked) = match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(1)) => return Ok(()),
            Ok(Ok(_)) => ("the readiness_probe row is missing".to_owned(), false),
            Ok(Err(e)) => unwritable_reason(&e, timeout),
            Err(_) => (timed_out(timeout), true),
        };
        Err(Error::DatabaseUnwritable {
            database: self.name.clone(),
            reason,
            locked,
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The Argon2id parameters new password hashes are made with.
    pub fn password_config(&self) -> PasswordConfig {
        self.hashing.config()
    }

    /// The bounded pool every password hash and check goes through.
    pub fn hashing(&self) -> &HashPool {
        &self.hashing
    }

    /// The latest applied schema migration version.
    pub async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(version.unwrap_or(0))
    }

    /// Users in the directory.
    pub fn users(&self) -> Users<'_> {
        Users::new(self)
    }

    /// Groups in the directory and their members.
    pub fn groups(&self) -> Groups<'_> {
        Groups::new(self)
    }

    /// Registered service providers, their access policy and pairwise NameIDs.
    pub fn apps(&self) -> Apps<'_> {
        Apps::new(self)
    }

    /// Invitation and password-reset links.
    pub fn enrollment(&self) -> crate::enrollment::Enrollment<'_> {
        crate::enrollment::Enrollment::new(self)
    }

    /// Console roles and the permission check.
    pub fn roles(&self) -> crate::console::Roles<'_> {
        crate::console::Roles::new(self)
    }

    /// SCIM connections of applications (the IdP's SCIM client).
    pub fn provisioning(&self) -> crate::provisioning::Provisioning<'_> {
        crate::provisioning::Provisioning::new(self)
    }

    /// Tells this node's SCIM delivery worker that the outbox may hold new rows; called after
    /// a commit (a worker woken before the commit would find nothing and wait for its poll).
    pub fn wake_outbox(&self) {
        self.outbox_wake.notify_one();
    }

    pub(crate) fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.outbox_wake)
    }

    /// The audit log.
    pub fn audit(&self) -> Audit<'_> {
        Audit::new(self)
    }

    /// Brings PostgreSQL's planner statistics and visibility map up to date for the
    /// directory's and the audit log's tables, as autovacuum does a minute or two after a
    /// bulk load. Until then a freshly loaded index range is read through the heap (a bitmap
    /// scan, ~4x slower at 100,000 users) rather than from the index alone, so a measurement
    /// taken at once would time the load's aftermath, not the directory. SQLite has no
    /// visibility map and the store keeps no `sqlite_stat1`, so there it does nothing.
    pub async fn settle_after_bulk_load(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            // The simple protocol: VACUUM runs outside any transaction block.
            sqlx::raw_sql(
                "VACUUM (ANALYZE) users, user_words, directory_groups, group_members, \
                 audit_events",
            )
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn apps_cache(&self) -> &AppCache {
        &self.apps_cache
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction. On SQLite it takes the write lock up front, so two writers
    /// queue on the busy timeout instead of one failing when it upgrades a read lock.
    pub(crate) async fn begin(&self) -> Result<WriteTx> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }

    /// Starts a write transaction that runs one at a time with every other holding `lock`,
    /// on every node: for a cap taken by a conditional insert (`INSERT ... SELECT ... WHERE
    /// (SELECT COUNT(*) ...) < cap`). SQLite's write lock, taken up front, already serializes
    /// it; on PostgreSQL concurrent statements would each count their own snapshot, so the
    /// transaction first takes the transaction advisory lock `lock`.
    pub(crate) async fn begin_serialized(&self, lock: i64) -> Result<WriteTx> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

/// Says why a write failed in the words an operator acts on, and whether it only waited
/// too long for the write lock (which passes on its own) rather than being refused.
fn unwritable_reason(err: &Error, timeout: std::time::Duration) -> (String, bool) {
    if let Error::Busy {
        what: crate::error::DATABASE_CONTENDED,
        ..
    } = err
    {
        return (timed_out(timeout), true);
    }
    let Error::Database(sqlx::Error::Database(db)) = err else {
        return (err.to_string(), false);
    };
    let code = db.code().unwrap_or_default();
    // SQLite: SQLITE_READONLY and its extended codes ("attempt to write a readonly database").
    let read_only = matches!(
        code.as_ref(),
        "8" | "264" | "520" | "776" | "1032" | "1288" | "1544"
    ) || db.message().contains("readonly");
    // PostgreSQL: lock_not_available (SQLite's busy codes arrive as `Error::Busy`, above).
    let locked = code.as_ref() == "55P03";
    if read_only {
        let reason = format!(
            "it is read-only ({}); check the permissions of the file and its folder, and that \
             the file system is mounted read-write",
            db.message()
        );
        (reason, false)
    } else if locked {
        (timed_out(timeout), true)
    } else {
        (err.to_string(), false)
    }
}

fn timed_out(timeout: std::time::Duration) -> String {
    format!(
        "timed out after {} ms: locked by another connection, or overloaded",
        timeout.as_millis()
    )
}

/// Creates the data directory (0700) and an empty SQLite file (0600) when missing, so the
/// password hashes inside are never readable by other local users. SQLite gives its `-wal`
/// and `-shm` files the main file's permissions. Existing files are left as the admin made
/// them.
fn private_file(dir: &std::path::Path, file: &std::path::Path) -> Result<()> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |error| Error::DataDirUnwritable { path, error }
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        // Opened for writing (not created) to name a file the server cannot write now,
        // rather than let SQLite quietly open it read-only.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map(drop)
            .map_err(io(file)),
        Err(e) => Err(io(file)(e)),
    }
}

/// Commits a write transaction.
pub(crate) async fn commit(tx: WriteTx) -> Result<()> {
    tx.commit().await?;
    Ok(())
}

/// The connection inside a transaction, for helpers that run several statements in it.
pub(crate) fn conn(tx: &mut WriteTx) -> &mut AnyConnection {
    tx
}

/// Case-folds a username, e-mail address or group name for uniqueness and lookup.
pub(crate) fn fold(value: &str) -> String {
    value.to_lowercase()
}

/// Whether a database error is a uniqueness violation on a constraint or column whose name
/// contains `marker`. SQLite reports `table.column`, PostgreSQL the constraint name; our
/// constraint names embed the column name, so one marker matches both.
pub(crate) fn is_unique_violation(err: &Error, marker: &str) -> bool {
    match err {
        Error::Database(sqlx::Error::Database(db)) => {
            db.is_unique_violation()
                && (db.message().contains(marker)
                    || db.constraint().is_some_and(|c| c.contains(marker)))
        }
        _ => false,
    }
}

/// Whether a statement failed on a foreign key: a row it refers to is gone (deleted by a
/// concurrent writer since it was read).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// Converts an integer flag column into a bool (flags are integers on both backends).
pub(crate) fn flag(value: i64) -> bool {
    value != 0
}

/// Converts a bool into the integer stored in flag columns.
pub(crate) fn to_flag(value: bool) -> i64 {
    i64::from(value)
}
