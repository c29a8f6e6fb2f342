//! The domain types as table rows: the column lists, decoding a row, and the column arrays a
//! batch writes in one `unnest` statement (one prepared statement whatever the batch size).
//!
//! A `text[]` column of a row (an account's profiles, a payment's refund ids) travels as a
//! JSON array inside a `jsonb[]` parameter, since an array of arrays cannot be unnested row
//! by row; the statements turn it back into `text[]`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::domain::account::{Account, AccountStatus, Address, Profile, ProfileStatus};
use crate::domain::{AccountNumber, Currency};
use crate::ledger::{Channel, JournalEntry, Origin, Record, RecordKind, RecordStatus, StatusChange};
use crate::store::{StoreError, StoredEvent};

/// Parameters of one statement, as tokio-postgres takes them.
pub type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, StoreError> {
    row.try_get(column).map_err(|e| corrupt(column, e))
}

fn address_of(value: Option<Value>) -> Result<Option<Address>, StoreError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(corrupt("address", format!("not an object: {other}"))),
    }
}

fn strings(list: &[String]) -> Value {
    Value::Array(list.iter().cloned().map(Value::String).collect())
}

// ---------------------------------------------------------------- accounts

pub const ACCOUNT_COLUMNS: &str = "account_number, customer_account_reference, account_holder_name, nickname, \
     status, currency, warning, opening_balance, posted_delta, current_statement_balance, minimum_payment_due, \
     past_amount_due, payment_due_date, statement_date, payoff_amount, payoff_expiry_date, min_payment_amount, \
     max_payment_amount, address, customer_references";

pub fn account_from_row(row: &Row) -> Result<Account, StoreError> {
    let status: String = get(row, "status")?;
    Ok(Account {
        account_number: get(row, "account_number")?,
        customer_account_reference: get(row, "customer_account_reference")?,
        account_holder_name: get(row, "account_holder_name")?,
        nickname: get(row, "nickname")?,
        status: AccountStatus::parse(&status).ok_or_else(|| corrupt("account status", &status))?,
        currency: get(row, "currency")?,
        warning: get(row, "warning")?,
        opening_balance: get(row, "opening_balance")?,
        posted_delta: get(row, "posted_delta")?,
        current_statement_balance: get(row, "current_statement_balance")?,
        minimum_payment_due: get(row, "minimum_payment_due")?,
        past_amount_due: get(row, "past_amount_due")?,
        payment_due_date: get(row, "payment_due_date")?,
        statement_date: get(row, "statement_date")?,
        payoff_amount: get(row, "payoff_amount")?,
        payoff_expiry_date: get(row, "payoff_expiry_date")?,
        min_payment_amount: get(row, "min_payment_amount")?,
        max_payment_amount: get(row, "max_payment_amount")?,
        address: address_of(get(row, "address")?)?,
        customer_references: get(row, "customer_references")?,
        last_journal_commit: None,
    })
}

// ---------------------------------------------------------------- profiles

pub const PROFILE_COLUMNS: &str = "customer_reference, lookup_reference, first_name, last_name, email, \
     ssn_sha256, home_phone, status, warning, address, account_numbers";

pub fn profile_from_row(row: &Row) -> Result<Profile, StoreError> {
    let status: String = get(row, "status")?;
    Ok(Profile {
        customer_reference: get(row, "customer_reference")?,
        lookup_reference: get(row, "lookup_reference")?,
        first_name: get(row, "first_name")?,
        last_name: get(row, "last_name")?,
        email: get(row, "email")?,
        ssn_sha256: get(row, "ssn_sha256")?,
        home_phone: get(row, "home_phone")?,
        status: ProfileStatus::parse(&status).ok_or_else(|| corrupt("profile status", &status))?,
        warning: get(row, "warning")?,
        address: address_of(get(row, "address")?)?,
        account_numbers: get(row, "account_numbers")?,
    })
}

// ---------------------------------------------------------------- records

pub const RECORD_COLUMNS: &str = "kind, id, status, live, amount, currency, account_number, \
     confirmation_number, reference, parent_id, refund_ids, counts_against_payment, posted_amount, \
     payment_method, client_key, received_at, updated_at, history, details";

