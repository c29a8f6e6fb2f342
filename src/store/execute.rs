//! One write through the storage interface: announced keys, a pure decision over what the
//! backend read under its lock, and what that decision writes.
//!
//! The backend, not the caller, runs the decision, because only the backend knows when what it
//! read can no longer change: under sled's single writer, or inside a PostgreSQL transaction
//! holding the rows. A backend that loses a race (another replica created the same record
//! first) reads again and runs the decision again, so the decision must be pure: no I/O but
//! through the `View`, no clock (the caller captures `now`), no logging or metrics.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::{StoreError, StoredEvent};
use crate::domain::account::{Account, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{Change, Channel, Origin, Record, RecordKind};

/// Every identity a decision will read, announced with the write: sled reads them into its
/// cache before taking its writer lock; a database locks and preloads them in one round trip.
/// Reading a key that was not announced still works (a database backend may then restart).
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// Records by (kind, id). A payment's refunds come with it.
    pub records: Vec<(RecordKind, String)>,
    /// Accounts by number.
    pub accounts: Vec<AccountNumber>,
    /// Profiles by customer reference.
    pub profiles: Vec<String>,
    /// Stored Empayre events by (source, eventID): the duplicate check.
    pub events: Vec<(String, i64)>,
    /// Invoice snapshots by (source, invoice id).
    pub invoices: Vec<(String, String)>,
}

/// What a decision may read: the state as of the backend's lock, plus, in a batch, what the
/// decisions before it in the same batch wrote.
pub trait View {
    fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError>;
    /// The refunds of a payment, in the order they were recorded. Every backend reads them the
    /// same way, through `record`, so a missing one is the same `Corrupt` everywhere.
    fn refunds_of(&self, payment: &Record) -> Result<Vec<Record>, StoreError> {
        let kind = match payment.kind {
            RecordKind::EmpayrePayment => RecordKind::EmpayreRefund,
            _ => RecordKind::Refund,
        };
        payment
            .refund_ids
            .iter()
            .map(|id| {
                self.record(kind, id)?
                    .ok_or_else(|| StoreError::Corrupt(format!("refund {id} of payment {} is missing", payment.id)))
            })
            .collect()
    }
    fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError>;
    fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError>;
    /// Whether an Empayre event with this (source, eventID) was stored before.
    fn event_seen(&self, source: &str, event_id: i64) -> Result<bool, StoreError>;
    /// The newest invoice snapshot recorded for (source, invoice id).
    fn invoice(&self, source: &str, invoice_id: &str) -> Result<Option<Value>, StoreError>;
    /// A reference for a record EBPP sent none for: `prefix` and at least 12 digits, unique in
    /// the store. Numbers may be skipped (a decision that runs twice uses up two).
    fn fresh_reference(&self, prefix: char) -> Result<String, StoreError>;
}

/// What a decision concluded.
#[derive(Debug)]
pub enum Decision<O> {
    /// Commit these writes atomically; answer `O` once they are durable. (Boxed: a decision is
    /// moved around by value, and the writes are most of its size.)
    Commit(Box<Writes>, O),
    /// Write nothing; answer `O` once everything the decision read is durable. A duplicate is
    /// this: it names a stored posting, which must not be one that could still vanish.
    Confirm(O),
    /// Write nothing; answer `O` at once (a refusal that vouches for nothing stored).
    Refuse(O),
}

impl<O> Decision<O> {
    pub fn commit(writes: Writes, outcome: O) -> Self {
        Self::Commit(Box::new(writes), outcome)
    }
}

/// Everything one decision writes, in the ledger's terms; each backend maps it onto its own
/// trees or tables, and writes all of it or nothing.
#[derive(Debug)]
pub struct Writes {
    /// The ledger change, settled by the backend with `ledger::settle` against the account it
    /// holds, then committed with its journal entry (numbered at commit).
    pub change: Option<Change>,
    /// Who made the change and when: the journal entry's channel and time.
    pub channel: Channel,
    pub at: DateTime<Utc>,
    /// For an Empayre projection, the path that applied it (the journal entry's `origin`).
    pub origin: Option<Origin>,
    /// Record updates that move no money by themselves (refunds that follow their payment to
    /// the account an operator assigned).
    pub records: Vec<Record>,
    /// The stored copy of an accepted EBPP posting (docs/orbipay.md).
    pub accepted_copy: Option<Value>,
    /// A verified Empayre body. The backend assigns its `seq` at commit; its
    /// (source, eventID) becomes a duplicate from then on.
    pub event: Option<StoredEvent>,
    /// The newest snapshot of an invoice: (source, invoice id, snapshot).
    pub invoice: Option<(String, String, Value)>,
    /// The list of Empayre payments without an account.
    pub unmatched: Option<UnmatchedUpdate>,
}

impl Writes {
    /// Writes of `channel` made at `at`, nothing in them yet.
    pub fn new(channel: Channel, at: DateTime<Utc>) -> Self {
        Self {
            change: None,
            channel,
            at,
            origin: None,
            records: Vec::new(),
            accepted_copy: None,
            event: None,
            invoice: None,
            unmatched: None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum UnmatchedUpdate {
    /// List the payment with this record id (the item is what the admin API shows).
    Put(String, Value),
    /// It has an account now.
    Clear(String),
}

/// The answer to a write: the decision's outcome, and what the backend assigned at commit.
#[derive(Debug)]
pub struct Executed<O> {
    pub outcome: O,
    /// None when the decision wrote nothing.
    pub committed: Option<Committed>,
}

/// What is known only once a decision's writes are committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The ledger change as committed (handed back, so the caller need not keep a copy).
    pub change: Option<Change>,
    /// The journal entry's seq, when the balance moved.
    pub journal_seq: Option<u64>,
    /// The account's balance after the change, when the change has an account.
    pub balance_after: Option<Decimal>,
    /// Decimals of that account's currency (2 without an account).
    pub currency_exponent: u32,
    /// The stored event's seq (arrival order), when an event was stored.
    pub event_seq: Option<u64>,
}
