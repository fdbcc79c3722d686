//! Enveloped signing: the Signature is spliced into the caller's text as bytes.
//!
//! Re-serializing a parsed tree would change whitespace, quoting and namespace layout of
//! the whole document. Inserting the Signature's bytes at one offset leaves everything
//! else exactly as the caller wrote it, so what we digested is what the caller sends.

use crate::tree::Node;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::reference::{self, is_bare_name};
use super::{DSIG_NS, ENVELOPED_SIGNATURE, SignatureError, VerifyOptions, is_dsig};
use crate::c14n;
use crate::crypto::{Certificate, DigestAlgorithm, KeyError, SignatureAlgorithm, SigningKey};
use crate::error::Error;
use crate::reader::{self, Limits};

/// SAML's assertion namespace, used only for the default insertion point: the SAML
/// schemas require the Signature right after `saml:Issuer`.
const SAML_ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// How to sign. `SignOptions::default()` fits SAML messages and assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// Name of the ID attribute on the element to sign. Default `ID`.
    pub id_attribute: String,
    /// Insert the Signature right after the first child element with this
    /// `(namespace, local name)`, or as the first child if there is none (or this is
    /// `None`). Default: `saml:Issuer`.
    pub insert_after: Option<(String, String)>,
    /// Signature algorithm; default: the key's natural one (RSA-SHA256, or ECDSA with
    /// the curve's hash).
    pub algorithm: Option<SignatureAlgorithm>,
    /// Digest algorithm; default: the signature algorithm's hash.
    pub digest: Option<DigestAlgorithm>,
    /// Limits for parsing the input.
    pub limits: Limits,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            id_attribute: "ID".into(),
            insert_after: Some((SAML_ASSERTION_NS.into(), "Issuer".into())),
            algorithm: None,
            digest: None,
            limits: Limits::default(),
        }
    }
}

/// Signs the element whose ID attribute is `element_id` with an enveloped signature
/// (exclusive C14N, one `#id` Reference) and returns the signed document text. When
/// `certificate` is given it goes into `KeyInfo/X509Data` (for the relying party's
/// information only: our verifier never reads it).
pub fn sign(
    xml: &str,
    element_id: &str,
    key: &SigningKey,
    certificate: Option<&Certificate>,
    options: &SignOptions,
) -> Result<String, Error> {
    let (algorithm, digest) = choose(
        key,
        certificate,
        options.algorithm,
        options.digest,
        element_id,
    )?;

    // 1. Digest the element as it is now. Exclusive C14N of the element with the
    //    Signature removed (the enveloped transform) gives these same bytes, because the
    //    Signature is inserted with no whitespace of its own.
    let doc = reader::parse(xml, &options.limits)?;
    let text = doc.input_text();
    let names = [options.id_attribute.clone()];
    let element = reference::unique_element_by_id(doc.tree(), element_id, &names)?;
    // The verifier checks uniqueness across every usual ID attribute name; a document
    // it would refuse is not worth signing.
    let mut all_names = VerifyOptions::default().id_attributes;
    all_names.push(options.id_attribute.clone());
    let count = reference::id_count(doc.tree(), element_id, &all_names);
    if count != 1 {
        return Err(SignatureError::DuplicateId {
            id: element_id.to_owned(),
            count,
        }
        .into());
    }
    if element.children().any(|n| is_dsig(n, "Signature")) {
        return Err(SignatureError::AlreadySigned.into());
    }
    let mut canonical = Vec::new();
    c14n::canonicalize(
        element,
        c14n::Algorithm::EXCLUSIVE,
        &c14n::Options::default(),
        None,
        &mut canonical,
    )?;
    let digest_value = STANDARD.encode(digest.digest(&canonical));

    // 2. Splice in the Signature with an empty SignatureValue.
    let (offset, self_closing) = insertion_point(element, text, options.insert_after.as_ref())?;
    let template = signature_template(element_id, algorithm, digest, &digest_value, certificate);
    let signature_xml = &template.xml;
    let (head, tail) = split(text, offset)?;
    let mut signed = String::with_capacity(text.len() + signature_xml.len() + 64);
    signed.push_str(head);
    let signature_start = match self_closing {
        None => {
            let start = signed.len();
            signed.push_str(signature_xml);
            signed.push_str(tail);
            start
        }
        Some(qname) => {
            // `<x .../>` becomes `<x ...>SIGNATURE</x>`; `offset` is at the `/`.
            signed.push('>');
            let start = signed.len();
            signed.push_str(signature_xml);
            signed.push_str("</");
            signed.push_str(qname);
            signed.push('>');
            signed.push_str(tail.strip_prefix("/>").unwrap_or(tail));
            start
        }
    };
    finish(signed, &template, signature_start, algorithm, key)
}

