//! Encrypted assertions (SAML core §2.3.4, `saml:EncryptedAssertion`).
//!
//! The IdP signs an assertion, then encrypts it for the SP: [`encrypt_assertion`]. The SP
//! decrypts it back into assertion text ([`decrypt_assertion`]) and checks it exactly as
//! it would an assertion that arrived in the clear ([`verify_decrypted_assertion`]).
//!
//! ```
//! use latchkey_saml::encryption::{self, DecryptOptions, DecryptionKey, EncryptOptions};
//! use latchkey_xmlsec::crypto::{Certificate, SigningKey};
//! use latchkey_xmlsec::{dsig, reader};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let sp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
//! # let sp_cert_pem = rcgen::CertificateParams::new(vec!["sp".into()])?.self_signed(&sp)?.pem();
//! # let idp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
//! # let idp_cert_pem = rcgen::CertificateParams::new(vec!["idp".into()])?.self_signed(&idp)?.pem();
//! # let (idp_key, idp_cert) = (SigningKey::from_pem(&idp.serialize_pem())?, Certificate::from_pem(&idp_cert_pem)?);
//! // IdP: sign, then encrypt for the SP's certificate (from its metadata).
//! let assertion = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://idp.example.org</saml:Issuer></saml:Assertion>"#;
//! let signed = dsig::sign(assertion, "_a1", &idp_key, None, &dsig::SignOptions::default())?;
//! let sp_cert = Certificate::from_pem(&sp_cert_pem)?;
//! let encrypted = encryption::encrypt_assertion(&signed, &sp_cert, &EncryptOptions::default())?;
//!
//! // SP: decrypt, then verify the assertion's signature before reading anything.
//! let doc = reader::parse(&encrypted, &reader::Limits::default())?;
//! let sp_key = DecryptionKey::from_pem(&sp.serialize_pem())?;
//! let decrypted = encryption::decrypt_assertion(doc.root_element(), &[sp_key], &DecryptOptions::default())?;
//! let assertion_doc = reader::parse(&decrypted.xml, &reader::Limits::default())?;
//! let verified = encryption::verify_decrypted_assertion(
//!     &assertion_doc, &decrypted, &[idp_cert.verifying_key().clone()],
//!     &latchkey_saml::inbound::SignaturePolicy::default(), false)?;
//! assert_eq!(verified.id(), Some("_a1"));
//! # Ok(()) }
//! ```
//!
//! # Security
//! * Decrypted is not authenticated: anyone holding the SP's certificate can encrypt an
//!   assertion for it. A decrypted assertion is accepted only under a verified
//!   signature: its own, or that of the Response whose `EncryptedAssertion` child it was
//!   (the Response's signature covers the ciphertext).
//! * CBC has no integrity, so an attacker who can watch how an SP reacts to altered
//!   ciphertexts can learn the plaintext (Jager and Somorovsky, 2011), through any
//!   difference between "did not decrypt" and "decrypted, but the signature failed".
//!   When the ciphertext is not covered by a verified signature and the cipher is CBC,
//!   [`verify_decrypted_assertion`] therefore reports every failure as the same
//!   decryption error. Prefer GCM (the default when encrypting).

use latchkey_xmlsec::crypto::{Certificate, KeyKind, VerifyingKey};
use latchkey_xmlsec::dsig::Verified;
use latchkey_xmlsec::reader::{self, Document};
use latchkey_xmlsec::tree::Node;
use latchkey_xmlsec::xmlenc::{self, EncryptionError, XENC_NS};
pub use latchkey_xmlsec::xmlenc::{
    DataAlgorithm, DecryptOptions, Decrypted, DecryptionKey, EncryptOptions, KeyTransport,
};

use crate::error::{Error, Result};
use crate::inbound::{self, SignaturePolicy};
use crate::metadata::KeyDescriptor;
use crate::ns::ASSERTION;
use crate::read;

/// Encrypts a signed assertion for the SP holding `sp_certificate`'s private key and
/// returns the `<saml:EncryptedAssertion>` element, ready to go into a Response in place
/// of the Assertion.
///
/// `signed_assertion_xml` is one Assertion element as a document of its own (an XML
/// declaration is allowed and dropped). Its exact bytes are encrypted, so its signature
/// verifies after decryption; a standalone document declares every prefix its element
/// and attribute names use, and `xsi:type` values are checked to use declared prefixes
/// too (see [`EncryptionError::UndeclaredPrefix`]).
pub fn encrypt_assertion(
    signed_assertion_xml: &str,
    sp_certificate: &Certificate,
    options: &EncryptOptions,
) -> Result<String> {
    let doc = reader::parse(signed_assertion_xml, &options.limits)?;
    let root = doc.root_element();
    read::expect(root, ASSERTION, "Assertion", "saml:Assertion")?;
    let id = root
        .attribute(options.id_attribute.as_str())
        .ok_or(Error::MissingAttribute {
            element: "saml:Assertion",
            attribute: "ID",
        })?;
    let data = xmlenc::encrypt_element(signed_assertion_xml, id, sp_certificate, options)?;
    let mut out = String::with_capacity(data.len() + 128);
    out.push_str("<saml:EncryptedAssertion xmlns:saml=\"");
    out.push_str(ASSERTION);
    out.push_str("\">");
    out.push_str(&data);
    out.push_str("</saml:EncryptedAssertion>");
    Ok(out)
}

