//! X.509 certificates, as carriers of a public key.
//!
//! SAML trusts a key because metadata or configuration names it, not because a CA
//! vouches for it, so nothing here builds or checks a chain. `not_after` is exposed so
//! that callers can warn about expired signing certificates; it is their call whether
//! that matters (most federations keep using expired self-signed certificates).

use std::fmt;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::KeyError;
use super::key::VerifyingKey;

/// A parsed certificate: its DER, the facts we report, and its public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    /// The DER in base64, made once: every signature we make carries it in KeyInfo.
    base64: String,
    subject: String,
    not_before: i64,
    not_after: i64,
    key: VerifyingKey,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Parses one DER certificate; trailing bytes are refused.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| KeyError::InvalidCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyError::InvalidCertificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let key = VerifyingKey::from_spki_der(cert.public_key().raw)?;
        Ok(Self {
            der: der.to_vec(),
            base64: STANDARD.encode(der),
            subject: cert.subject().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        let mut labels = Vec::new();
        for block in blocks {
            if block.tag() == "CERTIFICATE" {
                return Self::from_der(block.contents());
            }
            labels.push(block.tag().to_owned());
        }
        Err(KeyError::NoUsablePemBlock {
            found: labels.join(", "),
        })
    }

    /// Parses base64 DER as found in `ds:X509Certificate` (metadata); XML whitespace
    /// inside the text is ignored.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
            .collect();
        let der = STANDARD
            .decode(compact)
            .map_err(|e| KeyError::InvalidCertificate(format!("base64: {e}")))?;
        Self::from_der(&der)
    }

    /// The certificate's DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER as base64 without line breaks, as `ds:X509Certificate` carries it.
    pub fn to_base64(&self) -> String {
        self.base64.clone()
    }

    /// [`Certificate::to_base64`] without a copy.
    pub fn base64(&self) -> &str {
        &self.base64
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// The subject distinguished name, RFC 4514 style.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Start of validity, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// SHA-256 of the DER, for pinning and display.
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, &self.der);
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(d.as_ref()) {
            *o = *b;
        }
        out
    }
}
