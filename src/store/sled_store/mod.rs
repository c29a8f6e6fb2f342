//! The store owns sled: tree names, key encodings, transactions and the durability barrier.
//! Nothing outside this module touches sled types.
//!
//! Trees (values are JSON unless said otherwise):
//! - `accounts`        account_number → Account (compact binary, see `codec`)
//! - `profiles`        customer_reference → Profile (compact binary, see `codec`)
//! - `idx_email`       lower(email) 0x00 customer_reference → ()
//! - `idx_ssn`         sha256(ssn) hex 0x00 customer_reference → ()
//! - `idx_lookup_ref`  lookup_reference 0x00 customer_reference → ()
//! - `records`         kind tag, id → Record (compact binary, see `codec`)
//! - `idx_received`    received_at (i64 nanos, order-preserving) kind tag, id → () — time index
//! - `journal`         seq (u64 BE) → JournalEntry (compact binary)     (in the commit log only)
//! - `journal_chain`   account_number → commit seq of the account's journal entry before this
//!   one, empty for its first (in the commit log only; `Account::last_journal_commit` is the
//!   head of the chain)
//! - `accepted`        id (u64 BE) → the stored copy of an accepted posting (in the commit log only)
//! - `rejections`      id (u64 BE) → request-log entry of a rejected request
//! - `events`          commit seq (u64 BE) → a verified Empayre body with what it changed, compact
//!   binary (in the commit log only: an event's seq is the seq of its commit)
//! - `event_ids`       source 0x00 eventID (order-preserving i64) → event seq — dedup index
//! - `quarantine`      event seq (u64 BE) → () — the events that were quarantined
//! - `entities`        "invoice" 0x00 source 0x00 invoice id → invoice snapshot
//! - `unmatched`       Empayre payment record id → unmatched payment
//! - `count_by_minute` minute (order-preserving i64) → u64 BE: how many `idx_received` keys
//!   fall in that minute, so an unfiltered window is counted without walking it (written by
//!   the flusher, through `meta.minute_counts_through`; see `minute_counts`)
//! - `meta`            counters; `log_applied`: the commit log is applied through here;
//!   `minute_counts_through`: the last commit `count_by_minute` counts
//! - `log`             commit seq (u64 BE) → every write of one commit (see `log`)
//!
//! The trees marked "in the commit log only" exist as names but stay empty.

mod accounts;
mod backend;
mod codec;
mod disk_sync;
mod durability;
mod empayre;
mod log;
pub(crate) mod minute_counts;
mod search;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use sled::Transactional;

use writer::Writer;

use crate::ledger::{JournalEntry, Record, RecordKind};
use crate::store::{CommitStats, Keys, StoreError, REJECTIONS_KEPT};
use disk_sync::DiskSync;
use durability::Durability;

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
    JournalChain,
    Accepted,
    Rejections,
    Events,
    EventIds,
    Quarantine,
    Entities,
    Unmatched,
    CountByMinute,
    Meta,
    Log,
}

impl TreeId {
    const ALL: [TreeId; 19] = [
        TreeId::Accounts,
        TreeId::Profiles,
        TreeId::IdxEmail,
        TreeId::IdxSsn,
        TreeId::IdxLookupRef,
        TreeId::Records,
        TreeId::IdxReceived,
        TreeId::Journal,
        TreeId::JournalChain,
        TreeId::Accepted,
        TreeId::Rejections,
        TreeId::Events,
        TreeId::EventIds,
        TreeId::Quarantine,
        TreeId::Entities,
        TreeId::Unmatched,
        TreeId::CountByMinute,
        TreeId::Meta,
        TreeId::Log,
    ];

    pub(crate) fn from_tag(tag: u8) -> Option<TreeId> {
        Self::ALL.get(usize::from(tag)).copied()
    }

    /// Trees whose values live only in the commit log entry that wrote them (see `log`).
    pub(crate) fn is_log_resident(self) -> bool {
        matches!(
            self,
            TreeId::Journal | TreeId::JournalChain | TreeId::Events | TreeId::Accepted
        )
    }
}

const TREE_NAMES: [&str; 19] = [
    "accounts",
    "profiles",
    "idx_email",
    "idx_ssn",
    "idx_lookup_ref",
    "records",
    "idx_received",
    "journal",
    "journal_chain",
    "accepted",
    "rejections",
    "events",
    "event_ids",
    "quarantine",
    "entities",
    "unmatched",
    "count_by_minute",
    "meta",
    "log",
];

