//! The texts a `like` without a literal start needs, in memory: every record's time-index key
//! (receive time, kind tag, id) and confirmation number, in receive-time order. A `like` whose
//! pattern starts with `%` cannot use a key range, and walking a day of a million records
//! through the time index (ids) or reading each record (confirmation numbers) takes seconds;
//! scanning this column takes milliseconds, and gives the exact set of matches, so the exact
//! total and the page (see `search`).
//!
//! Nothing here is stored: the column is built from `idx_received` and `idx_confirmation` when
//! the store opens (on a thread of its own; until it is ready such searches walk the window as
//! before, just as exactly), and each record commit adds what it changed once its writes are
//! made, so a record is found as soon as its commit returns. After a crash or a reopen it is
//! simply built again.
//!
//! Memory: 16 bytes per record plus its kind tag, id and confirmation number (about 50 bytes a
//! record for ids and confirmation numbers of 15–20 characters), for the records received in the
//! `HORIZON_DAYS` days before the newest one. A search whose window starts before that walks it.
//!
//! A commit never waits for a search: it queues its changes (`pending`), and whoever next holds
//! the column (a search, or a commit that finds it free once enough changes are queued) applies
//! them in commit order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use memchr::memmem;

use super::{order_preserving_i64, StoreError, TreeId};

/// How far back the column keeps records, counted from the newest record.
pub(crate) const HORIZON_DAYS: i64 = 8;
const DAY_NANOS: i64 = 86_400_000_000_000;
/// Queued changes a commit applies itself when it finds the column free.
const APPLY_AT: usize = 1024;
/// The length that stands for "no confirmation number".
const NO_TEXT: u16 = u16::MAX;

/// One record: its receive time and where its record key (kind tag ++ id) and, right after it,
/// its confirmation number are in the arena.
#[derive(Clone, Copy)]
struct Entry {
    nanos: i64,
    at: u32,
    key_len: u16,
    conf_len: u16,
}

/// What a commit changed: a record put (new, or with another receive time or confirmation
/// number than before), or the entry of its former receive time to drop.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Put {
        nanos: i64,
        key: Vec<u8>,
        confirmation: Option<String>,
    },
    Remove {
        nanos: i64,
        key: Vec<u8>,
    },
}

/// The entries, in time-index key order, and the bytes they point into.
#[derive(Default)]
struct Column {
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Records received before this are not kept.
    covers_from: i64,
    /// Bytes of the arena no entry points to any more.
    garbage: usize,
    /// Set when a text or the arena outgrew its offsets: every search then walks.
    broken: bool,
}

impl Column {
    fn key(&self, e: &Entry) -> &[u8] {
        &self.arena[e.at as usize..e.at as usize + usize::from(e.key_len)]
    }

    fn confirmation(&self, e: &Entry) -> Option<&[u8]> {
        if e.conf_len == NO_TEXT {
            return None;
        }
        let start = e.at as usize + usize::from(e.key_len);
        Some(&self.arena[start..start + usize::from(e.conf_len)])
    }

    /// Where `(nanos, key)` is, or where it would go.
    fn find(&self, nanos: i64, key: &[u8]) -> Result<usize, usize> {
        // Commits come nearly in time order: look at the end first.
        match self.entries.last() {
            None => return Err(0),
            Some(last) if (last.nanos, self.key(last)) < (nanos, key) => return Err(self.entries.len()),
            _ => {}
        }
        self.entries
            .binary_search_by(|e| (e.nanos, self.key(e)).cmp(&(nanos, key)))
    }

    fn append_texts(&mut self, key: &[u8], confirmation: Option<&[u8]>) -> Option<Entry> {
        let at = u32::try_from(self.arena.len()).ok()?;
        let key_len = u16::try_from(key.len()).ok().filter(|l| *l != NO_TEXT)?;
        let conf_len = match confirmation {
            Some(c) => u16::try_from(c.len()).ok().filter(|l| *l != NO_TEXT)?,
            None => NO_TEXT,
        };
        let end = self.arena.len() + key.len() + confirmation.map_or(0, <[u8]>::len);
        u32::try_from(end).ok()?;
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(confirmation.unwrap_or_default());
        Some(Entry {
            nanos: 0,
            at,
            key_len,
            conf_len,
        })
    }

