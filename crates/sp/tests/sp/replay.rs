//! Both replay caches against the same behaviour: first use accepted, replay refused until
//! expiry, expired entries pruned.

use latchkey_sp::ReplayError;
use latchkey_sp::replay::{MemoryReplayCache, ReplayCache};
use time::Duration;

use crate::backends::replay::{common, replay_err};
use crate::support::t0;

#[tokio::test]
async fn memory_cache_refuses_replays_and_prunes() {
    let cache = MemoryReplayCache::new(100);
    common(&cache).await;
}

#[tokio::test]
async fn memory_cache_is_bounded_and_fails_closed() {
    let cache = MemoryReplayCache::new(2);
    let soon = t0() + Duration::minutes(1);
    let late = t0() + Duration::hours(1);
    cache.check_and_store("_1", t0(), soon, t0()).await.unwrap();
    cache.check_and_store("_2", t0(), late, t0()).await.unwrap();
    // Full of unexpired entries: refuse rather than evict.
    assert_eq!(
        replay_err(cache.check_and_store("_3", t0(), late, t0()).await),
        ReplayError::Full(2)
    );
    assert_eq!(cache.len(), 2);
    // Once "_1" expires, pruning makes room and "_2" is still remembered.
    let now = soon + Duration::seconds(1);
    cache.check_and_store("_3", t0(), late, now).await.unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(
        replay_err(cache.check_and_store("_2", t0(), late, now).await),
        ReplayError::Replayed("_2".to_owned())
    );
}
