//! The Empayre use cases: what a verified webhook body becomes (A3, A4) — a stored event, and
//! for known payment and refund events a projection through the ledger — and an operator's
//! assignment of an account to an unmatched payment, which goes through the same ledger.
//!
//! The decisions run inside the store's `execute`, under its lock, so the duplicate check, the
//! projection and the event itself commit together; they are pure and may run more than once.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::event::{parse_event, Event, PaymentStatus, RefundStatus};
use super::sources::Source;
use crate::domain::account::Account;
use crate::domain::money::{format_amount, minor_to_decimal};
use crate::domain::{AccountNumber, Currency};
use crate::ledger::empayre::{
    assign_account, payment_record_id, payment_verdict, project, refund_record_id, refund_verdict, PaymentSnapshot,
    ProjectionContext, RefundSnapshot, UnmatchedReason, Verdict,
};
use crate::ledger::{Change, Channel, Origin, Record, RecordKind};
use crate::store::{Committed, Decision, Keys, Store, StoreError, StoredEvent, UnmatchedUpdate, View, Writes};

/// The answer to a verified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Stored,
    Duplicate,
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Quarantined => "quarantined",
        }
    }
}

/// What accepting one body did, for the answer, the log and metrics.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub outcome: Outcome,
    pub event_id: Option<i64>,
    pub event_type: Option<String>,
    pub unmatched: Option<UnmatchedReason>,
    pub applied: bool,
}

/// One verified request, owned: the decision may be handed to the store's writer.
pub struct Delivery {
    /// The source whose key verified the body.
    pub source: String,
    /// Where that source's events name the biller account (a JSON pointer).
    pub account_pointer: String,
    pub key_id: String,
    /// The body as stored (`StoredEvent::body_from`): text, or base64 if it is not UTF-8.
    body: (String, String),
    pub request_id: String,
    pub now: DateTime<Utc>,
}

impl Delivery {
    pub fn new(source: &Source, key_id: &str, body: &[u8], request_id: &str, now: DateTime<Utc>) -> Self {
        Self {
            source: source.name.clone(),
            account_pointer: source.account_pointer.clone(),
            key_id: key_id.to_string(),
            body: StoredEvent::body_from(body),
            request_id: request_id.to_string(),
            now,
        }
    }
}

/// What a verified body says, read without the store. It is parsed before the store's lock is
/// taken, so the decision does no JSON parsing.
pub struct Parsed {
    value: Option<Value>,
    event_id: Option<i64>,
    event_type: Option<String>,
    invoice_id: Option<String>,
    event: Result<Event, String>,
    body_sha256: String,
}