    fn apply(&mut self, change: &Change) {
        if self.broken {
            return;
        }
        match change {
            Change::Put {
                nanos,
                key,
                confirmation,
            } => {
                if *nanos < self.covers_from {
                    return;
                }
                let confirmation = confirmation.as_deref().map(str::as_bytes);
                let at = self.find(*nanos, key);
                if let Ok(i) = at {
                    let old = self.entries[i];
                    if self.confirmation(&old) == confirmation {
                        return;
                    }
                    self.garbage += usize::from(old.key_len) + self.confirmation(&old).map_or(0, <[u8]>::len);
                }
                let Some(mut entry) = self.append_texts(key, confirmation) else {
                    self.break_down();
                    return;
                };
                entry.nanos = *nanos;
                match at {
                    Ok(i) => self.entries[i] = entry,
                    Err(i) => self.entries.insert(i, entry),
                }
            }
            Change::Remove { nanos, key } => {
                if let Ok(i) = self.find(*nanos, key) {
                    let old = self.entries.remove(i);
                    self.garbage += usize::from(old.key_len) + self.confirmation(&old).map_or(0, <[u8]>::len);
                }
            }
        }
    }

    fn break_down(&mut self) {
        tracing::warn!("a record's id or confirmation number, or the texts of the in-memory column, outgrew its offsets: searches with a like starting with % walk their window again");
        *self = Column {
            broken: true,
            ..Column::default()
        };
    }

    /// Drops the records received before `from` and copies the rest into a fresh arena, when
    /// that frees enough to be worth it.
    fn forget_before(&mut self, from: i64) {
        let stale = self.entries.partition_point(|e| e.nanos < from);
        if stale == 0 && self.garbage < self.arena.len() / 4 {
            self.covers_from = self.covers_from.max(from);
            return;
        }
        let mut fresh = Column {
            entries: Vec::with_capacity(self.entries.len() - stale),
            arena: Vec::with_capacity(self.arena.len() / 2),
            covers_from: from.max(self.covers_from),
            garbage: 0,
            broken: false,
        };
        for e in &self.entries[stale..] {
            // Texts that fitted before fit again in a smaller arena.
            if let Some(mut entry) = fresh.append_texts(self.key(e), self.confirmation(e)) {
                entry.nanos = e.nanos;
                fresh.entries.push(entry);
            }
        }
        *self = fresh;
    }
}

/// One entry as a search sees it.
pub(crate) struct Row<'c> {
    pub nanos: i64,
    /// Kind tag ++ id.
    pub record_key: &'c [u8],
    pub confirmation: Option<&'c [u8]>,
}

/// The column's entries of one window, for a search holding the column.
pub(crate) struct Window<'c> {
    column: &'c Column,
    first: usize,
    end: usize,
}

impl Window<'_> {
    pub(crate) fn len(&self) -> usize {
        self.end - self.first
    }

    pub(crate) fn row(&self, i: usize) -> Row<'_> {
        let e = &self.column.entries[self.first + i];
        Row {
            nanos: e.nanos,
            record_key: self.column.key(e),
            confirmation: self.column.confirmation(e),
        }
    }

    /// The time-index key of row `i`.
    pub(crate) fn time_key(&self, i: usize) -> sled::IVec {
        let row = self.row(i);
        let mut key = Vec::with_capacity(8 + row.record_key.len());
        key.extend_from_slice(&order_preserving_i64(row.nanos));
        key.extend_from_slice(row.record_key);
        key.into()
    }
}

