//! Hostile input against the real binary: thousands of deterministic mutations (seeded PRNG) of
//! valid bodies for the four Orbipay routes and the Empayre webhook (signed with the fixture key
//! so the mutation reaches the parser, and some unsigned or wrongly signed).
//!
//! Mutations: dropped keys, wrong types, null, huge strings, deep nesting (10,000 `[`),
//! truncation, invalid UTF-8, duplicate keys, numbers with 500 digits, odd strings, byte flips,
//! non-object roots, wrong or missing content types; for the lookup form: dropped, repeated and
//! huge fields, broken percent-escapes, raw bytes, thousands of pairs.
//!
//! Requests go one at a time, and after each the journal is read: a request that was not
//! acknowledged as applied must leave no journal entry, an acknowledged one at most one for its
//! own record. At the end every demo account moved by exactly the sum of the new entries, the
//! journal is gap-free, and the process is still serving. Never a 5xx; every answer is
//! well-formed in its channel's format.

use std::collections::BTreeMap;
use std::time::Instant;

use biller_inbox::orbipay::Endpoint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::helpers::*;

const SEED: u64 = 0x0007_5eed;
const PER_ORBIPAY_ROUTE: usize = 1000;
const SIGNED_EVENTS: usize = 1000;
const UNSIGNED_EVENTS: usize = 300;
/// Under `server.max_body_bytes` (256 KiB): oversized bodies have their own tests.
const MAX_BODY: usize = 250_000;

// ---------------------------------------------------------------------------------------------
// A JSON tree that can hold what serde_json cannot: duplicate keys, raw number text, invalid
// UTF-8 in strings, and raw unbalanced text.

#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(Vec<u8>),
    Arr(Vec<J>),
    Obj(Vec<(Vec<u8>, J)>),
    Raw(Vec<u8>),
}

impl J {
    fn from_value(v: &Value) -> J {
        match v {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => J::Num(n.to_string()),
            Value::String(s) => J::Str(s.as_bytes().to_vec()),
            Value::Array(a) => J::Arr(a.iter().map(J::from_value).collect()),
            Value::Object(o) => J::Obj(
                o.iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), J::from_value(v)))
                    .collect(),
            ),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            J::Null => out.extend_from_slice(b"null"),
            J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            J::Num(n) => out.extend_from_slice(n.as_bytes()),
            J::Str(s) => write_str(s, out),
            J::Arr(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            J::Obj(entries) => {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(k, out);
                    out.push(b':');
                    v.write(out);
                }
                out.push(b'}');
            }
            J::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }

    /// Number of nodes, for picking one uniformly.
    fn count(&self) -> usize {
        1 + match self {
            J::Arr(items) => items.iter().map(J::count).sum(),
            J::Obj(entries) => entries.iter().map(|(_, v)| v.count()).sum(),
            _ => 0,
        }
    }

    /// The `n`-th node in pre-order.
    fn nth(&mut self, n: usize) -> &mut J {
        fn walk<'a>(j: &'a mut J, n: &mut usize) -> Option<&'a mut J> {
            if *n == 0 {
                return Some(j);
            }
            *n -= 1;
            match j {
                J::Arr(items) => items.iter_mut().find_map(|i| walk(i, n)),
                J::Obj(entries) => entries.iter_mut().find_map(|(_, v)| walk(v, n)),
                _ => None,
            }
        }
        let mut n = n;
        walk(self, &mut n).expect("node index in range")
    }
}