/// The certificate to encrypt for, from an SP's metadata KeyDescriptors: the first RSA
/// certificate marked `use="encryption"`, else the first RSA one with no `use` (which
/// serves both). A signing-only key is never used to encrypt.
pub fn encryption_certificate(keys: &[KeyDescriptor]) -> Option<&Certificate> {
    use crate::metadata::KeyUse;
    let rsa = |c: &&Certificate| matches!(c.verifying_key().kind(), KeyKind::Rsa { .. });
    let with_use = |wanted: Option<KeyUse>| {
        keys.iter()
            .filter(move |k| k.key_use == wanted)
            .flat_map(|k| k.certificates.iter())
            .find(rsa)
    };
    with_use(Some(KeyUse::Encryption)).or_else(|| with_use(None))
}

/// Encryption options for an SP that advertised these `md:EncryptionMethod` algorithm
/// URIs in its metadata (empty: it said nothing).
///
/// Content cipher: the first of AES-256-GCM, AES-128-GCM, AES-256-CBC, AES-128-CBC that
/// the SP lists; AES-256-GCM when it lists none of them. Key transport: XML-Enc 1.1
/// `rsa-oaep` with SHA-256 when the SP lists it, otherwise `rsa-oaep-mgf1p`, which every
/// SAML stack reads. Anything else the SP lists (3DES, `rsa-1_5`) is never chosen.
pub fn options_for_sp(advertised: &[&str]) -> EncryptOptions {
    let offered = |uri: &str| advertised.iter().any(|a| a.trim() == uri);
    let data = [
        DataAlgorithm::Aes256Gcm,
        DataAlgorithm::Aes128Gcm,
        DataAlgorithm::Aes256Cbc,
        DataAlgorithm::Aes128Cbc,
    ]
    .into_iter()
    .find(|d| offered(d.uri()))
    .unwrap_or(DataAlgorithm::Aes256Gcm);
    let key_transport = if offered(KeyTransport::RsaOaepSha256.uri()) {
        KeyTransport::RsaOaepSha256
    } else {
        KeyTransport::RsaOaepMgf1Sha1
    };
    EncryptOptions::new(data, key_transport)
}

/// Decrypts a `saml:EncryptedAssertion` with one of the SP's `keys`, and returns the
/// Assertion's text (with the namespace declarations it inherited made explicit, so it
/// parses on its own) and the algorithms the IdP used.
///
/// The EncryptedKey may sit inside the EncryptedData's KeyInfo (xmlsec, pysaml2) or
/// beside it in the EncryptedAssertion (some IdPs), named by a RetrievalMethod or not.
///
/// The text is NOT trusted yet: parse it with [`reader::parse`] and pass it to
/// [`verify_decrypted_assertion`] (or accept it only because the Response that carried
/// it was signed and verified). A plaintext that is not a `saml:Assertion` element is
/// reported as [`EncryptionError::DecryptionFailed`], like every other failure after
/// the algorithm checks.
pub fn decrypt_assertion(
    encrypted_assertion: Node<'_, '_>,
    keys: &[DecryptionKey],
    options: &DecryptOptions,
) -> Result<Decrypted> {
    const E: &str = "saml:EncryptedAssertion";
    read::expect(encrypted_assertion, ASSERTION, "EncryptedAssertion", E)?;
    // Schema: one xenc:EncryptedData, then any number of xenc:EncryptedKey.
    let mut data = None;
    let mut detached = Vec::new();
    for child in encrypted_assertion.children().filter(Node::is_element) {
        if read::is(child, XENC_NS, "EncryptedData") && detached.is_empty() {
            if data.replace(child).is_some() {
                return Err(Error::DuplicateElement {
                    parent: E,
                    child: "xenc:EncryptedData",
                });
            }
        } else if read::is(child, XENC_NS, "EncryptedKey") && data.is_some() {
            detached.push(child);
        } else {
            return Err(Error::UnexpectedElement {
                expected: "xenc:EncryptedData or xenc:EncryptedKey",
                found: read::describe(child),
            });
        }
    }
    let data = data.ok_or(Error::MissingElement {
        parent: E,
        child: "xenc:EncryptedData",
    })?;
    let decrypted = xmlenc::decrypt_element(data, &detached, keys, options)?;
    let is_assertion = reader::parse(&decrypted.xml, &options.limits)
        .is_ok_and(|doc| read::is(doc.root_element(), ASSERTION, "Assertion"));
    if !is_assertion {
        return Err(decryption_failed());
    }
    Ok(decrypted)
}

/// Verifies the signature of a decrypted assertion (`assertion_doc` is
/// `decrypted.xml` parsed) against the IdP's keys, and returns the handle every SAML
/// reader takes.
///
/// `ciphertext_authenticated` says whether a verified signature already covers the
/// EncryptedAssertion (the Response's). When it does not and the cipher was CBC, any
/// failure here is reported as [`EncryptionError::DecryptionFailed`]: telling "bad
/// signature" apart from "bad padding" would hand an attacker a decryption oracle.
pub fn verify_decrypted_assertion<'a, 'input>(
    assertion_doc: &'a Document<'input>,
    decrypted: &Decrypted,
    idp_keys: &[VerifyingKey],
    policy: &SignaturePolicy,
    ciphertext_authenticated: bool,
) -> Result<Verified<'a, 'input>> {
    let root = assertion_doc.root_element();
    let result = read::expect(root, ASSERTION, "Assertion", "saml:Assertion")
        .and_then(|()| inbound::verify_element(assertion_doc, root, idp_keys, policy));
    match result {
        Err(_) if !ciphertext_authenticated && !decrypted.data_algorithm.is_authenticated() => {
            Err(decryption_failed())
        }
        other => other,
    }
}

fn decryption_failed() -> Error {
    Error::Xml(EncryptionError::DecryptionFailed.into())
}
