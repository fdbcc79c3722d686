//! AuthnRequest: the SP asks the IdP to authenticate a user (SAML core §3.4.1).
//!
//! Requests are often unsigned, so reading one from a node is public: nothing in it is
//! trusted until the IdP checks the issuer and the ACS URL against the SP's metadata.

use latchkey_xmlsec::dsig::Verified;
use latchkey_xmlsec::reader::{Limits, parse};
use latchkey_xmlsec::tree::Node;
use time::OffsetDateTime;

use crate::assertion::{NameId, write_issuer};
use crate::error::{Error, Result};
use crate::header::parse_header;
use crate::ns::{ASSERTION, PROTOCOL};
use crate::read;
use crate::time::format_datetime;
use crate::xml_writer::XmlWriter;

/// Protocol binding URIs (SAML bindings §3).
pub mod binding_uri {
    /// HTTP-Redirect.
    pub const HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
    /// HTTP-POST.
    pub const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
    /// HTTP-Artifact.
    pub const HTTP_ARTIFACT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact";
    /// SOAP.
    pub const SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";
}

/// What kind of NameID the SP wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameIdPolicy {
    /// The wanted format.
    pub format: Option<String>,
    /// The namespace for pairwise identifiers.
    pub sp_name_qualifier: Option<String>,
    /// Whether the IdP may create a new identifier for this SP.
    pub allow_create: Option<bool>,
}

/// How the IdP should compare the requested authentication contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Comparison {
    /// One of the listed classes exactly (the default).
    #[default]
    Exact,
    /// At least as strong as one of them.
    Minimum,
    /// At most as strong as one of them.
    Maximum,
    /// Stronger than any of them.
    Better,
}

impl Comparison {
    /// The attribute value (`exact`, `minimum`, `maximum`, `better`).
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Exact => "exact",
            Comparison::Minimum => "minimum",
            Comparison::Maximum => "maximum",
            Comparison::Better => "better",
        }
    }
}

impl std::str::FromStr for Comparison {
    type Err = ();

    /// The attribute value, as [`Comparison::as_str`] writes it.
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        match s {
            "exact" => Ok(Comparison::Exact),
            "minimum" => Ok(Comparison::Minimum),
            "maximum" => Ok(Comparison::Maximum),
            "better" => Ok(Comparison::Better),
            _ => Err(()),
        }
    }
}

/// The authentication contexts the SP asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedAuthnContext {
    /// How to compare.
    pub comparison: Comparison,
    /// AuthnContextClassRef URIs, in order of preference.
    pub class_refs: Vec<String>,
}

/// A SAML AuthnRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    /// Its ID, echoed back as InResponseTo.
    pub id: String,
    /// When it was issued.
    pub issue_instant: OffsetDateTime,
    /// The IdP SSO URL it is sent to.
    pub destination: Option<String>,
    /// The SP's entity ID.
    pub issuer: Option<String>,
    /// Where the response should go (mutually exclusive with the index).
    pub assertion_consumer_service_url: Option<String>,
    /// The index of the ACS in the SP's metadata.
    pub assertion_consumer_service_index: Option<u16>,
    /// The binding the response should use.
    pub protocol_binding: Option<String>,
    /// Re-authenticate even with a session.
    pub force_authn: bool,
    /// Do not interact with the user.
    pub is_passive: bool,
    /// The wanted NameID.
    pub name_id_policy: Option<NameIdPolicy>,
    /// `saml:Subject`: the principal the SP asks to be authenticated (core §3.4.1). The
    /// IdP must assert exactly that subject or answer an error, never another.
    pub subject: Option<RequestedSubject>,
    /// The wanted authentication strength.
    pub requested_authn_context: Option<RequestedAuthnContext>,
    /// A human-readable SP name.
    pub provider_name: Option<String>,
}

/// The subject an AuthnRequest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedSubject {
    /// By NameID (value, format, qualifiers).
    NameId(NameId),
    /// By an identifier this implementation does not read (BaseID, EncryptedID) or by
    /// confirmation only: the IdP cannot tell whom it names, so it must not answer with
    /// an assertion.
    Other,
}

