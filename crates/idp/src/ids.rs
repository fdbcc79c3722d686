//! Typed identifiers, so a user ID cannot be passed where a group ID is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random ID.
            pub fn new_random() -> Self {
                $name(Uuid::new_v4())
            }

            /// Parses an ID read back from the database.
            pub(crate) fn from_db(text: &str) -> Result<Self> {
                Uuid::parse_str(text)
                    .map($name)
                    .map_err(|e| Error::corrupt($what, format!("{text:?}: {e}")))
            }

            /// The form stored in the database (hyphenated lower-case).
            pub(crate) fn to_db(self) -> String {
                self.0.hyphenated().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

id_type!(
    /// A user's immutable internal ID: it survives username and e-mail changes.
    UserId,
    "user id"
);
id_type!(
    /// A group's internal ID.
    GroupId,
    "group id"
);
id_type!(
    /// An application's (service provider's) internal ID.
    AppId,
    "application id"
);
