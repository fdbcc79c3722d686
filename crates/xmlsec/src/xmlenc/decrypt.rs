//! Decrypting an `EncryptedData` element of type Element.
//!
//! The work is in two phases, and the order is the security property:
//!
//! 1. Read the whole structure, every algorithm and every EncryptedKey, and check them
//!    all against the allow-list. Errors here are typed and detailed: they depend only
//!    on what the sender wrote, never on a key.
//! 2. Unwrap the content key, decrypt, and check that the plaintext is one well-formed
//!    element. Every failure here is [`EncryptionError::DecryptionFailed`].

use crate::tree::Node;
use zeroize::Zeroizing;

use super::algorithm::{DataAlgorithm, KeyTransport};
use super::key::DecryptionKey;
use super::{
    EncryptionError, MAX_ENCRYPTED_KEYS, TYPE_ELEMENT, TYPE_ENCRYPTED_KEY, XENC_NS, cipher,
    namespace,
};
use crate::dsig::DSIG_NS;
use crate::error::Error;
use crate::reader::{self, Limits};

/// What may be decrypted. The default allows every algorithm this module implements;
/// see the module's security notes before accepting CBC from senders whose ciphertext
/// is not covered by a verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptOptions {
    /// Content ciphers accepted.
    pub data_algorithms: Vec<DataAlgorithm>,
    /// Key transports accepted.
    pub key_transports: Vec<KeyTransport>,
    /// Limits for parsing the plaintext.
    pub limits: Limits,
}

impl Default for DecryptOptions {
    fn default() -> Self {
        Self {
            data_algorithms: DataAlgorithm::ALL.to_vec(),
            key_transports: KeyTransport::ALL.to_vec(),
            limits: Limits::default(),
        }
    }
}

impl DecryptOptions {
    /// GCM only: no unauthenticated cipher is accepted at all.
    pub fn gcm_only() -> Self {
        Self {
            data_algorithms: vec![DataAlgorithm::Aes128Gcm, DataAlgorithm::Aes256Gcm],
            ..Self::default()
        }
    }

    /// The defaults with these content ciphers and key transports.
    pub fn new(data_algorithms: Vec<DataAlgorithm>, key_transports: Vec<KeyTransport>) -> Self {
        Self {
            data_algorithms,
            key_transports,
            ..Self::default()
        }
    }
}

/// A decrypted element.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decrypted {
    /// The element's text, with the namespace declarations it inherited at the
    /// EncryptedData's position copied onto it, so it parses on its own. Not yet
    /// trusted: check its signature.
    pub xml: String,
    /// The content cipher the sender used (a caller may treat CBC more strictly).
    pub data_algorithm: DataAlgorithm,
    /// The key transport the sender used.
    pub key_transport: KeyTransport,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The plaintext is personal data: keep it out of logs.
        f.debug_struct("Decrypted")
            .field("len", &self.xml.len())
            .field("data_algorithm", &self.data_algorithm)
            .field("key_transport", &self.key_transport)
            .finish()
    }
}

/// One EncryptedKey, read and checked, not yet used.
struct WrappedKey {
    transport: KeyTransport,
    label: Vec<u8>,
    value: Vec<u8>,
}

