//! A JSON snapshot of the directory and the application registry.
//!
//! Password hashes are left out on purpose: an export is something admins mail around and
//! diff, and a hash is still a credential to crack offline.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::apps::Application;
use crate::directory::{Group, User};
use crate::error::Result;
use crate::store::Store;

/// Current export format version.
pub const EXPORT_VERSION: u32 = 1;

/// Everything an export holds.
#[derive(Debug, Clone, Serialize)]
pub struct Export {
    /// Format version.
    pub version: u32,
    /// When the snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    /// Users, each with the names of their groups.
    pub users: Vec<ExportedUser>,
    /// Groups, each with its members' usernames.
    pub groups: Vec<ExportedGroup>,
    /// Applications, each with the names of the groups allowed to use it.
    pub applications: Vec<ExportedApp>,
}

/// A user in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedUser {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Names of the groups they belong to.
    pub groups: Vec<String>,
}

/// A group in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedGroup {
    /// The group.
    #[serde(flatten)]
    pub group: Group,
    /// Usernames of its members.
    pub members: Vec<String>,
}

/// An application in an export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedApp {
    /// The application.
    #[serde(flatten)]
    pub app: Application,
    /// Names of the groups allowed to use it.
    pub access_groups: Vec<String>,
}

impl Store {
    /// Takes a snapshot of users, groups and applications (a handful of queries, however
    /// large the directory).
    pub async fn export(&self) -> Result<Export> {
        let users = self.users().list().await?;
        let groups = self.groups().list().await?;
        let apps = self.apps().list().await?;
        let memberships: Vec<(String, String)> =
            sqlx::query_as("SELECT group_id, user_id FROM group_members")
                .fetch_all(self.pool())
                .await?;
        let access: Vec<(String, String)> =
            sqlx::query_as("SELECT app_id, group_id FROM app_access")
                .fetch_all(self.pool())
                .await?;

        let username: HashMap<String, &str> = users
            .iter()
            .map(|u| (u.id.to_string(), u.username.as_str()))
            .collect();
        let group_name: HashMap<String, &str> = groups
            .iter()
            .map(|g| (g.id.to_string(), g.name.as_str()))
            .collect();
        let mut groups_of: HashMap<&str, Vec<String>> = HashMap::new();
        let mut members_of: HashMap<&str, Vec<String>> = HashMap::new();
        for (group_id, user_id) in &memberships {
            if let (Some(group), Some(user)) = (group_name.get(group_id), username.get(user_id)) {
                groups_of
                    .entry(user_id)
                    .or_default()
                    .push(group.to_string());
                members_of
                    .entry(group_id)
                    .or_default()
                    .push(user.to_string());
            }
        }
        let mut access_of: HashMap<&str, Vec<String>> = HashMap::new();
        for (app_id, group_id) in &access {
            if let Some(group) = group_name.get(group_id) {
                access_of.entry(app_id).or_default().push(group.to_string());
            }
        }
        let sorted = |mut names: Vec<String>| {
            names.sort_by_key(|n| n.to_lowercase());
            names
        };

        let users = users
            .iter()
            .map(|user| ExportedUser {
                groups: sorted(
                    groups_of
                        .remove(user.id.to_string().as_str())
                        .unwrap_or_default(),
                ),
                user: user.clone(),
            })
            .collect();
        let groups = groups
            .iter()
            .map(|group| ExportedGroup {
                members: sorted(
                    members_of
                        .remove(group.id.to_string().as_str())
                        .unwrap_or_default(),
                ),
                group: group.clone(),
            })
            .collect();
        let applications = apps
            .into_iter()
            .map(|app| ExportedApp {
                access_groups: sorted(
                    access_of
                        .remove(app.id.to_string().as_str())
                        .unwrap_or_default(),
                ),
                app,
            })
            .collect();
        Ok(Export {
            version: EXPORT_VERSION,
            exported_at: self.now(),
            users,
            groups,
            applications,
        })
    }
}
