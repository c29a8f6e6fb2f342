//! The search ordered by status or by account number, with filters on channel, kind, status and
//! amount only (or none): the facet plan's counts give the exact total, and the page is found in
//! the order asked without sorting the window.
//!
//! - By status: the statuses of the window (from the hourly counts that cover it) one after
//!   another in the order asked, each a facet search of its own (the filters plus that status,
//!   in time order, which is the tie-break's order): a status wholly before the page is skipped
//!   by its count, the one holding the page is paged slot by slot.
//! - By account number: `idx_account` holds each account's records by time, and the records
//!   without an account under an empty account (which sorts first, as a missing value does).
//!   The accounts are taken in order (one seek each, merging the groups of each length, as keys
//!   start with the length), and each account's records of the window are walked in the
//!   direction asked (the tie-break's order) and checked. When the filters keep few of the
//!   window's records, walking the accounts until the page is full would read many records for
//!   each match; then the matches are collected by the facet plan and sorted instead, whichever
//!   reads fewer.

use super::super::search_index::LEVEL_NANOS;
use super::super::{SledStore, StoreError, TreeId};
use super::facets::FacetSearch;
use super::prefix::{next_length, window_start, AccountHeads};
use super::Matcher;
use crate::store::query::{Condition, Direction, Filter, Operand, SearchField, SearchQuery, SortField};

impl SledStore {
    /// The exact count and the page's time-index keys, ordered by status.
    pub(in crate::store::sled_store) fn status_order_page(
        &self,
        q: &SearchQuery,
    ) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        let statuses = FacetSearch::new(self, &Matcher::new(self, q)?)?.statuses()?;
        let ordered: Box<dyn Iterator<Item = &String>> = if direction == Direction::Desc {
            Box::new(statuses.iter().rev())
        } else {
            Box::new(statuses.iter())
        };
        let mut total = 0usize;
        let mut skip = q.offset;
        let mut page = Vec::new();
        for status in ordered {
            let mut one = q.clone();
            one.filters.push(Filter {
                field: SearchField::Status,
                condition: Condition::Eq(Operand::Text(status.clone())),
            });
            one.order = vec![(SortField::ReceivedAt, direction)];
            one.offset = skip;
            one.limit = q.limit - page.len();
            let m = Matcher::new(self, &one)?;
            let (n, keys) = FacetSearch::new(self, &m)?.run()?;
            total += n;
            skip = skip.saturating_sub(n);
            page.extend(keys);
        }
        Ok((total, page))
    }

    /// How many records the query's window holds, from the facet counts.
    pub(in crate::store::sled_store) fn count_in_window(&self, q: &SearchQuery) -> Result<usize, StoreError> {
        let window = SearchQuery {
            from_nanos: q.from_nanos,
            until_nanos: q.until_nanos,
            filters: Vec::new(),
            order: Vec::new(),
            offset: 0,
            limit: 0,
        };
        Ok(FacetSearch::new(self, &Matcher::new(self, &window)?)?.run()?.0)
    }

    /// The exact count and the page's time-index keys, ordered by account number.
    pub(in crate::store::sled_store) fn account_order_page(
        &self,
        q: &SearchQuery,
    ) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        // Each record is checked against the filters alone: the walk gives the order.
        let mut filters_only = q.clone();
        filters_only.order = Vec::new();
        filters_only.offset = 0;
        filters_only.limit = 0;
        let m = Matcher::new(self, &filters_only)?;
        let in_window = self.count_in_window(q)?;
        let total = if q.filters.is_empty() {
            in_window
        } else {
            FacetSearch::new(self, &m)?.run()?.0
        };
        if total <= q.offset || q.limit == 0 {
            return Ok((total, Vec::new()));
        }
        if !q.filters.is_empty() && collecting_reads_less(q, in_window, total) {
            let mut all = filters_only.clone();
            all.limit = total;
            let (_, matches) = FacetSearch::new(self, &Matcher::new(self, &all)?)?.run()?;
            let (_, page) = self.sorted_page(&Matcher::new(self, q)?, matches)?;
            return Ok((total, page));
        }
        let descending = direction == Direction::Desc;
        let index = self.tree(TreeId::IdxAccount)?;
        // One cursor per account length present (length 0: the records without an account),
        // each at its next account in the order asked.
        let mut groups: Vec<(AccountHeads, Option<Vec<u8>>)> = Vec::new();
        let mut from_length = 0;
        while let Some(len) = next_length(&index, from_length)? {
            let mut heads = AccountHeads::within(&(len as u16).to_be_bytes());
            let head = heads.next(&index, descending)?;
            groups.push((heads, head));
            from_length = len + 1;
        }
        let mut skip = q.offset as u64;
        let mut page = Vec::with_capacity(q.limit.min(512));
        let mut matched = 0usize;
        loop {
            // The group whose next account comes first (accounts compared without their length).
            let next = groups
                .iter()
                .enumerate()
                .filter_map(|(i, (_, head))| head.as_ref().map(|h| (i, &h[2..])))
                .reduce(|a, b| {
                    let b_first = if descending { b.1 > a.1 } else { b.1 < a.1 };
                    if b_first {
                        b
                    } else {
                        a
                    }
                })
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            let (heads, head) = &mut groups[i];
            let Some(account) = head.take() else { break };
            let range = index.range(window_start(&account, q.from_nanos)..window_start(&account, q.until_nanos));
            let keys: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            for item in keys {
                let (key, _) = item?;
                // After the head comes the time-index key itself (time, kind tag, id).
                let time_key = &key[account.len()..];
                if m.hit(time_key)?.is_some() {
                    matched += 1;
                    super::facets::take(sled::IVec::from(time_key), &mut skip, &mut page);
                    if page.len() >= q.limit {
                        return Ok((total, page));
                    }
                }
            }
            if matched >= total {
                break;
            }
            *head = heads.next(&index, descending)?;
        }
        Ok((total, page))
    }
}

/// Whether collecting every match (through the facet plan, which reads the seconds holding
/// them) and sorting reads fewer records than walking the accounts until the page is full
/// (about `window / total` records read per match wanted).
fn collecting_reads_less(q: &SearchQuery, in_window: usize, total: usize) -> bool {
    let wanted = (q.offset + q.limit).min(total) as f64;
    let walk = wanted * in_window as f64 / total as f64;
    let seconds = ((q.until_nanos - q.from_nanos) as f64 / LEVEL_NANOS[0] as f64).max(1.0);
    let collect = (total as f64 * (in_window as f64 / seconds).max(1.0)).min(in_window as f64);
    collect < walk
}