/// Decrypts `encrypted_data` (an `xenc:EncryptedData` of type Element) with one of
/// `keys`.
///
/// The content key is taken from EncryptedKeys inside its KeyInfo, or through a
/// `RetrievalMethod` (bare-name `#id`) from `detached_keys`; when KeyInfo names none,
/// every element of `detached_keys` is tried in order. `detached_keys` are the
/// EncryptedKey elements that a container places beside the EncryptedData (SAML's
/// `EncryptedAssertion` does); pass `&[]` when there are none.
///
/// # Security
/// The result is authentic only as far as a signature says so: verify it.
pub fn decrypt_element(
    encrypted_data: Node<'_, '_>,
    detached_keys: &[Node<'_, '_>],
    keys: &[DecryptionKey],
    options: &DecryptOptions,
) -> Result<Decrypted, Error> {
    // Phase 1: structure and algorithms.
    if !is_xenc(encrypted_data, "EncryptedData") {
        return Err(EncryptionError::UnexpectedElement {
            parent: "(input)",
            found: expanded_name(encrypted_data),
        }
        .into());
    }
    if let Some(t) = encrypted_data.attribute("Type")
        && t != TYPE_ELEMENT
    {
        return Err(EncryptionError::UnsupportedType(t.to_owned()).into());
    }
    let parts = EncryptedParts::read(encrypted_data, "EncryptedData")?;
    let method = parts.method.ok_or(EncryptionError::MissingElement {
        parent: "EncryptedData",
        element: "EncryptionMethod",
    })?;
    let data_algorithm = read_data_algorithm(method)?;
    if !options.data_algorithms.contains(&data_algorithm) {
        return Err(EncryptionError::DataAlgorithmNotAllowed(data_algorithm).into());
    }
    let key_nodes = find_encrypted_keys(parts.key_info, detached_keys)?;
    let mut wrapped = Vec::with_capacity(key_nodes.len());
    for node in key_nodes {
        let w = read_encrypted_key(node)?;
        if !options.key_transports.contains(&w.transport) {
            return Err(EncryptionError::KeyTransportNotAllowed(w.transport).into());
        }
        wrapped.push(w);
    }
    if keys.is_empty() {
        return Err(EncryptionError::NoDecryptionKey.into());
    }

    // Phase 2: from here on, every failure is the same error.
    let failed = || Error::from(EncryptionError::DecryptionFailed);
    let content_key = unwrap_first(&wrapped, keys, data_algorithm.key_len()).ok_or_else(failed)?;
    let transport = content_key.1;
    let plaintext =
        cipher::decrypt(data_algorithm, &content_key.0, &parts.cipher_value).ok_or_else(failed)?;
    let context = encrypted_data.parent_element();
    let xml = element_in_context(&plaintext, context, &options.limits).ok_or_else(failed)?;
    Ok(Decrypted {
        xml,
        data_algorithm,
        key_transport: transport,
    })
}

/// Tries every EncryptedKey with every key; the first unwrap that yields a key of the
/// right length wins.
fn unwrap_first(
    wrapped: &[WrappedKey],
    keys: &[DecryptionKey],
    key_len: usize,
) -> Option<(Zeroizing<Vec<u8>>, KeyTransport)> {
    wrapped.iter().find_map(|w| {
        keys.iter().find_map(|k| {
            k.unwrap_key(w.transport, &w.value, &w.label)
                .filter(|ck| ck.len() == key_len)
                .map(|ck| (ck, w.transport))
        })
    })
}

