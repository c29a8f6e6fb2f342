//! What an accounts import does to what is stored, decided without I/O (docs/operations.md, Accounts file):
//! a new account opens with its `current_balance`; an existing one keeps its live balance
//! unless the entry says `reset_balance`; a profile listed under several accounts is merged
//! (its data from the last entry that lists it, its accounts from all of them); a profile no
//! longer listed under an account loses the link to it.
//!
//! A backend loads the stored accounts of a chunk and the stored profiles `profiles_to_load`
//! names, calls `merge`, and writes what it returns.

use std::collections::HashMap;

use super::ImportSummary;
use crate::domain::account::{Account, AccountEntry, Profile};

/// What to write for one chunk of an import.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Every account of the chunk as it is to be stored.
    pub accounts: Vec<Account>,
    /// Every profile the chunk touches: the stored version (None for a new one) and the new.
    pub profiles: Vec<(Option<Profile>, Profile)>,
    pub summary: ImportSummary,
}

/// The profiles `merge` needs stored versions of: those the entries list, and those the stored
/// accounts list (which may lose their link).
pub fn profiles_to_load(chunk: &[AccountEntry], stored_accounts: &HashMap<String, Account>) -> Vec<String> {
    let mut refs: Vec<String> = chunk
        .iter()
        .flat_map(|e| e.profiles.iter().map(|p| p.customer_reference.clone()))
        .chain(
            stored_accounts
                .values()
                .flat_map(|a| a.customer_references.iter().cloned()),
        )
        .collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// Merges a chunk of validated entries into what is stored (see the module notes).
pub fn merge(
    chunk: &[AccountEntry],
    stored_accounts: &HashMap<String, Account>,
    stored_profiles: &HashMap<String, Profile>,
) -> Merged {
    let mut summary = ImportSummary::default();
    let mut accounts = Vec::with_capacity(chunk.len());
    // Profiles touched so far: stored version, merged version; in first-touched order.
    let mut profiles: Vec<(Option<Profile>, Profile)> = Vec::new();
    let mut slot_of: HashMap<String, usize> = HashMap::new();
    // The merged profile for `reference`, brought in from the stored ones the first time.
    fn slot<'p>(
        reference: &str,
        profiles: &'p mut Vec<(Option<Profile>, Profile)>,
        slot_of: &mut HashMap<String, usize>,
        stored: &HashMap<String, Profile>,
    ) -> Option<&'p mut Profile> {
        let index = match slot_of.get(reference) {
            Some(i) => *i,
            None => {
                let found = stored.get(reference)?;
                profiles.push((Some(found.clone()), found.clone()));
                slot_of.insert(reference.to_string(), profiles.len() - 1);
                profiles.len() - 1
            }
        };
        profiles.get_mut(index).map(|(_, merged)| merged)
    }
    for entry in chunk {
        let new = &entry.account;
        let mut account = new.clone();
        match stored_accounts.get(new.account_number.as_str()) {
            Some(old) => {
                summary.accounts_updated += 1;
                account.posted_delta = old.posted_delta;
                account.last_journal_commit = old.last_journal_commit;
                account.opening_balance = if entry.reset_balance {
                    new.opening_balance - old.posted_delta
                } else {
                    old.opening_balance
                };
                for gone in old
                    .customer_references
                    .iter()
                    .filter(|r| !new.customer_references.contains(r))
                {
                    if let Some(p) = slot(gone, &mut profiles, &mut slot_of, stored_profiles) {
                        p.account_numbers.retain(|a| a != &new.account_number);
                    }
                }
            }
            None => summary.accounts_created += 1,
        }
        accounts.push(account);
        for profile in &entry.profiles {
            match slot(
                &profile.customer_reference,
                &mut profiles,
                &mut slot_of,
                stored_profiles,
            ) {
                Some(merged) => {
                    let mut linked = std::mem::take(&mut merged.account_numbers);
                    if !linked.contains(&new.account_number) {
                        linked.push(new.account_number.clone());
                    }
                    *merged = profile.clone();
                    merged.account_numbers = linked;
                }
                None => {
                    slot_of.insert(profile.customer_reference.clone(), profiles.len());
                    profiles.push((None, profile.clone()));
                }
            }
        }
    }
    for (old, _) in &profiles {
        match old {
            Some(_) => summary.profiles_updated += 1,
            None => summary.profiles_created += 1,
        }
    }
    Merged {
        accounts,
        profiles,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::test_support::{account, profile};
    use rust_decimal::Decimal;

    fn entry(number: &str, balance: &str, refs: &[&str], reset: bool) -> AccountEntry {
        let mut a = account("USD");
        a.account_number = number.into();
        a.opening_balance = balance.parse().expect("amount");
        a.customer_references = refs.iter().map(|r| r.to_string()).collect();
        let profiles = refs
            .iter()
            .map(|r| {
                let mut p = profile();
                p.customer_reference = r.to_string();
                p.account_numbers = vec![number.into()];
                p.first_name = Some(format!("from {number}"));
                p
            })
            .collect();
        AccountEntry {
            account: a,
            profiles,
            reset_balance: reset,
        }
    }

    #[test]
    fn new_accounts_open_with_their_balance_and_profiles_merge_across_entries() {
        let chunk = [
            entry("A1", "10.00", &["C1"], false),
            entry("A2", "20.00", &["C1", "C2"], false),
        ];
        let m = merge(&chunk, &HashMap::new(), &HashMap::new());
        assert_eq!(m.summary.accounts_created, 2);
        assert_eq!(m.summary.profiles_created, 2);
        assert_eq!(m.accounts[0].opening_balance.to_string(), "10.00");
        let c1 = &m
            .profiles
            .iter()
            .find(|(_, p)| p.customer_reference == "C1")
            .expect("C1")
            .1;
        assert_eq!(c1.account_numbers, vec!["A1", "A2"]);
        assert_eq!(c1.first_name.as_deref(), Some("from A2"), "data of the last entry");
    }

    #[test]
    fn a_reimport_keeps_the_live_balance_unless_reset_and_unlinks_dropped_profiles() {
        let mut stored = account("USD");
        stored.account_number = "A1".into();
        stored.opening_balance = Decimal::new(10000, 2);
        stored.posted_delta = Decimal::new(-2500, 2);
        stored.customer_references = vec!["C1".into(), "C2".into()];
        let mut c2 = profile();
        c2.customer_reference = "C2".into();
        c2.account_numbers = vec!["A1".into(), "A9".into()];
        let accounts = HashMap::from([("A1".to_string(), stored)]);
        let profiles = HashMap::from([("C2".to_string(), c2)]);
        let chunk = [entry("A1", "500.00", &["C1"], false)];
        assert_eq!(profiles_to_load(&chunk, &accounts), vec!["C1", "C2"]);

        let kept = merge(&chunk, &accounts, &profiles);
        assert_eq!(kept.summary.accounts_updated, 1);
        let a = &kept.accounts[0];
        assert_eq!(a.current_balance().to_string(), "75.00", "live balance kept");
        let c2 = kept
            .profiles
            .iter()
            .find(|(_, p)| p.customer_reference == "C2")
            .expect("C2");
        assert!(c2.0.is_some());
        assert_eq!(c2.1.account_numbers, vec!["A9"], "unlinked from A1 only");
        assert_eq!((kept.summary.profiles_created, kept.summary.profiles_updated), (1, 1));

        let reset = merge(&[entry("A1", "500.00", &["C1"], true)], &accounts, &profiles);
        let a = &reset.accounts[0];
        assert_eq!(a.current_balance().to_string(), "500.00", "reset to the file's balance");
        assert_eq!(a.posted_delta.to_string(), "-25.00", "what was posted is kept");
    }
}
