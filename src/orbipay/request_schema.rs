//! The JSON Schemas of the EBPP request bodies, written from the rules `wire` enforces (the same
//! pattern strings, limits and value lists), so the document says exactly what a posting or a
//! lookup must be. They are plain JSON Schema rather than derived types because the rules need
//! what utoipa's model cannot say: `""` meaning absent, type lists, `not`, `anyOf` over required
//! fields. `openapi::document_json` puts them into the served document in place of the
//! placeholders the handlers' attributes name.

use serde_json::{json, Value};

use super::enums::{
    PAYMENT_AMOUNT_TYPES, PAYMENT_METHODS, PAYMENT_SCHEDULE_TYPES, REFUND_TYPES, REVERSAL_STATUSES, STATUSES,
};
use super::wire::patterns::{
    ACCOUNT_NUMBER, AMOUNT, COMMENTS, CONFIRMATION, CURRENCY, CVV, DATE, EBPP_REFERENCE, EMAIL, ID, REFERENCE,
    RETURN_CODE, SSN, TOKEN,
};

/// Every hand-written schema, by its name under `components/schemas`.
pub fn request_schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("LookupForm", lookup_form()),
        ("PaymentPosting", payment_object(STATUSES, "A payment")),
        (
            "ReversalPosting",
            payment_object(
                REVERSAL_STATUSES,
                "A payment that was cancelled, returned, declined or disputed: the payment object \
                 of an earlier posting with a status that is not live",
            ),
        ),
        ("RefundPosting", refund_object()),
        ("PaymentPostingRequest", envelope("PaymentPosting", payment_examples())),
        (
            "ReversalPostingRequest",
            envelope("ReversalPosting", reversal_examples()),
        ),
        ("RefundPostingRequest", envelope("RefundPosting", refund_examples())),
    ]
}

/// `pattern` with `""` allowed too (EBPP's "absent"): `^(?:P)?$` for an anchored `^P$`.
fn or_empty(pattern: &str) -> String {
    let inner = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or(pattern);
    format!("^(?:{inner})?$")
}

/// A required string: present, not `""`, matching `pattern`.
fn required(pattern: &str) -> Value {
    json!({"type": "string", "pattern": pattern})
}

/// An optional string: absent, `null`, `""` or matching `pattern`.
fn optional(pattern: &str) -> Value {
    json!({"type": ["string", "null"], "pattern": or_empty(pattern)})
}

/// An optional string at most `max` characters long.
fn optional_limited(pattern: &str, max: usize) -> Value {
    json!({"type": ["string", "null"], "pattern": or_empty(pattern), "maxLength": max})
}

/// An optional string with no rule but its type.
fn text() -> Value {
    json!({"type": ["string", "null"]})
}

fn one_of(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn optional_one_of(values: &[&str]) -> Value {
    let mut all: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    all.extend([json!(""), Value::Null]);
    json!({"type": ["string", "null"], "enum": all})
}

fn date(required_: bool) -> Value {
    let mut schema = if required_ { required(DATE) } else { optional(DATE) };
    schema["description"] = json!("A real calendar date (2024-02-30 is refused); month and day may have one digit");
    schema
}

/// An object with the given properties and required keys; other keys are accepted and kept.
fn object(properties: Value, required_keys: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required_keys})
}

/// An optional object: absent, `null` and `""` mean absent.
fn optional_object(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}, {"const": ""}]})
}

fn customer() -> Value {
    object(
        json!({
            "customer_reference": optional_limited(EBPP_REFERENCE, 100),
            "email": optional_limited(EMAIL, 100),
            "id": text(), "url": text(), "first_name": text(), "last_name": text(),
            "middle_name": text(), "home_phone": text(),
            "address": optional_object(json!({"type": "object"})),
        }),
        &[],
    )
}

fn customer_account(number_required: bool) -> Value {
    let number = if number_required {
        json!({"type": "string", "pattern": ACCOUNT_NUMBER, "maxLength": 100})
    } else {
        optional_limited(ACCOUNT_NUMBER, 100)
    };
    let required_keys: &[&str] = if number_required { &["account_number"] } else { &[] };
    object(
        json!({"account_number": number, "id": text(), "url": text()}),
        required_keys,
    )
}

fn funding_account() -> Value {
    let mut properties = serde_json::Map::new();
    for key in [
        "id",
        "url",
        "account_type",
        "account_subtype",
        "aba_routing_number",
        "issuer_name",
        "nickname",
        "display_text",
        "account_holder_name",
    ] {
        properties.insert(key.into(), text());
    }
    let mut number = text();
    number["description"] = json!("Stored masked: x for every character but the last four");
    properties.insert("account_number".into(), number);
    object(Value::Object(properties), &[])
}

