//! The SAML Assertion: its model, how we write it, and how we read it.
//!
//! Reading is crate-private on purpose: an assertion's content (NameID, attributes) is
//! only ever read from an element whose signature was verified, through the profile or
//! the `Verified` handle. There is no public way to read an assertion from raw text.

use std::borrow::Cow;

use latchkey_xmlsec::crypto::{Certificate, SigningKey};
use latchkey_xmlsec::dsig;
use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ns::{ASSERTION, DSIG};
use crate::read;
use crate::time::format_datetime;
use crate::xml_writer::XmlWriter;

/// Well-known NameID formats (SAML core §8.3).
pub mod name_id_format {
    /// Opaque, stable, pairwise identifier.
    pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    /// One-time identifier for this session only.
    pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
    /// An email address.
    pub const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
    /// Interpretation left to the parties.
    pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
    /// An entity ID (the format of every Issuer).
    pub const ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
}

/// Attribute name formats (SAML core §8.2).
pub mod attrname_format {
    /// Names are URIs, e.g. `urn:oid:0.9.2342.19200300.100.1.3` for mail.
    pub const URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
    /// Plain names.
    pub const BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
    /// Interpretation left to the parties.
    pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified";
}

/// Authentication context classes commonly sent (SAML authn-context §3.4).
pub mod authn_context {
    /// Password over a protected transport (HTTPS).
    pub const PASSWORD_PROTECTED_TRANSPORT: &str =
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
    /// Password.
    pub const PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
    /// Unspecified.
    pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified";
    /// Two factors, one of them a device the user holds (SAML authn-context §3.4.17); what
    /// some SPs ask for where REFEDS is not known.
    pub const MOBILE_TWO_FACTOR_CONTRACT: &str =
        "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract";
    /// The REFEDS multi-factor profile: two distinct factors were used.
    pub const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
}

/// The bearer subject confirmation method, the only one the Web SSO profile uses.
pub const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

/// A NameID: who the subject is, in the IdP's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameId {
    /// The identifier itself, exactly as sent (no whitespace trimming).
    pub value: String,
    /// Its format URI (see [`name_id_format`]); absent means unspecified.
    pub format: Option<String>,
    /// The IdP namespace the value belongs to.
    pub name_qualifier: Option<String>,
    /// The SP namespace the value belongs to (for pairwise identifiers).
    pub sp_name_qualifier: Option<String>,
}

impl NameId {
    /// A NameID with a format and no qualifiers.
    pub fn new(value: impl Into<String>, format: &str) -> Self {
        Self {
            value: value.into(),
            format: Some(format.to_owned()),
            name_qualifier: None,
            sp_name_qualifier: None,
        }
    }
}

/// One SubjectConfirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectConfirmation {
    /// The method URI ([`BEARER`] in Web SSO).
    pub method: String,
    /// Its SubjectConfirmationData, if any.
    pub data: Option<SubjectConfirmationData>,
}

/// The constraints on a subject confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectConfirmationData {
    /// Must be absent for bearer confirmation in Web SSO.
    pub not_before: Option<OffsetDateTime>,
    /// When the assertion may no longer be delivered.
    pub not_on_or_after: Option<OffsetDateTime>,
    /// The ACS URL the assertion is for.
    pub recipient: Option<String>,
    /// The AuthnRequest this answers.
    pub in_response_to: Option<String>,
    /// The client address the IdP saw.
    pub address: Option<String>,
}

/// The Subject of an assertion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// The NameID; `None` if the subject uses a BaseID or an EncryptedID.
    pub name_id: Option<NameId>,
    /// Its confirmations.
    pub confirmations: Vec<SubjectConfirmation>,
}

