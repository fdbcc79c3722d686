//! Single Logout messages (SAML core §3.7).
//!
//! Logout messages are read from any node: a LogoutRequest names a session to end, and
//! the caller decides whether the sender may end it (signature, issuer, matching session).

use latchkey_xmlsec::dsig::Verified;
use latchkey_xmlsec::reader::{Limits, parse};
use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::assertion::{NameId, parse_name_id, write_issuer, write_name_id};
use crate::error::{Error, Result};
use crate::header::parse_header;
use crate::ns::{ASSERTION, PROTOCOL};
use crate::read;
use crate::status::{Status, parse_status, write_status};
use crate::time::format_datetime;
use crate::xml_writer::XmlWriter;

/// Reasons a logout is requested (SAML core §3.7.3).
pub mod reason {
    /// The user asked to log out.
    pub const USER: &str = "urn:oasis:names:tc:SAML:2.0:logout:user";
    /// An administrator ended the session.
    pub const ADMIN: &str = "urn:oasis:names:tc:SAML:2.0:logout:admin";
}

/// A LogoutRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// Its ID.
    pub id: String,
    /// When it was issued.
    pub issue_instant: OffsetDateTime,
    /// Where it is sent.
    pub destination: Option<String>,
    /// The sender's entity ID.
    pub issuer: Option<String>,
    /// The principal to log out.
    pub name_id: NameId,
    /// The sessions to end; empty means all of the principal's sessions.
    pub session_indexes: Vec<String>,
    /// After this the request is void.
    pub not_on_or_after: Option<OffsetDateTime>,
    /// Why (see [`reason`]).
    pub reason: Option<String>,
}

impl LogoutRequest {
    /// Serializes the request.
    pub fn to_xml(&self) -> Result<String> {
        let mut w = XmlWriter::new();
        w.start("samlp:LogoutRequest")
            .attr("xmlns:samlp", PROTOCOL)
            .attr("xmlns:saml", ASSERTION)
            .attr("ID", &self.id)
            .attr("Version", "2.0")
            .attr("IssueInstant", &format_datetime(self.issue_instant))
            .opt_attr("Destination", self.destination.as_deref())
            .opt_attr(
                "NotOnOrAfter",
                self.not_on_or_after.map(format_datetime).as_deref(),
            )
            .opt_attr("Reason", self.reason.as_deref());
        if let Some(i) = &self.issuer {
            write_issuer(&mut w, i);
        }
        write_name_id(&mut w, &self.name_id);
        for s in &self.session_indexes {
            w.text_element("samlp:SessionIndex", s);
        }
        w.end();
        w.finish()
    }

    /// Parses a request from text (through the hardened reader).
    pub fn parse(xml: &str) -> Result<Self> {
        let doc = parse(xml, &Limits::default())?;
        Self::from_node(doc.root_element())
    }

    /// Reads a request whose enveloped signature was verified.
    pub fn from_verified(verified: &Verified<'_, '_>) -> Result<Self> {
        Self::from_node(verified.element())
    }

    /// Reads a request from an element (authenticated only if the node is verified).
    pub fn from_node(node: Node<'_, '_>) -> Result<Self> {
        const R: &str = "samlp:LogoutRequest";
        read::expect(node, PROTOCOL, "LogoutRequest", R)?;
        let h = parse_header(node, R)?;
        let name_id = read::optional_child(node, ASSERTION, "NameID", R, "saml:NameID")?.ok_or(
            Error::MissingElement {
                parent: R,
                child: "saml:NameID",
            },
        )?;
        Ok(Self {
            id: h.id.to_owned(),
            issue_instant: h.issue_instant,
            destination: h.destination.map(str::to_owned),
            issuer: h.issuer.map(std::borrow::Cow::into_owned),
            name_id: parse_name_id(name_id)?,
            session_indexes: read::children(node, PROTOCOL, "SessionIndex")
                .map(|s| read::text_only(s, "samlp:SessionIndex"))
                .collect::<Result<Vec<_>>>()?,
            not_on_or_after: read::datetime_attr(node, "NotOnOrAfter")?,
            reason: read::optional_attr(node, "Reason"),
        })
    }
}

