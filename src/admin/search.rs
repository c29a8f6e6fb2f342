//! The search model of docs/operations.md, the postings search (the operations-search shape: paging,
//! searchParameters, orderParameters), checked and turned into a `store::SearchQuery`.
//! Every refusal names the JSON path of what is wrong.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{from_value, parse_object, AdminError, AdminErrorCode};
use super::views::RecordView;
use crate::ledger::RecordKind;
use crate::store::{Condition, Direction, Filter, Operand, SearchField, SearchQuery, SortField};

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;

const NAMES: &str = "received_at, channel, kind, id, account_number, status, amount, currency, \
                     confirmation_number, payment_method, client_key";
const METHODS: &str = "between, in, like, =, <, >, <=, >=";
const SORT_FIELDS: &str = "received_at, amount, account_number, status";

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "paging": {"page": 1, "size": 50},
    "searchParameters": [
        {"name": "received_at", "method": "between", "searchParameter": ["2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"]},
        {"name": "account_number", "method": "=", "searchParameter": ["ACC-100200"]},
        {"name": "status", "method": "in", "searchParameter": ["processed", "returned"]}],
    "orderParameters": [{"field": "received_at", "typeOrder": "DESC"}]
}))]
pub struct SearchRequest {
    /// Page 1 of 50 when left out.
    #[serde(default)]
    pub paging: Option<Paging>,
    /// All must hold. A `received_at` window (`between`, or `>=`/`>` with `<=`/`<`) is required.
    #[serde(rename = "searchParameters", default)]
    pub search_parameters: Vec<SearchParameter>,
    /// Applied in order; received_at ascending when empty.
    #[serde(rename = "orderParameters", default)]
    pub order_parameters: Vec<OrderParameter>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    /// 1-based page number (a number or a string of digits); default 1.
    pub page: Option<Value>,
    /// Records per page, 1–500 (a number or a string of digits); default 50.
    pub size: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParameter {
    /// One of received_at, channel, kind, id, account_number, status, amount, currency,
    /// confirmation_number, payment_method, client_key.
    pub name: String,
    /// between (2 values), in (at least 1), like (1, `%` wildcards), =, <, >, <=, >= (1).
    /// received_at takes between, >=, >, <=, <, compared at whole seconds.
    pub method: String,
    /// The values: strings (RFC 3339 times for received_at, decimals for amount; numbers
    /// are accepted for amount too).
    #[serde(rename = "searchParameter")]
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderParameter {
    /// received_at, amount, account_number or status.
    pub field: String,
    /// ASC (default) or DESC.
    #[serde(rename = "typeOrder", default)]
    pub type_order: Option<String>,
}

crate::openapi::hand_written!(Paging, SearchParameter, OrderParameter);

/// The answer: how many records match in all, and the requested page of them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResponse {
    #[serde(rename = "totalCount")]
    pub total_count: usize,
    pub records: Vec<RecordView>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Between,
    In,
    Like,
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Method {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "between" => Self::Between,
            "in" => Self::In,
            "like" => Self::Like,
            "=" => Self::Eq,
            "<" => Self::Lt,
            ">" => Self::Gt,
            "<=" => Self::Le,
            ">=" => Self::Ge,
            _ => return None,
        })
    }

    /// Whether `n` values suit the method.
    fn arity_ok(self, n: usize) -> bool {
        match self {
            Self::Between => n == 2,
            Self::In => n >= 1,
            _ => n == 1,
        }
    }

    fn arity(self) -> &'static str {
        match self {
            Self::Between => "exactly 2 values",
            Self::In => "at least 1 value",
            _ => "exactly 1 value",
        }
    }
}

/// The window being built from the received_at parameters, in nanoseconds, end exclusive.
struct Window {
    from: Option<i64>,
    until: Option<i64>,
}

const NANOS: i64 = 1_000_000_000;

impl SearchRequest {
    /// Reads a search body: a JSON object whose nested parts are objects where the model has
    /// objects (serde alone would take `"paging": [1, 50]` as page 1 of 50).
    pub fn from_body(body: &[u8]) -> Result<Self, AdminError> {
        let value = parse_object(body)?;
        let not_object = |path: String| AdminError::malformed(Some(&path), "must be a JSON object");
        if value.get("paging").is_some_and(|p| !p.is_object() && !p.is_null()) {
            return Err(not_object("paging".into()));
        }
        for list in ["searchParameters", "orderParameters"] {
            if let Some(Value::Array(items)) = value.get(list) {
                if let Some(i) = items.iter().position(|item| !item.is_object()) {
                    return Err(not_object(format!("{list}[{i}]")));
                }
            }
        }
        from_value(value)
    }

