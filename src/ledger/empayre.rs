//! Empayre projections (docs/empayre.md): payment and refund snapshots become records
//! of the same ledger as Orbipay, so credits, journal and invariant are shared.
//!
//! Snapshots carry the platform's state at the time of the event. Each record remembers the
//! highest `eventID` applied to it; a lower one for the same entity is stale and changes nothing
//! (B5.8). The rule is per entity: a stale payment snapshot does not stop a newer refund in the
//! same event.
//!
//! A reconciliation (a state read from the platform's API, `Origin::Reconcile`) has no `eventID`.
//! Whether it applies is decided first by [`payment_verdict`] / [`refund_verdict`]; when it does,
//! the record remembers that its state was reconciled and as of when (`reconciled_at`,
//! `state_at` in `details`). A later webhook older than that state — `occuredAt` before
//! `state_at`, or without both times a status earlier in the lifecycle — is stale like an older
//! `eventID`. So whichever of the two comes second changes no balance.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{group_effect, Change, Origin, Record, RecordKind, RecordStatus, StatusChange};
use crate::domain::account::Account;
use crate::domain::status::{EmpayrePaymentStatus, EmpayreRefundStatus};
use crate::domain::Currency;

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

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no_account" => Self::NoAccount,
            "unknown_account" => Self::UnknownAccount,
            "currency_mismatch" => Self::CurrencyMismatch,
            _ => return None,
        })
    }
}

/// A payment as one event shows it, amounts already in decimal units of `currency`.
#[derive(Debug, Clone)]
pub struct PaymentSnapshot {
    pub source: String,
    pub invoice_id: String,
    pub payment_id: String,
    /// The webhook's `eventID`; ignored for a reconciled snapshot.
    pub event_id: i64,
    /// When the platform reached this state: the event's `occuredAt`, or the API's
    /// `statusChangedAt` for a reconciled snapshot (None when unknown).
    pub state_at: Option<DateTime<Utc>>,
    /// Live once captured: the platform owes the money, so the account is credited.
    pub status: EmpayrePaymentStatus,
    pub amount: Decimal,
    pub amount_minor: i64,
    pub currency: Currency,
}

