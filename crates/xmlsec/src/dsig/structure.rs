//! Reads a `ds:Signature` element into typed parts, enforcing its shape.
//!
//! The allowed shape is XML-DSig's schema with the optional parts we do not need
//! removed: `Signature = SignedInfo, SignatureValue, KeyInfo?, Object*` and
//! `SignedInfo = CanonicalizationMethod, SignatureMethod, Reference+`, and `KeyInfo`
//! holds only XML-DSig (1.0 or 1.1) elements. Algorithms are
//! mapped to our allow-listed enums here, so nothing downstream sees a URI.

use crate::tree::Node;

use super::{
    DSIG_NS, DSIG11_NS, ENVELOPED_SIGNATURE, EXC_C14N_NS, SignatureError, expanded_name, is_dsig,
};
use crate::c14n;
use crate::crypto::{DigestAlgorithm, SignatureAlgorithm};

/// A Signature element, checked and decoded.
#[derive(Debug)]
pub(super) struct Parts<'a, 'i> {
    /// The one SignedInfo (a direct child of the Signature).
    pub signed_info: Node<'a, 'i>,
    /// SignedInfo's canonicalization, comments setting as declared.
    pub c14n: c14n::Algorithm,
    /// InclusiveNamespaces PrefixList of the CanonicalizationMethod.
    pub c14n_prefixes: Vec<&'a str>,
    /// SignatureMethod.
    pub method: SignatureAlgorithm,
    /// The single Reference.
    pub reference: ReferencePart<'a>,
    /// Decoded SignatureValue.
    pub signature_value: Vec<u8>,
    /// `ds:Object` children (only the enveloping form accepts any).
    pub objects: Vec<Node<'a, 'i>>,
}

/// A Reference, checked and decoded.
#[derive(Debug)]
pub(super) struct ReferencePart<'a> {
    /// The URI attribute, verbatim.
    pub uri: &'a str,
    /// Whether the enveloped-signature transform is present.
    pub enveloped: bool,
    /// The explicit c14n transform, if any, with its PrefixList.
    pub c14n: Option<(c14n::Algorithm, Vec<&'a str>)>,
    /// DigestMethod.
    pub digest: DigestAlgorithm,
    /// Decoded DigestValue.
    pub digest_value: Vec<u8>,
}