impl Parsed {
    pub fn new(body: &[u8]) -> Self {
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let event_id = value.as_ref().and_then(|v| v.get("eventID")).and_then(Value::as_i64);
        let event_type = value
            .as_ref()
            .and_then(|v| v.get("eventType"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // Read from the raw JSON so that even a quarantined body can be found by its invoice.
        let invoice_id = value
            .as_ref()
            .and_then(|v| v.pointer("/invoice/id").or_else(|| v.get("invoiceId")))
            .and_then(Value::as_str)
            .map(str::to_string);
        Self {
            event: parse_event(body).map_err(|e| e.to_string()),
            value,
            event_id,
            event_type,
            invoice_id,
            body_sha256: hex::encode(Sha256::digest(body)),
        }
    }

    /// What `decide` will read: the duplicate check, the invoice snapshot, the payment record
    /// and the account the body names.
    fn keys(&self, d: &Delivery) -> Keys {
        let record_id = self.event.as_ref().ok().and_then(|e| {
            let (invoice, payment) = (e.invoice.as_ref()?, e.payment.as_ref()?);
            Some(payment_record_id(&d.source, &invoice.id, &payment.id))
        });
        Keys {
            records: record_id.map(|r| (RecordKind::EmpayrePayment, r)).into_iter().collect(),
            accounts: self
                .value
                .as_ref()
                .and_then(|v| named_account(&d.account_pointer, v))
                .and_then(|n| AccountNumber::try_from(n).ok())
                .into_iter()
                .collect(),
            profiles: Vec::new(),
            events: self.event_id.map(|id| (d.source.clone(), id)).into_iter().collect(),
            invoices: self
                .invoice_id
                .as_ref()
                .map(|i| (d.source.clone(), i.clone()))
                .into_iter()
                .collect(),
        }
    }
}

/// Stores a verified body (and applies what it says), durably; see `decide`.
pub async fn receive(store: &Store, delivery: Delivery, parsed: Parsed) -> Result<Accepted, StoreError> {
    let keys = parsed.keys(&delivery);
    let executed = store
        .execute(keys, move |view| decide(view, &delivery, &parsed))
        .await?;
    Ok(executed.outcome)
}

/// The decision for one verified body: a duplicate of a stored event changes nothing; anything
/// else is stored, quarantined when unusable, and a payment or refund event is projected into
/// the ledger.
fn decide(view: &dyn View, d: &Delivery, parsed: &Parsed) -> Result<Decision<Accepted>, StoreError> {
    let Parsed {
        value,
        event_id,
        event_type,
        invoice_id,
        event,
        body_sha256,
    } = parsed;
    let (event_id, event_type) = (*event_id, event_type.clone());
    if let Some(id) = event_id {
        if view.event_seen(&d.source, id)? {
            return Ok(Decision::Confirm(Accepted {
                outcome: Outcome::Duplicate,
                event_id,
                event_type,
                unmatched: None,
                applied: false,
            }));
        }
    }
    let (body, body_encoding) = d.body.clone();
    let mut stored = StoredEvent {
        // Assigned by the store at commit.
        seq: 0,
        source: d.source.clone(),
        event_id,
        event_type: event_type.clone(),
        invoice_id: invoice_id.clone(),
        status: Outcome::Stored.as_str().into(),
        reason: None,
        key_id: d.key_id.clone(),
        received_at: d.now,
        request_id: d.request_id.clone(),
        body_sha256: body_sha256.clone(),
        body,
        body_encoding,
        changes: Vec::new(),
        stale: Vec::new(),
    };
    let mut writes = Writes::new(Channel::Empayre, d.now);
    writes.origin = Some(Origin::Webhook);
    let event = match event {
        Ok(event) if event.is_known() => event,
        Ok(_) => {
            return Ok(quarantine(
                writes,
                stored,
                "unknown eventType or topic, or a payload the type requires is missing",
            ))
        }
        Err(e) => return Ok(quarantine(writes, stored, &format!("not a well-formed Event: {e}"))),
    };
    writes.invoice = newer_invoice(view, d, event, &mut stored)?;
    let mut accepted = Accepted {
        outcome: Outcome::Stored,
        event_id,
        event_type,
        unmatched: None,
        applied: false,
    };
    let Some(snapshot) = payment_snapshot(d, event) else {
        // Invoice, interaction and customer events are kept, not projected into money.
        writes.event = Some(stored);
        return Ok(Decision::commit(writes, accepted));
    };
    let refund = refund_snapshot(event, &snapshot);
    let record_id = payment_record_id(&snapshot.source, &snapshot.invoice_id, &snapshot.payment_id);
    let existing = view.record(RecordKind::EmpayrePayment, &record_id)?;
    let projected = project_payment(
        view,
        &Projecting {
            account_pointer: &d.account_pointer,
            named_in: value.as_ref(),
            payment: &snapshot,
            refund: refund.as_ref(),
            request_id: &d.request_id,
            now: d.now,
            origin: Origin::Webhook,
        },
        existing,
    )?;
    stored.stale = projected.stale.iter().map(|s| s.to_string()).collect();
    accepted.unmatched = projected.unmatched;
    let Some(change) = projected.change else {
        writes.event = Some(stored);
        return Ok(Decision::commit(writes, accepted));
    };
    writes.unmatched = projected.unmatched_update;
    stored.changes = changes_of(&change);
    writes.event = Some(stored);
    writes.change = Some(change);
    accepted.applied = true;
    Ok(Decision::commit(writes, accepted))
}

/// One projection of a payment (and refund) snapshot, by whichever path.
struct Projecting<'a> {
    account_pointer: &'a str,
    /// The JSON the source's `account_pointer` looks into: the event, or what a reconciliation
    /// built in its shape. None: there is nothing to look in (a reconciled refund).
    named_in: Option<&'a Value>,
    payment: &'a PaymentSnapshot,
    refund: Option<&'a RefundSnapshot>,
    request_id: &'a str,
    now: DateTime<Utc>,
    origin: Origin,
}

struct Projected {
    change: Option<Change>,
    unmatched: Option<UnmatchedReason>,
    stale: Vec<&'static str>,
    unmatched_update: Option<UnmatchedUpdate>,
}

/// The step the webhook and the reconciliation share: the snapshots against the ledger's records
/// (`existing`, read by the caller, and its refunds), the account at the source's pointer for a
/// payment that has none, and the unmatched list's update.
fn project_payment(view: &dyn View, p: &Projecting, existing: Option<Record>) -> Result<Projected, StoreError> {
    let record_id = payment_record_id(&p.payment.source, &p.payment.invoice_id, &p.payment.payment_id);
    let refunds = match &existing {
        Some(payment) => view.refunds_of(payment)?,
        None => Vec::new(),
    };
    let needs_account = existing.as_ref().is_none_or(|payment| payment.account_number.is_none());
    let account = match (needs_account, p.named_in) {
        (false, _) => Err(UnmatchedReason::NoAccount),
        (true, Some(named_in)) => find_account(view, p.account_pointer, Some(named_in), &p.payment.currency)?,
        // Nothing to look in: an unmatched payment keeps the reason it has.
        (true, None) => Err(existing
            .as_ref()
            .and_then(|e| e.details.get("unmatched_reason"))
            .and_then(Value::as_str)
            .and_then(UnmatchedReason::parse)
            .unwrap_or(UnmatchedReason::NoAccount)),
    };
    let projection = project(
        p.payment,
        p.refund,
        &ProjectionContext {
            existing_payment: existing.as_ref(),
            existing_refunds: &refunds,
            account: account.as_ref().map_err(|r| *r),
            request_id: p.request_id,
            now: p.now,
            origin: p.origin,
        },
    );
    let unmatched_update = projection
        .change
        .as_ref()
        .and_then(|change| match projection.unmatched {
            Some(reason) => Some(UnmatchedUpdate::Put(
                record_id.clone(),
                unmatched_item(&record_id, p.payment, change, reason),
            )),
            None if existing.as_ref().is_some_and(|e| e.account_number.is_none()) => {
                Some(UnmatchedUpdate::Clear(record_id.clone()))
            }
            None => None,
        });
    Ok(Projected {
        change: projection.change,
        unmatched: projection.unmatched,
        stale: projection.stale,
        unmatched_update,
    })
}

/// What the unmatched list shows of a payment recorded without an account.
fn unmatched_item(record_id: &str, snapshot: &PaymentSnapshot, change: &Change, reason: UnmatchedReason) -> Value {
    let exp = change.payment.currency.exponent().unwrap_or(0);
    json!({
        "key": record_id,
        "source": snapshot.source,
        "invoice_id": snapshot.invoice_id,
        "payment_id": snapshot.payment_id,
        "status": change.payment.status,
        "amount": format_amount(change.payment.amount, exp),
        "currency": change.payment.currency,
        "reason": reason.as_str(),
        "received_at": crate::http::rfc3339(change.payment.received_at),
    })
}

/// What a stored event says it changed: `{kind, id, status}` per record and
/// `{account_number, delta}` when a balance moved.
fn changes_of(change: &Change) -> Vec<Value> {
    let p = &change.payment;
    let mut changes = vec![json!({"kind": p.kind.as_str(), "id": p.id, "status": p.status})];
    if let Some(r) = &change.refund {
        changes.push(json!({"kind": r.kind.as_str(), "id": r.id, "status": r.status}));
    }
    if !change.delta.is_zero() {
        changes.push(json!({"account_number": p.account_number, "delta": change.delta.to_string()}));
    }
    changes
}

fn quarantine(mut writes: Writes, mut stored: StoredEvent, reason: &str) -> Decision<Accepted> {
    stored.status = Outcome::Quarantined.as_str().into();
    stored.reason = Some(reason.chars().take(300).collect());
    let accepted = Accepted {
        outcome: Outcome::Quarantined,
        event_id: stored.event_id,
        event_type: stored.event_type.clone(),
        unmatched: None,
        applied: false,
    };
    writes.event = Some(stored);
    Decision::commit(writes, accepted)
}

/// The invoice snapshot to keep (status, amount) when this event's is the newest for its
/// invoice; an older one is stale and noted on the stored event.
fn newer_invoice(
    view: &dyn View,
    d: &Delivery,
    event: &Event,
    stored: &mut StoredEvent,
) -> Result<Option<(String, String, Value)>, StoreError> {
    let Some(invoice) = &event.invoice else {
        return Ok(None);
    };
    let recorded = view.invoice(&d.source, &invoice.id)?;
    let last = recorded
        .as_ref()
        .and_then(|s| s["last_event_id"].as_i64())
        .unwrap_or(i64::MIN);
    if event.event_id < last {
        stored.stale.push("invoice".into());
        return Ok(None);
    }
    let snapshot = json!({
        "last_event_id": event.event_id,
        "status": invoice.status.as_ref().map(|s| s.as_str().to_string()),
        "amount_minor": invoice.amount,
        "currency": invoice.currency,
        "occured_at": event.occured_at,
    });
    Ok(Some((d.source.clone(), invoice.id.clone(), snapshot)))
}

/// The payment of a payment or refund event, in decimal units of its currency. None for events
/// without a payment object, or a payment without amount, currency or status (kept, not
/// projected: there is nothing certain to credit).
fn payment_snapshot(d: &Delivery, event: &Event) -> Option<PaymentSnapshot> {
    let invoice = event.invoice.as_ref()?;
    let payment = event.payment.as_ref()?;
    let minor = payment.effective_amount()?;
    // A code that is not ISO 4217's shape is as good as none: nothing certain to credit.
    let currency = Currency::parse(payment.currency.as_deref()?).ok()?;
    let status = payment.status.as_ref()?;
    Some(PaymentSnapshot {
        source: d.source.clone(),
        invoice_id: invoice.id.clone(),
        payment_id: payment.id.clone(),
        event_id: event.event_id,
        state_at: occured_at(event),
        status: status.clone(),
        // ISO 4217 exponent of the currency; an unknown code cannot match any account, and
        // exponent 0 keeps its amount integral rather than inventing decimals.
        amount: minor_to_decimal(minor, currency.exponent().unwrap_or(0)),
        amount_minor: minor,
        currency,
    })
}

/// The event's `occuredAt` as a time (RFC 3339, 0–9 fraction digits); None when unreadable.
fn occured_at(event: &Event) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&event.occured_at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn refund_snapshot(event: &Event, payment: &PaymentSnapshot) -> Option<RefundSnapshot> {
    let refund = event.refund.as_ref()?;
    let status = refund.status.as_ref()?;
    let minor = refund.amount?;
    let currency = match refund.currency.as_deref() {
        Some(code) => Currency::parse(code).ok()?,
        None => payment.currency.clone(),
    };
    Some(RefundSnapshot {
        refund_id: refund.id.clone(),
        event_id: event.event_id,
        state_at: occured_at(event),
        status: status.clone(),
        amount: minor_to_decimal(minor, currency.exponent().unwrap_or(0)),
        amount_minor: minor,
        currency,
    })
}

/// The account named at the source's `account_pointer`, checked against the payment currency.
fn find_account(
    view: &dyn View,
    account_pointer: &str,
    value: Option<&Value>,
    currency: &Currency,
) -> Result<Result<Account, UnmatchedReason>, StoreError> {
    let Some(number) = value.and_then(|v| named_account(account_pointer, v)) else {
        return Ok(Err(UnmatchedReason::NoAccount));
    };
    // A name that is not an account number's shape names no account there is.
    let Ok(number) = AccountNumber::try_from(number) else {
        return Ok(Err(UnmatchedReason::UnknownAccount));
    };
    Ok(match view.account(&number)? {
        None => Err(UnmatchedReason::UnknownAccount),
        Some(a) if a.currency != *currency => Err(UnmatchedReason::CurrencyMismatch),
        Some(a) => Ok(a),
    })
}

/// The account number at the source's `account_pointer`, if the body names one.
fn named_account(account_pointer: &str, value: &Value) -> Option<String> {
    value.pointer(account_pointer).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Why an operator's assignment was refused.
#[derive(Debug)]
pub enum AssignError {
    /// No Empayre payment without an account has this key.
    NotUnmatched,
    /// No account has this number.
    UnknownAccount,
    /// The ledger refused: another currency, or the payment has an account already.
    Refused(&'static str),
    Store(StoreError),
}

impl From<StoreError> for AssignError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What an assignment changed, once it is durable.
#[derive(Debug)]
pub struct Assigned {
    pub change: Change,
    pub committed: Committed,
}

/// What an assignment reads: the unmatched payment (its refunds are implied) and the account.
fn assignment_keys(key: &str, account_number: &AccountNumber) -> Keys {
    Keys {
        records: vec![(RecordKind::EmpayrePayment, key.to_string())],
        accounts: vec![account_number.clone()],
        ..Keys::default()
    }
}

/// The ledger's decision on an assignment, read under the store's lock: the change to the
/// payment, the account it pays and the refunds that follow it.
struct Plan {
    change: Change,
    account: Account,
    refunds: Vec<Record>,
}

fn plan_assignment(
    view: &dyn View,
    key: &str,
    account_number: &AccountNumber,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<Result<Plan, AssignError>, StoreError> {
    let Some(payment) = view
        .record(RecordKind::EmpayrePayment, key)?
        .filter(|p| p.account_number.is_none())
    else {
        return Ok(Err(AssignError::NotUnmatched));
    };
    let Some(account) = view.account(account_number)? else {
        return Ok(Err(AssignError::UnknownAccount));
    };
    let refunds = view.refunds_of(&payment)?;
    Ok(match assign_account(&payment, &refunds, &account, request_id, now) {
        Ok(change) => Ok(Plan {
            change,
            account,
            refunds,
        }),
        Err(why) => Err(AssignError::Refused(why)),
    })
}

/// What [`assign`] would do now, without doing it (the console's confirmation step): the same
/// decision, under the same lock, and nothing written.
pub struct AssignPreview {
    pub change: Change,
    /// The account as it is now (its balance before the assignment).
    pub account: Account,
}

pub async fn preview_assign(
    store: &Store,
    key: String,
    account_number: AccountNumber,
    request_id: String,
    now: DateTime<Utc>,
) -> Result<AssignPreview, AssignError> {
    let keys = assignment_keys(&key, &account_number);
    let executed = store
        .execute(keys, move |view| {
            let outcome = plan_assignment(view, &key, &account_number, &request_id, now)?.map(|plan| AssignPreview {
                change: plan.change,
                account: plan.account,
            });
            Ok(Decision::Refuse(outcome))
        })
        .await?;
    executed.outcome
}

/// Assigns an account to an unmatched Empayre payment (`key` is its record id): it takes effect
/// on that account through the ledger like any posting. Its refunds follow it to the account,
/// the journal entry is the operator's (`Channel::Admin`), durable before the answer.
pub async fn assign(
    store: &Store,
    key: String,
    account_number: AccountNumber,
    request_id: String,
    now: DateTime<Utc>,
) -> Result<Assigned, AssignError> {
    let keys = assignment_keys(&key, &account_number);
    let executed = store
        .execute(keys, move |view| {
            let Plan {
                change,
                account,
                refunds,
            } = match plan_assignment(view, &key, &account_number, &request_id, now)? {
                Ok(plan) => plan,
                Err(refused) => return Ok(Decision::Refuse(Err(refused))),
            };
            let mut writes = Writes::new(Channel::Admin, now);
            writes.records = refunds
                .into_iter()
                .map(|mut refund| {
                    refund.account_number = Some(account.account_number.clone());
                    refund
                })
                .collect();
            writes.unmatched = Some(UnmatchedUpdate::Clear(key.clone()));
            writes.change = Some(change);
            Ok(Decision::commit(writes, Ok(())))
        })
        .await?;
    executed.outcome?;
    let mut committed = executed.committed.unwrap_or_default();
    let change = committed
        .change
        .take()
        .ok_or_else(|| StoreError::Corrupt("an assignment committed without its payment".into()))?;
    Ok(Assigned { change, committed })
}

/// A payment as the platform's API reports it (`searchPayments`), for a reconciliation.
#[derive(Debug, Clone)]
pub struct PlatformPayment {
    pub invoice_id: String,
    pub payment_id: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: Currency,
    /// `statusChangedAt`, when the API gives it.
    pub state_at: Option<DateTime<Utc>>,
    /// What the source's `account_pointer` looks into, in the shape of a webhook body
    /// (`{"invoice": ..., "payment": ...}`): built from `getInvoiceByID` for a payment the
    /// ledger does not know, None for one it knows (its account is settled already).
    pub named_in: Option<Value>,
}

/// A refund as the platform's API reports it (`searchRefunds`).
#[derive(Debug, Clone)]
pub struct PlatformRefund {
    pub invoice_id: String,
    pub payment_id: String,
    pub refund_id: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// What a reconciliation did with one payment or refund.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciled {
    /// Applied through the projection (in a dry run: would be). `unmatched` when the payment is
    /// recorded without an account (nothing credited).
    Applied {
        unmatched: Option<UnmatchedReason>,
        delta: rust_decimal::Decimal,
    },
    /// The ledger holds this state, or a later one.
    AlreadyApplied,
    /// The ledger and the platform disagree in a way no time orders.
    Conflict(String),
    /// A refund of a payment the ledger does not have.
    PaymentUnknown,
}

/// Who is reconciling: the source, and the run's request id and time.
#[derive(Debug, Clone)]
pub struct Reconciling {
    pub source: String,
    pub account_pointer: String,
    pub request_id: String,
    pub now: DateTime<Utc>,
    /// Decide, commit nothing.
    pub dry_run: bool,
}

/// The decision's outcome, as a reconciliation counts it, from a projection.
fn reconciled(r: &Reconciling, projected: Projected) -> Decision<Reconciled> {
    let Some(change) = projected.change else {
        return Decision::Confirm(Reconciled::AlreadyApplied);
    };
    let outcome = Reconciled::Applied {
        unmatched: projected.unmatched,
        delta: change.delta,
    };
    if r.dry_run {
        return Decision::Refuse(outcome);
    }
    let mut writes = Writes::new(Channel::Empayre, r.now);
    writes.origin = Some(Origin::Reconcile);
    writes.unmatched = projected.unmatched_update;
    writes.change = Some(change);
    Decision::commit(writes, outcome)
}

/// Applies a payment state the platform reports and the ledger has not seen, through the same
/// projection as a webhook (`Origin::Reconcile`), durably. The verdict is taken under the
/// store's lock, so a webhook racing it is either seen or sees it.
pub async fn reconcile_payment(store: &Store, r: Reconciling, p: PlatformPayment) -> Result<Reconciled, StoreError> {
    let record_id = payment_record_id(&r.source, &p.invoice_id, &p.payment_id);
    let keys = Keys {
        records: vec![(RecordKind::EmpayrePayment, record_id.clone())],
        accounts: p
            .named_in
            .as_ref()
            .and_then(|v| named_account(&r.account_pointer, v))
            .and_then(|n| AccountNumber::try_from(n).ok())
            .into_iter()
            .collect(),
        ..Keys::default()
    };
    let executed = store
        .execute(keys, move |view| {
            let existing = view.record(RecordKind::EmpayrePayment, &record_id)?;
            match payment_verdict(existing.as_ref(), &p.status, p.state_at) {
                Verdict::Apply => {}
                Verdict::AlreadyApplied => return Ok(Decision::Confirm(Reconciled::AlreadyApplied)),
                Verdict::Conflict(why) => return Ok(Decision::Refuse(Reconciled::Conflict(why))),
            }
            // A payment the ledger knows keeps the amount its webhook carried (`changedAmount`
            // is not in the search answer).
            let (amount_minor, currency) = match &existing {
                Some(record) => (
                    record
                        .details
                        .get("amount_minor")
                        .and_then(Value::as_i64)
                        .unwrap_or(p.amount_minor),
                    record.currency.clone(),
                ),
                None => (p.amount_minor, p.currency.clone()),
            };
            let snapshot = PaymentSnapshot {
                source: r.source.clone(),
                invoice_id: p.invoice_id.clone(),
                payment_id: p.payment_id.clone(),
                event_id: 0,
                state_at: p.state_at,
                status: PaymentStatus::from(p.status.as_str()),
                amount: minor_to_decimal(amount_minor, currency.exponent().unwrap_or(0)),
                amount_minor,
                currency,
            };
            let projecting = Projecting {
                account_pointer: &r.account_pointer,
                named_in: p.named_in.as_ref(),
                payment: &snapshot,
                refund: None,
                request_id: &r.request_id,
                now: r.now,
                origin: Origin::Reconcile,
            };
            Ok(reconciled(&r, project_payment(view, &projecting, existing)?))
        })
        .await?;
    Ok(executed.outcome)
}

/// Applies a refund state the platform reports and the ledger has not seen, durably.
pub async fn reconcile_refund(store: &Store, r: Reconciling, refund: PlatformRefund) -> Result<Reconciled, StoreError> {
    let payment_id = payment_record_id(&r.source, &refund.invoice_id, &refund.payment_id);
    let keys = Keys {
        records: vec![(RecordKind::EmpayrePayment, payment_id.clone())],
        ..Keys::default()
    };
    let executed = store
        .execute(keys, move |view| {
            let Some(payment) = view.record(RecordKind::EmpayrePayment, &payment_id)? else {
                return Ok(Decision::Refuse(Reconciled::PaymentUnknown));
            };
            let refund_id = refund_record_id(&payment_id, &refund.refund_id);
            let existing = view.refunds_of(&payment)?.into_iter().find(|x| x.id == refund_id);
            match refund_verdict(existing.as_ref(), &refund.status) {
                Verdict::Apply => {}
                Verdict::AlreadyApplied => return Ok(Decision::Confirm(Reconciled::AlreadyApplied)),
                Verdict::Conflict(why) => return Ok(Decision::Refuse(Reconciled::Conflict(why))),
            }
            // The payment as the ledger holds it: the refund moves, the payment does not.
            let snapshot = PaymentSnapshot {
                source: r.source.clone(),
                invoice_id: refund.invoice_id.clone(),
                payment_id: refund.payment_id.clone(),
                event_id: 0,
                state_at: None,
                status: PaymentStatus::from(payment.status.as_str()),
                amount: payment.amount,
                amount_minor: payment
                    .details
                    .get("amount_minor")
                    .and_then(Value::as_i64)
                    .unwrap_or_default(),
                currency: payment.currency.clone(),
            };
            let refund_snapshot = RefundSnapshot {
                refund_id: refund.refund_id.clone(),
                event_id: 0,
                state_at: None,
                status: RefundStatus::from(refund.status.as_str()),
                amount: minor_to_decimal(refund.amount_minor, refund.currency.exponent().unwrap_or(0)),
                amount_minor: refund.amount_minor,
                currency: refund.currency.clone(),
            };
            let projecting = Projecting {
                account_pointer: &r.account_pointer,
                named_in: None,
                payment: &snapshot,
                refund: Some(&refund_snapshot),
                request_id: &r.request_id,
                now: r.now,
                origin: Origin::Reconcile,
            };
            Ok(reconciled(&r, project_payment(view, &projecting, Some(payment))?))
        })
        .await?;
    Ok(executed.outcome)
}
