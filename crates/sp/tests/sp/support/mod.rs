//! Shared fixtures: a fresh database per test (file-backed SQLite, or a database in a
//! throwaway PostgreSQL cluster), login facts, a contract.

#![allow(dead_code)]

pub mod keys;
pub mod toolkit;

pub use latchkey_testkit::pg;

use std::collections::BTreeMap;

use latchkey_sp::jit::{Contract, JitEngine, LoginFacts, NAMEID_FORMAT_PERSISTENT};
use latchkey_sp::store::{Database, SqlAccountStore};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

pub const IDP: &str = "https://idp.example.org/saml";

/// The wiki's contract: e-mail and display name from the IdP, a create-only username, an
/// app-owned nickname, roles from groups, deny without a role.
pub const WIKI: &str = r#"
on_first_login = "create"
deny_when_no_role = true

[[fields]]
attribute = "mail"
field = "email"
ownership = "idp"
required = true

[[fields]]
attribute = "displayName"
field = "display_name"
ownership = "idp"

[[fields]]
attribute = "uid"
field = "username"
ownership = "create_only"

[[fields]]
field = "nickname"
ownership = "app"

[[roles]]
grant = "admin"
when = { attribute = "groups", contains = "wiki-admins" }

[[roles]]
grant = "editor"
when = { attribute = "groups", prefix = "wiki-" }

[[roles]]
grant = "staff"
when = { attribute = "employeeType", equals = "staff" }
"#;

pub fn t0() -> OffsetDateTime {
    datetime!(2026-11-28 12:00 UTC)
}

pub fn contract(text: &str) -> Contract {
    Contract::from_toml(text).expect("test contract parses")
}

/// A contract derived from [`WIKI`] with `edit` applied to its text.
pub fn wiki_with(edit: impl FnOnce(&str) -> String) -> Contract {
    contract(&edit(WIKI))
}

pub fn facts(name_id: &str, attributes: &[(&str, &[&str])]) -> LoginFacts {
    LoginFacts {
        idp_entity_id: IDP.to_owned(),
        name_id: name_id.to_owned(),
        name_id_format: Some(NAMEID_FORMAT_PERSISTENT.to_owned()),
        session_index: Some("_session-1".to_owned()),
        attributes: attributes
            .iter()
            .map(|(name, values)| {
                (
                    (*name).to_owned(),
                    values.iter().map(|v| (*v).to_owned()).collect(),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        authn_instant: None,
    }
}

/// Alice as the IdP usually describes her.
pub fn alice() -> LoginFacts {
    facts(
        "alice-7f3a",
        &[
            ("mail", &["Alice@Example.org"]),
            ("displayName", &["Alice Liddell"]),
            ("uid", &["alice"]),
            ("groups", &["wiki-admins", "staff-all"]),
        ],
    )
}

pub struct Fixture {
    _dir: TempDir,
    pub url: String,
    pub store: SqlAccountStore,
}

/// The backends every store test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A migrated, empty database: SQLite in a fresh file (WAL, so concurrency behaves as in
/// production) or a fresh database in the shared PostgreSQL cluster.
pub async fn fixture(db: Db) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display()),
        Db::Postgres => pg::fresh_database_url().await,
    };
    let database = Database::connect(&url).await.expect("connect");
    Fixture {
        _dir: dir,
        url,
        store: SqlAccountStore::new(database),
    }
}

/// A database as an earlier version left it: migrated up to `version` only, for the tests of
/// what a later migration keeps. The caller writes its rows through the pool, closes it, and
/// opens the URL with `Database::connect`, which runs the rest.
pub async fn migrated_to(db: Db, version: i64) -> (TempDir, String, sqlx::AnyPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, migrations) = match db {
        Db::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display()),
            "sqlite",
        ),
        Db::Postgres => (pg::fresh_database_url().await, "postgres"),
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(migrations);
    let mut before = sqlx::migrate::Migrator::new(path)
        .await
        .expect("migrations");
    before.dangerous_set_table_name("_latchkey_sp_migrations");
    before.run_to(version, &pool).await.expect("migrate");
    (dir, url, pool)
}

pub async fn engine(db: Db, contract: Contract) -> (Fixture, JitEngine<SqlAccountStore>) {
    let fx = fixture(db).await;
    let engine = JitEngine::new(contract, fx.store.clone());
    (fx, engine)
}

/// Registers each listed `async fn(Db)` as the module `<name>` holding one test per backend
/// this binary runs, made by the binary's `backend_variant!`: `<name>::sqlite` in
/// `tests/sp`, `<name>::postgres` in `tests/oracles` (PostgreSQL is an external server).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                $crate::backend_variant!($name);
            }
        )*
    };
}
