//! Empayre's part of the store: every verified body in arrival order, the `(source, eventID)`
//! dedup index, quarantine, invoice snapshots and unmatched payments.

use serde_json::Value;

use super::{codec, decode, log, order_preserving_i64, SledStore, StoreError, TreeId, Writer};
use crate::store::query::EventFilter;
use crate::store::StoredEvent;

pub(super) fn event_id_key(source: &str, event_id: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 9);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(&order_preserving_i64(event_id));
    key
}

pub(super) fn invoice_key(source: &str, invoice_id: &str) -> Vec<u8> {
    let mut key = b"invoice\0".to_vec();
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(invoice_id.as_bytes());
    key
}

impl SledStore {
    /// Whether `(source, eventID)` was stored before.
    pub(super) fn event_seen(&self, source: &str, event_id: i64) -> Result<bool, StoreError> {
        Ok(self
            .tree(TreeId::EventIds)?
            .contains_key(event_id_key(source, event_id))?)
    }

    pub(super) fn invoice_snapshot(&self, source: &str, invoice_id: &str) -> Result<Option<Value>, StoreError> {
        self.get_json(TreeId::Entities, &invoice_key(source, invoice_id))
    }
}

impl Writer<'_> {
    /// Stages a verified body under its seq (the seq of the commit that will hold it); its
    /// `(source, eventID)` goes into the duplicate index with it.
    pub(super) fn stage_event(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        let seq = event.seq.to_be_bytes();
        self.staged_mut().put(TreeId::Events, seq, codec::encode_event(event));
        if let Some(id) = event.event_id {
            self.staged_mut()
                .put(TreeId::EventIds, event_id_key(&event.source, id), seq.to_vec());
        }
        if event.status == "quarantined" {
            self.staged_mut().put(TreeId::Quarantine, seq.to_vec(), Vec::new());
        }
        Ok(())
    }

    pub(super) fn stage_invoice_snapshot(
        &mut self,
        source: &str,
        invoice_id: &str,
        snapshot: &Value,
    ) -> Result<(), StoreError> {
        self.staged_mut()
            .put_json(TreeId::Entities, invoice_key(source, invoice_id), snapshot)
    }

    pub(super) fn stage_unmatched(&mut self, record_id: &str, item: &Value) -> Result<(), StoreError> {
        self.staged_mut()
            .put_json(TreeId::Unmatched, record_id.as_bytes(), item)
    }

    pub(super) fn stage_matched(&mut self, record_id: &str) {
        self.staged_mut().remove(TreeId::Unmatched, record_id.as_bytes());
    }
}

/// The stored event a commit log entry holds, if any.
fn event_in(entry: &[u8]) -> Result<Option<StoredEvent>, StoreError> {
    if log::header(entry)?.flags & log::HAS_EVENT == 0 {
        return Ok(None);
    }
    log::value_in(entry, TreeId::Events)?
        .map(codec::decode_event)
        .transpose()
}

impl SledStore {
    /// Stored events, newest first: a walk back through the commit log over the entries that
    /// hold an event (the header says so without decoding the rest).
    pub(crate) fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let tree = self.tree(TreeId::Log)?;
        let iter = match filter.before {
            Some(b) => tree.range(..log::key(b)),
            None => tree.range::<&[u8], _>(..),
        };
        let mut out = Vec::new();
        for item in iter.rev() {
            let (_, entry) = item?;
            let Some(event) = event_in(&entry)? else {
                continue;
            };
            if filter
                .invoice_id
                .as_ref()
                .is_some_and(|i| event.invoice_id.as_ref() != Some(i))
            {
                continue;
            }
            if filter.status.as_ref().is_some_and(|s| &event.status != s) {
                continue;
            }
            out.push(event);
            if out.len() >= filter.limit {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) fn event(&self, source: &str, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let Some(seq) = self.tree(TreeId::EventIds)?.get(event_id_key(source, event_id))? else {
            return Ok(None);
        };
        self.event_at(&seq)
    }

    /// The event stored by the commit with this seq (its key bytes).
    fn event_at(&self, seq: &[u8]) -> Result<Option<StoredEvent>, StoreError> {
        match self.tree(TreeId::Log)?.get(seq)? {
            Some(entry) => event_in(&entry),
            None => Ok(None),
        }
    }

    pub(crate) fn quarantined(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree(TreeId::Quarantine)?.iter().rev().take(limit) {
            let (seq, _) = item?;
            if let Some(event) = self.event_at(&seq)? {
                out.push(event);
            }
        }
        Ok(out)
    }

    pub(crate) fn unmatched(&self) -> Result<Vec<Value>, StoreError> {
        let mut items: Vec<Value> = self
            .tree(TreeId::Unmatched)?
            .iter()
            .map(|item| {
                let (_, v) = item?;
                decode(&v)
            })
            .collect::<Result<_, _>>()?;
        items.sort_by(|a, b| b["received_at"].as_str().cmp(&a["received_at"].as_str()));
        Ok(items)
    }
}
