//! The ledger: where both channels meet. Pure decisions, no I/O.
//!
//! Given the current records, the account and a command, a decision returns the new records
//! and the balance delta, or the business rule that refuses the command. Settling the change
//! (`settle`) gives the account after it and the journal entry that records it; a storage
//! backend commits all of that at once and only numbers the entry.
//!
//! Balance effects are computed per *payment group* (a payment and its refunds), so that any
//! change — a refund, a reversal, a payment that comes back to life — moves the balance by
//! exactly `new group effect − old group effect`, and the invariant
//! `balance = opening − Σ live payments + Σ live refunds of live payments` holds by construction.

pub mod empayre;
pub mod orbipay;
pub mod record;
pub mod settle;

use rust_decimal::Decimal;

pub use record::{Channel, JournalEntry, Origin, Record, RecordKind, RecordStatus, StatusChange};
pub use settle::{link_chain, settle, JournalDraft, SettleError, Settlement};

/// The balance effect of a payment group: a live payment lowers the balance due by its amount,
/// and each live refund that counts against it raises it again. A payment that is not live has
/// no effect, and neither have its refunds; nor has a payment with no account (an unmatched
/// Empayre payment) until one is assigned.
pub fn group_effect(payment: &Record, refunds: &[Record]) -> Decimal {
    if !payment.is_live() || payment.account_number.is_none() {
        return Decimal::ZERO;
    }
    let refunded: Decimal = refunds
        .iter()
        .filter(|r| r.is_live() && r.counts_against_payment)
        .map(|r| r.amount)
        .sum();
    refunded - payment.amount
}

/// What part of a payment is still refundable, given its refunds (other than `except_id`).
pub fn refundable(payment: &Record, refunds: &[Record], except_id: Option<&str>) -> Decimal {
    let taken: Decimal = refunds
        .iter()
        .filter(|r| r.is_live() && r.counts_against_payment && Some(r.id.as_str()) != except_id)
        .map(|r| r.amount)
        .sum();
    payment.amount - taken
}

/// The 422 codes of docs/orbipay.md, which the Empayre side reuses for its own reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessCode {
    DuplicatePosting,
    PostingRejected,
    AccountClosed,
    AccountStatusInvalid,
    PaymentAmountLow,
    PaymentAmountHigh,
    MemberWarning,
    AccountWarning,
    RefundInitiate,
}

impl BusinessCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DuplicatePosting => "error_duplicate_posting",
            Self::PostingRejected => "error_posting_rejected",
            Self::AccountClosed => "error_account_closed",
            Self::AccountStatusInvalid => "error_account_status_invalid",
            Self::PaymentAmountLow => "error_payment_amount_low",
            Self::PaymentAmountHigh => "error_payment_amount_high",
            Self::MemberWarning => "error_member_warning",
            Self::AccountWarning => "error_account_warning",
            Self::RefundInitiate => "error_refund_initiate",
        }
    }
}

/// A command the business rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: BusinessCode,
    pub field: Option<&'static str>,
    pub message: String,
}

impl Rejection {
    pub fn new(code: BusinessCode, field: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            code,
            field,
            message: message.into(),
        }
    }
}

/// The outcome of an accepted command: the records to write and the balance change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The payment record after the command (always written).
    pub payment: Record,
    /// The refund record after the command, for refund commands.
    pub refund: Option<Record>,
    /// Whether the command created the main record (payment for payment commands, refund for
    /// refund commands).
    pub created: bool,
    /// Whether the payment record is new (an Empayre refund event can create both).
    pub payment_created: bool,
    /// Balance change of the payment's account; zero means no journal entry.
    pub delta: Decimal,
}

impl Change {
    /// The record the command was about.
    pub fn subject(&self) -> &Record {
        self.refund.as_ref().unwrap_or(&self.payment)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::domain::account::{Account, AccountStatus, Profile, ProfileStatus};
    use chrono::Utc;

    /// An active account "A" in `currency` with 500 opening balance, limits 1.00–1000.00 and
    /// one linked profile "C".
    pub fn account(currency: &str) -> Account {
        Account {
            account_number: "A".into(),
            customer_account_reference: None,
            account_holder_name: None,
            nickname: None,
            status: AccountStatus::Active,
            currency: currency.into(),
            warning: None,
            opening_balance: Decimal::new(50000, 2),
            posted_delta: Decimal::ZERO,
            current_statement_balance: None,
            minimum_payment_due: None,
            past_amount_due: None,
            payment_due_date: None,
            statement_date: None,
            payoff_amount: None,
            payoff_expiry_date: None,
            min_payment_amount: Some(Decimal::new(100, 2)),
            max_payment_amount: Some(Decimal::new(100000, 2)),
            address: None,
            customer_references: vec!["C".into()],
            last_journal_commit: None,
        }
    }

    /// An active profile "C" with no warning, linked to account "A".
    pub fn profile() -> Profile {
        Profile {
            customer_reference: "C".into(),
            lookup_reference: None,
            first_name: None,
            last_name: None,
            email: None,
            ssn_sha256: None,
            home_phone: None,
            status: ProfileStatus::Active,
            warning: None,
            address: None,
            account_numbers: vec!["A".into()],
        }
    }

    pub fn payment(id: &str, amount: &str, live: bool) -> Record {
        use crate::domain::status::PostingStatus;
        let status = if live {
            PostingStatus::Processed
        } else {
            PostingStatus::Returned
        };
        Record {
            account_number: Some("A".into()),
            confirmation_number: Some("C1".into()),
            reference: Some("P1".into()),
            ..Record::new(
                RecordKind::Payment,
                id,
                amount.parse().expect("amount"),
                "USD".into(),
                RecordStatus::Ebpp(status),
                // Microseconds: what every backend keeps (PostgreSQL's timestamp precision).
                chrono::SubsecRound::trunc_subsecs(Utc::now(), 6),
                "test",
            )
        }
    }

    pub fn refund(id: &str, amount: &str, live: bool, counts: bool) -> Record {
        let mut r = payment(id, amount, live);
        r.kind = RecordKind::Refund;
        r.counts_against_payment = counts;
        r.parent_id = Some("p".into());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn group_effect_follows_liveness() {
        let p = payment("p", "100.00", true);
        let refunds = vec![
            refund("r1", "30.00", true, true),
            refund("r2", "5.00", false, true),
            refund("r3", "7.00", true, false),
        ];
        assert_eq!(group_effect(&p, &refunds), "-70.00".parse::<Decimal>().unwrap());
        let dead = payment("p", "100.00", false);
        assert_eq!(group_effect(&dead, &refunds), Decimal::ZERO);
        assert_eq!(refundable(&p, &refunds, None), "70.00".parse::<Decimal>().unwrap());
        assert_eq!(
            refundable(&p, &refunds, Some("r1")),
            "100.00".parse::<Decimal>().unwrap()
        );
    }
}
