//! The connection pool shared by the account store and the SQL replay cache.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::error::StoreError;

/// The SQL backends the schema is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (one node, or tests).
    Sqlite,
    /// PostgreSQL (several app nodes sharing accounts and the replay cache).
    Postgres,
}

/// A migrated database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

/// The migrations table, named apart from sqlx's default so the SP schema can share a database
/// with another sqlx-migrated schema (the IdP's, say) without either seeing the other's
/// migrations as missing.
const MIGRATIONS_TABLE: &str = "_latchkey_sp_migrations";

/// How long a SQLite writer waits for the lock. Logins hold it for a few statements, so this
/// only matters under a burst of concurrent first logins.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

impl Database {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and applies the schema.
    ///
    /// SQLite connections get WAL journalling (readers do not block the writer), a busy
    /// timeout, and foreign keys; an in-memory SQLite database gets a single connection,
    /// because each connection would otherwise see its own empty database.
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
        let mut options = AnyPoolOptions::new();
        if backend == Backend::Sqlite {
            if url.contains(":memory:") || url.contains("mode=memory") {
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
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;
        Ok(Self { pool, backend })
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
}