/// The Conditions of an assertion.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    /// Not valid before this instant.
    pub not_before: Option<OffsetDateTime>,
    /// Not valid at or after this instant.
    pub not_on_or_after: Option<OffsetDateTime>,
    /// Each AudienceRestriction's audiences. The assertion is for us only if every
    /// restriction names us.
    pub audience_restrictions: Vec<Vec<String>>,
    /// OneTimeUse: the SP must not cache or reuse it.
    pub one_time_use: bool,
}

/// An AuthnStatement: how and when the subject authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnStatement {
    /// When the subject authenticated at the IdP.
    pub authn_instant: OffsetDateTime,
    /// The IdP session, for single logout.
    pub session_index: Option<String>,
    /// When the IdP wants the SP session to end.
    pub session_not_on_or_after: Option<OffsetDateTime>,
    /// The authentication context class (see [`authn_context`]).
    pub authn_context_class_ref: Option<String>,
}

/// One attribute with all its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name.
    pub name: String,
    /// How to read the name (see [`attrname_format`]).
    pub name_format: Option<String>,
    /// A human-friendly name.
    pub friendly_name: Option<String>,
    /// The values, as text, in order.
    pub values: Vec<String>,
}

/// A SAML 2.0 Assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Its ID (the signature reference target).
    pub id: String,
    /// When it was issued.
    pub issue_instant: OffsetDateTime,
    /// The issuing IdP's entity ID.
    pub issuer: String,
    /// The subject.
    pub subject: Option<Subject>,
    /// The conditions.
    pub conditions: Option<Conditions>,
    /// Authentication statements.
    pub authn_statements: Vec<AuthnStatement>,
    /// Attributes from all AttributeStatements, in order.
    pub attributes: Vec<Attribute>,
}

/// The text of one `saml:Assertion` element that this crate wrote (and signed, when asked
/// to): it can only be made by [`Assertion::write`] and [`Assertion::to_signed_xml`], so a
/// Response can embed it as it is, without the parse that checks text from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenAssertion(String);

impl WrittenAssertion {
    /// The element's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Assertion {
    /// Serializes the assertion as a standalone element that declares its own namespace,
    /// in its own exclusive canonical form, which is therefore the same wherever it is
    /// placed and can be digested as written.
    ///
    /// Attribute values are written without `xsi:type`: a type prefix used only inside
    /// an attribute value is not "visibly used" and would be dropped by exclusive
    /// canonicalization, leaving a signed form that no longer declares it.
    pub fn to_xml(&self) -> Result<String> {
        Ok(self.to_canonical_xml()?.0)
    }

    /// [`Assertion::to_xml`], and the offset just after its Issuer, where an enveloped
    /// Signature goes.
    fn to_canonical_xml(&self) -> Result<(String, usize)> {
        let mut w = XmlWriter::canonical();
        let after_issuer = write_assertion(&mut w, self, true);
        Ok((w.finish()?, after_issuer))
    }

    /// The assertion as [`Assertion::to_xml`] writes it, unsigned, marked as written here
    /// so that [`crate::response::Response::to_xml_with`] carries it without parsing it.
    pub fn write(&self) -> Result<WrittenAssertion> {
        Ok(WrittenAssertion(self.to_xml()?))
    }

    /// The assertion with an enveloped signature right after its Issuer (exclusive C14N,
    /// the key's algorithm, `certificate` in KeyInfo). It is written in its canonical form
    /// and signed as written, never parsed again: for an ECDSA key the parse and
    /// canonicalization were most of the cost of issuing.
    pub fn to_signed_xml(
        &self,
        key: &SigningKey,
        certificate: Option<&Certificate>,
    ) -> Result<WrittenAssertion> {
        let (xml, after_issuer) = self.to_canonical_xml()?;
        Ok(WrittenAssertion(dsig::sign_canonical(
            &xml,
            &self.id,
            after_issuer,
            key,
            certificate,
            None,
        )?))
    }
}

pub(crate) fn write_name_id(w: &mut XmlWriter, n: &NameId) {
    w.start("saml:NameID")
        .opt_attr("Format", n.format.as_deref())
        .opt_attr("NameQualifier", n.name_qualifier.as_deref())
        .opt_attr("SPNameQualifier", n.sp_name_qualifier.as_deref())
        .text(&n.value)
        .end();
}

