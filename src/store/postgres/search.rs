//! The postings search (docs/operations.md, the postings search) as SQL over `records`: the window on the
//! `records_received` index, the filters as conditions, the order with the same tie-break the
//! sled backend uses (receive time, kind, id, in the first order's direction; text compares
//! byte-wise, as the columns are `COLLATE "C"`), and the exact total.
//!
//! The total of a search that filters only on channel, kind, status and amount (or not at all)
//! is summed from `record_counts` (see `counts`): the window's whole hours and minutes from
//! their counts, its ragged ends (less than a minute each) counted on the `records_received`
//! index. A count row is for one kind, status and amount bucket, so the filters decide each row
//! wholly — except an amount threshold that falls inside a bucket (one with more than two
//! significant digits, such as 12.34; round amounts such as 100.00 or 1200 bound theirs): then, and for every other filter, the window's matching
//! records are counted.

use deadpool_postgres::Object;
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

use super::counts::{bucket_of, HOUR_MICROS, MINUTE_MICROS};
use super::reads::unavailable;
use super::rows;
use crate::ledger::RecordKind;
use crate::store::amount_bucket::is_bucket_floor;
use crate::store::{
    Condition, Direction, Filter, Operand, SearchField, SearchPage, SearchQuery, SortField, StoreError,
};

/// One SQL parameter of a search.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Text(String),
    Texts(Vec<String>),
    Amount(Decimal),
    Amounts(Vec<Decimal>),
    Bucket(i16),
    Buckets(Vec<i16>),
    Time(chrono::DateTime<chrono::Utc>),
    Count(i64),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Param::Text(v) => v,
            Param::Texts(v) => v,
            Param::Amount(v) => v,
            Param::Amounts(v) => v,
            Param::Bucket(v) => v,
            Param::Buckets(v) => v,
            Param::Time(v) => v,
            Param::Count(v) => v,
        }
    }
}

/// A search as SQL: the `WHERE` clause, the `ORDER BY` and the parameters.
#[derive(Debug)]
struct Compiled {
    conditions: String,
    order: String,
    params: Vec<Param>,
}

fn column(field: SearchField) -> &'static str {
    match field {
        SearchField::Channel => "channel",
        SearchField::Kind => "kind",
        SearchField::Id => "id",
        SearchField::AccountNumber => "account_number",
        SearchField::Status => "status",
        SearchField::Amount => "amount",
        SearchField::Currency => "currency",
        SearchField::ConfirmationNumber => "confirmation_number",
        SearchField::PaymentMethod => "payment_method",
        SearchField::ClientKey => "client_key",
    }
}

/// Every record kind, and the channel each belongs to (the `records.kind` CHECK lists the same).
const KINDS: [RecordKind; 4] = [
    RecordKind::Payment,
    RecordKind::Refund,
    RecordKind::EmpayrePayment,
    RecordKind::EmpayreRefund,
];

/// `'{payment,refund,...}'::text[]`: every kind, as a literal (they are fixed words).
fn every_kind() -> String {
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
    format!("'{{{}}}'::text[]", kinds.join(","))
}

/// The channel of the row's `kind`, as SQL (the pairs of the merged plan have no channel column).
fn channel_of_kind() -> String {
    let arms: String = KINDS
        .iter()
        .map(|k| format!(" WHEN '{}' THEN '{}'", k.as_str(), k.channel().as_str()))
        .collect();
    format!("(CASE kind{arms} END) COLLATE \"C\"")
}

/// Whether a filter is a `like` read on the trigram indexes of migration 7: on an id, account
/// or confirmation number, without a literal start, with a run of three literal characters or
/// more (a shorter pattern would have the index hand back most of the table to check).
fn on_trigrams(filter: &Filter) -> bool {
    let field = matches!(
        filter.field,
        SearchField::Id | SearchField::AccountNumber | SearchField::ConfirmationNumber
    );
    match &filter.condition {
        Condition::Like(pattern) => field && pattern.starts_with('%') && longest_literal(pattern) >= 3,
        _ => false,
    }
}

