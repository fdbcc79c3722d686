//! The resource schemas (RFC 7643): one static description of every attribute, from which
//! `/Schemas` is rendered, incoming resources are checked and given canonical attribute names,
//! and filter and PATCH paths are resolved. Attribute names are case-insensitive on the wire
//! (RFC 7643 section 2.1), so everything past this module sees canonical names only.

use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// An attribute's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string.
    String,
    /// A JSON boolean.
    Boolean,
    /// A JSON integer.
    Integer,
    /// An RFC 3339 time, as a string.
    DateTime,
    /// A URI (a resource reference), as a string.
    Reference,
    /// A JSON object of the sub-attributes.
    Complex,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// Whether a client may write an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Written by the client at any time.
    ReadWrite,
    /// Set by the server only (`id`, `meta`, a user's `groups`); ignored in a client's body.
    ReadOnly,
}

/// One attribute of a schema.
#[derive(Debug)]
pub struct Attribute {
    /// The canonical name.
    pub name: &'static str,
    /// The type.
    pub kind: Kind,
    /// Whether the value is a JSON array.
    pub multi_valued: bool,
    /// Whether a resource must have it.
    pub required: bool,
    /// Whether string comparisons respect case.
    pub case_exact: bool,
    /// Who writes it.
    pub mutability: Mutability,
    /// Whether the server keeps it unique (`server`) among resources of the type.
    pub unique: bool,
    /// The sub-attributes of a complex attribute.
    pub sub_attributes: &'static [Attribute],
    /// What it holds, as `/Schemas` says.
    pub description: &'static str,
    /// For a reference: what it may point at (`User`, `Group`, `external`, `uri`).
    pub reference_types: &'static [&'static str],
}

const fn attr(name: &'static str, kind: Kind, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub_attributes: &[],
        description,
        reference_types: &["external"],
    }
}

const fn complex(
    name: &'static str,
    multi_valued: bool,
    sub_attributes: &'static [Attribute],
    description: &'static str,
) -> Attribute {
    Attribute {
        name,
        kind: Kind::Complex,
        multi_valued,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        unique: false,
        sub_attributes,
        description,
        reference_types: &[],
    }
}

/// A reference to resources of `types` only: a member is a User of this server.
const fn refs(mut a: Attribute, types: &'static [&'static str]) -> Attribute {
    a.reference_types = types;
    a
}