pub(crate) fn write_issuer(w: &mut XmlWriter, issuer: &str) {
    w.text_element("saml:Issuer", issuer);
}

fn opt_time(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(format_datetime)
}

/// Writes the assertion; returns the offset just after its Issuer.
pub(crate) fn write_assertion(w: &mut XmlWriter, a: &Assertion, declare_ns: bool) -> usize {
    w.start("saml:Assertion");
    if declare_ns {
        w.attr("xmlns:saml", ASSERTION);
    }
    w.attr("ID", &a.id)
        .attr("Version", "2.0")
        .attr("IssueInstant", &format_datetime(a.issue_instant));
    write_issuer(w, &a.issuer);
    let after_issuer = w.len();
    if let Some(s) = &a.subject {
        w.start("saml:Subject");
        if let Some(n) = &s.name_id {
            write_name_id(w, n);
        }
        for c in &s.confirmations {
            w.start("saml:SubjectConfirmation")
                .attr("Method", &c.method);
            if let Some(d) = &c.data {
                w.start("saml:SubjectConfirmationData")
                    .opt_attr("NotBefore", opt_time(d.not_before).as_deref())
                    .opt_attr("NotOnOrAfter", opt_time(d.not_on_or_after).as_deref())
                    .opt_attr("Recipient", d.recipient.as_deref())
                    .opt_attr("InResponseTo", d.in_response_to.as_deref())
                    .opt_attr("Address", d.address.as_deref())
                    .end();
            }
            w.end();
        }
        w.end();
    }
    if let Some(c) = &a.conditions {
        w.start("saml:Conditions")
            .opt_attr("NotBefore", opt_time(c.not_before).as_deref())
            .opt_attr("NotOnOrAfter", opt_time(c.not_on_or_after).as_deref());
        for r in &c.audience_restrictions {
            w.start("saml:AudienceRestriction");
            for aud in r {
                w.text_element("saml:Audience", aud);
            }
            w.end();
        }
        if c.one_time_use {
            w.start("saml:OneTimeUse").end();
        }
        w.end();
    }
    for s in &a.authn_statements {
        w.start("saml:AuthnStatement")
            .attr("AuthnInstant", &format_datetime(s.authn_instant))
            .opt_attr("SessionIndex", s.session_index.as_deref())
            .opt_attr(
                "SessionNotOnOrAfter",
                opt_time(s.session_not_on_or_after).as_deref(),
            );
        w.start("saml:AuthnContext");
        if let Some(c) = &s.authn_context_class_ref {
            w.text_element("saml:AuthnContextClassRef", c);
        }
        w.end().end();
    }
    if !a.attributes.is_empty() {
        w.start("saml:AttributeStatement");
        for at in &a.attributes {
            w.start("saml:Attribute")
                .attr("Name", &at.name)
                .opt_attr("NameFormat", at.name_format.as_deref())
                .opt_attr("FriendlyName", at.friendly_name.as_deref());
            for v in &at.values {
                w.text_element("saml:AttributeValue", v);
            }
            w.end();
        }
        w.end();
    }
    w.end();
    after_issuer
}

/// Reads a NameID element (also used for LogoutRequest).
pub(crate) fn parse_name_id(node: Node<'_, '_>) -> Result<NameId> {
    Ok(NameId {
        value: read::text_only(node, "saml:NameID")?,
        format: read::optional_attr(node, "Format"),
        name_qualifier: read::optional_attr(node, "NameQualifier"),
        sp_name_qualifier: read::optional_attr(node, "SPNameQualifier"),
    })
}

