//! PATCH (RFC 7644 section 3.5.2): parsing a PatchOp request and applying it to a resource in
//! canonical form.
//!
//! Operations are applied in order to a copy; the caller checks the result against the schema
//! ([`ResourceType::check`]) and stores it only if every operation and the check succeed, so
//! a request that fails half-way writes nothing.

use serde_json::{Map, Value};

use super::PATCH_OP_SCHEMA;
use super::error::ScimError;
use super::filter::{AttrPath, Filter};
use super::schema::{Attribute, Kind, Mutability, ResourceType};

/// The most operations one PATCH may carry: the body limit bounds it too, but each operation
/// may copy the resource, so it is bounded on its own.
pub const MAX_OPERATIONS: usize = 256;

/// The operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Add values (appending to multi-valued attributes).
    Add,
    /// Replace values.
    Replace,
    /// Remove values.
    Remove,
}

/// One operation of a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// What to do.
    pub op: OpKind,
    /// Where; `None` means the resource itself (the value is then an object of attributes).
    pub path: Option<String>,
    /// The value (required for add and replace).
    pub value: Option<Value>,
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let Some(object) = body.as_object() else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    let get = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let names_patch = get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(PATCH_OP_SCHEMA)));
    if !names_patch {
        return Err(ScimError::invalid_syntax(format!(
            "`schemas` must be [\"{PATCH_OP_SCHEMA}\"]"
        )));
    }
    let Some(operations) = get("Operations").and_then(Value::as_array) else {
        return Err(ScimError::invalid_syntax("`Operations` must be an array"));
    };
    if operations.is_empty() || operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "`Operations` must hold 1 to {MAX_OPERATIONS} operations"
        )));
    }
    operations.iter().map(parse_op).collect()
}

fn parse_op(value: &Value) -> Result<PatchOp, ScimError> {
    let Some(object) = value.as_object() else {
        return Err(ScimError::invalid_syntax("an operation must be an object"));
    };
    let mut op = None;
    let mut path = None;
    let mut val = None;
    for (k, v) in object {
        match k.to_ascii_lowercase().as_str() {
            "op" => {
                op = match v.as_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("add") => Some(OpKind::Add),
                    Some("replace") => Some(OpKind::Replace),
                    Some("remove") => Some(OpKind::Remove),
                    _ => {
                        return Err(ScimError::invalid_syntax(
                            "`op` must be add, replace or remove",
                        ));
                    }
                }
            }
            "path" => match v {
                Value::String(s) if !s.is_empty() => path = Some(s.clone()),
                Value::String(_) | Value::Null => {}
                _ => return Err(ScimError::invalid_path("`path` must be a string")),
            },
            "value" => val = Some(v.clone()),
            _ => {}
        }
    }
    let Some(op) = op else {
        return Err(ScimError::invalid_syntax("an operation needs `op`"));
    };
    if op != OpKind::Remove && val.is_none() {
        return Err(ScimError::invalid_value("add and replace need a `value`"));
    }
    Ok(PatchOp {
        op,
        path,
        value: val,
    })
}

/// A PATCH path, resolved: `[URN:]attr[.sub]` or `[URN:]attr[filter][.sub]`.
#[derive(Debug)]
struct Target {
    uri: Option<String>,
    attribute: &'static Attribute,
    filter: Option<Filter>,
    sub: Option<&'static Attribute>,
}