    /// Checks the request and turns it into a store query.
    pub fn to_query(&self) -> Result<SearchQuery, AdminError> {
        let (offset, limit) = self.page()?;
        let mut window = Window {
            from: None,
            until: None,
        };
        let mut filters = Vec::new();
        for (i, p) in self.search_parameters.iter().enumerate() {
            let at = format!("searchParameters[{i}]");
            let method = Method::parse(&p.method).ok_or_else(|| {
                AdminError::bad(
                    AdminErrorCode::UnknownMethod,
                    format!("{at}.method"),
                    format!("unknown method {:?}; methods are {METHODS}", p.method),
                )
            })?;
            if !method.arity_ok(p.values.len()) {
                return Err(AdminError::bad(
                    AdminErrorCode::WrongArity,
                    format!("{at}.searchParameter"),
                    format!("{} takes {}, got {}", p.method, method.arity(), p.values.len()),
                ));
            }
            if p.name == "received_at" {
                window.narrow(method, &p.values, &at)?;
                continue;
            }
            let field = search_field(&p.name).ok_or_else(|| {
                AdminError::bad(
                    AdminErrorCode::UnknownName,
                    format!("{at}.name"),
                    format!("cannot search by {:?}; names are {NAMES}", p.name),
                )
            })?;
            filters.push(filter(field, method, &p.values, &at)?);
        }
        let (Some(from), Some(until)) = (window.from, window.until) else {
            return Err(AdminError::bad(
                AdminErrorCode::WindowRequired,
                "received_at",
                "a received_at window is required: {\"name\": \"received_at\", \"method\": \"between\", \
                 \"searchParameter\": [FROM, TO]}, or >= and <=",
            ));
        };
        let mut order = Vec::with_capacity(self.order_parameters.len());
        for (i, o) in self.order_parameters.iter().enumerate() {
            let field = match o.field.as_str() {
                "received_at" => SortField::ReceivedAt,
                "amount" => SortField::Amount,
                "account_number" => SortField::AccountNumber,
                "status" => SortField::Status,
                other => {
                    return Err(AdminError::bad(
                        AdminErrorCode::UnknownSortField,
                        format!("orderParameters[{i}].field"),
                        format!("cannot order by {other:?}; sort fields are {SORT_FIELDS}"),
                    ))
                }
            };
            let direction = match o.type_order.as_deref().map(str::to_ascii_uppercase) {
                None => Direction::Asc,
                Some(s) if s == "ASC" => Direction::Asc,
                Some(s) if s == "DESC" => Direction::Desc,
                Some(_) => {
                    return Err(AdminError::bad(
                        AdminErrorCode::BadOrder,
                        format!("orderParameters[{i}].typeOrder"),
                        "typeOrder is ASC or DESC",
                    ))
                }
            };
            order.push((field, direction));
        }
        Ok(SearchQuery {
            from_nanos: from,
            until_nanos: until,
            filters,
            order,
            offset,
            limit,
        })
    }

    /// (offset, limit) from the paging.
    fn page(&self) -> Result<(usize, usize), AdminError> {
        let paging = self.paging.as_ref();
        let page = count(paging.and_then(|p| p.page.as_ref()), "paging.page", 1, MAX_PAGE)?.unwrap_or(1);
        let size = count(
            paging.and_then(|p| p.size.as_ref()),
            "paging.size",
            1,
            MAX_PAGE_SIZE as u64,
        )?
        .unwrap_or(DEFAULT_PAGE_SIZE as u64);
        let size = size as usize;
        let offset = usize::try_from(page - 1).unwrap_or(usize::MAX).saturating_mul(size);
        Ok((offset, size))
    }
}

/// The largest page number: the document says int64, so nothing above it is taken.
pub const MAX_PAGE: u64 = i64::MAX as u64;

/// A paging number in `min..=max`, given as a JSON number or a string of digits (the model shows
/// both); `None` when left out or null.
fn count(value: Option<&Value>, field: &str, min: u64, max: u64) -> Result<Option<u64>, AdminError> {
    let n = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(AdminError::bad(
            AdminErrorCode::BadPaging,
            field,
            format!("{field} is a whole number from {min} to {max}"),
        )),
    }
}

fn search_field(name: &str) -> Option<SearchField> {
    Some(match name {
        "channel" => SearchField::Channel,
        "kind" => SearchField::Kind,
        "id" => SearchField::Id,
        "account_number" => SearchField::AccountNumber,
        "status" => SearchField::Status,
        "amount" => SearchField::Amount,
        "currency" => SearchField::Currency,
        "confirmation_number" => SearchField::ConfirmationNumber,
        "payment_method" => SearchField::PaymentMethod,
        "client_key" => SearchField::ClientKey,
        _ => return None,
    })
}