/// Reads an Issuer element's value, trimmed (it is an entity ID, an `xs:anyURI`).
pub(crate) fn parse_issuer<'a>(
    parent: Node<'a, '_>,
    parent_name: &'static str,
) -> Result<Option<Cow<'a, str>>> {
    read::optional_child(parent, ASSERTION, "Issuer", parent_name, "saml:Issuer")?
        .map(|n| read::uri_text_ref(n, "saml:Issuer"))
        .transpose()
}

/// Reads an Assertion from `node`. Crate-private: callers reach it only with a node that
/// a signature covers.
pub(crate) fn parse_assertion(node: Node<'_, '_>) -> Result<Assertion> {
    Ok(read_assertion(node)?.into_owned())
}

/// An assertion as read, before it is copied into the public model: what only the Web SSO
/// profile's rules read (the ID, the Issuer, the subject confirmations, the audiences)
/// is borrowed from the document, so a validation does not copy, and drop, values it
/// compares once. [`AssertionRef::into_owned`] makes the [`Assertion`] of it.
#[derive(Debug)]
pub(crate) struct AssertionRef<'a> {
    pub(crate) id: &'a str,
    pub(crate) issue_instant: OffsetDateTime,
    pub(crate) issuer: Cow<'a, str>,
    pub(crate) subject: Option<SubjectRef<'a>>,
    pub(crate) conditions: Option<ConditionsRef<'a>>,
    pub(crate) authn_statements: Vec<AuthnStatement>,
    pub(crate) attributes: Vec<Attribute>,
}

/// [`Subject`], as read.
#[derive(Debug)]
pub(crate) struct SubjectRef<'a> {
    pub(crate) name_id: Option<NameId>,
    pub(crate) confirmations: Vec<SubjectConfirmationRef<'a>>,
}

/// [`SubjectConfirmation`], as read; the method is trimmed.
#[derive(Debug)]
pub(crate) struct SubjectConfirmationRef<'a> {
    pub(crate) method: &'a str,
    pub(crate) data: Option<SubjectConfirmationDataRef<'a>>,
}

/// [`SubjectConfirmationData`], as read; the Recipient is trimmed.
#[derive(Debug)]
pub(crate) struct SubjectConfirmationDataRef<'a> {
    pub(crate) not_before: Option<OffsetDateTime>,
    pub(crate) not_on_or_after: Option<OffsetDateTime>,
    pub(crate) recipient: Option<&'a str>,
    pub(crate) in_response_to: Option<&'a str>,
    pub(crate) address: Option<&'a str>,
}

/// [`Conditions`], as read; each audience is trimmed.
#[derive(Debug)]
pub(crate) struct ConditionsRef<'a> {
    pub(crate) not_before: Option<OffsetDateTime>,
    pub(crate) not_on_or_after: Option<OffsetDateTime>,
    pub(crate) audience_restrictions: Vec<Vec<Cow<'a, str>>>,
    pub(crate) one_time_use: bool,
}

impl AssertionRef<'_> {
    /// The public model: every value copied out of the document.
    pub(crate) fn into_owned(self) -> Assertion {
        Assertion {
            id: self.id.to_owned(),
            issue_instant: self.issue_instant,
            issuer: self.issuer.into_owned(),
            subject: self.subject.map(|s| Subject {
                name_id: s.name_id,
                confirmations: s
                    .confirmations
                    .into_iter()
                    .map(|c| SubjectConfirmation {
                        method: c.method.to_owned(),
                        data: c.data.map(|d| SubjectConfirmationData {
                            not_before: d.not_before,
                            not_on_or_after: d.not_on_or_after,
                            recipient: d.recipient.map(str::to_owned),
                            in_response_to: d.in_response_to.map(str::to_owned),
                            address: d.address.map(str::to_owned),
                        }),
                    })
                    .collect(),
            }),
            conditions: self.conditions.map(|c| Conditions {
                not_before: c.not_before,
                not_on_or_after: c.not_on_or_after,
                audience_restrictions: c
                    .audience_restrictions
                    .into_iter()
                    .map(|r| r.into_iter().map(Cow::into_owned).collect())
                    .collect(),
                one_time_use: c.one_time_use,
            }),
            authn_statements: self.authn_statements,
            attributes: self.attributes,
        }
    }
}