/// Parses `signature` (a `ds:Signature` element). SHA-1 is refused here unless
/// `allow_sha1`, so that the error names the rule before any crypto runs.
pub(super) fn parse<'a, 'i>(
    signature: Node<'a, 'i>,
    allow_sha1: bool,
) -> Result<Parts<'a, 'i>, SignatureError> {
    let signed_info_count = signature
        .descendants()
        .filter(|n| is_dsig(*n, "SignedInfo"))
        .count();
    if signed_info_count != 1 {
        return Err(SignatureError::SignedInfoCount {
            found: signed_info_count,
        });
    }
    // The optional children are looked at one ahead by hand rather than through
    // `Peekable`, whose code a validation would fetch for these two uses alone.
    let mut children = signature.children().filter(Node::is_element);
    let signed_info = expect(children.next(), "Signature", "SignedInfo")?;
    let value = expect(children.next(), "Signature", "SignatureValue")?;
    let mut next = children.next();
    if let Some(key_info) = next.filter(|n| is_dsig(*n, "KeyInfo")) {
        next = children.next();
        // KeyInfo is never read, and it is not signed. Content from other vocabularies
        // (a SAML Assertion, say) could be mistaken for signed content by a careless
        // reader of the verified element, so only XML-DSig elements may appear there.
        let foreign = key_info.descendants().find(|n| {
            n.is_element() && !matches!(n.tag_name().namespace(), Some(DSIG_NS | DSIG11_NS))
        });
        if let Some(foreign) = foreign {
            return Err(unexpected("KeyInfo", foreign));
        }
    }
    let mut objects = Vec::new();
    while let Some(child) = next {
        if !is_dsig(child, "Object") {
            return Err(unexpected("Signature", child));
        }
        objects.push(child);
        next = children.next();
    }

    let mut si = signed_info.children().filter(Node::is_element);
    let cm = expect(si.next(), "SignedInfo", "CanonicalizationMethod")?;
    let sm = expect(si.next(), "SignedInfo", "SignatureMethod")?;
    let mut reference = None;
    let mut references = 0;
    for child in si {
        if !is_dsig(child, "Reference") {
            return Err(unexpected("SignedInfo", child));
        }
        reference.get_or_insert(child);
        references += 1;
    }
    let reference = match (reference, references) {
        (Some(one), 1) => one,
        (None, _) => return Err(missing("SignedInfo", "Reference")),
        (Some(_), found) => return Err(SignatureError::ReferenceCount { found }),
    };

    let cm_uri = algorithm_attr(cm, "CanonicalizationMethod")?;
    let c14n = c14n::Algorithm::from_uri(cm_uri).ok_or_else(|| {
        refused(
            |algorithm| SignatureError::DisallowedCanonicalization { algorithm },
            cm_uri,
        )
    })?;
    let c14n_prefixes = inclusive_prefixes(cm, c14n, "CanonicalizationMethod")?;

    let sm_uri = algorithm_attr(sm, "SignatureMethod")?;
    let method = SignatureAlgorithm::from_uri(sm_uri).ok_or_else(|| {
        refused(
            |algorithm| SignatureError::UnknownSignatureAlgorithm { algorithm },
            sm_uri,
        )
    })?;
    if let Some(child) = sm.children().find(Node::is_element) {
        // HMACOutputLength and friends: nothing we accept takes parameters.
        return Err(unexpected("SignatureMethod", child));
    }
    if method.uses_sha1() && !allow_sha1 {
        return Err(SignatureError::Sha1NotAllowed);
    }

    let reference = parse_reference(reference, allow_sha1)?;
    let signature_value = base64_text(value, "SignatureValue")?;
    Ok(Parts {
        signed_info,
        c14n,
        c14n_prefixes,
        method,
        reference,
        signature_value,
        objects,
    })
}

fn parse_reference<'a>(
    reference: Node<'a, '_>,
    allow_sha1: bool,
) -> Result<ReferencePart<'a>, SignatureError> {
    let uri = reference
        .attribute("URI")
        .ok_or_else(|| missing_attribute("Reference", "URI"))?;
    let mut children = reference.children().filter(Node::is_element);
    let mut next = children.next();
    let mut enveloped = false;
    let mut c14n = None;
    if let Some(transforms) = next.filter(|n| is_dsig(*n, "Transforms")) {
        next = children.next();
        for transform in transforms.children().filter(Node::is_element) {
            if !is_dsig(transform, "Transform") {
                return Err(unexpected("Transforms", transform));
            }
            let uri = algorithm_attr(transform, "Transform")?;
            if c14n.is_some() {
                // Nothing may follow the canonicalization: it produces octets.
                return Err(SignatureError::TransformSequence);
            }
            if uri == ENVELOPED_SIGNATURE {
                if enveloped {
                    return Err(SignatureError::TransformSequence);
                }
                if let Some(child) = transform.children().find(Node::is_element) {
                    return Err(unexpected("Transform", child));
                }
                enveloped = true;
            } else if let Some(alg) = c14n::Algorithm::from_uri(uri) {
                let prefixes = inclusive_prefixes(transform, alg, "Transform")?;
                c14n = Some((alg, prefixes));
            } else {
                return Err(refused(
                    |algorithm| SignatureError::DisallowedTransform { algorithm },
                    uri,
                ));
            }
        }
    }
    let dm = expect(next, "Reference", "DigestMethod")?;
    let dv = expect(children.next(), "Reference", "DigestValue")?;
    if let Some(extra) = children.next() {
        return Err(unexpected("Reference", extra));
    }
    let dm_uri = algorithm_attr(dm, "DigestMethod")?;
    let digest = DigestAlgorithm::from_uri(dm_uri).ok_or_else(|| {
        refused(
            |algorithm| SignatureError::UnknownDigestAlgorithm { algorithm },
            dm_uri,
        )
    })?;
    if digest == DigestAlgorithm::Sha1 && !allow_sha1 {
        return Err(SignatureError::Sha1NotAllowed);
    }
    let digest_value = base64_text(dv, "DigestValue")?;
    Ok(ReferencePart {
        uri,
        enveloped,
        c14n,
        digest,
        digest_value,
    })
}

