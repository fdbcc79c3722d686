//! Password hashing with Argon2id.
//!
//! Hashes are stored as PHC strings (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`), so raising the
//! cost in the configuration does not invalidate old hashes: they keep verifying with the
//! parameters they were made with, and [`needs_rehash`] tells a login path to upgrade them.
//!
//! # Security
//! Hashing is deliberately slow and memory-hard; async callers go through the node's one
//! [`HashPool`], so a login storm can neither stall the runtime's worker threads nor take
//! more memory than the pool's bound.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;
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

/// The bounded pool every Argon2 computation of a node goes through.
///
/// Each hash holds `memory_kib` (19 MiB by default) for its duration, and anyone can ask for
/// one by posting the sign-in form, so without a bound a burst of anonymous requests takes
/// as much memory and as many threads as it likes. At most `max_concurrent` hashes run at
/// once (on Tokio's blocking threads); at most `max_queued` requests wait for a slot, and
/// each for at most [`QUEUE_WAIT`]. Past either bound the caller gets [`Error::Busy`] at
/// once, which the web and the API answer with 503 and `Retry-After`: refusing is cheap,
/// hashing is not.
#[derive(Debug, Clone)]
pub struct HashPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    config: PasswordConfig,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    max_queued: usize,
    queued: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    completed: AtomicU64,
    refused: AtomicU64,
}

/// The longest a request waits for a hashing slot before it is refused.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// What `Retry-After` says when the pool refuses work.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// A snapshot of a [`HashPool`]'s counters, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashStats {
    /// The bound on hashes running at once.
    pub max_concurrent: usize,
    /// The bound on requests waiting.
    pub max_queued: usize,
    /// Hashes running now.
    pub running: usize,
    /// The most hashes that ever ran at once.
    pub peak: usize,
    /// Hashes finished (real and dummy verifications, new hashes).
    pub completed: u64,
    /// Requests refused because the pool was full.
    pub refused: u64,
}

