//! HTTP-Redirect binding (SAML bindings §3.4): raw DEFLATE, base64, URL encoding, and
//! the detached signature over the query string.
//!
//! # Security
//! The signature covers the query string octets, not the message: on receipt we rebuild
//! `SAMLRequest=…[&RelayState=…]&SigAlg=…` from the values exactly as they were encoded
//! in the URL (re-encoding would differ from the sender's choices of case and escaping,
//! and verification would fail, or worse, pass over different bytes). Every parameter
//! that takes part appears at most once. Inflation is capped while it runs.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use latchkey_xmlsec::crypto::{LegacyPolicy, SignatureAlgorithm, SigningKey, VerifyingKey};

use super::{BindingLimits, MessageKind, base64_decode, base64_encode, check_relay_state};
use crate::error::{Error, Result};

/// Builds the query string (without `?`) for an unsigned message.
pub fn encode(
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    limits: &BindingLimits,
) -> Result<String> {
    check_relay_state(relay_state, limits)?;
    let mut q = format!("{}={}", kind.param(), url_encode(&deflate_base64(xml)?));
    if let Some(r) = relay_state {
        q.push_str("&RelayState=");
        q.push_str(&url_encode(r));
    }
    Ok(q)
}

/// Builds the query string for a message signed with `key` and `algorithm`.
pub fn encode_signed(
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    key: &SigningKey,
    algorithm: SignatureAlgorithm,
    limits: &BindingLimits,
) -> Result<String> {
    let mut q = encode(kind, xml, relay_state, limits)?;
    q.push_str("&SigAlg=");
    q.push_str(&url_encode(algorithm.uri()));
    let sig = key
        .sign(algorithm, q.as_bytes())
        .map_err(|e| Error::Xml(e.into()))?;
    q.push_str("&Signature=");
    q.push_str(&url_encode(&base64_encode(&sig)));
    Ok(q)
}

/// Appends a query string to an endpoint URL that may already have one.
pub fn url(endpoint: &str, query: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    format!("{endpoint}{sep}{query}")
}

/// A message received through HTTP-Redirect, decoded but not yet trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectMessage {
    /// Which parameter carried it.
    pub kind: MessageKind,
    /// The inflated XML text. Parse it only after deciding whether a signature is required.
    pub xml: String,
    /// The RelayState, decoded.
    pub relay_state: Option<String>,
    signature: Option<DetachedSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DetachedSignature {
    sig_alg: String,
    value: Vec<u8>,
    /// The exact octets the sender signed, rebuilt from the raw query.
    signed_octets: String,
}

impl RedirectMessage {
    /// Whether the query carried a signature.
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// The SigAlg URI, if signed.
    pub fn sig_alg(&self) -> Option<&str> {
        self.signature.as_ref().map(|s| s.sig_alg.as_str())
    }

    /// Verifies the detached signature with one of `keys`, using only `allowed`
    /// algorithms. Returns the algorithm used. An unsigned message is
    /// [`Error::Unsigned`]: a caller that accepts unsigned messages checks
    /// [`is_signed`](Self::is_signed) first and decides.
    pub fn verify(
        &self,
        keys: &[VerifyingKey],
        allowed: &[SignatureAlgorithm],
    ) -> Result<SignatureAlgorithm> {
        let sig = self.signature.as_ref().ok_or(Error::Unsigned)?;
        let alg = SignatureAlgorithm::from_uri(&sig.sig_alg)
            .filter(|a| allowed.contains(a))
            .ok_or_else(|| Error::AlgorithmNotAllowed(sig.sig_alg.clone()))?;
        // SHA-1 passes only if the caller put it on the allow-list.
        let policy = LegacyPolicy {
            allow_sha1: alg.uses_sha1(),
            allow_rsa_1024: false,
        };
        let ok = keys.iter().any(|k| {
            k.verify(alg, sig.signed_octets.as_bytes(), &sig.value, policy)
                .is_ok()
        });
        if ok {
            Ok(alg)
        } else {
            Err(Error::SignatureInvalid)
        }
    }
}

