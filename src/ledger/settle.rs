//! Settling a decided change: what it does to its account's balance and which journal entry
//! records that. Pure, like the decisions: a storage backend only stores what comes out of here,
//! and numbers the journal entry (the journal seq is assigned when the backend commits).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Change, Channel, JournalEntry, Origin};
use crate::domain::account::Account;
use crate::domain::AccountNumber;

/// A journal entry before the backend has given it its seq: it cannot be stored until
/// `numbered` says where it stands in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalDraft(JournalEntry);

impl JournalDraft {
    /// The entry as committed, with the gap-free seq the backend assigned.
    pub fn numbered(self, seq: u64) -> JournalEntry {
        JournalEntry { seq, ..self.0 }
    }

    /// Notes which Empayre path applied the change (`Writes::origin`); the backend calls it.
    pub fn with_origin(mut self, origin: Option<Origin>) -> Self {
        self.0.origin = origin;
        self
    }

    /// What the entry will say, but for its seq (0 until numbered).
    pub fn entry(&self) -> &JournalEntry {
        &self.0
    }
}

/// What a change does to the books.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement {
    /// The payment's account after the change (unchanged when the balance did not move), or
    /// None for a payment without one (an unmatched Empayre payment).
    pub account: Option<Account>,
    /// The journal entry, when the balance moved. The account is to be written exactly when
    /// there is one.
    pub entry: Option<JournalDraft>,
}

impl Settlement {
    /// The balance after the change, for the answer.
    pub fn balance_after(&self) -> Option<Decimal> {
        self.account.as_ref().map(Account::current_balance)
    }