fn filter(field: SearchField, method: Method, values: &[Value], at: &str) -> Result<Filter, AdminError> {
    if method == Method::Like {
        if field == SearchField::Amount {
            return Err(AdminError::bad(
                AdminErrorCode::UnknownMethod,
                format!("{at}.method"),
                "like applies to text fields, not amount",
            ));
        }
        let pattern = text(&values[0], &format!("{at}.searchParameter[0]"))?;
        return Ok(Filter {
            field,
            condition: Condition::Like(pattern),
        });
    }
    let mut operands = Vec::with_capacity(values.len());
    for (j, v) in values.iter().enumerate() {
        operands.push(operand(field, v, &format!("{at}.searchParameter[{j}]"))?);
    }
    let missing = || {
        AdminError::bad(
            AdminErrorCode::WrongArity,
            format!("{at}.searchParameter"),
            "a value is missing",
        )
    };
    let mut ops = operands.into_iter();
    let condition = match method {
        Method::In | Method::Like => Condition::In(ops.collect()),
        Method::Between => match (ops.next(), ops.next()) {
            (Some(lo), Some(hi)) => Condition::Between(lo, hi),
            _ => return Err(missing()),
        },
        single => {
            let o = ops.next().ok_or_else(missing)?;
            match single {
                Method::Lt => Condition::Lt(o),
                Method::Gt => Condition::Gt(o),
                Method::Le => Condition::Le(o),
                Method::Ge => Condition::Ge(o),
                _ => Condition::Eq(o),
            }
        }
    };
    Ok(Filter { field, condition })
}

fn text(v: &Value, field: &str) -> Result<String, AdminError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(AdminError::bad_value(field, "must be a string")),
    }
}

fn operand(field: SearchField, v: &Value, at: &str) -> Result<Operand, AdminError> {
    let s = text(v, at)?;
    match field {
        SearchField::Amount => crate::domain::money::parse_amount(s.trim())
            .or_else(|| s.trim().parse().ok())
            .map(Operand::Amount)
            .ok_or_else(|| AdminError::bad_value(at, format!("{s:?} is not a decimal amount"))),
        SearchField::Kind if RecordKind::parse(&s).is_none() => Err(AdminError::bad_value(
            at,
            format!("{s:?} is not a kind; kinds are payment, refund, empayre-payment, empayre-refund"),
        )),
        SearchField::Channel if !matches!(s.as_str(), "orbipay" | "empayre") => Err(AdminError::bad_value(
            at,
            format!("{s:?} is not a channel; channels are orbipay, empayre"),
        )),
        _ => Ok(Operand::Text(s)),
    }
}

impl Window {
    /// Narrows the window by one received_at parameter. Comparisons are at whole seconds, the
    /// resolution answers show: `<= T` takes all of second T, `> T` starts at the next one.
    fn narrow(&mut self, method: Method, values: &[Value], at: &str) -> Result<(), AdminError> {
        let second = |j: usize| -> Result<i64, AdminError> {
            let field = format!("{at}.searchParameter[{j}]");
            let s = text(&values[j], &field)?;
            let t = DateTime::parse_from_rfc3339(s.trim())
                .map_err(|_| AdminError::bad_value(&field, format!("{s:?} is not an RFC 3339 time")))?;
            let secs = t.timestamp();
            // The store keeps nanoseconds in an i64: years 1678 to 2261.
            if secs.checked_mul(NANOS).and_then(|n| n.checked_add(NANOS)).is_none() {
                return Err(AdminError::bad_value(&field, "time out of range"));
            }
            Ok(secs)
        };
        let lower = |w: &mut Window, nanos: i64| w.from = Some(w.from.map_or(nanos, |f| f.max(nanos)));
        let upper = |w: &mut Window, nanos: i64| w.until = Some(w.until.map_or(nanos, |u| u.min(nanos)));
        match method {
            Method::Between => {
                let (a, b) = (second(0)?, second(1)?);
                lower(self, a * NANOS);
                upper(self, (b + 1) * NANOS);
            }
            Method::Ge => lower(self, second(0)? * NANOS),
            Method::Gt => lower(self, (second(0)? + 1) * NANOS),
            Method::Le => upper(self, (second(0)? + 1) * NANOS),
            Method::Lt => upper(self, second(0)? * NANOS),
            Method::Eq | Method::In | Method::Like => {
                return Err(AdminError::bad(
                    AdminErrorCode::UnknownMethod,
                    format!("{at}.method"),
                    "received_at takes between, >=, >, <= or <",
                ))
            }
        }
        Ok(())
    }
}

