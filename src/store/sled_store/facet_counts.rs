//! The facet counts of `count_by_facet` (see `search_index`), kept like the minute counts: a
//! commit adds what it changed to a tally in memory, and the flusher moves the tally into the
//! tree at most once a second, in one transaction with the stamp `search_index_through` (the
//! last commit the tree counts). A posting writes no count and no stamp: reading and writing
//! three counts and the stamp under the writer lock cost about a third of the posting path.
//! Readers add the tally to what the tree holds (`each`), so a count is exact at once.
//!
//! After a crash the tree lacks the commits after the stamp. The commit log cannot give their
//! changes back (a commit that changes a record's status holds the new record, not the old
//! one), so on open every minute those commits touched is counted again from the records it
//! holds (through the time index): its seconds and the minute are replaced, and each hour
//! holding one is summed again from its minutes. Every step is computed from what is on disk
//! and replaces what was there, so a repair cut by another crash is simply done again from the
//! same stamp on the next open.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sled::Transactional;

use super::search_index::{count_slot_prefix, Facet, Projection, LEVEL_NANOS, THROUGH};
use super::{codec, log, order_preserving_i64, StoreError, TreeId};

/// How often the flusher moves the tally into the tree (as for the minute counts).
const PERSIST_EVERY: Duration = Duration::from_secs(1);

/// What the commits made since the stamp changed in the counts: count key → added (a status
/// change takes one from the record's old keys and adds one to its new ones).
pub(crate) type Changes = BTreeMap<Vec<u8>, i64>;

pub(crate) struct FacetCounts {
    state: Mutex<State>,
}

struct State {
    pending: Changes,
    /// The last commit whose changes the tree plus `pending` hold.
    through: u64,
    /// The stamp in the tree.
    stored_through: u64,
    persisted_at: Instant,
}

fn decode(value: &[u8]) -> u64 {
    value.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

impl FacetCounts {
    /// Counts again the minutes touched by commits after the stamp (see the module comment)
    /// and starts with an empty tally. Called after the log's tail is applied and after
    /// `search_index::ensure`, which leaves a stamp.
    pub(super) fn load(trees: &[sled::Tree]) -> Result<Self, StoreError> {
        let meta = &trees[TreeId::Meta as usize];
        let stamp = match meta.get(THROUGH)? {
            Some(v) => log::commit_of_key(&v)?,
            None => 0,
        };
        let mut minutes = BTreeSet::new();
        let mut through = stamp;
        for item in trees[TreeId::Log as usize].range(log::key(stamp.saturating_add(1))..) {
            let (key, entry) = item?;
            for (tree, k, value) in log::ops(&entry)? {
                match (tree, value) {
                    (TreeId::Records, Some(bytes)) => {
                        minutes.insert(minute_of(Facet::of(&codec::decode_record(bytes)?).nanos));
                    }
                    (TreeId::IdxReceived, _) => {
                        minutes.insert(minute_of(nanos_of_index_key(k)?));
                    }
                    _ => {}
                }
            }
            through = log::commit_of_key(&key)?;
        }
        if !minutes.is_empty() {
            let started = Instant::now();
            recount(trees, &minutes)?;
            tracing::info!(
                minutes = minutes.len(),
                from_commit = stamp + 1,
                through,
                seconds = started.elapsed().as_secs_f64(),
                "counted the search's facet counts again for the commits after their stamp"
            );
        }
        if through > stamp {
            meta.insert(THROUGH, &through.to_be_bytes())?;
        }
        Ok(Self {
            state: Mutex::new(State {
                pending: Changes::new(),
                through,
                stored_through: through,
                persisted_at: Instant::now(),
            }),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Unavailable("the facet counts lock is poisoned; restart the service".into()))
    }

    /// Adds what `commit` changed, once its writes are made.
    pub(super) fn add(&self, commit: u64, changes: Changes) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        for (key, delta) in changes {
            let slot = state.pending.entry(key).or_insert(0);
            *slot += delta;
        }
        state.through = state.through.max(commit);
        Ok(())
    }

    /// Calls `f` with every count key in `range` and its count (the tree's plus the tally's),
    /// in key order, skipping zeros. The tally stays locked meanwhile, so a persist cannot
    /// move counts from one to the other halfway.
    pub(crate) fn each(
        &self,
        counts: &sled::Tree,
        range: Range<Vec<u8>>,
        mut f: impl FnMut(&[u8], u64) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let state = self.lock()?;
        let mut pending = state.pending.range(range.clone()).peekable();
        fn emit(
            key: &[u8],
            n: i64,
            f: &mut impl FnMut(&[u8], u64) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            if n > 0 {
                f(key, n as u64)
            } else {
                Ok(())
            }
        }
        for item in counts.range(range) {
            let (key, value) = item?;
            while let Some((k, d)) = pending.next_if(|(k, _)| k.as_slice() < &*key) {
                emit(k, *d, &mut f)?;
            }
            let mut n = decode(&value) as i64;
            if let Some((_, d)) = pending.next_if(|(k, _)| k.as_slice() == &*key) {
                n += d;
            }
            emit(&key, n, &mut f)?;
        }
        for (k, d) in pending {
            emit(k, *d, &mut f)?;
        }
        Ok(())
    }

    /// Moves the tally into the tree with its stamp, at most once per `PERSIST_EVERY`.
    /// Called by the flusher after a flush.
    pub(super) fn persist_if_due(&self, counts: &sled::Tree, meta: &sled::Tree) -> Result<(), StoreError> {
        self.persist(counts, meta, PERSIST_EVERY)
    }

    /// Moves the tally into the tree now (a clean close).
    pub(super) fn persist_now(&self, counts: &sled::Tree, meta: &sled::Tree) -> Result<(), StoreError> {
        self.persist(counts, meta, Duration::ZERO)
    }

    fn persist(&self, counts: &sled::Tree, meta: &sled::Tree, every: Duration) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if (state.pending.is_empty() && state.through == state.stored_through) || state.persisted_at.elapsed() < every {
            return Ok(());
        }
        let through = state.through.to_be_bytes();
        (counts, meta).transaction(|(counts, meta)| {
            for (key, delta) in &state.pending {
                if *delta == 0 {
                    continue;
                }
                let now = counts.get(key)?.map_or(0, |v| decode(&v)) as i64 + delta;
                if now > 0 {
                    counts.insert(key.as_slice(), &(now as u64).to_be_bytes())?;
                } else {
                    counts.remove(key.as_slice())?;
                }
            }
            meta.insert(THROUGH, &through)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
        })?; // StoreError's From<TransactionError>: the abort's error, or the storage error
        state.pending.clear();
        state.stored_through = state.through;
        state.persisted_at = Instant::now();
        Ok(())
    }
}

