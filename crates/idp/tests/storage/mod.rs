//! Cases, one module per area. Each case is an `async fn(TestStore)` registered with
//! `on_both_backends!`.

mod app_encryption;
mod apps;
mod audit;
mod files;
mod groups;
mod import;
mod metadata_import;
mod migration_pairs;
mod signing_keys;
mod tile_login_url;
mod users;

use latchkey_idp::{Actor, Store};

/// The actor the tests act as.
pub fn admin() -> Actor {
    Actor::cli("tester")
}

/// Everything observable in a store (export without its timestamp, plus the audit count), to
/// prove that a refused change left it exactly as it was.
pub async fn snapshot(store: &Store) -> (serde_json::Value, i64) {
    let mut export = serde_json::to_value(store.export().await.unwrap()).unwrap();
    export.as_object_mut().unwrap().remove("exported_at");
    (export, store.audit().count().await.unwrap())
}
