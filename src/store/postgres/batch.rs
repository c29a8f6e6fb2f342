//! The batch writer: group commit for PostgreSQL, one per replica.
//!
//! Requests queue up; the writer takes up to `batch_max` of them (waiting at most
//! `batch_wait_us` for the queue to fill) and makes ONE transaction of them, in two round
//! trips plus the commit:
//!
//! 1. `BEGIN`; transaction-scoped advisory locks on every record, event and invoice identity
//!    the batch announced, in sorted order; the accounts announced or named by those records,
//!    `FOR UPDATE` in account-number order; then every row those keys name. Sorted locks mean
//!    two replicas never deadlock; holding them means the same posting or event sent to two
//!    replicas at once is decided once — the second waits, then reads what the first stored.
//! 2. Every decision runs in memory, in arrival order, against what was loaded plus what the
//!    decisions before it wrote. A refusal writes nothing and cannot fail its batch-mates.
//! 3. The writes, pipelined: records (new ones with an insert that fails on a lost race),
//!    balances, stored copies, events, snapshots, unmatched items, and LAST the journal: one
//!    bump of the `journal_head` counter for the whole batch, numbering its entries. That row
//!    stays locked until the commit, so commits that journal are serialised in seq order and a
//!    reader never sees seq N+1 before N. Then `COMMIT`, and the answers go out: a 2xx means
//!    the transaction committed (with `synchronous_commit` on: its WAL is on disk).
//!
//! A read the batch did not load, a lost race (unique violation), a deadlock or a
//! serialization failure rolls back and starts the batch again (with the missing keys added).
//! An error the database raises for one request's data makes the batch run again one request
//! per transaction, so that only that request fails. A lost connection or a timeout answers
//! every request of the batch `Unavailable` (503: nothing of it was committed).

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::{Object, Pool};
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::counts::{CountDeltas, Facet, UPSERT_COUNTS};
use super::rows::{self, EventColumns, JournalColumns, RecordColumns};
use super::view::{BatchState, BatchView, ReferenceBlock};
use super::{connection, error_text};
use crate::domain::AccountNumber;
use crate::ledger::{self, RecordKind};
use crate::store::{CommitStats, Committed, Decision, Executed, Keys, StoreError, UnmatchedUpdate, View};

/// A decision's outcome with its type erased, so that one queue carries every kind of request.
pub type AnyOutcome = Box<dyn Any + Send>;
/// A decision, as queued. The mutex only makes the (`Send`, not `Sync`) closure shareable
/// with the writer's task across awaits; the writer is its only caller.
pub type Decide = std::sync::Mutex<Box<dyn Fn(&dyn View) -> Result<Decision<AnyOutcome>, StoreError> + Send>>;

/// One request waiting for a batch.
pub struct Job {
    pub keys: Keys,
    pub decide: Decide,
    pub reply: oneshot::Sender<Result<Executed<AnyOutcome>, StoreError>>,
}

/// How often a batch starts again (missing keys, lost races, deadlocks) before its requests
/// are answered `Conflict` (503, retry).
const MAX_ATTEMPTS: usize = 8;
/// Reference numbers come from the database sequence in blocks of this many (its INCREMENT).
const REFERENCE_BLOCK: u64 = 100;

/// Batches one replica has at most in flight at once, each on a connection of its own. With one, the
/// next batch waits while the last one's commit is flushed; with two, one batch is loaded and
/// decided while the other commits (the journal counter, locked last, still orders their
/// commits). More buys nothing: commits that journal are serialised on that counter.
pub const WRITERS: usize = 2;

/// What the writers need besides their queue.
#[derive(Clone)]
pub struct WriterConfig {
    pub pool: Pool,
    pub target: String,
    pub batch_max: usize,
    pub batch_wait: Duration,
    pub stats: Arc<CommitStats>,
}

/// Runs `WRITERS` batch writers on one queue until every sender is gone or `stop` turns true
/// (the store is closing: the requests already queued are still committed, then the writers'
/// connections are closed). A writer takes the next batch as soon as it has committed its last.
pub async fn run(queue: mpsc::Receiver<Job>, config: WriterConfig, stop: tokio::sync::watch::Receiver<bool>) {
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    // Reads keep at least one connection of the pool.
    let writers = WRITERS.min(config.pool.status().max_size.saturating_sub(1)).max(1);
    let writers: Vec<_> = (0..writers)
        .map(|_| tokio::spawn(write_batches(queue.clone(), config.clone(), stop.clone())))
        .collect();
    for writer in writers {
        if let Err(e) = writer.await {
            tracing::error!(error = %e, "a database batch writer failed");
        }
    }
}