/// Keeps [`PoolInner::running`] right however the hash ends. It lives inside the blocking
/// task with the slot's permit, so a caller that goes away mid-hash frees neither before
/// the hash is really done.
struct Running(Arc<PoolInner>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Gives back a queue place however the wait ends.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl HashPool {
    /// A pool for `config`'s cost and bounds (0 bounds mean: one slot per core, four queue
    /// places per slot).
    pub fn new(config: PasswordConfig) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let max_concurrent = match config.max_concurrent {
            0 => cores,
            n => usize::try_from(n).unwrap_or(cores),
        };
        let max_queued = match config.max_queued {
            0 => max_concurrent.saturating_mul(4),
            n => usize::try_from(n).unwrap_or(max_concurrent),
        };
        HashPool {
            inner: Arc::new(PoolInner {
                config,
                slots: Arc::new(Semaphore::new(max_concurrent)),
                max_concurrent,
                max_queued,
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
                completed: AtomicU64::new(0),
                refused: AtomicU64::new(0),
            }),
        }
    }

    /// The Argon2id parameters new hashes are made with.
    pub fn config(&self) -> PasswordConfig {
        self.inner.config
    }

    /// The pool's counters.
    pub fn stats(&self) -> HashStats {
        let i = &self.inner;
        HashStats {
            max_concurrent: i.max_concurrent,
            max_queued: i.max_queued,
            running: i.running.load(Ordering::SeqCst),
            peak: i.peak.load(Ordering::SeqCst),
            completed: i.completed.load(Ordering::SeqCst),
            refused: i.refused.load(Ordering::SeqCst),
        }
    }

    /// Hashes a new password (after the length rules) into a PHC string.
    pub async fn hash(&self, password: Password) -> Result<String> {
        check_policy(&password)?;
        let config = self.inner.config;
        self.run(move || hash(&config, &password)).await?
    }

    /// Checks `password` against a stored PHC string; `stored = None` burns the same work as
    /// a real check and fails, so unknown names cost what known ones do.
    pub async fn verify(&self, stored: Option<String>, password: Password) -> Result<bool> {
        let config = self.inner.config;
        self.run(move || match stored {
            Some(stored) => verify(&stored, &password),
            None => {
                dummy_verify(&config, &password);
                false
            }
        })
        .await
    }

    fn busy(&self) -> Error {
        self.inner.refused.fetch_add(1, Ordering::SeqCst);
        Error::Busy {
            what: "password hashing",
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let inner = &self.inner;
        let permit = match Arc::clone(&inner.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // The place in the queue is taken atomically, before waiting: a burst cannot
                // all see "room left" and all join.
                if inner.queued.fetch_add(1, Ordering::SeqCst) >= inner.max_queued {
                    inner.queued.fetch_sub(1, Ordering::SeqCst);
                    return Err(self.busy());
                }
                let _place = Queued(&inner.queued);
                let slots = Arc::clone(&inner.slots);
                match tokio::time::timeout(QUEUE_WAIT, slots.acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) | Err(_) => return Err(self.busy()),
                }
            }
        };
        let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
        inner.peak.fetch_max(now, Ordering::SeqCst);
        let running = Running(Arc::clone(inner));
        let outcome = tokio::task::spawn_blocking(move || {
            let out = work();
            running.0.completed.fetch_add(1, Ordering::SeqCst);
            drop(running);
            drop(permit);
            out
        })
        .await;
        outcome.map_err(|e| Error::PasswordHash(format!("hashing task failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordConfig {
        PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
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

    fn bounded(max_concurrent: u32, max_queued: u32) -> HashPool {
        HashPool::new(PasswordConfig {
            max_concurrent,
            max_queued,
            ..cheap()
        })
    }

    /// Holds one slot of `pool` until the returned sender is dropped or sent to.
    async fn hold(pool: &HashPool) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let task = tokio::spawn(async move {
            p.run(move || {
                let _ = wait.recv();
            })
            .await
            .unwrap();
        });
        while pool.stats().running == 0 {
            tokio::task::yield_now().await;
        }
        (release, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_with_no_queue_refuses_at_once_and_counts_it() {
        let pool = bounded(1, 0);
        let (release, task) = hold(&pool).await;
        let err = pool
            .verify(None, Password::new("whatever1"))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Busy {
                retry_after_seconds: RETRY_AFTER_SECONDS,
                ..
            }
        ));
        assert!(pool.hash(Password::new("whatever1")).await.is_err());
        release.send(()).unwrap();
        task.await.unwrap();
        let stats = pool.stats();
        assert_eq!((stats.refused, stats.running, stats.peak), (2, 0, 1));
        // Free again: the next one runs.
        assert!(!pool.verify(None, Password::new("whatever1")).await.unwrap());
        assert_eq!(pool.stats().completed, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_holds_its_bound_and_the_rest_are_refused() {
        let pool = bounded(1, 1);
        let (release, task) = hold(&pool).await;
        let waiting = {
            let p = pool.clone();
            tokio::spawn(async move { p.verify(None, Password::new("whatever1")).await })
        };
        while pool.inner.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            pool.verify(None, Password::new("whatever1")).await,
            Err(Error::Busy { .. })
        ));
        release.send(()).unwrap();
        task.await.unwrap();
        assert!(!waiting.await.unwrap().unwrap(), "the queued check ran");
        let stats = pool.stats();
        assert_eq!((stats.refused, stats.peak, stats.completed), (1, 1, 2));
        assert_eq!(pool.inner.queued.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn zero_bounds_mean_one_slot_per_core_and_four_queue_places_each() {
        let stats = bounded(0, 0).stats();
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        assert_eq!((stats.max_concurrent, stats.max_queued), (cores, cores * 4));
    }

    #[test]
    fn debug_does_not_leak() {
        assert_eq!(
            format!("{:?}", Password::new("secret")),
            "Password(<redacted>)"
        );
    }
}
