//! Empayre projections (`empayre-webhooks.md` A4): payment and refund snapshots become records
//! of the same ledger as Orbipay, so credits, journal and invariant are shared.
//!
//! Snapshots carry the platform's state at the time of the event. Each record remembers the
//! highest `eventID` applied to it; a lower one for the same entity is stale and changes nothing
//! (B5.8). The rule is per entity: a stale payment snapshot does not stop a newer refund in the
//! same event.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{group_effect, Change, Record, RecordKind, StatusChange};
use crate::domain::account::Account;

/// Why an Empayre payment has no account (the `reason` of the unmatched list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmatchedReason {
    /// The source's `account_pointer` finds nothing in the event.
    NoAccount,
    /// It names an account the biller does not have.
    UnknownAccount,
    /// The payment's currency differs from the account's.
    CurrencyMismatch,
}

impl UnmatchedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoAccount => "no_account",
            Self::UnknownAccount => "unknown_account",
            Self::CurrencyMismatch => "currency_mismatch",
        }
    }
}

/// A payment as one event shows it, amounts already in decimal units of `currency`.
#[derive(Debug, Clone)]
pub struct PaymentSnapshot {
    pub source: String,
    pub invoice_id: String,
    pub payment_id: String,
    pub event_id: i64,
    pub status: String,
    /// Captured: the platform owes the money, so the account is credited.
    pub live: bool,
    pub amount: Decimal,
    pub amount_minor: i64,
    pub currency: String,
}

/// A refund as one event shows it.
#[derive(Debug, Clone)]
pub struct RefundSnapshot {
    pub refund_id: String,
    pub event_id: i64,
    pub status: String,
    /// Succeeded: the money went back to the payer, so the credit is reduced.
    pub live: bool,
    pub amount: Decimal,
    pub amount_minor: i64,
    pub currency: String,
}

pub fn payment_record_id(source: &str, invoice_id: &str, payment_id: &str) -> String {
    format!("{source}:{invoice_id}:{payment_id}")
}

pub fn refund_record_id(payment_record_id: &str, refund_id: &str) -> String {
    format!("{payment_record_id}:{refund_id}")
}

/// What the store read for one event's payment (and refund).
pub struct ProjectionContext<'a> {
    pub existing_payment: Option<&'a Record>,
    pub existing_refunds: &'a [Record],
    /// The account for a payment that has none yet: found, or why not.
    pub account: Result<&'a Account, UnmatchedReason>,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

/// The result of projecting one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// None when every snapshot was stale (nothing to write).
    pub change: Option<Change>,
    /// Entities whose snapshot was older than what is recorded.
    pub stale: Vec<&'static str>,
    /// Set when the payment is recorded without an account.
    pub unmatched: Option<UnmatchedReason>,
}

fn last_event_id(record: &Record) -> i64 {
    record
        .details
        .get("last_event_id")
        .and_then(Value::as_i64)
        .unwrap_or(i64::MIN)
}

