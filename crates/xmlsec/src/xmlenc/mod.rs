//! XML Encryption: an element encrypted for one recipient (`EncryptedData` of type
//! Element, its content key wrapped in an `EncryptedKey` with RSA-OAEP), and back.
//!
//! Only what SAML needs, and only algorithms that hold up today:
//!
//! * data: AES-256-GCM (the default), AES-128-GCM, and AES-128/256-CBC for relying
//!   parties that know nothing newer;
//! * key transport: RSA-OAEP with SHA-1 and MGF1-SHA-1 (`rsa-oaep-mgf1p`, which every
//!   SAML stack reads), or XML-Enc 1.1 `rsa-oaep` with SHA-256 and MGF1-SHA-256.
//!
//! ```
//! use latchkey_xmlsec::crypto::Certificate;
//! use latchkey_xmlsec::{reader, xmlenc};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
//! # let cert_pem = rcgen::CertificateParams::new(vec!["sp".into()])?.self_signed(&kp)?.pem();
//! # let key_pem = kp.serialize_pem();
//! let cert = Certificate::from_pem(&cert_pem)?;
//! let xml = r#"<a:Secret xmlns:a="urn:example" ID="_s1">42</a:Secret>"#;
//! let encrypted = xmlenc::encrypt_element(xml, "_s1", &cert, &xmlenc::EncryptOptions::default())?;
//!
//! let key = xmlenc::DecryptionKey::from_pem(&key_pem)?;
//! let doc = reader::parse(&encrypted, &reader::Limits::default())?;
//! let options = xmlenc::DecryptOptions::default();
//! let plain = xmlenc::decrypt_element(doc.root_element(), &[], &[key], &options)?;
//! assert_eq!(plain.xml, xml);
//! # Ok(()) }
//! ```
//!
//! # Security
//! * RSA PKCS#1 v1.5 key transport (`rsa-1_5`) is refused before any key is touched: it
//!   is a Bleichenbacher oracle in every deployment that has been studied.
//! * Every algorithm is checked against the caller's allow-list before any decryption.
//!   After that point every failure (wrong key, OAEP check, key length, GCM tag, CBC
//!   padding, plaintext that is not UTF-8 XML of one element) is the one error
//!   [`EncryptionError::DecryptionFailed`], with no detail, so that the error itself
//!   is not a padding or format oracle.
//! * That is not enough on its own for CBC, which has no integrity: Jager and
//!   Somorovsky ("How to break XML encryption", 2011) decrypt CBC ciphertexts through
//!   *any* observable difference in how the plaintext is handled afterwards, including
//!   a signature check that fails differently from a decryption. A caller accepting
//!   CBC must either authenticate the ciphertext first (verify a signature that covers
//!   the `EncryptedData`, such as a signed SAML Response) or report every failure after
//!   decryption the same way. GCM is not affected.
//! * A decrypted element is not trusted for being decrypted: anyone with the public key
//!   can encrypt. It must be signature-checked like any other.

mod algorithm;
mod cipher;
mod decrypt;
mod encrypt;
mod key;
mod namespace;

pub use algorithm::{DataAlgorithm, KeyTransport};
pub use decrypt::{DecryptOptions, Decrypted, decrypt_element};
pub use encrypt::{EncryptOptions, encrypt_element};
pub use key::DecryptionKey;

/// The XML Encryption 1.0 namespace (`xenc:`).
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
/// The XML Encryption 1.1 namespace (`xenc11:`), for `MGF`.
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
/// `EncryptedData/@Type` for an encrypted element.
pub const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";
/// `RetrievalMethod/@Type` pointing at an `EncryptedKey`.
pub const TYPE_ENCRYPTED_KEY: &str = "http://www.w3.org/2001/04/xmlenc#EncryptedKey";
/// RSA PKCS#1 v1.5 key transport, named only to be refused.
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
/// Most EncryptedKeys tried for one EncryptedData, so that one message cannot cost an
/// unbounded number of RSA operations.
pub const MAX_ENCRYPTED_KEYS: usize = 4;