/// Reads an Assertion from `node`, borrowing what [`AssertionRef`] borrows. Crate-private:
/// callers reach it only with a node that a signature covers.
///
/// The children are sorted by name in one walk, then read in a fixed order (Issuer,
/// Signature, Subject, Conditions, AuthnStatements, AttributeStatements), so which error
/// a malformed assertion gets does not depend on where its children stand.
pub(crate) fn read_assertion<'a>(node: Node<'a, '_>) -> Result<AssertionRef<'a>> {
    const A: &str = "saml:Assertion";
    read::expect(node, ASSERTION, "Assertion", A)?;
    let version = read::required_attr(node, A, "Version")?;
    if version != "2.0" {
        return Err(read::unsupported_version(version));
    }
    let id = read::required_attr(node, A, "ID")?;
    let issue_instant = read::required_datetime(node, A, "IssueInstant")?;
    let (mut issuer, mut signature, mut subject, mut conditions) = (
        read::OneChild::NONE,
        read::OneChild::NONE,
        read::OneChild::NONE,
        read::OneChild::NONE,
    );
    let (mut first_authn_statement, mut first_attribute_statement) = (None, None);
    for child in node.children().filter(Node::is_element) {
        let name = child.tag_name();
        match (name.namespace(), name.name()) {
            (Some(ASSERTION), "Issuer") => issuer.put(child),
            (Some(ASSERTION), "Subject") => subject.put(child),
            (Some(ASSERTION), "Conditions") => conditions.put(child),
            (Some(ASSERTION), "AuthnStatement") => {
                first_authn_statement.get_or_insert(child);
            }
            (Some(ASSERTION), "AttributeStatement") => {
                first_attribute_statement.get_or_insert(child);
            }
            (Some(DSIG), "Signature") => signature.put(child),
            _ => {}
        }
    }
    let issuer = issuer
        .get(A, "saml:Issuer")?
        .map(|n| read::uri_text_ref(n, "saml:Issuer"))
        .transpose()?
        .ok_or_else(|| read::missing(A, "saml:Issuer"))?;
    signature.get(A, "ds:Signature")?;
    let subject = subject
        .get(A, "saml:Subject")?
        .map(parse_subject)
        .transpose()?;
    let conditions = conditions
        .get(A, "saml:Conditions")?
        .map(parse_conditions)
        .transpose()?;
    // From the first of each kind on: the siblings before it are not of that kind. Plain
    // loops rather than `collect::<Result<Vec<_>>>()`: each such chain is its own
    // instantiation of the iterator machinery, code a validation runs once and fetches anew.
    // Sibling links are followed by hand for the same reason (`flat_map(next_siblings)`
    // instantiated the flattening iterator for these two loops).
    let mut authn_statements = Vec::new();
    let mut next = first_authn_statement;
    while let Some(n) = next {
        if read::is(n, ASSERTION, "AuthnStatement") {
            authn_statements.push(parse_authn_statement(n)?);
        }
        next = n.next_sibling();
    }
    let mut attributes = Vec::new();
    let mut next = first_attribute_statement;
    while let Some(st) = next {
        if read::is(st, ASSERTION, "AttributeStatement") {
            // An upper bound that is usually exact: one allocation for the list.
            attributes.reserve(st.children().filter(Node::is_element).count());
            for at in read::children(st, ASSERTION, "Attribute") {
                attributes.push(parse_attribute(at)?);
            }
        }
        next = st.next_sibling();
    }
    Ok(AssertionRef {
        id,
        issue_instant,
        issuer,
        subject,
        conditions,
        authn_statements,
        attributes,
    })
}

