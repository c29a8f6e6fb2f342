//! The store owns sled: tree names, key encodings, transactions and the durability barrier.
//! Nothing outside this module touches sled types.
//!
//! Trees (values are JSON unless said otherwise):
//! - `accounts`        account_number → Account
//! - `profiles`        customer_reference → Profile
//! - `idx_email`       lower(email) 0x00 customer_reference → ()
//! - `idx_ssn`         sha256(ssn) hex 0x00 customer_reference → ()
//! - `idx_lookup_ref`  lookup_reference 0x00 customer_reference → ()
//! - `records`         kind tag, id → Record
//! - `idx_received`    received_at (i64 nanos, order-preserving) kind tag, id → () — time index
//! - `journal`         seq (u64 BE) → JournalEntry
//! - `idx_account_journal` account_number 0x00 seq (u64 BE) → () — an account's entries in order
//! - `accepted`        id (u64 BE) → the stored copy of an accepted posting
//! - `rejections`      id (u64 BE) → request-log entry of a rejected request
//! - `events`          arrival id (u64 BE) → a verified Empayre body with what it changed
//! - `event_ids`       source 0x00 eventID (order-preserving i64) → arrival id — dedup index
//! - `quarantine`      arrival id (u64 BE) → () — the events that were quarantined
//! - `entities`        "invoice" 0x00 source 0x00 invoice id → invoice snapshot
//! - `unmatched`       Empayre payment record id → unmatched payment
//! - `count_by_minute` minute (order-preserving i64) → u64 BE: how many `idx_received` keys
//!   fall in that minute, so an unfiltered window is counted without walking it
//! - `meta`            counters

mod accounts;
pub mod durability;
mod empayre;
pub(crate) mod minute_counts;
mod search;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use sled::Transactional;

pub use accounts::{ImportSummary, LookupCriteria, LookupMatch};
pub use empayre::{EventFilter, StoredEvent};
pub use search::{Condition, Direction, Filter, Operand, SearchField, SearchPage, SearchQuery, SortField};
pub use writer::{Applied, Writer};

use crate::ledger::{JournalEntry, Record, RecordKind};
use durability::{Durability, FlushStats};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another process (is a server running on it?)")]
    Locked { path: String },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl<E: Into<StoreError>> From<sled::transaction::TransactionError<E>> for StoreError {
    fn from(e: sled::transaction::TransactionError<E>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(inner) => inner.into(),
            sled::transaction::TransactionError::Storage(s) => s.into(),
        }
    }
}

/// Every tree a transaction may write, in a fixed order (see `WriteSet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeId {
    Accounts = 0,
    Profiles,
    IdxEmail,
    IdxSsn,
    IdxLookupRef,
    Records,
    IdxReceived,
    Journal,
    IdxAccountJournal,
    Accepted,
    Rejections,
    Events,
    EventIds,
    Quarantine,
    Entities,
    Unmatched,
    CountByMinute,
    Meta,
}

const TREE_NAMES: [&str; 18] = [
    "accounts",
    "profiles",
    "idx_email",
    "idx_ssn",
    "idx_lookup_ref",
    "records",
    "idx_received",
    "journal",
    "idx_account_journal",
    "accepted",
    "rejections",
    "events",
    "event_ids",
    "quarantine",
    "entities",
    "unmatched",
    "count_by_minute",
    "meta",
];

