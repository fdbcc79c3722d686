//! The attributes and Issuer that every protocol message carries (RequestAbstractType
//! and StatusResponseType, SAML core §3.2.1 and §3.2.2).

use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::assertion::parse_issuer;
use crate::error::Result;
use crate::ids::is_ncname;
use crate::read;

/// The common part of a protocol message, as read.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) id: String,
    pub(crate) issue_instant: OffsetDateTime,
    pub(crate) destination: Option<String>,
    pub(crate) issuer: Option<String>,
}

/// Reads the common header; refuses a Version other than 2.0 and an ID that is not an
/// NCName (it would be refused as a signature reference anyway, and it is echoed back in
/// InResponseTo).
pub(crate) fn parse_header(node: Node<'_, '_>, element: &'static str) -> Result<Header> {
    let version = read::required_attr(node, element, "Version")?;
    if version != "2.0" {
        return Err(read::unsupported_version(version));
    }
    let id = read::required_attr(node, element, "ID")?;
    if !is_ncname(id) {
        return Err(read::invalid_value(element, "ID", id));
    }
    Ok(Header {
        id: id.to_owned(),
        issue_instant: read::required_datetime(node, element, "IssueInstant")?,
        destination: node.attribute("Destination").map(|d| d.trim().to_owned()),
        issuer: parse_issuer(node, element)?,
    })
}
