//! The SQLite login writer: one connection that runs logins one at a time, by group commit
//! when they come together.
//!
//! Through sqlx every statement is a trip to the connection's worker thread and back (a wake
//! and a switch each way), and each login commits on its own: five trips and one WAL append of
//! every page it touched, for a login that writes two rows. Here a login is one closure run on
//! the writer's connection by whoever *owns* it (a flag under the queue's lock):
//!
//! * a login that finds the connection unowned takes it and runs on the request's own thread:
//!   no hand-over, no thread to wake and none to wake us. Logins that come meanwhile only
//!   queue (no wake-up either). While logins are seen queueing, a new owner first yields to
//!   its thread's other ready tasks (their logins then queue behind it too: with more logins
//!   in flight than cores, commits are shared instead of each login committing alone as it
//!   happens to find the connection free); one at a time it runs at once. The owner runs its
//!   login and those queued, every
//!   one waiting (up to [`MAX_BATCH`]) in one `BEGIN IMMEDIATE` transaction, each inside its
//!   own savepoint, commits once and only then answers each of them. This blocks an async
//!   worker only for logins' own statements: it never waits for SQLite's lock (if another
//!   connection holds it, the connection and its queue go to the writer thread, which waits),
//!   it never checkpoints, and after [`INLINE_ROUNDS`] transactions it passes what is still
//!   queued to the writer thread rather than serve others for ever;
//! * the writer thread runs the queue the same way when it is passed the connection, and
//!   checkpoints.
//!
//! So:
//!
//! * **durability is unchanged**: a login is answered after the commit holding its rows (and
//!   its audit event); if the commit fails, every login of the batch gets the error;
//! * **the replay guarantee is unchanged**: logins run one at a time on one connection holding
//!   SQLite's write lock, so of two uses of one assertion ID (in one batch or in two) the
//!   second sees the first's row and is refused; a login that fails (a replay, a store error)
//!   is rolled back to its savepoint and leaves nothing, as a rolled-back transaction would;
//! * **no login is left behind**: the queue is only ever non-empty while the connection is
//!   owned, and the owner lets it go only after finding the queue empty under the same lock;
//! * **bounded**: the queue holds at most [`QUEUE`] logins; a login beyond it is turned away
//!   at once with [`StoreError::Busy`] (the ACS answers 503), never left waiting for room;
//! * **the WAL is bounded**: the connection does not checkpoint when it commits (that would
//!   be a sync on the request's thread); every [`CHECKPOINT_EVERY`] logins the owner passes
//!   the connection to the writer thread, which checkpoints before running any more logins,
//!   so no commit runs beside it and it catches up.
//!
//! A login whose caller stops waiting once it is queued (the request was dropped) still runs
//! and commits, as a transaction already sent to the database would: its assertion is used
//! up and its audit event says what JIT did, though no session may have followed.
//!
//! The JIT engine runs unchanged on [`WriterTx`], an [`AccountTx`] whose every future is ready
//! at once (the statements run on this thread, synchronously).
//!
//! Only SQLite file databases get a writer: an in-memory database exists only on the pool's
//! one connection.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::sql::{
    self, AccountColumns, GRANT_ROLE, INSERT_ACCOUNT, INSERT_AUDIT, REVOKE_MANAGED_ROLE,
    UPDATE_ACCOUNT, identity_columns,
};
use super::{Account, AccountTx, AuditEvent, RoleOrigin, WriterStats};
use crate::error::{Error, StoreError};
use crate::jit::IdentityKey;

/// Logins committed together at most. Enough to amortise a commit; small enough that the
/// first of a batch does not wait long for the last.
const MAX_BATCH: usize = 64;

/// Logins waiting for the writer at most; a login beyond it is answered busy at once.
const QUEUE: usize = 1024;

/// Logins between two checkpoints of the WAL. A checkpoint copies each page the WAL holds
/// back into the database once and syncs twice: the pages every login rewrites (the tails of
/// the audit log and of the replay cache) and the syncs are shared by all the logins since
/// the last one, so checkpointing less often costs less per login (measured on a returning
/// login: 17 us of the writer thread's CPU at 128 logins, 8-14 us at 512). The WAL then
/// holds up to ~512 logins of 5-8 pages (about 15 MiB of 4 KiB pages).
const CHECKPOINT_EVERY: u64 = 512;

/// How long the writer thread waits for SQLite's lock (held by a connection of the pool), as
/// the pool's connections do (`Database::connect`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Transactions a request's thread runs for queued logins before it passes the rest to the
/// writer thread: enough that logins arriving together share commits without a wake-up,
/// few enough that the request (and the async worker it blocks) is not held up for long.
const INLINE_ROUNDS: usize = 4;

/// How often a login that took the connection yields to its thread's other tasks, for as
/// long as logins keep queueing behind it, before it runs them.
const OWNER_YIELDS: usize = 8;

/// Owners that yield after a login was last seen queueing: logins meet at the writer only
/// now and then even when many are in flight (a batch's answers come together, and the
/// logins they wake verify their next Responses at different speeds).
const YIELDING_OWNERS: usize = 64;

