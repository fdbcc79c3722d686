//! The one way in for a signed SAML message: the HTTP-Redirect query signature and the
//! enveloped XML signature of an AuthnRequest, LogoutRequest, LogoutResponse or Response
//! (and of an assertion inside one) are checked here, under one algorithm allow-list.
//!
//! A message is [`open`]ed to learn who claims to have sent it (so the caller can find
//! that peer's keys), then [`Unverified::verify`] turns it into a [`Received`] message
//! read only from what was verified. Enveloped signatures on elements that are not a
//! whole message (the assertion inside a Response) go through [`verify_element`].
//!
//! # Security
//! * "Read only what was verified" has this one place to audit: a Redirect message is
//!   parsed from the inflated bytes the query signature covers, a POSTed one from the
//!   element [`dsig`] handed back as [`Verified`]. [`Unverified`] exposes the claimed
//!   Issuer and nothing else.
//! * A signature that protects a SAML message or assertion must reference it by `#ID`
//!   (SAML core §5.4.2): `URI=""` is refused here, although the XML-DSig layer keeps
//!   accepting it on a document element for other documents.
//! * A message that carries a signature nobody can check (no keys are registered) is
//!   treated as unsigned under [`Requirement::IfVerifiable`], never as signed.

use std::sync::LazyLock;

use latchkey_xmlsec::crypto::{DigestAlgorithm, SignatureAlgorithm, VerifyingKey};
use latchkey_xmlsec::dsig::{self, Verified, VerifyOptions};
use latchkey_xmlsec::reader::{self, Document, Limits};
use latchkey_xmlsec::tree::Node;

use crate::authn_request::AuthnRequest;
use crate::binding::{MessageKind, post::PostMessage, redirect::RedirectMessage};
use crate::error::{Error, Result};
use crate::logout::{LogoutRequest, LogoutResponse};
use crate::ns::DSIG;
use crate::read;

/// The signature algorithms accepted unless a caller narrows or widens the list: RSA and
/// ECDSA over SHA-2, never SHA-1.
pub const SIGNATURE_ALGORITHMS: [SignatureAlgorithm; 6] = [
    SignatureAlgorithm::RsaSha256,
    SignatureAlgorithm::RsaSha384,
    SignatureAlgorithm::RsaSha512,
    SignatureAlgorithm::EcdsaSha256,
    SignatureAlgorithm::EcdsaSha384,
    SignatureAlgorithm::EcdsaSha512,
];

/// The digest algorithms accepted by default: SHA-2 only.
pub const DIGEST_ALGORITHMS: [DigestAlgorithm; 3] = [
    DigestAlgorithm::Sha256,
    DigestAlgorithm::Sha384,
    DigestAlgorithm::Sha512,
];

/// Which algorithms and keys a signature may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// Signature algorithms accepted. RSA-SHA1 here also opts in to SHA-1 verification.
    pub signature_algorithms: Vec<SignatureAlgorithm>,
    /// Digest algorithms accepted (enveloped signatures only). SHA-1 here opts in too.
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Accept 1024-bit RSA keys (legacy peers only).
    pub allow_rsa_1024: bool,
}

impl Default for SignaturePolicy {
    /// [`SIGNATURE_ALGORITHMS`], [`DIGEST_ALGORITHMS`], 2048-bit RSA at least.
    fn default() -> Self {
        Self {
            signature_algorithms: SIGNATURE_ALGORITHMS.to_vec(),
            digest_algorithms: DIGEST_ALGORITHMS.to_vec(),
            allow_rsa_1024: false,
        }
    }
}

impl SignaturePolicy {
    /// The policy borrowed, as the checks read it.
    fn as_ref(&self) -> PolicyRef<'_> {
        PolicyRef {
            signature_algorithms: &self.signature_algorithms,
            digest_algorithms: &self.digest_algorithms,
            allow_rsa_1024: self.allow_rsa_1024,
        }
    }
}

/// A [`SignaturePolicy`] borrowed from wherever its allow-lists live: the SSO profile
/// holds them in its settings, and building a policy would copy both lists (two
/// allocations, copies and frees) for every Response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PolicyRef<'a> {
    pub(crate) signature_algorithms: &'a [SignatureAlgorithm],
    pub(crate) digest_algorithms: &'a [DigestAlgorithm],
    pub(crate) allow_rsa_1024: bool,
}

