//! `biller-inbox export [--since RFC3339]`: the journal and the records as JSON lines on
//! stdout, offline. Journal entries first (`{"type": "journal", ...}`, in `seq` order), then
//! records (`{"type": "record", ...}`, in receive order), in the admin API's shapes.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Failure;
use crate::admin::views::{JournalFormatter, RecordView};
use crate::settings::Settings;
use crate::store::{RecordCursor, Store, StoreError};

/// Journal entries or records read per store call.
const BATCH: usize = 10_000;

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    item: &'a T,
}

pub fn parse_since(s: &str) -> Result<DateTime<Utc>, Failure> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Failure::usage(format!(
                "--since {s:?} is not an RFC 3339 time (e.g. 2026-11-21T00:00:00Z)"
            ))
        })
}

pub fn run(settings: &Settings, since: Option<DateTime<Utc>>) -> Result<(), Failure> {
    let path = &settings.store.path;
    if settings.store.backend == crate::settings::Backend::Sled && !path.exists() {
        return Err(Failure::check(format!("there is no store at {}", path.display())));
    }
    let store = Store::open(&settings.store).map_err(|e| match e {
        StoreError::Locked { path } => Failure::check(format!(
            "the store at {path} is held by a running server; stop it to export, or read GET /admin/journal and POST /admin/postings/search instead"
        )),
        other => Failure::check(other.to_string()),
    })?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (entries, records) = super::block_on(write_all(&store, since, &mut out))?.map_err(|e| match e {
        ExportError::Store(e) => Failure::check(e.to_string()),
        ExportError::Write(e) => Failure::check(format!("cannot write the export: {e}")),
    })?;
    out.flush()
        .map_err(|e| Failure::check(format!("cannot write the export: {e}")))?;
    eprintln!("exported {entries} journal entries and {records} records");
    Ok(())
}

enum ExportError {
    Store(StoreError),
    Write(std::io::Error),
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        Self::Write(e)
    }
}

fn write_line<T: Serialize>(out: &mut impl Write, kind: &'static str, item: &T) -> Result<(), ExportError> {
    serde_json::to_writer(&mut *out, &Line { kind, item }).map_err(|e| ExportError::Write(std::io::Error::other(e)))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes everything at or after `since`; returns (journal entries, records) written.
async fn write_all(
    store: &Store,
    since: Option<DateTime<Utc>>,
    out: &mut impl Write,
) -> Result<(usize, usize), ExportError> {
    let mut format = JournalFormatter::new(store);
    let (mut entries, mut after) = (0usize, 0u64);
    loop {
        let batch = store.journal_after(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for e in batch.iter().filter(|e| since.is_none_or(|t| e.at >= t)) {
            write_line(out, "journal", &format.view(e).await?)?;
            entries += 1;
        }
    }
    let (mut records, mut cursor) = (0usize, None);
    loop {
        let batch = store.records_received(since, cursor.take(), BATCH).await?;
        let Some(last) = batch.last() else { break };
        cursor = Some(RecordCursor::of(last));
        for record in &batch {
            write_line(out, "record", &RecordView::from(record))?;
            records += 1;
        }
    }
    Ok((entries, records))
}
