//! Pagination shared by the list endpoints.
//!
//! Lists of groups and applications are small next to a database's limits and come back
//! sorted, so they are paged after filtering. Users (100,000 of them in a large directory)
//! are filtered and paged in SQL with keyset cursors ([`encode_cursor`]); the audit log,
//! which grows without bound, pages in SQL on its sequence number (see `audit.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use latchkey_idp::error::ErrorCode;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a client may ask for.
pub const MAX_LIMIT: u32 = 500;

/// The most items a user listing counts for its `total` (see [`PageInfo`]).
pub const TOTAL_CAP: u64 = 10_000;

/// Where a page sits in the whole list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PageInfo {
    /// Items matching the filter, across all pages; for users counted up to 10,000 (then
    /// `total_is_lower_bound`).
    pub total: u64,
    /// Set when more items match than were counted: `total` is then a lower bound. Page on
    /// with `next_offset` or `next_cursor`, which do not depend on it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub total_is_lower_bound: bool,
    /// Index of the first item of this page.
    pub offset: u64,
    /// Page size used.
    pub limit: u32,
    /// `offset` for the next page, absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// Checks `limit`, applying the default.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(
            "limit",
            format!("limit must be between 1 and {MAX_LIMIT}, not {n}"),
        )),
    }
}

/// A keyset position as the client sees it: opaque, so the key it wraps (and its order)
/// may change without breaking clients. `kind` names the listing, so a cursor from one
/// listing is refused by another instead of silently seeking to a meaningless key.
pub fn encode_cursor(kind: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{key}"))
}

/// The key inside a cursor made by [`encode_cursor`] for the same `kind`; anything else is
/// a 400 `invalid_query` naming the `cursor` field.
pub fn decode_cursor(kind: &str, raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "cursor is not one this listing handed out; start again without it",
        )
        .with_field("cursor")
    };
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(bad)
}

/// Cuts one page out of an already filtered and sorted list.
pub fn paginate<T>(
    all: Vec<T>,
    limit: Option<u32>,
    offset: Option<u64>,
) -> Result<(Vec<T>, PageInfo), ApiError> {
    let limit = self::limit(limit)?;
    let offset = offset.unwrap_or(0);
    let total = all.len() as u64;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    let items: Vec<T> = all.into_iter().skip(start).take(limit as usize).collect();
    let end = offset.saturating_add(items.len() as u64);
    Ok((
        items,
        PageInfo {
            total,
            total_is_lower_bound: false,
            offset,
            limit,
            next_offset: (end < total).then_some(end),
        },
    ))
}

/// Case-insensitive substring match used by the `q` filters.
pub fn matches(q: &Option<String>, fields: &[Option<&str>]) -> bool {
    let Some(q) = q
        .as_deref()
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty())
    else {
        return true;
    };
    fields
        .iter()
        .flatten()
        .any(|f| f.to_lowercase().contains(&q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_list_once() {
        let all: Vec<u32> = (0..7).collect();
        let (p1, i1) = paginate(all.clone(), Some(3), None).unwrap();
        assert_eq!((p1, i1.next_offset, i1.total), (vec![0, 1, 2], Some(3), 7));
        let (p3, i3) = paginate(all.clone(), Some(3), Some(6)).unwrap();
        assert_eq!((p3, i3.next_offset), (vec![6], None));
        let (past, ip) = paginate(all.clone(), Some(3), Some(99)).unwrap();
        assert!(past.is_empty() && ip.next_offset.is_none());
        assert!(paginate(all.clone(), Some(0), None).is_err());
        assert!(paginate(all, Some(MAX_LIMIT + 1), None).is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = encode_cursor("users", "émile");
        assert_eq!(decode_cursor("users", &c).unwrap(), "émile");
        assert!(decode_cursor("members", &c).is_err());
        assert!(decode_cursor("users", "not base64!").is_err());
        assert!(decode_cursor("users", &URL_SAFE_NO_PAD.encode([0xff, 0xfe])).is_err());
        assert!(decode_cursor("users", &URL_SAFE_NO_PAD.encode("usersX")).is_err());
    }

    #[test]
    fn q_matches_any_field_case_insensitively() {
        let q = Some("ALI".to_string());
        assert!(matches(&q, &[Some("bob"), Some("alice@x")]));
        assert!(!matches(&q, &[Some("bob"), None]));
        assert!(matches(&None, &[]));
        assert!(matches(&Some(String::new()), &[]));
    }
}
