//! Opening a sled instance, and opening it again in place after an I/O error.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::commit::replay_log;
use super::disk_sync::DiskSync;
use super::durability::{Durability, Tallies};
use super::facet_counts::FacetCounts;
use super::text_column::TextColumn;
use super::{minute_counts, search_index, writer, Inner, JournalMarks, LogMarks, SledStore, TreeId};
use crate::store::{CommitStats, StoreError};

impl SledStore {
    /// Replaces a failed sled instance by a fresh one on the same directory: sled recovers
    /// what is on disk, and the writer's counters are read again from it. Called with the
    /// writer lock held. If the disk still refuses, the store stays failed (every request is
    /// 503) and the next writer tries again.
    pub(super) fn reopen(&self, state: &mut writer::WriterState) -> Result<(), StoreError> {
        let shared = &self.shared;
        let old = shared
            .current
            .write()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))?
            .take();
        drop(old);
        // A request may still hold the old instance for a moment (a read in progress), and
        // sled's directory lock is released only when the last handle goes.
        let mut attempt = 0;
        let inner = loop {
            match open_instance(
                &shared.path,
                &shared.display,
                shared.cache_capacity_bytes,
                &shared.failed,
                &shared.journal,
                &shared.log,
                &shared.stats,
            ) {
                Ok(inner) => break inner,
                Err(StoreError::Locked { .. }) if attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the store could not be reopened; will retry on the next write");
                    return Err(e);
                }
            }
        };
        let reloaded = writer::WriterState::load(&inner.trees[TreeId::Log as usize])?;
        shared.journal.committed.store(reloaded.last_seq(), Ordering::Release);
        shared.journal.durable.store(reloaded.last_seq(), Ordering::Release);
        *state = reloaded;
        shared
            .rejections_logged
            .store(inner.trees[TreeId::Rejections as usize].len(), Ordering::Release);
        *shared
            .current
            .write()
            .map_err(|_| StoreError::Unavailable("the store lock is poisoned; restart the service".into()))? =
            Some(Arc::new(inner));
        shared.failed.store(false, Ordering::Release);
        tracing::warn!(path = %shared.display, "the store was reopened after an I/O error");
        Ok(())
    }
}

/// Opens sled on `path` with every tree, brings the minute counts up to date and starts the
/// flusher.
pub(super) fn open_instance(
    path: &Path,
    display: &str,
    cache_capacity_bytes: u64,
    failed: &Arc<AtomicBool>,
    journal: &Arc<JournalMarks>,
    log: &Arc<LogMarks>,
    stats: &Arc<CommitStats>,
) -> Result<Inner, StoreError> {
    let created = DiskSync::missing_dirs(path);
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(cache_capacity_bytes)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|e| classify_open_error(e, display))?;
    let trees = TreeId::ALL
        .iter()
        .map(|tree| db.open_tree(tree.name()))
        .collect::<Result<Vec<_>, _>>()?;
    let applied = replay_log(&trees, &db)?;
    log.applied.store(applied, Ordering::Release);
    *log.lock_watermark()? = applied;
    minute_counts::ensure(&trees)?;
    search_index::ensure(&trees)?;
    let tally = Arc::new(minute_counts::Tally::load(&trees)?);
    let facet_counts = Arc::new(FacetCounts::load(&trees)?);
    // After the replay's flush: this syncs what opening and replaying wrote.
    let disk = Arc::new(
        DiskSync::open(db.clone(), path, &created)
            .map_err(|e| StoreError::Unavailable(format!("cannot sync the store at {display}: {e}")))?,
    );
    let durability = Durability::start(
        disk.clone(),
        trees[TreeId::Meta as usize].clone(),
        Tallies {
            minutes: (tally.clone(), trees[TreeId::CountByMinute as usize].clone()),
            facets: (facet_counts.clone(), trees[TreeId::CountByFacet as usize].clone()),
        },
        failed.clone(),
        journal.clone(),
        log.clone(),
        stats.clone(),
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot start the flusher: {e}")))?;
    // Last: the builder holds trees, which must not outlive a failed open.
    let text_column = Arc::new(TextColumn::new());
    text_column.start_building(&trees);
    Ok(Inner {
        trees,
        db,
        disk,
        tally,
        facet_counts,
        text_column,
        durability,
    })
}

fn classify_open_error(e: sled::Error, path: &str) -> StoreError {
    if let sled::Error::Io(io) = &e {
        let text = io.to_string();
        if io.kind() == std::io::ErrorKind::WouldBlock || text.contains("lock") {
            return StoreError::Locked { path: path.to_string() };
        }
    }
    StoreError::Unavailable(format!("cannot open the store at {path}: {e}"))
}
