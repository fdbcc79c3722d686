//! The mapping between SCIM resources and the directory: which SCIM attribute is which
//! directory field, and how a directory user or group is answered as a SCIM resource.
//!
//! | SCIM | directory |
//! |---|---|
//! | `id` | the user's (group's) internal ID |
//! | `userName` | username |
//! | `emails` (the primary one, else the first) | e-mail address; the directory keeps one |
//! | `name.givenName`, `name.familyName`, `displayName` | the fields of those names |
//! | `active` | status (`false` = suspended) |
//! | `externalId`, `nickName`, `title`, `userType`, `preferredLanguage`, `locale`, `timezone`, `profileUrl` | custom attributes of the same name |
//! | enterprise `employeeNumber`, `costCenter`, `organization`, `division`, `department` | custom attributes of the same name |
//! | enterprise `manager.value` | custom attribute `manager` |
//! | `groups` | memberships (read-only, written through the groups) |
//! | anything else (phone numbers, addresses, `name.formatted`...) | kept beside the user as SCIM sent it (`scim_users.resource`) |
//! | group `displayName`, `members` | group name, memberships (users only) |
//! | group `externalId` | `scim_groups.external_id` |
//!
//! Custom attributes are what attribute release reads (`attr:department`), so whatever
//! an HR system pushes can go into an assertion without another copy.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use latchkey_scim::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, etag};

use super::rule::Fields;
use crate::directory::{AttributeValue, Group, User, UserStatus};

/// Core single-valued attributes kept as custom attributes of the same name.
pub const CORE_ATTRIBUTES: &[&str] = &[
    "externalId",
    "nickName",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "profileUrl",
];

/// Enterprise extension attributes kept as custom attributes of the same name.
pub const ENTERPRISE_ATTRIBUTES: &[&str] = &[
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
];

/// The custom attribute holding `manager.value`.
pub const MANAGER: &str = "manager";

/// The directory fields a SCIM user write decides, by [`super::rule`] name.
pub fn user_fields() -> Vec<String> {
    let mut out: Vec<String> = [
        "userName",
        "email",
        "givenName",
        "familyName",
        "displayName",
        "active",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    out.extend(
        CORE_ATTRIBUTES
            .iter()
            .chain(ENTERPRISE_ATTRIBUTES)
            .chain(&[MANAGER])
            .map(|k| attribute_field(k)),
    );
    out
}

fn attribute_field(key: &str) -> String {
    format!("attributes.{key}")
}

pub use latchkey_scim::Resource;

/// A resource's version: a hash of everything but `meta` (for a group, everything but its
/// members, and its members' version instead: see [`group`]), so any change of what a client
/// sees (a hand edit, a membership) changes the ETag.
fn version_of(resource: &Value) -> i64 {
    let digest = Sha256::digest(resource.to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first) & i64::MAX
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn finish(
    map: Map<String, Value>,
    kind: &str,
    endpoint: &str,
    id: &str,
    created: OffsetDateTime,
    modified: OffsetDateTime,
    base: &str,
) -> Resource {
    let version = version_of(&Value::Object(map.clone()));
    finish_at(map, version, kind, endpoint, id, created, modified, base)
}

#[allow(clippy::too_many_arguments)]
fn finish_at(
    mut map: Map<String, Value>,
    version: i64,
    kind: &str,
    endpoint: &str,
    id: &str,
    created: OffsetDateTime,
    modified: OffsetDateTime,
    base: &str,
) -> Resource {
    map.insert(
        "meta".to_owned(),
        json!({
            "resourceType": kind,
            "created": rfc3339(created),
            "lastModified": rfc3339(modified),
            "location": format!("{base}/{endpoint}/{id}"),
            "version": etag(version),
        }),
    );
    Resource {
        json: Value::Object(map),
        version,
    }
}

/// The directory's current fields of `user`, by rule name.
pub fn fields_of(user: &User) -> Fields {
    let mut out = Fields::new();
    out.insert("userName".into(), Value::from(user.username.clone()));
    out.insert("email".into(), Value::from(user.email.clone()));
    let mut opt = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.insert(name.to_owned(), Value::from(v.clone()));
        }
    };
    opt("givenName", &user.given_name);
    opt("familyName", &user.family_name);
    opt("displayName", &user.display_name);
    out.insert(
        "active".into(),
        Value::Bool(user.status == UserStatus::Active),
    );
    for key in CORE_ATTRIBUTES
        .iter()
        .chain(ENTERPRISE_ATTRIBUTES)
        .chain(&[MANAGER])
    {
        match user.attributes.get(*key) {
            Some(AttributeValue::One(v)) => {
                out.insert(attribute_field(key), Value::from(v.clone()));
            }
            Some(AttributeValue::Many(vs)) => {
                out.insert(attribute_field(key), json!(vs));
            }
            None => {}
        }
    }
    out
}

