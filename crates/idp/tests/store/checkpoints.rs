//! SQLite's WAL checkpoints: commits leave them to the server's task (they no longer pay for
//! one every 1,000 pages), the task does them, and the WAL stays bounded without it.

use std::time::Duration;

use latchkey_idp::config::{Config, PasswordConfig};
use latchkey_idp::directory::NewUser;
use latchkey_idp::store::checkpoint;

const PAGE: u64 = 4096;

async fn sqlite_store(dir: &std::path::Path) -> latchkey_idp::Store {
    let config = Config {
        data_dir: dir.to_path_buf(),
        password: PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
        },
        ..Config::default()
    };
    latchkey_idp::Store::open(&config).await.unwrap()
}

/// Frames the WAL file has room for: its size only grows until a checkpoint lets a writer
/// start it again from the first frame.
fn wal_frames(dir: &std::path::Path) -> u64 {
    let len = std::fs::metadata(dir.join("latchkey.db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    len.saturating_sub(32) / (PAGE + 24)
}

/// Commits of 50 new users each, small enough that SQLite's default threshold (1,000 pages)
/// would have checkpointed several times over before the WAL reached 1,500 frames; writes
/// them until the WAL file holds more than `past_frames`, and returns how many were made.
async fn write_batches(
    store: &latchkey_idp::Store,
    dir: &std::path::Path,
    past_frames: u64,
) -> u64 {
    for batch in 0..2_000 {
        write_batch(store, &format!("a{batch}")).await;
        if wal_frames(dir) > past_frames {
            return batch + 1;
        }
    }
    panic!(
        "2,000 batches left the WAL at {} frames: commits still checkpoint",
        wal_frames(dir)
    );
}

async fn write_batch(store: &latchkey_idp::Store, prefix: &str) {
    let news = (0..50)
        .map(|i| {
            let name = format!("{prefix}x{i}");
            NewUser::new(&name, format!("{name}@example.org"))
        })
        .collect();
    store
        .users()
        .create_many(&crate::storage::admin(), news)
        .await
        .unwrap();
}

#[tokio::test]
async fn commits_leave_checkpoints_to_the_task_which_does_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(tmp.path()).await;
    // No task yet: the commits themselves must not have checkpointed at 1,000 pages.
    write_batches(&store, tmp.path(), 1_500).await;
    let (task, stats) = checkpoint::spawn(&store).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while stats.rounds() == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
        tokio::time::sleep(checkpoint::EVERY).await;
    }
    assert!(stats.wal_frames() > 1_500, "{}", stats.wal_frames());
    assert_eq!(stats.failures(), 0);
    // Everything was copied (no reader held old pages), so the next commits start the WAL
    // again from its first frame instead of growing the file.
    let done = checkpoint::checkpoint(&store).await.unwrap();
    assert_eq!(done.copied, done.frames);
    let size = wal_frames(tmp.path());
    let rounds = stats.rounds();
    store
        .users()
        .create(
            &crate::storage::admin(),
            NewUser::new("late", "late@example.org"),
        )
        .await
        .unwrap();
    while stats.rounds() == rounds {
        assert!(
            std::time::Instant::now() < deadline,
            "the new frames were not checkpointed"
        );
        tokio::time::sleep(checkpoint::EVERY).await;
    }
    assert!(stats.wal_frames() < 100, "{}", stats.wal_frames());
    assert_eq!(wal_frames(tmp.path()), size);
    task.abort();
}

/// Without the task (stopped, failing, or a process that never starts it) the commits' own,
/// larger threshold still bounds the WAL: past 10,000 pages a commit checkpoints, and the
/// WAL file stops growing.
#[tokio::test]
async fn without_the_task_commits_still_bound_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sqlite_store(tmp.path()).await;
    let batches = write_batches(&store, tmp.path(), 8_000).await;
    let per_batch = wal_frames(tmp.path()) / batches;
    // Enough for 4,000 frames more: 12,000 and up if nothing checkpointed.
    for batch in 0..(4_000 / per_batch.max(1) + 1) {
        write_batch(&store, &format!("b{batch}")).await;
    }
    let frames = wal_frames(tmp.path());
    assert!(
        (8_000..10_000 + 2 * per_batch + 50).contains(&frames),
        "{frames} frames ({per_batch} a batch)"
    );
}
