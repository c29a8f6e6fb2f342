//! The search's derived trees, written in the same commit (the same commit log entry) as the
//! record or journal entry they describe, so they are exactly as durable and as atomic:
//!
//! - `idx_account`        u16 BE length, account_number, time (order-preserving i64 nanos),
//!   kind tag, id → (): a search for one account (or a few) walks only that account's records,
//!   and a search ordered by account number walks the accounts in order. A record without an
//!   account is kept under the empty account (length 0; no account number is empty), which
//!   sorts first as a missing value does.
//! - `idx_amount`         amount bucket (u16 BE), time, kind tag, id → the amount
//!   (`Decimal::serialize`, 16 bytes): the records of one amount bucket in a window, for
//!   counting the bucket a threshold cuts through, and ordering a bucket by amount without
//!   reading its records.
//! - `idx_confirmation`   u16 BE length, confirmation_number, time, kind tag, id → (): the
//!   records of a confirmation number (or of those with a literal start), as `idx_account`.
//! - `count_by_facet`     level (0 second, 1 minute, 2 hour), slot (order-preserving i64), kind tag,
//!   amount bucket (u16 BE), currency, payment method, client key (each u16 BE length and the
//!   text, 0xFFFF for none), status → u64 BE: how many records received in that second, minute
//!   or hour are of that kind, amount bucket, currency, payment method, client key and status. A
//!   search filtering on those (and channel) counts whole hours, minutes and seconds from these
//!   (see `search`) instead of reading every record of its window. They are small sets (a
//!   biller's currencies, the EBPP payment methods, its EBPP client keys) — but their product
//!   with the amount buckets is not: on a varied day a minute holds nearly one full count per
//!   record. So the counts are also kept with fewer dimensions (`Projection`: level byte =
//!   projection * 3 + level), and a search counts from the smallest that covers its filters.
//!   NOT written by the commit: the commit adds its changes to a tally in memory, which
//!   the flusher stores once a second (see `facet_counts`).
//! - `idx_journal_record` kind tag, u16 BE length, record id, commit seq → (): the journal
//!   entries a record made (the entry itself lives in that commit's log entry).
//!
//! Stores written before these trees existed (or written by such a binary since) get them
//! rebuilt once on open: see `ensure`.
//!
//! Adding a facet or count: a new index tree is an op `derive` adds to the commit (as
//! `idx_account`), rebuilt in `ensure` (bump `MARKER` so older stores get it); a new count
//! dimension goes into the count key (`count_key` / `split_count_key`, `Facet`), so that
//! `derive`'s changes, `ensure`'s rebuild and `facet_counts`' repair after a crash all follow.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;

use super::facet_counts::Changes;
use super::{codec, log, order_preserving_i64, record_key, text_column, StoreError, TreeId, WriteSet};
use crate::ledger::{Record, RecordKind};
pub(crate) use crate::store::amount_bucket::{amount_bucket, is_bucket_floor, is_single_amount_bucket};

/// `meta` key present once the derived trees describe every record and journal entry.
pub(crate) const MARKER: &[u8] = b"search_index_v4";
/// The markers of older binaries: v1 kept records without an account out of `idx_account`, v2
/// gave round amounts from 100 on (100, 1200, 25000) no amount bucket of their own, v3 kept
/// only the full facet counts (no projections). This binary
/// removes them when it builds the trees, so such a binary rebuilds them (its own way) when it
/// opens the store, and its marker then tells this one to rebuild them again.
const OLDER_MARKERS: [&[u8]; 3] = [b"search_index_v1", b"search_index_v2", b"search_index_v3"];
/// `meta` key: the last commit whose changes `count_by_facet` holds (stored with the counts,
/// see `facet_counts`). A commit after it that wrote a record without the log flag
/// `SEARCH_INDEXED` was made by a binary that does not keep the trees.
pub(super) const THROUGH: &[u8] = b"search_index_through";

/// The slot sizes of the facet counts, finest first; a level is its index here. Hours keep a
/// day's count to 24 slots, seconds keep what is walked at a window's edges to a second's worth.
pub(crate) const LEVEL_NANOS: [i64; 3] = [1_000_000_000, 60_000_000_000, 3_600_000_000_000];

