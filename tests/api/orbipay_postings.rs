//! Payment, reversal and refund postings: field rules, business rules, sequences, concurrency.

use serde_json::{json, Value};

use crate::helpers::*;

const PAY: &str = "/paymentposting";
const REVERSE: &str = "/paymentreversalposting";
const REFUND: &str = "/paymentrefundposting";

async fn a_payment_credits_the_account_and_answers_the_posting(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let (status, body) = app
        .post_json(PAY, &payment("123456789", "ACC-100200", "101.05", "processed"))
        .await;
    assert_eq!(status, 200, "{body}");
    let info = &body["posting_info"];
    assert_eq!(info["id"], "123456789");
    assert_eq!(info["status"], "processed");
    assert_eq!(info["amount"], "101.05");
    assert_eq!(info["currency_code3d"], "USD");
    assert_eq!(info["account_number"], "ACC-100200");
    assert_eq!(info["current_balance"], "9.00");
    assert_eq!(info["confirmation_number"], "CONF123456789");
    assert!(info["payment_reference"].as_str().is_some_and(|r| r.starts_with('P')));
    assert!(info["posted_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(app.balance("ACC-100200").await.to_string(), "9.00");

    let mut with_ref = payment("5", "ACC-100201", "1.00", "processed");
    with_ref["posting_info"]["payment_reference"] = json!("EBPP-REF-5");
    let (_, body) = app.post_json(PAY, &with_ref).await;
    assert_eq!(body["posting_info"]["payment_reference"], "EBPP-REF-5");
}

async fn a_bare_object_is_accepted_too(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let bare = payment("77", "ACC-100200", "10.00", "processed")["posting_info"].clone();
    let (status, _) = app.post_json(PAY, &bare).await;
    assert_eq!(status, 200);
}

async fn every_business_rule_code_is_reachable(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    // A recorded, then reversed payment for the refund and reversal cases.
    assert_eq!(
        app.post_json(PAY, &payment("900", "ACC-100200", "50.00", "processed"))
            .await
            .0,
        200
    );
    assert_eq!(
        app.post_json(PAY, &payment("901", "ACC-100200", "20.00", "processed"))
            .await
            .0,
        200
    );
    assert_eq!(
        app.post_json(REVERSE, &payment("901", "ACC-100200", "20.00", "returned"))
            .await
            .0,
        200
    );

    let mut other_ccy = payment("10", "ACC-JP-0001", "100", "processed");
    other_ccy["posting_info"]["currency_code3d"] = json!("USD");
    let mut member = payment("14", "ACC-100300", "10.00", "processed");
    member["posting_info"]["customer"]["customer_reference"] = json!("C-1003");
    let mut member_warning = payment("15", "ACC-100400", "10.00", "processed");
    member_warning["posting_info"]["customer"]["customer_reference"] = json!("C-1004");
    let mut changed_confirmation = payment("900", "ACC-100200", "50.00", "returned");
    changed_confirmation["posting_info"]["confirmation_number"] = json!("OTHER1");

    let cases: Vec<(&str, &str, Value, &str, Option<&str>)> = vec![
        (
            "duplicate",
            PAY,
            payment("900", "ACC-100200", "50.00", "processed"),
            "error_duplicate_posting",
            None,
        ),
        (
            "re-post, other amount",
            PAY,
            payment("900", "ACC-100200", "51.00", "processed"),
            "error_posting_rejected",
            Some("amount"),
        ),
        (
            "re-post, other account",
            PAY,
            payment("900", "ACC-100201", "50.00", "processed"),
            "error_posting_rejected",
            Some("customer_account.account_number"),
        ),
        (
            "re-post, other confirmation",
            PAY,
            changed_confirmation,
            "error_posting_rejected",
            Some("confirmation_number"),
        ),
        (
            "unknown account",
            PAY,
            payment("11", "ACC-NOPE", "10.00", "processed"),
            "error_posting_rejected",
            Some("customer_account.account_number"),
        ),
        (
            "currency mismatch",
            PAY,
            other_ccy,
            "error_posting_rejected",
            Some("currency_code3d"),
        ),
        (
            "closed, scheduled",
            PAY,
            payment("12", "ACC-100500", "10.00", "scheduled"),
            "error_account_closed",
            None,
        ),
        (
            "closed, processed",
            PAY,
            payment("13", "ACC-100500", "10.00", "processed"),
            "error_refund_initiate",
            None,
        ),
        (
            "repair",
            PAY,
            payment("16", "ACC-100600", "10.00", "processed"),
            "error_account_status_invalid",
            None,
        ),
        (
            "suspended member",
            PAY,
            member,
            "error_member_warning",
            Some("customer.customer_reference"),
        ),
        (
            "member warning",
            PAY,
            member_warning,
            "error_member_warning",
            Some("customer.customer_reference"),
        ),
        (
            "account warning",
            PAY,
            payment("17", "ACC-100700", "10.00", "processed"),
            "error_account_warning",
            None,
        ),
        (
            "zero amount",
            PAY,
            payment("18", "ACC-100200", "0.00", "processed"),
            "error_payment_amount_low",
            Some("amount"),
        ),
        (
            "below account minimum",
            PAY,
            payment("19", "ACC-100200", "0.99", "processed"),
            "error_payment_amount_low",
            Some("amount"),
        ),
        (
            "above account maximum",
            PAY,
            payment("20", "ACC-100200", "5000.01", "processed"),
            "error_payment_amount_high",
            Some("amount"),
        ),
        (
            "reversal of unknown id",
            REVERSE,
            payment("21", "ACC-100200", "10.00", "returned"),
            "error_posting_rejected",
            Some("id"),
        ),
        (
            "reversal, other amount",
            REVERSE,
            payment("900", "ACC-100200", "49.00", "returned"),
            "error_posting_rejected",
            Some("amount"),
        ),
        (
            "reversal repeated",
            REVERSE,
            payment("901", "ACC-100200", "20.00", "returned"),
            "error_duplicate_posting",
            None,
        ),
        (
            "refund of unknown payment",
            REFUND,
            refund("801", "404", Some("1.00"), "processed"),
            "error_posting_rejected",
            Some("source_payment.id"),
        ),
        (
            "refund of a reversed payment",
            REFUND,
            refund("802", "901", Some("1.00"), "processed"),
            "error_posting_rejected",
            Some("source_payment.id"),
        ),
        (
            "refund above the payment",
            REFUND,
            refund("803", "900", Some("50.01"), "processed"),
            "error_payment_amount_high",
            Some("refund_amount"),
        ),
    ];
    let before = app.balance("ACC-100200").await;
    for (name, path, body, code, field) in cases {
        let (status, answer) = app.post_json(path, &body).await;
        assert_eq!(status, 422, "{name}: {answer}");
        let (got_code, got_field) = first_error(&answer);
        assert_eq!(got_code, code, "{name}");
        assert_eq!(got_field.as_deref(), field, "{name}");
    }
    assert_eq!(
        app.balance("ACC-100200").await,
        before,
        "refused postings change nothing"
    );
}

async fn each_missing_required_field_is_reported_with_its_path(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let payment_fields = [
        ("id", "id"),
        ("amount", "amount"),
        ("confirmation_number", "confirmation_number"),
        ("currency_code3d", "currency_code3d"),
        ("custom_fields", "custom_fields"),
        ("customer", "customer"),
        ("customer_account", "customer_account"),
        ("funding_account", "funding_account"),
        ("payment_date", "payment_date"),
        ("payment_method", "payment_method"),
        ("payment_network_response", "payment_network_response"),
        ("payment_schedule_type", "payment_schedule_type"),
        ("status", "status"),
    ];
    for (key, field) in payment_fields {
        let mut body = payment("30", "ACC-100200", "10.00", "processed");
        body["posting_info"].as_object_mut().expect("object").remove(key);
        let (status, answer) = app.post_json(PAY, &body).await;
        assert_eq!(status, 400, "{key}");
        assert_eq!(
            first_error(&answer),
            ("error_field".to_string(), Some(field.to_string())),
            "{key}"
        );
    }
    let mut body = payment("30", "ACC-100200", "10.00", "processed");
    body["posting_info"]["customer_account"]
        .as_object_mut()
        .expect("object")
        .remove("account_number");
    let (_, answer) = app.post_json(PAY, &body).await;
    assert_eq!(
        first_error(&answer).1.as_deref(),
        Some("customer_account.account_number")
    );

    for (key, field) in [
        ("id", "id"),
        ("status", "status"),
        ("confirmation_number", "confirmation_number"),
        ("source_payment", "source_payment"),
    ] {
        let mut body = refund("40", "30", Some("1.00"), "processed");
        body["posting_info"].as_object_mut().expect("object").remove(key);
        let (status, answer) = app.post_json(REFUND, &body).await;
        assert_eq!(status, 400, "{key}");
        assert_eq!(first_error(&answer).1.as_deref(), Some(field), "{key}");
    }
    let mut body = refund("40", "30", Some("1.00"), "processed");
    body["posting_info"]["source_payment"] = json!({});
    let (_, answer) = app.post_json(REFUND, &body).await;
    assert_eq!(first_error(&answer).1.as_deref(), Some("source_payment.id"));
}

async fn invalid_values_are_400_and_reported_together(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("amount pattern", json!("10.001"), "amount"),
        ("amount as number", json!(10), "amount"),
        ("negative amount", json!("-1.00"), "amount"),
        ("empty required", json!(""), "amount"),
    ];
    for (name, value, field) in cases {
        let mut body = payment("31", "ACC-100200", "10.00", "processed");
        body["posting_info"]["amount"] = value;
        let (status, answer) = app.post_json(PAY, &body).await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(first_error(&answer).1.as_deref(), Some(field), "{name}");
    }
    let field_cases: Vec<(&str, Value)> = vec![
        ("payment_date", json!("2024-02-30")),
        ("payment_date", json!("2024-13-01")),
        ("status", json!("settled")),
        ("payment_method", json!("bitcoin")),
        ("payment_schedule_type", json!("weekly")),
        ("currency_code3d", json!("usd")),
        ("confirmation_number", json!("has space")),
        ("id", json!("12ab")),
        ("card_cvv_number", json!("12")),
        ("payment_amount_type", json!("everything")),
        ("customer", json!("not an object")),
    ];
    for (field, value) in field_cases {
        let mut body = payment("32", "ACC-100200", "10.00", "processed");
        body["posting_info"][field] = value.clone();
        let (status, answer) = app.post_json(PAY, &body).await;
        assert_eq!(status, 400, "{field}={value}");
        assert_eq!(
            first_error(&answer).1.as_deref(),
            Some(field),
            "{field}={value}: {answer}"
        );
    }
    let mut body = payment("33", "ACC-100200", "10.00", "processed");
    body["posting_info"]["amount"] = json!("x");
    body["posting_info"]["status"] = json!("x");
    body["posting_info"]
        .as_object_mut()
        .expect("object")
        .remove("payment_date");
    let (status, answer) = app.post_json(PAY, &body).await;
    assert_eq!(status, 400);
    let mut fields: Vec<&str> = answer["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort();
    assert_eq!(fields, vec!["amount", "payment_date", "status"]);

    let (status, answer) = app
        .post_json(REVERSE, &payment("34", "ACC-100200", "10.00", "processed"))
        .await;
    assert_eq!(status, 400, "a reversal must carry a non-live status");
    assert_eq!(first_error(&answer).1.as_deref(), Some("status"));
    let (status, _) = app.post_json(PAY, &json!({"posting_info": "nope"})).await;
    assert_eq!(status, 400);
    assert_eq!(app.balance("ACC-100200").await.to_string(), "110.05");
}

async fn malformed_bodies_wrong_types_and_oversized_bodies(transport: Transport) {
    let app = spawn_app_over(transport, |s| s.server.max_body_bytes = 4096).await;
    let url = format!("{}{PAY}", app.address);
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(&url)
            .header("client-key", CLIENT_KEY)
            .header("api-key", API_KEY)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{not json".to_vec(), "application/json", 400, "error_field"),
        (b"".to_vec(), "application/json", 400, "error_field"),
        (b"[1,2]".to_vec(), "application/json", 400, "error_field"),
        (vec![0xff, 0xfe, 0x00], "application/json", 400, "error_field"),
        (b"{\"posting_info\": {}}".to_vec(), "text/plain", 400, "error_field"),
        (vec![b' '; 5000], "application/json", 413, "error_payload_too_large"),
    ];
    for (body, content_type, status, code) in cases {
        let r = send(body.clone(), content_type).await.expect("sent");
        assert_eq!(
            r.status().as_u16(),
            status,
            "{content_type} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(20)])
        );
        let answer: Value = r.json().await.expect("json envelope");
        assert_eq!(first_error(&answer).0, code);
    }
    assert_eq!(app.balance("ACC-100200").await.to_string(), "110.05");
}

async fn payment_lifecycle_keeps_the_ledger_invariant(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let mut model = LedgerModel::demo();
    let steps: Vec<(&str, Value, u16)> = vec![
        (PAY, payment("1", "ACC-100200", "10.00", "scheduled"), 200),
        (PAY, payment("1", "ACC-100200", "10.00", "processed"), 200),
        (PAY, payment("1", "ACC-100200", "10.00", "processed"), 422),
        (PAY, payment("2", "ACC-100201", "5.50", "declined"), 200),
        (PAY, payment("2", "ACC-100201", "5.50", "processing"), 200),
        (REVERSE, payment("1", "ACC-100200", "10.00", "returned"), 200),
        (PAY, payment("3", "ACC-100800", "300.00", "processed"), 200),
    ];
    for (path, body, status) in &steps {
        let (got, answer) = app.post_json(path, body).await;
        assert_eq!(got, *status, "{path} {body}: {answer}");
    }
    // 1 credited then reversed; 2 recorded without effect, then live; 3 live.
    model.credit("ACC-100201", "5.50");
    model.credit("ACC-100800", "300.00");
    model.assert_holds(&app).await;

    // A returned payment that comes back is judged again and applies again.
    let (status, answer) = app
        .post_json(PAY, &payment("1", "ACC-100200", "10.00", "processed"))
        .await;
    assert_eq!(status, 200, "{answer}");
    model.credit("ACC-100200", "10.00");
    assert_eq!(answer["posting_info"]["current_balance"], "100.05");
    model.assert_holds(&app).await;
}

async fn refunds_partial_full_and_status_changes_keep_the_invariant(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let mut model = LedgerModel::demo();
    assert_eq!(
        app.post_json(PAY, &payment("50", "ACC-100200", "100.00", "processed"))
            .await
            .0,
        200
    );
    model.credit("ACC-100200", "100.00");

    let (status, answer) = app
        .post_json(REFUND, &refund("5001", "50", Some("30.00"), "processed"))
        .await;
    assert_eq!(status, 200, "{answer}");
    let info = &answer["posting_info"];
    assert_eq!(info["refund_amount"], "30.00");
    assert_eq!(info["source_payment_id"], "50");
    assert_eq!(info["account_number"], "ACC-100200");
    assert!(info["refund_reference"].as_str().is_some_and(|r| r.starts_with('R')));
    model.debit("ACC-100200", "30.00");
    model.assert_holds(&app).await;

    // No amount: the rest of the payment.
    let (status, answer) = app.post_json(REFUND, &refund("5002", "50", None, "processing")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["posting_info"]["refund_amount"], "70.00");
    model.debit("ACC-100200", "70.00");
    model.assert_holds(&app).await;

    // Fully refunded: nothing left.
    let (status, answer) = app
        .post_json(REFUND, &refund("5003", "50", Some("0.01"), "processed"))
        .await;
    assert_eq!(
        (status, first_error(&answer).0.as_str()),
        (422, "error_payment_amount_high")
    );

    // A refund declined gives its amount back to the credit; repeating is a duplicate.
    assert_eq!(
        app.post_json(REFUND, &refund("5001", "50", Some("30.00"), "declined"))
            .await
            .0,
        200
    );
    model.credit("ACC-100200", "30.00");
    assert_eq!(
        app.post_json(REFUND, &refund("5001", "50", Some("30.00"), "declined"))
            .await
            .0,
        422
    );
    let (status, answer) = app
        .post_json(REFUND, &refund("5001", "51", Some("30.00"), "processed"))
        .await;
    assert_eq!(
        (status, first_error(&answer).1.as_deref()),
        (422, Some("source_payment.id"))
    );
    model.assert_holds(&app).await;

    // Reversing the payment takes back the credit minus its live refunds (70.00 here).
    assert_eq!(
        app.post_json(REVERSE, &payment("50", "ACC-100200", "100.00", "disputed"))
            .await
            .0,
        200
    );
    model.debit("ACC-100200", "30.00");
    model.assert_holds(&app).await;

    // fee_only refunds move no money.
    assert_eq!(
        app.post_json(PAY, &payment("60", "ACC-100201", "20.00", "processed"))
            .await
            .0,
        200
    );
    model.credit("ACC-100201", "20.00");
    let mut fee_only = refund("6001", "60", Some("5.00"), "processed");
    fee_only["posting_info"]["refund_type"] = json!("fee_only");
    assert_eq!(app.post_json(REFUND, &fee_only).await.0, 200);
    let (status, answer) = app.post_json(REFUND, &refund("6002", "60", None, "processed")).await;
    assert_eq!(status, 200);
    assert_eq!(answer["posting_info"]["refund_amount"], "20.00");
    model.debit("ACC-100201", "20.00");
    model.assert_holds(&app).await;
}

async fn jpy_accounts_use_no_decimals(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let mut body = payment("70", "ACC-JP-0001", "1500", "processed");
    body["posting_info"]["currency_code3d"] = json!("JPY");
    let (status, answer) = app.post_json(PAY, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["posting_info"]["amount"], "1500");
    assert_eq!(answer["posting_info"]["current_balance"], "10500");
    let mut fractional = payment("71", "ACC-JP-0001", "1500.50", "processed");
    fractional["posting_info"]["currency_code3d"] = json!("JPY");
    let (status, answer) = app.post_json(PAY, &fractional).await;
    assert_eq!((status, first_error(&answer).1.as_deref()), (422, Some("amount")));
}

async fn thirty_concurrent_identical_postings_apply_exactly_once(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let body = payment("4242", "ACC-100200", "25.00", "processed");
    let answers = futures_util::future::join_all((0..30).map(|_| app.post_json(PAY, &body))).await;
    let applied = answers.iter().filter(|(s, _)| *s == 200).count();
    let duplicates = answers
        .iter()
        .filter(|(s, b)| *s == 422 && first_error(b).0 == "error_duplicate_posting")
        .count();
    assert_eq!((applied, duplicates), (1, 29), "{answers:?}");
    let mut model = LedgerModel::demo();
    model.credit("ACC-100200", "25.00");
    model.assert_holds(&app).await;
}

async fn concurrent_distinct_postings_all_apply(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let bodies: Vec<Value> = (0..40)
        .map(|i| payment(&format!("{}", 7000 + i), "ACC-100800", "1.25", "processed"))
        .collect();
    let answers = futures_util::future::join_all(bodies.iter().map(|b| app.post_json(PAY, b))).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let mut model = LedgerModel::demo();
    model.credit("ACC-100800", "50.00");
    model.assert_holds(&app).await;
}

/// Rule 5 follows the accounts file: a member warning an import adds refuses the next posting
/// from that member, and one it lifts allows it again.
async fn a_member_warning_set_or_lifted_by_an_import_applies_to_the_next_posting(transport: Transport) {
    let app = spawn_app_over(transport, |_| {}).await;
    let entry = |warning: Value| {
        json!([{"account_number": "ACC-900001", "status": "active", "currency": "USD", "current_balance": "50.00",
                "customers": [{"customer_reference": "C-9001", "first_name": "Eve", "status": "active", "warning": warning}]}])
        .to_string()
    };
    let from_member = |id: &str| {
        let mut body = payment(id, "ACC-900001", "1.00", "processed");
        body["posting_info"]["customer"]["customer_reference"] = json!("C-9001");
        body
    };
    let steps: [(Value, &str, Result<(), &str>); 3] = [
        (Value::Null, "7001", Ok(())),
        (json!("fraud review"), "7002", Err("error_member_warning")),
        (Value::Null, "7003", Ok(())),
    ];
    for (warning, id, expected) in steps {
        let (status, answer) = app.admin_put("/admin/accounts", &entry(warning.clone())).await;
        assert_eq!(status, 200, "{answer}");
        let (status, body) = app.post_json(PAY, &from_member(id)).await;
        match expected {
            Ok(()) => assert_eq!(status, 200, "warning {warning}: {body}"),
            Err(code) => {
                assert_eq!(status, 422, "warning {warning}: {body}");
                assert_eq!(body["errors"][0]["code"], code, "{body}");
            }
        }
    }
    let (_, view) = app.admin_get("/admin/accounts/ACC-900001").await;
    assert_eq!(
        view["account"]["current_balance"], "48.00",
        "two payments of 1.00 went through"
    );
}

// The conformance suite holds over plain HTTP and over TLS alike.
over_plain_and_tls!(
    a_payment_credits_the_account_and_answers_the_posting,
    a_bare_object_is_accepted_too,
    every_business_rule_code_is_reachable,
    each_missing_required_field_is_reported_with_its_path,
    invalid_values_are_400_and_reported_together,
    malformed_bodies_wrong_types_and_oversized_bodies,
    payment_lifecycle_keeps_the_ledger_invariant,
    refunds_partial_full_and_status_changes_keep_the_invariant,
    jpy_accounts_use_no_decimals,
    thirty_concurrent_identical_postings_apply_exactly_once,
    concurrent_distinct_postings_all_apply,
    a_member_warning_set_or_lifted_by_an_import_applies_to_the_next_posting,
);