impl PolicyRef<'_> {
    /// The verifier's options for this policy: one of four built once, because the
    /// default ID attribute names are owned strings, allocated anew on every call
    /// otherwise.
    fn verify_options(self) -> &'static VerifyOptions {
        // VerifyOptions is non_exhaustive: struct-update syntax is not available here.
        #[allow(clippy::field_reassign_with_default)]
        fn options(allow_sha1: bool, allow_rsa_1024: bool) -> VerifyOptions {
            let mut o = VerifyOptions::default();
            o.allow_sha1 = allow_sha1;
            o.allow_rsa_1024 = allow_rsa_1024;
            o
        }
        static OPTIONS: LazyLock<[VerifyOptions; 4]> = LazyLock::new(|| {
            [
                options(false, false),
                options(false, true),
                options(true, false),
                options(true, true),
            ]
        });
        let allow_sha1 = self
            .signature_algorithms
            .contains(&SignatureAlgorithm::RsaSha1)
            || self.digest_algorithms.contains(&DigestAlgorithm::Sha1);
        let [strict, rsa_1024, sha1, both] = &*OPTIONS;
        match (allow_sha1, self.allow_rsa_1024) {
            (false, false) => strict,
            (false, true) => rsa_1024,
            (true, false) => sha1,
            (true, true) => both,
        }
    }

    /// Rule: the signature and digest algorithms are on the allow-list.
    fn check(self, v: &Verified<'_, '_>) -> Result<()> {
        let sig = v.signature_algorithm();
        if !self.signature_algorithms.contains(&sig) {
            return Err(Error::AlgorithmNotAllowed(sig.uri().to_owned()));
        }
        let digest = v.digest_algorithm();
        if !self.digest_algorithms.contains(&digest) {
            return Err(Error::AlgorithmNotAllowed(digest.uri().to_owned()));
        }
        Ok(())
    }
}

/// Whether `element` carries an enveloped signature (a `ds:Signature` child).
pub fn has_signature(element: Node<'_, '_>) -> bool {
    read::children(element, DSIG, "Signature").next().is_some()
}

/// Verifies the enveloped signature of `element` (of `doc`) with `keys` only, under
/// `policy`, and refuses a Reference that is not `#` + the element's ID.
pub fn verify_element<'a, 'input>(
    doc: &'a Document<'input>,
    element: Node<'a, 'input>,
    keys: &[VerifyingKey],
    policy: &SignaturePolicy,
) -> Result<Verified<'a, 'input>> {
    verify_element_with(doc, element, keys, policy.as_ref())
}

/// [`verify_element`] under a borrowed policy.
pub(crate) fn verify_element_with<'a, 'input>(
    doc: &'a Document<'input>,
    element: Node<'a, 'input>,
    keys: &[VerifyingKey],
    policy: PolicyRef<'_>,
) -> Result<Verified<'a, 'input>> {
    let verified = dsig::verify_element(doc, element, keys, policy.verify_options())?;
    if verified.id().is_none() {
        return Err(Error::ReferenceNotById);
    }
    policy.check(&verified)?;
    Ok(verified)
}

/// A SAML protocol message that arrives signed over a binding.
pub trait Message: Sized {
    /// The binding parameter that carries it.
    const KIND: MessageKind;
    /// Reads the message from its element.
    fn from_node(node: Node<'_, '_>) -> Result<Self>;
    /// The sender, as the message names it.
    fn issuer(&self) -> Option<&str>;
}

impl Message for AuthnRequest {
    const KIND: MessageKind = MessageKind::Request;
    fn from_node(node: Node<'_, '_>) -> Result<Self> {
        AuthnRequest::from_node(node)
    }
    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

impl Message for LogoutRequest {
    const KIND: MessageKind = MessageKind::Request;
    fn from_node(node: Node<'_, '_>) -> Result<Self> {
        LogoutRequest::from_node(node)
    }
    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

impl Message for LogoutResponse {
    const KIND: MessageKind = MessageKind::Response;
    fn from_node(node: Node<'_, '_>) -> Result<Self> {
        LogoutResponse::from_node(node)
    }
    fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// A message as its binding delivered it, decoded but not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// HTTP-Redirect: signed (if at all) over the query string.
    Redirect(RedirectMessage),
    /// HTTP-POST: signed (if at all) by an enveloped signature on the document element.
    Post {
        /// Which form field carried it.
        kind: MessageKind,
        /// The decoded field.
        message: PostMessage,
    },
}

impl Inbound {
    /// Which parameter carried the message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Inbound::Redirect(m) => m.kind,
            Inbound::Post { kind, .. } => *kind,
        }
    }

    /// The RelayState, decoded. The Redirect signature covers it; the POST binding's
    /// never does.
    pub fn relay_state(&self) -> Option<&str> {
        match self {
            Inbound::Redirect(m) => m.relay_state.as_deref(),
            Inbound::Post { message, .. } => message.relay_state.as_deref(),
        }
    }

