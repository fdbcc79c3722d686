//! The SCIM User an application is sent for a directory user.
//!
//! The core attributes come from the directory: `userName` (the username), `externalId`
//! (the IdP's immutable user ID), `name`, `displayName`, the primary work e-mail and
//! `active`. The application's attribute release then applies: a released attribute whose
//! name is a SCIM User attribute (`userName`, `displayName`, `title`, `nickName`,
//! `userType`, `preferredLanguage`, `locale`, `timezone`, `profileUrl`) or an enterprise
//! extension attribute (`employeeNumber`, `costCenter`, `organization`, `division`,
//! `department`) sets it to its first value, so an application that keys accounts on, say,
//! the e-mail address gets `userName=email` from the same mapping its assertions use.
//!
//! Groups are not part of the User (RFC 7643 makes `groups` read-only): when the release has
//! an attribute from `groups`, the values it would send are the SCIM Groups (by
//! `displayName`) the worker puts the user in ([`super::worker::converge`]).

use latchkey_scim::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use serde_json::{Map, Value, json};

use crate::apps::{Application, AttributeSource, UserField};
use crate::directory::User;

/// Core User attributes a release may set.
const CORE: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "nickName",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "profileUrl",
];
/// Enterprise extension attributes a release may set.
const ENTERPRISE: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
];

/// The User resource for `user` at `app` (`groups`: the names of the user's groups, for a
/// release from `groups`), with `active` as given.
pub fn user_resource(user: &User, app: &Application, groups: &[String], active: bool) -> Value {
    let mut name = Map::new();
    if let Some(given) = &user.given_name {
        name.insert("givenName".into(), Value::String(given.clone()));
    }
    if let Some(family) = &user.family_name {
        name.insert("familyName".into(), Value::String(family.clone()));
    }
    let mut resource = json!({
        "schemas": [USER_SCHEMA],
        "externalId": user.id.to_string(),
        "userName": user.username,
        "displayName": user.shown_name(),
        "emails": [{ "value": user.email, "type": "work", "primary": true }],
        "active": active,
    });
    let Some(map) = resource.as_object_mut() else {
        return resource;
    };
    if !name.is_empty() {
        map.insert("name".into(), Value::Object(name));
    }
    let mut enterprise = Map::new();
    for mapping in &app.settings.attributes {
        let Some(first) = mapping.values(user, groups).into_iter().next() else {
            continue;
        };
        if let Some(core) = CORE.iter().find(|a| **a == mapping.name) {
            map.insert((*core).into(), Value::String(first));
        } else if let Some(ext) = ENTERPRISE.iter().find(|a| **a == mapping.name) {
            enterprise.insert((*ext).into(), Value::String(first));
        }
    }
    if !enterprise.is_empty() {
        map.insert(ENTERPRISE_USER_SCHEMA.into(), Value::Object(enterprise));
        map.insert(
            "schemas".into(),
            json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]),
        );
    }
    resource
}

/// The `userName` `user` has at `app` ([`user_resource`]'s): the username, unless the release
/// sets it (an application keyed on e-mail addresses holds the address). A removal looks the
/// user up by it, as a create that meets an existing account does.
pub fn user_name(user: &User, app: &Application, groups: &[String]) -> String {
    user_resource(user, app, groups, false)
        .get("userName")
        .and_then(Value::as_str)
        .map_or_else(|| user.username.clone(), str::to_owned)
}

/// The directory field an application's `userName` holds, when it names one user: the
/// username unless the release sets `userName` (its last mapping of that name wins, as in
/// [`user_resource`]) from the ID, the username or the e-mail address. `None` for a
/// `userName` from anything else (a name, a constant, groups), which names no one user.
pub fn user_name_field(app: &Application) -> Option<UserField> {
    let source = app
        .settings
        .attributes
        .iter()
        .rev()
        .find(|m| m.name == "userName")
        .map(|m| &m.source);
    match source {
        None => Some(UserField::Username),
        Some(AttributeSource::Field(
            field @ (UserField::Id | UserField::Username | UserField::Email),
        )) => Some(field.clone()),
        Some(_) => None,
    }
}

/// Whether what the application holds differs from `wanted` in what we send (the remote
/// side adds `id`, `meta` and may add more; only our attributes are compared).
pub fn differs(wanted: &Value, remote: &Value) -> bool {
    let Some(wanted) = wanted.as_object() else {
        return true;
    };
    wanted
        .iter()
        .filter(|(k, _)| k.as_str() != "schemas")
        .any(|(key, value)| match (key.as_str(), remote.get(key)) {
            ("active", None) => value != &Value::Bool(true),
            (_, None) => true,
            ("emails", Some(there)) => primary_email(value) != primary_email(there),
            (_, Some(there)) => !same(value, there),
        })
}

/// Compares our value with the remote one, ignoring what the remote side adds inside a
/// complex value.
fn same(ours: &Value, theirs: &Value) -> bool {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::String(a), Value::String(b)) => a == b,
        (a, b) => a == b,
    }
}

fn primary_email(emails: &Value) -> Option<String> {
    let list = emails.as_array()?;
    let primary = list
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| list.first())?;
    Some(primary.get("value")?.as_str()?.to_lowercase())
}