/// The column and what is queued for it, shared by the store's instance, its commits, its
/// searches and the thread that builds it.
pub(crate) struct TextColumn {
    column: Mutex<Column>,
    pending: Mutex<Vec<Change>>,
    ready: AtomicBool,
    /// Tells the builder to stop (the instance is going away).
    abandon: AtomicBool,
    builder: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Where the horizon starts, counted back from the newest record (not the clock: a store
/// restored or idle for days keeps its last days searchable).
fn horizon_start(newest: i64) -> i64 {
    newest.saturating_sub(HORIZON_DAYS * DAY_NANOS)
}

impl TextColumn {
    /// A column that is not ready yet; `build` fills it.
    pub(crate) fn new() -> Self {
        Self {
            column: Mutex::new(Column::default()),
            pending: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            builder: Mutex::new(None),
        }
    }

    /// Starts building the column from the index trees on a thread of its own.
    pub(crate) fn start_building(self: &Arc<Self>, trees: &[sled::Tree]) {
        let received = trees[TreeId::IdxReceived as usize].clone();
        let confirmations = trees[TreeId::IdxConfirmation as usize].clone();
        let column = self.clone();
        let spawned = std::thread::Builder::new()
            .name("text-column".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match column.build(&received, &confirmations) {
                    Ok(Some((records, bytes))) => tracing::info!(
                        records,
                        bytes,
                        seconds = started.elapsed().as_secs_f64(),
                        "the in-memory id and confirmation number column is ready"
                    ),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(
                        error = %e,
                        "the in-memory id and confirmation number column could not be built: searches with a like starting with % walk their window"
                    ),
                }
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut builder) = self.builder.lock() {
                    *builder = Some(handle);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot start the thread that builds the in-memory column"),
        }
    }

    /// Reads the window of the horizon from `idx_received` and the confirmation numbers from
    /// `idx_confirmation`, then applies what the commits queued meanwhile (a change the trees
    /// already showed is applied again harmlessly: puts and removes are absolute). None when
    /// told to stop.
    fn build(&self, received: &sled::Tree, confirmations: &sled::Tree) -> Result<Option<(usize, usize)>, StoreError> {
        let newest = match received.last()? {
            Some((key, _)) => nanos_of(&key)?,
            None => i64::MIN,
        };
        let from = horizon_start(newest);
        let mut column = Column {
            covers_from: from,
            ..Column::default()
        };
        for (n, item) in received.range(order_preserving_i64(from)..).enumerate() {
            if n % 4096 == 0 && self.abandon.load(Ordering::Acquire) {
                return Ok(None);
            }
            let (key, _) = item?;
            let nanos = nanos_of(&key)?;
            // A search reads the kind tag (and the id after it): it must be there.
            if key.len() < 9 {
                return Err(StoreError::Corrupt("a time-index key without a record key".into()));
            }
            let Some(mut entry) = column.append_texts(&key[8..], None) else {
                column.break_down();
                break;
            };
            entry.nanos = nanos;
            column.entries.push(entry);
        }
        for (n, item) in confirmations.iter().enumerate() {
            if n % 4096 == 0 && self.abandon.load(Ordering::Acquire) {
                return Ok(None);
            }
            if column.broken {
                break;
            }
            let (key, _) = item?;
            let (confirmation, rest) = split_text_key(&key)?;
            let nanos = nanos_of(rest)?;
            if nanos < from {
                continue;
            }
            column.apply(&Change::Put {
                nanos,
                key: rest[8..].to_vec(),
                confirmation: Some(
                    String::from_utf8(confirmation.to_vec())
                        .map_err(|_| StoreError::Corrupt("a confirmation number that is not UTF-8".into()))?,
                ),
            });
        }
        let mut held = self.lock_column()?;
        *held = column;
        let queued = std::mem::take(&mut *self.lock_pending()?);
        for change in &queued {
            held.apply(change);
        }
        self.ready.store(true, Ordering::Release);
        Ok(Some((
            held.entries.len(),
            held.entries.capacity() * std::mem::size_of::<Entry>() + held.arena.capacity(),
        )))
    }

    fn lock_column(&self) -> Result<MutexGuard<'_, Column>, StoreError> {
        self.column
            .lock()
            .map_err(|_| StoreError::Unavailable("the in-memory column's lock is poisoned; restart the service".into()))
    }

    fn lock_pending(&self) -> Result<MutexGuard<'_, Vec<Change>>, StoreError> {
        self.pending
            .lock()
            .map_err(|_| StoreError::Unavailable("the in-memory column's lock is poisoned; restart the service".into()))
    }

