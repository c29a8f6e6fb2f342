//! What turns sled's flush into a full sync of the store's files.
//!
//! On Linux, `Db::flush()` of sled 0.34.7 ends each log write with `sync_file_range(WAIT_BEFORE
//! | WRITE | WAIT_AFTER)` (its `pagecache/iobuf.rs`): the pages reach the device, but the
//! device's volatile write cache is not flushed and a change of the file's size is not
//! committed. sled's real `fsync` comes from a timer every 500 ms, after we would have answered.
//! So after each `Db::flush()` the store syncs, itself, the files sled wrote:
//!
//! - `db`, sled's log: one `fdatasync`. It covers the file's written pages, whichever
//!   descriptor they were written through, the metadata needed to read them back (its size),
//!   and asks the device to flush its cache.
//! - `blobs/<lsn>`: sled writes an item bigger than a quarter of a log segment (about 128 KiB:
//!   a large Empayre body, a leaf of big values) to a file of its own, and never syncs it. Each
//!   new blob file is synced, then the directory that names it. This runs before the log's
//!   sync, so the log is never made durable ahead of a blob it points to by our hand.
//! - the store directory: sled renames each new snapshot (`snap.*`, which it syncs as a file)
//!   into it. Synced when it changed.
//!
//! At open, sled may have created the store directory, `blobs/`, `conf` and `db`: they and the
//! parent of every directory created for the store's path are synced once.
//!
//! A directory is synced only when its modification time says it changed since the last look,
//! so a flush that created no file costs one `fdatasync` and two `statx`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::StoreError;

/// File timestamps are coarse (one clock tick): a change made just after we read a directory's
/// modification time can carry the same time. A time this close to now is therefore looked at
/// again on the next flush.
const SETTLE: Duration = Duration::from_millis(100);

/// A sled instance whose flush is a full sync.
pub(super) struct DiskSync {
    db: sled::Db,
    /// sled's log, opened read-only: `fdatasync` needs any descriptor of the file.
    log: File,
    dir: PathBuf,
    blobs: PathBuf,
    seen: Mutex<Seen>,
}

/// What the last look at the directories found. `None` means "look again".
#[derive(Default)]
struct Seen {
    dir_modified: Option<SystemTime>,
    blobs_modified: Option<SystemTime>,
    /// Blob files already synced (sled removes them as it cleans its log).
    blobs_synced: HashSet<OsString>,
}

impl DiskSync {
    /// The directories `path` needs that do not exist yet, innermost first: the ones opening a
    /// store there creates, whose parents must then be synced.
    pub(super) fn missing_dirs(path: &Path) -> Vec<PathBuf> {
        path.ancestors()
            .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
            .map(Path::to_path_buf)
            .collect()
    }

    /// Syncs what opening `db` at `dir` may have created or changed (`created`: what
    /// `missing_dirs` returned before sled opened it).
    pub(super) fn open(db: sled::Db, dir: &Path, created: &[PathBuf]) -> io::Result<Self> {
        let log = File::open(dir.join("db"))?;
        // The whole inode once: recovery may have cut or grown the log.
        log.sync_all()?;
        match File::open(dir.join("conf")) {
            Ok(conf) => conf.sync_all()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sync = Self {
            db,
            log,
            dir: dir.to_path_buf(),
            blobs: dir.join("blobs"),
            seen: Mutex::new(Seen::default()),
        };
        // Nothing seen yet: every blob file, `blobs/` and the store directory are synced.
        sync.sync_directories()?;
        for created in created {
            sync_dir(parent_of(created))?;
        }
        Ok(sync)
    }

    /// `Db::flush()`, then the syncs that make what it wrote durable. After an error the store
    /// must be reopened: after a failed fsync the kernel may have dropped the dirty pages, and
    /// only what sled reads back from the disk can be trusted.
    pub(super) fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.sync_directories()
            .and_then(|()| self.log.sync_data())
            .map_err(|e| StoreError::Unavailable(format!("syncing the store's files failed: {e}")))
    }

    fn sync_directories(&self) -> io::Result<()> {
        // The state is only a record of what is already synced; a panic elsewhere cannot make
        // it claim more than was done, since every entry is added after its sync.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        if let Some(modified) = changed(&self.blobs, seen.blobs_modified)? {
            let mut present = HashSet::new();
            let mut new = false;
            for entry in std::fs::read_dir(&self.blobs)? {
                let name = entry?.file_name();
                if !seen.blobs_synced.contains(&name) {
                    match File::open(self.blobs.join(&name)) {
                        Ok(blob) => blob.sync_data()?,
                        // sled removed it meanwhile: nothing of it is needed.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                    new = true;
                }
                present.insert(name);
            }
            if new {
                sync_dir(&self.blobs)?;
            }
            seen.blobs_synced = present;
            seen.blobs_modified = settled(modified, now);
        }
        if let Some(modified) = changed(&self.dir, seen.dir_modified)? {
            sync_dir(&self.dir)?;
            seen.dir_modified = settled(modified, now);
        }
        Ok(())
    }
}

/// The directory's modification time if it differs from `seen`.
fn changed(dir: &Path, seen: Option<SystemTime>) -> io::Result<Option<SystemTime>> {
    let modified = std::fs::metadata(dir)?.modified()?;
    Ok((seen != Some(modified)).then_some(modified))
}

/// `modified`, or `None` (look again next time) while it is too recent to trust.
fn settled(modified: SystemTime, now: SystemTime) -> Option<SystemTime> {
    match now.duration_since(modified) {
        Ok(age) if age > SETTLE => Some(modified),
        _ => None,
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_dirs_are_the_ones_opening_creates_innermost_first() {
        let dir = tempfile::tempdir().expect("dir");
        let store = dir.path().join("a").join("b").join("store");
        assert_eq!(
            DiskSync::missing_dirs(&store),
            vec![store.clone(), dir.path().join("a/b"), dir.path().join("a")]
        );
        assert!(DiskSync::missing_dirs(dir.path()).is_empty());
        assert_eq!(parent_of(Path::new("store")), Path::new("."));
    }

    #[test]
    fn a_recent_modification_time_is_looked_at_again() {
        let now = SystemTime::now();
        assert_eq!(settled(now, now), None);
        assert_eq!(
            settled(now + Duration::from_secs(1), now),
            None,
            "a time ahead of the clock"
        );
        let old = now - Duration::from_secs(1);
        assert_eq!(settled(old, now), Some(old));
    }
}