/// One writer: takes a batch from the queue (one writer at a time), commits it, answers it.
async fn write_batches(
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    config: WriterConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut writer = Writer {
        config,
        conn: None,
        references: ReferenceBlock::default(),
    };
    loop {
        let Some(jobs) = next_batch(&queue, &mut stop, &writer.config).await else {
            break;
        };
        let started = Instant::now();
        let size = jobs.len() as u64;
        let ok = writer.commit(jobs).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        writer.config.stats.record(size, micros, ok);
        tracing::debug!(requests = size, micros, committed = ok, "database batch");
    }
}

/// The next batch: the first job that comes, then what else is queued, waiting at most
/// `batch_wait` for more, up to `batch_max`. None once the queue is closed and empty.
async fn next_batch(
    queue: &tokio::sync::Mutex<mpsc::Receiver<Job>>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    config: &WriterConfig,
) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = tokio::select! {
        job = queue.recv() => job,
        _ = async { let _ = stop.wait_for(|stopping| *stopping).await; } => {
            queue.close();
            queue.recv().await
        }
    };
    let mut jobs = vec![first?];
    let deadline = tokio::time::Instant::now() + config.batch_wait;
    while jobs.len() < config.batch_max {
        match queue.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) if config.batch_wait.is_zero() => break,
            Err(_) => match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(job)) => jobs.push(job),
                _ => break,
            },
        }
    }
    Some(jobs)
}

struct Writer {
    config: WriterConfig,
    /// The writer's own connection, kept between batches; dropped after a connection error.
    conn: Option<Object>,
    references: ReferenceBlock,
}

/// Why an attempt did not commit.
enum Failed {
    /// Start again (with these keys added): a key was not loaded, or a lost race.
    Again(Keys),
    /// The database refused something in the batch's data: run the requests one by one.
    Data(String),
    /// The database is unreachable or timed out: nothing was committed.
    Unavailable(String),
    /// Stored data is unreadable.
    Corrupt(String),
}

/// What a decision that commits leaves for after the commit.
struct Pending {
    outcome: AnyOutcome,
    change: Option<ledger::Change>,
    journal_index: Option<usize>,
    balance_after: Option<Decimal>,
    currency_exponent: u32,
    event_index: Option<usize>,
}

/// The answer a job gets once its batch is done.
enum Answer {
    Done(Result<Executed<AnyOutcome>, StoreError>),
    Commits(Pending),
}

/// Everything an attempt writes, gathered from its decisions.
#[derive(Default)]
struct Output {
    new_records: RecordColumns,
    updated_records: RecordColumns,
    accounts: Vec<(AccountNumber, Decimal)>,
    accepted: (Vec<DateTime<Utc>>, Vec<Value>),
    events: EventColumns,
    invoices: (Vec<String>, Vec<String>, Vec<Value>),
    unmatched_put: (Vec<String>, Vec<DateTime<Utc>>, Vec<Value>),
    unmatched_clear: Vec<String>,
    /// The records' changes to `record_counts` (see `counts`).
    counts: CountDeltas,
    journal: JournalColumns,
}