/// The `meta` key of an application value (`Backend::meta`).
fn app_meta_key(key: &str) -> Vec<u8> {
    [b"app/".as_slice(), key.as_bytes()].concat()
}

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

    pub fn put_account(&mut self, account: &crate::domain::account::Account) {
        self.put(
            TreeId::Accounts,
            account.account_number.as_bytes(),
            codec::encode_account(account),
        );
    }

    pub fn put_profile(&mut self, profile: &crate::domain::account::Profile) {
        self.put(
            TreeId::Profiles,
            profile.customer_reference.as_bytes(),
            codec::encode_profile(profile),
        );
    }

    pub fn put_record(&mut self, record: &Record) {
        self.put(
            TreeId::Records,
            record_key(record.kind, &record.id),
            codec::encode_record(record),
        );
    }

    pub fn remove(&mut self, tree: TreeId, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The embedded backend: one sled database, one process at a time.
#[derive(Clone)]
pub struct SledStore {
    shared: Arc<Shared>,
    /// `/health/ready` fails below this much free disk under the store (`store.min_free_bytes`).
    min_free_bytes: u64,
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
    log: Arc<LogMarks>,
    stats: Arc<CommitStats>,
    /// How many entries the request log holds (counted once at open, then kept up to date).
    rejections_logged: AtomicUsize,
}

/// One open sled instance. Field order matters on drop: the flusher holds the last `Db`
/// handle, and joining it releases sled's lock on the directory.
struct Inner {
    trees: Vec<sled::Tree>,
    db: sled::Db,
    /// Makes a `db.flush()` durable (shared with the flusher): see `disk_sync`.
    disk: Arc<DiskSync>,
    /// The minute counts not yet in `count_by_minute` (shared with the flusher, which moves them).
    tally: Arc<minute_counts::Tally>,
    durability: Durability,
}

/// The journal's last committed and last durable seq. The change feed shows entries up to the
/// durable one only: an entry a poller has read must never change or vanish.
#[derive(Debug, Default)]
pub(crate) struct JournalMarks {
    pub committed: AtomicU64,
    pub durable: AtomicU64,
}

/// How far the commit log is applied: `applied` is the last commit whose derived writes are
/// made (in memory), `watermark` the last value written to `meta.log_applied`, which only
/// grows. The flusher moves it after each fsync; a bulk transaction moves it too.
#[derive(Debug, Default)]
pub(crate) struct LogMarks {
    pub applied: AtomicU64,
    pub watermark: Mutex<u64>,
}

impl LogMarks {
    pub(crate) fn lock_watermark(&self) -> Result<std::sync::MutexGuard<'_, u64>, StoreError> {
        self.watermark
            .lock()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))
    }
}

