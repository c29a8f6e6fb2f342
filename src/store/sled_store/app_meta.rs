//! Small values the application keeps by name outside the ledger (`Backend::meta`).

use super::{SledStore, TreeId};
use crate::store::StoreError;

/// Where application values start among the `meta` keys (the rest are the store's own marks).
pub(super) const PREFIX: &[u8] = b"app/";

/// The `meta` key of an application value (`Backend::meta`).
fn app_meta_key(key: &str) -> Vec<u8> {
    [PREFIX, key.as_bytes()].concat()
}

impl SledStore {
    /// A value the application keeps under `key` (see `Backend::meta`). Kept in the `meta` tree
    /// under a prefix of its own, apart from the store's internal marks.
    pub(crate) fn app_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self
            .tree(TreeId::Meta)?
            .get(app_meta_key(key))
            .map_err(|e| self.failure(e))?;
        Ok(found.map(|v| v.to_vec()))
    }

    /// Writes it outside the commit log (it is no ledger data); the caller awaits `durable`.
    pub(crate) fn put_app_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.tree(TreeId::Meta)?
            .insert(app_meta_key(key), value)
            .map_err(|e| self.failure(e))?;
        Ok(())
    }
}