/// A handle on the writer; its thread ends when the handle is dropped.
pub(crate) struct SqliteWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the writer's users and its thread share.
struct Shared {
    /// The logins waiting and who owns the connection.
    state: Mutex<State>,
    /// Signalled when the writer thread gets the connection (or should end).
    turn: Condvar,
    /// Held by the connection's owner while it runs logins or checkpoints.
    conn: Mutex<Connection>,
    counts: Counts,
}

/// Who owns the connection and what waits for it.
#[derive(Default)]
struct State {
    /// Logins waiting for the owner; non-empty only while the connection is owned.
    queue: VecDeque<Box<dyn Job>>,
    /// Someone runs logins on the connection and will run the queue before letting it go.
    owned: bool,
    /// The owner passed the connection (and the queue) to the writer thread.
    writer_turn: bool,
    /// The handle is gone: the writer thread ends once it has nothing left to do.
    closed: bool,
    /// How many more owners yield before running the queue ([`YIELDING_OWNERS`] again
    /// whenever a login queues): none while logins come one at a time, where yielding
    /// would only cost a turn of the scheduler.
    yielding_owners: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is changed only by whole assignments and queue pushes and pops, never
        // left half-done by a panic: a poisoned lock still holds a usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic is caught inside a batch, so a poisoned lock holds a usable connection.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves queued logins into `batch`, up to [`MAX_BATCH`] in all.
    fn take(&self, batch: &mut Vec<Box<dyn Job>>) {
        let mut state = self.state();
        let room = MAX_BATCH.saturating_sub(batch.len());
        let n = room.min(state.queue.len());
        batch.extend(state.queue.drain(..n));
    }

    /// Gives the connection, and the queue held by `state`, to the writer thread; called by
    /// the connection's owner.
    fn pass_to_writer(&self, mut state: MutexGuard<'_, State>) {
        state.writer_turn = true;
        drop(state);
        self.turn.notify_one();
    }
}

/// What the writer has done so far.
#[derive(Debug, Default)]
struct Counts {
    commits: AtomicU64,
    logins: AtomicU64,
    inline: AtomicU64,
    checkpoints: AtomicU64,
    /// Logins committed since the last checkpoint.
    since_checkpoint: AtomicU64,
}

impl Counts {
    /// Counts a commit of `logins`.
    fn commit(&self, logins: usize) {
        let logins = logins as u64;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.logins.fetch_add(logins, Ordering::Relaxed);
        self.since_checkpoint.fetch_add(logins, Ordering::Relaxed);
    }

    /// Whether enough logins were committed since the last checkpoint for the next one.
    fn checkpoint_due(&self) -> bool {
        self.since_checkpoint.load(Ordering::Relaxed) >= CHECKPOINT_EVERY
    }
}

/// One unit of work on the writer's connection, inside the batch's transaction.
trait Job: Send {
    /// Runs in the batch's transaction (in a savepoint of its own unless it is `alone` in
    /// the batch); returns what to answer once the batch is committed. A job alone that
    /// does not commit rolls the transaction back.
    fn run(self: Box<Self>, conn: &mut Connection, alone: bool) -> Box<dyn Reply>;
}

/// A job's answer, held back until its batch is committed (or failed).
trait Reply: Send {
    /// Answers the login: its own result, or `failure` when its batch was not committed.
    fn send(self: Box<Self>, failure: Option<&str>);
}

struct Work<F, R> {
    work: F,
    reply: oneshot::Sender<Result<R, Error>>,
}

struct Answer<R> {
    result: Result<R, Error>,
    reply: oneshot::Sender<Result<R, Error>>,
}

impl<F, R> Job for Work<F, R>
where
    F: FnOnce(WriterTx<'_>) -> Result<R, Error> + Send,
    R: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection, alone: bool) -> Box<dyn Reply> {
        let Work { work, reply } = *self;
        let result = if alone {
            // The batch's transaction is this job's own: not committing it rolls it back.
            let mut committed = false;
            let result = work(WriterTx {
                conn: &mut *conn,
                committed: &mut committed,
            });
            match (committed, result) {
                (true, result) => result,
                (false, result) => match statement(conn, "ROLLBACK") {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::from(e).into()),
                },
            }
        } else {
            in_savepoint(conn, work)
        };
        Box::new(Answer { result, reply })
    }
}

