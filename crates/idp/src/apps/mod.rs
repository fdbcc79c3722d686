//! Applications (SAML service providers): registration, access policy and pairwise NameIDs.
//!
//! An application is reachable only by members of the groups assigned to it; with no groups
//! assigned, nobody may use it.

mod cache;
mod mapping;
mod metadata_import;
mod model;
mod pairwise;
pub(crate) mod registry;
pub(crate) mod rules;

pub(crate) use cache::AppCache;
pub use cache::{AppKey, AppsVersion};
pub use mapping::{AttributeMapping, AttributeNameFormat, AttributeSource, UserField, ValueFilter};
pub use metadata_import::{ImportWarning, MetadataImportError, SpMetadata, SpMetadataOptions};
pub use model::{
    AcsEndpoint, Application, Binding, Endpoint, NameIdFormat, NameIdPolicy, NameIdSource,
    NewApplication, Tile,
};
pub use registry::{AppRead, Apps, SignInApp};
pub use rules::{MAX_SLUG, derive_slug, login_url, slug};