const fn read_only(mut a: Attribute) -> Attribute {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn case_exact(mut a: Attribute) -> Attribute {
    a.case_exact = true;
    a
}

/// The sub-attributes of the multi-valued string lists (`emails`, `phoneNumbers`, ...).
const MULTI_VALUE_SUBS: &[Attribute] = &[
    attr("value", Kind::String, "The value."),
    attr("display", Kind::String, "A human-readable name."),
    attr("type", Kind::String, "A label: work, home, other..."),
    attr("primary", Kind::Boolean, "The preferred value of the list."),
];

const NAME_SUBS: &[Attribute] = &[
    attr(
        "formatted",
        Kind::String,
        "The full name, formatted for display.",
    ),
    attr("familyName", Kind::String, "The family name."),
    attr("givenName", Kind::String, "The given name."),
    attr("middleName", Kind::String, "The middle name."),
    attr(
        "honorificPrefix",
        Kind::String,
        "The title before the name.",
    ),
    attr(
        "honorificSuffix",
        Kind::String,
        "The suffix after the name.",
    ),
];

const ADDRESS_SUBS: &[Attribute] = &[
    attr("formatted", Kind::String, "The full address."),
    attr("streetAddress", Kind::String, "The street."),
    attr("locality", Kind::String, "The city."),
    attr("region", Kind::String, "The state or region."),
    attr("postalCode", Kind::String, "The postal code."),
    attr("country", Kind::String, "The country (ISO 3166-1 alpha-2)."),
    attr("type", Kind::String, "A label: work, home, other."),
    attr("primary", Kind::Boolean, "The preferred address."),
];

const GROUP_REF_SUBS: &[Attribute] = &[
    read_only(case_exact(attr("value", Kind::String, "The group's id."))),
    read_only(refs(
        attr("$ref", Kind::Reference, "The group's URI."),
        &["Group"],
    )),
    read_only(attr("display", Kind::String, "The group's displayName.")),
    read_only(attr("type", Kind::String, "direct")),
];

const MEMBER_SUBS: &[Attribute] = &[
    case_exact(attr("value", Kind::String, "The member's id.")),
    refs(
        attr("$ref", Kind::Reference, "The member's URI."),
        &["User"],
    ),
    attr("display", Kind::String, "The member's name."),
    attr("type", Kind::String, "User or Group."),
];

const MANAGER_SUBS: &[Attribute] = &[
    case_exact(attr("value", Kind::String, "The manager's id.")),
    refs(
        attr("$ref", Kind::Reference, "The manager's URI."),
        &["User"],
    ),
    read_only(attr("displayName", Kind::String, "The manager's name.")),
];

const META_SUBS: &[Attribute] = &[
    read_only(case_exact(attr(
        "resourceType",
        Kind::String,
        "User or Group.",
    ))),
    read_only(attr(
        "created",
        Kind::DateTime,
        "When the resource was created.",
    )),
    read_only(attr(
        "lastModified",
        Kind::DateTime,
        "When it last changed.",
    )),
    read_only(case_exact(refs(
        attr("location", Kind::Reference, "Its URI."),
        &["uri"],
    ))),
    read_only(case_exact(attr("version", Kind::String, "Its ETag."))),
];

/// The attributes every resource has (RFC 7643 section 3.1).
const COMMON: &[Attribute] = &[
    read_only(case_exact(Attribute {
        unique: true,
        ..attr("id", Kind::String, "The server's identifier.")
    })),
    case_exact(attr(
        "externalId",
        Kind::String,
        "The provisioning client's identifier.",
    )),
    read_only(complex("meta", false, META_SUBS, "Resource metadata.")),
];

const USER_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        unique: true,
        ..attr("userName", Kind::String, "The unique name of the user.")
    },
    complex("name", false, NAME_SUBS, "The user's name."),
    attr("displayName", Kind::String, "The name to display."),
    attr("nickName", Kind::String, "A casual name."),
    attr("profileUrl", Kind::Reference, "A profile page."),
    attr("title", Kind::String, "The job title."),
    attr("userType", Kind::String, "Employee, contractor..."),
    attr("preferredLanguage", Kind::String, "The preferred language."),
    attr("locale", Kind::String, "The locale."),
    attr("timezone", Kind::String, "The time zone (IANA name)."),
    attr(
        "active",
        Kind::Boolean,
        "Whether the account may sign in; false disables it and ends its sessions.",
    ),
    complex("emails", true, MULTI_VALUE_SUBS, "E-mail addresses."),
    complex("phoneNumbers", true, MULTI_VALUE_SUBS, "Phone numbers."),
    complex(
        "ims",
        true,
        MULTI_VALUE_SUBS,
        "Instant messaging addresses.",
    ),
    complex("photos", true, MULTI_VALUE_SUBS, "Photo URLs."),
    complex("addresses", true, ADDRESS_SUBS, "Postal addresses."),
    read_only(complex(
        "groups",
        true,
        GROUP_REF_SUBS,
        "The groups the user is a member of (written through the groups).",
    )),
    complex("entitlements", true, MULTI_VALUE_SUBS, "Entitlements."),
    complex(
        "roles",
        true,
        MULTI_VALUE_SUBS,
        "Roles asserted by the client.",
    ),
    complex("x509Certificates", true, MULTI_VALUE_SUBS, "Certificates."),
];

const ENTERPRISE_ATTRIBUTES: &[Attribute] = &[
    attr("employeeNumber", Kind::String, "The employee number."),
    attr("costCenter", Kind::String, "The cost center."),
    attr("organization", Kind::String, "The organization."),
    attr("division", Kind::String, "The division."),
    attr("department", Kind::String, "The department."),
    complex("manager", false, MANAGER_SUBS, "The user's manager."),
];

const GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        unique: true,
        ..attr("displayName", Kind::String, "The group's name.")
    },
    complex("members", true, MEMBER_SUBS, "The group's members."),
];

/// A schema: its URN, and its attributes (common ones excluded).
#[derive(Debug)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    /// Its short name.
    pub name: &'static str,
    /// What it describes.
    pub description: &'static str,
    /// Its attributes.
    pub attributes: &'static [Attribute],
}

/// The core User schema.
pub static USER: Schema = Schema {
    id: USER_SCHEMA,
    name: "User",
    description: "User account",
    attributes: USER_ATTRIBUTES,
};

/// The enterprise User extension.
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise user",
    attributes: ENTERPRISE_ATTRIBUTES,
};

/// The core Group schema.
pub static GROUP: Schema = Schema {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

/// A resource type: its core schema and extensions.
#[derive(Debug)]
pub struct ResourceType {
    /// `User` or `Group`.
    pub name: &'static str,
    /// The endpoint, relative to the base URL.
    pub endpoint: &'static str,
    /// The core schema.
    pub schema: &'static Schema,
    /// The extension schemas (all optional).
    pub extensions: &'static [&'static Schema],
}