/// Signs an element that the caller wrote in its own exclusive canonical form, without
/// parsing it: `canonical` is the element's whole text, exactly what exclusive C14N
/// (without comments) of it gives, with no Signature yet; the Signature goes at byte
/// `insert_at` (for SAML, right after the Issuer). The digest is taken over `canonical`
/// as given.
///
/// This is for a writer that produces canonical output by construction (the SAML crate's
/// assertions), where parsing and canonicalizing its own fresh output again was most of
/// the cost of issuing with a fast key. Text that is not in canonical form yields a
/// signature no verifier accepts, never a weaker one; the caller's tests compare its
/// output with [`crate::c14n`] of the parsed text.
pub fn sign_canonical(
    canonical: &str,
    element_id: &str,
    insert_at: usize,
    key: &SigningKey,
    certificate: Option<&Certificate>,
    algorithm: Option<SignatureAlgorithm>,
) -> Result<String, Error> {
    let (algorithm, digest) = choose(key, certificate, algorithm, None, element_id)?;
    let digest_value = STANDARD.encode(digest.digest(canonical.as_bytes()));
    let template = signature_template(element_id, algorithm, digest, &digest_value, certificate);
    let (head, tail) = split(canonical, insert_at)?;
    let mut signed = String::with_capacity(canonical.len() + template.xml.len() + 512);
    signed.push_str(head);
    let signature_start = signed.len();
    signed.push_str(&template.xml);
    signed.push_str(tail);
    finish(signed, &template, signature_start, algorithm, key)
}

/// The algorithms to sign with, after the checks every signing makes: an algorithm that
/// signs and fits the key, no SHA-1 digest, a certificate of this very key, a bare-name ID.
fn choose(
    key: &SigningKey,
    certificate: Option<&Certificate>,
    algorithm: Option<SignatureAlgorithm>,
    digest: Option<DigestAlgorithm>,
    element_id: &str,
) -> Result<(SignatureAlgorithm, DigestAlgorithm), Error> {
    let algorithm = algorithm.unwrap_or_else(|| key.default_algorithm());
    if !algorithm.can_sign() {
        return Err(KeyError::VerifyOnly(algorithm).into());
    }
    if !key.kind().fits(algorithm) {
        return Err(KeyError::AlgorithmKeyMismatch {
            algorithm,
            key: key.kind(),
        }
        .into());
    }
    let digest = digest.unwrap_or(match algorithm {
        SignatureAlgorithm::RsaSha384 | SignatureAlgorithm::EcdsaSha384 => DigestAlgorithm::Sha384,
        SignatureAlgorithm::RsaSha512 | SignatureAlgorithm::EcdsaSha512 => DigestAlgorithm::Sha512,
        _ => DigestAlgorithm::Sha256,
    });
    if digest == DigestAlgorithm::Sha1 {
        return Err(SignatureError::UnsupportedForSigning("SHA-1 digests").into());
    }
    if let Some(cert) = certificate
        && cert.verifying_key() != key.verifying_key()
    {
        // A KeyInfo naming another key would send relying parties to the wrong
        // certificate when they configure trust.
        return Err(KeyError::CertificateMismatch.into());
    }
    if !is_bare_name(element_id) {
        return Err(SignatureError::InvalidId {
            id: element_id.to_owned(),
        }
        .into());
    }
    Ok((algorithm, digest))
}

/// 3. Signs the SignedInfo's canonical form and puts the value into the empty
///    SignatureValue.
///
/// The template writes the SignedInfo in canonical form already, so its canonical bytes
/// are its text with the `ds` declaration it inherits from the Signature: exclusive C14N
/// renders only namespaces the SignedInfo visibly uses, and it uses only the `ds` prefix
/// (its attributes are unprefixed), so no ancestor can change the bytes. A test compares
/// them with the C14N of the parsed template for every algorithm.
fn finish(
    mut signed: String,
    template: &Template,
    signature_start: usize,
    algorithm: SignatureAlgorithm,
    key: &SigningKey,
) -> Result<String, Error> {
    let value = STANDARD.encode(key.sign(algorithm, template.canonical_signed_info().as_bytes())?);
    let at = signature_start.saturating_add(template.value_at);
    if !signed.is_char_boundary(at) {
        return Err(SignatureError::Splice.into());
    }
    signed.insert_str(at, &value);
    Ok(signed)
}

fn split(text: &str, at: usize) -> Result<(&str, &str), Error> {
    match (text.get(..at), text.get(at..)) {
        (Some(head), Some(tail)) => Ok((head, tail)),
        _ => Err(SignatureError::Splice.into()),
    }
}