/// `RECORD_COLUMNS` qualified with a table alias.
pub fn record_columns(alias: &str) -> String {
    RECORD_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn record_from_row(row: &Row) -> Result<Record, StoreError> {
    let kind: String = get(row, "kind")?;
    let kind = RecordKind::parse(&kind).ok_or_else(|| corrupt("record kind", &kind))?;
    let status: String = get(row, "status")?;
    let history: Value = get(row, "history")?;
    let details: Value = get(row, "details")?;
    Ok(Record {
        kind,
        id: get(row, "id")?,
        // The status in its channel's words; the `live` column is derived from it (for SQL).
        status: RecordStatus::parse(kind, &status).ok_or_else(|| corrupt("record status", &status))?,
        amount: get(row, "amount")?,
        currency: get(row, "currency")?,
        account_number: get(row, "account_number")?,
        confirmation_number: get(row, "confirmation_number")?,
        reference: get(row, "reference")?,
        parent_id: get(row, "parent_id")?,
        refund_ids: get(row, "refund_ids")?,
        counts_against_payment: get(row, "counts_against_payment")?,
        posted_amount: get(row, "posted_amount")?,
        payment_method: get(row, "payment_method")?,
        client_key: get(row, "client_key")?,
        received_at: get(row, "received_at")?,
        updated_at: get(row, "updated_at")?,
        history: serde_json::from_value::<Vec<StatusChange>>(history).map_err(|e| corrupt("record history", e))?,
        details: match details {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(corrupt("record details", format!("not an object: {other}"))),
        },
    })
}

#[derive(Default)]
pub struct RecordColumns {
    kind: Vec<&'static str>,
    id: Vec<String>,
    channel: Vec<&'static str>,
    status: Vec<String>,
    live: Vec<bool>,
    amount: Vec<Decimal>,
    currency: Vec<Currency>,
    account_number: Vec<Option<AccountNumber>>,
    confirmation_number: Vec<Option<String>>,
    reference: Vec<Option<String>>,
    parent_id: Vec<Option<String>>,
    refund_ids: Vec<Value>,
    counts: Vec<bool>,
    posted_amount: Vec<Option<Decimal>>,
    payment_method: Vec<Option<String>>,
    client_key: Vec<Option<String>>,
    received_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    history: Vec<Value>,
    details: Vec<Value>,
}

impl RecordColumns {
    pub fn push(&mut self, r: &Record) -> Result<(), StoreError> {
        self.kind.push(r.kind.as_str());
        self.id.push(r.id.clone());
        self.channel.push(r.kind.channel().as_str());
        self.status.push(r.status.as_str().to_string());
        self.live.push(r.is_live());
        self.amount.push(r.amount);
        self.currency.push(r.currency.clone());
        self.account_number.push(r.account_number.clone());
        self.confirmation_number.push(r.confirmation_number.clone());
        self.reference.push(r.reference.clone());
        self.parent_id.push(r.parent_id.clone());
        self.refund_ids.push(strings(&r.refund_ids));
        self.counts.push(r.counts_against_payment);
        self.posted_amount.push(r.posted_amount);
        self.payment_method.push(r.payment_method.clone());
        self.client_key.push(r.client_key.clone());
        self.received_at.push(r.received_at);
        self.updated_at.push(r.updated_at);
        self.history
            .push(serde_json::to_value(&r.history).map_err(|e| corrupt("record history", e))?);
        self.details.push(Value::Object(r.details.clone()));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    pub fn params(&self) -> Params<'_> {
        vec![
            &self.kind,
            &self.id,
            &self.channel,
            &self.status,
            &self.live,
            &self.amount,
            &self.currency,
            &self.account_number,
            &self.confirmation_number,
            &self.reference,
            &self.parent_id,
            &self.refund_ids,
            &self.counts,
            &self.posted_amount,
            &self.payment_method,
            &self.client_key,
            &self.received_at,
            &self.updated_at,
            &self.history,
            &self.details,
        ]
    }
}

/// The `SELECT` over the record column arrays that the insert and the update share.
const RECORD_ROWS: &str = "SELECT u.k, u.i, u.ch, u.st, u.lv, u.am, u.cur, u.acc, u.conf, u.ref, u.par, \
            ARRAY(SELECT jsonb_array_elements_text(u.rids)), u.cnt, u.pam, u.pm, u.ck, u.ra, u.ua, u.h, u.d \
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::numeric[], $7::text[], \
                 $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::bool[], $14::numeric[], \
                 $15::text[], $16::text[], $17::timestamptz[], $18::timestamptz[], $19::jsonb[], $20::jsonb[]) \
          AS u(k, i, ch, st, lv, am, cur, acc, conf, ref, par, rids, cnt, pam, pm, ck, ra, ua, h, d)";

/// New records. A record that exists already is not overwritten: the statement fails with a
/// unique violation instead (the caller's locks make that a lost race, and it re-runs).
pub fn insert_new_records() -> String {
    format!(
        "WITH ins AS (INSERT INTO records (kind, id, channel, status, live, amount, currency, account_number, \
           confirmation_number, reference, parent_id, refund_ids, counts_against_payment, posted_amount, \
           payment_method, client_key, received_at, updated_at, history, details) {RECORD_ROWS} \
           ON CONFLICT (kind, id) DO NOTHING RETURNING 1) \
         SELECT biller_inbox_expect_rows((SELECT count(*) FROM ins), cardinality($2::text[]), 'records')"
    )
}

/// Whole records, inserted or replaced (updates of known records; the copy from sled).
pub fn upsert_records() -> String {
    format!(
        "INSERT INTO records (kind, id, channel, status, live, amount, currency, account_number, \
           confirmation_number, reference, parent_id, refund_ids, counts_against_payment, posted_amount, \
           payment_method, client_key, received_at, updated_at, history, details) {RECORD_ROWS} \
         ON CONFLICT (kind, id) DO UPDATE SET status = EXCLUDED.status, live = EXCLUDED.live, \
           amount = EXCLUDED.amount, currency = EXCLUDED.currency, account_number = EXCLUDED.account_number, \
           confirmation_number = EXCLUDED.confirmation_number, reference = EXCLUDED.reference, \
           parent_id = EXCLUDED.parent_id, refund_ids = EXCLUDED.refund_ids, \
           counts_against_payment = EXCLUDED.counts_against_payment, posted_amount = EXCLUDED.posted_amount, \
           payment_method = EXCLUDED.payment_method, client_key = EXCLUDED.client_key, \
           received_at = EXCLUDED.received_at, updated_at = EXCLUDED.updated_at, history = EXCLUDED.history, \
           details = EXCLUDED.details"
    )
}

// ---------------------------------------------------------------- journal

pub const JOURNAL_COLUMNS: &str =
    "seq, at, channel, kind, record_id, account_number, status, delta, balance_after, origin";

pub fn journal_from_row(row: &Row) -> Result<JournalEntry, StoreError> {
    let seq: i64 = get(row, "seq")?;
    let channel: String = get(row, "channel")?;
    let kind: String = get(row, "kind")?;
    let origin: Option<String> = get(row, "origin")?;
    let origin = match origin {
        None => None,
        Some(name) => Some(Origin::parse(&name).ok_or_else(|| corrupt("journal origin", &name))?),
    };
    Ok(JournalEntry {
        seq: u64::try_from(seq).map_err(|e| corrupt("journal seq", e))?,
        at: get(row, "at")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("journal channel", &channel))?,
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt("journal kind", &kind))?,
        record_id: get(row, "record_id")?,
        account_number: get(row, "account_number")?,
        status: get(row, "status")?,
        delta: get(row, "delta")?,
        balance_after: get(row, "balance_after")?,
        origin,
    })
}