/// The longest run of characters between the `%`s of a `like` pattern.
fn longest_literal(pattern: &str) -> usize {
    pattern.split('%').map(|run| run.chars().count()).max().unwrap_or(0)
}

/// `%` is the only wildcard of the search's `like`: `_` and `\` match themselves.
fn like_pattern(pattern: &str) -> String {
    pattern.replace('\\', "\\\\").replace('_', "\\_")
}

fn compile(q: &SearchQuery) -> Compiled {
    let mut params = vec![
        Param::Time(chrono::DateTime::from_timestamp_nanos(q.from_nanos)),
        Param::Time(chrono::DateTime::from_timestamp_nanos(q.until_nanos)),
    ];
    let mut conditions = vec!["received_at >= $1".to_string(), "received_at < $2".to_string()];
    // The indexes that serve an id (the primary key) or a status (`records_kind_status`) start
    // with the kind; naming every kind lets the planner read them one kind at a time instead
    // of scanning the whole index (PostgreSQL 15 cannot skip over a leading column).
    if q.filters
        .iter()
        .any(|f| matches!(f.field, SearchField::Id | SearchField::Status))
    {
        conditions.push(format!("kind = ANY({})", every_kind()));
    }
    for filter in &q.filters {
        conditions.push(condition(filter, &mut params));
    }
    let first = q.order.first().map_or(Direction::Asc, |o| o.1);
    // A missing value sorts first, as in the sled backend. Only account_number can be NULL;
    // the other columns are NOT NULL and get no NULLS clause, so that an order on
    // (received_at, kind, id) is the `records_received` index read forwards or backwards (a
    // NULLS clause other than the index's own makes the planner sort the whole window).
    let dir = |d: Direction, nullable: bool| match (d, nullable) {
        (Direction::Asc, true) => "ASC NULLS FIRST",
        (Direction::Desc, true) => "DESC NULLS LAST",
        (Direction::Asc, false) => "ASC",
        (Direction::Desc, false) => "DESC",
    };
    let mut order: Vec<String> = q
        .order
        .iter()
        .map(|(field, d)| {
            let (c, nullable) = match field {
                SortField::ReceivedAt => ("received_at", false),
                SortField::Amount => ("amount", false),
                SortField::AccountNumber => ("account_number", true),
                SortField::Status => ("status", false),
            };
            format!("{c} {}", dir(*d, nullable))
        })
        .collect();
    for tie in ["received_at", "kind", "id"] {
        order.push(format!("{tie} {}", dir(first, false)));
    }
    Compiled {
        conditions: conditions.join(" AND "),
        order: order.join(", "),
        params,
    }
}