/// Decodes the query string of a redirect (without `?`).
pub fn decode(query: &str, limits: &BindingLimits) -> Result<RedirectMessage> {
    if query.len() > limits.max_encoded {
        return Err(Error::EncodedTooLarge {
            size: query.len(),
            limit: limits.max_encoded,
        });
    }
    let mut request = None;
    let mut response = None;
    let mut relay_state = None;
    let mut sig_alg = None;
    let mut signature = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = url_decode(raw_key, "query parameter name")?;
        let slot = match key.as_str() {
            "SAMLRequest" => (&mut request, "SAMLRequest"),
            "SAMLResponse" => (&mut response, "SAMLResponse"),
            "RelayState" => (&mut relay_state, "RelayState"),
            "SigAlg" => (&mut sig_alg, "SigAlg"),
            "Signature" => (&mut signature, "Signature"),
            _ => continue,
        };
        if slot.0.is_some() {
            return Err(Error::DuplicateParameter(slot.1));
        }
        *slot.0 = Some(raw_value);
    }
    let (kind, raw_message) = match (request, response) {
        (Some(r), None) => (MessageKind::Request, r),
        (None, Some(r)) => (MessageKind::Response, r),
        (Some(_), Some(_)) => return Err(Error::AmbiguousMessage),
        (None, None) => return Err(Error::MissingParameter("SAMLRequest or SAMLResponse")),
    };
    let param = kind.param();
    let relay_decoded = relay_state
        .map(|r| url_decode(r, "RelayState"))
        .transpose()?;
    check_relay_state(relay_decoded.as_deref(), limits)?;
    let compressed = base64_decode(&url_decode(raw_message, param)?, param)?;
    let xml = inflate(&compressed, limits.max_decoded)?;
    let signature = match (sig_alg, signature) {
        (None, None) => None,
        (Some(raw_alg), Some(raw_sig)) => {
            let mut signed_octets = format!("{param}={raw_message}");
            if let Some(r) = relay_state {
                signed_octets.push_str("&RelayState=");
                signed_octets.push_str(r);
            }
            signed_octets.push_str("&SigAlg=");
            signed_octets.push_str(raw_alg);
            Some(DetachedSignature {
                sig_alg: url_decode(raw_alg, "SigAlg")?,
                value: base64_decode(&url_decode(raw_sig, "Signature")?, "Signature")?,
                signed_octets,
            })
        }
        _ => return Err(Error::IncompleteRedirectSignature),
    };
    Ok(RedirectMessage {
        kind,
        xml,
        relay_state: relay_decoded,
        signature,
    })
}

fn deflate_base64(xml: &str) -> Result<String> {
    let mut enc = DeflateEncoder::new(Vec::new(), Compression::default());
    enc.write_all(xml.as_bytes()).map_err(|_| Error::Inflate)?;
    let bytes = enc.finish().map_err(|_| Error::Inflate)?;
    Ok(base64_encode(&bytes))
}

/// Inflates raw DEFLATE, stopping as soon as more than `limit` bytes come out.
fn inflate(compressed: &[u8], limit: usize) -> Result<String> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    DeflateDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| Error::Inflate)?;
    if out.len() > limit {
        return Err(Error::DecodedTooLarge { limit });
    }
    String::from_utf8(out).map_err(|_| Error::NotUtf8)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX: [u8; 16] = *b"0123456789ABCDEF";

