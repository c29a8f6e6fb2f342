//! The storage interface on PostgreSQL: writes through the batch writer, reads as queries on
//! the backend's own runtime.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::batch::{AnyOutcome, Job};
use super::{import, reads, search, PgStore};
use crate::domain::account::{Account, AccountEntry, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{JournalEntry, Record, RecordKind};
use crate::store::{
    Backend, CommitStats, Decision, EventFilter, Executed, ImportSummary, Keys, LookupCriteria, LookupMatch,
    MinuteCount, NotReady, RecordCursor, SearchPage, SearchQuery, StoreError, StoredEvent, View, REJECTIONS_KEPT,
};

/// The type-erased form of a decision's outcome, and back.
fn erase<O: Send + 'static>(d: Decision<O>) -> Decision<AnyOutcome> {
    match d {
        Decision::Commit(writes, o) => Decision::Commit(writes, Box::new(o)),
        Decision::Confirm(o) => Decision::Confirm(Box::new(o)),
        Decision::Refuse(o) => Decision::Refuse(Box::new(o)),
    }
}

impl Backend for PgStore {
    async fn execute<O, F>(&self, keys: Keys, decide: F) -> Result<Executed<O>, StoreError>
    where
        O: Send + 'static,
        F: Fn(&dyn View) -> Result<Decision<O>, StoreError> + Send + 'static,
    {
        self.check_open()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            keys,
            decide: std::sync::Mutex::new(Box::new(move |view| decide(view).map(erase))),
            reply,
        };
        self.inner
            .queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        let executed = answer
            .await
            .map_err(|_| StoreError::Unavailable("the database writer dropped a request".into()))??;
        let outcome = executed
            .outcome
            .downcast::<O>()
            .map_err(|_| StoreError::Corrupt("a batch answered with another request's outcome".into()))?;
        Ok(Executed {
            outcome: *outcome,
            committed: executed.committed,
        })
    }

    async fn import_accounts(&self, entries: Vec<AccountEntry>) -> Result<ImportSummary, StoreError> {
        self.with_conn(move |mut conn| async move { import::import_accounts(&mut conn, entries).await })
            .await
    }

    async fn log_rejection(&self, entry: Value) -> Result<(), StoreError> {
        self.with_conn(move |conn| async move { reads::log_rejection(&conn, &entry, REJECTIONS_KEPT).await })
            .await
    }

    async fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError> {
        let number = number.to_string();
        self.with_conn(move |conn| async move { reads::account(&conn, &number).await })
            .await
    }

    async fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        let reference = customer_reference.to_string();
        self.with_conn(move |conn| async move { reads::profile(&conn, &reference).await })
            .await
    }

    async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| async move { reads::record(&conn, kind, &id).await })
            .await
    }

    async fn has_accounts(&self) -> Result<bool, StoreError> {
        self.with_conn(|conn| async move { reads::has_accounts(&conn).await })
            .await
    }

    async fn lookup(&self, criteria: &LookupCriteria, max: usize) -> Result<(Vec<LookupMatch>, usize), StoreError> {
        let criteria = criteria.clone();
        self.with_conn(move |conn| async move { reads::lookup(&conn, &criteria, max).await })
            .await
    }

    async fn journal_after(&self, after: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(move |conn| async move { reads::journal_after(&conn, after, limit).await })
            .await
    }

    async fn record_journal(&self, kind: RecordKind, id: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let id = id.to_string();
        self.with_conn(move |conn| async move { reads::record_journal(&conn, kind, &id).await })
            .await
    }

    async fn account_journal(
        &self,
        account_number: &AccountNumber,
        limit: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let number = account_number.to_string();
        self.with_conn(move |conn| async move { reads::account_journal(&conn, &number, limit).await })
            .await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, StoreError> {
        let query = query.clone();
        self.with_conn(move |conn| async move { search::search(&conn, &query).await })
            .await
    }

    async fn records_received(
        &self,
        since: Option<DateTime<Utc>>,
        cursor: Option<RecordCursor>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.with_conn(move |conn| async move { reads::records_received(&conn, since, cursor, limit).await })
            .await
    }

    async fn events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let filter = filter.clone();
        self.with_conn(move |conn| async move { reads::events(&conn, &filter).await })
            .await
    }

    async fn event(&self, source: &str, event_id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let source = source.to_string();
        self.with_conn(move |conn| async move { reads::event(&conn, &source, event_id).await })
            .await
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.with_conn(move |conn| async move { reads::quarantined(&conn, limit).await })
            .await
    }

    async fn unmatched(&self) -> Result<Vec<Value>, StoreError> {
        self.with_conn(|conn| async move { reads::unmatched(&conn).await })
            .await
    }

    async fn recent_rejections(&self, limit: usize) -> Result<Vec<Value>, StoreError> {
        self.with_conn(move |conn| async move { reads::recent_rejections(&conn, limit).await })
            .await
    }

    async fn received_per_minute(&self, first_minute: i64, minutes: usize) -> Result<Vec<MinuteCount>, StoreError> {
        self.with_conn(move |conn| async move { reads::received_per_minute(&conn, first_minute, minutes).await })
            .await
    }

    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_string();
        self.with_conn(move |conn| async move { reads::meta(&conn, &key).await })
            .await
    }

    async fn put_meta(&self, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with_conn(move |conn| async move { reads::put_meta(&conn, &key, &value).await })
            .await
    }

    /// Ready when a connection answers and the database takes writes (not a standby in
    /// recovery, not read-only); the failed check is `database`.
    async fn readiness(&self) -> Result<(), NotReady> {
        let writable = self
            .with_conn(|conn| async move {
                let row = conn
                    .query_one(
                        "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
                        &[],
                    )
                    .await
                    .map_err(reads::unavailable("the readiness check"))?;
                Ok(row.get::<_, bool>(0))
            })
            .await;
        match writable {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotReady {
                check: "database",
                detail: format!("{} is read-only (a standby, or in recovery)", self.target()),
            }),
            Err(e) => Err(NotReady {
                check: "database",
                detail: e.to_string(),
            }),
        }
    }

    fn stats(&self) -> &CommitStats {
        &self.inner.stats
    }

    fn warnings(&self) -> Vec<String> {
        if self.commit_safety().is_safe() {
            Vec::new()
        } else {
            vec![format!(
                "unsafe_commit: the database runs with {} (store.postgres.allow_unsafe_commit = true)",
                self.commit_safety().describe()
            )]
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.close_store().await
    }

    fn unsafe_commit(&self) -> bool {
        !self.commit_safety().is_safe()
    }
}