/// One filter as a condition; its operands become parameters. A text field compared with an
/// amount (or the reverse) matches nothing, as in the sled backend; so does a missing value.
fn condition(filter: &Filter, params: &mut Vec<Param>) -> String {
    let c = column(filter.field);
    let amount = filter.field == SearchField::Amount;
    let mut bind = |p: Param| {
        params.push(p);
        format!("${}", params.len())
    };
    let mut operand = |o: &Operand| -> Option<String> {
        match (o, amount) {
            (Operand::Text(t), false) => Some(bind(Param::Text(t.clone()))),
            (Operand::Amount(a), true) => Some(bind(Param::Amount(*a))),
            _ => None,
        }
    };
    let compare = |op: &str, rhs: Option<String>| match rhs {
        Some(rhs) => format!("{c} {op} {rhs}"),
        None => "false".to_string(),
    };
    match &filter.condition {
        Condition::Eq(o) => compare("=", operand(o)),
        Condition::Lt(o) => compare("<", operand(o)),
        Condition::Gt(o) => compare(">", operand(o)),
        Condition::Le(o) => compare("<=", operand(o)),
        Condition::Ge(o) => compare(">=", operand(o)),
        Condition::Between(lo, hi) => match (operand(lo), operand(hi)) {
            (Some(lo), Some(hi)) => format!("{c} >= {lo} AND {c} <= {hi}"),
            _ => "false".to_string(),
        },
        // One value: an equality, which the planner can match with an index's order.
        Condition::In(list) if list.len() == 1 => compare("=", operand(&list[0])),
        Condition::In(list) => {
            if amount {
                let values: Vec<Decimal> = list
                    .iter()
                    .filter_map(|o| match o {
                        Operand::Amount(a) => Some(*a),
                        Operand::Text(_) => None,
                    })
                    .collect();
                format!("{c} = ANY({}::numeric[])", bind(Param::Amounts(values)))
            } else {
                let values: Vec<String> = list
                    .iter()
                    .filter_map(|o| match o {
                        Operand::Text(t) => Some(t.clone()),
                        Operand::Amount(_) => None,
                    })
                    .collect();
                format!("{c} = ANY({}::text[])", bind(Param::Texts(values)))
            }
        }
        Condition::Like(pattern) if !amount => {
            let like = bind(Param::Text(like_pattern(pattern)));
            if on_trigrams(filter) {
                // No literal start for a b-tree range: the trigram index of migration 7, which
                // is on this expression (so that no other pattern is planned on it).
                format!("({c} || '') LIKE {like}")
            } else {
                format!("{c} LIKE {like}")
            }
        }
        Condition::Like(_) => "false".to_string(),
    }
}

/// Microseconds since the epoch of a window bound, as the driver sends it (whole microseconds
/// since 2000-01-01, cut toward zero), so that slots and ends meet exactly where the page's
/// `received_at >= $1` does.
fn database_micros(nanos: i64) -> i64 {
    const Y2K_MICROS: i64 = 946_684_800_000_000;
    let since = i128::from(nanos) - i128::from(Y2K_MICROS) * 1000;
    i64::try_from(since / 1000)
        .unwrap_or(if since < 0 { i64::MIN } else { i64::MAX })
        .saturating_add(Y2K_MICROS)
}

fn time(micros: i64) -> Param {
    Param::Time(chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default())
}

/// The total of a search from `record_counts`: the SQL and its parameters, or None when a
/// filter is not on channel, kind, status or amount. The query answers (counted matches,
/// count rows an amount threshold cuts, matches at the ends).
fn counted_total(q: &SearchQuery) -> Option<(String, Vec<Param>)> {
    let countable = q.filters.iter().all(|f| {
        matches!(
            f.field,
            SearchField::Channel | SearchField::Kind | SearchField::Status | SearchField::Amount
        )
    });
    if !countable {
        return None;
    }
    let (from, until) = (database_micros(q.from_nanos), database_micros(q.until_nanos));
    let ceil = |t: i64, size: i64| t.div_euclid(size) + i64::from(t.rem_euclid(size) != 0);
    let (first_minute, end_minute) = (ceil(from, MINUTE_MICROS), until.div_euclid(MINUTE_MICROS));
    if first_minute >= end_minute {
        return None;
    }
    let (first_hour, end_hour) = (ceil(from, HOUR_MICROS), until.div_euclid(HOUR_MICROS));
    let per_hour = HOUR_MICROS / MINUTE_MICROS;
    // Whole minutes before the first whole hour and after the last; whole hours between.
    let (minutes, hours) = if first_hour < end_hour {
        (
            [first_minute, first_hour * per_hour, end_hour * per_hour, end_minute],
            [first_hour, end_hour],
        )
    } else {
        ([first_minute, end_minute, 0, 0], [0, 0])
    };
    let mut params = vec![
        time(from),
        time(until),
        time(first_minute * MINUTE_MICROS),
        time(end_minute * MINUTE_MICROS),
    ];
    params.extend(minutes.iter().chain(&hours).map(|&slot| Param::Count(slot)));
    let mut record_conditions = Vec::new();
    let mut count_conditions = Vec::new();
    let mut verdicts = vec!["2".to_string()];
    for filter in &q.filters {
        record_conditions.push(condition(filter, &mut params));
        if filter.field == SearchField::Amount {
            verdicts.push(amount_verdict(&filter.condition, &mut params));
        } else {
            count_conditions.push(condition(filter, &mut params));
        }
    }
    let and = |conditions: &[String]| conditions.iter().map(|c| format!(" AND {c}")).collect::<String>();
    let (records_and, counts_and) = (and(&record_conditions), and(&count_conditions));
    let sql = format!(
        "WITH c AS (SELECT n, LEAST({}) AS v FROM record_counts \
           WHERE ((level = 1 AND ((slot >= $5 AND slot < $6) OR (slot >= $7 AND slot < $8))) \
                  OR (level = 2 AND slot >= $9 AND slot < $10)){counts_and}) \
         SELECT (SELECT coalesce(sum(n), 0) FROM c WHERE v = 2)::bigint, \
                (SELECT count(*) FROM c WHERE v = 1 AND n <> 0), \
                (SELECT count(*) FROM records WHERE received_at >= $1 AND received_at < $3{records_and}) \
                + (SELECT count(*) FROM records WHERE received_at >= $4 AND received_at < $2{records_and})",
        verdicts.join(", ")
    );
    Some((sql, params))
}

