//! Answer bodies of the EBPP endpoints (docs/orbipay.md): every scalar a string,
//! absent values omitted (never `""`), amounts with the currency's decimals.

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
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

/// The answer of `/mpacustomers`, serialized straight from what the store found. The lookup is
/// the hottest route, so no `serde_json::Value` tree is built for it (a `Map` insert hashes its
/// key, and every field would be copied into a new string first): fields are written in this
/// order, absent or empty ones left out.
pub struct LookupAnswer<'a> {
    matches: &'a [LookupMatch],
    total: usize,
}

pub fn lookup(matches: &[LookupMatch], total: usize) -> LookupAnswer<'_> {
    LookupAnswer { matches, total }
}

impl Serialize for LookupAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("list", &List(self.matches, ProfileAnswer))?;
        m.serialize_entry("total_results_count", &self.total.to_string())?;
        m.serialize_entry("has_more_results", &(self.total > self.matches.len()).to_string())?;
        m.end()
    }
}

/// A JSON array of `items`, each written by `write`.
struct List<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for List<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(self.1))
    }
}

/// A string field, left out when absent or empty (EBPP never gets `""`).
fn text<M: SerializeMap>(m: &mut M, key: &str, value: Option<&str>) -> Result<(), M::Error> {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => m.serialize_entry(key, v),
        None => Ok(()),
    }
}

struct ProfileAnswer<'a>(&'a LookupMatch);

impl Serialize for ProfileAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = &self.0.profile;
        let mut m = s.serialize_map(None)?;
        text(&mut m, "customer_reference", Some(&p.customer_reference))?;
        text(&mut m, "lookup_reference", p.lookup_reference.as_deref())?;
        text(&mut m, "first_name", p.first_name.as_deref())?;
        text(&mut m, "last_name", p.last_name.as_deref())?;
        text(&mut m, "email", p.email.as_deref())?;
        text(&mut m, "home_phone", p.home_phone.as_deref())?;
        text(&mut m, "status", Some(p.status.as_str()))?;
        if let Some(address) = &p.address {
            m.serialize_entry("address", &StringObject(address))?;
        }
        m.serialize_entry("customer_accounts", &AccountList(&self.0.accounts))?;
        m.end()
    }
}

/// `{"list": [account, ...]}`.
struct AccountList<'a>(&'a [Account]);

impl Serialize for AccountList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("list", &List(self.0, AccountAnswer))?;
        m.end()
    }
}

struct AccountAnswer<'a>(&'a Account);

impl Serialize for AccountAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        // The currency's decimals, looked up once for every amount of the account.
        let exponent = a.exponent();
        let money = |d: Option<rust_decimal::Decimal>| d.map(|d| format_amount(d, exponent));
        let mut m = s.serialize_map(None)?;
        text(&mut m, "account_number", Some(&a.account_number))?;
        text(
            &mut m,
            "customer_account_reference",
            a.customer_account_reference.as_deref(),
        )?;
        text(&mut m, "account_holder_name", a.account_holder_name.as_deref())?;
        text(&mut m, "nickname", a.nickname.as_deref())?;
        text(&mut m, "status", Some(a.status.as_ebpp()))?;
        text(&mut m, "currency_code3d", Some(&a.currency))?;
        text(&mut m, "current_balance", money(Some(a.current_balance())).as_deref())?;
        text(
            &mut m,
            "current_statement_balance",
            money(a.current_statement_balance).as_deref(),
        )?;
        text(&mut m, "minimum_payment_due", money(a.minimum_payment_due).as_deref())?;
        text(&mut m, "past_amount_due", money(a.past_amount_due).as_deref())?;
        text(&mut m, "payment_due_date", a.payment_due_date.as_deref())?;
        text(&mut m, "statement_date", a.statement_date.as_deref())?;
        text(&mut m, "payoff_amount", money(a.payoff_amount).as_deref())?;
        text(&mut m, "payoff_expiry_date", a.payoff_expiry_date.as_deref())?;
        if let Some(address) = &a.address {
            m.serialize_entry("address", &StringObject(address))?;
        }
        m.end()
    }
}

/// EBPP wants every scalar as a string: keep strings, stringify numbers and booleans, drop
/// nulls, empty strings, arrays and objects.
struct StringObject<'a>(&'a Map<String, Value>);

impl Serialize for StringObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            match v {
                Value::String(text) if !text.is_empty() => m.serialize_entry(k, text)?,
                Value::Number(n) => m.serialize_entry(k, &n.to_string())?,
                Value::Bool(b) => m.serialize_entry(k, if *b { "true" } else { "false" })?,
                _ => {}
            }
        }
        m.end()
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ledger::test_support::{account, profile};

    #[test]
    fn the_lookup_answer_is_written_in_ebpp_order_with_strings_only() {
        let mut a = account("JPY");
        a.nickname = Some(String::new());
        a.current_statement_balance = Some(rust_decimal::Decimal::new(12, 0));
        a.address = json!({"line1": "1 Main St", "zip": 12345, "po": true, "gone": null, "empty": ""})
            .as_object()
            .cloned();
        let matches = [LookupMatch {
            profile: profile(),
            accounts: vec![a],
        }];
        let text = serde_json::to_string(&lookup(&matches, 3)).expect("serializes");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        let listed = &answer["list"][0]["customer_accounts"]["list"][0];
        assert_eq!(listed["account_number"], "A");
        assert_eq!(listed["current_balance"], "500");
        assert_eq!(listed["current_statement_balance"], "12");
        assert!(listed.get("nickname").is_none(), "{listed}");
        assert_eq!(
            listed["address"],
            json!({"line1": "1 Main St", "zip": "12345", "po": "true"})
        );
        assert_eq!(answer["total_results_count"], "3");
        assert_eq!(answer["has_more_results"], "true");
        // The order EBPP reads: the list first, the counts after it; the reference first.
        assert!(text.starts_with("{\"list\":[{\"customer_reference\":"), "{text}");
        assert!(
            text.ends_with(",\"total_results_count\":\"3\",\"has_more_results\":\"true\"}"),
            "{text}"
        );
    }
}
