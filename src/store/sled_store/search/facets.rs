//! The search's facet plan: filters on channel, kind, status, amount, currency, payment method
//! and client key only, in time order. Counts are read through `FacetCounts::each` (the tree
//! plus what is not stored yet).
//!
//! The window is cut into whole hours, minutes and seconds (as few slots as it takes) and at
//! most a second at each end. Whole slots are counted from `count_by_facet`: each count there is
//! for one kind, status and amount bucket, and the filters decide each such count wholly
//! (`Yes`/`No`) — except an amount condition whose threshold falls inside a bucket (`Maybe`):
//! that bucket's records in the window are read through `idx_amount` and checked one by one.
//! The ends are walked and checked. So the count is exact and reads a few hundred counts for a
//! day, not the day's records.
//!
//! The page is then found slot by slot in the query's direction: a slot whose matches all lie
//! before the page is skipped by its count, a slot that holds part of the page is opened into
//! its finer slots, down to seconds, whose records are walked and checked.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

use super::super::facet_counts::FacetCounts;
use super::super::search_index::{
    amount_bucket, amount_prefix, count_slot_prefix, is_bucket_floor, is_single_amount_bucket, record_key_after,
    split_count_key, stored_amount, CountKey, Projection, LEVEL_NANOS,
};
use super::super::{order_preserving_i64, SledStore, TreeId};
use super::{text_holds, Matcher};
use crate::ledger::RecordKind;
use crate::store::query::{Condition, Direction, Operand, SearchField, SearchQuery, SortField};
use crate::store::StoreError;

/// What the filters say of every record a count counts (each count is of one kind, status, amount
/// bucket, currency, payment method and client key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    No,
    Maybe,
    Yes,
}

fn verdict_of(holds: bool) -> Verdict {
    if holds {
        Verdict::Yes
    } else {
        Verdict::No
    }
}

/// An amount condition against every amount of bucket `b`. Only two things about buckets are
/// used: they never decrease as amounts grow, and a threshold with a bucket of its own
/// (`is_bucket_floor`) is the only amount in it.
fn amount_verdict(c: &Condition, b: u16) -> Verdict {
    let side = |o: &Operand| match o {
        Operand::Amount(a) => Some((amount_bucket(*a), is_bucket_floor(*a))),
        Operand::Text(_) => None,
    };
    // Whether every amount of the bucket is above (`up`) or below the threshold, or equal
    // to it (`inclusive`).
    let compare = |o: &Operand, up: bool, inclusive: bool| match side(o) {
        None => Verdict::No,
        Some((t, _)) if b == t => match side(o) {
            Some((_, true)) => verdict_of(inclusive),
            _ => Verdict::Maybe,
        },
        Some((t, _)) => verdict_of((b > t) == up),
    };
    let equal = |o: &Operand| match side(o) {
        Some((t, true)) if t == b => Verdict::Yes,
        Some((t, false)) if t == b => Verdict::Maybe,
        _ => Verdict::No,
    };
    match c {
        Condition::Ge(o) => compare(o, true, true),
        Condition::Gt(o) => compare(o, true, false),
        Condition::Le(o) => compare(o, false, true),
        Condition::Lt(o) => compare(o, false, false),
        Condition::Between(lo, hi) => compare(lo, true, true).min(compare(hi, false, true)),
        Condition::Eq(o) => equal(o),
        Condition::In(list) => list.iter().map(equal).max().unwrap_or(Verdict::No),
        Condition::Like(_) => Verdict::No,
    }
}

/// What the counts say of one slot: matches counted for sure, and whether some of its records
/// must be read to know.
#[derive(Debug, Clone, Copy, Default)]
struct SlotCount {
    yes: u64,
    maybe: bool,
}

/// A part of the window: whole slots of a level (with their counts), or a stretch shorter
/// than a second at one of its ends (with its matches).
enum Piece {
    Slots {
        level: usize,
        counts: BTreeMap<i64, SlotCount>,
    },
    Ends {
        /// Matches, in time order.
        keys: Vec<sled::IVec>,
    },
}

/// Cuts `[a, b)` into whole slots of `level` and finer, in time order.
fn cut(a: i64, b: i64, level: usize, out: &mut Vec<(i64, i64, Option<usize>)>) {
    if a >= b {
        return;
    }
    let size = LEVEL_NANOS[level];
    let first = a.div_euclid(size) + i64::from(a.rem_euclid(size) != 0);
    let end = b.div_euclid(size);
    let finer = |a: i64, b: i64, out: &mut Vec<(i64, i64, Option<usize>)>| match level {
        0 if a < b => out.push((a, b, None)),
        0 => {}
        _ => cut(a, b, level - 1, out),
    };
    if first >= end {
        finer(a, b, out);
        return;
    }
    finer(a, first.saturating_mul(size), out);
    out.push((first, end, Some(level)));
    finer(end.saturating_mul(size), b, out);
}

