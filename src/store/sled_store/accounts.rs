//! Accounts and profiles: upsert from the accounts file, and the lookup indexes.

use std::collections::{BTreeSet, HashMap};

use super::{codec, index_key, SledStore, StoreError, TreeId, WriteSet};
use crate::domain::account::{Account, AccountEntry, Profile};
use crate::store::import_merge;
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

    /// One chunk through the import's merge rule (`store::import_merge`, which PostgreSQL's
    /// import uses too): read what it needs from the store, merge, and stage the result with
    /// the profiles' lookup indexes.
    fn import_chunk(&self, chunk: &[AccountEntry], summary: &mut ImportSummary) -> Result<WriteSet, StoreError> {
        let mut stored_accounts: HashMap<String, Account> = HashMap::new();
        for entry in chunk {
            let number = &entry.account.account_number;
            if !stored_accounts.contains_key(number.as_str()) {
                if let Some(stored) = self.account(number)? {
                    stored_accounts.insert(number.to_string(), stored);
                }
            }
        }
        let mut stored_profiles: HashMap<String, Profile> = HashMap::new();
        for reference in import_merge::profiles_to_load(chunk, &stored_accounts) {
            if let Some(stored) = self.profile(&reference)? {
                stored_profiles.insert(reference, stored);
            }
        }
        let merged = import_merge::merge(chunk, &stored_accounts, &stored_profiles);
        let mut set = WriteSet::default();
        for account in &merged.accounts {
            set.put_account(account);
        }
        for (old, new) in &merged.profiles {
            if let Some(old) = old {
                remove_indexes(&mut set, old);
            }
            add_indexes(&mut set, new);
            set.put_profile(new);
        }
        summary.add(&merged.summary);
        Ok(set)
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