fn parse_path(text: &str, rt: &'static ResourceType) -> Result<Target, ScimError> {
    let bad = || ScimError::invalid_path(format!("`{text}` is not a valid path"));
    let (head, filter_text, tail) = match text.find('[') {
        Some(open) => {
            let close = closing_bracket(text, open).ok_or_else(bad)?;
            let tail = &text[close + 1..];
            let tail = match tail.strip_prefix('.') {
                Some(sub) if !sub.is_empty() => Some(sub),
                _ if tail.is_empty() => None,
                _ => return Err(bad()),
            };
            (&text[..open], Some(&text[open + 1..close]), tail)
        }
        None => (text, None, None),
    };
    let mut path = AttrPath::parse(head).ok_or_else(bad)?;
    let sub_name = match (&path.sub, tail) {
        (Some(_), Some(_)) => return Err(bad()),
        (Some(_), None) if filter_text.is_some() => return Err(bad()),
        (s, t) => s.clone().or(t.map(str::to_owned)),
    };
    path.sub = None;
    let unknown =
        || ScimError::invalid_path(format!("`{text}` names no attribute of a {}", rt.name));
    let attribute = path.resolve_in(rt).ok_or_else(unknown)?;
    let sub = match &sub_name {
        Some(name) => Some(attribute.sub(name).ok_or_else(unknown)?),
        None => None,
    };
    if attribute.mutability == Mutability::ReadOnly
        || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    {
        return Err(ScimError::mutability(format!("`{text}` is read-only")));
    }
    let filter = match filter_text {
        Some(f) => {
            if attribute.kind != Kind::Complex || !attribute.multi_valued {
                return Err(ScimError::invalid_path(format!(
                    "`{}` is not a multi-valued complex attribute",
                    attribute.name
                )));
            }
            let mut filter =
                Filter::parse(f).map_err(|e| ScimError::invalid_path(e.detail.clone()))?;
            filter
                .resolve_sub(attribute)
                .map_err(|e| ScimError::invalid_path(e.detail.clone()))?;
            Some(filter)
        }
        None => None,
    };
    Ok(Target {
        uri: path.uri,
        attribute,
        filter,
        sub,
    })
}

/// The index of the `]` closing the `[` at `open`, skipping quoted strings.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i <= open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

/// Applies `ops` to `resource` (canonical form, without `id` and `meta`) and returns the
/// result, which the caller must still [`ResourceType::check`].
pub fn apply(
    resource: &Value,
    ops: &[PatchOp],
    rt: &'static ResourceType,
) -> Result<Value, ScimError> {
    let mut out = resource.clone();
    for op in ops {
        match &op.path {
            // The whole extension object (`"path": "urn:...:enterprise:2.0:User"`).
            Some(path) if rt.extension(path).is_some() => {
                apply_to_extension(&mut out, op, rt, path)?;
            }
            Some(path) => {
                let target = parse_path(path, rt)?;
                apply_at(&mut out, op.op, &target, op.value.as_ref())?;
            }
            None => apply_without_path(&mut out, op, rt)?,
        }
    }
    Ok(out)
}

/// What one operation does to a multi-valued attribute whose values are named by `value`
/// (a group's members), when that is all it does.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueChange<'a> {
    /// Add these values; one whose `value` is there already is left as it is.
    Add(Vec<&'a Value>),
    /// Remove the values whose `value` is one of these; the others are not there to remove.
    Remove(Vec<String>),
}

/// `op` as a [`ValueChange`] of `attribute`, or `None` when it does anything else (another
/// attribute, a replace, a sub-attribute, a filter other than `value eq "..."`, a remove of
/// every value). Why: [`apply`] needs the whole resource, and a server holding a group's
/// members one row each should not read 50,000 of them to add one. Applying the changes in
/// order to the values they name gives what [`apply`] gives, for those values; the caller
/// still checks what it adds against the schema.
pub fn value_change<'a>(
    op: &'a PatchOp,
    rt: &'static ResourceType,
    attribute: &str,
) -> Option<ValueChange<'a>> {
    let target = parse_path(op.path.as_deref()?, rt).ok()?;
    if target.attribute.name != attribute || !target.attribute.multi_valued || target.sub.is_some()
    {
        return None;
    }
    let listed = |v: &'a Value| -> Vec<&'a Value> {
        match v {
            Value::Array(list) => list.iter().collect(),
            other => vec![other],
        }
    };
    match (op.op, &target.filter, &op.value) {
        (OpKind::Add, None, Some(v)) => Some(ValueChange::Add(listed(v))),
        // As `apply_whole`'s `same_item`: an item goes when its `value` equals a given one
        // (a given item without a string `value` equals no stored member).
        (OpKind::Remove, None, Some(v)) => Some(ValueChange::Remove(
            listed(v)
                .into_iter()
                .filter_map(|g| g.get("value").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
        )),
        (OpKind::Remove, Some(filter), _) => match filter.as_simple_eq() {
            // The filter's names are canonical once resolved (`Value` reads as `value`).
            Some((path, key)) if path.attr == "value" && path.sub.is_none() => {
                Some(ValueChange::Remove(vec![key.to_owned()]))
            }
            _ => None,
        },
        _ => None,
    }
}