pub(in crate::store::sled_store) struct FacetSearch<'a, 'q> {
    m: &'a Matcher<'q>,
    counts: sled::Tree,
    /// The count changes not yet in `counts`.
    tally: std::sync::Arc<FacetCounts>,
    index: sled::Tree,
    amounts: sled::Tree,
    descending: bool,
    /// The smallest set of counts that tells the query's filters (and amount order) apart.
    projection: Projection,
}

/// The smallest projection of the counts that holds every dimension the query filters on,
/// and the amount bucket when it is ordered by amount.
fn projection_for(q: &SearchQuery) -> Projection {
    let by_amount = q.order.first().is_some_and(|o| o.0 == SortField::Amount);
    let within = |fields: &[SearchField]| q.filters.iter().all(|f| fields.contains(&f.field));
    if !by_amount && within(&[SearchField::Channel, SearchField::Kind, SearchField::Status]) {
        Projection::KindStatus
    } else if within(&[
        SearchField::Channel,
        SearchField::Kind,
        SearchField::Status,
        SearchField::Amount,
    ]) {
        Projection::KindBucketStatus
    } else if !by_amount
        && within(&[
            SearchField::Channel,
            SearchField::Kind,
            SearchField::Status,
            SearchField::Currency,
            SearchField::PaymentMethod,
            SearchField::ClientKey,
        ])
    {
        Projection::KindTextsStatus
    } else {
        Projection::Full
    }
}

impl<'a, 'q> FacetSearch<'a, 'q> {
    pub(in crate::store::sled_store) fn new(store: &SledStore, m: &'a Matcher<'q>) -> Result<Self, StoreError> {
        Ok(Self {
            m,
            counts: store.tree(TreeId::CountByFacet)?,
            tally: store.instance()?.facet_counts.clone(),
            index: store.tree(TreeId::IdxReceived)?,
            amounts: store.tree(TreeId::IdxAmount)?,
            descending: m.query.order.first().is_some_and(|o| o.1 == Direction::Desc),
            projection: projection_for(m.query),
        })
    }

