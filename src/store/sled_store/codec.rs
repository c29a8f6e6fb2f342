//! The stored form of accounts, profiles, records, journal entries and Empayre events: a compact
//! binary layout instead of JSON.
//!
//! Why: at 1,000,000 accounts the accounts and profiles trees are most of what a lookup or a
//! posting reads, and sled caches, reads and rewrites them a whole leaf (up to 16 entries) at
//! a time. As JSON an account was about 520 bytes, mostly field names and `null`s; here it is
//! about 80. Smaller leaves mean more of them fit in `cache_capacity_bytes`, and fewer bytes
//! copied each time a posting rewrites an account's leaf. A record (~650 bytes as JSON, ~200
//! here) is written twice by every posting, in its commit-log entry and in `records`; its
//! journal entry (~280 bytes as JSON, ~70 here) goes into the same commit-log entry. A stored
//! Empayre event keeps its verified body as raw bytes here, where JSON had to escape every
//! quote of it inside a string.
//!
//! Layout: a version byte, then the fields in declaration order. Strings and lists carry a
//! LEB128 length; an `Option` is a presence byte (0 absent, 1 present) before the value; a
//! decimal is one byte of scale (with 0x80 for a negative sign) and its mantissa as LEB128, so
//! it comes back bit for bit (scale included, which the amount format depends on); statuses
//! are their names, so reordering the enums cannot change what stored bytes mean.
//!
//! Stores written before this layout hold JSON values. JSON always begins with `{`, which no
//! version byte uses, so both are read; every write uses the compact layout.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::bytes::{ByteReader, NEGATIVE};
use super::StoreError;
use crate::domain::account::{Account, AccountStatus, Address, Profile, ProfileStatus};
use crate::ledger::{Channel, JournalEntry, Origin, Record, RecordKind, RecordStatus, StatusChange};
use crate::store::StoredEvent;

/// Version byte of the first compact account layout.
const ACCOUNT_V1: u8 = 0xA1;
/// Version byte of the first compact profile layout.
const PROFILE_V1: u8 = 0xB1;
/// Version byte of the first compact record layout.
const RECORD_V1: u8 = 0xC1;
/// V1 plus, after each history step's request id, the step's `origin` (an optional name).
const RECORD_V2: u8 = 0xC2;
/// Version byte of the first compact journal entry layout.
const JOURNAL_V1: u8 = 0xD1;
/// V1 plus, at the end, the entry's `origin` (an optional name).
const JOURNAL_V2: u8 = 0xD2;
/// Version byte of the first compact stored-event layout.
const EVENT_V1: u8 = 0xE1;
/// The first byte of every legacy (JSON) value.
const JSON_OBJECT: u8 = b'{';

pub(crate) fn encode_account(a: &Account) -> Vec<u8> {
    let mut w = Encoder(Vec::with_capacity(96));
    w.0.push(ACCOUNT_V1);
    w.str(&a.account_number);
    w.opt_str(a.customer_account_reference.as_deref());
    w.opt_str(a.account_holder_name.as_deref());
    w.opt_str(a.nickname.as_deref());
    w.str(a.status.as_str());
    w.str(&a.currency);
    w.opt_str(a.warning.as_deref());
    w.decimal(a.opening_balance);
    w.decimal(a.posted_delta);
    w.opt_decimal(a.current_statement_balance);
    w.opt_decimal(a.minimum_payment_due);
    w.opt_decimal(a.past_amount_due);
    w.opt_str(a.payment_due_date.as_deref());
    w.opt_str(a.statement_date.as_deref());
    w.opt_decimal(a.payoff_amount);
    w.opt_str(a.payoff_expiry_date.as_deref());
    w.opt_decimal(a.min_payment_amount);
    w.opt_decimal(a.max_payment_amount);
    w.json_map(a.address.as_ref());
    w.strs(&a.customer_references);
    match a.last_journal_commit {
        None => w.0.push(0),
        Some(commit) => {
            w.0.push(1);
            w.uint(u128::from(commit));
        }
    }
    w.0
}

pub(crate) fn decode_account(bytes: &[u8]) -> Result<Account, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&ACCOUNT_V1) => {
            let mut r = ByteReader::new(bytes, 1);
            let account = Account {
                account_number: r.account_number()?,
                customer_account_reference: r.opt_string()?,
                account_holder_name: r.opt_string()?,
                nickname: r.opt_string()?,
                status: {
                    let name = r.str()?;
                    AccountStatus::parse(name).ok_or_else(|| corrupt("unknown account status"))?
                },
                currency: r.currency()?,
                warning: r.opt_string()?,
                opening_balance: r.decimal()?,
                posted_delta: r.decimal()?,
                current_statement_balance: r.opt_decimal()?,
                minimum_payment_due: r.opt_decimal()?,
                past_amount_due: r.opt_decimal()?,
                payment_due_date: r.opt_string()?,
                statement_date: r.opt_string()?,
                payoff_amount: r.opt_decimal()?,
                payoff_expiry_date: r.opt_string()?,
                min_payment_amount: r.opt_decimal()?,
                max_payment_amount: r.opt_decimal()?,
                address: r.json_map()?,
                customer_references: r.strings()?,
                last_journal_commit: if r.flag()? {
                    Some(u64::try_from(r.uint()?).map_err(|_| corrupt("journal commit out of range"))?)
                } else {
                    None
                },
            };
            r.finish(account)
        }
        _ => Err(corrupt("unknown account encoding")),
    }
}

