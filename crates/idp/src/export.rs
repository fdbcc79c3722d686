//! A JSON snapshot of the directory and the application registry.
//!
//! Password hashes are left out on purpose: an export is something admins mail around and
//! diff, and a hash is still a credential to crack offline.

use serde::Serialize;
use time::OffsetDateTime;

use crate::apps::Application;
use crate::directory::{Group, User};
use crate::error::Result;
use crate::store::{Store, timestamp};

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
    /// Takes a snapshot of users, groups and applications.
    pub async fn export(&self) -> Result<Export> {
        let mut users = Vec::new();
        for user in self.users().list().await? {
            let groups = self.groups().of_user(user.id).await?;
            users.push(ExportedUser {
                groups: groups.into_iter().map(|g| g.name).collect(),
                user,
            });
        }
        let mut groups = Vec::new();
        for group in self.groups().list().await? {
            let members = self.groups().members(group.id).await?;
            groups.push(ExportedGroup {
                members: members.into_iter().map(|u| u.username).collect(),
                group,
            });
        }
        let mut applications = Vec::new();
        for app in self.apps().list().await? {
            let access = self.apps().access_groups(app.id).await?;
            applications.push(ExportedApp {
                access_groups: access.into_iter().map(|g| g.name).collect(),
                app,
            });
        }
        Ok(Export {
            version: EXPORT_VERSION,
            exported_at: timestamp::now(),
            users,
            groups,
            applications,
        })
    }
}
