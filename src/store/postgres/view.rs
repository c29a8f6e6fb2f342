//! What the decisions of one batch read: the rows the batch locked and loaded, plus what the
//! decisions before them in the same batch wrote (two postings on one account in one batch
//! see each other). Only keys the batch loaded can be answered; any other read is noted as a
//! miss and answered `Conflict`, and the batch starts again with the key added.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::domain::account::{Account, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{Record, RecordKind};
use crate::store::{Keys, StoreError, View};

/// The batch's state: every loaded key maps to what is stored (None: loaded, absent).
#[derive(Default)]
pub struct BatchState {
    pub records: HashMap<(RecordKind, String), Option<Record>>,
    pub accounts: HashMap<AccountNumber, Option<Account>>,
    pub profiles: HashMap<String, Option<Profile>>,
    pub events_seen: HashMap<(String, i64), bool>,
    pub invoices: HashMap<(String, String), Option<Value>>,
    /// Records that did not exist when the batch loaded them: written with an insert that
    /// fails if another writer stored them meanwhile.
    pub absent_at_load: HashSet<(RecordKind, String)>,
}

/// Reference numbers this replica holds: blocks of the database sequence, each `[next, end)`.
/// Every replica takes its own blocks, so numbers are unique across replicas; a restart
/// leaves the rest of a block unused.
#[derive(Debug, Default)]
pub struct ReferenceBlock {
    blocks: std::collections::VecDeque<(u64, u64)>,
}

impl ReferenceBlock {
    pub fn available(&self) -> u64 {
        self.blocks.iter().map(|(next, end)| end - next).sum()
    }

    pub fn add_block(&mut self, start: u64, size: u64) {
        self.blocks.push_back((start, start + size));
    }

    fn take(&mut self) -> Option<u64> {
        while let Some((next, end)) = self.blocks.front_mut() {
            if next < end {
                let n = *next;
                *next += 1;
                return Some(n);
            }
            self.blocks.pop_front();
        }
        None
    }
}

/// The `View` one decision gets.
pub struct BatchView<'a> {
    pub state: &'a BatchState,
    pub misses: &'a RefCell<Keys>,
    pub references: &'a RefCell<ReferenceBlock>,
}

impl BatchView<'_> {
    fn miss(&self, note: impl FnOnce(&mut Keys)) -> StoreError {
        note(&mut self.misses.borrow_mut());
        StoreError::Conflict("a key the batch had not loaded; loading it and deciding again".into())
    }
}

impl View for BatchView<'_> {
    fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        match self.state.records.get(&(kind, id.to_string())) {
            Some(found) => Ok(found.clone()),
            None => Err(self.miss(|k| k.records.push((kind, id.to_string())))),
        }
    }

    fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError> {
        match self.state.accounts.get(number) {
            Some(found) => Ok(found.clone()),
            None => Err(self.miss(|k| k.accounts.push(number.clone()))),
        }
    }

    fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        match self.state.profiles.get(customer_reference) {
            Some(found) => Ok(found.clone()),
            None => Err(self.miss(|k| k.profiles.push(customer_reference.to_string()))),
        }
    }

    fn event_seen(&self, source: &str, event_id: i64) -> Result<bool, StoreError> {
        match self.state.events_seen.get(&(source.to_string(), event_id)) {
            Some(seen) => Ok(*seen),
            None => Err(self.miss(|k| k.events.push((source.to_string(), event_id)))),
        }
    }

    fn invoice(&self, source: &str, invoice_id: &str) -> Result<Option<Value>, StoreError> {
        match self.state.invoices.get(&(source.to_string(), invoice_id.to_string())) {
            Some(found) => Ok(found.clone()),
            None => Err(self.miss(|k| k.invoices.push((source.to_string(), invoice_id.to_string())))),
        }
    }

    fn fresh_reference(&self, prefix: char) -> Result<String, StoreError> {
        match self.references.borrow_mut().take() {
            Some(n) => Ok(format!("{prefix}{n:012}")),
            // The writer tops the blocks up before every batch, one number per decision;
            // running dry means a decision took more than one. Starting again refills them.
            None => Err(StoreError::Conflict("out of reference numbers; refilling".into())),
        }
    }
}
