//! Password hashing with Argon2id.
//!
//! Hashes are stored as PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`), so raising the
//! cost in the configuration does not invalidate old hashes: they keep verifying with the
//! parameters they were made with, and [`needs_rehash`] tells a login path to upgrade them.
//!
//! # Security
//! Hashing is deliberately slow; async callers should go through [`hash_blocking`] and
//! [`verify_blocking`] so a login storm cannot stall the runtime's worker threads.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// A clear-text password on its way to being hashed; zeroized on drop and never printed.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a clear-text password.
    pub fn new(clear: impl Into<String>) -> Self {
        Password(Zeroizing::new(clear.into()))
    }

    /// The clear text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Shortest password accepted; longer rules belong to an admin-configured policy.
pub const MIN_LENGTH: usize = 8;
/// Longest password accepted, so a request cannot make the hasher chew megabytes.
pub const MAX_LENGTH: usize = 1024;

fn hasher(config: &PasswordConfig) -> Result<Argon2<'static>> {
    let params = Params::new(
        config.memory_kib,
        config.iterations,
        config.parallelism,
        None,
    )
    .map_err(|e| Error::PasswordHash(format!("bad Argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks the length rules that apply before any hashing.
pub fn check_policy(password: &Password) -> Result<()> {
    let len = password.expose().chars().count();
    if len < MIN_LENGTH {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if password.expose().len() > MAX_LENGTH {
        return Err(Error::invalid(
            "password",
            format!("must be at most {MAX_LENGTH} bytes"),
        ));
    }
    Ok(())
}

/// Hashes a password into a PHC string with a fresh random salt.
pub fn hash(config: &PasswordConfig, password: &Password) -> Result<String> {
    check_policy(password)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::PasswordHash(e.to_string()))?;
    let phc = hasher(config)?
        .hash_password(password.expose().as_bytes(), &salt)
        .map_err(|e| Error::PasswordHash(e.to_string()))?;
    Ok(phc.to_string())
}

/// Verifies a password against a stored PHC string; a malformed hash verifies nothing.
pub fn verify(stored: &str, password: &Password) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    if password.expose().len() > MAX_LENGTH {
        return false;
    }
    // The parameters come from the PHC string, not from the current configuration.
    Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

/// Burns the same work as a real verification, for users that do not exist or have no
/// password, so response time does not reveal which usernames are valid.
pub fn dummy_verify(config: &PasswordConfig, password: &Password) {
    if let Ok(hasher) = hasher(config) {
        let salt = SaltString::encode_b64(&[0u8; 16]);
        if let Ok(salt) = salt {
            let _ = hasher.hash_password(password.expose().as_bytes(), &salt);
        }
    }
}

/// Whether a stored hash was made with other parameters (or another algorithm) than the
/// configured ones and should be replaced at the next successful login.
pub fn needs_rehash(config: &PasswordConfig, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    let get = |name: &str| parsed.params.get_decimal(name);
    get("m") != Some(config.memory_kib)
        || get("t") != Some(config.iterations)
        || get("p") != Some(config.parallelism)
}

/// [`hash`] on the blocking thread pool.
pub async fn hash_blocking(config: PasswordConfig, password: Password) -> Result<String> {
    tokio::task::spawn_blocking(move || hash(&config, &password))
        .await
        .map_err(|e| Error::PasswordHash(format!("hashing task failed: {e}")))?
}

/// [`verify`] on the blocking thread pool; `stored = None` runs [`dummy_verify`] and fails.
pub async fn verify_blocking(
    config: PasswordConfig,
    stored: Option<String>,
    password: Password,
) -> bool {
    tokio::task::spawn_blocking(move || match stored {
        Some(stored) => verify(&stored, &password),
        None => {
            dummy_verify(&config, &password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn hash_and_verify_round_trip() {
        let pw = Password::new("correct horse");
        let stored = hash(&cheap(), &pw).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(verify(&stored, &pw));
        assert!(!verify(&stored, &Password::new("correct horsf")));
        assert!(!verify("not a phc string", &pw));
    }

    #[test]
    fn salts_differ() {
        let pw = Password::new("correct horse");
        assert_ne!(hash(&cheap(), &pw).unwrap(), hash(&cheap(), &pw).unwrap());
    }

    #[test]
    fn owasp_defaults_are_used() {
        let stored = hash(&PasswordConfig::default(), &Password::new("password1")).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!needs_rehash(&PasswordConfig::default(), &stored));
        assert!(needs_rehash(&cheap(), &stored));
    }

    #[test]
    fn short_password_is_refused() {
        let err = hash(&cheap(), &Password::new("short")).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidField {
                field: "password",
                ..
            }
        ));
    }

    #[test]
    fn debug_does_not_leak() {
        assert_eq!(
            format!("{:?}", Password::new("secret")),
            "Password(<redacted>)"
        );
    }
}
