//! The attributes and Issuer that every protocol message carries (RequestAbstractType
//! and StatusResponseType, SAML core §3.2.1 and §3.2.2).

use std::borrow::Cow;

use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::assertion::parse_issuer;
use crate::error::Result;
use crate::ids::is_ncname;
use crate::read;

/// The common part of a protocol message, as read: borrowed from the document, so that
/// a reader copies only what it keeps (the profile compares Destination and Issuer and
/// drops them).
#[derive(Debug)]
pub(crate) struct Header<'a> {
    pub(crate) id: &'a str,
    pub(crate) issue_instant: OffsetDateTime,
    /// Trimmed (an `xs:anyURI`).
    pub(crate) destination: Option<&'a str>,
    pub(crate) issuer: Option<Cow<'a, str>>,
}

/// Reads the common header; refuses a Version other than 2.0 and an ID that is not an
/// NCName (it would be refused as a signature reference anyway, and it is echoed back in
/// InResponseTo).
pub(crate) fn parse_header<'a>(node: Node<'a, '_>, element: &'static str) -> Result<Header<'a>> {
    let version = read::required_attr(node, element, "Version")?;
    if version != "2.0" {
        return Err(read::unsupported_version(version));
    }
    let id = read::required_attr(node, element, "ID")?;
    if !is_ncname(id) {
        return Err(read::invalid_value(element, "ID", id));
    }
    Ok(Header {
        id,
        issue_instant: read::required_datetime(node, element, "IssueInstant")?,
        destination: node.attribute("Destination").map(str::trim),
        issuer: parse_issuer(node, element)?,
    })
}