/// What an amount condition says of every amount of a count row's bucket: 2 all match, 0 none
/// does, 1 some may (the threshold is inside the bucket). The thresholds' buckets are computed
/// here, as the batch writer computes the rows' (`store::amount_bucket`); only two things
/// about buckets are used: they never decrease as amounts grow, and a round amount's bucket
/// holds that amount only.
fn amount_verdict(c: &Condition, params: &mut Vec<Param>) -> String {
    // `up`: the amounts above the threshold match; `inclusive`: the threshold itself does.
    let mut compare = |o: &Operand, up: bool, inclusive: bool| match o {
        Operand::Amount(a) => {
            params.push(Param::Bucket(bucket_of(*a)));
            let t = format!("${}::smallint", params.len());
            let (yes, no) = if up { (">", "<") } else { ("<", ">") };
            let at_threshold = match (is_bucket_floor(*a), inclusive) {
                (true, true) => 2,
                (true, false) => 0,
                (false, _) => 1,
            };
            format!("CASE WHEN bucket {yes} {t} THEN 2 WHEN bucket {no} {t} THEN 0 ELSE {at_threshold} END")
        }
        Operand::Text(_) => "0".to_string(),
    };
    match c {
        Condition::Ge(o) => compare(o, true, true),
        Condition::Gt(o) => compare(o, true, false),
        Condition::Le(o) => compare(o, false, true),
        Condition::Lt(o) => compare(o, false, false),
        Condition::Between(lo, hi) => {
            let lo = compare(lo, true, true);
            format!("LEAST({lo}, {})", compare(hi, false, true))
        }
        Condition::Eq(o) => compare_equal(std::slice::from_ref(o), params),
        Condition::In(list) => compare_equal(list, params),
        Condition::Like(_) => "0".to_string(),
    }
}

/// An amount equal to one of `list`: a bucket of its own matches wholly, a shared one maybe.
fn compare_equal(list: &[Operand], params: &mut Vec<Param>) -> String {
    let (mut whole, mut some) = (Vec::new(), Vec::new());
    for o in list {
        if let Operand::Amount(a) = o {
            if is_bucket_floor(*a) {
                whole.push(bucket_of(*a));
            } else {
                some.push(bucket_of(*a));
            }
        }
    }
    params.push(Param::Buckets(whole));
    params.push(Param::Buckets(some));
    format!(
        "CASE WHEN bucket = ANY(${}::smallint[]) THEN 2 WHEN bucket = ANY(${}::smallint[]) THEN 1 ELSE 0 END",
        params.len() - 1,
        params.len()
    )
}

