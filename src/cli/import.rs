//! `biller-inbox accounts import FILE`: offline upsert of an accounts file into the store,
//! streamed so that a file of millions of accounts is never held in memory.
//!
//! All-or-nothing without holding the file takes two passes over it:
//!
//! 1. **Check.** Every entry is parsed and validated and repeated account numbers are found
//!    (`accounts_file::DuplicateCheck`). Bad entries are reported in input order as they are
//!    found: the first `SHOWN_ERRORS` on stderr, every one with `--errors-out FILE`. With any bad
//!    entry the command stops here and nothing is written.
//! 2. **Write.** The file is read again and upserted in chunks of `CHUNK` entries, each on disk
//!    before the next is read.
//!
//! The second pass refuses to start if the file changed after the first (size or modification
//! time) and stops if an entry no longer validates. If the write is interrupted (a crash, a full
//! disk), the store holds the chunks already written; importing the same file again completes
//! it, because an import is an upsert and an account's opening balance is set only once.
//! The other way, staging every entry in the store during the check and moving it afterwards,
//! would write each account twice; the check pass costs a second parse instead.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Failure;
use crate::domain::account::{AccountEntry, EntryError};
use crate::domain::accounts_file::{read_accounts, DuplicateCheck, Item};
use crate::settings::{ConfigSources, Settings, StoreSettings};
use crate::store::{ImportSummary, Store, StoreError};

/// Bad entries printed on stderr; the rest are counted (and all written with `--errors-out`).
pub const SHOWN_ERRORS: u64 = 100;
/// Entries per store write in the second pass.
const CHUNK: usize = 2_000;
/// How big a read the file gets.
const READ_BUFFER: usize = 256 * 1024;
/// The import opens the store with at most this much page cache. It writes each account once,
/// so a larger cache only holds memory: at 1,000,000 accounts the import's peak resident memory
/// was 466 MiB with the default 128 MiB cache, 262–265 MiB with 16 MiB and 233–250 MiB with
/// 8 MiB, for the same wall clock and CPU time (`/usr/bin/time -v` on a quiet machine, README
/// "The accounts file").
const IMPORT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// What the command line asked for.
pub struct Options {
    pub file: PathBuf,
    pub errors_out: Option<PathBuf>,
    /// Without a terminal, a progress line at most this often.
    pub progress_every: Duration,
}

impl Options {
    pub fn new(file: PathBuf, errors_out: Option<PathBuf>, progress_every: f64) -> Result<Self, Failure> {
        let progress_every = Duration::try_from_secs_f64(progress_every)
            .map_err(|_| Failure::usage("--progress-every must be a number of seconds, 0 or more"))?;
        Ok(Self {
            file,
            errors_out,
            progress_every,
        })
    }
}