/// Users, with the enterprise extension.
pub static USER_TYPE: ResourceType = ResourceType {
    name: "User",
    endpoint: "/Users",
    schema: &USER,
    extensions: &[&ENTERPRISE_USER],
};

/// Groups.
pub static GROUP_TYPE: ResourceType = ResourceType {
    name: "Group",
    endpoint: "/Groups",
    schema: &GROUP,
    extensions: &[],
};

/// Where an attribute was found: which schema's namespace (`None` for the core one, whose
/// attributes sit at the top of the resource) and its description.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// The extension URN the attribute lives under, `None` for core and common attributes.
    pub extension: Option<&'static str>,
    /// The attribute.
    pub attribute: &'static Attribute,
}

fn find<'a>(list: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    list.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

impl Attribute {
    /// The sub-attribute `name`, case-insensitively.
    pub fn sub(&self, name: &str) -> Option<&'static Attribute>
    where
        Self: 'static,
    {
        find(self.sub_attributes, name)
    }
}

impl ResourceType {
    /// Resolves an attribute name (optionally prefixed by a schema URN) to its description.
    pub fn resolve(&'static self, uri: Option<&str>, name: &str) -> Option<Resolved> {
        match uri {
            None => {
                if let Some(a) = find(COMMON, name).or_else(|| find(self.schema.attributes, name)) {
                    return Some(Resolved {
                        extension: None,
                        attribute: a,
                    });
                }
                None
            }
            Some(uri) if uri.eq_ignore_ascii_case(self.schema.id) => self.resolve(None, name),
            Some(uri) => {
                let ext = self
                    .extensions
                    .iter()
                    .find(|s| s.id.eq_ignore_ascii_case(uri))?;
                find(ext.attributes, name).map(|a| Resolved {
                    extension: Some(ext.id),
                    attribute: a,
                })
            }
        }
    }

    /// The extension with URN `uri`, case-insensitively.
    pub fn extension(&'static self, uri: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(uri))
    }

    /// Checks a client's resource (POST or PUT body, or the result of a PATCH) and returns it
    /// with canonical attribute names, read-only attributes removed, and `schemas` set to the
    /// core schema plus the extensions present.
    ///
    /// Unknown attributes and wrong types are `invalidValue` (a client that misspells an
    /// attribute learns it at once instead of losing the value); a missing `schemas` or one
    /// that names no schema of this type is `invalidSyntax`.
    pub fn check(&'static self, body: &Value, require_schemas: bool) -> Result<Value, ScimError> {
        let Some(object) = body.as_object() else {
            return Err(ScimError::invalid_syntax("the body must be a JSON object"));
        };
        let mut out = Map::new();
        let mut extensions = Vec::new();
        let mut schemas_seen = false;
        for (key, value) in object {
            if key.eq_ignore_ascii_case("schemas") {
                let Some(list) = value.as_array() else {
                    return Err(ScimError::invalid_syntax("`schemas` must be an array"));
                };
                let names_core = list.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(self.schema.id))
                });
                if !names_core {
                    return Err(ScimError::invalid_syntax(format!(
                        "`schemas` must include {}",
                        self.schema.id
                    )));
                }
                schemas_seen = true;
                continue;
            }
            if let Some(ext) = self.extension(key) {
                if value.is_null() {
                    continue;
                }
                let Some(inner) = value.as_object() else {
                    return Err(ScimError::invalid_value(format!(
                        "`{}` must be an object",
                        ext.id
                    )));
                };
                let mut checked = Map::new();
                for (k, v) in inner {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let Some(a) = find(ext.attributes, k) else {
                        return Err(ScimError::invalid_value(format!(
                            "unknown attribute `{}:{k}`",
                            ext.id
                        )));
                    };
                    if let Some(v) = check_value(a, v, &format!("{}:{}", ext.id, a.name))? {
                        checked.insert(a.name.to_owned(), v);
                    }
                }
                if !checked.is_empty() {
                    extensions.push(ext.id);
                    out.insert(ext.id.to_owned(), Value::Object(checked));
                }
                continue;
            }
            let Some(resolved) = self.resolve(None, key) else {
                return Err(ScimError::invalid_value(format!(
                    "unknown attribute `{key}`"
                )));
            };
            let a = resolved.attribute;
            if a.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(v) = check_value(a, value, a.name)? {
                out.insert(a.name.to_owned(), v);
            }
        }
        if require_schemas && !schemas_seen {
            return Err(ScimError::invalid_syntax("`schemas` is required"));
        }
        for a in self.schema.attributes.iter().filter(|a| a.required) {
            if !out.contains_key(a.name) {
                return Err(ScimError::invalid_value(format!(
                    "`{}` is required",
                    a.name
                )));
            }
        }
        let mut schemas = vec![Value::from(self.schema.id)];
        schemas.extend(extensions.into_iter().map(Value::from));
        out.insert("schemas".to_owned(), Value::Array(schemas));
        Ok(Value::Object(out))
    }

    /// The `/ResourceTypes` entry.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.schema.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter()
                .map(|s| json!({"schema": s.id, "required": false}))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", self.name),
            },
        })
    }
}

