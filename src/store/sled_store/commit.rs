//! The commit path: a commit log entry first, then its derived writes (see `log`); bulk writes
//! in one sled transaction; and, on open, the log's tail applied again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sled::Transactional;

use super::{log, search_index, writer, SledStore, TreeId, WriteSet};
use crate::store::StoreError;

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

/// The `meta` key holding the last commit whose derived writes are known to be on disk.
pub(crate) const LOG_APPLIED: &[u8] = b"log_applied";

impl SledStore {
    /// Commits a write set through the commit log, without a sled transaction (see `log`):
    /// the log entry first, then every derived op as a plain insert. Returns the commit seq.
    /// Called with the writer lock held (`state` is the writer's).
    pub(crate) fn commit_logged(&self, state: &mut writer::WriterState, mut set: WriteSet) -> Result<u64, StoreError> {
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
        let mut column_changes = Vec::new();
        let facet_changes = search_index::derive(&instance.trees, &mut set, commit, &mut column_changes)?;
        if facet_changes.is_some() {
            header.flags |= log::SEARCH_INDEXED;
        }
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
        if let Some(changes) = facet_changes {
            // Only after the index writes, so a search never counts a record it cannot read.
            // Should this fail, the reopen counts the commit again from the log.
            instance.facet_counts.add(commit, changes).inspect_err(|_| {
                self.shared.failed.store(true, Ordering::Release);
            })?;
        }
        // Likewise after the record's writes: a search that finds it there can read it.
        instance.text_column.record(column_changes).inspect_err(|_| {
            self.shared.failed.store(true, Ordering::Release);
        })?;
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
}

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
pub(super) fn replay_log(trees: &[sled::Tree], db: &sled::Db) -> Result<u64, StoreError> {
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
