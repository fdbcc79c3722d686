//! Statements assembled from the filters a caller actually set.
//!
//! A filter written as `($1 IS NULL OR col = $1)` keeps one static statement, but the
//! planner must then plan for "no filter" and scans the table; listing and search at
//! 100,000 users or millions of audit rows need each set filter to appear as a plain
//! predicate an index can serve. This builder appends only fixed SQL fragments
//! (`&'static str`) and numbers the `$N` placeholders itself (sqlx's `Any` builder writes
//! `?`, which PostgreSQL refuses), so no caller-supplied text ever reaches the SQL.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, FromRow};

use crate::error::Result;

/// A value bound to one placeholder.
#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Int(i64),
}

/// A statement under construction: fixed fragments plus numbered binds.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    /// Starts a statement.
    pub(crate) fn new(head: &'static str) -> Sql {
        Sql {
            text: head.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends a fixed fragment.
    pub(crate) fn push(&mut self, fragment: &'static str) -> &mut Sql {
        self.text.push_str(fragment);
        self
    }

    /// Appends the next placeholder, bound to `value`.
    pub(crate) fn text(&mut self, value: impl Into<String>) -> &mut Sql {
        self.binds.push(Bind::Text(value.into()));
        self.placeholder()
    }

    /// Appends the next placeholder, bound to an integer.
    pub(crate) fn int(&mut self, value: i64) -> &mut Sql {
        self.binds.push(Bind::Int(value));
        self.placeholder()
    }

    fn placeholder(&mut self) -> &mut Sql {
        self.text.push('$');
        self.text.push_str(&self.binds.len().to_string());
        self
    }

    /// Runs the statement and maps every row.
    pub(crate) async fn fetch_all<T>(self, pool: &AnyPool) -> Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
    {
        let mut query = sqlx::query_as::<Any, T>(sqlx::AssertSqlSafe(self.text));
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        Ok(query.fetch_all(pool).await?)
    }

    /// Runs a statement that yields one integer (a count).
    pub(crate) async fn fetch_int(self, pool: &AnyPool) -> Result<i64> {
        let mut query = sqlx::query_scalar::<Any, i64>(sqlx::AssertSqlSafe(self.text));
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        Ok(query.fetch_one(pool).await?)
    }

    /// The plan the database chooses, one line per step: `EXPLAIN QUERY PLAN` on SQLite,
    /// `EXPLAIN` on PostgreSQL. Tests assert on it that each filter is served by an index.
    pub(crate) async fn plan(self, pool: &AnyPool, postgres: bool) -> Result<String> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain(&self.text, postgres)));
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        plan_of(query.fetch_all(pool).await?, postgres)
    }
}

/// `statement` asked for its plan: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on PostgreSQL
/// (neither runs it). For statements not built with [`Sql`]; read the rows with [`plan_of`].
pub(crate) fn explain(statement: &str, postgres: bool) -> String {
    if postgres {
        format!("EXPLAIN {statement}")
    } else {
        format!("EXPLAIN QUERY PLAN {statement}")
    }
}

/// The rows of an [`explain`], one line per step.
pub(crate) fn plan_of(rows: Vec<AnyRow>, postgres: bool) -> Result<String> {
    use sqlx::Row;
    let mut lines = Vec::new();
    for row in rows {
        // SQLite: (id, parent, notused, detail); PostgreSQL: one `QUERY PLAN` column.
        let line: String = if postgres {
            row.try_get(0)?
        } else {
            row.try_get(3)?
        };
        lines.push(line);
    }
    Ok(lines.join("\n"))
}

/// Upper bound of the keys that start with `prefix`: `key >= prefix AND key < bound`
/// selects exactly them under byte-wise (`C`) collation, and an index range serves it.
pub(crate) fn prefix_bound(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}
