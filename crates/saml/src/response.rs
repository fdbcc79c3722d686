//! The Response to an AuthnRequest (SAML core §3.3.3): its envelope and how we build one.
//!
//! The envelope (status, destination, InResponseTo) is read by the profile; the
//! assertions inside are handed on as nodes, never read here, because whether they may
//! be read depends on which signature covers them.

use latchkey_xmlsec::reader::{Limits, parse};
use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::assertion::write_issuer;
use crate::error::{Error, Result};
use crate::header::{Header, parse_header};
use crate::ns::{ASSERTION, PROTOCOL};
use crate::read;
use crate::status::{Status, StatusRef, read_status, write_status};
use crate::time::format_datetime;
use crate::xml_writer::XmlWriter;

/// A Response's envelope: everything but its assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Its ID.
    pub id: String,
    /// The AuthnRequest it answers; absent for IdP-initiated (unsolicited) login.
    pub in_response_to: Option<String>,
    /// When it was issued.
    pub issue_instant: OffsetDateTime,
    /// The ACS URL it is sent to.
    pub destination: Option<String>,
    /// The IdP's entity ID.
    pub issuer: Option<String>,
    /// The outcome.
    pub status: Status,
}

impl Response {
    /// Serializes the response around `assertion`, the text of one `saml:Assertion`
    /// element (usually already signed by [`latchkey_xmlsec`]), or around none for an
    /// error response.
    ///
    /// The assertion text is checked to be exactly one well-formed Assertion element
    /// and any XML declaration is dropped, so a signed assertion can be embedded as is:
    /// it declares its own namespaces, and its signature stays valid.
    pub fn to_xml(&self, assertion: Option<&str>) -> Result<String> {
        let embedded = assertion
            .map(|a| element_text(a, "Assertion", "saml:Assertion"))
            .transpose()?;
        self.write(embedded)
    }

    /// Serializes the response around `encrypted_assertion`, the text of one
    /// `saml:EncryptedAssertion` element (as [`crate::encryption::encrypt_assertion`]
    /// returns it), placed where the Assertion would be.
    ///
    /// Like [`Response::to_xml`], the text is checked to be exactly one such element, so
    /// nothing else can be smuggled into the envelope through it.
    pub fn to_xml_encrypted(&self, encrypted_assertion: &str) -> Result<String> {
        let embedded = element_text(
            encrypted_assertion,
            "EncryptedAssertion",
            "saml:EncryptedAssertion",
        )?;
        self.write(Some(embedded))
    }

    /// [`Response::to_xml`] around an assertion this crate has just written (and signed):
    /// it is one Assertion element by construction, so it is not parsed again. With a
    /// P-256 key that parse was a sixth of the time an IdP spends issuing a Response.
    pub fn to_xml_with(&self, assertion: &crate::assertion::WrittenAssertion) -> Result<String> {
        self.write(Some(assertion.as_str()))
    }

    fn write(&self, embedded: Option<&str>) -> Result<String> {
        let mut w = XmlWriter::new();
        w.start("samlp:Response")
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
        if let Some(a) = embedded {
            w.raw_element(a);
        }
        w.end();
        w.finish()
    }
}

/// The root element's own text within `xml`, after checking that it is the SAML
/// assertion-namespace element `local` (shown as `display` in errors).
fn element_text<'x>(xml: &'x str, local: &str, display: &'static str) -> Result<&'x str> {
    let doc = parse(xml, &Limits::default())?;
    let root = doc.root_element();
    read::expect(root, ASSERTION, local, display)?;
    let text = doc.input_text();
    text.get(root.range()).ok_or(Error::NotUtf8)
}

/// A Response as read: its envelope, borrowed from the document (the profile compares
/// most of it and drops it), and its assertion elements left unread.
#[derive(Debug)]
pub(crate) struct ResponseParts<'a, 'i> {
    pub(crate) header: Header<'a>,
    pub(crate) in_response_to: Option<&'a str>,
    pub(crate) status: StatusRef<'a>,
    /// `saml:Assertion` children, in order.
    pub(crate) assertions: Vec<Node<'a, 'i>>,
    /// `saml:EncryptedAssertion` children, in order.
    pub(crate) encrypted_assertions: Vec<Node<'a, 'i>>,
}

/// Reads a Response element. Only direct children are considered, so an assertion
/// hidden deeper (in Extensions, in a signature's Object) is never seen as one.
pub(crate) fn parse_response<'a, 'i>(node: Node<'a, 'i>) -> Result<ResponseParts<'a, 'i>> {
    const R: &str = "samlp:Response";
    read::expect(node, PROTOCOL, "Response", R)?;
    let h = parse_header(node, R)?;
    let status = read_status(node, R)?;
    // One walk for both kinds, in plain loops: fewer copies of the iterator machinery.
    let (mut assertions, mut encrypted_assertions) = (Vec::new(), Vec::new());
    for c in node.children() {
        if read::is(c, ASSERTION, "Assertion") {
            assertions.push(c);
        } else if read::is(c, ASSERTION, "EncryptedAssertion") {
            encrypted_assertions.push(c);
        }
    }
    Ok(ResponseParts {
        header: h,
        in_response_to: node.attribute("InResponseTo"),
        status,
        assertions,
        encrypted_assertions,
    })
}