pub fn run(settings: &Settings, sources: &ConfigSources, options: &Options) -> Result<(), Failure> {
    let file = options.file.as_path();
    let label = file.display().to_string();
    let before = FileStamp::of(file)?;
    let store_settings = StoreSettings {
        cache_capacity_bytes: settings.store.cache_capacity_bytes.min(IMPORT_CACHE_BYTES),
        ..settings.store.clone()
    };
    let store = Store::open(&store_settings).map_err(|e| match e {
        StoreError::Locked { path } => Failure::check(format!(
            "the store at {path} is held by a running server; import through it instead: PUT /admin/accounts with the same file as the body"
        )),
        other => Failure::check(other.to_string()),
    })?;
    if sources.demo_found {
        eprintln!(
            "biller-inbox: importing {label} into {} (configuration: {sources})",
            settings.store.location()
        );
    }
    let started = Instant::now();

    // Pass 1: check everything, write nothing.
    let mut bad = BadEntries::new(&label, options.errors_out.as_deref())?;
    let mut duplicates = DuplicateCheck::default();
    let mut progress = Progress::new("checking", before.len, options.progress_every);
    let mut good = 0u64;
    read_file(file, |item, bytes| {
        match item {
            Item::Entry { location, entry } => match duplicates.check(&entry.account.account_number, location) {
                Some(e) => bad.add(&e, &progress)?,
                None => good += 1,
            },
            Item::Bad(e) => bad.add(&e, &progress)?,
        }
        progress.update(good + bad.count, bytes);
        Ok(ControlFlow::Continue(()))
    })?;
    drop(duplicates);
    let checked_in = progress.finish();
    bad.finish()?;
    if bad.count > 0 {
        return Err(Failure::check(bad.summary()));
    }

    // Pass 2: the same entries, written in chunks.
    if FileStamp::of(file)? != before {
        return Err(Failure::check(format!(
            "{label} changed while it was being checked; nothing imported: import it again once it is complete"
        )));
    }
    let mut progress = Progress::new("importing", before.len, options.progress_every);
    let mut summary = ImportSummary::default();
    let mut chunk: Vec<AccountEntry> = Vec::with_capacity(CHUNK);
    let mut written = 0u64;
    // The store's interface is async; one runtime serves every chunk.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::check(format!("cannot start the async runtime: {e}")))?;
    // Each call is one chunk, on disk when it returns.
    let write = |chunk: &mut Vec<AccountEntry>, summary: &mut ImportSummary| -> Result<u64, Failure> {
        let entries = std::mem::replace(chunk, Vec::with_capacity(CHUNK));
        let n = entries.len() as u64;
        let part = runtime
            .block_on(store.import_accounts(entries))
            .map_err(|e| Failure::check(format!("{e}; {}", partial(&label))))?;
        add_summary(summary, &part);
        Ok(n)
    };
    read_file(file, |item, bytes| {
        match item {
            Item::Entry { entry, .. } => chunk.push(entry),
            Item::Bad(e) => {
                return Err(Failure::check(format!(
                    "{label}: {e}: the file changed during the import; {}",
                    partial(&label)
                )))
            }
        }
        if chunk.len() == CHUNK {
            written += write(&mut chunk, &mut summary)?;
        }
        progress.update(written + chunk.len() as u64, bytes);
        Ok(ControlFlow::Continue(()))
    })?;
    written += write(&mut chunk, &mut summary)?;
    if written != good || FileStamp::of(file)? != before {
        return Err(Failure::check(format!(
            "{label} changed during the import ({good} accounts checked, {written} written); {}",
            partial(&label)
        )));
    }
    let written_in = progress.finish();
    println!(
        "imported {} accounts ({} created, {} updated), {} profiles ({} created, {} updated) in {:.1} s (checked in {:.1} s, written in {:.1} s)",
        summary.accounts_created + summary.accounts_updated,
        summary.accounts_created,
        summary.accounts_updated,
        summary.profiles_created + summary.profiles_updated,
        summary.profiles_created,
        summary.profiles_updated,
        started.elapsed().as_secs_f64(),
        checked_in.as_secs_f64(),
        written_in.as_secs_f64(),
    );
    Ok(())
}

fn partial(label: &str) -> String {
    format!("the accounts written so far stay; importing {label} again completes the import")
}

fn add_summary(total: &mut ImportSummary, part: &ImportSummary) {
    total.accounts_created += part.accounts_created;
    total.accounts_updated += part.accounts_updated;
    total.profiles_created += part.profiles_created;
    total.profiles_updated += part.profiles_updated;
}

/// Reads the accounts file once, handing each item and the bytes read so far to `on`. `on`'s
/// error stops the reading and is returned.
fn read_file(file: &Path, mut on: impl FnMut(Item, u64) -> Result<ControlFlow<()>, Failure>) -> Result<(), Failure> {
    let label = file.display();
    let handle = File::open(file).map_err(|e| Failure::usage(format!("cannot read {label}: {e}")))?;
    let bytes = Rc::new(Cell::new(0u64));
    let reader = BufReader::with_capacity(
        READ_BUFFER,
        Counting {
            inner: handle,
            bytes: bytes.clone(),
        },
    );
    let mut failure = None;
    read_accounts(reader, &mut |item| match on(item, bytes.get()) {
        Ok(flow) => flow,
        Err(f) => {
            failure = Some(f);
            ControlFlow::Break(())
        }
    })
    .map_err(|e| Failure::check(format!("cannot read {label}: {e}")))?;
    failure.map_or(Ok(()), Err)
}

/// A reader that counts the bytes it has read, for the progress display.
struct Counting<R> {
    inner: R,
    bytes: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

/// Size and modification time: whether the file changed between the two passes.
#[derive(Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(file: &Path) -> Result<Self, Failure> {
        let meta =
            std::fs::metadata(file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
        if !meta.is_file() {
            return Err(Failure::usage(format!("{} is not a file", file.display())));
        }
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// The bad entries of the check pass: the first `SHOWN_ERRORS` on stderr, all in the
/// `--errors-out` file, and their count.
struct BadEntries<'a> {
    label: &'a str,
    count: u64,
    out: Option<(String, BufWriter<File>)>,
}

impl<'a> BadEntries<'a> {
    fn new(label: &'a str, errors_out: Option<&Path>) -> Result<Self, Failure> {
        let out = match errors_out {
            None => None,
            Some(path) => {
                let file = File::create(path)
                    .map_err(|e| Failure::usage(format!("cannot write --errors-out {}: {e}", path.display())))?;
                Some((path.display().to_string(), BufWriter::new(file)))
            }
        };
        Ok(Self { label, count: 0, out })
    }