/// Escapes `"`, `\` and control bytes; every other byte (invalid UTF-8 included) goes as is.
fn write_str(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Mutations

fn random_scalar(rng: &mut StdRng) -> J {
    match rng.gen_range(0..8) {
        0 => J::Null,
        1 => J::Bool(rng.gen()),
        2 => J::Num(rng.gen_range(-5..100_000).to_string()),
        3 => J::Num("12.34".into()),
        4 => J::Arr(vec![]),
        5 => J::Obj(vec![]),
        6 => J::Str(b"".to_vec()),
        _ => J::Str(b"x".to_vec()),
    }
}

fn huge_string(rng: &mut StdRng) -> Vec<u8> {
    let len = [1_000, 20_000, 120_000][rng.gen_range(0..3)];
    let unit: &[u8] = match rng.gen_range(0..5) {
        0 => b"a",
        1 => b"7",
        2 => "é".as_bytes(),
        3 => "\u{202e}".as_bytes(),
        _ => b"%\\\"",
    };
    unit.iter().copied().cycle().take(len).collect()
}

fn deep(rng: &mut StdRng) -> J {
    let n = if rng.gen_bool(0.5) {
        10_000
    } else {
        rng.gen_range(100..400)
    };
    let text = match rng.gen_range(0..4) {
        // Unbalanced: 10,000 `[` and nothing else.
        0 => "[".repeat(10_000),
        1 => format!("{}{}", "[".repeat(n), "]".repeat(n)),
        2 => format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)),
        _ => format!("{}{}", "[{\"k\":".repeat(n / 2), "null}]".repeat(n / 2)),
    };
    J::Raw(text.into_bytes())
}

fn odd_number(rng: &mut StdRng) -> J {
    let digits: String = (0..500).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
    J::Num(match rng.gen_range(0..7) {
        0 => digits,
        1 => format!("-{digits}"),
        2 => format!("0.{digits}"),
        3 => "1e400".into(),
        4 => "-1.5e-400".into(),
        5 => "-0".into(),
        _ => "18446744073709551616".into(),
    })
}

fn odd_string(rng: &mut StdRng) -> J {
    let digits: String = (0..500).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    let options: [&[u8]; 16] = [
        b"",
        b" ",
        b"\x00",
        b"null",
        b"-1",
        b"1e5",
        b"12.345",
        b" 12.00",
        b"12.00\n",
        "０１２".as_bytes(),
        b"\xff\xfe",
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xc0\xaf",
        b"<script>",
        b"'; DROP TABLE accounts; --",
    ];
    match rng.gen_range(0..options.len() + 2) {
        i if i < options.len() => J::Str(options[i].to_vec()),
        i if i == options.len() => J::Str(digits.into_bytes()),
        // A lone surrogate escape, as text.
        _ => J::Raw(b"\"\\ud800\"".to_vec()),
    }
}

/// Applies one structural mutation somewhere in the tree; returns its name.
fn mutate_tree(root: &mut J, rng: &mut StdRng) -> &'static str {
    let n = root.count();
    let index = if n > 1 { rng.gen_range(1..n) } else { 0 };
    match rng.gen_range(0..10) {
        0 | 1 => {
            // Drop a key of some object (retry a few nodes to find one).
            for _ in 0..8 {
                let i = rng.gen_range(0..n);
                if let J::Obj(entries) = root.nth(i) {
                    if !entries.is_empty() {
                        let k = rng.gen_range(0..entries.len());
                        entries.remove(k);
                        return "dropped key";
                    }
                }
            }
            *root.nth(index) = J::Null;
            "null"
        }
        2 => {
            *root.nth(index) = random_scalar(rng);
            "wrong type"
        }
        3 => {
            *root.nth(index) = J::Null;
            "null"
        }
        4 => {
            *root.nth(index) = J::Str(huge_string(rng));
            "huge string"
        }
        5 => {
            *root.nth(index) = deep(rng);
            "deep nesting"
        }
        6 => {
            // Invalid UTF-8 inside a string (or as one).
            let node = root.nth(index);
            let bad: &[u8] = [
                b"\xff".as_slice(),
                b"\xc3\x28",
                b"\xed\xa0\x80",
                b"\xf8\x88\x80\x80\x80",
            ][rng.gen_range(0..4)];
            match node {
                J::Str(s) => {
                    let at = rng.gen_range(0..=s.len());
                    s.splice(at..at, bad.iter().copied());
                }
                other => *other = J::Str(bad.to_vec()),
            }
            "invalid utf-8"
        }
        7 => {
            for _ in 0..8 {
                let i = rng.gen_range(0..n);
                if let J::Obj(entries) = root.nth(i) {
                    if !entries.is_empty() {
                        let k = rng.gen_range(0..entries.len());
                        let (key, value) = entries[k].clone();
                        let value = if rng.gen_bool(0.5) { value } else { random_scalar(rng) };
                        let at = rng.gen_range(0..=entries.len());
                        entries.insert(at, (key, value));
                        return "duplicate key";
                    }
                }
            }
            "no-op"
        }
        8 => {
            *root.nth(index) = odd_number(rng);
            "500-digit number"
        }
        _ => {
            *root.nth(index) = odd_string(rng);
            "odd string"
        }
    }
}

