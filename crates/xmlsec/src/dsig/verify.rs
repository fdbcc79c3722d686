//! Verification of enveloped (and, separately, enveloping) signatures.

use std::fmt;

use crate::tree::Node;
use aws_lc_rs::constant_time::verify_slices_are_equal;

use super::reference::{self, Target};
use super::structure::{self, Parts, ReferencePart};
use super::{ENVELOPED_SIGNATURE, SignatureError, is_dsig};
use crate::c14n;
use crate::crypto::{DigestAlgorithm, KeyError, LegacyPolicy, SignatureAlgorithm, VerifyingKey};
use crate::error::Error;
use crate::reader::Document;

/// What the verifier accepts beyond the strict defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Attribute names that carry IDs. Default: `ID` (SAML 2.0), `Id` (XML-DSig, WS-*),
    /// `AssertionID` (SAML 1.x). Uniqueness of a referenced ID is checked across all of
    /// them.
    pub id_attributes: Vec<String>,
    /// Accept SHA-1 digests and RSA-SHA1 signatures (legacy IdPs). Off by default.
    pub allow_sha1: bool,
    /// Accept RSA keys from 1024 bits instead of 2048 (legacy IdPs). Off by default.
    pub allow_rsa_1024: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            id_attributes: vec!["ID".into(), "Id".into(), "AssertionID".into()],
            allow_sha1: false,
            allow_rsa_1024: false,
        }
    }
}

impl VerifyOptions {
    /// Defaults plus both legacy opt-ins: SHA-1 and 1024-bit RSA.
    pub fn legacy() -> Self {
        Self {
            allow_sha1: true,
            allow_rsa_1024: true,
            ..Self::default()
        }
    }

    fn policy(&self) -> LegacyPolicy {
        LegacyPolicy {
            allow_sha1: self.allow_sha1,
            allow_rsa_1024: self.allow_rsa_1024,
        }
    }
}

/// Proof that an element's signature verified with a trusted key.
///
/// It can only be made by this module's verify functions, and [`Verified::element`] is
/// the way to the signed content: code that reads identity from anything else has no
/// proof that it was signed.
///
/// # Security
/// The element's descendants are all covered by the signature, except its own
/// `ds:Signature` child ([`Verified::signature_element`]), whose `KeyInfo` is unsigned:
/// skip it when reading. The digest was computed without comments, so read text by
/// concatenating every text node (a comment can split a value without breaking the
/// signature), or re-parse [`Verified::signed_bytes`], which are exactly what was
/// digested.
///
/// Outside this module a `Verified` cannot be built, only received:
/// ```compile_fail
/// # fn forge<'a, 'i>(node: latchkey_xmlsec::tree::Node<'a, 'i>) {
/// let forged = latchkey_xmlsec::dsig::Verified {
///     element: node,
///     signature: node,
///     id: None,
///     signature_algorithm: latchkey_xmlsec::crypto::SignatureAlgorithm::RsaSha256,
///     digest_algorithm: latchkey_xmlsec::crypto::DigestAlgorithm::Sha256,
///     key_index: 0,
///     signed_bytes: Vec::new(),
/// };
/// # }
/// ```
pub struct Verified<'a, 'input> {
    element: Node<'a, 'input>,
    signature: Node<'a, 'input>,
    id: Option<&'a str>,
    signature_algorithm: SignatureAlgorithm,
    digest_algorithm: DigestAlgorithm,
    key_index: usize,
    signed_bytes: Vec<u8>,
}

impl fmt::Debug for Verified<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("element", &self.element.tag_name())
            .field("id", &self.id)
            .field("signature_algorithm", &self.signature_algorithm)
            .field("digest_algorithm", &self.digest_algorithm)
            .field("key_index", &self.key_index)
            .finish_non_exhaustive()
    }
}

impl<'a, 'input> Verified<'a, 'input> {
    /// The element the signature covers: the only way to the signed content.
    pub fn element(&self) -> Node<'a, 'input> {
        self.element
    }

    /// The `ds:Signature` that verified (a child of the element, or for the enveloping
    /// form, its parent). Its `KeyInfo` is not signed.
    pub fn signature_element(&self) -> Node<'a, 'input> {
        self.signature
    }