/// Journal entries as column arrays, without seqs: a batch numbers them from the counter (see
/// `INSERT_JOURNAL_NUMBERED`).
#[derive(Default)]
pub struct JournalColumns {
    at: Vec<DateTime<Utc>>,
    channel: Vec<&'static str>,
    kind: Vec<&'static str>,
    record_id: Vec<String>,
    account_number: Vec<AccountNumber>,
    status: Vec<String>,
    delta: Vec<Decimal>,
    balance_after: Vec<Decimal>,
    origin: Vec<Option<&'static str>>,
}

impl JournalColumns {
    /// A settled entry, in the order the batch decided it (its seq follows from that order).
    pub fn push(&mut self, draft: &crate::ledger::JournalDraft) {
        let e = draft.entry();
        self.at.push(e.at);
        self.channel.push(e.channel.as_str());
        self.kind.push(e.kind.as_str());
        self.record_id.push(e.record_id.clone());
        self.account_number.push(e.account_number.clone());
        self.status.push(e.status.clone());
        self.delta.push(e.delta);
        self.balance_after.push(e.balance_after);
        self.origin.push(e.origin.map(|o| o.as_str()));
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// $1..$9 of `INSERT_JOURNAL_NUMBERED`.
    pub fn params(&self) -> Params<'_> {
        vec![
            &self.at,
            &self.channel,
            &self.kind,
            &self.record_id,
            &self.account_number,
            &self.status,
            &self.delta,
            &self.balance_after,
            &self.origin,
        ]
    }
}

/// Bumps the journal counter once for the whole batch and inserts its entries numbered from
/// it, in array order; returns the last seq. The counter row stays locked until the batch
/// commits, so batches that journal commit one after the other in seq order: a reader never
/// sees seq N+1 before N. This is the batch's last statement but the commit, to hold that lock
/// as briefly as possible.
pub const INSERT_JOURNAL_NUMBERED: &str = "WITH head AS ( \
       UPDATE journal_head SET last_seq = last_seq + cardinality($1::timestamptz[]) RETURNING last_seq), \
     ins AS ( \
       INSERT INTO journal (seq, at, channel, kind, record_id, account_number, status, delta, balance_after, origin) \
       SELECT head.last_seq - cardinality($1::timestamptz[]) + u.ord, u.at, u.ch, u.k, u.rid, u.acc, u.st, u.d, u.ba, u.o \
       FROM head, unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                         $7::numeric[], $8::numeric[], $9::text[]) WITH ORDINALITY AS u(at, ch, k, rid, acc, st, d, ba, o, ord) \
       RETURNING 1) \
     SELECT last_seq, (SELECT count(*) FROM ins) FROM head";