pub(crate) fn encode_profile(p: &Profile) -> Vec<u8> {
    let mut w = Encoder(Vec::with_capacity(96));
    w.0.push(PROFILE_V1);
    w.str(&p.customer_reference);
    w.opt_str(p.lookup_reference.as_deref());
    w.opt_str(p.first_name.as_deref());
    w.opt_str(p.last_name.as_deref());
    w.opt_str(p.email.as_deref());
    w.opt_str(p.ssn_sha256.as_deref());
    w.opt_str(p.home_phone.as_deref());
    w.str(p.status.as_str());
    w.opt_str(p.warning.as_deref());
    w.json_map(p.address.as_ref());
    w.strs(&p.account_numbers);
    w.0
}

pub(crate) fn decode_profile(bytes: &[u8]) -> Result<Profile, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&PROFILE_V1) => {
            let mut r = ByteReader::new(bytes, 1);
            let profile = Profile {
                customer_reference: r.string()?,
                lookup_reference: r.opt_string()?,
                first_name: r.opt_string()?,
                last_name: r.opt_string()?,
                email: r.opt_string()?,
                ssn_sha256: r.opt_string()?,
                home_phone: r.opt_string()?,
                status: {
                    let name = r.str()?;
                    ProfileStatus::parse(name).ok_or_else(|| corrupt("unknown profile status"))?
                },
                warning: r.opt_string()?,
                address: r.json_map()?,
                account_numbers: r.account_numbers()?,
            };
            r.finish(profile)
        }
        _ => Err(corrupt("unknown profile encoding")),
    }
}

pub(crate) fn encode_record(r: &Record) -> Vec<u8> {
    let mut w = Encoder(Vec::with_capacity(256));
    w.0.push(RECORD_V2);
    w.str(r.kind.as_str());
    w.str(&r.id);
    w.str(r.status.as_str());
    // Derivable from the status, but part of the layout.
    w.0.push(u8::from(r.is_live()));
    w.decimal(r.amount);
    w.str(&r.currency);
    w.opt_str(r.account_number.as_deref());
    w.opt_str(r.confirmation_number.as_deref());
    w.opt_str(r.reference.as_deref());
    w.opt_str(r.parent_id.as_deref());
    w.strs(&r.refund_ids);
    w.0.push(u8::from(r.counts_against_payment));
    w.opt_decimal(r.posted_amount);
    w.opt_str(r.payment_method.as_deref());
    w.opt_str(r.client_key.as_deref());
    w.time(r.received_at);
    w.time(r.updated_at);
    w.uint(r.history.len() as u128);
    for change in &r.history {
        w.str(&change.status);
        w.time(change.at);
        w.str(&change.request_id);
        w.opt_str(change.origin.map(Origin::as_str));
    }
    if r.details.is_empty() {
        w.0.push(0);
    } else {
        w.json_map(Some(&r.details));
    }
    w.0
}

/// The fields of a stored record a search filters and orders on, borrowed from its compact
/// bytes: a search may walk every record of its window, and needs no more than these.
#[derive(Debug, PartialEq)]
pub(crate) struct RecordFields<'a> {
    pub status: &'a str,
    pub amount: Decimal,
    pub currency: &'a str,
    pub account_number: Option<&'a str>,
    pub confirmation_number: Option<&'a str>,
    pub payment_method: Option<&'a str>,
    pub client_key: Option<&'a str>,
}

/// Reads `RecordFields` from a compact record, skipping what lies between them and stopping
/// after the last (the order is `encode_record`'s).
pub(crate) fn record_fields(bytes: &[u8]) -> Result<RecordFields<'_>, StoreError> {
    // The fields read here come before the history, where V1 and V2 differ.
    if !matches!(bytes.first(), Some(&RECORD_V1) | Some(&RECORD_V2)) {
        return Err(corrupt("unknown record encoding"));
    }
    read_fields(&mut ByteReader::new(bytes, 1))
}

/// When a stored record (compact or legacy JSON) was received, reading no more of a compact one
/// than the fields before it: the search's `like` on an id walks the records an id prefix names
/// and keeps those of its window.
pub(crate) fn record_received_at(bytes: &[u8]) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    if is_json(bytes) {
        return decode_record(bytes).map(|r| r.received_at);
    }
    if !matches!(bytes.first(), Some(&RECORD_V1) | Some(&RECORD_V2)) {
        return Err(corrupt("unknown record encoding"));
    }
    let mut r = ByteReader::new(bytes, 1);
    read_fields(&mut r)?;
    r.time()
}

