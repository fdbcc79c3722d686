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
    /// Which attributes each resource carries.
    pub projection: Projection,
}

/// `attributes` and `excludedAttributes` (RFC 7644 section 3.9): which attributes a
/// resource is answered with. `id` and `schemas` are always returned.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    include: Vec<AttrPath>,
    exclude: Vec<AttrPath>,
}

impl Projection {
    /// Reads `attributes` and `excludedAttributes` (comma-separated paths). A name the
    /// schema does not have selects nothing, as RFC 7644 asks of unknown attributes here.
    pub fn parse(params: &[(String, String)], rt: &'static ResourceType) -> Self {
        let mut out = Self::default();
        for (name, value) in params {
            let list = match name.to_ascii_lowercase().as_str() {
                "attributes" => &mut out.include,
                "excludedattributes" => &mut out.exclude,
                _ => continue,
            };
            for text in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if let Some(mut path) = AttrPath::parse(text)
                    && path.resolve_in(rt).is_some()
                {
                    list.push(path);
                }
            }
        }
        out
    }

    /// Whether a resource answered through this projection keeps anything of core attribute
    /// `attr` (as its schema spells it), so a server may leave out reading what it drops.
    pub fn returns(&self, attr: &str) -> bool {
        let names = |p: &AttrPath| p.uri.is_none() && p.attr == attr;
        if !self.include.is_empty() && !self.include.iter().any(names) {
            return false;
        }
        !self.exclude.iter().any(|p| names(p) && p.sub.is_none())
    }

    /// Applies the projection to one rendered resource.
    pub fn apply(&self, resource: &mut Value) {
        let Some(map) = resource.as_object_mut() else {
            return;
        };
        if !self.include.is_empty() {
            let mut kept = serde_json::Map::new();
            for always in ["id", "schemas"] {
                if let Some(v) = map.get(always) {
                    kept.insert(always.to_owned(), v.clone());
                }
            }
            for path in &self.include {
                let source = match &path.uri {
                    Some(uri) => map.get(uri.as_str()).and_then(Value::as_object),
                    None => Some(&*map),
                };
                let Some(value) = source.and_then(|s| s.get(path.attr.as_str())) else {
                    continue;
                };
                let value = match &path.sub {
                    None => value.clone(),
                    Some(sub) => only_sub(value, sub),
                };
                let target = match &path.uri {
                    Some(uri) => kept
                        .entry(uri.clone())
                        .or_insert_with(|| Value::Object(serde_json::Map::new())),
                    None => {
                        merge(&mut kept, &path.attr, value);
                        continue;
                    }
                };
                if let Some(t) = target.as_object_mut() {
                    merge(t, &path.attr, value);
                }
            }
            *map = kept;
        }
        for path in &self.exclude {
            if path.uri.is_none() && matches!(path.attr.as_str(), "id" | "schemas") {
                continue;
            }
            let holder = match &path.uri {
                Some(uri) => map.get_mut(uri.as_str()).and_then(Value::as_object_mut),
                None => Some(&mut *map),
            };
            let Some(holder) = holder else {
                continue;
            };
            match &path.sub {
                None => {
                    holder.remove(&path.attr);
                }
                Some(sub) => match holder.get_mut(&path.attr) {
                    Some(Value::Object(o)) => {
                        o.remove(sub);
                    }
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut().filter_map(Value::as_object_mut) {
                            item.remove(sub);
                        }
                    }
                    _ => {}
                },
            }
        }
        // An extension with nothing left is not sent as `{}`.
        map.retain(|k, v| !(k.starts_with("urn:") && v.as_object().is_some_and(|o| o.is_empty())));
    }
}

/// `value` with only sub-attribute `sub` (of an object, or of each object of an array).
fn only_sub(value: &Value, sub: &str) -> Value {
    let pick = |v: &Value| {
        let mut o = serde_json::Map::new();
        if let Some(x) = v.get(sub) {
            o.insert(sub.to_owned(), x.clone());
        }
        Value::Object(o)
    };
    match value {
        Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
        other => pick(other),
    }
}

/// Puts `value` at `name`, merging sub-attribute selections of the same attribute.
fn merge(map: &mut serde_json::Map<String, Value>, name: &str, value: Value) {
    match (map.get_mut(name), value) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, value) => {
            map.insert(name.to_owned(), value);
        }
    }
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
            projection: Projection::parse(params, rt),
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
        self.respond_page(total, page)
    }

    /// The ListResponse for a page the store has already cut (`startIndex` and `count`
    /// applied in SQL, no filter, no sort) out of `total` resources: only the projection is
    /// left to apply.
    pub fn respond_page(&self, total: usize, page: Vec<Value>) -> Value {
        let page: Vec<Value> = page
            .into_iter()
            .map(|mut r| {
                self.projection.apply(&mut r);
                r
            })
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
