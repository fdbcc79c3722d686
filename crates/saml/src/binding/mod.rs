//! The HTTP bindings (SAML bindings §3.4 and §3.5): how a message travels in a URL or
//! a form, with the size caps that keep a hostile request from costing us memory.

pub mod post;
pub mod redirect;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

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

/// Standard base64 that tolerates missing padding on input; peers differ.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes base64, skipping ASCII whitespace (POST forms are often line-wrapped).
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
        B64.decode(compact)
    } else {
        B64.decode(bytes)
    };
    decoded.map_err(|_| Error::Base64(param))
}
