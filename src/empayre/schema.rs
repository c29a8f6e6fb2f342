//! The OpenAPI description of the webhook's bodies. A webhook body is verified as raw bytes and
//! then read by `event`, so these types only describe it for `/openapi.json`.

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// An Empayre event (the sender's model; anything verified is stored, whatever its shape).
#[derive(Serialize, ToSchema)]
pub struct EmpayreEvent {
    #[serde(rename = "eventID")]
    pub event_id: i64,
    #[serde(rename = "occuredAt")]
    pub occured_at: String,
    /// InvoicesTopic or CustomersTopic.
    pub topic: String,
    /// InvoiceCreated, InvoicePaid, PaymentCaptured, PaymentRefunded, RefundSucceeded, ...
    #[serde(rename = "eventType")]
    pub event_type: String,
    #[schema(value_type = Option<Object>)]
    pub invoice: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub payment: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub refund: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAnswer {
    pub status: WebhookOutcome,
}

/// What became of a verified body: a new event stored (and applied), an event already stored, or
/// a body kept in quarantine.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookOutcome {
    Stored,
    Duplicate,
    Quarantined,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookMessage {
    pub message: String,
}

// The request body as the document states it: a hand-written schema (`openapi::hand_written!`)
// because the truth is "an event, or anything else": a body whose signature verifies is never
// refused (spec A3), an event is stored and applied, any other body is quarantined, and both are
// answered 200. The examples are new events that succeed on the demo store: a capture for a demo
// account (stored and applied) and one naming no account (stored, listed as unmatched).
pub struct WebhookBody;
crate::openapi::hand_written!(WebhookBody);

/// Every hand-written schema of the webhook, by its name under `components/schemas`.
pub fn request_schemas() -> Vec<(&'static str, Value)> {
    vec![(
        "WebhookBody",
        json!({
            "description": "An Empayre event (EmpayreEvent) is stored and applied; any other body whose \
                signature verifies is kept in quarantine (GET /admin/quarantine). Both are answered 200.",
            "anyOf": [
                {"$ref": "#/components/schemas/EmpayreEvent"},
                {"description": "Any other body: verified, quarantined, answered 200 `quarantined`"},
            ],
            "examples": [
                captured(990001, "GATE-0001", Some("ACC-100300")),
                captured(990002, "GATE-0002", None),
            ],
        }),
    )]
}

/// A `PaymentCaptured` event of 15.00 USD on invoice `invoice`, naming `account` in the invoice
/// metadata (where the demo source's `account_pointer` looks) when given.
fn captured(event_id: i64, invoice: &str, account: Option<&str>) -> Value {
    let mut metadata = json!({"orderId": format!("ORD-{invoice}")});
    if let Some(account) = account {
        metadata["account_number"] = json!(account);
    }
    json!({
        "eventID": event_id,
        "occuredAt": "2026-11-21T09:00:12Z",
        "topic": "InvoicesTopic",
        "eventType": "PaymentCaptured",
        "invoice": {
            "id": invoice,
            "shopID": "6c1f2b0e-2a4d-4b7e-9f8a-3d5e7c9b1a20",
            "createdAt": "2026-11-21T09:00:00Z",
            "status": "paid",
            "amount": 1500,
            "currency": "USD",
            "metadata": metadata,
            "product": "Bill payment",
        },
        "payment": {
            "id": "1",
            "createdAt": "2026-11-21T09:00:05Z",
            "status": "captured",
            "amount": 1500,
            "currency": "USD",
        },
    })
}
