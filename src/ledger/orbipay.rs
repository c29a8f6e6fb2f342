//! The Orbipay posting rules (docs/orbipay.md), in the order the spec gives them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    group_effect, refundable, BusinessCode as Code, Change, Record, RecordKind, RecordStatus, Rejection, StatusChange,
};
use crate::domain::account::{Account, AccountStatus, Profile};
use crate::domain::money;
use crate::domain::status::PostingStatus;
use crate::domain::{AccountNumber, Currency};

/// A payment posting or reversal, as the ledger needs it.
#[derive(Debug, Clone)]
pub struct PaymentCommand {
    pub id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub account_number: AccountNumber,
    pub confirmation_number: String,
    pub customer_reference: Option<String>,
    /// Live or not as §5.2 says (`PostingStatus::is_live`).
    pub status: PostingStatus,
    pub payment_reference: Option<String>,
    pub payment_method: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub client_key: String,
    pub request_id: String,
    pub now: DateTime<Utc>,
}

/// A refund posting, as the ledger needs it.
#[derive(Debug, Clone)]
pub struct RefundCommand {
    pub id: String,
    pub source_payment_id: String,
    pub refund_amount: Option<Decimal>,
    pub fee_only: bool,
    pub confirmation_number: String,
    pub status: PostingStatus,
    pub refund_reference: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    pub client_key: String,
    pub request_id: String,
    pub now: DateTime<Utc>,
}

/// What the store read for a payment command.
pub struct PaymentContext<'a> {
    pub existing: Option<&'a Record>,
    /// The existing payment's refunds.
    pub refunds: &'a [Record],
    pub account: Option<&'a Account>,
    /// The profile named by `customer.customer_reference`, when it exists.
    pub profile: Option<&'a Profile>,
    /// Minimum payment when the account has none of its own.
    pub default_min_payment: Decimal,
    /// The reference to give a new record when EBPP sent none.
    pub fresh_reference: String,
}

/// §5.3 — payment posting.
pub fn decide_payment(cmd: &PaymentCommand, ctx: &PaymentContext) -> Result<Change, Rejection> {
    if let Some(existing) = ctx.existing {
        compare_with_record(cmd, existing)?;
        if existing.status == RecordStatus::Ebpp(cmd.status) {
            return Err(duplicate());
        }
        // A status update. One that removes effect is always accepted; one that makes the
        // record live again passes rules 2–6 first.
        if cmd.status.is_live() && !existing.is_live() {
            check_account(cmd, ctx.account)?;
            check_takes_effect(cmd, ctx)?;
        }
        return Ok(update_payment(cmd, existing, ctx.refunds));
    }
    let account = check_account(cmd, ctx.account)?;
    if cmd.status.is_live() {
        check_takes_effect(cmd, ctx)?;
    }
    let record = Record {
        account_number: Some(account.account_number.clone()),
        confirmation_number: Some(cmd.confirmation_number.clone()),
        reference: Some(
            cmd.payment_reference
                .clone()
                .unwrap_or_else(|| ctx.fresh_reference.clone()),
        ),
        payment_method: Some(cmd.payment_method.clone()),
        client_key: Some(cmd.client_key.clone()),
        details: cmd.details.clone(),
        ..Record::new(
            RecordKind::Payment,
            &cmd.id,
            cmd.amount,
            account.currency.clone(),
            RecordStatus::Ebpp(cmd.status),
            cmd.now,
            &cmd.request_id,
        )
    };
    let delta = group_effect(&record, &[]);
    Ok(Change {
        payment: record,
        refund: None,
        created: true,
        payment_created: true,
        delta,
    })
}

/// §5.4 — reversal: the payment must exist and match; it becomes non-live.
pub fn decide_reversal(cmd: &PaymentCommand, ctx: &PaymentContext) -> Result<Change, Rejection> {
    let existing = ctx
        .existing
        .ok_or_else(|| Rejection::new(Code::PostingRejected, Some("id"), "no payment with this id was posted"))?;
    compare_with_record(cmd, existing)?;
    if existing.status == RecordStatus::Ebpp(cmd.status) {
        return Err(duplicate());
    }
    Ok(update_payment(cmd, existing, ctx.refunds))
}