fn network_response() -> Value {
    object(
        json!({"payment_auth_code": text(), "payment_response_code": text(), "payment_response_msg": text()}),
        &[],
    )
}

/// The payment object of `/paymentposting` (any status) and `/paymentreversalposting` (only the
/// statuses that are not live).
fn payment_object(statuses: &[&str], description: &str) -> Value {
    let mut schema = object(
        json!({
            "id": required(ID),
            "amount": required(AMOUNT),
            "confirmation_number": required(CONFIRMATION),
            "currency_code3d": required(CURRENCY),
            "custom_fields": {"type": "object"},
            "customer": customer(),
            "customer_account": customer_account(true),
            "funding_account": funding_account(),
            "payment_date": date(true),
            "payment_method": one_of(PAYMENT_METHODS),
            "payment_network_response": network_response(),
            "payment_schedule_type": one_of(PAYMENT_SCHEDULE_TYPES),
            "status": one_of(statuses),
            "url": text(),
            "payment_amount_type": optional_one_of(PAYMENT_AMOUNT_TYPES),
            "payment_entry_date": date(false),
            "payment_request_date": date(false),
            "expected_payment_settlement_date": date(false),
            "payment_return_date": date(false),
            "return_code": optional(RETURN_CODE),
            "payment_reference": optional(REFERENCE),
            "token": optional(TOKEN),
            "payment_notification_email": optional(EMAIL),
            "comments": optional_limited(COMMENTS, 1000),
            "card_cvv_number": {
                "type": ["string", "null"], "pattern": or_empty(CVV), "writeOnly": true,
                "description": "Checked, then dropped: never stored, logged or returned",
            },
            "fee": optional_object(object(
                json!({"fee_amount": optional(AMOUNT), "fee_type": text(), "id": text(), "url": text()}),
                &[],
            )),
        }),
        &[
            "id",
            "amount",
            "confirmation_number",
            "currency_code3d",
            "custom_fields",
            "customer",
            "customer_account",
            "funding_account",
            "payment_date",
            "payment_method",
            "payment_network_response",
            "payment_schedule_type",
            "status",
        ],
    );
    schema["description"] = json!(format!(
        "{description}. Every scalar is a string; \"\" means absent; unknown fields are accepted and \
         kept in the stored copy. Whether the account exists, takes payments and the amount is \
         within its limits are business rules (422), not shown here."
    ));
    schema
}

fn refund_object() -> Value {
    let source_payment = object(
        json!({
            "id": required(ID),
            "customer": optional_object(customer()),
            "customer_account": optional_object(customer_account(false)),
            "funding_account": optional_object(funding_account()),
        }),
        &["id"],
    );
    let mut schema = object(
        json!({
            "id": required(ID),
            "status": one_of(STATUSES),
            "confirmation_number": required(CONFIRMATION),
            "source_payment": source_payment,
            "url": text(),
            "refund_reference": optional(REFERENCE),
            "refund_type": optional_one_of(REFUND_TYPES),
            "refund_amount": {
                "type": ["string", "null"], "pattern": or_empty(AMOUNT),
                "description": "Absent: everything still refundable of the source payment",
            },
            "fee_refund": optional_object(object(
                json!({"fee_refund_amount": optional(AMOUNT), "fee_type": text()}),
                &[],
            )),
            "refund_date": date(false),
            "refund_entry_date": date(false),
            "expected_refund_settlement_date": date(false),
            "payment_network_response": optional_object(network_response()),
            "custom_fields": optional_object(json!({"type": "object"})),
            "comments": optional_limited(COMMENTS, 1000),
        }),
        &["id", "status", "confirmation_number", "source_payment"],
    );
    schema["description"] = json!(
        "A refund of an earlier payment. Every scalar is a string; \"\" means absent. That the \
         source payment was posted, is live and has enough left to refund are business rules \
         (422), not shown here."
    );
    schema
}

/// The body of a posting: `{"posting_info": OBJECT}`, or the bare object (no `posting_info`).
fn envelope(object_name: &str, examples: Vec<Value>) -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{object_name}")});
    json!({
        "description": "Canonically {\"posting_info\": {...}}; the bare object without posting_info is accepted too.",
        "examples": examples,
        "anyOf": [
            {"type": "object", "properties": {"posting_info": reference}, "required": ["posting_info"]},
            {"allOf": [reference, {"not": {"required": ["posting_info"]}}]},
        ],
    })
}

