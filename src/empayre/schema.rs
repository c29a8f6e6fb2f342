//! The OpenAPI description of the webhook's bodies. A webhook body is verified as raw bytes and
//! then read by `event`, so these types only describe it for `/openapi.json`.

use serde::Serialize;
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
    /// stored, duplicate or quarantined.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookMessage {
    pub message: String,
}