/// A refund as one event shows it.
#[derive(Debug, Clone)]
pub struct RefundSnapshot {
    pub refund_id: String,
    /// The webhook's `eventID`; ignored for a reconciled snapshot.
    pub event_id: i64,
    /// When the platform reached this state, when known (see `PaymentSnapshot::state_at`).
    pub state_at: Option<DateTime<Utc>>,
    /// Live once succeeded: the money went back to the payer, so the credit is reduced.
    pub status: EmpayreRefundStatus,
    pub amount: Decimal,
    pub amount_minor: i64,
    pub currency: Currency,
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
    /// The path applying the snapshots.
    pub origin: Origin,
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

/// When the record's current state was reached on the platform, if known.
fn state_at(record: &Record) -> Option<DateTime<Utc>> {
    record
        .details
        .get("state_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn reconciled(record: &Record) -> bool {
    record.details.contains_key("reconciled_at")
}

/// Where a payment status sits in the lifecycle (B3.2): pending → processed → captured (or
/// cancelled, failed) → refunded / charged_back. Used to order two states when times are missing.
pub fn payment_rank(status: &str) -> u8 {
    match status {
        "pending" => 0,
        "processed" | "failed" => 1,
        "captured" | "cancelled" => 2,
        "refunded" | "charged_back" => 3,
        _ => 0,
    }
}

/// pending → succeeded | failed.
pub fn refund_rank(status: &str) -> u8 {
    match status {
        "succeeded" | "failed" => 1,
        _ => 0,
    }
}

/// Whether a webhook snapshot is older than what the record holds: a lower `eventID`, or a
/// state older than a reconciled one.
fn webhook_is_stale(
    existing: &Record,
    event_id: i64,
    at: Option<DateTime<Utc>>,
    status: &str,
    rank: fn(&str) -> u8,
) -> bool {
    if event_id < last_event_id(existing) {
        return true;
    }
    if !reconciled(existing) {
        return false;
    }
    match (at, state_at(existing)) {
        (Some(event_at), Some(reconciled_at)) => event_at < reconciled_at,
        _ => rank(status) < rank(existing.status.as_str()),
    }
}

/// RFC 3339 in UTC, with as many fraction digits as the time has (the platform sends up to 9).
fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Records in `details` how the record's new state was reached.
fn note_state(record: &mut Record, origin: Origin, event_id: i64, at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
    match origin {
        Origin::Webhook => {
            record.details.insert("last_event_id".into(), json!(event_id));
            record.details.remove("reconciled_at");
        }
        // The webhook order (`last_event_id`) is kept: an older webhook stays stale.
        Origin::Reconcile => {
            record.details.insert("reconciled_at".into(), json!(time_text(now)));
        }
    }
    match at {
        Some(t) => record.details.insert("state_at".into(), json!(time_text(t))),
        None => record.details.remove("state_at"),
    };
}

/// Whether a reconciliation should apply a state the platform reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The ledger has not seen it: apply it through the projection.
    Apply,
    /// The ledger holds this state, or a later one.
    AlreadyApplied,
    /// The two cannot be ordered: the ledger and the platform disagree; an operator must look.
    Conflict(String),
}

/// The verdict for a payment the platform reports with `status` (as of `at`, its
/// `statusChangedAt`), against the ledger's record of it.
pub fn payment_verdict(existing: Option<&Record>, status: &str, at: Option<DateTime<Utc>>) -> Verdict {
    let Some(record) = existing else {
        return Verdict::Apply;
    };
    if record.status == status {
        return Verdict::AlreadyApplied;
    }
    if let (Some(platform), Some(ledger)) = (at, state_at(record)) {
        return if platform > ledger {
            Verdict::Apply
        } else {
            Verdict::AlreadyApplied
        };
    }
    order_by_rank(record.status.as_str(), status, payment_rank)
}

/// The verdict for a refund the platform reports with `status`.
pub fn refund_verdict(existing: Option<&Record>, status: &str) -> Verdict {
    match existing {
        None => Verdict::Apply,
        Some(r) if r.status == status => Verdict::AlreadyApplied,
        Some(r) => order_by_rank(r.status.as_str(), status, refund_rank),
    }
}

fn order_by_rank(ledger: &str, platform: &str, rank: fn(&str) -> u8) -> Verdict {
    match rank(platform).cmp(&rank(ledger)) {
        std::cmp::Ordering::Greater => Verdict::Apply,
        std::cmp::Ordering::Less => Verdict::AlreadyApplied,
        std::cmp::Ordering::Equal => Verdict::Conflict(format!(
            "the ledger says {ledger}, the platform {platform}, and no time orders them"
        )),
    }
}

/// Projects a payment snapshot and, for refund events, a refund snapshot.
pub fn project(payment: &PaymentSnapshot, refund: Option<&RefundSnapshot>, ctx: &ProjectionContext) -> Projection {
    let mut stale = Vec::new();
    let payment_id = payment_record_id(&payment.source, &payment.invoice_id, &payment.payment_id);
    let step = |status: &str| StatusChange {
        status: status.to_string(),
        at: ctx.now,
        request_id: ctx.request_id.to_string(),
        origin: Some(ctx.origin),
    };

    // The payment record after this event.
    let webhook = ctx.origin == Origin::Webhook;
    let mut payment_after = match ctx.existing_payment {
        Some(existing)
            if webhook
                && webhook_is_stale(
                    existing,
                    payment.event_id,
                    payment.state_at,
                    payment.status.as_str(),
                    payment_rank,
                ) =>
        {
            stale.push("payment");
            existing.clone()
        }
        Some(existing) => {
            let mut r = existing.clone();
            let status = RecordStatus::EmpayrePayment(payment.status.clone());
            let moved = r.status != status;
            if moved {
                r.history.push(step(payment.status.as_str()));
            }
            r.status = status;
            r.amount = payment.amount;
            r.currency = payment.currency.clone();
            r.updated_at = ctx.now;
            r.details.insert("amount_minor".into(), json!(payment.amount_minor));
            // A reconciled refund leaves its payment's state (and how it was reached) alone.
            if webhook || moved {
                note_state(&mut r, ctx.origin, payment.event_id, payment.state_at, ctx.now);
            }
            r
        }
        None => Record {
            client_key: Some(payment.source.clone()),
            details: serde_json::Map::from_iter([
                ("source".to_string(), json!(payment.source)),
                ("invoice_id".to_string(), json!(payment.invoice_id)),
                ("payment_id".to_string(), json!(payment.payment_id)),
                ("amount_minor".to_string(), json!(payment.amount_minor)),
            ]),
            ..Record::new(
                RecordKind::EmpayrePayment,
                &payment_id,
                payment.amount,
                payment.currency.clone(),
                RecordStatus::EmpayrePayment(payment.status.clone()),
                ctx.now,
                ctx.request_id,
            )
            .first_made_by(ctx.origin)
        },
    };
    if ctx.existing_payment.is_none() {
        note_state(
            &mut payment_after,
            ctx.origin,
            payment.event_id,
            payment.state_at,
            ctx.now,
        );
    }
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
            Some(r)
                if webhook && webhook_is_stale(r, snap.event_id, snap.state_at, snap.status.as_str(), refund_rank) =>
            {
                stale.push("refund");
                None
            }
            Some(r) => {
                let mut r = r.clone();
                let status = RecordStatus::EmpayreRefund(snap.status.clone());
                let moved = r.status != status;
                if moved {
                    r.history.push(step(snap.status.as_str()));
                }
                r.status = status;
                r.amount = snap.amount;
                r.updated_at = ctx.now;
                if webhook || moved {
                    note_state(&mut r, ctx.origin, snap.event_id, snap.state_at, ctx.now);
                }
                Some(r)
            }
            None => Some(Record {
                account_number: payment_after.account_number.clone(),
                parent_id: Some(payment_id.clone()),
                // A refund in another currency than its payment cannot be netted against it.
                counts_against_payment: snap.currency == payment_after.currency,
                client_key: Some(payment.source.clone()),
                details: serde_json::Map::from_iter([
                    ("source".to_string(), json!(payment.source)),
                    ("refund_id".to_string(), json!(snap.refund_id)),
                    ("amount_minor".to_string(), json!(snap.amount_minor)),
                ]),
                ..Record::new(
                    RecordKind::EmpayreRefund,
                    &id,
                    snap.amount,
                    snap.currency.clone(),
                    RecordStatus::EmpayreRefund(snap.status.clone()),
                    ctx.now,
                    ctx.request_id,
                )
                .first_made_by(ctx.origin)
            })
            .map(|mut r| {
                note_state(&mut r, ctx.origin, snap.event_id, snap.state_at, ctx.now);
                r
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
        // An operator's step, whichever path recorded the payment.
        origin: None,
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
            state_at: None,
            status: status.into(),
            amount: Decimal::new(150000, 2),
            amount_minor: 150000,
            currency: "RUB".into(),
        }
    }

    fn refund(event_id: i64, status: &str, minor: i64) -> RefundSnapshot {
        RefundSnapshot {
            refund_id: "1".into(),
            event_id,
            state_at: None,
            status: status.into(),
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
            origin: Origin::Webhook,
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

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(text.parse().expect("time"))
    }

    fn reconciling<'a>(
        existing: Option<&'a Record>,
        refunds: &'a [Record],
        account: &'a Account,
    ) -> ProjectionContext<'a> {
        ProjectionContext {
            origin: Origin::Reconcile,
            ..ctx(existing, refunds, account)
        }
    }