impl AuthnRequest {
    /// A request from `issuer` to `destination` with a fresh ID.
    pub fn new(issuer: &str, destination: &str, now: OffsetDateTime) -> Result<Self> {
        Ok(Self {
            id: crate::ids::new_id()?,
            issue_instant: now,
            destination: Some(destination.to_owned()),
            issuer: Some(issuer.to_owned()),
            assertion_consumer_service_url: None,
            assertion_consumer_service_index: None,
            protocol_binding: None,
            force_authn: false,
            is_passive: false,
            name_id_policy: None,
            subject: None,
            requested_authn_context: None,
            provider_name: None,
        })
    }

    /// Serializes the request (no XML declaration).
    pub fn to_xml(&self) -> Result<String> {
        let mut w = XmlWriter::new();
        w.start("samlp:AuthnRequest")
            .attr("xmlns:samlp", PROTOCOL)
            .attr("xmlns:saml", ASSERTION)
            .attr("ID", &self.id)
            .attr("Version", "2.0")
            .attr("IssueInstant", &format_datetime(self.issue_instant))
            .opt_attr("Destination", self.destination.as_deref())
            .opt_attr("ProviderName", self.provider_name.as_deref());
        if self.force_authn {
            w.attr("ForceAuthn", "true");
        }
        if self.is_passive {
            w.attr("IsPassive", "true");
        }
        w.opt_attr("ProtocolBinding", self.protocol_binding.as_deref())
            .opt_attr(
                "AssertionConsumerServiceURL",
                self.assertion_consumer_service_url.as_deref(),
            )
            .opt_attr(
                "AssertionConsumerServiceIndex",
                self.assertion_consumer_service_index
                    .map(|i| i.to_string())
                    .as_deref(),
            );
        if let Some(i) = &self.issuer {
            write_issuer(&mut w, i);
        }
        if let Some(RequestedSubject::NameId(n)) = &self.subject {
            w.start("saml:Subject");
            crate::assertion::write_name_id(&mut w, n);
            w.end();
        }
        if let Some(p) = &self.name_id_policy {
            w.start("samlp:NameIDPolicy")
                .opt_attr("Format", p.format.as_deref())
                .opt_attr("SPNameQualifier", p.sp_name_qualifier.as_deref())
                .opt_attr("AllowCreate", p.allow_create.map(bool_str))
                .end();
        }
        if let Some(r) = &self.requested_authn_context {
            w.start("samlp:RequestedAuthnContext")
                .attr("Comparison", r.comparison.as_str());
            for c in &r.class_refs {
                w.text_element("saml:AuthnContextClassRef", c);
            }
            w.end();
        }
        w.end();
        w.finish()
    }

    /// Parses a request from text (through the hardened reader).
    pub fn parse(xml: &str) -> Result<Self> {
        let doc = parse(xml, &Limits::default())?;
        Self::from_node(doc.root_element())
    }

    /// Reads a request whose enveloped signature (HTTP-POST binding) was verified.
    pub fn from_verified(verified: &Verified<'_, '_>) -> Result<Self> {
        Self::from_node(verified.element())
    }

