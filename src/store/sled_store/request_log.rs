//! The request log of refused requests: bounded, newest kept.

use std::sync::atomic::Ordering;

use super::keys::decode;
use super::{SledStore, TreeId};
use crate::store::{StoreError, REJECTIONS_KEPT};

impl SledStore {
    /// Appends a request-log entry for a rejected request. It rides on the next flush: the
    /// answer does not wait for it, since nothing about money depends on it.
    ///
    /// Anyone can be refused, credentials or not, so the log is bounded: it keeps the newest
    /// `REJECTIONS_KEPT` entries and drops the oldest, and refused requests cannot fill the disk.
    pub(crate) fn log_rejection(&self, entry: &serde_json::Value) -> Result<(), StoreError> {
        let id = self.next_id()?;
        let bytes = serde_json::to_vec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tree = self.tree(TreeId::Rejections)?;
        tree.insert(id.to_be_bytes(), bytes).map_err(|e| self.failure(e))?;
        if self.shared.rejections_logged.fetch_add(1, Ordering::AcqRel) >= REJECTIONS_KEPT {
            tree.pop_min().map_err(|e| self.failure(e))?;
            self.shared.rejections_logged.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The newest rejections first.
    pub(crate) fn recent_rejections(&self, limit: usize) -> Result<Vec<serde_json::Value>, StoreError> {
        self.tree(TreeId::Rejections)?
            .iter()
            .rev()
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                decode(&v)
            })
            .collect()
    }
}
