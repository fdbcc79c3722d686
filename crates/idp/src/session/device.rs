//! Trusted-browser ("device") cookies, after OWASP's device-cookie pattern.
//!
//! A browser that has signed in to an account gets a cookie naming that account and a
//! random nonce, signed with HMAC-SHA256 under a key all nodes share. When it comes back,
//! its attempts for that account are throttled under its own nonce alone
//! ([`super::Slot::device`]): an attacker's failures from elsewhere lock untrusted browsers
//! out, not the owner. A cookie for another account, or one whose signature does not
//! verify, is simply not trusted: the attempt is throttled like any other.
//!
//! The key lives in the store (`server_secrets`), made on first use, so every node accepts
//! every node's cookies. Whoever can read the database could forge cookies; that gains them
//! the exemption from other browsers' failures and nothing else, while the same read would
//! give them the password hashes, a far better prize.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::Store;

/// Where the key is kept in `server_secrets`.
const SECRET_NAME: &str = "device_cookie_hmac";
/// Domain separation: this MAC means "a trusted browser of this account" and nothing else.
const CONTEXT: &str = "latchkey-device-v1";
const NONCE_BYTES: usize = 16;

/// The shared key that signs and checks device cookies.
pub struct DeviceKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKeys(<redacted>)")
    }
}

impl DeviceKeys {
    /// Reads the shared key, making it if no node has yet (the first writer wins and
    /// everyone reads the winner's).
    pub async fn load(store: &Store) -> Result<DeviceKeys> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        sqlx::query(
            "INSERT INTO server_secrets (name, secret) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(SECRET_NAME)
        .bind(URL_SAFE_NO_PAD.encode(fresh))
        .execute(store.pool())
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT secret FROM server_secrets WHERE name = $1")
                .bind(SECRET_NAME)
                .fetch_one(store.pool())
                .await?;
        let bytes = URL_SAFE_NO_PAD
            .decode(stored.as_bytes())
            .map_err(|e| Error::corrupt("server_secrets.secret", e))?;
        if bytes.len() < 32 {
            return Err(Error::corrupt(
                "server_secrets.secret",
                "shorter than 32 bytes",
            ));
        }
        Ok(DeviceKeys::from_secret(&bytes))
    }

    /// Keys from raw secret bytes (tests, and [`DeviceKeys::load`]).
    pub fn from_secret(secret: &[u8]) -> DeviceKeys {
        DeviceKeys {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn message(user: UserId, nonce: &str) -> String {
        format!("{CONTEXT}|{user}|{nonce}")
    }

    /// A new cookie value for `user`: `<user>.<nonce>.<mac>`.
    pub fn issue(&self, user: UserId) -> String {
        let mut raw = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut raw);
        let nonce = URL_SAFE_NO_PAD.encode(raw);
        let tag = hmac::sign(&self.key, Self::message(user, &nonce).as_bytes());
        format!("{user}.{nonce}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The nonce of `value` if it is a cookie this deployment signed for `user`.
    pub fn verify(&self, value: &str, user: UserId) -> Option<String> {
        let mut parts = value.split('.');
        let (Some(named), Some(nonce), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if named != user.to_string() || nonce.len() > 64 {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag.as_bytes()).ok()?;
        hmac::verify(&self.key, Self::message(user, nonce).as_bytes(), &tag).ok()?;
        Some(nonce.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_verifies_for_its_account_only_and_not_when_altered() {
        let keys = DeviceKeys::from_secret(&[7u8; 32]);
        let alice = UserId::new_random();
        let bob = UserId::new_random();
        let cookie = keys.issue(alice);
        let nonce = keys.verify(&cookie, alice).unwrap();
        assert!(cookie.contains(&nonce));
        assert_eq!(keys.verify(&cookie, bob), None);
        // Another nonce under the same signature, or another signature.
        let parts: Vec<&str> = cookie.split('.').collect();
        let swapped = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
        assert_eq!(keys.verify(&swapped, alice), None);
        let forged = format!("{}.{}.{}", parts[0], parts[1], "A".repeat(43));
        assert_eq!(keys.verify(&forged, alice), None);
        // Another deployment's key.
        assert_eq!(
            DeviceKeys::from_secret(&[8u8; 32]).verify(&cookie, alice),
            None
        );
        assert_eq!(keys.verify("", alice), None);
        assert_eq!(keys.verify(&format!("{cookie}.extra"), alice), None);
        // Two cookies for one account differ (fresh nonces).
        assert_ne!(keys.issue(alice), cookie);
    }
}
