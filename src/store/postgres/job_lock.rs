//! Background jobs that only one replica may run at a time (the Empayre reconciliation of a
//! source): a session-level advisory lock held on a connection of its own.
//!
//! The connection is taken out of the pool for as long as the lock is held. Whoever holds the
//! lock runs the job; the others try again at their next tick. When the holder dies (killed,
//! its machine gone, its connection cut), its session ends and the database releases the lock
//! with it, so another replica takes the job over at its next try; no lease to expire, nothing
//! to clean up. Advisory locks with two `int4` keys live apart from the one-`bigint` keys the
//! batch writer and the migrations lock, so the job locks cannot collide with those.

use deadpool_postgres::ClientWrapper;

use super::reads::pg_unavailable;
use super::{connection, error_text, PgError, PgStore};
use crate::store::StoreError;

/// The first key of every job lock ("bill" in ASCII); the second is a hash of the job's name.
const JOB_LOCK_CLASS: i32 = 0x6269_6c6c;

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock($1, hashtext($2))";

/// A job lock this replica holds; dropping it closes its connection, which releases it.
pub struct JobLock {
    client: ClientWrapper,
}

impl JobLock {
    /// Whether the session that holds the lock is still alive (a dead one lost it).
    pub async fn still_held(&self) -> bool {
        // The connection is driven on the backend's runtime; a query from here only talks to it.
        !self.client.is_closed() && self.client.simple_query("SELECT 1").await.is_ok()
    }
}

impl PgStore {
    /// Takes the lock of job `name` if no replica holds it: `None` when another one does.
    pub async fn try_job_lock(&self, name: &str) -> Result<Option<JobLock>, StoreError> {
        self.check_open()?;
        let pool = self.inner.pool.clone();
        let target = self.inner.target.clone();
        let name = name.to_string();
        let taken = self
            .inner
            .runtime
            .handle()
            .spawn(async move {
                let conn = connection(&pool, &target).await.map_err(pg_unavailable)?;
                let locked: bool = conn
                    .query_one(TRY_LOCK, &[&JOB_LOCK_CLASS, &name])
                    .await
                    .map_err(|e| {
                        pg_unavailable(PgError::Query {
                            what: "taking a job lock".into(),
                            detail: error_text(&e),
                        })
                    })?
                    .get(0);
                // Held: the connection leaves the pool with the lock. Not held: it goes back.
                Ok::<_, StoreError>(locked.then(|| deadpool_postgres::Object::take(conn)))
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("a database task did not finish: {e}")))??;
        Ok(taken.map(|client| JobLock { client }))
    }
}
