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

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::PasswordConfig;
use crate::error::{Error, Result};

mod policy;

pub use policy::{PasswordRule, StrengthHint, is_common, strength};

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

/// The shortest `[password] min_length` a configuration may set (NIST SP 800-63B's floor).
pub const MIN_LENGTH_FLOOR: u32 = 8;
/// `[password] min_length` when the configuration says nothing.
pub const DEFAULT_MIN_LENGTH: u32 = 12;
/// Longest password accepted, so a request cannot make the hasher chew megabytes.
pub const MAX_LENGTH: usize = 1024;

fn params(config: &PasswordConfig) -> Result<Params> {
    Params::new(
        config.memory_kib,
        config.iterations,
        config.parallelism,
        None,
    )
    .map_err(|e| Error::PasswordHash(format!("bad Argon2 parameters: {e}")))
}

/// The working memory of one Argon2 computation (`memory_kib` KiB), reused while a burst
/// lasts and given back to the system when it is over.
///
/// The argon2 crate allocates this per hash when asked to. At 19 MiB that is above
/// glibc's mmap threshold only the first time: the threshold then rises, later hashes come
/// from per-thread arenas, and each arena keeps what it got (measured: ~17 MiB more
/// resident per hash under a burst, never returned). So a [`HashPool`] keeps one `Memory`
/// per slot while hashes are waiting, and drops them all when it goes idle. Each buffer is
/// reserved at [`RELEASABLE_BLOCKS`] at least: glibc's dynamic threshold never rises above
/// 32 MiB (`mallopt(3)`, `M_MMAP_THRESHOLD`), so a reservation past it is always its own
/// mapping and dropping it unmaps it. Only the blocks a hash uses are ever touched, so the
/// larger reservation costs address space, not resident memory.
#[derive(Default)]
pub struct Memory(Vec<Block>);

/// Blocks (1 KiB each) reserved for a [`Memory`] at least: just past glibc's largest mmap
/// threshold, so that dropping the buffer returns it to the system.
const RELEASABLE_BLOCKS: usize = 32 * 1024 + 8;

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Memory({} KiB)", self.0.len())
    }
}

impl Memory {
    /// The first `blocks` blocks, growing the buffer if it is smaller.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.capacity() < blocks {
            self.0 = Vec::with_capacity(blocks.max(RELEASABLE_BLOCKS));
        }
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::new());
        }
        &mut self.0[..blocks]
    }

    /// Gives back what a hash with other (older, larger) parameters made it grow to.
    fn fit(&mut self, blocks: usize) {
        if self.0.len() > blocks {
            self.0.truncate(blocks);
            self.0.shrink_to_fit();
        }
    }
}

/// Argon2 of `password` and `salt` into `out`, in `memory`.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &Password,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Memory,
) -> Result<()> {
    argon2
        .hash_password_into_with_memory(
            password.expose().as_bytes(),
            salt,
            out,
            memory.blocks(params.block_count()),
        )
        .map_err(|e| Error::PasswordHash(e.to_string()))
}

/// Checks the rules a new password must meet (length, the common-password list; see
/// [`policy`]) before any hashing.
pub fn check_policy(config: &PasswordConfig, password: &Password) -> Result<()> {
    policy::check(config, password)
}

/// Hashes a password into a PHC string with a fresh random salt.
pub fn hash(config: &PasswordConfig, password: &Password) -> Result<String> {
    hash_in(config, password, &mut Memory::default())
}

