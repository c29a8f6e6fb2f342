//! The PostgreSQL backend: several replicas share one ledger in one database.
//!
//! Connections live on a runtime of their own (`PgRuntime`), not on an actix worker: a pooled
//! connection is driven by the runtime that opened it, and a worker busy with requests (or
//! stopped) must not stall another worker's queries.
//!
//! Start-up (`open`) connects, reads the commit-safety settings (`safety`), and applies or
//! checks the schema migrations (`migrations`). Writes go through the batch writer (`batch`):
//! group commit in the application, one transaction and one journal-counter bump per batch.
//! Reads are plain queries (`reads`, `search`); imports use `COPY` (`import`).
//!
//! Records are counted per minute and hour by kind, status and amount bucket in the batch's own
//! transaction (`counts`), so that the search's exact total over a day is a sum of counts.
//! What sled keeps for speed and PostgreSQL does not need: the commit log (a transaction is
//! atomic by itself), the per-account journal chain (an index on `journal (account_number, seq)`).

mod backend;
mod batch;
pub mod copy_in;
mod counts;
mod import;
mod job_lock;
pub mod migrations;
mod names;
mod reads;
mod rows;
pub mod safety;
mod search;
mod view;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use crate::settings::PostgresSettings;
pub use job_lock::JobLock;
pub use migrations::MigrationReport;
pub use safety::CommitSafety;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    #[error("cannot connect to PostgreSQL at {target}: {detail}")]
    Connect { target: String, detail: String },
    #[error("PostgreSQL: {what}: {detail}")]
    Query { what: String, detail: String },
    #[error(
        "the database schema is at version {database}, newer than this binary's version {binary}: \
         run a biller-inbox that knows schema version {database}"
    )]
    SchemaNewer { database: i32, binary: i32 },
    #[error(
        "the database schema is at version {database}, this binary needs version {binary}: run \
         `biller-inbox migrate` or set store.postgres.migrate = true"
    )]
    SchemaBehind { database: i32, binary: i32 },
    #[error(
        "schema migration {version} recorded in the database differs from this binary's: the \
         schema was changed by another build or by hand"
    )]
    SchemaAltered { version: i32 },
    #[error(
        "PostgreSQL at {target} runs with {settings}: a 2xx would not mean the data survives a \
         crash of the database machine. Turn them on (ALTER SYSTEM SET ... = on, or the role's \
         or database's setting, then reload), or set store.postgres.allow_unsafe_commit = true \
         to serve anyway"
    )]
    UnsafeCommit { target: String, settings: String },
}

impl PgError {
    /// Maps a driver error while doing `what`. The text is the server's message and SQLSTATE
    /// or the driver's I/O error; neither carries the connection URL.
    pub fn query(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> PgError {
        let what = what.into();
        move |e| PgError::Query {
            what,
            detail: error_text(&e),
        }
    }

    /// Whether the database could not be reached (as opposed to refusing what was asked).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PgError::Connect { .. })
    }
}

/// The useful part of a driver error: the server's message and code, or the I/O cause.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The runtime the backend's connections and writer live on. Dropping it never blocks (it may
/// be dropped inside the actix runtime when the server stops).
pub struct PgRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl PgRuntime {
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("postgres")
            .enable_all()
            .build()?;
        Ok(Self { runtime: Some(runtime) })
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        match &self.runtime {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }

    /// Runs `f` to completion from a thread that is not inside an async runtime (start-up,
    /// command-line tools).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle().block_on(f)
    }
}