impl Writer {
    /// Commits a batch and answers every job; false when the batch failed as a whole.
    async fn commit(&mut self, jobs: Vec<Job>) -> bool {
        let (keys, rest): (Vec<Keys>, Vec<(Decide, oneshot::Sender<_>)>) =
            jobs.into_iter().map(|j| (j.keys, (j.decide, j.reply))).unzip();
        let (decides, replies): (Vec<Decide>, Vec<_>) = rest.into_iter().unzip();
        let answers = match self.attempts(&keys, &decides).await {
            Ok(answers) => answers,
            Err(Failed::Data(detail)) if decides.len() > 1 => {
                tracing::warn!(%detail, "the database refused a batch; committing its requests one by one");
                let mut answers = Vec::with_capacity(decides.len());
                for (k, d) in keys.iter().zip(&decides) {
                    let one = self.attempts(std::slice::from_ref(k), std::slice::from_ref(d)).await;
                    answers.push(match one {
                        Ok(mut a) => a.pop().unwrap_or_else(|| Err(StoreError::Corrupt("no answer".into()))),
                        Err(f) => Err(failure_error(f)),
                    });
                }
                answers
            }
            Err(f) => {
                let e = failure_error(f);
                tracing::warn!(error = %e, requests = decides.len(), "a batch did not commit");
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
                return false;
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
        true
    }

    /// Runs the batch until it commits or fails for good.
    async fn attempts(
        &mut self,
        keys: &[Keys],
        decides: &[Decide],
    ) -> Result<Vec<Result<Executed<AnyOutcome>, StoreError>>, Failed> {
        let mut extra = Keys::default();
        for _ in 0..MAX_ATTEMPTS {
            match self.attempt(keys, &extra, decides).await {
                Ok(answers) => return Ok(answers),
                Err(Failed::Again(missing)) => merge_keys(&mut extra, missing),
                Err(other) => return Err(other),
            }
        }
        Ok(keys
            .iter()
            .map(|_| {
                Err(StoreError::Conflict(
                    "the batch kept losing races with other writers".into(),
                ))
            })
            .collect())
    }

    async fn attempt(
        &mut self,
        keys: &[Keys],
        extra: &Keys,
        decides: &[Decide],
    ) -> Result<Vec<Result<Executed<AnyOutcome>, StoreError>>, Failed> {
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = None;
            let conn = connection(&self.config.pool, &self.config.target)
                .await
                .map_err(|e| Failed::Unavailable(e.to_string()))?;
            self.conn = Some(conn);
        }
        let Some(conn) = self.conn.as_ref() else {
            return Err(Failed::Unavailable("no connection".into()));
        };
        let mut all = Keys::default();
        for k in keys {
            merge_keys(&mut all, k.clone());
        }
        merge_keys(&mut all, extra.clone());
        // A decision takes at most one fresh reference (a new posting EBPP sent none for).
        let short = (decides.len() as u64).saturating_sub(self.references.available());
        let blocks = short.div_ceil(REFERENCE_BLOCK) as i64;
        let result = load(conn, &all, blocks).await;
        let (state, reference_starts) = match result {
            Ok(loaded) => loaded,
            Err(f) => {
                self.rollback().await;
                return Err(f);
            }
        };
        for start in reference_starts {
            self.references.add_block(start, REFERENCE_BLOCK);
        }
        let decided = decide_all(state, decides, &mut self.references);
        let (answers, output) = match decided {
            Ok(d) => d,
            Err(f) => {
                self.rollback().await;
                return Err(f);
            }
        };
        let written = write(conn, &output).await;
        let (journal_last, event_seqs) = match written {
            Ok(w) => w,
            Err(f) => {
                if matches!(f, Failed::Unavailable(_)) {
                    self.conn = None;
                }
                return Err(f);
            }
        };
        let journal_first = journal_last.saturating_sub(output.journal.len() as u64) + 1;
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                Answer::Done(done) => done,
                Answer::Commits(p) => {
                    let event_seq = match p.event_index {
                        Some(i) => match event_seqs.get(i) {
                            Some(seq) => Some(*seq),
                            None => return Err(StoreError::Corrupt("an event was not numbered".into())),
                        },
                        None => None,
                    };
                    Ok(Executed {
                        outcome: p.outcome,
                        committed: Some(Committed {
                            change: p.change,
                            journal_seq: p.journal_index.map(|i| journal_first + i as u64),
                            balance_after: p.balance_after,
                            currency_exponent: p.currency_exponent,
                            event_seq,
                        }),
                    })
                }
            })
            .collect())
    }

    /// Ends an open transaction that will not commit; a connection that cannot even do that
    /// is dropped.
    async fn rollback(&mut self) {
        if let Some(conn) = &self.conn {
            if conn.batch_execute("ROLLBACK").await.is_err() {
                self.conn = None;
            }
        }
    }
}

fn failure_error(f: Failed) -> StoreError {
    match f {
        Failed::Again(_) => StoreError::Conflict("gave up after repeated lost races".into()),
        Failed::Data(d) => StoreError::Corrupt(format!("the database refused the write: {d}")),
        Failed::Unavailable(d) => StoreError::Unavailable(d),
        Failed::Corrupt(d) => StoreError::Corrupt(d),
    }
}

fn merge_keys(into: &mut Keys, from: Keys) {
    into.records.extend(from.records);
    into.accounts.extend(from.accounts);
    into.profiles.extend(from.profiles);
    into.events.extend(from.events);
    into.invoices.extend(from.invoices);
}

/// Classifies a driver error of a batch statement.
fn classify(e: &tokio_postgres::Error) -> Failed {
    use tokio_postgres::error::SqlState;
    let Some(code) = e.code() else {
        // Not a server error: the connection broke or timed out.
        return Failed::Unavailable(error_text(e));
    };
    if [
        SqlState::UNIQUE_VIOLATION,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::LOCK_NOT_AVAILABLE,
    ]
    .contains(code)
    {
        return Failed::Again(Keys::default());
    }
    let class = &code.code()[..2];
    // 08: connection, 53: resources, 57: operator intervention (statement timeout, shutdown),
    // 58: system error.
    if matches!(class, "08" | "53" | "57" | "58") || *code == SqlState::IN_FAILED_SQL_TRANSACTION {
        return Failed::Unavailable(error_text(e));
    }
    Failed::Data(error_text(e))
}