/// The facet counts are kept four times, three of them with fewer dimensions, so that a search
/// counts from the smallest set that still tells its filters apart: a slot's full
/// counts have one key per kind, amount bucket, currency, payment method, client key and status
/// met in it — on a varied day nearly one per record at the minute level — while a day's counts
/// by kind and status alone are a few hundred keys. The first byte of a count key is
/// `projection * 3 + level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Projection {
    /// Every dimension.
    Full = 0,
    /// Kind, amount bucket and status (currency, payment method and client key left out).
    KindBucketStatus = 1,
    /// Kind and status only.
    KindStatus = 2,
    /// Kind, currency, payment method, client key and status (the amount bucket left out).
    KindTextsStatus = 3,
}

impl Projection {
    pub(crate) const ALL: [Projection; 4] = [
        Projection::Full,
        Projection::KindBucketStatus,
        Projection::KindStatus,
        Projection::KindTextsStatus,
    ];

    /// The first byte of this projection's count keys at `level` (an index of `LEVEL_NANOS`).
    pub(crate) fn level_byte(self, level: usize) -> u8 {
        (self as usize * LEVEL_NANOS.len() + level) as u8
    }

    /// The facet as this projection counts it: the dimensions it leaves out are blank.
    fn of<'f>(self, facet: &CountKey<'f>) -> CountKey<'f> {
        match self {
            Projection::Full => CountKey { ..*facet },
            Projection::KindBucketStatus => CountKey {
                currency: "",
                payment_method: None,
                client_key: None,
                ..*facet
            },
            Projection::KindStatus => CountKey {
                bucket: 0,
                currency: "",
                payment_method: None,
                client_key: None,
                ..*facet
            },
            Projection::KindTextsStatus => CountKey { bucket: 0, ..*facet },
        }
    }
}

/// What the derived trees know of one record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Facet {
    pub kind: RecordKind,
    pub id: String,
    pub nanos: i64,
    pub status: String,
    pub bucket: u16,
    pub amount: Decimal,
    pub account: Option<String>,
    pub currency: String,
    pub payment_method: Option<String>,
    pub client_key: Option<String>,
    pub confirmation: Option<String>,
}

impl Facet {
    pub(crate) fn of(record: &Record) -> Self {
        Self {
            kind: record.kind,
            id: record.id.clone(),
            nanos: record.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            status: record.status.as_str().to_string(),
            bucket: amount_bucket(record.amount),
            amount: record.amount,
            account: record.account_number.as_ref().map(|a| a.as_str().to_string()),
            currency: record.currency.to_string(),
            payment_method: record.payment_method.clone(),
            client_key: record.client_key.clone(),
            confirmation: record.confirmation_number.clone(),
        }
    }

    /// Its count keys: second, minute and hour of each projection (`Projection::ALL`), in
    /// that order.
    pub(super) fn count_keys(&self) -> [Vec<u8>; 12] {
        let facet = CountKey {
            slot: 0,
            kind: Some(self.kind),
            bucket: self.bucket,
            currency: &self.currency,
            payment_method: self.payment_method.as_deref(),
            client_key: self.client_key.as_deref(),
            status: &self.status,
        };
        std::array::from_fn(|i| {
            let (projection, level) = (Projection::ALL[i / 3], i % 3);
            count_key(
                projection.level_byte(level),
                self.nanos.div_euclid(LEVEL_NANOS[level]),
                &projection.of(&facet),
            )
        })
    }

    fn account_key(&self) -> Vec<u8> {
        account_key(self.account.as_deref().unwrap_or(""), self.nanos, self.kind, &self.id)
    }

    fn confirmation_key(&self) -> Option<Vec<u8>> {
        self.confirmation
            .as_deref()
            .map(|c| account_key(c, self.nanos, self.kind, &self.id))
    }

    fn amount_key(&self) -> Vec<u8> {
        let mut key = amount_prefix(self.bucket, self.nanos);
        key.extend_from_slice(&record_key(self.kind, &self.id));
        key
    }
}

