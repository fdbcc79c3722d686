//! Enveloped XML-DSig: signing, and verification into a [`Verified`] handle.
//!
//! The verifier is deliberately narrower than the XML-DSig specification: one
//! signature per element, one reference, and that reference must point at the
//! signature's own parent by a bare-name `#id` (the shape SAML core §5.4 requires).
//! Everything outside that shape is refused with a [`SignatureError`] naming the
//! rule, because every known signature-wrapping attack lives in the parts of the
//! specification a SAML verifier does not need.
//!
//! ```
//! use latchkey_xmlsec::crypto::{Certificate, SigningKey};
//! use latchkey_xmlsec::{dsig, reader};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
//! # let cert_pem = rcgen::CertificateParams::new(vec!["idp".into()])?.self_signed(&kp)?.pem();
//! # let key_pem = kp.serialize_pem();
//! let key = SigningKey::from_pem(&key_pem)?;
//! let cert = Certificate::from_pem(&cert_pem)?;
//! let xml = r#"<r:Response xmlns:r="urn:example" ID="_r1"><r:Item>42</r:Item></r:Response>"#;
//! let signed = dsig::sign(xml, "_r1", &key, Some(&cert), &dsig::SignOptions::default())?;
//!
//! let doc = reader::parse(&signed, &reader::Limits::default())?;
//! let trusted = [cert.verifying_key().clone()];
//! let verified = dsig::verify_document(&doc, &trusted, &dsig::VerifyOptions::default())?;
//! assert_eq!(verified[0].element().tag_name().name(), "Response");
//! assert_eq!(verified[0].id(), Some("_r1"));
//! # Ok(()) }
//! ```
//!
//! # Security
//! * Keys come only from the caller's trusted list. `KeyInfo` is never read.
//! * The only way to reach the signed content is [`Verified::element`]. Nothing in this
//!   module hands back a node from a document whose signature did not verify.
//! * Digest and signature values are read from text children only: a comment or child
//!   element inside them is an error, not something to skip.

mod reference;
mod sign;
mod structure;
mod verify;

pub use sign::{SignOptions, sign, sign_canonical};
pub use verify::{
    Verified, VerifyOptions, verify_by_id, verify_document, verify_document_element,
    verify_element, verify_enveloping,
};

use crate::crypto::{KeyError, SignatureAlgorithm};

