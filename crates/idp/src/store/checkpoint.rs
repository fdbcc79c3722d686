//! SQLite's WAL checkpoints, run by a task of their own rather than by whichever request's
//! commit happens to cross SQLite's threshold.
//!
//! Under WAL a commit appends pages to the `-wal` file, and a checkpoint copies them back into
//! the database, syncing both: under `synchronous = NORMAL` the only fsyncs there are. SQLite's
//! default runs that inside the commit that takes the WAL past 1,000 pages, so one sign-in or
//! SCIM change in a few hundred waits for a copy and two fsyncs (the write tail of
//! `latchkey bench list` and `bench sso`). A server instead checkpoints from [`spawn`]'s task
//! every [`EVERY`], off every request's path.
//!
//! The connections keep a threshold of their own, raised to [`FALLBACK`] (10,000 pages): should the
//! task stop, fail or fall behind, commits checkpoint as they did before, so the WAL stays
//! bounded whatever happens to this task (a side channel must not be what keeps the main job
//! going). A process that never starts the task (a CLI command) checkpoints when its last
//! connection closes, as SQLite always does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Backend, Store};
use crate::error::Result;

/// The WAL size (in pages) at which a commit checkpoints by itself: ten times SQLite's
/// default, reached only when [`spawn`]'s task is not keeping up (about 40 MiB of 4 KiB
/// pages).
pub(crate) const FALLBACK: &str = "PRAGMA wal_autocheckpoint = 10000";

/// How often the task checkpoints. At the write rates `bench sso` reaches, a fifth of a second
/// holds about as many pages as SQLite's own 1,000-page threshold.
pub const EVERY: Duration = Duration::from_millis(200);

/// What the checkpoint task has done, exported as metrics.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    rounds: AtomicU64,
    failures: AtomicU64,
    frames: AtomicU64,
}

impl CheckpointStats {
    /// Checkpoints that found new frames in the WAL.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Checkpoints that failed (the commits' own threshold then bounds the WAL).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Frames in the WAL at the last checkpoint: stays high when a reader keeps old pages
    /// from being copied, or when rounds fail.
    pub fn wal_frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// One checkpoint's outcome, as SQLite reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    /// Frames in the WAL.
    pub frames: i64,
    /// Of those, frames now copied into the database (all of them unless a reader still
    /// needs older pages).
    pub copied: i64,
}

/// Copies what the WAL holds into the database without waiting for readers or the writer
/// (`PASSIVE`: a frame a reader still needs stays for the next round). Cheap when there is
/// nothing new: SQLite then neither copies nor syncs.
pub async fn checkpoint(store: &Store) -> Result<Checkpointed> {
    let (_busy, frames, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&store.pool)
        .await?;
    Ok(Checkpointed { frames, copied })
}

/// Starts the checkpoint task on a SQLite store (`None` on PostgreSQL, which checkpoints by
/// itself). Abort the handle to stop it.
pub fn spawn(store: &Store) -> Option<(tokio::task::JoinHandle<()>, Arc<CheckpointStats>)> {
    if store.backend() != Backend::Sqlite {
        return None;
    }
    let stats = Arc::new(CheckpointStats::default());
    let task = tokio::spawn(run(store.clone(), Arc::clone(&stats)));
    Some((task, stats))
}

async fn run(store: Store, stats: Arc<CheckpointStats>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    let mut failing = false;
    loop {
        tick.tick().await;
        match checkpoint(&store).await {
            Ok(done) => {
                if done.frames > 0 && last != Some(done) {
                    stats.rounds.fetch_add(1, Ordering::Relaxed);
                }
                last = Some(done);
                stats
                    .frames
                    .store(u64::try_from(done.frames).unwrap_or(0), Ordering::Relaxed);
                if failing {
                    failing = false;
                    tracing::info!("SQLite checkpoints work again");
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                // Said once per spell of failures, not five times a second.
                if !failing {
                    failing = true;
                    tracing::warn!(
                        error = %e,
                        "SQLite checkpoint failed; commits checkpoint by themselves meanwhile"
                    );
                }
            }
        }
    }
}
