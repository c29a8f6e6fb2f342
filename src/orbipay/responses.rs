//! Answer bodies of the EBPP endpoints (docs/orbipay.md): every scalar a string,
//! absent values omitted (never `""`), amounts with the currency's decimals.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::account::Account;
use crate::domain::money::format_amount;
use crate::http::rfc3339;
use crate::ledger::Record;
use crate::store::{Committed, LookupMatch};

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        map.insert(key.to_string(), Value::String(v.to_string()));
    }
}

pub fn lookup(matches: &[LookupMatch], total: usize) -> Value {
    let list: Vec<Value> = matches
        .iter()
        .map(|m| {
            let p = &m.profile;
            let mut o = Map::new();
            put(&mut o, "customer_reference", Some(&p.customer_reference));
            put(&mut o, "lookup_reference", p.lookup_reference.as_deref());
            put(&mut o, "first_name", p.first_name.as_deref());
            put(&mut o, "last_name", p.last_name.as_deref());
            put(&mut o, "email", p.email.as_deref());
            put(&mut o, "home_phone", p.home_phone.as_deref());
            put(&mut o, "status", Some(p.status.as_str()));
            if let Some(address) = &p.address {
                o.insert("address".into(), string_object(address));
            }
            let accounts: Vec<Value> = m.accounts.iter().map(account).collect();
            o.insert("customer_accounts".into(), serde_json::json!({ "list": accounts }));
            Value::Object(o)
        })
        .collect();
    serde_json::json!({
        "list": list,
        "total_results_count": total.to_string(),
        "has_more_results": (total > matches.len()).to_string(),
    })
}

fn account(a: &Account) -> Value {
    let mut o = Map::new();
    let money = |d: Option<rust_decimal::Decimal>| d.map(|d| a.format(d));
    put(&mut o, "account_number", Some(&a.account_number));
    put(
        &mut o,
        "customer_account_reference",
        a.customer_account_reference.as_deref(),
    );
    put(&mut o, "account_holder_name", a.account_holder_name.as_deref());
    put(&mut o, "nickname", a.nickname.as_deref());
    put(&mut o, "status", Some(a.status.as_ebpp()));
    put(&mut o, "currency_code3d", Some(&a.currency));
    put(&mut o, "current_balance", Some(&a.format(a.current_balance())));
    put(
        &mut o,
        "current_statement_balance",
        money(a.current_statement_balance).as_deref(),
    );
    put(&mut o, "minimum_payment_due", money(a.minimum_payment_due).as_deref());
    put(&mut o, "past_amount_due", money(a.past_amount_due).as_deref());
    put(&mut o, "payment_due_date", a.payment_due_date.as_deref());
    put(&mut o, "statement_date", a.statement_date.as_deref());
    put(&mut o, "payoff_amount", money(a.payoff_amount).as_deref());
    put(&mut o, "payoff_expiry_date", a.payoff_expiry_date.as_deref());
    if let Some(address) = &a.address {
        o.insert("address".into(), string_object(address));
    }
    Value::Object(o)
}

/// EBPP wants every scalar as a string: keep strings, stringify numbers and booleans, drop
/// nulls and empty strings.
fn string_object(m: &Map<String, Value>) -> Value {
    let mut o = Map::new();
    for (k, v) in m {
        match v {
            Value::String(s) if !s.is_empty() => {
                o.insert(k.clone(), Value::String(s.clone()));
            }
            Value::Number(n) => {
                o.insert(k.clone(), Value::String(n.to_string()));
            }
            Value::Bool(b) => {
                o.insert(k.clone(), Value::String(b.to_string()));
            }
            _ => {}
        }
    }
    Value::Object(o)
}

pub fn payment(record: &Record, committed: &Committed, at: DateTime<Utc>) -> Value {
    let exp = committed.currency_exponent;
    let mut o = Map::new();
    put(&mut o, "id", Some(&record.id));
    put(&mut o, "payment_reference", record.reference.as_deref());
    put(&mut o, "confirmation_number", record.confirmation_number.as_deref());
    put(&mut o, "status", Some(record.status.as_str()));
    put(&mut o, "account_number", record.account_number.as_deref());
    put(&mut o, "amount", Some(&format_amount(record.amount, exp)));
    put(&mut o, "currency_code3d", Some(&record.currency));
    put(
        &mut o,
        "current_balance",
        committed.balance_after.map(|b| format_amount(b, exp)).as_deref(),
    );
    put(&mut o, "posted_at", Some(&rfc3339(at)));
    serde_json::json!({ "posting_info": o })
}

pub fn refund(record: &Record, committed: &Committed, at: DateTime<Utc>) -> Value {
    let exp = committed.currency_exponent;
    let mut o = Map::new();
    put(&mut o, "id", Some(&record.id));
    put(&mut o, "refund_reference", record.reference.as_deref());
    put(&mut o, "confirmation_number", record.confirmation_number.as_deref());
    put(&mut o, "status", Some(record.status.as_str()));
    put(&mut o, "source_payment_id", record.parent_id.as_deref());
    put(&mut o, "account_number", record.account_number.as_deref());
    put(&mut o, "refund_amount", Some(&format_amount(record.amount, exp)));
    put(
        &mut o,
        "current_balance",
        committed.balance_after.map(|b| format_amount(b, exp)).as_deref(),
    );
    put(&mut o, "posted_at", Some(&rfc3339(at)));
    serde_json::json!({ "posting_info": o })
}