/// Runs `work` inside a savepoint of the batch's transaction, kept only if `work` commits.
fn in_savepoint<R>(
    conn: &mut Connection,
    work: impl FnOnce(WriterTx<'_>) -> Result<R, Error>,
) -> Result<R, Error> {
    statement(conn, "SAVEPOINT login").map_err(StoreError::from)?;
    let mut committed = false;
    let result = work(WriterTx {
        conn: &mut *conn,
        committed: &mut committed,
    });
    let end = if committed {
        statement(conn, "RELEASE login")
    } else {
        statement(conn, "ROLLBACK TO login").and_then(|()| statement(conn, "RELEASE login"))
    };
    match end {
        Ok(()) => result,
        Err(e) => Err(StoreError::from(e).into()),
    }
}

/// Runs one statement without parameters or rows, prepared once per connection.
fn statement(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

impl<R: Send> Reply for Answer<R> {
    fn send(self: Box<Self>, failure: Option<&str>) {
        let answer = match failure {
            None => self.result,
            Some(failure) => Err(StoreError::Writer(failure.to_owned()).into()),
        };
        // The login may have given up waiting (its request was dropped); nothing to tell.
        let _ = self.reply.send(answer);
    }
}

impl SqliteWriter {
    /// Opens a connection to the (already migrated) database file at `path`, through the
    /// SQLite VFS `vfs` when the database's URL names one (as the pool's connections open it),
    /// and starts the thread that owns it.
    pub(crate) fn start(path: &Path, vfs: Option<&str>) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match vfs {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs)?,
            None => Connection::open_with_flags(path, flags)?,
        };
        // The same settings as the pool's connections (`Database::connect`), but no automatic
        // checkpoint: a login run on a request's thread must not sync the database there
        // (the writer thread checkpoints instead, `CHECKPOINT_EVERY`).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            turn: Condvar::new(),
            conn: Mutex::new(conn),
            counts: Counts::default(),
        });
        let on_thread = Arc::clone(&shared);
        thread::Builder::new()
            .name("latchkey-sp-writer".to_owned())
            .spawn(move || run(&on_thread))
            .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { shared })
    }

    /// What the writer has done so far.
    pub(crate) fn stats(&self) -> WriterStats {
        let counts = &self.shared.counts;
        WriterStats {
            commits: counts.commits.load(Ordering::Relaxed),
            logins: counts.logins.load(Ordering::Relaxed),
            inline: counts.inline.load(Ordering::Relaxed),
            checkpoints: counts.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Runs `work` on the writer's connection, in a transaction that commits with others';
    /// answers once that commit is done. `work` sees a [`WriterTx`]: what it does not
    /// [`commit`](AccountTx::commit) is rolled back. With [`QUEUE`] logins already waiting
    /// it fails at once with [`StoreError::Busy`], having run nothing.
    pub(crate) async fn run<R, F>(&self, work: F) -> Result<R, Error>
    where
        F: FnOnce(WriterTx<'_>) -> Result<R, Error> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        if let Submitted::Own { yields } = self.submit(Box::new(Work { work, reply }))? {
            // Should the request be dropped before the queue is run, the guard passes it
            // (this login too) to the writer thread, so none is left behind.
            let owner = Owner {
                shared: &self.shared,
                running: false,
            };
            // While logins are queueing behind owners, let the tasks this thread has ready
            // run first: logins among them queue behind this one and share its commit.
            // Again, as long as the queue grows.
            let mut queued = 1;
            for _ in 0..yields {
                YieldOnce(false).await;
                let now_queued = self.shared.state().queue.len();
                if now_queued <= queued {
                    break;
                }
                queued = now_queued;
            }
            owner.run_here();
        }
        answer.await.map_err(|_| {
            StoreError::Writer("the writer dropped the login; see its log".to_owned())
        })?
    }

    /// The pending request under `relay_state` ([`crate::login::PEEK_PENDING`]), read and
    /// left in place. When the connection is idle it is read at once on this thread, outside
    /// any transaction (the connection is held only around whole transactions, so free it has
    /// none open): a read takes no write lock and commits nothing. When it is busy the read
    /// queues as a job and runs in the owner's next batch, rolled back to its savepoint.
    pub(crate) async fn read_pending(
        &self,
        relay_state: &str,
    ) -> Result<Option<crate::login::PendingRow>, Error> {
        let idle = match self.shared.conn.try_lock() {
            Ok(conn) => Some(conn),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(conn) = idle.filter(|conn| conn.is_autocommit()) {
            return Ok(read_pending_row(&conn, relay_state)?);
        }
        let relay_state = relay_state.to_owned();
        self.run(move |tx| Ok(read_pending_row(tx.conn, &relay_state)?))
            .await
    }

    /// Queues `job` for the connection's owner, or takes the connection for the caller to
    /// run the queue ([`Owner::run_here`]).
    fn submit(&self, job: Box<dyn Job>) -> Result<Submitted, StoreError> {
        let shared = &*self.shared;
        let mut state = shared.state();
        if state.owned {
            if state.queue.len() >= QUEUE {
                // Waiting for room would let a burst hold requests (and their memory)
                // without bound behind the queue: turn the login away at once instead.
                return Err(StoreError::Busy(QUEUE));
            }
            // The owner runs it before letting the connection go.
            state.queue.push_back(job);
            state.yielding_owners = YIELDING_OWNERS;
            return Ok(Submitted::Queued);
        }
        state.owned = true;
        state.queue.push_back(job);
        if shared.counts.checkpoint_due() {
            // The writer thread checkpoints first; logins cannot put it off.
            shared.pass_to_writer(state);
            return Ok(Submitted::Queued);
        }
        let yields = if state.yielding_owners > 0 {
            state.yielding_owners -= 1;
            OWNER_YIELDS
        } else {
            0
        };
        Ok(Submitted::Own { yields })
    }
}

/// Goes to the back of the executor's run queue once: woken at once, so that (unlike
/// `tokio::task::yield_now`, which waits for the worker to run out of work and poll its
/// driver, a system call) the tasks already ready run first and then this one.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What became of a login handed to the writer.
enum Submitted {
    /// It waits for the connection's owner (or the writer thread).
    Queued,
    /// The caller owns the connection: it is to run the queue, its login first, after
    /// yielding up to `yields` times to let others queue.
    Own { yields: usize },
}

/// The connection's owner on a request's thread, between taking it and running the queue.
struct Owner<'w> {
    shared: &'w Shared,
    /// Set once the queue is being run: from then on the rounds let the connection go.
    running: bool,
}