/// What a checked SCIM User resource asks of the directory: its fields by rule name, and
/// the rest, kept beside the user as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct WantedUser {
    /// The directory fields.
    pub fields: Fields,
    /// Everything the directory has no field for.
    pub extras: Value,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The primary e-mail entry, else the first.
fn primary(list: &[Value]) -> Option<&Value> {
    list.iter()
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| list.first())
}

impl WantedUser {
    /// Reads a resource that passed `USER_TYPE.check`.
    pub fn from_resource(resource: &Value) -> WantedUser {
        let mut fields = Fields::new();
        let mut extras = resource.as_object().cloned().unwrap_or_default();
        for key in ["schemas", "id", "meta", "groups"] {
            extras.remove(key);
        }
        let mut put = |name: String, v: Option<&str>| {
            if let Some(v) = v {
                fields.insert(name, Value::from(v));
            }
        };
        put("userName".into(), str_at(resource, "userName"));
        put("displayName".into(), str_at(resource, "displayName"));
        extras.remove("userName");
        extras.remove("displayName");
        if let Some(name) = resource.get("name") {
            put("givenName".into(), str_at(name, "givenName"));
            put("familyName".into(), str_at(name, "familyName"));
            let mut rest = name.as_object().cloned().unwrap_or_default();
            rest.remove("givenName");
            rest.remove("familyName");
            if rest.is_empty() {
                extras.remove("name");
            } else {
                extras.insert("name".into(), Value::Object(rest));
            }
        }
        for key in CORE_ATTRIBUTES {
            put(attribute_field(key), str_at(resource, key));
            extras.remove(*key);
        }
        if let Some(ext) = resource.get(ENTERPRISE_USER_SCHEMA) {
            for key in ENTERPRISE_ATTRIBUTES {
                put(attribute_field(key), str_at(ext, key));
            }
            put(
                attribute_field(MANAGER),
                ext.get("manager").and_then(|m| str_at(m, "value")),
            );
        }
        extras.remove(ENTERPRISE_USER_SCHEMA);
        extras.remove("active");
        // The directory keeps one address: the primary one (else the first), with its
        // `type` and `display`; the other entries are not kept.
        let emails = resource
            .get("emails")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match primary(emails) {
            Some(entry) => {
                put("email".into(), str_at(entry, "value"));
                extras.insert("emails".into(), Value::Array(vec![entry.clone()]));
            }
            None => {
                extras.remove("emails");
            }
        }
        if let Some(Value::Bool(active)) = resource.get("active") {
            fields.insert("active".into(), Value::Bool(*active));
        }
        WantedUser {
            fields,
            extras: Value::Object(extras),
        }
    }
}

