//! Encrypting one element for one recipient.
//!
//! The plaintext is the element's bytes exactly as they stand in the caller's text
//! (after the inherited namespace declarations are copied onto it, see
//! [`super::namespace`]), so a signature inside it verifies after decryption.

use crate::tree::Node;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::algorithm::{DataAlgorithm, KeyTransport};
use super::{EncryptionError, TYPE_ELEMENT, XENC_NS, cipher, key, namespace};
use crate::crypto::Certificate;
use crate::dsig::DSIG_NS;
use crate::error::Error;
use crate::reader::{self, Limits};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// How to encrypt. The default is AES-256-GCM with RSA-OAEP (MGF1-SHA-1), which every
/// current SAML stack decrypts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptOptions {
    /// The content cipher. Default AES-256-GCM.
    pub data: DataAlgorithm,
    /// The key transport. Default `rsa-oaep-mgf1p` with SHA-1.
    pub key_transport: KeyTransport,
    /// Put the recipient's certificate in the EncryptedKey's KeyInfo, so a recipient
    /// with several keys can tell which one to use. Default off.
    pub include_certificate: bool,
    /// Name of the ID attribute that identifies the element. Default `ID`.
    pub id_attribute: String,
    /// Limits for parsing the input.
    pub limits: Limits,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            data: DataAlgorithm::Aes256Gcm,
            key_transport: KeyTransport::RsaOaepMgf1Sha1,
            include_certificate: false,
            id_attribute: "ID".into(),
            limits: Limits::default(),
        }
    }
}

impl EncryptOptions {
    /// The defaults with another content cipher and key transport.
    pub fn new(data: DataAlgorithm, key_transport: KeyTransport) -> Self {
        Self {
            data,
            key_transport,
            ..Self::default()
        }
    }
}

/// Encrypts the element whose ID attribute is `element_id` for the holder of
/// `recipient`'s private key, and returns the `xenc:EncryptedData` element (Type
/// Element, with the EncryptedKey inside its KeyInfo) as text. The caller puts it where
/// the element was, or inside a wrapper such as SAML's `EncryptedAssertion`.
///
/// The certificate is trusted as given: it is the caller's configuration (the
/// recipient's metadata), so nothing here checks its dates or issuer.
pub fn encrypt_element(
    xml: &str,
    element_id: &str,
    recipient: &Certificate,
    options: &EncryptOptions,
) -> Result<String, Error> {
    let doc = reader::parse(xml, &options.limits)?;
    let text = doc.input_text();
    let mut matches = doc.tree().descendants().filter(|n| {
        n.is_element() && n.attribute(options.id_attribute.as_str()) == Some(element_id)
    });
    let element = matches
        .next()
        .ok_or_else(|| EncryptionError::ElementNotFound {
            id: element_id.to_owned(),
        })?;
    let extra = matches.count();
    if extra > 0 {
        return Err(EncryptionError::DuplicateId {
            id: element_id.to_owned(),
            count: extra + 1,
        }
        .into());
    }
    check_qname_values(element)?;
    let own = text
        .get(element.range())
        .ok_or(EncryptionError::EncryptionFailed)?;
    let inherited = namespace::inherited(element, text);
    let plaintext = if inherited.is_empty() {
        own.to_owned()
    } else {
        namespace::with_declarations(own, &inherited).ok_or(EncryptionError::EncryptionFailed)?
    };
    encrypt_plaintext(plaintext.as_bytes(), recipient, options)
}

/// Rule: every `xsi:type` value's prefix is in scope. A prefix used only inside an
/// attribute value is invisible to the parser, so without this check an element could
/// be encrypted with a type name the recipient cannot resolve.
fn check_qname_values(element: Node<'_, '_>) -> Result<(), EncryptionError> {
    for node in element.descendants().filter(Node::is_element) {
        let Some(value) = node.attribute((XSI_NS, "type")) else {
            continue;
        };
        if let Some((prefix, _)) = value.trim().split_once(':')
            && node.lookup_namespace_uri(Some(prefix)).is_none()
        {
            return Err(EncryptionError::UndeclaredPrefix {
                prefix: prefix.to_owned(),
                attribute: "xsi:type".into(),
            });
        }
    }
    Ok(())
}

/// Builds the EncryptedData for `plaintext`, the text of one element.
fn encrypt_plaintext(
    plaintext: &[u8],
    recipient: &Certificate,
    options: &EncryptOptions,
) -> Result<String, Error> {
    let mut content_key = Zeroizing::new(vec![0u8; options.data.key_len()]);
    SystemRandom::new()
        .fill(&mut content_key)
        .map_err(|_| EncryptionError::EncryptionFailed)?;
    let wrapped = key::wrap_key(recipient, options.key_transport, &content_key)?;
    let ciphertext = cipher::encrypt(options.data, &content_key, plaintext)
        .ok_or(EncryptionError::EncryptionFailed)?;

    let mut s = String::with_capacity(ciphertext.len() * 4 / 3 + 2048);
    s.push_str("<xenc:EncryptedData xmlns:xenc=\"");
    s.push_str(XENC_NS);
    s.push_str("\" Type=\"");
    s.push_str(TYPE_ELEMENT);
    s.push_str("\"><xenc:EncryptionMethod Algorithm=\"");
    s.push_str(options.data.uri());
    s.push_str("\"/><ds:KeyInfo xmlns:ds=\"");
    s.push_str(DSIG_NS);
    s.push_str("\"><xenc:EncryptedKey>");
    s.push_str(&options.key_transport.method_xml());
    if options.include_certificate {
        s.push_str("<ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
        s.push_str(&recipient.to_base64());
        s.push_str("</ds:X509Certificate></ds:X509Data></ds:KeyInfo>");
    }
    s.push_str("<xenc:CipherData><xenc:CipherValue>");
    s.push_str(&STANDARD.encode(&wrapped));
    s.push_str("</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>");
    s.push_str("<xenc:CipherData><xenc:CipherValue>");
    s.push_str(&STANDARD.encode(&ciphertext));
    s.push_str("</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>");
    Ok(s)
}