/// The lookup form: every field optional and `""` absent, at least one criterion given.
fn lookup_form() -> Value {
    let criteria = [
        ("customer_reference", EBPP_REFERENCE, Some(100)),
        ("account_number", ACCOUNT_NUMBER, Some(100)),
        ("ssn", SSN, None),
        ("email", EMAIL, Some(100)),
        ("lookup_reference", EBPP_REFERENCE, Some(100)),
    ];
    let mut properties = serde_json::Map::new();
    let mut one_given = Vec::new();
    for (name, pattern, max) in criteria {
        let mut field = json!({"type": "string", "pattern": or_empty(pattern)});
        if let Some(max) = max {
            field["maxLength"] = json!(max);
        }
        properties.insert(name.into(), field);
        one_given.push(json!({"required": [name], "properties": {name: {"minLength": 1}}}));
    }
    properties["ssn"]["description"] = json!("Nine digits; compared with the stored digest, never returned");
    properties["email"]["description"] = json!("Compared case-insensitively");
    json!({
        "examples": lookup_examples(),
        "description": "Lookup criteria: all given must hold, at least one must be given (\"\" is absent). \
                        A field given twice is refused; the schema cannot say so.",
        "type": "object",
        "properties": properties,
        "anyOf": one_given,
    })
}

/// Request examples that succeed on the demo store (`fixtures/accounts.json`) when sent in the
/// document's order: a payment to keep, a payment that the reversal example then returns, and a
/// refund of part of the first. They are the `examples` of the request schemas, which is where a
/// client (and schemathesis) finds them.
pub fn payment_examples() -> Vec<Value> {
    vec![
        posting(json!({
            "id": "1001", "amount": "25.00", "confirmation_number": "A12N12", "currency_code3d": "USD",
            "custom_fields": {}, "customer": {"customer_reference": "C-1001"},
            "customer_account": {"account_number": "ACC-100200"},
            "funding_account": {"account_number": "xxxxxx6789", "account_type": "bank"},
            "payment_date": "2026-11-21", "payment_method": "ach", "payment_network_response": {},
            "payment_schedule_type": "one_time_payment", "status": "processed",
        })),
        reversible_payment("processed"),
    ]
}

pub fn reversal_examples() -> Vec<Value> {
    let mut returned = reversible_payment("returned");
    returned["posting_info"]["return_code"] = json!("R01");
    returned["posting_info"]["payment_return_date"] = json!("2026-11-24");
    vec![returned]
}

pub fn refund_examples() -> Vec<Value> {
    vec![posting(json!({
        "id": "9001", "status": "processed", "confirmation_number": "RF1", "refund_amount": "5.00",
        "source_payment": {"id": "1001"},
    }))]
}

/// The lookup example (form fields).
pub fn lookup_examples() -> Vec<Value> {
    vec![json!({"account_number": "ACC-100200"})]
}

/// The second example payment, the one the reversal example reverses.
fn reversible_payment(status: &str) -> Value {
    posting(json!({
        "id": "1002", "amount": "10.00", "confirmation_number": "A12N13", "currency_code3d": "USD",
        "custom_fields": {}, "customer": {"customer_reference": "C-1001"},
        "customer_account": {"account_number": "ACC-100201"}, "funding_account": {},
        "payment_date": "2026-11-21", "payment_method": "visa_debit", "payment_network_response": {},
        "payment_schedule_type": "one_time_payment", "status": status,
    }))
}

fn posting(object: Value) -> Value {
    json!({ "posting_info": object })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orbipay::wire;

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).expect("json")
    }

    #[test]
    fn the_examples_pass_the_parsers() {
        for e in payment_examples() {
            assert!(wire::parse_payment(&body(&e)).is_ok(), "{e}");
        }
        for e in reversal_examples() {
            assert!(wire::parse_reversal(&body(&e)).is_ok(), "{e}");
        }
        for e in refund_examples() {
            assert!(wire::parse_refund(&body(&e)).is_ok(), "{e}");
        }
        for e in lookup_examples() {
            let form = serde_urlencoded::to_string(&e).expect("form");
            assert!(wire::parse_lookup(form.as_bytes()).is_ok(), "{e}");
        }
    }

    #[test]
    fn optional_patterns_take_empty_and_keep_their_anchors() {
        assert_eq!(or_empty("^[0-9]{1,20}$"), "^(?:[0-9]{1,20})?$");
        let re = regex::Regex::new(&or_empty(ID)).expect("compiles");
        assert!(re.is_match("") && re.is_match("12") && !re.is_match("1a"));
    }

    /// Every pattern the document shows compiles, here as in the parser.
    #[test]
    fn every_shown_pattern_compiles() {
        fn walk(v: &Value) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(p)) = o.get("pattern") {
                        regex::Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
                    }
                    o.values().for_each(walk);
                }
                Value::Array(a) => a.iter().for_each(walk),
                _ => {}
            }
        }
        for (_, schema) in request_schemas() {
            walk(&schema);
        }
    }
}
