//! Response examples for `/openapi.json`: what each operation answers, by its `operationId` and
//! status, written from real answers of the demo set-up (`config/default.toml`, with the store
//! seeded by replaying `fixtures/empayre`, as the conformance gate does).
//!
//! [`insert`] puts each under its response's content when the document is served, and adds the
//! examples every route of a channel shares (its 401, 413, 429, 503 ...). They cannot drift:
//! a unit test checks every example against its response's schema, and an API test checks that
//! the service's real answers have the same shape as the 2xx examples.

use serde_json::{json, Map, Value};

const AT: &str = "2026-12-07T06:14:16Z";

/// An admin error body.
fn admin_error(code: &str, message: &str, field: Option<&str>) -> Value {
    json!({"code": code, "message": message, "field": field})
}

/// An EBPP error envelope with one error.
fn ebpp_error(code: &str, message: &str, field: Option<&str>) -> Value {
    match field {
        Some(field) => json!({"errors": [{"code": code, "message": message, "field": field}]}),
        None => json!({"errors": [{"code": code, "message": message}]}),
    }
}

fn record_example() -> Value {
    json!({
        "kind": "empayre-payment", "id": "demo:2RpA7xK1:1", "channel": "empayre", "status": "captured",
        "live": true, "amount": "25.00", "currency": "USD", "account_number": "ACC-100200",
        "confirmation_number": null, "reference": null, "parent_id": null,
        "refund_ids": ["demo:2RpA7xK1:1:1"], "payment_method": null, "client_key": "demo",
        "received_at": "2026-12-07T06:14:08Z", "updated_at": "2026-12-07T06:14:08Z", "origin": "webhook",
        "history": [
            {"status": "processed", "at": "2026-12-07T06:14:08Z", "request_id": "replay-040_payment_processed", "origin": "webhook"},
            {"status": "captured", "at": "2026-12-07T06:14:08Z", "request_id": "replay-050_payment_captured", "origin": "webhook"}
        ],
        "details": {"source": "demo", "invoice_id": "2RpA7xK1", "payment_id": "1", "amount_minor": 2500,
                    "last_event_id": 184408, "state_at": "2026-11-22T10:00:03.500Z"}
    })
}

fn ebpp_record_example() -> Value {
    json!({
        "kind": "payment", "id": "1001", "channel": "orbipay", "status": "processed", "live": true,
        "amount": "25.00", "currency": "USD", "account_number": "ACC-100200", "confirmation_number": "A12N12",
        "reference": "P000000000002", "parent_id": null, "refund_ids": ["9001"], "payment_method": "ach",
        "client_key": "demo-client", "received_at": AT, "updated_at": AT,
        "history": [{"status": "processed", "at": AT, "request_id": "2b6bd508aa0d42dcbc038f62b729c7cb"}],
        "details": {"payment_date": "2026-11-21", "payment_schedule_type": "one_time_payment",
                    "payment_amount_type": "other", "funding_account_number": "xxxxxx6789"}
    })
}

fn journal_entry_example() -> Value {
    json!({"seq": 1, "at": "2026-12-07T06:14:08Z", "channel": "empayre", "kind": "empayre-payment",
           "record_id": "demo:2RpA7xK1:1", "account_number": "ACC-100200", "status": "captured",
           "delta": "-25.00", "balance_after": "85.05", "origin": "webhook"})
}

fn address() -> Value {
    json!({"address_line1": "1 Main St", "address_city": "Newark", "address_state": "NJ",
           "address_country": "USA", "address_zip1": "07102"})
}