/// An operation whose path is an extension URN: its value is the extension's attributes
/// (add, replace), or the whole extension goes (remove).
fn apply_to_extension(
    resource: &mut Value,
    op: &PatchOp,
    rt: &'static ResourceType,
    path: &str,
) -> Result<(), ScimError> {
    let Some(ext) = rt.extension(path) else {
        return Err(ScimError::invalid_path(format!(
            "`{path}` is not an extension"
        )));
    };
    if op.op == OpKind::Remove {
        if let Some(map) = resource.as_object_mut() {
            map.remove(ext.id);
        }
        return Ok(());
    }
    let wrapped = PatchOp {
        op: op.op,
        path: None,
        value: Some(Value::Object(Map::from_iter([(
            ext.id.to_owned(),
            op.value.clone().unwrap_or(Value::Null),
        )]))),
    };
    apply_without_path(resource, &wrapped, rt)
}

/// An operation without a path: the value is an object of attributes (and extension objects)
/// each added or replaced as if named by a path.
fn apply_without_path(
    resource: &mut Value,
    op: &PatchOp,
    rt: &'static ResourceType,
) -> Result<(), ScimError> {
    if op.op == OpKind::Remove {
        return Err(ScimError::no_target("remove needs a path"));
    }
    let Some(Value::Object(values)) = &op.value else {
        return Err(ScimError::invalid_value(
            "without a path, the value must be an object of attributes",
        ));
    };
    for (key, value) in values {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let Value::Object(inner) = value else {
                return Err(ScimError::invalid_value(format!(
                    "`{}` must be an object",
                    ext.id
                )));
            };
            for (k, v) in inner {
                if k.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let target = parse_path(&format!("{}:{k}", ext.id), rt)?;
                apply_at(resource, op.op, &target, Some(v))?;
            }
            continue;
        }
        // Read-only attributes in a whole-resource value (a client echoing `id` or `meta`
        // back) are ignored, as in a PUT body.
        let mut probe = AttrPath::parse(key)
            .ok_or_else(|| ScimError::invalid_path(format!("`{key}` is not a valid path")))?;
        probe.sub = None;
        if probe
            .resolve_in(rt)
            .is_some_and(|a| a.mutability == Mutability::ReadOnly)
        {
            continue;
        }
        let target = parse_path(key, rt)?;
        apply_at(resource, op.op, &target, Some(value))?;
    }
    Ok(())
}

/// The object holding the target attribute: the resource, or its extension object (made
/// when `create`).
fn container<'a>(
    resource: &'a mut Value,
    uri: Option<&str>,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    let top = resource.as_object_mut()?;
    match uri {
        None => Some(top),
        Some(uri) => {
            if create && !top.contains_key(uri) {
                top.insert(uri.to_owned(), Value::Object(Map::new()));
            }
            top.get_mut(uri)?.as_object_mut()
        }
    }
}

fn apply_at(
    resource: &mut Value,
    op: OpKind,
    target: &Target,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = target.attribute.name;
    let create = op != OpKind::Remove;
    let Some(holder) = container(resource, target.uri.as_deref(), create) else {
        if create {
            return Err(ScimError::invalid_value("the resource is not an object"));
        }
        return Ok(());
    };
    match (&target.filter, target.sub) {
        (None, None) => apply_whole(holder, op, target.attribute, value)?,
        (None, Some(sub)) => {
            if target.attribute.multi_valued {
                let items = holder.get_mut(name).and_then(Value::as_array_mut);
                for item in items.into_iter().flatten() {
                    set_sub(item, op, sub.name, value);
                }
            } else {
                let entry = holder
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                set_sub(entry, op, sub.name, value);
            }
        }
        (Some(filter), sub) => {
            let mut matched = 0usize;
            if let Some(Value::Array(items)) = holder.get_mut(name) {
                match (op, sub) {
                    (OpKind::Remove, None) => {
                        let before = items.len();
                        items.retain(|e| !filter.matches(e));
                        matched = before - items.len();
                    }
                    (_, Some(sub)) => {
                        for item in items.iter_mut().filter(|e| filter.matches(e)) {
                            set_sub(item, op, sub.name, value);
                            matched += 1;
                        }
                    }
                    (_, None) => {
                        let Some(Value::Object(new)) = value else {
                            return Err(ScimError::invalid_value(format!(
                                "a value for `{name}[...]` must be an object"
                            )));
                        };
                        for item in items.iter_mut().filter(|e| filter.matches(e)) {
                            if let Value::Object(old) = item {
                                if op == OpKind::Replace {
                                    old.clear();
                                }
                                old.extend(new.clone());
                            }
                            matched += 1;
                        }
                    }
                }
            }
            if matched == 0 && op != OpKind::Remove {
                // `emails[type eq "work"].value` on a user with no work address: a client
                // asking to set it means to create it, which is only unambiguous when the
                // filter is one equality.
                match (filter.as_simple_eq(), sub, value) {
                    (Some((path, key)), Some(sub), Some(v)) => {
                        let mut item = Map::new();
                        item.insert(path.attr.clone(), Value::from(key));
                        item.insert(sub.name.to_owned(), v.clone());
                        push(holder, name, Value::Object(item));
                    }
                    _ => {
                        return Err(ScimError::no_target(format!(
                            "no value of `{name}` matches the filter"
                        )));
                    }
                }
            }
        }
    }
    tidy(holder, name);
    Ok(())
}

