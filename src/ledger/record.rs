//! The records the ledger keeps: one per payment and one per refund, whatever channel they
//! came from, and the journal entry written for every balance change.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use crate::domain::status::RecordStatus;

/// What a record is. The string forms are the `{kind}` of the admin API and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordKind {
    #[serde(rename = "payment")]
    Payment,
    #[serde(rename = "refund")]
    Refund,
    #[serde(rename = "empayre-payment")]
    EmpayrePayment,
    #[serde(rename = "empayre-refund")]
    EmpayreRefund,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Refund => "refund",
            Self::EmpayrePayment => "empayre-payment",
            Self::EmpayreRefund => "empayre-refund",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "payment" => Self::Payment,
            "refund" => Self::Refund,
            "empayre-payment" => Self::EmpayrePayment,
            "empayre-refund" => Self::EmpayreRefund,
            _ => return None,
        })
    }

    /// One byte per kind, used in store keys.
    pub fn tag(self) -> u8 {
        match self {
            Self::Payment => b'p',
            Self::Refund => b'r',
            Self::EmpayrePayment => b'P',
            Self::EmpayreRefund => b'R',
        }
    }

    /// The kind of a [`tag`](Self::tag) byte.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            b'p' => Self::Payment,
            b'r' => Self::Refund,
            b'P' => Self::EmpayrePayment,
            b'R' => Self::EmpayreRefund,
            _ => return None,
        })
    }

    pub fn is_refund(self) -> bool {
        matches!(self, Self::Refund | Self::EmpayreRefund)
    }

    pub fn channel(self) -> Channel {
        match self {
            Self::Payment | Self::Refund => Channel::Orbipay,
            Self::EmpayrePayment | Self::EmpayreRefund => Channel::Empayre,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Orbipay,
    Empayre,
    Admin,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orbipay => "orbipay",
            Self::Empayre => "empayre",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "orbipay" => Self::Orbipay,
            "empayre" => Self::Empayre,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
}

/// Which path applied an Empayre change: a webhook delivery, or a reconciliation with the
/// platform's API (which applies what no webhook delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Webhook,
    Reconcile,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Reconcile => "reconcile",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "webhook" => Self::Webhook,
            "reconcile" => Self::Reconcile,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: String,
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// For an Empayre record: which path made this step. None for Orbipay records, an
    /// operator's assignment, and steps stored before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// A payment or a refund, whichever channel it came from. Its status says in its channel's words
/// whether it takes effect (`is_live`), so the ledger never has to know another channel's
/// statuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredRecord", into = "StoredRecord")]
pub struct Record {
    pub kind: RecordKind,
    pub id: String,
    pub status: RecordStatus,
    /// For a payment, what it credits while live. For a refund, what it debits back while it
    /// and its payment are live (the refund amount resolved when it was first recorded).
    pub amount: Decimal,
    pub currency: String,
    /// None for an Empayre payment no account could be found for (unmatched).
    pub account_number: Option<String>,
    pub confirmation_number: Option<String>,
    /// EBPP `payment_reference` / `refund_reference`, posted or assigned.
    pub reference: Option<String>,
    /// A refund's payment id (same channel).
    pub parent_id: Option<String>,
    /// A payment's refunds, by id.
    pub refund_ids: Vec<String>,
    /// False for `fee_only` refunds, which move no money.
    pub counts_against_payment: bool,
    /// The `refund_amount` as posted (None when EBPP left it out), for re-post comparison.
    pub posted_amount: Option<Decimal>,
    pub payment_method: Option<String>,
    pub client_key: Option<String>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<StatusChange>,
    /// Channel details worth keeping on the record (return_code, fee, Empayre ids, ...).
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    /// A payment or refund as first received, in `status` since `at`, sent by request
    /// `request_id` (a step without origin; an Empayre projection adds its own with
    /// `first_made_by`). Nothing else is known yet: no account, no references, no refunds, counting
    /// against its payment (for a refund), no details. Callers add what they know with struct
    /// update syntax.
    pub fn new(
        kind: RecordKind,
        id: impl Into<String>,
        amount: Decimal,
        currency: impl Into<String>,
        status: RecordStatus,
        at: DateTime<Utc>,
        request_id: &str,
    ) -> Self {
        let first = StatusChange {
            status: status.as_str().to_string(),
            at,
            request_id: request_id.to_string(),
            origin: None,
        };
        Self {
            kind,
            id: id.into(),
            status,
            amount,
            currency: currency.into(),
            account_number: None,
            confirmation_number: None,
            reference: None,
            parent_id: None,
            refund_ids: Vec::new(),
            counts_against_payment: true,
            posted_amount: None,
            payment_method: None,
            client_key: None,
            received_at: first.at,
            updated_at: first.at,
            history: vec![first],
            details: serde_json::Map::new(),
        }
    }

    /// The same record, its first step made by `origin` (an Empayre projection's path).
    pub fn first_made_by(mut self, origin: Origin) -> Self {
        if let Some(first) = self.history.first_mut() {
            first.origin = Some(origin);
        }
        self
    }

    /// Whether the record takes effect on its account's balance now.
    pub fn is_live(&self) -> bool {
        self.status.is_live()
    }
}

/// A record as JSON (how stores before the compact layout kept records): the status as its
/// name, with the liveness it had then.
#[derive(Clone, Serialize, Deserialize)]
struct StoredRecord {
    kind: RecordKind,
    id: String,
    status: String,
    live: bool,
    amount: Decimal,
    currency: String,
    account_number: Option<String>,
    confirmation_number: Option<String>,
    reference: Option<String>,
    parent_id: Option<String>,
    refund_ids: Vec<String>,
    counts_against_payment: bool,
    posted_amount: Option<Decimal>,
    payment_method: Option<String>,
    client_key: Option<String>,
    received_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    history: Vec<StatusChange>,
    #[serde(default)]
    details: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<StoredRecord> for Record {
    type Error = String;

    fn try_from(r: StoredRecord) -> Result<Self, String> {
        let status = RecordStatus::parse(r.kind, &r.status)
            .ok_or_else(|| format!("{} is not a status of a {}", r.status, r.kind.as_str()))?;
        Ok(Self {
            kind: r.kind,
            id: r.id,
            status,
            amount: r.amount,
            currency: r.currency,
            account_number: r.account_number,
            confirmation_number: r.confirmation_number,
            reference: r.reference,
            parent_id: r.parent_id,
            refund_ids: r.refund_ids,
            counts_against_payment: r.counts_against_payment,
            posted_amount: r.posted_amount,
            payment_method: r.payment_method,
            client_key: r.client_key,
            received_at: r.received_at,
            updated_at: r.updated_at,
            history: r.history,
            details: r.details,
        })
    }
}

impl From<Record> for StoredRecord {
    fn from(r: Record) -> Self {
        Self {
            kind: r.kind,
            id: r.id,
            live: r.status.is_live(),
            status: r.status.as_str().to_string(),
            amount: r.amount,
            currency: r.currency,
            account_number: r.account_number,
            confirmation_number: r.confirmation_number,
            reference: r.reference,
            parent_id: r.parent_id,
            refund_ids: r.refund_ids,
            counts_against_payment: r.counts_against_payment,
            posted_amount: r.posted_amount,
            payment_method: r.payment_method,
            client_key: r.client_key,
            received_at: r.received_at,
            updated_at: r.updated_at,
            history: r.history,
            details: r.details,
        }
    }
}

/// One balance change. `seq` is gap-free and starts at 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub kind: RecordKind,
    pub record_id: String,
    pub account_number: String,
    pub status: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub delta: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub balance_after: Decimal,
    /// For an Empayre projection: which path applied it (webhook or reconcile). None otherwise,
    /// and for entries stored before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}
