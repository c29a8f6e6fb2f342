//! The read side operators use: the postings search over the time index, an account's recent
//! journal, and the ordered record walk of `export`. Nothing here writes.
//!
//! The search never scans `records`: it walks the `idx_received` range of the query's window
//! (keys are `order_preserving_i64(nanos) ++ kind tag ++ id`), answers what it can from the key
//! alone (time, kind, channel, id), and reads a record only when a filter or the order needs one
//! of its fields — then through a borrowed, partial view instead of the whole `Record`. Whole
//! records are deserialized only for the page it returns.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{codec, order_preserving_i64, received_key_at, SledStore, StoreError, TreeId};
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

impl SledStore {
    /// Runs a search over the time index of its window; see the module notes for the cost model.
    pub(crate) fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        if q.from_nanos >= q.until_nanos {
            return Ok(SearchPage {
                total: 0,
                records: Vec::new(),
            });
        }
        let (key_filters, record_filters): (Vec<&Filter>, Vec<&Filter>) =
            q.filters.iter().partition(|f| in_key(f.field));
        let range = self
            .tree(TreeId::IdxReceived)?
            .range(order_preserving_i64(q.from_nanos)..order_preserving_i64(q.until_nanos));
        let first_direction = q.order.first().map_or(Direction::Asc, |o| o.1);
        let index_order = q.order.is_empty() || (q.order.len() == 1 && q.order[0].0 == SortField::ReceivedAt);
        let records = self.tree(TreeId::Records)?;
        let matches = |parts: &KeyParts<'_>, slim: Option<&Slim<'_>>| -> Result<bool, StoreError> {
            for f in &key_filters {
                if !key_filter_holds(f, parts) {
                    return Ok(false);
                }
            }
            if let Some(slim) = slim {
                for f in &record_filters {
                    if !record_filter_holds(f, slim)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        };
        let needs_slim = !record_filters.is_empty() || !index_order;
        let unfiltered = q.filters.is_empty() && index_order;

        let mut total = 0usize;
        let mut page_keys: Vec<sled::IVec> = Vec::new();
        let mut hits: Vec<Hit> = Vec::new();
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> =
            if index_order && first_direction == Direction::Desc {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
        for item in iter {
            let (key, _) = item?;
            let parts = split_key(&key)?;
            if !matches(&parts, None)? {
                continue;
            }
            if needs_slim {
                let Some(bytes) = records.get(parts.record_key)? else {
                    return Err(missing_record(&parts));
                };
                let slim = if codec::is_json(&bytes) {
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?
                } else {
                    Slim::from(codec::record_fields(&bytes)?)
                };
                if !matches(&parts, Some(&slim))? {
                    continue;
                }
                if !index_order {
                    hits.push(hit(&q.order, key.clone(), parts.nanos, &slim)?);
                    continue;
                }
            }
            total += 1;
            if total > q.offset && page_keys.len() < q.limit {
                page_keys.push(key.clone());
            }
            if unfiltered && page_keys.len() >= q.limit {
                // The page is full and the total comes from the per-minute counts.
                break;
            }
        }
        if unfiltered {
            total = self.count_received(q.from_nanos, q.until_nanos)?;
        }
        if !index_order {
            total = hits.len();
            hits.sort_by(|a, b| compare_hits(a, b, &q.order, first_direction));
            page_keys = hits.into_iter().skip(q.offset).take(q.limit).map(|h| h.key).collect();
        }
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
        let page = store
            .search(&SearchQuery {
                from_nanos: nanos,
                until_nanos: nanos + 10_000_000_000,
                filters: vec![Filter {
                    field: SearchField::Amount,
                    condition: Condition::Ge(Operand::Amount("25".parse().expect("amount"))),
                }],
                order: vec![(SortField::Amount, Direction::Desc)],
                offset: 0,
                limit: 10,
            })
            .expect("search");
        assert_eq!(page.total, 2);
        assert_eq!(page.records, vec![compact, legacy]);
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