/// `level ++ slot ++ kind tag ++ bucket ++ currency ++ payment method ++ client key ++ status`
/// (the facet's own slot is not used: `slot` is the level's).
pub(crate) fn count_key(level: u8, slot: i64, facet: &CountKey<'_>) -> Vec<u8> {
    let mut key = Vec::with_capacity(24 + facet.status.len());
    key.push(level);
    key.extend_from_slice(&order_preserving_i64(slot));
    key.push(facet.kind.map_or(0, RecordKind::tag));
    key.extend_from_slice(&facet.bucket.to_be_bytes());
    for text in [Some(facet.currency), facet.payment_method, facet.client_key] {
        match text {
            Some(t) => {
                // The texts are short (a currency code, one of the EBPP payment methods, a
                // configured client key); one past the length field's range would be cut.
                let mut end = t.len().min(usize::from(NO_TEXT - 1));
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                key.extend_from_slice(&(end as u16).to_be_bytes());
                key.extend_from_slice(&t.as_bytes()[..end]);
            }
            None => key.extend_from_slice(&NO_TEXT.to_be_bytes()),
        }
    }
    key.extend_from_slice(facet.status.as_bytes());
    key
}

/// The length that stands for a missing payment method or client key in a count key.
const NO_TEXT: u16 = u16::MAX;

/// The parts of a `count_by_facet` key after the level.
#[derive(Clone, Copy)]
pub(crate) struct CountKey<'k> {
    pub slot: i64,
    pub kind: Option<RecordKind>,
    pub bucket: u16,
    pub currency: &'k str,
    pub payment_method: Option<&'k str>,
    pub client_key: Option<&'k str>,
    pub status: &'k str,
}

pub(crate) fn split_count_key(key: &[u8]) -> Result<CountKey<'_>, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("facet count key {what}"));
    if key.len() < 12 {
        return Err(corrupt("shorter than 12 bytes"));
    }
    let mut slot = [0u8; 8];
    slot.copy_from_slice(&key[1..9]);
    let mut at = 12;
    let mut text = || -> Result<Option<&str>, StoreError> {
        let len = key
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| corrupt("cut in a text"))?;
        at += 2;
        if len == NO_TEXT {
            return Ok(None);
        }
        let bytes = key
            .get(at..at + usize::from(len))
            .ok_or_else(|| corrupt("cut in a text"))?;
        at += usize::from(len);
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| corrupt("with a text that is not UTF-8"))
    };
    let currency = text()?.unwrap_or("");
    let payment_method = text()?;
    let client_key = text()?;
    Ok(CountKey {
        slot: (u64::from_be_bytes(slot) ^ (1 << 63)) as i64,
        kind: RecordKind::from_tag(key[9]),
        bucket: u16::from_be_bytes([key[10], key[11]]),
        currency,
        payment_method,
        client_key,
        status: std::str::from_utf8(&key[at..]).map_err(|_| corrupt("with a status that is not UTF-8"))?,
    })
}

/// The first key of a level's slot: `level ++ slot`.
pub(crate) fn count_slot_prefix(level: u8, slot: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(level);
    key.extend_from_slice(&order_preserving_i64(slot));
    key
}

/// `len ++ account ++ time`: where an account's records from `nanos` on start.
pub(crate) fn account_prefix(account: &str, nanos: i64) -> Vec<u8> {
    let len = u16::try_from(account.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + account.len() + 8);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(account.as_bytes());
    key.extend_from_slice(&order_preserving_i64(nanos));
    key
}

fn account_key(account: &str, nanos: i64, kind: RecordKind, id: &str) -> Vec<u8> {
    let mut key = account_prefix(account, nanos);
    key.extend_from_slice(&record_key(kind, id));
    key
}

/// `bucket ++ time`: where a bucket's records from `nanos` on start.
pub(crate) fn amount_prefix(bucket: u16, nanos: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(10);
    key.extend_from_slice(&bucket.to_be_bytes());
    key.extend_from_slice(&order_preserving_i64(nanos));
    key
}