/// The names a search parameter may have.
pub const SEARCH_NAMES: [&str; 11] = [
    "received_at",
    "channel",
    "kind",
    "id",
    "account_number",
    "status",
    "amount",
    "currency",
    "confirmation_number",
    "payment_method",
    "client_key",
];
/// The fields a search may be ordered by.
pub const SORT_FIELD_NAMES: [&str; 4] = ["received_at", "amount", "account_number", "status"];

/// The JSON Schemas of the search body's parts, hand-written because they take what utoipa's
/// model cannot say: a number or a string of digits, case-insensitive words.
pub fn request_schemas() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    // A whole number in a range, as a JSON number or a string of digits; null is the default.
    let count = |max: u64, default: u64, what: &str| {
        json!({
            "description": format!("{what}: a whole number from 1 to {max}, as a number or a string of digits; default {default}"),
            "oneOf": [
                {"type": "integer", "format": "int64", "minimum": 1, "maximum": max},
                {"type": "string", "pattern": "^[0-9]+$"},
                {"type": "null"},
            ],
        })
    };
    // Any case: `^([bB][eE]...)$`.
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase())
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let methods = ["between", "in", "like", "=", "<", ">", "<=", ">="]
        .map(any_case)
        .join("|");
    let orders = ["asc", "desc"].map(any_case).join("|");
    vec![
        (
            "Paging",
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "page": count(MAX_PAGE, 1, "1-based page number"),
                    "size": count(MAX_PAGE_SIZE as u64, DEFAULT_PAGE_SIZE as u64, "Records per page"),
                },
            }),
        ),
        (
            "SearchParameter",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "method", "searchParameter"],
                "description": "All parameters must hold. The number of values depends on the method \
                                (between 2, in at least 1, the others 1), and received_at takes only \
                                between, >=, >, <= and <: rules across fields that the schema does not say.",
                "properties": {
                    "name": {"type": "string", "enum": SEARCH_NAMES},
                    "method": {
                        "type": "string",
                        "pattern": format!("^({methods})$"),
                        "description": "between, in, like (% wildcards, case-sensitive), =, <, >, <=, >=; any case",
                    },
                    "searchParameter": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": ["string", "number"]},
                        "description": "The values: RFC 3339 times for received_at, decimal amounts \
                                        (strings or numbers) for amount, strings otherwise",
                    },
                },
            }),
        ),
        (
            "OrderParameter",
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["field"],
                "properties": {
                    "field": {"type": "string", "enum": SORT_FIELD_NAMES},
                    "typeOrder": {
                        "type": ["string", "null"],
                        "pattern": format!("^({orders})$"),
                        "description": "ASC (default) or DESC, any case",
                    },
                },
            }),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> SearchRequest {
        serde_json::from_value(v).expect("request")
    }

    fn day() -> Value {
        json_param(
            "received_at",
            "between",
            &["2026-11-21T00:00:00Z", "2026-11-21T23:59:59Z"],
        )
    }

    fn json_param(name: &str, method: &str, values: &[&str]) -> Value {
        serde_json::json!({"name": name, "method": method, "searchParameter": values})
    }

    #[test]
    fn a_day_window_covers_its_last_second() {
        let q = request(serde_json::json!({"searchParameters": [day()]}))
            .to_query()
            .expect("query");
        let start = DateTime::parse_from_rfc3339("2026-11-21T00:00:00Z")
            .expect("t")
            .timestamp()
            * NANOS;
        assert_eq!(q.from_nanos, start);
        assert_eq!(q.until_nanos, start + 86_400 * NANOS);
        assert_eq!((q.offset, q.limit), (0, DEFAULT_PAGE_SIZE));
    }

    #[test]
    fn open_ended_windows_are_refused() {
        let only_lower = request(serde_json::json!({"searchParameters": [
            json_param("received_at", ">=", &["2026-11-21T00:00:00Z"])]}));
        let e = only_lower.to_query().expect_err("refused");
        assert_eq!(e.code(), AdminErrorCode::WindowRequired);
    }

    #[test]
    fn paging_accepts_numeric_strings() {
        let q = request(serde_json::json!({"paging": {"page": "3", "size": "20"}, "searchParameters": [day()]}))
            .to_query()
            .expect("query");
        assert_eq!((q.offset, q.limit), (40, 20));
    }
}
