//! What the admin API and `export` show of records, journal entries, accounts and profiles:
//! amounts as decimal strings with the currency's decimals, times RFC 3339 UTC, never an SSN.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::domain::account::{Account, AccountStatus, Profile, ProfileStatus};
use crate::domain::money::{currency_exponent, format_amount};
use crate::http::rfc3339;
use crate::ledger::{Channel, JournalEntry, Origin, Record, RecordKind};
use crate::openapi::{string_enum, wire_names};
use crate::store::{ImportSummary, Store, StoreError};

// ---- The closed sets of values these views show, as the document lists them ----

fn record_kinds() -> [&'static str; 4] {
    wire_names!(RecordKind {
        Payment,
        Refund,
        EmpayrePayment,
        EmpayreRefund
    })
}

pub(crate) fn record_kind_schema() -> utoipa::openapi::Object {
    string_enum(
        "payment and refund: EBPP postings; empayre-payment and empayre-refund: from Empayre",
        record_kinds(),
        false,
    )
}

/// A record's channel is its kind's (never `admin`).
fn record_channel_schema() -> utoipa::openapi::Object {
    let mut channels: Vec<&str> = record_kinds()
        .into_iter()
        .filter_map(RecordKind::parse)
        .map(|k| k.channel().as_str())
        .collect();
    channels.dedup();
    string_enum("The channel the record came through", channels, false)
}

fn journal_channel_schema() -> utoipa::openapi::Object {
    string_enum(
        "Who made the change: orbipay, empayre, or admin (an operator's assignment)",
        wire_names!(Channel {
            Orbipay,
            Empayre,
            Admin
        }),
        false,
    )
}

fn origins() -> [&'static str; 2] {
    wire_names!(Origin { Webhook, Reconcile })
}

fn record_origin_schema() -> utoipa::openapi::Object {
    string_enum(
        "For an Empayre record: the path that made its newest step (absent for EBPP records, and \
         after an operator's assignment)",
        origins(),
        false,
    )
}

fn step_origin_schema() -> utoipa::openapi::Object {
    string_enum("For an Empayre record: the path that made this step", origins(), false)
}

fn journal_origin_schema() -> utoipa::openapi::Object {
    string_enum("For an Empayre projection: the path that applied it", origins(), false)
}

pub(crate) fn account_status_schema() -> utoipa::openapi::Object {
    string_enum(
        "The account's status",
        wire_names!(AccountStatus {
            Active,
            Inactive,
            Incollections,
            Inbankruptcy,
            Closed,
            Repair
        }),
        false,
    )
}

pub(crate) fn profile_status_schema() -> utoipa::openapi::Object {
    string_enum(
        "The profile's status",
        wire_names!(ProfileStatus {
            Active,
            Suspended,
            Revoked
        }),
        false,
    )
}

/// A payment or refund of either channel, with its status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordView {
    #[schema(schema_with = record_kind_schema)]
    pub kind: String,
    pub id: String,
    #[schema(schema_with = record_channel_schema)]
    pub channel: String,
    /// The channel's own word: an EBPP posting status (scheduled, cancelled, processing,
    /// processed, returned, declined, disputed, error) for payment and refund, Empayre's payment
    /// or refund status for the others (kept as Empayre sent it, so a status Empayre adds later
    /// is shown as it is).
    pub status: String,
    /// Whether the record moves the balance in its current status.
    pub live: bool,
    pub amount: String,
    pub currency: String,
    pub account_number: Option<String>,
    pub confirmation_number: Option<String>,
    /// EBPP payment or refund reference, posted or assigned.
    pub reference: Option<String>,
    /// A refund's payment id.
    pub parent_id: Option<String>,
    /// A payment's refund ids.
    pub refund_ids: Vec<String>,
    pub payment_method: Option<String>,
    pub client_key: Option<String>,
    pub received_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = record_origin_schema)]
    pub origin: Option<String>,
    pub history: Vec<HistoryView>,
    /// Channel details kept on the record (return_code, fee, Empayre ids, ...).
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    pub status: String,
    pub at: String,
    pub request_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = step_origin_schema)]
    pub origin: Option<String>,
}

impl From<&Record> for RecordView {
    fn from(r: &Record) -> Self {
        let exponent = currency_exponent(&r.currency).unwrap_or(2);
        Self {
            kind: r.kind.as_str().to_string(),
            id: r.id.clone(),
            channel: r.kind.channel().as_str().to_string(),
            status: r.status.as_str().to_string(),
            live: r.is_live(),
            amount: format_amount(r.amount, exponent),
            currency: r.currency.to_string(),
            account_number: r.account_number.as_ref().map(|n| n.to_string()),
            confirmation_number: r.confirmation_number.clone(),
            reference: r.reference.clone(),
            parent_id: r.parent_id.clone(),
            refund_ids: r.refund_ids.clone(),
            payment_method: r.payment_method.clone(),
            client_key: r.client_key.clone(),
            received_at: rfc3339(r.received_at),
            updated_at: rfc3339(r.updated_at),
            origin: r.history.last().and_then(|h| h.origin).map(|o| o.as_str().to_string()),
            history: r
                .history
                .iter()
                .map(|h| HistoryView {
                    status: h.status.clone(),
                    at: rfc3339(h.at),
                    request_id: h.request_id.clone(),
                    origin: h.origin.map(|o| o.as_str().to_string()),
                })
                .collect(),
            details: r.details.clone(),
        }
    }
}

