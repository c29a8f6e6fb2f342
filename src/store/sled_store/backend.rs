//! The storage interface on sled.
//!
//! Writes run as today's single writer: the announced keys are read into sled's cache first
//! (a page sled has to fetch from disk then delays this request only, not every writer queued
//! behind it), then the decision and the commit run under the writer lock on the caller's
//! thread (an in-memory section of a few microseconds), and durability is awaited outside it
//! from the group-commit flusher. Point reads also run inline; scans (search, feeds, lists,
//! imports, the readiness probe) go to the blocking pool so they never stall an actix worker.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::SledStore;
use crate::domain::account::{Account, AccountEntry, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{JournalEntry, Record, RecordKind};
use crate::store::{
    Backend, CommitStats, Decision, EventFilter, Executed, ImportSummary, Keys, LookupCriteria, LookupMatch,
    MinuteCount, NotReady, RecordCursor, SearchPage, SearchQuery, StoreError, StoredEvent, View,
};

impl SledStore {
    /// Runs `f` on the blocking pool with a handle on this store.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SledStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Unavailable(format!("a store task did not finish: {e}")))?
    }
}

impl Backend for SledStore {
    async fn execute<O, F>(&self, keys: Keys, decide: F) -> Result<Executed<O>, StoreError>
    where
        O: Send + 'static,
        F: Fn(&dyn View) -> Result<Decision<O>, StoreError> + Send + 'static,
    {
        self.warm(&keys);
        let (outcome, committed, wait) = self.write(|w| match decide(&*w)? {
            Decision::Refuse(outcome) => Ok::<_, StoreError>((outcome, None, false)),
            Decision::Confirm(outcome) => Ok((outcome, None, true)),
            Decision::Commit(writes, outcome) => Ok((outcome, Some(w.commit_writes(*writes)?), true)),
        })?;
        if wait {
            // A duplicate (Confirm) waits too: what it names may have been committed by a
            // request still waiting for the same flush.
            self.durable().await?;
        }
        Ok(Executed { outcome, committed })
    }

    async fn import_accounts(&self, entries: Vec<AccountEntry>) -> Result<ImportSummary, StoreError> {
        let summary = self.blocking(move |s| s.import_accounts(&entries)).await?;
        self.durable().await?;
        Ok(summary)
    }

    async fn log_rejection(&self, entry: Value) -> Result<(), StoreError> {
        SledStore::log_rejection(self, &entry)
    }

    async fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError> {
        SledStore::account(self, number)
    }

    async fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        SledStore::profile(self, customer_reference)
    }

    async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        SledStore::record(self, kind, id)
    }

    async fn has_accounts(&self) -> Result<bool, StoreError> {
        SledStore::has_accounts(self)
    }

    async fn lookup(&self, criteria: &LookupCriteria, max: usize) -> Result<(Vec<LookupMatch>, usize), StoreError> {
        SledStore::lookup(self, criteria, max)
    }

    async fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.blocking(move |s| s.journal_after(after, limit)).await
    }

    async fn record_journal(&self, kind: RecordKind, id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let id = id.to_string();
        self.blocking(move |s| s.record_journal(kind, &id)).await
    }

    async fn account_journal(
        &self,
        account_number: &AccountNumber,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let number = account_number.to_string();
        self.blocking(move |s| s.account_journal(&number, limit)).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let query = query.clone();
        self.blocking(move |s| s.search(&query)).await
    }

    async fn records_received(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<RecordCursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.blocking(move |s| s.records_received(since, cursor.as_ref(), limit))
            .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = filter.clone();
        self.blocking(move |s| s.events(&filter)).await
    }

    async fn event(&self, source: &str, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        SledStore::event(self, source, event_id)
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.blocking(move |s| s.quarantined(limit)).await
    }

    async fn unmatched(&self) -> Result<Vec<Value>, StoreError> {
        self.blocking(|s| s.unmatched()).await
    }

    async fn recent_rejections(&self, limit: usize) -> Result<Vec<Value>, StoreError> {
        self.blocking(move |s| s.recent_rejections(limit)).await
    }

    async fn received_per_minute(&self, first_minute: i64, minutes: usize) -> Result<Vec<MinuteCount>, StoreError> {
        self.blocking(move |s| s.received_per_minute(first_minute, minutes))
            .await
    }

    /// A write, flush and read back (`store_write`), and free disk above `store.min_free_bytes`
    /// (`disk_free`).
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        SledStore::app_meta(self, key)
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        SledStore::put_app_meta(self, key, &value)?;
        self.durable().await
    }

    async fn readiness(&self) -> Result<(), NotReady> {
        let min_free = self.min_free_bytes;
        let checked = self
            .blocking(move |s| {
                Ok(match s.probe() {
                    Err(e) => Err(("store_write", e.to_string())),
                    Ok(()) => match fs2::available_space(Path::new(s.path())) {
                        Err(e) => Err(("disk_free", e.to_string())),
                        Ok(free) if free < min_free => Err((
                            "disk_free",
                            format!("{free} bytes free, below store.min_free_bytes {min_free}"),
                        )),
                        Ok(_) => Ok(()),
                    },
                })
            })
            .await;
        match checked {
            Ok(Ok(())) => Ok(()),
            Ok(Err((check, detail))) => Err(NotReady { check, detail }),
            Err(e) => Err(NotReady {
                check: "store_write",
                detail: e.to_string(),
            }),
        }
    }

    fn stats(&self) -> &CommitStats {
        self.commit_stats()
    }

    async fn close(&self) -> Result<(), StoreError> {
        SledStore::close(self).await
    }
}