/// A stable 64-bit key for an advisory lock (FNV-1a: the same in every replica and release).
fn lock_key(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(std::iter::once(&0xff)) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash as i64
}

/// The advisory lock keys of a batch, sorted and without repeats.
fn lock_keys(keys: &Keys) -> Vec<i64> {
    let mut set = BTreeSet::new();
    for (kind, id) in &keys.records {
        set.insert(lock_key(&[b"record", kind.as_str().as_bytes(), id.as_bytes()]));
    }
    for (source, id) in &keys.events {
        set.insert(lock_key(&[b"event", source.as_bytes(), &id.to_be_bytes()]));
    }
    for (source, id) in &keys.invoices {
        set.insert(lock_key(&[b"invoice", source.as_bytes(), id.as_bytes()]));
    }
    set.into_iter().collect()
}

const LOCK: &str = "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k";

// The loads below probe a table once per key: `unnest(keys) CROSS JOIN LATERAL (SELECT ...
// WHERE key columns = k OFFSET 0)`. A plain join of the keys with the table leaves the choice
// to the planner, and the writer's statements are prepared once per connection: their generic
// plan is made after a few batches, when a new database's `records` and `events` are nearly
// empty and never analysed, and it then hash-joins the keys with a full scan of the table, kept
// until autovacuum's first ANALYZE (a minute or more) while the table grows by thousands of
// rows a second (perf: most of the database's CPU in sequential scans; `auto_explain`: the
// records load 3.8 ms per batch with a table of 20,000 rows). `OFFSET 0` keeps each probe a
// subquery of its own, and a probe of a unique key is an index lookup at any table size.

/// The accounts announced, and those of the announced records, locked in account order. One
/// list of numbers probed on the primary key: an `OR` of the two conditions, or a comparison
/// with `records.account_number` in its byte-wise collation, cannot use the index and reads
/// every account (hundreds of milliseconds per batch at a million accounts).
fn select_accounts() -> String {
    format!(
        "SELECT {} FROM accounts WHERE account_number IN ( \
           SELECT unnest($1::text[]) \
           UNION \
           SELECT r.account_number COLLATE \"default\" \
           FROM unnest($2::text[], $3::text[]) AS k(kind, id) CROSS JOIN LATERAL ( \
             SELECT r.account_number FROM records r \
             WHERE r.kind = k.kind AND r.id = k.id AND r.account_number IS NOT NULL OFFSET 0) r) \
         ORDER BY account_number FOR UPDATE",
        rows::ACCOUNT_COLUMNS
    )
}

fn select_records() -> String {
    let cols = rows::record_columns("r");
    format!(
        "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(kind, id)) \
         SELECT {cols} FROM k CROSS JOIN LATERAL ( \
           SELECT * FROM records r WHERE r.kind = k.kind AND r.id = k.id OFFSET 0) r \
         UNION ALL \
         SELECT {cols} FROM k CROSS JOIN LATERAL ( \
           SELECT * FROM records r WHERE r.parent_id = k.id AND r.kind = CASE k.kind \
             WHEN 'payment' THEN 'refund' WHEN 'empayre-payment' THEN 'empayre-refund' END OFFSET 0) r"
    )
}

fn select_profiles() -> String {
    format!(
        "SELECT {} FROM profiles WHERE customer_reference = ANY($1::text[])",
        rows::PROFILE_COLUMNS
    )
}

const SELECT_EVENTS: &str = "SELECT e.source, e.event_id \
     FROM unnest($1::text[], $2::bigint[]) AS k(s, i) CROSS JOIN LATERAL ( \
       SELECT e.source, e.event_id FROM events e \
       WHERE e.source = k.s AND e.event_id = k.i AND e.event_id IS NOT NULL OFFSET 0) e";

const SELECT_INVOICES: &str = "SELECT s.source, s.invoice_id, s.snapshot \
     FROM unnest($1::text[], $2::text[]) AS k(s, i) CROSS JOIN LATERAL ( \
       SELECT s.source, s.invoice_id, s.snapshot FROM invoice_snapshots s \
       WHERE s.source = k.s AND s.invoice_id = k.i OFFSET 0) s";

const NEXT_REFERENCE_BLOCKS: &str = "SELECT nextval('reference_numbers') FROM generate_series(1, $1::bigint)";

