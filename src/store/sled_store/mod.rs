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
//! - `idx_account`, `idx_amount`, `idx_journal_record`: the search's indexes, written with the
//!   records they describe (see `search_index`); `count_by_facet`: the search's counts, written
//!   by the flusher through `meta.search_index_through` (see `facet_counts`)
//!
//! The trees marked "in the commit log only" exist as names but stay empty.

mod accounts;
mod app_meta;
mod backend;
mod bytes;
mod codec;
mod commit;
mod disk_sync;
mod dump;
mod durability;
mod empayre;
mod facet_counts;
mod journal;
mod keys;
mod log;
pub(crate) mod minute_counts;
mod open;
mod request_log;
mod search;
mod search_index;
mod text_column;
mod trees;
mod write_set;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;

pub(crate) use commit::{LogMarks, LOG_APPLIED};
pub(crate) use journal::JournalMarks;
pub(crate) use keys::{decode, index_key, order_preserving_i64, received_key, received_key_at, record_key};
use open::open_instance;
pub(crate) use trees::TreeId;
pub(crate) use write_set::WriteSet;
use writer::Writer;

use crate::ledger::{Record, RecordKind};
use crate::store::{CommitStats, Keys, StoreError};
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
    /// Set by `close`: nothing reads, writes or reopens the store after it.
    closed: AtomicBool,
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
    /// The facet count changes not yet in `count_by_facet` (shared with the flusher too).
    facet_counts: Arc<facet_counts::FacetCounts>,
    /// Every record's id and confirmation number in receive order, for a `like` without a
    /// literal start (built on open by a thread of its own, kept up to date by the commits).
    text_column: Arc<text_column::TextColumn>,
    durability: Durability,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The builder holds trees of this instance: it must let go before sled's lock can.
        self.text_column.stop();
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
                closed: AtomicBool::new(false),
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
        let current = self
            .shared
            .current
            .read()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))?
            .clone();
        current.ok_or_else(|| {
            StoreError::Unavailable(if self.shared.closed.load(Ordering::Acquire) {
                "the store is closed".into()
            } else {
                "the store is being reopened after an I/O error".into()
            })
        })
    }

    /// Closes the store for a clean stop, once nothing writes any more: the flusher makes every
    /// write so far durable (its last fsync), the minute counts it has not stored yet are
    /// stored, sled is flushed and synced once more, and the instance is dropped, which ends the
    /// flusher and lets go of the directory. Every later call answers `Unavailable`; closing
    /// again does nothing.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.durable().await?;
        let _writer = self
            .shared
            .writer
            .lock()
            .map_err(|_| StoreError::Unavailable("a writer panicked; restart the service".into()))?;
        self.shared.closed.store(true, Ordering::Release);
        let taken = self
            .shared
            .current
            .write()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))?
            .take();
        let Some(inner) = taken else {
            return Ok(());
        };
        inner.tally.persist_now(
            &inner.trees[TreeId::CountByMinute as usize],
            &inner.trees[TreeId::Meta as usize],
        )?;
        inner.facet_counts.persist_now(
            &inner.trees[TreeId::CountByFacet as usize],
            &inner.trees[TreeId::Meta as usize],
        )?;
        inner.disk.flush()?;
        // A reader may still hold the instance for a moment; the last one to let go drops it.
        drop(inner);
        Ok(())
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
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".into()).into());
        }
        if self.shared.failed.load(Ordering::Acquire) {
            self.reopen(&mut state)?;
        }
        let mut writer = Writer::new(self, &mut state);
        f(&mut writer)
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
    use crate::store::REJECTIONS_KEPT;

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
            .write(|w| w.apply(&change, Channel::Orbipay, chrono::Utc::now(), None).map(|_| ()))
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

    /// A clean close: what was written is there after a reopen, the minute counts are stored
    /// (nothing left to recount from the log), the directory is let go of while a clone of the
    /// handle still exists, and the closed store refuses work instead of reopening itself.
    #[tokio::test]
    async fn close_makes_everything_durable_and_lets_go_of_the_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let store = SledStore::open(&path, 8 << 20).expect("store");
        let kept_clone = store.clone();
        import(&store, account("USD"));
        post(&store, "p1", "10.00");
        let pending = store
            .minute_tally(|tally, _| Ok(tally.pending_minutes()))
            .expect("tally");
        assert!(pending > 0, "the posting's minute is counted in memory only");
        store.close().await.expect("closed");
        let refused = store.write(|_| Ok::<(), StoreError>(()));
        assert!(matches!(refused, Err(StoreError::Unavailable(m)) if m.contains("closed")));
        assert!(kept_clone.record(RecordKind::Payment, "p1").is_err());
        store.shared.failed.store(true, Ordering::Release);
        assert!(
            store.write(|_| Ok::<(), StoreError>(())).is_err(),
            "no reopen after close"
        );
        store.close().await.expect("closing again does nothing");

        let reopened = reopened(&path);
        assert!(reopened.record(RecordKind::Payment, "p1").expect("read").is_some());
        let pending = reopened
            .minute_tally(|tally, _| Ok(tally.pending_minutes()))
            .expect("tally");
        assert_eq!(pending, 0, "the close stored the minute counts");
        drop(kept_clone);
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
                    .write(|w| w.apply(&change, Channel::Orbipay, chrono::Utc::now(), None).map(|_| ()))
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
