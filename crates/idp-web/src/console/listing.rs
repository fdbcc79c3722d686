//! The console's lists, in one place: pages of users by keyset cursor, the same SQL
//! listing ([`latchkey_idp::directory::Users::page`]) and the same opaque cursors as the
//! API's `next_cursor`, so a page costs the same however deep it is and nothing loads the
//! whole directory.

use latchkey_idp::Store;
use latchkey_idp::directory::{User, UserCursor, UserFilter};
use latchkey_idp::ids::GroupId;

use crate::WebError;
use crate::api::page::{decode_cursor, encode_cursor};

/// Rows per page.
pub(crate) const PAGE: u32 = 50;

/// The kind tag in the console's user cursors (a cursor of another listing is refused).
const USERS: &str = "console-users";

/// One page of the users `filter` selects (a search, a group's members), after the cursor
/// `after`; the cursor of the next page, if any; and whether the search was too broad to
/// read by names ([`latchkey_idp::directory::UserPage::search_too_broad`]).
pub(crate) async fn users(
    store: &Store,
    filter: &UserFilter,
    after: Option<&str>,
) -> Result<(Vec<User>, Option<String>, bool), WebError> {
    let after = match after.filter(|a| !a.is_empty()) {
        Some(raw) => Some(UserCursor::from_key(
            decode_cursor(USERS, raw).map_err(|_| WebError::BadForm("after".into()))?,
        )),
        None => None,
    };
    let page = store.users().page(filter, after.as_ref(), PAGE).await?;
    let next = page.next.map(|c| encode_cursor(USERS, c.key()));
    Ok((page.users, next, page.search_too_broad))
}

/// `filter` with a search: the start of a username, or of an e-mail address when it has an
/// `@` (what an index serves on both backends).
pub(crate) fn search(q: &str) -> UserFilter {
    UserFilter {
        search: Some(q.to_owned()).filter(|q| !q.is_empty()),
        ..UserFilter::default()
    }
}

/// The members of `group`.
pub(crate) fn members(group: GroupId) -> UserFilter {
    UserFilter {
        group: Some(group),
        ..UserFilter::default()
    }
}

/// The cursor query of a console list (`?after=`), read leniently: absent or empty is the
/// first page.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct After {
    pub after: Option<String>,
}
