//! Group commit for the sign-in path's audit lines.
//!
//! Every sign-in, assertion and denial is an audit line, and the server answers only once
//! its line is stored: an assertion must never be out in the world without its record.
//! Written one by one, each line is a statement and a commit of its own, and under load the
//! commits are most of the database work (with SQLite, each also makes every other pooled
//! connection re-read its cached pages). So requests hand their line to one writer task,
//! which stores everything that arrived while its previous write was in flight as one
//! multi-row `INSERT`, then wakes each waiting request with the outcome. One request alone
//! costs the same single statement as before; many requests share one.
//!
//! A line may carry a [`Claim`]: the AuthnRequest ID its answer uses up
//! ([`crate::sso::replay`]). A batch with claims is one transaction: one multi-row upsert
//! records every claim, answering each whether its ID was still free, then the lines of the
//! winners are inserted and the whole commits. A request whose ID was taken (a replay, on
//! this node or another, or earlier in the same batch) gets `false` and no line, and sends
//! no Response; the others are answered only after the commit, so no Response is out before
//! the record that makes its request ID used. A batch without claims is the one `INSERT`
//! in autocommit, as before.
//!
//! Directory and application changes do not come here: their lines are written inside the
//! change's own transaction (see [`super::record`]).
//!
//! Every sign-in waits on this one task, so it must not die: each batch is written by a task
//! of its own, and a panic there (in sqlx, in a log call) fails that batch like a database
//! error would, while the writer carries on with the next. A failed batch answers its
//! requests with the error and nothing is retried, so the writer works again as soon as the
//! database does. Should the writer still end, [`AuditBatcher::is_alive`] says so and the
//! node stops answering ready (`/readyz`).

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::{Actor, Change, Line, insert_lines};
use crate::error::{Error, Result};
use crate::sso::Claim;
use crate::sso::replay::claim_all;
use crate::store::{self, Store};

/// Most lines in one statement: 10 parameters each stays far below every backend's limit
/// (SQLite 32,766, PostgreSQL 65,535), and a batch this size is already one cheap commit.
const MAX_BATCH: usize = 64;

/// Lines waiting for the writer; requests wait (back-pressure) when it is this far behind.
const QUEUE: usize = 1024;

struct Job {
    line: Line,
    claim: Option<Claim>,
    done: oneshot::Sender<std::result::Result<bool, String>>,
}

/// The handle requests write through; cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditBatcher {
    jobs: mpsc::Sender<Job>,
    writer: AbortHandle,
}

impl AuditBatcher {
    /// Starts the writer on the current Tokio runtime. It ends when the last handle is
    /// dropped, after storing what was queued.
    pub fn start(store: Store) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(writer(store, queue)).abort_handle();
        AuditBatcher { jobs, writer }
    }

    /// Whether the writer task is still running and taking lines.
    pub fn is_alive(&self) -> bool {
        !self.writer.is_finished() && !self.jobs.is_closed()
    }

    /// Stops the writer at once, lines in flight failing as in a crash; readiness then says
    /// so. For tests of what a dead writer does to the node.
    pub fn abort(&self) {
        self.writer.abort();
    }

    /// Stores one line stamped `at` (the caller's [`Store::now`]); returns once it is committed.
    pub async fn record(&self, actor: &Actor, at: OffsetDateTime, change: Change) -> Result<()> {
        self.submit(actor, at, change, None).await.map(|_| ())
    }

    /// Records `claim` (if any) and stores the line in one transaction; returns once it is
    /// committed: `true`, or `false` when the claim's ID was already used, in which case
    /// nothing was written and the caller must not answer the request (module docs).
    pub async fn record_claiming(
        &self,
        actor: &Actor,
        at: OffsetDateTime,
        change: Change,
        claim: Option<Claim>,
    ) -> Result<bool> {
        self.submit(actor, at, change, claim).await
    }

    async fn submit(
        &self,
        actor: &Actor,
        at: OffsetDateTime,
        change: Change,
        claim: Option<Claim>,
    ) -> Result<bool> {
        let line = Line::new(actor, at, change);
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { line, claim, done })
            .await
            .map_err(|_| Error::AuditUnavailable("the audit writer has stopped".into()))?;
        match outcome.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(e)) => Err(Error::AuditUnavailable(e)),
            Err(_) => Err(Error::AuditUnavailable(
                "the audit writer stopped before storing the line".into(),
            )),
        }
    }
}

