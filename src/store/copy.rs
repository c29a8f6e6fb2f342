//! Copying a whole store into another backend (`biller-inbox store copy`, docs/postgres.md):
//! what crosses, as backend-neutral batches the source reads and the target writes, and the
//! tally both sides are compared by before the target commits.
//!
//! The tally is counted on each side from its own data: the source while it reads (sled: its
//! trees and its commit log), the target afterwards with its own queries over what it wrote. So
//! a row lost, doubled or changed on the way (a numeric rounded, a batch dropped) shows as a
//! difference, and the target does not commit.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::account::{Account, Profile};
use crate::ledger::{JournalEntry, Record};
use crate::store::StoredEvent;

/// Items of one kind, in the order the target should store them.
#[derive(Debug)]
pub enum Batch {
    Accounts(Vec<Account>),
    Profiles(Vec<Profile>),
    /// Every payment and refund of both channels, with its status history.
    Records(Vec<Record>),
    /// In seq order, seqs kept.
    Journal(Vec<JournalEntry>),
    /// Verified Empayre bodies (stored and quarantined) in arrival order, seqs kept.
    Events(Vec<StoredEvent>),
    /// Stored copies of accepted EBPP postings, oldest first.
    Accepted(Vec<Value>),
    /// Empayre invoice snapshots: (source, invoice id, snapshot).
    Invoices(Vec<(String, String, Value)>),
    /// Empayre payments without an account: (key, item).
    Unmatched(Vec<(String, Value)>),
    /// The request log of refused requests, oldest first.
    Rejections(Vec<Value>),
    /// The application's named values (`Backend::meta`): the reconciliation cursor and runs.
    Meta(Vec<(String, Vec<u8>)>),
}

impl Batch {
    /// What the progress line calls these items.
    pub fn label(&self) -> &'static str {
        match self {
            Batch::Accounts(_) => "accounts",
            Batch::Profiles(_) => "profiles",
            Batch::Records(_) => "records",
            Batch::Journal(_) => "journal entries",
            Batch::Events(_) => "Empayre events",
            Batch::Accepted(_) => "accepted posting copies",
            Batch::Invoices(_) => "invoice snapshots",
            Batch::Unmatched(_) => "unmatched payments",
            Batch::Rejections(_) => "request-log entries",
            Batch::Meta(_) => "meta values",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Batch::Accounts(v) => v.len(),
            Batch::Profiles(v) => v.len(),
            Batch::Records(v) => v.len(),
            Batch::Journal(v) => v.len(),
            Batch::Events(v) => v.len(),
            Batch::Accepted(v) => v.len(),
            Batch::Invoices(v) => v.len(),
            Batch::Unmatched(v) => v.len(),
            Batch::Rejections(v) => v.len(),
            Batch::Meta(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every account's balance, summed up so that two sides can be compared without sending the
/// list: a digest of each (account number, currency, balance) added up (so the order of
/// reading does not matter), and the total per currency for people to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balances {
    checksum: u128,
    pub per_currency: BTreeMap<String, Decimal>,
}

impl Balances {
    pub fn add(&mut self, account_number: &str, currency: &str, balance: Decimal) {
        let balance = balance.normalize();
        let mut hasher = Sha256::new();
        hasher.update(account_number.as_bytes());
        hasher.update([0]);
        hasher.update(currency.as_bytes());
        hasher.update([0]);
        hasher.update(balance.to_string().as_bytes());
        let digest = hasher.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.checksum = self.checksum.wrapping_add(u128::from_be_bytes(first));
        let total = self.per_currency.entry(currency.to_string()).or_default();
        *total = (*total + balance).normalize();
    }

    pub fn checksum_hex(&self) -> String {
        format!("{:032x}", self.checksum)
    }
}

/// What one side holds, in the terms both sides can count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub accounts: u64,
    pub profiles: u64,
    /// By record kind (`payment`, `refund`, `empayre-payment`, `empayre-refund`).
    pub records: BTreeMap<String, u64>,
    pub journal_entries: u64,
    /// The journal's last seq as the store itself keeps it (sled: the commit log's last header;
    /// PostgreSQL: the `journal_head` counter).
    pub journal_head: u64,
    /// The highest seq among the journal entries.
    pub journal_last_seq: u64,
    /// Σ delta over the journal.
    pub journal_delta_sum: Decimal,
    /// By status (`stored`, `quarantined`).
    pub events: BTreeMap<String, u64>,
    pub accepted: u64,
    pub invoices: u64,
    pub unmatched: u64,
    pub rejections: u64,
    pub meta: u64,
    pub balances: Balances,
}

impl Tally {
    pub fn add_account(&mut self, a: &Account) {
        self.accounts += 1;
        self.balances.add(&a.account_number, &a.currency, a.current_balance());
    }

