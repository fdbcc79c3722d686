//! The `[webauthn]` section: who the IdP is to authenticators.

use serde::{Deserialize, Serialize};

/// The `[webauthn]` section. Every key may be left out: the relying party is then the
/// server's `base_url` (its host is the RP ID, the URL itself the one accepted origin), which
/// is right for every deployment that serves the sign-in page from that URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The RP ID credentials are bound to: the host of `base_url`, or a registrable parent
    /// of it (`example.org` for `idp.example.org`) so that keys survive a move of the IdP
    /// to another subdomain. Changing it later orphans every enrolled credential.
    pub rp_id: Option<String>,
    /// The origin browsers sign in from, `scheme://host[:port]`; default: `base_url`.
    pub origin: Option<String>,
    /// The name authenticators show when a credential is created.
    pub rp_name: String,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        WebauthnConfig {
            rp_id: None,
            origin: None,
            rp_name: "Latchkey".into(),
        }
    }
}
