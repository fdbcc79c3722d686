//! Listing: the query parameters of `GET /Users` and `GET /Groups` (RFC 7644 section 3.4.2),
//! and the ListResponse built from the matching resources.

use serde_json::{Value, json};

use super::error::ScimError;
use super::filter::{AttrPath, Filter};
use super::schema::ResourceType;
use super::{LIST_SCHEMA, MAX_PAGE};

/// A parsed listing query.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// The filter, resolved against the resource type.
    pub filter: Option<Filter>,
    /// The 1-based index of the first result returned.
    pub start_index: usize,
    /// How many results at most (capped to [`MAX_PAGE`]).
    pub count: usize,
    /// The attribute to sort by.
    pub sort_by: Option<AttrPath>,
    /// Whether the sort is descending.
    pub descending: bool,
}

impl ListQuery {
    /// Reads the query parameters (names case-insensitive, as RFC 7644 allows).
    pub fn parse(
        params: &[(String, String)],
        rt: &'static ResourceType,
    ) -> Result<Self, ScimError> {
        let mut query = Self {
            filter: None,
            start_index: 1,
            count: MAX_PAGE,
            sort_by: None,
            descending: false,
        };
        for (name, value) in params {
            match name.to_ascii_lowercase().as_str() {
                "filter" => {
                    let mut f = Filter::parse(value)?;
                    f.resolve(rt)?;
                    query.filter = Some(f);
                }
                "startindex" => {
                    // RFC 7644: a value below 1 is read as 1.
                    let n: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| ScimError::invalid_value("`startIndex` must be an integer"))?;
                    query.start_index = usize::try_from(n.max(1)).unwrap_or(1);
                }
                "count" => {
                    // A negative count is read as 0, a count above the page size as the page size.
                    let n: i64 = value
                        .trim()
                        .parse()
                        .map_err(|_| ScimError::invalid_value("`count` must be an integer"))?;
                    query.count = usize::try_from(n.max(0)).unwrap_or(0).min(MAX_PAGE);
                }
                "sortby" => {
                    let mut path = AttrPath::parse(value).ok_or_else(|| {
                        ScimError::invalid_value(format!("`sortBy` {value} is not a path"))
                    })?;
                    path.resolve_in(rt).ok_or_else(|| {
                        ScimError::invalid_value(format!("`sortBy` {value} names no attribute"))
                    })?;
                    query.sort_by = Some(path);
                }
                "sortorder" => {
                    query.descending = match value.to_ascii_lowercase().as_str() {
                        "ascending" => false,
                        "descending" => true,
                        _ => {
                            return Err(ScimError::invalid_value(
                                "`sortOrder` must be ascending or descending",
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// Filters, sorts and pages `resources` (rendered, canonical) into a ListResponse.
    ///
    /// Without `sortBy` the order is the caller's (stable across pages).
    pub fn respond(&self, resources: Vec<Value>) -> Value {
        let mut matching: Vec<Value> = match &self.filter {
            Some(f) => resources.into_iter().filter(|r| f.matches(r)).collect(),
            None => resources,
        };
        if let Some(path) = &self.sort_by {
            // Resources without the attribute sort last in either order (RFC 7644 3.4.2.3).
            let key = |r: &Value| {
                path.values(r).first().map(|v| match v {
                    Value::String(s) => s.to_lowercase(),
                    other => other.to_string(),
                })
            };
            matching.sort_by(|a, b| match (key(a), key(b)) {
                (Some(x), Some(y)) if self.descending => y.cmp(&x),
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
        }
        let total = matching.len();
        let page: Vec<Value> = matching
            .into_iter()
            .skip(self.start_index - 1)
            .take(self.count)
            .collect();
        json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": self.start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        })
    }
}