    pub fn add_journal_entry(&mut self, e: &JournalEntry) {
        self.journal_entries += 1;
        self.journal_last_seq = self.journal_last_seq.max(e.seq);
        self.journal_delta_sum = (self.journal_delta_sum + e.delta).normalize();
    }

    /// Every compared figure, named, in a fixed order.
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("accounts".to_string(), self.accounts.to_string()),
            ("profiles".to_string(), self.profiles.to_string()),
        ];
        for (kind, n) in &self.records {
            out.push((format!("records {kind}"), n.to_string()));
        }
        out.push(("journal entries".into(), self.journal_entries.to_string()));
        out.push(("journal last seq".into(), self.journal_last_seq.to_string()));
        out.push(("journal head".into(), self.journal_head.to_string()));
        out.push((
            "journal sum of deltas".into(),
            self.journal_delta_sum.normalize().to_string(),
        ));
        for (status, n) in &self.events {
            out.push((format!("Empayre events {status}"), n.to_string()));
        }
        out.push(("accepted posting copies".into(), self.accepted.to_string()));
        out.push(("invoice snapshots".into(), self.invoices.to_string()));
        out.push(("unmatched payments".into(), self.unmatched.to_string()));
        out.push(("request-log entries".into(), self.rejections.to_string()));
        out.push(("meta values".into(), self.meta.to_string()));
        out.push(("balances checksum".into(), self.balances.checksum_hex()));
        for (currency, total) in &self.balances.per_currency {
            out.push((format!("balances total {currency}"), total.to_string()));
        }
        out
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    pub name: String,
    pub source: String,
    pub target: String,
}

impl Compared {
    pub fn matches(&self) -> bool {
        self.source == self.target
    }
}

/// Source and target side by side: every figure either side has (a kind only one side has
/// shows as `-` on the other, and differs).
pub fn compare(source: &Tally, target: &Tally) -> Vec<Compared> {
    let source_lines = source.lines();
    let target_lines: BTreeMap<String, String> = target.lines().into_iter().collect();
    let mut out: Vec<Compared> = source_lines
        .iter()
        .map(|(name, value)| Compared {
            name: name.clone(),
            source: value.clone(),
            target: target_lines.get(name).cloned().unwrap_or_else(|| "-".into()),
        })
        .collect();
    for (name, value) in target.lines() {
        if !source_lines.iter().any(|(n, _)| *n == name) {
            out.push(Compared {
                name,
                source: "-".into(),
                target: value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    #[test]
    fn the_balance_checksum_ignores_order_and_scale_but_not_a_cent() {
        let mut a = Balances::default();
        a.add("A1", "USD", d("10.50"));
        a.add("A2", "USD", d("3"));
        let mut b = Balances::default();
        b.add("A2", "USD", d("3.00"));
        b.add("A1", "USD", d("10.5"));
        assert_eq!(a, b);
        let mut c = Balances::default();
        c.add("A1", "USD", d("10.51"));
        c.add("A2", "USD", d("3"));
        assert_ne!(a.checksum_hex(), c.checksum_hex());
        // Moving a cent between accounts keeps the total but not the checksum.
        let mut moved = Balances::default();
        moved.add("A1", "USD", d("10.49"));
        moved.add("A2", "USD", d("3.01"));
        assert_eq!(a.per_currency, moved.per_currency);
        assert_ne!(a.checksum_hex(), moved.checksum_hex());
    }

    #[test]
    fn a_kind_only_one_side_has_is_a_difference() {
        let mut source = Tally::default();
        source.records.insert("payment".into(), 2);
        let mut target = Tally::default();
        target.records.insert("refund".into(), 2);
        let rows = compare(&source, &target);
        let payment = rows.iter().find(|r| r.name == "records payment").expect("row");
        assert_eq!((payment.source.as_str(), payment.target.as_str()), ("2", "-"));
        let refund = rows.iter().find(|r| r.name == "records refund").expect("row");
        assert_eq!((refund.source.as_str(), refund.target.as_str()), ("-", "2"));
        assert!(!payment.matches() && !refund.matches());
        assert!(compare(&source, &source).iter().all(Compared::matches));
    }
}
