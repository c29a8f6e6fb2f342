//! The records the ledger keeps: one per payment and one per refund, whatever channel they
//! came from, and the journal entry written for every balance change.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};

use crate::domain::status::{EmpayrePaymentStatus, EmpayreRefundStatus, PostingStatus};
use crate::domain::{AccountNumber, Currency};

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

/// A payment's or refund's status, in the words of the channel it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordStatus {
    /// An EBPP posting status (payments and refunds).
    Ebpp(PostingStatus),
    /// An Empayre payment status.
    EmpayrePayment(EmpayrePaymentStatus),
    /// An Empayre refund status.
    EmpayreRefund(EmpayreRefundStatus),
}

impl RecordStatus {
    /// Whether a record in this status moves money: an EBPP posting that is scheduled,
    /// processing or processed (§5.2); an Empayre payment once captured (the platform owes the
    /// money); an Empayre refund once succeeded (the money went back to the payer).
    pub fn is_live(&self) -> bool {
        match self {
            Self::Ebpp(s) => s.is_live(),
            Self::EmpayrePayment(s) => *s == EmpayrePaymentStatus::Captured,
            Self::EmpayreRefund(s) => *s == EmpayreRefundStatus::Succeeded,
        }
    }

    /// The status as its channel spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Ebpp(s) => s.as_str(),
            Self::EmpayrePayment(s) => s.as_str(),
            Self::EmpayreRefund(s) => s.as_str(),
        }
    }

    /// A stored status of a record of `kind`. None for a name EBPP does not have (Empayre
    /// statuses are open: an unknown one is kept as sent, and is not live).
    pub fn parse(kind: RecordKind, name: &str) -> Option<Self> {
        Some(match kind {
            RecordKind::Payment | RecordKind::Refund => Self::Ebpp(PostingStatus::parse(name)?),
            RecordKind::EmpayrePayment => Self::EmpayrePayment(EmpayrePaymentStatus::from(name)),
            RecordKind::EmpayreRefund => Self::EmpayreRefund(EmpayreRefundStatus::from(name)),
        })
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As its name (what the admin API and the stored events show).
impl Serialize for RecordStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for RecordStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for RecordStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
    pub currency: Currency,
    /// None for an Empayre payment no account could be found for (unmatched).
    pub account_number: Option<AccountNumber>,
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
        currency: Currency,
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
            currency,
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
    currency: Currency,
    account_number: Option<AccountNumber>,
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
    pub account_number: AccountNumber,
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

#[cfg(test)]
mod status_tests {
    use super::*;

    #[test]
    fn liveness_follows_each_channel() {
        let live: Vec<&str> = PostingStatus::ALL
            .into_iter()
            .filter(|s| RecordStatus::Ebpp(*s).is_live())
            .map(PostingStatus::as_str)
            .collect();
        assert_eq!(live, ["scheduled", "processing", "processed"]);
        assert!(RecordStatus::parse(RecordKind::EmpayrePayment, "captured").is_some_and(|s| s.is_live()));
        assert!(!RecordStatus::parse(RecordKind::EmpayrePayment, "charged_back").is_some_and(|s| s.is_live()));
        assert!(RecordStatus::parse(RecordKind::EmpayreRefund, "succeeded").is_some_and(|s| s.is_live()));
        let unknown = RecordStatus::parse(RecordKind::EmpayreRefund, "reversed").expect("open");
        assert_eq!((unknown.as_str(), unknown.is_live()), ("reversed", false));
        assert_eq!(
            RecordStatus::parse(RecordKind::Refund, "Processed"),
            None,
            "EBPP is strict"
        );
    }
}
