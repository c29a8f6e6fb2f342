//! The writes a load test sends and how to read their answers, for the tests that kill servers
//! or databases under load and then check that a 2xx meant "recorded" (crash.rs on sled,
//! tests/faults/proof.rs on PostgreSQL).

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{first_error, Remote};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriteKind {
    Payment,
    Refund,
    Event,
}

/// One write: its record key and expected effect, and its exact bytes.
#[derive(Debug, Clone)]
pub struct LoadWrite {
    pub kind: WriteKind,
    /// The record id: EBPP payment or refund id, or `source:invoice:payment`.
    pub key: String,
    pub account: &'static str,
    /// A payment's or event's credit, a refund's debit back.
    pub amount: Decimal,
    pub body: Vec<u8>,
    pub signature: Option<String>,
    /// Sent to every replica at once (a duplicate storm).
    pub storm: bool,
}

impl LoadWrite {
    pub fn record_kind(&self) -> &'static str {
        match self.kind {
            WriteKind::Payment => "payment",
            WriteKind::Refund => "refund",
            WriteKind::Event => "empayre-payment",
        }
    }

    /// The balance change this write makes when applied.
    pub fn delta(&self) -> Decimal {
        match self.kind {
            WriteKind::Refund => self.amount,
            _ => -self.amount,
        }
    }

    pub async fn send(&self, server: &Remote) -> reqwest::Result<(u16, Value)> {
        match self.kind {
            WriteKind::Payment => server.try_post_bytes("/paymentposting", self.body.clone()).await,
            WriteKind::Refund => server.try_post_bytes("/paymentrefundposting", self.body.clone()).await,
            WriteKind::Event => server.try_webhook(self.body.clone(), self.signature.as_deref()).await,
        }
    }

    /// Whether an answer acknowledges this write as newly applied.
    pub fn is_ack(&self, status: u16, body: &Value) -> bool {
        match self.kind {
            WriteKind::Payment | WriteKind::Refund => status == 200 && body["posting_info"]["id"] == self.key.as_str(),
            WriteKind::Event => status == 200 && *body == json!({"status": "stored"}),
        }
    }

    /// Whether an answer says this write was recorded before.
    pub fn is_duplicate(&self, status: u16, body: &Value) -> bool {
        match self.kind {
            WriteKind::Payment | WriteKind::Refund => status == 422 && first_error(body).0 == "error_duplicate_posting",
            WriteKind::Event => status == 200 && *body == json!({"status": "duplicate"}),
        }
    }

    /// An answer that vouches for nothing: the write may or may not have landed.
    pub fn is_unavailable(&self, status: u16) -> bool {
        status == 503
    }
}