    /// The ID the Reference named, or `None` for `URI=""` (the whole document).
    pub fn id(&self) -> Option<&'a str> {
        self.id
    }

    /// The SignatureMethod that verified.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature_algorithm
    }

    /// The Reference's DigestMethod.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.digest_algorithm
    }

    /// Index, in the caller's trusted-key slice, of the key that verified.
    pub fn key_index(&self) -> usize {
        self.key_index
    }

    /// The canonical bytes that were digested (the element without its Signature).
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed_bytes
    }

    /// Whether `node` is covered by the signature: the element itself or a descendant,
    /// and not inside the (unsigned) `ds:Signature`. For callers that receive nodes
    /// from elsewhere and must check them before trusting them.
    pub fn covers(&self, node: Node<'_, '_>) -> bool {
        let same_doc = std::ptr::eq(node.document(), self.element.document());
        same_doc
            && node.ancestors().any(|a| a == self.element)
            && !node.ancestors().any(|a| a == self.signature)
    }

    /// The element's children, minus its `ds:Signature`: the signed content to walk.
    pub fn signed_children(&self) -> impl Iterator<Item = Node<'a, 'input>> + '_ {
        let signature = self.signature;
        self.element.children().filter(move |n| *n != signature)
    }

    /// The text of a covered element as the signature saw it: every descendant text
    /// node, concatenated. Comments are skipped, so `al<!---->ice` reads `alice`, as it
    /// was digested; reading only the first text node would read `al`. `None` if the
    /// node is not covered.
    pub fn text(&self, node: Node<'_, '_>) -> Option<String> {
        if !self.covers(node) {
            return None;
        }
        Some(
            node.descendants()
                .filter(Node::is_text)
                .filter_map(|t| t.text())
                .collect(),
        )
    }
}

