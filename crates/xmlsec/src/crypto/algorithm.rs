//! The signature and digest algorithms we accept, by XML-DSig URI.
//!
//! Unknown URIs map to `None` and are refused by the caller with a typed error; there is
//! no fallback and no "best effort".

use aws_lc_rs::digest;

/// Opt-ins for legacy cryptography, off by default.
///
/// # Security
/// SHA-1 is broken for collision resistance and 1024-bit RSA is within reach of
/// well-funded attackers. They exist here only to verify old IdPs and published test
/// vectors; we never sign with either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyPolicy {
    /// Accept SHA-1 digests and RSA-SHA1 signatures.
    pub allow_sha1: bool,
    /// Accept RSA keys from 1024 bits (instead of 2048) when verifying.
    pub allow_rsa_1024: bool,
}

/// A digest algorithm for a Reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `http://www.w3.org/2000/09/xmldsig#sha1`: verification only, needs
    /// [`LegacyPolicy::allow_sha1`].
    Sha1,
    /// `http://www.w3.org/2001/04/xmlenc#sha256`: what we sign with.
    Sha256,
    /// `http://www.w3.org/2001/04/xmldsig-more#sha384`.
    Sha384,
    /// `http://www.w3.org/2001/04/xmlenc#sha512`.
    Sha512,
}

impl DigestAlgorithm {
    /// Maps a DigestMethod URI, or `None` if it is not allow-listed.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#sha1" => Self::Sha1,
            "http://www.w3.org/2001/04/xmlenc#sha256" => Self::Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#sha384" => Self::Sha384,
            "http://www.w3.org/2001/04/xmlenc#sha512" => Self::Sha512,
            _ => return None,
        })
    }

    /// The algorithm's URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Sha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
            Self::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            Self::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
            Self::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
        }
    }

    /// Hashes `data`. SHA-1 is not gated here: the caller checks the policy first, so
    /// that its error names the rule it enforces.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// A SignatureMethod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// `http://www.w3.org/2000/09/xmldsig#rsa-sha1`: verification only, needs
    /// [`LegacyPolicy::allow_sha1`].
    RsaSha1,
    /// `http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`: the default for RSA keys.
    RsaSha256,
    /// `http://www.w3.org/2001/04/xmldsig-more#rsa-sha384`.
    RsaSha384,
    /// `http://www.w3.org/2001/04/xmldsig-more#rsa-sha512`.
    RsaSha512,
    /// `http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256`, on P-256. XML-DSig
    /// encodes ECDSA signatures as raw `r || s`, not DER.
    EcdsaSha256,
    /// `http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384`, on P-384.
    EcdsaSha384,
    /// `http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512`, on P-521: verification
    /// only (XMLDSig 1.1 interop vectors).
    EcdsaSha512,
}

impl SignatureAlgorithm {
    /// Every algorithm, for tables and tests.
    pub const ALL: [SignatureAlgorithm; 7] = [
        Self::RsaSha1,
        Self::RsaSha256,
        Self::RsaSha384,
        Self::RsaSha512,
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
    ];

    /// Maps a SignatureMethod URI, or `None` if it is not allow-listed.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.uri() == uri)
    }

    /// The algorithm's URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::RsaSha1 => "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
            Self::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Self::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            Self::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            Self::EcdsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
            Self::EcdsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
            Self::EcdsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
        }
    }

    /// Whether the algorithm hashes with SHA-1 (and so needs the legacy opt-in).
    pub fn uses_sha1(self) -> bool {
        self == Self::RsaSha1
    }

    /// Whether we ever produce this algorithm.
    pub fn can_sign(self) -> bool {
        !matches!(self, Self::RsaSha1 | Self::EcdsaSha512)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_unknown_is_refused() {
        for a in SignatureAlgorithm::ALL {
            assert_eq!(SignatureAlgorithm::from_uri(a.uri()), Some(a));
        }
        for d in [
            DigestAlgorithm::Sha1,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Sha384,
            DigestAlgorithm::Sha512,
        ] {
            assert_eq!(DigestAlgorithm::from_uri(d.uri()), Some(d));
        }
        assert_eq!(
            SignatureAlgorithm::from_uri("http://www.w3.org/2000/09/xmldsig#dsa-sha1"),
            None
        );
        assert_eq!(
            SignatureAlgorithm::from_uri("http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
            None
        );
        assert_eq!(
            DigestAlgorithm::from_uri("http://www.w3.org/2001/04/xmldsig-more#md5"),
            None
        );
    }

    #[test]
    fn digest_matches_known_answer() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let d = DigestAlgorithm::Sha256.digest(b"abc");
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256 known answer, first bytes"
        );
        assert_eq!(d.len(), 32);
        assert_eq!(DigestAlgorithm::Sha1.digest(b"abc").len(), 20);
        assert_eq!(DigestAlgorithm::Sha384.digest(b"abc").len(), 48);
        assert_eq!(DigestAlgorithm::Sha512.digest(b"abc").len(), 64);
    }
}
