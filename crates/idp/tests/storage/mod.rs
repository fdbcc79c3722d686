//! Cases, one module per area. Each case is an `async fn(TestStore)` registered with
//! `on_both_backends!`. Built into both test binaries: `tests/store.rs` makes the SQLite
//! variants, `tests/oracles` the PostgreSQL ones (see the binaries' `backend_variant!`).

mod account;
mod app_copies;
mod app_encryption;
mod apps;
mod audit;
mod bulk;
mod enrollment;
mod group_versions;
mod groups;
mod import;
mod last_admin;
pub(crate) mod metadata_import;
mod mfa;
mod parked;
mod provisioning;
mod races;
mod replay;
mod roles;
mod scim_groups;
mod sign_in;
mod signing_keys;
mod throttle;
mod tile_login_url;
mod user_words;
mod users;
mod webauthn;

use latchkey_idp::directory::{Group, NewGroup, NewUser, User};
use latchkey_idp::ids::{GroupId, UserId};
use latchkey_idp::{Actor, Store};

/// The actor the tests act as.
pub fn admin() -> Actor {
    Actor::cli("tester")
}

/// A user `name` with the address `name@example.org`, made by [`admin`]: the seeding most
/// cases start from, written once.
pub async fn user(store: &Store, name: &str) -> User {
    let email = format!("{name}@example.org");
    store
        .users()
        .create(&admin(), NewUser::new(name, &email))
        .await
        .unwrap()
}

/// A group made by [`admin`].
pub async fn group(store: &Store, name: &str) -> Group {
    store
        .groups()
        .create(&admin(), NewGroup::new(name))
        .await
        .unwrap()
}

/// Makes a user a member of a group, as [`admin`].
pub async fn join(store: &Store, group: GroupId, user: UserId) {
    store
        .groups()
        .add_member(&admin(), group, user)
        .await
        .unwrap();
}

/// Everything observable in a store (export without its timestamp, plus the audit count), to
/// prove that a refused change left it exactly as it was.
pub async fn snapshot(store: &Store) -> (serde_json::Value, i64) {
    let mut export = serde_json::to_value(store.export().await.unwrap()).unwrap();
    export.as_object_mut().unwrap().remove("exported_at");
    (export, store.audit().count().await.unwrap())
}