/// Verifies the enveloped signature of `element`, which must be an element of `doc`.
///
/// The element must have exactly one `ds:Signature` child, whose single Reference names
/// the element itself (`#ID`, or `""` when the element is the document element).
pub fn verify_element<'a, 'input>(
    doc: &'a Document<'input>,
    element: Node<'a, 'input>,
    trusted_keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Result<Verified<'a, 'input>, Error> {
    if !element.is_element() || !std::ptr::eq(element.document(), doc.tree()) {
        return Err(SignatureError::ForeignNode.into());
    }
    let mut signatures = element.children().filter(|n| is_dsig(*n, "Signature"));
    let signature = match (signatures.next(), signatures.next()) {
        (Some(one), None) => one,
        (None, _) => return Err(SignatureError::SignatureCount { found: 0 }.into()),
        (Some(_), Some(_)) => {
            return Err(SignatureError::SignatureCount {
                found: 2 + signatures.count(),
            }
            .into());
        }
    };
    let parts = structure::parse(signature, options.allow_sha1)?;
    let uri = parts.reference.uri;
    let (apex, id) = match reference::parse_uri(uri)? {
        Target::WholeDocument => {
            if element != doc.root_element() {
                return Err(SignatureError::EmptyUriNotDocumentElement.into());
            }
            (doc.tree().root(), None)
        }
        Target::Id(id) => {
            let own = reference::element_id(element, &options.id_attributes);
            if own != Some(id) {
                return Err(not_parent(uri, own));
            }
            let count = reference::id_count(doc.tree(), id, &options.id_attributes);
            if count != 1 {
                return Err(duplicate_id(id, count));
            }
            (element, Some(id))
        }
    };
    if !parts.objects.is_empty() {
        return Err(SignatureError::ObjectNotAllowed.into());
    }
    let key_index = check_signature_value(&parts, trusted_keys, options.policy())?;
    let signed_bytes = check_digest(&parts.reference, apex, Some(signature))?;
    Ok(Verified {
        element,
        signature,
        id,
        signature_algorithm: parts.method,
        digest_algorithm: parts.reference.digest,
        key_index,
        signed_bytes,
    })
}

// Out of line and cold, so that the copies into these errors do not sit among the checks
// of a verification that passes.
#[cold]
#[inline(never)]
fn not_parent(uri: &str, own: Option<&str>) -> Error {
    SignatureError::ReferenceNotParent {
        uri: uri.to_owned(),
        expected: own.map(str::to_owned),
    }
    .into()
}

#[cold]
#[inline(never)]
fn duplicate_id(id: &str, count: usize) -> Error {
    SignatureError::DuplicateId {
        id: id.to_owned(),
        count,
    }
    .into()
}

/// Finds the one element whose ID attribute (any of [`VerifyOptions::id_attributes`])
/// is `id`, and verifies its enveloped signature.
pub fn verify_by_id<'a, 'input>(
    doc: &'a Document<'input>,
    id: &str,
    trusted_keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Result<Verified<'a, 'input>, Error> {
    let element = reference::unique_element_by_id(doc.tree(), id, &options.id_attributes)?;
    verify_element(doc, element, trusted_keys, options)
}

/// Verifies the enveloped signature of the document element.
pub fn verify_document_element<'a, 'input>(
    doc: &'a Document<'input>,
    trusted_keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Result<Verified<'a, 'input>, Error> {
    verify_element(doc, doc.root_element(), trusted_keys, options)
}

/// Verifies every enveloped signature in the document: each `ds:Signature`'s parent
/// element is verified in document order. All must verify; the first failure is
/// returned. For tools that do not know in advance which element is signed (the CLI);
/// protocol code should verify the element it expects with [`verify_element`].
pub fn verify_document<'a, 'input>(
    doc: &'a Document<'input>,
    trusted_keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Result<Vec<Verified<'a, 'input>>, Error> {
    let mut parents: Vec<Node<'a, 'input>> = Vec::new();
    for signature in doc
        .tree()
        .descendants()
        .filter(|n| is_dsig(*n, "Signature"))
    {
        let Some(parent) = signature.parent_element() else {
            return Err(SignatureError::SignatureIsDocumentElement.into());
        };
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    if parents.is_empty() {
        return Err(SignatureError::NoSignature.into());
    }
    parents
        .into_iter()
        .map(|p| verify_element(doc, p, trusted_keys, options))
        .collect()
}

/// Verifies an enveloping signature: the document element is a `ds:Signature` whose one
/// Reference names (`#Id`) one of its own `ds:Object` children. The handle's element is
/// that `ds:Object`. Used for the XML-DSig 1.1 interop vectors; SAML never needs it.
pub fn verify_enveloping<'a, 'input>(
    doc: &'a Document<'input>,
    trusted_keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Result<Verified<'a, 'input>, Error> {
    let signature = doc.root_element();
    if !is_dsig(signature, "Signature") {
        return Err(
            SignatureError::NotEnveloping("the document element is not ds:Signature").into(),
        );
    }
    let parts = structure::parse(signature, options.allow_sha1)?;
    if parts.reference.enveloped {
        return Err(SignatureError::DisallowedTransform {
            algorithm: ENVELOPED_SIGNATURE.to_owned(),
        }
        .into());
    }
    let Target::Id(id) = reference::parse_uri(parts.reference.uri)? else {
        return Err(SignatureError::NotEnveloping("the reference must name a ds:Object").into());
    };
    let object = reference::unique_element_by_id(doc.tree(), id, &options.id_attributes)?;
    if !parts.objects.contains(&object) {
        return Err(SignatureError::NotEnveloping(
            "the reference does not name one of the signature's ds:Object children",
        )
        .into());
    }
    let key_index = check_signature_value(&parts, trusted_keys, options.policy())?;
    let signed_bytes = check_digest(&parts.reference, object, None)?;
    Ok(Verified {
        element: object,
        signature,
        id: Some(id),
        signature_algorithm: parts.method,
        digest_algorithm: parts.reference.digest,
        key_index,
        signed_bytes,
    })
}

/// Canonicalizes SignedInfo and tries each trusted key that fits the algorithm.
/// Returns the index of the key that verified.
fn check_signature_value(
    parts: &Parts<'_, '_>,
    trusted_keys: &[VerifyingKey],
    policy: LegacyPolicy,
) -> Result<usize, Error> {
    let mut canonical = Vec::new();
    c14n::canonicalize(
        parts.signed_info,
        parts.c14n,
        &c14n::Options {
            inclusive_prefixes: &parts.c14n_prefixes,
        },
        None,
        &mut canonical,
    )?;
    let mut tried = false;
    let mut refused = None;
    for (index, key) in trusted_keys.iter().enumerate() {
        if !key.kind().fits(parts.method) {
            continue;
        }
        match key.verify(parts.method, &canonical, &parts.signature_value, policy) {
            Ok(()) => return Ok(index),
            Err(KeyError::BadSignature) => tried = true,
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    Err(match (tried, refused) {
        (true, _) => SignatureError::BadSignature,
        (false, Some(e)) => SignatureError::KeyRefused(e),
        (false, None) => SignatureError::NoKeyForAlgorithm {
            algorithm: parts.method,
        },
    }
    .into())
}

/// Applies the Reference's transforms to `apex` and compares the digest in constant
/// time. Same-document references never include comments (XML-DSig §4.3.3.3), whatever
/// the c14n transform says. Returns the digested bytes.
fn check_digest(
    reference: &ReferencePart<'_>,
    apex: Node<'_, '_>,
    enveloping_signature: Option<Node<'_, '_>>,
) -> Result<Vec<u8>, Error> {
    let (algorithm, prefixes): (c14n::Algorithm, &[&str]) = match &reference.c14n {
        Some((c14n::Algorithm::Exclusive { .. }, prefixes)) => (
            c14n::Algorithm::Exclusive {
                with_comments: false,
            },
            prefixes,
        ),
        Some((c14n::Algorithm::Inclusive { .. }, _)) | None => (
            c14n::Algorithm::Inclusive {
                with_comments: false,
            },
            &[],
        ),
    };
    let exclude = if reference.enveloped {
        enveloping_signature
    } else {
        None
    };
    // Sized by `canonicalize` itself: one allocation, no regrowth.
    let mut bytes = Vec::new();
    c14n::canonicalize(
        apex,
        algorithm,
        &c14n::Options {
            inclusive_prefixes: prefixes,
        },
        exclude,
        &mut bytes,
    )?;
    let digest = reference.digest.digest(&bytes);
    verify_slices_are_equal(&digest, &reference.digest_value)
        .map_err(|_| SignatureError::DigestMismatch)?;
    Ok(bytes)
}
