//! The answers of the Empayre API calls biller-inbox makes (the Empayre API subset in docs/empayre.md), read
//! field by field against the shape we rely on.
//!
//! Every field the reconciliation or the registration uses is checked here: present when we need
//! it, of the right JSON type, amounts integers ≥ 1, currencies three capital letters, times RFC
//! 3339. A mismatch is a [`Malformed`] naming the field by its path in the answer
//! (`result[3].amount`), and the caller reports it with the call's name and applies nothing of
//! that answer. Fields we do not use are ignored, and so are unknown ones (the API grows).
//! Messages name the JSON type found, never the value: answers carry payer metadata.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A field of an answer that does not have the shape we rely on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Path of the field in the answer: `result[3].amount`, `publicKey`, `(answer)`.
    pub field: String,
    pub problem: String,
}

impl Malformed {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A webhook as `getWebhooks` and `createWebhook` return it (B1.10).
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// A decimal integer in practice, but a string in the schema; kept as text.
    pub id: String,
    pub active: bool,
    pub topic: String,
    /// `scope.shopID`; party-wide hooks have none.
    pub shop_id: Option<String>,
    pub event_types: Vec<String>,
    pub party_id: Option<String>,
    pub url: String,
    /// The party's public key, in any of the forms of B2 (`None` only in a list answer).
    pub public_key: Option<String>,
}

/// One result of `searchPayments`.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentSearchResult {
    pub id: String,
    pub invoice_id: String,
    pub shop_id: String,
    pub created_at: DateTime<Utc>,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// `pending`, `processed`, `captured`, `cancelled`, `refunded`, `failed`, `charged_back`, or a
    /// value this version does not know (kept, never applied).
    pub status: String,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub metadata: Option<Value>,
}