/// Decodes `application/x-www-form-urlencoded` (`+` is a space). Invalid escapes and
/// invalid UTF-8 are refused, not replaced.
pub(crate) fn url_decode(s: &str, param: &'static str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(u8::try_from(h * 16 + l).map_err(|_| Error::UrlEncoding(param))?)
                    }
                    _ => return Err(Error::UrlEncoding(param)),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::UrlEncoding(param))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str =
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_1\"/>";

    #[test]
    fn round_trip_unsigned() {
        let limits = BindingLimits::default();
        let q = encode(MessageKind::Request, XML, Some("a b&c=d/é"), &limits).unwrap();
        assert!(q.starts_with("SAMLRequest="));
        assert!(q.contains("&RelayState=a%20b%26c%3Dd%2F%C3%A9"));
        let m = decode(&q, &limits).unwrap();
        assert_eq!(m.kind, MessageKind::Request);
        assert_eq!(m.xml, XML);
        assert_eq!(m.relay_state.as_deref(), Some("a b&c=d/é"));
        assert!(!m.is_signed());
        assert_eq!(
            m.verify(&[], &[SignatureAlgorithm::RsaSha256]),
            Err(Error::Unsigned)
        );
    }

    #[test]
    fn url_join() {
        assert_eq!(url("https://i/sso", "a=1"), "https://i/sso?a=1");
        assert_eq!(url("https://i/sso?x=y", "a=1"), "https://i/sso?x=y&a=1");
    }

    #[test]
    fn deflate_bomb_is_stopped_while_inflating() {
        // 64 MiB of zeros compresses to ~64 KiB; with a 1 MiB cap we must stop early.
        let mut enc = DeflateEncoder::new(Vec::new(), Compression::best());
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&chunk).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 128 * 1024);
        let limits = BindingLimits {
            max_decoded: 1024 * 1024,
            ..BindingLimits::default()
        };
        let q = format!("SAMLResponse={}", url_encode(&base64_encode(&bomb)));
        assert_eq!(
            decode(&q, &limits),
            Err(Error::DecodedTooLarge { limit: 1024 * 1024 })
        );
        // Exactly at the limit is accepted.
        let exact = "a".repeat(1024);
        let limits = BindingLimits {
            max_decoded: 1024,
            ..BindingLimits::default()
        };
        let q = encode(MessageKind::Response, &exact, None, &limits).unwrap();
        assert_eq!(decode(&q, &limits).unwrap().xml, exact);
        let q = encode(MessageKind::Response, &format!("{exact}a"), None, &limits).unwrap();
        assert_eq!(
            decode(&q, &limits),
            Err(Error::DecodedTooLarge { limit: 1024 })
        );
    }

    #[test]
    fn relay_state_cap() {
        let limits = BindingLimits::default();
        let ok = "r".repeat(80);
        let long = "r".repeat(81);
        assert!(encode(MessageKind::Request, XML, Some(&ok), &limits).is_ok());
        assert_eq!(
            encode(MessageKind::Request, XML, Some(&long), &limits),
            Err(Error::RelayStateTooLong { len: 81, limit: 80 })
        );
        let q = format!(
            "{}&RelayState={long}",
            encode(MessageKind::Request, XML, None, &limits).unwrap()
        );
        assert_eq!(
            decode(&q, &limits),
            Err(Error::RelayStateTooLong { len: 81, limit: 80 })
        );
        let wide = BindingLimits {
            max_relay_state: 200,
            ..limits
        };
        assert_eq!(decode(&q, &wide).unwrap().relay_state, Some(long));
    }

    #[test]
    fn refuses_malformed_queries() {
        let limits = BindingLimits::default();
        let good = encode(MessageKind::Request, XML, None, &limits).unwrap();
        assert_eq!(
            decode(&format!("{good}&{good}"), &limits),
            Err(Error::DuplicateParameter("SAMLRequest"))
        );
        assert_eq!(
            decode(&format!("{good}&SAMLResponse=x"), &limits),
            Err(Error::AmbiguousMessage)
        );
        assert!(matches!(
            decode("RelayState=x", &limits),
            Err(Error::MissingParameter(_))
        ));
        assert_eq!(
            decode(&format!("{good}&SigAlg=x"), &limits),
            Err(Error::IncompleteRedirectSignature)
        );
        assert_eq!(
            decode("SAMLRequest=%zz", &limits),
            Err(Error::UrlEncoding("SAMLRequest"))
        );
        assert_eq!(
            decode("SAMLRequest=!!!!", &limits),
            Err(Error::Base64("SAMLRequest"))
        );
        assert_eq!(decode("SAMLRequest=AAAA", &limits), Err(Error::Inflate));
        assert_eq!(
            decode(
                &good,
                &BindingLimits {
                    max_encoded: 10,
                    ..limits
                }
            ),
            Err(Error::EncodedTooLarge {
                size: good.len(),
                limit: 10
            })
        );
    }

    fn p256() -> SigningKey {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        SigningKey::from_pem(&pair.serialize_pem()).unwrap()
    }

    const ALLOWED: &[SignatureAlgorithm] = &[
        SignatureAlgorithm::RsaSha256,
        SignatureAlgorithm::EcdsaSha256,
    ];

    #[test]
    fn signed_round_trip() {
        let limits = BindingLimits::default();
        let key = p256();
        let other = p256();
        let q = encode_signed(
            MessageKind::Request,
            XML,
            Some("state 1"),
            &key,
            SignatureAlgorithm::EcdsaSha256,
            &limits,
        )
        .unwrap();
        let m = decode(&q, &limits).unwrap();
        assert!(m.is_signed());
        assert_eq!(m.sig_alg(), Some(SignatureAlgorithm::EcdsaSha256.uri()));
        let keys = [other.verifying_key().clone(), key.verifying_key().clone()];
        assert_eq!(
            m.verify(&keys, ALLOWED),
            Ok(SignatureAlgorithm::EcdsaSha256)
        );
        // Wrong key only.
        assert_eq!(
            m.verify(&[other.verifying_key().clone()], ALLOWED),
            Err(Error::SignatureInvalid)
        );
        // Algorithm not on the allow-list.
        assert_eq!(
            m.verify(&keys, &[SignatureAlgorithm::RsaSha256]),
            Err(Error::AlgorithmNotAllowed(
                SignatureAlgorithm::EcdsaSha256.uri().into()
            ))
        );
        // A changed RelayState breaks the signature.
        let tampered = q.replace("RelayState=state%201", "RelayState=state%202");
        assert_ne!(tampered, q);
        assert_eq!(
            decode(&tampered, &limits).unwrap().verify(&keys, ALLOWED),
            Err(Error::SignatureInvalid)
        );
        // Removing the RelayState breaks it too.
        let dropped = q.replace("&RelayState=state%201", "");
        assert_eq!(
            decode(&dropped, &limits).unwrap().verify(&keys, ALLOWED),
            Err(Error::SignatureInvalid)
        );
    }

    /// Lower-cases the hex digits of percent escapes only.
    fn lower_escapes(s: &str) -> String {
        let mut out = String::new();
        let mut left = 0;
        for c in s.chars() {
            if c == '%' {
                left = 2;
                out.push(c);
            } else if left > 0 {
                left -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn signature_covers_fixed_order_over_raw_values() {
        // The sender used lower-case escapes and put the parameters in another order.
        // We must rebuild SAMLRequest, RelayState, SigAlg in that order from the raw
        // values as received, not re-encode them.
        let limits = BindingLimits::default();
        let key = p256();
        let msg = lower_escapes(&url_encode(&deflate_base64(XML).unwrap()));
        let relay = "a%2fb";
        let alg = lower_escapes(&url_encode(SignatureAlgorithm::EcdsaSha256.uri()));
        let signed = format!("SAMLRequest={msg}&RelayState={relay}&SigAlg={alg}");
        let sig = key
            .sign(SignatureAlgorithm::EcdsaSha256, signed.as_bytes())
            .unwrap();
        let sig = url_encode(&base64_encode(&sig));
        let query =
            format!("Signature={sig}&SigAlg={alg}&foo=bar&RelayState={relay}&SAMLRequest={msg}");
        let m = decode(&query, &limits).unwrap();
        assert_eq!(m.xml, XML);
        assert_eq!(m.relay_state.as_deref(), Some("a/b"));
        let keys = [key.verifying_key().clone()];
        assert_eq!(
            m.verify(&keys, ALLOWED),
            Ok(SignatureAlgorithm::EcdsaSha256)
        );
        // The same values re-encoded in upper case are different octets: not verified.
        let upper = format!(
            "SAMLRequest={}&RelayState=a%2Fb&SigAlg={}&Signature={sig}",
            url_encode(&deflate_base64(XML).unwrap()),
            url_encode(SignatureAlgorithm::EcdsaSha256.uri())
        );
        assert_eq!(
            decode(&upper, &limits).unwrap().verify(&keys, ALLOWED),
            Err(Error::SignatureInvalid)
        );
    }

    #[test]
    fn url_coding() {
        assert_eq!(url_encode("a+b/c=d ~"), "a%2Bb%2Fc%3Dd%20~");
        assert_eq!(url_decode("a%2bb+c%C3%A9", "x").unwrap(), "a+b cé");
        assert!(url_decode("%C3", "x").is_err());
        assert!(url_decode("%4", "x").is_err());
    }

    proptest::proptest! {
        #[test]
        fn url_coding_round_trips(s in "\\PC{0,64}") {
            proptest::prop_assert_eq!(url_decode(&url_encode(&s), "x").unwrap(), s);
        }

        #[test]
        fn message_round_trips(xml in "\\PC{0,256}", relay in proptest::option::of("\\PC{0,20}")) {
            let limits = BindingLimits::default();
            let q = encode(MessageKind::Response, &xml, relay.as_deref(), &limits).unwrap();
            let m = decode(&q, &limits).unwrap();
            proptest::prop_assert_eq!(m.xml, xml);
            proptest::prop_assert_eq!(m.relay_state, relay);
        }

        #[test]
        fn decode_never_panics(q in "[A-Za-z=&%+/0-9]{0,200}") {
            let _ = decode(&q, &BindingLimits::default());
            let _ = decode(&format!("SAMLRequest={q}"), &BindingLimits::default());
        }
    }
}
