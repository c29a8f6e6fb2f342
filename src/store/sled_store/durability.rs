//! The durability barrier: group commit.
//!
//! A request that wrote to sled asks to be told when its write is on disk. One flusher thread
//! takes every waiting request, calls `Db::flush()` once, then `fdatasync` on sled's log (and
//! syncs any file sled created, see `disk_sync`), and wakes them all. `Db::flush()` alone is not
//! enough: on Linux it ends with `sync_file_range`, which neither flushes the device's write
//! cache nor commits the file's new size. Requests that arrive during a flush ride on the next
//! one. This replaces one `flush_async` per request, which we measured stalling from 16
//! concurrent requests on.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::disk_sync::DiskSync;
use super::facet_counts::FacetCounts;
use super::minute_counts::Tally;
use super::{JournalMarks, LogMarks, StoreError, LOG_APPLIED};
use crate::store::CommitStats;

type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// How long a flush under load waits for more requests. The flusher sleeps for it rather than
/// waiting on the channel: each request woke it before, and those wake-ups cost more than the
/// fsyncs. Measured side by side (bench --accounts 100000, 64 connections, two runs each),
/// postings / Empayre events per second: 300 µs 11.7k / 8.9k; 500 µs 11.8k / 9.4k; 1000 µs
/// 12.7k / 9.4k at 19.5 requests per fsync, with the lowest p99 of the three.
const LINGER: std::time::Duration = std::time::Duration::from_micros(1000);

pub struct Durability {
    /// None only while dropping.
    sender: Option<mpsc::Sender<Waiter>>,
    /// The flusher holds a `Db` handle (in its `DiskSync`); joining it on drop means that once a
    /// store instance is gone, sled's lock on the directory is released and it can be opened
    /// again.
    flusher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Durability {
    fn drop(&mut self) {
        // Closing the channel ends the flusher's loop after its current flush.
        drop(self.sender.take());
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
    }
}

/// The counts kept in memory and stored by the flusher once a second, each with its tree.
pub(super) struct Tallies {
    pub minutes: (Arc<Tally>, sled::Tree),
    pub facets: (Arc<FacetCounts>, sled::Tree),
}

/// What the flusher reports to: flush statistics, the store's failure flag, the journal marks.
struct Flusher {
    disk: Arc<DiskSync>,
    meta: sled::Tree,
    tallies: Tallies,
    receiver: mpsc::Receiver<Waiter>,
    failed: Arc<AtomicBool>,
    journal: Arc<JournalMarks>,
    log: Arc<LogMarks>,
    stats: Arc<CommitStats>,
}

impl Durability {
    /// Starts the flusher thread. It ends when the `Durability` is dropped.
    pub(super) fn start(
        disk: Arc<DiskSync>,
        meta: sled::Tree,
        tallies: Tallies,
        failed: Arc<AtomicBool>,
        journal: Arc<JournalMarks>,
        log: Arc<LogMarks>,
        stats: Arc<CommitStats>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Waiter>();
        let flusher = Flusher {
            disk,
            meta,
            tallies,
            receiver,
            failed,
            journal,
            log,
            stats,
        };
        let handle = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || flusher.run())?;
        Ok(Self {
            sender: Some(sender),
            flusher: Some(handle),
        })
    }

    /// A future that resolves once everything written before this call is on disk. It holds
    /// only the channel, not the store instance.
    pub(super) fn waiter(&self) -> Result<impl Future<Output = Result<(), StoreError>>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.sender
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the store is closing".into()))?
            .send(tx)
            .map_err(|_| StoreError::Unavailable("the store flusher has stopped".into()))?;
        Ok(async move {
            rx.await
                .map_err(|_| StoreError::Unavailable("the store flusher has stopped".into()))?
        })
    }
}

impl Flusher {
    fn run(self) {
        let mut last_batch = 0;
        while let Ok(first) = self.receiver.recv() {
            let mut batch = vec![first];
            // Under load (the last flush served more than one request), wait a moment for more
            // requests to ride on this fsync: each flush costs sled a buffer seal and a hand-off
            // to its I/O threads, and an fdatasync. One request alone is flushed at once.
            // Sleeping, rather than waiting on the channel, means requests that arrive in the
            // meantime do not wake this thread one by one.
            if last_batch > 1 {
                std::thread::sleep(LINGER);
            }
            while let Ok(more) = self.receiver.try_recv() {
                batch.push(more);
            }
            last_batch = batch.len();
            // Every journal entry committed, and every commit applied, before this point is
            // covered by the flush below.
            let committed = self.journal.committed.load(Ordering::Acquire);
            let applied = self.log.applied.load(Ordering::Acquire);
            let started = Instant::now();
            let result = self.disk.flush().and_then(|_| self.advance_log_applied(applied));
            let micros = started.elapsed().as_micros() as u64;
            self.stats.record(batch.len() as u64, micros, result.is_ok());
            match &result {
                Ok(()) => {
                    self.journal.durable.fetch_max(committed, Ordering::AcqRel);
                }
                Err(e) => {
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "store flush failed; the store will be reopened");
                }
            }
            for waiter in batch {
                // A waiter whose request was dropped (client gone) no longer listens: fine.
                let _ = waiter.send(result.clone());
            }
            // After the answers, so it adds nothing to their latency.
            if result.is_ok() {
                let (minutes, minute_tree) = &self.tallies.minutes;
                let (facets, facet_tree) = &self.tallies.facets;
                let stored = minutes
                    .persist_if_due(minute_tree, &self.meta)
                    .and_then(|_| facets.persist_if_due(facet_tree, &self.meta));
                if let Err(e) = stored {
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "storing the counts failed; the store will be reopened");
                }
            }
        }
    }
}

impl Flusher {
    /// Notes that commits up to `applied` are wholly on disk, so a restart need not apply them
    /// again. The note itself rides on the next flush; until then a restart applies a few
    /// commits twice, which is harmless.
    fn advance_log_applied(&self, applied: u64) -> Result<(), StoreError> {
        let mut watermark = self.log.lock_watermark()?;
        if applied > *watermark {
            self.meta.insert(LOG_APPLIED, &applied.to_be_bytes())?;
            *watermark = applied;
        }
        Ok(())
    }
}
