//! What the demo accounts' balances must be, and checks of the journal against them.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{repo_text, TestApp};

/// The opening balances of the demo accounts, read from the fixture the server was seeded with.
pub fn demo_opening_balances() -> BTreeMap<String, Decimal> {
    let text = repo_text("fixtures/accounts.json");
    let accounts: Vec<Value> = serde_json::from_str(&text).expect("json");
    accounts
        .iter()
        .map(|a| {
            (
                a["account_number"].as_str().expect("number").to_string(),
                a["current_balance"]
                    .as_str()
                    .expect("balance")
                    .parse()
                    .expect("decimal"),
            )
        })
        .collect()
}

/// The test's own model of the ledger: what each account's balance must be after the postings
/// the test made, per `balance = opening − Σ live payments + Σ live refunds of live payments`.
pub struct LedgerModel {
    pub expected: BTreeMap<String, Decimal>,
}

impl LedgerModel {
    pub fn demo() -> Self {
        Self {
            expected: demo_opening_balances(),
        }
    }

    pub fn credit(&mut self, account: &str, amount: &str) {
        *self.expected.get_mut(account).expect("known account") -= amount.parse::<Decimal>().expect("decimal");
    }

    pub fn debit(&mut self, account: &str, amount: &str) {
        *self.expected.get_mut(account).expect("known account") += amount.parse::<Decimal>().expect("decimal");
    }

    /// Every account's live balance equals the model (the ledger invariant).
    pub async fn assert_holds(&self, app: &TestApp) {
        for (account, want) in &self.expected {
            assert_eq!(app.balance(account).await, *want, "balance of {account}");
        }
    }
}

/// The journal's contract on a whole journal: seq 1..N without gaps, and per account the deltas
/// add up to balance − opening. Returns Σ delta per account.
pub fn assert_journal_consistent(
    journal: &[Value],
    opening: &BTreeMap<String, Decimal>,
    balances: &BTreeMap<String, Decimal>,
) -> BTreeMap<String, Decimal> {
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for (i, e) in journal.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(i as u64 + 1),
            "journal seq gap or disorder at {e}"
        );
        let account = e["account_number"].as_str().expect("account_number");
        let delta: Decimal = e["delta"].as_str().expect("delta").parse().expect("decimal");
        *sums.entry(account.to_string()).or_default() += delta;
    }
    for (account, open) in opening {
        let sum = sums.get(account).copied().unwrap_or_default();
        assert_eq!(
            balances[account] - open,
            sum,
            "{account}: balance − opening must equal the journal's deltas"
        );
    }
    sums
}
