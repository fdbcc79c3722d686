//! Passkeys and security keys (WebAuthn): enrolment, passwordless sign-in with a
//! discoverable credential, and a credential as a second factor after the password.
//!
//! # Why `webauthn-rs`
//! The ceremonies (CBOR, COSE keys, attestation formats, the client data and authenticator
//! data checks) are kanidm's `webauthn-rs`, audited and used by Kanidm in production, not
//! code of ours. From 0.6 its cryptography is RustCrypto (through `crypto-glue`) instead of
//! OpenSSL, so the workspace still builds on a machine with only the Rust toolchain and a C
//! compiler (no libssl-dev, pkg-config, perl or make); `cargo tree -i openssl-sys` is
//! empty. The pure-Rust alternatives (`webauthn_rp`, its fork `structured-webauthn`) are
//! younger, single-maintainer, and come with no software authenticator for tests, which
//! `webauthn-authenticator-rs` gives us.
//!
//! # What is stored where
//! * [`Credentials`]: a user's enrolled credentials (several each, named, last use), in
//!   `webauthn_credentials`; the crate's serialised `Passkey` holds only public data.
//! * [`Ceremonies`]: a ceremony under way keeps its challenge state server-side in
//!   `webauthn_challenges` (the crate warns that state held by the browser could be
//!   replayed). A finish deletes the row it uses in the same statement that reads it, so a
//!   challenge is answered at most once on every node; rows expire after
//!   [`CHALLENGE_LIFETIME`] by the store's clock, and each owner (a user, or an anonymous
//!   client's network) may hold [`MAX_PENDING_PER_OWNER`], the /64s of one IPv6 /48
//!   together five owners' worth, and all anonymous owners together [`MAX_PENDING`], so
//!   anonymous requests cannot grow the table, nor crowd out a user's own ceremonies.
//!
//! # Signature counters
//! A use is accepted only when its signature counter is above the stored one, or both are
//! 0 (synced passkeys do not count): anything else is WebAuthn's sign of a possibly cloned
//! authenticator (L2 §7.2 step 21), refused as `WEBAUTHN-COUNTER-REGRESSION` and audited as
//! `webauthn.counter_regression` (the credential, both counters, the address), the stored
//! counter unchanged. `webauthn-rs` compares with the counter its ceremony read; the
//! store's one conditional `UPDATE` compares with the counter stored now, so a use that a
//! higher one overtook (two tabs, or a copy of the key) is refused too, on every node.

mod ceremony;
pub(crate) mod challenges;
mod config;
mod credentials;
mod error;

pub use ceremony::{Ceremonies, Purpose, Started};
pub use challenges::{CHALLENGE_LIFETIME, MAX_PENDING, MAX_PENDING_PER_OWNER};
pub use config::WebauthnConfig;
pub use credentials::{Credential, CredentialId, Credentials, MAX_CREDENTIALS, MAX_NAME_CHARS};
pub use error::{Code, WebauthnError};

/// The JSON the browser exchanges with us, as `webauthn-rs` defines it.
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use url::Url;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The relying party: who we are to authenticators, built once from the configuration.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    inner: std::sync::Arc<Webauthn>,
    origin: Url,
    rp_id: String,
}

impl RelyingParty {
    /// The relying party for a server reachable at `base_url`, with `[webauthn]` overrides.
    /// A configuration the crate refuses (an RP ID that is not the origin's host or a parent
    /// of it, a non-http(s) origin) is an error here, at start-up, not at the first sign-in.
    pub fn new(base_url: &str, config: &WebauthnConfig) -> Result<Self, WebauthnError> {
        let bad = |reason: String| WebauthnError::Config(reason);
        let origin_text = config.origin.as_deref().unwrap_or(base_url);
        let origin = Url::parse(origin_text.trim())
            .map_err(|e| bad(format!("origin {origin_text:?}: {e}")))?;
        let rp_id = match &config.rp_id {
            Some(id) => id.trim().to_owned(),
            None => origin
                .host_str()
                .ok_or_else(|| bad(format!("origin {origin_text:?} has no host")))?
                .to_owned(),
        };
        let inner = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name(&config.rp_name).build())
            .map_err(|e| bad(format!("rp_id {rp_id:?} with origin {origin}: {e}")))?;
        Ok(RelyingParty {
            inner: std::sync::Arc::new(inner),
            origin,
            rp_id,
        })
    }

    /// The one origin assertions are accepted from.
    pub fn origin(&self) -> &Url {
        &self.origin
    }

    /// The RP ID credentials are scoped to.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    pub(crate) fn webauthn(&self) -> &Webauthn {
        &self.inner
    }
}