/// The XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The XML-DSig 1.1 namespace (`dsig11:ECKeyValue` and friends inside KeyInfo).
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";
/// The enveloped-signature transform.
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// The namespace of `InclusiveNamespaces` (the exclusive C14N URI).
pub const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// Why a signature was refused (or could not be made). Each variant is one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The document holds no `ds:Signature` at all.
    #[error("the document is not signed")]
    NoSignature,
    /// The node handed to the verifier is not an element of this document.
    #[error("the node to verify is not an element of this document")]
    ForeignNode,
    /// Rule: the element being verified has exactly one `ds:Signature` child.
    #[error("element must have exactly one ds:Signature child, found {found}")]
    SignatureCount {
        /// How many there were.
        found: usize,
    },
    /// Rule: a Signature holds exactly one `ds:SignedInfo`, as its first child. Copies
    /// wrapped deeper inside the Signature count too, so a decoy cannot hide there.
    #[error("signature must hold exactly one ds:SignedInfo, found {found}")]
    SignedInfoCount {
        /// How many `ds:SignedInfo` elements the Signature contains at any depth.
        found: usize,
    },
    /// An element where the XML-DSig schema (as we restrict it) allows none, or in the
    /// wrong order.
    #[error("unexpected element {found} in {parent}")]
    UnexpectedElement {
        /// The element whose content is wrong.
        parent: &'static str,
        /// The offending child, as `{namespace}local`.
        found: String,
    },
    /// A required element is absent.
    #[error("missing {element} in {parent}")]
    MissingElement {
        /// The element whose content is incomplete.
        parent: &'static str,
        /// What should have been there.
        element: &'static str,
    },
    /// A required attribute is absent.
    #[error("missing attribute {attribute} on {element}")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// Rule: an enveloped signature carries no `ds:Object`. Its content would sit inside
    /// the verified element unsigned.
    #[error("ds:Object is not allowed in an enveloped signature")]
    ObjectNotAllowed,
    /// Rule: SignedInfo holds exactly one Reference.
    #[error("SignedInfo must hold exactly one ds:Reference, found {found}")]
    ReferenceCount {
        /// How many there were.
        found: usize,
    },
    /// Rule: only bare-name `#id` references (and `""` for the document element). XPointer,
    /// `element()` schemes and external URIs are refused.
    #[error("unsupported reference URI {uri:?}")]
    UnsupportedUri {
        /// The URI.
        uri: String,
    },
    /// Rule: `URI=""` (the whole document) only when the element verified is the
    /// document element.
    #[error("URI=\"\" is only accepted on the document element")]
    EmptyUriNotDocumentElement,
    /// Rule: the Reference must point at the signature's own parent element (SAML core
    /// §5.4.2). Anything else lets a valid signature vouch for content elsewhere.
    #[error("reference {uri:?} does not point at the signed element (ID {expected:?})")]
    ReferenceNotParent {
        /// The Reference URI.
        uri: String,
        /// The ID of the element being verified, if it has one.
        expected: Option<String>,
    },
    /// Rule: the referenced ID value occurs exactly once in the document, across all
    /// ID attribute names in force. Duplicates are how signature wrapping works.
    #[error("ID {id:?} occurs {count} times in the document")]
    DuplicateId {
        /// The ID value.
        id: String,
        /// Its number of occurrences.
        count: usize,
    },
    /// No element carries this ID.
    #[error("no element has ID {id:?}")]
    IdNotFound {
        /// The ID value.
        id: String,
    },
    /// An ID value that is not a bare name (letters, digits, `.-_`) cannot be referenced
    /// as `#id`.
    #[error("ID {id:?} is not a bare name")]
    InvalidId {
        /// The ID value.
        id: String,
    },
    /// Rule: transforms are allow-listed (enveloped-signature, exclusive C14N, and for
    /// verification inclusive C14N 1.0).
    #[error("transform {algorithm:?} is not allowed")]
    DisallowedTransform {
        /// The Transform's Algorithm.
        algorithm: String,
    },
    /// Rule: transforms come as `[enveloped-signature] [c14n]`, each at most once.
    #[error("transforms are not in the order enveloped-signature, then c14n")]
    TransformSequence,
    /// Rule: the SignedInfo CanonicalizationMethod is allow-listed.
    #[error("canonicalization method {algorithm:?} is not allowed")]
    DisallowedCanonicalization {
        /// The Algorithm URI.
        algorithm: String,
    },
    /// Rule: SignatureMethod is allow-listed (no HMAC, no DSA, no MD5).
    #[error("signature method {algorithm:?} is not allowed")]
    UnknownSignatureAlgorithm {
        /// The Algorithm URI.
        algorithm: String,
    },
    /// Rule: DigestMethod is allow-listed.
    #[error("digest method {algorithm:?} is not allowed")]
    UnknownDigestAlgorithm {
        /// The Algorithm URI.
        algorithm: String,
    },
    /// Rule: SHA-1 (as digest or in RSA-SHA1) needs the caller's explicit opt-in.
    #[error("SHA-1 is refused unless explicitly allowed")]
    Sha1NotAllowed,
    /// Rule: DigestValue and SignatureValue are read from their text only. A comment or
    /// element inside them is refused rather than skipped.
    #[error("{element} must contain only text")]
    NonTextContent {
        /// `DigestValue` or `SignatureValue`.
        element: &'static str,
    },
    /// DigestValue or SignatureValue is not base64.
    #[error("{element} is not valid base64")]
    InvalidBase64 {
        /// `DigestValue` or `SignatureValue`.
        element: &'static str,
    },
    /// No trusted key of a type that fits the signature algorithm.
    #[error("no trusted key can check {algorithm:?}")]
    NoKeyForAlgorithm {
        /// The SignatureMethod.
        algorithm: SignatureAlgorithm,
    },
    /// The only fitting trusted keys were refused by policy (for example 1024-bit RSA
    /// without the legacy opt-in).
    #[error("trusted key refused: {0}")]
    KeyRefused(KeyError),
    /// The SignatureValue does not verify with any trusted key.
    #[error("signature value does not verify with any trusted key")]
    BadSignature,
    /// The signature verifies, but the referenced content's digest does not match:
    /// the signed element was changed.
    #[error("digest of the referenced content does not match DigestValue")]
    DigestMismatch,
    /// Rule: the enveloping form needs a `ds:Signature` document element whose Reference
    /// points at one of its own `ds:Object` children.
    #[error("not an enveloping signature: {0}")]
    NotEnveloping(&'static str),
    /// The document element itself is a `ds:Signature` (the enveloping form), which
    /// only [`verify_enveloping`] accepts.
    #[error("the document is an enveloping signature; it is not verified as enveloped")]
    SignatureIsDocumentElement,
    /// Signing: the Signature could not be placed in the text (an internal invariant
    /// failed; reported instead of panicking).
    #[error("could not splice the signature into the document")]
    Splice,
    /// Signing: the element already has a `ds:Signature` child.
    #[error("the element is already signed")]
    AlreadySigned,
    /// Signing: the requested algorithm is not one we sign with (SHA-1 digests).
    #[error("we do not sign with {0}")]
    UnsupportedForSigning(&'static str),
}

/// Expanded name of an element, for error messages.
fn expanded_name(node: crate::tree::Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        Some(ns) => format!("{{{ns}}}{}", tag.name()),
        None => tag.name().to_owned(),
    }
}

/// Whether `node` is the element `ds:<local>`. Out of line: one copy of the comparison
/// for the signature's every element, instead of one inlined per check.
#[inline(never)]
fn is_dsig(node: crate::tree::Node<'_, '_>, local: &str) -> bool {
    node.has_tag_name((DSIG_NS, local))
}
