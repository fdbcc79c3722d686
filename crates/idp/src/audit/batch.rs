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
//! Directory and application changes do not come here: their lines are written inside the
//! change's own transaction (see [`super::record`]).

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Actor, Change};
use crate::error::{Error, Result};
use crate::store::{Store, timestamp};

/// Most lines in one statement: 9 parameters each stays far below every backend's limit
/// (SQLite 32,766, PostgreSQL 65,535), and a batch this size is already one cheap commit.
const MAX_BATCH: usize = 64;

/// Lines waiting for the writer; requests wait (back-pressure) when it is this far behind.
const QUEUE: usize = 1024;

/// A line ready to store, with its time taken when the request made it.
struct Line {
    id: String,
    at: String,
    actor: String,
    action: &'static str,
    target_kind: &'static str,
    target_id: String,
    target_name: String,
    before: Option<String>,
    after: Option<String>,
}

struct Job {
    line: Line,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The handle requests write through; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AuditBatcher {
    jobs: mpsc::Sender<Job>,
}

impl AuditBatcher {
    /// Starts the writer on the current Tokio runtime. It ends when the last handle is
    /// dropped, after storing what was queued.
    pub(crate) fn start(store: Store) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, queue));
        AuditBatcher { jobs }
    }

    /// Stores one line; returns once it is committed.
    pub(crate) async fn record(&self, actor: &Actor, change: Change) -> Result<()> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string);
        let line = Line {
            id: Uuid::new_v4().hyphenated().to_string(),
            at: timestamp::format(timestamp::now()),
            actor: actor.as_str().to_owned(),
            action: change.action,
            target_kind: change.target_kind,
            before: json(&change.before),
            after: json(&change.after),
            target_id: change.target_id,
            target_name: change.target_name,
        };
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { line, done })
            .await
            .map_err(|_| Error::AuditUnavailable("the audit writer has stopped".into()))?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
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
        let outcome = insert(&store, &batch).await.map_err(|e| {
            tracing::error!(error = %e, lines = batch.len(), "audit lines could not be stored");
            e.to_string()
        });
        for job in batch.drain(..) {
            // A request that gave up waiting (its client went away) needs no answer.
            let _ = job.done.send(outcome.clone());
        }
    }
}

async fn insert(store: &Store, batch: &[Job]) -> Result<()> {
    let rows: Vec<String> = (0..batch.len())
        .map(|i| {
            let p = i * 9;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6,
                p + 7,
                p + 8,
                p + 9
            )
        })
        .collect();
    // Only placeholders are formatted in; every value is bound.
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO audit_events \
         (id, at, actor, action, target_kind, target_id, target_name, before, after) VALUES {}",
        rows.join(", ")
    ));
    let mut query = sqlx::query(sql);
    for job in batch {
        let l = &job.line;
        query = query
            .bind(l.id.as_str())
            .bind(l.at.as_str())
            .bind(l.actor.as_str())
            .bind(l.action)
            .bind(l.target_kind)
            .bind(l.target_id.as_str())
            .bind(l.target_name.as_str())
            .bind(l.before.as_deref())
            .bind(l.after.as_deref());
    }
    query.execute(store.pool()).await?;
    Ok(())
}
