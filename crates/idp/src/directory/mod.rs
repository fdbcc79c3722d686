//! The directory: users, groups and group membership.
//!
//! Every change runs in one transaction together with its audit event. Usernames, e-mail
//! addresses and group names are unique case-insensitively (compared on a case-folded copy),
//! while the spelling the admin typed is kept for display.

mod bulk;
pub(crate) mod groups;
mod import;
mod login;
pub(crate) mod users;
pub(crate) mod validate;
pub(crate) mod words;

pub use groups::{Group, Groups, NewGroup, VersionedGroup};
pub use import::ImportReport;
pub use login::Login;
pub(crate) use users::UserRow;
pub(crate) use users::fetch as fetch_user;
pub use users::{
    AttributeValue, NewUser, Setter, User, UserCursor, UserFilter, UserPage, UserPatch, UserStatus,
    Users,
};

pub(crate) use groups::{fetch as fetch_group, with_access as groups_with_access};