/// Round trip 1: begin, lock, load (pipelined). Returns the loaded state and the starts of
/// `reference_blocks` fresh blocks of reference numbers.
async fn load(conn: &Object, keys: &Keys, reference_blocks: i64) -> Result<(BatchState, Vec<u64>), Failed> {
    let prepare = |sql: String| async move { conn.prepare_cached(&sql).await.map_err(|e| classify(&e)) };
    let lock = prepare(LOCK.into()).await?;
    let accounts = prepare(select_accounts()).await?;
    let records = prepare(select_records()).await?;
    let profiles = prepare(select_profiles()).await?;
    let events = prepare(SELECT_EVENTS.into()).await?;
    let invoices = prepare(SELECT_INVOICES.into()).await?;
    let references = prepare(NEXT_REFERENCE_BLOCKS.into()).await?;

    let lock_keys = lock_keys(keys);
    let mut account_numbers: Vec<&str> = keys.accounts.iter().map(AccountNumber::as_str).collect();
    account_numbers.sort_unstable();
    account_numbers.dedup();
    let record_kinds: Vec<&str> = keys.records.iter().map(|(k, _)| k.as_str()).collect();
    let record_ids: Vec<&str> = keys.records.iter().map(|(_, id)| id.as_str()).collect();
    let profile_refs: Vec<&str> = keys.profiles.iter().map(String::as_str).collect();
    let event_sources: Vec<&str> = keys.events.iter().map(|(s, _)| s.as_str()).collect();
    let event_ids: Vec<i64> = keys.events.iter().map(|(_, i)| *i).collect();
    let invoice_sources: Vec<&str> = keys.invoices.iter().map(|(s, _)| s.as_str()).collect();
    let invoice_ids: Vec<&str> = keys.invoices.iter().map(|(_, i)| i.as_str()).collect();

    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&lock_keys];
    let account_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&account_numbers, &record_kinds, &record_ids];
    let record_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&record_kinds, &record_ids];
    let profile_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&profile_refs];
    let event_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&event_sources, &event_ids];
    let invoice_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&invoice_sources, &invoice_ids];
    let reference_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&reference_blocks];
    // Sent in this order on the one connection (each future sends its request when first
    // polled, and `join!` polls in order): one round trip for all of it.
    let (begun, locked, account_rows, record_rows, profile_rows, event_rows, invoice_rows, reference_rows) = tokio::join!(
        conn.batch_execute("BEGIN"),
        conn.query(&lock, &lock_params),
        conn.query(&accounts, &account_params),
        conn.query(&records, &record_params),
        conn.query(&profiles, &profile_params),
        conn.query(&events, &event_params),
        conn.query(&invoices, &invoice_params),
        async {
            if reference_blocks > 0 {
                conn.query(&references, &reference_params).await
            } else {
                Ok(Vec::new())
            }
        },
    );
    begun.map_err(|e| classify(&e))?;
    locked.map_err(|e| classify(&e))?;
    let account_rows = account_rows.map_err(|e| classify(&e))?;
    let record_rows = record_rows.map_err(|e| classify(&e))?;
    let profile_rows = profile_rows.map_err(|e| classify(&e))?;
    let event_rows = event_rows.map_err(|e| classify(&e))?;
    let invoice_rows = invoice_rows.map_err(|e| classify(&e))?;
    let reference_rows = reference_rows.map_err(|e| classify(&e))?;

    let corrupt = |e: StoreError| Failed::Corrupt(e.to_string());
    let mut state = BatchState::default();
    for number in &keys.accounts {
        state.accounts.insert(number.clone(), None);
    }
    for row in &account_rows {
        let account = rows::account_from_row(row).map_err(corrupt)?;
        state.accounts.insert(account.account_number.clone(), Some(account));
    }
    for (kind, id) in &keys.records {
        state.records.insert((*kind, id.clone()), None);
    }
    for row in &record_rows {
        let record = rows::record_from_row(row).map_err(corrupt)?;
        state.records.insert((record.kind, record.id.clone()), Some(record));
    }
    for (key, value) in &state.records {
        if value.is_none() {
            state.absent_at_load.insert(key.clone());
        }
    }
    for reference in &keys.profiles {
        state.profiles.insert(reference.clone(), None);
    }
    for row in &profile_rows {
        let profile = rows::profile_from_row(row).map_err(corrupt)?;
        state.profiles.insert(profile.customer_reference.clone(), Some(profile));
    }
    for key in &keys.events {
        state.events_seen.insert(key.clone(), false);
    }
    for row in &event_rows {
        let source: String = row.try_get(0).map_err(|e| Failed::Corrupt(e.to_string()))?;
        let id: i64 = row.try_get(1).map_err(|e| Failed::Corrupt(e.to_string()))?;
        state.events_seen.insert((source, id), true);
    }
    for key in &keys.invoices {
        state.invoices.insert(key.clone(), None);
    }
    for row in &invoice_rows {
        let source: String = row.try_get(0).map_err(|e| Failed::Corrupt(e.to_string()))?;
        let id: String = row.try_get(1).map_err(|e| Failed::Corrupt(e.to_string()))?;
        let snapshot: Value = row.try_get(2).map_err(|e| Failed::Corrupt(e.to_string()))?;
        state.invoices.insert((source, id), Some(snapshot));
    }
    let mut reference_starts = Vec::with_capacity(reference_rows.len());
    for row in &reference_rows {
        let start: i64 = row.try_get(0).map_err(|e| Failed::Corrupt(e.to_string()))?;
        reference_starts.push(u64::try_from(start).map_err(|e| Failed::Corrupt(e.to_string()))?);
    }
    Ok((state, reference_starts))
}