    /// Queues what a commit changed (called once its writes are made); applies the queue when
    /// it is long and nobody holds the column, so it stays short without searches.
    pub(crate) fn record(&self, changes: Vec<Change>) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let queued = {
            let mut pending = self.lock_pending()?;
            pending.extend(changes);
            pending.len()
        };
        if queued >= APPLY_AT && self.ready.load(Ordering::Acquire) {
            if let Ok(mut column) = self.column.try_lock() {
                self.apply_pending(&mut column)?;
            }
        }
        Ok(())
    }

    fn apply_pending(&self, column: &mut Column) -> Result<(), StoreError> {
        let queued = std::mem::take(&mut *self.lock_pending()?);
        for change in &queued {
            column.apply(change);
        }
        let from = horizon_start(column.entries.last().map_or(i64::MIN, |e| e.nanos));
        // Drop what fell out of the horizon now and then (an eighth of it at a time).
        if from.saturating_sub(column.covers_from) > HORIZON_DAYS * DAY_NANOS / 8 {
            column.forget_before(from);
        }
        Ok(())
    }

    /// Runs `f` on the window `[from, until)` with every commit so far applied; None when the
    /// column is not ready or does not reach back to `from` (the caller walks instead).
    pub(crate) fn with_window<T>(
        &self,
        from: i64,
        until: i64,
        f: impl FnOnce(&Window<'_>) -> T,
    ) -> Result<Option<T>, StoreError> {
        if !self.ready.load(Ordering::Acquire) {
            return Ok(None);
        }
        let mut column = self.lock_column()?;
        self.apply_pending(&mut column)?;
        if column.broken || from < column.covers_from {
            return Ok(None);
        }
        let first = column.entries.partition_point(|e| e.nanos < from);
        let end = column.entries.partition_point(|e| e.nanos < until).max(first);
        Ok(Some(f(&Window {
            column: &column,
            first,
            end,
        })))
    }

    #[cfg(test)]
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stops the builder and waits for it (it holds trees of the instance going away).
    pub(crate) fn stop(&self) {
        self.abandon.store(true, Ordering::Release);
        let handle = self.builder.lock().ok().and_then(|mut b| b.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn nanos_of(key: &[u8]) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = key
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt("time key shorter than 8 bytes".into()))?;
    Ok((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// `u16 length ++ text ++ rest` (an `idx_confirmation` key) split into the text and the rest.
fn split_text_key(key: &[u8]) -> Result<(&[u8], &[u8]), StoreError> {
    let corrupt = || StoreError::Corrupt("confirmation index key cut short".into());
    let len = key
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(corrupt)?;
    let text = key.get(2..2 + len).ok_or_else(corrupt)?;
    let rest = key.get(2 + len..).filter(|r| r.len() > 8).ok_or_else(corrupt)?;
    Ok((text, rest))
}

/// The search's `like` (see `search::like`), compiled once to check a million texts: the same
/// answers, with the parts between `%` searched for by `memmem`.
pub(crate) struct Like {
    first: Vec<u8>,
    last: Vec<u8>,
    middles: Vec<memmem::Finder<'static>>,
    exact: bool,
}

impl Like {
    pub(crate) fn new(pattern: &str) -> Self {
        let parts: Vec<&str> = pattern.split('%').collect();
        let exact = parts.len() == 1;
        Self {
            first: parts[0].as_bytes().to_vec(),
            last: if exact {
                Vec::new()
            } else {
                parts[parts.len() - 1].as_bytes().to_vec()
            },
            middles: if exact {
                Vec::new()
            } else {
                parts[1..parts.len() - 1]
                    .iter()
                    .map(|m| memmem::Finder::new(m.as_bytes()).into_owned())
                    .collect()
            },
            exact,
        }
    }

    pub(crate) fn matches(&self, value: &[u8]) -> bool {
        if self.exact {
            return value == self.first;
        }
        // The empty start or end of a pattern beginning or ending with `%` is skipped, not
        // compared: comparing an empty slice took ~100 ns here (a libc call), 20 times the rest.
        if value.len() < self.first.len() + self.last.len()
            || (!self.first.is_empty() && !value.starts_with(&self.first))
            || (!self.last.is_empty() && !value.ends_with(&self.last))
        {
            return false;
        }
        let mut rest = &value[self.first.len()..value.len() - self.last.len()];
        for middle in &self.middles {
            match middle.find(rest) {
                Some(at) => rest = &rest[at + middle.needle().len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_like_answers_as_the_search_like() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let alphabet = ['a', 'b', '%', '_', '\\', 'é'];
        let text = |next: &mut dyn FnMut(u64) -> u64, wild: bool| -> String {
            let len = next(7);
            (0..len)
                .map(|_| alphabet[next(6) as usize])
                .filter(|c| wild || *c != '%')
                .collect()
        };
        for _ in 0..20_000 {
            let pattern = text(&mut next, true);
            let value = text(&mut next, false);
            assert_eq!(
                Like::new(&pattern).matches(value.as_bytes()),
                super::super::search::like(&value, &pattern),
                "{value:?} like {pattern:?}"
            );
        }
    }

    fn put(nanos: i64, id: &str, confirmation: Option<&str>) -> Change {
        Change::Put {
            nanos,
            key: format!("p{id}").into_bytes(),
            confirmation: confirmation.map(str::to_string),
        }
    }

    fn rows(c: &Column) -> Vec<(i64, String, Option<String>)> {
        c.entries
            .iter()
            .map(|e| {
                (
                    e.nanos,
                    String::from_utf8_lossy(c.key(e)).into_owned(),
                    c.confirmation(e).map(|t| String::from_utf8_lossy(t).into_owned()),
                )
            })
            .collect()
    }

    /// Until it is built the column answers nothing (the search walks); what commits queued
    /// meanwhile is applied over what the trees held, whichever of the two saw it first.
    #[test]
    fn the_build_applies_what_was_committed_meanwhile() {
        let dir = tempfile::tempdir().expect("dir");
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        let received = db.open_tree("r").expect("tree");
        let confirmations = db.open_tree("c").expect("tree");
        for (nanos, id, confirmation) in [(10, "a", Some("CA")), (20, "b", None), (30, "c", Some("CC"))] {
            let mut key = order_preserving_i64(nanos).to_vec();
            key.extend_from_slice(format!("p{id}").as_bytes());
            received.insert(&key, &[]).expect("insert");
            if let Some(c) = confirmation {
                let mut ckey = (c.len() as u16).to_be_bytes().to_vec();
                ckey.extend_from_slice(c.as_bytes());
                ckey.extend_from_slice(&key);
                confirmations.insert(ckey, &[]).expect("insert");
            }
        }
        let column = TextColumn::new();
        assert!(column.with_window(0, 100, |w| w.len()).expect("window").is_none());
        // Committed while the builder reads: one the trees show too, one they do not.
        column
            .record(vec![put(20, "b", Some("CB")), put(25, "d", None)])
            .expect("record");
        assert!(column.with_window(0, 100, |w| w.len()).expect("window").is_none());
        column.build(&received, &confirmations).expect("build");
        let got = column
            .with_window(15, 100, |w| {
                (0..w.len())
                    .map(|i| {
                        let r = w.row(i);
                        (
                            r.nanos,
                            String::from_utf8_lossy(r.record_key).into_owned(),
                            r.confirmation.map(|c| String::from_utf8_lossy(c).into_owned()),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .expect("window")
            .expect("ready");
        assert_eq!(
            got,
            vec![
                (20, "pb".to_string(), Some("CB".to_string())),
                (25, "pd".to_string(), None),
                (30, "pc".to_string(), Some("CC".to_string())),
            ]
        );
    }

    #[test]
    fn changes_keep_the_entries_in_key_order() {
        let mut c = Column::default();
        for change in [
            put(30, "c", Some("C")),
            put(10, "a", None),
            put(30, "b", Some("B")),
            put(20, "x", Some("X")),
            // Again, the same: nothing changes; then another confirmation number.
            put(20, "x", Some("X")),
            put(10, "a", Some("A2")),
            Change::Remove {
                nanos: 20,
                key: b"px".to_vec(),
            },
            put(25, "x", None),
        ] {
            c.apply(&change);
        }
        let want = vec![
            (10, "pa".to_string(), Some("A2".to_string())),
            (25, "px".to_string(), None),
            (30, "pb".to_string(), Some("B".to_string())),
            (30, "pc".to_string(), Some("C".to_string())),
        ];
        assert_eq!(rows(&c), want);
        // Forgetting what is older than 20 keeps the rest (and their texts) as they were.
        c.forget_before(20);
        assert_eq!(rows(&c), want[1..].to_vec());
        assert_eq!(c.garbage, 0);
        // A put older than what the column covers is not kept.
        c.apply(&put(5, "old", None));
        assert_eq!(rows(&c), want[1..].to_vec());
    }
}