    /// The exact count and the page's time-index keys.
    pub(in crate::store::sled_store) fn run(&self) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let q = self.m.query;
        let mut parts = Vec::new();
        cut(q.from_nanos, q.until_nanos, LEVEL_NANOS.len() - 1, &mut parts);
        let mut pieces = Vec::with_capacity(parts.len());
        let mut total = 0u64;
        let mut maybe_buckets = BTreeSet::new();
        // The stretch the whole slots cover (the ends lie outside it).
        let mut whole: Option<(i64, i64)> = None;
        for (a, b, level) in parts {
            match level {
                None => {
                    let mut keys = Vec::new();
                    self.m.walk(&self.index, a, b, false, usize::MAX, &mut keys)?;
                    total += keys.len() as u64;
                    pieces.push(Piece::Ends { keys });
                }
                Some(level) => {
                    let counts = self.slot_counts(level, a, b, &mut maybe_buckets)?;
                    total += counts.values().map(|c| c.yes).sum::<u64>();
                    let (from, until) = (
                        a.saturating_mul(LEVEL_NANOS[level]),
                        b.saturating_mul(LEVEL_NANOS[level]),
                    );
                    whole = Some(whole.map_or((from, until), |(f, u)| (f.min(from), u.max(until))));
                    pieces.push(Piece::Slots { level, counts });
                }
            }
        }
        if let Some((from, until)) = whole {
            for bucket in maybe_buckets {
                total += self.count_bucket(bucket, from, until)?;
            }
        }
        let mut skip = q.offset as u64;
        let mut page = Vec::with_capacity(q.limit.min(512));
        if self.descending {
            pieces.reverse();
        }
        for piece in &pieces {
            if page.len() >= q.limit {
                break;
            }
            match piece {
                Piece::Ends { keys } => {
                    let ordered: Box<dyn Iterator<Item = &sled::IVec>> = if self.descending {
                        Box::new(keys.iter().rev())
                    } else {
                        Box::new(keys.iter())
                    };
                    for key in ordered {
                        if page.len() >= q.limit {
                            break;
                        }
                        take(key.clone(), &mut skip, &mut page);
                    }
                }
                Piece::Slots { level, counts, .. } => self.take_slots(*level, counts, &mut skip, &mut page)?,
            }
        }
        Ok((usize::try_from(total).unwrap_or(usize::MAX), page))
    }

    /// The exact count and the page's time-index keys, ordered by amount alone: the matches
    /// are counted per amount bucket (whole slots from the counts, the ends walked), whole
    /// buckets before the page are skipped by their count, and a bucket that holds part of it
    /// is read through `idx_amount` — in key order when all its amounts are equal (then that
    /// is the order), else sorted.
    pub(in crate::store::sled_store) fn run_by_amount(&self) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let q = self.m.query;
        let direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        let mut parts = Vec::new();
        cut(q.from_nanos, q.until_nanos, LEVEL_NANOS.len() - 1, &mut parts);
        let mut per_bucket: BTreeMap<u16, u64> = BTreeMap::new();
        let mut maybe_buckets = BTreeSet::new();
        let mut whole: Option<(i64, i64)> = None;
        for (a, b, level) in parts {
            match level {
                None => {
                    for item in self.index.range(order_preserving_i64(a)..order_preserving_i64(b)) {
                        let (key, _) = item?;
                        if let Some(hit) = self.m.hit(&key)? {
                            let amount = hit
                                .amount
                                .ok_or_else(|| StoreError::Corrupt("an amount order without the amount".into()))?;
                            *per_bucket.entry(amount_bucket(amount)).or_default() += 1;
                        }
                    }
                }
                Some(level) => {
                    let byte = self.projection.level_byte(level);
                    let range = count_slot_prefix(byte, a)..count_slot_prefix(byte, b);
                    self.tally.each(&self.counts, range, |key, n| {
                        let facet = split_count_key(key)?;
                        match self.verdict(&facet) {
                            Verdict::No => {}
                            Verdict::Yes => *per_bucket.entry(facet.bucket).or_default() += n,
                            Verdict::Maybe => {
                                maybe_buckets.insert(facet.bucket);
                            }
                        }
                        Ok(())
                    })?;
                    let (from, until) = (
                        a.saturating_mul(LEVEL_NANOS[level]),
                        b.saturating_mul(LEVEL_NANOS[level]),
                    );
                    whole = Some(whole.map_or((from, until), |(f, u)| (f.min(from), u.max(until))));
                }
            }
        }
        if let Some((from, until)) = whole {
            for bucket in maybe_buckets {
                *per_bucket.entry(bucket).or_default() += self.count_bucket(bucket, from, until)?;
            }
        }
        let total: u64 = per_bucket.values().sum();
        let mut skip = q.offset as u64;
        let mut page = Vec::with_capacity(q.limit.min(512));
        let descending = direction == Direction::Desc;
        let ordered: Box<dyn Iterator<Item = (&u16, &u64)>> = if descending {
            Box::new(per_bucket.iter().rev())
        } else {
            Box::new(per_bucket.iter())
        };
        for (bucket, n) in ordered {
            if page.len() >= q.limit {
                break;
            }
            if *n <= skip {
                skip -= n;
                continue;
            }
            let range = self
                .amounts
                .range(amount_prefix(*bucket, q.from_nanos)..amount_prefix(*bucket, q.until_nanos));
            let keys: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            if is_single_amount_bucket(*bucket) {
                for item in keys {
                    if page.len() >= q.limit {
                        break;
                    }
                    let (key, _) = item?;
                    if let Some(hit) = self.m.hit(record_key_after(&key, 2)?)? {
                        take(hit.key, &mut skip, &mut page);
                    }
                }
            } else {
                // The bucket's entries carry their amounts: sorted by amount (then by the
                // time-index key, the tie-break) without reading a record, and only then
                // checked against the filters in that order until the page is full.
                let mut entries: Vec<(Decimal, sled::IVec)> = Vec::new();
                for item in keys {
                    let (key, value) = item?;
                    let amount = stored_amount(&value)
                        .ok_or_else(|| StoreError::Corrupt("an idx_amount entry without its amount".into()))?;
                    entries.push((amount, sled::IVec::from(record_key_after(&key, 2)?)));
                }
                entries.sort_by(|a, b| {
                    let o = a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1));
                    if descending {
                        o.reverse()
                    } else {
                        o
                    }
                });
                let filters_only = SearchQuery {
                    order: Vec::new(),
                    ..q.clone()
                };
                let check = Matcher {
                    query: &filters_only,
                    key_filters: self.m.key_filters.clone(),
                    record_filters: self.m.record_filters.clone(),
                    index_order: true,
                    records: self.m.records.clone(),
                };
                for (_, key) in entries {
                    if page.len() >= q.limit {
                        break;
                    }
                    if check.hit(&key)?.is_some() {
                        take(key, &mut skip, &mut page);
                    }
                }
            }
        }
        Ok((usize::try_from(total).unwrap_or(usize::MAX), page))
    }

    /// The counts of every slot `first..end` of `level` that may hold a match.
    fn slot_counts(
        &self,
        level: usize,
        first: i64,
        end: i64,
        maybe_buckets: &mut BTreeSet<u16>,
    ) -> Result<BTreeMap<i64, SlotCount>, StoreError> {
        let mut out: BTreeMap<i64, SlotCount> = BTreeMap::new();
        let byte = self.projection.level_byte(level);
        let range = count_slot_prefix(byte, first)..count_slot_prefix(byte, end);
        self.tally.each(&self.counts, range, |key, n| {
            let facet = split_count_key(key)?;
            match self.verdict(&facet) {
                Verdict::No => {}
                Verdict::Yes => out.entry(facet.slot).or_default().yes += n,
                Verdict::Maybe => {
                    out.entry(facet.slot).or_default().maybe = true;
                    maybe_buckets.insert(facet.bucket);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Every status a record received in the query's window may have: those of the hourly
    /// counts of the hours the window touches.
    pub(in crate::store::sled_store) fn statuses(&self) -> Result<BTreeSet<String>, StoreError> {
        let q = self.m.query;
        let hour = LEVEL_NANOS[2];
        let (first, end) = (q.from_nanos.div_euclid(hour), (q.until_nanos - 1).div_euclid(hour) + 1);
        let mut out = BTreeSet::new();
        let byte = Projection::KindStatus.level_byte(2);
        let range = count_slot_prefix(byte, first)..count_slot_prefix(byte, end);
        self.tally.each(&self.counts, range, |key, _| {
            let status = split_count_key(key)?.status;
            if !out.contains(status) {
                out.insert(status.to_string());
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn verdict(&self, facet: &CountKey<'_>) -> Verdict {
        let mut v = Verdict::Yes;
        for f in &self.m.query.filters {
            let this = match f.field {
                SearchField::Channel => verdict_of(text_holds(
                    &f.condition,
                    Some(facet.kind.map_or("", |k| k.channel().as_str())),
                )),
                SearchField::Kind => verdict_of(text_holds(
                    &f.condition,
                    Some(facet.kind.map_or("", RecordKind::as_str)),
                )),
                SearchField::Status => verdict_of(text_holds(&f.condition, Some(facet.status))),
                SearchField::Amount => amount_verdict(&f.condition, facet.bucket),
                SearchField::Currency => verdict_of(text_holds(&f.condition, Some(facet.currency))),
                SearchField::PaymentMethod => verdict_of(text_holds(&f.condition, facet.payment_method)),
                SearchField::ClientKey => verdict_of(text_holds(&f.condition, facet.client_key)),
                // Not a facet: the bucket's records are read and checked.
                _ => Verdict::Maybe,
            };
            v = v.min(this);
        }
        v
    }

    /// Matches among one amount bucket's records received in `[from, until)`.
    fn count_bucket(&self, bucket: u16, from: i64, until: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for item in self
            .amounts
            .range(amount_prefix(bucket, from)..amount_prefix(bucket, until))
        {
            let (key, _) = item?;
            // After the bucket comes the time-index key itself (time, kind tag, id).
            if self.m.hit(record_key_after(&key, 2)?)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Adds to `page` the matches of these slots after the first `skip`, in the query's
    /// direction: a slot wholly before the page is skipped by its count, one that holds part
    /// of it is opened into its finer slots, a second is walked.
    fn take_slots(
        &self,
        level: usize,
        counts: &BTreeMap<i64, SlotCount>,
        skip: &mut u64,
        page: &mut Vec<sled::IVec>,
    ) -> Result<(), StoreError> {
        let limit = self.m.query.limit;
        let ordered: Box<dyn Iterator<Item = (&i64, &SlotCount)>> = if self.descending {
            Box::new(counts.iter().rev())
        } else {
            Box::new(counts.iter())
        };
        for (slot, c) in ordered {
            if page.len() >= limit {
                return Ok(());
            }
            if !c.maybe && c.yes <= *skip {
                *skip -= c.yes;
                continue;
            }
            let size = LEVEL_NANOS[level];
            let (from, until) = (slot.saturating_mul(size), slot.saturating_add(1).saturating_mul(size));
            if level == 0 {
                self.walk_slot(from, until, skip, page)?;
            } else {
                let finer = LEVEL_NANOS[level - 1];
                let sub = self.slot_counts(level - 1, from / finer, until / finer, &mut BTreeSet::new())?;
                self.take_slots(level - 1, &sub, skip, page)?;
            }
        }
        Ok(())
    }

    fn walk_slot(&self, from: i64, until: i64, skip: &mut u64, page: &mut Vec<sled::IVec>) -> Result<(), StoreError> {
        let range = self
            .index
            .range(order_preserving_i64(from)..order_preserving_i64(until));
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if self.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in iter {
            if page.len() >= self.m.query.limit {
                break;
            }
            let (key, _) = item?;
            if self.m.hit(&key)?.is_some() {
                take(key, skip, page);
            }
        }
        Ok(())
    }
}

pub(super) fn take(key: sled::IVec, skip: &mut u64, page: &mut Vec<sled::IVec>) {
    if *skip > 0 {
        *skip -= 1;
    } else {
        page.push(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(s: &str) -> Operand {
        Operand::Amount(s.parse().expect("amount"))
    }

    #[test]
    fn a_window_is_cut_into_whole_slots_and_short_ends() {
        let s = LEVEL_NANOS[0];
        let m = LEVEL_NANOS[1];
        let h = LEVEL_NANOS[2];
        let mut out = Vec::new();
        // 00:59:58.5 .. 03:01:02.25
        let (a, b) = (h - 2 * s + s / 2, 3 * h + m + 2 * s + s / 4);
        cut(a, b, 2, &mut out);
        assert_eq!(
            out,
            vec![
                (a, h - s, None),
                ((h - s) / s, h / s, Some(0)),
                (1, 3, Some(2)),
                (3 * 60, 3 * 60 + 1, Some(1)),
                ((3 * h + m) / s, (3 * h + m) / s + 2, Some(0)),
                (3 * h + m + 2 * s, b, None),
            ]
        );
        let covered: i64 = out
            .iter()
            .map(|(x, y, level)| match level {
                Some(l) => (y - x) * LEVEL_NANOS[*l],
                None => y - x,
            })
            .sum();
        assert_eq!(covered, b - a);
    }

    #[test]
    fn amount_conditions_decide_whole_buckets_or_ask_for_a_read() {
        let b = |s: &str| amount_bucket(s.parse().expect("amount"));
        let cases = [
            (Condition::Ge(amount("10.00")), b("10.00"), Verdict::Yes),
            (Condition::Ge(amount("10.00")), b("9.99"), Verdict::No),
            (Condition::Ge(amount("10.37")), b("10.37"), Verdict::Maybe),
            (Condition::Ge(amount("10.37")), b("10.99"), Verdict::Maybe),
            (Condition::Ge(amount("10.37")), b("11"), Verdict::Yes),
            (Condition::Gt(amount("10.00")), b("10.00"), Verdict::No),
            (Condition::Gt(amount("10.00")), b("10.01"), Verdict::Yes),
            (Condition::Lt(amount("10.00")), b("10.00"), Verdict::No),
            (Condition::Lt(amount("10.00")), b("9.99"), Verdict::Yes),
            (Condition::Le(amount("10.00")), b("10.00"), Verdict::Yes),
            (Condition::Le(amount("10.00")), b("10.01"), Verdict::No),
            (Condition::Le(amount("10.37")), b("10.01"), Verdict::Maybe),
            (Condition::Eq(amount("1.00")), b("1.00"), Verdict::Yes),
            (Condition::Eq(amount("1.00")), b("1.01"), Verdict::No),
            (Condition::Eq(amount("1.05")), b("1.01"), Verdict::Maybe),
            (
                Condition::In(vec![amount("1.05"), amount("1.01")]),
                b("1.09"),
                Verdict::Maybe,
            ),
            (Condition::In(vec![amount("1.05"), amount("2")]), b("2"), Verdict::Yes),
            (Condition::Between(amount("1"), amount("5")), b("3"), Verdict::Yes),
            (Condition::Between(amount("1"), amount("5")), b("5"), Verdict::Yes),
            (Condition::Between(amount("1"), amount("5")), b("5.01"), Verdict::No),
            (
                Condition::Between(amount("1.01"), amount("5")),
                b("1.05"),
                Verdict::Maybe,
            ),
            (Condition::Between(amount("1"), amount("5")), b("7"), Verdict::No),
            (Condition::Like("1%".into()), b("1"), Verdict::No),
            (Condition::Ge(Operand::Text("x".into())), b("1"), Verdict::No),
        ];
        for (c, bucket, want) in cases {
            assert_eq!(amount_verdict(&c, bucket), want, "{c:?} on bucket {bucket}");
        }
    }
}
