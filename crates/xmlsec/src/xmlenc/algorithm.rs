//! The allow-listed algorithms, as closed enums mapped from their URIs.
//!
//! An `EncryptionMethod` we have not reviewed cannot be named here, so it cannot reach
//! a cipher: it becomes a typed error while the document is still being read.

use crate::tree::Node;

use super::{EncryptionError, RSA_1_5, XENC_NS, XENC11_NS};
use crate::dsig::DSIG_NS;

const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

/// How the element's bytes are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataAlgorithm {
    /// AES-128-GCM (`xmlenc11#aes128-gcm`).
    Aes128Gcm,
    /// AES-256-GCM (`xmlenc11#aes256-gcm`): the default.
    Aes256Gcm,
    /// AES-128-CBC (`xmlenc#aes128-cbc`), for relying parties without GCM.
    Aes128Cbc,
    /// AES-256-CBC (`xmlenc#aes256-cbc`), for relying parties without GCM.
    Aes256Cbc,
}

impl DataAlgorithm {
    /// Every data algorithm we implement.
    pub const ALL: [DataAlgorithm; 4] = [
        DataAlgorithm::Aes128Gcm,
        DataAlgorithm::Aes256Gcm,
        DataAlgorithm::Aes128Cbc,
        DataAlgorithm::Aes256Cbc,
    ];

    /// The algorithm's URI.
    pub fn uri(self) -> &'static str {
        match self {
            DataAlgorithm::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            DataAlgorithm::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            DataAlgorithm::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            DataAlgorithm::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }

    /// Maps a URI to the algorithm, or `None` for anything we do not implement.
    pub fn from_uri(uri: &str) -> Option<DataAlgorithm> {
        Self::ALL.into_iter().find(|a| a.uri() == uri)
    }

    /// Length of the content key in bytes.
    pub fn key_len(self) -> usize {
        match self {
            DataAlgorithm::Aes128Gcm | DataAlgorithm::Aes128Cbc => 16,
            DataAlgorithm::Aes256Gcm | DataAlgorithm::Aes256Cbc => 32,
        }
    }

    /// Whether the mode authenticates the ciphertext (GCM) or not (CBC).
    pub fn is_authenticated(self) -> bool {
        matches!(self, DataAlgorithm::Aes128Gcm | DataAlgorithm::Aes256Gcm)
    }
}

/// How the content key is encrypted for the recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyTransport {
    /// `xmlenc#rsa-oaep-mgf1p` with SHA-1 (the default): what every SAML stack reads.
    RsaOaepMgf1Sha1,
    /// `xmlenc11#rsa-oaep` with its defaults spelt out: SHA-1 digest, MGF1 with SHA-1.
    /// The same mathematics as [`KeyTransport::RsaOaepMgf1Sha1`] under the 1.1 name.
    RsaOaep11Sha1,
    /// `xmlenc11#rsa-oaep` with SHA-256 and MGF1 with SHA-256, for peers that ask.
    /// Not the default: xmlsec1 1.2 cannot decrypt it, and strict python3-saml refuses
    /// the `xenc11:MGF` element it needs (its bundled XML-Enc 1.0 schema lacks it).
    RsaOaepSha256,
}

impl KeyTransport {
    /// Every key transport we implement.
    pub const ALL: [KeyTransport; 3] = [
        KeyTransport::RsaOaepMgf1Sha1,
        KeyTransport::RsaOaep11Sha1,
        KeyTransport::RsaOaepSha256,
    ];