/// `kind tag ++ len ++ id`: the prefix of a record's journal references.
pub(crate) fn journal_record_prefix(kind: RecordKind, id: &str) -> Vec<u8> {
    let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(3 + id.len() + 8);
    key.push(kind.tag());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

fn journal_record_key(kind: RecordKind, id: &str, commit: u64) -> Vec<u8> {
    let mut key = journal_record_prefix(kind, id);
    key.extend_from_slice(&commit.to_be_bytes());
    key
}

/// The amount an `idx_amount` entry's value holds (None for an entry written without it).
pub(crate) fn stored_amount(value: &[u8]) -> Option<Decimal> {
    value.try_into().ok().map(Decimal::deserialize)
}

/// The record key (kind tag ++ id) at the end of an `idx_account` or `idx_amount` key, after
/// `head` bytes.
pub(crate) fn record_key_after(key: &[u8], head: usize) -> Result<&[u8], StoreError> {
    key.get(head..)
        .filter(|rest| !rest.is_empty())
        .ok_or_else(|| StoreError::Corrupt("search index key without a record".into()))
}

/// Adds to `set` the derived writes of its record puts and journal entries (index keys and
/// journal references), and returns what the commit changes in the facet counts: None when it
/// puts no record. The counts themselves are not written here (see `facet_counts`); nor is the
/// in-memory id and confirmation number column, whose changes go to `column`.
pub(super) fn derive(
    trees: &[sled::Tree],
    set: &mut WriteSet,
    commit: u64,
    column: &mut Vec<text_column::Change>,
) -> Result<Option<Changes>, StoreError> {
    let facets = std::mem::take(&mut set.records);
    let mut journal = Vec::new();
    for (tree, _, value) in &set.ops {
        if let (TreeId::Journal, Some(bytes)) = (tree, value) {
            let entry = codec::decode_journal(bytes)?;
            journal.push(journal_record_key(entry.kind, &entry.record_id, commit));
        }
    }
    for key in journal {
        set.put(TreeId::IdxJournalRecord, key, Vec::new());
    }
    if facets.is_empty() {
        return Ok(None);
    }
    let records = &trees[TreeId::Records as usize];
    // The facet each record had before this commit's put, or after an earlier put of it in
    // this same commit.
    let mut latest: HashMap<Vec<u8>, Facet> = HashMap::new();
    let mut changes = Changes::new();
    for new in facets {
        let rk = record_key(new.kind, &new.id);
        let old = match latest.get(&rk) {
            Some(f) => Some(f.clone()),
            None => match records.get(&rk)? {
                Some(bytes) => Some(Facet::of(&codec::decode_record(&bytes)?)),
                None => None,
            },
        };
        if old.as_ref() == Some(&new) {
            continue;
        }
        if old.as_ref().map(|o| (o.nanos, &o.confirmation)) != Some((new.nanos, &new.confirmation)) {
            if let Some(old) = old.as_ref().filter(|o| o.nanos != new.nanos) {
                column.push(text_column::Change::Remove {
                    nanos: old.nanos,
                    key: rk.clone(),
                });
            }
            column.push(text_column::Change::Put {
                nanos: new.nanos,
                key: rk.clone(),
                confirmation: new.confirmation.clone(),
            });
        }
        if let Some(old) = &old {
            for key in old.count_keys() {
                *changes.entry(key).or_insert(0) -= 1;
            }
            if old.account_key() != new.account_key() {
                set.remove(TreeId::IdxAccount, old.account_key());
            }
            if old.amount_key() != new.amount_key() {
                set.remove(TreeId::IdxAmount, old.amount_key());
            }
            if old.confirmation_key() != new.confirmation_key() {
                if let Some(key) = old.confirmation_key() {
                    set.remove(TreeId::IdxConfirmation, key);
                }
            }
        }
        for key in new.count_keys() {
            *changes.entry(key).or_insert(0) += 1;
        }
        if old.as_ref().map(Facet::account_key) != Some(new.account_key()) {
            set.put(TreeId::IdxAccount, new.account_key(), Vec::new());
        }
        if old.as_ref().map(Facet::amount_key) != Some(new.amount_key()) {
            set.put(TreeId::IdxAmount, new.amount_key(), new.amount.serialize().to_vec());
        }
        if old.as_ref().map(Facet::confirmation_key) != Some(new.confirmation_key()) {
            if let Some(key) = new.confirmation_key() {
                set.put(TreeId::IdxConfirmation, key, Vec::new());
            }
        }
        latest.insert(rk, new);
    }
    changes.retain(|_, delta| *delta != 0);
    Ok(Some(changes))
}

/// Builds the derived trees once for a store that does not have them, or whose records were
/// last written by a binary that does not keep them. Safe to cut at any point: the marker is
/// removed first and set last, so a cut rebuild starts over on the next open. Called after the
/// commit log's tail is applied, before anything writes.
pub(super) fn ensure(trees: &[sled::Tree]) -> Result<(), StoreError> {
    let meta = &trees[TreeId::Meta as usize];
    let mut older = false;
    for marker in OLDER_MARKERS {
        older |= meta.contains_key(marker)?;
    }
    if meta.contains_key(MARKER)? && !older && !unindexed_records_since_stamp(trees)? {
        return Ok(());
    }
    let started = std::time::Instant::now();
    meta.remove(MARKER)?;
    for marker in OLDER_MARKERS {
        meta.remove(marker)?;
    }
    for tree in [
        TreeId::IdxAccount,
        TreeId::IdxAmount,
        TreeId::CountByFacet,
        TreeId::IdxJournalRecord,
        TreeId::IdxConfirmation,
    ] {
        trees[tree as usize].clear()?;
    }
    // The records in time order (every record is in the time index), so that the counts of
    // one hour (its hour, minutes and seconds: no count spans two hours) are written and
    // dropped before the next hour's: the memory held is one hour's counts, not the store's.
    let records_tree = &trees[TreeId::Records as usize];
    let count_tree = &trees[TreeId::CountByFacet as usize];
    let write_counts = |counts: &mut BTreeMap<Vec<u8>, u64>| -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (key, n) in std::mem::take(counts) {
            batch.insert(key, &n.to_be_bytes());
        }
        count_tree.apply_batch(batch)?;
        Ok(())
    };
    let mut counts: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut hour = None;
    let mut accounts = sled::Batch::default();
    let mut amounts = sled::Batch::default();
    let mut confirmations = sled::Batch::default();
    let mut pending = 0usize;
    let mut records = 0u64;
    for item in trees[TreeId::IdxReceived as usize].iter() {
        let (key, _) = item?;
        let record_key = key
            .get(8..)
            .ok_or_else(|| StoreError::Corrupt("time index key without a record".into()))?;
        let bytes = records_tree
            .get(record_key)?
            .ok_or_else(|| StoreError::Corrupt("the time index names a record that is not stored".into()))?;
        let facet = Facet::of(&codec::decode_record(&bytes)?);
        let this_hour = facet.nanos.div_euclid(LEVEL_NANOS[2]);
        if hour.is_some_and(|h| h != this_hour) {
            write_counts(&mut counts)?;
        }
        hour = Some(this_hour);
        for key in facet.count_keys() {
            *counts.entry(key).or_insert(0) += 1;
        }
        accounts.insert(facet.account_key(), Vec::new());
        amounts.insert(facet.amount_key(), facet.amount.serialize().to_vec());
        if let Some(key) = facet.confirmation_key() {
            confirmations.insert(key, Vec::new());
        }
        pending += 1;
        records += 1;
        if pending >= 10_000 {
            trees[TreeId::IdxAccount as usize].apply_batch(std::mem::take(&mut accounts))?;
            trees[TreeId::IdxAmount as usize].apply_batch(std::mem::take(&mut amounts))?;
            trees[TreeId::IdxConfirmation as usize].apply_batch(std::mem::take(&mut confirmations))?;
            pending = 0;
        }
    }
    trees[TreeId::IdxAccount as usize].apply_batch(accounts)?;
    trees[TreeId::IdxAmount as usize].apply_batch(amounts)?;
    trees[TreeId::IdxConfirmation as usize].apply_batch(confirmations)?;
    write_counts(&mut counts)?;
    let mut references = sled::Batch::default();
    let mut last_commit = 0;
    for item in trees[TreeId::Log as usize].iter() {
        let (key, entry) = item?;
        let commit = log::commit_of_key(&key)?;
        last_commit = commit;
        if log::header(&entry)?.flags & log::HAS_JOURNAL == 0 {
            continue;
        }
        if let Some(bytes) = log::value_in(&entry, TreeId::Journal)? {
            let journal = codec::decode_journal(bytes)?;
            references.insert(journal_record_key(journal.kind, &journal.record_id, commit), Vec::new());
        }
    }
    trees[TreeId::IdxJournalRecord as usize].apply_batch(references)?;
    meta.insert(THROUGH, &last_commit.to_be_bytes())?;
    meta.insert(MARKER, &[1u8])?;
    tracing::info!(
        records,
        seconds = started.elapsed().as_secs_f64(),
        "built the search indexes and facet counts"
    );
    Ok(())
}