impl Drop for PgRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The pool of connections one replica uses. Must be used from inside `PgRuntime`.
pub fn pool(settings: &PostgresSettings) -> Result<Pool, PgError> {
    let target = settings.redacted_url();
    let connect_error = |detail: String| PgError::Connect {
        target: target.clone(),
        detail,
    };
    let mut config: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e: tokio_postgres::Error| connect_error(e.to_string()))?;
    let timeout = Duration::from_millis(settings.connect_timeout_ms);
    config.connect_timeout(timeout);
    if config.get_application_name().is_none() {
        config.application_name("biller-inbox");
    }
    // Every statement is bounded: a query stuck behind a lock or a dead server answers 503
    // instead of holding a request (and its connection) for ever.
    let options = format!(
        "{} -c statement_timeout={}",
        config.get_options().unwrap_or(""),
        settings.statement_timeout_ms
    );
    config.options(options.trim());
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.pool_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| connect_error(e.to_string()))
}

/// A connection from the pool, with the pool's errors mapped.
pub async fn connection(pool: &Pool, target: &str) -> Result<deadpool_postgres::Object, PgError> {
    pool.get().await.map_err(|e| PgError::Connect {
        target: target.to_string(),
        detail: match e {
            deadpool_postgres::PoolError::Backend(e) => error_text(&e),
            deadpool_postgres::PoolError::Timeout(_) => "timed out (store.postgres.connect_timeout_ms)".into(),
            other => other.to_string(),
        },
    })
}

/// What start-up found.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub safety: CommitSafety,
    pub schema_version: i32,
    /// Present when migrations ran (`store.postgres.migrate`).
    pub migrated: Option<MigrationReport>,
}

/// Start-up against the database: reachable, safe to commit to (or explicitly allowed not to
/// be), and at this binary's schema version (migrated first when `migrate` is set).
pub async fn preflight(pool: &Pool, settings: &PostgresSettings) -> Result<Preflight, PgError> {
    let target = settings.redacted_url();
    let mut client = connection(pool, &target).await?;
    let safety = safety::read(&client).await?;
    if !safety.is_safe() && !settings.allow_unsafe_commit {
        return Err(PgError::UnsafeCommit {
            target,
            settings: safety.describe(),
        });
    }
    let lock_wait_ms = settings.statement_timeout_ms.max(30_000);
    let (schema_version, migrated) = if settings.migrate {
        let report = migrations::migrate(&mut client, lock_wait_ms).await?;
        (report.to, Some(report))
    } else {
        (migrations::check(&client).await?, None)
    };
    Ok(Preflight {
        safety,
        schema_version,
        migrated,
    })
}

/// Applies the migrations and nothing else (`biller-inbox migrate`).
pub async fn migrate_only(pool: &Pool, settings: &PostgresSettings) -> Result<MigrationReport, PgError> {
    let target = settings.redacted_url();
    let mut client = connection(pool, &target).await?;
    migrations::migrate(&mut client, settings.statement_timeout_ms.max(30_000)).await
}

/// A connected backend's parts: its runtime, its pool and what start-up found.
pub struct Opened {
    pub runtime: PgRuntime,
    pub pool: Pool,
    pub preflight: Preflight,
}

/// Connects and runs the preflight from synchronous code, inside an async runtime or not (the
/// work runs on a thread of its own, since a runtime cannot be blocked on from inside another).
pub fn open_blocking(settings: &PostgresSettings) -> Result<Opened, PgError> {
    let runtime = PgRuntime::new().map_err(|e| PgError::Connect {
        target: settings.redacted_url(),
        detail: format!("cannot start the database runtime: {e}"),
    })?;
    let (pool, preflight) = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                runtime.block_on(async {
                    let pool = pool(settings)?;
                    let preflight = self::preflight(&pool, settings).await?;
                    Ok::<_, PgError>((pool, preflight))
                })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(PgError::Connect {
                    target: settings.redacted_url(),
                    detail: "the start-up thread panicked".into(),
                })
            })
    })?;
    Ok(Opened {
        runtime,
        pool,
        preflight,
    })
}