impl SledStore {
    pub fn open(path: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        let failed = Arc::new(AtomicBool::new(false));
        let journal = Arc::new(JournalMarks::default());
        let log = Arc::new(LogMarks::default());
        let stats = Arc::new(CommitStats::default());
        let display = path.display().to_string();
        let inner = open_instance(path, &display, cache_capacity_bytes, &failed, &journal, &log, &stats)?;
        let rejections_logged = inner.trees[TreeId::Rejections as usize].len();
        let state = writer::WriterState::load(&inner.trees[TreeId::Log as usize])?;
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
                log,
                stats,
                rejections_logged: AtomicUsize::new(rejections_logged),
            }),
            min_free_bytes: 0,
        })
    }

    /// Sets the free disk below which `/health/ready` fails.
    pub fn with_min_free_bytes(mut self, min_free_bytes: u64) -> Self {
        self.min_free_bytes = min_free_bytes;
        self
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
    pub(crate) async fn durable(&self) -> Result<(), StoreError> {
        // Take the flusher's sender and let go of the instance before waiting, so that a reopen
        // is never held up by a request waiting for a flush.
        let wait = self.instance()?.durability.waiter()?;
        wait.await
    }

    /// Flushes and syncs directly, for start-up and command-line tools where there is no
    /// concurrent writer to batch with (and possibly no async runtime to wait in).
    pub(crate) fn flush_now(&self) -> Result<(), StoreError> {
        self.instance()?.disk.flush().inspect_err(|_| {
            self.shared.failed.store(true, Ordering::Release);
        })
    }

    pub(crate) fn commit_stats(&self) -> &CommitStats {
        &self.shared.stats
    }

    pub(crate) fn journal_marks(&self) -> &JournalMarks {
        &self.shared.journal
    }

    /// Runs `f` as the only writer. Reads inside see every earlier commit; `Writer::commit`
    /// applies a write set atomically. After an I/O error the store is reopened first.
    pub(crate) fn write<T, E: From<StoreError>>(&self, f: impl FnOnce(&mut Writer) -> Result<T, E>) -> Result<T, E> {
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
                &shared.log,
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
        let reloaded = writer::WriterState::load(&inner.trees[TreeId::Log as usize])?;
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

    /// Commits a write set through the commit log, without a sled transaction (see `log`):
    /// the log entry first, then every derived op as a plain insert. Returns the commit seq.
    /// Called with the writer lock held (`state` is the writer's).
    pub(crate) fn commit_logged(&self, state: &mut writer::WriterState, set: WriteSet) -> Result<u64, StoreError> {
        let commit = state.next_commit();
        let mut header = log::Header {
            flags: 0,
            jseq: 0,
            jseq_through: state.last_seq(),
        };
        for (tree, key, _) in &set.ops {
            match tree {
                TreeId::Journal => {
                    let jseq = log::commit_of_key(key)?;
                    header.flags |= log::HAS_JOURNAL;
                    header.jseq = jseq;
                    header.jseq_through = jseq;
                }
                TreeId::Events => {
                    // An event's seq is its commit's seq, which is how readers find it.
                    let staged_as = log::commit_of_key(key)?;
                    if staged_as != commit {
                        return Err(StoreError::Corrupt(format!(
                            "an event staged as seq {staged_as} was committed as {commit}"
                        )));
                    }
                    header.flags |= log::HAS_EVENT;
                }
                _ => {}
            }
        }
        let instance = self.instance()?;
        let entry = log::encode(header, &set.ops);
        instance.trees[TreeId::Log as usize]
            .insert(log::key(commit), entry)
            .map_err(|e| self.failure(e))?;
        state.committed(commit);
        // From here the commit has happened; if a derived write fails, the store is reopened,
        // which applies the entry again from the log.
        let applied = set
            .ops
            .iter()
            .try_for_each(|(tree, key, value)| apply_op(&instance.trees, *tree, key, value.as_deref()).map(|_| ()));
        if let Err(e) = applied {
            self.shared.failed.store(true, Ordering::Release);
            return Err(StoreError::from(e));
        }
        self.shared.log.applied.store(commit, Ordering::Release);
        Ok(commit)
    }

    /// Commits a write set in one sled transaction: for bulk writes (imports), which would make
    /// huge log entries and are rare enough for a transaction's cost. The transaction also
    /// moves `log_applied` up to the last logged commit, whose derived writes are all made by
    /// now: replaying an older commit after this one must never undo what this one wrote.
    pub(crate) fn commit_transaction(&self, mut set: WriteSet) -> Result<(), StoreError> {
        if set.is_empty() {
            return Ok(());
        }
        let mut watermark = self.shared.log.lock_watermark()?;
        let applied = self.shared.log.applied.load(Ordering::Acquire).max(*watermark);
        set.put(TreeId::Meta, LOG_APPLIED.to_vec(), applied.to_be_bytes().to_vec());
        // A sled transaction builds an overlay for, and commits, every tree it spans: span only
        // the trees this write set touches.
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
        *watermark = applied;
        Ok(())
    }

    /// Runs `f` with the minute tally and the `count_by_minute` tree of the current instance.
    pub(crate) fn minute_tally<T>(
        &self,
        f: impl FnOnce(&minute_counts::Tally, &sled::Tree) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let instance = self.instance()?;
        f(&instance.tally, &instance.trees[TreeId::CountByMinute as usize])
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

    /// Reads, without decoding, the keys a writer section is about to read, before it takes
    /// the writer lock: a page sled has to fetch from disk then delays this request only, not
    /// every writer queued behind it (the profile showed disk reads inside the writer section).
    /// Errors are left to the writer section, which reads the same keys again.
    pub(crate) fn warm(&self, keys: &Keys) {
        let Ok(instance) = self.instance() else {
            return;
        };
        let read = |tree: TreeId, key: &[u8]| {
            let _ = instance.trees[tree as usize].get(key);
        };
        for (kind, id) in &keys.records {
            read(TreeId::Records, &record_key(*kind, id));
        }
        for number in &keys.accounts {
            read(TreeId::Accounts, number.as_bytes());
        }
        for reference in &keys.profiles {
            read(TreeId::Profiles, reference.as_bytes());
        }
        for (source, id) in &keys.events {
            read(TreeId::EventIds, &empayre::event_id_key(source, *id));
        }
        for (source, id) in &keys.invoices {
            read(TreeId::Entities, &empayre::invoice_key(source, id));
        }
    }

    pub(crate) fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        self.record_at(&record_key(kind, id))
    }

    /// The record stored under a `records` key.
    pub(crate) fn record_at(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        match self.tree(TreeId::Records)?.get(key)? {
            None => Ok(None),
            Some(bytes) => codec::decode_record(&bytes).map(Some),
        }
    }

    /// Journal entries with `seq > after`, in order, at most `limit`, and only durable ones:
    /// an entry committed but not yet flushed could still vanish, and a poller must never see
    /// an entry change or disappear. Journal entries live in the commit log.
    pub(crate) fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let durable = self.shared.journal.durable.load(Ordering::Acquire);
        if after >= durable || limit == 0 {
            return Ok(Vec::new());
        }
        let log_tree = self.tree(TreeId::Log)?;
        let start = commit_of_journal_seq(&log_tree, after + 1)?;
        let mut out = Vec::new();
        for item in log_tree.range(log::key(start)..) {
            let (_, entry) = item?;
            let header = log::header(&entry)?;
            if header.flags & log::HAS_JOURNAL == 0 {
                continue;
            }
            if header.jseq > durable || out.len() >= limit {
                break;
            }
            out.push(journal_entry_in(&entry)?);
        }
        Ok(out)
    }

    /// Appends a request-log entry for a rejected request. It rides on the next flush: the
    /// answer does not wait for it, since nothing about money depends on it.
    ///
    /// Anyone can be refused, credentials or not, so the log is bounded: it keeps the newest
    /// `REJECTIONS_KEPT` entries and drops the oldest, and refused requests cannot fill the disk.
    pub(crate) fn log_rejection(&self, entry: &serde_json::Value) -> Result<(), StoreError> {
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

    /// A value the application keeps under `key` (see `Backend::meta`). Kept in the `meta` tree
    /// under a prefix of its own, apart from the store's internal marks.
    pub(crate) fn app_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self
            .tree(TreeId::Meta)?
            .get(app_meta_key(key))
            .map_err(|e| self.failure(e))?;
        Ok(found.map(|v| v.to_vec()))
    }

    /// Writes it outside the commit log (it is no ledger data); the caller awaits `durable`.
    pub(crate) fn put_app_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree(TreeId::Meta)?
            .insert(app_meta_key(key), value)
            .map_err(|e| self.failure(e))?;
        Ok(())
    }

    /// The newest rejections first.
    pub(crate) fn recent_rejections(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
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
    pub(crate) fn probe(&self) -> Result<(), StoreError> {
        // Taking the writer reopens a store that failed, so readiness comes back by itself
        // once the disk does.
        self.write(|_| Ok::<(), StoreError>(()))?;
        let value = chrono::Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_be_bytes();
        let meta = self.tree(TreeId::Meta)?;
        meta.insert(b"ready_probe", &value).map_err(|e| self.failure(e))?;
        self.flush_now()?;
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
    log: &Arc<LogMarks>,
    stats: &Arc<CommitStats>,
) -> Result<Inner, StoreError> {
    let created = DiskSync::missing_dirs(path);
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
    let applied = replay_log(&trees, &db)?;
    log.applied.store(applied, Ordering::Release);
    *log.lock_watermark()? = applied;
    minute_counts::ensure(&trees)?;
    let tally = Arc::new(minute_counts::Tally::load(&trees)?);
    // After the replay's flush: this syncs what opening and replaying wrote.
    let disk = Arc::new(
        DiskSync::open(db.clone(), path, &created)
            .map_err(|e| StoreError::Unavailable(format!("cannot sync the store at {display}: {e}")))?,
    );
    let durability = Durability::start(
        disk.clone(),
        trees[TreeId::Meta as usize].clone(),
        (tally.clone(), trees[TreeId::CountByMinute as usize].clone()),
        failed.clone(),
        journal.clone(),
        log.clone(),
        stats.clone(),
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot start the flusher: {e}")))?;
    Ok(Inner {
        trees,
        db,
        disk,
        tally,
        durability,
    })
}

/// The commit that holds journal entry `jseq` (which must exist). Commit seqs are dense from 1
/// and each entry's header carries the last journal seq at that commit, so a binary search over
/// the log finds it in about 20 reads for a million commits.
fn commit_of_journal_seq(log_tree: &sled::Tree, jseq: u64) -> Result<u64, StoreError> {
    let header_of = |commit: u64| -> Result<log::Header, StoreError> {
        match log_tree.get(log::key(commit))? {
            Some(entry) => log::header(&entry),
            None => Err(StoreError::Corrupt(format!("commit log entry {commit} is missing"))),
        }
    };
    let last = match log_tree.last()? {
        Some((k, _)) => log::commit_of_key(&k)?,
        None => 0,
    };
    let (mut lo, mut hi) = (1u64, last + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if header_of(mid)?.jseq_through >= jseq {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if lo > last || header_of(lo)?.jseq != jseq {
        return Err(StoreError::Corrupt(format!(
            "journal entry {jseq} is not in the commit log"
        )));
    }
    Ok(lo)
}

/// The journal entry a commit log entry holds.
fn journal_entry_in(entry: &[u8]) -> Result<JournalEntry, StoreError> {
    match log::value_in(entry, TreeId::Journal)? {
        Some(bytes) => codec::decode_journal(bytes),
        None => Err(StoreError::Corrupt("a commit log entry lost its journal entry".into())),
    }
}

/// The `meta` key holding the last commit whose derived writes are known to be on disk.
const LOG_APPLIED: &[u8] = b"log_applied";

/// Applies one op of a commit to its tree; ops of log-resident trees stay in the log.
fn apply_op(trees: &[sled::Tree], tree: TreeId, key: &[u8], value: Option<&[u8]>) -> sled::Result<()> {
    if tree.is_log_resident() {
        return Ok(());
    }
    let target = &trees[tree as usize];
    match value {
        Some(v) => target.insert(key, v).map(|_| ()),
        None => target.remove(key).map(|_| ()),
    }
}

/// Applies again every commit after `log_applied`: a crash may have cut one between its log
/// entry and its derived writes. Ops are absolute puts and removes in commit order, so
/// applying a commit twice is harmless. Returns the last commit applied.
fn replay_log(trees: &[sled::Tree], db: &sled::Db) -> Result<u64, StoreError> {
    let meta = &trees[TreeId::Meta as usize];
    let applied = match meta.get(LOG_APPLIED)? {
        Some(v) => log::commit_of_key(&v)?,
        None => 0,
    };
    let mut last = applied;
    for item in trees[TreeId::Log as usize].range(log::key(applied.saturating_add(1))..) {
        let (key, entry) = item?;
        for (tree, k, v) in log::ops(&entry)? {
            apply_op(trees, tree, k, v)?;
        }
        last = log::commit_of_key(&key)?;
    }
    if last > applied {
        meta.insert(LOG_APPLIED, &last.to_be_bytes())?;
        db.flush()?;
        tracing::info!(
            from = applied + 1,
            through = last,
            "applied the commit log's tail again after a restart"
        );
    }
    Ok(last)
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
    received_key_at(at.timestamp_nanos_opt().unwrap_or(i64::MAX), kind, id)
}

/// Time-index key of a receive time in nanoseconds since the epoch.
pub(crate) fn received_key_at(nanos: i64, kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(9 + id.len());
    key.extend_from_slice(&order_preserving_i64(nanos));
    key.extend_from_slice(&record_key(kind, id));
    key
}

/// Flips the sign bit so that big-endian byte order equals numeric order.
pub(crate) fn order_preserving_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Index key `value 0x00 customer_reference`.
pub(crate) fn index_key(value: &str, customer_reference: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 1 + customer_reference.len());
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key.extend_from_slice(customer_reference.as_bytes());
    key
}

/// Opens a store a test just dropped: sled's own threads may hold its directory a moment
/// longer, as the reopen after an I/O error knows too.
#[cfg(test)]
pub(crate) fn reopened(path: &Path) -> SledStore {
    for _ in 0..200 {
        match SledStore::open(path, 8 << 20) {
            Err(StoreError::Locked { .. }) => std::thread::sleep(std::time::Duration::from_millis(10)),
            other => return other.expect("reopened"),
        }
    }
    panic!("{} stayed locked after the store was dropped", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::AccountEntry;
    use crate::ledger::test_support::{account, payment};
    use crate::ledger::{Change, Channel};

    fn import(store: &SledStore, account: crate::domain::account::Account) {
        store
            .import_accounts(&[AccountEntry {
                account,
                profiles: vec![],
                reset_balance: false,
            }])
            .expect("imported");
    }

    fn post(store: &SledStore, id: &str, amount: &str) {
        let change = Change {
            created: true,
            payment_created: true,
            payment: payment(id, amount, true),
            refund: None,
            delta: -amount.parse::<rust_decimal::Decimal>().expect("amount"),
        };
        store
            .write(|w| w.apply(&change, Channel::Orbipay, chrono::Utc::now()).map(|_| ()))
            .expect("applied");
    }

    /// A crash between a commit's log entry and its derived writes: on open the log entry is
    /// applied again, so the record, the balance and the journal index are all there.
    #[test]
    fn a_commit_cut_after_its_log_entry_is_completed_on_open() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let store = SledStore::open(&path, 8 << 20).expect("store");
        import(&store, account("USD"));
        post(&store, "p1", "10.00");
        post(&store, "p2", "2.50");
        // Undo what the derived writes of both commits did, as if they never reached the disk
        // (the import's own state stays), and say nothing was applied.
        let records = store.tree(TreeId::Records).expect("tree");
        records.clear().expect("cleared");
        store
            .tree(TreeId::JournalChain)
            .expect("tree")
            .clear()
            .expect("cleared");
        let mut acc = store.account("A").expect("read").expect("account");
        acc.posted_delta = rust_decimal::Decimal::ZERO;
        store
            .tree(TreeId::Accounts)
            .expect("tree")
            .insert("A", serde_json::to_vec(&acc).expect("json"))
            .expect("reset");
        let meta = store.tree(TreeId::Meta).expect("tree");
        meta.insert(LOG_APPLIED, &0u64.to_be_bytes()).expect("watermark");
        store.flush_now().expect("flushed");
        // Every handle on the instance must go before sled can be opened again.
        drop((records, meta, store));

        let store = reopened(&path);
        assert!(store.record(RecordKind::Payment, "p1").expect("read").is_some());
        assert!(store.record(RecordKind::Payment, "p2").expect("read").is_some());
        let balance = store.account("A").expect("read").expect("account").current_balance();
        assert_eq!(balance.to_string(), "487.50");
        assert_eq!(store.account_journal("A", 10).expect("journal").len(), 2);
        let sums = store.journal_sums().expect("sums");
        assert_eq!(sums["A"].to_string(), "-12.50");
    }

    /// An import after a posting moves the replay point past the posting: applying the
    /// posting's commit again on open would otherwise put back the account as it was before
    /// the import (here: its old name).
    #[test]
    fn an_import_is_never_undone_by_replaying_an_older_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let store = SledStore::open(&path, 8 << 20).expect("store");
        import(&store, account("USD"));
        post(&store, "p1", "10.00");
        let mut renamed = account("USD");
        renamed.account_holder_name = Some("New Name".into());
        import(&store, renamed);
        store.flush_now().expect("flushed");
        drop(store);

        let store = reopened(&path);
        let acc = store.account("A").expect("read").expect("account");
        assert_eq!(acc.account_holder_name.as_deref(), Some("New Name"));
        assert_eq!(acc.current_balance().to_string(), "490.00", "the posting kept");
    }

    /// Journal entries live in the commit log; the feed finds an entry among commits that
    /// hold none (stored events, unmatched payments) by binary search.
    #[test]
    fn the_feed_finds_every_entry_between_commits_without_one() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(&dir.path().join("s"), 8 << 20).expect("store");
        import(&store, account("USD"));
        for i in 0..40 {
            post(&store, &format!("p{i}"), "1.00");
            if i % 3 == 0 {
                // A commit that moves no money.
                let mut p = payment(&format!("n{i}"), "1.00", true);
                p.account_number = None;
                let change = Change {
                    created: true,
                    payment_created: true,
                    payment: p,
                    refund: None,
                    delta: Default::default(),
                };
                store
                    .write(|w| w.apply(&change, Channel::Orbipay, chrono::Utc::now()).map(|_| ()))
                    .expect("applied");
            }
        }
        store.journal_marks().durable.store(40, Ordering::Release);
        for after in 0..40u64 {
            let page = store.journal_after(after, 7).expect("page");
            let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
            let want: Vec<u64> = (after + 1..=(after + 7).min(40)).collect();
            assert_eq!(seqs, want, "after {after}");
        }
        assert!(store.journal_after(40, 7).expect("page").is_empty());
    }

    #[test]
    fn the_request_log_keeps_only_the_newest_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(&dir.path().join("s"), 8 << 20).expect("store");
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
        let store = reopened(&dir.path().join("s"));
        store.log_rejection(&serde_json::json!({ "n": total })).expect("logged");
        assert_eq!(
            store.recent_rejections(usize::MAX).expect("read").len(),
            REJECTIONS_KEPT
        );
    }
}