/// The search's fields, from a reader just past the layout byte; stops after `client_key`.
fn read_fields<'a>(r: &mut ByteReader<'a>) -> Result<RecordFields<'a>, StoreError> {
    r.str()?; // kind
    r.str()?; // id
    let status = r.str()?;
    r.flag()?; // live
    let amount = r.decimal()?;
    let currency = r.str()?;
    let account_number = r.opt_str()?;
    let confirmation_number = r.opt_str()?;
    r.opt_str()?; // reference
    r.opt_str()?; // parent_id
    for _ in 0..r.len()? {
        r.str()?; // refund_ids
    }
    r.flag()?; // counts_against_payment
    r.opt_decimal()?; // posted_amount
    Ok(RecordFields {
        status,
        amount,
        currency,
        account_number,
        confirmation_number,
        payment_method: r.opt_str()?,
        client_key: r.opt_str()?,
    })
}

/// Whether a stored record is a legacy JSON value (read by serde) or the compact layout.
pub(crate) fn is_json(bytes: &[u8]) -> bool {
    bytes.first() == Some(&JSON_OBJECT)
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&version @ (RECORD_V1 | RECORD_V2)) => {
            let mut r = ByteReader::new(bytes, 1);
            let kind = RecordKind::parse(r.str()?).ok_or_else(|| corrupt("unknown record kind"))?;
            let id = r.string()?;
            let status = RecordStatus::parse(kind, r.str()?).ok_or_else(|| corrupt("unknown record status"))?;
            // The stored liveness is what the status says.
            r.flag()?;
            let record = Record {
                kind,
                id,
                status,
                amount: r.decimal()?,
                currency: r.currency()?,
                account_number: r.opt_account_number()?,
                confirmation_number: r.opt_string()?,
                reference: r.opt_string()?,
                parent_id: r.opt_string()?,
                refund_ids: r.strings()?,
                counts_against_payment: r.flag()?,
                posted_amount: r.opt_decimal()?,
                payment_method: r.opt_string()?,
                client_key: r.opt_string()?,
                received_at: r.time()?,
                updated_at: r.time()?,
                history: {
                    let count = r.len()?;
                    let mut out = Vec::with_capacity(count);
                    for _ in 0..count {
                        out.push(StatusChange {
                            status: r.string()?,
                            at: r.time()?,
                            request_id: r.string()?,
                            origin: if version == RECORD_V2 {
                                read_origin(&mut r)?
                            } else {
                                None
                            },
                        });
                    }
                    out
                },
                details: r.json_map()?.unwrap_or_default(),
            };
            r.finish(record)
        }
        _ => Err(corrupt("unknown record encoding")),
    }
}

pub(crate) fn encode_journal(e: &JournalEntry) -> Vec<u8> {
    let mut w = Encoder(Vec::with_capacity(96));
    w.0.push(JOURNAL_V2);
    w.uint(u128::from(e.seq));
    w.time(e.at);
    w.str(e.channel.as_str());
    w.str(e.kind.as_str());
    w.str(&e.record_id);
    w.str(&e.account_number);
    w.str(&e.status);
    w.decimal(e.delta);
    w.decimal(e.balance_after);
    w.opt_str(e.origin.map(Origin::as_str));
    w.0
}

pub(crate) fn decode_journal(bytes: &[u8]) -> Result<JournalEntry, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&version @ (JOURNAL_V1 | JOURNAL_V2)) => {
            let mut r = ByteReader::new(bytes, 1);
            let entry = JournalEntry {
                seq: u64::try_from(r.uint()?).map_err(|_| corrupt("journal seq out of range"))?,
                at: r.time()?,
                channel: {
                    let name = r.str()?;
                    Channel::parse(name).ok_or_else(|| corrupt("unknown journal channel"))?
                },
                kind: {
                    let name = r.str()?;
                    RecordKind::parse(name).ok_or_else(|| corrupt("unknown record kind"))?
                },
                record_id: r.string()?,
                account_number: r.account_number()?,
                status: r.string()?,
                delta: r.decimal()?,
                balance_after: r.decimal()?,
                origin: if version == JOURNAL_V2 {
                    read_origin(&mut r)?
                } else {
                    None
                },
            };
            r.finish(entry)
        }
        _ => Err(corrupt("unknown journal entry encoding")),
    }
}

