//! Accounts and profiles: upsert from the accounts file, and the lookup indexes.

use std::collections::{BTreeSet, HashMap};

use super::{codec, index_key, SledStore, StoreError, TreeId, WriteSet};
use crate::domain::account::{Account, AccountEntry, Profile};
use crate::store::query::{ImportSummary, LookupCriteria, LookupMatch};

/// How many entries go into one transaction during an import: large enough to amortise the
/// transaction, small enough to keep memory flat for a million accounts.
const IMPORT_CHUNK: usize = 2_000;

impl SledStore {
    pub(crate) fn account(&self, number: &str) -> Result<Option<Account>, StoreError> {
        match self.tree(TreeId::Accounts)?.get(number.as_bytes())? {
            None => Ok(None),
            Some(bytes) => codec::decode_account(&bytes).map(Some),
        }
    }

    pub(crate) fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        match self.tree(TreeId::Profiles)?.get(customer_reference.as_bytes())? {
            None => Ok(None),
            Some(bytes) => codec::decode_profile(&bytes).map(Some),
        }
    }

    pub(crate) fn has_accounts(&self) -> Result<bool, StoreError> {
        Ok(!self.tree(TreeId::Accounts)?.is_empty())
    }

    /// Upserts validated entries (the caller validated the whole file first, so a bad entry
    /// never gets here). Balances: a new account opens with its `current_balance`; an existing
    /// one keeps its live balance unless `reset_balance` is set. Runs as the single writer, so it
    /// never interleaves with a posting.
    pub(crate) fn import_accounts(&self, entries: &[AccountEntry]) -> Result<ImportSummary, StoreError> {
        self.write(|w| {
            let mut summary = ImportSummary::default();
            for chunk in entries.chunks(IMPORT_CHUNK) {
                let set = self.import_chunk(chunk, &mut summary)?;
                w.commit_bulk(set)?;
            }
            Ok::<_, StoreError>(summary)
        })
    }

    fn import_chunk(&self, chunk: &[AccountEntry], summary: &mut ImportSummary) -> Result<WriteSet, StoreError> {
        let mut set = WriteSet::default();
        // Profiles touched by this chunk, merged: stored state first, then each entry in order.
        let mut profiles: HashMap<String, (Option<Profile>, Profile)> = HashMap::new();
        for entry in chunk {
            let new = &entry.account;
            let stored = self.account(&new.account_number)?;
            let mut account = new.clone();
            match &stored {
                Some(old) => {
                    summary.accounts_updated += 1;
                    account.posted_delta = old.posted_delta;
                    account.last_journal_commit = old.last_journal_commit;
                    account.opening_balance = if entry.reset_balance {
                        new.opening_balance - old.posted_delta
                    } else {
                        old.opening_balance
                    };
                    // Profiles no longer listed under this account lose the link.
                    for gone in old
                        .customer_references
                        .iter()
                        .filter(|r| !new.customer_references.contains(r))
                    {
                        let slot = self.profile_slot(&mut profiles, gone)?;
                        if let Some((_, p)) = slot {
                            p.account_numbers.retain(|a| a != &new.account_number);
                        }
                    }
                }
                None => summary.accounts_created += 1,
            }
            set.put_account(&account);
            for profile in &entry.profiles {
                match self.profile_slot(&mut profiles, &profile.customer_reference)? {
                    Some((_, merged)) => {
                        let mut accounts = std::mem::take(&mut merged.account_numbers);
                        if !accounts.contains(&new.account_number) {
                            accounts.push(new.account_number.clone());
                        }
                        *merged = profile.clone();
                        merged.account_numbers = accounts;
                    }
                    None => {
                        profiles.insert(profile.customer_reference.clone(), (None, profile.clone()));
                    }
                }
            }
        }
        for (old, new) in profiles.into_values() {
            match &old {
                Some(old) => {
                    summary.profiles_updated += 1;
                    remove_indexes(&mut set, old);
                }
                None => summary.profiles_created += 1,
            }
            add_indexes(&mut set, &new);
            set.put_profile(&new);
        }
        Ok(set)
    }

    /// The merged profile for `reference` in this chunk, loading it from the store the first
    /// time. None when it exists nowhere yet.
    fn profile_slot<'m>(
        &self,
        profiles: &'m mut HashMap<String, (Option<Profile>, Profile)>,
        reference: &str,
    ) -> Result<Option<&'m mut (Option<Profile>, Profile)>, StoreError> {
        if !profiles.contains_key(reference) {
            match self.profile(reference)? {
                Some(stored) => {
                    profiles.insert(reference.to_string(), (Some(stored.clone()), stored));
                }
                None => return Ok(None),
            }
        }
        Ok(profiles.get_mut(reference))
    }

    /// Profiles matching every customer-level criterion given (AND), then narrowed by account.
    /// Returns the matches (at most `max`, ordered by customer_reference) and the total count.
    pub(crate) fn lookup(
        &self,
        criteria: &LookupCriteria,
        max: usize,
    ) -> Result<(Vec<LookupMatch>, usize), StoreError> {
        let mut candidates: Option<BTreeSet<String>> = None;
        let mut narrow = |found: BTreeSet<String>| {
            candidates = Some(match candidates.take() {
                None => found,
                Some(prev) => prev.intersection(&found).cloned().collect(),
            });
        };
        if let Some(r) = &criteria.customer_reference {
            narrow(if self.tree(TreeId::Profiles)?.contains_key(r.as_bytes())? {
                BTreeSet::from([r.clone()])
            } else {
                BTreeSet::new()
            });
        }
        if let Some(email) = &criteria.email {
            narrow(self.index_scan(TreeId::IdxEmail, &email.to_lowercase())?);
        }
        if let Some(digest) = &criteria.ssn_sha256 {
            narrow(self.index_scan(TreeId::IdxSsn, digest)?);
        }
        if let Some(r) = &criteria.lookup_reference {
            narrow(self.index_scan(TreeId::IdxLookupRef, r)?);
        }
        let only_account = match &criteria.account_number {
            Some(number) => match self.account(number)? {
                Some(account) => {
                    let linked: BTreeSet<String> = account.customer_references.iter().cloned().collect();
                    narrow(linked);
                    Some(account)
                }
                None => return Ok((Vec::new(), 0)),
            },
            None => None,
        };
        let references = candidates.unwrap_or_default();
        let total = references.len();
        let mut matches = Vec::new();
        for reference in references.into_iter().take(max) {
            let Some(profile) = self.profile(&reference)? else {
                continue;
            };
            let accounts = match &only_account {
                Some(a) => vec![a.clone()],
                None => {
                    let mut list = Vec::with_capacity(profile.account_numbers.len());
                    for n in &profile.account_numbers {
                        if let Some(a) = self.account(n)? {
                            list.push(a);
                        }
                    }
                    list
                }
            };
            matches.push(LookupMatch { profile, accounts });
        }
        Ok((matches, total))
    }

    fn index_scan(&self, tree: TreeId, value: &str) -> Result<BTreeSet<String>, StoreError> {
        let prefix = index_key(value, "");
        let mut out = BTreeSet::new();
        for item in self.tree(tree)?.scan_prefix(&prefix) {
            let (k, _) = item?;
            let reference = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.insert(reference);
        }
        Ok(out)
    }

    /// Sums of journal deltas per account: what the ledger says each balance moved by.
    #[cfg(test)]
    pub(crate) fn journal_sums(
        &self,
    ) -> Result<std::collections::BTreeMap<crate::domain::AccountNumber, rust_decimal::Decimal>, StoreError> {
        let mut sums = std::collections::BTreeMap::new();
        for item in self.tree(TreeId::Log)?.iter() {
            let (_, v) = item?;
            if let Some(bytes) = super::log::value_in(&v, TreeId::Journal)? {
                let entry = codec::decode_journal(bytes)?;
                *sums.entry(entry.account_number).or_default() += entry.delta;
            }
        }
        Ok(sums)
    }
}

fn add_indexes(set: &mut WriteSet, p: &Profile) {
    for (tree, key) in index_entries(p) {
        set.put(tree, key, Vec::new());
    }
}

fn remove_indexes(set: &mut WriteSet, p: &Profile) {
    for (tree, key) in index_entries(p) {
        set.remove(tree, key);
    }
}

fn index_entries(p: &Profile) -> Vec<(TreeId, Vec<u8>)> {
    let mut out = Vec::with_capacity(3);
    if let Some(email) = &p.email {
        out.push((
            TreeId::IdxEmail,
            index_key(&email.to_lowercase(), &p.customer_reference),
        ));
    }
    if let Some(digest) = &p.ssn_sha256 {
        out.push((TreeId::IdxSsn, index_key(digest, &p.customer_reference)));
    }
    if let Some(r) = &p.lookup_reference {
        out.push((TreeId::IdxLookupRef, index_key(r, &p.customer_reference)));
    }
    out
}