/// Projects a payment snapshot and, for refund events, a refund snapshot.
pub fn project(payment: &PaymentSnapshot, refund: Option<&RefundSnapshot>, ctx: &ProjectionContext) -> Projection {
    let mut stale = Vec::new();
    let payment_id = payment_record_id(&payment.source, &payment.invoice_id, &payment.payment_id);
    let step = |status: &str| StatusChange {
        status: status.to_string(),
        at: ctx.now,
        request_id: ctx.request_id.to_string(),
    };

    // The payment record after this event.
    let mut payment_after = match ctx.existing_payment {
        Some(existing) if payment.event_id < last_event_id(existing) => {
            stale.push("payment");
            existing.clone()
        }
        Some(existing) => {
            let mut r = existing.clone();
            if r.status != payment.status {
                r.history.push(step(&payment.status));
            }
            r.status = payment.status.clone();
            r.live = payment.live;
            r.amount = payment.amount;
            r.currency = payment.currency.clone();
            r.updated_at = ctx.now;
            r.details.insert("last_event_id".into(), json!(payment.event_id));
            r.details.insert("amount_minor".into(), json!(payment.amount_minor));
            r
        }
        None => Record {
            kind: RecordKind::EmpayrePayment,
            id: payment_id.clone(),
            status: payment.status.clone(),
            live: payment.live,
            amount: payment.amount,
            currency: payment.currency.clone(),
            account_number: None,
            confirmation_number: None,
            reference: None,
            parent_id: None,
            refund_ids: Vec::new(),
            counts_against_payment: true,
            posted_amount: None,
            payment_method: None,
            client_key: Some(payment.source.clone()),
            received_at: ctx.now,
            updated_at: ctx.now,
            history: vec![step(&payment.status)],
            details: serde_json::Map::from_iter([
                ("source".to_string(), json!(payment.source)),
                ("invoice_id".to_string(), json!(payment.invoice_id)),
                ("payment_id".to_string(), json!(payment.payment_id)),
                ("last_event_id".to_string(), json!(payment.event_id)),
                ("amount_minor".to_string(), json!(payment.amount_minor)),
            ]),
        },
    };
    let mut unmatched = None;
    if payment_after.account_number.is_none() {
        match ctx.account {
            Ok(account) => {
                payment_after.account_number = Some(account.account_number.clone());
                payment_after.details.remove("unmatched_reason");
            }
            Err(reason) => {
                payment_after
                    .details
                    .insert("unmatched_reason".into(), json!(reason.as_str()));
                unmatched = Some(reason);
            }
        }
    }

    // The refund record after this event.
    let mut refunds_after: Vec<Record> = ctx.existing_refunds.to_vec();
    let mut refund_after = None;
    if let Some(snap) = refund {
        let id = refund_record_id(&payment_id, &snap.refund_id);
        let existing = ctx.existing_refunds.iter().find(|r| r.id == id);
        let record = match existing {
            Some(r) if snap.event_id < last_event_id(r) => {
                stale.push("refund");
                None
            }
            Some(r) => {
                let mut r = r.clone();
                if r.status != snap.status {
                    r.history.push(step(&snap.status));
                }
                r.status = snap.status.clone();
                r.live = snap.live;
                r.amount = snap.amount;
                r.updated_at = ctx.now;
                r.details.insert("last_event_id".into(), json!(snap.event_id));
                Some(r)
            }
            None => Some(Record {
                kind: RecordKind::EmpayreRefund,
                id: id.clone(),
                status: snap.status.clone(),
                live: snap.live,
                amount: snap.amount,
                currency: snap.currency.clone(),
                account_number: payment_after.account_number.clone(),
                confirmation_number: None,
                reference: None,
                parent_id: Some(payment_id.clone()),
                refund_ids: Vec::new(),
                // A refund in another currency than its payment cannot be netted against it.
                counts_against_payment: snap.currency == payment_after.currency,
                posted_amount: None,
                payment_method: None,
                client_key: Some(payment.source.clone()),
                received_at: ctx.now,
                updated_at: ctx.now,
                history: vec![step(&snap.status)],
                details: serde_json::Map::from_iter([
                    ("source".to_string(), json!(payment.source)),
                    ("refund_id".to_string(), json!(snap.refund_id)),
                    ("last_event_id".to_string(), json!(snap.event_id)),
                    ("amount_minor".to_string(), json!(snap.amount_minor)),
                ]),
            }),
        };
        if let Some(mut r) = record {
            r.account_number = payment_after.account_number.clone();
            if !payment_after.refund_ids.contains(&r.id) {
                payment_after.refund_ids.push(r.id.clone());
            }
            refunds_after.retain(|x| x.id != r.id);
            refunds_after.push(r.clone());
            refund_after = Some(r);
        }
    }

    let payment_changed = ctx.existing_payment != Some(&payment_after);
    if !payment_changed && refund_after.is_none() {
        return Projection {
            change: None,
            stale,
            unmatched,
        };
    }
    let before = match ctx.existing_payment {
        Some(p) => group_effect(p, ctx.existing_refunds),
        None => Decimal::ZERO,
    };
    let delta = group_effect(&payment_after, &refunds_after) - before;
    Projection {
        change: Some(Change {
            created: match &refund_after {
                Some(r) => !ctx.existing_refunds.iter().any(|x| x.id == r.id),
                None => ctx.existing_payment.is_none(),
            },
            payment_created: ctx.existing_payment.is_none(),
            payment: payment_after,
            refund: refund_after,
            delta,
        }),
        stale,
        unmatched,
    }
}