    /// `redirect` or `post`, for logs and audit lines.
    pub fn binding_name(&self) -> &'static str {
        match self {
            Inbound::Redirect(_) => "redirect",
            Inbound::Post { .. } => "post",
        }
    }

    fn xml(&self) -> &str {
        match self {
            Inbound::Redirect(m) => &m.xml,
            Inbound::Post { message, .. } => &message.xml,
        }
    }
}

/// Whether a message must be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// It must carry a signature that verifies with the keys given.
    Required,
    /// A signature is checked when there are keys to check it with; without one (or
    /// without keys) the message is received unsigned and the caller limits what it may do.
    IfVerifiable,
}

/// A message whose sender is claimed, not proven.
#[derive(Debug)]
pub struct Unverified<'m, T> {
    inbound: &'m Inbound,
    claimed: T,
}

/// A message read from what was verified (or received unsigned, as [`Received::signed`]
/// says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<T> {
    /// The message.
    pub message: T,
    /// Whether a signature by one of the keys verified it.
    pub signed: bool,
}

/// Reads the message `inbound` carries far enough to know who claims to have sent it.
pub fn open<T: Message>(inbound: &Inbound) -> Result<Unverified<'_, T>> {
    if inbound.kind() != T::KIND {
        return Err(Error::MissingParameter(T::KIND.param()));
    }
    let claimed = parse::<T>(inbound.xml())?;
    Ok(Unverified { inbound, claimed })
}

fn parse<T: Message>(xml: &str) -> Result<T> {
    let doc = reader::parse(xml, &Limits::default())?;
    T::from_node(doc.root_element())
}