pub(crate) fn encode_event(e: &StoredEvent) -> Vec<u8> {
    let mut w = Encoder(Vec::with_capacity(256 + e.body.len()));
    w.0.push(EVENT_V1);
    w.uint(u128::from(e.seq));
    w.str(&e.source);
    match e.event_id {
        None => w.0.push(0),
        Some(id) => {
            w.0.push(1);
            w.int(id);
        }
    }
    w.opt_str(e.event_type.as_deref());
    w.opt_str(e.invoice_id.as_deref());
    w.str(&e.status);
    w.opt_str(e.reason.as_deref());
    w.str(&e.key_id);
    w.time(e.received_at);
    w.str(&e.request_id);
    w.str(&e.body_sha256);
    w.str(&e.body);
    w.str(&e.body_encoding);
    // Serializing JSON values cannot fail: their map keys are strings.
    w.str(&serde_json::to_string(&e.changes).unwrap_or_else(|_| String::from("[]")));
    w.strs(&e.stale);
    w.0
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    match bytes.first() {
        Some(&JSON_OBJECT) => super::decode(bytes),
        Some(&EVENT_V1) => {
            let mut r = ByteReader::new(bytes, 1);
            let event = StoredEvent {
                seq: u64::try_from(r.uint()?).map_err(|_| corrupt("event seq out of range"))?,
                source: r.string()?,
                event_id: if r.flag()? { Some(r.int()?) } else { None },
                event_type: r.opt_string()?,
                invoice_id: r.opt_string()?,
                status: r.string()?,
                reason: r.opt_string()?,
                key_id: r.string()?,
                received_at: r.time()?,
                request_id: r.string()?,
                body_sha256: r.string()?,
                body: r.string()?,
                body_encoding: r.string()?,
                changes: serde_json::from_str(r.str()?)
                    .map_err(|e| StoreError::Corrupt(format!("stored event changes: {e}")))?,
                stale: r.strings()?,
            };
            r.finish(event)
        }
        _ => Err(corrupt("unknown stored event encoding")),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.into())
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn uint(&mut self, mut n: u128) {
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(low);
                return;
            }
            self.0.push(low | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u128);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn strs(&mut self, items: &[impl AsRef<str>]) {
        self.uint(items.len() as u128);
        for s in items {
            self.str(s.as_ref());
        }
    }

    fn decimal(&mut self, d: Decimal) {
        // scale() is at most 28, so it never collides with the sign bit.
        let sign = if d.is_sign_negative() { NEGATIVE } else { 0 };
        self.0.push(d.scale() as u8 | sign);
        self.uint(d.mantissa().unsigned_abs());
    }

    fn opt_decimal(&mut self, d: Option<Decimal>) {
        match d {
            None => self.0.push(0),
            Some(d) => {
                self.0.push(1);
                self.decimal(d);
            }
        }
    }

    /// Seconds (zigzag, so times before 1970 stay short) and nanoseconds: exact to the
    /// nanosecond, which the time index and the answers' timestamps carry.
    fn time(&mut self, at: DateTime<Utc>) {
        self.int(at.timestamp());
        self.uint(u128::from(at.timestamp_subsec_nanos()));
    }

    /// A signed integer, zigzag-encoded so small negative numbers stay short.
    fn int(&mut self, n: i64) {
        self.uint(u128::from(((n << 1) ^ (n >> 63)) as u64));
    }

    /// Free-form JSON (an address as EBPP sent it, a record's channel details) stays JSON
    /// inside the value.
    fn json_map(&mut self, map: Option<&Address>) {
        match map {
            None => self.0.push(0),
            Some(map) => {
                self.0.push(1);
                // Serializing a map of JSON values cannot fail: its keys are strings.
                let text = serde_json::to_string(map).unwrap_or_else(|_| String::from("{}"));
                self.str(&text);
            }
        }
    }
}