impl Drop for Owner<'_> {
    fn drop(&mut self) {
        if !self.running {
            // Dropped before running the queue (the request was dropped while it yielded):
            // the logins queued, its own among them, still run, on the writer thread.
            self.shared.pass_to_writer(self.shared.state());
        }
    }
}

impl Owner<'_> {
    /// Runs the queue on the calling thread, a batch per transaction; passes the connection
    /// to the writer thread when SQLite's lock cannot be had without waiting, when a
    /// checkpoint is due, or after [`INLINE_ROUNDS`].
    fn run_here(mut self) {
        self.running = true;
        let shared = self.shared;
        let mut batch = Vec::new();
        for round in 1..=INLINE_ROUNDS {
            let mut conn = shared.conn();
            if begin_without_waiting(&mut conn).is_err() {
                // Another connection writes (or SQLite failed): the writer thread waits, or
                // says. The queue is taken only once a transaction is begun, so it holds
                // every login still to run, in the order they came.
                drop(conn);
                shared.pass_to_writer(shared.state());
                return;
            }
            shared.take(&mut batch);
            let logins = batch.len();
            shared.counts.commit(logins);
            shared
                .counts
                .inline
                .fetch_add(logins as u64, Ordering::Relaxed);
            let answers = run_begun(&mut conn, &mut batch);
            drop(conn);
            let mut state = shared.state();
            let checkpoint_due = shared.counts.checkpoint_due();
            if state.queue.is_empty() && !checkpoint_due {
                // Answered once the connection is let go: a login answered while it is
                // still owned would queue behind it, and so would its client's next one.
                state.owned = false;
                drop(state);
                answers.send();
                return;
            }
            if checkpoint_due || round == INLINE_ROUNDS {
                shared.pass_to_writer(state);
                answers.send();
                return;
            }
            drop(state);
            answers.send();
        }
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.turn.notify_one();
    }
}

/// `BEGIN IMMEDIATE`, failing at once rather than waiting when another connection holds
/// SQLite's write lock.
fn begin_without_waiting(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::ZERO)?;
    let begun = statement(conn, "BEGIN IMMEDIATE");
    conn.busy_timeout(BUSY_TIMEOUT)?;
    begun
}

/// The writer thread: whenever it is passed the connection, checkpoints if due and runs the
/// queue a batch at a time until it is empty, then lets the connection go; ends once the
/// handle is gone.
fn run(shared: &Shared) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    loop {
        let mut state = shared.state();
        while !state.writer_turn {
            if state.closed {
                return;
            }
            state = shared
                .turn
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.writer_turn = false;
        drop(state);
        let mut conn = shared.conn();
        loop {
            if shared.counts.checkpoint_due() {
                checkpoint(&conn, &shared.counts);
            }
            shared.take(&mut batch);
            let answers = if batch.is_empty() {
                Answers::default()
            } else {
                shared.counts.commit(batch.len());
                commit_batch(&mut conn, &mut batch)
            };
            let mut state = shared.state();
            if state.queue.is_empty() && !shared.counts.checkpoint_due() {
                // Answered once the connection is let go (see `run_here`).
                state.owned = false;
                drop(state);
                drop(conn);
                answers.send();
                break;
            }
            drop(state);
            answers.send();
        }
    }
}

/// Copies the WAL back into the database. Holding the connection, no login commits beside
/// it, so it catches up with the whole WAL and the next commit starts the WAL over.
fn checkpoint(conn: &Connection, counts: &Counts) {
    counts.since_checkpoint.store(0, Ordering::Relaxed);
    counts.checkpoints.fetch_add(1, Ordering::Relaxed);
    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    });
    match done {
        // A reader of an older snapshot keeps the WAL's tail; the next checkpoint copies it.
        Ok((_, wal, copied)) if copied < wal => {
            tracing::debug!(
                wal,
                copied,
                "SQLite writer checkpoint stopped short of the WAL's end"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "SQLite writer could not checkpoint the WAL"),
    }
}

/// Runs `batch` in one transaction; the answers are for after the commit.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>) -> Answers {
    if let Err(e) = statement(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, logins = batch.len(), "SQLite writer could not begin a transaction");
        // Dropping the jobs tells each login that the writer dropped it.
        batch.clear();
        return Answers::default();
    }
    run_begun(conn, batch)
}

/// Runs `batch` in the transaction just begun and commits; returns each job's answer.
fn run_begun(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>) -> Answers {
    let alone = batch.len() == 1;
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch.drain(..) {
            replies.push(job.run(conn, alone));
            // SQLite rolls a whole transaction back on some errors (a full disk, I/O): then
            // the jobs before this one lost their writes too, and the rest must not run
            // outside the batch's transaction.
            if !alone && conn.is_autocommit() {
                return Err(replies);
            }
        }
        Ok(replies)
    }));
    let replies = match ran {
        Ok(Ok(replies)) => replies,
        Ok(Err(replies)) => {
            tracing::error!(
                logins = replies.len(),
                "SQLite rolled the writer's batch back"
            );
            batch.clear();
            return Answers {
                replies,
                failure: Some("SQLite rolled the batch's transaction back".to_owned()),
            };
        }
        Err(_) => {
            // A bug, not input: fail this batch (its jobs are dropped), keep the writer.
            tracing::error!("a login panicked in the SQLite writer; its batch is rolled back");
            batch.clear();
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Answers::default();
        }
    };
    // A job alone may have rolled the transaction back already.
    let committed = if conn.is_autocommit() {
        Ok(())
    } else {
        statement(conn, "COMMIT")
    };
    let failure = match &committed {
        Ok(()) => None,
        Err(e) => {
            tracing::error!(error = %e, logins = replies.len(), "SQLite writer could not commit a batch");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Some(format!("the batch's commit failed: {e}"))
        }
    };
    Answers { replies, failure }
}

