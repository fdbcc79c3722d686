//! The store cases: each an `async fn(Db)` registered with `on_both_backends!`. This module
//! is built into both test binaries: `tests/sp` makes the SQLite variants, `tests/oracles`
//! the PostgreSQL ones (see the binaries' `backend_variant!`).

pub(crate) mod engine;
pub(crate) mod race;
pub(crate) mod replay;
pub(crate) mod retention;
pub(crate) mod scim;
pub(crate) mod toolkit;