fn event_summary_example() -> Map<String, Value> {
    let summary = json!({
        "seq": 14, "source": "demo", "event_id": 184415, "event_type": "PaymentCaptured", "invoice_id": "2RpE7xK5",
        "status": "stored", "reason": null, "received_at": "2026-12-07T06:14:08Z",
        "body_sha256": "a84d4cf3154b8441fb1e58fa9208e1a01910acc30e82e4629e8d4414baeb2709",
        "changes": [{"kind": "empayre-payment", "id": "demo:2RpE7xK5:1", "status": "captured"}],
        "stale": []
    });
    match summary {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn report_example() -> Value {
    json!({
        "id": "rc-5f0c2a9e", "source": "demo", "trigger": "manual",
        "from": "2026-12-06T00:00:00Z", "to": "2026-12-07T00:00:00Z", "dry_run": false,
        "started_at": AT, "finished_at": AT, "status": "ok", "error": null,
        "counts": {"seen": 2, "ignored": 0, "already_applied": 1, "applied": 1, "unmatched": 0, "failed": 0},
        "items": [{"kind": "payment", "invoice_id": "2RpH7xK8", "payment_id": "1", "refund_id": null,
                   "status": "captured", "amount": "12.00", "currency": "USD", "outcome": "applied",
                   "delta": "-12.00", "reason": null}],
        "items_truncated": false
    })
}

/// `(operationId, status, example)` for every operation's own answers. The answers a whole
/// channel shares are added by [`insert`].
pub fn response_examples() -> Vec<(&'static str, u16, Value)> {
    let account = json!({
        "account_number": "ACC-100200", "customer_account_reference": "R-9", "account_holder_name": "Ana Diaz",
        "nickname": "Home", "status": "active", "currency_code3d": "USD", "current_balance": "95.05",
        "current_statement_balance": "100.05", "minimum_payment_due": "25.00", "past_amount_due": "0.00",
        "payment_due_date": "2026-12-10", "statement_date": "2026-11-20", "address": address()
    });
    let mut event_detail = event_summary_example();
    event_detail.insert("key_id".into(), json!("82e3ee1f330b31b1"));
    event_detail.insert("request_id".into(), json!("replay-150_payment_captured_unmatched"));
    event_detail.insert(
        "body".into(),
        json!("{\"eventID\":184415,\"occuredAt\":\"2026-11-21T13:00:00Z\",\"topic\":\"InvoicesTopic\",\"eventType\":\"PaymentCaptured\",\"invoice\":{\"id\":\"2RpE7xK5\",\"status\":\"paid\",\"amount\":1500,\"currency\":\"USD\"},\"payment\":{\"id\":\"1\",\"status\":\"captured\",\"amount\":1500,\"currency\":\"USD\"}}"),
    );
    event_detail.insert("body_encoding".into(), json!("text"));
    vec![
        // ---- EBPP ----
        (
            "lookup",
            200,
            json!({"list": [{
                "customer_reference": "C-1001", "lookup_reference": "LR-77", "first_name": "Ana", "last_name": "Diaz",
                "email": "ana@example.com", "home_phone": "2015550101", "status": "active", "address": address(),
                "customer_accounts": {"list": [account]}
            }], "total_results_count": "1", "has_more_results": "false"}),
        ),
        (
            "lookup",
            404,
            ebpp_error("error_customer_missing", "no customer matches the criteria", None),
        ),
        (
            "payment",
            200,
            json!({"posting_info": {"id": "1001", "payment_reference": "P000000000002", "confirmation_number": "A12N12",
                   "status": "processed", "account_number": "ACC-100200", "amount": "25.00", "currency_code3d": "USD",
                   "current_balance": "70.05", "posted_at": AT}}),
        ),
        (
            "payment",
            422,
            ebpp_error("error_duplicate_posting", "a payment with this id was already posted with other data", Some("id")),
        ),
        (
            "reversal",
            200,
            json!({"posting_info": {"id": "1002", "payment_reference": "P000000000003", "confirmation_number": "A12N13",
                   "status": "returned", "account_number": "ACC-100200", "amount": "10.00", "currency_code3d": "USD",
                   "current_balance": "80.05", "posted_at": AT}}),
        ),
        (
            "reversal",
            422,
            ebpp_error("error_posting_rejected", "no payment with this id was posted", Some("id")),
        ),
        (
            "refund",
            200,
            json!({"posting_info": {"id": "9001", "refund_reference": "R000000000006", "confirmation_number": "RF1",
                   "status": "processed", "source_payment_id": "1001", "account_number": "ACC-100200",
                   "refund_amount": "5.00", "current_balance": "75.05", "posted_at": AT}}),
        ),
        (
            "refund",
            422,
            ebpp_error("error_posting_rejected", "no payment with this id was posted", Some("source_payment_id")),
        ),
        // ---- Empayre ----
        ("empayre_webhook", 200, json!({"status": "stored"})),
        ("empayre_webhook_source", 200, json!({"status": "duplicate"})),
        ("empayre_webhook_source", 404, json!({"message": "unknown Empayre source"})),
        // ---- ops ----
        ("live", 200, json!({"status": "live"})),
        ("ready", 200, json!({"status": "ready"})),
        ("ready", 503, json!({"status": "not_ready", "failed_check": "disk_free"})),
        (
            "metrics",
            200,
            json!("# TYPE biller_inbox_requests_total counter\nbiller_inbox_requests_total{route=\"/paymentposting\",status=\"200\"} 3\n"),
        ),
        (
            "openapi_json",
            200,
            json!({"openapi": "3.1.0", "info": {"title": "biller-inbox", "version": "0.1.0"}, "paths": {}}),
        ),
        // ---- admin ----
        ("search", 200, json!({"totalCount": 1, "records": [record_example()]})),
        (
            "search",
            400,
            admin_error(
                "window_required",
                "a received_at window is required: between, or a lower and an upper bound",
                Some("searchParameters"),
            ),
        ),
        ("record", 200, ebpp_record_example()),
        ("record", 404, admin_error("not_found", "no such record", Some("id"))),
        (
            "account",
            200,
            json!({
                "account": {
                    "account_number": "ACC-100200", "customer_account_reference": "R-9", "account_holder_name": "Ana Diaz",
                    "nickname": "Home", "status": "active", "currency": "USD", "warning": null, "current_balance": "85.05",
                    "current_statement_balance": "100.05", "minimum_payment_due": "25.00", "past_amount_due": "0.00",
                    "payment_due_date": "2026-12-10", "statement_date": "2026-11-20", "payoff_amount": null,
                    "payoff_expiry_date": null, "min_payment_amount": "1.00", "max_payment_amount": "5000.00",
                    "address": address(), "customer_references": ["C-1001", "C-1002"]
                },
                "customers": [{
                    "customer_reference": "C-1001", "lookup_reference": "LR-77", "first_name": "Ana", "last_name": "Diaz",
                    "email": "ana@example.com", "home_phone": "2015550101", "status": "active", "warning": null,
                    "address": address(), "account_numbers": ["ACC-100200", "ACC-100201"]
                }],
                "journal": [journal_entry_example()]
            }),
        ),
        ("account", 404, admin_error("not_found", "no such account", Some("account_number"))),
        (
            "put_accounts",
            200,
            json!({"accounts_created": 1, "accounts_updated": 0, "profiles_created": 1, "profiles_updated": 0}),
        ),
        (
            "put_accounts",
            400,
            json!({"code": "validation", "message": "nothing imported; 1 bad entry: entry 0: customers[0].ssn: must be 9 digits",
                   "field": "customers[0].ssn",
                   "errors": [{"location": "entry 0", "field": "customers[0].ssn", "message": "must be 9 digits"}]}),
        ),
        (
            "put_accounts",
            415,
            admin_error(
                "unsupported_media_type",
                "the body is the accounts file: a JSON array as application/json, or JSON lines as application/x-ndjson",
                None,
            ),
        ),
        (
            "journal",
            200,
            json!({"entries": [journal_entry_example()], "next_after": 1}),
        ),
        (
            "journal",
            400,
            admin_error("bad_value", "limit is a whole number from 1 to 1000", Some("limit")),
        ),
        (
            "rejections",
            200,
            json!({"items": [{"at": AT, "channel": "orbipay", "endpoint": "/paymentreversalposting", "cause": "business_rule",
                              "code": "error_posting_rejected", "request_id": "5ea5c59e5f8f4d4fa132db17ff1f961f"},
                             {"at": "2026-12-07T06:14:08Z", "channel": "empayre", "endpoint": "/empayre/webhook",
                              "cause": "signature_missing", "code": null, "request_id": "replay-180_missing_signature"}]}),
        ),
        (
            "rejections",
            400,
            admin_error("bad_value", "limit is a whole number from 1 to 1000", Some("limit")),
        ),
        ("events", 200, json!({"items": [Value::Object(event_summary_example())]})),
        (
            "events",
            400,
            admin_error("bad_value", "status is stored or quarantined", Some("status")),
        ),
        ("event", 200, Value::Object(event_detail)),
        ("event", 400, admin_error("bad_value", "event_id must be an integer", Some("event_id"))),
        ("event", 404, admin_error("not_found", "no such event for this source", Some("event_id"))),
        (
            "quarantine",
            200,
            json!({"items": [{"id": 15, "source": "demo", "received_at": "2026-12-07T06:14:08Z",
                              "reason": "unknown eventType or topic, or a payload the type requires is missing",
                              "body_sha256": "0787f9b95a6805bb8eb799ceca7f254d176f36208f0b6ef28713cfc4b566d83c",
                              "body": "{\"eventID\":184416,\"eventType\":\"PaymentTeleported\",\"invoice\":{\"id\":\"2RpF7xK6\"}}",
                              "body_encoding": "text"}]}),
        ),
        (
            "quarantine",
            400,
            admin_error("bad_value", "limit is a whole number from 1 to 1000", Some("limit")),
        ),
        (
            "unmatched",
            200,
            json!({"items": [{"key": "demo:2RpE7xK5:1", "source": "demo", "invoice_id": "2RpE7xK5", "payment_id": "1",
                              "status": "captured", "amount": "15.00", "currency": "USD", "reason": "no_account",
                              "received_at": "2026-12-07T06:14:08Z"}]}),
        ),
        (
            "assign",
            200,
            json!({"key": "demo:2RpE7xK5:1", "account_number": "ACC-100200", "status": "captured", "delta": "-15.00",
                   "balance_after": "60.05", "journal_seq": 9}),
        ),
        ("assign", 400, admin_error("bad_value", "no such account", Some("account_number"))),
        ("assign", 404, admin_error("not_found", "no unmatched payment with this key", Some("key"))),
        ("runs", 200, json!({"items": [report_example()]})),
        (
            "runs",
            400,
            admin_error("bad_value", "limit is a whole number from 1 to 1000", Some("limit")),
        ),
        ("start", 200, report_example()),
        (
            "start",
            400,
            admin_error("bad_value", "until must be after since", Some("until")),
        ),
    ]
}

/// The answers every route of a channel shares, by status, for the operations of `tag`.
fn shared_examples(tag: &str) -> Vec<(u16, Value)> {
    match tag {
        "admin" => vec![
            (401, admin_error("unauthorized", "the bearer token is not valid", None)),
            (
                413,
                admin_error("payload_too_large", "request body is larger than 262144 bytes", None),
            ),
            (
                429,
                admin_error(
                    "too_many_requests",
                    "too many failed authentications from this address; retry in 42 seconds",
                    None,
                ),
            ),
            (
                503,
                admin_error(
                    "store_unavailable",
                    "the store cannot answer right now; try again",
                    None,
                ),
            ),
            (
                404,
                admin_error(
                    "admin_disabled",
                    "the admin API is disabled (admin.token is empty)",
                    None,
                ),
            ),
        ],
        "orbipay" => vec![
            (
                400,
                ebpp_error(
                    "error_field",
                    "amount must match ^[0-9]{1,14}(\\.[0-9]{1,2})?$",
                    Some("amount"),
                ),
            ),
            (401, ebpp_error("error_unauthorized", "authentication failed", None)),
            (403, ebpp_error("error_forbidden", "the client is disabled", None)),
            (
                413,
                ebpp_error("error_payload_too_large", "request body is too large", None),
            ),
            (
                429,
                ebpp_error(
                    "error_too_many_requests",
                    "too many failed authentications from this address; retry after Retry-After seconds",
                    None,
                ),
            ),
            (500, ebpp_error("error_processing", "internal error", None)),
            (
                503,
                ebpp_error("error_processing", "the store is unavailable, retry later", None),
            ),
        ],
        "empayre" => vec![
            (401, json!({"message": "signature is invalid"})),
            (413, json!({"message": "request body is too large"})),
            (
                429,
                json!({"message": "too many requests with a failing signature from this address; retry in 42 seconds"}),
            ),
            (503, json!({"message": "the store is unavailable, retry later"})),
        ],
        _ => Vec::new(),
    }
}

/// Puts every example into the served document: each under the first content of its response
/// (an operation's own example wins over its channel's shared one).
pub fn insert(doc: &mut Value) {
    let own = response_examples();
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut() {
            let id = operation["operationId"].as_str().unwrap_or_default().to_string();
            let tag = operation["tags"][0].as_str().unwrap_or_default().to_string();
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            let examples = shared_examples(&tag).into_iter().chain(
                own.iter()
                    .filter(|(op, _, _)| *op == id)
                    .map(|(_, s, e)| (*s, e.clone())),
            );
            for (status, example) in examples {
                let content = responses
                    .get_mut(&status.to_string())
                    .and_then(|r| r.get_mut("content"))
                    .and_then(Value::as_object_mut)
                    .and_then(|c| c.values_mut().next())
                    .and_then(Value::as_object_mut);
                if let Some(content) = content {
                    content.insert("example".into(), example);
                }
            }
        }
    }
}

/// A small JSON Schema check for the parts of the 2020-12 vocabulary the document uses (`$ref`
/// into the document, `type`, `enum`, `properties`, `required`, `additionalProperties`, `items`,
/// `minItems`, lengths, `minimum`/`maximum`, `pattern`, `oneOf`/`anyOf`/`allOf`); `format` is an
/// annotation. Errors name the JSON path. For the tests, which check that examples and real
/// answers follow the document.
pub fn conforms(doc: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let fail = |why: String| Err(format!("{path}: {why}"));
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        let Some(target) = doc.pointer(pointer) else {
            return fail(format!("unresolved {reference}"));
        };
        return conforms(doc, target, value, path);
    }
    if let Some(types) = schema.get("type") {
        let names: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => false,
        };
        if !names.iter().any(|t| is(t)) {
            return fail(format!("{value} is not of type {types}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(value) {
            return fail(format!("{value} is not one of {}", Value::Array(values.clone())));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|n| chars < n)
            || schema["maxLength"].as_u64().is_some_and(|n| chars > n)
        {
            return fail(format!("{text:?} has the wrong length"));
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let re = regex::Regex::new(pattern).map_err(|e| format!("{path}: pattern {pattern}: {e}"))?;
            if !re.is_match(text) {
                return fail(format!("{text:?} does not match {pattern}"));
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) || schema["maximum"].as_f64().is_some_and(|m| n > m) {
            return fail(format!("{n} is out of range"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                return fail(format!("{name} is required"));
            }
        }
        let properties = schema["properties"].as_object();
        for (name, item) in object {
            let at = format!("{path}.{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(property) => conforms(doc, property, item, &at)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => return fail(format!("{name} is not a property")),
                    Some(extra @ Value::Object(_)) => conforms(doc, extra, item, &at)?,
                    _ => {}
                },
            }
        }
    }
    if let Some(items) = value.as_array() {
        if schema["minItems"].as_u64().is_some_and(|n| (items.len() as u64) < n) {
            return fail("too few items".into());
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, item_schema, item, &format!("{path}[{i}]"))?;
            }
        }
    }
    for (keyword, need) in [("allOf", usize::MAX), ("anyOf", 1), ("oneOf", 1)] {
        let Some(branches) = schema.get(keyword).and_then(Value::as_array) else {
            continue;
        };
        let results: Vec<Result<(), String>> = branches.iter().map(|b| conforms(doc, b, value, path)).collect();
        let passed = results.iter().filter(|r| r.is_ok()).count();
        let ok = match keyword {
            "allOf" => passed == branches.len(),
            "oneOf" => passed == need,
            _ => passed >= need,
        };
        if !ok {
            let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
            return fail(format!(
                "{keyword}: {passed} of {} branches match ({})",
                branches.len(),
                why.join("; ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    /// Every example of every response (the operations' own and the shared ones) follows the
    /// response's schema, every 2xx has one, and every own example found its operation.
    #[test]
    fn every_response_example_follows_its_schema() {
        let doc = crate::openapi::document_json(&Settings::defaults());
        let mut ids = Vec::new();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let id = operation["operationId"].as_str().expect("operationId");
                ids.push(id.to_string());
                for (status, response) in operation["responses"].as_object().expect("responses") {
                    let where_ = format!("{method} {path} {status}");
                    for (media_type, content) in response["content"].as_object().into_iter().flatten() {
                        let Some(example) = content.get("example") else {
                            assert!(
                                !status.starts_with('2') || media_type == "text/csv",
                                "{where_} {media_type} has no example"
                            );
                            continue;
                        };
                        if let Err(why) = conforms(&doc, &content["schema"], example, "$") {
                            panic!("{where_}: the example does not follow the schema: {why}");
                        }
                        checked += 1;
                    }
                    if status != "200" && status.starts_with('2') {
                        assert!(response.get("content").is_some(), "{where_}");
                    }
                }
            }
        }
        for (id, status, _) in response_examples() {
            assert!(ids.iter().any(|i| i == id), "no operation {id}");
            let found = doc["paths"]
                .as_object()
                .expect("paths")
                .values()
                .flat_map(|item| item.as_object().into_iter().flat_map(|m| m.values()))
                .any(|op| op["operationId"] == id && op["responses"].get(status.to_string()).is_some());
            assert!(found, "{id} documents no {status} for its example");
        }
        assert!(checked >= 100, "{checked} examples checked");
    }

    /// The checker refuses what it should (a test of the test).
    #[test]
    fn the_checker_refuses_examples_that_break_the_schema() {
        let doc = crate::openapi::document_json(&Settings::defaults());
        let journal = json!({"$ref": "#/components/schemas/JournalPage"});
        let mut good = json!({"entries": [journal_entry_example()], "next_after": 1});
        assert_eq!(conforms(&doc, &journal, &good, "$"), Ok(()));
        for (pointer, bad) in [
            ("/entries/0/origin", json!("replay")),
            ("/entries/0/kind", json!("transfer")),
            ("/entries/0/seq", json!("1")),
            ("/next_after", json!(-1)),
        ] {
            let mut broken = good.clone();
            *broken.pointer_mut(pointer).expect("pointer") = bad.clone();
            assert!(conforms(&doc, &journal, &broken, "$").is_err(), "{pointer} = {bad}");
        }
        good.as_object_mut().expect("object").remove("next_after");
        assert!(
            conforms(&doc, &journal, &good, "$").is_err(),
            "a required field is missing"
        );
    }
}
