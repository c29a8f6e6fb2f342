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

/// The answer of `/paymentposting` and `/paymentreversalposting` (`refund: false`) or of
/// `/paymentrefundposting`: `{"posting_info": {...}}`, written straight from the record like
/// the lookup answer (no `Value` tree: every posting answered with one).
pub struct PostingAnswer<'a> {
    record: &'a Record,
    committed: &'a Committed,
    at: DateTime<Utc>,
    refund: bool,
}

pub fn payment<'a>(record: &'a Record, committed: &'a Committed, at: DateTime<Utc>) -> PostingAnswer<'a> {
    PostingAnswer {
        record,
        committed,
        at,
        refund: false,
    }
}

pub fn refund<'a>(record: &'a Record, committed: &'a Committed, at: DateTime<Utc>) -> PostingAnswer<'a> {
    PostingAnswer {
        record,
        committed,
        at,
        refund: true,
    }
}

impl Serialize for PostingAnswer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("posting_info", &PostingInfo(self))?;
        m.end()
    }
}

struct PostingInfo<'a>(&'a PostingAnswer<'a>);

impl Serialize for PostingInfo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let PostingAnswer {
            record,
            committed,
            at,
            refund,
        } = self.0;
        let exp = committed.currency_exponent;
        let amount = format_amount(record.amount, exp);
        let balance = committed.balance_after.map(|b| format_amount(b, exp));
        let mut m = s.serialize_map(None)?;
        text(&mut m, "id", Some(&record.id))?;
        let reference = if *refund {
            "refund_reference"
        } else {
            "payment_reference"
        };
        text(&mut m, reference, record.reference.as_deref())?;
        text(&mut m, "confirmation_number", record.confirmation_number.as_deref())?;
        text(&mut m, "status", Some(record.status.as_str()))?;
        if *refund {
            text(&mut m, "source_payment_id", record.parent_id.as_deref())?;
            text(&mut m, "account_number", record.account_number.as_deref())?;
            text(&mut m, "refund_amount", Some(&amount))?;
        } else {
            text(&mut m, "account_number", record.account_number.as_deref())?;
            text(&mut m, "amount", Some(&amount))?;
            text(&mut m, "currency_code3d", Some(&record.currency))?;
        }
        text(&mut m, "current_balance", balance.as_deref())?;
        text(&mut m, "posted_at", Some(&rfc3339(*at)))?;
        m.end()
    }
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

    #[test]
    fn posting_answers_are_written_in_ebpp_order_and_leave_out_what_is_absent() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let committed = Committed {
            change: None,
            journal_seq: Some(1),
            balance_after: Some(rust_decimal::Decimal::new(-125, 1)),
            currency_exponent: 2,
            event_seq: None,
        };
        let payment_record = crate::ledger::test_support::payment("1001", "12.5", true);
        let text = serde_json::to_string(&payment(&payment_record, &committed, at)).expect("serializes");
        assert_eq!(
            text,
            concat!(
                r#"{"posting_info":{"id":"1001","payment_reference":"P1","confirmation_number":"C1","#,
                r#""status":"processed","account_number":"A","amount":"12.50","currency_code3d":"USD","#,
                r#""current_balance":"-12.50","posted_at":"2026-12-07T10:00:00Z"}}"#
            )
        );
        let mut refund_record = crate::ledger::test_support::refund("R1", "3", true, true);
        refund_record.confirmation_number = Some(String::new());
        let no_balance = Committed {
            balance_after: None,
            ..committed
        };
        let text = serde_json::to_string(&refund(&refund_record, &no_balance, at)).expect("serializes");
        assert_eq!(
            text,
            concat!(
                r#"{"posting_info":{"id":"R1","refund_reference":"P1","status":"processed","#,
                r#""source_payment_id":"p","account_number":"A","refund_amount":"3.00","#,
                r#""posted_at":"2026-12-07T10:00:00Z"}}"#
            )
        );
    }
}
