//! Status codes of responses (SAML core §3.2.2.2).

use std::borrow::Cow;

use latchkey_xmlsec::tree::Node;

use crate::error::Result;
use crate::ns::PROTOCOL;
use crate::read;
use crate::xml_writer::XmlWriter;

/// Status code URIs.
pub mod code {
    /// The request succeeded.
    pub const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
    /// The requester made an error (top-level).
    pub const REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
    /// The responder failed (top-level).
    pub const RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
    /// Wrong SAML version (top-level).
    pub const VERSION_MISMATCH: &str = "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch";
    /// The principal could not be authenticated.
    pub const AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";
    /// IsPassive was set and the IdP would have had to interact.
    pub const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
    /// The requested authentication context cannot be met.
    pub const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
    /// The requested NameID policy cannot be met.
    pub const INVALID_NAMEID_POLICY: &str =
        "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
    /// The IdP chose not to answer.
    pub const REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
    /// The principal is not known.
    pub const UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";
    /// The request is not supported.
    pub const REQUEST_UNSUPPORTED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported";
    /// Logout reached only some session participants.
    pub const PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
}

/// A response's Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The top-level code (Success, Requester, Responder or VersionMismatch).
    pub code: String,
    /// The second-level code, refining the first.
    pub sub_code: Option<String>,
    /// A message for an operator.
    pub message: Option<String>,
}

impl Status {
    /// Success.
    pub fn success() -> Self {
        Self {
            code: code::SUCCESS.to_owned(),
            sub_code: None,
            message: None,
        }
    }

    /// A failure with a top-level and a second-level code.
    pub fn failure(top: &str, sub: Option<&str>, message: Option<&str>) -> Self {
        Self {
            code: top.to_owned(),
            sub_code: sub.map(str::to_owned),
            message: message.map(str::to_owned),
        }
    }

    /// Whether the top-level code is Success.
    pub fn is_success(&self) -> bool {
        self.code == code::SUCCESS
    }
}

pub(crate) fn write_status(w: &mut XmlWriter, s: &Status) {
    w.start("samlp:Status")
        .start("samlp:StatusCode")
        .attr("Value", &s.code);
    if let Some(sub) = &s.sub_code {
        w.start("samlp:StatusCode").attr("Value", sub).end();
    }
    w.end();
    if let Some(m) = &s.message {
        w.text_element("samlp:StatusMessage", m);
    }
    w.end();
}

/// Reads the Status child of a StatusResponseType element.
pub(crate) fn parse_status(parent: Node<'_, '_>, parent_name: &'static str) -> Result<Status> {
    Ok(read_status(parent, parent_name)?.into_owned())
}

/// A Status as read, borrowed from the document: the profile only asks whether it is
/// Success, and copies it only into the refusal when it is not.
#[derive(Debug)]
pub(crate) struct StatusRef<'a> {
    /// Trimmed.
    pub(crate) code: &'a str,
    /// Trimmed.
    pub(crate) sub_code: Option<&'a str>,
    pub(crate) message: Option<Cow<'a, str>>,
}

impl StatusRef<'_> {
    /// Whether the top-level code is Success.
    pub(crate) fn is_success(&self) -> bool {
        self.code == code::SUCCESS
    }

    pub(crate) fn into_owned(self) -> Status {
        Status {
            code: self.code.to_owned(),
            sub_code: self.sub_code.map(str::to_owned),
            message: self.message.map(Cow::into_owned),
        }
    }
}

/// [`parse_status`], borrowed.
pub(crate) fn read_status<'a>(
    parent: Node<'a, '_>,
    parent_name: &'static str,
) -> Result<StatusRef<'a>> {
    const S: &str = "samlp:Status";
    let status = read::required_child(parent, PROTOCOL, "Status", parent_name, S)?;
    let top = read::required_child(status, PROTOCOL, "StatusCode", S, "samlp:StatusCode")?;
    let code = read::required_attr(top, "samlp:StatusCode", "Value")?.trim();
    let sub_code = read::optional_child(
        top,
        PROTOCOL,
        "StatusCode",
        "samlp:StatusCode",
        "samlp:StatusCode",
    )?
    .map(|n| read::required_attr(n, "samlp:StatusCode", "Value").map(str::trim))
    .transpose()?;
    let message =
        read::optional_child(status, PROTOCOL, "StatusMessage", S, "samlp:StatusMessage")?
            .map(|n| read::joined_text(n, "samlp:StatusMessage"))
            .transpose()?;
    Ok(StatusRef {
        code,
        sub_code,
        message,
    })
}
