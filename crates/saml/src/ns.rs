//! Namespace URIs and the prefixes this crate writes them with.

/// SAML 2.0 assertions (`saml:`).
pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 protocol (`samlp:`).
pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 metadata (`md:`).
pub const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// XML-DSig (`ds:`).
pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Schema instance (`xsi:`), for `xsi:type` on attribute values.
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// XML Schema (`xs:`), for `xs:string` in `xsi:type`.
pub const XS: &str = "http://www.w3.org/2001/XMLSchema";
/// The XML namespace, for `xml:lang`.
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
