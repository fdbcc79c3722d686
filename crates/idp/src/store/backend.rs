//! The few things that differ between SQLite and PostgreSQL, kept in one place.

use sqlx::AnyPool;
use sqlx::migrate::Migrator;

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The database engine behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One local file, WAL mode: a single IdP node.
    Sqlite,
    /// A shared server: any number of IdP nodes.
    Postgres,
}

impl Backend {
    /// Picks the backend from the URL scheme.
    pub fn from_url(url: &str) -> Result<Backend> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(Error::UnsupportedDatabase { url: redact(url) }),
        }
    }

    /// The backend a connection of the store's pool talks to, for the few statements a
    /// helper given only a connection writes per backend.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name().eq_ignore_ascii_case("postgresql") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The backend's name as shown to admins.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Whether `url` is a SQLite database in memory (`sqlite::memory:`, `mode=memory`).
    pub(crate) fn in_memory(self, url: &str) -> bool {
        self == Backend::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"))
    }

    /// Refuses a SQLite URL that names no file and is not a database in memory
    /// ([`Error::NoDatabaseFile`]).
    pub(crate) fn check_url(self, url: &str) -> Result<()> {
        if self != Backend::Sqlite || self.in_memory(url) {
            return Ok(());
        }
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
        if options.get_filename().as_os_str().is_empty() {
            return Err(Error::NoDatabaseFile {
                url: url.to_string(),
            });
        }
        Ok(())
    }

    /// The URL actually connected to: SQLite files are created when missing.
    pub(crate) fn connect_url(self, url: &str) -> String {
        match self {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_string(),
        }
    }

    /// The pool size when the configuration names none.
    ///
    /// SQLite takes one writer at a time, and each write makes every other pooled
    /// connection re-read the pages it had cached, so a few connections do the sign-in path
    /// with less CPU than many (measured with `latchkey bench sso`, see BENCHMARKS.md).
    /// PostgreSQL serves each connection with its own backend process and gains from more.
    pub fn default_max_connections(self) -> u32 {
        match self {
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        }
    }

    /// Per-database settings applied once at open.
    pub(crate) async fn prepare(self, pool: &AnyPool) -> Result<()> {
        if self == Backend::Sqlite {
            // WAL is a property of the file, so setting it once makes every later connection
            // (ours and other processes') use it: readers no longer block the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Applies the backend's migrations (PostgreSQL serialises concurrent nodes on a lock).
    pub(crate) async fn migrate(self, pool: &AnyPool) -> Result<()> {
        match self {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// The statement that opens a write transaction.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

/// Removes a password from a URL before it is shown in an error or a log.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_backend_by_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgres://a@b/c").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://a@b/c").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://u:secret@h/d").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn sqlite_files_are_created() {
        assert_eq!(
            Backend::Sqlite.connect_url("sqlite://x.db"),
            "sqlite://x.db?mode=rwc"
        );
        assert_eq!(
            Backend::Sqlite.connect_url("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
    }
}