fn push(holder: &mut Map<String, Value>, name: &str, item: Value) {
    match holder.get_mut(name) {
        Some(Value::Array(items)) => items.push(item),
        _ => {
            holder.insert(name.to_owned(), Value::Array(vec![item]));
        }
    }
}

fn apply_whole(
    holder: &mut Map<String, Value>,
    op: OpKind,
    a: &'static Attribute,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let name = a.name;
    match op {
        OpKind::Remove => {
            match (value, holder.get_mut(name)) {
                // `remove` of `members` with a value lists the members to remove.
                (Some(v), Some(Value::Array(items))) if a.multi_valued => {
                    let gone: Vec<&Value> = match v {
                        Value::Array(list) => list.iter().collect(),
                        other => vec![other],
                    };
                    items.retain(|item| !gone.iter().any(|g| same_item(item, g)));
                }
                _ => {
                    holder.remove(name);
                }
            }
        }
        OpKind::Add | OpKind::Replace => {
            let Some(value) = value else {
                return Err(ScimError::invalid_value("add and replace need a `value`"));
            };
            if a.multi_valued {
                let new: Vec<Value> = match value {
                    Value::Array(list) => list.clone(),
                    other => vec![other.clone()],
                };
                match (op, holder.get_mut(name)) {
                    (OpKind::Add, Some(Value::Array(items))) => {
                        for item in new {
                            if !items.iter().any(|old| same_item(old, &item)) {
                                items.push(item);
                            }
                        }
                    }
                    _ => {
                        holder.insert(name.to_owned(), Value::Array(new));
                    }
                }
            } else if a.kind == Kind::Complex {
                // RFC 7644 3.5.2.3: sub-attributes not named are left as they are, for
                // replace as for add.
                let Value::Object(new) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "`{name}` must be an object"
                    )));
                };
                match holder.get_mut(name) {
                    Some(Value::Object(old)) => old.extend(new.clone()),
                    _ => {
                        holder.insert(name.to_owned(), value.clone());
                    }
                }
            } else {
                holder.insert(name.to_owned(), value.clone());
            }
        }
    }
    Ok(())
}

/// Two values of a multi-valued attribute are the same item when equal, or when both are
/// objects with the same `value` (a member, a group, an address by its value).
fn same_item(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn set_sub(item: &mut Value, op: OpKind, sub: &str, value: Option<&Value>) {
    let Value::Object(map) = item else {
        return;
    };
    match (op, value) {
        (OpKind::Remove, _) | (_, None) => {
            map.remove(sub);
        }
        (_, Some(v)) => {
            map.insert(sub.to_owned(), v.clone());
        }
    }
}

/// Drops what a removal left empty (an attribute with no values is unassigned, RFC 7643
/// section 2.5), so the stored form has one way to say "absent".
fn tidy(holder: &mut Map<String, Value>, name: &str) {
    if let Some(Value::Array(items)) = holder.get_mut(name) {
        items.retain(|i| !matches!(i, Value::Object(o) if o.is_empty()));
    }
    let empty = match holder.get(name) {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::Null) => true,
        _ => false,
    };
    if empty {
        holder.remove(name);
    }
}