// ---------------------------------------------------------------- events

pub const EVENT_COLUMNS: &str = "seq, source, event_id, event_type, invoice_id, status, reason, key_id, \
     received_at, request_id, body_sha256, body, body_encoding, changes, stale";

pub fn event_from_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let seq: i64 = get(row, "seq")?;
    let changes: Value = get(row, "changes")?;
    Ok(StoredEvent {
        seq: u64::try_from(seq).map_err(|e| corrupt("event seq", e))?,
        source: get(row, "source")?,
        event_id: get(row, "event_id")?,
        event_type: get(row, "event_type")?,
        invoice_id: get(row, "invoice_id")?,
        status: get(row, "status")?,
        reason: get(row, "reason")?,
        key_id: get(row, "key_id")?,
        received_at: get(row, "received_at")?,
        request_id: get(row, "request_id")?,
        body_sha256: get(row, "body_sha256")?,
        body: get(row, "body")?,
        body_encoding: get(row, "body_encoding")?,
        changes: match changes {
            Value::Array(items) => items,
            other => return Err(corrupt("event changes", format!("not an array: {other}"))),
        },
        stale: get(row, "stale")?,
    })
}

#[derive(Default)]
pub struct EventColumns {
    seq: Vec<i64>,
    source: Vec<String>,
    event_id: Vec<Option<i64>>,
    event_type: Vec<Option<String>>,
    invoice_id: Vec<Option<String>>,
    status: Vec<String>,
    reason: Vec<Option<String>>,
    key_id: Vec<String>,
    received_at: Vec<DateTime<Utc>>,
    request_id: Vec<String>,
    body_sha256: Vec<String>,
    body: Vec<String>,
    body_encoding: Vec<String>,
    changes: Vec<Value>,
    stale: Vec<Value>,
}

impl EventColumns {
    /// An event with the seq it is to be stored under.
    pub fn push(&mut self, seq: u64, e: &StoredEvent) {
        self.seq.push(seq as i64);
        self.source.push(e.source.clone());
        self.event_id.push(e.event_id);
        self.event_type.push(e.event_type.clone());
        self.invoice_id.push(e.invoice_id.clone());
        self.status.push(e.status.clone());
        self.reason.push(e.reason.clone());
        self.key_id.push(e.key_id.clone());
        self.received_at.push(e.received_at);
        self.request_id.push(e.request_id.clone());
        self.body_sha256.push(e.body_sha256.clone());
        self.body.push(e.body.clone());
        self.body_encoding.push(e.body_encoding.clone());
        self.changes.push(Value::Array(e.changes.clone()));
        self.stale.push(strings(&e.stale));
    }

    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    pub fn params(&self) -> Params<'_> {
        vec![
            &self.seq,
            &self.source,
            &self.event_id,
            &self.event_type,
            &self.invoice_id,
            &self.status,
            &self.reason,
            &self.key_id,
            &self.received_at,
            &self.request_id,
            &self.body_sha256,
            &self.body,
            &self.body_encoding,
            &self.changes,
            &self.stale,
        ]
    }
}

const EVENT_ROWS: &str = "SELECT u.seq, u.src, u.eid, u.et, u.inv, u.st, u.rs, u.kid, u.ra, u.rid, u.sha, \
            u.body, u.enc, u.ch, ARRAY(SELECT jsonb_array_elements_text(u.stale)) \
     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[], \
                 $15::jsonb[]) AS u(seq, src, eid, et, inv, st, rs, kid, ra, rid, sha, body, enc, ch, stale)";

/// Stores new events in array order, each numbered by the table's identity (the seq arrays
/// given are ignored, pass zeros); returns the seqs given, ascending, which is array order.
/// An event whose (source, eventID) is stored already makes the statement fail with a unique
/// violation (a lost race: the batch decides again and then sees a duplicate).
pub fn insert_new_events() -> String {
    format!(
        "WITH ins AS (INSERT INTO events (source, event_id, event_type, invoice_id, status, reason, key_id, \
           received_at, request_id, body_sha256, body, body_encoding, changes, stale) \
           SELECT src, eid, et, inv, st, rs, kid, ra, rid, sha, body, enc, ch, stale \
           FROM ({EVENT_ROWS}) AS e(seq, src, eid, et, inv, st, rs, kid, ra, rid, sha, body, enc, ch, stale) \
           ON CONFLICT (source, event_id) WHERE event_id IS NOT NULL DO NOTHING RETURNING seq) \
         SELECT biller_inbox_expect_rows((SELECT count(*) FROM ins), cardinality($1::bigint[]), 'events'), \
                (SELECT coalesce(array_agg(seq ORDER BY seq), '{{}}') FROM ins)"
    )
}