async fn writer(store: Store, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut entries = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            entries.push((job.line, job.claim));
            waiting.push(job.done);
        }
        let count = entries.len();
        let store = store.clone();
        // A task of its own, so that a panic while writing fails this batch, not the writer.
        let written = tokio::spawn(async move {
            write(&store, entries).await.map_err(|e| {
                tracing::error!(error = %e, lines = count, "audit lines could not be stored");
                e.to_string()
            })
        })
        .await;
        let outcome = written.unwrap_or_else(|e| {
            tracing::error!(error = %e, lines = count, "the audit write crashed");
            Err(format!("the audit write crashed: {e}"))
        });
        match outcome {
            Ok(stored) => {
                for (done, stored) in waiting.into_iter().zip(stored) {
                    // A request that gave up waiting (its client went away) needs no answer.
                    let _ = done.send(Ok(stored));
                }
            }
            Err(e) => {
                for done in waiting {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One batch: without claims, one statement on a pooled connection (autocommit); with
/// claims, the claims' upsert and the winners' lines in one transaction. Answers, line by
/// line, whether it was stored (`false`: its claim lost).
async fn write(store: &Store, entries: Vec<(Line, Option<Claim>)>) -> Result<Vec<bool>> {
    let claims: Vec<&Claim> = entries.iter().filter_map(|(_, c)| c.as_ref()).collect();
    if claims.is_empty() {
        let lines: Vec<Line> = entries.into_iter().map(|(line, _)| line).collect();
        let mut conn = store.pool().acquire().await?;
        insert_lines(&mut conn, &lines).await?;
        return Ok(vec![true; lines.len()]);
    }
    let mut tx = store.begin().await?;
    let won = claim_all(store::conn(&mut tx), &claims, store.now()).await?;
    let mut won = won.into_iter();
    let stored: Vec<bool> = entries
        .iter()
        .map(|(_, claim)| claim.is_none() || won.next().unwrap_or(false))
        .collect();
    let lines: Vec<Line> = entries
        .into_iter()
        .zip(&stored)
        .filter(|(_, stored)| **stored)
        .map(|((line, _), _)| line)
        .collect();
    insert_lines(store::conn(&mut tx), &lines).await?;
    store::commit(tx).await?;
    Ok(stored)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use sqlx::Connection as _;

    use super::*;
    use crate::config::PasswordConfig;

    fn change(target: &str) -> Change {
        Change {
            action: "test.line",
            target_kind: "test",
            target_id: target.into(),
            target_name: target.into(),
            before: None,
            after: None,
        }
    }

    /// The writer answers a failed write with the error and keeps going: once the database
    /// takes writes again, so does the audit log, with no restart.
    #[tokio::test]
    async fn the_writer_recovers_when_the_database_does() {
        let dir = tempfile::tempdir().unwrap();
        let cheap = PasswordConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
            ..PasswordConfig::default()
        };
        let url = crate::config::sqlite_url(&dir.path().join("latchkey.db"));
        let clock = crate::ManualClock::new(time::macros::datetime!(2026-05-01 08:00 UTC));
        let store = Store::open_url(&url, 2, cheap)
            .await
            .unwrap()
            .with_clock(clock.clone());
        let batcher = AuditBatcher::start(store.clone());
        let actor = Actor::system();
        batcher
            .record(&actor, store.now(), change("before"))
            .await
            .unwrap();

        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE; UPDATE readiness_probe SET probed_at = 'held'")
            .execute(&mut holder)
            .await
            .unwrap();
        // SQLite's busy timeout (5 s) runs out, and the line is refused, not lost silently.
        let err = batcher
            .record(&actor, store.now(), change("locked"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AuditUnavailable(_)), "{err}");
        assert!(err.to_string().contains("locked"), "{err}");
        assert!(batcher.is_alive());

        holder.close().await.unwrap();
        clock.advance(time::Duration::minutes(1));
        batcher
            .record(&actor, store.now(), change("after"))
            .await
            .unwrap();
        let lines: Vec<(String, String)> = sqlx::query_as(
            "SELECT target_id, at FROM audit_events WHERE action = 'test.line' ORDER BY at",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let stamped = |target: &str, at: &str| (target.to_owned(), at.to_owned());
        assert_eq!(
            lines,
            [
                stamped("before", "2026-05-01T08:00:00.000000Z"),
                stamped("after", "2026-05-01T08:01:00.000000Z"),
            ]
        );
    }
}
