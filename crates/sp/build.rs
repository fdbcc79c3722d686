//! `sqlx::migrate!` embeds the migration files at compile time but cannot tell cargo about
//! them on stable Rust; without this, adding or editing a migration would not rebuild the
//! crate and the binary would carry a stale schema.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