fn parse_subject<'a>(node: Node<'a, '_>) -> Result<SubjectRef<'a>> {
    const S: &str = "saml:Subject";
    let name_id = read::optional_child(node, ASSERTION, "NameID", S, "saml:NameID")?
        .map(parse_name_id)
        .transpose()?;
    let mut confirmations = Vec::new();
    for c in read::children(node, ASSERTION, "SubjectConfirmation") {
        const C: &str = "saml:SubjectConfirmation";
        let method = read::required_attr(c, C, "Method")?.trim();
        let data = match read::optional_child(
            c,
            ASSERTION,
            "SubjectConfirmationData",
            C,
            "saml:SubjectConfirmationData",
        )? {
            Some(d) => Some(SubjectConfirmationDataRef {
                not_before: read::datetime_attr(d, "NotBefore")?,
                not_on_or_after: read::datetime_attr(d, "NotOnOrAfter")?,
                recipient: d.attribute("Recipient").map(str::trim),
                in_response_to: d.attribute("InResponseTo"),
                address: d.attribute("Address"),
            }),
            None => None,
        };
        confirmations.push(SubjectConfirmationRef { method, data });
    }
    Ok(SubjectRef {
        name_id,
        confirmations,
    })
}

/// Conditions we understand. SAML core §2.5.1 makes an assertion with a condition the
/// relying party does not understand Indeterminate, which must not be accepted, so any
/// other child (a custom `saml:Condition`, another namespace) is refused here.
/// ProxyRestriction only limits what we may issue onward, and we issue nothing.
const KNOWN_CONDITIONS: [&str; 3] = ["AudienceRestriction", "OneTimeUse", "ProxyRestriction"];

fn parse_conditions<'a>(node: Node<'a, '_>) -> Result<ConditionsRef<'a>> {
    if let Some(unknown) = node.children().filter(|c| c.is_element()).find(|c| {
        c.tag_name().namespace() != Some(ASSERTION)
            || !KNOWN_CONDITIONS.contains(&c.tag_name().name())
    }) {
        return Err(Error::UnknownCondition(read::describe(unknown)));
    }
    let mut audience_restrictions = Vec::new();
    for r in read::children(node, ASSERTION, "AudienceRestriction") {
        let mut audiences = Vec::new();
        for a in read::children(r, ASSERTION, "Audience") {
            audiences.push(read::uri_text_ref(a, "saml:Audience")?);
        }
        audience_restrictions.push(audiences);
    }
    Ok(ConditionsRef {
        not_before: read::datetime_attr(node, "NotBefore")?,
        not_on_or_after: read::datetime_attr(node, "NotOnOrAfter")?,
        audience_restrictions,
        one_time_use: read::children(node, ASSERTION, "OneTimeUse")
            .next()
            .is_some(),
    })
}

fn parse_authn_statement(node: Node<'_, '_>) -> Result<AuthnStatement> {
    const S: &str = "saml:AuthnStatement";
    let authn_context_class_ref =
        match read::optional_child(node, ASSERTION, "AuthnContext", S, "saml:AuthnContext")? {
            Some(ctx) => read::optional_child(
                ctx,
                ASSERTION,
                "AuthnContextClassRef",
                "saml:AuthnContext",
                "saml:AuthnContextClassRef",
            )?
            .map(|c| read::uri_text(c, "saml:AuthnContextClassRef"))
            .transpose()?,
            None => None,
        };
    Ok(AuthnStatement {
        authn_instant: read::required_datetime(node, S, "AuthnInstant")?,
        session_index: read::optional_attr(node, "SessionIndex"),
        session_not_on_or_after: read::datetime_attr(node, "SessionNotOnOrAfter")?,
        authn_context_class_ref,
    })
}