/// Why an element could not be encrypted or decrypted. Each variant is one rule, except
/// [`EncryptionError::DecryptionFailed`], which is deliberately all of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// Rule: RSA PKCS#1 v1.5 key transport is refused, whatever the allow-list says.
    #[error("RSA PKCS#1 v1.5 key transport (rsa-1_5) is refused")]
    RsaPkcs1v15Refused,
    /// Rule: the data encryption algorithm is one we do not implement (or one we
    /// refuse, such as 3DES or AES-192).
    #[error("unknown data encryption algorithm {algorithm:?}")]
    UnknownDataAlgorithm {
        /// The `EncryptionMethod/@Algorithm`.
        algorithm: String,
    },
    /// Rule: the data encryption algorithm is known but not on the caller's allow-list.
    #[error("data encryption algorithm {0:?} is not allowed")]
    DataAlgorithmNotAllowed(DataAlgorithm),
    /// Rule: the key transport algorithm is one we do not implement (key wrapping,
    /// key agreement, anything but RSA-OAEP).
    #[error("unknown key transport algorithm {algorithm:?}")]
    UnknownKeyTransport {
        /// The `EncryptedKey/EncryptionMethod/@Algorithm`.
        algorithm: String,
    },
    /// Rule: RSA-OAEP parameters we do not support: the digest and MGF hash must both
    /// be SHA-1 or both SHA-256.
    #[error("unsupported RSA-OAEP parameters (digest {digest:?}, MGF {mgf:?})")]
    UnsupportedOaepParameters {
        /// The DigestMethod algorithm (empty: the default, SHA-1).
        digest: String,
        /// The MGF algorithm (empty: the default, MGF1 with SHA-1).
        mgf: String,
    },
    /// Rule: the key transport is known but not on the caller's allow-list.
    #[error("key transport {0:?} is not allowed")]
    KeyTransportNotAllowed(KeyTransport),
    /// Rule: `EncryptedData/@Type`, when present, is Element: we only ever decrypt
    /// whole elements.
    #[error("EncryptedData type {0:?} is not supported (only Element)")]
    UnsupportedType(String),
    /// An element the XML Encryption schema requires is absent.
    #[error("missing {element} in {parent}")]
    MissingElement {
        /// The element whose content is incomplete.
        parent: &'static str,
        /// What should have been there.
        element: &'static str,
    },
    /// An element where we allow none (or a second one where one is allowed).
    #[error("unexpected element {found} in {parent}")]
    UnexpectedElement {
        /// The element whose content is wrong.
        parent: &'static str,
        /// The offending child, as `{namespace}local`.
        found: String,
    },
    /// A required attribute is absent.
    #[error("missing attribute {attribute} on {element}")]
    MissingAttribute {
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// Rule: ciphertext comes inline (`CipherValue`); `CipherReference` would make us
    /// fetch or dereference content, and is refused.
    #[error("CipherReference is not supported")]
    CipherReference,
    /// A CipherValue or OAEPparams is not base64, or holds something other than text.
    #[error("{element} is not valid base64 text")]
    InvalidBase64 {
        /// The element.
        element: &'static str,
    },
    /// Rule: the content key is found in KeyInfo, through a bare-name `#id`
    /// RetrievalMethod to one of the candidate EncryptedKeys, or among the candidates
    /// when KeyInfo names none. This reference names no candidate.
    #[error("RetrievalMethod {uri:?} names no EncryptedKey")]
    UnresolvedRetrievalMethod {
        /// The URI.
        uri: String,
    },
    /// No EncryptedKey to unwrap the content key from.
    #[error("no EncryptedKey found")]
    NoEncryptedKey,
    /// Rule: at most [`MAX_ENCRYPTED_KEYS`] EncryptedKeys are tried.
    #[error("more than {limit} EncryptedKeys")]
    TooManyEncryptedKeys {
        /// The limit.
        limit: usize,
    },
    /// No decryption key was configured.
    #[error("no decryption key configured")]
    NoDecryptionKey,
    /// Decryption failed. On purpose this says nothing about why: wrong key, OAEP
    /// failure, wrong content key length, GCM tag, CBC padding and a plaintext that is
    /// not one well-formed element all end here, so the error is not an oracle.
    #[error("decryption failed")]
    DecryptionFailed,
    /// Encrypting: the recipient's key is not RSA (key transport needs RSA).
    #[error("the recipient's key is not an RSA key")]
    RecipientNotRsa,
    /// Encrypting: the element to encrypt is not in the document.
    #[error("no element has ID {id:?}")]
    ElementNotFound {
        /// The ID looked for.
        id: String,
    },
    /// Encrypting: the ID occurs more than once, so which element to encrypt is
    /// ambiguous.
    #[error("ID {id:?} occurs {count} times")]
    DuplicateId {
        /// The ID.
        id: String,
        /// How many elements carry it.
        count: usize,
    },
    /// Encrypting: a QName-valued attribute (`xsi:type`) uses a prefix that nothing
    /// declares, so the plaintext would not mean the same thing to the recipient.
    #[error("prefix {prefix:?} used in {attribute} is not declared")]
    UndeclaredPrefix {
        /// The prefix.
        prefix: String,
        /// The attribute whose value uses it.
        attribute: String,
    },
    /// Encrypting: the random generator or the cipher failed.
    #[error("encryption failed")]
    EncryptionFailed,
}
