//! The HTTP bindings (SAML bindings §3.4 and §3.5): how a message travels in a URL or
//! a form, with the size caps that keep a hostile request from costing us memory.

pub mod post;
pub mod redirect;

use crate::error::{Error, Result};

/// Which parameter carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `SAMLRequest`: AuthnRequest, LogoutRequest.
    Request,
    /// `SAMLResponse`: Response, LogoutResponse.
    Response,
}

impl MessageKind {
    /// The parameter name.
    pub fn param(self) -> &'static str {
        match self {
            MessageKind::Request => "SAMLRequest",
            MessageKind::Response => "SAMLResponse",
        }
    }
}

/// Size caps for decoding a bound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingLimits {
    /// Largest encoded parameter accepted, before any decoding.
    pub max_encoded: usize,
    /// Largest message accepted after inflating (redirect) or base64 decoding (POST).
    /// Inflation stops as soon as this is passed, so a deflate bomb costs at most this.
    pub max_decoded: usize,
    /// Largest RelayState, in bytes. The bindings specification (§3.4.3, §3.5.3) caps it
    /// at 80 bytes; raise it only for peers known to need more.
    pub max_relay_state: usize,
}

impl Default for BindingLimits {
    fn default() -> Self {
        Self {
            max_encoded: 512 * 1024,
            max_decoded: 512 * 1024,
            max_relay_state: 80,
        }
    }
}

/// Refuses a RelayState over the cap.
pub(crate) fn check_relay_state(relay_state: Option<&str>, limits: &BindingLimits) -> Result<()> {
    match relay_state {
        Some(r) if r.len() > limits.max_relay_state => Err(Error::RelayStateTooLong {
            len: r.len(),
            limit: limits.max_relay_state,
        }),
        _ => Ok(()),
    }
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(bytes)
}

/// Decodes standard base64, padded or not (peers differ), skipping ASCII whitespace (POST
/// forms are often line-wrapped). Bits the last character carries beyond the data must be
/// zero, as the `base64` crate's engines require (a test holds the two to the same answers).
///
/// With SIMD (`base64_simd`): an ACS decodes every Response, about 5 KB, and the `base64`
/// crate's general engine took ~3.4 us of it, a twentieth of an SP's whole returning login;
/// this takes ~0.7 us.
///
/// A message without whitespace is decoded as it is, and a wrapped one is compacted a line
/// at a time: copying it byte by byte into a growing buffer cost an ACS login ~4 us, as much
/// as the decoding itself. The test for whitespace looks for any byte up to the space (all
/// ASCII whitespace is, and no base64 character is) without stopping at the first, so it
/// runs many bytes at a time.
pub(crate) fn base64_decode(text: &str, param: &'static str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let wrapped = bytes.iter().fold(false, |low, &b| low | (b <= b' '));
    let decoded = if wrapped {
        let mut compact = Vec::with_capacity(bytes.len());
        for line in bytes.split(u8::is_ascii_whitespace) {
            compact.extend_from_slice(line);
        }
        decode_compact(&compact)
    } else {
        decode_compact(bytes)
    };
    decoded.ok_or(Error::Base64(param))
}

/// Base64 without whitespace, padded or not. Padding may also be short (`QQ=`), as the
/// `base64` crate's engine that the bindings used before accepted, but never longer than the
/// last quantum needs (`QUI==`, `QUJD=` are refused).
fn decode_compact(bytes: &[u8]) -> Option<Vec<u8>> {
    let data = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let room = match data % 4 {
        0 => 0,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    if bytes.len() - data > room {
        return None;
    }
    base64_simd::STANDARD_NO_PAD
        .decode_to_vec(&bytes[..data])
        .ok()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use proptest::prelude::*;

    use super::{base64_decode, base64_encode};

    /// What the bindings decoded with before SIMD: the `base64` crate's standard alphabet,
    /// padding optional.
    const REFERENCE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    fn agree(text: &str) {
        let ours = base64_decode(text, "SAMLResponse").ok();
        let compact: String = text.split_ascii_whitespace().collect();
        let reference = REFERENCE.decode(compact).ok();
        assert_eq!(ours, reference, "{text:?}");
    }

    #[test]
    fn edge_cases_are_decided_as_the_base64_crate_decides_them() {
        for text in [
            "",
            "=",
            "==",
            "Q",
            "QQ",
            "QQ=",
            "QQ==",
            "QR",
            "QR==",
            "QUI",
            "QUI=",
            "QUJ",
            "QUJ=",
            "QUJD",
            "QUJD=",
            "QUJD====",
            "Q===",
            "QQ==QQ==",
            "QUJDRA",
            "QUJDRA==",
            "QUJ DRA==",
            "QUJD\nRA==",
            "QU\tJD",
            "QUJD\u{b}",
            "-_-_",
            "QUJD\0",
            "QUJDé",
            "QQ=\n=",
        ] {
            agree(text);
        }
    }

    proptest! {
        /// Any bytes, encoded with or without padding, and wrapped: decoded to themselves.
        #[test]
        fn encoded_bytes_decode_to_themselves(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            pad in any::<bool>(),
            wrap in 1usize..80,
        ) {
            let mut text = base64_encode(&bytes);
            if !pad {
                text = text.trim_end_matches('=').to_owned();
            }
            let wrapped: String = text
                .as_bytes()
                .chunks(wrap)
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect::<Vec<_>>()
                .join("\r\n");
            prop_assert_eq!(base64_decode(&wrapped, "SAMLResponse").ok(), Some(bytes));
        }

        /// Valid text with one character changed, cut or added: accepted and decoded, or
        /// refused, exactly as the `base64` crate does.
        #[test]
        fn altered_text_is_decided_as_the_base64_crate_decides_it(
            bytes in proptest::collection::vec(any::<u8>(), 0..120),
            pad in any::<bool>(),
            at in any::<prop::sample::Index>(),
            with in prop::sample::select(b"AQgw+/=-_ \n.\x00\x7f".to_vec()),
            how in 0u8..3,
        ) {
            let mut text = base64_encode(&bytes).into_bytes();
            if !pad {
                while text.last() == Some(&b'=') {
                    text.pop();
                }
            }
            let i = at.index(text.len() + 1);
            match how {
                0 if i < text.len() => text[i] = with,
                1 if i < text.len() => {
                    text.remove(i);
                }
                _ => text.insert(i, with),
            }
            agree(&String::from_utf8_lossy(&text));
        }
    }
}
