//! Storage: one interface, `Store`, that every caller uses (the channels' use cases, admin, the
//! command line, health and metrics), and the backends behind it. `sled_store` is the embedded
//! one; `postgres` (several replicas on one database) implements the same `Backend` trait.
//!
//! Writes go through `Store::execute(keys, decide)`: the backend reads what the decision needs
//! under its own lock, runs the ledger's pure decision there (again, if it lost a race), settles
//! the change (`ledger::settle`), assigns the journal seq, event seq and references, commits
//! atomically, and returns once the commit is durable. Group commit and batching live inside
//! each backend. See `docs/architecture.md` for what a second backend must provide.
//!
//! Why an enum of backends (the pict-rs `Repo` model) rather than `dyn Backend` or a type
//! parameter: `execute` is generic over the decision's outcome, which a trait object cannot
//! offer without boxing and downcasting, and a type parameter on `AppState` would run through
//! every handler and route. An enum keeps one concrete `Store` in `AppState`, static dispatch,
//! and the compiler lists every place a new backend must be wired in.

pub mod amount_bucket;
#[cfg(test)]
mod conformance;
pub mod copy;
mod error;
mod execute;
pub mod import_merge;
pub mod postgres;
pub mod query;
pub mod sled_store;
mod stats;
mod stored_event;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use error::StoreError;
pub use execute::{Committed, Decision, Executed, Keys, UnmatchedUpdate, View, Writes};
pub use query::{
    Condition, Direction, EventFilter, Filter, ImportSummary, LookupCriteria, LookupMatch, MinuteCount, Operand,
    RecordCursor, SearchField, SearchPage, SearchQuery, SortField,
};
pub use sled_store::SledStore;
pub use stats::{CommitStats, BATCH_BOUNDS, LATENCY_BOUNDS_MICROS};
pub use stored_event::StoredEvent;

use crate::domain::account::{Account, AccountEntry, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{JournalEntry, Record, RecordKind};
use crate::settings::{Backend as BackendKind, StoreSettings};

/// How many refused requests the request log keeps (the newest), in every backend.
pub const REJECTIONS_KEPT: usize = 10_000;

/// Why the store is not ready to take writes (`GET /health/ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// The check that failed, as `/health/ready` names it (`store_write`, `disk_free`, ...).
    pub check: &'static str,
    /// For the log only.
    pub detail: String,
}