/// `user` as a SCIM User. `extras` is what SCIM sent that the directory has no field for,
/// `groups` the user's groups (ID, name), `scim_modified` when SCIM last wrote the extras.
pub fn user(
    user: &User,
    extras: &Value,
    groups: &[(String, String)],
    scim_modified: Option<OffsetDateTime>,
    base: &str,
) -> Resource {
    let mut map = extras.as_object().cloned().unwrap_or_default();
    let id = user.id.to_string();
    map.insert("id".into(), Value::from(id.clone()));
    map.insert("userName".into(), Value::from(user.username.clone()));
    let mut name = map
        .remove("name")
        .and_then(|n| n.as_object().cloned())
        .unwrap_or_default();
    if let Some(v) = &user.given_name {
        name.insert("givenName".into(), Value::from(v.clone()));
    }
    if let Some(v) = &user.family_name {
        name.insert("familyName".into(), Value::from(v.clone()));
    }
    if !name.is_empty() {
        map.insert("name".into(), Value::Object(name));
    }
    if let Some(v) = &user.display_name {
        map.insert("displayName".into(), Value::from(v.clone()));
    }
    map.insert(
        "active".into(),
        Value::Bool(user.status == UserStatus::Active),
    );
    // The kept e-mail entry, carrying the directory's address (an admin may have changed it).
    let mut entry = map
        .remove("emails")
        .and_then(|e| e.as_array().and_then(|l| l.first().cloned()))
        .and_then(|e| e.as_object().cloned())
        .unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("type".into(), Value::from("work"));
            m.insert("primary".into(), Value::Bool(true));
            m
        });
    entry.insert("value".into(), Value::from(user.email.clone()));
    map.insert("emails".into(), Value::Array(vec![Value::Object(entry)]));
    let one = |key: &str| match user.attributes.get(key) {
        Some(AttributeValue::One(v)) => Some(Value::from(v.clone())),
        _ => None,
    };
    for key in CORE_ATTRIBUTES {
        if let Some(v) = one(key) {
            map.insert((*key).to_owned(), v);
        }
    }
    let mut ext = Map::new();
    for key in ENTERPRISE_ATTRIBUTES {
        if let Some(v) = one(key) {
            ext.insert((*key).to_owned(), v);
        }
    }
    if let Some(Value::String(manager)) = one(MANAGER) {
        ext.insert(
            "manager".into(),
            json!({"value": manager, "$ref": format!("{base}/Users/{manager}")}),
        );
    }
    let mut schemas = vec![Value::from(USER_SCHEMA)];
    if !ext.is_empty() {
        schemas.push(Value::from(ENTERPRISE_USER_SCHEMA));
        map.insert(ENTERPRISE_USER_SCHEMA.to_owned(), Value::Object(ext));
    }
    if !groups.is_empty() {
        let list: Vec<Value> = groups
            .iter()
            .map(|(gid, gname)| {
                json!({
                    "value": gid,
                    "display": gname,
                    "$ref": format!("{base}/Groups/{gid}"),
                    "type": "direct",
                })
            })
            .collect();
        map.insert("groups".into(), Value::Array(list));
    }
    map.insert("schemas".into(), Value::Array(schemas));
    let modified = scim_modified.map_or(user.updated_at, |t| t.max(user.updated_at));
    finish(map, "User", "Users", &id, user.created_at, modified, base)
}

/// A group's member as answered: the user, and the entry SCIM wrote for them (none for a
/// member an admin added, or one SCIM named by another spelling of the ID).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The user's ID.
    pub id: String,
    /// Their username, the `display` of an entry SCIM did not write.
    pub username: String,
    /// The entry as SCIM wrote it (`display`, `type`), shown as written.
    pub written: Option<Value>,
}

impl Member {
    /// The entry as answered.
    pub fn entry(&self, base: &str) -> Value {
        self.written.clone().unwrap_or_else(|| {
            json!({
                "value": self.id,
                "display": self.username,
                "$ref": format!("{base}/Users/{}", self.id),
                "type": "User",
            })
        })
    }
}

/// `group` as a SCIM Group; `members` is `None` when the caller left them out.
///
/// Its version is a hash of everything but `meta` and `members`, with `members_version`
/// (`directory_groups.members_version`, moved by the database's triggers on every change to
/// what the member list shows, whoever writes it: migration 0630) in their place. So it is
/// the same with or without the members, and knowing it never needs them read: a group of
/// 100,000 took seconds to read and hash for every `If-Match`.
pub fn group(
    group: &Group,
    external_id: Option<&str>,
    members: Option<&[Member]>,
    members_version: i64,
    scim_modified: Option<OffsetDateTime>,
    base: &str,
) -> Resource {
    let mut map = Map::new();
    let id = group.id.to_string();
    map.insert("schemas".into(), json!([GROUP_SCHEMA]));
    map.insert("id".into(), Value::from(id.clone()));
    map.insert("displayName".into(), Value::from(group.name.clone()));
    if let Some(e) = external_id {
        map.insert("externalId".into(), Value::from(e));
    }
    // Hashed under a key no resource carries, so it never collides with an attribute.
    let mut hashed = map.clone();
    hashed.insert("meta.membersVersion".into(), Value::from(members_version));
    let version = version_of(&Value::Object(hashed));
    if let Some(members) = members
        && !members.is_empty()
    {
        let list: Vec<Value> = members.iter().map(|m| m.entry(base)).collect();
        map.insert("members".into(), Value::Array(list));
    }
    let modified = scim_modified.map_or(group.updated_at, |t| t.max(group.updated_at));
    finish_at(
        map,
        version,
        "Group",
        "Groups",
        &id,
        group.created_at,
        modified,
        base,
    )
}
