//! A verified Empayre webhook body as the store keeps it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A verified webhook body as stored, with what it changed. The body is kept byte for byte
/// (as text: a verified body is UTF-8 JSON; base64 if it ever is not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Arrival order, the key of the `events` tree.
    pub seq: u64,
    pub source: String,
    pub event_id: Option<i64>,
    pub event_type: Option<String>,
    pub invoice_id: Option<String>,
    /// `stored` or `quarantined`.
    pub status: String,
    /// Why it was quarantined.
    pub reason: Option<String>,
    pub key_id: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub request_id: String,
    pub body_sha256: String,
    pub body: String,
    /// `text` or `base64`.
    pub body_encoding: String,
    /// Records it changed: `{kind, id, status, delta}`.
    pub changes: Vec<Value>,
    /// Entities whose snapshot in this event was older than the recorded one.
    pub stale: Vec<String>,
}

impl StoredEvent {
    pub fn body_from(bytes: &[u8]) -> (String, String) {
        match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_string(), "text".into()),
            Err(_) => {
                use base64::Engine;
                (base64::engine::general_purpose::STANDARD.encode(bytes), "base64".into())
            }
        }
    }
}
