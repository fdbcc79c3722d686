//! Shared fixtures: a file-backed SQLite database per test, login facts, a contract.

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

/// A migrated SQLite database in a fresh file (WAL, so concurrency behaves as in production).
pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("sp.db").display());
    let db = Database::connect(&url).await.expect("connect sqlite");
    Fixture {
        _dir: dir,
        url,
        store: SqlAccountStore::new(db),
    }
}

pub async fn engine(contract: Contract) -> (Fixture, JitEngine<SqlAccountStore>) {
    let fx = sqlite().await;
    let engine = JitEngine::new(contract, fx.store.clone());
    (fx, engine)
}
