//! Reading a whole sled store out for `store copy` (see `store::copy`): every tree that holds
//! ledger data, and the commit log for what lives only there (the journal, the stored Empayre
//! events, the accepted posting copies).
//!
//! What stays behind is sled's own machinery, which the target rebuilds or does not need: the
//! commit log itself, the per-account journal chain, the lookup and time indexes, the
//! per-minute counts and the store's internal marks (`meta` keys outside `app/`).

use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{codec, decode, log, SledStore, StoreError, TreeId};
use crate::store::copy::{Batch, Tally};

/// Collects items of one kind and hands them on in batches.
struct Batcher<T> {
    items: Vec<T>,
    size: usize,
    wrap: fn(Vec<T>) -> Batch,
}

impl<T> Batcher<T> {
    fn new(size: usize, wrap: fn(Vec<T>) -> Batch) -> Self {
        Self {
            items: Vec::with_capacity(size.min(1024)),
            size,
            wrap,
        }
    }

    fn push(&mut self, item: T, send: &mut dyn FnMut(Batch) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.items.push(item);
        if self.items.len() >= self.size {
            self.flush(send)?;
        }
        Ok(())
    }

    fn flush(&mut self, send: &mut dyn FnMut(Batch) -> Result<(), StoreError>) -> Result<(), StoreError> {
        if self.items.is_empty() {
            return Ok(());
        }
        send((self.wrap)(std::mem::take(&mut self.items)))
    }
}

impl SledStore {
    /// Hands every item of the store to `send`, kind after kind, in batches of at most
    /// `batch_size`, and returns the tally of what it read. For a store this process opened
    /// alone (offline): sled's lock on the directory keeps a server out meanwhile.
    pub fn dump(
        &self,
        batch_size: usize,
        send: &mut dyn FnMut(Batch) -> Result<(), StoreError>,
    ) -> Result<Tally, StoreError> {
        let batch_size = batch_size.max(1);
        let mut tally = Tally::default();

        let mut accounts = Batcher::new(batch_size, Batch::Accounts);
        for item in self.tree(TreeId::Accounts)?.iter() {
            let (_, bytes) = item?;
            let account = codec::decode_account(&bytes)?;
            tally.add_account(&account);
            accounts.push(account, send)?;
        }
        accounts.flush(send)?;

        let mut profiles = Batcher::new(batch_size, Batch::Profiles);
        for item in self.tree(TreeId::Profiles)?.iter() {
            let (_, bytes) = item?;
            tally.profiles += 1;
            profiles.push(codec::decode_profile(&bytes)?, send)?;
        }
        profiles.flush(send)?;

        let mut records = Batcher::new(batch_size, Batch::Records);
        for item in self.tree(TreeId::Records)?.iter() {
            let (_, bytes) = item?;
            let record = codec::decode_record(&bytes)?;
            *tally.records.entry(record.kind.as_str().to_string()).or_default() += 1;
            records.push(record, send)?;
        }
        records.flush(send)?;

        self.dump_commit_log(batch_size, &mut tally, send)?;

        let mut invoices = Batcher::new(batch_size, Batch::Invoices);
        for item in self.tree(TreeId::Entities)?.iter() {
            let (key, bytes) = item?;
            let (source, invoice_id) = invoice_of_key(&key)?;
            tally.invoices += 1;
            invoices.push((source, invoice_id, decode::<Value>(&bytes)?), send)?;
        }
        invoices.flush(send)?;

        let mut unmatched = Batcher::new(batch_size, Batch::Unmatched);
        for item in self.tree(TreeId::Unmatched)?.iter() {
            let (key, bytes) = item?;
            let key = String::from_utf8(key.to_vec())
                .map_err(|_| StoreError::Corrupt("an unmatched payment's key is not UTF-8".into()))?;
            tally.unmatched += 1;
            unmatched.push((key, decode::<Value>(&bytes)?), send)?;
        }
        unmatched.flush(send)?;

        let mut rejections = Batcher::new(batch_size, Batch::Rejections);
        for item in self.tree(TreeId::Rejections)?.iter() {
            let (_, bytes) = item?;
            tally.rejections += 1;
            rejections.push(decode::<Value>(&bytes)?, send)?;
        }
        rejections.flush(send)?;

        let mut meta = Batcher::new(batch_size, Batch::Meta);
        for item in self.tree(TreeId::Meta)?.scan_prefix(super::app_meta::PREFIX) {
            let (key, value) = item?;
            let name = std::str::from_utf8(&key[super::app_meta::PREFIX.len()..])
                .map_err(|_| StoreError::Corrupt("a meta key is not UTF-8".into()))?
                .to_string();
            tally.meta += 1;
            meta.push((name, value.to_vec()), send)?;
        }
        meta.flush(send)?;

        Ok(tally)
    }

    /// The journal, the stored events and the accepted posting copies: one pass over the
    /// commit log, in commit order (which is journal seq order and event seq order).
    fn dump_commit_log(
        &self,
        batch_size: usize,
        tally: &mut Tally,
        send: &mut dyn FnMut(Batch) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut journal = Batcher::new(batch_size, Batch::Journal);
        let mut events = Batcher::new(batch_size, Batch::Events);
        let mut accepted = Batcher::new(batch_size, Batch::Accepted);
        for item in self.tree(TreeId::Log)?.iter() {
            let (_, entry) = item?;
            let header = log::header(&entry)?;
            for (tree, _, value) in log::ops(&entry)? {
                let Some(value) = value else { continue };
                match tree {
                    TreeId::Journal if header.flags & log::HAS_JOURNAL != 0 => {
                        let e = codec::decode_journal(value)?;
                        if e.seq != tally.journal_last_seq + 1 {
                            return Err(StoreError::Corrupt(format!(
                                "the journal jumps from seq {} to {}",
                                tally.journal_last_seq, e.seq
                            )));
                        }
                        tally.add_journal_entry(&e);
                        journal.push(e, send)?;
                    }
                    TreeId::Events if header.flags & log::HAS_EVENT != 0 => {
                        let event = codec::decode_event(value)?;
                        *tally.events.entry(event.status.clone()).or_default() += 1;
                        events.push(event, send)?;
                    }
                    TreeId::Accepted => {
                        tally.accepted += 1;
                        accepted.push(decode::<Value>(value)?, send)?;
                    }
                    _ => {}
                }
            }
        }
        journal.flush(send)?;
        events.flush(send)?;
        accepted.flush(send)?;
        // The journal's end as the writer knows it (the last log header), apart from the walk.
        tally.journal_head = self.journal_marks().committed.load(Ordering::Acquire);
        Ok(())
    }
}

/// `invoice` 0x00 source 0x00 invoice id (see `empayre::invoice_key`).
fn invoice_of_key(key: &[u8]) -> Result<(String, String), StoreError> {
    let corrupt = || StoreError::Corrupt("an invoice snapshot key is malformed".into());
    let text = std::str::from_utf8(key).map_err(|_| corrupt())?;
    let mut parts = text.splitn(3, '\0');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("invoice"), Some(source), Some(id)) => Ok((source.to_string(), id.to_string())),
        _ => Err(corrupt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_key_splits_back_into_source_and_id() {
        let key = super::super::empayre::invoice_key("demo", "inv\u{0}x");
        assert_eq!(
            invoice_of_key(&key).expect("key"),
            ("demo".to_string(), "inv\u{0}x".to_string())
        );
        assert!(invoice_of_key(b"other\0a\0b").is_err());
    }
}