/// Writes to apply in one atomic sled transaction across trees.
#[derive(Default)]
pub(crate) struct WriteSet {
    pub(super) ops: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    pub fn put(&mut self, tree: TreeId, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), Some(value.into())));
    }

    pub fn put_json<T: serde::Serialize>(
        &mut self,
        tree: TreeId,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put(tree, key, bytes);
        Ok(())
    }

    pub fn remove(&mut self, tree: TreeId, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// What outlives one sled instance: the store is reopened in place after an I/O error.
struct Shared {
    path: PathBuf,
    display: String,
    cache_capacity_bytes: u64,
    /// None only while a failed instance is being replaced.
    current: RwLock<Option<Arc<Inner>>>,
    /// One writer at a time: makes read-decide-commit atomic without transaction retries, keeps
    /// the journal gap-free, and makes concurrent identical postings apply exactly once.
    writer: Mutex<writer::WriterState>,
    /// Set when a flush or commit failed: sled 0.34 then refuses every later write (its
    /// "global error") and its memory may hold writes that never reached the disk. The next
    /// writer reopens the store, which goes back to exactly what is on disk.
    failed: Arc<AtomicBool>,
    journal: Arc<JournalMarks>,
    stats: Arc<FlushStats>,
    /// How many entries the request log holds (counted once at open, then kept up to date).
    rejections_logged: AtomicUsize,
}

/// How many refused requests the request log keeps (the newest).
pub const REJECTIONS_KEPT: usize = 10_000;

/// One open sled instance. Field order matters on drop: the flusher holds the last `Db`
/// handle, and joining it releases sled's lock on the directory.
struct Inner {
    trees: Vec<sled::Tree>,
    db: sled::Db,
    durability: Durability,
}

/// The journal's last committed and last durable seq. The change feed shows entries up to the
/// durable one only: an entry a poller has read must never change or vanish.
#[derive(Debug, Default)]
pub(crate) struct JournalMarks {
    pub committed: AtomicU64,
    pub durable: AtomicU64,
}

impl Store {
    pub fn open(path: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        let failed = Arc::new(AtomicBool::new(false));
        let journal = Arc::new(JournalMarks::default());
        let stats = Arc::new(FlushStats::default());
        let display = path.display().to_string();
        let inner = open_instance(path, &display, cache_capacity_bytes, &failed, &journal, &stats)?;
        let rejections_logged = inner.trees[TreeId::Rejections as usize].len();
        let state = writer::WriterState::load(&inner.trees[TreeId::Journal as usize])?;
        journal.committed.store(state.last_seq(), Ordering::Release);
        journal.durable.store(state.last_seq(), Ordering::Release);
        Ok(Self {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                display,
                cache_capacity_bytes,
                current: RwLock::new(Some(Arc::new(inner))),
                writer: Mutex::new(state),
                failed,
                journal,
                stats,
                rejections_logged: AtomicUsize::new(rejections_logged),
            }),
        })
    }

    pub fn path(&self) -> &str {
        &self.shared.display
    }

    fn instance(&self) -> Result<Arc<Inner>, StoreError> {
        self.shared
            .current
            .read()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))?
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is being reopened after an I/O error".into()))
    }

    pub(crate) fn tree(&self, id: TreeId) -> Result<sled::Tree, StoreError> {
        Ok(self.instance()?.trees[id as usize].clone())
    }

    /// Waits until every write made before the call is on disk (group commit).
    pub async fn durable(&self) -> Result<(), StoreError> {
        // Take the flusher's sender and let go of the instance before waiting, so that a reopen
        // is never held up by a request waiting for a flush.
        let wait = self.instance()?.durability.waiter()?;
        wait.await
    }

    /// Flushes and fsyncs directly, for start-up and command-line tools where there is no
    /// concurrent writer to batch with (and possibly no async runtime to wait in).
    pub fn flush_now(&self) -> Result<(), StoreError> {
        self.instance()?.db.flush().map_err(|e| self.failure(e))?;
        Ok(())
    }

    pub fn flush_stats(&self) -> &FlushStats {
        &self.shared.stats
    }

    pub(crate) fn journal_marks(&self) -> &JournalMarks {
        &self.shared.journal
    }

    /// Runs `f` as the only writer. Reads inside see every earlier commit; `Writer::commit`
    /// applies a write set atomically. After an I/O error the store is reopened first.
    pub fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut Writer) -> Result<T, E>) -> Result<T, E> {
        let mut state = self
            .shared
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable("a writer panicked; restart the service".into()))?;
        if self.shared.failed.load(Ordering::Acquire) {
            self.reopen(&mut state)?;
        }
        let mut writer = Writer::new(self, &mut state);
        f(&mut writer)
    }

    /// Replaces a failed sled instance by a fresh one on the same directory: sled recovers
    /// what is on disk, and the writer's counters are read again from it. Called with the
    /// writer lock held. If the disk still refuses, the store stays failed (every request is
    /// 503) and the next writer tries again.
    fn reopen(&self, state: &mut writer::WriterState) -> Result<(), StoreError> {
        let shared = &self.shared;
        let old = shared
            .current
            .write()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))?
            .take();
        drop(old);
        // A request may still hold the old instance for a moment (a read in progress), and
        // sled's directory lock is released only when the last handle goes.
        let mut attempt = 0;
        let inner = loop {
            match open_instance(
                &shared.path,
                &shared.display,
                shared.cache_capacity_bytes,
                &shared.failed,
                &shared.journal,
                &shared.stats,
            ) {
                Ok(inner) => break inner,
                Err(StoreError::Locked { .. }) if attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not be reopened; will retry on the next write");
                    return Err(e);
                }
            }
        };
        let reloaded = writer::WriterState::load(&inner.trees[TreeId::Journal as usize])?;
        shared.journal.committed.store(reloaded.last_seq(), Ordering::Release);
        shared.journal.durable.store(reloaded.last_seq(), Ordering::Release);
        *state = reloaded;
        shared
            .rejections_logged
            .store(inner.trees[TreeId::Rejections as usize].len(), Ordering::Release);
        *shared
            .current
            .write()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))? =
            Some(Arc::new(inner));
        shared.failed.store(false, Ordering::Release);
        tracing::warn!(path = %shared.display, "the store was reopened after an I/O error");
        Ok(())
    }

    /// Marks the store failed on an I/O error, so the next writer reopens it.
    fn failure(&self, e: sled::Error) -> StoreError {
        if matches!(
            e,
            sled::Error::Io(_) | sled::Error::ReportableBug(_) | sled::Error::Corruption { .. }
        ) {
            self.shared.failed.store(true, Ordering::Release);
        }
        StoreError::from(e)
    }

    pub(crate) fn commit(&self, set: WriteSet) -> Result<(), StoreError> {
        if set.is_empty() {
            return Ok(());
        }
        // A sled transaction builds an overlay for, and commits, every tree it spans: span only
        // the trees this write set touches (a posting touches 6–8 of the 18).
        let mut touched: Vec<TreeId> = Vec::with_capacity(8);
        for (tree, _, _) in &set.ops {
            if !touched.contains(tree) {
                touched.push(*tree);
            }
        }
        let instance = self.instance()?;
        let trees: Vec<sled::Tree> = touched.iter().map(|t| instance.trees[*t as usize].clone()).collect();
        let slot = |tree: TreeId| touched.iter().position(|t| *t == tree).unwrap_or(0);
        trees
            .as_slice()
            .transaction(|views| {
                for (tree, key, value) in &set.ops {
                    let view = &views[slot(*tree)];
                    match value {
                        Some(v) => {
                            view.insert(key.as_slice(), v.as_slice())?;
                        }
                        None => {
                            view.remove(key.as_slice())?;
                        }
                    }
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(inner) => inner,
                sled::transaction::TransactionError::Storage(storage) => self.failure(storage),
            })?;
        Ok(())
    }

    pub(crate) fn get_json<T: DeserializeOwned>(&self, tree: TreeId, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree(tree)?.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some),
        }
    }

    pub(crate) fn next_id(&self) -> Result<u64, StoreError> {
        self.instance()?.db.generate_id().map_err(|e| self.failure(e))
    }

    pub fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        self.get_json(TreeId::Records, &record_key(kind, id))
    }

    /// Journal entries with `seq > after`, in order, at most `limit`, and only durable ones:
    /// an entry committed but not yet flushed could still vanish, and a poller must never see
    /// an entry change or disappear.
    pub fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let durable = self.shared.journal.durable.load(Ordering::Acquire);
        if after >= durable {
            return Ok(Vec::new());
        }
        let start = after.saturating_add(1).to_be_bytes();
        self.tree(TreeId::Journal)?
            .range(start..=durable.to_be_bytes())
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                decode(&v)
            })
            .collect()
    }

    /// Appends a request-log entry for a rejected request. It rides on the next flush: the
    /// answer does not wait for it, since nothing about money depends on it.
    ///
    /// Anyone can be refused, credentials or not, so the log is bounded: it keeps the newest
    /// `REJECTIONS_KEPT` entries and drops the oldest, and refused requests cannot fill the disk.
    pub fn log_rejection(&self, entry: &serde_json::Value) -> Result<(), StoreError> {
        let id = self.next_id()?;
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tree = self.tree(TreeId::Rejections)?;
        tree.insert(id.to_be_bytes(), bytes).map_err(|e| self.failure(e))?;
        if self.shared.rejections_logged.fetch_add(1, Ordering::AcqRel) >= REJECTIONS_KEPT {
            tree.pop_min().map_err(|e| self.failure(e))?;
            self.shared.rejections_logged.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The newest rejections first.
    pub fn recent_rejections(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        self.tree(TreeId::Rejections)?
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                decode(&v)
            })
            .collect()
    }

    /// A write+flush+read round trip, for readiness checks.
    pub fn probe(&self) -> Result<(), StoreError> {
        // Taking the writer reopens a store that failed, so readiness comes back by itself
        // once the disk does.
        self.write(|_| Ok::<(), StoreError>(()))?;
        let value = chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_be_bytes();
        let meta = self.tree(TreeId::Meta)?;
        meta.insert(b"ready_probe", &value).map_err(|e| self.failure(e))?;
        meta.flush().map_err(|e| self.failure(e))?;
        match meta.get(b"ready_probe")? {
            Some(v) if v.as_ref() == value => Ok(()),
            _ => Err(StoreError::Unavailable(
                "the readiness probe read back something else".into(),
            )),
        }
    }
}