/// Checks one attribute's value; `None` for a null or empty value (which RFC 7643 section
/// 2.5 treats as unassigned). Canonicalises the names of a complex value's sub-attributes.
fn check_value(a: &Attribute, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if a.multi_valued {
        let Some(items) = value.as_array() else {
            return Err(ScimError::invalid_value(format!(
                "`{path}` must be an array"
            )));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = check_single(a, item, path)? {
                out.push(v);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    check_single(a, value, path)
}

fn check_single(a: &Attribute, value: &Value, path: &str) -> Result<Option<Value>, ScimError> {
    let wrong = || ScimError::invalid_value(format!("`{path}` must be a {}", a.kind.as_str()));
    match a.kind {
        Kind::Complex => {
            let Some(object) = value.as_object() else {
                return Err(wrong());
            };
            let mut out = Map::new();
            for (k, v) in object {
                let Some(sub) = find(a.sub_attributes, k) else {
                    return Err(ScimError::invalid_value(format!(
                        "unknown attribute `{path}.{k}`"
                    )));
                };
                if let Some(v) = check_single(sub, v, &format!("{path}.{}", sub.name))? {
                    out.insert(sub.name.to_owned(), v);
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        _ if value.is_null() => Ok(None),
        Kind::String | Kind::Reference => match value {
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(_) => Ok(Some(value.clone())),
            _ => Err(wrong()),
        },
        Kind::DateTime => match value.as_str() {
            Some(s) if super::filter::parse_time(s).is_some() => Ok(Some(value.clone())),
            _ => Err(wrong()),
        },
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            // Microsoft Entra sends "True"/"False" strings for `active`.
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(wrong()),
        },
        Kind::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value.clone())),
            _ => Err(wrong()),
        },
    }
}

/// The `/Schemas` entry of `schema`.
pub fn schema_json(schema: &Schema, base: &str) -> Value {
    let attributes: Vec<Value> = if schema.id == ENTERPRISE_USER_SCHEMA {
        schema.attributes.iter().map(attribute_json).collect()
    } else {
        COMMON
            .iter()
            .chain(schema.attributes)
            .filter(|a| a.name != "id" && a.name != "meta")
            .map(attribute_json)
            .collect()
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{base}/Schemas/{}", schema.id),
        },
    })
}

/// Marks attribute `attr` (and its sub-attribute `sub`) of a rendered `/Schemas` entry as
/// required: for a server whose store needs more than RFC 7643 does (the IdP's directory
/// needs an e-mail address), so that clients reading `/Schemas` learn it before a 400.
pub fn mark_required(schema: &mut Value, attr: &str, sub: Option<&str>) {
    let Some(list) = schema.get_mut("attributes").and_then(Value::as_array_mut) else {
        return;
    };
    for a in list.iter_mut().filter(|a| a["name"] == attr) {
        a["required"] = Value::Bool(true);
        if let Some(sub) = sub
            && let Some(subs) = a.get_mut("subAttributes").and_then(Value::as_array_mut)
        {
            for s in subs.iter_mut().filter(|s| s["name"] == sub) {
                s["required"] = Value::Bool(true);
            }
        }
    }
}

fn attribute_json(a: &Attribute) -> Value {
    let mut out = json!({
        "name": a.name,
        "type": a.kind.as_str(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": match a.mutability {
            Mutability::ReadWrite => "readWrite",
            Mutability::ReadOnly => "readOnly",
        },
        "returned": "default",
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if let Some(map) = out.as_object_mut() {
        if a.kind == Kind::Complex {
            map.insert(
                "subAttributes".to_owned(),
                Value::Array(a.sub_attributes.iter().map(attribute_json).collect()),
            );
        }
        if a.kind == Kind::Reference {
            map.insert("referenceTypes".to_owned(), json!(a.reference_types));
        }
    }
    out
}

/// Every schema served at `/Schemas`.
pub static ALL_SCHEMAS: &[&Schema] = &[&USER, &ENTERPRISE_USER, &GROUP];

/// Every resource type served at `/ResourceTypes`.
pub static ALL_TYPES: &[&ResourceType] = &[&USER_TYPE, &GROUP_TYPE];