fn duplicate() -> Rejection {
    Rejection::new(Code::DuplicatePosting, None, "duplicate posting, no action required")
}

/// Rule 1: a re-post of a recorded payment must agree on what identifies the money.
fn compare_with_record(cmd: &PaymentCommand, existing: &Record) -> Result<(), Rejection> {
    let differs = |field: &'static str| {
        Err(Rejection::new(
            Code::PostingRejected,
            Some(field),
            format!("{field} differs from the recorded payment"),
        ))
    };
    if existing.amount != cmd.amount {
        return differs("amount");
    }
    if existing.currency != cmd.currency {
        return differs("currency_code3d");
    }
    if existing.account_number.as_deref() != Some(cmd.account_number.as_str()) {
        return differs("customer_account.account_number");
    }
    if existing.confirmation_number.as_deref() != Some(cmd.confirmation_number.as_str()) {
        return differs("confirmation_number");
    }
    Ok(())
}

fn update_payment(cmd: &PaymentCommand, existing: &Record, refunds: &[Record]) -> Change {
    let mut updated = existing.clone();
    updated.status = RecordStatus::Ebpp(cmd.status);
    updated.updated_at = cmd.now;
    updated.history.push(history(cmd.status.as_str(), cmd));
    for (k, v) in &cmd.details {
        updated.details.insert(k.clone(), v.clone());
    }
    let delta = group_effect(&updated, refunds) - group_effect(existing, refunds);
    Change {
        payment: updated,
        refund: None,
        created: false,
        payment_created: false,
        delta,
    }
}

fn history(status: &str, cmd: &PaymentCommand) -> StatusChange {
    StatusChange {
        status: status.to_string(),
        at: cmd.now,
        request_id: cmd.request_id.clone(),
        origin: None,
    }
}

/// Rules 2 and 3, plus the currency's number of decimals, which only the account knows.
fn check_account<'a>(cmd: &PaymentCommand, account: Option<&'a Account>) -> Result<&'a Account, Rejection> {
    let account = account.ok_or_else(|| {
        Rejection::new(
            Code::PostingRejected,
            Some("customer_account.account_number"),
            "unknown account",
        )
    })?;
    if account.currency != cmd.currency {
        return Err(Rejection::new(
            Code::PostingRejected,
            Some("currency_code3d"),
            "currency differs from the account currency",
        ));
    }
    let exponent = money::currency_exponent(&account.currency).unwrap_or(2);
    if cmd.amount.normalize().scale() > exponent {
        return Err(Rejection::new(
            Code::PostingRejected,
            Some("amount"),
            format!("amount has more decimals than {} allows", account.currency),
        ));
    }
    Ok(account)
}

/// Rules 4–6, for records that take effect.
fn check_takes_effect(cmd: &PaymentCommand, ctx: &PaymentContext) -> Result<(), Rejection> {
    let Some(account) = ctx.account else {
        return Err(Rejection::new(
            Code::PostingRejected,
            Some("customer_account.account_number"),
            "unknown account",
        ));
    };
    match account.status {
        AccountStatus::Closed if cmd.status == PostingStatus::Processed => {
            return Err(Rejection::new(
                Code::RefundInitiate,
                None,
                "account closed: the payment will never post, initiate a refund",
            ))
        }
        AccountStatus::Closed => return Err(Rejection::new(Code::AccountClosed, None, "account status closed")),
        AccountStatus::Repair => {
            return Err(Rejection::new(
                Code::AccountStatusInvalid,
                None,
                "account status queued for repair",
            ))
        }
        _ => {}
    }
    if account.warning.is_some() {
        return Err(Rejection::new(
            Code::AccountWarning,
            None,
            "account warnings do not allow posting",
        ));
    }
    if let Some(profile) = ctx.profile {
        let linked = profile.account_numbers.iter().any(|a| a == &account.account_number);
        if linked && profile.blocks_payments() {
            return Err(Rejection::new(
                Code::MemberWarning,
                Some("customer.customer_reference"),
                "member warnings do not allow posting",
            ));
        }
    }
    let min = account.min_payment_amount.unwrap_or(ctx.default_min_payment);
    if cmd.amount.is_zero() || cmd.amount < min {
        return Err(Rejection::new(
            Code::PaymentAmountLow,
            Some("amount"),
            format!("payment amount is below the minimum of {}", account.format(min)),
        ));
    }
    if let Some(max) = account.max_payment_amount {
        if cmd.amount > max {
            return Err(Rejection::new(
                Code::PaymentAmountHigh,
                Some("amount"),
                format!("payment amount is above the maximum of {}", account.format(max)),
            ));
        }
    }
    Ok(())
}