    fn add(&mut self, e: &EntryError, progress: &Progress) -> Result<(), Failure> {
        self.count += 1;
        let line = format!("{}: {e}", self.label);
        if self.count <= SHOWN_ERRORS {
            progress.println(&line);
        }
        if let Some((path, out)) = &mut self.out {
            writeln!(out, "{line}").map_err(|e| Failure::check(format!("cannot write --errors-out {path}: {e}")))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Failure> {
        if let Some((path, out)) = &mut self.out {
            out.flush()
                .map_err(|e| Failure::check(format!("cannot write --errors-out {path}: {e}")))?;
        }
        Ok(())
    }

    fn summary(&self) -> String {
        let n = self.count;
        let entries = if n == 1 { "entry" } else { "entries" };
        let all = match &self.out {
            Some((path, _)) => format!("all of them are in {path}"),
            None => "--errors-out FILE writes all of them".to_string(),
        };
        if n <= SHOWN_ERRORS {
            format!("nothing imported: {} bad {entries}, listed above", thousands(n))
        } else {
            format!(
                "nothing imported: {} bad {entries}; the first {SHOWN_ERRORS} are listed above and {} more are not shown ({all})",
                thousands(n),
                thousands(n - SHOWN_ERRORS)
            )
        }
    }
}

/// Progress on stderr: a bar on a terminal, otherwise a plain line every few seconds with the
/// count, the rate and the time left (estimated from the share of the file read).
struct Progress {
    phase: &'static str,
    total_bytes: u64,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: Instant,
    every: Duration,
    accounts: u64,
    /// Whether a plain progress line was printed (then the end of the phase gets one too).
    printed: bool,
}

impl Progress {
    fn new(phase: &'static str, total_bytes: u64, every: Duration) -> Self {
        let started = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {percent:>3}% {msg} {binary_bytes}/{binary_total_bytes}, {eta} left",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(phase);
            bar
        });
        Self {
            phase,
            total_bytes,
            started,
            bar,
            last_line: started,
            every,
            accounts: 0,
            printed: false,
        }
    }

    fn update(&mut self, accounts: u64, bytes: u64) {
        self.accounts = accounts;
        // Looking at the clock for every entry would cost more than the entry.
        if !accounts.is_multiple_of(1024) {
            return;
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!(
                    "{} accounts, {}/s,",
                    thousands(accounts),
                    thousands(self.rate())
                ));
            }
            None => {
                if self.last_line.elapsed() >= self.every {
                    self.last_line = Instant::now();
                    self.printed = true;
                    eprintln!("biller-inbox: {}", self.line(bytes));
                }
            }
        }
    }

    fn rate(&self) -> u64 {
        (self.accounts as f64 / self.started.elapsed().as_secs_f64().max(1e-3)) as u64
    }

    fn line(&self, bytes: u64) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let share = if self.total_bytes == 0 {
            1.0
        } else {
            bytes as f64 / self.total_bytes as f64
        };
        let left = if share > 0.0 {
            elapsed * (1.0 - share) / share
        } else {
            f64::NAN
        };
        format!(
            "{}: {} accounts, {:.0}% of {:.1} MB, {} accounts/s, about {} left",
            self.phase,
            thousands(self.accounts),
            share * 100.0,
            self.total_bytes as f64 / 1e6,
            thousands(self.rate()),
            if left.is_finite() {
                format!("{left:.0} s")
            } else {
                "? s".to_string()
            }
        )
    }

    /// A line above the bar (or just a line).
    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(self) -> Duration {
        let took = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        } else if self.printed {
            eprintln!(
                "biller-inbox: {}: done, {} accounts in {:.1} s",
                self.phase,
                thousands(self.accounts),
                took.as_secs_f64()
            );
        }
        took
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_are_separated() {
        for (n, want) in [(0, "0"), (999, "999"), (1000, "1,000"), (1234567, "1,234,567")] {
            assert_eq!(thousands(n), want);
        }
    }
}