/// What every storage backend provides. Times are kept to the microsecond (PostgreSQL's
/// precision); finer digits may be dropped. Reads of feeds (`journal_after`, `account_journal`)
/// show durable data only: a poller must never see an entry that later changes or vanishes.
pub trait Backend: Clone + Send + Sync + 'static {
    // ---- writes ----

    /// Runs `decide` under the backend's lock against what it reads there, commits what it
    /// decided atomically (settling a ledger change with `ledger::settle`, numbering its journal
    /// entry gap-free), and answers once that is durable (see `Decision`).
    fn execute<O, F>(&self, keys: Keys, decide: F) -> impl Future<Output = Result<Executed<O>, StoreError>> + Send
    where
        O: Send + 'static,
        F: Fn(&dyn View) -> Result<Decision<O>, StoreError> + Send + 'static;

    /// Upserts validated accounts and their profiles (`domain::account`); durable on return.
    fn import_accounts(
        &self,
        entries: Vec<AccountEntry>,
    ) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Appends to the request log of refused requests, keeping the newest `REJECTIONS_KEPT`.
    /// Not awaited for durability: nothing about money depends on it.
    fn log_rejection(&self, entry: Value) -> impl Future<Output = Result<(), StoreError>> + Send;

    // ---- reads ----

    fn account(&self, number: &AccountNumber) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn profile(&self, customer_reference: &str) -> impl Future<Output = Result<Option<Profile>, StoreError>> + Send;
    fn record(&self, kind: RecordKind, id: &str) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;
    fn has_accounts(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Profiles matching every criterion given, at most `max` (by customer reference), with
    /// their accounts, and how many matched in all.
    fn lookup(
        &self,
        criteria: &LookupCriteria,
        max: usize,
    ) -> impl Future<Output = Result<(Vec<LookupMatch>, usize), StoreError>> + Send;

    // ---- feeds and search ----

    /// Journal entries with `seq > after`, in order, at most `limit`, durable ones only.
    fn journal_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;
    /// An account's journal entries, newest first, at most `limit`, durable ones only.
    fn account_journal(
        &self,
        account_number: &AccountNumber,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;
    /// The journal entries one record made (entries whose kind and record id are the record's),
    /// in seq order, durable ones only: the console's record page.
    fn record_journal(
        &self,
        kind: RecordKind,
        id: &str,
    ) -> impl Future<Output = Result<Vec<JournalEntry>, StoreError>> + Send;
    /// The postings search of docs/operations.md, the postings search.
    fn search(&self, query: &SearchQuery) -> impl Future<Output = Result<SearchPage, StoreError>> + Send;
    /// Records received at or after `since`, in receive order, after `cursor`, at most `limit`.
    fn records_received(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<RecordCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
    /// Stored Empayre events, newest first.
    fn events(&self, filter: &EventFilter) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;
    fn event(
        &self,
        source: &str,
        event_id: i64,
    ) -> impl Future<Output = Result<Option<StoredEvent>, StoreError>> + Send;
    /// Quarantined events, newest first.
    fn quarantined(&self, limit: usize) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;
    /// Empayre payments without an account, as `UnmatchedUpdate::Put` stored them, newest first.
    fn unmatched(&self) -> impl Future<Output = Result<Vec<Value>, StoreError>> + Send;
    /// The request log, newest first.
    fn recent_rejections(&self, limit: usize) -> impl Future<Output = Result<Vec<Value>, StoreError>> + Send;
    /// How many records of each channel were received in each of the `minutes` whole minutes
    /// from `first_minute` (minutes since the Unix epoch, UTC), by `received_at`: the console's
    /// activity chart. Must stay cheap for a day (1440 minutes) of a large store.
    fn received_per_minute(
        &self,
        first_minute: i64,
        minutes: usize,
    ) -> impl Future<Output = Result<Vec<MinuteCount>, StoreError>> + Send;

    /// A small value the application keeps by name, outside the ledger (the Empayre
    /// reconciliation's cursor and run list). None when never written.
    fn meta(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    /// Replaces the value kept under `key` (last writer wins); durable on return.
    fn put_meta(&self, key: &str, value: Vec<u8>) -> impl Future<Output = Result<(), StoreError>> + Send;

    // ---- operations ----

    /// Whether the store takes a durable write now (and whatever else the backend needs).
    fn readiness(&self) -> impl Future<Output = Result<(), NotReady>> + Send;
    /// Group-commit figures for `/metrics`.
    fn stats(&self) -> &CommitStats;
    /// Closes the store for a clean stop, once nothing writes any more: everything written is
    /// made durable (sled: the flusher's last fsync; PostgreSQL: the pool's connections closed
    /// after their last commit), and later calls answer `Unavailable`. Closing again does
    /// nothing.
    fn close(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Conditions an operator must know about while the store still serves, for
    /// `/health/ready` and the start-up log (PostgreSQL: commits that are not crash-safe,
    /// allowed by `store.postgres.allow_unsafe_commit`). None by default.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether a 2xx may not survive a crash of the machine holding the data (issue 20: only
    /// ever true when the operator allowed it).
    fn unsafe_commit(&self) -> bool {
        false
    }
}

/// The store the service runs on: one of the backends.
#[derive(Clone)]
pub enum Store {
    Sled(SledStore),
    Postgres(postgres::PgStore),
}

/// Forwards a call to whichever backend the store is.
macro_rules! forward {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            Store::Sled($backend) => $call,
            Store::Postgres($backend) => $call,
        }
    };
}

impl Store {
    /// Opens the configured backend.
    pub fn open(settings: &StoreSettings) -> Result<Self, StoreError> {
        match settings.backend {
            BackendKind::Sled => Ok(Self::Sled(
                SledStore::open(&settings.path, settings.cache_capacity_bytes)?
                    .with_min_free_bytes(settings.min_free_bytes),
            )),
            BackendKind::Postgres => postgres::PgStore::open(&settings.postgres)
                .map(Self::Postgres)
                .map_err(|e| StoreError::Unavailable(e.to_string())),
        }
    }

    pub async fn execute<O, F>(&self, keys: Keys, decide: F) -> Result<Executed<O>, StoreError>
    where
        O: Send + 'static,
        F: Fn(&dyn View) -> Result<Decision<O>, StoreError> + Send + 'static,
    {
        forward!(self, b => Backend::execute(b, keys, decide).await)
    }

    pub async fn import_accounts(&self, entries: Vec<AccountEntry>) -> Result<ImportSummary, StoreError> {
        forward!(self, b => Backend::import_accounts(b, entries).await)
    }

    pub async fn log_rejection(&self, entry: Value) -> Result<(), StoreError> {
        forward!(self, b => Backend::log_rejection(b, entry).await)
    }

    pub async fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError> {
        forward!(self, b => Backend::account(b, number).await)
    }

    pub async fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        forward!(self, b => Backend::profile(b, customer_reference).await)
    }

    pub async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        forward!(self, b => Backend::record(b, kind, id).await)
    }

    pub async fn has_accounts(&self) -> Result<bool, StoreError> {
        forward!(self, b => Backend::has_accounts(b).await)
    }

    pub async fn lookup(&self, criteria: &LookupCriteria, max: usize) -> Result<(Vec<LookupMatch>, usize), StoreError> {
        forward!(self, b => Backend::lookup(b, criteria, max).await)
    }

    pub async fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        forward!(self, b => Backend::journal_after(b, after, limit).await)
    }

    pub async fn account_journal(
        &self,
        account_number: &AccountNumber,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        forward!(self, b => Backend::account_journal(b, account_number, limit).await)
    }

    pub async fn record_journal(&self, kind: RecordKind, id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        forward!(self, b => Backend::record_journal(b, kind, id).await)
    }

    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        forward!(self, b => Backend::search(b, query).await)
    }

    pub async fn records_received(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<RecordCursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        forward!(self, b => Backend::records_received(b, since, cursor, limit).await)
    }

    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        forward!(self, b => Backend::events(b, filter).await)
    }

    pub async fn event(&self, source: &str, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        forward!(self, b => Backend::event(b, source, event_id).await)
    }

    pub async fn quarantined(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        forward!(self, b => Backend::quarantined(b, limit).await)
    }

    pub async fn unmatched(&self) -> Result<Vec<Value>, StoreError> {
        forward!(self, b => Backend::unmatched(b).await)
    }

    pub async fn recent_rejections(&self, limit: usize) -> Result<Vec<Value>, StoreError> {
        forward!(self, b => Backend::recent_rejections(b, limit).await)
    }

    pub async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        forward!(self, b => Backend::meta(b, key).await)
    }

    pub async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        forward!(self, b => Backend::put_meta(b, key, value).await)
    }

    pub async fn received_per_minute(&self, first_minute: i64, minutes: usize) -> Result<Vec<MinuteCount>, StoreError> {
        forward!(self, b => Backend::received_per_minute(b, first_minute, minutes).await)
    }

    pub async fn readiness(&self) -> Result<(), NotReady> {
        forward!(self, b => Backend::readiness(b).await)
    }

    pub fn stats(&self) -> &CommitStats {
        forward!(self, b => Backend::stats(b))
    }

    pub async fn close(&self) -> Result<(), StoreError> {
        forward!(self, b => Backend::close(b).await)
    }

    pub fn warnings(&self) -> Vec<String> {
        forward!(self, b => Backend::warnings(b))
    }

    pub fn unsafe_commit(&self) -> bool {
        forward!(self, b => Backend::unsafe_commit(b))
    }

    /// Takes the lock of a background job that only one process may run at a time (the
    /// Empayre reconciliation of a source), if nobody holds it; `None` when another replica
    /// does. On sled the one server that holds the store always gets it; on PostgreSQL it is a
    /// session-level advisory lock that goes with its session when the holder dies.
    pub async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>, StoreError> {
        match self {
            Store::Sled(_) => Ok(Some(JobLock::Only)),
            Store::Postgres(pg) => Ok(pg.try_job_lock(name).await?.map(JobLock::Postgres)),
        }
    }
}

/// A background job's lock, held until dropped (see `Store::try_job_lock`).
pub enum JobLock {
    /// The store belongs to this process alone.
    Only,
    Postgres(postgres::JobLock),
}

impl JobLock {
    /// Whether it is still held (a lost database session lost it: take it again).
    pub async fn still_held(&self) -> bool {
        match self {
            JobLock::Only => true,
            JobLock::Postgres(lock) => lock.still_held().await,
        }
    }
}
