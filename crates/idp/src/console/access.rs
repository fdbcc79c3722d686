//! "What can alice use": each application a user may use, with the reason, the groups of
//! hers that the application's access policy names. Built on the same rules as sign-in
//! ([`crate::apps::Apps::for_user`], [`crate::apps::Apps::access_groups`]).

use crate::apps::Application;
use crate::directory::{Group, User};
use crate::error::Result;
use crate::store::Store;

/// One application and why the user may use it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The application.
    pub app: Application,
    /// The user's groups that the application is assigned to (at least one).
    pub through: Vec<Group>,
}

/// The applications the user may use, ordered by name, each with its granting groups; empty
/// for a suspended user, exactly as at sign-in.
pub async fn of_user(store: &Store, user: &User) -> Result<Vec<Access>> {
    let mine = store.groups().of_user(user.id).await?;
    let mut out = Vec::new();
    for app in store.apps().for_user(user).await? {
        let through = store
            .apps()
            .access_groups(app.id)
            .await?
            .into_iter()
            .filter(|g| mine.iter().any(|m| m.id == g.id))
            .collect();
        out.push(Access { app, through });
    }
    Ok(out)
}