/// Byte-level damage after serialization.
fn mutate_bytes(body: &mut Vec<u8>, rng: &mut StdRng) -> &'static str {
    if body.is_empty() {
        body.push(b'{');
        return "one byte";
    }
    match rng.gen_range(0..4) {
        0 => {
            body.truncate(rng.gen_range(0..body.len()));
            "truncated"
        }
        1 => {
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..body.len());
                body[i] ^= 1 << rng.gen_range(0..8);
            }
            "bit flips"
        }
        2 => {
            let i = rng.gen_range(0..body.len());
            let junk: &[u8] = [b"\xff".as_slice(), b",", b"}", b"\"", b"\x00", b"]]]]"][rng.gen_range(0..6)];
            body.splice(i..i, junk.iter().copied());
            "inserted bytes"
        }
        _ => {
            let i = rng.gen_range(0..body.len());
            let j = (i + rng.gen_range(1..64)).min(body.len());
            body.drain(i..j);
            "deleted bytes"
        }
    }
}

/// A mutated JSON body: 1–3 structural mutations, sometimes byte damage, sometimes a whole
/// different root.
fn mutate_json(seed: &Value, rng: &mut StdRng) -> (Vec<u8>, String) {
    if rng.gen_range(0..40) == 0 {
        let roots: [&[u8]; 8] = [
            b"",
            b"   ",
            b"[]",
            b"null",
            b"\"posting\"",
            b"123",
            b"{}",
            b"{\"posting_info\":[]}",
        ];
        let root = roots[rng.gen_range(0..roots.len())];
        return (root.to_vec(), "odd root".into());
    }
    let mut tree = J::from_value(seed);
    let mut what = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        what.push(mutate_tree(&mut tree, rng));
    }
    let mut body = Vec::new();
    tree.write(&mut body);
    if rng.gen_range(0..5) == 0 {
        what.push(mutate_bytes(&mut body, rng));
    }
    if body.len() > MAX_BODY {
        body.truncate(MAX_BODY);
        what.push("cut to the size limit");
    }
    (body, what.join(" + "))
}

/// A mutated lookup form.
fn mutate_form(rng: &mut StdRng) -> (Vec<u8>, String) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"account_number".to_vec(), b"ACC-100200".to_vec()),
        (b"customer_reference".to_vec(), b"C-1001".to_vec()),
        (b"email".to_vec(), b"ana%40example.com".to_vec()),
        (b"ssn".to_vec(), b"123456789".to_vec()),
        (b"lookup_reference".to_vec(), b"LR-77".to_vec()),
    ];
    pairs.truncate(rng.gen_range(1..=pairs.len()));
    let mut what = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        let i = rng.gen_range(0..pairs.len().max(1));
        match rng.gen_range(0..9) {
            0 if !pairs.is_empty() => {
                pairs.remove(i);
                what.push("dropped field");
            }
            1 if !pairs.is_empty() => {
                let p = pairs[i].clone();
                pairs.push(p);
                what.push("repeated field");
            }
            2 if !pairs.is_empty() => {
                pairs[i].1 = huge_string(rng)
                    .iter()
                    .map(|b| if b.is_ascii_alphanumeric() { *b } else { b'a' })
                    .collect();
                what.push("huge value");
            }
            3 if !pairs.is_empty() => {
                pairs[i].1 =
                    [b"%zz".as_slice(), b"%", b"%ff%fe", b"%c3%28", b"%00", b"%E2%80%AE"][rng.gen_range(0..6)].to_vec();
                what.push("broken percent-escape");
            }
            4 if !pairs.is_empty() => {
                pairs[i].1 = vec![0xff, 0xfe, b'a'];
                what.push("raw bytes");
            }
            5 => {
                for k in 0..5_000 {
                    pairs.push((format!("f{k}").into_bytes(), b"v".to_vec()));
                }
                what.push("thousands of pairs");
            }
            6 if !pairs.is_empty() => {
                pairs[i].1 = b"".to_vec();
                what.push("empty value");
            }
            7 => {
                pairs.push((b"ssn".to_vec(), b"12345678".to_vec()));
                what.push("bad ssn");
            }
            _ => {
                pairs.push((b"=&&=".to_vec(), b"==".to_vec()));
                what.push("separators");
            }
        }
    }
    let mut body = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        body.extend_from_slice(k);
        if rng.gen_range(0..20) > 0 {
            body.push(b'=');
        }
        body.extend_from_slice(v);
    }
    if rng.gen_range(0..6) == 0 {
        what.push(mutate_bytes(&mut body, rng));
    }
    body.truncate(MAX_BODY);
    (body, what.join(" + "))
}