impl<T: Message> Unverified<'_, T> {
    /// The Issuer the message claims: whose keys to verify it with. Not authenticated.
    pub fn issuer(&self) -> Option<&str> {
        self.claimed.issuer()
    }

    /// Checks the signature with `keys` (the claimed issuer's, never a key in the
    /// message) under `policy`: over the query for HTTP-Redirect, enveloped on the
    /// document element for HTTP-POST.
    pub fn verify(
        self,
        keys: &[VerifyingKey],
        policy: &SignaturePolicy,
        requirement: Requirement,
    ) -> Result<Received<T>> {
        let check = requirement == Requirement::Required || !keys.is_empty();
        match self.inbound {
            Inbound::Redirect(m) => {
                if m.is_signed() && check {
                    m.verify(keys, &policy.signature_algorithms)?;
                    // The query signature covers the deflated bytes this XML came from.
                    return Ok(Received {
                        message: self.claimed,
                        signed: true,
                    });
                }
            }
            Inbound::Post { message, .. } => {
                let doc = reader::parse(&message.xml, &Limits::default())?;
                let root = doc.root_element();
                if has_signature(root) && check {
                    let verified = verify_element(&doc, root, keys, policy)?;
                    return Ok(Received {
                        message: T::from_node(verified.element())?,
                        signed: true,
                    });
                }
            }
        }
        match requirement {
            Requirement::Required => Err(Error::Unsigned),
            Requirement::IfVerifiable => Ok(Received {
                message: self.claimed,
                signed: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{BindingLimits, post, redirect};
    use crate::logout::LogoutRequest;
    use latchkey_xmlsec::c14n::{self, Algorithm, Options};
    use latchkey_xmlsec::crypto::SigningKey;
    use latchkey_xmlsec::dsig::{SignOptions, sign};
    use latchkey_xmlsec::reader::Limits;
    use time::macros::datetime;

    use crate::assertion::{NameId, name_id_format};

    fn key() -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        SigningKey::from_pem(&pair.serialize_pem()).unwrap()
    }

    fn request() -> LogoutRequest {
        LogoutRequest {
            id: "_l1".into(),
            issue_instant: datetime!(2026-11-28 14:00:00 UTC),
            destination: Some("https://idp.example.org/slo".into()),
            issuer: Some("https://sp.example.com".into()),
            name_id: NameId::new("alice", name_id_format::PERSISTENT),
            session_indexes: vec!["_s1".into()],
            not_on_or_after: None,
            reason: None,
        }
    }

    fn posted(xml: &str) -> Inbound {
        Inbound::Post {
            kind: MessageKind::Request,
            message: post::decode(
                MessageKind::Request,
                &post::encode(xml),
                None,
                &BindingLimits::default(),
            )
            .unwrap(),
        }
    }

    fn receive(
        m: &Inbound,
        keys: &[VerifyingKey],
        r: Requirement,
    ) -> Result<Received<LogoutRequest>> {
        open::<LogoutRequest>(m)?.verify(keys, &SignaturePolicy::default(), r)
    }

    #[test]
    fn both_bindings_verify_with_the_peer_keys_only() {
        let (k, other) = (key(), key());
        let keys = [k.verifying_key().clone()];
        let xml = request().to_xml().unwrap();
        let q = redirect::encode_signed(
            MessageKind::Request,
            &xml,
            None,
            &k,
            k.default_algorithm(),
            &BindingLimits::default(),
        )
        .unwrap();
        let m = Inbound::Redirect(redirect::decode(&q, &BindingLimits::default()).unwrap());
        assert_eq!(
            open::<LogoutRequest>(&m).unwrap().issuer(),
            Some("https://sp.example.com")
        );
        let got = receive(&m, &keys, Requirement::Required).unwrap();
        assert!(got.signed);
        assert_eq!(got.message, request());
        assert_eq!(
            receive(&m, &[other.verifying_key().clone()], Requirement::Required),
            Err(Error::SignatureInvalid)
        );

        let signed = sign(&xml, "_l1", &k, None, &SignOptions::default()).unwrap();
        let got = receive(&posted(&signed), &keys, Requirement::Required).unwrap();
        assert!(got.signed);
        assert_eq!(got.message, request());
        assert!(
            receive(
                &posted(&signed),
                &[other.verifying_key().clone()],
                Requirement::Required
            )
            .is_err()
        );
    }

    #[test]
    fn unsigned_is_refused_when_required_and_received_unsigned_otherwise() {
        let k = key();
        let keys = [k.verifying_key().clone()];
        let m = posted(&request().to_xml().unwrap());
        assert_eq!(
            receive(&m, &keys, Requirement::Required),
            Err(Error::Unsigned)
        );
        let got = receive(&m, &keys, Requirement::IfVerifiable).unwrap();
        assert!(!got.signed);
        // A signature nobody can check proves nothing: received unsigned, not signed.
        let signed = sign(
            &request().to_xml().unwrap(),
            "_l1",
            &k,
            None,
            &SignOptions::default(),
        )
        .unwrap();
        assert!(
            !receive(&posted(&signed), &[], Requirement::IfVerifiable)
                .unwrap()
                .signed
        );
        assert!(receive(&posted(&signed), &[], Requirement::Required).is_err());
    }

    #[test]
    fn the_wrong_parameter_is_refused_before_anything_is_read() {
        let m = posted(&request().to_xml().unwrap());
        assert_eq!(
            open::<LogoutResponse>(&m).map(|_| ()),
            Err(Error::MissingParameter("SAMLResponse"))
        );
    }

    /// Re-signs `signed` with its Reference turned into `URI=""`: a valid XML-DSig
    /// signature over the whole document.
    fn whole_document_signature(signed: &str, id: &str, k: &SigningKey) -> String {
        let text = signed.replace(&format!("URI=\"#{id}\""), "URI=\"\"");
        let doc = reader::parse(&text, &Limits::default()).unwrap();
        let signed_info = doc
            .tree()
            .descendants()
            .find(|n| n.tag_name().name() == "SignedInfo")
            .unwrap();
        let bytes = c14n::canonicalize_to_vec(
            signed_info,
            Algorithm::Exclusive {
                with_comments: false,
            },
            &Options::default(),
            None,
        )
        .unwrap();
        let value = k.sign(k.default_algorithm(), &bytes).unwrap();
        let old = doc
            .tree()
            .descendants()
            .find(|n| n.tag_name().name() == "SignatureValue")
            .and_then(|n| n.text())
            .unwrap()
            .to_owned();
        use base64::Engine;
        text.replace(
            &old,
            &base64::engine::general_purpose::STANDARD.encode(value),
        )
    }

    #[test]
    fn a_whole_document_reference_is_refused_in_the_saml_profile() {
        let k = key();
        let keys = [k.verifying_key().clone()];
        let signed = sign(
            &request().to_xml().unwrap(),
            "_l1",
            &k,
            None,
            &SignOptions::default(),
        )
        .unwrap();
        let whole = whole_document_signature(&signed, "_l1", &k);
        // The XML-DSig layer accepts it on the document element...
        let doc = reader::parse(&whole, &Limits::default()).unwrap();
        let v = dsig::verify_element(&doc, doc.root_element(), &keys, &VerifyOptions::default())
            .unwrap();
        assert_eq!(v.id(), None);
        // ...the SAML profile does not.
        assert_eq!(
            verify_element(&doc, doc.root_element(), &keys, &SignaturePolicy::default())
                .map(|_| ()),
            Err(Error::ReferenceNotById)
        );
        assert_eq!(
            receive(&posted(&whole), &keys, Requirement::Required),
            Err(Error::ReferenceNotById)
        );
    }
}