    #[test]
    fn a_reconciled_capture_makes_older_webhooks_stale_and_the_same_one_a_no_op() {
        let a = account();
        let mut captured = pay(0, "captured");
        captured.state_at = at("2026-11-21T09:01:00Z");
        assert_eq!(payment_verdict(None, "captured", captured.state_at), Verdict::Apply);
        let applied = project(&captured, None, &reconciling(None, &[], &a))
            .change
            .expect("change");
        assert_eq!(applied.delta, Decimal::new(-150000, 2));
        assert!(applied.payment.details.contains_key("reconciled_at"));
        assert!(!applied.payment.details.contains_key("last_event_id"));

        // The processed event, delayed: a higher eventID than anything seen, but an older state.
        let mut processed = pay(10, "processed");
        processed.state_at = at("2026-11-21T09:00:30Z");
        let late = project(&processed, None, &ctx(Some(&applied.payment), &[], &a));
        assert_eq!((late.change, late.stale), (None, vec!["payment"]));
        // Without times, the lifecycle orders them.
        processed.state_at = None;
        assert_eq!(
            project(&processed, None, &ctx(Some(&applied.payment), &[], &a)).stale,
            vec!["payment"]
        );

        // The capture's own webhook: same state, no balance change; the webhook order takes over.
        let mut webhook = pay(12, "captured");
        webhook.state_at = captured.state_at;
        let same = project(&webhook, None, &ctx(Some(&applied.payment), &[], &a))
            .change
            .expect("change");
        assert_eq!(same.delta, Decimal::ZERO);
        assert!(!same.payment.details.contains_key("reconciled_at"));
        assert_eq!(same.payment.details["last_event_id"], json!(12));
    }