/// [`hash`] in the given working memory.
pub fn hash_in(
    config: &PasswordConfig,
    password: &Password,
    memory: &mut Memory,
) -> Result<String> {
    check_policy(config, password)?;
    let params = params(config)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    compute(&argon2, &params, password, &salt, &mut out, memory)?;
    // The PHC string format: B64 is the standard alphabet without padding.
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        config.memory_kib,
        config.iterations,
        config.parallelism,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Verifies a password against a stored PHC string; a malformed hash verifies nothing.
pub fn verify(stored: &str, password: &Password) -> bool {
    verify_in(stored, password, &mut Memory::default())
}

/// [`verify`] in the given working memory. The parameters come from the PHC string, not
/// from the current configuration.
pub fn verify_in(stored: &str, password: &Password, memory: &mut Memory) -> bool {
    if password.expose().len() > MAX_LENGTH {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if compute(&argon2, &params, password, salt, &mut out, memory).is_err() {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// Burns the same work as a real verification, for users that do not exist or have no
/// password, so response time does not reveal which usernames are valid.
pub fn dummy_verify(config: &PasswordConfig, password: &Password) {
    dummy_verify_in(config, password, &mut Memory::default());
}

/// [`dummy_verify`] in the given working memory.
pub fn dummy_verify_in(config: &PasswordConfig, password: &Password, memory: &mut Memory) {
    // As [`verify_in`]: a password too long to be anyone's is refused without hashing, for
    // an unknown name as for a known one (else its answer alone would tell them apart).
    if password.expose().len() > MAX_LENGTH {
        return;
    }
    if let Ok(params) = params(config) {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; 32];
        let _ = compute(&argon2, &params, password, &[0u8; 16], &mut out, memory);
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
    /// One working memory per slot at most, reused by every hash (see [`Memory`]).
    memories: std::sync::Mutex<Vec<Memory>>,
}

/// The longest a request waits for a hashing slot before it is refused.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// What `Retry-After` says when the pool refuses work.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// The list of working memories; a poisoned lock only means a hash panicked, and the
/// buffers themselves are still good.
fn lock(memories: &std::sync::Mutex<Vec<Memory>>) -> std::sync::MutexGuard<'_, Vec<Memory>> {
    memories
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
                memories: std::sync::Mutex::new(Vec::new()),
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

    /// Working memories kept for the next hash (none once the pool is idle).
    pub fn held_buffers(&self) -> usize {
        lock(&self.inner.memories).len()
    }

    /// Hashes a new password into a PHC string, after the password policy (checked first,
    /// so a refused password takes no hashing slot).
    pub async fn hash(&self, password: Password) -> Result<String> {
        let config = self.inner.config;
        check_policy(&config, &password)?;
        self.run(move |memory| hash_in(&config, &password, memory))
            .await?
    }

    /// Checks `password` against a stored PHC string; `stored = None` burns the same work as
    /// a real check and fails, so unknown names cost what known ones do.
    pub async fn verify(&self, stored: Option<String>, password: Password) -> Result<bool> {
        let config = self.inner.config;
        self.run(move |memory| match stored {
            Some(stored) => verify_in(&stored, &password, memory),
            None => {
                dummy_verify_in(&config, &password, memory);
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

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
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
            let pool = &running.0;
            let mut memory = lock(&pool.memories).pop().unwrap_or_default();
            let out = work(&mut memory);
            // The last hash of a burst gives every buffer back (see [`Memory`]); while
            // others wait, the buffer goes to the next one.
            let idle =
                pool.queued.load(Ordering::SeqCst) == 0 && pool.running.load(Ordering::SeqCst) == 1;
            if idle {
                let kept = std::mem::take(&mut *lock(&pool.memories));
                drop(kept);
                drop(memory);
            } else {
                if let Ok(params) = params(&pool.config) {
                    memory.fit(params.block_count());
                }
                lock(&pool.memories).push(memory);
            }
            pool.completed.fetch_add(1, Ordering::SeqCst);
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

    /// A password too long to check costs a known name (no hash at all) what it costs an
    /// unknown one: a login form's answer time must not tell which names exist.
    #[test]
    fn an_overlong_password_costs_known_and_unknown_names_the_same() {
        let config = cheap();
        let stored = hash(&config, &Password::new("correct horse staple")).unwrap();
        let long = Password::new("x".repeat(MAX_LENGTH + 1));
        let mut known = Memory::default();
        assert!(!verify_in(&stored, &long, &mut known));
        let mut unknown = Memory::default();
        dummy_verify_in(&config, &long, &mut unknown);
        assert_eq!(known.0.len(), 0, "a known name hashes nothing");
        assert_eq!(unknown.0.len(), known.0.len(), "nor does an unknown one");
        // At the limit both do the full work.
        let limit = Password::new("x".repeat(MAX_LENGTH));
        assert!(!verify_in(&stored, &limit, &mut known));
        dummy_verify_in(&config, &limit, &mut unknown);
        assert_eq!(known.0.len(), 64);
        assert_eq!(unknown.0.len(), 64);
    }

    #[test]
    fn hash_and_verify_round_trip() {
        let pw = Password::new("correct horse staple");
        let stored = hash(&cheap(), &pw).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(verify(&stored, &pw));
        assert!(!verify(&stored, &Password::new("correct horse staplf")));
        assert!(!verify("not a phc string", &pw));
    }

    #[test]
    fn our_phc_strings_are_the_argon2_crates_and_both_verify_each_other() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let pw = Password::new("correct horse staple");
        let ours = hash(&cheap(), &pw).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse staple", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct horse staplf", &parsed)
                .is_err()
        );
        let params = Params::new(64, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(
                b"correct horse staple",
                &SaltString::encode_b64(&[9u8; 16]).unwrap(),
            )
            .unwrap()
            .to_string();
        let mut memory = Memory::default();
        assert!(verify_in(&theirs, &pw, &mut memory));
        assert!(!verify_in(
            &theirs,
            &Password::new("correct horse staplf"),
            &mut memory
        ));
        // A hash made with larger memory than the buffer holds still verifies (the buffer
        // grows), and `fit` gives the growth back.
        let big = hash(
            &PasswordConfig {
                memory_kib: 256,
                ..cheap()
            },
            &pw,
        )
        .unwrap();
        assert!(verify_in(&big, &pw, &mut memory));
        assert_eq!(memory.0.len(), 256);
        memory.fit(64);
        assert_eq!(memory.0.len(), 64);
        // An argon2i or argon2d string verifies too (imported from elsewhere).
        let argon2d = Argon2::new(
            Algorithm::Argon2d,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"correct horse staple",
            &SaltString::encode_b64(&[3u8; 16]).unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(verify_in(&argon2d, &pw, &mut memory));
        assert!(!verify_in(
            "$argon2id$v=19$m=64,t=1,p=1$AAAA",
            &pw,
            &mut memory
        ));
    }

    #[test]
    fn salts_differ() {
        let pw = Password::new("correct horse staple");
        assert_ne!(hash(&cheap(), &pw).unwrap(), hash(&cheap(), &pw).unwrap());
    }

    #[test]
    fn owasp_defaults_are_used() {
        let stored = hash(
            &PasswordConfig::default(),
            &Password::new("password1 but longer"),
        )
        .unwrap();
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
            Error::PasswordRefused {
                rule: PasswordRule::TooShort { min: 12 }
            }
        ));
        assert_eq!(err.code().as_str(), "password_too_short");
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
            p.run(move |_| {
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
        assert!(pool.hash(Password::new("whatever1 is long")).await.is_err());
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

    /// A burst reuses the working memories; the hash that ends it gives them all back, and
    /// each is reserved past glibc's largest mmap threshold so that giving it back unmaps it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn buffers_are_reused_while_hashes_wait_and_given_back_when_idle() {
        let pool = bounded(1, 1);
        let (release, task) = hold(&pool).await;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let waiting = {
            let (p, seen) = (pool.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                p.run(move |m| {
                    let capacity = m.0.capacity();
                    let used = m.blocks(64).len();
                    lock_seen(&seen).push((capacity, used, m.0.capacity()));
                })
                .await
            })
        };
        while pool.inner.queued.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        task.await.unwrap();
        waiting.await.unwrap().unwrap();
        let seen = lock_seen(&seen).clone();
        // The held slot's (unused) buffer went to the waiting hash; that one grew it to a
        // releasable reservation, of which it used what its parameters need.
        assert_eq!(seen, [(0, 64, RELEASABLE_BLOCKS)]);
        assert_eq!(pool.held_buffers(), 0, "idle: nothing kept");
        // A lone hash keeps nothing either.
        assert!(!pool.verify(None, Password::new("whatever1")).await.unwrap());
        assert_eq!(pool.held_buffers(), 0);
    }

    fn lock_seen<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap()
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