/// The PostgreSQL backend: a pool, the batch writer's queue, and what start-up found.
#[derive(Clone)]
pub struct PgStore {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    pool: Pool,
    queue: tokio::sync::mpsc::Sender<batch::Job>,
    target: String,
    safety: CommitSafety,
    stats: std::sync::Arc<crate::store::CommitStats>,
    /// Set by `close`: every later call answers `Unavailable`.
    closed: std::sync::atomic::AtomicBool,
    /// Tells the batch writer to finish what is queued and stop.
    stop_writer: tokio::sync::watch::Sender<bool>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Last: dropping it stops the writer and closes the connections.
    runtime: PgRuntime,
}

/// Requests that may wait for a batch; beyond this, callers wait to queue (back pressure).
const QUEUE_DEPTH: usize = 8192;

impl PgStore {
    /// Connects, checks commit safety and the schema (see `preflight`), and starts the batch
    /// writer.
    pub fn open(settings: &PostgresSettings) -> Result<Self, PgError> {
        let opened = open_blocking(settings)?;
        let preflight = &opened.preflight;
        let target = settings.redacted_url();
        if !preflight.safety.is_safe() {
            tracing::warn!(
                database = %target,
                settings = %preflight.safety.describe(),
                "PostgreSQL commits are NOT crash-safe (store.postgres.allow_unsafe_commit = true): \
                 a 2xx may be lost if the database machine crashes"
            );
        }
        match &preflight.migrated {
            Some(report) if !report.applied.is_empty() => {
                tracing::info!(database = %target, from = report.from, to = report.to, "schema migrated")
            }
            _ => tracing::info!(database = %target, version = preflight.schema_version, "schema is current"),
        }
        let stats = std::sync::Arc::new(crate::store::CommitStats::default());
        let (queue, jobs) = tokio::sync::mpsc::channel(QUEUE_DEPTH);
        let config = batch::WriterConfig {
            pool: opened.pool.clone(),
            target: settings.redacted_url(),
            batch_max: settings.batch_max,
            batch_wait: Duration::from_micros(settings.batch_wait_us),
            stats: stats.clone(),
        };
        let (stop_writer, stop) = tokio::sync::watch::channel(false);
        let writer = opened.runtime.handle().spawn(batch::run(jobs, config, stop));
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                pool: opened.pool,
                queue,
                target: settings.redacted_url(),
                safety: opened.preflight.safety,
                stats,
                closed: std::sync::atomic::AtomicBool::new(false),
                stop_writer,
                writer: std::sync::Mutex::new(Some(writer)),
                runtime: opened.runtime,
            }),
        })
    }

    /// Where the store is (`user@host:port/db`), for messages.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// What start-up found about commit safety (empty when safe).
    pub fn commit_safety(&self) -> &CommitSafety {
        &self.inner.safety
    }

    /// `Unavailable` once the store is closed.
    fn check_open(&self) -> Result<(), crate::store::StoreError> {
        if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            Err(crate::store::StoreError::Unavailable("the store is closed".into()))
        } else {
            Ok(())
        }
    }

    /// A clean stop: later calls answer `Unavailable`, the batch writer commits what is queued
    /// and stops, and the pool closes its connections. Closing again does nothing.
    async fn close_store(&self) -> Result<(), crate::store::StoreError> {
        self.inner.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.inner.stop_writer.send(true);
        let writer = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer {
            writer
                .await
                .map_err(|e| crate::store::StoreError::Unavailable(format!("the database writer failed: {e}")))?;
        }
        self.inner.pool.close();
        Ok(())
    }

    /// Runs `f` with a pooled connection on the backend's runtime (connections belong to it).
    async fn with_conn<T, F, Fut>(&self, f: F) -> Result<T, crate::store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, crate::store::StoreError>> + Send + 'static,
    {
        self.check_open()?;
        let pool = self.inner.pool.clone();
        let target = self.inner.target.clone();
        self.inner
            .runtime
            .handle()
            .spawn(async move {
                let conn = connection(&pool, &target).await.map_err(reads::pg_unavailable)?;
                f(conn).await
            })
            .await
            .map_err(|e| crate::store::StoreError::Unavailable(format!("a database task did not finish: {e}")))?
    }
}