/// Step 2: every decision in order against the loaded state; what they write is applied to
/// the state (for the decisions after them) and gathered for the write.
fn decide_all(
    state: BatchState,
    decides: &[Decide],
    references: &mut ReferenceBlock,
) -> Result<(Vec<Answer>, Output), Failed> {
    let cell = RefCell::new(std::mem::take(references));
    let result = decide_each(state, decides, &cell);
    *references = cell.into_inner();
    result
}

fn decide_each(
    mut state: BatchState,
    decides: &[Decide],
    references: &RefCell<ReferenceBlock>,
) -> Result<(Vec<Answer>, Output), Failed> {
    let misses = RefCell::new(Keys::default());
    let mut answers = Vec::with_capacity(decides.len());
    let mut out = Output::default();
    let mut touched_records: Vec<(RecordKind, String)> = Vec::new();
    let mut touched_accounts: Vec<AccountNumber> = Vec::new();
    let mut unmatched: HashMap<String, Option<(DateTime<Utc>, Value)>> = HashMap::new();
    let mut unmatched_order: Vec<String> = Vec::new();
    // How each stored record was counted before this batch (its status may change).
    let counted: HashMap<(RecordKind, String), Facet> = state
        .records
        .iter()
        .filter_map(|(key, record)| record.as_ref().map(|r| (key.clone(), Facet::of(r))))
        .collect();
    for decide in decides {
        let decision = {
            let view = BatchView {
                state: &state,
                misses: &misses,
                references,
            };
            match decide.lock() {
                Ok(decide) => decide(&view),
                Err(_) => Err(StoreError::Corrupt("a decision panicked earlier".into())),
            }
        };
        let decision = match decision {
            Ok(d) => d,
            Err(StoreError::Conflict(detail)) => {
                let missing = misses.take();
                // Without a miss noted it ran out of reference numbers, which the next attempt
                // tops up (it asks for as many as the batch has decisions).
                tracing::debug!(%detail, "deciding the batch again");
                return Err(Failed::Again(missing));
            }
            Err(e) => {
                answers.push(Answer::Done(Err(e)));
                continue;
            }
        };
        let (writes, outcome) = match decision {
            Decision::Commit(writes, outcome) => (writes, outcome),
            Decision::Confirm(outcome) | Decision::Refuse(outcome) => {
                answers.push(Answer::Done(Ok(Executed {
                    outcome,
                    committed: None,
                })));
                continue;
            }
        };
        let mut pending = Pending {
            outcome,
            change: None,
            journal_index: None,
            balance_after: None,
            currency_exponent: 2,
            event_index: None,
        };
        if let Some(change) = &writes.change {
            let account = match &change.payment.account_number {
                Some(number) => match state.accounts.get(number) {
                    Some(found) => found.clone(),
                    None => {
                        let mut missing = misses.take();
                        missing.accounts.push(number.clone());
                        return Err(Failed::Again(missing));
                    }
                },
                None => None,
            };
            let settlement = match ledger::settle(change, account, writes.channel, writes.at) {
                Ok(s) => s,
                Err(e) => {
                    answers.push(Answer::Done(Err(StoreError::Corrupt(e.to_string()))));
                    continue;
                }
            };
            pending.balance_after = settlement.balance_after();
            if let Some(account) = &settlement.account {
                pending.currency_exponent = account.exponent();
            }
            if let Some(entry) = settlement.entry {
                let entry = entry.with_origin(writes.origin);
                pending.journal_index = Some(out.journal.len());
                out.journal.push(&entry);
                if let Some(account) = settlement.account {
                    let number = account.account_number.clone();
                    if !touched_accounts.contains(&number) {
                        touched_accounts.push(number.clone());
                    }
                    state.accounts.insert(number, Some(account));
                }
            }
            for record in std::iter::once(&change.payment).chain(change.refund.as_ref()) {
                let key = (record.kind, record.id.clone());
                if !touched_records.contains(&key) {
                    touched_records.push(key.clone());
                }
                state.records.insert(key, Some(record.clone()));
            }
            pending.change = Some(change.clone());
        }
        for record in &writes.records {
            let key = (record.kind, record.id.clone());
            if !touched_records.contains(&key) {
                touched_records.push(key.clone());
            }
            state.records.insert(key, Some(record.clone()));
        }
        if let Some(copy) = writes.accepted_copy {
            out.accepted.0.push(writes.at);
            out.accepted.1.push(copy);
        }
        if let Some(event) = &writes.event {
            pending.event_index = Some(out.events.len());
            out.events.push(0, event);
            if let Some(id) = event.event_id {
                state.events_seen.insert((event.source.clone(), id), true);
            }
        }
        if let Some((source, invoice_id, snapshot)) = writes.invoice {
            let key = (source, invoice_id);
            if let Some(i) = out
                .invoices
                .0
                .iter()
                .zip(&out.invoices.1)
                .position(|(s, id)| *s == key.0 && *id == key.1)
            {
                out.invoices.2[i] = snapshot.clone();
            } else {
                out.invoices.0.push(key.0.clone());
                out.invoices.1.push(key.1.clone());
                out.invoices.2.push(snapshot.clone());
            }
            state.invoices.insert(key, Some(snapshot));
        }
        match writes.unmatched {
            Some(UnmatchedUpdate::Put(key, item)) => {
                let at = item
                    .get("received_at")
                    .and_then(Value::as_str)
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(writes.at);
                if !unmatched_order.contains(&key) {
                    unmatched_order.push(key.clone());
                }
                unmatched.insert(key, Some((at, item)));
            }
            Some(UnmatchedUpdate::Clear(key)) => {
                if !unmatched_order.contains(&key) {
                    unmatched_order.push(key.clone());
                }
                unmatched.insert(key, None);
            }
            None => {}
        }
        answers.push(Answer::Commits(pending));
    }
    for key in &touched_records {
        let Some(Some(record)) = state.records.get(key) else {
            continue;
        };
        let columns = if state.absent_at_load.contains(key) {
            &mut out.new_records
        } else {
            &mut out.updated_records
        };
        columns.push(record).map_err(|e| Failed::Corrupt(e.to_string()))?;
        out.counts.moved(counted.get(key), &Facet::of(record));
    }
    for number in &touched_accounts {
        if let Some(Some(account)) = state.accounts.get(number) {
            out.accounts.push((number.clone(), account.posted_delta));
        }
    }
    for key in unmatched_order {
        match unmatched.remove(&key) {
            Some(Some((at, item))) => {
                out.unmatched_put.0.push(key);
                out.unmatched_put.1.push(at);
                out.unmatched_put.2.push(item);
            }
            Some(None) => out.unmatched_clear.push(key),
            None => {}
        }
    }
    Ok((answers, out))
}