    /// Reads a request from an element. Nothing in it is authenticated unless the node
    /// came from a verified signature; see [`AuthnRequest::from_verified`].
    pub fn from_node(node: Node<'_, '_>) -> Result<Self> {
        const R: &str = "samlp:AuthnRequest";
        read::expect(node, PROTOCOL, "AuthnRequest", R)?;
        let h = parse_header(node, R)?;
        let assertion_consumer_service_url =
            read::optional_attr(node, "AssertionConsumerServiceURL").map(|u| u.trim().to_owned());
        let assertion_consumer_service_index =
            read::u16_attr(node, R, "AssertionConsumerServiceIndex")?;
        if assertion_consumer_service_url.is_some() && assertion_consumer_service_index.is_some() {
            // The schema makes them exclusive; honouring either would be a guess.
            return Err(Error::InvalidValue {
                element: R,
                attribute: "AssertionConsumerServiceIndex",
                value: "present together with AssertionConsumerServiceURL".into(),
            });
        }
        let name_id_policy =
            read::optional_child(node, PROTOCOL, "NameIDPolicy", R, "samlp:NameIDPolicy")?
                .map(|p| -> Result<NameIdPolicy> {
                    Ok(NameIdPolicy {
                        format: read::optional_attr(p, "Format").map(|f| f.trim().to_owned()),
                        sp_name_qualifier: read::optional_attr(p, "SPNameQualifier"),
                        allow_create: read::bool_attr(p, "samlp:NameIDPolicy", "AllowCreate")?,
                    })
                })
                .transpose()?;
        let subject = read::optional_child(node, ASSERTION, "Subject", R, "saml:Subject")?
            .map(|s| -> Result<RequestedSubject> {
                match read::optional_child(s, ASSERTION, "NameID", "saml:Subject", "saml:NameID")? {
                    Some(n) => Ok(RequestedSubject::NameId(crate::assertion::parse_name_id(
                        n,
                    )?)),
                    None => Ok(RequestedSubject::Other),
                }
            })
            .transpose()?;
        let requested_authn_context = read::optional_child(
            node,
            PROTOCOL,
            "RequestedAuthnContext",
            R,
            "samlp:RequestedAuthnContext",
        )?
        .map(|r| -> Result<RequestedAuthnContext> {
            const C: &str = "samlp:RequestedAuthnContext";
            let comparison = match read::optional_attr(r, "Comparison")
                .as_deref()
                .map(str::trim)
            {
                None | Some("exact") => Comparison::Exact,
                Some("minimum") => Comparison::Minimum,
                Some("maximum") => Comparison::Maximum,
                Some("better") => Comparison::Better,
                Some(other) => {
                    return Err(Error::InvalidValue {
                        element: C,
                        attribute: "Comparison",
                        value: other.to_owned(),
                    });
                }
            };
            let class_refs = read::children(r, ASSERTION, "AuthnContextClassRef")
                .map(|c| read::uri_text(c, "saml:AuthnContextClassRef"))
                .collect::<Result<Vec<_>>>()?;
            Ok(RequestedAuthnContext {
                comparison,
                class_refs,
            })
        })
        .transpose()?;
        Ok(Self {
            id: h.id.to_owned(),
            issue_instant: h.issue_instant,
            destination: h.destination.map(str::to_owned),
            issuer: h.issuer.map(std::borrow::Cow::into_owned),
            assertion_consumer_service_url,
            assertion_consumer_service_index,
            protocol_binding: read::optional_attr(node, "ProtocolBinding")
                .map(|b| b.trim().to_owned()),
            force_authn: read::bool_attr(node, R, "ForceAuthn")?.unwrap_or(false),
            is_passive: read::bool_attr(node, R, "IsPassive")?.unwrap_or(false),
            name_id_policy,
            subject,
            requested_authn_context,
            provider_name: read::optional_attr(node, "ProviderName"),
        })
    }
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assertion::{authn_context, name_id_format};
    use time::macros::datetime;

    fn full() -> AuthnRequest {
        AuthnRequest {
            id: "_r1".into(),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            destination: Some("https://idp.example.org/sso?x=1&y=2".into()),
            issuer: Some("https://sp.example.com".into()),
            assertion_consumer_service_url: Some("https://sp.example.com/acs".into()),
            assertion_consumer_service_index: None,
            protocol_binding: Some(binding_uri::HTTP_POST.into()),
            force_authn: true,
            is_passive: true,
            name_id_policy: Some(NameIdPolicy {
                format: Some(name_id_format::EMAIL.into()),
                sp_name_qualifier: Some("https://sp.example.com".into()),
                allow_create: Some(true),
            }),
            subject: Some(RequestedSubject::NameId(NameId::new(
                "alice@example.org",
                name_id_format::EMAIL,
            ))),
            requested_authn_context: Some(RequestedAuthnContext {
                comparison: Comparison::Minimum,
                class_refs: vec![
                    authn_context::PASSWORD_PROTECTED_TRANSPORT.into(),
                    authn_context::PASSWORD.into(),
                ],
            }),
            provider_name: Some("Example <SP> & co".into()),
        }
    }

    #[test]
    fn round_trip_full() {
        let r = full();
        assert_eq!(AuthnRequest::parse(&r.to_xml().unwrap()).unwrap(), r);
    }

    #[test]
    fn round_trip_minimal_with_index() {
        let mut r =
            AuthnRequest::new("sp", "https://idp/sso", datetime!(2026-11-28 14:00:00 UTC)).unwrap();
        r.assertion_consumer_service_index = Some(3);
        let parsed = AuthnRequest::parse(&r.to_xml().unwrap()).unwrap();
        assert_eq!(parsed, r);
        assert!(!parsed.force_authn && !parsed.is_passive);
        assert!(r.id.starts_with('_'));
    }

    #[test]
    fn refuses_url_and_index_together() {
        let mut r = full();
        r.assertion_consumer_service_index = Some(1);
        assert!(matches!(
            AuthnRequest::parse(&r.to_xml().unwrap()),
            Err(Error::InvalidValue {
                attribute: "AssertionConsumerServiceIndex",
                ..
            })
        ));
    }

