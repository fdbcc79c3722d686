//! SCIM errors (RFC 7644 section 3.12): an HTTP status, a `scimType` when the RFC defines one
//! for the case, and a detail. The detail is for the SCIM client's operator and never holds
//! stored data beyond what the request itself carried.

use serde_json::{Value, json};

use super::ERROR_SCHEMA;

latchkey_saml::stable_codes! {
    /// The `scimType` values of RFC 7644 table 9 that this server answers with.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    #[non_exhaustive]
    pub enum ScimType {
        /// The `filter` is malformed, too long or too deep, names an unknown attribute, or
        /// compares in a way the attribute's type does not allow.
        InvalidFilter = "invalidFilter",
        /// A filter or query would return more results than the server returns at once.
        TooMany = "tooMany",
        /// (409) A `userName` or group `displayName` already belongs to another resource, or
        /// the contract refused an e-mail address another account holds.
        Uniqueness = "uniqueness",
        /// The request tried to change a read-only or immutable attribute.
        Mutability = "mutability",
        /// The body is not JSON of the expected shape, or lacks the required `schemas`.
        InvalidSyntax = "invalidSyntax",
        /// A PATCH path is malformed or names an attribute the schema does not have.
        InvalidPath = "invalidPath",
        /// A PATCH path's value filter matched nothing (or a `remove` had no path).
        NoTarget = "noTarget",
        /// A value has the wrong type, a required attribute is missing, or the provisioning
        /// contract refused the change (the detail names its refusal code).
        InvalidValue = "invalidValue",
    }
}

/// A SCIM error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}{}: {detail}", scim_type.map(|t| format!(" {}", t.as_str())).unwrap_or_default())]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The `scimType`, for the 400 and 409 cases that have one.
    pub scim_type: Option<ScimType>,
    /// What was wrong, for the client's operator.
    pub detail: String,
}

impl ScimError {
    /// A 400 with `scim_type`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// `400 invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// `400 invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// 400 `tooMany`: the query would make the server compute more than it is willing to.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::TooMany, detail)
    }

    /// `400 invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// `400 invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// `400 noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// `400 mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// `409 uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: detail.into(),
        }
    }

    /// A status without a `scimType` (401, 404, 412, 413, 500, 503...).
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// `404`: no such resource.
    pub fn not_found(what: &str) -> Self {
        Self::status(404, format!("{what} not found"))
    }

    /// `412`: the `If-Match` version is not the resource's.
    pub fn precondition_failed() -> Self {
        Self::status(
            412,
            "the resource has changed since the version in If-Match",
        )
    }

    /// The error's JSON body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".to_owned(), Value::from(t.as_str()));
        }
        body
    }
}