/// Whether a commit after the stamp wrote a record without the flag `SEARCH_INDEXED`: then
/// a binary that does not keep the derived trees wrote to the store since this one did. (A
/// binary that wrote the counts with each commit also wrote the stamp with it.)
fn unindexed_records_since_stamp(trees: &[sled::Tree]) -> Result<bool, StoreError> {
    let Some(stamp) = trees[TreeId::Meta as usize].get(THROUGH)? else {
        return Ok(true);
    };
    let stamp = log::commit_of_key(&stamp)?;
    // Newest first: an older binary's commits are the newest ones.
    for item in trees[TreeId::Log as usize]
        .range(log::key(stamp.saturating_add(1))..)
        .rev()
    {
        let (_, entry) = item?;
        if log::header(&entry)?.flags & log::SEARCH_INDEXED != 0 {
            continue;
        }
        if log::ops(&entry)?
            .iter()
            .any(|(tree, _, value)| *tree == TreeId::Records && value.is_some())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store an older binary opened after this one (it rebuilds the trees its own way: v1
    /// without the records that have no account, v2 with 100.00 in the bucket above it, and
    /// sets its marker) is rebuilt on the next open.
    #[actix_rt::test]
    async fn an_older_binarys_marker_makes_the_next_open_rebuild() {
        use super::super::{received_key, SledStore};
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let mut store = SledStore::open(&path, 8 << 20).expect("store");
        let mut record = crate::ledger::test_support::payment("p1", "100.00", true);
        record.account_number = None;
        store
            .write(|w| {
                let mut set = WriteSet::default();
                set.put_record(&record);
                set.put(
                    TreeId::IdxReceived,
                    received_key(record.received_at, record.kind, &record.id),
                    Vec::new(),
                );
                w.commit(set)
            })
            .expect("write");
        let facet = Facet::of(&record);
        let entries = |store: &SledStore| {
            let accounts = store.tree(TreeId::IdxAccount).expect("tree");
            let amounts = store.tree(TreeId::IdxAmount).expect("tree");
            (
                accounts.iter().keys().collect::<Result<Vec<_>, _>>().expect("read"),
                amounts.iter().keys().collect::<Result<Vec<_>, _>>().expect("read"),
            )
        };
        let written = (vec![facet.account_key().into()], vec![facet.amount_key().into()]);
        assert_eq!(
            entries(&store),
            written,
            "kept under the empty account and 100.00's own bucket"
        );
        assert!(is_single_amount_bucket(facet.bucket));
        for marker in OLDER_MARKERS {
            // What the older binary leaves: its own trees (here: none) and its marker.
            store.tree(TreeId::IdxAccount).expect("tree").clear().expect("clear");
            store.tree(TreeId::IdxAmount).expect("tree").clear().expect("clear");
            let meta = store.tree(TreeId::Meta).expect("meta");
            meta.insert(marker, &[1u8]).expect("older marker");
            drop(meta);
            store.close().await.expect("close");
            drop(store);
            store = crate::store::sled_store::reopened(&path);
            assert_eq!(
                entries(&store),
                written,
                "rebuilt after {}",
                String::from_utf8_lossy(marker)
            );
            let meta = store.tree(TreeId::Meta).expect("meta");
            assert!(!meta.contains_key(marker).expect("read") && meta.contains_key(MARKER).expect("read"));
        }
    }

    #[test]
    fn count_keys_split_back() {
        for (payment_method, client_key) in [(Some("ach"), None), (None, Some("k")), (Some(""), Some("key-2"))] {
            let facet = CountKey {
                slot: 0,
                kind: Some(RecordKind::EmpayreRefund),
                bucket: 7,
                currency: "EUR",
                payment_method,
                client_key,
                status: "refunded",
            };
            let key = count_key(2, -3, &facet);
            let parts = split_count_key(&key).expect("split");
            assert_eq!(parts.slot, -3);
            assert_eq!(parts.kind, Some(RecordKind::EmpayreRefund));
            assert_eq!(parts.bucket, 7);
            assert_eq!(parts.currency, "EUR");
            assert_eq!((parts.payment_method, parts.client_key), (payment_method, client_key));
            assert_eq!(parts.status, "refunded");
            assert!(split_count_key(&key[..key.len() - 9]).is_err());
        }
    }
}
