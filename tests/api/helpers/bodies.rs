//! Request bodies, signed Empayre events, and reading answers and metrics.

use serde_json::{json, Value};

use super::repo_text;

/// A valid payment posting body with the given id, account, amount and status.
pub fn payment(id: &str, account: &str, amount: &str, status: &str) -> Value {
    json!({"posting_info": {
        "id": id,
        "amount": amount,
        "confirmation_number": format!("CONF{id}"),
        "currency_code3d": "USD",
        "custom_fields": {},
        "customer": {"id": "1", "customer_reference": "C-1001", "first_name": "Ana"},
        "customer_account": {"id": "2", "account_number": account},
        "funding_account": {"id": "3", "account_number": "xxxxxx6789", "account_type": "bank"},
        "payment_date": "2026-11-21",
        "payment_method": "ach",
        "payment_network_response": {"payment_auth_code": "A1"},
        "payment_schedule_type": "one_time_payment",
        "status": status,
    }})
}

pub fn refund(id: &str, payment_id: &str, amount: Option<&str>, status: &str) -> Value {
    let mut info = json!({
        "id": id,
        "status": status,
        "confirmation_number": format!("RCONF{id}"),
        "source_payment": {"id": payment_id},
    });
    if let Some(a) = amount {
        info["refund_amount"] = json!(a);
    }
    json!({ "posting_info": info })
}

/// The first error of an Orbipay error envelope: (code, field).
pub fn first_error(body: &Value) -> (String, Option<String>) {
    let e = &body["errors"][0];
    (
        e["code"].as_str().unwrap_or("").to_string(),
        e["field"].as_str().map(str::to_string),
    )
}

/// The fixture Empayre signing key (the demo source trusts its public half).
pub fn fixture_signer() -> biller_inbox::empayre::signature::BodySigner {
    let pem = repo_text("fixtures/keys/empayre_test_private.pem");
    biller_inbox::empayre::signature::BodySigner::from_pem(&pem).expect("signer")
}

/// A `PaymentCaptured` event for payment "1" of `invoice_id`, paying `account` (when given)
/// `amount_minor` US cents.
pub fn captured_event(event_id: i64, invoice_id: &str, account: Option<&str>, amount_minor: i64) -> Value {
    let mut event = json!({
        "eventID": event_id, "occuredAt": "2026-11-21T09:01:00.5Z", "topic": "InvoicesTopic",
        "eventType": "PaymentCaptured",
        "invoice": {"id": invoice_id, "shopID": "shop-1", "createdAt": "2026-11-21T09:00:00Z", "status": "paid",
                    "dueDate": "2026-11-22T09:00:00Z", "amount": amount_minor, "currency": "USD", "product": "Bill"},
        "payment": {"id": "1", "createdAt": "2026-11-21T09:00:30Z", "status": "captured", "amount": amount_minor,
                    "currency": "USD", "paymentToolToken": "dG9rZW4", "paymentSession": "c2Vzc2lvbg",
                    "payer": {"payerType": "PaymentResourcePayer", "paymentToolToken": "dG9rZW4"}, "fee": 0}
    });
    if let Some(a) = account {
        event["invoice"]["metadata"] = json!({ "account_number": a });
    }
    event
}

/// A `received_at` window of one hour either side of now, for searches of what a test posted.
pub fn window_around_now() -> Value {
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({"name": "received_at", "method": "between",
           "searchParameter": [fmt(now - chrono::Duration::hours(1)), fmt(now + chrono::Duration::hours(1))]})
}

/// The Prometheus text page of the server at `address` (any server: in-process or the real binary).
pub async fn fetch_metrics(client: &reqwest::Client, address: &str) -> String {
    let answer = client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics sent");
    assert_eq!(answer.status(), 200, "GET /metrics");
    answer.text().await.expect("metrics text")
}

/// The value of one series (exact name with labels) in a Prometheus text page; 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().expect("metric value"))
}