/// Checks that `node` is the expected `ds:` element.
fn expect<'a, 'i>(
    node: Option<Node<'a, 'i>>,
    parent: &'static str,
    element: &'static str,
) -> Result<Node<'a, 'i>, SignatureError> {
    match node {
        Some(n) if is_dsig(n, element) => Ok(n),
        Some(n) => Err(unexpected(parent, n)),
        None => Err(missing(parent, element)),
    }
}

// Error construction below is `#[cold]` and out of line: a validation runs this module once
// and never fails, so only the checks should occupy its instruction cache lines.
#[cold]
#[inline(never)]
fn unexpected(parent: &'static str, found: Node<'_, '_>) -> SignatureError {
    SignatureError::UnexpectedElement {
        parent,
        found: expanded_name(found),
    }
}

#[cold]
#[inline(never)]
fn missing(parent: &'static str, element: &'static str) -> SignatureError {
    SignatureError::MissingElement { parent, element }
}

#[cold]
#[inline(never)]
fn missing_attribute(element: &'static str, attribute: &'static str) -> SignatureError {
    SignatureError::MissingAttribute { element, attribute }
}

/// A refused algorithm URI, copied into its error.
#[cold]
#[inline(never)]
fn refused(make: fn(String) -> SignatureError, uri: &str) -> SignatureError {
    make(uri.to_owned())
}

fn algorithm_attr<'a>(
    node: Node<'a, '_>,
    element: &'static str,
) -> Result<&'a str, SignatureError> {
    node.attribute("Algorithm")
        .ok_or_else(|| missing_attribute(element, "Algorithm"))
}

/// The PrefixList of an `ec:InclusiveNamespaces` child (exclusive C14N only); any other
/// child element is refused.
fn inclusive_prefixes<'a>(
    node: Node<'a, '_>,
    algorithm: c14n::Algorithm,
    parent: &'static str,
) -> Result<Vec<&'a str>, SignatureError> {
    let mut prefixes = Vec::new();
    let mut seen = false;
    for child in node.children().filter(Node::is_element) {
        let is_inclusive_ns = child.tag_name().namespace() == Some(EXC_C14N_NS)
            && child.tag_name().name() == "InclusiveNamespaces"
            && matches!(algorithm, c14n::Algorithm::Exclusive { .. })
            && !seen;
        if !is_inclusive_ns {
            return Err(unexpected(parent, child));
        }
        seen = true;
        let list = child.attribute("PrefixList").unwrap_or_default();
        prefixes.extend(
            list.split([' ', '\t', '\r', '\n'])
                .filter(|p| !p.is_empty()),
        );
    }
    Ok(prefixes)
}

/// Decodes base64 from an element's text children; whitespace is ignored, anything but
/// text is refused.
fn base64_text(node: Node<'_, '_>, element: &'static str) -> Result<Vec<u8>, SignatureError> {
    // Bytes, not chars: the whitespace to drop is ASCII, and anything else that is not
    // base64 makes the decoder refuse.
    let mut children = node.children();
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // The common case: one text node with nothing to drop.
    if let (Some(only), None) = (children.next(), children.next()) {
        let text = only.text().unwrap_or_default().as_bytes();
        // Whole words without a space or a control go by eight at a time.
        let tail = text
            .get(crate::scan::skip_ascii(text, 0, [b' '])..)
            .unwrap_or_default();
        if only.is_text() && !tail.iter().any(is_space) {
            return crate::b64::decode(text).ok_or(SignatureError::InvalidBase64 { element });
        }
    }
    let mut compact = Vec::new();
    for child in node.children() {
        if !child.is_text() {
            return Err(SignatureError::NonTextContent { element });
        }
        let text = child.text().unwrap_or_default().as_bytes();
        compact.reserve(text.len());
        compact.extend(text.iter().copied().filter(|b| !is_space(b)));
    }
    crate::b64::decode(&compact).ok_or(SignatureError::InvalidBase64 { element })
}
