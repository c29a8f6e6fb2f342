//! The journal as the read side sees it: the change feed in seq order and an account's
//! entries newest first. Journal entries live in the commit log (see `log`); only durable ones
//! are shown.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{codec, log, SledStore, TreeId};
use crate::ledger::JournalEntry;
use crate::store::StoreError;

/// The journal's last committed and last durable seq. The change feed shows entries up to the
/// durable one only: an entry a poller has read must never change or vanish.
#[derive(Debug, Default)]
pub(crate) struct JournalMarks {
    pub committed: AtomicU64,
    pub durable: AtomicU64,
}

impl SledStore {
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

    /// An account's journal entries, newest first, at most `limit`: a walk down the chain
    /// that starts at the account and links each entry to the account's one before.
    pub(crate) fn account_journal(&self, account_number: &str, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let Some(account) = self.account(account_number)? else {
            return Ok(Vec::new());
        };
        let log_tree = self.tree(TreeId::Log)?;
        // Like the feed, only entries that are on disk.
        let durable = self.journal_marks().durable.load(std::sync::atomic::Ordering::Acquire);
        let mut next = account.last_journal_commit;
        let mut out = Vec::new();
        while let Some(commit) = next.filter(|_| out.len() < limit) {
            let Some(entry) = log_tree.get(log::key(commit))? else {
                return Err(StoreError::Corrupt(format!(
                    "journal entry of account {account_number} is missing"
                )));
            };
            let link = log::value_in(&entry, TreeId::JournalChain)?
                .ok_or_else(|| StoreError::Corrupt(format!("journal entry of account {account_number} has no link")))?;
            next = match link.len() {
                0 => None,
                _ => Some(log::commit_of_key(link)?),
            };
            let journal = journal_entry_in(&entry)?;
            if journal.seq <= durable {
                out.push(journal);
            }
        }
        Ok(out)
    }
}

impl SledStore {
    /// The journal entries record (`kind`, `id`) made, oldest first, durable ones only: found
    /// through `idx_journal_record`, which names the commit holding each.
    pub(crate) fn record_journal(
        &self,
        kind: crate::ledger::RecordKind,
        id: &str,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let log_tree = self.tree(TreeId::Log)?;
        let durable = self.journal_marks().durable.load(Ordering::Acquire);
        let prefix = super::search_index::journal_record_prefix(kind, id);
        let mut out = Vec::new();
        for item in self.tree(TreeId::IdxJournalRecord)?.scan_prefix(&prefix) {
            let (key, _) = item?;
            let commit = key
                .get(prefix.len()..)
                .ok_or_else(|| StoreError::Corrupt("journal reference without a commit".into()))
                .and_then(log::commit_of_key)?;
            let Some(entry) = log_tree.get(log::key(commit))? else {
                return Err(StoreError::Corrupt(format!("journal entry of record {id} is missing")));
            };
            let journal = journal_entry_in(&entry)?;
            if journal.seq <= durable {
                out.push(journal);
            }
        }
        Ok(out)
    }
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