/// The exact total: from the counts where they answer, else a count of the window's matches.
async fn total(conn: &Object, q: &SearchQuery, compiled: &Compiled) -> Result<i64, StoreError> {
    if let Some((sql, params)) = counted_total(q) {
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
        let row = conn
            .query_one(sql.as_str(), &params)
            .await
            .map_err(unavailable("counting a search"))?;
        let get = |i: usize| row.try_get::<_, i64>(i).map_err(|e| StoreError::Corrupt(e.to_string()));
        let (counted, cut, ends) = (get(0)?, get(1)?, get(2)?);
        if cut == 0 {
            return Ok(counted + ends);
        }
    }
    let count_sql = format!("SELECT count(*) FROM records WHERE {}", compiled.conditions);
    let params: Vec<&(dyn ToSql + Sync)> = compiled.params.iter().map(Param::as_sql).collect();
    conn.query_one(count_sql.as_str(), &params)
        .await
        .map_err(unavailable("counting a search"))?
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Whether the search is read as a merge of `records_kind_status` ranges, one per (kind,
/// status) pair: it filters on kind, channel or status (or orders by status), besides those
/// only on amount (carried in the index), and orders by nothing but status and receive time,
/// all in one direction. Within one pair such an order is the index's (receive time, id), so
/// the first `offset + limit` entries of each range hold the page.
fn merged_by_kind_and_status(q: &SearchQuery) -> bool {
    let facet_filter = q
        .filters
        .iter()
        .any(|f| matches!(f.field, SearchField::Kind | SearchField::Channel | SearchField::Status));
    let only_facets = q.filters.iter().all(|f| {
        matches!(
            f.field,
            SearchField::Kind | SearchField::Channel | SearchField::Status | SearchField::Amount
        )
    });
    let by_status = q.order.first().is_some_and(|o| o.0 == SortField::Status);
    let first = q.order.first().map_or(Direction::Asc, |o| o.1);
    let merge_order = q
        .order
        .iter()
        .all(|(f, d)| matches!(f, SortField::Status | SortField::ReceivedAt) && *d == first);
    only_facets && merge_order && (facet_filter || by_status)
}

/// The (kind, status) pairs the records hold that the kind, channel and status filters let
/// through: a skip scan of `records_kind_status` (one index probe per pair; PostgreSQL 15 has
/// no skip scan of its own), over the whole table, so a pair without records in the window
/// only costs its empty range.
async fn kind_status_pairs(conn: &Object, q: &SearchQuery) -> Result<Vec<(String, String)>, StoreError> {
    let mut params = Vec::new();
    let conditions: String = q
        .filters
        .iter()
        .filter(|f| matches!(f.field, SearchField::Kind | SearchField::Channel | SearchField::Status))
        .map(|f| format!(" AND {}", condition(f, &mut params)))
        .collect();
    let sql = format!(
        "WITH RECURSIVE p(kind, status) AS ( \
           (SELECT kind, status FROM records ORDER BY kind, status LIMIT 1) \
           UNION ALL \
           SELECT n.kind, n.status FROM p CROSS JOIN LATERAL \
             (SELECT r.kind, r.status FROM records r WHERE (r.kind, r.status) > (p.kind, p.status) \
              ORDER BY r.kind, r.status LIMIT 1) AS n) \
         SELECT kind, status FROM (SELECT kind, status, {} AS channel FROM p) AS pairs WHERE true{conditions}",
        channel_of_kind()
    );
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
    let rows = conn
        .query(sql.as_str(), &params)
        .await
        .map_err(unavailable("searching"))?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The page as a merge of one `records_kind_status` range per pair: each range gives its first
/// `offset + limit` keys in the search's order (an index-only read, the amount filters checked
/// on the entries), the keys are ordered and cut to the page, and only the page's rows are read.
fn merged_page_sql(q: &SearchQuery, pairs: &[(String, String)], order: &str) -> (String, Vec<Param>) {
    let amounts_only = SearchQuery {
        filters: q
            .filters
            .iter()
            .filter(|f| f.field == SearchField::Amount)
            .cloned()
            .collect(),
        ..q.clone()
    };
    let Compiled {
        conditions, mut params, ..
    } = compile(&amounts_only);
    let d = match q.order.first().map_or(Direction::Asc, |o| o.1) {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    };
    let reach = Param::Count(i64::try_from(q.offset.saturating_add(q.limit)).unwrap_or(i64::MAX));
    params.push(reach);
    let reach = params.len();
    let branches: Vec<String> = pairs
        .iter()
        .map(|(kind, status)| {
            params.push(Param::Text(kind.clone()));
            params.push(Param::Text(status.clone()));
            let (k, s) = (params.len() - 1, params.len());
            format!(
                "(SELECT kind, id, status, received_at FROM records WHERE kind = ${k} AND status = ${s} AND {conditions} \
                 ORDER BY received_at {d}, id {d} LIMIT ${reach})"
            )
        })
        .collect();
    params.push(Param::Count(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    params.push(Param::Count(i64::try_from(q.offset).unwrap_or(i64::MAX)));
    let (limit, offset) = (params.len() - 1, params.len());
    let sql = format!(
        "SELECT {} FROM records WHERE (kind, id) IN \
           (SELECT kind, id FROM ({}) AS keys ORDER BY {order} LIMIT ${limit} OFFSET ${offset}) \
         ORDER BY {order}",
        rows::RECORD_COLUMNS,
        branches.join(" UNION ALL ")
    );
    (sql, params)
}

pub async fn search(conn: &Object, q: &SearchQuery) -> Result<SearchPage, StoreError> {
    if q.from_nanos >= q.until_nanos {
        return Ok(SearchPage {
            total: 0,
            records: Vec::new(),
        });
    }
    let compiled = compile(q);
    if merged_by_kind_and_status(q) {
        // The total first: a range whose entries the amount filters mostly refuse is walked
        // to its end, so a page past the last match (none at all, often) is not read.
        let (pairs, total) = tokio::join!(kind_status_pairs(conn, q), total(conn, q, &compiled));
        let (pairs, total) = (pairs?, total?);
        let records = if pairs.is_empty() || usize::try_from(total).unwrap_or(0) <= q.offset {
            Vec::new()
        } else {
            let (sql, params) = merged_page_sql(q, &pairs, &compiled.order);
            let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
            let page = conn
                .query(sql.as_str(), &params)
                .await
                .map_err(unavailable("searching"))?;
            page.iter().map(rows::record_from_row).collect::<Result<_, _>>()?
        };
        return Ok(SearchPage {
            total: total as usize,
            records,
        });
    }
    let limit = Param::Count(i64::try_from(q.limit).unwrap_or(i64::MAX));
    let offset = Param::Count(i64::try_from(q.offset).unwrap_or(i64::MAX));
    let n = compiled.params.len();
    let (columns, conditions, order) = (rows::RECORD_COLUMNS, &compiled.conditions, &compiled.order);
    let page_sql = if q.filters.iter().any(on_trigrams) {
        // The planner guesses a pattern without a literal start matches far more records than
        // it does (a trigram index has no statistics) and would walk an ordered index for the
        // page, checking the pattern on every record: the matches are found first (a fence:
        // planned for all of its rows), then ordered.
        format!(
            "SELECT {columns} FROM (SELECT {columns} FROM records WHERE {conditions} OFFSET 0) AS matches \
             ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        )
    } else if q.offset == 0 {
        format!(
            "SELECT {columns} FROM records WHERE {conditions} ORDER BY {order} LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        )
    } else {
        // A later page: the rows before it are skipped as index entries (every index that
        // serves an order holds the order's columns and the key), and only the page's rows
        // are read; skipping rows cost a random read each in account or amount order.
        format!(
            "SELECT {columns} FROM records WHERE (kind, id) IN \
               (SELECT kind, id FROM records WHERE {conditions} ORDER BY {order} LIMIT ${} OFFSET ${}) \
             ORDER BY {order}",
            n + 1,
            n + 2
        )
    };
    let mut page_params: Vec<&(dyn ToSql + Sync)> = compiled.params.iter().map(Param::as_sql).collect();
    page_params.push(limit.as_sql());
    page_params.push(offset.as_sql());
    // Not cached: filter combinations are many, and a connection's statement cache keeps
    // every statement it saw. Both run in one round trip (plus their parses).
    let (page, total) = tokio::join!(conn.query(page_sql.as_str(), &page_params), total(conn, q, &compiled));
    let page = page.map_err(unavailable("searching"))?;
    let total = total?;
    Ok(SearchPage {
        total: total as usize,
        records: page.iter().map(rows::record_from_row).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(filters: Vec<Filter>, order: Vec<(SortField, Direction)>) -> SearchQuery {
        SearchQuery {
            from_nanos: 0,
            until_nanos: 1_000,
            filters,
            order,
            offset: 0,
            limit: 10,
        }
    }

    #[test]
    fn filters_become_conditions_with_parameters() {
        let q = query(
            vec![
                Filter {
                    field: SearchField::AccountNumber,
                    condition: Condition::Eq(Operand::Text("ACC-1".into())),
                },
                Filter {
                    field: SearchField::Amount,
                    condition: Condition::Between(
                        Operand::Amount(Decimal::new(100, 2)),
                        Operand::Amount(Decimal::new(900, 2)),
                    ),
                },
                Filter {
                    field: SearchField::Status,
                    condition: Condition::In(vec![Operand::Text("processed".into())]),
                },
                Filter {
                    field: SearchField::Id,
                    condition: Condition::Like("10_%".into()),
                },
                Filter {
                    field: SearchField::Currency,
                    condition: Condition::Gt(Operand::Amount(Decimal::ONE)),
                },
            ],
            vec![],
        );
        let c = compile(&q);
        assert_eq!(
            c.conditions,
            "received_at >= $1 AND received_at < $2 \
             AND kind = ANY('{payment,refund,empayre-payment,empayre-refund}'::text[]) \
             AND account_number = $3 AND amount >= $4 AND amount <= $5 AND status = $6 AND id LIKE $7 AND false"
        );
        assert_eq!(c.params[6], Param::Text("10\\_%".into()), "only % is a wildcard");
        let like = |pattern: &str| {
            compile(&query(
                vec![Filter {
                    field: SearchField::ConfirmationNumber,
                    condition: Condition::Like(pattern.into()),
                }],
                vec![],
            ))
            .conditions
        };
        assert!(
            like("%45").ends_with(" confirmation_number LIKE $3"),
            "too short for trigrams"
        );
        assert!(like("%4%56%").ends_with(" confirmation_number LIKE $3"));
        assert!(
            like("%456").ends_with("(confirmation_number || '') LIKE $3"),
            "trigrams"
        );
        assert!(like("%45%678").ends_with("(confirmation_number || '') LIKE $3"));
        assert!(
            like("456%").ends_with(" confirmation_number LIKE $3"),
            "a literal start"
        );
        assert_eq!(c.order, "received_at ASC, kind ASC, id ASC");
    }

    /// A threshold at a round amount (0.50, 100.00, 1000, 1200, 25000) falls on a bucket's edge:
    /// the counts query finds no count row it cuts, so the total is summed from
    /// `record_counts` (not a count of the window's records), and it equals that count. A
    /// threshold inside a bucket (100.25) cuts rows: the observable tells the two apart.
    #[tokio::test]
    async fn a_threshold_at_a_round_amount_is_answered_from_the_counts() {
        use crate::store::conformance::{pg, store_records};
        let mut settings = crate::settings::Settings::defaults().store.postgres;
        settings.url = pg::test_database().url;
        settings.pool_size = 2;
        let store = super::super::PgStore::open(&settings).expect("store");
        let amounts = [
            "0.49", "0.50", "0.51", "99.99", "100.00", "100.01", "100.25", "100.50", "109.99", "999.99", "1000",
            "1000.01", "1199.99", "1200", "1200.01", "1250", "24999.99", "25000", "25000.01",
        ];
        // Two whole hours: the window has no ragged ends, so whatever the counts do not answer
        // must be counted from the records.
        let hour = 3_600_000_000i64;
        let base = 1_790_000_000_000_000i64 / hour * hour;
        let records: Vec<crate::ledger::Record> = (0..300i64)
            .map(|i| {
                let mut r =
                    crate::ledger::test_support::payment(&format!("r{i}"), amounts[i as usize % amounts.len()], true);
                r.received_at = chrono::DateTime::from_timestamp_micros(base + i * 23_000_000).expect("time");
                r
            })
            .collect();
        store_records(&store, records.clone(), true).await;
        let conn = store.inner.pool.get().await.expect("connection");
        let amount = |s: &str| Operand::Amount(s.parse().expect("amount"));
        let count_model = |c: &Condition| {
            records
                .iter()
                .filter(|r| {
                    let is = |o: &Operand, f: fn(std::cmp::Ordering) -> bool| match o {
                        Operand::Amount(a) => f(r.amount.cmp(a)),
                        Operand::Text(_) => false,
                    };
                    match c {
                        Condition::Gt(o) => is(o, |o| o.is_gt()),
                        Condition::Ge(o) => is(o, |o| o.is_ge()),
                        Condition::Lt(o) => is(o, |o| o.is_lt()),
                        Condition::Le(o) => is(o, |o| o.is_le()),
                        Condition::Eq(o) => is(o, |o| o.is_eq()),
                        Condition::In(list) => list.iter().any(|o| is(o, |o| o.is_eq())),
                        Condition::Between(lo, hi) => is(lo, |o| o.is_ge()) && is(hi, |o| o.is_le()),
                        Condition::Like(_) => false,
                    }
                })
                .count()
        };
        let cut_rows = |c: &Condition| {
            let q = SearchQuery {
                from_nanos: base * 1000,
                until_nanos: (base + 2 * hour) * 1000,
                filters: vec![Filter {
                    field: SearchField::Amount,
                    condition: c.clone(),
                }],
                order: Vec::new(),
                offset: 0,
                limit: 3,
            };
            let conn = &conn;
            async move {
                let (sql, params) = counted_total(&q).expect("countable");
                let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(Param::as_sql).collect();
                let row = conn.query_one(sql.as_str(), &params).await.expect("counts");
                let cut: i64 = row.get(1);
                let page = search(conn, &q).await.expect("search");
                (cut, page.total)
            }
        };
        let round = crate::store::amount_bucket::conditions_at_round_amounts();
        for c in &round {
            let (cut, total) = cut_rows(c).await;
            assert_eq!(cut, 0, "{c:?} cuts no bucket");
            assert_eq!(total, count_model(c), "{c:?}");
        }
        for c in [
            Condition::Gt(amount("100.25")),
            Condition::Le(amount("1250.00")),
            Condition::In(vec![amount("100.00"), amount("100.50")]),
        ] {
            let (cut, total) = cut_rows(&c).await;
            assert!(cut > 0, "{c:?} cuts a bucket");
            assert_eq!(total, count_model(&c), "{c:?}");
        }
    }

    #[test]
    fn ties_follow_the_first_order_direction() {
        let c = compile(&query(
            vec![],
            vec![
                (SortField::Amount, Direction::Desc),
                (SortField::AccountNumber, Direction::Asc),
                (SortField::Status, Direction::Asc),
            ],
        ));
        assert_eq!(
            c.order,
            "amount DESC, account_number ASC NULLS FIRST, status ASC, received_at DESC, kind DESC, id DESC"
        );
    }
}