/// The answers of a batch that is over (committed or failed), to send once the connection is
/// let go: a login answered while it is still held would find it busy and go to the writer
/// thread, and so would every login of a client that waits for each answer before the next.
#[derive(Default)]
#[must_use]
struct Answers {
    replies: Vec<Box<dyn Reply>>,
    /// Why none of the batch was kept, if so.
    failure: Option<String>,
}

impl Answers {
    fn send(self) {
        for reply in self.replies {
            reply.send(self.failure.as_deref());
        }
    }
}

/// Polls a future that can only be ready at once: the JIT engine's steps over a [`WriterTx`],
/// whose every statement runs synchronously.
pub(crate) fn now_or_never<T>(future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => Err(StoreError::Writer(
            "a step on the writer's connection waited for something else".to_owned(),
        )
        .into()),
    }
}

/// [`crate::login::PEEK_PENDING`] on `conn`.
fn read_pending_row(
    conn: &Connection,
    relay_state: &str,
) -> Result<Option<crate::login::PendingRow>, StoreError> {
    let mut stmt = conn.prepare_cached(crate::login::PEEK_PENDING)?;
    let mut rows = stmt.query(named_params! { "$1": relay_state })?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
}

/// A login's transaction on the writer's connection (a savepoint in the batch's transaction).
#[derive(Debug)]
pub(crate) struct WriterTx<'c> {
    conn: &'c mut Connection,
    committed: &'c mut bool,
}

impl WriterTx<'_> {
    /// [`crate::login::TAKE_PENDING`] on the writer's connection.
    pub(crate) fn take_pending(
        &mut self,
        relay_state: &str,
    ) -> Result<Option<crate::login::PendingRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(crate::login::TAKE_PENDING)?;
        let mut rows = stmt.query(named_params! { "$1": relay_state })?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        Ok(Some((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
    }

    fn find(
        &mut self,
        sql: &str,
        params: &[(&str, &dyn rusqlite::ToSql)],
    ) -> Result<Option<Account>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params)?;
        let mut columns = None;
        let mut roles = Vec::new();
        while let Some(row) = rows.next()? {
            // By position, in the order `select_account_with_roles!` names them.
            if columns.is_none() {
                columns = Some(AccountColumns {
                    id: row.get(0)?,
                    idp_entity_id: row.get(1)?,
                    identity_key: row.get(2)?,
                    email: row.get(3)?,
                    fields: row.get(4)?,
                    provisioned_by: row.get(5)?,
                    active: row.get(6)?,
                    created_at: row.get(7)?,
                    updated_at: row.get(8)?,
                });
            }
            roles.push((row.get(9)?, row.get(10)?));
        }
        columns
            .map(|columns| sql::account_with_roles(columns, roles))
            .transpose()
    }
}