/// A LogoutResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    /// Its ID.
    pub id: String,
    /// The LogoutRequest it answers.
    pub in_response_to: Option<String>,
    /// When it was issued.
    pub issue_instant: OffsetDateTime,
    /// Where it is sent.
    pub destination: Option<String>,
    /// The sender's entity ID.
    pub issuer: Option<String>,
    /// The outcome.
    pub status: Status,
}

impl LogoutResponse {
    /// Serializes the response.
    pub fn to_xml(&self) -> Result<String> {
        let mut w = XmlWriter::new();
        w.start("samlp:LogoutResponse")
            .attr("xmlns:samlp", PROTOCOL)
            .attr("xmlns:saml", ASSERTION)
            .attr("ID", &self.id)
            .attr("Version", "2.0")
            .attr("IssueInstant", &format_datetime(self.issue_instant))
            .opt_attr("Destination", self.destination.as_deref())
            .opt_attr("InResponseTo", self.in_response_to.as_deref());
        if let Some(i) = &self.issuer {
            write_issuer(&mut w, i);
        }
        write_status(&mut w, &self.status);
        w.end();
        w.finish()
    }

    /// Parses a response from text (through the hardened reader).
    pub fn parse(xml: &str) -> Result<Self> {
        let doc = parse(xml, &Limits::default())?;
        Self::from_node(doc.root_element())
    }

    /// Reads a response whose enveloped signature was verified.
    pub fn from_verified(verified: &Verified<'_, '_>) -> Result<Self> {
        Self::from_node(verified.element())
    }

    /// Reads a response from an element (authenticated only if the node is verified).
    pub fn from_node(node: Node<'_, '_>) -> Result<Self> {
        const R: &str = "samlp:LogoutResponse";
        read::expect(node, PROTOCOL, "LogoutResponse", R)?;
        let h = parse_header(node, R)?;
        Ok(Self {
            id: h.id.to_owned(),
            in_response_to: read::optional_attr(node, "InResponseTo"),
            issue_instant: h.issue_instant,
            destination: h.destination.map(str::to_owned),
            issuer: h.issuer.map(std::borrow::Cow::into_owned),
            status: parse_status(node, R)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::name_id_format;
    use crate::status::code;
    use time::macros::datetime;

    #[test]
    fn request_round_trip() {
        let r = LogoutRequest {
            id: "_l1".into(),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            destination: Some("https://idp.example.org/slo".into()),
            issuer: Some("https://sp.example.com".into()),
            name_id: NameId {
                value: "t-123".into(),
                format: Some(name_id_format::TRANSIENT.into()),
                name_qualifier: Some("https://idp.example.org".into()),
                sp_name_qualifier: Some("https://sp.example.com".into()),
            },
            session_indexes: vec!["_s1".into(), "_s2".into()],
            not_on_or_after: Some(datetime!(2026-11-28 14:05:00 UTC)),
            reason: Some(reason::USER.into()),
        };
        assert_eq!(LogoutRequest::parse(&r.to_xml().unwrap()).unwrap(), r);
    }

    #[test]
    fn request_needs_name_id() {
        let xml = format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{PROTOCOL}" ID="_l" Version="2.0" IssueInstant="2026-11-28T14:00:00Z"/>"#
        );
        assert!(matches!(
            LogoutRequest::parse(&xml),
            Err(Error::MissingElement {
                child: "saml:NameID",
                ..
            })
        ));
    }

    #[test]
    fn response_round_trip() {
        let r = LogoutResponse {
            id: "_lr1".into(),
            in_response_to: Some("_l1".into()),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            destination: Some("https://sp.example.com/slo".into()),
            issuer: Some("https://idp.example.org".into()),
            status: Status::failure(code::RESPONDER, Some(code::PARTIAL_LOGOUT), None),
        };
        assert_eq!(LogoutResponse::parse(&r.to_xml().unwrap()).unwrap(), r);
    }
}