fn parse_attribute(node: Node<'_, '_>) -> Result<Attribute> {
    let name = read::required_attr(node, "saml:Attribute", "Name")?.to_owned();
    let mut values = Vec::new();
    for v in read::children(node, ASSERTION, "AttributeValue") {
        values.push(read::deep_text(v));
    }
    Ok(Attribute {
        name,
        name_format: read::optional_attr(node, "NameFormat"),
        friendly_name: read::optional_attr(node, "FriendlyName"),
        values,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use latchkey_xmlsec::reader::{Limits, parse};
    use time::macros::datetime;

    /// A fully populated assertion, for round trips here and in other modules' tests.
    pub(crate) fn sample() -> Assertion {
        Assertion {
            id: "_a1".into(),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            issuer: "https://idp.example.org".into(),
            subject: Some(Subject {
                name_id: Some(NameId {
                    value: "alice & <bob>".into(),
                    format: Some(name_id_format::PERSISTENT.into()),
                    name_qualifier: Some("https://idp.example.org".into()),
                    sp_name_qualifier: Some("https://sp.example.com".into()),
                }),
                confirmations: vec![SubjectConfirmation {
                    method: BEARER.into(),
                    data: Some(SubjectConfirmationData {
                        not_before: None,
                        not_on_or_after: Some(datetime!(2026-11-28 14:05:00 UTC)),
                        recipient: Some("https://sp.example.com/acs?a=1&b=2".into()),
                        in_response_to: Some("_req1".into()),
                        address: None,
                    }),
                }],
            }),
            conditions: Some(Conditions {
                not_before: Some(datetime!(2026-11-28 13:59:00 UTC)),
                not_on_or_after: Some(datetime!(2026-11-28 14:05:00 UTC)),
                audience_restrictions: vec![vec!["https://sp.example.com".into()]],
                one_time_use: true,
            }),
            authn_statements: vec![AuthnStatement {
                authn_instant: datetime!(2026-11-28 13:58:00 UTC),
                session_index: Some("_s1".into()),
                session_not_on_or_after: Some(datetime!(2026-11-28 22:00:00 UTC)),
                authn_context_class_ref: Some(authn_context::PASSWORD_PROTECTED_TRANSPORT.into()),
            }],
            attributes: vec![
                Attribute {
                    name: "urn:oid:0.9.2342.19200300.100.1.3".into(),
                    name_format: Some(attrname_format::URI.into()),
                    friendly_name: Some("mail".into()),
                    values: vec!["alice@example.org".into()],
                },
                Attribute {
                    name: "groups".into(),
                    name_format: Some(attrname_format::BASIC.into()),
                    friendly_name: None,
                    values: vec![
                        "admins".into(),
                        "\"quoted\" & <tagged>".into(),
                        String::new(),
                    ],
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let a = sample();
        let xml = a.to_xml().unwrap();
        let doc = parse(&xml, &Limits::default()).unwrap();
        assert_eq!(parse_assertion(doc.root_element()).unwrap(), a);
    }

    #[test]
    fn name_id_formats_round_trip() {
        for f in [
            name_id_format::PERSISTENT,
            name_id_format::TRANSIENT,
            name_id_format::EMAIL,
            name_id_format::UNSPECIFIED,
        ] {
            let mut a = sample();
            if let Some(s) = a.subject.as_mut() {
                s.name_id = Some(NameId::new("x@y", f));
            }
            let xml = a.to_xml().unwrap();
            let doc = parse(&xml, &Limits::default()).unwrap();
            assert_eq!(parse_assertion(doc.root_element()).unwrap(), a);
        }
    }

    #[test]
    fn comment_in_name_id_does_not_truncate() {
        let xml = format!(
            r#"<saml:Assertion xmlns:saml="{ASSERTION}" ID="_a" Version="2.0" IssueInstant="2026-11-28T14:00:00Z"><saml:Issuer>i</saml:Issuer><saml:Subject><saml:NameID>user@example.com<!---->.evil.com</saml:NameID></saml:Subject></saml:Assertion>"#
        );
        let doc = parse(&xml, &Limits::default()).unwrap();
        let a = parse_assertion(doc.root_element()).unwrap();
        let name = a.subject.unwrap().name_id.unwrap().value;
        assert_eq!(name, "user@example.com.evil.com");
    }

    #[test]
    fn borrowed_values_are_trimmed_and_joined_as_owned_ones() {
        // What the reader borrows (one text node) and what it must copy (text split by a
        // comment) come out the same in the public model.
        let xml = format!(
            r#"<saml:Assertion xmlns:saml="{ASSERTION}" ID="_a" Version="2.0" IssueInstant="2026-11-28T14:00:00Z"><saml:Issuer> https://idp<!---->.example.org </saml:Issuer><saml:Subject><saml:SubjectConfirmation Method=" {BEARER} "><saml:SubjectConfirmationData Recipient=" https://sp.example.com/acs " InResponseTo=" _q " Address="10.0.0.1"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions><saml:AudienceRestriction><saml:Audience> https://sp<!---->.example.com </saml:Audience><saml:Audience> other </saml:Audience></saml:AudienceRestriction></saml:Conditions></saml:Assertion>"#
        );
        let doc = parse(&xml, &Limits::default()).unwrap();
        let a = parse_assertion(doc.root_element()).unwrap();
        assert_eq!(a.id, "_a");
        assert_eq!(a.issuer, "https://idp.example.org");
        let subject = a.subject.unwrap();
        assert_eq!(
            subject.confirmations,
            vec![SubjectConfirmation {
                method: BEARER.into(),
                data: Some(SubjectConfirmationData {
                    not_before: None,
                    not_on_or_after: None,
                    recipient: Some("https://sp.example.com/acs".into()),
                    in_response_to: Some(" _q ".into()),
                    address: Some("10.0.0.1".into()),
                }),
            }]
        );
        assert_eq!(
            a.conditions.unwrap().audience_restrictions,
            vec![vec![
                "https://sp.example.com".to_owned(),
                "other".to_owned()
            ]]
        );
    }

    #[test]
    fn refuses_duplicates_and_bad_version() {
        let base = |inner: &str, version: &str| {
            format!(
                r#"<saml:Assertion xmlns:saml="{ASSERTION}" ID="_a" Version="{version}" IssueInstant="2026-11-28T14:00:00Z">{inner}</saml:Assertion>"#
            )
        };
        let two_issuers = base(
            "<saml:Issuer>a</saml:Issuer><saml:Issuer>b</saml:Issuer>",
            "2.0",
        );
        let doc = parse(&two_issuers, &Limits::default()).unwrap();
        assert!(matches!(
            parse_assertion(doc.root_element()),
            Err(Error::DuplicateElement {
                child: "saml:Issuer",
                ..
            })
        ));
        let two_subjects = base(
            "<saml:Issuer>a</saml:Issuer><saml:Subject/><saml:Subject/>",
            "2.0",
        );
        let doc = parse(&two_subjects, &Limits::default()).unwrap();
        assert!(matches!(
            parse_assertion(doc.root_element()),
            Err(Error::DuplicateElement {
                child: "saml:Subject",
                ..
            })
        ));
        let v1 = base("<saml:Issuer>a</saml:Issuer>", "1.1");
        let doc = parse(&v1, &Limits::default()).unwrap();
        assert_eq!(
            parse_assertion(doc.root_element()),
            Err(Error::UnsupportedVersion("1.1".into()))
        );
        let nested = base("<saml:Issuer>a<b/></saml:Issuer>", "2.0");
        let doc = parse(&nested, &Limits::default()).unwrap();
        assert_eq!(
            parse_assertion(doc.root_element()),
            Err(Error::NotTextOnly("saml:Issuer"))
        );
    }

    #[test]
    fn self_contained_namespaces() {
        // The assertion's own text parses on its own: it declares every prefix it uses.
        let xml = sample().to_xml().unwrap();
        assert!(xml.starts_with(&format!("<saml:Assertion xmlns:saml=\"{ASSERTION}\"")));
        assert!(parse(&xml, &Limits::default()).is_ok());
    }
}