/// One result of `searchRefunds`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundSearchResult {
    pub id: String,
    pub invoice_id: String,
    pub payment_id: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded`, `failed`, or an unknown value (kept, never applied).
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// An invoice as `getInvoiceByID` returns it. `raw` is the whole answer, so the source's
/// `account_pointer` can look anywhere in it, as it does in a webhook's invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: String,
    pub shop_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub metadata: Option<Value>,
    pub raw: Map<String, Value>,
}

/// One page of a search: its results and the token of the next page (none on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub continuation_token: Option<String>,
    pub result: Vec<T>,
}

/// Reads one JSON object of an answer, knowing its path for messages.
struct Fields<'v> {
    map: &'v Map<String, Value>,
    path: String,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'v> Fields<'v> {
    fn of(value: &'v Value, path: &str) -> Result<Self, Malformed> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                path: path.to_string(),
            }),
            other => Err(Malformed::new(
                if path.is_empty() { "(answer)" } else { path },
                format!("expected an object, got {}", type_name(other)),
            )),
        }
    }

    fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Absent and `null` are the same: the platform leaves empty fields out.
    fn get(&self, name: &str) -> Option<&'v Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str) -> Result<&'v Value, Malformed> {
        self.get(name)
            .ok_or_else(|| Malformed::new(self.path_of(name), "missing"))
    }

    fn string(&self, name: &str) -> Result<String, Malformed> {
        match self.required(name)? {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(Malformed::new(self.path_of(name), "empty string")),
            other => Err(Malformed::new(
                self.path_of(name),
                format!("expected a string, got {}", type_name(other)),
            )),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, Malformed> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    /// An id the schema declares a string; the 2017 platform sent some as numbers (B3.3).
    fn id(&self, name: &str) -> Result<String, Malformed> {
        match self.required(name)? {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            _ => self.string(name),
        }
    }

    fn opt_id(&self, name: &str) -> Result<Option<String>, Malformed> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.id(name).map(Some),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, Malformed> {
        match self.required(name)? {
            Value::Bool(b) => Ok(*b),
            other => Err(Malformed::new(
                self.path_of(name),
                format!("expected a boolean, got {}", type_name(other)),
            )),
        }
    }

    /// An amount in minor units: an integer of at least 1 (int64).
    fn amount(&self, name: &str) -> Result<i64, Malformed> {
        match self.required(name)? {
            Value::Number(n) => match n.as_i64() {
                Some(v) if v >= 1 => Ok(v),
                _ => Err(Malformed::new(self.path_of(name), "expected an integer of at least 1")),
            },
            other => Err(Malformed::new(
                self.path_of(name),
                format!("expected an integer, got {}", type_name(other)),
            )),
        }
    }

    /// An ISO 4217 alphabetic code.
    fn currency(&self, name: &str) -> Result<String, Malformed> {
        let code = self.string(name)?;
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(code)
        } else {
            Err(Malformed::new(
                self.path_of(name),
                "expected three capital letters (ISO 4217)",
            ))
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, Malformed> {
        let text = self.string(name)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| Malformed::new(self.path_of(name), "expected an RFC 3339 date-time"))
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.time(name).map(Some),
        }
    }

    fn opt_object(&self, name: &str) -> Result<Option<Value>, Malformed> {
        match self.get(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v.clone())),
            Some(other) => Err(Malformed::new(
                self.path_of(name),
                format!("expected an object, got {}", type_name(other)),
            )),
        }
    }

    fn object(&self, name: &str) -> Result<Fields<'v>, Malformed> {
        Fields::of(self.required(name)?, &self.path_of(name))
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, Malformed> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Malformed::new(
                        format!("{}[{i}]", self.path_of(name)),
                        format!("expected a string, got {}", type_name(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(Malformed::new(
                self.path_of(name),
                format!("expected an array, got {}", type_name(other)),
            )),
        }
    }
}

fn webhook_at(value: &Value, path: &str, key_required: bool) -> Result<Webhook, Malformed> {
    let f = Fields::of(value, path)?;
    let scope = f.object("scope")?;
    let public_key = if key_required {
        Some(f.string("publicKey")?)
    } else {
        f.opt_string("publicKey")?
    };
    Ok(Webhook {
        id: f.id("id")?,
        active: f.bool("active")?,
        topic: scope.string("topic")?,
        shop_id: scope.opt_id("shopID")?,
        event_types: scope.strings("eventTypes")?,
        party_id: f.opt_id("partyID")?,
        url: f.string("url")?,
        public_key,
    })
}

/// `getWebhooks`: 200 `[Webhook]`.
pub fn webhooks(answer: &Value) -> Result<Vec<Webhook>, Malformed> {
    let Value::Array(items) = answer else {
        return Err(Malformed::new(
            "(answer)",
            format!("expected an array of webhooks, got {}", type_name(answer)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| webhook_at(v, &format!("[{i}]"), false))
        .collect()
}

/// `createWebhook`: 201 `Webhook`, with the party's public key.
pub fn created_webhook(answer: &Value) -> Result<Webhook, Malformed> {
    webhook_at(answer, "", true)
}

fn page<T>(answer: &Value, item: impl Fn(&Value, &str) -> Result<T, Malformed>) -> Result<Page<T>, Malformed> {
    let f = Fields::of(answer, "")?;
    let continuation_token = f.opt_string("continuationToken").or_else(|e| {
        // An empty token is read as "no more pages", which is what it can only mean.
        match f.get("continuationToken") {
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            _ => Err(e),
        }
    })?;
    let result = match f.required("result")? {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| item(v, &format!("result[{i}]")))
            .collect::<Result<Vec<T>, Malformed>>()?,
        other => {
            return Err(Malformed::new(
                "result",
                format!("expected an array, got {}", type_name(other)),
            ))
        }
    };
    Ok(Page {
        continuation_token,
        result,
    })
}

/// `searchPayments`: 200 `{continuationToken?, result: [PaymentSearchResult]}`.
pub fn payments_page(answer: &Value) -> Result<Page<PaymentSearchResult>, Malformed> {
    page(answer, |v, path| {
        let f = Fields::of(v, path)?;
        Ok(PaymentSearchResult {
            id: f.id("id")?,
            invoice_id: f.id("invoiceID")?,
            shop_id: f.id("shopID")?,
            created_at: f.time("createdAt")?,
            amount: f.amount("amount")?,
            currency: f.currency("currency")?,
            status: f.string("status")?,
            status_changed_at: f.opt_time("statusChangedAt")?,
            metadata: f.opt_object("metadata")?,
        })
    })
}

/// `searchRefunds`: 200 `{continuationToken?, result: [RefundSearchResult]}`.
pub fn refunds_page(answer: &Value) -> Result<Page<RefundSearchResult>, Malformed> {
    page(answer, |v, path| {
        let f = Fields::of(v, path)?;
        Ok(RefundSearchResult {
            id: f.id("id")?,
            invoice_id: f.id("invoiceID")?,
            payment_id: f.id("paymentID")?,
            amount: f.amount("amount")?,
            currency: f.currency("currency")?,
            status: f.string("status")?,
            created_at: f.time("createdAt")?,
        })
    })
}

/// `getInvoiceByID`: 200 `Invoice`.
pub fn invoice(answer: &Value) -> Result<Invoice, Malformed> {
    let f = Fields::of(answer, "")?;
    Ok(Invoice {
        id: f.id("id")?,
        shop_id: f.id("shopID")?,
        amount: f.amount("amount")?,
        currency: f.currency("currency")?,
        status: f.string("status")?,
        metadata: f.opt_object("metadata")?,
        raw: f.map.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment() -> Value {
        json!({"id": "1", "invoiceID": "inv-1", "shopID": "shop-1", "createdAt": "2026-11-21T09:00:00.123Z",
               "amount": 2500, "currency": "USD", "status": "captured",
               "statusChangedAt": "2026-11-21T09:00:05Z", "metadata": {"a": 1}, "unknownField": true})
    }

    #[test]
    fn a_payments_page_reads_what_we_rely_on() {
        let page = payments_page(&json!({"continuationToken": "t2", "result": [payment()]})).expect("page");
        assert_eq!(page.continuation_token.as_deref(), Some("t2"));
        let p = &page.result[0];
        assert_eq!((p.id.as_str(), p.invoice_id.as_str(), p.amount), ("1", "inv-1", 2500));
        assert!(p.status_changed_at.is_some());
        let last = payments_page(&json!({"result": []})).expect("last page");
        assert_eq!(last.continuation_token, None);
        let empty_token = payments_page(&json!({"continuationToken": "", "result": []})).expect("page");
        assert_eq!(empty_token.continuation_token, None);
    }

    #[test]
    fn every_malformed_field_is_named_by_its_path() {
        let with = |field: &str, value: Value| {
            let mut p = payment();
            if value.is_null() {
                p.as_object_mut().expect("object").remove(field);
            } else {
                p[field] = value;
            }
            json!({"result": [payment(), p]})
        };
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "(answer)", "expected an object"),
            (json!({"result": {}}), "result", "expected an array"),
            (
                json!({"continuationToken": 7, "result": []}),
                "continuationToken",
                "expected a string",
            ),
            (json!({}), "result", "missing"),
            (with("amount", Value::Null), "result[1].amount", "missing"),
            (with("amount", json!("2500")), "result[1].amount", "expected an integer"),
            (with("amount", json!(0)), "result[1].amount", "at least 1"),
            (with("amount", json!(12.5)), "result[1].amount", "at least 1"),
            (
                with("currency", json!("usd")),
                "result[1].currency",
                "three capital letters",
            ),
            (with("createdAt", json!("yesterday")), "result[1].createdAt", "RFC 3339"),
            (
                with("statusChangedAt", json!(5)),
                "result[1].statusChangedAt",
                "expected a string",
            ),
            (with("id", json!("")), "result[1].id", "empty"),
            (with("invoiceID", json!({})), "result[1].invoiceID", "expected a string"),
            (with("status", Value::Null), "result[1].status", "missing"),
            (with("metadata", json!("x")), "result[1].metadata", "expected an object"),
        ];
        for (answer, field, problem) in cases {
            let err = payments_page(&answer).expect_err(&answer.to_string());
            assert_eq!(err.field, field, "{answer}");
            assert!(err.problem.contains(problem), "{answer}: {}", err.problem);
        }
    }

    #[test]
    fn webhooks_invoices_and_refunds_are_checked_too() {
        let hook = json!({"id": "42", "active": true, "partyID": "p",
                          "scope": {"topic": "InvoicesTopic", "shopID": "shop-1", "eventTypes": ["PaymentCaptured"]},
                          "url": "https://biller.example/empayre/webhook", "publicKey": "KEY"});
        let list = webhooks(&json!([hook.clone()])).expect("list");
        assert_eq!(list[0].shop_id.as_deref(), Some("shop-1"));
        assert_eq!(
            created_webhook(&hook).expect("created").public_key.as_deref(),
            Some("KEY")
        );
        let mut numeric = hook.clone();
        numeric["id"] = json!(42);
        assert_eq!(created_webhook(&numeric).expect("numeric id").id, "42");
        let mut keyless = hook.clone();
        keyless.as_object_mut().expect("object").remove("publicKey");
        assert_eq!(created_webhook(&keyless).expect_err("key").field, "publicKey");
        assert!(webhooks(&json!([keyless])).is_ok(), "a list may leave keys out");
        let mut bad_types = hook;
        bad_types["scope"]["eventTypes"] = json!(["a", 1]);
        assert_eq!(
            webhooks(&json!([bad_types])).expect_err("types").field,
            "[0].scope.eventTypes[1]"
        );

        let inv = json!({"id": "inv-1", "shopID": "shop-1", "amount": 2500, "currency": "USD", "status": "paid",
                         "metadata": {"account_number": "ACC-1"}, "externalID": "X"});
        let parsed = invoice(&inv).expect("invoice");
        assert_eq!(parsed.raw.get("externalID"), Some(&json!("X")));
        let mut no_currency = inv;
        no_currency.as_object_mut().expect("object").remove("currency");
        assert_eq!(invoice(&no_currency).expect_err("currency").field, "currency");

        let refund = json!({"id": "1", "invoiceID": "inv-1", "paymentID": "1", "amount": 500, "currency": "USD",
                            "status": "succeeded", "createdAt": "2026-11-21T10:00:00Z"});
        assert_eq!(
            refunds_page(&json!({"result": [refund]})).expect("refunds").result[0].amount,
            500
        );
        let bad = json!({"result": [{"id": "1", "invoiceID": "inv-1", "amount": 500, "currency": "USD",
                                     "status": "succeeded", "createdAt": "2026-11-21T10:00:00Z"}]});
        assert_eq!(refunds_page(&bad).expect_err("paymentID").field, "result[0].paymentID");
    }
}
