//! What a verified webhook body becomes (A3, A4): a stored event, and for known payment and
//! refund events a projection through the ledger. Runs as the single writer, so the duplicate
//! check, the projection and the event itself commit together.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::event::{parse_event, Event, PaymentStatus, RefundStatus};
use super::sources::Source;
use crate::domain::account::Account;
use crate::domain::money::{currency_exponent, format_amount, minor_to_decimal};
use crate::ledger::empayre::{project, PaymentSnapshot, ProjectionContext, RefundSnapshot, UnmatchedReason};
use crate::ledger::{Channel, RecordKind};
use crate::store::{StoreError, StoredEvent, WarmKey, Writer};

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

pub struct Delivery<'a> {
    pub source: &'a Source,
    pub key_id: &'a str,
    pub body: &'a [u8],
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

/// What a verified body says, read without the store. It is parsed before the writer lock is
/// taken, so the single writer section does no JSON parsing.
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

    /// Reads ahead, outside the writer lock, what `accept` will read (see `Store::warm`).
    pub fn warm(&self, store: &crate::store::Store, source: &Source) {
        let record_id = self.event.as_ref().ok().and_then(|e| {
            let (invoice, payment) = (e.invoice.as_ref()?, e.payment.as_ref()?);
            Some(crate::ledger::empayre::payment_record_id(
                &source.name,
                &invoice.id,
                &payment.id,
            ))
        });
        let account = self.value.as_ref().and_then(|v| named_account(source, v));
        let mut keys = Vec::with_capacity(4);
        keys.extend(self.event_id.map(|id| WarmKey::EventId(&source.name, id)));
        keys.extend(self.invoice_id.as_deref().map(|i| WarmKey::Invoice(&source.name, i)));
        keys.extend(
            record_id
                .as_deref()
                .map(|r| WarmKey::Record(RecordKind::EmpayrePayment, r)),
        );
        keys.extend(account.as_deref().map(WarmKey::Account));
        store.warm(&keys);
    }
}

pub fn accept(w: &mut Writer, d: &Delivery, parsed: Parsed) -> Result<Accepted, StoreError> {
    let Parsed {
        value,
        event_id,
        event_type,
        invoice_id,
        event,
        body_sha256,
    } = parsed;
    if let Some(id) = event_id {
        if w.event_seen(&d.source.name, id)? {
            return Ok(Accepted {
                outcome: Outcome::Duplicate,
                event_id,
                event_type,
                unmatched: None,
                applied: false,
            });
        }
    }
    let (body, body_encoding) = StoredEvent::body_from(d.body);
    let mut stored = StoredEvent {
        seq: w.next_event_seq()?,
        source: d.source.name.clone(),
        event_id,
        event_type: event_type.clone(),
        invoice_id,
        status: Outcome::Stored.as_str().into(),
        reason: None,
        key_id: d.key_id.to_string(),
        received_at: d.now,
        request_id: d.request_id.to_string(),
        body_sha256,
        body,
        body_encoding,
        changes: Vec::new(),
        stale: Vec::new(),
    };
    let event = match event {
        Ok(event) if event.is_known() => event,
        Ok(_) => {
            return quarantine(
                w,
                stored,
                "unknown eventType or topic, or a payload the type requires is missing",
            )
        }
        Err(e) => return quarantine(w, stored, &format!("not a well-formed Event: {e}")),
    };
    update_invoice(w, d, &event, &mut stored)?;
    let mut accepted = Accepted {
        outcome: Outcome::Stored,
        event_id,
        event_type,
        unmatched: None,
        applied: false,
    };
    let Some(snapshot) = payment_snapshot(d, &event) else {
        // Invoice, interaction and customer events are kept, not projected into money.
        w.stage_event(&stored)?;
        w.commit_staged()?;
        return Ok(accepted);
    };
    let refund = refund_snapshot(&event, &snapshot);
    let record_id =
        crate::ledger::empayre::payment_record_id(&snapshot.source, &snapshot.invoice_id, &snapshot.payment_id);
    let existing = w.record(RecordKind::EmpayrePayment, &record_id)?;
    let refunds = match &existing {
        Some(p) => w.refunds_of(p)?,
        None => Vec::new(),
    };
    let needs_account = existing.as_ref().is_none_or(|p| p.account_number.is_none());
    let account = if needs_account {
        find_account(w, d.source, value.as_ref(), &snapshot.currency)?
    } else {
        Err(UnmatchedReason::NoAccount)
    };
    let projection = project(
        &snapshot,
        refund.as_ref(),
        &ProjectionContext {
            existing_payment: existing.as_ref(),
            existing_refunds: &refunds,
            account: account.as_ref().map_err(|r| *r),
            request_id: d.request_id,
            now: d.now,
        },
    );
    stored.stale = projection.stale.iter().map(|s| s.to_string()).collect();
    accepted.unmatched = projection.unmatched;
    let Some(change) = projection.change else {
        w.stage_event(&stored)?;
        w.commit_staged()?;
        return Ok(accepted);
    };
    match projection.unmatched {
        Some(reason) => {
            let exp = currency_exponent(&change.payment.currency).unwrap_or(0);
            w.stage_unmatched(
                &record_id,
                &json!({
                    "key": record_id,
                    "source": snapshot.source,
                    "invoice_id": snapshot.invoice_id,
                    "payment_id": snapshot.payment_id,
                    "status": change.payment.status,
                    "amount": format_amount(change.payment.amount, exp),
                    "currency": change.payment.currency,
                    "reason": reason.as_str(),
                    "received_at": crate::http::rfc3339(change.payment.received_at),
                }),
            )?;
        }
        None if existing.as_ref().is_some_and(|p| p.account_number.is_none()) => w.stage_matched(&record_id),
        None => {}
    }
    stored
        .changes
        .push(json!({"kind": change.payment.kind.as_str(), "id": change.payment.id, "status": change.payment.status}));
    if let Some(r) = &change.refund {
        stored
            .changes
            .push(json!({"kind": r.kind.as_str(), "id": r.id, "status": r.status}));
    }
    if !change.delta.is_zero() {
        stored
            .changes
            .push(json!({"account_number": change.payment.account_number, "delta": change.delta.to_string()}));
    }
    w.stage_event(&stored)?;
    w.apply(&change, Channel::Empayre, d.now)?;
    accepted.applied = true;
    Ok(accepted)
}