/// An optional `Origin`, stored by its name.
fn read_origin(r: &mut ByteReader) -> Result<Option<Origin>, StoreError> {
    match r.opt_str()? {
        None => Ok(None),
        Some(name) => Origin::parse(name).map(Some).ok_or_else(|| corrupt("unknown origin")),
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::domain::status::EmpayreRefundStatus;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    /// Every optional field absent, every number zero, no linked profile.
    fn bare_account() -> Account {
        Account {
            account_number: "A-1".into(),
            opening_balance: Decimal::ZERO,
            min_payment_amount: None,
            max_payment_amount: None,
            customer_references: Vec::new(),
            ..crate::ledger::test_support::account("USD")
        }
    }

    fn full_account() -> Account {
        let address = serde_json::json!({"line1": "1 Main St", "city": "Zürich", "extra": {"floor": 3, "ok": true}});
        Account {
            account_number: "ACC {0001}/#$%&*".into(),
            customer_account_reference: Some("car-9".into()),
            account_holder_name: Some("Hölder Äß".into()),
            nickname: Some(String::new()),
            status: AccountStatus::Inbankruptcy,
            currency: "JPY".into(),
            warning: Some("see notes".into()),
            opening_balance: dec("1000000.00"),
            posted_delta: dec("-12.30"),
            // A negative zero, which a decimal can hold: the sign must survive too.
            current_statement_balance: Some(Decimal::from_parts(0, 0, 0, true, 2)),
            minimum_payment_due: Some(dec("79228162514264337593543950335")),
            past_amount_due: Some(dec("-7.9228162514264337593543950335")),
            payment_due_date: Some("2026-12-10".into()),
            statement_date: Some("2026-11-10".into()),
            payoff_amount: Some(dec("0.0000000000000000000000000001")),
            payoff_expiry_date: Some("2027-01-01".into()),
            min_payment_amount: Some(dec("1")),
            max_payment_amount: Some(dec("250.5")),
            address: address.as_object().cloned(),
            customer_references: vec!["C-1".into(), "C-2".into()],
            last_journal_commit: Some(u64::MAX),
        }
    }

    fn bare_profile() -> Profile {
        Profile {
            customer_reference: "C-1".into(),
            account_numbers: Vec::new(),
            ..crate::ledger::test_support::profile()
        }
    }

    fn full_profile() -> Profile {
        Profile {
            customer_reference: "C-ß".into(),
            lookup_reference: Some("L-7".into()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            email: Some("ada@example.com".into()),
            ssn_sha256: Some(crate::domain::account::ssn_digest("123456789")),
            home_phone: Some("+1 555 0100".into()),
            status: ProfileStatus::Revoked,
            warning: Some("fraud review".into()),
            address: serde_json::json!({"zip": "10001"}).as_object().cloned(),
            account_numbers: vec!["A-1".into(), "A-2".into(), "A-3".into()],
        }
    }

    /// Decimals must come back bit for bit: the scale decides how an amount is printed.
    fn same_decimals(a: &Account, b: &Account) {
        let pairs = [
            (Some(a.opening_balance), Some(b.opening_balance)),
            (Some(a.posted_delta), Some(b.posted_delta)),
            (a.current_statement_balance, b.current_statement_balance),
            (a.minimum_payment_due, b.minimum_payment_due),
            (a.past_amount_due, b.past_amount_due),
            (a.payoff_amount, b.payoff_amount),
            (a.min_payment_amount, b.min_payment_amount),
            (a.max_payment_amount, b.max_payment_amount),
        ];
        for (x, y) in pairs {
            assert_eq!(x.map(|d| d.serialize()), y.map(|d| d.serialize()));
        }
    }

    #[test]
    fn accounts_read_back_as_written() {
        for account in [bare_account(), full_account()] {
            let back = decode_account(&encode_account(&account)).expect("decodes");
            assert_eq!(back, account);
            same_decimals(&back, &account);
        }
    }

    #[test]
    fn profiles_read_back_as_written() {
        for profile in [bare_profile(), full_profile()] {
            assert_eq!(decode_profile(&encode_profile(&profile)).expect("decodes"), profile);
        }
    }

    #[test]
    fn json_values_of_older_stores_still_read() {
        for account in [bare_account(), full_account()] {
            let json = serde_json::to_vec(&account).expect("json");
            let back = decode_account(&json).expect("decodes");
            assert_eq!(back, account);
            same_decimals(&back, &account);
        }
        for profile in [bare_profile(), full_profile()] {
            let json = serde_json::to_vec(&profile).expect("json");
            assert_eq!(decode_profile(&json).expect("decodes"), profile);
        }
    }

    fn bare_record() -> Record {
        crate::ledger::test_support::payment("p1", "25.50", true)
    }

    fn full_record() -> Record {
        let mut r = crate::ledger::test_support::refund("r-ü-1", "-0.000001", false, false);
        r.kind = RecordKind::EmpayreRefund;
        // A status Empayre's refunds do not have: kept as sent, not live.
        r.status = RecordStatus::EmpayreRefund(EmpayreRefundStatus::from("returned"));
        r.account_number = None;
        r.reference = Some(String::new());
        r.parent_id = Some("pay-1".into());
        r.refund_ids = vec!["x".into(), "y".into()];
        r.posted_amount = Some(dec("10.10"));
        r.payment_method = Some("ach".into());
        r.client_key = Some("demo-client".into());
        // Before 1970 (a negative second count) and the last nanosecond of a second.
        r.received_at = DateTime::from_timestamp(-86_401, 999_999_999).expect("time");
        r.updated_at = DateTime::from_timestamp(4_102_444_800, 1).expect("time");
        r.history = vec![
            StatusChange {
                status: "pending".into(),
                at: DateTime::from_timestamp(1_700_000_000, 123).expect("time"),
                request_id: "rid-1".into(),
                origin: Some(Origin::Webhook),
            },
            StatusChange {
                status: "succeeded".into(),
                at: DateTime::from_timestamp(1_700_000_001, 0).expect("time"),
                request_id: String::new(),
                origin: None,
            },
        ];
        r.details = serde_json::json!({"return_code": "R01", "fee": "1.50", "ids": [1, 2]})
            .as_object()
            .cloned()
            .expect("object");
        r
    }

    /// `full_record()` and a journal entry as the encoder before origins (RECORD_V1, JOURNAL_V1)
    /// wrote them: bytes dumped from that binary (main at 5542502), kept here so a store written
    /// by it keeps reading whatever the encoder becomes.
    const RECORD_V1_FULL: &str = "c10e656d70617972652d726566756e6406722dc3bc2d310872657475726e6564008601035553440001024331010001057061792d310201780179000102f2070103616368010b64656d6f2d636c69656e7481c60aff93ebdc0380dcb2c81e01020770656e64696e6780c49fd50c7b057269642d310973756363656564656482c49fd50c0000012e7b2272657475726e5f636f6465223a22523031222c22666565223a22312e3530222c22696473223a5b312c325d7d";
    const JOURNAL_V1_ENTRY: &str =
        "d10780c49fd50c0507656d70617972650f656d70617972652d7061796d656e740a64656d6f3a696e763a31014108636170747572656482c41302cc3a";

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn the_first_record_and_journal_layouts_still_read_without_origins() {
        let mut record = full_record();
        let v1 = unhex(RECORD_V1_FULL);
        assert_eq!(v1[0], RECORD_V1);
        for step in &mut record.history {
            step.origin = None;
        }
        assert_eq!(decode_record(&v1).expect("V1 decodes"), record);
        assert_eq!(
            record_fields(&v1).expect("fields"),
            record_fields(&encode_record(&record)).expect("fields")
        );
        let entry = JournalEntry {
            seq: 7,
            at: DateTime::from_timestamp(1_700_000_000, 5).expect("time"),
            channel: Channel::Empayre,
            kind: RecordKind::EmpayrePayment,
            record_id: "demo:inv:1".into(),
            account_number: "A".into(),
            status: "captured".into(),
            delta: dec("-25.00"),
            balance_after: dec("75.00"),
            origin: None,
        };
        let v1 = unhex(JOURNAL_V1_ENTRY);
        assert_eq!(v1[0], JOURNAL_V1);
        assert_eq!(decode_journal(&v1).expect("V1 decodes"), entry);
        let v2 = encode_journal(&entry);
        assert_eq!(v2[0], JOURNAL_V2);
        assert_eq!(&v2[1..v2.len() - 1], &v1[1..], "V2 is V1 plus the origin");
        assert_eq!(v2.last(), Some(&0), "an absent origin is one byte");
        let mut unknown = encode_journal(&JournalEntry {
            origin: Some(Origin::Webhook),
            ..entry
        });
        let at = unknown.len() - "webhook".len();
        unknown[at..].copy_from_slice(b"webhoox");
        assert!(
            decode_journal(&unknown).is_err(),
            "an unknown origin is corrupt, not dropped"
        );
    }

    #[test]
    fn records_read_back_as_written() {
        for record in [bare_record(), full_record()] {
            let back = decode_record(&encode_record(&record)).expect("decodes");
            assert_eq!(back, record);
            assert_eq!(back.amount.serialize(), record.amount.serialize());
            let json = serde_json::to_vec(&record).expect("json");
            assert!(is_json(&json) && !is_json(&encode_record(&record)));
            assert_eq!(decode_record(&json).expect("legacy JSON decodes"), record);
        }
    }

    /// Records the binary before `RecordStatus` wrote (status name + live flag), in both
    /// layouts it could leave in a store, still read: same status, the liveness it stored, and
    /// what the current encoder makes of them reads back the same.
    #[test]
    fn records_stored_before_the_status_enum_still_read() {
        let text = crate::test_data::read_text("fixtures/store/records_v1.txt");
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let mut seen = 0;
        while let (Some(gold), Some(json)) = (lines.next(), lines.next()) {
            let fields: Vec<&str> = gold.split(' ').collect();
            let ["GOLD", kind, id, status, hex] = fields[..] else {
                panic!("not a GOLD line: {gold}");
            };
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            let json = json.strip_prefix("JSON ").expect("a JSON line");
            let old: serde_json::Value = serde_json::from_str(json).expect("json");
            let record = decode_record(&bytes).unwrap_or_else(|e| panic!("{id}: {e:?}"));
            assert_eq!((record.kind.as_str(), record.id.as_str()), (kind, id));
            assert_eq!(record.status.as_str(), status, "{id}");
            assert_eq!(
                Some(record.is_live()),
                old["live"].as_bool(),
                "{id}: liveness as stored"
            );
            let again = encode_record(&record);
            assert_eq!(decode_record(&again).expect("decodes"), record, "{id}: re-encodes");
            assert_eq!(
                record_fields(&again).ok(),
                record_fields(&bytes).ok(),
                "{id}: same fields"
            );
            let from_json = decode_record(json.as_bytes()).unwrap_or_else(|e| panic!("{id} (JSON): {e:?}"));
            assert_eq!(from_json, record, "{id}: both layouts read the same");
            assert_eq!(
                serde_json::to_value(&record).expect("json"),
                old,
                "{id}: JSON shape kept"
            );
            seen += 1;
        }
        assert_eq!(seen, 6, "every stored example was read");
    }

    #[test]
    fn a_search_reads_the_same_fields_as_the_whole_decode() {
        for record in [bare_record(), full_record()] {
            let bytes = encode_record(&record);
            let fields = record_fields(&bytes).expect("fields");
            let want = RecordFields {
                status: record.status.as_str(),
                amount: record.amount,
                currency: &record.currency,
                account_number: record.account_number.as_deref(),
                confirmation_number: record.confirmation_number.as_deref(),
                payment_method: record.payment_method.as_deref(),
                client_key: record.client_key.as_deref(),
            };
            assert_eq!(fields, want);
            assert_eq!(record_received_at(&bytes).expect("time"), record.received_at);
        }
        let bare = bare_record();
        let json = serde_json::to_vec(&bare).expect("json");
        assert!(record_fields(&json).is_err(), "JSON is read by serde, not here");
        assert_eq!(record_received_at(&json).expect("time"), bare.received_at);
        // It stops after client_key: a record cut before that fails, one cut later reads the
        // same fields as the whole record.
        let full = full_record();
        let compact = encode_record(&full);
        let whole = record_fields(&compact).expect("fields");
        let mut failed = 0;
        for cut in 0..compact.len() {
            match record_fields(&compact[..cut]) {
                Ok(fields) => assert_eq!(fields, whole, "record cut at {cut}"),
                Err(_) => failed += 1,
            }
        }
        assert!(failed > compact.len() / 3, "only {failed} cuts failed");
        assert!(record_fields(&compact[..failed - 1]).is_err() && record_fields(&compact[..failed]).is_ok());
    }

    #[test]
    fn damaged_records_are_corrupt_never_a_panic() {
        let record = encode_record(&full_record());
        for cut in 0..record.len() {
            assert!(decode_record(&record[..cut]).is_err(), "record cut at {cut}");
        }
        let mut bad_kind = record.clone();
        bad_kind[2] = b'X';
        let mut bad_live = encode_record(&bare_record());
        // version, "payment", "p1", "processed", then the live flag.
        let live_at = 1 + (1 + 7) + (1 + 2) + (1 + 9);
        assert_eq!(bad_live[live_at], 1, "layout of the bare record");
        bad_live[live_at] = 2;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown kind", bad_kind),
            ("live flag 2", bad_live),
            ("trailing byte", [&record[..], &[0][..]].concat()),
            ("an account read as a record", encode_account(&full_account())),
        ];
        for (what, bytes) in cases {
            assert!(decode_record(&bytes).is_err(), "{what}");
        }
    }

    #[test]
    fn journal_entries_read_back_as_written() {
        let entries = [
            JournalEntry {
                seq: 1,
                at: DateTime::from_timestamp(1_700_000_000, 5).expect("time"),
                channel: Channel::Orbipay,
                kind: RecordKind::Payment,
                record_id: "p1".into(),
                account_number: "A".into(),
                status: "processed".into(),
                delta: dec("25.50"),
                balance_after: dec("1025.50"),
                origin: None,
            },
            JournalEntry {
                seq: u64::MAX,
                at: DateTime::from_timestamp(-1, 999_999_999).expect("time"),
                channel: Channel::Admin,
                kind: RecordKind::EmpayreRefund,
                record_id: String::new(),
                account_number: "ACC-'ss'".into(),
                status: "succeeded".into(),
                delta: dec("-0.001"),
                balance_after: dec("-79228162514264337593543950335"),
                origin: Some(Origin::Reconcile),
            },
        ];
        for entry in entries {
            let compact = encode_journal(&entry);
            assert_eq!(decode_journal(&compact).expect("decodes"), entry);
            let json = serde_json::to_vec(&entry).expect("json");
            assert_eq!(decode_journal(&json).expect("legacy JSON decodes"), entry);
            for cut in 0..compact.len() {
                assert!(decode_journal(&compact[..cut]).is_err(), "journal entry cut at {cut}");
            }
        }
    }

    #[test]
    fn stored_events_read_back_as_written() {
        // Quotes and escapes, which JSON had to escape again inside a string.
        let body = r#"{"eventID": 7, "invoice": {"id": "inv-\"1\"", "metadata": {"n": "ü\n"}}}"#.as_bytes();
        let (text, encoding) = StoredEvent::body_from(body);
        let (binary, binary_encoding) = StoredEvent::body_from(&[0xff, 0x00, b'{']);
        let stored = StoredEvent {
            seq: 42,
            source: "demo".into(),
            event_id: Some(-5),
            event_type: Some("PaymentCaptured".into()),
            invoice_id: Some("inv-1".into()),
            status: "stored".into(),
            reason: None,
            key_id: "k1".into(),
            received_at: DateTime::from_timestamp(1_700_000_000, 999).expect("time"),
            request_id: "rid".into(),
            body_sha256: "ab".repeat(32),
            body: text,
            body_encoding: encoding,
            changes: vec![serde_json::json!({"kind": "empayre-payment", "id": "inv-1.1", "delta": "10.00"})],
            stale: vec!["invoice inv-1".into()],
        };
        let quarantined = StoredEvent {
            event_id: None,
            event_type: None,
            invoice_id: None,
            status: "quarantined".into(),
            reason: Some("not JSON".into()),
            body: binary,
            body_encoding: binary_encoding,
            changes: Vec::new(),
            stale: Vec::new(),
            ..stored.clone()
        };
        for event in [stored, quarantined] {
            let compact = encode_event(&event);
            assert_eq!(decode_event(&compact).expect("decodes"), event);
            let json = serde_json::to_vec(&event).expect("json");
            assert_eq!(decode_event(&json).expect("legacy JSON decodes"), event);
            assert!(
                compact.len() < json.len(),
                "compact {} bytes, JSON {}",
                compact.len(),
                json.len()
            );
            for cut in 0..compact.len() {
                assert!(decode_event(&compact[..cut]).is_err(), "event cut at {cut}");
            }
        }
    }

    #[test]
    fn the_compact_form_is_a_fraction_of_the_json() {
        let mut account = bare_account();
        account.account_number = "ACC-00000001".into();
        account.account_holder_name = Some("Holder 1".into());
        account.opening_balance = dec("1000000.00");
        account.minimum_payment_due = Some(dec("25.00"));
        account.payment_due_date = Some("2026-12-10".into());
        account.customer_references = vec!["C-00000001".into()];
        account.last_journal_commit = Some(1_234_567);
        let compact = encode_account(&account).len();
        let json = serde_json::to_vec(&account).expect("json").len();
        assert!(
            compact * 5 < json,
            "account: compact {compact} bytes, JSON {json} bytes"
        );
        let compact = encode_record(&bare_record()).len();
        let json = serde_json::to_vec(&bare_record()).expect("json").len();
        assert!(compact * 3 < json, "record: compact {compact} bytes, JSON {json} bytes");
    }

    #[test]
    fn damaged_values_are_corrupt_never_a_panic() {
        let account = encode_account(&full_account());
        let profile = encode_profile(&full_profile());
        // Every proper prefix is truncated somewhere.
        for cut in 0..account.len() {
            assert!(decode_account(&account[..cut]).is_err(), "account cut at {cut}");
        }
        for cut in 0..profile.len() {
            assert!(decode_profile(&profile[..cut]).is_err(), "profile cut at {cut}");
        }
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("unknown version", [&[0xA2u8][..], &account[1..]].concat()),
            ("trailing byte", [&account[..], &[0][..]].concat()),
            ("profile bytes read as an account", profile.clone()),
        ];
        // A bad presence byte: the customer_account_reference flag follows the number.
        let mut bad_flag = encode_account(&bare_account());
        let flag_at = 1 + 1 + "A-1".len();
        bad_flag[flag_at] = 7;
        cases.push(("presence byte 7", bad_flag));
        // A decimal scale beyond 28, and a mantissa beyond 96 bits.
        let encoded = encode_account(&bare_account());
        // version, "A-1", three absent names, "active", "USD", absent warning.
        let opening_at = 1 + (1 + 3) + 3 + (1 + 6) + (1 + 3) + 1;
        assert_eq!(
            &encoded[opening_at..opening_at + 4],
            &[0, 0, 0, 0],
            "layout of the bare account"
        );
        let mut bad_scale = encoded.clone();
        bad_scale[opening_at] = 29;
        cases.push(("scale 29", bad_scale));
        let mut huge = encoded[..opening_at].to_vec();
        huge.push(0);
        huge.extend_from_slice(&[0xff; 14]);
        huge.push(0x01);
        huge.extend_from_slice(&encoded[opening_at + 2..]);
        cases.push(("mantissa over 96 bits", huge));
        let mut bad_utf8 = encode_account(&bare_account());
        bad_utf8[2] = 0xff;
        cases.push(("number not UTF-8", bad_utf8));
        for (what, bytes) in cases {
            assert!(decode_account(&bytes).is_err(), "{what}");
        }
        let mut bad_status = encode_profile(&bare_profile());
        let status_at = 1 + 1 + "C-1".len() + 6;
        assert_eq!(
            bad_status[status_at],
            "active".len() as u8,
            "layout of the bare profile"
        );
        bad_status[status_at + 1] = b'X';
        assert!(decode_profile(&bad_status).is_err(), "unknown status");
        assert!(decode_profile(&account).is_err(), "account bytes read as a profile");
    }
}
