//! The read side operators use: the postings search over the time index, an account's recent
//! journal, and the ordered record walk of `export`. Nothing here writes.
//!
//! The search never scans `records`: it walks the `idx_received` range of the query's window
//! (keys are `order_preserving_i64(nanos) ++ kind tag ++ id`), answers what it can from the key
//! alone (time, kind, channel, id), and reads a record only when a filter or the order needs one
//! of its fields — then through a borrowed, partial view instead of the whole `Record`. Whole
//! records are deserialized only for the page it returns.

mod facets;
mod ordered;
mod prefix;

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{codec, order_preserving_i64, received_key_at, text_column, SledStore, StoreError, TreeId};
use crate::ledger::{Record, RecordKind};
use crate::store::query::{
    Condition, Direction, Filter, Operand, RecordCursor, SearchField, SearchPage, SearchQuery, SortField,
};

/// Fields the time-index key carries, so filtering on them reads no record.
fn in_key(field: SearchField) -> bool {
    matches!(field, SearchField::Channel | SearchField::Kind | SearchField::Id)
}

/// The fields of a stored record a filter or an order may need, borrowed from the stored bytes
/// (of a legacy JSON record by serde, of a compact one by `codec::record_fields`).
#[derive(Deserialize)]
struct Slim<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    amount: Cow<'a, str>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow, default)]
    account_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    confirmation_number: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payment_method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_key: Option<Cow<'a, str>>,
    /// The amount of a compact record, which is a decimal already (`amount` is then empty).
    #[serde(skip)]
    decoded_amount: Option<Decimal>,
}

impl<'a> From<codec::RecordFields<'a>> for Slim<'a> {
    fn from(f: codec::RecordFields<'a>) -> Self {
        Slim {
            status: Cow::Borrowed(f.status),
            amount: Cow::Borrowed(""),
            currency: Cow::Borrowed(f.currency),
            account_number: f.account_number.map(Cow::Borrowed),
            confirmation_number: f.confirmation_number.map(Cow::Borrowed),
            payment_method: f.payment_method.map(Cow::Borrowed),
            client_key: f.client_key.map(Cow::Borrowed),
            decoded_amount: Some(f.amount),
        }
    }
}

impl Slim<'_> {
    fn amount(&self) -> Result<Decimal, StoreError> {
        if let Some(amount) = self.decoded_amount {
            return Ok(amount);
        }
        self.amount
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("stored amount {:?} is not a decimal", self.amount)))
    }
}

/// What the index key says about a record.
struct KeyParts<'k> {
    nanos: i64,
    kind: Option<RecordKind>,
    id: &'k [u8],
    record_key: &'k [u8],
}

fn split_key(key: &[u8]) -> Result<KeyParts<'_>, StoreError> {
    if key.len() < 9 {
        return Err(StoreError::Corrupt("time-index key shorter than 9 bytes".into()));
    }
    let mut nanos = [0u8; 8];
    nanos.copy_from_slice(&key[..8]);
    let nanos = (u64::from_be_bytes(nanos) ^ (1 << 63)) as i64;
    let kind = [
        RecordKind::Payment,
        RecordKind::Refund,
        RecordKind::EmpayrePayment,
        RecordKind::EmpayreRefund,
    ]
    .into_iter()
    .find(|k| k.tag() == key[8]);
    Ok(KeyParts {
        nanos,
        kind,
        id: &key[9..],
        record_key: &key[8..],
    })
}

/// Values of the order fields for one match (only those the order names are filled in).
struct Hit {
    key: sled::IVec,
    nanos: i64,
    amount: Option<Decimal>,
    account_number: Option<String>,
    status: Option<String>,
}

/// Checks a time-index key against a query's filters, reading the record only when a filter
/// or the order needs one of its fields; gives the order values of a match.
struct Matcher<'q> {
    query: &'q SearchQuery,
    key_filters: Vec<&'q Filter>,
    record_filters: Vec<&'q Filter>,
    index_order: bool,
    records: sled::Tree,
}

impl<'q> Matcher<'q> {
    fn new(store: &SledStore, query: &'q SearchQuery) -> Result<Self, StoreError> {
        let (key_filters, record_filters) = query.filters.iter().partition(|f| in_key(f.field));
        Ok(Self {
            query,
            key_filters,
            record_filters,
            index_order: is_index_order(query),
            records: store.tree(TreeId::Records)?,
        })
    }

    fn needs_record(&self) -> bool {
        !self.record_filters.is_empty() || !self.index_order
    }

    /// None when the record under `key` (a time-index key) does not match.
    fn hit(&self, key: &[u8]) -> Result<Option<Hit>, StoreError> {
        let parts = split_key(key)?;
        if !self.key_filters.iter().all(|f| key_filter_holds(f, &parts)) {
            return Ok(None);
        }
        let empty = Hit {
            key: sled::IVec::from(key),
            nanos: parts.nanos,
            amount: None,
            account_number: None,
            status: None,
        };
        if !self.needs_record() {
            return Ok(Some(empty));
        }
        let Some(bytes) = self.records.get(parts.record_key)? else {
            return Err(missing_record(&parts));
        };
        let slim = if codec::is_json(&bytes) {
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?
        } else {
            Slim::from(codec::record_fields(&bytes)?)
        };
        for f in &self.record_filters {
            if !record_filter_holds(f, &slim)? {
                return Ok(None);
            }
        }
        hit(&self.query.order, empty.key, parts.nanos, &slim).map(Some)
    }

    /// The matches among the time-index keys of `[a, b)`, in the query's direction, until
    /// `enough` of them.
    fn walk(
        &self,
        index: &sled::Tree,
        a: i64,
        b: i64,
        descending: bool,
        enough: usize,
        out: &mut Vec<sled::IVec>,
    ) -> Result<(), StoreError> {
        let range = index.range(order_preserving_i64(a)..order_preserving_i64(b));
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for item in iter {
            if out.len() >= enough {
                break;
            }
            let (key, _) = item?;
            if let Some(h) = self.hit(&key)? {
                out.push(h.key);
            }
        }
        Ok(())
    }
}