fn quarantine(w: &mut Writer, mut stored: StoredEvent, reason: &str) -> Result<Accepted, StoreError> {
    stored.status = Outcome::Quarantined.as_str().into();
    stored.reason = Some(reason.chars().take(300).collect());
    w.stage_event(&stored)?;
    w.commit_staged()?;
    Ok(Accepted {
        outcome: Outcome::Quarantined,
        event_id: stored.event_id,
        event_type: stored.event_type,
        unmatched: None,
        applied: false,
    })
}

/// Keeps the newest invoice snapshot (status, amount) per invoice; older ones are stale.
fn update_invoice(w: &mut Writer, d: &Delivery, event: &Event, stored: &mut StoredEvent) -> Result<(), StoreError> {
    let Some(invoice) = &event.invoice else {
        return Ok(());
    };
    let recorded = w.invoice_snapshot(&d.source.name, &invoice.id)?;
    let last = recorded
        .as_ref()
        .and_then(|s| s["last_event_id"].as_i64())
        .unwrap_or(i64::MIN);
    if event.event_id < last {
        stored.stale.push("invoice".into());
        return Ok(());
    }
    let snapshot = json!({
        "last_event_id": event.event_id,
        "status": invoice.status.as_ref().map(|s| s.as_str().to_string()),
        "amount_minor": invoice.amount,
        "currency": invoice.currency,
        "occured_at": event.occured_at,
    });
    w.stage_invoice_snapshot(&d.source.name, &invoice.id, &snapshot)
}

/// The payment of a payment or refund event, in decimal units of its currency. None for events
/// without a payment object, or a payment without amount, currency or status (kept, not
/// projected: there is nothing certain to credit).
fn payment_snapshot(d: &Delivery, event: &Event) -> Option<PaymentSnapshot> {
    let invoice = event.invoice.as_ref()?;
    let payment = event.payment.as_ref()?;
    let minor = payment.effective_amount()?;
    let currency = payment.currency.clone()?;
    let status = payment.status.as_ref()?;
    Some(PaymentSnapshot {
        source: d.source.name.clone(),
        invoice_id: invoice.id.clone(),
        payment_id: payment.id.clone(),
        event_id: event.event_id,
        status: status.as_str().to_string(),
        live: *status == PaymentStatus::Captured,
        // ISO 4217 exponent of the currency; an unknown code cannot match any account, and
        // exponent 0 keeps its amount integral rather than inventing decimals.
        amount: minor_to_decimal(minor, currency_exponent(&currency).unwrap_or(0)),
        amount_minor: minor,
        currency,
    })
}

fn refund_snapshot(event: &Event, payment: &PaymentSnapshot) -> Option<RefundSnapshot> {
    let refund = event.refund.as_ref()?;
    let status = refund.status.as_ref()?;
    let minor = refund.amount?;
    let currency = refund.currency.clone().unwrap_or_else(|| payment.currency.clone());
    Some(RefundSnapshot {
        refund_id: refund.id.clone(),
        event_id: event.event_id,
        status: status.as_str().to_string(),
        live: *status == RefundStatus::Succeeded,
        amount: minor_to_decimal(minor, currency_exponent(&currency).unwrap_or(0)),
        amount_minor: minor,
        currency,
    })
}

/// The account named at the source's `account_pointer`, checked against the payment currency.
fn find_account(
    w: &Writer,
    source: &Source,
    value: Option<&Value>,
    currency: &str,
) -> Result<Result<Account, UnmatchedReason>, StoreError> {
    let Some(number) = value.and_then(|v| named_account(source, v)) else {
        return Ok(Err(UnmatchedReason::NoAccount));
    };
    Ok(match w.account(&number)? {
        None => Err(UnmatchedReason::UnknownAccount),
        Some(a) if a.currency != currency => Err(UnmatchedReason::CurrencyMismatch),
        Some(a) => Ok(a),
    })
}

/// The account number at the source's `account_pointer`, if the body names one.
fn named_account(source: &Source, value: &Value) -> Option<String> {
    value.pointer(&source.account_pointer).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}