/// What the store read for a refund command.
pub struct RefundContext<'a> {
    pub existing: Option<&'a Record>,
    pub payment: Option<&'a Record>,
    /// All refunds of that payment (including `existing`).
    pub refunds: &'a [Record],
    pub fresh_reference: String,
}

/// §5.5 — refund posting.
pub fn decide_refund(cmd: &RefundCommand, ctx: &RefundContext) -> Result<Change, Rejection> {
    if let Some(existing) = ctx.existing {
        if existing.parent_id.as_deref() != Some(cmd.source_payment_id.as_str()) {
            return Err(Rejection::new(
                Code::PostingRejected,
                Some("source_payment.id"),
                "source_payment.id differs from the recorded refund",
            ));
        }
        if existing.posted_amount != cmd.refund_amount {
            return Err(Rejection::new(
                Code::PostingRejected,
                Some("refund_amount"),
                "refund_amount differs from the recorded refund",
            ));
        }
        if existing.status == RecordStatus::Ebpp(cmd.status) {
            return Err(duplicate());
        }
    }
    let payment = ctx.payment.ok_or_else(|| {
        Rejection::new(
            Code::PostingRejected,
            Some("source_payment.id"),
            "no payment with this id was posted",
        )
    })?;
    let becomes_live = cmd.status.is_live() && !ctx.existing.is_some_and(Record::is_live);
    let amount = match ctx.existing {
        Some(existing) => existing.amount,
        None => match cmd.refund_amount {
            Some(a) => a,
            None if cmd.fee_only => Decimal::ZERO,
            None => refundable(payment, ctx.refunds, None),
        },
    };
    if becomes_live {
        if !payment.is_live() {
            return Err(Rejection::new(
                Code::PostingRejected,
                Some("source_payment.id"),
                "the payment is not live and cannot be refunded",
            ));
        }
        if !cmd.fee_only {
            let left = refundable(payment, ctx.refunds, Some(&cmd.id));
            if amount > left || (cmd.refund_amount.is_none() && left <= Decimal::ZERO) {
                return Err(Rejection::new(
                    Code::PaymentAmountHigh,
                    Some("refund_amount"),
                    format!(
                        "refunds would exceed the payment amount; {} is refundable",
                        money::format_amount(left.max(Decimal::ZERO), 2)
                    ),
                ));
            }
        }
    }
    let refund = match ctx.existing {
        Some(existing) => {
            let step = StatusChange {
                status: cmd.status.as_str().to_string(),
                at: cmd.now,
                request_id: cmd.request_id.clone(),
                origin: None,
            };
            let mut r = existing.clone();
            r.status = RecordStatus::Ebpp(cmd.status);
            r.updated_at = cmd.now;
            r.history.push(step);
            for (k, v) in &cmd.details {
                r.details.insert(k.clone(), v.clone());
            }
            r
        }
        None => Record {
            account_number: payment.account_number.clone(),
            confirmation_number: Some(cmd.confirmation_number.clone()),
            reference: Some(
                cmd.refund_reference
                    .clone()
                    .unwrap_or_else(|| ctx.fresh_reference.clone()),
            ),
            parent_id: Some(payment.id.clone()),
            counts_against_payment: !cmd.fee_only,
            posted_amount: cmd.refund_amount,
            payment_method: payment.payment_method.clone(),
            client_key: Some(cmd.client_key.clone()),
            details: cmd.details.clone(),
            ..Record::new(
                RecordKind::Refund,
                &cmd.id,
                amount,
                payment.currency.clone(),
                RecordStatus::Ebpp(cmd.status),
                cmd.now,
                &cmd.request_id,
            )
        },
    };
    let after: Vec<Record> = ctx
        .refunds
        .iter()
        .filter(|r| r.id != refund.id)
        .cloned()
        .chain(std::iter::once(refund.clone()))
        .collect();
    let delta = group_effect(payment, &after) - group_effect(payment, ctx.refunds);
    let mut payment = payment.clone();
    if !payment.refund_ids.contains(&refund.id) {
        payment.refund_ids.push(refund.id.clone());
    }
    Ok(Change {
        payment,
        refund: Some(refund),
        created: ctx.existing.is_none(),
        payment_created: false,
        delta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountStatus, ProfileStatus};

    fn account() -> Account {
        crate::ledger::test_support::account("USD")
    }

    fn profile() -> Profile {
        crate::ledger::test_support::profile()
    }

    fn cmd(status: &str, amount: &str) -> PaymentCommand {
        PaymentCommand {
            id: "1".into(),
            amount: amount.parse().unwrap(),
            currency: "USD".into(),
            account_number: "A".into(),
            confirmation_number: "C1".into(),
            customer_reference: Some("C".into()),
            status: PostingStatus::parse(status).expect("a posting status"),
            payment_reference: None,
            payment_method: "ach".into(),
            details: Default::default(),
            client_key: "k".into(),
            request_id: "r".into(),
            now: Utc::now(),
        }
    }

    fn ctx<'a>(
        existing: Option<&'a Record>,
        account: Option<&'a Account>,
        profile: Option<&'a Profile>,
    ) -> PaymentContext<'a> {
        PaymentContext {
            existing,
            refunds: &[],
            account,
            profile,
            default_min_payment: "0.01".parse().unwrap(),
            fresh_reference: "P000000000001".into(),
        }
    }

    fn code(r: Result<Change, Rejection>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.code.as_str(),
        }
    }

    #[test]
    fn new_payment_rules_in_order() {
        let a = account();
        let p = profile();
        let mut closed = account();
        closed.status = AccountStatus::Closed;
        let mut repair = account();
        repair.status = AccountStatus::Repair;
        let mut warned = account();
        warned.warning = Some("fraud".into());
        let mut jpy = account();
        jpy.currency = "JPY".into();
        let mut suspended = profile();
        suspended.status = ProfileStatus::Suspended;
        type Case<'a> = (
            &'a str,
            PaymentCommand,
            Option<&'a Account>,
            Option<&'a Profile>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            ("applies", cmd("processed", "10.00"), Some(&a), Some(&p), "ok"),
            (
                "unknown account",
                cmd("processed", "10.00"),
                None,
                None,
                "error_posting_rejected",
            ),
            (
                "currency",
                cmd("processed", "10.00"),
                Some(&jpy),
                None,
                "error_posting_rejected",
            ),
            (
                "closed processed",
                cmd("processed", "10.00"),
                Some(&closed),
                None,
                "error_refund_initiate",
            ),
            (
                "closed scheduled",
                cmd("scheduled", "10.00"),
                Some(&closed),
                None,
                "error_account_closed",
            ),
            (
                "repair",
                cmd("scheduled", "10.00"),
                Some(&repair),
                None,
                "error_account_status_invalid",
            ),
            (
                "account warning",
                cmd("scheduled", "10.00"),
                Some(&warned),
                None,
                "error_account_warning",
            ),
            (
                "member",
                cmd("scheduled", "10.00"),
                Some(&a),
                Some(&suspended),
                "error_member_warning",
            ),
            (
                "zero",
                cmd("processed", "0"),
                Some(&a),
                None,
                "error_payment_amount_low",
            ),
            (
                "below min",
                cmd("processed", "0.99"),
                Some(&a),
                None,
                "error_payment_amount_low",
            ),
            (
                "above max",
                cmd("processed", "1000.01"),
                Some(&a),
                None,
                "error_payment_amount_high",
            ),
            ("non-live skips 4-6", cmd("declined", "0"), Some(&closed), None, "ok"),
            (
                "non-live still needs account",
                cmd("declined", "1"),
                None,
                None,
                "error_posting_rejected",
            ),
        ];
        for (name, c, acc, prof, want) in cases {
            assert_eq!(code(decide_payment(&c, &ctx(None, acc, prof))), want, "{name}");
        }
    }

    #[test]
    fn status_updates_move_the_balance_by_the_change_of_effect() {
        let a = account();
        let first = decide_payment(&cmd("scheduled", "10.00"), &ctx(None, Some(&a), None)).unwrap();
        assert_eq!(first.delta, "-10.00".parse::<Decimal>().unwrap());
        let rec = first.payment;
        let dup = decide_payment(&cmd("scheduled", "10.00"), &ctx(Some(&rec), Some(&a), None));
        assert_eq!(code(dup), "error_duplicate_posting");
        let processed = decide_payment(&cmd("processed", "10.00"), &ctx(Some(&rec), Some(&a), None)).unwrap();
        assert_eq!(processed.delta, Decimal::ZERO);
        let returned = decide_reversal(
            &cmd("returned", "10.00"),
            &ctx(Some(&processed.payment), Some(&a), None),
        )
        .unwrap();
        assert_eq!(returned.delta, "10.00".parse::<Decimal>().unwrap());
        let conflicting = decide_payment(&cmd("processed", "11.00"), &ctx(Some(&rec), Some(&a), None));
        assert_eq!(conflicting.unwrap_err().field, Some("amount"));
        // Coming back to life passes the rules again.
        let mut closed = account();
        closed.status = AccountStatus::Closed;
        let revive = decide_payment(
            &cmd("processed", "10.00"),
            &ctx(Some(&returned.payment), Some(&closed), None),
        );
        assert_eq!(code(revive), "error_refund_initiate");
        assert_eq!(
            code(decide_reversal(&cmd("returned", "10.00"), &ctx(None, Some(&a), None))),
            "error_posting_rejected"
        );
    }

    fn refund_cmd(id: &str, amount: Option<&str>, status: &str) -> RefundCommand {
        RefundCommand {
            id: id.into(),
            source_payment_id: "1".into(),
            refund_amount: amount.map(|a| a.parse().unwrap()),
            fee_only: false,
            confirmation_number: "RC".into(),
            status: PostingStatus::parse(status).expect("a posting status"),
            refund_reference: None,
            details: Default::default(),
            client_key: "k".into(),
            request_id: "r".into(),
            now: Utc::now(),
        }
    }

    #[test]
    fn refunds_are_bounded_by_the_payment() {
        let a = account();
        let pay = decide_payment(&cmd("processed", "100.00"), &ctx(None, Some(&a), None))
            .unwrap()
            .payment;
        let rctx = |existing, refunds| RefundContext {
            existing,
            payment: Some(&pay),
            refunds,
            fresh_reference: "R1".into(),
        };
        let r1 = decide_refund(&refund_cmd("r1", Some("60.00"), "processed"), &rctx(None, &[])).unwrap();
        assert_eq!(r1.delta, "60.00".parse::<Decimal>().unwrap());
        let refunds = vec![r1.refund.clone().unwrap()];
        let too_much = decide_refund(&refund_cmd("r2", Some("40.01"), "processed"), &rctx(None, &refunds));
        assert_eq!(code(too_much), "error_payment_amount_high");
        let rest = decide_refund(&refund_cmd("r2", None, "processed"), &rctx(None, &refunds)).unwrap();
        assert_eq!(
            rest.refund.as_ref().unwrap().amount,
            "40.00".parse::<Decimal>().unwrap()
        );
        let declined = decide_refund(
            &refund_cmd("r1", Some("60.00"), "declined"),
            &rctx(refunds.first(), &refunds),
        )
        .unwrap();
        assert_eq!(declined.delta, "-60.00".parse::<Decimal>().unwrap());
        let changed = decide_refund(
            &refund_cmd("r1", Some("61.00"), "declined"),
            &rctx(refunds.first(), &refunds),
        );
        assert_eq!(code(changed), "error_posting_rejected");
        let dup = decide_refund(
            &refund_cmd("r1", Some("60.00"), "processed"),
            &rctx(refunds.first(), &refunds),
        );
        assert_eq!(code(dup), "error_duplicate_posting");
        let orphan = decide_refund(
            &refund_cmd("r9", None, "processed"),
            &RefundContext {
                existing: None,
                payment: None,
                refunds: &[],
                fresh_reference: "R".into(),
            },
        );
        assert_eq!(code(orphan), "error_posting_rejected");
    }
}