impl AccountTx for WriterTx<'_> {
    async fn find_by_identity(
        &mut self,
        identity: &IdentityKey,
    ) -> Result<Option<Account>, StoreError> {
        self.find(
            sql::BY_IDENTITY,
            named_params! { "$1": identity.idp_entity_id, "$2": identity.key },
        )
    }

    async fn find_by_email(&mut self, email: &str) -> Result<Option<Account>, StoreError> {
        self.find(sql::BY_EMAIL, named_params! { "$1": email })
    }

    async fn insert_account(&mut self, account: &Account) -> Result<bool, StoreError> {
        let (idp, key) = identity_columns(account);
        let inserted = self
            .conn
            .prepare_cached(INSERT_ACCOUNT)?
            .execute(named_params! {
                "$1": account.id.to_string(),
                "$2": idp,
                "$3": key,
                "$4": account.email,
                "$5": sql::fields_json(&account.fields)?,
                "$6": account.provisioned_by.as_str(),
                "$7": sql::millis(account.created_at),
                "$8": sql::millis(account.updated_at),
                "$9": i64::from(account.active),
            })?;
        Ok(inserted == 1)
    }

    async fn update_account(&mut self, account: &Account) -> Result<(), StoreError> {
        let (idp, key) = identity_columns(account);
        self.conn
            .prepare_cached(UPDATE_ACCOUNT)?
            .execute(named_params! {
                "$1": account.id.to_string(),
                "$2": idp,
                "$3": key,
                "$4": account.email,
                "$5": sql::fields_json(&account.fields)?,
                "$6": sql::millis(account.updated_at),
                "$7": i64::from(account.active),
            })?;
        Ok(())
    }

    async fn deleted_at(
        &mut self,
        identity: &IdentityKey,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let at: Option<i64> = self
            .conn
            .prepare_cached(sql::DELETED_AT)?
            .query_row(
                named_params! {
                    "$1": identity.idp_entity_id,
                    "$2": identity.key,
                    "$3": sql::millis(now),
                },
                |row| row.get(0),
            )
            .optional()?;
        at.map(|ms| sql::from_millis("sp_deleted_identities", ms))
            .transpose()
    }

    /// A refused statement undoes only itself on SQLite; the login's savepoint goes on.
    async fn update_account_new_email(&mut self, account: &Account) -> Result<bool, StoreError> {
        match self.update_account(account).await {
            Ok(()) => Ok(true),
            Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, Some(message))))
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    && (message.contains(sql::EMAIL_COLUMN)
                        || message.contains(sql::IDENTITY_COLUMNS)) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn grant_role(
        &mut self,
        account_id: Uuid,
        role: &str,
        origin: RoleOrigin,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(GRANT_ROLE)?
            .execute(named_params! {
                "$1": account_id.to_string(),
                "$2": role,
                "$3": i64::from(origin == RoleOrigin::Managed),
            })?;
        Ok(())
    }

    async fn revoke_managed_role(
        &mut self,
        account_id: Uuid,
        role: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(REVOKE_MANAGED_ROLE)?
            .execute(named_params! { "$1": account_id.to_string(), "$2": role })?;
        Ok(())
    }

    async fn append_audit(&mut self, event: &AuditEvent) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(INSERT_AUDIT)?
            .execute(named_params! {
                "$1": event.id.to_string(),
                "$2": event.operation_id.to_string(),
                "$3": sql::millis(event.at),
                "$4": event.kind.as_str(),
                "$5": event.account_id.map(|id| id.to_string()),
                "$6": event.idp_entity_id,
                "$7": event.identity_key,
                "$8": event.session_index,
                "$9": sql::plan_json(event)?,
                "$10": event.actor,
            })?;
        Ok(())
    }

    async fn record_assertion(
        &mut self,
        assertion_id: &str,
        issued_at: OffsetDateTime,
        not_on_or_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let recorded = self
            .conn
            .prepare_cached(crate::replay::RECORD_ASSERTION)?
            .execute(named_params! {
                "$1": sql::millis(issued_at),
                "$2": assertion_id,
                "$3": sql::millis(not_on_or_after),
                "$4": sql::millis(now),
            })?;
        Ok(recorded == 1)
    }

    async fn use_pending_request(
        &mut self,
        relay_state: &str,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .conn
            .prepare_cached(crate::login::USE_PENDING)?
            .execute(named_params! { "$1": relay_state, "$2": request_id })?;
        Ok(deleted == 1)
    }

    async fn commit(self) -> Result<(), StoreError> {
        *self.committed = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Database;

    /// A fresh SQLite file (its directory lives as long as the first value) and its database.
    async fn file_db() -> (tempfile::TempDir, std::path::PathBuf, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sp.db");
        let db = Database::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        (dir, path, db)
    }

    /// A job for `commit_batch` and the receiver of its answer.
    fn job<R: Send + 'static>(
        work: impl FnOnce(WriterTx<'_>) -> Result<R, Error> + Send + 'static,
    ) -> (Box<dyn Job>, oneshot::Receiver<Result<R, Error>>) {
        let (reply, answer) = oneshot::channel();
        (Box::new(Work { work, reply }), answer)
    }

    fn record(id: impl Into<String>) -> impl FnOnce(WriterTx<'_>) -> Result<bool, Error> + Send {
        let now = time::macros::datetime!(2026-12-06 12:00 UTC);
        let id = id.into();
        move |mut tx| {
            now_or_never(async move {
                let fresh = tx
                    .record_assertion(&id, now, now + time::Duration::minutes(5), now)
                    .await?;
                if fresh {
                    tx.commit().await?;
                }
                Ok(fresh)
            })
        }
    }

    /// [`record`], also saying which thread ran it.
    fn on_thread(
        id: &'static str,
    ) -> impl FnOnce(WriterTx<'_>) -> Result<(bool, thread::ThreadId), Error> + Send {
        move |tx| record(id)(tx).map(|fresh| (fresh, thread::current().id()))
    }

    /// Jobs of one batch share its commit but not their fate: a replay inside the batch is
    /// refused, and a job that fails or does not commit leaves nothing, while the others keep
    /// what they wrote.
    #[tokio::test]
    async fn jobs_of_one_batch_are_kept_or_rolled_back_each_on_its_own() {
        let (_dir, path, db) = file_db().await;
        let mut conn = Connection::open(&path).unwrap();
        let (first, first_answer) = job(record("_a"));
        let (again, again_answer) = job(record("_a"));
        let (failing, failing_answer) = job(|mut tx: WriterTx<'_>| {
            now_or_never(async move {
                tx.record_assertion(
                    "_failed",
                    time::macros::datetime!(2026-12-06 12:00 UTC),
                    time::macros::datetime!(2026-12-06 12:05 UTC),
                    time::macros::datetime!(2026-12-06 12:00 UTC),
                )
                .await?;
                Err::<(), Error>(StoreError::Inconsistent("a step failed".to_owned()).into())
            })
        });
        let (other, other_answer) = job(record("_b"));
        let mut batch = vec![first, again, failing, other];
        commit_batch(&mut conn, &mut batch).send();
        assert!(batch.is_empty());
        assert!(first_answer.await.unwrap().unwrap());
        assert!(!again_answer.await.unwrap().unwrap());
        assert!(failing_answer.await.unwrap().is_err());
        assert!(other_answer.await.unwrap().unwrap());
        let mut kept: Vec<String> = sqlx::query_scalar("SELECT assertion_id FROM sp_replay_cache")
            .fetch_all(db.pool())
            .await
            .unwrap();
        kept.sort();
        assert_eq!(kept, ["_a", "_b"]);
        assert!(conn.is_autocommit());
    }

    /// When SQLite rolls the whole transaction back (as it does on a full disk or an I/O
    /// error), no login of the batch is reported as done, and none runs outside it.
    #[tokio::test]
    async fn a_batch_sqlite_rolled_back_answers_no_login_as_done() {
        let (_dir, path, db) = file_db().await;
        let mut conn = Connection::open(&path).unwrap();
        let (first, first_answer) = job(record("_lost"));
        // Stands for a statement on which SQLite ends the transaction itself.
        let (breaking, breaking_answer) = job(|tx: WriterTx<'_>| {
            tx.conn
                .execute_batch("ROLLBACK")
                .map_err(|e| Error::from(StoreError::from(e)))
        });
        let (after, after_answer) = job(record("_after"));
        let mut batch = vec![first, breaking, after];
        commit_batch(&mut conn, &mut batch).send();
        assert!(first_answer.await.unwrap().is_err());
        assert!(breaking_answer.await.unwrap().is_err());
        assert!(
            after_answer.await.is_err(),
            "the job after the break never ran"
        );
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_replay_cache")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 0);
        assert!(conn.is_autocommit());
    }

    /// A job alone in its batch uses the transaction itself: not committing rolls it back.
    #[tokio::test]
    async fn a_lone_job_that_does_not_commit_leaves_nothing() {
        let (_dir, _, db) = file_db().await;
        let writer = db.writer().unwrap();
        let now = time::macros::datetime!(2026-12-06 12:00 UTC);
        let left: bool = writer
            .run(move |mut tx| {
                now_or_never(async move {
                    tx.record_assertion("_left", now, now + time::Duration::minutes(5), now)
                        .await
                        .map_err(Error::from)
                })
            })
            .await
            .unwrap();
        assert!(left);
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_replay_cache")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 0);
        assert_eq!(
            db.writer_stats(),
            Some(WriterStats {
                commits: 1,
                logins: 1,
                inline: 1,
                checkpoints: 0,
            })
        );
    }

    /// With the connection owned and the queue full, one more login is answered busy at once
    /// (nothing of it runs), and the logins that were queued still run once the owner passes
    /// the connection on.
    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let (_dir, _, db) = file_db().await;
        let writer = db.writer().unwrap();
        // Owning the connection stands for a long batch: every login is queued.
        writer.shared.state().owned = true;
        let noop = &mut Context::from_waker(Waker::noop());
        let mut queued = Vec::new();
        for i in 0..QUEUE {
            let mut login = Box::pin(writer.run(record(format!("_q{i}"))));
            assert!(
                login.as_mut().poll(noop).is_pending(),
                "login {i} was queued"
            );
            queued.push(login);
        }
        let mut late = Box::pin(writer.run(record("_late")));
        match late.as_mut().poll(noop) {
            Poll::Ready(Err(e @ Error::Store(StoreError::Busy(QUEUE)))) => {
                assert!(e.is_busy());
                assert_eq!(e.code().as_str(), "STORE_BUSY");
            }
            other => panic!(
                "expected busy at once, got {:?}",
                other.map(|r| r.map(|_| ()))
            ),
        }
        writer.shared.pass_to_writer(writer.shared.state());
        for login in queued {
            assert!(login.await.unwrap());
        }
        let ids: Vec<String> = sqlx::query_scalar("SELECT assertion_id FROM sp_replay_cache")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(ids.len(), QUEUE);
        assert!(!ids.iter().any(|id| id == "_late"));
        let stats = db.writer_stats().unwrap();
        assert_eq!((stats.logins, stats.inline), (QUEUE as u64, 0));
        assert!(stats.commits <= (QUEUE / MAX_BATCH) as u64, "{stats:?}");
    }

    /// A login that takes the connection yields before running it; the logins that reach
    /// the writer meanwhile queue and are run by that login's thread, in its own commit (no
    /// hand-over to the writer thread), each answered as its own; a replay among them is
    /// still refused.
    #[tokio::test]
    async fn logins_queued_while_the_owner_yields_share_its_commit_on_its_thread() {
        let (_dir, _, db) = file_db().await;
        let writer = db.writer().unwrap();
        let noop = &mut Context::from_waker(Waker::noop());
        // A login that had to queue (behind an owner standing for a long batch) makes the
        // next owners yield.
        writer.shared.state().owned = true;
        let mut first = Box::pin(writer.run(record("_first")));
        assert!(first.as_mut().poll(noop).is_pending());
        writer.shared.pass_to_writer(writer.shared.state());
        assert!(first.await.unwrap());
        let caller = thread::current().id();
        let mut own = Box::pin(writer.run(on_thread("_own")));
        assert!(own.as_mut().poll(noop).is_pending(), "the owner yields");
        assert!(writer.shared.state().owned);
        let mut queued = Vec::new();
        for id in ["_q1", "_q2", "_q1"] {
            let mut login = Box::pin(writer.run(on_thread(id)));
            assert!(login.as_mut().poll(noop).is_pending());
            queued.push(login);
        }
        assert_eq!(db.writer_stats().unwrap().logins, 1, "nothing more ran yet");
        // Resumed, the owner runs its login and the queue on this thread.
        assert_eq!(own.await.unwrap(), (true, caller));
        let mut answers = Vec::new();
        for login in queued {
            answers.push(login.await.unwrap());
        }
        assert_eq!(answers, [(true, caller), (true, caller), (false, caller)]);
        assert_eq!(
            db.writer_stats(),
            Some(WriterStats {
                commits: 2,
                logins: 5,
                inline: 4,
                checkpoints: 0,
            })
        );
        assert!(!writer.shared.state().owned, "the connection was let go");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_replay_cache")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 4);
    }

    /// An owner dropped while it yields (its request went away) leaves no login behind: the
    /// writer thread runs the queue, the dropped login's own job too (as a login already
    /// handed to the database would be).
    #[tokio::test]
    async fn an_owner_dropped_while_it_yields_passes_the_queue_to_the_writer_thread() {
        let (_dir, _, db) = file_db().await;
        let writer = db.writer().unwrap();
        writer.shared.state().yielding_owners = YIELDING_OWNERS;
        let noop = &mut Context::from_waker(Waker::noop());
        let mut own = Box::pin(writer.run(record("_dropped")));
        assert!(own.as_mut().poll(noop).is_pending());
        let mut queued = Box::pin(writer.run(record("_queued")));
        assert!(queued.as_mut().poll(noop).is_pending());
        drop(own);
        assert!(queued.await.unwrap());
        let mut ids: Vec<String> = sqlx::query_scalar("SELECT assertion_id FROM sp_replay_cache")
            .fetch_all(db.pool())
            .await
            .unwrap();
        ids.sort();
        assert_eq!(ids, ["_dropped", "_queued"]);
        let stats = db.writer_stats().unwrap();
        assert_eq!((stats.logins, stats.inline), (2, 0));
        assert!(!writer.shared.state().owned);
    }

    /// A login that finds the writer idle runs on the caller's thread (no hand-over), and is
    /// committed when answered.
    #[tokio::test]
    async fn a_login_alone_runs_on_the_callers_thread() {
        let (_dir, _, db) = file_db().await;
        let writer = db.writer().unwrap();
        let caller = thread::current().id();
        let noop = &mut Context::from_waker(Waker::noop());
        // No login has queued: it runs at once, without a turn of the scheduler.
        let mut login = Box::pin(writer.run(move |tx| {
            let here = thread::current().id();
            record("_here")(tx).map(|fresh| (fresh, here))
        }));
        match login.as_mut().poll(noop) {
            Poll::Ready(ran_on) => assert_eq!(ran_on.unwrap(), (true, caller)),
            Poll::Pending => panic!("a login alone waited"),
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sp_replay_cache")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 1);
        let stats = db.writer_stats().unwrap();
        assert_eq!((stats.logins, stats.inline), (1, 1));
    }

    /// While another connection holds SQLite's write lock, a login does not wait for it on
    /// the caller's thread (an async worker): it goes to the writer thread, which waits, and
    /// it is answered once the lock is free.
    #[tokio::test]
    async fn a_login_never_waits_for_the_lock_on_the_callers_thread() {
        let (_dir, path, db) = file_db().await;
        let writer = db.writer().unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let noop = &mut Context::from_waker(Waker::noop());
        let started = std::time::Instant::now();
        let mut login = Box::pin(writer.run(record("_waited")));
        assert!(login.as_mut().poll(noop).is_pending());
        assert!(started.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(50));
        other.execute_batch("COMMIT").unwrap();
        assert!(login.await.unwrap());
        let stats = db.writer_stats().unwrap();
        assert_eq!((stats.logins, stats.inline), (1, 0));
    }

    /// Logins run on callers' threads never checkpoint there; the writer thread does, often
    /// enough that the WAL stays bounded.
    #[tokio::test]
    async fn the_writer_thread_checkpoints_the_wal_of_inline_logins() {
        let (dir, path, db) = file_db().await;
        let writer = db.writer().unwrap();
        let logins = 4 * CHECKPOINT_EVERY;
        for i in 0..logins {
            assert!(writer.run(record(format!("_c{i}"))).await.unwrap());
        }
        let waited = std::time::Instant::now();
        while db.writer_stats().unwrap().checkpoints < 3 {
            assert!(waited.elapsed() < Duration::from_secs(10), "no checkpoints");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stats = db.writer_stats().unwrap();
        // Only the logins that came while a checkpoint was due went to the writer thread: one
        // answered there does not make the next one go there too.
        assert_eq!(stats.logins, logins);
        assert!(logins - stats.inline <= 4 * stats.checkpoints, "{stats:?}");
        // Each checkpoint caught up, so the WAL started over: it holds about CHECKPOINT_EVERY
        // logins' pages (3-4 each here), far from the two or more pages of each of all the
        // test's logins it would hold without checkpoints.
        let page: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |row| row.get(0))
            .unwrap();
        let page = u64::try_from(page).unwrap();
        let wal = std::fs::metadata(dir.path().join("sp.db-wal"))
            .unwrap()
            .len();
        assert!(wal < logins * 2 * page, "WAL of {wal} bytes");
    }
}
