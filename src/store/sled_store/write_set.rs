//! The writes of one commit, in the order they are made.

use super::keys::record_key;
use super::search_index::Facet;
use super::{codec, TreeId};
use crate::ledger::Record;
use crate::store::StoreError;

/// Writes to apply in one atomic sled transaction across trees.
#[derive(Default)]
pub(crate) struct WriteSet {
    pub(super) ops: Vec<(TreeId, Vec<u8>, Option<Vec<u8>>)>,
    /// What the search indexes need of each record put, in order: the commit derives their
    /// writes from these (`search_index::derive`).
    pub(super) records: Vec<Facet>,
}

impl WriteSet {
    pub(crate) fn put(&mut self, tree: TreeId, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), Some(value.into())));
    }

    pub(crate) fn put_json<T: serde::Serialize>(
        &mut self,
        tree: TreeId,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.put(tree, key, bytes);
        Ok(())
    }

    pub(crate) fn put_account(&mut self, account: &crate::domain::account::Account) {
        self.put(
            TreeId::Accounts,
            account.account_number.as_bytes(),
            codec::encode_account(account),
        );
    }

    pub(crate) fn put_profile(&mut self, profile: &crate::domain::account::Profile) {
        self.put(
            TreeId::Profiles,
            profile.customer_reference.as_bytes(),
            codec::encode_profile(profile),
        );
    }

    pub(crate) fn put_record(&mut self, record: &Record) {
        self.put(
            TreeId::Records,
            record_key(record.kind, &record.id),
            codec::encode_record(record),
        );
        self.records.push(Facet::of(record));
    }

    pub(crate) fn remove(&mut self, tree: TreeId, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