/// One balance change of the journal.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JournalEntryView {
    /// Starts at 1, no gaps.
    pub seq: u64,
    pub at: String,
    #[schema(schema_with = journal_channel_schema)]
    pub channel: String,
    #[schema(schema_with = record_kind_schema)]
    pub kind: String,
    pub record_id: String,
    pub account_number: String,
    pub status: String,
    /// Signed balance change, e.g. "-101.05".
    pub delta: String,
    pub balance_after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = journal_origin_schema)]
    pub origin: Option<String>,
}

/// Formats journal entries with their account's currency decimals, reading each account once.
pub struct JournalFormatter<'s> {
    store: &'s Store,
    exponents: HashMap<String, u32>,
}

impl<'s> JournalFormatter<'s> {
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            exponents: HashMap::new(),
        }
    }

    pub async fn view(&mut self, e: &JournalEntry) -> Result<JournalEntryView, StoreError> {
        let exponent = match self.exponents.get(e.account_number.as_str()) {
            Some(x) => *x,
            None => {
                let x = self.store.account(&e.account_number).await?.map_or(2, |a| a.exponent());
                self.exponents.insert(e.account_number.to_string(), x);
                x
            }
        };
        Ok(JournalEntryView {
            seq: e.seq,
            at: rfc3339(e.at),
            channel: e.channel.as_str().to_string(),
            kind: e.kind.as_str().to_string(),
            record_id: e.record_id.clone(),
            account_number: e.account_number.to_string(),
            status: e.status.clone(),
            delta: format_amount(e.delta, exponent),
            balance_after: format_amount(e.balance_after, exponent),
            origin: e.origin.map(|o| o.as_str().to_string()),
        })
    }
}

/// An account as the accounts file describes it, with the live `current_balance`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub account_number: String,
    pub customer_account_reference: Option<String>,
    pub account_holder_name: Option<String>,
    pub nickname: Option<String>,
    #[schema(schema_with = account_status_schema)]
    pub status: String,
    pub currency: String,
    pub warning: Option<String>,
    /// The live balance: opening balance plus every change the ledger applied.
    pub current_balance: String,
    pub current_statement_balance: Option<String>,
    pub minimum_payment_due: Option<String>,
    pub past_amount_due: Option<String>,
    pub payment_due_date: Option<String>,
    pub statement_date: Option<String>,
    pub payoff_amount: Option<String>,
    pub payoff_expiry_date: Option<String>,
    pub min_payment_amount: Option<String>,
    pub max_payment_amount: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<Map<String, Value>>,
    /// The profiles linked to this account.
    pub customer_references: Vec<String>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        let money = |d: Option<rust_decimal::Decimal>| d.map(|d| a.format(d));
        Self {
            account_number: a.account_number.to_string(),
            customer_account_reference: a.customer_account_reference.clone(),
            account_holder_name: a.account_holder_name.clone(),
            nickname: a.nickname.clone(),
            status: a.status.as_str().to_string(),
            currency: a.currency.to_string(),
            warning: a.warning.clone(),
            current_balance: a.format(a.current_balance()),
            current_statement_balance: money(a.current_statement_balance),
            minimum_payment_due: money(a.minimum_payment_due),
            past_amount_due: money(a.past_amount_due),
            payment_due_date: a.payment_due_date.clone(),
            statement_date: a.statement_date.clone(),
            payoff_amount: money(a.payoff_amount),
            payoff_expiry_date: a.payoff_expiry_date.clone(),
            min_payment_amount: money(a.min_payment_amount),
            max_payment_amount: money(a.max_payment_amount),
            address: a.address.clone(),
            customer_references: a.customer_references.clone(),
        }
    }
}

/// A customer profile. The SSN (or its digest) is never shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProfileView {
    pub customer_reference: String,
    pub lookup_reference: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub home_phone: Option<String>,
    #[schema(schema_with = profile_status_schema)]
    pub status: String,
    pub warning: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<Map<String, Value>>,
    pub account_numbers: Vec<String>,
}

impl From<&Profile> for ProfileView {
    fn from(p: &Profile) -> Self {
        Self {
            customer_reference: p.customer_reference.clone(),
            lookup_reference: p.lookup_reference.clone(),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            email: p.email.clone(),
            home_phone: p.home_phone.clone(),
            status: p.status.as_str().to_string(),
            warning: p.warning.clone(),
            address: p.address.clone(),
            account_numbers: p.account_numbers.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// What an accounts upsert did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportAnswer {
    pub accounts_created: usize,
    pub accounts_updated: usize,
    pub profiles_created: usize,
    pub profiles_updated: usize,
}

impl From<ImportSummary> for ImportAnswer {
    fn from(s: ImportSummary) -> Self {
        Self {
            accounts_created: s.accounts_created,
            accounts_updated: s.accounts_updated,
            profiles_created: s.profiles_created,
            profiles_updated: s.profiles_updated,
        }
    }
}