fn minute_of(nanos: i64) -> i64 {
    nanos.div_euclid(LEVEL_NANOS[1])
}

fn nanos_of_index_key(key: &[u8]) -> Result<i64, StoreError> {
    let head: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("time index key shorter than 8 bytes".into()))?;
    Ok((u64::from_be_bytes(head) ^ (1 << 63)) as i64)
}

/// Replaces the counts of these minutes (and of their seconds) with counts of the records
/// received in them, then each hour holding one with the sum of its minutes. A record's
/// receive time never changes, so its old and new counts lie in the same minute.
fn recount(trees: &[sled::Tree], minutes: &BTreeSet<i64>) -> Result<(), StoreError> {
    let index = &trees[TreeId::IdxReceived as usize];
    let records = &trees[TreeId::Records as usize];
    let counts = &trees[TreeId::CountByFacet as usize];
    let seconds_per_minute = LEVEL_NANOS[1] / LEVEL_NANOS[0];
    let minutes_per_hour = LEVEL_NANOS[2] / LEVEL_NANOS[1];
    for &minute in minutes {
        let mut fresh: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let (from, until) = (minute * LEVEL_NANOS[1], (minute + 1) * LEVEL_NANOS[1]);
        for item in index.range(order_preserving_i64(from)..order_preserving_i64(until)) {
            let (key, _) = item?;
            let record_key = key
                .get(8..)
                .ok_or_else(|| StoreError::Corrupt("time index key without a record".into()))?;
            let bytes = records
                .get(record_key)?
                .ok_or_else(|| StoreError::Corrupt("the time index names a record that is not stored".into()))?;
            // Second, minute and hour of each projection: the hours are summed below.
            for (i, key) in Facet::of(&codec::decode_record(&bytes)?)
                .count_keys()
                .into_iter()
                .enumerate()
            {
                if i % 3 != 2 {
                    *fresh.entry(key).or_default() += 1;
                }
            }
        }
        let mut ranges = Vec::new();
        for p in Projection::ALL {
            let (second, in_minute) = (p.level_byte(0), p.level_byte(1));
            ranges.push(
                count_slot_prefix(second, minute * seconds_per_minute)
                    ..count_slot_prefix(second, (minute + 1) * seconds_per_minute),
            );
            ranges.push(count_slot_prefix(in_minute, minute)..count_slot_prefix(in_minute, minute + 1));
        }
        replace(counts, &ranges, fresh)?;
    }
    let hours: BTreeSet<i64> = minutes.iter().map(|m| m.div_euclid(minutes_per_hour)).collect();
    for hour in hours {
        let mut sums: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut ranges = Vec::new();
        for p in Projection::ALL {
            let (in_minute, in_hour) = (p.level_byte(1), p.level_byte(2));
            let its_minutes = count_slot_prefix(in_minute, hour * minutes_per_hour)
                ..count_slot_prefix(in_minute, (hour + 1) * minutes_per_hour);
            for item in counts.range(its_minutes) {
                let (key, value) = item?;
                // After level and slot: the facet, the same in the hour's key.
                let mut hour_key = count_slot_prefix(in_hour, hour);
                hour_key.extend_from_slice(key.get(9..).unwrap_or_default());
                *sums.entry(hour_key).or_default() += decode(&value);
            }
            ranges.push(count_slot_prefix(in_hour, hour)..count_slot_prefix(in_hour, hour + 1));
        }
        replace(counts, &ranges, sums)?;
    }
    Ok(())
}

/// Removes every count in `ranges` and writes `fresh` instead, in one batch.
fn replace(counts: &sled::Tree, ranges: &[Range<Vec<u8>>], fresh: BTreeMap<Vec<u8>, u64>) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for range in ranges {
        for item in counts.range(range.clone()) {
            let (key, _) = item?;
            if !fresh.contains_key(&*key) {
                batch.remove(key);
            }
        }
    }
    for (key, n) in fresh {
        batch.insert(key, &n.to_be_bytes());
    }
    counts.apply_batch(batch)?;
    Ok(())
}

#[cfg(test)]
impl super::SledStore {
    /// Moves the facet count changes into the tree now, as the flusher does once a second.
    pub(crate) fn persist_facet_counts_now(&self) {
        let instance = self.instance().expect("instance");
        instance
            .facet_counts
            .persist_now(
                &instance.trees[TreeId::CountByFacet as usize],
                &instance.trees[TreeId::Meta as usize],
            )
            .expect("persisted");
    }
}