/// Opens sled on `path` with every tree, brings the minute counts up to date and starts the
/// flusher.
fn open_instance(
    path: &Path,
    display: &str,
    cache_capacity_bytes: u64,
    failed: &Arc<AtomicBool>,
    journal: &Arc<JournalMarks>,
    stats: &Arc<FlushStats>,
) -> Result<Inner, StoreError> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|e| classify_open_error(e, display))?;
    let trees = TREE_NAMES
        .iter()
        .map(|name| db.open_tree(name))
        .collect::<Result<Vec<_>, _>>()?;
    minute_counts::ensure(
        &trees[TreeId::IdxReceived as usize],
        &trees[TreeId::CountByMinute as usize],
        &trees[TreeId::Meta as usize],
    )?;
    let durability = Durability::start(db.clone(), failed.clone(), journal.clone(), stats.clone())
        .map_err(|e| StoreError::Unavailable(format!("cannot start the flusher: {e}")))?;
    Ok(Inner { trees, db, durability })
}

fn classify_open_error(e: sled::Error, path: &str) -> StoreError {
    if let sled::Error::Io(io) = &e {
        let text = io.to_string();
        if io.kind() == std::io::ErrorKind::WouldBlock || text.contains("lock") {
            return StoreError::Locked { path: path.to_string() };
        }
    }
    StoreError::Unavailable(format!("cannot open the store at {path}: {e}"))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn record_key(kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(kind.tag());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Time-index key: an order-preserving encoding of the receive time, then the record key.
pub(crate) fn received_key(at: chrono::DateTime<chrono::Utc>, kind: RecordKind, id: &str) -> Vec<u8> {
    let nanos = at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let mut key = Vec::with_capacity(9 + id.len());
    key.extend_from_slice(&order_preserving_i64(nanos));
    key.extend_from_slice(&record_key(kind, id));
    key
}

/// Flips the sign bit so that big-endian byte order equals numeric order.
pub(crate) fn order_preserving_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Per-account journal index key: `account_number 0x00 seq`.
pub(crate) fn account_journal_key(account_number: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(account_number.len() + 9);
    key.extend_from_slice(account_number.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Index key `value 0x00 customer_reference`.
pub(crate) fn index_key(value: &str, customer_reference: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 1 + customer_reference.len());
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(customer_reference.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_log_keeps_only_the_newest_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("s"), 8 << 20).expect("store");
        let total = REJECTIONS_KEPT + 50;
        for i in 0..total {
            store.log_rejection(&serde_json::json!({ "n": i })).expect("logged");
        }
        let kept = store.recent_rejections(usize::MAX).expect("read");
        assert_eq!(kept.len(), REJECTIONS_KEPT);
        assert_eq!(kept[0]["n"], total - 1, "newest first");
        assert_eq!(kept[REJECTIONS_KEPT - 1]["n"], 50, "the 50 oldest were dropped");
        drop(store);
        // The count survives a reopen: the bound still holds.
        let store = Store::open(&dir.path().join("s"), 8 << 20).expect("reopened");
        store.log_rejection(&serde_json::json!({ "n": total })).expect("logged");
        assert_eq!(
            store.recent_rejections(usize::MAX).expect("read").len(),
            REJECTIONS_KEPT
        );
    }
}