#[cfg(test)]
impl ResponseParts<'_, '_> {
    /// The envelope as the public model holds it.
    fn response(self) -> Response {
        Response {
            id: self.header.id.to_owned(),
            in_response_to: self.in_response_to.map(str::to_owned),
            issue_instant: self.header.issue_instant,
            destination: self.header.destination.map(str::to_owned),
            issuer: self.header.issuer.map(std::borrow::Cow::into_owned),
            status: self.status.into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::{parse_assertion, tests::sample};
    use crate::status::code;
    use time::macros::datetime;

    fn envelope(status: Status) -> Response {
        Response {
            id: "_resp1".into(),
            in_response_to: Some("_req1".into()),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            destination: Some("https://sp.example.com/acs".into()),
            issuer: Some("https://idp.example.org".into()),
            status,
        }
    }

    #[test]
    fn round_trip_with_assertion() {
        let a = sample();
        let axml = format!("<?xml version=\"1.0\"?>\n{}", a.to_xml().unwrap());
        let r = envelope(Status::success());
        let xml = r.to_xml(Some(&axml)).unwrap();
        assert!(!xml.contains("<?xml"));
        let doc = parse(&xml, &Limits::default()).unwrap();
        let parts = parse_response(doc.root_element()).unwrap();
        assert_eq!(parts.assertions.len(), 1);
        assert_eq!(parse_assertion(parts.assertions[0]).unwrap(), a);
        assert_eq!(parts.response(), r);
    }

    #[test]
    fn round_trip_two_level_status() {
        let r = envelope(Status::failure(
            code::RESPONDER,
            Some(code::AUTHN_FAILED),
            Some("bad password <3"),
        ));
        let xml = r.to_xml(None).unwrap();
        let doc = parse(&xml, &Limits::default()).unwrap();
        let parts = parse_response(doc.root_element()).unwrap();
        assert!(!parts.status.is_success());
        assert!(parts.assertions.is_empty());
        assert_eq!(parts.response(), r);
    }

    #[test]
    fn refuses_non_assertion_to_embed() {
        let r = envelope(Status::success());
        assert!(matches!(
            r.to_xml(Some("<x/>")),
            Err(Error::UnexpectedElement { .. })
        ));
        assert!(r.to_xml(Some("<saml:Assertion")).is_err());
    }

    #[test]
    fn encrypted_assertion_is_embedded_and_kept_apart() {
        let r = envelope(Status::success());
        let encrypted = format!(
            r#"<?xml version="1.0"?><saml:EncryptedAssertion xmlns:saml="{ASSERTION}"><x:EncryptedData xmlns:x="http://www.w3.org/2001/04/xmlenc#"/></saml:EncryptedAssertion>"#
        );
        let xml = r.to_xml_encrypted(&encrypted).unwrap();
        assert!(!xml.contains("<?xml"));
        let doc = parse(&xml, &Limits::default()).unwrap();
        let parts = parse_response(doc.root_element()).unwrap();
        assert!(parts.assertions.is_empty());
        assert_eq!(parts.encrypted_assertions.len(), 1);
        assert_eq!(
            parts.encrypted_assertions[0]
                .first_element_child()
                .unwrap()
                .tag_name()
                .name(),
            "EncryptedData"
        );
        assert_eq!(parts.response(), r);
        // Each method embeds only its own kind of element.
        let clear = sample().to_xml().unwrap();
        assert!(matches!(
            r.to_xml_encrypted(&clear),
            Err(Error::UnexpectedElement { .. })
        ));
        assert!(matches!(
            r.to_xml(Some(&encrypted)),
            Err(Error::UnexpectedElement { .. })
        ));
    }

    #[test]
    fn envelope_values_are_trimmed_and_joined_as_before() {
        // Borrowed where the document holds one text node, copied where a comment splits
        // it: the values are the same either way.
        let xml = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="_r" Version="2.0" IssueInstant="2026-11-28T14:00:00Z" Destination=" https://sp.example.com/acs " InResponseTo=" _q "><saml:Issuer> https://idp<!---->.example.org </saml:Issuer><samlp:Status><samlp:StatusCode Value=" {} "><samlp:StatusCode Value=" {} "/></samlp:StatusCode><samlp:StatusMessage>a<!---->b</samlp:StatusMessage></samlp:Status></samlp:Response>"#,
            code::RESPONDER,
            code::AUTHN_FAILED,
        );
        let doc = parse(&xml, &Limits::default()).unwrap();
        let parts = parse_response(doc.root_element()).unwrap();
        assert!(!parts.status.is_success());
        let r = parts.response();
        assert_eq!(r.issuer.as_deref(), Some("https://idp.example.org"));
        assert_eq!(r.destination.as_deref(), Some("https://sp.example.com/acs"));
        assert_eq!(r.in_response_to.as_deref(), Some(" _q "));
        assert_eq!(
            r.status,
            Status::failure(code::RESPONDER, Some(code::AUTHN_FAILED), Some("ab"))
        );
    }

    #[test]
    fn nested_assertions_are_not_counted() {
        let xml = format!(
            r#"<samlp:Response xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="_r" Version="2.0" IssueInstant="2026-11-28T14:00:00Z"><samlp:Status><samlp:StatusCode Value="{}"/></samlp:Status><samlp:Extensions><saml:Assertion/></samlp:Extensions></samlp:Response>"#,
            code::SUCCESS
        );
        let doc = parse(&xml, &Limits::default()).unwrap();
        assert!(
            parse_response(doc.root_element())
                .unwrap()
                .assertions
                .is_empty()
        );
    }
}