/// The plaintext as the text of one element, with the declarations it inherits at the
/// EncryptedData's position: parsed inside a wrapper that declares what is in scope
/// there, so a prefix declared by an ancestor resolves as it would in place.
fn element_in_context(
    plaintext: &[u8],
    context: Option<Node<'_, '_>>,
    limits: &Limits,
) -> Option<String> {
    let plaintext = std::str::from_utf8(plaintext)
        .ok()?
        .trim_matches(|c: char| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let scope: Vec<(&str, &str)> = context
        .map(|c| {
            c.namespaces()
                .map(|ns| (ns.name().unwrap_or(""), ns.uri()))
                .filter(|(p, _)| *p != "xml")
                .collect()
        })
        .unwrap_or_default();
    let wrapper = namespace::with_declarations("<w>", &scope)?;
    let mut text = String::with_capacity(wrapper.len() + plaintext.len() + 4);
    text.push_str(&wrapper);
    text.push_str(plaintext);
    text.push_str("</w>");
    let doc = reader::parse(&text, limits).ok()?;
    let root = doc.root_element();
    // Exactly one child node, an element that spans the whole plaintext: no text, no
    // comment, no processing instruction beside it.
    let mut children = root.children();
    let element = children.next().filter(Node::is_element)?;
    if children.next().is_some() {
        return None;
    }
    let element_text = text.get(element.range())?;
    if element_text.len() != plaintext.len() {
        return None;
    }
    let inherited = namespace::inherited(element, &text);
    if inherited.is_empty() {
        return Some(element_text.to_owned());
    }
    let fixed = namespace::with_declarations(element_text, &inherited)?;
    // The result must stand alone; parse it once more to be sure.
    reader::parse(&fixed, limits).ok()?;
    Some(fixed)
}

/// The children of an EncryptedData or EncryptedKey that we use.
struct EncryptedParts<'a, 'i> {
    method: Option<Node<'a, 'i>>,
    key_info: Option<Node<'a, 'i>>,
    cipher_value: Vec<u8>,
}

impl<'a, 'i> EncryptedParts<'a, 'i> {
    /// Reads `EncryptionMethod? ds:KeyInfo? CipherData EncryptionProperties?` (and, for
    /// an EncryptedKey, `ReferenceList? CarriedKeyName?` after them), in that order.
    fn read(node: Node<'a, 'i>, parent: &'static str) -> Result<Self, EncryptionError> {
        let mut method = None;
        let mut key_info = None;
        let mut cipher_data = None;
        let mut stage = 0u8;
        for child in node.children().filter(Node::is_element) {
            let tag = child.tag_name();
            let this = match (tag.namespace(), tag.name()) {
                (Some(XENC_NS), "EncryptionMethod") if stage < 1 => {
                    method = Some(child);
                    1
                }
                (Some(DSIG_NS), "KeyInfo") if stage < 2 => {
                    key_info = Some(child);
                    2
                }
                (Some(XENC_NS), "CipherData") if stage < 3 => {
                    cipher_data = Some(child);
                    3
                }
                (Some(XENC_NS), "EncryptionProperties") if stage < 4 => 4,
                (Some(XENC_NS), "ReferenceList") if stage < 5 && parent == "EncryptedKey" => 5,
                (Some(XENC_NS), "CarriedKeyName") if stage < 6 && parent == "EncryptedKey" => 6,
                _ => {
                    return Err(EncryptionError::UnexpectedElement {
                        parent,
                        found: expanded_name(child),
                    });
                }
            };
            stage = this;
        }
        let cipher_data = cipher_data.ok_or(EncryptionError::MissingElement {
            parent,
            element: "CipherData",
        })?;
        Ok(Self {
            method,
            key_info,
            cipher_value: read_cipher_data(cipher_data)?,
        })
    }
}

/// Rule: CipherData holds one CipherValue (CipherReference is refused).
fn read_cipher_data(cipher_data: Node<'_, '_>) -> Result<Vec<u8>, EncryptionError> {
    let mut children = cipher_data.children().filter(Node::is_element);
    let value = match children.next() {
        Some(c) if is_xenc(c, "CipherValue") => c,
        Some(c) if is_xenc(c, "CipherReference") => return Err(EncryptionError::CipherReference),
        Some(c) => {
            return Err(EncryptionError::UnexpectedElement {
                parent: "CipherData",
                found: expanded_name(c),
            });
        }
        None => {
            return Err(EncryptionError::MissingElement {
                parent: "CipherData",
                element: "CipherValue",
            });
        }
    };
    if let Some(extra) = children.next() {
        return Err(EncryptionError::UnexpectedElement {
            parent: "CipherData",
            found: expanded_name(extra),
        });
    }
    base64_text(value, "CipherValue")
}

/// The content cipher named by EncryptedData's EncryptionMethod. A `KeySize` child is
/// tolerated (it restates the key length); nothing else is.
fn read_data_algorithm(method: Node<'_, '_>) -> Result<DataAlgorithm, EncryptionError> {
    let uri = method
        .attribute("Algorithm")
        .ok_or(EncryptionError::MissingAttribute {
            element: "EncryptionMethod",
            attribute: "Algorithm",
        })?;
    let algorithm =
        DataAlgorithm::from_uri(uri).ok_or_else(|| EncryptionError::UnknownDataAlgorithm {
            algorithm: uri.to_owned(),
        })?;
    if let Some(child) = method
        .children()
        .filter(Node::is_element)
        .find(|c| !is_xenc(*c, "KeySize"))
    {
        return Err(EncryptionError::UnexpectedElement {
            parent: "EncryptionMethod",
            found: expanded_name(child),
        });
    }
    Ok(algorithm)
}

/// The EncryptedKeys to try: those inside KeyInfo, those a RetrievalMethod names among
/// `detached`, or, when KeyInfo names none, all of `detached`.
fn find_encrypted_keys<'a, 'i>(
    key_info: Option<Node<'a, 'i>>,
    detached: &[Node<'a, 'i>],
) -> Result<Vec<Node<'a, 'i>>, EncryptionError> {
    let mut found = Vec::new();
    let mut named_any = false;
    for child in key_info
        .iter()
        .flat_map(|k| k.children())
        .filter(Node::is_element)
    {
        if is_xenc(child, "EncryptedKey") {
            named_any = true;
            found.push(child);
        } else if child.tag_name().namespace() == Some(DSIG_NS)
            && child.tag_name().name() == "RetrievalMethod"
            && child.attribute("Type") == Some(TYPE_ENCRYPTED_KEY)
        {
            named_any = true;
            let uri = child.attribute("URI").unwrap_or_default();
            let target = uri
                .strip_prefix('#')
                .filter(|id| !id.is_empty())
                .and_then(|id| {
                    let mut hits = detached.iter().filter(|n| n.attribute("Id") == Some(id));
                    let first = hits.next().copied();
                    // Two candidates with one ID would make the choice ambiguous.
                    hits.next().is_none().then_some(first).flatten()
                })
                .filter(|n| is_xenc(*n, "EncryptedKey"))
                .ok_or_else(|| EncryptionError::UnresolvedRetrievalMethod {
                    uri: uri.to_owned(),
                })?;
            found.push(target);
        }
        // Other KeyInfo content (KeyName, X509Data...) is a hint about our key; the
        // caller's configuration decides which keys to use, so it is ignored.
    }
    if !named_any {
        found.extend(
            detached
                .iter()
                .copied()
                .filter(|n| is_xenc(*n, "EncryptedKey")),
        );
    }
    if found.is_empty() {
        return Err(EncryptionError::NoEncryptedKey);
    }
    if found.len() > MAX_ENCRYPTED_KEYS {
        return Err(EncryptionError::TooManyEncryptedKeys {
            limit: MAX_ENCRYPTED_KEYS,
        });
    }
    Ok(found)
}

fn read_encrypted_key(node: Node<'_, '_>) -> Result<WrappedKey, EncryptionError> {
    let parts = EncryptedParts::read(node, "EncryptedKey")?;
    let method = parts.method.ok_or(EncryptionError::MissingElement {
        parent: "EncryptedKey",
        element: "EncryptionMethod",
    })?;
    let (transport, label) = KeyTransport::from_method(method)?;
    Ok(WrappedKey {
        transport,
        label,
        value: parts.cipher_value,
    })
}

/// Base64 from an element that holds text only (a comment or child element inside is
/// refused rather than skipped). XML whitespace is ignored.
pub(super) fn base64_text(
    node: Node<'_, '_>,
    element: &'static str,
) -> Result<Vec<u8>, EncryptionError> {
    let mut compact = String::new();
    for child in node.children() {
        let text = child
            .is_text()
            .then(|| child.text())
            .flatten()
            .ok_or(EncryptionError::InvalidBase64 { element })?;
        compact.extend(
            text.chars()
                .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n')),
        );
    }
    crate::b64::decode(compact.as_bytes()).ok_or(EncryptionError::InvalidBase64 { element })
}

fn is_xenc(node: Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(XENC_NS)
        && node.tag_name().name() == local
}

/// `{namespace}local` of a node, for error messages.
pub(super) fn expanded_name(node: Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace() {
        Some(ns) => format!("{{{ns}}}{}", tag.name()),
        None => tag.name().to_owned(),
    }
}