/// Where the Signature goes: after the chosen child, else right after the start tag.
/// For a self-closing element, returns the offset of its `/>` and its qualified name.
fn insertion_point<'t>(
    element: Node<'_, '_>,
    text: &'t str,
    after: Option<&(String, String)>,
) -> Result<(usize, Option<&'t str>), Error> {
    if let Some((ns, local)) = after {
        let child = element.children().find(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(ns.as_str())
                && c.tag_name().name() == local
        });
        if let Some(child) = child {
            return Ok((child.range().end, None));
        }
    }
    let start = element.range().start;
    let bytes = text.as_bytes();
    let mut quote = None;
    let mut i = start.saturating_add(1);
    while let Some(&b) = bytes.get(i) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => {
                if i > 0 && bytes.get(i - 1) == Some(&b'/') {
                    let name_end = text
                        .get(start + 1..)
                        .and_then(|s| s.find(|c: char| c.is_whitespace() || c == '/' || c == '>'))
                        .map_or(i - 1, |n| start + 1 + n);
                    let qname = text.get(start + 1..name_end).unwrap_or_default();
                    return Ok((i - 1, Some(qname)));
                }
                return Ok((i + 1, None));
            }
            (None, _) => {}
        }
        i += 1;
    }
    Err(SignatureError::Splice.into())
}

/// The Signature element with an empty SignatureValue.
struct Template {
    xml: String,
    /// Where, within `xml`, the SignatureValue goes.
    value_at: usize,
    /// Where the SignedInfo's content starts and ends (after `<ds:SignedInfo`, up to and
    /// including `</ds:SignedInfo>`).
    signed_info: std::ops::Range<usize>,
}

impl Template {
    /// The SignedInfo as exclusive C14N renders it: the text as written (in canonical
    /// form: start and end tags, attributes that need no escaping), with the `ds`
    /// declaration it inherits from the Signature.
    fn canonical_signed_info(&self) -> String {
        let rest = self.xml.get(self.signed_info.clone()).unwrap_or_default();
        let mut out = String::with_capacity(rest.len() + 64);
        out.push_str("<ds:SignedInfo xmlns:ds=\"");
        out.push_str(DSIG_NS);
        out.push('"');
        out.push_str(rest);
        out
    }
}

fn signature_template(
    id: &str,
    algorithm: SignatureAlgorithm,
    digest: DigestAlgorithm,
    digest_value: &str,
    certificate: Option<&Certificate>,
) -> Template {
    let mut s = String::with_capacity(2048);
    s.push_str("<ds:Signature xmlns:ds=\"");
    s.push_str(DSIG_NS);
    s.push_str("\"><ds:SignedInfo");
    let signed_info_start = s.len();
    s.push_str("><ds:CanonicalizationMethod Algorithm=\"");
    s.push_str(c14n::Algorithm::EXCLUSIVE.uri());
    s.push_str("\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"");
    s.push_str(algorithm.uri());
    s.push_str("\"></ds:SignatureMethod><ds:Reference URI=\"#");
    s.push_str(id);
    s.push_str("\"><ds:Transforms><ds:Transform Algorithm=\"");
    s.push_str(ENVELOPED_SIGNATURE);
    s.push_str("\"></ds:Transform><ds:Transform Algorithm=\"");
    s.push_str(c14n::Algorithm::EXCLUSIVE.uri());
    s.push_str("\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"");
    s.push_str(digest.uri());
    s.push_str("\"></ds:DigestMethod><ds:DigestValue>");
    s.push_str(digest_value);
    s.push_str("</ds:DigestValue></ds:Reference></ds:SignedInfo>");
    let signed_info_end = s.len();
    s.push_str("<ds:SignatureValue>");
    let value_at = s.len();
    s.push_str("</ds:SignatureValue>");
    if let Some(cert) = certificate {
        s.push_str("<ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
        s.push_str(cert.base64());
        s.push_str("</ds:X509Certificate></ds:X509Data></ds:KeyInfo>");
    }
    s.push_str("</ds:Signature>");
    Template {
        xml: s,
        value_at,
        signed_info: signed_info_start..signed_info_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SignatureAlgorithm as A;

    /// The SignedInfo bytes that are signed are exactly the exclusive C14N of the
    /// SignedInfo in the document, for every algorithm we sign with.
    #[test]
    fn the_signed_info_is_written_in_its_canonical_form() {
        for algorithm in [
            A::RsaSha256,
            A::RsaSha384,
            A::RsaSha512,
            A::EcdsaSha256,
            A::EcdsaSha384,
        ] {
            for digest in [
                DigestAlgorithm::Sha256,
                DigestAlgorithm::Sha384,
                DigestAlgorithm::Sha512,
            ] {
                let t = signature_template("_a1-b.2", algorithm, digest, "q83v+/A=", None);
                let doc = reader::parse(&t.xml, &Limits::default()).unwrap();
                let signed_info = doc.root_element().first_element_child().unwrap();
                let c14n = c14n::canonicalize_to_vec(
                    signed_info,
                    c14n::Algorithm::EXCLUSIVE,
                    &c14n::Options::default(),
                    None,
                )
                .unwrap();
                assert_eq!(
                    String::from_utf8(c14n).unwrap(),
                    t.canonical_signed_info(),
                    "{algorithm:?} {digest:?}"
                );
            }
        }
    }
}
