//! The types of the read side every backend answers in: the lookup criteria, the postings
//! search, the events filter, import summaries, and the export cursor. They describe what is
//! asked, not how a backend finds it.

use rust_decimal::Decimal;

use crate::domain::account::{Account, Profile};
use crate::ledger::{Record, RecordKind};

/// The lookup criteria in store terms (the SSN already reduced to its digest).
#[derive(Debug, Clone, Default)]
pub struct LookupCriteria {
    pub customer_reference: Option<String>,
    pub account_number: Option<String>,
    pub ssn_sha256: Option<String>,
    pub email: Option<String>,
    pub lookup_reference: Option<String>,
}

/// One profile a lookup matched, with the accounts to show under it.
#[derive(Debug, Clone)]
pub struct LookupMatch {
    pub profile: Profile,
    pub accounts: Vec<Account>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub accounts_created: usize,
    pub accounts_updated: usize,
    pub profiles_created: usize,
    pub profiles_updated: usize,
}

impl ImportSummary {
    /// Adds what another chunk of the same import did.
    pub fn add(&mut self, other: &ImportSummary) {
        self.accounts_created += other.accounts_created;
        self.accounts_updated += other.accounts_updated;
        self.profiles_created += other.profiles_created;
        self.profiles_updated += other.profiles_updated;
    }
}

/// A field a search may filter on (besides `received_at`, which is the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchField {
    Channel,
    Kind,
    Id,
    AccountNumber,
    Status,
    Amount,
    Currency,
    ConfirmationNumber,
    PaymentMethod,
    ClientKey,
}

/// A field a search may order by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    ReceivedAt,
    Amount,
    AccountNumber,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// A value to compare a field with: text for text fields, a decimal for `amount`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Amount(Decimal),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq(Operand),
    In(Vec<Operand>),
    /// `%` matches any run of characters; everything else matches itself (case-sensitive).
    Like(String),
    Lt(Operand),
    Gt(Operand),
    Le(Operand),
    Ge(Operand),
    /// Both ends inclusive.
    Between(Operand, Operand),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: SearchField,
    pub condition: Condition,
}

/// A validated search: the time window, filters (all must hold), order, and the page.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Window start, nanoseconds since the epoch, inclusive.
    pub from_nanos: i64,
    /// Window end, nanoseconds since the epoch, exclusive.
    pub until_nanos: i64,
    pub filters: Vec<Filter>,
    /// Applied in order; ties end with the index key in the first order's direction.
    pub order: Vec<(SortField, Direction)>,
    pub offset: usize,
    pub limit: usize,
}

/// One page of matches and how many matched in all.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub total: usize,
    pub records: Vec<Record>,
}

/// Filters of `GET /admin/empayre/events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub invoice_id: Option<String>,
    pub status: Option<String>,
    /// Only events that arrived before this arrival number (paging newest first).
    pub before: Option<u64>,
    pub limit: usize,
}

/// Where an ordered walk over the records by receive time stopped (`Store::records_received`):
/// the last record returned. The order is (received_at, kind tag, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor {
    pub received_at_nanos: i64,
    pub kind: RecordKind,
    pub id: String,
}

impl RecordCursor {
    pub fn of(record: &Record) -> Self {
        Self {
            received_at_nanos: record.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            kind: record.kind,
            id: record.id.clone(),
        }
    }
}

/// Records received in one minute, by channel (`Backend::received_per_minute`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinuteCount {
    /// EBPP payments and refunds.
    pub orbipay: u64,
    /// Empayre payments and refunds.
    pub empayre: u64,
}

impl MinuteCount {
    pub fn total(&self) -> u64 {
        self.orbipay + self.empayre
    }
}