const UPDATE_BALANCES: &str = "UPDATE accounts a SET posted_delta = u.pd \
     FROM unnest($1::text[], $2::numeric[]) AS u(n, pd) WHERE a.account_number = u.n";
const INSERT_ACCEPTED: &str = "INSERT INTO accepted_postings (received_at, entry) \
     SELECT * FROM unnest($1::timestamptz[], $2::jsonb[])";
const UPSERT_INVOICES: &str = "INSERT INTO invoice_snapshots (source, invoice_id, snapshot) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[]) \
     ON CONFLICT (source, invoice_id) DO UPDATE SET snapshot = EXCLUDED.snapshot";
const PUT_UNMATCHED: &str = "INSERT INTO unmatched (key, received_at, item) \
     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::jsonb[]) \
     ON CONFLICT (key) DO UPDATE SET received_at = EXCLUDED.received_at, item = EXCLUDED.item";
const CLEAR_UNMATCHED: &str = "DELETE FROM unmatched WHERE key = ANY($1::text[])";

/// Round trip 2: every write, the journal last, and the commit (pipelined). Returns the last
/// journal seq and the new events' seqs in order.
async fn write(conn: &Object, out: &Output) -> Result<(u64, Vec<u64>), Failed> {
    let prepare = |sql: String| async move { conn.prepare_cached(&sql).await.map_err(|e| classify(&e)) };
    let insert_records = prepare(rows::insert_new_records()).await?;
    let upsert_records = prepare(rows::upsert_records()).await?;
    let balances = prepare(UPDATE_BALANCES.into()).await?;
    let accepted = prepare(INSERT_ACCEPTED.into()).await?;
    let events = prepare(rows::insert_new_events()).await?;
    let invoices = prepare(UPSERT_INVOICES.into()).await?;
    let put_unmatched = prepare(PUT_UNMATCHED.into()).await?;
    let clear_unmatched = prepare(CLEAR_UNMATCHED.into()).await?;
    let counts = prepare(UPSERT_COUNTS.into()).await?;
    let journal = prepare(rows::INSERT_JOURNAL_NUMBERED.into()).await?;

    let (numbers, deltas): (Vec<&str>, Vec<Decimal>) = out.accounts.iter().map(|(n, d)| (n.as_str(), *d)).unzip();
    let skip = || async { Ok::<Vec<tokio_postgres::Row>, tokio_postgres::Error>(Vec::new()) };
    let (new, updated, balanced, copied, stored, snapshots, put, cleared, counted, journaled, committed) = tokio::join!(
        async {
            if out.new_records.is_empty() {
                skip().await
            } else {
                conn.query(&insert_records, &out.new_records.params()).await
            }
        },
        async {
            if out.updated_records.is_empty() {
                skip().await
            } else {
                conn.query(&upsert_records, &out.updated_records.params()).await
            }
        },
        async {
            if numbers.is_empty() {
                skip().await
            } else {
                conn.query(&balances, &[&numbers, &deltas]).await
            }
        },
        async {
            if out.accepted.0.is_empty() {
                skip().await
            } else {
                conn.query(&accepted, &[&out.accepted.0, &out.accepted.1]).await
            }
        },
        async {
            if out.events.is_empty() {
                skip().await
            } else {
                conn.query(&events, &out.events.params()).await
            }
        },
        async {
            if out.invoices.0.is_empty() {
                skip().await
            } else {
                conn.query(&invoices, &[&out.invoices.0, &out.invoices.1, &out.invoices.2])
                    .await
            }
        },
        async {
            if out.unmatched_put.0.is_empty() {
                skip().await
            } else {
                conn.query(
                    &put_unmatched,
                    &[&out.unmatched_put.0, &out.unmatched_put.1, &out.unmatched_put.2],
                )
                .await
            }
        },
        async {
            if out.unmatched_clear.is_empty() {
                skip().await
            } else {
                conn.query(&clear_unmatched, &[&out.unmatched_clear]).await
            }
        },
        // Just before the journal counter (see `counts`).
        async {
            if out.counts.is_empty() {
                skip().await
            } else {
                conn.query(&counts, &out.counts.params()).await
            }
        },
        async {
            if out.journal.is_empty() {
                skip().await
            } else {
                conn.query(&journal, &out.journal.params()).await
            }
        },
        conn.batch_execute("COMMIT"),
    );
    // A failed statement aborts the transaction, and the server then answers the COMMIT with
    // a rollback: the first error is the one that counts.
    let results = [new, updated, balanced, copied, stored, snapshots, put, cleared, counted];
    let mut first_error = None;
    let mut event_rows = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(rows) if i == 4 => event_rows = rows,
            Ok(_) => {}
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    let journal_rows = match journaled {
        Ok(rows) => rows,
        Err(e) => {
            first_error.get_or_insert(e);
            Vec::new()
        }
    };
    if let Some(e) = first_error {
        return Err(classify(&e));
    }
    committed.map_err(|e| classify(&e))?;
    let journal_last = match journal_rows.first() {
        Some(row) => {
            let last: i64 = row.try_get(0).map_err(|e| Failed::Corrupt(e.to_string()))?;
            u64::try_from(last).map_err(|e| Failed::Corrupt(e.to_string()))?
        }
        None => 0,
    };
    let event_seqs = match event_rows.first() {
        Some(row) => {
            let seqs: Vec<i64> = row.try_get(1).map_err(|e| Failed::Corrupt(e.to_string()))?;
            seqs.into_iter().map(|s| s as u64).collect()
        }
        None => Vec::new(),
    };
    Ok((journal_last, event_seqs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_sorted_and_distinct() {
        let keys = Keys {
            records: vec![
                (RecordKind::Payment, "1001".into()),
                (RecordKind::Refund, "1001".into()),
                (RecordKind::Payment, "1001".into()),
            ],
            events: vec![("demo".into(), 7)],
            invoices: vec![("demo".into(), "inv".into())],
            ..Keys::default()
        };
        let locks = lock_keys(&keys);
        assert_eq!(locks.len(), 4, "the repeated payment is locked once");
        assert!(locks.windows(2).all(|w| w[0] < w[1]), "sorted: {locks:?}");
        // The same identity gives the same key in every replica and every release.
        assert_eq!(
            lock_key(&[b"record", b"payment", b"1001"]),
            lock_key(&[b"record", b"payment", b"1001"])
        );
        assert_ne!(
            lock_key(&[b"record", b"payment", b"1001"]),
            lock_key(&[b"record", b"refund", b"1001"])
        );
        // Parts are separated: ("ab","c") and ("a","bc") differ.
        assert_ne!(lock_key(&[b"ab", b"c"]), lock_key(&[b"a", b"bc"]));
    }
}