    #[test]
    fn refuses_wrong_root_and_bad_id() {
        assert!(matches!(
            AuthnRequest::parse(&format!(
                "<samlp:LogoutRequest xmlns:samlp=\"{PROTOCOL}\"/>"
            )),
            Err(Error::UnexpectedElement { .. })
        ));
        let mut r = full();
        r.id = "1abc".into();
        assert!(matches!(
            AuthnRequest::parse(&r.to_xml().unwrap()),
            Err(Error::InvalidValue {
                attribute: "ID",
                ..
            })
        ));
    }

    #[test]
    fn post_binding_signed_request_round_trip() {
        use latchkey_xmlsec::crypto::SigningKey;
        use latchkey_xmlsec::dsig::{self, SignOptions, VerifyOptions};
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = SigningKey::from_pem(&pair.serialize_pem()).unwrap();
        let r = full();
        let signed = dsig::sign(
            &r.to_xml().unwrap(),
            &r.id,
            &key,
            None,
            &SignOptions::default(),
        )
        .unwrap();
        let doc = parse(&signed, &Limits::default()).unwrap();
        let trusted = [key.verifying_key().clone()];
        let v = dsig::verify_document_element(&doc, &trusted, &VerifyOptions::default()).unwrap();
        assert_eq!(AuthnRequest::from_verified(&v).unwrap(), r);
        // The schema puts the Signature right after Issuer, and the reader skips it.
        let issuer_end = signed.find("</saml:Issuer>").unwrap();
        assert!(signed[issuer_end..].starts_with("</saml:Issuer><ds:Signature"));
    }

    #[test]
    fn a_subject_without_a_name_id_is_read_as_one_we_cannot_match() {
        let xml = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL}\" xmlns:saml=\"{ASSERTION}\" \
             ID=\"_r\" Version=\"2.0\" IssueInstant=\"2026-11-28T14:00:00Z\">\
             <saml:Issuer>https://sp.example.com</saml:Issuer>\
             <saml:Subject><saml:SubjectConfirmation Method=\"urn:x\"/></saml:Subject>\
             </samlp:AuthnRequest>"
        );
        let r = AuthnRequest::parse(&xml).unwrap();
        assert_eq!(r.subject, Some(RequestedSubject::Other));
    }

    #[test]
    fn parses_foreign_prefixes_and_defaults() {
        // Default namespace instead of samlp:, as some SPs send it.
        let xml = format!(
            r#"<AuthnRequest xmlns="{PROTOCOL}" ID="_x" Version="2.0" IssueInstant="2026-11-28T14:00:00.123Z" ForceAuthn="1"><Issuer xmlns="{ASSERTION}"> sp </Issuer><NameIDPolicy AllowCreate="false"/></AuthnRequest>"#
        );
        let r = AuthnRequest::parse(&xml).unwrap();
        assert_eq!(r.issuer.as_deref(), Some("sp"));
        assert!(r.force_authn);
        assert_eq!(r.name_id_policy.unwrap().allow_create, Some(false));
    }

    #[test]
    fn every_comparison_is_read_exact_is_the_default_and_others_are_refused() {
        let with = |attr: &str| {
            format!(
                r#"<samlp:AuthnRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="{ASSERTION}" ID="_x" Version="2.0" IssueInstant="2026-11-28T14:00:00Z"><saml:Issuer>sp</saml:Issuer><samlp:RequestedAuthnContext{attr}><saml:AuthnContextClassRef>https://refeds.org/profile/mfa</saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>"#
            )
        };
        for (attr, want) in [
            ("", Comparison::Exact),
            (r#" Comparison="exact""#, Comparison::Exact),
            (r#" Comparison="minimum""#, Comparison::Minimum),
            (r#" Comparison="better""#, Comparison::Better),
            (r#" Comparison="maximum""#, Comparison::Maximum),
        ] {
            let r = AuthnRequest::parse(&with(attr)).unwrap();
            let requested = r.requested_authn_context.unwrap();
            assert_eq!(requested.comparison, want, "{attr}");
            assert_eq!(requested.class_refs, ["https://refeds.org/profile/mfa"]);
        }
        let err = AuthnRequest::parse(&with(r#" Comparison="stronger""#)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidValue {
                    attribute: "Comparison",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