    #[test]
    fn a_reconciliation_never_rolls_back_what_a_newer_webhook_applied() {
        let a = account();
        let mut captured = pay(12, "captured");
        captured.state_at = at("2026-11-21T09:01:00Z");
        let by_webhook = project(&captured, None, &ctx(None, &[], &a))
            .change
            .expect("change")
            .payment;
        // The same state, seen again by a reconciliation.
        assert_eq!(
            payment_verdict(Some(&by_webhook), "captured", at("2026-11-21T09:01:00Z")),
            Verdict::AlreadyApplied
        );
        // A charge-back the webhook never delivered: later, so it applies and debits.
        let back_at = at("2026-11-25T10:00:00Z");
        assert_eq!(
            payment_verdict(Some(&by_webhook), "charged_back", back_at),
            Verdict::Apply
        );
        let mut back = pay(0, "charged_back");
        back.state_at = back_at;
        let charged = project(&back, None, &reconciling(Some(&by_webhook), &[], &a))
            .change
            .expect("change");
        assert_eq!(charged.delta, Decimal::new(150000, 2));
        assert_eq!(
            charged.payment.details["last_event_id"],
            json!(12),
            "the webhook order is kept"
        );
        // An analytics answer that lags behind the webhook: the ledger is ahead.
        assert_eq!(
            payment_verdict(Some(&charged.payment), "captured", at("2026-11-21T09:01:00Z")),
            Verdict::AlreadyApplied
        );
        // Without times: forward in the lifecycle applies, backward is already seen, sideways is a conflict.
        let mut untimed = charged.payment.clone();
        untimed.details.remove("state_at");
        assert_eq!(
            payment_verdict(Some(&untimed), "captured", None),
            Verdict::AlreadyApplied
        );
        assert!(matches!(
            payment_verdict(Some(&untimed), "refunded", None),
            Verdict::Conflict(_)
        ));
        let mut processed = by_webhook.clone();
        processed.status = RecordStatus::EmpayrePayment(EmpayrePaymentStatus::Processed);
        processed.details.remove("state_at");
        assert_eq!(payment_verdict(Some(&processed), "captured", None), Verdict::Apply);
    }

    #[test]
    fn a_reconciled_refund_is_not_undone_by_its_late_pending_webhook() {
        let a = account();
        let captured = project(&pay(12, "captured"), None, &ctx(None, &[], &a))
            .change
            .expect("change");
        assert_eq!(refund_verdict(None, "succeeded"), Verdict::Apply);
        // The payment as the ledger has it, the refund as the API reports it.
        let refund_change = project(
            &pay(0, "captured"),
            Some(&refund(0, "succeeded", 50000)),
            &reconciling(Some(&captured.payment), &[], &a),
        )
        .change
        .expect("change");
        assert_eq!(refund_change.delta, Decimal::new(50000, 2));
        assert!(
            !refund_change.payment.details.contains_key("reconciled_at"),
            "the payment did not move"
        );
        let refunds = vec![refund_change.refund.clone().expect("refund")];
        let late = project(
            &pay(13, "captured"),
            Some(&refund(13, "pending", 50000)),
            &ctx(Some(&refund_change.payment), &refunds, &a),
        );
        assert!(late.stale.contains(&"refund"), "{late:?}");
        assert_eq!(late.change.map(|c| c.delta).unwrap_or_default(), Decimal::ZERO);
        assert_eq!(refund_verdict(Some(&refunds[0]), "succeeded"), Verdict::AlreadyApplied);
        assert!(matches!(
            refund_verdict(Some(&refunds[0]), "failed"),
            Verdict::Conflict(_)
        ));
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