/// An operator assigns an account to an unmatched payment: it takes effect from now on.
pub fn assign_account(
    payment: &Record,
    refunds: &[Record],
    account: &Account,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<Change, &'static str> {
    if payment.account_number.is_some() {
        return Err("the payment already has an account");
    }
    if payment.currency != account.currency {
        return Err("the account's currency differs from the payment's");
    }
    let mut after = payment.clone();
    after.account_number = Some(account.account_number.clone());
    after.details.remove("unmatched_reason");
    after.updated_at = now;
    after.history.push(StatusChange {
        status: format!("{} (account {} assigned)", payment.status, account.account_number),
        at: now,
        request_id: request_id.to_string(),
    });
    let refunds_after: Vec<Record> = refunds
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.account_number = Some(account.account_number.clone());
            r
        })
        .collect();
    let delta = group_effect(&after, &refunds_after) - group_effect(payment, refunds);
    Ok(Change {
        payment: after,
        refund: None,
        created: false,
        payment_created: false,
        delta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        crate::ledger::test_support::account("RUB")
    }

    fn pay(event_id: i64, status: &str) -> PaymentSnapshot {
        PaymentSnapshot {
            source: "s".into(),
            invoice_id: "inv".into(),
            payment_id: "1".into(),
            event_id,
            status: status.into(),
            live: status == "captured",
            amount: Decimal::new(150000, 2),
            amount_minor: 150000,
            currency: "RUB".into(),
        }
    }

    fn refund(event_id: i64, status: &str, minor: i64) -> RefundSnapshot {
        RefundSnapshot {
            refund_id: "1".into(),
            event_id,
            status: status.into(),
            live: status == "succeeded",
            amount: Decimal::new(minor, 2),
            amount_minor: minor,
            currency: "RUB".into(),
        }
    }

    fn ctx<'a>(existing: Option<&'a Record>, refunds: &'a [Record], account: &'a Account) -> ProjectionContext<'a> {
        ProjectionContext {
            existing_payment: existing,
            existing_refunds: refunds,
            account: Ok(account),
            request_id: "r",
            now: Utc::now(),
        }
    }

    #[test]
    fn capture_credits_refund_debits_stale_changes_nothing() {
        let a = account();
        let processed = project(&pay(10, "processed"), None, &ctx(None, &[], &a));
        let p1 = processed.change.expect("change");
        assert_eq!(p1.delta, Decimal::ZERO);
        let captured = project(&pay(12, "captured"), None, &ctx(Some(&p1.payment), &[], &a))
            .change
            .expect("change");
        assert_eq!(captured.delta, Decimal::new(-150000, 2));
        let stale = project(&pay(11, "processed"), None, &ctx(Some(&captured.payment), &[], &a));
        assert_eq!(stale.change, None);
        assert_eq!(stale.stale, vec!["payment"]);
        let refunded = project(
            &pay(13, "captured"),
            Some(&refund(13, "succeeded", 50000)),
            &ctx(Some(&captured.payment), &[], &a),
        )
        .change
        .expect("change");
        assert_eq!(refunded.delta, Decimal::new(50000, 2));
        let refunds = vec![refunded.refund.clone().expect("refund")];
        // Full refund: the payment's status becomes refunded; the group nets to zero, no double debit.
        let full = project(&pay(14, "refunded"), None, &ctx(Some(&refunded.payment), &refunds, &a))
            .change
            .expect("change");
        assert_eq!(full.delta, Decimal::new(100000, 2));
    }

    #[test]
    fn unmatched_payments_credit_nothing_until_assigned() {
        let a = account();
        let mut c = ctx(None, &[], &a);
        c.account = Err(UnmatchedReason::UnknownAccount);
        let p = project(&pay(1, "captured"), None, &c);
        assert_eq!(p.unmatched, Some(UnmatchedReason::UnknownAccount));
        let change = p.change.expect("recorded");
        assert_eq!(change.delta, Decimal::ZERO);
        let assigned = assign_account(&change.payment, &[], &a, "r", Utc::now()).expect("assigned");
        assert_eq!(assigned.delta, Decimal::new(-150000, 2));
    }
}
