//! The postings search (docs/operations.md, the postings search) as SQL over `records`: the window on the
//! `records_received` index, the filters as conditions, the order with the same tie-break the
//! sled backend uses (receive time, kind, id, in the first order's direction; text compares
//! byte-wise, as the columns are `COLLATE "C"`), and the total from a count over the same
//! conditions (an index-only scan when nothing else filters).

use deadpool_postgres::Object;
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;

use super::reads::unavailable;
use super::rows;
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
            format!("{c} LIKE {}", bind(Param::Text(like_pattern(pattern))))
        }
        Condition::Like(_) => "false".to_string(),
    }
}

pub async fn search(conn: &Object, q: &SearchQuery) -> Result<SearchPage, StoreError> {
    if q.from_nanos >= q.until_nanos {
        return Ok(SearchPage {
            total: 0,
            records: Vec::new(),
        });
    }
    let compiled = compile(q);
    let limit = Param::Count(i64::try_from(q.limit).unwrap_or(i64::MAX));
    let offset = Param::Count(i64::try_from(q.offset).unwrap_or(i64::MAX));
    let n = compiled.params.len();
    let page_sql = format!(
        "SELECT {} FROM records WHERE {} ORDER BY {} LIMIT ${} OFFSET ${}",
        rows::RECORD_COLUMNS,
        compiled.conditions,
        compiled.order,
        n + 1,
        n + 2
    );
    let count_sql = format!("SELECT count(*) FROM records WHERE {}", compiled.conditions);
    let params: Vec<&(dyn ToSql + Sync)> = compiled.params.iter().map(Param::as_sql).collect();
    let mut page_params = params.clone();
    page_params.push(limit.as_sql());
    page_params.push(offset.as_sql());
    // Not cached: filter combinations are many, and a connection's statement cache keeps
    // every statement it saw. Both run in one round trip (plus their parses).
    let (page, count) = tokio::join!(
        conn.query(page_sql.as_str(), &page_params),
        conn.query_one(count_sql.as_str(), &params)
    );
    let page = page.map_err(unavailable("searching"))?;
    let total: i64 = count
        .map_err(unavailable("counting a search"))?
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
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
            "received_at >= $1 AND received_at < $2 AND account_number = $3 AND amount >= $4 AND amount <= $5 \
             AND status = ANY($6::text[]) AND id LIKE $7 AND false"
        );
        assert_eq!(c.params[6], Param::Text("10\\_%".into()), "only % is a wildcard");
        assert_eq!(c.order, "received_at ASC, kind ASC, id ASC");
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
