//! The SCIM protocol parts: schemas, filters and PATCH, each against RFC 7643/7644.

mod filter;
mod patch;
mod schema;
