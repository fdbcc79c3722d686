//! The console's lists, in one place: the users page by search and page number. The
//! directory's list functions are used as they are; when they page in SQL (keyset cursors),
//! this file is the one edit.

use latchkey_idp::Store;
use latchkey_idp::directory::User;
use latchkey_idp::error::Result;

/// Rows per page.
pub(crate) const PAGE: usize = 50;

/// One page of users whose username, e-mail or names contain `q` (any case), and whether
/// a next page exists.
pub(crate) async fn users(store: &Store, q: &str, page: usize) -> Result<(Vec<User>, bool)> {
    let needle = q.to_lowercase();
    let matching: Vec<User> = store
        .users()
        .list()
        .await?
        .into_iter()
        .filter(|u| {
            needle.is_empty()
                || [
                    Some(&u.username),
                    Some(&u.email),
                    u.display_name.as_ref(),
                    u.given_name.as_ref(),
                    u.family_name.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|v| v.to_lowercase().contains(&needle))
        })
        .collect();
    let start = page.saturating_mul(PAGE);
    let more = matching.len() > start.saturating_add(PAGE);
    Ok((matching.into_iter().skip(start).take(PAGE).collect(), more))
}