/// The content type to send: mostly the right one, sometimes wrong, odd or missing.
fn content_type(right: &'static str, rng: &mut StdRng) -> (Option<&'static str>, bool) {
    match rng.gen_range(0..20) {
        0 => (None, false),
        1 => (Some("text/plain"), false),
        2 => (
            Some(if right == "application/json" {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            }),
            false,
        ),
        3 => (Some("application/json, text/plain"), false),
        4 => (Some("multipart/form-data; boundary=x"), false),
        5 => (
            Some(if right == "application/json" {
                "application/json; charset=utf-8"
            } else {
                "application/x-www-form-urlencoded; charset=utf-8"
            }),
            true,
        ),
        _ => (Some(right), true),
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

fn payment_seed(id: &str) -> Value {
    let mut body = payment(id, "ACC-100201", "12.34", "processed");
    let info = &mut body["posting_info"];
    info["card_cvv_number"] = json!("123");
    info["payment_reference"] = json!(format!("REF-{id}"));
    info["token"] = json!("tok_123");
    info["comments"] = json!("paid at the counter #4");
    info["fee"] = json!({"fee_type": "convenience", "fee_amount": "1.50"});
    info["custom_fields"] = json!({"a": "b", "list": [1, 2, {"c": null}]});
    info["customer"]["address"] = json!({"address_line1": "1 Main St", "address_zip1": "07102"});
    info["payment_entry_date"] = json!("2026-11-20");
    body
}

fn reversal_seed(payment_id: &str) -> Value {
    let mut body = payment(payment_id, "ACC-100800", "50.00", "returned");
    body["posting_info"]["return_code"] = json!("R01");
    body["posting_info"]["payment_return_date"] = json!("2026-11-22");
    body
}

fn refund_seed(id: &str, payment_id: &str, rng: &mut StdRng) -> Value {
    let amount = if rng.gen_bool(0.5) { Some("1.00") } else { None };
    let mut body = refund(id, payment_id, amount, "processed");
    body["posting_info"]["refund_reference"] = json!(format!("RR-{id}"));
    body["posting_info"]["fee_refund"] = json!({"fee_refund_amount": "0.50", "fee_type": "convenience"});
    body["posting_info"]["refund_date"] = json!("2026-11-22");
    body
}

fn event_seed(event_id: i64, rng: &mut StdRng) -> Value {
    let mut event = captured_event(event_id, &format!("hostile-{event_id}"), Some("ACC-100201"), 250);
    match rng.gen_range(0..4) {
        0 => {
            event["eventType"] = json!("RefundSucceeded");
            event["refund"] = json!({"id": "1", "createdAt": "2026-11-21T10:00:00Z", "status": "succeeded",
                                     "amount": 100, "currency": "USD"});
        }
        1 => {
            event["eventType"] = json!("InvoicePaid");
            event.as_object_mut().expect("object").remove("payment");
        }
        _ => {}
    }
    event
}

// ---------------------------------------------------------------------------------------------
// Answers

const ORBIPAY_CODES: [(u16, &[&str]); 6] = [
    (400, &["error_field"]),
    (401, &["error_unauthorized"]),
    (403, &["error_forbidden"]),
    (404, &["error_customer_missing"]),
    (413, &["error_payload_too_large"]),
    (
        422,
        &[
            "error_duplicate_posting",
            "error_posting_rejected",
            "error_account_closed",
            "error_account_status_invalid",
            "error_payment_amount_low",
            "error_payment_amount_high",
            "error_member_warning",
            "error_account_warning",
            "error_refund_initiate",
        ],
    ),
];

/// An Orbipay error answer is exactly `{"errors": [{"code", "message", "field"?}, ...]}` with
/// codes that belong to its status.
fn orbipay_error_problem(status: u16, body: &Value) -> Option<String> {
    let codes = ORBIPAY_CODES.iter().find(|(s, _)| *s == status).map(|(_, c)| *c)?;
    let Some(object) = body.as_object().filter(|o| o.len() == 1) else {
        return Some("not an {\"errors\"} envelope".into());
    };
    let Some(errors) = object.get("errors").and_then(Value::as_array).filter(|e| !e.is_empty()) else {
        return Some("no errors list".into());
    };
    for e in errors {
        let Some(e) = e.as_object() else {
            return Some("an error that is not an object".into());
        };
        let code_ok = e
            .get("code")
            .and_then(Value::as_str)
            .is_some_and(|c| codes.contains(&c));
        let message_ok = e.get("message").is_some_and(Value::is_string);
        let field_ok = e.get("field").is_none_or(Value::is_string);
        let keys_ok = e.keys().all(|k| matches!(k.as_str(), "code" | "message" | "field"));
        if !(code_ok && message_ok && field_ok && keys_ok) {
            return Some(format!("bad error item {e:?}"));
        }
    }
    None
}

struct Answer {
    status: u16,
    body: Value,
    json_content_type: bool,
    has_request_id: bool,
}

async fn send(
    remote: &Remote,
    path: &str,
    headers: &[(&str, String)],
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Answer {
    let mut req = remote.client.post(format!("{}{path}", remote.address)).body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: no answer (did the server fall over?): {e}"));
    let status = r.status().as_u16();
    let json_content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let has_request_id = r.headers().contains_key("x-request-id");
    let bytes = r.bytes().await.expect("answer body");
    Answer {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        json_content_type,
        has_request_id,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Lookup,
    Payment,
    Reversal,
    Refund,
    Webhook,
}

/// Tally per route and status, for the report.
type Tally = BTreeMap<(String, u16, String), usize>;

struct Run {
    remote: Remote,
    last_seq: u64,
    new_entries: Vec<Value>,
    tally: Tally,
}

impl Run {
    /// Sends one request and checks its answer's shape and what it did to the journal.
    async fn request(
        &mut self,
        route: Route,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: Vec<u8>,
        what: &str,
        signed: bool,
    ) {
        let path = match route {
            Route::Lookup => Endpoint::Lookup.path(),
            Route::Payment => Endpoint::Payment.path(),
            Route::Reversal => Endpoint::Reversal.path(),
            Route::Refund => Endpoint::Refund.path(),
            Route::Webhook => "/empayre/webhook",
        };
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        let a = send(&self.remote, path, headers, content_type, body).await;
        let context = format!(
            "{path} [{what}] ct={content_type:?} signed={signed} → {} {}\nbody: {shown}",
            a.status, a.body
        );
        assert!(a.status < 500, "a 5xx: {context}");
        assert!(a.json_content_type, "not JSON: {context}");
        assert!(a.has_request_id, "no x-request-id: {context}");
        let outcome = match route {
            Route::Webhook => {
                let outcome = match (a.status, a.body["status"].as_str()) {
                    (200, Some(s @ ("stored" | "duplicate" | "quarantined"))) if signed => s.to_string(),
                    (401 | 413, _)
                        if a.body["message"].is_string() && a.body.as_object().is_some_and(|o| o.len() == 1) =>
                    {
                        assert!(!signed || a.status == 413, "a signed body refused: {context}");
                        "refused".into()
                    }
                    _ => panic!("not an Empayre answer: {context}"),
                };
                outcome
            }
            _ if a.status == 200 => {
                let ok = match route {
                    Route::Lookup => a.body["list"].is_array(),
                    _ => a.body["posting_info"]["id"].is_string(),
                };
                assert!(ok, "a 200 without its answer: {context}");
                "applied".into()
            }
            _ => {
                if let Some(problem) = orbipay_error_problem(a.status, &a.body) {
                    panic!("{problem}: {context}");
                }
                first_error(&a.body).0
            }
        };
        *self
            .tally
            .entry((path.to_string(), a.status, outcome.clone()))
            .or_default() += 1;

        // What the request did to the ledger.
        let entries = self.remote.journal_after(self.last_seq).await;
        if let Some(last) = entries.last() {
            self.last_seq = last["seq"].as_u64().expect("seq");
        }
        let may_move = matches!(outcome.as_str(), "applied" | "stored") && route != Route::Lookup;
        if !may_move {
            assert!(
                entries.is_empty(),
                "a request that applied nothing moved money: {context}\n{entries:?}"
            );
        } else {
            assert!(
                entries.len() <= 1,
                "one request, several journal entries: {context}\n{entries:?}"
            );
            if let Some(e) = entries.first() {
                let own = match route {
                    Route::Payment | Route::Reversal => {
                        e["kind"] == "payment" && e["record_id"] == a.body["posting_info"]["id"]
                    }
                    Route::Refund => e["kind"] == "refund" && e["record_id"] == a.body["posting_info"]["id"],
                    _ => e["kind"] == "empayre-payment" || e["kind"] == "empayre-refund",
                };
                assert!(own, "a journal entry for another record: {context}\n{e}");
                if route == Route::Payment {
                    let amount: Decimal = a.body["posting_info"]["amount"]
                        .as_str()
                        .expect("amount")
                        .parse()
                        .expect("decimal");
                    assert_eq!(e["delta"], (-amount).to_string(), "{context}");
                }
            }
        }
        self.new_entries.extend(entries);
    }
}

#[tokio::test]
async fn thousands_of_mutated_bodies_never_get_a_5xx_or_move_money_unacknowledged() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("store");
    let config = dir.path().join("hostile.toml");
    std::fs::write(
        &config,
        format!(
            // The throttle of failed authentications is off: this run sends a wrong key now and
            // then among thousands of requests from one address (tests/api/throttle.rs tests it).
            "[server]\nport = 0\nworkers = 2\nauth_failures_per_minute = 0\n[store]\npath = \"{}\"\n\
             cache_capacity_bytes = 33554432\n[log]\nlevel = \"warn\"\n",
            store.display()
        ),
    )
    .expect("config");
    let log = dir.path().join("server.log");
    let mut server = start_binary(&config, &log).await;
    let remote = Remote::new(&server.address, DEMO_ADMIN_TOKEN);
    let mut rng = StdRng::seed_from_u64(SEED);
    let signer = fixture_signer();

    // Payments for the reversals (ACC-100800) and refunds (ACC-100200) to target.
    let targets: Vec<(String, &str)> = (0..200)
        .map(|i| (format!("{}", 3_000_000 + i), "ACC-100800"))
        .chain((0..200).map(|i| (format!("{}", 3_100_000 + i), "ACC-100200")))
        .collect();
    for chunk in targets.chunks(16) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|(id, account)| payment(id, account, "50.00", "processed"))
            .collect();
        let answers = futures_util::future::join_all(bodies.iter().map(|b| remote.post("/paymentposting", b))).await;
        assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    }
    let before = remote.demo_balances().await;
    let journal = remote.journal().await;
    let mut run = Run {
        remote: remote.clone(),
        last_seq: journal.len() as u64,
        new_entries: Vec::new(),
        tally: Tally::new(),
    };
    let orbipay_headers = |rng: &mut StdRng| -> Vec<(&'static str, String)> {
        match rng.gen_range(0..40) {
            0 => vec![],
            1 => vec![("client-key", CLIENT_KEY.into()), ("api-key", "wrong".into())],
            _ => vec![("client-key", CLIENT_KEY.into()), ("api-key", API_KEY.into())],
        }
    };

    for i in 0..PER_ORBIPAY_ROUTE {
        // Lookup.
        let (body, what) = if rng.gen_range(0..10) == 0 {
            mutate_json(&json!({"account_number": "ACC-100200"}), &mut rng)
        } else {
            mutate_form(&mut rng)
        };
        let (ct, _) = content_type("application/x-www-form-urlencoded", &mut rng);
        let headers = orbipay_headers(&mut rng);
        run.request(Route::Lookup, ct, &headers, body, &what, false).await;

        // Payment, with a fresh id.
        let (body, what) = mutate_json(&payment_seed(&format!("{}", 4_000_000 + i)), &mut rng);
        let (ct, _) = content_type("application/json", &mut rng);
        let headers = orbipay_headers(&mut rng);
        run.request(Route::Payment, ct, &headers, body, &what, false).await;

        // Reversal of one of the target payments.
        let target = &targets[rng.gen_range(0..200)].0;
        let (body, what) = mutate_json(&reversal_seed(target), &mut rng);
        let (ct, _) = content_type("application/json", &mut rng);
        let headers = orbipay_headers(&mut rng);
        run.request(Route::Reversal, ct, &headers, body, &what, false).await;

        // Refund of another, with a fresh id.
        let target = targets[200 + rng.gen_range(0..200)].0.clone();
        let seed = refund_seed(&format!("{}", 5_000_000 + i), &target, &mut rng);
        let (body, what) = mutate_json(&seed, &mut rng);
        let (ct, _) = content_type("application/json", &mut rng);
        let headers = orbipay_headers(&mut rng);
        run.request(Route::Refund, ct, &headers, body, &what, false).await;
    }

    for i in 0..SIGNED_EVENTS + UNSIGNED_EVENTS {
        let seed = event_seed(6_000_000 + i as i64, &mut rng);
        let (body, what) = mutate_json(&seed, &mut rng);
        let (ct, _) = content_type("application/json", &mut rng);
        let (signature, signed) = if i < SIGNED_EVENTS {
            (Some(signer.sign_header(&body).expect("sign")), true)
        } else {
            let original = serde_json::to_vec(&seed).expect("json");
            match i % 4 {
                0 => (None, false),
                // The signature of the body before it was mutated (unless the mutation was a no-op).
                1 if original != body => (Some(signer.sign_header(&original).expect("sign")), false),
                2 => {
                    let mut header = signer.sign_header(&body).expect("sign").into_bytes();
                    let k = rng.gen_range(0..header.len());
                    header[k] = if header[k] == b'A' { b'B' } else { b'A' };
                    (Some(String::from_utf8(header).expect("ascii")), false)
                }
                _ => (
                    Some("alg=RS256; digest=".to_string() + &"A".repeat(rng.gen_range(0..400))),
                    false,
                ),
            }
        };
        let headers: Vec<(&str, String)> = signature.map(|s| ("content-signature", s)).into_iter().collect();
        run.request(Route::Webhook, ct, &headers, body, &what, signed).await;
    }

    // Every account moved by exactly the entries the acknowledged requests made.
    let after = remote.demo_balances().await;
    let mut moved: BTreeMap<String, Decimal> = BTreeMap::new();
    for e in &run.new_entries {
        *moved
            .entry(e["account_number"].as_str().expect("account").to_string())
            .or_default() += e["delta"].as_str().expect("delta").parse::<Decimal>().expect("decimal");
    }
    for (account, b) in &before {
        assert_eq!(
            after[account] - b,
            moved.get(account).copied().unwrap_or_default(),
            "{account} moved by something other than acknowledged requests"
        );
    }
    assert_journal_consistent(&remote.journal().await, &demo_opening_balances(), &after);

    // Still serving, still the same process.
    assert!(server.child.try_wait().expect("wait").is_none(), "the server exited");
    let live = remote
        .client
        .get(format!("{}/health/live", remote.address))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), 200);
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("panicked"), "a panic in the log:\n{logged}");
    server.kill().await;

    let total: usize = run.tally.values().sum();
    println!("{total} hostile requests in {:?}, seed {SEED:#x}", started.elapsed());
    for ((path, status, outcome), n) in &run.tally {
        println!("  {path} {status} {outcome}: {n}");
    }
}