    /// Decimals of the account's currency (2 when there is no account), for the answer.
    pub fn currency_exponent(&self) -> u32 {
        self.account.as_ref().map_or(2, Account::exponent)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// The decision moved a balance but the change names no account, or the backend could not
    /// find it: the stored data and the decision disagree.
    #[error("{kind} {id} moves a balance but its account {account:?} was not found")]
    NoAccount {
        kind: &'static str,
        id: String,
        account: Option<AccountNumber>,
    },
    /// The backend passed another account than the one the change is about.
    #[error("{kind} {id} is on account {expected:?}, not on {given}")]
    WrongAccount {
        kind: &'static str,
        id: String,
        expected: Option<AccountNumber>,
        given: AccountNumber,
    },
}

/// Applies a change's balance delta to its account (the one `change.payment` names, as read
/// under the backend's lock, handed over) and drafts the journal entry that records it. A zero
/// delta changes nothing and needs no entry.
pub fn settle(
    change: &Change,
    account: Option<Account>,
    channel: Channel,
    at: DateTime<Utc>,
) -> Result<Settlement, SettleError> {
    let subject = change.subject();
    if let Some(given) = &account {
        if change.payment.account_number.as_ref() != Some(&given.account_number) {
            return Err(SettleError::WrongAccount {
                kind: subject.kind.as_str(),
                id: subject.id.clone(),
                expected: change.payment.account_number.clone(),
                given: given.account_number.clone(),
            });
        }
    }
    if change.delta.is_zero() {
        return Ok(Settlement { account, entry: None });
    }
    let Some(mut after) = account else {
        return Err(SettleError::NoAccount {
            kind: subject.kind.as_str(),
            id: subject.id.clone(),
            account: change.payment.account_number.clone(),
        });
    };
    after.posted_delta += change.delta;
    let entry = JournalDraft(JournalEntry {
        seq: 0,
        at,
        channel,
        kind: subject.kind,
        record_id: subject.id.clone(),
        account_number: after.account_number.clone(),
        status: subject.status.as_str().to_string(),
        delta: change.delta,
        balance_after: after.current_balance(),
        origin: None,
    });
    Ok(Settlement {
        account: Some(after),
        entry: Some(entry),
    })
}

/// Moves the head of the account's journal chain to `position` (where the backend keeps this
/// entry) and returns the previous head, which the new entry links to; None for the account's
/// first entry. Only a backend that walks an account's journal entry by entry needs the chain.
pub fn link_chain(account: &mut Account, position: u64) -> Option<u64> {
    account.last_journal_commit.replace(position)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{account, payment, refund};
    use super::super::RecordKind;
    use super::*;

    fn change(delta: &str) -> Change {
        Change {
            payment: payment("p", "10.00", true),
            refund: None,
            created: true,
            payment_created: true,
            delta: delta.parse().expect("delta"),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T09:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_credit_moves_the_balance_and_drafts_its_entry() {
        let acc = account("USD");
        let s = settle(&change("-10.00"), Some(acc.clone()), Channel::Orbipay, at()).expect("settled");
        let after = s.account.as_ref().expect("account");
        assert_eq!(after.posted_delta.to_string(), "-10.00");
        assert_eq!(s.balance_after().map(|b| b.to_string()).as_deref(), Some("490.00"));
        let entry = s.entry.expect("entry").numbered(1);
        assert_eq!(
            entry,
            JournalEntry {
                seq: 1,
                at: at(),
                channel: Channel::Orbipay,
                kind: RecordKind::Payment,
                record_id: "p".into(),
                account_number: "A".into(),
                status: "processed".into(),
                delta: "-10.00".parse().expect("delta"),
                balance_after: "490.00".parse().expect("balance"),
                origin: None,
            }
        );
    }

    #[test]
    fn deltas_add_up_over_successive_settlements() {
        let mut acc = account("USD");
        for (delta, balance) in [("-10.00", "490.00"), ("2.50", "492.50"), ("-0.01", "492.49")] {
            let s = settle(&change(delta), Some(acc.clone()), Channel::Empayre, at()).expect("settled");
            assert_eq!(
                s.entry.as_ref().expect("entry").entry().balance_after.to_string(),
                balance
            );
            acc = s.account.expect("account");
        }
        assert_eq!(acc.current_balance().to_string(), "492.49");
    }

    #[test]
    fn a_refund_is_journaled_as_the_refund() {
        let mut c = change("3.00");
        c.refund = Some(refund("r", "3.00", true, true));
        let s = settle(&c, Some(account("USD")), Channel::Orbipay, at()).expect("settled");
        let entry = s.entry.expect("entry").numbered(1);
        assert_eq!((entry.kind, entry.record_id.as_str()), (RecordKind::Refund, "r"));
        assert_eq!(entry.balance_after.to_string(), "503.00");
    }

    #[test]
    fn no_delta_needs_no_entry_and_leaves_the_account_alone() {
        let acc = account("USD");
        let s = settle(&change("0"), Some(acc.clone()), Channel::Orbipay, at()).expect("settled");
        assert_eq!(s.entry, None);
        assert_eq!(s.account.as_ref(), Some(&acc));
        let mut unmatched = change("0");
        unmatched.payment.account_number = None;
        let s = settle(&unmatched, None, Channel::Empayre, at()).expect("settled");
        assert_eq!(s.currency_exponent(), 2);
        assert_eq!((s.account, s.entry), (None, None));
    }

    #[test]
    fn a_delta_without_its_account_is_refused() {
        assert!(matches!(
            settle(&change("-1.00"), None, Channel::Orbipay, at()),
            Err(SettleError::NoAccount { .. })
        ));
        let mut other = account("USD");
        other.account_number = "B".into();
        assert!(matches!(
            settle(&change("-1.00"), Some(other), Channel::Orbipay, at()),
            Err(SettleError::WrongAccount { .. })
        ));
    }

    #[test]
    fn a_draft_takes_the_seq_it_is_given_and_the_chain_links_back() {
        let s = settle(&change("-1.00"), Some(account("USD")), Channel::Admin, at()).expect("settled");
        let entry = s.entry.expect("entry").numbered(42);
        assert_eq!((entry.seq, entry.channel), (42, Channel::Admin));
        let mut acc = s.account.expect("account");
        assert_eq!(link_chain(&mut acc, 7), None);
        assert_eq!(link_chain(&mut acc, 9), Some(7));
        assert_eq!(acc.last_journal_commit, Some(9));
    }
}
