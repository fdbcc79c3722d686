//! A SQLite file opened for one process alone (`?vfs=unix-excl`), seen from another process:
//! Python's `sqlite3` (SQLite's default VFS, as the `sqlite3` shell or a backup tool opens a
//! file) is told the database is locked while the toolkit has it open, and reads it once the
//! toolkit has closed it; a file opened with the default VFS it reads at any time.

use std::process::Command;
use std::time::{Duration, Instant};

use latchkey_sp::jit::JitEngine;
use latchkey_sp::store::{Database, SqlAccountStore};

use crate::support::{WIKI, alice, contract, t0};

/// What another process gets when it counts the accounts in `file` without waiting for a
/// lock: `read <n>` or `refused <SQLite's message>`.
fn other_process_reads(file: &std::path::Path) -> String {
    let script = "import sqlite3, sys\n\
        c = sqlite3.connect(sys.argv[1], timeout=0)\n\
        try:\n    print('read', c.execute('SELECT count(*) FROM sp_accounts').fetchone()[0])\n\
        except sqlite3.OperationalError as e:\n    print('refused', e)\n";
    let out = Command::new(latchkey_testkit::oracle::python(&["sqlite3"]))
        .arg("-c")
        .arg(script)
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn signed_in_once(url: &str) -> Database {
    let db = Database::connect(url).await.unwrap();
    JitEngine::new(contract(WIKI), SqlAccountStore::new(db.clone()))
        .login(&alice(), t0())
        .await
        .unwrap();
    db
}

#[tokio::test]
async fn another_process_is_refused_a_file_opened_for_this_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sp.db");
    let db = signed_in_once(&format!(
        "sqlite://{}?mode=rwc&vfs=unix-excl",
        file.display()
    ))
    .await;
    assert_eq!(other_process_reads(&file), "refused database is locked");
    db.pool().close().await;
    drop(db);
    // The writer's thread closes its connection once the last handle is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = other_process_reads(&file);
        if seen == "read 1" {
            break;
        }
        assert!(Instant::now() < deadline, "still {seen:?} after closing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let shared = dir.path().join("shared.db");
    let _db = signed_in_once(&format!("sqlite://{}?mode=rwc", shared.display())).await;
    assert_eq!(other_process_reads(&shared), "read 1");
}