    /// The `EncryptionMethod/@Algorithm` URI.
    pub fn uri(self) -> &'static str {
        match self {
            KeyTransport::RsaOaepMgf1Sha1 => RSA_OAEP_MGF1P,
            KeyTransport::RsaOaep11Sha1 | KeyTransport::RsaOaepSha256 => RSA_OAEP_11,
        }
    }

    pub(super) fn oaep(self) -> &'static aws_lc_rs::rsa::OaepAlgorithm {
        match self {
            KeyTransport::RsaOaepMgf1Sha1 | KeyTransport::RsaOaep11Sha1 => {
                &aws_lc_rs::rsa::OAEP_SHA1_MGF1SHA1
            }
            KeyTransport::RsaOaepSha256 => &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
        }
    }

    /// The `EncryptionMethod` element for an EncryptedKey, with its parameters.
    pub(super) fn method_xml(self) -> String {
        match self {
            KeyTransport::RsaOaepMgf1Sha1 => format!(
                "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_MGF1P}\">\
                 <ds:DigestMethod xmlns:ds=\"{DSIG_NS}\" Algorithm=\"{SHA1}\"/>\
                 </xenc:EncryptionMethod>"
            ),
            KeyTransport::RsaOaep11Sha1 => format!(
                "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_11}\">\
                 <ds:DigestMethod xmlns:ds=\"{DSIG_NS}\" Algorithm=\"{SHA1}\"/>\
                 </xenc:EncryptionMethod>"
            ),
            KeyTransport::RsaOaepSha256 => format!(
                "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_11}\">\
                 <ds:DigestMethod xmlns:ds=\"{DSIG_NS}\" Algorithm=\"{SHA256}\"/>\
                 <xenc11:MGF xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{MGF1_SHA256}\"/>\
                 </xenc:EncryptionMethod>"
            ),
        }
    }

    /// Reads an EncryptedKey's `EncryptionMethod`: the algorithm, its DigestMethod and
    /// MGF, and the OAEP label (`OAEPparams`, base64) if any.
    pub(super) fn from_method(
        method: Node<'_, '_>,
    ) -> Result<(KeyTransport, Vec<u8>), EncryptionError> {
        let algorithm = method
            .attribute("Algorithm")
            .ok_or(EncryptionError::MissingAttribute {
                element: "EncryptionMethod",
                attribute: "Algorithm",
            })?;
        if algorithm == RSA_1_5 {
            return Err(EncryptionError::RsaPkcs1v15Refused);
        }
        if algorithm != RSA_OAEP_MGF1P && algorithm != RSA_OAEP_11 {
            return Err(EncryptionError::UnknownKeyTransport {
                algorithm: algorithm.to_owned(),
            });
        }
        let mut digest = None;
        let mut mgf = None;
        let mut label = None;
        for child in method.children().filter(Node::is_element) {
            let tag = child.tag_name();
            let slot = match (tag.namespace(), tag.name()) {
                (Some(DSIG_NS), "DigestMethod") => &mut digest,
                (Some(XENC11_NS), "MGF") if algorithm == RSA_OAEP_11 => &mut mgf,
                (Some(XENC_NS), "OAEPparams") => &mut label,
                _ => {
                    return Err(EncryptionError::UnexpectedElement {
                        parent: "EncryptionMethod",
                        found: super::decrypt::expanded_name(child),
                    });
                }
            };
            if slot.replace(child).is_some() {
                return Err(EncryptionError::UnexpectedElement {
                    parent: "EncryptionMethod",
                    found: super::decrypt::expanded_name(child),
                });
            }
        }
        let digest_uri = match digest {
            Some(d) => d
                .attribute("Algorithm")
                .ok_or(EncryptionError::MissingAttribute {
                    element: "DigestMethod",
                    attribute: "Algorithm",
                })?,
            None => "",
        };
        let mgf_uri = match mgf {
            Some(m) => m
                .attribute("Algorithm")
                .ok_or(EncryptionError::MissingAttribute {
                    element: "MGF",
                    attribute: "Algorithm",
                })?,
            None => "",
        };
        let sha1_digest = matches!(digest_uri, "" | SHA1);
        let transport = match (algorithm, sha1_digest, mgf_uri) {
            (RSA_OAEP_MGF1P, true, _) => Some(KeyTransport::RsaOaepMgf1Sha1),
            (RSA_OAEP_11, true, "" | MGF1_SHA1) => Some(KeyTransport::RsaOaep11Sha1),
            (RSA_OAEP_11, false, MGF1_SHA256) if digest_uri == SHA256 => {
                Some(KeyTransport::RsaOaepSha256)
            }
            _ => None,
        };
        let transport = transport.ok_or_else(|| EncryptionError::UnsupportedOaepParameters {
            digest: digest_uri.to_owned(),
            mgf: mgf_uri.to_owned(),
        })?;
        let label = match label {
            Some(node) => super::decrypt::base64_text(node, "OAEPparams")?,
            None => Vec::new(),
        };
        Ok((transport, label))
    }
}
