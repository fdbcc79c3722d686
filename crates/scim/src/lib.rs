//! SCIM 2.0 (RFC 7643, RFC 7644): the protocol parts that hold no state, shared by the SP
//! toolkit's SCIM server and the IdP's SCIM surfaces.
//!
//! - [`schema`]: the User (with the enterprise extension) and Group schemas as static
//!   descriptions, from which `/Schemas` and `/ResourceTypes` are rendered and every incoming
//!   resource is checked and given canonical attribute names.
//! - [`filter`]: the bounded filter parser and its evaluator.
//! - [`patch`]: PatchOp parsing and application.
//! - [`list`]: a listing's query (`filter`, `sortBy`, `startIndex`, `count`) and its answer.
//! - [`ScimError`]: statuses and `scimType`s.
//! - `http` (feature `http`): the axum plumbing every SCIM server shares, and `server`, the
//!   routes themselves over a `Backend` that holds the resources.
//!
//! Nothing here reads storage, the network or the clock: a crate of pure functions beside
//! `latchkey-saml`, so that every SCIM surface parses filters and applies PATCH the same way.

pub mod error;
pub mod filter;
#[cfg(feature = "http")]
pub mod http;
pub mod list;
pub mod patch;
pub mod schema;
#[cfg(feature = "http")]
pub mod server;

pub use error::{ScimError, ScimType};
pub use filter::Filter;

use serde_json::{Value, json};

/// A resource as a SCIM server answers it: its JSON (`meta` included) and its version, from
/// which [`etag`] makes the ETag.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The JSON.
    pub json: Value,
    /// The version.
    pub version: i64,
}

/// What a PATCH did.
#[derive(Debug, Clone, PartialEq)]
pub enum Patched {
    /// The resource after the change, answered in full (200).
    Resource(Resource),
    /// Applied, answered with no body (204) and the resource's version after as its ETag: a
    /// server may skip rendering a large group after a change to the members a PATCH names.
    Applied(i64),
}

/// The core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension URN.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The ListResponse message URN.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PatchOp message URN.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The Error message URN.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The media type of every SCIM body.
pub const CONTENT_TYPE: &str = "application/scim+json";

/// The largest request body accepted, in bytes (answered 413 past it). Also what
/// `/ServiceProviderConfig` announces as the bulk limit's payload size.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The most resources one list page returns (`count` is capped to it).
pub const MAX_PAGE: usize = 200;

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Whether an `If-Match` header value admits `version` (`*` admits any).
pub fn if_match_admits(header: &str, version: i64) -> bool {
    if_match_admits_tag(header, &version.to_string())
}

/// Whether an `If-Match` header value admits the entity tag whose opaque value is `tag`
/// (`*` admits any; compared weakly, so `W/"t"` and `"t"` are the same tag).
pub fn if_match_admits_tag(header: &str, tag: &str) -> bool {
    header.split(',').map(str::trim).any(|given| {
        given == "*"
            || given
                .strip_prefix("W/")
                .unwrap_or(given)
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                == Some(tag)
    })
}

/// `/ServiceProviderConfig`: what this server supports.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/latchkey/latchkey/blob/main/crates/sp/README.md#scim",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": MAX_BODY_BYTES},
        "filter": {"supported": true, "maxResults": MAX_PAGE},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token from the application's SCIM configuration, sent as \
                            `Authorization: Bearer <token>`",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}