/// Whether the order is the time index's own (by receive time only, or none).
fn is_index_order(q: &SearchQuery) -> bool {
    q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == SortField::ReceivedAt)
}

/// How a search finds its matches (see `SledStore::search`).
enum Plan<'q> {
    /// Records named by id: read each directly.
    Ids(Vec<&'q str>),
    /// Records of a few accounts (`idx_account`) or confirmation numbers (`idx_confirmation`):
    /// walk that index for each.
    Named(TreeId, Vec<&'q str>),
    /// Filters on the facets only (channel, kind, status, amount, currency, payment method,
    /// client key), in time order: count from `count_by_facet`, walk only the slots that hold
    /// the page.
    Facets,
    /// The same filters (or none), ordered by amount alone: counted per amount bucket, the
    /// page read from the buckets that hold it.
    FacetsByAmount,
    /// The same filters (or none), ordered by status: a facet search per status.
    FacetsByStatus,
    /// The same filters (or none), ordered by account number: `idx_account` in account order.
    FacetsByAccount,
    /// A `like` on ids with a literal start: the records whose id has it.
    IdStart(&'q str),
    /// A `like` on account numbers (`idx_account`) or confirmation numbers (`idx_confirmation`)
    /// with a literal start, or any `like` on account numbers: the texts of the index that
    /// match it (there are fewer accounts than records), and their records of the window.
    TextLike(TreeId, &'q str),
    /// A `like` without a literal start on ids or confirmation numbers: scan the in-memory
    /// column of both (`text_column`) for the window; read only the matches' records, if any.
    Column,
    /// Everything else: walk the window's time index.
    Scan,
}

/// The texts an `=` or `in` condition names, if it is one.
fn named_texts(c: &Condition) -> Option<Vec<&str>> {
    fn text(o: &Operand) -> Option<&str> {
        match o {
            Operand::Text(t) => Some(t.as_str()),
            Operand::Amount(_) => None,
        }
    }
    match c {
        Condition::Eq(o) => text(o).map(|t| vec![t]),
        Condition::In(list) => list.iter().map(text).collect(),
        _ => None,
    }
}

fn plan(q: &SearchQuery) -> Plan<'_> {
    let named = |field: SearchField| {
        q.filters
            .iter()
            .filter(|f| f.field == field)
            .find_map(|f| named_texts(&f.condition))
    };
    if let Some(ids) = named(SearchField::Id) {
        return Plan::Ids(ids);
    }
    if let Some(accounts) = named(SearchField::AccountNumber) {
        return Plan::Named(TreeId::IdxAccount, accounts);
    }
    if let Some(confirmations) = named(SearchField::ConfirmationNumber) {
        return Plan::Named(TreeId::IdxConfirmation, confirmations);
    }
    let pattern = |field: SearchField| {
        q.filters
            .iter()
            .filter(|f| f.field == field)
            .find_map(|f| match &f.condition {
                Condition::Like(pattern) => Some(pattern.as_str()),
                _ => None,
            })
    };
    let with_start = |p: &&str| !prefix::literal_start(p).is_empty();
    if let Some(p) = pattern(SearchField::Id).filter(with_start) {
        return Plan::IdStart(prefix::literal_start(p));
    }
    if let Some(p) = pattern(SearchField::AccountNumber) {
        return Plan::TextLike(TreeId::IdxAccount, p);
    }
    if let Some(p) = pattern(SearchField::ConfirmationNumber).filter(with_start) {
        return Plan::TextLike(TreeId::IdxConfirmation, p);
    }
    if pattern(SearchField::Id).is_some() || pattern(SearchField::ConfirmationNumber).is_some() {
        return Plan::Column;
    }
    let facet_fields = q.filters.iter().all(|f| {
        matches!(
            f.field,
            SearchField::Channel
                | SearchField::Kind
                | SearchField::Status
                | SearchField::Amount
                | SearchField::Currency
                | SearchField::PaymentMethod
                | SearchField::ClientKey
        )
    });
    if !q.filters.is_empty() && facet_fields && is_index_order(q) {
        return Plan::Facets;
    }
    if facet_fields && q.order.len() == 1 && q.order[0].0 == SortField::Amount {
        return Plan::FacetsByAmount;
    }
    // Ordered by one field, or by it and then by receive time the same way (the tie-break's
    // order already).
    let ordered_by = |field: SortField| match q.order.as_slice() {
        [(first, _)] => *first == field,
        [(first, d), (SortField::ReceivedAt, then)] => *first == field && d == then,
        _ => false,
    };
    if facet_fields && ordered_by(SortField::Status) {
        return Plan::FacetsByStatus;
    }
    if facet_fields && ordered_by(SortField::AccountNumber) {
        return Plan::FacetsByAccount;
    }
    Plan::Scan
}

impl SledStore {
    /// Runs a search. A search naming ids, accounts or confirmation numbers (or a literal start
    /// of one with `like`) reads only those records (the id is the record key, `idx_account`
    /// and `idx_confirmation` hold their records by time); one filtering only on the facets,
    /// in time order or ordered by amount, status or account number, counts from
    /// `count_by_facet`; any other walks the time index of its window. The count is exact
    /// either way.
    pub(crate) fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        if q.from_nanos >= q.until_nanos {
            return Ok(SearchPage {
                total: 0,
                records: Vec::new(),
            });
        }
        self.search_by(q, plan(q))
    }

    fn search_by(&self, q: &SearchQuery, plan: Plan<'_>) -> Result<SearchPage, StoreError> {
        let matcher = Matcher::new(self, q)?;
        let (total, page_keys) = match plan {
            Plan::Ids(ids) => self.sorted_page(&matcher, self.keys_of_ids(q, &ids)?)?,
            Plan::Named(index, texts) => self.sorted_page(&matcher, self.keys_of_texts(q, index, &texts)?)?,
            Plan::Facets => self.facet_page(&matcher)?,
            Plan::FacetsByAmount => facets::FacetSearch::new(self, &matcher)?.run_by_amount()?,
            Plan::FacetsByStatus => self.status_order_page(q)?,
            Plan::FacetsByAccount => self.account_order_page(q)?,
            // A literal start shared by more records than the window holds: the column, if
            // it can tell (ids, confirmation numbers), is still cheaper than the walk.
            Plan::IdStart(start) => match self.keys_of_id_start(q, start)? {
                Some(keys) => self.sorted_page(&matcher, keys)?,
                None => self.column_or_scan_page(&matcher)?,
            },
            Plan::TextLike(index, pattern) => match self.keys_of_texts_like(q, index, pattern)? {
                Some(keys) => self.sorted_page(&matcher, keys)?,
                None if index == TreeId::IdxConfirmation => self.column_or_scan_page(&matcher)?,
                None => self.scan_page(&matcher)?,
            },
            Plan::Column => self.column_or_scan_page(&matcher)?,
            Plan::Scan => self.scan_page(&matcher)?,
        };
        let mut page = Vec::with_capacity(page_keys.len());
        for key in &page_keys {
            let parts = split_key(key)?;
            match self.record_at(parts.record_key)? {
                Some(record) => page.push(record),
                None => return Err(missing_record(&parts)),
            }
        }
        Ok(SearchPage { total, records: page })
    }

    /// The time-index keys of the records named by id (of any kind) received in the window.
    fn keys_of_ids(&self, q: &SearchQuery, ids: &[&str]) -> Result<Vec<sled::IVec>, StoreError> {
        let mut keys: Vec<sled::IVec> = Vec::new();
        for id in ids {
            for kind in [
                RecordKind::Payment,
                RecordKind::Refund,
                RecordKind::EmpayrePayment,
                RecordKind::EmpayreRefund,
            ] {
                if let Some(record) = self.record(kind, id)? {
                    let nanos = record.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
                    if (q.from_nanos..q.until_nanos).contains(&nanos) {
                        keys.push(received_key_at(nanos, kind, id).into());
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Checks every candidate, sorts the matches and cuts the page: for the few records an id
    /// or an account names.
    fn sorted_page(
        &self,
        m: &Matcher<'_>,
        candidates: Vec<sled::IVec>,
    ) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let q = m.query;
        let mut hits = Vec::with_capacity(candidates.len());
        for key in &candidates {
            if let Some(h) = m.hit(key)? {
                hits.push(h);
            }
        }
        let first_direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        hits.sort_by(|a, b| compare_hits(a, b, &q.order, first_direction));
        let total = hits.len();
        Ok((
            total,
            hits.into_iter().skip(q.offset).take(q.limit).map(|h| h.key).collect(),
        ))
    }

    /// Walks the window's time index; see the module notes for the cost model.
    fn scan_page(&self, m: &Matcher<'_>) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        let q = m.query;
        let range = self
            .tree(TreeId::IdxReceived)?
            .range(order_preserving_i64(q.from_nanos)..order_preserving_i64(q.until_nanos));
        let first_direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        let unfiltered = q.filters.is_empty() && m.index_order;
        let mut total = 0usize;
        let mut page_keys: Vec<sled::IVec> = Vec::new();
        let mut hits: Vec<Hit> = Vec::new();
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if m.index_order && first_direction == Direction::Desc {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
        for item in iter {
            let (key, _) = item?;
            let Some(h) = m.hit(&key)? else {
                continue;
            };
            if !m.index_order {
                hits.push(h);
                continue;
            }
            total += 1;
            if total > q.offset && page_keys.len() < q.limit {
                page_keys.push(h.key);
            }
            if unfiltered && page_keys.len() >= q.limit {
                // The page is full and the total comes from the per-minute counts.
                break;
            }
        }
        if unfiltered {
            total = self.count_received(q.from_nanos, q.until_nanos)?;
        }
        if !m.index_order {
            total = hits.len();
            hits.sort_by(|a, b| compare_hits(a, b, &q.order, first_direction));
            page_keys = hits.into_iter().skip(q.offset).take(q.limit).map(|h| h.key).collect();
        }
        Ok((total, page_keys))
    }

    /// The matches of the filters the in-memory column can check (id, kind, channel,
    /// confirmation number) among the window's records, from the column: the exact total and
    /// the page when nothing else filters and the order is the time index's, else the
    /// candidates whose records the other filters or the order need (only those are read).
    /// None when the column is not ready or does not reach back to the window's start.
    fn column_page(&self, m: &Matcher<'_>) -> Result<Option<(usize, Vec<sled::IVec>)>, StoreError> {
        enum Check<'q> {
            Like(SearchField, text_column::Like),
            Key(&'q Filter),
            Confirmation(&'q Condition),
        }
        let q = m.query;
        let mut checks = Vec::new();
        let mut others = 0;
        for f in &q.filters {
            checks.push(match (&f.condition, f.field) {
                (Condition::Like(p), SearchField::Id | SearchField::ConfirmationNumber) => {
                    Check::Like(f.field, text_column::Like::new(p))
                }
                (_, SearchField::ConfirmationNumber) => Check::Confirmation(&f.condition),
                (_, field) if in_key(field) => Check::Key(f),
                _ => {
                    others += 1;
                    continue;
                }
            });
        }
        let holds = |row: &text_column::Row<'_>| {
            checks.iter().all(|c| match c {
                Check::Like(SearchField::Id, like) => like.matches(&row.record_key[1..]),
                Check::Like(_, like) => row.confirmation.is_some_and(|t| like.matches(t)),
                Check::Confirmation(condition) => {
                    text_holds(condition, row.confirmation.and_then(|t| std::str::from_utf8(t).ok()))
                }
                Check::Key(f) => key_filter_holds(
                    f,
                    &KeyParts {
                        nanos: row.nanos,
                        kind: RecordKind::from_tag(row.record_key[0]),
                        id: &row.record_key[1..],
                        record_key: row.record_key,
                    },
                ),
            })
        };
        let instance = self.instance()?;
        let descending = q.order.first().is_some_and(|o| o.1 == Direction::Desc);
        let whole = others == 0 && m.index_order;
        let found = instance.text_column.with_window(q.from_nanos, q.until_nanos, |w| {
            let matches: Vec<usize> = (0..w.len()).filter(|i| holds(&w.row(*i))).collect();
            if !whole {
                return (None, matches.iter().map(|i| w.time_key(*i)).collect::<Vec<_>>());
            }
            let page: Vec<sled::IVec> = if descending {
                matches
                    .iter()
                    .rev()
                    .skip(q.offset)
                    .take(q.limit)
                    .map(|i| w.time_key(*i))
                    .collect()
            } else {
                matches
                    .iter()
                    .skip(q.offset)
                    .take(q.limit)
                    .map(|i| w.time_key(*i))
                    .collect()
            };
            (Some(matches.len()), page)
        })?;
        match found {
            None => Ok(None),
            Some((Some(total), page)) => Ok(Some((total, page))),
            Some((None, candidates)) => self.sorted_page(m, candidates).map(Some),
        }
    }

    /// The column's answer, or the walk's while the column is not ready (or the window starts
    /// before what it keeps).
    fn column_or_scan_page(&self, m: &Matcher<'_>) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        match self.column_page(m)? {
            Some(page) => Ok(page),
            None => self.scan_page(m),
        }
    }

    /// Counts from `count_by_facet` and walks only what the page needs; see `facets`.
    fn facet_page(&self, m: &Matcher<'_>) -> Result<(usize, Vec<sled::IVec>), StoreError> {
        facets::FacetSearch::new(self, m)?.run()
    }
}

impl SledStore {
    /// Records received at or after `since` (all when None), in receive order, after `cursor`,
    /// at most `limit`, through the time index.
    pub(super) fn records_received(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<&RecordCursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let from = since.map_or(i64::MIN, |t| t.timestamp_nanos_opt().unwrap_or(i64::MIN));
        let start = order_preserving_i64(from).to_vec();
        let after = cursor.map(|c| received_key_at(c.received_at_nanos, c.kind, &c.id));
        let range = match &after {
            // Past the cursor's own key: the smallest key greater than it.
            Some(after) if *after >= start => {
                let mut next = after.clone();
                next.push(0);
                self.tree(TreeId::IdxReceived)?.range(next..)
            }
            _ => self.tree(TreeId::IdxReceived)?.range(start..),
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in range.take(limit) {
            let (key, _) = item?;
            let parts = split_key(&key)?;
            out.push(
                self.record_at(parts.record_key)?
                    .ok_or_else(|| missing_record(&parts))?,
            );
        }
        Ok(out)
    }
}

fn missing_record(parts: &KeyParts<'_>) -> StoreError {
    StoreError::Corrupt(format!(
        "the time index names record {} that is missing",
        String::from_utf8_lossy(parts.record_key)
    ))
}

fn hit(order: &[(SortField, Direction)], key: sled::IVec, nanos: i64, slim: &Slim<'_>) -> Result<Hit, StoreError> {
    let mut h = Hit {
        key,
        nanos,
        amount: None,
        account_number: None,
        status: None,
    };
    for (field, _) in order {
        match field {
            SortField::ReceivedAt => {}
            SortField::Amount => h.amount = Some(slim.amount()?),
            SortField::AccountNumber => h.account_number = slim.account_number.as_deref().map(str::to_string),
            SortField::Status => h.status = Some(slim.status.to_string()),
        }
    }
    Ok(h)
}

fn compare_hits(a: &Hit, b: &Hit, order: &[(SortField, Direction)], tie: Direction) -> Ordering {
    for (field, direction) in order {
        let o = match field {
            SortField::ReceivedAt => a.nanos.cmp(&b.nanos),
            SortField::Amount => a.amount.cmp(&b.amount),
            SortField::AccountNumber => a.account_number.cmp(&b.account_number),
            SortField::Status => a.status.cmp(&b.status),
        };
        let o = if *direction == Direction::Desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = a.key.cmp(&b.key);
    if tie == Direction::Desc {
        o.reverse()
    } else {
        o
    }
}

fn key_filter_holds(f: &Filter, parts: &KeyParts<'_>) -> bool {
    let text: Cow<'_, str> = match f.field {
        SearchField::Kind => Cow::Borrowed(parts.kind.map_or("", RecordKind::as_str)),
        SearchField::Channel => Cow::Borrowed(parts.kind.map_or("", |k| k.channel().as_str())),
        SearchField::Id => String::from_utf8_lossy(parts.id),
        _ => return true,
    };
    text_holds(&f.condition, Some(&text))
}

fn record_filter_holds(f: &Filter, slim: &Slim<'_>) -> Result<bool, StoreError> {
    let text = match f.field {
        SearchField::Amount => return Ok(amount_holds(&f.condition, slim.amount()?)),
        SearchField::Status => Some(&*slim.status),
        SearchField::Currency => Some(&*slim.currency),
        SearchField::AccountNumber => slim.account_number.as_deref(),
        SearchField::ConfirmationNumber => slim.confirmation_number.as_deref(),
        SearchField::PaymentMethod => slim.payment_method.as_deref(),
        SearchField::ClientKey => slim.client_key.as_deref(),
        SearchField::Channel | SearchField::Kind | SearchField::Id => return Ok(true),
    };
    Ok(text_holds(&f.condition, text))
}

/// A text condition; a field the record does not have matches nothing.
fn text_holds(c: &Condition, value: Option<&str>) -> bool {
    let Some(v) = value else {
        return false;
    };
    let cmp = |o: &Operand| match o {
        Operand::Text(t) => Some(v.cmp(t.as_str())),
        Operand::Amount(_) => None,
    };
    holds(c, cmp, |pattern| like(v, pattern))
}

fn amount_holds(c: &Condition, v: Decimal) -> bool {
    let cmp = |o: &Operand| match o {
        Operand::Amount(a) => Some(v.cmp(a)),
        Operand::Text(_) => None,
    };
    holds(c, cmp, |_| false)
}

fn holds(c: &Condition, cmp: impl Fn(&Operand) -> Option<Ordering>, like: impl Fn(&str) -> bool) -> bool {
    let is = |o: &Operand, ok: fn(Ordering) -> bool| cmp(o).is_some_and(ok);
    match c {
        Condition::Eq(o) => is(o, Ordering::is_eq),
        Condition::In(list) => list.iter().any(|o| is(o, Ordering::is_eq)),
        Condition::Like(p) => like(p),
        Condition::Lt(o) => is(o, Ordering::is_lt),
        Condition::Gt(o) => is(o, Ordering::is_gt),
        Condition::Le(o) => is(o, Ordering::is_le),
        Condition::Ge(o) => is(o, Ordering::is_ge),
        Condition::Between(lo, hi) => is(lo, Ordering::is_ge) && is(hi, Ordering::is_le),
    }
}

/// SQL-style `LIKE` with `%` only: the parts between `%` must appear in order, anchored at the
/// start and end unless the pattern starts or ends with `%`.
pub fn like(value: &str, pattern: &str) -> bool {
    let parts: Vec<&str> = pattern.split('%').collect();
    if parts.len() == 1 {
        return value == pattern;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() || !value.ends_with(last) {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::WriteSet;
    use super::*;

    #[test]
    fn like_matches_percent_wildcards() {
        let cases = [
            ("ACC-100200", "ACC-%", true),
            ("ACC-100200", "%200", true),
            ("ACC-100200", "%100%", true),
            ("ACC-100200", "ACC%2%0", true),
            ("ACC-100200", "ACC-100200", true),
            ("ACC-100200", "acc-%", false),
            ("ACC-100200", "%300%", false),
            ("AB", "A%B%B", false),
            ("ABA", "A%A", true),
            ("A", "A%A", false),
            ("", "%", true),
        ];
        for (value, pattern, want) in cases {
            assert_eq!(like(value, pattern), want, "{value} like {pattern}");
        }
    }

    #[test]
    fn the_slim_view_reads_a_stored_record() {
        let record = crate::ledger::test_support::payment("p1", "25.50", true);
        let bytes = serde_json::to_vec(&record).expect("json");
        let slim: Slim<'_> = serde_json::from_slice(&bytes).expect("slim");
        assert_eq!(slim.amount().expect("amount"), record.amount);
        assert_eq!(slim.status, "processed");
        assert_eq!(slim.account_number.as_deref(), Some("A"));
    }

    /// A store written before the compact record layout holds JSON records; a search with a
    /// record filter (the slim view) and the page it returns read both kinds alike.
    #[test]
    fn searches_read_legacy_json_and_compact_records_alike() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(&dir.path().join("s"), 8 << 20).expect("store");
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let mut legacy = crate::ledger::test_support::payment("legacy", "25.50", true);
        legacy.received_at = at;
        let mut compact = crate::ledger::test_support::payment("compact", "30.00", true);
        compact.received_at = at + chrono::Duration::seconds(1);
        let mut other = crate::ledger::test_support::payment("other", "7.00", true);
        other.received_at = at + chrono::Duration::seconds(2);
        let records = store.tree(TreeId::Records).expect("tree");
        let index = store.tree(TreeId::IdxReceived).expect("tree");
        records
            .insert(
                super::super::record_key(legacy.kind, &legacy.id),
                serde_json::to_vec(&legacy).expect("json"),
            )
            .expect("insert");
        for r in [&compact, &other] {
            records
                .insert(super::super::record_key(r.kind, &r.id), codec::encode_record(r))
                .expect("insert");
        }
        for r in [&legacy, &compact, &other] {
            index
                .insert(super::super::received_key(r.received_at, r.kind, &r.id), Vec::new())
                .expect("index");
        }
        let nanos = at.timestamp_nanos_opt().expect("nanos");
        let q = SearchQuery {
            from_nanos: nanos,
            until_nanos: nanos + 10_000_000_000,
            filters: vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Ge(Operand::Amount("25".parse().expect("amount"))),
            }],
            order: vec![(SortField::Amount, Direction::Desc)],
            offset: 0,
            limit: 10,
        };
        let page = store.search_by(&q, Plan::Scan).expect("search");
        assert_eq!(page.total, 2);
        assert_eq!(page.records, vec![compact.clone(), legacy.clone()]);
        // The records went in behind the commit path: the search indexes, rebuilt from them as
        // on opening an older store, read the legacy record too.
        store
            .tree(TreeId::Meta)
            .expect("meta")
            .remove(super::super::search_index::MARKER)
            .expect("marker");
        super::super::search_index::ensure(&store.instance().expect("instance").trees).expect("rebuilt");
        let page = store.search(&q).expect("search");
        assert_eq!(page.total, 2);
        assert_eq!(page.records, vec![compact, legacy]);
    }

    /// Every plan answers exactly what walking the whole window answers: random records of
    /// every kind over three hours (some changed after, moving their counts and index keys),
    /// random windows, filters, orders and pages.
    #[actix_rt::test]
    async fn every_plan_answers_what_the_scan_answers() {
        use crate::ledger::RecordStatus;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        let store = SledStore::open(&path, 8 << 20).expect("store");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let base = 1_700_000_000_000_000_000i64 - 1_700_000_000_000_000_000i64 % 3_600_000_000_000;
        let span = 3 * 3_600_000_000_000i64;
        let kinds = [
            (RecordKind::Payment, &["processed", "returned", "declined"][..]),
            (RecordKind::Refund, &["processed", "returned"][..]),
            (RecordKind::EmpayrePayment, &["captured", "refunded", "pending"][..]),
            (RecordKind::EmpayreRefund, &["succeeded", "failed"][..]),
        ];
        // Round amounts (a bucket each) and several amounts sharing a bucket (1.01-1.09,
        // 10.01-10.99).
        let amounts = [
            "1.00", "1.05", "1.01", "1.09", "9.99", "10.00", "10.37", "10.5", "10.99", "25", "100.00", "0.50",
            "1234.56",
        ];
        let accounts = [Some("ACC-1"), Some("ACC-2"), Some("ACC-3"), None];
        let mut made = Vec::new();
        for i in 0..1500 {
            let (kind, statuses) = kinds[next(4) as usize];
            let status = RecordStatus::parse(kind, statuses[next(statuses.len() as u64) as usize]).expect("status");
            // Clustered in a few seconds now and then, as bursts of postings are.
            let offset = if next(3) == 0 {
                span / 2 + next(3_000_000_000) as i64
            } else {
                next(span as u64) as i64
            };
            // Some ids hold a `_`, which a `like` matches literally.
            let id = if i % 10 == 3 { format!("r{i}_") } else { format!("r{i}") };
            let mut r = crate::ledger::test_support::payment(&id, amounts[next(amounts.len() as u64) as usize], true);
            r.kind = kind;
            r.status = status;
            r.account_number =
                accounts[next(4) as usize].map(|a| crate::domain::names::AccountNumber::parse(a).expect("account"));
            r.received_at = chrono::DateTime::from_timestamp_nanos(base + offset);
            // The other facets, and a confirmation number most records have (some shared).
            r.currency = ["USD", "EUR"][next(2) as usize].into();
            r.payment_method = [Some("ach"), Some("card"), None][next(3) as usize].map(str::to_string);
            r.client_key = [Some("k1"), Some("k2"), None][next(3) as usize].map(str::to_string);
            r.confirmation_number = match next(4) {
                0 => None,
                1 => Some(format!("CF{}", i % 7)),
                // Lower case and `_` (a `like` tells case apart and takes `_` as itself).
                _ if i % 5 == 0 => Some(format!("cf_{i}")),
                _ => Some(format!("CF{i}")),
            };
            // A status only records of the second half have (their counts stay in memory).
            if i >= 750 && i % 50 == 0 {
                r.kind = RecordKind::Payment;
                r.status = RecordStatus::parse(r.kind, "disputed").expect("status");
            }
            made.push(r);
        }
        let write = |store: &SledStore, records: &[Record], index: bool| {
            store
                .write(|w| {
                    let mut set = WriteSet::default();
                    for r in records {
                        set.put_record(r);
                        if index {
                            set.put(
                                TreeId::IdxReceived,
                                super::super::received_key(r.received_at, r.kind, &r.id),
                                Vec::new(),
                            );
                        }
                    }
                    w.commit(set)
                })
                .expect("write");
        };
        // The first half's counts are stored (as the flusher does once a second), the rest
        // stay in memory: the searches read both.
        let (first, second) = made.split_at(made.len() / 2);
        for chunk in first.chunks(7) {
            write(&store, chunk, true);
        }
        store.persist_facet_counts_now();
        for chunk in second.chunks(7) {
            write(&store, chunk, true);
        }
        // Later changes: another status, an account assigned or changed, twice in one commit.
        let change_some = |made: &mut Vec<Record>, next: &mut dyn FnMut(u64) -> u64| {
            let mut changed = Vec::new();
            for r in made.iter_mut() {
                if next(5) != 0 {
                    continue;
                }
                let (_, statuses) = kinds.iter().find(|(k, _)| *k == r.kind).expect("kind");
                r.status = RecordStatus::parse(r.kind, statuses[next(statuses.len() as u64) as usize]).expect("status");
                r.account_number =
                    accounts[next(4) as usize].map(|a| crate::domain::names::AccountNumber::parse(a).expect("account"));
                if next(2) == 0 {
                    r.confirmation_number = Some(format!("CF-changed-{}", next(5)));
                }
                changed.push(r.clone());
            }
            changed
        };
        for chunk in change_some(&mut made, &mut next).chunks(3) {
            write(&store, chunk, false);
            write(&store, &chunk[..1], false);
        }
        let text = |s: &str| Operand::Text(s.to_string());
        let amount = |s: &str| Operand::Amount(s.parse().expect("amount"));
        let filter_sets: Vec<Vec<Filter>> = vec![
            vec![],
            vec![Filter {
                field: SearchField::Channel,
                condition: Condition::Eq(text("orbipay")),
            }],
            vec![Filter {
                field: SearchField::Kind,
                condition: Condition::In(vec![text("refund"), text("empayre-refund")]),
            }],
            vec![Filter {
                field: SearchField::Status,
                condition: Condition::Eq(text("returned")),
            }],
            vec![Filter {
                field: SearchField::Status,
                condition: Condition::Like("%e%".into()),
            }],
            vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Ge(amount("10.00")),
            }],
            vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Gt(amount("10.00")),
            }],
            vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Lt(amount("10.37")),
            }],
            vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Eq(amount("1.00")),
            }],
            vec![Filter {
                field: SearchField::Amount,
                condition: Condition::Between(amount("1.01"), amount("25")),
            }],
            vec![
                Filter {
                    field: SearchField::Channel,
                    condition: Condition::Eq(text("empayre")),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Le(amount("10")),
                },
                Filter {
                    field: SearchField::Status,
                    condition: Condition::In(vec![text("captured"), text("failed")]),
                },
            ],
            vec![Filter {
                field: SearchField::AccountNumber,
                condition: Condition::Eq(text("ACC-2")),
            }],
            vec![
                Filter {
                    field: SearchField::AccountNumber,
                    condition: Condition::In(vec![text("ACC-1"), text("ACC-3")]),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Ge(amount("10")),
                },
            ],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::In(vec![text("r5"), text("r77"), text("r1499"), text("nope")]),
            }],
            vec![
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Eq(text("r12")),
                },
                Filter {
                    field: SearchField::Status,
                    condition: Condition::Like("%".into()),
                },
            ],
            // `like` with a literal start (a key range), with a wildcard inside, with none
            // (a walk of the window).
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("r1%".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("r14%9".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%9".into()),
            }],
            vec![Filter {
                field: SearchField::AccountNumber,
                condition: Condition::Like("ACC-%".into()),
            }],
            vec![
                Filter {
                    field: SearchField::AccountNumber,
                    condition: Condition::Like("ACC-1%".into()),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Ge(amount("10")),
                },
            ],
            vec![Filter {
                field: SearchField::AccountNumber,
                condition: Condition::Like("AC%2".into()),
            }],
            vec![Filter {
                field: SearchField::AccountNumber,
                condition: Condition::Like("%-3".into()),
            }],
            // Currency, payment method and client key are facets; confirmation numbers indexed.
            vec![Filter {
                field: SearchField::Currency,
                condition: Condition::Eq(text("EUR")),
            }],
            vec![
                Filter {
                    field: SearchField::PaymentMethod,
                    condition: Condition::In(vec![text("card"), text("none")]),
                },
                Filter {
                    field: SearchField::Status,
                    condition: Condition::Eq(text("processed")),
                },
            ],
            vec![
                Filter {
                    field: SearchField::ClientKey,
                    condition: Condition::Eq(text("k2")),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Gt(amount("10.37")),
                },
            ],
            vec![Filter {
                field: SearchField::ClientKey,
                condition: Condition::Like("k%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Eq(text("CF3")),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::In(vec![text("CF1"), text("CF-changed-2"), text("CF144")]),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("CF1%".into()),
            }],
            vec![
                Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Like("%1".into()),
                },
                Filter {
                    field: SearchField::Currency,
                    condition: Condition::Eq(text("USD")),
                },
            ],
            // A `like` without a literal start on ids and confirmation numbers: the in-memory
            // column, alone, with the filters it checks itself, and with others (whose records
            // it reads).
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%1%".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%_".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%3_%".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%%4%9".into()),
            }],
            vec![Filter {
                field: SearchField::Id,
                condition: Condition::Like("%R1%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("%1%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("%_1%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("%cf%".into()),
            }],
            vec![Filter {
                field: SearchField::ConfirmationNumber,
                condition: Condition::Like("%changed-3".into()),
            }],
            vec![
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Like("%1%".into()),
                },
                Filter {
                    field: SearchField::Channel,
                    condition: Condition::Eq(text("orbipay")),
                },
            ],
            vec![
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Like("%2%".into()),
                },
                Filter {
                    field: SearchField::Status,
                    condition: Condition::In(vec![text("returned"), text("captured")]),
                },
            ],
            vec![
                Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Like("%3%".into()),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Ge(amount("10")),
                },
            ],
            vec![
                Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Like("%1%".into()),
                },
                Filter {
                    field: SearchField::Kind,
                    condition: Condition::In(vec![text("payment"), text("empayre-refund")]),
                },
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Like("%7%".into()),
                },
            ],
            vec![
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Like("%9".into()),
                },
                Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Gt(text("CF5")),
                },
                Filter {
                    field: SearchField::AccountNumber,
                    condition: Condition::Like("ACC%".into()),
                },
            ],
            vec![
                Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Like("%0".into()),
                },
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Lt(text("r5")),
                },
            ],
        ];
        let orders = [
            vec![],
            vec![(SortField::ReceivedAt, Direction::Desc)],
            vec![(SortField::ReceivedAt, Direction::Asc)],
            vec![
                (SortField::Amount, Direction::Desc),
                (SortField::ReceivedAt, Direction::Asc),
            ],
            vec![(SortField::Status, Direction::Asc)],
            vec![(SortField::Amount, Direction::Desc)],
            vec![(SortField::Amount, Direction::Asc)],
            vec![(SortField::Status, Direction::Desc)],
            vec![
                (SortField::Status, Direction::Asc),
                (SortField::ReceivedAt, Direction::Asc),
            ],
            vec![(SortField::AccountNumber, Direction::Asc)],
            vec![(SortField::AccountNumber, Direction::Desc)],
            vec![
                (SortField::AccountNumber, Direction::Desc),
                (SortField::ReceivedAt, Direction::Desc),
            ],
        ];
        let check = |store: &SledStore, next: &mut dyn FnMut(u64) -> u64| {
            wait_for_the_column(store);
            for filters in &filter_sets {
                for order in &orders {
                    for _ in 0..3 {
                        let a = base + next(span as u64 + 1) as i64 - 1_000;
                        let b = if next(2) == 0 {
                            a + next(span as u64) as i64
                        } else {
                            base + span + 5
                        };
                        let q = SearchQuery {
                            from_nanos: a,
                            until_nanos: b,
                            filters: filters.clone(),
                            order: order.clone(),
                            offset: [0, 3, 40, 400][next(4) as usize],
                            limit: [1, 10, 50][next(3) as usize],
                        };
                        if matches!(plan(&q), Plan::Column) {
                            // The column answers (it is ready): not the walk it falls back to.
                            let m = Matcher::new(store, &q).expect("matcher");
                            assert!(store.column_page(&m).expect("column").is_some(), "{q:?}");
                        }
                        let fast = store.search(&q).expect("search");
                        let slow = store.search_by(&q, Plan::Scan).expect("scan");
                        assert_eq!(fast.total, slow.total, "{q:?}");
                        let ids = |p: &SearchPage| p.records.iter().map(|r| (r.kind, r.id.clone())).collect::<Vec<_>>();
                        assert_eq!(ids(&fast), ids(&slow), "{q:?}");
                    }
                }
            }
        };
        check(&store, &mut next);
        // A record committed is found by the column at once (its change is still queued).
        let mut fresh = crate::ledger::test_support::payment("r-new_1", "3.00", true);
        fresh.received_at = chrono::DateTime::from_timestamp_nanos(base + span / 3);
        fresh.confirmation_number = Some("CF-new_1".into());
        write(&store, std::slice::from_ref(&fresh), true);
        for (field, pattern) in [(SearchField::Id, "%new_%"), (SearchField::ConfirmationNumber, "%-new%")] {
            let q = SearchQuery {
                from_nanos: base,
                until_nanos: base + span,
                filters: vec![Filter {
                    field,
                    condition: Condition::Like(pattern.into()),
                }],
                order: Vec::new(),
                offset: 0,
                limit: 10,
            };
            let m = Matcher::new(&store, &q).expect("matcher");
            let (total, keys) = store.column_page(&m).expect("column").expect("ready");
            assert_eq!((total, keys.len()), (1, 1), "{q:?}");
            assert_eq!(store.search(&q).expect("search").records, vec![fresh.clone()]);
        }
        // A crash: more changes, none of their counts stored, then the process ends without
        // a close. On open the counts of what the commits after the stamp touched are counted
        // again from the records.
        for chunk in change_some(&mut made, &mut next).chunks(5) {
            write(&store, chunk, false);
        }
        store.flush_now().expect("flush");
        drop(store);
        let store = crate::store::sled_store::reopened(&path);
        check(&store, &mut next);
        // The derived trees rebuilt from the records (as for a store an older binary wrote)
        // are the ones the commits (and the repair) kept.
        let dump = |store: &SledStore, tree: TreeId| {
            store
                .tree(tree)
                .expect("tree")
                .iter()
                .map(|i| i.expect("item"))
                .collect::<Vec<_>>()
        };
        let trees = [
            TreeId::CountByFacet,
            TreeId::IdxAccount,
            TreeId::IdxAmount,
            TreeId::IdxConfirmation,
        ];
        store.persist_facet_counts_now();
        let kept: Vec<_> = trees.into_iter().map(|t| dump(&store, t)).collect();
        store
            .tree(TreeId::Meta)
            .expect("meta")
            .remove(super::super::search_index::MARKER)
            .expect("remove");
        store.close().await.expect("close");
        drop(store);
        let store = crate::store::sled_store::reopened(&path);
        let rebuilt: Vec<_> = trees.into_iter().map(|t| dump(&store, t)).collect();
        assert_eq!(kept, rebuilt);
        check(&store, &mut next);
    }

    /// A threshold at a round amount (0.50, 100.00, 1000, 1200, 25000) falls on an amount
    /// bucket's edge, so the facet plan answers it from the counts without reading
    /// `idx_amount` (where it reads the records of a bucket a threshold cuts). Shown by
    /// emptying `idx_amount`: the round thresholds still answer what the full walk answers,
    /// while one inside a bucket (100.25) now misses records, as it reads that tree.
    #[actix_rt::test]
    async fn a_threshold_at_a_round_amount_reads_no_bucket() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(&dir.path().join("s"), 8 << 20).expect("store");
        let amounts = [
            "0.49", "0.50", "0.51", "99.99", "100.00", "100.01", "100.25", "100.50", "109.99", "999.99", "1000",
            "1000.01", "1199.99", "1200", "1200.01", "1250", "24999.99", "25000", "25000.01",
        ];
        let hour = 3_600_000_000_000i64;
        let base = 1_790_000_000_000_000_000i64 / hour * hour;
        let records: Vec<Record> = (0..300i64)
            .map(|i| {
                let mut r =
                    crate::ledger::test_support::payment(&format!("r{i}"), amounts[i as usize % amounts.len()], true);
                r.received_at = chrono::DateTime::from_timestamp_nanos(base + i * 23_000_000_000);
                r
            })
            .collect();
        store
            .write(|w| {
                let mut set = WriteSet::default();
                for r in &records {
                    set.put_record(r);
                    set.put(
                        TreeId::IdxReceived,
                        super::super::received_key(r.received_at, r.kind, &r.id),
                        Vec::new(),
                    );
                }
                w.commit(set)
            })
            .expect("write");
        let amount = |s: &str| Operand::Amount(s.parse().expect("amount"));
        let query = |c: &Condition| SearchQuery {
            from_nanos: base,
            until_nanos: base + 2 * hour,
            filters: vec![Filter {
                field: SearchField::Amount,
                condition: c.clone(),
            }],
            order: Vec::new(),
            offset: 0,
            limit: 7,
        };
        let ids = |page: SearchPage| (page.total, page.records.into_iter().map(|r| r.id).collect::<Vec<_>>());
        let both = |c: &Condition| {
            let q = query(c);
            assert!(matches!(plan(&q), Plan::Facets), "{c:?}");
            let planned = ids(store.search(&q).expect("search"));
            let walked = ids(store.search_by(&q, Plan::Scan).expect("walk"));
            (planned, walked)
        };
        let round = crate::store::amount_bucket::conditions_at_round_amounts();
        let cut = Condition::Gt(amount("100.25"));
        for c in round.iter().chain([&cut]) {
            let (planned, walked) = both(c);
            assert_eq!(planned, walked, "{c:?}");
            assert!(walked.0 > 0, "{c:?} matches some");
        }
        store.tree(TreeId::IdxAmount).expect("tree").clear().expect("clear");
        for c in &round {
            let (planned, walked) = both(c);
            assert_eq!(planned, walked, "{c:?} without idx_amount");
        }
        let (planned, walked) = both(&cut);
        assert!(
            planned.0 < walked.0,
            "a threshold inside a bucket reads it: {planned:?} {walked:?}"
        );
    }

    /// Waits until the store's in-memory column is built (a thread of its own builds it).
    fn wait_for_the_column(store: &SledStore) {
        for _ in 0..1000 {
            if store.instance().expect("instance").text_column.is_ready() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the in-memory column was not built within 10 s");
    }

    #[test]
    fn time_index_keys_split_back() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 5).expect("time");
        let key = super::super::received_key(at, RecordKind::EmpayreRefund, "x/1");
        let parts = split_key(&key).expect("split");
        assert_eq!(parts.nanos, 1_700_000_000_000_000_005);
        assert_eq!(parts.kind, Some(RecordKind::EmpayreRefund));
        assert_eq!(parts.id, b"x/1");
    }
}
