//! Who may use the admin console and what for: console [`roles`] granted to directory users
//! directly or through groups, and the [`Permission`]s each role carries. The web crate asks
//! [`Roles::check`] before every console page or change; nothing else decides it.
//! [`overview`] holds the dashboard's figures, [`access`] why a user may use an app.

pub mod access;
pub mod overview;
pub mod roles;

pub use roles::{Grant, Holder, Permission, Role, RoleSet, Roles};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
